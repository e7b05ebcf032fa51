#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# AGL's app slice removed and made again (issue 11, case 2), on the real kernel with a real
# agent: systemd removes `system-agl\x2dapp.slice` and the app cgroups when every app stops, and
# makes them again when one starts. The agent must follow it (inotify on every cgroup folder up
# to the root, the guard's new cgroup registered as guard, the app's new cgroup as the app), in
# adopted mode too; `carwall app wait-managed`, the AGL drop-in's ExecStartPre, holds an app
# until its cgroup is managed, so the app cannot win the race; `carwall status --quiet` fails
# while a cgroup cannot be registered again.
#
# The agent is stopped (SIGSTOP) while the cgroups are removed and made again: systemd being
# faster than the agent is the worst case, made deterministic. Every refusal is EPERM at
# connect() and the server saw no byte of it.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/cgroups.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

sandbox_create "cw-sr$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
system_slice=$SANDBOX_CGROUP_ROOT/system.slice
slice="$system_slice/system-agl\\x2dapp.slice"
app_cg="$slice/agl-app@mediaplayer.service"
intruder_cg="$slice/agl-app@intruder.service"
other_cg=$SANDBOX_CGROUP_ROOT/other.slice
oem=198.51.100.20
tracker=203.0.113.7

cat >"$policy" <<'EOF'
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
EOF

# has TEXT PART: TEXT contains PART.
has() { [[ $1 == *"$2"* ]]; }

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }

# remove_and_make_again: what systemd does when every app stops and one starts again: the app
# cgroups and the slice are removed, then made again (new cgroups, new ids).
remove_and_make_again() {
	rmdir "$intruder_cg" 2>/dev/null
	rmdir "$app_cg" "$slice" || return 1
	mkdir "$slice" "$app_cg"
}

stop_agent_process() { kill -STOP "$SANDBOX_AGENT_PID"; }
cont_agent_process() { kill -CONT "$SANDBOX_AGENT_PID"; }

# ---- control: without carwall, the app's cgroup reaches the tracker ----------------------------
cgroup_flow "$app_cg" "$tracker"
expect_reached "control, no agent: a process in the app cgroup reaches the tracker"

sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
cgroup_flow "$app_cg" "$oem"
expect_reached "enforced: the app reaches its OEM backend"
cgroup_flow "$app_cg" "$tracker"
expect_refused "enforced: the app is refused the tracker"
tap_check "enforced: carwall app wait-managed in the app cgroup says managed" \
	in_cgroup "$app_cg" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" app wait-managed --timeout 5
tap_check "wait-managed names the app" has "$TAP_LAST_OUTPUT" "app mediaplayer"

# ---- the slice and the app cgroup made again while the agent is slow: inotify alone ----------
n=$(registrations)
stop_agent_process
remove_and_make_again || tap_diag "rmdir/mkdir failed"
cont_agent_process
tap_check "the agent notices the slice made again by itself (no request) and registers it" \
	wait_registered "$n"
cgroup_flow "$app_cg" "$tracker"
expect_refused "slice made again: the app's new cgroup is refused the tracker"
cgroup_flow "$app_cg" "$oem"
expect_reached "slice made again: the app's new cgroup reaches its OEM backend (registered as the app)"
cgroup_flow "$intruder_cg" "$oem"
expect_refused "slice made again: an unknown cgroup below the new slice is refused (the new guard)"
tap_check "status --quiet says enforcing, nothing stale" cw status --quiet

# ---- the race: the app starts before the agent has registered its new cgroup ----------------
stop_agent_process
remove_and_make_again || tap_diag "rmdir/mkdir failed"
# The app unit's ExecStartPre and then the app, in the new cgroup, while the agent is stopped.
(cgroup_flow "$app_cg" "$tracker" wait; printf '%s\n%s\n%s\n' "$FLOW_RC" "$FLOW_TOKEN" "$FLOW_OUT" \
	>"$SANDBOX_DIR/race.out") &
race_pid=$!
# The subshell counted its flow in its own copy of the counter: count it here too, so that no
# later flow reuses its token.
cgroup_flow_n=$((cgroup_flow_n + 1))
race_token=c$$-$cgroup_flow_n
sleep 1
if [[ ! -s $SANDBOX_DIR/race.out ]] && ! sandbox_server_saw tcp 443 "$race_token"; then
	tap_ok "race: the app waits in wait-managed while its cgroup is not registered (1 s)"
else
	tap_not_ok "race: the app waits in wait-managed while its cgroup is not registered (1 s)" \
		"$(cat "$SANDBOX_DIR/race.out" 2>/dev/null)"
fi
cont_agent_process
for ((i = 0; i < 150; i++)); do
	[[ -s $SANDBOX_DIR/race.out ]] && break
	sleep 0.1
done
wait "$race_pid" 2>/dev/null
{ read -r FLOW_RC; read -r FLOW_TOKEN; FLOW_OUT=$(cat); } <"$SANDBOX_DIR/race.out"
tap_check "race: wait-managed returned 0 once the agent registered the cgroup" \
	has "$FLOW_OUT" "is managed: app mediaplayer"
expect_refused "race: the app's first connect after wait-managed is refused the tracker"

# ---- wait-managed fails, with the reason, when nothing manages the caller ---------------------
mkdir -p "$other_cg" "$SANDBOX_DIR/no-agent"
tap_expect_exit "wait-managed outside the guard and every app: exit 1" 1 \
	in_cgroup "$other_cg" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" app wait-managed --timeout 1
tap_check "wait-managed says why: not managed" \
	has "$TAP_LAST_OUTPUT" "is not managed by the policy in force"
tap_expect_exit "wait-managed with no agent: exit 3" 3 \
	in_cgroup "$app_cg" "$CARWALL" --run-dir "$SANDBOX_DIR/no-agent" app wait-managed --timeout 1
tap_check "wait-managed says why: no agent" has "$TAP_LAST_OUTPUT" "cannot reach carwalld"
stop_agent_process
start=$SECONDS
tap_expect_exit "wait-managed with a stopped agent: exit 3 within its time-out" 3 \
	in_cgroup "$app_cg" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" app wait-managed --timeout 1
cont_agent_process
# Its own time-out ended it (the alarm's message), not the 30 s a reply is waited for: a check
# of the mechanism, not of the wall clock, which a starved machine stretches.
tap_check "... ended by its own time-out: no answer within 1 s, not managed" \
	has "$TAP_LAST_OUTPUT" "no answer from carwalld in $SANDBOX_RUN_DIR within 1 s"
tap_diag "wait-managed with a stopped agent took about $((SECONDS - start)) s"

# ---- adopted mode: the agent restarted over the pins with a policy file it cannot load -------
sandbox_agent_stop
printf 'version: 1\napps:\n  mediaplayer:\n    allow: [\n' >"$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
tap_check "adopted: the agent adopted the earlier agent's pins" \
	grep -q "Adopted the policy pinned" "$SANDBOX_DIR/agent.log"
cgroup_flow "$app_cg" "$oem"
expect_reached "adopted: the app still reaches its OEM backend"
n=$(registrations)
stop_agent_process
remove_and_make_again || tap_diag "rmdir/mkdir failed"
cont_agent_process
tap_check "adopted: the agent notices the slice made again and registers the new guard" \
	wait_registered "$n"
cgroup_flow "$app_cg" "$tracker"
expect_refused "adopted, slice made again: the app's new cgroup is refused the tracker"
cgroup_flow "$app_cg" "$oem"
expect_refused "adopted, slice made again: the guard covers the app's new cgroup (fail closed)"
tap_check "adopted: wait-managed says managed, below the guard" \
	in_cgroup "$app_cg" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" app wait-managed --timeout 5
tap_check "adopted: wait-managed names the guard" has "$TAP_LAST_OUTPUT" "below the guard"

# The slice made again while no agent runs: the restarted agent registers it at start.
sandbox_agent_stop
remove_and_make_again || tap_diag "rmdir/mkdir failed"
cgroup_flow "$app_cg" "$tracker"
expect_reached "control, no agent: the slice made again is not judged by the old pins"
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
cgroup_flow "$app_cg" "$tracker"
expect_refused "adopted at start: the new slice is the guard again from the agent's start on"

# ---- a guard the agent cannot register: status --quiet fails, wait-managed fails ------------
# Pins of an agent that ran without a guard, adopted by one that has a guard: the pinned policy
# has no guard entry to register the slice as, so what is below it is not managed.
sandbox_agent_stop
cw unload >/dev/null
cat >"$policy" <<'EOF'
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
EOF
sandbox_agent_start --guard-cgroup '' || { tap_bail_out "carwalld did not start"; exit 1; }
sandbox_agent_stop
printf 'version: 1\napps:\n  mediaplayer:\n    allow: [\n' >"$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
tap_expect_exit "guard not registered: status --quiet fails" 1 cw status --quiet
tap_check "status says DEGRADED and why" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' status | grep -q 'DEGRADED.*no guard'"
mkdir -p "$intruder_cg"
tap_expect_exit "guard not registered: wait-managed below it fails (exit 1)" 1 \
	in_cgroup "$intruder_cg" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" app wait-managed --timeout 1
tap_check "wait-managed says why: no guard" has "$TAP_LAST_OUTPUT" "no guard cgroup"

tap_done
