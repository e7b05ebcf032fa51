#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The manual pages cannot drift from --help: every --long option and every command that
# `carwall --help` (and the --help of its objects that have their own) and `carwalld --help`
# print must be in the scdoc source of carwall(8) and carwalld(8): an option as *--name*, a
# command as *carwall OBJECT [COMMAND]*. A mutated page with one option and one command left out
# must fail the same check (the check can fail). The sources must build with scdoc when it is
# installed (`make man`, part of `make check` and `make install`).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
carwall_man=$top/userspace/cli/carwall.8.scd
carwalld_man=$top/userspace/agent/carwalld.8.scd
policy_man=$top/policies/carwall-policy.5.scd

work=$(mktemp -d "${TMPDIR:-/tmp}/carwall-man.XXXXXX") || {
	tap_bail_out "mktemp failed"
	exit 1
}
trap 'rm -rf -- "$work"' EXIT

# options TEXT: the --long options a help text names, one a line.
options() {
	grep -oE -- '--[a-z][a-z0-9-]+' <<<"$1" | sort -u
}

# commands TEXT: "OBJECT" or "OBJECT COMMAND" for each "carwall [...] OBJECT [COMMAND|...]" line
# of a help text (COMMAND: lower case words, alternatives split on '|'; two spaces end the
# synopsis, a description follows).
commands() {
	sed -nE 's/^[[:space:]]*(Usage:[[:space:]]+)?carwall[[:space:]]+(\[[^]]*\][[:space:]]+)*//p' <<<"$1" |
		sed -E 's/  .*//' |
		awk '{
			if ($1 !~ /^[a-z][a-z-]*$/) next
			if ($2 ~ /^[a-z][a-z|-]*$/) {
				n = split($2, c, "|")
				for (i = 1; i <= n; i++) print $1 " " c[i]
			} else {
				print $1
			}
		}' | sort -u
}

# missing PAGE OPTIONS COMMANDS: what the page lacks, one a line; nothing when complete.
missing() {
	local page=$1 o c
	while read -r o; do
		[[ -z $o ]] || grep -qF -- "*$o*" "$page" || echo "option $o"
	done <<<"$2"
	while read -r c; do
		[[ -z $c ]] || grep -qF -e "*carwall $c*" -e "*carwall $c " "$page" ||
			echo "command carwall $c"
	done <<<"$3"
}

help_of() {
	"$@" 2>&1
}

# ---- carwall ------------------------------------------------------------------------------------
carwall_help=$(help_of "$bin/carwall" --help)
for object in bundle events app explain; do
	carwall_help+=$'\n'$(help_of "$bin/carwall" "$object" --help)
done
c_opts=$(options "$carwall_help")
c_cmds=$(commands "$carwall_help")
# Control: the parsers find what the help says (a broken parser would make every page pass).
if grep -qx -- '--json' <<<"$c_opts" && grep -qx -- '--batch' <<<"$c_opts" &&
	grep -qx 'bundle inspect' <<<"$c_cmds" && grep -qx 'policy check' <<<"$c_cmds" &&
	grep -qx 'app wait-managed' <<<"$c_cmds" && grep -qx 'version' <<<"$c_cmds"; then
	tap_ok "the help of carwall names $(wc -l <<<"$c_opts") options and $(wc -l <<<"$c_cmds") commands"
else
	tap_not_ok "the help of carwall is parsed" "options: $c_opts" "commands: $c_cmds"
fi
gaps=$(missing "$carwall_man" "$c_opts" "$c_cmds")
if [[ -z $gaps ]]; then
	tap_ok "carwall(8) has every option and command of carwall --help"
else
	tap_not_ok "carwall(8) has every option and command of carwall --help" "$gaps"
fi

# The check fails on a page that lacks one option and one command.
grep -vF -e '*--follow*' -e '*carwall stats*' "$carwall_man" >"$work/carwall.8.scd"
gaps=$(missing "$work/carwall.8.scd" "$c_opts" "$c_cmds")
if grep -qx 'option --follow' <<<"$gaps" && grep -qx 'command carwall stats' <<<"$gaps"; then
	tap_ok "a carwall(8) without --follow and stats is caught"
else
	tap_not_ok "a carwall(8) without --follow and stats is caught" "found: $gaps"
fi

# ---- carwalld -----------------------------------------------------------------------------------
d_opts=$(options "$(help_of "$bin/carwalld" --help)")
if grep -qx -- '--developer-mode' <<<"$d_opts" && grep -qx -- '--pin-dir' <<<"$d_opts"; then
	tap_ok "the help of carwalld names $(wc -l <<<"$d_opts") options"
else
	tap_not_ok "the help of carwalld is parsed" "options: $d_opts"
fi
gaps=$(missing "$carwalld_man" "$d_opts" "")
if [[ -z $gaps ]]; then
	tap_ok "carwalld(8) has every option of carwalld --help"
else
	tap_not_ok "carwalld(8) has every option of carwalld --help" "$gaps"
fi
grep -vF '*--threshold*' "$carwalld_man" >"$work/carwalld.8.scd"
gaps=$(missing "$work/carwalld.8.scd" "$d_opts" "")
if [[ $gaps == "option --threshold" ]]; then
	tap_ok "a carwalld(8) without --threshold is caught"
else
	tap_not_ok "a carwalld(8) without --threshold is caught" "found: $gaps"
fi

# ---- the sources build --------------------------------------------------------------------------
if command -v scdoc >/dev/null; then
	for page in "$carwall_man" "$carwalld_man" "$policy_man"; do
		tap_check "scdoc builds ${page#"$top"/}" scdoc <"$page"
	done
else
	tap_skip "scdoc builds the manual pages" "scdoc is not installed (scripts/install-deps.sh)"
fi

tap_done
