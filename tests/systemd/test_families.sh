#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The drop-in closes what carwall's hooks cannot see: in an app unit of each template,
# socket() of AF_PACKET, AF_RDS, AF_CAN, AF_BLUETOOTH, AF_VSOCK and AF_QIPCRTR fails with
# EAFNOSUPPORT (RestrictAddressFamilies=), while AF_INET, AF_INET6, AF_UNIX and AF_NETLINK
# open. Control: outside any unit the kernel offers the family (root opens it) and agl-driver
# opens it too (all but AF_PACKET, which needs CAP_NET_RAW): the drop-in is what refuses. A
# family this kernel does not offer is skipped, saying so. Debian blacklists the autoload of
# RDS (net-pf-21): its module is loaded here, as a kernel with RDS built in would have it.
set -u
. "$(dirname "$0")/lib.sh"
sd_require

probe=$SD_APPS_DIR/families.py
cat >"$probe" <<'PY'
import errno, socket, sys
FAMILIES = {
    "AF_UNIX": (1, socket.SOCK_STREAM, 0), "AF_INET": (2, socket.SOCK_STREAM, 0),
    "AF_INET6": (10, socket.SOCK_STREAM, 0), "AF_NETLINK": (16, socket.SOCK_RAW, 0),
    "AF_PACKET": (17, socket.SOCK_RAW, 0), "AF_RDS": (21, socket.SOCK_SEQPACKET, 0),
    "AF_CAN": (29, socket.SOCK_RAW, 1), "AF_BLUETOOTH": (31, socket.SOCK_SEQPACKET, 0),
    "AF_VSOCK": (40, socket.SOCK_STREAM, 0), "AF_QIPCRTR": (42, socket.SOCK_DGRAM, 0),
}
for name in sys.argv[1:]:
    try:
        socket.socket(*FAMILIES[name]).close()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
PY
chmod 0644 "$probe"
closed=(AF_PACKET AF_RDS AF_CAN AF_BLUETOOTH AF_VSOCK AF_QIPCRTR)
open_=(AF_INET AF_INET6 AF_UNIX AF_NETLINK)
modprobe -q rds 2>/dev/null
root=$(python3 "$probe" "${closed[@]}" "${open_[@]}" 2>&1)
user=$(setpriv --reuid=1001 --regid=1001 --clear-groups python3 "$probe" "${closed[@]}" 2>&1)
tap_diag "outside any unit, root: $(paste -sd' ' <<<"$root")" "outside any unit, agl-driver: $(paste -sd' ' <<<"$user")"
offered=()
for f in "${closed[@]}"; do
	if grep -qx "$f ok" <<<"$root"; then
		offered+=("$f")
		if [[ $f == AF_PACKET ]] || grep -qx "$f ok" <<<"$user"; then
			tap_ok "control: outside any unit $f opens ($([[ $f == AF_PACKET ]] && echo root || echo agl-driver))"
		else
			tap_not_ok "control: outside any unit $f opens (agl-driver)" "$user"
		fi
	else
		tap_skip "$f" "this kernel does not offer it: $(grep "^$f " <<<"$root")"
	fi
done

for tpl in "${SD_TEMPLATES[@]}"; do
	id=${SD_APP_OF[$tpl]}
	sd_app "$tpl" "$id" "python3 $probe ${offered[*]} ${open_[*]}"
	if ((SD_START_RC != 0)) || [[ -z $SD_OUT ]]; then
		tap_not_ok "$tpl@$id.service starts" "systemctl start: status $SD_START_RC: $(cat "$SD_TMP/start.err")" "$(sd_unit_log "$SD_UNIT")"
		continue
	fi
	for f in "${offered[@]}"; do
		tap_check "$tpl: an app cannot open $f (EAFNOSUPPORT)" sd_out_has "$f EAFNOSUPPORT"
	done
	for f in "${open_[@]}"; do
		tap_check "$tpl: an app still opens $f" sd_out_has "$f ok"
	done
done
tap_done
