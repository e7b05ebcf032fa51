/* SPDX-License-Identifier: GPL-2.0-only */
/* What tests/dns/dns_parse.bpf.c writes for tests/dns/test_dns_kernel.c: where the message was, and
 * the result (dns_res). */
#ifndef DNS_TEST_H
#define DNS_TEST_H

#include "cw_dns.h"

/* dns_test_out.located */
#define DNS_TEST_PARSED	     1 /* a UDP or TCP DNS message was found and parsed */
#define DNS_TEST_NOT_DNS     2 /* not IPv4/IPv6 + UDP/TCP: nothing parsed */
#define DNS_TEST_TCP_FRAMING 3 /* a TCP segment that is not exactly one message */
#define DNS_TEST_BUSY	     4 /* the scratch was in use: no result */

struct dns_test_out {
	__u32 located; /* DNS_TEST_* */
	__u32 runs;    /* times the program ran (a run that wrote nothing shows) */
};
_Static_assert(sizeof(struct dns_test_out) == 8, "dns_test_out layout");

#endif /* DNS_TEST_H */
