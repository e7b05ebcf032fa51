// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwall: the command line. `carwall OBJECT COMMAND`, bpftool style; --json on every command
 * that prints (errors too). This file: main, the options every command takes, the command
 * table and the helpers the OBJECT files share (cli.h); one file per OBJECT does the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "control.h"
#include "log.h"
#include "pins.h"
#include "util.h"

#ifndef CARWALL_VERSION
#define CARWALL_VERSION "unknown"
#endif

/* Options every command accepts, before the object or after the command. */
#define CLI_COMMON_OPTIONS                                                                         \
	{ "json", no_argument, NULL, 'j' }, { "quiet", no_argument, NULL, 'q' },                    \
		{ "run-dir", required_argument, NULL, 'r' },                                        \
		{ "pin-dir", required_argument, NULL, 'b' }, { "help", no_argument, NULL, 'h' }

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: carwall [OPTIONS] OBJECT COMMAND\n"
		"\n"
		"  carwall run --app ID [--] CMD [ARGS...]  run a command as that app (in its cgroup)\n"
		"  carwall status                          is enforcement attached, which policy\n"
		"  carwall app wait-managed [--timeout S]  wait until the agent manages this\n"
		"                                          process's cgroup (AGL's ExecStartPre)\n"
		"  carwall reload                          make the agent reload its policy file\n"
		"  carwall events [--follow] [--app ID]    refused flows the agent logged\n"
		"  carwall stats                           counters per app and per rule\n"
		"  carwall names [--app ID]                addresses learned from the apps' DNS answers:\n"
		"                                          app, name, address, expiry, rule\n"
		"  carwall report residency [--since DURATION] [--html FILE]\n"
		"                                          where each app's flows went, by country,\n"
		"                                          and the policies in force over time\n"
		"  carwall consent list                    the driver's consent switches\n"
		"  carwall consent set NAME on|off         turn a switch on or off (it only takes\n"
		"                                          permissions away); root, the control\n"
		"                                          or the consent group\n"
		"  carwall policy check [--strict] FILE    validate a policy without loading it;\n"
		"                                          warn about destinations that open far\n"
		"                                          more than they say (--strict: exit 1)\n"
		"  carwall flows [--app ID] [--since D] [--verdict V]\n"
		"                                          the flow inventory: what each app talked\n"
		"                                          to, by domain, host and address:port\n"
		"  carwall policy suggest --app ID [--since D] [--base POLICY]\n"
		"                                          a policy allowing what the app was seen\n"
		"                                          doing, with the evidence of each rule\n"
		"  carwall policy replay --policy FILE [--app ID]\n"
		"                                          the recorded flows that policy refuses\n"
		"  carwall bundle install FILE             send a bundle to the agent, which verifies\n"
		"                                          and enforces it (FILE is read by this command)\n"
		"  carwall bundle keygen|sign|verify|inspect  signed policy bundles (bundle --help)\n"
		"  carwall explain --policy FILE --app ID DEST[:PORT][/PROTO]\n"
		"                                          the verdict for a flow, offline, and why\n"
		"  carwall geo lookup [--db FILE] ADDR     the country of an address in a country\n"
		"                                          database (MaxMind DB), offline\n"
		"  carwall unload [--force]                detach carwall and remove its pins\n"
		"  carwall version\n"
		"\n"
		"Options:\n"
		"  --json          print JSON (errors too)\n"
		"  -q --quiet      print nothing; the exit code tells (status: 0 enforcing and\n"
		"                  every app cgroup registered)\n"
		"  --run-dir DIR   the agent's run folder (default $CARWALL_RUN_DIR or %s)\n"
		"  --pin-dir DIR   the agent's bpffs pin folder (default %s)\n"
		"  -h --help       show this help\n"
		"\n"
		"Exit codes: 0 success, 1 failure, 2 usage error, 3 (status) no agent running.\n",
		CONTROL_DEFAULT_RUN_DIR, PINS_DEFAULT_DIR);
}

void cli_print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Report an error the way the output mode wants it; returns exit code 1. */
int cli_fail(const struct cli *c, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(buf));
		cli_print_json(o);
		json_object_put(o);
	} else {
		fprintf(stderr, "carwall: %s\n", buf);
	}
	return EXIT_FAILURE;
}

/*
 * Parse the options of one command (common ones included); stops at the first non-option so
 * that `run` leaves the command line alone. Returns the index of the first operand, or -1.
 */
int cli_parse(struct cli *c, int argc, char **argv, bool with_app, bool with_force)
{
	static const struct option opts[] = {
		CLI_COMMON_OPTIONS,
		{ "app", required_argument, NULL, 'a' },
		{ "force", no_argument, NULL, 'f' },
		{ "strict", no_argument, NULL, 's' },
		{},
	};
	int o;

	optind = 0; /* glibc: restart scanning for each command */
	while ((o = getopt_long(argc, argv, "+hjqa:f", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			c->json = true;
			break;
		case 'q':
			c->quiet = true;
			break;
		case 'r':
			c->run_dir = optarg;
			break;
		case 'b':
			c->pin_dir = optarg;
			break;
		case 'a':
			if (!with_app)
				goto bad;
			c->app = optarg;
			break;
		case 'f':
			if (!with_force)
				goto bad;
			c->force = true;
			break;
		case 's':
			if (!c->strict_ok)
				goto bad;
			c->strict = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			goto bad;
		}
	}
	return optind;
bad:
	usage(stderr);
	return -1;
}

const char *json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * Ask the agent. On failure (no agent, or an error in its reply) report it as the output mode
 * wants, prefixed by `what`, and return the exit code, negated; 0 and *ret_reply on success.
 */
int cli_request(const struct cli *c, const char *request, const char *what,
		struct json_object **ret_reply)
{
	struct json_object *reply = NULL;
	const char *run_dir = control_run_dir(c->run_dir);
	int r = control_request(run_dir, request, &reply);

	if (r < 0)
		return -cli_fail(c, "cannot reach carwalld in %s: %s", run_dir, control_strerror(r));
	if (json_str(reply, "error")) {
		r = cli_fail(c, "%s%s", what, json_str(reply, "error"));
		json_object_put(reply);
		return -r;
	}
	*ret_reply = reply;
	return 0;
}

int64_t json_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

bool json_flag(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static int cmd_version(struct cli *c, int argc, char **argv)
{
	if (cli_parse(c, argc, argv, false, false) < 0)
		return EXIT_USAGE;
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "version", json_object_new_string(CARWALL_VERSION));
		cli_print_json(o);
		json_object_put(o);
	} else {
		printf("carwall %s\n", CARWALL_VERSION);
	}
	return EXIT_SUCCESS;
}

static int cmd_app(struct cli *c, int argc, char **argv)
{
	return carwall_app_main(argc, argv, c->json, c->quiet, c->run_dir);
}

static int cmd_events(struct cli *c, int argc, char **argv)
{
	return carwall_events_main(argc, argv, c->json);
}

static int cmd_explain(struct cli *c, int argc, char **argv)
{
	return carwall_explain_main(argc, argv, c->json);
}

static const struct command {
	const char *object;
	const char *command; /* NULL: the object is the command */
	int (*run)(struct cli *c, int argc, char **argv);
} commands[] = {
	{ "run", NULL, cmd_run },
	{ "app", NULL, cmd_app },
	{ "status", NULL, cmd_status },
	{ "reload", NULL, cmd_reload },
	{ "policy", "check", cmd_policy_check },
	{ "policy", "suggest", cmd_policy_suggest },
	{ "policy", "replay", cmd_policy_replay },
	{ "bundle", NULL, cmd_bundle },
	{ "explain", NULL, cmd_explain },
	{ "events", NULL, cmd_events },
	{ "stats", NULL, cmd_stats },
	{ "names", NULL, cmd_names },
	{ "report", "residency", cmd_report_residency },
	{ "geo", "lookup", cmd_geo_lookup },
	{ "consent", NULL, cmd_consent },
	{ "flows", NULL, cmd_flows },
	{ "unload", NULL, cmd_unload },
	{ "version", NULL, cmd_version },
};

int main(int argc, char **argv)
{
	struct cli c = {};
	int i;

	log_setup("carwall", LOG_LEVEL_WARNING);
	log_setup_libbpf();

	/* Common options before the object. */
	i = cli_parse(&c, argc, argv, false, false);
	if (i < 0)
		return EXIT_USAGE;
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	bool known_object = false;

	for (size_t k = 0; k < ARRAY_SIZE(commands); k++) {
		const struct command *cmd = &commands[k];

		if (strcmp(argv[i], cmd->object))
			continue;
		known_object = true;
		if (!cmd->command)
			return cmd->run(&c, argc - i, argv + i);
		if (i + 1 < argc && !strcmp(argv[i + 1], cmd->command))
			return cmd->run(&c, argc - i - 1, argv + i + 1);
	}
	if (known_object)
		fprintf(stderr, "carwall %s: unknown command '%s'; see carwall --help\n", argv[i],
			i + 1 < argc ? argv[i + 1] : "");
	else
		fprintf(stderr, "carwall: unknown object '%s'; see carwall --help\n", argv[i]);
	return EXIT_USAGE;
}
