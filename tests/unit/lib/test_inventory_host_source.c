// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: where an inventory record's host came from (lib/inventory.h "host_source"): the
 * policy's name or an answer the app observed. A file without the member (written before it),
 * and a record added without a source, read as the policy's; a source without a host, an unknown
 * source, or an observed wildcard are refused; a record keeps its last flow's source; the file
 * round-trips.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inventory.h"

#define HEAD "{\"format\":\"carwall-inventory\",\"version\":1,\"records\":["
#define REC(extra)                                                                                 \
	"{\"app\":\"a\",\"address\":\"198.51.100.20\",\"port\":443,\"proto\":\"tcp\","             \
	"\"verdict\":\"allowed\",\"first\":1,\"last\":2,\"count\":1,\"boots\":1,"                  \
	"\"boot_id\":\"x\"" extra "}"

static struct inventory *parse_ok(const char *text)
{
	struct inventory *inv = NULL;
	char reason[256] = "";

	if (inventory_parse(text, strlen(text), 16, &inv, reason, sizeof(reason)) < 0)
		fail_msg("refused: %s: %s", reason, text);
	return inv;
}

static void parse_bad(const char *text)
{
	struct inventory *inv = NULL;

	assert_int_equal(inventory_parse(text, strlen(text), 16, &inv, NULL, 0), -EINVAL);
	assert_null(inv);
}

static void test_host_source_is_read_and_checked(void **state)
{
	struct inventory *inv;

	(void)state;
	inv =
	    parse_ok(HEAD REC(",\"host\":\"api.music.example\",\"host_source\":\"observed\"") "]}");
	assert_int_equal(inventory_get(inv, 0)->host_source, INVENTORY_HOST_OBSERVED);
	inventory_free(inv);
	/* Written before the member existed: a host was the policy's. */
	inv = parse_ok(HEAD REC(",\"host\":\"*.music.example\"") "]}");
	assert_int_equal(inventory_get(inv, 0)->host_source, INVENTORY_HOST_POLICY);
	inventory_free(inv);
	inv = parse_ok(HEAD REC("") "]}");
	assert_int_equal(inventory_get(inv, 0)->host_source, INVENTORY_HOST_NONE);
	inventory_free(inv);

	parse_bad(HEAD REC(",\"host_source\":\"observed\"") "]}"); /* no host */
	parse_bad(HEAD REC(",\"host\":\"a.example\",\"host_source\":\"guessed\"") "]}");
	parse_bad(HEAD REC(",\"host\":\"a.example\",\"host_source\":1") "]}");
	/* An answer's question is a name, never a wildcard. */
	parse_bad(HEAD REC(",\"host\":\"*.music.example\",\"host_source\":\"observed\"") "]}");
}

static void test_a_record_keeps_its_last_flows_source_and_round_trips(void **state)
{
	struct inventory_record r = {.rule = 0,
				     .family = AF_INET,
				     .port = 443,
				     .proto = IPPROTO_TCP,
				     .verdict = INVENTORY_ALLOWED,
				     .last_s = 10,
				     .count = 1};
	struct inventory *inv = NULL, *again = NULL;
	char *text = NULL;
	size_t len = 0;

	(void)state;
	snprintf(r.app, sizeof(r.app), "a");
	snprintf(r.host, sizeof(r.host), "api.music.example");
	snprintf(r.boot_id, sizeof(r.boot_id), "x");
	r.addr[0] = 198;
	assert_int_equal(inventory_new(16, &inv), 0);
	r.host_source = INVENTORY_HOST_NONE; /* a host without a source: the policy's */
	assert_int_equal(inventory_add(inv, &r), 0);
	assert_int_equal(inventory_get(inv, 0)->host_source, INVENTORY_HOST_POLICY);
	r.host_source = INVENTORY_HOST_OBSERVED;
	assert_int_equal(inventory_add(inv, &r), 0);
	r.host_source = INVENTORY_HOST_POLICY;
	assert_int_equal(inventory_add(inv, &r), 0);
	assert_int_equal(inventory_count(inv), 1); /* not part of the key */
	assert_int_equal(inventory_get(inv, 0)->host_source, INVENTORY_HOST_POLICY);
	assert_int_equal(inventory_get(inv, 0)->count, 3);
	r.host[0] = '\0'; /* a source without a host */
	assert_int_equal(inventory_add(inv, &r), -EINVAL);

	assert_int_equal(inventory_format(inv, &text, &len), 0);
	assert_non_null(strstr(text, "\"host_source\":\"policy\""));
	assert_int_equal(inventory_parse(text, len, 16, &again, NULL, 0), 0);
	assert_memory_equal(inventory_get(again, 0), inventory_get(inv, 0),
			    sizeof(struct inventory_record));
	free(text);
	inventory_free(inv);
	inventory_free(again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_host_source_is_read_and_checked),
	    cmocka_unit_test(test_a_record_keeps_its_last_flows_source_and_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
