// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwall's socket-address hooks: cgroup/connect4, connect6, sendmsg4 and sendmsg6.
 *
 * Attached with bpf_links at the agent's cgroup root, so they run for every socket below it.
 * A socket operation by a task in a managed app's cgroup (or a descendant of it) is allowed only
 * when the destination address, port and protocol match one of that app's rules (cw_dest.bpf.h).
 * Everything else a managed app tries is refused: the hook returns 0 and the caller gets EPERM,
 * and the refusal is counted and reported (cw_app.bpf.h). In audit mode the flow goes out and
 * is reported all the same. An allowed flow is reported for the flow inventory at most once per
 * cw_flow_report_s and destination (cw_seen, bpf/carwall.h), within a budget per app and second,
 * and for at most CW_SEEN_PER_APP destinations of an app at once. A datagram (or UDP connect)
 * repeating its socket's last allowed flow, for a task of the same cgroup in the same policy
 * epoch, is counted from the socket's cached verdict without being judged again
 * (cw_udp_repeat()). Tasks outside every managed cgroup are left alone.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cw_app.bpf.h"
#include "cw_dest.bpf.h"

#define SOCK_ADDR_ALLOW 1
#define SOCK_ADDR_DENY 0

/* Seconds between two reports of one destination's allowed flows; 0: every flow. Before load. */
const volatile __u32 cw_flow_report_s = 10;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CW_MAX_SEEN);
	__type(key, struct cw_seen_key);
	__type(value, struct cw_seen_val);
} cw_seen SEC(".maps");

/* The keys of cw_seen each app slot added (either generation), against its CW_SEEN_PER_APP. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CW_APP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} cw_seen_keys SEC(".maps");

/* What a socket operation is about: its socket and port (the destination's family, for now). */
static __always_inline void cw_flow_meta(const struct bpf_sock_addr *ctx, int family,
					 struct cw_flow *f)
{
	f->sock_type = ctx->type;
	f->proto = (__u8)ctx->protocol;
	f->family = (__u8)family;
	/* user_port holds the port in network byte order in its low 16 bits. */
	f->port = bpf_ntohs((__u16)ctx->user_port);
}

/* Its destination address (ctx->user_family is family); ip6_be: the IPv6 one as given. */
static __always_inline void cw_flow_addr(const struct bpf_sock_addr *ctx, int family,
					 struct cw_flow *f, __u32 ip6_be[4])
{
	if (family == AF_INET) {
		__u32 ip4_be = ctx->user_ip4;

		__builtin_memcpy(f->addr, &ip4_be, 4);
		return;
	}
	ip6_be[0] = ctx->user_ip6[0];
	ip6_be[1] = ctx->user_ip6[1];
	ip6_be[2] = ctx->user_ip6[2];
	ip6_be[3] = ctx->user_ip6[3];
	if (cw_is_v4_mapped(ip6_be)) {
		/* Reported, cached and judged as the IPv4 destination it is. */
		f->family = AF_INET;
		__builtin_memcpy(f->addr, &ip6_be[3], 4);
	} else {
		__builtin_memcpy(f->addr, ip6_be, 16);
	}
}

/* The verdict for one socket operation of a managed app. */
static __always_inline enum cw_verdict cw_sock_addr_judge(struct cw_ctx *c,
							  struct bpf_sock_addr *ctx, int family,
							  struct cw_flow *f)
{
	__u32 ip6_be[4];

	cw_flow_meta(ctx, family, f);
	if (ctx->user_family != family)
		return CW_VERDICT_DENY_FAMILY;
	cw_flow_addr(ctx, family, f, ip6_be);

	/* ICMP ping sockets, SCTP, MPTCP, UDP-Lite... are not in the policy language. */
	if (!(ctx->protocol == IPPROTO_TCP && ctx->type == SOCK_STREAM) &&
	    !(ctx->protocol == IPPROTO_UDP && ctx->type == SOCK_DGRAM))
		return CW_VERDICT_DENY_PROTOCOL;

	if (family == AF_INET)
		return cw_judge4(c, ctx->user_ip4, (__u16)ctx->protocol, f->port);
	return cw_judge6(c, ip6_be, (__u16)ctx->protocol, f->port);
}

/*
 * Remember an allowed flow in the socket's storage st, for the egress program and the next
 * sendmsg: its verdict for this policy epoch and destination (so that the flow's packets are not
 * judged, counted or reported a second time, and a repeat by the same cgroup's tasks is counted
 * without judging it again: cgroup_id, only for a flow a rule allowed, not by a learned name),
 * whether its connect() was allowed by a learned name (CW_SK_F_BY_NAME), and for a TCP socket
 * the app connects itself, that it was connected: it can then never be taken for an accepted one
 * (judged by peer address alone), not even when a simultaneous open makes the kernel report it
 * as passively established. No storage: the egress program judges every packet, but a TCP
 * connect is refused (fail closed), since the mark could not be set. Another writer of the
 * cache at this very moment (the egress program of another thread): nothing is cached, and the
 * name is not kept (its flow is judged by its learned address then, a stricter rule).
 */
static __always_inline bool cw_remember(struct bpf_sock_addr *ctx, struct cw_sk_state *st,
					const struct cw_ctx *c, const struct cw_flow *f,
					enum cw_verdict v, enum cw_hook hook)
{
	bool connect = hook == CW_HOOK_CONNECT4 || hook == CW_HOOK_CONNECT6;
	bool tcp = ctx->protocol == IPPROTO_TCP;
	__u32 seq;

	if (!st)
		return !(connect && tcp);
	if (connect && tcp)
		st->flags |= CW_SK_F_ACTIVE;
	if (!cw_sk_write_begin(st, &seq))
		return true;
	/* The egress program then judges this flow by its name's presence, not its expiry. */
	if (connect && c->by_name) {
		st->flags |= CW_SK_F_BY_NAME;
		st->name_hash = c->name_hash;
		st->name_kind = c->name_kind;
		__builtin_memcpy(st->name_addr, f->addr, sizeof(st->name_addr));
	} else if (connect) {
		st->flags &= ~CW_SK_F_BY_NAME;
	}
	cw_sk_cache(st, c->epoch, f, true);
	if (v == CW_VERDICT_ALLOW_RULE && !c->by_name) {
		st->cgroup_id = bpf_get_current_cgroup_id();
		st->app = c->app;
		st->rule = c->rule;
	}
	cw_sk_write_end(st, seq);
	return true;
}

/*
 * An allowed flow, for the flow inventory: counted in its key of cw_seen, and reported with the
 * key's total when the key is new or its last report is cw_flow_report_s old (bpf/carwall.h).
 * The agent counts differences of totals, so two CPUs reporting one key at once, or an event
 * that is not sent, count nothing twice and lose nothing.
 */
static __always_inline void cw_report_allowed(const struct cw_ctx *c, const struct cw_flow *f)
{
	struct cw_seen_key key = {};
	struct cw_seen_val fresh = {};
	struct cw_seen_val *val;
	struct cw_ratelimit *rl;
	__u64 now, *keys;

	key.app_uid = c->uid;
	key.port = f->port;
	key.family = f->family;
	key.proto = f->proto;
	__builtin_memcpy(key.addr, f->addr, sizeof(key.addr));
	val = bpf_map_lookup_elem(&cw_seen, &key);
	if (!val) {
		keys = bpf_map_lookup_elem(&cw_seen_keys, &c->app);
		if (!keys)
			return;
		/* The app holds its share: the flow is counted, not its destination. */
		if (__sync_fetch_and_add(keys, 1) >= CW_SEEN_PER_APP) {
			rl = bpf_map_lookup_elem(&cw_ratelimit, &c->app);
			if (rl)
				__sync_fetch_and_add(&rl->unlisted, 1);
			return;
		}
		/* EEXIST: another CPU added the key meanwhile; its entry counts this flow. */
		bpf_map_update_elem(&cw_seen, &key, &fresh, BPF_NOEXIST);
		val = bpf_map_lookup_elem(&cw_seen, &key);
		if (!val)
			return;
	}
	__sync_fetch_and_add(&val->flows, 1);
	/* The coarse clock: a read of the last tick, enough for a period of seconds. */
	now = bpf_ktime_get_coarse_ns();
	/* reported_ns 0: never reported. */
	if (val->reported_ns && now - val->reported_ns < cw_flow_report_s * 1000000000ull)
		return;
	val->reported_ns = now;
	val->rule = c->rule;
	val->gen = c->gen;
	/*
	 * Not sent (over the app's budget, or the ring buffer full): the key's next flow reports
	 * again, and the agent's next read of cw_seen counts the flows all the same.
	 */
	if (!cw_emit(c, f, CW_VERDICT_ALLOW_RULE, false, NULL, (__u32)val->flows))
		val->reported_ns = 0;
}

/*
 * A datagram (or a UDP connect) of a managed app's task to the destination its socket's last
 * allowed flow went to, in this policy epoch, allowed by a rule for a task of the same cgroup
 * (cw_remember()): allowed again without judging it, counted for the same app and rule, and not
 * counted again in cw_seen (a UDP "flow" is a run of datagrams of one socket to one
 * destination). A connect of a socket whose last connect was allowed by a name is judged, so
 * that its name is let go. Whatever else (no storage, another destination, epoch or cgroup, a
 * copy being written): false, judge it.
 */
static __always_inline bool cw_udp_repeat(struct bpf_sock_addr *ctx, int family, bool connect,
					  struct cw_flow *f)
{
	struct cw_sk_state *st, copy;
	struct cw_ctx c = {};
	__u32 ip6_be[4];

	if (ctx->user_family != family || !cw_active_gen(&c))
		return false;
	st = bpf_sk_storage_get(&cw_sk_state, ctx->sk, 0, 0);
	if (!st || !cw_sk_read(st, &copy) || !copy.pass || !copy.cgroup_id ||
	    (connect && (copy.flags & CW_SK_F_BY_NAME)))
		return false;
	cw_flow_meta(ctx, family, f);
	cw_flow_addr(ctx, family, f, ip6_be);
	if (!cw_sk_matches(&copy, c.epoch, f, false) ||
	    copy.cgroup_id != bpf_get_current_cgroup_id())
		return false;
	c.app = copy.app;
	c.rule = copy.rule;
	return cw_finish(&c, f, CW_VERDICT_ALLOW_RULE);
}

static __always_inline int cw_sock_addr(struct bpf_sock_addr *ctx, int family, enum cw_hook hook)
{
	bool connect = hook == CW_HOOK_CONNECT4 || hook == CW_HOOK_CONNECT6;
	struct cw_flow f = { .hook = hook, .from_task = true };
	/* A TCP socket connects once (its storage is new): never a repeat. */
	bool tcp_connect = connect && ctx->protocol == IPPROTO_TCP;
	struct cw_sk_state *st, copy;
	struct cw_ctx c = {};
	enum cw_verdict v;
	bool repeat;

	if (!tcp_connect && cw_udp_repeat(ctx, family, connect, &f))
		return SOCK_ADDR_ALLOW;
	if (!cw_find_app(&c, NULL))
		return SOCK_ADDR_ALLOW;
	/* From here on the socket belongs to a managed app: whatever is unexpected is refused. */
	v = cw_sock_addr_judge(&c, ctx, family, &f);
	if (!cw_finish(&c, &f, v))
		return SOCK_ADDR_DENY;
	st = bpf_sk_storage_get(&cw_sk_state, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	/* The same destination as the socket's last allowed flow, in this epoch: a repeat. */
	repeat = v == CW_VERDICT_ALLOW_RULE && !tcp_connect && st && cw_sk_read(st, &copy) &&
		 copy.pass && cw_sk_matches(&copy, c.epoch, &f, false);
	if (!cw_remember(ctx, st, &c, &f, v, hook))
		return SOCK_ADDR_DENY;
	if (v == CW_VERDICT_ALLOW_RULE && !repeat)
		cw_report_allowed(&c, &f);
	return SOCK_ADDR_ALLOW;
}

SEC("cgroup/connect4")
int cw_connect4(struct bpf_sock_addr *ctx)
{
	return cw_sock_addr(ctx, AF_INET, CW_HOOK_CONNECT4);
}

SEC("cgroup/connect6")
int cw_connect6(struct bpf_sock_addr *ctx)
{
	return cw_sock_addr(ctx, AF_INET6, CW_HOOK_CONNECT6);
}

SEC("cgroup/sendmsg4")
int cw_sendmsg4(struct bpf_sock_addr *ctx)
{
	return cw_sock_addr(ctx, AF_INET, CW_HOOK_SENDMSG4);
}

SEC("cgroup/sendmsg6")
int cw_sendmsg6(struct bpf_sock_addr *ctx)
{
	return cw_sock_addr(ctx, AF_INET6, CW_HOOK_SENDMSG6);
}

char LICENSE[] SEC("license") = "GPL";
