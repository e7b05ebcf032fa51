// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: what userspace decides about addresses learned from DNS answers. Revocation of a
 * socket that a learned name connected (userspace/revoke.c: kept while the name is the app's
 * with its port, whatever the TTL), and the agent's sweep of cw_learned (userspace/learned.c) on
 * real BPF maps (root; SKIPped otherwise).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns.h"
#include "learned.h"
#include "policy.h"
#include "policy_compile.h"
#include "revoke.h"

static const char policy_yaml[] = "version: 1\n"
				  "resolvers: [127.0.0.53]\n"
				  "apps:\n"
				  "  navigation:\n"
				  "    allow:\n"
				  "      - to: [tiles.oem.example, \"*.maps.oem.example\"]\n"
				  "        ports: [443]\n"
				  "        proto: tcp\n"
				  "  radio:\n"
				  "    allow:\n"
				  "      - to: [stream.radio.example]\n"
				  "        ports: [8000]\n";

static struct policy_maps *compile(struct policy **ret_policy)
{
	struct policy_error err = {};
	struct policy_maps *m = NULL;
	struct policy *p = NULL;
	char reason[256];

	if (policy_parse_buffer("test.yaml", policy_yaml, strlen(policy_yaml), &p, &err) < 0)
		fail_msg("parse failed: %u:%u: %s", err.loc.line, err.loc.column, err.reason);
	if (policy_compile(p, 0, &m, reason, sizeof(reason)) < 0)
		fail_msg("compile failed: %s", reason);
	*ret_policy = p;
	return m;
}

static uint64_t name_hash(const char *text)
{
	struct dns_name n;

	assert_int_equal(dns_name_from_text(text, &n), 0);
	return n.hash;
}

/* A TCP socket of the app to dst:dport that `name` (kind) connected, to `name_addr`. */
static struct revoke_sock by_name(const char *dst, uint16_t dport, const char *name,
				  uint32_t kind, const char *name_addr)
{
	int family = strchr(dst, ':') ? AF_INET6 : AF_INET;
	struct revoke_sock s = {
		.family = (uint8_t)family,
		.protocol = IPPROTO_TCP,
		.state = TCP_ESTABLISHED,
		.sk_flags = CW_SK_F_ACTIVE | CW_SK_F_BY_NAME,
		.name_hash = name_hash(name),
		.name_kind = kind,
	};

	assert_int_equal(inet_pton(family, dst, s.id.idiag_dst), 1);
	s.id.idiag_dport = htons(dport);
	/* The programs store IPv4 (mapped too) in the first 4 bytes, the rest zero. */
	assert_int_equal(inet_pton(strchr(name_addr, ':') ? AF_INET6 : AF_INET, name_addr,
				   s.name_addr),
			 1);
	return s;
}

/* ---- revocation ------------------------------------------------------------------------------ */

static void test_revoke_keeps_a_flow_connected_by_a_name_still_in_the_policy(void **state)
{
	struct policy *p = NULL;
	struct policy_maps *m = compile(&p);
	struct revoke_sock s;

	(void)state;
	s = by_name("198.51.100.20", 443, "tiles.oem.example", CW_NAME_EXACT, "198.51.100.20");
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_KEEP_ALLOWED);
	s = by_name("198.51.100.80", 443, "maps.oem.example", CW_NAME_WILDCARD, "198.51.100.80");
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_KEEP_ALLOWED);
	/* A dual-stack socket to the IPv4-mapped address: the programs stored the IPv4 one. */
	s = by_name("::ffff:198.51.100.20", 443, "tiles.oem.example", CW_NAME_EXACT,
		    "198.51.100.20");
	s.family = AF_INET6;
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_KEEP_ALLOWED);
	policy_maps_free(m);
	policy_free(p);
}

static void test_revoke_cuts_a_flow_by_name_on_a_port_the_name_does_not_allow(void **state)
{
	struct policy *p = NULL;
	struct policy_maps *m = compile(&p);
	struct revoke_sock s;

	(void)state;
	s = by_name("198.51.100.20", 8443, "tiles.oem.example", CW_NAME_EXACT, "198.51.100.20");
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	/* The name's rule is TCP: a UDP socket to it is not kept. */
	s = by_name("198.51.100.20", 443, "tiles.oem.example", CW_NAME_EXACT, "198.51.100.20");
	s.protocol = IPPROTO_UDP;
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	policy_maps_free(m);
	policy_free(p);
}

static void test_revoke_cuts_a_flow_whose_name_is_not_the_apps(void **state)
{
	struct policy *p = NULL;
	struct policy_maps *m = compile(&p);
	struct revoke_sock s;

	(void)state;
	/* Gone from the policy (never in it). */
	s = by_name("198.51.100.20", 443, "gone.oem.example", CW_NAME_EXACT, "198.51.100.20");
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	/* Another app's name. */
	s = by_name("198.51.100.20", 443, "stream.radio.example", CW_NAME_EXACT, "198.51.100.20");
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	/* The exact name's hash with the wildcard kind is another entry. */
	s = by_name("198.51.100.20", 443, "tiles.oem.example", CW_NAME_WILDCARD, "198.51.100.20");
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	policy_maps_free(m);
	policy_free(p);
}

static void test_revoke_name_counts_only_for_the_address_it_connected(void **state)
{
	struct policy *p = NULL;
	struct policy_maps *m = compile(&p);
	struct revoke_sock s;

	(void)state;
	/* Connected (UDP, then another connect) to an address the name never gave. */
	s = by_name("203.0.113.7", 443, "tiles.oem.example", CW_NAME_EXACT, "198.51.100.20");
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	/* Without the mark the stored name means nothing. */
	s = by_name("198.51.100.20", 443, "tiles.oem.example", CW_NAME_EXACT, "198.51.100.20");
	s.sk_flags = CW_SK_F_ACTIVE;
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	policy_maps_free(m);
	policy_free(p);
}

/* ---- the sweep, on real maps ----------------------------------------------------------------- */

struct sweep_maps {
	int learned, count, names;
};

static int sweep_setup(void **state)
{
	static struct sweep_maps s;

	s.learned = bpf_map_create(BPF_MAP_TYPE_HASH, "t_learned", sizeof(struct cw_learned_key),
				   sizeof(struct cw_learned_val), 64, NULL);
	s.count = bpf_map_create(BPF_MAP_TYPE_HASH, "t_count", sizeof(uint32_t), sizeof(uint64_t),
				 16, NULL);
	s.names = bpf_map_create(BPF_MAP_TYPE_HASH, "t_names", sizeof(struct cw_name_key),
				 sizeof(struct cw_name_val), 16, NULL);
	*state = &s;
	return 0;
}

static int sweep_teardown(void **state)
{
	struct sweep_maps *s = *state;

	if (s->learned >= 0)
		close(s->learned);
	if (s->count >= 0)
		close(s->count);
	if (s->names >= 0)
		close(s->names);
	return 0;
}

static void put_learned(int fd, uint32_t uid, uint8_t last, uint64_t expires, uint64_t hash)
{
	struct cw_learned_key k = { .app_uid = uid, .family = AF_INET, .addr = { 198, 51, 100, last } };
	struct cw_learned_val v = { .expires_ns = expires, .name_hash = hash };

	assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_ANY), 0);
}

static bool has_learned(int fd, uint32_t uid, uint8_t last)
{
	struct cw_learned_key k = { .app_uid = uid, .family = AF_INET, .addr = { 198, 51, 100, last } };
	struct cw_learned_val v;

	return bpf_map_lookup_elem(fd, &k, &v) == 0;
}

static void test_sweep_deletes_expired_orphaned_and_dropped_names_and_counts(void **state)
{
	struct sweep_maps *s = *state;
	const struct learned_app apps[] = { { .uid = 11, .app = 0 }, { .uid = 22, .app = 1 } };
	struct cw_name_key nk = { .scope = cw_scope(1, 0), .kind = CW_NAME_EXACT, .hash = 0xa };
	struct cw_name_val nv = {};
	struct learned_sweep_stats st = {};
	uint32_t gone_uid = 33;
	uint64_t count = 0, stale = 7;

	if (s->learned < 0 || s->count < 0 || s->names < 0)
		skip(); /* not root: no BPF maps */
	assert_int_equal(bpf_map_update_elem(s->names, &nk, &nv, BPF_ANY), 0);
	/* App 0 of generation 1 has name 0xa; the app of uid 22 has no name at all. */
	put_learned(s->learned, 11, 1, 2000, 0xa);    /* kept */
	put_learned(s->learned, 11, 2, 1000, 0xa);    /* expired at now = 1000 */
	put_learned(s->learned, 11, 3, 2000, 0xb);    /* its name left the policy */
	put_learned(s->learned, 22, 4, 2000, 0xa);    /* 0xa is not app 1's name */
	put_learned(s->learned, 33, 5, 2000, 0xa);    /* no app of the policy */
	assert_int_equal(bpf_map_update_elem(s->count, &gone_uid, &stale, BPF_ANY), 0);

	assert_int_equal(learned_sweep(s->learned, s->count, s->names, 1, apps, 2, 1000, &st), 0);
	assert_int_equal(st.kept, 1);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.orphaned, 3);
	assert_int_equal(st.next_expiry_ns, 2000); /* the next sweep worth making */
	assert_true(has_learned(s->learned, 11, 1));
	for (uint8_t last = 2; last <= 5; last++)
		assert_false(has_learned(s->learned, last == 4 ? 22 : last == 5 ? 33 : 11, last));
	assert_int_equal(bpf_map_lookup_elem(s->count, &apps[0].uid, &count), 0);
	assert_int_equal(count, 1);
	assert_int_equal(bpf_map_lookup_elem(s->count, &apps[1].uid, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(bpf_map_lookup_elem(s->count, &gone_uid, &count), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoke_keeps_a_flow_connected_by_a_name_still_in_the_policy),
		cmocka_unit_test(test_revoke_cuts_a_flow_by_name_on_a_port_the_name_does_not_allow),
		cmocka_unit_test(test_revoke_cuts_a_flow_whose_name_is_not_the_apps),
		cmocka_unit_test(test_revoke_name_counts_only_for_the_address_it_connected),
		cmocka_unit_test_setup_teardown(
			test_sweep_deletes_expired_orphaned_and_dropped_names_and_counts, sweep_setup,
			sweep_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
