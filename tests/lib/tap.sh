# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034 # TAP_LAST_* are read by the caller
#
# tap.sh: a tiny TAP 13 producer for bash test files. Source it.
#
#     . tests/lib/tap.sh
#     tap_plan 3                                  # optional; else tap_done prints 1..N
#     tap_check "policy parses" build/carwall check policies/demo.yaml
#     tap_expect_exit "tracker denied" 1 build/flowprobe tcp 203.0.113.7 443
#     tap_skip "ipv6 flows" "no IPv6 in this kernel"
#     tap_done                                    # last command: its status is the file's
#
# Every tap_* function returns 0, so a `set -e` test file keeps going after a failure; the
# outcome of the last test is left in TAP_LAST_OK (1 ok, 0 not ok), and for tap_check and
# tap_expect_exit the command's exit code and combined stdout+stderr in TAP_LAST_RC and
# TAP_LAST_OUTPUT. Only tap_done returns non-zero (when a test failed or the plan was not met).
# The command's stdin is /dev/null: `tap_check NAME grep -q X <<<"$out"` greps nothing; wrap such
# a check in a function that reads the variable.
#
# Everything is printed on stdout; diagnostics are "# " lines. Commands run by the test file
# outside tap_check/tap_expect_exit must not print to stdout (redirect them, or use tap_diag).
# Set TAP_VERBOSE=1 to also see the output of passing commands as diagnostics.

TAP_COUNT=0
TAP_FAILED=0
TAP_PLANNED=
TAP_LAST_OK=
TAP_LAST_RC=
TAP_LAST_OUTPUT=
_TAP_HEADER_DONE=

_tap_header() {
	if [[ -z $_TAP_HEADER_DONE ]]; then
		printf 'TAP version 13\n'
		_TAP_HEADER_DONE=1
	fi
}

# A description must stay on one line, must not look like a test number, and a '#' in it
# would start a directive.
_tap_desc() {
	local d=${1//$'\n'/ }

	d=${d//$'\r'/ }
	d=${d//\\/\\\\}
	d=${d//#/\\#}
	printf '%s' "$d"
}

# tap_diag LINE...: each argument, split on newlines, as a "# " line.
tap_diag() {
	local arg line

	_tap_header
	for arg in "$@"; do
		while IFS= read -r line || [[ -n $line ]]; do
			printf '# %s\n' "$line"
		done <<<"$arg"
	done
	return 0
}

# tap_plan N: print the plan first (optional).
tap_plan() {
	_tap_header
	if [[ ! ${1:-} =~ ^[0-9]+$ ]]; then
		tap_diag "tap_plan: bad count '${1:-}'"
		return 0
	fi
	TAP_PLANNED=$1
	printf '1..%s\n' "$1"
	return 0
}

tap_ok() {
	_tap_header
	TAP_COUNT=$((TAP_COUNT + 1))
	TAP_LAST_OK=1
	printf 'ok %d - %s\n' "$TAP_COUNT" "$(_tap_desc "${1:-}")"
	return 0
}

# tap_not_ok NAME [DIAG...]
tap_not_ok() {
	_tap_header
	TAP_COUNT=$((TAP_COUNT + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	TAP_LAST_OK=0
	printf 'not ok %d - %s\n' "$TAP_COUNT" "$(_tap_desc "${1:-}")"
	shift || true
	(($# == 0)) || tap_diag "$@"
	return 0
}

# tap_skip NAME REASON
tap_skip() {
	_tap_header
	TAP_COUNT=$((TAP_COUNT + 1))
	TAP_LAST_OK=1
	printf 'ok %d - %s # SKIP %s\n' "$TAP_COUNT" "$(_tap_desc "${1:-}")" \
		"$(_tap_desc "${2:-}")"
	return 0
}

# Runs "$@" in the current shell (so functions may set variables), output to a temp file.
_tap_run() {
	local out rc=0

	out=$(mktemp "${TMPDIR:-/tmp}/tap.XXXXXX") || {
		TAP_LAST_RC=127
		TAP_LAST_OUTPUT="tap.sh: mktemp failed"
		return 0
	}
	"$@" >"$out" 2>&1 </dev/null || rc=$?
	TAP_LAST_RC=$rc
	TAP_LAST_OUTPUT=$(cat "$out" 2>/dev/null) || TAP_LAST_OUTPUT=
	rm -f -- "$out"
	return 0
}

_tap_cmdline() {
	local q

	printf -v q '%q ' "$@"
	printf '%s' "${q% }"
}

# tap_check NAME CMD...: ok if CMD exits 0; otherwise not ok with its output as diagnostics.
tap_check() {
	local name=${1:-}

	shift || true
	if (($# == 0)); then
		tap_not_ok "$name" "tap_check: no command"
		return 0
	fi
	_tap_run "$@"
	if ((TAP_LAST_RC == 0)); then
		tap_ok "$name"
		if [[ -n ${TAP_VERBOSE:-} && -n $TAP_LAST_OUTPUT ]]; then
			tap_diag "$TAP_LAST_OUTPUT"
		fi
	else
		tap_not_ok "$name" "command: $(_tap_cmdline "$@")" "exit code: $TAP_LAST_RC" \
			${TAP_LAST_OUTPUT:+"$TAP_LAST_OUTPUT"}
	fi
	return 0
}

# tap_expect_exit NAME CODE CMD...: ok if CMD exits with exactly CODE.
tap_expect_exit() {
	local name=${1:-} code=${2:-}

	shift 2 || true
	if [[ ! $code =~ ^[0-9]+$ ]] || (($# == 0)); then
		tap_not_ok "$name" "tap_expect_exit: usage: NAME CODE CMD..."
		return 0
	fi
	_tap_run "$@"
	if ((TAP_LAST_RC == code)); then
		tap_ok "$name"
		if [[ -n ${TAP_VERBOSE:-} && -n $TAP_LAST_OUTPUT ]]; then
			tap_diag "$TAP_LAST_OUTPUT"
		fi
	else
		tap_not_ok "$name" "command: $(_tap_cmdline "$@")" \
			"expected exit code $code, got $TAP_LAST_RC" \
			${TAP_LAST_OUTPUT:+"$TAP_LAST_OUTPUT"}
	fi
	return 0
}

# tap_bail_out REASON: tell the harness to stop; the caller should exit afterwards.
tap_bail_out() {
	_tap_header
	printf 'Bail out! %s\n' "$(_tap_desc "${1:-}")"
	return 0
}

# tap_done: prints the plan (unless tap_plan did) and returns 1 if any test failed or the
# plan does not match the number of tests run.
tap_done() {
	_tap_header
	if [[ -z $TAP_PLANNED ]]; then
		printf '1..%d\n' "$TAP_COUNT"
	elif ((TAP_PLANNED != TAP_COUNT)); then
		tap_diag "planned $TAP_PLANNED tests but ran $TAP_COUNT"
		return 1
	fi
	if ((TAP_FAILED > 0)); then
		tap_diag "failed $TAP_FAILED of $TAP_COUNT tests"
		return 1
	fi
	return 0
}
