// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall report residency [--since DURATION] [--json] [--html FILE] ...`: per app, where its
 * flows went (country, home region or cross-border), what was allowed and refused, and over
 * which intervals which policy was in force, from the agent's events log and flow inventory,
 * offline (the report input: lib/report.h; countries: lib/geo.h).
 *
 * The policy (home region, justifications): --policy FILE, else the file the events log's last
 * "policy" record names, when its bytes are still those that went in force (same sha256). A
 * YAML policy or a bundle (its payload: the agent verified it before it went in force; the
 * report only reads declarations from it). --home-region overrides the policy's home region.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "bundle_digest.h"
#include "geo.h"
#include "inventory.h"
#include "policy.h"
#include "report.h"
#include "util.h"

#define REPORT_DEFAULT_STATE_DIR "/var/lib/carwall"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct report_input *, report_input_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct geo_db *, geo_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: carwall report residency [--since DURATION] [--json] [--html FILE]\n"
		"                                [--geo-db FILE] [--home-region CC[,CC...]]\n"
		"                                [--policy FILE] [--state-dir DIR]\n"
		"\n"
		"Where each app's flows went, by country: home region or cross-border, allowed and\n"
		"refused; the policies in force over time (hash, bundle id and version), when the\n"
		"agent was not running, events dropped, consent changes. Read from the agent's\n"
		"events log (refused, audited, lifecycle) and flow inventory (allowed), offline.\n"
		"  --since DURATION     only the flows of the last DURATION (90s, 30m, 12h, 7d, 2w)\n"
		"  --json               the report as JSON\n"
		"  --html FILE          also write it as one self-contained HTML page (no script,\n"
		"                       nothing loaded from anywhere)\n"
		"  --geo-db FILE        a country database in MaxMind DB format (default\n"
		"                       $CARWALL_GEO_DB or %s when it exists)\n"
		"  --home-region LIST   the home region's ISO 3166 country codes, instead of the\n"
		"                       policy's home-region\n"
		"  --policy FILE        the policy (YAML or bundle) for home region and cross-border\n"
		"                       justifications (default: the file of the last policy in\n"
		"                       force, when it is unchanged)\n"
		"  --state-dir DIR      the agent's state folder (default $CARWALL_STATE_DIR or %s)\n",
		GEO_DEFAULT_DB, REPORT_DEFAULT_STATE_DIR);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The HTML page into path: a temporary file renamed over it, so it is whole or absent. */
static int write_html(const struct report *rep, const char *path)
{
	_cleanup_free_ char *tmp = NULL;
	FILE *f;
	int r;

	if (asprintf(&tmp, "%s.tmp-%d", path, (int)getpid()) < 0)
		return -ENOMEM;
	f = fopen(tmp, "we");
	if (!f)
		return negative_errno();
	r = report_write_html(rep, f);
	if (fclose(f) != 0 && r >= 0)
		r = negative_errno();
	if (r >= 0 && rename(tmp, path) < 0)
		r = negative_errno();
	if (r < 0)
		unlink(tmp);
	return r;
}

/*
 * The policy of path: a bundle's payload, or the whole file (YAML). want_sha256 (may be NULL):
 * the file must still be the one that went in force. 0, or a negative errno with a reason.
 */
static int load_policy(const char *path, const char *want_sha256, struct policy **ret,
		       char *reason, size_t reason_size)
{
	_cleanup_free_ char *data = NULL;
	struct bundle_envelope env;
	struct bundle_error berr;
	struct policy_error perr = {};
	uint8_t md[BUNDLE_SHA256_BYTES];
	char sha[BUNDLE_SHA256_HEX_LEN + 1];
	size_t size;
	int r;

	r = bundle_read_file(path, &data, &size, &berr);
	if (r < 0) {
		snprintf(reason, reason_size, "%s: %s", path, berr.message);
		return r;
	}
	if (want_sha256) {
		bundle_sha256(data, size, md);
		bundle_hex(md, sizeof(md), sha);
		if (strcmp(sha, want_sha256)) {
			snprintf(reason, reason_size,
				 "%s changed since it went in force (sha256 %s, then %s)", path, sha,
				 want_sha256);
			return -ESTALE;
		}
	}
	/* A file with no signature block is a plain policy. */
	if (bundle_split(data, size, &env, &berr) == 0)
		size = env.payload_size;
	r = policy_parse_buffer(path, data, size, ret, &perr);
	if (r < 0)
		policy_error_format(&perr, reason, reason_size);
	return r;
}

int cmd_report_residency(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "html", required_argument, NULL, 'H' },
		{ "geo-db", required_argument, NULL, 'g' },
		{ "home-region", required_argument, NULL, 'R' },
		{ "policy", required_argument, NULL, 'p' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	_cleanup_(report_input_freep) struct report_input *in = NULL;
	_cleanup_(geo_freep) struct geo_db *geo = NULL;
	_cleanup_(policy_freep) struct policy *policy = NULL;
	const char *state_dir = getenv("CARWALL_STATE_DIR"), *geo_path = getenv("CARWALL_GEO_DB");
	const char *html = NULL, *home_list = NULL, *policy_path = NULL;
	_cleanup_free_ char *inventory_path = NULL;
	struct report_region home = {};
	char reason[1024] = "";
	bool have_home = false, geo_explicit = false;
	int64_t now = now_ns(), since = 0;
	struct report rep = {};
	int o, r;

	if (!state_dir || !*state_dir)
		state_dir = REPORT_DEFAULT_STATE_DIR;
	if (geo_path && *geo_path)
		geo_explicit = true;
	else
		geo_path = GEO_DEFAULT_DB;
	optind = 0;
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			r = report_duration_parse(optarg, &since);
			if (r < 0) {
				fprintf(stderr, "carwall report: --since '%s': a duration such as 90s, "
						"30m, 12h, 7d or 2w\n", optarg);
				return EXIT_USAGE;
			}
			since = now - since;
			break;
		case 'j':
			c->json = true;
			break;
		case 'H':
			html = optarg;
			break;
		case 'g':
			geo_path = optarg;
			geo_explicit = true;
			break;
		case 'R':
			home_list = optarg;
			break;
		case 'p':
			policy_path = optarg;
			break;
		case 'd':
			state_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "carwall report residency: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (home_list) {
		r = report_region_parse(home_list, "--home-region", &home);
		if (r < 0)
			return cli_fail(c, "--home-region '%s': ISO 3166 two-letter codes separated "
					   "by commas, at most %d",
					home_list, REPORT_MAX_HOME);
		have_home = true;
	}

	r = report_input_new(since, now, &in);
	if (r >= 0)
		r = report_input_read_state_dir(in, state_dir);
	if (r < 0)
		return cli_fail(c, "cannot read the events log in %s: %s", state_dir, strerror(-r));
	/* Allowed flows: the inventory's (none yet: the agent has not saved one). */
	if (asprintf(&inventory_path, "%s/%s", state_dir, INVENTORY_FILE) < 0)
		return cli_fail(c, "out of memory");
	r = report_input_read_inventory(in, inventory_path, reason, sizeof(reason));
	if (r < 0 && r != -ENOENT)
		return cli_fail(c, "cannot read the flow inventory: %s",
				reason[0] ? reason : strerror(-r));
	r = report_input_finish(in);
	if (r < 0)
		return cli_fail(c, "reading the events log: %s", strerror(-r));

	/* The policy: the one named (an error when it cannot be read), else the last one in force
	 * if its file is unchanged (else the report goes on without it, and says so). */
	if (policy_path) {
		r = load_policy(policy_path, NULL, &policy, reason, sizeof(reason));
		if (r < 0)
			return cli_fail(c, "%s", reason);
	} else if (in->n_policies && in->policies[in->n_policies - 1].path &&
		   in->policies[in->n_policies - 1].sha256) {
		const struct report_policy *last = &in->policies[in->n_policies - 1];

		r = load_policy(last->path, last->sha256, &policy, reason, sizeof(reason));
		if (r < 0) {
			policy = NULL;
			fprintf(stderr,
				"carwall report: the policy in force is not read (%s): no home "
				"region nor justification from it; give --policy FILE\n",
				reason);
		}
	}
	if (policy && !have_home) {
		r = report_region_from_policy(policy, &home);
		if (r == -E2BIG)
			return cli_fail(c, "the policy's home region '%s' has more than %d countries",
					policy->residency.home.name, REPORT_MAX_HOME);
		if (r >= 0) {
			snprintf(home.source, sizeof(home.source), "policy %s (home-region: %s)",
				 policy->path ? policy->path : "", policy->residency.home.name);
			have_home = true;
		}
	}

	if (geo_explicit || access(geo_path, F_OK) == 0) {
		r = geo_open(geo_path, &geo, reason, sizeof(reason));
		if (r < 0)
			return cli_fail(c, "%s", reason);
	}
	report_set_countries(in, geo ? report_geo_lookup : NULL, geo, have_home ? &home : NULL,
			     policy);

	rep = (struct report){ .in = in,
			       .db = geo ? geo_info(geo) : NULL,
			       .home = have_home ? &home : NULL,
			       .generated_ns = now };
	if (html) {
		r = write_html(&rep, html);
		if (r < 0)
			return cli_fail(c, "cannot write %s: %s", html, strerror(-r));
	}
	if (c->json) {
		struct json_object *j = report_to_json(&rep);

		cli_print_json(j);
		json_object_put(j);
	} else {
		report_write_text(&rep, stdout);
	}
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
