// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: a flow record as journald fields (events_journal_fields(), userspace/lib/events.c):
 * what `journalctl CARWALL_APP=...` finds, the priority and MESSAGE_ID of each kind, and names
 * journald accepts.
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

#include "events.h"
#include "message_ids.h"

/* The value of field `name`, NULL when the record has none (or leaves it out: NULL value). */
static const char *field(const struct events_journal *j, const char *name)
{
	for (size_t i = 0; i < j->n_fields; i++)
		if (!strcmp(j->fields[i].name, name))
			return j->fields[i].value;
	return NULL;
}

static struct cw_event refused_v4(void)
{
	struct cw_event e = {
		.cgroup_id = 4242,
		.pid = 1234,
		.tid = 1235,
		.uid = 1001,
		.family = AF_INET,
		.proto = IPPROTO_TCP,
		.port = 443,
		.hook = CW_HOOK_CONNECT4,
		.verdict = CW_VERDICT_DENY_NO_RULE,
		.gen = 1,
	};

	inet_pton(AF_INET, "203.0.113.7", e.addr);
	memcpy(e.comm, "flowprobe", 9);
	return e;
}

static void test_refused_flow_has_its_fields_at_warning(void **state)
{
	struct cw_event e = refused_v4();
	struct events_names n = { .app = "navigation", .exe = "/usr/bin/navigation",
				  .realtime_ns = 1 };
	struct events_journal j;

	(void)state;
	events_journal_fields(&e, &n, &j);
	assert_int_equal(j.priority, LOG_LEVEL_WARNING);
	assert_string_equal(j.message_id, CW_MESSAGE_FLOW_REFUSED);
	assert_string_equal(field(&j, "CARWALL_EVENT"), "refused");
	assert_string_equal(field(&j, "CARWALL_APP"), "navigation");
	assert_string_equal(field(&j, "CARWALL_DEST"), "203.0.113.7");
	assert_string_equal(field(&j, "CARWALL_PORT"), "443");
	assert_string_equal(field(&j, "CARWALL_PROTO"), "tcp");
	assert_string_equal(field(&j, "CARWALL_FAMILY"), "ipv4");
	assert_string_equal(field(&j, "CARWALL_HOOK"), "connect4");
	assert_string_equal(field(&j, "CARWALL_VERDICT"), "default-deny");
	assert_string_equal(field(&j, "CARWALL_RULE"), "default deny");
	assert_string_equal(field(&j, "CARWALL_REASON"), "default deny: no rule of navigation allows it");
	assert_string_equal(field(&j, "CARWALL_COUNT"), "1");
	assert_string_equal(field(&j, "CARWALL_PID"), "1234");
	assert_string_equal(field(&j, "CARWALL_UID"), "1001");
	assert_string_equal(field(&j, "CARWALL_COMM"), "flowprobe");
	assert_string_equal(field(&j, "CARWALL_EXE"), "/usr/bin/navigation");
	assert_string_equal(field(&j, "CARWALL_CGROUP_ID"), "4242");
	assert_string_equal(field(&j, "CARWALL_GENERATION"), "1");
	/* One event: no first/last, no host name learned. */
	assert_null(field(&j, "CARWALL_FIRST"));
	assert_null(field(&j, "CARWALL_LAST"));
	assert_null(field(&j, "CARWALL_HOST"));
}

static void test_audited_flow_is_notice_with_its_own_message_id(void **state)
{
	struct cw_event e = refused_v4();
	struct events_names n = { .app = "navigation" };
	struct events_journal j;

	(void)state;
	e.flags |= CW_EVENT_F_AUDIT;
	events_journal_fields(&e, &n, &j);
	assert_int_equal(j.priority, LOG_LEVEL_NOTICE);
	assert_string_equal(j.message_id, CW_MESSAGE_FLOW_AUDITED);
	assert_string_equal(field(&j, "CARWALL_EVENT"), "audit");
	assert_string_not_equal(CW_MESSAGE_FLOW_AUDITED, CW_MESSAGE_FLOW_REFUSED);
}

static void test_repeats_carry_count_first_last_and_host(void **state)
{
	struct cw_event e = refused_v4();
	/* 2026-01-02T03:04:05Z and 10 s later. */
	struct events_names n = { .app = "navigation",
				  .realtime_ns = 1767323045000000000ll,
				  .last_ns = 1767323055000000000ll,
				  .count = 17,
				  .host = "tracker.example.com" };
	struct events_journal j;

	(void)state;
	e.family = AF_INET6;
	e.hook = CW_HOOK_SENDMSG6;
	e.proto = IPPROTO_UDP;
	inet_pton(AF_INET6, "2001:db8:bad::7", e.addr);
	events_journal_fields(&e, &n, &j);
	assert_string_equal(field(&j, "CARWALL_DEST"), "2001:db8:bad::7");
	assert_string_equal(field(&j, "CARWALL_FAMILY"), "ipv6");
	assert_string_equal(field(&j, "CARWALL_PROTO"), "udp");
	assert_string_equal(field(&j, "CARWALL_HOOK"), "sendmsg6");
	assert_string_equal(field(&j, "CARWALL_COUNT"), "17");
	assert_string_equal(field(&j, "CARWALL_FIRST"), "2026-01-02T03:04:05.000000Z");
	assert_string_equal(field(&j, "CARWALL_LAST"), "2026-01-02T03:04:15.000000Z");
	assert_string_equal(field(&j, "CARWALL_HOST"), "tracker.example.com");
}

/* Not an app of the policy (below the guard): no CARWALL_APP, the verdict says why; the exe of
 * a sender that is gone is left out, never made up. */
static void test_guard_flow_has_no_app_field(void **state)
{
	struct cw_event e = refused_v4();
	struct events_names n = { 0 };
	struct events_journal j;

	(void)state;
	e.verdict = CW_VERDICT_DENY_GUARD;
	e.proto = 200; /* a protocol without a name: its number */
	events_journal_fields(&e, &n, &j);
	assert_null(field(&j, "CARWALL_APP"));
	assert_null(field(&j, "CARWALL_EXE"));
	assert_string_equal(field(&j, "CARWALL_VERDICT"), "deny-unknown-app");
	assert_string_equal(field(&j, "CARWALL_PROTO"), "200");
	assert_int_equal(j.priority, LOG_LEVEL_WARNING);
}

/* journald drops a field whose name is not [A-Z0-9_] (not starting with '_'), and a MESSAGE_ID
 * that is not 32 hex digits is no id. */
static void test_field_names_and_message_ids_are_journald_s(void **state)
{
	const char *const ids[] = { CW_MESSAGE_FLOW_REFUSED,	 CW_MESSAGE_FLOW_AUDITED,
				    CW_MESSAGE_FLOWS_NOT_LOGGED, CW_MESSAGE_READY,
				    CW_MESSAGE_POLICY_IN_FORCE,	 CW_MESSAGE_POLICY_REFUSED,
				    CW_MESSAGE_FAIL_CLOSED,	 CW_MESSAGE_STOPPING };
	struct cw_event e = refused_v4();
	struct events_names n = { .app = "a", .exe = "/x", .host = "h", .count = 2 };
	struct events_journal j;

	(void)state;
	events_journal_fields(&e, &n, &j);
	assert_true(j.n_fields <= EVENTS_JOURNAL_FIELDS);
	for (size_t i = 0; i < j.n_fields; i++) {
		const char *name = j.fields[i].name;

		assert_true(name[0] != '_');
		assert_true(strlen(name) <= 64);
		for (const char *p = name; *p; p++)
			assert_true((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_');
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(name, j.fields[k].name);
	}
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_int_equal(strlen(ids[i]), 32);
		assert_int_equal(strspn(ids[i], "0123456789abcdef"), 32);
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(ids[i], ids[k]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused_flow_has_its_fields_at_warning),
		cmocka_unit_test(test_audited_flow_is_notice_with_its_own_message_id),
		cmocka_unit_test(test_repeats_carry_count_first_last_and_host),
		cmocka_unit_test(test_guard_flow_has_no_app_field),
		cmocka_unit_test(test_field_names_and_message_ids_are_journald_s),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
