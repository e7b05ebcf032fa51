#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The agent's warning "N addresses from DNS answers were not learned since the policy was loaded"
# counts every address refused a place in the learned table since the policy was loaded (here:
# an app over its max-learned-per-app), a registration of app cgroups included: the registration
# writes the same policy into the other generation, whose DNS counters start at zero, and N
# must go on from the count before it, as the `dns` counters of `carwall stats` do. Another
# policy starts N from zero: the first address it refuses is warned of, however many the
# policy before had.
#
# Environment: CARWALL_BIN_DIR (default build/).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"
. "$top/tests/lib/dns.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
TOOL=$top/tests/integration/dns_tool.py

if ! command -v dnsmasq >/dev/null || ! command -v python3 >/dev/null; then
	tap_skip "the count of addresses not learned" "dnsmasq or python3 missing (scripts/install-deps.sh installs them)"
	tap_done
	exit
fi

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox
sandbox_create "cw-lr$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
out=$SANDBOX_DIR/refused
mkdir -p "$out"

# The navigation app may learn one address of its names; hvac's cgroup is the registration.
cat >"$SANDBOX_POLICY" <<'EOF'
version: 1
resolvers: [192.0.2.2]
dns: {min-ttl: 1, max-ttl: 3600, grace: 0, max-learned-per-app: 1}
apps:
  navigation:
    allow:
      - to: ["*.maps.oem.example"]
        ports: [443]
        proto: tcp
  hvac:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
EOF
for i in 1 2 3 4; do
	sandbox_in_net ip addr add "198.51.100.8$i/32" dev lo
done
dns_start "$out" a1.maps.oem.example --host-record=a1.maps.oem.example,198.51.100.81 \
	--host-record=a2.maps.oem.example,198.51.100.82 \
	--host-record=a3.maps.oem.example,198.51.100.83 \
	--host-record=a4.maps.oem.example,198.51.100.84 ||
	tap_diag "dnsmasq does not answer yet"

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }

# resolve NAME ADDR: navigation asks the resolver on its own socket and receives ADDR.
resolve() {
	sandbox_run_app navigation python3 "$TOOL" query --server 192.0.2.2 "$1" 2>&1 |
		grep -qx "addr $2"
}

# over_quota: navigation's DNS counter over_quota since the policy was loaded (carwall stats).
over_quota() {
	cw --json stats | python3 -c '
import json, sys
print([a for a in json.load(sys.stdin)["apps"] if a.get("id") == "navigation"][0]["dns"]["over_quota"])'
}

# warned N [LINE]: bounded (12 s: the agent sweeps every 5 s) until the agent's log, from its
# line LINE (default 1) on, has the warning with N.
warned() {
	local i
	for ((i = 0; i < 120; i++)); do
		tail -n "+${2:-1}" "$SANDBOX_DIR/agent.log" |
			grep -q "\(^\|[^0-9]\)$1 addresses from DNS answers were not learned since the policy was loaded" &&
			return 0
		sleep 0.1
	done
	return 1
}

expect_flow() {
	local got
	got=$(sandbox_app_flow navigation tcp "$2" 443)
	if [[ $got == "$3" ]]; then tap_ok "$1"; else tap_not_ok "$1" "got $got, want $3"; fi
}

# ---- control, no enforcement ---------------------------------------------------------------------
control_dns() {
	sandbox_in_hu python3 "$TOOL" query --server 192.0.2.2 a2.maps.oem.example |
		grep -qx "addr 198.51.100.82"
}
tap_check "control: the resolver answers a2.maps.oem.example to an unmanaged process" control_dns
ctl_out=$(sandbox_in_hu "$FLOWPROBE" tcp 198.51.100.82 443 --token "ctl$$" 2>&1)
tap_expect_exit "control: an unmanaged process reaches 198.51.100.82:443" 0 \
	sandbox_judge "$ctl_out" "ctl$$" tcp 443

sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }

# ---- before the registration: one address learned, two refused (over the quota) --------------
tap_check "navigation resolves a1.maps.oem.example (learned: its one address)" \
	resolve a1.maps.oem.example 198.51.100.81
expect_flow "a1's learned address is allowed" 198.51.100.81 ok
tap_check "navigation resolves a2.maps.oem.example (over its quota)" \
	resolve a2.maps.oem.example 198.51.100.82
tap_check "navigation resolves a3.maps.oem.example (over its quota)" \
	resolve a3.maps.oem.example 198.51.100.83
expect_flow "a2's address, not learned, is refused" 198.51.100.82 EPERM
tap_expect_exit "stats: 2 addresses over the quota since load" 0 test "$(over_quota)" == 2
tap_check "the agent warns: 2 addresses not learned since the policy was loaded" warned 2

# ---- a registration (the same policy into the other generation), then one more refused --------
generation() { cw --json stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation"])'; }
gen0=$(generation)
tap_check "registration: hvac's cgroup is made and registered" \
	sandbox_run_app hvac "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" app wait-managed --timeout 10
tap_expect_exit "registration: the policy was written into the other generation" 0 \
	test "$gen0" != "$(generation)"
tap_check "navigation resolves a4.maps.oem.example (over its quota)" \
	resolve a4.maps.oem.example 198.51.100.84
expect_flow "a4's address, not learned, is refused" 198.51.100.84 EPERM
tap_expect_exit "stats: 3 addresses over the quota since load" 0 test "$(over_quota)" == 3
tap_check "the agent warns: 3 addresses not learned since the policy was loaded (2 before the registration)" \
	warned 3

# ---- another policy: its count starts from zero, and the first address it refuses is warned of -
lines=$(wc -l <"$SANDBOX_DIR/agent.log")
echo "# another policy: the same rules, another file" >>"$SANDBOX_POLICY"
tap_check "a reload with another policy" cw reload
tap_expect_exit "another policy: stats counts from zero" 0 test "$(over_quota)" == 0
tap_check "navigation resolves a2.maps.oem.example again (still over its quota)" \
	resolve a2.maps.oem.example 198.51.100.82
tap_expect_exit "another policy: stats counts 1 address over the quota" 0 test "$(over_quota)" == 1
tap_check "the agent warns: 1 address not learned since the new policy was loaded" \
	warned 1 "$((lines + 1))"
tap_check "the agent stops cleanly" sandbox_agent_stop
tap_done
