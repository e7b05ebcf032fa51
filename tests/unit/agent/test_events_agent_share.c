// SPDX-License-Identifier: GPL-2.0-only
/*
 * The agent's own share of the events log ("agent": its lifecycle records, what a residency
 * report reads to say which policy was in force when) is never the share removed to make room
 * for an app's, even when it is the least recently written one, in one run or after a restart;
 * `carwall events` and the share's name rules know it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "events_log.h"

static int setup_dir(void **state)
{
	char *dir = strdup("/tmp/cw-events-agent-test.XXXXXX");

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

static void append(struct events_log *log, const char *share, const char *event)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(event));
	assert_int_equal(events_log_append(log, share, o), 0);
	json_object_put(o);
}

static bool file_exists(const char *state_dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s", state_dir, EVENTS_DIR_NAME, name);
	return access(path, F_OK) == 0;
}

#define SMALL_MAX (4 * 2 * 8192) /* 4 shares of two 8 KiB files */

static void test_agent_share_is_never_removed_for_an_app_s(void **state)
{
	const char *dir = *state;
	struct events_log *log = NULL;
	char share[16];

	assert_int_equal(events_log_open(dir, SMALL_MAX, 4, &log), 0);
	append(log, EVENTS_AGENT_SHARE, EVENTS_REC_POLICY); /* written first, never again */
	for (int i = 0; i < 10; i++) {
		snprintf(share, sizeof(share), "app-a%d", i);
		append(log, share, "refused");
	}
	assert_int_equal(events_log_flush(log), 0);
	assert_true(file_exists(dir, "agent.jsonl"));
	assert_true(file_exists(dir, "app-a9.jsonl"));
	assert_false(file_exists(dir, "app-a0.jsonl")); /* the apps' shares still make room */
	events_log_free(log);

	/* A restarted agent finds it on disk: still never the one removed. */
	assert_int_equal(events_log_open(dir, SMALL_MAX, 4, &log), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(share, sizeof(share), "app-b%d", i);
		append(log, share, "refused");
	}
	assert_int_equal(events_log_flush(log), 0);
	assert_true(file_exists(dir, "agent.jsonl"));
	events_log_free(log);
}

static void test_agent_share_names(void **state)
{
	char share[EVENTS_SHARE_NAME_MAX];
	bool old;

	(void)state;
	assert_true(events_share_name_valid(EVENTS_AGENT_SHARE));
	assert_int_equal(events_share_of_file("agent.jsonl.1", share, &old), 0);
	assert_string_equal(share, "agent");
	assert_true(old);
	/* No app can be named into it: an app's share is "app-<id>". */
	events_share_name("agent", 0, share);
	assert_string_equal(share, "app-agent");
	assert_true(events_record_is_flow("refused"));
	assert_true(events_record_is_flow("audit"));
	assert_true(events_record_is_flow("allowed"));
	assert_false(events_record_is_flow(EVENTS_REC_POLICY));
	assert_false(events_record_is_flow(EVENTS_REC_AGENT_START));
	assert_false(events_record_is_flow(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_share_is_never_removed_for_an_app_s,
						setup_dir, teardown_dir),
		cmocka_unit_test(test_agent_share_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
