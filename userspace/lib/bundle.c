// SPDX-License-Identifier: GPL-2.0-only
/*
 * Signed policy bundles (format: policies/README.md, "Signed bundles"; API: bundle.h).
 *
 *     version: 1                        <- the payload: a policy with a `bundle:` mapping,
 *     bundle: {...}                        the exact bytes that are signed
 *     apps: ...
 *     #carwall-signatures v1            <- the first line that is exactly this starts the block
 *     #ed25519 <keyid> <base64 sig>     <- 1..BUNDLE_MAX_SIGNATURES lines, nothing else
 *
 * bundle_verify() checks size, envelope, signatures, then parses the verified bytes, then the
 * metadata and the rollback state, and stops at the first failure. Ed25519, SHA-256 and base64
 * are libcrypto's (EVP_DigestVerify, EVP_Digest, EVP_DecodeBlock/EVP_EncodeBlock).
 */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_state.h"
#include "fileio.h"
#include "util.h"

/* A base64 field longer than this is not decoded: it cannot be a 64-byte signature. */
#define SIG_B64_MAX 256
/* User text quoted in a message is cut after this many bytes. */
#define QUOTE_MAX 40

struct trusted_key {
	char keyid[BUNDLE_KEYID_LEN + 1];
	char name[64]; /* the file it came from, for messages */
	EVP_PKEY *pkey;
};

struct bundle_trust {
	struct trusted_key keys[BUNDLE_MAX_TRUSTED_KEYS];
	size_t n_keys;
	char (*revoked)[BUNDLE_KEYID_LEN + 1];
	size_t n_revoked;
	unsigned threshold;
};

static const char *const reason_names[_BUNDLE_REASON_MAX] = {
	[BUNDLE_OK] = "ok",
	[BUNDLE_TOO_LARGE] = "too-large",
	[BUNDLE_NO_SIGNATURE_BLOCK] = "no-signature-block",
	[BUNDLE_EMPTY_PAYLOAD] = "empty-payload",
	[BUNDLE_BAD_SIGNATURE_LINE] = "bad-signature-line",
	[BUNDLE_BAD_BASE64] = "bad-base64",
	[BUNDLE_BAD_SIGNATURE_LENGTH] = "bad-signature-length",
	[BUNDLE_TOO_MANY_SIGNATURES] = "too-many-signatures",
	[BUNDLE_NO_SIGNATURES] = "no-signatures",
	[BUNDLE_UNKNOWN_KEY] = "unknown-key",
	[BUNDLE_REVOKED_KEY] = "revoked-key",
	[BUNDLE_BAD_SIGNATURE] = "bad-signature",
	[BUNDLE_BELOW_THRESHOLD] = "below-threshold",
	[BUNDLE_INVALID_POLICY] = "invalid-policy",
	[BUNDLE_NO_METADATA] = "no-metadata",
	[BUNDLE_WRONG_TARGET] = "wrong-target",
	[BUNDLE_WRONG_ID] = "wrong-id",
	[BUNDLE_NOT_YET_VALID] = "not-yet-valid",
	[BUNDLE_EXPIRED] = "expired",
	[BUNDLE_ROLLBACK] = "rollback",
	[BUNDLE_VERSION_REUSED] = "version-reused",
	[BUNDLE_BAD_TRUST_STORE] = "bad-trust-store",
	[BUNDLE_INTERNAL_ERROR] = "internal-error",
};

const char *bundle_reason_name(enum bundle_reason reason)
{
	if ((unsigned)reason >= _BUNDLE_REASON_MAX)
		return "unknown";
	return reason_names[reason];
}

/* ---- small helpers -------------------------------------------------------------------------- */

static int set_error(struct bundle_error *err, int error, enum bundle_reason reason,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int set_error(struct bundle_error *err, int error, enum bundle_reason reason,
		     const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->reason = reason;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	/* Whatever libcrypto queued on the way is not kept for the next caller. */
	ERR_clear_error();
	return error;
}

static int oom(struct bundle_error *err)
{
	return set_error(err, -ENOMEM, BUNDLE_INTERNAL_ERROR, "out of memory");
}

static void error_init(struct bundle_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

/* User text for a message: one line, at most QUOTE_MAX bytes, control characters as '?'. */
static const char *quote(char buf[static QUOTE_MAX + 4], const char *s, size_t len)
{
	size_t n = len < QUOTE_MAX ? len : QUOTE_MAX, i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	if (n < len)
		memcpy(buf + i, "...", sizeof("..."));
	else
		buf[i] = '\0';
	return buf;
}

static bool is_keyid(const char *s, size_t len)
{
	if (len != BUNDLE_KEYID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* ---- keys ----------------------------------------------------------------------------------- */

int bundle_key_from_pem(const void *pem, size_t size, bool private_key, EVP_PKEY **ret)
{
	EVP_PKEY *pkey;
	BIO *bio;

	if (!pem || !ret || size == 0 || size > INT32_MAX)
		return -EINVAL;
	bio = BIO_new_mem_buf(pem, (int)size);
	if (!bio) {
		ERR_clear_error();
		return -ENOMEM;
	}
	if (private_key)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	else
		pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (!pkey)
		return -EINVAL;
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return -EPROTONOSUPPORT;
	}
	*ret = pkey;
	return 0;
}

int bundle_keyid(EVP_PKEY *key, char ret[BUNDLE_KEYID_LEN + 1])
{
	uint8_t md[BUNDLE_SHA256_BYTES];
	unsigned char *der = NULL;
	int len;

	if (!key || !ret)
		return -EINVAL;
	len = i2d_PUBKEY(key, &der);
	if (len <= 0) {
		ERR_clear_error();
		return -EINVAL;
	}
	bundle_sha256(der, (size_t)len, md);
	OPENSSL_free(der);
	bundle_hex(md, sizeof(md), ret);
	return 0;
}

int bundle_sign(EVP_PKEY *key, const void *payload, size_t size, struct bundle_signature *ret)
{
	struct bundle_signature s = {};
	size_t sig_len = sizeof(s.sig);
	EVP_MD_CTX *ctx;
	int r;

	if (!key || !ret || (!payload && size > 0))
		return -EINVAL;
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519)
		return -EPROTONOSUPPORT;
	r = bundle_keyid(key, s.keyid);
	if (r < 0)
		return r;
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		ERR_clear_error();
		return -ENOMEM;
	}
	/* Ed25519 is "pure": no digest is given, the whole message is signed in one call. */
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, s.sig, &sig_len, payload ? payload : (const void *)"", size) != 1 ||
	    sig_len != BUNDLE_SIGNATURE_BYTES)
		r = -EIO;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

static bool signature_valid(EVP_PKEY *key, const uint8_t sig[BUNDLE_SIGNATURE_BYTES],
			    const void *payload, size_t size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	if (!ctx) {
		ERR_clear_error();
		return false;
	}
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
	     EVP_DigestVerify(ctx, sig, BUNDLE_SIGNATURE_BYTES, payload, size) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* ---- trust store ---------------------------------------------------------------------------- */

int bundle_trust_new(struct bundle_trust **ret)
{
	struct bundle_trust *t;

	if (!ret)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->threshold = 1;
	*ret = t;
	return 0;
}

void bundle_trust_free(struct bundle_trust *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_keys; i++)
		EVP_PKEY_free(t->keys[i].pkey);
	free(t->revoked);
	free(t);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_trust *, bundle_trust_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle *, bundle_free)

static bool trust_is_revoked(const struct bundle_trust *t, const char *keyid)
{
	for (size_t i = 0; i < t->n_revoked; i++)
		if (strcmp(t->revoked[i], keyid) == 0)
			return true;
	return false;
}

static const struct trusted_key *trust_find(const struct bundle_trust *t, const char *keyid)
{
	for (size_t i = 0; i < t->n_keys; i++)
		if (strcmp(t->keys[i].keyid, keyid) == 0)
			return &t->keys[i];
	return NULL;
}

int bundle_trust_add_key(struct bundle_trust *t, const char *name, const void *pem, size_t size,
			 char ret_keyid[BUNDLE_KEYID_LEN + 1], struct bundle_error *err)
{
	char keyid[BUNDLE_KEYID_LEN + 1];
	struct trusted_key *k;
	EVP_PKEY *pkey = NULL;
	int r;

	if (!t || !pem)
		return set_error(err, -EINVAL, BUNDLE_BAD_TRUST_STORE, "invalid arguments");
	if (!name)
		name = "<key>";
	if (size > BUNDLE_MAX_KEY_FILE_BYTES)
		return set_error(err, -EFBIG, BUNDLE_BAD_TRUST_STORE,
				 "%s: larger than %u bytes (BUNDLE_MAX_KEY_FILE_BYTES)", name,
				 BUNDLE_MAX_KEY_FILE_BYTES);
	r = bundle_key_from_pem(pem, size, false, &pkey);
	if (r == -EPROTONOSUPPORT)
		return set_error(err, -EINVAL, BUNDLE_BAD_TRUST_STORE,
				 "%s: not an Ed25519 key (only Ed25519 is accepted)", name);
	if (r == -ENOMEM)
		return oom(err);
	if (r < 0)
		return set_error(err, -EINVAL, BUNDLE_BAD_TRUST_STORE,
				 "%s: not a PEM public key ('-----BEGIN PUBLIC KEY-----')", name);
	r = bundle_keyid(pkey, keyid);
	if (r < 0) {
		EVP_PKEY_free(pkey);
		return set_error(err, r, BUNDLE_INTERNAL_ERROR, "%s: cannot compute the key id",
				 name);
	}
	if (ret_keyid)
		memcpy(ret_keyid, keyid, sizeof(keyid));
	/* The same key twice (a copy under another name) is harmless: kept once. */
	if (trust_find(t, keyid)) {
		EVP_PKEY_free(pkey);
		return 0;
	}
	if (t->n_keys >= BUNDLE_MAX_TRUSTED_KEYS) {
		EVP_PKEY_free(pkey);
		return set_error(err, -E2BIG, BUNDLE_BAD_TRUST_STORE,
				 "more than %d trusted keys (BUNDLE_MAX_TRUSTED_KEYS)",
				 BUNDLE_MAX_TRUSTED_KEYS);
	}
	k = &t->keys[t->n_keys++];
	memcpy(k->keyid, keyid, sizeof(keyid));
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->pkey = pkey;
	return 0;
}

int bundle_trust_revoke(struct bundle_trust *t, const char *keyid)
{
	char(*revoked)[BUNDLE_KEYID_LEN + 1];

	if (!t || !keyid || !is_keyid(keyid, strlen(keyid)))
		return -EINVAL;
	if (trust_is_revoked(t, keyid))
		return 0;
	if (t->n_revoked >= BUNDLE_MAX_REVOKED_KEYS)
		return -E2BIG;
	revoked = realloc(t->revoked, (t->n_revoked + 1) * sizeof(*revoked));
	if (!revoked)
		return -ENOMEM;
	t->revoked = revoked;
	memcpy(t->revoked[t->n_revoked++], keyid, BUNDLE_KEYID_LEN + 1);
	return 0;
}

int bundle_trust_set_threshold(struct bundle_trust *t, unsigned m)
{
	if (!t)
		return -EINVAL;
	if (m < 1 || m > BUNDLE_MAX_SIGNATURES)
		return -ERANGE;
	t->threshold = m;
	return 0;
}

unsigned bundle_trust_threshold(const struct bundle_trust *t)
{
	return t ? t->threshold : 0;
}

size_t bundle_trust_n_keys(const struct bundle_trust *t)
{
	size_t n = 0;

	if (!t)
		return 0;
	for (size_t i = 0; i < t->n_keys; i++)
		if (!trust_is_revoked(t, t->keys[i].keyid))
			n++;
	return n;
}

/*
 * Who may change a trust file decides what the device accepts: it must be owned by root (or by
 * the user running this tool, who could change it anyway) and writable by nobody else.
 */
static int check_owner_and_mode(const struct stat *st, const char *what, const char *path,
				struct bundle_error *err)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		return set_error(err, -EPERM, BUNDLE_BAD_TRUST_STORE,
				 "%s %s is owned by uid %u, not by root", what, path,
				 (unsigned)st->st_uid);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return set_error(err, -EPERM, BUNDLE_BAD_TRUST_STORE,
				 "%s %s is writable by group or others (mode %04o)", what, path,
				 (unsigned)(st->st_mode & 07777));
	return 0;
}

/* Read one trust file: no symlink, a regular file, owner and mode checked, size bounded. */
static int read_trust_file(int dfd, const char *dir, const char *name, size_t max_size,
			   char **ret_data, size_t *ret_size, struct bundle_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	char path[PATH_MAX];
	struct stat st;
	size_t got = 0;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = negative_errno();
		if (r == -ELOOP)
			return set_error(err, -EPERM, BUNDLE_BAD_TRUST_STORE,
					 "%s is a symbolic link; trust files must not be", path);
		return set_error(err, r, BUNDLE_BAD_TRUST_STORE, "cannot open %s: %s", path,
				 strerror(-r));
	}
	if (fstat(fd, &st) < 0) {
		r = negative_errno();
		return set_error(err, r, BUNDLE_BAD_TRUST_STORE, "cannot stat %s: %s", path,
				 strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return set_error(err, -EINVAL, BUNDLE_BAD_TRUST_STORE, "%s is not a regular file",
				 path);
	r = check_owner_and_mode(&st, "trust file", path, err);
	if (r < 0)
		return r;
	if ((unsigned long long)st.st_size > max_size)
		return set_error(err, -EFBIG, BUNDLE_BAD_TRUST_STORE,
				 "%s is %jd bytes; the limit is %zu", path, (intmax_t)st.st_size,
				 max_size);
	data = malloc((size_t)st.st_size + 1);
	if (!data)
		return oom(err);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = negative_errno();
			return set_error(err, r, BUNDLE_BAD_TRUST_STORE, "cannot read %s: %s",
					 path, strerror(-r));
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	data[got] = '\0';
	*ret_data = TAKE_PTR(data);
	*ret_size = got;
	return 0;
}

/* The `revoked` file: one key id per line; blank lines and '#' comments are ignored. */
static int load_revoked(struct bundle_trust *t, const char *path, const char *data, size_t size,
			struct bundle_error *err)
{
	unsigned line_no = 0;
	char q[QUOTE_MAX + 4];

	for (size_t off = 0; off < size;) {
		const char *line = data + off, *nl = memchr(line, '\n', size - off);
		size_t len = nl ? (size_t)(nl - line) : size - off;
		char keyid[BUNDLE_KEYID_LEN + 1];
		int r;

		off += len + 1;
		line_no++;
		if (len == 0 || line[0] == '#')
			continue;
		if (!is_keyid(line, len))
			return set_error(err, -EINVAL, BUNDLE_BAD_TRUST_STORE,
					 "%s:%u: '%s' is not a key id (64 lowercase hex digits)",
					 path, line_no, quote(q, line, len));
		memcpy(keyid, line, len);
		keyid[len] = '\0';
		r = bundle_trust_revoke(t, keyid);
		if (r == -E2BIG)
			return set_error(err, r, BUNDLE_BAD_TRUST_STORE,
					 "%s:%u: more than %d revoked keys "
					 "(BUNDLE_MAX_REVOKED_KEYS)",
					 path, line_no, BUNDLE_MAX_REVOKED_KEYS);
		if (r < 0)
			return oom(err);
	}
	return 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_key_suffix(const char *name)
{
	size_t len = strlen(name), slen = strlen(BUNDLE_TRUST_KEY_SUFFIX);

	return name[0] != '.' && len > slen &&
	       strcmp(name + len - slen, BUNDLE_TRUST_KEY_SUFFIX) == 0;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The names of the folder's entries that matter (*.pem and `revoked`), sorted. */
static int list_trust_dir(int dfd, const char *dir, char ***ret_names, size_t *ret_n,
			  struct bundle_error *err)
{
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d;
	int fd2, r = 0;

	fd2 = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (fd2 < 0) {
		r = negative_errno();
		return set_error(err, r, BUNDLE_BAD_TRUST_STORE, "cannot read %s: %s", dir,
				 strerror(-r));
	}
	d = fdopendir(fd2);
	if (!d) {
		r = negative_errno();
		close(fd2);
		return set_error(err, r, BUNDLE_BAD_TRUST_STORE, "cannot read %s: %s", dir,
				 strerror(-r));
	}
	errno = 0;
	while ((de = readdir(d))) {
		char **more;

		if (!has_key_suffix(de->d_name) && strcmp(de->d_name, BUNDLE_TRUST_REVOKED_FILE))
			continue;
		/* More files than keys allowed (+ `revoked`): refused below, no need to list. */
		if (n > BUNDLE_MAX_TRUSTED_KEYS) {
			r = set_error(err, -E2BIG, BUNDLE_BAD_TRUST_STORE,
				      "%s: more than %d keys (BUNDLE_MAX_TRUSTED_KEYS)", dir,
				      BUNDLE_MAX_TRUSTED_KEYS);
			goto out;
		}
		more = realloc(names, (n + 1) * sizeof(*names));
		if (!more || !(more[n] = strdup(de->d_name))) {
			if (more)
				names = more;
			r = oom(err);
			goto out;
		}
		names = more;
		n++;
		errno = 0;
	}
	if (errno) {
		r = negative_errno();
		set_error(err, r, BUNDLE_BAD_TRUST_STORE, "cannot read %s: %s", dir, strerror(-r));
	}
out:
	closedir(d);
	if (r < 0) {
		free_names(names, n);
		return r;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_str_ptr);
	*ret_names = names;
	*ret_n = n;
	return 0;
}

int bundle_trust_load(const char *dir, struct bundle_trust **ret, struct bundle_error *err)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *t = NULL;
	_cleanup_close_ int dfd = -1;
	char **names = NULL;
	size_t n_names = 0;
	struct stat st;
	int r;

	error_init(err);
	if (!dir || !ret)
		return set_error(err, -EINVAL, BUNDLE_BAD_TRUST_STORE, "invalid arguments");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = negative_errno();
		return set_error(err, r, BUNDLE_BAD_TRUST_STORE, "cannot open trust folder %s: %s",
				 dir, strerror(-r));
	}
	if (fstat(dfd, &st) < 0) {
		r = negative_errno();
		return set_error(err, r, BUNDLE_BAD_TRUST_STORE, "cannot stat %s: %s", dir,
				 strerror(-r));
	}
	r = check_owner_and_mode(&st, "trust folder", dir, err);
	if (r < 0)
		return r;
	r = bundle_trust_new(&t);
	if (r < 0)
		return oom(err);
	r = list_trust_dir(dfd, dir, &names, &n_names, err);
	if (r < 0)
		return r;

	for (size_t i = 0; i < n_names && r >= 0; i++) {
		_cleanup_free_ char *data = NULL;
		bool is_revoked = strcmp(names[i], BUNDLE_TRUST_REVOKED_FILE) == 0;
		char path[PATH_MAX];
		size_t size = 0;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		r = read_trust_file(dfd, dir, names[i],
				    is_revoked ? BUNDLE_MAX_REVOKED_FILE_BYTES
					       : BUNDLE_MAX_KEY_FILE_BYTES,
				    &data, &size, err);
		if (r < 0)
			break;
		if (is_revoked)
			r = load_revoked(t, path, data, size, err);
		else
			r = bundle_trust_add_key(t, path, data, size, NULL, err);
	}
	free_names(names, n_names);
	if (r < 0)
		return r;
	if (bundle_trust_n_keys(t) == 0)
		return set_error(err, -ENOKEY, BUNDLE_BAD_TRUST_STORE,
				 "no trusted key in %s (no *.pem file, or every key is revoked)",
				 dir);
	*ret = TAKE_PTR(t);
	return 0;
}

/* ---- envelope ------------------------------------------------------------------------------- */

/* Find the line that is exactly BUNDLE_BLOCK_LINE: its offset, or size when there is none. */
static size_t find_block(const char *data, size_t size)
{
	const size_t mlen = strlen(BUNDLE_BLOCK_LINE);
	const char *p = data, *end = data + size;

	/* The first occurrence that is a whole line: at the start or after a "\n", followed by a
	 * "\n" or the end. */
	while ((p = memmem(p, (size_t)(end - p), BUNDLE_BLOCK_LINE, mlen))) {
		if ((p == data || p[-1] == '\n') && (p + mlen == end || p[mlen] == '\n'))
			return (size_t)(p - data);
		p++;
	}
	return size;
}

/* A hint for a bundle without the block line: a line that nearly is one. */
static void no_block_hint(const char *data, size_t size, char *buf, size_t buf_size)
{
	const char *prefix = "#carwall-signatures";
	size_t plen = strlen(prefix);
	unsigned line_no = 1;
	char q[QUOTE_MAX + 4];

	buf[0] = '\0';
	for (size_t off = 0; off < size; line_no++) {
		const char *line = data + off, *nl = memchr(line, '\n', size - off);
		size_t len = nl ? (size_t)(nl - line) : size - off;

		if (len >= plen && memcmp(line, prefix, plen) == 0) {
			snprintf(buf, buf_size,
				 "; line %u, '%s', is not it (this carwall reads v1, with LF line "
				 "endings)",
				 line_no, quote(q, line, len));
			return;
		}
		off += len + 1;
	}
}

/* The base64 signature of a line: decoded with libcrypto, and only its canonical form. */
static int parse_signature_b64(const char *b64, size_t len, unsigned line_no,
			       struct bundle_signature *sig, struct bundle_error *err)
{
	unsigned char decoded[SIG_B64_MAX / 4 * 3 + 1], again[SIG_B64_MAX + 1];
	char field[SIG_B64_MAX + 1];
	size_t pad = 0;
	int n;

	if (len == 0)
		return set_error(err, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
				 "line %u: no signature after the key id", line_no);
	if (len > SIG_B64_MAX)
		return set_error(err, -EBADMSG, BUNDLE_BAD_SIGNATURE_LENGTH,
				 "line %u: the signature is %zu base64 characters; an Ed25519 "
				 "signature is %d (%d bytes)",
				 line_no, len, BUNDLE_SIGNATURE_B64_LEN, BUNDLE_SIGNATURE_BYTES);
	if (len % 4 != 0)
		return set_error(err, -EBADMSG, BUNDLE_BAD_BASE64,
				 "line %u: the signature is not base64 (%zu characters, not a "
				 "multiple of 4)",
				 line_no, len);
	memcpy(field, b64, len);
	field[len] = '\0';
	n = EVP_DecodeBlock(decoded, (const unsigned char *)field, (int)len);
	while (pad < 2 && pad < len && field[len - 1 - pad] == '=')
		pad++;
	/* EVP_DecodeBlock() counts padding as zero bytes, and tolerates what a canonical
	 * encoding would not have (blanks, other padding bits): re-encode and compare. */
	if (n < 0 || (size_t)n < pad)
		goto bad;
	n -= (int)pad;
	if (EVP_EncodeBlock(again, decoded, n) != (int)len || memcmp(again, field, len) != 0)
		goto bad;
	if (n != BUNDLE_SIGNATURE_BYTES)
		return set_error(err, -EBADMSG, BUNDLE_BAD_SIGNATURE_LENGTH,
				 "line %u: the signature is %d bytes; an Ed25519 signature is %d",
				 line_no, n, BUNDLE_SIGNATURE_BYTES);
	memcpy(sig->sig, decoded, BUNDLE_SIGNATURE_BYTES);
	return 0;
bad:
	return set_error(err, -EBADMSG, BUNDLE_BAD_BASE64,
			 "line %u: the signature is not valid base64", line_no);
}

/* One line of the block after the block line: "#ed25519 <keyid> <base64>". */
static int parse_signature_line(const char *line, size_t len, unsigned line_no,
				struct bundle_signature *sig, struct bundle_error *err)
{
	const size_t tlen = strlen(BUNDLE_SIG_TAG);
	char q[QUOTE_MAX + 4];
	const char *keyid, *b64, *sp;

	*sig = (struct bundle_signature){ .line = line_no };
	if (len == 0)
		return set_error(err, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
				 "line %u: blank line in the signature block", line_no);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return set_error(err, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
					 "line %u: control character 0x%02x in the signature "
					 "block (line endings must be LF)",
					 line_no, (unsigned)(unsigned char)line[i]);
	if (len <= tlen || memcmp(line, BUNDLE_SIG_TAG, tlen) != 0 || line[tlen] != ' ') {
		if (line[0] == '#' && (sp = memchr(line, ' ', len)))
			return set_error(err, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
					 "line %u: unsupported signature type '%s'; expected "
					 "'" BUNDLE_SIG_TAG " KEYID BASE64'",
					 line_no, quote(q, line, (size_t)(sp - line)));
		return set_error(err, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
				 "line %u: '%s' is not a signature line ('" BUNDLE_SIG_TAG
				 " KEYID BASE64'); nothing else may follow the block line",
				 line_no, quote(q, line, len));
	}
	keyid = line + tlen + 1;
	sp = memchr(keyid, ' ', len - (size_t)(keyid - line));
	if (!sp || !is_keyid(keyid, (size_t)(sp - keyid)))
		return set_error(err, -EBADMSG, BUNDLE_BAD_SIGNATURE_LINE,
				 "line %u: the key id must be %d lowercase hex digits (the SHA-256 "
				 "of the DER public key) followed by one space",
				 line_no, BUNDLE_KEYID_LEN);
	memcpy(sig->keyid, keyid, BUNDLE_KEYID_LEN);
	sig->keyid[BUNDLE_KEYID_LEN] = '\0';
	b64 = sp + 1;
	return parse_signature_b64(b64, len - (size_t)(b64 - line), line_no, sig, err);
}

int bundle_split(const void *data_, size_t size, struct bundle_envelope *ret,
		 struct bundle_error *err)
{
	const char *data = data_;
	const size_t mlen = strlen(BUNDLE_BLOCK_LINE);
	size_t block, off;
	unsigned line_no = 1;
	char hint[160];
	int r;

	error_init(err);
	if (!ret || (!data && size > 0))
		return set_error(err, -EINVAL, BUNDLE_INTERNAL_ERROR, "invalid arguments");
	memset(ret, 0, sizeof(*ret));
	if (size > BUNDLE_MAX_BYTES)
		return set_error(err, -EFBIG, BUNDLE_TOO_LARGE,
				 "the bundle is %zu bytes; the limit is %u bytes "
				 "(BUNDLE_MAX_BYTES)",
				 size, (unsigned)BUNDLE_MAX_BYTES);

	block = find_block(data, size);
	if (block == size) {
		no_block_hint(data, size, hint, sizeof(hint));
		return set_error(err, -EBADMSG, BUNDLE_NO_SIGNATURE_BLOCK,
				 "no signature block: no line '" BUNDLE_BLOCK_LINE "'%s", hint);
	}
	if (block == 0)
		return set_error(err, -EBADMSG, BUNDLE_EMPTY_PAYLOAD,
				 "the payload before the signature block is empty");
	/* block > 0 is at the start of a line: the payload ends with "\n". */
	for (size_t i = 0; i < block; i++)
		if (data[i] == '\n')
			line_no++;
	ret->payload_size = block;

	/* The lines after the block line; the last may lack its "\n". */
	off = block + mlen;
	if (off < size)
		off++; /* the block line's "\n" */
	while (off < size) {
		const char *line = data + off, *nl = memchr(line, '\n', size - off);
		size_t len = nl ? (size_t)(nl - line) : size - off;
		struct bundle_signature sig;

		line_no++;
		r = parse_signature_line(line, len, line_no, &sig, err);
		if (r < 0)
			return r;
		if (ret->n_signatures >= BUNDLE_MAX_SIGNATURES)
			return set_error(err, -EBADMSG, BUNDLE_TOO_MANY_SIGNATURES,
					 "line %u: more than %d signatures (BUNDLE_MAX_SIGNATURES)",
					 line_no, BUNDLE_MAX_SIGNATURES);
		ret->signatures[ret->n_signatures++] = sig;
		off += len + 1;
	}
	if (ret->n_signatures == 0)
		return set_error(err, -EBADMSG, BUNDLE_NO_SIGNATURES,
				 "the signature block (line %u) holds no signature", line_no);
	return 0;
}

int bundle_format(const void *payload, size_t payload_size, const struct bundle_signature *sigs,
		  size_t n_sigs, char **ret_data, size_t *ret_size)
{
	_cleanup_free_ char *buf = NULL;
	const size_t line_size = strlen(BUNDLE_SIG_TAG) + 1 + BUNDLE_KEYID_LEN + 1 +
				 BUNDLE_SIGNATURE_B64_LEN + 1;
	size_t size, off;

	if (!ret_data || !ret_size || (!payload && payload_size > 0) || (!sigs && n_sigs > 0))
		return -EINVAL;
	if (n_sigs > BUNDLE_MAX_SIGNATURES)
		return -E2BIG;
	if (payload_size == 0 || ((const char *)payload)[payload_size - 1] != '\n')
		return -EBADMSG;
	if (find_block(payload, payload_size) != payload_size)
		return -EBADMSG;
	if (payload_size > POLICY_MAX_FILE_BYTES)
		return -EFBIG;
	size = payload_size + strlen(BUNDLE_BLOCK_LINE) + 1 + n_sigs * line_size + 1;
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, payload, payload_size);
	off = payload_size;
	off += (size_t)snprintf(buf + off, size - off, "%s\n", BUNDLE_BLOCK_LINE);
	for (size_t i = 0; i < n_sigs; i++) {
		unsigned char b64[BUNDLE_SIGNATURE_B64_LEN + 1];

		if (!is_keyid(sigs[i].keyid, strlen(sigs[i].keyid)))
			return -EINVAL;
		if (EVP_EncodeBlock(b64, sigs[i].sig, BUNDLE_SIGNATURE_BYTES) !=
		    BUNDLE_SIGNATURE_B64_LEN)
			return -EIO;
		off += (size_t)snprintf(buf + off, size - off, "%s %s %s\n", BUNDLE_SIG_TAG,
					sigs[i].keyid, (const char *)b64);
	}
	*ret_size = off;
	*ret_data = TAKE_PTR(buf);
	return 0;
}

/* ---- verification --------------------------------------------------------------------------- */

void bundle_free(struct bundle *b)
{
	if (!b)
		return;
	policy_free(b->policy);
	free(b);
}

static const char *plural(unsigned n)
{
	return n == 1 ? "" : "s";
}

/* Judge each signature; returns 0 when enough count, else the first reason, as documented. */
static int check_signatures(const struct bundle_trust *t, const char *payload, size_t size,
			    struct bundle *b, struct bundle_error *err)
{
	struct bundle_envelope *env = &b->envelope;
	const struct bundle_signature *first_refused = NULL;
	char counts[96];

	b->n_valid = 0;
	for (size_t i = 0; i < env->n_signatures; i++) {
		struct bundle_signature *s = &env->signatures[i];
		const struct trusted_key *k;

		for (size_t j = 0; j < i; j++)
			if (strcmp(env->signatures[j].keyid, s->keyid) == 0)
				s->duplicate = true;
		if (trust_is_revoked(t, s->keyid)) {
			s->status = BUNDLE_REVOKED_KEY;
		} else if (!(k = trust_find(t, s->keyid))) {
			s->status = BUNDLE_UNKNOWN_KEY;
		} else if (!signature_valid(k->pkey, s->sig, payload, size)) {
			/* A trusted key's signature that does not verify: the payload or the
			 * signature was changed after signing. Never outvoted. */
			s->status = BUNDLE_BAD_SIGNATURE;
			return set_error(err, -EKEYREJECTED, BUNDLE_BAD_SIGNATURE,
					 "line %u: the signature by trusted key %s (%s) does not "
					 "match the payload: the bundle was modified after signing",
					 s->line, s->keyid, k->name);
		} else {
			s->status = BUNDLE_OK;
			if (!s->duplicate)
				b->n_valid++;
		}
		if (s->status != BUNDLE_OK && !first_refused)
			first_refused = s;
	}
	if (b->n_valid >= t->threshold)
		return 0;

	snprintf(counts, sizeof(counts), "%u valid signature%s of trusted keys, %u required",
		 b->n_valid, plural(b->n_valid), t->threshold);
	if (first_refused && first_refused->status == BUNDLE_REVOKED_KEY)
		return set_error(err, -EKEYREJECTED, BUNDLE_REVOKED_KEY,
				 "line %u: signed by revoked key %s; %s", first_refused->line,
				 first_refused->keyid, counts);
	if (first_refused)
		return set_error(err, -EKEYREJECTED, BUNDLE_UNKNOWN_KEY,
				 "line %u: signed by key %s, which is not trusted; %s",
				 first_refused->line, first_refused->keyid, counts);
	return set_error(err, -EKEYREJECTED, BUNDLE_BELOW_THRESHOLD, "%s", counts);
}

static int check_metadata(const struct bundle_expect *want, const char *name,
			  const struct policy_bundle_meta *m, struct bundle_error *err)
{
	char when[POLICY_TIME_LEN + 1], now[POLICY_TIME_LEN + 1];

	if (want->target && strcmp(want->target, m->target) != 0)
		return set_error(err, -EINVAL, BUNDLE_WRONG_TARGET,
				 "%s:%u:%u: the bundle is for target '%s', this device is '%s'",
				 name, m->target_loc.line, m->target_loc.column, m->target,
				 want->target);
	if (want->n_ids > 0) {
		size_t i;

		for (i = 0; i < want->n_ids; i++)
			if (!strcmp(want->ids[i], m->id))
				break;
		if (i == want->n_ids)
			return set_error(err, -EINVAL, BUNDLE_WRONG_ID,
					 "%s:%u:%u: bundle id '%s' is not one this device accepts",
					 name, m->loc.line, m->loc.column, m->id);
	}
	if (policy_time_format((int64_t)want->now, now, sizeof(now)) < 0)
		snprintf(now, sizeof(now), "%jd", (intmax_t)want->now);
	if ((int64_t)want->now < m->not_before) {
		policy_time_format(m->not_before, when, sizeof(when));
		return set_error(err, -EINVAL, BUNDLE_NOT_YET_VALID,
				 "%s:%u:%u: the bundle is not valid before %s (now is %s)", name,
				 m->not_before_loc.line, m->not_before_loc.column, when, now);
	}
	if ((int64_t)want->now > m->not_after) {
		policy_time_format(m->not_after, when, sizeof(when));
		return set_error(err, -EINVAL, BUNDLE_EXPIRED,
				 "%s:%u:%u: the bundle expired at %s (now is %s)", name,
				 m->not_after_loc.line, m->not_after_loc.column, when, now);
	}
	return 0;
}

static int check_rollback(const struct bundle_state *state, const struct policy_bundle_meta *m,
			  struct bundle *b, struct bundle_error *err)
{
	const struct bundle_state_entry *e = bundle_state_find(state, m->id);
	char hex[BUNDLE_SHA256_HEX_LEN + 1];

	if (!e)
		return 0;
	if (m->version < e->version)
		return set_error(err, -ESTALE, BUNDLE_ROLLBACK,
				 "bundle '%s' version %" PRIu64 " is older than the installed "
				 "version %" PRIu64,
				 m->id, m->version, e->version);
	if (m->version == e->version) {
		if (memcmp(e->sha256, b->payload_sha256, BUNDLE_SHA256_BYTES) != 0) {
			bundle_hex(e->sha256, BUNDLE_SHA256_BYTES, hex);
			return set_error(err, -ESTALE, BUNDLE_VERSION_REUSED,
					 "bundle '%s' version %" PRIu64 " is installed with other "
					 "content (payload sha256 %s, this one %s); a new policy "
					 "needs a new version",
					 m->id, m->version, hex, b->payload_sha256_hex);
		}
		b->already_installed = true;
	}
	return 0;
}

/*
 * bundle_verify(), or with `parsed` (not NULL) bundle_verify_parsed(): the payload is not parsed
 * again, its metadata are parsed's.
 */
static int verify(const struct bundle_trust *t, const char *name, const void *data_, size_t size,
		  const struct bundle_expect *want, const struct policy *parsed, struct bundle **ret,
		  struct bundle_error *err)
{
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	const struct policy *policy = parsed;
	const char *data = data_;
	int r;

	error_init(err);
	if (!t || !want || !ret || (!data && size > 0))
		return set_error(err, -EINVAL, BUNDLE_INTERNAL_ERROR, "invalid arguments");
	if (!name)
		name = "<bundle>";

	b = calloc(1, sizeof(*b));
	if (!b)
		return oom(err);

	/* size and envelope */
	r = bundle_split(data, size, &b->envelope, err);
	if (r < 0)
		return r;
	b->payload_size = b->envelope.payload_size;

	/* signatures, over the exact payload bytes */
	r = check_signatures(t, data, b->payload_size, b, err);
	if (r < 0)
		return r;
	bundle_sha256(data, b->payload_size, b->payload_sha256);
	bundle_hex(b->payload_sha256, BUNDLE_SHA256_BYTES, b->payload_sha256_hex);

	/* parse: the same bytes that were verified, nothing re-read */
	if (!parsed) {
		r = policy_parse_buffer(name, data, b->payload_size, &b->policy,
					err ? &err->policy : NULL);
		if (r < 0) {
			char msg[sizeof(err->message)];

			if (r == -ENOMEM)
				return oom(err);
			if (!err)
				return r;
			policy_error_format(&err->policy, msg, sizeof(msg));
			return set_error(err, r, BUNDLE_INVALID_POLICY, "%s", msg);
		}
		policy = b->policy;
	}

	/* metadata */
	if (!policy->has_bundle)
		return set_error(err, -EINVAL, BUNDLE_NO_METADATA,
				 "%s: the payload is a policy without 'bundle:' metadata (id, "
				 "version, target, not-before, not-after)",
				 name);
	r = check_metadata(want, name, &policy->bundle, err);
	if (r < 0)
		return r;

	/* rollback */
	if (want->state) {
		r = check_rollback(want->state, &policy->bundle, b, err);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(b);
	return 0;
}

int bundle_verify(const struct bundle_trust *t, const char *name, const void *data, size_t size,
		  const struct bundle_expect *want, struct bundle **ret, struct bundle_error *err)
{
	return verify(t, name, data, size, want, NULL, ret, err);
}

int bundle_verify_parsed(const struct bundle_trust *t, const char *name, const void *data,
			 size_t size, const struct bundle_expect *want, const struct policy *parsed,
			 struct bundle **ret, struct bundle_error *err)
{
	if (!parsed) {
		error_init(err);
		return set_error(err, -EINVAL, BUNDLE_INTERNAL_ERROR, "invalid arguments");
	}
	return verify(t, name, data, size, want, parsed, ret, err);
}

int bundle_read_file(const char *path, char **ret_data, size_t *ret_size, struct bundle_error *err)
{
	int r;

	error_init(err);
	if (!path || !ret_data || !ret_size)
		return set_error(err, -EINVAL, BUNDLE_INTERNAL_ERROR, "invalid arguments");
	r = read_file_limited(path, BUNDLE_MAX_BYTES, ret_data, ret_size);
	if (r == -EFBIG)
		return set_error(err, r, BUNDLE_TOO_LARGE,
				 "%s: larger than %u bytes (BUNDLE_MAX_BYTES)", path,
				 (unsigned)BUNDLE_MAX_BYTES);
	if (r < 0)
		return set_error(err, r, BUNDLE_INTERNAL_ERROR, "cannot read %s: %s", path,
				 strerror(-r));
	return 0;
}

int bundle_state_record(struct bundle_state *s, const struct bundle *b)
{
	if (!b || !b->policy || !b->policy->has_bundle)
		return -EINVAL;
	return bundle_state_set(s, b->policy->bundle.id, b->policy->bundle.version,
				b->payload_sha256);
}
