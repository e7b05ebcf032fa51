// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the country database (userspace/lib/geo.c) on small databases written by
 * tests/lib/make_geo_db.pl (Debian's libmaxmind-db-writer-perl; SKIP without it): lookups, the
 * home region's prefixes from the tree walk (IPv4 in an IPv6 database once, its aliases not
 * again), both record forms, and geo_apply_policy() failing closed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf() */
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "geo.h"
#include "policy.h"
#include "policy_compile.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct geo_db *, geo_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)

static char tmpdir[] = "/tmp/cw-geo-test.XXXXXX";

/* Write a database with make_geo_db.pl: args after the file name. Skips the test without perl's
 * writer. */
static char *make_db(const char *name, const char *args)
{
	const char *slash = strrchr(__FILE__, '/');
	char *path = NULL, *cmd = NULL;

	if (system("perl -MMaxMind::DB::Writer::Tree -e1 2>/dev/null") != 0)
		skip();
	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	assert_true(asprintf(&cmd, "perl %.*s/../../lib/make_geo_db.pl %s %s",
			     slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".", path,
			     args) > 0);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return path;
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char *cmd = NULL;

	(void)state;
	if (asprintf(&cmd, "rm -rf %s", tmpdir) > 0)
		(void)system(cmd);
	free(cmd);
	return 0;
}

static void test_lookup(void **state)
{
	_cleanup_free_ char *path = make_db("a.mmdb", "198.51.100.0/24=XA 2001:db8:a::/48=xa "
						      "203.0.113.0/25=cc:XB");
	_cleanup_(geo_freep) struct geo_db *db = NULL;
	char reason[512], cc[3], sha[65];
	unsigned len;
	uint8_t a[16];

	(void)state;
	assert_int_equal(geo_open(path, &db, reason, sizeof(reason)), 0);
	assert_string_equal(geo_info(db)->type, "carwall-test-country");
	assert_int_equal(geo_info(db)->ip_version, 6);
	assert_int_equal(geo_file_sha256(path, sha), 0);
	assert_string_equal(geo_info(db)->sha256, sha);
	inet_pton(AF_INET, "198.51.100.7", a);
	assert_int_equal(geo_lookup(db, AF_INET, a, cc, &len), 0);
	assert_string_equal(cc, "xa");
	assert_int_equal(len, 24);
	inet_pton(AF_INET, "203.0.113.9", a);
	assert_int_equal(geo_lookup(db, AF_INET, a, cc, &len), 0); /* the country_code form */
	assert_string_equal(cc, "xb");
	assert_int_equal(len, 25);
	inet_pton(AF_INET, "203.0.113.200", a);
	assert_int_equal(geo_lookup(db, AF_INET, a, cc, &len), -ENOENT);
	inet_pton(AF_INET6, "2001:db8:a::1", a);
	assert_int_equal(geo_lookup(db, AF_INET6, a, cc, &len), 0);
	assert_string_equal(cc, "xa");
	assert_int_equal(len, 48);
	assert_int_equal(geo_open("/nonexistent.mmdb", &db, reason, sizeof(reason)), -ENOENT);
}

static void test_home_prefixes_from_the_tree(void **state)
{
	_cleanup_free_ char *path = make_db("b.mmdb", "198.51.100.0/24=xa 192.0.2.128/25=xa "
						      "203.0.113.0/24=xb 2001:db8:a::/48=xa "
						      "2001:db8:b::/48=xb");
	_cleanup_(geo_freep) struct geo_db *db = NULL;
	struct policy_maps m = {.gen = 1};
	const char home[1][3] = {"xa"};
	char reason[512], buf[64];
	bool seen_24 = false, seen_25 = false;

	(void)state;
	assert_int_equal(geo_open(path, &db, reason, sizeof(reason)), 0);
	assert_int_equal(geo_home_maps(db, home, 1, &m, reason, sizeof(reason)), 0);
	/* Each IPv4 prefix once: ::ffff:0:0/96 and 2002::/16 alias the IPv4 subtree. */
	assert_int_equal(m.n_home4, 2);
	for (size_t i = 0; i < m.n_home4; i++) {
		assert_int_equal(m.home4[i].key.gen, 1);
		assert_memory_equal(m.home4[i].val.country, "xa", 2);
		inet_ntop(AF_INET, m.home4[i].key.addr, buf, sizeof(buf));
		if (!strcmp(buf, "198.51.100.0") && m.home4[i].key.prefixlen == 32 + 24)
			seen_24 = true;
		if (!strcmp(buf, "192.0.2.128") && m.home4[i].key.prefixlen == 32 + 25)
			seen_25 = true;
	}
	assert_true(seen_24 && seen_25);
	assert_int_equal(m.n_home6, 1);
	inet_ntop(AF_INET6, m.home6[0].key.addr, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:a::");
	assert_int_equal(m.home6[0].key.prefixlen, 32 + 48);
	free(m.home4);
	free(m.home6);
}

static void test_ipv4_only_database(void **state)
{
	_cleanup_free_ char *path =
	    make_db("c.mmdb", "--ipv4-only 198.51.100.0/24=xa 203.0.113.0/24=xb");
	_cleanup_(geo_freep) struct geo_db *db = NULL;
	struct policy_maps m = {.gen = 0};
	const char home[1][3] = {"xb"};
	char reason[512], cc[3];
	uint8_t a[16] = {};

	(void)state;
	assert_int_equal(geo_open(path, &db, reason, sizeof(reason)), 0);
	assert_int_equal(geo_info(db)->ip_version, 4);
	assert_int_equal(geo_home_maps(db, home, 1, &m, reason, sizeof(reason)), 0);
	assert_int_equal(m.n_home4, 1);
	assert_int_equal(m.n_home6, 0);
	assert_int_equal(m.home4[0].key.addr[0], 203);
	assert_int_equal(geo_lookup(db, AF_INET6, a, cc, NULL), -ENOENT);
	free(m.home4);
	free(m.home6);
}

static void test_apply_policy_fails_closed(void **state)
{
	static const char yaml[] = "version: 1\nhome-region: xa\nresidency-enforce: home-only\n"
				   "apps: {}\n";
	_cleanup_free_ char *path = make_db("d.mmdb", "203.0.113.0/24=xb");
	_cleanup_free_ char *good = make_db("e.mmdb", "198.51.100.0/24=xa");
	_cleanup_(policy_freep) struct policy *p = NULL;
	struct policy_maps m = {.gen = 0};
	struct policy_error e;
	struct geo_info info;
	char reason[512];

	(void)state;
	assert_int_equal(policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e), 0);
	/* No database: refused, never enforced without the home prefixes. */
	assert_int_equal(geo_apply_policy(p, NULL, &m, NULL, reason, sizeof(reason)), -ENOENT);
	assert_non_null(strstr(reason, "no country database was given"));
	assert_false(m.home_only);
	/* A database without the home region: refused too (every rule would be refused). */
	assert_int_equal(geo_apply_policy(p, path, &m, NULL, reason, sizeof(reason)), -ENOENT);
	assert_false(m.home_only);
	assert_int_equal(geo_apply_policy(p, good, &m, &info, reason, sizeof(reason)), 0);
	assert_true(m.home_only);
	assert_int_equal(m.n_home4, 1);
	assert_string_equal(info.type, "carwall-test-country");
	free(m.home4);
	free(m.home6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookup),
	    cmocka_unit_test(test_home_prefixes_from_the_tree),
	    cmocka_unit_test(test_ipv4_only_database),
	    cmocka_unit_test(test_apply_policy_fails_closed),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
