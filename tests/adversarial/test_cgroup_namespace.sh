#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The agent refuses a cgroup hierarchy whose paths are not the kernel's (issue 11, case 9). App
# cgroups are found by their level in the hierarchy (bpf_get_current_ancestor_cgroup_id()),
# which the agent computes from paths below the cgroup2 mount: inside a cgroup namespace, or on
# a bind-mounted subtree of the hierarchy, those levels are wrong and every app would be
# silently unmanaged. carwalld must refuse to start, say why, and attach nothing.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

if ! command -v unshare >/dev/null; then
	tap_skip "carwalld in a cgroup namespace or on a bind-mounted subtree" "unshare is missing"
	tap_done
	exit
fi
sandbox_create "cw-ns$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
cp "$top/policies/demo.yaml" "$SANDBOX_DIR/policy.yaml"
export SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
export CG2=$SANDBOX_CGROUP2
ns_cg=$SANDBOX_CGROUP_ROOT/ns
bind_cg=$SANDBOX_CGROUP_ROOT/bind
mkdir "$ns_cg" "$bind_cg"

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }

# The agent's command line (its cgroup root is the cgroup2 mount it finds, the default).
agent_cmd='exec "$CARWALLD" --developer-mode --policy "$SANDBOX_POLICY" --pin-dir "$SANDBOX_PIN_DIR" --run-dir "$SANDBOX_RUN_DIR" --state-dir "$SANDBOX_STATE_DIR"'

# run_agent NAME SCRIPT: starts SCRIPT (which execs the agent) in the background and waits
# (bounded, 10 s) until it exits or answers. Sets AGENT_RC (its exit code, or "running"),
# AGENT_LOG. An agent that runs is stopped and its pins removed.
run_agent() {
	local name=$1 script=$2 pid i
	AGENT_LOG=$SANDBOX_DIR/agent-$name.log
	bash -c "$script" >"$AGENT_LOG" 2>&1 </dev/null &
	pid=$!
	AGENT_RC=running
	for ((i = 0; i < 100; i++)); do
		if ! _sandbox_alive "$pid"; then
			wait "$pid"
			AGENT_RC=$?
			return
		fi
		timeout 2 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status >/dev/null 2>&1 && break
		sleep 0.1
	done
	_sandbox_stop_pid "$pid" 50
	cw unload >/dev/null 2>&1
}

# expect_refused NAME WHY: the agent exited non-zero, its log names WHY, nothing is attached.
expect_refused() {
	local attached
	attached=$(cw --json status 2>/dev/null | awk -F': *' '/"links_attached"/ { gsub(/[ ,]/, "", $2); print $2 }')
	if [[ $AGENT_RC != running && $AGENT_RC != 0 ]] && grep -q "Refusing to start: .*$2" "$AGENT_LOG" &&
		[[ ${attached:-0} == 0 ]]; then
		tap_ok "$1"
	else
		tap_not_ok "$1" "agent: $AGENT_RC, links attached: ${attached:-none}" "$(cat "$AGENT_LOG")"
	fi
}

# ---- control: the same agent in the initial namespaces starts --------------------------------
run_agent control "$agent_cmd --cgroup-root '$ns_cg'"
if [[ $AGENT_RC == running ]]; then
	tap_ok "control: in the initial cgroup namespace the agent starts"
else
	tap_not_ok "control: in the initial cgroup namespace the agent starts" "exit $AGENT_RC" "$(cat "$AGENT_LOG")"
fi

# ---- a cgroup namespace rooted at a sandbox cgroup, with cgroup2 mounted from inside it ------
run_agent cgroupns "echo \$\$ > '$ns_cg/cgroup.procs' && exec unshare --cgroup --mount --propagation private bash -c 'umount -l \"\$CG2\" && mount -t cgroup2 cgroup2 \"\$CG2\" && $agent_cmd'"
expect_refused "in a cgroup namespace the agent refuses to start, says why, attaches nothing" \
	"cgroup namespace"

# ---- a subtree of the hierarchy bind-mounted over the cgroup2 mount point --------------------
run_agent bind "exec unshare --mount --propagation private bash -c 'mount --bind \"$bind_cg\" \"\$CG2\" && $agent_cmd'"
expect_refused "on a bind-mounted subtree the agent refuses to start, says why, attaches nothing" \
	"bind mount"

tap_done
