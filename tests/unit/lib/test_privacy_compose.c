// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the two privacy controls together (policy_compile.c, explain.c): driver consent
 * (purposes switched off) and home-only data residency judge one flow, as the kernel's
 * cw_consent() and cw_judge_home() do: a flow is allowed iff one rule allowing it serves a
 * purpose that is on, and, to an address outside the home region, iff one CROSS-BORDER rule
 * allowing it serves a purpose that is on. A switch never makes a foreign address reachable
 * through a rule that is not cross-border.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "explain.h"
#include "policy.h"
#include "policy_compile.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy_maps *, policy_maps_free)

/*
 * The home region xa holds 198.51.100.0/24 (the home entries are set by hand, as
 * geo_apply_policy() would from a database). 203.0.113.7 is abroad: the media rule (not
 * cross-border) and the crash-report rule (cross-border) both allow it; 203.0.113.8 only the
 * media rule.
 */
static const char policy_yaml[] =
	"version: 1\n"
	"home-region: xa\n"
	"residency-enforce: home-only\n"
	"consent:\n"
	"  purposes: [media, crash-reports]\n"
	"  switches:\n"
	"    - {name: crash, purposes: [crash-reports], default: on, reset: persistent}\n"
	"    - {name: media, purposes: [media], default: on, reset: persistent}\n"
	"apps:\n"
	"  a:\n"
	"    allow:\n"
	"      - {to: [203.0.113.0/24, 198.51.100.0/24], ports: [443], proto: tcp, purpose: media}\n"
	"      - {to: 203.0.113.7, ports: [443], proto: tcp, region: xb,\n"
	"         cross-border: \"crash reports to the vendor\", purpose: crash-reports}\n";

struct fixture {
	struct policy *p;
	struct policy_maps *m;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct policy_error e;
	char reason[256];

	assert_non_null(f);
	assert_int_equal(policy_parse_buffer("t.yaml", policy_yaml, strlen(policy_yaml), &f->p, &e),
			 0);
	assert_int_equal(policy_compile(f->p, 0, &f->m, reason, sizeof(reason)), 0);
	f->m->home_only = true;
	f->m->home4 = calloc(1, sizeof(*f->m->home4));
	assert_non_null(f->m->home4);
	f->m->home4[0].key.prefixlen = 32 + 24;
	f->m->home4[0].key.gen = 0;
	assert_int_equal(inet_pton(AF_INET, "198.51.100.0", f->m->home4[0].key.addr), 1);
	f->m->n_home4 = 1;
	policy_maps_sort_home(f->m);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	policy_maps_free(f->m);
	policy_free(f->p);
	free(f);
	return 0;
}

/* The switches' states: crash and media on or off. */
static void switches(struct fixture *f, bool crash, bool media)
{
	bool on[POLICY_MAX_SWITCHES] = { crash, media };

	f->m->consent_deny = policy_consent_deny(f->p, on);
}

static struct explain_flow judge(struct fixture *f, const char *dest)
{
	struct explain_dest d;
	struct explain_flow fl;
	char reason[256];

	assert_int_equal(explain_dest_parse(dest, &d, reason, sizeof(reason)), 0);
	assert_int_equal(explain_flow(f->p, f->m, 0, &d, IPPROTO_TCP, 443, &fl), 0);
	return fl;
}

static void test_cross_border_rule_reaches_abroad_while_its_purpose_is_on(void **state)
{
	struct fixture *f = *state;
	struct explain_flow fl;

	switches(f, true, true);
	fl = judge(f, "203.0.113.7");
	assert_true(fl.allowed);
	assert_false(fl.region_refused);
	/* Without the cross-border rule's purpose, the media rule still allows it... */
	switches(f, false, true);
	fl = judge(f, "203.0.113.7");
	/* ...but it is not cross-border: the foreign address is refused, never opened. */
	assert_false(fl.allowed);
	assert_true(fl.region_refused);
	assert_false(fl.refused_by_consent);
}

static void test_foreign_address_of_a_home_rule_is_refused_whatever_the_switches(void **state)
{
	struct fixture *f = *state;

	for (int crash = 0; crash < 2; crash++)
		for (int media = 0; media < 2; media++) {
			struct explain_flow fl;

			switches(f, crash, media);
			fl = judge(f, "203.0.113.8");
			assert_false(fl.allowed);
			/* Consent first (as the kernel): with media off, no rule is left at all. */
			assert_true(media ? fl.region_refused : fl.refused_by_consent);
		}
}

static void test_home_address_follows_consent_alone(void **state)
{
	struct fixture *f = *state;
	struct explain_flow fl;

	switches(f, false, true);
	fl = judge(f, "198.51.100.9");
	assert_true(fl.allowed);
	switches(f, true, false);
	fl = judge(f, "198.51.100.9");
	assert_false(fl.allowed);
	assert_true(fl.refused_by_consent);
	assert_false(fl.region_refused);
}

static void test_every_switch_off_refuses_both_rules(void **state)
{
	struct fixture *f = *state;
	struct explain_flow fl;

	switches(f, false, false);
	fl = judge(f, "203.0.113.7");
	assert_false(fl.allowed);
	assert_true(fl.refused_by_consent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_cross_border_rule_reaches_abroad_while_its_purpose_is_on, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_foreign_address_of_a_home_rule_is_refused_whatever_the_switches, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_home_address_follows_consent_alone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_every_switch_off_refuses_both_rules, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
