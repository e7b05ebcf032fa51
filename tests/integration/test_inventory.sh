#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The flow inventory and learn mode end to end (issue 15), the seed story: the media player runs
# in audit mode (learn mode) with the names its integrator knows; it resolves them through a real
# dnsmasq and talks to them, to a backend by address, and once to an offshore bug tracker. Then:
# the inventory names and counts each flow (allowed flows too, reported by the kernel once per
# destination and period, counted exactly); it survives an agent restart and a simulated reboot
# (pins removed, a new boot id: boots counted); `carwall policy suggest` proposes a policy that
# `carwall policy check` accepts, that folds the two hosts into a wildcard and lists the tracker
# (seen once) apart; `carwall policy replay` says that policy refuses the tracker's flow and no
# other; the kernel agrees once it is loaded (the observed flows pass; the tracker is EPERM with
# nothing at the server); a flood of destinations does not grow the store past its bound.
#
# Environment: CARWALL_BIN_DIR (default build/).
# shellcheck disable=SC2016 # the sh -c scripts expand their own arguments
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"
. "$top/tests/lib/dns.sh"
. "$top/tests/lib/flows.sh"
. "$top/tests/lib/inventory.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
TOOL=$top/tests/integration/dns_tool.py

if ! command -v dnsmasq >/dev/null || ! command -v python3 >/dev/null; then
	tap_skip "the flow inventory" "dnsmasq or python3 missing (scripts/install-deps.sh installs them)"
	tap_done
	exit
fi

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox
sandbox_create "cw-iv$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
out=$SANDBOX_DIR/inventory
mkdir -p "$out"

# Learn mode: audit mode, with the names the integrator knows (so that the kernel learns them).
cat >"$SANDBOX_POLICY" <<'EOF'
version: 1
resolvers: [192.0.2.2]
dns: {min-ttl: 60, max-ttl: 3600, grace: 0, max-learned-per-app: 64}
apps:
  mediaplayer:
    audit: true
    allow:
      - to: [api.music.example, img.music.example]
        ports: [443]
        proto: tcp
EOF

API=198.51.100.81 IMG=198.51.100.82 BACKEND=198.51.100.20 TRACKER=203.0.113.7
for a in $API $IMG; do
	sandbox_in_net ip addr add "$a/32" dev lo
done
dns_start "$out" api.music.example \
	--host-record=api.music.example,$API --host-record=img.music.example,$IMG ||
	tap_diag "dnsmasq does not answer yet"

echo "11111111-1111-1111-1111-111111111111" >"$SANDBOX_DIR/boot_id"
AGENT_ARGS=(--flow-report-interval 1 --inventory-save-interval 1 --boot-id-file "$SANDBOX_DIR/boot_id")
INVENTORY=$SANDBOX_STATE_DIR/inventory.json

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }
flows() { "$CARWALL" flows --state-dir "$SANDBOX_STATE_DIR" "$@"; }

query() { sandbox_run_app "$1" python3 "$TOOL" query --server 192.0.2.2 "$2" >/dev/null 2>&1; }

# ---- control: without enforcement every flow works ------------------------------------------
control_dns() { sandbox_in_hu python3 "$TOOL" query --server 192.0.2.2 api.music.example | grep -qx "addr $API"; }
tap_check "control: dnsmasq answers api.music.example to an unmanaged process" control_dns
expect_flow "control: an unmanaged process reaches the tracker 203.0.113.7:443" - $TRACKER 443 ok
expect_flow "control: an unmanaged process reaches api.music.example's 198.51.100.81:443" - $API 443 ok

sandbox_agent_start "${AGENT_ARGS[@]}" || { tap_bail_out "the agent did not start"; exit 1; }

# ---- learn mode: the app's flows ---------------------------------------------------------------
query mediaplayer api.music.example
query mediaplayer img.music.example
expect_flow "learn mode: api.music.example:443 goes out (allowed by its name)" mediaplayer $API 443 ok
flow_quiet mediaplayer $API 443
flow_quiet mediaplayer $API 443
expect_flow "learn mode: img.music.example:443 goes out" mediaplayer $IMG 443 ok
flow_quiet mediaplayer $IMG 443
FLOW_MODE=udp expect_flow "learn mode: the backend 198.51.100.20:9000/udp goes out (audited)" \
	mediaplayer $BACKEND 9000 ok
FLOW_MODE=udp flow_quiet mediaplayer $BACKEND 9000
expect_flow "learn mode: the bug tracker 203.0.113.7:443 goes out once (audited)" mediaplayer \
	$TRACKER 443 ok

# A flow past the report period: the kernel reports the key again, with the flows since its last
# report (the second and third connection above, and this one).
sleep 1.2
flow_quiet mediaplayer $API 443

tap_check "inventory: api.music.example's 4 connections are counted, allowed, by name" \
	wait_field 4 mediaplayer $API 443 tcp allowed count
tap_check "inventory: img.music.example's 2 connections (within one report period)" \
	wait_field 2 mediaplayer $IMG 443 tcp allowed count
# One snapshot of the saved inventory for the checks that follow.
SNAP=$out/snapshot.json
flows --json >"$SNAP"
tap_check "inventory: the allowed flow names its host" \
	wait_field api.music.example mediaplayer $API 443 tcp allowed host
tap_check "inventory: the allowed flow names its rule" \
	wait_field 0 mediaplayer $API 443 tcp allowed rule
tap_check "inventory: the backend's 2 audited datagrams, no name known" \
	wait_field 2 mediaplayer $BACKEND 9000 udp audited count
tap_check "inventory: the bug tracker seen once, audited" \
	wait_field 1 mediaplayer $TRACKER 443 tcp audited count
tap_check "inventory: the DNS flows to the trusted resolver are recorded" \
	sh -c '[ "$1" != - ]' _ "$(inv_field mediaplayer 192.0.2.2 53 udp allowed count)"
tap_check "inventory: one boot so far" wait_field 1 mediaplayer $API 443 tcp allowed boots
SNAP=

grouped() {
	flows --json | python3 -c '
import json, sys
apps = json.load(sys.stdin)["apps"]
assert [a["app"] for a in apps] == ["mediaplayer"], apps
doms = {d["domain"]: sorted(h["host"] for h in d["hosts"]) for d in apps[0]["domains"]}
assert doms.get("music.example") == ["api.music.example", "img.music.example"], doms
assert None in doms, doms'
}
tap_check "flows: grouped app -> registrable domain -> host" grouped
tap_check "flows: the text table shows the domain, host and address:port" \
	sh -c 'out=$("$@"); printf "%s\n" "$out" | grep -q "^  music.example$" &&
		printf "%s\n" "$out" | grep -q "^    api.music.example$" &&
		printf "%s\n" "$out" | grep -q "203.0.113.7:443/tcp  *audited"' _ \
	"$CARWALL" flows --state-dir "$SANDBOX_STATE_DIR"
only_audited() {
	flows --verdict audited --json | python3 -c '
import json, sys
o = json.load(sys.stdin)
v = {f["verdict"] for a in o["apps"] for d in a["domains"] for h in d["hosts"] for f in h["flows"]}
assert v == {"audited"} and o["records"] == 2, o'
}
tap_check "flows --verdict audited: only the audited flows" only_audited
tap_check "flows --app of another app: nothing" \
	sh -c '"$@" | grep -q "^no flows recorded that match$"' _ \
	"$CARWALL" flows --state-dir "$SANDBOX_STATE_DIR" --app navigation
tap_expect_exit "flows --since with a bad duration is a usage error" 2 \
	"$CARWALL" flows --state-dir "$SANDBOX_STATE_DIR" --since 5x

# ---- persistence: agent restart, simulated reboot ----------------------------------------------
tap_check "the agent stops cleanly (exit 0: nothing leaked, the inventory saved)" sandbox_agent_stop
tap_check "the stopped agent left its inventory file, mode 0600" \
	sh -c '[ "$(stat -c %a "$1")" = 600 ]' _ "$INVENTORY"
sandbox_agent_start "${AGENT_ARGS[@]}" || { tap_bail_out "the agent did not restart"; exit 1; }
tap_check "after an agent restart the records are there" \
	wait_field 4 mediaplayer $API 443 tcp allowed count

sandbox_agent_stop
cw unload >/dev/null 2>&1
tap_check "simulated reboot: the pins are gone" sh -c '! [ -e "$1" ]' _ "$SANDBOX_PIN_DIR"
echo "22222222-2222-2222-2222-222222222222" >"$SANDBOX_DIR/boot_id"
sandbox_agent_start "${AGENT_ARGS[@]}" || { tap_bail_out "the agent did not start after the reboot"; exit 1; }
query mediaplayer api.music.example
flow_quiet mediaplayer $API 443
tap_check "after a reboot the records are there and a new flow adds to them" \
	wait_field 5 mediaplayer $API 443 tcp allowed count
tap_check "after a reboot the flow's boots are 2" wait_field 2 mediaplayer $API 443 tcp allowed boots
tap_check "after a reboot a flow not seen again keeps 1 boot" \
	wait_field 1 mediaplayer $IMG 443 tcp allowed boots

# ---- suggest, check, replay ----------------------------------------------------------------------
SUGGESTED=$out/suggested.yaml
tap_check "policy suggest writes a policy" \
	sh -c '"$@" >"$0"' "$SUGGESTED" "$CARWALL" policy suggest --app mediaplayer \
	--state-dir "$SANDBOX_STATE_DIR"
tap_diag "$(cat "$SUGGESTED")"
tap_check "policy check accepts the suggestion" "$CARWALL" policy check "$SUGGESTED"
suggestion_is() {
	python3 - "$SUGGESTED" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
rules = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
body = "\n".join(rules)
assert 'resolvers: ["192.0.2.2"]' in body, "resolvers"
assert '- to: ["*.music.example"]\n        ports: [443]\n        proto: tcp' in body, "wildcard rule"
assert '- to: ["198.51.100.20"]\n        ports: [9000]\n        proto: udp' in body, "backend rule"
assert "203.0.113.7" not in body, "the tracker is in a rule"
assert "any" not in body, "any"
assert body.count("- to:") == 2, "two rules"
assert re.search(r"^#   203\.0\.113\.7:443/tcp: 1 flows", text, re.M), "the tracker listed apart"
assert re.search(r"# 7 flows, first .*, last .*, 2 boots\n      - to: \[\"\*\.music\.example\"\]", text), "evidence"
EOF
}
tap_check "the suggestion: a wildcard for the two hosts, the backend's address, the tracker apart" \
	suggestion_is
tap_expect_exit "replay: the suggestion refuses a recorded flow (exit 3)" 3 \
	"$CARWALL" policy replay --policy "$SUGGESTED" --state-dir "$SANDBOX_STATE_DIR"
replay_refuses_only_tracker() {
	"$CARWALL" policy replay --policy "$SUGGESTED" --state-dir "$SANDBOX_STATE_DIR" --json |
		python3 -c '
import json, sys
o = json.load(sys.stdin)
refused = [(f["address"], f["port"], f["proto"]) for f in o["apps"]["mediaplayer"]["refused"]]
assert refused == [("203.0.113.7", 443, "tcp")], refused
assert o["refused"] == 1 and o["allowed"] >= 4, o'
}
tap_check "replay: the suggestion refuses the tracker's flow and no other" replay_refuses_only_tracker
tap_expect_exit "replay: the learn policy (audit) refuses the backend and tracker flows" 3 \
	"$CARWALL" policy replay --policy "$SANDBOX_POLICY" --state-dir "$SANDBOX_STATE_DIR"

# ---- the kernel agrees: load the suggestion --------------------------------------------------
cp "$SUGGESTED" "$SANDBOX_POLICY"
tap_check "the suggestion loads" cw reload
query mediaplayer api.music.example
query mediaplayer img.music.example
expect_flow "enforced: api.music.example:443 is allowed" mediaplayer $API 443 ok
INV_HOST="*.music.example" tap_check \
	"inventory: under the suggestion the flow is recorded by the wildcard it was learned for" \
	wait_field 1 mediaplayer $API 443 tcp allowed count
expect_flow "enforced: img.music.example:443 is allowed" mediaplayer $IMG 443 ok
FLOW_MODE=udp expect_flow "enforced: the backend 198.51.100.20:9000/udp is allowed" mediaplayer \
	$BACKEND 9000 ok
expect_flow "enforced: the bug tracker is EPERM, nothing at the server" mediaplayer $TRACKER 443 EPERM
tap_check "inventory: the tracker's refusal is recorded as refused" \
	wait_field 1 mediaplayer $TRACKER 443 tcp refused count
# UDP: a run of datagrams of one socket to one destination is one flow (the kernel does not count
# each datagram again: the socket's verdict cache says it is a repeat).
tap_check "inventory: the allowed UDP flow counted once" \
	wait_field 1 mediaplayer $BACKEND 9000 udp allowed count
sandbox_run_app mediaplayer python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    s.sendto(b"x", ("198.51.100.20", 9000))' >/dev/null 2>&1
tap_check "inventory: 5 datagrams of one new socket to the backend are one more flow" \
	wait_field 2 mediaplayer $BACKEND 9000 udp allowed count

# ---- bounds: a flood of destinations ---------------------------------------------------------
sandbox_agent_stop
sandbox_agent_start "${AGENT_ARGS[@]}" --inventory-max-records 16 ||
	{ tap_bail_out "the agent did not start with a small inventory"; exit 1; }
sandbox_run_app mediaplayer python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for port in range(20000, 20300):
    try:
        s.sendto(b"x", ("198.51.100.20", port))
    except PermissionError:
        pass' >/dev/null 2>&1
bounded() {
	local i n size
	for ((i = 0; i < 30; i++)); do
		n=$(flows --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
		ev=$(cw stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"]["inventory"]["evicted"])')
		((ev > 0)) && break
		sleep 0.1
	done
	sleep 1.5 # one more save of what came last
	n=$(flows --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
	size=$(stat -c %s "$INVENTORY")
	echo "records $n, evicted $ev, file $size bytes"
	((n <= 16 && ev >= 300 - 16 && size <= 256 + 16 * 768))
}
tap_check "a flood of 300 refused destinations leaves at most 16 records (the bound)" bounded
INV_HOST=api.music.example tap_check \
	"the flood aged out one-time refusals first: the repeated allowed flow stays" \
	wait_field 5 mediaplayer $API 443 tcp allowed count
tap_check "the agent with the small inventory stops cleanly" sandbox_agent_stop

tap_done
