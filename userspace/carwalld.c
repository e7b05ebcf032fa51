// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwalld: the carwall agent. Loads the BPF programs, fills their maps from the policy,
 * attaches them at the cgroup root with pinned bpf_links (enforcement outlives this process),
 * reloads the policy atomically (control socket, SIGHUP, a change of the file), registers app
 * cgroups that appear later, and answers the CLI. Foreground process, logs to stderr.
 *
 * Fail closed: the "guard" cgroup (by default AGL's app slice, where every
 * agl-app@<id>.service lives) is registered as an app with no rules, so a cgroup that appears
 * under it is refused everything until it is registered as its app, and every app there is
 * refused everything while no valid policy has been loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libgen.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bundle.h"
#include "bundle_state.h"
#include "cgroup.h"
#include "control.h"
#include "events.h"
#include "fileio.h"
#include "loader.h"
#include "log.h"
#include "notify.h"
#include "policy.h"
#include "policy_compile.h"
#include "revoke.h"
#include "util.h"
#include "watch.h"

#define DEFAULT_POLICY "/etc/carwall/policy.yaml"
#define DEFAULT_STATE_DIR "/var/lib/carwall"
#define DEFAULT_GUARD "system.slice/system-agl\\x2dapp.slice"
#define DEFAULT_EVENT_RATE 10000
#define DEFAULT_TRUST_DIR "/etc/carwall/keys"
#define DEFAULT_TARGET_FILE "/etc/carwall/target"
#define DEFAULT_BUNDLE_ID_FILE "/etc/carwall/bundle-id"

#define JSON_ADD(o, key, value) json_object_object_add((o), (key), (value))

/* A change of the policy file is applied once writes have settled for this long. */
#define RELOAD_DEBOUNCE_MS 100

struct agent_timing {
	uint64_t read_us, parse_us, compile_us, apply_us, total_us;
};

/* An app's counters from the generations retired since the agent started. */
struct agent_app_total {
	char *id;
	struct cw_app_counters c;
};

struct agent {
	/* Options. */
	const char *policy_path;
	const char *pin_dir;
	const char *run_dir;
	const char *state_dir;
	gid_t control_group;
	uint32_t event_rate;
	bool developer_mode; /* accept unsigned policies: never on a vehicle */
	const char *trust_dir;
	char target[POLICY_MAX_ID_LEN + 1];
	char bundle_ids[BUNDLE_MAX_ACCEPTED_IDS][POLICY_MAX_ID_LEN + 1]; /* --bundle-id */
	const char *bundle_id_list[BUNDLE_MAX_ACCEPTED_IDS];
	size_t n_bundle_ids;
	unsigned threshold;
	char cgroup_root[4096];
	char cgroup_mount[4096];
	char *guard_path; /* absolute; NULL when the guard is disabled */

	struct loader *loader;
	struct watch *watch;
	int timer_fd;
	int expiry_fd; /* fires when the bundle in force expires */

	/*
	 * The policy in force with what it was resolved to on this host; NULL while none is
	 * (then only the guard is registered, or an earlier agent's pinned policy stays).
	 */
	struct policy *policy;
	char policy_sha256[65];
	struct loader_cgroup *cgroups; /* the apps in policy order, then the guard */
	size_t n_cgroups;
	char **cgroup_paths; /* n_cgroups entries */
	time_t loaded_at;
	struct policy_maps_stats {
		size_t dst4, dst6, ports, portsets;
	} stats;
	struct agent_timing timing; /* of the last policy that was applied */
	bool adopted;		    /* the maps hold a policy pinned by an earlier agent */
	bool signed_policy;	    /* the policy in force came in a verified bundle */
	char signers[256];	    /* key ids (short) of its valid signatures */
	/*
	 * The bytes of the bundle in force, verified again at every reload against the trust
	 * folder, target, bundle ids and floor of that moment (with the time it went in force:
	 * expiry is checked when a bundle goes in force, not while it is in force).
	 */
	char *bundle_data;
	size_t bundle_size;
	time_t bundle_verified_at;
	uint8_t bundle_payload_sha256[BUNDLE_SHA256_BYTES];
	/* Why the policy that was in force is no longer trusted (then fail closed); "" if not. */
	char distrust[1024];
	bool revoke_unsupported_warned;

	/* The last refused policy, "" when the last attempt succeeded. */
	char last_error[1024];

	/* Evidence: events from the ring buffer, and the app ids of each generation. */
	struct ring_buffer *events_rb;
	struct events_log *events_log;
	char **gen_apps[CW_GENERATIONS];
	size_t gen_n_apps[CW_GENERATIONS];
	uint64_t events_received;
	uint64_t events_log_errors;
	struct agent_app_total *totals;
	size_t n_totals;
};

static struct agent_app_total *agent_total(struct agent *a, const char *id)
{
	struct agent_app_total *t;

	for (size_t i = 0; i < a->n_totals; i++)
		if (!strcmp(a->totals[i].id, id))
			return &a->totals[i];
	t = reallocarray(a->totals, a->n_totals + 1, sizeof(*t));
	if (!t)
		return NULL;
	a->totals = t;
	t = &a->totals[a->n_totals];
	memset(t, 0, sizeof(*t));
	t->id = strdup(id);
	if (!t->id)
		return NULL;
	a->n_totals++;
	return t;
}

/*
 * Generation `gen` is about to be reused: add what its apps counted to the agent's totals, and
 * record the app ids it will hold, so that events and counters are named as the policy names
 * things.
 */
static void agent_retire_gen(struct agent *a, uint32_t gen, const struct policy *next)
{
	for (size_t i = 0; i < a->gen_n_apps[gen]; i++) {
		struct agent_app_total *t = agent_total(a, a->gen_apps[gen][i]);
		struct cw_app_counters c;

		if (t && loader_read_app_counters(a->loader, gen, (uint32_t)i, &c) == 0) {
			t->c.allowed += c.allowed;
			t->c.refused += c.refused;
			t->c.audited += c.audited;
			t->c.events_dropped += c.events_dropped;
		}
		free(a->gen_apps[gen][i]);
	}
	free(a->gen_apps[gen]);
	a->gen_apps[gen] = NULL;
	a->gen_n_apps[gen] = 0;
	if (!next || !next->n_apps)
		return;
	a->gen_apps[gen] = calloc(next->n_apps, sizeof(char *));
	if (!a->gen_apps[gen])
		return;
	for (size_t i = 0; i < next->n_apps; i++)
		a->gen_apps[gen][i] = strdup(next->apps[i].id);
	a->gen_n_apps[gen] = next->n_apps;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void free_paths(char **paths, size_t n)
{
	if (paths)
		for (size_t i = 0; i < n; i++)
			free(paths[i]);
	free(paths);
}

/* Create (if needed) and resolve one cgroup. */
static int agent_resolve_cgroup(struct agent *a, const char *path, uint32_t app,
				struct loader_cgroup *ret)
{
	int r = cgroup_create(path);

	if (r >= 0)
		r = cgroup_get_id(path, &ret->id);
	if (r >= 0)
		r = cgroup_get_level(a->cgroup_mount, path, &ret->level);
	ret->app = app;
	return r;
}

/*
 * Cut the established connections of apps that the policy now in force refuses (the egress
 * program drops their packets from the flip on; this destroys the sockets, so that the app
 * sees the connection end at once). A network namespace that could not be enumerated is said,
 * with what failed: its connections were not checked, which is not "nothing to cut".
 */
static void agent_revoke(struct agent *a, const struct policy *pol, const struct policy_maps *maps,
			 const struct loader_cgroup *cgroups, char *const *paths, size_t n)
{
	_cleanup_free_ struct revoke_cgroup *rc = calloc(n + 1, sizeof(*rc));
	struct revoke_stats rs = {};
	int r;

	if (!rc) {
		log_warning("Out of memory: established flows not checked against the new policy");
		return;
	}
	for (size_t i = 0; i < n; i++)
		rc[i] = (struct revoke_cgroup){ .path = paths[i], .app = cgroups[i].app };
	r = revoke_run(&(struct revoke_params){ .cgroup_mount = a->cgroup_mount,
						.cgroups = rc,
						.n_cgroups = n,
						.maps = maps,
						.n_apps = (uint32_t)pol->n_apps,
						.sk_state_fd = loader_sk_state_fd(a->loader) },
		       &rs);
	if (r == -EOPNOTSUPP) {
		if (!a->revoke_unsupported_warned)
			log_warning("This kernel cannot destroy sockets (CONFIG_INET_DIAG_DESTROY): "
				    "established connections are not cut on reload; their packets "
				    "are dropped by the egress program");
		a->revoke_unsupported_warned = true;
		return;
	}
	if (rs.netns_failed)
		log_warning_errno(rs.netns_error,
				  "Revoking established flows: %u of %u network namespaces could not "
				  "be enumerated (the first at %s: %m): their connections were not "
				  "checked against the new policy",
				  rs.netns_failed, rs.netns, rs.netns_failed_at);
	else if (r < 0)
		log_warning_errno(r, "Revoking established flows: %m");
	if (rs.destroyed || rs.errors) {
		log_info("Cut %u established flows the policy refuses, kept %u (%u unjudged, %u "
			 "errors) in %llu us",
			 rs.destroyed, rs.kept, rs.unjudged, rs.errors,
			 (unsigned long long)rs.elapsed_us);
	}
}

/* The anti-rollback state to save before a bundle goes in force, and the one it replaces. */
struct agent_floor {
	const struct bundle_state *next;
	const struct bundle_state *prev;
};

/*
 * Make `p` the policy in force (NULL: no policy, only the guard): create and resolve each app's
 * cgroup and the guard, compile for the inactive generation, save the anti-rollback floor (when
 * `floor` is not NULL), write the maps and flip. On failure the policy in force is untouched,
 * *reason says why and p stays the caller's. On success the agent owns p (it may be the policy
 * in force, applied again to register a recreated cgroup).
 */
static int agent_apply(struct agent *a, struct policy *p, const char *sha256,
		       struct agent_timing *t, char *reason, size_t reason_size,
		       const struct agent_floor *floor)
{
	static struct policy none = { .path = (char *)"(none)" };
	const struct policy *pol = p ? p : &none;
	size_t n = pol->n_apps + (a->guard_path ? 1 : 0);
	struct loader_cgroup *cgroups = calloc(n + 1, sizeof(*cgroups));
	char **paths = calloc(n + 1, sizeof(*paths));
	struct policy_maps *maps = NULL;
	uint64_t t0;
	int r;

	if (!cgroups || !paths) {
		r = -ENOMEM;
		snprintf(reason, reason_size, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < pol->n_apps; i++) {
		if (asprintf(&paths[i], "%s/%s", a->cgroup_root, pol->apps[i].cgroup) < 0) {
			paths[i] = NULL;
			r = -ENOMEM;
			snprintf(reason, reason_size, "out of memory");
			goto fail;
		}
		/* Created now, so that the app is judged from its first connect() on. */
		r = agent_resolve_cgroup(a, paths[i], (uint32_t)i, &cgroups[i]);
		if (r < 0) {
			snprintf(reason, reason_size, "app '%s': cgroup %s: %s", pol->apps[i].id,
				 paths[i], strerror(-r));
			goto fail;
		}
		if (policy_app_audit(pol, &pol->apps[i]))
			cgroups[i].flags |= CW_APP_F_AUDIT;
	}
	if (a->guard_path) {
		/* An app index with no rules: everything is refused below the guard. */
		size_t g = pol->n_apps;

		paths[g] = strdup(a->guard_path);
		if (!paths[g]) {
			r = -ENOMEM;
			snprintf(reason, reason_size, "out of memory");
			goto fail;
		}
		r = agent_resolve_cgroup(a, paths[g], (uint32_t)pol->n_apps, &cgroups[g]);
		if (r < 0) {
			snprintf(reason, reason_size, "guard cgroup %s: %s", paths[g], strerror(-r));
			goto fail;
		}
		cgroups[g].flags = CW_APP_F_GUARD | (pol->audit ? CW_APP_F_AUDIT : 0);
	}

	t0 = now_us();
	r = policy_compile(pol, loader_next_gen(a->loader), &maps, reason, reason_size);
	if (r < 0) {
		if (!reason[0])
			snprintf(reason, reason_size, "compiling the policy: %s", strerror(-r));
		goto fail;
	}
	t->compile_us = now_us() - t0;
	/*
	 * The floor is durably on disk before the bundle goes in force, never after: a bundle in
	 * force whose floor was not saved lets its predecessor install again after a reboot. So
	 * everything that can refuse the policy (cgroups, limits, compiling) is done first, then
	 * the floor is saved (fsync'd file and folder; a failure refuses the bundle and the policy
	 * in force stays), then the maps are written. If writing them fails, the previous floor
	 * is written back, so that the policy that stays in force is not below it. Should that
	 * fail too, the next reload finds the policy in force below the floor and fails closed:
	 * a raised floor can only ever tighten.
	 */
	if (floor) {
		r = bundle_state_save(a->state_dir, floor->next);
		if (r < 0) {
			snprintf(reason, reason_size,
				 "cannot save the anti-rollback state in %s (%s): the bundle is not "
				 "put in force until its floor is on disk",
				 a->state_dir, strerror(-r));
			/* A failure after the rename would leave the new floor: put back the old. */
			(void)bundle_state_save(a->state_dir, floor->prev);
			goto fail;
		}
	}
	agent_retire_gen(a, loader_next_gen(a->loader), pol);
	t0 = now_us();
	r = loader_apply(a->loader, maps, cgroups, n);
	if (r < 0) {
		snprintf(reason, reason_size, "writing the policy into the BPF maps: %s",
			 strerror(-r));
		if (floor && bundle_state_save(a->state_dir, floor->prev) < 0)
			log_error("Cannot put back the anti-rollback state in %s: the policy in force "
				  "is below the saved floor and is refused at the next reload",
				  a->state_dir);
		goto fail;
	}
	t->apply_us = now_us() - t0;
	agent_revoke(a, pol, maps, cgroups, paths, n);

	free(a->cgroups);
	free_paths(a->cgroup_paths, a->n_cgroups);
	if (a->policy != p)
		policy_free(a->policy);
	a->policy = p;
	a->cgroups = cgroups;
	a->cgroup_paths = paths;
	a->n_cgroups = n;
	a->adopted = false;
	a->loaded_at = time(NULL);
	a->stats.dst4 = maps->n_dst4;
	a->stats.dst6 = maps->n_dst6;
	a->stats.ports = maps->n_ports;
	a->stats.portsets = maps->n_portsets;
	snprintf(a->policy_sha256, sizeof(a->policy_sha256), "%s", sha256);
	policy_maps_free(maps);

	/* Watch where app cgroups appear again: the guard, and the parents of explicit ones. */
	char *dirs[WATCH_MAX_DIRS];
	size_t n_dirs = 0;
	for (size_t i = 0; i < n && n_dirs < WATCH_MAX_DIRS; i++) {
		if (a->guard_path && i == pol->n_apps) {
			dirs[n_dirs++] = a->guard_path;
			continue;
		}
		char *slash = strrchr(paths[i], '/');
		if (slash) {
			*slash = '\0';
			dirs[n_dirs++] = strdup(paths[i]);
			*slash = '/';
		}
	}
	r = watch_set_dirs(a->watch, dirs, n_dirs);
	for (size_t i = 0; i < n_dirs; i++)
		if (dirs[i] != a->guard_path)
			free(dirs[i]);
	if (r < 0)
		log_warning_errno(r, "Cannot watch the app cgroup folders: %m");
	return 0;
fail:
	policy_maps_free(maps);
	free(cgroups);
	free_paths(paths, n);
	return r;
}

/* Whether an app cgroup (or the guard) was removed or recreated since it was registered. */
static bool agent_cgroups_stale(const struct agent *a)
{
	for (size_t i = 0; i < a->n_cgroups; i++) {
		uint64_t id;

		if (cgroup_get_id(a->cgroup_paths[i], &id) < 0 || id != a->cgroups[i].id)
			return true;
	}
	return false;
}

/* Register the cgroups of the policy in force again (after a unit restart made new ones). */
static int agent_reapply(struct agent *a, const char *why)
{
	struct agent_timing t = {};
	char reason[1024] = "";
	char sha[65];
	int r;

	if (a->adopted)
		return 0; /* nothing in memory to re-apply; the next reload registers them */
	snprintf(sha, sizeof(sha), "%s", a->policy_sha256);
	r = agent_apply(a, a->policy, sha, &t, reason, sizeof(reason), NULL);
	if (r < 0)
		return log_error_errno(r, "Could not register app cgroups again (%s): %s", why,
				       reason);
	log_info("Registered the app cgroups again (%s)", why);
	return 0;
}

/*
 * Another program that runs after carwall's on a destination hook could rewrite the destination
 * carwall judged: warn about each (at start and at each reload), and list them in status.
 */
static struct json_object *agent_check_overriders(struct agent *a, bool warn)
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

static int sha256_hex(const void *data, size_t size, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) || len != 32)
		return -EIO;
	for (unsigned i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/*
 * Read, parse, validate, compile and apply the policy file. A policy that fails at any step
 * leaves the one in force untouched; the reason is logged and kept for `carwall status`.
 */
static int agent_load_policy_once(struct agent *a, const char *why);

/* A policy load allocates and frees a lot: give what is free back to the system. */
static int agent_load_policy(struct agent *a, const char *why)
{
	int r = agent_load_policy_once(a, why);

	malloc_trim(0);
	return r;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_trust *, bundle_trust_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_state *, bundle_state_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle *, bundle_free)

/* Production mode: the trust folder as it is now (read at every load: no restart needed). */
static int agent_trust_load(struct agent *a, struct bundle_trust **ret, char *reason,
			    size_t reason_size)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *trust = NULL;
	struct bundle_error err = {};
	int r;

	r = bundle_trust_load(a->trust_dir, &trust, &err);
	if (r < 0) {
		snprintf(reason, reason_size, "trusted keys in %s: %s", a->trust_dir, err.message);
		return r;
	}
	r = bundle_trust_set_threshold(trust, a->threshold);
	if (r < 0) {
		snprintf(reason, reason_size, "threshold %u: %s", a->threshold, strerror(-r));
		return r;
	}
	*ret = TAKE_PTR(trust);
	return 0;
}

/* A copy of an anti-rollback state, to add to while the original is kept to put back. */
static int agent_state_copy(const struct bundle_state *s, struct bundle_state **ret)
{
	_cleanup_(bundle_state_freep) struct bundle_state *c = NULL;
	int r = bundle_state_new(&c);

	for (size_t i = 0; r >= 0 && i < s->n_entries; i++)
		r = bundle_state_set(c, s->entries[i].id, s->entries[i].version,
				     s->entries[i].sha256);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}

/*
 * Verify bundle bytes as this device must: trusted keys, threshold, target, accepted bundle
 * ids, validity at `now`, and the floor of `state` (NULL: not checked), then parse exactly the
 * verified bytes.
 */
static int agent_verify_bundle(struct agent *a, const struct bundle_trust *trust,
			       const struct bundle_state *state, const char *name, const char *data,
			       size_t size, time_t now, struct bundle **ret, char *reason,
			       size_t reason_size)
{
	struct bundle_expect want = { .target = a->target,
				      .ids = a->bundle_id_list,
				      .n_ids = a->n_bundle_ids,
				      .now = now,
				      .state = state };
	const char *pinned[BUNDLE_STATE_MAX_ENTRIES];
	struct bundle_error err = {};
	int r;

	/*
	 * No bundle id configured: the ids this unit has accepted before (the anti-rollback
	 * state) are the only ones accepted; only a unit that never accepted a bundle takes the
	 * id of its first one (trust on first use, warned about at start).
	 */
	if (!a->n_bundle_ids && state && state->n_entries) {
		for (size_t i = 0; i < state->n_entries && i < ARRAY_SIZE(pinned); i++)
			pinned[i] = state->entries[i].id;
		want.ids = pinned;
		want.n_ids = state->n_entries < ARRAY_SIZE(pinned) ? state->n_entries
								    : ARRAY_SIZE(pinned);
	}

	r = bundle_verify(trust, name, data, size, &want, ret, &err);
	if (r < 0 && err.reason == BUNDLE_INVALID_POLICY)
		policy_error_format(&err.policy, reason, reason_size);
	else if (r < 0)
		snprintf(reason, reason_size, "%s: bundle refused (%s): %s", name,
			 bundle_reason_name(err.reason), err.message);
	return r;
}

/*
 * Whether the bundle in force still verifies with the trust folder, target, bundle ids and
 * floor of now. Its validity window is judged at the time it went in force: an expired bundle
 * stays in force while the agent runs (and is refused at a restart). `trust` NULL: the trust
 * folder is unusable (trust_error says why), so nothing verifies; `disk` NULL: the floor cannot
 * be read, which refuses new bundles but is not held against the one in force. Returns 0 when
 * it verifies or no bundle is in force, else < 0 with *reason.
 */
static int agent_check_in_force(struct agent *a, const struct bundle_trust *trust,
				const struct bundle_state *disk, const char *trust_error,
				char *reason, size_t reason_size)
{
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	char why[1024] = "";
	int r;

	if (!a->bundle_data || !a->policy)
		return 0;
	if (!trust)
		r = -EKEYREJECTED;
	else
		r = agent_verify_bundle(a, trust, disk, a->policy->path, a->bundle_data,
					a->bundle_size, a->bundle_verified_at, &b, why, sizeof(why));
	if (r == -ENOMEM)
		return 0; /* no verdict on the bundle: it is judged again at the next load */
	if (r < 0)
		snprintf(reason, reason_size, "bundle '%s' version %" PRIu64 " in force no longer "
			 "verifies: %s", a->policy->bundle.id, a->policy->bundle.version,
			 trust ? why : trust_error);
	return r;
}

/* No bundle is in force any more (a plain policy or none is). */
static void agent_forget_bundle(struct agent *a)
{
	free(a->bundle_data);
	a->bundle_data = NULL;
	a->bundle_size = 0;
	a->signed_policy = false;
	a->signers[0] = '\0';
	if (a->expiry_fd >= 0)
		timerfd_settime(a->expiry_fd, TFD_TIMER_ABSTIME, &(struct itimerspec){}, NULL);
}

/* Every rule of p removed, audit mode off: its apps may reach nothing. */
static void agent_strip_rules(struct policy *p)
{
	for (size_t i = 0; i < p->n_apps; i++) {
		struct policy_app *app = &p->apps[i];

		for (size_t j = 0; j < app->n_rules; j++) {
			free(app->rules[j].to);
			free(app->rules[j].ports);
		}
		free(app->rules);
		app->rules = NULL;
		app->n_rules = 0;
		app->audit = false;
		app->audit_set = true;
	}
	p->n_rules = 0;
	p->audit = false;
}

/*
 * The policy in force is no longer trusted: apply the fail-closed state, as at a start without
 * a valid policy: only the guard, so every app below it is refused everything. Without a guard
 * cgroup there would be nothing left to refuse with, so the apps of the policy stay registered
 * with every rule removed.
 */
static void agent_fail_closed(struct agent *a, const char *why, const char *distrust)
{
	struct agent_timing t = {};
	char reason[1024] = "";
	struct policy *p = NULL;
	int r;

	snprintf(a->distrust, sizeof(a->distrust), "%s", distrust);
	if (!a->guard_path && a->policy) {
		p = a->policy;
		agent_strip_rules(p);
	}
	r = agent_apply(a, p, "", &t, reason, sizeof(reason), NULL);
	if (r < 0) {
		log_error("The policy in force is no longer trusted (%s): %s. Applying the "
			  "fail-closed state failed: %s",
			  why, distrust, reason);
		return;
	}
	agent_forget_bundle(a);
	if (a->guard_path)
		log_error("The policy in force is no longer trusted (%s): %s. Failing closed: every "
			  "app below %s is refused everything until a bundle that verifies is "
			  "installed",
			  why, distrust, a->guard_path);
	else
		log_error("The policy in force is no longer trusted (%s): %s. Failing closed: its "
			  "apps are refused everything until a bundle that verifies is installed",
			  why, distrust);
}

/* No new bytes to load (the file cannot be read), but the bundle in force is judged again. */
static void agent_recheck_in_force(struct agent *a, const char *why)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *trust = NULL;
	_cleanup_(bundle_state_freep) struct bundle_state *disk = NULL;
	char trust_error[1024] = "", distrust[1024] = "", state_why[256];

	if (a->developer_mode || !a->bundle_data)
		return;
	if (agent_trust_load(a, &trust, trust_error, sizeof(trust_error)) >= 0 &&
	    bundle_state_load(a->state_dir, &disk, state_why, sizeof(state_why)) < 0)
		disk = NULL;
	if (agent_check_in_force(a, trust, disk, trust_error, distrust, sizeof(distrust)) < 0)
		agent_fail_closed(a, why, distrust);
}

/*
 * Load policy bytes read once from `name`: verify (production) or parse (developer mode),
 * validate, compile and apply. A policy that fails at any step leaves the one in force
 * untouched; the reason is logged and kept for `carwall status`.
 *
 * In production mode the bundle in force is verified again first, with the trust folder,
 * target, bundle ids and floor of now. Two failures are told apart: new bytes that do not
 * verify are refused and the last good policy stays; a bundle in force that no longer verifies
 * (its key revoked or removed, the threshold raised, the target or bundle ids changed, the
 * floor raised above it) is no longer trusted, and unless new bytes that verify replace it, the
 * agent fails closed.
 */
static int agent_load_bytes(struct agent *a, const char *name, const char *data, size_t size,
			    uint64_t start, struct agent_timing *t, const char *why)
{
	_cleanup_(bundle_trust_freep) struct bundle_trust *trust = NULL;
	_cleanup_(bundle_state_freep) struct bundle_state *disk = NULL, *state = NULL;
	_cleanup_(bundle_freep) struct bundle *b = NULL;
	_cleanup_free_ char *copy = NULL;
	struct agent_floor floor = {};
	const struct agent_floor *save = NULL;
	struct policy_error perr = {};
	struct policy *p = NULL;
	char reason[1024] = "", distrust[1024] = "", state_why[256];
	uint64_t t0 = now_us();
	time_t now = time(NULL);
	char sha[65];
	int r;

	r = sha256_hex(data, size, sha);
	if (r < 0)
		snprintf(reason, sizeof(reason), "%s: hashing failed", name);
	if (r >= 0 && !a->developer_mode) {
		r = agent_trust_load(a, &trust, reason, sizeof(reason));
		if (r >= 0) {
			r = bundle_state_load(a->state_dir, &disk, state_why, sizeof(state_why));
			if (r < 0)
				snprintf(reason, sizeof(reason),
					 "anti-rollback state in %s cannot be read (%s): no bundle is "
					 "accepted until it is repaired",
					 a->state_dir, state_why);
		}
		(void)agent_check_in_force(a, trust, disk, reason, distrust, sizeof(distrust));
		if (r >= 0)
			r = agent_state_copy(disk, &state);
		if (r >= 0 && a->bundle_data && !distrust[0]) {
			/* The bundle in force is a floor too, whether or not the file says so. */
			const struct policy_bundle_meta *m = &a->policy->bundle;

			if (!bundle_state_find(disk, m->id)) {
				log_warning("The anti-rollback state in %s has no floor for bundle '%s' "
					    "in force (the state was lost?): version %" PRIu64
					    " is recorded again",
					    a->state_dir, m->id, m->version);
				floor = (struct agent_floor){ .next = state, .prev = disk };
				save = &floor;
			}
			r = bundle_state_set(state, m->id, m->version, a->bundle_payload_sha256);
		}
		if (r < 0 && !reason[0])
			snprintf(reason, sizeof(reason), "anti-rollback state: %s", strerror(-r));
	}
	if (r >= 0 && a->policy && !a->adopted && !distrust[0] && !strcmp(sha, a->policy_sha256) &&
	    !agent_cgroups_stale(a)) {
		/* Verified again just above (production mode): nothing to apply. */
		if (save) {
			r = bundle_state_save(a->state_dir, state);
			if (r < 0)
				log_error_errno(r, "Cannot save the anti-rollback state in %s: %m",
						a->state_dir);
		}
		/* An error about this file is over: it holds the policy in force again. An error
		 * about another one (a refused install) stays. */
		if (!strncmp(a->last_error, name, strlen(name)))
			a->last_error[0] = '\0';
		log_info("Policy %s unchanged (%s)", name, why);
		json_object_put(agent_check_overriders(a, true));
		return 0;
	}
	if (r >= 0 && a->developer_mode) {
		r = policy_parse_buffer(name, data, size, &p, &perr);
		if (r < 0)
			policy_error_format(&perr, reason, sizeof(reason));
		else
			log_warning("DEVELOPER MODE: %s is enforced without a signature check", name);
	} else if (r >= 0) {
		r = agent_verify_bundle(a, trust, state, name, data, size, now, &b, reason,
					sizeof(reason));
		if (r >= 0 && !bundle_state_find(state, b->policy->bundle.id))
			log_warning("No anti-rollback floor for bundle '%s' in %s (first install, or "
				    "the state was lost): any version of it is accepted; version %"
				    PRIu64 " becomes the floor",
				    b->policy->bundle.id, a->state_dir, b->policy->bundle.version);
		if (r >= 0 && !b->already_installed) {
			floor = (struct agent_floor){ .next = state, .prev = disk };
			save = &floor;
			r = bundle_state_record(state, b);
			if (r < 0)
				snprintf(reason, sizeof(reason), "%s: recording its floor: %s", name,
					 strerror(-r));
		}
		if (r >= 0) {
			/* Kept to verify the bundle again at every reload. */
			copy = malloc(size);
			if (copy)
				memcpy(copy, data, size);
			else
				r = -ENOMEM;
			if (r < 0)
				snprintf(reason, sizeof(reason), "out of memory");
		}
		if (r >= 0)
			p = TAKE_PTR(b->policy);
	}
	t->parse_us = now_us() - t0;
	if (r >= 0) {
		r = agent_apply(a, p, sha, t, reason, sizeof(reason), save);
		if (r < 0)
			policy_free(p);
	}
	if (r < 0) {
		snprintf(a->last_error, sizeof(a->last_error), "%s", reason);
		if ((a->policy && !a->distrust[0] && !distrust[0]) ||
		    (a->adopted && a->developer_mode))
			log_error("Policy refused (%s); the last good policy stays in force: %s", why,
				  reason);
		else
			log_error("Policy refused (%s): %s", why, reason);
		if (distrust[0])
			agent_fail_closed(a, why, distrust);
		return r;
	}
	a->distrust[0] = '\0';
	if (b) {
		free(a->bundle_data);
		a->bundle_data = TAKE_PTR(copy);
		a->bundle_size = size;
		a->bundle_verified_at = now;
		memcpy(a->bundle_payload_sha256, b->payload_sha256, BUNDLE_SHA256_BYTES);
	} else {
		agent_forget_bundle(a);
	}
	a->signed_policy = b != NULL;
	a->signers[0] = '\0';
	for (size_t i = 0; b && i < b->envelope.n_signatures; i++) {
		size_t o = strlen(a->signers);
		if (b->envelope.signatures[i].status == BUNDLE_OK &&
		    !b->envelope.signatures[i].duplicate && o + 18 < sizeof(a->signers))
			snprintf(a->signers + o, sizeof(a->signers) - o, "%s%.16s", o ? " " : "",
				 b->envelope.signatures[i].keyid);
	}
	if (a->expiry_fd >= 0) {
		/* One wake-up when the bundle expires, to say so; none while it is valid. */
		struct itimerspec its = {};
		if (b)
			its.it_value.tv_sec = (time_t)a->policy->bundle.not_after + 1;
		timerfd_settime(a->expiry_fd, TFD_TIMER_ABSTIME, &its, NULL);
	}
	t->total_us = now_us() - start;
	a->timing = *t;
	a->last_error[0] = '\0';
	json_object_put(agent_check_overriders(a, true));
	log_info("Policy %s in force (%s): %zu apps, %zu rules, generation %u (%zu IPv4 and %zu "
		 "IPv6 prefixes, %zu port entries in %zu port sets), sha256 %s, %s, %.3f ms",
		 name, why, a->policy->n_apps, a->policy->n_rules, !loader_next_gen(a->loader),
		 a->stats.dst4, a->stats.dst6, a->stats.ports, a->stats.portsets, a->policy_sha256,
		 a->signed_policy ? "signed" : "UNSIGNED (developer mode)",
		 (double)t->total_us / 1000.0);
	return 0;
}

static int agent_load_policy_once(struct agent *a, const char *why)
{
	_cleanup_free_ char *data = NULL;
	struct agent_timing t = {};
	uint64_t start = now_us();
	size_t size;
	int r;

	r = read_file_limited(a->policy_path, a->developer_mode ? POLICY_MAX_FILE_BYTES
								: BUNDLE_MAX_BYTES,
			      &data, &size);
	t.read_us = now_us() - start;
	if (r < 0) {
		if (r == -EFBIG)
			snprintf(a->last_error, sizeof(a->last_error), "%s: larger than %u bytes",
				 a->policy_path,
				 a->developer_mode ? POLICY_MAX_FILE_BYTES : BUNDLE_MAX_BYTES);
		else
			snprintf(a->last_error, sizeof(a->last_error), "%s: %s", a->policy_path,
				 strerror(-r));
		log_error("Policy refused (%s)%s: %s", why,
			  (a->policy && !a->distrust[0]) || (a->adopted && a->developer_mode)
				  ? "; the last good policy stays in force"
				  : "",
			  a->last_error);
		agent_recheck_in_force(a, why);
		return r;
	}
	return agent_load_bytes(a, a->policy_path, data, size, start, &t, why);
}

/* Replace the policy file with these bytes: temporary file, fsync, rename, fsync the folder. */
static int agent_persist_policy(struct agent *a, const char *data, size_t size)
{
	_cleanup_free_ char *tmp = NULL, *dir = strdup(a->policy_path);
	_cleanup_close_ int fd = -1, dfd = -1;

	if (!dir || asprintf(&tmp, "%s.carwall-new", a->policy_path) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return negative_errno();
	for (size_t done = 0; done < size;) {
		ssize_t n = write(fd, data + done, size - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			unlink(tmp);
			return negative_errno();
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0 || rename(tmp, a->policy_path) < 0) {
		int r = negative_errno();
		unlink(tmp);
		return r;
	}
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
	return 0;
}

static struct json_object *json_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct json_object *json_error(const char *fmt, ...)
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

static struct json_object *agent_status_json(struct agent *a)
{
	struct json_object *o = json_object_new_object();
	struct json_object *hooks = json_object_new_array();
	/* A policy no longer trusted is not enforced: only its fail-closed state is. */
	bool enforcing = (a->policy != NULL || a->adopted) && !a->distrust[0];
	char when[64] = "";

	for (unsigned i = 0; loader_hook_names[i]; i++)
		json_object_array_add(hooks, json_object_new_string(loader_hook_names[i]));
	JSON_ADD(o, "agent", json_object_new_string("running"));
	JSON_ADD(o, "pid", json_object_new_int(getpid()));
	JSON_ADD(o, "enforcing", json_object_new_boolean(enforcing));
	JSON_ADD(o, "mode", json_object_new_string(a->developer_mode ? "developer" : "production"));
	JSON_ADD(o, "cgroup_root", json_object_new_string(a->cgroup_root));
	JSON_ADD(o, "guard_cgroup", a->guard_path ? json_object_new_string(a->guard_path) : NULL);
	JSON_ADD(o, "pin_dir", json_object_new_string(a->pin_dir));
	JSON_ADD(o, "hooks", hooks);
	JSON_ADD(o, "generation", json_object_new_int((int)!loader_next_gen(a->loader)));
	if (a->adopted)
		JSON_ADD(o, "policy_state",
			 json_object_new_string("adopted from the pins of an earlier agent"));
	else if (a->distrust[0])
		JSON_ADD(o, "policy_state",
			 json_object_new_string(a->guard_path
							? "no longer trusted: every app under the "
							  "guard cgroup is refused everything (fail "
							  "closed)"
							: "no longer trusted: every app of the policy "
							  "is refused everything (fail closed)"));
	else if (!a->policy)
		JSON_ADD(o, "policy_state",
			 json_object_new_string("no valid policy: every app under the guard cgroup "
						"is refused everything (fail closed)"));
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
		JSON_ADD(o, "policy", pol);
		for (size_t i = 0; i < a->policy->n_apps; i++) {
			struct json_object *app = json_object_new_object();
			JSON_ADD(app, "id", json_object_new_string(a->policy->apps[i].id));
			JSON_ADD(app, "cgroup", json_object_new_string(a->cgroup_paths[i]));
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
	JSON_ADD(ev, "received", json_object_new_int64((int64_t)a->events_received));
	JSON_ADD(ev, "log_errors", json_object_new_int64((int64_t)a->events_log_errors));
	JSON_ADD(ev, "rate_limit_per_app", json_object_new_int64((int64_t)a->event_rate));
	JSON_ADD(o, "events", ev);
	JSON_ADD(o, "overriding_programs", agent_check_overriders(a, false));
	return o;
}

/* The cgroup of an app, registered again first if it was removed or recreated since the
 * policy was applied (a stopped systemd unit removes its cgroup). */
static struct json_object *agent_app_cgroup_json(struct agent *a, const char *id)
{
	size_t i;

	if (!a->policy)
		return json_error("no policy loaded by this agent%s",
				  a->adopted ? " (the pinned one is enforced; reload to load one)"
					     : "");
	for (i = 0; i < a->policy->n_apps; i++)
		if (!strcmp(a->policy->apps[i].id, id))
			break;
	if (i == a->policy->n_apps)
		return json_error("app '%s' is not in the policy in force (%s)", id, a->policy_path);

	if (agent_cgroups_stale(a) && agent_reapply(a, "asked for by carwall run") < 0)
		return json_error("could not register the cgroup of app '%s'", id);

	struct json_object *o = json_object_new_object();
	JSON_ADD(o, "app", json_object_new_string(id));
	JSON_ADD(o, "cgroup", json_object_new_string(a->cgroup_paths[i]));
	return o;
}

static int64_t realtime_offset_ns(void)
{
	struct timespec rt, bt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000 + (rt.tv_nsec - bt.tv_nsec);
}

/* One refused (or audited) flow: a log line, and a record in the events log. */
static int agent_on_event(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct cw_event *e = data;
	struct events_names n = {};
	char exe[512], proc[64], line[1536];
	struct json_object *record;
	ssize_t len;

	if (size < sizeof(*e))
		return 0;
	a->events_received++;
	if (e->gen < CW_GENERATIONS && e->app < a->gen_n_apps[e->gen])
		n.app = a->gen_apps[e->gen][e->app];
	snprintf(proc, sizeof(proc), "/proc/%u/exe", e->pid);
	len = e->pid ? readlink(proc, exe, sizeof(exe) - 1) : -1;
	if (len > 0) {
		exe[len] = '\0';
		n.exe = exe;
	}
	n.realtime_ns = (int64_t)e->boot_ns + realtime_offset_ns();

	events_format_line(e, &n, line, sizeof(line));
	log_notice("%s", line);
	if (a->events_log) {
		record = events_to_json(e, &n);
		if (events_log_append(a->events_log, record) < 0)
			a->events_log_errors++;
		json_object_put(record);
	}
	return 0;
}

static struct json_object *counters_json(const struct cw_app_counters *c)
{
	struct json_object *o = json_object_new_object();

	JSON_ADD(o, "allowed", json_object_new_int64((int64_t)c->allowed));
	JSON_ADD(o, "refused", json_object_new_int64((int64_t)c->refused));
	JSON_ADD(o, "audited", json_object_new_int64((int64_t)c->audited));
	JSON_ADD(o, "events_dropped", json_object_new_int64((int64_t)c->events_dropped));
	return o;
}

/*
 * Counters: per app since the policy in force was loaded and since the agent started, per rule
 * since the policy was loaded, and the event path's own figures.
 */
static struct json_object *agent_stats_json(struct agent *a)
{
	struct json_object *o = json_object_new_object();
	struct json_object *apps = json_object_new_array();
	struct json_object *rules = json_object_new_array();
	struct json_object *ev = json_object_new_object();
	uint32_t gen = loader_active_gen(a->loader);
	uint64_t dropped = 0;

	JSON_ADD(o, "generation", json_object_new_int((int)gen));
	for (size_t i = 0; a->policy && i <= a->policy->n_apps; i++) {
		bool guard = i == a->policy->n_apps;
		struct cw_app_counters c = {}, total = {};
		struct agent_app_total *t;
		struct json_object *app;

		if (guard && !a->guard_path)
			break;
		if (loader_read_app_counters(a->loader, gen, (uint32_t)i, &c) < 0)
			continue;
		dropped += c.events_dropped;
		app = json_object_new_object();
		JSON_ADD(app, "id", guard ? NULL : json_object_new_string(a->policy->apps[i].id));
		if (guard)
			JSON_ADD(app, "guard", json_object_new_string(a->guard_path));
		JSON_ADD(app, "since_load", counters_json(&c));
		t = guard ? NULL : agent_total(a, a->policy->apps[i].id);
		if (t)
			total = t->c;
		total.allowed += c.allowed;
		total.refused += c.refused;
		total.audited += c.audited;
		total.events_dropped += c.events_dropped;
		JSON_ADD(app, "since_start", counters_json(&total));
		json_object_array_add(apps, app);
	}
	for (size_t i = 0; a->policy && i < a->policy->n_apps; i++) {
		const struct policy_app *app = &a->policy->apps[i];

		for (size_t k = 0; k < app->n_rules; k++) {
			const struct policy_rule *rule = &app->rules[k];
			struct json_object *r;
			uint64_t hits = 0;

			loader_read_rule_hits(a->loader, gen, (uint32_t)rule->index, &hits);
			r = json_object_new_object();
			JSON_ADD(r, "app", json_object_new_string(app->id));
			JSON_ADD(r, "rule", json_object_new_int64((int64_t)k));
			JSON_ADD(r, "file", json_object_new_string(a->policy_path));
			JSON_ADD(r, "line", json_object_new_int((int)rule->loc.line));
			JSON_ADD(r, "column", json_object_new_int((int)rule->loc.column));
			JSON_ADD(r, "allowed", json_object_new_int64((int64_t)hits));
			json_object_array_add(rules, r);
		}
	}
	JSON_ADD(o, "apps", apps);
	JSON_ADD(o, "rules", rules);
	JSON_ADD(ev, "received", json_object_new_int64((int64_t)a->events_received));
	JSON_ADD(ev, "dropped_since_load", json_object_new_int64((int64_t)dropped));
	JSON_ADD(ev, "log_errors", json_object_new_int64((int64_t)a->events_log_errors));
	JSON_ADD(ev, "rate_limit_per_app", json_object_new_int64((int64_t)a->event_rate));
	JSON_ADD(o, "events", ev);
	return o;
}

/* `carwall bundle install FILE`: the bundle is read once, verified, put in force, and then
 * replaces the policy file, so that it is the one enforced after a restart too. */
static struct json_object *agent_install_json(struct agent *a, const char *path)
{
	_cleanup_free_ char *data = NULL;
	struct agent_timing t = {};
	uint64_t start = now_us();
	size_t size;
	int r;

	if (path[0] != '/')
		return json_error("install needs an absolute path, not '%s'", path);
	log_info("Installing %s (carwall bundle install)", path);
	r = read_file_limited(path, a->developer_mode ? POLICY_MAX_FILE_BYTES : BUNDLE_MAX_BYTES,
			      &data, &size);
	if (r < 0)
		return json_error("%s: %s", path, r == -EFBIG ? "too large" : strerror(-r));
	r = agent_load_bytes(a, path, data, size, start, &t, "carwall bundle install");
	if (r < 0)
		return json_error("%s", a->last_error);
	r = agent_persist_policy(a, data, size);
	if (r < 0) {
		log_error_errno(r, "The bundle is in force but %s could not be replaced: %m",
				a->policy_path);
		return json_error("the bundle is in force, but %s could not be replaced (%s): a "
				  "restart would load the previous one",
				  a->policy_path, strerror(-r));
	}
	return agent_status_json(a);
}

static struct json_object *agent_handle(const char *request, void *userdata)
{
	struct agent *a = userdata;

	if (!strcmp(request, "status"))
		return agent_status_json(a);
	if (!strcmp(request, "stats"))
		return agent_stats_json(a);
	if (!strcmp(request, "reload")) {
		struct json_object *o;

		if (agent_load_policy(a, "carwall reload") < 0)
			return json_error("%s", a->last_error);
		o = agent_status_json(a);
		JSON_ADD(o, "timing_us", agent_timing_json(&a->timing));
		return o;
	}
	if (!strncmp(request, "install ", strlen("install ")))
		return agent_install_json(a, request + strlen("install "));
	if (!strncmp(request, "app-cgroup ", strlen("app-cgroup ")))
		return agent_app_cgroup_json(a, request + strlen("app-cgroup "));
	return json_error("unknown request '%.64s'", request);
}

static void help(void)
{
	printf("Usage: carwalld [OPTIONS]\n"
	       "\n"
	       "carwall's agent: enforces per-app egress allow-lists with cgroup BPF programs.\n"
	       "\n"
	       "  -p --policy FILE         policy to enforce (default %s)\n"
	       "  -c --cgroup-root DIR     cgroup v2 folder to attach at (default: the cgroup2 mount)\n"
	       "  -g --guard-cgroup REL    cgroup below the root where apps live; anything below it\n"
	       "                           that is not a registered app is refused everything\n"
	       "                           (default '%s'; '' disables)\n"
	       "  -b --pin-dir DIR         bpffs folder for pinned links and maps (default %s)\n"
	       "  -r --run-dir DIR         folder of the control socket (default %s)\n"
	       "  -s --state-dir DIR       folder for persistent state (default %s)\n"
	       "  -G --control-group NAME  group that may use the control socket besides root\n"
	       "  -T --trust-dir DIR       trusted public keys for signed bundles (default %s)\n"
	       "  -t --target ID           this head unit's hardware id, bundles must name it\n"
	       "                           (default: the first line of %s)\n"
	       "  -i --bundle-id ID[,ID]   bundle ids this head unit accepts (repeatable; default:\n"
	       "                           the ids in %s, separated by commas, blanks\n"
	       "                           or lines; without it, those recorded in the\n"
	       "                           anti-rollback state); a bundle with another id is\n"
	       "                           refused\n"
	       "  -m --threshold M         valid signatures a bundle needs (default 1)\n"
	       "  -D --developer-mode      accept unsigned policies (loudly logged; never on a\n"
	       "                           vehicle). Without it only verified bundles are loaded.\n"
	       "  -e --event-rate N        refused-flow events per app and second (default %d;\n"
	       "                           0: no limit); more are counted as dropped\n"
	       "  -v --verbose             log debug messages, libbpf's included\n"
	       "  -h --help                show this help\n"
	       "\n"
	       "The policy is reloaded on SIGHUP, on `carwall reload` and when the file changes.\n"
	       "In production mode the bundle in force is verified again at every reload (and its\n"
	       "file at start): once it no longer verifies (key revoked or removed, threshold,\n"
	       "target or bundle ids changed, floor above it), every app below the guard is\n"
	       "refused everything until a bundle that verifies is installed.\n"
	       "SIGTERM/SIGINT stop the agent and leave enforcement in force (remove it with\n"
	       "`carwall unload`).\n",
	       DEFAULT_POLICY, DEFAULT_GUARD, LOADER_DEFAULT_PIN_DIR, CONTROL_DEFAULT_RUN_DIR,
	       DEFAULT_STATE_DIR, DEFAULT_TRUST_DIR, DEFAULT_TARGET_FILE, DEFAULT_BUNDLE_ID_FILE,
	       DEFAULT_EVENT_RATE);
}

/* Add the bundle ids in `list` (separated by commas, blanks or newlines) to those accepted. */
static int agent_add_bundle_ids(struct agent *a, const char *list, const char *from)
{
	_cleanup_free_ char *copy = strdup(list);
	char *save = NULL;

	if (!copy)
		return log_error_errno(-ENOMEM, "Out of memory");
	for (char *id = strtok_r(copy, ", \t\r\n", &save); id; id = strtok_r(NULL, ", \t\r\n", &save)) {
		bool known = false;

		if (!policy_app_id_valid(id))
			return log_error_errno(-EINVAL, "Bad bundle id '%.64s' in %s", id, from);
		for (size_t i = 0; i < a->n_bundle_ids; i++)
			known = known || !strcmp(a->bundle_ids[i], id);
		if (known)
			continue;
		if (a->n_bundle_ids >= BUNDLE_MAX_ACCEPTED_IDS)
			return log_error_errno(-E2BIG, "More than %d bundle ids (%s)",
					       BUNDLE_MAX_ACCEPTED_IDS, from);
		snprintf(a->bundle_ids[a->n_bundle_ids], sizeof(a->bundle_ids[0]), "%s", id);
		a->bundle_id_list[a->n_bundle_ids] = a->bundle_ids[a->n_bundle_ids];
		a->n_bundle_ids++;
	}
	return 0;
}

static int agent_parse_args(struct agent *a, int argc, char **argv, bool *verbose)
{
	static const struct option options[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "cgroup-root", required_argument, NULL, 'c' },
		{ "guard-cgroup", required_argument, NULL, 'g' },
		{ "pin-dir", required_argument, NULL, 'b' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "control-group", required_argument, NULL, 'G' },
		{ "event-rate", required_argument, NULL, 'e' },
		{ "trust-dir", required_argument, NULL, 'T' },
		{ "target", required_argument, NULL, 't' },
		{ "bundle-id", required_argument, NULL, 'i' },
		{ "threshold", required_argument, NULL, 'm' },
		{ "developer-mode", no_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *root = NULL, *guard = DEFAULT_GUARD, *group = NULL, *target = NULL;
	int c, r;

	a->policy_path = DEFAULT_POLICY;
	a->pin_dir = LOADER_DEFAULT_PIN_DIR;
	a->run_dir = NULL;
	a->state_dir = DEFAULT_STATE_DIR;
	a->control_group = CONTROL_NO_GROUP;
	a->event_rate = DEFAULT_EVENT_RATE;
	a->trust_dir = DEFAULT_TRUST_DIR;
	a->threshold = 1;
	while ((c = getopt_long(argc, argv, "p:c:g:b:r:s:G:e:T:t:i:m:Dvh", options, NULL)) != -1) {
		switch (c) {
		case 'p':
			a->policy_path = optarg;
			break;
		case 'c':
			root = optarg;
			break;
		case 'g':
			guard = optarg;
			break;
		case 'b':
			a->pin_dir = optarg;
			break;
		case 'r':
			a->run_dir = optarg;
			break;
		case 's':
			a->state_dir = optarg;
			break;
		case 'G':
			group = optarg;
			break;
		case 'T':
			a->trust_dir = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 'i':
			r = agent_add_bundle_ids(a, optarg, "--bundle-id");
			if (r < 0)
				return r;
			break;
		case 'm': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v < 1 || v > BUNDLE_MAX_SIGNATURES)
				return log_error_errno(-EINVAL, "Bad --threshold '%s' (1..%d)", optarg,
						       BUNDLE_MAX_SIGNATURES);
			a->threshold = (unsigned)v;
			break;
		}
		case 'D':
			a->developer_mode = true;
			break;
		case 'e': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || v > UINT32_MAX)
				return log_error_errno(-EINVAL, "Bad --event-rate '%s'", optarg);
			a->event_rate = (uint32_t)v;
			break;
		}
		case 'v':
			*verbose = true;
			break;
		case 'h':
			help();
			exit(EXIT_SUCCESS);
		default:
			return -EINVAL;
		}
	}
	if (optind < argc)
		return log_error_errno(-EINVAL, "Unexpected argument '%s'; see --help", argv[optind]);
	a->run_dir = control_run_dir(a->run_dir);
	if (a->pin_dir[0] != '/')
		return log_error_errno(-EINVAL, "--pin-dir must be an absolute path");
	if (group) {
		struct group *gr = getgrnam(group);
		if (!gr)
			return log_error_errno(-ENOENT, "No group '%s' for --control-group", group);
		a->control_group = gr->gr_gid;
	}

	if (!a->developer_mode) {
		_cleanup_free_ char *data = NULL;
		size_t size;

		if (!target) {
			r = read_file_limited(DEFAULT_TARGET_FILE, 256, &data, &size);
			if (r < 0)
				return log_error_errno(r, "No target: production mode needs this head "
							  "unit's hardware id (--target, or %s): %m",
						       DEFAULT_TARGET_FILE);
			data[strcspn(data, "\r\n")] = '\0';
			target = data;
		}
		if (!policy_app_id_valid(target))
			return log_error_errno(-EINVAL, "Bad target '%s'", target);
		snprintf(a->target, sizeof(a->target), "%s", target);
	}
	if (!a->developer_mode && a->n_bundle_ids == 0) {
		_cleanup_free_ char *ids = NULL;
		size_t size;

		/* Without it, any bundle id signed by a trusted key would replace the policy,
		 * whatever its version: the floor is per id. */
		r = read_file_limited(DEFAULT_BUNDLE_ID_FILE, 4096, &ids, &size);
		if (r == -ENOENT) {
			log_warning("No bundle id configured (--bundle-id, or %s): only the ids "
				    "recorded in the anti-rollback state are accepted, and a unit that "
				    "never accepted a bundle takes the id of its first one. Configure "
				    "the ids this head unit accepts.",
				    DEFAULT_BUNDLE_ID_FILE);
			goto ids_done;
		}
		if (r < 0)
			return log_error_errno(r, "Cannot read the bundle ids this head unit accepts "
						  "(%s): %m",
					       DEFAULT_BUNDLE_ID_FILE);
		if (memchr(ids, '\0', size))
			return log_error_errno(-EINVAL, "%s contains a NUL byte", DEFAULT_BUNDLE_ID_FILE);
		r = agent_add_bundle_ids(a, ids, DEFAULT_BUNDLE_ID_FILE);
		if (r < 0)
			return r;
		if (a->n_bundle_ids == 0)
			return log_error_errno(-EINVAL, "No bundle id in %s", DEFAULT_BUNDLE_ID_FILE);
	}
ids_done:

	r = cgroup_find_mount(a->cgroup_mount, sizeof(a->cgroup_mount));
	if (r < 0)
		return log_error_errno(r, "No cgroup2 file system is mounted (/proc/self/mountinfo): "
					  "carwall needs cgroup v2");
	if (!root)
		root = a->cgroup_mount;
	if (!realpath(root, a->cgroup_root))
		return log_error_errno(negative_errno(), "Cannot use cgroup root %s: %m", root);
	if (guard[0]) {
		if (guard[0] == '/' || strstr(guard, ".."))
			return log_error_errno(-EINVAL, "--guard-cgroup must be relative to the root");
		if (asprintf(&a->guard_path, "%s/%s", a->cgroup_root, guard) < 0)
			return log_error_errno(-ENOMEM, "Out of memory");
	}
	return 0;
}

/* One agent per run folder: a second one would fight over the pins. */
static int agent_lock(const char *run_dir, int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;

	if (mkdir(run_dir, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	if (asprintf(&path, "%s/carwalld.lock", run_dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return negative_errno();
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return negative_errno();
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Load a first policy, or fail closed. Returns < 0 only when nothing can be enforced. */
static int agent_first_policy(struct agent *a)
{
	struct agent_timing t = {};
	char reason[1024] = "";
	int r;

	if (loader_has_policy(a->loader)) {
		a->adopted = true;
		log_info("Adopted the policy pinned in %s by an earlier agent", a->pin_dir);
	}
	r = agent_load_policy(a, "start");
	if (r >= 0 || (a->adopted && a->developer_mode))
		return 0;
	/*
	 * Production mode: pins are kept only for a policy file that verifies now. Pins whose
	 * policy file does not (a key revoked, the bundle expired, the file replaced while no
	 * agent ran) are no longer trusted.
	 */
	if (a->adopted)
		snprintf(a->distrust, sizeof(a->distrust),
			 "the policy pinned by an earlier agent is not kept: its policy file does "
			 "not verify (%.900s)",
			 a->last_error);
	if (!a->guard_path)
		return log_error_errno(r, "No valid policy to enforce and no guard cgroup; "
					  "refusing to start");
	r = agent_apply(a, NULL, "", &t, reason, sizeof(reason), NULL);
	if (r < 0)
		return log_error_errno(r, "Cannot even refuse everything below %s: %s",
				       a->guard_path, reason);
	if (a->distrust[0])
		log_error("Not trusted: %s. Failing closed", a->distrust);
	log_error("No valid policy: every app below %s is refused everything until a valid "
		  "policy is loaded (fix %s; it is reloaded when it changes)",
		  a->guard_path, a->policy_path);
	return 0;
}

static int epoll_add(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? negative_errno() : 0;
}

static void agent_arm_reload(struct agent *a)
{
	struct itimerspec its = { .it_value.tv_nsec = RELOAD_DEBOUNCE_MS * 1000000L };

	timerfd_settime(a->timer_fd, 0, &its, NULL);
}

/* Returns true when the agent should stop. */
static bool agent_handle_signals(struct agent *a, int sig_fd)
{
	struct signalfd_siginfo si;

	while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			agent_load_policy(a, "SIGHUP");
			continue;
		}
		log_info("Stopping on signal %u; enforcement stays in force (pinned in %s)",
			 si.ssi_signo, a->pin_dir);
		return true;
	}
	return false;
}

static void agent_handle_watch(struct agent *a)
{
	bool file_changed, dir_changed;
	int r = watch_read(a->watch, &file_changed, &dir_changed);

	if (r < 0) {
		log_warning_errno(r, "inotify: %m");
		return;
	}
	if (file_changed)
		agent_arm_reload(a);
	if (dir_changed && agent_cgroups_stale(a))
		agent_reapply(a, "an app cgroup was created again");
}

static int agent_run(struct agent *a)
{
	_cleanup_close_ int lock_fd = -1, listen_fd = -1, sig_fd = -1, ep = -1;
	char missing[256];
	sigset_t mask;
	int r;

	if (geteuid() != 0)
		return log_error_errno(-EPERM, "carwalld must run as root");

	r = loader_probe(a->cgroup_root, missing, sizeof(missing));
	if (r < 0)
		return log_error_errno(r, "This kernel lacks what carwall needs: %s. Refusing to start.",
				       missing);

	r = agent_lock(a->run_dir, &lock_fd);
	if (r == -EWOULDBLOCK)
		return log_error_errno(r, "Another carwalld is running with run folder %s", a->run_dir);
	if (r < 0)
		return log_error_errno(r, "Cannot lock run folder %s: %m", a->run_dir);
	if (mkdir(a->state_dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(negative_errno(), "Cannot create state folder %s: %m",
				       a->state_dir);

	r = watch_new(&a->watch);
	if (r >= 0)
		r = watch_set_file(a->watch, a->policy_path);
	if (r < 0)
		return log_error_errno(r, "Cannot watch %s: %m", a->policy_path);
	a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	a->expiry_fd = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->timer_fd < 0 || a->expiry_fd < 0)
		return log_error_errno(negative_errno(), "timerfd: %m");
	if (a->developer_mode)
		log_warning("DEVELOPER MODE: unsigned policies are accepted. Never run a vehicle "
			    "like this.");
	else {
		char ids[BUNDLE_MAX_ACCEPTED_IDS * (POLICY_MAX_ID_LEN + 1)] = "";
		_cleanup_free_ char *state = NULL;

		for (size_t i = 0; i < a->n_bundle_ids; i++)
			snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%s", i ? "," : "",
				 a->bundle_ids[i]);
		log_info("Production mode: only bundles signed by %u of the keys in %s, for target "
			 "%s, with bundle id %s, are loaded",
			 a->threshold, a->trust_dir, a->target,
			 ids[0] ? ids : "(none configured: those of the anti-rollback state)");
		if (asprintf(&state, "%s/%s", a->state_dir, BUNDLE_STATE_FILE) < 0)
			state = NULL;
		else if (access(state, F_OK) < 0 && errno == ENOENT)
			log_warning("No anti-rollback state %s: there is no floor, any version of an "
				    "accepted bundle id is accepted until one is installed (first "
				    "start, or the state was lost)",
				    state);
	}

	r = loader_prepare_pin_dir(a->pin_dir);
	if (r == -EMEDIUMTYPE)
		return log_error_errno(r, "Pin folder %s is not on a bpf file system (mount bpffs)",
				       a->pin_dir);
	if (r < 0)
		return log_error_errno(r, "Cannot prepare pin folder %s: %m", a->pin_dir);
	struct loader_options lopts = { .event_rate = a->event_rate };
	r = loader_open(a->pin_dir, &lopts, &a->loader);
	if (r < 0)
		return log_error_errno(r,
				       "Failed to load the BPF programs (pins in %s from an "
				       "incompatible build? `carwall unload` removes them): %m",
				       a->pin_dir);

	/* The maps are filled before the programs are attached: no window without a policy. */
	r = agent_first_policy(a);
	if (r < 0)
		return r;

	r = loader_attach(a->loader, a->cgroup_root);
	if (r == -EXDEV)
		return log_error_errno(r,
				       "Links pinned in %s are attached to another cgroup or hook; "
				       "remove them with `carwall unload --pin-dir %s`",
				       a->pin_dir, a->pin_dir);
	if (r < 0)
		return log_error_errno(r, "Failed to attach the programs at %s: %m", a->cgroup_root);
	log_info("Enforcing at cgroup %s (connect4, connect6, sendmsg4, sendmsg6, sock_create, "
		 "skb_egress, sock_ops), pins in %s",
		 a->cgroup_root, a->pin_dir);

	json_object_put(agent_check_overriders(a, true));
	a->events_rb = ring_buffer__new(loader_events_fd(a->loader), agent_on_event, a, NULL);
	if (!a->events_rb)
		return log_error_errno(negative_errno(), "Cannot read the event ring buffer: %m");
	r = events_log_open(a->state_dir, EVENTS_LOG_MAX_BYTES, &a->events_log);
	if (r < 0)
		log_warning_errno(r, "Cannot open the events log in %s; events go to this log only: %m",
				  a->state_dir);

	r = control_listen(a->run_dir, a->control_group, &listen_fd);
	if (r < 0)
		return log_error_errno(r, "Cannot listen on %s/%s: %m", a->run_dir,
				       CONTROL_SOCKET_NAME);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sig_fd < 0 || ep < 0)
		return log_error_errno(negative_errno(), "Cannot set up the event loop: %m");
	r = epoll_add(ep, sig_fd);
	if (r >= 0)
		r = epoll_add(ep, listen_fd);
	if (r >= 0)
		r = epoll_add(ep, watch_fd(a->watch));
	if (r >= 0)
		r = epoll_add(ep, a->timer_fd);
	if (r >= 0)
		r = epoll_add(ep, a->expiry_fd);
	if (r >= 0)
		r = epoll_add(ep, ring_buffer__epoll_fd(a->events_rb));
	if (r < 0)
		return log_error_errno(r, "epoll: %m");

	/* Ready means enforced: systemd starts the app units only after this. */
	notify_send(a->policy ? "READY=1\nSTATUS=Enforcing" : "READY=1\nSTATUS=No valid policy: apps refused");
	log_info("Ready; control socket %s/%s", a->run_dir, CONTROL_SOCKET_NAME);
	/*
	 * The log is written in blocks and flushed once per wake-up: a burst of events costs one
	 * write, not one per line.
	 */
	setvbuf(stderr, NULL, _IOFBF, 1 << 16);
	for (;;) {
		struct epoll_event events[8];
		int n;

		fflush(stderr);
		n = epoll_wait(ep, events, ARRAY_SIZE(events), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(negative_errno(), "epoll_wait: %m");
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd == listen_fd) {
				r = control_serve_one(listen_fd, a->control_group, agent_handle, a);
				if (r < 0)
					log_warning_errno(r, "Control request failed: %m");
			} else if (fd == sig_fd) {
				if (agent_handle_signals(a, sig_fd)) {
					notify_send("STOPPING=1");
					fflush(stderr);
					return 0;
				}
			} else if (fd == ring_buffer__epoll_fd(a->events_rb)) {
				ring_buffer__consume(a->events_rb);
				if (a->events_log)
					events_log_flush(a->events_log);
			} else if (fd == a->expiry_fd) {
				uint64_t expirations;
				if (read(a->expiry_fd, &expirations, sizeof(expirations)) > 0)
					log_warning("The bundle in force expired; it stays in force "
						    "(enforcement is never loosened) until a newer bundle "
						    "is installed. After a restart an expired bundle is "
						    "refused and every app below the guard is refused "
						    "everything.");
			} else if (fd == a->timer_fd) {
				uint64_t expirations;
				if (read(a->timer_fd, &expirations, sizeof(expirations)) > 0)
					agent_load_policy(a, "the file changed");
			} else {
				agent_handle_watch(a);
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct agent a = { .timer_fd = -1, .expiry_fd = -1 };
	bool verbose = false;
	int r;

	log_setup("carwalld", LOG_LEVEL_INFO);
	r = agent_parse_args(&a, argc, argv, &verbose);
	if (r < 0)
		return EXIT_FAILURE;
	if (verbose)
		log_setup("carwalld", LOG_LEVEL_DEBUG);
	log_setup_libbpf();

	r = agent_run(&a);
	if (a.events_rb) {
		ring_buffer__consume(a.events_rb); /* what is still queued goes to the log too */
		ring_buffer__free(a.events_rb);
	}
	events_log_free(a.events_log);
	for (uint32_t g = 0; g < CW_GENERATIONS; g++)
		agent_retire_gen(&a, g, NULL);
	for (size_t i = 0; i < a.n_totals; i++)
		free(a.totals[i].id);
	free(a.totals);
	loader_free(a.loader);
	watch_free(a.watch);
	if (a.timer_fd >= 0)
		close(a.timer_fd);
	if (a.expiry_fd >= 0)
		close(a.expiry_fd);
	free(a.cgroups);
	free_paths(a.cgroup_paths, a.n_cgroups);
	policy_free(a.policy);
	free(a.bundle_data);
	free(a.guard_path);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
