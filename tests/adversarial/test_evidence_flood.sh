#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# One app cannot erase another's evidence (issue 11, case 4). App A (mediaplayer) is refused
# once; then app B (navigation) floods: the same refused destination many times and many
# distinct refused destinations (a scan), while A repeats its own refused flow. With the event
# rate limit lifted (carwalld -e 0) the flood is far more than the whole events log held before
# (8 MiB: about 17,000 records). Afterwards:
# - A's record is still in `carwall events`, and its repeats are counted: the counts of A's
#   records add up to the kernel's refused counter of A (less the events the kernel dropped)
#   and to the number of connects A made;
# - repeats are folded: a repeated flow is a handful of records and log lines, not one each;
# - the log on disk stays within its bound.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/evidence.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=$top/tests/integration/flows.yaml
LOG_BOUND=$((8 << 20)) # EVENTS_LOG_MAX_BYTES, and what the single log held before (2 x 4 MiB)
B_SAME=40000	       # B's connects to one refused destination
B_SCAN=20000	       # B's connects to as many distinct refused destinations
A_SAME=5000	       # A's repeats of its refused flow

sandbox_create "cw-ev$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
events() { "$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json "$@"; }
# The records of A's refused flows: mediaplayer, TCP to 203.0.113.7 port 443 (the single
# refusal, then the flood) and 8443 (the burst whose repeats are folded).
a_records() { events --app mediaplayer | grep -E '"dst":"203.0.113.7","port":(443|8443),"hook":"connect4"' || true; }
a_burst_records() { events --app mediaplayer | grep '"dst":"203.0.113.7","port":8443,"hook":"connect4"' || true; }
has() { grep -q -- "$2" <<<"$1"; } # TEXT PATTERN (tap_check gives commands no stdin)
sorted() { sort -c <<<"$1"; }
wait_for() { # SECONDS CMD...: bounded wait until CMD succeeds
	local i n=$(($1 * 20))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	return 1
}

# Control: without carwall, A's flow goes through.
sandbox_in_hu "$FLOWPROBE" tcp 203.0.113.7 443 --token ctl$$ >/dev/null 2>&1
tap_check "control, no enforcement: A's flow reaches the server" sandbox_server_saw tcp 443 "ctl$$"

sandbox_agent_start -e 0 || { tap_bail_out "carwalld did not start"; exit 1; }
agent_start=$(date +%s)

# A is refused once: EPERM, and the server saw nothing.
out=$(sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 443 --token a1-$$ 2>&1)
tap_check "A's connect is refused with EPERM at connect" has "$out" 'result=EPERM stage=connect' 
server_missed() { ! sandbox_server_saw "$@"; }
tap_check "the server saw nothing of A's refused flow" server_missed tcp 443 "a1-$$"
has_a_record() { [[ -n $(a_records) ]]; }
tap_check "A's single refusal is in the log at once" wait_for 5 has_a_record
first_a=$(a_records | head -1)
tap_diag "$first_a"
first_time=$(grep -o '"time":"[^"]*"' <<<"$first_a")

# A burst of 4 to another destination (a key of its own, so that how long the checks above
# took does not matter): its first connect is written at once, the 3 repeats that follow within
# milliseconds are folded into the key's next record, written at the end of its flush period
# (2 s after the first).
sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 8443 --repeat 4 >/dev/null 2>&1
burst_sum_is() { [[ $(a_burst_records | count_sum) -eq $1 ]]; }
tap_check "A's burst of 4: its 3 repeats are written as one record, while the agent runs" \
	wait_for 10 burst_sum_is 4
tap_check "... 2 records in all: the first, then one for the repeats" \
	test "$(a_burst_records | wc -l)" -eq 2
tap_diag "$(a_burst_records)"
tap_check "... the first with count 1" has "$(a_burst_records | head -1)" '"count":1,'
tap_check "... the second with count 3" has "$(a_burst_records | tail -1)" '"count":3,' 

# The flood: B to one destination and to many, A to its own, at once.
# The scan: one connect to each of B_SCAN ports (bash's /dev/tcp: no fork per connect).
scan='n=0; for ((p = 10000; p < 10000 + $0; p++)); do { : </dev/tcp/203.0.113.7/$p; } 2>/dev/null || n=$((n + 1)); done; echo "failed=$n"'
start=$(date +%s)
sandbox_run_app navigation "$FLOWPROBE" tcp 203.0.113.7 443 --repeat $B_SAME >"$SANDBOX_DIR/b_same.out" 2>&1 &
b_same_pid=$!
sandbox_run_app navigation bash -c "$scan" $B_SCAN >"$SANDBOX_DIR/b_scan.out" 2>&1 &
b_scan_pid=$!
sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 443 --repeat $A_SAME >"$SANDBOX_DIR/a_same.out" 2>&1 &
a_same_pid=$!
wait "$b_same_pid" "$b_scan_pid" "$a_same_pid"
tap_diag "flood in $(($(date +%s) - start)) s: B same $(cat "$SANDBOX_DIR/b_same.out"); B scan $(cat "$SANDBOX_DIR/b_scan.out"); A $(cat "$SANDBOX_DIR/a_same.out")"
tap_check "B's flood to one destination was $B_SAME refused connects" grep -q "denied=$B_SAME " "$SANDBOX_DIR/b_same.out"
tap_check "B's scan was $B_SCAN failed connects" grep -qx "failed=$B_SCAN" "$SANDBOX_DIR/b_scan.out"
tap_check "A's flood was $A_SAME refused connects" grep -q "denied=$A_SAME " "$SANDBOX_DIR/a_same.out"

# The agent has read every event the kernel sent (received stops moving), then its counters.
wait_events_read 30
a_refused=$(app_counter mediaplayer refused)
a_dropped=$(app_counter mediaplayer events_dropped)
b_refused=$(app_counter navigation refused)
tap_diag "kernel: A refused $a_refused (events dropped $a_dropped), B refused $b_refused"
tap_check "the kernel counted every connect A made as refused" test "$a_refused" -eq $((1 + 4 + A_SAME))
tap_check "the kernel counted every connect B made (the scan's too) as refused" \
	test "$b_refused" -eq $((B_SAME + B_SCAN))

# Stopping writes what is pending; the log is then complete.
tap_check "the agent stops cleanly" sandbox_agent_stop
agent_secs=$(($(date +%s) - agent_start + 1))
tap_check "A's first record is still in the log after B's flood" \
	test "$(a_records | head -1)" == "$first_a"
tap_check "... that is the single refusal (count 1)" has "$first_a" "$first_time.*\"count\":1,"
a_sum=$(a_records | count_sum)
tap_diag "A's records: $(a_records | wc -l), their counts add up to $a_sum"
tap_check "A's records count every event the agent got: kernel refused - dropped" \
	test "$a_sum" -eq $((a_refused - a_dropped))
if [[ $a_dropped -eq 0 ]]; then
	tap_check "A's records count every connect A made" test "$a_sum" -eq $((1 + 4 + A_SAME))
else
	tap_skip "A's records count every connect A made" "the kernel dropped $a_dropped of A's events (ring buffer full), counted above"
fi
tap_check "A's repeats are folded: a few records, not one per connect" test "$(a_records | wc -l)" -le 40
b_same_records=$(events --app navigation | grep -c '"dst":"203.0.113.7","port":443,' || true)
tap_check "B's repeats to one destination are folded too" test "$b_same_records" -le 40
a_lines=$(grep -c 'event=refused app=mediaplayer .* dst=203.0.113.7 port=443 ' "$SANDBOX_DIR/agent.log" || true)
tap_diag "agent log lines for A's flow: $a_lines"
tap_check "the agent's log has a few lines for A's repeated flow, not one per connect" test "$a_lines" -le 40
b_lines=$(grep -c 'event=refused app=navigation ' "$SANDBOX_DIR/agent.log" || true)
tap_diag "agent log lines for B's records: $b_lines in about $agent_secs s"
tap_check "B's scan is at most 20 lines a second in the agent's log" \
	test "$b_lines" -le $((20 * (agent_secs + 1)))
tap_check "... and the lines left out are counted there" \
	grep -q 'more records of app-navigation were not logged here' "$SANDBOX_DIR/agent.log"

size=$(find "$SANDBOX_STATE_DIR" -type f -name '*.jsonl*' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
tap_diag "events log on disk: $size bytes; $(find "$SANDBOX_STATE_DIR" -type f -name '*.jsonl*' -printf '%P %s\n' | tr '\n' ' ')"
tap_check "the events log on disk stays within $LOG_BOUND bytes" test "$size" -le $LOG_BOUND
tap_check "B's scan filled B's share: B's records rotated" test -n "$(find "$SANDBOX_STATE_DIR" -name 'app-navigation.jsonl.1')"

# `carwall events` shows every app's records in time order.
times=$(events | grep -o '"time":"[^"]*"')
tap_check "carwall events prints all apps' records in time order" sorted "$times"
all=$(events)
tap_check "carwall events shows A's records" has "$all" '"app":"mediaplayer"'
tap_check "carwall events shows B's records" has "$all" '"app":"navigation"' 

tap_done
