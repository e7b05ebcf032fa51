#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# check-config.sh: does a kernel have what carwall needs? Reads the kernel's configuration and
# names each option of scripts/kernel/carwall.cfg that it lacks, by its CONFIG_ name, with
# what needs it.
#
#   scripts/kernel/check-config.sh [--config FILE] [--fragment FILE]
#
# FILE: a .config, plain or gzipped; default /proc/config.gz (CONFIG_IKCONFIG_PROC), else
# /boot/config-$(uname -r). Exit status: 0 when every required option is there (missing
# recommended options and enabled [off] options are warnings), 1 when one is missing, 2 when no
# configuration could be read.
set -euo pipefail

fragment=$(cd "$(dirname "$0")" && pwd -P)/carwall.cfg
config=''
while (($#)); do
	case $1 in
	--config) config=${2:?--config FILE}; shift 2 ;;
	--fragment) fragment=${2:?--fragment FILE}; shift 2 ;;
	-h | --help) sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "check-config: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
if [[ -z $config ]]; then
	for c in /proc/config.gz "/boot/config-$(uname -r)"; do
		[[ -r $c ]] && { config=$c; break; }
	done
fi
if [[ -z $config || ! -r $config ]]; then
	echo "check-config: no kernel configuration to read (${config:-/proc/config.gz and /boot/config-$(uname -r) absent}; pass --config FILE)" >&2
	exit 2
fi
[[ -r $fragment ]] || { echo "check-config: cannot read $fragment" >&2; exit 2; }

if gzip -t "$config" 2>/dev/null; then
	text=$(gzip -dc "$config")
else
	text=$(cat "$config")
fi
grep -q '^CONFIG_' <<<"$text" || { echo "check-config: $config has no CONFIG_ line" >&2; exit 2; }

echo "check-config: $config against ${fragment##*/}"
# Per option of the fragment: "SECTION NAME WANT REASON".
awk '
	/^# \[[a-z]+\]$/ { section = substr($2, 2, length($2) - 2); reason = ""; next }
	/^# CONFIG_[A-Z0-9_]+ is not set$/ { print section, $2, "n", reason; reason = ""; next }
	/^# / { reason = substr($0, 3); next }
	/^CONFIG_[A-Z0-9_]+=/ { split($0, kv, "="); print section, kv[1], kv[2], reason; next }
	/^$/ { reason = "" }
' "$fragment" >"${TMPDIR:-/tmp}/cw-kcfg.$$"
trap 'rm -f "${TMPDIR:-/tmp}/cw-kcfg.$$"' EXIT

missing=0 warned=0
while read -r section name want reason; do
	have=$(awk -F= -v n="$name" '$1 == n { print $2; exit }
		$0 == "# " n " is not set" { print "n"; exit }' <<<"$text")
	have=${have:-n}
	case $section in
	required | recommended)
		[[ $have == y || ($have == m && $want != n) ]] && continue
		if [[ $section == required ]]; then
			echo "missing: $name (needed: $reason)"
			missing=$((missing + 1))
		else
			echo "warning: $name is not set (recommended: $reason)"
			warned=$((warned + 1))
		fi
		;;
	off)
		[[ $have == n ]] && continue
		echo "warning: $name=$have (better off: $reason)"
		warned=$((warned + 1))
		;;
	esac
done <"${TMPDIR:-/tmp}/cw-kcfg.$$"
echo "check-config: $missing required option(s) missing, $warned warning(s)"
((missing == 0))
