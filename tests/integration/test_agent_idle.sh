#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# carwalld sleeps when idle (issue 18): the agent's evidence timer runs only while some work is
# due. After traffic that leaves every kind of pending work (a refused flow repeated: the repeat's
# record; an allowed flow to a learned name: the learned address, its cw_seen key, its observed
# name; the flow inventory to save), the test shows that work done as before (the repeat record in
# the events log, the inventory file, the sweep deleting the expired learned address), then that
# once nothing is due no thread of the agent wakes for a few seconds (the sum of their context
# switches does not move), then that new evidence still gets written (the timer arms again: a new
# repeat record and the inventory save), and that a repeat pending at stop is written at stop.
#
# Environment: CARWALL_BIN_DIR (default build/).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"
. "$top/tests/lib/dns.sh"
. "$top/tests/lib/flows.sh"
. "$top/tests/lib/inventory.sh"
. "$top/tests/lib/evidence.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
TOOL=$top/tests/integration/dns_tool.py
# The learned address's TTL: longer than a lookup and a connect take on a loaded machine.
SHORT_TTL=3
# How long the agent must not wake: six of the old tick's periods (1 s), longer than the period
# of the sweep of cw_learned (5 s).
IDLE_S=6
# Windows of IDLE_S tried until one is quiet: the work left by the traffic above is done within
# seconds (a last sweep of cw_learned 5 s after the last record, of cw_seen, the last save).
IDLE_TRIES=3

if ! command -v dnsmasq >/dev/null || ! command -v python3 >/dev/null; then
	tap_skip "an idle agent does not wake" "dnsmasq or python3 missing (scripts/install-deps.sh installs them)"
	tap_done
	exit
fi

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox
sandbox_create "cw-idle$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
out=$SANDBOX_DIR/idle
mkdir -p "$out"

TILES=198.51.100.81 TRACKER=$SANDBOX_TRACKER_V4
sandbox_in_net ip addr add "$TILES/32" dev lo
cat >"$SANDBOX_POLICY" <<EOF
version: 1
resolvers: [$SANDBOX_GW_V4]
dns: {min-ttl: 1, max-ttl: 3600, grace: 0, max-learned-per-app: 8}
apps:
  navigation:
    allow:
      - to: [tiles.oem.example]
        ports: [443]
        proto: tcp
EOF
# shellcheck disable=SC2054 # commas are dnsmasq's
dns_start "$out" tiles.oem.example "--host-record=tiles.oem.example,$TILES,$SHORT_TTL" ||
	tap_diag "dnsmasq does not answer yet"

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
events() { "$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json; }

# ctxt: the context switches of every thread of the agent so far (voluntary and not).
ctxt() {
	cat /proc/"$SANDBOX_AGENT_PID"/task/*/status 2>/dev/null |
		awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}

# records_sum PORT: the flows to the tracker's PORT the events log's records of navigation stand
# for (the first record is one; a record of repeats, its count).
records_sum() {
	events | grep '"app":"navigation"' | grep "\"dst\":\"$TRACKER\"" | grep "\"port\":$1[,}]" |
		count_sum
}

# repeats_written PORT SUM: bounded wait (6 s: a key's first repeats are due 2 s after its first
# record) until the records of navigation's flows to the tracker's PORT stand for SUM flows.
repeats_written() {
	local i
	for ((i = 0; i < 60; i++)); do
		[[ $(records_sum "$1") == "$2" ]] && return 0
		sleep 0.1
	done
	echo "the records stand for $(records_sum "$1") flows to port $1, not $2:"
	events
	return 1
}

# learned_entries: the addresses the agent's `carwall names` lists (expired ones too, until the
# sweep deletes them).
learned_entries() { cw --json names | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["learned"]))'; }

# swept: bounded wait (12 s: the TTL, then a sweep every 5 s) until no learned address is left.
swept() {
	local i n
	for ((i = 0; i < 120; i++)); do
		n=$(learned_entries) && [[ $n == 0 ]] && return 0
		sleep 0.1
	done
	echo "still $n learned addresses:"
	cw names
	return 1
}

# ---- control: without enforcement the tracker answers, and the name resolves ------------------
expect_flow "control: an unmanaged process reaches the tracker $TRACKER:443" - "$TRACKER" 443 ok
control_dns() { sandbox_in_hu python3 "$TOOL" query --server "$SANDBOX_GW_V4" tiles.oem.example | grep -qx "addr $TILES"; }
tap_check "control: dnsmasq answers tiles.oem.example" control_dns

sandbox_agent_start --inventory-save-interval 1 --flow-report-interval 1 ||
	{ tap_bail_out "the agent did not start"; exit 1; }

# ---- traffic that leaves work pending ----------------------------------------------------------
learn() { sandbox_run_app navigation python3 "$TOOL" query --server "$SANDBOX_GW_V4" tiles.oem.example | grep -qx "addr $TILES"; }
tap_check "navigation resolves tiles.oem.example (TTL ${SHORT_TTL} s)" learn
expect_flow "the learned tiles.oem.example:443 is allowed" navigation "$TILES" 443 ok
expect_flow "the tracker is refused (EPERM, nothing at the server)" navigation "$TRACKER" 443 EPERM
flow_quiet navigation "$TRACKER" 443
flow_quiet navigation "$TRACKER" 443

# ---- that work is done as before --------------------------------------------------------------
tap_check "the repeats are written: the records stand for the 3 refused flows" repeats_written 443 3
tap_check "the inventory is saved: the allowed flow, named by the policy" \
	wait_field tiles.oem.example navigation "$TILES" 443 tcp allowed host
tap_check "the inventory is saved: the refused flow, counted 3 times" \
	wait_field 3 navigation "$TRACKER" 443 tcp refused count
tap_check "the sweep deletes the learned address once it expired" swept

# ---- then the agent sleeps ---------------------------------------------------------------------
quiet() {
	local i c0 c1
	for ((i = 1; i <= IDLE_TRIES; i++)); do
		c0=$(ctxt)
		sleep "$IDLE_S"
		c1=$(ctxt)
		((c1 == c0)) && { echo "quiet in window $i"; return 0; }
		echo "window $i: $((c1 - c0)) context switches"
	done
	return 1
}
tap_check "once nothing is due, no thread of the agent wakes for ${IDLE_S} s" quiet
((TAP_LAST_OK)) && tap_diag "$TAP_LAST_OUTPUT"

# ---- new evidence arms the timer again --------------------------------------------------------
expect_flow "after the idle time, a new refused flow (port 8443) is refused" navigation "$TRACKER" 8443 EPERM
flow_quiet navigation "$TRACKER" 8443
tap_check "its repeat is written when due (the timer armed again)" repeats_written 8443 2
tap_check "its inventory record is saved" wait_field 2 navigation "$TRACKER" 8443 tcp refused count

# ---- on stop, a pending repeat is still written ------------------------------------------------
flow_quiet navigation "$TRACKER" 8443
stopped_clean() { sandbox_agent_stop; }
tap_check "the agent stops cleanly" stopped_clean
written_at_stop() { [[ $(records_sum 8443) == 3 ]]; }
tap_check "the repeat pending at stop is written at stop" written_at_stop
tap_check "the inventory saved at stop counts it" wait_field 3 navigation "$TRACKER" 8443 tcp refused count

tap_done
