// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: the ports the compiler gives each port set (userspace/lib/policy_compile.c,
 * emit_ports_for_proto() and its path for port sets of one rule), checked port by port
 * against a bitmap of what the rules allow, on generated policies: ranges unsorted,
 * overlapping, touching, single ports, both protocols, rules without ports, and prefixes nested
 * in a prefix of another rule (port sets of several rules).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_compile.h"
#include "util.h"

#define RULES 40
#define MAX_RANGES 6
#define CASES 25

struct gen_rule {
	int proto; /* POLICY_PROTO_* */
	size_t n;  /* 0: any port */
	uint16_t first[MAX_RANGES], last[MAX_RANGES];
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* Ranges drawn close together so that they overlap and touch often. */
static void gen_rule(struct gen_rule *g)
{
	g->proto = (int)rnd(3);
	g->n = rnd(8) == 0 ? 0 : 1 + rnd(MAX_RANGES);
	for (size_t i = 0; i < g->n; i++) {
		uint32_t first = 1 + rnd(60), len = rnd(4) == 0 ? 0 : rnd(20);

		if (rnd(10) == 0)
			first = 65500 + rnd(36);
		if (first + len > 65535)
			len = 65535 - first;
		g->first[i] = (uint16_t)first;
		g->last[i] = (uint16_t)(first + len);
	}
}

static const char *proto_yaml(int proto)
{
	return proto == POLICY_PROTO_TCP ? "tcp" : proto == POLICY_PROTO_UDP ? "udp" : "any";
}

/* Rule i names 10.<i>.0.0/16; with `nested`, rule 0 names 10.0.0.0/8, above every other. */
static char *policy_yaml(const struct gen_rule *g, bool nested)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	fprintf(f, "version: 1\napps:\n  a:\n    allow:\n");
	for (size_t i = 0; i < RULES; i++) {
		if (nested && i == 0)
			fprintf(f, "      - to: 10.0.0.0/8\n");
		else
			fprintf(f, "      - to: 10.%zu.0.0/16\n", i);
		fprintf(f, "        proto: %s\n", proto_yaml(g[i].proto));
		if (!g[i].n)
			continue;
		fprintf(f, "        ports: [");
		for (size_t j = 0; j < g[i].n; j++) {
			if (g[i].first[j] == g[i].last[j])
				fprintf(f, "%s%u", j ? ", " : "", g[i].first[j]);
			else
				fprintf(f, "%s%u-%u", j ? ", " : "", g[i].first[j], g[i].last[j]);
		}
		fprintf(f, "]\n");
	}
	assert_int_equal(fclose(f), 0);
	return buf;
}

static bool rule_allows(const struct gen_rule *g, int proto, uint32_t port)
{
	if (g->proto != POLICY_PROTO_ANY && g->proto != proto)
		return false;
	if (!g->n)
		return true;
	for (size_t j = 0; j < g->n; j++)
		if (port >= g->first[j] && port <= g->last[j])
			return true;
	return false;
}

/*
 * The spans of the port set of rule i's prefix must be exactly the ports its rules allow, each
 * attributed to the first rule (in file order) that allows it.
 */
static void check_prefix(const struct policy_maps *m, const struct gen_rule *g, size_t i,
			 bool nested)
{
	uint8_t addr[4] = { 10, (uint8_t)i, 1, 1 };
	uint32_t portset;

	assert_int_equal(policy_maps_lookup_dst(m, 0, AF_INET, addr, &portset), 1);
	for (int proto = POLICY_PROTO_TCP; proto <= POLICY_PROTO_UDP; proto++) {
		_cleanup_free_ struct policy_port_span *spans = NULL;
		uint32_t want[65536];
		size_t n = 0, k = 0;

		assert_int_equal(policy_maps_port_spans(m, portset,
							proto == POLICY_PROTO_TCP ? IPPROTO_TCP
										  : IPPROTO_UDP,
							&spans, &n),
				 0);
		for (uint32_t port = 0; port < 65536; port++) {
			want[port] = CW_RULE_NONE;
			if (nested && i != 0 && rule_allows(&g[0], proto, port))
				want[port] = 0;
			else if (rule_allows(&g[i], proto, port))
				want[port] = (uint32_t)i;
		}
		for (uint32_t port = 0; port < 65536; port++) {
			while (k < n && spans[k].last < port)
				k++;
			uint32_t got = k < n && spans[k].first <= port ? spans[k].rule : CW_RULE_NONE;

			if (got != want[port])
				fail_msg("rule %zu, proto %d, port %u: rule %u, expected %u", i, proto,
					 port, got, want[port]);
		}
	}
}

static void check_case(bool nested)
{
	struct gen_rule g[RULES];
	struct policy_error err = {};
	struct policy_maps *m = NULL;
	struct policy *p = NULL;
	char reason[256];
	_cleanup_free_ char *yaml = NULL;

	for (size_t i = 0; i < RULES; i++)
		gen_rule(&g[i]);
	yaml = policy_yaml(g, nested);
	if (policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &err) < 0)
		fail_msg("parse: %u:%u: %s\n%s", err.loc.line, err.loc.column, err.reason, yaml);
	if (policy_compile(p, 1, &m, reason, sizeof(reason)) < 0)
		fail_msg("compile: %s", reason);
	for (size_t i = 0; i < RULES; i++)
		check_prefix(m, g, i, nested);
	policy_maps_free(m);
	policy_free(p);
}

static void test_ports_of_one_rule_sets_match_the_rules(void **state)
{
	(void)state;
	for (int k = 0; k < CASES; k++)
		check_case(false);
}

static void test_ports_of_nested_prefixes_match_the_rules(void **state)
{
	(void)state;
	for (int k = 0; k < CASES; k++)
		check_case(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ports_of_one_rule_sets_match_the_rules),
		cmocka_unit_test(test_ports_of_nested_prefixes_match_the_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
