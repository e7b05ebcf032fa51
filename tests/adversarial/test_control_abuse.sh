#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Nothing a control client does blocks the agent, and the agent opens no path a client names
# (issue 11, case 5). Against a real agent in the sandbox:
#   - clients that connect and send nothing, send half a request line, announce a bundle and
#     stall, or ask for a reply larger than the socket buffer and never read it: meanwhile
#     `carwall status` answers, apps are registered and their flows judged and reported; the
#     agent drops each of those clients, and the slow reader never gets its whole reply;
#   - a FIFO: `carwall bundle install FIFO` is refused at once by the client, and the old
#     request form ("install /PATH") is refused by the agent without opening the path;
#   - a bundle in a folder only the client can see (a tmpfs in its own mount namespace, as
#     /tmp under the shipped unit's PrivateTmp) installs, because the client sends the bytes;
#   - SIGTERM stops the agent at once while such clients are connected.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
client=$top/tests/adversarial/control_client.py
command -v python3 >/dev/null || { tap_skip "control socket abuse" "python3 not found"; tap_done; exit; }

sandbox_create "cw-ca$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
sock=$SANDBOX_RUN_DIR/carwalld.sock

# The policy: the flow tests' one, and an app with enough rules that `stats` answers with more
# than the socket buffers hold. A copy in the sandbox: an install replaces the agent's file.
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
{
	cat "$top/tests/integration/flows.yaml"
	printf '  bulk:\n    allow:\n'
	for ((i = 0; i < 4000; i++)); do
		printf '      - to: [10.%d.%d.1]\n        ports: [443]\n' $((i / 250)) $((i % 250))
	done
} >"$SANDBOX_POLICY"
# What the install below puts in force: mediaplayer may also reach the tracker's port 443.
awk '{ print } /^  mediaplayer:$/ { getline; print
	print "      - to: [203.0.113.7]\n        ports: [443]\n        proto: tcp" }' \
	"$top/tests/integration/flows.yaml" >"$SANDBOX_DIR/wide.yaml"
grep -q 203.0.113.7 "$SANDBOX_DIR/wide.yaml" || { tap_bail_out "cannot write the wider policy"; exit 1; }

sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
agent_pid=$SANDBOX_AGENT_PID

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
# status_answers NAME: `carwall status` answers within 2 s.
status_answers() {
	local t0 rc elapsed
	t0=$(now_ms)
	timeout 5 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status >/dev/null 2>&1
	rc=$?
	elapsed=$(($(now_ms) - t0))
	if ((rc == 0 && elapsed <= 2000)); then
		tap_ok "$1 ($elapsed ms)"
	else
		tap_not_ok "$1" "exit $rc after $elapsed ms"
	fi
}
# flow APP ADDR PORT TOKEN: one TCP flow as APP; its result line in $flow_out.
flow() {
	flow_out=$(sandbox_run_app "$1" "$FLOWPROBE" tcp "$2" "$3" --token "$4" 2>&1)
}
# refused APP ADDR PORT TOKEN: EPERM at connect, and the server saw nothing.
refused() {
	flow "$@"
	[[ $flow_out == *"result=EPERM stage=connect"* ]] && ! sandbox_server_saw tcp "$3" "$4"
}
reached() {
	flow "$@"
	[[ $flow_out == *"result=ok"* ]] && sandbox_server_saw tcp "$3" "$4"
}
# abuse ARGS...: start misbehaving clients in the background, wait until they are parked: connected,
# their requests sent, and the agent's replies to them started (control_client.py's --ready-s, 30 s,
# bounds that; the agent's work for them is CPU, slow only on an emulated guest, not waiting).
abuse() {
	abuse_out=$SANDBOX_DIR/abuse.$RANDOM
	python3 "$client" "$sock" abuse "$@" >"$abuse_out" 2>&1 &
	abuse_pid=$!
	for ((i = 0; i < 620; i++)); do
		grep -qx ready "$abuse_out" && return 0
		_sandbox_alive "$abuse_pid" || break
		sleep 0.05
	done
	return 1
}
# abuse_wait: until they have checked which connections the agent dropped (bounded by --wait-s).
abuse_wait() {
	wait "$abuse_pid"
}

# ---- control: the agent answers, flows are judged --------------------------------------------
status_answers "control: carwall status answers within 2 s"
if reached mediaplayer 198.51.100.20 443 ca-ctl-ok; then
	tap_ok "control: mediaplayer reaches the OEM backend"
else
	tap_not_ok "control: mediaplayer reaches the OEM backend" "$flow_out"
fi
if refused mediaplayer 203.0.113.7 443 ca-ctl-deny; then
	tap_ok "control: mediaplayer is refused the tracker (EPERM at connect, nothing received)"
else
	tap_not_ok "control: mediaplayer is refused the tracker" "$flow_out"
fi
stats_bytes=$(python3 "$client" "$sock" request stats | wc -c)
wmem=$(cat /proc/sys/net/core/wmem_default)
tap_check "control: the stats reply ($stats_bytes bytes) is larger than twice the socket buffer ($wmem)" \
	test "$stats_bytes" -gt $((2 * wmem))

# ---- misbehaving clients do not block the agent -------------------------------------------------
# A flow not refused before (the agent may fold repeated refusals of one flow into one record).
events_before=$(grep -c 'app=mediaplayer .*dst=203.0.113.7 port=8443' "$SANDBOX_DIR/agent.log")
# --wait-s: a silent client (root's) may wait CONTROL_FIRST_BYTE_TIMEOUT_MS, 5 s, for its first
# byte, the others 1 s; and 2 s more for an agent busy meanwhile (the app's registration below
# writes a policy of 4000 rules again).
if abuse --silent 3 --half 3 --half-install 3 --noread 3 --wait-s 7; then
	tap_ok "12 misbehaving clients are connected"
else
	tap_not_ok "12 misbehaving clients are connected" "$(cat "$abuse_out")"
fi
status_answers "with them connected, carwall status answers within 2 s"
if reached mediaplayer 198.51.100.20 443 ca-abuse-ok; then
	tap_ok "with them connected, an app is registered (carwall run) and reaches what it may"
else
	tap_not_ok "with them connected, an app is registered and reaches what it may" "$flow_out"
fi
if refused mediaplayer 203.0.113.7 8443 ca-abuse-deny; then
	tap_ok "with them connected, a refused flow is refused (EPERM at connect, nothing received)"
else
	tap_not_ok "with them connected, a refused flow is refused" "$flow_out"
fi
abuse_wait
for ((i = 0; i < 40; i++)); do
	events_after=$(grep -c 'app=mediaplayer .*dst=203.0.113.7 port=8443' "$SANDBOX_DIR/agent.log")
	((events_after > events_before)) && break
	sleep 0.05
done
tap_check "the refused flow was reported meanwhile" test "$events_after" -gt "$events_before"
tap_check "the agent dropped every misbehaving client within 7 s" \
	grep -qx "dropped 12 of 12" "$abuse_out"
tap_diag "$(cat "$abuse_out")"
if [[ $(grep -c '^noread got=[0-9]* complete=0$' "$abuse_out") == 3 ]]; then
	tap_ok "the slow readers never got their whole reply (dropped, not waited for)"
else
	tap_not_ok "the slow readers never got their whole reply" "$(cat "$abuse_out")"
fi
tap_check "the agent logged why it dropped them" grep -q "dropped: it does not read its reply" \
	"$SANDBOX_DIR/agent.log"

# ---- a FIFO, and the old request form ---------------------------------------------------------
mkfifo "$SANDBOX_DIR/fifo"
t0=$(now_ms)
out=$(timeout 5 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" bundle install "$SANDBOX_DIR/fifo" 2>&1)
rc=$?
elapsed=$(($(now_ms) - t0))
if ((rc == 1 && elapsed <= 2000)) && [[ $out == *"not a regular file"* ]]; then
	tap_ok "carwall bundle install FIFO is refused at once: not a regular file"
else
	tap_not_ok "carwall bundle install FIFO is refused at once" "exit $rc after $elapsed ms: $out"
fi
out=$(python3 "$client" "$sock" request "install $SANDBOX_DIR/fifo" --timeout-s 2)
if [[ $out == *'"error":"install by path is not supported'* ]]; then
	tap_ok "the old form (install /PATH) is refused by the agent with the reason"
else
	tap_not_ok "the old form (install /PATH) is refused by the agent with the reason" "$out"
fi
# A FIFO that someone opened for reading accepts a non-blocking writer; else ENXIO.
if python3 -c 'import os, sys; os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)' \
	"$SANDBOX_DIR/fifo" 2>/dev/null; then
	tap_not_ok "the agent did not open the FIFO" "the FIFO has a reader"
else
	tap_ok "the agent did not open the FIFO (it has no reader)"
fi
status_answers "after the FIFO, carwall status answers within 2 s"

# ---- a bundle only the client can see -----------------------------------------------------------
private=$SANDBOX_DIR/private
mkdir "$private"
if refused mediaplayer 203.0.113.7 443 ca-priv-before; then
	tap_ok "control: before the install, mediaplayer is refused the tracker"
else
	tap_not_ok "control: before the install, mediaplayer is refused the tracker" "$flow_out"
fi
out=$(unshare -m --propagation private sh -c '
	mount -t tmpfs -o size=1m,mode=0700 carwall-private "$1" && cp "$2" "$1/policy.yaml" &&
	exec "$3" --run-dir "$4" bundle install "$1/policy.yaml"' \
	sh "$private" "$SANDBOX_DIR/wide.yaml" "$CARWALL" "$SANDBOX_RUN_DIR" 2>&1)
rc=$?
tap_check "control: the agent's mount namespace has no such file" test ! -e "$private/policy.yaml"
if ((rc == 0)); then
	tap_ok "carwall bundle install of a file in the client's private tmpfs succeeds"
else
	tap_not_ok "carwall bundle install of a file in the client's private tmpfs succeeds" \
		"exit $rc: $out"
fi
tap_check "the installed policy replaced the agent's policy file" \
	cmp -s "$SANDBOX_DIR/wide.yaml" "$SANDBOX_POLICY"
if reached mediaplayer 203.0.113.7 443 ca-priv-after; then
	tap_ok "the installed policy is in force: mediaplayer reaches the tracker now"
else
	tap_not_ok "the installed policy is in force: mediaplayer reaches the tracker now" "$flow_out"
fi

# ---- SIGTERM while clients hang ---------------------------------------------------------------
python3 "$client" "$sock" request "install $SANDBOX_DIR/fifo" --timeout-s 5 >/dev/null 2>&1 &
old_pid=$!
if abuse --silent 3 --half 2 --noread 2 --wait-s 3; then
	t0=$(now_ms)
	sandbox_agent_stop
	rc=$?
	elapsed=$(($(now_ms) - t0))
	if ((rc == 0 && elapsed <= 2000)); then
		tap_ok "SIGTERM stops the agent within 2 s while clients hang (${elapsed} ms, exit 0)"
	else
		tap_not_ok "SIGTERM stops the agent within 2 s while clients hang" \
			"exit $rc after $elapsed ms"
	fi
	abuse_wait
else
	tap_not_ok "SIGTERM stops the agent within 2 s while clients hang" \
		"the clients did not connect: $(cat "$abuse_out")"
fi
wait "$old_pid" 2>/dev/null
tap_check "the agent that was stopped is gone" test ! -d "/proc/$agent_pid"

tap_done
