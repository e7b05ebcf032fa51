// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the flow inventory store (userspace/lib/inventory.c): aggregation, boots, the
 * bound and the ageing order, the file format and its parser, and crash consistency (a forked
 * child is ended at each step of a save, as the bundle state's test does).
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "inventory.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct inventory *, inventory_free)

#define BOOT_A "11111111-1111-1111-1111-111111111111"
#define BOOT_B "22222222-2222-2222-2222-222222222222"

static struct inventory_record flow(const char *app, const char *host, const char *addr,
				    uint16_t port, uint8_t verdict, int64_t t, uint64_t count)
{
	struct inventory_record r = {.rule = INVENTORY_RULE_NONE};

	snprintf(r.app, sizeof(r.app), "%s", app);
	snprintf(r.host, sizeof(r.host), "%s", host);
	if (inet_pton(AF_INET, addr, r.addr) == 1)
		r.family = AF_INET;
	else
		assert_int_equal(inet_pton(AF_INET6, addr, r.addr), 1), r.family = AF_INET6;
	r.port = port;
	r.proto = IPPROTO_TCP;
	r.verdict = verdict;
	if (verdict == INVENTORY_ALLOWED)
		r.rule = 0;
	r.last_s = t;
	r.count = count;
	snprintf(r.boot_id, sizeof(r.boot_id), "%s", BOOT_A);
	return r;
}

static const struct inventory_record *find(const struct inventory *inv, const char *app,
					   const char *addr, uint16_t port)
{
	uint8_t a[16] = {};

	if (inet_pton(AF_INET, addr, a) != 1)
		assert_int_equal(inet_pton(AF_INET6, addr, a), 1);
	for (size_t i = 0; i < inventory_count(inv); i++) {
		const struct inventory_record *r = inventory_get(inv, i);

		if (!strcmp(r->app, app) && !memcmp(r->addr, a, 16) && r->port == port)
			return r;
	}
	return NULL;
}

static char *make_temp_dir(void)
{
	char *d = strdup("/tmp/carwall-inventory-test.XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void remove_dir(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, INVENTORY_FILE);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, INVENTORY_TMP_FILE);
	unlink(path);
	rmdir(dir);
}

static void test_add_merges_one_key_counts_and_times(void **state)
{
	_cleanup_(inventory_freep) struct inventory *inv = NULL;
	struct inventory_record r = flow("mediaplayer", "api.music.example", "198.51.100.20", 443,
					 INVENTORY_ALLOWED, 1000, 1);
	const struct inventory_record *got;

	(void)state;
	assert_int_equal(inventory_new(64, &inv), 0);
	assert_int_equal(inventory_add(inv, &r), 0);
	r.last_s = 1010;
	r.count = 3;
	assert_int_equal(inventory_add(inv, &r), 0);
	assert_int_equal(inventory_count(inv), 1);
	got = inventory_get(inv, 0);
	assert_int_equal(got->count, 4);
	assert_int_equal(got->first_s, 1000);
	assert_int_equal(got->last_s, 1010);
	assert_int_equal(got->boots, 1);
	/* Another port, verdict or rule is another record. */
	r.port = 8443;
	assert_int_equal(inventory_add(inv, &r), 0);
	r.port = 443;
	r.rule = 5;
	assert_int_equal(inventory_add(inv, &r), 0);
	r.rule = INVENTORY_RULE_NONE;
	r.verdict = INVENTORY_AUDITED;
	assert_int_equal(inventory_add(inv, &r), 0);
	assert_int_equal(inventory_count(inv), 4);
}

static void test_boots_count_each_new_boot_id_once(void **state)
{
	_cleanup_(inventory_freep) struct inventory *inv = NULL;
	struct inventory_record r =
	    flow("mediaplayer", "", "198.51.100.20", 443, INVENTORY_ALLOWED, 1000, 1);

	(void)state;
	assert_int_equal(inventory_new(64, &inv), 0);
	assert_int_equal(inventory_add(inv, &r), 0);
	assert_int_equal(inventory_add(inv, &r), 0);
	snprintf(r.boot_id, sizeof(r.boot_id), "%s", BOOT_B);
	assert_int_equal(inventory_add(inv, &r), 0);
	assert_int_equal(inventory_add(inv, &r), 0);
	assert_int_equal(inventory_get(inv, 0)->boots, 2);
	assert_int_equal(inventory_get(inv, 0)->count, 4);
}

static void test_add_refuses_records_the_file_cannot_hold(void **state)
{
	_cleanup_(inventory_freep) struct inventory *inv = NULL;
	struct inventory_record r;

	(void)state;
	assert_int_equal(inventory_new(64, &inv), 0);
	r = flow("bad id", "", "198.51.100.20", 443, INVENTORY_ALLOWED, 1, 1);
	assert_int_equal(inventory_add(inv, &r), -EINVAL);
	r = flow("app", "Not.Canonical.Example", "198.51.100.20", 443, INVENTORY_ALLOWED, 1, 1);
	assert_int_equal(inventory_add(inv, &r), -EINVAL);
	r = flow("app", "", "198.51.100.20", 443, INVENTORY_ALLOWED, 1, 1);
	r.proto = 1; /* ICMP */
	assert_int_equal(inventory_add(inv, &r), -EINVAL);
	r = flow("app", "*.maps.example", "198.51.100.20", 443, INVENTORY_ALLOWED, 1, 1);
	assert_int_equal(inventory_add(inv, &r), 0); /* a wildcard of the policy */
	assert_int_equal(inventory_count(inv), 1);
}

/*
 * A flood of one-time audited destinations into an inventory of 16: it never holds more than
 * 16; the repeated allowed flows stay; the audited one-time ones go first; an app whose only
 * record is old keeps it.
 */
static void test_flood_stays_in_bound_and_ages_one_time_refusals_first(void **state)
{
	_cleanup_(inventory_freep) struct inventory *inv = NULL;
	struct inventory_stats st;
	struct inventory_record r;
	char addr[32];

	(void)state;
	assert_int_equal(inventory_new(16, &inv), 0);
	r = flow("quiet", "", "198.51.100.99", 514, INVENTORY_AUDITED, 1, 1);
	assert_int_equal(inventory_add(inv, &r), 0);
	for (int i = 0; i < 4; i++) {
		r = flow("mediaplayer", "api.music.example", "198.51.100.20", (uint16_t)(443 + i),
			 INVENTORY_ALLOWED, 100 + i, 5);
		assert_int_equal(inventory_add(inv, &r), 0);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(addr, sizeof(addr), "203.0.113.%d", i % 250);
		r = flow("mediaplayer", "", addr, (uint16_t)(1000 + i), INVENTORY_AUDITED, 200 + i,
			 1);
		assert_int_equal(inventory_add(inv, &r), 0);
		assert_true(inventory_count(inv) <= 16);
	}
	for (int i = 0; i < 4; i++)
		assert_non_null(find(inv, "mediaplayer", "198.51.100.20", (uint16_t)(443 + i)));
	assert_non_null(find(inv, "quiet", "198.51.100.99", 514));
	/* The newest of the flood is there (the oldest went first). */
	assert_non_null(find(inv, "mediaplayer", "203.0.113.249", 1999));
	assert_null(find(inv, "mediaplayer", "203.0.113.0", 1000));
	inventory_get_stats(inv, &st);
	assert_true(st.evicted >= 1000 - 16);
}

static void test_set_max_ages_down_to_the_new_bound(void **state)
{
	_cleanup_(inventory_freep) struct inventory *inv = NULL;
	struct inventory_record r;

	(void)state;
	assert_int_equal(inventory_new(64, &inv), 0);
	for (int i = 0; i < 64; i++) {
		r = flow("app", "", "198.51.100.20", (uint16_t)(1 + i), INVENTORY_REFUSED, i, 1);
		assert_int_equal(inventory_add(inv, &r), 0);
	}
	assert_int_equal(inventory_set_max(inv, 16), 0);
	assert_true(inventory_count(inv) <= 16);
	assert_non_null(find(inv, "app", "198.51.100.20", 64));
	assert_int_equal(inventory_set_max(inv, 15), -EINVAL);
}

static void test_format_then_parse_round_trips(void **state)
{
	_cleanup_(inventory_freep) struct inventory *inv = NULL, *back = NULL;
	_cleanup_free_ char *data = NULL;
	struct inventory_record r;
	char reason[256] = "";
	size_t size;

	(void)state;
	assert_int_equal(inventory_new(64, &inv), 0);
	r = flow("mediaplayer", "api.music.example", "198.51.100.20", 443, INVENTORY_ALLOWED, 7, 9);
	r.rule = 3;
	assert_int_equal(inventory_add(inv, &r), 0);
	r = flow("navigation", "", "2001:db8:bad::7", 8443, INVENTORY_REFUSED, 8, 1);
	r.proto = IPPROTO_UDP;
	assert_int_equal(inventory_add(inv, &r), 0);
	assert_int_equal(inventory_format(inv, &data, &size), 0);
	if (inventory_parse(data, size, 64, &back, reason, sizeof(reason)) < 0)
		fail_msg("does not parse back: %s", reason);
	assert_int_equal(inventory_count(back), 2);
	for (size_t i = 0; i < 2; i++)
		assert_memory_equal(inventory_get(inv, i), inventory_get(back, i),
				    sizeof(struct inventory_record));
	/* Bounded: more records than the bound is refused. */
	inventory_free(back);
	back = NULL;
	assert_int_equal(inventory_parse(data, size, INVENTORY_MIN_RECORDS, &back, NULL, 0), 0);
	assert_true(size <= inventory_max_file_bytes(2));
}

static void expect_bad(const char *text)
{
	struct inventory *inv = NULL;

	if (inventory_parse(text, strlen(text), 16, &inv, NULL, 0) != -EINVAL)
		fail_msg("accepted: %s", text);
	assert_null(inv);
}

#define HEAD "{\"format\":\"carwall-inventory\",\"version\":1,\"records\":["
#define REC(extra)                                                                                 \
	"{\"app\":\"a\",\"address\":\"198.51.100.20\",\"port\":443,\"proto\":\"tcp\","             \
	"\"verdict\":\"allowed\",\"first\":1,\"last\":2,\"count\":1,\"boots\":1,"                  \
	"\"boot_id\":\"x\"" extra "}"

static void test_parse_rejects_bad_files(void **state)
{
	(void)state;
	{
		struct inventory *inv = NULL;
		const char *good = HEAD REC("") "]}";

		assert_int_equal(inventory_parse(good, strlen(good), 16, &inv, NULL, 0), 0);
		inventory_free(inv);
	}
	expect_bad("");
	expect_bad("{");
	expect_bad(HEAD REC("") "]} trailing");
	expect_bad("{\"format\":\"other\",\"version\":1,\"records\":[]}");
	expect_bad("{\"format\":\"carwall-inventory\",\"version\":2,\"records\":[]}");
	expect_bad(HEAD REC("") "," REC("") "]}"); /* a key twice */
	expect_bad(HEAD REC(",\"host\":\"UPPER.example\"") "]}");
	expect_bad(HEAD REC(",\"rule\":-1") "]}");
	expect_bad(HEAD
		   "{\"app\":\"a\",\"address\":\"198.51.100.300\",\"port\":443,\"proto\":\"tcp\","
		   "\"verdict\":\"allowed\",\"first\":1,\"last\":2,\"count\":1,\"boots\":1,"
		   "\"boot_id\":\"x\"}]}");
	expect_bad(HEAD
		   "{\"app\":\"a\",\"address\":\"198.51.100.3\",\"port\":65536,\"proto\":\"tcp\","
		   "\"verdict\":\"allowed\",\"first\":1,\"last\":2,\"count\":1,\"boots\":1,"
		   "\"boot_id\":\"x\"}]}");
	expect_bad(HEAD "{\"app\":\"a\",\"address\":\"198.51.100.3\",\"port\":1,\"proto\":\"icmp\","
			"\"verdict\":\"allowed\",\"first\":1,\"last\":2,\"count\":1,\"boots\":1,"
			"\"boot_id\":\"x\"}]}");
	expect_bad(HEAD "{\"app\":\"a\",\"address\":\"198.51.100.3\",\"port\":1,\"proto\":\"tcp\","
			"\"verdict\":\"allowed\",\"first\":3,\"last\":2,\"count\":1,\"boots\":1,"
			"\"boot_id\":\"x\"}]}"); /* last before first */
	expect_bad(HEAD "{\"app\":\"a\",\"address\":\"198.51.100.3\",\"port\":1,\"proto\":\"tcp\","
			"\"verdict\":\"allowed\",\"first\":1,\"last\":2,\"count\":0,\"boots\":1,"
			"\"boot_id\":\"x\"}]}");
	{
		/* NUL inside */
		char text[] = HEAD REC("") "]}";
		struct inventory *inv = NULL;

		text[20] = '\0';
		assert_int_equal(inventory_parse(text, sizeof(text) - 1, 16, &inv, NULL, 0),
				 -EINVAL);
	}
}

static void test_parse_refuses_more_records_than_the_bound(void **state)
{
	char text[16384];
	size_t len;
	struct inventory *inv = NULL;

	(void)state;
	len = (size_t)snprintf(text, sizeof(text), HEAD);
	for (int i = 0; i < 17; i++)
		len +=
		    (size_t)snprintf(text + len, sizeof(text) - len,
				     "%s{\"app\":\"a\",\"address\":\"198.51.100.20\",\"port\":%d,"
				     "\"proto\":\"tcp\",\"verdict\":\"allowed\",\"first\":1,"
				     "\"last\":2,\"count\":1,\"boots\":1,\"boot_id\":\"x\"}",
				     i ? "," : "", i + 1);
	len += (size_t)snprintf(text + len, sizeof(text) - len, "]}");
	assert_int_equal(inventory_parse(text, len, 16, &inv, NULL, 0), -E2BIG);
	assert_int_equal(inventory_parse(text, len, 17, &inv, NULL, 0), 0);
	inventory_free(inv);
}

static enum fileio_step crash_at;

static void crash_hook(enum fileio_step step)
{
	if (step == crash_at)
		_exit(77);
}

/*
 * The saved inventory has one record; a save of three is interrupted after each step by ending
 * the process there. What is read back is the old inventory before the rename and the new one
 * after it, never an error; a save afterwards works and leaves no temporary file.
 */
static void test_save_interrupted_at_each_step_leaves_old_or_new(void **state)
{
	_cleanup_free_ char *dir = make_temp_dir();
	_cleanup_(inventory_freep) struct inventory *old = NULL, *new = NULL;
	struct inventory_record r;
	char tmp[4096];

	(void)state;
	snprintf(tmp, sizeof(tmp), "%s/%s", dir, INVENTORY_TMP_FILE);
	assert_int_equal(inventory_new(64, &old), 0);
	r = flow("mediaplayer", "", "198.51.100.20", 443, INVENTORY_ALLOWED, 1, 1);
	assert_int_equal(inventory_add(old, &r), 0);
	assert_int_equal(inventory_new(64, &new), 0);
	for (int i = 0; i < 3; i++) {
		r = flow("mediaplayer", "api.music.example", "198.51.100.20", (uint16_t)(443 + i),
			 INVENTORY_ALLOWED, 1, 2);
		assert_int_equal(inventory_add(new, &r), 0);
	}

	for (int step = 0; step < FILEIO_STEP_COUNT; step++) {
		struct inventory *back = NULL;
		char reason[256] = "";
		int status = 0;
		pid_t pid;

		assert_int_equal(inventory_save(dir, old), 0);
		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			crash_at = (enum fileio_step)step;
			inventory_set_fault_hook(crash_hook);
			inventory_save(dir, new);
			_exit(0); /* the hook did not run: a failure, seen below */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 77);

		if (inventory_load(dir, 64, &back, reason, sizeof(reason)) < 0)
			fail_msg("step %d: the inventory does not load: %s", step, reason);
		assert_int_equal(inventory_count(back), step < FILEIO_STEP_RENAMED ? 1 : 3);
		inventory_free(back);
	}
	assert_int_equal(inventory_save(dir, new), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	remove_dir(dir);
}

static void test_load_missing_file_is_enoent(void **state)
{
	_cleanup_free_ char *dir = make_temp_dir();
	struct inventory *inv = NULL;

	(void)state;
	assert_int_equal(inventory_load(dir, 64, &inv, NULL, 0), -ENOENT);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_merges_one_key_counts_and_times),
	    cmocka_unit_test(test_boots_count_each_new_boot_id_once),
	    cmocka_unit_test(test_add_refuses_records_the_file_cannot_hold),
	    cmocka_unit_test(test_flood_stays_in_bound_and_ages_one_time_refusals_first),
	    cmocka_unit_test(test_set_max_ages_down_to_the_new_bound),
	    cmocka_unit_test(test_format_then_parse_round_trips),
	    cmocka_unit_test(test_parse_rejects_bad_files),
	    cmocka_unit_test(test_parse_refuses_more_records_than_the_bound),
	    cmocka_unit_test(test_save_interrupted_at_each_step_leaves_old_or_new),
	    cmocka_unit_test(test_load_missing_file_is_enoent),
	};

	return cmocka_run_group_tests_name("inventory", tests, NULL, NULL);
}
