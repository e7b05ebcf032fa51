# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# The background processes of a test that sources scripts/sandbox.sh: each kept by name in PIDS
# (`cmd & PIDS[name]=$!`), with the pipe the test writes its commands to, if any, in FDS
# (`exec {FDS[name]}>FIFO`). procs_stop_all closes every pipe and stops every process by its PID
# (TERM, then KILL: bounded); a test runs it on exit, before the sandbox goes:
#
#     trap procs_stop_all EXIT # before sandbox_create, which keeps it and runs it first

declare -A PIDS=() FDS=()

# How long a process gets to end after SIGTERM before SIGKILL, in tenths of a second.
PROCS_TERM_TENTHS=20

# procs_stop NAME: closes NAME's pipe (if any), stops the process and forgets both.
# shellcheck disable=SC1083,SC2086 # {FDS[...]}>&-: bash closes the descriptor the element holds
procs_stop() {
	[[ -n ${FDS[$1]:-} ]] && exec {FDS[$1]}>&-
	unset "FDS[$1]"
	[[ -n ${PIDS[$1]:-} ]] && { _sandbox_stop_pid "${PIDS[$1]}" "$PROCS_TERM_TENTHS" || true; }
	unset "PIDS[$1]"
	return 0
}

# procs_stop_all: procs_stop for every pipe and process the test still has.
# shellcheck disable=SC1083,SC2086,SC2093 # as in procs_stop
procs_stop_all() {
	local name

	for name in "${!FDS[@]}"; do exec {FDS[$name]}>&-; done
	for name in "${!PIDS[@]}"; do
		_sandbox_stop_pid "${PIDS[$name]}" "$PROCS_TERM_TENTHS" || true
	done
	FDS=() PIDS=()
	return 0
}

# procs_wait NAME: waits until NAME ends by itself (its own bound: a time-out of its own or an
# end the test caused) and forgets it; returns its exit status.
procs_wait() {
	local rc=0

	wait "${PIDS[$1]}" 2>/dev/null || rc=$?
	unset "PIDS[$1]"
	return "$rc"
}

# procs_wait_ready FILE: bounded wait (5 s) until FILE has the line "ready" (what flowprobe serve,
# dns_tool.py serve|listen and the like write once they listen).
procs_wait_ready() {
	local i

	for ((i = 0; i < 50; i++)); do
		grep -qx ready "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
