// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwall's DNS learning: cgroup_skb/ingress reads the DNS answers a managed app's own socket
 * receives, before the app can read them (the program runs before the datagram is queued to the
 * socket), and learns the addresses of the app's host names in cw_learned, keyed by the app's
 * uid: the app can never connect before its address is there, and no app learns from another's
 * lookups. The decision path (bpf/cw_dest.bpf.h) reads them.
 *
 * What is learned, all of it checked here, in the kernel, with the agent out of the path:
 * - A UDP datagram, or a TCP segment holding exactly one whole message, from source port 53 of
 *   a trusted resolver of the active generation (cw_resolvers), to the socket of an app with
 *   host names (CW_APP_F_NAMES). IPv4 (not a fragment) or IPv6 without extension headers.
 * - A learnable response (bpf/cw_dns.bpf.h: one A or AAAA question of class IN, rcode 0, not
 *   truncated, well formed) whose question is one of the app's names, compared byte by byte
 *   with the name's canonical wire form after its hash found it: the name itself (kind EXACT),
 *   or a name strictly below x for "*.x" (kind WILDCARD, every parent suffix of the question
 *   but the question itself).
 * - Each A and AAAA record of the answer section owned by the question or by a CNAME chain of
 *   the same message: (app uid, address) -> (boot-clock expiry now + clamp(ttl, ttl_min_s,
 *   ttl_max_s) + grace_s, the matched name, the question's hash). An address the app already
 *   learned is rewritten (the last answer names it). A new address is not learned when the app
 *   holds learn_quota entries already (cw_learn_count) or when cw_learned is full.
 * Everything else teaches nothing, and what came from port 53 is counted per app (struct
 * cw_dns_counters, cw_dns_stats). The program never drops a packet: it only learns, so a bug or a
 * refusal here can never open anything nor cut the app's DNS.
 *
 * Reporting (evidence only, for the flow inventory): every learnable answer of a trusted resolver
 * to the socket of a managed app, with or without names, in audit or enforce mode, whatever its
 * question, is also sent to the agent (struct cw_dns_report, bpf/carwall.h): the question and the
 * A/AAAA addresses of its chain, within the app's budget. Enforce-mode apps are reported too: their
 * refused flows are then named in the inventory and the events, which is what an integrator
 * reviewing them needs; the budget and the ring-buffer check bound what it costs. Nothing in the
 * kernel reads a report: no verdict depends on it.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cw_app.bpf.h"
#include "cw_dest.bpf.h"
#include "cw_dns.bpf.h"

#define SKB_PASS 1

#define CW_DNS_PORT 53
#define CW_NS_PER_S 1000000000ull

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CW_LEARN_COUNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cw_learn_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_GENERATIONS * CW_APP_SLOTS);
	__type(key, __u32);
	__type(value, struct cw_dns_counters);
} cw_dns_stats SEC(".maps");

/* Where a packet comes from, and its transport payload. */
struct cw_dns_pkt {
	__u32 family;
	__u8 saddr[16];
	__u8 proto;
	__u16 sport; /* host byte order */
	__u32 l4_off;
	__u32 l4_len;
	bool learnable_form; /* not a fragment, no IPv6 extension header */
};

/* Source address and port of a packet; false for what cannot come from a DNS server. */
static __always_inline bool cw_dns_pkt_parse(struct __sk_buff *skb, struct cw_dns_pkt *p)
{
	__be16 sport;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct cw_ipv4_hdr iph;
		__u32 hlen, tot;

		if (CW_SKB_READ(skb, 0, struct cw_ipv4_hdr, &iph) < 0 || (iph.ver_ihl >> 4) != 4)
			return false;
		hlen = (iph.ver_ihl & 0xf) * 4;
		tot = bpf_ntohs(iph.tot_len);
		if (hlen < 20 || tot < hlen || tot > skb->len)
			return false;
		p->family = AF_INET;
		__builtin_memcpy(p->saddr, &iph.saddr, 4);
		p->proto = iph.protocol;
		p->l4_off = hlen;
		p->l4_len = tot - hlen;
		/* More fragments, or an offset: not a whole message (a first one still has ports). */
		p->learnable_form = !(bpf_ntohs(iph.frag_off) & 0x3fff);
		if (bpf_ntohs(iph.frag_off) & 0x1fff)
			return false;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct cw_ipv6_hdr ip6h;
		__u32 plen;

		if (CW_SKB_READ(skb, 0, struct cw_ipv6_hdr, &ip6h) < 0 ||
		    (bpf_ntohl(ip6h.ver_tc_flow) >> 28) != 6)
			return false;
		plen = bpf_ntohs(ip6h.payload_len);
		if (plen + sizeof(ip6h) > skb->len)
			return false;
		p->family = AF_INET6;
		__builtin_memcpy(p->saddr, ip6h.saddr, 16);
		p->proto = ip6h.nexthdr;
		p->l4_off = sizeof(ip6h);
		p->l4_len = plen;
		/* Extension headers: the transport is further on; such an answer is not read. */
		p->learnable_form = true;
	} else {
		return false;
	}
	if (p->proto != IPPROTO_UDP && p->proto != IPPROTO_TCP)
		return false;
	if (CW_SKB_READ(skb, p->l4_off, __be16, &sport) < 0)
		return false;
	p->sport = bpf_ntohs(sport);
	return true;
}

enum cw_dns_msg {
	CW_DNS_MSG_FOUND,      /* *ret_off, *ret_len: one whole message */
	CW_DNS_MSG_EMPTY,      /* a TCP segment without data (the handshake, an ACK, the FIN) */
	CW_DNS_MSG_UNREADABLE, /* a fragment, a TCP segment not holding exactly one message */
};

/* The DNS message of a packet from a resolver. */
static __always_inline enum cw_dns_msg cw_dns_pkt_message(struct __sk_buff *skb,
							  const struct cw_dns_pkt *p, __u32 *ret_off,
							  __u32 *ret_len)
{
	__u8 doff;

	if (!p->learnable_form)
		return CW_DNS_MSG_UNREADABLE;
	if (p->proto == IPPROTO_UDP) {
		if (p->l4_len < 8)
			return CW_DNS_MSG_UNREADABLE;
		*ret_off = p->l4_off + 8;
		*ret_len = p->l4_len - 8;
		return CW_DNS_MSG_FOUND;
	}
	/* TCP: the data offset is the high nibble of byte 12 of the header. */
	if (p->l4_len < 20 || bpf_skb_load_bytes(skb, p->l4_off + 12, &doff, 1) < 0)
		return CW_DNS_MSG_UNREADABLE;
	doff = (doff >> 4) * 4;
	if (doff < 20 || doff > p->l4_len)
		return CW_DNS_MSG_UNREADABLE;
	if (doff == p->l4_len)
		return CW_DNS_MSG_EMPTY;
	if (cw_dns_tcp_msg(skb, p->l4_off + doff, p->l4_len - doff, ret_off, ret_len) < 0)
		return CW_DNS_MSG_UNREADABLE;
	return CW_DNS_MSG_FOUND;
}

/* Whether the name at qname[off..len) equals a name entry's wire form (both lowercase). */
static __always_inline bool cw_dns_wire_eq(const struct cw_dns_result *res, __u32 off,
					   const struct cw_name_val *name)
{
	__u32 len = res->qname_len;

	if (off >= len || len > CW_DNS_MAX_NAME || name->wire_len != len - off)
		return false;
	for (__u32 i = 0; i < CW_NAME_WIRE_MAX; i++) {
		if (off + i >= len)
			break;
		if (res->qname[(off + i) & 0xff] != name->wire[i & 0xff])
			return false;
	}
	return true;
}

/* bpf_loop() context of the wildcard search and of learning the answers. */
struct cw_learn_ctx {
	struct cw_dns_result *res;
	struct cw_dns_counters *cnt;
	__u64 now;
	__u64 life_ns; /* grace, added to every clamped TTL */
	__u32 ttl_min, ttl_max, quota;
	__u32 scope; /* cw_scope(gen, app) */
	__u32 uid;
	__u32 kind; /* the matched name */
	__u64 hash;
	bool matched;
};

/*
 * Wildcard step `index`: is the question strictly below the name of its parent suffix i ("*.x"
 * has x)? The longest parent suffix first (i = qlabels - 2, then down to 0, the last label):
 * the most specific wildcard is the one whose entry carries every rule of the wildcards above
 * it (bpf/carwall.h, cw_names). Suffix qlabels - 1 is the question itself: "*.x" never matches x.
 */
static long cw_dns_wildcard_step(__u64 index, void *ctx)
{
	struct cw_learn_ctx *l = ctx;
	struct cw_dns_result *res = l->res;
	struct cw_name_key key = {};
	struct cw_name_val *name;
	__u32 i;

	if (index + 2 > res->qlabels)
		return 1;
	i = ((__u32)res->qlabels - 2 - (__u32)index) & (CW_DNS_MAX_LABELS - 1);
	key.scope = l->scope;
	key.kind = CW_NAME_WILDCARD;
	key.hash = res->qsuffix_hash[i];
	name = bpf_map_lookup_elem(&cw_names, &key);
	if (name && cw_dns_wire_eq(res, res->qsuffix_off[i], name)) {
		l->kind = CW_NAME_WILDCARD;
		l->hash = key.hash;
		l->matched = true;
		return 1;
	}
	return 0;
}

/* Whether the question is one of the app's names; sets the matched name in l. */
static __always_inline bool cw_dns_match_question(struct cw_learn_ctx *l)
{
	struct cw_dns_result *res = l->res;
	struct cw_name_key key = {};
	struct cw_name_val *name;

	key.scope = l->scope;
	key.kind = CW_NAME_EXACT;
	key.hash = res->qname_hash;
	name = bpf_map_lookup_elem(&cw_names, &key);
	if (name && cw_dns_wire_eq(res, 0, name)) {
		l->kind = CW_NAME_EXACT;
		l->hash = key.hash;
		return true;
	}
	l->matched = false;
	bpf_loop(CW_DNS_MAX_LABELS, cw_dns_wildcard_step, l, 0);
	return l->matched;
}

/* Learn answer i, an A or AAAA record of the chain. */
static long cw_dns_learn_step(__u64 index, void *ctx)
{
	struct cw_learn_ctx *l = ctx;
	struct cw_learned_key key = {};
	struct cw_learned_val val = {};
	struct cw_dns_answer *a;
	__u32 i = (__u32)index & (CW_DNS_MAX_ANSWERS - 1);
	__u32 uid = l->uid, ttl;
	__u64 zero = 0, *count;

	if (index >= l->res->n_answers)
		return 1;
	a = &l->res->answers[i];
	if (a->type == CW_DNS_TYPE_A) {
		key.family = AF_INET;
		__builtin_memcpy(key.addr, a->addr, 4);
	} else if (a->type == CW_DNS_TYPE_AAAA) {
		key.family = AF_INET6;
		__builtin_memcpy(key.addr, a->addr, 16);
	} else {
		return 0; /* a CNAME of the chain: its target's records follow */
	}
	key.app_uid = uid;
	ttl = a->ttl < l->ttl_min ? l->ttl_min : a->ttl > l->ttl_max ? l->ttl_max : a->ttl;
	val.expires_ns = l->now + (__u64)ttl * CW_NS_PER_S + l->life_ns;
	val.name_hash = l->hash;
	val.name_kind = l->kind;
	val.qname_hash = l->res->qname_hash;

	/* Known already: a fresh answer rewrites it whole (one atomic replacement). */
	if (bpf_map_update_elem(&cw_learned, &key, &val, BPF_EXIST) == 0) {
		l->cnt->learned++;
		return 0;
	}
	/* A new entry: within the app's quota only. */
	count = bpf_map_lookup_elem(&cw_learn_count, &uid);
	if (!count) {
		bpf_map_update_elem(&cw_learn_count, &uid, &zero, BPF_NOEXIST);
		count = bpf_map_lookup_elem(&cw_learn_count, &uid);
	}
	if (!count) {
		l->cnt->map_full++;
		return 0;
	}
	if (*count >= l->quota) {
		l->cnt->over_quota++;
		return 0;
	}
	if (bpf_map_update_elem(&cw_learned, &key, &val, BPF_NOEXIST) == 0) {
		__sync_fetch_and_add(count, 1);
		l->cnt->learned++;
	} else if (bpf_map_update_elem(&cw_learned, &key, &val, BPF_EXIST) == 0) {
		l->cnt->learned++; /* learned meanwhile on another CPU */
	} else {
		l->cnt->map_full++;
	}
	return 0;
}

/*
 * Report a learnable answer to the agent (struct cw_dns_report): within the app's
 * CW_DNS_REPORT_RATE, and only while the ring buffer is less than half full (the other half is
 * for the refusals of every app); what is not sent is counted in cnt->unreported.
 */
static __always_inline void cw_dns_report(const struct cw_ctx *c, const struct cw_dns_result *res,
					  struct cw_dns_counters *cnt)
{
	struct cw_dns_report *e;
	struct cw_ratelimit *rl;
	__u32 n = 0, app = c->app;
	__u64 now;

	for (__u32 i = 0; i < CW_DNS_MAX_ANSWERS; i++) {
		if (i >= res->n_answers)
			break;
		if (res->answers[i].type == CW_DNS_TYPE_A || res->answers[i].type == CW_DNS_TYPE_AAAA)
			n++;
	}
	if (!n)
		return; /* a chain of CNAMEs only: no address to name */
	now = bpf_ktime_get_boot_ns();
	rl = bpf_map_lookup_elem(&cw_ratelimit, &app);
	if (!rl ||
	    !cw_window_pass(&rl->dns_window_start_ns, &rl->dns_count, now, CW_DNS_REPORT_RATE) ||
	    bpf_ringbuf_query(&cw_events, BPF_RB_AVAIL_DATA) > CW_EVENTS_RING_BYTES / 2) {
		cnt->unreported++;
		return;
	}
	e = bpf_ringbuf_reserve(&cw_events, sizeof(*e), 0);
	if (!e) {
		cnt->unreported++;
		return;
	}
	__builtin_memcpy(e->qname, res->qname, sizeof(e->qname));
	e->boot_ns = now;
	e->app_uid = c->uid;
	e->app = c->app;
	e->gen = (__u8)c->gen;
	e->qname_len = res->qname_len;
	e->pad = 0;
	n = 0;
	for (__u32 i = 0; i < CW_DNS_MAX_ANSWERS; i++) {
		const struct cw_dns_answer *a = &res->answers[i];
		struct cw_dns_report_addr *d = &e->addrs[n & (CW_DNS_REPORT_ADDRS - 1)];

		if (i >= res->n_answers)
			break;
		if (a->type != CW_DNS_TYPE_A && a->type != CW_DNS_TYPE_AAAA)
			continue;
		__builtin_memcpy(d->addr, a->addr, sizeof(d->addr));
		d->ttl = a->ttl;
		d->family = a->type == CW_DNS_TYPE_A ? AF_INET : AF_INET6;
		d->pad[0] = d->pad[1] = d->pad[2] = 0;
		n++;
	}
	/* The slots not filled are zero: a record is never another answer's leftovers. */
	for (__u32 i = 0; i < CW_DNS_REPORT_ADDRS; i++)
		if (i >= n)
			__builtin_memset(&e->addrs[i], 0, sizeof(e->addrs[i]));
	e->n_addrs = (__u8)n;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void cw_dns_learn(struct __sk_buff *skb)
{
	struct cw_learn_ctx l = {};
	struct cw_dns_pkt p = {};
	const struct cw_gen_info *gi;
	struct cw_dns_result *res;
	struct cw_dns_counters *cnt;
	struct cw_state *state;
	struct bpf_sock *sk;
	struct cw_ctx c = {};
	__u32 off = 0, len = 0, slot, zero = 0;
	enum cw_dns_msg msg;

	sk = skb->sk;
	if (sk)
		sk = bpf_sk_fullsock(sk);
	if (!sk)
		return;
	/* Cheap tests first: only packets from port 53 can teach anything. */
	if (!cw_dns_pkt_parse(skb, &p) || p.sport != CW_DNS_PORT)
		return;
	if (!cw_find_app(&c, skb) || (c.flags & CW_APP_F_GUARD))
		return;
	/* The tunables of the generation cw_find_app() took (c.gen), not a newer one. */
	state = bpf_map_lookup_elem(&cw_state, &zero);
	if (!state)
		return;
	gi = c.gen ? &state->gen[1] : &state->gen[0];
	slot = c.gen * CW_APP_SLOTS + c.app;
	cnt = bpf_map_lookup_elem(&cw_dns_stats, &slot);
	if (!cnt)
		return;
	if (!cw_is_resolver(&c, p.family, p.saddr)) {
		cnt->untrusted++;
		return;
	}
	msg = cw_dns_pkt_message(skb, &p, &off, &len);
	if (msg == CW_DNS_MSG_EMPTY)
		return;
	if (msg != CW_DNS_MSG_FOUND) {
		cnt->unlearnable++;
		return;
	}
	res = cw_dns_parse_skb(skb, off, len);
	if (!res) {
		cnt->unlearnable++; /* another parse in progress on this CPU */
		return;
	}
	if (res->status != CW_DNS_OK) {
		cnt->unlearnable++;
		goto out;
	}
	cw_dns_report(&c, res, cnt);
	if (!(c.flags & CW_APP_F_NAMES))
		goto out; /* nothing to learn: no name of the app can match */
	l.res = res;
	l.cnt = cnt;
	l.scope = cw_scope(c.gen, c.app);
	l.uid = c.uid;
	if (!cw_dns_match_question(&l)) {
		cnt->other_name++;
		goto out;
	}
	cnt->skipped += (__u64)res->skipped_owner + res->skipped_type + res->skipped_limit +
			res->skipped_long + res->unread;
	l.now = bpf_ktime_get_boot_ns();
	l.life_ns = (__u64)gi->grace_s * CW_NS_PER_S;
	l.ttl_min = gi->ttl_min_s;
	l.ttl_max = gi->ttl_max_s;
	l.quota = gi->learn_quota;
	bpf_loop(CW_DNS_MAX_ANSWERS, cw_dns_learn_step, &l, 0);
out:
	cw_dns_release();
}

/* nonnull: the kernel always passes the packet; clang then keeps only cw_find_app()'s skb path. */
SEC("cgroup_skb/ingress")
__attribute__((nonnull)) int cw_skb_ingress(struct __sk_buff *skb)
{
	cw_dns_learn(skb);
	return SKB_PASS; /* never drops: it only learns */
}

char LICENSE[] SEC("license") = "GPL";
