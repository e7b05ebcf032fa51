#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Run every test suite and end with one line: "N passed, N failed, N skipped". The line before
# says how many of those checks are distinct (the plain build's unit, fuzz and integration
# suites) and how many are the same checks run again with the ASan+UBSan build.
# Each suite speaks TAP (cmocka with CMOCKA_MESSAGE_OUTPUT=TAP, the bash integration tests with
# tests/lib/tap.sh); a suite that exits non-zero without reporting a failure counts as one.
#
# Usage: tests/run.sh [SUITE...]   suites: unit unit-san fuzz integration integration-san
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2

logdir=$top/build/test-logs
mkdir -p "$logdir"
passed=0 failed=0 skipped=0
distinct=0 repeat=0

# start_suite NAME CMD...: run one suite in the background, its TAP to $logdir/NAME.tap and its
# exit status to $logdir/NAME.rc; report_suite NAME waits for it, shows its TAP and counts it.
declare -A suite_pid suite_cmd
start_suite() {
	local name=$1
	shift
	suite_cmd[$name]="$*"
	rm -f "$logdir/$name.rc"
	( "$@" >"$logdir/$name.tap" 2>&1; echo $? >"$logdir/$name.rc" ) &
	suite_pid[$name]=$!
}

report_suite() {
	local name=$1
	local log=$logdir/$name.tap rc p f s
	wait "${suite_pid[$name]}"
	rc=$(cat "$logdir/$name.rc" 2>/dev/null || echo 255)
	echo "# ---- $name: ${suite_cmd[$name]}"
	sed 's/^/  /' "$log"
	p=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+.*# SKIP' "$log" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+' "$log" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "  not ok - $name exited with status $rc without reporting a failure"
		f=1
	fi
	if [ $((p + f + s)) -eq 0 ]; then
		echo "  not ok - $name ran no test"
		f=1
	fi
	echo "# $name: $p passed, $f failed, $s skipped"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	case $name in
	*-san) repeat=$((repeat + p + f + s)) ;;
	*) distinct=$((distinct + p + f + s)) ;;
	esac
}

run_suite() {
	start_suite "$@"
	report_suite "$1"
}

# unit BUILD: every cmocka binary of a build folder (test_dns_kernel loads BPF: it SKIPs unless
# root).
unit_suite() {
	local rc=0 t
	for t in "$1"/tests/test_*; do
		[ -x "$t" ] || continue
		CMOCKA_MESSAGE_OUTPUT=TAP "$t" || rc=1
	done
	return $rc
}

# A short libFuzzer run per target, on its seed corpus with its dictionary (`make fuzz` runs
# longer and keeps its corpus). libFuzzer runs on one CPU: as many targets at once as there are
# CPUs, each reported in the order of its file name.
fuzz_run() {
	local f=$1 name=$2 corpus dict=()
	corpus=$(mktemp -d)
	[ -f "tests/fuzz/$name.dict" ] && dict=("-dict=tests/fuzz/$name.dict")
	"$f" -max_total_time="${FUZZ_SMOKE_SECONDS:-20}" -print_final_stats=0 \
		-artifact_prefix="$logdir/fuzz-$name-" "${dict[@]}" \
		"$corpus" "tests/fuzz/corpus/$name" >"$logdir/fuzz-$name.log" 2>&1
	echo $? >"$logdir/fuzz-$name.rc"
	rm -rf "$corpus"
}

fuzz_suite() {
	local n=0 f name names=() width pids=()
	width=$(nproc 2>/dev/null || echo 1)
	for f in build-fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		name=${f##*/fuzz_}
		names+=("$name")
		fuzz_run "$f" "$name" &
		pids+=($!)
		# At most $width at once: wait for the oldest still running.
		if [ ${#pids[@]} -ge "$width" ]; then
			wait "${pids[0]}"
			pids=("${pids[@]:1}")
		fi
	done
	wait "${pids[@]}" 2>/dev/null
	for name in "${names[@]}"; do
		n=$((n + 1))
		if [ "$(cat "$logdir/fuzz-$name.rc" 2>/dev/null)" = 0 ]; then
			echo "ok $n - fuzz_$name: no crash in ${FUZZ_SMOKE_SECONDS:-20}s"
		else
			echo "not ok $n - fuzz_$name crashed; see $logdir/fuzz-$name.log"
			tail -20 "$logdir/fuzz-$name.log" | sed 's/^/# /'
		fi
	done
	echo "1..$n"
}

# integration BUILD [reverse]: every tests/integration/test_*.sh and tests/adversarial/test_*.sh
# with the binaries of a build folder; in reverse order with "reverse": when the two suites run
# at the same time, the same heavy test (a flood, 300 reloads) never runs in both at once.
integration_suite() {
	local bin=$1 order=${2:-} rc=0 t
	local -a files=(tests/integration/test_*.sh tests/adversarial/test_*.sh) list=()
	if [ "$(id -u)" -ne 0 ]; then
		echo "ok 1 - integration # SKIP needs root (cgroups, bpffs, network namespaces)"
		return 0
	fi
	if [ "$order" = reverse ]; then
		for ((t = ${#files[@]} - 1; t >= 0; t--)); do list+=("${files[t]}"); done
	else
		list=("${files[@]}")
	fi
	for t in "${list[@]}"; do
		[ -f "$t" ] || continue
		echo "# $t"
		CARWALL_BIN_DIR=$top/$bin bash "$t" || rc=1
	done
	return $rc
}

# The two integration suites (plain and ASan+UBSan builds) run at the same time when both are
# asked for: each test makes its own cgroups, pins and network namespaces, and most of their time
# is waiting (TTLs, grace periods, reloads under traffic), so together they take little more
# than one. CARWALL_TEST_SERIAL=1 runs them one after the other.
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit unit-san fuzz integration integration-san)
suite_name() {
	case $1 in
	unit) echo "unit unit_suite build" ;;
	unit-san) echo "unit-san unit_suite build-san" ;;
	fuzz) echo "fuzz fuzz_suite" ;;
	integration) echo "integration integration_suite build" ;;
	integration-san) echo "integration-san integration_suite build-san" ;;
	*) return 1 ;;
	esac
}
for s in "${suites[@]}"; do
	if ! suite_name "$s" >/dev/null; then
		echo "unknown suite $s" >&2
		exit 2
	fi
done
together=0
if [ "${CARWALL_TEST_SERIAL:-0}" != 1 ] && [[ " ${suites[*]} " == *" integration "* ]] &&
	[[ " ${suites[*]} " == *" integration-san "* ]]; then
	together=1
fi
for s in "${suites[@]}"; do
	# shellcheck disable=SC2046 # the words of suite_name are the arguments
	if [ $together = 1 ] && [ "$s" = integration ]; then
		start_suite $(suite_name integration)
		start_suite $(suite_name integration-san) reverse
		report_suite integration
		report_suite integration-san
	elif [ $together = 1 ] && [ "$s" = integration-san ]; then
		continue
	else
		run_suite $(suite_name "$s")
	fi
done

echo "# distinct checks: $distinct (plain build); sanitizer repeat: $repeat (ASan+UBSan build)"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
