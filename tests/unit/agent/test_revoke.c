// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the pure parts of the revocation pass (userspace/agent/revoke.c): parsing a sock_diag
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
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, 0, &got), 0);
	assert_int_equal(got.family, AF_INET6);
	assert_int_equal(got.protocol, IPPROTO_TCP);
	assert_int_equal(got.state, TCP_SYN_SENT);
	assert_true(got.has_cgroup_id);
	assert_true(got.cgroup_id == 0x1122334455667788ull);
	/* The id is kept whole: SOCK_DESTROY needs it exactly, cookie included. */
	assert_memory_equal(&got.id, &want.id, sizeof(want.id));
	nlmsg_free(m);
}

static void test_parse_diag_reads_carwalls_socket_storage(void **state)
{
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 7700, "198.51.100.20", 40000);
	struct cw_sk_state ours = { .flags = CW_SK_F_PASSIVE }, other = { .flags = ~0u };
	struct revoke_sock got;
	struct nl_msg *m = diag_reply(AF_INET, TCP_ESTABLISHED, &s.id, 7, 8);
	struct nlattr *all, *one;

	(void)state;
	all = nla_nest_start(m, INET_DIAG_SK_BPF_STORAGES);
	/* Another map's storage first: only the map asked about counts. */
	one = nla_nest_start(m, SK_DIAG_BPF_STORAGE);
	assert_int_equal(nla_put_u32(m, SK_DIAG_BPF_STORAGE_MAP_ID, 41), 0);
	assert_int_equal(nla_put(m, SK_DIAG_BPF_STORAGE_MAP_VALUE, sizeof(other), &other), 0);
	nla_nest_end(m, one);
	one = nla_nest_start(m, SK_DIAG_BPF_STORAGE);
	assert_int_equal(nla_put_u32(m, SK_DIAG_BPF_STORAGE_MAP_ID, 42), 0);
	assert_int_equal(nla_put(m, SK_DIAG_BPF_STORAGE_MAP_VALUE, sizeof(ours), &ours), 0);
	nla_nest_end(m, one);
	nla_nest_end(m, all);
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, 42, &got), 0);
	assert_int_equal(got.sk_flags, CW_SK_F_PASSIVE);
	/* Not asked for, or of a map that is not there: no flags. */
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, 0, &got), 0);
	assert_int_equal(got.sk_flags, 0);
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, 43, &got), 0);
	assert_int_equal(got.sk_flags, 0);
	nlmsg_free(m);
}

static void test_parse_diag_rejects_a_short_socket_storage(void **state)
{
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 7700, "198.51.100.20", 40000);
	struct revoke_sock got;
	struct nl_msg *m = diag_reply(AF_INET, TCP_ESTABLISHED, &s.id, 7, 8);
	struct nlattr *all = nla_nest_start(m, INET_DIAG_SK_BPF_STORAGES);
	struct nlattr *one = nla_nest_start(m, SK_DIAG_BPF_STORAGE);
	uint32_t flags = CW_SK_F_PASSIVE;

	(void)state;
	assert_int_equal(nla_put_u32(m, SK_DIAG_BPF_STORAGE_MAP_ID, 42), 0);
	assert_int_equal(nla_put(m, SK_DIAG_BPF_STORAGE_MAP_VALUE, sizeof(flags), &flags), 0);
	nla_nest_end(m, one);
	nla_nest_end(m, all);
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, 42, &got), -EBADMSG);
	nlmsg_free(m);
}

static void test_parse_diag_without_cgroup_id_leaves_socket_unjudged(void **state)
{
	struct revoke_sock s = sock(IPPROTO_UDP, "192.0.2.1", 5000, "203.0.113.7", 514);
	struct revoke_sock got;
	struct nl_msg *m = diag_reply(AF_INET, TCP_ESTABLISHED, &s.id, 0, 0);

	(void)state;
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_UDP, 0, &got), 0);
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
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, 0, &got), -EBADMSG);
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
	assert_int_equal(revoke_parse_diag(nlh, IPPROTO_TCP, 0, &got), -EBADMSG);
	nlmsg_free(m);
}

static void test_parse_diag_rejects_a_family_that_is_not_ip(void **state)
{
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 5000, "203.0.113.7", 443);
	struct revoke_sock got;
	struct nl_msg *m = diag_reply(AF_UNIX, TCP_ESTABLISHED, &s.id, 7, 8);

	(void)state;
	assert_int_equal(revoke_parse_diag(nlmsg_hdr(m), IPPROTO_TCP, 0, &got), -EBADMSG);
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

/* A socket with the flags carwall's programs left in its storage. */
static struct revoke_sock marked(struct revoke_sock s, uint32_t sk_flags)
{
	s.sk_flags = sk_flags;
	return s;
}

static bool server_side(struct revoke_sock s, uint32_t sk_flags)
{
	s.sk_flags = sk_flags;
	return revoke_is_server_side(&s);
}

static void test_only_a_socket_the_kernel_accepted_is_server_side(void **state)
{
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 7700, "192.0.2.2", 41234);

	(void)state;
	assert_true(server_side(s, CW_SK_F_PASSIVE));
	/* No storage (a socket older than carwall), or one the app connected: never. */
	assert_false(server_side(s, 0));
	assert_false(server_side(s, CW_SK_F_ACTIVE));
	/* Connected, then reported passive (a TCP simultaneous open): still connected. */
	assert_false(server_side(s, CW_SK_F_ACTIVE | CW_SK_F_PASSIVE));
}

static void test_server_side_rule_is_for_tcp_only(void **state)
{
	(void)state;
	assert_false(server_side(sock(IPPROTO_UDP, "192.0.2.1", 514, "203.0.113.7", 514),
				 CW_SK_F_PASSIVE));
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
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_KEEP_ALLOWED);
	s = sock(IPPROTO_TCP, "2001:db8::1", 40000, "2001:db8:51::20", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_KEEP_ALLOWED);
	s = sock(IPPROTO_UDP, "192.0.2.1", 40000, "198.51.100.20", 9000);
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_KEEP_ALLOWED);
	/* Refused: another address, another port, another protocol, another app's rule. */
	s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "203.0.113.7", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "198.51.100.20", 9000);
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	s = sock(IPPROTO_UDP, "192.0.2.1", 40000, "198.51.100.20", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "203.0.113.7", 443);
	assert_int_equal(revoke_judge(&s, 1, 2, m), REVOKE_KEEP_ALLOWED);
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
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_KEEP_ALLOWED);
	s = sock(IPPROTO_TCP, "::ffff:192.0.2.1", 40000, "::ffff:203.0.113.7", 443);
	assert_int_equal(revoke_judge(&s, 0, 2, m), REVOKE_DESTROY);
	policy_maps_free(m);
	policy_free(p);
}

static void test_judge_refuses_everything_of_a_guard(void **state)
{
	struct policy *p;
	struct policy_maps *m = compile(policy_yaml, &p);
	struct revoke_sock s = sock(IPPROTO_TCP, "192.0.2.1", 40000, "198.51.100.20", 443);

	(void)state;
	assert_int_equal(revoke_judge(&s, REVOKE_APP_DENY_ALL, 2, m), REVOKE_DESTROY);
	/* The agent's guard carries the index n_apps. */
	assert_int_equal(revoke_judge(&s, 2, 2, m), REVOKE_DESTROY);
	assert_int_equal(revoke_judge(&s, 0, 0, NULL), REVOKE_DESTROY);
	policy_maps_free(m);
	policy_free(p);
}

static void test_judge_keeps_accepted_sockets_by_their_peer_address(void **state)
{
	struct policy *p;
	struct policy_maps *m = compile(policy_yaml, &p);
	/* Accepted by the app's listener on 7700; peers on ephemeral ports. */
	struct revoke_sock ok = marked(sock(IPPROTO_TCP, "192.0.2.1", 7700, "198.51.100.20", 40000),
				       CW_SK_F_PASSIVE);
	struct revoke_sock v6 = marked(
		sock(IPPROTO_TCP, "2001:db8::1", 7700, "2001:db8:51::20", 40000), CW_SK_F_PASSIVE);
	struct revoke_sock other = marked(sock(IPPROTO_TCP, "192.0.2.1", 7700, "192.0.2.2", 40000),
					  CW_SK_F_PASSIVE);

	(void)state;
	/* media may reach 198.51.100.20 over TCP (port 443): its accepted peer stays. */
	assert_int_equal(revoke_judge(&ok, 0, 2, m), REVOKE_KEEP_SERVER_SIDE);
	/* nav may reach no such address: refused like the egress program refuses it. */
	assert_int_equal(revoke_judge(&ok, 1, 2, m), REVOKE_DESTROY);
	assert_int_equal(revoke_judge(&other, 0, 2, m), REVOKE_DESTROY);
	assert_int_equal(revoke_judge(&v6, 0, 2, m), REVOKE_KEEP_SERVER_SIDE);
	/* A guard keeps nothing. */
	assert_int_equal(revoke_judge(&ok, REVOKE_APP_DENY_ALL, 2, m), REVOKE_DESTROY);
	/* The same socket connected by the app (its local port shared with its listener through
	 * SO_REUSEPORT) is judged by the remote port: 40000 is not allowed. */
	ok.sk_flags = CW_SK_F_ACTIVE;
	assert_int_equal(revoke_judge(&ok, 0, 2, m), REVOKE_DESTROY);
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
		cmocka_unit_test(test_parse_diag_reads_carwalls_socket_storage),
		cmocka_unit_test(test_parse_diag_rejects_a_short_socket_storage),
		cmocka_unit_test(test_parse_diag_without_cgroup_id_leaves_socket_unjudged),
		cmocka_unit_test(test_parse_diag_rejects_a_short_cgroup_id_attribute),
		cmocka_unit_test(test_parse_diag_rejects_a_truncated_message),
		cmocka_unit_test(test_parse_diag_rejects_a_family_that_is_not_ip),
		cmocka_unit_test(test_match_cgroup_picks_the_deepest_managed_ancestor),
		cmocka_unit_test(test_match_cgroup_respects_component_boundaries),
		cmocka_unit_test(test_match_cgroup_ignores_trailing_slashes),
		cmocka_unit_test(test_match_cgroup_leaves_unmanaged_cgroups_alone),
		cmocka_unit_test(test_match_cgroup_root_covers_everything),
		cmocka_unit_test(test_only_a_socket_the_kernel_accepted_is_server_side),
		cmocka_unit_test(test_server_side_rule_is_for_tcp_only),
		cmocka_unit_test(test_judge_keeps_allowed_flows_and_destroys_refused_ones),
		cmocka_unit_test(test_judge_uses_ipv4_rules_for_mapped_destinations),
		cmocka_unit_test(test_judge_refuses_everything_of_a_guard),
		cmocka_unit_test(test_judge_keeps_accepted_sockets_by_their_peer_address),
		cmocka_unit_test(test_run_refuses_bad_parameters),
	};
	return cmocka_run_group_tests_name("revoke", tests, NULL, NULL);
}
