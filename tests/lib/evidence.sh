# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# The agent's evidence as a test that sources scripts/sandbox.sh (with a running agent) counts
# it: the kernel's per-app counters in `carwall stats`, the events the agent has read, and the
# refusals the events log's records stand for.

_evidence_stats() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --json stats | tr -d ' \n'; }

# app_counter APP FIELD: the app's since_load counter FIELD (refused, events_dropped, ...).
app_counter() {
	_evidence_stats | grep -o "\"id\":\"$1\",\"since_load\":{[^}]*}" |
		grep -o "\"$2\":[0-9]*" | cut -d: -f2
}

# wait_events_read SECONDS: bounded wait until the agent has read every event the kernel sent
# (its received count stops moving over half a second); returns 1 if it still moves then.
wait_events_read() {
	local i now prev=

	for ((i = 0; i < $1 * 2; i++)); do
		now=$(_evidence_stats | grep -o '"received":[0-9]*' | head -1 | cut -d: -f2)
		[[ -n $now && $now == "$prev" ]] && return 0
		prev=$now
		sleep 0.5
	done
	return 1
}

# count_sum: the sum of the "count" fields of the events log's records on stdin (1 for a record
# without one: a single event).
count_sum() {
	local line n sum=0

	while IFS= read -r line; do
		[[ -n $line ]] || continue
		n=$(grep -o '"count":[0-9]*' <<<"$line" | cut -d: -f2)
		sum=$((sum + ${n:-1}))
	done
	echo "$sum"
}
