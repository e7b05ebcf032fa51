/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The addresses the kernel learned from apps' DNS answers (cw_learned, written by bpf/dns.bpf.c):
 * reading them for `carwall names`, and the agent's sweep, which deletes what can no longer
 * allow anything and keeps each app's count (cw_learn_count) true for its quota.
 *
 * The programs never need the sweep to be safe: an expired entry allows no new flow, and one
 * whose name left the policy misses in cw_names. The sweep only gives the room back.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "carwall.h"

struct learned_entry {
	struct cw_learned_key key;
	struct cw_learned_val val;
};

/* Every entry of cw_learned (at most CW_MAX_LEARNED), in map order. Free *ret with free(). */
int learned_read_all(int learned_fd, struct learned_entry **ret, size_t *ret_n);

/* An app of the policy in force: its uid and its index in the active generation. */
struct learned_app {
	uint32_t uid;
	uint32_t app;
};

struct learned_sweep_stats {
	size_t kept;
	size_t expired;	 /* deleted: expired */
	size_t orphaned; /* deleted: its app or its name is no longer in the policy in force */
	size_t refreshed; /* about to be deleted, but learned again meanwhile: put back */
	uint64_t next_expiry_ns; /* the first expiry of the entries kept; UINT64_MAX: none */
};

/*
 * Delete the entries expired at now_ns (boot clock), those of an app not in apps[], and those
 * whose name is not the app's in cw_names of generation gen; then write each app's number of
 * entries to cw_learn_count (and delete the counts of uids with none). An entry is taken out
 * with one atomic lookup-and-delete and put back at once when it turns out to have been learned
 * again in between, so a fresh answer is never lost to the sweep (but for that instant).
 */
int learned_sweep(int learned_fd, int count_fd, int names_fd, uint32_t gen,
		  const struct learned_app *apps, size_t n_apps, uint64_t now_ns,
		  struct learned_sweep_stats *ret);
