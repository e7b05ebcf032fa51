/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every carwall program shares: the policy state, the cgroup -> app map, finding the
 * managed app of a task or of a packet's socket, and the evidence of each decision (per-CPU
 * counters, and an event through the ring buffer for every refused flow, rate limited per app).
 * Each object that includes this defines these maps; the loader makes them all use the same
 * pinned maps.
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

/* The fixed parts of the IPv4 and IPv6 headers, as the programs that read packets load them. */
struct cw_ipv4_hdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__be32 saddr;
	__be32 daddr;
};

struct cw_ipv6_hdr {
	__be32 ver_tc_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

/*
 * A header of a packet (cgroup_skb programs), of type type at offset off, into *to: read in
 * place when it is in the packet's linear data, as IP and transport headers are at these hooks
 * (direct packet access: no helper call); else copied by bpf_skb_load_bytes(). 0 or its error.
 */
#define CW_SKB_READ(skb, off, type, to)                                                            \
	({                                                                                         \
		void *data_ = (void *)(long)(skb)->data;                                           \
		void *end_ = (void *)(long)(skb)->data_end;                                        \
		__u32 off_ = (off);                                                                \
		int r_ = 0;                                                                        \
		if (off_ <= 0xffff && data_ + off_ + sizeof(type) <= end_)                         \
			*(to) = *(type *)(data_ + off_);                                           \
		else                                                                               \
			r_ = bpf_skb_load_bytes((skb), off_, (to), sizeof(type));                  \
		r_;                                                                                \
	})

/* Events per app and second; more are counted as dropped. 0: no limit. Set before load. */
const volatile __u32 cw_event_rate = 10000;

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

#define CW_EVENTS_RING_BYTES (1u << 20)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CW_EVENTS_RING_BYTES);
} cw_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_GENERATIONS * CW_APP_SLOTS);
	__type(key, __u32);
	__type(value, struct cw_app_counters);
} cw_app_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CW_GENERATIONS * CW_MAX_RULES);
	__type(key, __u32);
	__type(value, __u64);
} cw_rule_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CW_APP_SLOTS);
	__type(key, __u32);
	__type(value, struct cw_ratelimit);
} cw_ratelimit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cw_sk_state);
} cw_sk_state SEC(".maps");

/* One decision: the policy generation and epoch, the app once found, and the rule that allowed. */
struct cw_ctx {
	__u64 epoch;
	__u32 gen;
	__u32 app;
	__u32 flags; /* the app's CW_APP_F_* */
	__u32 rule;  /* CW_RULE_NONE until a rule allows */
	__u32 uid;   /* the app's cw_app_val.uid: the key of its learned addresses */
	__u32 gen_flags;    /* the generation's CW_GEN_F_* */
	__u32 consent_deny; /* the generation's purposes switched off (CW_PURPOSE_BIT()) */
	bool cross_border;  /* a cross-border rule allowed, for a purpose not switched off */
	/*
	 * In: a flow admitted by this name (CW_SK_F_BY_NAME, egress): its address is judged by the
	 * name's presence and ports in the policy, not by a learned entry that may have expired.
	 * Out: the name that allowed the flow (by_name).
	 */
	bool sk_name;
	bool by_name;
	__u32 name_kind;
	__u64 name_hash;
};

/* What a decision is about, for the event that reports it. */
struct cw_flow {
	__u8 hook;
	__u8 family;
	__u8 proto;
	__u16 port; /* host byte order */
	__u32 sock_type;
	__u8 addr[16];
	bool from_task; /* taken in the task's context: pid, uid and comm are the sender's */
};

/* The active generation's info; false while no valid policy is loaded (the agent fills the
 * maps before it attaches the programs). Read once per decision: the whole decision is taken
 * on one policy. */
static __always_inline const struct cw_gen_info *cw_active_gen(struct cw_ctx *c)
{
	const struct cw_gen_info *gi;
	struct cw_state *state;
	__u32 zero = 0;

	state = bpf_map_lookup_elem(&cw_state, &zero);
	if (!state)
		return NULL; /* cannot happen: an array always has element 0 */
	c->gen = *(volatile __u32 *)&state->active_gen & 1;
	c->rule = CW_RULE_NONE;
	gi = c->gen ? &state->gen[1] : &state->gen[0];
	if (!(gi->flags & CW_GEN_F_VALID))
		return NULL;
	c->epoch = gi->epoch;
	c->gen_flags = gi->flags;
	c->consent_deny = gi->consent_deny & ~CW_PURPOSE_NONE;
	return gi;
}

static __always_inline bool cw_match_cgroup(struct cw_ctx *c, __u64 cgroup_id)
{
	struct cw_cgroup_key key = {};
	struct cw_app_val *app;

	key.cgroup_id = cgroup_id;
	key.gen = c->gen;
	app = bpf_map_lookup_elem(&cw_cgroups, &key);
	if (!app)
		return false;
	c->app = app->app;
	c->flags = app->flags;
	c->uid = app->uid;
	return true;
}

/*
 * Find the managed app of the calling task (skb NULL), or of the socket that sends skb (its
 * cgroup is the one it was created in): its cgroup, or the nearest ancestor at a level where
 * the active policy has an app cgroup; the deepest match wins. False when unmanaged.
 */
static __always_inline bool cw_find_app(struct cw_ctx *c, struct __sk_buff *skb)
{
	const struct cw_gen_info *gi = cw_active_gen(c);
	__u32 mask;

	if (!gi)
		return false;
	mask = gi->level_mask;
	for (int level = CW_MAX_CGROUP_LEVEL; level >= 0; level--) {
		__u64 id;

		if (!(mask & (1u << level)))
			continue;
		/* One of the two helpers stays in each program, the one its type may call: skb
		 * is NULL in the socket programs and known not to be in the skb one. */
		id = skb ? bpf_skb_ancestor_cgroup_id(skb, level)
			 : bpf_get_current_ancestor_cgroup_id(level);
		if (id && cw_match_cgroup(c, id)) /* 0: the cgroup is above this level */
			return true;
	}
	return false;
}

static __always_inline bool cw_addr_eq(const __u8 *x, const __u8 *y)
{
	/* Word by word: clang's BPF target has no memcmp. */
	const __u32 *a = (const __u32 *)x, *b = (const __u32 *)y;
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/*
 * A read of a socket's seq ordered with the reads around it. x86 never reorders a load with
 * another (TSO): a plain load between compiler barriers does, as the kernel's smp_rmb() is a
 * compiler barrier there. Elsewhere (arm64) an atomic read-modify-write, which every JIT orders
 * fully: BPF has no load-acquire before Linux 6.15. The programs are built per architecture.
 */
static __always_inline __u32 cw_sk_seq(struct cw_sk_state *st)
{
#if defined(__TARGET_ARCH_x86)
	__u32 seq;

	asm volatile("" ::: "memory");
	seq = *(volatile __u32 *)&st->seq;
	asm volatile("" ::: "memory");
	return seq;
#else
	return __sync_fetch_and_add(&st->seq, 0);
#endif
}

/*
 * A consistent copy of a socket's storage into ret (bpf/carwall.h, cw_sk_state), or false when a
 * writer was filling it: the caller then takes it as empty.
 */
static __always_inline bool cw_sk_read(struct cw_sk_state *st, struct cw_sk_state *ret)
{
	__u32 seq = cw_sk_seq(st);

	if (seq & 1)
		return false;
	__builtin_memcpy(ret, st, sizeof(*ret));
	return cw_sk_seq(st) == seq;
}

/*
 * Claim a socket's cached verdict and name for writing: false when another writer holds them
 * (nothing is cached then; the next decision judges again). *ret_seq is for cw_sk_write_end().
 */
static __always_inline bool cw_sk_write_begin(struct cw_sk_state *st, __u32 *ret_seq)
{
	__u32 seq = *(volatile __u32 *)&st->seq;

	if (seq & 1)
		return false;
	*ret_seq = seq + 2;
	return __sync_val_compare_and_swap(&st->seq, seq, seq + 1) == seq;
}

/* The release: an exchange, fully ordered after the writes it publishes. */
static __always_inline void cw_sk_write_end(struct cw_sk_state *st, __u32 seq)
{
	__sync_lock_test_and_set(&st->seq, seq);
}

/*
 * Whether a copy of a socket's storage caches a verdict of this epoch for the flow's destination
 * (any port: a fragment, which has none).
 */
static __always_inline bool cw_sk_matches(const struct cw_sk_state *st, __u64 epoch,
					  const struct cw_flow *f, bool any_port)
{
	if (st->epoch != epoch || st->family != f->family || st->proto != f->proto)
		return false;
	if (!any_port && st->port != f->port)
		return false;
	return cw_addr_eq(st->addr, f->addr);
}

/* Write a verdict into a socket's storage, claimed with cw_sk_write_begin(). */
static __always_inline void cw_sk_cache(struct cw_sk_state *st, __u64 epoch, const struct cw_flow *f,
					bool pass)
{
	st->epoch = epoch;
	st->cgroup_id = 0;
	st->pass = pass;
	st->family = f->family;
	st->proto = f->proto;
	st->port = f->port;
	__builtin_memcpy(st->addr, f->addr, sizeof(st->addr));
}

/*
 * Whether the app may send one more report of its kind this second: refusals (and audited flows)
 * and allowed flows each have a window of their own in the app's cw_ratelimit, so that neither
 * kind takes the other's budget.
 */
static __always_inline bool cw_window_pass(__u64 *start, __u64 *count, __u64 now, __u32 rate)
{
	/* A fixed window; two CPUs may both restart it, which only loosens the limit slightly. */
	if (now - *start > 1000000000ull) {
		*start = now;
		*count = 0;
	}
	return __sync_fetch_and_add(count, 1) < rate;
}

static __always_inline bool cw_ratelimit_pass(__u32 app, __u64 now, bool allowed)
{
	struct cw_ratelimit *rl;

	if (!cw_event_rate)
		return true;
	rl = bpf_map_lookup_elem(&cw_ratelimit, &app);
	if (!rl)
		return false;
	if (allowed)
		return cw_window_pass(&rl->allowed_window_start_ns, &rl->allowed_count, now,
				      cw_event_rate);
	return cw_window_pass(&rl->window_start_ns, &rl->count, now, cw_event_rate);
}

/*
 * Report a flow (count: cw_event.count); false when it could not be sent (over the app's budget
 * for the kind, or the ring buffer full). Reports of allowed flows have their own budget (and
 * cw_seen limits them to one per destination and period), so they never take a refusal's place.
 */
static __always_inline bool cw_emit(const struct cw_ctx *c, const struct cw_flow *f,
				    enum cw_verdict v, bool audit, struct cw_app_counters *cnt,
				    __u32 count)
{
	__u64 now = bpf_ktime_get_boot_ns();
	struct cw_event *e;

	if (!cw_ratelimit_pass(c->app, now, v == CW_VERDICT_ALLOW_RULE)) {
		if (cnt)
			cnt->events_dropped++;
		return false;
	}
	e = bpf_ringbuf_reserve(&cw_events, sizeof(*e), 0);
	if (!e) {
		if (cnt)
			cnt->events_dropped++;
		return false;
	}
	/*
	 * The address first: clang 14's BPF backend dropped the byte stores below when this copy
	 * (of a constant flow, in sock_create) came after them.
	 */
	__builtin_memcpy(e->addr, f->addr, sizeof(e->addr));
	e->boot_ns = now;
	if (f->from_task) {
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		e->cgroup_id = bpf_get_current_cgroup_id();
		e->pid = pid_tgid >> 32;
		e->tid = (__u32)pid_tgid;
		e->uid = (__u32)bpf_get_current_uid_gid();
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	} else {
		e->cgroup_id = 0;
		e->pid = 0;
		e->tid = 0;
		e->uid = 0;
		__builtin_memset(e->comm, 0, sizeof(e->comm));
	}
	e->app = c->app;
	e->rule = c->rule;
	e->port = f->port;
	e->family = f->family;
	e->proto = f->proto;
	e->hook = f->hook;
	e->verdict = v;
	e->gen = (__u8)c->gen;
	e->flags = audit ? CW_EVENT_F_AUDIT : 0;
	e->sock_type = f->sock_type;
	e->count = count;
	bpf_ringbuf_submit(e, 0);
	return true;
}

/*
 * Count a managed app's decision and report a refusal. Returns whether the flow may go: allowed
 * by a rule, or refused in audit mode (reported all the same, as "audited").
 */
static __always_inline bool cw_finish(const struct cw_ctx *c, const struct cw_flow *f,
				      enum cw_verdict v)
{
	__u32 slot = c->gen * CW_APP_SLOTS + c->app;
	struct cw_app_counters *cnt = bpf_map_lookup_elem(&cw_app_stats, &slot);
	bool audit = c->flags & CW_APP_F_AUDIT;

	if (v == CW_VERDICT_ALLOW_RULE) {
		__u32 r = c->gen * CW_MAX_RULES + c->rule;
		__u64 *hits;

		if (cnt)
			cnt->allowed++;
		if (c->rule < CW_MAX_RULES) {
			hits = bpf_map_lookup_elem(&cw_rule_stats, &r);
			if (hits)
				(*hits)++;
		}
		return true;
	}
	if (cnt) {
		if (audit)
			cnt->audited++;
		else
			cnt->refused++;
		if (v == CW_VERDICT_DENY_CONSENT)
			cnt->refused_consent++;
	}
	cw_emit(c, f, v, audit, cnt, 1);
	return audit;
}

#endif /* CW_APP_BPF_H */
