// SPDX-License-Identifier: GPL-2.0-only
#include "policy_compile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "util.h"

/* Every rule index of a valid policy has its counter slot in cw_rule_stats. */
_Static_assert(POLICY_MAX_RULES <= CW_MAX_RULES, "rule counters too small for the policy limit");
_Static_assert(POLICY_MAX_APPS < CW_APP_SLOTS, "app counters too small for the policy limit");
/* A port set is made for a prefix or a name, both bounded by the maps: port set ids fit. */
_Static_assert(POLICY_MAPS_MAX_DST4 + POLICY_MAPS_MAX_DST6 + POLICY_MAPS_MAX_NAMES <=
		   CW_SCOPE_ID_MASK,
	       "port set ids too small for the map capacity");
_Static_assert(POLICY_MAX_RESOLVERS <= CW_MAX_RESOLVERS, "resolver limit above the map's");

_Static_assert(CW_NAME_WIRE_MAX >= CW_DNS_MAX_NAME + 1, "cw_name_val.wire too small");

/* One (prefix, rule) pair of one app and one family, before grouping. */
struct prefix_rule {
	uint8_t addr[16];
	uint8_t len;
	uint32_t rule;
};

/* A growable array of rule indices, sorted ascending (= file order). */
struct rule_list {
	uint32_t *v;
	size_t n;
	size_t cap;
};

/* Interned rule lists: a rule list -> port set id. */
struct portset_table {
	struct rule_list *lists; /* index = port set id */
	size_t n;
	size_t cap;
	uint32_t *slots; /* open addressing: port set id + 1, 0 = empty */
	size_t n_slots;
};

struct compiler {
	const struct policy *policy;
	uint32_t gen;
	const struct policy_rule **rules; /* by global rule index */
	struct policy_maps *maps;
	struct portset_table portsets;
	struct portset_span { size_t first, end; } *portset_ports; /* its entries in maps->ports */
	size_t cap_portset_ports;
	size_t cap_dst4, cap_dst6, cap_ports, cap_hosts, cap_names;
	uint64_t pairs; /* (prefix, port range) pairs so far, inherited ones included */
	char *reason;
	size_t reason_size;
};

static int grow(void **v, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 16;
	void *n;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	n = reallocarray(*v, c, elem);
	if (!n)
		return -ENOMEM;
	*v = n;
	*cap = c;
	return 0;
}

static int rule_list_push(struct rule_list *l, uint32_t rule)
{
	if (grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0)
		return -ENOMEM;
	l->v[l->n++] = rule;
	return 0;
}

static uint64_t rule_list_hash(const struct rule_list *l)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < l->n; i++) {
		h ^= l->v[i];
		h *= 1099511628211ull;
	}
	return h;
}

static bool rule_list_equal(const struct rule_list *a, const struct rule_list *b)
{
	return a->n == b->n && memcmp(a->v, b->v, a->n * sizeof(*a->v)) == 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void vfail_at(struct compiler *c, struct policy_loc loc, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* reason = "path:line:column: ..." ("path: ..." when loc has no line). */
static void vfail_at(struct compiler *c, struct policy_loc loc, const char *fmt, va_list ap)
{
	const char *path = c->policy->path ? c->policy->path : "policy";
	int n;

	if (!c->reason || !c->reason_size)
		return;
	if (loc.line)
		n = snprintf(c->reason, c->reason_size, "%s:%u:%u: ", path, loc.line, loc.column);
	else
		n = snprintf(c->reason, c->reason_size, "%s: ", path);
	if (n >= 0 && (size_t)n < c->reason_size)
		vsnprintf(c->reason + n, c->reason_size - (size_t)n, fmt, ap);
}

static int fail_at(struct compiler *c, struct policy_loc loc, int error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_at(struct compiler *c, struct policy_loc loc, int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, loc, fmt, ap);
	va_end(ap);
	return error;
}

static int fail(struct compiler *c, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct compiler *c, int error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, (struct policy_loc){}, fmt, ap);
	va_end(ap);
	return error;
}

/* ---- bounds --------------------------------------------------------------------------------- */

/* The port ranges a rule pairs each of its prefixes with: its `ports`, or one for any port. */
static uint64_t rule_ranges(const struct policy_rule *rule)
{
	return rule->n_ports ? rule->n_ports : 1;
}

static void format_prefix(int family, const uint8_t *addr, unsigned len, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(family, addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, size, "%s/%u", a, len);
}

/* "set 'name' (N prefixes)" or "198.51.100.0/24": an element of a rule's `to`, for errors. */
static void format_dest(const struct policy *p, const struct policy_dest *d, char *buf, size_t size)
{
	if (d->is_set && p->sets[d->set].n_hosts)
		snprintf(buf, size, "set '%s' (%zu prefixes, %zu hosts)", p->sets[d->set].name,
			 p->sets[d->set].n_prefixes, p->sets[d->set].n_hosts);
	else if (d->is_set)
		snprintf(buf, size, "set '%s' (%zu prefixes)", p->sets[d->set].name,
			 p->sets[d->set].n_prefixes);
	else if (d->is_host)
		snprintf(buf, size, "'%s%s'", d->host.wildcard ? "*." : "", d->host.name);
	else
		format_prefix(d->prefix.family, d->prefix.addr, d->prefix.len, buf, size);
}

/*
 * The bounds computable from the parsed policy, in one pass over it and before anything is
 * expanded: the entries of each destination map (an app's inline destinations each time, each
 * set once per app that names it) and the (prefix, port range) pairs the rules name directly.
 * Refuses at the element of a `to` that crosses a bound.
 */
static int check_bounds(struct compiler *c)
{
	const struct policy *p = c->policy;
	_cleanup_free_ size_t *set_v4 = NULL; /* per set: its IPv4 prefixes */
	_cleanup_free_ size_t *named = NULL;  /* per set: 1 + the last app that named it */
	uint64_t n4 = 0, n6 = 0, pairs = 0, names = 0;
	char what[POLICY_MAX_ID_LEN + 64];

	set_v4 = calloc(p->n_sets + 1, sizeof(*set_v4));
	named = calloc(p->n_sets + 1, sizeof(*named));
	if (!set_v4 || !named)
		return -ENOMEM;
	for (size_t s = 0; s < p->n_sets; s++)
		for (size_t k = 0; k < p->sets[s].n_prefixes; k++)
			set_v4[s] += p->sets[s].prefixes[k].family == AF_INET;

	for (size_t a = 0; a < p->n_apps; a++) {
		const struct policy_app *app = &p->apps[a];

		for (size_t i = 0; i < app->n_rules; i++) {
			const struct policy_rule *rule = &app->rules[i];

			for (size_t j = 0; j < rule->n_to; j++) {
				const struct policy_dest *d = &rule->to[j];
				size_t all = 1, v4 = d->prefix.family == AF_INET;

				if (d->is_host) {
					/* Each mention counts: an upper bound of the entries. */
					names++;
					all = v4 = 0;
				} else if (d->is_set) {
					if (d->set >= p->n_sets)
						return fail_at(c, d->loc, -EINVAL,
							       "set index %zu out of range",
							       d->set);
					all = p->sets[d->set].n_prefixes;
					v4 = set_v4[d->set];
				}
				if (!d->is_set || named[d->set] != a + 1) {
					n4 += v4;
					n6 += all - v4;
					if (d->is_set) {
						named[d->set] = a + 1;
						names += p->sets[d->set].n_hosts;
					}
				}
				pairs += all * rule_ranges(rule);
				if (n4 <= POLICY_MAPS_MAX_DST4 && n6 <= POLICY_MAPS_MAX_DST6 &&
				    pairs <= POLICY_MAPS_MAX_PAIRS && names <= POLICY_MAPS_MAX_NAMES)
					continue;

				format_dest(p, d, what, sizeof(what));
				if (names > POLICY_MAPS_MAX_NAMES)
					return fail_at(
					    c, d->loc, -E2BIG,
					    "app '%s': with %s, the policy names more than %u "
					    "hosts (map capacity per generation; a set counts once "
					    "per app that names it)",
					    app->id, what, (unsigned)POLICY_MAPS_MAX_NAMES);
				if (pairs > POLICY_MAPS_MAX_PAIRS)
					return fail_at(
					    c, d->loc, -E2BIG,
					    "app '%s': with %s, the rules name more than %u "
					    "(prefix, port range) pairs, the compiler's limit "
					    "(POLICY_MAPS_MAX_PAIRS)",
					    app->id, what, POLICY_MAPS_MAX_PAIRS);
				return fail_at(
				    c, d->loc, -E2BIG,
				    "app '%s': with %s, the policy needs more than %u %s "
				    "prefixes (map capacity per generation; a set counts once "
				    "per app that names it)",
				    app->id, what,
				    n4 > POLICY_MAPS_MAX_DST4 ? (unsigned)POLICY_MAPS_MAX_DST4
							      : (unsigned)POLICY_MAPS_MAX_DST6,
				    n4 > POLICY_MAPS_MAX_DST4 ? "IPv4" : "IPv6");
			}
		}
	}
	return 0;
}

/* ---- ports ---------------------------------------------------------------------------------- */

struct port_interval {
	uint32_t first, last; /* inclusive, 0..65535 */
	uint32_t rule;
	bool cross_border; /* the rule's `cross-border:` */
};

/* The consent bit of a rule (bpf/carwall.h): its purpose's, or CW_PURPOSE_NONE. */
static uint32_t rule_purpose_bit(const struct policy_rule *rule)
{
	return rule->purpose < 0 ? CW_PURPOSE_NONE : CW_PURPOSE_BIT((uint32_t)rule->purpose);
}

static int emit_port_block(struct compiler *c, uint32_t portset, uint16_t proto, uint32_t first,
			   unsigned bits, uint32_t rule, uint32_t purposes, uint32_t xb_purposes)
{
	struct policy_maps *m = c->maps;
	struct policy_port_entry *e;

	if (m->n_ports >= POLICY_MAPS_MAX_PORTS)
		return fail_at(c, c->rules[rule]->loc, -E2BIG,
			       "with the ports of this rule, the policy needs more than %u port "
			       "entries (map capacity per generation)",
			       (unsigned)POLICY_MAPS_MAX_PORTS);
	if (grow((void **)&m->ports, &c->cap_ports, m->n_ports + 1, sizeof(*m->ports)) < 0)
		return -ENOMEM;
	e = &m->ports[m->n_ports++];
	memset(e, 0, sizeof(*e));
	e->key.prefixlen = CW_SCOPE_BITS + 16 + bits;
	e->key.scope = cw_scope(c->gen, portset);
	e->key.proto = proto;
	e->key.port_be = htons((uint16_t)first);
	e->val.rule = rule;
	e->val.purposes = purposes;
	e->val.xb_purposes = xb_purposes;
	return 0;
}

/* Store [first, last] as the fewest aligned prefix blocks. */
static int emit_port_range(struct compiler *c, uint32_t portset, uint16_t proto, uint32_t first,
			   uint32_t last, uint32_t rule, uint32_t purposes, uint32_t xb_purposes)
{
	while (first <= last) {
		unsigned k = first ? (unsigned)__builtin_ctz(first) : 16;
		int r;

		if (k > 16)
			k = 16;
		while (k > 0 && first + (1u << k) - 1 > last)
			k--;
		r = emit_port_block(c, portset, proto, first, 16 - k, rule, purposes, xb_purposes);
		if (r < 0)
			return r;
		first += 1u << k;
	}
	return 0;
}

/*
 * Painting order: the rules marked cross-border first (a segment one of them allows is
 * cross-border, whatever other rules allow it too: cw_port_val.xb_purposes), then file order.
 */
static int cmp_interval_rule(const void *a, const void *b)
{
	const struct port_interval *x = a, *y = b;

	if (x->cross_border != y->cross_border)
		return x->cross_border ? -1 : 1;
	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

static int cmp_interval_first(const void *a, const void *b)
{
	const struct port_interval *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/*
 * emit_ports_for_proto() for a port set of one rule (most of them: a prefix that one rule
 * names, inside no other prefix of its app): its ranges, sorted and merged where they overlap or
 * touch, are the segments, all owned by that rule, with no allocation. 1 when done, 0 when the
 * rule has more ranges than this handles (the general path does it).
 */
static int emit_ports_one_rule(struct compiler *c, uint32_t portset, uint32_t rule_idx,
			       enum policy_proto proto, uint16_t ipproto)
{
	const struct policy_rule *rule = c->rules[rule_idx];
	struct port_interval iv[POLICY_MAX_RULE_PORTS];
	uint32_t purposes = rule_purpose_bit(rule);
	uint32_t xb_purposes = rule->cross_border ? purposes : 0;
	int r;

	if (rule->proto != POLICY_PROTO_ANY && rule->proto != proto)
		return 1;
	if (!rule->n_ports) {
		r = emit_port_range(c, portset, ipproto, 0, 65535, rule_idx, purposes, xb_purposes);
		return r < 0 ? r : 1;
	}
	if (rule->n_ports > ARRAY_SIZE(iv))
		return 0;
	for (size_t j = 0; j < rule->n_ports; j++)
		iv[j] = (struct port_interval){ rule->ports[j].first, rule->ports[j].last, rule_idx,
						rule->cross_border != NULL };
	qsort(iv, rule->n_ports, sizeof(*iv), cmp_interval_first);
	for (size_t i = 0; i < rule->n_ports;) {
		uint32_t first = iv[i].first, last = iv[i].last;

		for (i++; i < rule->n_ports && iv[i].first <= last + 1; i++)
			if (iv[i].last > last)
				last = iv[i].last;
		r = emit_port_range(c, portset, ipproto, first, last, rule_idx, purposes,
				    xb_purposes);
		if (r < 0)
			return r;
	}
	return 1;
}

static size_t dsu_find(size_t *next, size_t i)
{
	while (next[i] != i) {
		next[i] = next[next[i]];
		i = next[i];
	}
	return i;
}

/*
 * The consent purposes of each segment (purposes[s]): the bits of every rule whose interval
 * covers it (only of the rules marked cross-border when `cross_border_only`), one sweep per
 * purpose bit the intervals use.
 */
static int segment_purposes(const struct compiler *c, const struct port_interval *iv, size_t n_iv,
			    const uint32_t *bounds, size_t n_b, bool cross_border_only,
			    uint32_t *purposes)
{
	_cleanup_free_ int64_t *delta = calloc(n_b + 1, sizeof(*delta));
	uint32_t used = 0;

	if (!delta)
		return -ENOMEM;
	for (size_t i = 0; i < n_iv; i++)
		if (!cross_border_only || iv[i].cross_border)
			used |= rule_purpose_bit(c->rules[iv[i].rule]);
	for (unsigned bit = 0; bit < 32; bit++) {
		int64_t depth = 0;

		if (!(used & (1u << bit)))
			continue;
		memset(delta, 0, (n_b + 1) * sizeof(*delta));
		for (size_t i = 0; i < n_iv; i++) {
			uint32_t end = iv[i].last + 1;
			uint32_t *lo, *hi;

			if (!(rule_purpose_bit(c->rules[iv[i].rule]) & (1u << bit)) ||
			    (cross_border_only && !iv[i].cross_border))
				continue;
			lo = bsearch(&iv[i].first, bounds, n_b, sizeof(*bounds), cmp_u32);
			hi = bsearch(&end, bounds, n_b, sizeof(*bounds), cmp_u32);
			delta[lo - bounds]++;
			delta[hi - bounds]--;
		}
		for (size_t k = 0; k + 1 < n_b; k++) {
			depth += delta[k];
			if (depth > 0)
				purposes[k] |= 1u << bit;
		}
	}
	return 0;
}

/*
 * The port segments of one protocol for one port set: split the rules' port ranges into
 * disjoint elementary segments, give each segment the first rule (in file order) that covers it
 * and the consent purposes of all the rules that cover it, merge neighbours with the same rule
 * and purposes and emit them.
 */
static int emit_ports_for_proto(struct compiler *c, uint32_t portset, const struct rule_list *rules,
				enum policy_proto proto)
{
	_cleanup_free_ struct port_interval *iv = NULL;
	_cleanup_free_ uint32_t *bounds = NULL;
	_cleanup_free_ uint32_t *owner = NULL;
	_cleanup_free_ uint32_t *purposes = NULL;
	_cleanup_free_ uint32_t *xb_purposes = NULL;
	_cleanup_free_ size_t *next = NULL;
	size_t n_iv = 0, cap_iv = 0, n_b = 0;
	uint16_t ipproto = proto == POLICY_PROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP;
	int r;

	if (rules->n == 1) {
		r = emit_ports_one_rule(c, portset, rules->v[0], proto, ipproto);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	for (size_t i = 0; i < rules->n; i++) {
		const struct policy_rule *rule = c->rules[rules->v[i]];

		if (rule->proto != POLICY_PROTO_ANY && rule->proto != proto)
			continue;
		size_t add = rule->n_ports ? rule->n_ports : 1;
		if (grow((void **)&iv, &cap_iv, n_iv + add, sizeof(*iv)) < 0)
			return -ENOMEM;
		if (!rule->n_ports) {
			iv[n_iv++] = (struct port_interval){ 0, 65535, rules->v[i],
							     rule->cross_border != NULL };
			continue;
		}
		for (size_t j = 0; j < rule->n_ports; j++)
			iv[n_iv++] = (struct port_interval){ rule->ports[j].first, rule->ports[j].last,
							     rules->v[i],
							     rule->cross_border != NULL };
	}
	if (n_iv == 0)
		return 0;

	/* Elementary segments: [bounds[k], bounds[k+1]) */
	bounds = calloc(2 * n_iv, sizeof(*bounds));
	if (!bounds)
		return -ENOMEM;
	for (size_t i = 0; i < n_iv; i++) {
		bounds[n_b++] = iv[i].first;
		bounds[n_b++] = iv[i].last + 1;
	}
	qsort(bounds, n_b, sizeof(*bounds), cmp_u32);
	size_t u = 0;
	for (size_t i = 0; i < n_b; i++)
		if (u == 0 || bounds[u - 1] != bounds[i])
			bounds[u++] = bounds[i];
	n_b = u;

	size_t n_seg = n_b - 1;
	owner = calloc(n_seg, sizeof(*owner));
	purposes = calloc(n_seg, sizeof(*purposes));
	xb_purposes = calloc(n_seg, sizeof(*xb_purposes));
	next = calloc(n_seg + 1, sizeof(*next)); /* next uncovered segment at or after i */
	if (!owner || !purposes || !xb_purposes || !next)
		return -ENOMEM;
	r = segment_purposes(c, iv, n_iv, bounds, n_b, false, purposes);
	if (r == 0)
		r = segment_purposes(c, iv, n_iv, bounds, n_b, true, xb_purposes);
	if (r < 0)
		return r;
	for (size_t i = 0; i <= n_seg; i++)
		next[i] = i;

	/* Paint in that order: a segment keeps the first rule that reaches it. */
	qsort(iv, n_iv, sizeof(*iv), cmp_interval_rule);
	for (size_t i = 0; i < n_iv; i++) {
		uint32_t *lo = bsearch(&iv[i].first, bounds, n_b, sizeof(*bounds), cmp_u32);
		size_t s = (size_t)(lo - bounds);

		for (s = dsu_find(next, s); s < n_seg && bounds[s] <= iv[i].last;
		     s = dsu_find(next, s)) {
			owner[s] = iv[i].rule + 1;
			next[s] = s + 1;
		}
	}

	/* Merge neighbouring segments with the same owner and purposes and emit them. */
	for (size_t s = 0; s < n_seg;) {
		size_t e = s;

		if (!owner[s]) {
			s++;
			continue;
		}
		while (e + 1 < n_seg && owner[e + 1] == owner[s] && purposes[e + 1] == purposes[s] &&
		       xb_purposes[e + 1] == xb_purposes[s])
			e++;
		r = emit_port_range(c, portset, ipproto, bounds[s], bounds[e + 1] - 1, owner[s] - 1,
				    purposes[s], xb_purposes[s]);
		if (r < 0)
			return r;
		s = e + 1;
	}
	return 0;
}

/* ---- port sets ------------------------------------------------------------------------------ */

static int portset_table_rehash(struct portset_table *t)
{
	size_t n_slots = t->n_slots ? t->n_slots * 2 : 64;
	uint32_t *slots = calloc(n_slots, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t id = 0; id < t->n; id++) {
		size_t s = rule_list_hash(&t->lists[id]) & (n_slots - 1);

		while (slots[s])
			s = (s + 1) & (n_slots - 1);
		slots[s] = (uint32_t)id + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->n_slots = n_slots;
	return 0;
}

static void portset_table_free(struct portset_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->lists[i].v);
	free(t->lists);
	free(t->slots);
}

/*
 * The port set id of a rule list, creating the set (and its cw_ports entries) the first time.
 * On success the table owns a copy of the list.
 */
static int portset_intern(struct compiler *c, const struct rule_list *rules, uint32_t *ret_id)
{
	struct portset_table *t = &c->portsets;
	size_t s;
	int r;

	if ((t->n + 1) * 2 > t->n_slots) {
		r = portset_table_rehash(t);
		if (r < 0)
			return r;
	}
	for (s = rule_list_hash(rules) & (t->n_slots - 1); t->slots[s]; s = (s + 1) & (t->n_slots - 1))
		if (rule_list_equal(&t->lists[t->slots[s] - 1], rules)) {
			*ret_id = t->slots[s] - 1;
			return 0;
		}

	if (t->n > CW_SCOPE_ID_MASK)
		return fail(c, -E2BIG, "too many port sets");
	if (grow((void **)&t->lists, &t->cap, t->n + 1, sizeof(*t->lists)) < 0)
		return -ENOMEM;
	struct rule_list copy = { .n = rules->n, .cap = rules->n };
	copy.v = malloc(rules->n * sizeof(*copy.v) + 1);
	if (!copy.v)
		return -ENOMEM;
	memcpy(copy.v, rules->v, rules->n * sizeof(*copy.v));

	uint32_t id = (uint32_t)t->n;
	t->lists[t->n++] = copy;
	t->slots[s] = id + 1;
	c->maps->n_portsets = t->n;

	if (grow((void **)&c->portset_ports, &c->cap_portset_ports, t->n,
		 sizeof(*c->portset_ports)) < 0)
		return -ENOMEM;
	c->portset_ports[id].first = c->maps->n_ports;
	r = emit_ports_for_proto(c, id, rules, POLICY_PROTO_TCP);
	if (r < 0)
		return r;
	r = emit_ports_for_proto(c, id, rules, POLICY_PROTO_UDP);
	if (r < 0)
		return r;
	c->portset_ports[id].end = c->maps->n_ports;
	*ret_id = id;
	return 0;
}

/* ---- the host shortcut ---------------------------------------------------------------------- */

/*
 * Copy into cw_hosts what the tries allow for one host destination: each port block of its port
 * set that covers at most CW_HOST_MAX_BLOCK_PORTS ports, port by port, with the block's rule.
 * Returns false once the map is full (the rest is answered by the tries, with the same answer).
 */
static bool emit_hosts_of(struct compiler *c, uint32_t scope, uint32_t family, const uint8_t *addr,
			  uint32_t portset)
{
	struct policy_maps *m = c->maps;
	const struct portset_span *span = &c->portset_ports[portset];

	for (size_t i = span->first; i < span->end; i++) {
		const struct policy_port_entry *p = &m->ports[i];
		unsigned bits = p->key.prefixlen - CW_SCOPE_BITS - 16;
		uint32_t first = ntohs(p->key.port_be), n = 1u << (16 - bits);

		if (n > CW_HOST_MAX_BLOCK_PORTS)
			continue;
		for (uint32_t port = first; port < first + n; port++) {
			struct policy_host_entry *e;

			if (m->n_hosts >= POLICY_MAPS_MAX_HOSTS ||
			    grow((void **)&m->hosts, &c->cap_hosts, m->n_hosts + 1,
				 sizeof(*m->hosts)) < 0)
				return false;
			e = &m->hosts[m->n_hosts++];
			memset(e, 0, sizeof(*e));
			e->key.scope = scope;
			e->key.proto = p->key.proto;
			e->key.port_be = htons((uint16_t)port);
			e->key.family = family;
			memcpy(e->key.addr, addr, family == AF_INET ? 4 : 16);
			e->val = p->val;
		}
	}
	return true;
}

/* The shortcut for every host destination, as far as the map holds them. */
static void emit_hosts(struct compiler *c)
{
	struct policy_maps *m = c->maps;

	for (size_t i = 0; i < m->n_dst4; i++) {
		const struct policy_dst4_entry *d = &m->dst4[i];

		if (d->key.prefixlen == CW_SCOPE_BITS + 32 &&
		    !emit_hosts_of(c, d->key.scope, AF_INET, d->key.addr, d->val.portset))
			return;
	}
	for (size_t i = 0; i < m->n_dst6; i++) {
		const struct policy_dst6_entry *d = &m->dst6[i];

		if (d->key.prefixlen == CW_SCOPE_BITS + 128 &&
		    !emit_hosts_of(c, d->key.scope, AF_INET6, d->key.addr, d->val.portset))
			return;
	}
}

/* ---- destinations --------------------------------------------------------------------------- */

static int cmp_prefix_rule(const void *a, const void *b)
{
	const struct prefix_rule *x = a, *y = b;
	int d = memcmp(x->addr, y->addr, sizeof(x->addr));

	if (d)
		return d;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

static bool prefix_contains(const uint8_t *outer, uint8_t outer_len, const uint8_t *inner,
			    uint8_t inner_len)
{
	unsigned full = outer_len / 8, rest = outer_len % 8;

	if (outer_len > inner_len)
		return false;
	if (memcmp(outer, inner, full))
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((outer[full] & mask) != (inner[full] & mask))
			return false;
	}
	return true;
}

static void prefix_mask(uint8_t *addr, unsigned len, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned bits = len > i * 8 ? len - i * 8 : 0;
		if (bits < 8)
			addr[i] &= (uint8_t)(0xff << (8 - bits));
	}
}

static int emit_dst(struct compiler *c, int family, uint32_t app, const uint8_t *addr, uint8_t len,
		    uint32_t portset, uint32_t flags)
{
	struct policy_maps *m = c->maps;

	if (family == AF_INET) {
		struct policy_dst4_entry *e;

		if (m->n_dst4 >= POLICY_MAPS_MAX_DST4)
			return fail(c, -E2BIG,
				    "the policy needs more than %u IPv4 prefixes (map capacity per "
				    "generation)",
				    (unsigned)POLICY_MAPS_MAX_DST4);
		if (grow((void **)&m->dst4, &c->cap_dst4, m->n_dst4 + 1, sizeof(*m->dst4)) < 0)
			return -ENOMEM;
		e = &m->dst4[m->n_dst4++];
		memset(e, 0, sizeof(*e));
		e->key.prefixlen = CW_SCOPE_BITS + len;
		e->key.scope = cw_scope(c->gen, app);
		memcpy(e->key.addr, addr, sizeof(e->key.addr));
		e->val.portset = portset;
		e->val.flags = flags;
	} else {
		struct policy_dst6_entry *e;

		if (m->n_dst6 >= POLICY_MAPS_MAX_DST6)
			return fail(c, -E2BIG,
				    "the policy needs more than %u IPv6 prefixes (map capacity per "
				    "generation)",
				    (unsigned)POLICY_MAPS_MAX_DST6);
		if (grow((void **)&m->dst6, &c->cap_dst6, m->n_dst6 + 1, sizeof(*m->dst6)) < 0)
			return -ENOMEM;
		e = &m->dst6[m->n_dst6++];
		memset(e, 0, sizeof(*e));
		e->key.prefixlen = CW_SCOPE_BITS + len;
		e->key.scope = cw_scope(c->gen, app);
		memcpy(e->key.addr, addr, sizeof(e->key.addr));
		e->val.portset = portset;
		e->val.flags = flags;
	}
	return 0;
}

static int collect_prefix(struct prefix_rule **v, size_t *n, size_t *cap,
			  const struct policy_prefix *p, uint32_t rule)
{
	struct prefix_rule *e;

	if (grow((void **)v, cap, *n + 1, sizeof(**v)) < 0)
		return -ENOMEM;
	e = &(*v)[(*n)++];
	memset(e, 0, sizeof(*e));
	memcpy(e->addr, p->addr, p->family == AF_INET ? 4 : 16);
	prefix_mask(e->addr, p->len, p->family == AF_INET ? 4 : 16);
	e->len = p->len;
	e->rule = rule;
	return 0;
}

/*
 * The prefixes of one family of one app, with every rule that names each of them: at most the
 * pairs check_bounds() counted for the app, allocated at once.
 */
static int collect_app_prefixes(const struct policy *p, const struct policy_app *app, int family,
				struct prefix_rule **ret, size_t *ret_n)
{
	_cleanup_free_ struct prefix_rule *v = NULL;
	size_t n = 0, cap = 0, need = 0;
	int r;

	for (size_t i = 0; i < app->n_rules; i++)
		for (size_t j = 0; j < app->rules[i].n_to; j++) {
			const struct policy_dest *d = &app->rules[i].to[j];

			need += d->is_set ? p->sets[d->set].n_prefixes : !d->is_host;
		}
	if (need) {
		v = calloc(need, sizeof(*v));
		if (!v)
			return -ENOMEM;
		cap = need;
	}

	for (size_t i = 0; i < app->n_rules; i++) {
		const struct policy_rule *rule = &app->rules[i];

		for (size_t j = 0; j < rule->n_to; j++) {
			const struct policy_dest *d = &rule->to[j];

			if (d->is_host)
				continue;
			if (!d->is_set) {
				if (d->prefix.family != family)
					continue;
				r = collect_prefix(&v, &n, &cap, &d->prefix, (uint32_t)rule->index);
				if (r < 0)
					return r;
				continue;
			}
			const struct policy_set *set = &p->sets[d->set];
			for (size_t k = 0; k < set->n_prefixes; k++) {
				if (set->prefixes[k].family != family)
					continue;
				r = collect_prefix(&v, &n, &cap, &set->prefixes[k],
						   (uint32_t)rule->index);
				if (r < 0)
					return r;
			}
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_prefix_rule);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* Which protocols some rule of the list allows (on some port): CW_DST_F_TCP, CW_DST_F_UDP. */
static uint32_t rule_list_proto_flags(const struct compiler *c, const struct rule_list *rules)
{
	uint32_t flags = 0;

	for (size_t i = 0; i < rules->n; i++) {
		enum policy_proto p = c->rules[rules->v[i]]->proto;

		if (p != POLICY_PROTO_UDP)
			flags |= CW_DST_F_TCP;
		if (p != POLICY_PROTO_TCP)
			flags |= CW_DST_F_UDP;
	}
	return flags;
}

/* One level of the walk: a prefix and the rules of every prefix that contains it. */
struct walk_level {
	uint8_t addr[16];
	uint8_t len;
	uint64_t pairs; /* the port ranges of these rules, counted as many times as they name it */
	struct rule_list rules;
};

/* The first pass of the walk, on one prefix: count its pairs and refuse past the limit. */
static int count_pairs(struct compiler *c, const struct policy_app *app, int family,
		       struct walk_level *top, const struct walk_level *up,
		       const struct prefix_rule *v, size_t n)
{
	char what[INET6_ADDRSTRLEN + 8];
	uint64_t inherited = up ? up->pairs : 0;

	top->pairs = inherited;
	for (size_t k = 0; k < n; k++)
		top->pairs += rule_ranges(c->rules[v[k].rule]);
	c->pairs += top->pairs;
	if (c->pairs <= POLICY_MAPS_MAX_PAIRS)
		return 0;
	format_prefix(family, v[0].addr, v[0].len, what, sizeof(what));
	return fail_at(c, c->rules[v[0].rule]->loc, -E2BIG,
		       "app '%s': %s, which this rule names, brings the (prefix, port range) pairs "
		       "past %u, the compiler's limit (POLICY_MAPS_MAX_PAIRS); a prefix is paired "
		       "with the rules of the prefixes containing it too (%" PRIu64 " pairs here)",
		       app->id, what, POLICY_MAPS_MAX_PAIRS, inherited);
}

/*
 * Walk the sorted prefixes of one family of one app: in (address, length) order every prefix
 * comes after the prefixes containing it, which are on the stack. A prefix's port set is made of
 * its own rules and those of its containing prefixes. The first pass only counts the pairs this
 * makes (and refuses past POLICY_MAPS_MAX_PAIRS); the second makes the port sets and entries.
 */
static int compile_app_family(struct compiler *c, uint32_t app_idx, const struct policy_app *app,
			      int family)
{
	_cleanup_free_ struct prefix_rule *v = NULL;
	struct walk_level stack[129 + 1] = {};
	size_t n = 0, depth = 0;
	int r;

	r = collect_app_prefixes(c->policy, app, family, &v, &n);
	if (r < 0)
		return r;

	for (int build = 0; build <= 1; build++) {
		depth = 0;
		for (size_t i = 0; i < n;) {
			size_t j = i;
			struct walk_level *top;

			/* Entries i..j-1 share one prefix. */
			while (j < n && v[j].len == v[i].len && !memcmp(v[j].addr, v[i].addr, 16))
				j++;

			while (depth > 0 &&
			       !prefix_contains(stack[depth - 1].addr, stack[depth - 1].len,
						v[i].addr, v[i].len))
				depth--;

			top = &stack[depth];
			memcpy(top->addr, v[i].addr, 16);
			top->len = v[i].len;
			if (!build) {
				r = count_pairs(c, app, family, top,
						depth ? &stack[depth - 1] : NULL, &v[i], j - i);
				if (r < 0)
					goto out;
				depth++;
				i = j;
				continue;
			}

			top->rules.n = 0;
			if (depth > 0) {
				const struct rule_list *up = &stack[depth - 1].rules;
				for (size_t k = 0; k < up->n; k++) {
					r = rule_list_push(&top->rules, up->v[k]);
					if (r < 0)
						goto out;
				}
			}
			for (size_t k = i; k < j; k++) {
				r = rule_list_push(&top->rules, v[k].rule);
				if (r < 0)
					goto out;
			}
			qsort(top->rules.v, top->rules.n, sizeof(uint32_t), cmp_u32);
			size_t u = 0;
			for (size_t k = 0; k < top->rules.n; k++)
				if (u == 0 || top->rules.v[u - 1] != top->rules.v[k])
					top->rules.v[u++] = top->rules.v[k];
			top->rules.n = u;
			depth++;

			uint32_t portset = 0;
			r = portset_intern(c, &top->rules, &portset);
			if (r < 0)
				goto out;
			r = emit_dst(c, family, app_idx, v[i].addr, v[i].len, portset,
				     rule_list_proto_flags(c, &top->rules));
			if (r < 0)
				goto out;
			i = j;
		}
	}
	r = 0;
out:
	for (size_t k = 0; k < ARRAY_SIZE(stack); k++)
		free(stack[k].rules.v);
	return r;
}

/* ---- host names ----------------------------------------------------------------------------- */

/* One (name, kind, rule) mention of one app, before grouping. */
struct name_rule {
	const struct policy_host *host;
	uint32_t rule;
};

static int cmp_host(const struct policy_host *x, const struct policy_host *y)
{
	if (x->wildcard != y->wildcard)
		return x->wildcard ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int cmp_name_rule(const void *a, const void *b)
{
	const struct name_rule *x = a, *y = b;
	int d = cmp_host(x->host, y->host);

	if (d)
		return d;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Every mention of a host name in the rules of one app (inline or through a set), sorted. */
static int collect_app_names(const struct policy *p, const struct policy_app *app,
			     struct name_rule **ret, size_t *ret_n)
{
	_cleanup_free_ struct name_rule *v = NULL;
	size_t n = 0, need = 0;

	for (size_t i = 0; i < app->n_rules; i++)
		for (size_t j = 0; j < app->rules[i].n_to; j++) {
			const struct policy_dest *d = &app->rules[i].to[j];

			need += d->is_set ? p->sets[d->set].n_hosts : d->is_host;
		}
	if (need) {
		v = calloc(need, sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	for (size_t i = 0; i < app->n_rules; i++) {
		const struct policy_rule *rule = &app->rules[i];

		for (size_t j = 0; j < rule->n_to; j++) {
			const struct policy_dest *d = &rule->to[j];

			if (d->is_host)
				v[n++] = (struct name_rule){ &d->host, (uint32_t)rule->index };
			else if (d->is_set)
				for (size_t k = 0; k < p->sets[d->set].n_hosts; k++)
					v[n++] = (struct name_rule){ &p->sets[d->set].hosts[k],
								     (uint32_t)rule->index };
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_name_rule);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* One distinct (name, kind) of an app, with the rules naming it. */
struct app_name {
	const struct policy_host *host;
	struct rule_list rules;
};

static int cmp_app_name_wildcard(const void *key, const void *elem)
{
	const struct app_name *e = elem;

	if (!e->host->wildcard)
		return 1; /* exact names sort first: the key (a wildcard) is past them */
	return strcmp(key, e->host->name);
}

static int rule_list_add_all(struct rule_list *to, const struct rule_list *from)
{
	for (size_t k = 0; k < from->n; k++)
		if (rule_list_push(to, from->v[k]) < 0)
			return -ENOMEM;
	return 0;
}

static void rule_list_sort_unique(struct rule_list *l)
{
	size_t u = 0;

	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
	for (size_t k = 0; k < l->n; k++)
		if (u == 0 || l->v[u - 1] != l->v[k])
			l->v[u++] = l->v[k];
	l->n = u;
}

/*
 * The cw_names entries of one app. Names given several times are one entry whose port set is
 * made of every rule naming it; and, as a prefix inherits the rules of the prefixes containing
 * it, an entry inherits the rules of every wildcard of the app above it ("a.x" and "*.b.x" those
 * of "*.x"): the most specific entry that matches a name (exact, then the wildcard of the
 * longest suffix) carries every rule of the app that allows the name.
 */
static int compile_app_names(struct compiler *c, uint32_t app_idx, const struct policy_app *app)
{
	_cleanup_free_ struct name_rule *v = NULL;
	_cleanup_free_ struct app_name *names = NULL;
	struct rule_list own = {};
	size_t n = 0, n_names = 0;
	int r;

	r = collect_app_names(c->policy, app, &v, &n);
	if (r < 0 || n == 0)
		return r;
	names = calloc(n, sizeof(*names));
	if (!names)
		return -ENOMEM;

	/* Group the mentions: each distinct (name, kind) with its own rules. */
	for (size_t i = 0, j; i < n; i = j) {
		struct app_name *e = &names[n_names++];

		e->host = v[i].host;
		for (j = i; j < n && !cmp_host(v[j].host, v[i].host); j++)
			if (rule_list_push(&e->rules, v[j].rule) < 0) {
				r = -ENOMEM;
				goto out;
			}
		rule_list_sort_unique(&e->rules);
	}

	for (size_t i = 0; i < n_names; i++) {
		const struct policy_host *h = names[i].host;
		struct policy_maps *m = c->maps;
		struct policy_name_entry *e;
		struct dns_name wire;
		uint32_t portset;

		/* Own rules, then those of every wildcard strictly above the name. */
		own.n = 0;
		r = rule_list_add_all(&own, &names[i].rules);
		if (r < 0)
			goto out;
		for (const char *dot = strchr(h->name, '.'); dot; dot = strchr(dot + 1, '.')) {
			const struct app_name *w = bsearch(dot + 1, names, n_names, sizeof(*names),
							   cmp_app_name_wildcard);
			if (w) {
				r = rule_list_add_all(&own, &w->rules);
				if (r < 0)
					goto out;
			}
		}
		rule_list_sort_unique(&own);

		r = dns_name_from_text(h->name, &wire);
		if (r < 0) {
			r = fail_at(c, h->loc, -EINVAL,
				    "'%s%s' is not a host name carwall can learn",
				    h->wildcard ? "*." : "", h->name);
			goto out;
		}
		if (m->n_names >= POLICY_MAPS_MAX_NAMES) {
			r = fail_at(c, h->loc, -E2BIG,
				    "app '%s': the policy names more than %u hosts (map capacity "
				    "per generation)",
				    app->id, (unsigned)POLICY_MAPS_MAX_NAMES);
			goto out;
		}
		r = portset_intern(c, &own, &portset);
		if (r < 0)
			goto out;
		if (grow((void **)&m->names, &c->cap_names, m->n_names + 1, sizeof(*m->names)) < 0) {
			r = -ENOMEM;
			goto out;
		}
		e = &m->names[m->n_names++];
		memset(e, 0, sizeof(*e));
		e->key.scope = cw_scope(c->gen, app_idx);
		e->key.kind = h->wildcard ? CW_NAME_WILDCARD : CW_NAME_EXACT;
		e->key.hash = wire.hash;
		e->val.portset = portset;
		e->val.flags = rule_list_proto_flags(c, &own);
		e->val.rule = own.v[0];
		e->val.wire_len = (uint16_t)wire.wire_len;
		memcpy(e->val.wire, wire.wire, wire.wire_len);
	}
	r = 0;
out:
	for (size_t i = 0; i < n_names; i++)
		free(names[i].rules.v);
	free(own.v);
	return r;
}

/* The trusted resolvers and the DNS tunables, for generation c->gen. */
static int compile_dns(struct compiler *c)
{
	const struct policy *p = c->policy;
	struct policy_maps *m = c->maps;

	if (p->n_resolvers > CW_MAX_RESOLVERS)
		return fail_at(c, p->resolvers[CW_MAX_RESOLVERS].loc, -E2BIG,
			       "more than %d resolvers (CW_MAX_RESOLVERS)", CW_MAX_RESOLVERS);
	if (p->n_resolvers) {
		m->resolvers = calloc(p->n_resolvers, sizeof(*m->resolvers));
		if (!m->resolvers)
			return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_resolvers; i++) {
		struct cw_resolver_key *k = &m->resolvers[m->n_resolvers++];

		k->gen = c->gen;
		k->family = (uint32_t)p->resolvers[i].family;
		memcpy(k->addr, p->resolvers[i].addr, p->resolvers[i].family == AF_INET ? 4 : 16);
	}
	m->ttl_min_s = p->dns.min_ttl_s;
	m->ttl_max_s = p->dns.max_ttl_s;
	m->grace_s = p->dns.grace_s;
	m->learn_quota = p->dns.max_learned_per_app;
	return 0;
}

uint32_t policy_app_uid(const char *id)
{
	uint64_t h = CW_DNS_HASH_BASIS; /* FNV-1a 64, folded */
	uint32_t uid;

	for (const char *s = id ? id : ""; *s; s++)
		h = cw_dns_hash_byte(h, (uint8_t)*s);
	uid = (uint32_t)(h ^ (h >> 32));
	return uid ? uid : 1;
}

/* Two apps of the policy with one uid would share their learned addresses: refuse. */
static int check_app_uids(struct compiler *c)
{
	const struct policy *p = c->policy;

	for (size_t a = 0; a < p->n_apps; a++)
		for (size_t b = 0; b < a; b++)
			if (policy_app_uid(p->apps[a].id) == policy_app_uid(p->apps[b].id))
				return fail_at(c, p->apps[a].loc, -EINVAL,
					       "apps '%s' and '%s' have the same identity hash "
					       "(uid 0x%08x), which keys learned addresses; rename "
					       "one of them",
					       p->apps[b].id, p->apps[a].id,
					       policy_app_uid(p->apps[a].id));
	return 0;
}

int policy_compile(const struct policy *p, uint32_t gen, struct policy_maps **ret_maps,
		   char *reason, size_t reason_size)
{
	_cleanup_free_ const struct policy_rule **rules = NULL;
	struct compiler c = {
		.policy = p,
		.gen = gen & 1,
		.reason = reason,
		.reason_size = reason_size,
	};
	int r;

	if (reason && reason_size)
		reason[0] = '\0';
	if (p->n_apps > CW_MAX_APPS)
		return fail(&c, -E2BIG, "too many apps (%zu, at most %d)", p->n_apps, CW_MAX_APPS);
	if (p->n_rules > CW_MAX_RULES)
		return fail(&c, -E2BIG, "too many rules (%zu, at most %d)", p->n_rules,
			    CW_MAX_RULES);
	/* Nothing is expanded before the bounds of the parsed policy are known to fit. */
	r = check_bounds(&c);
	if (r < 0)
		return r;
	r = check_app_uids(&c);
	if (r < 0)
		return r;

	rules = calloc(p->n_rules + 1, sizeof(*rules));
	c.maps = calloc(1, sizeof(*c.maps));
	if (!rules || !c.maps) {
		free(c.maps);
		return -ENOMEM;
	}
	c.rules = rules;
	c.maps->gen = c.gen;
	for (size_t a = 0; a < p->n_apps; a++)
		for (size_t i = 0; i < p->apps[a].n_rules; i++) {
			const struct policy_rule *rule = &p->apps[a].rules[i];
			if (rule->index >= p->n_rules) {
				r = fail(&c, -EINVAL, "rule index %zu out of range", rule->index);
				goto fail;
			}
			rules[rule->index] = rule;
		}

	for (size_t a = 0; a < p->n_apps; a++) {
		r = compile_app_family(&c, (uint32_t)a, &p->apps[a], AF_INET);
		if (r < 0)
			goto fail;
		r = compile_app_family(&c, (uint32_t)a, &p->apps[a], AF_INET6);
		if (r < 0)
			goto fail;
		r = compile_app_names(&c, (uint32_t)a, &p->apps[a]);
		if (r < 0)
			goto fail;
	}
	r = compile_dns(&c);
	if (r < 0)
		goto fail;
	emit_hosts(&c);
	portset_table_free(&c.portsets);
	free(c.portset_ports);
	*ret_maps = c.maps;
	return 0;
fail:
	portset_table_free(&c.portsets);
	free(c.portset_ports);
	policy_maps_free(c.maps);
	return r;
}

void policy_maps_free(struct policy_maps *m)
{
	if (!m)
		return;
	free(m->dst4);
	free(m->dst6);
	free(m->ports);
	free(m->hosts);
	free(m->names);
	free(m->resolvers);
	free(m->home4);
	free(m->home6);
	free(m);
}

/* Bits of `len` bits of a and b agree (both in network order). */
static bool bits_match(const uint8_t *a, const uint8_t *b, unsigned len)
{
	return prefix_contains(a, (uint8_t)len, b, (uint8_t)len);
}

/* The second half of a decision: (port set, protocol, port) in cw_ports. */
static const struct cw_port_val *lookup_port_val(const struct policy_maps *m, uint32_t portset,
						 uint16_t proto, uint16_t port)
{
	int best_len = -1;
	uint32_t pscope = cw_scope(m->gen, portset);
	uint16_t port_be = htons(port);
	const struct cw_port_val *hit = NULL;
	for (size_t i = 0; i < m->n_ports; i++) {
		const struct policy_port_entry *e = &m->ports[i];
		int len = (int)e->key.prefixlen - CW_SCOPE_BITS - 16;

		if (e->key.scope == pscope && e->key.proto == proto && len > best_len &&
		    bits_match((const uint8_t *)&e->key.port_be, (const uint8_t *)&port_be,
			       (unsigned)len)) {
			hit = &e->val;
			best_len = len;
		}
	}
	return hit;
}

/* Then consent: DENY_CONSENT when every rule allowing it serves a purpose switched off. */
static enum cw_verdict lookup_port(const struct policy_maps *m, uint32_t portset, uint16_t proto,
				   uint16_t port, uint32_t *ret_rule, uint32_t *ret_purposes)
{
	const struct cw_port_val *hit = lookup_port_val(m, portset, proto, port);

	if (!hit)
		return CW_VERDICT_DENY_NO_RULE;
	if (ret_rule)
		*ret_rule = hit->rule;
	if (ret_purposes)
		*ret_purposes = hit->purposes;
	return policy_maps_purposes_allowed(m, hit->purposes) ? CW_VERDICT_ALLOW_RULE
							      : CW_VERDICT_DENY_CONSENT;
}

bool policy_maps_purposes_allowed(const struct policy_maps *m, uint32_t purposes)
{
	return (purposes & ~(m->consent_deny & ~CW_PURPOSE_NONE)) != 0;
}

enum cw_verdict policy_maps_judge(const struct policy_maps *m, uint32_t app, int family,
				  const uint8_t *addr, uint16_t proto, uint16_t port,
				  uint32_t *ret_rule, uint32_t *ret_purposes)
{
	uint32_t portset;

	if (!policy_maps_lookup_dst(m, app, family, addr, &portset))
		return CW_VERDICT_DENY_NO_RULE;
	return lookup_port(m, portset, proto, port, ret_rule, ret_purposes);
}

int policy_maps_lookup_port(const struct policy_maps *m, uint32_t portset, uint16_t proto,
			    uint16_t port, struct cw_port_val *ret)
{
	const struct cw_port_val *hit = lookup_port_val(m, portset, proto, port);

	if (!hit)
		return 0;
	*ret = *hit;
	return 1;
}

/* ---- data residency: the home region's prefixes ------------------------------------------- */

static int cmp_home4(const void *a, const void *b)
{
	const struct policy_home4_entry *x = a, *y = b;
	int c = memcmp(x->key.addr, y->key.addr, sizeof(x->key.addr));

	return c ? c : (x->key.prefixlen > y->key.prefixlen) - (x->key.prefixlen < y->key.prefixlen);
}

static int cmp_home6(const void *a, const void *b)
{
	const struct policy_home6_entry *x = a, *y = b;
	int c = memcmp(x->key.addr, y->key.addr, sizeof(x->key.addr));

	return c ? c : (x->key.prefixlen > y->key.prefixlen) - (x->key.prefixlen < y->key.prefixlen);
}

void policy_maps_sort_home(struct policy_maps *m)
{
	if (m->n_home4)
		qsort(m->home4, m->n_home4, sizeof(*m->home4), cmp_home4);
	if (m->n_home6)
		qsort(m->home6, m->n_home6, sizeof(*m->home6), cmp_home6);
}

/*
 * Whether addr (`bytes` long) is in one of n sorted, disjoint prefixes of `stride`-byte
 * entries, each an address at `addr_off` with its length (key.prefixlen - 32) at offset 0.
 */
static bool in_sorted_prefixes(const void *entries, size_t n, size_t stride, size_t addr_off,
			       const uint8_t *addr, size_t bytes)
{
	const char *v = entries;
	size_t lo = 0, hi = n;

	/* The last entry whose first address is <= addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(v + mid * stride + addr_off, addr, bytes) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return false;
	v += (lo - 1) * stride;
	return prefix_contains((const uint8_t *)v + addr_off, (uint8_t)(*(const uint32_t *)v - 32),
			       addr, (uint8_t)(*(const uint32_t *)v - 32));
}

bool policy_maps_region_refuses(const struct policy_maps *m, int family, const uint8_t *addr,
				const struct cw_port_val *val)
{
	static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (!m->home_only || policy_maps_purposes_allowed(m, val->xb_purposes))
		return false;
	if (family == AF_INET6 && !memcmp(addr, v4_mapped, sizeof(v4_mapped))) {
		family = AF_INET;
		addr += 12;
	}
	if (family == AF_INET)
		return !in_sorted_prefixes(m->home4, m->n_home4, sizeof(*m->home4),
					   offsetof(struct policy_home4_entry, key.addr), addr, 4);
	return !in_sorted_prefixes(m->home6, m->n_home6, sizeof(*m->home6),
				   offsetof(struct policy_home6_entry, key.addr), addr, 16);
}

int policy_maps_lookup(const struct policy_maps *m, uint32_t app, int family, const uint8_t *addr,
		       uint16_t proto, uint16_t port, uint32_t *ret_rule)
{
	return policy_maps_judge(m, app, family, addr, proto, port, ret_rule, NULL) ==
	       CW_VERDICT_ALLOW_RULE;
}

/* The cw_names entry of (scope, kind, hash) whose wire form is wire[0..len). */
static const struct policy_name_entry *find_name(const struct policy_maps *m, uint32_t scope,
						 uint32_t kind, uint64_t hash, const uint8_t *wire,
						 unsigned len)
{
	for (size_t i = 0; i < m->n_names; i++) {
		const struct policy_name_entry *e = &m->names[i];

		if (e->key.scope == scope && e->key.kind == kind && e->key.hash == hash &&
		    e->val.wire_len == len && !memcmp(e->val.wire, wire, len))
			return e;
	}
	return NULL;
}

const struct policy_name_entry *policy_maps_match_name(const struct policy_maps *m, uint32_t app,
							const char *name)
{
	uint32_t scope = cw_scope(m->gen, app);
	const struct policy_name_entry *e;
	struct dns_name n;
	unsigned off = 0;

	if (!name || dns_name_from_text(name, &n) < 0)
		return NULL;
	e = find_name(m, scope, CW_NAME_EXACT, n.hash, n.wire, n.wire_len);
	if (e)
		return e;
	/* Parent suffixes, longest first: suffix_hash[labels - 2] is the name minus one label. */
	for (unsigned i = n.labels - 1; i-- > 0;) {
		off += 1u + n.wire[off];
		e = find_name(m, scope, CW_NAME_WILDCARD, n.suffix_hash[i], n.wire + off,
			      n.wire_len - off);
		if (e)
			return e;
	}
	return NULL;
}

enum cw_verdict policy_maps_judge_name(const struct policy_maps *m, uint32_t app,
				       const char *name, uint16_t proto, uint16_t port,
				       uint32_t *ret_rule, uint32_t *ret_purposes)
{
	const struct policy_name_entry *e = policy_maps_match_name(m, app, name);

	if (!e)
		return CW_VERDICT_DENY_NO_RULE;
	return lookup_port(m, e->val.portset, proto, port, ret_rule, ret_purposes);
}

int policy_maps_lookup_name(const struct policy_maps *m, uint32_t app, const char *name,
			    uint16_t proto, uint16_t port, uint32_t *ret_rule)
{
	return policy_maps_judge_name(m, app, name, proto, port, ret_rule, NULL) ==
	       CW_VERDICT_ALLOW_RULE;
}

int policy_maps_lookup_dst(const struct policy_maps *m, uint32_t app, int family,
			   const uint8_t *addr, uint32_t *ret_portset)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint32_t scope = cw_scope(m->gen, app);
	const struct cw_dst_val *best = NULL;
	int best_len = -1;

	if (family == AF_INET6 && !memcmp(addr, mapped, sizeof(mapped))) {
		family = AF_INET;
		addr += 12;
	}
	if (family == AF_INET) {
		for (size_t i = 0; i < m->n_dst4; i++) {
			const struct policy_dst4_entry *e = &m->dst4[i];
			int len = (int)e->key.prefixlen - CW_SCOPE_BITS;

			if (e->key.scope == scope && len > best_len &&
			    bits_match(e->key.addr, addr, (unsigned)len)) {
				best = &e->val;
				best_len = len;
			}
		}
	} else {
		for (size_t i = 0; i < m->n_dst6; i++) {
			const struct policy_dst6_entry *e = &m->dst6[i];
			int len = (int)e->key.prefixlen - CW_SCOPE_BITS;

			if (e->key.scope == scope && len > best_len &&
			    bits_match(e->key.addr, addr, (unsigned)len)) {
				best = &e->val;
				best_len = len;
			}
		}
	}
	if (!best)
		return 0;
	if (ret_portset)
		*ret_portset = best->portset;
	return 1;
}

static int cmp_port_span(const void *a, const void *b)
{
	const struct policy_port_span *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

int policy_maps_port_spans(const struct policy_maps *m, uint32_t portset, uint16_t proto,
			   struct policy_port_span **ret, size_t *ret_n)
{
	_cleanup_free_ struct policy_port_span *v = NULL;
	uint32_t pscope = cw_scope(m->gen, portset);
	size_t n = 0, cap = 0, u = 0;

	/* Each entry is an aligned block of 2^(16 - bits) ports starting at its port. */
	for (size_t i = 0; i < m->n_ports; i++) {
		const struct policy_port_entry *e = &m->ports[i];
		unsigned bits = e->key.prefixlen - CW_SCOPE_BITS - 16;
		uint32_t size, first;

		if (e->key.scope != pscope || e->key.proto != proto || bits > 16 ||
		    !policy_maps_purposes_allowed(m, e->val.purposes))
			continue;
		size = 1u << (16 - bits);
		first = ntohs(e->key.port_be) & ~(size - 1); /* the trie ignores bits past the prefix */
		if (grow((void **)&v, &cap, n + 1, sizeof(*v)) < 0)
			return -ENOMEM;
		v[n++] = (struct policy_port_span){
			.first = (uint16_t)first,
			.last = (uint16_t)(first + size - 1),
			.rule = e->val.rule,
		};
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_port_span);
	for (size_t i = 0; i < n; i++) {
		if (u > 0 && v[i].first <= v[u - 1].last)
			return -EUCLEAN;
		if (u > 0 && v[i].first == v[u - 1].last + 1u && v[i].rule == v[u - 1].rule)
			v[u - 1].last = v[i].last;
		else
			v[u++] = v[i];
	}
	*ret = u ? TAKE_PTR(v) : NULL;
	*ret_n = u;
	return 0;
}
