#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `carwall report residency` on what the real agent logged, in production mode (signed
# bundles): flows allowed, refused and (audit mode) gone out over TCP and UDP, IPv4 and IPv6, a
# reload to a newer bundle, a stop and a start of the agent, and events dropped by the kernel's
# rate limit; countries from a test database built here
# (documentation ranges mapped to made-up countries: 198.51.100.0/24 and 2001:db8:51::/48 are
# XA, the home region; 203.0.113.0/24 and 2001:db8:bad::/48 are XB). The JSON report is checked
# field by field against what the test did; the HTML page is checked for scripts and links
# and rendered in headless Chromium (in the sandbox's head-unit namespace: no network), its
# screenshot kept in the test's output folder and checked to be a drawn page of the expected
# size with the charts' colours.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/report.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

if ! perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null; then
	tap_skip "the residency report" "libmaxmind-db-writer-perl is not installed (scripts/install-deps.sh)"
	tap_done
	exit
fi
sandbox_create "cw-rr$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
out_dir=$(report_out_dir test_report_residency)

db=$SANDBOX_DIR/countries.mmdb
tap_check "a test country database is built" perl "$top/tests/lib/make_geo_db.pl" "$db"

keys=$SANDBOX_DIR/keys trust=$SANDBOX_DIR/trust
if ! { mkdir -p "$keys" "$trust" && chmod 0755 "$trust" &&
	"$CARWALL" bundle keygen --out "$keys/oem" >/dev/null &&
	cp "$keys/oem.pub" "$trust/oem.pem" && chmod 0644 "$trust/oem.pem"; }; then
	tap_bail_out "cannot make the test keys"
	exit 1
fi
SANDBOX_DEVELOPER_MODE=0
agent_args=(--trust-dir "$trust" --target hu-test --bundle-id test.residency)
policy=$SANDBOX_DIR/policy.bundle
SANDBOX_POLICY=$policy
# residency_bundle VERSION EXTRA_PORT: a signed bundle; mediaplayer reaches its backend (XA);
# navigation, in audit mode, may reach its maps server and reports everything else, which
# goes out.
residency_bundle() {
	cat >"$SANDBOX_DIR/payload" <<EOF
bundle:
  id: test.residency
  version: $1
  target: hu-test
  not-before: 2020-01-01T00:00:00Z
  not-after: 2099-01-01T00:00:00Z
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20, 2001:db8:51::20]
        ports: [443, $2]
        proto: tcp
  navigation:
    audit: true
    allow:
      - to: [198.51.100.80]
        ports: [8443]
        proto: tcp
EOF
	"$CARWALL" bundle sign --key "$keys/oem.key" "$SANDBOX_DIR/payload" -o "$SANDBOX_DIR/p.tmp" \
		>/dev/null && mv "$SANDBOX_DIR/p.tmp" "$policy"
}
residency_bundle 1 8443 || { tap_bail_out "cannot sign the policy"; exit 1; }
sha1=$(sha256sum "$policy" | cut -d' ' -f1)

report() { "$CARWALL" report residency --state-dir "$SANDBOX_STATE_DIR" --geo-db "$db" --home-region XA "$@"; }
# rj EXPR: a Python expression over the JSON report r (and f(dst, verdict, port): the one flow
# to dst:port with that verdict, None when there is none or several), printed.
rj() {
	python3 - "$SANDBOX_DIR/report.json" "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
flows = [f for a in r["apps"] for f in a["flows"]]
def f(dst, verdict, port):
	m = [x for x in flows if x["dst"] == dst and x["verdict"] == verdict and x["port"] == port]
	return m[0] if len(m) == 1 else None
print(eval(sys.argv[2]))
EOF
}
is() { [[ $(rj "$1") == "$2" ]] || { echo "$1: '$(rj "$1")', not '$2'"; return 1; }; }

# ---- control: without carwall the tracker (XB) is reached -------------------------------------
for f in "tcp|203.0.113.7|443" "udp|2001:db8:bad::7|514"; do
	IFS='|' read -r mode addr port <<<"$f"
	tok="ctl$$-$mode-$port"
	res=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$tok" 2>&1)
	tap_check "control, no carwall: $mode to $addr port $port reaches the tracker" \
		test "$(sandbox_judge "$res" "$tok" "$mode" "$port")" = ok
done

# ---- the agent's first run: flows, a reload ---------------------------------------------------
t_start1=$(date -u +%s)
sandbox_agent_start "${agent_args[@]}" || { tap_bail_out "carwalld did not start"; exit 1; }
tap_expect_exit "mediaplayer's TCP to its backend (XA) is allowed" 0 \
	sandbox_app_flow mediaplayer tcp 198.51.100.20 443
tap_expect_exit "mediaplayer's TCP to the tracker (XB) is refused, nothing arrives" 1 \
	sandbox_app_flow mediaplayer tcp 203.0.113.7 443
tap_expect_exit "mediaplayer's UDP to the tracker over IPv6 (XB) is refused, nothing arrives" 1 \
	sandbox_app_flow mediaplayer udp 2001:db8:bad::7 514
tap_expect_exit "navigation (audit mode): TCP to the tracker (XB) goes out" 0 \
	sandbox_app_flow navigation tcp 203.0.113.7 443

residency_bundle 2 9000 || { tap_bail_out "cannot sign the policy"; exit 1; }
sha2=$(sha256sum "$policy" | cut -d' ' -f1)
tap_check "reload: version 2 of the bundle goes in force" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload
tap_expect_exit "after the reload: mediaplayer's UDP to the tracker (XB) is refused" 1 \
	sandbox_app_flow mediaplayer udp 203.0.113.7 514

# ---- a stop, a start with a rate limit of one event a second, events dropped ------------------
tap_check "the agent stops" sandbox_agent_stop
sleep 1.1 # the gap, at least a second
t_start2=$(date -u +%s.%N)
sandbox_agent_start "${agent_args[@]}" --event-rate 1 || { tap_bail_out "carwalld did not start again"; exit 1; }
# Five refusals within a second: one event, the rest dropped by the kernel's rate limit.
burst() {
	local i
	for i in 1 2 3 4 5; do
		sandbox_run_app mediaplayer "$SANDBOX_FLOWPROBE" tcp 198.51.100.20 80 --token "b$i" \
			>/dev/null 2>&1
	done
}
burst
dropped=$("$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --json stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(a["since_start"]["events_dropped"] for a in s["apps"] if a["id"] == "mediaplayer"))')
tap_check "the kernel dropped events of mediaplayer (rate limit 1/s): $dropped" test "$dropped" -ge 1
tap_check "the agent stops again" sandbox_agent_stop
t_stop2=$(date -u +%s.%N)

tap_check "carwall events shows flow records only, no lifecycle record" bash -c \
	"'$CARWALL' events --json --state-dir '$SANDBOX_STATE_DIR' | grep -v '\"event\":\"refused\"' | grep -v '\"event\":\"audit\"' | wc -l | grep -qx 0"

# ---- the JSON report, field by field --------------------------------------------------------
report_json() { report --json >"$SANDBOX_DIR/report.json"; }
tap_check "report residency --json" report_json
cp "$SANDBOX_DIR/report.json" "$out_dir/report.json"
tap_check "database: the test database, its type, build date and sha256" is \
	'(r["database"]["type"], r["database"]["sha256"], r["database"]["build"] is not None)' \
	"('carwall-test-country', '$(sha256sum "$db" | cut -d' ' -f1)', True)"
tap_check "home region XA, from --home-region" is 'r["home_region"]' \
	"{'countries': ['XA'], 'source': '--home-region'}"
tap_check "mediaplayer's refused TCP to 203.0.113.7:443: XB, cross-border, once, default deny" is \
	'[f("203.0.113.7","refused",443)[k] for k in ("app","port","proto","country","region","count","rule")]' \
	"['mediaplayer', 443, 'tcp', 'XB', 'cross-border', 1, 'default deny']"
tap_check "mediaplayer's refused UDP to 2001:db8:bad::7:514: XB, cross-border" is \
	'[f("2001:db8:bad::7","refused",514)[k] for k in ("app","port","proto","country","region")]' \
	"['mediaplayer', 514, 'udp', 'XB', 'cross-border']"
tap_check "navigation's audited TCP to 203.0.113.7:443 (went out): XB, cross-border" is \
	'[f("203.0.113.7","audit",443)[k] for k in ("app","port","proto","country","region")]' \
	"['navigation', 443, 'tcp', 'XB', 'cross-border']"
tap_check "mediaplayer's refused UDP to 203.0.113.7:514 after the reload" is \
	'[x["count"] for x in flows if x["dst"] == "203.0.113.7" and x["port"] == 514]' "[1]"
# Allowed flows are in the log once the flow inventory records them; until then, none.
tap_check "the allowed flow to 198.51.100.20:443 is home (XA) if allowed flows are recorded" is \
	'(f("198.51.100.20","allowed",443) or {}).get("region") if r["log"]["allowed_flows_recorded"] else "home"' \
	"home"
tap_check "per app: mediaplayer's cross-border refused count is its flows' to XB" is \
	'[a["cross_border"]["refused"] >= 3 and a["cross_border"]["allowed"] == 0 for a in r["apps"] if a["app"] == "mediaplayer"]' \
	"[True]"
tap_check "per app: mediaplayer's flows by country: XB refused" is \
	'[c["refused"] >= 3 for a in r["apps"] if a["app"] == "mediaplayer" for c in a["by_country"] if c["country"] == "XB"]' \
	"[True]"
tap_check "cross-border list: every flow to XB, none to XA, no justification declared" is \
	'sorted(set((x["country"], x["region"], x.get("justification")) for x in r["cross_border"]))' \
	"[('XB', 'cross-border', None)]"
# The reload is the agent's own (it watches the file) or `carwall reload`'s, whichever comes
# first; the other finds the policy unchanged and records nothing.
tap_check "timeline: bundles in force in order: version 1, version 2 reloaded, version 2 after the restart" is \
	'[(p["state"], p["sha256"], p["why"] if p["why"] != "the file changed" else "carwall reload", p["signed"], p["bundle_id"], p["bundle_version"], p["path"]) for p in r["timeline"]["policies"]]' \
	"[('in-force', '$sha1', 'start', True, 'test.residency', 1, '$policy'), ('in-force', '$sha2', 'carwall reload', True, 'test.residency', 2, '$policy'), ('in-force', '$sha2', 'start', True, 'test.residency', 2, '$policy')]"
tap_check "timeline: each policy ends where the next begins" is \
	'all(a["to"] == b["from"] for a, b in zip(r["timeline"]["policies"], r["timeline"]["policies"][1:]))' \
	"True"
# (to the second: allowed flows are the inventory's, whose times are whole seconds)
tap_check "timeline: the first policy is in force from the agent's start, before every flow" is \
	'r["timeline"]["policies"][0]["from"][:19] <= min(x["first"][:19] for x in flows) and r["timeline"]["policies"][0]["from"][:19] >= "'"$(date -u -d @"$t_start1" +%Y-%m-%dT%H:%M:%S)"'"' \
	"True"
tap_check "agent not running: the stop until the second start (clean), and since the last stop" is \
	'[(g["clean"], g["from"] < g["to"]) for g in r["timeline"]["agent_down"]]' \
	"[(True, True), (True, True)]"
tap_check "agent not running: the first gap ends at the second start" is \
	'r["timeline"]["agent_down"][0]["to"][:19] >= "'"$(date -u -d @"${t_start2%.*}" +%Y-%m-%dT%H:%M:%S)"'" and r["timeline"]["agent_down"][1]["from"][:19] <= "'"$(date -u -d @"${t_stop2%.*}" +%Y-%m-%dT%H:%M:%S)"'"' \
	"True"
tap_check "events dropped: mediaplayer's, as many as the kernel counted ($dropped)" is \
	'sum(d["count"] for d in r["timeline"]["events_dropped"] if d["app"] == "mediaplayer")' "$dropped"
tap_check "consent: none recorded" is 'r["timeline"]["consent"]' "[]"
tap_check "the log: nothing skipped, lifecycle recorded" is \
	'(r["log"]["skipped"], r["log"]["lifecycle_recorded"], r["log"]["files_unreadable"])' "(0, True, 0)"

# ---- a database in ip-location-db's layout (country_code) gives the same countries -----------
flat=$SANDBOX_DIR/ip-location-db.mmdb
report_flat() {
	perl "$top/tests/lib/make_geo_db.pl" --ip-location-db "$flat" &&
		"$CARWALL" report residency --state-dir "$SANDBOX_STATE_DIR" --geo-db "$flat" \
			--home-region XA --json >"$SANDBOX_DIR/report.json"
}
tap_check "report with a database in ip-location-db's layout" report_flat
tap_check "ip-location-db's layout: the same countries, its type" is \
	'(r["database"]["type"], sorted(set((x["dst"], x["country"]) for x in flows)))' \
	"('carwall-test-ip-location-db', [('198.51.100.20', 'XA'), ('2001:db8:bad::7', 'XB'), ('203.0.113.7', 'XB')])"

# ---- --since: a window after every flow leaves the flows out --------------------------------
sleep 1.5
report_since() { report --json --since 1s >"$SANDBOX_DIR/report.json"; }
tap_check "--since 1s, long after the flows: report" report_since
tap_check "--since 1s: no flow, the timeline stays" is \
	'(r["apps"], len(r["timeline"]["policies"]), r["since"] is not None)' "([], 3, True)"
tap_expect_exit "--since with a bad duration is a usage error" 2 report --since 5x

# ---- the HTML page -------------------------------------------------------------------------
html=$out_dir/residency.html
report_html() { report --html "$html" >/dev/null; }
tap_check "report residency --html FILE" report_html
report_check_inert "$html"
tap_check "the page forbids every source but its inline style" grep -q "default-src 'none'; style-src 'unsafe-inline'" "$html"
tap_check "the page shows the cross-border flows, the bundles' hashes and id, the database hash" bash -c \
	"grep -q 'Cross-border flows' '$html' && grep -q '$sha1' '$html' && grep -q '$sha2' '$html' && grep -q '<td>test.residency</td><td>2</td>' '$html' && grep -q '$(sha256sum "$db" | cut -d' ' -f1)' '$html'"

# The charts drawn: a home (XA) bar, a cross-border (XB) bar, a policy in force.
report_check_rendered "$html" "$out_dir/residency.png"

tap_done
