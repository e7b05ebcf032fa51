/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The `carwall` command: one file per OBJECT (bpftool's way), carwall.c holding main, the global
 * options and the command table. What the object files share is declared here.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

/* Exit codes: 0 success, 1 failure, 2 usage, 3 `status` with no agent running. */
#define EXIT_USAGE 2
#define EXIT_NO_AGENT 3

struct cli {
	bool json;
	bool quiet;
	bool force;
	bool strict_ok; /* the command takes --strict */
	bool strict;
	const char *run_dir;
	const char *pin_dir;
	const char *app;
};

/* ---- carwall.c: what every command uses ---------------------------------------------------- */

void cli_print_json(struct json_object *o);
/* Report an error the way the output mode wants it; returns exit code 1. */
int cli_fail(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_parse(struct cli *c, int argc, char **argv, bool with_app, bool with_force);
const char *json_str(struct json_object *o, const char *key);
int cli_request(const struct cli *c, const char *request, const char *what,
		struct json_object **ret_reply);
int64_t json_int(struct json_object *o, const char *key);
bool json_flag(struct json_object *o, const char *key);
/* status.c: the pin folder, --pin-dir or the default. */
const char *pin_dir_of(const struct cli *c);

/* ---- the commands of the table (argv[0]: the object, or the command after it) ---------------- */

int cmd_run(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_reload(struct cli *c, int argc, char **argv);
int cmd_unload(struct cli *c, int argc, char **argv);
int cmd_policy_check(struct cli *c, int argc, char **argv);
int cmd_stats(struct cli *c, int argc, char **argv);
int cmd_names(struct cli *c, int argc, char **argv);
int cmd_consent(struct cli *c, int argc, char **argv);
int cmd_flows(struct cli *c, int argc, char **argv);
int cmd_policy_suggest(struct cli *c, int argc, char **argv);
int cmd_policy_replay(struct cli *c, int argc, char **argv);
int cmd_bundle(struct cli *c, int argc, char **argv);
/* `carwall report residency`: see report.c. */
int cmd_report_residency(struct cli *c, int argc, char **argv);
/* `carwall geo lookup`: see geo.c. */
int cmd_geo_lookup(struct cli *c, int argc, char **argv);

/* ---- flows.c: reading the flow inventory (`flows`, `policy suggest`, `policy replay`) ---- */

struct inventory;
struct inventory_record;
struct option;

struct flows_source {
	const char *state_dir;	    /* --state-dir; NULL: $CARWALL_STATE_DIR or the default */
	const char *inventory_file; /* --inventory FILE instead */
};

struct flows_filter {
	const char *app; /* NULL: every app */
	bool has_since;
	int64_t since_s; /* last seen within this many seconds */
	bool has_verdict;
	uint8_t verdict; /* enum inventory_verdict */
};

/* "N", "Ns", "Nm", "Nh", "Nd" into seconds; -EINVAL otherwise. */
int flows_duration_parse(const char *s, int64_t *ret);
int flows_source_load(const struct flows_source *src, struct inventory **ret, char *reason,
		      size_t reason_size);
bool flows_filter_match(const struct flows_filter *f, const struct inventory_record *r);
void flows_domain_of(const char *host, char *buf, size_t size);
void flows_format_addr_port(const struct inventory_record *r, char *buf, size_t size);
void flows_format_time(int64_t t, char *buf, size_t size);
int flows_parse_options(struct cli *c, int argc, char **argv, struct flows_source *src,
			struct flows_filter *f, const struct option *extra, size_t n_extra,
			int (*on_extra)(int opt, const char *arg, void *userdata), void *userdata,
			void (*usage)(FILE *f));

/* `carwall app wait-managed`: see app.c. */
int carwall_app_main(int argc, char **argv, bool json, bool quiet, const char *run_dir);

/*
 * `carwall bundle ...`: making, signing, verifying and inspecting signed policy bundles.
 * argv[0] is "bundle", argv[1] the command: keygen, sign, verify or inspect. `json` is true when
 * --json came before the object; it is accepted after the command too. Returns the exit code:
 * 0 success (verify: the bundle is valid), 1 failure (verify: refused, with the reason), 2 usage.
 */
int carwall_bundle_main(int argc, char **argv, bool json);

/* `carwall events`: see events.c. */
int carwall_events_main(int argc, char **argv, bool json);

/* `carwall explain`: the verdict for one flow, offline (no kernel, no agent). */

/* Exit codes of `carwall explain` (1 error and 2 usage are carwall's own). */
#define EXPLAIN_EXIT_ALLOWED 0 /* every flow asked about is allowed */
#define EXPLAIN_EXIT_REFUSED 3 /* every flow asked about is refused */
#define EXPLAIN_EXIT_PARTLY  4 /* some are allowed, some refused */

/*
 * argv[0] is "explain"; `json` is set when --json came before the object. Prints the result
 * (or the error, as JSON in JSON mode) and returns the exit code.
 */
int carwall_explain_main(int argc, char **argv, bool json);
