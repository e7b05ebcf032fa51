// SPDX-License-Identifier: GPL-2.0-only
/*
 * carwall's socket-creation hook: cgroup/sock_create, run for every AF_INET and AF_INET6 socket
 * created below the agent's cgroup root.
 *
 * The destination hooks (sock_addr.bpf.c) judge TCP and UDP. Other IP sockets escape them: a
 * connected UDP-Lite socket is never seen by cgroup/connect4 (udplite has no pre_connect), raw
 * sockets and ICMP ping sockets send without a sendmsg hook, SCTP and MPTCP have paths of their
 * own. So a managed app may create only TCP stream and UDP datagram sockets; any other IP socket
 * is refused at socket() with EPERM (and reported). Unmanaged tasks are left alone.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "cw_app.bpf.h"

#define SOCK_CREATE_ALLOW 1
#define SOCK_CREATE_DENY 0

SEC("cgroup/sock_create")
int cw_sock_create(struct bpf_sock *ctx)
{
	struct cw_flow f = { .hook = CW_HOOK_SOCK_CREATE, .from_task = true };
	struct cw_ctx c = {};

	/* Judged at connect() and sendmsg(), for every task: no need to know whose socket it is. */
	if ((ctx->type == SOCK_STREAM && ctx->protocol == IPPROTO_TCP) ||
	    (ctx->type == SOCK_DGRAM && ctx->protocol == IPPROTO_UDP))
		return SOCK_CREATE_ALLOW;
	if (!cw_find_app(&c, NULL))
		return SOCK_CREATE_ALLOW;

	f.family = (__u8)ctx->family;
	f.proto = (__u8)ctx->protocol;
	f.sock_type = ctx->type;
	return cw_finish(&c, &f, CW_VERDICT_DENY_PROTOCOL) ? SOCK_CREATE_ALLOW : SOCK_CREATE_DENY;
}

char LICENSE[] SEC("license") = "GPL";
