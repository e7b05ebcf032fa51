#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Host-name rules end to end (issue 13): a real dnsmasq in the sandbox's "internet" namespace
# answers the apps' real lookups (plain UDP and TCP with tests/integration/dns_tool.py, the system
# resolver through getaddrinfo with a private /etc/resolv.conf); the kernel learns each app's
# addresses from its own answers (bpf/dns.bpf.c) and the connect hooks allow them. Every flow is
# shown to work without enforcement first; every refusal is EPERM at connect() AND no byte at the
# server. Policy: tests/integration/names.yaml.
#
# Environment: CARWALL_BIN_DIR (default build/), NAMES_LOOPS (resolve-then-connect loops, default
# 10000; 2000 under emulation, CARWALL_VM=1, where each takes several times longer: make check
# runs the 10000 twice on the host's kernel) and NAMES_LOOP_SECONDS (their time bound, default
# 240).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"
. "$top/tests/lib/dns.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
TOOL=$top/tests/integration/dns_tool.py
LOOPS=${NAMES_LOOPS:-$([[ -n ${CARWALL_VM:-} ]] && echo 2000 || echo 10000)}
LOOP_SECONDS=${NAMES_LOOP_SECONDS:-240}
# The TTL of the names whose expiry is tested: longer than a lookup and a connect take on a
# loaded machine (two process starts), so that only the expiry the test waits for counts.
SHORT_TTL=4

if ! command -v dnsmasq >/dev/null || ! command -v python3 >/dev/null; then
	tap_skip "hostname rules" "dnsmasq or python3 missing (scripts/install-deps.sh installs them)"
	tap_done
	exit
fi

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox
sandbox_create "cw-n$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
cp "$top/tests/integration/names.yaml" "$SANDBOX_POLICY"
out=$SANDBOX_DIR/names
mkdir -p "$out"

# Addresses of the "internet" (the flowprobe servers listen on every address): names below.
for a in 198.51.100.30 198.51.100.31 198.51.100.53 198.51.100.81 198.51.100.82 198.51.100.83 198.51.100.84 \
	198.51.100.85 $(seq -f '198.51.100.%g' 100 139); do
	sandbox_in_net ip addr add "$a/32" dev lo
done

# dnsmasq: the test's names, over IPv6 too.
# shellcheck disable=SC2054 # commas are dnsmasq's
dns_args=(--listen-address=2001:db8:ffff::2
	--host-record=tiles.oem.example,198.51.100.20,2001:db8:51::20
	--host-record=a.maps.oem.example,198.51.100.80
	--host-record=maps.oem.example,198.51.100.81
	"--host-record=short.maps.oem.example,198.51.100.82,$SHORT_TTL"
	"--host-record=held.maps.oem.example,198.51.100.83,$SHORT_TTL"
	--host-record=c.maps.oem.example,198.51.100.84
	--host-record=d.maps.oem.example,198.51.100.85
	--host-record=edge-1.cdn.example,198.51.100.30
	--host-record=feed.oem.example,198.51.100.31
	--cname=edge.oem.example,edge-1.cdn.example
	--host-record=tracker.oem.example,203.0.113.7)
for i in $(seq 100 139); do
	dns_args+=("--host-record=big.oem.example,198.51.100.$i")
done
for i in $(seq 1 8); do
	dns_args+=("--host-record=l$i.maps.oem.example,198.51.100.$((100 + i)),2")
done
dns_start "$out" tiles.oem.example "${dns_args[@]}" || tap_diag "dnsmasq does not answer yet"
sandbox_in_net "$FLOWPROBE" serve --hold --log "$out/hold-server.log" --tcp 7443 \
	</dev/null >"$out/hold-server.out" 2>&1 &
PIDS[hold-server]=$!
procs_wait_ready "$out/hold-server.out" || { tap_bail_out "the hold server did not start"; exit 1; }

token_n=0
new_token() {
	token_n=$((token_n + 1))
	TOKEN="n$$-$token_n"
}

# as_app APP CMD...: CMD in APP's cgroup, with `carwall run` (it asks the agent where), or while
# the agent is down (AGENT_DOWN=1) by joining the cgroup the agent gave before.
declare -A APP_CGROUP=()
as_app() {
	local app=$1
	shift
	if [[ -n ${AGENT_DOWN:-} ]]; then
		# shellcheck disable=SC2016 # expanded by the inner shell
		sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "${APP_CGROUP[$app]}" "$@"
	else
		sandbox_run_app "$app" "$@"
	fi
}

# query APP ARGS...: a lookup as APP ("-": unmanaged); its output in $QUERY.
query() {
	local app=$1
	shift
	if [[ $app == - ]]; then
		QUERY=$(sandbox_in_hu python3 "$TOOL" query "$@" 2>&1)
	else
		QUERY=$(as_app "$app" python3 "$TOOL" query "$@" 2>&1)
	fi
}

# has_line REGEX TEXT: a line of TEXT matches.
has_line() { grep -q -- "$1" <<<"$2"; }

# first_addr: the first address of the last query's answer.
first_addr() { awk '$1 == "addr" { print $2; exit }' <<<"$QUERY"; }

# expect_flow NAME APP ADDR PORT ok|EPERM [flowprobe flags]: a TCP flow and both of its ends.
# FLOW_MODE (default tcp) may be udp (refused at send) or udp-connect (refused at connect).
expect_flow() {
	local name=$1 app=$2 addr=$3 port=$4 expect=$5 rc res
	local mode=${FLOW_MODE:-tcp} proto=tcp stage=connect
	shift 5
	[[ $mode == tcp ]] || proto=udp
	[[ $mode == udp ]] && stage=send
	new_token
	if [[ $app == - ]]; then
		res=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$TOKEN" "$@" 2>&1)
	else
		res=$(as_app "$app" "$FLOWPROBE" "$mode" "$addr" "$port" --token "$TOKEN" "$@" 2>&1)
	fi
	rc=$?
	if [[ $expect == ok ]]; then
		if ((rc == 0)) && sandbox_server_saw "$proto" "$port" "$TOKEN"; then
			tap_ok "$name"
		else
			tap_not_ok "$name" "expected ok: rc $rc: $res" "last lookup: $QUERY"
		fi
	elif ((rc == 1)) && [[ $res == *"result=EPERM stage=$stage"* ]] &&
		! sandbox_server_saw "$proto" "$port" "$TOKEN"; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "expected EPERM at $stage and nothing at the server: rc $rc: $res"
	fi
}

# dns_counter APP FIELD: a DNS counter of the app in `carwall stats --json`.
dns_counter() {
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" stats --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
if "apps" not in d:
    sys.exit("carwall stats gave no apps: %s" % d)  # the reason, in the test log
for a in d["apps"]:
    if a.get("id") == sys.argv[1]:
        print(a.get("dns", {}).get(sys.argv[2], 0)); break
else:
    print(0)' "$1" "$2"
}

# ---- control: the names resolve and their servers answer, without enforcement ---------------
query - --server 192.0.2.2 tiles.oem.example
tap_check "control: dnsmasq answers tiles.oem.example for an unmanaged process" \
	has_line '^addr 198.51.100.20$' "$QUERY"
expect_flow "control: an unmanaged process reaches 198.51.100.20:443" - 198.51.100.20 443 ok
expect_flow "control: an unmanaged process reaches 203.0.113.7:443" - 203.0.113.7 443 ok
expect_flow "control: an unmanaged process reaches 198.51.100.81:443" - 198.51.100.81 443 ok

sandbox_agent_start || { tap_bail_out "the agent did not start"; exit 1; }

# ---- resolve then connect ---------------------------------------------------------------------
expect_flow "connect before resolving is refused" navigation 198.51.100.20 443 EPERM
query navigation --server 192.0.2.2 TiLeS.OeM.ExAmPlE
tap_check "the app resolves its name (0x20 mixed case) through the trusted resolver" \
	has_line '^addr 198.51.100.20$' "$QUERY"
expect_flow "resolve then connect is allowed (IPv4)" navigation 198.51.100.20 443 ok
query navigation --server 2001:db8:ffff::2 --type AAAA tiles.oem.example
expect_flow "resolve AAAA over IPv6 then connect is allowed (IPv6)" navigation 2001:db8:51::20 443 ok
expect_flow "a port the name's rule does not list is refused" navigation 198.51.100.20 8443 EPERM
# event_names_host: the refusal's event names the host the address was learned for.
event_names_host() {
	local i
	for ((i = 0; i < 50; i++)); do
		"$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json 2>/dev/null |
			grep '"dst":"198.51.100.20","port":8443' | grep -q '"host":"tiles.oem.example"' &&
			return 0
		sleep 0.1
	done
	return 1
}
tap_check "the refusal's event names the learned host" event_names_host
query mediaplayer --server 192.0.2.2 tiles.oem.example
expect_flow "another app, even after its own lookup, is refused the address" mediaplayer \
	198.51.100.20 443 EPERM

# ---- UDP: datagrams (refused at send) and connected sockets -------------------------------
FLOW_MODE=udp expect_flow "control: an unmanaged process sends to 198.51.100.31:9000/udp" - \
	198.51.100.31 9000 ok
FLOW_MODE=udp expect_flow "a datagram before resolving is refused at send" navigation \
	198.51.100.31 9000 EPERM
query navigation --server 192.0.2.2 feed.oem.example
FLOW_MODE=udp expect_flow "resolve then sendto is allowed (a UDP rule's name)" navigation \
	198.51.100.31 9000 ok
FLOW_MODE=udp-connect expect_flow "resolve then a connected UDP socket is allowed" navigation \
	198.51.100.31 9000 ok
expect_flow "the UDP rule's name does not allow TCP" navigation 198.51.100.31 9000 EPERM

# ---- wildcards, CNAME chains, names not in the policy -------------------------------------
query navigation --server 192.0.2.2 a.maps.oem.example
expect_flow "a name below *.maps.oem.example is allowed" navigation 198.51.100.80 443 ok
query navigation --server 192.0.2.2 maps.oem.example
expect_flow "*.maps.oem.example does not allow maps.oem.example itself" navigation \
	198.51.100.81 443 EPERM
query nested --server 192.0.2.2 a.maps.oem.example
expect_flow "nested wildcards: the most specific (*.maps.oem.example) decides: 443" nested \
	198.51.100.80 443 ok
expect_flow "nested wildcards: with the rules of the wider *.oem.example: 8443" nested \
	198.51.100.80 8443 ok
expect_flow "nested wildcards: nothing else" nested 198.51.100.80 9000 EPERM
before=$(dns_counter navigation other_name)
query navigation --server 192.0.2.2 tracker.oem.example
expect_flow "a name not in the policy teaches nothing" navigation 203.0.113.7 443 EPERM
after=$(dns_counter navigation other_name)
tap_check "the answer to a name not in the policy is counted (other_name $before -> $after)" \
	test "$after" -gt "$before"
query navigation --server 192.0.2.2 edge.oem.example
tap_check "edge.oem.example is a CNAME to edge-1.cdn.example" has_line '^addr 198.51.100.30$' "$QUERY"
expect_flow "an address at the end of a CNAME chain of the app's name is allowed" navigation \
	198.51.100.30 443 ok

# ---- spoofed and unrelated answers -----------------------------------------------------------
# spoof NAME SOURCE SPORT: an unsolicited answer "tiles.oem.example A 203.0.113.7" from
# SOURCE:SPORT to a socket of the app.
spoof() {
	local name=$1 source=$2 sport=$3 res
	rm -f "$out/listen.ready"
	sandbox_run_app navigation python3 "$TOOL" listen --port 5300 --ready "$out/listen.ready" \
		--seconds 10 >"$out/listen.out" 2>&1 &
	PIDS[listen]=$!
	procs_wait_ready "$out/listen.ready" || tap_diag "the listener is not ready yet"
	sandbox_in_net python3 "$TOOL" answer --source "$source" --sport "$sport" --to 192.0.2.1 \
		--dport 5300 tiles.oem.example 203.0.113.7
	procs_wait listen
	tap_diag "listener: $(cat "$out/listen.out")"
	tap_check "$name: the app's socket received it" grep -qx 'received 1' "$out/listen.out"
	expect_flow "$name: it teaches nothing" navigation 203.0.113.7 443 EPERM
}
before=$(dns_counter navigation untrusted)
spoof "an answer from port 53 of an untrusted address" 203.0.113.7 53
after=$(dns_counter navigation untrusted)
tap_check "an answer from an untrusted address is counted (untrusted $before -> $after)" \
	test "$after" -gt "$before"
spoof "an answer from a trusted resolver's address but another port" 198.51.100.53 5353

rm -f "$out/responder.ready"
sandbox_in_net python3 "$TOOL" serve --bind 198.51.100.53 --port 53 --mode additional \
	--ready "$out/responder.ready" </dev/null >"$out/responder.out" 2>&1 &
PIDS[responder]=$!
procs_wait_ready "$out/responder.ready" || { tap_bail_out "the crafted responder did not start"; exit 1; }
before=$(dns_counter navigation skipped_records)
query navigation --server 198.51.100.53 tiles.oem.example
tap_check "a trusted resolver's answer carries records of other names" \
	has_line '^addr 203.0.113.7$' "$QUERY"
expect_flow "records owned by other names (answer and additional sections) teach nothing" \
	navigation 203.0.113.7 443 EPERM
after=$(dns_counter navigation skipped_records)
tap_check "the records not learned are counted (skipped_records $before -> $after)" \
	test "$after" -gt "$before"
expect_flow "DNS to an address that is not a trusted resolver is refused" navigation \
	203.0.113.7 53 EPERM

# ---- truncated answers, then TCP -------------------------------------------------------------
query navigation --server 192.0.2.2 big.oem.example
tap_check "dnsmasq truncates big.oem.example over UDP (TC bit)" has_line 'tc 1$' "$QUERY"
tc_addr=$(first_addr)
expect_flow "an address of a truncated answer is not learned" navigation "${tc_addr:-none}" 443 EPERM
query navigation --tcp --server 192.0.2.2 big.oem.example
tap_check "over TCP the answer is whole" has_line 'tc 0$' "$QUERY"
expect_flow "an address of the answer over TCP is learned" navigation "$(first_addr)" 443 ok

# ---- time --------------------------------------------------------------------------------------
query navigation --server 192.0.2.2 short.maps.oem.example
expect_flow "a name with a $SHORT_TTL s TTL: connect right after resolving is allowed" navigation \
	198.51.100.82 443 ok
sleep $((SHORT_TTL + 1))
expect_flow "after its TTL (no grace) a new connect is refused" navigation 198.51.100.82 443 EPERM
query navigation --server 192.0.2.2 short.maps.oem.example
expect_flow "a fresh answer allows it again" navigation 198.51.100.82 443 ok

query navigation --server 192.0.2.2 held.maps.oem.example
new_token
held_token=$TOKEN
sandbox_run_app navigation "$FLOWPROBE" hold 198.51.100.83 7443 --hold-ms $((SHORT_TTL * 3000)) \
	--token "$held_token" </dev/null >"$out/hold.out" 2>&1 &
PIDS[hold]=$!
for ((i = 0; i < 50; i++)); do
	grep -q '^established\|^result=' "$out/hold.out" && break
	sleep 0.1
done
tap_check "a connection to a $SHORT_TTL s-TTL name is established" grep -q '^established' \
	"$out/hold.out"
sleep $((SHORT_TTL + 1))
expect_flow "the TTL ran out: a new connect to that address is refused" navigation \
	198.51.100.83 7443 EPERM
# A reload of a changed policy (the agent does not flip for the same one): a new epoch (the
# egress program judges the flow again) and a revocation pass.
sed -i 's/ports: \[9000\]/ports: [9001]/' "$SANDBOX_POLICY"
tap_check "a reload while the connection is open" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload
tap_check "the changed policy went in force" grep -q 'in force (\(carwall reload\|the file changed\))' \
	"$SANDBOX_DIR/agent.log"
procs_wait hold
tap_check "the connection admitted by name outlives its TTL and the reload" \
	grep -q '^result=ok stage=hold' "$out/hold.out"

# ---- the agent is not in the path ----------------------------------------------------------
# `carwall run` puts each command in a leaf of its own below the app's cgroup.
APP_CGROUP[navigation]=$(dirname "$SANDBOX_CGROUP2$(sandbox_run_app navigation sh -c \
	'sed -n "s/^0:://p" /proc/self/cgroup')")
sandbox_agent_kill
AGENT_DOWN=1
query navigation --server 192.0.2.2 c.maps.oem.example
expect_flow "agent killed: the kernel still learns (resolve then connect allowed)" navigation \
	198.51.100.84 443 ok
expect_flow "agent killed: an address never resolved is still refused" navigation \
	198.51.100.85 443 EPERM
AGENT_DOWN=
sandbox_agent_start || { tap_bail_out "the agent did not start again"; exit 1; }
names_json=$("$CARWALL" --run-dir "$SANDBOX_RUN_DIR" names --app navigation --json 2>&1)
tap_check "a restarted agent shows the table learned while it was down (carwall names --json)" \
	python3 -c '
import json, sys
e = [x for x in json.loads(sys.argv[1])["learned"] if x["address"] == "198.51.100.84"]
assert e and e[0]["app"] == "navigation" and e[0]["name"] == "*.maps.oem.example", e
assert not e[0]["expired"] and e[0]["expires_in_s"] > 200 and e[0]["line"] == 10, e' "$names_json"
expect_flow "restart keeps the table: connect without a new lookup is allowed" navigation \
	198.51.100.84 443 ok

# ---- the system resolver, many times --------------------------------------------------------
printf 'nameserver 192.0.2.2\noptions attempts:2 timeout:1\n' >"$out/resolv.conf"
names=()
for i in $(seq 1 8); do names+=("l$i.maps.oem.example"); done
new_token
# shellcheck disable=SC2016 # expanded by the inner shell
res=$(sandbox_run_app navigation unshare -m sh -c \
	'mount --bind "$0" /etc/resolv.conf && exec python3 "$@"' "$out/resolv.conf" \
	"$TOOL" loop --count "$LOOPS" --seconds "$LOOP_SECONDS" --port 443 --token "$TOKEN" \
	"${names[@]}" 2>&1)
tap_diag "resolve-then-connect through getaddrinfo (8 names with a 2 s TTL): $res"
tap_check "$LOOPS resolve-then-connect loops through the system resolver, 0 refused" \
	has_line "^loops $LOOPS ok $LOOPS refused 0 other 0$" "$res"

# ---- a reload that drops a name --------------------------------------------------------------
query navigation --server 192.0.2.2 edge.oem.example
new_token
sandbox_run_app navigation "$FLOWPROBE" hold 198.51.100.30 7443 --hold-ms 8000 \
	--token "$TOKEN" </dev/null >"$out/hold-edge.out" 2>&1 &
PIDS[hold-edge]=$!
for ((i = 0; i < 50; i++)); do
	grep -q '^established\|^result=' "$out/hold-edge.out" && break
	sleep 0.1
done
tap_check "a connection by edge.oem.example is established" grep -q '^established' \
	"$out/hold-edge.out"
sed -i 's/, edge.oem.example//' "$SANDBOX_POLICY"
tap_check "a reload without edge.oem.example" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload
procs_wait hold-edge
tap_check "the connection by the dropped name is cut (revocation)" \
	grep -q '^result=E[A-Z]* stage=\(send\|recv\)' "$out/hold-edge.out"
expect_flow "an address learned for a name the policy dropped is refused at once" navigation \
	198.51.100.30 443 EPERM
expect_flow "the other learned names still allow their addresses" navigation 198.51.100.84 443 ok

# ---- the quota ---------------------------------------------------------------------------------
sed -i 's/max-learned-per-app: 64/max-learned-per-app: 1/' "$SANDBOX_POLICY"
tap_check "a reload with max-learned-per-app: 1 (the app holds more already)" \
	"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload
before=$(dns_counter navigation over_quota)
query navigation --server 192.0.2.2 d.maps.oem.example
expect_flow "an app over its quota learns no new address" navigation 198.51.100.85 443 EPERM
after=$(dns_counter navigation over_quota)
tap_check "the address not learned is counted (over_quota $before -> $after)" \
	test "$after" -gt "$before"
expect_flow "the addresses it holds still allow their flows" navigation 198.51.100.84 443 ok
quota_reported() {
	local i
	for ((i = 0; i < 80; i++)); do
		grep -q 'addresses from DNS answers were not learned' "$SANDBOX_DIR/agent.log" && return 0
		sleep 0.1
	done
	return 1
}
tap_check "the agent reports the addresses not learned" quota_reported

tap_done
