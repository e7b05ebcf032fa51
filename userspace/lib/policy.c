// SPDX-License-Identifier: GPL-2.0-only
/*
 * Policy format v1 (documented in policies/README.md), read with libyaml's event API.
 *
 * How the parser works:
 *   - next_event() pulls one libyaml event and rejects what the format never allows, wherever it
 *     appears: aliases, anchors, explicit tags, nesting deeper than POLICY_MAX_NESTING. A YAML
 *     syntax error reported by libyaml becomes a policy error here too.
 *   - The schema is walked by recursive descent: parse_document() -> parse_top() ->
 *     parse_sets() / parse_apps() -> parse_app() -> parse_allow() -> parse_rule() -> parse_to(),
 *     parse_ports(), parse_proto(); parse_top() -> parse_bundle() for the optional metadata of
 *     a signed bundle. Each parse_*() of a value starts with the value's first
 *     event current, and returns with its last event current (the scalar itself, or the
 *     SEQUENCE_END / MAPPING_END of a collection).
 *   - Results go straight into the struct policy being built, which is always consistent enough
 *     for policy_free(): an error anywhere just drops it.
 *   - The first problem stops the parse; it is recorded, with the location of the offending
 *     node, in the caller's struct policy_error.
 *   - Set names used in `to` are resolved at the end (resolve_set_refs()), because sets may be
 *     defined after the apps that use them.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#include "carwall.h"
#include "util.h"

_Static_assert(POLICY_MAX_PURPOSES <= CW_MAX_PURPOSES, "a purpose bit per purpose");

/* User text quoted in a message is cut after this many bytes (and "..." appended). */
#define QUOTE_MAX 48
#define QUOTE_SIZE (QUOTE_MAX + sizeof("..."))

struct parser {
	yaml_parser_t yaml;
	bool yaml_ready;
	yaml_event_t event; /* the current event, when have_event */
	bool have_event;
	unsigned depth; /* collections open around the current event */
	const char *data;
	size_t size;
	struct policy *policy; /* being built */
	struct policy_error *error;
	/* Set names used in `to`: policy_dest.set indexes this until resolve_set_refs(). */
	char **set_refs;
	size_t n_set_refs;
	size_t allocated_set_refs;
	/* Text positions (struct policy_span): bit d set while the collection at depth d + 1 is
	 * in flow style; the end of the last scalar or flow collection read; events read. */
	uint32_t flow_bits;
	struct policy_loc last_end;
	uint64_t n_events;
};

/* ---- small helpers -------------------------------------------------------------------------- */

/*
 * Copy user text for a message: one line, at most QUOTE_MAX bytes. Control characters become
 * '?', and a cut never splits a UTF-8 sequence.
 */
static const char *quote(char buf[static QUOTE_SIZE], const char *s, size_t len)
{
	size_t n = len, i;

	if (n > QUOTE_MAX) {
		n = QUOTE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (n < len)
		memcpy(buf + i, "...", sizeof("..."));
	else
		buf[i] = '\0';
	return buf;
}

static const char *quote_str(char buf[static QUOTE_SIZE], const char *s)
{
	return quote(buf, s, strlen(s));
}

static void set_reason(char *reason, size_t reason_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_reason(char *reason, size_t reason_size, const char *fmt, ...)
{
	va_list ap;

	if (!reason || reason_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, reason_size, fmt, ap);
	va_end(ap);
}

/*
 * Make room for item n (0-based) in an array of *allocated items, doubling. NULL: no memory.
 * It starts with one item: most lists of a policy (a rule's `to` and `ports`) hold one or two,
 * and the parsed policy is kept for as long as it is in force.
 */
static void *grow_array(void *array, size_t *allocated, size_t n, size_t size)
{
	size_t want;
	void *a;

	if (n < *allocated)
		return array;
	want = *allocated ? *allocated * 2 : 1;
	if (want <= n)
		want = n + 1;
	if (want > SIZE_MAX / size)
		return NULL;
	a = realloc(array, want * size);
	if (!a)
		return NULL;
	*allocated = want;
	return a;
}

/* Give back the unused end of an array that grow_array() doubled (kept as it is if that fails). */
static void *shrink_array(void *array, size_t n, size_t size)
{
	void *a = n ? realloc(array, n * size) : NULL;

	return a ? a : array;
}

/*
 * The policy's pool: rules' `to` and `ports` arrays, each copied there once its list is parsed,
 * back to back in a few large chunks instead of two small allocations per rule. Parsing and
 * freeing a policy cost fewer calls, and a policy freed gives back whole chunks, not small
 * holes between the chunks of the next one (the agent's memory comes back down after a large
 * policy). Freed with the policy, never item by item.
 */
#define POOL_CHUNK_BYTES (256u << 10)

struct pool_chunk {
	struct pool_chunk *next;
	size_t size, used; /* bytes of data[] */
	max_align_t data[];
};

struct policy_pool {
	struct pool_chunk *chunks; /* the newest first */
};

static void *pool_alloc(struct policy *pol, size_t size)
{
	struct pool_chunk *c;

	size = (size + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
	if (!pol->pool && !(pol->pool = calloc(1, sizeof(*pol->pool))))
		return NULL;
	c = pol->pool->chunks;
	if (!c || c->size - c->used < size) {
		size_t want = size > POOL_CHUNK_BYTES ? size : POOL_CHUNK_BYTES;

		c = malloc(sizeof(*c) + want);
		if (!c)
			return NULL;
		*c = (struct pool_chunk){ .next = pol->pool->chunks, .size = want };
		pol->pool->chunks = c;
	}
	c->used += size;
	return (char *)c->data + c->used - size;
}

/* Move n items of `size` bytes from a malloc()ed array into the pool (the array is freed). */
static void *pool_take(struct policy *pol, void *array, size_t n, size_t size)
{
	void *a = n ? pool_alloc(pol, n * size) : NULL;

	if (!a)
		return array; /* kept where it is: policy_free() tells them apart */
	memcpy(a, array, n * size);
	free(array);
	return a;
}

static bool pool_owns(const struct policy_pool *pool, const void *ptr)
{
	for (const struct pool_chunk *c = pool ? pool->chunks : NULL; c; c = c->next)
		if ((const char *)ptr >= (const char *)c->data &&
		    (const char *)ptr < (const char *)c->data + c->size)
			return true;
	return false;
}

static void pool_free(struct policy_pool *pool)
{
	while (pool && pool->chunks) {
		struct pool_chunk *c = pool->chunks;

		pool->chunks = c->next;
		free(c);
	}
	free(pool);
}

static struct policy_loc loc_of_mark(yaml_mark_t mark)
{
	return (struct policy_loc){ .line = (unsigned)mark.line + 1,
				    .column = (unsigned)mark.column + 1 };
}

/* Location of a byte offset in the input (libyaml gives only an offset for encoding errors). */
static struct policy_loc loc_of_offset(const struct parser *p, size_t offset)
{
	struct policy_loc loc = { .line = 1, .column = 1 };

	if (offset > p->size)
		offset = p->size;
	for (size_t i = 0; i < offset; i++) {
		if (p->data[i] == '\n') {
			loc.line++;
			loc.column = 1;
		} else {
			loc.column++;
		}
	}
	return loc;
}

static bool all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* ---- errors --------------------------------------------------------------------------------- */

static int fail_errno(struct parser *p, int error, struct policy_loc loc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_errno(struct parser *p, int error, struct policy_loc loc, const char *fmt, ...)
{
	va_list ap;

	p->error->loc = loc;
	va_start(ap, fmt);
	vsnprintf(p->error->reason, sizeof(p->error->reason), fmt, ap);
	va_end(ap);
	return error;
}

#define fail(p, loc, ...) fail_errno((p), -EINVAL, (loc), __VA_ARGS__)
#define NO_LOC ((struct policy_loc){ 0 })

static int oom(struct parser *p)
{
	return fail_errno(p, -ENOMEM, NO_LOC, "out of memory");
}

/* ---- events --------------------------------------------------------------------------------- */

static struct policy_loc here(const struct parser *p)
{
	return loc_of_mark(p->event.start_mark);
}

static const char *scalar(const struct parser *p)
{
	return (const char *)p->event.data.scalar.value;
}

static size_t scalar_len(const struct parser *p)
{
	return p->event.data.scalar.length;
}

static bool is_scalar(const struct parser *p)
{
	return p->event.type == YAML_SCALAR_EVENT;
}

/* What YAML's core schema reads as null: ~, null, Null, NULL, or nothing at all, unquoted. */
static bool is_null(const struct parser *p)
{
	const char *s;

	if (!is_scalar(p) || p->event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = scalar(p);
	return scalar_len(p) == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static const char *kind(const struct parser *p)
{
	switch (p->event.type) {
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_SEQUENCE_START_EVENT:
		return "a sequence";
	case YAML_SCALAR_EVENT:
		if (is_null(p))
			return "null";
		if (p->event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return "a quoted string";
		return "a scalar";
	default:
		return "nothing";
	}
}

/* "'apps' must be a mapping, not a sequence", at the current node. */
static int type_error(struct parser *p, const char *what, const char *expected)
{
	return fail(p, here(p), "%s must be %s, not %s", what, expected, kind(p));
}

static int syntax_error(struct parser *p)
{
	const yaml_parser_t *y = &p->yaml;
	const char *problem = y->problem ? y->problem : "invalid YAML";
	struct policy_loc loc;

	switch (y->error) {
	case YAML_MEMORY_ERROR:
		return oom(p);
	case YAML_READER_ERROR: /* bad encoding: libyaml gives a byte offset, not a mark */
		loc = loc_of_offset(p, y->problem_offset);
		if (y->problem_value >= 0)
			return fail(p, loc, "%s (byte 0x%02x)", problem,
				    (unsigned)y->problem_value);
		return fail(p, loc, "%s", problem);
	default:
		loc = loc_of_mark(y->problem_mark);
		if (y->context)
			return fail(p, loc, "%s (%s at line %u, column %u)", problem, y->context,
				    (unsigned)y->context_mark.line + 1,
				    (unsigned)y->context_mark.column + 1);
		return fail(p, loc, "%s", problem);
	}
}

static void set_flow_bit(struct parser *p, bool flow)
{
	if (p->depth < 1 || p->depth > 32)
		return; /* refused just below (POLICY_MAX_NESTING) */
	if (flow)
		p->flow_bits |= 1u << (p->depth - 1);
	else
		p->flow_bits &= ~(1u << (p->depth - 1));
}

/* A collection starts (the current event): where it is (struct policy_span); *ret_events: for
 * span_end(). */
static void span_begin(struct parser *p, struct policy_span *span, struct policy_loc key,
		       uint64_t *ret_events)
{
	*span = (struct policy_span){ .set = true, .key = key, .start = here(p) };
	span->flow = p->event.type == YAML_SEQUENCE_START_EVENT
			 ? p->event.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
			 : p->event.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
	*ret_events = p->n_events;
}

/* The collection ended (the current event is its end): where its text and its content end. */
static void span_end(struct parser *p, struct policy_span *span, uint64_t start_events)
{
	span->end = loc_of_mark(p->event.end_mark);
	if (p->n_events - start_events > 1) /* something between its start and its end */
		span->content_end = span->flow ? span->end : p->last_end;
}

/*
 * Move to the next event. What the format never allows is rejected here, wherever it appears.
 * The schema itself is never deeper than 6 collections, so the nesting limit is only a backstop.
 */
static int next_event(struct parser *p)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;
	char q[QUOTE_SIZE];

	if (p->have_event) {
		yaml_event_delete(&p->event);
		p->have_event = false;
	}
	if (!yaml_parser_parse(&p->yaml, &p->event))
		return syntax_error(p);
	p->have_event = true;
	p->n_events++;

	switch (p->event.type) {
	case YAML_ALIAS_EVENT:
		return fail(p, here(p), "aliases and anchors are not allowed");
	case YAML_SCALAR_EVENT:
		p->last_end = loc_of_mark(p->event.end_mark);
		anchor = p->event.data.scalar.anchor;
		tag = p->event.data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = p->event.data.sequence_start.anchor;
		tag = p->event.data.sequence_start.tag;
		p->depth++;
		set_flow_bit(p, p->event.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE);
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = p->event.data.mapping_start.anchor;
		tag = p->event.data.mapping_start.tag;
		p->depth++;
		set_flow_bit(p, p->event.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		/* A block collection's end mark is where the next token starts: not its text. */
		if (p->depth >= 1 && p->depth <= 32 && (p->flow_bits & (1u << (p->depth - 1))))
			p->last_end = loc_of_mark(p->event.end_mark);
		p->depth--;
		break;
	default:
		break;
	}
	if (anchor)
		return fail(p, here(p), "aliases and anchors are not allowed");
	if (tag)
		return fail(p, here(p), "explicit tags are not allowed ('%s')",
			    quote_str(q, (const char *)tag));
	if (p->depth > POLICY_MAX_NESTING)
		return fail(p, here(p), "nesting is deeper than %d levels (POLICY_MAX_NESTING)",
			    POLICY_MAX_NESTING);
	return 0;
}

/* libyaml allows "\0" in quoted scalars; no string of a policy may contain one. */
static int check_no_nul(struct parser *p, const char *what)
{
	if (strlen(scalar(p)) != scalar_len(p))
		return fail(p, here(p), "%s contains a NUL character", what);
	return 0;
}

/* The current node must be a string (a scalar that is not null). */
static int expect_string(struct parser *p, const char *what)
{
	if (!is_scalar(p) || is_null(p))
		return type_error(p, what, "a string");
	return check_no_nul(p, what);
}

/* ---- mappings and lists --------------------------------------------------------------------- */

/*
 * With a mapping open, move to its next key. Returns 1 with the key (a string) current, 0 at
 * the end of the mapping, or -errno.
 */
static int next_key(struct parser *p)
{
	int r;

	r = next_event(p);
	if (r < 0)
		return r;
	if (p->event.type == YAML_MAPPING_END_EVENT)
		return 0;
	if (!is_scalar(p))
		return fail(p, here(p), "mapping keys must be scalars, not %s", kind(p));
	if (is_null(p))
		return fail(p, here(p), "mapping keys must not be empty or null");
	r = check_no_nul(p, "a mapping key");
	return r < 0 ? r : 1;
}

/*
 * For mappings with fixed keys: which of keys[] the current key is. seen[] remembers where each
 * key was found (line 0: not yet), to report duplicates at their second occurrence.
 */
static int match_key(struct parser *p, const char *const *keys, size_t n_keys,
		     struct policy_loc *seen)
{
	char q[QUOTE_SIZE], expected[256] = "";
	size_t i, n = 0;

	for (i = 0; i < n_keys; i++) {
		if (strcmp(scalar(p), keys[i]) != 0)
			continue;
		if (seen[i].line)
			return fail(p, here(p), "duplicate key '%s' (first at line %u, column %u)",
				    keys[i], seen[i].line, seen[i].column);
		seen[i] = here(p);
		return (int)i;
	}
	for (i = 0; i < n_keys && n < sizeof(expected); i++)
		n += (size_t)snprintf(expected + n, sizeof(expected) - n, "%s%s", i ? ", " : "",
				      keys[i]);
	return fail(p, here(p), "unknown key '%s' (expected %s)",
		    quote(q, scalar(p), scalar_len(p)), expected);
}

/*
 * Iterating a list value: a sequence of strings or, where the format allows it, a single string
 * standing for a list of one.
 */
struct list {
	const char *what;      /* e.g. "'to'", for messages */
	struct policy_loc loc; /* of the whole value */
	bool single;	       /* a single string, not a sequence */
	bool started;
};

static int list_begin(struct parser *p, struct list *l, const char *what, bool allow_single)
{
	*l = (struct list){ .what = what, .loc = here(p) };
	if (p->event.type == YAML_SEQUENCE_START_EVENT)
		return 0;
	if (allow_single && is_scalar(p) && !is_null(p)) {
		l->single = true;
		return 0;
	}
	return type_error(p, what, allow_single ? "a sequence or a string" : "a sequence");
}

/* Returns 1 with the next element (a string) current, 0 at the end of the list, or -errno. */
static int list_next(struct parser *p, struct list *l)
{
	int r;

	if (l->single) {
		if (l->started)
			return 0;
		l->started = true;
	} else {
		r = next_event(p);
		if (r < 0)
			return r;
		if (p->event.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (!is_scalar(p) || is_null(p))
			return fail(p, here(p), "elements of %s must be strings, not %s", l->what,
				    kind(p));
	}
	r = check_no_nul(p, "a list element");
	return r < 0 ? r : 1;
}

/* ---- names ---------------------------------------------------------------------------------- */

static bool digits_and_dots(const char *s)
{
	return strspn(s, "0123456789.") == strlen(s);
}

/* A `to` element is an address or a prefix when it could not be a set name. */
static bool looks_like_address(const char *s)
{
	return strpbrk(s, ":/") || digits_and_dots(s);
}

/* App ids and set names (`what`); set names must not read as addresses. */
static int check_name(struct parser *p, const char *what, bool is_set)
{
	const char *s = scalar(p);
	char q[QUOTE_SIZE];

	if (scalar_len(p) > POLICY_MAX_ID_LEN)
		return fail(p, here(p), "%s '%s' is longer than %d characters (POLICY_MAX_ID_LEN)",
			    what, quote_str(q, s), POLICY_MAX_ID_LEN);
	if (!policy_app_id_valid(s))
		return fail(
			p, here(p),
			"invalid %s '%s': use letters, digits, '.', '_' and '-', starting with a "
			"letter or a digit",
			what, quote_str(q, s));
	if (is_set && digits_and_dots(s))
		return fail(p, here(p),
			    "invalid %s '%s': it reads as an address; use a letter in it", what,
			    quote_str(q, s));
	if (is_set && strchr(s, '.'))
		return fail(p, here(p),
			    "invalid %s '%s': a '.' makes it read as a host name; use '-' or '_'",
			    what, quote_str(q, s));
	return 0;
}

/* The current scalar, a host name, into *h (its name allocated). */
static int parse_host(struct parser *p, struct policy_host *h)
{
	char reason[sizeof(p->error->reason)], buf[POLICY_MAX_HOST_LEN + 1];
	bool wildcard;

	if (policy_host_parse(scalar(p), buf, &wildcard, reason, sizeof(reason)) < 0)
		return fail(p, here(p), "%s", reason);
	*h = (struct policy_host){ .wildcard = wildcard, .loc = here(p), .name = strdup(buf) };
	if (!h->name)
		return oom(p);
	return 0;
}

/* ---- version -------------------------------------------------------------------------------- */

static int parse_version(struct parser *p)
{
	char q[QUOTE_SIZE];

	if (!is_scalar(p) || is_null(p) || p->event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return type_error(p, "'version'", "an integer");
	if (!all_digits(scalar(p), scalar_len(p)))
		return fail(p, here(p), "'version' must be an integer, not '%s'",
			    quote(q, scalar(p), scalar_len(p)));
	if (strcmp(scalar(p), "1") != 0)
		return fail(p, here(p),
			    "unsupported policy version %s; this carwall reads version 1",
			    quote(q, scalar(p), scalar_len(p)));
	return 0;
}

/* `true` or `false`, plain (YAML 1.2's booleans; yes/no/on/off are refused as ambiguous). */
static int parse_bool(struct parser *p, const char *what, bool *ret)
{
	char q[QUOTE_SIZE];

	if (!is_scalar(p) || is_null(p) || p->event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return type_error(p, what, "true or false");
	if (!strcmp(scalar(p), "true"))
		*ret = true;
	else if (!strcmp(scalar(p), "false"))
		*ret = false;
	else
		return fail(p, here(p), "%s must be true or false, not '%s'", what,
			    quote(q, scalar(p), scalar_len(p)));
	return 0;
}

/* ---- bundle metadata ------------------------------------------------------------------------ */

enum {
	META_ID,
	META_VERSION,
	META_TARGET,
	META_NOT_BEFORE,
	META_NOT_AFTER,
	_META_KEY_MAX
};
static const char *const meta_keys[_META_KEY_MAX] = {
	[META_ID] = "id",
	[META_VERSION] = "version",
	[META_TARGET] = "target",
	[META_NOT_BEFORE] = "not-before",
	[META_NOT_AFTER] = "not-after",
};

/* `bundle.id` and `bundle.target`: names with the app id rules, copied into buf. */
static int parse_bundle_name(struct parser *p, const char *what, char buf[POLICY_MAX_ID_LEN + 1])
{
	int r;

	r = expect_string(p, what);
	if (r < 0)
		return r;
	r = check_name(p, what, false);
	if (r < 0)
		return r;
	memcpy(buf, scalar(p), scalar_len(p) + 1);
	return 0;
}

/* `bundle.version`: a plain decimal integer, 1..2^53, no leading zero. */
static int parse_bundle_version(struct parser *p, uint64_t *ret)
{
	const char *s = scalar(p);
	size_t len = scalar_len(p);
	char q[QUOTE_SIZE];
	uint64_t v = 0;

	if (!is_scalar(p) || is_null(p) || p->event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return type_error(p, "'bundle.version'", "an integer");
	if (!all_digits(s, len) || (len > 1 && s[0] == '0'))
		return fail(p, here(p),
			    "'bundle.version' must be an integer without leading zeros, not '%s'",
			    quote(q, s, len));
	for (size_t i = 0; i < len; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > POLICY_BUNDLE_MAX_VERSION)
			break;
	}
	if (v == 0 || v > POLICY_BUNDLE_MAX_VERSION)
		return fail(p, here(p), "'bundle.version' %s is out of range (1-%" PRIu64 ")",
			    quote(q, s, len), (uint64_t)POLICY_BUNDLE_MAX_VERSION);
	*ret = v;
	return 0;
}

static int parse_bundle_time(struct parser *p, const char *what, int64_t *ret)
{
	char q[QUOTE_SIZE];
	int r;

	r = expect_string(p, what);
	if (r < 0)
		return r;
	if (policy_time_parse(scalar(p), ret) < 0)
		return fail(p, here(p),
			    "%s '%s' is not an RFC 3339 UTC time such as 2026-11-01T00:00:00Z",
			    what, quote(q, scalar(p), scalar_len(p)));
	return 0;
}

/* `bundle`: the metadata of a signed bundle; every key is required. */
static int parse_bundle(struct parser *p)
{
	struct policy_bundle_meta *b = &p->policy->bundle;
	struct policy_loc seen[_META_KEY_MAX] = {}, map_loc = here(p);
	int r;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return type_error(p, "'bundle'", "a mapping");
	*b = (struct policy_bundle_meta){ .loc = map_loc };
	while ((r = next_key(p)) > 0) {
		int key = match_key(p, meta_keys, _META_KEY_MAX, seen);

		if (key < 0)
			return key;
		r = next_event(p);
		if (r < 0)
			return r;
		switch (key) {
		case META_ID:
			r = parse_bundle_name(p, "'bundle.id'", b->id);
			break;
		case META_VERSION:
			b->version_loc = here(p);
			r = parse_bundle_version(p, &b->version);
			break;
		case META_TARGET:
			b->target_loc = here(p);
			r = parse_bundle_name(p, "'bundle.target'", b->target);
			break;
		case META_NOT_BEFORE:
			b->not_before_loc = here(p);
			r = parse_bundle_time(p, "'bundle.not-before'", &b->not_before);
			break;
		case META_NOT_AFTER:
			b->not_after_loc = here(p);
			r = parse_bundle_time(p, "'bundle.not-after'", &b->not_after);
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	for (int i = 0; i < _META_KEY_MAX; i++)
		if (!seen[i].line)
			return fail(p, map_loc, "missing required key '%s' in 'bundle'",
				    meta_keys[i]);
	if (b->not_after <= b->not_before)
		return fail(p, b->not_after_loc,
			    "'bundle.not-after' must be later than 'bundle.not-before'");
	p->policy->has_bundle = true;
	return 0;
}

/* ---- data residency ------------------------------------------------------------------------- */

/*
 * A region name (`region:`, `home-region:`) into *ret, lower case: a country code or a group
 * name. Whether it names a known one is checked once the whole file is read
 * (policy_residency_check(): groups may be defined after their use).
 */
static int parse_region(struct parser *p, const char *what, struct policy_region *ret)
{
	char q[QUOTE_SIZE];
	int r;

	r = expect_string(p, what);
	if (r < 0)
		return r;
	if (scalar_len(p) > POLICY_MAX_ID_LEN || !policy_app_id_valid(scalar(p)) ||
	    strchr(scalar(p), '.'))
		return fail(p, here(p),
			    "%s '%s' is no region: give a country code (ISO 3166-1 alpha-2, e.g. "
			    "cn) or the name of a group of 'regions'",
			    what, quote_str(q, scalar(p)));
	for (size_t i = 0; i <= scalar_len(p); i++)
		ret->name[i] = (char)tolower((unsigned char)scalar(p)[i]);
	ret->loc = here(p);
	return 0;
}

/* One `regions:` group: a non-empty sequence of country codes. */
static int parse_region_group(struct parser *p, struct policy_region_group *g)
{
	char what[POLICY_MAX_ID_LEN + 32], q[QUOTE_SIZE];
	size_t allocated = 0;
	struct list l;
	int r;

	snprintf(what, sizeof(what), "region group '%s'", g->name);
	r = list_begin(p, &l, what, false);
	if (r < 0)
		return r;
	while ((r = list_next(p, &l)) > 0) {
		char(*members)[3];

		if (g->n_members >= POLICY_MAX_GROUP_MEMBERS)
			return fail(p, here(p),
				    "too many countries in region group '%s': the limit is %d "
				    "(POLICY_MAX_GROUP_MEMBERS)",
				    g->name, POLICY_MAX_GROUP_MEMBERS);
		if (!policy_country_valid(scalar(p)))
			return fail(p, here(p),
				    "'%s' is no ISO 3166-1 alpha-2 country code (a group holds "
				    "countries, not other groups)",
				    quote_str(q, scalar(p)));
		members = grow_array(g->members, &allocated, g->n_members, sizeof(*g->members));
		if (!members)
			return oom(p);
		g->members = members;
		g->members[g->n_members][0] = (char)tolower((unsigned char)scalar(p)[0]);
		g->members[g->n_members][1] = (char)tolower((unsigned char)scalar(p)[1]);
		g->members[g->n_members++][2] = '\0';
	}
	if (r < 0)
		return r;
	if (g->n_members == 0)
		return fail(p, l.loc, "region group '%s' is empty", g->name);
	return 0;
}

/* `regions:`: a mapping from group names to lists of countries. */
static int parse_regions(struct parser *p)
{
	struct policy_residency *res = &p->policy->residency;
	size_t allocated = 0;
	char q[QUOTE_SIZE];
	int r;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return type_error(p, "'regions'", "a mapping");
	while ((r = next_key(p)) > 0) {
		struct policy_region_group *groups, *g;

		r = check_name(p, "region group name", true);
		if (r < 0)
			return r;
		if (policy_country_valid(scalar(p)) || strcasecmp(scalar(p), "eu") == 0)
			return fail(p, here(p),
				    "region group '%s' would hide %s: choose another name",
				    quote_str(q, scalar(p)),
				    strcasecmp(scalar(p), "eu") == 0 ? "the built-in group 'eu'"
								     : "a country code");
		for (size_t i = 0; i < res->n_groups; i++)
			if (strcasecmp(res->groups[i].name, scalar(p)) == 0)
				return fail(p, here(p),
					    "duplicate region group '%s' (first at line %u, column %u)",
					    res->groups[i].name, res->groups[i].loc.line,
					    res->groups[i].loc.column);
		if (res->n_groups >= POLICY_MAX_REGION_GROUPS)
			return fail(p, here(p),
				    "too many region groups: the limit is %d (POLICY_MAX_REGION_GROUPS)",
				    POLICY_MAX_REGION_GROUPS);
		groups = grow_array(res->groups, &allocated, res->n_groups, sizeof(*res->groups));
		if (!groups)
			return oom(p);
		res->groups = groups;
		g = &res->groups[res->n_groups++];
		*g = (struct policy_region_group){ .loc = here(p), .name = strdup(scalar(p)) };
		if (!g->name)
			return oom(p);
		for (char *c = g->name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		r = next_event(p);
		if (r < 0)
			return r;
		r = parse_region_group(p, g);
		if (r < 0)
			return r;
	}
	return r;
}

/* `residency:` (`strict` or `declared`) and `residency-enforce:` (`home-only` or `off`). */
static int parse_word(struct parser *p, const char *what, const char *yes, const char *no,
		      bool *ret, struct policy_loc *ret_loc)
{
	char q[QUOTE_SIZE];
	int r;

	r = expect_string(p, what);
	if (r < 0)
		return r;
	if (strcmp(scalar(p), yes) && strcmp(scalar(p), no))
		return fail(p, here(p), "%s must be %s or %s, not '%s'", what, yes, no,
			    quote_str(q, scalar(p)));
	*ret = !strcmp(scalar(p), yes);
	*ret_loc = here(p);
	return 0;
}

/* A rule's `cross-border:`: why the rule may send data out of the home region. */
static int parse_cross_border(struct parser *p, struct policy_rule *rule)
{
	int r = expect_string(p, "'cross-border'");

	if (r < 0)
		return r;
	if (scalar_len(p) == 0 || strspn(scalar(p), " \t") == scalar_len(p))
		return fail(p, here(p), "'cross-border' must say why the rule leaves the home region");
	if (scalar_len(p) > POLICY_MAX_CROSS_BORDER_LEN)
		return fail(p, here(p),
			    "'cross-border' is longer than %d bytes (POLICY_MAX_CROSS_BORDER_LEN)",
			    POLICY_MAX_CROSS_BORDER_LEN);
	for (size_t i = 0; i < scalar_len(p); i++)
		if ((unsigned char)scalar(p)[i] < 0x20 || scalar(p)[i] == 0x7f)
			return fail(p, here(p), "'cross-border' must be one line of text");
	rule->cross_border = strdup(scalar(p));
	if (!rule->cross_border)
		return oom(p);
	rule->cross_border_loc = here(p);
	return 0;
}

/* ---- sets ----------------------------------------------------------------------------------- */

static struct policy_set *find_set(const struct policy *pol, const char *name)
{
	for (size_t i = 0; i < pol->n_sets; i++)
		if (strcmp(pol->sets[i].name, name) == 0)
			return &pol->sets[i];
	return NULL;
}

/* The entries of one set: a non-empty sequence of addresses, prefixes and host names. */
static int parse_set(struct parser *p, struct policy_set *set)
{
	char what[POLICY_MAX_ID_LEN + 16], reason[sizeof(p->error->reason)], q[QUOTE_SIZE];
	size_t allocated = 0, allocated_hosts = 0;
	struct list l;
	int r;

	snprintf(what, sizeof(what), "set '%s'", set->name);
	r = list_begin(p, &l, what, false);
	if (r < 0)
		return r;
	while ((r = list_next(p, &l)) > 0) {
		struct policy_prefix *prefixes;

		if (set->n_prefixes + set->n_hosts >= POLICY_MAX_SET_ENTRIES)
			return fail(p, here(p),
				    "too many entries in set '%s': the limit is %d "
				    "(POLICY_MAX_SET_ENTRIES)",
				    set->name, POLICY_MAX_SET_ENTRIES);
		if (!looks_like_address(scalar(p)) && policy_looks_like_host(scalar(p))) {
			struct policy_host *hosts;

			hosts = grow_array(set->hosts, &allocated_hosts, set->n_hosts,
					   sizeof(*set->hosts));
			if (!hosts)
				return oom(p);
			set->hosts = hosts;
			r = parse_host(p, &set->hosts[set->n_hosts]);
			if (r < 0)
				return r;
			set->n_hosts++;
			continue;
		}
		if (!looks_like_address(scalar(p)))
			return fail(
				p, here(p),
				"'%s' is not an IP address or prefix (a set holds addresses and "
				"host names with a '.', not other sets)",
				quote_str(q, scalar(p)));

		prefixes = grow_array(set->prefixes, &allocated, set->n_prefixes,
				      sizeof(*set->prefixes));
		if (!prefixes)
			return oom(p);
		set->prefixes = prefixes;
		if (policy_prefix_parse(scalar(p), &set->prefixes[set->n_prefixes], reason,
					sizeof(reason)) < 0)
			return fail(p, here(p), "%s", reason);
		set->prefixes[set->n_prefixes++].loc = here(p);
	}
	if (r < 0)
		return r;
	if (set->n_prefixes + set->n_hosts == 0)
		return fail(p, l.loc, "set '%s' is empty", set->name);
	return 0;
}

enum { SET_MEMBERS, SET_REGION, _SET_KEY_MAX };
static const char *const set_keys[_SET_KEY_MAX] = {
	[SET_MEMBERS] = "members",
	[SET_REGION] = "region",
};

/* A set written as a mapping: `members` (the entries, as parse_set()) and its `region`. */
static int parse_set_mapping(struct parser *p, struct policy_set *set)
{
	struct policy_loc seen[_SET_KEY_MAX] = {}, map_loc = here(p);
	int r;

	while ((r = next_key(p)) > 0) {
		int key = match_key(p, set_keys, _SET_KEY_MAX, seen);

		if (key < 0)
			return key;
		r = next_event(p);
		if (r < 0)
			return r;
		if (key == SET_MEMBERS)
			r = parse_set(p, set);
		else
			r = parse_region(p, "'region'", &set->region);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!seen[SET_MEMBERS].line)
		return fail(p, map_loc, "missing required key 'members' in set '%s'", set->name);
	return 0;
}

/* `sets`: a mapping from set names to sets. */
static int parse_sets(struct parser *p)
{
	struct policy *pol = p->policy;
	size_t allocated = 0;
	int r;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return type_error(p, "'sets'", "a mapping");
	while ((r = next_key(p)) > 0) {
		const struct policy_set *first;
		struct policy_set *sets, *set;

		r = check_name(p, "set name", true);
		if (r < 0)
			return r;
		first = find_set(pol, scalar(p));
		if (first)
			return fail(p, here(p), "duplicate set '%s' (first at line %u, column %u)",
				    first->name, first->loc.line, first->loc.column);
		if (pol->n_sets >= POLICY_MAX_SETS)
			return fail(p, here(p), "too many sets: the limit is %d (POLICY_MAX_SETS)",
				    POLICY_MAX_SETS);

		sets = grow_array(pol->sets, &allocated, pol->n_sets, sizeof(*pol->sets));
		if (!sets)
			return oom(p);
		pol->sets = sets;
		set = &pol->sets[pol->n_sets++];
		*set = (struct policy_set){ .loc = here(p), .name = strdup(scalar(p)) };
		if (!set->name)
			return oom(p);

		r = next_event(p);
		if (r < 0)
			return r;
		if (p->event.type == YAML_MAPPING_START_EVENT)
			r = parse_set_mapping(p, set);
		else
			r = parse_set(p, set);
		if (r < 0)
			return r;
	}
	return r;
}

/* ---- rules ---------------------------------------------------------------------------------- */

/* Remember a set name used in `to`; *ret_ref indexes p->set_refs until resolve_set_refs(). */
static int add_set_ref(struct parser *p, size_t *ret_ref)
{
	char **refs;

	refs = grow_array(p->set_refs, &p->allocated_set_refs, p->n_set_refs, sizeof(*refs));
	if (!refs)
		return oom(p);
	p->set_refs = refs;
	refs[p->n_set_refs] = strdup(scalar(p));
	if (!refs[p->n_set_refs])
		return oom(p);
	*ret_ref = p->n_set_refs++;
	return 0;
}

/* `to`: addresses, prefixes, host names and set names; a sequence, or a single one. */
static int parse_to(struct parser *p, struct policy_rule *rule)
{
	char reason[sizeof(p->error->reason)], q[QUOTE_SIZE];
	size_t allocated = 0;
	struct list l;
	int r;

	r = list_begin(p, &l, "'to'", true);
	if (r < 0)
		return r;
	while ((r = list_next(p, &l)) > 0) {
		struct policy_dest *to, *d;

		if (rule->n_to >= POLICY_MAX_RULE_DESTS)
			return fail(p, here(p),
				    "too many destinations in one rule: the limit is %d "
				    "(POLICY_MAX_RULE_DESTS)",
				    POLICY_MAX_RULE_DESTS);
		to = grow_array(rule->to, &allocated, rule->n_to, sizeof(*rule->to));
		if (!to)
			return oom(p);
		rule->to = to;
		d = &rule->to[rule->n_to];
		*d = (struct policy_dest){ .loc = here(p) };

		if (looks_like_address(scalar(p))) {
			if (policy_prefix_parse(scalar(p), &d->prefix, reason, sizeof(reason)) < 0)
				return fail(p, here(p), "%s", reason);
			d->prefix.loc = d->loc;
		} else if (policy_looks_like_host(scalar(p))) {
			d->is_host = true;
			r = parse_host(p, &d->host);
			if (r < 0)
				return r;
		} else if (policy_app_id_valid(scalar(p))) {
			d->is_set = true;
			r = add_set_ref(p, &d->set);
			if (r < 0)
				return r;
		} else {
			return fail(p, here(p),
				    "'%s' is neither an IP address or prefix nor a set name",
				    quote_str(q, scalar(p)));
		}
		rule->n_to++;
	}
	if (r < 0)
		return r;
	if (rule->n_to == 0)
		return fail(p, l.loc, "'to' must not be empty");
	rule->to = pool_take(p->policy, rule->to, rule->n_to, sizeof(*rule->to));
	return 0;
}

/* One number of a port or a range; `s` is a piece of the current scalar. */
static int parse_port_number(struct parser *p, const char *s, size_t len, uint16_t *ret)
{
	unsigned long v = 0;
	char q[QUOTE_SIZE];

	if (!all_digits(s, len))
		return fail(p, here(p), "'%s' is not a port (1-65535) or a port range (A-B)",
			    quote(q, scalar(p), scalar_len(p)));
	if (len > 1 && s[0] == '0')
		return fail(p, here(p), "port '%s' has a leading zero", quote(q, s, len));
	if (len > 5)
		return fail(p, here(p), "port %s is out of range (1-65535)", quote(q, s, len));
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v == 0)
		return fail(p, here(p), "port 0 is not a destination port");
	if (v > 65535)
		return fail(p, here(p), "port %lu is out of range (1-65535)", v);
	*ret = (uint16_t)v;
	return 0;
}

/* A port ("443", quoted or not) or a range of ports ("8443-8450"). */
static int parse_port_range(struct parser *p, struct policy_port_range *ret)
{
	const char *s = scalar(p), *dash;
	size_t len = scalar_len(p);
	struct policy_port_range range = { .loc = here(p) };
	int r;

	if (strcmp(s, "any") == 0)
		return fail(p, here(p),
			    "'any' is a value of its own ('ports: any'), not a list element");
	dash = memchr(s, '-', len);
	r = parse_port_number(p, s, dash ? (size_t)(dash - s) : len, &range.first);
	if (r < 0)
		return r;
	range.last = range.first;
	if (dash) {
		r = parse_port_number(p, dash + 1, len - (size_t)(dash - s) - 1, &range.last);
		if (r < 0)
			return r;
		if (range.first > range.last)
			return fail(p, here(p), "port range %u-%u is reversed; did you mean %u-%u?",
				    range.first, range.last, range.last, range.first);
	}
	*ret = range;
	return 0;
}

/* `ports`: ports and ranges, a sequence or a single one; or `any` (the default). */
static int parse_ports(struct parser *p, struct policy_rule *rule)
{
	size_t allocated = 0;
	struct list l;
	int r;

	if (is_scalar(p) && strcmp(scalar(p), "any") == 0 && scalar_len(p) == 3)
		return 0;
	r = list_begin(p, &l, "'ports'", true);
	if (r < 0)
		return r;
	while ((r = list_next(p, &l)) > 0) {
		struct policy_port_range *ports;

		if (rule->n_ports >= POLICY_MAX_RULE_PORTS)
			return fail(p, here(p),
				    "too many ports in one rule: the limit is %d "
				    "(POLICY_MAX_RULE_PORTS)",
				    POLICY_MAX_RULE_PORTS);
		ports = grow_array(rule->ports, &allocated, rule->n_ports, sizeof(*rule->ports));
		if (!ports)
			return oom(p);
		rule->ports = ports;
		r = parse_port_range(p, &rule->ports[rule->n_ports]);
		if (r < 0)
			return r;
		rule->n_ports++;
	}
	if (r < 0)
		return r;
	if (rule->n_ports == 0)
		return fail(p, l.loc,
			    "'ports' must not be empty; for any port, leave it out or write "
			    "'ports: any'");
	rule->ports = pool_take(p->policy, rule->ports, rule->n_ports, sizeof(*rule->ports));
	return 0;
}

static int parse_proto(struct parser *p, struct policy_rule *rule)
{
	static const char *const names[] = {
		[POLICY_PROTO_ANY] = "any",
		[POLICY_PROTO_TCP] = "tcp",
		[POLICY_PROTO_UDP] = "udp",
	};
	char q[QUOTE_SIZE];
	int r;

	r = expect_string(p, "'proto'");
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(scalar(p), names[i]) == 0) {
			rule->proto = (enum policy_proto)i;
			return 0;
		}
	return fail(p, here(p), "unknown protocol '%s'; expected tcp, udp or any",
		    quote_str(q, scalar(p)));
}

/* A purpose or switch name: [a-z][a-z0-9-]*, at most POLICY_MAX_CONSENT_NAME characters. */
static int check_consent_name(struct parser *p, const char *what)
{
	const char *s = scalar(p);
	size_t len = scalar_len(p);
	char q[QUOTE_SIZE];

	if (len == 0 || len > POLICY_MAX_CONSENT_NAME || s[0] < 'a' || s[0] > 'z' ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != len || s[len - 1] == '-')
		return fail(p, here(p),
			    "invalid %s '%s': use 1 to %d lowercase letters, digits and '-', "
			    "starting with a letter and not ending with '-'",
			    what, quote(q, s, len), POLICY_MAX_CONSENT_NAME);
	return 0;
}

/* A rule's `purpose`: one name, checked against `consent:` once the whole file is read. */
static int parse_rule_purpose(struct parser *p, struct policy_rule *rule)
{
	int r = expect_string(p, "'purpose'");

	if (r < 0)
		return r;
	r = check_consent_name(p, "purpose");
	if (r < 0)
		return r;
	rule->purpose_name = strdup(scalar(p));
	if (!rule->purpose_name)
		return oom(p);
	rule->purpose_loc = here(p);
	return 0;
}

enum {
	RULE_TO,
	RULE_PORTS,
	RULE_PROTO,
	RULE_REGION,
	RULE_CROSS_BORDER,
	RULE_PURPOSE,
	_RULE_KEY_MAX
};
static const char *const rule_keys[_RULE_KEY_MAX] = {
	[RULE_TO] = "to",
	[RULE_PORTS] = "ports",
	[RULE_PROTO] = "proto",
	[RULE_REGION] = "region",
	[RULE_CROSS_BORDER] = "cross-border",
	[RULE_PURPOSE] = "purpose",
};

/* One rule: a mapping with `to`, and optionally `ports` and `proto`. */
static int parse_rule(struct parser *p, struct policy_rule *rule)
{
	struct policy_loc seen[_RULE_KEY_MAX] = {}, map_loc = here(p);
	int r;

	while ((r = next_key(p)) > 0) {
		int key = match_key(p, rule_keys, _RULE_KEY_MAX, seen);

		if (key < 0)
			return key;
		r = next_event(p);
		if (r < 0)
			return r;
		switch (key) {
		case RULE_TO:
			r = parse_to(p, rule);
			break;
		case RULE_PORTS:
			r = parse_ports(p, rule);
			break;
		case RULE_PROTO:
			r = parse_proto(p, rule);
			break;
		case RULE_REGION:
			r = parse_region(p, "'region'", &rule->region);
			break;
		case RULE_CROSS_BORDER:
			r = parse_cross_border(p, rule);
			break;
		case RULE_PURPOSE:
			r = parse_rule_purpose(p, rule);
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!seen[RULE_TO].line)
		return fail(p, map_loc, "missing required key 'to' in rule");
	return 0;
}

/* `allow`: a sequence of rules. An empty one (`allow: []`) is allowed: the app may reach nothing. */
static int parse_allow(struct parser *p, struct policy_app *app, struct policy_loc key)
{
	struct policy *pol = p->policy;
	size_t allocated = 0;
	uint64_t events;
	int r;

	if (p->event.type != YAML_SEQUENCE_START_EVENT)
		return type_error(p, "'allow'", "a sequence of rules");
	span_begin(p, &app->allow_span, key, &events);
	for (;;) {
		struct policy_rule *rules, *rule;

		r = next_event(p);
		if (r < 0)
			return r;
		if (p->event.type == YAML_SEQUENCE_END_EVENT) {
			span_end(p, &app->allow_span, events);
			app->rules = shrink_array(app->rules, app->n_rules, sizeof(*app->rules));
			return 0;
		}
		if (p->event.type != YAML_MAPPING_START_EVENT)
			return fail(p, here(p), "each rule in 'allow' must be a mapping, not %s",
				    kind(p));
		if (pol->n_rules >= POLICY_MAX_RULES)
			return fail(p, here(p),
				    "too many rules: the limit is %d for all apps together "
				    "(POLICY_MAX_RULES)",
				    POLICY_MAX_RULES);
		rules = grow_array(app->rules, &allocated, app->n_rules, sizeof(*app->rules));
		if (!rules)
			return oom(p);
		app->rules = rules;
		rule = &app->rules[app->n_rules++];
		*rule = (struct policy_rule){
			.index = pol->n_rules++, .loc = here(p), .purpose = -1
		};
		r = parse_rule(p, rule);
		if (r < 0)
			return r;
	}
}

/* ---- apps ----------------------------------------------------------------------------------- */

static int parse_cgroup(struct parser *p, struct policy_app *app)
{
	const char *s, *c;
	char q[QUOTE_SIZE];
	int r;

	r = expect_string(p, "'cgroup'");
	if (r < 0)
		return r;
	s = scalar(p);
	if (scalar_len(p) == 0)
		return fail(p, here(p), "'cgroup' must not be empty");
	if (scalar_len(p) > POLICY_MAX_CGROUP_LEN)
		return fail(p, here(p),
			    "cgroup path is longer than %d characters (POLICY_MAX_CGROUP_LEN)",
			    POLICY_MAX_CGROUP_LEN);
	if (s[0] == '/')
		return fail(p, here(p),
			    "cgroup path '%s' must be relative to the cgroup root (no leading '/')",
			    quote_str(q, s));
	for (c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return fail(p, here(p), "cgroup path '%s' contains a control character",
				    quote_str(q, s));
	for (c = s;; c++) {
		size_t n = strcspn(c, "/");

		if (n == 0)
			return fail(p, here(p), "cgroup path '%s' has an empty component",
				    quote_str(q, s));
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return fail(p, here(p), "cgroup path '%s' must not contain '.' or '..'",
				    quote_str(q, s));
		c += n;
		if (!*c)
			break;
	}

	app->cgroups[0] = strdup(s);
	if (!app->cgroups[0])
		return oom(p);
	app->cgroup = app->cgroups[0];
	app->n_cgroups = 1;
	app->cgroup_explicit = true;
	return 0;
}

/* AGL's templates, by enum policy_template - 1: the `template:` value, slice and unit name. */
static const struct {
	const char *name;
	const char *unit; /* the unit's cgroup in the slice: this, the app id, ".service" */
} agl_templates[POLICY_AGL_TEMPLATES] = {
	{ "app", "agl-app@" },
	{ "web", "agl-app-web@" },
	{ "flutter", "agl-app-flutter@" },
};

const char *const policy_agl_slices[POLICY_AGL_TEMPLATES] = {
	"system.slice/system-agl\\x2dapp.slice",
	"system.slice/system-agl\\x2dapp\\x2dweb.slice",
	"system.slice/system-agl\\x2dapp\\x2dflutter.slice",
};

const char *policy_template_name(enum policy_template t)
{
	if (t >= POLICY_TEMPLATE_APP && t <= POLICY_TEMPLATE_FLUTTER)
		return agl_templates[t - 1].name;
	return "any";
}

static int parse_template(struct parser *p, struct policy_app *app)
{
	char q[QUOTE_SIZE];
	int r = expect_string(p, "'template'");

	if (r < 0)
		return r;
	for (size_t i = 0; i < POLICY_AGL_TEMPLATES; i++)
		if (!strcmp(scalar(p), agl_templates[i].name)) {
			app->template = (enum policy_template)(i + 1);
			return 0;
		}
	return fail(p, here(p), "unknown template '%s': AGL's are app, web and flutter",
		    quote_str(q, scalar(p)));
}

enum { APP_CGROUP, APP_TEMPLATE, APP_ALLOW, APP_AUDIT, _APP_KEY_MAX };
static const char *const app_keys[_APP_KEY_MAX] = {
	[APP_CGROUP] = "cgroup",
	[APP_TEMPLATE] = "template",
	[APP_ALLOW] = "allow",
	[APP_AUDIT] = "audit",
};

/* One app: a mapping with `allow`, and optionally `cgroup` or `template`, and `audit`. */
static int parse_app(struct parser *p, struct policy_app *app, struct policy_loc *ret_cgroup_loc)
{
	struct policy_loc seen[_APP_KEY_MAX] = {}, map_loc = here(p);
	char what[POLICY_MAX_ID_LEN + 16];
	int r;

	uint64_t events;

	snprintf(what, sizeof(what), "app '%s'", app->id);
	if (p->event.type != YAML_MAPPING_START_EVENT)
		return type_error(p, what, "a mapping");
	span_begin(p, &app->span, app->loc, &events);
	while ((r = next_key(p)) > 0) {
		int key = match_key(p, app_keys, _APP_KEY_MAX, seen);

		if (key < 0)
			return key;
		r = next_event(p);
		if (r < 0)
			return r;
		if (key == APP_CGROUP || key == APP_TEMPLATE) {
			if (seen[APP_CGROUP].line && seen[APP_TEMPLATE].line)
				return fail(p, here(p),
					    "app '%s' has both 'cgroup' and 'template': an explicit "
					    "cgroup names no template",
					    app->id);
			*ret_cgroup_loc = here(p);
			r = key == APP_CGROUP ? parse_cgroup(p, app) : parse_template(p, app);
		} else if (key == APP_AUDIT) {
			r = parse_bool(p, "'audit'", &app->audit);
			app->audit_set = true;
		} else {
			r = parse_allow(p, app, seen[APP_ALLOW]);
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	span_end(p, &app->span, events);
	if (!seen[APP_ALLOW].line)
		return fail(p, map_loc, "missing required key 'allow' in app '%s'", app->id);
	return 0;
}

/*
 * Give the app just parsed the cgroups of its template (all three when it names none) if it has
 * no explicit one, and check that no other app may run in one of them.
 */
static int finish_app(struct parser *p, struct policy_app *app, struct policy_loc cgroup_loc)
{
	char q[QUOTE_SIZE];

	if (!app->n_cgroups) {
		size_t first = app->template ? (size_t)app->template - 1 : 0;
		size_t n = app->template ? 1 : POLICY_AGL_TEMPLATES;

		for (size_t i = 0; i < n; i++) {
			const char *slice = policy_agl_slices[first + i];
			const char *unit = agl_templates[first + i].unit;

			char *path;

			if (asprintf(&path, "%s/%s%s.service", slice, unit, app->id) < 0)
				return oom(p);
			app->cgroups[app->n_cgroups++] = path;
		}
		app->cgroup = app->cgroups[0];
		if (!app->template)
			cgroup_loc = app->loc;
	}
	for (const struct policy_app *other = p->policy->apps; other < app; other++)
		for (size_t i = 0; i < other->n_cgroups; i++)
			for (size_t j = 0; j < app->n_cgroups; j++)
				if (strcmp(other->cgroups[i], app->cgroups[j]) == 0)
					return fail(p, cgroup_loc,
						    "app '%s' has the same cgroup as app '%s' (line "
						    "%u): '%s'",
						    app->id, other->id, other->loc.line,
						    quote_str(q, app->cgroups[j]));
	return 0;
}

/* `apps`: a non-empty mapping from app ids to apps. */
static int parse_apps(struct parser *p, struct policy_loc key)
{
	struct policy *pol = p->policy;
	struct policy_loc map_loc = here(p);
	size_t allocated = 0;
	uint64_t events;
	int r;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return type_error(p, "'apps'", "a mapping");
	span_begin(p, &pol->apps_span, key, &events);
	while ((r = next_key(p)) > 0) {
		struct policy_loc cgroup_loc = {};
		const struct policy_app *first;
		struct policy_app *apps, *app;

		r = check_name(p, "app id", false);
		if (r < 0)
			return r;
		first = policy_find_app(pol, scalar(p));
		if (first)
			return fail(p, here(p), "duplicate app '%s' (first at line %u, column %u)",
				    first->id, first->loc.line, first->loc.column);
		if (pol->n_apps >= POLICY_MAX_APPS)
			return fail(p, here(p), "too many apps: the limit is %d (POLICY_MAX_APPS)",
				    POLICY_MAX_APPS);

		apps = grow_array(pol->apps, &allocated, pol->n_apps, sizeof(*pol->apps));
		if (!apps)
			return oom(p);
		pol->apps = apps;
		app = &pol->apps[pol->n_apps++];
		*app = (struct policy_app){ .loc = here(p), .id = strdup(scalar(p)) };
		if (!app->id)
			return oom(p);

		r = next_event(p);
		if (r < 0)
			return r;
		r = parse_app(p, app, &cgroup_loc);
		if (r < 0)
			return r;
		r = finish_app(p, app, cgroup_loc);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	span_end(p, &pol->apps_span, events);
	/* `apps: {}` is a policy too: no app may reach anything (the guard refuses them). */
	(void)map_loc;
	return 0;
}

/* ---- DNS: resolvers and tunables ------------------------------------------------------------ */

/* `resolvers`: addresses (not prefixes), a sequence or a single one. */
static int parse_resolvers(struct parser *p)
{
	struct policy *pol = p->policy;
	char reason[sizeof(p->error->reason)], q[QUOTE_SIZE];
	static const uint8_t zero[16];
	size_t allocated = 0;
	struct list l;
	int r;

	r = list_begin(p, &l, "'resolvers'", true);
	if (r < 0)
		return r;
	while ((r = list_next(p, &l)) > 0) {
		struct policy_resolver *res;
		struct policy_prefix pfx;

		if (strchr(scalar(p), '/'))
			return fail(p, here(p),
				    "a resolver is one address, not a prefix ('%s')",
				    quote_str(q, scalar(p)));
		if (!looks_like_address(scalar(p)))
			return fail(p, here(p),
				    "'%s' is not an IP address: resolvers are written as addresses",
				    quote_str(q, scalar(p)));
		if (policy_prefix_parse(scalar(p), &pfx, reason, sizeof(reason)) < 0)
			return fail(p, here(p), "%s", reason);
		if (!memcmp(pfx.addr, zero, sizeof(zero)))
			return fail(p, here(p), "'%s' is the unspecified address, not a resolver",
				    quote_str(q, scalar(p)));
		for (size_t i = 0; i < pol->n_resolvers; i++)
			if (pol->resolvers[i].family == pfx.family &&
			    !memcmp(pol->resolvers[i].addr, pfx.addr, sizeof(pfx.addr)))
				return fail(p, here(p),
					    "duplicate resolver '%s' (first at line %u, column %u)",
					    quote_str(q, scalar(p)), pol->resolvers[i].loc.line,
					    pol->resolvers[i].loc.column);
		if (pol->n_resolvers >= POLICY_MAX_RESOLVERS)
			return fail(p, here(p),
				    "too many resolvers: the limit is %d (POLICY_MAX_RESOLVERS)",
				    POLICY_MAX_RESOLVERS);
		res = grow_array(pol->resolvers, &allocated, pol->n_resolvers,
				 sizeof(*pol->resolvers));
		if (!res)
			return oom(p);
		pol->resolvers = res;
		res = &pol->resolvers[pol->n_resolvers++];
		*res = (struct policy_resolver){ .family = pfx.family, .loc = here(p) };
		memcpy(res->addr, pfx.addr, sizeof(res->addr));
	}
	return r;
}

/* A plain decimal integer min..max, no leading zero. */
static int parse_uint(struct parser *p, const char *what, uint32_t min, uint32_t max,
		      uint32_t *ret)
{
	const char *s = scalar(p);
	size_t len = scalar_len(p);
	char q[QUOTE_SIZE];
	uint64_t v = 0;

	if (!is_scalar(p) || is_null(p) || p->event.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return type_error(p, what, "an integer");
	if (!all_digits(s, len) || (len > 1 && s[0] == '0'))
		return fail(p, here(p), "%s must be an integer without leading zeros, not '%s'",
			    what, quote(q, s, len));
	for (size_t i = 0; i < len && v <= max; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	if (v < min || v > max)
		return fail(p, here(p), "%s %s is out of range (%u-%u)", what, quote(q, s, len),
			    min, max);
	*ret = (uint32_t)v;
	return 0;
}

enum { DNS_MIN_TTL, DNS_MAX_TTL, DNS_GRACE, DNS_MAX_LEARNED, _DNS_KEY_MAX };
static const char *const dns_keys[_DNS_KEY_MAX] = {
	[DNS_MIN_TTL] = "min-ttl",
	[DNS_MAX_TTL] = "max-ttl",
	[DNS_GRACE] = "grace",
	[DNS_MAX_LEARNED] = "max-learned-per-app",
};

/* `dns`: how long learned addresses live, and how many an app may hold; every key optional. */
static int parse_dns(struct parser *p)
{
	struct policy_dns *d = &p->policy->dns;
	struct policy_loc seen[_DNS_KEY_MAX] = {};
	int r;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return type_error(p, "'dns'", "a mapping");
	d->loc = here(p);
	while ((r = next_key(p)) > 0) {
		int key = match_key(p, dns_keys, _DNS_KEY_MAX, seen);

		if (key < 0)
			return key;
		r = next_event(p);
		if (r < 0)
			return r;
		switch (key) {
		case DNS_MIN_TTL:
			r = parse_uint(p, "'dns.min-ttl'", 0, POLICY_DNS_TTL_LIMIT, &d->min_ttl_s);
			break;
		case DNS_MAX_TTL:
			seen[DNS_MAX_TTL] = here(p);
			r = parse_uint(p, "'dns.max-ttl'", 0, POLICY_DNS_TTL_LIMIT, &d->max_ttl_s);
			break;
		case DNS_GRACE:
			r = parse_uint(p, "'dns.grace'", 0, POLICY_DNS_GRACE_LIMIT, &d->grace_s);
			break;
		case DNS_MAX_LEARNED:
			r = parse_uint(p, "'dns.max-learned-per-app'", 1,
				       POLICY_DNS_MAX_LEARNED_LIMIT, &d->max_learned_per_app);
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (d->min_ttl_s > d->max_ttl_s)
		return fail(p, seen[DNS_MAX_TTL].line ? seen[DNS_MAX_TTL] : d->loc,
			    "'dns.max-ttl' (%u) is below 'dns.min-ttl' (%u)", d->max_ttl_s,
			    d->min_ttl_s);
	return 0;
}

/* ---- consent: purposes and switches --------------------------------------------------------- */

static int find_purpose(const struct policy *pol, const char *name)
{
	for (size_t i = 0; i < pol->consent.n_purposes; i++)
		if (!strcmp(pol->consent.purposes[i].name, name))
			return (int)i;
	return -1;
}

/* `consent.purposes` or `consent.mandatory`: names, each declared once across both. */
static int parse_purposes(struct parser *p, bool mandatory, size_t *allocated)
{
	struct policy_consent *cs = &p->policy->consent;
	char q[QUOTE_SIZE];
	struct list l;
	int r;

	r = list_begin(p, &l, mandatory ? "'consent.mandatory'" : "'consent.purposes'", false);
	if (r < 0)
		return r;
	while ((r = list_next(p, &l)) > 0) {
		struct policy_purpose *v;
		int dup;

		r = check_consent_name(p, "purpose");
		if (r < 0)
			return r;
		dup = find_purpose(p->policy, scalar(p));
		if (dup >= 0)
			return fail(p, here(p),
				    "duplicate purpose '%s' (first at line %u, column %u)",
				    quote_str(q, scalar(p)), cs->purposes[dup].loc.line,
				    cs->purposes[dup].loc.column);
		if (cs->n_purposes >= POLICY_MAX_PURPOSES)
			return fail(p, here(p),
				    "too many purposes: the limit is %d (POLICY_MAX_PURPOSES)",
				    POLICY_MAX_PURPOSES);
		v = grow_array(cs->purposes, allocated, cs->n_purposes, sizeof(*cs->purposes));
		if (!v)
			return oom(p);
		cs->purposes = v;
		v = &cs->purposes[cs->n_purposes];
		*v = (struct policy_purpose){ .mandatory = mandatory, .loc = here(p),
					      .name = strdup(scalar(p)) };
		if (!v->name)
			return oom(p);
		cs->n_purposes++;
	}
	return r;
}

/* `on` or `off`. */
static int parse_on_off(struct parser *p, const char *what, bool *ret)
{
	char q[QUOTE_SIZE];
	int r = expect_string(p, what);

	if (r < 0)
		return r;
	if (!strcmp(scalar(p), "on"))
		*ret = true;
	else if (!strcmp(scalar(p), "off"))
		*ret = false;
	else
		return fail(p, here(p), "%s must be on or off, not '%s'", what,
			    quote_str(q, scalar(p)));
	return 0;
}

enum { SWITCH_NAME, SWITCH_PURPOSES, SWITCH_DEFAULT, SWITCH_RESET, _SWITCH_KEY_MAX };
static const char *const switch_keys[_SWITCH_KEY_MAX] = {
	[SWITCH_NAME] = "name",
	[SWITCH_PURPOSES] = "purposes",
	[SWITCH_DEFAULT] = "default",
	[SWITCH_RESET] = "reset",
};

/*
 * The purposes switches name, as written: checked once `consent` is read whole (the purposes
 * may come after the switches).
 */
struct switch_purpose_ref {
	char *name;
	struct policy_loc loc;
	size_t sw;
};

struct switch_refs {
	struct switch_purpose_ref *v;
	size_t n, allocated;
};

static void switch_refs_done(struct switch_refs *refs)
{
	for (size_t i = 0; i < refs->n; i++)
		free(refs->v[i].name);
	free(refs->v);
}

/* A switch's `name`: unique among the switches before it (index). */
static int parse_switch_name(struct parser *p, struct policy_switch *sw, size_t index)
{
	const struct policy_consent *cs = &p->policy->consent;
	char q[QUOTE_SIZE];
	int r = expect_string(p, "'name'");

	if (r >= 0)
		r = check_consent_name(p, "switch name");
	if (r < 0)
		return r;
	for (size_t i = 0; i < index; i++)
		if (!strcmp(cs->switches[i].name, scalar(p)))
			return fail(p, here(p),
				    "duplicate switch '%s' (first at line %u, column %u)",
				    quote_str(q, scalar(p)), cs->switches[i].loc.line,
				    cs->switches[i].loc.column);
	sw->name = strdup(scalar(p));
	return sw->name ? 0 : oom(p);
}

/* A switch's `purposes`: names kept in refs, checked once `consent` is read whole. */
static int parse_switch_purposes(struct parser *p, size_t index, struct switch_refs *refs)
{
	struct list l;
	int r = list_begin(p, &l, "'purposes' of a switch", true);

	if (r < 0)
		return r;
	while ((r = list_next(p, &l)) > 0) {
		struct switch_purpose_ref *ref;

		r = check_consent_name(p, "purpose");
		if (r < 0)
			return r;
		ref = grow_array(refs->v, &refs->allocated, refs->n, sizeof(*refs->v));
		if (!ref)
			return oom(p);
		refs->v = ref;
		ref = &refs->v[refs->n];
		*ref = (struct switch_purpose_ref){ .loc = here(p), .sw = index,
						    .name = strdup(scalar(p)) };
		if (!ref->name)
			return oom(p);
		refs->n++;
	}
	return r;
}

static int parse_switch(struct parser *p, struct policy_switch *sw, size_t index,
			struct switch_refs *refs)
{
	struct policy_loc seen[_SWITCH_KEY_MAX] = {};
	char q[QUOTE_SIZE];
	int r;

	while ((r = next_key(p)) > 0) {
		int key = match_key(p, switch_keys, _SWITCH_KEY_MAX, seen);

		if (key < 0)
			return key;
		r = next_event(p);
		if (r < 0)
			return r;
		switch (key) {
		case SWITCH_NAME:
			r = parse_switch_name(p, sw, index);
			break;
		case SWITCH_PURPOSES:
			r = parse_switch_purposes(p, index, refs);
			break;
		case SWITCH_DEFAULT:
			r = parse_on_off(p, "'default'", &sw->default_on);
			break;
		case SWITCH_RESET:
			r = expect_string(p, "'reset'");
			if (r < 0)
				return r;
			if (!strcmp(scalar(p), "persistent"))
				sw->reset = POLICY_RESET_PERSISTENT;
			else if (!strcmp(scalar(p), "drive"))
				sw->reset = POLICY_RESET_DRIVE;
			else
				return fail(p, here(p),
					    "'reset' must be drive or persistent, not '%s'",
					    quote_str(q, scalar(p)));
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	for (size_t k = 0; k < _SWITCH_KEY_MAX; k++)
		if (!seen[k].line)
			return fail(p, sw->loc, "missing required key '%s' in switch",
				    switch_keys[k]);
	return 0;
}

static int parse_switches(struct parser *p, struct switch_refs *refs)
{
	struct policy_consent *cs = &p->policy->consent;
	size_t allocated = 0;
	int r;

	if (p->event.type != YAML_SEQUENCE_START_EVENT)
		return type_error(p, "'consent.switches'", "a sequence of switches");
	for (;;) {
		struct policy_switch *v;

		r = next_event(p);
		if (r < 0)
			return r;
		if (p->event.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (p->event.type != YAML_MAPPING_START_EVENT)
			return fail(p, here(p), "each switch must be a mapping, not %s", kind(p));
		if (cs->n_switches >= POLICY_MAX_SWITCHES)
			return fail(p, here(p),
				    "too many switches: the limit is %d (POLICY_MAX_SWITCHES)",
				    POLICY_MAX_SWITCHES);
		v = grow_array(cs->switches, &allocated, cs->n_switches, sizeof(*cs->switches));
		if (!v)
			return oom(p);
		cs->switches = v;
		v = &cs->switches[cs->n_switches++];
		*v = (struct policy_switch){ .loc = here(p) };
		r = parse_switch(p, v, cs->n_switches - 1, refs);
		if (r < 0)
			return r;
	}
}

/* The purposes each switch names: declared, not mandatory, each once per switch. */
static int resolve_switch_purposes(struct parser *p, const struct switch_refs *refs)
{
	struct policy_consent *cs = &p->policy->consent;
	char q[QUOTE_SIZE];

	for (size_t i = 0; i < refs->n; i++) {
		const struct switch_purpose_ref *ref = &refs->v[i];
		struct policy_switch *sw = &cs->switches[ref->sw];
		int k = find_purpose(p->policy, ref->name);

		if (k < 0)
			return fail(p, ref->loc,
				    "unknown purpose '%s': declare it in 'consent.purposes'",
				    quote_str(q, ref->name));
		if (cs->purposes[k].mandatory)
			return fail(p, ref->loc,
				    "purpose '%s' is mandatory (line %u, column %u): no switch may "
				    "turn it off",
				    quote_str(q, ref->name), cs->purposes[k].loc.line,
				    cs->purposes[k].loc.column);
		if (sw->purposes & (1u << k))
			return fail(p, ref->loc, "switch '%s' names purpose '%s' twice", sw->name,
				    quote_str(q, ref->name));
		sw->purposes |= 1u << k;
	}
	return 0;
}

enum { CONSENT_PURPOSES, CONSENT_MANDATORY, CONSENT_SWITCHES, _CONSENT_KEY_MAX };
static const char *const consent_keys[_CONSENT_KEY_MAX] = {
	[CONSENT_PURPOSES] = "purposes",
	[CONSENT_MANDATORY] = "mandatory",
	[CONSENT_SWITCHES] = "switches",
};

/* `consent`: the purposes (optional and mandatory) and the switches. */
static int parse_consent(struct parser *p)
{
	struct policy_consent *cs = &p->policy->consent;
	struct policy_loc seen[_CONSENT_KEY_MAX] = {};
	_cleanup_(switch_refs_done) struct switch_refs refs = {};
	size_t allocated = 0;
	int r;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return type_error(p, "'consent'", "a mapping");
	cs->loc = here(p);
	while ((r = next_key(p)) > 0) {
		int key = match_key(p, consent_keys, _CONSENT_KEY_MAX, seen);

		if (key < 0)
			return key;
		r = next_event(p);
		if (r < 0)
			return r;
		switch (key) {
		case CONSENT_PURPOSES:
			r = parse_purposes(p, false, &allocated);
			break;
		case CONSENT_MANDATORY:
			r = parse_purposes(p, true, &allocated);
			break;
		case CONSENT_SWITCHES:
			r = parse_switches(p, &refs);
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return resolve_switch_purposes(p, &refs);
}

/* Each rule's `purpose` names a declared purpose. */
static int resolve_rule_purposes(struct parser *p)
{
	struct policy *pol = p->policy;
	char q[QUOTE_SIZE];

	for (size_t a = 0; a < pol->n_apps; a++)
		for (size_t i = 0; i < pol->apps[a].n_rules; i++) {
			struct policy_rule *rule = &pol->apps[a].rules[i];

			if (!rule->purpose_name)
				continue;
			rule->purpose = find_purpose(pol, rule->purpose_name);
			if (rule->purpose < 0)
				return fail(p, rule->purpose_loc,
					    pol->consent.loc.line
						    ? "unknown purpose '%s': declare it in "
						      "'consent.purposes' or 'consent.mandatory'"
						    : "unknown purpose '%s': the policy has no "
						      "'consent:' declaring purposes",
					    quote_str(q, rule->purpose_name));
			free(rule->purpose_name);
			rule->purpose_name = NULL;
		}
	return 0;
}

/* ---- the document --------------------------------------------------------------------------- */

enum {
	TOP_VERSION,
	TOP_SETS,
	TOP_APPS,
	TOP_BUNDLE,
	TOP_AUDIT,
	TOP_RESOLVERS,
	TOP_DNS,
	TOP_HOME_REGION,
	TOP_REGIONS,
	TOP_RESIDENCY,
	TOP_RESIDENCY_ENFORCE,
	TOP_CONSENT,
	_TOP_KEY_MAX
};
static const char *const top_keys[_TOP_KEY_MAX] = {
	[TOP_VERSION] = "version",
	[TOP_SETS] = "sets",
	[TOP_APPS] = "apps",
	[TOP_BUNDLE] = "bundle",
	[TOP_AUDIT] = "audit",
	[TOP_RESOLVERS] = "resolvers",
	[TOP_DNS] = "dns",
	[TOP_HOME_REGION] = "home-region",
	[TOP_REGIONS] = "regions",
	[TOP_RESIDENCY] = "residency",
	[TOP_RESIDENCY_ENFORCE] = "residency-enforce",
	[TOP_CONSENT] = "consent",
};

static int parse_top(struct parser *p)
{
	struct policy_loc seen[_TOP_KEY_MAX] = {}, map_loc = here(p);
	int r;

	if (p->event.type != YAML_MAPPING_START_EVENT)
		return type_error(p, "the top level", "a mapping");
	while ((r = next_key(p)) > 0) {
		int key = match_key(p, top_keys, _TOP_KEY_MAX, seen);

		if (key < 0)
			return key;
		r = next_event(p);
		if (r < 0)
			return r;
		switch (key) {
		case TOP_VERSION:
			r = parse_version(p);
			break;
		case TOP_SETS:
			r = parse_sets(p);
			break;
		case TOP_APPS:
			r = parse_apps(p, seen[TOP_APPS]);
			break;
		case TOP_BUNDLE:
			r = parse_bundle(p);
			break;
		case TOP_AUDIT:
			r = parse_bool(p, "'audit'", &p->policy->audit);
			break;
		case TOP_RESOLVERS:
			r = parse_resolvers(p);
			break;
		case TOP_DNS:
			r = parse_dns(p);
			break;
		case TOP_HOME_REGION:
			r = parse_region(p, "'home-region'", &p->policy->residency.home);
			break;
		case TOP_REGIONS:
			r = parse_regions(p);
			break;
		case TOP_RESIDENCY:
			r = parse_word(p, "'residency'", "strict", "declared",
				       &p->policy->residency.strict,
				       &p->policy->residency.strict_loc);
			break;
		case TOP_RESIDENCY_ENFORCE:
			r = parse_word(p, "'residency-enforce'", "home-only", "off",
				       &p->policy->residency.home_only,
				       &p->policy->residency.home_only_loc);
			break;
		case TOP_CONSENT:
			r = parse_consent(p);
			break;
		}
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!seen[TOP_VERSION].line)
		return fail(p, map_loc, "missing required key 'version'");
	if (!seen[TOP_APPS].line)
		return fail(p, map_loc, "missing required key 'apps'");
	return 0;
}

/* A stream of exactly one document, whose root is the top-level mapping. */
static int parse_document(struct parser *p)
{
	int r;

	r = next_event(p); /* STREAM_START */
	if (r < 0)
		return r;
	r = next_event(p); /* DOCUMENT_START, or STREAM_END when there is no document */
	if (r < 0)
		return r;
	if (p->event.type == YAML_STREAM_END_EVENT)
		return fail(p, NO_LOC, "the policy is empty");
	r = next_event(p); /* the root node */
	if (r < 0)
		return r;
	r = parse_top(p);
	if (r < 0)
		return r;
	r = next_event(p); /* DOCUMENT_END */
	if (r < 0)
		return r;
	r = next_event(p); /* STREAM_END, or another document */
	if (r < 0)
		return r;
	if (p->event.type != YAML_STREAM_END_EVENT)
		return fail(p, here(p), "multiple YAML documents are not allowed");
	return 0;
}

static int cmp_set_ptr(const void *a, const void *b)
{
	const struct policy_set *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Turn the set names used in `to` into indexes into policy.sets, in file order. */
static int resolve_set_refs(struct parser *p)
{
	struct policy *pol = p->policy;
	_cleanup_free_ const struct policy_set **by_name = NULL;
	char q[QUOTE_SIZE];

	if (p->n_set_refs == 0)
		return 0;
	if (pol->n_sets > 0) {
		by_name = calloc(pol->n_sets, sizeof(*by_name));
		if (!by_name)
			return oom(p);
		for (size_t i = 0; i < pol->n_sets; i++)
			by_name[i] = &pol->sets[i];
		qsort(by_name, pol->n_sets, sizeof(*by_name), cmp_set_ptr);
	}

	for (size_t a = 0; a < pol->n_apps; a++)
		for (size_t i = 0; i < pol->apps[a].n_rules; i++) {
			struct policy_rule *rule = &pol->apps[a].rules[i];

			for (size_t j = 0; j < rule->n_to; j++) {
				struct policy_dest *d = &rule->to[j];
				struct policy_set key = { .name = p->set_refs[d->set] };
				const struct policy_set *kp = &key, *const *found = NULL;

				if (!d->is_set)
					continue;
				if (by_name)
					found = bsearch(&kp, by_name, pol->n_sets, sizeof(*by_name),
							cmp_set_ptr);
				if (!found)
					return fail(p, d->loc, "unknown set '%s'",
						    quote_str(q, key.name));
				d->set = (size_t)(*found - pol->sets);
			}
		}
	return 0;
}

static bool loc_before(struct policy_loc a, struct policy_loc b)
{
	return !b.line || a.line < b.line || (a.line == b.line && a.column < b.column);
}

/* Host names are learned only from trusted resolvers: without any, they could never open. */
static int check_hosts_have_resolvers(struct parser *p)
{
	const struct policy *pol = p->policy;
	struct policy_loc first = {};

	if (pol->n_resolvers)
		return 0;
	for (size_t s = 0; s < pol->n_sets; s++)
		if (pol->sets[s].n_hosts && loc_before(pol->sets[s].hosts[0].loc, first))
			first = pol->sets[s].hosts[0].loc;
	for (size_t a = 0; a < pol->n_apps; a++)
		for (size_t i = 0; i < pol->apps[a].n_rules; i++)
			for (size_t j = 0; j < pol->apps[a].rules[i].n_to; j++) {
				const struct policy_dest *d = &pol->apps[a].rules[i].to[j];

				if (d->is_host && loc_before(d->loc, first))
					first = d->loc;
			}
	if (!first.line)
		return 0;
	return fail(p, first,
		    "host names need trusted resolvers to learn their addresses from: add "
		    "'resolvers:' (e.g. [127.0.0.53]) to the policy");
}

static void parser_done(struct parser *p)
{
	if (p->have_event)
		yaml_event_delete(&p->event);
	if (p->yaml_ready)
		yaml_parser_delete(&p->yaml);
	for (size_t i = 0; i < p->n_set_refs; i++)
		free(p->set_refs[i]);
	free(p->set_refs);
	policy_free(p->policy);
}

/* ---- public API ----------------------------------------------------------------------------- */

static void error_init(struct policy_error *e, const char *file)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->file, sizeof(e->file), "%s", file);
}

int policy_parse_buffer(const char *name, const void *data, size_t size, struct policy **ret_policy,
			struct policy_error *ret_error)
{
	struct policy_error scratch;
	_cleanup_(parser_done) struct parser p = { .error = ret_error ? ret_error : &scratch };
	int r;

	if (!name)
		name = "<policy>";
	error_init(p.error, name);
	if (!ret_policy || (!data && size > 0))
		return fail_errno(&p, -EINVAL, NO_LOC, "invalid arguments");
	if (size > POLICY_MAX_FILE_BYTES)
		return fail_errno(
			&p, -EFBIG, NO_LOC,
			"the policy is %zu bytes; the limit is %u bytes (POLICY_MAX_FILE_BYTES)",
			size, POLICY_MAX_FILE_BYTES);
	p.data = data ? data : "";
	p.size = size;

	p.policy = calloc(1, sizeof(*p.policy));
	if (!p.policy)
		return oom(&p);
	p.policy->path = strdup(name);
	if (!p.policy->path)
		return oom(&p);
	p.policy->dns = (struct policy_dns){
		.min_ttl_s = POLICY_DNS_MIN_TTL_DEFAULT,
		.max_ttl_s = POLICY_DNS_MAX_TTL_DEFAULT,
		.grace_s = POLICY_DNS_GRACE_DEFAULT,
		.max_learned_per_app = POLICY_DNS_MAX_LEARNED_DEFAULT,
	};
	if (!yaml_parser_initialize(&p.yaml))
		return oom(&p);
	p.yaml_ready = true;
	yaml_parser_set_input_string(&p.yaml, (const unsigned char *)p.data, size);

	r = parse_document(&p);
	if (r < 0)
		return r;
	r = resolve_set_refs(&p);
	if (r < 0)
		return r;
	r = check_hosts_have_resolvers(&p);
	if (r < 0)
		return r;
	r = policy_residency_check(p.policy, p.error);
	if (r < 0)
		return r;
	r = resolve_rule_purposes(&p);
	if (r < 0)
		return r;
	*ret_policy = TAKE_PTR(p.policy);
	return 0;
}

static int file_error(struct policy_error *e, int error, const char *what)
{
	errno = -error;
	snprintf(e->reason, sizeof(e->reason), "%s: %m", what);
	return error;
}

int policy_parse_file(const char *path, struct policy **ret_policy, struct policy_error *ret_error)
{
	struct policy_error scratch, *e = ret_error ? ret_error : &scratch;
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *data = NULL;
	size_t size = 0, want;
	struct stat st;

	error_init(e, path ? path : "<policy>");
	if (!path || !ret_policy)
		return file_error(e, -EINVAL, "invalid arguments");

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return file_error(e, negative_errno(), "cannot open");
	if (fstat(fd, &st) < 0)
		return file_error(e, negative_errno(), "cannot stat");
	if (!S_ISREG(st.st_mode))
		return file_error(e, -EINVAL, "not a regular file");
	if (st.st_size > (off_t)POLICY_MAX_FILE_BYTES) {
		snprintf(e->reason, sizeof(e->reason),
			 "the file is %jd bytes; the limit is %u bytes (POLICY_MAX_FILE_BYTES)",
			 (intmax_t)st.st_size, POLICY_MAX_FILE_BYTES);
		return -EFBIG;
	}

	/* Read once, never more than fstat() said: a file growing meanwhile is cut there. */
	want = (size_t)st.st_size;
	data = malloc(want ? want : 1);
	if (!data)
		return file_error(e, -ENOMEM, "cannot read");
	while (size < want) {
		ssize_t n = read(fd, data + size, want - size);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return file_error(e, negative_errno(), "cannot read");
		}
		if (n == 0)
			break;
		size += (size_t)n;
	}

	return policy_parse_buffer(path, data, size, ret_policy, ret_error);
}

/* Returns 0, -ENOBUFS when buf was too small (it then holds a cut message), or -EINVAL. */
int policy_error_format(const struct policy_error *e, char *buf, size_t size)
{
	int n;

	if (!e || !buf || size == 0)
		return -EINVAL;
	if (e->loc.line > 0)
		n = snprintf(buf, size, "%s:%u:%u: %s", e->file, e->loc.line, e->loc.column,
			     e->reason);
	else
		n = snprintf(buf, size, "%s: %s", e->file, e->reason);
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= size ? -ENOBUFS : 0;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_sets; i++) {
		free(p->sets[i].name);
		free(p->sets[i].prefixes);
		for (size_t k = 0; k < p->sets[i].n_hosts; k++)
			free(p->sets[i].hosts[k].name);
		free(p->sets[i].hosts);
	}
	free(p->sets);
	for (size_t i = 0; i < p->n_apps; i++) {
		struct policy_app *app = &p->apps[i];

		for (size_t j = 0; j < app->n_rules; j++) {
			policy_rule_clear(p, &app->rules[j]);
			free(app->rules[j].cross_border);
			free(app->rules[j].purpose_name);
		}
		free(app->rules);
		free(app->id);
		for (size_t j = 0; j < app->n_cgroups; j++)
			free(app->cgroups[j]);
	}
	free(p->apps);
	for (size_t i = 0; i < p->consent.n_purposes; i++)
		free(p->consent.purposes[i].name);
	free(p->consent.purposes);
	for (size_t i = 0; i < p->consent.n_switches; i++)
		free(p->consent.switches[i].name);
	free(p->consent.switches);
	free(p->resolvers);
	for (size_t i = 0; i < p->residency.n_groups; i++) {
		free(p->residency.groups[i].name);
		free(p->residency.groups[i].members);
	}
	free(p->residency.groups);
	free(p->path);
	pool_free(p->pool);
	free(p);
}

void policy_rule_clear(struct policy *p, struct policy_rule *rule)
{
	for (size_t k = 0; k < rule->n_to; k++)
		free(rule->to[k].host.name);
	if (!pool_owns(p->pool, rule->to))
		free(rule->to);
	if (!pool_owns(p->pool, rule->ports))
		free(rule->ports);
	rule->to = NULL;
	rule->n_to = 0;
	rule->ports = NULL;
	rule->n_ports = 0;
}

bool policy_app_has_hosts(const struct policy *p, const struct policy_app *app)
{
	for (size_t i = 0; i < app->n_rules; i++)
		for (size_t j = 0; j < app->rules[i].n_to; j++) {
			const struct policy_dest *d = &app->rules[i].to[j];

			if (d->is_host ||
			    (d->is_set && d->set < p->n_sets && p->sets[d->set].n_hosts))
				return true;
		}
	return false;
}

bool policy_app_audit(const struct policy *p, const struct policy_app *app)
{
	return app->audit_set ? app->audit : p->audit;
}

const struct policy_app *policy_find_app(const struct policy *p, const char *id)
{
	if (!p || !id)
		return NULL;
	for (size_t i = 0; i < p->n_apps; i++)
		if (p->apps[i].id && strcmp(p->apps[i].id, id) == 0)
			return &p->apps[i];
	return NULL;
}

const struct policy_switch *policy_find_switch(const struct policy *p, const char *name)
{
	if (!p || !name)
		return NULL;
	for (size_t i = 0; i < p->consent.n_switches; i++)
		if (!strcmp(p->consent.switches[i].name, name))
			return &p->consent.switches[i];
	return NULL;
}

uint32_t policy_consent_deny(const struct policy *p, const bool *on)
{
	uint32_t deny = 0;

	for (size_t i = 0; i < p->consent.n_switches; i++) {
		const struct policy_switch *sw = &p->consent.switches[i];

		if (on ? on[i] : sw->default_on)
			continue;
		for (size_t k = 0; k < p->consent.n_purposes; k++)
			if ((sw->purposes & (1u << k)) && !p->consent.purposes[k].mandatory)
				deny |= CW_PURPOSE_BIT(k);
	}
	return deny;
}

const char *policy_proto_name(enum policy_proto proto)
{
	switch (proto) {
	case POLICY_PROTO_ANY:
		return "any";
	case POLICY_PROTO_TCP:
		return "tcp";
	case POLICY_PROTO_UDP:
		return "udp";
	}
	return "unknown";
}

/* [A-Za-z0-9][A-Za-z0-9._-]*, 1 to POLICY_MAX_ID_LEN characters. Also the rule for set names. */
bool policy_app_id_valid(const char *id)
{
#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	size_t len;

	if (!id || !id[0] || !strchr(ALNUM, id[0]))
		return false;
	len = strlen(id);
	return len <= POLICY_MAX_ID_LEN && strspn(id, ALNUM "._-") == len;
#undef ALNUM
}

int policy_time_parse(const char *s, int64_t *ret)
{
	/* The shape, character by character: D digit, anything else literal. */
	static const char shape[] = "DDDD-DD-DDTDD:DD:DDZ";
	struct tm tm = {}, norm, back;
	const char *end;
	time_t t;

	if (!s || !ret || strlen(s) != POLICY_TIME_LEN)
		return -EINVAL;
	for (size_t i = 0; i < POLICY_TIME_LEN; i++)
		if (shape[i] == 'D' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
			return -EINVAL;
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return -EINVAL;
	norm = tm; /* timegm() normalises its argument */
	t = timegm(&norm);
	if (t == (time_t)-1 || t < 0)
		return -EINVAL;
	/* timegm() normalises 02-30 to 03-02 and :60 to the next minute: refuse those. */
	if (!gmtime_r(&t, &back) || back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon ||
	    back.tm_mday != tm.tm_mday || back.tm_hour != tm.tm_hour || back.tm_min != tm.tm_min ||
	    back.tm_sec != tm.tm_sec)
		return -EINVAL;
	*ret = (int64_t)t;
	return 0;
}

int policy_time_format(int64_t t, char *buf, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!buf || size < POLICY_TIME_LEN + 1)
		return -EINVAL;
	if (t < 0 || t > INT64_C(253402300799) || !gmtime_r(&tt, &tm))
		return -ERANGE;
	if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) != POLICY_TIME_LEN)
		return -ERANGE;
	return 0;
}

/* The prefix length after the '/': decimal digits only, no leading zero, at most max_len. */
static int parse_prefix_len(const char *s, const char *text, unsigned max_len, uint8_t *ret,
			    char *reason, size_t reason_size)
{
	size_t len = strlen(s);
	char q[QUOTE_SIZE], q2[QUOTE_SIZE];
	unsigned v = 0;

	if (len == 0) {
		set_reason(reason, reason_size, "'%s' has no prefix length after '/'",
			   quote_str(q, text));
		return -EINVAL;
	}
	if (!all_digits(s, len) || (len > 1 && s[0] == '0')) {
		set_reason(reason, reason_size, "invalid prefix length '%s' in '%s'",
			   quote_str(q, s), quote_str(q2, text));
		return -EINVAL;
	}
	for (size_t i = 0; i < len && v <= max_len; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > max_len) {
		set_reason(reason, reason_size, "prefix length %s is out of range for %s (0-%u)",
			   quote_str(q, s), max_len == 32 ? "IPv4" : "IPv6", max_len);
		return -EINVAL;
	}
	*ret = (uint8_t)v;
	return 0;
}

static bool is_v4_mapped(const uint8_t a[16])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	return memcmp(a, mapped, sizeof(mapped)) == 0;
}

int policy_prefix_parse(const char *s, struct policy_prefix *ret, char *reason, size_t reason_size)
{
	struct policy_prefix pfx = {};
	char addr[INET6_ADDRSTRLEN], net[INET6_ADDRSTRLEN], q[QUOTE_SIZE];
	uint8_t masked[16];
	const char *slash;
	unsigned max_len;
	size_t alen;
	int r;

	if (!s || !ret) {
		set_reason(reason, reason_size, "invalid arguments");
		return -EINVAL;
	}

	/* The address: everything before the '/', handed to inet_pton(). */
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		goto not_an_address;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (strchr(addr, ':')) {
		pfx.family = AF_INET6;
		max_len = 128;
	} else {
		pfx.family = AF_INET;
		max_len = 32;
	}
	if (inet_pton(pfx.family, addr, pfx.addr) != 1)
		goto not_an_address;

	/* The length: all of the address without a '/'. */
	pfx.len = (uint8_t)max_len;
	if (slash) {
		r = parse_prefix_len(slash + 1, s, max_len, &pfx.len, reason, reason_size);
		if (r < 0)
			return r;
	}

	if (pfx.family == AF_INET6 && is_v4_mapped(pfx.addr) && pfx.len < 96) {
		set_reason(reason, reason_size,
			   "%s is an IPv4-mapped prefix shorter than /96; write it as an IPv4 "
			   "prefix, or as ::ffff:a.b.c.d/96 or longer",
			   quote_str(q, s));
		return -EINVAL;
	}

	/* No bit may be set past the length. */
	memcpy(masked, pfx.addr, sizeof(masked));
	for (unsigned bit = pfx.len; bit < max_len; bit++)
		masked[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	if (memcmp(masked, pfx.addr, max_len / 8) != 0) {
		if (!inet_ntop(pfx.family, masked, net, sizeof(net)))
			net[0] = '\0';
		set_reason(reason, reason_size, "%s has host bits set; did you mean %s/%u?",
			   quote_str(q, s), net, pfx.len);
		return -EINVAL;
	}

	/* ::ffff:a.b.c.d/n is the IPv4 prefix a.b.c.d/(n-96). */
	if (pfx.family == AF_INET6 && is_v4_mapped(pfx.addr)) {
		pfx.family = AF_INET;
		memmove(pfx.addr, pfx.addr + 12, 4);
		memset(pfx.addr + 4, 0, 12);
		pfx.len = (uint8_t)(pfx.len - 96);
	}
	*ret = pfx;
	return 0;

not_an_address:
	if (strchr(s, ':'))
		set_reason(reason, reason_size, "'%s' is not a valid IPv6 address or prefix",
			   quote_str(q, s));
	else if (alen > 0 && strspn(s, "0123456789.") >= alen)
		set_reason(reason, reason_size, "'%s' is not a valid IPv4 address or prefix",
			   quote_str(q, s));
	else
		set_reason(reason, reason_size, "'%s' is not a valid IP address or prefix",
			   quote_str(q, s));
	return -EINVAL;
}

bool policy_looks_like_host(const char *s)
{
	return s && (strchr(s, '.') || strchr(s, '*'));
}

static bool ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

int policy_host_parse(const char *s, char buf[static POLICY_MAX_HOST_LEN + 1], bool *ret_wildcard,
		      char *reason, size_t reason_size)
{
	char q[QUOTE_SIZE];
	size_t len, start = 0, labels = 0, max_labels = POLICY_MAX_HOST_LABELS;
	bool wildcard = false;

	if (!s || !buf || !ret_wildcard) {
		set_reason(reason, reason_size, "invalid arguments");
		return -EINVAL;
	}
	quote_str(q, s);
	len = strlen(s);
	if (len > 1 && s[len - 1] == '.')
		len--; /* a final dot: the name is absolute either way */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80) {
			set_reason(reason, reason_size,
				   "host name '%s' is not ASCII: write an IDNA name in its "
				   "A-label form (xn--...)",
				   q);
			return -EINVAL;
		}
	if (len >= 2 && s[0] == '*' && s[1] == '.') {
		wildcard = true;
		start = 2;
		max_labels--; /* a name below it has one label more */
	}
	if (len > POLICY_MAX_HOST_LEN) {
		set_reason(reason, reason_size, "host name '%s' is longer than %d characters",
			   q, POLICY_MAX_HOST_LEN);
		return -EINVAL;
	}
	for (size_t i = start; i <= len;) {
		size_t j = i, digits = 0;

		while (j < len && s[j] != '.')
			j++;
		if (memchr(s + i, '*', j - i)) {
			set_reason(reason, reason_size,
				   "in '%s', '*' may only be the whole first label, as in "
				   "'*.example.com'",
				   q);
			return -EINVAL;
		}
		if (j == i) {
			set_reason(reason, reason_size, "host name '%s' has an empty label", q);
			return -EINVAL;
		}
		if (j - i > POLICY_MAX_HOST_LABEL) {
			set_reason(reason, reason_size,
				   "host name '%s' has a label longer than %d characters", q,
				   POLICY_MAX_HOST_LABEL);
			return -EINVAL;
		}
		for (size_t k = i; k < j; k++) {
			if (!ldh((unsigned char)s[k])) {
				set_reason(reason, reason_size,
					   "host name '%s' has a character other than letters, "
					   "digits, '-' and '.'",
					   q);
				return -EINVAL;
			}
			digits += s[k] >= '0' && s[k] <= '9';
		}
		if (s[i] == '-' || s[j - 1] == '-') {
			set_reason(reason, reason_size,
				   "host name '%s' has a label that starts or ends with '-'", q);
			return -EINVAL;
		}
		labels++;
		if (j == len && digits == j - i) {
			set_reason(reason, reason_size,
				   "host name '%s' ends with an all-numeric label: it reads as an "
				   "address",
				   q);
			return -EINVAL;
		}
		i = j + 1;
	}
	if (labels > max_labels) {
		set_reason(reason, reason_size,
			   "host name '%s' has more than %zu labels, more than carwall's DNS "
			   "parser can learn",
			   q, max_labels);
		return -EINVAL;
	}
	if (!wildcard && labels < 2) {
		set_reason(reason, reason_size,
			   "host name '%s' has a single label: write the full name", q);
		return -EINVAL;
	}
	for (size_t i = start; i < len; i++)
		buf[i - start] = (char)tolower((unsigned char)s[i]);
	buf[len - start] = '\0';
	*ret_wildcard = wildcard;
	return 0;
}

bool policy_host_matches(const struct policy_host *h, const char *name)
{
	size_t n = strlen(name), k = strlen(h->name);

	if (!h->wildcard)
		return strcmp(name, h->name) == 0;
	return n > k + 1 && name[n - k - 1] == '.' && strcmp(name + n - k, h->name) == 0;
}

bool policy_prefix_overlaps(const struct policy_prefix *a, const struct policy_prefix *b)
{
	unsigned len = a->len < b->len ? a->len : b->len, full = len / 8, rest = len % 8;

	if (a->family != b->family)
		return false;
	if (memcmp(a->addr, b->addr, full))
		return false;
	return !rest || ((a->addr[full] ^ b->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}
