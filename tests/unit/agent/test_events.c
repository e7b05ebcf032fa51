// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the evidence path (userspace/lib/events.c, userspace/agent/events_log.c) without
 * a kernel: the aggregation table (repeats folded into one record per key, flushed and evicted
 * without losing a count) and the per-app shares of the events log (one app's records never
 * rotate out another's; the total stays within its bound, across a restart too).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "events_log.h"
#include "util.h"

#define SEC 1000000000ull

/* ---- aggregation ----------------------------------------------------------------------------- */

#define MAX_WRITTEN 64

struct written {
	struct {
		char app[EVENTS_APP_MAX + 1];
		uint16_t port;
		uint32_t pid;
		uint64_t count;
		int64_t first_ns, last_ns;
		bool first_of_key;
		char exe[64];
	} r[MAX_WRITTEN];
	size_t n;
	uint64_t total; /* of the counts */
	unsigned exe_lookups;
};

static void on_write(const struct events_agg_record *rec, void *userdata)
{
	struct written *w = userdata;

	w->total += rec->count;
	if (w->n == MAX_WRITTEN)
		return;
	snprintf(w->r[w->n].app, sizeof(w->r[w->n].app), "%s", rec->app ? rec->app : "");
	w->r[w->n].port = rec->e->port;
	w->r[w->n].pid = rec->e->pid;
	w->r[w->n].count = rec->count;
	w->r[w->n].first_ns = rec->first_ns;
	w->r[w->n].last_ns = rec->last_ns;
	w->r[w->n].first_of_key = rec->first_of_key;
	snprintf(w->r[w->n].exe, sizeof(w->r[w->n].exe), "%s", rec->exe ? rec->exe : "");
	w->n++;
}

static void on_exe(const struct cw_event *e, char *buf, size_t size, void *userdata)
{
	struct written *w = userdata;

	w->exe_lookups++;
	snprintf(buf, size, "/usr/bin/app%u", e->pid);
}

/* A refused IPv4 TCP connect at boot time `at` seconds. */
static struct cw_event ev(uint16_t port, uint32_t pid, uint64_t at)
{
	struct cw_event e = {
		.boot_ns = at * SEC,
		.cgroup_id = 42,
		.pid = pid,
		.tid = pid,
		.port = port,
		.family = AF_INET,
		.proto = IPPROTO_TCP,
		.hook = CW_HOOK_CONNECT4,
		.verdict = CW_VERDICT_DENY_NO_RULE,
	};

	inet_pton(AF_INET, "203.0.113.7", e.addr);
	return e;
}

static struct events_agg *agg_new(size_t max_keys, struct written *w)
{
	struct events_agg *agg = NULL;

	assert_int_equal(events_agg_new(max_keys, 2 * SEC, 8 * SEC, on_write, on_exe, w, &agg), 0);
	return agg;
}

static void test_the_first_event_of_a_key_is_written_at_once(void **state)
{
	struct written w = {};
	struct events_agg *agg = agg_new(16, &w);
	struct cw_event e = ev(443, 100, 10);

	(void)state;
	events_agg_add(agg, &e, "mediaplayer", 1000 * SEC);
	assert_int_equal(w.n, 1);
	assert_true(w.r[0].first_of_key);
	assert_int_equal(w.r[0].count, 1);
	assert_string_equal(w.r[0].app, "mediaplayer");
	assert_int_equal(w.r[0].first_ns, 1000 * SEC);
	assert_int_equal(w.r[0].last_ns, 1000 * SEC);
	assert_string_equal(w.r[0].exe, "/usr/bin/app100");
	events_agg_free(agg);
}

static void test_repeats_are_one_record_when_the_flush_is_due(void **state)
{
	struct written w = {};
	struct events_agg *agg = agg_new(16, &w);
	struct events_agg_stats st;
	struct cw_event e = ev(443, 100, 10);

	(void)state;
	events_agg_add(agg, &e, "mediaplayer", 1000 * SEC);
	for (int i = 1; i <= 1000; i++) {
		e.boot_ns = 10 * SEC + (uint64_t)i * 1000;
		events_agg_add(agg, &e, "mediaplayer", 1000 * SEC + i * 1000);
	}
	assert_int_equal(w.n, 1); /* folded, nothing written yet */
	assert_int_equal(w.exe_lookups, 1); /* the same sender: its executable is read once */
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.events, 1001);
	assert_int_equal(st.folded, 1000);
	assert_int_equal(st.pending, 1000);
	assert_int_equal(st.keys, 1);

	events_agg_tick(agg, 11 * SEC); /* 1 s after the first record: not due */
	assert_int_equal(w.n, 1);
	events_agg_tick(agg, 12 * SEC); /* 2 s: due */
	assert_int_equal(w.n, 2);
	assert_false(w.r[1].first_of_key);
	assert_int_equal(w.r[1].count, 1000);
	assert_int_equal(w.r[1].first_ns, 1000 * SEC + 1000);
	assert_int_equal(w.r[1].last_ns, 1000 * SEC + 1000 * 1000);
	events_agg_tick(agg, 30 * SEC); /* nothing pending: nothing written */
	assert_int_equal(w.n, 2);
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.records, 2);
	assert_int_equal(w.total, 1001);
	events_agg_free(agg);
}

static void test_the_flush_period_doubles_up_to_its_max(void **state)
{
	struct written w = {};
	struct events_agg *agg = agg_new(16, &w);
	struct cw_event e = ev(443, 100, 0);
	/* Period 2 s, then 4, then 8 (the max), then 8 again. */
	const uint64_t due[] = { 2, 6, 14, 22 };
	uint64_t t = 0;

	(void)state;
	events_agg_add(agg, &e, "a", 0);
	for (size_t k = 0; k < ARRAY_SIZE(due); k++) {
		events_agg_add(agg, &e, "a", 0);
		t = due[k] - 1;
		events_agg_tick(agg, t * SEC);
		assert_int_equal(w.n, 1 + k);
		events_agg_tick(agg, due[k] * SEC);
		assert_int_equal(w.n, 2 + k);
	}
	events_agg_free(agg);
}

static void test_a_new_sender_is_the_record_s_last(void **state)
{
	struct written w = {};
	struct events_agg *agg = agg_new(16, &w);
	struct cw_event e = ev(443, 100, 1);

	(void)state;
	events_agg_add(agg, &e, "a", 0);
	e.pid = 200;
	events_agg_add(agg, &e, "a", 0);
	events_agg_flush(agg);
	assert_int_equal(w.n, 2);
	assert_int_equal(w.r[1].pid, 200);
	assert_string_equal(w.r[1].exe, "/usr/bin/app200");
	assert_int_equal(w.exe_lookups, 2);
	events_agg_free(agg);
}

static void test_keys_differ_by_app_destination_verdict_and_audit(void **state)
{
	struct written w = {};
	struct events_agg *agg = agg_new(16, &w);
	struct cw_event e = ev(443, 100, 1), x;

	(void)state;
	events_agg_add(agg, &e, "a", 0);
	events_agg_add(agg, &e, "b", 0); /* another app */
	x = e;
	x.port = 444;
	events_agg_add(agg, &x, "a", 0);
	x = e;
	x.addr[3] = 8;
	events_agg_add(agg, &x, "a", 0);
	x = e;
	x.proto = IPPROTO_UDP;
	events_agg_add(agg, &x, "a", 0);
	x = e;
	x.hook = CW_HOOK_SENDMSG4;
	events_agg_add(agg, &x, "a", 0);
	x = e;
	x.flags = CW_EVENT_F_AUDIT;
	events_agg_add(agg, &x, "a", 0);
	x = e;
	x.verdict = CW_VERDICT_DENY_GUARD;
	events_agg_add(agg, &x, NULL, 0);
	x.cgroup_id = 43; /* what is not an app: told apart by its cgroup */
	events_agg_add(agg, &x, NULL, 0);
	assert_int_equal(w.n, 9);
	for (size_t i = 0; i < w.n; i++)
		assert_true(w.r[i].first_of_key);
	/* An app is one key whatever its cgroup (a restarted unit has a new one). */
	x = e;
	x.cgroup_id = 99;
	events_agg_add(agg, &x, "a", 0);
	assert_int_equal(w.n, 9);
	events_agg_free(agg);
}

static void test_a_full_table_evicts_the_least_recently_seen_key_and_its_repeats(void **state)
{
	struct written w = {};
	struct events_agg *agg = agg_new(2, &w);
	struct cw_event a = ev(1, 100, 1), b = ev(2, 100, 1), c = ev(3, 100, 1);
	struct events_agg_stats st;

	(void)state;
	events_agg_add(agg, &a, "x", 0);
	events_agg_add(agg, &b, "x", 0);
	events_agg_add(agg, &b, "x", 0); /* b: one repeat pending */
	events_agg_add(agg, &a, "x", 0); /* a seen last: b is the least recently seen */
	events_agg_add(agg, &c, "x", 0); /* evicts b: its repeat is written first */
	assert_int_equal(w.n, 4);
	assert_int_equal(w.r[2].port, 2);
	assert_int_equal(w.r[2].count, 1);
	assert_false(w.r[2].first_of_key);
	assert_int_equal(w.r[3].port, 3);
	assert_true(w.r[3].first_of_key);
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.keys, 2);
	assert_int_equal(st.evicted, 1);
	/* b again is a new key; it evicts a, whose repeat is written first. */
	events_agg_add(agg, &b, "x", 0);
	assert_int_equal(w.n, 6);
	assert_int_equal(w.r[4].port, 1);
	assert_false(w.r[4].first_of_key);
	assert_int_equal(w.r[5].port, 2);
	assert_true(w.r[5].first_of_key);
	events_agg_free(agg);
}

static void test_no_event_is_lost_whatever_the_mix(void **state)
{
	struct written w = {};
	struct events_agg *agg = agg_new(8, &w);
	struct events_agg_stats st;
	uint64_t added = 0;
	unsigned seed = 1;

	(void)state;
	for (uint64_t i = 0; i < 100000; i++) {
		struct cw_event e;

		seed = seed * 1103515245u + 12345u;
		e = ev((uint16_t)(seed >> 16) % 20, (seed >> 8) % 3, i / 1000);
		events_agg_add(agg, &e, (seed >> 4) % 2 ? "a" : "b", (int64_t)i);
		added++;
		if (i % 997 == 0)
			events_agg_tick(agg, (i / 1000) * SEC);
	}
	events_agg_flush(agg);
	events_agg_get_stats(agg, &st);
	assert_int_equal(st.events, added);
	assert_int_equal(st.pending, 0);
	assert_int_equal(w.total, added);
	events_agg_free(agg);
}

static void test_bad_table_parameters_are_refused(void **state)
{
	struct events_agg *agg = NULL;
	struct written w = {};

	(void)state;
	assert_int_equal(events_agg_new(0, SEC, SEC, on_write, NULL, &w, &agg), -EINVAL);
	assert_int_equal(events_agg_new(4, 0, SEC, on_write, NULL, &w, &agg), -EINVAL);
	assert_int_equal(events_agg_new(4, 2 * SEC, SEC, on_write, NULL, &w, &agg), -EINVAL);
	assert_int_equal(events_agg_new(4, SEC, SEC, NULL, NULL, &w, &agg), -EINVAL);
	assert_null(agg);
}

/* ---- the agent's own log --------------------------------------------------------------------- */

struct reported {
	char share[EVENTS_SHARE_NAME_MAX];
	uint64_t refused;
	unsigned calls;
};

static void on_report(const char *share, uint64_t refused, void *userdata)
{
	struct reported *r = userdata;

	snprintf(r->share, sizeof(r->share), "%s", share);
	r->refused = refused;
	r->calls++;
}

static void test_a_scan_is_a_few_journal_lines_and_a_count(void **state)
{
	struct events_quota *q = NULL;
	struct reported rep = {};
	unsigned logged = 0;

	(void)state;
	assert_int_equal(events_quota_new(20, SEC, &q), 0);
	for (int i = 0; i < 10000; i++)
		logged += events_quota_take(q, "app-b", 5 * SEC + (uint64_t)i * 1000);
	assert_int_equal(logged, 20);
	/* Another app has its own lines. */
	assert_true(events_quota_take(q, "app-a", 5 * SEC));
	/* Nothing to report while the window lasts; then b's refused lines, once. */
	events_quota_report(q, 5 * SEC + SEC / 2, on_report, &rep);
	assert_int_equal(rep.calls, 0);
	events_quota_report(q, 6 * SEC, on_report, &rep);
	assert_int_equal(rep.calls, 1);
	assert_string_equal(rep.share, "app-b");
	assert_int_equal(rep.refused, 10000 - 20);
	events_quota_report(q, 7 * SEC, on_report, &rep);
	assert_int_equal(rep.calls, 1);
	/* A new window: b logs again. */
	assert_true(events_quota_take(q, "app-b", 7 * SEC));
	events_quota_free(q);
}

static void test_refused_lines_are_reported_before_lines_resume(void **state)
{
	struct events_quota *q = NULL;

	(void)state;
	assert_int_equal(events_quota_new(1, SEC, &q), 0);
	assert_true(events_quota_take(q, "app-b", 1 * SEC));
	assert_false(events_quota_take(q, "app-b", 1 * SEC));
	/* The window is over but its refused line is not reported yet: still refused. */
	assert_false(events_quota_take(q, "app-b", 3 * SEC));
	events_quota_free(q);
}

static void test_many_shares_never_overflow_the_quota_table(void **state)
{
	struct events_quota *q = NULL;
	char share[32];

	(void)state;
	assert_int_equal(events_quota_new(1, SEC, &q), 0);
	for (int i = 0; i < 10 * (int)EVENTS_JOURNAL_MAX_SHARES; i++) {
		snprintf(share, sizeof(share), "app-%d", i);
		assert_true(events_quota_take(q, share, SEC));
	}
	events_quota_free(q);
}

/* ---- shares of the log ----------------------------------------------------------------------- */

static int setup_dir(void **state)
{
	char *dir = strdup("/tmp/cw-events-test.XXXXXX");

	if (!dir || !mkdtemp(dir))
		return -1;
	*state = dir;
	return 0;
}

static int teardown_dir(void **state)
{
	char *dir = *state, cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	free(dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct json_object *record(const char *app, int i)
{
	struct json_object *o = json_object_new_object();
	char pad[200];

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	json_object_object_add(o, "app", json_object_new_string(app));
	json_object_object_add(o, "n", json_object_new_int(i));
	json_object_object_add(o, "pad", json_object_new_string(pad));
	return o;
}

static void append(struct events_log *log, const char *share, const char *app, int i)
{
	struct json_object *o = record(app, i);

	assert_int_equal(events_log_append(log, share, o), 0);
	json_object_put(o);
}

/* The bytes of the files of the events folder; *ret_has: whether one holds `needle`. */
static size_t dir_bytes(const char *state_dir, const char *needle, bool *ret_has)
{
	char path[512], buf[1 << 16];
	struct dirent *de;
	size_t total = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", state_dir, EVENTS_DIR_NAME);
	d = opendir(path);
	assert_non_null(d);
	if (ret_has)
		*ret_has = false;
	while ((de = readdir(d))) {
		FILE *f;
		size_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", state_dir, EVENTS_DIR_NAME, de->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		while ((n = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
			buf[n] = '\0';
			total += n;
			if (ret_has && needle && strstr(buf, needle))
				*ret_has = true;
		}
		fclose(f);
	}
	closedir(d);
	return total;
}

static bool file_exists(const char *state_dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s", state_dir, EVENTS_DIR_NAME, name);
	return access(path, F_OK) == 0;
}

#define SMALL_MAX (4 * 2 * 8192) /* 4 shares of two 8 KiB files */

static void test_one_app_s_flood_rotates_only_its_own_records(void **state)
{
	const char *dir = *state;
	struct events_log *log = NULL;
	bool has;

	assert_int_equal(events_log_open(dir, SMALL_MAX, 4, &log), 0);
	append(log, "app-a", "a", 1);
	for (int i = 0; i < 10000; i++)
		append(log, "app-b", "b", i);
	append(log, "guard", "", 1);
	assert_int_equal(events_log_flush(log), 0);
	assert_true(dir_bytes(dir, "\"app\":\"a\"", &has) <= SMALL_MAX);
	assert_true(has); /* a's record is still there */
	assert_true(file_exists(dir, "app-b.jsonl.1"));
	assert_true(file_exists(dir, "guard.jsonl"));
	events_log_free(log);
}

static void test_more_shares_than_the_max_remove_the_least_recently_written(void **state)
{
	const char *dir = *state;
	struct events_log *log = NULL;

	assert_int_equal(events_log_open(dir, SMALL_MAX, 4, &log), 0);
	append(log, "app-a", "a", 1);
	append(log, "app-b", "b", 1);
	append(log, "app-c", "c", 1);
	append(log, "app-d", "d", 1);
	append(log, "app-a", "a", 2); /* b is now the least recently written */
	append(log, "app-e", "e", 1);
	assert_int_equal(events_log_flush(log), 0);
	assert_false(file_exists(dir, "app-b.jsonl"));
	assert_true(file_exists(dir, "app-a.jsonl"));
	assert_true(file_exists(dir, "app-e.jsonl"));
	events_log_free(log);
}

static void test_the_bound_holds_across_a_restart(void **state)
{
	const char *dir = *state;
	struct events_log *log = NULL;

	assert_int_equal(events_log_open(dir, SMALL_MAX, 4, &log), 0);
	for (int s = 0; s < 4; s++) {
		char share[16];

		snprintf(share, sizeof(share), "app-s%d", s);
		for (int i = 0; i < 200; i++)
			append(log, share, share + 4, i);
	}
	events_log_free(log);
	/* A restarted agent counts the shares on disk: a fifth removes one of them. */
	assert_int_equal(events_log_open(dir, SMALL_MAX, 4, &log), 0);
	for (int i = 0; i < 200; i++)
		append(log, "app-new", "new", i);
	assert_int_equal(events_log_flush(log), 0);
	assert_true(dir_bytes(dir, NULL, NULL) <= SMALL_MAX);
	events_log_free(log);
}

static void test_share_names_and_files(void **state)
{
	char share[EVENTS_SHARE_NAME_MAX];
	bool old;

	(void)state;
	events_share_name("mediaplayer", CW_VERDICT_DENY_NO_RULE, share);
	assert_string_equal(share, "app-mediaplayer");
	events_share_name(NULL, CW_VERDICT_DENY_GUARD, share);
	assert_string_equal(share, "guard");
	events_share_name(NULL, CW_VERDICT_DENY_NO_RULE, share);
	assert_string_equal(share, "unknown");

	assert_int_equal(events_share_of_file("app-mediaplayer.jsonl", share, &old), 0);
	assert_string_equal(share, "app-mediaplayer");
	assert_false(old);
	assert_int_equal(events_share_of_file("guard.jsonl.1", share, &old), 0);
	assert_string_equal(share, "guard");
	assert_true(old);
	assert_int_equal(events_share_of_file("app-.jsonl", share, &old), -EINVAL);
	assert_int_equal(events_share_of_file("app-../x.jsonl", share, &old), -EINVAL);
	assert_int_equal(events_share_of_file("other.jsonl", share, &old), -EINVAL);
	assert_int_equal(events_share_of_file("app-a.json", share, &old), -EINVAL);
	assert_int_equal(events_share_of_file(".jsonl", share, &old), -EINVAL);
}

static void test_a_bad_share_or_bound_is_refused(void **state)
{
	const char *dir = *state;
	struct events_log *log = NULL;
	struct json_object *o = record("a", 1);

	assert_int_equal(events_log_open(dir, 4 * 4096 - 1, 2, &log), -EINVAL);
	assert_int_equal(events_log_open(dir, SMALL_MAX, 0, &log), -EINVAL);
	assert_int_equal(events_log_open(dir, SMALL_MAX, 4, &log), 0);
	assert_int_equal(events_log_append(log, "../escape", o), -EINVAL);
	assert_int_equal(events_log_append(log, "app-a/b", o), -EINVAL);
	json_object_put(o);
	events_log_free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_first_event_of_a_key_is_written_at_once),
		cmocka_unit_test(test_repeats_are_one_record_when_the_flush_is_due),
		cmocka_unit_test(test_the_flush_period_doubles_up_to_its_max),
		cmocka_unit_test(test_a_new_sender_is_the_record_s_last),
		cmocka_unit_test(test_keys_differ_by_app_destination_verdict_and_audit),
		cmocka_unit_test(
			test_a_full_table_evicts_the_least_recently_seen_key_and_its_repeats),
		cmocka_unit_test(test_no_event_is_lost_whatever_the_mix),
		cmocka_unit_test(test_bad_table_parameters_are_refused),
		cmocka_unit_test(test_a_scan_is_a_few_journal_lines_and_a_count),
		cmocka_unit_test(test_refused_lines_are_reported_before_lines_resume),
		cmocka_unit_test(test_many_shares_never_overflow_the_quota_table),
		cmocka_unit_test_setup_teardown(test_one_app_s_flood_rotates_only_its_own_records,
						setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(
			test_more_shares_than_the_max_remove_the_least_recently_written, setup_dir,
			teardown_dir),
		cmocka_unit_test_setup_teardown(test_the_bound_holds_across_a_restart, setup_dir,
						teardown_dir),
		cmocka_unit_test(test_share_names_and_files),
		cmocka_unit_test_setup_teardown(test_a_bad_share_or_bound_is_refused, setup_dir,
						teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
