#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Hot reload and the fail-closed lifecycle on the real kernel: reload triggers (carwall reload,
# SIGHUP, the file changing, an editor's write-then-rename), bad policies that leave the last
# good one in force, no valid policy at start, app cgroups created after the agent started, a
# restart that swaps the programs in without a window, hundreds of reloads under traffic, and
# what an unprivileged process inside an app cannot do.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

sandbox_create "cw-r$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
app_slice="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice"
app_cg="$app_slice/agl-app@mediaplayer.service"

# Version A and B both allow the OEM backend on 443 and neither allows the tracker on 443;
# A alone allows the map server on 8443, B alone the tracker on 9000.
policy_a() {
	cat <<'EOF'
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20, 2001:db8:51::20]
        ports: [443]
        proto: tcp
      - to: [198.51.100.80]
        ports: [8443]
        proto: tcp
  navigation:
    allow:
      - to: [198.51.100.80]
        ports: [8443]
EOF
}
policy_b() {
	cat <<'EOF'
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20, 2001:db8:51::20]
        ports: [443]
        proto: tcp
      - to: [203.0.113.7]
        ports: [9000]
        proto: tcp
  navigation:
    allow:
      - to: [198.51.100.80]
        ports: [8443]
EOF
}
policy_a >"$SANDBOX_DIR/a.yaml"
policy_b >"$SANDBOX_DIR/b.yaml"
sha_a=$(sha256sum "$SANDBOX_DIR/a.yaml" | cut -d' ' -f1)
sha_b=$(sha256sum "$SANDBOX_DIR/b.yaml" | cut -d' ' -f1)

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }

# in_cgroup CGROUP CMD...: CMD in the head-unit netns, inside CGROUP (made if missing).
in_cgroup() {
	local cg=$1
	shift
	mkdir -p "$cg"
	sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

# probe CGROUP ADDR PORT: one TCP flow from CGROUP, judged at both ends. Returns 0 when it
# completed (the echo came back and the server logged its token), 1 when it was refused
# (flowprobe's result=EPERM at connect and no trace of it at the server), 2 for anything else
# (a time-out is no refusal); prints the verdict and, for 2, flowprobe's output.
probe() {
	local out token="p$BASHPID-${EPOCHREALTIME/./}" # unique, in $(...) too
	out=$(in_cgroup "$1" "$FLOWPROBE" tcp "$2" "$3" --timeout-ms 1000 --token "$token" 2>&1)
	sandbox_judge "$out" "$token" tcp "$3"
}

# expect_flows NAME OEM443 MAPS8443 TRACKER9000 TRACKER443: expected verdicts (ok, EPERM) of the
# app's flows.
expect_flows() {
	local name=$1 got
	got="$(probe "$app_cg" 198.51.100.20 443) $(probe "$app_cg" 198.51.100.80 8443)"
	got+=" $(probe "$app_cg" 203.0.113.7 9000) $(probe "$app_cg" 203.0.113.7 443)"
	if [[ $got == "$2 $3 $4 $5" ]]; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "oem:443 maps:8443 tracker:9000 tracker:443 = $got, want $2 $3 $4 $5"
	fi
}

# wait_sha SHA: bounded wait until the agent reports that policy in force.
wait_sha() {
	local i
	for ((i = 0; i < 100; i++)); do
		cw --json status 2>/dev/null | grep -q "\"sha256\": \"$1\"" && return 0
		sleep 0.05
	done
	return 1
}

# ---- control: without carwall every flow works ----------------------------------------------
expect_flows "control, no enforcement: all four flows reach their servers from the app's cgroup" ok ok ok ok

# ---- reload triggers ---------------------------------------------------------------------------
cp "$SANDBOX_DIR/a.yaml" "$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
expect_flows "policy A: OEM and maps allowed, tracker refused" ok ok EPERM EPERM

# `carwall reload` (the file is replaced first; inotify may also fire, the reload must still answer)
cp "$SANDBOX_DIR/b.yaml" "$policy"
tap_check "carwall reload succeeds" cw reload
tap_check "status names policy B after carwall reload" wait_sha "$sha_b"
expect_flows "after carwall reload to B: tracker:9000 allowed, maps:8443 refused" ok EPERM ok EPERM

tap_check "carwall reload --json reports the time of each step" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json reload | grep -q '\"compile\":'"

# SIGHUP
cat "$SANDBOX_DIR/a.yaml" >"$policy"
kill -HUP "$SANDBOX_AGENT_PID"
tap_check "SIGHUP reloads (policy A in force)" wait_sha "$sha_a"
expect_flows "after SIGHUP to A: maps allowed, tracker:9000 refused" ok ok EPERM EPERM

# An editor's write-then-rename, noticed by inotify.
cp "$SANDBOX_DIR/b.yaml" "$SANDBOX_DIR/.policy.yaml.swp"
mv "$SANDBOX_DIR/.policy.yaml.swp" "$policy"
tap_check "a write-then-rename of the policy file is reloaded by itself" wait_sha "$sha_b"
expect_flows "after the rename to B: policy B enforced" ok EPERM ok EPERM

# A write in place, noticed by inotify.
cat "$SANDBOX_DIR/a.yaml" >"$policy"
tap_check "a write in place of the policy file is reloaded by itself" wait_sha "$sha_a"

# ---- bad policies leave the last good one in force ---------------------------------------------
bad_policies=(
	"YAML syntax error|version: 1\napps:\n  mediaplayer:\n\tallow: []\n|:4:1: "
	"unknown key|version: 1\napps:\n  mediaplayer:\n    allw: []\n|:4:5: "
	"bad CIDR|version: 1\napps:\n  mediaplayer:\n    allow:\n      - to: [198.51.100.0/33]\n|:5:14: "
	"bad port|version: 1\napps:\n  mediaplayer:\n    allow:\n      - to: [198.51.100.20]\n        ports: [70000]\n|:6:17: "
	"unknown set|version: 1\napps:\n  mediaplayer:\n    allow:\n      - to: oem\n|:5:13: "
	"duplicate app|version: 1\napps:\n  mediaplayer:\n    allow: []\n  mediaplayer:\n    allow: []\n|:5:3: "
)
for b in "${bad_policies[@]}"; do
	IFS='|' read -r what content where <<<"$b"
	# Written to a side file, then swapped in by rename: the agent sees only whole files.
	printf "$content" >"$SANDBOX_DIR/bad.tmp"
	mv "$SANDBOX_DIR/bad.tmp" "$policy"
	out=$(cw reload 2>&1)
	rc=$?
	if [[ $rc -eq 1 && $out == *"$policy$where"* ]]; then
		tap_ok "bad policy ($what): carwall reload fails with file:line:column"
	else
		tap_not_ok "bad policy ($what): carwall reload fails with file:line:column" "exit $rc: $out"
	fi
	tap_check "bad policy ($what): status shows the error" \
		bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"last_error\": \"$policy$where'"
	expect_flows "bad policy ($what): policy A still enforced" ok ok EPERM EPERM
done
rm -f "$policy"
tap_expect_exit "a missing policy file is refused" 1 cw reload
truncate -s 17M "$policy"
tap_expect_exit "an oversized policy file is refused before it is read" 1 cw reload
expect_flows "after the missing and oversized files: policy A still enforced" ok ok EPERM EPERM
cat "$SANDBOX_DIR/a.yaml" >"$policy"
tap_check "a good policy clears the error" bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' reload && '$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | grep -q '\"last_error\": null'"

# ---- app cgroups created after the agent started ----------------------------------------------
# systemd removes a unit's cgroup when it stops and makes a new one when it starts again. The
# guard refuses such a cgroup everything until the agent registered it. To see the guard and
# not a registration that was quick, the cgroup is made while no agent runs (the pins enforce
# on) and probed towards the OEM backend, which the app's policy allows.
sandbox_agent_stop
rmdir "$app_cg" 2>/dev/null
tap_check "the app's cgroup could be removed (as when its unit stops)" test ! -d "$app_cg"
mkdir "$app_cg"
tap_expect_exit "guard: a new app cgroup not yet registered is refused even the OEM backend its app may reach" \
	1 probe "$app_cg" 198.51.100.20 443
tap_check "control: outside the guard, an unregistered cgroup reaches the OEM backend" \
	probe "$SANDBOX_CGROUP_ROOT/system.slice/other.service" 198.51.100.20 443
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
expect_flows "an agent that starts registers the new cgroup as mediaplayer" ok ok EPERM EPERM
# With the agent running, a recreated cgroup is registered by itself (inotify).
rmdir "$app_cg" 2>/dev/null
mkdir "$app_cg"
rc=1
for ((i = 0; i < 100; i++)); do
	probe "$app_cg" 198.51.100.20 443 >/dev/null && { rc=0; break; }
	sleep 0.02
done
tap_expect_exit "the recreated cgroup is registered as mediaplayer by itself (OEM:443 allowed)" 0 test $rc -eq 0
expect_flows "the recreated cgroup gets mediaplayer's policy" ok ok EPERM EPERM
tap_expect_exit "an unknown app below the guard is refused everything" 1 \
	probe "$app_slice/agl-app@unknown.service" 198.51.100.20 443
tap_check "a cgroup outside the guard that no policy names is not judged" \
	probe "$SANDBOX_CGROUP_ROOT/system.slice/other.service" 203.0.113.7 443

# ---- revocation: a reload cuts the established flows it no longer allows -----------------------
# The streams hold until the test stops them (600 s only bounds a leftover): under emulation a
# bounded hold can end by itself before the checks after the reload.
in_cgroup "$app_cg" "$FLOWPROBE" hold 198.51.100.20 443 --hold-ms 600000 --token "both$$" \
	>"$SANDBOX_DIR/hold-both.out" 2>&1 &
hold_both=$!
in_cgroup "$app_cg" "$FLOWPROBE" hold 198.51.100.80 8443 --hold-ms 600000 --token "aonly$$" \
	>"$SANDBOX_DIR/hold-a.out" 2>&1 &
hold_a=$!
up=0
for ((i = 0; i < 100; i++)); do
	grep -q established "$SANDBOX_DIR/hold-both.out" && grep -q established "$SANDBOX_DIR/hold-a.out" && { up=1; break; }
	sleep 0.05
done
tap_check "control: two established streams from the app under policy A" test $up -eq 1
# pid=P of flowprobe's "established" line: where the marker signal goes.
hold_pid() { sed -n 's/^established .*pid=\([0-9]*\).*/\1/p' "$1"; }
pid_both=$(hold_pid "$SANDBOX_DIR/hold-both.out")
pid_a=$(hold_pid "$SANDBOX_DIR/hold-a.out")
both_deliver() { sandbox_hold_marker "$pid_both" "both$$" 1 && sandbox_hold_marker "$pid_a" "aonly$$" 1; }
tap_check "control: both streams deliver under policy A (a marker from each reaches the server)" \
	both_deliver
cat "$SANDBOX_DIR/b.yaml" >"$policy"
cw reload >/dev/null
cut=0
for ((i = 0; i < 40; i++)); do
	grep -q 'result=' "$SANDBOX_DIR/hold-a.out" && { cut=1; break; }
	sleep 0.05
done
tap_diag "stream B refuses: $(tail -1 "$SANDBOX_DIR/hold-a.out")"
tap_check "the stream policy B refuses is cut within 2 s of the reload" \
	bash -c "[ $cut -eq 1 ] && grep -q 'result=ECONN' '$SANDBOX_DIR/hold-a.out'"
tap_check "the stream both policies allow stays up" bash -c "! grep -q result= '$SANDBOX_DIR/hold-both.out'"
tap_check "the stream both policies allow still delivers: a marker sent after the reload reaches the server" \
	sandbox_hold_marker "$pid_both" "both$$" 2
tap_check "the stream both policies allow was never cut (no result until the test stops it)" \
	bash -c "! grep -q result= '$SANDBOX_DIR/hold-both.out'"
for pid in "$pid_a" "$pid_both"; do
	[[ -n $pid ]] && kill "$pid" 2>/dev/null
done
wait "$hold_a" "$hold_both" 2>/dev/null
tap_check "the agent logged the cut" grep -q "Cut 1 established flows" "$SANDBOX_DIR/agent.log"
cat "$SANDBOX_DIR/a.yaml" >"$policy"
cw reload >/dev/null

# ---- restart and program upgrade without a window --------------------------------------------
prog_id() { bpftool link show pinned "$SANDBOX_PIN_DIR/links/connect4" 2>/dev/null | sed -n 's/.*prog \([0-9]*\).*/\1/p'; }
id_before=$(prog_id)
in_cgroup "$app_cg" bash -c "for i in \$(seq 400); do '$FLOWPROBE' tcp 203.0.113.7 443 --timeout-ms 300 --token rst$$-\$i; done" >"$SANDBOX_DIR/restart.rc" 2>/dev/null &
loop_pid=$!
sleep 0.2
sandbox_agent_stop
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
wait "$loop_pid"
id_after=$(prog_id)
tap_check "a restarted agent swaps new programs into the pinned links" \
	test -n "$id_before" -a -n "$id_after" -a "$id_before" != "$id_after"
# server_count PREFIX: the server's log lines whose token starts with PREFIX.
server_count() { awk -v p="$1" 'index($4, p) == 1 { n++ } END { print n + 0 }' "$SANDBOX_SERVER_LOG"; }
n_eperm=$(grep -c '^result=EPERM stage=connect ' "$SANDBOX_DIR/restart.rc")
n_arrived=$(server_count "rst$$-")
if [[ $n_eperm -eq 400 && $n_arrived -eq 0 ]]; then
	tap_ok "no flow got through while the agent restarted (400 of 400 refused at connect, none arrived)"
else
	tap_not_ok "no flow got through while the agent restarted" \
		"$n_eperm of 400 refused at connect, $n_arrived arrived at the server" \
		"$(grep -v '^result=EPERM stage=connect ' "$SANDBOX_DIR/restart.rc" | sort | uniq -c | head)"
fi

# ---- hundreds of reloads under traffic ---------------------------------------------------------
# Workers keep opening flows that both versions allow, that neither allows, and that one of
# them allows, while the policy flips between A and B.
# Each flow's result line goes to OUT (its token is NAME$$-i).
worker() { # CGROUP ADDR PORT OUT NAME
	in_cgroup "$1" bash -c "for i in \$(seq 2000); do [ -e '$SANDBOX_DIR/stop' ] && break; '$FLOWPROBE' tcp $2 $3 --timeout-ms 1000 --token $5$$-\$i; done" >"$4" 2>/dev/null
}
# What carwall says it refused, from the programs' counters (since the agent started) and the
# agent: "EMITTED RECEIVED DROPPED", the events the programs sent, those the agent read, and
# the refusals the programs could not report (rate limit, full ring buffer).
event_counts() {
	cw --json stats | python3 -c 'import json, sys
s = json.load(sys.stdin)
c = [a["since_start"] for a in s["apps"]]
print(sum(x["refused"] + x["audited"] - x["events_dropped"] for x in c), s["events"]["received"],
      sum(x["events_dropped"] for x in c))'
}
# The server's time waiting for a CPU, in ms.
server_runq_ms() { awk '{ printf "%d", $2 / 1000000 }' "/proc/$SANDBOX_SERVER_PID/schedstat" 2>/dev/null; }
read -r emitted0 received0 dropped0 < <(event_counts)
runq0=$(server_runq_ms)
since=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
rm -f "$SANDBOX_DIR/stop"
# Navigation names no template: the agent makes none of its three cgroups, the worker makes one.
# Below the guard, a new cgroup is refused everything until the agent has registered it, so the
# worker waits for that first, as an AGL app unit does (ExecStartPre=carwall app wait-managed).
nav_cg="$app_slice/agl-app@navigation.service"
nav_registered() {
	in_cgroup "$nav_cg" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --json app wait-managed --timeout 10 |
		grep -q '"app":"navigation"'
}
tap_check "control: navigation's new cgroup is registered as navigation before its flows start" \
	nav_registered
worker "$app_cg" 198.51.100.20 443 "$SANDBOX_DIR/both.rc" wboth &
w1=$!
worker "$app_cg" 203.0.113.7 443 "$SANDBOX_DIR/neither.rc" wneither &
w2=$!
worker "$app_cg" 203.0.113.7 9000 "$SANDBOX_DIR/bonly.rc" wbonly &
w3=$!
worker "$nav_cg" 198.51.100.80 8443 "$SANDBOX_DIR/nav.rc" wnav &
w4=$!
# 300 reloads; 100 under emulation (CARWALL_VM=1), where each takes ten times longer.
n_reloads=$([[ -n ${CARWALL_VM:-} ]] && echo 100 || echo 300)
reloads=0 reload_fail=0
for ((i = 0; i < n_reloads; i++)); do
	if ((i % 2)); then cat "$SANDBOX_DIR/a.yaml" >"$policy.tmp"; else cat "$SANDBOX_DIR/b.yaml" >"$policy.tmp"; fi
	mv "$policy.tmp" "$policy"
	cw reload >/dev/null 2>&1 || reload_fail=$((reload_fail + 1))
	reloads=$((reloads + 1))
done
touch "$SANDBOX_DIR/stop"
wait $w1 $w2 $w3 $w4
runq1=$(server_runq_ms)
# Every event the programs sent during the reloads is read (and logged) by the agent.
for ((i = 0; i < 50; i++)); do
	read -r emitted received dropped < <(event_counts)
	((received - received0 >= emitted - emitted0)) && break
	sleep 0.1
done
lines() { wc -l <"$1"; }
# classify FILE NAME: the class of each flow of a worker (line i of FILE is the flow of token
# NAME$$-i), one a line: ok (the echo came back and the server logged the token), EPERM (refused
# at connect, and the server saw nothing of it), ECONNABORTED (cut by a reload), late, or the
# result line itself. Late: the flow ran out of time and lost nothing: it timed out with none of
# its packets sent again and its SYN and every byte it wrote acknowledged by the server's kernel
# (retrans=0 unacked=0 outq=0; a packet the egress program drops leaves its bytes unsent, in
# outq), or flowprobe ran so late that it wrote after the 3 s the server waits for a line (the
# server's reset then, with retrans=0, after 3 s).
classify() {
	awk -v name="$2$$-" -v srv="$SANDBOX_SERVER_LOG" '
		BEGIN { while ((getline l < srv) > 0) { split(l, f, " "); seen[f[4]] = 1 } }
		{
			t = name NR; us = $3; sub(/^us=/, "", us); us += 0
			if (/^result=ok stage=recv /) print (t in seen) ? "ok" : "ok-unlogged: " $0
			else if (/^result=EPERM stage=connect /) print (t in seen) ? "EPERM-logged: " $0 : "EPERM"
			else if (/^result=ECONNABORTED /) print "ECONNABORTED"
			else if (/^result=ETIMEDOUT .* retrans=0 unacked=0 outq=0( |$)/ ||
				 (/^result=ECONNRESET .* retrans=0 / && us >= 3000000)) print "late"
			else print $0
		}' "$1"
}
# count CLASS FILE NAME
count() { classify "$2" "$3" | grep -cx "$1"; }
tap_check "$n_reloads reloads between A and B all succeeded" test "$reload_fail" -eq 0
tap_diag "flows during the reloads: both-allow $(lines "$SANDBOX_DIR/both.rc"), neither $(lines "$SANDBOX_DIR/neither.rc"), B-only $(lines "$SANDBOX_DIR/bonly.rc"), navigation $(lines "$SANDBOX_DIR/nav.rc")"
for w in both:wboth neither:wneither bonly:wbonly nav:wnav; do
	tap_diag "${w%:*}: $(classify "$SANDBOX_DIR/${w%:*}.rc" "${w#*:}" | sed 's/ us=.*//' | sort | uniq -c | tr '\n' ';')"
done
tap_check "flows ran during the reloads (at least 50 per worker)" \
	test "$(lines "$SANDBOX_DIR/both.rc")" -ge 50 -a "$(lines "$SANDBOX_DIR/neither.rc")" -ge 50
# Carwall's own evidence: every refusal, by a connect hook or a packet the egress program drops,
# is counted and reported, and the agent logs the first of each kind (app cgroup, destination,
# hook, verdict) at once. None of a destination both versions allow (whatever app or guard the
# event names), and none unreported, or not read by the agent.
no_allowed_refusals() {
	local refused

	refused=$("$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json | python3 -c 'import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r["last"] >= sys.argv[1] and (r["dst"], r["port"]) in (("198.51.100.20", 443), ("198.51.100.80", 8443)):
        print(line, end="")' "$since")
	if [[ -n $refused ]]; then
		echo "refused: $refused"
		return 1
	fi
	if ((dropped != dropped0)); then
		echo "$((dropped - dropped0)) refusals not reported (rate limit or full ring buffer)"
		return 1
	fi
	if ((received - received0 < emitted - emitted0)); then
		echo "the agent read $((received - received0)) of the $((emitted - emitted0)) events sent"
		return 1
	fi
}
tap_check "carwall refused nothing both versions allow during the reloads: no refusal of the OEM backend or the maps server reported, none unreported" \
	no_allowed_refusals
# flows CLASS: "WORKER: RESULT LINE" of each flow of the workers in that class (late), or in
# none of ok, EPERM, ECONNABORTED and late (-).
flows() {
	local w

	for w in both:wboth neither:wneither bonly:wbonly nav:wnav; do
		paste <(classify "$SANDBOX_DIR/${w%:*}.rc" "${w#*:}") "$SANDBOX_DIR/${w%:*}.rc" |
			awk -F'\t' -v w="${w%:*}" -v c="$1" '
				(c == "late" && $1 == "late") ||
				(c == "-" && $1 !~ /^(ok|EPERM|ECONNABORTED|late)$/) { print w ": " $2 }'
	done
}
# A flow that ran out of time with nothing lost is the machine's load, not carwall (which
# refused nothing both versions allow, above): said, with its evidence, not counted as a
# failure. runq_ms: how long its flowprobe waited for a CPU.
late=$(flows late)
if [[ -n $late ]]; then
	tap_diag "$(wc -l <<<"$late") flows ran out of time with nothing lost (load $(cut -d' ' -f1-3 /proc/loadavg); the server waited $((runq1 - runq0)) ms for a CPU during the reloads):" \
		"$(head -10 <<<"$late")"
fi
other=$(flows -)
[[ -z $other ]] || tap_diag "flows that ended otherwise:" "$(head -10 <<<"$other")"
# Every flow ends as allowed, refused, cut or late: another error is a failure, not noise.
tap_check "every flow both versions allow completed and reached the server, or ran out of time with nothing lost" \
	test "$(($(count ok "$SANDBOX_DIR/both.rc" wboth) + $(count late "$SANDBOX_DIR/both.rc" wboth)))" \
	-eq "$(lines "$SANDBOX_DIR/both.rc")"
tap_check "every flow neither version allows was refused at connect, none reached the server" \
	test "$(count EPERM "$SANDBOX_DIR/neither.rc" wneither)" -eq "$(lines "$SANDBOX_DIR/neither.rc")"
tap_check "every flow of the other app, which both versions allow, completed, or ran out of time with nothing lost" \
	test "$(($(count ok "$SANDBOX_DIR/nav.rc" wnav) + $(count late "$SANDBOX_DIR/nav.rc" wnav)))" \
	-eq "$(lines "$SANDBOX_DIR/nav.rc")"
# B-only flows that B allowed are cut when a reload puts A back (ECONNABORTED at any stage): that
# is revocation, not a failure; a refused flow the server saw is.
tap_check "the flow only B allows was allowed, refused at connect (the server saw none), cut by a reload or late, nothing else" \
	test "$(classify "$SANDBOX_DIR/bonly.rc" wbonly | grep -cvx 'ok\|EPERM\|ECONNABORTED\|late')" -eq 0
tap_check "the flow only B allows was both allowed and refused along the way" \
	test "$(count ok "$SANDBOX_DIR/bonly.rc" wbonly)" -gt 0 -a "$(count EPERM "$SANDBOX_DIR/bonly.rc" wbonly)" -gt 0

# ---- what an unprivileged process inside an app cannot do -------------------------------------
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
other_cg="$SANDBOX_CGROUP_ROOT/system.slice/other.service"
mkdir -p "$other_cg"
tap_check "control: root can query the agent" cw status
# carwall's own checks, each on its own (the sandbox's temp folder is 0700, which would hide
# them): the control socket's mode, SO_PEERCRED behind it, the pin folder's mode.
sock=$SANDBOX_RUN_DIR/carwalld.sock
tap_check "the control socket is root's, mode 0600" test "$(stat -c '%U %a' "$sock")" = "root 600"
chmod 0711 "$SANDBOX_DIR"
chmod 0666 "$sock" # as a wrong mode would: the agent's SO_PEERCRED check must still refuse
nobody_status=$(as_nobody "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status 2>&1)
nobody_rc=$?
chmod 0600 "$sock"
chmod 0700 "$SANDBOX_DIR"
if ((nobody_rc != 0)) && [[ $nobody_status == *"permission denied: root or the control group only"* ]]; then
	tap_ok "nobody who can reach the control socket is refused by the agent (SO_PEERCRED)"
else
	tap_not_ok "nobody who can reach the control socket is refused by the agent (SO_PEERCRED)" \
		"exit $nobody_rc: $nobody_status"
fi
tap_check "the pin folder and its subfolders are root's, mode 0700" test \
	"$(stat -c '%U %a' "$SANDBOX_PIN_DIR" "$SANDBOX_PIN_DIR/maps" "$SANDBOX_PIN_DIR/links" | sort -u)" = "root 700"
tap_check "every pin is root's and closed to group and others" \
	test -z "$(find "$SANDBOX_PIN_DIR" \( -perm /077 -o ! -user root \) -print)"
tap_expect_exit "nobody inside the app cannot move itself to another cgroup" 2 \
	in_cgroup "$app_cg" setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo \$\$ > '$other_cg/cgroup.procs'"
tap_expect_exit "nobody cannot open the pinned maps" 255 \
	as_nobody bpftool map dump pinned "$SANDBOX_PIN_DIR/maps/cw_cgroups"
# The policy file: one that someone other than root owns or may write is refused, and the
# last good policy stays (here A, after the reloads above).
untrusted_policy() { # NAME SETUP...: SETUP makes the file untrusted; reload must refuse it
	local name=$1 out rc
	shift
	cp "$SANDBOX_DIR/b.yaml" "$SANDBOX_DIR/untrusted.tmp"
	"$@" "$SANDBOX_DIR/untrusted.tmp"
	mv "$SANDBOX_DIR/untrusted.tmp" "$policy"
	out=$(cw reload 2>&1)
	rc=$?
	if ((rc == 1)) && [[ $out == *"the policy file must be root's and writable by nobody else"* ]]; then
		tap_ok "a policy file $name is refused, saying why"
	else
		tap_not_ok "a policy file $name is refused, saying why" "exit $rc: $out"
	fi
	expect_flows "after the policy file $name: policy A still enforced" ok ok EPERM EPERM
}
untrusted_policy "others may write" chmod 0666
untrusted_policy "its group may write" chmod 0620
untrusted_policy "nobody owns" chown 65534:65534
cat "$SANDBOX_DIR/a.yaml" >"$SANDBOX_DIR/trusted.tmp"
mv "$SANDBOX_DIR/trusted.tmp" "$policy"
tap_check "control: the same policy, root's and mode 0644, loads" cw reload
tap_check "control: root can read the pinned maps" bpftool map dump pinned "$SANDBOX_PIN_DIR/maps/cw_state"

# A configured control group may use the socket (the sandbox's temp folder is 0700; /run/carwall
# is 0755 on a head unit).
chmod 0711 "$SANDBOX_DIR"
sandbox_agent_stop
sandbox_agent_start --control-group nogroup || { tap_bail_out "carwalld did not restart"; exit 1; }
tap_check "a member of the control group can query the agent" \
	setpriv --reuid=65534 --regid=65534 --init-groups "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status

# ---- no valid policy at start: fail closed -----------------------------------------------------
sandbox_agent_stop
cw unload >/dev/null
printf 'version: 1\napps:\n  mediaplayer:\n    allow: [\n' >"$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not start without a valid policy"; exit 1; }
tap_check "with no valid policy the agent still starts and says why" \
	grep -q "No valid policy: every app below" "$SANDBOX_DIR/agent.log"
tap_expect_exit "with no valid policy, status --quiet says not enforcing" 1 cw status --quiet
tap_expect_exit "with no valid policy, an app is refused even its OEM backend" 1 \
	probe "$app_cg" 198.51.100.20 443
tap_check "with no valid policy, a cgroup outside the guard is not judged" \
	probe "$other_cg" 203.0.113.7 443
cat "$SANDBOX_DIR/a.yaml" >"$policy"
tap_check "recovery: fixing the file loads the policy by itself" wait_sha "$sha_a"
expect_flows "recovery: policy A enforced" ok ok EPERM EPERM
tap_check "status --quiet says enforcing" cw status --quiet

tap_done
