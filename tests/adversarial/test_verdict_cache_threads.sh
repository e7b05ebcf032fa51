#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The per-socket verdict cache under two threads (README: How it works). Both the socket hooks
# and the egress program cache their last verdict in the socket's storage, and two threads
# sending on one unconnected UDP socket write it at once. A torn cache, one thread's verdict
# with the other's destination, would let a refused datagram out ("may go" with the tracker's
# address) or refuse an allowed one (seen on the code before the cache was guarded: 2 to 5 of
# some 500k datagrams of a refused, in 3 runs of 5). The app's two threads, on one socket, as
# fast as they can (tests/adversarial/cache_race.c):
#   a  to the OEM maps server on UDP 9001, which the policy allows (nothing listens there: the
#      "internet" counts the datagrams as arriving to no port);
#   b  to the OEM backend on UDP 9000, which the policy allows too, but another agent's program
#      (tests/adversarial/rewrite.bpf.c), attached after carwall's, rewrites it to the
#      offshore tracker's UDP 514: the socket hook allowed it, the egress program must refuse
#      every one of them (EPERM), and caches that refusal next to a's "may go".
# Control step first: without carwall the rewritten datagrams reach the tracker. Then, with
# carwall, for IPv4 and IPv6: every datagram of a goes out, every datagram of b is refused with
# EPERM at send, and the tracker receives nothing of b.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/adversary.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
RACE=$bin/cache_race
[[ -x $RACE ]] || RACE=$top/build/cache_race
RACE_MS=8000       # per family: both threads send for this long...
RACE_MAX=3000000   # ...or this many datagrams each, whichever comes first
A_PORT=9001

trap adversary_cleanup EXIT # runs first; sandbox_create chains its own cleanup after it
sandbox_create "cw-cr$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
[[ -x $RACE ]] || { tap_bail_out "$RACE not found: build it with \`make tests\`"; exit 1; }
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
cat >"$SANDBOX_POLICY" <<EOF
version: 1
apps:
  mediaplayer:
    allow:
      - to: [$SANDBOX_OEM_V4, $SANDBOX_OEM_V6]
        ports: [9000]
        proto: udp
      - to: [$SANDBOX_MAPS_V4, $SANDBOX_MAPS_V6]
        ports: [$A_PORT]
        proto: udp
EOF

adversary_load rewrite sendmsg4 sendmsg6 ||
	{ tap_bail_out "cannot load the adversary programs $ADVERSARY"; exit 1; }

# no_ports FAMILY: the "internet"'s count of UDP datagrams that arrived to no port.
no_ports() {
	if [[ $1 == 4 ]]; then
		sandbox_net_counter snmp Udp:NoPorts
	else
		sandbox_net_counter snmp6 Udp6NoPorts
	fi
}
n=0
# race FAMILY MS MAX: the app's two threads; sets OUT, TOKEN, the counts and ARRIVED_A (datagrams
# the internet counted to no port meanwhile).
race() {
	local fam=$1 a b np0 np1 kv
	if [[ $fam == 4 ]]; then
		a=$SANDBOX_MAPS_V4 b=$SANDBOX_OEM_V4
	else
		a=$SANDBOX_MAPS_V6 b=$SANDBOX_OEM_V6
	fi
	n=$((n + 1))
	TOKEN="cr$$-$n"
	np0=$(no_ports "$fam")
	OUT=$(sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
		"$RACE" "$a" "$A_PORT" "$b" 9000 --token "$TOKEN" --ms "$2" --max "$3" 2>&1)
	np1=$(no_ports "$fam")
	ARRIVED_A=$((np1 - np0))
	a_sent=-1 a_eperm=-1 a_other=-1 b_sent=-1 b_eperm=-1 b_other=-1
	for kv in $OUT; do
		case $kv in
		[ab]_*=*) printf -v "${kv%%=*}" '%s' "${kv#*=}" ;;
		esac
	done
}
# tracker_saw_b: the tracker logged b's token (bounded wait: the server may lag on a loaded
# machine).
tracker_saw_b() {
	local i
	for ((i = 0; i < 30; i++)); do
		sandbox_server_saw udp 514 "$TOKEN-b" && return 0
		sleep 0.1
	done
	return 1
}

# ---- control, no carwall: the rewrite sends b's datagrams to the tracker -----------------------
adversary_attach "$SANDBOX_CGROUP_ROOT" ||
	{ tap_bail_out "cannot attach the adversary programs"; exit 1; }
for fam in 4 6; do
	race "$fam" 300 200
	sent() { ((a_sent > 0 && b_sent > 0 && a_eperm == 0 && b_eperm == 0)); }
	tap_check "control, no carwall, IPv$fam: both threads send ($OUT)" sent
	tap_check "control, no carwall, IPv$fam: the rewrite takes b's datagrams to the tracker" \
		tracker_saw_b
	((TAP_LAST_OK)) || tap_diag "$(tail -n 5 "$SANDBOX_SERVER_LOG")"
done

# ---- carwall first, the rewrite after it: the egress program is what refuses b -----------------
adversary_detach
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
adversary_attach "$SANDBOX_CGROUP_ROOT" ||
	{ tap_bail_out "cannot attach the adversary programs"; exit 1; }
for fam in 4 6; do
	race "$fam" "$RACE_MS" "$RACE_MAX"
	tap_diag "IPv$fam: $OUT; $ARRIVED_A datagrams arrived to no port"
	a_went() { ((a_sent > 0 && a_eperm == 0 && a_other == 0 && ARRIVED_A > 0)); }
	tap_check "IPv$fam, two threads on one socket: every datagram to the allowed server goes out" \
		a_went
	b_refused() { ((b_eperm > 0 && b_sent == 0 && b_other == 0)); }
	tap_check "IPv$fam, two threads on one socket: every rewritten datagram is refused (EPERM at send)" \
		b_refused
	nothing_arrived() { ! tracker_saw_b && ! sandbox_server_saw_token "$TOKEN-b"; }
	tap_check "IPv$fam, two threads on one socket: the tracker receives nothing" nothing_arrived
done

tap_done
