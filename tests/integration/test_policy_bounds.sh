#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Issue 11, case 10: a policy under every parser limit (one 65536-entry set named by 100000
# rules: 6.5 billion (prefix, rule) pairs) is refused by `carwall policy check` and by
# `carwall explain` with file:line:column at the rule that crosses the bound, within a bounded
# address space; the same set named by 32 rules, the most the limit allows, is valid and
# explained. The agent refuses the policy the same way on `carwall reload`, says why in
# `carwall status`, and the policy in force stays (checked with flows, in a sandbox).
#
# The address space is limited with `ulimit -v` (512 MiB) for the plain build; an ASan build
# reserves terabytes of address space, so there the limit is left out (the unit test
# test_policy_bounds does the same).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
bin=${CARWALL_BIN_DIR:-$top/build}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# policy FILE RULES: the set `big` (10.0.0.0 to 10.0.255.255, lines 4-65539) and app `a` whose
# rules, from line 65543 on, are each `- to: big` (the set's name at column 13).
policy() {
	awk -v rules="$2" 'BEGIN {
		print "version: 1"; print "sets:"; print "  big:"
		for (i = 0; i < 65536; i++) printf "    - 10.0.%d.%d\n", int(i / 256), i % 256
		print "apps:"; print "  a:"; print "    allow:"
		for (i = 0; i < rules; i++) print "      - to: big"
	}' >"$1"
}

# bounded CMD...: CMD in a 512 MiB address space (plain build), with its output in $dir/out.
asan=
ldd "$bin/carwall" 2>/dev/null | grep -q libasan && asan=1
bounded() {
	if [[ -n $asan ]]; then
		"$@" >"$dir/out" 2>&1
	else
		(ulimit -v $((512 * 1024)) && exec "$@") >"$dir/out" 2>&1
	fi
}
[[ -n $asan ]] && tap_diag "ASan build: no address-space limit (see the header)"

# expect NAME CODE TEXT CMD...: CMD exits with CODE and prints TEXT (a fixed string).
expect() {
	local name=$1 code=$2 text=$3 rc=0

	shift 3
	bounded "$@" || rc=$?
	if ((rc == code)) && grep -qF -- "$text" "$dir/out"; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "command: $*" "exit code $rc, expected $code" \
			"expected text: $text" "output: $(head -c 2000 "$dir/out")"
	fi
}

# Control: 32 rules are 32 x 65536 = 2097152 pairs, the limit: valid, and explained.
policy "$dir/fits.yaml" 32
expect "32 rules naming the 65536-entry set: policy check says valid" 0 \
	"fits.yaml: valid: 1 apps, 1 sets, 32 rules (65536 IPv4 and 0 IPv6 prefixes" \
	"$bin/carwall" policy check "$dir/fits.yaml"
expect "32 rules naming the 65536-entry set: explain allows a member by the first rule" 0 \
	"by:  rule 1 of a at $dir/fits.yaml:65543:9" \
	"$bin/carwall" explain --policy "$dir/fits.yaml" --app a 10.0.200.7:443/tcp

# The reproduction: refused at the 33rd rule (line 65543 + 32), before anything is expanded.
policy "$dir/big.yaml" 100000
why="big.yaml:65575:13: app 'a': with set 'big' (65536 prefixes), the rules name more than 2097152 (prefix, port range) pairs, the compiler's limit (POLICY_MAPS_MAX_PAIRS)"
expect "100000 rules naming the 65536-entry set: policy check refuses at the 33rd rule" 1 \
	"carwall: $dir/$why" "$bin/carwall" policy check "$dir/big.yaml"
expect "100000 rules naming the 65536-entry set: explain refuses at the 33rd rule" 1 \
	"carwall explain: $dir/$why" \
	"$bin/carwall" explain --policy "$dir/big.yaml" --app a 10.0.200.7:443/tcp
expect "100000 rules naming the 65536-entry set: policy check --json gives the same error" 1 \
	"\"error\": \"$dir/$why\"" \
	"$bin/carwall" --json policy check "$dir/big.yaml"

# ---- the agent: the same refusal, and the policy in force stays ---------------------------------
if [[ $(id -u) != 0 ]]; then
	tap_skip "the agent refuses the policy and keeps the one in force" "needs root (sandbox)"
	tap_done
	exit
fi
. "$top/scripts/sandbox.sh"
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
sandbox_create "cw-pb$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }
n=0
# flow EXPECT APP ADDR: one TCP flow to ADDR:443 (as APP, or unmanaged for -); EXPECT ok: it
# went through and the server saw it; EPERM: refused at connect and the server saw nothing.
flow() {
	local expect=$1 app=$2 addr=$3 out rc=0 token
	n=$((n + 1))
	token=pb$$-$n
	if [[ $app == - ]]; then
		out=$(sandbox_in_hu "$FLOWPROBE" tcp "$addr" 443 --token "$token" 2>&1) || rc=$?
	else
		out=$(sandbox_run_app "$app" "$FLOWPROBE" tcp "$addr" 443 --token "$token" 2>&1) || rc=$?
	fi
	if [[ $expect == ok ]]; then
		((rc == 0)) && sandbox_server_saw tcp 443 "$token"
	else
		((rc == 1)) && [[ $out == *"result=EPERM stage=connect"* ]] &&
			! sandbox_server_saw tcp 443 "$token"
	fi
}

cat >"$SANDBOX_POLICY" <<'EOF2'
version: 1
apps:
  mediaplayer:
    allow:
      - to: 198.51.100.20
        ports: [443]
        proto: tcp
EOF2
sha_good=$(sha256sum "$SANDBOX_POLICY" | cut -d' ' -f1)
tap_check "control, no agent: the tracker 203.0.113.7:443 is reached" flow ok - 203.0.113.7
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_check "policy in force: mediaplayer reaches 198.51.100.20:443" flow ok mediaplayer 198.51.100.20
tap_check "policy in force: mediaplayer is refused the tracker" flow EPERM mediaplayer 203.0.113.7

# The reproduction, for mediaplayer, swapped in by rename (the agent sees only whole files).
policy "$dir/agent.yaml" 100000
sed 's/^  a:$/  mediaplayer:/' "$dir/agent.yaml" >"$SANDBOX_DIR/big.tmp"
mv "$SANDBOX_DIR/big.tmp" "$SANDBOX_POLICY"
where="$SANDBOX_POLICY:65575:13: app 'mediaplayer': with set 'big' (65536 prefixes), the rules name more than 2097152"
expect "the agent refuses it at the 33rd rule (carwall reload)" 1 "$where" \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload
status_says_why() {
	local st
	st=$(cw --json status) || return 1
	grep -qF "\"last_error\": \"$where" <<<"$st" && grep -qF "\"sha256\": \"$sha_good\"" <<<"$st"
}
tap_check "carwall status shows why, and the policy in force is the one before" status_says_why
tap_check "after the refusal: mediaplayer still reaches 198.51.100.20:443" flow ok mediaplayer 198.51.100.20
tap_check "after the refusal: mediaplayer is still refused the tracker" flow EPERM mediaplayer 203.0.113.7
tap_done
