// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: how the revocation pass (userspace/revoke.c) takes the replies to one sock_diag
 * dump. A dump that did not end cleanly (the kernel's error, an ack, no NLMSG_DONE) or that the
 * kernel flagged interrupted (NLM_F_DUMP_INTR) must never read as "these are all the sockets":
 * a namespace whose dump failed is reported failed, never as one with nothing to cut.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "revoke.h"

/* ---- helpers --------------------------------------------------------------------------------- */

/* One netlink message of a dump reply: a socket, NLMSG_DONE or NLMSG_ERROR. */
struct reply {
	struct nlmsghdr nlh;
	union {
		struct inet_diag_msg diag;
		struct nlmsgerr err;
		int done;
	};
};

/* A SOCK_DIAG_BY_FAMILY reply for an IPv4 socket to port dport. */
static struct reply sock_reply(uint32_t seq, uint16_t flags, uint16_t dport)
{
	struct reply m = {
		.nlh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct inet_diag_msg)),
			 .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_MULTI | flags,
			 .nlmsg_seq = seq },
		.diag = { .idiag_family = AF_INET, .idiag_state = TCP_ESTABLISHED },
	};

	m.diag.id.idiag_dport = htons(dport);
	return m;
}

static struct reply done_reply(uint32_t seq, uint16_t flags)
{
	return (struct reply){ .nlh = { .nlmsg_len = NLMSG_LENGTH(sizeof(int)),
					.nlmsg_type = NLMSG_DONE,
					.nlmsg_flags = NLM_F_MULTI | flags,
					.nlmsg_seq = seq } };
}

static struct reply error_reply(uint32_t seq, int error)
{
	return (struct reply){ .nlh = { .nlmsg_len = NLMSG_LENGTH(sizeof(struct nlmsgerr)),
					.nlmsg_type = NLMSG_ERROR,
					.nlmsg_seq = seq },
			       .err = { .error = error } };
}

/* A reply whose family is neither AF_INET nor AF_INET6: malformed. */
static struct reply bad_reply(uint32_t seq)
{
	struct reply m = sock_reply(seq, 0, 443);

	m.diag.idiag_family = AF_UNIX;
	return m;
}

static int feed(struct revoke_dump *d, struct reply m)
{
	return revoke_dump_feed(d, &m.nlh);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_dump_takes_the_sockets_of_a_complete_dump(void **state)
{
	struct revoke_dump d = { .max = 16 };

	(void)state;
	revoke_dump_start(&d, IPPROTO_TCP, 7);
	assert_int_equal(feed(&d, sock_reply(7, 0, 443)), 0);
	assert_int_equal(feed(&d, sock_reply(7, 0, 8443)), 0);
	assert_int_equal(feed(&d, done_reply(7, 0)), 1);
	assert_int_equal(revoke_dump_end(&d), 0);
	assert_int_equal(d.n, 2);
	assert_int_equal(ntohs(d.v[0].id.idiag_dport), 443);
	assert_int_equal(ntohs(d.v[1].id.idiag_dport), 8443);
	assert_int_equal(d.v[1].protocol, IPPROTO_TCP);
	free(d.v);
}

static void test_dump_without_its_end_is_not_complete(void **state)
{
	struct revoke_dump d = { .max = 16 };

	(void)state;
	revoke_dump_start(&d, IPPROTO_TCP, 7);
	assert_int_equal(feed(&d, sock_reply(7, 0, 443)), 0);
	assert_int_equal(revoke_dump_end(&d), -EINPROGRESS);
	free(d.v);
}

static void test_dump_ignores_replies_to_another_request(void **state)
{
	struct revoke_dump d = { .max = 16 };

	(void)state;
	revoke_dump_start(&d, IPPROTO_TCP, 7);
	assert_int_equal(feed(&d, sock_reply(6, 0, 443)), 0);
	assert_int_equal(feed(&d, done_reply(6, NLM_F_DUMP_INTR)), 0);
	assert_int_equal(feed(&d, error_reply(6, -EINVAL)), 0);
	assert_int_equal(revoke_dump_end(&d), -EINPROGRESS);
	assert_int_equal(feed(&d, sock_reply(7, 0, 8443)), 0);
	assert_int_equal(feed(&d, done_reply(7, 0)), 1);
	assert_int_equal(revoke_dump_end(&d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(ntohs(d.v[0].id.idiag_dport), 8443);
	free(d.v);
}

static void test_dump_the_kernel_flagged_interrupted_is_dropped_and_asked_again(void **state)
{
	struct revoke_dump d = { .max = 16 };

	(void)state;
	/* An earlier dump of the namespace (TCP/IPv4), complete: it stays. */
	revoke_dump_start(&d, IPPROTO_TCP, 1);
	assert_int_equal(feed(&d, sock_reply(1, 0, 443)), 0);
	assert_int_equal(feed(&d, done_reply(1, 0)), 1);
	assert_int_equal(revoke_dump_end(&d), 0);

	/* The next one is flagged in its middle: none of its sockets is taken. */
	revoke_dump_start(&d, IPPROTO_TCP, 2);
	assert_int_equal(feed(&d, sock_reply(2, 0, 1001)), 0);
	assert_int_equal(feed(&d, bad_reply(2)), 0);
	assert_int_equal(feed(&d, sock_reply(2, NLM_F_DUMP_INTR, 1002)), 0);
	assert_int_equal(feed(&d, sock_reply(2, 0, 1003)), 0);
	assert_int_equal(feed(&d, done_reply(2, 0)), 1);
	assert_int_equal(revoke_dump_end(&d), -EINTR);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.bad, 0);

	/* Asked again, complete this time. */
	revoke_dump_start(&d, IPPROTO_TCP, 3);
	assert_int_equal(feed(&d, sock_reply(3, 0, 1001)), 0);
	assert_int_equal(feed(&d, sock_reply(3, 0, 1003)), 0);
	assert_int_equal(feed(&d, done_reply(3, 0)), 1);
	assert_int_equal(revoke_dump_end(&d), 0);
	assert_int_equal(d.n, 3);
	assert_int_equal(ntohs(d.v[0].id.idiag_dport), 443);
	assert_int_equal(ntohs(d.v[1].id.idiag_dport), 1001);
	assert_int_equal(ntohs(d.v[2].id.idiag_dport), 1003);
	free(d.v);
}

static void test_dump_flagged_on_its_done_message_is_interrupted(void **state)
{
	struct revoke_dump d = { .max = 16 };

	(void)state;
	revoke_dump_start(&d, IPPROTO_TCP, 7);
	assert_int_equal(feed(&d, sock_reply(7, 0, 443)), 0);
	assert_int_equal(feed(&d, done_reply(7, NLM_F_DUMP_INTR)), 1);
	assert_int_equal(revoke_dump_end(&d), -EINTR);
	assert_int_equal(d.n, 0);
	free(d.v);
}

static void test_dump_ended_by_the_kernels_error_fails_with_it(void **state)
{
	struct revoke_dump d = { .max = 16 };

	(void)state;
	revoke_dump_start(&d, IPPROTO_TCP, 7);
	assert_int_equal(feed(&d, error_reply(7, -EINVAL)), 1);
	assert_int_equal(revoke_dump_end(&d), -EINVAL);
	/* Nothing after the end is taken. */
	assert_int_equal(feed(&d, sock_reply(7, 0, 443)), 1);
	assert_int_equal(d.n, 0);
	free(d.v);
}

static void test_dump_ended_by_an_ack_is_an_error(void **state)
{
	struct revoke_dump d = { .max = 16 };

	(void)state;
	revoke_dump_start(&d, IPPROTO_TCP, 7);
	assert_int_equal(feed(&d, error_reply(7, 0)), 1);
	assert_int_equal(revoke_dump_end(&d), -EPROTO);
	free(d.v);
}

static void test_dump_keeps_only_connected_udp_sockets(void **state)
{
	struct revoke_dump d = { .max = 16 };

	(void)state;
	revoke_dump_start(&d, IPPROTO_UDP, 7);
	assert_int_equal(feed(&d, sock_reply(7, 0, 0)), 0);
	assert_int_equal(feed(&d, sock_reply(7, 0, 53)), 0);
	assert_int_equal(feed(&d, done_reply(7, 0)), 1);
	assert_int_equal(revoke_dump_end(&d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].protocol, IPPROTO_UDP);
	assert_int_equal(ntohs(d.v[0].id.idiag_dport), 53);
	free(d.v);
}

static void test_dump_counts_malformed_replies_and_stops_at_its_limit(void **state)
{
	struct revoke_dump d = { .max = 2 };

	(void)state;
	revoke_dump_start(&d, IPPROTO_TCP, 7);
	assert_int_equal(feed(&d, bad_reply(7)), 0);
	for (uint16_t port = 1; port <= 3; port++)
		assert_int_equal(feed(&d, sock_reply(7, 0, port)), 0);
	assert_int_equal(feed(&d, done_reply(7, 0)), 1);
	assert_int_equal(revoke_dump_end(&d), 0);
	assert_int_equal(d.bad, 1);
	assert_int_equal(d.n, 2);
	assert_true(d.truncated);
	free(d.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dump_takes_the_sockets_of_a_complete_dump),
		cmocka_unit_test(test_dump_without_its_end_is_not_complete),
		cmocka_unit_test(test_dump_ignores_replies_to_another_request),
		cmocka_unit_test(test_dump_the_kernel_flagged_interrupted_is_dropped_and_asked_again),
		cmocka_unit_test(test_dump_flagged_on_its_done_message_is_interrupted),
		cmocka_unit_test(test_dump_ended_by_the_kernels_error_fails_with_it),
		cmocka_unit_test(test_dump_ended_by_an_ack_is_an_error),
		cmocka_unit_test(test_dump_keeps_only_connected_udp_sockets),
		cmocka_unit_test(test_dump_counts_malformed_replies_and_stops_at_its_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
