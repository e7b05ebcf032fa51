#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Another agent's programs rewrite destinations on the hooks test_redirect.sh leaves out
# (tests/adversarial/rewrite.bpf.c): connect6 (TCP to the OEM backend over IPv6 becomes the
# tracker's port 9000), sendmsg4 and sendmsg6 (UDP datagrams to the OEM backend's port 9000
# become datagrams to the tracker's port 514). Below carwall's attach point they run first and
# carwall judges the rewritten destination: EPERM at connect or send. At carwall's attach point,
# after carwall's programs, they run last: the socket hook judged the old destination, but the
# egress backstop judges the packet's real one (a UDP send fails with EPERM, a TCP SYN is
# dropped), nothing reaches the tracker and the egress hook reports it.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/adversary.sh"
. "$top/tests/lib/cgroups.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=$top/tests/integration/flows.yaml

trap adversary_cleanup EXIT # runs first; sandbox_create chains its own cleanup after it
sandbox_create "cw-w$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"

adversary_load rewrite connect6 sendmsg4 sendmsg6 ||
	{ tap_bail_out "cannot load the adversary programs $ADVERSARY"; exit 1; }

n=0
# flow MODE ADDR PORT: the app sends to the OEM backend; sets OUT, TOKEN.
flow() {
	n=$((n + 1))
	TOKEN="rw$$-$n"
	OUT=$(in_cgroup "$app_cg" "$FLOWPROBE" "$1" "$2" "$3" --token "$TOKEN" --timeout-ms 1500 2>&1)
}
# WHAT|MODE|ADDR|PORT|REWRITTEN PROTO PORT|TRACKER
cases=(
	"connect6, TCP over IPv6|tcp|2001:db8:51::20|443|tcp 9000|2001:db8:bad::7"
	"sendmsg4, UDP over IPv4|udp|198.51.100.20|9000|udp 514|203.0.113.7"
	"sendmsg6, UDP over IPv6|udp|2001:db8:51::20|9000|udp 514|2001:db8:bad::7"
)

# ---- control, no carwall: the rewrite sends the app to the tracker -----------------------------
adversary_attach "$app_cg" || { tap_bail_out "cannot attach the adversary programs"; exit 1; }
for c in "${cases[@]}"; do
	IFS='|' read -r what mode addr port rewritten tracker <<<"$c"
	flow "$mode" "$addr" "$port"
	# shellcheck disable=SC2086 # "PROTO PORT"
	tap_check "control, no carwall ($what): the rewritten flow reaches the tracker's $rewritten" \
		sandbox_server_saw $rewritten "$TOKEN"
	((TAP_LAST_OK)) || tap_diag "$OUT"
done

# ---- below carwall's attach point: they run first, carwall judges the rewritten destination -----
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
nothing_arrived() { ! sandbox_server_saw_token "$TOKEN"; }
for c in "${cases[@]}"; do
	IFS='|' read -r what mode addr port rewritten tracker <<<"$c"
	flow "$mode" "$addr" "$port"
	stage=connect
	[[ $mode == udp ]] && stage=send
	refused() { sandbox_refused "$OUT" "$stage" && nothing_arrived; }
	tap_check "rewrite below carwall ($what): EPERM at $stage, nothing reaches the tracker" refused
	((TAP_LAST_OK)) || tap_diag "$OUT"
done

# ---- at carwall's attach point, after carwall's programs: they run last ------------------------
adversary_detach
adversary_attach "$SANDBOX_CGROUP_ROOT" ||
	{ tap_bail_out "cannot attach the adversary programs"; exit 1; }
for c in "${cases[@]}"; do
	IFS='|' read -r what mode addr port rewritten tracker <<<"$c"
	flow "$mode" "$addr" "$port"
	if [[ $mode == udp ]]; then
		# The datagram is dropped at egress; sendmsg() returns its EPERM.
		stopped() { sandbox_refused "$OUT" send && nothing_arrived; }
		name="rewrite after carwall ($what): the egress backstop refuses the datagram (EPERM at send)"
	else
		# connect() was allowed by the hook; the SYN is dropped at egress: it times out.
		stopped() { [[ $OUT == *"result=ETIMEDOUT stage=connect "* ]] && nothing_arrived; }
		name="rewrite after carwall ($what): the egress backstop drops the SYN (connect times out)"
	fi
	tap_check "$name, nothing reaches the tracker" stopped
	((TAP_LAST_OK)) || tap_diag "$OUT"
	reported() {
		"$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json |
			grep -q "\"dst\":\"$tracker\",\"port\":${rewritten#* },\"hook\":\"skb_egress\""
	}
	tap_check "rewrite after carwall ($what): the egress hook reports the tracker" reported
done

# Without the adversary the same flows reach the OEM backend again.
adversary_detach
for c in "${cases[@]}"; do
	IFS='|' read -r what mode addr port rewritten tracker <<<"$c"
	flow "$mode" "$addr" "$port"
	arrived() { [[ $(sandbox_judge "$OUT" "$TOKEN" "$mode" "$port") == ok ]]; }
	tap_check "without the rewrite ($what): the app reaches its OEM backend" arrived
	((TAP_LAST_OK)) || tap_diag "$OUT"
done

tap_done
