// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall app wait-managed [--timeout S]`: wait until the agent confirms that the policy in
 * force manages the caller's own cgroup (as one of its apps, or below the guard: refused
 * everything), and fail otherwise. AGL's app units run it as ExecStartPre, in the unit's own
 * cgroup, so that an app never starts in a cgroup the agent has not registered yet (systemd may
 * have just made it again, with its slice).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "control.h"
#include "util.h"

#define APP_DEFAULT_TIMEOUT_S 10
#define APP_MAX_TIMEOUT_S 3600
#define APP_POLL_MS 50

/* Exit codes, as the rest of the CLI: 1 not managed, 2 usage, 3 no agent answered. */
#define APP_EXIT_USAGE 2
#define APP_EXIT_NO_AGENT 3

static void app_usage(FILE *f)
{
	fprintf(f,
		"Usage: carwall app wait-managed [--timeout S] [--run-dir DIR] [--json] [--quiet]\n"
		"\n"
		"Wait (at most S seconds, default %d) until the agent confirms that the policy in\n"
		"force manages this process's own cgroup: as an app, or below the guard (refused\n"
		"everything). The agent registers first what was made again.\n"
		"Exit codes: 0 managed, 1 not managed in time, 2 usage, 3 no agent answered.\n",
		APP_DEFAULT_TIMEOUT_S);
}

/* The caller's cgroup v2 path from the hierarchy's root ("0::PATH" of /proc/self/cgroup). */
static int app_own_cgroup(char *buf, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return negative_errno();
	while ((n = getline(&line, &cap, f)) > 0) {
		if (strncmp(line, "0::", 3))
			continue;
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if ((size_t)n - 3 + 1 > size)
			return -ENAMETOOLONG;
		strcpy(buf, line + 3);
		return 0;
	}
	return -ENOENT;
}

/* The bound of the whole command, whatever the agent does (a stopped agent never answers). */
static char app_alarm_msg[1024];
static size_t app_alarm_len;

static void app_on_alarm(int sig)
{
	(void)sig;
	if (write(STDERR_FILENO, app_alarm_msg, app_alarm_len) < 0) {
		/* nothing more to say */
	}
	_exit(APP_EXIT_NO_AGENT);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool reply_bool(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static const char *reply_string(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int app_fail(bool json, bool quiet, int code, const char *msg)
{
	if (json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "managed", json_object_new_boolean(false));
		json_object_object_add(o, "error", json_object_new_string(msg));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
									 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else if (!quiet) {
		fprintf(stderr, "carwall app wait-managed: %s\n", msg);
	}
	return code;
}

static int app_wait_managed(int argc, char **argv, bool json, bool quiet, const char *run_dir)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	char cgroup[CONTROL_MAX_REQUEST], request[CONTROL_MAX_REQUEST], last[768] = "";
	unsigned long timeout_s = APP_DEFAULT_TIMEOUT_S;
	uint64_t deadline;
	bool answered = false;
	int o, r;

	optind = 0;
	while ((o = getopt_long(argc, argv, "+t:jqh", opts, NULL)) != -1) {
		switch (o) {
		case 't': {
			char *end;

			timeout_s = strtoul(optarg, &end, 10);
			if (!*optarg || *end || timeout_s < 1 || timeout_s > APP_MAX_TIMEOUT_S) {
				fprintf(stderr, "carwall app wait-managed: bad --timeout '%s' (1..%d "
						"seconds)\n",
					optarg, APP_MAX_TIMEOUT_S);
				return APP_EXIT_USAGE;
			}
			break;
		}
		case 'r':
			run_dir = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			app_usage(stdout);
			return EXIT_SUCCESS;
		default:
			app_usage(stderr);
			return APP_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		app_usage(stderr);
		return APP_EXIT_USAGE;
	}
	run_dir = control_run_dir(run_dir);

	/* A path in a cgroup namespace is not the agent's: it could name another cgroup. */
	r = cgroup_ns_is_initial();
	if (r <= 0)
		return app_fail(json, quiet, EXIT_FAILURE,
				r < 0 ? "cannot read /proc/self/ns/cgroup"
				      : "this process is in a cgroup namespace: its cgroup path is "
					"not the agent's");
	r = app_own_cgroup(cgroup, sizeof(cgroup) - strlen("cgroup-managed "));
	if (r < 0 || strchr(cgroup, '\n') || cgroup[0] != '/')
		return app_fail(json, quiet, EXIT_FAILURE,
				"cannot read this process's cgroup v2 path from /proc/self/cgroup");
	snprintf(request, sizeof(request), "cgroup-managed %s", cgroup);

	snprintf(app_alarm_msg, sizeof(app_alarm_msg),
		 "carwall app wait-managed: no answer from carwalld in %s within %lu s: cgroup %.400s "
		 "is not confirmed managed\n",
		 run_dir, timeout_s, cgroup);
	app_alarm_len = strlen(app_alarm_msg);
	signal(SIGALRM, app_on_alarm);
	alarm((unsigned)timeout_s + 1);

	deadline = mono_ms() + timeout_s * 1000u;
	for (;;) {
		struct json_object *reply = NULL;

		r = control_request(run_dir, request, &reply);
		if (r < 0) {
			snprintf(last, sizeof(last), "cannot reach carwalld in %.400s: %s", run_dir,
				 control_strerror(r));
		} else if (reply_string(reply, "error")) {
			answered = true;
			snprintf(last, sizeof(last), "%.700s", reply_string(reply, "error"));
		} else if (reply_bool(reply, "managed")) {
			alarm(0);
			if (json) {
				printf("%s\n", json_object_to_json_string_ext(
						       reply, JSON_C_TO_STRING_PRETTY |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
			} else if (!quiet) {
				const char *app = reply_string(reply, "app");

				if (reply_bool(reply, "guard"))
					printf("%s is managed: below the guard %s, refused "
					       "everything\n",
					       cgroup, reply_string(reply, "by"));
				else
					printf("%s is managed: app %s (%s)%s\n", cgroup,
					       app ? app : "?", reply_string(reply, "by"),
					       reply_bool(reply, "audit") ? ", in audit mode" : "");
			}
			json_object_put(reply);
			return EXIT_SUCCESS;
		} else {
			answered = true;
			snprintf(last, sizeof(last), "%.700s",
				 reply_string(reply, "reason") ? reply_string(reply, "reason")
							      : "not managed");
		}
		json_object_put(reply);
		if (mono_ms() >= deadline)
			break;
		struct timespec ts = { 0, APP_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	alarm(0);
	char msg[1600];
	snprintf(msg, sizeof(msg), "cgroup %.400s is not managed by the policy in force after %lu s: %s",
		 cgroup, timeout_s, last);
	return app_fail(json, quiet, answered ? EXIT_FAILURE : APP_EXIT_NO_AGENT, msg);
}

int carwall_app_main(int argc, char **argv, bool json, bool quiet, const char *run_dir)
{
	/* argv[0] is "app", argv[1] the command. */
	if (argc > 1 && !strcmp(argv[1], "wait-managed"))
		return app_wait_managed(argc - 1, argv + 1, json, quiet, run_dir);
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		app_usage(stdout);
		return EXIT_SUCCESS;
	}
	fprintf(stderr, "carwall app: unknown command '%s'; see carwall app --help\n",
		argc > 1 ? argv[1] : "");
	return APP_EXIT_USAGE;
}
