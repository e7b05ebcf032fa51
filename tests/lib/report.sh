# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# The residency report's files in a test that sources tests/lib/tap.sh and scripts/sandbox.sh:
# the folder the test keeps them in, and the checks every HTML page of it passes whatever it
# shows: no active content, and headless Chromium draws it (in the head unit's namespace: no
# network) to a screenshot with the charts' fills.

# report_out_dir NAME: prints the folder for the test's report files, made and emptied:
# build/test-logs/NAME (CARWALL_BIN_DIR's), or one in the sandbox when the build tree is
# read-only (a VM guest's).
report_out_dir() {
	local dir=${CARWALL_BIN_DIR:-$SANDBOX_REPO/build}/test-logs/$1

	if ! mkdir -p "$dir" 2>/dev/null || [[ ! -w $dir ]]; then
		dir=$SANDBOX_DIR/out
		mkdir -p "$dir"
	fi
	rm -f "$dir"/*
	printf '%s\n' "$dir"
}

_report_no_active_content() {
	! grep -qiE '<script|<iframe|<object|<embed|<link|<img|src=|href=|url\(|@import|https?:|//[a-z]' "$1"
}

# report_check_inert HTML: one check, that the page has no script, no link and no external URL.
report_check_inert() {
	tap_check "the page has no script, no link, no external URL" _report_no_active_content "$1"
}

# report_check_rendered HTML PNG: two checks, that headless Chromium renders the page to a
# 1024x1280 screenshot PNG, and that it is drawn with a home bar, a cross-border bar and a policy
# in force (their fills); one skip without Chromium.
report_check_rendered() {
	local html=$1 shot=$2 chromium

	chromium=$(command -v chromium) || {
		tap_skip "the page rendered in headless Chromium" "chromium is not installed (scripts/install-deps.sh)"
		return 0
	}
	# 180 s bounds a hung browser only: its first start in an emulated guest takes over a minute.
	tap_check "headless Chromium renders the page to a 1024x1280 screenshot" \
		sandbox_in_hu timeout 180 "$chromium" --headless --no-sandbox --disable-gpu \
		--hide-scrollbars --no-first-run --user-data-dir="$SANDBOX_DIR/chromium" \
		--window-size=1024,1280 --screenshot="$shot" "file://$html"
	tap_check "the screenshot is a drawn page of 1024x1280 with home, cross-border and policy fills" \
		python3 "$SANDBOX_REPO/tests/lib/png_check.py" "$shot" 1024 1280 \
		--color '#1b5e20|#43a047|#81c784|#2e7d32' --color '#bf360c|#f4511e|#ff8a65|#e65100' \
		--color '#1565c0|#6a1b9a|#00838f|#4527a0|#0277bd|#283593'
}
