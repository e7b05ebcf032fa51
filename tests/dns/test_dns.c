// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the userspace DNS parser (userspace/lib/dns.c, the twin of bpf/cw_dns.bpf.h): the
 * crafted responses of dns_cases.c and their expected results, a response cut at every byte, and
 * agreement with libresolv on those, on the seed corpus and on mutated messages. Host names in
 * text as the parser hashes them.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"
#include "dns_cases.h"
#include "dns_oracle.h"
#include "util.h"

#define CORPUS_DIR "tests/fuzz/corpus/dns"
#define MUTATIONS  20000

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static void agree_with_libresolv(const uint8_t *msg, size_t len, const struct cw_dns_result *r,
				 const char *what)
{
	char why[256];

	if (dns_oracle_check(msg, len, r, NULL, why, sizeof(why)) < 0)
		fail_msg("%s: disagrees with libresolv: %s", what, why);
}

static void test_case(void **state)
{
	const struct dns_case *c = *state;
	struct dns_msg m = {};
	struct cw_dns_result r;

	c->build(&m);
	assert_int_equal(dns_parse(m.b, m.len, &r), 0);
	c->check(&m, &r);
	agree_with_libresolv(m.b, m.len, &r, c->name);
}

static void test_cut_at_every_byte(void **state)
{
	struct cw_dns_result full, r;
	struct dns_msg m = {};

	(void)state;
	dns_build_rich(&m);
	assert_int_equal(dns_parse(m.b, m.len, &full), 0);
	assert_int_equal(full.status, CW_DNS_OK);
	for (size_t len = 0; len <= m.len; len++) {
		char what[32];

		assert_int_equal(dns_parse(m.b, len, &r), 0);
		dns_check_prefix(&m, &full, len, &r);
		snprintf(what, sizeof(what), "cut at %zu", len);
		agree_with_libresolv(m.b, len, &r, what);
	}
}

/* Every seed of the fuzz corpus: libresolv reads each, and agrees. */
static void test_corpus_agrees_with_libresolv(void **state)
{
	_cleanup_(closedirp) DIR *d = opendir(CORPUS_DIR);
	unsigned files = 0, ok = 0;
	struct dirent *e;

	(void)state;
	if (!d)
		fail_msg("%s: %m (run from the top of the tree)", CORPUS_DIR);
	while ((e = readdir(d))) {
		_cleanup_fclose_ FILE *f = NULL;
		uint8_t buf[2 * CW_DNS_MSG_MAX];
		struct cw_dns_result r;
		char path[512];
		int lok;
		char why[256];
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", CORPUS_DIR, e->d_name);
		f = fopen(path, "rb");
		assert_non_null(f);
		n = fread(buf, 1, sizeof(buf), f);
		assert_int_equal(dns_parse(buf, n, &r), 0);
		if (dns_oracle_check(buf, n, &r, &lok, why, sizeof(why)) < 0)
			fail_msg("%s: disagrees with libresolv: %s", path, why);
		files++;
		ok += r.status == CW_DNS_OK;
	}
	print_message("# %u seeds, %u learnable\n", files, ok);
	assert_true(files >= 10);
	assert_true(ok >= 5);
}

/*
 * What a real encoder writes (dnsmasq, scripts/make-dns-corpus.py --dnsmasq) is learned: its
 * compression never meets the parser's stricter rules.
 */
static void test_dnsmasq_answers_learned(void **state)
{
	static const struct {
		const char *file, *qname;
		unsigned status, answers, first_type, skipped_limit;
	} want[] = {
	    {"dnsmasq-a", "tiles.oem.example", CW_DNS_OK, 1, CW_DNS_TYPE_A, 0},
	    {"dnsmasq-aaaa", "tiles.oem.example", CW_DNS_OK, 1, CW_DNS_TYPE_AAAA, 0},
	    {"dnsmasq-mixed-case", "tiles.oem.example", CW_DNS_OK, 1, CW_DNS_TYPE_A, 0},
	    {"dnsmasq-cname-chain-a", "maps.oem.example", CW_DNS_OK, 3, CW_DNS_TYPE_CNAME, 0},
	    {"dnsmasq-cname-chain-aaaa", "maps.oem.example", CW_DNS_OK, 3, CW_DNS_TYPE_CNAME, 0},
	    {"dnsmasq-many-a", "pool.oem.example", CW_DNS_OK, 16, CW_DNS_TYPE_A, 16},
	    {"dnsmasq-nodata", "pool.oem.example", CW_DNS_OK, 0, 0, 0},
	    {"dnsmasq-tc", NULL, CW_DNS_TRUNCATED, 0, 0, 0},
	    {"dnsmasq-nxdomain", NULL, CW_DNS_RCODE, 0, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		_cleanup_fclose_ FILE *f = NULL;
		uint8_t buf[2 * CW_DNS_MSG_MAX];
		struct cw_dns_result r;
		struct dns_name n;
		char path[256];
		size_t len;

		snprintf(path, sizeof(path), "%s/%s.bin", CORPUS_DIR, want[i].file);
		f = fopen(path, "rb");
		if (!f)
			fail_msg("%s: %m", path);
		len = fread(buf, 1, sizeof(buf), f);
		assert_int_equal(dns_parse(buf, len, &r), 0);
		if (r.status != want[i].status)
			fail_msg("%s: %s/%s", path, dns_status_str(r.status),
				 dns_reason_str(r.reason));
		assert_int_equal(r.n_answers, want[i].answers);
		assert_int_equal(r.skipped_limit, want[i].skipped_limit);
		if (want[i].answers)
			assert_int_equal(r.answers[0].type, want[i].first_type);
		if (want[i].qname) {
			assert_int_equal(dns_name_from_text(want[i].qname, &n), 0);
			assert_true(r.qname_hash == n.hash);
			/* the question owns the first record learned */
			if (r.n_answers)
				assert_true(r.answers[0].owner_hash == n.hash);
		}
	}
}

/* xorshift64: the same mutations on every run. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Messages of the cases with bytes changed: wherever libresolv reads one, it agrees. */
static void test_mutations_agree_with_libresolv(void **state)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	unsigned read_by_both = 0;

	(void)state;
	for (unsigned i = 0; i < MUTATIONS; i++) {
		const struct dns_case *c = &dns_cases[i % dns_cases_count];
		struct dns_msg m = {};
		struct cw_dns_result r;
		char why[256];
		int lok;

		c->build(&m);
		if (m.len > CW_DNS_MSG_MAX)
			continue;
		for (unsigned k = 0, n = 1 + rnd(&seed) % 3; k < n && m.len; k++) {
			size_t at = rnd(&seed) % m.len;

			switch (rnd(&seed) % 4) {
			case 0:
				m.b[at] ^= 1u << (rnd(&seed) % 8);
				break;
			case 1:
				m.b[at] = rnd(&seed);
				break;
			case 2:
				m.b[at] = 0xc0 | (rnd(&seed) % 2); /* a pointer */
				break;
			default:
				m.len = at; /* cut */
				break;
			}
		}
		assert_int_equal(dns_parse(m.b, m.len, &r), 0);
		if (dns_oracle_check(m.b, m.len, &r, &lok, why, sizeof(why)) < 0)
			fail_msg("mutation %u of %s: %s", i, c->name, why);
		read_by_both += lok && r.status == CW_DNS_OK;
	}
	print_message("# %u mutations, %u learnable and read by libresolv\n", MUTATIONS,
		      read_by_both);
	assert_true(read_by_both > MUTATIONS / 20);
}

static void test_name_from_text(void **state)
{
	struct dns_name a, b;
	char text[300];

	(void)state;
	assert_int_equal(dns_name_from_text("Tiles.OEM.example.", &a), 0);
	assert_int_equal(dns_name_from_text("tiles.oem.example", &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(a.labels, 3);
	assert_int_equal(a.wire_len, 19);
	assert_memory_equal(a.wire, "\5tiles\3oem\7example", 19);
	/* Suffix hashes are the hashes of the parents. */
	assert_int_equal(dns_name_from_text("example", &b), 0);
	assert_true(a.suffix_hash[0] == b.hash);
	assert_int_equal(dns_name_from_text("oem.example", &b), 0);
	assert_true(a.suffix_hash[1] == b.hash);
	assert_true(a.suffix_hash[2] == a.hash);
	/* The hash as defined in bpf/cw_dns.h: FNV-1a 64 of "\7example\3oem\5tiles". */
	{
		const char *rev = "\7example\3oem\5tiles";
		uint64_t h = CW_DNS_HASH_BASIS;

		for (size_t i = 0; i < 18; i++)
			h = (h ^ (uint8_t)rev[i]) * CW_DNS_HASH_PRIME;
		assert_true(a.hash == h);
	}
	assert_int_equal(dns_name_from_text(".", &b), 0);
	assert_int_equal(b.labels, 0);
	assert_true(b.hash == CW_DNS_HASH_BASIS);

	assert_int_equal(dns_name_from_text("", &b), -EINVAL);
	assert_int_equal(dns_name_from_text("a..b", &b), -EINVAL);
	assert_int_equal(dns_name_from_text(".a", &b), -EINVAL);
	assert_int_equal(dns_name_from_text("a..", &b), -EINVAL);
	assert_int_equal(dns_name_from_text("a b.example", &b), -EINVAL);
	assert_int_equal(dns_name_from_text("*.example", &b), -EINVAL);
	assert_int_equal(dns_name_from_text("caf\xc3\xa9.example", &b), -EINVAL);
	memset(text, 'a', 64);
	text[64] = '\0';
	assert_int_equal(dns_name_from_text(text, &b), -EINVAL); /* a label of 64 */
	/* 4 labels of 63: 257 bytes */
	for (int i = 0; i < 4; i++) {
		memset(text + i * 64, 'a' + i, 63);
		text[i * 64 + 63] = '.';
	}
	text[4 * 64 - 1] = '\0';
	assert_int_equal(dns_name_from_text(text, &b), -ENAMETOOLONG);
	/* 33 labels */
	for (int i = 0; i < 33; i++) {
		text[2 * i] = 'a';
		text[2 * i + 1] = '.';
	}
	text[65] = '\0';
	assert_int_equal(dns_name_from_text(text, &b), -E2BIG);
	text[63] = '\0';
	assert_int_equal(dns_name_from_text(text, &b), 0);
	assert_int_equal(b.labels, 32);
}

static void test_name_to_text(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(
	    dns_name_to_text((const uint8_t *)"\5tiles\3oem\7example", 19, buf, sizeof(buf)), 17);
	assert_string_equal(buf, "tiles.oem.example");
	assert_int_equal(dns_name_to_text((const uint8_t *)"", 1, buf, sizeof(buf)), 1);
	assert_string_equal(buf, ".");
	assert_int_equal(dns_name_to_text((const uint8_t *)"\3a.b\0", 5, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "a\\046b");
	assert_int_equal(dns_name_to_text((const uint8_t *)"\5tiles\3oem\7example", 19, buf, 17),
			 -ENOSPC);
	assert_int_equal(
	    dns_name_to_text((const uint8_t *)"\5tiles\3oem\7example", 18, buf, sizeof(buf)),
	    -EINVAL);
	assert_int_equal(dns_name_to_text((const uint8_t *)"\5tiles\0\0", 8, buf, sizeof(buf)),
			 -EINVAL);
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(dns_status_str(CW_DNS_OK), "ok");
	assert_string_equal(dns_reason_str(CW_DNS_R_POINTER), "pointer");
	assert_string_equal(dns_reason_str(CW_DNS_R_COUNT_), "?");
	for (unsigned i = 0; i < CW_DNS_R_COUNT_; i++)
		assert_string_not_equal(dns_reason_str(i), "?");
}

static void test_null_arguments(void **state)
{
	struct cw_dns_result r;

	(void)state;
	assert_int_equal(dns_parse(NULL, 0, &r), -EINVAL);
	assert_int_equal(dns_parse("", 0, NULL), -EINVAL);
	assert_int_equal(dns_parse("", 0, &r), 0);
	assert_int_equal(r.status, CW_DNS_MALFORMED);
	assert_int_equal(r.reason, CW_DNS_R_SHORT);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(test_cut_at_every_byte),
	    cmocka_unit_test(test_corpus_agrees_with_libresolv),
	    cmocka_unit_test(test_dnsmasq_answers_learned),
	    cmocka_unit_test(test_mutations_agree_with_libresolv),
	    cmocka_unit_test(test_name_from_text),
	    cmocka_unit_test(test_name_to_text),
	    cmocka_unit_test(test_status_names),
	    cmocka_unit_test(test_null_arguments),
	};
	size_t n = dns_cases_count + ARRAY_SIZE(fixed);
	_cleanup_free_ struct CMUnitTest *tests = calloc(n, sizeof(*tests));
	_cleanup_free_ char *names = calloc(dns_cases_count, 64);

	if (!tests || !names)
		return 1;
	for (size_t i = 0; i < dns_cases_count; i++) {
		snprintf(names + 64 * i, 64, "test_case_%s", dns_cases[i].name);
		tests[i] = (struct CMUnitTest){.name = names + 64 * i,
					       .test_func = test_case,
					       .initial_state = (void *)&dns_cases[i]};
	}
	memcpy(tests + dns_cases_count, fixed, sizeof(fixed));
	return _cmocka_run_group_tests("dns", tests, n, NULL, NULL);
}
