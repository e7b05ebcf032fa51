// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall bundle keygen|sign|verify|inspect|install`: the signed-bundle commands of the CLI,
 * over userspace/lib/bundle.h; install sends a bundle to the running agent (cmd_bundle()).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "bundle_state.h"
#include "control.h"
#include "fileio.h"
#include "policy.h"
#include "util.h"

#define EXIT_USAGE 2
#define KEY_FILE_MAX_BYTES (64u * 1024)
#define PREFIX_MAX 4000

struct opts {
	bool json;
	const char *out_prefix; /* keygen --out */
	const char *output;	/* sign -o */
	const char *keys[BUNDLE_MAX_SIGNATURES];
	size_t n_keys;
	const char *trust;
	unsigned threshold;
	const char *target;
	const char *bundle_ids[BUNDLE_MAX_ACCEPTED_IDS];
	size_t n_bundle_ids;
	bool have_now;
	int64_t now;
	const char *state_dir;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle *, bundle_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_trust *, bundle_trust_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_state *, bundle_state_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_object *, json_object_put)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: carwall [--json] bundle COMMAND ...\n"
		"\n"
		"  carwall bundle keygen --out PREFIX\n"
		"      make an Ed25519 key pair: PREFIX.key (private, mode 0600), PREFIX.pub\n"
		"  carwall bundle sign --key KEY.pem [--key KEY.pem...] PAYLOAD|BUNDLE -o BUNDLE\n"
		"      sign a policy (with 'bundle:' metadata), or add signatures to a bundle\n"
		"  carwall bundle verify --trust DIR [--threshold M] [--target ID] [--now TIME]\n"
		"                        [--bundle-id ID...] [--state-dir DIR] BUNDLE\n"
		"      verify as the agent would; TIME is RFC 3339 UTC (2026-11-01T00:00:00Z)\n"
		"  carwall bundle inspect BUNDLE\n"
		"      show metadata, key ids and payload hash; signatures are NOT verified\n"
		"\n"
		"Exit codes: 0 success (verify: valid), 1 failure (verify: refused), 2 usage "
		"error.\n");
}

static void json_print(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_SPACED |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int cli_error(const struct opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int cli_error(const struct opts *o, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (o->json) {
		_cleanup_(json_object_putp) struct json_object *j = json_object_new_object();

		json_object_object_add(j, "error", json_object_new_string(buf));
		json_print(j);
	} else {
		fprintf(stderr, "carwall: %s\n", buf);
	}
	return EXIT_FAILURE;
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "carwall bundle %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see carwall bundle --help\n");
	return EXIT_USAGE;
}

/* ---- options -------------------------------------------------------------------------------- */

enum {
	OPT_JSON = 'j',
	OPT_HELP = 'h',
	OPT_OUTPUT = 'o',
	OPT_OUT = 256,
	OPT_KEY,
	OPT_TRUST,
	OPT_THRESHOLD,
	OPT_TARGET,
	OPT_NOW,
	OPT_STATE_DIR,
	OPT_BUNDLE_ID,
};

/* Which options each command takes, beyond --json and --help. */
static bool option_allowed(const char *cmd, int opt)
{
	if (!strcmp(cmd, "keygen"))
		return opt == OPT_OUT;
	if (!strcmp(cmd, "sign"))
		return opt == OPT_KEY || opt == OPT_OUTPUT;
	if (!strcmp(cmd, "verify"))
		return opt == OPT_TRUST || opt == OPT_THRESHOLD || opt == OPT_TARGET ||
		       opt == OPT_NOW || opt == OPT_STATE_DIR || opt == OPT_BUNDLE_ID;
	return false;
}

/* Parse argv (argv[0] is the command); returns the index of the first operand, or -1. */
static int parse_options(const char *cmd, int argc, char **argv, struct opts *o)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "trust", required_argument, NULL, OPT_TRUST },
		{ "threshold", required_argument, NULL, OPT_THRESHOLD },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "now", required_argument, NULL, OPT_NOW },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "bundle-id", required_argument, NULL, OPT_BUNDLE_ID },
		{},
	};
	int opt;

	optind = 0; /* glibc: restart scanning */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "jho:", options, NULL)) != -1) {
		char *end;
		unsigned long v;

		if (opt == OPT_HELP) {
			usage(stdout);
			exit(EXIT_SUCCESS);
		}
		if (opt == OPT_JSON) {
			o->json = true;
			continue;
		}
		if (opt == '?' || !option_allowed(cmd, opt)) {
			usage_error(cmd, "unknown or misplaced option '%s'", argv[optind - 1]);
			return -1;
		}
		switch (opt) {
		case OPT_OUT:
			o->out_prefix = optarg;
			break;
		case OPT_OUTPUT:
			o->output = optarg;
			break;
		case OPT_KEY:
			if (o->n_keys >= BUNDLE_MAX_SIGNATURES) {
				usage_error(cmd, "at most %d --key", BUNDLE_MAX_SIGNATURES);
				return -1;
			}
			o->keys[o->n_keys++] = optarg;
			break;
		case OPT_TRUST:
			o->trust = optarg;
			break;
		case OPT_THRESHOLD:
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || !*optarg || *end || optarg[0] < '1' || optarg[0] > '9' ||
			    v > BUNDLE_MAX_SIGNATURES) {
				usage_error(cmd, "--threshold must be 1 to %d, not '%s'",
					    BUNDLE_MAX_SIGNATURES, optarg);
				return -1;
			}
			o->threshold = (unsigned)v;
			break;
		case OPT_BUNDLE_ID:
			if (!policy_app_id_valid(optarg) ||
			    o->n_bundle_ids >= BUNDLE_MAX_ACCEPTED_IDS) {
				usage_error(cmd, "'%s' is not a valid bundle id, or more than %d",
					    optarg, BUNDLE_MAX_ACCEPTED_IDS);
				return -1;
			}
			o->bundle_ids[o->n_bundle_ids++] = optarg;
			break;
		case OPT_TARGET:
			if (!policy_app_id_valid(optarg)) {
				usage_error(cmd, "'%s' is not a valid target id", optarg);
				return -1;
			}
			o->target = optarg;
			break;
		case OPT_NOW:
			if (policy_time_parse(optarg, &o->now) < 0) {
				usage_error(cmd,
					    "--now takes an RFC 3339 UTC time such as "
					    "2026-11-01T00:00:00Z, not '%s'",
					    optarg);
				return -1;
			}
			o->have_now = true;
			break;
		case OPT_STATE_DIR:
			o->state_dir = optarg;
			break;
		}
	}
	return optind;
}

/* ---- output helpers ------------------------------------------------------------------------- */

static const char *time_str(int64_t t, char buf[POLICY_TIME_LEN + 1])
{
	if (policy_time_format(t, buf, POLICY_TIME_LEN + 1) < 0)
		snprintf(buf, POLICY_TIME_LEN + 1, "%" PRId64, t);
	return buf;
}

static struct json_object *json_meta(const struct policy_bundle_meta *m)
{
	struct json_object *j = json_object_new_object();
	char t[POLICY_TIME_LEN + 1];

	json_object_object_add(j, "id", json_object_new_string(m->id));
	json_object_object_add(j, "version", json_object_new_uint64(m->version));
	json_object_object_add(j, "target", json_object_new_string(m->target));
	json_object_object_add(j, "not_before", json_object_new_string(time_str(m->not_before, t)));
	json_object_object_add(j, "not_after", json_object_new_string(time_str(m->not_after, t)));
	return j;
}

static struct json_object *json_policy_summary(const struct policy *p)
{
	struct json_object *j = json_object_new_object(), *apps = json_object_new_array();

	json_object_object_add(j, "apps", json_object_new_int64((int64_t)p->n_apps));
	json_object_object_add(j, "sets", json_object_new_int64((int64_t)p->n_sets));
	json_object_object_add(j, "rules", json_object_new_int64((int64_t)p->n_rules));
	for (size_t i = 0; i < p->n_apps; i++) {
		struct json_object *a = json_object_new_object();

		json_object_object_add(a, "id", json_object_new_string(p->apps[i].id));
		json_object_object_add(a, "rules",
				       json_object_new_int64((int64_t)p->apps[i].n_rules));
		json_object_object_add(a, "cgroup", json_object_new_string(p->apps[i].cgroup));
		json_object_object_add(a, "template", json_object_new_string(policy_template_name(
							      p->apps[i].template)));
		json_object_array_add(apps, a);
	}
	json_object_object_add(j, "app_list", apps);
	return j;
}

static struct json_object *json_policy_error(const struct policy_error *e)
{
	struct json_object *j = json_object_new_object();
	char msg[sizeof(e->reason) + sizeof(e->file) + 32];

	policy_error_format(e, msg, sizeof(msg));
	json_object_object_add(j, "file", json_object_new_string(e->file));
	json_object_object_add(j, "line", json_object_new_int((int)e->loc.line));
	json_object_object_add(j, "column", json_object_new_int((int)e->loc.column));
	json_object_object_add(j, "reason", json_object_new_string(e->reason));
	json_object_object_add(j, "message", json_object_new_string(msg));
	return j;
}

static void print_policy_summary(const struct policy *p)
{
	printf("policy:          %zu apps, %zu sets, %zu rules\n", p->n_apps, p->n_sets,
	       p->n_rules);
	for (size_t i = 0; i < p->n_apps; i++)
		printf("  app %-16s %zu rules  %s%s\n", p->apps[i].id, p->apps[i].n_rules,
		       p->apps[i].cgroup,
		       p->apps[i].n_cgroups > 1 ? " (or its agl-app-web@ or agl-app-flutter@ unit)"
						: "");
}

/* ---- files ---------------------------------------------------------------------------------- */

/* Create path with O_EXCL and this mode (whatever the umask), write all of data. */
static int write_new_file(const char *path, const void *data, size_t size, mode_t mode)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
				      mode);
	const char *p = data;

	if (fd < 0)
		return negative_errno();
	if (fchmod(fd, mode) < 0)
		return negative_errno();
	while (size > 0) {
		ssize_t n = write(fd, p, size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		p += n;
		size -= (size_t)n;
	}
	if (fsync(fd) < 0)
		return negative_errno();
	return close(TAKE_FD(fd)) < 0 ? negative_errno() : 0;
}

/* Replace path atomically: a temporary file next to it, renamed over it. */
static int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode)
{
	_cleanup_free_ char *tmp = NULL;
	int r;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	(void)unlink(tmp);
	r = write_new_file(tmp, data, size, mode);
	if (r < 0) {
		(void)unlink(tmp);
		return r;
	}
	if (rename(tmp, path) < 0) {
		r = negative_errno();
		(void)unlink(tmp);
		return r;
	}
	return 0;
}

/* PEM of a key into a new buffer, via a memory BIO. */
static int key_to_pem(EVP_PKEY *key, bool private_key, char **ret, size_t *ret_size)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *mem = NULL;
	long len;
	int ok;

	if (!bio)
		return -ENOMEM;
	if (private_key)
		ok = PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_bio_PUBKEY(bio, key);
	len = BIO_get_mem_data(bio, &mem);
	if (ok != 1 || len <= 0 || !(*ret = malloc((size_t)len))) {
		BIO_free(bio);
		ERR_clear_error();
		return ok != 1 ? -EIO : -ENOMEM;
	}
	memcpy(*ret, mem, (size_t)len);
	*ret_size = (size_t)len;
	BIO_free(bio);
	return 0;
}

/* ---- keygen --------------------------------------------------------------------------------- */

static int cmd_keygen(struct opts *o, int argc, char **argv)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	_cleanup_free_ char *key_path = NULL, *pub_path = NULL, *priv_pem = NULL, *pub_pem = NULL;
	char keyid[BUNDLE_KEYID_LEN + 1];
	size_t priv_size = 0, pub_size = 0;
	EVP_PKEY_CTX *ctx;
	int i, r;

	i = parse_options("keygen", argc, argv, o);
	if (i < 0)
		return EXIT_USAGE;
	if (i != argc)
		return usage_error("keygen", "unexpected argument '%s'", argv[i]);
	if (!o->out_prefix || !o->out_prefix[0])
		return usage_error("keygen", "--out PREFIX is required");
	if (strlen(o->out_prefix) > PREFIX_MAX)
		return usage_error("keygen", "PREFIX is too long");
	if (asprintf(&key_path, "%s.key", o->out_prefix) < 0 ||
	    asprintf(&pub_path, "%s.pub", o->out_prefix) < 0)
		return cli_error(o, "out of memory");

	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &key) != 1) {
		EVP_PKEY_CTX_free(ctx);
		ERR_clear_error();
		return cli_error(o, "cannot generate an Ed25519 key");
	}
	EVP_PKEY_CTX_free(ctx);
	if (bundle_keyid(key, keyid) < 0 || key_to_pem(key, true, &priv_pem, &priv_size) < 0 ||
	    key_to_pem(key, false, &pub_pem, &pub_size) < 0)
		return cli_error(o, "cannot encode the key");

	if (access(pub_path, F_OK) == 0)
		return cli_error(o, "%s already exists; not overwriting a key", pub_path);
	r = write_new_file(key_path, priv_pem, priv_size, 0600);
	OPENSSL_cleanse(priv_pem, priv_size);
	if (r == -EEXIST)
		return cli_error(o, "%s already exists; not overwriting a key", key_path);
	if (r < 0) {
		(void)unlink(key_path);
		return cli_error(o, "cannot write %s: %s", key_path, strerror(-r));
	}
	r = write_new_file(pub_path, pub_pem, pub_size, 0644);
	if (r < 0) {
		(void)unlink(key_path);
		if (r != -EEXIST)
			(void)unlink(pub_path);
		return cli_error(o, "cannot write %s: %s", pub_path, strerror(-r));
	}

	if (o->json) {
		_cleanup_(json_object_putp) struct json_object *j = json_object_new_object();

		json_object_object_add(j, "private_key", json_object_new_string(key_path));
		json_object_object_add(j, "public_key", json_object_new_string(pub_path));
		json_object_object_add(j, "keyid", json_object_new_string(keyid));
		json_print(j);
	} else {
		printf("private key: %s (keep it secret; mode 0600)\n", key_path);
		printf("public key:  %s (put it in the head unit's trust folder)\n", pub_path);
		printf("key id:      %s\n", keyid);
	}
	return EXIT_SUCCESS;
}

/* ---- sign ----------------------------------------------------------------------------------- */

static int load_private_key(const struct opts *o, const char *path, EVP_PKEY **ret)
{
	_cleanup_free_ char *pem = NULL;
	size_t size = 0;
	int r;

	r = read_file_limited(path, KEY_FILE_MAX_BYTES, &pem, &size);
	if (r < 0) {
		cli_error(o, "cannot read key %s: %s", path, strerror(-r));
		return r;
	}
	r = bundle_key_from_pem(pem, size, true, ret);
	OPENSSL_cleanse(pem, size);
	if (r == -EPROTONOSUPPORT)
		cli_error(o, "%s is not an Ed25519 key", path);
	else if (r < 0)
		cli_error(o, "%s is not a PEM private key", path);
	return r;
}

static int cmd_sign(struct opts *o, int argc, char **argv)
{
	_cleanup_free_ char *data = NULL, *out = NULL;
	_cleanup_(policy_freep) struct policy *pol = NULL;
	struct bundle_signature sigs[BUNDLE_MAX_SIGNATURES];
	struct bundle_envelope env;
	struct bundle_error berr;
	struct policy_error perr;
	bool added[BUNDLE_MAX_SIGNATURES] = {};
	size_t size = 0, out_size = 0, n_sigs = 0, payload_size;
	const char *input;
	int i, r;

	i = parse_options("sign", argc, argv, o);
	if (i < 0)
		return EXIT_USAGE;
	if (i + 1 != argc)
		return usage_error("sign", "one PAYLOAD or BUNDLE file is needed");
	if (o->n_keys == 0)
		return usage_error("sign", "at least one --key KEY.pem is needed");
	if (!o->output)
		return usage_error("sign", "-o BUNDLE is required");
	input = argv[i];

	r = bundle_read_file(input, &data, &size, &berr);
	if (r < 0)
		return cli_error(o, "%s", berr.message);

	/* A bundle already signed keeps its signatures; a plain policy is the whole payload. */
	r = bundle_split(data, size, &env, &berr);
	if (r < 0 && berr.reason != BUNDLE_NO_SIGNATURE_BLOCK)
		return cli_error(o, "%s: not a valid bundle (%s): %s", input,
				 bundle_reason_name(berr.reason), berr.message);
	if (r < 0) {
		payload_size = size;
	} else {
		payload_size = env.payload_size;
		n_sigs = env.n_signatures;
		memcpy(sigs, env.signatures, n_sigs * sizeof(sigs[0]));
	}
	if (payload_size == 0 || data[payload_size - 1] != '\n')
		return cli_error(o, "%s: the payload must end with a newline", input);

	/* Only what the agent would parse is worth signing. */
	r = policy_parse_buffer(input, data, payload_size, &pol, &perr);
	if (r < 0) {
		char msg[1024];

		policy_error_format(&perr, msg, sizeof(msg));
		return cli_error(o, "%s", msg);
	}
	if (!pol->has_bundle)
		return cli_error(o,
				 "%s: the policy has no 'bundle:' metadata (id, version, target, "
				 "not-before, not-after); see policies/README.md",
				 input);

	for (size_t k = 0; k < o->n_keys; k++) {
		_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
		struct bundle_signature s;
		bool present = false;

		r = load_private_key(o, o->keys[k], &key);
		if (r < 0)
			return EXIT_FAILURE;
		r = bundle_sign(key, data, payload_size, &s);
		if (r < 0)
			return cli_error(o, "cannot sign with %s: %s", o->keys[k], strerror(-r));
		for (size_t j = 0; j < n_sigs; j++)
			if (!strcmp(sigs[j].keyid, s.keyid))
				present = true;
		if (present) {
			if (!o->json)
				fprintf(stderr, "carwall: %s: already signed by key %s (%s)\n",
					input, s.keyid, o->keys[k]);
			continue;
		}
		if (n_sigs >= BUNDLE_MAX_SIGNATURES)
			return cli_error(o, "more than %d signatures (BUNDLE_MAX_SIGNATURES)",
					 BUNDLE_MAX_SIGNATURES);
		added[n_sigs] = true;
		sigs[n_sigs++] = s;
	}

	r = bundle_format(data, payload_size, sigs, n_sigs, &out, &out_size);
	if (r < 0)
		return cli_error(o, "%s: cannot make the bundle: %s", input, strerror(-r));
	r = write_file_atomic(o->output, out, out_size, 0644);
	if (r < 0)
		return cli_error(o, "cannot write %s: %s", o->output, strerror(-r));

	char hex[BUNDLE_SHA256_HEX_LEN + 1];
	uint8_t md[BUNDLE_SHA256_BYTES];

	bundle_sha256(data, payload_size, md);
	bundle_hex(md, sizeof(md), hex);
	if (o->json) {
		_cleanup_(json_object_putp) struct json_object *j = json_object_new_object();
		struct json_object *a = json_object_new_array();

		json_object_object_add(j, "output", json_object_new_string(o->output));
		json_object_object_add(j, "bundle", json_meta(&pol->bundle));
		json_object_object_add(j, "payload_sha256", json_object_new_string(hex));
		for (size_t k = 0; k < n_sigs; k++) {
			struct json_object *s = json_object_new_object();

			json_object_object_add(s, "keyid", json_object_new_string(sigs[k].keyid));
			json_object_object_add(s, "added", json_object_new_boolean(added[k]));
			json_object_array_add(a, s);
		}
		json_object_object_add(j, "signatures", a);
		json_print(j);
	} else {
		printf("%s: bundle '%s' version %" PRIu64 " for %s, payload sha256 %s\n", o->output,
		       pol->bundle.id, pol->bundle.version, pol->bundle.target, hex);
		for (size_t k = 0; k < n_sigs; k++)
			printf("  signed by %s%s\n", sigs[k].keyid, added[k] ? " (added)" : "");
	}
	return EXIT_SUCCESS;
}

/* ---- verify --------------------------------------------------------------------------------- */

static int verify_refused(const struct opts *o, const char *file, const struct bundle_error *e)
{
	if (o->json) {
		_cleanup_(json_object_putp) struct json_object *j = json_object_new_object();

		json_object_object_add(j, "file", json_object_new_string(file));
		json_object_object_add(j, "valid", json_object_new_boolean(false));
		json_object_object_add(j, "reason",
				       json_object_new_string(bundle_reason_name(e->reason)));
		json_object_object_add(j, "message", json_object_new_string(e->message));
		if (e->reason == BUNDLE_INVALID_POLICY)
			json_object_object_add(j, "policy_error", json_policy_error(&e->policy));
		json_print(j);
	} else {
		fprintf(stderr, "%s: refused (%s): %s\n", file, bundle_reason_name(e->reason),
			e->message);
	}
	return EXIT_FAILURE;
}

static int cmd_verify(struct opts *o, int argc, char **argv)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *trust = NULL;
	_cleanup_(bundle_state_freep) struct bundle_state *state = NULL;
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_expect want = {};
	struct bundle_error berr;
	char reason[512], t1[POLICY_TIME_LEN + 1], t2[POLICY_TIME_LEN + 1], t3[POLICY_TIME_LEN + 1];
	const struct policy_bundle_meta *m;
	const char *file;
	size_t size = 0;
	int i, r;

	i = parse_options("verify", argc, argv, o);
	if (i < 0)
		return EXIT_USAGE;
	if (i + 1 != argc)
		return usage_error("verify", "one BUNDLE file is needed");
	if (!o->trust)
		return usage_error("verify", "--trust DIR is required");
	file = argv[i];

	r = bundle_trust_load(o->trust, &trust, &berr);
	if (r < 0)
		return cli_error(o, "%s", berr.message);
	if (o->threshold) {
		r = bundle_trust_set_threshold(trust, o->threshold);
		if (r < 0)
			return cli_error(o, "--threshold %u: %s", o->threshold, strerror(-r));
	}
	if (o->state_dir) {
		r = bundle_state_load(o->state_dir, &state, reason, sizeof(reason));
		if (r < 0)
			return cli_error(o, "anti-rollback state in %s: %s", o->state_dir, reason);
	}
	want.target = o->target;
	want.ids = o->bundle_ids;
	want.n_ids = o->n_bundle_ids;
	want.now = o->have_now ? (time_t)o->now : time(NULL);
	want.state = state;

	r = bundle_read_file(file, &data, &size, &berr);
	if (r < 0 && berr.reason == BUNDLE_TOO_LARGE)
		return verify_refused(o, file, &berr);
	if (r < 0)
		return cli_error(o, "%s", berr.message);
	r = bundle_verify(trust, file, data, size, &want, &b, &berr);
	if (r < 0)
		return verify_refused(o, file, &berr);

	m = &b->policy->bundle;
	if (o->json) {
		_cleanup_(json_object_putp) struct json_object *j = json_object_new_object();
		struct json_object *a = json_object_new_array();

		json_object_object_add(j, "file", json_object_new_string(file));
		json_object_object_add(j, "valid", json_object_new_boolean(true));
		json_object_object_add(j, "already_installed",
				       json_object_new_boolean(b->already_installed));
		json_object_object_add(j, "bundle", json_meta(m));
		json_object_object_add(j, "payload_sha256",
				       json_object_new_string(b->payload_sha256_hex));
		json_object_object_add(j, "payload_bytes",
				       json_object_new_int64((int64_t)b->payload_size));
		json_object_object_add(j, "valid_signatures", json_object_new_int((int)b->n_valid));
		json_object_object_add(j, "threshold",
				       json_object_new_int((int)bundle_trust_threshold(trust)));
		for (size_t k = 0; k < b->envelope.n_signatures; k++) {
			const struct bundle_signature *s = &b->envelope.signatures[k];
			const char *status = bundle_reason_name(s->status);
			struct json_object *js = json_object_new_object();

			json_object_object_add(js, "line", json_object_new_int((int)s->line));
			json_object_object_add(js, "keyid", json_object_new_string(s->keyid));
			json_object_object_add(js, "status", json_object_new_string(status));
			json_object_object_add(js, "duplicate",
					       json_object_new_boolean(s->duplicate));
			json_object_array_add(a, js);
		}
		json_object_object_add(j, "signatures", a);
		json_object_object_add(j, "target_checked", json_object_new_boolean(!!o->target));
		json_object_object_add(j, "bundle_id_checked",
				       json_object_new_boolean(o->n_bundle_ids > 0));
		json_object_object_add(j, "rollback_checked", json_object_new_boolean(!!state));
		json_object_object_add(j, "now", json_object_new_string(time_str(want.now, t1)));
		json_object_object_add(j, "policy", json_policy_summary(b->policy));
		json_print(j);
		return EXIT_SUCCESS;
	}

	printf("%s: valid%s\n", file,
	       b->already_installed ? " (already installed: same version and content)" : "");
	printf("bundle:          %s version %" PRIu64 " for target %s%s%s\n", m->id, m->version,
	       m->target, o->target ? "" : " (target not checked: no --target)",
	       o->n_bundle_ids ? "" : " (id not checked: no --bundle-id)");
	printf("valid:           %s to %s (checked at %s)\n", time_str(m->not_before, t1),
	       time_str(m->not_after, t2), time_str(want.now, t3));
	printf("payload:         %zu bytes, sha256 %s\n", b->payload_size, b->payload_sha256_hex);
	printf("signatures:      %u valid of trusted keys, %u required\n", b->n_valid,
	       bundle_trust_threshold(trust));
	for (size_t k = 0; k < b->envelope.n_signatures; k++) {
		const struct bundle_signature *s = &b->envelope.signatures[k];

		printf("  line %u: %s %s%s\n", s->line, s->keyid, bundle_reason_name(s->status),
		       s->duplicate ? " (same key again, counted once)" : "");
	}
	if (!state)
		printf("rollback:        not checked (no --state-dir)\n");
	print_policy_summary(b->policy);
	return EXIT_SUCCESS;
}

/* ---- inspect -------------------------------------------------------------------------------- */

static int cmd_inspect(struct opts *o, int argc, char **argv)
{
	_cleanup_(policy_freep) struct policy *pol = NULL;
	_cleanup_(json_object_putp) struct json_object *j = NULL;
	_cleanup_free_ char *data = NULL;
	struct bundle_envelope env = {};
	struct bundle_error berr, env_err = {};
	struct policy_error perr = {};
	char hex[BUNDLE_SHA256_HEX_LEN + 1], t1[POLICY_TIME_LEN + 1], t2[POLICY_TIME_LEN + 1];
	uint8_t md[BUNDLE_SHA256_BYTES];
	size_t size = 0, payload_size;
	const char *file;
	bool env_ok, pol_ok;
	int i, r;

	i = parse_options("inspect", argc, argv, o);
	if (i < 0)
		return EXIT_USAGE;
	if (i + 1 != argc)
		return usage_error("inspect", "one BUNDLE file is needed");
	file = argv[i];

	r = bundle_read_file(file, &data, &size, &berr);
	if (r < 0)
		return cli_error(o, "%s", berr.message);
	env_ok = bundle_split(data, size, &env, &env_err) == 0;
	/* Without a block, the whole file is shown as the payload; with a broken block, what
	 * precedes it. */
	payload_size = !env_ok && env_err.reason == BUNDLE_NO_SIGNATURE_BLOCK ? size
									     : env.payload_size;
	bundle_sha256(data, payload_size, md);
	bundle_hex(md, sizeof(md), hex);
	pol_ok = policy_parse_buffer(file, data, payload_size, &pol, &perr) == 0;

	if (o->json) {
		struct json_object *a = json_object_new_array();

		j = json_object_new_object();
		json_object_object_add(j, "file", json_object_new_string(file));
		json_object_object_add(j, "signatures_verified", json_object_new_boolean(false));
		json_object_object_add(j, "payload_bytes",
				       json_object_new_int64((int64_t)payload_size));
		json_object_object_add(j, "payload_sha256", json_object_new_string(hex));
		for (size_t k = 0; env_ok && k < env.n_signatures; k++) {
			struct json_object *s = json_object_new_object();

			json_object_object_add(s, "line",
					       json_object_new_int((int)env.signatures[k].line));
			json_object_object_add(s, "keyid",
					       json_object_new_string(env.signatures[k].keyid));
			json_object_array_add(a, s);
		}
		json_object_object_add(j, "signatures", a);
		if (!env_ok) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(
				e, "reason",
				json_object_new_string(bundle_reason_name(env_err.reason)));
			json_object_object_add(e, "message",
					       json_object_new_string(env_err.message));
			json_object_object_add(j, "envelope_error", e);
		}
		if (pol_ok && pol->has_bundle)
			json_object_object_add(j, "bundle", json_meta(&pol->bundle));
		else
			json_object_object_add(j, "bundle", NULL);
		if (pol_ok)
			json_object_object_add(j, "policy", json_policy_summary(pol));
		else
			json_object_object_add(j, "policy_error", json_policy_error(&perr));
		json_print(j);
	} else {
		printf("file:            %s\n", file);
		printf("signatures:      NOT verified (inspect checks none; use 'carwall bundle "
		       "verify')\n");
		if (env_ok) {
			printf("signature lines: %zu\n", env.n_signatures);
			for (size_t k = 0; k < env.n_signatures; k++)
				printf("  line %u: ed25519 key %s\n", env.signatures[k].line,
				       env.signatures[k].keyid);
		} else {
			printf("envelope:        %s: %s\n", bundle_reason_name(env_err.reason),
			       env_err.message);
		}
		printf("payload:         %zu bytes, sha256 %s\n", payload_size, hex);
		if (pol_ok && pol->has_bundle) {
			const struct policy_bundle_meta *m = &pol->bundle;

			printf("bundle:          %s version %" PRIu64 " for target %s\n", m->id,
			       m->version, m->target);
			printf("valid:           %s to %s\n", time_str(m->not_before, t1),
			       time_str(m->not_after, t2));
		} else if (pol_ok) {
			printf("bundle:          none (a plain policy, no 'bundle:' metadata)\n");
		}
		if (pol_ok) {
			print_policy_summary(pol);
		} else {
			char msg[1024];

			policy_error_format(&perr, msg, sizeof(msg));
			printf("policy:          invalid: %s\n", msg);
		}
	}
	return env_ok && pol_ok && pol->has_bundle ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

int carwall_bundle_main(int argc, char **argv, bool json)
{
	static const struct {
		const char *name;
		int (*run)(struct opts *o, int argc, char **argv);
	} commands[] = {
		{ "keygen", cmd_keygen },
		{ "sign", cmd_sign },
		{ "verify", cmd_verify },
		{ "inspect", cmd_inspect },
	};
	struct opts o = { .json = json };

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	for (size_t k = 0; k < ARRAY_SIZE(commands); k++)
		if (!strcmp(argv[1], commands[k].name))
			return commands[k].run(&o, argc - 1, argv + 1);
	fprintf(stderr, "carwall bundle: unknown command '%s'; see carwall bundle --help\n",
		argv[1]);
	return EXIT_USAGE;
}

/*
 * `carwall bundle install FILE`: read with this command's own privileges (the agent opens no
 * path a client names) and sent over the control socket; the running agent verifies it, puts it
 * in force and keeps it.
 */
static int cmd_bundle_install(struct cli *c, int argc, char **argv)
{
	_cleanup_free_ char *data = NULL;
	struct json_object *reply = NULL;
	const char *run_dir = control_run_dir(c->run_dir);
	const char *path;
	size_t size;
	int i, r;

	i = cli_parse(c, argc, argv, false, false);
	if (i < 0)
		return EXIT_USAGE;
	if (i + 1 != argc) {
		fprintf(stderr, "Usage: carwall bundle install FILE\n");
		return EXIT_USAGE;
	}
	path = argv[i];
	r = read_file_limited(path, CONTROL_MAX_PAYLOAD, &data, &size);
	if (r == -EINVAL)
		return cli_fail(c, "%s: not a regular file", path);
	if (r == -EFBIG)
		return cli_fail(c, "%s: larger than %u bytes", path, CONTROL_MAX_PAYLOAD);
	if (r < 0)
		return cli_fail(c, "%s: %s", path, strerror(-r));
	if (size == 0)
		return cli_fail(c, "%s: empty file", path);
	r = control_request_payload(run_dir, "install", data, size, &reply);
	if (r < 0)
		return cli_fail(c, "cannot reach carwalld in %s: %s", run_dir, control_strerror(r));
	if (json_str(reply, "error")) {
		r = cli_fail(c, "%s: install refused, the last good policy stays in force: %s",
			      path, json_str(reply, "error"));
		json_object_put(reply);
		return r;
	}
	if (c->json)
		cli_print_json(reply);
	else
		printf("Installed %s: in force, and kept as the agent's policy\n", path);
	json_object_put(reply);
	return EXIT_SUCCESS;
}

/* `bundle` has commands of its own: argv[0] is "bundle", argv[1] the command. */
int cmd_bundle(struct cli *c, int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "install"))
		return cmd_bundle_install(c, argc - 1, argv + 1);
	return carwall_bundle_main(argc, argv, c->json);
}
