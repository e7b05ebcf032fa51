#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# journald's native protocol (carwalld built with WITH_SYSTEMD=1, stderr the journal stream):
# each flow record is one journal entry whose fields name the flow (CARWALL_APP, CARWALL_DEST,
# CARWALL_PORT, CARWALL_PROTO, CARWALL_VERDICT...), with the MESSAGE_ID of its kind and its
# PRIORITY (refused: warning); the lifecycle messages have theirs. The journal here is this
# test's: in a private mount namespace a tmpfs hides /run/systemd, and a datagram socket at
# /run/systemd/journal/socket (where sd_journal_sendv sends) records each entry. When journald
# does not answer, the record goes to stderr ("<4>..."); the events log has it in any case.
# The systemd guest (tests/systemd/test_journal.sh) checks the same with journald itself.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
# Message ids: userspace/lib/message_ids.h.
id_of() {
	sed -n "s/^#define CW_MESSAGE_$1 \"\\([0-9a-f]*\\)\"\$/\\1/p" "$top/userspace/lib/message_ids.h"
}

if ! command -v python3 >/dev/null 2>&1 || ! command -v unshare >/dev/null 2>&1; then
	tap_skip "journald fields" "python3 (the journal socket) or unshare is not installed"
	tap_done
	exit 0
fi
# `make check WITH_SYSTEMD=0` (the variable reaches the tests' environment): a build without
# libsystemd, where the agent writes "<N>" lines (tests/integration/test_sd_notify_journal.sh).
if [[ ${WITH_SYSTEMD:-1} == 0 ]]; then
	tap_skip "journald fields" "built with WITH_SYSTEMD=0: no journald native protocol"
	tap_done
	exit 0
fi
if ! ldd "$bin/carwalld" 2>/dev/null | grep -q libsystemd; then
	tap_not_ok "carwalld speaks journald's native protocol (linked with libsystemd)" \
		"$bin/carwalld is not linked with libsystemd"
	tap_done
	exit 1
fi
# Everything below in a mount namespace of its own: the tmpfs on /run/systemd is seen by this
# test and its agent only.
if [[ ${CW_JOURNAL_NS:-} != 1 ]]; then
	made=0
	[[ -d /run/systemd ]] || { mkdir /run/systemd && made=1; }
	rc=0
	CW_JOURNAL_NS=1 unshare --mount --propagation private bash "$0" "$@" || rc=$?
	((made == 0)) || rmdir /run/systemd 2>/dev/null
	exit "$rc"
fi
mount -t tmpfs -o mode=0755 tmpfs /run/systemd ||
	{ tap_bail_out "cannot mount a tmpfs on /run/systemd"; exit 1; }
mkdir /run/systemd/journal

. "$top/scripts/sandbox.sh"
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
sandbox_create "cw-j$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
cp "$top/tests/integration/flows.yaml" "$SANDBOX_POLICY"
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"
entries=$SANDBOX_DIR/journal.jsonl

# The journal: each datagram of journald's native protocol (KEY=VALUE lines, or KEY, a
# little-endian 64-bit length and the value for values with a newline) as one JSON object per
# line of $entries; ends after 60 s or on SIGTERM.
python3 - /run/systemd/journal/socket "$entries" <<'EOF' &
import json, signal, socket, struct, sys
path, out = sys.argv[1:3]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(60)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
with open(out, "a", buffering=1) as f:
    print(json.dumps({"LISTENING": "1"}), file=f)
    while True:
        try:
            d, anc, _, _ = s.recvmsg(1 << 20, 1024)
        except socket.timeout:
            break
        e, i = {}, 0
        if anc:
            e["ANCILLARY"] = "1"  # a memfd: entries here are small, never expected
        while i < len(d):
            nl = d.find(b"\n", i)
            line = d[i:nl]
            if b"=" in line:
                k, v = line.split(b"=", 1)
                i = nl + 1
            else:
                k = line
                n = struct.unpack("<Q", d[nl + 1:nl + 9])[0]
                v = d[nl + 9:nl + 9 + n]
                i = nl + 9 + n + 1
            e[k.decode()] = v.decode(errors="replace")
        print(json.dumps(e), file=f)
EOF
journal_pid=$!
stop_journal() {
	[[ -n ${journal_pid:-} ]] || return 0
	kill "$journal_pid" 2>/dev/null
	wait "$journal_pid" 2>/dev/null
	journal_pid=
}
trap 'stop_journal; _sandbox_exit_trap' EXIT
for ((i = 0; i < 100; i++)); do
	grep -q LISTENING "$entries" 2>/dev/null && break
	sleep 0.05
done
grep -q LISTENING "$entries" 2>/dev/null ||
	{ tap_bail_out "the journal socket did not start"; exit 1; }

# entry MESSAGE_ID [FIELD=VALUE...]: the first entry with that id and those fields, as
# FIELD=VALUE lines (a newline in a value as a space). Waits (10 s at most) with awk, reads with
# one python3: under emulation every python3 start costs a second.
entry() {
	local id=$1 kv i end=$((SECONDS + 10)) pats
	shift
	pats="\"MESSAGE_ID\": \"$id\""
	for kv in "$@"; do pats+=$'\n'"\"${kv%%=*}\": \"${kv#*=}\""; done
	for ((i = 0; i < 200 && SECONDS < end; i++)); do
		awk -v p="$pats" 'BEGIN { n = split(p, want, "\n") }
			{ ok = 1; for (k = 1; k <= n; k++) if (!index($0, want[k])) ok = 0; if (ok) f = 1 }
			END { exit !f }' "$entries" 2>/dev/null && break
		sleep 0.05
	done
	python3 - "$entries" "$id" "$@" <<-'EOF'
		import json, sys
		want = dict(a.split("=", 1) for a in sys.argv[3:])
		for line in open(sys.argv[1]):
		    e = json.loads(line)
		    if e.get("MESSAGE_ID") == sys.argv[2] and all(e.get(k) == v for k, v in want.items()):
		        for k, v in e.items():
		            print(k + "=" + v.replace("\n", " "))
		        sys.exit(0)
		sys.exit(1)
	EOF
}
# field ENTRY NAME: the value of NAME in an entry of entry().
field() {
	local line
	while IFS= read -r line; do
		[[ $line == "$2="* ]] && { printf '%s\n' "${line#*=}"; return 0; }
	done <<<"$1"
	return 0
}

# ---- control: without carwall the app's cgroup reaches the tracker --------------------------------
out=$(sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
	"$FLOWPROBE" tcp 203.0.113.7 443 --token "ctl$$" 2>&1)
tap_check "control, no carwall: the app's cgroup reaches the tracker" \
	test "$(sandbox_judge "$out" "ctl$$" tcp 443)" = ok

# ---- the agent, its stderr the journal stream ---------------------------------------------------
: >"$SANDBOX_DIR/agent.log"
stream=$(stat -c '%d:%i' "$SANDBOX_DIR/agent.log")
JOURNAL_STREAM=$stream sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }

e=$(entry "$(id_of READY)")
tap_check "Ready: its MESSAGE_ID, PRIORITY=6 (info), SYSLOG_IDENTIFIER=carwalld" \
	test "$(field "$e" PRIORITY) $(field "$e" SYSLOG_IDENTIFIER)" = "6 carwalld"
e=$(entry "$(id_of POLICY_IN_FORCE)")
tap_check "policy in force: its MESSAGE_ID, PRIORITY=6, MESSAGE 'Policy ... in force'" \
	bash -c '[[ $1 == 6 && $2 == "Policy "*" in force "* ]]' _ "$(field "$e" PRIORITY)" "$(field "$e" MESSAGE)"

res=$(sandbox_app_flow mediaplayer tcp 203.0.113.7 443)
tap_check "the app's TCP to the tracker is refused (EPERM at connect, the server saw nothing)" \
	test "$res" = EPERM
e=$(entry "$(id_of FLOW_REFUSED)" CARWALL_APP=mediaplayer CARWALL_PORT=443)
tap_check "the refused flow is one journal entry with its MESSAGE_ID and CARWALL_APP" test -n "$e"
for kv in PRIORITY=4 CARWALL_EVENT=refused CARWALL_DEST=203.0.113.7 CARWALL_PROTO=tcp \
	CARWALL_FAMILY=ipv4 CARWALL_HOOK=connect4 CARWALL_VERDICT=default-deny \
	"CARWALL_RULE=default deny" CARWALL_COUNT=1 CARWALL_COMM=flowprobe; do
	tap_check "refused flow entry: ${kv%%=*}=${kv#*=}" test "$(field "$e" "${kv%%=*}")" = "${kv#*=}"
done
tap_check "refused flow entry: CARWALL_PID and CARWALL_CGROUP_ID are numbers" \
	bash -c '[[ $1 =~ ^[1-9][0-9]*$ && $2 =~ ^[1-9][0-9]*$ ]]' _ \
	"$(field "$e" CARWALL_PID)" "$(field "$e" CARWALL_CGROUP_ID)"
# The executable is read from /proc when the record is written: absent once the sender is gone.
tap_check "refused flow entry: CARWALL_EXE is flowprobe's, or absent (the sender had exited)" \
	bash -c '[[ -z $1 || $1 == "$2" ]]' _ "$(field "$e" CARWALL_EXE)" "$(readlink -f "$FLOWPROBE")"
tap_check "refused flow entry: MESSAGE is the logfmt line" \
	bash -c '[[ $1 == "event=refused app=mediaplayer "*" dst=203.0.113.7 port=443 "* ]]' _ \
	"$(field "$e" MESSAGE)"
tap_check "the record went to the journal only, not to stderr as well" \
	bash -c '! grep -q "event=refused" "$1"' _ "$SANDBOX_DIR/agent.log"

# ---- journald not answering: the record goes to stderr, with its priority ------------------------
# The socket stays, nobody reads it: sd_journal_sendv fails (ECONNREFUSED). (With no socket at
# all libsystemd drops the entry without an error; every record is in the events log anyway.)
stop_journal
res=$(sandbox_app_flow mediaplayer tcp 203.0.113.7 8443)
tap_check "journal not answering: the app's TCP to the tracker on 8443 is refused" test "$res" = EPERM
found=0
for ((i = 0; i < 100; i++)); do
	grep -q '^<4>event=refused app=mediaplayer .* port=8443 ' "$SANDBOX_DIR/agent.log" && { found=1; break; }
	sleep 0.05
done
tap_check "journal not answering: the record reaches stderr as a warning (<4>)" test "$found" = 1
rm -f /run/systemd/journal/socket
res=$(sandbox_app_flow mediaplayer tcp 203.0.113.7 9000)
tap_check "no journal socket: the app's TCP to the tracker on 9000 is refused" test "$res" = EPERM
found=0
for ((i = 0; i < 100; i++)); do
	"$CARWALL" events --json --app mediaplayer --state-dir "$SANDBOX_STATE_DIR" 2>/dev/null |
		grep -Eq '"port": ?9000[,}]' && { found=1; break; }
	sleep 0.05
done
tap_check "no journal socket: the record is in the events log (carwall events)" test "$found" = 1

sandbox_agent_stop
tap_done
