#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A signed bundle that expires while it is in force (production mode): it stays in force
# (enforcement is never loosened), `carwall status` says "expired": true and the agent logs it.
# After a restart of the agent, or a reboot (no pins), the expired bundle is refused and every
# app below the guard is refused everything, until a valid bundle is installed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

# Seconds the short bundle is valid after it was signed: long enough for the agent's start and
# the checks before it expires, also on a machine busy with other work (8 s were not, at a load
# average of 8 on 2 CPUs), and about ten times slower under emulation (CARWALL_VM=1).
LIFETIME=$([[ -n ${CARWALL_VM:-} ]] && echo 60 || echo 20)

sandbox_create "cw-x$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
keys=$SANDBOX_DIR/keys trust=$SANDBOX_DIR/trust
mkdir -p "$keys" "$trust"
chmod 0755 "$trust"
"$CARWALL" bundle keygen --out "$keys/oem" >/dev/null || { tap_bail_out "keygen failed"; exit 1; }
cp "$keys/oem.pub" "$trust/oem.pem"
chmod 0644 "$trust/oem.pem"

# bundle NAME VERSION NOT_AFTER: a bundle of tests/integration/flows.yaml in $SANDBOX_DIR/NAME.
bundle() {
	{
		printf 'bundle:\n  id: test.policy\n  version: %s\n  target: hu-test\n' "$2"
		printf '  not-before: 2020-01-01T00:00:00Z\n  not-after: %s\n' "$3"
		cat "$top/tests/integration/flows.yaml"
	} >"$SANDBOX_DIR/$1.payload"
	"$CARWALL" bundle sign --key "$keys/oem.key" "$SANDBOX_DIR/$1.payload" -o "$SANDBOX_DIR/$1" \
		>/dev/null
}
bundle long 2 2099-01-01T00:00:00Z || { tap_bail_out "signing failed"; exit 1; }
# Signed last, so that its lifetime starts as late as it can.
expires_at=$(($(date +%s) + LIFETIME))
bundle short 1 "$(date -u -d "@$expires_at" +%Y-%m-%dT%H:%M:%SZ)" ||
	{ tap_bail_out "signing failed"; exit 1; }

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
status_has() { cw --json status | tr -d ' \n' | grep -q "$1"; }
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"
cg_flow() { # ADDR PORT: one TCP flow from the app's cgroup (no `carwall run`: it needs a policy)
	local out token="x$BASHPID-${EPOCHREALTIME/./}"
	out=$(sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" \
		"$FLOWPROBE" tcp "$1" "$2" --token "$token" 2>&1)
	sandbox_judge "$out" "$token" tcp "$2"
}

SANDBOX_DEVELOPER_MODE=0
SANDBOX_POLICY=$SANDBOX_DIR/policy.bundle
cp "$SANDBOX_DIR/short" "$SANDBOX_POLICY"
sandbox_agent_start --trust-dir "$trust" --target hu-test ||
	{ tap_bail_out "carwalld did not start"; exit 1; }
tap_check "the short-lived bundle is in force" status_has '"bundle":{"id":"test.policy","version":1,'
tap_check "before it expires: status says \"expired\": false" status_has '"expired":false'
tap_expect_exit "before it expires: the OEM backend is reached" 0 cg_flow 198.51.100.20 443
tap_expect_exit "before it expires: the tracker is refused" 1 cg_flow 203.0.113.7 443
# Those checks mean something only if they ran before the expiry.
tap_check "the checks before the expiry ran in time (LIFETIME=$LIFETIME s)" test "$(date +%s)" -lt "$expires_at"

# Wait (bounded) until it has expired and the agent said so.
expired_logged() { grep -q "The bundle in force expired; it stays in force" "$SANDBOX_DIR/agent.log"; }
for ((i = 0; i < (LIFETIME + 10) * 10; i++)); do
	(($(date +%s) > expires_at)) && expired_logged && break
	sleep 0.1
done
tap_check "once expired: the agent logs that it stays in force" expired_logged
tap_check "once expired: status says \"expired\": true" status_has '"expired":true'
tap_check "once expired: the same bundle is still the one in force" \
	status_has '"bundle":{"id":"test.policy","version":1,'
tap_check "once expired: status --quiet still says enforcing" cw status --quiet
tap_expect_exit "once expired: the OEM backend is still reached" 0 cg_flow 198.51.100.20 443
tap_expect_exit "once expired: the tracker is still refused" 1 cg_flow 203.0.113.7 443

# An agent restart (a crash, Restart=always) reads the expired bundle again and refuses it; the
# policy its predecessor pinned came from that bundle and is no longer trusted: every app below
# the guard is refused everything.
sandbox_agent_stop
sandbox_agent_start --trust-dir "$trust" --target hu-test ||
	{ tap_bail_out "carwalld did not restart"; exit 1; }
tap_check "agent restart: the expired bundle is refused, saying so" \
	grep -q "bundle refused (expired)" "$SANDBOX_DIR/agent.log"
tap_check "agent restart: status names the error" status_has '"last_error":"[^"]*expired'
tap_expect_exit "agent restart: status --quiet says not enforcing a policy" 1 cw status --quiet
tap_expect_exit "agent restart: the app is refused even the OEM backend (fail closed)" 1 \
	cg_flow 198.51.100.20 443
tap_expect_exit "agent restart: the tracker is refused" 1 cg_flow 203.0.113.7 443

# After a reboot the pins are gone (here: unload): the expired bundle is refused and every app
# below the guard is refused everything.
sandbox_agent_stop
cw --pin-dir "$SANDBOX_PIN_DIR" unload >/dev/null
sandbox_agent_start --trust-dir "$trust" --target hu-test ||
	{ tap_bail_out "carwalld did not start"; exit 1; }
tap_check "after a reboot: the expired bundle is refused, saying so" \
	test "$(grep -c "bundle refused (expired)" "$SANDBOX_DIR/agent.log")" -ge 2
tap_expect_exit "after a reboot: status --quiet says not enforcing a policy" 1 cw status --quiet
tap_expect_exit "after a reboot: the app is refused even the OEM backend (fail closed)" 1 \
	cg_flow 198.51.100.20 443
tap_expect_exit "after a reboot: the tracker is refused" 1 cg_flow 203.0.113.7 443

# Recovery: a valid bundle.
tap_check "a valid bundle installs" cw bundle install "$SANDBOX_DIR/long"
tap_check "it is in force, not expired" status_has '"version":2,.*"expired":false'
tap_expect_exit "after it: the OEM backend is reached" 0 cg_flow 198.51.100.20 443
tap_expect_exit "after it: the tracker is refused" 1 cg_flow 203.0.113.7 443

tap_done
