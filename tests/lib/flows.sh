# SPDX-License-Identifier: GPL-2.0-only
# The flows of a test that sources tests/lib/tap.sh and scripts/sandbox.sh (needs a running
# agent for an app's flow), each judged at both ends: flowprobe's result and the server's log.
# FLOW_MODE (tcp or udp, default tcp) chooses the protocol; FLOWPROBE the probe binary. Tokens are
# unique per test run ("f<pid>-<n>").

flows_token_n=0

# expect_flow NAME APP ADDR PORT ok|EPERM: one flow as app APP ("-": outside every app) that is
# either allowed (the echo came back and the server logged it) or refused (EPERM at the hook's
# stage: connect for tcp, send for udp; nothing at the server).
expect_flow() {
	local name=$1 app=$2 addr=$3 port=$4 expect=$5 rc res mode=${FLOW_MODE:-tcp} stage=connect
	flows_token_n=$((flows_token_n + 1))
	local token="f$$-$flows_token_n"
	[[ $mode == udp ]] && stage=send
	if [[ $app == - ]]; then
		res=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$token" 2>&1)
	else
		res=$(sandbox_run_app "$app" "$FLOWPROBE" "$mode" "$addr" "$port" --token "$token" 2>&1)
	fi
	rc=$?
	if [[ $expect == ok ]]; then
		if ((rc == 0)) && sandbox_server_saw "$mode" "$port" "$token"; then
			tap_ok "$name"
		else
			tap_not_ok "$name" "expected ok: rc $rc: $res"
		fi
	elif ((rc == 1)) && sandbox_refused "$res" "$stage" && ! sandbox_server_saw_token "$token"; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "expected EPERM at $stage and nothing at the server: rc $rc: $res"
	fi
}

# flow_quiet APP ADDR PORT: one flow whose verdict another check already proved; 0 if it went out.
flow_quiet() {
	flows_token_n=$((flows_token_n + 1))
	sandbox_run_app "$1" "$FLOWPROBE" "${FLOW_MODE:-tcp}" "$2" "$3" --token "f$$-$flows_token_n" \
		>/dev/null 2>&1
}
