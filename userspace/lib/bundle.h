/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Signed policy bundles: a policy file (with a `bundle:` mapping of metadata) followed by a
 * block of Ed25519 signatures over its exact bytes. Splitting the envelope, verifying the
 * signatures against a trust store of public keys, then parsing the verified bytes and checking
 * the metadata (target, validity window) and the anti-rollback state (bundle_state.h, which
 * knows nothing of bundles: the arrows point from here to there).
 * The format is documented in policies/README.md, "Signed bundles".
 *
 * Crypto is OpenSSL 3 libcrypto (EVP, Ed25519, SHA-256, base64). Nothing here prints: functions
 * return 0 or a negative errno and say why in a struct bundle_error.
 */
#pragma once

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bundle_digest.h"
#include "bundle_state.h"
#include "policy.h"

/* The line that ends the payload and starts the signature block. */
#define BUNDLE_BLOCK_LINE "#carwall-signatures v1"
/* The tag of a signature line: "#ed25519 <keyid> <base64 signature>". */
#define BUNDLE_SIG_TAG "#ed25519"

/* Explicit limits. */
#define BUNDLE_MAX_SIGNATURES 16      /* signature lines in one bundle */
#define BUNDLE_MAX_BLOCK_BYTES 4096   /* the signature block (16 lines take 2.6 KiB) */
#define BUNDLE_MAX_BYTES (POLICY_MAX_FILE_BYTES + BUNDLE_MAX_BLOCK_BYTES) /* a whole bundle */
#define BUNDLE_MAX_TRUSTED_KEYS 64    /* *.pem files in a trust folder */
#define BUNDLE_MAX_REVOKED_KEYS 1024  /* key ids in a trust folder's `revoked` file */
#define BUNDLE_MAX_KEY_FILE_BYTES 4096 /* one PEM key file */
#define BUNDLE_MAX_REVOKED_FILE_BYTES (128u * 1024)

#define BUNDLE_KEYID_LEN 64	   /* lowercase hex SHA-256 of the DER SubjectPublicKeyInfo */
#define BUNDLE_SIGNATURE_BYTES 64  /* raw Ed25519 */
#define BUNDLE_SIGNATURE_B64_LEN 88 /* its base64, with "==" */

/* The files of a trust folder. */
#define BUNDLE_TRUST_KEY_SUFFIX ".pem"
#define BUNDLE_TRUST_REVOKED_FILE "revoked"

/*
 * Why a bundle was refused, stable: the names (bundle_reason_name()) are printed by the CLI and
 * may be matched by scripts. In the order the checks run; the first failure is reported.
 */
enum bundle_reason {
	BUNDLE_OK = 0,
	/* size */
	BUNDLE_TOO_LARGE,	    /* "too-large" */
	/* envelope */
	BUNDLE_NO_SIGNATURE_BLOCK,  /* "no-signature-block" */
	BUNDLE_EMPTY_PAYLOAD,	    /* "empty-payload" */
	BUNDLE_BAD_SIGNATURE_LINE,  /* "bad-signature-line": garbage in the block */
	BUNDLE_BAD_BASE64,	    /* "bad-base64" */
	BUNDLE_BAD_SIGNATURE_LENGTH, /* "bad-signature-length" */
	BUNDLE_TOO_MANY_SIGNATURES, /* "too-many-signatures" */
	BUNDLE_NO_SIGNATURES,	    /* "no-signatures": a block without a signature line */
	/* signatures */
	BUNDLE_UNKNOWN_KEY,	    /* "unknown-key" */
	BUNDLE_REVOKED_KEY,	    /* "revoked-key" */
	BUNDLE_BAD_SIGNATURE,	    /* "bad-signature" */
	BUNDLE_BELOW_THRESHOLD,	    /* "below-threshold" */
	/* parse */
	BUNDLE_INVALID_POLICY,	    /* "invalid-policy": error.policy has file:line:column */
	/* metadata */
	BUNDLE_NO_METADATA,	    /* "no-metadata": no `bundle:` */
	BUNDLE_WRONG_TARGET,	    /* "wrong-target" */
	BUNDLE_WRONG_ID,	    /* "wrong-id": a bundle id this device does not accept */
	BUNDLE_NOT_YET_VALID,	    /* "not-yet-valid" */
	BUNDLE_EXPIRED,		    /* "expired" */
	/* rollback */
	BUNDLE_ROLLBACK,	    /* "rollback": older than the installed version */
	BUNDLE_VERSION_REUSED,	    /* "version-reused": installed version, other content */
	/* not about the bundle */
	BUNDLE_BAD_TRUST_STORE,	    /* "bad-trust-store" */
	BUNDLE_INTERNAL_ERROR,	    /* "internal-error": out of memory, libcrypto failure */
	_BUNDLE_REASON_MAX,
};

struct bundle_error {
	enum bundle_reason reason;
	char message[512];	   /* one line, no trailing newline or period */
	struct policy_error policy; /* when reason is BUNDLE_INVALID_POLICY */
};

/* One signature line of the block, as read; status is set by bundle_verify(). */
struct bundle_signature {
	char keyid[BUNDLE_KEYID_LEN + 1];
	uint8_t sig[BUNDLE_SIGNATURE_BYTES];
	unsigned line;		   /* 1-based line in the bundle */
	enum bundle_reason status; /* OK, UNKNOWN_KEY, REVOKED_KEY or BAD_SIGNATURE */
	bool duplicate;		   /* a key that already signed: counted once */
};

/* A bundle split into its parts: the payload is the first payload_size bytes of the input. */
struct bundle_envelope {
	size_t payload_size;
	size_t n_signatures;
	struct bundle_signature signatures[BUNDLE_MAX_SIGNATURES];
};


/* The bundle ids one device may accept (--bundle-id). */
#define BUNDLE_MAX_ACCEPTED_IDS 16

/* What the device expects of a bundle. */
struct bundle_expect {
	const char *target;		  /* this head unit's hardware id; NULL: not checked */
	const char *const *ids;		  /* the bundle ids it accepts; n_ids 0: not checked */
	size_t n_ids;
	time_t now;			  /* the time to check not-before/not-after against */
	const struct bundle_state *state; /* anti-rollback state; NULL: not checked (tools) */
};

/* A verified bundle. */
struct bundle {
	struct policy *policy; /* parsed from the verified payload; policy->has_bundle */
	size_t payload_size;   /* the verified bytes are the first payload_size of the input */
	uint8_t payload_sha256[BUNDLE_SHA256_BYTES];
	char payload_sha256_hex[BUNDLE_SHA256_HEX_LEN + 1];
	struct bundle_envelope envelope; /* with each signature's status */
	unsigned n_valid;		 /* distinct trusted keys with a good signature */
	bool already_installed;		 /* same id, version and content as in the state */
};

struct bundle_trust;

const char *bundle_reason_name(enum bundle_reason reason);

/* ---- trust store ---------------------------------------------------------------------------- */

/*
 * Load a trust folder: every `*.pem` file in it is a trusted Ed25519 public key (PEM
 * SubjectPublicKeyInfo), and the optional file `revoked` lists revoked key ids, one per line
 * (blank lines and lines starting with '#' are ignored). The folder and each of these files
 * must be owned by root (or by the effective user running this, for tools run without root),
 * must not be writable by group or others, and must not be symlinks. Any defect refuses the whole
 * folder (-EPERM for ownership and modes, -EINVAL for content, -ENOKEY when no key is left
 * trusted), with reason BUNDLE_BAD_TRUST_STORE. The threshold starts at 1.
 */
int bundle_trust_load(const char *dir, struct bundle_trust **ret, struct bundle_error *err);

/* An empty trust store, to fill with bundle_trust_add_key() and bundle_trust_revoke(). */
int bundle_trust_new(struct bundle_trust **ret);
/* Add the PEM public key in pem[0..size); `name` is used in messages. */
int bundle_trust_add_key(struct bundle_trust *t, const char *name, const void *pem, size_t size,
			 char ret_keyid[BUNDLE_KEYID_LEN + 1], struct bundle_error *err);
/* Mark a key id revoked (whether or not the key is in the store). -EINVAL: not a key id. */
int bundle_trust_revoke(struct bundle_trust *t, const char *keyid);
/* At least m valid signatures by distinct trusted keys: 1..BUNDLE_MAX_SIGNATURES, else -ERANGE. */
int bundle_trust_set_threshold(struct bundle_trust *t, unsigned m);
unsigned bundle_trust_threshold(const struct bundle_trust *t);
/* Keys trusted and not revoked. */
size_t bundle_trust_n_keys(const struct bundle_trust *t);
void bundle_trust_free(struct bundle_trust *t);

/* ---- reading and verifying ------------------------------------------------------------------ */

/*
 * Split a bundle into payload and signature lines, strictly (envelope errors only; nothing is
 * verified). -EFBIG (BUNDLE_TOO_LARGE), -EBADMSG (an envelope reason), -EINVAL (arguments).
 */
int bundle_split(const void *data, size_t size, struct bundle_envelope *ret,
		 struct bundle_error *err);

/*
 * Verify the bundle in data[0..size) and parse its payload. Checks, in this order, and reports
 * the first failure: size; envelope; signatures; parse (policy_parse_buffer() of the exact
 * verified bytes, errors named `name`); metadata (`bundle:` present, target, id, not-before,
 * not-after); rollback against want->state. Returns 0 and *ret (bundle_free() it), or a
 * negative errno with err filled: -EFBIG (size), -EBADMSG (envelope), -EKEYREJECTED
 * (signatures), -EINVAL (policy or metadata), -ESTALE (rollback), -ENOMEM. The reason code, not
 * the errno, is the stable answer to "why".
 *
 * Signatures: at least bundle_trust_threshold() good signatures by distinct trusted, non-revoked
 * keys are needed. A signature by an unknown or a revoked key is not counted (and refuses the
 * bundle only when too few others count: then the first such signature is the reason); a bad
 * signature by a trusted key always refuses the bundle; a second signature by the same key is
 * counted once.
 */
int bundle_verify(const struct bundle_trust *t, const char *name, const void *data, size_t size,
		  const struct bundle_expect *want, struct bundle **ret, struct bundle_error *err);

/*
 * bundle_verify() again of bytes it verified before, whose payload it parsed into `parsed`
 * (kept by the caller): every check runs again against t and want (envelope, signatures,
 * metadata, rollback) except the parse, which gives the same policy for the same bytes: the
 * metadata checked are parsed->bundle. The caller vouches that `parsed` is the parse of these
 * bytes. *ret has no policy (NULL).
 */
int bundle_verify_parsed(const struct bundle_trust *t, const char *name, const void *data,
			 size_t size, const struct bundle_expect *want, const struct policy *parsed,
			 struct bundle **ret, struct bundle_error *err);

void bundle_free(struct bundle *b);

/*
 * Read a bundle file once, its size checked against BUNDLE_MAX_BYTES before reading
 * (read_file_limited()). -EFBIG is reported as BUNDLE_TOO_LARGE; other errors as
 * BUNDLE_INTERNAL_ERROR with the errno in the message.
 */
int bundle_read_file(const char *path, char **ret_data, size_t *ret_size, struct bundle_error *err);

/* ---- keys and signing (the CLI, tests, the fuzzer) ------------------------------------------ */

/* Ed25519 keys from PEM: a private key (PKCS#8) or a public key (SubjectPublicKeyInfo). */
int bundle_key_from_pem(const void *pem, size_t size, bool private_key, EVP_PKEY **ret);
/* The key id of a key (its public part): lowercase hex SHA-256 of the DER SubjectPublicKeyInfo. */
int bundle_keyid(EVP_PKEY *key, char ret[BUNDLE_KEYID_LEN + 1]);
/* Sign payload[0..size) with an Ed25519 private key: fills keyid and sig of *ret. */
int bundle_sign(EVP_PKEY *key, const void *payload, size_t size, struct bundle_signature *ret);
/* Payload, then the block with these signatures, into a new buffer (NUL-terminated). */
int bundle_format(const void *payload, size_t payload_size, const struct bundle_signature *sigs,
		  size_t n_sigs, char **ret_data, size_t *ret_size);

/* bundle_state_set() with a verified bundle's id, version and payload hash. */
int bundle_state_record(struct bundle_state *s, const struct bundle *b);
