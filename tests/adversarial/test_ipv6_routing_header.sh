#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# An IPv6 routing header refused at egress (bpf/skb.bpf.c). An app may set one on its own TCP or
# UDP socket (IPV6_RTHDR, a segment routing header): the socket hooks judge the destination it
# connects or sends to, the egress program the packet's IPv6 destination, yet the header sends
# the packet on through other addresses. Here the app sends to the OEM backend it may reach
# (2001:db8:51::20) through the tracker (2001:db8:bad::7): the packet's destination and its
# final one are the OEM backend, only the routing header names the tracker.
# Control: with segment routing on in the "internet", the flow goes through the tracker and
# reaches the server. Under carwall: the same flow without the header goes through, with it
# the packets never leave (EPERM at send for UDP; TCP's connect times out, its SYN dropped) and
# the refusal is reported by the egress hook.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=$top/tests/integration/flows.yaml

sandbox_create "cw-h$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }

oem=2001:db8:51::20 tracker=2001:db8:bad::7
via="--srh $oem,$tracker" # first the OEM backend, then the tracker, then the destination

# Segment routing in the "internet" namespace: each segment is one of its own addresses.
for conf in all default net0 lo; do
	sandbox_in_net sysctl -qw "net.ipv6.conf.$conf.seg6_enabled=1" ||
		{ tap_bail_out "cannot enable segment routing (net.ipv6.conf.$conf.seg6_enabled)"; exit 1; }
done

n=0
# flow APP MODE PORT [FLOWPROBE OPTIONS]: one flow to the OEM backend ("-": no app, no carwall
# run); prints its verdict from sandbox_judge, sets OUT and TOKEN.
flow() {
	local app=$1 mode=$2 port=$3
	shift 3
	n=$((n + 1))
	TOKEN="rh$$-$n"
	if [[ $app == - ]]; then
		OUT=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$oem" "$port" --token "$TOKEN" \
			--timeout-ms 1500 "$@" 2>&1)
	else
		OUT=$(sandbox_run_app "$app" "$FLOWPROBE" "$mode" "$oem" "$port" --token "$TOKEN" \
			--timeout-ms 1500 "$@" 2>&1)
	fi
}
completed() { [[ $(sandbox_judge "$OUT" "$TOKEN" "$1" "$2") == ok ]]; }
nothing_arrived() { ! sandbox_server_saw_token "$TOKEN"; }

# ---- control: without carwall the routing header works ----------------------------------------
# shellcheck disable=SC2086 # $via is two words
for m in "udp 9000" "udp-connect 9000" "tcp 443"; do
	read -r mode port <<<"$m"
	flow - "$mode" "$port" $via
	tap_check "control, no carwall: $mode to the OEM backend through the tracker (routing header) arrives" \
		completed "$mode" "$port"
	((TAP_LAST_OK)) || tap_diag "$OUT"
done

# ---- with carwall -------------------------------------------------------------------------------
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
for m in "udp 9000" "udp-connect 9000" "tcp 443"; do
	read -r mode port <<<"$m"
	flow mediaplayer "$mode" "$port"
	tap_check "control, carwall: the app's $mode to the OEM backend without a routing header arrives" \
		completed "$mode" "$port"
	((TAP_LAST_OK)) || tap_diag "$OUT"
done

# UDP: the sendmsg/connect hooks allow the OEM backend; the egress program refuses the packet,
# and sendmsg() returns its EPERM.
for mode in udp udp-connect; do
	# shellcheck disable=SC2086
	flow mediaplayer "$mode" 9000 $via
	refused() { sandbox_refused "$OUT" send && nothing_arrived; }
	tap_check "$mode with a routing header through the tracker: EPERM at send, nothing arrives" refused
	((TAP_LAST_OK)) || tap_diag "$OUT"
done
# TCP: connect() was allowed by the connect6 hook, so it cannot fail with EPERM; the SYN is
# dropped at egress (TCP ignores the EPERM of a dropped SYN) and the connect times out.
# shellcheck disable=SC2086
flow mediaplayer tcp 443 $via
syn_dropped() { [[ $OUT == *"result=ETIMEDOUT stage=connect "* ]] && nothing_arrived; }
tap_check "tcp with a routing header through the tracker: the SYN never leaves, nothing arrives" \
	syn_dropped
((TAP_LAST_OK)) || tap_diag "$OUT"

# Reported by the egress hook as a form it cannot judge (deny-family, no transport port): the
# records of that flow (repeats are folded into counted records, flushed within seconds) count
# every refused packet, the two UDP datagrams and at least the first SYN.
reported_count() {
	"$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json |
		grep "\"dst\":\"$oem\",\"port\":0,\"hook\":\"skb_egress\",\"verdict\":\"deny-family\"" |
		sed -n 's/.*"count":\([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n + 0 }'
}
for ((i = 0; i < 200; i++)); do
	(($(reported_count) >= 3)) && break
	sleep 0.05
done
n_reported=$(reported_count)
tap_check "the refused packets are reported by the egress hook (count $n_reported, at least 3)" \
	test "$n_reported" -ge 3

tap_done
