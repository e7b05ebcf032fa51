#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# scripts/kernel/check-config.sh names each option of scripts/kernel/carwall.cfg that a kernel
# configuration lacks, by its CONFIG_ name: a configuration with everything passes; one without
# CGROUP_BPF (or with INET_DIAG_DESTROY off) fails (or warns) naming exactly that option; a
# gzipped one (/proc/config.gz) reads the same; no configuration is a clear error. The running
# kernel is checked last (its result printed).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
check=$top/scripts/kernel/check-config.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A configuration with every option of the fragment (y; RDS off as recommended).
grep '^CONFIG_' "$top/scripts/kernel/carwall.cfg" >"$tmp/full"
echo 'CONFIG_OTHER=y' >>"$tmp/full"
tap_check "every option there: exit 0" "$check" --config "$tmp/full"
tap_check "every option there: nothing missing" bash -c '"$1" --config "$2" | grep -q "0 required option(s) missing, 0 warning"' _ "$check" "$tmp/full"

sed 's/^CONFIG_CGROUP_BPF=y/# CONFIG_CGROUP_BPF is not set/' "$tmp/full" >"$tmp/no-cgroup-bpf"
tap_expect_exit "CGROUP_BPF not set: exit 1" 1 "$check" --config "$tmp/no-cgroup-bpf"
tap_check "CGROUP_BPF not set: named by its CONFIG_ name, with what needs it" \
	bash -c '"$1" --config "$2" | grep -q "^missing: CONFIG_CGROUP_BPF (needed: cgroup BPF hooks"' _ "$check" "$tmp/no-cgroup-bpf"
tap_check "CGROUP_BPF not set: nothing else named" \
	bash -c '[[ $("$1" --config "$2" | grep -c "^missing:") == 1 ]]' _ "$check" "$tmp/no-cgroup-bpf"

grep -v '^CONFIG_SECCOMP_FILTER=' "$tmp/full" >"$tmp/no-seccomp"
tap_check "SECCOMP_FILTER absent: named as missing" \
	bash -c '"$1" --config "$2" | grep -q "^missing: CONFIG_SECCOMP_FILTER "' _ "$check" "$tmp/no-seccomp"

sed -e 's/^CONFIG_INET_DIAG_DESTROY=y/# CONFIG_INET_DIAG_DESTROY is not set/' -e 's/^CONFIG_INET_DIAG=y/CONFIG_INET_DIAG=m/' \
	"$tmp/full" >"$tmp/no-destroy"
echo 'CONFIG_RDS=m' >>"$tmp/no-destroy"
tap_check "INET_DIAG_DESTROY off, INET_DIAG=m, RDS=m: still exit 0 (recommended only)" "$check" --config "$tmp/no-destroy"
tap_check "INET_DIAG_DESTROY off: a warning names it" \
	bash -c '"$1" --config "$2" | grep -q "^warning: CONFIG_INET_DIAG_DESTROY is not set"' _ "$check" "$tmp/no-destroy"
tap_check "RDS=m: a warning names it" \
	bash -c '"$1" --config "$2" | grep -q "^warning: CONFIG_RDS=m"' _ "$check" "$tmp/no-destroy"
tap_check "INET_DIAG=m counts as there" \
	bash -c '! "$1" --config "$2" | grep -q "CONFIG_INET_DIAG "' _ "$check" "$tmp/no-destroy"

gzip -c "$tmp/no-cgroup-bpf" >"$tmp/config.gz"
tap_check "a gzipped configuration (/proc/config.gz) reads the same" \
	bash -c '"$1" --config "$2" | grep -q "^missing: CONFIG_CGROUP_BPF "' _ "$check" "$tmp/config.gz"
tap_expect_exit "no configuration: exit 2" 2 "$check" --config "$tmp/absent"
: >"$tmp/empty"
tap_expect_exit "a file with no CONFIG_ line: exit 2" 2 "$check" --config "$tmp/empty"

if [[ -r /proc/config.gz || -r /boot/config-$(uname -r) ]]; then
	out=$("$check" 2>&1)
	tap_check "the running kernel $(uname -r) has what carwall requires" test "$(tail -1 <<<"$out" | cut -d' ' -f2)" = 0
	tap_diag "$out"
else
	tap_skip "the running kernel" "neither /proc/config.gz nor /boot/config-$(uname -r)"
fi
tap_done
