// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: `carwall explain` with host names (userspace/explain.c): a name as DEST, its
 * verdict from the compiled cw_names entries, which rule and which element of its `to` gave it,
 * and the other names of the app that may share its addresses (the honest limit).
 */
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
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_maps *, policy_maps_free)

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

static const char policy_text[] = "version: 1\n"				  /* 1 */
				  "resolvers: [127.0.0.53]\n"			  /* 2 */
				  "sets:\n"					  /* 3 */
				  "  maps: [\"*.maps.oem.example\", 203.0.113.0/24]\n" /* 4 */
				  "apps:\n"					  /* 5 */
				  "  navigation:\n"				  /* 6 */
				  "    allow:\n"				  /* 7 */
				  "      - to: [tiles.oem.example, 198.51.100.0/24]\n" /* 8 */
				  "        ports: [443]\n"			  /* 9 */
				  "      - to: [198.51.100.9, maps]\n"		  /* 10 */
				  "        ports: [80]\n"			  /* 11 */
				  "        proto: tcp\n"			  /* 12 */
				  "      - to: [\"*.oem.example\", eu.maps.oem.example]\n" /* 13 */
				  "        ports: [8443]\n"			  /* 14 */
				  "  radio:\n"					  /* 15 */
				  "    allow:\n"				  /* 16 */
				  "      - to: 192.0.2.1\n";			  /* 17 */

static void test_dest_host_names(void **state)
{
	struct explain_dest d;

	(void)state;
	d = dest("Tiles.OEM.example.:443/tcp");
	assert_true(d.is_name);
	assert_string_equal(d.name, "tiles.oem.example");
	assert_true(d.has_port);
	assert_int_equal(d.port, 443);
	assert_int_equal(d.proto, IPPROTO_TCP);
	d = dest("tiles.oem.example");
	assert_true(d.is_name);
	assert_false(d.has_port);
	assert_int_equal(d.proto, 0);
	d = dest("tiles.oem.example/udp");
	assert_true(d.is_name);
	assert_int_equal(d.proto, IPPROTO_UDP);
	/* Addresses stay addresses. */
	d = dest("203.0.113.7:443");
	assert_false(d.is_name);

	/* The longest name, with a port and a protocol. */
	char longest[POLICY_MAX_HOST_LEN + 16];
	memset(longest, 'a', POLICY_MAX_HOST_LEN);
	for (size_t i = 63; i < POLICY_MAX_HOST_LEN; i += 64)
		longest[i] = '.';
	snprintf(longest + POLICY_MAX_HOST_LEN, 16, ":65535/udp");
	d = dest(longest);
	assert_true(d.is_name);
	assert_int_equal(strlen(d.name), POLICY_MAX_HOST_LEN);
	assert_int_equal(d.port, 65535);
}

static void test_name_verdicts_come_from_the_name_entries(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse(policy_text);
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile(p);
	struct explain_dest d = dest("tiles.oem.example:443/tcp");
	struct explain_flow f;

	(void)state;
	assert_int_equal(explain_flow(p, m, 0, &d, IPPROTO_TCP, 443, &f), 0);
	assert_true(f.allowed);
	assert_true(f.address_covered);
	assert_int_equal(f.match.rule->index, 0);
	assert_null(f.match.set);
	assert_null(f.match.prefix);
	assert_non_null(f.match.host);
	assert_string_equal(f.match.host->name, "tiles.oem.example");
	assert_int_equal(f.match.to->loc.line, 8);
	assert_int_equal(f.match.to->loc.column, 14);

	/* The *.oem.example wildcard passes 8443 down to tiles.oem.example. */
	assert_int_equal(explain_flow(p, m, 0, &d, IPPROTO_TCP, 8443, &f), 0);
	assert_true(f.allowed);
	assert_int_equal(f.match.rule->index, 2);
	assert_true(f.match.host->wildcard);
	assert_string_equal(f.match.host->name, "oem.example");

	/* A port no rule of the name allows: refused, the name is known. */
	assert_int_equal(explain_flow(p, m, 0, &d, IPPROTO_TCP, 80, &f), 0);
	assert_false(f.allowed);
	assert_true(f.address_covered);

	/* Another app: refused, the name unknown to it. */
	assert_int_equal(explain_flow(p, m, 1, &d, IPPROTO_TCP, 443, &f), 0);
	assert_false(f.allowed);
	assert_false(f.address_covered);
}

/* The most specific element names the verdict: a set's wildcard entry, or the exact name. */
static void test_name_attribution_picks_the_most_specific_element(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse(policy_text);
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile(p);
	struct explain_dest d = dest("x.maps.oem.example");
	struct explain_flow f;

	(void)state;
	assert_int_equal(explain_flow(p, m, 0, &d, IPPROTO_TCP, 80, &f), 0);
	assert_true(f.allowed);
	assert_int_equal(f.match.rule->index, 1);
	assert_non_null(f.match.set);
	assert_string_equal(f.match.set->name, "maps");
	assert_string_equal(f.match.host->name, "maps.oem.example");
	assert_int_equal(f.match.host->loc.line, 4);
	assert_int_equal(f.match.host->loc.column, 10);

	/* eu.maps.oem.example: rule 3 names it and *.oem.example; the exact name wins. */
	d = dest("eu.maps.oem.example");
	assert_int_equal(explain_flow(p, m, 0, &d, IPPROTO_TCP, 8443, &f), 0);
	assert_true(f.allowed);
	assert_false(f.match.host->wildcard);
	assert_string_equal(f.match.host->name, "eu.maps.oem.example");
	/* and it inherits *.maps.oem.example's port 80/tcp. */
	assert_int_equal(explain_flow(p, m, 0, &d, IPPROTO_TCP, 80, &f), 0);
	assert_true(f.allowed);
	assert_int_equal(f.match.rule->index, 1);
	assert_int_equal(explain_flow(p, m, 0, &d, IPPROTO_UDP, 80, &f), 0);
	assert_false(f.allowed);
}

static void test_name_ports_list_every_rule(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse(policy_text);
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile(p);
	struct explain_dest d = dest("a.maps.oem.example");
	_cleanup_free_ struct explain_span *spans = NULL;
	char text[128];
	size_t n = 0;

	(void)state;
	assert_int_equal(explain_ports(p, m, 0, &d, IPPROTO_TCP, &spans, &n), 0);
	assert_int_equal(explain_spans_format(spans, n, text, sizeof(text)), 0);
	assert_string_equal(text, "80, 8443");
	assert_int_equal(n, 2);
	assert_int_equal(spans[0].match.rule->index, 1);
	assert_int_equal(spans[1].match.rule->index, 2);
	assert_string_equal(spans[1].match.host->name, "oem.example");

	/* oem.example itself: no rule names it ("*." is strictly below). */
	free(spans);
	spans = NULL;
	d = dest("oem.example");
	assert_int_equal(explain_ports(p, m, 0, &d, IPPROTO_TCP, &spans, &n), 0);
	assert_int_equal(n, 0);
	assert_null(spans);
}

static void test_other_names_of_the_app(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse(policy_text);
	char buf[256], small[24];

	(void)state;
	/* Every name of the app but those matching the one asked about, each once. */
	assert_int_equal(explain_other_hosts(p, 0, "tiles.oem.example", buf, sizeof(buf)), 2);
	assert_string_equal(buf, "*.maps.oem.example, eu.maps.oem.example");
	assert_int_equal(explain_other_hosts(p, 0, "eu.maps.oem.example", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "tiles.oem.example");
	assert_int_equal(explain_other_hosts(p, 0, NULL, buf, sizeof(buf)), 4);
	assert_string_equal(buf,
			    "tiles.oem.example, *.maps.oem.example, *.oem.example, "
			    "eu.maps.oem.example");
	assert_int_equal(explain_other_hosts(p, 1, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	/* Cut, and said so. */
	assert_int_equal(explain_other_hosts(p, 0, NULL, small, sizeof(small)), 4);
	assert_string_equal(small, "tiles.oem.example, *...");
	assert_int_equal(explain_other_hosts(p, 2, NULL, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dest_host_names),
		cmocka_unit_test(test_name_verdicts_come_from_the_name_entries),
		cmocka_unit_test(test_name_attribution_picks_the_most_specific_element),
		cmocka_unit_test(test_name_ports_list_every_rule),
		cmocka_unit_test(test_other_names_of_the_app),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
