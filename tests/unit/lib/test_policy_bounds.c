// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the compiler checks its bounds before it expands a policy (issue 11, case 10).
 *
 * A policy under every parser limit can name billions of (prefix, rule) pairs: one 65536-entry
 * set named by 100000 rules. policy_compile() must refuse it with file:line:column and without
 * the memory the expansion would take; each bound is tried just at its limit (compiles) and one
 * past it (refused where it is crossed).
 *
 * Memory is bounded by running the compiler in a child under RLIMIT_AS (the address space the
 * parent already uses, plus a margin): an expansion before the check shows as -ENOMEM instead
 * of the expected error. AddressSanitizer reserves terabytes of address space, so the sanitizer
 * build runs the same tests without the limit.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_compile.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* ---- a policy text that knows its line numbers ---------------------------------------------- */

struct text {
	char *buf;
	size_t size;
	FILE *f;
	unsigned line; /* the line the next write starts on, 1-based */
};

static void text_open(struct text *t)
{
	*t = (struct text){.line = 1};
	t->f = open_memstream(&t->buf, &t->size);
	assert_non_null(t->f);
}

/* Append; returns the line the text starts on. */
static unsigned text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static unsigned text_add(struct text *t, const char *fmt, ...)
{
	char line[1024];
	unsigned first = t->line;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fputs(line, t->f);
	for (const char *c = line; *c; c++)
		t->line += *c == '\n';
	return first;
}

static struct policy *text_parse(struct text *t)
{
	struct policy_error err = {};
	struct policy *p = NULL;
	int r;

	assert_int_equal(fclose(t->f), 0);
	r = policy_parse_buffer("test.yaml", t->buf, t->size, &p, &err);
	free(t->buf);
	if (r < 0)
		fail_msg("parse failed: %s:%u:%u: %s", err.file, err.loc.line, err.loc.column,
			 err.reason);
	return p;
}

/* A set of n host prefixes: 10.0.0.0, 10.0.0.1, ... or 2001:db8::, 2001:db8::1, ... */
static void add_set(struct text *t, const char *name, size_t n, int family)
{
	text_add(t, "  %s:\n", name);
	for (size_t i = 0; i < n; i++)
		if (family == AF_INET)
			text_add(t, "    - 10.%zu.%zu.%zu\n", i >> 16, (i >> 8) & 255, i & 255);
		else
			text_add(t, "    - 2001:db8::%zx\n", i);
}

/* A rule: "      - to: TO" and, when n_ports, "ports: [1, 3, 5, ...]" (n single odd ports). */
static unsigned add_rule(struct text *t, const char *to, size_t n_ports)
{
	unsigned line = text_add(t, "      - to: %s\n", to);

	if (n_ports) {
		text_add(t, "        ports: [");
		for (size_t i = 0; i < n_ports; i++)
			text_add(t, "%s%zu", i ? ", " : "", 2 * i + 1);
		text_add(t, "]\n");
	}
	return line;
}

/* ---- compiling under a memory bound ---------------------------------------------------------- */

struct result {
	int r;
	size_t n_dst4, n_dst6, n_ports;
	char reason[512];
};

static size_t vm_size(void)
{
	char line[256];
	size_t kb = 0;
	FILE *f = fopen("/proc/self/status", "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
			break;
	fclose(f);
	assert_true(kb > 0);
	return kb * 1024;
}

/* Compile p in a child that may use `margin` bytes of address space more than this process. */
static struct result compile_bounded(const struct policy *p, size_t margin)
{
	struct result *shared, res;
	size_t limit = vm_size() + margin;
	int status;
	pid_t pid;

	shared =
	    mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	memset(shared, 0, sizeof(*shared));
	shared->r = 1; /* the child did not report */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct policy_maps *m = NULL;
		struct rlimit rl = {limit, limit};

#ifndef UNDER_ASAN
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(2);
#else
		(void)rl;
#endif
		shared->r = policy_compile(p, 1, &m, shared->reason, sizeof(shared->reason));
		if (m) {
			shared->n_dst4 = m->n_dst4;
			shared->n_dst6 = m->n_dst6;
			shared->n_ports = m->n_ports;
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	res = *shared;
	munmap(shared, sizeof(*shared));
	return res;
}

#define MIB ((size_t)1 << 20)

/* The reason of a refusal names the place: "test.yaml:LINE:COLUMN: ". */
static void assert_reason_at(const struct result *res, struct policy_loc loc, unsigned line)
{
	char where[64];

	assert_int_equal(loc.line, line);
	snprintf(where, sizeof(where), "test.yaml:%u:%u: ", loc.line, loc.column);
	if (strncmp(res->reason, where, strlen(where)) != 0)
		fail_msg("reason '%s' does not start with '%s'", res->reason, where);
}

static void assert_contains(const char *s, const char *what)
{
	if (!strstr(s, what))
		fail_msg("'%s' does not contain '%s'", s, what);
}

/* ---- the reproduction --------------------------------------------------------------------------
 */

static void test_set_named_by_100000_rules_is_refused_before_expanding(void **state)
{
	(void)state;
	struct text t;
	struct policy *p;
	struct result res;
	unsigned line33 = 0;

	text_open(&t);
	text_add(&t, "version: 1\nsets:\n");
	add_set(&t, "big", 65536, AF_INET);
	text_add(&t, "apps:\n  a:\n    allow:\n");
	for (size_t i = 0; i < 100000; i++) {
		unsigned l = add_rule(&t, "big", 0);
		if (i == 32)
			line33 = l;
	}
	p = text_parse(&t);
	assert_int_equal(p->n_rules, 100000);

	/* 6.5 billion pairs: refused in a few MiB, at the 33rd rule (32 * 65536 is the limit). */
	res = compile_bounded(p, 64 * MIB);
	assert_int_equal(res.r, -E2BIG);
	assert_reason_at(&res, p->apps[0].rules[32].to[0].loc, line33);
	assert_contains(res.reason, "app 'a': with set 'big' (65536 prefixes)");
	assert_contains(res.reason, "POLICY_MAPS_MAX_PAIRS");
	policy_free(p);
}

/* ---- (prefix, port range) pairs a rule names --------------------------------------------------
 */

/* The largest shape without ports: 65536 prefixes, 32 rules; compiles in bounded memory. */
static void test_set_named_by_32_rules_compiles_and_33_are_refused(void **state)
{
	(void)state;

	for (size_t n = 32; n <= 33; n++) {
		struct text t;
		struct policy *p;
		struct result res;
		unsigned last = 0;

		text_open(&t);
		text_add(&t, "version: 1\nsets:\n");
		add_set(&t, "big", 65536, AF_INET);
		text_add(&t, "apps:\n  a:\n    allow:\n");
		for (size_t i = 0; i < n; i++)
			last = add_rule(&t, "big", 0);
		p = text_parse(&t);

		res = compile_bounded(p, 256 * MIB);
		if (n == 32) {
			assert_int_equal(res.r, 0);
			assert_int_equal(res.n_dst4, 65536);
		} else {
			assert_int_equal(res.r, -E2BIG);
			assert_reason_at(&res, p->apps[0].rules[32].to[0].loc, last);
			assert_contains(res.reason, "more than 2097152 (prefix, port range) pairs");
		}
		policy_free(p);
	}
}

/* Port ranges weigh: 32768 prefixes x 64 ports is the limit; one more range is refused. */
static void test_port_ranges_count_in_the_pairs(void **state)
{
	(void)state;

	for (int over = 0; over <= 1; over++) {
		struct text t;
		struct policy *p;
		struct result res;
		unsigned line = 0;

		text_open(&t);
		text_add(&t, "version: 1\nsets:\n");
		add_set(&t, "s", 32768, AF_INET);
		text_add(&t, "apps:\n  a:\n    allow:\n");
		add_rule(&t, "s", 64);
		if (over)
			line = add_rule(&t, "192.0.2.1", 0);
		p = text_parse(&t);

		res = compile_bounded(p, 128 * MIB);
		if (!over) {
			assert_int_equal(res.r, 0);
			assert_int_equal(res.n_dst4, 32768);
		} else {
			assert_int_equal(res.r, -E2BIG);
			assert_reason_at(&res, p->apps[0].rules[1].to[0].loc, line);
			assert_contains(res.reason,
					"app 'a': with 192.0.2.1/32, the rules name more "
					"than 2097152 (prefix, port range) pairs");
		}
		policy_free(p);
	}
}

/* The other extreme: one prefix named by 32768 rules of 64 ports; compiles in bounded memory. */
static void test_one_prefix_with_the_most_port_ranges_compiles_in_bounded_memory(void **state)
{
	(void)state;
	struct text t;
	struct policy *p;
	struct result res;

	text_open(&t);
	text_add(&t, "version: 1\napps:\n  a:\n    allow:\n");
	for (size_t i = 0; i < 32768; i++)
		add_rule(&t, "0.0.0.0/0", 64);
	p = text_parse(&t);

	res = compile_bounded(p, 256 * MIB);
	assert_int_equal(res.r, 0);
	assert_int_equal(res.n_dst4, 1);
	assert_int_equal(res.n_ports, 2 * 64); /* rule 0 decides every port, TCP and UDP */
	policy_free(p);
}

/*
 * Pairs inherited from a containing prefix: 10.0.0.0/8 and 192.0.2.0/24 with 32 ports, and n
 * /32 inside 10.0.0.0/8 with 32 other ports. Each /32 is paired with both rules: 64 + 64 n
 * pairs; n = 32767 is the limit. The rules name only half of it, so the first check passes and
 * the count over the sorted prefixes refuses n = 32768.
 */
static void test_pairs_inherited_from_containing_prefixes_are_bounded(void **state)
{
	(void)state;

	for (size_t n = 32767; n <= 32768; n++) {
		struct text t;
		struct policy *p;
		struct result res;
		unsigned line;

		text_open(&t);
		text_add(&t, "version: 1\nsets:\n");
		add_set(&t, "hosts", n, AF_INET);
		text_add(&t, "apps:\n  a:\n    allow:\n");
		add_rule(&t, "[10.0.0.0/8, 192.0.2.0/24]", 32);
		line = text_add(&t, "      - to: hosts\n        ports: [");
		for (size_t i = 0; i < 32; i++)
			text_add(&t, "%s%zu", i ? ", " : "", 1000 + 2 * i);
		text_add(&t, "]\n");
		p = text_parse(&t);

		res = compile_bounded(p, 128 * MIB);
		if (n == 32767) {
			assert_int_equal(res.r, 0);
			assert_int_equal(res.n_dst4, n + 2);
		} else {
			assert_int_equal(res.r, -E2BIG);
			assert_reason_at(&res, p->apps[0].rules[1].loc, line);
			assert_contains(res.reason,
					"app 'a': 10.0.127.255/32, which this rule names");
			assert_contains(res.reason, "containing it too (32 pairs here)");
		}
		policy_free(p);
	}
}

/* ---- prefixes per map -------------------------------------------------------------------------
 */

/*
 * A 65536-prefix set named by two rules of app a and by app b fills one generation of the map
 * (a set counts once per app); one more inline prefix of that family is refused where it is.
 */
static void capacity_test(int family)
{
	for (int over = 0; over <= 1; over++) {
		struct text t;
		struct policy *p;
		struct result res;
		unsigned line = 0;

		text_open(&t);
		text_add(&t, "version: 1\nsets:\n");
		add_set(&t, "s", 65536, family);
		text_add(&t, "apps:\n  a:\n    allow:\n");
		add_rule(&t, "s", 0);
		add_rule(&t, "s", 1);
		text_add(&t, "  b:\n    allow:\n");
		add_rule(&t, "s", 0);
		/* The other family does not count. */
		add_rule(&t, family == AF_INET ? "2001:db8:ffff::1" : "192.0.2.1", 0);
		if (over)
			line =
			    add_rule(&t, family == AF_INET ? "192.0.2.1" : "2001:db8:ffff::1", 0);
		p = text_parse(&t);

		res = compile_bounded(p, 256 * MIB);
		if (!over) {
			assert_int_equal(res.r, 0);
			assert_int_equal(family == AF_INET ? res.n_dst4 : res.n_dst6,
					 family == AF_INET ? POLICY_MAPS_MAX_DST4
							   : POLICY_MAPS_MAX_DST6);
		} else {
			assert_int_equal(res.r, -E2BIG);
			assert_reason_at(&res, p->apps[1].rules[2].to[0].loc, line);
			assert_contains(res.reason, family == AF_INET
							? "more than 131072 IPv4 prefixes"
							: "more than 131072 IPv6 prefixes");
		}
		policy_free(p);
	}
}

static void test_ipv4_prefixes_at_capacity_compile_and_one_more_is_refused(void **state)
{
	(void)state;
	capacity_test(AF_INET);
}

static void test_ipv6_prefixes_at_capacity_compile_and_one_more_is_refused(void **state)
{
	(void)state;
	capacity_test(AF_INET6);
}

/* ---- port entries -----------------------------------------------------------------------------
 */

/* 2048 rules of 64 single ports, each on its own host: 2048 * 64 * 2 protocols fill the map. */
static void test_port_entries_at_capacity_compile_and_one_more_rule_is_refused(void **state)
{
	(void)state;

	for (size_t n = 2048; n <= 2049; n++) {
		struct text t;
		struct policy *p;
		struct result res;
		unsigned line = 0;
		char to[32];

		text_open(&t);
		text_add(&t, "version: 1\napps:\n  a:\n    allow:\n");
		for (size_t i = 0; i < n; i++) {
			snprintf(to, sizeof(to), "10.0.%zu.%zu", i >> 8, i & 255);
			line = add_rule(&t, to, 64);
		}
		p = text_parse(&t);

		res = compile_bounded(p, 128 * MIB);
		if (n == 2048) {
			assert_int_equal(res.r, 0);
			assert_int_equal(res.n_ports, POLICY_MAPS_MAX_PORTS);
		} else {
			assert_int_equal(res.r, -E2BIG);
			assert_reason_at(&res, p->apps[0].rules[2048].loc, line);
			assert_contains(res.reason, "more than 262144 port entries");
		}
		policy_free(p);
	}
}

/* ---- rules ------------------------------------------------------------------------------------
 */

static void test_more_rules_than_counters_are_refused(void **state)
{
	(void)state;
	struct policy p = {.path = "mem", .n_rules = CW_MAX_RULES + 1};
	struct policy_maps *m = NULL;
	char reason[256];

	assert_int_equal(policy_compile(&p, 0, &m, reason, sizeof(reason)), -E2BIG);
	assert_null(m);
	assert_string_equal(reason, "mem: too many rules (131073, at most 131072)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_named_by_100000_rules_is_refused_before_expanding),
	    cmocka_unit_test(test_set_named_by_32_rules_compiles_and_33_are_refused),
	    cmocka_unit_test(test_port_ranges_count_in_the_pairs),
	    cmocka_unit_test(test_one_prefix_with_the_most_port_ranges_compiles_in_bounded_memory),
	    cmocka_unit_test(test_pairs_inherited_from_containing_prefixes_are_bounded),
	    cmocka_unit_test(test_ipv4_prefixes_at_capacity_compile_and_one_more_is_refused),
	    cmocka_unit_test(test_ipv6_prefixes_at_capacity_compile_and_one_more_is_refused),
	    cmocka_unit_test(test_port_entries_at_capacity_compile_and_one_more_rule_is_refused),
	    cmocka_unit_test(test_more_rules_than_counters_are_refused),
	};
	return cmocka_run_group_tests_name("policy_bounds", tests, NULL, NULL);
}
