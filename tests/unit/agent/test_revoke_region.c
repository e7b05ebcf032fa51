// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: revocation under home-only residency (userspace/agent/revoke.c, revoke_judge()),
 * as the kernel's cw_judge_home(): a connection its rule allows is cut when its peer is outside
 * the home region's prefixes, unless a cross-border rule allows it; IPv4-mapped peers are judged
 * as IPv4, and without home-only nothing changes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include "revoke.h"

static const char policy_yaml[] =
    "version: 1\n"
    "home-region: xa\n"
    "apps:\n"
    "  media:\n"
    "    allow:\n"
    "      - to: [198.51.100.0/24, 203.0.113.0/24, \"2001:db8::/32\"]\n"
    "        ports: [443]\n"
    "        proto: tcp\n"
    "      - to: 203.0.113.7\n"
    "        ports: [9000]\n"
    "        proto: tcp\n"
    "        region: xb\n"
    "        cross-border: \"crash reports\"\n";

/* The policy compiled, with home-only and the home prefixes 198.51.100.0/24, 2001:db8:a::/48. */
static struct policy_maps *compile(bool home_only)
{
	struct policy_error err = {};
	struct policy_maps *m = NULL;
	struct policy *p = NULL;
	char reason[256];

	if (policy_parse_buffer("test.yaml", policy_yaml, strlen(policy_yaml), &p, &err) < 0)
		fail_msg("parse failed: %u:%u: %s", err.loc.line, err.loc.column, err.reason);
	if (policy_compile(p, 0, &m, reason, sizeof(reason)) < 0)
		fail_msg("compile failed: %s", reason);
	policy_free(p);
	m->home4 = calloc(1, sizeof(*m->home4));
	m->home6 = calloc(1, sizeof(*m->home6));
	assert_non_null(m->home4);
	assert_non_null(m->home6);
	m->n_home4 = m->n_home6 = 1;
	m->home4[0].key.prefixlen = 32 + 24;
	assert_int_equal(inet_pton(AF_INET, "198.51.100.0", m->home4[0].key.addr), 1);
	m->home6[0].key.prefixlen = 32 + 48;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:a::", m->home6[0].key.addr), 1);
	policy_maps_sort_home(m);
	m->home_only = home_only;
	return m;
}

/* A TCP connection of the app to dst:dport. */
static struct revoke_sock conn(const char *dst, uint16_t dport)
{
	int family = strchr(dst, ':') ? AF_INET6 : AF_INET;
	struct revoke_sock s = {
	    .family = (uint8_t)family,
	    .protocol = IPPROTO_TCP,
	    .state = TCP_ESTABLISHED,
	    .sk_flags = CW_SK_F_ACTIVE,
	};

	assert_int_equal(inet_pton(family, dst, s.id.idiag_dst), 1);
	s.id.idiag_dport = htons(dport);
	return s;
}

static void test_home_only_cuts_a_connection_abroad(void **state)
{
	struct policy_maps *m = compile(true);
	struct revoke_sock s;

	(void)state;
	s = conn("198.51.100.20", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_KEEP_ALLOWED);
	s = conn("203.0.113.8", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_DESTROY);
	s = conn("::ffff:203.0.113.8", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_DESTROY);
	s = conn("::ffff:198.51.100.9", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_KEEP_ALLOWED);
	s = conn("2001:db8:a::1", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_KEEP_ALLOWED);
	s = conn("2001:db8:b::1", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_DESTROY);
	policy_maps_free(m);
}

static void test_home_only_keeps_a_cross_border_rule(void **state)
{
	struct policy_maps *m = compile(true);
	struct revoke_sock s;

	(void)state;
	s = conn("203.0.113.7", 9000);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_KEEP_ALLOWED);
	/* The same address on the other rule's port is not cross-border. */
	s = conn("203.0.113.7", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_DESTROY);
	policy_maps_free(m);
}

static void test_without_home_only_nothing_changes(void **state)
{
	struct policy_maps *m = compile(false);
	struct revoke_sock s;

	(void)state;
	s = conn("203.0.113.8", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_KEEP_ALLOWED);
	s = conn("2001:db8:b::1", 443);
	assert_int_equal(revoke_judge(&s, 0, 1, m), REVOKE_KEEP_ALLOWED);
	policy_maps_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_home_only_cuts_a_connection_abroad),
	    cmocka_unit_test(test_home_only_keeps_a_cross_border_rule),
	    cmocka_unit_test(test_without_home_only_nothing_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
