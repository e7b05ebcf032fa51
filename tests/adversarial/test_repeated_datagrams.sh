#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A datagram to the destination its socket's last allowed flow went to is counted without
# judging it again (bpf/sock_addr.bpf.c, cw_udp_repeat()). What that shortcut must never give:
#   1. a socket that changes hands: the process that sent on it moves into another app's
#      cgroup (as a socket passed to another app would be used): that app's policy judges its
#      datagrams on the same socket, to the same destination: EPERM, nothing arrives; back in
#      the first app, they go again;
#   2. a reload that drops the rule: the next datagram on the same socket is refused;
#   3. the counters: every datagram is counted, for the app and for the rule.
# Each refusal follows a control step on the same socket showing the datagrams arrive.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
WAIT_TENTHS=20 # a datagram that must arrive gets 2 s; one that must not, the same
N=20           # datagrams per step

sandbox_create "cw-rd$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
dir=$SANDBOX_DIR
slice="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice"
mp_cg="$slice/agl-app@mediaplayer.service"
nav_cg="$slice/agl-app@navigation.service"
mkdir -p "$mp_cg" "$nav_cg"
SANDBOX_POLICY=$dir/policy.yaml
write_policy() { # with|without (the mediaplayer's UDP rule)
	{
		echo "version: 1"
		echo "apps:"
		echo "  mediaplayer:"
		echo "    allow:"
		echo "      - to: [$SANDBOX_OEM_V4]"
		echo "        ports: [443]"
		echo "        proto: tcp"
		if [[ $1 == with ]]; then
			echo "      - to: [$SANDBOX_OEM_V4]"
			echo "        ports: [9000]"
			echo "        proto: udp"
		fi
		echo "  navigation:"
		echo "    allow:"
		echo "      - to: [$SANDBOX_MAPS_V4]"
		echo "        ports: [9000]"
		echo "        proto: udp"
	} >"$SANDBOX_POLICY.new" && mv "$SANDBOX_POLICY.new" "$SANDBOX_POLICY"
}
write_policy with

# The app: one UDP socket, driven by commands on stdin, one per line:
#   send ADDR PORT TOKEN N   N datagrams "TOKEN\n"; prints "sent=S eperm=E other=O"
#   move PROCS               moves this process into the cgroup of PROCS; prints "moved"
cat >"$dir/udp_app.py" <<'EOF'
import errno, os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in sys.stdin:
    w = line.split()
    if w[0] == "send":
        sent = eperm = other = 0
        for _ in range(int(w[4])):
            try:
                s.sendto((w[3] + "\n").encode(), (w[1], int(w[2])))
                sent += 1
            except OSError as e:
                if e.errno == errno.EPERM:
                    eperm += 1
                else:
                    other += 1
        print(f"sent={sent} eperm={eperm} other={other}", flush=True)
    elif w[0] == "move":
        with open(w[1], "w") as f:
            f.write(str(os.getpid()))
        print("moved", flush=True)
    else:
        break
EOF

sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }

APP= APP_IN= APP_OUT=
stop_app() {
	[[ -n $APP_IN ]] && exec {APP_IN}>&-
	[[ -n $APP_OUT ]] && exec {APP_OUT}<&-
	APP_IN= APP_OUT=
	[[ -n $APP ]] && _sandbox_stop_pid "$APP" 20
	APP=
	return 0
}
# Replaces sandbox_create's trap: destroy here, whatever stop_app met.
trap 'stop_app || true; sandbox_destroy' EXIT

coproc APP_CO { sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec python3 "$1"' \
	"$mp_cg" "$dir/udp_app.py"; }
APP=$APP_CO_PID # bash unsets APP_CO_PID once the coprocess is gone
exec {APP_IN}>&"${APP_CO[1]}" {APP_OUT}<&"${APP_CO[0]}"
REPLY_LINE=
# ask COMMAND...: one command to the app, its reply line in REPLY_LINE (bounded wait).
ask() {
	REPLY_LINE=
	echo "$*" >&"$APP_IN" || return 1
	read -r -t 10 REPLY_LINE <&"$APP_OUT"
}
n=0
# step ADDR PORT: N datagrams on the app's socket; sets TOKEN, SENT, EPERM, OTHER.
step() {
	n=$((n + 1))
	TOKEN="rd$$-$n"
	SENT=-1 EPERM=-1 OTHER=-1
	ask send "$1" "$2" "$TOKEN" "$N" || return
	for kv in $REPLY_LINE; do
		case $kv in
		sent=*) SENT=${kv#*=} ;;
		eperm=*) EPERM=${kv#*=} ;;
		other=*) OTHER=${kv#*=} ;;
		esac
	done
}
# arrived TOKEN: the server logged it (bounded wait); not_arrived: not after the whole wait.
arrived() {
	local i
	for ((i = 0; i < WAIT_TENTHS; i++)); do
		sandbox_server_saw udp 9000 "$1" && return 0
		sleep 0.1
	done
	return 1
}
not_arrived() { ! arrived "$1"; }
all_sent() { ((SENT == N && EPERM == 0 && OTHER == 0)) && arrived "$TOKEN"; }
all_refused() { ((EPERM == N && SENT == 0 && OTHER == 0)) && not_arrived "$TOKEN"; }
# counter JQ: one number from `carwall --json stats`.
counter() { cw --json stats | jq -r "$1"; }
mp_allowed='.apps[] | select(.id == "mediaplayer") | .since_load.allowed'
rule_allowed='[.rules[]? | select(.app == "mediaplayer" and .rule == 1) | .allowed] | add // 0'

# ---- 3 and control: every datagram goes, and is counted ----------------------------------------
a0=$(counter "$mp_allowed") r0=$(counter "$rule_allowed")
step "$SANDBOX_OEM_V4" 9000
tap_check "control: $N datagrams on one socket to the OEM backend arrive ($REPLY_LINE)" all_sent
a1=$(counter "$mp_allowed") r1=$(counter "$rule_allowed")
tap_check "every one is counted for the app ($a0 -> $a1)" test "$((a1 - a0))" -eq "$N"
tap_check "every one is counted for the rule that allowed it ($r0 -> $r1)" test "$((r1 - r0))" -eq "$N"

# ---- 1. the socket changes hands -----------------------------------------------------------------
ask move "$nav_cg/cgroup.procs"
tap_check "the process moved into the navigation app's cgroup" test "$REPLY_LINE" = moved
step "$SANDBOX_OEM_V4" 9000
tap_check "the same socket, now navigation's: every datagram to the OEM backend is refused (EPERM)" \
	all_refused
tap_diag "$REPLY_LINE"
step "$SANDBOX_MAPS_V4" 9000
tap_check "navigation's own destination on it arrives" all_sent
ask move "$mp_cg/cgroup.procs"
step "$SANDBOX_OEM_V4" 9000
tap_check "back in the mediaplayer's cgroup: the OEM backend again" all_sent

# ---- 2. a reload drops the rule -----------------------------------------------------------------
write_policy without
tap_check "reload without the mediaplayer's UDP rule" cw reload
step "$SANDBOX_OEM_V4" 9000
tap_check "the same socket after the reload: every datagram is refused (EPERM), nothing arrives" \
	all_refused
tap_diag "$REPLY_LINE"

ask quit || true
tap_done
