#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `carwall stats` right after a registration of app cgroups (the policy in force written into the
# other generation, a flip): the agent's thread that waits for the grace period after the flip,
# then adds the rule counts of the generation left to the policy's and zeroes them, is never
# waited for by stats. The thread is held before it runs (tests/integration/thread_hold.c,
# ptrace: no hook in the agent): stats and status still answer, and each rule count read at
# once, with the thread held, let go or done, is exactly the allowed flows the server saw since
# the policy was loaded, none lost, none counted twice.
#
# Environment: CARWALL_BIN_DIR (default build/).
# shellcheck disable=SC2016 # the sh -c scripts expand their own arguments
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
HOLD=$bin/thread_hold

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox
sandbox_create "cw-sf$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
out=$SANDBOX_DIR/flip
mkdir -p "$out"
apps_dir="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice"
app_cg="$apps_dir/agl-app@mediaplayer.service"
mkdir -p "$app_cg"

# Each registration makes the cgroup of another app (none is removed: a removal is a flip too).
cat >"$SANDBOX_POLICY" <<'EOF'
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
  navigation:
    allow:
      - to: [198.51.100.30]
        ports: [443]
        proto: tcp
  hvac:
    allow:
      - to: [198.51.100.31]
        ports: [443]
        proto: tcp
  radio:
    allow:
      - to: [198.51.100.32]
        ports: [443]
        proto: tcp
EOF

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }

# flows N: N allowed TCP flows from the media player to 198.51.100.20:443, each seen by the server.
sent=0
flows() {
	local i out token
	for ((i = 0; i < $1; i++)); do
		token="sf$$-$sent"
		out=$(sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
			"$FLOWPROBE" tcp 198.51.100.20 443 --timeout-ms 2000 --token "$token" 2>&1)
		[[ $(sandbox_judge "$out" "$token" tcp 443) == ok ]] || return 1
		sent=$((sent + 1))
	done
}

# hits: the allowed count of the media player's rule in one `carwall stats` (5 s at most: a stats
# that waits for the held thread never answers), "none" without an answer.
hits() {
	timeout 5 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --json stats 2>/dev/null | python3 -c '
import json, sys
try:
    rules = [r for r in json.load(sys.stdin)["rules"] if r["app"] == "mediaplayer"]
    print(rules[0]["allowed"])
except Exception:
    print("none")'
}

# expect_hits_now NAME N [READS]: READS (default 1) stats read one after the other, no wait
# between: each gives N.
expect_hits_now() {
	local got all=() i bad=0
	for ((i = 0; i < ${3:-1}; i++)); do
		got=$(hits)
		all+=("$got")
		[[ $got == "$2" ]] || bad=$((bad + 1))
	done
	if ((bad == 0)); then
		tap_ok "$1"
	else
		tap_not_ok "$1" "allowed: ${all[*]}; want $2 in each"
	fi
}

generation() { timeout 5 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --json stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])'; }

# register APP: APP's cgroup is made and the agent registers it (a flip), as an AGL unit waits
# for it (ExecStartPre=carwall app wait-managed).
register() {
	local cg="$apps_dir/agl-app@$1.service"
	mkdir "$cg" &&
		sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" \
			"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --json app wait-managed --timeout 10 |
		grep -q "\"app\":\"$1\""
}

# wait_line FILE REGEX: bounded (5 s) until a line of FILE matches.
wait_line() {
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

tap_check "control, no enforcement: the media player reaches the backend" flows 1
sent=0

# No inventory save (a thread of its own) while the test holds the agent's next thread.
sandbox_agent_start --inventory-save-interval 3600 || { tap_bail_out "carwalld did not start"; exit 1; }
tap_check "policy in force: 3 allowed flows reach the server" flows 3
expect_hits_now "the rule counted the 3 flows" "$sent"

# ---- a registration, stats read at once, whether the thread is done or not ----------------------
gen0=$(generation)
tap_check "registration 1: navigation's new cgroup is registered" register navigation
tap_expect_exit "registration 1: the policy was written into the other generation" 0 \
	test "$gen0" != "$(generation)"
expect_hits_now "registration 1: 5 stats read at once give the count since load, $sent" "$sent" 5

# ---- the thread held before it runs: the generation left is neither added nor zeroed ----------
"$HOLD" "$SANDBOX_AGENT_PID" 20000 >"$out/hold.out" 2>&1 &
PIDS[hold]=$!
tap_check "hold: the agent is traced" wait_line "$out/hold.out" '^attached$'
gen1=$(generation)
tap_check "registration 2: hvac's new cgroup is registered" register hvac
tap_check "registration 2: the thread the flip started is held" wait_line "$out/hold.out" '^held '
expect_hits_now "held: stats answers at once with the count since load, $sent" "$sent"
tap_check "held: status answers" timeout 5 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status
tap_expect_exit "registration 2: the policy was written into the other generation" 0 \
	test "$gen1" != "$(generation)"
tap_check "held: 2 more allowed flows reach the server" flows 2
expect_hits_now "held: the rule counted them too: $sent" "$sent" 3
kill -USR1 "${PIDS[hold]}"
expect_hits_now "let go: 10 stats read at once while the thread adds and zeroes: $sent in each" \
	"$sent" 10
tap_expect_exit "let go: the thread was held until told" 0 procs_wait hold
tap_check "let go: the hold ended with the thread released" grep -qx released "$out/hold.out"
expect_hits_now "let go: the count since load is still $sent" "$sent"

# ---- one more registration: the carried counts go on -----------------------------------------
tap_check "registration 3: radio's new cgroup is registered" register radio
expect_hits_now "registration 3: 5 stats read at once give $sent" "$sent" 5
tap_check "registration 3: 1 more allowed flow reaches the server" flows 1
expect_hits_now "registration 3: the rule counted it: $sent" "$sent"
tap_check "the agent stops cleanly" sandbox_agent_stop
tap_done
