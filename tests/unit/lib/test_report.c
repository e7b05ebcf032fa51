// SPDX-License-Identifier: GPL-2.0-only
/*
 * The report input (lib/report.c) on crafted events logs, and its renderers (lib/report_render.c)
 * on hostile data: repeats folded, corrupt and truncated logs skipped line by line, the
 * timeline's intervals, the window, the bounds, countries and regions, and no markup or terminal
 * escape from the log reaching the HTML page or the terminal.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "geo.h"
#include "report.h"

#define NS 1000000000LL
/* 2026-11-30T10:00:00Z */
#define T0 (1796032800LL * NS)

static struct report_input *read_log(const char *log, int64_t since, int64_t until)
{
	struct report_input *in = NULL;

	assert_int_equal(report_input_new(since, until, &in), 0);
	assert_int_equal(report_input_add_buffer(in, log, strlen(log)), 0);
	assert_int_equal(report_input_finish(in), 0);
	return in;
}

static char *render(const struct report *r, int (*fn)(const struct report *, FILE *))
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	assert_int_equal(fn(r, f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void test_report_time_and_duration_parse(void **state)
{
	int64_t t;

	(void)state;
	assert_int_equal(report_time_parse("2026-11-30T10:00:00.000000Z", &t), 0);
	assert_int_equal(t, T0);
	assert_int_equal(report_time_parse("2026-11-30T10:00:01.5Z", &t), 0);
	assert_int_equal(t, T0 + NS + NS / 2);
	assert_int_equal(report_time_parse("2026-11-30T10:00:00Z", &t), 0);
	assert_int_equal(report_time_parse("2026-11-30T10:00:00.Z", &t), -EINVAL);
	assert_int_equal(report_time_parse("2026-11-30T10:00:00.123", &t), -EINVAL);
	assert_int_equal(report_time_parse("2026-02-30T10:00:00Z", &t), -EINVAL);
	assert_int_equal(report_time_parse("2026-11-30 10:00:00Z", &t), -EINVAL);
	assert_int_equal(report_time_parse("", &t), -EINVAL);

	assert_int_equal(report_duration_parse("90s", &t), 0);
	assert_int_equal(t, 90 * NS);
	assert_int_equal(report_duration_parse("7d", &t), 0);
	assert_int_equal(t, 7 * 86400 * NS);
	assert_int_equal(report_duration_parse("120", &t), 0);
	assert_int_equal(t, 120 * NS);
	assert_int_equal(report_duration_parse("2w", &t), 0);
	assert_int_equal(report_duration_parse("h", &t), -EINVAL);
	assert_int_equal(report_duration_parse("-1h", &t), -EINVAL);
	assert_int_equal(report_duration_parse("1hh", &t), -EINVAL);
	assert_int_equal(report_duration_parse("1y", &t), -EINVAL);
	assert_int_equal(report_duration_parse("99999999999999999999s", &t), -ERANGE);
}

static void test_report_folds_repeats_of_a_flow(void **state)
{
	const char *log =
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":443,\"proto\":\"tcp\",\"rule\":\"default deny\",\"count\":1}\n"
		"{\"time\":\"2026-11-30T10:02:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":443,\"proto\":\"tcp\",\"rule\":\"default deny\",\"count\":5,"
		"\"first\":\"2026-11-30T10:02:00Z\",\"last\":\"2026-11-30T10:09:00Z\",\"host\":\"t.example\"}\n"
		/* another port, another verdict, another app: three other flows */
		"{\"time\":\"2026-11-30T10:03:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":80,\"proto\":\"tcp\"}\n"
		"{\"time\":\"2026-11-30T10:03:00Z\",\"event\":\"audit\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":443,\"proto\":\"tcp\"}\n"
		"{\"time\":\"2026-11-30T10:03:00Z\",\"event\":\"refused\",\"app\":null,\"dst\":\"203.0.113.7\","
		"\"port\":443,\"proto\":17}\n";
	struct report_input *in = read_log(log, 0, T0 + 3600 * NS);

	(void)state;
	assert_int_equal(in->n_flows, 4);
	assert_int_equal(in->skipped, 0);
	/* Sorted: app "mp" first, verdict order audit < refused, count descending. */
	assert_string_equal(in->flows[0].app, "mp");
	assert_int_equal(in->flows[0].verdict, REPORT_AUDIT);
	assert_int_equal(in->flows[1].verdict, REPORT_REFUSED);
	assert_int_equal(in->flows[1].count, 6);
	assert_int_equal(in->flows[1].port, 443);
	assert_int_equal(in->flows[1].first_ns, T0 + 60 * NS);
	assert_int_equal(in->flows[1].last_ns, T0 + 540 * NS);
	assert_string_equal(in->flows[1].host, "t.example");
	assert_int_equal(in->flows[2].port, 80);
	assert_null(in->flows[3].app); /* below the guards: last */
	assert_string_equal(in->flows[3].proto, "17");
	assert_false(in->has_allowed);
	report_input_free(in);
}

/* Every kind of damage: each bad line is skipped and counted, the good ones are kept. */
static void test_report_skips_corrupt_lines(void **state)
{
	static const char good[] =
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":443,\"proto\":\"tcp\"}\n";
	static const char *const bad[] = {
		"not json",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\"",	/* truncated */
		"{\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\",\"port\":1,\"proto\":\"tcp\"}", /* no time */
		"{\"time\":\"yesterday\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"1.2.3.4\",\"port\":1,\"proto\":\"tcp\"}",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"1.2.3.4\",\"port\":70000,\"proto\":\"tcp\"}",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":7,\"port\":1,\"proto\":\"tcp\"}",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"../x\",\"dst\":\"1.2.3.4\",\"port\":1,\"proto\":\"tcp\"}",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"1.2.3.4\",\"port\":1,\"proto\":\"tcp\",\"count\":-3}",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"1.2.3.4\",\"port\":1,\"proto\":\"tcp\"} trailing",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"policy\"}",	/* no state */
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"events-dropped\",\"count\":0}",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"something-new\"}",
		"[1,2,3]",
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"1.2.3.4\",\"port\":1,\"proto\":\"\xff\xfe\"}",
	};
	struct report_input *in = NULL;
	char *huge;

	(void)state;
	assert_int_equal(report_input_new(0, T0 + 3600 * NS, &in), 0);
	assert_int_equal(report_input_add_buffer(in, good, strlen(good)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(report_input_add_line(in, bad[i], strlen(bad[i])), -EINVAL);
	/* A line longer than any record, and one with a NUL inside. */
	huge = malloc(REPORT_MAX_LINE + 10);
	assert_non_null(huge);
	memset(huge, ' ', REPORT_MAX_LINE + 10);
	memcpy(huge, good, strlen(good) - 1);
	assert_int_equal(report_input_add_line(in, huge, REPORT_MAX_LINE + 10), -EINVAL);
	free(huge);
	assert_int_equal(report_input_add_line(in, "{\"a\":\0\"b\"}", 10), -EINVAL);
	assert_int_equal(report_input_add_buffer(in, good, strlen(good)), 0);
	assert_int_equal(report_input_finish(in), 0);
	assert_int_equal(in->skipped, sizeof(bad) / sizeof(bad[0]) + 2);
	assert_int_equal(in->n_flows, 1);
	assert_int_equal(in->flows[0].count, 2);
	report_input_free(in);
}

/* A log cut in the middle of a record (a crash while writing, a full disk): the last half
 * line is skipped, everything before it kept. */
static void test_report_truncated_log(void **state)
{
	static const char log[] =
		"{\"time\":\"2026-11-30T10:00:00Z\",\"event\":\"agent-start\",\"pid\":1}\n"
		"{\"time\":\"2026-11-30T10:00:00.1Z\",\"event\":\"policy\",\"state\":\"in-force\",\"sha256\":\"ab\"}\n"
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":443,\"proto\":\"tcp\"}\n";
	(void)state;
	for (size_t cut = 0; cut <= sizeof(log) - 1; cut++) {
		struct report_input *in = NULL;

		assert_int_equal(report_input_new(0, T0 + 3600 * NS, &in), 0);
		assert_int_equal(report_input_add_buffer(in, log, cut), 0);
		assert_int_equal(report_input_finish(in), 0);
		assert_true(in->n_flows <= 1);
		assert_true(in->n_policies <= 1);
		if (cut == sizeof(log) - 1) {
			assert_int_equal(in->n_flows, 1);
			assert_int_equal(in->skipped, 0);
		}
		report_input_free(in);
	}
}

static void test_report_timeline_intervals(void **state)
{
	const char *log =
		"{\"time\":\"2026-11-30T10:00:00Z\",\"event\":\"agent-start\",\"pid\":1}\n"
		"{\"time\":\"2026-11-30T10:00:01Z\",\"event\":\"policy\",\"state\":\"in-force\",\"sha256\":\"aa\","
		"\"path\":\"/p\",\"signed\":true,\"bundle_id\":\"oem\",\"bundle_version\":3,\"why\":\"start\"}\n"
		"{\"time\":\"2026-11-30T10:10:00Z\",\"event\":\"events-dropped\",\"app\":\"mp\",\"count\":7}\n"
		"{\"time\":\"2026-11-30T10:20:00Z\",\"event\":\"agent-stop\",\"pid\":1}\n"
		/* a clean gap 10:20 to 10:30 */
		"{\"time\":\"2026-11-30T10:30:00Z\",\"event\":\"agent-start\",\"pid\":2}\n"
		"{\"time\":\"2026-11-30T10:30:01Z\",\"event\":\"policy\",\"state\":\"in-force\",\"sha256\":\"aa\",\"signed\":true,"
		"\"bundle_id\":\"oem\",\"bundle_version\":3,\"why\":\"start\"}\n"
		"{\"time\":\"2026-11-30T10:35:00Z\",\"event\":\"policy\",\"state\":\"fail-closed\",\"sha256\":null,"
		"\"signed\":false,\"why\":\"reload\"}\n"
		/* killed: no stop; started again at 10:50, its last record 10:40 */
		"{\"time\":\"2026-11-30T10:40:00Z\",\"event\":\"consent\",\"switch\":\"crash-reports\",\"state\":\"off\"}\n"
		"{\"time\":\"2026-11-30T10:50:00Z\",\"event\":\"agent-start\",\"pid\":3}\n"
		"{\"time\":\"2026-11-30T10:50:01Z\",\"event\":\"policy\",\"state\":\"in-force\",\"sha256\":\"bb\",\"signed\":true,"
		"\"bundle_id\":\"oem\",\"bundle_version\":4,\"why\":\"start\"}\n"
		"{\"time\":\"2026-11-30T10:55:00Z\",\"event\":\"agent-stop\",\"pid\":3}\n";
	/* The same records in another order (two shares read one after the other). */
	const char *until_s = "2026-11-30T11:00:00Z";
	struct report_input *in;
	int64_t until;

	(void)state;
	assert_int_equal(report_time_parse(until_s, &until), 0);
	in = read_log(log, 0, until);
	assert_int_equal(in->n_policies, 4);
	assert_string_equal(in->policies[0].state, "in-force");
	assert_int_equal(in->policies[0].from_ns, T0 + NS);
	assert_int_equal(in->policies[0].to_ns, T0 + 1801 * NS);
	assert_string_equal(in->policies[0].bundle_id, "oem");
	assert_int_equal(in->policies[0].bundle_version, 3);
	assert_true(in->policies[0].is_signed);
	assert_string_equal(in->policies[0].path, "/p");
	assert_string_equal(in->policies[2].state, "fail-closed");
	assert_null(in->policies[2].sha256);
	assert_int_equal(in->policies[2].bundle_version, -1);
	assert_int_equal(in->policies[3].bundle_version, 4);
	assert_int_equal(in->policies[3].to_ns, until);

	assert_int_equal(in->n_gaps, 3);
	assert_true(in->gaps[0].clean);
	assert_int_equal(in->gaps[0].from_ns, T0 + 1200 * NS);
	assert_int_equal(in->gaps[0].to_ns, T0 + 1800 * NS);
	assert_false(in->gaps[1].clean); /* ended without a stop: from its last record */
	assert_int_equal(in->gaps[1].from_ns, T0 + 2400 * NS);
	assert_int_equal(in->gaps[1].to_ns, T0 + 3000 * NS);
	assert_true(in->gaps[2].clean); /* still stopped when the report is made */
	assert_int_equal(in->gaps[2].to_ns, until);

	assert_int_equal(in->n_dropped, 1);
	assert_string_equal(in->dropped[0].app, "mp");
	assert_int_equal(in->dropped[0].count, 7);
	assert_int_equal(in->n_consent, 1);
	assert_string_equal(in->consent[0].name, "crash-reports");
	assert_string_equal(in->consent[0].state, "off");
	assert_true(in->has_lifecycle);
	report_input_free(in);
}

/* Flows logged before the first policy record (a rotated agent share, an older agent): what
 * was in force then is "unknown", never taken for the next policy. */
static void test_report_unknown_policy_before_first_record(void **state)
{
	const char *log =
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":443,\"proto\":\"tcp\"}\n"
		"{\"time\":\"2026-11-30T10:05:00Z\",\"event\":\"policy\",\"state\":\"in-force\",\"sha256\":\"aa\"}\n";
	struct report_input *in = read_log(log, 0, T0 + 3600 * NS);

	(void)state;
	assert_int_equal(in->n_policies, 2);
	assert_string_equal(in->policies[0].state, "unknown");
	assert_int_equal(in->policies[0].from_ns, T0 + 60 * NS);
	assert_int_equal(in->policies[0].to_ns, T0 + 300 * NS);
	assert_string_equal(in->policies[1].sha256, "aa");
	report_input_free(in);

	/* No policy record at all (an agent before lifecycle records). */
	in = read_log("{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\","
		      "\"dst\":\"203.0.113.7\",\"port\":443,\"proto\":\"tcp\"}\n",
		      0, T0 + 3600 * NS);
	assert_int_equal(in->n_policies, 1);
	assert_string_equal(in->policies[0].state, "unknown");
	assert_false(in->has_lifecycle);
	report_input_free(in);
}

static void test_report_since_window(void **state)
{
	const char *log =
		"{\"time\":\"2026-11-30T09:00:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":1,\"proto\":\"tcp\"}\n"
		"{\"time\":\"2026-11-30T09:00:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":2,\"proto\":\"tcp\",\"count\":2,\"first\":\"2026-11-30T09:00:00Z\",\"last\":\"2026-11-30T10:30:00Z\"}\n"
		"{\"time\":\"2026-11-30T10:40:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":3,\"proto\":\"tcp\"}\n";
	struct report_input *in = read_log(log, T0, T0 + 3600 * NS);

	(void)state;
	/* The first ended before the window; the second's last repeat is inside it. */
	assert_int_equal(in->n_flows, 2);
	assert_int_equal(in->flows[0].port + in->flows[1].port, 5);
	report_input_free(in);
}

/* More distinct flows than REPORT_MAX_FLOWS: the rest are skipped and counted, not kept. */
static void test_report_flow_bound(void **state)
{
	struct report_input *in = NULL;
	char line[256];

	(void)state;
	assert_int_equal(report_input_new(0, T0 + 3600 * NS, &in), 0);
	for (unsigned i = 0; i < REPORT_MAX_FLOWS + 10; i++) {
		int n = snprintf(line, sizeof(line),
				 "{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\","
				 "\"dst\":\"10.%u.%u.%u\",\"port\":%u,\"proto\":\"tcp\"}",
				 (i >> 16) & 255, (i >> 8) & 255, i & 255, 1 + i % 7);
		int r = report_input_add_line(in, line, (size_t)n);

		assert_int_equal(r, i < REPORT_MAX_FLOWS ? 0 : -EINVAL);
	}
	/* A repeat of a known flow still folds. */
	snprintf(line, sizeof(line),
		 "{\"time\":\"2026-11-30T10:02:00Z\",\"event\":\"refused\",\"app\":\"mp\","
		 "\"dst\":\"10.0.0.0\",\"port\":1,\"proto\":\"tcp\"}");
	assert_int_equal(report_input_add_line(in, line, strlen(line)), 0);
	assert_int_equal(report_input_finish(in), 0);
	assert_int_equal(in->n_flows, REPORT_MAX_FLOWS);
	assert_int_equal(in->skipped, 10);
	report_input_free(in);
}

static int stub_lookup(const char *addr, char ret[3], void *userdata)
{
	(void)userdata;
	if (!strncmp(addr, "198.51.100.", 11))
		memcpy(ret, "XA", 3);
	else if (!strncmp(addr, "203.0.113.", 10))
		memcpy(ret, "XB", 3);
	else if (!strcmp(addr, "192.0.2.1"))
		return -EIO;
	else
		ret[0] = '\0';
	return 0;
}

static const char regions_log[] =
	"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"audit\",\"app\":\"mp\",\"dst\":\"198.51.100.20\","
	"\"port\":443,\"proto\":\"tcp\",\"count\":4}\n"
	"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
	"\"port\":443,\"proto\":\"tcp\",\"count\":3}\n"
	"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"10.1.1.1\","
	"\"port\":443,\"proto\":\"tcp\"}\n"
	"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"192.0.2.1\","
	"\"port\":443,\"proto\":\"tcp\"}\n";

static const struct report_flow *find_flow(const struct report_input *in, const char *dst)
{
	for (size_t i = 0; i < in->n_flows; i++)
		if (!strcmp(in->flows[i].dst, dst))
			return &in->flows[i];
	fail_msg("no flow to %s", dst);
	return NULL;
}

static void test_report_regions(void **state)
{
	struct report_input *in = read_log(regions_log, 0, T0 + 3600 * NS);
	struct report_region home;

	(void)state;
	assert_int_equal(report_region_parse("xa, XC", "--home-region", &home), 0);
	assert_int_equal(home.n, 2);
	assert_string_equal(home.countries[0], "XA");
	assert_int_equal(report_region_parse("XAX", "x", &home), -EINVAL);
	assert_int_equal(report_region_parse("", "x", &home), -EINVAL);
	assert_int_equal(report_region_parse("X1", "x", &home), -EINVAL);
	assert_int_equal(report_region_parse("xa,xc", "--home-region", &home), 0);

	assert_int_equal(report_set_countries(in, stub_lookup, NULL, &home, NULL), 1);
	assert_int_equal(find_flow(in, "198.51.100.20")->region, REPORT_REGION_HOME);
	assert_string_equal(find_flow(in, "203.0.113.7")->country, "XB");
	assert_int_equal(find_flow(in, "203.0.113.7")->region, REPORT_REGION_FOREIGN);
	assert_int_equal(find_flow(in, "10.1.1.1")->region, REPORT_REGION_UNKNOWN);
	assert_string_equal(find_flow(in, "192.0.2.1")->country, ""); /* the lookup failed */
	assert_int_equal(find_flow(in, "192.0.2.1")->region, REPORT_REGION_UNKNOWN);
	assert_false(in->has_allowed); /* no inventory read */

	/* No home region: every region unknown, countries still known. */
	report_set_countries(in, stub_lookup, NULL, NULL, NULL);
	assert_int_equal(find_flow(in, "203.0.113.7")->region, REPORT_REGION_UNKNOWN);
	assert_string_equal(find_flow(in, "203.0.113.7")->country, "XB");
	report_input_free(in);
}

static void test_report_json_fields(void **state)
{
	struct report_input *in = read_log(regions_log, 0, T0 + 3600 * NS);
	struct geo_info db = { .path = "/db", .type = "t", .build_epoch = 1796032800,
			       .sha256 = "00" };
	struct report_region home;
	struct report rep = { .in = in, .db = &db, .home = &home, .generated_ns = T0 };
	struct json_object *j, *apps, *app, *cb, *v;

	(void)state;
	assert_int_equal(report_region_parse("XA", "--home-region", &home), 0);
	report_set_countries(in, stub_lookup, NULL, &home, NULL);
	j = report_to_json(&rep);
	assert_true(json_object_object_get_ex(j, "apps", &apps));
	assert_int_equal(json_object_array_length(apps), 1);
	app = json_object_array_get_idx(apps, 0);
	assert_true(json_object_object_get_ex(app, "cross_border", &cb));
	assert_true(json_object_object_get_ex(cb, "refused", &v));
	assert_int_equal(json_object_get_int64(v), 3);
	assert_true(json_object_object_get_ex(cb, "allowed", &v));
	assert_int_equal(json_object_get_int64(v), 0);
	assert_true(json_object_object_get_ex(j, "cross_border", &cb));
	assert_int_equal(json_object_array_length(cb), 1);
	assert_true(json_object_object_get_ex(json_object_array_get_idx(cb, 0), "justification", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(j, "database", &v));
	assert_true(json_object_object_get_ex(v, "build", &v));
	assert_string_equal(json_object_get_string(v), "2026-11-30T10:00:00.000000Z");
	json_object_put(j);
	report_input_free(in);
}

/*
 * An app that wants to inject markup into the compliance officer's page: a host name it
 * learned, a consent switch name, a policy path, a bundle id, a rule, all with tags, quotes,
 * entities and control bytes. None may open a tag or an attribute in the HTML, none may send a
 * terminal escape in the text form.
 */
static void test_report_html_escapes_hostile_strings(void **state)
{
	const char *log =
		"{\"time\":\"2026-11-30T10:00:00Z\",\"event\":\"policy\",\"state\":\"\\u001b]0;x\\u0007\",\"sha256\":\"<img src=x>\\u001b[2J\","
		"\"path\":\"</title><script>alert(1)</script>\",\"bundle_id\":\"\\\"><svg onload=alert(1)>\","
		"\"bundle_version\":1,\"why\":\"'onmouseover='alert(1)\"}\n"
		"{\"time\":\"2026-11-30T10:01:00Z\",\"event\":\"refused\",\"app\":\"mp\",\"dst\":\"203.0.113.7\","
		"\"port\":443,\"proto\":\"<b>\",\"rule\":\"<style>body{display:none}</style>\","
		"\"host\":\"<script>alert(document.cookie)</script>\\u001b[31m&amp;\"}\n"
		"{\"time\":\"2026-11-30T10:02:00Z\",\"event\":\"consent\",\"switch\":\"<iframe src=//evil.example>\","
		"\"state\":\"</text><a href=https://evil.example>\"}\n"
		"{\"time\":\"2026-11-30T10:03:00Z\",\"event\":\"events-dropped\",\"app\":\"mp\",\"count\":1}\n";
	struct report_input *in = read_log(log, 0, T0 + 3600 * NS);
	struct report rep = { .in = in, .generated_ns = T0 };
	char *html, *text;

	(void)state;
	assert_int_equal(in->skipped, 0);
	assert_int_equal(in->n_flows, 1);
	html = render(&rep, report_write_html);
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "<img"));
	assert_null(strstr(html, "<svg onload"));
	assert_null(strstr(html, "<iframe"));
	assert_null(strstr(html, "<a "));
	assert_null(strstr(html, "<b>"));
	assert_null(strstr(html, "<style>body"));
	assert_null(strstr(html, "'onmouseover"));
	assert_null(strstr(html, "\"><svg"));
	assert_null(strstr(html, "\x1b"));
	assert_non_null(strstr(html, "&lt;script&gt;alert(document.cookie)&lt;/script&gt;?[31m&amp;amp;"));
	assert_non_null(strstr(html, "&quot;&gt;&lt;svg onload=alert(1)&gt;"));
	assert_non_null(strstr(html, "&#39;onmouseover=&#39;alert(1)"));
	/* Nothing runs, whatever the data: the page forbids every source. */
	assert_non_null(strstr(html, "default-src 'none'"));
	free(html);

	text = render(&rep, report_write_text);
	assert_null(strstr(text, "\x1b"));
	assert_non_null(strstr(text, "?[31m"));
	free(text);
	report_input_free(in);
}

static void test_report_escape_function(void **state)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	(void)state;
	report_html_escape(f, "<a href=\"x\">'&'</a>\x01\xc3\xa9");
	fclose(f);
	assert_string_equal(buf, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;???");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_time_and_duration_parse),
		cmocka_unit_test(test_report_folds_repeats_of_a_flow),
		cmocka_unit_test(test_report_skips_corrupt_lines),
		cmocka_unit_test(test_report_truncated_log),
		cmocka_unit_test(test_report_timeline_intervals),
		cmocka_unit_test(test_report_unknown_policy_before_first_record),
		cmocka_unit_test(test_report_since_window),
		cmocka_unit_test(test_report_flow_bound),
		cmocka_unit_test(test_report_regions),
		cmocka_unit_test(test_report_json_fields),
		cmocka_unit_test(test_report_html_escapes_hostile_strings),
		cmocka_unit_test(test_report_escape_function),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
