// SPDX-License-Identifier: GPL-2.0-only
/*
 * The policy lifecycle: reading the policy file (or the bytes of `carwall bundle install`),
 * verifying signed bundles against the trust folder, target, bundle ids and anti-rollback floor,
 * compiling, applying it to the inactive generation and flipping, cutting the flows it now
 * refuses, persisting the installed bundle, and failing closed when the policy in force is no
 * longer trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "message_ids.h"

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
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

/* "app 'x' runs in a and b", for each app found in more than one of its cgroups. */
static void agent_ambiguous_text(const struct policy *pol, const struct loader_cgroup *cgroups,
				 char *const *paths, size_t n, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < pol->n_apps && o + 1 < size; i++) {
		if (!agent_cgroups_ambiguous(cgroups, n, i))
			continue;
		o += (size_t)snprintf(buf + o, size - o,
				      "%sapp '%s' runs in more than one AGL template at once, so "
				      "neither is registered (refused everything below the guards):",
				      o ? "; " : "", pol->apps[i].id);
		for (size_t k = 0; k < n && o + 1 < size; k++)
			if (cgroups[k].app == i && cgroups[k].id &&
			    !(cgroups[k].flags & CW_APP_F_GUARD))
				o += (size_t)snprintf(buf + o, size - o, " %s", paths[k]);
	}
}

/*
 * Keep the country database the policy in force was loaded with open, for the country of the
 * destination in a region refusal's event: the file at --geo-db if it still is the one read
 * (same sha256), else none (the events then name no country until the next load).
 */
static void agent_geo_keep(struct agent *a)
{
	char reason[512];

	geo_free(a->geo_db);
	a->geo_db = NULL;
	if (!a->geo.path[0] || geo_open(a->geo.path, &a->geo_db, reason, sizeof(reason)) < 0)
		return;
	if (strcmp(geo_info(a->geo_db)->sha256, a->geo.sha256)) {
		geo_free(a->geo_db);
		a->geo_db = NULL;
	}
}

/*
 * Make `p` the policy in force (NULL: no policy, only the guards): create (with `create`; else
 * only those that exist are registered) and resolve each app's cgroup and the guards, compile
 * for the inactive generation, save the anti-rollback floor (when `floor` is not NULL), write
 * the maps and flip. On failure the policy in force is untouched, *reason says why and p stays
 * the caller's. On success the agent owns p (it may be the policy in force, applied again to
 * register a recreated cgroup).
 *
 * An app that names no template nor cgroup may run in any of AGL's three templates: its three
 * cgroups are followed, none is made (one made by the agent would make the app ambiguous once
 * it starts in another template; below the guards, the app's new cgroup is refused everything
 * until it is registered, and the drop-in's `carwall app wait-managed` holds the app until
 * then), and the one there is registered. Two there at once are ambiguous: neither is.
 */
int agent_apply(struct agent *a, struct policy *p, const char *sha256, bool create,
		struct agent_timing *t, char *reason, size_t reason_size,
		const struct agent_floor *floor)
{
	static struct policy none = { .path = (char *)"(none)" };
	const struct policy *pol = p ? p : &none;
	size_t n = a->n_guards, k = 0;
	struct loader_cgroup *cgroups = NULL;
	char **paths = NULL;
	_cleanup_free_ struct loader_cgroup *reg = NULL;
	_cleanup_free_ char **reg_paths = NULL;
	struct policy_maps *maps = NULL;
	struct geo_info geo = {};
	char ambiguous[sizeof(a->ambiguous)];
	bool consent_on[POLICY_MAX_SWITCHES] = {};
	size_t n_reg = 0;
	uint64_t t0;
	int r;

	for (size_t i = 0; i < pol->n_apps; i++)
		n += pol->apps[i].n_cgroups;
	cgroups = calloc(n + 1, sizeof(*cgroups));
	paths = calloc(n + 1, sizeof(*paths));
	reg = calloc(n + 1, sizeof(*reg));
	reg_paths = calloc(n + 1, sizeof(*reg_paths));
	if (!cgroups || !paths || !reg || !reg_paths) {
		r = -ENOMEM;
		snprintf(reason, reason_size, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < pol->n_apps; i++) {
		const struct policy_app *app = &pol->apps[i];

		for (size_t j = 0; j < app->n_cgroups; j++, k++) {
			if (asprintf(&paths[k], "%s/%s", a->cgroup_root, app->cgroups[j]) < 0) {
				paths[k] = NULL;
				r = -ENOMEM;
				snprintf(reason, reason_size, "out of memory");
				goto fail;
			}
			/* Made now (its one cgroup), so that the app is judged from its first
			 * connect() on. */
			r = agent_resolve_cgroup(a, paths[k], (uint32_t)i,
						 create && app->n_cgroups == 1, &cgroups[k]);
			if (r < 0) {
				snprintf(reason, reason_size, "app '%s': cgroup %s: %s", app->id,
					 paths[k], strerror(-r));
				goto fail;
			}
			if (policy_app_audit(pol, app))
				cgroups[k].flags |= CW_APP_F_AUDIT;
			cgroups[k].uid = policy_app_uid(app->id);
		}
	}
	for (size_t g = 0; g < a->n_guards; g++, k++) {
		/* An app index with no rules: everything is refused below a guard. */
		paths[k] = strdup(a->guard_paths[g]);
		if (!paths[k]) {
			r = -ENOMEM;
			snprintf(reason, reason_size, "out of memory");
			goto fail;
		}
		r = agent_resolve_cgroup(a, paths[k], (uint32_t)pol->n_apps, create, &cgroups[k]);
		if (r < 0) {
			snprintf(reason, reason_size, "guard cgroup %s: %s", paths[k], strerror(-r));
			goto fail;
		}
		cgroups[k].flags = CW_APP_F_GUARD | (pol->audit ? CW_APP_F_AUDIT : 0);
	}
	for (size_t i = 0; i < n; i++) {
		if (!cgroups[i].id)
			continue; /* not there */
		if (!(cgroups[i].flags & CW_APP_F_GUARD) &&
		    agent_cgroups_ambiguous(cgroups, n, cgroups[i].app))
			continue; /* ambiguous: left to its guard */
		reg[n_reg] = cgroups[i];
		reg_paths[n_reg++] = paths[i];
	}
	agent_ambiguous_text(pol, cgroups, paths, n, ambiguous, sizeof(ambiguous));

	t0 = now_us();
	r = policy_compile(pol, loader_next_gen(a->loader), &maps, reason, reason_size);
	if (r < 0) {
		if (!reason[0])
			snprintf(reason, reason_size, "compiling the policy: %s", strerror(-r));
		goto fail;
	}
	/* Home-only residency: the home region's prefixes, or the policy is refused. */
	r = geo_apply_policy(pol, a->geo_db_path, maps, &geo, reason, reason_size);
	if (r < 0)
		goto fail;
	t->compile_us = now_us() - t0;
	/* Driver consent: the purposes switched off go with the policy, in the same flip. */
	if (p) {
		agent_consent_resolve(a, pol, consent_on);
		maps->consent_deny = policy_consent_deny(pol, consent_on);
	}
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
	agent_retire_gen(a, loader_next_gen(a->loader), pol, sha256);
	/* The policy in force written again (app cgroups registered): its rule counts go on. */
	loader_keep_rule_hits(a->loader, a->policy && !strcmp(sha256, a->policy_sha256));
	t0 = now_us();
	r = loader_apply(a->loader, maps, reg, n_reg, (uint32_t)pol->n_apps + 1);
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
	agent_revoke(a, pol, maps, reg, reg_paths, n_reg);

	free(a->cgroups);
	free_paths(a->cgroup_paths, a->n_cgroups);
	if (a->policy != p)
		policy_free(a->policy);
	a->policy = p;
	if (p)
		agent_consent_commit(a, p, consent_on);
	a->cgroups = cgroups;
	a->cgroup_paths = paths;
	a->n_cgroups = n;
	a->adopted = false;
	if (ambiguous[0] && strcmp(ambiguous, a->ambiguous))
		log_error("%s", ambiguous);
	else if (!ambiguous[0] && a->ambiguous[0])
		log_info("No app runs in more than one AGL template any more");
	snprintf(a->ambiguous, sizeof(a->ambiguous), "%s", ambiguous);
	a->loaded_at = time(NULL);
	a->stats.dst4 = maps->n_dst4;
	a->stats.dst6 = maps->n_dst6;
	a->stats.ports = maps->n_ports;
	a->stats.portsets = maps->n_portsets;
	a->geo = geo;
	agent_geo_keep(a);
	snprintf(a->policy_sha256, sizeof(a->policy_sha256), "%s", sha256);
	policy_maps_free(maps);

	agent_watch_cgroups(a);
	return 0;
fail:
	policy_maps_free(maps);
	free(cgroups);
	free_paths(paths, n);
	return r;
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
 * Home-only residency: the country database is no longer the one the policy in force was
 * loaded with (replaced, or gone): the same policy must be applied again, with it (or be
 * refused without it, the policy in force staying).
 */
static bool agent_geo_changed(const struct agent *a)
{
	char sha[65];

	if (!a->policy || !a->policy->residency.home_only)
		return false;
	if (!a->geo_db_path || geo_file_sha256(a->geo_db_path, sha) < 0)
		return true;
	return strcmp(sha, a->geo.sha256) != 0;
}

/* A policy load allocates and frees a lot: give what is free back to the system. */
/*
 * Read, parse, validate, compile and apply the policy file. A policy that fails at any step
 * leaves the one in force untouched; the reason is logged and kept for `carwall status`.
 */
static int agent_load_policy_once(struct agent *a, const char *why);
int agent_load_policy(struct agent *a, const char *why)
{
	int r = agent_load_policy_once(a, why);

	malloc_trim(0);
	return r;
}

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
 * verified bytes; or, with `parsed` (their policy, parsed when they were verified before), take
 * the metadata from there instead of parsing the same bytes again.
 */
static int agent_verify_bundle(struct agent *a, const struct bundle_trust *trust,
			       const struct bundle_state *state, const char *name, const char *data,
			       size_t size, time_t now, const struct policy *parsed,
			       struct bundle **ret, char *reason, size_t reason_size)
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

	r = parsed ? bundle_verify_parsed(trust, name, data, size, &want, parsed, ret, &err)
		   : bundle_verify(trust, name, data, size, &want, ret, &err);
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
		/* a->policy was parsed from a->bundle_data: its metadata are judged again, the
		 * same bytes are not parsed again. */
		r = agent_verify_bundle(a, trust, disk, a->policy->path, a->bundle_data,
					a->bundle_size, a->bundle_verified_at, a->policy, &b, why,
					sizeof(why));
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

		for (size_t j = 0; j < app->n_rules; j++)
			policy_rule_clear(p, &app->rules[j]);
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
 * a valid policy: only the guards, so every app below them is refused everything. Without a
 * guard cgroup there would be nothing left to refuse with, so the apps of the policy stay
 * registered with every rule removed.
 */
static void agent_fail_closed(struct agent *a, const char *why, const char *distrust)
{
	struct agent_timing t = {};
	char reason[1024] = "";
	struct policy *p = NULL;
	int r;

	snprintf(a->distrust, sizeof(a->distrust), "%s", distrust);
	if (!a->n_guards && a->policy) {
		p = a->policy;
		agent_strip_rules(p);
	}
	r = agent_apply(a, p, "", true, &t, reason, sizeof(reason), NULL);
	if (r < 0) {
		log_error("The policy in force is no longer trusted (%s): %s. Applying the "
			  "fail-closed state failed: %s",
			  why, distrust, reason);
		return;
	}
	agent_forget_bundle(a);
	evidence_record_policy(a, why);
	if (a->n_guards)
		log_error("The policy in force is no longer trusted (%s): %s. Failing closed: every "
			  "app below %s is refused everything until a bundle that verifies is "
			  "installed",
			  why, distrust, a->guards_text);
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
int agent_load_bytes(struct agent *a, const char *name, const char *data, size_t size,
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
	    !agent_cgroups_stale(a) && !agent_geo_changed(a)) {
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
		r = agent_verify_bundle(a, trust, state, name, data, size, now, NULL, &b, reason,
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
		r = agent_apply(a, p, sha, true, t, reason, sizeof(reason), save);
		if (r < 0)
			policy_free(p);
	}
	if (r < 0) {
		snprintf(a->last_error, sizeof(a->last_error), "%s", reason);
		if ((a->policy && !a->distrust[0] && !distrust[0]) ||
		    (a->adopted && a->developer_mode))
			log_struct(LOG_LEVEL_ERR, CW_MESSAGE_POLICY_REFUSED, NULL, 0,
				   "Policy refused (%s); the last good policy stays in force: %s", why,
				   reason);
		else
			log_struct(LOG_LEVEL_ERR, CW_MESSAGE_POLICY_REFUSED, NULL, 0,
				   "Policy refused (%s): %s", why, reason);
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
	t->cpu_us = t->cpu_start_us ? thread_cpu_us() - t->cpu_start_us : 0;
	a->timing = *t;
	a->last_error[0] = '\0';
	evidence_record_policy(a, why);
	json_object_put(agent_check_overriders(a, true));
	log_struct(LOG_LEVEL_INFO, CW_MESSAGE_POLICY_IN_FORCE, NULL, 0,
		   "Policy %s in force (%s): %zu apps, %zu rules, generation %u (%zu IPv4 and %zu "
		   "IPv6 prefixes, %zu port entries in %zu port sets), sha256 %s, %s, %.3f ms",
		   name, why, a->policy->n_apps, a->policy->n_rules, !loader_next_gen(a->loader),
		   a->stats.dst4, a->stats.dst6, a->stats.ports, a->stats.portsets,
		   a->policy_sha256, a->signed_policy ? "signed" : "UNSIGNED (developer mode)",
		   (double)t->total_us / 1000.0);
	return 0;
}

static int agent_load_policy_once(struct agent *a, const char *why)
{
	_cleanup_free_ char *data = NULL;
	struct agent_timing t = { .cpu_start_us = thread_cpu_us() };
	uint64_t start = now_us();
	bool untrusted = false;
	struct stat st;
	size_t size;
	int r;

	/* It decides what every app may reach: only root may own it, nobody else write it. */
	r = stat(a->policy_path, &st) < 0 ? negative_errno() : 0;
	if (r >= 0 && ((st.st_uid != 0 && st.st_uid != geteuid()) ||
		       (st.st_mode & (S_IWGRP | S_IWOTH)))) {
		untrusted = true;
		r = -EPERM;
	}
	if (r >= 0)
		r = read_file_limited(a->policy_path, a->developer_mode ? POLICY_MAX_FILE_BYTES
									: BUNDLE_MAX_BYTES,
				      &data, &size);
	t.read_us = now_us() - start;
	if (r < 0) {
		if (untrusted)
			snprintf(a->last_error, sizeof(a->last_error),
				 "%s: owned by uid %u, mode %04o: the policy file must be root's and "
				 "writable by nobody else",
				 a->policy_path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		else if (r == -EFBIG)
			snprintf(a->last_error, sizeof(a->last_error), "%s: larger than %u bytes",
				 a->policy_path,
				 a->developer_mode ? POLICY_MAX_FILE_BYTES : BUNDLE_MAX_BYTES);
		else
			snprintf(a->last_error, sizeof(a->last_error), "%s: %s", a->policy_path,
				 strerror(-r));
		log_struct(LOG_LEVEL_ERR, CW_MESSAGE_POLICY_REFUSED, NULL, 0,
			   "Policy refused (%s)%s: %s", why,
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
int agent_persist_policy(struct agent *a, const char *data, size_t size)
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

/* Load a first policy, or fail closed. Returns < 0 only when nothing can be enforced. */
int agent_first_policy(struct agent *a)
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
	if (!a->n_guards)
		return log_error_errno(r, "No valid policy to enforce and no guard cgroup; "
					  "refusing to start");
	r = agent_apply(a, NULL, "", true, &t, reason, sizeof(reason), NULL);
	if (r < 0)
		return log_error_errno(r, "Cannot even refuse everything below %s: %s",
				       a->guards_text, reason);
	if (a->distrust[0])
		log_error("Not trusted: %s. Failing closed", a->distrust);
	log_struct(LOG_LEVEL_ERR, CW_MESSAGE_FAIL_CLOSED, NULL, 0,
		   "No valid policy: every app below %s is refused everything until a valid "
		   "policy is loaded (fix %s; it is reloaded when it changes)",
		   a->guards_text, a->policy_path);
	return 0;
}
