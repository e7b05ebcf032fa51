#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The agent in production mode (its default): it enforces only bundles signed by trusted keys
# for its own target, newer than the one it has and valid now. `carwall bundle install` puts a
# bundle in force and keeps it; every refusal leaves the last good policy in force and says why
# (exit code, log line, carwall status). Signing and verification themselves are covered by
# tests/unit/lib/test_bundle.c and tests/integration/test_bundle_cli.sh.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

sandbox_create "cw-b$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
keys=$SANDBOX_DIR/keys trust=$SANDBOX_DIR/trust
mkdir -p "$keys" "$trust"
chmod 0755 "$trust"
for k in oem other; do
	"$CARWALL" bundle keygen --out "$keys/$k" >/dev/null ||
		{ tap_bail_out "keygen failed"; exit 1; }
done
cp "$keys/oem.pub" "$trust/oem.pem"
chmod 0644 "$trust/oem.pem"

# bundle NAME VERSION [TARGET] [NOT_AFTER] [KEY] [POLICY]: a signed bundle in $SANDBOX_DIR/NAME
bundle() {
	local name=$1 version=$2 target=${3:-hu-test} not_after=${4:-2099-01-01T00:00:00Z}
	local key=${5:-oem} policy=${6:-$top/tests/integration/flows.yaml}
	{
		printf 'bundle:\n  id: test.policy\n  version: %s\n  target: %s\n' "$version" "$target"
		printf '  not-before: 2020-01-01T00:00:00Z\n  not-after: %s\n' "$not_after"
		cat "$policy"
	} >"$SANDBOX_DIR/$name.payload"
	"$CARWALL" bundle sign --key "$keys/$key.key" "$SANDBOX_DIR/$name.payload" \
		-o "$SANDBOX_DIR/$name" >/dev/null
}
# A second policy, with one more app.
cp "$top/tests/integration/flows.yaml" "$SANDBOX_DIR/wide.yaml"
cat >>"$SANDBOX_DIR/wide.yaml" <<'EOF'
  tracker-friend:
    allow:
      - to: [203.0.113.7]
EOF
bundle v1 1
bundle v2 2
bundle v3-wide 3 hu-test 2099-01-01T00:00:00Z oem "$SANDBOX_DIR/wide.yaml"
bundle v9-other-target 9 other-board
bundle v9-expired 9 hu-test 2021-01-01T00:00:00Z
bundle v9-untrusted 9 hu-test 2099-01-01T00:00:00Z other
cp "$SANDBOX_DIR/v2" "$SANDBOX_DIR/v2-tampered"
sed -i 's/ports: \[443\]/ports: [444]/' "$SANDBOX_DIR/v2-tampered"

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
status_has() { cw --json status | tr -d ' \n' | grep -q "$1"; }
# app_tcp ADDR PORT: one TCP flow of mediaplayer; 0 completed, 1 refused at connect with nothing
# at the server, 2 anything else (sandbox_app_flow).
app_tcp() { sandbox_app_flow mediaplayer tcp "$1" "$2"; }

# ---- production mode refuses a plain policy ----------------------------------------------------
SANDBOX_DEVELOPER_MODE=0
SANDBOX_POLICY=$SANDBOX_DIR/policy.bundle
cp "$top/tests/integration/flows.yaml" "$SANDBOX_POLICY"
sandbox_agent_start --trust-dir "$trust" --target hu-test --bundle-id test.policy ||
	{ tap_bail_out "carwalld did not start"; exit 1; }
tap_check "production mode: an unsigned policy is refused at start" \
	grep -q "bundle refused (no-signature-block)" "$SANDBOX_DIR/agent.log"
tap_check "production mode: with nothing valid, status says fail closed" \
	status_has '"policy_state":"novalidpolicy'
tap_check "production mode: status says production" status_has '"mode":"production"'

# ---- install ------------------------------------------------------------------------------------
tap_check "carwall bundle install of a good bundle succeeds" cw bundle install "$SANDBOX_DIR/v1"
tap_check "status shows the signed bundle, its version and signer" \
	status_has "\"signed\":true,\"bundle\":{\"id\":\"test.policy\",\"version\":1,\"target\":\"hu-test\""
tap_check "the installed bundle is enforced: the OEM backend is reached" app_tcp 198.51.100.20 443
tap_expect_exit "the installed bundle is enforced: the tracker is refused" 1 app_tcp 203.0.113.7 443
tap_check "the installed bundle replaced the agent's policy file" cmp -s "$SANDBOX_DIR/v1" "$SANDBOX_POLICY"
tap_check "the anti-rollback state records version 1" grep -q "test.policy 1 " "$SANDBOX_STATE_DIR/bundle-state"
tap_check "installing v2 succeeds" cw bundle install "$SANDBOX_DIR/v2"

refused() { # NAME REASON: install fails with the reason; policy v2 stays in force
	local out rc
	out=$(cw bundle install "$SANDBOX_DIR/$1" 2>&1)
	rc=$?
	if [[ $rc -eq 1 && $out == *"$2"* ]]; then
		tap_ok "install refused: $1 ($2)"
	else
		tap_not_ok "install refused: $1 ($2)" "exit $rc: $out"
	fi
	if status_has '"version":2,' && status_has "\"last_error\":\"[^\"]*$2"; then
		tap_ok "after $1: v2 stays in force and status says why"
	else
		tap_not_ok "after $1: v2 stays in force and status says why" "$(cw --json status)"
	fi
}
refused v1 "rollback"
refused v2-tampered "bad-signature"
refused v9-other-target "wrong-target"
refused v9-expired "expired"
refused v9-untrusted "unknown-key"
tap_check "the refusals are in the agent's log" grep -q "bundle refused (wrong-target)" "$SANDBOX_DIR/agent.log"
tap_expect_exit "after the refusals the tracker is still refused" 1 app_tcp 203.0.113.7 443
tap_check "after the refusals the policy file is still v2" cmp -s "$SANDBOX_DIR/v2" "$SANDBOX_POLICY"

# A tampered file dropped in place by hand is refused too (the file watch reloads it).
cp "$SANDBOX_DIR/v2-tampered" "$SANDBOX_DIR/drop.tmp" && mv "$SANDBOX_DIR/drop.tmp" "$SANDBOX_POLICY"
wait_refusal() { # bounded wait for the agent to say it refused the file
	local i
	for ((i = 0; i < 60; i++)); do
		status_has '"last_error":"[^"]*bad-signature' && return 0
		sleep 0.05
	done
	return 1
}
tap_check "a tampered policy file written in place is refused: status says bad-signature" wait_refusal
tap_check "a tampered policy file written in place is refused; v2 stays" status_has '"version":2,'
tap_expect_exit "after the tampered file the tracker is still refused" 1 app_tcp 203.0.113.7 443

# Key rotation needs no restart: the trust folder is read at every load.
cp "$keys/other.pub" "$trust/other.pem"
chmod 0644 "$trust/other.pem"
bundle v4-other 4 hu-test 2099-01-01T00:00:00Z other
tap_check "a bundle signed by a newly trusted key installs" cw bundle install "$SANDBOX_DIR/v4-other"
tap_expect_exit "an older bundle (v3 after v4) is refused as a rollback" 1 \
	cw bundle install "$SANDBOX_DIR/v3-wide"
tap_check "after the rollback attempt v4 is in force" status_has '"version":4,'

# ---- a restart loads the kept bundle, checked again ---------------------------------------------
sandbox_agent_stop
sandbox_agent_start --trust-dir "$trust" --target hu-test --bundle-id test.policy ||
	{ tap_bail_out "carwalld did not restart"; exit 1; }
tap_check "after a restart the installed bundle (v4) is in force again" status_has '"version":4,'
tap_expect_exit "after a restart the tracker is refused" 1 app_tcp 203.0.113.7 443

# ---- developer mode is off by default and loud when on ------------------------------------------
sandbox_agent_stop
SANDBOX_DEVELOPER_MODE=1
SANDBOX_POLICY=$top/tests/integration/flows.yaml
sandbox_agent_start || { tap_bail_out "carwalld did not start in developer mode"; exit 1; }
tap_check "developer mode is logged loudly" grep -q "DEVELOPER MODE: unsigned policies are accepted" "$SANDBOX_DIR/agent.log"
tap_check "developer mode shows in status" status_has '"mode":"developer"'

tap_done
