/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The BPF loader: probing the kernel, loading carwall's programs, attaching them with bpf_links
 * at the cgroup root, pinning links and maps so that enforcement outlives the agent, adopting
 * what an earlier agent pinned, writing a compiled policy into the inactive generation and
 * flipping to it, and removing everything.
 The pin layout is lib/pins.h's.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "learned.h"
#include "pins.h"
#include "policy_compile.h"

struct loader;

/* One managed app cgroup of a policy, resolved on this host. */
struct loader_cgroup {
	uint64_t id;
	unsigned level;
	uint32_t app;
	uint32_t flags; /* CW_APP_F_* (CW_APP_F_NAMES is set by loader_apply() from the maps) */
	uint32_t uid;	/* policy_app_uid() of the app's id; 0 for the guard */
};

/*
 * Check what carwall needs of the kernel. Returns 0, or a negative errno with what is missing
 * named in `missing` (e.g. "BPF program type cgroup_sock_addr").
 */
int loader_probe(const char *cgroup_root, char *missing, size_t missing_size);

/*
 * Make sure the bpffs under which pin_dir lives is mounted (mounting /sys/fs/bpf if that is
 * where pin_dir is and nothing is mounted there), and create the pin folders.
 */
int loader_prepare_pin_dir(const char *pin_dir);

struct loader_options {
	uint32_t event_rate; /* events per app and second; 0: no limit */
	uint32_t flow_report_s; /* seconds between two reports of a destination's allowed flows */
};

/* Load the programs, reusing maps pinned by an earlier agent (so the policy in force stays). */
int loader_open(const char *pin_dir, const struct loader_options *opts, struct loader **ret);

/* The generation the next loader_apply() writes (the inactive one). */
uint32_t loader_next_gen(const struct loader *l);

/*
 * Write a compiled policy into the inactive generation and flip to it. `maps` must have been
 * compiled for loader_next_gen(). Every decision is taken wholly on the old or the new policy.
 * The app counters of app indexes 0..n_app_slots-1 start at zero (the policy's apps and its
 * guard: n_apps + 1, at most CW_APP_SLOTS; every cgroup's app must be below it), those of its
 * rules too.
 */
int loader_apply(struct loader *l, const struct policy_maps *maps, const struct loader_cgroup *cgroups,
		 size_t n_cgroups, uint32_t n_app_slots);

/*
 * Whether the policy in force (the active generation) manages the cgroup `id` at `level`, as
 * the programs see it: its entry (app index and CW_APP_F_*) in *ret, or -ENOENT.
 */
int loader_lookup_cgroup(const struct loader *l, uint64_t id, unsigned level,
			 struct cw_app_val *ret);

/* One cw_cgroups entry. */
struct loader_active_cgroup {
	struct cw_cgroup_key key;
	struct cw_app_val val;
};

/*
 * The policy in force as the maps hold it (adopted from the pins of an earlier agent: there is
 * no policy to compile), with every key moved to loader_next_gen(): its destination and port
 * entries (ready for loader_apply()) and its cgroup entries. Free with policy_maps_free() and
 * free().
 */
int loader_read_active(const struct loader *l, struct policy_maps **ret_maps,
		       struct loader_active_cgroup **ret_cgroups, size_t *ret_n);

/* The generation the programs use now. */
uint32_t loader_active_gen(const struct loader *l);

/* The ring buffer of struct cw_event. */
int loader_events_fd(const struct loader *l);

/* The socket storage map cw_sk_state (for revocation: how each socket came to be). */
int loader_sk_state_fd(const struct loader *l);

/* The maps of host names: cw_names, the learned addresses and their per-app counts. */
int loader_names_fd(const struct loader *l);
int loader_learned_fd(const struct loader *l);
/* cw_seen: the allowed flows per destination, for the flow inventory. */
int loader_seen_fd(const struct loader *l);
/* cw_seen_keys: the keys of cw_seen per app slot; cw_ratelimit: its unlisted flows. */
int loader_seen_keys_fd(const struct loader *l);
int loader_ratelimit_fd(const struct loader *l);
int loader_learn_count_fd(const struct loader *l);

/*
 * The apps of the policy in force as the programs see them (cw_cgroups of the active
 * generation, the guard left out): uid and app index, each app once. Free *ret with free().
 */
int loader_active_apps(const struct loader *l, struct learned_app **ret, size_t *ret_n);

/* What an app slot's DNS answers taught (struct cw_dns_counters), summed over CPUs. */
int loader_read_dns_counters(const struct loader *l, uint32_t gen, uint32_t app,
			     struct cw_dns_counters *ret);

/* An app slot's flows refused (or audited) by home-only residency, summed over CPUs. */
int loader_read_region_refusals(const struct loader *l, uint32_t gen, uint32_t app, uint64_t *ret);

/* Counters, summed over CPUs: of an app slot, and the flows a rule allowed. */
int loader_read_app_counters(const struct loader *l, uint32_t gen, uint32_t app,
			     struct cw_app_counters *ret);
int loader_read_rule_hits(const struct loader *l, uint32_t gen, uint32_t rule, uint64_t *ret);

/*
 * The next loader_apply() writes the policy in force again (the same file, into the other
 * generation: a re-registration of app cgroups): its rule counts go on from what they are, where
 * otherwise they start from zero. Applies to that one call.
 */
void loader_keep_rule_hits(struct loader *l, bool keep);

/*
 * The flows rule `rule` of the policy in force allowed since it was loaded, summed over CPUs;
 * never waits for the grace period after a flip.
 */
int loader_rule_hits_in_force(struct loader *l, uint32_t rule, uint64_t *ret);

/*
 * The policy epoch in force: one more at every flip, continued from the pinned state by an agent
 * that adopts it; 0 while the maps never held a policy. Verdicts cached by the programs are tied
 * to one epoch.
 */
uint64_t loader_epoch(const struct loader *l);

/* True when the active generation holds a valid policy (e.g. adopted from an earlier agent). */
bool loader_has_policy(const struct loader *l);

/*
 * Attach the programs at cgroup_root, or adopt the links pinned there by an earlier agent and
 * swap the new programs in with a link update (never detach/attach).
 */
int loader_attach(struct loader *l, const char *cgroup_root);

/*
 * Programs of others that run after carwall's on a destination hook for sockets below
 * cgroup_root, so that they could rewrite the destination carwall judged: attached at the same
 * cgroup after carwall's, or at an ancestor. Found with BPF_PROG_QUERY (effective order).
 */
struct loader_foreign {
	const char *hook;
	uint32_t prog_id;
	char prog_name[16];
};
int loader_find_overriders(struct loader *l, const char *cgroup_root, struct loader_foreign *ret,
			   size_t max, size_t *ret_n);

/* Release the loader's references; pinned links and maps stay in force. Accepts NULL. */
void loader_free(struct loader *l);
