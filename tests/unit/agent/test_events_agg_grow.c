// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the aggregation table of the evidence path (userspace/agent/events_log.c) starts
 * small and grows with its keys up to its bound. Across every growth each key is still found
 * (its repeats are folded, never a second first record), no count is lost, and the bound holds:
 * one key past it evicts the least recently seen one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "events_log.h"
#include "util.h"

#define SEC 1000000000ull
/* Not a power of two, and many times the table's first size: several growths, the last cut. */
#define KEYS 1000u

struct seen {
	uint64_t first_records; /* records that are the first of their key */
	uint64_t total;		/* of the counts */
	uint64_t exe_lookups;
};

static void on_write(const struct events_agg_record *rec, void *userdata)
{
	struct seen *s = userdata;

	s->total += rec->count;
	if (rec->first_of_key)
		s->first_records++;
}

static void on_exe(const struct cw_event *e, char *buf, size_t size, void *userdata)
{
	struct seen *s = userdata;

	s->exe_lookups++;
	snprintf(buf, size, "/usr/bin/app%u", e->pid);
}

/* A refused IPv4 TCP connect to 203.0.113.7:port at boot time `at` seconds. */
static struct cw_event ev(uint16_t port, uint64_t at)
{
	struct cw_event e = {
		.boot_ns = at * SEC,
		.cgroup_id = 42,
		.pid = 100,
		.tid = 100,
		.port = port,
		.family = AF_INET,
		.proto = IPPROTO_TCP,
		.hook = CW_HOOK_CONNECT4,
		.verdict = CW_VERDICT_DENY_NO_RULE,
	};

	inet_pton(AF_INET, "203.0.113.7", e.addr);
	return e;
}

static void test_a_growing_table_finds_every_key_and_keeps_its_bound(void **state)
{
	struct events_agg *agg = NULL;
	struct events_agg_stats st;
	struct seen s = {};
	struct cw_event e;

	(void)state;
	assert_int_equal(events_agg_new(KEYS, 2 * SEC, 8 * SEC, on_write, on_exe, &s, &agg), 0);
	for (uint16_t p = 1; p <= KEYS; p++) {
		e = ev(p, 10);
		events_agg_add(agg, &e, "mediaplayer", 1000 * SEC);
	}
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.keys, KEYS);
	assert_int_equal(s.first_records, KEYS);
	assert_int_equal(st.evicted, 0);

	/* A repeat of every key, once the table has grown: folded, not a new key. */
	for (uint16_t p = 1; p <= KEYS; p++) {
		e = ev(p, 11);
		events_agg_add(agg, &e, "mediaplayer", 1001 * SEC);
	}
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.keys, KEYS);
	assert_int_equal(st.folded, KEYS);
	assert_int_equal(st.pending, KEYS);
	assert_int_equal(s.first_records, KEYS);

	/* Their flush is due: one record per key, every repeat counted. */
	events_agg_tick(agg, 20 * SEC);
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(s.total, 2 * KEYS);

	/* One key past the bound: the least recently seen (port 1) makes room, nothing grows. */
	e = ev(KEYS + 1, 30);
	events_agg_add(agg, &e, "mediaplayer", 1010 * SEC);
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.keys, KEYS);
	assert_int_equal(st.evicted, 1);
	assert_int_equal(s.first_records, KEYS + 1);
	e = ev(1, 31);
	events_agg_add(agg, &e, "mediaplayer", 1011 * SEC);
	assert_int_equal(s.first_records, KEYS + 2); /* port 1 was the one evicted */
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.evicted, 2);
	assert_int_equal(st.keys, KEYS);
	events_agg_free(agg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_growing_table_finds_every_key_and_keeps_its_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
