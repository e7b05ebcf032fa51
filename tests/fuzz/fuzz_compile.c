// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the compiler (userspace/lib/policy_compile.c) and explain: each input is
 * parsed as a policy; a valid policy is compiled for generation 0 or 1 (the input's length
 * picks it), and
 *
 *   - a refusal is -E2BIG or -EINVAL (or -ENOMEM) with one line of reason that names the
 *     policy, and no maps;
 *   - compiled maps stay within the per-generation capacities; every entry is scoped to the
 *     generation and to an app (destinations) or port set (ports) that exists, with zeroed host
 *     bits and a valid prefix length; no two destination entries have the same key; every port
 *     entry names a rule of the policy, of the app whose prefixes lead to it, that allows its
 *     protocol; the port blocks of a set never overlap;
 *   - for flows derived from the policy (the first and last address of a rule's prefixes, ports
 *     at and around its ranges, both protocols, IPv4 also as IPv4-mapped IPv6):
 *     policy_maps_lookup() gives the verdict and rule a direct reading of the policy gives (the
 *     first rule in file order with a prefix containing the address and a matching port and
 *     protocol, a rule marked cross-border first), and explain_flow() agrees with both and names a prefix of that rule that
 *     contains the address; explain_ports() gives spans whose ends the maps allow by the
 *     span's rule;
 *   - host names: one cw_names entry per (app, name, kind), scoped, with the wire form and hash
 *     of its name, a rule of its app; for names derived from the policy (each name, a name
 *     below each wildcard, each wildcard's own base) policy_maps_lookup_name() gives the rule a
 *     direct reading gives (the first rule naming it, or a wildcard strictly above it, with a
 *     matching port and protocol), and explain_flow() agrees and names a matching host.
 *
 * Never a crash, a leak or undefined behaviour; the compiler's bounds keep every input's memory
 * small (see POLICY_MAPS_MAX_PAIRS).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "explain.h"
#include "policy.h"
#include "policy_compile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* Bounds on the flows tried per input, so that a big input stays fast. */
#define MAX_APPS  4
#define MAX_DESTS 8 /* `to` elements per app, set entries included */
#define MAX_PORTS 6 /* ports tried per destination */

static bool bits_zero_after(const uint8_t *addr, unsigned len, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++) {
		unsigned bits = len > i * 8 ? len - i * 8 : 0;
		uint8_t mask = bits >= 8 ? 0 : (uint8_t)(0xff >> bits);

		if (addr[i] & mask)
			return false;
	}
	return true;
}

static bool prefix_has(const struct policy_prefix *pfx, int family, const uint8_t *addr)
{
	unsigned full = pfx->len / 8, rest = pfx->len % 8;

	if (pfx->family != family || memcmp(pfx->addr, addr, full))
		return false;
	return !rest || ((pfx->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static bool rule_has_addr(const struct policy *p, const struct policy_rule *r, int family,
			  const uint8_t *addr)
{
	for (size_t j = 0; j < r->n_to; j++) {
		const struct policy_dest *d = &r->to[j];

		if (d->is_host)
			continue;
		if (!d->is_set) {
			if (prefix_has(&d->prefix, family, addr))
				return true;
			continue;
		}
		for (size_t k = 0; k < p->sets[d->set].n_prefixes; k++)
			if (prefix_has(&p->sets[d->set].prefixes[k], family, addr))
				return true;
	}
	return false;
}

static bool rule_has_port(const struct policy_rule *r, uint16_t proto, uint16_t port)
{
	if (r->proto == POLICY_PROTO_TCP && proto != IPPROTO_TCP)
		return false;
	if (r->proto == POLICY_PROTO_UDP && proto != IPPROTO_UDP)
		return false;
	if (!r->n_ports)
		return true;
	for (size_t i = 0; i < r->n_ports; i++)
		if (port >= r->ports[i].first && port <= r->ports[i].last)
			return true;
	return false;
}

/*
 * The verdict read directly from the policy: the deciding global rule index, or -1. The first
 * rule marked cross-border that allows the flow decides, else the first rule (residency:
 * cw_port_val.xb_purposes marks a flow some cross-border rule allows).
 */
static long naive_verdict(const struct policy *p, const struct policy_app *app, int family,
			  const uint8_t *addr, uint16_t proto, uint16_t port)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < app->n_rules; i++) {
			const struct policy_rule *r = &app->rules[i];

			if ((pass == 0 && !r->cross_border) || !rule_has_port(r, proto, port) ||
			    !rule_has_addr(p, r, family, addr))
				continue;
			return (long)r->index;
		}
	return -1;
}

static void check_flow(const struct policy *p, const struct policy_maps *m, size_t a,
		       const struct explain_dest *d, uint16_t proto, uint16_t port)
{
	const struct policy_app *app = &p->apps[a];
	const uint8_t *addr = d->addr;
	int family = d->family;
	struct explain_flow f;
	uint32_t rule = 0;
	long naive;
	int r;

	if (explain_dest_is_v4_mapped(d)) {
		family = AF_INET;
		addr = d->addr + 12;
	}
	naive = naive_verdict(p, app, family, addr, proto, port);
	r = policy_maps_lookup(m, (uint32_t)a, d->family, d->addr, proto, port, &rule);
	check(r == 0 || r == 1);
	check(r == (naive >= 0));
	if (r)
		check(rule == (uint32_t)naive);

	check(explain_flow(p, m, a, d, proto, port, &f) == 0);
	check(f.allowed == (r == 1));
	if (f.allowed) {
		check(f.address_covered);
		check(f.match.rule && f.match.rule->index == rule);
		check(f.match.prefix && prefix_has(f.match.prefix, family, addr));
	}
}

/* explain_ports(): each span's ends are allowed by its rule, and the port before it is not. */
static void check_spans(const struct policy *p, const struct policy_maps *m, size_t a,
			const struct explain_dest *d, uint16_t proto)
{
	struct explain_span *spans = NULL;
	size_t n = 0;
	uint32_t rule;

	check(explain_ports(p, m, a, d, proto, &spans, &n) == 0);
	check(explain_spans_count(spans, n) <= 65536);
	for (size_t i = 0; i < n && i < 16; i++) {
		const struct explain_span *s = &spans[i];

		check(s->first <= s->last && (i == 0 || s->first > spans[i - 1].last));
		check(policy_maps_lookup(m, (uint32_t)a, d->family, d->addr, proto, s->first,
					 &rule) == 1 &&
		      rule == s->match.rule->index);
		check(policy_maps_lookup(m, (uint32_t)a, d->family, d->addr, proto, s->last,
					 &rule) == 1 &&
		      rule == s->match.rule->index);
		if (s->first > 0 && (i == 0 || spans[i - 1].last + 1u < s->first))
			check(policy_maps_lookup(m, (uint32_t)a, d->family, d->addr, proto,
						 (uint16_t)(s->first - 1), NULL) == 0);
	}
	free(spans);
}

/* The ports to try for a rule: at and around the ends of its first ranges, or a few. */
static size_t ports_of(const struct policy_rule *r, uint16_t *ports)
{
	size_t n = 0;

	if (!r->n_ports) {
		ports[n++] = 1;
		ports[n++] = 443;
		ports[n++] = 65535;
		return n;
	}
	for (size_t i = 0; i < r->n_ports && n + 3 <= MAX_PORTS; i++) {
		const struct policy_port_range *pr = &r->ports[i];

		ports[n++] = pr->first;
		if (pr->first > 1)
			ports[n++] = (uint16_t)(pr->first - 1);
		if (pr->last < 65535)
			ports[n++] = (uint16_t)(pr->last + 1);
	}
	return n;
}

/* Flows to the first and last address of a prefix, on the rule's ports, both protocols. */
static void check_prefix_flows(const struct policy *p, const struct policy_maps *m, size_t a,
			       const struct policy_rule *rule, const struct policy_prefix *pfx)
{
	static const uint16_t protos[] = {IPPROTO_TCP, IPPROTO_UDP};
	unsigned bytes = pfx->family == AF_INET ? 4 : 16;
	uint16_t ports[MAX_PORTS];
	size_t n_ports = ports_of(rule, ports);

	for (int last = 0; last <= 1; last++) {
		struct explain_dest d = {.family = pfx->family};

		memcpy(d.addr, pfx->addr, bytes);
		if (last)
			for (unsigned i = 0; i < bytes; i++) {
				unsigned bits = pfx->len > i * 8 ? pfx->len - i * 8 : 0;
				if (bits < 8)
					d.addr[i] |= (uint8_t)(0xff >> bits);
			}
		for (int mapped = 0; mapped <= (pfx->family == AF_INET); mapped++) {
			struct explain_dest e = d;

			if (mapped) {
				e.family = AF_INET6;
				memset(e.addr, 0, sizeof(e.addr));
				e.addr[10] = e.addr[11] = 0xff;
				memcpy(e.addr + 12, d.addr, 4);
			}
			for (size_t k = 0; k < 2; k++) {
				for (size_t i = 0; i < n_ports; i++)
					check_flow(p, m, a, &e, protos[k], ports[i]);
				check_spans(p, m, a, &e, protos[k]);
			}
		}
	}
}

static bool rule_has_name(const struct policy *p, const struct policy_rule *r, const char *name)
{
	for (size_t j = 0; j < r->n_to; j++) {
		const struct policy_dest *d = &r->to[j];

		if (d->is_host && policy_host_matches(&d->host, name))
			return true;
		if (!d->is_set)
			continue;
		for (size_t k = 0; k < p->sets[d->set].n_hosts; k++)
			if (policy_host_matches(&p->sets[d->set].hosts[k], name))
				return true;
	}
	return false;
}

/* A flow to an address learned for `name`, against a direct reading of the policy. */
static void check_name_flow(const struct policy *p, const struct policy_maps *m, size_t a,
			    const char *name, uint16_t proto, uint16_t port)
{
	const struct policy_app *app = &p->apps[a];
	struct explain_dest d = { .is_name = true };
	struct explain_flow f;
	uint32_t rule = 0;
	long naive = -1;
	int r;

	for (int pass = 0; pass < 2 && naive < 0; pass++)
		for (size_t i = 0; i < app->n_rules && naive < 0; i++)
			if ((pass == 1 || app->rules[i].cross_border) &&
			    rule_has_port(&app->rules[i], proto, port) &&
			    rule_has_name(p, &app->rules[i], name))
				naive = (long)app->rules[i].index;
	r = policy_maps_lookup_name(m, (uint32_t)a, name, proto, port, &rule);
	check(r == (naive >= 0));
	if (r)
		check(rule == (uint32_t)naive);

	snprintf(d.name, sizeof(d.name), "%s", name);
	check(explain_flow(p, m, a, &d, proto, port, &f) == 0);
	check(f.allowed == (r == 1));
	if (f.allowed)
		check(f.match.rule->index == rule && f.match.host &&
		      policy_host_matches(f.match.host, name));
}

/* Flows for a host of a rule: the name (below a wildcard, and the wildcard's own base). */
static void check_name_flows(const struct policy *p, const struct policy_maps *m, size_t a,
			     const struct policy_rule *rule, const struct policy_host *h)
{
	static const uint16_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	char below[POLICY_MAX_HOST_LEN + 3];
	uint16_t ports[MAX_PORTS];
	size_t n_ports = ports_of(rule, ports);

	snprintf(below, sizeof(below), "x.%s", h->name);
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < n_ports; i++) {
			check_name_flow(p, m, a, h->name, protos[k], ports[i]);
			if (h->wildcard && strlen(below) <= POLICY_MAX_HOST_LEN)
				check_name_flow(p, m, a, below, protos[k], ports[i]);
		}
}

static void check_flows(const struct policy *p, const struct policy_maps *m)
{
	for (size_t a = 0; a < p->n_apps && a < MAX_APPS; a++) {
		const struct policy_app *app = &p->apps[a];
		size_t tried = 0;

		for (size_t i = 0; i < app->n_rules && tried < MAX_DESTS; i++) {
			const struct policy_rule *rule = &app->rules[i];

			for (size_t j = 0; j < rule->n_to && tried < MAX_DESTS; j++) {
				const struct policy_dest *d = &rule->to[j];

				if (d->is_host) {
					check_name_flows(p, m, a, rule, &d->host);
					tried++;
					continue;
				}
				if (!d->is_set) {
					check_prefix_flows(p, m, a, rule, &d->prefix);
					tried++;
					continue;
				}
				const struct policy_set *set = &p->sets[d->set];
				for (size_t k = 0; k < set->n_prefixes && tried < MAX_DESTS; k++) {
					check_prefix_flows(p, m, a, rule, &set->prefixes[k]);
					tried++;
				}
				for (size_t k = 0; k < set->n_hosts && tried < MAX_DESTS; k++) {
					check_name_flows(p, m, a, rule, &set->hosts[k]);
					tried++;
				}
			}
		}
	}
}

static int cmp_dst4(const void *x, const void *y)
{
	return memcmp(&((const struct policy_dst4_entry *)x)->key,
		      &((const struct policy_dst4_entry *)y)->key, sizeof(struct cw_dst4_key));
}

static int cmp_dst6(const void *x, const void *y)
{
	return memcmp(&((const struct policy_dst6_entry *)x)->key,
		      &((const struct policy_dst6_entry *)y)->key, sizeof(struct cw_dst6_key));
}

/* The app of each port set, from the destination entries that name it; -1: none yet. */
static void note_portset_app(long *app_of, size_t n_portsets, uint32_t portset, uint32_t app)
{
	check(portset < n_portsets);
	check(app_of[portset] < 0 || app_of[portset] == (long)app);
	app_of[portset] = app;
}

static void check_maps(const struct policy *p, const struct policy_maps *m, uint32_t gen)
{
	const struct policy_rule **rules;
	long *app_of;

	check(m->gen == gen);
	check(m->n_dst4 <= POLICY_MAPS_MAX_DST4);
	check(m->n_dst6 <= POLICY_MAPS_MAX_DST6);
	check(m->n_ports <= POLICY_MAPS_MAX_PORTS);
	check(m->n_portsets <= m->n_dst4 + m->n_dst6 + m->n_names);
	check(m->n_names <= POLICY_MAPS_MAX_NAMES);
	check(m->n_resolvers == p->n_resolvers && m->n_resolvers <= CW_MAX_RESOLVERS);
	for (size_t i = 0; i < m->n_resolvers; i++)
		check(m->resolvers[i].gen == gen);
	check(m->ttl_min_s <= m->ttl_max_s && m->learn_quota > 0);
	check(m->n_hosts <= POLICY_MAPS_MAX_HOSTS);
	/* The host shortcut answers exactly as the tries do (the programs try it first). */
	for (size_t i = 0; i < m->n_hosts; i++) {
		const struct policy_host_entry *h = &m->hosts[i];
		uint32_t rule = UINT32_MAX;

		check(h->key.scope >> CW_SCOPE_GEN_SHIFT == gen);
		check((h->key.scope & CW_SCOPE_ID_MASK) < p->n_apps);
		check(policy_maps_lookup(m, h->key.scope & CW_SCOPE_ID_MASK, (int)h->key.family,
					 h->key.addr, h->key.proto, ntohs(h->key.port_be), &rule) &&
		      rule == h->val.rule);
	}

	rules = calloc(p->n_rules + 1, sizeof(*rules));
	app_of = calloc(m->n_portsets + 1, sizeof(*app_of));
	check(rules && app_of);
	for (size_t a = 0; a < p->n_apps; a++)
		for (size_t i = 0; i < p->apps[a].n_rules; i++)
			rules[p->apps[a].rules[i].index] = &p->apps[a].rules[i];
	for (size_t i = 0; i < m->n_portsets; i++)
		app_of[i] = -1;

	for (size_t i = 0; i < m->n_dst4; i++) {
		const struct policy_dst4_entry *e = &m->dst4[i];
		unsigned len = e->key.prefixlen - CW_SCOPE_BITS;

		check(e->key.prefixlen >= CW_SCOPE_BITS && len <= 32);
		check(e->key.scope >> CW_SCOPE_GEN_SHIFT == gen);
		check((e->key.scope & CW_SCOPE_ID_MASK) < p->n_apps);
		check(bits_zero_after(e->key.addr, len, 4));
		check(e->val.flags && !(e->val.flags & ~(CW_DST_F_TCP | CW_DST_F_UDP)));
		note_portset_app(app_of, m->n_portsets, e->val.portset,
				 e->key.scope & CW_SCOPE_ID_MASK);
	}
	for (size_t i = 0; i < m->n_dst6; i++) {
		const struct policy_dst6_entry *e = &m->dst6[i];
		unsigned len = e->key.prefixlen - CW_SCOPE_BITS;

		check(e->key.prefixlen >= CW_SCOPE_BITS && len <= 128);
		check(e->key.scope >> CW_SCOPE_GEN_SHIFT == gen);
		check((e->key.scope & CW_SCOPE_ID_MASK) < p->n_apps);
		check(bits_zero_after(e->key.addr, len, 16));
		check(e->val.flags && !(e->val.flags & ~(CW_DST_F_TCP | CW_DST_F_UDP)));
		note_portset_app(app_of, m->n_portsets, e->val.portset,
				 e->key.scope & CW_SCOPE_ID_MASK);
	}

	for (size_t i = 0; i < m->n_names; i++) {
		const struct policy_name_entry *e = &m->names[i];
		uint32_t app = e->key.scope & CW_SCOPE_ID_MASK;
		char text[CW_DNS_MAX_NAME * 4];
		struct dns_name n;

		check(e->key.scope >> CW_SCOPE_GEN_SHIFT == gen && app < p->n_apps);
		check(e->key.kind == CW_NAME_EXACT || e->key.kind == CW_NAME_WILDCARD);
		check(e->val.flags && !(e->val.flags & ~(CW_DST_F_TCP | CW_DST_F_UDP)));
		check(e->val.pad == 0 && e->val.wire_len <= sizeof(e->val.wire));
		check(dns_name_to_text(e->val.wire, e->val.wire_len, text, sizeof(text)) > 0);
		check(dns_name_from_text(text, &n) == 0 && n.hash == e->key.hash &&
		      n.wire_len == e->val.wire_len);
		for (size_t k = 0; k < i; k++)
			check(memcmp(&m->names[k].key, &e->key, sizeof(e->key)) != 0);
		note_portset_app(app_of, m->n_portsets, e->val.portset, app);
		check(e->val.rule < p->n_rules && rules[e->val.rule] >= p->apps[app].rules &&
		      rules[e->val.rule] < p->apps[app].rules + p->apps[app].n_rules);
	}

	/* No key twice (the tries would keep one of them). */
	struct policy_dst4_entry *d4 = malloc(m->n_dst4 * sizeof(*d4) + 1);
	struct policy_dst6_entry *d6 = malloc(m->n_dst6 * sizeof(*d6) + 1);
	check(d4 && d6);
	if (m->n_dst4)
		memcpy(d4, m->dst4, m->n_dst4 * sizeof(*d4));
	if (m->n_dst6)
		memcpy(d6, m->dst6, m->n_dst6 * sizeof(*d6));
	qsort(d4, m->n_dst4, sizeof(*d4), cmp_dst4);
	qsort(d6, m->n_dst6, sizeof(*d6), cmp_dst6);
	for (size_t i = 1; i < m->n_dst4; i++)
		check(cmp_dst4(&d4[i - 1], &d4[i]) != 0);
	for (size_t i = 1; i < m->n_dst6; i++)
		check(cmp_dst6(&d6[i - 1], &d6[i]) != 0);
	free(d4);
	free(d6);

	for (size_t i = 0; i < m->n_ports; i++) {
		const struct policy_port_entry *e = &m->ports[i];
		unsigned bits = e->key.prefixlen - CW_SCOPE_BITS - 16;
		uint32_t portset = e->key.scope & CW_SCOPE_ID_MASK;
		uint16_t port_be = e->key.port_be;
		const struct policy_rule *r;

		check(e->key.prefixlen >= CW_SCOPE_BITS + 16 && bits <= 16);
		check(e->key.scope >> CW_SCOPE_GEN_SHIFT == gen);
		check(portset < m->n_portsets && app_of[portset] >= 0);
		check(e->key.proto == IPPROTO_TCP || e->key.proto == IPPROTO_UDP);
		check(bits_zero_after((const uint8_t *)&port_be, bits, 2));
		check(e->val.purposes != 0 && e->val.rule < p->n_rules);
		check((e->val.xb_purposes & ~e->val.purposes) == 0);
		r = rules[e->val.rule];
		/* The deciding rule is one of those the entry's consent purposes come from. */
		check(r && (e->val.purposes & (r->purpose < 0
							? CW_PURPOSE_NONE
							: CW_PURPOSE_BIT((uint32_t)r->purpose))));
		/* A cross-border rule decides wherever one allows (residency). */
		check(r && (r->cross_border ? (e->val.xb_purposes &
					       (r->purpose < 0 ? CW_PURPOSE_NONE
							       : CW_PURPOSE_BIT((uint32_t)r->purpose)))
					    : e->val.xb_purposes == 0));
		check(r && r->proto !=
			       (e->key.proto == IPPROTO_TCP ? POLICY_PROTO_UDP : POLICY_PROTO_TCP));
		/* The rule belongs to the app whose prefixes lead to this port set. */
		check(r >= p->apps[app_of[portset]].rules &&
		      r < p->apps[app_of[portset]].rules + p->apps[app_of[portset]].n_rules);
	}

	/* The blocks of a port set never overlap (a few sets: each look is a pass over all). */
	for (size_t s = 0; s < m->n_portsets && s < 16; s++)
		for (int k = 0; k < 2; k++) {
			struct policy_port_span *spans = NULL;
			size_t n = 0;

			check(policy_maps_port_spans(m, (uint32_t)s, k ? IPPROTO_UDP : IPPROTO_TCP,
						     &spans, &n) == 0);
			free(spans);
		}
	free(rules);
	free(app_of);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_maps *m = NULL;
	struct policy *p = NULL;
	uint32_t gen = size & 1;
	char reason[512];
	int r;

	if (policy_parse_buffer("fuzz.yaml", data, size, &p, NULL) < 0)
		return 0;
	memset(reason, 0xaa, sizeof(reason));
	r = policy_compile(p, gen, &m, reason, sizeof(reason));
	if (r < 0) {
		check(r == -E2BIG || r == -EINVAL || r == -ENOMEM);
		check(!m);
		check(memchr(reason, '\0', sizeof(reason)) && !strchr(reason, '\n'));
		check(r == -ENOMEM || !strncmp(reason, "fuzz.yaml:", strlen("fuzz.yaml:")));
		policy_free(p);
		return 0;
	}
	check(m);
	check_maps(p, m, gen);
	check_flows(p, m);
	policy_maps_free(m);
	policy_free(p);
	return 0;
}
