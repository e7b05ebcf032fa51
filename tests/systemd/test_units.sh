#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The units `make install` put in place, as systemd (PID 1) loaded them: carwalld.service is
# enabled and active, ordered before the slices of the three app templates; each template's
# app unit has carwall's drop-in in force (the wait, the address families, no capabilities);
# `systemd-analyze verify` finds nothing wrong; `systemd-analyze security carwalld.service` is
# printed (README, "AGL deployment").
set -u
. "$(dirname "$0")/lib.sh"
sd_require

tap_check "carwalld.service is enabled" bash -c '[[ $(systemctl is-enabled carwalld.service) == enabled ]]'
tap_check "carwalld.service is active" systemctl is-active -q carwalld.service
before=$(systemctl show -p Before --value carwalld.service)
for s in 'system-agl\x2dapp.slice' 'system-agl\x2dapp\x2dweb.slice' 'system-agl\x2dapp\x2dflutter.slice'; do
	# systemctl show quotes and C-escapes unit names: "system-agl\\x2dapp.slice".
	tap_check "carwalld.service is ordered before $s" bash -c \
		'tr " " "\n" <<<"$2" | tr -d "\"" | sed "s/\\\\\\\\/\\\\/g" | grep -qxF -- "$1"' _ "$s" "$before"
done
for tpl in "${SD_TEMPLATES[@]}"; do
	u=$tpl@${SD_APP_OF[$tpl]}.service
	[[ -e $SD_APPS_DIR/${SD_APP_OF[$tpl]} ]] || install -m 0755 /dev/null "$SD_APPS_DIR/${SD_APP_OF[$tpl]}"
	tap_check "$u: carwall's drop-in is in force" bash -c \
		'systemctl show -p DropInPaths --value "$1" | grep -q "$2@.service.d/carwall.conf"' _ "$u" "$tpl"
	tap_check "$u: ExecStartPre is carwall app wait-managed" bash -c \
		'systemctl show -p ExecStartPre --value "$1" | grep -q "carwall app wait-managed"' _ "$u"
	tap_check "$u: RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK" bash -c \
		'[[ $(systemctl show -p RestrictAddressFamilies --value "$1" | tr " " "\n" | sort | paste -sd" ") == "AF_INET AF_INET6 AF_NETLINK AF_UNIX" ]]' _ "$u"
	tap_check "$u: no capabilities, no new privileges" bash -c \
		'[[ $(systemctl show -p CapabilityBoundingSet --value "$1") == "" && $(systemctl show -p NoNewPrivileges --value "$1") == yes ]]' _ "$u"
	out=$(systemd-analyze verify "$u" 2>&1)
	tap_check "systemd-analyze verify $u: nothing wrong" test -z "$out"
	[[ -z $out ]] || tap_diag "$out"
done
out=$(systemd-analyze verify carwalld.service 2>&1)
tap_check "systemd-analyze verify carwalld.service: nothing wrong" test -z "$out"
[[ -z $out ]] || tap_diag "$out"
sec=$(systemd-analyze security --no-pager carwalld.service 2>&1)
tap_check "systemd-analyze security carwalld.service gives an exposure level" \
	bash -c 'grep -q "Overall exposure level for carwalld.service" <<<"$1"' _ "$sec"
printf '%s\n' "$sec" >&2
tap_diag "$(grep 'Overall exposure' <<<"$sec")"
tap_done
