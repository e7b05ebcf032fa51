#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# AGL's three app templates (issue 14), on the real kernel with a real agent and its default
# guards: agl-app@<id>.service, agl-app-web@<id>.service and agl-app-flutter@<id>.service, each
# in its slice under system.slice (the sandbox's cgroup root stands in for the machine's).
# - An app of the policy that names no template is judged by its policy in whichever template
#   it runs; an app that names one (`template: web`) only there.
# - A unit no policy names is refused everything below each of the three slices (the guards).
# - An app id found in two templates at once is ambiguous: neither cgroup is registered (both
#   stay below their guards), status is degraded with the reason, wait-managed fails with it.
# - `carwall run --app` finds the app's cgroup; revocation reaches every registered cgroup.
# - The web slice removed and made again stays closed; adopted mode keeps the three guards.
# Every refusal is EPERM at connect() and the server saw no byte of it; every app unit here
# first runs `carwall app wait-managed`, as the AGL drop-in's ExecStartPre does, except where
# the test asks the kernel directly (the ambiguous case).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/cgroups.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

sandbox_create "cw-tp$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
sys=$SANDBOX_CGROUP_ROOT/system.slice
slice_app="$sys/system-agl\\x2dapp.slice"
slice_web="$sys/system-agl\\x2dapp\\x2dweb.slice"
slice_flutter="$sys/system-agl\\x2dapp\\x2dflutter.slice"
web_cg="$slice_web/agl-app-web@webradio.service"
flutter_cg="$slice_flutter/agl-app-flutter@dashboard.service"
dash_app_cg="$slice_app/agl-app@dashboard.service"
nav_web_cg="$slice_web/agl-app-web@navigation.service"
nav_flutter_cg="$slice_flutter/agl-app-flutter@navigation.service"
oem=198.51.100.20
tracker=203.0.113.7

write_policy() { # PORT of the OEM backend webradio may reach
	cat >"$policy" <<EOF
version: 1
apps:
  webradio:             # any template
    allow:
      - to: [198.51.100.20]
        ports: [$1]
        proto: tcp
  dashboard:            # any template
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
  navigation:
    template: web
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
  radio:                # runs nowhere yet: carwall run --app makes its agl-app@ cgroup
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
EOF
}
write_policy 443

has() { [[ $1 == *"$2"* ]]; }
cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" "$@"; }

# wait_managed CGROUP SECONDS: `carwall app wait-managed --timeout SECONDS` run in CGROUP (output
# in TAP_LAST_OUTPUT through tap_check/tap_expect_exit).
wait_managed() { in_cgroup "$1" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" app wait-managed --timeout "$2"; }

# status_has TEXT: bounded wait (5 s) until `carwall status` prints TEXT.
status_has() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(cw status 2>&1) == *"$1"* ]] && return 0
		sleep 0.05
	done
	return 1
}

# ---- control: without carwall, every template's cgroups reach the tracker ---------------------
for cg in "$web_cg" "$flutter_cg" "$slice_web/agl-app-web@intruder.service"; do
	cgroup_flow "$cg" "$tracker"
	expect_reached "control, no agent: ${cg##*/} reaches the tracker"
done
# A stream from an unknown flutter unit, established before the agent starts: cut by the guard.
# It holds until the test stops it (600 s only bounds a leftover): under emulation the agent's
# start alone can take longer than any shorter hold, which would then end by itself, uncut.
mkdir -p "$slice_flutter/agl-app-flutter@held.service"
in_cgroup \
	"$slice_flutter/agl-app-flutter@held.service" "$FLOWPROBE" hold "$oem" 443 --hold-ms 600000 \
	--token "held$$" >"$SANDBOX_DIR/held.out" 2>&1 &
held_pid=$!
for ((i = 0; i < 100; i++)); do
	grep -q established "$SANDBOX_DIR/held.out" && break
	sleep 0.05
done
tap_check "control: a stream from an unknown flutter unit is established without the agent" \
	grep -q established "$SANDBOX_DIR/held.out"
# The web and flutter cgroups of the apps are gone, as after their units stopped.
rmdir "$web_cg" "$flutter_cg" "$slice_web/agl-app-web@intruder.service"

# ---- the agent with its default guards ---------------------------------------------------------
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_check "status --json lists AGL's three slices as guards" bash -c \
	"'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | tr -d ' \n' | grep -qF '\"guard_cgroups\":[\"$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\\\x2dapp.slice\",\"$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\\\x2dapp\\\\x2dweb.slice\",\"$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\\\x2dapp\\\\x2dflutter.slice\"]'"
tap_check "the agent made no cgroup for the apps that name no template" \
	test ! -e "$dash_app_cg" -a ! -e "$slice_app/agl-app@webradio.service"
ended=0
for ((i = 0; i < 60; i++)); do
	grep -q 'result=' "$SANDBOX_DIR/held.out" && { ended=1; break; }
	sleep 0.05
done
tap_check "revocation: the stream of the unknown flutter unit is cut at the agent's start (guard)" \
	bash -c "[ $ended -eq 1 ] && grep -q 'result=ECONN' '$SANDBOX_DIR/held.out'"
[ $ended -eq 1 ] || tap_diag "the held stream after the agent's start: $(cat "$SANDBOX_DIR/held.out")"
kill "$held_pid" 2>/dev/null
wait "$held_pid" 2>/dev/null

cgroup_flow "$web_cg" "$oem" wait
expect_reached "web: agl-app-web@webradio reaches its OEM backend"
tap_check "web: wait-managed named the app" has "$FLOW_OUT" "is managed: app webradio"
cgroup_flow "$web_cg" "$tracker" wait
expect_refused "web: agl-app-web@webradio is refused the tracker"
cgroup_flow "$flutter_cg" "$oem" wait
expect_reached "flutter: agl-app-flutter@dashboard reaches its OEM backend"
tap_check "flutter: wait-managed named the app" has "$FLOW_OUT" "is managed: app dashboard"
cgroup_flow "$flutter_cg" "$tracker" wait
expect_refused "flutter: agl-app-flutter@dashboard is refused the tracker"
tap_check "status shows the cgroups the apps run in" bash -c \
	"'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' status | grep -F 'agl-app-web@webradio.service' | grep -q webradio"

# ---- unknown units below each slice: refused everything ----------------------------------------
for cg in "$slice_app/agl-app@intruder.service" "$slice_web/agl-app-web@intruder.service" \
	"$slice_flutter/agl-app-flutter@intruder.service"; do
	cgroup_flow "$cg" "$oem" wait
	expect_refused "unknown unit ${cg##*/}: refused even the OEM backend"
	tap_check "unknown unit ${cg##*/}: wait-managed says below the guard" \
		has "$FLOW_OUT" "below the guard"
done

# ---- the template key --------------------------------------------------------------------------
cgroup_flow "$nav_web_cg" "$oem" wait
expect_reached "template web: agl-app-web@navigation reaches its OEM backend"
cgroup_flow "$nav_flutter_cg" "$oem" wait
expect_refused "template web: agl-app-flutter@navigation is not the app's (refused, guard)"
cgroup_flow "$slice_app/agl-app@navigation.service" "$oem" wait
expect_refused "template web: agl-app@navigation is not the app's (refused, guard)"
rmdir "$nav_flutter_cg" "$slice_app/agl-app@navigation.service"
tap_check "status --json says navigation's template is web" bash -c \
	"'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | tr -d ' \n' | grep -q '\"id\":\"navigation\",\"cgroup\":[^}]*\"template\":\"web\"'"
printf 'version: 1\napps:\n  x:\n    template: qt\n    allow: []\n' >"$SANDBOX_DIR/bad-template.yaml"
tap_expect_exit "policy check: an unknown template is refused" 1 \
	cw policy check "$SANDBOX_DIR/bad-template.yaml"
tap_check "... with file:line:column" has "$TAP_LAST_OUTPUT" "bad-template.yaml:4:15: unknown template 'qt'"
printf 'version: 1\napps:\n  x:\n    template: web\n    cgroup: a/b\n    allow: []\n' >"$SANDBOX_DIR/both.yaml"
tap_expect_exit "policy check: template and cgroup together are refused" 1 \
	cw policy check "$SANDBOX_DIR/both.yaml"
tap_check "... with file:line:column" has "$TAP_LAST_OUTPUT" "both.yaml:5:13: app 'x' has both 'cgroup' and 'template'"

# ---- carwall run --app: the app's existing cgroup, or the agl-app@ default ---------------------
mkdir -p "$web_cg"
out=$(sandbox_run_app webradio cat /proc/self/cgroup 2>&1)
tap_check "carwall run --app webradio runs in the web unit's cgroup" \
	has "$out" "agl-app-web@webradio.service/carwall-run."
sandbox_run_app radio "$FLOWPROBE" tcp "$oem" 443 --token "radio$$" --timeout-ms 2000 >/dev/null 2>&1
tap_check "carwall run --app radio (running nowhere) reaches its OEM backend" \
	sandbox_server_saw tcp 443 "radio$$"
tap_check "... from the agl-app@ default cgroup" test -d "$slice_app/agl-app@radio.service"

# ---- revocation: a reload cuts the web app's established flow it no longer allows ------------
in_cgroup "$web_cg" \
	"$FLOWPROBE" hold "$oem" 443 --hold-ms 8000 --token "rv$$" >"$SANDBOX_DIR/rv.out" 2>&1 &
rv_pid=$!
for ((i = 0; i < 100; i++)); do
	grep -q established "$SANDBOX_DIR/rv.out" && break
	sleep 0.05
done
tap_check "control: the web app holds a stream to its OEM backend" grep -q established "$SANDBOX_DIR/rv.out"
write_policy 8443
cw reload >/dev/null
cut=0
for ((i = 0; i < 40; i++)); do
	grep -q 'result=' "$SANDBOX_DIR/rv.out" && { cut=1; break; }
	sleep 0.05
done
tap_check "revocation: the web app's stream the new policy refuses is cut within 2 s" \
	bash -c "[ $cut -eq 1 ] && grep -q 'result=ECONN' '$SANDBOX_DIR/rv.out'"
wait "$rv_pid" 2>/dev/null
write_policy 443
cw reload >/dev/null

# ---- ambiguous: one app id in two templates at once --------------------------------------------
cgroup_flow "$flutter_cg" "$oem" wait
expect_reached "control: dashboard in flutter alone reaches its OEM backend"
mkdir "$dash_app_cg"
tap_check "ambiguous: status says DEGRADED with the reason" \
	status_has "dashboard' runs in more than one AGL template"
tap_expect_exit "ambiguous: status --quiet fails" 1 cw status --quiet
tap_check "ambiguous: the agent logged it" \
	grep -q "app 'dashboard' runs in more than one AGL template" "$SANDBOX_DIR/agent.log"
cgroup_flow "$flutter_cg" "$oem"
expect_refused "ambiguous: the flutter cgroup is not registered (refused the OEM backend)"
cgroup_flow "$dash_app_cg" "$oem"
expect_refused "ambiguous: the agl-app@ cgroup is not registered (refused the OEM backend)"
tap_expect_exit "ambiguous: wait-managed in the flutter cgroup fails" 1 wait_managed "$flutter_cg" 1
tap_check "... with the reason" has "$TAP_LAST_OUTPUT" "runs in more than one AGL template"
tap_expect_exit "ambiguous: wait-managed in the agl-app@ cgroup fails" 1 wait_managed "$dash_app_cg" 1
tap_check "... with the reason" has "$TAP_LAST_OUTPUT" "runs in more than one AGL template"
tap_expect_exit "ambiguous: carwall run --app dashboard fails" 1 sandbox_run_app dashboard true
tap_check "... with the reason" has "$TAP_LAST_OUTPUT" "runs in more than one AGL template"
rmdir "$dash_app_cg"
cgroup_flow "$flutter_cg" "$oem" wait
expect_reached "no longer ambiguous (agl-app@ gone): the flutter cgroup is registered again"
tap_check "status --quiet succeeds again" cw status --quiet

# ---- the web slice removed and made again while the agent is slow ------------------------------
n=$(registrations)
kill -STOP "$SANDBOX_AGENT_PID"
rmdir "$web_cg" "$nav_web_cg" "$slice_web/agl-app-web@intruder.service" "$slice_web"
mkdir "$slice_web" "$web_cg"
kill -CONT "$SANDBOX_AGENT_PID"
tap_check "web slice made again: the agent notices by itself and registers it" wait_registered "$n"
cgroup_flow "$slice_web/agl-app-web@intruder.service" "$oem"
expect_refused "web slice made again: an unknown unit below the new slice is refused (the new guard)"
cgroup_flow "$web_cg" "$tracker"
expect_refused "web slice made again: webradio's new cgroup is refused the tracker"
cgroup_flow "$web_cg" "$oem" wait
expect_reached "web slice made again: webradio's new cgroup reaches its OEM backend"

# ---- adopted mode keeps the three guards -------------------------------------------------------
sandbox_agent_stop
printf 'version: 1\napps:\n  webradio:\n    allow: [\n' >"$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
tap_check "adopted: the agent adopted the earlier agent's pins" \
	grep -q "Adopted the policy pinned" "$SANDBOX_DIR/agent.log"
cgroup_flow "$web_cg" "$oem"
expect_reached "adopted: webradio still reaches its OEM backend"
n=$(registrations)
kill -STOP "$SANDBOX_AGENT_PID"
rmdir "$slice_web/agl-app-web@intruder.service" "$slice_flutter/agl-app-flutter@intruder.service"
rmdir "$web_cg" "$slice_web" "$flutter_cg" "$slice_flutter/agl-app-flutter@held.service" "$slice_flutter"
mkdir "$slice_web" "$slice_flutter"
kill -CONT "$SANDBOX_AGENT_PID"
tap_check "adopted: the agent registers the web and flutter slices made again" wait_registered "$n"
for cg in "$slice_web/agl-app-web@intruder.service" "$flutter_cg"; do
	cgroup_flow "$cg" "$oem" wait
	expect_refused "adopted, slices made again: ${cg##*/} is refused (below the new guard)"
	tap_check "adopted: wait-managed in ${cg##*/} says below the guard" has "$FLOW_OUT" "below the guard"
done
tap_check "adopted: status lists the three guards" bash -c \
	"test \$('$CARWALL' --run-dir '$SANDBOX_RUN_DIR' status | grep -c '^guard: ') -eq 3"
tap_check "adopted: status --quiet says nothing stale" cw status --quiet

# ---- --guard-cgroup '' still disables the guards -----------------------------------------------
sandbox_agent_stop
cw unload >/dev/null
write_policy 443
sandbox_agent_start --guard-cgroup '' || { tap_bail_out "carwalld did not start"; exit 1; }
cgroup_flow "$slice_web/agl-app-web@intruder.service" "$tracker"
expect_reached "--guard-cgroup '': an unknown web unit is not judged"
tap_check "--guard-cgroup '': status lists no guard" \
	bash -c "! '$CARWALL' --run-dir '$SANDBOX_RUN_DIR' status | grep -q '^guard: '"
sandbox_agent_stop
tap_expect_exit "--guard-cgroup '' with another guard is refused" 1 \
	"$CARWALLD" --developer-mode --policy "$policy" --cgroup-root "$SANDBOX_CGROUP_ROOT" \
	--pin-dir "$SANDBOX_PIN_DIR" --run-dir "$SANDBOX_RUN_DIR" --state-dir "$SANDBOX_STATE_DIR" \
	--guard-cgroup '' --guard-cgroup system.slice

tap_done
