// SPDX-License-Identifier: GPL-2.0-only
/*
 * The DNS parser of bpf/cw_dns.bpf.h on the packet of a BPF_PROG_TEST_RUN, for
 * tests/dns/test_dns_kernel.c: IPv4 or IPv6 (no extension headers), then UDP (the payload, as long
 * as the UDP header says) or TCP (one whole message after its length). The result goes to the
 * arrays dns_out (where the message was) and dns_res (the result); the program always lets the
 * packet pass.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cw_dns.bpf.h"
#include "dns_test.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_test_out);
} dns_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cw_dns_result);
} dns_res SEC(".maps");

/* Where the DNS message is: 0 and *off, *len set, or DNS_TEST_NOT_DNS / _TCP_FRAMING. */
static __always_inline __u32 locate(struct __sk_buff *skb, __u32 *off, __u32 *len)
{
	__u32 l4, end = skb->len;
	__u8 proto;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 vihl;

		if (bpf_skb_load_bytes(skb, 0, &vihl, 1) < 0 ||
		    bpf_skb_load_bytes(skb, 9, &proto, 1) < 0)
			return DNS_TEST_NOT_DNS;
		l4 = (vihl & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		if (bpf_skb_load_bytes(skb, 6, &proto, 1) < 0)
			return DNS_TEST_NOT_DNS;
		l4 = 40;
	} else {
		return DNS_TEST_NOT_DNS;
	}
	if (proto == IPPROTO_UDP) {
		__be16 ulen;

		if (bpf_skb_load_bytes(skb, l4 + 4, &ulen, 2) < 0 || bpf_ntohs(ulen) < 8 ||
		    l4 + bpf_ntohs(ulen) > end)
			return DNS_TEST_NOT_DNS;
		*off = l4 + 8;
		*len = bpf_ntohs(ulen) - 8;
		return 0;
	}
	if (proto == IPPROTO_TCP) {
		__u8 doff;

		if (bpf_skb_load_bytes(skb, l4 + 12, &doff, 1) < 0 || l4 + (doff >> 4) * 4 > end)
			return DNS_TEST_NOT_DNS;
		l4 += (doff >> 4) * 4;
		return cw_dns_tcp_msg(skb, l4, end - l4, off, len) ? DNS_TEST_TCP_FRAMING : 0;
	}
	return DNS_TEST_NOT_DNS;
}

SEC("cgroup_skb/ingress")
int dns_parse(struct __sk_buff *skb)
{
	struct cw_dns_result *res;
	struct dns_test_out *out;
	__u32 zero = 0, off = 0, len = 0, where;

	out = bpf_map_lookup_elem(&dns_out, &zero);
	if (!out)
		return 1;
	out->runs++;
	where = locate(skb, &off, &len);
	if (where) {
		out->located = where;
		return 1;
	}
	res = cw_dns_parse_skb(skb, off, len);
	if (!res) {
		out->located = DNS_TEST_BUSY;
		return 1;
	}
	out->located = DNS_TEST_PARSED;
	bpf_map_update_elem(&dns_res, &zero, res, BPF_ANY);
	cw_dns_release();
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
