#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# A real reboot of the head unit. scripts/vm/vm.sh boots the systemd guest twice on the same
# persistent disk (the overlay's upper layer: what was installed and enabled survives, /run and
# bpffs do not); this file runs last on the first boot and alone on the second
# (CARWALL_VM_BOOT says which).
# First boot: an app event in the events log, a marker pinned in bpffs, and an app unit
# (agl-app-flutter@dashboard) wanted by the boot target, that will start with the agent.
# Second boot:
# - it is another boot (boot_id) and bpffs is fresh: the marker and carwall's pins of the first
#   boot are gone; the agent loaded its programs anew (it adopted nothing);
# - carwalld.service was started by the boot from its enabled unit (sysinit.target.wants);
# - the app unit the boot started waited for the agent (its program started after the agent
#   was ready) and is enforced: allowed flow reaches the server, refused one is EPERM;
# - an app started now is enforced too;
# - the state folder /var/lib/carwall survived (every file of the first boot, the app's events).
set -u
. "$(dirname "$0")/lib.sh"
sd_require

# On the persistent disk: what the first boot leaves for the second.
S=/var/lib/carwall-test
MARKER=/sys/fs/bpf/carwall-test-marker
EARLY_TPL=agl-app-flutter
EARLY_ID=${SD_APP_OF[$EARLY_TPL]}
EARLY_UNIT=$EARLY_TPL@$EARLY_ID.service
EVENTS=/var/lib/carwall/events/app-${SD_APP_OF[agl-app]}.jsonl

first_boot() {
	sd_net_create || { tap_bail_out "cannot make the server's network namespace"; exit 1; }
	rm -rf "$S"
	install -d -m 0755 "$S" && install -d -o agl-driver -g agl-driver "$S/out" ||
		{ tap_bail_out "cannot make $S"; exit 1; }
	tap_check "first boot: its boot_id recorded" \
		cp /proc/sys/kernel/random/boot_id "$S/boot1-id"
	# A refused flow: a record in the app's share of the events log.
	sd_app_flows agl-app "${SD_APP_OF[agl-app]}" "first boot"
	tap_check "first boot: the app's refused flow is in the events log ($EVENTS)" \
		bash -c 'sync && head -1 "$1" >"$2" && grep -q "\"event\":\"refused\"" "$2"' _ \
		"$EVENTS" "$S/boot1-first-event"
	tap_check "first boot: the state folder's files recorded" bash -c \
		'find /var/lib/carwall -type f | sort >"$1" && test -s "$1"' _ "$S/boot1-state-files"
	tap_check "first boot: carwall's pins are there" bash -c 'ls -A /sys/fs/bpf/carwall | grep -q .'
	tap_check "first boot: a marker map pinned in bpffs" bash -c \
		'rm -f "$1"; bpftool map create "$1" type array key 4 value 4 entries 1 name cw_marker && test -e "$1"' \
		_ "$MARKER"
	# The app the next boot starts: it waits (bounded) for the test's go file, then makes one
	# allowed and one refused flow.
	{
		echo '#!/bin/bash'
		echo "exec >$S/out/early 2>&1"
		echo 'echo "uid=$(id -u)"'
		echo 'echo "started=$(cut -d" " -f1 /proc/uptime)"'
		# Bounded: 180 s (the second boot's test starts a while after the app).
		printf 'end=$((SECONDS + 180)); for ((i = 0; i < 3600 && SECONDS < end; i++)); do [[ -e %q ]] && break; sleep 0.1; done\n' "$S/go"
		sd_flow early-ok tcp "$SD_OEM_V4" 443
		sd_flow early-no tcp "$SD_TRACKER_V4" 443
		echo 'echo end'
	} >"$S/early-app"
	chmod 0755 "$S/early-app"
	mkdir -p "/etc/systemd/system/$EARLY_UNIT.d"
	printf '[Service]\nExecStart=\nExecStart=%s\n' "$S/early-app" \
		>"/etc/systemd/system/$EARLY_UNIT.d/early.conf"
	tap_check "first boot: $EARLY_UNIT wanted by the boot target" bash -c \
		'systemctl daemon-reload && systemctl add-wants carwall-vm.target "$1"' _ "$EARLY_UNIT"
	tap_check "first boot: carwalld.service is enabled" systemctl is-enabled -q carwalld.service
}

second_boot() {
	local a b x early t0
	t0=$(awk '{ printf "%d", $1 * 1000000 }' /proc/uptime)
	tap_check "second boot: another boot (boot_id differs from the first's)" bash -c \
		'test -s "$1" && ! cmp -s "$1" /proc/sys/kernel/random/boot_id' _ "$S/boot1-id"
	tap_check "second boot: bpffs is fresh (the first boot's marker pin is gone)" \
		test ! -e "$MARKER"
	tap_check "second boot: carwalld.service is enabled (sysinit.target.wants)" \
		test -L /etc/systemd/system/sysinit.target.wants/carwalld.service
	# Started by the boot, before this test ran: nothing the test did started it. (The suite's
	# service is not ordered after the agent: the agent may still be starting.)
	x=$(systemctl show -p ExecMainStartTimestampMonotonic --value carwalld.service)
	tap_check "second boot: carwalld.service was started by the boot ($x < $t0 µs, this test's start)" \
		test "${x:-0}" -gt 0 -a "${x:-0}" -lt "$t0"
	tap_check "second boot: carwalld.service becomes active (ready) on its own" sd_agent_wait_active
	a=$(systemctl show -p ActiveEnterTimestampMonotonic --value carwalld.service)
	tap_check "second boot: the agent loaded its programs anew (its journal: no adoption)" bash -c \
		'j=$(journalctl -b -u carwalld.service -o cat --no-pager) && grep -q "Policy .* in force" <<<"$j" && ! grep -q "^Adopted" <<<"$j"'
	tap_check "second boot: carwall's pins are back" bash -c 'ls -A /sys/fs/bpf/carwall | grep -q .'
	tap_check "second boot: the state folder kept every file of the first boot" bash -c \
		'test -s "$1" && while read -r f; do test -f "$f" || exit 1; done <"$1"' _ "$S/boot1-state-files"
	tap_check "second boot: the app's events of the first boot are still in the events log" \
		grep -qxF -f "$S/boot1-first-event" "$EVENTS"
	tap_check "second boot: carwall events shows them" bash -c \
		'carwall events --app "$1" --json | grep -q "\"port\": *443"' _ "${SD_APP_OF[agl-app]}"

	# The app the boot started: it is running, its program started once the agent was ready.
	early=$S/out/early
	tap_check "second boot: $EARLY_UNIT was started by the boot" bash -c \
		'systemctl is-active -q "$1" && grep -q "^started=" "$2"' _ "$EARLY_UNIT" "$early"
	b=$(sed -n 's/^started=\([0-9]*\)\.\([0-9]*\)$/\1\20000/p' "$early" 2>/dev/null)
	tap_check "second boot: its program started after the agent was ready ($a <= $b µs)" \
		test "${a:-0}" -gt 0 -a "${a:-0}" -le "${b:-0}"
	sd_net_create || { tap_bail_out "cannot make the server's network namespace"; exit 1; }
	touch "$S/go"
	SD_START_RC=0
	sd_app_wait_file "$early"
	sd_expect_flow "second boot: the early app's allowed TCP reaches the server" early-ok tcp 443 ok
	sd_expect_flow "second boot: the early app's TCP to the tracker is refused at connect" early-no tcp 443 EPERM connect
	tap_check "second boot: the early app ran as agl-driver" sd_out_has uid=1001

	sd_app_flows agl-app "${SD_APP_OF[agl-app]}" "second boot, an app started now"
}

# sd_app_wait_file FILE: waits (at most 60 s) for FILE's last line "end"; sets SD_OUT.
sd_app_wait_file() {
	local i end=$((SECONDS + 60))
	for ((i = 0; i < 1200 && SECONDS < end; i++)); do
		[[ $(tail -1 "$1" 2>/dev/null) == end ]] && break
		sleep 0.1
	done
	SD_OUT=$(cat "$1" 2>/dev/null)
}

case ${CARWALL_VM_BOOT:-1} in
1) first_boot ;;
2) second_boot ;;
*)
	tap_bail_out "unknown boot ${CARWALL_VM_BOOT:-}"
	exit 1
	;;
esac
tap_done
