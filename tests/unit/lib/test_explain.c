// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests: `carwall explain`'s logic (userspace/lib/explain.c): DEST parsing, verdicts, attribution.
 */
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

#include "explain.h"
#include "policy.h"
#include "policy_compile.h"

static struct policy *parse(const char *yaml)
{
	struct policy_error err = {};
	struct policy *p = NULL;

	if (policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &err) < 0)
		fail_msg("parse failed: %s:%u:%u: %s", err.file, err.loc.line, err.loc.column,
			 err.reason);
	return p;
}

static struct policy_maps *compile(const struct policy *p)
{
	struct policy_maps *m = NULL;
	char reason[256];

	if (policy_compile(p, 0, &m, reason, sizeof(reason)) < 0)
		fail_msg("compile failed: %s", reason);
	return m;
}

static struct explain_dest dest(const char *s)
{
	struct explain_dest d;
	char reason[256];

	if (explain_dest_parse(s, &d, reason, sizeof(reason)) < 0)
		fail_msg("'%s' did not parse: %s", s, reason);
	return d;
}

/* The reason a DEST is refused with; fails if it parses. */
static const char *dest_error(const char *s)
{
	static char reason[256];
	struct explain_dest d;

	reason[0] = '\0';
	if (explain_dest_parse(s, &d, reason, sizeof(reason)) != -EINVAL)
		fail_msg("'%s' should not parse", s);
	return reason;
}

static void assert_addr(const struct explain_dest *d, int family, const char *text)
{
	uint8_t a[16] = {};

	assert_int_equal(d->family, family);
	assert_int_equal(inet_pton(family, text, a), 1);
	assert_memory_equal(d->addr, a, family == AF_INET ? 4 : 16);
}

/* ---- DEST grammar ---------------------------------------------------------------------------- */

static void test_dest_ipv4_forms(void **state)
{
	(void)state;
	struct explain_dest d = dest("203.0.113.7");

	assert_addr(&d, AF_INET, "203.0.113.7");
	assert_false(d.has_port);
	assert_int_equal(d.proto, 0);

	d = dest("203.0.113.7:443");
	assert_addr(&d, AF_INET, "203.0.113.7");
	assert_true(d.has_port);
	assert_int_equal(d.port, 443);
	assert_int_equal(d.proto, 0);

	d = dest("203.0.113.7:443/tcp");
	assert_int_equal(d.port, 443);
	assert_int_equal(d.proto, IPPROTO_TCP);

	d = dest("203.0.113.7/udp");
	assert_false(d.has_port);
	assert_int_equal(d.proto, IPPROTO_UDP);
}

static void test_dest_ipv6_forms(void **state)
{
	(void)state;
	struct explain_dest d = dest("2001:db8::1");

	assert_addr(&d, AF_INET6, "2001:db8::1");
	assert_false(d.has_port);

	d = dest("[2001:db8::1]");
	assert_addr(&d, AF_INET6, "2001:db8::1");
	assert_false(d.has_port);

	d = dest("[2001:db8::1]:443/udp");
	assert_addr(&d, AF_INET6, "2001:db8::1");
	assert_true(d.has_port);
	assert_int_equal(d.port, 443);
	assert_int_equal(d.proto, IPPROTO_UDP);

	d = dest("2001:db8::1/tcp");
	assert_false(d.has_port);
	assert_int_equal(d.proto, IPPROTO_TCP);

	/* A bare IPv6 address takes no port: the last group is part of the address. */
	d = dest("2001:db8::1:443");
	assert_addr(&d, AF_INET6, "2001:db8::1:443");
	assert_false(d.has_port);

	d = dest("::1");
	assert_addr(&d, AF_INET6, "::1");
}

static void test_dest_v4_mapped_is_judged_as_ipv4(void **state)
{
	(void)state;
	struct explain_dest d = dest("[::ffff:198.51.100.20]:443");
	char buf[INET6_ADDRSTRLEN];

	assert_addr(&d, AF_INET6, "::ffff:198.51.100.20");
	assert_true(explain_dest_is_v4_mapped(&d));
	assert_int_equal(explain_dest_format_addr(&d, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.51.100.20");

	d = dest("2001:db8::ffff:198.51.100.20");
	assert_false(explain_dest_is_v4_mapped(&d));
	d = dest("198.51.100.20");
	assert_false(explain_dest_is_v4_mapped(&d));
}

static void test_dest_port_bounds(void **state)
{
	(void)state;
	assert_int_equal(dest("192.0.2.1:0").port, 0);
	assert_int_equal(dest("192.0.2.1:65535").port, 65535);
	assert_non_null(strstr(dest_error("192.0.2.1:65536"), "out of range"));
	assert_non_null(strstr(dest_error("192.0.2.1:0443"), "leading zero"));
	assert_non_null(strstr(dest_error("192.0.2.1:123456"), "not a port"));
	assert_non_null(strstr(dest_error("192.0.2.1:-1"), "not a port"));
	assert_non_null(strstr(dest_error("192.0.2.1:"), "no port"));
	assert_non_null(strstr(dest_error("[2001:db8::1]:"), "no port"));
}

static void test_dest_errors_say_what_is_wrong(void **state)
{
	(void)state;
	char longer[EXPLAIN_MAX_DEST_LEN + 2];

	assert_non_null(strstr(dest_error("203.0.113.0/24"), "is a prefix"));
	assert_non_null(strstr(dest_error("2001:db8::/32"), "is a prefix"));
	assert_non_null(strstr(dest_error("tracker"), "neither an IP address nor a host name"));
	assert_non_null(strstr(dest_error("*.tracker.example"), "is a wildcard"));
	assert_non_null(strstr(dest_error("tracker..example:443"), "has an empty label"));
	assert_non_null(strstr(dest_error("203.0.113.256"), "not a valid IPv4 address"));
	assert_non_null(strstr(dest_error("2001:db8::g"), "not a valid IPv6 address"));
	assert_non_null(
	    strstr(dest_error("::ffff:198.51.100.20:443"), "[::ffff:198.51.100.20]:443"));
	assert_non_null(strstr(dest_error("[203.0.113.7]:443"), "IPv6 addresses only"));
	assert_non_null(strstr(dest_error("[2001:db8::1"), "without ']'"));
	assert_non_null(strstr(dest_error("2001:db8::1]"), "without '['"));
	assert_non_null(strstr(dest_error("[2001:db8::1]443"), "only ':PORT'"));
	assert_non_null(strstr(dest_error("203.0.113.7:443/sctp"), "unknown protocol"));
	assert_non_null(strstr(dest_error("203.0.113.7:443/TCP"), "unknown protocol"));
	assert_non_null(strstr(dest_error("203.0.113.7/tcp/udp"), "more than one '/'"));
	assert_non_null(strstr(dest_error("fe80::1%eth0"), "zone"));
	assert_non_null(strstr(dest_error("203.0.113.7 443"), "space"));
	assert_non_null(strstr(dest_error(""), "empty"));
	memset(longer, '1', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_non_null(strstr(dest_error(longer), "EXPLAIN_MAX_DEST_LEN"));
}

/* ---- verdicts and attribution ---------------------------------------------------------------- */

/*
 * Lines:  1 version, 2 sets:, 3 oem, 4 apps:, 5 nav:, 6 allow:, 7 rule 0 `- to:`, 8 ports, 9 proto,
 * 10 rule 1, 11 ports, 12 media:, 13 allow:, 14 rule 2.
 */
static const char policy_text[] = "version: 1\n"
				  "sets:\n"
				  "  oem: [198.51.100.64/26, 2001:db8:100::/48, 198.51.100.80]\n"
				  "apps:\n"
				  "  nav:\n"
				  "    allow:\n"
				  "      - to: [198.51.100.0/24, oem]\n"
				  "        ports: [443, 8443-8450]\n"
				  "        proto: tcp\n"
				  "      - to: [198.51.100.80]\n"
				  "        ports: [9000]\n"
				  "  media:\n"
				  "    allow:\n"
				  "      - to: ['::ffff:203.0.113.0/120']\n";

struct fixture {
	struct policy *p;
	struct policy_maps *m;
	size_t nav, media;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->p = parse(policy_text);
	f->m = compile(f->p);
	if (explain_find_app(f->p, "nav", &f->nav) < 0 ||
	    explain_find_app(f->p, "media", &f->media) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	policy_maps_free(f->m);
	policy_free(f->p);
	free(f);
	return 0;
}

static struct explain_flow flow(const struct fixture *f, size_t app, const char *d_text,
				uint16_t proto, uint16_t port)
{
	struct explain_dest d = dest(d_text);
	struct explain_flow fl;

	assert_int_equal(explain_flow(f->p, f->m, app, &d, proto, port, &fl), 0);
	assert_int_equal(fl.proto, proto);
	assert_int_equal(fl.port, port);
	return fl;
}

static void test_find_app(void **state)
{
	struct fixture *f = *state;
	size_t i = 99;

	assert_int_equal(f->nav, 0);
	assert_int_equal(f->media, 1);
	assert_int_equal(explain_find_app(f->p, "navigation", &i), -ENOENT);
	assert_int_equal(i, 99);
}

static void test_allowed_flow_names_inline_prefix_and_rule(void **state)
{
	struct fixture *f = *state;
	struct explain_flow fl = flow(f, f->nav, "198.51.100.7", IPPROTO_TCP, 8445);
	char buf[64];

	assert_true(fl.allowed);
	assert_true(fl.address_covered);
	assert_int_equal(fl.match.rule->index, 0);
	assert_int_equal(fl.match.app_rule, 0);
	assert_int_equal(fl.match.rule->loc.line, 7);
	assert_null(fl.match.set);
	assert_ptr_equal(fl.match.prefix, &fl.match.to->prefix);
	assert_int_equal(fl.match.to->loc.line, 7);
	assert_int_equal(fl.match.to->loc.column, 14);
	assert_int_equal(explain_prefix_format(fl.match.prefix, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.51.100.0/24");
}

static void test_allowed_flow_names_the_longest_to_element(void **state)
{
	struct fixture *f = *state;
	/* 198.51.100.70 is in the inline /24 and in the set's /26: the set's entry is named. */
	struct explain_flow fl = flow(f, f->nav, "198.51.100.70", IPPROTO_TCP, 443);
	char buf[64];

	assert_true(fl.allowed);
	assert_non_null(fl.match.set);
	assert_string_equal(fl.match.set->name, "oem");
	assert_int_equal(fl.match.to->loc.line, 7);
	assert_int_equal(fl.match.to->loc.column, 31);
	assert_int_equal(fl.match.prefix->loc.line, 3);
	assert_int_equal(fl.match.prefix->loc.column, 9);
	assert_int_equal(explain_prefix_format(fl.match.prefix, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.51.100.64/26");

	/* 198.51.100.80 is also a /32 in the set: the longest wins. */
	fl = flow(f, f->nav, "198.51.100.80", IPPROTO_TCP, 443);
	assert_int_equal(explain_prefix_format(fl.match.prefix, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.51.100.80");
	assert_int_equal(fl.match.prefix->loc.column, 46);
}

static void test_allowed_flow_names_the_rule_of_the_port(void **state)
{
	struct fixture *f = *state;
	/* 198.51.100.80 port 9000 only by rule 1 (any protocol). */
	struct explain_flow fl = flow(f, f->nav, "198.51.100.80:9000", IPPROTO_UDP, 9000);

	assert_true(fl.allowed);
	assert_int_equal(fl.match.rule->index, 1);
	assert_int_equal(fl.match.app_rule, 1);
	assert_int_equal(fl.match.rule->loc.line, 10);
	assert_null(fl.match.set);
	assert_int_equal(fl.match.to->loc.line, 10);

	fl = flow(f, f->nav, "198.51.100.81", IPPROTO_UDP, 9000);
	assert_false(fl.allowed);
	assert_true(fl.address_covered);
}

static void test_refused_flow_says_whether_the_address_is_covered(void **state)
{
	struct fixture *f = *state;
	struct explain_flow fl = flow(f, f->nav, "198.51.100.7", IPPROTO_UDP, 443);

	assert_false(fl.allowed);
	assert_true(fl.address_covered);
	assert_null(fl.match.rule);

	fl = flow(f, f->nav, "203.0.113.7", IPPROTO_TCP, 443);
	assert_false(fl.allowed);
	assert_false(fl.address_covered);

	fl = flow(f, f->nav, "2001:db8:100::1", IPPROTO_TCP, 8442);
	assert_false(fl.allowed);
	assert_true(fl.address_covered);
}

static void test_v4_mapped_flow_is_judged_by_ipv4_rules(void **state)
{
	struct fixture *f = *state;
	/* media's rule is written as a mapped prefix, which is stored as 203.0.113.0/24. */
	struct explain_flow fl = flow(f, f->media, "203.0.113.9", IPPROTO_UDP, 53);
	char buf[64];

	assert_true(fl.allowed);
	assert_int_equal(fl.match.rule->index, 2);
	assert_int_equal(explain_prefix_format(fl.match.prefix, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "203.0.113.0/24");

	fl = flow(f, f->media, "::ffff:203.0.113.9", IPPROTO_TCP, 1);
	assert_true(fl.allowed);
	assert_int_equal(fl.match.rule->index, 2);

	fl = flow(f, f->nav, "::ffff:198.51.100.80", IPPROTO_TCP, 8450);
	assert_true(fl.allowed);
	assert_int_equal(explain_prefix_format(fl.match.prefix, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "198.51.100.80");

	fl = flow(f, f->media, "::ffff:203.0.114.9", IPPROTO_TCP, 1);
	assert_false(fl.allowed);
}

static void test_ports_without_a_port_are_the_union_of_the_rules(void **state)
{
	struct fixture *f = *state;
	struct explain_dest d = dest("198.51.100.80");
	struct explain_span *s = NULL;
	size_t n = 0;
	char buf[256];

	assert_int_equal(explain_ports(f->p, f->m, f->nav, &d, IPPROTO_TCP, &s, &n), 0);
	assert_int_equal(explain_spans_format(s, n, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "443, 8443-8450, 9000");
	assert_int_equal(explain_spans_count(s, n), 1 + 8 + 1);
	assert_int_equal(n, 3);
	assert_int_equal(s[0].match.rule->index, 0);
	assert_int_equal(s[2].first, 9000);
	assert_int_equal(s[2].match.rule->index, 1);
	free(s);

	assert_int_equal(explain_ports(f->p, f->m, f->nav, &d, IPPROTO_UDP, &s, &n), 0);
	assert_int_equal(explain_spans_format(s, n, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "9000");
	free(s);

	d = dest("203.0.113.7:443"); /* the port is ignored */
	assert_int_equal(explain_ports(f->p, f->m, f->nav, &d, IPPROTO_TCP, &s, &n), 0);
	assert_int_equal(n, 0);
	assert_null(s);
	assert_int_equal(explain_spans_format(s, n, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "none");

	assert_int_equal(explain_ports(f->p, f->m, f->media, &d, IPPROTO_UDP, &s, &n), 0);
	assert_int_equal(explain_spans_count(s, n), 65536);
	assert_int_equal(explain_spans_format(s, n, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "any port");
	free(s);
}

static void test_spans_format_merges_neighbours_and_reports_overflow(void **state)
{
	(void)state;
	struct explain_span s[3] = {
	    {.first = 1, .last = 5}, {.first = 6, .last = 6}, {.first = 10, .last = 10}};
	char buf[64];

	assert_int_equal(explain_spans_format(s, 3, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1-6, 10");
	assert_int_equal(explain_spans_format(s, 3, buf, 5), -ENOSPC);
}

static void test_maps_of_another_policy_are_detected(void **state)
{
	struct fixture *f = *state;
	/* Maps where nav's rule 0 covers 192.0.2.0/24: this policy's rule 0 does not. */
	struct policy *other = parse("version: 1\n"
				     "apps:\n"
				     "  nav:\n"
				     "    allow:\n"
				     "      - to: [192.0.2.0/24]\n");
	struct policy_maps *m = compile(other);
	struct explain_dest d = dest("192.0.2.1");
	struct explain_flow fl;

	assert_int_equal(explain_flow(f->p, m, f->nav, &d, IPPROTO_TCP, 1, &fl), -EUCLEAN);
	assert_int_equal(explain_flow(f->p, m, 7, &d, IPPROTO_TCP, 1, &fl), -ENOENT);
	policy_maps_free(m);
	policy_free(other);
}

/* Property: an allowed flow's rule and `to` element really cover it; a refused one has none. */
static void test_random_flows_are_attributed_to_a_covering_rule(void **state)
{
	(void)state;
	unsigned seed = 4242;
	size_t allowed = 0, total = 0;

	for (int round = 0; round < 40; round++) {
		char yaml[8192];
		int o = snprintf(yaml, sizeof(yaml),
				 "version: 1\nsets:\n  s: [10.1.0.0/16, 10.1.2.0/24, 10.2.0.3]\n"
				 "apps:\n  a:\n    allow:\n");

		for (int r = 0, n = 1 + (int)(rand_r(&seed) % 6); r < n; r++) {
			unsigned len = 8 + 4 * (rand_r(&seed) % 7);
			uint32_t a = 0x0a000000u | (rand_r(&seed) % 3) << 16 |
				     (rand_r(&seed) % 3) << 8 | (rand_r(&seed) % 4);
			unsigned p1 = 1 + rand_r(&seed) % 20;

			a &= len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
			o += snprintf(yaml + o, sizeof(yaml) - (size_t)o,
				      "      - to: [%u.%u.%u.%u/%u%s]\n        proto: %s\n"
				      "        ports: [%u-%u]\n",
				      a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, len,
				      rand_r(&seed) % 4 ? "" : ", s",
				      (const char *[]){"tcp", "udp", "any"}[rand_r(&seed) % 3], p1,
				      p1 + rand_r(&seed) % 8);
		}
		struct policy *p = parse(yaml);
		struct policy_maps *m = compile(p);

		for (int i = 0; i < 300; i++) {
			char text[64];
			struct explain_flow fl;
			uint16_t proto = rand_r(&seed) % 2 ? IPPROTO_TCP : IPPROTO_UDP;
			uint16_t port = (uint16_t)(rand_r(&seed) % 30);

			snprintf(text, sizeof(text), "%s10.%u.%u.%u",
				 rand_r(&seed) % 4 ? "" : "::ffff:", rand_r(&seed) % 4,
				 rand_r(&seed) % 4, rand_r(&seed) % 5);
			struct explain_dest d = dest(text);
			assert_int_equal(explain_flow(p, m, 0, &d, proto, port, &fl), 0);
			total++;
			if (!fl.allowed) {
				assert_null(fl.match.rule);
				continue;
			}
			allowed++;
			const struct policy_rule *r = fl.match.rule;
			bool port_ok = false;
			for (size_t k = 0; k < r->n_ports; k++)
				port_ok |= port >= r->ports[k].first && port <= r->ports[k].last;
			assert_true(port_ok);
			assert_true(r->proto == POLICY_PROTO_ANY ||
				    (r->proto == POLICY_PROTO_TCP) == (proto == IPPROTO_TCP));
			const struct policy_prefix *pf = fl.match.prefix;
			const uint8_t *addr = explain_dest_is_v4_mapped(&d) ? d.addr + 12 : d.addr;
			uint32_t want, have;
			memcpy(&want, pf->addr, 4);
			memcpy(&have, addr, 4);
			uint32_t mask = pf->len ? htonl(~0u << (32 - pf->len)) : 0;
			assert_int_equal(pf->family, AF_INET);
			assert_int_equal(want & mask, have & mask);
		}
		policy_maps_free(m);
		policy_free(p);
	}
	assert_true(allowed > total / 10);
	assert_true(allowed < total * 9 / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dest_ipv4_forms),
	    cmocka_unit_test(test_dest_ipv6_forms),
	    cmocka_unit_test(test_dest_v4_mapped_is_judged_as_ipv4),
	    cmocka_unit_test(test_dest_port_bounds),
	    cmocka_unit_test(test_dest_errors_say_what_is_wrong),
	    cmocka_unit_test_setup_teardown(test_find_app, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_allowed_flow_names_inline_prefix_and_rule, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_allowed_flow_names_the_longest_to_element, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_allowed_flow_names_the_rule_of_the_port, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_refused_flow_says_whether_the_address_is_covered,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_v4_mapped_flow_is_judged_by_ipv4_rules, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_ports_without_a_port_are_the_union_of_the_rules,
					    setup, teardown),
	    cmocka_unit_test(test_spans_format_merges_neighbours_and_reports_overflow),
	    cmocka_unit_test_setup_teardown(test_maps_of_another_policy_are_detected, setup,
					    teardown),
	    cmocka_unit_test(test_random_flows_are_attributed_to_a_covering_rule),
	};
	return cmocka_run_group_tests_name("explain", tests, NULL, NULL);
}
