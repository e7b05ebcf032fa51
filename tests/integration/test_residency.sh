#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Data residency enforced on the real kernel (issue 16): a policy with `residency-enforce:
# home-only` and an agent with `--geo-db`, on a small country database the test writes itself
# (tests/lib/make_geo_db.pl: documentation ranges mapped to the user-assigned codes xa and
# xb). A flow a rule allows goes out only to an address of the home region, unless its rule is
# cross-border; the refusal is EPERM at the hook, nothing at the server, and an event with its
# own verdict (deny-region). A host name whose learned address is abroad (dnsmasq) is refused
# the same way; audit mode lets it through with the event; a reload with another database or
# another home region flips with the policy; without a database a home-only policy is refused
# and the policy in force stays. Every flow is shown to work without enforcement first.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"
. "$top/tests/lib/dns.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
TOOL=$top/tests/integration/dns_tool.py

if ! command -v dnsmasq >/dev/null || ! perl -MMaxMind::DB::Writer::Tree -e1 2>/dev/null; then
	tap_skip "data residency" "dnsmasq or libmaxmind-db-writer-perl missing (scripts/install-deps.sh)"
	tap_done
	exit
fi

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox
sandbox_create "cw-rs$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
rdir=$SANDBOX_DIR/residency
mkdir -p "$rdir"

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }

# The databases: A has the OEM ranges at home (xa) and the tracker's abroad (xb); B the reverse.
DB=$rdir/country.mmdb
"$top/tests/lib/make_geo_db.pl" "$rdir/a.mmdb" 198.51.100.0/24=XA 2001:db8:51::/48=XA \
	203.0.113.0/24=XB 2001:db8:bad::/48=xb || { tap_bail_out "cannot write database A"; exit 1; }
"$top/tests/lib/make_geo_db.pl" "$rdir/b.mmdb" 198.51.100.0/24=xb 2001:db8:51::/48=xb \
	203.0.113.0/24=xa 2001:db8:bad::/48=xa || { tap_bail_out "cannot write database B"; exit 1; }
cp "$rdir/a.mmdb" "$DB"

# policy HOME: the test's policy, home region HOME.
policy() {
	cat <<-YAML
	version: 1
	home-region: $1
	residency-enforce: home-only
	resolvers: [192.0.2.2]
	dns: {min-ttl: 2, max-ttl: 3600, grace: 0}
	apps:
	  mediaplayer:
	    allow:
	      - to: [198.51.100.0/24, 203.0.113.0/24, "2001:db8:51::/48", "2001:db8:bad::/48"]
	        ports: [443, 514, 7443]
	      - to: 203.0.113.7
	        ports: 9000
	        proto: tcp
	        region: xb
	        cross-border: "crash reports to the vendor's collector, consented"
	      - to: [cdn.oem.example, home.oem.example]
	        ports: 8443
	        proto: tcp
	  navigation:
	    audit: true
	    allow:
	      - to: [cdn.oem.example, 203.0.113.0/24]
	        ports: 8443
	        proto: tcp
	YAML
}
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
policy xa >"$SANDBOX_POLICY"

# dnsmasq in the "internet": cdn.oem.example's CDN serves from abroad, home.oem.example at home.
sandbox_in_net ip addr add 203.0.113.8/32 dev lo
sandbox_in_net ip addr add 198.51.100.21/32 dev lo
dns_start "$rdir" cdn.oem.example \
	--host-record=cdn.oem.example,203.0.113.8 --host-record=home.oem.example,198.51.100.21 ||
	tap_diag "dnsmasq does not answer yet"
# A server that keeps TCP connections open (port 7443), for a connection a reload must cut.
sandbox_in_net "$FLOWPROBE" serve --hold --log "$rdir/hold-server.log" --tcp 7443 \
	</dev/null >"$rdir/hold-server.out" 2>&1 &
PIDS[hold-server]=$!
procs_wait_ready "$rdir/hold-server.out" || tap_diag "the hold server is not ready yet"

# flow NAME APP MODE ADDR PORT ok|EPERM: one flow as APP ("-": unmanaged), judged at both ends.
flow() {
	local name=$1 app=$2 mode=$3 addr=$4 port=$5 want=$6 token res got
	token="rs$$-${EPOCHREALTIME/./}"
	if [[ $app == - ]]; then
		res=$(sandbox_in_hu "$SANDBOX_FLOWPROBE" "$mode" "$addr" "$port" --token "$token" 2>&1)
	else
		res=$(sandbox_run_app "$app" "$SANDBOX_FLOWPROBE" "$mode" "$addr" "$port" \
			--token "$token" 2>&1)
	fi
	got=$(sandbox_judge "$res" "$token" "$mode" "$port")
	if [[ $got == "$want" ]]; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "expected $want, got $got"
	fi
}

# event APP DST PORT KIND: the agent logged a KIND (refused|audit) event for the flow, with
# the verdict deny-region, a reason that says why and the destination's country, xb in
# database A (bounded wait for the log).
event() {
	local i line
	for ((i = 0; i < 50; i++)); do
		line=$("$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json 2>/dev/null |
			grep "\"app\":\"$1\"" | grep "\"dst\":\"$2\",\"port\":$3," | tail -n 1)
		if [[ $line == *"\"event\":\"$4\""* && $line == *'"verdict":"deny-region"'* &&
			$line == *'outside the home region'* && $line == *'"country":"xb"'* ]]; then
			return 0
		fi
		sleep 0.1
	done
	echo "no $4 deny-region event for $1 $2:$3; last: $line"
	return 1
}

# region_refused APP: the app's home-only refusals in `carwall stats --json`.
region_refused() {
	cw stats --json | python3 -c '
import json, sys
for a in json.load(sys.stdin)["apps"]:
    if a.get("id") == sys.argv[1]:
        print(a.get("region_refused_in_generation", -1)); break
else:
    print(-1)' "$1"
}

query() { QUERY=$(sandbox_run_app "$1" python3 "$TOOL" query --server 192.0.2.2 "$2" 2>&1); }

# ---- the database, offline ----------------------------------------------------------------------
tap_check "geo lookup: 198.51.100.20 is in xa" \
	bash -c "'$CARWALL' geo lookup --db '$DB' 198.51.100.20 | grep -q '^198.51.100.20: xa (network /24)'"
tap_check "geo lookup --json: 2001:db8:bad::7 is in xb, with the database's type and sha256" \
	bash -c "'$CARWALL' --json geo lookup --db '$DB' 2001:db8:bad::7 | python3 -c '
import json, sys, hashlib
o = json.load(sys.stdin)
assert o[\"country\"] == \"xb\" and o[\"prefixlen\"] == 48, o
assert o[\"database\"][\"type\"] == \"carwall-test-country\", o
assert o[\"database\"][\"sha256\"] == hashlib.sha256(open(\"$DB\", \"rb\").read()).hexdigest(), o'"

# ---- control: every flow works without enforcement ----------------------------------------------
flow "control: unmanaged reaches 198.51.100.20:443 (home)" - tcp 198.51.100.20 443 ok
flow "control: unmanaged reaches 203.0.113.7:443 (abroad)" - tcp 203.0.113.7 443 ok
flow "control: unmanaged reaches [2001:db8:bad::7]:443 (abroad)" - tcp 2001:db8:bad::7 443 ok
flow "control: unmanaged sends to 203.0.113.7:514/udp (abroad)" - udp 203.0.113.7 514 ok
flow "control: unmanaged reaches 203.0.113.8:8443 (the CDN abroad)" - tcp 203.0.113.8 8443 ok

# ---- fail closed: home-only without a database ---------------------------------------------------
# A throwaway agent of its own on the same sandbox: it must refuse the policy, never enforce it
# without the home prefixes.
sandbox_agent_start >/dev/null 2>&1
tap_check "without --geo-db the agent refuses the home-only policy (it says why)" \
	bash -c "sleep 0.5; grep -q 'no country database was given' '$SANDBOX_DIR/agent.log'"
# No policy in force: the app's cgroup (below the guard) is refused everything.
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"
token="rs$$-noguard"
# shellcheck disable=SC2016 # expanded by the inner shell
res=$(sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
	"$SANDBOX_FLOWPROBE" tcp 198.51.100.20 443 --token "$token" 2>&1)
if [[ $(sandbox_judge "$res" "$token" tcp 443) == EPERM ]]; then
	tap_ok "without a database nothing opens: the app's 198.51.100.20:443 is refused"
else
	tap_not_ok "without a database nothing opens: the app's 198.51.100.20:443 is refused" "$res"
fi
sandbox_agent_stop >/dev/null 2>&1
"$CARWALL" unload --pin-dir "$SANDBOX_PIN_DIR" --run-dir "$SANDBOX_RUN_DIR" --force >/dev/null 2>&1

# ---- enforcement ---------------------------------------------------------------------------------
sandbox_agent_start --geo-db "$DB" || { tap_bail_out "the agent did not start"; exit 1; }
flow "a rule-allowed flow to the home region passes (TCP, IPv4)" mediaplayer tcp 198.51.100.20 443 ok
flow "the same rule to an address abroad is refused (TCP, IPv4)" mediaplayer tcp 203.0.113.7 443 EPERM
flow "a rule-allowed flow to the home region passes (TCP, IPv6)" mediaplayer tcp 2001:db8:51::20 443 ok
flow "the same rule to an address abroad is refused (TCP, IPv6)" mediaplayer tcp 2001:db8:bad::7 443 EPERM
flow "a rule-allowed datagram to the home region passes (UDP)" mediaplayer udp 198.51.100.20 514 ok
flow "the same rule's datagram abroad is refused at send (UDP)" mediaplayer udp 203.0.113.7 514 EPERM
flow "a connected UDP socket abroad is refused at connect" mediaplayer udp-connect 203.0.113.7 514 EPERM
flow "an IPv4-mapped address abroad is refused" mediaplayer tcp ::ffff:203.0.113.7 443 EPERM
flow "a cross-border rule reaches its address abroad" mediaplayer tcp 203.0.113.7 9000 ok
tap_check "the refusal is an event with the verdict deny-region" event mediaplayer 203.0.113.7 443 refused
tap_check "stats count the app's region refusals" bash -c "(( \$('$CARWALL' --run-dir '$SANDBOX_RUN_DIR' stats --json | python3 -c '
import json, sys
print([a for a in json.load(sys.stdin)[\"apps\"] if a.get(\"id\") == \"mediaplayer\"][0][\"region_refused_in_generation\"])') >= 5 ))"
tap_check "status names the home region and the database's sha256" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"sha256\": \"$(sha256sum "$DB" | cut -d' ' -f1)\"'"

# explain EXPECTED_EXIT DEST: offline explain with the database, as the kernel judged.
explain() {
	local res rc
	res=$("$CARWALL" explain --policy "$SANDBOX_POLICY" --app mediaplayer --geo-db "$DB" "$2" 2>&1)
	rc=$?
	((rc == $1)) && { ((rc != 3)) || [[ $res == *"home region only: "*"is not cross-border"* ]]; } &&
		return 0
	echo "rc $rc: $res"
	return 1
}
tap_check "explain --geo-db: 203.0.113.7:443/tcp refused, outside the home region" explain 3 203.0.113.7:443/tcp
tap_check "explain --geo-db: 198.51.100.20:443/tcp allowed" explain 0 198.51.100.20:443/tcp
tap_check "explain --geo-db: 203.0.113.7:9000/tcp allowed (cross-border)" explain 0 203.0.113.7:9000/tcp
tap_check "explain without --geo-db refuses to judge a home-only policy" \
	bash -c "! '$CARWALL' explain --policy '$SANDBOX_POLICY' --app mediaplayer 198.51.100.20:443/tcp"

# ---- host names: a CDN abroad ---------------------------------------------------------------------
query mediaplayer home.oem.example
flow "a name whose address is at home: connect passes" mediaplayer tcp 198.51.100.21 8443 ok
query mediaplayer cdn.oem.example
has_line() { grep -q -- "$1" <<<"$2"; }
tap_check "the app learns cdn.oem.example's address abroad" has_line '^addr 203.0.113.8$' "$QUERY"
flow "a name whose learned address is abroad is refused" mediaplayer tcp 203.0.113.8 8443 EPERM
tap_check "its event says deny-region" event mediaplayer 203.0.113.8 8443 refused

# ---- audit mode ------------------------------------------------------------------------------------
query navigation cdn.oem.example
flow "audit mode: the flow abroad goes out" navigation tcp 203.0.113.8 8443 ok
tap_check "audit mode: with an audit event, verdict deny-region" event navigation 203.0.113.8 8443 audit

# ---- no window while the home prefixes are rewritten ---------------------------------------------
# Reloads alternate database A and A2 (A with one more network: another file, the same home
# prefixes for these flows) while the app makes flows: each reload rewrites the inactive
# generation's home prefixes and flips. A flow at home passes every time, one abroad is refused
# every time: no decision ever sees a generation without its home prefixes.
"$top/tests/lib/make_geo_db.pl" "$rdir/a2.mmdb" 198.51.100.0/24=XA 2001:db8:51::/48=XA \
	203.0.113.0/24=XB 2001:db8:bad::/48=xb 192.0.2.128/25=xc ||
	{ tap_bail_out "cannot write database A2"; exit 1; }
(
	for ((k = 0; k < 20; k++)); do
		if ((k % 2)); then cp "$rdir/a.mmdb" "$DB.new"; else cp "$rdir/a2.mmdb" "$DB.new"; fi
		mv "$DB.new" "$DB"
		cw reload >/dev/null 2>&1 || echo "reload $k failed"
	done
	cp "$rdir/a.mmdb" "$DB.new" && mv "$DB.new" "$DB" && cw reload >/dev/null 2>&1
) >"$rdir/reloads.out" 2>&1 &
PIDS[reloads]=$!
home_runs=() abroad_runs=()
for ((k = 0; k < 10; k++)); do
	home_runs+=("$(sandbox_run_app mediaplayer "$SANDBOX_FLOWPROBE" tcp 198.51.100.20 443 \
		--repeat 20 --token "rw$$-$k" 2>&1 | grep '^repeat=')")
	abroad_runs+=("$(sandbox_run_app mediaplayer "$SANDBOX_FLOWPROBE" tcp 203.0.113.7 443 \
		--repeat 20 --token "rx$$-$k" 2>&1 | grep '^repeat=')")
done
procs_wait reloads
reloads_done() { ! grep -q . "$rdir/reloads.out" || { cat "$rdir/reloads.out"; return 1; }; }
tap_check "21 reloads alternating two databases all succeeded" reloads_done
all_runs() {
	local want=$1 r
	shift
	for r in "$@"; do
		[[ $r == "repeat=20 $want" ]] || { echo "got '$r'"; return 1; }
	done
}
tap_check "during the reloads, 200 flows at home all passed" all_runs "ok=20 denied=0 other=0" "${home_runs[@]}"
tap_check "during the reloads, 200 flows abroad were all refused" all_runs "ok=0 denied=20 other=0" "${abroad_runs[@]}"
tap_check "the server saw the flows at home and not one byte of the flows abroad" \
	bash -c "grep -q ' rw$$-' '$SANDBOX_SERVER_LOG' && ! grep -q ' rx$$-' '$SANDBOX_SERVER_LOG'"

# ---- reloads flip the home prefixes with the policy -----------------------------------------------
# A connection to 198.51.100.20 (at home in database A) held across the reload to database B.
sandbox_run_app mediaplayer "$SANDBOX_FLOWPROBE" hold 198.51.100.20 7443 --hold-ms 30000 \
	--timeout-ms 3000 --token "held$$" </dev/null >"$rdir/held.out" 2>&1 &
PIDS[held]=$!
# held_delivers N: the held client's Nth marker (SIGUSR1) reaches the server within 2 s.
held_delivers() {
	local pid i
	pid=$(sed -n 's/^established .*pid=\([0-9]*\).*/\1/p' "$rdir/held.out")
	[[ -n $pid ]] && kill -USR1 "$pid" 2>/dev/null || return 1
	for ((i = 0; i < 40; i++)); do
		awk -v t="held$$-marker$1" '$4 == t { f = 1 } END { exit !f }' "$rdir/hold-server.log" &&
			return 0
		sleep 0.05
	done
	return 1
}
for ((i = 0; i < 50; i++)); do
	grep -q '^established\|^result=' "$rdir/held.out" 2>/dev/null && break
	sleep 0.1
done
tap_check "control: a held connection to 198.51.100.20:7443 (at home) delivers" held_delivers 1
cp "$rdir/b.mmdb" "$DB.new" && mv "$DB.new" "$DB"
tap_check "reload with database B" cw reload
# cut: the held client's result line says the kernel destroyed its socket (bounded wait).
cut() {
	local i
	for ((i = 0; i < 30; i++)); do
		grep -q '^result=ECONNABORTED stage=send' "$rdir/held.out" && return 0
		sleep 0.1
	done
	cat "$rdir/held.out"
	return 1
}
tap_check "database B: the held connection to 198.51.100.20 (abroad now) is cut" cut
flow "database B: 203.0.113.7:443 is at home now and passes" mediaplayer tcp 203.0.113.7 443 ok
flow "database B: 198.51.100.20:443 is abroad now and is refused" mediaplayer tcp 198.51.100.20 443 EPERM
policy xb >"$SANDBOX_POLICY.new" && mv "$SANDBOX_POLICY.new" "$SANDBOX_POLICY"
tap_check "reload with home region xb (database B)" cw reload
flow "home xb on database B: 198.51.100.20:443 passes" mediaplayer tcp 198.51.100.20 443 ok
flow "home xb on database B: 203.0.113.7:443 is refused" mediaplayer tcp 203.0.113.7 443 EPERM
rm -f "$DB"
# reload_refused: `carwall reload` fails and says the database is missing.
reload_refused() {
	local res rc
	res=$(cw reload 2>&1)
	rc=$?
	((rc != 0)) && [[ $res == *"country database"* ]] && return 0
	echo "rc $rc: $res"
	return 1
}
tap_check "a reload without the database fails, with the reason" reload_refused
flow "the policy in force stays: 198.51.100.20:443 still passes" mediaplayer tcp 198.51.100.20 443 ok
flow "the policy in force stays: 203.0.113.7:443 still refused" mediaplayer tcp 203.0.113.7 443 EPERM

tap_done
