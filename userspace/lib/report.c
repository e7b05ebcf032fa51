// SPDX-License-Identifier: GPL-2.0-only
/* The report input: the events log and the flow inventory read back into flows and a timeline
 * (report.h). */
#include "report.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "fileio.h"
#include "geo.h"
#include "inventory.h"
#include "policy.h"
#include "util.h"

enum raw_kind { RAW_START, RAW_STOP, RAW_POLICY, RAW_DROPPED, RAW_CONSENT };

/* Flow folding: open addressing over indices into in->flows (0: free, else index + 1). */
#define REPORT_FLOW_SLOTS (2 * REPORT_MAX_FLOWS)

struct report_flow_index {
	uint32_t slot[REPORT_FLOW_SLOTS];
};

static struct report_flow_index *flow_index(struct report_input *in)
{
	/* Kept after the raw array's end: allocated once, on the first flow. */
	return (struct report_flow_index *)in->index;
}

int report_input_new(int64_t since_ns, int64_t until_ns, struct report_input **ret)
{
	struct report_input *in = calloc(1, sizeof(*in));

	if (!in)
		return -ENOMEM;
	in->since_ns = since_ns;
	in->until_ns = until_ns;
	*ret = in;
	return 0;
}

static void raw_free(struct report_raw *r)
{
	free(r->a);
	free(r->b);
	free(r->c);
	free(r->d);
	free(r->e);
}

void report_input_free(struct report_input *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n_flows; i++) {
		struct report_flow *f = &in->flows[i];

		free(f->app);
		free(f->dst);
		free(f->host);
		free(f->proto);
		free(f->rule);
	}
	free(in->flows);
	for (size_t i = 0; i < in->n_policies; i++) {
		struct report_policy *p = &in->policies[i];

		free(p->state);
		free(p->sha256);
		free(p->path);
		free(p->bundle_id);
		free(p->why);
	}
	free(in->policies);
	free(in->gaps);
	for (size_t i = 0; i < in->n_dropped; i++)
		free(in->dropped[i].app);
	free(in->dropped);
	for (size_t i = 0; i < in->n_consent; i++) {
		free(in->consent[i].name);
		free(in->consent[i].state);
	}
	free(in->consent);
	for (size_t i = 0; i < in->n_raw; i++)
		raw_free(&in->raw[i]);
	free(in->raw);
	free(in->index);
	free(in);
}

/* Grow an array to hold one more element (at most max). */
static int grow(void **v, size_t *cap, size_t n, size_t size, size_t max)
{
	size_t c;
	void *p;

	if (n < *cap)
		return 0;
	if (n >= max)
		return -E2BIG;
	c = *cap ? 2 * *cap : 64;
	if (c > max)
		c = max;
	p = reallocarray(*v, c, size);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

/* ---- time -------------------------------------------------------------------------------------- */

int report_time_parse(const char *s, int64_t *ret_ns)
{
	/* "YYYY-MM-DDTHH:MM:SS" then an optional fraction of 1 to 9 digits, then "Z". */
	char whole[POLICY_TIME_LEN + 1];
	int64_t secs, frac = 0;
	size_t len, digits = 0;
	const char *p;

	if (!s)
		return -EINVAL;
	len = strlen(s);
	if (len < POLICY_TIME_LEN || s[len - 1] != 'Z')
		return -EINVAL;
	memcpy(whole, s, POLICY_TIME_LEN - 1);
	whole[POLICY_TIME_LEN - 1] = 'Z';
	whole[POLICY_TIME_LEN] = '\0';
	if (policy_time_parse(whole, &secs) < 0)
		return -EINVAL;
	p = s + POLICY_TIME_LEN - 1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
			frac = frac * 10 + (*p - '0');
		if (!digits)
			return -EINVAL;
		for (size_t i = digits; i < 9; i++)
			frac *= 10;
	}
	if (p != s + len - 1)
		return -EINVAL;
	if (secs > INT64_MAX / 1000000000 - 1)
		return -ERANGE; /* past 2262: not a time of this log */
	*ret_ns = secs * 1000000000 + frac;
	return 0;
}

int report_duration_parse(const char *s, int64_t *ret_ns)
{
	static const struct {
		char unit;
		int64_t secs;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 } };
	int64_t n = 0, mult = 1;
	const char *p = s;

	if (!s || !(*p >= '0' && *p <= '9'))
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > 100LL * 366 * 86400)
			return -ERANGE; /* a hundred years at most */
	}
	if (*p) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(units) && units[i].unit != *p; i++)
			;
		if (i == ARRAY_SIZE(units) || p[1])
			return -EINVAL;
		mult = units[i].secs;
	}
	if (n * mult > 100LL * 366 * 86400)
		return -ERANGE;
	*ret_ns = n * mult * 1000000000;
	return 0;
}

/* ---- one record ------------------------------------------------------------------------------- */

/* A string member, bounded; NULL when absent, null, not a string or too long (*bad set). */
static const char *member_str(struct json_object *o, const char *key, bool *bad)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	if (!json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) > REPORT_MAX_STR ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		*bad = true; /* not a string, too long, or with a NUL inside */
		return NULL;
	}
	return json_object_get_string(v);
}

/* An integer member in [min, max]; dflt when absent or null; *bad when out of range. */
static int64_t member_int(struct json_object *o, const char *key, int64_t min, int64_t max,
			  int64_t dflt, bool *bad)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return dflt;
	if (!json_object_is_type(v, json_type_int)) {
		*bad = true;
		return dflt;
	}
	n = json_object_get_int64(v);
	if (n < min || n > max) {
		*bad = true;
		return dflt;
	}
	return n;
}

static int member_time(struct json_object *o, const char *key, int64_t *ret, bool *bad)
{
	const char *s = member_str(o, key, bad);

	if (!s)
		return -ENOENT;
	if (report_time_parse(s, ret) < 0) {
		*bad = true;
		return -EINVAL;
	}
	return 0;
}

static uint64_t flow_hash(const char *app, const char *dst, unsigned port, const char *proto,
			  enum report_verdict v, const char *rule)
{
	const char *parts[] = { app ? app : "\x01", dst, proto, rule };
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		for (const char *p = parts[i]; *p; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;
	}
	h = (h ^ port) * 1099511628211ull;
	return (h ^ (uint64_t)v) * 1099511628211ull;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* A flow folded into the flows read so far: the same key again adds its count and widens its
 * times. -EINVAL past REPORT_MAX_FLOWS, -ENOMEM. */
static int fold_flow(struct report_input *in, const char *app, const char *dst, const char *host,
		     unsigned port, const char *proto, enum report_verdict v, const char *rule,
		     int64_t rule_index, uint64_t count, int64_t first, int64_t last)
{
	struct report_flow *f;
	uint64_t h;
	size_t s;
	int r;

	if (!in->index) {
		in->index = calloc(1, sizeof(struct report_flow_index));
		if (!in->index)
			return -ENOMEM;
	}
	h = flow_hash(app, dst, port, proto, v, rule);
	for (s = h % REPORT_FLOW_SLOTS;; s = (s + 1) % REPORT_FLOW_SLOTS) {
		uint32_t i = flow_index(in)->slot[s];

		if (!i)
			break;
		f = &in->flows[i - 1];
		if (str_eq(f->app, app) && !strcmp(f->dst, dst) && f->port == port &&
		    !strcmp(f->proto, proto) && f->verdict == v && !strcmp(f->rule, rule)) {
			/* The same flow again: counts added (saturating), times widened. */
			f->count = count > UINT64_MAX - f->count ? UINT64_MAX : f->count + count;
			if (first < f->first_ns)
				f->first_ns = first;
			if (last > f->last_ns)
				f->last_ns = last;
			if (host && (!f->host || strcmp(f->host, host))) {
				char *c = strdup(host);

				if (!c)
					return -ENOMEM;
				free(f->host);
				f->host = c;
			}
			return 0;
		}
	}
	r = grow((void **)&in->flows, &in->cap_flows, in->n_flows, sizeof(*in->flows),
		 REPORT_MAX_FLOWS);
	if (r < 0)
		return r == -E2BIG ? -EINVAL : r;
	f = &in->flows[in->n_flows];
	*f = (struct report_flow){ .port = port,
				   .verdict = v,
				   .rule_index = rule_index,
				   .count = count,
				   .first_ns = first,
				   .last_ns = last };
	f->app = app ? strdup(app) : NULL;
	f->dst = strdup(dst);
	f->host = host ? strdup(host) : NULL;
	f->proto = strdup(proto);
	f->rule = strdup(rule);
	if ((app && !f->app) || !f->dst || (host && !f->host) || !f->proto || !f->rule) {
		free(f->app);
		free(f->dst);
		free(f->host);
		free(f->proto);
		free(f->rule);
		return -ENOMEM;
	}
	flow_index(in)->slot[s] = (uint32_t)++in->n_flows;
	return 0;
}

static int add_flow(struct report_input *in, struct json_object *o, enum report_verdict v)
{
	bool bad = false;
	const char *app = member_str(o, "app", &bad);
	const char *dst = member_str(o, "dst", &bad);
	const char *host = member_str(o, "host", &bad);
	const char *rule = member_str(o, "rule", &bad);
	struct json_object *proto_obj = json_object_object_get(o, "proto");
	const char *proto = json_object_is_type(proto_obj, json_type_int)
				    ? NULL
				    : member_str(o, "proto", &bad);
	unsigned port = (unsigned)member_int(o, "port", 0, 65535, -1, &bad);
	int64_t rule_index = member_int(o, "rule_index", 0, INT32_MAX, -1, &bad);
	int64_t count = member_int(o, "count", 1, INT64_MAX, 1, &bad);
	int64_t first, last;
	char proto_num[16];

	if (!proto) {
		/* An unnamed protocol is written as its number. */
		int64_t n = member_int(o, "proto", 0, 255, -1, &bad);

		if (n < 0)
			return -EINVAL;
		snprintf(proto_num, sizeof(proto_num), "%d", (int)n);
		proto = proto_num;
	}
	if (member_time(o, "first", &first, &bad) < 0 && member_time(o, "time", &first, &bad) < 0)
		return -EINVAL;
	if (member_time(o, "last", &last, &bad) < 0 || last < first)
		last = first;
	if (bad || !dst || strlen(dst) > 64 || port > 65535 || (app && !policy_app_id_valid(app)))
		return -EINVAL;
	if (!rule)
		rule = "default deny";
	if (!in->log_begins_ns || first < in->log_begins_ns)
		in->log_begins_ns = first;
	if (in->since_ns && last < in->since_ns)
		return 0; /* before the window */
	return fold_flow(in, app, dst, host, port, proto, v, rule, rule_index, (uint64_t)count,
			 first, last);
}

int report_input_add_inventory(struct report_input *in, const struct inventory *inv)
{
	in->has_allowed = true;
	for (size_t i = 0; i < inventory_count(inv); i++) {
		const struct inventory_record *rec = inventory_get(inv, i);
		char dst[INET6_ADDRSTRLEN], rule[32];
		int64_t first, last;
		int r;

		/* Refused and audited flows are the events log's: counted there, once. */
		if (rec->verdict != INVENTORY_ALLOWED)
			continue;
		/* Seconds to ns; the inventory's times are the agent's wall clock (< 2262). */
		if (rec->first_s < 0 || rec->last_s < rec->first_s ||
		    rec->last_s > INT64_MAX / 1000000000 - 1 ||
		    !inet_ntop(rec->family, rec->addr, dst, sizeof(dst))) {
			in->skipped++;
			continue;
		}
		first = rec->first_s * 1000000000;
		last = rec->last_s * 1000000000;
		if (in->since_ns && last < in->since_ns)
			continue; /* before the window */
		if (rec->rule == INVENTORY_RULE_NONE)
			snprintf(rule, sizeof(rule), "allowed");
		else
			snprintf(rule, sizeof(rule), "rule #%lld", (long long)rec->rule);
		r = fold_flow(in, rec->app, dst, rec->host[0] ? rec->host : NULL, rec->port,
			      rec->proto == IPPROTO_TCP ? "tcp" : "udp", REPORT_ALLOWED, rule,
			      rec->rule, rec->count, first, last);
		if (r == -EINVAL)
			in->skipped++; /* past REPORT_MAX_FLOWS */
		else if (r < 0)
			return r;
	}
	return 0;
}

int report_input_read_inventory(struct report_input *in, const char *path, char *reason,
				size_t reason_size)
{
	struct inventory *inv = NULL;
	int r;

	r = inventory_load_file(path, INVENTORY_MAX_RECORDS, &inv, reason, reason_size);
	if (r < 0)
		return r;
	r = report_input_add_inventory(in, inv);
	inventory_free(inv);
	return r;
}

static int dup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

/* A lifecycle record (events.h), kept until finish sorts them. */
static int add_lifecycle(struct report_input *in, struct json_object *o, const char *event)
{
	bool bad = false;
	struct report_raw raw = { .n = -1 };
	const char *s[5] = {};
	int64_t at;
	int r;

	if (!strcmp(event, EVENTS_REC_AGENT_START)) {
		raw.kind = RAW_START;
		s[0] = member_str(o, "version", &bad);
	} else if (!strcmp(event, EVENTS_REC_AGENT_STOP)) {
		raw.kind = RAW_STOP;
	} else if (!strcmp(event, EVENTS_REC_POLICY)) {
		raw.kind = RAW_POLICY;
		s[0] = member_str(o, "state", &bad);
		s[1] = member_str(o, "sha256", &bad);
		s[2] = member_str(o, "path", &bad);
		s[3] = member_str(o, "bundle_id", &bad);
		s[4] = member_str(o, "why", &bad);
		raw.n = member_int(o, "bundle_version", 0, INT64_MAX, -1, &bad);
		raw.flag = json_object_get_boolean(json_object_object_get(o, "signed"));
		if (!s[0])
			return -EINVAL;
	} else if (!strcmp(event, EVENTS_REC_DROPPED)) {
		raw.kind = RAW_DROPPED;
		s[0] = member_str(o, "app", &bad);
		raw.n = member_int(o, "count", 1, INT64_MAX, -1, &bad);
		if (raw.n < 1 || (s[0] && !policy_app_id_valid(s[0])))
			return -EINVAL;
	} else if (!strcmp(event, EVENTS_REC_CONSENT)) {
		raw.kind = RAW_CONSENT;
		s[0] = member_str(o, "switch", &bad);
		s[1] = member_str(o, "state", &bad);
		if (!s[0] || !s[1])
			return -EINVAL;
	} else {
		return -EINVAL; /* a kind this reader does not know */
	}
	if (member_time(o, "time", &at, &bad) < 0 || bad)
		return -EINVAL;
	raw.at_ns = at;
	r = grow((void **)&in->raw, &in->cap_raw, in->n_raw, sizeof(*in->raw), REPORT_MAX_EVENTS);
	if (r < 0)
		return r == -E2BIG ? -EINVAL : r;
	if (dup_opt(s[0], &raw.a) < 0 || dup_opt(s[1], &raw.b) < 0 || dup_opt(s[2], &raw.c) < 0 ||
	    dup_opt(s[3], &raw.d) < 0 || dup_opt(s[4], &raw.e) < 0) {
		raw_free(&raw);
		return -ENOMEM;
	}
	raw.seq = in->n_raw;
	in->raw[in->n_raw++] = raw;
	in->has_lifecycle = true;
	if (!in->log_begins_ns || at < in->log_begins_ns)
		in->log_begins_ns = at;
	return 0;
}

int report_input_add_line(struct report_input *in, const char *line, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o = NULL;
	const char *event;
	bool bad = false;
	int r = -EINVAL;

	in->lines++;
	if (len == 0 || len > REPORT_MAX_LINE || memchr(line, '\0', len))
		goto out;
	tok = json_tokener_new_ex(16);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, line, (int)len);
	/* The whole line is one object, nothing after it. */
	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
		  json_tokener_get_parse_end(tok) != len)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object))
		goto out;
	event = member_str(o, "event", &bad);
	if (!event)
		goto out;
	if (!strcmp(event, "refused"))
		r = add_flow(in, o, REPORT_REFUSED);
	else if (!strcmp(event, "audit"))
		r = add_flow(in, o, REPORT_AUDIT);
	else if (!strcmp(event, "allowed"))
		r = -EINVAL; /* not the agent's: allowed flows are the inventory's */
	else
		r = add_lifecycle(in, o, event);
out:
	json_object_put(o);
	if (r == -EINVAL)
		in->skipped++;
	return r;
}

int report_input_add_buffer(struct report_input *in, const char *data, size_t size)
{
	size_t pos = 0;

	while (pos < size) {
		const char *nl = memchr(data + pos, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
		int r;

		if (len) {
			r = report_input_add_line(in, data + pos, len);
			if (r < 0 && r != -EINVAL)
				return r;
		}
		pos += len + 1;
	}
	return 0;
}

static int read_log_file(struct report_input *in, const char *path)
{
	_cleanup_free_ char *data = NULL;
	size_t size;
	int r;

	r = read_file_limited(path, REPORT_MAX_FILE_BYTES, &data, &size);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		in->files_failed++;
		return r == -ENOMEM ? r : 0;
	}
	in->files++;
	return report_input_add_buffer(in, data, size);
}

/* A share's previous file, then its current one. */
static int read_share(struct report_input *in, const char *dir, const char *share)
{
	_cleanup_free_ char *path = NULL, *old = NULL;
	int r;

	if (asprintf(&old, "%s/%s%s", dir, share, EVENTS_OLD_FILE_SUFFIX) < 0)
		return -ENOMEM;
	if (asprintf(&path, "%s/%s%s", dir, share, EVENTS_FILE_SUFFIX) < 0)
		return -ENOMEM;
	r = read_log_file(in, old);
	if (r >= 0)
		r = read_log_file(in, path);
	return r;
}

int report_input_read_state_dir(struct report_input *in, const char *state_dir)
{
	_cleanup_free_ char *dir = NULL, *legacy = NULL, *legacy_old = NULL;
	struct dirent *de;
	bool any = false;
	DIR *d;
	int r = 0;

	if (asprintf(&legacy, "%s/%s", state_dir, EVENTS_LEGACY_LOG_NAME) < 0 ||
	    asprintf(&legacy_old, "%s/%s", state_dir, EVENTS_LEGACY_LOG_OLD_NAME) < 0 ||
	    asprintf(&dir, "%s/%s", state_dir, EVENTS_DIR_NAME) < 0)
		return -ENOMEM;
	if (access(legacy, F_OK) == 0 || access(legacy_old, F_OK) == 0) {
		any = true;
		r = read_log_file(in, legacy_old);
		if (r >= 0)
			r = read_log_file(in, legacy);
		if (r < 0)
			return r;
	}
	d = opendir(dir);
	if (!d)
		return errno == ENOENT && any ? 0 : negative_errno();
	while (r >= 0 && (de = readdir(d))) {
		char share[EVENTS_SHARE_NAME_MAX];
		bool old;

		/* Each share once: by its current file's name, or its previous one's alone. */
		if (events_share_of_file(de->d_name, share, &old) < 0)
			continue;
		if (old) {
			_cleanup_free_ char *cur = NULL;

			if (asprintf(&cur, "%s/%s%s", dir, share, EVENTS_FILE_SUFFIX) < 0) {
				r = -ENOMEM;
				break;
			}
			if (access(cur, F_OK) == 0)
				continue;
		}
		r = read_share(in, dir, share);
	}
	closedir(d);
	return r;
}

/* ---- the timeline ------------------------------------------------------------------------------ */

static int raw_cmp(const void *x, const void *y)
{
	const struct report_raw *a = x, *b = y;

	if (a->at_ns != b->at_ns)
		return a->at_ns < b->at_ns ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

static int add_policy(struct report_input *in, int64_t from, const char *state,
		      struct report_raw *raw)
{
	struct report_policy *p;
	int r = grow((void **)&in->policies, &in->cap_policies, in->n_policies,
		     sizeof(*in->policies), REPORT_MAX_EVENTS + 1);

	if (r < 0)
		return r;
	p = &in->policies[in->n_policies];
	*p = (struct report_policy){ .from_ns = from, .to_ns = in->until_ns, .bundle_version = -1 };
	p->state = strdup(state);
	if (!p->state)
		return -ENOMEM;
	if (raw) {
		/* Taken from the raw record, which is freed without them. */
		p->sha256 = TAKE_PTR(raw->b);
		p->path = TAKE_PTR(raw->c);
		p->bundle_id = TAKE_PTR(raw->d);
		p->why = TAKE_PTR(raw->e);
		p->bundle_version = raw->n;
		p->is_signed = raw->flag;
	}
	if (in->n_policies)
		in->policies[in->n_policies - 1].to_ns = from;
	in->n_policies++;
	return 0;
}

static int add_gap(struct report_input *in, int64_t from, int64_t to, bool clean)
{
	int r = grow((void **)&in->gaps, &in->cap_gaps, in->n_gaps, sizeof(*in->gaps),
		     REPORT_MAX_EVENTS);

	if (r < 0)
		return r;
	in->gaps[in->n_gaps++] = (struct report_gap){ .from_ns = from, .to_ns = to, .clean = clean };
	return 0;
}

static int add_mark(struct report_mark **v, size_t *n, size_t *cap, struct report_raw *raw)
{
	int r = grow((void **)v, cap, *n, sizeof(**v), REPORT_MAX_EVENTS);

	if (r < 0)
		return r;
	(*v)[*n] = (struct report_mark){ .at_ns = raw->at_ns, .count = raw->n > 0 ? (uint64_t)raw->n : 0 };
	if (raw->kind == RAW_DROPPED) {
		(*v)[*n].app = TAKE_PTR(raw->a);
	} else {
		(*v)[*n].name = TAKE_PTR(raw->a);
		(*v)[*n].state = TAKE_PTR(raw->b);
	}
	(*n)++;
	return 0;
}

static int flow_cmp(const void *x, const void *y)
{
	const struct report_flow *a = x, *b = y;
	int c;

	if (!a->app != !b->app)
		return a->app ? -1 : 1; /* flows below the guards last */
	if (a->app && (c = strcmp(a->app, b->app)))
		return c;
	if (a->verdict != b->verdict)
		return a->verdict < b->verdict ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	if ((c = strcmp(a->dst, b->dst)))
		return c;
	return (a->port > b->port) - (a->port < b->port);
}

/*
 * The lifecycle records in time order make the intervals: a "policy" record closes the policy
 * before it; a start with no stop since the agent's last record means that agent ended without
 * one (its gap begins at the latest at that record); a stop opens a gap until the next start.
 */
int report_input_finish(struct report_input *in)
{
	bool running = false, stopped = false;
	int64_t last_at = 0, stop_at = 0;
	int64_t evidence_ns = INT64_MAX; /* the first flow or record other than a start */
	int r = 0;

	if (in->n_raw)
		qsort(in->raw, in->n_raw, sizeof(*in->raw), raw_cmp);
	for (size_t i = 0; i < in->n_flows; i++) {
		/* An allowed flow is the inventory's, whose times are whole seconds: it was seen
		 * at the latest at the end of its first second. */
		int64_t first = in->flows[i].first_ns +
				(in->flows[i].verdict == REPORT_ALLOWED ? 999999999 : 0);

		if (first < evidence_ns)
			evidence_ns = first;
	}
	for (size_t i = 0; i < in->n_raw; i++)
		if (in->raw[i].kind != RAW_START && in->raw[i].at_ns < evidence_ns)
			evidence_ns = in->raw[i].at_ns;
	for (size_t i = 0; i < in->n_raw && r >= 0; i++) {
		struct report_raw *raw = &in->raw[i];

		/* What was in force before the first policy record of the log is not known. */
		if (!in->n_policies && raw->kind == RAW_POLICY && evidence_ns < raw->at_ns)
			r = add_policy(in, evidence_ns, "unknown", NULL);
		if (r < 0)
			break;
		switch (raw->kind) {
		case RAW_START:
			if (running)
				r = add_gap(in, last_at, raw->at_ns, false);
			else if (stopped)
				r = add_gap(in, stop_at, raw->at_ns, true);
			running = true;
			stopped = false;
			break;
		case RAW_STOP:
			running = false;
			stopped = true;
			stop_at = raw->at_ns;
			break;
		case RAW_POLICY:
			r = add_policy(in, raw->at_ns, raw->a, raw);
			break;
		case RAW_DROPPED:
			r = add_mark(&in->dropped, &in->n_dropped, &in->cap_dropped, raw);
			break;
		case RAW_CONSENT:
			r = add_mark(&in->consent, &in->n_consent, &in->cap_consent, raw);
			break;
		}
		last_at = raw->at_ns;
	}
	if (r >= 0 && stopped)
		r = add_gap(in, stop_at, in->until_ns, true); /* not running when the report is made */
	if (r >= 0 && !in->n_policies && evidence_ns != INT64_MAX)
		r = add_policy(in, evidence_ns, "unknown", NULL);
	for (size_t i = 0; i < in->n_raw; i++)
		raw_free(&in->raw[i]);
	free(in->raw);
	in->raw = NULL;
	in->n_raw = in->cap_raw = 0;
	free(in->index);
	in->index = NULL;
	if (in->n_flows)
		qsort(in->flows, in->n_flows, sizeof(*in->flows), flow_cmp);
	return r;
}

/* ---- countries and the home region -------------------------------------------------------------- */

int report_region_parse(const char *list, const char *source, struct report_region *r)
{
	const char *p = list;

	memset(r, 0, sizeof(*r));
	snprintf(r->source, sizeof(r->source), "%s", source);
	while (*p) {
		size_t len;

		if (*p == ',' || *p == ' ' || *p == '\t') {
			p++;
			continue;
		}
		len = strcspn(p, ", \t");
		if (len != 2 || !((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') ||
		    !((p[1] | 0x20) >= 'a' && (p[1] | 0x20) <= 'z'))
			return -EINVAL;
		if (r->n == REPORT_MAX_HOME)
			return -E2BIG;
		r->countries[r->n][0] = (char)(p[0] & ~0x20);
		r->countries[r->n][1] = (char)(p[1] & ~0x20);
		r->countries[r->n][2] = '\0';
		r->n++;
		p += len;
	}
	return r->n ? 0 : -EINVAL;
}

bool report_region_has(const struct report_region *r, const char *country)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (!strcmp(r->countries[i], country))
			return true;
	return false;
}

int report_region_from_policy(const struct policy *p, struct report_region *ret)
{
	char countries[POLICY_MAX_GROUP_MEMBERS][3];
	size_t n;
	int r;

	r = geo_home_countries(p, countries, ARRAY_SIZE(countries), &n);
	if (r == -ENOENT)
		return -ENODATA;
	if (r < 0)
		return r;
	if (n > REPORT_MAX_HOME)
		return -E2BIG;
	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < n; i++) {
		ret->countries[i][0] = (char)(countries[i][0] & ~0x20);
		ret->countries[i][1] = (char)(countries[i][1] & ~0x20);
	}
	ret->n = n;
	snprintf(ret->source, sizeof(ret->source), "policy (home-region: %s)",
		 p->residency.home.name);
	return 0;
}

const char *report_rule_justification(const struct policy *p, int64_t index)
{
	for (size_t a = 0; p && index >= 0 && a < p->n_apps; a++)
		for (size_t i = 0; i < p->apps[a].n_rules; i++)
			if (p->apps[a].rules[i].index == (uint64_t)index)
				return p->apps[a].rules[i].cross_border;
	return NULL;
}

int report_geo_lookup(const char *addr, char ret_country[3], void *userdata)
{
	uint8_t bytes[16];
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET, r;

	ret_country[0] = '\0';
	if (inet_pton(family, addr, bytes) != 1)
		return -EINVAL;
	r = geo_lookup(userdata, family, bytes, ret_country, NULL);
	if (r == -ENOENT) {
		ret_country[0] = '\0';
		return 0;
	}
	if (r < 0)
		return r;
	ret_country[0] = (char)(ret_country[0] & ~0x20);
	ret_country[1] = (char)(ret_country[1] & ~0x20);
	return 0;
}

size_t report_set_countries(struct report_input *in, report_lookup_fn lookup, void *userdata,
			    const struct report_region *home, const struct policy *policy)
{
	size_t failed = 0;

	for (size_t i = 0; i < in->n_flows; i++) {
		struct report_flow *f = &in->flows[i];

		f->country[0] = '\0';
		if (lookup && lookup(f->dst, f->country, userdata) < 0) {
			f->country[0] = '\0';
			failed++;
		}
		f->country[2] = '\0';
		if (!f->country[0] || !home || !home->n)
			f->region = REPORT_REGION_UNKNOWN;
		else
			f->region = report_region_has(home, f->country) ? REPORT_REGION_HOME
									: REPORT_REGION_FOREIGN;
		/* Why a cross-border flow may go out: an allowed flow's rule's. A refused flow
		 * (a consent switch off) names the rule it did not get through: no reason to go. */
		f->justification = f->verdict == REPORT_ALLOWED
					   ? report_rule_justification(policy, f->rule_index)
					   : NULL;
	}
	return failed;
}

const char *report_verdict_name(enum report_verdict v)
{
	switch (v) {
	case REPORT_ALLOWED:
		return "allowed";
	case REPORT_AUDIT:
		return "audit";
	case REPORT_REFUSED:
		return "refused";
	default:
		return "unknown";
	}
}

const char *report_region_name(enum report_region_class c)
{
	switch (c) {
	case REPORT_REGION_HOME:
		return "home";
	case REPORT_REGION_FOREIGN:
		return "cross-border";
	default:
		return "unknown";
	}
}
