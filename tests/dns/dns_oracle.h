/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agreement check of the DNS parser with libresolv (ns_initparse, ns_parserr,
 * ns_name_uncompress), for tests/dns/test_dns.c and tests/fuzz/fuzz_dns.c.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cw_dns.h"

/*
 * Check the result r of the parser on msg against what libresolv reads of it: where libresolv
 * accepts the message, the parser gives the same header verdict, question, and the answers the
 * rules of bpf/cw_dns.bpf.h pick out of libresolv's records (owners, types, TTLs, addresses,
 * CNAME targets, counts of what was skipped), or refuses it for one of its deliberate stricter
 * rules (DNS_ORACLE_STRICTER). Returns 0, or -1 with the disagreement in why.
 * *ret_libresolv_ok (may be NULL): whether libresolv accepted the message.
 */
int dns_oracle_check(const uint8_t *msg, size_t len, const struct cw_dns_result *r,
		     int *ret_libresolv_ok, char *why, size_t size);
