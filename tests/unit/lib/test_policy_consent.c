// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of driver consent without a kernel: the `consent:` section and rules' `purpose:`
 * (every validation error with its exact location), what the compiler gives the kernel (a
 * purpose mask per port entry; a switch only takes permissions away, checked as a property over
 * generated policies and switch states against a naive reading of the policy), and the consent
 * state file (lib/consent.h: parsing, defaults, per-drive reset, dropped switches, tightening
 * when unreadable).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "consent.h"
#include "policy.h"
#include "policy_compile.h"
#include "policy_lint.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_maps *, policy_maps_free)

static struct policy *parse_ok(const char *yaml)
{
	struct policy *p = NULL;
	struct policy_error e;
	int r = policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e);

	if (r < 0)
		fail_msg("unexpected error %d: %s:%u:%u: %s", r, e.file, e.loc.line, e.loc.column,
			 e.reason);
	return p;
}

static void assert_error(const char *yaml, unsigned line, unsigned column, const char *reason)
{
	struct policy *p = NULL;
	struct policy_error e;
	int r = policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e);

	if (r >= 0) {
		policy_free(p);
		fail_msg("parsed, expected t.yaml:%u:%u: %s", line, column, reason);
	}
	assert_int_equal(r, -EINVAL);
	if (e.loc.line != line || e.loc.column != column || !strstr(e.reason, reason))
		fail_msg("expected t.yaml:%u:%u: ...%s...\n     got %s:%u:%u: %s", line, column,
			 reason, e.file, e.loc.line, e.loc.column, e.reason);
}

/* A consent section (lines 2-...) and one app whose one rule serves PURPOSE (line after). */
#define CONSENT_HEAD                                                                               \
	"version: 1\n"                                                                             \
	"consent:\n"                                                                               \
	"  purposes: [analytics, crash-reports]\n"                                                 \
	"  mandatory: [ecall]\n"

static void test_valid_consent_section(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok(CONSENT_HEAD
		     "  switches:\n"
		     "    - {name: share-data, purposes: [analytics, crash-reports], default: "
		     "on, reset: persistent}\n"
		     "    - {name: crash, purposes: crash-reports, default: off, reset: drive}\n"
		     "apps:\n"
		     "  a:\n"
		     "    allow:\n"
		     "      - {to: 192.0.2.1, purpose: analytics}\n"
		     "      - {to: 192.0.2.2, purpose: ecall}\n"
		     "      - {to: 192.0.2.3}\n");
	(void)state;
	assert_int_equal(p->consent.n_purposes, 3);
	assert_false(p->consent.purposes[1].mandatory);
	assert_true(p->consent.purposes[2].mandatory);
	assert_int_equal(p->consent.n_switches, 2);
	assert_int_equal(p->consent.switches[0].purposes, 0x3);
	assert_true(p->consent.switches[0].default_on);
	assert_int_equal(p->consent.switches[0].reset, POLICY_RESET_PERSISTENT);
	assert_int_equal(p->consent.switches[1].purposes, 0x2);
	assert_false(p->consent.switches[1].default_on);
	assert_int_equal(p->consent.switches[1].reset, POLICY_RESET_DRIVE);
	assert_int_equal(p->apps[0].rules[0].purpose, 0);
	assert_int_equal(p->apps[0].rules[1].purpose, 2);
	assert_int_equal(p->apps[0].rules[2].purpose, -1);
	/* Defaults: crash off; its purpose is denied, analytics is not, ecall never. */
	assert_int_equal(policy_consent_deny(p, NULL), CW_PURPOSE_BIT(1));
	assert_int_equal(policy_consent_deny(p, (bool[]){false, false}),
			 CW_PURPOSE_BIT(0) | CW_PURPOSE_BIT(1));
	assert_int_equal(policy_consent_deny(p, (bool[]){true, true}), 0);
}

static void test_switch_may_not_cover_a_mandatory_purpose(void **state)
{
	(void)state;
	assert_error(CONSENT_HEAD "  switches:\n"
				  "    - name: s\n"
				  "      purposes: [analytics, ecall]\n"
				  "      default: on\n"
				  "      reset: drive\n"
				  "apps: {}\n",
		     7, 29,
		     "purpose 'ecall' is mandatory (line 4, column 15): no switch may turn it off");
}

static void test_rule_purpose_must_be_declared(void **state)
{
	(void)state;
	assert_error(
	    CONSENT_HEAD "apps:\n  a:\n    allow:\n      - {to: 192.0.2.1, purpose: ads}\n", 8, 34,
	    "unknown purpose 'ads': declare it in 'consent.purposes' or "
	    "'consent.mandatory'");
	assert_error("version: 1\napps:\n  a:\n    allow:\n      - {to: 192.0.2.1, purpose: ads}\n",
		     5, 34,
		     "unknown purpose 'ads': the policy has no 'consent:' declaring purposes");
}

static void test_switch_purpose_must_be_declared(void **state)
{
	(void)state;
	assert_error(CONSENT_HEAD
		     "  switches:\n"
		     "    - {name: s, purposes: [location], default: on, reset: drive}\n"
		     "apps: {}\n",
		     6, 28, "unknown purpose 'location': declare it in 'consent.purposes'");
}

static void test_duplicates_are_refused(void **state)
{
	(void)state;
	assert_error("version: 1\nconsent:\n  purposes: [a, b]\n  mandatory: [a]\napps: {}\n", 4,
		     15, "duplicate purpose 'a' (first at line 3, column 14)");
	assert_error(CONSENT_HEAD
		     "  switches:\n"
		     "    - {name: s, purposes: [analytics], default: on, reset: drive}\n"
		     "    - {name: s, purposes: [analytics], default: on, reset: drive}\n"
		     "apps: {}\n",
		     7, 14, "duplicate switch 's' (first at line 6, column 7)");
	assert_error(CONSENT_HEAD "  switches:\n"
				  "    - {name: s, purposes: [analytics, analytics], default: on, "
				  "reset: drive}\n"
				  "apps: {}\n",
		     6, 39, "switch 's' names purpose 'analytics' twice");
	assert_error(CONSENT_HEAD "apps:\n  a:\n    allow:\n"
				  "      - {to: 192.0.2.1, purpose: analytics, purpose: ecall}\n",
		     8, 45, "duplicate key 'purpose'");
}

static void test_switch_needs_every_key(void **state)
{
	(void)state;
	assert_error(CONSENT_HEAD
		     "  switches:\n    - {name: s, purposes: [analytics], reset: drive}\n"
		     "apps: {}\n",
		     6, 7, "missing required key 'default' in switch");
	assert_error(CONSENT_HEAD
		     "  switches:\n    - {name: s, purposes: [analytics], default: on}\n"
		     "apps: {}\n",
		     6, 7, "missing required key 'reset' in switch");
}

static void test_bad_values_are_refused(void **state)
{
	(void)state;
	assert_error(CONSENT_HEAD
		     "  switches:\n"
		     "    - {name: s, purposes: [analytics], default: yes, reset: drive}\n"
		     "apps: {}\n",
		     6, 49, "'default' must be on or off, not 'yes'");
	assert_error(CONSENT_HEAD
		     "  switches:\n"
		     "    - {name: s, purposes: [analytics], default: on, reset: never}\n"
		     "apps: {}\n",
		     6, 60, "'reset' must be drive or persistent, not 'never'");
	assert_error("version: 1\nconsent:\n  purposes: [Analytics]\napps: {}\n", 3, 14,
		     "invalid purpose 'Analytics'");
	assert_error("version: 1\nconsent:\n  purposes: [a-]\napps: {}\n", 3, 14,
		     "invalid purpose 'a-'");
	assert_error("version: 1\nconsent:\n  purposes: [x]\n  extra: 1\napps: {}\n", 4, 3,
		     "unknown key 'extra' (expected purposes, mandatory, switches)");
	assert_error("version: 1\nconsent: [x]\napps: {}\n", 2, 10, "'consent'");
}

static void test_limits(void **state)
{
	_cleanup_free_ char *yaml = NULL;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	(void)state;
	assert_non_null(f);
	fprintf(f, "version: 1\nconsent:\n  purposes: [");
	for (int i = 0; i <= POLICY_MAX_PURPOSES; i++)
		fprintf(f, "%sp%d", i ? ", " : "", i);
	fprintf(f, "]\napps: {}\n");
	fclose(f);
	yaml = buf;
	/* "  purposes: [p0, p1, ..., p9, p10, ...": p31 is the 32nd. */
	assert_error(yaml, 3, 14 + 4 * 10 + 5 * 21, "too many purposes: the limit is 31");
}

/* ---- what the kernel gets ------------------------------------------------------------------- */

static const char *const overlap_policy = CONSENT_HEAD
    "  switches:\n"
    "    - {name: analytics, purposes: [analytics], default: on, reset: drive}\n"
    "    - {name: crash, purposes: [crash-reports], default: on, reset: persistent}\n"
    "apps:\n"
    "  a:\n"
    "    allow:\n"
    "      - {to: 198.51.100.20, ports: [9000], purpose: crash-reports}\n"
    "      - {to: 198.51.100.0/24, ports: [9000-9001], proto: udp, purpose: analytics}\n"
    "      - {to: 198.51.100.20, ports: [443], proto: tcp}\n"
    "      - {to: 198.51.100.20, ports: [7000], purpose: ecall}\n";

static enum cw_verdict judge(const struct policy_maps *m, const char *ip, uint16_t proto,
			     uint16_t port)
{
	uint8_t a[4];

	assert_int_equal(inet_pton(AF_INET, ip, a), 1);
	return policy_maps_judge(m, 0, AF_INET, a, proto, port, NULL, NULL);
}

static void test_overlapping_rules_stay_allowed_while_one_purpose_is_on(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok(overlap_policy);
	_cleanup_(policy_maps_freep) struct policy_maps *m = NULL;
	char reason[256];

	(void)state;
	assert_int_equal(policy_compile(p, 0, &m, reason, sizeof(reason)), 0);
	for (size_t i = 0; i < m->n_ports; i++)
		assert_int_not_equal(m->ports[i].val.purposes, 0);
	for (size_t i = 0; i < m->n_hosts; i++)
		assert_int_not_equal(m->hosts[i].val.purposes, 0);

	m->consent_deny = policy_consent_deny(p, (bool[]){true, false}); /* crash off */
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_TCP, 9000), CW_VERDICT_DENY_CONSENT);
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_UDP, 9000), CW_VERDICT_ALLOW_RULE);
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_TCP, 443), CW_VERDICT_ALLOW_RULE);
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_TCP, 7000), CW_VERDICT_ALLOW_RULE);
	m->consent_deny = policy_consent_deny(p, (bool[]){false, false}); /* both off */
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_UDP, 9000), CW_VERDICT_DENY_CONSENT);
	assert_int_equal(judge(m, "198.51.100.21", IPPROTO_UDP, 9001), CW_VERDICT_DENY_CONSENT);
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_TCP, 443), CW_VERDICT_ALLOW_RULE);
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_UDP, 7000), CW_VERDICT_ALLOW_RULE);
	/* Refused by the policy stays refused, by no rule. */
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_TCP, 9001), CW_VERDICT_DENY_NO_RULE);
	/* Even a mask with every bit (the mandatory and the no-purpose ones too) leaves them. */
	m->consent_deny = 0xffffffffu & ~CW_PURPOSE_NONE;
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_TCP, 443), CW_VERDICT_ALLOW_RULE);
	m->consent_deny = 0xffffffffu;
	assert_int_equal(judge(m, "198.51.100.20", IPPROTO_TCP, 443), CW_VERDICT_ALLOW_RULE);
}

/* Host-name rules: the name's entry carries the purposes of every rule naming it. */
static void test_host_name_rules_carry_purposes(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok(
	    "version: 1\nresolvers: [127.0.0.53]\n"
	    "consent:\n  purposes: [crash-reports, analytics]\n  switches:\n"
	    "    - {name: crash, purposes: [crash-reports], default: on, reset: persistent}\n"
	    "    - {name: stats, purposes: [analytics], default: on, reset: persistent}\n"
	    "apps:\n  a:\n    allow:\n"
	    "      - {to: crash.oem.example, ports: [443], purpose: crash-reports}\n"
	    "      - {to: \"*.oem.example\", ports: [443], proto: tcp, purpose: analytics}\n");
	_cleanup_(policy_maps_freep) struct policy_maps *m = NULL;
	char reason[256];

	(void)state;
	assert_int_equal(policy_compile(p, 0, &m, reason, sizeof(reason)), 0);
	m->consent_deny = policy_consent_deny(p, (bool[]){false, true});
	/* TCP: the wildcard's analytics rule still allows; UDP: crash-reports alone, off. */
	assert_int_equal(
	    policy_maps_judge_name(m, 0, "crash.oem.example", IPPROTO_TCP, 443, NULL, NULL),
	    CW_VERDICT_ALLOW_RULE);
	assert_int_equal(
	    policy_maps_judge_name(m, 0, "crash.oem.example", IPPROTO_UDP, 443, NULL, NULL),
	    CW_VERDICT_DENY_CONSENT);
	m->consent_deny = policy_consent_deny(p, (bool[]){false, false});
	assert_int_equal(
	    policy_maps_judge_name(m, 0, "crash.oem.example", IPPROTO_TCP, 443, NULL, NULL),
	    CW_VERDICT_DENY_CONSENT);
	assert_int_equal(
	    policy_maps_judge_name(m, 0, "tiles.oem.example", IPPROTO_TCP, 443, NULL, NULL),
	    CW_VERDICT_DENY_CONSENT);
	assert_int_equal(
	    policy_maps_judge_name(m, 0, "tiles.oem.example", IPPROTO_TCP, 80, NULL, NULL),
	    CW_VERDICT_DENY_NO_RULE);
}

/* policy check warns about a switch that changes nothing. */
static void test_lint_switch_without_effect(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
	    parse_ok(CONSENT_HEAD
		     "  switches:\n"
		     "    - {name: used, purposes: [analytics], default: on, reset: drive}\n"
		     "    - {name: idle, purposes: [crash-reports], default: on, reset: drive}\n"
		     "apps:\n  a:\n    allow:\n"
		     "      - {to: 192.0.2.1, purpose: analytics}\n");
	struct policy_lint *l = NULL;

	(void)state;
	assert_int_equal(policy_lint(p, &l), 0);
	assert_int_equal(l->n_total, 1);
	assert_int_equal(l->warnings[0].kind, POLICY_LINT_SWITCH_NO_EFFECT);
	assert_int_equal(l->warnings[0].loc.line, 7);
	assert_int_equal(l->warnings[0].loc.column, 7);
	assert_non_null(strstr(l->warnings[0].reason, "switch 'idle' covers no purpose"));
	policy_lint_free(l);
}

/* ---- the property: a switch never loosens --------------------------------------------------- */

struct gen_rule {
	uint8_t net;   /* 198.51.100.(net*16)/len */
	uint8_t len;   /* 28 or 32 (the /32 is .net*16+1) */
	uint8_t proto; /* 0 any, 1 tcp, 2 udp */
	uint16_t first, last;
	int purpose; /* -1 or 0..n_purposes-1 */
};

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (rng_state >> 8) % n;
}

static bool naive_covers(const struct gen_rule *r, uint8_t host, uint16_t proto, uint16_t port)
{
	bool addr = r->len == 28 ? host / 16 == r->net : host == r->net * 16 + 1;
	bool pr = r->proto == 0 || (r->proto == 1) == (proto == IPPROTO_TCP);

	return addr && pr && port >= r->first && port <= r->last;
}

static void test_property_a_switch_never_loosens(void **state)
{
	static const char *const purposes[] = {"p0", "p1", "p2", "p3", "m0"};
	(void)state;
	for (int round = 0; round < 60; round++) {
		struct gen_rule rules[8];
		size_t n_rules = 2 + rnd(7), n_switches = 1 + rnd(3);
		uint32_t sw_purposes[3];
		char *yaml = NULL;
		size_t size = 0;
		FILE *f = open_memstream(&yaml, &size);
		_cleanup_(policy_freep) struct policy *p = NULL;
		_cleanup_(policy_maps_freep) struct policy_maps *m = NULL;
		char reason[256];

		fprintf(f, "version: 1\nconsent:\n  purposes: [p0, p1, p2, p3]\n"
			   "  mandatory: [m0]\n  switches:\n");
		for (size_t s = 0; s < n_switches; s++) {
			sw_purposes[s] = 1u + rnd(15); /* a non-empty subset of p0..p3 */
			fprintf(f, "    - name: s%zu\n      purposes: [", s);
			for (int k = 0, first = 1; k < 4; k++)
				if (sw_purposes[s] & (1u << k)) {
					fprintf(f, "%s%s", first ? "" : ", ", purposes[k]);
					first = 0;
				}
			fprintf(f, "]\n      default: %s\n      reset: drive\n",
				rnd(2) ? "on" : "off");
		}
		fprintf(f, "apps:\n  a:\n    allow:\n");
		for (size_t i = 0; i < n_rules; i++) {
			struct gen_rule *r = &rules[i];

			r->net = (uint8_t)rnd(3);
			r->len = rnd(2) ? 28 : 32;
			r->proto = (uint8_t)rnd(3);
			r->first = (uint16_t)(1000 + rnd(20));
			r->last = (uint16_t)(r->first + rnd(10));
			r->purpose = (int)rnd(6) - 1; /* -1: none; 4: the mandatory one */
			fprintf(f, "      - to: 198.51.100.%u%s\n        ports: [%u-%u]\n",
				r->net * 16 + (r->len == 32), r->len == 28 ? "/28" : "", r->first,
				r->last);
			if (r->proto)
				fprintf(f, "        proto: %s\n", r->proto == 1 ? "tcp" : "udp");
			if (r->purpose >= 0)
				fprintf(f, "        purpose: %s\n", purposes[r->purpose]);
		}
		fclose(f);
		p = parse_ok(yaml);
		free(yaml);
		assert_int_equal(
		    policy_compile(p, (uint32_t)(round & 1), &m, reason, sizeof(reason)), 0);

		for (uint32_t states = 0; states < (1u << n_switches); states++) {
			bool on[POLICY_MAX_SWITCHES] = {};
			uint32_t off_purposes = 0; /* bits of p0..p3 that some off switch covers */

			for (size_t s = 0; s < n_switches; s++) {
				on[s] = states & (1u << s);
				if (!on[s])
					off_purposes |= sw_purposes[s];
			}
			for (uint8_t host = 0; host < 48; host += 1 + rnd(3))
				for (int pi = 0; pi < 2; pi++)
					for (uint16_t port = 998; port < 1032; port++) {
						uint16_t proto = pi ? IPPROTO_UDP : IPPROTO_TCP;
						uint8_t a[4] = {198, 51, 100, host};
						bool policy_allows = false, consent_allows = false;
						enum cw_verdict plain, with;

						for (size_t i = 0; i < n_rules; i++) {
							const struct gen_rule *r = &rules[i];

							if (!naive_covers(r, host, proto, port))
								continue;
							policy_allows = true;
							if (r->purpose < 0 || r->purpose == 4 ||
							    !(off_purposes & (1u << r->purpose)))
								consent_allows = true;
						}
						m->consent_deny = 0;
						plain = policy_maps_judge(m, 0, AF_INET, a, proto,
									  port, NULL, NULL);
						m->consent_deny = policy_consent_deny(p, on);
						with = policy_maps_judge(m, 0, AF_INET, a, proto,
									 port, NULL, NULL);
						/* The compiled policy is the policy. */
						assert_int_equal(plain == CW_VERDICT_ALLOW_RULE,
								 policy_allows);
						/* Never loosens: allowed with consent => allowed.
						 */
						if (with == CW_VERDICT_ALLOW_RULE)
							assert_int_equal(plain,
									 CW_VERDICT_ALLOW_RULE);
						/* Exactly: allowed iff an allowing rule is on. */
						assert_int_equal(with == CW_VERDICT_ALLOW_RULE,
								 consent_allows);
						/* Refused by consent only what the policy allows.
						 */
						assert_int_equal(with == CW_VERDICT_DENY_CONSENT,
								 policy_allows && !consent_allows);
					}
		}
	}
}

/* ---- the state file ------------------------------------------------------------------------- */

static const char *const boot_a = "11111111-2222-3333-4444-555555555555";
static const char *const boot_b = "aaaaaaaa-2222-3333-4444-555555555555";

static void test_state_round_trip_and_resolve(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok(overlap_policy);
	struct consent_state s, back;
	_cleanup_free_ char *text = NULL;
	bool on[POLICY_MAX_SWITCHES];
	char reason[256];
	size_t size;

	(void)state;
	/* analytics (drive) off and crash (persistent) off, saved in boot A. */
	consent_from_policy(p, (bool[]){false, false}, boot_a, &s);
	assert_int_equal(consent_format(&s, &text, &size), 0);
	assert_int_equal(consent_parse(text, size, &back, reason, sizeof(reason)), 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.boot_id, boot_a);

	consent_resolve(p, &back, boot_a, on); /* same boot: both kept */
	assert_false(on[0]);
	assert_false(on[1]);
	consent_resolve(p, &back, boot_b, on); /* a new drive: the per-drive one resets */
	assert_true(on[0]);
	assert_false(on[1]);
	/* A switch the file does not know takes its default; one the policy dropped is gone. */
	back.n = 0;
	consent_resolve(p, &back, boot_a, on);
	assert_true(on[0] && on[1]);
	/* Unreadable state: every switch off, never the defaults. */
	back = (struct consent_state){.all_off = true};
	consent_resolve(p, &back, boot_a, on);
	assert_false(on[0] || on[1]);
}

static void test_state_parse_errors(void **state)
{
	struct consent_state s;
	char reason[256];

	(void)state;
	static const char *const bad[] = {
	    "",
	    "carwall-consent 2\nboot 11111111-2222-3333-4444-555555555555\n",
	    "carwall-consent 1\nboot nope\n",
	    "carwall-consent 1\nboot 11111111-2222-3333-4444-555555555555\nswitch a maybe drive\n",
	    "carwall-consent 1\nboot 11111111-2222-3333-4444-555555555555\nswitch a on drive x\n",
	    "carwall-consent 1\nboot 11111111-2222-3333-4444-555555555555\nswitch a on drive\n"
	    "switch a off drive\n",
	    "carwall-consent 1\nboot 11111111-2222-3333-4444-555555555555\nswitch a on drive",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reason[0] = '\0';
		if (consent_parse(bad[i], strlen(bad[i]), &s, reason, sizeof(reason)) != -EINVAL)
			fail_msg("case %zu parsed", i);
		assert_true(reason[0] != '\0');
	}
}

static void test_state_load_and_save(void **state)
{
	char dir[] = "/tmp/cw-consent-XXXXXX", path[64], reason[256];
	_cleanup_(policy_freep) struct policy *p = parse_ok(overlap_policy);
	struct consent_state s, back;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, CONSENT_FILE);
	/* No file yet: empty, not tightened. */
	assert_int_equal(consent_load(dir, &back, reason, sizeof(reason)), 0);
	assert_false(back.all_off);
	assert_int_equal(back.n, 0);
	consent_from_policy(p, (bool[]){true, false}, boot_a, &s);
	assert_int_equal(consent_save(dir, &s), 0);
	assert_int_equal(consent_load(dir, &back, reason, sizeof(reason)), 0);
	assert_int_equal(back.n, 2);
	assert_true(back.v[0].on);
	assert_false(back.v[1].on);
	/* A damaged file tightens. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("garbage\n", f);
	fclose(f);
	assert_int_equal(consent_load(dir, &back, reason, sizeof(reason)), -EINVAL);
	assert_true(back.all_off);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_consent_section),
	    cmocka_unit_test(test_switch_may_not_cover_a_mandatory_purpose),
	    cmocka_unit_test(test_rule_purpose_must_be_declared),
	    cmocka_unit_test(test_switch_purpose_must_be_declared),
	    cmocka_unit_test(test_duplicates_are_refused),
	    cmocka_unit_test(test_switch_needs_every_key),
	    cmocka_unit_test(test_bad_values_are_refused),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_overlapping_rules_stay_allowed_while_one_purpose_is_on),
	    cmocka_unit_test(test_host_name_rules_carry_purposes),
	    cmocka_unit_test(test_lint_switch_without_effect),
	    cmocka_unit_test(test_property_a_switch_never_loosens),
	    cmocka_unit_test(test_state_round_trip_and_resolve),
	    cmocka_unit_test(test_state_parse_errors),
	    cmocka_unit_test(test_state_load_and_save),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
