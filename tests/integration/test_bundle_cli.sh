#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# `carwall bundle keygen|sign|verify|inspect` against the stock openssl CLI, both ways: bundles
# signed with openssl alone (scripts/make-bundle-fixtures.sh) verify in carwall with the exact
# reason for each refusal, and what carwall signs verifies with `openssl pkeyutl -verify
# -rawin`. No agent, no sandbox: files in a temporary folder only.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/tap.sh"

bin=${CARWALL_BIN_DIR:-$top/build}
CARWALL=$bin/carwall
work=$(mktemp -d "${TMPDIR:-/tmp}/carwall-bundle-cli.XXXXXX") || {
	tap_bail_out "mktemp failed"
	exit 1
}
trap 'rm -rf -- "$work"' EXIT
fx=$work/fixtures
NOW=2027-01-01T00:00:00Z
verify_opts=(--trust "$fx/trust" --target agl-h3-refboard --now "$NOW" --state-dir "$fx/state")

# output_has NAME WANT_RC NEEDLE CMD...: CMD exits WANT_RC and its output contains NEEDLE.
output_has() {
	local name=$1 rc=$2 needle=$3
	shift 3
	_tap_run "$@"
	if [[ $TAP_LAST_RC -eq $rc && $TAP_LAST_OUTPUT == *"$needle"* ]]; then
		tap_ok "$name"
	else
		tap_not_ok "$name" "command: $*" "expected exit $rc and '$needle'" \
			"got exit $TAP_LAST_RC: $TAP_LAST_OUTPUT"
	fi
}

# payload_of BUNDLE OUT: the signed bytes, split off with sed as policies/README.md shows.
payload_of() { sed '/^#carwall-signatures v1$/,$d' "$1" >"$2"; }

# last_signature BUNDLE OUT: the raw signature of the bundle's last line.
last_signature() { tail -n 1 "$1" | cut -d' ' -f3 | base64 -d >"$2"; }

# ---- openssl -> carwall ------------------------------------------------------------------------
tap_check "fixtures are made with the openssl CLI alone" \
	bash "$top/scripts/make-bundle-fixtures.sh" "$fx"
if [[ $TAP_LAST_OK != 1 ]]; then
	tap_bail_out "no fixtures"
	exit 1
fi

output_has "an openssl-signed bundle verifies in carwall" 0 "good.bundle: valid" \
	"$CARWALL" bundle verify "${verify_opts[@]}" "$fx/good.bundle"
output_has "verify --json says valid" 0 '"valid": true' \
	"$CARWALL" --json bundle verify "${verify_opts[@]}" "$fx/good.bundle"
output_has "a bundle signed by two keys with openssl meets threshold 2" 0 \
	"2 valid of trusted keys, 2 required" \
	"$CARWALL" bundle verify "${verify_opts[@]}" --threshold 2 "$fx/good-ab.bundle"
output_has "the installed version and content is valid, already installed" 0 "already installed" \
	"$CARWALL" bundle verify "${verify_opts[@]}" "$fx/installed.bundle"

# Every refused fixture: exit 1 and its reason code, in text and in JSON.
refused=(
	"tampered-payload.bundle|bad-signature"
	"tampered-signature.bundle|bad-signature"
	"truncated.bundle|bad-signature-length"
	"wrong-key.bundle|unknown-key"
	"revoked.bundle|revoked-key"
	"expired.bundle|expired"
	"not-yet-valid.bundle|not-yet-valid"
	"wrong-target.bundle|wrong-target"
	"rollback.bundle|rollback"
	"same-version.bundle|version-reused"
	"oversized.bundle|too-large"
	"unsigned.bundle|no-signature-block"
	"empty-block.bundle|no-signatures"
	"garbage-signature.bundle|bad-base64"
	"garbage-line.bundle|bad-signature-line"
	"no-metadata.bundle|no-metadata"
	"invalid-policy.bundle|invalid-policy"
)
for r in "${refused[@]}"; do
	IFS='|' read -r file reason <<<"$r"
	output_has "verify refuses $file: $reason, exit 1" 1 "$file: refused ($reason):" \
		"$CARWALL" bundle verify "${verify_opts[@]}" "$fx/$file"
	output_has "verify --json refuses $file with reason $reason" 1 "\"reason\": \"$reason\"" \
		"$CARWALL" bundle verify --json "${verify_opts[@]}" "$fx/$file"
done
output_has "verify refuses one signature at threshold 2: below-threshold" 1 \
	"refused (below-threshold): 1 valid signature of trusted keys, 2 required" \
	"$CARWALL" bundle verify "${verify_opts[@]}" --threshold 2 "$fx/good.bundle"
output_has "verify counts the same key's two signatures once" 1 "refused (below-threshold)" \
	"$CARWALL" bundle verify "${verify_opts[@]}" --threshold 2 "$fx/dup-a.bundle"
output_has "an invalid policy is reported at file:line:column" 1 \
	"invalid-policy.bundle:15:17: port 0 is not a destination port" \
	"$CARWALL" bundle verify "${verify_opts[@]}" "$fx/invalid-policy.bundle"
output_has "without --state-dir an older version is not judged" 0 "rollback:        not checked" \
	"$CARWALL" bundle verify --trust "$fx/trust" --target agl-h3-refboard --now "$NOW" \
	"$fx/rollback.bundle"

# ---- carwall -> openssl ------------------------------------------------------------------------
keys=$work/keys
mkdir -p "$keys"
output_has "keygen prints the key id" 0 "key id:" "$CARWALL" bundle keygen --out "$keys/oem"
tap_check "keygen writes the private key with mode 0600" \
	test "$(stat -c %a "$keys/oem.key")" = 600
keyid=$("$CARWALL" --json bundle keygen --out "$keys/supplier" |
	sed -n 's/.*"keyid": "\([0-9a-f]*\)".*/\1/p')
openssl_keyid=$(openssl pkey -pubin -in "$keys/supplier.pub" -outform DER | sha256sum |
	cut -d' ' -f1)
tap_check "keygen's key id is the SHA-256 of the DER public key, as openssl computes it" \
	test -n "$keyid" -a "$keyid" = "$openssl_keyid"
output_has "keygen refuses to overwrite a key" 1 "already exists" \
	"$CARWALL" bundle keygen --out "$keys/oem"

payload_of "$fx/good.bundle" "$work/payload.yaml"
tap_check "sign signs a policy with bundle metadata" \
	"$CARWALL" bundle sign --key "$keys/oem.key" "$work/payload.yaml" -o "$work/oem.bundle"
payload_of "$work/oem.bundle" "$work/oem-payload"
tap_check "the signed bytes are the payload, unchanged" cmp "$work/payload.yaml" "$work/oem-payload"
last_signature "$work/oem.bundle" "$work/oem.sig"
output_has "openssl pkeyutl -verify -rawin accepts carwall's signature" 0 \
	"Signature Verified Successfully" \
	openssl pkeyutl -verify -rawin -pubin -inkey "$keys/oem.pub" -in "$work/oem-payload" \
	-sigfile "$work/oem.sig"
sed 's/198\.51\.100\.20,/198.51.100.21,/' "$work/oem-payload" >"$work/other-payload"
tap_expect_exit "control: openssl refuses carwall's signature over other bytes" 1 \
	openssl pkeyutl -verify -rawin -pubin -inkey "$keys/oem.pub" -in "$work/other-payload" \
	-sigfile "$work/oem.sig"

# carwall's key, used by openssl; and a trust folder of carwall's keys.
trust2=$work/trust2
mkdir -m 0755 "$trust2"
install -m 0644 "$keys/oem.pub" "$trust2/oem.pem"
install -m 0644 "$keys/supplier.pub" "$trust2/supplier.pem"
v2=(--trust "$trust2" --target agl-h3-refboard --now "$NOW")
output_has "carwall verifies its own signature" 0 "valid" \
	"$CARWALL" bundle verify "${v2[@]}" "$work/oem.bundle"
openssl pkeyutl -sign -rawin -inkey "$keys/supplier.key" -in "$work/payload.yaml" \
	-out "$work/supplier.sig"
{
	cat "$work/oem.bundle"
	printf '#ed25519 %s %s\n' "$keyid" "$(base64 -w0 "$work/supplier.sig")"
} >"$work/oem-openssl.bundle"
output_has "a signature added with openssl and carwall's key counts" 0 "2 valid of trusted keys" \
	"$CARWALL" bundle verify "${v2[@]}" --threshold 2 "$work/oem-openssl.bundle"

# M-of-N: the OEM signs, then the supplier adds a signature to the same bundle.
output_has "control: the OEM's signature alone is below threshold 2" 1 "below-threshold" \
	"$CARWALL" bundle verify "${v2[@]}" --threshold 2 "$work/oem.bundle"
tap_check "sign adds a signature to a signed bundle" \
	"$CARWALL" bundle sign --key "$keys/supplier.key" "$work/oem.bundle" -o "$work/both.bundle"
output_has "OEM and supplier signatures meet threshold 2" 0 "2 valid of trusted keys, 2 required" \
	"$CARWALL" bundle verify "${v2[@]}" --threshold 2 "$work/both.bundle"
output_has "signing again with a key already present adds nothing" 0 "already signed by key" \
	"$CARWALL" bundle sign --key "$keys/oem.key" "$work/both.bundle" -o "$work/again.bundle"
tap_check "the bundle signed again is unchanged" cmp "$work/both.bundle" "$work/again.bundle"

output_has "sign refuses a policy without bundle metadata" 1 "has no 'bundle:' metadata" \
	"$CARWALL" bundle sign --key "$keys/oem.key" "$top/policies/demo.yaml" -o "$work/x.bundle"
output_has "sign refuses an invalid policy with file:line:column" 1 "invalid-policy.bundle:15:17:" \
	"$CARWALL" bundle sign --key "$keys/oem.key" "$fx/invalid-policy.bundle" -o "$work/x.bundle"
output_has "sign refuses a bundle with a broken signature block" 1 "bad-signature-line" \
	"$CARWALL" bundle sign --key "$keys/oem.key" "$fx/garbage-line.bundle" -o "$work/x.bundle"
output_has "sign refuses a public key as signing key" 1 "not a PEM private key" \
	"$CARWALL" bundle sign --key "$keys/oem.pub" "$work/payload.yaml" -o "$work/x.bundle"

# ---- inspect -----------------------------------------------------------------------------------
output_has "inspect shows the metadata and says signatures are not verified" 0 "NOT verified" \
	"$CARWALL" bundle inspect "$work/both.bundle"
output_has "inspect lists each signature's key id" 0 "$keyid" \
	"$CARWALL" bundle inspect "$work/both.bundle"
output_has "inspect --json says signatures_verified false" 0 '"signatures_verified": false' \
	"$CARWALL" bundle inspect --json "$fx/tampered-payload.bundle"
output_has "inspect of a file without signature block exits 1" 1 "no-signature-block" \
	"$CARWALL" bundle inspect "$fx/unsigned.bundle"

# ---- trust folder and usage ---------------------------------------------------------------------
chmod 0775 "$trust2"
output_has "verify refuses a group-writable trust folder" 1 "writable by group or others" \
	"$CARWALL" bundle verify "${v2[@]}" "$work/oem.bundle"
chmod 0755 "$trust2"
output_has "verify --json reports a trust folder error as JSON" 1 '"error":' \
	"$CARWALL" --json bundle verify --trust "$work/nonexistent" "$work/oem.bundle"
tap_expect_exit "verify without --trust is a usage error" 2 \
	"$CARWALL" bundle verify "$work/oem.bundle"
tap_expect_exit "verify with a bad --now is a usage error" 2 \
	"$CARWALL" bundle verify "${v2[@]}" --now 2027-01-01 "$work/oem.bundle"
tap_expect_exit "verify with --threshold 0 is a usage error" 2 \
	"$CARWALL" bundle verify "${v2[@]}" --threshold 0 "$work/oem.bundle"
tap_expect_exit "verify with an option of another command is a usage error" 2 \
	"$CARWALL" bundle verify "${v2[@]}" --key "$keys/oem.key" "$work/oem.bundle"
tap_expect_exit "an unknown bundle command is a usage error" 2 "$CARWALL" bundle frobnicate x
tap_expect_exit "bundle --help exits 0" 0 "$CARWALL" bundle --help

tap_done
