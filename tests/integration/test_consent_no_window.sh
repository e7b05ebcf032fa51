#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A consent switch flips with no window, like a reload: an app sends continuously while the
# driver switches its purpose off, then on again. Three senders at once, as mediaplayer, to the
# crash-reports collector: UDP datagrams on one unconnected socket (each judged by sendmsg4),
# datagrams on a connected UDP socket (judged by the egress program, whose cached verdict is
# tied to the policy epoch), and a new TCP connection per flow (connect4). For each: before the
# switch every flow goes out; every flow that starts after `consent set ... off` returned is
# refused, and nothing of it arrives; the outcomes switch once (no flow allowed between two
# refused ones: each sees the old or the new state, never a mix); after `set ... on` returned,
# unconnected UDP and TCP go out again. The server never sees a flow the sender saw refused.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
traffic=$top/tests/integration/consent_traffic.py
PORT=7000
MODES=(udp udp-connected tcp)
MIN_FLOWS=20 # flows each sender makes in each phase, at least

command -v python3 >/dev/null || { tap_skip "consent switches under traffic" "needs python3"; tap_done; exit; }

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox

sandbox_create "cw-cw$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
dir=$SANDBOX_DIR
SANDBOX_POLICY=$dir/policy.yaml
cat >"$SANDBOX_POLICY" <<EOF
version: 1
consent:
  purposes: [crash-reports]
  switches:
    - {name: crash-reports, purposes: [crash-reports], default: on, reset: persistent}
apps:
  mediaplayer:
    allow:
      - {to: 198.51.100.20, ports: [443], proto: tcp}
      - {to: 198.51.100.20, ports: [$PORT], purpose: crash-reports}
EOF
cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
now_ns() { python3 -c 'import time; print(time.monotonic_ns())'; }
# flows_after MODE T: flows of MODE's sender that started after T (monotonic ns).
flows_after() { awk -v t="$2" '$2 > t { n++ } END { print n + 0 }' "$dir/send-$1.log" 2>/dev/null; }
wait_flows() { # T: bounded wait until every sender made MIN_FLOWS flows started after T
	local i m ok
	for ((i = 0; i < 200; i++)); do
		ok=1
		for m in "${MODES[@]}"; do
			(($(flows_after "$m" "$1") >= MIN_FLOWS)) || ok=0
		done
		((ok)) && return 0
		sleep 0.05
	done
	return 1
}

sandbox_in_net python3 "$traffic" serve 198.51.100.20 "$PORT" "$dir/server.log" &
PIDS[server]=$!
procs_wait_ready "$dir/server.log"
tap_check "the server is up" grep -qx ready "$dir/server.log"
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }

t_start=$(now_ns)
for m in "${MODES[@]}"; do
	sandbox_run_app mediaplayer python3 "$traffic" send "$m" 198.51.100.20 "$PORT" \
		"$dir/send-$m.log" "$dir/stop" 2>"$dir/send-$m.err" &
	PIDS[$m]=$!
done
tap_check "control: every sender makes $MIN_FLOWS flows with the switch on" wait_flows "$t_start"

t_off0=$(now_ns)
cw consent set crash-reports off >/dev/null
rc=$?
t_off1=$(now_ns)
tap_check "consent set crash-reports off, under traffic" test $rc -eq 0
tap_check "every sender makes $MIN_FLOWS flows with the switch off" wait_flows "$t_off1"

t_on0=$(now_ns)
cw consent set crash-reports on >/dev/null
rc=$?
t_on1=$(now_ns)
tap_check "consent set crash-reports on, under traffic" test $rc -eq 0
tap_check "every sender makes $MIN_FLOWS flows with the switch on again" wait_flows "$t_on1"
touch "$dir/stop"
for m in "${MODES[@]}"; do
	procs_wait "$m"
done
# The server logs what is in flight: wait (bounded) until it logged every TCP flow the sender
# saw succeed (their bytes are in its socket) and the UDP counts stop growing.
ok_flows() { grep -c ' ok$' "$dir/send-$1.log"; }
got_flows() { grep -c "^$1 " "$dir/server.log"; }
prev=-1
for ((i = 0; i < 100; i++)); do
	cur=$(($(got_flows udp) + $(got_flows udp-connected)))
	(($(got_flows tcp) >= $(ok_flows tcp))) && ((cur == prev)) && break
	prev=$cur
	sleep 0.1
done

# Every property of every sender's log (send-MODE.log) and of the server's log, judged in one
# pass: one line "MODE CHECK ok" or "MODE CHECK bad: ..." each, in verdicts.
python3 - "$dir" "$t_off0" "$t_off1" "$t_on0" "$t_on1" "${MODES[@]}" >"$dir/verdicts" <<'EOF'
import sys
d = sys.argv[1]
t_off0, t_off1, t_on0, t_on1 = map(int, sys.argv[2:6])
server = [l.split() for l in open(f"{d}/server.log") if len(l.split()) == 2]
for mode in sys.argv[6:]:
    flows = []
    for line in open(f"{d}/send-{mode}.log"):
        seq, start, end, result = line.split()
        flows.append((int(seq), int(start), int(end), result))
    got = {int(s) for m, s in server if m == mode}
    ok = {s for s, _, _, r in flows if r == "ok"}
    checks = {}
    # before: every flow that ended before the switch started went out
    sel = [f for f in flows if f[2] < t_off0]
    checks["before"] = [f for f in sel if f[3] != "ok"] + ([("only", len(sel))] if len(sel) < 20 else [])
    # off: every flow started after `set off` returned (and ended before `set on`) refused,
    # with EPERM at the hook (a connected UDP socket, cut, may fail otherwise after its EPERM)
    sel = [f for f in flows if f[1] > t_off1 and f[2] < t_on0]
    checks["off"] = [f for f in sel if f[3] == "ok" or (mode != "udp-connected" and f[3] != "EPERM")]
    checks["off"] += [("only", len(sel))] if len(sel) < 20 else []
    # once: no flow allowed between two refused ones (a cut connected socket stays unusable)
    fails = [f[0] for f in flows if f[3] != "ok"]
    if not fails:
        checks["once"] = ["no refusal at all"]
    else:
        hi = flows[-1][0] if mode == "udp-connected" else fails[-1]
        checks["once"] = [f for f in flows if fails[0] <= f[0] <= hi and f[3] == "ok"]
    # on: after `set on` returned, the flows go out again
    sel = [f for f in flows if f[1] > t_on1]
    checks["on"] = [f for f in sel if f[3] != "ok"] + ([("only", len(sel))] if len(sel) < 20 else [])
    # server: it got no flow the sender saw refused; every allowed TCP one but those in flight
    # while `set off` ran (connected and written before, so "ok" for the sender, then cut by the
    # switch's revocation before the server read them: the switch working); a datagram may be
    # lost on a loaded machine: that is not the property, but most must arrive
    checks["server"] = sorted(got - ok)[:5]
    if mode == "tcp":
        must = {s for s, st, en, r in flows if r == "ok" and not (st <= t_off1 and en >= t_off0)}
        if must - got:
            checks["server"].append(("not received", sorted(must - got)[:5]))
    elif len(got) < len(ok) // 2:
        checks["server"].append(("received", len(got), "of", len(ok)))
    for name, bad in checks.items():
        print(f"{mode} {name} " + ("ok" if not bad else f"bad: {len(flows)} flows, {len(ok)} ok: {bad[:5]}"))
EOF
verdict() { # MODE CHECK: its line in verdicts says ok
	grep -qx "$1 $2 ok" "$dir/verdicts" || { tap_diag "$(grep "^$1 $2 " "$dir/verdicts")"; return 1; }
}

for m in "${MODES[@]}"; do
	tap_check "$m: before the switch, every flow goes out" verdict "$m" before
	tap_check "$m: every flow started after 'set off' returned is refused (EPERM at the hook)" \
		verdict "$m" off
	tap_check "$m: the outcomes switch once (never allowed between two refusals)" verdict "$m" once
	tap_check "$m: the server got no refused flow (and the allowed ones)" verdict "$m" server
done
for m in udp tcp; do
	tap_check "$m: after 'set on' returned, every flow goes out again" verdict "$m" on
done

tap_done
