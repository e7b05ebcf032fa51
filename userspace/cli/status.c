// SPDX-License-Identifier: GPL-2.0-only
/* `carwall status`: from the agent, or from the pins when no agent runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "control.h"
#include "pins.h"

const char *pin_dir_of(const struct cli *c)
{
	return c->pin_dir ? c->pin_dir : PINS_DEFAULT_DIR;
}

static int status_without_agent(struct cli *c, int agent_error)
{
	struct pins_status pinned;
	const char *pin_dir = pin_dir_of(c);
	int r = pins_read(pin_dir, &pinned);

	if (r < 0)
		return cli_fail(c, "cannot read pins in %s: %s", pin_dir, strerror(-r));
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
		cli_print_json(o);
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
	struct json_object *guards;
	if (json_object_object_get_ex(s, "guard_cgroups", &guards))
		for (size_t i = 0; i < json_object_array_length(guards); i++)
			printf("guard:       %s (a cgroup below it that is no app is refused "
			       "everything)\n",
			       json_object_get_string(json_object_array_get_idx(guards, i)));
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
	if (json_str(s, "ambiguous"))
		printf("DEGRADED:    %s\n", json_str(s, "ambiguous"));
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

int cmd_status(struct cli *c, int argc, char **argv)
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
		return cli_fail(c, "cannot reach carwalld in %s: %s", control_run_dir(c->run_dir),
				 control_strerror(r));
	if (json_str(reply, "error")) {
		r = cli_fail(c, "%s", json_str(reply, "error"));
		json_object_put(reply);
		return r;
	}
	if (c->json)
		cli_print_json(reply);
	else
		status_print(reply);
	json_object_put(reply);
	return EXIT_SUCCESS;
}
