/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * carwall's ABI between the BPF programs and userspace: map keys and values, limits.
 *
 * Included by bpf/ *.bpf.c and by userspace/. Only <linux/types.h> types, explicit padding,
 * one size assertion per struct. Keys are zeroed on both sides before use.
 *
 * How a decision is taken (see bpf/sock_addr.bpf.c):
 *   1. cw_state.active_gen picks the policy generation (A/B copies; a reload fills the inactive
 *      one and flips this index once).
 *   2. The caller's cgroup, or its nearest ancestor at a level named in level_mask, is looked up
 *      in cw_cgroups: found means the socket belongs to a managed app.
 *   3. The destination is looked up in the app's LPM trie (cw_dst4 or cw_dst6). The value names a
 *      port set: the union of the port/protocol rules of every prefix of that app containing the
 *      matched one, so overlapping prefixes with different ports give the right answer.
 *   4. (port set, protocol, port) is looked up in the port LPM trie cw_ports. Port ranges are
 *      stored as prefix blocks. A hit allows the flow, unless every rule behind it serves a
 *      purpose the driver switched off (cw_gen_info.consent_deny: DENY_CONSENT); every miss
 *      denies it.
 *   5. Host names: an address the tries refuse may have been learned from a trusted resolver's
 *      answer to the app (cw_learned); the name it was learned for, still in the app's
 *      cw_names, gives the port set judged as in 4.
 */
#ifndef CARWALL_H
#define CARWALL_H

#include <linux/types.h>

/* Policy generations: a reload writes the one that is not active, then flips. */
#define CW_GENERATIONS 2

/* cgroup levels the programs look at (0 is the cgroup2 root). */
#define CW_MAX_CGROUP_LEVEL 31

/*
 * Capacity of each map, for both generations together. A policy must fit in half of each, which
 * userspace checks before it writes anything.
 */
#define CW_MAX_APPS 1024
#define CW_MAX_CGROUPS (2 * 4096)
#define CW_MAX_DST4 (2 * 131072)
#define CW_MAX_DST6 (2 * 131072)
#define CW_MAX_PORTS (2 * 262144)
#define CW_MAX_HOSTS (2 * 131072)
#define CW_MAX_RULES 131072 /* rules of one policy, all apps together */
#define CW_MAX_NAMES (2 * 8192) /* cw_names: (app, name, kind) entries */
/* Trusted resolvers of ONE policy; cw_resolvers holds CW_GENERATIONS times as many. */
#define CW_MAX_RESOLVERS 8

/* Per-generation slots of the counter arrays: every app index, the guard's included. */
#define CW_APP_SLOTS (CW_MAX_APPS + 1)

/* Bits of the scope field that are matched in full before the address or port bits. */
#define CW_SCOPE_BITS 32
#define CW_SCOPE_GEN_SHIFT 31
#define CW_SCOPE_ID_MASK 0x7fffffffu

/* A scope ties an LPM entry to one generation and one app (dst tries) or port set (cw_ports). */
static inline __u32 cw_scope(__u32 gen, __u32 id)
{
	return (gen << CW_SCOPE_GEN_SHIFT) | (id & CW_SCOPE_ID_MASK);
}

/* cw_state.gen[].flags */
#define CW_GEN_F_VALID (1u << 0) /* a complete, validated policy is in this generation */

struct cw_gen_info {
	__u32 level_mask; /* bit L set: some app cgroup sits at cgroup level L */
	__u32 flags;	  /* CW_GEN_F_* */
	/*
	 * The policy epoch: 1 for the first policy the maps ever held, then one more at every
	 * flip (reload, re-registration of app cgroups, audit -> enforce), continued by an agent
	 * that adopts the pins; never reused, so a verdict cached for one epoch never answers for
	 * a later policy, even one that reuses the same generation slot.
	 */
	__u64 epoch;
	/*
	 * DNS learning (policy `dns:`): a learned address expires clamp(ttl, ttl_min_s, ttl_max_s)
	 * + grace_s seconds after the answer (boot clock); an app holds at most learn_quota
	 * learned entries. Meaningless (0) in a generation without names.
	 */
	__u32 ttl_min_s;
	__u32 ttl_max_s;
	__u32 grace_s;
	__u32 learn_quota;
	/*
	 * Driver consent (policy `consent:`): purposes switched off (CW_PURPOSE_BIT()). A switch
	 * is written like a reload: into the inactive generation, with a new epoch, then a flip.
	 * Never has CW_PURPOSE_NONE: a rule without purpose is never switched off.
	 */
	__u32 consent_deny;
	__u32 pad;
};
_Static_assert(sizeof(struct cw_gen_info) == 40, "cw_gen_info layout");

/*
 * The single element of the mmap-able array cw_state.
 *
 * A generation is rewritten only a full RCU grace period after it stopped being the active one
 * (the agent waits for one after each flip): a program reads active_gen once and takes its whole
 * decision on that generation, and every program runs under rcu_read_lock(), also when it is
 * preempted (CONFIG_PREEMPT, PREEMPT_RT), so no decision ever sees two policies.
 */
struct cw_state {
	__u32 active_gen; /* 0 or 1; written last, with a release store, by the agent */
	__u32 pad;
	struct cw_gen_info gen[CW_GENERATIONS];
};
_Static_assert(sizeof(struct cw_state) == 88, "cw_state layout");

/* cw_cgroups: hash, (cgroup id, generation) -> app. */
struct cw_cgroup_key {
	__u64 cgroup_id;
	__u32 gen;
	__u32 pad;
};
_Static_assert(sizeof(struct cw_cgroup_key) == 16, "cw_cgroup_key layout");

/* cw_app_val.flags */
#define CW_APP_F_GUARD (1u << 0) /* not an app: the guard cgroup, every flow below it refused */
#define CW_APP_F_AUDIT (1u << 1) /* audit mode: refusals are reported, the flows go out */
#define CW_APP_F_NAMES (1u << 2) /* some rule of the app names a host: cw_names has entries */

struct cw_app_val {
	__u32 app;   /* app index in the policy, 0-based; the guard has an index with no rules */
	__u32 flags; /* CW_APP_F_* */
	/*
	 * The app's identity across reloads: policy_app_uid() of its id (userspace), the key of its
	 * learned addresses (cw_learned), so they survive a reload that renumbers apps. Distinct
	 * within a policy (the compiler refuses a policy where two ids give one uid); never 0
	 * for an app (0: the guard).
	 */
	__u32 uid;
	__u32 pad;
};
_Static_assert(sizeof(struct cw_app_val) == 16, "cw_app_val layout");

/* cw_dst4: LPM trie, (scope = gen|app, IPv4 prefix) -> port set. */
struct cw_dst4_key {
	__u32 prefixlen; /* CW_SCOPE_BITS + address prefix length */
	__u32 scope;	 /* cw_scope(gen, app), always matched in full */
	__u8 addr[4];	 /* network byte order */
};
_Static_assert(sizeof(struct cw_dst4_key) == 12, "cw_dst4_key layout");

/* cw_dst6: LPM trie, (scope = gen|app, IPv6 prefix) -> port set. */
struct cw_dst6_key {
	__u32 prefixlen; /* CW_SCOPE_BITS + address prefix length */
	__u32 scope;	 /* cw_scope(gen, app), always matched in full */
	__u8 addr[16];	 /* network byte order */
};
_Static_assert(sizeof(struct cw_dst6_key) == 24, "cw_dst6_key layout");

/* cw_dst_val.flags: some rule of the port set allows the protocol, on some port. */
#define CW_DST_F_TCP (1u << 0)
#define CW_DST_F_UDP (1u << 1)

struct cw_dst_val {
	__u32 portset; /* port set id, 0-based, per generation */
	__u32 flags;   /* CW_DST_F_*: for sockets judged by peer address (accepted TCP) */
};
_Static_assert(sizeof(struct cw_dst_val) == 8, "cw_dst_val layout");

/* cw_ports: LPM trie, (scope = gen|port set, protocol, port prefix) -> deciding rule. */
#define CW_PORT_KEY_FULL_BITS (CW_SCOPE_BITS + 16 + 16)

struct cw_port_key {
	__u32 prefixlen; /* CW_SCOPE_BITS + 16 (protocol) + port prefix length */
	__u32 scope;	 /* cw_scope(gen, port set), always matched in full */
	__u16 proto;	 /* IPPROTO_TCP or IPPROTO_UDP, always matched in full */
	__u16 port_be;	 /* destination port, network byte order (prefix-matched) */
};
_Static_assert(sizeof(struct cw_port_key) == 12, "cw_port_key layout");

/*
 * Purposes (policy `purpose:`) as bits: bit 0 for the rules without a purpose (never switched
 * off), bit i + 1 for the policy's purpose i. An entry allows a flow iff one of the rules
 * allowing it has a purpose that is not switched off: (purposes & ~consent_deny) != 0.
 */
#define CW_MAX_PURPOSES 31
#define CW_PURPOSE_NONE (1u << 0)
#define CW_PURPOSE_BIT(i) (1u << ((i) + 1))

struct cw_port_val {
	/*
	 * Global rule index in the policy, 0-based: the first rule that allows, a cross-border
	 * one first when some rule marked `cross-border:` allows (see CW_GEN_F_HOME_ONLY).
	 */
	__u32 rule;
	__u32 purposes;	   /* CW_PURPOSE_*: of every rule of the port set allowing these ports */
	__u32 xb_purposes; /* the purposes of those rules marked `cross-border:` (0: none is) */
};
_Static_assert(sizeof(struct cw_port_val) == 12, "cw_port_val layout");

/*
 * cw_hosts: hash, (scope = gen|app, family, protocol, port, address) -> deciding rule. The
 * shortcut a decision tries first: for each host destination of an app (a /32 or /128 entry of
 * cw_dst4/cw_dst6), the compiler copies the single ports (and small port blocks) its port set
 * allows, with the rule the two tries give for them. A hit is the tries' own answer in one
 * lookup; a miss (another address, a port in a wide range, a refusal) goes the LPM way.
 */
#define CW_HOST_MAX_BLOCK_PORTS 4 /* port blocks of up to this many ports are copied */

struct cw_host_key {
	__u32 scope;   /* cw_scope(gen, app) */
	__u16 proto;   /* IPPROTO_TCP or IPPROTO_UDP */
	__u16 port_be; /* destination port, network byte order */
	__u32 family;  /* AF_INET or AF_INET6 */
	__u8 addr[16]; /* network byte order; IPv4 in addr[0..3], the rest zero */
};
_Static_assert(sizeof(struct cw_host_key) == 28, "cw_host_key layout");

/* ---- host names ---------------------------------------------------------------------------- */

/*
 * cw_names: hash, (scope = gen|app, kind, name hash) -> the app's rules naming that host name.
 * The hash is the DNS parser's (bpf/cw_dns.h: FNV-1a 64 over lowercase wire labels from the
 * root down); a hit is confirmed by comparing wire forms, never by the hash alone. A name an
 * app's rules give several times (in several rules, or through sets) is one entry whose port
 * set is the union of those rules' ports, as for overlapping prefixes. Like a prefix inherits
 * the rules of the prefixes containing it, an entry inherits the rules of the app's wildcards
 * above it: a name is matched by its most specific entry, the exact one first, then the
 * wildcard of its longest parent suffix (qsuffix_hash[labels - 2] down to [0]), and that entry
 * alone carries every rule of the app that allows the name (a less specific one never allows
 * more).
 */
#define CW_NAME_EXACT 0	   /* the name itself */
#define CW_NAME_WILDCARD 1 /* "*.x": any name strictly below x, not x; the key names x */

struct cw_name_key {
	__u32 scope; /* cw_scope(gen, app) */
	__u32 kind;  /* CW_NAME_EXACT or CW_NAME_WILDCARD */
	__u64 hash;  /* of the name (for "*.x": of x) */
};
_Static_assert(sizeof(struct cw_name_key) == 16, "cw_name_key layout");

#define CW_NAME_WIRE_MAX 256 /* >= CW_DNS_MAX_NAME (bpf/cw_dns.h) */

struct cw_name_val {
	__u32 portset;	/* port set (cw_ports) of the rules naming it */
	__u32 flags;	/* CW_DST_F_*: protocols some of those rules allow */
	__u32 rule;	/* first rule (global index) naming it: evidence */
	__u16 wire_len; /* bytes of wire[] used, root byte included */
	__u16 pad;
	__u8 wire[CW_NAME_WIRE_MAX]; /* canonical (lowercase) wire form of the name (for "*.x": x) */
};
_Static_assert(sizeof(struct cw_name_val) == 272, "cw_name_val layout");

/*
 * cw_resolvers: hash, (generation, family, address) -> flags (__u32, 0 for now). The policy's
 * trusted resolvers (`resolvers:`), on port 53, UDP and TCP: only their answers teach
 * addresses, and apps with names may reach them on port 53 without a rule.
 */
struct cw_resolver_key {
	__u32 gen;
	__u32 family;  /* AF_INET or AF_INET6 */
	__u8 addr[16]; /* network byte order; IPv4 in addr[0..3], the rest zero */
};
_Static_assert(sizeof(struct cw_resolver_key) == 24, "cw_resolver_key layout");

/* ---- data residency: the home region ------------------------------------------------------ */

/*
 * cw_state.gen[].flags: `residency-enforce: home-only`. A flow a rule allows (not a trusted
 * resolver's port 53, which no rule allows) is then allowed only when its destination is in
 * the home region (cw_home4/cw_home6 of the generation) or a cross-border rule allows it for
 * a purpose not switched off (cw_port_val.xb_purposes); else CW_VERDICT_DENY_REGION. A bit of
 * its own, far from CW_GEN_F_VALID, so that other generation flags do not collide with it.
 */
#define CW_GEN_F_HOME_ONLY (1u << 8)

/*
 * cw_home4/cw_home6: LPM tries, (generation, prefix) -> country, the home region's prefixes as
 * the agent read them from its country database (`--geo-db`). In ip-location-db's
 * geo-whois-asn-country (2026): China 6948 IPv4 + 5464 IPv6 prefixes, the US 85480 + 129447,
 * the EU's 27 together 187064 + 225733; each trie holds 524288 per generation.
 */
#define CW_MAX_HOME4 (2 * 524288)
#define CW_MAX_HOME6 (2 * 524288)

struct cw_home4_key {
	__u32 prefixlen; /* 32 (gen) + address prefix length */
	__u32 gen;	 /* always matched in full */
	__u8 addr[4];	 /* network byte order */
};
_Static_assert(sizeof(struct cw_home4_key) == 12, "cw_home4_key layout");

struct cw_home6_key {
	__u32 prefixlen; /* 32 (gen) + address prefix length */
	__u32 gen;
	__u8 addr[16];
};
_Static_assert(sizeof(struct cw_home6_key) == 24, "cw_home6_key layout");

struct cw_home_val {
	__u8 country[2]; /* ISO 3166-1 alpha-2, lower case */
	__u16 pad;
};
_Static_assert(sizeof(struct cw_home_val) == 4, "cw_home_val layout");

/*
 * cw_region_stats: per-CPU array, index gen * CW_APP_SLOTS + app, __u64: the app's flows a rule
 * allowed that home-only refused (CW_VERDICT_DENY_REGION; in audit mode, let through), a part
 * of its refused (or audited) count.
 */

/* ---- evidence: events and counters ---------------------------------------------------------- */

/* Where a decision was taken. */
enum cw_hook {
	CW_HOOK_CONNECT4 = 1,
	CW_HOOK_CONNECT6,
	CW_HOOK_SENDMSG4,
	CW_HOOK_SENDMSG6,
	CW_HOOK_SOCK_CREATE,
	CW_HOOK_SKB_EGRESS,
};

/* Why. */
enum cw_verdict {
	CW_VERDICT_UNMANAGED = 0, /* not an app's socket: allowed, not judged */
	CW_VERDICT_ALLOW_RULE,	  /* a rule of the app allows the flow */
	CW_VERDICT_DENY_NO_RULE,  /* default deny: no rule of the app matches */
	CW_VERDICT_DENY_PROTOCOL, /* not TCP or UDP (or a socket kind the app may not create) */
	CW_VERDICT_DENY_FAMILY,	  /* an address family or form the hook does not expect */
	CW_VERDICT_DENY_GUARD,	  /* below the guard cgroup but no app of the policy */
	CW_VERDICT_DENY_REGION,	  /* a rule allows it, but the address is outside the home
				     region and the rule is not cross-border (home-only) */
	CW_VERDICT_DENY_CONSENT,  /* rules allow it, but each for a purpose switched off */
};

#define CW_RULE_NONE 0xffffffffu

/* cw_event.flags */
#define CW_EVENT_F_AUDIT (1u << 0) /* audit mode: the flow went out; it would have been refused */

/*
 * One refused (or, in audit mode, would-be-refused) flow, or a report of allowed flows (verdict
 * CW_VERDICT_ALLOW_RULE, from the socket-address hooks only: see cw_seen), sent through the
 * ring buffer.
 */
struct cw_event {
	__u64 boot_ns;	 /* bpf_ktime_get_boot_ns() */
	__u64 cgroup_id; /* the task's cgroup */
	__u32 pid;	 /* thread group id */
	__u32 tid;
	__u32 uid;
	__u32 app;  /* app index in generation `gen` */
	__u32 rule; /* CW_RULE_NONE: no rule decided (default deny); DENY_CONSENT: the first rule
		       that would allow */
	__u16 port; /* destination port, host byte order; 0 when there is none */
	__u8 family; /* AF_INET or AF_INET6 (of the destination; IPv4-mapped is AF_INET) */
	__u8 proto;  /* IPPROTO_* */
	__u8 hook;   /* enum cw_hook */
	__u8 verdict; /* enum cw_verdict */
	__u8 gen;
	__u8 flags; /* CW_EVENT_F_* */
	__u8 addr[16]; /* destination, network byte order (IPv4 in addr[0..3]) */
	char comm[16];
	__u32 sock_type; /* SOCK_STREAM, SOCK_DGRAM, SOCK_RAW... (sock_create) */
	__u32 count;	 /* 1; for an allowed flow, its key's cw_seen_val.flows (low 32 bits) */
};
_Static_assert(sizeof(struct cw_event) == 88, "cw_event layout");

/*
 * cw_seen: LRU hash (pinned), (app uid, family, protocol, port, address) -> the allowed flows of
 * that key, for the flow inventory (agent/flows.c). A connect (per TCP connection) or a sendmsg
 * with an address (per run of datagrams of one UDP socket to one destination: a repeat is not
 * counted again; a connected socket is not judged again) that a rule allows adds one to
 * `flows`, a running total; the first flow of a key, and
 * the first one cw_flow_report_s seconds or more after the key's last report, sends an
 * allowed-flow event with that total. So the agent hears of a new destination at once and of a
 * busy one once per period; it reads the totals of every key again before it saves the
 * inventory, and counts the difference to what it had: exact, but for the flows of a key that
 * leaves the LRU map (CW_MAX_SEEN keys, every app together: only when more than four apps hold
 * their whole share, CW_SEEN_PER_APP) between two of its reads. Reports of allowed flows have a
 * budget of their own per app and second (cw_ratelimit): one over it is not sent, and the key's
 * next flow reports again; the agent's next read of the map counts the flows all the same.
 */
#define CW_MAX_SEEN 16384

/*
 * An app's share of cw_seen: a flow to a new destination of an app that holds this many keys
 * (cw_seen_keys) is counted in cw_ratelimit.unlisted instead, so that one app cannot evict the
 * keys (and the uncounted flows) of the others. The kernel counts the keys an app adds; the
 * agent, at each read of the whole map, deletes the keys with no flow since its last read and
 * sets each app's count to the keys the app still holds.
 */
#define CW_SEEN_PER_APP (CW_MAX_SEEN / 4)

struct cw_seen_key {
	__u32 app_uid; /* cw_app_val.uid: the app's identity across reloads */
	__u16 port;    /* host byte order */
	__u8 family;   /* AF_INET or AF_INET6 (IPv4-mapped is AF_INET) */
	__u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 addr[16]; /* network byte order; IPv4 in addr[0..3], the rest zero */
};
_Static_assert(sizeof(struct cw_seen_key) == 24, "cw_seen_key layout");

struct cw_seen_val {
	__u64 reported_ns; /* bpf_ktime_get_coarse_ns() of the key's last report; 0: never */
	__u64 flows;	   /* allowed flows since the key was added */
	__u32 rule;	   /* the rule that allowed the last reported one (global index) */
	__u32 gen;	   /* and the generation it was judged in */
};
_Static_assert(sizeof(struct cw_seen_val) == 24, "cw_seen_val layout");

/* cw_app_stats: per-CPU array, index gen * CW_APP_SLOTS + app. */
struct cw_app_counters {
	__u64 allowed;
	__u64 refused;
	__u64 audited;	     /* allowed in audit mode, reported as refused */
	__u64 events_dropped; /* not reported: rate limit or full ring buffer */
	__u64 refused_consent; /* of refused (or audited): by consent (CW_VERDICT_DENY_CONSENT) */
};
_Static_assert(sizeof(struct cw_app_counters) == 40, "cw_app_counters layout");

/* cw_rule_stats: per-CPU array, index gen * CW_MAX_RULES + rule: flows the rule allowed. */

/*
 * cw_ratelimit: array, index app slot (either generation): fixed one-second windows of
 * cw_event_rate reports each, one for refusals (and audited flows), one for allowed-flow reports,
 * so that neither kind takes the other's budget; one of CW_DNS_REPORT_RATE reports of DNS
 * answers (struct cw_dns_report); and the allowed flows not kept in cw_seen.
 */
struct cw_ratelimit {
	__u64 window_start_ns;
	__u64 count;
	__u64 allowed_window_start_ns;
	__u64 allowed_count;
	__u64 unlisted; /* allowed flows to new destinations once the app held CW_SEEN_PER_APP keys */
	__u64 dns_window_start_ns;
	__u64 dns_count;
};
_Static_assert(sizeof(struct cw_ratelimit) == 56, "cw_ratelimit layout");

/*
 * cw_sk_state: socket storage. The kernel tells how a TCP socket came to be: the connect hooks
 * mark the sockets an app connects itself, the sock_ops program the ones a listener accepted
 * (its passive-open callback). Only a socket marked accepted, and never connected, is judged by
 * its peer's address alone; every other socket (one that predates carwall included) is judged
 * by destination address, port and protocol. The socket-address hooks and the egress program
 * cache their last verdict per socket, valid for one policy epoch and destination.
 */
#define CW_SK_F_ACTIVE (1u << 0)  /* connect() by the app, allowed by a connect hook */
#define CW_SK_F_PASSIVE (1u << 1) /* accepted: BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB */
/*
 * The last connect() was allowed by a learned name (cw_learned): name_* say which, and where it
 * connected. The egress program (and revocation) judges the packets to that address again at
 * every new epoch by the name's presence in the app's policy and its ports, not by the learned
 * entry: a connection admitted while its address was valid is not cut when the TTL runs out.
 */
#define CW_SK_F_BY_NAME (1u << 2)

/*
 * The cached verdict (epoch to addr) and the name (CW_SK_F_BY_NAME and name_*) are written by
 * the socket-address hooks (serialized by the socket's lock) and by the egress program (not
 * serialized: two threads sending on one UDP socket run it at once), so they are guarded by
 * seq, a sequence count: a writer claims it (even to odd, compare-and-swap; a writer that finds
 * it claimed caches nothing) and releases it (odd to even), and a reader trusts a copy only
 * when seq was even and unchanged around it (bpf/cw_app.bpf.h, cw_sk_read()). A torn verdict
 * is never trusted. flags' ACTIVE and PASSIVE bits are set under the socket's lock only.
 */
struct cw_sk_state {
	__u32 seq;	 /* odd while a writer fills the fields below */
	__u32 flags;	 /* CW_SK_F_* */
	__u64 epoch;	 /* policy epoch of the cached verdict; 0: nothing cached */
	/*
	 * Set by a socket-address hook for a flow a rule allowed (not in audit mode, not by a
	 * learned name): the calling task's cgroup, and the app and rule that allowed the flow. A
	 * sendmsg of a task of that cgroup to the same destination in the same epoch is then
	 * counted for that app and rule without judging it again. 0 from the egress program.
	 */
	__u64 cgroup_id;
	__u32 app;
	__u32 rule;
	__u8 pass; /* cached: the packet may go */
	__u8 family; /* AF_INET or AF_INET6 (IPv4-mapped is AF_INET) */
	__u8 proto;
	__u8 pad0;
	__u16 port;
	__u16 pad1;
	__u8 addr[16];
	__u64 name_hash; /* CW_SK_F_BY_NAME: cw_name_key.hash and .kind of the name */
	__u32 name_kind;
	__u32 pad2;
	__u8 name_addr[16]; /* CW_SK_F_BY_NAME: the address connected to (as addr[]) */
};
_Static_assert(sizeof(struct cw_sk_state) == 88, "cw_sk_state layout");

/* ---- addresses learned from DNS answers (bpf/dns.bpf.c) ---------------------------------- */

#define CW_MAX_LEARNED 65536 /* cw_learned entries, every app together */

/*
 * cw_learned: hash (no prealloc, pinned: survives agent restarts and reloads), (app uid,
 * address) -> the name the address was learned for. Written by the ingress program from an
 * answer of a trusted resolver to the app's own question; read by every decision of that app
 * that the hosts/LPM path refuses: a live entry whose name is still in cw_names of the app's
 * generation gives the port set of that name. One address holds the name of its last answer.
 */
struct cw_learned_key {
	__u32 app_uid; /* cw_app_val.uid */
	__u32 family;  /* AF_INET or AF_INET6 (an IPv4-mapped destination is looked up as AF_INET) */
	__u8 addr[16]; /* network byte order; IPv4 in addr[0..3], the rest zero */
};
_Static_assert(sizeof(struct cw_learned_key) == 24, "cw_learned_key layout");

struct cw_learned_val {
	__u64 expires_ns; /* boot clock: now + clamp(ttl, ttl_min_s, ttl_max_s) + grace_s */
	__u64 name_hash;  /* cw_name_key.hash of the app's name that matched the question */
	__u32 name_kind;  /* cw_name_key.kind of it */
	__u32 pad;
	__u64 qname_hash; /* the name asked (for "*.x", the name below x): evidence */
};
_Static_assert(sizeof(struct cw_learned_val) == 32, "cw_learned_val layout");

/*
 * cw_learn_count: hash, app uid -> __u64 entries of cw_learned that the app holds, for its
 * learn_quota. The ingress program adds one per new entry; the agent's sweep, which is the only
 * one to delete entries, counts them again and writes the count (an entry learned during the
 * sweep may be missed until the next one: the quota may be passed by that many).
 */
#define CW_LEARN_COUNT_MAX (2 * CW_MAX_APPS)

/*
 * cw_dns_report: a ring-buffer record (in cw_events, next to struct cw_event; the reader tells
 * them apart by size) for each learnable answer (bpf/cw_dns.bpf.h: status OK, from port 53 of a
 * trusted resolver, to the app's own socket) that a managed app receives, whatever its mode and
 * whether or not its question is one of the app's names: the question and the A/AAAA addresses
 * of its chain. Evidence only: the agent names the app's recorded flows with it (agent/observed.c)
 * and nothing in the kernel reads it. At most CW_DNS_REPORT_RATE per app and second
 * (cw_ratelimit), and none while the ring buffer is half full, so that an app flooding answers
 * never takes the room of any app's refusals; what is not reported is counted
 * (cw_dns_counters.unreported).
 */
#define CW_DNS_REPORT_RATE 64
#define CW_DNS_REPORT_ADDRS 16 /* == CW_DNS_MAX_ANSWERS (bpf/cw_dns.h) */

struct cw_dns_report_addr {
	__u32 ttl;    /* seconds, as sent (above 2^31 - 1: 0) */
	__u8 family;  /* AF_INET or AF_INET6 */
	__u8 pad[3];
	__u8 addr[16]; /* network byte order; IPv4 in addr[0..3], the rest zero */
};
_Static_assert(sizeof(struct cw_dns_report_addr) == 24, "cw_dns_report_addr layout");

struct cw_dns_report {
	__u64 boot_ns;	/* bpf_ktime_get_boot_ns() when the answer arrived */
	__u32 app_uid;	/* cw_app_val.uid of the receiving app */
	__u32 app;	/* its index in generation `gen` */
	__u8 gen;
	__u8 n_addrs;	/* entries of addrs[] */
	__u16 qname_len; /* bytes of qname[] used, root byte included */
	__u32 pad;
	__u8 qname[CW_NAME_WIRE_MAX]; /* the question, canonical (lowercase) wire form */
	struct cw_dns_report_addr addrs[CW_DNS_REPORT_ADDRS];
};
_Static_assert(sizeof(struct cw_dns_report) == 664, "cw_dns_report layout");
_Static_assert(sizeof(struct cw_dns_report) != sizeof(struct cw_event), "told apart by size");

/*
 * cw_dns_stats: per-CPU array, index gen * CW_APP_SLOTS + app: what the app's DNS answers
 * taught, and why the others taught nothing.
 */
struct cw_dns_counters {
	__u64 learned;	   /* addresses learned (or their expiry refreshed) */
	__u64 untrusted;   /* port-53 answers from an address that is not a trusted resolver */
	__u64 unlearnable; /* a trusted resolver's answer not parsed or not learnable: malformed,
			      truncated, an error rcode, a TCP segment not holding exactly one
			      message, an IPv4 fragment, a parse in progress on the CPU */
	__u64 other_name;  /* answers to a question that is none of the app's names */
	__u64 skipped;	   /* answer records not learned: outside the chain, other types, limits */
	__u64 over_quota;  /* addresses not learned: the app holds learn_quota entries already */
	__u64 map_full;	   /* addresses not learned: cw_learned is full */
	__u64 unreported;  /* learnable answers not reported (struct cw_dns_report): over the
			      app's CW_DNS_REPORT_RATE, or the ring buffer half full */
};
_Static_assert(sizeof(struct cw_dns_counters) == 64, "cw_dns_counters layout");

#endif /* CARWALL_H */
