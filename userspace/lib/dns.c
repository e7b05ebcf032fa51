// SPDX-License-Identifier: GPL-2.0-only
/* The userspace twin of the BPF DNS response parser; see dns.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw_dns_parse.h"
#include "dns.h"
#include "util.h"

int dns_parse(const void *msg, size_t len, struct cw_dns_result *ret)
{
	_cleanup_free_ struct cw_dns_scratch *s = NULL;

	if (!msg || !ret)
		return -EINVAL;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	/* As the BPF side: the length as a 32-bit value; anything above the maximum is too big. */
	if (cw_dns_begin(s, len > CW_DNS_MSG_MAX ? CW_DNS_MSG_MAX + 1 : (__u32)len)) {
		memcpy(s->msg, msg, len);
		cw_dns_header(s);
		for (unsigned i = 0; i < CW_DNS_MAX_STEPS; i++)
			if (cw_dns_step(s))
				break;
		cw_dns_finish(s);
	}
	*ret = s->res;
	return 0;
}

static bool dns_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int dns_name_from_text(const char *text, struct dns_name *ret)
{
	struct dns_name n = {};
	unsigned lab_off[CW_DNS_MAX_LABELS];
	size_t len;
	uint64_t h;

	if (!text || !ret || !*text)
		return -EINVAL;
	len = strlen(text);
	if (len > 1 && text[len - 1] == '.')
		len--;
	if (len == 1 && text[0] == '.')
		len = 0;
	for (size_t i = 0; i < len;) {
		size_t j = i;

		while (j < len && text[j] != '.') {
			if (!dns_label_char(text[j]))
				return -EINVAL;
			j++;
		}
		if (j == i || j - i > CW_DNS_MAX_LABEL)
			return -EINVAL;
		if (n.wire_len + 1 + (j - i) + 1 > CW_DNS_MAX_NAME)
			return -ENAMETOOLONG;
		if (n.labels >= CW_DNS_MAX_LABELS)
			return -E2BIG;
		lab_off[n.labels++] = n.wire_len;
		n.wire[n.wire_len++] = j - i;
		for (; i < j; i++)
			n.wire[n.wire_len++] = cw_dns_lower(text[i]);
		if (j < len && j + 1 == len)
			return -EINVAL; /* "a..": an empty label before the final dot */
		i = j + 1;
	}
	n.wire[n.wire_len++] = 0;

	/* The hash of bpf/cw_dns.h: labels from the right, each its length and its bytes. */
	h = CW_DNS_HASH_BASIS;
	for (unsigned k = n.labels; k-- > 0;) {
		const uint8_t *l = &n.wire[lab_off[k]];

		for (unsigned b = 0; b <= l[0]; b++)
			h = cw_dns_hash_byte(h, l[b]);
		n.suffix_hash[n.labels - 1 - k] = h;
	}
	n.hash = h;
	*ret = n;
	return 0;
}

int dns_name_to_text(const uint8_t *wire, size_t len, char *buf, size_t size)
{
	size_t pos = 0, out = 0;

	if (!wire || !buf || !size)
		return -EINVAL;
	while (pos < len && wire[pos]) {
		unsigned n = wire[pos++];

		if (n > CW_DNS_MAX_LABEL || pos + n >= len)
			return -EINVAL;
		if (out && out + 1 < size)
			buf[out] = '.';
		out += out ? 1 : 0;
		for (unsigned i = 0; i < n; i++, pos++) {
			unsigned char c = wire[pos];

			if (dns_label_char(c)) {
				if (out + 1 < size)
					buf[out] = c;
				out++;
			} else {
				if (out + 5 < size)
					snprintf(buf + out, 5, "\\%03u", c);
				out += 4;
			}
		}
	}
	if (pos + 1 != len)
		return -EINVAL; /* no root byte at the end, or bytes after it */
	if (out == 0)
		buf[out++] = '.';
	if (out >= size)
		return -ENOSPC;
	buf[out] = '\0';
	return (int)out;
}

const char *dns_status_str(unsigned status)
{
	static const char *const names[] = {
	    [CW_DNS_NONE] = "none",
	    [CW_DNS_OK] = "ok",
	    [CW_DNS_NOT_RESPONSE] = "not-response",
	    [CW_DNS_TRUNCATED] = "truncated",
	    [CW_DNS_RCODE] = "rcode",
	    [CW_DNS_UNLEARNABLE] = "unlearnable",
	    [CW_DNS_MALFORMED] = "malformed",
	};

	return status < ARRAY_SIZE(names) && names[status] ? names[status] : "?";
}

const char *dns_reason_str(unsigned reason)
{
	static const char *const names[] = {
	    [CW_DNS_R_NONE] = "none",
	    [CW_DNS_R_TOO_BIG] = "too-big",
	    [CW_DNS_R_OPCODE] = "opcode",
	    [CW_DNS_R_QDCOUNT] = "qdcount",
	    [CW_DNS_R_QCLASS] = "qclass",
	    [CW_DNS_R_QTYPE] = "qtype",
	    [CW_DNS_R_QNAME_LABELS] = "qname-labels",
	    [CW_DNS_R_SHORT] = "short",
	    [CW_DNS_R_NAME_OVERRUN] = "name-overrun",
	    [CW_DNS_R_LABEL_TYPE] = "label-type",
	    [CW_DNS_R_NAME_TOO_LONG] = "name-too-long",
	    [CW_DNS_R_POINTER] = "pointer",
	    [CW_DNS_R_JUMPS] = "jumps",
	    [CW_DNS_R_QUESTION_OVERRUN] = "question-overrun",
	    [CW_DNS_R_RR_OVERRUN] = "rr-overrun",
	    [CW_DNS_R_RDATA_OVERRUN] = "rdata-overrun",
	    [CW_DNS_R_RDLENGTH] = "rdlength",
	    [CW_DNS_R_CNAME_RDATA] = "cname-rdata",
	    [CW_DNS_R_STEPS] = "steps",
	};
	_Static_assert(ARRAY_SIZE(names) == CW_DNS_R_COUNT_, "a name for every reason");

	return reason < ARRAY_SIZE(names) && names[reason] ? names[reason] : "?";
}
