#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Issue 13, the offline side of host names: `carwall policy check` validates names, resolvers
# and dns:, refuses names without resolvers at file:line:column, and warns (exit 0, or 1 with
# --strict) about destinations that open far more than they say; `carwall explain` judges a
# host name with its rule and says the honest limit. No kernel, no agent.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
bin=${CARWALL_BIN_DIR:-$top/build}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

cat >"$dir/names.yaml" <<'YAML'
version: 1
resolvers: [127.0.0.53, 127.0.0.1]
dns: {min-ttl: 10, max-ttl: 600, grace: 30, max-learned-per-app: 256}
sets:
  maps: ["*.maps.oem.example", 203.0.113.0/24]
apps:
  navigation:
    allow:
      - to: [tiles.oem.example, maps, 198.51.100.0/24]
        ports: [443]
        proto: tcp
  radio:
    allow:
      - to: 192.0.2.1
        ports: [443]
YAML

cat >"$dir/wide.yaml" <<'YAML'
version: 1
resolvers: [127.0.0.53]
apps:
  a:
    allow:
      - to: ["*.com", "::/0", 10.0.0.0/8]
YAML

cat >"$dir/noresolver.yaml" <<'YAML'
version: 1
apps:
  a:
    allow:
      - to: [192.0.2.1, tiles.oem.example]
YAML

# expect NAME CODE CMD...: tap_expect_exit, keeping the command's output in $last_out.
last_out=
expect() {
	tap_expect_exit "$@"
	last_out=$TAP_LAST_OUTPUT
}

# contains TEXT: the output of the last expect holds TEXT.
contains() { [[ $last_out == *"$1"* ]]; }

expect "policy check: a policy with names, wildcards, resolvers and dns: is valid" 0 \
	"$bin/carwall" policy check --strict "$dir/names.yaml"
tap_check "  and has nothing to warn about" test -z "$(echo "$last_out" | grep warning)"

expect "policy check: names without resolvers are an error" 1 \
	"$bin/carwall" policy check "$dir/noresolver.yaml"
tap_check "  at the first name's file:line:column" \
	contains "$dir/noresolver.yaml:5:25: host names need trusted resolvers"

expect "policy check: warnings keep exit code 0" 0 \
	"$bin/carwall" policy check "$dir/wide.yaml"
tap_check "  a wildcard on a top-level domain, at its place" \
	contains "$dir/wide.yaml:6:14: warning: '*.com' is a wildcard on a top-level domain"
tap_check "  every IPv6 address" contains "$dir/wide.yaml:6:23: warning: ::/0 is every IPv6"
tap_check "  a private range without ports" \
	contains "$dir/wide.yaml:6:31: warning: 10.0.0.0/8 in a rule without 'ports'"
expect "policy check --strict: warnings make it fail" 1 \
	"$bin/carwall" policy check --strict "$dir/wide.yaml"
expect "policy check --json: the warnings, listed" 0 \
	"$bin/carwall" --json policy check "$dir/wide.yaml"
tap_check "  three of them" test "$(echo "$last_out" | grep -c '"kind"')" -eq 3
expect "--strict is for policy check only" 2 "$bin/carwall" status --strict

expect "explain: a name the app's rule allows" 0 \
	"$bin/carwall" explain --policy "$dir/names.yaml" --app navigation tiles.oem.example:443/tcp
tap_check "  names the rule and the element of its to" \
	contains "by:  rule 1 of navigation at $dir/names.yaml:9:9"
tap_check "  says the honest limit" contains "carwall learns addresses, not names"
tap_check "  names the app's other names" contains "*.maps.oem.example"
expect "explain: a name below a set's wildcard" 0 \
	"$bin/carwall" explain --policy "$dir/names.yaml" --app navigation eu.maps.oem.example:443/tcp
tap_check "  from the set's entry" contains "its entry *.maps.oem.example at $dir/names.yaml:5:10"
expect "explain: the wildcard's own name is refused" 3 \
	"$bin/carwall" explain --policy "$dir/names.yaml" --app navigation maps.oem.example:443/tcp
expect "explain: another app's name is refused" 3 \
	"$bin/carwall" explain --policy "$dir/names.yaml" --app radio tiles.oem.example:443/tcp
expect "explain: a port the name's rules do not allow is refused" 3 \
	"$bin/carwall" explain --policy "$dir/names.yaml" --app navigation tiles.oem.example:80/tcp
expect "explain: an address the app's prefixes refuse" 3 \
	"$bin/carwall" explain --policy "$dir/names.yaml" --app navigation 192.0.2.7:443/tcp
tap_check "  says its names may still allow it, and which" \
	contains "if the app learned 192.0.2.7 for one of its names (tiles.oem.example, *.maps.oem.example)"
expect "explain: the same for an app without names" 3 \
	"$bin/carwall" explain --policy "$dir/names.yaml" --app radio 192.0.2.7:443/tcp
tap_check "  says nothing of names" test -z "$(echo "$last_out" | grep names)"
expect "explain --batch takes names too" 4 \
	bash -c "printf 'tiles.oem.example:443/tcp\ntiles.oem.example:443/udp\n' |
		'$bin/carwall' explain --policy '$dir/names.yaml' --app navigation --batch -"
tap_check "  one verdict per line" \
	contains "allowed tiles.oem.example:443/tcp rule 0"

tap_done
