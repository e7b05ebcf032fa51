// SPDX-License-Identifier: GPL-2.0-only
/* See dns_oracle.h. An independent reading of the rules: libresolv's records, exact names. */
#include <arpa/nameser.h>
#include <errno.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "dns_oracle.h"

struct oracle_name {
	uint8_t wire[NS_MAXCDNAME + 1];
	unsigned len, labels;
};

static int disagree(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int disagree(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return -1;
}

/* Text from libresolv to canonical wire form (lowercase), with its label count. */
static int name_from_text(const char *text, struct oracle_name *n)
{
	int r = ns_name_pton(text, n->wire, sizeof(n->wire));
	unsigned pos = 0;

	if (r < 0)
		return -EINVAL;
	n->labels = 0;
	while (n->wire[pos]) {
		unsigned l = n->wire[pos];

		for (unsigned i = 1; i <= l; i++) {
			uint8_t c = n->wire[pos + i];

			n->wire[pos + i] = c >= 'A' && c <= 'Z' ? c + 32 : c;
		}
		pos += l + 1;
		n->labels++;
	}
	n->len = pos + 1;
	return 0;
}

/* The hash of bpf/cw_dns.h, written again from its description. */
static uint64_t name_hash(const struct oracle_name *n)
{
	unsigned off[128], k = 0, pos = 0;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n->wire[pos] && k < 128) {
		off[k++] = pos;
		pos += n->wire[pos] + 1;
	}
	while (k-- > 0)
		for (unsigned i = 0; i <= n->wire[off[k]]; i++)
			h = (h ^ n->wire[off[k] + i]) * 0x100000001b3ULL;
	return h;
}

static bool same_name(const struct oracle_name *a, const struct oracle_name *b)
{
	return a->len == b->len && !memcmp(a->wire, b->wire, a->len);
}

/*
 * libresolv guesses at compression loops: a name whose reading looks at as many bytes as the
 * message has (labels read again through pointers included) is refused as one (glibc's
 * ns_name_unpack). A name of backward pointers only (the parser's rule) re-reads earlier labels
 * and can pass that count in a short message without any loop. So where libresolv refuses a
 * name, it reads it again in a copy of the message followed by LOOP_GUESS_PAD bytes of 0xff:
 * the guess is then that much further off, and any read past the real end meets 0xff, a pointer
 * past the copy's end, which libresolv refuses. A name read there is well formed: returns the
 * bytes it takes at ptr (as ns_name_uncompress()), or -1 for a name malformed indeed.
 */
#define LOOP_GUESS_PAD 1024

static int uncompress(const uint8_t *msg, size_t len, const uint8_t *ptr, char *text, size_t size)
{
	uint8_t copy[CW_DNS_MSG_MAX + LOOP_GUESS_PAD];
	int used = ns_name_uncompress(msg, msg + len, ptr, text, size);

	if (used >= 0 || len > CW_DNS_MSG_MAX || ptr < msg || ptr >= msg + len)
		return used;
	memcpy(copy, msg, len);
	memset(copy + len, 0xff, LOOP_GUESS_PAD);
	return ns_name_uncompress(copy, copy + len + LOOP_GUESS_PAD, copy + (ptr - msg), text, size);
}

/* ns_parserr() of the answer section's record rrnum, past libresolv's loop guess (above) for its
 * owner name. */
static int parse_answer(ns_msg *h, const uint8_t *msg, size_t len, unsigned rrnum, ns_rr *rr)
{
	const uint8_t *p;
	int used;

	if (ns_parserr(h, ns_s_an, (int)rrnum, rr) == 0)
		return 0;
	/* ns_parserr() stopped at the start of that record (its _msg_ptr, for record _rrnum). */
	if (h->_rrnum != (int)rrnum || !h->_msg_ptr)
		return -1;
	p = h->_msg_ptr;
	used = uncompress(msg, len, p, rr->name, sizeof(rr->name));
	if (used < 0)
		return -1;
	p += used;
	if (p + NS_RRFIXEDSZ > msg + len)
		return -1;
	NS_GET16(rr->type, p);
	NS_GET16(rr->rr_class, p);
	NS_GET32(rr->ttl, p);
	NS_GET16(rr->rdlength, p);
	if (p + rr->rdlength > msg + len)
		return -1;
	rr->rdata = p;
	return 0;
}

/*
 * The parser refused a name that libresolv reads: allowed for its deliberate rules on compression
 * (libresolv follows pointers forward too, and any number of them while it finds no loop).
 * Its other stricter rules (A and AAAA data lengths, a CNAME's data filled by its target) are
 * checked record by record below.
 */
static bool stricter_rule(const struct cw_dns_result *r)
{
	return r->status == CW_DNS_MALFORMED &&
	       (r->reason == CW_DNS_R_POINTER || r->reason == CW_DNS_R_JUMPS);
}

int dns_oracle_check(const uint8_t *msg, size_t len, const struct cw_dns_result *r,
		     int *ret_libresolv_ok, char *why, size_t size)
{
	struct oracle_name chain[CW_DNS_MAX_ANSWERS + 1];
	unsigned nchain = 0, n_answers = 0, sk_owner = 0, sk_type = 0, sk_limit = 0, sk_long = 0;
	unsigned status, nrec, expect_reason = 0;
	struct oracle_name q;
	ns_msg h;
	ns_rr rr;

	if (ret_libresolv_ok)
		*ret_libresolv_ok = 0;
	if (len > CW_DNS_MSG_MAX) {
		if (r->status != CW_DNS_UNLEARNABLE || r->reason != CW_DNS_R_TOO_BIG)
			return disagree(why, size, "%zu bytes: not too big", len);
		return 0;
	}
	if (ns_initparse(msg, (int)len, &h) < 0)
		return 0; /* libresolv refuses it: nothing to agree on */
	if (ret_libresolv_ok)
		*ret_libresolv_ok = 1;

	if (r->id != ns_msg_id(h) || r->qdcount != ns_msg_count(h, ns_s_qd) ||
	    r->ancount != ns_msg_count(h, ns_s_an) || r->nscount != ns_msg_count(h, ns_s_ns) ||
	    r->arcount != ns_msg_count(h, ns_s_ar))
		return disagree(why, size, "header id or counts differ");
	/* What the header alone says. */
	if (!ns_msg_getflag(h, ns_f_qr))
		status = CW_DNS_NOT_RESPONSE;
	else if (ns_msg_getflag(h, ns_f_opcode) != ns_o_query)
		status = CW_DNS_UNLEARNABLE;
	else if (ns_msg_getflag(h, ns_f_tc))
		status = CW_DNS_TRUNCATED;
	else if (ns_msg_getflag(h, ns_f_rcode) != ns_r_noerror)
		status = CW_DNS_RCODE;
	else if (ns_msg_count(h, ns_s_qd) != 1)
		status = CW_DNS_UNLEARNABLE;
	else
		status = CW_DNS_OK;
	if (status != CW_DNS_OK) {
		if (r->status != status)
			return disagree(why, size, "header: status %u, libresolv says %u",
					r->status, status);
		return 0;
	}

	/* The question. */
	if (ns_parserr(&h, ns_s_qd, 0, &rr) < 0) {
		if (r->status != CW_DNS_MALFORMED)
			return disagree(why, size, "question unreadable by libresolv, status %u",
					r->status);
		return 0;
	}
	if (stricter_rule(r))
		return 0;
	if (name_from_text(ns_rr_name(rr), &q) < 0)
		return disagree(why, size, "libresolv's question name does not convert back");
	if (q.labels > CW_DNS_MAX_LABELS) {
		if (r->status != CW_DNS_UNLEARNABLE || r->reason != CW_DNS_R_QNAME_LABELS)
			return disagree(why, size, "question of %u labels: status %u reason %u",
					q.labels, r->status, r->reason);
		return 0;
	}
	if (r->qtype != ns_rr_type(rr) || r->qclass != ns_rr_class(rr))
		return disagree(why, size, "question type/class %u/%u, libresolv %u/%u", r->qtype,
				r->qclass, ns_rr_type(rr), ns_rr_class(rr));
	if (r->qname_len != q.len || r->qlabels != q.labels || memcmp(r->qname, q.wire, q.len))
		return disagree(why, size,
				"question name differs (%u bytes, %u labels; libresolv %s)",
				r->qname_len, r->qlabels, ns_rr_name(rr));
	if (r->qname_hash != name_hash(&q))
		return disagree(why, size, "question hash differs");
	if (ns_rr_class(rr) != ns_c_in) {
		if (r->status != CW_DNS_UNLEARNABLE || r->reason != CW_DNS_R_QCLASS)
			return disagree(why, size, "class %u question not refused",
					ns_rr_class(rr));
		return 0;
	}
	if (ns_rr_type(rr) != ns_t_a && ns_rr_type(rr) != ns_t_aaaa) {
		if (r->status != CW_DNS_UNLEARNABLE || r->reason != CW_DNS_R_QTYPE)
			return disagree(why, size, "type %u question not refused", ns_rr_type(rr));
		return 0;
	}
	chain[nchain++] = q;

	/*
	 * The answers, by the rules, on libresolv's records. Where a record breaks one of the
	 * parser's rules, the parser must refuse the message for that reason (expect_reason;
	 * CW_DNS_R_COUNT_: any malformed) and nothing after it matters.
	 */
	nrec = ns_msg_count(h, ns_s_an);
	if (nrec > CW_DNS_MAX_RECORDS)
		nrec = CW_DNS_MAX_RECORDS;
	for (unsigned i = 0; i < nrec && !expect_reason; i++) {
		const struct cw_dns_answer *a = &r->answers[n_answers];
		struct oracle_name owner, target;
		bool owned = false;
		unsigned type, rdlen;
		uint32_t ttl;

		if (parse_answer(&h, msg, len, i, &rr) < 0) {
			expect_reason = CW_DNS_R_COUNT_;
			break;
		}
		if (name_from_text(ns_rr_name(rr), &owner) < 0)
			return disagree(why, size, "libresolv's owner %u does not convert back", i);
		type = ns_rr_type(rr);
		rdlen = ns_rr_rdlen(rr);
		ttl = ns_rr_ttl(rr) & 0x80000000u ? 0 : ns_rr_ttl(rr);
		if (ns_rr_class(rr) != ns_c_in ||
		    (type != ns_t_a && type != ns_t_aaaa && type != ns_t_cname)) {
			sk_type++;
			continue;
		}
		if ((type == ns_t_a && rdlen != 4) || (type == ns_t_aaaa && rdlen != 16)) {
			expect_reason = CW_DNS_R_RDLENGTH;
			break;
		}
		for (unsigned k = 0; k < nchain; k++)
			owned = owned || same_name(&owner, &chain[k]);
		if (!owned) {
			sk_owner++;
			continue;
		}
		if (n_answers >= CW_DNS_MAX_ANSWERS) {
			sk_limit++;
			continue;
		}
		if (type == ns_t_cname) {
			char text[NS_MAXDNAME];
			int used = uncompress(msg, len, ns_rr_rdata(rr), text, sizeof(text));

			if (used < 0) {
				expect_reason = CW_DNS_R_COUNT_;
				break;
			}
			if ((unsigned)used != rdlen) {
				expect_reason = CW_DNS_R_CNAME_RDATA;
				break;
			}
			if (name_from_text(text, &target) < 0)
				return disagree(why, size,
						"answer %u: target does not convert back", i);
			if (target.labels > CW_DNS_MAX_LABELS) {
				sk_long++;
				continue;
			}
		}
		n_answers++;
		if (type == ns_t_cname)
			chain[nchain++] = target;
		if (r->status != CW_DNS_OK)
			continue; /* a later record may explain it */
		if (n_answers > r->n_answers)
			return disagree(why, size, "answer %u not learned", i);
		if (a->type != type || a->ttl != ttl || a->owner_hash != name_hash(&owner))
			return disagree(why, size, "answer %u: type %u ttl %u, libresolv %u %u", i,
					a->type, a->ttl, type, ttl);
		if (type == ns_t_cname) {
			static const uint8_t zero[16];

			if (a->target_hash != name_hash(&target) || memcmp(a->addr, zero, 16))
				return disagree(why, size, "answer %u: CNAME target differs", i);
		} else {
			uint8_t addr[16] = {};

			memcpy(addr, ns_rr_rdata(rr), rdlen);
			if (memcmp(a->addr, addr, 16) || a->target_hash)
				return disagree(why, size, "answer %u: address differs", i);
		}
	}
	if (expect_reason) {
		if (r->status != CW_DNS_MALFORMED ||
		    (expect_reason != CW_DNS_R_COUNT_ && r->reason != expect_reason))
			return disagree(why, size, "status %u reason %u, expected malformed (%u)",
					r->status, r->reason, expect_reason);
		return 0;
	}
	if (r->status != CW_DNS_OK)
		return disagree(why, size, "status %u reason %u where libresolv reads all",
				r->status, r->reason);
	if (r->n_answers != n_answers || r->skipped_owner != sk_owner ||
	    r->skipped_type != sk_type || r->skipped_limit != sk_limit ||
	    r->skipped_long != sk_long || r->unread != ns_msg_count(h, ns_s_an) - nrec)
		return disagree(
		    why, size,
		    "counts: answers %u/%u owner %u/%u type %u/%u limit %u/%u long %u/%u",
		    r->n_answers, n_answers, r->skipped_owner, sk_owner, r->skipped_type, sk_type,
		    r->skipped_limit, sk_limit, r->skipped_long, sk_long);
	return 0;
}
