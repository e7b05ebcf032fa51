# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034 # SD_* are read by the test files
#
# lib.sh: what the tests/systemd/ suite shares. These tests run only in the x86_64-6.1-systemd
# guest of scripts/vm/vm.sh (systemd as PID 1, carwall installed with `make install-only`,
# carwalld.service enabled, AGL's user and app templates: scripts/vm/guest.sh sets it up and
# exports CARWALL_VM_SYSTEMD=1). They change the system (units, the agent, its pins): anywhere
# else each file skips.
#
#   sd_require                      exit 0 after one SKIP unless in that guest
#   sd_net_create                   a server netns on a veth (see below); removed at exit
#   sd_app TEMPLATE ID SCRIPT       runs SCRIPT (bash) as the app unit TEMPLATE@ID.service,
#                                   started with `systemctl start` as applaunchd does; its
#                                   output in SD_OUT, the start's status in SD_START_RC
#   sd_flow NAME PROTO ADDR PORT    in an app SCRIPT: one flowprobe flow, its result line
#                                   prefixed with NAME
#   sd_result NAME                  that line, from SD_OUT
#   sd_server_saw PROTO PORT TOKEN  0 if the server logged that flow
#
# The server side: netns cwsd-$$ on a veth from the guest's own network namespace (where
# systemd runs the app units): 192.0.2.1/24 and 2001:db8:ffff::1/64 here, .2 and ::2 there; its
# loopback has the OEM backend 198.51.100.20 / 2001:db8:51::20 and the tracker 203.0.113.7 /
# 2001:db8:bad::7, routed here; a flowprobe server on TCP 443 and UDP 514 logs every flow.

SD_REPO=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
. "$SD_REPO/tests/lib/tap.sh"

SD_OEM_V4=198.51.100.20
SD_OEM_V6=2001:db8:51::20
SD_TRACKER_V4=203.0.113.7
SD_TRACKER_V6=2001:db8:bad::7
SD_TEMPLATES=(agl-app agl-app-web agl-app-flutter)
# The app of the suite's policy (tests/systemd/policy.yaml) in each template.
declare -A SD_APP_OF=([agl-app]=navigation [agl-app-web]=webradio [agl-app-flutter]=dashboard)
SD_APPS_DIR=/run/carwall-test/apps
SD_OUT_DIR=/run/carwall-test/out
SD_FLOWPROBE=/usr/local/libexec/carwall-test/flowprobe
SD_NETNS=''
SD_TMP=''

sd_require() {
	if [[ ${CARWALL_VM_SYSTEMD:-0} != 1 || $(cat /proc/1/comm 2>/dev/null) != systemd ]]; then
		tap_skip "${0##*/}" "runs only in the x86_64-6.1-systemd guest of scripts/vm/vm.sh (make vm-check)"
		tap_done
		exit 0
	fi
	SD_TMP=$(mktemp -d)
	trap sd_cleanup EXIT
}

sd_cleanup() {
	if [[ -n ${SD_SERVER_PID:-} ]]; then
		kill "$SD_SERVER_PID" 2>/dev/null
		wait "$SD_SERVER_PID" 2>/dev/null
	fi
	[[ -z $SD_NETNS ]] || ip netns del "$SD_NETNS" 2>/dev/null
	[[ -z $SD_TMP ]] || rm -rf "$SD_TMP"
	return 0
}

sd_net_create() {
	local ns=cwsd-$$ i
	SD_NETNS=$ns
	ip netns add "$ns" || return 1
	ip link add cwsd0 type veth peer name net0 netns "$ns" || return 1
	ip addr add 192.0.2.1/24 dev cwsd0 && ip -6 addr add 2001:db8:ffff::1/64 dev cwsd0 nodad &&
		ip link set cwsd0 up || return 1
	ip -n "$ns" link set lo up && ip -n "$ns" addr add 192.0.2.2/24 dev net0 &&
		ip -n "$ns" -6 addr add 2001:db8:ffff::2/64 dev net0 nodad &&
		ip -n "$ns" link set net0 up || return 1
	ip -n "$ns" addr add "$SD_OEM_V4/32" dev lo && ip -n "$ns" addr add "$SD_TRACKER_V4/32" dev lo &&
		ip -n "$ns" -6 addr add "$SD_OEM_V6/128" dev lo nodad &&
		ip -n "$ns" -6 addr add "$SD_TRACKER_V6/128" dev lo nodad || return 1
	ip route add 198.51.100.0/24 via 192.0.2.2 dev cwsd0 &&
		ip route add 203.0.113.0/24 via 192.0.2.2 dev cwsd0 &&
		ip -6 route add 2001:db8:51::/48 via 2001:db8:ffff::2 dev cwsd0 &&
		ip -6 route add 2001:db8:bad::/48 via 2001:db8:ffff::2 dev cwsd0 || return 1
	SD_SERVER_LOG=$SD_TMP/server.log
	ip netns exec "$ns" "$SD_FLOWPROBE" serve --log "$SD_SERVER_LOG" --tcp 443 --udp 514 \
		</dev/null >"$SD_TMP/server.out" 2>"$SD_TMP/server.err" &
	SD_SERVER_PID=$!
	local end=$((SECONDS + 20))
	for ((i = 0; i < 400 && SECONDS < end; i++)); do
		grep -qx ready "$SD_TMP/server.out" 2>/dev/null && break
		sleep 0.05
	done
	grep -qx ready "$SD_TMP/server.out" || return 1
	# IPv6 routes work once the link-local addresses are up (bounded).
	end=$((SECONDS + 10))
	for ((i = 0; i < 100 && SECONDS < end; i++)); do
		ip -6 addr show dev cwsd0 | grep -q tentative || break
		sleep 0.1
	done
}

# sd_server_saw PROTO PORT TOKEN
sd_server_saw() {
	awk -v p="$1" -v port="$2" -v t="$3" '$1 == p && $2 == port && $4 == t { f = 1 }
		END { exit !f }' "$SD_SERVER_LOG" 2>/dev/null
}

# sd_flow NAME PROTO ADDR PORT: the text of one flow line in an app script (token NAME).
sd_flow() {
	printf 'printf "%s %%s\\n" "$(%q %s %s %s --token %s --timeout-ms 3000 2>&1)"\n' \
		"$1" "$SD_FLOWPROBE" "$2" "$3" "$4" "$1"
}

# sd_app TEMPLATE ID SCRIPT: writes SCRIPT as the app's program, starts TEMPLATE@ID.service
# with systemctl, waits (at most 60 s) for the program's last line "end" (SD_NOWAIT=1: returns
# once started; then sd_app_wait ID). Sets SD_START_RC (the status of systemctl start), SD_OUT
# (the program's output; empty if it never ran) and SD_UNIT.
sd_app() {
	local tpl=$1 id=$2 script=$3 out
	SD_UNIT=$tpl@$id.service
	out=$SD_OUT_DIR/$id
	rm -f "$out"
	{
		echo '#!/bin/bash'
		echo "exec >$out 2>&1"
		echo 'echo "uid=$(id -u)"'
		# When the program started, in seconds since boot (the unit is gone once it ended).
		echo 'echo "started=$(cut -d" " -f1 /proc/uptime)"'
		printf '%s\n' "$script"
		echo 'echo end'
	} >"$SD_APPS_DIR/$id"
	chmod 0755 "$SD_APPS_DIR/$id"
	systemctl reset-failed "$SD_UNIT" 2>/dev/null
	SD_START_RC=0
	timeout 60 systemctl start "$SD_UNIT" 2>"$SD_TMP/start.err" || SD_START_RC=$?
	SD_OUT=''
	[[ ${SD_NOWAIT:-0} == 1 ]] && return 0
	sd_app_wait "$id"
}

# sd_app_wait ID: waits (at most 60 s) for the last app run of ID to print "end"; sets SD_OUT.
sd_app_wait() {
	local out=$SD_OUT_DIR/$1 i end=$((SECONDS + 60))
	SD_OUT=''
	if ((SD_START_RC == 0)); then
		# Bounded in time and count: under TCG each round costs two execs.
		for ((i = 0; i < 1200 && SECONDS < end; i++)); do
			[[ $(tail -1 "$out" 2>/dev/null) == end ]] && break
			sleep 0.1
		done
	fi
	[[ -e $out ]] && SD_OUT=$(cat "$out")
	return 0
}

# sd_wait_file FILE: in an app SCRIPT, waits (at most 60 s) until FILE exists.
sd_wait_file() {
	printf 'end=$((SECONDS + 60)); for ((i = 0; i < 1200 && SECONDS < end; i++)); do [[ -e %q ]] && break; sleep 0.1; done\n' "$1"
}

# sd_agent_pid: carwalld.service's main PID (0 when it does not run).
sd_agent_pid() {
	systemctl show -p MainPID --value carwalld.service
}

# sd_agent_wait_active [OLD_PID]: waits (at most 60 s) until carwalld.service is active with a
# main PID other than OLD_PID.
sd_agent_wait_active() {
	local old=${1:-0} i pid end=$((SECONDS + 60))
	for ((i = 0; i < 1200 && SECONDS < end; i++)); do
		pid=$(sd_agent_pid)
		[[ $(systemctl is-active carwalld.service) == active && $pid != 0 && $pid != "$old" ]] &&
			return 0
		sleep 0.1
	done
	return 1
}

# sd_app_flows TEMPLATE ID TAG: the app (started now) tries the OEM backend (allowed) and the
# tracker (refused), TCP over IPv4; TAP checks with TAG in their names.
sd_app_flows() {
	local tpl=$1 id=$2 tag=$3 p
	# The flow names are tokens: no blank.
	p=$(tr -c 'A-Za-z0-9\n' - <<<"$tag")-$tpl
	sd_app "$tpl" "$id" "$(sd_flow "$p-ok" tcp "$SD_OEM_V4" 443)
$(sd_flow "$p-no" tcp "$SD_TRACKER_V4" 443)"
	sd_expect_flow "$tag: $tpl app: allowed TCP reaches the server" "$p-ok" tcp 443 ok
	sd_expect_flow "$tag: $tpl app: TCP to the tracker is refused at connect" "$p-no" tcp 443 EPERM connect
}

# sd_result NAME: the result line of flow NAME in SD_OUT ("result=... stage=...").
sd_result() {
	awk -v n="$1" '$1 == n { $1 = ""; sub(/^ /, ""); print; exit }' <<<"$SD_OUT"
}

# sd_expect_flow DESC NAME PROTO PORT ok|EPERM STAGE: a TAP check of flow NAME of the last app
# run: allowed (result=ok and the server saw it) or refused (EPERM at STAGE, nothing at the
# server).
sd_expect_flow() {
	local desc=$1 name=$2 proto=$3 port=$4 want=$5 stage=${6:-} got
	got=$(sd_result "$name")
	if [[ $want == ok ]]; then
		if [[ $got =~ ^result=ok\ stage=recv( |$) ]] && sd_server_saw "$proto" "$port" "$name"; then
			tap_ok "$desc"
		else
			tap_not_ok "$desc" "flow: '${got:-no result}'; the server saw it: $(sd_server_saw "$proto" "$port" "$name" && echo yes || echo no); start status $SD_START_RC; app output: $SD_OUT"
		fi
	else
		if [[ $got =~ ^result=EPERM\ stage=$stage( |$) ]] && ! sd_server_saw "$proto" "$port" "$name"; then
			tap_ok "$desc"
		else
			tap_not_ok "$desc" "flow: '${got:-no result}' (want result=EPERM stage=$stage); the server saw it: $(sd_server_saw "$proto" "$port" "$name" && echo yes || echo no); start status $SD_START_RC; $(cat "$SD_TMP/start.err" 2>/dev/null); app output: $SD_OUT"
		fi
	fi
}

# sd_out_has LINE: 0 if the last app run printed LINE.
sd_out_has() {
	grep -qxF -- "$1" <<<"$SD_OUT"
}

# sd_unit_log UNIT: the unit's journal of this boot (diagnostics).
sd_unit_log() {
	journalctl -b -u "$1" --no-pager -o cat 2>/dev/null | tail -15
}
