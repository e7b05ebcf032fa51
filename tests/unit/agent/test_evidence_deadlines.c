// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the deadlines the agent's evidence timer is armed for (issue 18: an idle agent does
 * not wake). Each module says when it next has work: the aggregation table when a key's repeats
 * are due, the journal's quota when a refused line must be reported, the table of observed names
 * when an entry expires; UINT64_MAX when nothing is pending. A deadline is never later than the
 * work it stands for (a late one would delay evidence), and nothing pending is never a deadline
 * (a periodic wake-up).
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
#include "observed.h"

#define SEC 1000000000ull

static unsigned written;

static void on_write(const struct events_agg_record *rec, void *userdata)
{
	(void)rec;
	(void)userdata;
	written++;
}

/* A refused IPv4 TCP connect to port at boot time `at` seconds. */
static struct cw_event ev(uint16_t port, uint64_t at)
{
	struct cw_event e = {
		.boot_ns = at * SEC,
		.port = port,
		.family = AF_INET,
		.proto = IPPROTO_TCP,
		.hook = CW_HOOK_CONNECT4,
		.verdict = CW_VERDICT_DENY_NO_RULE,
	};

	inet_pton(AF_INET, "203.0.113.7", e.addr);
	return e;
}

static void test_repeats_are_due_at_their_keys_flush_and_nothing_after(void **state)
{
	struct events_agg *agg = NULL;
	struct cw_event a = ev(443, 10), b = ev(8443, 11);

	(void)state;
	written = 0;
	assert_int_equal(events_agg_new(16, 2 * SEC, 8 * SEC, on_write, NULL, NULL, &agg), 0);
	assert_int_equal(events_agg_next_deadline(agg), UINT64_MAX);
	/* The first of a key is written at once: nothing pending. */
	events_agg_add(agg, &a, "navigation", 0);
	events_agg_add(agg, &b, "navigation", 0);
	assert_int_equal(written, 2);
	assert_int_equal(events_agg_next_deadline(agg), UINT64_MAX);
	/* A repeat of each: the first key's flush (10 s + 2 s) comes first. */
	events_agg_add(agg, &b, "navigation", 0);
	assert_int_equal(events_agg_next_deadline(agg), 13 * SEC);
	events_agg_add(agg, &a, "navigation", 0);
	assert_int_equal(events_agg_next_deadline(agg), 12 * SEC);
	/* A tick before it writes nothing and keeps it. */
	events_agg_tick(agg, 12 * SEC - 1);
	assert_int_equal(written, 2);
	assert_int_equal(events_agg_next_deadline(agg), 12 * SEC);
	/* At 12 s the first key's repeat is written; the other's is due at 13 s. */
	events_agg_tick(agg, 12 * SEC);
	assert_int_equal(written, 3);
	assert_int_equal(events_agg_next_deadline(agg), 13 * SEC);
	events_agg_tick(agg, 13 * SEC);
	assert_int_equal(written, 4);
	assert_int_equal(events_agg_next_deadline(agg), UINT64_MAX);
	/* The key's period doubled: its next repeat is due 4 s after its last record. */
	events_agg_add(agg, &a, "navigation", 0);
	assert_int_equal(events_agg_next_deadline(agg), 16 * SEC);
	/* The agent stops: everything written, nothing due. */
	events_agg_flush(agg);
	assert_int_equal(written, 5);
	assert_int_equal(events_agg_next_deadline(agg), UINT64_MAX);
	events_agg_free(agg);
}

static unsigned reports;

static void on_report(const char *share, uint64_t refused, void *userdata)
{
	(void)share;
	(void)refused;
	(void)userdata;
	reports++;
}

static void test_a_refused_journal_line_is_reported_when_its_window_ends(void **state)
{
	struct events_quota *q = NULL;

	(void)state;
	reports = 0;
	assert_int_equal(events_quota_new(2, SEC, &q), 0);
	assert_int_equal(events_quota_next_deadline(q), UINT64_MAX);
	assert_true(events_quota_take(q, "navigation", 5 * SEC));
	assert_true(events_quota_take(q, "navigation", 5 * SEC));
	assert_int_equal(events_quota_next_deadline(q), UINT64_MAX); /* nothing refused */
	assert_false(events_quota_take(q, "navigation", 5 * SEC + 10));
	assert_int_equal(events_quota_next_deadline(q), 6 * SEC);
	events_quota_report(q, 6 * SEC - 1, on_report, NULL);
	assert_int_equal(reports, 0);
	assert_int_equal(events_quota_next_deadline(q), 6 * SEC);
	events_quota_report(q, 6 * SEC, on_report, NULL);
	assert_int_equal(reports, 1);
	assert_int_equal(events_quota_next_deadline(q), UINT64_MAX);
	events_quota_free(q);
}

static int add(struct observed *o, uint32_t host, uint64_t expires_ns)
{
	uint32_t be = htonl(host);
	uint8_t a[16] = {};

	memcpy(a, &be, 4);
	return observed_add(o, 1, AF_INET, a, "tiles.oem.example", expires_ns);
}

static void test_observed_names_are_due_when_the_first_expires(void **state)
{
	struct observed *o = NULL;

	(void)state;
	assert_int_equal(observed_new(64, 8, &o), 0);
	assert_int_equal(observed_next_expiry(o), UINT64_MAX);
	assert_int_equal(add(o, 0xc6336451, 30 * SEC), 0);
	assert_int_equal(add(o, 0xc6336452, 20 * SEC), 0);
	assert_int_equal(observed_next_expiry(o), 20 * SEC);
	/* A later answer for the first to expire: the deadline may stay early, never late. */
	assert_int_equal(add(o, 0xc6336452, 40 * SEC), 0);
	assert_true(observed_next_expiry(o) <= 30 * SEC);
	assert_int_equal(observed_expire(o, observed_next_expiry(o)), 0);
	assert_int_equal(observed_next_expiry(o), 30 * SEC);
	assert_int_equal(observed_expire(o, 30 * SEC), 1);
	assert_int_equal(observed_next_expiry(o), 40 * SEC);
	assert_int_equal(observed_expire(o, 40 * SEC), 1);
	assert_int_equal(observed_count(o), 0);
	assert_int_equal(observed_next_expiry(o), UINT64_MAX);
	observed_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repeats_are_due_at_their_keys_flush_and_nothing_after),
		cmocka_unit_test(test_a_refused_journal_line_is_reported_when_its_window_ends),
		cmocka_unit_test(test_observed_names_are_due_when_the_first_expires),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
