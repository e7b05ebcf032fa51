/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every carwall program shares: the policy state and the cgroup -> app map, and finding
 * the managed app of the calling task. Each object that includes this defines these maps; the
 * loader makes them all use the same pinned maps.
 */
#ifndef CW_APP_BPF_H
#define CW_APP_BPF_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "carwall.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
/* Socket types as the kernel numbers them on every architecture carwall targets (not MIPS). */
#ifndef SOCK_STREAM
#define SOCK_STREAM 1
#endif
#ifndef SOCK_DGRAM
#define SOCK_DGRAM 2
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cw_state);
} cw_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CW_MAX_CGROUPS);
	__type(key, struct cw_cgroup_key);
	__type(value, struct cw_app_val);
} cw_cgroups SEC(".maps");

/* What one decision needs: the policy generation and the app, once found. */
struct cw_ctx {
	__u32 gen;
	__u32 app;
};

/*
 * Find the managed app of the calling task: its cgroup, or the nearest ancestor at a level where
 * the active policy has an app cgroup; the deepest match wins. Reads the active generation once,
 * so that the whole decision is taken on one policy. Returns false for an unmanaged task, and
 * while no valid policy is loaded (the agent fills the maps before it attaches the programs).
 */
static __always_inline bool cw_find_app(struct cw_ctx *c)
{
	const struct cw_gen_info *gi;
	struct cw_state *state;
	__u32 zero = 0, mask;

	state = bpf_map_lookup_elem(&cw_state, &zero);
	if (!state)
		return false; /* cannot happen: an array always has element 0 */
	c->gen = *(volatile __u32 *)&state->active_gen & 1;
	gi = c->gen ? &state->gen[1] : &state->gen[0];
	if (!(gi->flags & CW_GEN_F_VALID))
		return false;
	mask = gi->level_mask;

	for (int level = CW_MAX_CGROUP_LEVEL; level >= 0; level--) {
		struct cw_cgroup_key key = {};
		struct cw_app_val *app;

		if (!(mask & (1u << level)))
			continue;
		key.cgroup_id = bpf_get_current_ancestor_cgroup_id(level);
		if (!key.cgroup_id)
			continue; /* the task's cgroup is above this level */
		key.gen = c->gen;
		app = bpf_map_lookup_elem(&cw_cgroups, &key);
		if (app) {
			c->app = app->app;
			return true;
		}
	}
	return false;
}

#endif /* CW_APP_BPF_H */
