// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of signed bundles (userspace/lib/bundle.c) and of the anti-rollback state
 * (userspace/lib/bundle_state.c).
 *
 *   - Fixtures: scripts/make-bundle-fixtures.sh makes keys, a trust folder, a state and one
 *     bundle per case with the openssl CLI, into a temporary folder; each case is verified with
 *     its exact reason code.
 *   - Everything else builds bundles in memory with libcrypto keys made here: envelope edge
 *     cases, signature counting, trust folders, time bounds, the state file and its crash
 *     consistency (a forked child is ended at each step of a save).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bundle.h"
#include "bundle_state.h"
#include "policy.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle *, bundle_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_trust *, bundle_trust_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_state *, bundle_state_free)

/* 2027-01-01T00:00:00Z: inside the fixtures' validity window 2026-11-01 .. 2027-11-01. */
#define NOW ((time_t)1798761600)
#define NOT_BEFORE ((time_t)1793491200) /* 2026-11-01T00:00:00Z */
#define NOT_AFTER ((time_t)1825027200)	/* 2027-11-01T00:00:00Z */
#define TARGET "agl-h3-refboard"

/* A valid payload; the bundle metadata is on lines 1-6. */
#define PAYLOAD_V(version)                                                                         \
	"bundle:\n"                                                                                \
	"  id: oem.headunit.policy\n"                                                              \
	"  version: " version "\n"                                                                 \
	"  target: agl-h3-refboard\n"                                                              \
	"  not-before: 2026-11-01T00:00:00Z\n"                                                     \
	"  not-after: 2027-11-01T00:00:00Z\n"                                                      \
	"version: 1\n"                                                                             \
	"apps:\n"                                                                                  \
	"  mediaplayer:\n"                                                                         \
	"    allow:\n"                                                                             \
	"      - to: 198.51.100.20\n"                                                              \
	"        ports: 443\n"
#define PAYLOAD PAYLOAD_V("43")

enum { KEY_A, KEY_B, KEY_C, KEY_R, KEY_U, N_KEYS };

static struct {
	EVP_PKEY *keys[N_KEYS];
	char keyids[N_KEYS][BUNDLE_KEYID_LEN + 1];
	char *fixtures;	    /* the fixture folder, or NULL if the script failed */
	char fixture_log[4096];
} g;

/* ---- helpers -------------------------------------------------------------------------------- */

/* The PEM public key of k, as a new string. */
static char *pub_pem(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *mem = NULL, *s;
	long len;

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
	len = BIO_get_mem_data(bio, &mem);
	assert_true(len > 0);
	s = strndup(mem, (size_t)len);
	assert_non_null(s);
	BIO_free(bio);
	return s;
}

/* A trust store of A, B and C, with R's key present but revoked; threshold m. */
static struct bundle_trust *trust_abc(unsigned m)
{
	struct bundle_trust *t = NULL;
	struct bundle_error e;

	assert_int_equal(bundle_trust_new(&t), 0);
	for (int k = KEY_A; k <= KEY_R; k++) {
		_cleanup_free_ char *pem = pub_pem(g.keys[k]);

		assert_int_equal(bundle_trust_add_key(t, "k.pem", pem, strlen(pem), NULL, &e), 0);
	}
	assert_int_equal(bundle_trust_revoke(t, g.keyids[KEY_R]), 0);
	assert_int_equal(bundle_trust_set_threshold(t, m), 0);
	return t;
}

/* A bundle of payload signed by keys[] (indexes into g.keys, -1 ends), as a new string. */
static char *make_bundle(const char *payload, const int *keys, size_t *ret_size)
{
	struct bundle_signature sigs[BUNDLE_MAX_SIGNATURES];
	char *data = NULL;
	size_t n = 0;

	for (; keys[n] >= 0; n++)
		assert_int_equal(bundle_sign(g.keys[keys[n]], payload, strlen(payload), &sigs[n]),
				 0);
	assert_int_equal(bundle_format(payload, strlen(payload), sigs, n, &data, ret_size), 0);
	return data;
}

static int verify_str(const struct bundle_trust *t, const char *data, size_t size,
		      const struct bundle_expect *want, struct bundle **ret, struct bundle_error *e)
{
	return bundle_verify(t, "t.bundle", data, size, want, ret, e);
}

/* The verification of data must fail with reason and errno, and a message containing msg. */
static void check_refused(const struct bundle_trust *t, const char *data, size_t size,
			  const struct bundle_expect *want, int error, enum bundle_reason reason,
			  const char *msg, const char *file, int line)
{
	struct bundle *b = NULL;
	struct bundle_error e;
	int r = verify_str(t, data, size, want, &b, &e);

	if (r != error || e.reason != reason || (msg && !strstr(e.message, msg))) {
		print_error("expected %d %s ...%s...\n     got %d %s: %s\n", error,
			    bundle_reason_name(reason), msg ? msg : "", r,
			    bundle_reason_name(e.reason), e.message);
		_fail(file, line);
	}
	_assert_true(b == NULL, "bundle == NULL", file, line);
}

#define assert_refused(t, data, size, want, error, reason, msg)                                    \
	check_refused((t), (data), (size), (want), (error), (reason), (msg), __FILE__, __LINE__)

static struct bundle_expect expect_default(void)
{
	return (struct bundle_expect){ .target = TARGET, .now = NOW };
}

/* Write a file with this mode (whatever the umask). */
static void write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static char *path_join(const char *dir, const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static char *make_temp_dir(void)
{
	char *dir = strdup("/tmp/carwall-test-bundle.XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void remove_tree(const char *dir)
{
	char *cmd = NULL;

	if (!dir)
		return;
	assert_true(asprintf(&cmd, "rm -rf -- '%s'", dir) > 0);
	if (system(cmd) != 0)
		print_error("could not remove %s\n", dir);
	free(cmd);
}

/* A trust folder with A, B and C as a.pem b.pem c.pem (mode 0644), the folder 0755. */
static char *trust_dir_abc(void)
{
	char *dir = make_temp_dir();
	const char *names[] = { "a.pem", "b.pem", "c.pem" };

	assert_int_equal(chmod(dir, 0755), 0);
	for (int k = KEY_A; k <= KEY_C; k++) {
		_cleanup_free_ char *pem = pub_pem(g.keys[k]), *p = path_join(dir, names[k]);

		write_file(p, pem, 0644);
	}
	return dir;
}

/* The script next to this file's folder: $CARWALL_SCRIPTS_DIR, or from __FILE__. */
static char *script_path(void)
{
	const char *dir = getenv("CARWALL_SCRIPTS_DIR"), *slash = strrchr(__FILE__, '/');
	char *path = NULL;
	int r;

	if (dir)
		r = asprintf(&path, "%s/make-bundle-fixtures.sh", dir);
	else if (slash)
		r = asprintf(&path, "%.*s/../../../scripts/make-bundle-fixtures.sh",
			     (int)(slash - __FILE__), __FILE__);
	else
		r = asprintf(&path, "../../../scripts/make-bundle-fixtures.sh");
	return r > 0 ? path : NULL;
}

static int group_setup(void **state)
{
	_cleanup_free_ char *script = script_path(), *cmd = NULL, *log = NULL;
	char *dir = strdup("/tmp/carwall-bundle-fixtures.XXXXXX");

	(void)state;
	for (int k = 0; k < N_KEYS; k++) {
		g.keys[k] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		if (!g.keys[k] || bundle_keyid(g.keys[k], g.keyids[k]) < 0)
			return -1;
	}
	if (!dir || !script || !mkdtemp(dir)) {
		free(dir);
		return 0;
	}
	if (asprintf(&log, "%s.log", dir) < 0 ||
	    asprintf(&cmd, "bash '%s' '%s' >'%s' 2>&1", script, dir, log) < 0) {
		remove_tree(dir);
		free(dir);
		return 0;
	}
	if (system(cmd) == 0) {
		g.fixtures = dir;
	} else {
		FILE *f = fopen(log, "r");
		size_t n = f ? fread(g.fixture_log, 1, sizeof(g.fixture_log) - 1, f) : 0;

		g.fixture_log[n] = '\0';
		if (f)
			fclose(f);
		remove_tree(dir);
		free(dir);
	}
	unlink(log);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int k = 0; k < N_KEYS; k++)
		EVP_PKEY_free(g.keys[k]);
	remove_tree(g.fixtures);
	free(g.fixtures);
	return 0;
}

/* ---- fixtures made by scripts/make-bundle-fixtures.sh with the openssl CLI ------------------- */

struct fixture_result {
	int r;
	struct bundle_error e;
	struct bundle *b;
};

/* Verify OUTDIR/name as the agent would: fixture trust folder and state, threshold m. */
static struct fixture_result verify_fixture(const char *name, unsigned m)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = NULL;
	_cleanup_(bundle_state_freep) struct bundle_state *st = NULL;
	_cleanup_free_ char *trust = NULL, *state = NULL, *path = NULL, *data = NULL;
	struct fixture_result res = {};
	struct bundle_expect want = expect_default();
	char reason[256];
	size_t size = 0;

	if (!g.fixtures)
		fail_msg("scripts/make-bundle-fixtures.sh failed:\n%s", g.fixture_log);
	trust = path_join(g.fixtures, "trust");
	state = path_join(g.fixtures, "state");
	path = path_join(g.fixtures, name);
	assert_int_equal(bundle_trust_load(trust, &t, &res.e), 0);
	assert_int_equal(bundle_trust_n_keys(t), 3);
	assert_int_equal(bundle_trust_set_threshold(t, m), 0);
	assert_int_equal(bundle_state_load(state, &st, reason, sizeof(reason)), 0);
	want.state = st;
	res.r = bundle_read_file(path, &data, &size, &res.e);
	if (res.r == 0)
		res.r = bundle_verify(t, name, data, size, &want, &res.b, &res.e);
	return res;
}

static void check_fixture(const char *name, unsigned m, int error, enum bundle_reason reason,
			  const char *msg, const char *file, int line)
{
	struct fixture_result res = verify_fixture(name, m);

	if (res.r != error || res.e.reason != reason || (msg && !strstr(res.e.message, msg))) {
		print_error("%s: expected %d %s ...%s...\n     got %d %s: %s\n", name, error,
			    bundle_reason_name(reason), msg ? msg : "", res.r,
			    bundle_reason_name(res.e.reason), res.e.message);
		bundle_free(res.b);
		_fail(file, line);
	}
	bundle_free(res.b);
}

#define assert_fixture_refused(name, m, error, reason, msg)                                        \
	check_fixture((name), (m), (error), (reason), (msg), __FILE__, __LINE__)

static void test_fixture_good_is_valid(void **state)
{
	struct fixture_result res = verify_fixture("good.bundle", 1);
	_cleanup_(bundle_freep) struct bundle *b = res.b;

	(void)state;
	assert_int_equal(res.r, 0);
	assert_string_equal(b->policy->bundle.id, "oem.headunit.policy");
	assert_int_equal(b->policy->bundle.version, 43);
	assert_string_equal(b->policy->bundle.target, TARGET);
	assert_int_equal(b->policy->bundle.not_before, NOT_BEFORE);
	assert_int_equal(b->policy->bundle.not_after, NOT_AFTER);
	assert_int_equal(b->n_valid, 1);
	assert_false(b->already_installed);
	assert_non_null(policy_find_app(b->policy, "mediaplayer"));
}

static void test_fixture_good_ab_meets_threshold_two(void **state)
{
	struct fixture_result res = verify_fixture("good-ab.bundle", 2);
	_cleanup_(bundle_freep) struct bundle *b = res.b;

	(void)state;
	assert_int_equal(res.r, 0);
	assert_int_equal(b->n_valid, 2);
}

static void test_fixture_installed_is_already_installed(void **state)
{
	struct fixture_result res = verify_fixture("installed.bundle", 1);
	_cleanup_(bundle_freep) struct bundle *b = res.b;

	(void)state;
	assert_int_equal(res.r, 0);
	assert_true(b->already_installed);
}

static void test_fixture_one_signature_is_below_threshold_two(void **state)
{
	(void)state;
	assert_fixture_refused("good.bundle", 2, -EKEYREJECTED, BUNDLE_BELOW_THRESHOLD,
			       "1 valid signature of trusted keys, 2 required");
}

static void test_fixture_same_key_twice_counts_once(void **state)
{
	(void)state;
	assert_fixture_refused("dup-a.bundle", 2, -EKEYREJECTED, BUNDLE_BELOW_THRESHOLD,
			       "1 valid signature of trusted keys, 2 required");
}

static void test_fixture_tampered_payload_is_bad_signature(void **state)
{
	(void)state;
	assert_fixture_refused("tampered-payload.bundle", 1, -EKEYREJECTED, BUNDLE_BAD_SIGNATURE,
			       "line 18: the signature by trusted key");
}

static void test_fixture_tampered_signature_is_bad_signature(void **state)
{
	(void)state;
	assert_fixture_refused("tampered-signature.bundle", 1, -EKEYREJECTED,
			       BUNDLE_BAD_SIGNATURE, "does not match the payload");
}

static void test_fixture_truncated_is_bad_signature_length(void **state)
{
	(void)state;
	assert_fixture_refused("truncated.bundle", 1, -EBADMSG, BUNDLE_BAD_SIGNATURE_LENGTH,
			       "line 18: the signature is 33 bytes; an Ed25519 signature is 64");
}

static void test_fixture_wrong_key_is_unknown_key(void **state)
{
	(void)state;
	assert_fixture_refused("wrong-key.bundle", 1, -EKEYREJECTED, BUNDLE_UNKNOWN_KEY,
			       "which is not trusted; 0 valid signatures of trusted keys, 1 "
			       "required");
}

static void test_fixture_revoked_key_is_refused(void **state)
{
	(void)state;
	assert_fixture_refused("revoked.bundle", 1, -EKEYREJECTED, BUNDLE_REVOKED_KEY,
			       "signed by revoked key");
}

static void test_fixture_expired_is_refused(void **state)
{
	(void)state;
	assert_fixture_refused("expired.bundle", 1, -EINVAL, BUNDLE_EXPIRED,
			       "expired.bundle:7:14: the bundle expired at 2026-06-01T00:00:00Z "
			       "(now is 2027-01-01T00:00:00Z)");
}

static void test_fixture_not_yet_valid_is_refused(void **state)
{
	(void)state;
	assert_fixture_refused("not-yet-valid.bundle", 1, -EINVAL, BUNDLE_NOT_YET_VALID,
			       "not valid before 2027-06-01T00:00:00Z");
}

static void test_fixture_wrong_target_is_refused(void **state)
{
	(void)state;
	assert_fixture_refused("wrong-target.bundle", 1, -EINVAL, BUNDLE_WRONG_TARGET,
			       "wrong-target.bundle:5:11: the bundle is for target "
			       "'agl-h3-otherboard', this device is 'agl-h3-refboard'");
}

static void test_fixture_older_version_is_rollback(void **state)
{
	(void)state;
	assert_fixture_refused("rollback.bundle", 1, -ESTALE, BUNDLE_ROLLBACK,
			       "version 41 is older than the installed version 42");
}

static void test_fixture_same_version_other_content_is_refused(void **state)
{
	(void)state;
	assert_fixture_refused("same-version.bundle", 1, -ESTALE, BUNDLE_VERSION_REUSED,
			       "version 42 is installed with other content");
}

static void test_fixture_oversized_is_refused_before_reading(void **state)
{
	(void)state;
	assert_fixture_refused("oversized.bundle", 1, -EFBIG, BUNDLE_TOO_LARGE,
			       "larger than 16781312 bytes (BUNDLE_MAX_BYTES)");
}

static void test_fixture_unsigned_has_no_signature_block(void **state)
{
	(void)state;
	assert_fixture_refused("unsigned.bundle", 1, -EBADMSG, BUNDLE_NO_SIGNATURE_BLOCK,
			       "no line '#carwall-signatures v1'");
}

static void test_fixture_empty_block_has_no_signatures(void **state)
{
	(void)state;
	assert_fixture_refused("empty-block.bundle", 1, -EBADMSG, BUNDLE_NO_SIGNATURES,
			       "holds no signature");
}

static void test_fixture_garbage_signature_is_bad_base64(void **state)
{
	(void)state;
	assert_fixture_refused("garbage-signature.bundle", 1, -EBADMSG, BUNDLE_BAD_BASE64,
			       "line 18:");
}

static void test_fixture_garbage_line_is_refused(void **state)
{
	(void)state;
	assert_fixture_refused("garbage-line.bundle", 1, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
			       "line 19: 'hello' is not a signature line");
}

static void test_fixture_policy_without_metadata_is_refused(void **state)
{
	(void)state;
	assert_fixture_refused("no-metadata.bundle", 1, -EINVAL, BUNDLE_NO_METADATA,
			       "without 'bundle:' metadata");
}

static void test_fixture_invalid_policy_keeps_its_location(void **state)
{
	struct fixture_result res = verify_fixture("invalid-policy.bundle", 1);

	(void)state;
	assert_int_equal(res.r, -EINVAL);
	assert_int_equal(res.e.reason, BUNDLE_INVALID_POLICY);
	assert_string_equal(res.e.policy.file, "invalid-policy.bundle");
	assert_int_equal(res.e.policy.loc.line, 15);
	assert_int_equal(res.e.policy.loc.column, 17);
	assert_string_equal(res.e.message,
			    "invalid-policy.bundle:15:17: port 0 is not a destination port");
}

/* ---- envelope ------------------------------------------------------------------------------- */

static void test_verify_accepts_bundle_made_in_memory(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL;
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	struct bundle_error e;
	uint8_t md[BUNDLE_SHA256_BYTES];
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, -1 }, &size);
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	assert_int_equal(e.reason, BUNDLE_OK);
	/* The signed and parsed bytes are exactly the payload. */
	assert_int_equal(b->payload_size, strlen(PAYLOAD));
	bundle_sha256(PAYLOAD, strlen(PAYLOAD), md);
	assert_memory_equal(b->payload_sha256, md, sizeof(md));
	assert_string_equal(b->policy->path, "t.bundle");
	assert_int_equal(b->envelope.n_signatures, 1);
	assert_string_equal(b->envelope.signatures[0].keyid, g.keyids[KEY_A]);
	assert_int_equal(b->envelope.signatures[0].line, 14);
}

static void test_format_then_split_round_trips(void **state)
{
	struct bundle_signature sigs[2];
	struct bundle_envelope env;
	struct bundle_error e;
	_cleanup_free_ char *data = NULL;
	size_t size;

	(void)state;
	assert_int_equal(bundle_sign(g.keys[KEY_A], PAYLOAD, strlen(PAYLOAD), &sigs[0]), 0);
	assert_int_equal(bundle_sign(g.keys[KEY_B], PAYLOAD, strlen(PAYLOAD), &sigs[1]), 0);
	assert_int_equal(bundle_format(PAYLOAD, strlen(PAYLOAD), sigs, 2, &data, &size), 0);
	assert_int_equal(size, strlen(data));
	assert_int_equal(bundle_split(data, size, &env, &e), 0);
	assert_int_equal(env.payload_size, strlen(PAYLOAD));
	assert_int_equal(env.n_signatures, 2);
	for (int i = 0; i < 2; i++) {
		assert_string_equal(env.signatures[i].keyid, sigs[i].keyid);
		assert_memory_equal(env.signatures[i].sig, sigs[i].sig, BUNDLE_SIGNATURE_BYTES);
	}
}

static void test_format_refuses_payload_without_final_newline(void **state)
{
	char *data = NULL;
	size_t size;

	(void)state;
	assert_int_equal(bundle_format("version: 1", 10, NULL, 0, &data, &size), -EBADMSG);
	assert_int_equal(bundle_format(PAYLOAD BUNDLE_BLOCK_LINE "\n", strlen(PAYLOAD) + 23, NULL,
				       0, &data, &size),
			 -EBADMSG);
	assert_null(data);
}

/* The bundle of PAYLOAD signed by A, with its block text replaced by `block`. */
static char *with_block(const char *block)
{
	char *s = NULL;

	assert_true(asprintf(&s, "%s%s", PAYLOAD, block) > 0);
	return s;
}

/* A's signature line for PAYLOAD, without "\n". */
static char *sig_line_a(void)
{
	_cleanup_free_ char *data = NULL;
	char *line;
	size_t size;

	data = make_bundle(PAYLOAD, (int[]){ KEY_A, -1 }, &size);
	line = strdup(strstr(data, "\n#ed25519 ") + 1);
	assert_non_null(line);
	line[strcspn(line, "\n")] = '\0';
	return line;
}

static void test_envelope_block_line_must_be_exact(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *line = sig_line_a(), *block = NULL, *data = NULL;

	(void)state;
	assert_true(asprintf(&block, "#carwall-signatures v1 \n%s\n", line) > 0);
	data = with_block(block);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_NO_SIGNATURE_BLOCK,
		       "line 13, '#carwall-signatures v1 ', is not it");
}

static void test_envelope_other_block_version_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = with_block("#carwall-signatures v2\n");

	(void)state;
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_NO_SIGNATURE_BLOCK,
		       "'#carwall-signatures v2', is not it (this carwall reads v1");
}

static void test_envelope_crlf_line_endings_are_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *line = sig_line_a(), *block = NULL, *data = NULL;

	(void)state;
	assert_true(asprintf(&block, "#carwall-signatures v1\n%s\r\n", line) > 0);
	data = with_block(block);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
		       "line 14: control character 0x0d");
}

static void test_envelope_empty_payload_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *line = sig_line_a(), *data = NULL;

	(void)state;
	assert_true(asprintf(&data, "#carwall-signatures v1\n%s\n", line) > 0);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_EMPTY_PAYLOAD,
		       "the payload before the signature block is empty");
}

static void test_envelope_block_text_inside_payload_is_not_a_block(void **state)
{
	/* Indented inside a YAML comment: not the block line, signed as part of the payload. */
	static const char payload[] = PAYLOAD "  #carwall-signatures v1\n";
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	data = make_bundle(payload, (int[]){ KEY_A, -1 }, &size);
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	assert_int_equal(b->payload_size, strlen(payload));
}

static void test_envelope_last_line_may_lack_newline(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, -1 }, &size);
	assert_int_equal(verify_str(t, data, size - 1, &want, &b, &e), 0);
}

/* A device that names the bundle ids it accepts refuses any other, signed or not. */
static void test_metadata_bundle_id_not_accepted_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	static const char *const ids[] = { "oem.other.policy", "oem.third.policy" };
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL;
	size_t size;

	(void)state;
	want.ids = ids;
	want.n_ids = ARRAY_SIZE(ids);
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, -1 }, &size);
	assert_refused(t, data, size, &want, -EINVAL, BUNDLE_WRONG_ID,
		       "t.bundle:2:3: bundle id 'oem.headunit.policy' is not one this device "
		       "accepts");
}

static void test_metadata_bundle_id_accepted_verifies(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	static const char *const ids[] = { "oem.other.policy", "oem.headunit.policy" };
	struct bundle_expect want = expect_default();
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	want.ids = ids;
	want.n_ids = ARRAY_SIZE(ids);
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, -1 }, &size);
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	assert_string_equal(bundle_reason_name(BUNDLE_WRONG_ID), "wrong-id");
}

static void test_envelope_blank_line_at_end_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *line = sig_line_a(), *block = NULL, *data = NULL;

	(void)state;
	assert_true(asprintf(&block, "#carwall-signatures v1\n%s\n\n", line) > 0);
	data = with_block(block);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
		       "line 15: blank line in the signature block");
}

static void test_envelope_uppercase_keyid_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *line = sig_line_a(), *block = NULL, *data = NULL;

	(void)state;
	for (char *c = line + strlen(BUNDLE_SIG_TAG) + 1; *c != ' '; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	assert_true(asprintf(&block, "#carwall-signatures v1\n%s\n", line) > 0);
	data = with_block(block);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
		       "the key id must be 64 lowercase hex digits");
}

static void test_envelope_unsupported_signature_type_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = with_block("#carwall-signatures v1\n#rsa abc def\n");

	(void)state;
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
		       "unsupported signature type '#rsa'");
}

static void test_envelope_non_canonical_base64_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *line = sig_line_a(), *block = NULL, *data = NULL;
	char *last;

	(void)state;
	/* The character before "==" carries 2 bits and 4 zero bits: set one of those. */
	last = line + strlen(line) - 3;
	*last = *last == 'B' ? 'C' : 'B';
	assert_true(asprintf(&block, "#carwall-signatures v1\n%s\n", line) > 0);
	data = with_block(block);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_BAD_BASE64,
		       "line 14: the signature is not valid base64");
}

static void test_envelope_base64_with_blank_inside_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *line = sig_line_a(), *block = NULL, *data = NULL;

	(void)state;
	line[strlen(line) - 8] = ' ';
	assert_true(asprintf(&block, "#carwall-signatures v1\n%s\n", line) > 0);
	data = with_block(block);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_BAD_BASE64, "line 14:");
}

static void test_envelope_wrong_signature_length_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *block = NULL, *data = NULL;
	unsigned char raw[65] = { 1, 2, 3 }, b64[100];

	(void)state;
	EVP_EncodeBlock(b64, raw, sizeof(raw));
	assert_true(asprintf(&block, "#carwall-signatures v1\n#ed25519 %s %s\n", g.keyids[KEY_A],
			     (char *)b64) > 0);
	data = with_block(block);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_BAD_SIGNATURE_LENGTH,
		       "line 14: the signature is 65 bytes; an Ed25519 signature is 64");
}

static void test_envelope_too_many_signatures_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *line = sig_line_a(), *data = NULL;
	char *block = strdup("#carwall-signatures v1\n");

	(void)state;
	assert_non_null(block);
	for (int i = 0; i <= BUNDLE_MAX_SIGNATURES; i++) {
		char *more = NULL;

		assert_true(asprintf(&more, "%s%s\n", block, line) > 0);
		free(block);
		block = more;
	}
	data = with_block(block);
	free(block);
	assert_refused(t, data, strlen(data), &want, -EBADMSG, BUNDLE_TOO_MANY_SIGNATURES,
		       "line 30: more than 16 signatures (BUNDLE_MAX_SIGNATURES)");
}

static void test_verify_refuses_too_large_before_looking(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = calloc(1, BUNDLE_MAX_BYTES + 1);

	(void)state;
	assert_non_null(data);
	assert_refused(t, data, BUNDLE_MAX_BYTES + 1, &want, -EFBIG, BUNDLE_TOO_LARGE,
		       "the bundle is 16781313 bytes; the limit is 16781312 bytes");
}

/* ---- signatures ----------------------------------------------------------------------------- */

static void test_signature_by_unknown_key_is_ignored_when_threshold_met(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_U, KEY_A, -1 }, &size);
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	assert_int_equal(b->n_valid, 1);
	assert_int_equal(b->envelope.signatures[0].status, BUNDLE_UNKNOWN_KEY);
	assert_int_equal(b->envelope.signatures[1].status, BUNDLE_OK);
}

static void test_signature_by_revoked_key_is_ignored_when_threshold_met(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_R, KEY_B, -1 }, &size);
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	assert_int_equal(b->envelope.signatures[0].status, BUNDLE_REVOKED_KEY);
}

static void test_bad_signature_by_trusted_key_refuses_even_above_threshold(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL;
	struct bundle_signature sigs[2];
	size_t size;

	(void)state;
	assert_int_equal(bundle_sign(g.keys[KEY_A], PAYLOAD, strlen(PAYLOAD), &sigs[0]), 0);
	/* B's signature of other bytes. */
	assert_int_equal(bundle_sign(g.keys[KEY_B], "other\n", 6, &sigs[1]), 0);
	assert_int_equal(bundle_format(PAYLOAD, strlen(PAYLOAD), sigs, 2, &data, &size), 0);
	assert_refused(t, data, size, &want, -EKEYREJECTED, BUNDLE_BAD_SIGNATURE,
		       "line 15: the signature by trusted key");
}

static void test_below_threshold_reports_counts(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(3);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, KEY_B, -1 }, &size);
	assert_refused(t, data, size, &want, -EKEYREJECTED, BUNDLE_BELOW_THRESHOLD,
		       "2 valid signatures of trusted keys, 3 required");
}

static void test_below_threshold_names_first_unknown_key(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(2);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL, *msg = NULL;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, KEY_U, -1 }, &size);
	assert_true(asprintf(&msg,
			     "line 15: signed by key %s, which is not trusted; 1 valid signature "
			     "of trusted keys, 2 required",
			     g.keyids[KEY_U]) > 0);
	assert_refused(t, data, size, &want, -EKEYREJECTED, BUNDLE_UNKNOWN_KEY, msg);
}

static void test_duplicate_signatures_of_one_key_count_once(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(2);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, KEY_A, KEY_A, -1 }, &size);
	assert_refused(t, data, size, &want, -EKEYREJECTED, BUNDLE_BELOW_THRESHOLD,
		       "1 valid signature of trusted keys, 2 required");
}

static void test_three_of_three_keys_meet_threshold_three(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(3);
	struct bundle_expect want = expect_default();
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_C, KEY_A, KEY_A, KEY_B, -1 }, &size);
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	assert_int_equal(b->n_valid, 3);
	assert_true(b->envelope.signatures[2].duplicate);
}

static void test_threshold_out_of_range_is_refused(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);

	(void)state;
	assert_int_equal(bundle_trust_set_threshold(t, 0), -ERANGE);
	assert_int_equal(bundle_trust_set_threshold(t, BUNDLE_MAX_SIGNATURES + 1), -ERANGE);
	assert_int_equal(bundle_trust_threshold(t), 1);
}

/* ---- metadata ------------------------------------------------------------------------------- */

static void test_validity_window_bounds_are_inclusive(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL;
	struct bundle *b = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, -1 }, &size);
	want.now = NOT_BEFORE;
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	bundle_free(b);
	want.now = NOT_AFTER;
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	bundle_free(b);
	want.now = NOT_BEFORE - 1;
	assert_refused(t, data, size, &want, -EINVAL, BUNDLE_NOT_YET_VALID,
		       "t.bundle:5:15: the bundle is not valid before 2026-11-01T00:00:00Z (now "
		       "is 2026-10-31T23:59:59Z)");
	want.now = NOT_AFTER + 1;
	assert_refused(t, data, size, &want, -EINVAL, BUNDLE_EXPIRED,
		       "t.bundle:6:14: the bundle expired at 2027-11-01T00:00:00Z");
}

static void test_target_is_not_checked_without_expected_target(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = { .now = NOW };
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	data = make_bundle(PAYLOAD, (int[]){ KEY_A, -1 }, &size);
	assert_int_equal(verify_str(t, data, size, &want, &b, &e), 0);
	want.target = "other-board";
	assert_refused(t, data, size, &want, -EINVAL, BUNDLE_WRONG_TARGET,
		       "t.bundle:4:11: the bundle is for target 'agl-h3-refboard', this device "
		       "is 'other-board'");
}

static void test_signatures_are_checked_before_the_policy_is_parsed(void **state)
{
	/* Unparseable payload, unknown key: the signature is what is reported. */
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL;
	size_t size;

	(void)state;
	data = make_bundle("not: [a policy\n", (int[]){ KEY_U, -1 }, &size);
	assert_refused(t, data, size, &want, -EKEYREJECTED, BUNDLE_UNKNOWN_KEY, NULL);
}

static void test_rollback_checks_the_state(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = trust_abc(1);
	_cleanup_(bundle_state_freep) struct bundle_state *st = NULL;
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *v43 = NULL, *v44 = NULL, *v42 = NULL;
	struct bundle *b = NULL;
	struct bundle_error e;
	size_t s43, s44, s42;

	(void)state;
	v42 = make_bundle(PAYLOAD_V("42"), (int[]){ KEY_A, -1 }, &s42);
	v43 = make_bundle(PAYLOAD_V("43"), (int[]){ KEY_A, -1 }, &s43);
	v44 = make_bundle(PAYLOAD_V("44"), (int[]){ KEY_A, -1 }, &s44);
	assert_int_equal(bundle_state_new(&st), 0);
	want.state = st;

	assert_int_equal(verify_str(t, v43, s43, &want, &b, &e), 0);
	assert_false(b->already_installed);
	assert_int_equal(bundle_state_record(st, b), 0);
	bundle_free(b);

	assert_int_equal(verify_str(t, v43, s43, &want, &b, &e), 0);
	assert_true(b->already_installed);
	bundle_free(b);
	assert_refused(t, v42, s42, &want, -ESTALE, BUNDLE_ROLLBACK,
		       "bundle 'oem.headunit.policy' version 42 is older than the installed "
		       "version 43");
	assert_int_equal(verify_str(t, v44, s44, &want, &b, &e), 0);
	bundle_free(b);
}

/* ---- trust folders -------------------------------------------------------------------------- */

static void test_trust_load_reads_every_pem_key(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = NULL;
	_cleanup_free_ char *dir = trust_dir_abc(), *readme = path_join(dir, "README");
	struct bundle_error e;

	(void)state;
	write_file(readme, "not a key, ignored\n", 0644);
	assert_int_equal(bundle_trust_load(dir, &t, &e), 0);
	assert_int_equal(bundle_trust_n_keys(t), 3);
	assert_int_equal(bundle_trust_threshold(t), 1);
	remove_tree(dir);
}

static void test_trust_load_applies_revoked_file(void **state)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = NULL;
	_cleanup_free_ char *dir = trust_dir_abc(), *rev = path_join(dir, "revoked"), *txt = NULL;
	struct bundle_expect want = expect_default();
	_cleanup_free_ char *data = NULL;
	struct bundle_error e;
	size_t size;

	(void)state;
	assert_true(asprintf(&txt, "# compromised 2026-10\n\n%s\n", g.keyids[KEY_B]) > 0);
	write_file(rev, txt, 0644);
	assert_int_equal(bundle_trust_load(dir, &t, &e), 0);
	assert_int_equal(bundle_trust_n_keys(t), 2);
	data = make_bundle(PAYLOAD, (int[]){ KEY_B, -1 }, &size);
	assert_refused(t, data, size, &want, -EKEYREJECTED, BUNDLE_REVOKED_KEY, g.keyids[KEY_B]);
	remove_tree(dir);
}

static void check_trust_refused(const char *dir, int error, const char *msg, const char *file,
				int line)
{
	struct bundle_trust *t = NULL;
	struct bundle_error e;
	int r = bundle_trust_load(dir, &t, &e);

	if (r != error || e.reason != BUNDLE_BAD_TRUST_STORE || !strstr(e.message, msg)) {
		print_error("expected %d ...%s...\n     got %d %s: %s\n", error, msg, r,
			    bundle_reason_name(e.reason), e.message);
		bundle_trust_free(t);
		_fail(file, line);
	}
	_assert_true(t == NULL, "trust == NULL", file, line);
}

#define assert_trust_refused(dir, error, msg)                                                      \
	check_trust_refused((dir), (error), (msg), __FILE__, __LINE__)

static void test_trust_load_refuses_group_writable_folder(void **state)
{
	_cleanup_free_ char *dir = trust_dir_abc();

	(void)state;
	assert_int_equal(chmod(dir, 0775), 0);
	assert_trust_refused(dir, -EPERM, "is writable by group or others (mode 0775)");
	remove_tree(dir);
}

static void test_trust_load_refuses_world_writable_key(void **state)
{
	_cleanup_free_ char *dir = trust_dir_abc(), *key = path_join(dir, "b.pem");

	(void)state;
	assert_int_equal(chmod(key, 0646), 0);
	assert_trust_refused(dir, -EPERM, "b.pem is writable by group or others (mode 0646)");
	remove_tree(dir);
}

static void test_trust_load_refuses_key_owned_by_another_user(void **state)
{
	_cleanup_free_ char *dir = NULL, *key = NULL;

	(void)state;
	if (geteuid() != 0)
		skip(); /* only root can give a file away */
	dir = trust_dir_abc();
	key = path_join(dir, "c.pem");
	assert_int_equal(chown(key, 4242, 4242), 0);
	assert_trust_refused(dir, -EPERM, "c.pem is owned by uid 4242, not by root");
	remove_tree(dir);
}

static void test_trust_load_refuses_symlinked_key(void **state)
{
	_cleanup_free_ char *dir = trust_dir_abc(), *a = path_join(dir, "a.pem"),
			    *link = path_join(dir, "d.pem");

	(void)state;
	assert_int_equal(symlink(a, link), 0);
	assert_trust_refused(dir, -EPERM, "d.pem is a symbolic link");
	remove_tree(dir);
}

static void test_trust_load_refuses_non_ed25519_key(void **state)
{
	_cleanup_free_ char *dir = trust_dir_abc(), *p = path_join(dir, "ec.pem"), *pem = NULL;
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	(void)state;
	assert_non_null(ec);
	pem = pub_pem(ec);
	EVP_PKEY_free(ec);
	write_file(p, pem, 0644);
	assert_trust_refused(dir, -EINVAL, "ec.pem: not an Ed25519 key");
	remove_tree(dir);
}

static void test_trust_load_refuses_private_key(void **state)
{
	_cleanup_free_ char *dir = trust_dir_abc(), *p = path_join(dir, "secret.pem");
	BIO *bio = BIO_new(BIO_s_mem());
	char *mem = NULL, *pem;
	long len;

	(void)state;
	assert_int_equal(PEM_write_bio_PrivateKey(bio, g.keys[KEY_U], NULL, NULL, 0, NULL, NULL),
			 1);
	len = BIO_get_mem_data(bio, &mem);
	pem = strndup(mem, (size_t)len);
	BIO_free(bio);
	write_file(p, pem, 0600);
	free(pem);
	assert_trust_refused(dir, -EINVAL, "secret.pem: not a PEM public key");
	remove_tree(dir);
}

static void test_trust_load_refuses_bad_revoked_line(void **state)
{
	_cleanup_free_ char *dir = trust_dir_abc(), *rev = path_join(dir, "revoked");

	(void)state;
	write_file(rev, "# ok\nABCDEF\n", 0644);
	assert_trust_refused(dir, -EINVAL, "revoked:2: 'ABCDEF' is not a key id");
	remove_tree(dir);
}

static void test_trust_load_refuses_folder_without_keys(void **state)
{
	_cleanup_free_ char *dir = make_temp_dir();

	(void)state;
	assert_trust_refused(dir, -ENOKEY, "no trusted key in");
	remove_tree(dir);
}

static void test_trust_load_refuses_folder_with_every_key_revoked(void **state)
{
	_cleanup_free_ char *dir = trust_dir_abc(), *rev = path_join(dir, "revoked"), *txt = NULL;

	(void)state;
	assert_true(asprintf(&txt, "%s\n%s\n%s", g.keyids[KEY_A], g.keyids[KEY_B],
			     g.keyids[KEY_C]) > 0);
	write_file(rev, txt, 0644);
	assert_trust_refused(dir, -ENOKEY, "every key is revoked");
	remove_tree(dir);
}

static void test_trust_load_refuses_missing_folder(void **state)
{
	(void)state;
	assert_trust_refused("/nonexistent/carwall-trust", -ENOENT, "cannot open trust folder");
}

/* ---- keys ----------------------------------------------------------------------------------- */

static void test_keyid_is_sha256_of_der_public_key(void **state)
{
	unsigned char *der = NULL;
	uint8_t md[BUNDLE_SHA256_BYTES];
	char hex[BUNDLE_SHA256_HEX_LEN + 1], keyid[BUNDLE_KEYID_LEN + 1];
	int len;

	(void)state;
	len = i2d_PUBKEY(g.keys[KEY_A], &der);
	assert_int_equal(len, 44); /* Ed25519 SubjectPublicKeyInfo */
	bundle_sha256(der, (size_t)len, md);
	OPENSSL_free(der);
	bundle_hex(md, sizeof(md), hex);
	assert_int_equal(bundle_keyid(g.keys[KEY_A], keyid), 0);
	assert_string_equal(keyid, hex);
}

static void test_sha256_of_known_input(void **state)
{
	uint8_t md[BUNDLE_SHA256_BYTES];
	char hex[BUNDLE_SHA256_HEX_LEN + 1];

	(void)state;
	bundle_sha256("abc", 3, md);
	bundle_hex(md, sizeof(md), hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_reason_names_are_stable(void **state)
{
	(void)state;
	assert_string_equal(bundle_reason_name(BUNDLE_OK), "ok");
	assert_string_equal(bundle_reason_name(BUNDLE_BELOW_THRESHOLD), "below-threshold");
	assert_string_equal(bundle_reason_name(BUNDLE_VERSION_REUSED), "version-reused");
	assert_string_equal(bundle_reason_name(_BUNDLE_REASON_MAX), "unknown");
	for (int r = 0; r < _BUNDLE_REASON_MAX; r++)
		assert_non_null(bundle_reason_name((enum bundle_reason)r));
}

/* ---- anti-rollback state -------------------------------------------------------------------- */

static const uint8_t SHA_1[BUNDLE_SHA256_BYTES] = { 1 };
static const uint8_t SHA_2[BUNDLE_SHA256_BYTES] = { 2 };

static void test_state_missing_file_is_empty(void **state)
{
	_cleanup_(bundle_state_freep) struct bundle_state *st = NULL;
	_cleanup_free_ char *dir = make_temp_dir();
	char reason[256];

	(void)state;
	assert_int_equal(bundle_state_load(dir, &st, reason, sizeof(reason)), 0);
	assert_int_equal(st->n_entries, 0);
	remove_tree(dir);
}

static void test_state_save_then_load_round_trips(void **state)
{
	_cleanup_(bundle_state_freep) struct bundle_state *st = NULL, *back = NULL;
	_cleanup_free_ char *dir = make_temp_dir(), *file = path_join(dir, BUNDLE_STATE_FILE);
	const struct bundle_state_entry *e;
	char reason[256];
	struct stat sb;

	(void)state;
	assert_int_equal(bundle_state_new(&st), 0);
	assert_int_equal(bundle_state_set(st, "zeta", 7, SHA_1), 0);
	assert_int_equal(bundle_state_set(st, "alpha", POLICY_BUNDLE_MAX_VERSION, SHA_2), 0);
	assert_int_equal(bundle_state_save(dir, st), 0);
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(bundle_state_load(dir, &back, reason, sizeof(reason)), 0);
	assert_int_equal(back->n_entries, 2);
	assert_string_equal(back->entries[0].id, "alpha"); /* sorted */
	e = bundle_state_find(back, "zeta");
	assert_non_null(e);
	assert_int_equal(e->version, 7);
	assert_memory_equal(e->sha256, SHA_1, sizeof(SHA_1));
	assert_int_equal(bundle_state_find(back, "alpha")->version, POLICY_BUNDLE_MAX_VERSION);
	assert_null(bundle_state_find(back, "beta"));
	remove_tree(dir);
}

static void test_state_set_never_goes_back(void **state)
{
	_cleanup_(bundle_state_freep) struct bundle_state *st = NULL;

	(void)state;
	assert_int_equal(bundle_state_new(&st), 0);
	assert_int_equal(bundle_state_set(st, "p", 5, SHA_1), 0);
	assert_int_equal(bundle_state_set(st, "p", 4, SHA_2), -ESTALE);
	assert_int_equal(bundle_state_set(st, "p", 5, SHA_2), -ESTALE);
	assert_int_equal(bundle_state_set(st, "p", 5, SHA_1), 0);
	assert_int_equal(bundle_state_set(st, "p", 6, SHA_2), 0);
	assert_int_equal(bundle_state_find(st, "p")->version, 6);
	assert_int_equal(bundle_state_set(st, "bad id", 1, SHA_1), -EINVAL);
	assert_int_equal(bundle_state_set(st, "q", 0, SHA_1), -EINVAL);
	assert_int_equal(bundle_state_set(st, "q", POLICY_BUNDLE_MAX_VERSION + 1, SHA_1), -EINVAL);
	assert_int_equal(st->n_entries, 1);
}

static void test_state_refuses_more_than_max_entries(void **state)
{
	_cleanup_(bundle_state_freep) struct bundle_state *st = NULL;
	char id[16];

	(void)state;
	assert_int_equal(bundle_state_new(&st), 0);
	for (int i = 0; i < BUNDLE_STATE_MAX_ENTRIES; i++) {
		snprintf(id, sizeof(id), "b%d", i);
		assert_int_equal(bundle_state_set(st, id, 1, SHA_1), 0);
	}
	assert_int_equal(bundle_state_set(st, "one-more", 1, SHA_1), -ENOSPC);
}

static void check_state_refused(const char *text, int error, const char *msg, const char *file,
				int line)
{
	struct bundle_state *st = NULL;
	char reason[256] = "";
	int r = bundle_state_parse(text, strlen(text), &st, reason, sizeof(reason));

	if (r != error || !strstr(reason, msg)) {
		print_error("expected %d ...%s...\n     got %d: %s\n     for: %s\n", error, msg, r,
			    reason, text);
		bundle_state_free(st);
		_fail(file, line);
	}
	_assert_true(st == NULL, "state == NULL", file, line);
}

#define assert_state_refused(text, msg)                                                            \
	check_state_refused((text), -EBADMSG, (msg), __FILE__, __LINE__)

#define HDR BUNDLE_STATE_HEADER "\n"
#define SHA64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_state_parse_accepts_header_only(void **state)
{
	_cleanup_(bundle_state_freep) struct bundle_state *st = NULL;
	char reason[256];

	(void)state;
	assert_int_equal(bundle_state_parse(HDR, strlen(HDR), &st, reason, sizeof(reason)), 0);
	assert_int_equal(st->n_entries, 0);
}

static void test_state_parse_rejects_empty_file(void **state)
{
	(void)state;
	assert_state_refused("", "the state file is empty");
}

static void test_state_parse_rejects_missing_header(void **state)
{
	(void)state;
	assert_state_refused("p 1 " SHA64 "\n", "line 1: expected 'carwall-bundle-state v1'");
	assert_state_refused("carwall-bundle-state v2\n", "line 1: expected");
}

static void test_state_parse_rejects_cut_last_line(void **state)
{
	(void)state;
	assert_state_refused(HDR "p 1 " SHA64, "line 2: no newline at the end");
	assert_state_refused(HDR "p 1 0123", "line 2: no newline at the end");
}

static void test_state_parse_rejects_duplicate_id(void **state)
{
	(void)state;
	assert_state_refused(HDR "p 1 " SHA64 "\nq 1 " SHA64 "\np 2 " SHA64 "\n",
			     "line 4: duplicate bundle id 'p'");
}

static void test_state_parse_rejects_malformed_entries(void **state)
{
	static const struct {
		const char *line, *msg;
	} cases[] = {
		{ "p 1\n", "line 2: expected 'id version sha256'" },
		{ "p  1 " SHA64 "\n", "line 2: expected 'id version sha256'" },
		{ "p 1 " SHA64 " \n", "line 2: expected 'id version sha256'" },
		{ " 1 " SHA64 "\n", "line 2: invalid bundle id" },
		{ "-p 1 " SHA64 "\n", "line 2: invalid bundle id" },
		{ "p 01 " SHA64 "\n", "line 2: invalid version" },
		{ "p 0 " SHA64 "\n", "line 2: version out of range" },
		{ "p 9007199254740993 " SHA64 "\n", "line 2: version out of range" },
		{ "p 12345678901234567 " SHA64 "\n", "line 2: invalid version" },
		{ "p 1x " SHA64 "\n", "line 2: invalid version" },
		{ "p 1 " SHA64 "0\n", "line 2: the sha256 is not 64 hex digits" },
		{ "p 1 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n",
		  "line 2: the sha256 is not 64 lowercase hex digits" },
		{ "\n", "line 2: expected 'id version sha256'" },
		{ "p 1 " SHA64 "\r\n", "line 2: the sha256 is not 64 hex digits" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *text = NULL;

		assert_true(asprintf(&text, HDR "%s", cases[i].line) > 0);
		assert_state_refused(text, cases[i].msg);
	}
}

static void test_state_parse_rejects_nul_byte(void **state)
{
	static const char text[] = HDR "p\0 1 " SHA64 "\n";
	struct bundle_state *st = NULL;
	char reason[256];

	(void)state;
	assert_int_equal(bundle_state_parse(text, sizeof(text) - 1, &st, reason, sizeof(reason)),
			 -EBADMSG);
	assert_non_null(strstr(reason, "line 2: contains a NUL byte"));
}

static void test_state_parse_rejects_too_large(void **state)
{
	_cleanup_free_ char *big = calloc(1, BUNDLE_STATE_MAX_BYTES + 1);
	struct bundle_state *st = NULL;
	char reason[256];

	(void)state;
	assert_non_null(big);
	assert_int_equal(bundle_state_parse(big, BUNDLE_STATE_MAX_BYTES + 1, &st, reason,
					    sizeof(reason)),
			 -EFBIG);
	assert_non_null(strstr(reason, "BUNDLE_STATE_MAX_BYTES"));
}

static void test_state_leftover_temp_file_is_ignored_and_removed(void **state)
{
	_cleanup_(bundle_state_freep) struct bundle_state *st = NULL, *back = NULL;
	_cleanup_free_ char *dir = make_temp_dir(), *tmp = path_join(dir, BUNDLE_STATE_TMP_FILE);
	char reason[256];

	(void)state;
	write_file(tmp, "garbage from a crash", 0600);
	assert_int_equal(bundle_state_load(dir, &back, reason, sizeof(reason)), 0);
	assert_int_equal(back->n_entries, 0);
	assert_int_equal(bundle_state_new(&st), 0);
	assert_int_equal(bundle_state_set(st, "p", 3, SHA_1), 0);
	assert_int_equal(bundle_state_save(dir, st), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	remove_tree(dir);
}

static enum fileio_step crash_at;

static void crash_hook(enum fileio_step step)
{
	if (step == crash_at)
		_exit(77);
}

/*
 * The old state has p at version 1; a save of version 2 is interrupted after each step by
 * ending the process there. What is read back is the old state before the rename and the new
 * one after it, never an error; a save afterwards works and leaves no temporary file.
 */
static void test_state_save_interrupted_at_each_step_leaves_old_or_new(void **state)
{
	_cleanup_free_ char *dir = make_temp_dir(), *tmp = path_join(dir, BUNDLE_STATE_TMP_FILE);
	_cleanup_(bundle_state_freep) struct bundle_state *old = NULL, *new = NULL;

	(void)state;
	assert_int_equal(bundle_state_new(&old), 0);
	assert_int_equal(bundle_state_set(old, "p", 1, SHA_1), 0);
	assert_int_equal(bundle_state_new(&new), 0);
	assert_int_equal(bundle_state_set(new, "p", 2, SHA_2), 0);
	assert_int_equal(bundle_state_set(new, "q", 9, SHA_1), 0);

	for (int step = 0; step < FILEIO_STEP_COUNT; step++) {
		struct bundle_state *back = NULL;
		char reason[256] = "";
		int status = 0;
		pid_t pid;

		assert_int_equal(bundle_state_save(dir, old), 0);
		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			crash_at = (enum fileio_step)step;
			bundle_state_set_fault_hook(crash_hook);
			bundle_state_save(dir, new);
			_exit(0); /* the hook did not run: a failure, seen below */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 77);

		if (bundle_state_load(dir, &back, reason, sizeof(reason)) < 0)
			fail_msg("step %d: the state does not load: %s", step, reason);
		if (step < FILEIO_STEP_RENAMED) {
			assert_int_equal(back->n_entries, 1);
			assert_int_equal(bundle_state_find(back, "p")->version, 1);
		} else {
			assert_int_equal(back->n_entries, 2);
			assert_int_equal(bundle_state_find(back, "p")->version, 2);
		}
		bundle_state_free(back);
	}
	/* The last interrupted save left a temporary file or not; a save cleans it. */
	assert_int_equal(bundle_state_save(dir, new), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	remove_tree(dir);
}

/* ---- reading files -------------------------------------------------------------------------- */

static void test_read_file_reports_missing_file(void **state)
{
	struct bundle_error e;
	char *data = NULL;
	size_t size;

	(void)state;
	assert_int_equal(bundle_read_file("/nonexistent/x.bundle", &data, &size, &e), -ENOENT);
	assert_int_equal(e.reason, BUNDLE_INTERNAL_ERROR);
	assert_non_null(strstr(e.message, "cannot read /nonexistent/x.bundle"));
	assert_null(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_good_is_valid),
		cmocka_unit_test(test_fixture_good_ab_meets_threshold_two),
		cmocka_unit_test(test_fixture_installed_is_already_installed),
		cmocka_unit_test(test_fixture_one_signature_is_below_threshold_two),
		cmocka_unit_test(test_fixture_same_key_twice_counts_once),
		cmocka_unit_test(test_fixture_tampered_payload_is_bad_signature),
		cmocka_unit_test(test_fixture_tampered_signature_is_bad_signature),
		cmocka_unit_test(test_fixture_truncated_is_bad_signature_length),
		cmocka_unit_test(test_fixture_wrong_key_is_unknown_key),
		cmocka_unit_test(test_fixture_revoked_key_is_refused),
		cmocka_unit_test(test_fixture_expired_is_refused),
		cmocka_unit_test(test_fixture_not_yet_valid_is_refused),
		cmocka_unit_test(test_fixture_wrong_target_is_refused),
		cmocka_unit_test(test_fixture_older_version_is_rollback),
		cmocka_unit_test(test_fixture_same_version_other_content_is_refused),
		cmocka_unit_test(test_fixture_oversized_is_refused_before_reading),
		cmocka_unit_test(test_fixture_unsigned_has_no_signature_block),
		cmocka_unit_test(test_fixture_empty_block_has_no_signatures),
		cmocka_unit_test(test_fixture_garbage_signature_is_bad_base64),
		cmocka_unit_test(test_fixture_garbage_line_is_refused),
		cmocka_unit_test(test_fixture_policy_without_metadata_is_refused),
		cmocka_unit_test(test_fixture_invalid_policy_keeps_its_location),
		cmocka_unit_test(test_verify_accepts_bundle_made_in_memory),
		cmocka_unit_test(test_format_then_split_round_trips),
		cmocka_unit_test(test_format_refuses_payload_without_final_newline),
		cmocka_unit_test(test_envelope_block_line_must_be_exact),
		cmocka_unit_test(test_envelope_other_block_version_is_refused),
		cmocka_unit_test(test_envelope_crlf_line_endings_are_refused),
		cmocka_unit_test(test_envelope_empty_payload_is_refused),
		cmocka_unit_test(test_envelope_block_text_inside_payload_is_not_a_block),
		cmocka_unit_test(test_envelope_last_line_may_lack_newline),
		cmocka_unit_test(test_envelope_blank_line_at_end_is_refused),
		cmocka_unit_test(test_envelope_uppercase_keyid_is_refused),
		cmocka_unit_test(test_envelope_unsupported_signature_type_is_refused),
		cmocka_unit_test(test_envelope_non_canonical_base64_is_refused),
		cmocka_unit_test(test_envelope_base64_with_blank_inside_is_refused),
		cmocka_unit_test(test_envelope_wrong_signature_length_is_refused),
		cmocka_unit_test(test_envelope_too_many_signatures_is_refused),
		cmocka_unit_test(test_verify_refuses_too_large_before_looking),
		cmocka_unit_test(test_signature_by_unknown_key_is_ignored_when_threshold_met),
		cmocka_unit_test(test_signature_by_revoked_key_is_ignored_when_threshold_met),
		cmocka_unit_test(test_bad_signature_by_trusted_key_refuses_even_above_threshold),
		cmocka_unit_test(test_below_threshold_reports_counts),
		cmocka_unit_test(test_below_threshold_names_first_unknown_key),
		cmocka_unit_test(test_duplicate_signatures_of_one_key_count_once),
		cmocka_unit_test(test_three_of_three_keys_meet_threshold_three),
		cmocka_unit_test(test_threshold_out_of_range_is_refused),
		cmocka_unit_test(test_validity_window_bounds_are_inclusive),
		cmocka_unit_test(test_target_is_not_checked_without_expected_target),
		cmocka_unit_test(test_signatures_are_checked_before_the_policy_is_parsed),
		cmocka_unit_test(test_rollback_checks_the_state),
		cmocka_unit_test(test_trust_load_reads_every_pem_key),
		cmocka_unit_test(test_trust_load_applies_revoked_file),
		cmocka_unit_test(test_trust_load_refuses_group_writable_folder),
		cmocka_unit_test(test_trust_load_refuses_world_writable_key),
		cmocka_unit_test(test_trust_load_refuses_key_owned_by_another_user),
		cmocka_unit_test(test_trust_load_refuses_symlinked_key),
		cmocka_unit_test(test_trust_load_refuses_non_ed25519_key),
		cmocka_unit_test(test_trust_load_refuses_private_key),
		cmocka_unit_test(test_trust_load_refuses_bad_revoked_line),
		cmocka_unit_test(test_trust_load_refuses_folder_without_keys),
		cmocka_unit_test(test_trust_load_refuses_folder_with_every_key_revoked),
		cmocka_unit_test(test_trust_load_refuses_missing_folder),
		cmocka_unit_test(test_keyid_is_sha256_of_der_public_key),
		cmocka_unit_test(test_sha256_of_known_input),
		cmocka_unit_test(test_reason_names_are_stable),
		cmocka_unit_test(test_metadata_bundle_id_not_accepted_is_refused),
		cmocka_unit_test(test_metadata_bundle_id_accepted_verifies),
		cmocka_unit_test(test_state_missing_file_is_empty),
		cmocka_unit_test(test_state_save_then_load_round_trips),
		cmocka_unit_test(test_state_set_never_goes_back),
		cmocka_unit_test(test_state_refuses_more_than_max_entries),
		cmocka_unit_test(test_state_parse_accepts_header_only),
		cmocka_unit_test(test_state_parse_rejects_empty_file),
		cmocka_unit_test(test_state_parse_rejects_missing_header),
		cmocka_unit_test(test_state_parse_rejects_cut_last_line),
		cmocka_unit_test(test_state_parse_rejects_duplicate_id),
		cmocka_unit_test(test_state_parse_rejects_malformed_entries),
		cmocka_unit_test(test_state_parse_rejects_nul_byte),
		cmocka_unit_test(test_state_parse_rejects_too_large),
		cmocka_unit_test(test_state_leftover_temp_file_is_ignored_and_removed),
		cmocka_unit_test(test_state_save_interrupted_at_each_step_leaves_old_or_new),
		cmocka_unit_test(test_read_file_reports_missing_file),
	};

	return cmocka_run_group_tests_name("bundle", tests, group_setup, group_teardown);
}
