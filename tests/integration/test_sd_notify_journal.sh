#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The agent under systemd (carwalld.service is Type=notify): READY=1 only once the programs
# are attached and a policy (or the fail-closed guard) is in force, with STATUS saying which;
# STOPPING=1 on SIGTERM; with JOURNAL_STREAM set every line it logs carries its syslog priority
# for journald ("<N>"). The notify socket is a datagram socket of this test (NOTIFY_SOCKET);
# the moment READY=1 arrives, the listener makes the app try the tracker: it must already be
# refused.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

if ! command -v python3 >/dev/null 2>&1; then
	tap_skip "sd_notify and journald priorities" "python3 (the notify socket's listener) is not installed"
	tap_done
	exit
fi

sandbox_create "cw-n$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
policy=$SANDBOX_DIR/policy.yaml
SANDBOX_POLICY=$policy
cp "$top/tests/integration/flows.yaml" "$policy"
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"

# listen SOCKET OUT: a notify socket; each datagram is a line of OUT ("|" for newlines), and on
# READY=1 the result of a flow from the app to the tracker follows as "flow: RESULT". Ends on
# STOPPING=1 or after 30 s without a datagram.
listen() {
	python3 - "$1" "$2" "$FLOWPROBE" "/run/netns/$SANDBOX_HU_NETNS" "$app_cg" "n$$" <<'EOF' &
import socket, subprocess, sys
path, out, flowprobe, netns, cgroup, token = sys.argv[1:7]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(30)
with open(out, "a", buffering=1) as f:
    print("listening", file=f)
    while True:
        try:
            d = s.recv(4096).decode(errors="replace")
        except socket.timeout:
            break
        print(d.replace("\n", "|"), file=f)
        if "READY=1" in d.split("\n"):
            r = subprocess.run(["nsenter", "--net=" + netns, "--", "sh", "-c",
                                'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup,
                                flowprobe, "tcp", "203.0.113.7", "443", "--token", token],
                               capture_output=True, text=True, timeout=10)
            print("flow: " + r.stdout.strip(), file=f)
        if "STOPPING=1" in d.split("\n"):
            break
EOF
	LISTEN_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q listening "$2" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
stop_listener() {
	_sandbox_stop_pid "$LISTEN_PID" 20 >/dev/null 2>&1 || true
}
# start_agent OUT [ARGS]: the agent with NOTIFY_SOCKET and JOURNAL_STREAM, as systemd starts it.
start_agent() {
	local out=$1
	shift
	rm -f "$SANDBOX_DIR/notify.sock"
	listen "$SANDBOX_DIR/notify.sock" "$out" ||
		{ tap_bail_out "the notify listener did not start"; exit 1; }
	NOTIFY_SOCKET=$SANDBOX_DIR/notify.sock JOURNAL_STREAM=8:42 sandbox_agent_start "$@" ||
		{ tap_bail_out "carwalld did not start"; exit 1; }
}
wait_line() { # FILE PATTERN: bounded wait for a line matching PATTERN
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# ---- control: without carwall the flow the listener makes reaches the tracker --------------------
out=$(sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
	"$FLOWPROBE" tcp 203.0.113.7 443 --token "ctl$$" 2>&1)
tap_check "control, no carwall: the app's cgroup reaches the tracker" \
	test "$(sandbox_judge "$out" "ctl$$" tcp 443)" = ok

# ---- a valid policy ------------------------------------------------------------------------------
start_agent "$SANDBOX_DIR/notify1"
tap_check "READY=1 with STATUS=Enforcing" wait_line "$SANDBOX_DIR/notify1" '^READY=1|STATUS=Enforcing$'
tap_check "at READY=1 the policy is already enforced: the tracker is refused (EPERM at connect)" \
	wait_line "$SANDBOX_DIR/notify1" '^flow: result=EPERM stage=connect '
tap_check "and nothing of that flow reached the tracker" bash -c "! grep -q ' n$$\$' '$SANDBOX_SERVER_LOG'"
sandbox_run_app mediaplayer "$FLOWPROBE" tcp 203.0.113.7 443 >/dev/null 2>&1 # an event
printf 'version: 1\napps: [\n' >"$SANDBOX_DIR/bad.tmp"
mv "$SANDBOX_DIR/bad.tmp" "$policy"
"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload >/dev/null 2>&1 # refused: an error line
wait_line "$SANDBOX_DIR/agent.log" 'Policy refused' >/dev/null
sandbox_agent_stop
tap_check "SIGTERM: STOPPING=1" wait_line "$SANDBOX_DIR/notify1" '^STOPPING=1$'
stop_listener

# journald priorities: every line "<N>", N the syslog level of what it says.
log=$SANDBOX_DIR/agent.log
tap_check "JOURNAL_STREAM: every line of the agent's log carries a priority" \
	bash -c "! grep -qv '^<[0-7]>' '$log'"
tap_check "JOURNAL_STREAM: 'Ready' is info (<6>)" grep -q '^<6>Ready; control socket' "$log"
tap_check "JOURNAL_STREAM: a refused flow's event is a warning (<4>)" grep -q '^<4>event=refused app=mediaplayer' "$log"
tap_check "JOURNAL_STREAM: a refused policy is an error (<3>)" grep -q '^<3>Policy refused' "$log"
tap_check "JOURNAL_STREAM: developer mode is a warning (<4>)" grep -q '^<4>DEVELOPER MODE' "$log"

# ---- no valid policy: READY=1 all the same, saying apps are refused -----------------------------
"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" --pin-dir "$SANDBOX_PIN_DIR" unload >/dev/null 2>&1
: >"$log"
start_agent "$SANDBOX_DIR/notify2"
tap_check "no valid policy: READY=1 with STATUS=No valid policy: apps refused" \
	wait_line "$SANDBOX_DIR/notify2" '^READY=1|STATUS=No valid policy: apps refused$'
tap_check "no valid policy: at READY=1 the app is already refused (the guard)" \
	wait_line "$SANDBOX_DIR/notify2" '^flow: result=EPERM stage=connect '
sandbox_agent_stop
stop_listener

# Without JOURNAL_STREAM: plain lines.
: >"$log"
cp "$top/tests/integration/flows.yaml" "$policy"
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
sandbox_agent_stop
tap_check "without JOURNAL_STREAM: plain 'carwalld: ' lines, no priority prefix" bash -c "grep -q '^carwalld: Ready' '$log' && ! grep -q '^<[0-7]>' '$log'"

tap_done
