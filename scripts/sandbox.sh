# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# sandbox.sh: a throwaway "head unit + internet" sandbox for carwall's demo and integration
# tests. Source it (do not execute it); every function is safe under `set -euo pipefail`.
#
#     . scripts/sandbox.sh
#     sandbox_require_root && sandbox_check_tools || exit 77
#     sandbox_create "cw-t$$"          # registers sandbox_destroy on EXIT
#     sandbox_agent_start              # carwalld on $SANDBOX_POLICY
#     sandbox_run_app mediaplayer "$SANDBOX_FLOWPROBE" tcp 198.51.100.20 443 --token t1
#     sandbox_server_saw tcp 443 t1
#
# Layout built by sandbox_create NAME:
#   netns ${NAME}-hu  (head unit)  hu0:  192.0.2.1/24  2001:db8:ffff::1/64, default routes
#                                        via the internet side
#   netns ${NAME}-net (internet)   net0: 192.0.2.2/24  2001:db8:ffff::2/64
#                                  lo:   198.51.100.20 2001:db8:51::20   (OEM backend)
#                                        198.51.100.80 2001:db8:100::80  (OEM maps)
#                                        203.0.113.7   2001:db8:bad::7   (offshore tracker)
#   a flowprobe server in ${NAME}-net: TCP 443 8443 9000, UDP 514 9000, UDP-Lite 9000, on
#     every address; it logs "PROTO PORT PEERADDR TOKEN" per flow to $SANDBOX_SERVER_LOG (and,
#     for a held TCP connection, each later line that differs from the first: the markers of
#     `flowprobe hold`, see sandbox_hold_marker).
#   cgroup $SANDBOX_CGROUP2/carwall-NAME, bpffs pin dir path /sys/fs/bpf/carwall-NAME (created
#   by the agent, not here), a temp dir with run/, state/, server.log, agent.log.
#
# The veth ends are created directly inside the two namespaces, so nothing ever appears in
# the root network namespace. bpffs is mounted at /sys/fs/bpf if it is not already, and is
# left mounted (other sandboxes may share it).
#
# Notes for callers:
# - sandbox_create installs `trap _sandbox_exit_trap EXIT`. An EXIT trap set before it is kept
#   and runs first (the sandbox still exists then, e.g. to print logs), then sandbox_destroy.
#   An EXIT trap set after sandbox_create replaces it: call sandbox_destroy from it yourself.
#   bash runs the EXIT trap on SIGTERM/SIGINT too.
# - Call sandbox_create, sandbox_agent_* and sandbox_destroy from the main shell (not from
#   $(...), a pipeline or a subshell): they keep state in shell variables and reap children.
# - Only the shell that ran sandbox_create destroys the sandbox; the exported SANDBOX_*
#   variables let child scripts use it.
# - Binaries: CARWALLD, CARWALL (default build/carwalld, build/carwall) and FLOWPROBE (default
#   build/flowprobe; if absent, a private copy is compiled into $SANDBOX_DIR) are read from
#   the environment when needed; $SANDBOX_FLOWPROBE is the one in use.
# - A process the test leaves in the cgroup subtree or inside either netns is killed by
#   sandbox_destroy (the calling shell itself is moved back out of the subtree, not killed).

# Not `readonly`: sourcing twice must work.
SANDBOX_HU_V4=192.0.2.1
SANDBOX_HU_V6=2001:db8:ffff::1
SANDBOX_GW_V4=192.0.2.2
SANDBOX_GW_V6=2001:db8:ffff::2
SANDBOX_OEM_V4=198.51.100.20
SANDBOX_OEM_V6=2001:db8:51::20
SANDBOX_MAPS_V4=198.51.100.80
SANDBOX_MAPS_V6=2001:db8:100::80
SANDBOX_TRACKER_V4=203.0.113.7
SANDBOX_TRACKER_V6=2001:db8:bad::7
SANDBOX_TCP_PORTS="443 8443 9000"
SANDBOX_UDP_PORTS="514 9000"
SANDBOX_UDPLITE_PORTS="9000"

# Repository root, from this file's own location.
SANDBOX_REPO=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)

_sandbox_log() {
	printf 'sandbox: %s\n' "$*" >&2
}

# The caller may set these before or after sourcing; they are read at call time.
_sandbox_carwalld() { printf '%s' "${CARWALLD:-$SANDBOX_REPO/build/carwalld}"; }
_sandbox_carwall() { printf '%s' "${CARWALL:-$SANDBOX_REPO/build/carwall}"; }

sandbox_require_root() {
	if [[ $(id -u) != 0 ]]; then
		_sandbox_log "must run as root (network namespaces, cgroups, bpffs)"
		return 1
	fi
}

# Checks the tools sandbox_create needs. Prints every missing one, returns 1 if any.
sandbox_check_tools() {
	local t missing=0

	for t in ip nsenter mount mktemp awk find grep sed timeout; do
		if ! command -v "$t" >/dev/null 2>&1; then
			_sandbox_log "required tool not found: $t"
			missing=1
		fi
	done
	if ((missing == 0)) && ! ip netns list >/dev/null 2>&1; then
		_sandbox_log "'ip netns' does not work (iproute2 too old, or not root?)"
		missing=1
	fi
	return "$missing"
}

# Mount point of the first cgroup2 filesystem in /proc/self/mountinfo.
_sandbox_find_cgroup2() {
	local mp

	mp=$(awk '{
		for (i = 7; i < NF; i++)
			if ($i == "-") {
				if ($(i + 1) == "cgroup2") { print $5; exit }
				break
			}
	}' /proc/self/mountinfo) || return 1
	[[ -n $mp ]] || return 1
	# mountinfo escapes space, tab, newline and backslash as \ooo.
	printf '%b' "${mp//\\/\\0}"
}

_sandbox_is_bpffs() {
	awk -v want="$1" '{
		for (i = 7; i < NF; i++)
			if ($i == "-") {
				if ($5 == want && $(i + 1) == "bpf") found = 1
				break
			}
	} END { exit !found }' /proc/self/mountinfo
}

# True while PID exists and is not a zombie.
_sandbox_alive() {
	local state

	[[ -r /proc/$1/stat ]] || return 1
	state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

# _sandbox_stop_pid PID [TERM_WAIT_TENTHS]: TERM, wait (bounded), KILL, wait (bounded), reap.
# Returns the process's exit status if it is our child, else 0 once it is gone.
_sandbox_stop_pid() {
	local pid=$1 tenths=${2:-50} i rc=0

	[[ $pid =~ ^[0-9]+$ ]] || return 0
	if _sandbox_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < tenths; i++)); do
			_sandbox_alive "$pid" || break
			sleep 0.1
		done
		if _sandbox_alive "$pid"; then
			_sandbox_log "pid $pid ignored SIGTERM for $((tenths / 10))s; SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				_sandbox_alive "$pid" || break
				sleep 0.1
			done
		fi
	fi
	# Still alive after SIGKILL (uninterruptible sleep?): do not block in wait.
	if _sandbox_alive "$pid"; then
		_sandbox_log "pid $pid survived SIGKILL for 5s"
		return 1
	fi
	# Reap it if it is our child (a zombie keeps its PID from being reused until then).
	wait "$pid" 2>/dev/null || rc=$?
	# 127: not our child (started in another shell); it is gone, nothing to report.
	((rc == 127)) && rc=0
	return "$rc"
}

# _sandbox_kill SIG PID: a leftover process. If it is a background job of this shell, drop it
# from the job table first, so bash prints no "Killed" notice (bash still reaps it).
_sandbox_kill() {
	disown "$2" 2>/dev/null || true
	kill "-$1" "$2" 2>/dev/null || true
}

# Waits (bounded) until a newly created netns has usable IPv6: links up, no tentative or
# dadfailed addresses, and a route to the servers.
_sandbox_wait_ipv6() {
	local i

	for ((i = 0; i < 100; i++)); do
		if [[ -z $(ip -n "$SANDBOX_HU_NETNS" -6 addr show tentative 2>/dev/null) &&
			-z $(ip -n "$SANDBOX_NET_NETNS" -6 addr show tentative 2>/dev/null) &&
			-z $(ip -n "$SANDBOX_HU_NETNS" -6 addr show dadfailed 2>/dev/null) &&
			-z $(ip -n "$SANDBOX_NET_NETNS" -6 addr show dadfailed 2>/dev/null) &&
			$(ip -n "$SANDBOX_HU_NETNS" link show hu0 2>/dev/null) == *LOWER_UP* &&
			$(ip -n "$SANDBOX_NET_NETNS" link show net0 2>/dev/null) == *LOWER_UP* ]] &&
			ip -n "$SANDBOX_HU_NETNS" -6 route get "$SANDBOX_TRACKER_V6" &>/dev/null
		then
			return 0
		fi
		sleep 0.05
	done
	_sandbox_log "IPv6 did not become usable within 5s"
	return 1
}

_sandbox_setup_net() {
	local hu=$SANDBOX_HU_NETNS net=$SANDBOX_NET_NETNS a

	ip netns add "$hu" || return 1
	_SANDBOX_NETNS_CREATED+=("$hu")
	ip netns add "$net" || return 1
	_SANDBOX_NETNS_CREATED+=("$net")

	ip -n "$hu" link add hu0 type veth peer name net0 netns "$net" || return 1

	ip -n "$hu" link set lo up &&
		ip -n "$hu" addr add "$SANDBOX_HU_V4/24" dev hu0 &&
		ip -n "$hu" -6 addr add "$SANDBOX_HU_V6/64" dev hu0 nodad &&
		ip -n "$hu" link set hu0 up || return 1

	ip -n "$net" link set lo up &&
		ip -n "$net" addr add "$SANDBOX_GW_V4/24" dev net0 &&
		ip -n "$net" -6 addr add "$SANDBOX_GW_V6/64" dev net0 nodad &&
		ip -n "$net" link set net0 up || return 1
	for a in "$SANDBOX_OEM_V4" "$SANDBOX_MAPS_V4" "$SANDBOX_TRACKER_V4"; do
		ip -n "$net" addr add "$a/32" dev lo || return 1
	done
	for a in "$SANDBOX_OEM_V6" "$SANDBOX_MAPS_V6" "$SANDBOX_TRACKER_V6"; do
		ip -n "$net" -6 addr add "$a/128" dev lo nodad || return 1
	done

	ip -n "$hu" route add default via "$SANDBOX_GW_V4" dev hu0 || return 1
	ip -n "$hu" -6 route add default via "$SANDBOX_GW_V6" dev hu0 || return 1
	_sandbox_wait_ipv6
}

_sandbox_ensure_bpffs() {
	local fd rc=0

	_sandbox_is_bpffs /sys/fs/bpf && return 0
	if [[ ! -d /sys/fs/bpf ]]; then
		_sandbox_log "/sys/fs/bpf does not exist (kernel without bpffs?)"
		return 1
	fi
	# Serialize with sandboxes created in parallel: two mounts stacked on /sys/fs/bpf would
	# hide the pins made under the first one. The lock is on the directory itself.
	exec {fd}</sys/fs/bpf || return 1
	command -v flock >/dev/null 2>&1 && { flock -w 10 "$fd" || true; }
	if ! _sandbox_is_bpffs /sys/fs/bpf; then
		if ! mount -t bpf bpf /sys/fs/bpf; then
			_sandbox_log "cannot mount bpffs at /sys/fs/bpf"
			rc=1
		fi
	fi
	exec {fd}<&-
	((rc == 0)) && _sandbox_is_bpffs /sys/fs/bpf
}

# Finds flowprobe: $FLOWPROBE, else build/flowprobe, else builds it into the sandbox dir.
_sandbox_find_flowprobe() {
	local fp=${FLOWPROBE:-$SANDBOX_REPO/build/flowprobe}

	if [[ -x $fp ]]; then
		SANDBOX_FLOWPROBE=$fp
		return 0
	fi
	if [[ -n ${FLOWPROBE:-} ]]; then
		_sandbox_log "FLOWPROBE=$FLOWPROBE is not executable"
		return 1
	fi
	if [[ -f $SANDBOX_REPO/scripts/flowprobe.c ]] && command -v cc >/dev/null 2>&1; then
		_sandbox_log "$fp not found; building a private copy"
		if cc -std=gnu11 -Wall -Wextra -O2 "$SANDBOX_REPO/scripts/flowprobe.c" \
			-o "$SANDBOX_DIR/flowprobe"; then
			SANDBOX_FLOWPROBE=$SANDBOX_DIR/flowprobe
			return 0
		fi
	fi
	_sandbox_log "flowprobe not found: build it (build/flowprobe) or set FLOWPROBE"
	return 1
}

_sandbox_start_server() {
	local i args=()

	for i in $SANDBOX_TCP_PORTS; do args+=(--tcp "$i"); done
	for i in $SANDBOX_UDP_PORTS; do args+=(--udp "$i"); done
	for i in $SANDBOX_UDPLITE_PORTS; do args+=(--udplite "$i"); done

	# `ip netns exec` execs the command in place, so $! is flowprobe's own PID. --hold keeps
	# TCP connections open after the echo, for `flowprobe hold` clients.
	ip netns exec "$SANDBOX_NET_NETNS" "$SANDBOX_FLOWPROBE" serve --hold --log "$SANDBOX_SERVER_LOG" \
		"${args[@]}" </dev/null >"$SANDBOX_DIR/server.out" 2>"$SANDBOX_DIR/server.err" &
	SANDBOX_SERVER_PID=$!

	for ((i = 0; i < 200; i++)); do
		if grep -qx ready "$SANDBOX_DIR/server.out" 2>/dev/null; then
			return 0
		fi
		_sandbox_alive "$SANDBOX_SERVER_PID" || break
		sleep 0.05
	done
	_sandbox_log "flowprobe server did not become ready; its stderr:"
	sed 's/^/  /' "$SANDBOX_DIR/server.err" >&2 2>/dev/null || true
	return 1
}

# The EXIT trap installed by sandbox_create: the caller's previous EXIT trap (if any) runs
# first, while the sandbox still exists, then the sandbox is destroyed.
_sandbox_exit_trap() {
	local rc=$?

	if [[ -n ${_SANDBOX_PREV_EXIT_TRAP:-} ]]; then
		eval "$_SANDBOX_PREV_EXIT_TRAP" || true
	fi
	sandbox_destroy || true
	return "$rc"
}

# sandbox_create NAME: see the header. Returns 1 (after cleaning up what it made) on failure.
# Call it from the main shell, not from $(...) or a pipeline: it sets variables and starts a
# background server.
sandbox_create() {
	local name=${1:-} prev cg

	if [[ ! $name =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ ]]; then
		_sandbox_log "sandbox_create NAME: NAME must be 1-32 of [A-Za-z0-9_-], got '$name'"
		return 1
	fi
	if [[ -n ${_SANDBOX_ACTIVE:-} ]]; then
		_sandbox_log "sandbox $SANDBOX_NAME already exists in this shell"
		return 1
	fi
	sandbox_require_root || return 1
	sandbox_check_tools || return 1

	# Not exported: a child shell that inherits the SANDBOX_* variables may use this sandbox
	# but never destroys it.
	_SANDBOX_ACTIVE=1
	SANDBOX_NAME=$name
	SANDBOX_HU_NETNS=$name-hu
	SANDBOX_NET_NETNS=$name-net
	SANDBOX_CGROUP2=
	SANDBOX_CGROUP_ROOT=
	SANDBOX_PIN_DIR=/sys/fs/bpf/carwall-$name
	SANDBOX_DIR=
	SANDBOX_RUN_DIR=
	SANDBOX_STATE_DIR=
	SANDBOX_SERVER_LOG=
	SANDBOX_SERVER_PID=
	SANDBOX_AGENT_PID=
	SANDBOX_FLOWPROBE=
	SANDBOX_POLICY=${SANDBOX_POLICY:-$SANDBOX_REPO/policies/demo.yaml}
	_SANDBOX_NETNS_CREATED=()
	_SANDBOX_CGROUP_CREATED=
	_SANDBOX_ORIG_CGROUP=
	export SANDBOX_NAME SANDBOX_HU_NETNS SANDBOX_NET_NETNS SANDBOX_CGROUP2 SANDBOX_CGROUP_ROOT \
		SANDBOX_PIN_DIR SANDBOX_DIR SANDBOX_RUN_DIR SANDBOX_STATE_DIR SANDBOX_SERVER_LOG \
		SANDBOX_FLOWPROBE SANDBOX_POLICY

	# Cleanup is registered before anything is created, so a half-built sandbox goes too.
	if [[ -z ${_SANDBOX_TRAP_SET:-} ]]; then
		prev=$(trap -p EXIT)
		if [[ -n $prev ]]; then
			# `trap -p` prints: trap -- 'CMD' EXIT
			eval "set -- $prev"
			_SANDBOX_PREV_EXIT_TRAP=$3
		else
			_SANDBOX_PREV_EXIT_TRAP=
		fi
		trap _sandbox_exit_trap EXIT
		_SANDBOX_TRAP_SET=1
	fi

	SANDBOX_DIR=$(mktemp -d "${TMPDIR:-/tmp}/carwall-sbx-$name.XXXXXX") || {
		_sandbox_log "mktemp failed"
		sandbox_destroy
		return 1
	}
	SANDBOX_RUN_DIR=$SANDBOX_DIR/run
	SANDBOX_STATE_DIR=$SANDBOX_DIR/state
	SANDBOX_SERVER_LOG=$SANDBOX_DIR/server.log
	if ! mkdir "$SANDBOX_RUN_DIR" "$SANDBOX_STATE_DIR" || ! : >"$SANDBOX_SERVER_LOG"; then
		sandbox_destroy
		return 1
	fi

	if ! _sandbox_find_flowprobe; then
		sandbox_destroy
		return 1
	fi

	# cgroup v2 subtree.
	if ! SANDBOX_CGROUP2=$(_sandbox_find_cgroup2) || [[ ! -d $SANDBOX_CGROUP2 ]]; then
		_sandbox_log "no cgroup2 mount in /proc/self/mountinfo"
		SANDBOX_CGROUP2=
		sandbox_destroy
		return 1
	fi
	cg=$(awk '/^0::/ { sub(/^0::/, ""); print; exit }' /proc/self/cgroup 2>/dev/null) || cg=
	_SANDBOX_ORIG_CGROUP=$SANDBOX_CGROUP2${cg%/}
	SANDBOX_CGROUP_ROOT=$SANDBOX_CGROUP2/carwall-$name
	if ! mkdir "$SANDBOX_CGROUP_ROOT"; then
		_sandbox_log "cannot create cgroup $SANDBOX_CGROUP_ROOT (left from an earlier run?)"
		SANDBOX_CGROUP_ROOT=
		sandbox_destroy
		return 1
	fi
	_SANDBOX_CGROUP_CREATED=1

	if ! _sandbox_ensure_bpffs; then
		sandbox_destroy
		return 1
	fi
	if [[ -e $SANDBOX_PIN_DIR ]]; then
		_sandbox_log "$SANDBOX_PIN_DIR already exists (left over from an earlier run?)"
		SANDBOX_PIN_DIR=
		sandbox_destroy
		return 1
	fi

	if ! _sandbox_setup_net; then
		_sandbox_log "network setup failed"
		sandbox_destroy
		return 1
	fi
	if ! _sandbox_start_server; then
		sandbox_destroy
		return 1
	fi
	return 0
}

_sandbox_move() {
	{ echo "$1" >"$2/cgroup.procs"; } 2>/dev/null
}

# Kills every process in the cgroup subtree (never this shell), then removes the subtree
# depth-first. Bounded.
_sandbox_remove_cgroup() {
	local root=$SANDBOX_CGROUP_ROOT pids pid i d

	# Paranoia: only ever a carwall-* child of the cgroup2 mount we found.
	[[ -n $root && -n ${SANDBOX_CGROUP2:-} && $root == "$SANDBOX_CGROUP2"/carwall-* &&
		$root != */../* && -d $root ]] || return 0

	for ((i = 0; i < 50; i++)); do
		pids=$(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null) || true
		[[ -z $pids ]] && break
		for pid in $pids; do
			if [[ $pid == "$$" || $pid == "${BASHPID:-$$}" ]]; then
				# This shell moved itself in: move it back out rather than kill it.
				# (to where it came from, else to the top of the hierarchy).
				_sandbox_move "$pid" "$_SANDBOX_ORIG_CGROUP" ||
					_sandbox_move "$pid" "$SANDBOX_CGROUP2" || true
				continue
			fi
			_sandbox_kill KILL "$pid"
		done
		sleep 0.1
	done
	[[ -z $pids ]] || _sandbox_log "processes still in $root: $pids"

	for ((i = 0; i < 50; i++)); do
		while IFS= read -r d; do
			rmdir "$d" 2>/dev/null || true
		done < <(find "$root" -depth -type d 2>/dev/null)
		[[ -d $root ]] || return 0
		sleep 0.1
	done
	_sandbox_log "could not remove cgroup $root"
	return 1
}

# sandbox_destroy: idempotent; safe after a half-failed sandbox_create; never fails the
# caller under set -e. Removes only what sandbox_create made (or the agent made in its paths).
sandbox_destroy() {
	local - pid ns carwall pids i
	set +e

	[[ -n ${_SANDBOX_ACTIVE:-} ]] || return 0
	[[ -z ${_SANDBOX_DESTROYING:-} ]] || return 0
	_SANDBOX_DESTROYING=1

	if [[ -n ${SANDBOX_AGENT_PID:-} ]]; then
		_sandbox_stop_pid "$SANDBOX_AGENT_PID" 50 || true
		SANDBOX_AGENT_PID=
	fi
	if [[ -n ${SANDBOX_SERVER_PID:-} ]]; then
		_sandbox_stop_pid "$SANDBOX_SERVER_PID" 30 || true
		SANDBOX_SERVER_PID=
	fi

	carwall=$(_sandbox_carwall)
	if [[ -n ${SANDBOX_PIN_DIR:-} && $SANDBOX_PIN_DIR == /sys/fs/bpf/carwall-* ]]; then
		if [[ -e $SANDBOX_PIN_DIR && -x $carwall ]]; then
			timeout 10 "$carwall" unload --pin-dir "$SANDBOX_PIN_DIR" &>/dev/null ||
				true
		fi
		if [[ -e $SANDBOX_PIN_DIR ]]; then
			rm -rf -- "$SANDBOX_PIN_DIR" 2>/dev/null ||
				_sandbox_log "could not remove $SANDBOX_PIN_DIR"
		fi
	fi

	if [[ -n ${_SANDBOX_CGROUP_CREATED:-} ]]; then
		_sandbox_remove_cgroup && _SANDBOX_CGROUP_CREATED=
	fi

	# Whatever still runs inside our namespaces was started by this test.
	for ns in "${_SANDBOX_NETNS_CREATED[@]}"; do
		for ((i = 0; i < 30; i++)); do
			pids=$(ip netns pids "$ns" 2>/dev/null |
				grep -vx -e "$$" -e "${BASHPID:-$$}")
			[[ -z $pids ]] && break
			for pid in $pids; do
				if ((i < 20)); then
					_sandbox_kill TERM "$pid"
				else
					_sandbox_kill KILL "$pid"
				fi
			done
			sleep 0.1
		done
			ip netns del "$ns" 2>/dev/null || _sandbox_log "could not delete netns $ns"
	done
	_SANDBOX_NETNS_CREATED=()

	if [[ -n ${SANDBOX_DIR:-} && -d $SANDBOX_DIR &&
		$SANDBOX_DIR == */carwall-sbx-"$SANDBOX_NAME".* ]]; then
		rm -rf -- "$SANDBOX_DIR"
	fi

	SANDBOX_DIR=
	_SANDBOX_DESTROYING=
	_SANDBOX_ACTIVE=
	return 0
}

# sandbox_in_hu CMD...: runs CMD in the head-unit netns. nsenter (unlike `ip netns exec`)
# keeps this mount namespace, so /sys/fs/cgroup and /sys/fs/bpf stay visible.
sandbox_in_hu() {
	nsenter --net="/run/netns/$SANDBOX_HU_NETNS" -- "$@"
}

# sandbox_in_net CMD...: the same in the "internet" netns.
sandbox_in_net() {
	nsenter --net="/run/netns/$SANDBOX_NET_NETNS" -- "$@"
}

# sandbox_run_app APP CMD...: runs CMD in the head-unit netns as app APP, through
# `carwall run --app APP -- CMD...` (needs a running agent).
sandbox_run_app() {
	local app=$1
	shift
	sandbox_in_hu "$(_sandbox_carwall)" --run-dir "$SANDBOX_RUN_DIR" run --app "$app" -- "$@"
}

# sandbox_agent_start [extra carwalld args]: starts carwalld in the background and waits
# (bounded by SANDBOX_AGENT_TIMEOUT_MS, default 10000) until `carwall status` succeeds.
sandbox_agent_start() {
	local carwalld carwall i tries

	carwalld=$(_sandbox_carwalld)
	carwall=$(_sandbox_carwall)
	if [[ -z ${_SANDBOX_ACTIVE:-} ]]; then
		_sandbox_log "sandbox_agent_start: no sandbox (call sandbox_create first)"
		return 1
	fi
	if [[ -n ${SANDBOX_AGENT_PID:-} ]] && _sandbox_alive "$SANDBOX_AGENT_PID"; then
		_sandbox_log "agent already running (pid $SANDBOX_AGENT_PID)"
		return 1
	fi
	if [[ ! -x $carwalld || ! -x $carwall ]]; then
		_sandbox_log "carwalld/carwall not found or not executable: $carwalld $carwall"
		return 1
	fi

	# Plain policies (developer mode) unless the caller sets SANDBOX_DEVELOPER_MODE=0 and
	# passes the production options (--trust-dir, --target, --bundle-id) itself.
	local dev=()
	[[ ${SANDBOX_DEVELOPER_MODE:-1} == 1 ]] && dev=(--developer-mode)
	"$carwalld" "${dev[@]}" --policy "$SANDBOX_POLICY" --cgroup-root "$SANDBOX_CGROUP_ROOT" \
		--pin-dir "$SANDBOX_PIN_DIR" --run-dir "$SANDBOX_RUN_DIR" \
		--state-dir "$SANDBOX_STATE_DIR" "$@" </dev/null >>"$SANDBOX_DIR/agent.log" 2>&1 &
	SANDBOX_AGENT_PID=$!

	tries=$(((${SANDBOX_AGENT_TIMEOUT_MS:-10000} + 49) / 50))
	for ((i = 0; i < tries; i++)); do
		if timeout 2 "$carwall" --run-dir "$SANDBOX_RUN_DIR" status >/dev/null 2>&1; then
			return 0
		fi
		_sandbox_alive "$SANDBOX_AGENT_PID" || break
		sleep 0.05
	done
	if _sandbox_alive "$SANDBOX_AGENT_PID"; then
		_sandbox_log "agent (pid $SANDBOX_AGENT_PID) not ready; its log:"
	else
		_sandbox_log "agent (pid $SANDBOX_AGENT_PID) exited early; its log:"
	fi
	sed 's/^/  /' "$SANDBOX_DIR/agent.log" >&2 2>/dev/null || true
	return 1
}

# sandbox_agent_stop: SIGTERM, bounded wait (SIGKILL after 5s). Returns the agent's exit
# status (0 after a clean shutdown, 137 if it had to be killed).
sandbox_agent_stop() {
	local rc=0

	[[ -n ${SANDBOX_AGENT_PID:-} ]] || return 0
	_sandbox_stop_pid "$SANDBOX_AGENT_PID" 50 || rc=$?
	SANDBOX_AGENT_PID=
	return "$rc"
}

# sandbox_agent_kill: SIGKILL (a crash, as far as the agent can tell), then reaps it.
sandbox_agent_kill() {
	local i

	[[ -n ${SANDBOX_AGENT_PID:-} ]] || return 0
	disown "$SANDBOX_AGENT_PID" 2>/dev/null || true # no "Killed" notice from bash
	kill -KILL "$SANDBOX_AGENT_PID" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		_sandbox_alive "$SANDBOX_AGENT_PID" || break
		sleep 0.1
	done
	wait "$SANDBOX_AGENT_PID" 2>/dev/null || true
	SANDBOX_AGENT_PID=
	return 0
}

# sandbox_server_saw PROTO PORT TOKEN [PEERADDR]: 0 if the server logged that flow.
sandbox_server_saw() {
	[[ -n ${SANDBOX_SERVER_LOG:-} && -f $SANDBOX_SERVER_LOG ]] || return 1
	awk -v proto="$1" -v port="$2" -v token="$3" -v peer="${4:-}" '
		$1 == proto && $2 == port && $4 == token && (peer == "" || $3 == peer) { found = 1 }
		END { exit !found }' "$SANDBOX_SERVER_LOG"
}

# sandbox_server_saw_token TOKEN: 0 if the server logged TOKEN on any protocol, port or peer
# (for refusals: nothing with that token arrived anywhere).
sandbox_server_saw_token() {
	[[ -n ${SANDBOX_SERVER_LOG:-} && -f $SANDBOX_SERVER_LOG ]] || return 1
	awk -v token="$1" '$4 == token { found = 1 } END { exit !found }' "$SANDBOX_SERVER_LOG"
}

# sandbox_refused OUTPUT STAGE: 0 if flowprobe's OUTPUT holds its result line for EPERM at
# STAGE (socket, connect, send), the refusal carwall's programs give; a time-out, another
# errno or a usage error is not a refusal.
sandbox_refused() {
	grep -qE "^result=EPERM stage=$2 " <<<"$1"
}

# sandbox_hold_marker PID TOKEN N [TENTHS]: makes `flowprobe hold` (PID) send its Nth marker
# line and waits (bounded, default 2 s) until the server logged "TOKEN-markerN": the held flow
# still delivers data sent now. Returns 1 if it never arrived.
sandbox_hold_marker() {
	local pid=$1 token=$2 n=$3 tenths=${4:-20} i

	kill -USR1 "$pid" 2>/dev/null || return 1
	for ((i = 0; i < tenths * 2; i++)); do
		sandbox_server_saw_token "$token-marker$n" && return 0
		sleep 0.05
	done
	return 1
}

# sandbox_net_counter FILE NAME: a counter of the "internet" namespace's kernel, from
# /proc/net/snmp ("Icmp InEchos": FILE snmp, NAME Icmp:InEchos) or /proc/net/snmp6 (FILE
# snmp6, NAME Icmp6InEchos). Prints the number.
sandbox_net_counter() {
	if [[ $1 == snmp ]]; then
		sandbox_in_net cat /proc/net/snmp | awk -v want="$2" '
			{ split(want, w, ":") }
			$1 == w[1] ":" && !hdr { for (i = 2; i <= NF; i++) col[$i] = i; hdr = 1; next }
			$1 == w[1] ":" && hdr { print $(col[w[2]]); exit }'
	else
		sandbox_in_net cat /proc/net/snmp6 | awk -v want="$2" '$1 == want { print $2; exit }'
	fi
}

# sandbox_judge OUTPUT TOKEN MODE PORT: the verdict on one flowprobe flow, at both ends. Prints
# "ok" and returns 0 when the echo came back and the server logged TOKEN on PORT; "EPERM" and
# 1 when it was refused at the stage carwall's hook judges a MODE flow (send for udp, connect
# for tcp and udp-connect) and TOKEN is nowhere in the server's log; otherwise "other(OUTPUT)"
# and 2 (a time-out, another errno, a usage error: no refusal).
sandbox_judge() {
	local out=$1 token=$2 mode=$3 port=$4 stage=connect proto=tcp

	[[ $mode == udp ]] && stage=send
	[[ $mode == udp* ]] && proto=udp
	if [[ $out == *"result=ok stage=recv "* ]] && sandbox_server_saw "$proto" "$port" "$token"; then
		echo ok
		return 0
	fi
	if sandbox_refused "$out" "$stage" && ! sandbox_server_saw_token "$token"; then
		echo EPERM
		return 1
	fi
	echo "other(${out//$'\n'/ })"
	return 2
}

# sandbox_app_flow APP MODE ADDR PORT [FLOWPROBE OPTIONS...]: one flow as app APP (through
# `carwall run`) with a fresh token, judged by sandbox_judge (prints the verdict, 0/1/2).
sandbox_app_flow() {
	local app=$1 mode=$2 addr=$3 port=$4 token out
	shift 4
	token="j$BASHPID-${EPOCHREALTIME/./}"
	out=$(sandbox_run_app "$app" "$SANDBOX_FLOWPROBE" "$mode" "$addr" "$port" --token "$token" \
		"$@" 2>&1)
	sandbox_judge "$out" "$token" "$mode" "$port"
}
