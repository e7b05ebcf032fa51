#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Flow tests on the real kernel: the real programs loaded by the real agent into a per-run
# cgroup subtree and pin folder, real processes run as apps with `carwall run`, real traffic
# from a head-unit network namespace to servers in an "internet" namespace. Every flow is first
# shown to work without enforcement; then each verdict is checked at both ends (the sender's
# errno and the server's log).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=$top/tests/integration/flows.yaml

sandbox_create "cw-f$$" >/dev/null || tap_bail_out "cannot create the sandbox"

# app|MODE|ADDR|PORT|EXPECT[|flowprobe flags]: EXPECT is ok or EPERM under enforcement.
# app "-" is an unmanaged process.
flows=(
	"mediaplayer|tcp|198.51.100.20|443|ok"
	"mediaplayer|tcp|2001:db8:51::20|443|ok"
	"mediaplayer|tcp|203.0.113.7|443|EPERM"
	"mediaplayer|tcp|2001:db8:bad::7|443|EPERM"
	"mediaplayer|udp|198.51.100.20|9000|ok"
	"mediaplayer|udp|2001:db8:51::20|9000|ok"
	"mediaplayer|udp|203.0.113.7|514|EPERM"
	"mediaplayer|udp|2001:db8:bad::7|514|EPERM"
	"mediaplayer|udp-connect|198.51.100.20|9000|ok"
	"mediaplayer|udp-connect|203.0.113.7|9000|EPERM"
	"mediaplayer|udp-connect|2001:db8:bad::7|9000|EPERM"
	"mediaplayer|tcp|198.51.100.20|443|ok|--socket6"
	"mediaplayer|tcp|203.0.113.7|443|EPERM|--socket6"
	"mediaplayer|udp|203.0.113.7|514|EPERM|--socket6"
	"mediaplayer|udp-connect|198.51.100.20|9000|ok|--socket6"
	"mediaplayer|tcp|198.51.100.20|9000|EPERM"
	"mediaplayer|udp|198.51.100.20|514|EPERM"
	"mediaplayer|tcp|198.51.100.20|8443|EPERM"
	"navigation|tcp|198.51.100.80|8443|ok"
	"navigation|tcp|2001:db8:100::80|8443|ok"
	"navigation|tcp|198.51.100.80|9000|ok"
	"navigation|udp|198.51.100.80|9000|ok"
	"navigation|tcp|198.51.100.20|8443|ok"
	"navigation|tcp|198.51.100.20|9000|EPERM"
	"navigation|tcp|2001:db8:100::80|9000|EPERM"
	"navigation|tcp|203.0.113.7|443|EPERM"
	"-|tcp|203.0.113.7|443|ok"
	"-|udp|2001:db8:bad::7|514|ok"
	"-|udp-connect|203.0.113.7|9000|ok"
)

token_n=0
new_token() {
	token_n=$((token_n + 1))
	TOKEN="t$$-$token_n"
}

# run_flow ENFORCED APP MODE ADDR PORT FLAGS: runs one flow, sets FLOW_RC.
run_flow() {
	local enforced=$1 app=$2 mode=$3 addr=$4 port=$5 flags=$6
	new_token
	if [[ $enforced == 1 && $app != - ]]; then
		sandbox_run_app "$app" "$FLOWPROBE" "$mode" "$addr" "$port" --token "$TOKEN" \
			$flags >/dev/null 2>&1
	else
		sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$TOKEN" $flags \
			>/dev/null 2>&1
	fi
	FLOW_RC=$?
}

proto_of() { [[ $1 == tcp ]] && echo tcp || echo udp; }

# check_flow NAME EXPECT PROTO PORT: the sender's result and the server's log agree with EXPECT.
check_flow() {
	local name=$1 expect=$2 proto=$3 port=$4
	if [[ $expect == ok ]]; then
		if [[ $FLOW_RC -eq 0 ]] && sandbox_server_saw "$proto" "$port" "$TOKEN"; then
			tap_ok "$name"
		else
			tap_not_ok "$name" "flowprobe exit $FLOW_RC (want 0), server saw it: $(
				sandbox_server_saw "$proto" "$port" "$TOKEN" && echo yes || echo no)"
		fi
	else
		if [[ $FLOW_RC -eq 1 ]] && ! sandbox_server_saw "$proto" "$port" "$TOKEN"; then
			tap_ok "$name"
		else
			tap_not_ok "$name" "flowprobe exit $FLOW_RC (want 1 = EPERM), server saw it: $(
				sandbox_server_saw "$proto" "$port" "$TOKEN" && echo yes || echo no)"
		fi
	fi
}

describe() {
	local app=$1 mode=$2 addr=$3 port=$4 flags=$5
	echo "${app/#-/unmanaged} $mode ${flags:+($flags) }$addr port $port"
}

# ---- control: without enforcement every flow reaches its server -------------------------------
for f in "${flows[@]}"; do
	IFS='|' read -r app mode addr port expect flags <<<"$f"
	run_flow 0 "$app" "$mode" "$addr" "$port" "$flags"
	check_flow "control, no enforcement: $(describe "$app" "$mode" "$addr" "$port" "$flags") reaches the server" \
		ok "$(proto_of "$mode")" "$port"
done

# IP sockets other than TCP and UDP, towards destinations the app may reach over TCP or UDP:
# a connected UDP-Lite socket is never seen by the connect hooks, raw and ping sockets send
# without a sendmsg hook. Their control step shows that socket() and connect() pass without
# carwall; under carwall socket() itself is refused.
sandbox_in_hu sysctl -qw net.ipv4.ping_group_range="0 2147483647"
odd_protocols=(
	"UDP-Lite socket|udp-connect|198.51.100.20|9000|--ipproto 136"
	"UDP-Lite socket over IPv6|udp-connect|2001:db8:51::20|9000|--ipproto 136"
	"ICMP ping socket|udp-connect|198.51.100.20|9000|--ipproto 1"
	"ICMPv6 ping socket|udp-connect|2001:db8:51::20|9000|--ipproto 58"
	"raw IPv4 socket|udp-connect|198.51.100.20|9000|--raw --ipproto 17"
	"raw IPv6 socket|udp-connect|2001:db8:51::20|9000|--raw --ipproto 17"
)
if [[ $(sysctl -n net.mptcp.enabled 2>/dev/null) == 1 ]]; then
	odd_protocols+=("MPTCP socket|tcp|198.51.100.20|443|--ipproto 262")
else
	tap_skip "MPTCP socket" "this kernel has no MPTCP (net.mptcp.enabled)"
fi
for f in "${odd_protocols[@]}"; do
	IFS='|' read -r what mode addr port flags <<<"$f"
	out=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --timeout-ms 300 $flags 2>&1)
	if [[ $out != *"stage=socket"* && $out != *"stage=connect"* ]]; then
		tap_ok "control, no enforcement: $what connect() to $addr passes"
	else
		tap_not_ok "control, no enforcement: $what connect() to $addr passes" "$out"
	fi
done

# ---- enforced ----------------------------------------------------------------------------------
if ! sandbox_agent_start; then
	tap_bail_out "carwalld did not start"
fi
tap_check "status reports enforcement" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status
tap_check "status --json names the policy" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"path\": \"$SANDBOX_POLICY\"'"

for f in "${flows[@]}"; do
	IFS='|' read -r app mode addr port expect flags <<<"$f"
	run_flow 1 "$app" "$mode" "$addr" "$port" "$flags"
	check_flow "enforced: $(describe "$app" "$mode" "$addr" "$port" "$flags") is $expect" \
		"$expect" "$(proto_of "$mode")" "$port"
done

for f in "${odd_protocols[@]}"; do
	IFS='|' read -r what mode addr port flags <<<"$f"
	out=$(sandbox_run_app mediaplayer "$FLOWPROBE" "$mode" "$addr" "$port" --timeout-ms 300 $flags 2>&1)
	rc=$?
	if [[ $rc -eq 1 && $out == *"result=EPERM stage=socket"* ]]; then
		tap_ok "enforced: the app may not create a $what, even towards an allowed destination"
	else
		tap_not_ok "enforced: the app may not create a $what, even towards an allowed destination" "exit $rc: $out"
	fi
done

# A child and a grandchild of the app's process are the app too.
new_token
sandbox_run_app mediaplayer sh -c "'$FLOWPROBE' tcp 203.0.113.7 443 --token $TOKEN" >/dev/null 2>&1
FLOW_RC=$?
check_flow "enforced: a child process of the app is refused" EPERM tcp 443
new_token
sandbox_run_app mediaplayer sh -c "sh -c \"'$FLOWPROBE' udp 2001:db8:bad::7 514 --token $TOKEN\" & wait \$!" >/dev/null 2>&1
FLOW_RC=$?
check_flow "enforced: a grandchild process of the app is refused" EPERM udp 514

# A sub-cgroup the app makes for itself is still the app.
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
in_cgroup() {
	local cg=$1
	shift
	sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}
mkdir -p "$app_cg/worker/nested"
new_token
in_cgroup "$app_cg/worker/nested" "$FLOWPROBE" tcp 2001:db8:bad::7 443 --token "$TOKEN" >/dev/null 2>&1
FLOW_RC=$?
check_flow "enforced: a process in a nested sub-cgroup of the app is refused" EPERM tcp 443
new_token
in_cgroup "$app_cg/worker/nested" "$FLOWPROBE" tcp 198.51.100.20 443 --token "$TOKEN" >/dev/null 2>&1
FLOW_RC=$?
check_flow "enforced: a process in a nested sub-cgroup of the app reaches an allowed server" ok tcp 443

# A cgroup next to the apps that no policy names is unmanaged.
mkdir -p "$SANDBOX_CGROUP_ROOT/system.slice/other.service"
new_token
in_cgroup "$SANDBOX_CGROUP_ROOT/system.slice/other.service" "$FLOWPROBE" tcp 203.0.113.7 443 --token "$TOKEN" >/dev/null 2>&1
FLOW_RC=$?
check_flow "enforced: a process in an unmanaged cgroup under the same root is unaffected" ok tcp 443

tap_expect_exit "carwall run refuses an app that is not in the policy" 1 \
	sandbox_run_app no-such-app true
tap_expect_exit "carwall run passes the command's exit code through" 7 \
	sandbox_run_app mediaplayer sh -c 'exit 7'
tap_check "carwall run removes its sub-cgroup afterwards" \
	bash -c "! ls -d '$app_cg'/carwall-run.* 2>/dev/null"

# ---- lifecycle ---------------------------------------------------------------------------------
# The agent dies: the pinned programs and maps keep enforcing the same policy.
sandbox_agent_kill
new_token
in_cgroup "$app_cg" "$FLOWPROBE" tcp 203.0.113.7 443 --token "$TOKEN" >/dev/null 2>&1
FLOW_RC=$?
check_flow "agent killed with SIGKILL: the offshore tracker is still refused" EPERM tcp 443
new_token
in_cgroup "$app_cg" "$FLOWPROBE" tcp 198.51.100.20 443 --token "$TOKEN" >/dev/null 2>&1
FLOW_RC=$?
check_flow "agent killed with SIGKILL: the OEM backend is still reached" ok tcp 443
tap_expect_exit "status without an agent exits 3 and reads the pins" 3 \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" status

# A new agent adopts what is pinned.
sandbox_agent_start || tap_bail_out "carwalld did not restart"
tap_check "a restarted agent adopts the pinned policy" \
	grep -q "Adopted the policy pinned" "$SANDBOX_DIR/agent.log"
new_token
sandbox_run_app mediaplayer "$FLOWPROBE" udp 203.0.113.7 514 --token "$TOKEN" >/dev/null 2>&1
FLOW_RC=$?
check_flow "after restart: the offshore tracker is refused" EPERM udp 514

# A broken policy is refused and the last good one stays.
broken=$SANDBOX_DIR/broken.yaml
printf 'version: 1\napps:\n  mediaplayer:\n    allow:\n      - to: [203.0.113.0/33]\n' >"$broken"
cp "$broken" "$SANDBOX_DIR/policy-in-place.yaml"
tap_expect_exit "policy check rejects a bad prefix" 1 "$CARWALL" policy check "$broken"
tap_check "policy check names file:line:column" \
	bash -c "'$CARWALL' policy check '$broken' 2>&1 | grep -q '^$broken:5:[0-9]*: '"
tap_check "policy check accepts the test policy" "$CARWALL" policy check "$SANDBOX_POLICY"

# stop → unload: enforcement is gone and so are the pins.
tap_expect_exit "unload refuses while the agent runs" 1 \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" unload
sandbox_agent_stop
tap_check "unload detaches and removes the pins" \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" unload
tap_check "the pin folder is gone" test ! -e "$SANDBOX_PIN_DIR"
new_token
in_cgroup "$app_cg" "$FLOWPROBE" tcp 203.0.113.7 443 --token "$TOKEN" >/dev/null 2>&1
FLOW_RC=$?
check_flow "after unload: the app's flows are no longer judged" ok tcp 443

tap_done
