// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of an app's AGL template in the policy parser (userspace/lib/policy.c): the cgroups
 * an app may run in (AGL's three without `template:`, the named template's, an explicit
 * `cgroup:`), and the errors with their location: an unknown template, `template` with
 * `cgroup`, and two apps that could share a cgroup.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)

#define APP_CG "system.slice/system-agl\\x2dapp.slice/agl-app@"
#define WEB_CG "system.slice/system-agl\\x2dapp\\x2dweb.slice/agl-app-web@"
#define FLUTTER_CG "system.slice/system-agl\\x2dapp\\x2dflutter.slice/agl-app-flutter@"

static struct policy *parse_ok(const char *yaml)
{
	struct policy *p = NULL;
	struct policy_error e;

	if (policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e) < 0)
		fail_msg("unexpected error: %s:%u:%u: %s", e.file, e.loc.line, e.loc.column,
			 e.reason);
	return p;
}

static void assert_error_at(const char *yaml, unsigned line, unsigned column, const char *reason)
{
	struct policy *p = NULL;
	struct policy_error e;

	assert_int_equal(policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e), -EINVAL);
	assert_null(p);
	if (e.loc.line != line || e.loc.column != column || !strstr(e.reason, reason))
		fail_msg("expected t.yaml:%u:%u: ...%s..., got t.yaml:%u:%u: %s", line, column,
			 reason, e.loc.line, e.loc.column, e.reason);
}

static void test_app_without_template_may_run_in_all_three(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok("version: 1\napps:\n  nav: {allow: []}\n");
	const struct policy_app *app = &p->apps[0];

	(void)state;
	assert_int_equal(app->template, POLICY_TEMPLATE_ANY);
	assert_false(app->cgroup_explicit);
	assert_int_equal(app->n_cgroups, 3);
	assert_string_equal(app->cgroups[0], APP_CG "nav.service");
	assert_string_equal(app->cgroups[1], WEB_CG "nav.service");
	assert_string_equal(app->cgroups[2], FLUTTER_CG "nav.service");
	assert_ptr_equal(app->cgroup, app->cgroups[0]);
	assert_string_equal(policy_template_name(app->template), "any");
}

static void test_template_names_one_cgroup(void **state)
{
	static const struct {
		const char *name, *cgroup;
		enum policy_template t;
	} cases[] = {
		{ "app", APP_CG "x.service", POLICY_TEMPLATE_APP },
		{ "web", WEB_CG "x.service", POLICY_TEMPLATE_WEB },
		{ "flutter", FLUTTER_CG "x.service", POLICY_TEMPLATE_FLUTTER },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char yaml[128];
		_cleanup_(policy_freep) struct policy *p = NULL;

		snprintf(yaml, sizeof(yaml),
			 "version: 1\napps:\n  x:\n    template: %s\n    allow: []\n",
			 cases[i].name);
		p = parse_ok(yaml);
		assert_int_equal(p->apps[0].template, cases[i].t);
		assert_int_equal(p->apps[0].n_cgroups, 1);
		assert_string_equal(p->apps[0].cgroup, cases[i].cgroup);
		assert_string_equal(policy_template_name(cases[i].t), cases[i].name);
	}
}

static void test_explicit_cgroup_is_the_only_one(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok("version: 1\napps:\n  x:\n    cgroup: a/b\n    allow: []\n");

	(void)state;
	assert_true(p->apps[0].cgroup_explicit);
	assert_int_equal(p->apps[0].n_cgroups, 1);
	assert_string_equal(p->apps[0].cgroup, "a/b");
}

static void test_template_errors_have_their_location(void **state)
{
	(void)state;
	assert_error_at("version: 1\napps:\n  x:\n    template: qt\n    allow: []\n", 4, 15,
			"unknown template 'qt': AGL's are app, web and flutter");
	assert_error_at("version: 1\napps:\n  x:\n    template: [web]\n    allow: []\n", 4, 15,
			"'template'");
	assert_error_at("version: 1\napps:\n  x:\n    template: web\n    cgroup: a/b\n"
			"    allow: []\n",
			5, 13, "app 'x' has both 'cgroup' and 'template'");
	assert_error_at("version: 1\napps:\n  x:\n    cgroup: a/b\n    template: web\n"
			"    allow: []\n",
			5, 15, "app 'x' has both 'cgroup' and 'template'");
	assert_error_at("version: 1\napps:\n  x:\n    template: web\n    template: app\n"
			"    allow: []\n",
			5, 5, "template");
}

/* An explicit cgroup that is another app's web cgroup would register one cgroup for two apps. */
static void test_two_apps_may_not_share_a_template_cgroup(void **state)
{
	(void)state;
	assert_error_at("version: 1\napps:\n  nav: {allow: []}\n  y:\n    cgroup: " WEB_CG
			"nav.service\n    allow: []\n",
			5, 13, "app 'y' has the same cgroup as app 'nav'");
	assert_error_at("version: 1\napps:\n  y:\n    cgroup: " FLUTTER_CG
			"nav.service\n    allow: []\n  nav: {allow: []}\n",
			6, 3, "app 'nav' has the same cgroup as app 'y'");
	/* Different templates of one id are different cgroups. */
	_cleanup_(policy_freep) struct policy *p = parse_ok(
		"version: 1\napps:\n  y:\n    cgroup: " WEB_CG "nav.service\n    allow: []\n  nav:\n"
		"    template: flutter\n    allow: []\n");
	assert_int_equal(p->n_apps, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_app_without_template_may_run_in_all_three),
		cmocka_unit_test(test_template_names_one_cgroup),
		cmocka_unit_test(test_explicit_cgroup_is_the_only_one),
		cmocka_unit_test(test_template_errors_have_their_location),
		cmocka_unit_test(test_two_apps_may_not_share_a_template_cgroup),
	};

	return cmocka_run_group_tests_name("policy_template", tests, NULL, NULL);
}
