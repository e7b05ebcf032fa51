/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Judging a destination by the policy of an app. Map lookups only, never a scan of rules: first
 * (app, address, protocol, port) in the cw_hosts hash, the one-lookup answer for a host
 * destination; else the LPM tries of bpf/carwall.h: (app, address) in cw_dst4 or cw_dst6 names a
 * port set, and (port set, protocol, port) in cw_ports names the rule that allows the flow.
 * What that path refuses is allowed still, for an app with host names (CW_APP_F_NAMES), when
 * the destination is one of the policy's trusted resolvers on port 53, or an address the app
 * learned from its own DNS answers (cw_learned, written by bpf/dns.bpf.c) that has not expired,
 * for a name still in the app's policy (cw_names): then the name's port set decides. A flow the
 * egress program knows was connected by a name (CW_SK_F_BY_NAME) is judged by that name alone.
 */
#ifndef CW_DEST_BPF_H
#define CW_DEST_BPF_H

#include <linux/in.h>
#include <bpf/bpf_endian.h>

#include "cw_app.bpf.h"

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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CW_MAX_HOSTS);
	__type(key, struct cw_host_key);
	__type(value, struct cw_port_val);
} cw_hosts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CW_MAX_NAMES);
	__type(key, struct cw_name_key);
	__type(value, struct cw_name_val);
} cw_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CW_GENERATIONS * CW_MAX_RESOLVERS);
	__type(key, struct cw_resolver_key);
	__type(value, __u32);
} cw_resolvers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CW_MAX_LEARNED);
	__type(key, struct cw_learned_key);
	__type(value, struct cw_learned_val);
} cw_learned SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CW_MAX_HOME4);
	__type(key, struct cw_home4_key);
	__type(value, struct cw_home_val);
} cw_home4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, CW_MAX_HOME6);
	__type(key, struct cw_home6_key);
	__type(value, struct cw_home_val);
} cw_home6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_GENERATIONS * CW_APP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} cw_region_stats SEC(".maps");

/* Whether (family, addr) is a trusted resolver of the decision's generation. */
static __always_inline bool cw_is_resolver(const struct cw_ctx *c, __u32 family, const void *addr)
{
	struct cw_resolver_key key = {};

	key.gen = c->gen;
	key.family = family;
	if (family == AF_INET)
		__builtin_memcpy(key.addr, addr, 4);
	else
		__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&cw_resolvers, &key) != NULL;
}

/*
 * What an allowing entry gives once consent is applied: allowed iff one of its rules serves a
 * purpose that is not switched off (a rule without purpose is never switched off); and whether
 * one of its cross-border rules still allows (for cw_judge_home()).
 */
static __always_inline enum cw_verdict cw_consent(struct cw_ctx *c, const struct cw_port_val *val)
{
	c->cross_border = (val->xb_purposes & ~c->consent_deny) != 0;
	return (val->purposes & ~c->consent_deny) ? CW_VERDICT_ALLOW_RULE : CW_VERDICT_DENY_CONSENT;
}

/*
 * The shortcut: a host destination and port of the app, judged by the rules the entry names
 * (the tries' own answer). DENY_NO_RULE when the shortcut does not know it: ask the tries.
 */
static __always_inline enum cw_verdict cw_judge_host(struct cw_ctx *c, __u32 family,
						      const void *addr, __u16 proto, __u16 port)
{
	struct cw_host_key key = {};
	struct cw_port_val *val;

	key.scope = cw_scope(c->gen, c->app);
	key.proto = proto;
	key.port_be = bpf_htons(port);
	key.family = family;
	if (family == AF_INET)
		__builtin_memcpy(key.addr, addr, 4);
	else
		__builtin_memcpy(key.addr, addr, 16);
	val = bpf_map_lookup_elem(&cw_hosts, &key);
	if (!val)
		return CW_VERDICT_DENY_NO_RULE;
	c->rule = val->rule;
	return cw_consent(c, val);
}

static __always_inline enum cw_verdict cw_judge_port(struct cw_ctx *c, const struct cw_dst_val *dst,
						      __u16 proto, __u16 port)
{
	struct cw_port_key key = {};
	struct cw_port_val *val;

	if (!dst)
		return CW_VERDICT_DENY_NO_RULE;
	key.prefixlen = CW_PORT_KEY_FULL_BITS;
	key.scope = cw_scope(c->gen, dst->portset);
	key.proto = proto;
	key.port_be = bpf_htons(port);
	val = bpf_map_lookup_elem(&cw_ports, &key);
	if (!val)
		return CW_VERDICT_DENY_NO_RULE;
	c->rule = val->rule;
	return cw_consent(c, val);
}

/*
 * A destination the hosts/LPM path refused (verdict v), judged again by the app's host names:
 * its trusted resolvers on port 53, then a learned address of a name still in its policy. A
 * refusal by consent (v DENY_CONSENT, c->rule the prefix rule) is judged again too: a name
 * rule serving a purpose still on allows the flow; otherwise v stays.
 */
static __always_inline enum cw_verdict cw_judge_name(struct cw_ctx *c, enum cw_verdict v,
						      __u32 family, const void *addr, __u16 proto,
						      __u16 port)
{
	struct cw_learned_key lkey = {};
	struct cw_name_key nkey = {};
	struct cw_learned_val *learned;
	struct cw_name_val *name;
	struct cw_dst_val dst;
	enum cw_verdict nv;
	__u32 rule = c->rule;

	if ((v != CW_VERDICT_DENY_NO_RULE && v != CW_VERDICT_DENY_CONSENT) ||
	    !(c->flags & CW_APP_F_NAMES))
		return v;
	if (port == 53 && cw_is_resolver(c, family, addr)) {
		c->rule = CW_RULE_NONE;
		return CW_VERDICT_ALLOW_RULE;
	}
	if (!c->sk_name) {
		lkey.app_uid = c->uid;
		lkey.family = family;
		if (family == AF_INET)
			__builtin_memcpy(lkey.addr, addr, 4);
		else
			__builtin_memcpy(lkey.addr, addr, 16);
		learned = bpf_map_lookup_elem(&cw_learned, &lkey);
		if (!learned)
			return v;
		if (learned->expires_ns <= bpf_ktime_get_boot_ns())
			return v; /* a new flow needs a fresh answer */
		c->name_kind = learned->name_kind;
		c->name_hash = learned->name_hash;
	}
	nkey.scope = cw_scope(c->gen, c->app);
	nkey.kind = c->name_kind;
	nkey.hash = c->name_hash;
	name = bpf_map_lookup_elem(&cw_names, &nkey);
	if (!name)
		return v; /* the name left the policy: refused at once */
	dst.portset = name->portset;
	dst.flags = name->flags;
	nv = cw_judge_port(c, &dst, proto, port);
	if (nv == CW_VERDICT_ALLOW_RULE) {
		c->by_name = true;
		return nv;
	}
	if (v == CW_VERDICT_DENY_CONSENT && nv == CW_VERDICT_DENY_NO_RULE) {
		c->rule = rule; /* no name rule for the port: the prefix rule's refusal stands */
		return v;
	}
	return nv;
}

/*
 * Data residency (CW_GEN_F_HOME_ONLY): a flow a rule allowed (v) to an address outside the
 * home region is refused with its own verdict, unless the rule is cross-border. The trusted
 * resolvers' port 53 (no rule: CW_RULE_NONE) is the policy's own choice and is not judged.
 */
static __always_inline enum cw_verdict cw_judge_home(const struct cw_ctx *c, enum cw_verdict v,
						      __u32 family, const void *addr)
{
	__u64 *count;
	__u32 slot;

	if (v != CW_VERDICT_ALLOW_RULE || !(c->gen_flags & CW_GEN_F_HOME_ONLY) ||
	    c->rule == CW_RULE_NONE || c->cross_border)
		return v;
	if (family == AF_INET) {
		struct cw_home4_key key = {};

		key.prefixlen = 32 + 32;
		key.gen = c->gen;
		__builtin_memcpy(key.addr, addr, 4);
		if (bpf_map_lookup_elem(&cw_home4, &key))
			return v;
	} else {
		struct cw_home6_key key = {};

		key.prefixlen = 32 + 128;
		key.gen = c->gen;
		__builtin_memcpy(key.addr, addr, 16);
		if (bpf_map_lookup_elem(&cw_home6, &key))
			return v;
	}
	slot = c->gen * CW_APP_SLOTS + c->app;
	count = bpf_map_lookup_elem(&cw_region_stats, &slot);
	if (count)
		(*count)++;
	return CW_VERDICT_DENY_REGION;
}

/* The app's verdict on an IPv4 destination (network order address, host order port). */
static __always_inline enum cw_verdict cw_judge4(struct cw_ctx *c, __u32 ip4_be, __u16 proto,
						 __u16 port)
{
	struct cw_dst4_key key = {};
	enum cw_verdict v;

	if (c->flags & CW_APP_F_GUARD)
		return CW_VERDICT_DENY_GUARD;
	v = cw_judge_host(c, AF_INET, &ip4_be, proto, port);
	if (v == CW_VERDICT_DENY_NO_RULE) {
		key.prefixlen = CW_SCOPE_BITS + 32;
		key.scope = cw_scope(c->gen, c->app);
		__builtin_memcpy(key.addr, &ip4_be, sizeof(key.addr));
		v = cw_judge_port(c, bpf_map_lookup_elem(&cw_dst4, &key), proto, port);
	}
	if (v != CW_VERDICT_ALLOW_RULE)
		v = cw_judge_name(c, v, AF_INET, &ip4_be, proto, port);
	return cw_judge_home(c, v, AF_INET, &ip4_be);
}

static __always_inline bool cw_is_v4_mapped(const __u32 ip6_be[4])
{
	return ip6_be[0] == 0 && ip6_be[1] == 0 && ip6_be[2] == bpf_htonl(0x0000ffff);
}

/* The app's verdict on an IPv6 destination; an IPv4-mapped one is judged by the IPv4 rules. */
static __always_inline enum cw_verdict cw_judge6(struct cw_ctx *c, const __u32 ip6_be[4],
						 __u16 proto, __u16 port)
{
	struct cw_dst6_key key = {};
	enum cw_verdict v;

	if (cw_is_v4_mapped(ip6_be))
		return cw_judge4(c, ip6_be[3], proto, port);
	if (c->flags & CW_APP_F_GUARD)
		return CW_VERDICT_DENY_GUARD;
	v = cw_judge_host(c, AF_INET6, ip6_be, proto, port);
	if (v == CW_VERDICT_DENY_NO_RULE) {
		key.prefixlen = CW_SCOPE_BITS + 128;
		key.scope = cw_scope(c->gen, c->app);
		__builtin_memcpy(key.addr, ip6_be, sizeof(key.addr));
		v = cw_judge_port(c, bpf_map_lookup_elem(&cw_dst6, &key), proto, port);
	}
	if (v != CW_VERDICT_ALLOW_RULE)
		v = cw_judge_name(c, v, AF_INET6, ip6_be, proto, port);
	return cw_judge_home(c, v, AF_INET6, ip6_be);
}

#endif /* CW_DEST_BPF_H */
