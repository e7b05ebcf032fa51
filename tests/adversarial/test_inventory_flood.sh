#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# One app's allowed flows cannot erase another's evidence or inventory (issue 15). App A
# (navigation) is allowed a wide prefix (2001:db8:100::/48, UDP 9000) and sends one datagram to
# each of tens of thousands of distinct allowed destinations, each a new key of cw_seen, from
# A_PROCS processes at once; meanwhile app B (mediaplayer) makes B_REFUSED refused connects and
# B_ALLOWED allowed ones (as many again before the flood); the agent is stopped meanwhile (a
# stalled reader of the ring buffer). Afterwards:
# - every refusal of B is in the events log, and none of B's events was dropped: A's allowed
#   reports have a budget of their own and cannot fill the ring buffer for B;
# - B's allowed flows are counted exactly in the inventory: A holds at most its share of cw_seen
#   (CW_SEEN_PER_APP keys), so it cannot evict B's keys;
# - A's flows are all counted: those to the destinations of its share in the inventory, the rest
#   as "unlisted" (events.inventory.unlisted_flows).
# The inventory is saved (and cw_seen read) only when the agent stops (--inventory-save-interval
# 30): what B's counts rely on is the kernel's map alone.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/evidence.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
A_PROCS=2	# A's flooding processes
A_MAX=60000	# distinct destinations per process at most (each stops once B is done)
A_MIN=20000	# and at least: more than cw_seen holds (CW_MAX_SEEN) in all
A_RING=8000	# B starts when each of A's processes sent this many: more than the ring holds
		# (1 MiB: about 10,900 reports) in all, were each a report
B_REFUSED=300	# B's refused connects during the flood (distinct ports)
B_ALLOWED=5	# B's allowed connects before the flood, and as many during it
SEEN_PER_APP=4096 # CW_SEEN_PER_APP (bpf/carwall.h)

if ! command -v python3 >/dev/null; then
	tap_skip "the inventory flood" "python3 missing (scripts/install-deps.sh installs it)"
	tap_done
	exit
fi

sandbox_create "cw-if$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
cat >"$SANDBOX_POLICY" <<'EOF'
version: 1
apps:
  navigation:
    allow:
      - to: [2001:db8:100::/48]
        ports: [9000]
        proto: udp
  mediaplayer:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
EOF

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
events() { "$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json "$@"; }
flows_json() { "$CARWALL" flows --state-dir "$SANDBOX_STATE_DIR" --json; }
has() { grep -q -- "$2" <<<"$1"; } # TEXT PATTERN (tap_check gives commands no stdin)
# inv APP VERDICT FIELD: over the inventory's records of APP with VERDICT, "records sum(FIELD)".
inv() {
	flows_json | python3 -c '
import json, sys
app, verdict, field = sys.argv[1:]
n = s = 0
for a in json.load(sys.stdin)["apps"]:
    for d in a["domains"]:
        for h in d["hosts"]:
            for f in h["flows"]:
                if f["app"] == app and f["verdict"] == verdict:
                    n += 1
                    s += f.get(field, 0)
print(n, s)' "$@"
}

# A: one datagram to each of distinct destinations of the prefix, until B is done (or A_MAX).
# shellcheck disable=SC2016
flood='
import os, socket, sys, time
k, n, started, stop, go = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
sent = failed = 0
open(go + "-ready%d" % k, "w").close()
deadline = time.monotonic() + 10
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.001)
deadline = time.monotonic() + 20
for i in range(n):
    try:
        s.sendto(b"x", ("2001:db8:100:%x::%x:%x" % (k, i >> 16, (i & 0xffff) + 1), 9000))
        sent += 1
    except OSError:
        failed += 1
    if i == '$A_RING':
        open(started, "w").close()
    if i % 1000 == 999 and i >= '$A_MIN' and (os.path.exists(stop) or time.monotonic() > deadline):
        break
print("sent=%d failed=%d" % (sent, failed))'
# B: waits for A's flood, then its refused connects (each to its own port) and allowed ones.
# shellcheck disable=SC2016
victim='
import errno, os, socket, sys, time
started, stop, refused, allowed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
open(stop + "-ready", "w").close()
deadline = time.monotonic() + 20
while not os.path.exists(started) and time.monotonic() < deadline:
    time.sleep(0.001)
def connect(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((addr, port))
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
res = {}
for i in range(refused):
    r = connect("203.0.113.7", 10000 + i)
    res["refused_" + r] = res.get("refused_" + r, 0) + 1
for i in range(allowed):
    r = connect("198.51.100.20", 443)
    res["allowed_" + r] = res.get("allowed_" + r, 0) + 1
print("flood_running=%d" % (not os.path.exists(stop)))
open(stop, "w").close()
print(" ".join("%s=%d" % kv for kv in sorted(res.items())))'

# Control: without carwall, B's refused destination answers.
sandbox_in_hu "$FLOWPROBE" tcp 203.0.113.7 443 --token ctl$$ >/dev/null 2>&1
tap_check "control, no enforcement: B's refused destination reaches the server" \
	sandbox_server_saw tcp 443 "ctl$$"

sandbox_agent_start --inventory-save-interval 30 --inventory-max-records 65536 ||
	{ tap_bail_out "carwalld did not start"; exit 1; }

out=$(sandbox_run_app navigation "$FLOWPROBE" udp 2001:db8:100::80 9000 --token a1-$$ 2>&1)
tap_check "A's flow into its prefix goes out (allowed)" sandbox_server_saw udp 9000 "a1-$$"
out=$(sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 443 --token b1-$$ 2>&1)
tap_check "B's connect outside its rules is refused with EPERM at connect" \
	has "$out" 'result=EPERM stage=connect'
server_missed() { ! sandbox_server_saw "$@"; }
tap_check "the server saw nothing of B's refused flow" server_missed tcp 443 "b1-$$"
out=$(sandbox_run_app mediaplayer "$FLOWPROBE" tcp 198.51.100.20 443 --repeat $B_ALLOWED 2>&1)
tap_check "B's $B_ALLOWED allowed connects before the flood go out" has "$out" "ok=$B_ALLOWED "

# The flood: A's processes, and B once A's flood runs, all started (`carwall run` asks the
# agent) before the agent is stopped (SIGSTOP): a stalled reader, so that whatever the kernel
# sends stays in the ring buffer until the flood is over.
started=$SANDBOX_DIR/a_started stop=$SANDBOX_DIR/b_done go=$SANDBOX_DIR/go
pids=()
for ((k = 1; k <= A_PROCS; k++)); do
	sandbox_run_app navigation python3 -c "$flood" "$k" $A_MAX "$started" "$stop" "$go" \
		>"$SANDBOX_DIR/a$k.out" 2>&1 &
	pids+=($!)
done
sandbox_run_app mediaplayer python3 -c "$victim" "$started" "$stop" $B_REFUSED $B_ALLOWED \
	>"$SANDBOX_DIR/b.out" 2>&1 &
pids+=($!)
all_ready() {
	local k
	for ((k = 1; k <= A_PROCS; k++)); do [[ -e $go-ready$k ]] || return 1; done
	[[ -e $stop-ready ]]
}
for ((i = 0; i < 200; i++)); do # at most 10 s
	all_ready && break
	sleep 0.05
done
tap_check "A's and B's processes run, in their apps" all_ready
kill -STOP "$SANDBOX_AGENT_PID"
touch "$go"
wait "${pids[@]}"
kill -CONT "$SANDBOX_AGENT_PID"
a_sent=0
for ((k = 1; k <= A_PROCS; k++)); do
	tap_diag "A's process $k: $(cat "$SANDBOX_DIR/a$k.out")"
	n=$(grep -o 'sent=[0-9]*' "$SANDBOX_DIR/a$k.out" | cut -d= -f2)
	a_sent=$((a_sent + ${n:-0}))
done
tap_diag "B: $(tr '\n' ' ' <"$SANDBOX_DIR/b.out")"
tap_check "A sent to more distinct destinations than cw_seen holds ($a_sent)" \
	test "$a_sent" -gt 16384
tap_check "B ran while A flooded" grep -qx 'flood_running=1' "$SANDBOX_DIR/b.out"
tap_check "B's $B_REFUSED connects during the flood were refused with EPERM" \
	grep -q "^allowed_ok=$B_ALLOWED refused_EPERM=$B_REFUSED\$" "$SANDBOX_DIR/b.out"

# The agent has read every event the kernel sent (received stops moving).
wait_events_read 30
b_refused=$(app_counter mediaplayer refused)
b_dropped=$(app_counter mediaplayer events_dropped)
a_dropped=$(app_counter navigation events_dropped)
unlisted=$(cw --json stats | tr -d ' \n' | grep -o '"unlisted_flows":[0-9]*' | cut -d: -f2)
tap_diag "kernel: B refused $b_refused, B's events dropped $b_dropped, A's $a_dropped; unlisted ${unlisted:-none}"
tap_check "the kernel counted every refusal of B" test "$b_refused" -eq $((1 + B_REFUSED))
tap_check "none of B's events was dropped" test "$b_dropped" -eq 0

tap_check "the agent stops cleanly (the inventory saved)" sandbox_agent_stop
b_sum=$(events --app mediaplayer | grep '"dst":"203.0.113.7"' | count_sum)
tap_check "every refusal of B is in the events log ($b_sum of $((1 + B_REFUSED)))" \
	test "$b_sum" -eq $((1 + B_REFUSED))
read -r b_records b_count < <(inv mediaplayer allowed count)
tap_diag "inventory: B's allowed records $b_records, count $b_count"
tap_check "B's allowed flows are counted exactly: $((2 * B_ALLOWED))" \
	test "$b_records" -eq 1 -a "$b_count" -eq $((2 * B_ALLOWED))
read -r a_records a_count < <(inv navigation allowed count)
tap_diag "inventory: A's allowed records $a_records, count $a_count; sent $a_sent + 1"
tap_check "A holds at most its share of cw_seen: $SEEN_PER_APP destinations listed" \
	test "$a_records" -le $SEEN_PER_APP
tap_check "A's flows are all counted: listed + unlisted = sent" \
	test "$((a_count + ${unlisted:-0}))" -eq $((a_sent + 1))

# Budgets of their own: with a small event rate, A's flows to new destinations (within its share
# again: the agent's last read of cw_seen deleted the keys it had counted) are reported at most
# at that rate (the rest counted in cw_seen: exact totals), and A's refusals in the same second
# are all reported all the same.
RATE=100 A_FLOWS=2000 A_REFUSED=50
sandbox_agent_start -e $RATE --inventory-save-interval 30 --inventory-max-records 65536 ||
	{ tap_bail_out "carwalld did not restart"; exit 1; }
reports() { cw --json stats | tr -d ' \n' | grep -o '"allowed_reports":[0-9]*' | cut -d: -f2; }
# shellcheck disable=SC2016
budget='
import errno, socket, sys, time
flows, refused = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
t0 = time.monotonic()
res = {}
for i in range(flows):
    try:
        s.sendto(b"x", ("2001:db8:100:ff::%x" % (i + 1), 9000))
        r = "ok"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    res["allowed_" + r] = res.get("allowed_" + r, 0) + 1
for i in range(refused):
    try:
        s.sendto(b"x", ("2001:db8:bad::7", 20000 + i))
        r = "ok"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    res["refused_" + r] = res.get("refused_" + r, 0) + 1
print("secs=%d" % (time.monotonic() - t0 + 1), " ".join("%s=%d" % kv for kv in sorted(res.items())))'
out=$(sandbox_run_app navigation python3 -c "$budget" $A_FLOWS $A_REFUSED 2>&1)
tap_diag "A: $out"
tap_check "A's $A_FLOWS allowed flows went out and its $A_REFUSED others were refused (EPERM)" \
	has "$out" "allowed_ok=$A_FLOWS refused_EPERM=$A_REFUSED\$"
secs=$(grep -o 'secs=[0-9]*' <<<"$out" | cut -d= -f2)
wait_events_read 20
n_reports=$(reports)
a_dropped=$(app_counter navigation events_dropped)
tap_diag "allowed reports $n_reports in about ${secs:-?} s; A's events dropped $a_dropped"
tap_check "A's allowed reports stay within their budget ($RATE a second; 2 windows a second)" \
	test "$n_reports" -le $((2 * RATE * ${secs:-1}))
tap_check "A's refusals were not dropped: the allowed reports took none of their budget" \
	test "$a_dropped" -eq 0
tap_check "the agent stops cleanly" sandbox_agent_stop
a_refusals=$(events --app navigation | grep '"dst":"2001:db8:bad::7"' | count_sum)
tap_check "every refusal of A is in the events log ($a_refusals of $A_REFUSED)" \
	test "$a_refusals" -eq $A_REFUSED
exact() {
	flows_json | python3 -c '
import json, sys
n = sum(f["count"] for a in json.load(sys.stdin)["apps"] for d in a["domains"] for h in d["hosts"]
        for f in h["flows"] if f["app"] == "navigation" and f["address"].startswith("2001:db8:100:ff::"))
print(n)
sys.exit(n != int(sys.argv[1]))' "$1"
}
tap_check "A's allowed flows over the budget are counted all the same: $A_FLOWS" exact $A_FLOWS

tap_done
