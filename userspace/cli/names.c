// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall names [--app ID]`: the addresses the apps learned from their own DNS answers (the
 * agent reads the pinned table and names things as the policy in force does): app, name,
 * address, expiry, the rule that allows the name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

int cmd_names(struct cli *c, int argc, char **argv)
{
	struct json_object *reply = NULL, *list;
	_cleanup_free_ char *request = NULL;
	int i, r;

	i = cli_parse(c, argc, argv, true, false);
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc) {
		fprintf(stderr, "carwall names: unexpected argument '%s'\n", argv[i]);
		return EXIT_USAGE;
	}
	if (c->app && (!c->app[0] || strpbrk(c->app, " \n"))) {
		fprintf(stderr, "carwall names: bad app id '%s'\n", c->app);
		return EXIT_USAGE;
	}
	if (asprintf(&request, c->app ? "names %s" : "names", c->app) < 0) {
		request = NULL;
		return cli_fail(c, "out of memory");
	}
	r = cli_request(c, request, "", &reply);
	if (r < 0)
		return -r;
	if (c->json) {
		cli_print_json(reply);
		json_object_put(reply);
		return EXIT_SUCCESS;
	}
	printf("%-22s %-40s %-39s %10s %s\n", "APP", "NAME", "ADDRESS", "EXPIRES-IN", "RULE");
	if (json_object_object_get_ex(reply, "learned", &list))
		for (size_t k = 0; k < json_object_array_length(list); k++) {
			struct json_object *e = json_object_array_get_idx(list, k);
			char expires[32], rule[300] = "-";

			if (json_flag(e, "expired"))
				snprintf(expires, sizeof(expires), "expired");
			else
				snprintf(expires, sizeof(expires), "%llds",
					 (long long)json_int(e, "expires_in_s"));
			if (json_str(e, "file"))
				snprintf(rule, sizeof(rule), "#%lld %s:%lld:%lld",
					 (long long)json_int(e, "rule"), json_str(e, "file"),
					 (long long)json_int(e, "line"), (long long)json_int(e, "column"));
			printf("%-22s %-40s %-39s %10s %s\n",
			       json_str(e, "app") ? json_str(e, "app") : "(no app)",
			       json_str(e, "name") ? json_str(e, "name") : "(not in the policy)",
			       json_str(e, "address"), expires, rule);
		}
	json_object_put(reply);
	return EXIT_SUCCESS;
}
