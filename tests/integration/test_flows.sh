#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Flow tests on the real kernel: the real programs loaded by the real agent into a per-run
# cgroup subtree and pin folder, real processes run as apps with `carwall run`, real traffic
# from a head-unit network namespace to servers in an "internet" namespace. Every flow is first
# shown to work without enforcement; then each verdict is checked at both ends: a refusal is
# flowprobe's "result=EPERM stage=S" at the stage the hook judges (socket, connect or send) and
# no trace of the flow's token in the server's log; an allowed flow is the server's echo back
# and the token in the log.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

sandbox_create "cw-f$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
# The agent runs in developer mode (plain policies), or with CARWALL_FLOWS_MODE=production
# (test_flows_production.sh) in production mode, its default, on signed bundles of the same
# policies.
agent_mode=${CARWALL_FLOWS_MODE:-developer}
flows_yaml=$SANDBOX_DIR/flows.yaml
cp "$top/tests/integration/flows.yaml" "$flows_yaml"
agent_args=()
bundle_version=0
if [[ $agent_mode == production ]]; then
	keys=$SANDBOX_DIR/keys trust=$SANDBOX_DIR/trust
	mkdir -p "$keys" "$trust" && chmod 0755 "$trust" &&
		"$CARWALL" bundle keygen --out "$keys/oem" >/dev/null &&
		cp "$keys/oem.pub" "$trust/oem.pem" && chmod 0644 "$trust/oem.pem" ||
		{ tap_bail_out "cannot make the test keys"; exit 1; }
	SANDBOX_DEVELOPER_MODE=0
	agent_args=(--trust-dir "$trust" --target hu-test)
fi
# policy_file YAML OUT: what the agent reads for YAML: the file itself in developer mode, a
# signed bundle of it (a newer version each time) in production mode.
policy_file() {
	if [[ $agent_mode != production ]]; then
		cp "$1" "$2"
		return
	fi
	bundle_version=$((bundle_version + 1))
	{
		printf 'bundle:\n  id: test.flows\n  version: %s\n  target: hu-test\n' "$bundle_version"
		printf '  not-before: 2020-01-01T00:00:00Z\n  not-after: 2099-01-01T00:00:00Z\n'
		cat "$1"
	} >"$2.payload"
	"$CARWALL" bundle sign --key "$keys/oem.key" "$2.payload" -o "$2" >/dev/null
}
# A copy, so the broken-policy step can replace it under the running agent.
SANDBOX_POLICY=$SANDBOX_DIR/policy
policy_file "$flows_yaml" "$SANDBOX_POLICY" ||
	{ tap_bail_out "cannot make the policy file"; exit 1; }

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

# run_flow ENFORCED APP MODE ADDR PORT FLAGS: runs one flow, sets FLOW_RC and FLOW_OUT.
run_flow() {
	local enforced=$1 app=$2 mode=$3 addr=$4 port=$5 flags=$6
	new_token
	if [[ $enforced == 1 && $app != - ]]; then
		FLOW_OUT=$(sandbox_run_app "$app" "$FLOWPROBE" "$mode" "$addr" "$port" \
			--token "$TOKEN" $flags 2>&1)
	else
		FLOW_OUT=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$TOKEN" \
			$flags 2>&1)
	fi
	FLOW_RC=$?
}

# flow CMD...: runs one flowprobe command line (with --token $TOKEN added by the caller); sets
# FLOW_RC and FLOW_OUT.
flow() {
	FLOW_OUT=$("$@" 2>&1)
	FLOW_RC=$?
}

proto_of() { [[ $1 == tcp ]] && echo tcp || echo udp; }
# The stage at which carwall refuses a flow of this mode: connect4/6 for TCP and connected UDP,
# sendmsg4/6 for unconnected UDP.
stage_of() { [[ $1 == udp ]] && echo send || echo connect; }

# check_flow NAME EXPECT PROTO PORT [STAGE]: the sender's result and the server's log agree with
# EXPECT (ok, or EPERM at STAGE, default connect).
check_flow() {
	local name=$1 expect=$2 proto=$3 port=$4 stage=${5:-connect} saw
	saw=$(sandbox_server_saw_token "$TOKEN" && echo yes || echo no)
	if [[ $expect == ok ]]; then
		if [[ $FLOW_RC -eq 0 && $FLOW_OUT == *"result=ok stage=recv "* ]] &&
			sandbox_server_saw "$proto" "$port" "$TOKEN"; then
			tap_ok "$name"
		else
			tap_not_ok "$name" "want result=ok and the server's log line $proto $port $TOKEN" \
				"exit $FLOW_RC, server saw the token: $saw, output: $FLOW_OUT"
		fi
	else
		if sandbox_refused "$FLOW_OUT" "$stage" && [[ $saw == no ]]; then
			tap_ok "$name"
		else
			tap_not_ok "$name" "want result=EPERM stage=$stage and nothing at the server" \
				"exit $FLOW_RC, server saw the token: $saw, output: $FLOW_OUT"
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
# without a sendmsg hook, SCTP and MPTCP have paths of their own. Their control step shows the
# socket opens and delivers without carwall (the receiver got it: the server's log, or the
# "internet" kernel's echo counter for ping); under carwall socket() itself is refused and
# nothing arrives.
sandbox_in_hu sysctl -qw net.ipv4.ping_group_range="0 2147483647"
# WHAT|MODE|ADDR|PORT|FLAGS|RECEIVER: RECEIVER is "PROTO PORT" in the server's log, or
# "echo snmp Icmp:InEchos" / "echo snmp6 Icmp6InEchos" (the echo requests the internet answered).
odd_protocols=(
	"a UDP-Lite socket|udp-connect|198.51.100.20|9000|--ipproto 136|udplite 9000"
	"a UDP-Lite socket over IPv6|udp-connect|2001:db8:51::20|9000|--ipproto 136|udplite 9000"
	"an unconnected UDP-Lite socket|udp|198.51.100.20|9000|--ipproto 136|udplite 9000"
	"an ICMP ping socket|udp-connect|198.51.100.20|9000|--ipproto 1|echo snmp Icmp:InEchos"
	"an ICMPv6 ping socket|udp-connect|2001:db8:51::20|9000|--ipproto 58|echo snmp6 Icmp6InEchos"
	"a raw IPv4 socket|udp-connect|198.51.100.20|9000|--raw --ipproto 17|udp 9000"
	"a raw IPv6 socket|udp-connect|2001:db8:51::20|9000|--raw --ipproto 17|udp 9000"
)
if [[ $(sysctl -n net.mptcp.enabled 2>/dev/null) == 1 ]]; then
	odd_protocols+=("an MPTCP socket|tcp|198.51.100.20|443|--ipproto 262|tcp 443")
else
	tap_skip "MPTCP socket" "this kernel has no MPTCP (net.mptcp.enabled)"
fi
# SCTP: no SCTP server here; a peer that answers the INIT with an ABORT (ECONNREFUSED at
# connect) is the receiver's proof. A kernel without SCTP cannot make the socket at all.
new_token
flow sandbox_in_hu "$FLOWPROBE" tcp 198.51.100.20 443 --ipproto 132 --token "$TOKEN"
if [[ $FLOW_OUT == *"result=EPROTONOSUPPORT stage=socket "* ||
	$FLOW_OUT == *"result=ESOCKTNOSUPPORT stage=socket "* ]]; then
	tap_skip "SCTP socket: control and enforced" \
		"this kernel has no SCTP (socket(AF_INET, SOCK_STREAM, 132): ${FLOW_OUT%% *})"
	sctp=0
elif [[ $FLOW_OUT == *"result=ECONNREFUSED stage=connect "* || $FLOW_OUT == *"result=ok "* ]]; then
	tap_ok "control, no enforcement: an SCTP socket opens and its INIT reaches 198.51.100.20"
	sctp=1
else
	tap_not_ok "control, no enforcement: an SCTP socket opens and its INIT reaches 198.51.100.20" \
		"want ECONNREFUSED at connect (the peer's ABORT) or ok: $FLOW_OUT"
	sctp=1
fi

# receiver_count RECEIVER TOKEN: how many times the receiver got the flow.
receiver_count() {
	local what=$1 token=$2 proto port
	if [[ $what == echo* ]]; then
		read -r _ proto port <<<"$what"
		sandbox_net_counter "$proto" "$port"
	else
		read -r proto port <<<"$what"
		awk -v p="$proto" -v port="$port" -v t="$token" \
			'$1 == p && $2 == port && $4 == t { n++ } END { print n + 0 }' "$SANDBOX_SERVER_LOG"
	fi
}
# receiver_delta RECEIVER BEFORE TOKEN: what arrived since BEFORE.
receiver_delta() {
	local now
	now=$(receiver_count "$1" "$3")
	echo $((now - ${2:-0}))
}

for f in "${odd_protocols[@]}"; do
	IFS='|' read -r what mode addr port flags receiver <<<"$f"
	new_token
	before=$(receiver_count "$receiver" "$TOKEN")
	flow sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$TOKEN" $flags
	got=$(receiver_delta "$receiver" "$before" "$TOKEN")
	if [[ $FLOW_RC -eq 0 && $FLOW_OUT == *"result=ok stage=recv "* ]] && ((got >= 1)); then
		tap_ok "control, no enforcement: $what to $addr opens and reaches the receiver"
	else
		tap_not_ok "control, no enforcement: $what to $addr opens and reaches the receiver" \
			"want result=ok and the receiver ($receiver) to get it; got $got: $FLOW_OUT"
	fi
done

# ---- enforced ----------------------------------------------------------------------------------
if ! sandbox_agent_start "${agent_args[@]}"; then
	tap_bail_out "carwalld did not start"
	exit 1
fi
tap_check "status --quiet exits 0: the agent says it enforces" \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status --quiet
tap_check "status --json says \"enforcing\": true" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"enforcing\": true'"
tap_check "status --json names the policy" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"path\": \"$SANDBOX_POLICY\"'"
tap_check "status --json says the agent runs in $agent_mode mode" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"mode\": \"$agent_mode\"'"
if [[ $agent_mode == production ]]; then
	tap_check "status --json says the policy in force is signed" \
		bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"signed\": true'"
fi

for f in "${flows[@]}"; do
	IFS='|' read -r app mode addr port expect flags <<<"$f"
	run_flow 1 "$app" "$mode" "$addr" "$port" "$flags"
	check_flow "enforced: $(describe "$app" "$mode" "$addr" "$port" "$flags") is $expect" \
		"$expect" "$(proto_of "$mode")" "$port" "$(stage_of "$mode")"
done

for f in "${odd_protocols[@]}"; do
	IFS='|' read -r what mode addr port flags receiver <<<"$f"
	new_token
	before=$(receiver_count "$receiver" "$TOKEN")
	flow sandbox_run_app mediaplayer "$FLOWPROBE" "$mode" "$addr" "$port" --token "$TOKEN" $flags
	got=$(receiver_delta "$receiver" "$before" "$TOKEN")
	if sandbox_refused "$FLOW_OUT" socket && ((got == 0)); then
		tap_ok "enforced: the app may not create $what, even towards an allowed destination"
	else
		tap_not_ok "enforced: the app may not create $what, even towards an allowed destination" \
			"want result=EPERM stage=socket and nothing at the receiver ($receiver got $got): $FLOW_OUT"
	fi
done
if ((sctp)); then
	new_token
	flow sandbox_run_app mediaplayer "$FLOWPROBE" tcp 198.51.100.20 443 --ipproto 132 --token "$TOKEN"
	if sandbox_refused "$FLOW_OUT" socket; then
		tap_ok "enforced: the app may not create an SCTP socket"
	else
		tap_not_ok "enforced: the app may not create an SCTP socket" \
			"want result=EPERM stage=socket: $FLOW_OUT"
	fi
fi

# A child and a grandchild of the app's process are the app too.
new_token
flow sandbox_run_app mediaplayer sh -c "'$FLOWPROBE' tcp 203.0.113.7 443 --token $TOKEN"
check_flow "enforced: a child process of the app is refused" EPERM tcp 443
new_token
flow sandbox_run_app mediaplayer sh -c "sh -c \"'$FLOWPROBE' udp 2001:db8:bad::7 514 --token $TOKEN\" & wait \$!"
check_flow "enforced: a grandchild process of the app is refused" EPERM udp 514 send

# A sub-cgroup the app makes for itself is still the app.
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
in_cgroup() {
	local cg=$1
	shift
	sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}
mkdir -p "$app_cg/worker/nested"
new_token
flow in_cgroup "$app_cg/worker/nested" "$FLOWPROBE" tcp 2001:db8:bad::7 443 --token "$TOKEN"
check_flow "enforced: a process in a nested sub-cgroup of the app is refused" EPERM tcp 443
new_token
flow in_cgroup "$app_cg/worker/nested" "$FLOWPROBE" tcp 198.51.100.20 443 --token "$TOKEN"
check_flow "enforced: a process in a nested sub-cgroup of the app reaches an allowed server" ok tcp 443

# A cgroup next to the apps that no policy names is unmanaged.
mkdir -p "$SANDBOX_CGROUP_ROOT/system.slice/other.service"
new_token
flow in_cgroup "$SANDBOX_CGROUP_ROOT/system.slice/other.service" "$FLOWPROBE" tcp 203.0.113.7 443 --token "$TOKEN"
check_flow "enforced: a process in an unmanaged cgroup under the same root is unaffected" ok tcp 443

tap_expect_exit "carwall run refuses an app that is not in the policy" 1 \
	sandbox_run_app no-such-app true
run_output=$TAP_LAST_OUTPUT
says_not_in_policy() { [[ $run_output == *"app 'no-such-app' is not in the policy in force"* ]]; }
tap_check "carwall run says why: the app is not in the policy in force" says_not_in_policy
tap_expect_exit "carwall run passes the command's exit code through" 7 \
	sandbox_run_app mediaplayer sh -c 'exit 7'
tap_check "carwall run removes its sub-cgroup afterwards" \
	bash -c "! ls -d '$app_cg'/carwall-run.* 2>/dev/null"

# ---- lifecycle ---------------------------------------------------------------------------------
# The agent dies: the pinned programs and maps keep enforcing the same policy.
sandbox_agent_kill
new_token
flow in_cgroup "$app_cg" "$FLOWPROBE" tcp 203.0.113.7 443 --token "$TOKEN"
check_flow "agent killed with SIGKILL: the offshore tracker is still refused" EPERM tcp 443
new_token
flow in_cgroup "$app_cg" "$FLOWPROBE" tcp 198.51.100.20 443 --token "$TOKEN"
check_flow "agent killed with SIGKILL: the OEM backend is still reached" ok tcp 443
tap_expect_exit "status without an agent exits 3 and reads the pins" 3 \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" status

# A new agent adopts what is pinned.
sandbox_agent_start "${agent_args[@]}" || { tap_bail_out "carwalld did not restart"; exit 1; }
tap_check "a restarted agent adopts the pinned policy" \
	grep -q "Adopted the policy pinned" "$SANDBOX_DIR/agent.log"
new_token
flow sandbox_run_app mediaplayer "$FLOWPROBE" udp 203.0.113.7 514 --token "$TOKEN"
check_flow "after restart: the offshore tracker is refused" EPERM udp 514 send

# A broken policy is refused and the last good one stays: offline, and under the running agent.
# The broken one would allow the tracker on 443 (its first rule) but a later prefix is invalid.
broken=$SANDBOX_DIR/broken.yaml
cat >"$broken" <<'EOF'
version: 1
apps:
  mediaplayer:
    allow:
      - to: [203.0.113.7]
        ports: [443]
        proto: tcp
      - to: [203.0.113.0/33]
EOF
tap_expect_exit "policy check rejects a bad prefix" 1 "$CARWALL" policy check "$broken"
tap_check "policy check names file:line:column" \
	bash -c "'$CARWALL' policy check '$broken' 2>&1 | grep -q '^$broken:8:14: '"
tap_check "policy check accepts the test policy" "$CARWALL" policy check "$flows_yaml"
if [[ $agent_mode == production ]]; then
	# No key signs a broken policy (carwall bundle sign checks it); what reaches a production
	# agent broken is a bundle altered after signing: this one would allow the tracker on 443.
	printf 'version: 1\napps:\n  mediaplayer:\n    allow:\n      - to: [203.0.113.7]\n        ports: [443]\n        proto: tcp\n      - to: [198.51.100.20]\n        ports: [9000]\n        proto: udp\n' \
		>"$SANDBOX_DIR/tracker.yaml"
	policy_file "$SANDBOX_DIR/tracker.yaml" "$SANDBOX_DIR/broken.tmp"
	sed -i 's/ports: \[9000\]/ports: [9001]/' "$SANDBOX_DIR/broken.tmp"
	broken_error="$SANDBOX_POLICY: bundle refused (bad-signature)"
else
	policy_file "$broken" "$SANDBOX_DIR/broken.tmp"
	broken_error="$SANDBOX_POLICY:8:14: "
fi
mv "$SANDBOX_DIR/broken.tmp" "$SANDBOX_POLICY"
tap_expect_exit "live: carwall reload of the broken policy fails" 1 \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload
tap_check "live: status names the broken policy's error" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -qF '\"last_error\": \"$broken_error'"
tap_check "live: status --quiet still says enforcing" \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status --quiet
new_token
flow sandbox_run_app mediaplayer "$FLOWPROBE" tcp 198.51.100.20 443 --token "$TOKEN"
check_flow "live, broken policy refused: the last good one still lets the OEM backend through" ok tcp 443
new_token
flow sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 443 --token "$TOKEN"
check_flow "live, broken policy refused: the tracker it alone would allow stays refused" EPERM tcp 443
policy_file "$flows_yaml" "$SANDBOX_DIR/good.tmp"
mv "$SANDBOX_DIR/good.tmp" "$SANDBOX_POLICY"
tap_check "live: the good policy again clears the error" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' reload && '$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"last_error\": null'"

# stop → unload: enforcement is gone and so are the pins.
tap_expect_exit "unload refuses while the agent runs" 1 \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" unload
sandbox_agent_stop
tap_check "unload detaches and removes the pins" \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" unload
tap_check "the pin folder is gone" test ! -e "$SANDBOX_PIN_DIR"
new_token
flow in_cgroup "$app_cg" "$FLOWPROBE" tcp 203.0.113.7 443 --token "$TOKEN"
check_flow "after unload: the app's flows are no longer judged" ok tcp 443

tap_done
