#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A reload writes only what differs from what the inactive generation holds, which the agent
# keeps track of without reading the maps: the generation in force whole, the other one as
# its difference to it. This proves the kernel holds exactly the policy after every reload of a
# chain of policies that add, drop, change, shrink and grow rules: the generation put in force
# holds the same entries as the same policy written by an agent that starts with it (nothing
# left over, nothing missing), and the other generation still holds the policy before.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
gen_maps=$top/tests/integration/gen_maps.py

command -v bpftool >/dev/null 2>&1 || {
	tap_skip "reloads write exactly the policy" "bpftool not installed"
	tap_done
	exit 0
}
sandbox_create "cw-rx$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
app_slice="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice"
for app in mediaplayer navigation telemetry voice; do
	mkdir -p "$app_slice/agl-app@$app.service"
done

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }

for v in 0 1 2 3 4; do
	python3 "$gen_maps" policy 7 "$v" "$SANDBOX_DIR/p$v.yaml" ||
		{ tap_bail_out "cannot generate policy $v"; exit 1; }
done

# gen_of DUMP N: the entries of generation N in a dump of gen_maps.py; active_of DUMP: its
# active generation.
gen_of() { sed -n "/^gen $2\$/,/^gen /{/^gen /!p}" "$1"; }
active_of() { sed -n 's/^active //p' "$1"; }

# ---- the reference: each policy as an agent that starts with it writes it --------------------
for v in 0 1 2 3 4; do
	cp "$SANDBOX_DIR/p$v.yaml" "$policy"
	sandbox_agent_start || { tap_bail_out "carwalld did not start with policy $v"; exit 1; }
	python3 "$gen_maps" dump "$SANDBOX_PIN_DIR" >"$SANDBOX_DIR/dump.start" ||
		{ tap_bail_out "cannot read the maps"; exit 1; }
	gen_of "$SANDBOX_DIR/dump.start" "$(active_of "$SANDBOX_DIR/dump.start")" >"$SANDBOX_DIR/ref$v"
	sandbox_agent_stop
done
n0=$(wc -l <"$SANDBOX_DIR/ref0")
n4=$(wc -l <"$SANDBOX_DIR/ref4")
if ((n0 > 1500 && n4 > n0)) && ! cmp -s "$SANDBOX_DIR/ref1" "$SANDBOX_DIR/ref2"; then
	tap_ok "control: the policies written at start differ ($n0 entries for the base, $n4 for the largest)"
else
	tap_not_ok "control: the policies written at start differ" "base $n0, largest $n4 entries"
fi

# ---- a chain of reloads ----------------------------------------------------------------------
cp "$SANDBOX_DIR/p0.yaml" "$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
prev=0
for v in 1 2 0 3 4 1 2; do
	cp "$SANDBOX_DIR/p$v.yaml" "$policy.new"
	mv "$policy.new" "$policy"
	if ! out=$(cw reload 2>&1); then
		tap_not_ok "reload $prev -> $v" "$out"
		prev=$v
		continue
	fi
	python3 "$gen_maps" dump "$SANDBOX_PIN_DIR" >"$SANDBOX_DIR/dump" ||
		{ tap_bail_out "cannot read the maps"; exit 1; }
	a=$(active_of "$SANDBOX_DIR/dump")
	gen_of "$SANDBOX_DIR/dump" "$a" >"$SANDBOX_DIR/active"
	gen_of "$SANDBOX_DIR/dump" "$((1 - a))" >"$SANDBOX_DIR/inactive"
	if cmp -s "$SANDBOX_DIR/active" "$SANDBOX_DIR/ref$v"; then
		tap_ok "reload $prev -> $v: the generation in force holds exactly policy $v"
	else
		tap_not_ok "reload $prev -> $v: the generation in force holds exactly policy $v" \
			"$(diff "$SANDBOX_DIR/ref$v" "$SANDBOX_DIR/active" | head -n 8)"
	fi
	if cmp -s "$SANDBOX_DIR/inactive" "$SANDBOX_DIR/ref$prev"; then
		tap_ok "reload $prev -> $v: the other generation still holds exactly policy $prev"
	else
		tap_not_ok "reload $prev -> $v: the other generation still holds exactly policy $prev" \
			"$(diff "$SANDBOX_DIR/ref$prev" "$SANDBOX_DIR/inactive" | head -n 8)"
	fi
	prev=$v
done
sandbox_agent_stop
tap_done
