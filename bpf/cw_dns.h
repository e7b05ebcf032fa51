/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The DNS answer parser's ABI: limits, the name hash, and the result that the BPF parser
 * (bpf/cw_dns.bpf.h) and its userspace twin (userspace/lib/dns.c) both fill. The rules of what is
 * learned are described in bpf/cw_dns.bpf.h; the parser itself is bpf/cw_dns_parse.h.
 *
 * Only <linux/types.h> types, explicit padding, one size assertion per struct.
 */
#ifndef CW_DNS_H
#define CW_DNS_H

#include <linux/types.h>

/* ---- limits ---------------------------------------------------------------------------------- */

/* Longest message parsed (a power of two: reads are masked with CW_DNS_MSG_MAX - 1). Longer
 * messages are not learnable (4096 is the largest EDNS buffer resolvers use; 1232 the usual). */
#define CW_DNS_MSG_MAX	   4096
#define CW_DNS_HEADER_LEN  12
#define CW_DNS_MAX_NAME	   255 /* wire length of a name, root byte included (RFC 1035) */
#define CW_DNS_MAX_LABEL   63  /* bytes of one label */
#define CW_DNS_MAX_LABELS  32  /* labels of a name the parser can hash (a power of two) */
#define CW_DNS_MAX_JUMPS   16  /* compression pointers followed in one name */
#define CW_DNS_MAX_RECORDS 32  /* answer-section records read; the rest is counted as unread */
#define CW_DNS_MAX_ANSWERS 16  /* records learned from one message */

/* RR types and class the parser knows. */
#define CW_DNS_TYPE_A	  1
#define CW_DNS_TYPE_CNAME 5
#define CW_DNS_TYPE_AAAA  28
#define CW_DNS_CLASS_IN	  1

/* ---- the name hash --------------------------------------------------------------------------- */
/*
 * A name's hash is FNV-1a 64 over its labels taken from the root down (the rightmost label
 * first), each label as its length byte followed by its bytes with A-Z folded to a-z:
 *   hash("tiles.oem.example") = FNV-1a 64 of "\x07example\x03oem\x05tiles"
 *   hash(".") = the FNV offset basis.
 * Taken in that order, the hash of every parent suffix of a name is a step on the way to the
 * name's own hash: a wildcard "*.x" is matched by looking up the hash of each suffix.
 * FNV-1a is not collision resistant: a hash says which name to compare, never alone that the
 * names are equal where an adversary picks one of them (see bpf/cw_dns.bpf.h).
 */
#define CW_DNS_HASH_BASIS 0xcbf29ce484222325ULL
#define CW_DNS_HASH_PRIME 0x100000001b3ULL

static inline __u64 cw_dns_hash_byte(__u64 h, __u8 b)
{
	return (h ^ b) * CW_DNS_HASH_PRIME;
}

static inline __u8 cw_dns_lower(__u8 c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* ---- the result ------------------------------------------------------------------------------ */

/* cw_dns_result.status: only CW_DNS_OK teaches anything. */
enum cw_dns_status {
	CW_DNS_NONE = 0,     /* nothing parsed */
	CW_DNS_OK,	     /* a response to one A or AAAA question of class IN, rcode 0 */
	CW_DNS_NOT_RESPONSE, /* QR bit clear: a query */
	CW_DNS_TRUNCATED,    /* TC bit set: the client asks again over TCP */
	CW_DNS_RCODE,	     /* rcode != 0 (NXDOMAIN, SERVFAIL...): see .rcode */
	CW_DNS_UNLEARNABLE,  /* well formed, but nothing carwall learns from: see .reason */
	CW_DNS_MALFORMED,    /* see .reason */
};

/* cw_dns_result.reason */
enum cw_dns_reason {
	CW_DNS_R_NONE = 0,
	/* CW_DNS_UNLEARNABLE */
	CW_DNS_R_TOO_BIG,      /* message longer than CW_DNS_MSG_MAX */
	CW_DNS_R_OPCODE,       /* opcode is not QUERY */
	CW_DNS_R_QDCOUNT,      /* not exactly one question */
	CW_DNS_R_QCLASS,       /* question class is not IN */
	CW_DNS_R_QTYPE,	       /* question type is not A or AAAA */
	CW_DNS_R_QNAME_LABELS, /* question name has more than CW_DNS_MAX_LABELS labels */
	/* CW_DNS_MALFORMED */
	CW_DNS_R_SHORT,		/* shorter than a header, or than the packet said */
	CW_DNS_R_NAME_OVERRUN,	/* a name runs past the end of the message */
	CW_DNS_R_LABEL_TYPE,	/* a label length byte 0x40-0xbf (extended label types) */
	CW_DNS_R_NAME_TOO_LONG, /* a name longer than CW_DNS_MAX_NAME */
	CW_DNS_R_POINTER,	/* a compression pointer not strictly before its label sequence */
	CW_DNS_R_JUMPS,		/* more than CW_DNS_MAX_JUMPS pointers in one name */
	CW_DNS_R_QUESTION_OVERRUN, /* question type and class past the end */
	CW_DNS_R_RR_OVERRUN,	   /* a record's fixed part past the end (or a lying count) */
	CW_DNS_R_RDATA_OVERRUN,	   /* a record's data past the end */
	CW_DNS_R_RDLENGTH,	   /* A not 4 bytes, AAAA not 16 */
	CW_DNS_R_CNAME_RDATA,	   /* a CNAME's target does not fill its data exactly */
	CW_DNS_R_STEPS,		   /* the parser's step budget ran out (a bug: never expected) */
	CW_DNS_R_COUNT_
};

/* One learned record: A, AAAA or CNAME, class IN, owned by a name of the chain. */
struct cw_dns_answer {
	__u64 owner_hash;  /* hash of the owner: the question, or a CNAME target learned before */
	__u64 target_hash; /* CNAME: hash of its target (a name of the chain from now on); else 0 */
	__u32 ttl;	   /* seconds, as sent; RFC 2181 section 8: above 2^31 - 1 read as 0 */
	__u16 type;	   /* CW_DNS_TYPE_A, _AAAA or _CNAME */
	__u16 pad;
	__u8 addr[16]; /* network byte order; A in addr[0..3], the rest 0; CNAME all 0 */
};
_Static_assert(sizeof(struct cw_dns_answer) == 40, "cw_dns_answer layout");

struct cw_dns_result {
	__u8 status;  /* enum cw_dns_status */
	__u8 reason;  /* enum cw_dns_reason */
	__u8 rcode;   /* the header's RCODE */
	__u8 qlabels; /* labels of the question name */
	__u16 id;     /* the header as sent: ID, flags word, the four counts */
	__u16 flags;
	__u16 qdcount;
	__u16 ancount;
	__u16 nscount; /* authority and additional records are never read: never learned */
	__u16 arcount;
	__u16 qtype;
	__u16 qclass;
	__u16 qname_len; /* wire length of qname, root byte included */
	__u16 n_answers; /* entries of answers[]; 0 unless status is CW_DNS_OK */
	/* Answer-section records read and not learned, by cause. */
	__u16 skipped_owner; /* A, AAAA or CNAME of class IN owned by a name outside the chain */
	__u16 skipped_type;  /* another type or class (RRSIG, DNAME, ...) */
	__u16 skipped_limit; /* learnable, but CW_DNS_MAX_ANSWERS were learned already */
	__u16 skipped_long;  /* a CNAME of the chain to a name of more than CW_DNS_MAX_LABELS */
	__u16 unread;	     /* answer records after the first CW_DNS_MAX_RECORDS: not read */
	__u16 pad[3];
	__u64 qname_hash; /* == qsuffix_hash[qlabels - 1]; CW_DNS_HASH_BASIS for the root */
	/* [i]: hash of the question's last i + 1 labels, i < qlabels ("*.x": x's entry). */
	__u64 qsuffix_hash[CW_DNS_MAX_LABELS];
	/* [i]: where that suffix starts in qname[] (to compare names, not only hashes). */
	__u8 qsuffix_off[CW_DNS_MAX_LABELS];
	/* The question name, uncompressed wire form, lowercase ASCII, root byte included. */
	__u8 qname[CW_DNS_MAX_NAME + 1];
	struct cw_dns_answer answers[CW_DNS_MAX_ANSWERS];
};
_Static_assert(sizeof(struct cw_dns_result) == 1232, "cw_dns_result layout");

#endif /* CW_DNS_H */
