#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `carwall explain` against the real kernel. A seeded generator writes a policy with several
# apps, heavily overlapping IPv4 and IPv6 prefixes (some written IPv4-mapped), sets, ports,
# ranges and protocols, and a few thousand cases (app, address, port, protocol) around them.
# explain --batch gives its verdict for each case; then the real agent enforces the policy in a
# sandbox, and verdict_probe, run as each app with `carwall run`, asks the kernel: a connect()
# per case (and a sendto() per UDP case) from a network namespace of our own with only `lo` up
# and no routes. The cgroup hooks run before the route lookup, so a refused flow fails with
# EPERM, an allowed one with ENETUNREACH, and no packet is ever sent. Both lists must agree
# line by line.
#
# EXPLAIN_AGREES_SEED and EXPLAIN_AGREES_CASES override the seed and the number of cases.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
PROBE=$bin/verdict_probe
seed=${EXPLAIN_AGREES_SEED:-5551212}
n_cases=${EXPLAIN_AGREES_CASES:-3000}
start_seconds=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/carwall-explain.XXXXXX") || {
	tap_bail_out "mktemp failed"
	exit 1
}
probe_ns=cw-x$$-probe
probe_ns_made=

# Runs first on exit (sandbox_create keeps it and destroys the sandbox afterwards).
cleanup() {
	local pid pids i
	if [[ -n $probe_ns_made ]]; then
		for ((i = 0; i < 20; i++)); do
			pids=$(ip netns pids "$probe_ns" 2>/dev/null | grep -vx -e "$$")
			[[ -z $pids ]] && break
			for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
			sleep 0.1
		done
		ip netns del "$probe_ns" 2>/dev/null
	fi
	[[ -n ${EXPLAIN_AGREES_KEEP:-} ]] && { echo "# kept $work"; return; }
	[[ $work == */carwall-explain.* ]] && rm -rf -- "$work"
}
trap cleanup EXIT

# ---- explain's CLI on a small policy: verdicts, attribution, exit codes ------------------------
small=$work/small.yaml
cat >"$small" <<'EOF'
version: 1
sets:
  oem-maps: [198.51.100.64/26, 2001:db8:100::/48]
apps:
  navigation:
    allow:
      - to: oem-maps
        ports: [443, 8443-8450]
        proto: tcp
  radio:
    allow: []
EOF
explain() { "$CARWALL" explain --policy "$small" "$@"; }

# output_has CMD... -- TEXT...: CMD's output (stdout and stderr) contains every TEXT.
output_has() {
	local cmd=() out t
	while (($#)) && [[ $1 != -- ]]; do
		cmd+=("$1")
		shift
	done
	shift
	out=$("${cmd[@]}" 2>&1)
	for t in "$@"; do
		if [[ $out != *"$t"* ]]; then
			printf 'missing: %s\noutput:\n%s\n' "$t" "$out"
			return 1
		fi
	done
}

tap_expect_exit "explain exits 0 for an allowed flow" 0 \
	explain --app navigation 198.51.100.70:8444/tcp
tap_check "explain names the rule and the set entry with file:line:column" \
	output_has explain --app navigation 198.51.100.70:8444/tcp -- \
	"rule 1 of navigation at $small:7:9" \
	"set oem-maps at $small:7:13, its entry 198.51.100.64/26 at $small:3:14"
tap_expect_exit "explain exits 3 for a refused flow" 3 \
	explain --app navigation '[2001:db8:bad::7]:443/tcp'
tap_check "explain says default deny for a refused flow" \
	output_has explain --app navigation 203.0.113.7:443/tcp -- \
	"203.0.113.7 port 443/tcp: refused" "default deny: no rule of app navigation matches"
tap_expect_exit "explain exits 4 without /PROTO when tcp is allowed and udp refused" 4 \
	explain --app navigation '[2001:db8:100::1]:443'
tap_expect_exit "explain exits 4 without a port when some ports are allowed" 4 \
	explain --app navigation 198.51.100.64
tap_check "explain without a port lists the ports the app may use" \
	output_has explain --app navigation 198.51.100.64 -- \
	"navigation to 198.51.100.64: tcp 443, 8443-8450; udp: none"
tap_expect_exit "explain exits 3 for every flow of an app with allow: []" 3 \
	explain --app radio 198.51.100.64
tap_expect_exit "explain exits 1 for an app not in the policy" 1 \
	explain --app mediaplayer 198.51.100.64
tap_check "explain lists the policy's apps when the app is not in it" \
	output_has explain --app mediaplayer 198.51.100.64 -- "its apps are: navigation, radio"
tap_expect_exit "explain exits 2 for an IPv6 address with a port but no brackets" 2 \
	explain --app navigation ::ffff:198.51.100.64:443/tcp
tap_check "explain shows how to write an IPv6 address with a port" \
	output_has explain --app navigation ::ffff:198.51.100.64:443/tcp -- \
	"[::ffff:198.51.100.64]:443"
tap_check "explain --json prints verdict, rule index, file:line:column and the set entry" \
	output_has "$CARWALL" --json explain --policy "$small" --app navigation \
	'[2001:db8:100::1]:443/tcp' -- '"verdict": "allowed"' '"index": 0' \
	"\"file\": \"$small\"" '"line": 7' '"column": 9' '"set": "oem-maps"' \
	'"prefix": "2001:db8:100::/48"' '"prefix_line": 3'
tap_check "explain --batch prints one verdict per line" \
	output_has explain --app navigation --batch <(printf '%s\n' 198.51.100.70:443/tcp \
	'[2001:db8:bad::7]:443/udp') -- \
	"allowed 198.51.100.70:443/tcp rule 0 $small:7:9"$'\n'"refused [2001:db8:bad::7]:443/udp"

# ---- the generated policy and cases ------------------------------------------------------------
# Bash's RANDOM with a fixed seed: the same policy and cases on every run. The address space is
# small (three IPv4 /24s, a few IPv6 /48s in 2001:db8::/32) so that prefixes overlap heavily.
RANDOM=$seed
v4_nets=(192.0.2 198.51.100 203.0.113)
v4_lens=(24 25 26 27 28 28 29 30 30 31 32 32 32)
v6_lens=(32 48 48 56 64 64 64 120 124 124 126 128 128)
apps=(app0 app1 app2 app3 app4 deny-all)
port_pool=(1 22 53 80 123 443 5353 8080 8443 9000 65535)

# Every generated prefix, to draw case addresses from: "4 NET LAST 0 0 LEN" or
# "6 G3 G4 G7 G8 LEN" (IPv6 2001:db8:G3:G4::G7:G8).
prefixes=()
ports_seen=() # every port a rule names, the ends of its ranges, and their neighbours
set_pfx=()    # per set: the indices in prefixes[] of its entries
app_pfx=()    # per app (index in apps[]): the indices of the prefixes its rules name
app_rules=()  # per app: its rules, as indices in the rule_* arrays
rule_pfx=()   # per rule: the indices of its prefixes
rule_ports=() # per rule: ports it allows (empty: any)
rule_proto=() # per rule: tcp, udp or any

# new_prefix: a random prefix in $REPLY (policy text), recorded in prefixes[].
new_prefix() {
	local len net last g3 g4 g8 hb
	if ((RANDOM % 100 < 55)); then
		net=${v4_nets[RANDOM % 3]}
		len=${v4_lens[RANDOM % ${#v4_lens[@]}]}
		hb=$((32 - len))
		last=$(((RANDOM % 256) & ~((1 << hb) - 1) & 255))
		prefixes+=("4 $net $last 0 0 $len")
		if ((RANDOM % 100 < 20)); then
			REPLY="::ffff:$net.$last/$((96 + len))" # stored as the IPv4 prefix
		elif ((len == 32)); then
			REPLY="$net.$last"
		else
			REPLY="$net.$last/$len"
		fi
		return
	fi
	len=${v6_lens[RANDOM % ${#v6_lens[@]}]}
	g3=$((RANDOM % 3)) g4=$((RANDOM % 3)) g8=$((RANDOM % 256))
	case $len in
	32) g3=0 g4=0 g8=0 ;;
	48 | 56) g4=0 g8=0 ;;
	64 | 120) g8=0 ;;
	124) g8=$((g8 & ~15)) ;;
	126) g8=$((g8 & ~3)) ;;
	esac
	prefixes+=("6 $g3 $g4 0 $g8 $len")
	printf -v REPLY '2001:db8:%x:%x::%x' "$g3" "$g4" "$g8"
	((len == 128)) || REPLY+="/$len"
}

# new_ports: a `ports` value in $REPLY (empty: any port); ports inside it in $INSIDE.
new_ports() {
	local n=$((1 + RANDOM % 3)) i p q items=()
	INSIDE=
	if ((RANDOM % 100 < 25)); then
		REPLY=
		return
	fi
	for ((i = 0; i < n; i++)); do
		p=${port_pool[RANDOM % ${#port_pool[@]}]}
		if ((RANDOM % 2 && p < 65535)); then
			q=$((p + 1 + RANDOM % 20))
			((q > 65535)) && q=65535
			items+=("$p-$q")
			INSIDE+=" $p $q $((p + RANDOM % (q - p + 1)))"
			ports_seen+=("$p" "$q" "$((q + 1))")
		else
			items+=("$p")
			INSIDE+=" $p"
			ports_seen+=("$p")
		fi
		ports_seen+=("$((p - 1))" "$((p + 1))")
	done
	local IFS=,
	REPLY="[${items[*]}]"
}

policy=$work/policy.yaml
gen_policy() {
	local s k a r t n_rules n_to proto ri=0 ai=-1
	{
		echo "# Generated by tests/integration/test_explain_agrees.sh, seed $seed."
		echo "version: 1"
		echo "sets:"
		for s in 0 1 2; do
			echo "  set$s:"
			set_pfx[s]=
			for ((k = 0; k < 2 + RANDOM % 3; k++)); do
				new_prefix
				echo "    - '$REPLY'"
				set_pfx[s]+=" $((${#prefixes[@]} - 1))"
			done
		done
		echo "apps:"
		for a in "${apps[@]}"; do
			ai=$((ai + 1))
			app_pfx[ai]=
			app_rules[ai]=
			echo "  $a:"
			if [[ $a == deny-all ]]; then
				echo "    allow: []"
				continue
			fi
			echo "    allow:"
			n_rules=$((3 + RANDOM % 6))
			for ((r = 0; r < n_rules; r++, ri++)); do
				app_rules[ai]+=" $ri"
				rule_pfx[ri]=
				echo "      - to:"
				n_to=$((1 + RANDOM % 3))
				for ((t = 0; t < n_to; t++)); do
					if ((RANDOM % 100 < 25)); then
						s=$((RANDOM % 3))
						echo "          - set$s"
						rule_pfx[ri]+=${set_pfx[s]}
					else
						new_prefix
						echo "          - '$REPLY'"
						rule_pfx[ri]+=" $((${#prefixes[@]} - 1))"
					fi
				done
				app_pfx[ai]+=${rule_pfx[ri]}
				new_ports
				[[ -n $REPLY ]] && echo "        ports: $REPLY"
				rule_ports[ri]=$INSIDE
				proto=$((RANDOM % 10))
				if ((proto < 3)); then
					echo "        proto: tcp"
					rule_proto[ri]=tcp
				elif ((proto < 7)); then
					echo "        proto: udp"
					rule_proto[ri]=udp
				else
					rule_proto[ri]=any # by leaving `proto` out
				fi
			done
		done
	} >"$policy"
	n_rules_total=$ri
}

# pick LIST: a random word of LIST in $REPLY (empty for an empty list).
pick() {
	local words
	read -ra words <<<"$1"
	REPLY=
	((${#words[@]} > 0)) && REPLY=${words[RANDOM % ${#words[@]}]}
	return 0
}

# case_addr PREFIX-INDEX|"": an address in $ADDR, inside that prefix (anywhere in the
# documentation ranges without one), and its kind in $KIND (v4, v6, mapped).
case_addr() {
	local fam a b c d len hb g3 g4 g7 g8
	if [[ -n $1 ]]; then
		read -r fam a b c d len <<<"${prefixes[$1]}"
	elif ((RANDOM % 2)); then
		fam=4 a=${v4_nets[RANDOM % 3]} b=$((RANDOM % 256)) len=32
	else
		fam=6 a=$((RANDOM % 4)) b=$((RANDOM % 4)) c=0 d=$((RANDOM % 256)) len=128
	fi
	if [[ $fam == 4 ]]; then
		hb=$((32 - len))
		ADDR="$a.$((b | (RANDOM & ((1 << hb) - 1))))"
		KIND=v4
		if ((RANDOM % 100 < 25)); then
			ADDR="::ffff:$ADDR"
			KIND=mapped
		fi
		return
	fi
	g3=$a g4=$b g7=$c g8=$d
	case $len in
	32) g3=$((RANDOM % 4)) g4=$((RANDOM % 4)) g8=$((RANDOM % 256)) ;;
	48 | 56) g4=$((RANDOM % 4)) g8=$((RANDOM % 256)) ;;
	64 | 120) g8=$((RANDOM % 256)) ;;
	124) g8=$((g8 | RANDOM % 16)) ;;
	126) g8=$((g8 | RANDOM % 4)) ;;
	esac
	# Now and then a bit outside the low group, inside any prefix of /64 or shorter.
	((len <= 64 && RANDOM % 100 < 20)) && g7=$((1 + RANDOM % 3))
	printf -v ADDR '2001:db8:%x:%x::%x:%x' "$g3" "$g4" "$g7" "$g8"
	KIND=v6
}

# Cases: half aimed at one rule of the app (an address in its `to`, a port in its `ports`, its
# protocol: allowed), half around them (the app's or another app's prefixes, anywhere, ports
# at and next to the rules' ends, either protocol: mostly refused).
gen_cases() {
	local i app ai proto port a rule dests=() probes=() kinds=()
	for ((i = 0; i < n_cases; i++)); do
		# deny-all gets few cases: all of them are refused.
		if ((RANDOM % 100 < 4)); then
			ai=5
		else
			ai=$((RANDOM % 5))
		fi
		((RANDOM % 2)) && proto=tcp || proto=udp
		port=
		pick "${app_rules[ai]}"
		rule=$REPLY
		if [[ -n $rule ]] && ((RANDOM % 100 < 50)); then
			pick "${rule_pfx[rule]}"
			case_addr "$REPLY"
			pick "${rule_ports[rule]}"
			port=$REPLY
			[[ ${rule_proto[rule]} != any ]] && proto=${rule_proto[rule]}
		elif ((RANDOM % 100 < 50)); then
			pick "${app_pfx[ai]}"
			case_addr "$REPLY"
		elif ((RANDOM % 100 < 50)); then
			case_addr $((RANDOM % ${#prefixes[@]}))
		else
			case_addr ""
		fi
		if [[ -z $port ]]; then
			if ((RANDOM % 100 < 75)); then
				port=${ports_seen[RANDOM % ${#ports_seen[@]}]}
			elif ((RANDOM % 100 < 95)); then
				port=$((1 + (RANDOM * 32768 + RANDOM) % 65535))
			else
				port=0
			fi
		fi
		((port < 0 || port > 65535)) && port=443
		a=$ADDR
		if [[ $KIND == v4 ]]; then
			dests[ai]+="$a:$port/$proto"$'\n'
		else
			dests[ai]+="[$a]:$port/$proto"$'\n'
		fi
		probes[ai]+="$proto $a $port"$'\n'
		kinds[ai]+="$KIND"$'\n'
	done
	for ai in "${!apps[@]}"; do
		app=${apps[ai]}
		printf '%s' "${dests[ai]:-}" >"$work/dest.$app"
		printf '%s' "${probes[ai]:-}" >"$work/probe.$app"
		printf '%s' "${kinds[ai]:-}" >"$work/kind.$app"
	done
}

gen_policy
gen_cases
tap_diag "seed $seed: ${#apps[@]} apps, $n_rules_total rules, ${#prefixes[@]} prefixes,$(
	) $n_cases cases ($((SECONDS - start_seconds))s)"

tap_check "the generated policy is valid" "$CARWALL" policy check "$policy"

# ---- expected verdicts: explain --batch --------------------------------------------------------
explain_ok=1
for a in "${apps[@]}"; do
	"$CARWALL" explain --policy "$policy" --app "$a" --batch "$work/dest.$a" \
		>"$work/explain.$a" 2>"$work/explain.$a.err"
	rc=$?
	if [[ ! $rc =~ ^[034]$ ]] ||
		(($(wc -l <"$work/explain.$a") != $(wc -l <"$work/dest.$a"))); then
		explain_ok=0
		tap_diag "explain --batch for $a: exit $rc, $(wc -l <"$work/explain.$a") lines$(
			) for $(wc -l <"$work/dest.$a") cases: $(head -3 "$work/explain.$a.err")"
	fi
done
if ((explain_ok)); then
	tap_ok "explain --batch gives one verdict per case for every app"
else
	tap_not_ok "explain --batch gives one verdict per case for every app"
fi

# ---- the kernel's verdicts ---------------------------------------------------------------------
if [[ ! -x $PROBE ]]; then
	tap_bail_out "$PROBE is missing: build it with 'make tests'"
	exit 1
fi
if ! ip netns add "$probe_ns"; then
	tap_bail_out "cannot create the network namespace $probe_ns"
	exit 1
fi
probe_ns_made=1
if ! ip -n "$probe_ns" link set lo up || [[ -n $(ip -n "$probe_ns" route show) ]] ||
	ip -n "$probe_ns" -6 route show | grep -qv "^\(::1\|fe80::/64\|multicast\) "; then
	tap_bail_out "$probe_ns is not an isolated namespace with only lo"
	exit 1
fi
in_probe_ns() { nsenter --net="/run/netns/$probe_ns" -- "$@"; }

# udp_sendto_cases FILE: the UDP cases with a port (sendto() refuses port 0 itself).
udp_sendto_cases() { awk '$1 == "udp" && $3 != 0' "$1"; }

# ---- control: without carwall every case reaches the route lookup and fails there --------------
cat "${apps[@]/#/$work/probe.}" >"$work/probe.all"
udp_sendto_cases "$work/probe.all" >"$work/probe.all.udp"
in_probe_ns timeout 20 "$PROBE" <"$work/probe.all" >"$work/control.connect" 2>&1
rc=$?
counts=$(sort "$work/control.connect" | uniq -c | tr '\n' ' ')
name="control, no carwall: connect() fails with ENETUNREACH for all $n_cases cases"
name+=" (none refused, nothing sent)"
if ((rc == 0)) && (($(wc -l <"$work/control.connect") == n_cases)) &&
	! grep -qvx ENETUNREACH "$work/control.connect"; then
	tap_ok "$name"
else
	tap_not_ok "$name" "exit $rc; results: $counts"
fi
in_probe_ns timeout 20 "$PROBE" --udp-sendto <"$work/probe.all.udp" >"$work/control.sendto" 2>&1
rc=$?
n_udp=$(wc -l <"$work/probe.all.udp")
if ((rc == 0)) && (($(wc -l <"$work/control.sendto") == n_udp)) &&
	! grep -qvx ENETUNREACH "$work/control.sendto"; then
	tap_ok "control, no carwall: sendto() fails with ENETUNREACH for all $n_udp UDP cases"
else
	tap_not_ok "control, no carwall: sendto() fails with ENETUNREACH for all $n_udp UDP cases" \
		"exit $rc; results: $(sort "$work/control.sendto" | uniq -c | tr '\n' ' ')"
fi

# ---- enforced ----------------------------------------------------------------------------------
SANDBOX_POLICY=$policy
sandbox_create "cw-x$$" >/dev/null || {
	tap_bail_out "cannot create the sandbox"
	exit 1
}
if ! sandbox_agent_start; then
	tap_bail_out "carwalld did not start"
	exit 1
fi

# The kernel's verdicts, per case of each app, run as that app: kernel.APP (connect) and
# kernel.APP.udp (sendto, UDP cases with a port).
probe_ok=1
for a in "${apps[@]}"; do
	in_probe_ns timeout 20 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" run --app "$a" -- \
		"$PROBE" <"$work/probe.$a" >"$work/kernel.$a" 2>"$work/kernel.$a.err"
	rc=$?
	udp_sendto_cases "$work/probe.$a" >"$work/probe.$a.udp"
	in_probe_ns timeout 20 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" run --app "$a" -- \
		"$PROBE" --udp-sendto <"$work/probe.$a.udp" >"$work/kernel.$a.udp" \
		2>>"$work/kernel.$a.err"
	rc2=$?
	if ((rc != 0 || rc2 != 0)); then
		probe_ok=0
		tap_diag "verdict_probe as $a: exit $rc (connect), $rc2 (sendto): $(
			head -3 "$work/kernel.$a.err")"
	fi
done
cat "${apps[@]/#/$work/kernel.}" >"$work/kernel.all"
counts=$(sort "$work/kernel.all" | uniq -c | tr '\n' ' ')
if ((probe_ok)) && (($(wc -l <"$work/kernel.all") == n_cases)) &&
	! grep -qvx -e EPERM -e ENETUNREACH "$work/kernel.all"; then
	tap_ok "enforced: the kernel answers every connect() case with EPERM or ENETUNREACH"
else
	tap_not_ok "enforced: the kernel answers every connect() case with EPERM or ENETUNREACH" \
		"results: $counts"
fi

refused=$(grep -cx EPERM "$work/kernel.all")
pct=$((refused * 100 / (n_cases > 0 ? n_cases : 1)))
name="enforced: both verdicts occur ($refused of $n_cases cases refused, $pct%; want 20-80%)"
if ((pct >= 20 && pct <= 80)); then
	tap_ok "$name"
else
	tap_not_ok "$name"
fi

# compare SUFFIX: explain's verdict and the kernel's in kernel.APP$SUFFIX ("" for connect(),
# ".udp" for sendto()), case by case for every app. Prints "COMPARED MISMATCHES", and writes the
# first mismatches of each app to $work/mismatches.
compare() {
	local suffix=$1 a
	: >"$work/mismatches"
	for a in "${apps[@]}"; do
		# explain's lines for the cases the probe ran (all, or UDP with a port).
		paste -d ' ' "$work/explain.$a" "$work/probe.$a" "$work/kind.$a" |
			awk -v udp="$suffix" 'udp == "" || ($(NF - 3) == "udp" && $(NF - 1) != 0)' \
				>"$work/expected.$a$suffix"
		paste -d ' ' "$work/expected.$a$suffix" "$work/kernel.$a$suffix" |
			awk -v app="$a" -v out="$work/mismatches" '
			{
				want = $1; got = $NF
				kernel = got == "EPERM" ? "refused" : \
					 got == "ENETUNREACH" ? "allowed" : "?"
				n++
				if (want != kernel) {
					bad++
					why = want == "allowed" ? " (" $3 " " $4 " " $5 ")" : ""
					if (bad <= 20)
						printf "%s %s: explain %s%s, kernel %s\n", app, $2,
						       want, why, got >>out
				}
			}
			END { printf "%d %d\n", n, bad }'
	done | awk '{ n += $1; bad += $2 } END { printf "%d %d\n", n, bad }'
}

read -r compared bad < <(compare "")
if ((compared == n_cases && bad == 0)); then
	tap_ok "explain agrees with the kernel on all $compared connect() cases"
else
	tap_not_ok "explain agrees with the kernel on all $compared connect() cases" \
		"$bad mismatches of $compared (want $n_cases compared); the first ones:" \
		"$(head -n 20 "$work/mismatches")"
fi

read -r compared bad < <(compare .udp)
if ((compared == n_udp && bad == 0)); then
	tap_ok "explain agrees with the kernel on all $compared UDP sendto() cases"
else
	tap_not_ok "explain agrees with the kernel on all $compared UDP sendto() cases" \
		"$bad mismatches of $compared (want $n_udp compared); the first ones:" \
		"$(head -n 20 "$work/mismatches")"
fi

# Every kind of case met both verdicts, so no part of the comparison is one-sided.
missing=$(for a in "${apps[@]}"; do
	paste -d ' ' "$work/kind.$a" "$work/probe.$a" "$work/kernel.$a" |
		awk '{ print $1, $2, $NF }'
done | sort -u | awk '{ seen[$1 " " $2 " " $3] = 1 }
	END {
		split("v4 v6 mapped", kinds, " "); split("tcp udp", protos, " ")
		for (k in kinds) for (p in protos) for (v = 1; v <= 2; v++) {
			r = v == 1 ? "EPERM" : "ENETUNREACH"
			if (!seen[kinds[k] " " protos[p] " " r])
				printf "%s/%s never %s; ", kinds[k], protos[p], r
		}
	}')
name="every kind of case (IPv4, IPv6, IPv4-mapped; tcp, udp) was both allowed and refused"
if [[ -z $missing ]]; then
	tap_ok "$name"
else
	tap_not_ok "$name" "$missing"
fi

tap_diag "explain vs kernel: $((SECONDS - start_seconds))s in all"
tap_done
