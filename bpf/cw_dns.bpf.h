/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading a DNS response in a cgroup_skb program: what an app may learn from its own lookups.
 * The caller finds the message (a UDP payload, or with cw_dns_tcp_msg() a TCP segment holding one
 * whole message) and calls cw_dns_parse_skb(); the result is the struct cw_dns_result of
 * bpf/cw_dns.h, in a per-CPU scratch map value, valid until cw_dns_release(). The parser is
 * bpf/cw_dns_parse.h, the same source userspace/lib/dns.c runs.
 *
 * What is learned (result status CW_DNS_OK, answers[]):
 * - A response (QR set) to a standard query (opcode 0), not truncated (TC clear: the client asks
 *   again over TCP), rcode 0, with exactly one question of class IN and type A or AAAA.
 * - The question name, canonical: uncompressed wire form, A-Z folded to a-z (0x20 mixed case
 *   answers the same name), its hash and the hash of each parent suffix (bpf/cw_dns.h).
 * - Of the answer section, in order, the records of class IN and type A, AAAA or CNAME owned by
 *   a name of the chain: the question name, then the target of each CNAME learned before it in
 *   the same message. A CNAME adds its target to the chain; a record owned by a name that only a
 *   later CNAME reaches (out of order) is not learned. Each with its TTL (RFC 2181: a TTL with
 *   the top bit set is read as 0) and its address (A, AAAA) or its target's hash (CNAME).
 *   Owners are matched by hash (64 bits) within one message.
 *
 * What is not learned, and counted: records of another type or class (skipped_type), owned by a
 * name outside the chain (skipped_owner), past CW_DNS_MAX_ANSWERS learned (skipped_limit), a
 * CNAME to a name of more than CW_DNS_MAX_LABELS labels (skipped_long), answer records past the
 * first CW_DNS_MAX_RECORDS (unread). The authority and additional sections are never read.
 * A message that is not learnable teaches nothing at all: status says why (and reason).
 *
 * Limits, and the rules stricter than RFC 1035 parsers such as libresolv (deliberate: no encoder
 * in use writes what they refuse; each is a malformed message here):
 * - a message of at most CW_DNS_MSG_MAX bytes (longer: unlearnable, TOO_BIG);
 * - every read checked against the message length; counts that claim more records than the
 *   message holds stop the parse (malformed);
 * - labels of at most 63 bytes, no extended label types (0x40, 0x80), names of at most 255
 *   bytes in wire form;
 * - a compression pointer must point strictly before the start of the label sequence it ends
 *   (so before everything of the name read so far: a pointer to itself, forward, or into a loop
 *   is refused, POINTER), and at most CW_DNS_MAX_JUMPS pointers per name (JUMPS);
 * - A records have 4 bytes of data, AAAA 16 (RDLENGTH); a learned CNAME's target fills its data
 *   exactly (CNAME_RDATA);
 * - a question name of more than CW_DNS_MAX_LABELS labels is not learnable (QNAME_LABELS).
 *
 * The hash only says which name to compare: a caller deciding that a question is one of an
 * app's names compares qname[] (and for "*.x", the suffix at qsuffix_off[]) with the name, since
 * an app can ask its resolver for a name of its choosing, and FNV-1a collisions can be made.
 *
 * Cost: one bpf_skb_load_bytes() of the message, then bpf_loop() of small steps (a label or a
 * record each); at most CW_DNS_MAX_STEPS, which the longest possible message never reaches.
 */
#ifndef CW_DNS_BPF_H
#define CW_DNS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cw_dns_parse.h"

/*
 * The per-CPU scratch, with a guard: a program run that interrupts another one on the same CPU
 * (process context and softirq, or any two tasks under PREEMPT_RT, where programs are only kept
 * from migrating) would otherwise overwrite the message and state of the parse it interrupted,
 * which could then learn another message's addresses. The nested run gets no result instead.
 */
struct cw_dns_slot {
	__u32 busy; /* parses in progress on this CPU: 0 or 1 but while one is being refused */
	__u32 pad;
	struct cw_dns_scratch s;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cw_dns_slot);
} cw_dns_scratch SEC(".maps");

/* bpf_loop() passes a pointer to the stack: the scratch pointer goes through it. */
struct cw_dns_loop_ctx {
	struct cw_dns_scratch *s;
};

static long cw_dns_loop_step(__u64 index, void *ctx)
{
	return cw_dns_step(((struct cw_dns_loop_ctx *)ctx)->s);
}

/*
 * bpf_skb_load_bytes() of the message (len bytes at offset off) into dst. cw_dns_begin() checked
 * the length already; again here, in a function of its own, so that the register the verifier
 * sees checked is the one passed: inlined in a long function, clang 14 spilled the length and
 * passed a reload of it, which the 6.1 verifier knows nothing of ("R3 min value is outside of
 * the allowed memory range").
 */
static __noinline int cw_dns_load(struct __sk_buff *skb, __u32 off, __u8 *dst, __u32 len)
{
	if (len < CW_DNS_HEADER_LEN || len > CW_DNS_MSG_MAX)
		return -1;
	return bpf_skb_load_bytes(skb, off, dst, len);
}

/*
 * Parse the DNS message of len bytes at offset off of the packet. Returns the result (its status
 * says what the message is), valid until cw_dns_release(), which the caller must call once done
 * with it; or NULL, with nothing to release, when this run interrupted another parse on this CPU
 * (nothing parsed: the caller counts it and learns nothing).
 */
static __always_inline struct cw_dns_result *cw_dns_parse_skb(struct __sk_buff *skb, __u32 off,
							      __u32 len)
{
	struct cw_dns_loop_ctx loop;
	struct cw_dns_scratch *s;
	struct cw_dns_slot *slot;
	__u32 zero = 0;

	slot = bpf_map_lookup_elem(&cw_dns_scratch, &zero);
	if (!slot)
		return NULL; /* cannot happen: an array always has element 0 */
	if (__sync_fetch_and_add(&slot->busy, 1)) {
		__sync_fetch_and_add(&slot->busy, -1);
		return NULL;
	}
	s = &slot->s;
	if (!cw_dns_begin(s, len))
		return &s->res;
	if (cw_dns_load(skb, off, s->msg, len) < 0) {
		cw_dns_stop(s, CW_DNS_MALFORMED, CW_DNS_R_SHORT);
		return &s->res;
	}
	cw_dns_header(s);
	loop.s = s;
	bpf_loop(CW_DNS_MAX_STEPS, cw_dns_loop_step, &loop, 0);
	cw_dns_finish(s);
	return &s->res;
}

/* The end of the use of a result of cw_dns_parse_skb() (not after a NULL one). */
static __always_inline void cw_dns_release(void)
{
	struct cw_dns_slot *slot;
	__u32 zero = 0;

	slot = bpf_map_lookup_elem(&cw_dns_scratch, &zero);
	if (slot)
		__sync_fetch_and_add(&slot->busy, -1);
}

/*
 * DNS over TCP: the segment payload at off, of len bytes, must be exactly one message after its
 * 2-byte length. Sets *ret_off and *ret_len to the message and returns 0, or -1 when the segment
 * holds anything else (part of a message, several): not parsed, the caller counts it.
 */
static __always_inline int cw_dns_tcp_msg(struct __sk_buff *skb, __u32 off, __u32 len,
					  __u32 *ret_off, __u32 *ret_len)
{
	__be16 msg_len;

	if (len < 2 || bpf_skb_load_bytes(skb, off, &msg_len, sizeof(msg_len)) < 0)
		return -1;
	if ((__u32)bpf_ntohs(msg_len) + 2 != len)
		return -1;
	*ret_off = off + 2;
	*ret_len = len - 2;
	return 0;
}

#endif /* CW_DNS_BPF_H */
