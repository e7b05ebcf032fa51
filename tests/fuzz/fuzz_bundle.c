// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the bundle reader (userspace/lib/bundle.c) and the anti-rollback state
 * parser (userspace/lib/bundle_state.c). Each input is
 *
 *   1. verified as it is: a random input never carries a good signature, so this exercises the
 *      size, envelope and signature checks; it must be refused with a well-formed error;
 *   2. re-signed: its payload (all of it, or what precedes a signature block) is signed with the
 *      fuzzer's trusted key and verified again, which reaches the policy parser, the metadata
 *      and the rollback checks on the exact signed bytes;
 *   3. parsed as a state file.
 *
 * The keys are fixed (raw Ed25519 seeds below), so that the seed corpus can hold bundles signed
 * by the trusted key (tests/fuzz/corpus/bundle/signed-*.bundle) and by the revoked one, and
 * mutations of them reach the signature checks with a known key id.
 *
 * Never a crash, a leak or undefined behaviour; errors are one NUL-terminated line.
 */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "bundle_state.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The private key seeds: trusted, and revoked. Test keys, nothing else. */
static const uint8_t trusted_seed[32] = "carwall fuzz key: trusted.......";
static const uint8_t revoked_seed[32] = "carwall fuzz key: revoked.......";

static EVP_PKEY *key, *revoked_key;
static struct bundle_trust *trust;
static struct bundle_state *state;

static EVP_PKEY *raw_key(const uint8_t seed[32])
{
	EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);

	if (!k)
		abort();
	return k;
}

static void trust_key(EVP_PKEY *k, char keyid[BUNDLE_KEYID_LEN + 1])
{
	char *mem = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	long len;

	if (!bio || PEM_write_bio_PUBKEY(bio, k) != 1)
		abort();
	len = BIO_get_mem_data(bio, &mem);
	if (bundle_trust_add_key(trust, "fuzz.pem", mem, (size_t)len, keyid, NULL) < 0)
		abort();
	BIO_free(bio);
}

static void setup(void)
{
	static const uint8_t sha[BUNDLE_SHA256_BYTES] = { 0x42 };
	char keyid[BUNDLE_KEYID_LEN + 1];

	key = raw_key(trusted_seed);
	revoked_key = raw_key(revoked_seed);
	if (bundle_trust_new(&trust) < 0)
		abort();
	trust_key(key, keyid);
	trust_key(revoked_key, keyid);
	if (bundle_trust_revoke(trust, keyid) < 0)
		abort();
	if (bundle_state_new(&state) < 0 || bundle_state_set(state, "x", 5, sha) < 0)
		abort();
}

static void check_error(const struct bundle_error *e)
{
	if (e->reason == BUNDLE_OK || e->reason >= _BUNDLE_REASON_MAX ||
	    !memchr(e->message, '\0', sizeof(e->message)) || strchr(e->message, '\n') ||
	    e->message[0] == '\0')
		abort();
}

static void verify(const char *data, size_t size, bool resigned)
{
	/* 2027-01-01T00:00:00Z */
	struct bundle_expect want = { .target = "t", .now = 1798761600, .state = state };
	struct bundle *b = NULL;
	struct bundle_error e;
	int r;

	r = bundle_verify(trust, "fuzz.bundle", data, size, &want, &b, &e);
	if (r < 0) {
		if (b)
			abort();
		check_error(&e);
		/* A re-signed bundle is never refused for its signatures. */
		if (resigned && e.reason >= BUNDLE_UNKNOWN_KEY &&
		    e.reason <= BUNDLE_BELOW_THRESHOLD)
			abort();
		return;
	}
	if (!b || !b->policy || !b->policy->has_bundle || b->n_valid < 1 ||
	    b->payload_size == 0 || b->payload_size > size)
		abort();
	bundle_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct bundle_envelope env;
	struct bundle_error e;
	struct bundle_signature sig;
	struct bundle_state *st = NULL;
	char *signed_data = NULL, reason[256];
	size_t payload_size, signed_size = 0;
	int r;

	if (!key)
		setup();

	verify(text, size, false);

	r = bundle_split(text, size, &env, &e);
	if (r < 0)
		check_error(&e);
	payload_size = r == 0 ? env.payload_size : size;
	if (r == 0 || e.reason == BUNDLE_NO_SIGNATURE_BLOCK) {
		if (bundle_sign(key, text, payload_size, &sig) < 0)
			abort();
		r = bundle_format(text, payload_size, &sig, 1, &signed_data, &signed_size);
		/* Refused only for what the format forbids in a payload. */
		if (r < 0 && r != -EBADMSG && r != -EFBIG)
			abort();
		if (r == 0) {
			verify(signed_data, signed_size, true);
			free(signed_data);
		}
	}

	r = bundle_state_parse(text, size, &st, reason, sizeof(reason));
	if (r == 0) {
		char *out = NULL;
		size_t out_size = 0;

		/* What parses formats back to a state that parses to the same entries. */
		if (bundle_state_format(st, &out, &out_size) < 0)
			abort();
		bundle_state_free(st);
		st = NULL;
		if (bundle_state_parse(out, out_size, &st, reason, sizeof(reason)) < 0)
			abort();
		free(out);
	} else if (!memchr(reason, '\0', sizeof(reason))) {
		abort();
	}
	bundle_state_free(st);
	return 0;
}
