#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Driver consent in the kernel (policy `consent:`, `carwall consent list|set`): a switch only
# takes permissions away. mediaplayer's playback (no purpose), its crash reporter (purpose
# crash-reports), analytics (purpose analytics, overlapping the crash reporter's UDP port on a
# wider prefix) and an eCall rule (a mandatory purpose) go out; switching crash-reports off
# refuses the crash reporter (EPERM at the hook, nothing at the server) but not what another
# rule still allows, cuts its established connection and keeps playback's, logs who switched,
# and counts and reports the refusals as consent's. Then: states survive a restart (persistent
# and per-drive in the same boot), a new boot resets the per-drive switch only, a reload that
# drops a switch forgets it, a policy whose switch covers a mandatory purpose is refused with
# file:line:column, and the consent group may list and set switches and nothing else while
# another non-root user may not.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox

sandbox_create "cw-cs$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
# write_policy [EXTRA SWITCH LINES]: the test's policy; the analytics switch can be left out.
analytics_switch='    - {name: analytics, purposes: [analytics], default: on, reset: drive}'
write_policy() {
	local extra=${1-$analytics_switch}

	cat >"$policy.tmp" <<EOF
version: 1
consent:
  purposes: [crash-reports, analytics]
  mandatory: [ecall]
  switches:
    - {name: crash-reports, purposes: [crash-reports], default: on, reset: persistent}
$extra
apps:
  mediaplayer:
    allow:
      - {to: [198.51.100.20, 2001:db8:51::20], ports: [443], proto: tcp}
      - {to: [198.51.100.20, 2001:db8:51::20], ports: [9000], purpose: crash-reports}
      - {to: 198.51.100.0/24, ports: [9000], proto: udp, purpose: analytics}
      - {to: 198.51.100.80, ports: [8443], proto: tcp, purpose: ecall}
EOF
	mv "$policy.tmp" "$policy"
}
write_policy

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
has() { grep -q -- "$1" <<<"$2"; } # PATTERN TEXT (tap_check gives its command no stdin)
events() { "$CARWALL" events --state-dir "$SANDBOX_STATE_DIR" --json; }
state() { cw --json consent list | tr -d ' \n' | grep -o "\"name\":\"$1\",\"state\":\"[a-z]*\"" | cut -d'"' -f8; }
# flows EXPECT...: crash TCP v4, crash TCP v6, UDP 9000 v4, UDP 9000 v6, playback v4, eCall v4.
flows() {
	local got
	got="$(sandbox_app_flow mediaplayer tcp 198.51.100.20 9000)"
	got+=" $(sandbox_app_flow mediaplayer tcp 2001:db8:51::20 9000)"
	got+=" $(sandbox_app_flow mediaplayer udp 198.51.100.20 9000)"
	got+=" $(sandbox_app_flow mediaplayer udp 2001:db8:51::20 9000)"
	got+=" $(sandbox_app_flow mediaplayer tcp 198.51.100.20 443)"
	got+=" $(sandbox_app_flow mediaplayer tcp 198.51.100.80 8443)"
	[[ $got == "$*" ]] || { tap_diag "flows: got '$got', want '$*'"; return 1; }
}
# few_flows EXPECT...: crash TCP v4, UDP 9000 v4, playback v4 (where the full set was shown).
few_flows() {
	local got
	got="$(sandbox_app_flow mediaplayer tcp 198.51.100.20 9000)"
	got+=" $(sandbox_app_flow mediaplayer udp 198.51.100.20 9000)"
	got+=" $(sandbox_app_flow mediaplayer tcp 198.51.100.20 443)"
	[[ $got == "$*" ]] || { tap_diag "flows: got '$got', want '$*'"; return 1; }
}

# ---- control: without carwall the crash reporter reaches the OEM's collector --------------------
for f in "tcp 198.51.100.20 9000" "udp 198.51.100.20 9000" "tcp 198.51.100.20 443"; do
	read -r mode addr port <<<"$f"
	tok="ctl$$-$mode-$port"
	out=$(sandbox_in_hu "$FLOWPROBE" "$mode" "$addr" "$port" --token "$tok" 2>&1)
	tap_check "control, no carwall: $mode to $addr port $port arrives" \
		test "$(sandbox_judge "$out" "$tok" "$mode" "$port")" = ok
done

sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_check "every switch on by default" test "$(state crash-reports) $(state analytics)" = "on on"
tap_check "consent list names the mandatory purpose" bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' consent list | grep -q 'mandatory (never switched off): ecall'"
tap_check "all switches on: every flow the policy allows goes out" flows ok ok ok ok ok ok

# A held crash-reporter connection and a held playback one, up before the switch.
hold() { # NAME ADDR PORT: flowprobe hold as mediaplayer in the background
	sandbox_run_app mediaplayer "$FLOWPROBE" hold "$2" "$3" --hold-ms 20000 --token "$1$$" \
		>"$SANDBOX_DIR/hold-$1.out" 2>&1 &
	PIDS[$1]=$!
}
hold crash 198.51.100.20 9000
hold play 198.51.100.20 443
up=0
for ((i = 0; i < 50; i++)); do
	grep -q established "$SANDBOX_DIR/hold-crash.out" && grep -q established "$SANDBOX_DIR/hold-play.out" && { up=1; break; }
	sleep 0.1
done
tap_check "control: both held connections are established" test $up -eq 1
hold_pid() { sed -n 's/^established .*pid=\([0-9]*\).*/\1/p' "$SANDBOX_DIR/hold-$1.out"; }

# ---- the driver switches crash reports off ------------------------------------------------------
tap_check "consent set crash-reports off" cw consent set crash-reports off
tap_check "the switch is off" test "$(state crash-reports)" = off
tap_check "crash reports refused, v4 and v6 (EPERM, nothing at the server); UDP 9000 v4 still allowed by the analytics rule; playback and eCall go on" \
	flows EPERM EPERM ok EPERM ok ok
cut=0
for ((i = 0; i < 20; i++)); do
	grep -q 'result=' "$SANDBOX_DIR/hold-crash.out" && { cut=1; break; }
	sleep 0.1
done
tap_check "the crash reporter's established connection is cut (ECONN*)" \
	bash -c "[ $cut -eq 1 ] && grep -q 'result=ECONN' '$SANDBOX_DIR/hold-crash.out'"
tap_check "playback's established connection still delivers" sandbox_hold_marker "$(hold_pid play)" "play$$" 1
procs_stop_all

sleep 0.3
log=$(events)
tap_check "the change is an event: switch, state, who" \
	has '"event":"consent","switch":"crash-reports","state":"off","uid":0' "$log"
sha=$(cw --json status | tr -d ' \n' | grep -o '"sha256":"[0-9a-f]\{64\}"' | head -1 | cut -d'"' -f4)
tap_check "the event names the policy in force (sha256 ${sha:0:12}...), which the switch left as it was" \
	has "\"switch\":\"crash-reports\".*\"policy_sha256\":\"${sha:-none}\"" "$log"
tap_check "the refusals are reported as consent's (verdict deny-consent)" \
	has '"app":"mediaplayer".*"dst":"198.51.100.20","port":9000,"hook":"connect4","verdict":"deny-consent"' "$log"
refused_consent=$(cw --json stats | tr -d ' \n' | grep -o '"id":"mediaplayer","since_load":{[^}]*}' | grep -o '"refused_consent":[0-9]*' | cut -d: -f2)
tap_check "stats count the refusals by consent (3 so far: $refused_consent)" test "${refused_consent:-0}" -ge 3

out=$("$CARWALL" explain --policy "$policy" --app mediaplayer --consent crash-reports=off 198.51.100.20:9000/tcp 2>&1)
tap_check "explain names the switch that refuses the crash reporter" \
	has "refused (consent).*switched off by: crash-reports" "$(tr '\n' ' ' <<<"$out")"
out=$("$CARWALL" explain --policy "$policy" --app mediaplayer --consent crash-reports=off 198.51.100.20:9000/udp 2>&1)
tap_check "explain: UDP 9000 stays allowed, by the analytics rule" has "allowed.*rule 3 of mediaplayer" "$(tr '\n' ' ' <<<"$out")"
tap_check "consent set analytics off" cw consent set analytics off
tap_check "with analytics off too, UDP 9000 v4 is refused; playback and eCall go on" \
	flows EPERM EPERM EPERM EPERM ok ok
tap_expect_exit "a switch the policy does not declare is refused" 1 cw consent set ecall off
tap_expect_exit "a bad state is a usage error" 2 cw consent set analytics maybe
tap_check "switching back on restores what the policy allows" cw consent set analytics on
tap_check "analytics on: UDP 9000 v4 goes out again" few_flows EPERM ok ok
tap_check "consent set analytics off (again)" cw consent set analytics off

# ---- persistence ---------------------------------------------------------------------------------
sandbox_agent_stop
tap_check "stopped: the state file holds both switches off" \
	bash -c "grep -qx 'switch crash-reports off persistent' '$SANDBOX_STATE_DIR/consent' && grep -qx 'switch analytics off drive' '$SANDBOX_STATE_DIR/consent'"
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
tap_check "restart in the same boot: both switches stay off" \
	test "$(state crash-reports) $(state analytics)" = "off off"
tap_check "restart: the flows stay refused" few_flows EPERM EPERM ok
sandbox_agent_stop
# A new boot: another boot id in the state file is what a reboot leaves.
sed -i 's/^boot .*/boot 00000000-1111-2222-3333-444444444444/' "$SANDBOX_STATE_DIR/consent"
sandbox_agent_start || { tap_bail_out "carwalld did not restart"; exit 1; }
tap_check "new boot: the per-drive switch is back to its default, the persistent one stays off" \
	test "$(state crash-reports) $(state analytics)" = "off on"
tap_check "new boot: UDP 9000 v4 allowed by analytics again, crash reports still refused" \
	flows EPERM EPERM ok EPERM ok ok

# ---- policy changes ------------------------------------------------------------------------------
write_policy ""
tap_check "reload with the analytics switch dropped" cw reload
tap_check "the dropped switch is gone from the list" bash -c "! '$CARWALL' --run-dir '$SANDBOX_RUN_DIR' consent list | grep -q '^analytics'"
tap_check "and from the state file" bash -c "! grep -q analytics '$SANDBOX_STATE_DIR/consent'"
tap_check "crash-reports stays off across the reload" test "$(state crash-reports)" = off
write_policy "    - {name: emergency, purposes: [ecall], default: on, reset: drive}"
out=$(cw reload 2>&1)
tap_check "a switch covering a mandatory purpose: the reload is refused with file:line:column" \
	has "$policy:7:36: purpose 'ecall' is mandatory" "$out"
tap_check "the policy in force stays: crash reports refused, playback allowed" \
	few_flows EPERM ok ok
write_policy

# ---- who may switch ------------------------------------------------------------------------------
getent group nogroup >/dev/null && command -v setpriv >/dev/null ||
	{
		tap_bail_out "the group test needs the group nogroup (gid 65534) and setpriv (util-linux)"
		exit 1
	}
ng=$(getent group nogroup | cut -d: -f3) # the consent group's gid
sandbox_agent_stop
chmod o+x "$SANDBOX_DIR" "$SANDBOX_RUN_DIR"
sandbox_agent_start --consent-group nogroup ||
	{ tap_bail_out "carwalld did not start with --consent-group"; exit 1; }
as() { # UID GID [SUPPLEMENTARY] -- CARWALL ARGS...
	local uid=$1 gid=$2 groups=(--clear-groups)
	shift 2
	if [[ $1 != -- ]]; then groups=(--groups "$1"); shift; fi
	shift
	setpriv --reuid "$uid" --regid "$gid" "${groups[@]}" "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"
}
tap_check "the consent group (primary gid) lists the switches" as 65534 "$ng" -- consent list
tap_check "the consent group switches crash reports on" as 65534 "$ng" -- consent set crash-reports on
tap_check "the switch is on" test "$(state crash-reports)" = on
tap_check "crash reports go out again" few_flows ok ok ok
tap_check "a member through a supplementary group switches it off" as 65533 65533 "$ng" -- consent set crash-reports off
tap_check "the switch is off" test "$(state crash-reports)" = off
out=$(as 65534 "$ng" -- --json status 2>&1)
tap_check "the consent group may not ask for anything else (status)" has 'permission denied: the consent group may only' "$out"
out=$(as 65534 "$ng" -- reload 2>&1)
tap_check "the consent group may not reload" has 'permission denied: the consent group may only' "$out"
out=$(as 65533 65533 -- consent set crash-reports on 2>&1)
# The socket is the consent group's (0660): another user cannot even connect.
tap_check "another non-root user may not switch" has 'cannot reach carwalld.*Permission denied' "$out"
tap_check "the switch stayed off" test "$(state crash-reports)" = off
sleep 0.3
tap_check "the group's change is an event with its uid" \
	bash -c "'$CARWALL' events --state-dir '$SANDBOX_STATE_DIR' --json | grep -q '\"switch\":\"crash-reports\",\"state\":\"on\",\"uid\":65534'"

# With a control group too (another group), the socket is open to all (0666) and each
# connection is checked: the control group may do everything, the consent group only consent,
# anyone else nothing.
cg=$(getent group users | cut -d: -f3)
if [[ -n $cg && $cg != "$ng" ]]; then
	sandbox_agent_stop
	sandbox_agent_start --control-group users --consent-group nogroup ||
		{ tap_bail_out "carwalld did not start with both groups"; exit 1; }
	tap_check "both groups: the socket is open to every user (0666), checked per connection" \
		test "$(stat -c %a "$SANDBOX_RUN_DIR/carwalld.sock")" = 666
	tap_check "the control group may ask for the status" as 65532 "$cg" -- status
	tap_check "the consent group still switches" as 65534 "$ng" -- consent set crash-reports on
	out=$(as 65534 "$ng" -- status 2>&1)
	tap_check "the consent group still may not ask for the status" has 'permission denied: the consent group may only' "$out"
	out=$(as 65533 65533 -- consent set crash-reports off 2>&1)
	tap_check "another user connects but is refused" has 'permission denied: root or the control group only' "$out"
	tap_check "the switch stayed on" test "$(state crash-reports)" = on
else
	tap_skip "both groups" "no group 'users' distinct from nogroup"
fi

tap_done
