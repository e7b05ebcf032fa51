#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A policy that parses but does not fit the maps: more IPv4 prefixes, IPv6 prefixes or port
# entries than one generation of the BPF maps holds (bpf/carwall.h), each also allowing the
# tracker. Under the running agent it is refused with the reason, the last good policy stays in
# force whole (the tracker it alone would allow stays refused), and a good policy loads after
# it. At start, with only such a policy, the agent fails closed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

sandbox_create "cw-m$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }

# good PORT: mediaplayer may reach the OEM backend on TCP PORT.
good() {
	printf 'version: 1\napps:\n  mediaplayer:\n    allow:\n      - to: [198.51.100.20]\n'
	printf '        ports: [%s]\n        proto: tcp\n' "$1"
}
# The oversized ones: the tracker first, then more than a generation holds.
head_allowing_tracker() {
	printf 'version: 1\napps:\n  mediaplayer:\n    allow:\n'
	printf '      - to: [203.0.113.7]\n        ports: [443]\n        proto: tcp\n'
}
too_many_dst4() { # 135000 IPv4 addresses in 3 sets (131072 per generation)
	awk 'BEGIN {
		print "version: 1"; print "sets:"
		for (s = 0; s < 3; s++) {
			printf "  s%d: [", s
			for (i = 0; i < 45000; i++) {
				n = s * 45000 + i
				printf "%s10.%d.%d.%d", (i ? ", " : ""), int(n / 65536), int(n / 256) % 256, n % 256
			}
			print "]"
		}
		print "apps:"; print "  mediaplayer:"; print "    allow:"
		print "      - to: [203.0.113.7]\n        ports: [443]\n        proto: tcp"
		for (s = 0; s < 3; s++) printf "      - to: s%d\n        ports: [443]\n        proto: tcp\n", s
	}'
}
too_many_dst6() { # 135000 IPv6 addresses in 3 sets (131072 per generation)
	awk 'BEGIN {
		print "version: 1"; print "sets:"
		for (s = 0; s < 3; s++) {
			printf "  s%d: [", s
			for (i = 0; i < 45000; i++) printf "%s2001:db8:%x::%x", (i ? ", " : ""), s + 1, i + 1
			print "]"
		}
		print "apps:"; print "  mediaplayer:"; print "    allow:"
		print "      - to: [203.0.113.7]\n        ports: [443]\n        proto: tcp"
		for (s = 0; s < 3; s++) printf "      - to: s%d\n        ports: [443]\n        proto: tcp\n", s
	}'
}
too_many_ports() { # 300 rules of 64 odd port ranges: more than 262144 port entries
	head_allowing_tracker
	awk 'BEGIN {
		for (r = 0; r < 300; r++) {
			printf "      - to: [10.%d.%d.1]\n        ports: [", int(r / 256), r % 256
			for (j = 0; j < 64; j++)
				printf "%s%d-%d", (j ? ", " : ""), 1024 * j + 1 + r % 7, 1024 * j + 1022 - r % 5
			print "]"
		}
	}'
}
put() { # FILE: rename it in, as an installer would
	mv "$1" "$policy"
}

good 443 >"$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_expect_exit "control: the good policy lets mediaplayer reach the OEM backend" 0 \
	sandbox_app_flow mediaplayer tcp 198.51.100.20 443
tap_expect_exit "control: the good policy refuses the tracker" 1 \
	sandbox_app_flow mediaplayer tcp 203.0.113.7 443

# WHAT|GENERATOR|REASON
cases=(
	"IPv4 prefixes|too_many_dst4|more than 131072 IPv4 prefixes"
	"IPv6 prefixes|too_many_dst6|more than 131072 IPv6 prefixes"
	"port entries|too_many_ports|more than 262144 port entries"
)
for c in "${cases[@]}"; do
	IFS='|' read -r what gen reason <<<"$c"
	"$gen" >"$SANDBOX_DIR/big.yaml"
	tap_check "the policy with too many $what parses (policy check gets past the parser)" \
		bash -c "'$CARWALL' policy check '$SANDBOX_DIR/big.yaml' 2>&1 | grep -q 'map capacity per generation'"
	put "$SANDBOX_DIR/big.yaml"
	out=$(cw reload 2>&1)
	rc=$?
	if ((rc == 1)) && [[ $out == *"$reason"* ]]; then
		tap_ok "live: a policy with too many $what is refused, saying so"
	else
		tap_not_ok "live: a policy with too many $what is refused, saying so" "exit $rc: $out"
	fi
	tap_check "live, too many $what: status shows why" \
		bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"last_error\": \"[^\"]*$reason'"
	tap_check "live, too many $what: status --quiet still says enforcing" cw status --quiet
	tap_expect_exit "live, too many $what: the last good policy still lets the OEM backend through" 0 \
		sandbox_app_flow mediaplayer tcp 198.51.100.20 443
	tap_expect_exit "live, too many $what: the tracker it alone would allow stays refused" 1 \
		sandbox_app_flow mediaplayer tcp 203.0.113.7 443
done

# A good, different policy loads after the refusals: nothing half written is left in the way.
good 8443 >"$SANDBOX_DIR/next.yaml"
put "$SANDBOX_DIR/next.yaml"
tap_check "a good policy after the refusals loads" cw reload
tap_expect_exit "after it: the OEM backend on 8443 is reached" 0 \
	sandbox_app_flow mediaplayer tcp 198.51.100.20 8443
tap_expect_exit "after it: the OEM backend on 443 is refused" 1 \
	sandbox_app_flow mediaplayer tcp 198.51.100.20 443
tap_expect_exit "after it: the tracker is refused" 1 sandbox_app_flow mediaplayer tcp 203.0.113.7 443

# At start, with only a policy that does not fit: fail closed.
sandbox_agent_stop
cw --pin-dir "$SANDBOX_PIN_DIR" unload >/dev/null
too_many_dst4 >"$SANDBOX_DIR/big.yaml"
put "$SANDBOX_DIR/big.yaml"
sandbox_agent_start ||
	{ tap_bail_out "carwalld did not start with a policy that does not fit"; exit 1; }
tap_check "at start: the agent says why the policy is refused" \
	grep -q "more than 131072 IPv4 prefixes" "$SANDBOX_DIR/agent.log"
tap_expect_exit "at start: status --quiet says not enforcing a policy" 1 cw status --quiet
# No policy, so no `carwall run --app`: a process in the app's cgroup, below the guard.
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"
cg_flow() { # ADDR PORT: one TCP flow from the app's cgroup, judged by sandbox_judge
	local out token="s$$-${1//[.:]/_}-$2"
	out=$(sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
		"$FLOWPROBE" tcp "$1" "$2" --token "$token" 2>&1)
	sandbox_judge "$out" "$token" tcp "$2"
}
tap_expect_exit "at start: the app is refused even the OEM backend (fail closed)" 1 \
	cg_flow 198.51.100.20 443
tap_expect_exit "at start: the tracker is refused" 1 cg_flow 203.0.113.7 443

tap_done
