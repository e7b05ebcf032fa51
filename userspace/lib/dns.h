/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The userspace twin of the BPF DNS response parser: the same parser (bpf/cw_dns_parse.h) on a
 * message in memory, with the same result (struct cw_dns_result, bpf/cw_dns.h), for
 * `carwall explain`, the agent's events and the tests; and host names in text as the parser
 * hashes them. What is learned and the limits: bpf/cw_dns.bpf.h.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "cw_dns.h"

/*
 * Parse the DNS message msg of len bytes (a UDP payload, or a TCP message without its length).
 * *ret is filled in every case, its status says what the message is. Returns 0, or -EINVAL for a
 * NULL argument, -ENOMEM.
 */
int dns_parse(const void *msg, size_t len, struct cw_dns_result *ret);

/* A host name as the parser sees it. */
struct dns_name {
	uint8_t wire[CW_DNS_MAX_NAME + 1]; /* canonical wire form: lowercase, root byte included */
	unsigned wire_len;
	unsigned labels;
	uint64_t hash;				 /* == suffix_hash[labels - 1]; the basis for "." */
	uint64_t suffix_hash[CW_DNS_MAX_LABELS]; /* [i]: hash of the last i + 1 labels */
};

/*
 * A host name in text ("tiles.oem.example", a final dot allowed, "." the root), in the ASCII form
 * of IDNA: labels of letters, digits, '-' and '_', 1 to 63 bytes. Returns 0, -EINVAL (empty
 * label, another character, NULL), -ENAMETOOLONG (over CW_DNS_MAX_NAME in wire form) or -E2BIG
 * (more than CW_DNS_MAX_LABELS labels: the parser could not learn it).
 */
int dns_name_from_text(const char *text, struct dns_name *ret);

/*
 * A name in wire form (uncompressed: qname of a result) as text, without the final dot ("." for
 * the root); a byte other than a letter, digit, '-' or '_' is written \DDD. Returns the length
 * written, or -EINVAL (not a wire name of len bytes), -ENOSPC (size too small).
 */
int dns_name_to_text(const uint8_t *wire, size_t len, char *buf, size_t size);

/* Short names for the enums of bpf/cw_dns.h ("ok", "truncated", "pointer"...); "?" if unknown. */
const char *dns_status_str(unsigned status);
const char *dns_reason_str(unsigned reason);
