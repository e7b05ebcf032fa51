// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall consent list` and `carwall consent set NAME on|off`: the driver's consent switches of
 * the policy in force, through the agent (root, the control group, or the consent group that
 * carwalld --consent-group names). A switch only takes permissions away; `set` returns once the
 * change is in force (every decision after it sees it) and the flows it refuses are cut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "policy.h"
#include "util.h"

static void print_switches(struct json_object *reply)
{
	struct json_object *list, *mandatory;

	printf("%-24s %-5s %-7s %-10s %s\n", "SWITCH", "STATE", "DEFAULT", "RESET", "PURPOSES");
	if (json_object_object_get_ex(reply, "switches", &list))
		for (size_t k = 0; k < json_object_array_length(list); k++) {
			struct json_object *e = json_object_array_get_idx(list, k), *purposes;
			char text[512] = "";
			size_t o = 0;

			if (json_object_object_get_ex(e, "purposes", &purposes))
				for (size_t i = 0;
				     i < json_object_array_length(purposes) && o < sizeof(text);
				     i++)
					o += (size_t)snprintf(
					    text + o, sizeof(text) - o, "%s%s", i ? "," : "",
					    json_object_get_string(
						json_object_array_get_idx(purposes, i)));
			printf("%-24s %-5s %-7s %-10s %s\n", json_str(e, "name"),
			       json_str(e, "state"), json_str(e, "default"), json_str(e, "reset"),
			       text);
		}
	if (json_object_object_get_ex(reply, "mandatory", &mandatory) &&
	    json_object_array_length(mandatory) > 0) {
		printf("mandatory (never switched off):");
		for (size_t i = 0; i < json_object_array_length(mandatory); i++)
			printf(" %s",
			       json_object_get_string(json_object_array_get_idx(mandatory, i)));
		printf("\n");
	}
}

/* argv[0] is "consent"; argv[1] the command. */
int cmd_consent(struct cli *c, int argc, char **argv)
{
	struct json_object *reply = NULL;
	_cleanup_free_ char *request = NULL;
	const char *cmd;
	int i, r;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "carwall consent: expected list or set NAME on|off\n");
		return EXIT_USAGE;
	}
	cmd = argv[1];
	i = cli_parse(c, argc - 1, argv + 1, false, false);
	if (i < 0)
		return EXIT_USAGE;
	argc -= 1 + i;
	argv += 1 + i;
	if (!strcmp(cmd, "list")) {
		if (argc > 0) {
			fprintf(stderr, "carwall consent list: unexpected argument '%s'\n",
				argv[0]);
			return EXIT_USAGE;
		}
		r = cli_request(c, "consent-list", "", &reply);
	} else if (!strcmp(cmd, "set")) {
		if (argc != 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off"))) {
			fprintf(stderr, "carwall consent set: expected NAME on|off\n");
			return EXIT_USAGE;
		}
		if (!argv[0][0] || strlen(argv[0]) > POLICY_MAX_CONSENT_NAME ||
		    strpbrk(argv[0], " \n")) {
			fprintf(stderr, "carwall consent set: bad switch name '%s'\n", argv[0]);
			return EXIT_USAGE;
		}
		if (asprintf(&request, "consent-set %s %s", argv[0], argv[1]) < 0) {
			request = NULL;
			return cli_fail(c, "out of memory");
		}
		r = cli_request(c, request, "", &reply);
	} else {
		fprintf(stderr, "carwall consent: unknown command '%s'; expected list or set\n",
			cmd);
		return EXIT_USAGE;
	}
	if (r < 0)
		return -r;
	if (c->json)
		cli_print_json(reply);
	else if (!c->quiet)
		print_switches(reply);
	json_object_put(reply);
	return EXIT_SUCCESS;
}
