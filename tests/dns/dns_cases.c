// SPDX-License-Identifier: GPL-2.0-only
/* Crafted DNS responses and their expected results; see dns_cases.h. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"
#include "dns_cases.h"

#define RESP  0x8180 /* QR, RD, RA; opcode QUERY, rcode NOERROR */
#define QUERY 0x0100 /* RD */
#define TC    0x0200
#define A     CW_DNS_TYPE_A
#define AAAA  CW_DNS_TYPE_AAAA
#define CNAME CW_DNS_TYPE_CNAME
#define IN    CW_DNS_CLASS_IN

/* ---- building messages ----------------------------------------------------------------------- */

static void u8(struct dns_msg *m, unsigned v)
{
	assert_true(m->len < sizeof(m->b));
	m->b[m->len++] = v & 0xff;
}

static void u16(struct dns_msg *m, unsigned v)
{
	u8(m, v >> 8);
	u8(m, v);
}

static void u32(struct dns_msg *m, uint32_t v)
{
	u16(m, v >> 16);
	u16(m, v);
}

static void hdr(struct dns_msg *m, unsigned flags, unsigned qd, unsigned an, unsigned ns,
		unsigned ar)
{
	m->len = 0;
	u16(m, 0x4a3b);
	u16(m, flags);
	u16(m, qd);
	u16(m, an);
	u16(m, ns);
	u16(m, ar);
}

/* A compression pointer to off. */
static void ptr(struct dns_msg *m, size_t off)
{
	u16(m, 0xc000 | off);
}

/* The labels of text as written (case kept; "" none), then a pointer to p, or the root (p < 0). */
static size_t name_ptr(struct dns_msg *m, const char *text, long p)
{
	size_t start = m->len;

	while (*text) {
		size_t n = strcspn(text, ".");

		u8(m, n);
		for (size_t i = 0; i < n; i++)
			u8(m, text[i]);
		text += n;
		if (*text == '.')
			text++;
	}
	if (p >= 0)
		ptr(m, p);
	else
		u8(m, 0);
	return start;
}

static size_t name(struct dns_msg *m, const char *text)
{
	return name_ptr(m, text, -1);
}

static size_t question(struct dns_msg *m, const char *text, unsigned type, unsigned class)
{
	size_t off = name(m, text);

	u16(m, type);
	u16(m, class);
	return off;
}

/* A record's type, class and TTL after its owner; returns where its data length goes. */
static size_t rr_fixed(struct dns_msg *m, unsigned type, unsigned class, uint32_t ttl)
{
	size_t at;

	u16(m, type);
	u16(m, class);
	u32(m, ttl);
	at = m->len;
	u16(m, 0);
	return at;
}

static void rr_end(struct dns_msg *m, size_t at)
{
	size_t n = m->len - at - 2;

	m->b[at] = n >> 8;
	m->b[at + 1] = n & 0xff;
}

static void addr_bytes(struct dns_msg *m, const char *text)
{
	uint8_t a[16];
	int six = strchr(text, ':') != NULL;

	assert_int_equal(inet_pton(six ? AF_INET6 : AF_INET, text, a), 1);
	for (int i = 0; i < (six ? 16 : 4); i++)
		u8(m, a[i]);
}

/* The rest of an A or AAAA record (after its owner). */
static void addr_rr(struct dns_msg *m, uint32_t ttl, const char *addr)
{
	size_t at = rr_fixed(m, strchr(addr, ':') ? AAAA : A, IN, ttl);

	addr_bytes(m, addr);
	rr_end(m, at);
}

/* The rest of a CNAME record: its target (labels, then pointer p or root); returns the target. */
static size_t cname_rr(struct dns_msg *m, uint32_t ttl, const char *target, long p)
{
	size_t at = rr_fixed(m, CNAME, IN, ttl), off;

	off = name_ptr(m, target, p);
	rr_end(m, at);
	return off;
}

/* A record of another type, with len bytes of data. */
static void other_rr(struct dns_msg *m, unsigned type, unsigned class, size_t len)
{
	size_t at = rr_fixed(m, type, class, 60);

	for (size_t i = 0; i < len; i++)
		u8(m, i);
	rr_end(m, at);
}

/* ---- expectations ---------------------------------------------------------------------------- */

static uint64_t h(const char *text)
{
	struct dns_name n;

	assert_int_equal(dns_name_from_text(text, &n), 0);
	return n.hash;
}

static void expect(const struct cw_dns_result *r, unsigned status, unsigned reason)
{
	if (r->status != status || r->reason != reason)
		fail_msg("status %s/%s, expected %s/%s", dns_status_str(r->status),
			 dns_reason_str(r->reason), dns_status_str(status), dns_reason_str(reason));
}

static void expect_counts(const struct cw_dns_result *r, unsigned n, unsigned owner, unsigned type,
			  unsigned limit, unsigned long_, unsigned unread)
{
	assert_int_equal(r->n_answers, n);
	assert_int_equal(r->skipped_owner, owner);
	assert_int_equal(r->skipped_type, type);
	assert_int_equal(r->skipped_limit, limit);
	assert_int_equal(r->skipped_long, long_);
	assert_int_equal(r->unread, unread);
}

/* The question as the parser must give it: canonical name, hashes of the name and suffixes. */
static void expect_question(const struct cw_dns_result *r, const char *text, unsigned type)
{
	struct dns_name n;
	char back[1024];

	assert_int_equal(dns_name_from_text(text, &n), 0);
	assert_int_equal(r->qtype, type);
	assert_int_equal(r->qclass, IN);
	assert_int_equal(r->qname_len, n.wire_len);
	assert_int_equal(r->qlabels, n.labels);
	assert_memory_equal(r->qname, n.wire, n.wire_len);
	assert_true(r->qname_hash == n.hash);
	for (unsigned i = 0; i < n.labels; i++) {
		struct dns_name sfx;
		unsigned off = r->qsuffix_off[i];

		assert_true(r->qsuffix_hash[i] == n.suffix_hash[i]);
		/* The suffix at qsuffix_off[i] is the name that hashes so. */
		assert_true(
		    dns_name_to_text(r->qname + off, r->qname_len - off, back, sizeof(back)) > 0);
		assert_int_equal(dns_name_from_text(back, &sfx), 0);
		assert_int_equal(sfx.labels, i + 1);
		assert_true(sfx.hash == r->qsuffix_hash[i]);
	}
}

static void expect_addr(const struct cw_dns_result *r, unsigned i, const char *owner, uint32_t ttl,
			const char *addr)
{
	const struct cw_dns_answer *a = &r->answers[i];
	int six = strchr(addr, ':') != NULL;
	uint8_t want[16] = {};

	assert_true(i < r->n_answers);
	assert_int_equal(inet_pton(six ? AF_INET6 : AF_INET, addr, want), 1);
	assert_int_equal(a->type, six ? AAAA : A);
	assert_true(a->owner_hash == h(owner));
	assert_int_equal(a->ttl, ttl);
	assert_true(a->target_hash == 0);
	assert_memory_equal(a->addr, want, 16);
}

static void expect_cname(const struct cw_dns_result *r, unsigned i, const char *owner, uint32_t ttl,
			 const char *target)
{
	const struct cw_dns_answer *a = &r->answers[i];
	static const uint8_t zero[16];

	assert_true(i < r->n_answers);
	assert_int_equal(a->type, CNAME);
	assert_true(a->owner_hash == h(owner));
	assert_int_equal(a->ttl, ttl);
	assert_true(a->target_hash == h(target));
	assert_memory_equal(a->addr, zero, 16);
}

/* ---- the cases ------------------------------------------------------------------------------- */

#define Q "tiles.oem.example"

static void build_a_single(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	addr_rr(m, 300, "198.51.100.20");
}

static void check_a_single(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, Q, A);
	expect_counts(r, 1, 0, 0, 0, 0, 0);
	assert_int_equal(r->id, 0x4a3b);
	assert_int_equal(r->flags, RESP);
	expect_addr(r, 0, Q, 300, "198.51.100.20");
}

static void build_a_several(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 3, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	addr_rr(m, 60, "198.51.100.20");
	ptr(m, q);
	addr_rr(m, 61, "198.51.100.21");
	ptr(m, q);
	addr_rr(m, 62, "203.0.113.7");
}

static void check_a_several(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 3, 0, 0, 0, 0, 0);
	expect_addr(r, 0, Q, 60, "198.51.100.20");
	expect_addr(r, 1, Q, 61, "198.51.100.21");
	expect_addr(r, 2, Q, 62, "203.0.113.7");
}

static void build_aaaa_several(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 2, 0, 0);
	q = question(m, Q, AAAA, IN);
	ptr(m, q);
	addr_rr(m, 120, "2001:db8::20");
	ptr(m, q);
	addr_rr(m, 120, "2001:db8:1:2:3:4:5:6");
}

static void check_aaaa_several(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, Q, AAAA);
	expect_counts(r, 2, 0, 0, 0, 0, 0);
	expect_addr(r, 0, Q, 120, "2001:db8::20");
	expect_addr(r, 1, Q, 120, "2001:db8:1:2:3:4:5:6");
}

/* DNS64: a synthesized AAAA (64:ff9b::/96) is learned like any other. */
static void build_dns64(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, Q, AAAA, IN);
	ptr(m, q);
	addr_rr(m, 30, "64:ff9b::c633:6414");
}

static void check_dns64(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 1, 0, 0, 0, 0, 0);
	expect_addr(r, 0, Q, 30, "64:ff9b::c633:6414");
}

/* 0x20: the resolver echoes the question's mixed case; the name is the same. */
static void build_mixed_case(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 2, 0, 0);
	q = question(m, "TiLeS.OeM.eXaMpLe", A, IN);
	ptr(m, q);
	addr_rr(m, 300, "198.51.100.20");
	name(m, "TILES.oem.EXAMPLE"); /* uncompressed, another case */
	addr_rr(m, 300, "198.51.100.21");
}

static void check_mixed_case(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, Q, A);
	expect_counts(r, 2, 0, 0, 0, 0, 0);
	expect_addr(r, 0, Q, 300, "198.51.100.20");
	expect_addr(r, 1, Q, 300, "198.51.100.21");
}

/* A CDN chain in order: each CNAME's target owns the next record. */
static void build_cname_chain(struct dns_msg *m)
{
	size_t q, c1, c2;

	hdr(m, RESP, 1, 4, 0, 0);
	q = question(m, "www.oem.example", A, IN);
	ptr(m, q);
	c1 =
	    cname_rr(m, 3600, "www.oem.example.edge", q + 4); /* www.oem.example.edge.oem.example */
	ptr(m, c1);
	c2 = cname_rr(m, 20, "e7.g", c1 + 16); /* e7.g.edge.oem.example */
	ptr(m, c2);
	addr_rr(m, 20, "198.51.100.7");
	ptr(m, c2);
	addr_rr(m, 20, "198.51.100.8");
}

static void check_cname_chain(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, "www.oem.example", A);
	expect_counts(r, 4, 0, 0, 0, 0, 0);
	expect_cname(r, 0, "www.oem.example", 3600, "www.oem.example.edge.oem.example");
	expect_cname(r, 1, "www.oem.example.edge.oem.example", 20, "e7.g.edge.oem.example");
	expect_addr(r, 2, "e7.g.edge.oem.example", 20, "198.51.100.7");
	expect_addr(r, 3, "e7.g.edge.oem.example", 20, "198.51.100.8");
}

/* The address comes before the CNAME that leads to its owner: not learned. */
static void build_cname_out_of_order(struct dns_msg *m)
{
	size_t q, e;

	hdr(m, RESP, 1, 2, 0, 0);
	q = question(m, Q, A, IN);
	e = name(m, "edge.cdn.example");
	addr_rr(m, 20, "203.0.113.9");
	ptr(m, q);
	cname_rr(m, 300, "", e);
}

static void check_cname_out_of_order(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 1, 1, 0, 0, 0, 0);
	expect_cname(r, 0, Q, 300, "edge.cdn.example");
}

/* A CNAME to one name, an address for another. */
static void build_cname_to_other(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 3, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	cname_rr(m, 300, "edge.cdn.example", -1);
	name(m, "evil.example");
	addr_rr(m, 300, "203.0.113.66");
	name(m, "edge.cdn.example.evil"); /* a longer name ending like the target: another name */
	addr_rr(m, 300, "203.0.113.67");
}

static void check_cname_to_other(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 1, 2, 0, 0, 0, 0);
	expect_cname(r, 0, Q, 300, "edge.cdn.example");
}

/* Records of other names, in the answer section and in the additional section. */
static void build_other_owners(struct dns_msg *m)
{
	size_t q, at;

	hdr(m, RESP, 1, 2, 1, 2);
	q = question(m, Q, A, IN);
	ptr(m, q);
	addr_rr(m, 300, "198.51.100.20");
	name(m, "tracker.example");
	addr_rr(m, 300, "203.0.113.7");
	/* authority: an NS of oem.example */
	ptr(m, q + 6);
	at = rr_fixed(m, 2, IN, 3600);
	name_ptr(m, "ns1", q + 6);
	rr_end(m, at);
	/* additional: an address for another name, and EDNS's OPT */
	name(m, "evil.example");
	addr_rr(m, 300, "203.0.113.66");
	u8(m, 0);
	rr_fixed(m, 41, 1232, 0);
}

static void check_other_owners(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 1, 1, 0, 0, 0, 0);
	assert_int_equal(r->nscount, 1);
	assert_int_equal(r->arcount, 2);
	expect_addr(r, 0, Q, 300, "198.51.100.20");
}

/* Other types (RRSIG) and classes (CH) owned by the question: skipped. */
static void build_other_types(struct dns_msg *m)
{
	size_t q, at;

	hdr(m, RESP, 1, 4, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	other_rr(m, 46, IN, 30);
	ptr(m, q);
	at = rr_fixed(m, A, 3, 300);
	addr_bytes(m, "203.0.113.1");
	rr_end(m, at);
	ptr(m, q);
	other_rr(m, 16, IN, 5); /* TXT */
	ptr(m, q);
	addr_rr(m, 300, "198.51.100.20");
}

static void check_other_types(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 1, 0, 3, 0, 0, 0);
	expect_addr(r, 0, Q, 300, "198.51.100.20");
}

/* No answer for the type: learnable, nothing learned. */
static void build_nodata(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 0, 1, 0);
	q = question(m, Q, AAAA, IN);
	ptr(m, q + 6);
	other_rr(m, 6, IN, 22); /* SOA, its data opaque here */
}

static void check_nodata(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, Q, AAAA);
	expect_counts(r, 0, 0, 0, 0, 0, 0);
}

static void build_truncated_tc(struct dns_msg *m)
{
	build_a_single(m);
	m->b[2] |= TC >> 8;
}

static void check_truncated_tc(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_TRUNCATED, CW_DNS_R_NONE);
	assert_int_equal(r->n_answers, 0);
}

static void build_nxdomain(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP | 3, 1, 1, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q); /* an answer in an NXDOMAIN: still nothing */
	addr_rr(m, 300, "198.51.100.20");
}

static void check_nxdomain(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_RCODE, CW_DNS_R_NONE);
	assert_int_equal(r->rcode, 3);
	assert_int_equal(r->n_answers, 0);
}

static void build_query(struct dns_msg *m)
{
	hdr(m, QUERY, 1, 0, 0, 0);
	question(m, Q, A, IN);
}

static void check_query(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_NOT_RESPONSE, CW_DNS_R_NONE);
}

static void build_opcode(struct dns_msg *m)
{
	build_a_single(m);
	m->b[2] |= 4 << 3; /* NOTIFY */
}

static void check_opcode(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_UNLEARNABLE, CW_DNS_R_OPCODE);
}

static void build_qtype_mx(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, Q, 15, IN);
	ptr(m, q);
	addr_rr(m, 300, "198.51.100.20");
}

static void check_qtype_mx(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_UNLEARNABLE, CW_DNS_R_QTYPE);
	assert_int_equal(r->n_answers, 0);
}

static void build_qclass_ch(struct dns_msg *m)
{
	hdr(m, RESP, 1, 0, 0, 0);
	question(m, Q, A, 3);
}

static void check_qclass_ch(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_UNLEARNABLE, CW_DNS_R_QCLASS);
}

static void build_qdcount_two(struct dns_msg *m)
{
	hdr(m, RESP, 2, 0, 0, 0);
	question(m, Q, A, IN);
	question(m, "evil.example", A, IN);
}

static void check_qdcount(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_UNLEARNABLE, CW_DNS_R_QDCOUNT);
}

static void build_qdcount_zero(struct dns_msg *m)
{
	size_t e;

	hdr(m, RESP, 0, 1, 0, 0);
	e = name(m, Q);
	addr_rr(m, 300, "198.51.100.20");
	(void)e;
}

/* A pointer to itself, in an answer's owner. */
static void build_pointer_self(struct dns_msg *m)
{
	hdr(m, RESP, 1, 1, 0, 0);
	question(m, Q, A, IN);
	ptr(m, m->len);
	addr_rr(m, 300, "198.51.100.20");
}

static void check_pointer(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_POINTER);
	assert_int_equal(r->n_answers, 0);
}

/* A pointer forward, to a good name further on (libresolv follows it; refused here). */
static void build_pointer_forward(struct dns_msg *m)
{
	size_t p;

	hdr(m, RESP, 1, 1, 0, 0);
	question(m, Q, A, IN);
	p = m->len;
	ptr(m, p + 2 + 10); /* the CNAME's target, this record's data */
	cname_rr(m, 300, Q, -1);
}

/* A label, then a pointer back to the label: an endless name. */
static void build_pointer_loop(struct dns_msg *m)
{
	size_t p;

	hdr(m, RESP, 1, 1, 0, 0);
	question(m, Q, A, IN);
	p = m->len;
	name_ptr(m, "x", p);
	addr_rr(m, 300, "198.51.100.20");
}

/* Two pointers, each to the other's label: the second one points forward of the first jump. */
static void build_pointer_loop_two(struct dns_msg *m)
{
	size_t q, a, b;

	hdr(m, RESP, 1, 2, 0, 0);
	q = question(m, Q, A, IN);
	/* answer 1 owner: "y" then a pointer to answer 2's owner (patched below) */
	a = m->len;
	name_ptr(m, "y", 0);
	other_rr(m, 16, IN, 3);
	b = m->len;
	name_ptr(m, "z", a);
	addr_rr(m, 300, "198.51.100.20");
	m->b[a + 2] = 0xc0 | (b >> 8);
	m->b[a + 3] = b & 0xff;
	(void)q;
}

/* A question in the header, no bytes for it. */
static void build_lying_qdcount(struct dns_msg *m)
{
	hdr(m, RESP, 1, 0, 0, 0);
}

static void check_name_overrun(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_NAME_OVERRUN);
	assert_int_equal(r->n_answers, 0);
}

/* Five answers announced, one there. */
static void build_lying_ancount(struct dns_msg *m)
{
	build_a_single(m);
	m->b[7] = 5;
}

static void build_rdlength_oversized(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	addr_rr(m, 300, "198.51.100.20");
	m->b[m->len - 6] = 0xff;
	m->b[m->len - 5] = 0xff;
}

static void check_rdata_overrun(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_RDATA_OVERRUN);
	assert_int_equal(r->n_answers, 0);
}

static void build_rdlength_a5(struct dns_msg *m)
{
	size_t q, at;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	at = rr_fixed(m, A, IN, 300);
	addr_bytes(m, "198.51.100.20");
	u8(m, 9);
	rr_end(m, at);
}

static void check_rdlength(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_RDLENGTH);
}

/* Label length bytes 64 (0x40, an extended label type) and 0x80. */
static void build_label_64(struct dns_msg *m)
{
	hdr(m, RESP, 1, 0, 0, 0);
	u8(m, 64);
	for (int i = 0; i < 64; i++)
		u8(m, 'a');
	u8(m, 0);
	u16(m, A);
	u16(m, IN);
}

static void build_label_0x80(struct dns_msg *m)
{
	build_a_single(m);
	m->b[12] = 0x85;
}

static void check_label_type(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_LABEL_TYPE);
}

static char long_label[64];

static const char *label63(char c)
{
	memset(long_label, c, 63);
	long_label[63] = '\0';
	return long_label;
}

/* Labels of 63, 63, 63 and 61 bytes: a name of exactly 255 bytes. */
static char name255[256];

static const char *make_name255(void)
{
	snprintf(name255, sizeof(name255), "%s.", label63('a'));
	snprintf(name255 + 64, sizeof(name255) - 64, "%s.", label63('b'));
	snprintf(name255 + 128, sizeof(name255) - 128, "%s.", label63('c'));
	memset(name255 + 192, 'd', 61);
	name255[253] = '\0';
	return name255;
}

static void build_name_255(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, make_name255(), A, IN);
	ptr(m, q);
	addr_rr(m, 5, "198.51.100.1");
}

static void check_name_255(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, make_name255(), A);
	assert_int_equal(r->qname_len, 255);
	expect_addr(r, 0, make_name255(), 5, "198.51.100.1");
}

/* One byte more: 256. */
static void build_name_256(struct dns_msg *m)
{
	size_t q;
	char n[260];

	snprintf(n, sizeof(n), "%se", make_name255());
	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, n, A, IN);
	ptr(m, q);
	addr_rr(m, 5, "198.51.100.1");
}

/* A label of 63 before a pointer to a name of 255 bytes: 319 bytes. */
static void build_name_too_long(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, make_name255(), A, IN);
	name_ptr(m, label63('x'), q);
	addr_rr(m, 5, "198.51.100.1");
}

static void check_name_too_long(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_NAME_TOO_LONG);
}

static char labels_name[200];

static const char *make_labels(unsigned n)
{
	size_t len = 0;

	for (unsigned i = 0; i < n; i++)
		len += snprintf(labels_name + len, sizeof(labels_name) - len, "%s%c", i ? "." : "",
				'a' + i % 26);
	return labels_name;
}

static void build_labels_32(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, make_labels(32), A, IN);
	ptr(m, q);
	addr_rr(m, 5, "198.51.100.1");
}

static void check_labels_32(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, make_labels(32), A);
	expect_addr(r, 0, make_labels(32), 5, "198.51.100.1");
}

static void build_labels_33(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, make_labels(33), A, IN);
	ptr(m, q);
	addr_rr(m, 5, "198.51.100.1");
}

static void check_labels_33(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_UNLEARNABLE, CW_DNS_R_QNAME_LABELS);
	assert_int_equal(r->qlabels, 33);
	assert_int_equal(r->n_answers, 0);
}

/* A CNAME of the chain to a name of 33 labels: not learned, nor what that name owns. */
static void build_cname_long_target(struct dns_msg *m)
{
	size_t q, t;

	hdr(m, RESP, 1, 2, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	t = cname_rr(m, 300, make_labels(33), -1);
	ptr(m, t);
	addr_rr(m, 300, "203.0.113.5");
}

static void check_cname_long_target(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 0, 1, 0, 0, 1, 0);
}

/* Twenty addresses: sixteen learned. */
static void build_answers_over_limit(struct dns_msg *m)
{
	size_t q;
	char a[32];

	hdr(m, RESP, 1, 20, 0, 0);
	q = question(m, Q, A, IN);
	for (int i = 0; i < 20; i++) {
		snprintf(a, sizeof(a), "198.51.100.%d", i + 1);
		ptr(m, q);
		addr_rr(m, 60, a);
	}
}

static void check_answers_over_limit(const struct dns_msg *m, const struct cw_dns_result *r)
{
	char a[32];

	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 16, 0, 0, 4, 0, 0);
	for (int i = 0; i < 16; i++) {
		snprintf(a, sizeof(a), "198.51.100.%d", i + 1);
		expect_addr(r, i, Q, 60, a);
	}
}

/* Forty records: the first 32 are read. */
static void build_records_over_limit(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 40, 0, 0);
	q = question(m, Q, A, IN);
	for (int i = 0; i < 40; i++) {
		ptr(m, q);
		other_rr(m, 16, IN, 1);
	}
}

static void check_records_over_limit(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 0, 0, 32, 0, 0, 8);
}

/* RFC 2181: a TTL with its top bit set is 0. */
static void build_ttl_top_bit(struct dns_msg *m)
{
	size_t q;

	hdr(m, RESP, 1, 2, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	addr_rr(m, 0x80000001u, "198.51.100.20");
	ptr(m, q);
	addr_rr(m, 0x7fffffffu, "198.51.100.21");
}

static void check_ttl_top_bit(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_addr(r, 0, Q, 0, "198.51.100.20");
	expect_addr(r, 1, Q, 0x7fffffffu, "198.51.100.21");
}

/* A CNAME whose data holds two bytes more than its target. */
static void build_cname_rdata(struct dns_msg *m)
{
	size_t q, at;

	hdr(m, RESP, 1, 1, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	at = rr_fixed(m, CNAME, IN, 300);
	name(m, "edge.cdn.example");
	u16(m, 0);
	rr_end(m, at);
}

static void check_cname_rdata(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_CNAME_RDATA);
}

/*
 * A chain of n pointers, each to the previous one, in a TXT record's data; the answer's owner
 * is the last. n = CW_DNS_MAX_JUMPS - 1 and the owner's own pointer: the limit exactly.
 */
static void build_jumps(struct dns_msg *m, unsigned n)
{
	size_t q, at, prev, p;

	hdr(m, RESP, 1, 2, 0, 0);
	q = question(m, Q, A, IN);
	ptr(m, q);
	at = rr_fixed(m, 16, IN, 60);
	prev = q;
	for (unsigned i = 0; i < n; i++) {
		p = m->len;
		ptr(m, prev);
		prev = p;
	}
	rr_end(m, at);
	ptr(m, prev);
	addr_rr(m, 300, "198.51.100.20");
}

static void build_jumps_limit(struct dns_msg *m)
{
	build_jumps(m, CW_DNS_MAX_JUMPS - 1);
}

static void build_jumps_over(struct dns_msg *m)
{
	build_jumps(m, CW_DNS_MAX_JUMPS);
}

static void check_jumps_limit(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_counts(r, 1, 0, 1, 0, 0, 0);
	expect_addr(r, 0, Q, 300, "198.51.100.20");
}

static void check_jumps_over(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_JUMPS);
	assert_int_equal(r->n_answers, 0);
}

/*
 * The heaviest names: a 127-label name of 255 bytes in a TXT record, reached from 31 owners
 * through CW_DNS_MAX_JUMPS pointers each. The step budget holds, and nothing is learned from
 * names beyond CW_DNS_MAX_LABELS.
 */
static void build_heavy_names(struct dns_msg *m)
{
	size_t q, at, prev, p;

	hdr(m, RESP, 1, CW_DNS_MAX_RECORDS, 0, 0);
	q = question(m, make_labels(32), A, IN);
	ptr(m, q);
	at = rr_fixed(m, 16, IN, 60);
	prev = m->len;
	for (int i = 0; i < 127; i++) {
		u8(m, 1);
		u8(m, 'a' + i % 26);
	}
	u8(m, 0);
	for (unsigned i = 0; i < CW_DNS_MAX_JUMPS - 1; i++) {
		p = m->len;
		ptr(m, prev);
		prev = p;
	}
	rr_end(m, at);
	for (unsigned i = 1; i < CW_DNS_MAX_RECORDS; i++) {
		ptr(m, prev);
		addr_rr(m, 60, "203.0.113.1");
	}
}

static void check_heavy_names(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, make_labels(32), A);
	expect_counts(r, 0, CW_DNS_MAX_RECORDS - 1, 1, 0, 0, 0);
}

static void build_root_question(struct dns_msg *m)
{
	hdr(m, RESP, 1, 1, 0, 0);
	question(m, "", A, IN);
	u8(m, 0);
	addr_rr(m, 5, "198.51.100.1");
}

static void check_root_question(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, ".", A);
	assert_true(r->qname_hash == CW_DNS_HASH_BASIS);
	expect_addr(r, 0, ".", 5, "198.51.100.1");
}

static void build_short(struct dns_msg *m)
{
	build_a_single(m);
	m->len = CW_DNS_HEADER_LEN - 1;
}

static void check_short(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_MALFORMED, CW_DNS_R_SHORT);
}

/* Padded to the largest size parsed with an additional record; then one byte more. */
static void build_size(struct dns_msg *m, size_t size)
{
	size_t q, at;

	hdr(m, RESP, 1, 1, 0, 1);
	q = question(m, Q, A, IN);
	ptr(m, q);
	addr_rr(m, 300, "198.51.100.20");
	u8(m, 0);
	at = rr_fixed(m, 16, IN, 0);
	while (m->len < size)
		u8(m, 'x');
	rr_end(m, at);
}

static void build_size_max(struct dns_msg *m)
{
	build_size(m, CW_DNS_MSG_MAX);
}

static void build_too_big(struct dns_msg *m)
{
	build_size(m, CW_DNS_MSG_MAX + 1);
}

static void check_size_max(const struct dns_msg *m, const struct cw_dns_result *r)
{
	assert_int_equal(m->len, CW_DNS_MSG_MAX);
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_addr(r, 0, Q, 300, "198.51.100.20");
}

static void check_too_big(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_UNLEARNABLE, CW_DNS_R_TOO_BIG);
	assert_int_equal(r->n_answers, 0);
}

/* ---- the rich response and its prefixes ------------------------------------------------------ */

void dns_build_rich(struct dns_msg *m)
{
	size_t q, c1, at;

	hdr(m, RESP, 1, 6, 1, 2);
	q = question(m, "Maps.OEM.example", A, IN);
	ptr(m, q);
	c1 = cname_rr(m, 600, "maps-oem.edge", -1);
	ptr(m, c1);
	addr_rr(m, 20, "198.51.100.30");
	ptr(m, c1);
	other_rr(m, 46, IN, 12);
	name(m, "ads.tracker.example");
	addr_rr(m, 20, "203.0.113.8");
	ptr(m, c1);
	addr_rr(m, 20, "2001:db8::30");
	ptr(m, c1);
	addr_rr(m, 21, "198.51.100.31");
	ptr(m, q + 5);
	at = rr_fixed(m, 2, IN, 3600);
	name_ptr(m, "ns1", q + 5);
	rr_end(m, at);
	name(m, "ns1.evil.example");
	addr_rr(m, 300, "203.0.113.66");
	u8(m, 0);
	rr_fixed(m, 41, 1232, 0);
}

static void check_rich(const struct dns_msg *m, const struct cw_dns_result *r)
{
	(void)m;
	expect(r, CW_DNS_OK, CW_DNS_R_NONE);
	expect_question(r, "maps.oem.example", A);
	expect_counts(r, 4, 1, 1, 0, 0, 0);
	expect_cname(r, 0, "maps.oem.example", 600, "maps-oem.edge");
	expect_addr(r, 1, "maps-oem.edge", 20, "198.51.100.30");
	expect_addr(r, 2, "maps-oem.edge", 20, "2001:db8::30");
	expect_addr(r, 3, "maps-oem.edge", 21, "198.51.100.31");
}

/* Where the answer section of the rich response ends. */
static size_t rich_answers_end(const struct dns_msg *m)
{
	size_t pos = CW_DNS_HEADER_LEN;
	unsigned records = 1 + 6;

	for (unsigned i = 0; i < records; i++) {
		while (m->b[pos] && (m->b[pos] & 0xc0) != 0xc0)
			pos += m->b[pos] + 1;
		pos += m->b[pos] ? 2 : 1;
		pos += i == 0 ? 4 : 10 + (m->b[pos + 8] << 8 | m->b[pos + 9]);
	}
	return pos;
}

void dns_check_prefix(const struct dns_msg *full, const struct cw_dns_result *full_r, size_t len,
		      const struct cw_dns_result *r)
{
	if (len < CW_DNS_HEADER_LEN) {
		expect(r, CW_DNS_MALFORMED, CW_DNS_R_SHORT);
		return;
	}
	if (len < rich_answers_end(full)) {
		if (r->status != CW_DNS_MALFORMED)
			fail_msg("cut at %zu: status %s", len, dns_status_str(r->status));
		return;
	}
	assert_memory_equal(r, full_r, sizeof(*r));
}

#define CASE(n, c)                                                                                 \
	{                                                                                          \
#n, build_##n, check_##c                                                           \
	}

const struct dns_case dns_cases[] = {
    CASE(a_single, a_single),
    CASE(a_several, a_several),
    CASE(aaaa_several, aaaa_several),
    CASE(dns64, dns64),
    CASE(mixed_case, mixed_case),
    CASE(cname_chain, cname_chain),
    CASE(cname_out_of_order, cname_out_of_order),
    CASE(cname_to_other, cname_to_other),
    CASE(other_owners, other_owners),
    CASE(other_types, other_types),
    CASE(nodata, nodata),
    CASE(truncated_tc, truncated_tc),
    CASE(nxdomain, nxdomain),
    CASE(query, query),
    CASE(opcode, opcode),
    CASE(qtype_mx, qtype_mx),
    CASE(qclass_ch, qclass_ch),
    CASE(qdcount_two, qdcount),
    CASE(qdcount_zero, qdcount),
    CASE(pointer_self, pointer),
    CASE(pointer_forward, pointer),
    CASE(pointer_loop, pointer),
    CASE(pointer_loop_two, pointer),
    CASE(lying_qdcount, name_overrun),
    CASE(lying_ancount, name_overrun),
    CASE(rdlength_oversized, rdata_overrun),
    CASE(rdlength_a5, rdlength),
    CASE(label_64, label_type),
    CASE(label_0x80, label_type),
    CASE(name_255, name_255),
    CASE(name_256, name_too_long),
    CASE(name_too_long, name_too_long),
    CASE(labels_32, labels_32),
    CASE(labels_33, labels_33),
    CASE(cname_long_target, cname_long_target),
    CASE(answers_over_limit, answers_over_limit),
    CASE(records_over_limit, records_over_limit),
    CASE(ttl_top_bit, ttl_top_bit),
    CASE(cname_rdata, cname_rdata),
    CASE(jumps_limit, jumps_limit),
    CASE(jumps_over, jumps_over),
    CASE(heavy_names, heavy_names),
    CASE(root_question, root_question),
    CASE(short, short),
    CASE(size_max, size_max),
    CASE(too_big, too_big),
    {"rich", dns_build_rich, check_rich},
};
const size_t dns_cases_count = sizeof(dns_cases) / sizeof(dns_cases[0]);
