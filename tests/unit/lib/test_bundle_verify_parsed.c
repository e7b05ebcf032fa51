// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of bundle_verify_parsed() (userspace/lib/bundle.c): the agent's check, at every
 * reload, that the bundle in force still verifies, without parsing its payload again. Every
 * check but the parse must still run and give bundle_verify()'s answer: a key revoked since, a
 * threshold raised, another target, a floor raised, tampered bytes.
 */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bundle.h"
#include "bundle_state.h"
#include "policy.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle *, bundle_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_trust *, bundle_trust_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_state *, bundle_state_free)

#define NOW ((time_t)1798761600) /* 2027-01-01T00:00:00Z, inside the payload's window */
#define TARGET "agl-h3-refboard"

#define PAYLOAD_T(target)                                                                          \
	"bundle:\n"                                                                                \
	"  id: oem.headunit.policy\n"                                                              \
	"  version: 43\n"                                                                          \
	"  target: " target "\n"                                                                   \
	"  not-before: 2026-11-01T00:00:00Z\n"                                                     \
	"  not-after: 2027-11-01T00:00:00Z\n"                                                      \
	"version: 1\n"                                                                             \
	"apps:\n"                                                                                  \
	"  mediaplayer:\n"                                                                         \
	"    allow:\n"                                                                             \
	"      - to: 198.51.100.20\n"                                                              \
	"        ports: 443\n"

enum { KEY_A, KEY_B, N_KEYS };

static EVP_PKEY *keys[N_KEYS];
static char keyids[N_KEYS][BUNDLE_KEYID_LEN + 1];

static int group_setup(void **state)
{
	(void)state;
	for (int k = 0; k < N_KEYS; k++) {
		keys[k] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		if (!keys[k] || bundle_keyid(keys[k], keyids[k]) < 0)
			return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int k = 0; k < N_KEYS; k++)
		EVP_PKEY_free(keys[k]);
	return 0;
}

/* A trust store of A and B; threshold 1. */
static struct bundle_trust *trust_ab(void)
{
	struct bundle_trust *t = NULL;
	struct bundle_error e;

	assert_int_equal(bundle_trust_new(&t), 0);
	for (int k = 0; k < N_KEYS; k++) {
		BIO *bio = BIO_new(BIO_s_mem());
		char *mem = NULL;
		long len;

		assert_non_null(bio);
		assert_int_equal(PEM_write_bio_PUBKEY(bio, keys[k]), 1);
		len = BIO_get_mem_data(bio, &mem);
		assert_int_equal(bundle_trust_add_key(t, "k.pem", mem, (size_t)len, NULL, &e), 0);
		BIO_free(bio);
	}
	return t;
}

/* The payload signed by key k. */
static char *make_bundle(const char *payload, int k, size_t *ret_size)
{
	struct bundle_signature sig;
	char *data = NULL;

	assert_int_equal(bundle_sign(keys[k], payload, strlen(payload), &sig), 0);
	assert_int_equal(bundle_format(payload, strlen(payload), &sig, 1, &data, ret_size), 0);
	return data;
}

/* The bundle, verified and parsed the first time (as when it went in force). */
struct in_force {
	char *data;
	size_t size;
	struct bundle *b;
};

static void in_force_make(struct in_force *f, const struct bundle_trust *t)
{
	struct bundle_expect want = { .target = TARGET, .now = NOW };
	struct bundle_error e;

	f->data = make_bundle(PAYLOAD_T(TARGET), KEY_A, &f->size);
	assert_int_equal(bundle_verify(t, "t.bundle", f->data, f->size, &want, &f->b, &e), 0);
	assert_non_null(f->b->policy);
}

static void in_force_free(struct in_force *f)
{
	free(f->data);
	bundle_free(f->b);
}

/*
 * bundle_verify_parsed() of the bundle in force must give bundle_verify()'s answer (errno and
 * reason) under `want` and `t`.
 */
static void check_same(const struct bundle_trust *t, const struct in_force *f,
		       const struct bundle_expect *want, int error, enum bundle_reason reason)
{
	_cleanup_(bundle_freep) struct bundle *full = NULL, *quick = NULL;
	struct bundle_error e1, e2;
	int r1 = bundle_verify(t, "t.bundle", f->data, f->size, want, &full, &e1);
	int r2 = bundle_verify_parsed(t, "t.bundle", f->data, f->size, want, f->b->policy, &quick,
				      &e2);

	assert_int_equal(r1, error);
	assert_int_equal(r2, error);
	if (error < 0) {
		assert_int_equal(e1.reason, reason);
		assert_int_equal(e2.reason, reason);
		assert_string_equal(e1.message, e2.message);
		assert_null(quick);
	} else {
		assert_non_null(quick);
		assert_null(quick->policy); /* not parsed: the caller has it */
		assert_memory_equal(quick->payload_sha256, full->payload_sha256,
				    BUNDLE_SHA256_BYTES);
		assert_int_equal(quick->already_installed, full->already_installed);
	}
}

static void test_verify_parsed_accepts_bundle_in_force(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_ab();
	struct bundle_expect want = { .target = TARGET, .now = NOW };
	struct in_force f;

	(void)state;
	in_force_make(&f, t);
	check_same(t, &f, &want, 0, BUNDLE_OK);
	in_force_free(&f);
}

static void test_verify_parsed_refuses_key_revoked_since(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_ab();
	struct bundle_expect want = { .target = TARGET, .now = NOW };
	struct in_force f;

	(void)state;
	in_force_make(&f, t);
	assert_int_equal(bundle_trust_revoke(t, keyids[KEY_A]), 0);
	check_same(t, &f, &want, -EKEYREJECTED, BUNDLE_REVOKED_KEY);
	in_force_free(&f);
}

static void test_verify_parsed_refuses_threshold_raised_since(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_ab();
	struct bundle_expect want = { .target = TARGET, .now = NOW };
	struct in_force f;

	(void)state;
	in_force_make(&f, t);
	assert_int_equal(bundle_trust_set_threshold(t, 2), 0);
	check_same(t, &f, &want, -EKEYREJECTED, BUNDLE_BELOW_THRESHOLD);
	in_force_free(&f);
}

static void test_verify_parsed_refuses_other_target_and_id(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_ab();
	struct bundle_expect want = { .target = "other-board", .now = NOW };
	const char *ids[] = { "oem.other" };
	struct in_force f;

	(void)state;
	in_force_make(&f, t);
	check_same(t, &f, &want, -EINVAL, BUNDLE_WRONG_TARGET);
	want = (struct bundle_expect){ .target = TARGET, .ids = ids, .n_ids = 1, .now = NOW };
	check_same(t, &f, &want, -EINVAL, BUNDLE_WRONG_ID);
	in_force_free(&f);
}

/* A state holding one floor for the payload's bundle id. */
static struct bundle_state *state_at(uint64_t version, const uint8_t sha256[BUNDLE_SHA256_BYTES])
{
	struct bundle_state *s = NULL;

	assert_int_equal(bundle_state_new(&s), 0);
	assert_int_equal(bundle_state_set(s, "oem.headunit.policy", version, sha256), 0);
	return s;
}

static void test_verify_parsed_refuses_floor_raised_since(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_ab();
	_cleanup_(bundle_state_freep) struct bundle_state *same = NULL, *reused = NULL,
							   *higher = NULL;
	struct bundle_expect want = { .target = TARGET, .now = NOW };
	const uint8_t other[BUNDLE_SHA256_BYTES] = { 1 };
	struct in_force f;

	(void)state;
	in_force_make(&f, t);
	/* Its own version and content: already installed, accepted. */
	same = state_at(43, f.b->payload_sha256);
	want.state = same;
	check_same(t, &f, &want, 0, BUNDLE_OK);
	/* The same version with other content, then a higher floor: refused. */
	reused = state_at(43, other);
	want.state = reused;
	check_same(t, &f, &want, -ESTALE, BUNDLE_VERSION_REUSED);
	higher = state_at(44, other);
	want.state = higher;
	check_same(t, &f, &want, -ESTALE, BUNDLE_ROLLBACK);
	in_force_free(&f);
}

static void test_verify_parsed_refuses_tampered_bytes(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_ab();
	struct bundle_expect want = { .target = TARGET, .now = NOW };
	struct in_force f;
	char *port;

	(void)state;
	in_force_make(&f, t);
	port = strstr(f.data, "ports: 443");
	assert_non_null(port);
	port[sizeof("ports: 44") - 1] = '4';
	check_same(t, &f, &want, -EKEYREJECTED, BUNDLE_BAD_SIGNATURE);
	in_force_free(&f);
}

/* The metadata judged are the parsed policy's: it is not parsed again. */
static void test_verify_parsed_judges_the_parsed_metadata(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_ab();
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	struct bundle_expect want = { .target = TARGET, .now = NOW };
	struct policy *other = NULL;
	struct policy_error pe;
	struct bundle_error e;
	struct in_force f;

	(void)state;
	in_force_make(&f, t);
	assert_int_equal(policy_parse_buffer("o", PAYLOAD_T("other-board"),
					     strlen(PAYLOAD_T("other-board")), &other, &pe),
			 0);
	assert_int_equal(bundle_verify_parsed(t, "t.bundle", f.data, f.size, &want, other, &b, &e),
			 -EINVAL);
	assert_int_equal(e.reason, BUNDLE_WRONG_TARGET);
	assert_int_equal(bundle_verify_parsed(t, "t.bundle", f.data, f.size, &want, NULL, &b, &e),
			 -EINVAL);
	assert_int_equal(e.reason, BUNDLE_INTERNAL_ERROR);
	policy_free(other);
	in_force_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verify_parsed_accepts_bundle_in_force),
		cmocka_unit_test(test_verify_parsed_refuses_key_revoked_since),
		cmocka_unit_test(test_verify_parsed_refuses_threshold_raised_since),
		cmocka_unit_test(test_verify_parsed_refuses_other_target_and_id),
		cmocka_unit_test(test_verify_parsed_refuses_floor_raised_since),
		cmocka_unit_test(test_verify_parsed_refuses_tampered_bytes),
		cmocka_unit_test(test_verify_parsed_judges_the_parsed_metadata),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
