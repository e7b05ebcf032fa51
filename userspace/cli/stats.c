// SPDX-License-Identifier: GPL-2.0-only
/* `carwall stats`: counters per app and per rule, from the agent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void stats_print_counters(const char *name, struct json_object *app)
{
	struct json_object *c;

	if (!json_object_object_get_ex(app, "since_load", &c))
		return;
	printf("%-22s %10lld %10lld %10lld %10lld %10lld\n", name,
	       (long long)json_int(c, "allowed"), (long long)json_int(c, "refused"),
	       (long long)json_int(c, "audited"),
	       (long long)json_int(c, "events_dropped"), (long long)json_int(c, "refused_consent"));
}

/* Home-only residency: each app's flows refused (or audited) for a destination abroad. */
static void stats_print_region(struct json_object *apps)
{
	bool header = false;

	for (size_t k = 0; apps && k < json_object_array_length(apps); k++) {
		struct json_object *a = json_object_array_get_idx(apps, k), *v;

		if (!json_str(a, "id") ||
		    !json_object_object_get_ex(a, "region_refused_in_generation", &v))
			continue;
		if (!header)
			printf("\n%-22s %10s\n", "APP", "ABROAD");
		header = true;
		printf("%-22s %10lld\n", json_str(a, "id"), (long long)json_object_get_int64(v));
	}
	if (header)
		printf("(home region only: flows a rule allows, refused or audited for a "
		       "destination outside the home region, in the generation in force)\n");
}

int cmd_stats(struct cli *c, int argc, char **argv)
{
	struct json_object *reply = NULL, *apps, *rules, *ev;
	int i, r;

	i = cli_parse(c, argc, argv, false, false);
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc) {
		fprintf(stderr, "carwall stats: unexpected argument '%s'\n", argv[i]);
		return EXIT_USAGE;
	}
	r = cli_request(c, "stats", "", &reply);
	if (r < 0)
		return -r;
	if (c->json) {
		cli_print_json(reply);
		json_object_put(reply);
		return EXIT_SUCCESS;
	}
	printf("since the policy in force was loaded (carwall stats --json: since start too)\n");
	printf("%-22s %10s %10s %10s %10s %10s\n", "APP", "ALLOWED", "REFUSED", "AUDITED",
	       "EV-DROPPED", "BY-CONSENT");
	if (json_object_object_get_ex(reply, "apps", &apps))
		for (size_t k = 0; k < json_object_array_length(apps); k++) {
			struct json_object *a = json_object_array_get_idx(apps, k);
			stats_print_counters(json_str(a, "id") ? json_str(a, "id") : "(unknown apps)", a);
		}
	stats_print_region(json_object_object_get_ex(reply, "apps", &apps) ? apps : NULL);
	if (json_object_object_get_ex(reply, "rules", &rules) && json_object_array_length(rules)) {
		printf("\n%-22s %-40s %10s\n", "APP", "RULE", "ALLOWED");
		for (size_t k = 0; k < json_object_array_length(rules); k++) {
			struct json_object *rl = json_object_array_get_idx(rules, k);
			char where[300];

			snprintf(where, sizeof(where), "#%lld %s:%lld:%lld", (long long)json_int(rl, "rule"),
				 json_str(rl, "file"), (long long)json_int(rl, "line"),
				 (long long)json_int(rl, "column"));
			printf("%-22s %-40s %10lld\n", json_str(rl, "app"), where,
			       (long long)json_int(rl, "allowed"));
		}
	}
	if (json_object_object_get_ex(reply, "events", &ev))
		printf("\nevents: %lld received by the agent, %lld dropped since load (rate limit %lld "
		       "per app and second, or a full ring buffer); %lld records logged, %lld repeats "
		       "folded into them, %lld not written yet\n",
		       (long long)json_int(ev, "received"), (long long)json_int(ev, "dropped_since_load"),
		       (long long)json_int(ev, "rate_limit_per_app"), (long long)json_int(ev, "records"),
		       (long long)json_int(ev, "folded"), (long long)json_int(ev, "pending"));
	json_object_put(reply);
	return EXIT_SUCCESS;
}
