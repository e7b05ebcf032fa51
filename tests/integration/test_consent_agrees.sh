#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A consent switch never loosens, in the kernel: a property test over generated policies and
# switch states. A seeded generator writes a policy whose rules overlap (IPv4 and IPv6 prefixes
# inside each other, port ranges across each other, both protocols) and serve random purposes:
# none, a mandatory one, or purposes that several switches cover in random combinations. For
# each of several switch states (all on, random ones, all off), `carwall explain --batch
# --consent ...` gives its verdicts and the kernel its own, asked by verdict_probe run as the app
# from a network namespace with only `lo` (EPERM: refused at the hook; ENETUNREACH: allowed,
# refused by the missing route; nothing is ever sent), after `carwall consent set` put the
# agent in that state. They must agree case by case, and a case the kernel allows in some state
# is allowed with every switch on (a switch never allows what the policy refuses).
#
# CONSENT_AGREES_SEED overrides the seed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
PROBE=$bin/verdict_probe
seed=${CONSENT_AGREES_SEED:-4242}
N_STATES=5

command -v python3 >/dev/null || { tap_skip "consent agrees with explain" "needs python3"; tap_done; exit; }
[[ -x $PROBE ]] || { tap_bail_out "$PROBE is missing: build it with 'make tests'"; exit 1; }

probe_ns=cw-ca$$-probe
probe_ns_made=
cleanup() { # runs first on exit; sandbox_create keeps it
	[[ -n $probe_ns_made ]] && ip netns del "$probe_ns" 2>/dev/null
}
trap cleanup EXIT
sandbox_create "cw-ca$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
work=$SANDBOX_DIR
SANDBOX_POLICY=$work/policy.yaml

# The policy (one app, "a"), the cases (probe: "PROTO ADDR PORT", dest: explain's form) and the
# switch states (states: one line per state, "NAME=on|off ..." for every switch).
python3 - "$seed" "$work" "$N_STATES" <<'EOF'
import random, sys
rng = random.Random(int(sys.argv[1]))
work, n_states = sys.argv[2], int(sys.argv[3])
purposes = ["p0", "p1", "p2", "p3"]
switches = []
for s in range(4):
    cover = rng.sample(purposes, rng.randint(1, 2))
    switches.append((f"s{s}", cover, rng.choice(["on", "off"])))
v4 = [("198.51.100.0", 24), ("198.51.100.0", 26), ("198.51.100.64", 26), ("198.51.100.20", 32),
      ("198.51.100.70", 31), ("203.0.113.0", 24)]
v6 = [("2001:db8:1::", 48), ("2001:db8:1::", 64), ("2001:db8:1::20", 128), ("2001:db8:1:1::", 64)]
rules = []
for i in range(14):
    to = [rng.choice(v4)] if rng.random() < 0.6 else []
    if not to or rng.random() < 0.4:
        to.append(rng.choice(v6))
    first = rng.choice([100, 200, 300, 443, 1000])
    last = first + rng.choice([0, 0, 5, 50])
    proto = rng.choice(["tcp", "udp", None])
    purpose = rng.choice([None, None, "m0"] + purposes + purposes)
    rules.append((to, first, last, proto, purpose))
with open(f"{work}/policy.yaml", "w") as f:
    f.write("version: 1\nconsent:\n  purposes: [%s]\n  mandatory: [m0]\n  switches:\n" % ", ".join(purposes))
    for name, cover, default in switches:
        f.write(f"    - {{name: {name}, purposes: [{', '.join(cover)}], default: {default}, reset: drive}}\n")
    f.write("apps:\n  a:\n    allow:\n")
    for to, first, last, proto, purpose in rules:
        f.write("      - to: [%s]\n" % ", ".join(a if (":" not in a and l == 32) or l == 128 else f"{a}/{l}" for a, l in to))
        f.write(f"        ports: [{first}-{last}]\n" if last > first else f"        ports: [{first}]\n")
        if proto:
            f.write(f"        proto: {proto}\n")
        if purpose:
            f.write(f"        purpose: {purpose}\n")
def addr_in(a, l):
    if ":" in a:
        base = a.rstrip(":")
        host = rng.choice([1, 0x20, 0x21, 0xffff])
        return f"{a}{host:x}" if a.endswith("::") else a
    parts = list(map(int, a.split(".")))
    n = (parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]) + rng.randrange(1 << (32 - l))
    return ".".join(str((n >> s) & 255) for s in (24, 16, 8, 0))
cases = set()
while len(cases) < 500:
    to, first, last, proto, _ = rng.choice(rules)
    a, l = rng.choice(to if rng.random() < 0.8 else v4 + v6)
    port = rng.choice([first, last, rng.randint(first, last), first - 1, last + 1, 443, 7])
    cases.add((rng.choice(["tcp", "udp"]) if rng.random() < 0.3 or not proto else proto, addr_in(a, l), port))
with open(f"{work}/probe", "w") as p, open(f"{work}/dest", "w") as d:
    for proto, a, port in sorted(cases):
        p.write(f"{proto} {a} {port}\n")
        d.write((f"[{a}]" if ":" in a else a) + f":{port}/{proto}\n")
with open(f"{work}/states", "w") as f:
    states = [["on"] * 4, ["off"] * 4] + [[rng.choice(["on", "off"]) for _ in range(4)] for _ in range(n_states - 2)]
    for st in states:
        f.write(" ".join(f"s{i}={v}" for i, v in enumerate(st)) + "\n")
EOF
tap_check "seed $seed: the generated policy is valid" "$CARWALL" policy check "$SANDBOX_POLICY"
n_cases=$(wc -l <"$work/probe")

ip netns add "$probe_ns" ||
	{ tap_bail_out "cannot create the network namespace $probe_ns"; exit 1; }
probe_ns_made=1
ip -n "$probe_ns" link set lo up
[[ -z $(ip -n "$probe_ns" route show) ]] || { tap_bail_out "$probe_ns has routes"; exit 1; }
in_probe_ns() { nsenter --net="/run/netns/$probe_ns" -- "$@"; }
# kernel OUT: the kernel's verdict per case as app a, connect() then (UDP) sendto(): "R1 R2".
kernel() {
	in_probe_ns timeout 20 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" run --app a -- \
		"$PROBE" <"$work/probe" >"$1.connect" &&
		in_probe_ns timeout 20 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" run --app a -- \
			"$PROBE" --udp-sendto < <(awk '{ print ($1 == "udp" && $3 != 0) ? $0 : "tcp 127.0.0.1 1" }' "$work/probe") \
			>"$1.sendto" && paste -d ' ' "$1.connect" "$1.sendto" >"$1"
}

# control: without carwall every case reaches the route lookup (the sendto column of TCP cases
# is a filler connect to 127.0.0.1, refused by nothing listening).
in_probe_ns timeout 20 "$PROBE" <"$work/probe" >"$work/control" 2>&1
tap_check "control, no carwall: all $n_cases cases fail at the route lookup (ENETUNREACH)" \
	bash -c "[ \$(grep -cx ENETUNREACH '$work/control') -eq $n_cases ]"

sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
k=0
while read -r state; do
	k=$((k + 1))
	args=()
	for sw in $state; do
		"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" consent set "${sw%=*}" "${sw#*=}" >/dev/null ||
			tap_diag "consent set $sw failed"
		args+=(--consent "$sw")
	done
	"$CARWALL" explain --policy "$SANDBOX_POLICY" --app a "${args[@]}" --batch "$work/dest" \
		>"$work/explain.$k" 2>&1
	kernel "$work/kernel.$k"
	# One line per case: explain's verdict, the kernel's (connect, and sendto for UDP).
	paste -d ' ' "$work/explain.$k" "$work/probe" "$work/kernel.$k" | awk '
		{ want = $1; c = $(NF - 1); s = $NF; udp = $(NF - 4) == "udp" && $(NF - 2) != 0
		  got = c == "EPERM" ? "refused" : c == "ENETUNREACH" ? "allowed" : "?"
		  gots = !udp ? got : s == "EPERM" ? "refused" : s == "ENETUNREACH" ? "allowed" : "?"
		  if (want != got || want != gots) print "mismatch: " $0
		  n[want]++; if ($3 == "consent") consent++ }
		END { printf "allowed %d refused %d consent %d\n", n["allowed"], n["refused"], consent }' \
		>"$work/compare.$k"
	tap_check "state $k ($state): explain and the kernel agree on all $n_cases cases ($(tail -1 "$work/compare.$k"))" \
		bash -c "! grep -q mismatch '$work/compare.$k' && [ \$(wc -l <'$work/explain.$k') -eq $n_cases ]"
	grep -m3 mismatch "$work/compare.$k" | while read -r l; do tap_diag "$l"; done
done <"$work/states"

# Never loosens: allowed in some state => allowed with every switch on (state 1).
loosened=$(paste -d ' ' "$work"/kernel.[0-9]* | awk -v n=$N_STATES '
	{ for (i = 3; i <= 2 * n; i++) if ($i == "ENETUNREACH" && $((i % 2) ? 1 : 2) != "ENETUNREACH") bad++ }
	END { print bad + 0 }')
tap_check "no state allows a flow that all switches on refuses ($loosened)" test "$loosened" -eq 0
tap_check "all off refuses by consent some flows all on allows (the switches matter)" \
	bash -c "[ \$(awk '{print \$NF}' '$work/compare.2' | head -1) -gt 0 ] && grep -q 'consent [1-9]' '$work/compare.2'"

tap_done
