// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target: the DNS response parser (userspace/lib/dns.c, the twin of the kernel's) on any
 * bytes. No crash, no read outside the message (ASan), and agreement with libresolv wherever it
 * reads the message (tests/dns/dns_oracle.c): same question, same learned records, or a refusal
 * by one of the parser's deliberate stricter rules. A learned question is also the name that
 * dns_name_from_text() hashes the same way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dns_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cw_dns_result r;
	char why[256], text[1024];
	struct dns_name n;

	if (dns_parse(data, size, &r) < 0)
		abort();
	if (dns_oracle_check(data, size, &r, NULL, why, sizeof(why)) < 0) {
		fprintf(stderr, "disagreement with libresolv: %s\n", why);
		abort();
	}
	if (r.status != CW_DNS_OK) {
		if (r.n_answers)
			abort(); /* nothing is learned from what is not learnable */
		return 0;
	}
	if (r.n_answers > CW_DNS_MAX_ANSWERS || r.qlabels > CW_DNS_MAX_LABELS ||
	    r.qname_len > CW_DNS_MAX_NAME)
		abort();
	if (dns_name_to_text(r.qname, r.qname_len, text, sizeof(text)) < 0)
		abort();
	/* Names of letters, digits, '-' and '_' read back to the same hashes. */
	if (dns_name_from_text(text, &n) == 0 &&
	    (n.hash != r.qname_hash || n.wire_len != r.qname_len ||
	     memcmp(n.suffix_hash, r.qsuffix_hash, sizeof(n.suffix_hash[0]) * n.labels)))
		abort();
	return 0;
}
