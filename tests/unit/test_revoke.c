// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the pure parts of the revocation pass (userspace/revoke.c): parsing a sock_diag
 * reply, finding a socket's managed cgroup, the rule on accepted sockets, the verdict.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_compile.h"
#include "revoke.h"

/* ---- helpers --------------------------------------------------------------------------------- */

static void set_addr(__be32 *field, const char *text)
{
	int family = strchr(text, ':') ? AF_INET6 : AF_INET;

	memset(field, 0, 16);
	assert_int_equal(inet_pton(family, text, field), 1);
}

/* A socket: family from the local address, "addr" strings and host-order ports. */
static struct revoke_sock sock(uint8_t protocol, const char *src, uint16_t sport, const char *dst,
			       uint16_t dport)
{
	struct revoke_sock s = {
		.family = strchr(src, ':') ? AF_INET6 : AF_INET,
		.protocol = protocol,
		.state = TCP_ESTABLISHED,
	};

	set_addr(s.id.idiag_src, src);
	set_addr(s.id.idiag_dst, dst);
	s.id.idiag_sport = htons(sport);
	s.id.idiag_dport = htons(dport);
	return s;
}

static struct revoke_sock listener(const char *addr, uint16_t port)
{
	const char *any = strchr(addr, ':') ? "::" : "0.0.0.0";
	struct revoke_sock s = sock(IPPROTO_TCP, addr, port, any, 0);

	s.state = TCP_LISTEN;
	return s;
}

static struct policy_maps *compile(const char *yaml, struct policy **ret_policy)
{
	struct policy_error err = {};
	struct policy_maps *m = NULL;
	struct policy *p = NULL;
	char reason[256];

	if (policy_parse_buffer("test.yaml", yaml, strlen(yaml), &p, &err) < 0)
		fail_msg("parse failed: %u:%u: %s", err.loc.line, err.loc.column, err.reason);
	if (policy_compile(p, 0, &m, reason, sizeof(reason)) < 0)
		fail_msg("compile failed: %s", reason);
	*ret_policy = p;
	return m;
}

/* A SOCK_DIAG_BY_FAMILY reply as the kernel builds it; cgroup_id_len 0: no attribute. */
static struct nl_msg *diag_reply(uint8_t family, uint8_t state, const struct inet_diag_sockid *id,
				 uint64_t cgroup_id, int cgroup_id_len)
{
	struct inet_diag_msg msg = {
		.idiag_family = family,
		.idiag_state = state,
		.id = *id,
	};
	struct nl_msg *m = nlmsg_alloc_simple(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI);
	uint32_t mark = 0;

	assert_non_null(m);
	assert_int_equal(nlmsg_append(m, &msg, sizeof(msg), NLMSG_ALIGNTO), 0);
	/* Another attribute before ours, as in a real reply. */
	assert_int_equal(nla_put(m, INET_DIAG_MARK, sizeof(mark), &mark), 0);
	if (cgroup_id_len == 8)
		assert_int_equal(nla_put_u64(m, INET_DIAG_CGROUP_ID, cgroup_id), 0);
	else if (cgroup_id_len > 0)
		assert_int_equal(nla_put(m, INET_DIAG_CGROUP_ID, cgroup_id_len, &cgroup_id), 0);
	return m;
}

/* ---- parsing --------------------------------------------------------------------------------- */

static void test_parse_diag_reads_family_state_id_and_cgroup_id(void **state)
{
	struct revoke_sock want = sock(IPPROTO_TCP, "2001:db8::1", 40000, "2001:db8:bad::7", 443);
	struct revoke_sock got;
	struct nl_msg *m;

	(void)state;
	want.id.idiag_if = 3;
	want.id.idiag_cookie[0] = 0x1234;
	want.id.idiag_cookie[1] = 0x5678;
	m = diag_reply(AF_INET6, TCP_SYN_SENT, &want.id, 0x1122334455667788ull, 8);
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, &got), 0);
	assert_int_equal(got.family, AF_INET6);
	assert_int_equal(got.protocol, IPPROTO_TCP);
	assert_int_equal(got.state, TCP_SYN_SENT);
	assert_true(got.has_cgroup_id);
	assert_true(got.cgroup_id == 0x1122334455667788ull);
	/* The id is kept whole: SOCK_DESTROY needs it exactly, cookie included. */
	assert_memory_equal(&got.id, &want.id, sizeof(want.id));
	nlmsg_free(m);
}

static void test_parse_diag_without_cgroup_id_leaves_socket_unjudged(void **state)
{
	struct revoke_sock s = sock(IPPROTO_UDP, "192.0.2.1", 5000, "203.0.113.7", 514);
	struct revoke_sock got;
	struct nl_msg *m = diag_reply(AF_INET, TCP_ESTABLISHED, &s.id, 0, 0);

	(void)state;
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_UDP, &got), 0);
	assert_false(got.has_cgroup_id);
	assert_int_equal(got.protocol, IPPROTO_UDP);
	nlmsg_free(m);
}

static void test_parse_diag_rejects_a_short_cgroup_id_attribute(void **state)
{
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 5000, "203.0.113.7", 443);
	struct revoke_sock got;
	struct nl_msg *m = diag_reply(AF_INET, TCP_ESTABLISHED, &s.id, 7, 4);

	(void)state;
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, &got), -EBADMSG);
	nlmsg_free(m);
}

static void test_parse_diag_rejects_a_truncated_message(void **state)
{
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 5000, "203.0.113.7", 443);
	struct revoke_sock got;
	struct nl_msg *m = diag_reply(AF_INET, TCP_ESTABLISHED, &s.id, 7, 8);
	struct nlmsghdr *nlh = nlmsg_hdr(m);

	(void)state;
	nlh->nlmsg_len = NLMSG_LENGTH(sizeof(struct inet_diag_msg) - 1);
	assert_int_equal(revoke_parse_diag(nlh, IPPROTO_TCP, &got), -EBADMSG);
	nlmsg_free(m);
}

static void test_parse_diag_rejects_a_family_that_is_not_ip(void **state)
{
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 5000, "203.0.113.7", 443);
	struct revoke_sock got;
	struct nl_msg *m = diag_reply(AF_UNIX, TCP_ESTABLISHED, &s.id, 7, 8);

	(void)state;
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, &got), -EBADMSG);
	nlmsg_free(m);
}

/* ---- cgroups --------------------------------------------------------------------------------- */

#define SLICE "/sys/fs/cgroup/system.slice/system-agl\\x2dapp.slice"

static const struct revoke_cgroup managed[] = {
	{ SLICE, REVOKE_APP_DENY_ALL },
	{ SLICE "/agl-app@media.service", 0 },
	{ "/sys/fs/cgroup/apps/nav/", 1 },
};

static long match(const char *path)
{
	size_t i = 99;

	if (revoke_match_cgroup(managed, sizeof(managed) / sizeof(managed[0]), path, &i) < 0)
		return -1;
	return (long)i;
}

static void test_match_cgroup_picks_the_deepest_managed_ancestor(void **state)
{
	(void)state;
	assert_int_equal(match(SLICE "/agl-app@media.service"), 1);
	assert_int_equal(match(SLICE "/agl-app@media.service/worker/nested"), 1);
	/* An app cgroup the policy does not name falls to the guard around it. */
	assert_int_equal(match(SLICE "/agl-app@new.service"), 0);
}

static void test_match_cgroup_respects_component_boundaries(void **state)
{
	(void)state;
	assert_int_equal(match("/sys/fs/cgroup/apps/navigation"), -1);
	assert_int_equal(match("/sys/fs/cgroup/apps/nav2/x"), -1);
	assert_int_equal(match(SLICE "/agl-app@media.service2"), 0);
	assert_int_equal(match(SLICE "x"), -1);
}

static void test_match_cgroup_ignores_trailing_slashes(void **state)
{
	(void)state;
	assert_int_equal(match("/sys/fs/cgroup/apps/nav"), 2);
	assert_int_equal(match("/sys/fs/cgroup/apps/nav/"), 2);
	assert_int_equal(match("/sys/fs/cgroup/apps/nav/sub/"), 2);
}

static void test_match_cgroup_leaves_unmanaged_cgroups_alone(void **state)
{
	(void)state;
	assert_int_equal(match("/sys/fs/cgroup/system.slice/sshd.service"), -1);
	assert_int_equal(match("/sys/fs/cgroup"), -1);
	assert_int_equal(match("/"), -1);
}

static void test_match_cgroup_root_covers_everything(void **state)
{
	const struct revoke_cgroup root[] = { { "/", 0 } };
	size_t i = 99;

	(void)state;
	assert_int_equal(revoke_match_cgroup(root, 1, "/sys/fs/cgroup/x", &i), 0);
	assert_int_equal(i, 0);
	assert_int_equal(revoke_match_cgroup(root, 0, "/sys/fs/cgroup/x", &i), -ENOENT);
}

/* ---- the rule on accepted sockets ------------------------------------------------------------ */

static void test_accepted_socket_on_a_listener_address_is_server_side(void **state)
{
	struct revoke_sock l[] = {
		listener("192.0.2.1", 7700),
		listener("127.0.0.1", 53),
		listener("::", 8080),
		listener("2001:db8::1", 9000),
	};
	struct revoke_sock s;

	(void)state;
	revoke_sort_listeners(l, 4);
	s = sock(IPPROTO_TCP, "192.0.2.1", 7700, "192.0.2.2", 41234);
	assert_true(revoke_is_server_side(&s, l, 4));
	s = sock(IPPROTO_TCP, "127.0.0.1", 53, "127.0.0.1", 50000);
	assert_true(revoke_is_server_side(&s, l, 4));
	s = sock(IPPROTO_TCP, "2001:db8::1", 9000, "2001:db8::2", 50000);
	assert_true(revoke_is_server_side(&s, l, 4));
}

static void test_wildcard_listener_matches_any_local_address(void **state)
{
	struct revoke_sock l[] = { listener("0.0.0.0", 443), listener("::", 8080) };
	struct revoke_sock s;

	(void)state;
	revoke_sort_listeners(l, 2);
	s = sock(IPPROTO_TCP, "198.51.100.20", 443, "192.0.2.1", 40000);
	assert_true(revoke_is_server_side(&s, l, 2));
	s = sock(IPPROTO_TCP, "2001:db8::1", 8080, "2001:db8::2", 40000);
	assert_true(revoke_is_server_side(&s, l, 2));
	/* IPv4 accepted by a dual-stack IPv6 listener: an IPv6 socket with mapped addresses. */
	s = sock(IPPROTO_TCP, "::ffff:192.0.2.1", 8080, "::ffff:192.0.2.2", 40000);
	assert_true(revoke_is_server_side(&s, l, 2));
}

static void test_outgoing_connection_is_not_server_side(void **state)
{
	struct revoke_sock l[] = {
		listener("0.0.0.0", 443),
		listener("192.0.2.1", 7700),
		listener("::", 7700),
	};
	struct revoke_sock s;

	(void)state;
	revoke_sort_listeners(l, 3);
	/* Remote port 443 is a listener's port, but the local one is ephemeral. */
	s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "203.0.113.7", 443);
	assert_false(revoke_is_server_side(&s, l, 3));
	/* Same port, other local address than the specific listener. */
	s = sock(IPPROTO_TCP, "192.0.2.9", 7700, "203.0.113.7", 443);
	assert_false(revoke_is_server_side(&s, l, 3));
	/* Same port and a wildcard listener, but of the other family. */
	s = sock(IPPROTO_TCP, "2001:db8::1", 443, "2001:db8::2", 40000);
	assert_false(revoke_is_server_side(&s, l, 3));
	/* No listener at all. */
	s = sock(IPPROTO_TCP, "192.0.2.1", 7700, "192.0.2.2", 40000);
	assert_false(revoke_is_server_side(&s, NULL, 0));
}

static void test_listener_rule_is_for_tcp_only(void **state)
{
	struct revoke_sock l[] = { listener("0.0.0.0", 514) };
	struct revoke_sock s = sock(IPPROTO_UDP, "192.0.2.1", 514, "203.0.113.7", 514);

	(void)state;
	assert_false(revoke_is_server_side(&s, l, 1));
}

static void test_listener_lookup_finds_every_listener_of_a_port(void **state)
{
	struct revoke_sock l[64];
	struct revoke_sock s;
	char addr[32];

	(void)state;
	/* Many listeners on one port, on different addresses, and on neighbouring ports. */
	for (int i = 0; i < 64; i++) {
		snprintf(addr, sizeof(addr), "192.0.2.%d", i + 1);
		l[i] = listener(addr, (uint16_t)(i % 2 ? 7700 : 7699 + (i % 4)));
	}
	revoke_sort_listeners(l, 64);
	for (int i = 1; i < 64; i += 2) {
		snprintf(addr, sizeof(addr), "192.0.2.%d", i + 1);
		s = sock(IPPROTO_TCP, addr, 7700, "198.51.100.1", 40000);
		assert_true(revoke_is_server_side(&s, l, 64));
	}
	s = sock(IPPROTO_TCP, "192.0.2.1", 7700, "198.51.100.1", 40000); /* .1 listens on 7699 */
	assert_false(revoke_is_server_side(&s, l, 64));
}

/* ---- verdicts -------------------------------------------------------------------------------- */

static const char policy_yaml[] = "version: 1\n"
				  "sets:\n"
				  "  oem: [198.51.100.20, 2001:db8:51::20]\n"
				  "apps:\n"
				  "  media:\n"
				  "    allow:\n"
				  "      - to: oem\n"
				  "        ports: [443]\n"
				  "        proto: tcp\n"
				  "      - to: oem\n"
				  "        ports: [9000]\n"
				  "        proto: udp\n"
				  "  nav:\n"
				  "    allow:\n"
				  "      - to: [203.0.113.0/24]\n";

static void test_judge_keeps_allowed_flows_and_destroys_refused_ones(void **state)
{
	struct policy *p;
	struct policy_maps *m = compile(policy_yaml, &p);
	struct revoke_sock s;

	(void)state;
	s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "198.51.100.20", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_KEEP_ALLOWED);
	s = sock(IPPROTO_TCP, "2001:db8::1", 40000, "2001:db8:51::20", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_KEEP_ALLOWED);
	s = sock(IPPROTO_UDP, "192.0.2.1", 40000, "198.51.100.20", 9000);
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_KEEP_ALLOWED);
	/* Refused: another address, another port, another protocol, another app's rule. */
	s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "203.0.113.7", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_DESTROY);
	s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "198.51.100.20", 9000);
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_DESTROY);
	s = sock(IPPROTO_UDP, "192.0.2.1", 40000, "198.51.100.20", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_DESTROY);
	s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "203.0.113.7", 443);
	assert_int_equal(revoke_judge(&s, 1, 2, m, NULL, 0), REVOKE_KEEP_ALLOWED);
	policy_maps_free(m);
	policy_free(p);
}

static void test_judge_uses_ipv4_rules_for_mapped_destinations(void **state)
{
	struct policy *p;
	struct policy_maps *m = compile(policy_yaml, &p);
	struct revoke_sock s;

	(void)state;
	s = sock(IPPROTO_TCP, "::ffff:192.0.2.1", 40000, "::ffff:198.51.100.20", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_KEEP_ALLOWED);
	s = sock(IPPROTO_TCP, "::ffff:192.0.2.1", 40000, "::ffff:203.0.113.7", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_DESTROY);
	policy_maps_free(m);
	policy_free(p);
}

static void test_judge_refuses_everything_of_a_guard(void **state)
{
	struct policy *p;
	struct policy_maps *m = compile(policy_yaml, &p);
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "198.51.100.20", 443);

	(void)state;
	assert_int_equal(revoke_judge(&s, REVOKE_APP_DENY_ALL, 2, m, NULL, 0), REVOKE_DESTROY);
	/* The agent's guard carries the index n_apps. */
	assert_int_equal(revoke_judge(&s, 2, 2, m, NULL, 0), REVOKE_DESTROY);
	assert_int_equal(revoke_judge(&s, 0, 0, NULL, NULL, 0), REVOKE_DESTROY);
	policy_maps_free(m);
	policy_free(p);
}

static void test_judge_keeps_server_side_sockets_even_of_a_guard(void **state)
{
	struct policy *p;
	struct policy_maps *m = compile(policy_yaml, &p);
	struct revoke_sock l[] = { listener("0.0.0.0", 7700) };
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 7700, "192.0.2.2", 40000);

	(void)state;
	assert_int_equal(revoke_judge(&s, 0, 2, m, l, 1), REVOKE_KEEP_SERVER_SIDE);
	assert_int_equal(revoke_judge(&s, REVOKE_APP_DENY_ALL, 2, m, l, 1),
			 REVOKE_KEEP_SERVER_SIDE);
	/* Without the listener the same socket is an outgoing flow to a refused address. */
	assert_int_equal(revoke_judge(&s, 0, 2, m, NULL, 0), REVOKE_DESTROY);
	policy_maps_free(m);
	policy_free(p);
}

static void test_run_refuses_bad_parameters(void **state)
{
	const struct revoke_cgroup relative[] = { { "apps/nav", 0 } };
	struct revoke_stats st;

	(void)state;
	assert_int_equal(revoke_run(NULL, &st), -EINVAL);
	assert_int_equal(revoke_run(&(struct revoke_params){ .cgroup_mount = "/sys/fs/cgroup",
							     .cgroups = relative,
							     .n_cgroups = 1 },
				    &st),
			 -EINVAL);
	/* Apps but no maps. */
	assert_int_equal(revoke_run(&(struct revoke_params){ .cgroup_mount = "/sys/fs/cgroup",
							     .n_apps = 1 },
				    &st),
			 -EINVAL);
	/* Nothing managed: nothing to do, and nothing touched. */
	assert_int_equal(revoke_run(&(struct revoke_params){ .cgroup_mount = "/sys/fs/cgroup" },
				    &st),
			 0);
	assert_int_equal(st.seen, 0);
	assert_int_equal(st.netns, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_diag_reads_family_state_id_and_cgroup_id),
		cmocka_unit_test(test_parse_diag_without_cgroup_id_leaves_socket_unjudged),
		cmocka_unit_test(test_parse_diag_rejects_a_short_cgroup_id_attribute),
		cmocka_unit_test(test_parse_diag_rejects_a_truncated_message),
		cmocka_unit_test(test_parse_diag_rejects_a_family_that_is_not_ip),
		cmocka_unit_test(test_match_cgroup_picks_the_deepest_managed_ancestor),
		cmocka_unit_test(test_match_cgroup_respects_component_boundaries),
		cmocka_unit_test(test_match_cgroup_ignores_trailing_slashes),
		cmocka_unit_test(test_match_cgroup_leaves_unmanaged_cgroups_alone),
		cmocka_unit_test(test_match_cgroup_root_covers_everything),
		cmocka_unit_test(test_accepted_socket_on_a_listener_address_is_server_side),
		cmocka_unit_test(test_wildcard_listener_matches_any_local_address),
		cmocka_unit_test(test_outgoing_connection_is_not_server_side),
		cmocka_unit_test(test_listener_rule_is_for_tcp_only),
		cmocka_unit_test(test_listener_lookup_finds_every_listener_of_a_port),
		cmocka_unit_test(test_judge_keeps_allowed_flows_and_destroys_refused_ones),
		cmocka_unit_test(test_judge_uses_ipv4_rules_for_mapped_destinations),
		cmocka_unit_test(test_judge_refuses_everything_of_a_guard),
		cmocka_unit_test(test_judge_keeps_server_side_sockets_even_of_a_guard),
		cmocka_unit_test(test_run_refuses_bad_parameters),
	};
	return cmocka_run_group_tests_name("revoke", tests, NULL, NULL);
}
