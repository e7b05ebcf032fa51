#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# bench.sh: carwall's cost against no filter, against nftables and against the floor of any BPF
# design, side by side in one run (`make bench`, `make bench QUICK=1`). Needs root, builds
# nothing: `make bench` builds first.
#
# Usage: scripts/bench.sh [--quick] [--in-kernel [ROUNDS]] [--out FILE] [--bin-dir DIR]
#        scripts/bench.sh --install-deps     installs what only the benchmark needs (nftables, jq,
#                                            dnsmasq)
#        --in-kernel [ROUNDS]  the filter check and in_kernel only (ROUNDS rounds of 100 ms
#                              slices, default 5), for work on the programs' cost (about 45 s)
#
# What it measures, from inside an app's cgroup, on loopback in private network namespaces:
#   datapath   TCP connect+close, UDP sendto (64 B), UDP connect() (the hook alone) and bulk TCP,
#              IPv4 and IPv6, in five variants, each in its own netns and cgroup subtree:
#                none      no filter at all: no program attached above the client, no nft table
#                carwall   carwalld with every program it attaches (whatever `carwall status`
#                          lists as hooks), the 10k-rule policy, events on when it has them
#                nftables  one table (unique name, in the variant's private netns): per app, a
#                          `socket cgroupv2` rule jumping to a chain with two interval sets
#                          (address . protocol . port) holding the same allow-lists, reject else
#                floor     tests/bench/floor.bpf.c, loaded by `bench floor`: what any BPF design
#                          costs at least. connect4/6 and sendmsg4/6 each do ONE lookup, in an
#                          LPM trie per family of the policy's 10k prefixes keyed by (cgroup id
#                          of the calling task, prefix), the prefix's ports and protocols in the
#                          value (no second lookup; the policy has no overlapping prefixes, so no
#                          merging either); the app's cgroup id comes from a helper, not a map.
#                          sock_create lets TCP and UDP sockets only (no lookup): with connect4/6
#                          it is the minimal set of programs a BPF firewall needs per new TCP
#                          connection (no per-packet program: the connection is judged once).
#                          Nothing else carwall does: no generations, no ancestor walk, no
#                          counters, events or socket storage.
#                mark      ("floor+mark" in the tables) the floor plus what any design with
#                          carwall's guarantees must also do, loaded by `bench floor` too
#                          (tests/bench/floor.bpf.c, mark_*; tries of its own with the same
#                          prefixes, keyed by its own app cgroups): on an allowed connect4/6 the
#                          socket's mark in its local storage (created there: the only
#                          per-socket store a program can write without kernel BTF), holding
#                          the verdict and the policy epoch (what tells a connection the app
#                          made from an accepted one, and lets a reload revoke it; no storage,
#                          no connection); and a cgroup_skb egress program checking every
#                          outgoing packet against that mark (epoch in force, a global, and
#                          pass; unmarked sockets pass: sendmsg4/6 judged their datagrams), the
#                          per-packet backstop. sendmsg4/6 and sock_create as the floor's.
#              resolve_connect (issue 13), IPv4 and IPv6, none and carwall only: an app of a
#              host-name rule (app09, whose prefixes hold neither 127.0.0.1 nor ::1) looks up
#              svc.bench.example (A or AAAA) through dnsmasq at 127.0.0.1:53 in the variant's netns,
#              as a stub resolver does (a new UDP socket per lookup), then connects over TCP to the
#              address answered (127.0.0.1 or ::1): carwall learns it from the answer, in the
#              kernel, and allows the connection by the name. Its figures are on the wall clock:
#              the answer is received, and parsed by carwall's ingress program, in dnsmasq's
#              context, which the client's CPU time does not see.
#              The flows are allowed ones: the client is app08, whose rules allow 127.0.0.1 and
#              ::1 on the benchmark's ports, in the middle of its rules, next to neighbours
#              (127.0.0.2.., ::2..) so the lookup walks deep. Interleaved rounds: per test, one
#              long-lived worker per variant (its netns and cgroup joined once, warmed up); each
#              round runs a short slice of every variant back to back (A B C D E A B C D E ..,
#              the first one rotating from round to round), so that machine drift cancels in the
#              per-round ratios. Each slice is measured on the worker thread's CPU time (what a
#              connect(), a datagram or a MB costs; time spent descheduled by other load does not
#              count, the loopback work done in its softirqs does) and on the wall clock; the
#              figures and targets use CPU time, the wall-clock ones are in the JSON too.
#   in_kernel  kernel.bpf_stats_enabled=1 only while this runs (the old value comes back, also
#              on failure): the connect, sendto and UDP connect flows, in rounds, each run by
#              carwall, the floor, floor+mark and "empty" (the same flows under one program per
#              hook that only returns "allow", in a cgroup of its own); run_time_ns / run_cnt of
#              each program (carwall's through the agent's pinned links) over those flows.
#              run_time_ns includes what bpf_stats itself costs per run (two clock reads, the
#              per-CPU update): the empty program of the same hook measures it, and net figures
#              subtract it. Per flow: every program of a variant together, per operation (per new
#              TCP connection, per datagram, per UDP connect()), raw and net.
#   reload     `carwall --json reload` for 1k, 10k and 100k-rule policies, each reload a new
#              revision of the file (one rule differs, a higher bundle version; two untimed
#              reloads first, so that both generations hold that size): the span from the file's
#              rename to the reply, timed here, and the agent's own timing_us {read, verify,
#              parse, compile, apply, total, cpu} when its reply has them (parse includes the
#              signature checks; cpu is the agent's CPU time for the whole reload, which other
#              load does not stretch); `carwall policy check` of the same file (no maps); and the
#              floor of a reload in production mode: `bench yaml-floor` (libyaml alone reading
#              the events of the same policy, and one Ed25519 check of its bytes).
#   agent      VmRSS/VmHWM of carwalld after it loaded the 10k policy, and the floor under it
#              (`bench rss-floor`: the same libraries, the agent's ring buffer mapped the same
#              way, each library used once as a reload does), its context switches
#              (voluntary + involuntary, all threads) over an idle window, its RSS with the 100k
#              policy in force, and after two reloads back to the 10k policy (what a big reload
#              leaves behind).
#   events     refused flows (UDP sendto to a port no rule allows) as fast as the app can send,
#              and the agent's event counters in `carwall --json status` before and after, once
#              the agent has drained them (the drain time counts); "not available" while status
#              has no "events" field.
# Before the rounds a filter check proves each variant is what it claims: the refused port is
# reached with no filter and refused (EPERM) under carwall, nftables, the floor and floor+mark;
# in the rounds and in_kernel, an allowed flow refused (EPERM) under any variant stops the run.
#
# Output: FILE (default build/bench.json), the raw samples next to it (FILE with .raw.tsv), the
# agent's log less its per-event lines (FILE with .agent.log), a table and the targets on stdout.
# JSON schema ("schema": "carwall-bench/3"; /2 had no mark variant (floor+mark): no "mark" in
# filter_check, datapath, in_kernel and udp_connect_*_delta_ns, no ratio_to_mark, no
# carwall_to_mark; /1 had no floor, no empty program and raw in_kernel figures only):
#   run           {started_at, quick, rounds, measure_ms, policy_rules, apps, nproc, cpu, kernel,
#                  carwall, hooks, nft, policy_format, agent_args, duration_s, loadavg_start,
#                  loadavg_end, ...}: the machine, the settings, the other load on the machine
#   filter_check  {none, carwall, nftables, floor, mark}: what the refused port did in each variant
#   datapath      {TEST: {what, unit ("ns/op" or "MB/s"), ratio_meaning,
#                         measured_on, none|carwall|nftables|floor|mark: {median, min, max, n,
#                                                 [status], ratio, ratio_min, ratio_max (to
#                                                 none: the median, min and max of per-round
#                                                 ratios), delta_ns | delta_mb_s (median
#                                                 per-round difference), carwall:
#                                                 ratio_to_floor, ratio_to_mark (median of
#                                                 per-round carwall / floor, carwall / mark),
#                                                 target_ratio, target_met,
#                                                 wall_clock: {median, min, max, ratio}}}}
#                  TEST: tcp_connect_v4/v6, udp_sendto_v4/v6, udp_connect_v4/v6, tcp_bulk_v4/v6,
#                  resolve_connect_v4/v6 (none and carwall only; measured_on the wall clock)
#   in_kernel     {[status], method, rounds,
#                  empty: {programs: [{hook, program, runs, ns_per_run}]} (bpf_stats' own cost),
#                  carwall|floor|mark: {programs: [{hook, program, runs, ns_per_run, net_ns_per_run
#                                  (null when no empty program of that hook was measured)}],
#                                  decision_ns, decision_net_ns (connect/sendmsg programs
#                                  together), worst_program_net_ns,
#                                  per_op: {TEST: {ops, ns, net_ns}} (all programs per operation)},
#                  carwall_to_floor, carwall_to_mark: {HOOK: net ns per run ratio, decision,
#                                     per_op_TEST: ratio of net ns per operation},
#                  udp_connect_v4/v6_delta_ns: {carwall, floor, mark} (what each adds to a UDP
#                  connect() in the datapath rounds, without statistics: a cross-check),
#                  targets_ns: {sock_addr_program, sock_create, per_tcp_connection}}
#                  TEST here: tcp_connect_v4/v6, udp_sendto_v4/v6, udp_connect_v4/v6
#   reload        {[status], [agent_timing_status], sizes: [{rules, round_trip_ms: {median, min,
#                  max, n}, policy_check_ms: {...} (`carwall policy check` of the same file),
#                  libyaml_floor_ms (libyaml alone over the same policy), verify_floor_ms (one
#                  Ed25519 check of its bytes), floor_ms (the two together),
#                  agent_timing_us: {read|verify|parse|compile|apply|total|cpu: {median, ...}}}]}
#   agent         {pid, rss_kib, hwm_kib, rss_floor_kib, threads, idle_seconds, idle_wakeups,
#                  idle_wakeups_voluntary, idle_wakeups_involuntary, rss_100k_kib (the 100k
#                  policy in force), rss_after_reloads_kib (back to the 10k policy after it)}
#   events        {status} while not available; else {flood_seconds, seconds (flood and drain),
#                  attempts (refused sends), received (the agent's count), not_received,
#                  agent_cpu_seconds (the agent's CPU time over the same span), dropped (the
#                  agent's count, if status has one), rate_limit_per_app, received_per_s
#                  (received / seconds), received_per_agent_cpu_s (received / agent_cpu_seconds:
#                  the rate it keeps up with on a CPU of its own; the target is judged on it)}
#   targets       [{name, measured, target, status (met | missed | not measured...),
#                  missed_by, to_close}]
#
# Everything is made under unique names (cgroup carwall-bench-PID, netns cwb-PID-*, pin folders
# /sys/fs/bpf/carwall-bench-PID and -PID-floor, nft table carwall_bench_PID, a mktemp folder) and
# removed on exit, failure and Ctrl-C included. Traffic stays on loopback inside those
# namespaces. Every wait is bounded.
set -euo pipefail

top=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)

quick=${QUICK:-0}
kernel_only=0
kernel_rounds=5
out=$top/build/bench.json
bin=${CARWALL_BIN_DIR:-$top/build}

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

install_deps() {
	local p missing=()

	for p in nftables jq dnsmasq; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	[[ $(id -u) == 0 ]] || die "missing packages: ${missing[*]}; run as root or install them"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	--in-kernel)
		kernel_only=1
		if [[ ${2:-} =~ ^[0-9]+$ ]]; then
			kernel_rounds=$2
			shift
		fi
		;;
	--out)
		out=${2:?--out FILE}
		shift
		;;
	--bin-dir)
		bin=${2:?--bin-dir DIR}
		shift
		;;
	--install-deps)
		install_deps
		exit 0
		;;
	-h | --help)
		sed -n '4,12s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

if [[ $quick == 1 ]]; then
	# One untimed reload per size only: the first timed one still clears the smaller size
	# before it (good enough for a look; the full run fills both generations first).
	ROUNDS=8 MEASURE_MS=30 IDLE_S=2 EVENTS_MS=1000 RELOADS=1 RELOAD_WARM=1 KROUNDS=2
else
	# 30 rounds of 5 variants (the 5th, floor+mark, adds about 25 s to a full run).
	ROUNDS=30 MEASURE_MS=100 IDLE_S=10 EVENTS_MS=5000 RELOADS=7 RELOAD_WARM=2 KROUNDS=3
fi
POLICY_RULES=10000
RELOAD_SIZES="1000 10000 100000"
PORT=5000 # P: TCP accept, P+1: UDP sink, P+2: TCP bulk, P+3: refused (nothing listens)
BENCH_APP=app08
APPS=16
# Where AGL's systemd puts app units, below each variant's folder (the policy's default cgroups).
APP_SLICE='system.slice/system-agl\x2dapp.slice'

VARIANTS=(none carwall nftables floor mark)
# In-kernel run times: carwall's programs, the floor's, floor+mark's, and the empty programs (in
# cgroup empty/, netns of none): bpf_stats' own cost per run.
KVARIANTS=(carwall floor mark empty)
TESTS="tcp_connect:4 tcp_connect:6 udp_sendto:4 udp_sendto:6 udp_connect:4 udp_connect:6
tcp_bulk:4 tcp_bulk:6 resolve_connect:4 resolve_connect:6"
# resolve_connect: the app of the host-name rule (tests/bench/bench.c, BENCH_NAMES_APP_INDEX), its
# variants (the others have no host names), and the name dnsmasq answers.
NAMES_APP=app09
NAMES_VARIANTS=(none carwall)
NAMES_HOST=svc.bench.example
if ((kernel_only)); then
	# The filter check and in_kernel only: no datapath rounds, idle window, events or reloads.
	KROUNDS=$kernel_rounds MEASURE_MS=100 IDLE_S=0 TESTS= RELOAD_SIZES=
fi

[[ $(id -u) == 0 ]] || die "must run as root (network namespaces, cgroups, BPF)"
for t in ip nsenter jq awk sysctl mktemp; do
	command -v "$t" >/dev/null 2>&1 || die "required tool not found: $t (scripts/bench.sh --install-deps)"
done
BENCH=$bin/bench CARWALLD=$bin/carwalld CARWALL=$bin/carwall
for b in "$BENCH" "$CARWALLD" "$CARWALL"; do
	[[ -x $b ]] || die "$b not found: build with \`make all $bin/bench\` (or run \`make bench\`)"
done

# ---- state, and the cleanup that removes all of it ----------------------------------------------
ID=$$
NS_PREFIX=cwb-$ID
TABLE=carwall_bench_$ID
PIN_DIR=/sys/fs/bpf/carwall-bench-$ID
FLOOR_PIN=/sys/fs/bpf/carwall-bench-$ID-floor
TMP=
CG2=
ROOT=
AGENT_PID=
SERVER_PIDS=()
NETNS_MADE=()
STATS_OLD=
PIN_MADE=
FLOOR_MADE=
started=$(date +%s)
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)

alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# stop_pid PID: TERM, bounded wait, KILL, bounded wait, reap.
stop_pid() {
	local pid=$1 i

	alive "$pid" || {
		wait "$pid" 2>/dev/null || true
		return 0
	}
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? pid i d ns pids
	set +e
	trap - EXIT INT TERM HUP
	trap '' PIPE # a reader that went away must not stop the cleanup

	# The agent's log, less its one line per refused flow, is kept next to the JSON.
	if [[ -s ${TMP:-}/agent.log ]]; then
		grep -v ' event=refused ' "$TMP/agent.log" >"${out%.json}.agent.log"
		if ((rc != 0)); then
			log "the agent's log without its event lines (${out%.json}.agent.log), last 20 lines:"
			tail -n 20 "${out%.json}.agent.log" | sed 's/^/  /' >&2
		fi
	fi
	if [[ -n $STATS_OLD ]]; then
		sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
		STATS_OLD=
	fi
	[[ -n $AGENT_PID ]] && stop_pid "$AGENT_PID"
	for pid in "${SERVER_PIDS[@]}"; do
		stop_pid "$pid"
	done
	if [[ -n $PIN_MADE && -e $PIN_DIR ]]; then
		timeout 10 "$CARWALL" unload --pin-dir "$PIN_DIR" >/dev/null 2>&1
		[[ -e $PIN_DIR ]] && rm -rf -- "$PIN_DIR"
		[[ -e $PIN_DIR ]] && log "could not remove $PIN_DIR"
	fi
	# Unpinning the floor's, floor+mark's and the empty programs' links detaches them.
	if [[ -n $FLOOR_MADE && -e $FLOOR_PIN ]]; then
		rm -rf -- "$FLOOR_PIN"
		[[ -e $FLOOR_PIN ]] && log "could not remove $FLOOR_PIN"
	fi
	# Only ever our own subtree: kill what is left in it (never this shell), then rmdir.
	if [[ -n $ROOT && $ROOT == "$CG2"/carwall-bench-"$ID" && -d $ROOT ]]; then
		for ((i = 0; i < 30; i++)); do
			pids=$(find "$ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | grep -vx "$$")
			[[ -z $pids ]] && break
			for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
			sleep 0.1
		done
		for ((i = 0; i < 30; i++)); do
			while IFS= read -r d; do rmdir "$d" 2>/dev/null; done < <(find "$ROOT" -depth -type d)
			[[ -d $ROOT ]] || break
			sleep 0.1
		done
		[[ -d $ROOT ]] && log "could not remove cgroup $ROOT"
	fi
	for ns in "${NETNS_MADE[@]}"; do
		if [[ $ns == *-nftables ]] && command -v nft >/dev/null 2>&1; then
			nsenter --net="/run/netns/$ns" nft delete table inet "$TABLE" 2>/dev/null
		fi
		for ((i = 0; i < 30; i++)); do
			pids=$(ip netns pids "$ns" 2>/dev/null | grep -vx "$$")
			[[ -z $pids ]] && break
			for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
			sleep 0.1
		done
		ip netns del "$ns" 2>/dev/null || log "could not delete netns $ns"
	done
	[[ -n $TMP && -d $TMP && $TMP == */carwall-bench.* ]] && rm -rf -- "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE # `make bench | head` must not leave the sandbox behind

TMP=$(mktemp -d "${TMPDIR:-/tmp}/carwall-bench.XXXXXX")
RAW=$TMP/raw.tsv
: >"$RAW"
# raw FIELD...: one tab-separated line of raw results; an empty field is written "-".
raw() {
	local f fields=() IFS=$'\t'

	for f in "$@"; do fields+=("${f:--}"); done
	printf '%s\n' "${fields[*]}" >>"$RAW"
}

# ---- cgroups, bpffs, netns ------------------------------------------------------------------------
CG2=$(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
	/proc/self/mountinfo)
[[ -n $CG2 && -d $CG2 ]] || die "no cgroup2 file system mounted"
ROOT=$CG2/carwall-bench-$ID
if ! mkdir "$ROOT"; then
	ROOT= # not ours: cleanup leaves it alone
	die "cannot create cgroup $CG2/carwall-bench-$ID (left from an earlier run?)"
fi
# srv: the servers (no filter above them); none/, carwall/ (the agent's cgroup root; its app
# cgroups made here, as systemd makes a unit's: the agent registers the cgroup an app runs in),
# nftables/, floor/, mark/: one subtree per variant, the app cgroups at the same depth; empty/:
# the empty programs (in-kernel measurement only).
mkdir -p "$ROOT/srv" "$ROOT/none/$APP_SLICE/agl-app@$BENCH_APP.service" "$ROOT/carwall" \
	"$ROOT/none/$APP_SLICE/agl-app@$NAMES_APP.service" \
	"$ROOT/empty/$APP_SLICE/agl-app@$BENCH_APP.service"
for ((i = 0; i < APPS; i++)); do
	mkdir -p "$ROOT/nftables/$APP_SLICE/agl-app@$(printf 'app%02d' "$i").service" \
		"$ROOT/carwall/$APP_SLICE/agl-app@$(printf 'app%02d' "$i").service" \
		"$ROOT/floor/$APP_SLICE/agl-app@$(printf 'app%02d' "$i").service" \
		"$ROOT/mark/$APP_SLICE/agl-app@$(printf 'app%02d' "$i").service"
done
# The level of the app cgroups (the cgroup2 root is level 0).
rel=${ROOT#"$CG2"}
APP_LEVEL=$(($(tr -cd / <<<"$rel/nftables/$APP_SLICE/x" | wc -c)))

if ! awk '$5 == "/sys/fs/bpf" { for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "bpf") f = 1; break } }
	END { exit !f }' /proc/self/mountinfo; then
	mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs at /sys/fs/bpf"
fi
[[ ! -e $PIN_DIR ]] || die "$PIN_DIR exists (left from an earlier run?)"
[[ ! -e $FLOOR_PIN ]] || die "$FLOOR_PIN exists (left from an earlier run?)"

for v in "${VARIANTS[@]}"; do
	ip netns add "$NS_PREFIX-$v" || die "cannot create netns $NS_PREFIX-$v"
	NETNS_MADE+=("$NS_PREFIX-$v")
	ip -n "$NS_PREFIX-$v" link set lo up
done

# The empty programs' flows run in the netns of none (its servers), in a cgroup of their own.
netns_of() {
	local v=$1
	[[ $v == empty ]] && v=none
	printf '/run/netns/%s-%s' "$NS_PREFIX" "$v"
}
# cgroup_of VARIANT [APP]: the app's cgroup in that variant (app08 by default).
cgroup_of() { printf '%s/%s/%s/agl-app@%s.service' "$ROOT" "$1" "$APP_SLICE" "${2:-$BENCH_APP}"; }

# ---- servers -----------------------------------------------------------------------------------------
for v in "${VARIANTS[@]}"; do
	"$BENCH" serve --port "$PORT" --netns "$(netns_of "$v")" --cgroup "$ROOT/srv" \
		--max-seconds 3600 >"$TMP/serve-$v.out" 2>"$TMP/serve-$v.err" </dev/null &
	SERVER_PIDS+=($!)
done
for ((i = 0; i < 100; i++)); do
	n=0
	for v in "${VARIANTS[@]}"; do
		grep -qx ready "$TMP/serve-$v.out" 2>/dev/null && n=$((n + 1))
	done
	((n == ${#VARIANTS[@]})) && break
	sleep 0.05
done
((n == ${#VARIANTS[@]})) || die "servers not ready: $(cat "$TMP"/serve-*.err)"

# The resolver of resolve_connect: dnsmasq at 127.0.0.1:53 in the netns of none and of carwall,
# in the servers' cgroup, authoritative for the one name (TTL 300 s: no expiry during the run).
HAVE_DNS=0
if command -v dnsmasq >/dev/null 2>&1; then
	HAVE_DNS=1
	for v in "${NAMES_VARIANTS[@]}"; do
		(
			echo "$BASHPID" >"$ROOT/srv/cgroup.procs" &&
				exec nsenter --net="$(netns_of "$v")" dnsmasq --keep-in-foreground \
					--conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
					--listen-address=127.0.0.1 --port=53 --user=root --local-ttl=300 \
					--pid-file="$TMP/dnsmasq-$v.pid" \
					--host-record="$NAMES_HOST,127.0.0.1,::1"
		) </dev/null >"$TMP/dnsmasq-$v.out" 2>&1 &
		SERVER_PIDS+=($!)
	done
else
	raw meta resolve_connect "skipped: dnsmasq not installed (scripts/bench.sh --install-deps)"
fi

# ---- the policy, the agent -------------------------------------------------------------------------
# Production settings: where the agent takes only signed bundles, the policy is one, signed by a
# key made for this run and trusted through a folder of this run (the signing is not timed; the
# agent's verification is, as part of each reload). The per-app event rate limit is lifted where
# the agent has one: the events measurement is about what the agent keeps up with.
mkdir "$TMP/run" "$TMP/state"
AGENT_ARGS=()
agent_help=$("$CARWALLD" --help 2>&1 || true)
SIGNED=0
if [[ $agent_help == *--trust-dir* ]] && "$CARWALL" bundle --help >/dev/null 2>&1; then
	SIGNED=1
	"$CARWALL" bundle keygen --out "$TMP/bench" >/dev/null || die "carwall bundle keygen failed"
	install -d -m 0755 "$TMP/trust"
	install -m 0644 "$TMP/bench.pub" "$TMP/trust/bench.pem"
	AGENT_ARGS+=(--trust-dir "$TMP/trust" --target carwall-bench)
	[[ $agent_help == *--bundle-id* ]] && AGENT_ARGS+=(--bundle-id carwall.bench)
	POLICY_FORMAT="signed bundle (Ed25519, 1 signature)"
elif [[ $agent_help == *--developer-mode* ]]; then
	AGENT_ARGS+=(--developer-mode)
	POLICY_FORMAT="plain policy (--developer-mode)"
else
	POLICY_FORMAT="plain policy"
fi
[[ $agent_help == *--event-rate* ]] && AGENT_ARGS+=(--event-rate 0)
POLICY=$TMP/policy.yaml
((SIGNED)) && POLICY=$TMP/policy.bundle

# make_policy RULES REVISION OUT [bench policy options...]: the policy the agent reads (signed
# when SIGNED=1, its bundle version REVISION + 1, since versions only go up).
make_policy() {
	local rules=$1 rev=$2 out=$3
	shift 3
	if ((SIGNED)); then
		"$BENCH" policy --rules "$rules" --port "$PORT" --revision "$rev" --yaml "$out.payload" \
			--bundle-id carwall.bench --bundle-version "$((rev + 1))" \
			--bundle-target carwall-bench "$@" &&
			"$CARWALL" bundle sign --key "$TMP/bench.key" "$out.payload" -o "$out" >/dev/null &&
			rm -f "$out.payload"
	else
		"$BENCH" policy --rules "$rules" --port "$PORT" --revision "$rev" --yaml "$out" "$@"
	fi
}

log "generating the ${POLICY_RULES}-rule policy ($POLICY_FORMAT) and its nftables equivalent"
make_policy "$POLICY_RULES" 0 "$POLICY" --nft "$TMP/policy.nft" --nft-table "$TABLE" \
	--nft-level "$APP_LEVEL" --nft-cgroup "${ROOT#/sys/fs/cgroup/}/nftables/$APP_SLICE" ||
	die "could not make the policy"

PIN_MADE=1
"$CARWALLD" --policy "$POLICY" --cgroup-root "$ROOT/carwall" --pin-dir "$PIN_DIR" \
	--run-dir "$TMP/run" --state-dir "$TMP/state" "${AGENT_ARGS[@]}" \
	</dev/null >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
cw() { "$CARWALL" --run-dir "$TMP/run" "$@"; }
for ((i = 0; i < 200; i++)); do
	cw --json status >"$TMP/status.json" 2>/dev/null && break
	alive "$AGENT_PID" || break
	sleep 0.05
done
jq -e '.enforcing == true' "$TMP/status.json" >/dev/null 2>&1 ||
	die "the agent did not start enforcing: $(cat "$TMP/agent.log")"
HOOKS=$(jq -r '.hooks | join(",")' "$TMP/status.json")
HAS_EVENTS=$(jq -r 'has("events")' "$TMP/status.json")
log "agent $AGENT_PID enforcing at $ROOT/carwall: hooks $HOOKS; $(jq -r '.policy.rules' "$TMP/status.json") rules"

# ---- nftables ----------------------------------------------------------------------------------------
NFT_OK=0
NFT_VERSION=-
if ! command -v nft >/dev/null 2>&1; then
	raw status nftables_datapath "skipped: nft not installed (scripts/bench.sh --install-deps)"
elif [[ $ROOT != /sys/fs/cgroup/* ]]; then
	# nft resolves `socket cgroupv2` paths under /sys/fs/cgroup only.
	raw status nftables_datapath "skipped: the cgroup2 mount $CG2 is not under /sys/fs/cgroup, where nft looks"
else
	NFT_VERSION=$(nft --version | awk '{ print $2 }')
	t0=${EPOCHREALTIME/./}
	if nsenter --net="$(netns_of nftables)" nft -f "$TMP/policy.nft" 2>"$TMP/nft.err"; then
		NFT_OK=1
		raw meta nft_load_ms "$(((${EPOCHREALTIME/./} - t0) / 1000))"
	else
		raw status nftables_datapath "skipped: nft -f failed: $(head -c 300 "$TMP/nft.err" | tr '\n\t' '  ')"
	fi
fi

# ---- the floor, floor+mark and the empty programs ---------------------------------------------
log "loading the floor (one LPM lookup per decision), floor+mark and the empty programs"
FLOOR_MADE=1
"$BENCH" floor --rules "$POLICY_RULES" --port "$PORT" --revision 0 --apps "$ROOT/floor/$APP_SLICE" \
	--attach "$ROOT/floor" --mark-apps "$ROOT/mark/$APP_SLICE" --mark "$ROOT/mark" \
	--empty "$ROOT/empty" --pin-dir "$FLOOR_PIN" >"$TMP/floor.out" \
	2>"$TMP/floor.err" || die "could not load the floor: $(tail -n 5 "$TMP/floor.err")"
read -r _ floor4 floor6 <"$TMP/floor.out"
raw meta floor_prefixes "${floor4#*=} IPv4, ${floor6#*=} IPv6"

# ---- agent: steady RSS and idle wake-ups ----------------------------------------------------------------
ctxt() {
	cat /proc/"$AGENT_PID"/task/*/status 2>/dev/null |
		awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { s[$1] += $2 }
			END { printf "%d %d\n", s["voluntary_ctxt_switches:"], s["nonvoluntary_ctxt_switches:"] }'
}
status_kib() { awk -v k="$1:" '$1 == k { print $2 }' /proc/"$AGENT_PID"/status; }
sleep 1
log "agent idle for ${IDLE_S}s (context switches)"
read -r v0 n0 < <(ctxt)
sleep "$IDLE_S"
read -r v1 n1 < <(ctxt)
raw agent pid "$AGENT_PID"
raw agent rss_kib "$(status_kib VmRSS)"
raw agent hwm_kib "$(status_kib VmHWM)"
raw agent threads "$(find /proc/"$AGENT_PID"/task -mindepth 1 -maxdepth 1 | wc -l)"
# The floor below which no agent built like this one goes: the same libraries, the agent's ring
# buffer mapped the same way, each library used once (bench rss-floor).
if line=$("$BENCH" rss-floor "$PIN_DIR/maps/cw_events" 2>"$TMP/rss-floor.err"); then
	raw agent rss_floor_kib "$(sed -n 's/^rss_kib=\([0-9]*\) .*/\1/p' <<<"$line")"
else
	raw agent rss_floor_kib "-"
	log "bench rss-floor failed: $(head -c 200 "$TMP/rss-floor.err")"
fi
raw agent idle_seconds "$IDLE_S"
raw agent idle_wakeups "$((v1 - v0 + n1 - n0))"
raw agent idle_wakeups_voluntary "$((v1 - v0))"
raw agent idle_wakeups_involuntary "$((n1 - n0))"

# ---- one measurement ---------------------------------------------------------------------------------------
# client VARIANT TEST FAMILY MS [--count N] [--cgroup DIR]: runs the client in the variant's netns
# and app cgroup (app08's unless --cgroup names another); sets R_OPS R_EPERM R_ERR from its line.
# Returns the client's status.
client() {
	local line rc=0 kv

	line=$("$BENCH" client --test "$2" --family "$3" --port "$PORT" --ms "$4" \
		--netns "$(netns_of "$1")" --cgroup "$(cgroup_of "$1")" "${@:5}" 2>"$TMP/client.err") || rc=$?
	R_OPS=0 R_EPERM=0 R_ERR="$(head -c 200 "$TMP/client.err")"
	for kv in $line; do
		case $kv in
		ops=*) R_OPS=${kv#ops=} ;;
		eperm=*) R_EPERM=${kv#eperm=} ;;
		err=*) [[ ${kv#err=} == - ]] || R_ERR=${kv#err=} ;;
		esac
	done
	return "$rc"
}

variant_on() { [[ $1 != nftables || $NFT_OK == 1 ]]; }

# The agent must live through the whole run: its exit voids what follows.
agent_alive() { alive "$AGENT_PID" || die "the agent (pid $AGENT_PID) exited during the benchmark ($1)"; }

# ---- filter check: each variant is what it claims ------------------------------------------------------
for v in "${VARIANTS[@]}"; do
	variant_on "$v" || continue
	result=
	for fam in 4 6; do
		client "$v" udp_refused "$fam" 1000 --count 100 || true
		if [[ $v == none ]]; then
			((R_OPS > 0 && R_EPERM == 0)) ||
				die "no filter: the refused port should be reachable over IPv$fam (sent $R_OPS, EPERM $R_EPERM, $R_ERR)"
			result+="IPv$fam: $R_OPS of 100 datagrams sent, none refused; "
		else
			((R_EPERM > 0 && R_OPS == 0)) ||
				die "$v: the refused port should get EPERM over IPv$fam (sent $R_OPS, EPERM $R_EPERM, $R_ERR)"
			result+="IPv$fam: $R_EPERM of 100 datagrams refused (EPERM), none sent; "
		fi
	done
	raw check "$v" "${result%; }"
done
# resolve_connect: without a lookup, the address is refused under carwall (the host-name rule is
# what allows it) and reached with no filter; after one, both connect. The resolver may take a
# moment to start: bounded retries.
if ((HAVE_DNS)); then
	for v in "${NAMES_VARIANTS[@]}"; do
		result=
		for fam in 4 6; do
			client "$v" tcp_connect "$fam" 1000 --count 10 --cgroup "$(cgroup_of "$v" "$NAMES_APP")" || true
			if [[ $v == none ]]; then
				((R_OPS == 10)) || die "no filter: $NAMES_APP should connect over IPv$fam ($R_OPS of 10, EPERM $R_EPERM, $R_ERR)"
			else
				((R_EPERM == 10 && R_OPS == 0)) ||
					die "carwall: $NAMES_APP should be refused (EPERM) over IPv$fam before any lookup ($R_OPS connected, EPERM $R_EPERM, $R_ERR)"
			fi
			for ((i = 0; i < 50; i++)); do
				client "$v" resolve_connect "$fam" 1000 --count 10 --cgroup "$(cgroup_of "$v" "$NAMES_APP")" &&
					((R_OPS == 10)) && break
				sleep 0.1
			done
			((R_OPS == 10 && R_EPERM == 0)) ||
				die "$v: $NAMES_APP should resolve $NAMES_HOST and connect over IPv$fam ($R_OPS of 10, EPERM $R_EPERM, $R_ERR)"
			if [[ $v == none ]]; then
				result+="IPv$fam: connected without a lookup, and after one; "
			else
				result+="IPv$fam: refused (EPERM) without a lookup, connected after one; "
			fi
		done
		raw check "${v}_names" "${result%; }"
	done
fi
agent_alive "after the filter check"

# ---- datapath rounds ----------------------------------------------------------------------------------------
log "datapath: 10 tests x $ROUNDS rounds x up to ${#VARIANTS[@]} variants x ${MEASURE_MS} ms slices"
for tf in $TESTS; do
	test=${tf%:*} fam=${tf#*:}
	args=()
	if [[ $test == resolve_connect ]]; then
		((HAVE_DNS)) || continue
		for v in "${NAMES_VARIANTS[@]}"; do
			args+=(--variant "$v" --netns "$(netns_of "$v")" --cgroup "$(cgroup_of "$v" "$NAMES_APP")")
		done
	else
		for v in "${VARIANTS[@]}"; do
			variant_on "$v" || continue
			args+=(--variant "$v" --netns "$(netns_of "$v")" --cgroup "$(cgroup_of "$v")")
		done
	fi
	rc=0 samples=0
	"$BENCH" compare --test "$test" --family "$fam" --port "$PORT" --ms "$MEASURE_MS" \
		--rounds "$ROUNDS" "${args[@]}" >"$TMP/compare.out" 2>"$TMP/compare.err" || rc=$?
	while read -r line; do
		round='' variant='' value='' wall='' eperm='' errors='' err=''
		for kv in $line; do
			case $kv in
			round=*) round=${kv#*=} ;;
			variant=*) variant=${kv#*=} ;;
			value=*) value=${kv#*=} ;;
			wall=*) wall=${kv#*=} ;;
			eperm=*) eperm=${kv#*=} ;;
			errors=*) errors=${kv#*=} ;;
			err=*) err=${kv#*=} ;;
			esac
		done
		[[ $round =~ ^[0-9]+$ && -n $variant && -n $value && $eperm =~ ^[0-9]+$ &&
			$errors =~ ^[0-9]+$ ]] || die "unexpected line from bench compare: $line"
		((errors == 0)) || die "${test}_v$fam, $variant, round $round: $errors errors ($err)"
		# The flows are allowed ones: a variant that refuses them measures nothing.
		((eperm == 0)) || die "${test}_v$fam, $variant, round $round: $eperm allowed operations refused (EPERM)"
		raw dp "${test}_v$fam" "$variant" "$round" "$value" "$wall"
		[[ $value == - ]] || samples=$((samples + 1))
	done <"$TMP/compare.out"
	((samples > 0)) || die "${test}_v$fam: no slice completed an operation"
	((rc == 0)) || die "${test}_v$fam failed: $(tail -n 3 "$TMP/compare.out" "$TMP/compare.err")"
	log "${test}_v$fam done ($(($(date +%s) - started)) s)"
done
agent_alive "after the datapath rounds"

# ---- in-kernel cost per run -------------------------------------------------------------------------------
# Each flow in rounds, under carwall, the floor, floor+mark and the empty programs (the order
# rotating), with bpf_stats on; per run, the counters of that variant's pinned links before and
# after. No warm-up in the client, so that its operations are exactly the ones counted.
pins_of() {
	case $1 in
	carwall) printf '%s' "$PIN_DIR" ;;
	*) printf '%s/%s' "$FLOOR_PIN" "$1" ;;
	esac
}
"$BENCH" bpfstats "$PIN_DIR" >"$TMP/kstats0" 2>"$TMP/kstats.err" || true
if [[ ! -s $TMP/kstats0 ]]; then
	raw status in_kernel "not available: cannot read the programs of $PIN_DIR/links: $(head -c 200 "$TMP/kstats.err")"
else
	log "in-kernel: $KROUNDS rounds x 6 flows x ${#KVARIANTS[@]} variants x ${MEASURE_MS} ms with bpf_stats"
	raw meta kernel_rounds "$KROUNDS"
	STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
	for ((k = 0; k < KROUNDS; k++)); do
		for tf in tcp_connect:4 tcp_connect:6 udp_sendto:4 udp_sendto:6 udp_connect:4 udp_connect:6; do
			test=${tf%:*}_v${tf#*:}
			for ((j = 0; j < ${#KVARIANTS[@]}; j++)); do
				v=${KVARIANTS[(j + k) % ${#KVARIANTS[@]}]}
				"$BENCH" bpfstats "$(pins_of "$v")" >"$TMP/kstats0"
				client "$v" "${tf%:*}" "${tf#*:}" "$MEASURE_MS" --warmup-ms 0 ||
					die "in-kernel run $test under $v failed ($R_ERR)"
				((R_EPERM == 0)) || die "in-kernel run $test under $v: $R_EPERM allowed operations refused (EPERM)"
				"$BENCH" bpfstats "$(pins_of "$v")" >"$TMP/kstats1"
				raw kops "$v" "$test" "$R_OPS"
				# Same link, same program: the deltas.
				awk -F'\t' -v v="$v" -v t="$test" \
					'NR == FNR { c[$1] = $4; n[$1] = $5; p[$1] = $2; next }
					($1 in c) && p[$1] == $2 { printf "kernel\t%s\t%s\t%s\t%s\t%d\t%d\n", v, t, $1, $3, $4 - c[$1], $5 - n[$1] }' \
					"$TMP/kstats0" "$TMP/kstats1" >>"$RAW"
			done
		done
	done
	sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
	STATS_OLD=
fi

# ---- events ------------------------------------------------------------------------------------------------
agent_alive "before the events measurement"
# agent_cpu_ns: the agent's CPU time so far, all threads (/proc/PID/task/*/schedstat, in ns).
agent_cpu_ns() {
	cat /proc/"$AGENT_PID"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'
}

# events_json: the "events" object of `carwall --json status` ("" when there is none). Not
# `carwall stats`: its reply holds every rule and is larger than the CLI reads at 10k rules.
events_json() {
	local j

	j=$(cw --json status) || die "the agent does not answer \`carwall status\`: $j"
	jq -c '.events // empty' <<<"$j"
}
events_json >"$TMP/events.json"
if ((kernel_only)); then
	raw status events "not measured (--in-kernel)"
elif [[ ! -s $TMP/events.json ]]; then
	raw status events "not available: the agent has no event path yet"
else
	# Counter names are the agent's; the first one present is used.
	ev_received='.received // .seen // .total // .count'
	ev_dropped='.dropped // .dropped_since_load // .lost // .drops'
	r0=$(jq -r "$ev_received // empty" "$TMP/events.json")
	d0=$(jq -r "$ev_dropped // empty" "$TMP/events.json")
	if [[ ! $r0 =~ ^[0-9]+$ ]]; then
		raw status events "not available: the agent's \"events\" has none of the counters this benchmark reads (received, seen, total, count): $(head -c 200 "$TMP/events.json")"
	else
		log "events: refused flows for $EVENTS_MS ms as fast as app08 sends them"
		c0=$(agent_cpu_ns)
		t0=${EPOCHREALTIME/./}
		# No warm-up: every refused flow the agent sees is one of the attempts counted.
		client carwall udp_refused 4 "$EVENTS_MS" --warmup-ms 0 || true
		attempts=$R_EPERM
		# The agent drains what is queued: poll (bounded) until its count stops moving; the
		# time it took counts, so that the rate is what the agent sustained.
		prev=-1 t_last=$t0
		for ((i = 0; i < 150; i++)); do
			events_json >"$TMP/events.json"
			r1=$(jq -r "$ev_received // empty" "$TMP/events.json")
			[[ $r1 == "$prev" ]] && break
			prev=$r1 t_last=${EPOCHREALTIME/./}
			sleep 0.2
		done
		c1=$(agent_cpu_ns)
		d1=$(jq -r "$ev_dropped // empty" "$TMP/events.json")
		raw events flood_seconds "$(awk -v m="$EVENTS_MS" 'BEGIN { printf "%.3f", m / 1000 }')"
		raw events seconds "$(awk -v u="$((t_last - t0))" 'BEGIN { printf "%.3f", u / 1e6 }')"
		raw events attempts "$attempts"
		raw events received "$((r1 - r0))"
		raw events not_received "$((attempts - (r1 - r0)))"
		# The agent's CPU time meanwhile: what an event costs it, whatever else ran.
		raw events agent_cpu_seconds "$(awk -v n="$((c1 - c0))" 'BEGIN { printf "%.3f", n / 1e9 }')"
		if [[ $d0 =~ ^[0-9]+$ && $d1 =~ ^[0-9]+$ ]]; then
			raw events dropped "$((d1 - d0))"
		else
			raw events dropped "-"
		fi
		raw events rate_limit_per_app "$(jq -r '.rate_limit_per_app // "-"' "$TMP/events.json")"
	fi
fi

# ---- reload ------------------------------------------------------------------------------------------------
# Each reload installs a new revision of the policy (one rule differs), so that an agent that skips
# an unchanged file still does the whole work; the timed span runs from the rename of the file to
# the reply of `carwall reload`, whichever of the two (the request, or the agent's own file watch)
# made it reload. The reply must name the new file's sha256.
have_timing=0
rev=0
for size in $RELOAD_SIZES; do
	log "reload: $size rules"
	agent_alive "before reloading $size rules"
	for ((i = 0; i < RELOAD_WARM + RELOADS; i++)); do
		rev=$((rev + 1))
		make_policy "$size" "$rev" "$TMP/policy.next" || die "could not make the policy"
		# The reply names the file's sha256, or its payload's for a bundle.
		sha=$(sha256sum "$TMP/policy.next" | awk '{ print $1 }')
		psha=$(sed '/^#carwall-signatures v1$/,$d' "$TMP/policy.next" | sha256sum | awk '{ print $1 }')
		t0=${EPOCHREALTIME/./}
		mv -f "$TMP/policy.next" "$POLICY"
		if ! cw --json reload >"$TMP/reload.json" 2>&1; then
			raw status reload "failed at $size rules: $(jq -r '.error // empty' "$TMP/reload.json" 2>/dev/null | head -c 300)"
			break 2
		fi
		t1=${EPOCHREALTIME/./}
		got=$(jq -r '.policy.sha256' "$TMP/reload.json")
		if [[ $got != "$sha" && $got != "$psha" ]]; then
			raw status reload "failed at $size rules: the reply names another policy than the one installed"
			break 2
		fi
		((i < RELOAD_WARM)) && continue
		phases=$(jq -r '[.timing_us // {} | (.read, .verify, .parse, .compile, .apply, .total, .cpu)
			| if type == "number" then tostring else "-" end] | join("\t")' "$TMP/reload.json")
		[[ $phases == *[0-9]* ]] && have_timing=1
		printf 'reload\t%s\t%s\t%s\n' "$size" "$((t1 - t0))" "$phases" >>"$RAW"
	done
	# The floor of a reload of it: libyaml alone reading its events (the plain policy, as the
	# bundle's payload is), and one Ed25519 check of its bytes.
	if "$BENCH" policy --rules "$size" --port "$PORT" --revision "$rev" --yaml "$TMP/floor.yaml" &&
		line=$("$BENCH" yaml-floor "$TMP/floor.yaml"); then
		printf 'reload_floor\t%s\t%s\t%s\n' "$size" "$(sed -n 's/^us=\([0-9]*\) .*/\1/p' <<<"$line")" \
			"$(sed -n 's/.* verify_us=\([0-9]*\)$/\1/p' <<<"$line")" >>"$RAW"
	fi
	rm -f "$TMP/floor.yaml"
	# The same file through `carwall policy check` (read, parse, compile; no map, no agent):
	# what is left of the reload is writing the maps and the flip.
	for ((i = 0; i < (RELOADS + 1) / 2; i++)); do
		t0=${EPOCHREALTIME/./}
		"$CARWALL" policy check "$POLICY" >/dev/null 2>&1 || break
		t1=${EPOCHREALTIME/./}
		printf 'reload_check\t%s\t%s\n' "$size" "$((t1 - t0))" >>"$RAW"
	done
done
((kernel_only)) && raw status reload "not measured (--in-kernel)"
((have_timing || kernel_only)) ||
	raw status reload_timing "agent timing not available: the reload reply has no timing_us yet"
raw agent rss_100k_kib "$(status_kib VmRSS)"
# Back to the 10k policy, twice (both generations then hold it): what a big reload leaves behind.
for ((i = 0; i < 2; i++)); do
	rev=$((rev + 1))
	make_policy "$POLICY_RULES" "$rev" "$TMP/policy.next" || die "could not make the policy"
	mv -f "$TMP/policy.next" "$POLICY"
	cw --json reload >"$TMP/reload.json" 2>&1 ||
		die "reload back to $POLICY_RULES rules failed: $(jq -r '.error // empty' "$TMP/reload.json" 2>/dev/null | head -c 300)"
done
raw agent rss_after_reloads_kib "$(status_kib VmRSS)"

# ---- the report ----------------------------------------------------------------------------------------------
raw meta started_at "$(date -u -d "@$started" +%Y-%m-%dT%H:%M:%SZ)"
raw meta quick "$quick"
raw meta rounds "$ROUNDS"
raw meta measure_ms "$MEASURE_MS"
raw meta policy_rules "$POLICY_RULES"
raw meta apps "$APPS"
raw meta bench_app "$BENCH_APP"
raw meta nproc "$(nproc)"
raw meta cpu "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo || echo unknown)"
raw meta kernel "$(uname -r)"
raw meta carwall "$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
raw meta hooks "$HOOKS"
raw meta nft "$NFT_VERSION"
raw meta events_in_agent "$HAS_EVENTS"
raw meta agent_args "${AGENT_ARGS[*]:--}"
raw meta policy_format "$POLICY_FORMAT"
raw meta duration_s "$(($(date +%s) - started))"
# Other load on the machine: the CPU-time figures resist it, the wall-clock ones do not.
raw meta loadavg_start "$loadavg_start"
raw meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p "$(dirname -- "$out")"
cp "$RAW" "${out%.json}.raw.tsv"
"$BENCH" report "$RAW" "$out"
