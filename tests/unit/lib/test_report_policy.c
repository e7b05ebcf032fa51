// SPDX-License-Identifier: GPL-2.0-only
/*
 * The residency report wired to the policy and the flow inventory (lib/report.c): the home
 * region from the policy's `home-region:` (a country, a `regions:` group, the built-in `eu`),
 * a rule's `cross-border:` justification by its global rule index, and allowed flows read from
 * the inventory, counted once (the events log's refused flows stay the log's; an "allowed"
 * record in the log is not the agent's and is skipped).
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
#include <unistd.h>

#include <cmocka.h>

#include "inventory.h"
#include "policy.h"
#include "report.h"

#define NS 1000000000LL
/* 2026-11-30T10:00:00Z */
#define T0_S 1796032800LL

static const char policy_yaml[] =
	"version: 1\n"
	"home-region: nordics\n"
	"regions:\n"
	"  nordics: [xa, XC]\n"
	"apps:\n"
	"  navigation:\n"
	"    allow:\n"
	"      - {to: 198.51.100.80, ports: [8443], proto: tcp, region: xa}\n"
	"  mp:\n"
	"    allow:\n"
	"      - {to: 198.51.100.20, ports: [443], proto: tcp, region: xc}\n"
	"      - to: 203.0.113.7\n"
	"        ports: [443]\n"
	"        proto: tcp\n"
	"        region: xb\n"
	"        cross-border: \"crash reports to the vendor's collector\"\n";

static struct policy *parse(const char *yaml)
{
	struct policy *p = NULL;
	struct policy_error e = {};

	if (policy_parse_buffer("p.yaml", yaml, strlen(yaml), &p, &e) < 0)
		fail_msg("%s:%u:%u: %s", "p.yaml", e.loc.line, e.loc.column, e.reason);
	return p;
}

static void test_report_home_region_from_policy_group(void **state)
{
	struct policy *p = parse(policy_yaml);
	struct report_region home;

	(void)state;
	assert_int_equal(report_region_from_policy(p, &home), 0);
	assert_int_equal(home.n, 2);
	assert_string_equal(home.countries[0], "XA"); /* upper case, as the report writes them */
	assert_string_equal(home.countries[1], "XC");
	assert_non_null(strstr(home.source, "nordics"));
	assert_true(report_region_has(&home, "XC"));
	assert_false(report_region_has(&home, "XB"));
	policy_free(p);
}

static void test_report_home_region_from_policy_eu_and_country(void **state)
{
	struct policy *p = parse("version: 1\nhome-region: eu\napps: {}\n");
	struct report_region home;

	(void)state;
	assert_int_equal(report_region_from_policy(p, &home), 0);
	assert_int_equal(home.n, 27);
	assert_true(report_region_has(&home, "DE"));
	assert_true(report_region_has(&home, "FR"));
	assert_false(report_region_has(&home, "GB"));
	policy_free(p);

	p = parse("version: 1\nhome-region: CN\napps: {}\n");
	assert_int_equal(report_region_from_policy(p, &home), 0);
	assert_int_equal(home.n, 1);
	assert_string_equal(home.countries[0], "CN");
	policy_free(p);

	p = parse("version: 1\napps: {}\n");
	assert_int_equal(report_region_from_policy(p, &home), -ENODATA);
	policy_free(p);
}

static void test_report_rule_justification_by_global_index(void **state)
{
	struct policy *p = parse(policy_yaml);

	(void)state;
	/* Rules in file order across apps: navigation's is 0, mp's are 1 and 2. */
	assert_null(report_rule_justification(p, 0));
	assert_null(report_rule_justification(p, 1));
	assert_string_equal(report_rule_justification(p, 2),
			    "crash reports to the vendor's collector");
	assert_null(report_rule_justification(p, 3));
	assert_null(report_rule_justification(p, -1));
	assert_null(report_rule_justification(NULL, 2));
	policy_free(p);
}

static void add_record(struct inventory *inv, const char *app, const char *host, const char *addr,
		       uint16_t port, uint8_t verdict, int64_t rule, uint64_t count, int64_t at)
{
	struct inventory_record rec = { .family = AF_INET,
					.port = port,
					.proto = IPPROTO_TCP,
					.verdict = verdict,
					.rule = rule,
					.last_s = at,
					.count = count };

	snprintf(rec.app, sizeof(rec.app), "%s", app);
	snprintf(rec.host, sizeof(rec.host), "%s", host);
	snprintf(rec.boot_id, sizeof(rec.boot_id), "00000000-0000-0000-0000-000000000001");
	assert_int_equal(inet_pton(AF_INET, addr, rec.addr), 1);
	assert_int_equal(inventory_add(inv, &rec), 0);
}

static int stub_lookup(const char *addr, char ret[3], void *userdata)
{
	(void)userdata;
	if (!strncmp(addr, "198.51.100.", 11))
		memcpy(ret, "XA", 3);
	else if (!strncmp(addr, "203.0.113.", 10))
		memcpy(ret, "XB", 3);
	else
		ret[0] = '\0';
	return 0;
}

static const struct report_flow *find(const struct report_input *in, const char *dst,
				      enum report_verdict v)
{
	const struct report_flow *found = NULL;

	for (size_t i = 0; i < in->n_flows; i++)
		if (!strcmp(in->flows[i].dst, dst) && in->flows[i].verdict == v) {
			assert_null(found); /* one flow per destination and verdict here */
			found = &in->flows[i];
		}
	return found;
}

/*
 * The inventory's allowed flows, with their counts, times, host and rule; its refused flow is
 * the log's too and is counted once, from the log; a forged "allowed" record in the log adds
 * nothing.
 */
static void test_report_allowed_flows_from_inventory_counted_once(void **state)
{
	const char log[] =
		"{\"time\":\"2026-11-30T10:05:00Z\",\"event\":\"refused\",\"app\":\"mp\","
		"\"dst\":\"192.0.2.9\",\"port\":443,\"proto\":\"tcp\",\"count\":2}\n"
		/* refused by a consent switch: it names the cross-border rule it did not get through */
		"{\"time\":\"2026-11-30T10:06:00Z\",\"event\":\"refused\",\"app\":\"mp\","
		"\"dst\":\"203.0.113.7\",\"port\":443,\"proto\":\"tcp\",\"rule\":\"consent\","
		"\"rule_index\":2}\n"
		"{\"time\":\"2026-11-30T10:05:00Z\",\"event\":\"allowed\",\"app\":\"mp\","
		"\"dst\":\"203.0.113.7\",\"port\":443,\"proto\":\"tcp\",\"rule_index\":2,\"count\":100}\n";
	struct policy *p = parse(policy_yaml);
	struct inventory *inv = NULL;
	struct report_input *in = NULL;
	const struct report_flow *f;
	struct report_region home;

	(void)state;
	assert_int_equal(inventory_new(64, &inv), 0);
	add_record(inv, "mp", "collector.vendor.example", "203.0.113.7", 443, INVENTORY_ALLOWED, 2,
		   5, T0_S + 60);
	add_record(inv, "mp", "collector.vendor.example", "203.0.113.7", 443, INVENTORY_ALLOWED, 2,
		   2, T0_S + 120);
	add_record(inv, "mp", "", "198.51.100.20", 443, INVENTORY_ALLOWED, 1, 3, T0_S + 30);
	add_record(inv, "mp", "", "192.0.2.9", 443, INVENTORY_REFUSED, INVENTORY_RULE_NONE, 2,
		   T0_S + 300);

	assert_int_equal(report_input_new(0, (T0_S + 3600) * NS, &in), 0);
	assert_int_equal(report_input_add_buffer(in, log, strlen(log)), 0);
	assert_int_equal(report_input_add_inventory(in, inv), 0);
	assert_int_equal(report_input_finish(in), 0);
	assert_true(in->has_allowed);
	assert_int_equal(in->skipped, 1); /* the log's "allowed" record */
	assert_int_equal(in->n_flows, 4);

	f = find(in, "203.0.113.7", REPORT_ALLOWED);
	assert_non_null(f);
	assert_int_equal(f->count, 7); /* the inventory's, not the log's 100 */
	assert_int_equal(f->first_ns, (T0_S + 60) * NS);
	assert_int_equal(f->last_ns, (T0_S + 120) * NS);
	assert_string_equal(f->host, "collector.vendor.example");
	assert_int_equal(f->rule_index, 2);
	assert_string_equal(f->rule, "rule #2");
	f = find(in, "192.0.2.9", REPORT_REFUSED);
	assert_non_null(f);
	assert_int_equal(f->count, 2); /* the log's, not added to the inventory's */
	assert_null(find(in, "192.0.2.9", REPORT_ALLOWED));

	/* Regions and the justification from the policy. */
	assert_int_equal(report_region_from_policy(p, &home), 0);
	report_set_countries(in, stub_lookup, NULL, &home, p);
	f = find(in, "203.0.113.7", REPORT_ALLOWED);
	assert_int_equal(f->region, REPORT_REGION_FOREIGN);
	assert_string_equal(f->justification, "crash reports to the vendor's collector");
	f = find(in, "198.51.100.20", REPORT_ALLOWED);
	assert_int_equal(f->region, REPORT_REGION_HOME);
	assert_null(f->justification);
	f = find(in, "203.0.113.7", REPORT_REFUSED); /* a refusal is never justified */
	assert_int_equal(f->region, REPORT_REGION_FOREIGN);
	assert_int_equal(f->rule_index, 2);
	assert_null(f->justification);
	report_input_free(in);

	/* --since: an allowed flow last seen before the window is left out. */
	assert_int_equal(report_input_new((T0_S + 100) * NS, (T0_S + 3600) * NS, &in), 0);
	assert_int_equal(report_input_add_inventory(in, inv), 0);
	assert_int_equal(report_input_finish(in), 0);
	assert_int_equal(in->n_flows, 1);
	assert_string_equal(in->flows[0].dst, "203.0.113.7");
	report_input_free(in);
	inventory_free(inv);
	policy_free(p);
}

static void test_report_inventory_file_missing_or_bad(void **state)
{
	char dir[] = "/tmp/cw-report-inv-XXXXXX", path[64], reason[256] = "";
	struct report_input *in = NULL;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, INVENTORY_FILE);
	assert_int_equal(report_input_new(0, 0, &in), 0);
	assert_int_equal(report_input_read_inventory(in, path, reason, sizeof(reason)), -ENOENT);
	assert_false(in->has_allowed);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"format\":\"not-an-inventory\"}", f);
	fclose(f);
	assert_int_equal(report_input_read_inventory(in, path, reason, sizeof(reason)), -EINVAL);
	assert_true(reason[0] != '\0');
	assert_false(in->has_allowed);
	report_input_free(in);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_home_region_from_policy_group),
		cmocka_unit_test(test_report_home_region_from_policy_eu_and_country),
		cmocka_unit_test(test_report_rule_justification_by_global_index),
		cmocka_unit_test(test_report_allowed_flows_from_inventory_counted_once),
		cmocka_unit_test(test_report_inventory_file_missing_or_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
