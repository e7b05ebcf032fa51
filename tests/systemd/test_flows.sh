#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Under systemd as PID 1, apps started as applaunchd starts them (`systemctl start
# <template>@<id>.service`, run as agl-driver) from each of AGL's three templates: the flows
# of the policy reach the server (IPv4 and IPv6, TCP and UDP), the others fail with EPERM at
# connect (TCP) or send (UDP) and the server sees nothing. Control: the same refused
# destinations are reached from outside any app.
set -u
. "$(dirname "$0")/lib.sh"
sd_require

if ! sd_net_create; then
	tap_bail_out "cannot make the server's network namespace"
	exit 1
fi

"$SD_FLOWPROBE" tcp "$SD_TRACKER_V4" 443 --token control-v4 >/dev/null 2>&1
"$SD_FLOWPROBE" tcp "$SD_TRACKER_V6" 443 --token control-v6 >/dev/null 2>&1
"$SD_FLOWPROBE" udp "$SD_TRACKER_V4" 514 --token control-udp >/dev/null 2>&1
tap_check "control: outside any app the tracker is reached (TCP IPv4, TCP IPv6, UDP)" bash -c \
	". '$SD_REPO/tests/systemd/lib.sh'; SD_SERVER_LOG='$SD_SERVER_LOG'; sd_server_saw tcp 443 control-v4 && sd_server_saw tcp 443 control-v6 && sd_server_saw udp 514 control-udp"

for tpl in "${SD_TEMPLATES[@]}"; do
	id=${SD_APP_OF[$tpl]}
	p=$tpl-$id
	sd_app "$tpl" "$id" "$(sd_flow "$p-ok4" tcp "$SD_OEM_V4" 443)
$(sd_flow "$p-ok6" tcp "$SD_OEM_V6" 443)
$(sd_flow "$p-okudp" udp "$SD_OEM_V4" 514)
$(sd_flow "$p-no4" tcp "$SD_TRACKER_V4" 443)
$(sd_flow "$p-no6" tcp "$SD_TRACKER_V6" 443)
$(sd_flow "$p-noudp" udp "$SD_TRACKER_V4" 514)
$(sd_flow "$p-noudp6" udp "$SD_TRACKER_V6" 514)"
	if ((SD_START_RC != 0)) || [[ -z $SD_OUT ]]; then
		tap_not_ok "$tpl@$id.service starts under systemd" "systemctl start: status $SD_START_RC: $(cat "$SD_TMP/start.err")" "$(sd_unit_log "$SD_UNIT")"
		continue
	fi
	tap_ok "$tpl@$id.service starts under systemd"
	tap_check "$tpl@$id.service: the app runs as agl-driver (uid 1001)" sd_out_has uid=1001
	sd_expect_flow "$tpl: allowed TCP over IPv4 reaches the server" "$p-ok4" tcp 443 ok
	sd_expect_flow "$tpl: allowed TCP over IPv6 reaches the server" "$p-ok6" tcp 443 ok
	sd_expect_flow "$tpl: allowed UDP reaches the server" "$p-okudp" udp 514 ok
	sd_expect_flow "$tpl: TCP to the tracker over IPv4 is refused at connect" "$p-no4" tcp 443 EPERM connect
	sd_expect_flow "$tpl: TCP to the tracker over IPv6 is refused at connect" "$p-no6" tcp 443 EPERM connect
	sd_expect_flow "$tpl: UDP to the tracker over IPv4 is refused at send" "$p-noudp" udp 514 EPERM send
	sd_expect_flow "$tpl: UDP to the tracker over IPv6 is refused at send" "$p-noudp6" udp 514 EPERM send
done
tap_done
