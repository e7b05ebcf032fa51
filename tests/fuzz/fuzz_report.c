// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the report input (lib/report.c) and its renderers: any events log must
 * give a report, never a crash, a leak or undefined behaviour; every interval of the timeline
 * is in order, and the HTML page never holds a tag or an attribute from the data.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lookup(const char *addr, char ret[3], void *userdata)
{
	(void)userdata;
	ret[0] = addr[0] == '2' ? 'X' : '\0';
	ret[1] = 'B';
	ret[2] = '\0';
	return addr[0] == '1' ? -5 : 0;
}

/*
 * Every tag of the page is one the renderer writes (data only ever lands in text, escaped), and
 * no tag carries an event handler (" on...=") or a link (href, src).
 */
static void check_html(const char *html)
{
	static const char *const tags[] = { "!DOCTYPE", "html", "head", "meta", "title", "style",
					    "body", "h1", "h2", "h3", "p", "table", "tr", "th",
					    "td", "svg", "text", "rect", "path", "circle", "span" };

	for (const char *p = strchr(html, '<'); p; p = strchr(p + 1, '<')) {
		const char *name = p + 1 + (p[1] == '/'), *end = strchr(p, '>');
		size_t len = strcspn(name, " >/\n"), k;

		for (k = 0; k < sizeof(tags) / sizeof(tags[0]); k++)
			if (strlen(tags[k]) == len && !strncmp(name, tags[k], len))
				break;
		if (k == sizeof(tags) / sizeof(tags[0]) || !end)
			abort();
		for (const char *q = p; q < end; q++)
			if (!strncmp(q, " on", 3) || !strncmp(q, "href=", 5) || !strncmp(q, "src=", 4) ||
			    *q == '&')
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct report_input *in = NULL;
	struct report_region home;
	struct report rep = {};
	struct json_object *j;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (report_input_new(0, 1796036400000000000LL, &in) < 0)
		return 0;
	if (report_input_add_buffer(in, (const char *)data, size) < 0 || report_input_finish(in) < 0) {
		report_input_free(in);
		return 0;
	}
	for (size_t i = 0; i < in->n_policies; i++)
		if (in->policies[i].from_ns > in->policies[i].to_ns && i + 1 < in->n_policies)
			abort();
	if (in->skipped > in->lines)
		abort();
	report_region_parse("XA", "fuzz", &home);
	report_set_countries(in, lookup, NULL, &home, NULL);
	rep = (struct report){ .in = in, .home = &home, .generated_ns = 1 };
	j = report_to_json(&rep);
	json_object_put(j);
	f = open_memstream(&buf, &len);
	if (f) {
		report_write_html(&rep, f);
		fclose(f);
		check_html(buf);
		free(buf);
	}
	f = fopen("/dev/null", "w");
	if (f) {
		report_write_text(&rep, f);
		fclose(f);
	}
	report_input_free(in);
	return 0;
}
