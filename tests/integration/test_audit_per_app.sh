#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Per-app audit mode, in the kernel: one app of a policy in audit mode (`audit: true` in the
# app), another enforced. The audited app's flows that no rule allows go out, over TCP and UDP,
# IPv4 and IPv6, through the socket hooks and the egress program alike, and each is reported
# and counted as audited; the enforced app's same flows are refused (EPERM at the hook's stage,
# nothing at the server) and reported as refused. Then, after a reload, an app's own
# `audit: false` wins over a top-level `audit: true`, which the other app follows.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

sandbox_create "cw-u$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
# audit_policy MEDIAPLAYER_AUDIT: navigation enforced; mediaplayer's audit as given.
audit_policy() {
	cat <<EOF
version: 1
apps:
  mediaplayer:
    audit: $1
    allow:
      - to: [198.51.100.20, 2001:db8:51::20]
        ports: [443]
        proto: tcp
  navigation:
    allow:
      - to: [198.51.100.80]
        ports: [8443]
        proto: tcp
EOF
}
audit_policy true >"$policy"

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
events() { "$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json; }
# app_stat APP FIELD: since_load FIELD of APP in carwall stats --json.
app_stat() {
	cw --json stats | tr -d ' \n' | grep -o "\"id\":\"$1\",\"since_load\":{[^}]*}" |
		grep -o "\"$2\":[0-9]*" | cut -d: -f2
}

# MODE|ADDR|PORT: flows no rule of either app allows.
flows=(
	"tcp|203.0.113.7|443"
	"tcp|2001:db8:bad::7|443"
	"udp|203.0.113.7|514"
	"udp|2001:db8:bad::7|514"
	"udp-connect|203.0.113.7|9000"
)

# ---- control: without carwall every flow reaches the tracker -----------------------------------
for f in "${flows[@]}"; do
	IFS='|' read -r mode addr port <<<"$f"
	tok="ctl$$-$mode-$port-${addr//:/_}"
	out=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$tok" 2>&1)
	tap_check "control, no carwall: $mode to $addr port $port reaches the tracker" \
		test "$(sandbox_judge "$out" "$tok" "$mode" "$port")" = ok
done

sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_check "status marks the audited app" bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' status | grep -q 'mediaplayer.*(audit mode)'"
tap_check "status does not mark the enforced app" bash -c "! '$CARWALL' --run-dir '$SANDBOX_RUN_DIR' status | grep -q 'navigation.*(audit mode)'"

# ---- the audited app's flows go out; the enforced app's are refused ----------------------------
for f in "${flows[@]}"; do
	IFS='|' read -r mode addr port <<<"$f"
	tap_expect_exit "audit mode: mediaplayer's $mode to $addr port $port goes out and completes" 0 \
		sandbox_app_flow mediaplayer "$mode" "$addr" "$port"
	tap_expect_exit "enforced: navigation's $mode to $addr port $port is refused, nothing arrives" 1 \
		sandbox_app_flow navigation "$mode" "$addr" "$port"
done
# The allowed flows are not reported at all.
tap_expect_exit "audit mode: mediaplayer's allowed flow completes" 0 \
	sandbox_app_flow mediaplayer tcp 198.51.100.20 443

wait_records() { # N: bounded wait until the events log holds N records
	local i
	for ((i = 0; i < 100; i++)); do
		(($(events | wc -l) >= $1)) && return 0
		sleep 0.05
	done
	return 1
}
n=${#flows[@]}
tap_check "one event per flow no rule allows: $((2 * n)) in all" wait_records $((2 * n))
sleep 0.2
log=$(events)
tap_check "exactly $((2 * n)) events: none for the allowed flow" test "$(wc -l <<<"$log")" -eq $((2 * n))
count() { grep -c "$1" <<<"$log"; }
tap_check "mediaplayer's $n flows are reported as audited" \
	test "$(count '"event":"audit","app":"mediaplayer"')" -eq "$n"
tap_check "navigation's $n flows are reported as refused" \
	test "$(count '"event":"refused","app":"navigation"')" -eq "$n"
tap_check "no flow of mediaplayer is reported as refused, none of navigation as audited" \
	test "$(count '"event":"refused","app":"mediaplayer"')" -eq 0 \
	-a "$(count '"event":"audit","app":"navigation"')" -eq 0
tap_check "counters: mediaplayer audited $n, refused 0, allowed 1" \
	test "$(app_stat mediaplayer audited) $(app_stat mediaplayer refused) $(app_stat mediaplayer allowed)" = "$n 0 1"
tap_check "counters: navigation refused $n, audited 0" \
	test "$(app_stat navigation refused) $(app_stat navigation audited)" = "$n 0"

# ---- an app's own audit: false wins over the top-level audit: true -----------------------------
{
	printf 'version: 1\naudit: true\n'
	audit_policy false | sed '1d'
} >"$SANDBOX_DIR/top.tmp"
mv "$SANDBOX_DIR/top.tmp" "$policy"
tap_check "reload: top-level audit, mediaplayer's own audit: false" cw reload
tap_expect_exit "mediaplayer (audit: false) is refused again under a top-level audit: true" 1 \
	sandbox_app_flow mediaplayer tcp 203.0.113.7 443
tap_expect_exit "navigation (no audit key) follows the top-level audit: its flow goes out" 0 \
	sandbox_app_flow navigation tcp 203.0.113.7 443

tap_done
