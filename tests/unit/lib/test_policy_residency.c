// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of data residency in policies (userspace/lib/policy.c, policy_region.c) and of its
 * compilation (the cross-border mark of cw_port_val, policy_compile.c): `home-region`,
 * `regions`, `region` on sets and rules, `cross-border`, `residency: strict` and
 * `residency-enforce: home-only`, every error at its exact file:line:column.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_compile.h"
#include "policy_lint.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_maps *, policy_maps_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_lint *, policy_lint_free)

static struct policy *parse_ok(const char *yaml)
{
	struct policy *p = NULL;
	struct policy_error e;
	int r;

	r = policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e);
	if (r < 0)
		fail_msg("unexpected error %d: %s:%u:%u: %s", r, e.file, e.loc.line, e.loc.column,
			 e.reason);
	return p;
}

static void check_error(const char *yaml, unsigned line, unsigned column, const char *reason,
			const char *file, int at)
{
	struct policy *p = NULL;
	struct policy_error e;
	char msg[600];
	int r;

	r = policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e);
	_assert_int_equal(r, -EINVAL, file, at);
	_assert_true(p == NULL, "policy == NULL", file, at);
	assert_int_equal(policy_error_format(&e, msg, sizeof(msg)), 0);
	if (e.loc.line != line || e.loc.column != column || !strstr(e.reason, reason)) {
		print_error("expected t.yaml:%u:%u: ...%s...\n     got %s\n", line, column, reason,
			    msg);
		_fail(file, at);
	}
}

#define assert_parse_error(yaml, line, column, reason)                                             \
	check_error((yaml), (line), (column), (reason), __FILE__, __LINE__)

/* A strict policy with home region cn; line 6 holds the app's rules (flow style). */
#define STRICT(sets, rules)                                                                        \
	"version: 1\nhome-region: CN\nresidency: strict\nsets: {" sets                             \
	"}\napps:\n  a: {allow: [" rules "]}\n"

static void test_strict_accepts_declared_regions(void **state)
{
	_cleanup_(policy_freep) struct policy *p = NULL;

	(void)state;
	p = parse_ok(STRICT("oem: {region: cn, members: [198.51.100.0/24]}",
			    "{to: oem, ports: 443}, {to: 203.0.113.7, region: us, cross-border: "
			    "\"crash reports, consented\"}, {to: 192.0.2.1, region: Cn}"));
	assert_string_equal(p->residency.home.name, "cn");
	assert_true(p->residency.strict);
	assert_false(p->residency.home_only);
	assert_string_equal(p->sets[0].region.name, "cn");
	assert_null(p->apps[0].rules[0].cross_border);
	assert_string_equal(p->apps[0].rules[1].cross_border, "crash reports, consented");
	assert_string_equal(p->apps[0].rules[2].region.name, "cn");
	assert_string_equal(policy_dest_region(p, &p->apps[0].rules[0], &p->apps[0].rules[0].to[0]),
			    "cn");
	assert_int_equal(policy_region_is_home(p, "us"), 0);
	assert_int_equal(policy_region_is_home(p, "cn"), 1);
}

static void test_strict_refuses_a_rule_without_region(void **state)
{
	(void)state;
	/* The inline destination: at its own place. */
	assert_parse_error(STRICT("", "{to: 198.51.100.7, ports: 443}"), 6, 20,
			   "this destination has no region (residency: strict)");
	/* A set without a region: at the set's name in `to`. */
	assert_parse_error(STRICT("oem: [198.51.100.0/24]", "{to: [oem]}"), 6, 21,
			   "give the rule a 'region' or its set one");
}

static void test_strict_refuses_cross_border_without_justification(void **state)
{
	(void)state;
	assert_parse_error(STRICT("", "{to: 203.0.113.7, region: us}"), 6, 41,
			   "outside the home region 'cn': it needs a 'cross-border' justification");
	/* Through a set in another region: at the set's name in `to`. */
	assert_parse_error(STRICT("t: {region: de, members: [203.0.113.0/24]}", "{to: t}"), 6, 20,
			   "the rule goes to region 'de'");
	/* A group partly abroad is abroad. */
	assert_parse_error("version: 1\nhome-region: cn\nresidency: strict\nregions: {asia: [cn, "
			   "jp]}\napps:\n  a: {allow: [{to: 203.0.113.7, region: asia}]}\n",
			   6, 41, "the rule goes to region 'asia'");
}

static void test_strict_needs_a_home_region(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nresidency: strict\napps: {}\n", 2, 12,
			   "'residency: strict' needs a 'home-region'");
	assert_parse_error("version: 1\nresidency-enforce: home-only\napps: {}\n", 2, 20,
			   "'residency-enforce: home-only' needs a 'home-region'");
	assert_parse_error("version: 1\napps:\n  a: {allow: [{to: 192.0.2.1, cross-border: x}]}\n",
			   3, 45, "'cross-border' needs a top-level 'home-region'");
}

static void test_region_values_are_checked(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nhome-region: yy\napps: {}\n", 2, 14, "unknown region 'yy'");
	assert_parse_error("version: 1\nhome-region: c.n\napps: {}\n", 2, 14, "is no region");
	assert_parse_error("version: 1\nhome-region: cn\nregions: {eu: [fr]}\napps: {}\n", 3, 11,
			   "would hide the built-in group 'eu'");
	assert_parse_error("version: 1\nhome-region: cn\nregions: {de: [fr]}\napps: {}\n", 3, 11,
			   "would hide a country code");
	assert_parse_error("version: 1\nhome-region: cn\nregions: {g: [fr, zq]}\napps: {}\n", 3, 19,
			   "'zq' is no ISO 3166-1 alpha-2 country code");
	assert_parse_error("version: 1\nhome-region: cn\nregions: {g: []}\napps: {}\n", 3, 14,
			   "region group 'g' is empty");
	assert_parse_error("version: 1\nresidency: loose\napps: {}\n", 2, 12,
			   "'residency' must be strict or declared");
	assert_parse_error("version: 1\nhome-region: cn\napps:\n  a: {allow: [{to: 192.0.2.1, "
			   "cross-border: \"  \"}]}\n",
			   4, 45, "'cross-border' must say why");
	assert_parse_error("version: 1\nsets: {s: {region: cn}}\napps: {}\n", 2, 11,
			   "missing required key 'members' in set 's'");
	assert_parse_error(
	    "version: 1\nhome-region: cn\nsets: {s: {region: cn, members: [192.0.2.1]}}"
	    "\napps:\n  a: {allow: [{to: s, region: jp}]}\n",
	    5, 31, "the rule says region 'jp', but set 's' is in region 'cn'");
}

static void test_groups_and_eu(void **state)
{
	_cleanup_(policy_freep) struct policy *p = NULL;
	char codes[64][3];
	size_t n;

	(void)state;
	p = parse_ok("version: 1\nhome-region: eu\nregions: {dach: [de, AT, ch]}\napps: {}\n");
	assert_int_equal(policy_region_countries(p, "eu", codes, 64, &n), 0);
	assert_int_equal(n, 27);
	assert_int_equal(policy_region_is_home(p, "de"), 1);
	assert_int_equal(policy_region_is_home(p, "dach"), 0); /* ch is no EU member */
	assert_int_equal(policy_region_countries(p, "dach", codes, 64, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(codes[1], "at");
	assert_int_equal(policy_region_countries(p, "nowhere", codes, 64, &n), -ENOENT);
	assert_true(policy_country_valid("XA"));
	assert_true(policy_country_valid("cn"));
	assert_false(policy_country_valid("eu"));
	assert_false(policy_country_valid("qa1"));
	assert_false(policy_country_valid("zq"));
}

/* The port entry of (app 0's port set for addr, proto, port). */
static const struct cw_port_val *port_val(const struct policy_maps *m, const char *addr,
					  uint16_t port)
{
	uint8_t a[4];
	uint32_t portset;

	assert_int_equal(inet_pton(AF_INET, addr, a), 1);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, a, &portset), 1);
	for (size_t i = 0; i < m->n_ports; i++) {
		const struct policy_port_entry *e = &m->ports[i];
		unsigned bits = e->key.prefixlen - CW_SCOPE_BITS - 16;
		uint32_t first = ntohs(e->key.port_be), last = first + (1u << (16 - bits)) - 1;

		if ((e->key.scope & CW_SCOPE_ID_MASK) == portset && e->key.proto == IPPROTO_TCP &&
		    first <= port && port <= last)
			return &e->val;
	}
	return NULL;
}

static void test_compile_marks_cross_border_rules(void **state)
{
	_cleanup_(policy_freep) struct policy *p = NULL;
	_cleanup_(policy_maps_freep) struct policy_maps *m = NULL;
	const struct cw_port_val *v;
	char reason[256];

	(void)state;
	/* Rule 0 (home, no mark) and rule 1 (cross-border) both allow 203.0.113.7:443. */
	p = parse_ok(
	    "version: 1\nhome-region: cn\napps:\n  a:\n    allow:\n"
	    "      - {to: 203.0.113.0/24, ports: [443, 80], proto: tcp}\n"
	    "      - {to: 203.0.113.7, ports: 443, proto: tcp, region: us, cross-border: x}\n");
	assert_int_equal(policy_compile(p, 0, &m, reason, sizeof(reason)), 0);
	assert_false(m->home_only); /* set by geo_apply_policy() only */
	v = port_val(m, "203.0.113.7", 443);
	assert_non_null(v);
	/* Allowed by a cross-border rule: the cross-border one decides, and marks its purpose. */
	assert_int_equal(v->rule, 1);
	assert_int_equal(v->xb_purposes, CW_PURPOSE_NONE);
	v = port_val(m, "203.0.113.7", 80);
	assert_non_null(v);
	assert_int_equal(v->rule, 0);
	assert_int_equal(v->xb_purposes, 0);
	v = port_val(m, "203.0.113.8", 443);
	assert_non_null(v);
	assert_int_equal(v->rule, 0);
	assert_int_equal(v->xb_purposes, 0);
	/* The hosts shortcut carries the mark too. */
	for (size_t i = 0; i < m->n_hosts; i++)
		if (ntohs(m->hosts[i].key.port_be) == 443)
			assert_int_equal(m->hosts[i].val.xb_purposes, CW_PURPOSE_NONE);
}

static void test_lint_warns_outside_strict_mode(void **state)
{
	_cleanup_(policy_freep) struct policy *p = NULL;
	_cleanup_(policy_lint_freep) struct policy_lint *l = NULL;

	(void)state;
	p = parse_ok("version: 1\nhome-region: cn\nresidency-enforce: home-only\napps:\n  a:\n"
		     "    allow:\n"
		     "      - {to: 203.0.113.7, region: us}\n"
		     "      - {to: \"::/0\", region: us, cross-border: why}\n"
		     "      - {to: 198.51.100.7, region: cn}\n");
	assert_int_equal(policy_lint(p, &l), 0);
	assert_int_equal(l->warnings[0].kind, POLICY_LINT_CROSS_BORDER);
	assert_int_equal(l->warnings[0].loc.line, 7);
	assert_int_equal(l->warnings[0].loc.column, 14);
	assert_non_null(strstr(l->warnings[0].reason, "outside the home region 'cn'"));
	assert_int_equal(l->warnings[1].kind, POLICY_LINT_HOME_ONLY_OPEN);
	assert_int_equal(l->warnings[1].loc.line, 8);
	/* ::/0 is every address too; the home rule says nothing. */
	assert_int_equal(l->warnings[2].kind, POLICY_LINT_EVERY_ADDRESS);
	assert_int_equal(l->n_total, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strict_accepts_declared_regions),
	    cmocka_unit_test(test_strict_refuses_a_rule_without_region),
	    cmocka_unit_test(test_strict_refuses_cross_border_without_justification),
	    cmocka_unit_test(test_strict_needs_a_home_region),
	    cmocka_unit_test(test_region_values_are_checked),
	    cmocka_unit_test(test_groups_and_eu),
	    cmocka_unit_test(test_compile_marks_cross_border_rules),
	    cmocka_unit_test(test_lint_warns_outside_strict_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
