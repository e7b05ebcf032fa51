# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# Processes of a test that sources tests/lib/tap.sh and scripts/sandbox.sh, put straight into a
# cgroup below the sandbox's root in the head unit's netns, as systemd starts a unit (no agent
# asked, unlike sandbox_run_app); a unit's TCP flow from there, judged at both ends; and the
# agent's registrations of app cgroups that were removed and made again.

# in_cgroup CGROUP CMD...: CMD in CGROUP (which exists).
in_cgroup() {
	local cg=$1

	shift
	# shellcheck disable=SC2016 # $$, $0 and $@ are the inner shell's
	sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

cgroup_flow_n=0
# cgroup_flow CGROUP ADDR [wait]: one TCP flow to ADDR:443 from a process that joins CGROUP (made
# if missing); with "wait", the process first runs `carwall app wait-managed` there (the AGL
# drop-in's ExecStartPre) and makes the flow only if it returned 0. Sets FLOW_OUT (the output),
# FLOW_RC (flowprobe's exit code, or wait-managed's plus 100) and FLOW_TOKEN (unique per run).
cgroup_flow() {
	local cg=$1 addr=$2 wait=${3:-}

	cgroup_flow_n=$((cgroup_flow_n + 1))
	FLOW_TOKEN=c$$-$cgroup_flow_n
	mkdir -p "$cg"
	# shellcheck disable=SC2016 # expanded by the inner shell
	FLOW_OUT=$(sandbox_in_hu sh -c '
		echo $$ > "$1/cgroup.procs" || exit 99
		if [ -n "$4" ]; then
			"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" app wait-managed --timeout 10 || exit $((100 + $?))
		fi
		exec "$FLOWPROBE" tcp "$2" 443 --token "$3" --timeout-ms 2000' \
		sh "$cg" "$addr" "$FLOW_TOKEN" "$wait" 2>&1)
	FLOW_RC=$?
}

# expect_reached NAME: the last cgroup_flow reached its server.
expect_reached() {
	if ((FLOW_RC == 0)) && sandbox_server_saw tcp 443 "$FLOW_TOKEN"; then
		tap_ok "$1"
	else
		tap_not_ok "$1" "exit code $FLOW_RC" "$FLOW_OUT"
	fi
}

# expect_refused NAME: the last cgroup_flow got EPERM at connect() and nothing of it arrived.
expect_refused() {
	local saw=no

	if ((FLOW_RC == 1)) && sandbox_refused "$FLOW_OUT" connect &&
		! sandbox_server_saw_token "$FLOW_TOKEN"; then
		tap_ok "$1"
	else
		sandbox_server_saw_token "$FLOW_TOKEN" && saw=YES
		tap_not_ok "$1" "exit code $FLOW_RC, server saw the token: $saw" "$FLOW_OUT"
	fi
}

# registrations: how many times the agent logged that it registered the app cgroups again.
registrations() { grep -c "Registered the app cgroups again" "$SANDBOX_DIR/agent.log"; }

# wait_registered N: bounded wait (5 s) until the agent logged more than N registrations again,
# without asking it anything (the inotify path alone).
wait_registered() {
	local i

	for ((i = 0; i < 100; i++)); do
		(($(registrations) > $1)) && return 0
		sleep 0.05
	done
	return 1
}
