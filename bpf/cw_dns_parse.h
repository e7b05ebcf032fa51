/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The DNS response parser, one source for both sides: the BPF programs run it through
 * bpf/cw_dns.bpf.h on a copy of the message in a per-CPU map value, userspace/lib/dns.c on a copy
 * in memory, and both get the same struct cw_dns_result. Plain C, no helper calls.
 *
 * It is a state machine of small steps (one label of a name, one label of a hash, one record's
 * fixed part), driven by bpf_loop() in BPF and by a for loop in userspace, so the verifier checks
 * one step and never unrolls the message. Every read is checked against the message length, then
 * masked with CW_DNS_MSG_MAX - 1 (a no-op for the checked offset, the bound the verifier needs).
 * CW_DNS_MAX_STEPS covers the longest possible message; running out is reported as malformed
 * by cw_dns_finish(), which both drivers call after the last step.
 * The rules it applies are listed in bpf/cw_dns.bpf.h.
 */
#ifndef CW_DNS_PARSE_H
#define CW_DNS_PARSE_H

#include "cw_dns.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Keep clang from unrolling a loop the verifier handles as it is. */
#ifdef __clang__
#define CW_DNS_NO_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define CW_DNS_NO_UNROLL
#endif

/* The most labels a name of CW_DNS_MAX_NAME bytes can have (each takes 2 bytes at least). */
#define CW_DNS_NAME_MAX_LABELS ((CW_DNS_MAX_NAME - 1) / 2)
/* Steps: walking a name (a label or pointer each, then the root), hashing it (a label each). */
#define CW_DNS_WALK_STEPS (CW_DNS_NAME_MAX_LABELS + CW_DNS_MAX_JUMPS + 1)
#define CW_DNS_NAME_STEPS (CW_DNS_WALK_STEPS + CW_DNS_MAX_LABELS)
/* The question (name, type and class); each record (owner, fixed part, CNAME target, its end). */
#define CW_DNS_QUESTION_STEPS (CW_DNS_NAME_STEPS + 1)
#define CW_DNS_RECORD_STEPS   (2 * CW_DNS_NAME_STEPS + 2)
#define CW_DNS_MAX_STEPS      (CW_DNS_QUESTION_STEPS + CW_DNS_MAX_RECORDS * CW_DNS_RECORD_STEPS + 1)

/* Names the chain can hold: the question and the target of every CNAME learned. */
#define CW_DNS_MAX_CHAIN   (CW_DNS_MAX_ANSWERS + 1)
#define CW_DNS_CHAIN_SLOTS 32 /* a power of two above CW_DNS_MAX_CHAIN: indexes are masked */

enum cw_dns_phase {
	CW_DNS_P_QNAME = 0,   /* walking the question name */
	CW_DNS_P_QHASH,	      /* hashing it, and writing its canonical form */
	CW_DNS_P_QFIXED,      /* question type and class */
	CW_DNS_P_OWNER,	      /* walking a record's owner */
	CW_DNS_P_OWNER_HASH,  /* hashing it */
	CW_DNS_P_RR,	      /* the record's type, class, TTL, data */
	CW_DNS_P_TARGET,      /* walking a CNAME's target */
	CW_DNS_P_TARGET_HASH, /* hashing it */
	CW_DNS_P_TARGET_DONE, /* learning the CNAME */
	CW_DNS_P_DONE,
};

/* One name being read: where its labels are (the first CW_DNS_MAX_LABELS), then its hash. */
struct cw_dns_walk {
	__u16 pos;	/* next byte to read */
	__u16 seg;	/* start of the current label sequence: a pointer must point before it */
	__u16 end;	/* offset after the name where it starts (0 until known) */
	__u16 wire_len; /* uncompressed length so far */
	__u16 labels;	/* labels seen (may exceed CW_DNS_MAX_LABELS: then not hashed) */
	__u16 jumps;	/* pointers followed */
	__u16 hashed;	/* labels hashed so far, from the right */
	__u16 tail;	/* bytes of the canonical form written from the right (question only) */
	__u64 hash;
	__u16 lab_off[CW_DNS_MAX_LABELS];
	__u8 lab_len[CW_DNS_MAX_LABELS];
};
_Static_assert(sizeof(struct cw_dns_walk) == 120, "cw_dns_walk layout");

struct cw_dns_state {
	__u32 len;	/* message length */
	__u16 phase;	/* enum cw_dns_phase */
	__u16 rr;	/* answer records read */
	__u16 rr_total; /* answer records to read */
	__u16 nchain;	/* names in chain[] */
	__u16 rdata;	/* the current record's data: start and end */
	__u16 rdata_end;
	__u32 ttl; /* the current record's TTL */
	__u32 pad;
	__u64 owner_hash; /* the current record's owner, when owned by the chain */
	__u64 chain[CW_DNS_CHAIN_SLOTS];
	struct cw_dns_walk w;
};

/* All of it in one per-CPU map value (BPF) or one allocation (userspace). */
struct cw_dns_scratch {
	struct cw_dns_result res;
	struct cw_dns_state st;
	__u8 msg[CW_DNS_MSG_MAX];
};

static __always_inline __u8 cw_dns_byte(const struct cw_dns_scratch *s, __u32 off)
{
	return s->msg[off & (CW_DNS_MSG_MAX - 1)];
}

static __always_inline __u16 cw_dns_u16(const struct cw_dns_scratch *s, __u32 off)
{
	return (__u16)(cw_dns_byte(s, off) << 8 | cw_dns_byte(s, off + 1));
}

static __always_inline __u32 cw_dns_u32(const struct cw_dns_scratch *s, __u32 off)
{
	return (__u32)cw_dns_u16(s, off) << 16 | cw_dns_u16(s, off + 2);
}

/* The end of the parse. A message that is not learnable teaches nothing: no answers. */
static __always_inline void cw_dns_stop(struct cw_dns_scratch *s, __u8 status, __u8 reason)
{
	if (status != CW_DNS_OK)
		s->res.n_answers = 0;
	s->res.status = status;
	s->res.reason = reason;
	s->st.phase = CW_DNS_P_DONE;
}

/*
 * Zero n bytes, n a multiple of 8. clang's BPF target expands no memset this long, and would
 * turn a plain loop back into one: the stores are volatile.
 */
static __always_inline void cw_dns_zero(void *p, __u32 n)
{
	volatile __u64 *q = p;

	CW_DNS_NO_UNROLL
	for (__u32 i = 0; i < n / 8; i++)
		q[i] = 0;
}

/*
 * Start a parse of a message of len bytes. True: copy the message into s->msg, then call
 * cw_dns_header(); false: the result is final (too short or too long to copy).
 */
static __always_inline int cw_dns_begin(struct cw_dns_scratch *s, __u32 len)
{
	_Static_assert(sizeof(s->res) % 8 == 0 && sizeof(s->st) % 8 == 0, "whole words");
	cw_dns_zero(&s->res, sizeof(s->res));
	cw_dns_zero(&s->st, sizeof(s->st));
	s->st.len = len;
	if (len < CW_DNS_HEADER_LEN) {
		cw_dns_stop(s, CW_DNS_MALFORMED, CW_DNS_R_SHORT);
		return 0;
	}
	if (len > CW_DNS_MSG_MAX) {
		cw_dns_stop(s, CW_DNS_UNLEARNABLE, CW_DNS_R_TOO_BIG);
		return 0;
	}
	return 1;
}

static __always_inline void cw_dns_walk_start(struct cw_dns_walk *w, __u32 off)
{
	__builtin_memset(w, 0, sizeof(*w));
	w->pos = off;
	w->seg = off;
	w->hash = CW_DNS_HASH_BASIS;
}

/* The header of the copied message: what it is, and where the steps begin. */
static __always_inline void cw_dns_header(struct cw_dns_scratch *s)
{
	struct cw_dns_result *r = &s->res;
	__u16 flags;

	r->id = cw_dns_u16(s, 0);
	r->flags = flags = cw_dns_u16(s, 2);
	r->qdcount = cw_dns_u16(s, 4);
	r->ancount = cw_dns_u16(s, 6);
	r->nscount = cw_dns_u16(s, 8);
	r->arcount = cw_dns_u16(s, 10);
	r->rcode = flags & 0xf;
	if (!(flags & 0x8000))
		return cw_dns_stop(s, CW_DNS_NOT_RESPONSE, CW_DNS_R_NONE);
	if ((flags >> 11) & 0xf)
		return cw_dns_stop(s, CW_DNS_UNLEARNABLE, CW_DNS_R_OPCODE);
	if (flags & 0x0200)
		return cw_dns_stop(s, CW_DNS_TRUNCATED, CW_DNS_R_NONE);
	if (r->rcode)
		return cw_dns_stop(s, CW_DNS_RCODE, CW_DNS_R_NONE);
	if (r->qdcount != 1)
		return cw_dns_stop(s, CW_DNS_UNLEARNABLE, CW_DNS_R_QDCOUNT);
	if (r->ancount > CW_DNS_MAX_RECORDS) {
		s->st.rr_total = CW_DNS_MAX_RECORDS;
		r->unread = r->ancount - CW_DNS_MAX_RECORDS;
	} else {
		s->st.rr_total = r->ancount;
	}
	cw_dns_walk_start(&s->st.w, CW_DNS_HEADER_LEN);
	s->st.phase = CW_DNS_P_QNAME;
}

/*
 * One step of walking a name: a label, a compression pointer or the root.
 * Returns 1 at the root, 0 to go on, or -reason.
 */
static __always_inline int cw_dns_walk_step(struct cw_dns_scratch *s, struct cw_dns_walk *w)
{
	__u32 pos = w->pos, len = s->st.len, c;

	if (pos >= len)
		return -CW_DNS_R_NAME_OVERRUN;
	c = cw_dns_byte(s, pos);
	if (c == 0) {
		w->wire_len += 1;
		if (!w->end)
			w->end = pos + 1;
		return 1;
	}
	if ((c & 0xc0) == 0xc0) {
		__u32 target;

		if (pos + 1 >= len)
			return -CW_DNS_R_NAME_OVERRUN;
		target = (c & 0x3f) << 8 | cw_dns_byte(s, pos + 1);
		/* Backwards only, and before every byte of this name read so far: no loop. */
		if (target >= w->seg)
			return -CW_DNS_R_POINTER;
		if (++w->jumps > CW_DNS_MAX_JUMPS)
			return -CW_DNS_R_JUMPS;
		if (!w->end)
			w->end = pos + 2;
		w->pos = target;
		w->seg = target;
		return 0;
	}
	if (c > CW_DNS_MAX_LABEL)
		return -CW_DNS_R_LABEL_TYPE;
	if (pos + 1 + c > len)
		return -CW_DNS_R_NAME_OVERRUN;
	/* This label, and the root byte still to come. */
	if (w->wire_len + c + 1 + 1 > CW_DNS_MAX_NAME)
		return -CW_DNS_R_NAME_TOO_LONG;
	if (w->labels < CW_DNS_MAX_LABELS) {
		__u32 i = w->labels & (CW_DNS_MAX_LABELS - 1);

		w->lab_off[i] = pos + 1;
		w->lab_len[i] = c;
	}
	w->labels++;
	w->wire_len += c + 1;
	w->pos = pos + 1 + c;
	return 0;
}

/*
 * One step of hashing a walked name (labels <= CW_DNS_MAX_LABELS): its next label from the right.
 * For the question, also the suffix hash and the canonical form. Returns 1 when all are hashed.
 */
static __always_inline int cw_dns_hash_step(struct cw_dns_scratch *s, struct cw_dns_walk *w,
					    int question)
{
	__u32 i = (__u32)(w->labels - 1 - w->hashed) & (CW_DNS_MAX_LABELS - 1);
	__u32 off = w->lab_off[i], n = w->lab_len[i] & CW_DNS_MAX_LABEL, out = 0;
	__u64 h = cw_dns_hash_byte(w->hash, n);

	if (question) {
		w->tail += n + 1;
		out = (__u32)s->res.qname_len - w->tail;
		s->res.qname[out & CW_DNS_MAX_NAME] = n;
		s->res.qsuffix_off[w->hashed & (CW_DNS_MAX_LABELS - 1)] = out;
	}
	CW_DNS_NO_UNROLL
	for (__u32 j = 0; j < CW_DNS_MAX_LABEL; j++) {
		__u8 b;

		if (j >= n)
			break;
		b = cw_dns_lower(cw_dns_byte(s, off + j));
		h = cw_dns_hash_byte(h, b);
		if (question)
			s->res.qname[(out + 1 + j) & CW_DNS_MAX_NAME] = b;
	}
	w->hash = h;
	if (question)
		s->res.qsuffix_hash[w->hashed & (CW_DNS_MAX_LABELS - 1)] = h;
	w->hashed++;
	return w->hashed >= w->labels;
}

static __always_inline int cw_dns_in_chain(const struct cw_dns_state *st, __u64 h)
{
	CW_DNS_NO_UNROLL
	for (__u32 k = 0; k < CW_DNS_MAX_CHAIN; k++) {
		if (k >= st->nchain)
			break;
		if (st->chain[k & (CW_DNS_CHAIN_SLOTS - 1)] == h)
			return 1;
	}
	return 0;
}

/* The next answer record, or the end. */
static __always_inline void cw_dns_next_record(struct cw_dns_scratch *s, __u32 off)
{
	struct cw_dns_state *st = &s->st;

	if (st->rr >= st->rr_total) {
		cw_dns_stop(s, CW_DNS_OK, CW_DNS_R_NONE);
		return;
	}
	st->rr++;
	cw_dns_walk_start(&st->w, off);
	st->phase = CW_DNS_P_OWNER;
}

/* A learned record: the caller checked n_answers < CW_DNS_MAX_ANSWERS. */
static __always_inline struct cw_dns_answer *cw_dns_answer_add(struct cw_dns_scratch *s, __u16 type,
							       __u32 ttl)
{
	struct cw_dns_answer *a = &s->res.answers[s->res.n_answers & (CW_DNS_MAX_ANSWERS - 1)];

	s->res.n_answers++;
	a->owner_hash = s->st.owner_hash;
	a->type = type;
	a->ttl = ttl & 0x80000000u ? 0 : ttl;
	return a;
}

/* A record's fixed part: type, class, TTL, data length; learn it or count why not. */
static __always_inline void cw_dns_record(struct cw_dns_scratch *s)
{
	struct cw_dns_state *st = &s->st;
	struct cw_dns_result *r = &s->res;
	__u32 pos = st->w.end, len = st->len, rdata, rdlen, ttl;
	__u16 type, class;
	int owned;

	if (pos + 10 > len)
		return cw_dns_stop(s, CW_DNS_MALFORMED, CW_DNS_R_RR_OVERRUN);
	type = cw_dns_u16(s, pos);
	class = cw_dns_u16(s, pos + 2);
	ttl = cw_dns_u32(s, pos + 4);
	rdlen = cw_dns_u16(s, pos + 8);
	rdata = pos + 10;
	if (rdata + rdlen > len)
		return cw_dns_stop(s, CW_DNS_MALFORMED, CW_DNS_R_RDATA_OVERRUN);
	st->rdata = rdata;
	st->rdata_end = rdata + rdlen;

	if (class != CW_DNS_CLASS_IN ||
	    (type != CW_DNS_TYPE_A && type != CW_DNS_TYPE_AAAA && type != CW_DNS_TYPE_CNAME)) {
		r->skipped_type++;
		return cw_dns_next_record(s, st->rdata_end);
	}
	if ((type == CW_DNS_TYPE_A && rdlen != 4) || (type == CW_DNS_TYPE_AAAA && rdlen != 16))
		return cw_dns_stop(s, CW_DNS_MALFORMED, CW_DNS_R_RDLENGTH);
	owned = st->w.labels <= CW_DNS_MAX_LABELS && cw_dns_in_chain(st, st->w.hash);
	if (!owned) {
		r->skipped_owner++;
		return cw_dns_next_record(s, st->rdata_end);
	}
	if (r->n_answers >= CW_DNS_MAX_ANSWERS) {
		r->skipped_limit++;
		return cw_dns_next_record(s, st->rdata_end);
	}
	st->owner_hash = st->w.hash;
	if (type == CW_DNS_TYPE_CNAME) {
		/* Learned once its target is read (P_TARGET_DONE). */
		st->ttl = ttl;
		cw_dns_walk_start(&st->w, rdata);
		st->phase = CW_DNS_P_TARGET;
		return;
	}
	struct cw_dns_answer *a = cw_dns_answer_add(s, type, ttl);
	CW_DNS_NO_UNROLL
	for (__u32 j = 0; j < 16; j++) {
		if (j >= rdlen)
			break;
		a->addr[j] = cw_dns_byte(s, rdata + j);
	}
	cw_dns_next_record(s, st->rdata_end);
}

/* A CNAME of the chain whose target has been read and hashed. */
static __always_inline void cw_dns_cname_done(struct cw_dns_scratch *s)
{
	struct cw_dns_state *st = &s->st;
	struct cw_dns_result *r = &s->res;
	struct cw_dns_answer *a;

	/* The target fills the record's data exactly. */
	if (st->w.end != st->rdata_end)
		return cw_dns_stop(s, CW_DNS_MALFORMED, CW_DNS_R_CNAME_RDATA);
	if (st->w.labels > CW_DNS_MAX_LABELS) {
		r->skipped_long++;
		return cw_dns_next_record(s, st->rdata_end);
	}
	a = cw_dns_answer_add(s, CW_DNS_TYPE_CNAME, st->ttl);
	a->target_hash = st->w.hash;
	/* Always room: one name per learned CNAME, and n_answers <= CW_DNS_MAX_ANSWERS. */
	if (st->nchain < CW_DNS_MAX_CHAIN) {
		st->chain[st->nchain & (CW_DNS_CHAIN_SLOTS - 1)] = st->w.hash;
		st->nchain++;
	}
	cw_dns_next_record(s, st->rdata_end);
}

/* One step of the parse. Returns 1 when it is over (s->res is final). */
static __always_inline int cw_dns_step(struct cw_dns_scratch *s)
{
	struct cw_dns_state *st = &s->st;
	struct cw_dns_result *r = &s->res;
	int ret;

	switch (st->phase) {
	case CW_DNS_P_QNAME:
		ret = cw_dns_walk_step(s, &st->w);
		if (ret < 0) {
			cw_dns_stop(s, CW_DNS_MALFORMED, -ret);
			break;
		}
		if (!ret)
			break;
		r->qname_len = st->w.wire_len;
		r->qlabels = st->w.labels > 255 ? 255 : st->w.labels;
		st->phase = st->w.labels ? CW_DNS_P_QHASH : CW_DNS_P_QFIXED;
		st->w.tail = 1; /* the root byte, qname[qname_len - 1], is 0 already */
		if (st->w.labels > CW_DNS_MAX_LABELS)
			st->phase =
			    CW_DNS_P_QFIXED; /* refused there, once type and class are read */
		break;
	case CW_DNS_P_QHASH:
		if (cw_dns_hash_step(s, &st->w, 1))
			st->phase = CW_DNS_P_QFIXED;
		break;
	case CW_DNS_P_QFIXED: {
		__u32 pos = st->w.end;

		if (pos + 4 > st->len) {
			cw_dns_stop(s, CW_DNS_MALFORMED, CW_DNS_R_QUESTION_OVERRUN);
			break;
		}
		r->qtype = cw_dns_u16(s, pos);
		r->qclass = cw_dns_u16(s, pos + 2);
		if (st->w.labels > CW_DNS_MAX_LABELS) {
			cw_dns_stop(s, CW_DNS_UNLEARNABLE, CW_DNS_R_QNAME_LABELS);
			break;
		}
		r->qname_hash = st->w.hash;
		if (r->qclass != CW_DNS_CLASS_IN) {
			cw_dns_stop(s, CW_DNS_UNLEARNABLE, CW_DNS_R_QCLASS);
			break;
		}
		if (r->qtype != CW_DNS_TYPE_A && r->qtype != CW_DNS_TYPE_AAAA) {
			cw_dns_stop(s, CW_DNS_UNLEARNABLE, CW_DNS_R_QTYPE);
			break;
		}
		st->chain[0] = st->w.hash;
		st->nchain = 1;
		cw_dns_next_record(s, pos + 4);
		break;
	}
	case CW_DNS_P_OWNER:
	case CW_DNS_P_TARGET:
		ret = cw_dns_walk_step(s, &st->w);
		if (ret < 0) {
			cw_dns_stop(s, CW_DNS_MALFORMED, -ret);
			break;
		}
		if (!ret)
			break;
		if (st->w.labels == 0 || st->w.labels > CW_DNS_MAX_LABELS)
			st->phase =
			    st->phase == CW_DNS_P_OWNER ? CW_DNS_P_RR : CW_DNS_P_TARGET_DONE;
		else
			st->phase = st->phase == CW_DNS_P_OWNER ? CW_DNS_P_OWNER_HASH
								: CW_DNS_P_TARGET_HASH;
		break;
	case CW_DNS_P_OWNER_HASH:
		if (cw_dns_hash_step(s, &st->w, 0))
			st->phase = CW_DNS_P_RR;
		break;
	case CW_DNS_P_TARGET_HASH:
		if (cw_dns_hash_step(s, &st->w, 0))
			st->phase = CW_DNS_P_TARGET_DONE;
		break;
	case CW_DNS_P_RR:
		cw_dns_record(s);
		break;
	case CW_DNS_P_TARGET_DONE:
		cw_dns_cname_done(s);
		break;
	default:
		break;
	}
	return st->phase == CW_DNS_P_DONE;
}

/* After the last step: a parse that did not reach its end teaches nothing. */
static __always_inline void cw_dns_finish(struct cw_dns_scratch *s)
{
	if (s->st.phase != CW_DNS_P_DONE)
		cw_dns_stop(s, CW_DNS_MALFORMED, CW_DNS_R_STEPS);
}

#endif /* CW_DNS_PARSE_H */
