/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Compiling a validated policy into the entries of the BPF maps described in bpf/carwall.h,
 * for one policy generation. Pure computation: no kernel involved, unit-tested directly.
 *
 * For each app, the destinations of all its rules become LPM entries. The value of an entry P
 * names a port set made of every rule of the app whose prefix contains P, so that the longest
 * match for an address carries all the rules that cover the address (overlapping prefixes with
 * different ports are judged right). A port set is a list of disjoint (protocol, port range)
 * segments, each attributed to the first rule in file order that allows it, stored as port
 * prefix blocks in cw_ports. Identical rule combinations share one port set.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "carwall.h"
#include "policy.h"

struct policy_dst4_entry {
	struct cw_dst4_key key;
	struct cw_dst_val val;
};

struct policy_dst6_entry {
	struct cw_dst6_key key;
	struct cw_dst_val val;
};

struct policy_port_entry {
	struct cw_port_key key;
	struct cw_port_val val;
};

/* A cw_hosts entry: the shortcut for one host destination, protocol and port. */
struct policy_host_entry {
	struct cw_host_key key;
	struct cw_port_val val;
};

/* A cw_names entry: one host name (or wildcard) of one app. */
struct policy_name_entry {
	struct cw_name_key key;
	struct cw_name_val val;
};

/* cw_home4/cw_home6 entries: the home region's prefixes (userspace/lib/geo.h). */
struct policy_home4_entry {
	struct cw_home4_key key;
	struct cw_home_val val;
};

struct policy_home6_entry {
	struct cw_home6_key key;
	struct cw_home_val val;
};

struct policy_maps {
	uint32_t gen;
	struct policy_dst4_entry *dst4;
	size_t n_dst4;
	struct policy_dst6_entry *dst6;
	size_t n_dst6;
	struct policy_port_entry *ports;
	size_t n_ports;
	size_t n_portsets;
	/* Copies of what the tries allow for host destinations (bpf/carwall.h, cw_hosts); as
	 * many as fit, the rest is answered by the tries. */
	struct policy_host_entry *hosts;
	size_t n_hosts;
	/* Host names: one entry per (app, name, kind), port set = union of the rules naming it. */
	struct policy_name_entry *names;
	size_t n_names;
	/* Trusted resolvers (cw_resolvers keys, value 0), at most CW_MAX_RESOLVERS. */
	struct cw_resolver_key *resolvers;
	size_t n_resolvers;
	/* DNS tunables for cw_gen_info (the policy's `dns:`, or its defaults). */
	uint32_t ttl_min_s;
	uint32_t ttl_max_s;
	uint32_t grace_s;
	uint32_t learn_quota;
	/*
	 * Data residency: `residency-enforce: home-only` (CW_GEN_F_HOME_ONLY), and the home
	 * region's prefixes, filled by geo_apply_policy() (not by policy_compile()).
	 */
	bool home_only;
	struct policy_home4_entry *home4;
	size_t n_home4;
	struct policy_home6_entry *home6;
	size_t n_home6;
	/*
	 * Driver consent: the purposes switched off (cw_gen_info.consent_deny). Not the
	 * compiler's: 0 from policy_compile(), set by whoever writes the maps (the agent, from its
	 * consent state) or judges with them (tests, explain).
	 */
	uint32_t consent_deny;
};

/* Per-generation capacity: a compiled policy must fit in half of each map. */
#define POLICY_MAPS_MAX_DST4 (CW_MAX_DST4 / CW_GENERATIONS)
#define POLICY_MAPS_MAX_DST6 (CW_MAX_DST6 / CW_GENERATIONS)
#define POLICY_MAPS_MAX_PORTS (CW_MAX_PORTS / CW_GENERATIONS)
#define POLICY_MAPS_MAX_HOSTS (CW_MAX_HOSTS / CW_GENERATIONS)
#define POLICY_MAPS_MAX_NAMES (CW_MAX_NAMES / CW_GENERATIONS)
#define POLICY_MAPS_MAX_HOME4 (CW_MAX_HOME4 / CW_GENERATIONS)
#define POLICY_MAPS_MAX_HOME6 (CW_MAX_HOME6 / CW_GENERATIONS)

/*
 * The compiler's work, bounded so that its memory and time are bounded whatever the policy:
 * (prefix, port range) pairs, where each prefix of an app is paired with every port range of
 * every rule of the app that names it or a prefix containing it (a rule without `ports` counts
 * one range), each time a rule names it. One 65536-prefix set named by 32 rules without ports
 * is 2097152 pairs.
 */
#define POLICY_MAPS_MAX_PAIRS (1u << 21)

/*
 * Compile `p` for generation `gen` (0 or 1). Returns 0 and *ret_maps, or a negative errno:
 * -E2BIG when the result does not fit the maps or the work exceeds POLICY_MAPS_MAX_PAIRS,
 * -ENOMEM. Every bound is checked before the entries it limits are made: the prefixes of each
 * map (each app's inline destinations, each set once per app that names it) and the pairs its
 * rules name directly from the parsed policy, in one pass over it; the pairs prefixes inherit
 * from the prefixes containing them from the app's sorted prefixes, before its port sets are
 * made; port entries one by one, before each is stored. Port sets are fewer than prefixes.
 * On failure `reason` is one line that starts with the policy's path, and with
 * `path:line:column:` when one place of the policy is to blame.
 */
int policy_compile(const struct policy *p, uint32_t gen, struct policy_maps **ret_maps,
		   char *reason, size_t reason_size);

void policy_maps_free(struct policy_maps *m);

/*
 * The verdict the BPF programs give for one flow of app `app`, computed from the compiled
 * entries the way the kernel's LPM tries do (offline: tests, explain). `addr` is 4 or 16 bytes
 * in network order (an IPv4-mapped IPv6 address is judged as IPv4, as in the kernel); `proto`
 * is IPPROTO_TCP or IPPROTO_UDP. Returns 1 allowed (*ret_rule: the deciding global rule
 * index), 0 refused.
 */
int policy_maps_lookup(const struct policy_maps *m, uint32_t app, int family, const uint8_t *addr,
		       uint16_t proto, uint16_t port, uint32_t *ret_rule);

/*
 * The same, with the kernel's verdict: CW_VERDICT_ALLOW_RULE (*ret_rule: the deciding rule),
 * CW_VERDICT_DENY_NO_RULE, or CW_VERDICT_DENY_CONSENT: rules allow the flow but each serves a
 * purpose m->consent_deny switches off (*ret_rule: the first of them). *ret_purposes (when not
 * NULL): the CW_PURPOSE_* bits of the rules that allow it, when some do.
 */
enum cw_verdict policy_maps_judge(const struct policy_maps *m, uint32_t app, int family,
				  const uint8_t *addr, uint16_t proto, uint16_t port,
				  uint32_t *ret_rule, uint32_t *ret_purposes);

/* Whether an entry with these CW_PURPOSE_* bits allows, given m->consent_deny. */
bool policy_maps_purposes_allowed(const struct policy_maps *m, uint32_t purposes);

/*
 * The cw_names entry that the kernel matches for host name `name` (text; case and a final dot
 * do not matter) asked by app `app`: the name itself (CW_NAME_EXACT), else the wildcard of
 * its longest parent suffix, strictly above the name ("*.x" never matches x). That entry
 * carries every rule of the app allowing the name (see policy_compile.c, compile_app_names()).
 * NULL when none matches or `name` is not a host name.
 */
const struct policy_name_entry *policy_maps_match_name(const struct policy_maps *m, uint32_t app,
							const char *name);

/*
 * The verdict for a flow of app `app` to an address learned for host name `name` (offline:
 * explain, tests): 1 allowed (*ret_rule: the deciding rule), 0 refused.
 */
int policy_maps_lookup_name(const struct policy_maps *m, uint32_t app, const char *name,
			    uint16_t proto, uint16_t port, uint32_t *ret_rule);
/* The same with the kernel's verdict, as policy_maps_judge(). */
enum cw_verdict policy_maps_judge_name(const struct policy_maps *m, uint32_t app,
				       const char *name, uint16_t proto, uint16_t port,
				       uint32_t *ret_rule, uint32_t *ret_purposes);

/*
 * The first half of policy_maps_lookup(): the port set the destination tries give `addr` for
 * app `app` (its longest matching prefix; an IPv4-mapped IPv6 address is judged as IPv4).
 * Returns 1 and *ret_portset, or 0 when no prefix of the app contains the address (every flow
 * to it is refused).
 */
int policy_maps_lookup_dst(const struct policy_maps *m, uint32_t app, int family,
			   const uint8_t *addr, uint32_t *ret_portset);

/*
 * The cw_ports entry the kernel matches for (port set, protocol, port): 1 and its value in *ret
 * (the deciding rule and its CW_PORT_F_* flags), or 0 when the port set does not allow it.
 */
int policy_maps_lookup_port(const struct policy_maps *m, uint32_t portset, uint16_t proto,
			    uint16_t port, struct cw_port_val *ret);

/*
 * Data residency, as the kernel's cw_judge_home(): whether home-only (m->home_only) refuses a
 * flow to `addr` (4 or 16 bytes, network order; IPv4-mapped is judged as IPv4) that the entry
 * `val` allows: no cross-border rule allows it for a purpose not switched off (val->xb_purposes)
 * and no home prefix holds the address. The home
 * entries must be sorted (policy_maps_sort_home()) and disjoint, as a database's networks are.
 */
bool policy_maps_region_refuses(const struct policy_maps *m, int family, const uint8_t *addr,
				const struct cw_port_val *val);

/* Sort m's home-region entries by address, for policy_maps_region_refuses(). */
void policy_maps_sort_home(struct policy_maps *m);

/* A run of destination ports allowed in one port set, and the rule that allows them. */
struct policy_port_span {
	uint16_t first; /* inclusive */
	uint16_t last;	/* inclusive */
	uint32_t rule;	/* the deciding global rule index, as cw_port_val.rule */
};

/*
 * The ports of protocol `proto` (IPPROTO_TCP or IPPROTO_UDP) that port set `portset` allows
 * (with m->consent_deny applied: ports whose every rule serves a purpose switched off are left
 * out),
 * read back from its cw_ports entries: ascending, disjoint, neighbours with the same rule
 * merged. Returns 0 with *ret (free() it; NULL when *ret_n is 0), -ENOMEM, or -EUCLEAN when two
 * entries overlap (the compiler never emits that).
 */
int policy_maps_port_spans(const struct policy_maps *m, uint32_t portset, uint16_t proto,
			   struct policy_port_span **ret, size_t *ret_n);

/*
 * An app's stable identity (cw_app_val.uid, the key of its learned addresses): a 32-bit hash
 * of its id, the same whatever the app's place in the policy, never 0 (0 is the guard's).
 * Two ids of one policy giving one uid make policy_compile() refuse the policy (-EINVAL,
 * naming both apps): renaming one app is the fix; nothing is perturbed silently.
 */
uint32_t policy_app_uid(const char *id);
