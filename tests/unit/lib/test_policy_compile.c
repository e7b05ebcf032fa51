// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: compiling a policy into BPF map entries (userspace/lib/policy_compile.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_compile.h"

static struct policy *parse(const char *yaml)
{
	struct policy_error err = {};
	struct policy *p = NULL;
	int r = policy_parse_buffer("test.yaml", yaml, strlen(yaml), &p, &err);

	if (r < 0)
		fail_msg("parse failed: %s:%u:%u: %s", err.file, err.loc.line, err.loc.column,
			 err.reason);
	return p;
}

static struct policy_maps *compile(const struct policy *p, uint32_t gen)
{
	struct policy_maps *m = NULL;
	char reason[256];
	int r = policy_compile(p, gen, &m, reason, sizeof(reason));

	if (r < 0)
		fail_msg("compile failed: %s", reason);
	return m;
}

/* Verdict for app 0 (or `app`) of an address in text form; returns the rule or -1 (refused). */
static long verdict(const struct policy_maps *m, uint32_t app, const char *addr, uint16_t proto,
		    uint16_t port)
{
	uint8_t a[16];
	uint32_t rule;
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	assert_int_equal(inet_pton(family, addr, a), 1);
	if (!policy_maps_lookup(m, app, family, a, proto, port, &rule))
		return -1;
	return rule;
}

static const char demo[] = "version: 1\n"
			   "sets:\n"
			   "  oem-backend: [198.51.100.20, 2001:db8:51::20]\n"
			   "  oem-maps: [198.51.100.64/26, 2001:db8:100::/48]\n"
			   "apps:\n"
			   "  mediaplayer:\n"
			   "    allow:\n"
			   "      - to: oem-backend\n"
			   "        ports: [443]\n"
			   "        proto: tcp\n"
			   "  navigation:\n"
			   "    allow:\n"
			   "      - to: oem-maps\n"
			   "        ports: [443, 8443-8450]\n"
			   "        proto: tcp\n";

static void test_demo_policy_entry_counts(void **state)
{
	(void)state;
	struct policy *p = parse(demo);
	struct policy_maps *m = compile(p, 0);

	assert_int_equal(m->n_dst4, 2);
	assert_int_equal(m->n_dst6, 2);
	/* 443; then 443, 8443, 8444-8447, 8448-8449, 8450 */
	assert_int_equal(m->n_ports, 1 + 5);
	assert_int_equal(m->n_portsets, 2);
	policy_maps_free(m);
	policy_free(p);
}

static void test_demo_policy_verdicts(void **state)
{
	(void)state;
	struct policy *p = parse(demo);
	struct policy_maps *m = compile(p, 1);

	assert_int_equal(verdict(m, 0, "198.51.100.20", IPPROTO_TCP, 443), 0);
	assert_int_equal(verdict(m, 0, "2001:db8:51::20", IPPROTO_TCP, 443), 0);
	assert_int_equal(verdict(m, 0, "198.51.100.20", IPPROTO_UDP, 443), -1);
	assert_int_equal(verdict(m, 0, "198.51.100.20", IPPROTO_TCP, 444), -1);
	assert_int_equal(verdict(m, 0, "203.0.113.7", IPPROTO_TCP, 443), -1);
	assert_int_equal(verdict(m, 0, "198.51.100.80", IPPROTO_TCP, 443), -1);
	assert_int_equal(verdict(m, 1, "198.51.100.80", IPPROTO_TCP, 8450), 1);
	assert_int_equal(verdict(m, 1, "198.51.100.80", IPPROTO_TCP, 8451), -1);
	assert_int_equal(verdict(m, 1, "198.51.100.20", IPPROTO_TCP, 443), -1);
	assert_int_equal(verdict(m, 1, "2001:db8:100:ffff::1", IPPROTO_TCP, 8443), 1);
	policy_maps_free(m);
	policy_free(p);
}

static void test_keys_carry_generation_and_zero_padding(void **state)
{
	(void)state;
	struct policy *p = parse(demo);

	for (uint32_t gen = 0; gen < 2; gen++) {
		struct policy_maps *m = compile(p, gen);

		assert_int_equal(m->gen, gen);
		for (size_t i = 0; i < m->n_dst4; i++) {
			assert_int_equal(m->dst4[i].key.scope >> CW_SCOPE_GEN_SHIFT, gen);
			/* The demo's rules are all TCP. */
			assert_int_equal(m->dst4[i].val.flags, CW_DST_F_TCP);
		}
		for (size_t i = 0; i < m->n_dst6; i++)
			assert_int_equal(m->dst6[i].key.scope >> CW_SCOPE_GEN_SHIFT, gen);
		for (size_t i = 0; i < m->n_ports; i++) {
			assert_int_equal(m->ports[i].key.scope >> CW_SCOPE_GEN_SHIFT, gen);
			assert_int_equal(m->ports[i].key.proto, IPPROTO_TCP);
			/* Every rule has a consent bit (CW_PURPOSE_NONE without a purpose). */
			assert_int_not_equal(m->ports[i].val.purposes, 0);
		}
		/* 198.51.100.20/32 of app 0: prefix length counts the scope bits. */
		assert_int_equal(m->dst4[0].key.prefixlen, CW_SCOPE_BITS + 32);
		assert_int_equal(m->dst4[0].key.scope, cw_scope(gen, 0));
		assert_memory_equal(m->dst4[0].key.addr, ((uint8_t[]){ 198, 51, 100, 20 }), 4);
		policy_maps_free(m);
	}
	policy_free(p);
}

static void test_overlapping_prefixes_with_different_ports(void **state)
{
	(void)state;
	/* Longest-prefix match alone would refuse 10.1.2.3:80. */
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [10.0.0.0/8]\n"
				 "        ports: [80]\n"
				 "      - to: [10.1.0.0/16]\n"
				 "        ports: [443]\n"
				 "      - to: [10.1.2.0/24]\n"
				 "        ports: [22]\n"
				 "        proto: udp\n");
	struct policy_maps *m = compile(p, 0);

	assert_int_equal(verdict(m, 0, "10.1.2.3", IPPROTO_TCP, 80), 0);
	assert_int_equal(verdict(m, 0, "10.1.2.3", IPPROTO_TCP, 443), 1);
	assert_int_equal(verdict(m, 0, "10.1.2.3", IPPROTO_UDP, 22), 2);
	assert_int_equal(verdict(m, 0, "10.1.2.3", IPPROTO_TCP, 22), -1);
	assert_int_equal(verdict(m, 0, "10.1.9.9", IPPROTO_UDP, 22), -1);
	assert_int_equal(verdict(m, 0, "10.2.0.1", IPPROTO_TCP, 443), -1);
	assert_int_equal(verdict(m, 0, "10.2.0.1", IPPROTO_UDP, 80), 0);
	assert_int_equal(verdict(m, 0, "11.0.0.1", IPPROTO_TCP, 80), -1);
	policy_maps_free(m);
	policy_free(p);
}

static void test_first_rule_in_file_order_decides(void **state)
{
	(void)state;
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [192.0.2.0/24]\n"
				 "        ports: [100-200]\n"
				 "      - to: [192.0.2.7]\n"
				 "        ports: [150-300]\n");
	struct policy_maps *m = compile(p, 0);

	assert_int_equal(verdict(m, 0, "192.0.2.7", IPPROTO_TCP, 150), 0);
	assert_int_equal(verdict(m, 0, "192.0.2.7", IPPROTO_TCP, 201), 1);
	assert_int_equal(verdict(m, 0, "192.0.2.7", IPPROTO_TCP, 300), 1);
	assert_int_equal(verdict(m, 0, "192.0.2.7", IPPROTO_TCP, 301), -1);
	assert_int_equal(verdict(m, 0, "192.0.2.8", IPPROTO_TCP, 250), -1);
	policy_maps_free(m);
	policy_free(p);
}

static void test_full_port_range_is_sixteen_blocks(void **state)
{
	(void)state;
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [192.0.2.1]\n"
				 "        ports: [1-65535]\n"
				 "        proto: tcp\n");
	struct policy_maps *m = compile(p, 0);

	/* 1, 2-3, 4-7, ..., 32768-65535 */
	assert_int_equal(m->n_ports, 16);
	assert_int_equal(verdict(m, 0, "192.0.2.1", IPPROTO_TCP, 1), 0);
	assert_int_equal(verdict(m, 0, "192.0.2.1", IPPROTO_TCP, 65535), 0);
	assert_int_equal(verdict(m, 0, "192.0.2.1", IPPROTO_TCP, 0), -1);
	policy_maps_free(m);
	policy_free(p);
}

static void test_any_port_any_proto_is_one_block_per_protocol(void **state)
{
	(void)state;
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [2001:db8::/32]\n");
	struct policy_maps *m = compile(p, 0);

	assert_int_equal(m->n_ports, 2);
	assert_int_equal(m->ports[0].key.prefixlen, CW_SCOPE_BITS + 16);
	assert_int_equal(verdict(m, 0, "2001:db8::1", IPPROTO_TCP, 1), 0);
	assert_int_equal(verdict(m, 0, "2001:db8:ffff::1", IPPROTO_UDP, 65535), 0);
	assert_int_equal(verdict(m, 0, "2001:db9::1", IPPROTO_UDP, 53), -1);
	policy_maps_free(m);
	policy_free(p);
}

static void test_v4_mapped_destination_uses_ipv4_rules(void **state)
{
	(void)state;
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [198.51.100.20]\n"
				 "        ports: [443]\n"
				 "      - to: ['::ffff:203.0.113.0/120']\n"
				 "        ports: [80]\n");
	struct policy_maps *m = compile(p, 0);

	assert_int_equal(m->n_dst6, 0);
	assert_int_equal(m->n_dst4, 2);
	assert_int_equal(verdict(m, 0, "::ffff:198.51.100.20", IPPROTO_TCP, 443), 0);
	assert_int_equal(verdict(m, 0, "::ffff:203.0.113.9", IPPROTO_TCP, 80), 1);
	assert_int_equal(verdict(m, 0, "203.0.113.9", IPPROTO_TCP, 80), 1);
	assert_int_equal(verdict(m, 0, "::ffff:198.51.100.21", IPPROTO_TCP, 443), -1);
	policy_maps_free(m);
	policy_free(p);
}

static void test_identical_rule_sets_share_a_port_set(void **state)
{
	(void)state;
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [192.0.2.1, 192.0.2.2, 192.0.2.3, 2001:db8::1]\n"
				 "        ports: [53]\n"
				 "        proto: udp\n");
	struct policy_maps *m = compile(p, 0);

	assert_int_equal(m->n_dst4, 3);
	assert_int_equal(m->n_dst6, 1);
	assert_int_equal(m->n_portsets, 1);
	assert_int_equal(m->n_ports, 1);
	policy_maps_free(m);
	policy_free(p);
}

static void assert_hosts_agree_with_tries(const struct policy_maps *m);

static void test_host_shortcut_copies_single_ports_of_host_destinations(void **state)
{
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [198.51.100.20, 2001:db8::20]\n"
				 "        ports: [443, 8000-8003]\n"
				 "        proto: tcp\n"
				 "      - to: [198.51.100.0/24]\n"
				 "        ports: [53]\n"
				 "      - to: [198.51.100.21]\n"
				 "        ports: [1000-2000]\n");
	struct policy_maps *m = compile(p, 1);
	size_t v4 = 0, v6 = 0;

	(void)state;
	/* 198.51.100.20: 443 and 8000-8003 (TCP), and 53 inherited from the /24 (TCP and UDP);
	 * 2001:db8::20: 443 and 8000-8003; 198.51.100.21: 53, and of 1000-2000 only the last
	 * block, port 2000 alone (TCP and UDP); the wider blocks are left to the tries; the /24
	 * itself is no host. */
	for (size_t i = 0; i < m->n_hosts; i++)
		*(m->hosts[i].key.family == AF_INET ? &v4 : &v6) += 1;
	assert_int_equal(v4, 1 + 4 + 2 + 2 + 2);
	assert_int_equal(v6, 1 + 4);
	assert_hosts_agree_with_tries(m);
	policy_maps_free(m);
	policy_free(p);
}

static void test_apps_are_kept_apart(void **state)
{
	(void)state;
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [192.0.2.0/24]\n"
				 "  b:\n"
				 "    allow:\n"
				 "      - to: [198.51.100.0/24]\n");
	struct policy_maps *m = compile(p, 0);

	assert_int_equal(verdict(m, 0, "192.0.2.1", IPPROTO_TCP, 1), 0);
	assert_int_equal(verdict(m, 0, "198.51.100.1", IPPROTO_TCP, 1), -1);
	assert_int_equal(verdict(m, 1, "198.51.100.1", IPPROTO_TCP, 1), 1);
	assert_int_equal(verdict(m, 1, "192.0.2.1", IPPROTO_TCP, 1), -1);
	policy_maps_free(m);
	policy_free(p);
}

/* A policy built in memory: one app with n distinct IPv4 /32 destinations. */
static void test_capacity_is_checked_before_anything_is_written(void **state)
{
	(void)state;
	size_t n = POLICY_MAPS_MAX_DST4 + 1;
	struct policy_dest *to = calloc(n, sizeof(*to));
	struct policy_rule rule = { .to = to, .n_to = n, .index = 0 };
	struct policy_app app = { .id = "a", .cgroup = "a", .rules = &rule, .n_rules = 1 };
	struct policy p = { .path = "mem", .apps = &app, .n_apps = 1, .n_rules = 1 };
	struct policy_maps *m = NULL;
	char reason[256];

	assert_non_null(to);
	for (size_t i = 0; i < n; i++) {
		uint32_t a = htonl(0x0a000000u + (uint32_t)i);
		to[i].prefix.family = AF_INET;
		to[i].prefix.len = 32;
		memcpy(to[i].prefix.addr, &a, 4);
	}
	assert_int_equal(policy_compile(&p, 0, &m, reason, sizeof(reason)), -E2BIG);
	assert_null(m);
	assert_non_null(strstr(reason, "IPv4 prefixes"));

	rule.n_to = n - 1; /* exactly the capacity fits */
	assert_int_equal(policy_compile(&p, 0, &m, reason, sizeof(reason)), 0);
	assert_int_equal(m->n_dst4, POLICY_MAPS_MAX_DST4);
	policy_maps_free(m);
	free(to);
}

/* ---- property: compiled verdicts equal a naive reading of the policy ------------------------ */


static bool naive_prefix_has(const struct policy_prefix *pf, int family, const uint8_t *addr)
{
	unsigned full = pf->len / 8, rest = pf->len % 8;

	if (pf->family != family)
		return false;
	if (memcmp(pf->addr, addr, full))
		return false;
	return !rest || ((pf->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* The first rule of the app, in file order, that allows the flow; -1 when none does. */
static long naive_verdict(const struct policy *p, size_t app, int family, const uint8_t *addr,
			  uint16_t proto, uint16_t port)
{
	const struct policy_app *a = &p->apps[app];

	for (size_t i = 0; i < a->n_rules; i++) {
		const struct policy_rule *r = &a->rules[i];
		bool dst = false, prt = r->n_ports == 0;

		if (r->proto == POLICY_PROTO_TCP && proto != IPPROTO_TCP)
			continue;
		if (r->proto == POLICY_PROTO_UDP && proto != IPPROTO_UDP)
			continue;
		for (size_t j = 0; j < r->n_ports; j++)
			prt |= port >= r->ports[j].first && port <= r->ports[j].last;
		for (size_t j = 0; j < r->n_to && !dst; j++) {
			const struct policy_dest *d = &r->to[j];
			if (!d->is_set) {
				dst = naive_prefix_has(&d->prefix, family, addr);
				continue;
			}
			for (size_t k = 0; k < p->sets[d->set].n_prefixes && !dst; k++)
				dst = naive_prefix_has(&p->sets[d->set].prefixes[k], family, addr);
		}
		if (dst && prt)
			return (long)r->index;
	}
	return -1;
}

/*
 * Every cw_hosts entry is exactly what the tries answer for its flow (the programs try it first
 * and fall back to the tries on a miss, so it must never disagree), and belongs to a /32 or
 * /128 destination of its app in this generation.
 */
static void assert_hosts_agree_with_tries(const struct policy_maps *m)
{
	for (size_t i = 0; i < m->n_hosts; i++) {
		const struct policy_host_entry *h = &m->hosts[i];
		uint32_t app = h->key.scope & CW_SCOPE_ID_MASK, rule = UINT32_MAX;

		assert_int_equal(h->key.scope >> CW_SCOPE_GEN_SHIFT, m->gen);
		assert_true(policy_maps_lookup(m, app, (int)h->key.family, h->key.addr, h->key.proto,
					       ntohs(h->key.port_be), &rule));
		assert_int_equal(rule, h->val.rule);
		if (h->key.family == AF_INET)
			for (int k = 4; k < 16; k++)
				assert_int_equal(h->key.addr[k], 0);
	}
}

static void test_random_policies_match_naive_evaluation(void **state)
{
	(void)state;
	unsigned seed = 12345;
	size_t compared = 0, allowed = 0, hosts = 0;

	for (int round = 0; round < 150; round++) {
		char yaml[16384];
		int o = 0;

		o += snprintf(yaml + o, sizeof(yaml) - (size_t)o,
			      "version: 1\nsets:\n  s: [10.1.0.0/16, 10.1.2.0/24]\napps:\n");
		for (int app = 0; app < 2; app++) {
			o += snprintf(yaml + o, sizeof(yaml) - (size_t)o, "  app%d:\n    allow:\n", app);
			int n_rules = 1 + (int)(rand_r(&seed) % 6);
			for (int r = 0; r < n_rules; r++) {
				/* Few bases and lengths, so that prefixes overlap a lot. */
				unsigned len = 8 + 4 * (rand_r(&seed) % 7);
				uint32_t a = 0x0a000000u | (rand_r(&seed) % 4) << 16 |
					     (rand_r(&seed) % 4) << 8 | (rand_r(&seed) % 4);
				a &= len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
				unsigned p1 = 1 + rand_r(&seed) % 20, p2 = p1 + rand_r(&seed) % 6;
				const char *proto = (const char *[]){ "tcp", "udp", "any" }[rand_r(&seed) % 3];
				bool use_set = rand_r(&seed) % 5 == 0;
				bool any_port = rand_r(&seed) % 6 == 0;

				o += snprintf(yaml + o, sizeof(yaml) - (size_t)o,
					      "      - to: [%u.%u.%u.%u/%u%s]\n        proto: %s\n",
					      a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, len,
					      use_set ? ", s" : "", proto);
				if (!any_port)
					o += snprintf(yaml + o, sizeof(yaml) - (size_t)o,
						      "        ports: [%u-%u, %u]\n", p1, p2,
						      1 + rand_r(&seed) % 25);
			}
		}
		struct policy *p = parse(yaml);
		struct policy_maps *m = compile(p, (uint32_t)round & 1);

		for (int flow = 0; flow < 400; flow++) {
			uint32_t a = htonl(0x0a000000u | (rand_r(&seed) % 5) << 16 |
					   (rand_r(&seed) % 5) << 8 | (rand_r(&seed) % 5));
			uint16_t proto = rand_r(&seed) % 2 ? IPPROTO_TCP : IPPROTO_UDP;
			uint16_t port = (uint16_t)(rand_r(&seed) % 30);
			uint32_t app = rand_r(&seed) % 2, rule = 0;
			long want = naive_verdict(p, app, AF_INET, (uint8_t *)&a, proto, port);
			long got = policy_maps_lookup(m, app, AF_INET, (uint8_t *)&a, proto, port, &rule)
					   ? (long)rule
					   : -1;

			if (want != got)
				fail_msg("round %d flow %d: app%u %08x proto %u port %u: want %ld got "
					 "%ld\n%s",
					 round, flow, app, ntohl(a), proto, port, want, got, yaml);
			compared++;
			allowed += want >= 0;
		}
		hosts += m->n_hosts;
		assert_hosts_agree_with_tries(m);
		policy_maps_free(m);
		policy_free(p);
	}
	/* The host shortcut was exercised too. */
	assert_true(hosts > 0);
	/* The generator must exercise both outcomes, or the comparison proves little. */
	assert_true(allowed > compared / 10);
	assert_true(allowed < compared * 9 / 10);
}

/* ---- reading the maps back: the destination's port set, and a port set's spans ------------- */

static const char overlapping[] = "version: 1\n"
				  "apps:\n"
				  "  a:\n"
				  "    allow:\n"
				  "      - to: [10.0.0.0/8, 2001:db8::/32]\n"
				  "        ports: [80, 8000-8010]\n"
				  "        proto: tcp\n"
				  "      - to: [10.1.0.0/16]\n"
				  "        ports: [8005-8020, 53]\n"
				  "      - to: [10.1.2.3]\n"
				  "  b:\n"
				  "    allow:\n"
				  "      - to: [10.0.0.0/8]\n"
				  "        ports: [22]\n"
				  "        proto: udp\n";

static void test_lookup_dst_gives_the_port_set_of_the_longest_prefix(void **state)
{
	(void)state;
	struct policy *p = parse(overlapping);
	struct policy_maps *m = compile(p, 1);
	uint8_t a[16];
	uint32_t ps8 = 99, ps16 = 99, ps32 = 99, ps_mapped = 99, psb = 99;

	inet_pton(AF_INET, "10.9.9.9", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, &ps8), 1);
	inet_pton(AF_INET, "10.1.9.9", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, &ps16), 1);
	inet_pton(AF_INET, "10.1.2.3", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, &ps32), 1);
	inet_pton(AF_INET6, "::ffff:10.1.2.3", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET6, a, &ps_mapped), 1);
	inet_pton(AF_INET, "10.1.2.3", a);
	assert_int_equal(policy_maps_lookup_dst(m, 1, AF_INET, a, &psb), 1);
	assert_int_not_equal(ps8, ps16);
	assert_int_not_equal(ps16, ps32);
	assert_int_equal(ps32, ps_mapped);
	assert_int_not_equal(psb, ps32);

	inet_pton(AF_INET, "11.0.0.1", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, NULL), 0);
	inet_pton(AF_INET6, "2001:db9::1", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET6, a, NULL), 0);
	inet_pton(AF_INET6, "2001:db8::1", a);
	assert_int_equal(policy_maps_lookup_dst(m, 1, AF_INET6, a, NULL), 0);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET6, a, NULL), 1);
	policy_maps_free(m);
	policy_free(p);
}

/* For every port: allowed by policy_maps_lookup() exactly when a span has it, with its rule. */
static void assert_spans_agree_with_lookup(const struct policy_maps *m, uint32_t app, int family,
					   const char *addr_text, uint16_t proto)
{
	struct policy_port_span *spans = NULL;
	size_t n = 0, k = 0;
	uint32_t portset = 0;
	uint8_t a[16];

	assert_int_equal(inet_pton(family, addr_text, a), 1);
	if (policy_maps_lookup_dst(m, app, family, a, &portset) == 1)
		assert_int_equal(policy_maps_port_spans(m, portset, proto, &spans, &n), 0);
	for (size_t i = 1; i < n; i++) {
		assert_true(spans[i - 1].last < spans[i].first);
		/* Neighbours with the same rule are merged. */
		assert_false(spans[i - 1].last + 1 == spans[i].first &&
			     spans[i - 1].rule == spans[i].rule);
	}
	for (uint32_t port = 0; port <= 65535; port++) {
		uint32_t rule = 0;
		int allowed = policy_maps_lookup(m, app, family, a, proto, (uint16_t)port, &rule);

		while (k < n && spans[k].last < port)
			k++;
		bool in_span = k < n && spans[k].first <= port;
		if (allowed != in_span)
			fail_msg("%s proto %u port %u: lookup %d, spans %d", addr_text, proto, port,
				 allowed, in_span);
		if (allowed)
			assert_int_equal(rule, spans[k].rule);
	}
	free(spans);
}

static void test_port_spans_agree_with_lookup_on_every_port(void **state)
{
	(void)state;
	struct policy *p = parse(overlapping);
	struct policy_maps *m = compile(p, 0);
	static const char *const v4[] = { "10.9.9.9", "10.1.9.9", "10.1.2.3", "11.0.0.1" };

	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
		for (uint32_t app = 0; app < 2; app++) {
			assert_spans_agree_with_lookup(m, app, AF_INET, v4[i], IPPROTO_TCP);
			assert_spans_agree_with_lookup(m, app, AF_INET, v4[i], IPPROTO_UDP);
		}
	assert_spans_agree_with_lookup(m, 0, AF_INET6, "2001:db8::1", IPPROTO_TCP);
	assert_spans_agree_with_lookup(m, 0, AF_INET6, "2001:db8::1", IPPROTO_UDP);
	assert_spans_agree_with_lookup(m, 0, AF_INET6, "::ffff:10.1.2.3", IPPROTO_TCP);
	policy_maps_free(m);
	policy_free(p);
}

static void test_port_spans_of_overlapping_rules(void **state)
{
	(void)state;
	struct policy *p = parse(overlapping);
	struct policy_maps *m = compile(p, 0);
	struct policy_port_span *s = NULL;
	uint32_t portset = 0;
	uint8_t a[4];
	size_t n = 0;

	/* 10.1.9.9 tcp: 53 (rule 1), 80 (rule 0), 8000-8010 (rule 0), 8011-8020 (rule 1). */
	inet_pton(AF_INET, "10.1.9.9", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, &portset), 1);
	assert_int_equal(policy_maps_port_spans(m, portset, IPPROTO_TCP, &s, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(s[0].first, 53);
	assert_int_equal(s[0].last, 53);
	assert_int_equal(s[0].rule, 1);
	assert_int_equal(s[1].first, 80);
	assert_int_equal(s[1].rule, 0);
	assert_int_equal(s[2].first, 8000);
	assert_int_equal(s[2].last, 8010);
	assert_int_equal(s[2].rule, 0);
	assert_int_equal(s[3].first, 8011);
	assert_int_equal(s[3].last, 8020);
	assert_int_equal(s[3].rule, 1);
	free(s);

	/* udp: only rule 1's ports. */
	assert_int_equal(policy_maps_port_spans(m, portset, IPPROTO_UDP, &s, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(s[0].first, 53);
	assert_int_equal(s[1].first, 8005);
	assert_int_equal(s[1].last, 8020);
	free(s);

	/* 10.1.2.3: rule 2 allows any port; the ports rules 0 and 1 name first stay theirs. */
	inet_pton(AF_INET, "10.1.2.3", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, &portset), 1);
	assert_int_equal(policy_maps_port_spans(m, portset, IPPROTO_UDP, &s, &n), 0);
	assert_int_equal(s[0].first, 0);
	assert_int_equal(s[0].last, 52);
	assert_int_equal(s[0].rule, 2);
	assert_int_equal(s[n - 1].last, 65535);
	assert_int_equal(s[n - 1].rule, 2);
	free(s);
	policy_maps_free(m);
	policy_free(p);
}

static void test_port_spans_merge_the_blocks_of_one_range(void **state)
{
	(void)state;
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [192.0.2.1]\n"
				 "        ports: [1-65535]\n"
				 "        proto: tcp\n"
				 "      - to: [192.0.2.2]\n");
	struct policy_maps *m = compile(p, 0);
	struct policy_port_span *s = NULL;
	uint32_t portset = 0;
	uint8_t a[4];
	size_t n = 0;

	/* 16 cw_ports blocks, one span. */
	inet_pton(AF_INET, "192.0.2.1", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, &portset), 1);
	assert_int_equal(policy_maps_port_spans(m, portset, IPPROTO_TCP, &s, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].first, 1);
	assert_int_equal(s[0].last, 65535);
	free(s);
	assert_int_equal(policy_maps_port_spans(m, portset, IPPROTO_UDP, &s, &n), 0);
	assert_int_equal(n, 0);
	assert_null(s);

	/* No `ports`: every port, 0 included. */
	inet_pton(AF_INET, "192.0.2.2", a);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, &portset), 1);
	assert_int_equal(policy_maps_port_spans(m, portset, IPPROTO_UDP, &s, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].first, 0);
	assert_int_equal(s[0].last, 65535);
	assert_int_equal(s[0].rule, 1);
	free(s);
	policy_maps_free(m);
	policy_free(p);
}

static void test_port_spans_refuse_overlapping_entries(void **state)
{
	(void)state;
	struct policy *p = parse("version: 1\n"
				 "apps:\n"
				 "  a:\n"
				 "    allow:\n"
				 "      - to: [192.0.2.1]\n"
				 "        ports: [8000-8003]\n"
				 "        proto: tcp\n");
	struct policy_maps *m = compile(p, 0);
	struct policy_port_span *s = NULL;
	size_t n = 0;

	/* One block 8000-8003; widen it to 8000-8007 and add 8004 (inside it): maps no compiler makes. */
	assert_int_equal(m->n_ports, 1);
	m->ports[0].key.prefixlen--;
	m->ports = realloc(m->ports, 2 * sizeof(*m->ports));
	assert_non_null(m->ports);
	m->ports[1] = m->ports[0];
	m->ports[1].key.prefixlen = CW_PORT_KEY_FULL_BITS;
	m->ports[1].key.port_be = htons(8004);
	m->n_ports = 2;
	assert_int_equal(policy_maps_port_spans(m, m->dst4[0].val.portset, IPPROTO_TCP, &s, &n),
			 -EUCLEAN);
	policy_maps_free(m);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_policy_entry_counts),
		cmocka_unit_test(test_demo_policy_verdicts),
		cmocka_unit_test(test_keys_carry_generation_and_zero_padding),
		cmocka_unit_test(test_overlapping_prefixes_with_different_ports),
		cmocka_unit_test(test_first_rule_in_file_order_decides),
		cmocka_unit_test(test_full_port_range_is_sixteen_blocks),
		cmocka_unit_test(test_any_port_any_proto_is_one_block_per_protocol),
		cmocka_unit_test(test_v4_mapped_destination_uses_ipv4_rules),
		cmocka_unit_test(test_identical_rule_sets_share_a_port_set),
		cmocka_unit_test(test_apps_are_kept_apart),
		cmocka_unit_test(test_capacity_is_checked_before_anything_is_written),
		cmocka_unit_test(test_random_policies_match_naive_evaluation),
		cmocka_unit_test(test_host_shortcut_copies_single_ports_of_host_destinations),
		cmocka_unit_test(test_lookup_dst_gives_the_port_set_of_the_longest_prefix),
		cmocka_unit_test(test_port_spans_agree_with_lookup_on_every_port),
		cmocka_unit_test(test_port_spans_of_overlapping_rules),
		cmocka_unit_test(test_port_spans_merge_the_blocks_of_one_range),
		cmocka_unit_test(test_port_spans_refuse_overlapping_entries),
	};
	return cmocka_run_group_tests_name("policy_compile", tests, NULL, NULL);
}
