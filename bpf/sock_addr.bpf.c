// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwall's socket-address hooks: cgroup/connect4, connect6, sendmsg4 and sendmsg6.
 *
 * Attached with bpf_links at the agent's cgroup root, so they run for every socket below it.
 * A socket operation by a task in a managed app's cgroup (or a descendant of it) is allowed only
 * when the destination address, port and protocol match one of that app's rules; the lookup
 * scheme is described in carwall.h. Everything else a managed app tries is refused: the hook
 * returns 0 and the caller gets EPERM. Tasks outside every managed cgroup are left alone.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cw_app.bpf.h"

#define SOCK_ADDR_ALLOW 1
#define SOCK_ADDR_DENY 0

/* Why a decision was taken; events (later) report this name. */
enum cw_verdict {
	CW_VERDICT_UNMANAGED = 0, /* not an app's socket: allowed, not judged */
	CW_VERDICT_ALLOW_RULE,	  /* a rule of the app allows the flow */
	CW_VERDICT_DENY_NO_RULE,  /* default deny: no rule matches */
	CW_VERDICT_DENY_PROTOCOL, /* neither TCP nor UDP */
	CW_VERDICT_DENY_FAMILY,	  /* an address family the hook does not expect */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CW_MAX_DST4);
	__type(key, struct cw_dst4_key);
	__type(value, struct cw_dst_val);
} cw_dst4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CW_MAX_DST6);
	__type(key, struct cw_dst6_key);
	__type(value, struct cw_dst_val);
} cw_dst6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CW_MAX_PORTS);
	__type(key, struct cw_port_key);
	__type(value, struct cw_port_val);
} cw_ports SEC(".maps");

static __always_inline enum cw_verdict cw_judge_port(const struct cw_ctx *c,
						      const struct cw_dst_val *dst, __u16 proto,
						      __u16 port_be)
{
	struct cw_port_key key = {};

	if (!dst)
		return CW_VERDICT_DENY_NO_RULE;
	key.prefixlen = CW_PORT_KEY_FULL_BITS;
	key.scope = cw_scope(c->gen, dst->portset);
	key.proto = proto;
	key.port_be = port_be;
	if (!bpf_map_lookup_elem(&cw_ports, &key))
		return CW_VERDICT_DENY_NO_RULE;
	return CW_VERDICT_ALLOW_RULE;
}

static __always_inline enum cw_verdict cw_judge4(const struct cw_ctx *c, __u32 ip4_be, __u16 proto,
						 __u16 port_be)
{
	struct cw_dst4_key key = {};

	key.prefixlen = CW_SCOPE_BITS + 32;
	key.scope = cw_scope(c->gen, c->app);
	__builtin_memcpy(key.addr, &ip4_be, sizeof(key.addr));
	return cw_judge_port(c, bpf_map_lookup_elem(&cw_dst4, &key), proto, port_be);
}

static __always_inline enum cw_verdict cw_judge6(const struct cw_ctx *c, const __u32 ip6_be[4],
						 __u16 proto, __u16 port_be)
{
	struct cw_dst6_key key = {};

	/* An IPv4-mapped destination (::ffff:a.b.c.d) is judged by the IPv4 rules. */
	if (ip6_be[0] == 0 && ip6_be[1] == 0 && ip6_be[2] == bpf_htonl(0x0000ffff))
		return cw_judge4(c, ip6_be[3], proto, port_be);

	key.prefixlen = CW_SCOPE_BITS + 128;
	key.scope = cw_scope(c->gen, c->app);
	__builtin_memcpy(key.addr, ip6_be, sizeof(key.addr));
	return cw_judge_port(c, bpf_map_lookup_elem(&cw_dst6, &key), proto, port_be);
}

/*
 * The decision for one socket operation. `family` is the hook's address family; the destination
 * is read from the context only after the family and protocol checks.
 */
static __always_inline enum cw_verdict cw_decide(struct bpf_sock_addr *ctx, int family)
{
	struct cw_ctx c = {};
	__u32 proto;
	__u16 port_be;

	if (!cw_find_app(&c))
		return CW_VERDICT_UNMANAGED;

	/* From here on the socket belongs to a managed app: whatever is unexpected is refused. */
	if (ctx->user_family != family)
		return CW_VERDICT_DENY_FAMILY;

	proto = ctx->protocol;
	if (proto == IPPROTO_TCP) {
		if (ctx->type != SOCK_STREAM)
			return CW_VERDICT_DENY_PROTOCOL;
	} else if (proto == IPPROTO_UDP) {
		if (ctx->type != SOCK_DGRAM)
			return CW_VERDICT_DENY_PROTOCOL;
	} else {
		/* ICMP ping sockets, SCTP, MPTCP, UDP-Lite... are not in the policy language. */
		return CW_VERDICT_DENY_PROTOCOL;
	}

	/* user_port holds the port in network byte order in its low 16 bits. */
	port_be = (__u16)ctx->user_port;

	if (family == AF_INET)
		return cw_judge4(&c, ctx->user_ip4, proto, port_be);

	__u32 ip6_be[4];
	ip6_be[0] = ctx->user_ip6[0];
	ip6_be[1] = ctx->user_ip6[1];
	ip6_be[2] = ctx->user_ip6[2];
	ip6_be[3] = ctx->user_ip6[3];
	return cw_judge6(&c, ip6_be, proto, port_be);
}

static __always_inline int cw_sock_addr_verdict(enum cw_verdict v)
{
	return v == CW_VERDICT_UNMANAGED || v == CW_VERDICT_ALLOW_RULE ? SOCK_ADDR_ALLOW
								       : SOCK_ADDR_DENY;
}

SEC("cgroup/connect4")
int cw_connect4(struct bpf_sock_addr *ctx)
{
	return cw_sock_addr_verdict(cw_decide(ctx, AF_INET));
}

SEC("cgroup/connect6")
int cw_connect6(struct bpf_sock_addr *ctx)
{
	return cw_sock_addr_verdict(cw_decide(ctx, AF_INET6));
}

SEC("cgroup/sendmsg4")
int cw_sendmsg4(struct bpf_sock_addr *ctx)
{
	return cw_sock_addr_verdict(cw_decide(ctx, AF_INET));
}

SEC("cgroup/sendmsg6")
int cw_sendmsg6(struct bpf_sock_addr *ctx)
{
	return cw_sock_addr_verdict(cw_decide(ctx, AF_INET6));
}

char LICENSE[] SEC("license") = "GPL";
