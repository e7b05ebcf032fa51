// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control API: one handler per request of the control socket (status, stats, reload,
 * install, app-cgroup, cgroup-managed; lib/control.h has the protocol) and the JSON they answer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"

struct json_object *json_error(const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(buf));
	return o;
}

static struct json_object *agent_timing_json(const struct agent_timing *t)
{
	struct json_object *o = json_object_new_object();

	JSON_ADD(o, "read", json_object_new_int64((int64_t)t->read_us));
	JSON_ADD(o, "parse", json_object_new_int64((int64_t)t->parse_us));
	JSON_ADD(o, "compile", json_object_new_int64((int64_t)t->compile_us));
	JSON_ADD(o, "apply", json_object_new_int64((int64_t)t->apply_us));
	JSON_ADD(o, "total", json_object_new_int64((int64_t)t->total_us));
	JSON_ADD(o, "cpu", json_object_new_int64((int64_t)t->cpu_us));
	return o;
}

/*
 * The anti-rollback state as it is on disk now: "state" ok, missing or unreadable, and the
 * floor of the bundle in force, with a warning when there is none.
 */
static struct json_object *agent_floor_json(struct agent *a)
{
	_cleanup_(bundle_state_freep) struct bundle_state *s = NULL;
	_cleanup_free_ char *path = NULL;
	struct json_object *o = json_object_new_object();
	const struct bundle_state_entry *e = NULL;
	char why[256], warning[512] = "";
	struct stat st;

	if (asprintf(&path, "%s/%s", a->state_dir, BUNDLE_STATE_FILE) < 0) {
		path = NULL;
		return o;
	}
	JSON_ADD(o, "file", json_object_new_string(path));
	if (bundle_state_load(a->state_dir, &s, why, sizeof(why)) < 0) {
		JSON_ADD(o, "state", json_object_new_string("unreadable"));
		snprintf(warning, sizeof(warning), "the anti-rollback state cannot be read (%s): "
			 "no bundle is accepted until it is repaired", why);
	} else if (stat(path, &st) < 0) {
		JSON_ADD(o, "state", json_object_new_string("missing"));
		snprintf(warning, sizeof(warning), "no anti-rollback state: any version of an "
			 "accepted bundle id is accepted until one is installed");
	} else {
		JSON_ADD(o, "state", json_object_new_string("ok"));
	}
	if (s && a->signed_policy && a->policy) {
		e = bundle_state_find(s, a->policy->bundle.id);
		if (!e)
			snprintf(warning, sizeof(warning), "no floor recorded for bundle '%s' in "
				 "force: any version of it is accepted", a->policy->bundle.id);
	}
	JSON_ADD(o, "floor", e ? json_object_new_int64((int64_t)e->version) : NULL);
	JSON_ADD(o, "warning", warning[0] ? json_object_new_string(warning) : NULL);
	return o;
}

/*
 * The residency of the policy in force: its home region, whether home-only is enforced, and
 * the country database it was loaded with (what identifies it in evidence). NULL: none declared.
 */
static struct json_object *agent_residency_json(const struct agent *a)
{
	const struct policy_residency *res = &a->policy->residency;
	struct json_object *o, *db;
	char built[32] = "-";
	time_t t;

	if (!res->home.name[0])
		return NULL;
	o = json_object_new_object();
	JSON_ADD(o, "home_region", json_object_new_string(res->home.name));
	JSON_ADD(o, "strict", json_object_new_boolean(res->strict));
	JSON_ADD(o, "enforce", json_object_new_string(res->home_only ? "home-only" : "off"));
	if (res->home_only && a->geo.path[0]) {
		t = (time_t)a->geo.build_epoch;
		strftime(built, sizeof(built), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		db = json_object_new_object();
		JSON_ADD(db, "path", json_object_new_string(a->geo.path));
		JSON_ADD(db, "type", json_object_new_string(a->geo.type));
		JSON_ADD(db, "build_date", json_object_new_string(built));
		JSON_ADD(db, "sha256", json_object_new_string(a->geo.sha256));
		JSON_ADD(o, "database", db);
	}
	return o;
}

static struct json_object *agent_status_json(struct agent *a)
{
	struct json_object *o = json_object_new_object();
	struct json_object *hooks = json_object_new_array();
	struct json_object *stale = json_object_new_array();
	struct json_object *guards = json_object_new_array();
	/* A policy no longer trusted is not enforced: only its fail-closed state is. */
	bool enforcing = (a->policy != NULL || a->adopted) && !a->distrust[0];
	char when[64] = "";
	char *const *paths;
	size_t n_followed;

	/*
	 * Register first what was removed or made again; what still is not registered makes
	 * the agent "degraded": some app is not managed as its policy says, and `carwall status
	 * --quiet` fails.
	 */
	agent_refresh(a, "carwall status");
	n_followed = agent_followed(a, &paths);
	for (size_t i = 0; i < n_followed; i++)
		if (agent_cgroup_stale(a, i))
			json_object_array_add(stale, json_object_new_string(paths[i]));
	for (unsigned i = 0; pins_hook_names[i]; i++)
		json_object_array_add(hooks, json_object_new_string(pins_hook_names[i]));
	JSON_ADD(o, "agent", json_object_new_string("running"));
	JSON_ADD(o, "pid", json_object_new_int(getpid()));
	JSON_ADD(o, "enforcing", json_object_new_boolean(enforcing));
	for (size_t g = 0; g < a->n_guards; g++)
		json_object_array_add(guards, json_object_new_string(a->guard_paths[g]));
	JSON_ADD(o, "degraded", json_object_new_boolean(json_object_array_length(stale) > 0 ||
							a->cgroup_error[0] || a->ambiguous[0]));
	JSON_ADD(o, "stale_cgroups", stale);
	JSON_ADD(o, "cgroup_error",
		 a->cgroup_error[0] ? json_object_new_string(a->cgroup_error) : NULL);
	JSON_ADD(o, "ambiguous", a->ambiguous[0] ? json_object_new_string(a->ambiguous) : NULL);
	JSON_ADD(o, "mode", json_object_new_string(a->developer_mode ? "developer" : "production"));
	JSON_ADD(o, "cgroup_root", json_object_new_string(a->cgroup_root));
	JSON_ADD(o, "guard_cgroups", guards);
	JSON_ADD(o, "pin_dir", json_object_new_string(a->pin_dir));
	JSON_ADD(o, "hooks", hooks);
	JSON_ADD(o, "generation", json_object_new_int((int)!loader_next_gen(a->loader)));
	if (a->adopted)
		JSON_ADD(o, "policy_state",
			 json_object_new_string("adopted from the pins of an earlier agent"));
	else if (a->distrust[0])
		JSON_ADD(o, "policy_state",
			 json_object_new_string(a->n_guards
							? "no longer trusted: every app under the "
							  "guard cgroups is refused everything "
							  "(fail closed)"
							: "no longer trusted: every app of the policy "
							  "is refused everything (fail closed)"));
	else if (!a->policy)
		JSON_ADD(o, "policy_state",
			 json_object_new_string("no valid policy: every app under the guard "
						"cgroups is refused everything (fail closed)"));
	else
		JSON_ADD(o, "policy_state", json_object_new_string("loaded"));
	if (a->policy) {
		struct json_object *pol = json_object_new_object();
		struct json_object *apps = json_object_new_array();

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&a->loaded_at));
		JSON_ADD(pol, "path", json_object_new_string(a->policy_path));
		JSON_ADD(pol, "sha256", json_object_new_string(a->policy_sha256));
		JSON_ADD(pol, "loaded_at", json_object_new_string(when));
		JSON_ADD(pol, "apps", json_object_new_int64((int64_t)a->policy->n_apps));
		JSON_ADD(pol, "rules", json_object_new_int64((int64_t)a->policy->n_rules));
		JSON_ADD(pol, "ipv4_prefixes", json_object_new_int64((int64_t)a->stats.dst4));
		JSON_ADD(pol, "ipv6_prefixes", json_object_new_int64((int64_t)a->stats.dst6));
		JSON_ADD(pol, "port_entries", json_object_new_int64((int64_t)a->stats.ports));
		JSON_ADD(pol, "timing_us", agent_timing_json(&a->timing));
		JSON_ADD(pol, "signed", json_object_new_boolean(a->signed_policy));
		if (a->signed_policy && a->policy->has_bundle) {
			const struct policy_bundle_meta *m = &a->policy->bundle;
			struct json_object *bo = json_object_new_object();
			char nb[64], na[64];

			policy_time_format(m->not_before, nb, sizeof(nb));
			policy_time_format(m->not_after, na, sizeof(na));
			JSON_ADD(bo, "id", json_object_new_string(m->id));
			JSON_ADD(bo, "version", json_object_new_int64((int64_t)m->version));
			JSON_ADD(bo, "target", json_object_new_string(m->target));
			JSON_ADD(bo, "not_before", json_object_new_string(nb));
			JSON_ADD(bo, "not_after", json_object_new_string(na));
			JSON_ADD(bo, "expired", json_object_new_boolean(time(NULL) > m->not_after));
			JSON_ADD(bo, "signed_by", json_object_new_string(a->signers));
			JSON_ADD(pol, "bundle", bo);
		}
		JSON_ADD(pol, "residency", agent_residency_json(a));
		JSON_ADD(o, "policy", pol);
		for (size_t i = 0; i < a->policy->n_apps; i++) {
			struct json_object *app = json_object_new_object();
			JSON_ADD(app, "id", json_object_new_string(a->policy->apps[i].id));
			JSON_ADD(app, "cgroup",
				 json_object_new_string(agent_app_cgroup(a, (uint32_t)i)));
			JSON_ADD(app, "template", json_object_new_string(policy_template_name(
							  a->policy->apps[i].template)));
			JSON_ADD(app, "rules",
				 json_object_new_int64((int64_t)a->policy->apps[i].n_rules));
			JSON_ADD(app, "audit", json_object_new_boolean(policy_app_audit(
						       a->policy, &a->policy->apps[i])));
			json_object_array_add(apps, app);
		}
		JSON_ADD(o, "apps", apps);
	}
	JSON_ADD(o, "last_error",
		 a->last_error[0] ? json_object_new_string(a->last_error) : NULL);
	JSON_ADD(o, "distrusted", a->distrust[0] ? json_object_new_string(a->distrust) : NULL);
	if (!a->developer_mode)
		JSON_ADD(o, "anti_rollback", agent_floor_json(a));
	struct json_object *ev = json_object_new_object();
	agent_events_json(a, ev);
	JSON_ADD(o, "events", ev);
	JSON_ADD(o, "overriding_programs", agent_check_overriders(a, false));
	return o;
}

/*
 * The cgroup of an app, made and registered first if it was removed or made again since the
 * policy was applied (a stopped systemd unit removes its cgroup): the one it runs in, else its
 * first (AGL's agl-app@ one for an app that names no template).
 */
static struct json_object *agent_app_cgroup_json(struct agent *a, const char *id)
{
	const char *path;
	uint32_t i;

	if (!a->policy)
		return json_error("no policy loaded by this agent%s",
				  a->adopted ? " (the pinned one is enforced; reload to load one)"
					     : "");
	for (i = 0; i < a->policy->n_apps; i++)
		if (!strcmp(a->policy->apps[i].id, id))
			break;
	if (i == a->policy->n_apps)
		return json_error("app '%s' is not in the policy in force (%s)", id, a->policy_path);

	agent_refresh(a, "asked for by carwall run");
	if (agent_app_ambiguous(a, i))
		return json_error("%s", a->ambiguous);
	path = agent_app_cgroup(a, i);
	/* `carwall run` makes its sub-cgroup there: the app's cgroup is made if it is not there. */
	int r = cgroup_create(path);
	if (r < 0)
		return json_error("cannot make the cgroup %s of app '%s': %s", path, id,
				  strerror(-r));
	if (agent_refresh(a, "asked for by carwall run") < 0)
		return json_error("could not register the cgroup of app '%s': %s", id,
				  a->cgroup_error);
	/* Another template's cgroup of the app may have been made meanwhile. */
	if (agent_app_ambiguous(a, i))
		return json_error("%s", a->ambiguous);

	struct json_object *o = json_object_new_object();
	JSON_ADD(o, "app", json_object_new_string(id));
	JSON_ADD(o, "cgroup", json_object_new_string(agent_app_cgroup(a, i)));
	return o;
}

/*
 * `carwall app wait-managed`: whether the policy in force manages the cgroup at `rel` (its path
 * from the hierarchy's root, as /proc/PID/cgroup shows it), the way the programs judge it: the
 * cgroup or its nearest registered ancestor in the active generation, as an app or as the guard
 * (refused everything). What was removed or made again is registered first.
 */
static struct json_object *agent_cgroup_managed_json(struct agent *a, const char *rel)
{
	_cleanup_free_ char *path = NULL, *cur = NULL;
	size_t mount_len = strlen(a->cgroup_mount);
	struct json_object *o;
	struct cw_app_val val;
	uint32_t gen;
	int r;

	if (rel[0] != '/' || strstr(rel, "/../") || strstr(rel, "/./") ||
	    (strlen(rel) >= 3 && !strcmp(rel + strlen(rel) - 3, "/..")))
		return json_error("'%.200s' is not a cgroup path from the hierarchy's root", rel);
	if (asprintf(&path, "%s%s", a->cgroup_mount, strcmp(rel, "/") ? rel : "") < 0 ||
	    !(cur = strdup(path)))
		return json_error("out of memory");
	agent_refresh(a, "asked for by carwall app wait-managed");

	o = json_object_new_object();
	JSON_ADD(o, "cgroup", json_object_new_string(path));
	/* In (or below) a cgroup of an app found in two templates at once: not its app's. */
	for (size_t k = 0; k < a->n_cgroups && !a->adopted; k++) {
		size_t len = strlen(a->cgroup_paths[k]);

		if ((a->cgroups[k].flags & CW_APP_F_GUARD) ||
		    !agent_app_ambiguous(a, a->cgroups[k].app) ||
		    strncmp(path, a->cgroup_paths[k], len) || (path[len] && path[len] != '/'))
			continue;
		JSON_ADD(o, "managed", json_object_new_boolean(false));
		JSON_ADD(o, "reason", json_object_new_string(a->ambiguous));
		return o;
	}
	/* Deepest first, as the programs look. */
	for (;;) {
		uint64_t id;
		unsigned level;
		char *slash;

		r = cgroup_get_id(cur, &id);
		if (r < 0) {
			char why[1024];

			snprintf(why, sizeof(why), "cgroup %.900s: %s", cur, strerror(-r));
			JSON_ADD(o, "managed", json_object_new_boolean(false));
			JSON_ADD(o, "reason", json_object_new_string(why));
			return o;
		}
		if (cgroup_get_level(a->cgroup_mount, cur, &level) == 0 &&
		    loader_lookup_cgroup(a->loader, id, level, &val) == 0)
			break;
		slash = strrchr(cur, '/');
		if (strlen(cur) <= mount_len || !slash || (size_t)(slash - cur) < mount_len) {
			JSON_ADD(o, "managed", json_object_new_boolean(false));
			JSON_ADD(o, "reason",
				 json_object_new_string(
					 a->cgroup_error[0]
						 ? a->cgroup_error
						 : "neither the cgroup nor any cgroup above it is an app or "
						   "the guard of the policy in force"));
			return o;
		}
		*slash = '\0';
	}
	gen = loader_active_gen(a->loader);
	JSON_ADD(o, "managed", json_object_new_boolean(true));
	JSON_ADD(o, "by", json_object_new_string(cur));
	JSON_ADD(o, "guard", json_object_new_boolean(val.flags & CW_APP_F_GUARD));
	JSON_ADD(o, "audit", json_object_new_boolean(val.flags & CW_APP_F_AUDIT));
	JSON_ADD(o, "app",
		 !(val.flags & CW_APP_F_GUARD) && val.app < a->gen_n_apps[gen]
			 ? json_object_new_string(a->gen_apps[gen][val.app])
			 : NULL);
	return o;
}

/*
 * `carwall bundle install FILE`: the client read the file with its own privileges and sent its
 * bytes (the agent opens no path a client names). They are verified, put in force, and then
 * replace the policy file, so that they are the ones enforced after a restart too.
 */
static struct json_object *agent_install_json(struct agent *a, const struct control_request *req)
{
	const size_t max = a->developer_mode ? POLICY_MAX_FILE_BYTES : BUNDLE_MAX_BYTES;
	const char *name = "installed bundle";
	struct agent_timing t = { .cpu_start_us = thread_cpu_us() };
	uint64_t start = now_us();
	int r;

	log_info("Installing a bundle of %zu bytes sent by pid %d, uid %u (carwall bundle install)",
		 req->payload_size, (int)req->peer.pid, (unsigned)req->peer.uid);
	if (req->payload_size > max)
		return json_error("%s: larger than %zu bytes", name, max);
	r = agent_load_bytes(a, name, req->payload, req->payload_size, start, &t,
			     "carwall bundle install");
	if (r < 0)
		return json_error("%s", a->last_error);
	r = agent_persist_policy(a, req->payload, req->payload_size);
	if (r < 0) {
		log_error_errno(r, "The bundle is in force but %s could not be replaced: %m",
				a->policy_path);
		return json_error("the bundle is in force, but %s could not be replaced (%s): a "
				  "restart would load the previous one",
				  a->policy_path, strerror(-r));
	}
	return agent_status_json(a);
}

static struct json_object *api_status(struct agent *a, const struct control_request *req,
				      const char *arg)
{
	(void)req;
	(void)arg;
	return agent_status_json(a);
}

static struct json_object *api_stats(struct agent *a, const struct control_request *req,
				     const char *arg)
{
	(void)req;
	(void)arg;
	return agent_stats_json(a);
}

static struct json_object *api_reload(struct agent *a, const struct control_request *req,
				      const char *arg)
{
	struct json_object *o;

	(void)req;
	(void)arg;
	if (agent_load_policy(a, "carwall reload") < 0)
		return json_error("%s", a->last_error);
	o = agent_status_json(a);
	JSON_ADD(o, "timing_us", agent_timing_json(&a->timing));
	return o;
}

static struct json_object *api_install(struct agent *a, const struct control_request *req,
				       const char *arg)
{
	(void)arg;
	return agent_install_json(a, req);
}

static struct json_object *api_app_cgroup(struct agent *a, const struct control_request *req,
					  const char *arg)
{
	(void)req;
	return agent_app_cgroup_json(a, arg);
}

static struct json_object *api_names(struct agent *a, const struct control_request *req,
				     const char *arg)
{
	(void)req;
	return agent_names_json(a, arg);
}

static struct json_object *api_cgroup_managed(struct agent *a, const struct control_request *req,
					      const char *arg)
{
	(void)req;
	return agent_cgroup_managed_json(a, arg);
}

static struct json_object *api_consent_list(struct agent *a, const struct control_request *req,
					    const char *arg)
{
	(void)req;
	(void)arg;
	return agent_consent_list_json(a);
}

static struct json_object *api_consent_set(struct agent *a, const struct control_request *req,
					   const char *arg)
{
	return agent_consent_set_json(a, req, arg);
}

/*
 * The requests (lib/control.h): the line alone ("status"), or the verb, a space and its
 * argument ("app-cgroup ID"); install is the one that comes with a payload.
 */
static const struct api_request {
	const char *verb;
	bool with_arg;
	bool with_payload;
	bool consent; /* also for the consent group (control_request.consent_only) */
	struct json_object *(*handle)(struct agent *a, const struct control_request *req,
				      const char *arg);
} api_requests[] = {
	{ "status", false, false, false, api_status },
	{ "stats", false, false, false, api_stats },
	{ "reload", false, false, false, api_reload },
	{ "install", true, true, false, api_install },
	{ "app-cgroup", true, false, false, api_app_cgroup },
	{ "cgroup-managed", true, false, false, api_cgroup_managed },
	{ "names", false, false, false, api_names },
	{ "names", true, false, false, api_names },
	{ "consent-list", false, false, true, api_consent_list },
	{ "consent-set", true, false, true, api_consent_set },
};

struct json_object *agent_handle(const struct control_request *req, void *userdata)
{
	const char *request = req->line;
	struct agent *a = userdata;

	for (size_t i = 0; i < ARRAY_SIZE(api_requests); i++) {
		const struct api_request *q = &api_requests[i];
		size_t len = strlen(q->verb);

		if (strncmp(request, q->verb, len) != 0 || !!req->payload != q->with_payload)
			continue;
		if (req->consent_only && !q->consent &&
		    (request[len] == '\0' || request[len] == ' '))
			return json_error("permission denied: the consent group may only list and "
					  "set consent switches");
		if (!q->with_arg && request[len] == '\0')
			return q->handle(a, req, NULL);
		if (q->with_arg && request[len] == ' ')
			return q->handle(a, req, request + len + 1);
	}
	return json_error("unknown request '%.64s'", request);
}
