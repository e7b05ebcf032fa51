// SPDX-License-Identifier: GPL-2.0-only
/*
 * The app registry: resolving the app cgroups of the policy and the guard, following them with
 * inotify (an app's cgroup made again is registered again), re-registering an adopted policy's
 * cgroups, and the programs of others that run after carwall's on the same cgroups.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "agent.h"

void free_paths(char **paths, size_t n)
{
	if (paths)
		for (size_t i = 0; i < n; i++)
			free(paths[i]);
	free(paths);
}

/*
 * Resolve one cgroup, created first if `create`; otherwise a cgroup that is not there (an app
 * that is not running) gets id 0: it is registered once it is made.
 */
int agent_resolve_cgroup(struct agent *a, const char *path, uint32_t app, bool create,
			 struct loader_cgroup *ret)
{
	int r = create ? cgroup_create(path) : 0;

	ret->id = 0;
	if (r >= 0)
		r = cgroup_get_id(path, &ret->id);
	if (r == -ENOENT && !create)
		r = 0;
	if (r >= 0)
		r = cgroup_get_level(a->cgroup_mount, path, &ret->level);
	ret->app = app;
	return r;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/*
 * The cgroups the agent follows: each app's and the guards (only the guards when the policy
 * was adopted from pins: the agent has no paths of its apps).
 */
size_t agent_followed(const struct agent *a, char *const **ret_paths)
{
	if (a->adopted) {
		*ret_paths = a->guard_paths;
		return a->n_guards;
	}
	*ret_paths = a->cgroup_paths;
	return a->n_cgroups;
}

/* Whether app `app` (its index in the policy) is found in more than one of its cgroups. */
bool agent_cgroups_ambiguous(const struct loader_cgroup *cgroups, size_t n, uint32_t app)
{
	size_t found = 0;

	for (size_t k = 0; k < n; k++)
		if (cgroups[k].app == app && !(cgroups[k].flags & CW_APP_F_GUARD) && cgroups[k].id)
			found++;
	return found > 1;
}

bool agent_app_ambiguous(const struct agent *a, uint32_t app)
{
	return agent_cgroups_ambiguous(a->cgroups, a->n_cgroups, app);
}

/* The cgroup app `app` is registered in, else its first (AGL's agl-app@ one by default). */
const char *agent_app_cgroup(const struct agent *a, uint32_t app)
{
	const char *first = NULL;
	bool ambiguous = agent_app_ambiguous(a, app);

	for (size_t k = 0; k < a->n_cgroups; k++) {
		if (a->cgroups[k].app != app || (a->cgroups[k].flags & CW_APP_F_GUARD))
			continue;
		if (!first)
			first = a->cgroup_paths[k];
		if (a->cgroups[k].id && !ambiguous)
			return a->cgroup_paths[k];
	}
	return first;
}

/*
 * Watch every followed cgroup and each of its parents up to the cgroup root: a folder removed
 * or made again anywhere on the way (AGL's app slice, stopped and started) is noticed. Watches
 * are set again after each change, as a folder made again is a new inode.
 */
void agent_watch_cgroups(struct agent *a)
{
	char *const *paths;
	size_t n = agent_followed(a, &paths), n_dirs = 0, root_len = strlen(a->cgroup_root);
	char **dirs = calloc(n * (CW_MAX_CGROUP_LEVEL + 2) + 1, sizeof(*dirs));
	int r = -ENOMEM;

	for (size_t i = 0; dirs && i < n; i++) {
		_cleanup_free_ char *p = strdup(paths[i]);
		unsigned depth = 0;

		if (!p)
			goto out;
		/* The cgroup, then each parent down to the root (paths are below the root). */
		for (;;) {
			char *slash;

			if (depth++ > CW_MAX_CGROUP_LEVEL + 1)
				break;
			dirs[n_dirs] = strdup(p);
			if (!dirs[n_dirs])
				goto out;
			n_dirs++;
			slash = strrchr(p, '/');
			if (strlen(p) <= root_len || !slash || (size_t)(slash - p) < root_len)
				break;
			*slash = '\0';
		}
	}
	if (dirs) {
		size_t k = 0;

		qsort(dirs, n_dirs, sizeof(*dirs), cmp_str);
		for (size_t i = 0; i < n_dirs; i++) {
			if (k && !strcmp(dirs[i], dirs[k - 1]))
				free(dirs[i]);
			else
				dirs[k++] = dirs[i];
		}
		n_dirs = k;
	}
	r = dirs ? watch_set_dirs(a->watch, dirs, n_dirs) : -ENOMEM;
out:
	if (r < 0)
		log_warning_errno(r, "Cannot watch every app cgroup folder (%zu): %m; a cgroup made "
				     "again there is registered at the next change or request",
				  n_dirs);
	for (size_t i = 0; dirs && i < n_dirs; i++)
		free(dirs[i]);
	free(dirs);
}

/* Whether guard g's cgroup now is a guard of the policy in force. */
static bool agent_guard_registered(const struct agent *a, size_t g)
{
	struct cw_app_val val;
	unsigned level;
	uint64_t id;

	return cgroup_get_id(a->guard_paths[g], &id) == 0 &&
	       cgroup_get_level(a->cgroup_mount, a->guard_paths[g], &level) == 0 &&
	       loader_lookup_cgroup(a->loader, id, level, &val) == 0 &&
	       (val.flags & CW_APP_F_GUARD);
}

/*
 * Whether followed cgroup i is there but is not the one registered (made again, or made since
 * the policy was applied); with adopted pins, whether guard i's cgroup is there but is not a
 * registered guard. A cgroup that is not there is not stale: nothing runs in it, and it is
 * registered when it is made (the agent does not make it again: systemd removes the cgroups of
 * the units it stops, and the app slice once they are all stopped). Except for an app that may
 * run in any of AGL's templates: one of its cgroups gone may leave one to register (it was
 * ambiguous while both were there).
 */
bool agent_cgroup_stale(const struct agent *a, size_t i)
{
	const struct loader_cgroup *c;
	uint64_t id;

	if (a->adopted)
		return cgroup_get_id(a->guard_paths[i], &id) == 0 && !agent_guard_registered(a, i);
	c = &a->cgroups[i];
	if (cgroup_get_id(a->cgroup_paths[i], &id) < 0)
		id = 0;
	if (!(c->flags & CW_APP_F_GUARD) && a->policy && c->app < a->policy->n_apps &&
	    a->policy->apps[c->app].n_cgroups > 1)
		return id != c->id;
	return id && id != c->id;
}

/* Whether an app cgroup (or a guard) was removed or recreated since it was registered. */
bool agent_cgroups_stale(const struct agent *a)
{
	char *const *paths;
	size_t n = agent_followed(a, &paths);

	for (size_t i = 0; i < n; i++)
		if (agent_cgroup_stale(a, i))
			return true;
	return false;
}

/*
 * Adopted pins (no policy in memory to compile): make the guards' cgroups, made again, guards
 * of the policy in force. The maps' policy is copied into the other generation, without the
 * cgroups that are gone and with the guards' new cgroups, and flipped to (every cached verdict
 * is of the old generation). An app cgroup of that policy made again cannot be named (the
 * agent knows no app paths): below a guard, it is refused everything until a valid policy is
 * loaded (fail closed).
 */
static int agent_adopted_reregister(struct agent *a, char *reason, size_t reason_size)
{
	_cleanup_free_ struct loader_active_cgroup *old = NULL;
	_cleanup_free_ struct loader_cgroup *cgroups = NULL;
	_cleanup_close_ int mount_fd = -1;
	struct policy_maps *maps = NULL;
	struct loader_cgroup guards[AGENT_MAX_GUARDS] = {}, pinned_guard = {};
	bool have_guard = false, any_there = false;
	size_t n_old = 0, n = 0;
	int r;

	for (size_t g = 0; g < a->n_guards; g++) {
		r = agent_resolve_cgroup(a, a->guard_paths[g], 0, false, &guards[g]);
		if (r < 0) {
			snprintf(reason, reason_size, "guard cgroup %s: %s", a->guard_paths[g],
				 strerror(-r));
			return r;
		}
		any_there = any_there || guards[g].id;
	}
	if (!any_there)
		return 0; /* none there: each is registered when it is made */
	r = loader_read_active(a->loader, &maps, &old, &n_old);
	if (r < 0) {
		snprintf(reason, reason_size, "reading the pinned policy: %s", strerror(-r));
		return r;
	}
	mount_fd = open(a->cgroup_mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cgroups = calloc(n_old + a->n_guards, sizeof(*cgroups));
	if (mount_fd < 0 || !cgroups) {
		r = mount_fd < 0 ? negative_errno() : -ENOMEM;
		snprintf(reason, reason_size, "%.512s: %s", a->cgroup_mount, strerror(-r));
		policy_maps_free(maps);
		return r;
	}
	for (size_t i = 0; i < n_old; i++) {
		bool is_guard = false;
		char path[4096];
		unsigned level;

		if ((old[i].val.flags & CW_APP_F_GUARD) && !have_guard) {
			pinned_guard.app = old[i].val.app;
			pinned_guard.flags = old[i].val.flags;
			have_guard = true;
		}
		for (size_t g = 0; g < a->n_guards; g++)
			is_guard = is_guard || old[i].key.cgroup_id == guards[g].id;
		/* A cgroup that is gone is dropped (ids are never reused); live ones keep theirs. */
		if (is_guard ||
		    cgroup_path_of_id(mount_fd, old[i].key.cgroup_id, path, sizeof(path)) < 0 ||
		    cgroup_get_level(a->cgroup_mount, path, &level) < 0)
			continue;
		cgroups[n++] = (struct loader_cgroup){ .id = old[i].key.cgroup_id,
						       .level = level,
						       .app = old[i].val.app,
						       .flags = old[i].val.flags,
						       .uid = old[i].val.uid };
	}
	if (!have_guard) {
		snprintf(reason, reason_size,
			 "the pinned policy has no guard cgroup to register %.900s as",
			 a->guards_text);
		policy_maps_free(maps);
		return -ENOENT;
	}
	for (size_t g = 0; g < a->n_guards; g++) {
		if (!guards[g].id)
			continue;
		guards[g].app = pinned_guard.app;
		guards[g].flags = pinned_guard.flags;
		cgroups[n++] = guards[g];
	}
	/* The pinned policy's number of apps is not known here: every app slot is zeroed. */
	r = loader_apply(a->loader, maps, cgroups, n, CW_APP_SLOTS);
	policy_maps_free(maps);
	if (r < 0)
		snprintf(reason, reason_size, "writing the BPF maps: %s", strerror(-r));
	return r;
}

/* Register the cgroups of the policy in force again (after a unit restart made new ones). */
static int agent_reapply(struct agent *a, const char *why)
{
	struct agent_timing t = {};
	char reason[1024] = "";
	char sha[65];
	int r;

	if (a->adopted) {
		r = agent_adopted_reregister(a, reason, sizeof(reason));
	} else {
		snprintf(sha, sizeof(sha), "%s", a->policy_sha256);
		r = agent_apply(a, a->policy, sha, false, &t, reason, sizeof(reason), NULL);
	}
	if (r < 0) {
		snprintf(a->cgroup_error, sizeof(a->cgroup_error), "%s", reason);
		return log_error_errno(r, "Could not register app cgroups again (%s): %s", why,
				       reason);
	}
	a->cgroup_error[0] = '\0';
	log_info("Registered the app cgroups again (%s)%s", why,
		 a->adopted ? ": the guards; the adopted policy's apps made again are below them"
			    : "");
	return 0;
}

/*
 * Follow the cgroups of the policy in force: watch them and their parents again, then register
 * again what was removed or made again. The check comes after the watches are set, so a change
 * is either seen here or reported by inotify. Bounded: a cgroup removed again at once is left
 * to its event.
 */
int agent_refresh(struct agent *a, const char *why)
{
	int r = 0;

	for (int round = 0; round < 3; round++) {
		if (a->adopted || round == 0)
			agent_watch_cgroups(a); /* agent_apply() sets them itself */
		if (!agent_cgroups_stale(a)) {
			a->cgroup_error[0] = '\0';
			return 0;
		}
		r = agent_reapply(a, why);
		if (r < 0)
			return r;
	}
	if (!agent_cgroups_stale(a))
		return 0;
	snprintf(a->cgroup_error, sizeof(a->cgroup_error),
		 "app cgroups keep being removed or made again");
	return -EAGAIN;
}

/*
 * Another program that runs after carwall's on a destination hook could rewrite the destination
 * carwall judged: warn about each (at start and at each reload), and list them in status.
 */
struct json_object *agent_check_overriders(struct agent *a, bool warn)
{
	struct loader_foreign found[16];
	struct json_object *list = json_object_new_array();
	size_t n = 0;
	int r = loader_find_overriders(a->loader, a->cgroup_root, found, ARRAY_SIZE(found), &n);

	if (r < 0) {
		if (warn)
			log_warning_errno(r, "Cannot list the programs attached with carwall's: %m");
		return list;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();

		if (warn)
			log_warning("Program %u (%s) runs after carwall's %s for sockets below %s: it "
				    "could rewrite destinations carwall judged. Remove it, or attach "
				    "carwall above it.",
				    found[i].prog_id, found[i].prog_name, found[i].hook,
				    a->cgroup_root);
		JSON_ADD(o, "hook", json_object_new_string(found[i].hook));
		JSON_ADD(o, "prog_id", json_object_new_int64(found[i].prog_id));
		JSON_ADD(o, "prog_name", json_object_new_string(found[i].prog_name));
		json_object_array_add(list, o);
	}
	return list;
}
