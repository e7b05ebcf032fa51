// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwall: the command line. `carwall OBJECT COMMAND`, bpftool style; --json on every command
 * that prints (errors too).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "carwall_app.h"
#include "carwall_events.h"
#include "carwall_explain.h"
#include "carwall_bundle.h"
#include "cgroup.h"
#include "control.h"
#include "fileio.h"
#include "loader.h"
#include "log.h"
#include "policy.h"
#include "policy_compile.h"
#include "policy_lint.h"
#include "util.h"

#ifndef CARWALL_VERSION
#define CARWALL_VERSION "unknown"
#endif

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
		"  carwall policy check [--strict] FILE    validate a policy without loading it;\n"
		"                                          warn about destinations that open far\n"
		"                                          more than they say (--strict: exit 1)\n"
		"  carwall bundle install FILE             send a bundle to the agent, which verifies\n"
		"                                          and enforces it (FILE is read by this command)\n"
		"  carwall bundle keygen|sign|verify|inspect  signed policy bundles (bundle --help)\n"
		"  carwall explain --policy FILE --app ID DEST[:PORT][/PROTO]\n"
		"                                          the verdict for a flow, offline, and why\n"
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
		CONTROL_DEFAULT_RUN_DIR, LOADER_DEFAULT_PIN_DIR);
}

static void json_print(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Report an error the way the output mode wants it; returns exit code 1. */
static int cli_error(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cli_error(const struct cli *c, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(buf));
		json_print(o);
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
static int cli_parse(struct cli *c, int argc, char **argv, bool with_app, bool with_force)
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

static const char *json_str(struct json_object *o, const char *key)
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
static int cli_request(const struct cli *c, const char *request, const char *what,
		       struct json_object **ret_reply)
{
	struct json_object *reply = NULL;
	const char *run_dir = control_run_dir(c->run_dir);
	int r = control_request(run_dir, request, &reply);

	if (r < 0)
		return -cli_error(c, "cannot reach carwalld in %s: %s", run_dir, strerror(-r));
	if (json_str(reply, "error")) {
		r = cli_error(c, "%s%s", what, json_str(reply, "error"));
		json_object_put(reply);
		return -r;
	}
	*ret_reply = reply;
	return 0;
}

/* ---- run ------------------------------------------------------------------------------------ */

static pid_t run_child_pid;

static void run_forward_signal(int sig)
{
	if (run_child_pid > 0)
		kill(run_child_pid, sig);
}

/* Start argv as a child born in the cgroup (clone3 CLONE_INTO_CGROUP), or moved there before
 * exec on kernels without it. */
static pid_t run_spawn(const char *cgroup, int cgroup_fd, char **argv, const char *app)
{
	struct clone_args args = {
		.flags = CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.cgroup = (__u64)cgroup_fd,
	};
	pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));

	if (pid < 0 && (errno == ENOSYS || errno == E2BIG || errno == EINVAL)) {
		pid = fork();
		if (pid == 0 && cgroup_attach_pid(cgroup, 0) < 0) {
			fprintf(stderr, "carwall: cannot join cgroup %s: %s\n", cgroup,
				strerror(errno));
			_exit(127);
		}
	}
	if (pid != 0)
		return pid;

	setenv("CARWALL_APP", app, 1);
	execvp(argv[0], argv);
	fprintf(stderr, "carwall: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

static int cmd_run(struct cli *c, int argc, char **argv)
{
	struct json_object *reply = NULL;
	_cleanup_free_ char *sub = NULL;
	_cleanup_close_ int cgfd = -1;
	int i, r, status;

	i = cli_parse(c, argc, argv, true, false);
	if (i < 0)
		return EXIT_USAGE;
	if (!c->app) {
		fprintf(stderr, "carwall run: --app ID is required\n");
		return EXIT_USAGE;
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "carwall run: no command given\n");
		return EXIT_USAGE;
	}
	if (!policy_app_id_valid(c->app))
		return cli_error(c, "'%s' is not a valid app id", c->app);

	/* The agent knows where the app's cgroup is and makes sure it is enforced. */
	char request[CONTROL_MAX_REQUEST];
	snprintf(request, sizeof(request), "app-cgroup %s", c->app);
	r = cli_request(c, request, "", &reply);
	if (r < 0)
		return -r;
	const char *cgroup = json_str(reply, "cgroup");
	if (!cgroup) {
		json_object_put(reply);
		return cli_error(c, "the agent sent no cgroup");
	}

	/*
	 * A sub-cgroup of the app's: judged as the app, and no process is added to a cgroup
	 * systemd manages for a unit. Removed when the command ends.
	 */
	r = asprintf(&sub, "%s/carwall-run.%d", cgroup, (int)getpid());
	json_object_put(reply);
	if (r < 0)
		return cli_error(c, "out of memory");
	if (mkdir(sub, 0755) < 0 && errno != EEXIST)
		return cli_error(c, "cannot create cgroup %s: %s", sub, strerror(errno));
	cgfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		r = cli_error(c, "cannot open cgroup %s: %s", sub, strerror(errno));
		rmdir(sub);
		return r;
	}

	struct sigaction sa = { .sa_handler = run_forward_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* The terminal sends SIGINT/SIGQUIT to the child too; let it decide. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);

	run_child_pid = run_spawn(sub, cgfd, argv + i, c->app);
	if (run_child_pid < 0) {
		r = cli_error(c, "cannot start %s: %s", argv[i], strerror(errno));
		rmdir(sub);
		return r;
	}
	while (waitpid(run_child_pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
	}

	/* The cgroup empties once its last process is reaped; bounded retries. */
	for (int tries = 0; tries < 100 && rmdir(sub) < 0 && errno == EBUSY; tries++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_FAILURE;
}

/* ---- status --------------------------------------------------------------------------------- */

static const char *pin_dir_of(const struct cli *c)
{
	return c->pin_dir ? c->pin_dir : LOADER_DEFAULT_PIN_DIR;
}

static int status_without_agent(struct cli *c, int agent_error)
{
	struct loader_pinned pinned;
	const char *pin_dir = pin_dir_of(c);
	int r = loader_read_pinned(pin_dir, &pinned);

	if (r < 0)
		return cli_error(c, "cannot read pins in %s: %s", pin_dir, strerror(-r));
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "agent", json_object_new_string("not running"));
		json_object_object_add(o, "agent_error", json_object_new_string(strerror(-agent_error)));
		json_object_object_add(o, "pin_dir", json_object_new_string(pin_dir));
		json_object_object_add(o, "links_attached", json_object_new_int((int)pinned.links_attached));
		json_object_object_add(o, "links_total", json_object_new_int((int)pinned.links_total));
		json_object_object_add(o, "enforcing",
				       json_object_new_boolean(pinned.links_attached > 0 &&
							       pinned.policy_valid));
		json_object_object_add(o, "managed_cgroups", json_object_new_int((int)pinned.n_cgroups));
		json_print(o);
		json_object_put(o);
		return EXIT_NO_AGENT;
	}
	printf("agent:       not running (%s: %s)\n", control_run_dir(c->run_dir),
	       strerror(-agent_error));
	if (pinned.links_attached == 0)
		printf("enforcement: not attached (nothing pinned in %s)\n", pin_dir);
	else
		printf("enforcement: %u of %u hooks attached from pins in %s, %s, %u managed "
		       "cgroups\n",
		       pinned.links_attached, pinned.links_total, pin_dir,
		       pinned.policy_valid ? "policy in force" : "NO POLICY", pinned.n_cgroups);
	return EXIT_NO_AGENT;
}

static int64_t json_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static bool json_flag(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static void status_print(struct json_object *s)
{
	struct json_object *pol, *apps, *hooks;

	printf("agent:       running (pid %lld)\n", (long long)json_int(s, "pid"));
	printf("enforcement: attached at %s (", json_str(s, "cgroup_root"));
	if (json_object_object_get_ex(s, "hooks", &hooks))
		for (size_t i = 0; i < json_object_array_length(hooks); i++)
			printf("%s%s", i ? " " : "",
			       json_object_get_string(json_object_array_get_idx(hooks, i)));
	printf("), pins in %s\n", json_str(s, "pin_dir"));
	if (json_str(s, "guard_cgroup"))
		printf("guard:       %s (a cgroup below it that is no app is refused everything)\n",
		       json_str(s, "guard_cgroup"));
	if (json_object_object_get_ex(s, "policy", &pol)) {
		printf("policy:      %s, loaded %s\n", json_str(pol, "path"),
		       json_str(pol, "loaded_at"));
		printf("             sha256 %s\n", json_str(pol, "sha256"));
		printf("             %lld apps, %lld rules (%lld IPv4 and %lld IPv6 prefixes, %lld "
		       "port entries), generation %lld\n",
		       (long long)json_int(pol, "apps"), (long long)json_int(pol, "rules"),
		       (long long)json_int(pol, "ipv4_prefixes"),
		       (long long)json_int(pol, "ipv6_prefixes"),
		       (long long)json_int(pol, "port_entries"), (long long)json_int(s, "generation"));
	} else {
		printf("policy:      %s\n", json_str(s, "policy_state"));
	}
	if (json_object_object_get_ex(s, "apps", &apps))
		for (size_t i = 0; i < json_object_array_length(apps); i++) {
			struct json_object *a = json_object_array_get_idx(apps, i);
			struct json_object *audit;
			bool audited = json_object_object_get_ex(a, "audit", &audit) &&
				       json_object_get_boolean(audit);
			printf("app:         %-16s %lld rules%s  %s\n", json_str(a, "id"),
			       (long long)json_int(a, "rules"), audited ? " (audit mode)" : "",
			       json_str(a, "cgroup"));
		}
	struct json_object *stale;
	if (json_object_object_get_ex(s, "stale_cgroups", &stale))
		for (size_t i = 0; i < json_object_array_length(stale); i++)
			printf("DEGRADED:    %s is not registered (made again)\n",
			       json_object_get_string(json_object_array_get_idx(stale, i)));
	if (json_str(s, "cgroup_error"))
		printf("DEGRADED:    cannot register app cgroups again: %s\n",
		       json_str(s, "cgroup_error"));
	const char *err = json_str(s, "last_error");
	printf("last error:  %s\n", err ? err : "none");
	struct json_object *floor;
	if (json_str(s, "distrusted"))
		printf("not trusted: %s\n", json_str(s, "distrusted"));
	if (json_object_object_get_ex(s, "anti_rollback", &floor) && json_str(floor, "warning"))
		printf("floor:       WARNING: %s\n", json_str(floor, "warning"));
}

static int cmd_status(struct cli *c, int argc, char **argv)
{
	struct json_object *reply = NULL;
	int i, r;

	i = cli_parse(c, argc, argv, false, false);
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc) {
		fprintf(stderr, "carwall status: unexpected argument '%s'\n", argv[i]);
		return EXIT_USAGE;
	}
	r = control_request(control_run_dir(c->run_dir), "status", &reply);
	if (c->quiet) {
		/*
		 * For scripts and unit checks: 0 only when an agent answers and enforces, with
		 * every app cgroup registered (not "degraded").
		 */
		struct json_object *v;
		bool enforcing = r == 0 && json_object_object_get_ex(reply, "enforcing", &v) &&
				 json_object_get_boolean(v) &&
				 !(json_object_object_get_ex(reply, "degraded", &v) &&
				   json_object_get_boolean(v));
		json_object_put(reply);
		return enforcing ? EXIT_SUCCESS : r == 0 ? EXIT_FAILURE : EXIT_NO_AGENT;
	}
	if (r == -ENOENT || r == -ECONNREFUSED)
		return status_without_agent(c, r);
	if (r < 0)
		return cli_error(c, "cannot reach carwalld in %s: %s", control_run_dir(c->run_dir),
				 strerror(-r));
	if (json_str(reply, "error")) {
		r = cli_error(c, "%s", json_str(reply, "error"));
		json_object_put(reply);
		return r;
	}
	if (c->json)
		json_print(reply);
	else
		status_print(reply);
	json_object_put(reply);
	return EXIT_SUCCESS;
}

/* ---- reload --------------------------------------------------------------------------------- */

static int cmd_reload(struct cli *c, int argc, char **argv)
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
		json_print(reply);
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

/* ---- policy check --------------------------------------------------------------------------- */

static int cmd_policy_check(struct cli *c, int argc, char **argv)
{
	struct policy_error perr = {};
	struct policy_maps *maps = NULL;
	struct policy_lint *lint = NULL;
	struct policy *p = NULL;
	char reason[1024];
	int i, r;

	c->strict_ok = true;
	i = cli_parse(c, argc, argv, false, false);
	if (i < 0)
		return EXIT_USAGE;
	if (i + 1 != argc) {
		fprintf(stderr, "Usage: carwall policy check [--strict] FILE\n");
		return EXIT_USAGE;
	}
	const char *file = argv[i];

	r = policy_parse_file(file, &p, &perr);
	if (r < 0) {
		policy_error_format(&perr, reason, sizeof(reason));
		if (!c->json) {
			fprintf(stderr, "%s\n", reason);
			return EXIT_FAILURE;
		}
		struct json_object *o = json_object_new_object();
		struct json_object *e = json_object_new_object();
		json_object_object_add(o, "file", json_object_new_string(file));
		json_object_object_add(o, "valid", json_object_new_boolean(false));
		json_object_object_add(e, "file", json_object_new_string(perr.file));
		json_object_object_add(e, "line", json_object_new_int((int)perr.loc.line));
		json_object_object_add(e, "column", json_object_new_int((int)perr.loc.column));
		json_object_object_add(e, "reason", json_object_new_string(perr.reason));
		json_object_object_add(e, "message", json_object_new_string(reason));
		json_object_object_add(o, "error", e);
		json_print(o);
		json_object_put(o);
		return EXIT_FAILURE;
	}

	/* Compiling too: a policy that parses but does not fit the maps is not valid. */
	r = policy_compile(p, 0, &maps, reason, sizeof(reason));
	if (r < 0) {
		policy_free(p);
		if (!reason[0])
			snprintf(reason, sizeof(reason), "%s: %s", file, strerror(-r));
		return cli_error(c, "%s", reason); /* "file[:line:column]: why" */
	}
	r = policy_lint(p, &lint);
	if (r < 0) {
		policy_maps_free(maps);
		policy_free(p);
		return cli_error(c, "%s: cannot check for warnings: %s", file, strerror(-r));
	}
	if (c->json) {
		struct json_object *o = json_object_new_object();
		struct json_object *warnings = json_object_new_array();
		json_object_object_add(o, "file", json_object_new_string(file));
		json_object_object_add(o, "valid", json_object_new_boolean(true));
		for (size_t k = 0; k < lint->n_warnings; k++) {
			const struct policy_lint_warning *w = &lint->warnings[k];
			struct json_object *wo = json_object_new_object();
			const char *kind = policy_lint_kind_name(w->kind);
			json_object_object_add(wo, "kind", json_object_new_string(kind));
			json_object_object_add(wo, "line", json_object_new_int((int)w->loc.line));
			json_object_object_add(wo, "column",
					       json_object_new_int((int)w->loc.column));
			json_object_object_add(wo, "reason", json_object_new_string(w->reason));
			json_object_array_add(warnings, wo);
		}
		json_object_object_add(o, "warnings", warnings);
		json_object_object_add(o, "warnings_total",
				       json_object_new_int64((int64_t)lint->n_total));
		json_object_object_add(o, "strict", json_object_new_boolean(c->strict));
		json_object_object_add(o, "apps", json_object_new_int64((int64_t)p->n_apps));
		json_object_object_add(o, "sets", json_object_new_int64((int64_t)p->n_sets));
		json_object_object_add(o, "rules", json_object_new_int64((int64_t)p->n_rules));
		json_object_object_add(o, "ipv4_prefixes", json_object_new_int64((int64_t)maps->n_dst4));
		json_object_object_add(o, "ipv6_prefixes", json_object_new_int64((int64_t)maps->n_dst6));
		json_object_object_add(o, "port_entries", json_object_new_int64((int64_t)maps->n_ports));
		json_object_object_add(o, "host_names",
				       json_object_new_int64((int64_t)maps->n_names));
		json_object_object_add(o, "resolvers",
				       json_object_new_int64((int64_t)maps->n_resolvers));
		json_print(o);
		json_object_put(o);
	} else {
		char names[64] = "";

		if (maps->n_names)
			snprintf(names, sizeof(names), ", %zu host names", maps->n_names);
		printf("%s: valid: %zu apps, %zu sets, %zu rules (%zu IPv4 and %zu IPv6 prefixes, %zu "
		       "port entries%s)\n",
		       file, p->n_apps, p->n_sets, p->n_rules, maps->n_dst4, maps->n_dst6,
		       maps->n_ports, names);
		for (size_t k = 0; k < lint->n_warnings; k++)
			fprintf(stderr, "%s:%u:%u: warning: %s\n", file, lint->warnings[k].loc.line,
				lint->warnings[k].loc.column, lint->warnings[k].reason);
		if (lint->n_total > lint->n_warnings)
			fprintf(stderr, "%s: warning: %zu more warnings not shown\n", file,
				lint->n_total - lint->n_warnings);
	}
	r = c->strict && lint->n_total ? EXIT_FAILURE : EXIT_SUCCESS;
	policy_lint_free(lint);
	policy_maps_free(maps);
	policy_free(p);
	return r;
}

/* ---- unload --------------------------------------------------------------------------------- */

static int cmd_unload(struct cli *c, int argc, char **argv)
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
		return cli_error(c,
				 "carwalld is running (%s); stop it first, or use --force to "
				 "detach under it",
				 control_run_dir(c->run_dir));
	}
	r = loader_remove(pin_dir);
	if (r < 0)
		return cli_error(c, "removing %s: %s", pin_dir, strerror(-r));
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "removed", json_object_new_string(pin_dir));
		json_print(o);
		json_object_put(o);
	} else {
		printf("Detached carwall's programs and removed %s\n", pin_dir);
	}
	return EXIT_SUCCESS;
}

static int cmd_version(struct cli *c, int argc, char **argv)
{
	if (cli_parse(c, argc, argv, false, false) < 0)
		return EXIT_USAGE;
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "version", json_object_new_string(CARWALL_VERSION));
		json_print(o);
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

/* ---- stats ---------------------------------------------------------------------------------- */

static void stats_print_counters(const char *name, struct json_object *app)
{
	struct json_object *c;

	if (!json_object_object_get_ex(app, "since_load", &c))
		return;
	printf("%-22s %10lld %10lld %10lld %10lld\n", name, (long long)json_int(c, "allowed"),
	       (long long)json_int(c, "refused"), (long long)json_int(c, "audited"),
	       (long long)json_int(c, "events_dropped"));
}

static int cmd_stats(struct cli *c, int argc, char **argv)
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
		json_print(reply);
		json_object_put(reply);
		return EXIT_SUCCESS;
	}
	printf("since the policy in force was loaded (carwall stats --json: since start too)\n");
	printf("%-22s %10s %10s %10s %10s\n", "APP", "ALLOWED", "REFUSED", "AUDITED", "EV-DROPPED");
	if (json_object_object_get_ex(reply, "apps", &apps))
		for (size_t k = 0; k < json_object_array_length(apps); k++) {
			struct json_object *a = json_object_array_get_idx(apps, k);
			stats_print_counters(json_str(a, "id") ? json_str(a, "id") : "(unknown apps)", a);
		}
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

/* ---- names ---------------------------------------------------------------------------------- */

static int cmd_names(struct cli *c, int argc, char **argv)
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
		return cli_error(c, "out of memory");
	}
	r = cli_request(c, request, "", &reply);
	if (r < 0)
		return -r;
	if (c->json) {
		json_print(reply);
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

static int cmd_explain(struct cli *c, int argc, char **argv)
{
	return carwall_explain_main(argc, argv, c->json);
}

/*
 * `carwall bundle install FILE`: read with this command's own privileges (the agent opens no
 * path a client names) and sent over the control socket; the running agent verifies it, puts it
 * in force and keeps it.
 */
static int cmd_bundle_install(struct cli *c, int argc, char **argv)
{
	_cleanup_free_ char *data = NULL;
	struct json_object *reply = NULL;
	const char *run_dir = control_run_dir(c->run_dir);
	const char *path;
	size_t size;
	int i, r;

	i = cli_parse(c, argc, argv, false, false);
	if (i < 0)
		return EXIT_USAGE;
	if (i + 1 != argc) {
		fprintf(stderr, "Usage: carwall bundle install FILE\n");
		return EXIT_USAGE;
	}
	path = argv[i];
	r = read_file_limited(path, CONTROL_MAX_PAYLOAD, &data, &size);
	if (r == -EINVAL)
		return cli_error(c, "%s: not a regular file", path);
	if (r == -EFBIG)
		return cli_error(c, "%s: larger than %u bytes", path, CONTROL_MAX_PAYLOAD);
	if (r < 0)
		return cli_error(c, "%s: %s", path, strerror(-r));
	if (size == 0)
		return cli_error(c, "%s: empty file", path);
	r = control_request_payload(run_dir, "install", data, size, &reply);
	if (r < 0)
		return cli_error(c, "cannot reach carwalld in %s: %s", run_dir, strerror(-r));
	if (json_str(reply, "error")) {
		r = cli_error(c, "%s: install refused, the last good policy stays in force: %s",
			      path, json_str(reply, "error"));
		json_object_put(reply);
		return r;
	}
	if (c->json)
		json_print(reply);
	else
		printf("Installed %s: in force, and kept as the agent's policy\n", path);
	json_object_put(reply);
	return EXIT_SUCCESS;
}

/* `bundle` has commands of its own: argv[0] is "bundle", argv[1] the command. */
static int cmd_bundle(struct cli *c, int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "install"))
		return cmd_bundle_install(c, argc - 1, argv + 1);
	return carwall_bundle_main(argc, argv, c->json);
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
	{ "bundle", NULL, cmd_bundle },
	{ "explain", NULL, cmd_explain },
	{ "events", NULL, cmd_events },
	{ "stats", NULL, cmd_stats },
	{ "names", NULL, cmd_names },
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
	for (size_t k = 0; k < ARRAY_SIZE(commands); k++) {
		const struct command *cmd = &commands[k];

		if (strcmp(argv[i], cmd->object))
			continue;
		if (!cmd->command)
			return cmd->run(&c, argc - i, argv + i);
		if (i + 1 < argc && !strcmp(argv[i + 1], cmd->command))
			return cmd->run(&c, argc - i - 1, argv + i + 1);
		fprintf(stderr, "carwall %s: unknown command '%s'; see carwall --help\n", argv[i],
			i + 1 < argc ? argv[i + 1] : "");
		return EXIT_USAGE;
	}
	fprintf(stderr, "carwall: unknown object '%s'; see carwall --help\n", argv[i]);
	return EXIT_USAGE;
}
