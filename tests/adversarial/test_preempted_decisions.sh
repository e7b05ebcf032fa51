#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# No decision mixes two policies, even when it is preempted across two flips (issue 11, case 8).
# Programs run under RCU with migration disabled, not preemption disabled; on CONFIG_PREEMPT and
# PREEMPT_RT kernels (common on head units) a decision can be preempted between reading the
# active generation and its last lookup. The agent waits for a grace period before it rewrites
# the generation that was active (userspace/agent/loader.c), so such a decision still finishes on one
# policy. Stress: two policies that swap the order of two apps (so each app's index, and the
# scope of its rules, changes at every flip) alternate hundreds of times, while the app sends,
# at SCHED_IDLE on a CPU kept busy, datagrams that only the OTHER app may send: a decision that
# took the app's index from one policy and the rules from the other would let one through.
# Every one must be refused with EPERM, and the server must receive none.
# (On a kernel without full preemption the window cannot open; the test then guards the rest:
# the uname line says which kernel ran it.)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
RELOADS=${CARWALL_VM:+60}
RELOADS=${RELOADS:-300}

sandbox_create "cw-pd$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
SANDBOX_POLICY=$SANDBOX_DIR/policy.yaml
app_slice="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice"
mkdir -p "$app_slice/agl-app@mediaplayer.service" "$app_slice/agl-app@navigation.service"

# The two apps in one order or the other; mediaplayer may never send to the tracker's UDP 9000,
# navigation always may.
write_policy() { # mediaplayer-first|navigation-first
	local media="  mediaplayer:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp"
	local nav="  navigation:
    allow:
      - to: [203.0.113.7]
        ports: [9000]
        proto: udp"
	{
		echo "version: 1"
		echo "apps:"
		if [[ $1 == mediaplayer-first ]]; then
			echo "$media"
			echo "$nav"
		else
			echo "$nav"
			echo "$media"
		fi
	} >"$SANDBOX_POLICY.new" && mv "$SANDBOX_POLICY.new" "$SANDBOX_POLICY"
}
write_policy mediaplayer-first
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_diag "kernel: $(uname -r) $(uname -v)"

# Control: the flow is real (navigation's datagram arrives) and mediaplayer's is refused.
out=$(sandbox_run_app navigation "$FLOWPROBE" udp 203.0.113.7 9000 --token "nav-$$" 2>&1)
tap_check "control: navigation's datagram to the tracker arrives" sandbox_server_saw udp 9000 "nav-$$"
out=$(sandbox_run_app mediaplayer "$FLOWPROBE" udp 203.0.113.7 9000 --token "med-$$" 2>&1)
tap_check "control: mediaplayer's is refused with EPERM at sendmsg" \
	bash -c "grep -q 'result=EPERM stage=send' <<<'$out'"

# A busy loop on CPU 0 at normal priority, bounded in time; the app at SCHED_IDLE on CPU 0,
# sending batches of datagrams until every reload is done (bounded too: BATCHES at most, 300 s),
# so that the reloads happen under its traffic however fast or slow the machine is.
BATCHES=20000 BATCH=200
rm -f "$SANDBOX_DIR/stop"
timeout 300 taskset -c 0 bash -c 'while :; do :; done' &
busy=$!
sandbox_run_app mediaplayer timeout 300 taskset -c 0 chrt --idle 0 bash -c "
	for ((b = 0; b < $BATCHES; b++)); do
		[ -e '$SANDBOX_DIR/stop' ] && [ \$b -gt 0 ] && break
		'$FLOWPROBE' udp 203.0.113.7 9000 --token mix-$$ --repeat $BATCH --timeout-ms 200 | tail -1
		sleep 0.01
	done" >"$SANDBOX_DIR/worker.out" 2>&1 &
worker=$!

reloads=0 failed=0 during=0
for ((i = 0; i < RELOADS; i++)); do
	((i % 2)) && write_policy mediaplayer-first || write_policy navigation-first
	if "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload >/dev/null 2>&1; then
		reloads=$((reloads + 1))
	else
		failed=$((failed + 1))
	fi
	_sandbox_alive "$worker" && during=$((during + 1))
done
touch "$SANDBOX_DIR/stop"
wait "$worker"
kill "$busy" 2>/dev/null
wait "$busy" 2>/dev/null
# Every batch line: repeat=N ok=N denied=N other=N.
read -r sent ok denied other < <(awk -F'[ =]' '$1 == "repeat" { s += $2; o += $4; d += $6; x += $8 }
	END { print s + 0, o + 0, d + 0, x + 0 }' "$SANDBOX_DIR/worker.out")
tap_diag "$reloads reloads ($failed failed, $during while the app sent); the app sent $sent: ok=$ok denied=$denied other=$other"
tap_check "reloads alternated under the app's traffic" \
	test "$reloads" -eq "$RELOADS" -a "$failed" -eq 0 -a "$during" -ge $((RELOADS * 9 / 10))
tap_check "every one of the app's datagrams was refused with EPERM" \
	test "$sent" -gt 0 -a "$denied" -eq "$sent" -a "$ok" -eq 0 -a "$other" -eq 0
tap_check "the server received none of them" bash -c "! grep -q 'mix-$$' '$SANDBOX_SERVER_LOG'"

tap_done
