/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Crafted DNS responses with the result the rules of bpf/cw_dns.bpf.h give, shared by the test of
 * the userspace twin (tests/dns/test_dns.c) and of the kernel parser (tests/dns/test_dns_kernel.c).
 * The checks use cmocka's assertions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cw_dns.h"

struct dns_msg {
	uint8_t b[2 * CW_DNS_MSG_MAX];
	size_t len;
};

struct dns_case {
	const char *name;
	void (*build)(struct dns_msg *m);
	void (*check)(const struct dns_msg *m, const struct cw_dns_result *r);
};

extern const struct dns_case dns_cases[];
extern const size_t dns_cases_count;

/* A valid response with every kind of record (CNAME chain, A, AAAA, others, additional). */
void dns_build_rich(struct dns_msg *m);
/*
 * The result for the first len bytes of that response (full: its result): malformed while the
 * cut falls before the end of the answer section, the full result from there on (the additional
 * section is never read).
 */
void dns_check_prefix(const struct dns_msg *full, const struct cw_dns_result *full_r, size_t len,
		      const struct cw_dns_result *r);
