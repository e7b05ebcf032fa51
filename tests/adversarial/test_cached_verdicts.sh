#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Verdicts that outlive their policy (issue 11, case 1), on the real kernel with the real agent.
# The egress program caches its last verdict per socket. A cached verdict must never answer for
# a later policy, even when two reloads bring the same generation slot back, and what counts as
# an accepted connection (judged by its peer's address alone) must be the kernel's word, not a
# guess from ports an app can choose:
#   1. an app's connection that shares its local port with a listener of the app's own
#      (SO_REUSEPORT) is cut by revocation when the policy refuses its destination, and after a
#      second reload (same rules, the file differs by a comment) it still reaches nothing;
#   2. an app's connection that no revocation pass can find (its process left the app's
#      cgroup; the socket is still the app's) stays silent across two reloads, then sends:
#      the server receives nothing;
#   3. a connection the app really accepted is kept across a reload that still allows its
#      peer's address, and its replies still arrive; one from a peer the new policy refuses is
#      cut.
# Each is first shown to work while the policy allows it (the control step).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/procs.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
PEER=$top/tests/adversarial/sockpeer.py
REC_PORT=7100 # the recording server in the "internet"
WAIT_TENTHS=30 # a flow that must arrive gets 3 s; one that must not, the same

trap procs_stop_all EXIT # sandbox_create keeps it and runs it before destroying the sandbox
sandbox_create "cw-cv$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
dir=$SANDBOX_DIR
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
other_cg="$SANDBOX_CGROUP_ROOT/system.slice/other.service"
mkdir -p "$app_cg" "$other_cg"

# open: the tracker's port 7100 is allowed; closed: it is not. Both allow the OEM backend on 443
# (so 198.51.100.20 stays a TCP peer the app may reach).
write_policy() { # open|closed [COMMENT]
	{
		echo "# ${2:-}"
		echo "version: 1"
		echo "apps:"
		echo "  mediaplayer:"
		echo "    allow:"
		echo "      - to: [198.51.100.20]"
		echo "        ports: [443]"
		echo "        proto: tcp"
		if [[ $1 == open ]]; then
			echo "      - to: [203.0.113.7]"
			echo "        ports: [$REC_PORT]"
			echo "        proto: tcp"
		fi
	} >"$SANDBOX_POLICY.new" && mv "$SANDBOX_POLICY.new" "$SANDBOX_POLICY"
}
reload() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload >/dev/null 2>&1; }

# wait_for FILE PATTERN: bounded wait for a line matching the extended regex.
wait_for() {
	local i
	for ((i = 0; i < WAIT_TENTHS * 10; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	return 1
}
recorded() { grep -qE "^[^ ]+ $1\$" "$dir/recorded.log" 2>/dev/null; }
# not_recorded TOKEN: the server has not seen TOKEN after the whole bounded wait.
not_recorded() {
	local i
	for ((i = 0; i < WAIT_TENTHS; i++)); do
		recorded "$1" && return 1
		sleep 0.1
	done
	return 0
}

# start NAME WHERE(app|net) sockpeer-args...: a sockpeer fed by a pipe, output in $dir/NAME.out.
start() {
	local name=$1 where=$2
	shift 2
	mkfifo "$dir/$name.in"
	if [[ $where == app ]]; then
		sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
			python3 "$PEER" "$@" <"$dir/$name.in" >"$dir/$name.out" 2>&1 &
	else
		sandbox_in_net python3 "$PEER" "$@" <"$dir/$name.in" >"$dir/$name.out" 2>&1 &
	fi
	PIDS[$name]=$!
	exec {FDS[$name]}>"$dir/$name.in"
}
# tell NAME LINE: one command; in a subshell, so that a sockpeer that is gone (SIGPIPE) cannot
# end this script.
tell() { (echo "$2" >&"${FDS[$1]}") 2>/dev/null; }
quit() { # NAME: ends one sockpeer
	tell "$1" quit
	procs_stop "$1"
}

write_policy open
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
start recorder net record "$REC_PORT" "$dir/recorded.log"
wait_for "$dir/recorder.out" '^ready' ||
	{ tap_bail_out "the recording server did not start"; exit 1; }

# ---- 1. a connection sharing its port with the app's own listener ----------------------------
start reuse app app 203.0.113.7 "$REC_PORT" --reuseport-listen 7777
wait_for "$dir/reuse.out" '^(connected|error)'
tap_check "control: the app connects to the tracker's port 7100 from its listener's port 7777" \
	grep -q '^connected 7777$' "$dir/reuse.out"
tell reuse "send r1-$$"
wait_for "$dir/recorded.log" " r1-$$\$"
tap_check "control: the server receives what the app sends while the policy allows it" recorded "r1-$$"

write_policy closed "refuses 7100"
reload
write_policy closed "the same rules again"
reload
tell reuse "send r2-$$"
wait_for "$dir/reuse.out" "^(sent r2-$$|error)"
tap_check "after two reloads that refuse it, the server receives nothing from that connection" \
	not_recorded "r2-$$"
tap_check "revocation cut it although it shares its listener's port: the app's send fails" \
	grep -qE '^error (ECONNABORTED|EPIPE|ECONNRESET)$' "$dir/reuse.out"
tap_diag "app: $(tr '\n' ' ' <"$dir/reuse.out")"
quit reuse

# ---- 2. a connection no revocation pass can find ------------------------------------------------
write_policy open "open again"
reload
start leave app app 203.0.113.7 "$REC_PORT" --leave-cgroup "$other_cg/cgroup.procs"
wait_for "$dir/leave.out" '^(connected|error)'
tap_check "control: the app connects, then its process leaves the app's cgroup" \
	grep -q '^connected' "$dir/leave.out"
tell leave "send l1-$$"
wait_for "$dir/recorded.log" " l1-$$\$"
tap_check "control: the socket, still the app's, reaches the server from outside the app's cgroup" \
	recorded "l1-$$"
write_policy closed "refuses 7100"
reload
write_policy closed "the same rules again"
reload
tell leave "send l2-$$"
wait_for "$dir/leave.out" "^(sent l2-$$|error)"
tap_check "after two reloads, a verdict cached under the first policy lets nothing through" \
	not_recorded "l2-$$"
tap_check "the refusal is reported by the egress program" \
	bash -c "'$CARWALL' events --state-dir '$SANDBOX_STATE_DIR' --json |
		grep -q '\"dst\":\"203.0.113.7\",\"port\":$REC_PORT,\"hook\":\"skb_egress\"'"
quit leave

# ---- 3. connections the app accepted ----------------------------------------------------------
start listener app accept 7800
wait_for "$dir/listener.out" '^ready' ||
	{ tap_bail_out "the app's listener did not start"; exit 1; }
start client net app 192.0.2.1 7800 --source 198.51.100.20
wait_for "$dir/client.out" '^(connected|error)'
tell client "send a1-$$"
wait_for "$dir/client.out" "^got OK a1-$$\$"
tap_check "control: the app answers a client at an address it may reach over TCP" \
	grep -q "^got OK a1-$$\$" "$dir/client.out"
write_policy closed "a reload that still allows the peer's address"
reload
tell client "send a2-$$"
wait_for "$dir/client.out" "^got OK a2-$$\$"
tap_check "after a reload the accepted connection is kept and the app's answer arrives" \
	grep -q "^got OK a2-$$\$" "$dir/client.out"
quit client
quit listener

write_policy open "allows the tracker on 7100: its address is a TCP peer the app may reach"
reload
start listener2 app accept 7801
wait_for "$dir/listener2.out" '^ready' ||
	{ tap_bail_out "the app's second listener did not start"; exit 1; }
start client2 net app 192.0.2.1 7801 --source 203.0.113.7
wait_for "$dir/client2.out" '^(connected|error)'
tell client2 "send b1-$$"
wait_for "$dir/client2.out" "^got OK b1-$$\$"
tap_check "control: the app answers a client at the tracker's address while the policy allows it" \
	grep -q "^got OK b1-$$\$" "$dir/client2.out"
write_policy closed "refuses the tracker: its address is no longer a TCP peer of the app"
reload
tell client2 "send b2-$$"
wait_for "$dir/client2.out" "^(got OK b2-$$|error)"
tap_check "after a reload that refuses the peer, the app's accepted connection answers no more" \
	bash -c "! grep -q '^got OK b2-$$' '$dir/client2.out'"
# (Its reset is an app packet to a refused peer too: dropped at egress, the client never sees it.)
tap_check "revocation cut the accepted connection: the app's socket reports ECONNABORTED" \
	grep -q '^error ECONNABORTED$' "$dir/listener2.out"
tap_diag "listener: $(tr '\n' ' ' <"$dir/listener2.out"); client: $(tr '\n' ' ' <"$dir/client2.out")"
quit client2
quit listener2

tap_done
