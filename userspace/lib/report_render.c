// SPDX-License-Identifier: GPL-2.0-only
/*
 * The residency report's three forms (report.h): JSON, text, and one self-contained HTML page
 * with inline SVG charts. Every string that comes from the log (app ids, host names, rules,
 * policy paths, consent switch names) is data an app may have shaped: in HTML it is always
 * written through report_html_escape(), in text through text_put() (no terminal escapes).
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "events.h"
#include "geo.h"

#define JADD(o, k, v) json_object_object_add((o), (k), (v))

static void fmt_time(int64_t ns, char buf[64])
{
	if (ns <= 0 || ns == INT64_MAX) {
		snprintf(buf, 64, "-");
		return;
	}
	events_time_format(ns, buf, 64);
}

static struct json_object *json_time(int64_t ns)
{
	char t[64];

	if (ns <= 0 || ns == INT64_MAX)
		return NULL;
	fmt_time(ns, t);
	return json_object_new_string(t);
}

static struct json_object *json_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

/* The database's build time in ns; a time past 2262 (no real database's) is unknown, 0. */
static int64_t db_build_ns(const struct geo_info *db)
{
	return db->build_epoch >= (uint64_t)(INT64_MAX / 1000000000)
		       ? 0
		       : (int64_t)db->build_epoch * 1000000000;
}

/* Per app: flows are sorted by app, so an app's flows are [*i, end). */
static size_t app_end(const struct report_input *in, size_t i)
{
	size_t e = i + 1;

	while (e < in->n_flows && ((!in->flows[e].app && !in->flows[i].app) ||
				   (in->flows[e].app && in->flows[i].app &&
				    !strcmp(in->flows[e].app, in->flows[i].app))))
		e++;
	return e;
}

/* Counts per country (and region) of flows [b, e): sums[] holds at most e - b entries. */
struct country_sum {
	char country[3];
	enum report_region_class region;
	uint64_t v[REPORT_VERDICTS];
	uint64_t total;
};

static size_t sum_countries(const struct report_input *in, size_t b, size_t e,
			    struct country_sum *sums)
{
	size_t n = 0;

	for (size_t i = b; i < e; i++) {
		const struct report_flow *f = &in->flows[i];
		size_t k;

		for (k = 0; k < n; k++)
			if (!strcmp(sums[k].country, f->country) && sums[k].region == f->region)
				break;
		if (k == n) {
			memset(&sums[n], 0, sizeof(sums[n]));
			memcpy(sums[n].country, f->country, 3);
			sums[n].region = f->region;
			n++;
		}
		sums[k].v[f->verdict] += f->count;
		sums[k].total += f->count;
	}
	/* Largest first, home before cross-border before unknown on ties. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && (sums[j].total > sums[j - 1].total); j--) {
			struct country_sum t = sums[j];

			sums[j] = sums[j - 1];
			sums[j - 1] = t;
		}
	return n;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static struct json_object *flow_json(const struct report_flow *f)
{
	struct json_object *o = json_object_new_object();

	JADD(o, "app", json_str_or_null(f->app));
	JADD(o, "dst", json_object_new_string(f->dst));
	JADD(o, "host", json_str_or_null(f->host));
	JADD(o, "port", json_object_new_int((int)f->port));
	JADD(o, "proto", json_object_new_string(f->proto));
	JADD(o, "verdict", json_object_new_string(report_verdict_name(f->verdict)));
	JADD(o, "rule", json_object_new_string(f->rule));
	JADD(o, "rule_index", f->rule_index >= 0 ? json_object_new_int64(f->rule_index) : NULL);
	JADD(o, "count", json_object_new_int64((int64_t)(f->count > INT64_MAX ? INT64_MAX : f->count)));
	JADD(o, "first", json_time(f->first_ns));
	JADD(o, "last", json_time(f->last_ns));
	JADD(o, "country", f->country[0] ? json_object_new_string(f->country) : NULL);
	JADD(o, "region", json_object_new_string(report_region_name(f->region)));
	if (f->region == REPORT_REGION_FOREIGN)
		JADD(o, "justification", json_str_or_null(f->justification));
	return o;
}

static struct json_object *verdicts_json(const uint64_t v[REPORT_VERDICTS])
{
	struct json_object *o = json_object_new_object();

	for (int k = 0; k < REPORT_VERDICTS; k++)
		JADD(o, report_verdict_name(k),
		     json_object_new_int64((int64_t)(v[k] > INT64_MAX ? INT64_MAX : v[k])));
	return o;
}

static struct json_object *timeline_json(const struct report_input *in)
{
	struct json_object *t = json_object_new_object();
	struct json_object *pol = json_object_new_array(), *gaps = json_object_new_array();
	struct json_object *dropped = json_object_new_array(), *consent = json_object_new_array();

	for (size_t i = 0; i < in->n_policies; i++) {
		const struct report_policy *p = &in->policies[i];
		struct json_object *o = json_object_new_object();

		JADD(o, "from", json_time(p->from_ns));
		JADD(o, "to", json_time(p->to_ns));
		JADD(o, "state", json_object_new_string(p->state));
		JADD(o, "sha256", json_str_or_null(p->sha256));
		JADD(o, "bundle_id", json_str_or_null(p->bundle_id));
		JADD(o, "bundle_version",
		     p->bundle_version >= 0 ? json_object_new_int64(p->bundle_version) : NULL);
		JADD(o, "signed", json_object_new_boolean(p->is_signed));
		JADD(o, "path", json_str_or_null(p->path));
		JADD(o, "why", json_str_or_null(p->why));
		json_object_array_add(pol, o);
	}
	for (size_t i = 0; i < in->n_gaps; i++) {
		const struct report_gap *g = &in->gaps[i];
		struct json_object *o = json_object_new_object();

		JADD(o, "from", json_time(g->from_ns));
		JADD(o, "to", json_time(g->to_ns));
		JADD(o, "clean", json_object_new_boolean(g->clean));
		json_object_array_add(gaps, o);
	}
	for (size_t i = 0; i < in->n_dropped; i++) {
		struct json_object *o = json_object_new_object();

		JADD(o, "time", json_time(in->dropped[i].at_ns));
		JADD(o, "app", json_str_or_null(in->dropped[i].app));
		JADD(o, "count", json_object_new_int64((int64_t)in->dropped[i].count));
		json_object_array_add(dropped, o);
	}
	for (size_t i = 0; i < in->n_consent; i++) {
		struct json_object *o = json_object_new_object();

		JADD(o, "time", json_time(in->consent[i].at_ns));
		JADD(o, "switch", json_str_or_null(in->consent[i].name));
		JADD(o, "state", json_str_or_null(in->consent[i].state));
		json_object_array_add(consent, o);
	}
	JADD(t, "policies", pol);
	JADD(t, "agent_down", gaps);
	JADD(t, "events_dropped", dropped);
	JADD(t, "consent", consent);
	return t;
}

struct json_object *report_to_json(const struct report *r)
{
	const struct report_input *in = r->in;
	struct json_object *o = json_object_new_object(), *apps = json_object_new_array();
	struct json_object *cross = json_object_new_array(), *log = json_object_new_object();
	struct country_sum *sums = calloc(in->n_flows + 1, sizeof(*sums));

	JADD(o, "report", json_object_new_string("residency"));
	JADD(o, "generated", json_time(r->generated_ns));
	JADD(o, "since", json_time(in->since_ns));
	JADD(o, "until", json_time(in->until_ns));
	if (r->db) {
		struct json_object *db = json_object_new_object();

		JADD(db, "path", json_object_new_string(r->db->path));
		JADD(db, "type", json_object_new_string(r->db->type));
		JADD(db, "description", json_object_new_string(r->db->description));
		JADD(db, "build", json_time(db_build_ns(r->db)));
		JADD(db, "sha256", json_object_new_string(r->db->sha256));
		JADD(o, "database", db);
	} else {
		JADD(o, "database", NULL);
	}
	if (r->home && r->home->n) {
		struct json_object *h = json_object_new_object(), *c = json_object_new_array();

		for (size_t i = 0; i < r->home->n; i++)
			json_object_array_add(c, json_object_new_string(r->home->countries[i]));
		JADD(h, "countries", c);
		JADD(h, "source", json_object_new_string(r->home->source));
		JADD(o, "home_region", h);
	} else {
		JADD(o, "home_region", NULL);
	}
	for (size_t b = 0; sums && b < in->n_flows;) {
		size_t e = app_end(in, b), n = sum_countries(in, b, e, sums);
		struct json_object *a = json_object_new_object(), *fl = json_object_new_array();
		struct json_object *bc = json_object_new_array();
		uint64_t cb[REPORT_VERDICTS] = {};

		for (size_t i = b; i < e; i++) {
			json_object_array_add(fl, flow_json(&in->flows[i]));
			if (in->flows[i].region == REPORT_REGION_FOREIGN) {
				cb[in->flows[i].verdict] += in->flows[i].count;
				json_object_array_add(cross, flow_json(&in->flows[i]));
			}
		}
		for (size_t k = 0; k < n; k++) {
			struct json_object *c = verdicts_json(sums[k].v);

			JADD(c, "country",
			     sums[k].country[0] ? json_object_new_string(sums[k].country) : NULL);
			JADD(c, "region", json_object_new_string(report_region_name(sums[k].region)));
			json_object_array_add(bc, c);
		}
		JADD(a, "app", json_str_or_null(in->flows[b].app));
		JADD(a, "by_country", bc);
		JADD(a, "cross_border", verdicts_json(cb));
		JADD(a, "flows", fl);
		json_object_array_add(apps, a);
		b = e;
	}
	free(sums);
	JADD(o, "apps", apps);
	JADD(o, "cross_border", cross);
	JADD(o, "timeline", timeline_json(in));
	JADD(log, "begins", json_time(in->log_begins_ns));
	JADD(log, "files", json_object_new_int64((int64_t)in->files));
	JADD(log, "files_unreadable", json_object_new_int64((int64_t)in->files_failed));
	JADD(log, "lines", json_object_new_int64((int64_t)in->lines));
	JADD(log, "skipped", json_object_new_int64((int64_t)in->skipped));
	JADD(log, "allowed_flows_recorded", json_object_new_boolean(in->has_allowed));
	JADD(log, "lifecycle_recorded", json_object_new_boolean(in->has_lifecycle));
	JADD(o, "log", log);
	return o;
}

/* ---- text ------------------------------------------------------------------------------------ */

/* s with every byte that is not printable ASCII as '?': no terminal escape from the log. */
static void text_put(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : "-"); *p; p++)
		fputc(*p >= 0x20 && *p < 0x7f ? *p : '?', out);
}

static void text_pad(FILE *out, const char *s, int width)
{
	int n = (int)strlen(s ? s : "-");

	text_put(out, s);
	for (; n < width; n++)
		fputc(' ', out);
	fputc(' ', out);
}

int report_write_text(const struct report *r, FILE *out)
{
	const struct report_input *in = r->in;
	uint64_t cb[REPORT_VERDICTS] = {};
	char a[64], b[64];

	fmt_time(r->generated_ns, a);
	fprintf(out, "carwall data residency report, %s\n", a);
	fmt_time(in->since_ns ? in->since_ns : in->log_begins_ns, a);
	fmt_time(in->until_ns, b);
	fprintf(out, "window: %s to %s; ", a, b);
	fmt_time(in->log_begins_ns, a);
	fprintf(out, "the log begins %s (%" PRIu64 " lines, %" PRIu64 " skipped)\n", a, in->lines,
		in->skipped);
	if (r->db) {
		fmt_time(db_build_ns(r->db), a);
		fprintf(out, "country database: ");
		text_put(out, r->db->path);
		fprintf(out, " (");
		text_put(out, r->db->type);
		fprintf(out, ", built %s, sha256 %s)\n", a, r->db->sha256);
	} else {
		fprintf(out, "country database: none (countries unknown)\n");
	}
	if (r->home && r->home->n) {
		fprintf(out, "home region:");
		for (size_t i = 0; i < r->home->n; i++)
			fprintf(out, " %s", r->home->countries[i]);
		fprintf(out, " (");
		text_put(out, r->home->source);
		fprintf(out, ")\n");
	} else {
		fprintf(out, "home region: not declared (regions unknown)\n");
	}
	if (!in->has_allowed)
		fprintf(out, "note: no flow inventory was read, so no allowed flows are shown; "
			     "audit records went out\n");
	fprintf(out, "\n%-20s %-8s %-40s %-11s %-7s %-12s %10s %s\n", "APP", "VERDICT",
		"DESTINATION", "PORT/PROTO", "COUNTRY", "REGION", "COUNT", "LAST");
	for (size_t i = 0; i < in->n_flows; i++) {
		const struct report_flow *f = &in->flows[i];
		char dst[1200], pp[32];

		snprintf(dst, sizeof(dst), "%s%s%s%s", f->dst, f->host ? " (" : "",
			 f->host ? f->host : "", f->host ? ")" : "");
		snprintf(pp, sizeof(pp), "%u/%.8s", f->port, f->proto);
		fmt_time(f->last_ns, a);
		text_pad(out, f->app ? f->app : "(not an app)", 20);
		text_pad(out, report_verdict_name(f->verdict), 8);
		text_pad(out, dst, 40);
		text_pad(out, pp, 11);
		text_pad(out, f->country[0] ? f->country : "-", 7);
		text_pad(out, report_region_name(f->region), 12);
		fprintf(out, "%10" PRIu64 " %s\n", f->count, a);
		if (f->region == REPORT_REGION_FOREIGN)
			cb[f->verdict] += f->count;
	}
	fprintf(out, "\ncross-border: %" PRIu64 " allowed, %" PRIu64 " in audit mode (went out), %"
		PRIu64 " refused\n", cb[REPORT_ALLOWED], cb[REPORT_AUDIT], cb[REPORT_REFUSED]);
	fprintf(out, "\npolicies in force:\n");
	for (size_t i = 0; i < in->n_policies; i++) {
		const struct report_policy *p = &in->policies[i];

		fmt_time(p->from_ns, a);
		fmt_time(p->to_ns, b);
		char short_hash[17];

		snprintf(short_hash, sizeof(short_hash), "%s", p->sha256 ? p->sha256 : "-");
		fprintf(out, "  %s to %s  ", a, b);
		text_pad(out, p->state, 11);
		fprintf(out, "sha256 ");
		text_put(out, short_hash);
		if (p->bundle_id) {
			fprintf(out, "  bundle ");
			text_put(out, p->bundle_id);
			fprintf(out, " version %" PRId64, p->bundle_version);
		} else {
			fprintf(out, "  %s", p->is_signed ? "signed" : "unsigned");
		}
		fputc('\n', out);
	}
	fprintf(out, "agent not running (enforcement stays pinned, nothing logged):%s\n",
		in->n_gaps ? "" : " never");
	for (size_t i = 0; i < in->n_gaps; i++) {
		fmt_time(in->gaps[i].from_ns, a);
		fmt_time(in->gaps[i].to_ns, b);
		fprintf(out, "  %s%s to %s\n", in->gaps[i].clean ? "" : "at the latest ", a, b);
	}
	fprintf(out, "events dropped:%s\n", in->n_dropped ? "" : " none");
	for (size_t i = 0; i < in->n_dropped; i++) {
		fmt_time(in->dropped[i].at_ns, a);
		fprintf(out, "  %s %" PRIu64 " of ", a, in->dropped[i].count);
		text_put(out, in->dropped[i].app ? in->dropped[i].app : "(not an app)");
		fputc('\n', out);
	}
	fprintf(out, "consent changes:%s\n", in->n_consent ? "" : " none recorded");
	for (size_t i = 0; i < in->n_consent; i++) {
		fmt_time(in->consent[i].at_ns, a);
		fprintf(out, "  %s ", a);
		text_put(out, in->consent[i].name);
		fputc(' ', out);
		text_put(out, in->consent[i].state);
		fputc('\n', out);
	}
	return ferror(out) ? -EIO : 0;
}

/* ---- HTML ------------------------------------------------------------------------------------ */

void report_html_escape(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&#39;", out);
			break;
		default:
			fputc(*p >= 0x20 && *p < 0x7f ? *p : '?', out);
		}
	}
}

#define E(s) report_html_escape(out, (s))

static const char *const home_colors[] = { "#1b5e20", "#43a047", "#81c784", "#2e7d32" };
static const char *const foreign_colors[] = { "#bf360c", "#f4511e", "#ff8a65", "#e65100" };
static const char *const unknown_colors[] = { "#616161", "#9e9e9e", "#bdbdbd", "#757575" };
static const char *const policy_colors[] = { "#1565c0", "#6a1b9a", "#00838f", "#4527a0",
					     "#0277bd", "#283593" };

static const char *region_color(enum report_region_class c, size_t i)
{
	if (c == REPORT_REGION_HOME)
		return home_colors[i % 4];
	if (c == REPORT_REGION_FOREIGN)
		return foreign_colors[i % 4];
	return unknown_colors[i % 4];
}

static void html_td(FILE *out, const char *s)
{
	fputs("<td>", out);
	E(s ? s : "-");
	fputs("</td>", out);
}

/*
 * One stacked bar: the flows of one kind (went out, or refused) of an app, by country, each
 * segment's width its share. Tooltips are SVG <title> elements: no script.
 */
static void svg_bar(FILE *out, const char *label, const struct country_sum *sums, size_t n,
		    bool out_bound, double y)
{
	const double x0 = 150, width = 560;
	uint64_t total = 0;
	double x = x0;

	for (size_t k = 0; k < n; k++)
		total += out_bound ? sums[k].v[REPORT_ALLOWED] + sums[k].v[REPORT_AUDIT]
				   : sums[k].v[REPORT_REFUSED];
	fprintf(out, "<text x=\"0\" y=\"%.1f\" class=\"l\">%s</text>\n", y + 15, label);
	if (!total) {
		fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"22\" "
			     "class=\"empty\"/><text x=\"%.1f\" y=\"%.1f\" class=\"l\">none</text>\n",
			x0, y, width, x0 + 6, y + 15);
		return;
	}
	for (size_t k = 0; k < n; k++) {
		uint64_t c = out_bound ? sums[k].v[REPORT_ALLOWED] + sums[k].v[REPORT_AUDIT]
				       : sums[k].v[REPORT_REFUSED];
		double w = width * (double)c / (double)total;

		if (!c)
			continue;
		fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"22\" fill=\"%s\">"
			     "<title>",
			x, y, w, region_color(sums[k].region, k));
		E(sums[k].country[0] ? sums[k].country : "unknown country");
		fprintf(out, " (%s): %" PRIu64 "</title></rect>\n",
			report_region_name(sums[k].region), c);
		if (w >= 26) {
			fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" class=\"seg\">", x + 4, y + 15);
			E(sums[k].country[0] ? sums[k].country : "??");
			fputs("</text>\n", out);
		}
		x += w;
	}
	fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" class=\"l\">%" PRIu64 "</text>\n", x0 + width + 8,
		y + 15, total);
}

static void html_app_chart(FILE *out, const struct report_input *in, size_t b, size_t e,
			   struct country_sum *sums)
{
	size_t n = sum_countries(in, b, e, sums);

	fputs("<h3>", out);
	E(in->flows[b].app ? in->flows[b].app : "(not an app: below the guards)");
	fputs("</h3>\n<svg width=\"780\" height=\"64\" viewBox=\"0 0 780 64\" role=\"img\">\n", out);
	svg_bar(out, "went out", sums, n, true, 4);
	svg_bar(out, "refused", sums, n, false, 36);
	fputs("</svg>\n<p class=\"legend\">", out);
	for (size_t k = 0; k < n; k++) {
		fprintf(out, "<span class=\"sw\" style=\"background:%s\"></span>",
			region_color(sums[k].region, k));
		E(sums[k].country[0] ? sums[k].country : "unknown");
		fprintf(out, " %s: %" PRIu64 " out, %" PRIu64 " refused &nbsp; ",
			report_region_name(sums[k].region),
			sums[k].v[REPORT_ALLOWED] + sums[k].v[REPORT_AUDIT], sums[k].v[REPORT_REFUSED]);
	}
	fputs("</p>\n", out);
}

struct axis {
	int64_t t0, t1;
	double x0, width;
};

static double axis_x(const struct axis *ax, int64_t t)
{
	if (t < ax->t0)
		t = ax->t0;
	if (t > ax->t1)
		t = ax->t1;
	return ax->x0 + ax->width * (double)(t - ax->t0) / (double)(ax->t1 - ax->t0);
}

/* The timeline: policies in force, agent not running, events dropped, consent changes. */
static void html_timeline(FILE *out, const struct report_input *in)
{
	struct axis ax = { .t0 = in->since_ns, .t1 = in->until_ns, .x0 = 130, .width = 800 };
	char t[64];

	if (!ax.t0 || ax.t0 < in->log_begins_ns)
		ax.t0 = in->log_begins_ns;
	for (size_t i = 0; i < in->n_policies; i++)
		if (in->policies[i].from_ns && in->policies[i].from_ns < ax.t0 && !in->since_ns)
			ax.t0 = in->policies[i].from_ns;
	if (!ax.t0 || ax.t1 <= ax.t0)
		ax.t0 = ax.t1 - 1000000000;
	fputs("<svg width=\"960\" height=\"170\" viewBox=\"0 0 960 170\" role=\"img\">\n", out);
	fputs("<text x=\"0\" y=\"27\" class=\"l\">policy in force</text>\n"
	      "<text x=\"0\" y=\"63\" class=\"l\">agent not running</text>\n"
	      "<text x=\"0\" y=\"95\" class=\"l\">events dropped</text>\n"
	      "<text x=\"0\" y=\"127\" class=\"l\">consent</text>\n",
	      out);
	fprintf(out, "<rect x=\"%.1f\" y=\"10\" width=\"%.1f\" height=\"128\" class=\"frame\"/>\n",
		ax.x0, ax.width);
	for (size_t i = 0; i < in->n_policies; i++) {
		const struct report_policy *p = &in->policies[i];
		double x = axis_x(&ax, p->from_ns), w = axis_x(&ax, p->to_ns) - x;
		const char *fill = !strcmp(p->state, "in-force")      ? policy_colors[i % 6]
				   : !strcmp(p->state, "fail-closed") ? "#b71c1c"
								      : "#9e9e9e";

		if (p->to_ns < ax.t0 || w <= 0)
			continue;
		fprintf(out, "<rect x=\"%.1f\" y=\"12\" width=\"%.1f\" height=\"26\" fill=\"%s\" "
			     "stroke=\"#fff\"><title>",
			x, w < 1 ? 1 : w, fill);
		E(p->state);
		fputs(" ", out);
		E(p->bundle_id ? p->bundle_id : "");
		if (p->bundle_version >= 0)
			fprintf(out, " version %" PRId64, p->bundle_version);
		fputs(" sha256 ", out);
		E(p->sha256 ? p->sha256 : "-");
		fputs("</title></rect>\n", out);
		if (w >= 60) {
			fprintf(out, "<text x=\"%.1f\" y=\"29\" class=\"seg\">", x + 4);
			if (p->bundle_version >= 0)
				fprintf(out, "v%" PRId64 " ", p->bundle_version);
			if (p->sha256) {
				char short_hash[9];

				snprintf(short_hash, sizeof(short_hash), "%s", p->sha256);
				E(short_hash);
			} else
				E(p->state);
			fputs("</text>\n", out);
		}
	}
	for (size_t i = 0; i < in->n_gaps; i++) {
		double x = axis_x(&ax, in->gaps[i].from_ns), w = axis_x(&ax, in->gaps[i].to_ns) - x;

		if (in->gaps[i].to_ns < ax.t0)
			continue;
		fprintf(out, "<rect x=\"%.1f\" y=\"48\" width=\"%.1f\" height=\"22\" class=\"gap\">"
			     "<title>agent not running</title></rect>\n",
			x, w < 2 ? 2 : w);
	}
	for (size_t i = 0; i < in->n_dropped; i++) {
		double x = axis_x(&ax, in->dropped[i].at_ns);

		if (in->dropped[i].at_ns < ax.t0)
			continue;
		fprintf(out, "<path d=\"M%.1f 80 l6 18 h-12 z\" class=\"drop\"><title>%" PRIu64
			     " events dropped (",
			x, in->dropped[i].count);
		E(in->dropped[i].app ? in->dropped[i].app : "not an app");
		fputs(")</title></path>\n", out);
	}
	for (size_t i = 0; i < in->n_consent; i++) {
		double x = axis_x(&ax, in->consent[i].at_ns);
		bool on = in->consent[i].state && !strcmp(in->consent[i].state, "on");

		if (in->consent[i].at_ns < ax.t0)
			continue;
		fprintf(out, "<circle cx=\"%.1f\" cy=\"122\" r=\"7\" class=\"%s\"><title>", x,
			on ? "on" : "off");
		E(in->consent[i].name);
		fputs(" ", out);
		E(in->consent[i].state);
		fputs("</title></circle>\n", out);
	}
	fmt_time(ax.t0, t);
	fprintf(out, "<text x=\"%.1f\" y=\"158\" class=\"l\">%s</text>\n", ax.x0, t);
	fmt_time(ax.t1, t);
	fprintf(out, "<text x=\"%.1f\" y=\"158\" class=\"l\" text-anchor=\"end\">%s</text>\n",
		ax.x0 + ax.width, t);
	fputs("</svg>\n", out);
}

static const char html_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	/* Nothing is loaded and nothing runs, whatever the data: only the inline style. */
	"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	"style-src 'unsafe-inline'\">\n"
	"<title>carwall data residency report</title>\n<style>\n"
	"body{font-family:sans-serif;margin:24px;color:#212121;background:#fff}\n"
	"h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}\n"
	"h3{font-size:15px;margin:14px 0 4px}\n"
	"table{border-collapse:collapse;font-size:12px;margin:6px 0}\n"
	"td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;overflow-wrap:anywhere}th{background:#eee;white-space:nowrap;overflow-wrap:normal}\n"
	".meta{font-size:13px;color:#424242}.warn{color:#b71c1c}\n"
	"svg text{font-size:12px;font-family:sans-serif}.l{fill:#212121}.seg{fill:#fff}\n"
	".empty{fill:#f5f5f5;stroke:#ccc}.frame{fill:none;stroke:#ccc}.gap{fill:#c62828}\n"
	".drop{fill:#ef6c00}.on{fill:#2e7d32}.off{fill:#c62828}\n"
	".legend{font-size:12px}.sw{display:inline-block;width:10px;height:10px;margin-right:3px}\n"
	".cb{background:#fff3e0}\n"
	"</style>\n</head>\n<body>\n";

static void html_flow_row(FILE *out, const struct report_flow *f, bool justification)
{
	char t[64], n[32];

	fprintf(out, "<tr%s>", f->region == REPORT_REGION_FOREIGN ? " class=\"cb\"" : "");
	html_td(out, f->app ? f->app : "(not an app)");
	html_td(out, f->dst);
	html_td(out, f->host);
	snprintf(n, sizeof(n), "%u", f->port);
	html_td(out, n);
	html_td(out, f->proto);
	html_td(out, report_verdict_name(f->verdict));
	html_td(out, f->country[0] ? f->country : "-");
	html_td(out, report_region_name(f->region));
	snprintf(n, sizeof(n), "%" PRIu64, f->count);
	html_td(out, n);
	fmt_time(f->first_ns, t);
	html_td(out, t);
	fmt_time(f->last_ns, t);
	html_td(out, t);
	html_td(out, f->rule);
	if (justification)
		html_td(out, f->justification ? f->justification : "none declared");
	fputs("</tr>\n", out);
}

static const char flow_header[] = "<tr><th>app</th><th>destination</th><th>host</th><th>port</th>"
				  "<th>proto</th><th>verdict</th><th>country</th><th>region</th>"
				  "<th>count</th><th>first</th><th>last</th><th>rule</th>";

int report_write_html(const struct report *r, FILE *out)
{
	const struct report_input *in = r->in;
	struct country_sum *sums = calloc(in->n_flows + 1, sizeof(*sums));
	char a[64], b[64];
	size_t n_cross = 0;

	if (!sums)
		return -ENOMEM;
	fputs(html_head, out);
	fputs("<h1>Data residency report</h1>\n<p class=\"meta\">", out);
	fmt_time(r->generated_ns, a);
	fprintf(out, "Generated %s by carwall. ", a);
	fmt_time(in->since_ns ? in->since_ns : in->log_begins_ns, a);
	fmt_time(in->until_ns, b);
	fprintf(out, "Window: %s to %s. ", a, b);
	fmt_time(in->log_begins_ns, a);
	fprintf(out, "The events log begins %s; %" PRIu64 " records read, %" PRIu64
		     " skipped (unreadable)%s.</p>\n",
		a, in->lines, in->skipped,
		in->files_failed ? ", some log files could not be read" : "");
	if (!in->has_allowed)
		fputs("<p class=\"warn\">No flow inventory was read, so no allowed flows are shown: "
		      "the flows that went out here are those of apps in audit mode.</p>\n",
		      out);
	fputs("<h2>Country database</h2>\n", out);
	if (r->db) {
		fmt_time(db_build_ns(r->db), a);
		fputs("<table><tr><th>type</th><th>description</th><th>built</th><th>sha256</th>"
		      "<th>file</th></tr>\n<tr>",
		      out);
		html_td(out, r->db->type);
		html_td(out, r->db->description);
		html_td(out, a);
		html_td(out, r->db->sha256);
		html_td(out, r->db->path);
		fputs("</tr></table>\n", out);
	} else {
		fputs("<p class=\"warn\">None: the country of each destination is unknown.</p>\n", out);
	}
	fputs("<h2>Home region</h2>\n<p>", out);
	if (r->home && r->home->n) {
		for (size_t i = 0; i < r->home->n; i++) {
			E(r->home->countries[i]);
			fputs(" ", out);
		}
		fputs("(from ", out);
		E(r->home->source);
		fputs(")</p>\n", out);
	} else {
		fputs("Not declared: no flow is classed home or cross-border.</p>\n", out);
	}

	fputs("<h2>Flows by country, per app</h2>\n", out);
	if (!in->n_flows)
		fputs("<p>No flow in the window.</p>\n", out);
	for (size_t i = 0; i < in->n_flows;) {
		size_t e = app_end(in, i);

		html_app_chart(out, in, i, e, sums);
		i = e;
	}

	fputs("<h2>Cross-border flows</h2>\n", out);
	for (size_t i = 0; i < in->n_flows; i++)
		n_cross += in->flows[i].region == REPORT_REGION_FOREIGN;
	if (n_cross) {
		fprintf(out, "<table>%s<th>justification</th></tr>\n", flow_header);
		for (size_t i = 0; i < in->n_flows; i++)
			if (in->flows[i].region == REPORT_REGION_FOREIGN)
				html_flow_row(out, &in->flows[i], true);
		fputs("</table>\n", out);
	} else {
		fputs("<p>None.</p>\n", out);
	}

	fputs("<h2>Timeline</h2>\n", out);
	html_timeline(out, in);
	fputs("<h3>Policies in force</h3>\n<table><tr><th>from</th><th>to</th><th>state</th>"
	      "<th>sha256</th><th>bundle id</th><th>version</th><th>signed</th><th>file</th>"
	      "<th>why</th></tr>\n",
	      out);
	for (size_t i = 0; i < in->n_policies; i++) {
		const struct report_policy *p = &in->policies[i];
		char v[32];

		fmt_time(p->from_ns, a);
		fmt_time(p->to_ns, b);
		snprintf(v, sizeof(v), "%" PRId64, p->bundle_version);
		fputs("<tr>", out);
		html_td(out, a);
		html_td(out, b);
		html_td(out, p->state);
		html_td(out, p->sha256);
		html_td(out, p->bundle_id);
		html_td(out, p->bundle_version >= 0 ? v : NULL);
		html_td(out, p->is_signed ? "yes" : "no");
		html_td(out, p->path);
		html_td(out, p->why);
		fputs("</tr>\n", out);
	}
	fputs("</table>\n<h3>Agent not running</h3>\n<p class=\"meta\">The pinned programs go on "
	      "enforcing the policy in force; nothing is logged.</p>\n",
	      out);
	if (!in->n_gaps)
		fputs("<p>Never in the window.</p>\n", out);
	else
		fputs("<table><tr><th>from</th><th>to</th><th>how it stopped</th></tr>\n", out);
	for (size_t i = 0; i < in->n_gaps; i++) {
		fmt_time(in->gaps[i].from_ns, a);
		fmt_time(in->gaps[i].to_ns, b);
		fputs("<tr>", out);
		html_td(out, a);
		html_td(out, b);
		html_td(out, in->gaps[i].clean ? "stopped" : "ended without a record (from: its last)");
		fputs("</tr>\n", out);
	}
	if (in->n_gaps)
		fputs("</table>\n", out);
	fputs("<h3>Events dropped</h3>\n", out);
	if (!in->n_dropped)
		fputs("<p>None.</p>\n", out);
	else
		fputs("<table><tr><th>time</th><th>app</th><th>events</th></tr>\n", out);
	for (size_t i = 0; i < in->n_dropped; i++) {
		char n[32];

		fmt_time(in->dropped[i].at_ns, a);
		snprintf(n, sizeof(n), "%" PRIu64, in->dropped[i].count);
		fputs("<tr>", out);
		html_td(out, a);
		html_td(out, in->dropped[i].app ? in->dropped[i].app : "(not an app)");
		html_td(out, n);
		fputs("</tr>\n", out);
	}
	if (in->n_dropped)
		fputs("</table>\n", out);
	fputs("<h3>Consent changes</h3>\n", out);
	if (!in->n_consent)
		fputs("<p>None recorded.</p>\n", out);
	else
		fputs("<table><tr><th>time</th><th>switch</th><th>state</th></tr>\n", out);
	for (size_t i = 0; i < in->n_consent; i++) {
		fmt_time(in->consent[i].at_ns, a);
		fputs("<tr>", out);
		html_td(out, a);
		html_td(out, in->consent[i].name);
		html_td(out, in->consent[i].state);
		fputs("</tr>\n", out);
	}
	if (in->n_consent)
		fputs("</table>\n", out);

	fputs("<h2>All flows</h2>\n", out);
	fprintf(out, "<table>%s</tr>\n", flow_header);
	for (size_t i = 0; i < in->n_flows; i++)
		html_flow_row(out, &in->flows[i], false);
	fputs("</table>\n</body>\n</html>\n", out);
	free(sums);
	return ferror(out) ? -EIO : 0;
}
