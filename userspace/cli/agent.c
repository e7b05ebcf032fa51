// SPDX-License-Identifier: GPL-2.0-only
/* The agent itself: `carwall reload` (its policy file) and `carwall unload` (its pins). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "control.h"
#include "pins.h"

int cmd_reload(struct cli *c, int argc, char **argv)
{
	struct json_object *reply = NULL;
	int i, r;

	i = cli_parse(c, argc, argv, false, false);
	if (i < 0)
		return EXIT_USAGE;
	r = cli_request(c, "reload", "reload refused, the last good policy stays in force: ", &reply);
	if (r < 0)
		return -r;
	if (c->json) {
		cli_print_json(reply);
	} else {
		struct json_object *pol;
		if (json_object_object_get_ex(reply, "policy", &pol))
			printf("Reloaded %s: %lld apps, %lld rules, sha256 %s\n", json_str(pol, "path"),
			       (long long)json_int(pol, "apps"), (long long)json_int(pol, "rules"),
			       json_str(pol, "sha256"));
	}
	json_object_put(reply);
	return EXIT_SUCCESS;
}

int cmd_unload(struct cli *c, int argc, char **argv)
{
	struct json_object *reply = NULL;
	const char *pin_dir;
	int i, r;

	i = cli_parse(c, argc, argv, false, true);
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc) {
		fprintf(stderr, "carwall unload: unexpected argument '%s'\n", argv[i]);
		return EXIT_USAGE;
	}
	pin_dir = pin_dir_of(c);
	if (!c->force && control_request(control_run_dir(c->run_dir), "status", &reply) == 0) {
		json_object_put(reply);
		return cli_fail(c,
				 "carwalld is running (%s); stop it first, or use --force to "
				 "detach under it",
				 control_run_dir(c->run_dir));
	}
	r = pins_remove(pin_dir);
	if (r < 0)
		return cli_fail(c, "removing %s: %s", pin_dir, strerror(-r));
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "removed", json_object_new_string(pin_dir));
		cli_print_json(o);
		json_object_put(o);
	} else {
		printf("Detached carwall's programs and removed %s\n", pin_dir);
	}
	return EXIT_SUCCESS;
}
