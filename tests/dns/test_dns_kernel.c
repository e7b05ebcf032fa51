// SPDX-License-Identifier: GPL-2.0-only
/*
 * The kernel's DNS parser (bpf/cw_dns.bpf.h, run by tests/dns/dns_parse.bpf.c) through
 * BPF_PROG_TEST_RUN: on every crafted response of dns_cases.c, on a response cut at every byte,
 * on the seed corpus and on mutated messages, the kernel's result is byte for byte the userspace
 * twin's (userspace/lib/dns.c), and the crafted ones give the expected result. Also how the message
 * is found: IPv4 and IPv6, UDP (its length, not the packet's), TCP (one whole message).
 * Loading BPF needs root: without it the suite is one test that says SKIP and why.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dns.h"
#include "dns_cases.h"
#include "dns_parse.skel.h"
#include "dns_test.h"
#include "util.h"

#define CORPUS_DIR  "tests/fuzz/corpus/dns"
#define FUZZ_CORPUS "build-fuzz/corpus-dns"
#define FUZZ_SAMPLE 5000
#define MUTATIONS   3000

/* Ethernet, IPv6 and TCP headers at most, then the message. */
#define HDR_MAX (14 + 40 + 20 + 2)

static struct dns_parse_bpf *skel;

enum transport { UDP4, UDP6, TCP4, TCP6 };

/* A packet as BPF_PROG_TEST_RUN takes it for cgroup_skb: Ethernet, IP, UDP or TCP, payload. */
static size_t packet(uint8_t *pkt, enum transport t, const uint8_t *msg, size_t len, size_t padding)
{
	bool six = t == UDP6 || t == TCP6, tcp = t == TCP4 || t == TCP6;
	size_t ip = six ? 40 : 20, l4 = tcp ? 20 + 2 : 8, pos = 0;
	size_t payload = l4 + len;

	memset(pkt, 0, HDR_MAX);
	/* Ethernet */
	pkt[12] = six ? 0x86 : 0x08;
	pkt[13] = six ? 0xdd : 0x00;
	pos = 14;
	if (six) {
		pkt[pos] = 0x60;
		pkt[pos + 4] = payload >> 8;
		pkt[pos + 5] = payload & 0xff;
		pkt[pos + 6] = tcp ? IPPROTO_TCP : IPPROTO_UDP;
		pkt[pos + 7] = 64;
		pkt[pos + 23] = 1; /* ::1 to ::1 */
		pkt[pos + 39] = 1;
	} else {
		pkt[pos] = 0x45;
		pkt[pos + 2] = (ip + payload) >> 8;
		pkt[pos + 3] = (ip + payload) & 0xff;
		pkt[pos + 8] = 64;
		pkt[pos + 9] = tcp ? IPPROTO_TCP : IPPROTO_UDP;
		memcpy(pkt + pos + 12, "\x7f\x00\x00\x35\x7f\x00\x00\x01", 8);
	}
	pos += ip;
	pkt[pos] = 0;
	pkt[pos + 1] = 53;
	pkt[pos + 2] = 0x9c;
	pkt[pos + 3] = 0x40;
	if (tcp) {
		pkt[pos + 12] = 5 << 4;
		pkt[pos + 13] = 0x18; /* PSH, ACK */
		pkt[pos + 20] = len >> 8;
		pkt[pos + 21] = len & 0xff;
	} else {
		pkt[pos + 4] = (8 + len) >> 8;
		pkt[pos + 5] = (8 + len) & 0xff;
	}
	pos += l4;
	memcpy(pkt + pos, msg, len);
	memset(pkt + pos + len, 0xaa, padding); /* bytes after the datagram (Ethernet padding) */
	return pos + len + padding;
}

/* Run the program on a packet; the result, and where it found the message. */
static int kernel_run(const uint8_t *pkt, size_t n, struct cw_dns_result *ret)
{
	struct dns_test_out out = {};
	struct cw_dns_result zero = {};
	__u32 key = 0;
	int err;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = n, .repeat = 1);

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.dns_out), &key, &out, 0), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(skel->maps.dns_res), &key, &zero, 0), 0);
	err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.dns_parse), &opts);
	if (err)
		fail_msg("BPF_PROG_TEST_RUN of %zu bytes: %s", n, strerror(-err));
	assert_int_equal(opts.retval, 1);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.dns_out), &key, &out), 0);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(skel->maps.dns_res), &key, ret), 0);
	assert_int_equal(out.runs, 1);
	return out.located;
}

/* The largest DNS message BPF_PROG_TEST_RUN takes in one packet (its data is one page). */
static size_t run_max_msg(void)
{
	return 4096 - 512 - HDR_MAX; /* headroom and skb_shared_info, with room to spare */
}

/* Kernel == twin on msg, carried by t; returns the twin's result. */
static void kernel_equals_twin(const uint8_t *msg, size_t len, enum transport t,
			       struct cw_dns_result *ret, const char *what)
{
	static uint8_t pkt[HDR_MAX + 2 * CW_DNS_MSG_MAX + 64];
	struct cw_dns_result twin, kernel;
	size_t n = packet(pkt, t, msg, len, 0);

	assert_int_equal(dns_parse(msg, len, &twin), 0);
	assert_int_equal(kernel_run(pkt, n, &kernel), DNS_TEST_PARSED);
	if (memcmp(&kernel, &twin, sizeof(twin)))
		fail_msg("%s: kernel %s/%s (%u answers), twin %s/%s (%u answers)", what,
			 dns_status_str(kernel.status), dns_reason_str(kernel.reason),
			 kernel.n_answers, dns_status_str(twin.status), dns_reason_str(twin.reason),
			 twin.n_answers);
	if (ret)
		*ret = twin;
}

#define NEED_BPF()                                                                                 \
	do {                                                                                       \
		(void)state;                                                                       \
		assert_non_null(skel);                                                             \
	} while (0)

static void test_case(void **state)
{
	const struct dns_case *c = *state;
	struct dns_msg m = {};
	struct cw_dns_result r;

	NEED_BPF();
	c->build(&m);
	if (m.len > run_max_msg()) {
		/* Only the length matters for these (too big, or exactly the maximum): the same
		 * message cut to what one test packet holds must still agree. */
		m.len = run_max_msg();
		kernel_equals_twin(m.b, m.len, UDP4, NULL, c->name);
		return;
	}
	kernel_equals_twin(m.b, m.len, UDP4, &r, c->name);
	c->check(&m, &r);
}

static void test_ipv6_and_tcp(void **state)
{
	static const enum transport ts[] = {UDP6, TCP4, TCP6};
	struct dns_msg m = {};
	struct cw_dns_result full, r;

	NEED_BPF();
	dns_build_rich(&m);
	assert_int_equal(dns_parse(m.b, m.len, &full), 0);
	assert_int_equal(full.status, CW_DNS_OK);
	for (size_t i = 0; i < ARRAY_SIZE(ts); i++) {
		kernel_equals_twin(m.b, m.len, ts[i], &r, "rich");
		assert_memory_equal(&r, &full, sizeof(r));
	}
}

/* A UDP datagram is as long as its header says, not as the packet (trailing padding). */
static void test_udp_length_not_packet_length(void **state)
{
	static uint8_t pkt[HDR_MAX + CW_DNS_MSG_MAX];
	struct dns_msg m = {};
	struct cw_dns_result twin, kernel;
	size_t n;

	NEED_BPF();
	dns_build_rich(&m);
	assert_int_equal(dns_parse(m.b, m.len, &twin), 0);
	n = packet(pkt, UDP4, m.b, m.len, 17);
	assert_int_equal(kernel_run(pkt, n, &kernel), DNS_TEST_PARSED);
	assert_memory_equal(&kernel, &twin, sizeof(twin));
	assert_int_equal(kernel.status, CW_DNS_OK);
}

/* A TCP segment holding part of a message, or more than one, is not parsed. */
static void test_tcp_segment_not_one_message(void **state)
{
	static uint8_t pkt[HDR_MAX + CW_DNS_MSG_MAX];
	struct dns_msg m = {};
	struct cw_dns_result kernel;
	size_t n;

	NEED_BPF();
	dns_build_rich(&m);
	n = packet(pkt, TCP4, m.b, m.len, 0);
	/* the length says one byte more than the segment holds */
	pkt[14 + 20 + 20 + 1]++;
	assert_int_equal(kernel_run(pkt, n, &kernel), DNS_TEST_TCP_FRAMING);
	assert_int_equal(kernel.status, CW_DNS_NONE);
	/* a second message after the first */
	n = packet(pkt, TCP4, m.b, m.len, 0);
	memcpy(pkt + n, pkt + 14 + 20 + 20, 2 + m.len);
	n += 2 + m.len;
	assert_int_equal(kernel_run(pkt, n, &kernel), DNS_TEST_TCP_FRAMING);
	assert_int_equal(kernel.status, CW_DNS_NONE);
	/* the control: exactly one */
	n = packet(pkt, TCP4, m.b, m.len, 0);
	assert_int_equal(kernel_run(pkt, n, &kernel), DNS_TEST_PARSED);
	assert_int_equal(kernel.status, CW_DNS_OK);
}

/* The busy counter at the start of every CPU's scratch (struct cw_dns_slot): set, or read max. */
static unsigned scratch_busy(int set)
{
	int fd = bpf_map__fd(skel->maps.cw_dns_scratch), cpus = libbpf_num_possible_cpus();
	size_t size = (bpf_map__value_size(skel->maps.cw_dns_scratch) + 7) & ~(size_t)7;
	_cleanup_free_ uint8_t *v = calloc(cpus, size);
	unsigned max = 0;
	__u32 key = 0;

	assert_true(cpus > 0);
	assert_non_null(v);
	assert_int_equal(bpf_map_lookup_elem(fd, &key, v), 0);
	for (int c = 0; c < cpus; c++) {
		uint32_t *busy = (uint32_t *)(v + c * size);

		if (set >= 0)
			*busy = set;
		max = *busy > max ? *busy : max;
	}
	if (set >= 0)
		assert_int_equal(bpf_map_update_elem(fd, &key, v, 0), 0);
	return max;
}

/*
 * A parse that finds the scratch in use (a run it interrupted on its CPU) gives no result and
 * leaves the scratch to that run; every parse releases it.
 */
static void test_scratch_in_use_gives_no_result(void **state)
{
	static uint8_t pkt[HDR_MAX + CW_DNS_MSG_MAX];
	struct dns_msg m = {};
	struct cw_dns_result kernel;
	size_t n;

	NEED_BPF();
	dns_build_rich(&m);
	n = packet(pkt, UDP4, m.b, m.len, 0);
	/* the control: free, parsed, and released */
	assert_int_equal(scratch_busy(-1), 0);
	assert_int_equal(kernel_run(pkt, n, &kernel), DNS_TEST_PARSED);
	assert_int_equal(kernel.status, CW_DNS_OK);
	assert_int_equal(scratch_busy(-1), 0);
	/* in use on every CPU */
	scratch_busy(1);
	assert_int_equal(kernel_run(pkt, n, &kernel), DNS_TEST_BUSY);
	assert_int_equal(kernel.status, CW_DNS_NONE);
	assert_int_equal(scratch_busy(-1), 1);
	scratch_busy(0);
	assert_int_equal(kernel_run(pkt, n, &kernel), DNS_TEST_PARSED);
	assert_int_equal(kernel.status, CW_DNS_OK);
}

static void test_cut_at_every_byte(void **state)
{
	struct cw_dns_result full, r;
	struct dns_msg m = {};

	NEED_BPF();
	dns_build_rich(&m);
	assert_int_equal(dns_parse(m.b, m.len, &full), 0);
	for (size_t len = 0; len <= m.len; len++) {
		char what[32];

		snprintf(what, sizeof(what), "cut at %zu", len);
		kernel_equals_twin(m.b, len, UDP4, &r, what);
		dns_check_prefix(&m, &full, len, &r);
	}
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* Kernel == twin on every file of a folder (at most max); returns how many. */
static unsigned corpus_equal(const char *dir, unsigned max)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	unsigned files = 0;
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d)) && files < max) {
		_cleanup_fclose_ FILE *f = NULL;
		uint8_t buf[2 * CW_DNS_MSG_MAX];
		char path[512];
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		assert_non_null(f);
		n = fread(buf, 1, sizeof(buf), f);
		if (n > run_max_msg())
			n = run_max_msg();
		kernel_equals_twin(buf, n, UDP4, NULL, path);
		files++;
	}
	return files;
}

/*
 * The seed corpus, and a sample of what libFuzzer found from it (`make fuzz` keeps it in
 * FUZZ_CORPUS; a folder given in DNS_FUZZ_CORPUS instead).
 */
static void test_corpus(void **state)
{
	const char *fuzzed = getenv("DNS_FUZZ_CORPUS") ?: FUZZ_CORPUS;
	unsigned seeds, found;

	NEED_BPF();
	seeds = corpus_equal(CORPUS_DIR, UINT32_MAX);
	if (!seeds)
		fail_msg("%s: no seed (run from the top of the tree)", CORPUS_DIR);
	found = corpus_equal(fuzzed, FUZZ_SAMPLE);
	print_message("# %u seeds, %u fuzzed messages of %s\n", seeds, found, fuzzed);
	assert_true(seeds >= 10);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_mutations(void **state)
{
	uint64_t seed = 0x2545f4914f6cdd1dULL;
	unsigned counts[CW_DNS_MALFORMED + 1] = {};

	NEED_BPF();
	for (unsigned i = 0; i < MUTATIONS; i++) {
		const struct dns_case *c = &dns_cases[i % dns_cases_count];
		struct dns_msg m = {};
		struct cw_dns_result r;
		char what[64];

		c->build(&m);
		if (m.len > run_max_msg())
			m.len = run_max_msg();
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
				m.b[at] = 0xc0 | (rnd(&seed) % 2);
				break;
			default:
				m.len = at;
				break;
			}
		}
		snprintf(what, sizeof(what), "mutation %u of %s", i, c->name);
		kernel_equals_twin(m.b, m.len, UDP4, &r, what);
		counts[r.status]++;
	}
	print_message("# %u mutations: %u ok, %u malformed, %u other\n", MUTATIONS,
		      counts[CW_DNS_OK], counts[CW_DNS_MALFORMED],
		      MUTATIONS - counts[CW_DNS_OK] - counts[CW_DNS_MALFORMED]);
	assert_true(counts[CW_DNS_OK] > 0 && counts[CW_DNS_MALFORMED] > 0);
}

static int setup(void **state)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	(void)state;
	skel = dns_parse_bpf__open_and_load();
	if (!skel) {
		/* As root a program that does not load is a failure, not a skip. */
		print_message("# dns_parse.bpf.o does not load: %s\n", strerror(errno));
		return -1;
	}
	if (bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.dns_parse), &info, &len) == 0)
		print_message("# dns_parse: %u instructions (xlated), %u verified\n",
			      info.xlated_prog_len / 8, info.verified_insns);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	dns_parse_bpf__destroy(skel);
	skel = NULL;
	return 0;
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(test_ipv6_and_tcp),
	    cmocka_unit_test(test_udp_length_not_packet_length),
	    cmocka_unit_test(test_tcp_segment_not_one_message),
	    cmocka_unit_test(test_scratch_in_use_gives_no_result),
	    cmocka_unit_test(test_cut_at_every_byte),
	    cmocka_unit_test(test_corpus),
	    cmocka_unit_test(test_mutations),
	};
	size_t n = dns_cases_count + ARRAY_SIZE(fixed);
	_cleanup_free_ struct CMUnitTest *tests = calloc(n, sizeof(*tests));
	_cleanup_free_ char *names = calloc(dns_cases_count, 64);

	if (geteuid() != 0) {
		/* One TAP line for tests/run.sh (cmocka reports a skipped test as "not ok"). */
		printf("1..1\nok 1 - dns_kernel # SKIP needs root to load BPF programs\n");
		return 0;
	}
	if (!tests || !names)
		return 1;
	for (size_t i = 0; i < dns_cases_count; i++) {
		snprintf(names + 64 * i, 64, "test_kernel_case_%s", dns_cases[i].name);
		tests[i] = (struct CMUnitTest){.name = names + 64 * i,
					       .test_func = test_case,
					       .initial_state = (void *)&dns_cases[i]};
	}
	memcpy(tests + dns_cases_count, fixed, sizeof(fixed));
	return _cmocka_run_group_tests("dns_kernel", tests, n, setup, teardown);
}
