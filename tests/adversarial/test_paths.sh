#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# No way around it: other paths by which an app could reach a destination its policy refuses.
# Each is first shown to reach the destination without carwall, then to be stopped with it,
# checked at the receiving end where there is one.
#   - a TCP connection the app accepted, replying to a peer it may not reach
#   - an established connection made before carwall started
#   - a multicast datagram
#   - the unspecified address (0.0.0.0 and ::), which Linux sends to the local host
# (Raw, ping, UDP-Lite and MPTCP sockets, IPv4-mapped destinations and connected UDP are in
# tests/integration/test_flows.sh; a program that rewrites destinations in test_redirect.sh.)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"
. "$top/tests/lib/cgroups.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=$top/tests/integration/flows.yaml

sandbox_create "cw-p$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
svc_cg="$SANDBOX_CGROUP_ROOT/system.slice/local.service"
mkdir -p "$app_cg" "$svc_cg"

# Packets sent by the head unit's interface (its netns's own counters, not this sysfs's).
hu_tx() { sandbox_in_hu ip -s link show dev hu0 | awk '/TX:/ { getline; print $2; exit }'; }
contains() { [[ $1 == *"$2"* ]]; }

# The app listens on the head unit (port 7000); a local service listens on 7001.
in_cgroup "$app_cg" "$FLOWPROBE" serve --log "$SANDBOX_DIR/app-server.log" --tcp 7000 \
	>"$SANDBOX_DIR/app-server.out" 2>&1 &
in_cgroup "$svc_cg" "$FLOWPROBE" serve --log "$SANDBOX_DIR/local-server.log" --tcp 7001 \
	>"$SANDBOX_DIR/local-server.out" 2>&1 &
procs_wait_ready "$SANDBOX_DIR/app-server.out" && procs_wait_ready "$SANDBOX_DIR/local-server.out" ||
	{ tap_bail_out "the head unit's servers did not start"; exit 1; }

# An established stream from the app to the tracker, opened before carwall starts.
# Held long enough to outlast the control steps and the agent's start even under emulation;
# the sandbox's cleanup ends it if it is not cut.
in_cgroup "$app_cg" "$FLOWPROBE" hold 203.0.113.7 443 --hold-ms 300000 --token "pre$$" \
	>"$SANDBOX_DIR/hold.out" 2>&1 &
hold_pid=$!

# accepted FROM TOKEN [TIMEOUT_MS]: a client in the "internet" at FROM connects to the app's
# port 7000. Flows that must succeed get a generous time-out (a loaded machine, emulation).
accepted() {
	ACCEPTED_OUT=$(sandbox_in_net "$FLOWPROBE" tcp 192.0.2.1 7000 --source "$1" --token "$2" \
		--timeout-ms "${3:-8000}" 2>&1)
}

# ---- control: without carwall every path reaches its destination -----------------------------
# accepted_ok TOKEN: the client got the app's echo and the app logged the token.
accepted_ok() {
	[[ $ACCEPTED_OUT == *"result=ok stage=recv "* ]] && grep -q " $1\$" "$SANDBOX_DIR/app-server.log"
}
accepted 203.0.113.7 "acc-c$$"
tap_check "control: the app replies to a client at the tracker's address" accepted_ok "acc-c$$"
up=0
for ((i = 0; i < 100; i++)); do grep -q established "$SANDBOX_DIR/hold.out" && { up=1; break; }; sleep 0.05; done
hold_fp=$(sed -n 's/^established .*pid=\([0-9]*\).*/\1/p' "$SANDBOX_DIR/hold.out")
stream_delivers() { ((up)) && [[ -n $hold_fp ]] && sandbox_hold_marker "$hold_fp" "pre$$" 1; }
tap_check "control: the app holds a stream to the tracker, which delivers (a marker reaches it)" \
	stream_delivers
tx0=$(hu_tx)
in_cgroup "$app_cg" "$FLOWPROBE" udp 239.1.2.3 9000 --repeat 50 --timeout-ms 20 >/dev/null 2>&1
tx1=$(hu_tx)
tap_check "control: 50 multicast datagrams leave the head unit ($((tx1 - tx0)) packets)" test $((tx1 - tx0)) -ge 50
in_cgroup "$app_cg" "$FLOWPROBE" tcp 0.0.0.0 7001 --token "any4-c$$" >/dev/null 2>&1
tap_check "control: connect(0.0.0.0) reaches the local service" \
	grep -q "any4-c$$" "$SANDBOX_DIR/local-server.log"
in_cgroup "$app_cg" "$FLOWPROBE" tcp :: 7001 --token "any6-c$$" >/dev/null 2>&1
tap_check "control: connect(::) reaches the local service" \
	grep -q "any6-c$$" "$SANDBOX_DIR/local-server.log"

# ---- with carwall -------------------------------------------------------------------------------
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }

# What carwall guarantees for it: on a kernel that can destroy sockets (SOCK_DESTROY), the
# agent's revocation pass cuts it when the policy takes effect (the app's next send fails with
# ECONNABORTED); on one that cannot, it stays open but nothing it sends gets out (the egress
# program drops it and reports it). Bounded generously for emulation (CARWALL_VM=1).
"$bin/revoke_tool" --probe >/dev/null 2>&1
destroy_probe=$?
cut=0
for ((i = 0; i < 200; i++)); do grep -q 'result=' "$SANDBOX_DIR/hold.out" && { cut=1; break; }; sleep 0.05; done
tap_diag "stream: $(tail -1 "$SANDBOX_DIR/hold.out")"
if ((destroy_probe == 0)); then
	tap_check "a stream to the tracker opened before carwall started is cut when it starts (ECONNABORTED)" \
		grep -q '^result=ECONNABORTED stage=send ' "$SANDBOX_DIR/hold.out"
	wait "$hold_pid" 2>/dev/null
elif ((destroy_probe == 4)); then
	tap_check "without SOCK_DESTROY the stream stays open at the app" test $cut -eq 0
	not_delivered() { ! sandbox_hold_marker "$hold_fp" "pre$$" 2; }
	tap_check "without SOCK_DESTROY: a marker the stream sends now never reaches the tracker" \
		not_delivered
	tap_check "without SOCK_DESTROY: its packets are reported refused at egress" \
		bash -c "'$CARWALL' events --state-dir '$SANDBOX_STATE_DIR' --json | grep -q '\"dst\":\"203.0.113.7\",\"port\":443,\"hook\":\"skb_egress\"'"
else
	tap_not_ok "revoke_tool --probe says whether this kernel can destroy sockets" "exit $destroy_probe"
fi

# The app's SYN-ACK is judged by the peer's address (the listener is not an opened socket).
accepted 203.0.113.7 "acc-e$$" 2000
# The client is no app: it is not refused, its handshake never completes (the SYN-ACK dropped).
handshake_timed_out() { [[ $ACCEPTED_OUT == *"result=ETIMEDOUT stage=connect "* ]]; }
tap_check "an accepted connection from the tracker never completes: the app's answer is dropped" \
	handshake_timed_out
((TAP_LAST_OK)) || tap_diag "client: $ACCEPTED_OUT"
tap_check "an accepted connection from the tracker: the app gets nothing from it" \
	bash -c "! grep -q 'acc-e$$' '$SANDBOX_DIR/app-server.log'"
accepted 198.51.100.20 "acc-ok$$"
tap_check "an accepted connection: the app replies to a peer it may reach over TCP" accepted_ok "acc-ok$$"

tx0=$(hu_tx)
out=$(in_cgroup "$app_cg" "$FLOWPROBE" udp 239.1.2.3 9000 --repeat 50 --timeout-ms 20 2>&1)
tx1=$(hu_tx)
tap_diag "multicast: $out; $((tx1 - tx0)) packets left"
tap_check "multicast datagrams are refused" contains "$out" 'denied=50'
tap_check "no multicast datagram leaves the head unit" test $((tx1 - tx0)) -lt 10

out=$(in_cgroup "$app_cg" "$FLOWPROBE" tcp 0.0.0.0 7001 --token "any4-e$$" 2>&1)
tap_check "connect(0.0.0.0) is judged as the address it names: refused" \
	bash -c "grep -q '^result=EPERM stage=connect ' <<<'$out' && ! grep -q 'any4-e$$' '$SANDBOX_DIR/local-server.log'"
out=$(in_cgroup "$app_cg" "$FLOWPROBE" tcp :: 7001 --token "any6-e$$" 2>&1)
tap_check "connect(::) is judged as the address it names: refused" \
	bash -c "grep -q '^result=EPERM stage=connect ' <<<'$out' && ! grep -q 'any6-e$$' '$SANDBOX_DIR/local-server.log'"

tap_done
