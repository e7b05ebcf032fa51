// SPDX-License-Identifier: GPL-2.0-only
/*
 * The floor of `make bench`: what any BPF egress firewall costs at least, loaded and attached
 * by `bench floor` (tests/bench/bench.c) in a cgroup subtree of its own.
 *
 * floor_connect4/6, floor_sendmsg4/6: ONE lookup per decision, in an LPM trie of the same
 * prefixes as carwall's benchmark policy (tests/bench/floor.h), keyed by the calling task's
 * cgroup id (a helper, no map) and the destination; the ports and protocols the prefix allows
 * are in the value, checked without a second lookup. A miss, or a port or protocol the value does
 * not hold, is refused (EPERM). The floor does nothing else carwall does: no policy generations,
 * no ancestor walk (only the app's own cgroup matches), no IPv4-mapped IPv6, no counters, no
 * events, no socket storage.
 * floor_sock_create: TCP and UDP sockets only (without it raw, ICMP and SCTP sockets escape the
 * address hooks); a test of the socket's type and protocol, no lookup. With floor_connect4/6 it
 * is what a BPF firewall needs per new TCP connection.
 *
 * mark_* (variant "mark", "floor+mark" in the report): the floor plus the two things any design
 * with carwall's guarantees must also do, attached in a cgroup subtree of their own with tries of
 * their own (mark_dst4/6, the same prefixes keyed by that subtree's app cgroups).
 * mark_connect4/6: the floor's judgement (the same one lookup), then on allow the socket's mark
 * in its local storage (created here: the kernel's only per-socket store a program can write
 * without kernel BTF, which AGL kernels lack), holding the verdict and the policy epoch it was
 * made in; what marks a connection as one the app made (so it cannot pass for an accepted one)
 * and what lets a reload revoke it. No storage, no connection (fail closed).
 * mark_sendmsg4/6, mark_sock_create: as the floor's.
 * mark_skb_egress: the per-packet backstop: a full socket's mark, read without creating it, must
 * be of the policy epoch in force (mark_epoch, a global set from userspace: no map lookup) and
 * say pass; a socket without a mark passes (its datagrams were judged by sendmsg4/6), and so do
 * request and time-wait sockets. Nothing else.
 *
 * empty_*: one program per hook carwall attaches (link names as carwall pins them), returning
 * "allow" and nothing else: their run time under kernel.bpf_stats_enabled is what the statistics
 * themselves cost per run (two clock reads and the per-CPU update), subtracted from every other
 * program's run time of the same hook.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "floor.h"

#define SOCK_STREAM 1
#define SOCK_DGRAM  2

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FLOOR_MAX_PREFIXES);
	__type(key, struct floor_key4);
	__type(value, struct floor_val);
} floor_dst4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FLOOR_MAX_PREFIXES);
	__type(key, struct floor_key6);
	__type(value, struct floor_val);
} floor_dst6 SEC(".maps");

/* The mark variant's tries: the floor's prefixes, keyed by the mark subtree's app cgroups. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FLOOR_MAX_PREFIXES);
	__type(key, struct floor_key4);
	__type(value, struct floor_val);
} mark_dst4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FLOOR_MAX_PREFIXES);
	__type(key, struct floor_key6);
	__type(value, struct floor_val);
} mark_dst6 SEC(".maps");

/* The mark a socket gets when mark_connect4/6 allow it. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mark_state);
} mark_sk SEC(".maps");

/* The policy epoch in force, set by `bench floor` (a reload would bump it). */
__u32 mark_epoch;

/* 1: the value allows the port and protocol; 0 (refused) on a miss. */
static __always_inline int floor_ports(const struct floor_val *v, __u32 proto, __u32 user_port)
{
	__u16 port = bpf_ntohs((__u16)user_port);

	if (!v)
		return 0;
#pragma unroll
	for (int i = 0; i < FLOOR_MAX_RANGES; i++) {
		const struct floor_range *r = &v->range[i];

		if ((__u32)i >= v->n)
			break;
		if (port >= r->lo && port <= r->hi && (!r->proto || r->proto == proto))
			return 1;
	}
	return 0;
}

static __always_inline int floor_judge4(struct bpf_sock_addr *ctx, void *dst4)
{
	struct floor_key4 key = {};
	__u64 cgroup = bpf_get_current_cgroup_id();

	key.prefixlen = FLOOR_CGROUP_BITS + 32;
	__builtin_memcpy(key.cgroup, &cgroup, sizeof(key.cgroup));
	key.addr_be = ctx->user_ip4;
	return floor_ports(bpf_map_lookup_elem(dst4, &key), ctx->protocol, ctx->user_port);
}

static __always_inline int floor_judge6(struct bpf_sock_addr *ctx, void *dst6)
{
	struct floor_key6 key = {};
	__u64 cgroup = bpf_get_current_cgroup_id();

	key.prefixlen = FLOOR_CGROUP_BITS + 128;
	__builtin_memcpy(key.cgroup, &cgroup, sizeof(key.cgroup));
	key.addr_be[0] = ctx->user_ip6[0];
	key.addr_be[1] = ctx->user_ip6[1];
	key.addr_be[2] = ctx->user_ip6[2];
	key.addr_be[3] = ctx->user_ip6[3];
	return floor_ports(bpf_map_lookup_elem(dst6, &key), ctx->protocol, ctx->user_port);
}

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	return floor_judge4(ctx, &floor_dst4);
}

SEC("cgroup/connect6")
int floor_connect6(struct bpf_sock_addr *ctx)
{
	return floor_judge6(ctx, &floor_dst6);
}

SEC("cgroup/sendmsg4")
int floor_sendmsg4(struct bpf_sock_addr *ctx)
{
	return floor_judge4(ctx, &floor_dst4);
}

SEC("cgroup/sendmsg6")
int floor_sendmsg6(struct bpf_sock_addr *ctx)
{
	return floor_judge6(ctx, &floor_dst6);
}

static __always_inline int floor_sock_type(const struct bpf_sock *ctx)
{
	return (ctx->type == SOCK_STREAM && ctx->protocol == IPPROTO_TCP) ||
	       (ctx->type == SOCK_DGRAM && ctx->protocol == IPPROTO_UDP);
}

SEC("cgroup/sock_create")
int floor_sock_create(struct bpf_sock *ctx)
{
	return floor_sock_type(ctx);
}

/* An allowed connect(): the socket's mark, or no connection (fail closed). */
static __always_inline int mark_allowed(struct bpf_sock_addr *ctx, int allow)
{
	struct mark_state *m;

	if (!allow)
		return 0;
	m = bpf_sk_storage_get(&mark_sk, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!m)
		return 0;
	m->epoch = mark_epoch;
	m->pass = 1;
	return 1;
}

SEC("cgroup/connect4")
int mark_connect4(struct bpf_sock_addr *ctx)
{
	return mark_allowed(ctx, floor_judge4(ctx, &mark_dst4));
}

SEC("cgroup/connect6")
int mark_connect6(struct bpf_sock_addr *ctx)
{
	return mark_allowed(ctx, floor_judge6(ctx, &mark_dst6));
}

SEC("cgroup/sendmsg4")
int mark_sendmsg4(struct bpf_sock_addr *ctx)
{
	return floor_judge4(ctx, &mark_dst4);
}

SEC("cgroup/sendmsg6")
int mark_sendmsg6(struct bpf_sock_addr *ctx)
{
	return floor_judge6(ctx, &mark_dst6);
}

SEC("cgroup/sock_create")
int mark_sock_create(struct bpf_sock *ctx)
{
	return floor_sock_type(ctx);
}

/*
 * Every outgoing packet of the mark subtree (1 passes, 0 drops): a marked socket passes while its
 * mark is of the epoch in force and says pass. Unmarked sockets pass: their datagrams were judged
 * by sendmsg4/6 (and a TCP socket cannot send before connect4/6 marked it). Request and time-wait
 * sockets pass too: they answer a connection, or end one, that was judged.
 */
SEC("cgroup_skb/egress")
int mark_skb_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct mark_state *m;

	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	m = bpf_sk_storage_get(&mark_sk, sk, 0, 0);
	if (!m)
		return 1;
	return m->epoch == mark_epoch && m->pass;
}

SEC("cgroup/connect4")
int empty_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect6")
int empty_connect6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg4")
int empty_sendmsg4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg6")
int empty_sendmsg6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sock_create")
int empty_sock_create(struct bpf_sock *ctx)
{
	return 1;
}

SEC("cgroup_skb/egress")
int empty_skb_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/ingress")
int empty_skb_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("sockops")
int empty_sock_ops(struct bpf_sock_ops *ops)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
