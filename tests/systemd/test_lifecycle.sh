#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Under systemd as PID 1, enforcement outlives the agent and the app slices, and no app starts
# unjudged:
# - an app that runs while carwalld.service is stopped, or just after its main process was
#   killed with SIGKILL, is still refused (the programs are pinned); `systemctl restart
#   carwalld` and systemd's restart after the kill keep enforcing;
# - stopping the app slice (systemd removes its cgroup) and starting an app again stays closed;
# - with no policy in force (agent stopped, pins removed with `carwall unload`, the agent
#   masked) an app unit cannot start: its program never runs;
# - with the pins removed and the agent stopped (as a fresh boot finds them): `systemctl start`
#   of an app starts carwalld first and the app only once the agent reported ready, and the app
#   is judged. (test_reboot.sh reboots for real.)
set -u
. "$(dirname "$0")/lib.sh"
sd_require
if ! sd_net_create; then
	tap_bail_out "cannot make the server's network namespace"
	exit 1
fi
tpl=agl-app
id=${SD_APP_OF[$tpl]}

# An app that waits for a go file (in a folder agl-driver reads), then makes one allowed and one
# refused flow.
app_waiting() {
	local go=$1 p=$2
	SD_NOWAIT=1 sd_app "$tpl" "$id" "$(sd_wait_file "$go")
$(sd_flow "$p-ok" tcp "$SD_OEM_V4" 443)
$(sd_flow "$p-no" tcp "$SD_TRACKER_V4" 443)"
}

sd_app_flows "$tpl" "$id" "agent running"

# Agent stopped: the pins enforce.
go=$SD_OUT_DIR/go-stopped
rm -f "$go"
app_waiting "$go" stopped
tap_check "the app is running" test "$SD_START_RC" = 0
tap_check "systemctl stop carwalld" systemctl stop carwalld.service
touch "$go"
sd_app_wait "$id"
sd_expect_flow "agent stopped: allowed TCP still reaches the server" stopped-ok tcp 443 ok
sd_expect_flow "agent stopped: TCP to the tracker still refused at connect" stopped-no tcp 443 EPERM connect
tap_check "systemctl start carwalld" systemctl start carwalld.service

tap_check "systemctl restart carwalld" systemctl restart carwalld.service
sd_app_flows "$tpl" "$id" "after systemctl restart carwalld"

# SIGKILL: flows right after the kill, before systemd restarts the agent (RestartSec=1s).
pid=$(sd_agent_pid)
go=$SD_OUT_DIR/go-killed
rm -f "$go"
app_waiting "$go" killed
kill -KILL "$pid"
touch "$go"
sd_app_wait "$id"
sd_expect_flow "agent killed (SIGKILL): allowed TCP still reaches the server" killed-ok tcp 443 ok
sd_expect_flow "agent killed (SIGKILL): TCP to the tracker still refused at connect" killed-no tcp 443 EPERM connect
tap_check "systemd restarts the killed agent (Restart=always)" sd_agent_wait_active "$pid"
sd_app_flows "$tpl" "$id" "after the restart that followed SIGKILL"

# The slice stopped: systemd removes the app cgroups and the slice's; an app makes them again.
slice='system-agl\x2dapp.slice'
tap_check "systemctl stop $slice" systemctl stop "$slice"
tap_check "the slice's cgroup is gone" test ! -d "/sys/fs/cgroup/system.slice/$slice"
sd_app_flows "$tpl" "$id" "slice stopped and made again"

# No policy in force: no agent, no pins.
tap_check "no policy in force: carwalld stopped and masked" bash -c \
	'systemctl stop carwalld.service && systemctl mask --runtime carwalld.service'
tap_check "no policy in force: carwall unload removes the pins" carwall unload
tap_check "no policy in force: nothing left in /sys/fs/bpf/carwall" \
	bash -c '! ls -A /sys/fs/bpf/carwall 2>/dev/null | grep -q .'
sd_app "$tpl" "$id" "$(sd_flow nopolicy-no tcp "$SD_TRACKER_V4" 443)"
if ((SD_START_RC != 0)) && [[ -z $SD_OUT ]]; then
	tap_ok "no policy in force: the app unit does not start, its program never ran"
else
	tap_not_ok "no policy in force: the app unit does not start, its program never ran" \
		"systemctl start: status $SD_START_RC; app output: $SD_OUT"
fi
tap_check "no policy in force: the journal says why (carwall app wait-managed)" bash -c \
	'journalctl -b -u "$1" --no-pager -o cat | grep -q "wait-managed\|carwall"' _ "$SD_UNIT"
tap_check "no policy in force: the server saw nothing" bash -c \
	'! grep -q nopolicy "$1"' _ "$SD_SERVER_LOG"
tap_check "unmask carwalld" systemctl unmask --runtime carwalld.service

# No pins, agent stopped (as a fresh boot finds them): starting an app starts the agent first;
# the app starts once the agent is ready.
tap_check "as after a boot: agent inactive, no pins" bash -c \
	'! systemctl is-active -q carwalld.service && ! ls -A /sys/fs/bpf/carwall 2>/dev/null | grep -q .'
sd_app_flows "$tpl" "$id" "as after a boot"
# The agent's readiness (monotonic µs) against the app program's start (uptime, centiseconds;
# the guest never suspends, so both count from boot).
a=$(systemctl show -p ActiveEnterTimestampMonotonic --value carwalld.service)
b=$(sed -n 's/^started=\([0-9]*\)\.\([0-9]*\)$/\1\20000/p' <<<"$SD_OUT")
tap_check "as after a boot: the app's program started after the agent was ready ($a <= $b µs)" \
	test "${a:-0}" -gt 0 -a "${a:-0}" -le "${b:-0}"
tap_done
