/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `carwall explain`: the verdict the kernel gives one flow of one app, offline.
 *
 * The verdict always comes from the compiled map entries (policy_maps_lookup(), the same data
 * the BPF programs get); the policy is read only afterwards, to say which rule and which element
 * of its `to` gave that verdict.
 *
 * DEST grammar (one destination address or host name, never a prefix or a wildcard):
 *
 *     DEST   = HOST [ ":" PORT ] [ "/" PROTO ]
 *     HOST   = IPv4 | "[" IPv6 "]" | IPv6 | NAME  a bare IPv6 address takes no port
 *     NAME   = a host name as policies write them (policy_host_parse()), not a wildcard
 *     PORT   = 0 to 65535, decimal, no leading zero
 *     PROTO  = "tcp" | "udp"
 *
 *     203.0.113.7   203.0.113.7:443   203.0.113.7:443/tcp   203.0.113.7/udp
 *     2001:db8::1   [2001:db8::1]   [2001:db8::1]:443/udp   [::ffff:198.51.100.20]:443
 *     tiles.oem.example:443/tcp
 *
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is judged by the IPv4 rules, as in the kernel.
 * A NAME is judged as the kernel judges an address it learned for that name from a trusted
 * resolver's answer to the app (policy_maps_lookup_name()): the name's rules only. Offline, the
 * addresses are unknown: an address that a prefix rule of the app covers too gets that rule's
 * ports as well, and every other name served from the same address is reached as well.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "policy_compile.h"

/* The longest DEST accepted (a batch line without its newline): the longest host name, a port
 * and a protocol ("NAME:65535/udp"). */
#define EXPLAIN_MAX_DEST_LEN (POLICY_MAX_HOST_LEN + 10)

struct explain_dest {
	bool is_name;				/* a host name: name, not family and addr */
	char name[POLICY_MAX_HOST_LEN + 1];	/* canonical (lowercase, no final dot) */
	int family;	  /* AF_INET or AF_INET6, as written */
	uint8_t addr[16]; /* network byte order; IPv4 in addr[0..3] */
	bool has_port;
	uint16_t port;
	uint16_t proto; /* IPPROTO_TCP, IPPROTO_UDP, or 0 when not given (both) */
};

/* Parse DEST (grammar above). Returns 0, or -EINVAL with a reason in reason[]. */
int explain_dest_parse(const char *s, struct explain_dest *ret, char *reason, size_t reason_size);

/* True for an IPv6 DEST of the form ::ffff:a.b.c.d, which is judged as a.b.c.d. */
bool explain_dest_is_v4_mapped(const struct explain_dest *d);

/* The address as judged ("198.51.100.20" for ::ffff:198.51.100.20). Returns 0 or -ENOSPC. */
int explain_dest_format_addr(const struct explain_dest *d, char *buf, size_t size);

/* "198.51.100.0/24", or the bare address for a /32 or /128. Returns 0 or -ENOSPC. */
int explain_prefix_format(const struct policy_prefix *pfx, char *buf, size_t size);

/* The index of app `id` in the policy (the app number the maps use), or -ENOENT. */
int explain_find_app(const struct policy *p, const char *id, size_t *ret_index);

/* Which rule, and which element of its `to`, covers an address (or a host name). */
struct explain_match {
	const struct policy_rule *rule;
	size_t app_rule;		    /* 0-based position of the rule in its app */
	const struct policy_dest *to;	    /* the element of rule->to that matched */
	const struct policy_set *set;	    /* the set `to` names; NULL for an inline element */
	const struct policy_prefix *prefix; /* the matching prefix: inline, or the set's entry */
	const struct policy_host *host;	    /* instead of prefix, for a name: the matching name or
					       wildcard, inline or the set's entry */
};

/* The verdict for one (address or name, protocol, port). */
struct explain_flow {
	uint16_t proto;
	uint16_t port;
	bool allowed;
	bool address_covered;	    /* some prefix (for a name: some name) of the app covers it */
	/*
	 * Home-only residency (m->home_only): a rule allows the flow, but the address is outside
	 * the home region and no cross-border rule allows it: refused (allowed false; match says
	 * which rule). Never set for a name, whose addresses are unknown offline.
	 */
	bool region_refused;
	/* when allowed, region_refused, or refused by consent (the first rule) */
	struct explain_match match;
	/*
	 * Rules allow it, but each serves a purpose switched off (m->consent_deny): the kernel's
	 * CW_VERDICT_DENY_CONSENT. purposes: the CW_PURPOSE_* bits of those rules.
	 */
	bool refused_by_consent;
	uint32_t purposes;
};

/*
 * Judge one flow of app number `app` to d's address. Returns 0 and *ret, or -EUCLEAN when the
 * maps name a rule that does not cover the address (the maps do not come from this policy).
 */
int explain_flow(const struct policy *p, const struct policy_maps *m, size_t app,
		 const struct explain_dest *d, uint16_t proto, uint16_t port,
		 struct explain_flow *ret);

/*
 * The switches of p that are off (on[i] false for p->consent.switches[i]; on NULL: their
 * defaults) and cover one of `purposes` (CW_PURPOSE_* bits): the ones that refuse a flow
 * explain_flow() says is refused_by_consent. Comma-separated names into buf; returns how many.
 */
int explain_consent_switches(const struct policy *p, uint32_t purposes, const bool *on, char *buf,
			     size_t size);

/* A run of ports allowed by one rule. */
struct explain_span {
	uint16_t first; /* inclusive */
	uint16_t last;	/* inclusive */
	struct explain_match match;
};

/*
 * Every port of `proto` that app number `app` may use towards d's address (d's port is
 * ignored), ascending, one span per run of ports allowed by the same rule (under home-only
 * residency, for an address abroad, only those of cross-border rules). Returns 0 with *ret
 * (free() it; NULL when *ret_n is 0), -ENOMEM, or -EUCLEAN as explain_flow().
 */
int explain_ports(const struct policy *p, const struct policy_maps *m, size_t app,
		  const struct explain_dest *d, uint16_t proto, struct explain_span **ret,
		  size_t *ret_n);

/*
 * The ports of some spans, ascending, neighbours merged whatever their rule: "443, 8443-8450",
 * "any port" for 0-65535, "none" for no span. Returns 0 or -ENOSPC (the text is cut).
 */
int explain_spans_format(const struct explain_span *spans, size_t n, char *buf, size_t size);

/* The number of ports the spans cover (0 to 65536). */
uint32_t explain_spans_count(const struct explain_span *spans, size_t n);

/*
 * The host names and wildcards of app number `app`'s rules but those matching `except` (a
 * canonical name; NULL: none), each once, in file order, comma-separated ("*.maps.oem.example,
 * api.oem.example"): the other names that may share an address with it. Returns how many
 * there are (the text is cut with "..." when buf is too small), -EINVAL or -ENOMEM.
 */
int explain_other_hosts(const struct policy *p, size_t app, const char *except, char *buf,
			size_t size);
