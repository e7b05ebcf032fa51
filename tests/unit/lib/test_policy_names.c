// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of host names in policies (issue 13): the language (userspace/policy.c: names and
 * wildcards in `to` and in sets, `resolvers:`, `dns:`, every error with its location), the
 * compiler's cw_names / cw_resolvers / tunables output (userspace/policy_compile.c: one entry per
 * app, name and kind with the union of its rules' ports, wildcard semantics), the offline
 * lookup explain uses, and the app uid (stable, collisions refused).
 *
 * Policies are parsed under the name "t.yaml": errors read "t.yaml:LINE:COLUMN: reason".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf() */
#endif
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "dns.h"
#include "policy.h"
#include "policy_compile.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_maps *, policy_maps_free)

static struct policy *parse_ok(const char *yaml)
{
	struct policy *p = NULL;
	struct policy_error e;
	int r;

	r = policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e);
	if (r < 0)
		fail_msg("unexpected error %d: %s:%u:%u: %s", r, e.file, e.loc.line, e.loc.column,
			 e.reason);
	assert_non_null(p);
	return p;
}

/* The parse must fail with -EINVAL at line:column, with `reason` in the message. */
static void check_error(const char *yaml, unsigned line, unsigned column, const char *reason,
			const char *file, int at)
{
	struct policy *p = NULL;
	struct policy_error e;
	char msg[600];
	int r;

	r = policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e);
	_assert_int_equal(r, -EINVAL, file, at);
	_assert_true(p == NULL, "policy == NULL", file, at);
	assert_int_equal(policy_error_format(&e, msg, sizeof(msg)), 0);
	if (e.loc.line != line || e.loc.column != column || !strstr(e.reason, reason)) {
		print_error("expected t.yaml:%u:%u: ...%s...\n     got %s\n", line, column, reason,
			    msg);
		_fail(file, at);
	}
}

#define assert_parse_error(yaml, line, column, reason)                                             \
	check_error((yaml), (line), (column), (reason), __FILE__, __LINE__)

static struct policy_maps *compile_ok(const struct policy *p, uint32_t gen)
{
	struct policy_maps *m = NULL;
	char reason[512];
	int r = policy_compile(p, gen, &m, reason, sizeof(reason));

	if (r < 0)
		fail_msg("compile failed (%d): %s", r, reason);
	return m;
}

/* The rule allowing app `app` to reach `name` on TCP `port`, or -1 (refused). */
static long name_verdict(const struct policy_maps *m, uint32_t app, const char *name,
			 uint16_t proto, uint16_t port)
{
	uint32_t rule;

	if (!policy_maps_lookup_name(m, app, name, proto, port, &rule))
		return -1;
	return rule;
}

/* Resolvers line, then a policy: line 1 version, line 2 resolvers. */
#define HEAD "version: 1\nresolvers: [127.0.0.53]\n"

/* ---- the language ---------------------------------------------------------------------------- */

static const char nav_policy[] = HEAD "sets:\n"
				      "  maps: [\"*.Maps.OEM.example\", 203.0.113.0/24]\n"
				      "apps:\n"
				      "  navigation:\n"
				      "    allow:\n"
				      "      - to: [Tiles.oem.example., \"*.maps.oem.example\", "
				      "198.51.100.0/24]\n"
				      "        ports: [443]\n"
				      "      - to: maps\n"
				      "        ports: [80]\n"
				      "        proto: tcp\n"
				      "      - to: a.tiles.maps.oem.example\n"
				      "        ports: 8443\n";

static void test_names_and_wildcards_mix_with_prefixes_in_to_and_sets(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok(nav_policy);
	const struct policy_rule *r0;

	(void)state;
	assert_int_equal(p->n_sets, 1);
	assert_int_equal(p->sets[0].n_prefixes, 1);
	assert_int_equal(p->sets[0].n_hosts, 1);
	assert_true(p->sets[0].hosts[0].wildcard);
	assert_string_equal(p->sets[0].hosts[0].name, "maps.oem.example"); /* folded */
	assert_int_equal(p->sets[0].hosts[0].loc.line, 4);
	assert_int_equal(p->sets[0].hosts[0].loc.column, 10);

	r0 = &p->apps[0].rules[0];
	assert_int_equal(r0->n_to, 3);
	assert_true(r0->to[0].is_host);
	assert_false(r0->to[0].host.wildcard);
	assert_string_equal(r0->to[0].host.name, "tiles.oem.example"); /* final dot dropped */
	assert_true(r0->to[1].is_host);
	assert_true(r0->to[1].host.wildcard);
	assert_string_equal(r0->to[1].host.name, "maps.oem.example");
	assert_false(r0->to[2].is_host);
	assert_false(r0->to[2].is_set);
	assert_int_equal(r0->to[2].prefix.len, 24);
	assert_true(p->apps[0].rules[1].to[0].is_set);
	assert_true(policy_app_has_hosts(p, &p->apps[0]));

	assert_int_equal(p->n_resolvers, 1);
	assert_int_equal(p->resolvers[0].family, AF_INET);
	assert_memory_equal(p->resolvers[0].addr, ((uint8_t[]){ 127, 0, 0, 53 }), 4);
	/* Defaults when `dns:` is absent. */
	assert_int_equal(p->dns.min_ttl_s, 30);
	assert_int_equal(p->dns.max_ttl_s, 3600);
	assert_int_equal(p->dns.grace_s, 60);
	assert_int_equal(p->dns.max_learned_per_app, 1024);
}

static void test_idna_a_labels_and_long_names_are_accepted(void **state)
{
	char yaml[2048], name[300];
	size_t n = 0;

	(void)state;
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok(HEAD "apps:\n  a: {allow: [{to: [xn--bcher-kva.example, 3com.example, "
			  "\"*.example\", a-b.c--d.example]}]}\n");
	assert_string_equal(p->apps[0].rules[0].to[0].host.name, "xn--bcher-kva.example");
	assert_true(p->apps[0].rules[0].to[2].host.wildcard);

	/* 253 characters, 63-byte labels: the longest name. */
	memset(name, 'a', 63);
	name[63] = '.';
	memset(name + 64, 'b', 63);
	name[127] = '.';
	memset(name + 128, 'c', 63);
	name[191] = '.';
	memset(name + 192, 'd', 61);
	name[253] = '\0';
	n = (size_t)snprintf(yaml, sizeof(yaml), HEAD "apps:\n  a: {allow: [{to: %s}]}\n", name);
	assert_true(n < sizeof(yaml));
	_cleanup_(policy_freep) struct policy *q = parse_ok(yaml);
	assert_int_equal(strlen(q->apps[0].rules[0].to[0].host.name), 253);
	/* It compiles, to a 255-byte wire form, and is found again. */
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile_ok(q, 0);
	assert_int_equal(m->n_names, 1);
	assert_int_equal(m->names[0].val.wire_len, 255);
	assert_non_null(policy_maps_match_name(m, 0, name));
}

/* Every malformed host name, at its own line and column. */
static void test_bad_host_names_are_errors_with_locations(void **state)
{
	static const struct {
		const char *to;
		const char *reason;
	} cases[] = {
		{ "\"*\"", "'*' may only be the whole first label" },
		{ "\"a.*.example\"", "'*' may only be the whole first label" },
		{ "\"*x.example\"", "'*' may only be the whole first label" },
		{ "\"*.*.example\"", "'*' may only be the whole first label" },
		{ "ex_ample.com", "other than letters, digits, '-' and '.'" },
		{ "-a.example", "starts or ends with '-'" },
		{ "a-.example", "starts or ends with '-'" },
		{ "a..example", "has an empty label" },
		{ ".a.example", "has an empty label" },
		{ "a.example..", "has an empty label" },
		{ "b\xc3\xbc"
		  "cher.example",
		  "is not ASCII: write an IDNA name in its A-label form" },
		{ "a.123", "ends with an all-numeric label" },
		{ "localhost.", "has a single label" },
	};
	char yaml[512];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(yaml, sizeof(yaml), HEAD "apps:\n  a:\n    allow:\n      - to: [%s]\n",
			 cases[i].to);
		assert_parse_error(yaml, 6, 14, cases[i].reason);
		/* The same in a set. */
		snprintf(yaml, sizeof(yaml), HEAD "sets:\n  s: [192.0.2.1, %s]\napps: {}\n",
			 cases[i].to);
		assert_parse_error(yaml, 4, 18, cases[i].reason);
	}
}

static void test_host_name_limits(void **state)
{
	char yaml[2048], name[400], label[70];
	size_t n = 0;

	(void)state;
	/* A 64-byte label. */
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(yaml, sizeof(yaml), HEAD "apps:\n  a: {allow: [{to: %s.example}]}\n", label);
	assert_parse_error(yaml, 4, 20, "has a label longer than 63 characters");

	/* 254 characters. */
	for (n = 0; n + 10 <= 250;)
		n += (size_t)sprintf(name + n, "abcdefghi.");
	n += (size_t)sprintf(name + n, "abcd"); /* 254 */
	assert_int_equal(strlen(name), 254);
	snprintf(yaml, sizeof(yaml), HEAD "apps:\n  a: {allow: [{to: %s}]}\n", name);
	assert_parse_error(yaml, 4, 20, "is longer than 253 characters");

	/* 33 labels; 32 are fine; a wildcard may have 31 below its "*". */
	n = 0;
	for (int i = 0; i < 32; i++)
		n += (size_t)sprintf(name + n, "a.");
	sprintf(name + n, "example"); /* 33 labels */
	snprintf(yaml, sizeof(yaml), HEAD "apps:\n  a: {allow: [{to: %s}]}\n", name);
	assert_parse_error(yaml, 4, 20, "has more than 32 labels");
	_cleanup_(policy_freep) struct policy *p = NULL;
	snprintf(yaml, sizeof(yaml), HEAD "apps:\n  a: {allow: [{to: %s}]}\n", name + 2);
	p = parse_ok(yaml); /* 32 labels */
	snprintf(yaml, sizeof(yaml), HEAD "apps:\n  a: {allow: [{to: \"*.%s\"}]}\n", name + 2);
	assert_parse_error(yaml, 4, 20, "has more than 31 labels");
	snprintf(yaml, sizeof(yaml), HEAD "apps:\n  a: {allow: [{to: \"*.%s\"}]}\n", name + 4);
	_cleanup_(policy_freep) struct policy *q = parse_ok(yaml);
	assert_true(q->apps[0].rules[0].to[0].host.wildcard);
}

static void test_set_names_with_a_dot_are_refused(void **state)
{
	(void)state;
	assert_parse_error(HEAD "sets:\n  oem.backend: [192.0.2.1]\napps: {}\n", 4, 3,
			   "a '.' makes it read as a host name");
	/* Without a dot, an unknown name is still a set reference. */
	assert_parse_error(HEAD "apps:\n  a: {allow: [{to: backend}]}\n", 4, 20,
			   "unknown set 'backend'");
}

static void test_host_names_without_resolvers_are_an_error(void **state)
{
	(void)state;
	/* At the first host name of the file, in a set or in a rule. */
	assert_parse_error("version: 1\n"
			   "apps:\n"
			   "  a: {allow: [{to: [192.0.2.1, tiles.oem.example]}]}\n"
			   "sets:\n"
			   "  s: [\"*.oem.example\"]\n",
			   3, 32, "host names need trusted resolvers");
	assert_parse_error("version: 1\n"
			   "sets:\n"
			   "  s: [\"*.oem.example\"]\n"
			   "resolvers: []\n"
			   "apps:\n"
			   "  a: {allow: [{to: tiles.oem.example}]}\n",
			   3, 7, "host names need trusted resolvers");
	/* No host name: no resolver needed. */
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok("version: 1\napps:\n  a: {allow: [{to: 192.0.2.1}]}\n");
	assert_int_equal(p->n_resolvers, 0);
	assert_false(policy_app_has_hosts(p, &p->apps[0]));
}

static void test_resolvers_are_addresses(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nresolvers: [127.0.0.0/8]\napps: {}\n", 2, 13,
			   "a resolver is one address, not a prefix");
	assert_parse_error("version: 1\nresolvers: [dns.example]\napps: {}\n", 2, 13,
			   "is not an IP address: resolvers are written as addresses");
	assert_parse_error("version: 1\nresolvers: [127.0.0.53, 127.0.0.1, 127.0.0.53]\napps: {}\n",
			   2, 36, "duplicate resolver '127.0.0.53' (first at line 2, column 13)");
	assert_parse_error("version: 1\nresolvers: [\"::\"]\napps: {}\n", 2, 13,
			   "is the unspecified address");
	assert_parse_error("version: 1\nresolvers: [300.1.1.1]\napps: {}\n", 2, 13,
			   "is not a valid IPv4 address");
	assert_parse_error("version: 1\nresolvers: {a: 1}\napps: {}\n", 2, 12,
			   "'resolvers' must be a sequence or a string");
	assert_parse_error("version: 1\nresolvers: [127.0.0.1, 127.0.0.2, 127.0.0.3, 127.0.0.4, "
			   "127.0.0.5, 127.0.0.6, 127.0.0.7, 127.0.0.8, 127.0.0.9]\napps: {}\n",
			   2, 101, "too many resolvers: the limit is 8");

	/* One string; an IPv4-mapped address is the IPv4 one (the kernel sees IPv4 packets). */
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok("version: 1\nresolvers: \"::ffff:127.0.0.53\"\napps: {}\n");
	assert_int_equal(p->n_resolvers, 1);
	assert_int_equal(p->resolvers[0].family, AF_INET);
	assert_memory_equal(p->resolvers[0].addr, ((uint8_t[]){ 127, 0, 0, 53, 0, 0 }), 6);
	_cleanup_(policy_freep) struct policy *q =
	    parse_ok("version: 1\nresolvers: [\"::1\", 127.0.0.1]\napps: {}\n");
	assert_int_equal(q->n_resolvers, 2);
	assert_int_equal(q->resolvers[0].family, AF_INET6);
}

static void test_dns_tunables(void **state)
{
	(void)state;
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok("version: 1\ndns: {min-ttl: 0, max-ttl: 86400, grace: 3600, "
		     "max-learned-per-app: 65536}\napps: {}\n");
	assert_int_equal(p->dns.min_ttl_s, 0);
	assert_int_equal(p->dns.max_ttl_s, 86400);
	assert_int_equal(p->dns.grace_s, 3600);
	assert_int_equal(p->dns.max_learned_per_app, 65536);
	_cleanup_(policy_freep) struct policy *q =
	    parse_ok("version: 1\ndns: {grace: 5}\napps: {}\n");
	assert_int_equal(q->dns.min_ttl_s, 30); /* the others keep their defaults */
	assert_int_equal(q->dns.grace_s, 5);

	assert_parse_error("version: 1\ndns: {min-ttl: 600, max-ttl: 60}\napps: {}\n", 2, 30,
			   "'dns.max-ttl' (60) is below 'dns.min-ttl' (600)");
	assert_parse_error("version: 1\ndns: {min-ttl: 7200}\napps: {}\n", 2, 6,
			   "'dns.max-ttl' (3600) is below 'dns.min-ttl' (7200)");
	assert_parse_error("version: 1\ndns: {max-ttl: 604801}\napps: {}\n", 2, 16,
			   "'dns.max-ttl' 604801 is out of range (0-604800)");
	assert_parse_error("version: 1\ndns: {grace: 3601}\napps: {}\n", 2, 14,
			   "'dns.grace' 3601 is out of range (0-3600)");
	assert_parse_error("version: 1\ndns: {max-learned-per-app: 0}\napps: {}\n", 2, 28,
			   "'dns.max-learned-per-app' 0 is out of range (1-65536)");
	assert_parse_error("version: 1\ndns: {max-learned-per-app: 99999999999999999999}\n"
			   "apps: {}\n",
			   2, 28, "is out of range (1-65536)");
	assert_parse_error("version: 1\ndns: {grace: 060}\napps: {}\n", 2, 14,
			   "'dns.grace' must be an integer without leading zeros");
	assert_parse_error("version: 1\ndns: {grace: \"60\"}\napps: {}\n", 2, 14,
			   "'dns.grace' must be an integer, not a quoted string");
	assert_parse_error("version: 1\ndns: {ttl: 60}\napps: {}\n", 2, 7,
			   "unknown key 'ttl' (expected min-ttl, max-ttl, grace, "
			   "max-learned-per-app)");
	assert_parse_error("version: 1\ndns: {grace: 1, grace: 2}\napps: {}\n", 2, 17,
			   "duplicate key 'grace'");
	assert_parse_error("version: 1\ndns: [1]\napps: {}\n", 2, 6,
			   "'dns' must be a mapping");
}

/* ---- the compiler ---------------------------------------------------------------------------- */

static const struct policy_name_entry *entry_of(const struct policy_maps *m, uint32_t app,
						const char *name, uint32_t kind)
{
	struct dns_name n;

	assert_int_equal(dns_name_from_text(name, &n), 0);
	for (size_t i = 0; i < m->n_names; i++)
		if (m->names[i].key.scope == cw_scope(m->gen, app) &&
		    m->names[i].key.kind == kind && m->names[i].key.hash == n.hash)
			return &m->names[i];
	return NULL;
}

static void test_name_entries_carry_scope_kind_hash_and_wire(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok(nav_policy);
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile_ok(p, 1);
	const struct policy_name_entry *e;
	struct policy_name_entry zero;
	struct dns_name n;

	(void)state;
	/* tiles.oem.example, *.maps.oem.example (twice: inline and through the set: one entry),
	 * a.tiles.maps.oem.example. */
	assert_int_equal(m->n_names, 3);
	e = entry_of(m, 0, "tiles.oem.example", CW_NAME_EXACT);
	assert_non_null(e);
	assert_int_equal(e->key.scope, cw_scope(1, 0));
	assert_int_equal(dns_name_from_text("TILES.oem.example.", &n), 0);
	assert_true(e->key.hash == n.hash);
	assert_int_equal(e->val.wire_len, n.wire_len);
	assert_memory_equal(e->val.wire, "\x05tiles\x03oem\x07" "example\x00", 19);
	assert_int_equal(e->val.rule, 0);
	assert_int_equal(e->val.flags, CW_DST_F_TCP | CW_DST_F_UDP);
	/* Padding and the unused wire bytes are zero: the value is copied to the map whole. */
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(e->val.pad, 0);
	assert_memory_equal(e->val.wire + e->val.wire_len, zero.val.wire,
			    sizeof(e->val.wire) - e->val.wire_len);

	/* A wildcard's key names its base: "*.maps.oem.example" is keyed by maps.oem.example. */
	e = entry_of(m, 0, "maps.oem.example", CW_NAME_WILDCARD);
	assert_non_null(e);
	assert_memory_equal(e->val.wire, "\x04maps\x03oem\x07" "example\x00", 18);
	assert_null(entry_of(m, 0, "maps.oem.example", CW_NAME_EXACT));

	/* Resolvers and tunables for this generation. */
	assert_int_equal(m->n_resolvers, 1);
	assert_int_equal(m->resolvers[0].gen, 1);
	assert_int_equal(m->resolvers[0].family, AF_INET);
	assert_memory_equal(m->resolvers[0].addr,
			    ((uint8_t[16]){ 127, 0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }),
			    16);
	assert_int_equal(m->ttl_min_s, 30);
	assert_int_equal(m->ttl_max_s, 3600);
	assert_int_equal(m->grace_s, 60);
	assert_int_equal(m->learn_quota, 1024);
}

/* A name in several rules is one entry whose port set is the union, first rule deciding. */
static void test_name_in_several_rules_is_one_entry_with_the_union_of_ports(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok(HEAD "sets:\n  s: [tiles.oem.example]\n"
			  "apps:\n"
			  "  a:\n"
			  "    allow:\n"
			  "      - {to: tiles.oem.example, ports: [443], proto: tcp}\n"
			  "      - {to: [s, 192.0.2.1], ports: [8000-8010], proto: udp}\n"
			  "      - {to: TILES.oem.example, ports: [443, 9000]}\n");
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile_ok(p, 0);

	(void)state;
	assert_int_equal(m->n_names, 1);
	assert_int_equal(m->names[0].val.rule, 0);
	assert_int_equal(m->names[0].val.flags, CW_DST_F_TCP | CW_DST_F_UDP);
	assert_int_equal(name_verdict(m, 0, "tiles.oem.example", IPPROTO_TCP, 443), 0);
	assert_int_equal(name_verdict(m, 0, "tiles.oem.example", IPPROTO_UDP, 443), 2);
	assert_int_equal(name_verdict(m, 0, "tiles.oem.example", IPPROTO_UDP, 8005), 1);
	assert_int_equal(name_verdict(m, 0, "tiles.oem.example", IPPROTO_TCP, 8005), -1);
	assert_int_equal(name_verdict(m, 0, "tiles.oem.example", IPPROTO_TCP, 9000), 2);
	assert_int_equal(name_verdict(m, 0, "Tiles.OEM.example.", IPPROTO_TCP, 9000), 2);
	assert_int_equal(name_verdict(m, 0, "tiles.oem.example", IPPROTO_TCP, 80), -1);
	assert_int_equal(name_verdict(m, 0, "other.oem.example", IPPROTO_TCP, 443), -1);
}

/* "*.x" matches names strictly below x, not x; an exact name or a deeper wildcard inherits the
 * rules of the wildcards above it, as a prefix inherits those of the prefixes containing it. */
static void test_wildcards_match_strictly_below_and_pass_their_rules_down(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok(nav_policy);
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile_ok(p, 0);
	const struct policy_name_entry *e;

	(void)state;
	/* maps.oem.example itself: no rule names it. */
	assert_null(policy_maps_match_name(m, 0, "maps.oem.example"));
	assert_int_equal(name_verdict(m, 0, "maps.oem.example", IPPROTO_TCP, 443), -1);
	assert_null(policy_maps_match_name(m, 0, "xmaps.oem.example"));
	assert_null(policy_maps_match_name(m, 0, "oem.example"));
	/* One and two labels below. */
	e = policy_maps_match_name(m, 0, "eu.maps.oem.example");
	assert_non_null(e);
	assert_int_equal(e->key.kind, CW_NAME_WILDCARD);
	assert_int_equal(name_verdict(m, 0, "eu.maps.oem.example", IPPROTO_TCP, 443), 0);
	assert_int_equal(name_verdict(m, 0, "a.b.maps.oem.example", IPPROTO_TCP, 80), 1);
	assert_int_equal(name_verdict(m, 0, "a.b.maps.oem.example", IPPROTO_UDP, 80), -1);
	assert_int_equal(name_verdict(m, 0, "a.b.maps.oem.example", IPPROTO_TCP, 8443), -1);
	/* a.tiles.maps.oem.example: its own rule (8443) and the wildcard's (443, 80/tcp). */
	e = policy_maps_match_name(m, 0, "a.tiles.maps.oem.example");
	assert_non_null(e);
	assert_int_equal(e->key.kind, CW_NAME_EXACT);
	assert_int_equal(name_verdict(m, 0, "a.tiles.maps.oem.example", IPPROTO_TCP, 8443), 2);
	assert_int_equal(name_verdict(m, 0, "a.tiles.maps.oem.example", IPPROTO_TCP, 443), 0);
	assert_int_equal(name_verdict(m, 0, "a.tiles.maps.oem.example", IPPROTO_TCP, 80), 1);
	/* Not a name at all. */
	assert_null(policy_maps_match_name(m, 0, "bad..name"));
}

static void test_nested_wildcards_take_the_longest_suffix_with_every_rule(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok(HEAD "apps:\n"
			  "  a:\n"
			  "    allow:\n"
			  "      - {to: \"*.example\", ports: [80]}\n"
			  "      - {to: \"*.cdn.example\", ports: [443]}\n"
			  "      - {to: cdn.example, ports: [22]}\n");
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile_ok(p, 0);
	const struct policy_name_entry *e;

	(void)state;
	assert_int_equal(m->n_names, 3);
	e = policy_maps_match_name(m, 0, "x.cdn.example");
	assert_non_null(e);
	assert_int_equal(e->key.kind, CW_NAME_WILDCARD);
	assert_int_equal(e->val.wire_len, 13); /* cdn.example */
	assert_int_equal(name_verdict(m, 0, "x.cdn.example", IPPROTO_TCP, 443), 1);
	assert_int_equal(name_verdict(m, 0, "x.cdn.example", IPPROTO_TCP, 80), 0);
	assert_int_equal(name_verdict(m, 0, "x.cdn.example", IPPROTO_TCP, 22), -1);
	/* cdn.example: its exact rule and *.example's, not *.cdn.example's. */
	assert_int_equal(name_verdict(m, 0, "cdn.example", IPPROTO_TCP, 22), 2);
	assert_int_equal(name_verdict(m, 0, "cdn.example", IPPROTO_TCP, 80), 0);
	assert_int_equal(name_verdict(m, 0, "cdn.example", IPPROTO_TCP, 443), -1);
	/* example itself: nothing. */
	assert_int_equal(name_verdict(m, 0, "example", IPPROTO_TCP, 80), -1);
	assert_int_equal(name_verdict(m, 0, "other.example", IPPROTO_TCP, 80), 0);
}

static void test_names_are_per_app(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok(HEAD "sets:\n  s: [tiles.oem.example]\n"
			  "apps:\n"
			  "  a: {allow: [{to: tiles.oem.example, ports: [443]}]}\n"
			  "  b: {allow: [{to: 192.0.2.1}]}\n"
			  "  c: {allow: [{to: s, ports: [80]}]}\n");
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile_ok(p, 0);

	(void)state;
	assert_int_equal(m->n_names, 2);
	assert_int_equal(name_verdict(m, 0, "tiles.oem.example", IPPROTO_TCP, 443), 0);
	assert_int_equal(name_verdict(m, 1, "tiles.oem.example", IPPROTO_TCP, 443), -1);
	assert_int_equal(name_verdict(m, 2, "tiles.oem.example", IPPROTO_TCP, 443), -1);
	assert_int_equal(name_verdict(m, 2, "tiles.oem.example", IPPROTO_TCP, 80), 2);
	assert_true(policy_app_has_hosts(p, &p->apps[2]));
	assert_false(policy_app_has_hosts(p, &p->apps[1]));
	/* Names add no prefix: app b's only destination is its /32. */
	assert_int_equal(m->n_dst4, 1);
	assert_int_equal(m->n_dst6, 0);
}

/* A rule list shared by a prefix and a name is one port set. */
static void test_names_share_port_sets_with_prefixes(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok(HEAD "apps:\n"
			  "  a: {allow: [{to: [192.0.2.1, tiles.oem.example], ports: 443}]}\n");
	_cleanup_(policy_maps_freep) struct policy_maps *m = compile_ok(p, 0);
	uint32_t portset;

	(void)state;
	assert_int_equal(m->n_portsets, 1);
	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, (uint8_t[]){ 192, 0, 2, 1 },
						&portset),
			 1);
	assert_int_equal(m->names[0].val.portset, portset);
}

static void test_names_capacity_is_checked_before_expansion(void **state)
{
	const size_t n = POLICY_MAPS_MAX_NAMES + 1;
	_cleanup_free_ char *yaml = NULL;
	struct policy_maps *m = NULL;
	char reason[512];
	size_t len = 0, cap = 64 + n * 32;

	(void)state;
	yaml = malloc(cap);
	assert_non_null(yaml);
	len += (size_t)snprintf(yaml + len, cap - len, HEAD "sets:\n  many:\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(yaml + len, cap - len, "    - h%zu.oem.example\n", i);
	len += (size_t)snprintf(yaml + len, cap - len, "apps:\n  a: {allow: [{to: many}]}\n");
	assert_true(len < cap);
	_cleanup_(policy_freep) struct policy *p = parse_ok(yaml);
	assert_int_equal(policy_compile(p, 0, &m, reason, sizeof(reason)), -E2BIG);
	assert_null(m);
	assert_non_null(strstr(reason, "t.yaml:8199:20: app 'a': with set 'many' (0 prefixes, "
					"8193 hosts), the policy names more than 8192 hosts"));

	/* The same set named by two apps counts twice (one entry per app). */
	_cleanup_free_ char *half = NULL;
	cap = 64 + n * 32;
	half = malloc(cap);
	assert_non_null(half);
	len = (size_t)snprintf(half, cap, HEAD "sets:\n  many:\n");
	for (size_t i = 0; i < n / 2 + 1; i++)
		len += (size_t)snprintf(half + len, cap - len, "    - h%zu.oem.example\n", i);
	len += (size_t)snprintf(half + len, cap - len,
				"apps:\n  a: {allow: [{to: many}]}\n  b: {allow: [{to: many}]}\n");
	_cleanup_(policy_freep) struct policy *q = parse_ok(half);
	assert_int_equal(policy_compile(q, 0, &m, reason, sizeof(reason)), -E2BIG);
	assert_non_null(strstr(reason, "app 'b': with set 'many'"));
	/* Under the limit: fits. */
	_cleanup_(policy_maps_freep) struct policy_maps *ok = NULL;
	len = (size_t)snprintf(half, cap, HEAD "sets:\n  many:\n");
	for (size_t i = 0; i < POLICY_MAPS_MAX_NAMES; i++)
		len += (size_t)snprintf(half + len, cap - len, "    - h%zu.oem.example\n", i);
	len += (size_t)snprintf(half + len, cap - len, "apps:\n  a: {allow: [{to: many}]}\n");
	_cleanup_(policy_freep) struct policy *r = parse_ok(half);
	ok = compile_ok(r, 0);
	assert_int_equal(ok->n_names, POLICY_MAPS_MAX_NAMES);
}

/* ---- the app uid ----------------------------------------------------------------------------- */

static void test_app_uid_depends_on_the_id_only(void **state)
{
	(void)state;
	assert_int_equal(policy_app_uid("navigation"), policy_app_uid("navigation"));
	assert_int_not_equal(policy_app_uid("navigation"), policy_app_uid("mediaplayer"));
	assert_int_not_equal(policy_app_uid("navigation"), 0);
	/* FNV-1a 64 of the id, folded: a fixed value, the same on every build and host. */
	assert_int_equal(policy_app_uid(""), (uint32_t)(0xcbf29ce484222325ull ^
							 (0xcbf29ce484222325ull >> 32)));

	/* Reordering the apps of a policy keeps each app's uid. */
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok("version: 1\napps: {a: {allow: []}, b: {allow: []}}\n");
	_cleanup_(policy_freep) struct policy *q =
	    parse_ok("version: 1\napps: {b: {allow: []}, a: {allow: []}}\n");
	assert_int_equal(policy_app_uid(p->apps[0].id), policy_app_uid(q->apps[1].id));
}

static void test_app_uid_collision_is_refused(void **state)
{
	/* Two ids with one uid (found by a search over "app-N"). */
	static const char yaml[] = "version: 1\n"
				   "apps:\n"
				   "  app-183202: {allow: []}\n"
				   "  other: {allow: []}\n"
				   "  app-223199: {allow: []}\n";
	_cleanup_(policy_freep) struct policy *p = parse_ok(yaml);
	struct policy_maps *m = NULL;
	char reason[512];

	(void)state;
	assert_int_equal(policy_app_uid("app-183202"), policy_app_uid("app-223199"));
	assert_int_equal(policy_compile(p, 0, &m, reason, sizeof(reason)), -EINVAL);
	assert_null(m);
	assert_non_null(strstr(reason, "t.yaml:5:3: apps 'app-183202' and 'app-223199' have the "
				       "same identity hash (uid 0x065b6d8e)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_wildcards_mix_with_prefixes_in_to_and_sets),
		cmocka_unit_test(test_idna_a_labels_and_long_names_are_accepted),
		cmocka_unit_test(test_bad_host_names_are_errors_with_locations),
		cmocka_unit_test(test_host_name_limits),
		cmocka_unit_test(test_set_names_with_a_dot_are_refused),
		cmocka_unit_test(test_host_names_without_resolvers_are_an_error),
		cmocka_unit_test(test_resolvers_are_addresses),
		cmocka_unit_test(test_dns_tunables),
		cmocka_unit_test(test_name_entries_carry_scope_kind_hash_and_wire),
		cmocka_unit_test(test_name_in_several_rules_is_one_entry_with_the_union_of_ports),
		cmocka_unit_test(test_wildcards_match_strictly_below_and_pass_their_rules_down),
		cmocka_unit_test(test_nested_wildcards_take_the_longest_suffix_with_every_rule),
		cmocka_unit_test(test_names_are_per_app),
		cmocka_unit_test(test_names_share_port_sets_with_prefixes),
		cmocka_unit_test(test_names_capacity_is_checked_before_expansion),
		cmocka_unit_test(test_app_uid_depends_on_the_id_only),
		cmocka_unit_test(test_app_uid_collision_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
