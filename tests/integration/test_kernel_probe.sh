#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The agent's start-up probe (userspace/agent/loader.c loader_probe): on a kernel that lacks what
# carwall needs it refuses to start, names the missing feature, and attaches nothing. The
# missing feature is simulated: a cgroup root that is no cgroup2 file system, and, through
# tests/integration/kernel_hide.c (LD_PRELOAD), a bpf() that fails as a kernel without one
# program type, map type or helper would. Control: with the library preloaded but nothing
# hidden, the same agent starts and enforces.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=$top/tests/integration/flows.yaml
hide=$bin/tests/kernel_hide.so

sandbox_create "cw-k$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }

# A statically linked agent cannot be given a preloaded library (and STATIC=1 builds none).
preload=1
if ! ldd "$CARWALLD" >/dev/null 2>&1; then
	preload=0
elif [[ ! -f $hide ]]; then
	tap_bail_out "$hide not built (make tests)"
	exit 1
fi
# The sanitized agent: its runtime must come first unless told not to check.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# refuses NAME EXPECTED_MESSAGE [ENV...] -- [CARWALLD OPTIONS]: the agent, started with ENV,
# must exit non-zero within 10 s, log "This kernel lacks what carwall needs: MESSAGE. Refusing
# to start." and leave no pin folder.
refuses() {
	local name=$1 msg=$2 envs=() out rc
	shift 2
	while (($#)) && [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	shift
	out=$(env "${envs[@]}" timeout 10 "$CARWALLD" --developer-mode --policy "$SANDBOX_POLICY" \
		--pin-dir "$SANDBOX_PIN_DIR" --run-dir "$SANDBOX_RUN_DIR" \
		--state-dir "$SANDBOX_STATE_DIR" --cgroup-root "$SANDBOX_CGROUP_ROOT" "$@" 2>&1)
	rc=$?
	if ((rc != 0 && rc != 124)) &&
		[[ $out == *"This kernel lacks what carwall needs: $msg. Refusing to start."* ]] &&
		[[ ! -e $SANDBOX_PIN_DIR ]]; then
		tap_ok "$name: the agent refuses to start, naming it, and attaches nothing"
	else
		tap_not_ok "$name: the agent refuses to start, naming it, and attaches nothing" \
			"exit $rc, pin folder $([[ -e $SANDBOX_PIN_DIR ]] && echo exists || echo absent)" "$out"
	fi
}

# ---- no cgroup v2 -------------------------------------------------------------------------------
mkdir -p "$SANDBOX_DIR/not-cgroup2"
refuses "no cgroup v2 at the cgroup root" \
	"cgroup v2 at $SANDBOX_DIR/not-cgroup2 (it is not a cgroup2 file system)" -- \
	--cgroup-root "$SANDBOX_DIR/not-cgroup2"

# ---- a bpf() without one program type, map type or helper -----------------------------------------
if ((preload)); then
	# Control: preloaded, nothing hidden: the agent starts and enforces.
	LD_PRELOAD=$hide sandbox_agent_start >/dev/null 2>&1
	started=$?
	tap_check "control: with the library preloaded and nothing hidden the agent starts" \
		test "$started" -eq 0
	tap_check "control: the library is loaded in the agent" \
		grep -q kernel_hide.so "/proc/${SANDBOX_AGENT_PID:-0}/maps"
	tap_expect_exit "control: and it enforces (the tracker refused)" 1 \
		sandbox_app_flow mediaplayer tcp 203.0.113.7 443
	sandbox_agent_stop
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" unload >/dev/null 2>&1
	tap_check "control: unloaded, no pin folder left" test ! -e "$SANDBOX_PIN_DIR"

	# FEATURE|MESSAGE
	features=(
		"prog:cgroup_sock_addr|BPF program type cgroup_sock_addr (CONFIG_CGROUP_BPF)"
		"prog:cgroup_sock|BPF program type cgroup_sock (CONFIG_CGROUP_BPF)"
		"prog:cgroup_skb|BPF program type cgroup_skb (CONFIG_CGROUP_BPF)"
		"map:ringbuf|BPF map type ringbuf (Linux 5.8)"
		"map:sk_storage|BPF map type sk_storage"
		"map:lpm_trie|BPF map type lpm_trie"
		"helper:get_current_ancestor_cgroup_id|BPF helper get_current_ancestor_cgroup_id for cgroup_sock_addr programs"
	)
	for f in "${features[@]}"; do
		IFS='|' read -r feature msg <<<"$f"
		refuses "a kernel without ${feature#*:}" "$msg" LD_PRELOAD="$hide" CW_HIDE="$feature" --
	done
else
	tap_skip "a kernel without a BPF program type, map type or helper" \
		"$CARWALLD is statically linked: no LD_PRELOAD"
fi

tap_done
