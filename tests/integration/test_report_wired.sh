#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `carwall report residency` wired to what the agent really keeps: the home region and the
# cross-border justifications of the policy in force (`home-region:` a `regions:` group,
# `cross-border:` on a rule), the allowed flows of the flow inventory (carwalld
# --flow-report-interval 1 --inventory-save-interval 1) with the counts `carwall flows` shows,
# refused flows from the events log, and the consent changes (`carwall consent set`) the agent
# writes into the events log's agent share, in the JSON report's timeline and the HTML page
# (rendered in headless Chromium, in the head-unit namespace: no network). Countries come from
# a test database built here: 198.51.100.0/24 is XA and 2001:db8:51::/48 XC (the home region
# "homeland" = XA + XC), 203.0.113.0/24 XB (abroad).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/report.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

if ! perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null; then
	tap_skip "the wired residency report" "libmaxmind-db-writer-perl is not installed (scripts/install-deps.sh)"
	tap_done
	exit
fi
sandbox_create "cw-rw$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
out_dir=$(report_out_dir test_report_wired)

db=$SANDBOX_DIR/countries.mmdb
tap_check "a test country database is built (XA, XC home; XB abroad)" perl "$top/tests/lib/make_geo_db.pl" \
	"$db" 198.51.100.0/24=XA 2001:db8:51::/48=XC 203.0.113.0/24=XB 2001:db8:bad::/48=XB

justification="crash reports to the vendor's collector (XB), consent switch crash-reports"
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
cat >"$policy" <<EOF
version: 1
home-region: homeland
regions:
  homeland: [xa, xc]
consent:
  purposes: [crash-reports, analytics]
  switches:
    - {name: crash-reports, purposes: [crash-reports], default: on, reset: persistent}
    - {name: analytics, purposes: [analytics], default: on, reset: persistent}
apps:
  mediaplayer:
    allow:
      - {to: [198.51.100.20, 2001:db8:51::20], ports: [443], proto: tcp, region: homeland}
      - to: 203.0.113.7
        ports: [9000]
        proto: tcp
        region: xb
        purpose: crash-reports
        cross-border: "$justification"
EOF
tap_check "the policy checks" "$CARWALL" policy check "$policy"

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
report() { "$CARWALL" report residency --state-dir "$SANDBOX_STATE_DIR" --geo-db "$db" "$@"; }
# rj EXPR: a Python expression over the JSON report r, flows (every app's), inv (the allowed
# records of `carwall flows --json`), secs(time) (to seconds since the epoch) and
# f(dst, verdict, port): the one flow to dst:port with
# that verdict (None when there is none or several); printed.
rj() {
	python3 - "$SANDBOX_DIR/report.json" "$SANDBOX_DIR/flows.json" "$1" <<'EOF'
import calendar, json, os, sys, time
load = lambda p: json.load(open(p)) if os.path.exists(p) else {"apps": []}
r = load(sys.argv[1])
inv = [x for a in load(sys.argv[2])["apps"] for d in a["domains"] for h in d["hosts"]
       for x in h["flows"] if x["verdict"] == "allowed"]
flows = [f for a in r["apps"] for f in a["flows"]]
secs = lambda t: calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S"))
def f(dst, verdict, port):
	m = [x for x in flows if x["dst"] == dst and x["verdict"] == verdict and x["port"] == port]
	return m[0] if len(m) == 1 else None
print(eval(sys.argv[3]))
EOF
}
is() { [[ $(rj "$1") == "$2" ]] || { tap_diag "$1: '$(rj "$1")', not '$2'"; return 1; }; }

# ---- control: without carwall the collector's and the tracker's ports are reached ------------
for port in 9000 443; do
	tok="ctl$$-$port"
	res=$(sandbox_in_hu "$FLOWPROBE" tcp 203.0.113.7 "$port" --token "$tok" 2>&1)
	tap_check "control, no carwall: TCP to 203.0.113.7 port $port (XB) arrives" \
		test "$(sandbox_judge "$res" "$tok" tcp "$port")" = ok
done

# ---- the agent: allowed flows (the inventory), refusals, consent switched ---------------------
t0=$(date -u +%Y-%m-%dT%H:%M:%S)
sandbox_agent_start --flow-report-interval 1 --inventory-save-interval 1 ||
	{ tap_bail_out "carwalld did not start"; exit 1; }
for i in 1 2; do
	tap_expect_exit "mediaplayer's TCP to its backend 198.51.100.20:443 (XA) is allowed ($i)" 0 \
		sandbox_app_flow mediaplayer tcp 198.51.100.20 443
done
tap_expect_exit "mediaplayer's TCP to its backend [2001:db8:51::20]:443 (XC) is allowed" 0 \
	sandbox_app_flow mediaplayer tcp 2001:db8:51::20 443
for i in 1 2 3; do
	tap_expect_exit "mediaplayer's crash reports to 203.0.113.7:9000 (XB, cross-border rule) go out ($i)" 0 \
		sandbox_app_flow mediaplayer tcp 203.0.113.7 9000
done
tap_expect_exit "mediaplayer's TCP to 203.0.113.7:443 (no rule) is refused, nothing arrives" 1 \
	sandbox_app_flow mediaplayer tcp 203.0.113.7 443
tap_check "consent set crash-reports off" cw consent set crash-reports off
tap_expect_exit "crash-reports off: the crash reports to 203.0.113.7:9000 are refused, nothing arrives" 1 \
	sandbox_app_flow mediaplayer tcp 203.0.113.7 9000
tap_check "consent set crash-reports on" cw consent set crash-reports on
tap_check "consent set analytics off" cw consent set analytics off

# The inventory saved with every allowed flow counted (every second; bounded: 10 s).
inventory_has_all() {
	local i
	for ((i = 0; i < 50; i++)); do
		"$CARWALL" flows --json --state-dir "$SANDBOX_STATE_DIR" >"$SANDBOX_DIR/flows.json" 2>/dev/null &&
			[[ $(rj 'sorted((x["address"], x["port"], x["count"]) for x in inv)') == \
				"[('198.51.100.20', 443, 2), ('2001:db8:51::20', 443, 1), ('203.0.113.7', 9000, 3)]" ]] &&
			return 0
		sleep 0.2
	done
	tap_diag "carwall flows: $(cat "$SANDBOX_DIR/flows.json" 2>/dev/null)"
	return 1
}
tap_check "the flow inventory holds the allowed flows with their counts (carwall flows)" inventory_has_all

# ---- the JSON report, from the running agent's state folder -----------------------------------
report_json() { report --json >"$SANDBOX_DIR/report.json"; }
tap_check "report residency --json" report_json
cp "$SANDBOX_DIR/report.json" "$SANDBOX_DIR/flows.json" "$out_dir/"
tap_check "home region: XA and XC, from the policy's group 'homeland'" is \
	'(r["home_region"]["countries"], r["home_region"]["source"])' \
	"(['XA', 'XC'], 'policy $policy (home-region: homeland)')"
tap_check "the allowed flows are the inventory's: app, address, port, proto, count, first, last, rule" is \
	'sorted((x["app"], x["dst"], x["port"], x["proto"], x["count"], secs(x["first"]), secs(x["last"]), x["rule_index"]) for x in flows if x["verdict"] == "allowed") == sorted(("mediaplayer", x["address"], x["port"], x["proto"], x["count"], x["first"], x["last"], x["rule"]) for x in inv) and len(inv) == 3' \
	"True"
tap_check "allowed flows recorded, nothing skipped" is \
	'(r["log"]["allowed_flows_recorded"], r["log"]["skipped"])' "(True, 0)"
tap_check "home or cross-border per country, from the policy's home region" is \
	'sorted(set((x["dst"], x["country"], x["region"]) for x in flows))' \
	"[('198.51.100.20', 'XA', 'home'), ('2001:db8:51::20', 'XC', 'home'), ('203.0.113.7', 'XB', 'cross-border')]"
tap_check "the cross-border allowed flow carries its rule's justification" is \
	'(f("203.0.113.7","allowed",9000)["count"], f("203.0.113.7","allowed",9000)["justification"])' \
	"(3, \"$justification\")"
tap_check "refused flows come from the events log, with no justification" is \
	'sorted((x["port"], x["count"], x["justification"]) for x in flows if x["verdict"] == "refused")' \
	"[(443, 1, None), (9000, 1, None)]"
tap_check "no flow counted twice: one flow per destination, port and verdict" is \
	'len(flows) == len(set((x["dst"], x["port"], x["verdict"]) for x in flows))' "True"
tap_check "mediaplayer's cross-border flows: 3 allowed, 2 refused" is \
	'[(a["cross_border"]["allowed"], a["cross_border"]["refused"]) for a in r["apps"] if a["app"] == "mediaplayer"]' \
	"[(3, 2)]"
tap_check "the cross-border list: the allowed flow with its justification" is \
	'[(x["dst"], x["port"], x["justification"]) for x in r["cross_border"] if x["verdict"] == "allowed"]' \
	"[('203.0.113.7', 9000, \"$justification\")]"
tap_check "timeline: the consent changes in order, after the agent's start" is \
	'([(c["switch"], c["state"]) for c in r["timeline"]["consent"]], all(c["time"][:19] >= "'"$t0"'" for c in r["timeline"]["consent"]))' \
	"([('crash-reports', 'off'), ('crash-reports', 'on'), ('analytics', 'off')], True)"

# ---- the policy: --home-region overrides it; a changed file is not taken for the one in force --
report_override() { report --json --home-region XB >"$SANDBOX_DIR/report.json"; }
tap_check "report with --home-region XB" report_override
tap_check "--home-region overrides the policy's: XB home, XA cross-border" is \
	'(r["home_region"]["source"], f("203.0.113.7","allowed",9000)["region"], f("198.51.100.20","allowed",443)["region"])' \
	"('--home-region', 'home', 'cross-border')"
tap_check "the agent stops" sandbox_agent_stop
cp "$policy" "$SANDBOX_DIR/policy.in-force.yaml"
sed -i 's/homeland: \[xa, xc\]/homeland: [xa]/' "$policy"
report_changed() { report --json >"$SANDBOX_DIR/report.json" 2>"$SANDBOX_DIR/report.err"; }
tap_check "report after the policy file changed" report_changed
tap_check "a changed policy file is not taken for the one in force: no home region, a warning" \
	bash -c "[[ \$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"home_region\"])' '$SANDBOX_DIR/report.json') == None ]] && grep -q 'changed since it went in force' '$SANDBOX_DIR/report.err'"
report_named() { report --json --policy "$SANDBOX_DIR/policy.in-force.yaml" >"$SANDBOX_DIR/report.json"; }
tap_check "report --policy FILE: the file named" report_named
tap_check "--policy FILE: its home region and justification" is \
	'(r["home_region"]["countries"], f("203.0.113.7","allowed",9000)["justification"])' \
	"(['XA', 'XC'], \"$justification\")"
tap_expect_exit "--policy with a file that is no policy is an error" 1 report --policy "$db"

# ---- the HTML page -------------------------------------------------------------------------
html=$out_dir/residency.html
report_html() { report --policy "$SANDBOX_DIR/policy.in-force.yaml" --html "$html" >/dev/null; }
tap_check "report residency --html FILE" report_html
report_check_inert "$html"
html_has() { grep -qF -- "$1" "$html" || { tap_diag "not in the page: $1"; return 1; }; }
tap_check "the page names the home region from the policy" html_has "(home-region: homeland)"
tap_check "the page shows the justification (escaped)" \
	html_has "crash reports to the vendor&#39;s collector (XB), consent switch crash-reports"
consent_rows() {
	local got
	got=$(grep -o '<td>[a-z-]*</td><td>o[nf]f*</td></tr>' "$html" | tr -d '\n')
	[[ $got == '<td>crash-reports</td><td>off</td></tr><td>crash-reports</td><td>on</td></tr><td>analytics</td><td>off</td></tr>' ]] ||
		{ tap_diag "consent rows: $got"; return 1; }
}
tap_check "the page lists the consent changes in order" consent_rows
tap_check "the page shows the allowed flows" html_has "<td>allowed</td>"

# The charts drawn: home (XA, XC) bars, a cross-border (XB) bar, a policy in force.
report_check_rendered "$html" "$out_dir/residency.png"

tap_done
