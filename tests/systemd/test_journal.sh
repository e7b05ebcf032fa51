#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Under systemd, carwalld.service's records are journal entries with the flow's fields: an app's
# refused flow is found with `journalctl CARWALL_APP=<id>`, with its destination, port,
# protocol, verdict and rule as fields, the MESSAGE_ID of a refused flow and PRIORITY=4
# (warning); the agent's readiness and its policy in force have their MESSAGE_IDs at info (6).
set -u
. "$(dirname "$0")/lib.sh"
sd_require
if ! sd_net_create; then
	tap_bail_out "cannot make the server's network namespace"
	exit 1
fi
tpl=agl-app
id=${SD_APP_OF[$tpl]}
msgid() {
	sed -n "s/^#define CW_MESSAGE_$1 \"\\([0-9a-f]*\\)\"\$/\\1/p" "$SD_REPO/userspace/lib/message_ids.h"
}

# jentries FIELD=VALUE...: the entries since $cursor with those fields, one JSON line each.
# (journalctl 252 finds nothing when --after-cursor and field matches are combined: the matches
# are applied here.)
jentries() {
	journalctl --after-cursor "$cursor" -o json --no-pager 2>/dev/null | python3 -c '
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[1:])
for line in sys.stdin:
    e = json.loads(line)
    if all(e.get(k) == v for k, v in want.items()):
        print(line.strip())' "$@"
}
# jentry FIELD=VALUE...: the newest of them (bounded wait: journald may write it a moment later).
jentry() {
	local i e end=$((SECONDS + 20))
	for ((i = 0; i < 100 && SECONDS < end; i++)); do
		e=$(jentries "$@" | tail -1)
		[[ -n $e ]] && { printf '%s\n' "$e"; return 0; }
		sleep 0.2
	done
	return 1
}
# jfield JSON NAME: the field's value (journald gives text fields as JSON strings).
jfield() {
	[[ -n $1 ]] || return 0
	python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2"
}

cursor=$(journalctl -n 0 --show-cursor --no-pager 2>/dev/null | sed -n 's/^-- cursor: //p')
tap_check "the journal has a cursor to start from" test -n "$cursor"
# A new agent: a new events table (the tracker's flow is not a repeat of an earlier test's).
tap_check "systemctl restart carwalld" systemctl restart carwalld.service

e=$(jentry _SYSTEMD_UNIT=carwalld.service MESSAGE_ID="$(msgid READY)")
tap_check "carwalld.service: 'Ready' has its MESSAGE_ID at PRIORITY=6 (info)" \
	test "$(jfield "$e" PRIORITY)" = 6
e=$(jentry _SYSTEMD_UNIT=carwalld.service MESSAGE_ID="$(msgid POLICY_IN_FORCE)")
tap_check "carwalld.service: 'Policy ... in force' has its MESSAGE_ID at PRIORITY=6" \
	bash -c '[[ $1 == 6 && $2 == "Policy "*" in force "* ]]' _ "$(jfield "$e" PRIORITY)" "$(jfield "$e" MESSAGE)"

sd_app_flows "$tpl" "$id" "journal"
e=$(jentry _SYSTEMD_UNIT=carwalld.service CARWALL_APP="$id" MESSAGE_ID="$(msgid FLOW_REFUSED)")
if [[ -n $e ]]; then
	tap_ok "journalctl CARWALL_APP=$id MESSAGE_ID=<refused flow> finds the refused flow"
else
	tap_not_ok "journalctl CARWALL_APP=$id MESSAGE_ID=<refused flow> finds the refused flow" \
		"$(journalctl --after-cursor "$cursor" -u carwalld.service -o cat --no-pager | tail -10)"
fi
for kv in PRIORITY=4 CARWALL_EVENT=refused CARWALL_DEST="$SD_TRACKER_V4" CARWALL_PORT=443 \
	CARWALL_PROTO=tcp CARWALL_HOOK=connect4 CARWALL_VERDICT=default-deny \
	"CARWALL_RULE=default deny" CARWALL_COUNT=1 CARWALL_UID=1001 CARWALL_COMM=flowprobe; do
	tap_check "the refused flow's entry: ${kv%%=*}=${kv#*=}" test "$(jfield "$e" "${kv%%=*}")" = "${kv#*=}"
done
tap_check "the refused flow's entry: MESSAGE is the logfmt line" \
	bash -c '[[ $1 == "event=refused app=$2 "* ]]' _ "$(jfield "$e" MESSAGE)" "$id"
entries=$(jentries CARWALL_APP="$id" CARWALL_DEST="$SD_OEM_V4")
tap_check "the allowed flow has no entry" test -z "$entries"
tap_check "journalctl -p warning shows the refused flow" bash -c \
	'journalctl --after-cursor "$1" -p warning -o cat --no-pager -u carwalld.service | grep -q "^event=refused app=$2 "' \
	_ "$cursor" "$id"
tap_done
