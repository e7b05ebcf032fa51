#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Another agent's program rewrites destinations (tests/adversarial/redirect.bpf.c turns the OEM
# backend 198.51.100.20:443 into the tracker 203.0.113.7:9000). Below carwall's attach point it
# runs first, and carwall judges the rewritten destination. At carwall's attach point after
# carwall's program it runs last: the connect hook judged the old destination, but the egress
# backstop judges the packet's real one, and carwall reports the program.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"
. "$top/tests/lib/adversary.sh"
. "$top/tests/lib/cgroups.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe
SANDBOX_POLICY=$top/tests/integration/flows.yaml

trap adversary_cleanup EXIT # runs first; sandbox_create chains its own cleanup after it
sandbox_create "cw-a$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"

adversary_load redirect connect4 ||
	{ tap_bail_out "cannot load the adversary program $ADVERSARY"; exit 1; }

n=0
# flow_to_oem: the app connects to the OEM backend; sets OUT (flowprobe's result), TOKEN.
flow_to_oem() {
	n=$((n + 1))
	TOKEN="adv$$-$n"
	OUT=$(in_cgroup "$app_cg" "$FLOWPROBE" tcp 198.51.100.20 443 --token "$TOKEN" --timeout-ms 1500 2>&1)
	tap_diag "flow $TOKEN: $OUT"
}

# ---- control: without carwall the rewrite sends the app to the tracker ------------------------
adversary_attach "$app_cg"
flow_to_oem
tap_check "control, no carwall: the rewritten connection reaches the tracker's port 9000" \
	sandbox_server_saw tcp 9000 "$TOKEN"

# ---- below carwall's attach point: it runs first, carwall judges the rewritten destination -----
sandbox_agent_start || { tap_bail_out "carwalld did not start"; exit 1; }
flow_to_oem
refused_at_connect() { sandbox_refused "$OUT" connect; }
tap_check "rewrite below carwall: the connect() fails with EPERM" refused_at_connect
not_saw() { ! sandbox_server_saw "$@"; }
tap_check "rewrite below carwall: nothing reaches the tracker" not_saw tcp 9000 "$TOKEN"

# ---- at carwall's attach point, after carwall's program: it runs last --------------------------
adversary_detach
adversary_attach "$SANDBOX_CGROUP_ROOT"
flow_to_oem
tap_check "rewrite after carwall: the egress backstop keeps the packets from the tracker" \
	not_saw tcp 9000 "$TOKEN"
# The connect hook allowed it, so connect() cannot fail with EPERM: the SYN is dropped at egress
# (TCP ignores the EPERM of a dropped SYN and retransmits), and the app's connect times out.
syn_dropped() { [[ $OUT == *"result=ETIMEDOUT stage=connect "* ]]; }
tap_check "rewrite after carwall: the connection does not complete (SYN dropped, connect times out)" \
	syn_dropped
tap_check "rewrite after carwall: the refusal is reported by the egress hook" \
	bash -c "'$CARWALL' events --state-dir '$SANDBOX_STATE_DIR' --json | grep -q '\"dst\":\"203.0.113.7\",\"port\":9000,\"hook\":\"skb_egress\"'"
tap_check "rewrite after carwall: status names the program that runs after carwall's" \
	bash -c "'$CARWALL' --run-dir '$SANDBOX_RUN_DIR' --json status | tr -d ' \n' | grep -q '\"overriding_programs\":\[{\"hook\":\"connect4\"'"
"$CARWALL" --run-dir "$SANDBOX_RUN_DIR" reload >/dev/null 2>&1
tap_check "rewrite after carwall: the agent warns about it" \
	grep -q "runs after carwall's connect4" "$SANDBOX_DIR/agent.log"

# Without the adversary the same flow is allowed again.
adversary_detach
flow_to_oem
tap_check "without the rewrite: the app reaches its OEM backend" sandbox_server_saw tcp 443 "$TOKEN"

tap_done
