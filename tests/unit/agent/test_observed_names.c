// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the agent's table of names observed in the apps' DNS answers (agent/observed.c):
 * an app's answers name only its own addresses, a later answer renames an address, entries
 * age out with their TTL, and the bounds (per app, in all) never let one app evict another's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "observed.h"

#define S 1000000000ull /* a second, in ns */

static void v4(uint32_t host, uint8_t addr[16])
{
	uint32_t be = htonl(host);

	memset(addr, 0, 16);
	memcpy(addr, &be, 4);
}

static const char *name_of(struct observed *o, uint32_t uid, uint32_t host, uint64_t now)
{
	static char buf[OBSERVED_NAME_MAX + 1];
	uint8_t a[16];

	v4(host, a);
	return observed_lookup(o, uid, AF_INET, a, now, buf, sizeof(buf)) ? buf : NULL;
}

static int add(struct observed *o, uint32_t uid, uint32_t host, const char *name, uint64_t exp)
{
	uint8_t a[16];

	v4(host, a);
	return observed_add(o, uid, AF_INET, a, name, exp);
}

static void test_an_apps_answer_names_its_own_address_only(void **state)
{
	struct observed *o = NULL;

	(void)state;
	assert_int_equal(observed_new(64, 8, &o), 0);
	assert_int_equal(add(o, 1, 0xc6336451, "api.music.example", 10 * S), 0);
	assert_string_equal(name_of(o, 1, 0xc6336451, 1 * S), "api.music.example");
	assert_null(name_of(o, 2, 0xc6336451, 1 * S)); /* another app: nothing */
	assert_null(name_of(o, 1, 0xc6336452, 1 * S)); /* another address: nothing */
	/* IPv6: the family is part of the key. */
	uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8}, a4[16];
	char buf[64];

	v4(0x20010db8, a4);
	assert_int_equal(observed_add(o, 1, AF_INET6, a6, "v6.music.example", 10 * S), 0);
	assert_true(observed_lookup(o, 1, AF_INET6, a6, S, buf, sizeof(buf)));
	assert_string_equal(buf, "v6.music.example");
	assert_false(observed_lookup(o, 1, AF_INET, a4, S, buf, sizeof(buf)));
	assert_int_equal(observed_add(o, 1, AF_UNIX, a6, "x.example", 10 * S), -EINVAL);
	assert_int_equal(observed_add(o, 1, AF_INET, a4, "", 10 * S), -EINVAL);
	observed_free(o);
}

static void test_a_later_answer_renames_the_address_and_its_ttl(void **state)
{
	struct observed *o = NULL;
	struct observed_stats st;

	(void)state;
	assert_int_equal(observed_new(64, 8, &o), 0);
	assert_int_equal(add(o, 1, 10, "a.example", 5 * S), 0);
	assert_int_equal(add(o, 1, 10, "b.example", 20 * S), 0);
	assert_int_equal(observed_count(o), 1);
	assert_string_equal(name_of(o, 1, 10, 10 * S), "b.example");
	observed_get_stats(o, &st);
	assert_int_equal(st.added, 1);
	assert_int_equal(st.refreshed, 1);
	observed_free(o);
}

static void test_an_answer_names_nothing_once_its_ttl_ran_out(void **state)
{
	struct observed *o = NULL;
	struct observed_stats st;

	(void)state;
	assert_int_equal(observed_new(64, 8, &o), 0);
	assert_int_equal(add(o, 1, 10, "short.example", 2 * S), 0);
	assert_int_equal(add(o, 1, 11, "long.example", 60 * S), 0);
	assert_non_null(name_of(o, 1, 10, 2 * S - 1));
	assert_null(name_of(o, 1, 10, 2 * S)); /* expired, even before a sweep */
	assert_int_equal(observed_expire(o, 3 * S), 1);
	assert_int_equal(observed_count(o), 1);
	assert_null(name_of(o, 1, 10, 1 * S)); /* gone */
	assert_string_equal(name_of(o, 1, 11, 3 * S), "long.example");
	observed_get_stats(o, &st);
	assert_int_equal(st.expired, 1);
	/* The freed entry is taken again. */
	assert_int_equal(add(o, 1, 12, "again.example", 60 * S), 0);
	assert_int_equal(observed_count(o), 2);
	observed_free(o);
}

static void test_an_app_at_its_bound_gives_up_its_own_oldest_entry(void **state)
{
	struct observed *o = NULL;
	struct observed_stats st;
	char name[32];

	(void)state;
	assert_int_equal(observed_new(64, 4, &o), 0);
	assert_int_equal(add(o, 2, 100, "other.example", 60 * S), 0);
	for (uint32_t i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "h%u.example", i);
		assert_int_equal(add(o, 1, i, name, 60 * S), 0);
	}
	/* Refreshing h0 makes h1 the oldest. */
	assert_int_equal(add(o, 1, 0, "h0.example", 60 * S), 0);
	assert_int_equal(add(o, 1, 4, "h4.example", 60 * S), 0);
	assert_int_equal(observed_app_count(o, 1), 4);
	assert_null(name_of(o, 1, 1, S));
	assert_string_equal(name_of(o, 1, 0, S), "h0.example");
	assert_string_equal(name_of(o, 1, 4, S), "h4.example");
	assert_string_equal(name_of(o, 2, 100, S), "other.example"); /* never another's */
	observed_get_stats(o, &st);
	assert_int_equal(st.evicted, 1);
	observed_free(o);
}

static void test_a_full_table_never_evicts_another_apps_entries(void **state)
{
	struct observed *o = NULL;
	struct observed_stats st;
	char name[32];

	(void)state;
	assert_int_equal(observed_new(4, 4, &o), 0);
	for (uint32_t i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "a%u.example", i);
		assert_int_equal(add(o, 1, i, name, 60 * S), 0);
	}
	/* App 2 holds nothing to give up: its answer is not kept, app 1's stay. */
	assert_int_equal(add(o, 2, 50, "b.example", 60 * S), -ENOSPC);
	assert_int_equal(observed_count(o), 4);
	assert_null(name_of(o, 2, 50, S));
	for (uint32_t i = 0; i < 4; i++)
		assert_non_null(name_of(o, 1, i, S));
	/* App 1, flooding on, only replaces its own. */
	for (uint32_t i = 4; i < 1000; i++) {
		snprintf(name, sizeof(name), "a%u.example", i);
		assert_int_equal(add(o, 1, i, name, 60 * S), 0);
	}
	assert_int_equal(observed_count(o), 4);
	assert_string_equal(name_of(o, 1, 999, S), "a999.example");
	assert_null(name_of(o, 1, 0, S));
	observed_get_stats(o, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.evicted, 996);
	observed_free(o);
}

static void test_bounds_are_checked(void **state)
{
	struct observed *o = NULL;

	(void)state;
	assert_int_equal(observed_new(0, 1, &o), -EINVAL);
	assert_int_equal(observed_new(OBSERVED_MAX_ENTRIES + 1, 1, &o), -EINVAL);
	assert_int_equal(observed_new(8, 9, &o), -EINVAL);
	assert_int_equal(observed_new(8, 0, &o), -EINVAL);
	assert_int_equal(observed_new(OBSERVED_MAX_ENTRIES, OBSERVED_MAX_PER_APP, &o), 0);
	/* A name longer than a DNS name's text is refused. */
	char long_name[OBSERVED_NAME_MAX + 2];

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(add(o, 1, 1, long_name, S), -EINVAL);
	observed_free(o);
	observed_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_an_apps_answer_names_its_own_address_only),
	    cmocka_unit_test(test_a_later_answer_renames_the_address_and_its_ttl),
	    cmocka_unit_test(test_an_answer_names_nothing_once_its_ttl_ran_out),
	    cmocka_unit_test(test_an_app_at_its_bound_gives_up_its_own_oldest_entry),
	    cmocka_unit_test(test_a_full_table_never_evicts_another_apps_entries),
	    cmocka_unit_test(test_bounds_are_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
