#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Trust that changes reaches the policy in force (issue 11, cases 3, 6 and 7). The agent runs in
# production mode; a bundle that lets the app reach the "tracker" (203.0.113.7) is in force, and
# then the trust behind it goes away. Each time:
#   - a reload (or a restart: an agent that finds the pins of an earlier one) while the bundle
#     in force no longer verifies (its key revoked or removed, threshold, target or bundle id
#     changed, the floor above it, expired at a restart) fails closed: the app's connect() gets
#     EPERM and the server sees nothing, even for the OEM backend every policy allows;
#   - a bad file on disk with the trust unchanged is only refused: the last good policy stays;
#   - a bundle whose anti-rollback floor cannot be saved (a full state folder) does not go in
#     force; it does once there is space;
#   - a bundle with an id the head unit does not accept is refused, and a lost state file does
#     not open the way to an older version; both are loud in the log and in `carwall status`.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"
. "$top/scripts/sandbox.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
export CARWALLD=$bin/carwalld CARWALL=$bin/carwall FLOWPROBE=$bin/flowprobe

# A tmpfs is mounted over the state folder for case 6: unmounted before the sandbox goes (this
# trap runs first), after the agent that has files open there is stopped.
small_fs=
cleanup_small_fs() {
	if [[ -n $small_fs ]]; then
		sandbox_agent_stop >/dev/null 2>&1
		umount "$small_fs" 2>/dev/null || umount -l "$small_fs" 2>/dev/null
	fi
}
trap cleanup_small_fs EXIT

sandbox_create "cw-tc$$" >/dev/null || { tap_bail_out "cannot create the sandbox"; exit 1; }
keys=$SANDBOX_DIR/keys trust=$SANDBOX_DIR/trust
mkdir -p "$keys" "$trust"
chmod 0755 "$trust"
for k in oem other; do
	"$CARWALL" bundle keygen --out "$keys/$k" >/dev/null ||
		{ tap_bail_out "keygen failed"; exit 1; }
done
# Two trusted keys; the bundles are signed by oem only.
cp "$keys/oem.pub" "$trust/oem.pem"
cp "$keys/other.pub" "$trust/other.pem"
chmod 0644 "$trust/oem.pem" "$trust/other.pem"
: >"$trust/revoked"
chmod 0644 "$trust/revoked"

# The policy that lets the app reach the tracker (TCP 443, UDP 514), and one that does not.
cat >"$SANDBOX_DIR/open.yaml" <<'EOF'
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
      - to: [203.0.113.7]
        ports: [443]
        proto: tcp
      - to: [203.0.113.7]
        ports: [514]
        proto: udp
EOF
cat >"$SANDBOX_DIR/closed.yaml" <<'EOF'
version: 1
apps:
  mediaplayer:
    allow:
      - to: [198.51.100.20]
        ports: [443]
        proto: tcp
EOF

# bundle NAME VERSION POLICY [KEY] [ID] [NOT_AFTER]: a signed bundle in $SANDBOX_DIR/NAME
bundle() {
	local name=$1 version=$2 policy=$3 key=${4:-oem} id=${5:-test.policy}
	local not_after=${6:-2099-01-01T00:00:00Z}
	{
		printf 'bundle:\n  id: %s\n  version: %s\n  target: hu-test\n' "$id" "$version"
		printf '  not-before: 2020-01-01T00:00:00Z\n  not-after: %s\n' "$not_after"
		cat "$SANDBOX_DIR/$policy.yaml"
	} >"$SANDBOX_DIR/$name.payload"
	"$CARWALL" bundle sign --key "$keys/$key.key" "$SANDBOX_DIR/$name.payload" \
		-o "$SANDBOX_DIR/$name" >/dev/null ||
			{ tap_bail_out "signing $name failed"; exit 1; }
}
bundle v1 1 open
bundle v3 3 open
bundle v5 5 open
bundle v99-other-id 99 open oem other.policy
bundle v99-other-key 99 open other
bundle v10 10 closed
bundle v11 11 open
# The key id of oem (what `revoked` lists), from the signature line.
oem_id=$(awk '$1 == "#ed25519" { print $2; exit }' "$SANDBOX_DIR/v1")
[[ $oem_id =~ ^[0-9a-f]{64}$ ]] || { tap_bail_out "no key id in the signed bundle"; exit 1; }

cw() { "$CARWALL" --run-dir "$SANDBOX_RUN_DIR" "$@"; }
status_has() { cw --json status | tr -d ' \n' | grep -q "$1"; }
app_cg="$SANDBOX_CGROUP_ROOT/system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service"
mkdir -p "$app_cg"
in_app() { sandbox_in_hu sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$app_cg" "$@"; }

# reaches PROTO ADDR PORT: the app's flow gets its echo back and the server logged its token.
reaches() {
	local tok="r$$-$RANDOM$RANDOM" out
	out=$(in_app "$FLOWPROBE" "$1" "$2" "$3" --token "$tok" --timeout-ms 8000 2>&1)
	[[ $out == *result=ok* ]] && sandbox_server_saw "$1" "$3" "$tok" && return 0
	echo "$out"
	return 1
}
# refused PROTO ADDR PORT: EPERM at connect (TCP) or send (UDP), and the server saw nothing.
refused() {
	local tok="x$$-$RANDOM$RANDOM" out stage=connect
	[[ $1 == udp ]] && stage=send
	out=$(in_app "$FLOWPROBE" "$1" "$2" "$3" --token "$tok" --timeout-ms 2000 2>&1)
	echo "$out"
	[[ $out == *"result=EPERM stage=$stage"* ]] && ! sandbox_server_saw "$1" "$3" "$tok"
}
# The fail-closed state: the tracker and even the OEM backend are refused, status says why
# (REASON as matched in the status without its spaces).
fail_closed() { # WHAT REASON
	tap_check "$1: the tracker is refused (EPERM, nothing at the server)" refused tcp 203.0.113.7 443
	tap_check "$1: fail closed, the OEM backend is refused too" refused tcp 198.51.100.20 443
	tap_check "$1: status says the policy is no longer trusted" \
		status_has '"policy_state":"nolongertrusted'
	tap_check "$1: status says why ($2)" status_has "\"distrusted\":\"[^\"]*$2"
	tap_expect_exit "$1: carwall status --quiet: not enforcing a policy" 1 cw status --quiet
}
in_force() { # WHAT VERSION: the open bundle VERSION is in force
	tap_check "$1: the tracker is reached" reaches tcp 203.0.113.7 443
	tap_check "$1: version $2 is in force" status_has "\"version\":$2,"
}
start() { sandbox_agent_start --trust-dir "$trust" --target hu-test --bundle-id test.policy "$@"; }
log_has() { grep -q "$1" "$SANDBOX_DIR/agent.log"; }
contains() { [[ $1 == *"$2"* ]]; }

# ---- control: without carwall the app reaches the tracker ------------------------------------
tap_check "control: without carwall the app reaches the tracker over TCP" reaches tcp 203.0.113.7 443
tap_check "control: without carwall the app reaches the tracker over UDP" reaches udp 203.0.113.7 514

SANDBOX_DEVELOPER_MODE=0
SANDBOX_POLICY=$SANDBOX_DIR/policy.bundle
cp "$SANDBOX_DIR/v1" "$SANDBOX_POLICY"
start || { tap_bail_out "carwalld did not start"; exit 1; }
tap_check "a start without an anti-rollback state says there is no floor" \
	log_has "No anti-rollback state"
in_force "the bundle allowing the tracker" 1
tap_check "under that bundle the app reaches the tracker over UDP" reaches udp 203.0.113.7 514

# ---- case 3: a reload verifies the bundle in force again ------------------------------------------
echo "$oem_id" >>"$trust/revoked"
tap_expect_exit "its only key revoked, a reload of the unchanged file fails" 1 cw reload
fail_closed "key revoked, reload" "revoked-key"
tap_check "key revoked, reload: the UDP datagram to the tracker is refused" refused udp 203.0.113.7 514
tap_check "key revoked, reload: the log says the policy is no longer trusted" \
	log_has "The policy in force is no longer trusted"
: >"$trust/revoked"
tap_check "the revocation withdrawn, a reload puts the bundle back" cw reload
in_force "after the revocation was withdrawn" 1

# The file on disk changed and is bad, the trust unchanged: refused, the last good one stays.
cp "$SANDBOX_DIR/v3" "$SANDBOX_DIR/bad.tmp"
sed -i 's/ports: \[514\]/ports: [515]/' "$SANDBOX_DIR/bad.tmp"
cp "$SANDBOX_POLICY" "$SANDBOX_DIR/good.tmp"
mv "$SANDBOX_DIR/bad.tmp" "$SANDBOX_POLICY"
tap_expect_exit "a tampered policy file is refused at reload" 1 cw reload
in_force "a tampered file with the trust unchanged: the last good policy stays" 1
tap_check "a tampered file is not a trust change: status names no distrust" \
	status_has '"distrusted":null'
mv "$SANDBOX_DIR/good.tmp" "$SANDBOX_POLICY"
tap_check "the good file back, a reload succeeds" cw reload

# Every key revoked: the trust folder itself is refused, so nothing verifies.
other_id=$(awk '$1 == "#ed25519" { print $2; exit }' "$SANDBOX_DIR/v99-other-key")
printf '%s\n%s\n' "$oem_id" "$other_id" >"$trust/revoked"
tap_expect_exit "every trusted key revoked, a reload fails" 1 cw reload
fail_closed "every key revoked, reload" "notrustedkey"
: >"$trust/revoked"
tap_check "the revocations withdrawn, a reload puts the bundle back" cw reload

# The key removed from the trust folder (another key left, so the folder is valid).
mv "$trust/oem.pem" "$SANDBOX_DIR/oem.pem.away"
tap_expect_exit "its key removed from the trust folder, a reload fails" 1 cw reload
fail_closed "key removed, reload" "unknown-key"
mv "$SANDBOX_DIR/oem.pem.away" "$trust/oem.pem"
tap_check "the key back, a reload puts the bundle back" cw reload

# The floor raised above the version in force (by hand: a fleet-wide withdrawal of version 1).
printf 'carwall-bundle-state v1\ntest.policy 2 %064d\n' 0 >"$SANDBOX_STATE_DIR/bundle-state"
tap_expect_exit "the floor raised above the bundle in force, a reload fails" 1 cw reload
fail_closed "floor above the version in force" "rollback"
tap_check "a newer bundle (v3) installs over the raised floor" cw bundle install "$SANDBOX_DIR/v3"
in_force "after installing v3" 3

# ---- case 3: a restart keeps the pins only for a policy file that verifies ----------------------
# restarted WHAT REASON [carwalld options]: the agent stopped, the change made by the caller,
# started again with these options: it fails closed. Then it is stopped again for the caller to
# undo the change.
restarted() {
	local what=$1 reason=$2
	shift 2
	sandbox_agent_stop
	sandbox_agent_start --trust-dir "$trust" "$@" ||
		{ tap_bail_out "carwalld did not restart"; exit 1; }
	fail_closed "$what, restart" "$reason"
	tap_check "$what, restart: the log says the pinned policy is not kept" \
		log_has "the policy pinned by an earlier agent is not kept"
	sandbox_agent_stop
}
echo "$oem_id" >>"$trust/revoked"
restarted "key revoked" "revoked-key" --target hu-test --bundle-id test.policy
: >"$trust/revoked"
restarted "threshold raised to 2" "below-threshold" --target hu-test --bundle-id test.policy \
	--threshold 2
restarted "target changed" "wrong-target" --target hu-other --bundle-id test.policy
restarted "bundle id no longer accepted" "wrong-id" --target hu-test --bundle-id other.policy
start || { tap_bail_out "carwalld did not restart"; exit 1; }
in_force "restarted with the trust as it was" 3

# Expired: kept while the agent runs (documented), refused at a restart.
expires=$(date -u -d '+4 sec' +%Y-%m-%dT%H:%M:%SZ)
bundle v4-expiring 4 open oem test.policy "$expires"
tap_check "a bundle expiring in 4 s installs" cw bundle install "$SANDBOX_DIR/v4-expiring"
until_s=$(($(date -u -d "$expires" +%s) + 2))
for ((i = 0; i < 100 && $(date +%s) < until_s; i++)); do sleep 0.1; done
tap_check "expired while running, a reload keeps it (documented)" cw reload
in_force "expired while running" 4
sandbox_agent_stop
start || { tap_bail_out "carwalld did not restart"; exit 1; }
fail_closed "expired, restart" "expired"

# ---- case 7: bundle ids and a lost floor ---------------------------------------------------------
# An install replaces the policy file, and the agent reloads that change 100 ms later (which
# records a lost floor again): wait for that reload before the state file is removed below.
file_reloads() { grep -c 'unchanged (the file changed)' "$SANDBOX_DIR/agent.log"; }
n0=$(file_reloads)
tap_check "v5 installs" cw bundle install "$SANDBOX_DIR/v5"
for ((i = 0; i < 50 && $(file_reloads) == n0; i++)); do sleep 0.1; done
tap_check "the agent saw its own write of the policy file (unchanged)" test "$(file_reloads)" -gt "$n0"
out=$(cw bundle install "$SANDBOX_DIR/v99-other-id" 2>&1)
tap_check "a bundle with another id, signed by a trusted key, is refused (wrong-id)" \
	contains "$out" "wrong-id"
tap_check "after the other id: v5 stays in force" status_has '"version":5,'
rm "$SANDBOX_STATE_DIR/bundle-state"
tap_check "the state file lost: status says there is no floor" \
	status_has '"anti_rollback":{[^}]*"state":"missing"'
out=$(cw bundle install "$SANDBOX_DIR/v3" 2>&1)
tap_check "the state file lost: an older version (v3 after v5) is still refused as a rollback" \
	contains "$out" "rollback"
tap_check "the state file lost: v5 stays in force" status_has '"version":5,'
tap_check "a reload records the floor of the bundle in force again" cw reload
tap_check "the floor is back on disk (5)" grep -q "^test.policy 5 " "$SANDBOX_STATE_DIR/bundle-state"
tap_check "the lost floor was loud in the log" log_has "has no floor for bundle 'test.policy'"

# `carwall bundle verify` checks bundle ids as the agent does.
tap_expect_exit "carwall bundle verify --bundle-id refuses another id" 1 \
	"$CARWALL" bundle verify --trust "$trust" --target hu-test --bundle-id test.policy \
	"$SANDBOX_DIR/v99-other-id"
tap_check "carwall bundle verify --bundle-id accepts an id listed" \
	"$CARWALL" bundle verify --trust "$trust" --target hu-test --bundle-id other.policy \
	--bundle-id test.policy "$SANDBOX_DIR/v5"

# No bundle id configured: the ids of the anti-rollback state are the ones accepted.
if [[ -e /etc/carwall/bundle-id ]]; then
	tap_skip "without --bundle-id, another id is refused" "/etc/carwall/bundle-id exists here"
else
	sandbox_agent_stop
	sandbox_agent_start --trust-dir "$trust" --target hu-test ||
		{ tap_bail_out "carwalld did not start without --bundle-id"; exit 1; }
	tap_check "without --bundle-id, the agent warns that none is configured" \
		log_has "No bundle id configured"
	out=$(cw bundle install "$SANDBOX_DIR/v99-other-id" 2>&1)
	tap_check "without --bundle-id, another id than the one the unit accepted is refused" \
		contains "$out" "wrong-id"
	tap_check "without --bundle-id: v5 stays in force" status_has '"version":5,'
fi

# ---- case 3 without a guard cgroup: the apps of the policy keep no rule --------------------------
sandbox_agent_stop
start --guard-cgroup '' || { tap_bail_out "carwalld did not start without a guard"; exit 1; }
in_force "without a guard" 5
echo "$oem_id" >>"$trust/revoked"
tap_expect_exit "without a guard, its key revoked, a reload fails" 1 cw reload
fail_closed "without a guard, key revoked, reload" "revoked-key"
: >"$trust/revoked"
tap_check "without a guard, the revocation withdrawn, a reload puts the bundle back" cw reload
in_force "without a guard, after the revocation was withdrawn" 5

# ---- case 6: the floor is on disk before a bundle goes in force -----------------------------------
sandbox_agent_stop
small_fs=$SANDBOX_STATE_DIR
mount -t tmpfs -o size=256k,mode=0700 carwall-test-state "$small_fs" ||
	{ tap_bail_out "cannot mount a tmpfs on the state folder"; exit 1; }
cp "$SANDBOX_DIR/v10" "$SANDBOX_POLICY"
start || { tap_bail_out "carwalld did not start on the small state folder"; exit 1; }
tap_check "on a small state folder, v10 (no tracker) is in force" status_has '"version":10,'
tap_check "v10 is enforced: the tracker is refused" refused tcp 203.0.113.7 443
tap_check "the state says 10" grep -q "^test.policy 10 " "$small_fs/bundle-state"
dd if=/dev/zero of="$small_fs/fill" bs=4096 >/dev/null 2>&1
out=$(cw bundle install "$SANDBOX_DIR/v11" 2>&1)
rc=$?
tap_check "the state folder full, installing v11 fails (exit 1)" test "$rc" -eq 1
tap_check "the refusal says the floor could not be saved" contains "$out" "anti-rollback state"
tap_check "the state folder full: v10 stays in force" status_has '"version":10,'
tap_check "the state folder full: v11 is not enforced, the tracker is refused" \
	refused tcp 203.0.113.7 443
tap_check "the state folder full: the OEM backend is reached (v10, not fail closed)" \
	reaches tcp 198.51.100.20 443
tap_check "the state still says 10" grep -q "^test.policy 10 " "$small_fs/bundle-state"
tap_check "the policy file is still v10" cmp -s "$SANDBOX_DIR/v10" "$SANDBOX_POLICY"
rm -f "$small_fs/fill"
tap_check "with space back, v11 installs" cw bundle install "$SANDBOX_DIR/v11"
in_force "with space back" 11
tap_check "the state says 11" grep -q "^test.policy 11 " "$small_fs/bundle-state"
tap_expect_exit "v10 is now a rollback" 1 cw bundle install "$SANDBOX_DIR/v10"

tap_done
