// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the warnings of `carwall policy check` (userspace/policy_lint.c), each at its
 * place in the file, and none for destinations that say what they open.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_lint.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_lint *, policy_lint_free)

static struct policy_lint *lint_of(const char *yaml)
{
	_cleanup_(policy_freep) struct policy *p = NULL;
	struct policy_lint *l = NULL;
	struct policy_error e;

	if (policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e) < 0)
		fail_msg("parse failed: %s:%u:%u: %s", e.file, e.loc.line, e.loc.column, e.reason);
	assert_int_equal(policy_lint(p, &l), 0);
	assert_non_null(l);
	return l;
}

/* Warning i is of `kind`, at line:column, and says `text`. */
static void check_warning(const struct policy_lint *l, size_t i, enum policy_lint_kind kind,
			  unsigned line, unsigned column, const char *text, const char *file,
			  int at)
{
	if (i >= l->n_warnings) {
		print_error("warning %zu expected, only %zu\n", i, l->n_warnings);
		_fail(file, at);
	}
	const struct policy_lint_warning *w = &l->warnings[i];
	if (w->kind != kind || w->loc.line != line || w->loc.column != column ||
	    !strstr(w->reason, text)) {
		print_error("expected %s at %u:%u: ...%s...\n     got %s at %u:%u: %s\n",
			    policy_lint_kind_name(kind), line, column, text,
			    policy_lint_kind_name(w->kind), w->loc.line, w->loc.column, w->reason);
		_fail(file, at);
	}
}

#define assert_warning(l, i, kind, line, column, text)                                             \
	check_warning((l), (i), (kind), (line), (column), (text), __FILE__, __LINE__)

static void test_every_address(void **state)
{
	_cleanup_(policy_lint_freep) struct policy_lint *l =
	    lint_of("version: 1\n"
		    "sets:\n"
		    "  all: [0.0.0.0/0]\n"
		    "apps:\n"
		    "  a: {allow: [{to: [\"::/0\", all], ports: [443]},\n"
		    "              {to: all, ports: [80]}]}\n");

	(void)state;
	/* The set entry once, however many rules name the set. */
	assert_int_equal(l->n_total, 2);
	assert_warning(l, 0, POLICY_LINT_EVERY_ADDRESS, 3, 9, "0.0.0.0/0 is every IPv4 address");
	assert_warning(l, 1, POLICY_LINT_EVERY_ADDRESS, 5, 21, "::/0 is every IPv6");
}

static void test_translation_ranges(void **state)
{
	_cleanup_(policy_lint_freep) struct policy_lint *l =
	    lint_of("version: 1\n"
		    "apps:\n"
		    "  a:\n"
		    "    allow:\n"
		    "      - to: [64:ff9b::/96, \"::/8\", 2002:c000:201::/48, 2001::/32, "
		    "2001:0:4136::/48, 64:ff9b:1::/48]\n"
		    "        ports: [443]\n"
		    "      - to: [2001:db8::/32, 2003::/16, 64:ff9c::/32]\n"
		    "        ports: [443]\n");

	(void)state;
	assert_int_equal(l->n_total, 6);
	assert_warning(l, 0, POLICY_LINT_TRANSLATION, 5, 14, "64:ff9b::/96 is NAT64 64:ff9b::/96");
	assert_warning(l, 1, POLICY_LINT_TRANSLATION, 5, 28, "::/8 overlaps NAT64");
	assert_warning(l, 2, POLICY_LINT_TRANSLATION, 5, 36,
		       "2002:c000:201::/48 overlaps 6to4 2002::/16");
	assert_warning(l, 3, POLICY_LINT_TRANSLATION, 5, 56, "2001::/32 is Teredo 2001::/32");
	assert_warning(l, 4, POLICY_LINT_TRANSLATION, 5, 67, "overlaps Teredo");
	assert_warning(l, 5, POLICY_LINT_TRANSLATION, 5, 85, "is local NAT64 64:ff9b:1::/48");
}

static void test_wildcards_on_public_suffixes(void **state)
{
	_cleanup_(policy_lint_freep) struct policy_lint *l =
	    lint_of("version: 1\n"
		    "resolvers: [127.0.0.53]\n"
		    "sets:\n"
		    "  cdn: [\"*.cloudfront.net\", \"*.d1.cloudfront.net\", \"*.co.uk\"]\n"
		    "apps:\n"
		    "  a:\n"
		    "    allow:\n"
		    "      - to: [\"*.com\", \"*.oem.example\", \"*.example\", cdn, co.uk, "
		    "\"*.github.io\", \"*.oem.co.uk\"]\n"
		    "        ports: [443]\n");

	(void)state;
	assert_int_equal(l->n_total, 5);
	assert_warning(l, 0, POLICY_LINT_PUBLIC_SUFFIX, 4, 9,
		       "'*.cloudfront.net' is a wildcard on a public suffix");
	assert_warning(l, 1, POLICY_LINT_PUBLIC_SUFFIX, 4, 52, "'*.co.uk' is a wildcard on a");
	assert_warning(l, 2, POLICY_LINT_PUBLIC_SUFFIX, 8, 14,
		       "'*.com' is a wildcard on a top-level domain");
	assert_warning(l, 3, POLICY_LINT_PUBLIC_SUFFIX, 8, 40,
		       "'*.example' is a wildcard on a top-level domain");
	assert_warning(l, 4, POLICY_LINT_PUBLIC_SUFFIX, 8, 65,
		       "'*.github.io' is a wildcard on a public suffix");
}

static void test_local_ranges_without_ports(void **state)
{
	_cleanup_(policy_lint_freep) struct policy_lint *l =
	    lint_of("version: 1\n"
		    "sets:\n"
		    "  lan: [192.168.1.0/24, 203.0.113.0/24]\n"
		    "apps:\n"
		    "  a:\n"
		    "    allow:\n"
		    "      - to: [10.1.2.3, lan, fe80::/64, fd00::1, 169.254.0.0/16, 172.0.0.0/8, "
		    "198.51.100.1]\n"
		    "      - to: [10.1.2.3, lan, fe80::/64]\n"
		    "        ports: [8080]\n"
		    "      - to: [127.0.0.1, 172.32.0.0/16, 11.0.0.0/8]\n");

	(void)state;
	assert_int_equal(l->n_total, 6);
	assert_warning(l, 0, POLICY_LINT_LOCAL_ANY_PORT, 7, 14,
		       "10.1.2.3/32 in a rule without 'ports': every port of the private range "
		       "10.0.0.0/8");
	assert_warning(l, 1, POLICY_LINT_LOCAL_ANY_PORT, 7, 24,
		       "set 'lan' brings 192.168.1.0/24 (line 3, column 9) into a rule without "
		       "'ports'");
	assert_warning(l, 2, POLICY_LINT_LOCAL_ANY_PORT, 7, 29, "the link-local range fe80::/10");
	assert_warning(l, 3, POLICY_LINT_LOCAL_ANY_PORT, 7, 40, "the unique local range fc00::/7");
	assert_warning(l, 4, POLICY_LINT_LOCAL_ANY_PORT, 7, 49,
		       "the link-local range 169.254.0.0/16");
	/* 172.0.0.0/8 contains 172.16.0.0/12. */
	assert_warning(l, 5, POLICY_LINT_LOCAL_ANY_PORT, 7, 65, "the private range 172.16.0.0/12");
}

static void test_nothing_to_say(void **state)
{
	_cleanup_(policy_lint_freep) struct policy_lint *l =
	    lint_of("version: 1\n"
		    "resolvers: [127.0.0.53]\n"
		    "sets:\n"
		    "  s: [198.51.100.0/24, 2001:db8::/32, tiles.oem.example]\n"
		    "apps:\n"
		    "  a: {allow: [{to: [s, \"*.maps.oem.example\", 10.0.0.1], ports: [443]}]}\n"
		    "  b: {allow: [{to: [203.0.113.7, cloudfront.net]}]}\n");

	(void)state;
	assert_int_equal(l->n_total, 0);
	assert_int_equal(l->n_warnings, 0);
}

static void test_warnings_are_bounded(void **state)
{
	const size_t n = POLICY_LINT_MAX_WARNINGS + 5;
	size_t cap = 64 + n * 32, len;
	_cleanup_free_ char *yaml = malloc(cap);

	(void)state;
	assert_non_null(yaml);
	len = (size_t)snprintf(yaml, cap, "version: 1\napps:\n  a:\n    allow:\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(yaml + len, cap - len, "      - to: 10.0.%zu.%zu\n",
					i / 256, i % 256);
	assert_true(len < cap);
	_cleanup_(policy_lint_freep) struct policy_lint *l = lint_of(yaml);
	assert_int_equal(l->n_warnings, POLICY_LINT_MAX_WARNINGS);
	assert_int_equal(l->n_total, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_address),
		cmocka_unit_test(test_translation_ranges),
		cmocka_unit_test(test_wildcards_on_public_suffixes),
		cmocka_unit_test(test_local_ranges_without_ports),
		cmocka_unit_test(test_nothing_to_say),
		cmocka_unit_test(test_warnings_are_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
