#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Make signed-bundle test fixtures with the stock openssl CLI only (no carwall code), so that
# every bundle the tests verify is also proof that openssl-made bundles interoperate.
#
# Usage: scripts/make-bundle-fixtures.sh OUTDIR
#
# OUTDIR gets (generated at test time, never committed):
#   keys/{a,b,c,r,u}.key .pub .keyid   Ed25519 keys: A, B, C trusted; R revoked; U untrusted
#   trust/                              a trust folder: a.pem b.pem c.pem r.pem, and `revoked`
#                                       listing R's key id
#   state/bundle-state                  anti-rollback state: oem.headunit.policy at version 42
#   *.bundle                            the cases below
#
# Every case is judged with: --trust OUTDIR/trust --target agl-h3-refboard
# --now 2027-01-01T00:00:00Z --state-dir OUTDIR/state, threshold 1 unless said:
#   good.bundle                 v43 signed by A                         valid
#   good-ab.bundle              v43 signed by A and B                   valid, also at threshold 2
#   installed.bundle            v42, the installed content              valid, already installed
#   below-threshold             good.bundle at threshold 2              below-threshold
#   dup-a.bundle                A's signature twice, threshold 2        below-threshold
#   tampered-payload.bundle     good, one payload byte changed          bad-signature
#   tampered-signature.bundle   good, one signature byte changed        bad-signature
#   truncated.bundle            good, cut inside its signature          bad-signature-length
#   wrong-key.bundle            signed by U                             unknown-key
#   revoked.bundle              signed by R                             revoked-key
#   expired.bundle              not-after 2026-06-01                    expired
#   not-yet-valid.bundle        not-before 2027-06-01                   not-yet-valid
#   wrong-target.bundle         target agl-h3-otherboard                wrong-target
#   rollback.bundle             v41                                     rollback
#   same-version.bundle         v42 with other content                  version-reused
#   oversized.bundle            larger than BUNDLE_MAX_BYTES            too-large
#   unsigned.bundle             a payload, no signature block           no-signature-block
#   empty-block.bundle          the block line, no signature            no-signatures
#   garbage-signature.bundle    a signature that is not base64          bad-base64
#   garbage-line.bundle         a stray line after the signatures       bad-signature-line
#   no-metadata.bundle          a policy without `bundle:`, signed      no-metadata
#   invalid-policy.bundle       a policy with an error, signed          invalid-policy
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
# BUNDLE_MAX_BYTES of userspace/lib/bundle.h: POLICY_MAX_FILE_BYTES (16 MiB) + 4096.
max_bytes=${CARWALL_BUNDLE_MAX_BYTES:-$(((16 << 20) + 4096))}

umask 022
mkdir -p "$out/keys" "$out/trust" "$out/state" "$out/work"
chmod 0755 "$out/trust"
work=$out/work

# ---- keys ---------------------------------------------------------------------------------------
for k in a b c r u; do
	rm -f "$out/keys/$k.key" "$out/keys/$k.pub"
	openssl genpkey -algorithm ed25519 -out "$out/keys/$k.key" 2>/dev/null
	chmod 0600 "$out/keys/$k.key"
	openssl pkey -in "$out/keys/$k.key" -pubout -out "$out/keys/$k.pub"
	# The key id: SHA-256 of the DER SubjectPublicKeyInfo.
	openssl pkey -pubin -in "$out/keys/$k.pub" -outform DER | sha256sum | cut -d' ' -f1 \
		>"$out/keys/$k.keyid"
done
for k in a b c r; do
	install -m 0644 "$out/keys/$k.pub" "$out/trust/$k.pem"
done
{
	echo "# revoked signing keys, one key id per line"
	cat "$out/keys/r.keyid"
} >"$out/trust/revoked"
chmod 0644 "$out/trust/revoked"

# ---- payloads -----------------------------------------------------------------------------------
# payload VERSION TARGET NOT_BEFORE NOT_AFTER [EXTRA_APP]
payload() {
	cat <<EOF
# The OEM head unit's policy, shipped as a signed bundle.
bundle:
  id: oem.headunit.policy
  version: $1
  target: $2
  not-before: $3
  not-after: $4
version: 1
sets:
  oem-backend: [198.51.100.20, 2001:db8:51::20]
apps:
  mediaplayer:
    allow:
      - to: oem-backend
        ports: [443]
        proto: tcp
EOF
	if [ -n "${5:-}" ]; then
		printf '  %s:\n    allow:\n      - to: 203.0.113.9\n' "$5"
	fi
}

nb=2026-11-01T00:00:00Z na=2027-11-01T00:00:00Z
payload 43 agl-h3-refboard $nb $na >"$work/good.yaml"
payload 42 agl-h3-refboard $nb $na >"$work/installed.yaml"
payload 42 agl-h3-refboard $nb $na navigation >"$work/same-version.yaml"
payload 41 agl-h3-refboard $nb $na >"$work/rollback.yaml"
payload 43 agl-h3-otherboard $nb $na >"$work/wrong-target.yaml"
payload 43 agl-h3-refboard 2025-06-01T00:00:00Z 2026-06-01T00:00:00Z >"$work/expired.yaml"
payload 43 agl-h3-refboard 2027-06-01T00:00:00Z 2028-06-01T00:00:00Z >"$work/not-yet-valid.yaml"
sed '/^bundle:/,/^  not-after:/d' "$work/good.yaml" >"$work/no-metadata.yaml"
sed 's/ports: \[443\]/ports: [0]/' "$work/good.yaml" >"$work/invalid-policy.yaml"

# ---- signing, with the openssl CLI as policies/README.md shows -----------------------------------
# sign IN KEY OUT: sign IN's payload (all of IN, or what precedes its signature block) with KEY
# and write IN plus the new signature line to OUT.
sign() {
	local in=$1 key=$2 dst=$3 keyid
	sed '/^#carwall-signatures v1$/,$d' "$in" >"$work/payload"
	openssl pkeyutl -sign -rawin -inkey "$key" -in "$work/payload" -out "$work/sig"
	keyid=$(openssl pkey -in "$key" -pubout -outform DER | sha256sum | cut -d' ' -f1)
	{
		cat "$in"
		grep -qx '#carwall-signatures v1' "$in" || printf '#carwall-signatures v1\n'
		printf '#ed25519 %s %s\n' "$keyid" "$(base64 -w0 "$work/sig")"
	} >"$work/signed"
	mv "$work/signed" "$dst"
}

k=$out/keys
sign "$work/good.yaml" "$k/a.key" "$out/good.bundle"
sign "$out/good.bundle" "$k/b.key" "$out/good-ab.bundle"
sign "$work/installed.yaml" "$k/a.key" "$out/installed.bundle"
sign "$work/same-version.yaml" "$k/a.key" "$out/same-version.bundle"
sign "$work/rollback.yaml" "$k/a.key" "$out/rollback.bundle"
sign "$work/wrong-target.yaml" "$k/a.key" "$out/wrong-target.bundle"
sign "$work/expired.yaml" "$k/a.key" "$out/expired.bundle"
sign "$work/not-yet-valid.yaml" "$k/a.key" "$out/not-yet-valid.bundle"
sign "$work/no-metadata.yaml" "$k/a.key" "$out/no-metadata.bundle"
sign "$work/invalid-policy.yaml" "$k/a.key" "$out/invalid-policy.bundle"
sign "$work/good.yaml" "$k/u.key" "$out/wrong-key.bundle"
sign "$work/good.yaml" "$k/r.key" "$out/revoked.bundle"

# A's signature line twice.
{ cat "$out/good.bundle"; tail -n 1 "$out/good.bundle"; } >"$out/dup-a.bundle"

# One payload byte changed: 198.51.100.20 becomes 198.51.100.21.
sed '0,/198\.51\.100\.20,/s//198.51.100.21,/' "$out/good.bundle" >"$out/tampered-payload.bundle"
cmp -s "$out/good.bundle" "$out/tampered-payload.bundle" && { echo "tamper failed" >&2; exit 1; }

# One signature byte changed: the first byte of A's signature, xor 1.
line=$(tail -n 1 "$out/good.bundle")
printf '%s' "${line##* }" | base64 -d >"$work/sig"
first=$(od -An -tu1 -N1 "$work/sig" | tr -d ' ')
{
	# shellcheck disable=SC2059 # the format is the one byte, as an octal escape
	printf "\\$(printf '%03o' $((first ^ 1)))"
	tail -c +2 "$work/sig"
} >"$work/sig2"
{
	sed '$d' "$out/good.bundle"
	printf '%s %s\n' "${line% *}" "$(base64 -w0 "$work/sig2")"
} >"$out/tampered-signature.bundle"

# Cut 45 bytes before the end: the last signature keeps 44 of its 88 base64 characters.
size=$(stat -c %s "$out/good.bundle")
head -c $((size - 45)) "$out/good.bundle" >"$out/truncated.bundle"

# Larger than BUNDLE_MAX_BYTES, and otherwise a well-signed bundle.
{
	cat "$work/good.yaml"
	yes '# padding padding padding padding padding padding padding padding padding padding' |
		head -c $((max_bytes + 1 - $(stat -c %s "$work/good.yaml"))) || true
	echo
} >"$work/oversized.yaml"
sign "$work/oversized.yaml" "$k/a.key" "$out/oversized.bundle"

cp "$work/good.yaml" "$out/unsigned.bundle"
{ cat "$work/good.yaml"; printf '#carwall-signatures v1\n'; } >"$out/empty-block.bundle"
{
	cat "$work/good.yaml"
	printf '#carwall-signatures v1\n#ed25519 %s this-is-not-base64!!\n' "$(cat "$k/a.keyid")"
} >"$out/garbage-signature.bundle"
{ cat "$out/good.bundle"; printf 'hello\n'; } >"$out/garbage-line.bundle"

# ---- the anti-rollback state: installed.bundle's version and payload hash ------------------------
printf 'carwall-bundle-state v1\noem.headunit.policy 42 %s\n' \
	"$(sha256sum "$work/installed.yaml" | cut -d' ' -f1)" >"$out/state/bundle-state"
chmod 0600 "$out/state/bundle-state"

rm -rf "$work"
