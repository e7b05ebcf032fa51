// SPDX-License-Identifier: GPL-2.0-only
/* The flow inventory; its format, bounds and ageing policy are at the top of inventory.h. */
#include "inventory.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

static inline void json_putp(struct json_object **o)
{
	json_object_put(*o);
}

struct inventory {
	struct inventory_record *r;
	uint64_t *hash; /* hash[i]: of r[i]'s key, compared before the key */
	size_t n, cap, max;
	uint64_t evicted;
};

static void (*fault_hook)(enum fileio_step step);

void inventory_set_fault_hook(void (*hook)(enum fileio_step step))
{
	fault_hook = hook;
}

static int inv_error(char *reason, size_t reason_size, int error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int inv_error(char *reason, size_t reason_size, int error, const char *fmt, ...)
{
	va_list ap;

	if (reason && reason_size > 0) {
		va_start(ap, fmt);
		vsnprintf(reason, reason_size, fmt, ap);
		va_end(ap);
	}
	return error;
}

int inventory_new(size_t max_records, struct inventory **ret)
{
	struct inventory *inv;

	if (max_records < INVENTORY_MIN_RECORDS || max_records > INVENTORY_MAX_RECORDS)
		return -EINVAL;
	inv = calloc(1, sizeof(*inv));
	if (!inv)
		return -ENOMEM;
	inv->max = max_records;
	*ret = inv;
	return 0;
}

void inventory_free(struct inventory *inv)
{
	if (!inv)
		return;
	free(inv->r);
	free(inv->hash);
	free(inv);
}

size_t inventory_count(const struct inventory *inv)
{
	return inv->n;
}

const struct inventory_record *inventory_get(const struct inventory *inv, size_t i)
{
	return i < inv->n ? &inv->r[i] : NULL;
}

void inventory_get_stats(const struct inventory *inv, struct inventory_stats *ret)
{
	ret->evicted = inv->evicted;
}

static const char *const verdict_names[] = {"allowed", "refused", "audited"};
static const char *const host_source_names[] = {"", "policy", "observed"};

const char *inventory_host_source_name(uint8_t source)
{
	return source < ARRAY_SIZE(host_source_names) ? host_source_names[source] : "?";
}

const char *inventory_verdict_name(uint8_t verdict)
{
	return verdict < ARRAY_SIZE(verdict_names) ? verdict_names[verdict] : "?";
}

int inventory_verdict_parse(const char *s, uint8_t *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(verdict_names); i++)
		if (!strcmp(s, verdict_names[i])) {
			*ret = (uint8_t)i;
			return 0;
		}
	return -EINVAL;
}

/*
 * A host as the agent records it: a canonical name (lowercase, no final dot), or a wildcard of
 * the policy ("*.x": the address was learned for some name below x), or "" (none known).
 */
static bool host_valid(const char *host)
{
	char canon[POLICY_MAX_HOST_LEN + 1];
	bool wildcard;

	if (!host[0])
		return true;
	if (policy_host_parse(host, canon, &wildcard, NULL, 0) < 0)
		return false;
	return wildcard ? !strncmp(host, "*.", 2) && !strcmp(canon, host + 2)
			: !strcmp(canon, host);
}

bool inventory_record_valid(const struct inventory_record *r)
{
	static const uint8_t zero[12];

	if (strnlen(r->app, sizeof(r->app)) == sizeof(r->app) || !policy_app_id_valid(r->app))
		return false;
	if (strnlen(r->host, sizeof(r->host)) == sizeof(r->host) || !host_valid(r->host))
		return false;
	if (r->family != AF_INET && r->family != AF_INET6)
		return false;
	if (r->family == AF_INET && memcmp(r->addr + 4, zero, sizeof(zero)))
		return false;
	if (r->proto != IPPROTO_TCP && r->proto != IPPROTO_UDP)
		return false;
	if (r->verdict > INVENTORY_AUDITED)
		return false;
	/* No source without a host (a host without one is the policy's: inventory_add()); an
	 * observed one is a question, never a wildcard. */
	if (r->host_source > INVENTORY_HOST_OBSERVED || (!r->host[0] && r->host_source) ||
	    (r->host_source == INVENTORY_HOST_OBSERVED && !strncmp(r->host, "*.", 2)))
		return false;
	return r->rule >= INVENTORY_RULE_NONE && r->rule < UINT32_MAX;
}

static bool same_key(const struct inventory_record *a, const struct inventory_record *b)
{
	return !strcmp(a->app, b->app) && !strcmp(a->host, b->host) && a->family == b->family &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr)) && a->port == b->port &&
	       a->proto == b->proto && a->verdict == b->verdict && a->rule == b->rule;
}

static uint64_t fnv(uint64_t h, const void *data, size_t size)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < size; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t key_hash(const struct inventory_record *r)
{
	uint64_t h = 0xcbf29ce484222325ull;
	int32_t family = r->family;

	h = fnv(h, r->app, strlen(r->app) + 1);
	h = fnv(h, r->host, strlen(r->host) + 1);
	h = fnv(h, &family, sizeof(family));
	h = fnv(h, r->addr, sizeof(r->addr));
	h = fnv(h, &r->port, sizeof(r->port));
	h = fnv(h, &r->proto, sizeof(r->proto));
	h = fnv(h, &r->verdict, sizeof(r->verdict));
	return fnv(h, &r->rule, sizeof(r->rule));
}

static int inv_reserve(struct inventory *inv, size_t n)
{
	struct inventory_record *r;
	uint64_t *h;
	size_t cap;

	if (n <= inv->cap)
		return 0;
	cap = inv->cap ? inv->cap * 2 : 64;
	if (cap < n)
		cap = n;
	if (cap > inv->max)
		cap = inv->max;
	r = reallocarray(inv->r, cap, sizeof(*r));
	if (!r)
		return -ENOMEM;
	inv->r = r;
	h = reallocarray(inv->hash, cap, sizeof(*h));
	if (!h)
		return -ENOMEM;
	inv->hash = h;
	inv->cap = cap;
	return 0;
}

/* Eviction order (inventory.h): the record evicted first sorts first. */
struct victim {
	size_t i;
	bool protected; /* the most recently seen record of its app */
};

static const struct inventory_record *sort_base;

static int by_app_recent(const void *pa, const void *pb)
{
	const struct inventory_record *a = &sort_base[((const struct victim *)pa)->i];
	const struct inventory_record *b = &sort_base[((const struct victim *)pb)->i];
	int c = strcmp(a->app, b->app);

	if (c)
		return c;
	return a->last_s > b->last_s ? -1 : a->last_s < b->last_s;
}

static int by_eviction(const void *pa, const void *pb)
{
	const struct victim *va = pa, *vb = pb;
	const struct inventory_record *a = &sort_base[va->i], *b = &sort_base[vb->i];
	bool a_allowed = a->verdict == INVENTORY_ALLOWED,
	     b_allowed = b->verdict == INVENTORY_ALLOWED;

	if (va->protected != vb->protected)
		return va->protected ? 1 : -1;
	if (a_allowed != b_allowed)
		return a_allowed ? 1 : -1;
	if ((a->count == 1) != (b->count == 1))
		return a->count == 1 ? -1 : 1;
	if (a->boots != b->boots)
		return a->boots < b->boots ? -1 : 1;
	if (a->last_s != b->last_s)
		return a->last_s < b->last_s ? -1 : 1;
	return va->i < vb->i ? -1 : va->i > vb->i;
}

/* Make room: evict an eighth of the records (at least one), in the order of inventory.h. */
static int inv_age(struct inventory *inv)
{
	_cleanup_free_ struct victim *v = calloc(inv->n, sizeof(*v));
	_cleanup_free_ bool *gone = calloc(inv->n, sizeof(*gone));
	size_t k = inv->max / 8 ? inv->max / 8 : 1, out = 0;

	if (!v || !gone)
		return -ENOMEM;
	for (size_t i = 0; i < inv->n; i++)
		v[i].i = i;
	sort_base = inv->r;
	qsort(v, inv->n, sizeof(*v), by_app_recent);
	for (size_t i = 0; i < inv->n; i++)
		v[i].protected = i == 0 || strcmp(inv->r[v[i].i].app, inv->r[v[i - 1].i].app);
	qsort(v, inv->n, sizeof(*v), by_eviction);
	if (k > inv->n)
		k = inv->n;
	for (size_t i = 0; i < k; i++)
		gone[v[i].i] = true;
	for (size_t i = 0; i < inv->n; i++) {
		if (gone[i])
			continue;
		inv->r[out] = inv->r[i];
		inv->hash[out] = inv->hash[i];
		out++;
	}
	inv->evicted += inv->n - out;
	inv->n = out;
	return 0;
}

int inventory_set_max(struct inventory *inv, size_t max_records)
{
	if (max_records < INVENTORY_MIN_RECORDS || max_records > INVENTORY_MAX_RECORDS)
		return -EINVAL;
	inv->max = max_records;
	while (inv->n > inv->max) {
		int r = inv_age(inv);

		if (r < 0)
			return r;
	}
	return 0;
}

int inventory_add(struct inventory *inv, const struct inventory_record *seen)
{
	struct inventory_record *r;
	uint8_t source;
	uint64_t h;
	int e;

	if (!inventory_record_valid(seen))
		return -EINVAL;
	source = seen->host[0] && !seen->host_source ? INVENTORY_HOST_POLICY : seen->host_source;
	h = key_hash(seen);
	for (size_t i = 0; i < inv->n; i++) {
		if (inv->hash[i] != h || !same_key(&inv->r[i], seen))
			continue;
		r = &inv->r[i];
		r->count =
		    seen->count > UINT64_MAX - r->count ? UINT64_MAX : r->count + seen->count;
		if (seen->last_s > r->last_s)
			r->last_s = seen->last_s;
		if (seen->last_s < r->first_s)
			r->first_s = seen->last_s;
		r->host_source = source; /* the last flow's */
		if (seen->boot_id[0] && strcmp(seen->boot_id, r->boot_id)) {
			if (r->boots < UINT32_MAX)
				r->boots++;
			snprintf(r->boot_id, sizeof(r->boot_id), "%s", seen->boot_id);
		}
		return 0;
	}
	if (!seen->count)
		return 0; /* seen, but no flow to count: no record to start */
	if (inv->n == inv->max) {
		e = inv_age(inv);
		if (e < 0)
			return e;
	}
	e = inv_reserve(inv, inv->n + 1);
	if (e < 0)
		return e;
	r = &inv->r[inv->n];
	*r = *seen;
	r->host_source = source;
	r->first_s = seen->last_s;
	r->boots = 1;
	inv->hash[inv->n++] = h;
	return 0;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

#define JSON_PUT(o, k, v) json_object_object_add((o), (k), (v))

struct json_object *inventory_record_to_json(const struct inventory_record *r)
{
	struct json_object *o = json_object_new_object();
	char addr[INET6_ADDRSTRLEN];

	if (!o)
		return NULL;
	inet_ntop(r->family, r->addr, addr, sizeof(addr));
	JSON_PUT(o, "app", json_object_new_string(r->app));
	if (r->host[0]) {
		JSON_PUT(o, "host", json_object_new_string(r->host));
		JSON_PUT(o, "host_source",
			 json_object_new_string(inventory_host_source_name(r->host_source)));
	}
	JSON_PUT(o, "address", json_object_new_string(addr));
	JSON_PUT(o, "port", json_object_new_int(r->port));
	JSON_PUT(o, "proto", json_object_new_string(r->proto == IPPROTO_TCP ? "tcp" : "udp"));
	JSON_PUT(o, "verdict", json_object_new_string(inventory_verdict_name(r->verdict)));
	if (r->rule != INVENTORY_RULE_NONE)
		JSON_PUT(o, "rule", json_object_new_int64(r->rule));
	JSON_PUT(o, "first", json_object_new_int64(r->first_s));
	JSON_PUT(o, "last", json_object_new_int64(r->last_s));
	JSON_PUT(o, "count", json_object_new_uint64(r->count));
	JSON_PUT(o, "boots", json_object_new_int64(r->boots));
	JSON_PUT(o, "boot_id", json_object_new_string(r->boot_id));
	return o;
}

static int get_string(struct json_object *o, const char *key, bool required, const char **ret)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v)) {
		*ret = NULL;
		return required ? -ENOENT : 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	*ret = json_object_get_string(v);
	return strlen(*ret) == (size_t)json_object_get_string_len(v) ? 0 : -EINVAL; /* no NUL */
}

static int get_int(struct json_object *o, const char *key, bool required, int64_t min, int64_t max,
		   int64_t *ret)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v))
		return required ? -ENOENT : 0;
	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < min || x > max)
		return -EINVAL;
	*ret = x;
	return 0;
}

int inventory_record_from_json(struct json_object *o, struct inventory_record *ret, char *reason,
			       size_t reason_size)
{
	struct inventory_record r = {.rule = INVENTORY_RULE_NONE};
	const char *app, *host, *addr, *proto, *verdict, *boot_id, *source;
	int64_t port, rule = INVENTORY_RULE_NONE, first, last, count, boots;
	struct json_object *v;

	if (!json_object_is_type(o, json_type_object))
		return inv_error(reason, reason_size, -EINVAL, "a record is not an object");
	if (get_string(o, "app", true, &app) < 0 || get_string(o, "host", false, &host) < 0 ||
	    get_string(o, "address", true, &addr) < 0 || get_string(o, "proto", true, &proto) < 0 ||
	    get_string(o, "verdict", true, &verdict) < 0 ||
	    get_string(o, "boot_id", true, &boot_id) < 0 ||
	    get_string(o, "host_source", false, &source) < 0)
		return inv_error(reason, reason_size, -EINVAL, "a record lacks a string member");
	if (get_int(o, "port", true, 0, 65535, &port) < 0 ||
	    get_int(o, "rule", false, 0, UINT32_MAX - 1, &rule) < 0 ||
	    get_int(o, "first", true, 0, INT64_MAX, &first) < 0 ||
	    get_int(o, "last", true, first, INT64_MAX, &last) < 0 ||
	    get_int(o, "boots", true, 1, UINT32_MAX, &boots) < 0)
		return inv_error(reason, reason_size, -EINVAL, "a record has a bad number");
	/* count: json-c keeps numbers above INT64_MAX as unsigned. */
	if (!json_object_object_get_ex(o, "count", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 1)
		return inv_error(reason, reason_size, -EINVAL, "a record has a bad count");
	count = json_object_get_int64(v);
	if (strlen(app) >= sizeof(r.app) || (host && strlen(host) >= sizeof(r.host)) ||
	    strlen(boot_id) >= sizeof(r.boot_id))
		return inv_error(reason, reason_size, -EINVAL, "a record has a string too long");
	snprintf(r.app, sizeof(r.app), "%s", app);
	snprintf(r.host, sizeof(r.host), "%s", host ? host : "");
	snprintf(r.boot_id, sizeof(r.boot_id), "%s", boot_id);
	if (inet_pton(AF_INET, addr, r.addr) == 1)
		r.family = AF_INET;
	else if (inet_pton(AF_INET6, addr, r.addr) == 1)
		r.family = AF_INET6;
	else
		return inv_error(reason, reason_size, -EINVAL, "a record has a bad address");
	if (!strcmp(proto, "tcp"))
		r.proto = IPPROTO_TCP;
	else if (!strcmp(proto, "udp"))
		r.proto = IPPROTO_UDP;
	else
		return inv_error(reason, reason_size, -EINVAL, "a record has a bad protocol");
	if (inventory_verdict_parse(verdict, &r.verdict) < 0)
		return inv_error(reason, reason_size, -EINVAL, "a record has a bad verdict");
	/* A host without a source: a file written before sources were recorded (the policy's). */
	r.host_source = host && host[0] ? INVENTORY_HOST_POLICY : INVENTORY_HOST_NONE;
	if (source) {
		if (!strcmp(source, "policy"))
			r.host_source = INVENTORY_HOST_POLICY;
		else if (!strcmp(source, "observed"))
			r.host_source = INVENTORY_HOST_OBSERVED;
		else
			return inv_error(reason, reason_size, -EINVAL,
					 "a record has a bad host_source");
		if (!host || !host[0])
			return inv_error(reason, reason_size, -EINVAL,
					 "a record has a host_source and no host");
	}
	r.port = (uint16_t)port;
	r.rule = rule;
	r.first_s = first;
	r.last_s = last;
	r.count = (uint64_t)count;
	r.boots = (uint32_t)boots;
	if (!inventory_record_valid(&r))
		return inv_error(reason, reason_size, -EINVAL, "a record has a bad app id or host");
	*ret = r;
	return 0;
}

int inventory_format(const struct inventory *inv, char **ret_data, size_t *ret_size)
{
	struct json_object *o = json_object_new_object(), *list = json_object_new_array();
	const char *text;
	char *data;
	size_t len;

	if (!o || !list) {
		json_object_put(o);
		json_object_put(list);
		return -ENOMEM;
	}
	JSON_PUT(o, "format", json_object_new_string(INVENTORY_FORMAT));
	JSON_PUT(o, "version", json_object_new_int(INVENTORY_VERSION));
	for (size_t i = 0; i < inv->n; i++)
		json_object_array_add(list, inventory_record_to_json(&inv->r[i]));
	JSON_PUT(o, "records", list);
	/* One record a line: the file stays readable and diffable. */
	text = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	data = text ? strndup(text, len) : NULL;
	json_object_put(o);
	if (!data)
		return -ENOMEM;
	*ret_data = data;
	*ret_size = len;
	return 0;
}

int inventory_parse(const char *data, size_t size, size_t max_records, struct inventory **ret,
		    char *reason, size_t reason_size)
{
	_cleanup_(json_putp) struct json_object *o = NULL;
	struct json_tokener *tok;
	struct inventory *inv = NULL;
	struct json_object *v, *list;
	enum json_tokener_error jerr;
	size_t n;
	int r;

	if (size > inventory_max_file_bytes(max_records))
		return inv_error(reason, reason_size, -E2BIG, "larger than %zu bytes",
				 inventory_max_file_bytes(max_records));
	if (memchr(data, '\0', size))
		return inv_error(reason, reason_size, -EINVAL, "a NUL byte");
	tok = json_tokener_new_ex(8);
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, data, (int)size);
	jerr = json_tokener_get_error(tok);
	if (o && jerr == json_tokener_success && json_tokener_get_parse_end(tok) < size &&
	    strspn(data + json_tokener_get_parse_end(tok), " \t\r\n") !=
		size - json_tokener_get_parse_end(tok))
		jerr = json_tokener_error_parse_unexpected;
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success)
		return inv_error(reason, reason_size, -EINVAL, "not JSON: %s",
				 json_tokener_error_desc(jerr == json_tokener_success
							     ? json_tokener_error_parse_eof
							     : jerr));
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "format", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), INVENTORY_FORMAT))
		return inv_error(reason, reason_size, -EINVAL, "not a carwall inventory");
	if (!json_object_object_get_ex(o, "version", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) != INVENTORY_VERSION)
		return inv_error(reason, reason_size, -EINVAL, "not version %d", INVENTORY_VERSION);
	if (!json_object_object_get_ex(o, "records", &list) ||
	    !json_object_is_type(list, json_type_array))
		return inv_error(reason, reason_size, -EINVAL, "no records array");
	n = json_object_array_length(list);
	if (n > max_records)
		return inv_error(reason, reason_size, -E2BIG, "%zu records, more than %zu", n,
				 max_records);
	r = inventory_new(max_records, &inv);
	if (r < 0)
		return r;
	r = inv_reserve(inv, n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct inventory_record rec;
		uint64_t h;

		r = inventory_record_from_json(json_object_array_get_idx(list, i), &rec, reason,
					       reason_size);
		if (r < 0)
			break;
		h = key_hash(&rec);
		for (size_t k = 0; k < inv->n; k++)
			if (inv->hash[k] == h && same_key(&inv->r[k], &rec)) {
				r = inv_error(reason, reason_size, -EINVAL,
					      "record %zu repeats a key", i);
				break;
			}
		if (r < 0)
			break;
		inv->r[inv->n] = rec;
		inv->hash[inv->n++] = h;
	}
	if (r < 0) {
		inventory_free(inv);
		return r;
	}
	*ret = inv;
	return 0;
}

int inventory_load_file(const char *path, size_t max_records, struct inventory **ret, char *reason,
			size_t reason_size)
{
	_cleanup_free_ char *data = NULL;
	size_t size = 0;
	int r;

	r = read_file_limited(path, inventory_max_file_bytes(max_records), &data, &size);
	if (r < 0)
		return inv_error(reason, reason_size, r, "%s", strerror(-r));
	return inventory_parse(data, size, max_records, ret, reason, reason_size);
}

int inventory_load(const char *dir, size_t max_records, struct inventory **ret, char *reason,
		   size_t reason_size)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, "%s/%s", dir, INVENTORY_FILE) < 0)
		return -ENOMEM;
	return inventory_load_file(path, max_records, ret, reason, reason_size);
}

int inventory_save(const char *dir, const struct inventory *inv)
{
	_cleanup_free_ char *data = NULL;
	size_t size = 0;
	int r;

	r = inventory_format(inv, &data, &size);
	if (r < 0)
		return r;
	return inventory_write(dir, data, size);
}

int inventory_write(const char *dir, const char *data, size_t size)
{
	return file_replace_durably(dir, INVENTORY_FILE, INVENTORY_TMP_FILE, data, size,
				    fault_hook);
}
