#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Issue 11, case 10: a policy under every parser limit (one 65536-entry set named by 100000
# rules: 6.5 billion (prefix, rule) pairs) is refused by `carwall policy check` and by
# `carwall explain` with file:line:column at the rule that crosses the bound, within a bounded
# address space; the same set named by 32 rules, the most the limit allows, is valid and
# explained. No kernel involved.
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
tap_done
