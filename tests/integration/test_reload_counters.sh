#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A policy's per-rule counters start at zero when it goes in force, whichever generation it is
# written into: the generation a reload writes held the policy before the last one, whose
# counts must not show as the new policy's (the agent zeroes them once that generation is no
# longer used, in the background, or at the reload when that could not be done). Each count is
# checked against the flows made: allowed TCP flows the server saw, counted once each.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

sandbox_create "cw-rc$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"

# policy_rev N: the same rules, a comment that makes each revision another file.
policy_rev() {
	cat <<EOF2
# revision $1
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
      - to: [198.51.100.80]
        ports: [8443]
        proto: tcp
  navigation:
    allow:
      - to: [198.51.100.30]
        ports: [443]
        proto: tcp
EOF2
}

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }

# flows N: N allowed TCP flows to the OEM backend from the app, each seen by the server.
flows() {
	local i out token
	for ((i = 0; i < $1; i++)); do
		token="c$BASHPID-$i-${EPOCHREALTIME/./}"
		out=$(sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
			"$FLOWPROBE" tcp 198.51.100.20 443 --timeout-ms 2000 --token "$token" 2>&1)
		[[ $(sandbox_judge "$out" "$token" tcp 443) == ok ]] || return 1
	done
}

# hits: the allowed count of the app's first rule (198.51.100.20:443) in carwall stats.
hits() {
	cw --json stats | python3 -c '
import json, sys
rules = [r for r in json.load(sys.stdin)["rules"] if r["app"] == "mediaplayer" and r["rule"] == 0]
print(rules[0]["allowed"] if rules else "none")'
}

# expect_hits NAME N: the first rule's count is N (bounded wait: the kernel counts as it decides).
expect_hits() {
	local got i
	for ((i = 0; i < 20; i++)); do
		got=$(hits)
		[[ $got == "$2" ]] && break
		sleep 0.05
	done
	if [[ $got == "$2" ]]; then tap_ok "$1"; else tap_not_ok "$1" "allowed $got, want $2"; fi
}

tap_check "control, no enforcement: the app reaches the OEM backend" flows 1

rev=0
policy_rev $rev >"$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_check "policy in force: 3 allowed flows reach the server" flows 3
expect_hits "the first policy's rule counted the 3 flows" 3
for ((k = 1; k <= 4; k++)); do
	rev=$((rev + 1))
	policy_rev $rev >"$policy.new"
	mv "$policy.new" "$policy"
	tap_check "reload $k succeeds" cw reload
	expect_hits "reload $k: the rule's count starts at zero (the generation held counts before)" 0
	tap_check "reload $k: $k allowed flows reach the server" flows "$k"
	expect_hits "reload $k: the rule counted exactly those $k flows" "$k"
done

# A new app cgroup: the agent registers it by writing the same policy into the other generation,
# whose rule counters held the policy's counts before; the counts since load go on.
generation() { cw --json stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])'; }
nav_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@navigation.service"
nav_registered() {
	mkdir "$nav_cg" &&
		sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$nav_cg" \
			"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --json app wait-managed --timeout 10 |
		grep -q '"app":"navigation"'
}
gen0=$(generation)
tap_check "registration: a new navigation cgroup is registered" nav_registered
tap_expect_exit "registration: the policy was written into the other generation" 0 \
	test "$gen0" != "$(generation)"
expect_hits "registration: the rule's count since load goes on ($((k - 1)) flows before it)" "$((k - 1))"
tap_check "registration: 2 more allowed flows reach the server" flows 2
expect_hits "registration: the rule counted those too" "$((k + 1))"
for ((r = 0; r < 2; r++)); do
	rmdir "$nav_cg" 2>/dev/null
	tap_check "registration $((r + 2)): navigation's cgroup, made again, is registered" nav_registered
done
expect_hits "after 3 registrations the rule's count is still exact" "$((k + 1))"
sandbox_agent_stop
tap_done
