// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwall's backstop: cgroup_skb/egress judges every packet an app's socket sends by where it
 * really goes, the destination in its IP header, for the paths the socket hooks do not see:
 * a connection revoked by a reload (its packets still in flight, or sent before the socket is
 * destroyed), a socket the app got from elsewhere, a TCP connection the app accepted.
 *
 * - IPv4 and IPv6; IPv6 extension headers are walked (hop-by-hop, destination options,
 *   fragment, authentication) up to the transport header: loopback GSO packets carry a
 *   hop-by-hop header. A routing header, or any transport but TCP and UDP, is refused for an
 *   app: its real destination is not the one in the header, or not in the policy language.
 * - A TCP socket that the kernel reported as accepted (sock_ops, bpf/sock_create.bpf.c) and that
 *   the app never connected is judged by the peer address alone: the peer's port is an
 *   ephemeral one that no rule is about. Every other socket, one that predates carwall
 *   included, is judged by destination address, port and protocol, like the socket hooks do.
 * - The verdict is cached per socket for one policy epoch and destination, so that an
 *   established flow costs one socket-storage lookup per packet; every flip (a reload, app
 *   cgroups registered again, audit to enforce) starts a new epoch that judges it again, and a
 *   revoked flow's packets are dropped from then on.
 * - A flow connected by a learned name (CW_SK_F_BY_NAME, cw_dest.bpf.h) is judged, at every
 *   new epoch, by that name's presence and ports in the policy, not by the learned entry: it is
 *   not cut when the address's TTL runs out, and is when the name leaves the policy.
 * - Non-first fragments carry no ports: they follow the cached verdict of their socket for the
 *   same destination, and are refused without one.
 * - A listener's SYN-ACKs reach this program with the listener as their socket, and are
 *   judged by the peer's address like an accepted connection. Packets of TIME-WAIT sockets
 *   never reach it; they carry no data.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cw_app.bpf.h"
#include "cw_dest.bpf.h"

#define SKB_PASS 1
#define SKB_DROP 0

#define CW_IPV6_MAX_EXT_HEADERS 8

#ifndef NEXTHDR_HOP
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60
#endif

enum cw_parse {
	CW_PARSE_OK,	    /* family, addr, proto and (for TCP and UDP) port are known */
	CW_PARSE_FRAGMENT,  /* a non-first fragment: no port */
	CW_PARSE_UNEXPECTED, /* a form the policy cannot judge (routing header, bad header) */
};

/* The transport ports of TCP and UDP: only the destination port is used. */
struct cw_ports {
	__be16 source;
	__be16 dest;
};

static __always_inline enum cw_parse cw_parse_l4(struct __sk_buff *skb, __u32 off,
						 struct cw_flow *f)
{
	struct cw_ports ports;

	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
		return CW_PARSE_OK;
	if (CW_SKB_READ(skb, off, struct cw_ports, &ports) < 0)
		return CW_PARSE_UNEXPECTED;
	f->port = bpf_ntohs(ports.dest);
	return CW_PARSE_OK;
}

static __always_inline enum cw_parse cw_parse4(struct __sk_buff *skb, struct cw_flow *f)
{
	struct cw_ipv4_hdr iph;

	if (CW_SKB_READ(skb, 0, struct cw_ipv4_hdr, &iph) < 0 || (iph.ver_ihl >> 4) != 4 ||
	    (iph.ver_ihl & 0xf) < 5)
		return CW_PARSE_UNEXPECTED;
	f->family = AF_INET;
	f->proto = iph.protocol;
	__builtin_memcpy(f->addr, &iph.daddr, 4);
	if (bpf_ntohs(iph.frag_off) & 0x1fff)
		return CW_PARSE_FRAGMENT;
	return cw_parse_l4(skb, (iph.ver_ihl & 0xf) * 4, f);
}

static __always_inline enum cw_parse cw_parse6(struct __sk_buff *skb, struct cw_flow *f)
{
	struct cw_ipv6_hdr ip6h;
	__u32 off = sizeof(ip6h);
	__u8 nexthdr;

	if (CW_SKB_READ(skb, 0, struct cw_ipv6_hdr, &ip6h) < 0 ||
	    (bpf_ntohl(ip6h.ver_tc_flow) >> 28) != 6)
		return CW_PARSE_UNEXPECTED;
	f->family = AF_INET6;
	__builtin_memcpy(f->addr, ip6h.daddr, 16);
	nexthdr = ip6h.nexthdr;

	for (int i = 0; i < CW_IPV6_MAX_EXT_HEADERS; i++) {
		struct {
			__u8 nexthdr;
			__u8 hdrlen;
			__be16 frag_off; /* fragment header only */
		} ext;

		switch (nexthdr) {
		case NEXTHDR_HOP:
		case NEXTHDR_DEST:
		case NEXTHDR_AUTH:
		case NEXTHDR_FRAGMENT:
			break;
		case NEXTHDR_ROUTING:
			return CW_PARSE_UNEXPECTED; /* the real destination is further on */
		default:
			f->proto = nexthdr;
			return cw_parse_l4(skb, off, f);
		}
		if (bpf_skb_load_bytes(skb, off, &ext, sizeof(ext)) < 0)
			return CW_PARSE_UNEXPECTED;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			if (bpf_ntohs(ext.frag_off) & 0xfff8) {
				f->proto = ext.nexthdr;
				return CW_PARSE_FRAGMENT;
			}
			off += 8;
		} else if (nexthdr == NEXTHDR_AUTH) {
			off += ((__u32)ext.hdrlen + 2) * 4;
		} else {
			off += ((__u32)ext.hdrlen + 1) * 8;
		}
		nexthdr = ext.nexthdr;
	}
	return CW_PARSE_UNEXPECTED; /* more extension headers than any sane packet carries */
}

/* A TCP socket the app accepted: the peer's address must be one the app may reach over TCP. */
static __always_inline enum cw_verdict cw_judge_peer(struct cw_ctx *c, const struct cw_flow *f)
{
	const struct cw_dst_val *dst;

	if (c->flags & CW_APP_F_GUARD)
		return CW_VERDICT_DENY_GUARD;
	if (f->family == AF_INET) {
		struct cw_dst4_key key = {};

		key.prefixlen = CW_SCOPE_BITS + 32;
		key.scope = cw_scope(c->gen, c->app);
		__builtin_memcpy(key.addr, f->addr, 4);
		dst = bpf_map_lookup_elem(&cw_dst4, &key);
	} else {
		struct cw_dst6_key key = {};

		key.prefixlen = CW_SCOPE_BITS + 128;
		key.scope = cw_scope(c->gen, c->app);
		__builtin_memcpy(key.addr, f->addr, 16);
		dst = bpf_map_lookup_elem(&cw_dst6, &key);
	}
	return dst && (dst->flags & CW_DST_F_TCP) ? CW_VERDICT_ALLOW_RULE : CW_VERDICT_DENY_NO_RULE;
}

static __always_inline enum cw_verdict cw_judge_packet(struct cw_ctx *c, const struct cw_flow *f,
						       bool passive)
{
	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
		return CW_VERDICT_DENY_PROTOCOL;
	if (passive && f->proto == IPPROTO_TCP)
		return cw_judge_peer(c, f);
	if (f->family == AF_INET) {
		__u32 ip4_be;

		__builtin_memcpy(&ip4_be, f->addr, 4);
		return cw_judge4(c, ip4_be, f->proto, f->port);
	}
	__u32 ip6_be[4];
	__builtin_memcpy(ip6_be, f->addr, 16);
	return cw_judge6(c, ip6_be, f->proto, f->port);
}

/*
 * Whether a TCP packet is judged by its peer's address alone: sent by a listener (its SYN-ACKs:
 * the kernel runs this program with the listener as the socket of a request's packets), or by a
 * socket the kernel reported accepted and the app never connected.
 */
static __always_inline bool cw_is_passive(const struct bpf_sock *sk, const struct cw_sk_state *st)
{
	if (sk->protocol != IPPROTO_TCP)
		return false;
	if (sk->state == BPF_TCP_LISTEN)
		return true;
	return st && (st->flags & (CW_SK_F_PASSIVE | CW_SK_F_ACTIVE)) == CW_SK_F_PASSIVE;
}

/* nonnull: the kernel always passes the packet; clang then keeps only cw_find_app()'s skb path. */
SEC("cgroup_skb/egress")
__attribute__((nonnull)) int cw_skb_egress(struct __sk_buff *skb)
{
	struct cw_flow f = { .hook = CW_HOOK_SKB_EGRESS };
	struct cw_sk_state *st = NULL, copy;
	struct cw_ctx c = {};
	__u32 seq;
	enum cw_verdict v;
	enum cw_parse parsed;
	struct bpf_sock *sk;
	bool pass;

	sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (!sk)
		return SKB_PASS; /* request and time-wait sockets: see above */

	if (skb->protocol == bpf_htons(ETH_P_IP))
		parsed = cw_parse4(skb, &f);
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		parsed = cw_parse6(skb, &f);
	else
		parsed = CW_PARSE_UNEXPECTED;

	if (!cw_active_gen(&c))
		return SKB_PASS;
	st = bpf_sk_storage_get(&cw_sk_state, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	/* A copy, consistent or none: another thread may be writing it (bpf/carwall.h). */
	if (st && !cw_sk_read(st, &copy))
		__builtin_memset(&copy, 0, sizeof(copy));
	/* Fast path: this socket's last verdict, for this policy epoch and destination. */
	if (st && parsed != CW_PARSE_UNEXPECTED &&
	    cw_sk_matches(&copy, c.epoch, &f, parsed == CW_PARSE_FRAGMENT))
		return copy.pass ? SKB_PASS : SKB_DROP;

	/* Connected by a learned name: judged by that name, its expiry does not cut the flow. */
	if (st && (copy.flags & CW_SK_F_BY_NAME) && parsed == CW_PARSE_OK &&
	    cw_addr_eq(copy.name_addr, f.addr)) {
		c.sk_name = true;
		c.name_hash = copy.name_hash;
		c.name_kind = copy.name_kind;
	}
	if (!cw_find_app(&c, skb)) {
		pass = true;
		v = CW_VERDICT_UNMANAGED;
	} else {
		if (parsed == CW_PARSE_OK)
			v = cw_judge_packet(&c, &f, cw_is_passive(sk, st));
		else if (parsed == CW_PARSE_FRAGMENT)
			v = CW_VERDICT_DENY_NO_RULE; /* no verdict to follow: refused */
		else
			v = CW_VERDICT_DENY_FAMILY;
		/* Allowed flows were counted by the socket hooks; the backstop counts refusals. */
		pass = v == CW_VERDICT_ALLOW_RULE || cw_finish(&c, &f, v);
	}
	/* Claimed by another writer meanwhile: not cached, the next packet is judged again. */
	if (st && parsed == CW_PARSE_OK && cw_sk_write_begin(st, &seq)) {
		cw_sk_cache(st, c.epoch, &f, pass);
		cw_sk_write_end(st, seq);
	}
	return pass ? SKB_PASS : SKB_DROP;
}

char LICENSE[] SEC("license") = "GPL";
