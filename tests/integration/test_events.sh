#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Flow evidence on the real kernel: an event for every refused flow (IPv4, IPv6, TCP, UDP, a
# refused socket kind), none for allowed ones; `carwall events` live and from the log;
# per-app and per-rule counters; the per-app rate limiter under a flood (the agent stays
# responsive and every event it does not get is counted as dropped).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=$top/tests/integration/flows.yaml

sandbox_create "cw-e$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
events() { "$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" "$@"; }
json_count() { grep -c "$1" || true; }

# Control: without carwall the flows that will be refused go through, and nothing is logged.
control_flow() { # MODE ADDR PORT: one flow without carwall, judged at both ends (sandbox_judge)
	local out
	out=$(sandbox_in_hu "$FLOWPROBE" "$1" "$2" "$3" --token "ctl$$-$3" 2>&1)
	sandbox_judge "$out" "ctl$$-$3" "$1" "$3"
}
tap_check "control, no enforcement: the tracker is reached over TCP" control_flow tcp 203.0.113.7 443
tap_check "control, no enforcement: the tracker is reached over UDP and IPv6" \
	control_flow udp 2001:db8:bad::7 514

sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_check "no event is logged before any flow" bash -c "[ -z \"\$('$CARWALL' events --state-dir '$SANDBOX_STATE_DIR')\" ]"

# A live reader, started before the flows.
events --follow --json >"$SANDBOX_DIR/follow.out" 2>&1 &
follow_pid=$!

run() { sandbox_run_app mediaplayer "$FLOWPROBE" "$@" >/dev/null 2>&1; }
run tcp 203.0.113.7 443
run tcp 2001:db8:bad::7 443
run udp 203.0.113.7 514
run udp 2001:db8:bad::7 514
run udp-connect 203.0.113.7 9000
run udp-connect 198.51.100.20 9000 --raw --ipproto 17
run tcp 198.51.100.20 443 # allowed: no event
run tcp 198.51.100.20 443 # allowed: no event

wait_events() { # N: bounded wait until the log holds N records
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(events --json | wc -l) -ge $1 ]] && return 0
		sleep 0.05
	done
	return 1
}
tap_check "6 refused flows give 6 events" wait_events 6
log=$(events --json)
tap_diag "$log"
tap_check "exactly 6 events: none for the allowed flows" test "$(wc -l <<<"$log")" -eq 6
has() { # NAME PATTERN...: one record matches every pattern
	local name=$1 line ok
	shift
	while IFS= read -r line; do
		ok=1
		for p in "$@"; do [[ $line == *"$p"* ]] || ok=0; done
		[[ $ok == 1 ]] && { tap_ok "$name"; return; }
	done <<<"$log"
	tap_not_ok "$name" "no record with: $*"
}
has "event: IPv4 TCP connect" '"app":"mediaplayer"' '"proto":"tcp"' '"dst":"203.0.113.7"' '"port":443' '"hook":"connect4"' '"verdict":"default-deny"'
has "event: IPv6 TCP connect" '"dst":"2001:db8:bad::7"' '"port":443' '"hook":"connect6"' '"family":"ipv6"'
has "event: IPv4 UDP sendto" '"proto":"udp"' '"dst":"203.0.113.7"' '"port":514' '"hook":"sendmsg4"'
has "event: IPv6 UDP sendto" '"proto":"udp"' '"dst":"2001:db8:bad::7"' '"port":514' '"hook":"sendmsg6"'
has "event: connected UDP" '"dst":"203.0.113.7"' '"port":9000' '"hook":"connect4"'
has "event: a raw socket refused at creation" '"hook":"sock_create"' '"verdict":"deny-protocol"'
has "events name the process: pid and command" '"comm":"flowprobe"' '"pid":'
# The executable. The agent reads /proc/PID/exe when it processes the event: a process that
# exec'd another program since (bash runs its last command in place: `bash -c '...; sleep 3'`
# becomes sleep) must not be reported as that program, and one that still runs it must be
# reported with its exact path. A refused flow whose event never arrives is a failure.
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
in_app() { # CMD...: in the app's cgroup and the head unit's netns, without the agent's help
	sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" "$@"
}
# wait_event PATTERN: bounded wait until a record matches; prints it.
wait_event() {
	local i line
	for ((i = 0; i < 100; i++)); do
		line=$(events --json | grep -- "$1" | tail -1)
		[[ -n $line ]] && { printf '%s\n' "$line"; return 0; }
		sleep 0.05
	done
	return 1
}
bash_exe=$(readlink -f "$(command -v bash)")
# A process that stays (the trailing ':' keeps bash from exec'ing sleep) until its event is seen.
in_app bash -c '{ : </dev/tcp/203.0.113.7/8443; } 2>/dev/null; sleep 20; :' >/dev/null 2>&1 &
stay_job=$!
if rec=$(wait_event '"port":8443'); then
	if [[ $rec == *'"comm":"bash"'* && $rec == *"\"exe\":\"$bash_exe\""* ]]; then
		tap_ok "events name the exact executable of a process that still runs it ($bash_exe)"
	else
		tap_not_ok "events name the exact executable of a process that still runs it ($bash_exe)" "$rec"
	fi
else
	tap_not_ok "events name the exact executable of a process that still runs it ($bash_exe)" \
		"the refused flow was never reported"
fi
pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"${rec:-}")
[[ -n $pid ]] && kill "$pid" 2>/dev/null
wait "$stay_job" 2>/dev/null
# The agent is held (SIGSTOP) while the process refused flows and exec's sleep: when it reads
# /proc, the pid runs another program.
kill -STOP "$SANDBOX_AGENT_PID"
in_app bash -c '{ : </dev/tcp/203.0.113.7/8444; } 2>/dev/null; exec sleep 3' >/dev/null 2>&1 &
exec_job=$!
app_runs_sleep() { # the app's cgroup holds a process that now runs sleep
	local p
	for p in $(cat "$app_cg/cgroup.procs" 2>/dev/null); do
		[[ $(cat "/proc/$p/comm" 2>/dev/null) == sleep ]] && return 0
	done
	return 1
}
for ((i = 0; i < 100; i++)); do
	app_runs_sleep && break
	sleep 0.05
done
kill -CONT "$SANDBOX_AGENT_PID"
if rec=$(wait_event '"port":8444'); then
	if [[ $rec == *'"comm":"bash"'* && $rec != *'"exe":"/usr/bin/sleep"'* &&
		$rec != *"\"exe\":\"$(readlink -f "$(command -v sleep)")\""* ]]; then
		tap_ok "an event never names a program its process exec'd after the refused flow"
	else
		tap_not_ok "an event never names a program its process exec'd after the refused flow" "$rec"
	fi
else
	tap_not_ok "an event never names a program its process exec'd after the refused flow" \
		"the refused flow was never reported"
fi
wait "$exec_job" 2>/dev/null
has "events give the reason" '"reason":"default deny: no rule of mediaplayer allows it"'
has "events carry uid, tid and cgroup id" '"uid":0' '"tid":' '"cgroup_id":'

n_follow=0
for ((i = 0; i < 40; i++)); do
	n_follow=$(wc -l <"$SANDBOX_DIR/follow.out")
	[[ $n_follow -ge 8 ]] && break
	sleep 0.05
done
kill "$follow_pid" 2>/dev/null
wait "$follow_pid" 2>/dev/null
tap_check "carwall events --follow printed the events live" test "$n_follow" -eq 8
tap_check "carwall events --app filters by app" \
	bash -c "[ \"\$('$CARWALL' events --state-dir '$SANDBOX_STATE_DIR' --app navigation | wc -l)\" -eq 0 ] && [ \"\$('$CARWALL' events --state-dir '$SANDBOX_STATE_DIR' --app mediaplayer | wc -l)\" -eq 8 ]"
tap_check "the agent's log has one structured line per event" \
	test "$(grep -c 'event=refused app=mediaplayer' "$SANDBOX_DIR/agent.log")" -eq 8

# Counters.
stats=$(cw --json stats)
mp=$(tr -d ' \n' <<<"$stats" | grep -o '"id":"mediaplayer","since_load":{[^}]*}')
tap_diag "mediaplayer: $mp"
contains() { [[ $1 == *"$2"* ]]; }
tap_check "stats: mediaplayer refused 8" contains "$mp" '"refused":8'
tap_check "stats: mediaplayer allowed 2" contains "$mp" '"allowed":2'
tap_check "stats: the rule that allowed them counted 2" \
	bash -c "tr -d ' \n' <<<'$stats' | grep -q '\"app\":\"mediaplayer\",\"rule\":0,[^}]*\"allowed\":2'"
tap_check "carwall stats prints a table" bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' stats | grep -q '^mediaplayer'"

# ---- audit mode: the flows go out and are reported as they would be refused ------------------
audit_policy=$SANDBOX_DIR/audit.yaml
sed 's/^apps:/audit: true\napps:/' "$SANDBOX_POLICY" >"$audit_policy"
sandbox_agent_stop
SANDBOX_POLICY=$audit_policy
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 443 --token audit$$ >/dev/null 2>&1
tap_check "audit mode: a flow no rule allows goes out" sandbox_server_saw tcp 443 "audit$$"
tap_check "audit mode: it is reported as audited" wait_events 9
tap_check "audit mode: the record says audit" \
	bash -c "'$CARWALL' events --state-dir '$SANDBOX_STATE_DIR' --json | tail -1 | grep -q '\"event\":\"audit\".*\"dst\":\"203.0.113.7\"'"
tap_check "audit mode: counted as audited, not refused" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json stats | tr -d ' \n' | grep -q '\"id\":\"mediaplayer\",\"since_load\":{\"allowed\":0,\"refused\":0,\"audited\":1'"
tap_check "audit mode: status says so" bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' status | grep -q 'mediaplayer.*(audit mode)'"
# Switching it off is a reload like any other.
cat "$top/tests/integration/flows.yaml" >"$audit_policy"
"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload >/dev/null
tap_expect_exit "audit mode off after a reload: the flow is refused again (EPERM, nothing at the server)" 1 \
	sandbox_app_flow mediaplayer tcp 203.0.113.7 443

# ---- the rate limiter ----------------------------------------------------------------------------
# A fixed one-second window per app, started by the first event after the last one expired:
# at most N events per window, every other refused flow counted as dropped. Two bursts of 80
# refused connects, each far shorter than a second and more than a second apart, give exactly
# 50 events and 30 dropped each: no bound scaled by how long anything took.
sandbox_agent_stop
sandbox_agent_start --event-rate 50 || { tap_bail_out "carwalld did not restart"; exit 1; }
stats_field() { # FIELD: mediaplayer's since_load FIELD, or the event path's "received"
	local st
	st=$(cw --json stats | tr -d ' \n')
	if [[ $1 == received ]]; then
		grep -o '"received":[0-9]*' <<<"$st" | head -1 | cut -d: -f2
	else
		grep -o '"id":"mediaplayer","since_load":{[^}]*}' <<<"$st" | grep -o "\"$1\":[0-9]*" | cut -d: -f2
	fi
}
wait_received() { # N: bounded wait until the agent received N events in all
	local i
	for ((i = 0; i < 100; i++)); do
		(($(stats_field received) >= $1)) && return 0
		sleep 0.05
	done
	return 1
}
for burst in 1 2; do
	sleep 1.1 # the window of any earlier event is over
	r0=$(stats_field received) d0=$(stats_field events_dropped)
	t0=$(date +%s%N)
	out=$(sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 443 --repeat 80 2>&1)
	ms=$((($(date +%s%N) - t0) / 1000000))
	wait_received $((r0 + 50))
	sleep 0.3 # anything beyond the limit would have arrived by now
	got=$(($(stats_field received) - r0)) dropped=$(($(stats_field events_dropped) - d0))
	tap_diag "burst $burst: $out in $ms ms (with carwall run's start): $got events, $dropped dropped"
	if [[ $out == *"denied=80 "* ]] && ((got == 50 && dropped == 30)); then
		tap_ok "rate limit 50/s, burst $burst of 80 refused connects: exactly 50 events, 30 dropped"
	else
		tap_not_ok "rate limit 50/s, burst $burst of 80 refused connects: exactly 50 events, 30 dropped" \
			"$out; $got events, $dropped dropped in $ms ms"
	fi
done

# A flood: the agent stays responsive, and every refused flow is reported or counted as dropped.
before=$(stats_field received)
sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 443 --repeat 20000 >"$SANDBOX_DIR/flood.out" 2>&1 &
flood_pid=$!
# The agent answers while the flood runs.
slow=0
for ((i = 0; i < 10; i++)); do
	timeout 2 "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" status >/dev/null 2>&1 || slow=$((slow + 1))
	sleep 0.05
done
wait "$flood_pid"
tap_diag "flood: $(cat "$SANDBOX_DIR/flood.out")"
tap_check "the flood was 20000 refused connects" grep -q 'denied=20000' "$SANDBOX_DIR/flood.out"
tap_check "the agent answered status during the flood" test "$slow" -eq 0
sleep 0.3
refused=$(stats_field refused) dropped=$(stats_field events_dropped) received=$(stats_field received)
got=$((received - before))
tap_diag "refused $refused, events received $got during the flood, dropped $dropped in all"
# Since the load: the two bursts (160) and the flood (20000); all events of this agent were
# mediaplayer's.
tap_check "every refused flow is either reported or counted as dropped" \
	test "$refused" -eq 20160 -a $((received + dropped)) -eq "$refused"

tap_done
