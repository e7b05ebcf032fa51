/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The report input: the agent's events log (layout and records: events.h) and its flow
 * inventory (inventory.h) read back into what `carwall report residency` says, offline, with no
 * agent and no kernel.
 *
 *  - flows, per app: destination (address, host name when the app learned it), port, protocol,
 *    what happened (allowed, refused, audit: went out but would be refused), the rule, and the
 *    records' counts added up with the first and last time; the country of each destination is
 *    set afterwards by report_set_countries() (a lookup given by the caller: report_geo_lookup()
 *    over geo.h's country database). Each kind comes from one source, so nothing is counted
 *    twice: allowed flows from the inventory (the only place the agent keeps them: counts,
 *    first/last, host, rule index); refused and audited ones from the events log (the evidence
 *    of each refusal, also of those the inventory does not keep: the guards', a socket kind or
 *    family refused, and those it ages out first); an "allowed" record in the log is not the
 *    agent's and is skipped;
 *  - the timeline: the policies in force over intervals (hash, bundle id and version), the
 *    intervals the agent was not running (enforcement stays pinned then, but nothing is logged),
 *    events the kernel dropped, consent changes.
 *
 * Hostile input: every line is parsed on its own; a line that is too long, not JSON, or not a
 * record is skipped and counted (never an error, never a crash); strings are kept as they are
 * (the renderers escape them). Everything is bounded (REPORT_MAX_*): past a bound, records are
 * counted as skipped and the report says so. Records are folded, so memory grows with distinct
 * flows, not with the log's length.
 *
 * What a report cannot see: records rotated out of the log (its first record says where it
 * begins), allowed flows the inventory aged out or had not saved yet (--inventory-save-interval),
 * the times of allowed flows finer than a second (the inventory keeps seconds).
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define REPORT_MAX_LINE 8192	      /* bytes of one record; longer lines are skipped */
#define REPORT_MAX_FILE_BYTES (32u << 20) /* one log file (the agent keeps each < 1 MiB) */
#define REPORT_MAX_FLOWS 65536	      /* distinct flows */
#define REPORT_MAX_EVENTS 65536	      /* lifecycle records */
#define REPORT_MAX_STR 1100	      /* a string field (a host name in text is at most 1100) */
#define REPORT_MAX_HOME 64	      /* countries of a home region */

enum report_verdict {
	REPORT_ALLOWED = 0, /* went out: a rule allowed it (from the flow inventory) */
	REPORT_AUDIT,	    /* went out in audit mode; would be refused */
	REPORT_REFUSED,	    /* refused with EPERM */
	REPORT_VERDICTS,
};

enum report_region_class {
	REPORT_REGION_UNKNOWN = 0, /* no country for the address, or no home region declared */
	REPORT_REGION_HOME,
	REPORT_REGION_FOREIGN, /* a cross-border flow */
};

struct report_flow {
	char *app;  /* NULL: not an app of the policy (below the guards) */
	char *dst;  /* address as text */
	char *host; /* the name the app learned it for, NULL */
	char *proto;
	char *rule; /* "default deny", the rule as the record names it, "rule #N" (inventory) */
	int64_t rule_index; /* the policy's global rule index; -1 when the record names none */
	unsigned port;
	enum report_verdict verdict;
	uint64_t count;
	int64_t first_ns, last_ns;
	char country[3]; /* ISO 3166 alpha-2, "" unknown (report_set_countries) */
	enum report_region_class region;
	const char *justification; /* an allowed flow's rule's cross-border text (policy's), NULL */
};

/* A policy in force from from_ns to to_ns (to_ns: the next policy, or the report's end). */
struct report_policy {
	int64_t from_ns, to_ns;
	char *state; /* "in-force", "none", "fail-closed", "adopted", "unknown" (before the log) */
	char *sha256, *path, *bundle_id, *why; /* NULL when absent */
	int64_t bundle_version; /* -1 when not a bundle */
	bool is_signed;
};

/* The agent was not running from from_ns to to_ns. clean: it stopped (else it ended without a
 * record, and from_ns is its last record: the gap began at the latest then). */
struct report_gap {
	int64_t from_ns, to_ns;
	bool clean;
};

/* Events dropped (count) or a consent switch changed (name, state), at at_ns. */
struct report_mark {
	int64_t at_ns;
	char *app;   /* dropped: the app, NULL below the guards; consent: NULL */
	char *name;  /* consent: the switch */
	char *state; /* consent: "on" / "off" */
	uint64_t count;
};

struct report_input {
	struct report_flow *flows;
	size_t n_flows, cap_flows;
	struct report_policy *policies;
	size_t n_policies, cap_policies;
	struct report_gap *gaps;
	size_t n_gaps, cap_gaps;
	struct report_mark *dropped, *consent;
	size_t n_dropped, cap_dropped, n_consent, cap_consent;

	int64_t since_ns, until_ns; /* the window: records before since_ns are left out of flows */
	int64_t log_begins_ns;	    /* the first record read, 0 when none */
	uint64_t lines, skipped;    /* lines read, of which skipped (not a record, past a bound) */
	uint64_t files;		    /* log files read */
	uint64_t files_failed;	    /* log files that could not be read (too large, not regular) */
	bool has_allowed;	    /* the flow inventory was read (allowed flows recorded) */
	bool has_lifecycle;	    /* the log holds the agent's lifecycle records */

	/* While reading: the lifecycle records, sorted and turned into intervals by finish. */
	struct report_raw {
		int64_t at_ns;
		int kind;
		char *a, *b, *c, *d, *e; /* per kind: see report.c */
		int64_t n;
		bool flag;
		size_t seq; /* read order, for records of the same time */
	} *raw;
	size_t n_raw, cap_raw;
	void *index; /* flow folding while reading */
};

/* An empty input for records of [since_ns, until_ns] (since_ns 0: all). */
int report_input_new(int64_t since_ns, int64_t until_ns, struct report_input **ret);
void report_input_free(struct report_input *in);

/* One line of a log (no newline needed). Returns 0, or -EINVAL when it was skipped (counted),
 * -ENOMEM. */
int report_input_add_line(struct report_input *in, const char *line, size_t len);
/* Every line of a buffer (a log file's bytes); a last line without newline is read too. */
int report_input_add_buffer(struct report_input *in, const char *data, size_t size);
/* Every log file of a state folder: <dir>/events/<share>.jsonl(.1) and the older agents' log.
 * -ENOENT when the folder has no events folder nor log. */
int report_input_read_state_dir(struct report_input *in, const char *state_dir);
/* The allowed flows of an inventory (its refused and audited ones are the events log's). A
 * record past REPORT_MAX_FLOWS is counted as skipped. 0 or -ENOMEM. */
struct inventory;
int report_input_add_inventory(struct report_input *in, const struct inventory *inv);
/* The inventory file at path (INVENTORY_FILE of a state folder): 0 (-ENOENT: none yet, nothing
 * added), or an error with a reason (a file that is not an inventory). */
int report_input_read_inventory(struct report_input *in, const char *path, char *reason,
				size_t reason_size);
/* After the last line: the timeline built (policies, gaps, marks sorted in time), flows sorted
 * by app, then count. */
int report_input_finish(struct report_input *in);

/* "2026-01-02T03:04:05.123456Z" (events_time_format) to ns; -EINVAL. */
int report_time_parse(const char *s, int64_t *ret_ns);
/* "90s", "30m", "12h", "7d", "2w" or seconds alone, to ns; -EINVAL, -ERANGE. */
int report_duration_parse(const char *s, int64_t *ret_ns);

/* ---- countries and the home region ---------------------------------------------------------- */

/*
 * The home region: ISO 3166 alpha-2 codes, upper case. From the policy's `home-region:`
 * (report_region_from_policy()), or `--home-region`, which overrides it.
 */
struct report_region {
	char countries[REPORT_MAX_HOME][3];
	size_t n;
	char source[256]; /* where it comes from, for the report: "--home-region", "policy FILE" */
};

/* "de,fr,XA" (commas or blanks; two letters each, upper-cased) into r. -EINVAL, -E2BIG. */
int report_region_parse(const char *list, const char *source, struct report_region *r);
bool report_region_has(const struct report_region *r, const char *country);

struct policy;
/* The countries of p's `home-region:` (a country, a `regions:` group or `eu`), source "policy
 * (home-region: NAME)": 0, -ENODATA when p declares none, -E2BIG past REPORT_MAX_HOME. */
int report_region_from_policy(const struct policy *p, struct report_region *ret);
/* The `cross-border:` justification of p's rule of global index `index` (policy_rule.index),
 * NULL when it has none or p has no such rule. */
const char *report_rule_justification(const struct policy *p, int64_t index);

/* The country of an address ("" when unknown): 0, or < 0 when the lookup failed. */
typedef int (*report_lookup_fn)(const char *addr, char ret_country[3], void *userdata);
/* report_lookup_fn over a country database (userdata: a struct geo_db, geo.h): the code upper
 * case, "" when the database has none; -EINVAL for an address that is not one, -EIO. */
int report_geo_lookup(const char *addr, char ret_country[3], void *userdata);

/*
 * Each flow's country (lookup NULL: all unknown), its region class against `home` (NULL or
 * empty: unknown), and, for an allowed flow, the justification of its rule (policy NULL:
 * none). Returns the number
 * of lookups that failed (their flows stay unknown).
 */
size_t report_set_countries(struct report_input *in, report_lookup_fn lookup, void *userdata,
			    const struct report_region *home, const struct policy *policy);

const char *report_verdict_name(enum report_verdict v);
const char *report_region_name(enum report_region_class c);

/* ---- output ---------------------------------------------------------------------------------- */

struct geo_info;

struct report {
	const struct report_input *in;
	const struct geo_info *db; /* the country database used (geo_info()); NULL: none */
	const struct report_region *home; /* NULL: no home region declared */
	int64_t generated_ns;
};

/* The whole report as JSON (owned by the caller). */
struct json_object *report_to_json(const struct report *r);
/* A text summary for a terminal. */
int report_write_text(const struct report *r, FILE *out);
/*
 * One self-contained HTML page: inline CSS and SVG, no script, no link to anything (a
 * Content-Security-Policy of default-src 'none' besides); every string from the log escaped.
 */
int report_write_html(const struct report *r, FILE *out);
/* s escaped for HTML text and attribute values: &<>"' as entities, control bytes and
 * bytes >= 0x80 as '?'. */
void report_html_escape(FILE *out, const char *s);
