/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The floor of `make bench` (tests/bench/floor.bpf.c), shared with its loader (`bench floor` in
 * tests/bench/bench.c): the key and value of its one lookup, and the mark variant's socket mark.
 *
 * One LPM trie per family, keyed by (cgroup id of the calling task, destination prefix), where
 * the value holds the ports and protocols the prefix allows. The cgroup id comes from a helper
 * (bpf_get_current_cgroup_id), not from a map, and the ports are folded into the value, so a
 * decision is exactly one map lookup over the same prefixes as carwall's benchmark policy.
 */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <linux/types.h>

/* Capacity per family: the policy's rule limit, as for one generation of carwall's tries. */
#define FLOOR_MAX_PREFIXES 131072
/* Port ranges one prefix can allow (the benchmark's port lists have at most two). */
#define FLOOR_MAX_RANGES 4
/* Bits of the key matched in full before the address: the 64-bit cgroup id. */
#define FLOOR_CGROUP_BITS 64

struct floor_key4 {
	__u32 prefixlen; /* FLOOR_CGROUP_BITS + address prefix length */
	__u32 cgroup[2]; /* the app's cgroup id, as the u64 is laid out in memory */
	__u32 addr_be;	 /* network byte order */
};
_Static_assert(sizeof(struct floor_key4) == 16, "floor_key4 layout");

struct floor_key6 {
	__u32 prefixlen; /* FLOOR_CGROUP_BITS + address prefix length */
	__u32 cgroup[2];
	__u32 addr_be[4];
};
_Static_assert(sizeof(struct floor_key6) == 28, "floor_key6 layout");

struct floor_range {
	__u16 lo, hi; /* destination ports, host byte order, inclusive */
	__u16 proto;  /* IPPROTO_TCP, IPPROTO_UDP, or 0 for both */
	__u16 pad;
};
_Static_assert(sizeof(struct floor_range) == 8, "floor_range layout");

struct floor_val {
	__u32 n; /* ranges in use */
	__u32 pad;
	struct floor_range range[FLOOR_MAX_RANGES];
};
_Static_assert(sizeof(struct floor_val) == 40, "floor_val layout");

/*
 * The mark variant's socket storage (mark_sk): written by mark_connect4/6 when they allow a
 * connection, checked by mark_skb_egress on every packet of the socket.
 */
struct mark_state {
	__u32 epoch; /* the policy epoch of the verdict (mark_epoch then) */
	__u32 pass;  /* 1: allowed */
};
_Static_assert(sizeof(struct mark_state) == 8, "mark_state layout");

#endif /* BENCH_FLOOR_H */
