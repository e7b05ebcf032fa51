// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of the policy parser (userspace/lib/policy.c): the example policies, every validation
 * error with its exact location, the limits, and prefix parsing.
 *
 * Policies are written inline and parsed with policy_parse_buffer() under the name "t.yaml", so
 * errors read "t.yaml:LINE:COLUMN: reason".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf() */
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "util.h"

/*
 * The example policies in policies/ at the top of the tree: $CARWALL_POLICY_DIR, or found from
 * this file's path (tests/unit/lib/test_policy.c) as the compiler saw it.
 */
static char *policy_path(const char *name)
{
	const char *dir = getenv("CARWALL_POLICY_DIR"), *slash = strrchr(__FILE__, '/');
	char *path = NULL;
	int r;

	if (dir)
		r = asprintf(&path, "%s/%s", dir, name);
	else if (slash)
		r = asprintf(&path, "%.*s/../../../policies/%s", (int)(slash - __FILE__), __FILE__,
			     name);
	else
		r = asprintf(&path, "../../../policies/%s", name);
	assert_true(r > 0);
	return path;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct policy *, policy_free)

static struct policy *parse_ok(const char *yaml)
{
	struct policy *p = NULL;
	struct policy_error e;
	int r;

	r = policy_parse_buffer("t.yaml", yaml, strlen(yaml), &p, &e);
	if (r < 0)
		fail_msg("unexpected error %d: %s:%u:%u: %s", r, e.file, e.loc.line, e.loc.column,
			 e.reason);
	assert_non_null(p);
	return p;
}

/* The parse must fail with -EINVAL at line:column, with `reason` in the message. */
static void check_error(const char *yaml, size_t size, unsigned line, unsigned column,
			const char *reason, const char *file, int at)
{
	struct policy *p = NULL;
	struct policy_error e;
	char msg[600];
	int r;

	r = policy_parse_buffer("t.yaml", yaml, size, &p, &e);
	_assert_int_equal(r, -EINVAL, file, at);
	_assert_true(p == NULL, "policy == NULL", file, at);
	assert_int_equal(policy_error_format(&e, msg, sizeof(msg)), 0);
	if (e.loc.line != line || e.loc.column != column || !strstr(e.reason, reason)) {
		print_error("expected t.yaml:%u:%u: ...%s...\n     got %s\n", line, column, reason,
			    msg);
		_fail(file, at);
	}
}

#define assert_parse_error(yaml, line, column, reason)                                             \
	check_error((yaml), strlen(yaml), (line), (column), (reason), __FILE__, __LINE__)

/* A policy around one rule, written in flow style on line 3: "  a: {allow: [RULE]}". */
#define ONE_RULE(rule) "version: 1\napps:\n  a: {allow: [" rule "]}\n"

/* ---- the example policies ------------------------------------------------------------------- */

static void test_demo_policy_parses_to_expected_structure(void **state)
{
	_cleanup_free_ char *path = policy_path("demo.yaml");
	_cleanup_(policy_freep) struct policy *p = NULL;
	const struct policy_app *mp, *nav;
	const struct policy_set *backend, *maps;
	struct policy_error e;

	(void)state;
	assert_int_equal(policy_parse_file(path, &p, &e), 0);
	assert_string_equal(p->path, path);

	assert_int_equal(p->n_sets, 2);
	backend = &p->sets[0];
	maps = &p->sets[1];
	assert_string_equal(backend->name, "oem-backend");
	assert_int_equal(backend->n_prefixes, 2);
	assert_int_equal(backend->prefixes[0].family, AF_INET);
	assert_int_equal(backend->prefixes[0].len, 32);
	assert_memory_equal(backend->prefixes[0].addr, ((uint8_t[]){ 198, 51, 100, 20 }), 4);
	assert_int_equal(backend->prefixes[1].family, AF_INET6);
	assert_int_equal(backend->prefixes[1].len, 128);
	assert_string_equal(maps->name, "oem-maps");
	assert_int_equal(maps->prefixes[0].len, 26);
	assert_int_equal(maps->prefixes[1].family, AF_INET6);
	assert_int_equal(maps->prefixes[1].len, 48);
	assert_int_equal(backend->loc.line, 10);
	assert_int_equal(backend->loc.column, 3);

	assert_int_equal(p->n_apps, 2);
	assert_int_equal(p->n_rules, 2);
	mp = policy_find_app(p, "mediaplayer");
	nav = policy_find_app(p, "navigation");
	assert_ptr_equal(mp, &p->apps[0]);
	assert_ptr_equal(nav, &p->apps[1]);

	assert_int_equal(mp->n_rules, 1);
	assert_int_equal(mp->rules[0].index, 0);
	assert_int_equal(mp->rules[0].proto, POLICY_PROTO_TCP);
	assert_int_equal(mp->rules[0].n_to, 1);
	assert_true(mp->rules[0].to[0].is_set);
	assert_int_equal(mp->rules[0].to[0].set, 0);
	assert_int_equal(mp->rules[0].n_ports, 1);
	assert_int_equal(mp->rules[0].ports[0].first, 443);
	assert_int_equal(mp->rules[0].ports[0].last, 443);

	assert_int_equal(nav->n_rules, 1);
	assert_int_equal(nav->rules[0].index, 1);
	assert_true(nav->rules[0].to[0].is_set);
	assert_int_equal(nav->rules[0].to[0].set, 1);
	assert_int_equal(nav->rules[0].n_ports, 2);
	assert_int_equal(nav->rules[0].ports[1].first, 8443);
	assert_int_equal(nav->rules[0].ports[1].last, 8450);
	assert_int_equal(nav->rules[0].ports[1].loc.line, 22);
	assert_int_equal(nav->rules[0].ports[1].loc.column, 22);
}

static void test_demo_policy_gets_default_agl_cgroup(void **state)
{
	_cleanup_free_ char *path = policy_path("demo.yaml");
	_cleanup_(policy_freep) struct policy *p = NULL;
	const struct policy_app *mp;

	(void)state;
	assert_int_equal(policy_parse_file(path, &p, NULL), 0);
	mp = policy_find_app(p, "mediaplayer");
	assert_non_null(mp);
	assert_false(mp->cgroup_explicit);
	assert_string_equal(mp->cgroup,
			    "system.slice/system-agl\\x2dapp.slice/agl-app@mediaplayer.service");
}

static void test_agl_demo_policy_parses(void **state)
{
	_cleanup_free_ char *path = policy_path("agl-demo.yaml");
	_cleanup_(policy_freep) struct policy *p = NULL;
	const struct policy_app *hvac, *tm;
	struct policy_error e;

	(void)state;
	assert_int_equal(policy_parse_file(path, &p, &e), 0);
	hvac = policy_find_app(p, "hvac");
	assert_non_null(hvac);
	assert_int_equal(hvac->n_rules, 0);
	tm = policy_find_app(p, "telematics");
	assert_non_null(tm);
	assert_true(tm->cgroup_explicit);
	assert_string_equal(tm->cgroup, "system.slice/telematics.service");
}

/* ---- what valid policies mean --------------------------------------------------------------- */

static void test_parse_sets_defined_after_apps_resolve(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok("version: 1\n"
							    "apps:\n"
							    "  a:\n"
							    "    allow:\n"
							    "      - to: [late, 192.0.2.1]\n"
							    "sets:\n"
							    "  early: [192.0.2.0/24]\n"
							    "  late: [2001:db8::/32]\n");
	const struct policy_dest *to = p->apps[0].rules[0].to;

	(void)state;
	assert_true(to[0].is_set);
	assert_string_equal(p->sets[to[0].set].name, "late");
	assert_false(to[1].is_set);
	assert_int_equal(to[1].prefix.family, AF_INET);
	assert_int_equal(to[1].prefix.len, 32);
	assert_int_equal(to[1].loc.line, 5);
	assert_int_equal(to[1].loc.column, 20);
}

static void test_parse_rule_index_is_global_in_file_order(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok("version: 1\n"
			 "apps:\n"
			 "  a: {allow: [{to: 192.0.2.1}, {to: 192.0.2.2}]}\n"
			 "  b: {allow: []}\n"
			 "  c: {allow: [{to: 192.0.2.3}]}\n");

	(void)state;
	assert_int_equal(p->n_rules, 3);
	assert_int_equal(p->apps[0].rules[0].index, 0);
	assert_int_equal(p->apps[0].rules[1].index, 1);
	assert_int_equal(p->apps[2].rules[0].index, 2);
	assert_int_equal(p->apps[2].rules[0].loc.line, 5);
	assert_int_equal(p->apps[2].rules[0].loc.column, 15);
}

static void test_parse_accepts_single_scalars_for_to_and_ports(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok(ONE_RULE("{to: 2001:db8::1, ports: 8000-8080, proto: udp}"));
	const struct policy_rule *rule = &p->apps[0].rules[0];

	(void)state;
	assert_int_equal(rule->n_to, 1);
	assert_int_equal(rule->to[0].prefix.family, AF_INET6);
	assert_int_equal(rule->to[0].prefix.len, 128);
	assert_int_equal(rule->n_ports, 1);
	assert_int_equal(rule->ports[0].first, 8000);
	assert_int_equal(rule->ports[0].last, 8080);
	assert_int_equal(rule->proto, POLICY_PROTO_UDP);
}

static void test_parse_ports_any_or_absent_means_any_port(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok(ONE_RULE("{to: 192.0.2.1, ports: any}, {to: 192.0.2.2}"));

	(void)state;
	assert_int_equal(p->apps[0].rules[0].n_ports, 0);
	assert_int_equal(p->apps[0].rules[1].n_ports, 0);
	assert_int_equal(p->apps[0].rules[0].proto, POLICY_PROTO_ANY);
	assert_int_equal(p->apps[0].rules[1].proto, POLICY_PROTO_ANY);
}

static void test_parse_accepts_quoted_ports(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok(ONE_RULE("{to: 192.0.2.1, ports: ['443', \"1-65535\"]}"));
	const struct policy_rule *rule = &p->apps[0].rules[0];

	(void)state;
	assert_int_equal(rule->ports[0].first, 443);
	assert_int_equal(rule->ports[1].first, 1);
	assert_int_equal(rule->ports[1].last, 65535);
}

static void test_parse_empty_allow_means_deny_everything(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok("version: 1\napps:\n  hvac:\n"
							    "    allow: []\n");

	(void)state;
	assert_int_equal(p->n_apps, 1);
	assert_int_equal(p->apps[0].n_rules, 0);
	assert_null(p->apps[0].rules);
	assert_int_equal(p->n_rules, 0);
}

static void test_parse_keeps_explicit_cgroup(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok("version: 1\napps:\n  a:\n    cgroup: 'system.slice/x@1.service'\n"
			 "    allow: []\n");

	(void)state;
	assert_true(p->apps[0].cgroup_explicit);
	assert_string_equal(p->apps[0].cgroup, "system.slice/x@1.service");
}

static void test_parse_stores_mapped_ipv6_as_ipv4(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok(ONE_RULE("{to: '::ffff:192.0.2.0/120'}"));
	const struct policy_prefix *pfx = &p->apps[0].rules[0].to[0].prefix;

	(void)state;
	assert_int_equal(pfx->family, AF_INET);
	assert_int_equal(pfx->len, 24);
	assert_memory_equal(pfx->addr, ((uint8_t[16]){ 192, 0, 2, 0 }), 16);
}

/* ---- the document --------------------------------------------------------------------------- */

static void test_parse_rejects_empty_file(void **state)
{
	struct policy *p = NULL;
	struct policy_error e;
	char msg[300];

	(void)state;
	assert_int_equal(policy_parse_buffer("t.yaml", "", 0, &p, &e), -EINVAL);
	assert_null(p);
	assert_int_equal(e.loc.line, 0);
	assert_int_equal(policy_error_format(&e, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "t.yaml: the policy is empty");
	/* Comments only: still no document. */
	assert_int_equal(policy_parse_buffer("t.yaml", "# nothing\n", 10, &p, &e), -EINVAL);
	assert_string_equal(e.reason, "the policy is empty");
}

static void test_parse_rejects_top_level_sequence(void **state)
{
	(void)state;
	assert_parse_error("# a list\n- version: 1\n", 2, 1,
			   "the top level must be a mapping, not a sequence");
}

static void test_parse_rejects_multiple_documents(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps: {a: {allow: []}}\n---\nversion: 1\n", 3, 1,
			   "multiple YAML documents are not allowed");
}

static void test_parse_rejects_yaml_syntax_error_at_its_location(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a:\n    allow: []\n   b: {}\n", 5, 4,
			   "did not find expected key");
	assert_parse_error(
		"version: \"1\n", 2, 1,
		"found unexpected end of stream (while scanning a quoted scalar at line 1, "
		"column 10)");
}

static void test_parse_rejects_invalid_utf8(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps: \xff\n", 2, 7, "invalid leading UTF-8 octet");
}

static void test_parse_rejects_alias(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a: {allow: []}\n  b: *x\n", 4, 6,
			   "aliases and anchors are not allowed");
}

static void test_parse_rejects_anchor(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a: &x {allow: []}\n", 3, 6,
			   "aliases and anchors are not allowed");
}

static void test_parse_rejects_explicit_tag(void **state)
{
	(void)state;
	assert_parse_error("version: !!int 1\n", 1, 10, "explicit tags are not allowed");
}

static void test_parse_rejects_nul_in_string(void **state)
{
	static const char yaml[] = ONE_RULE("{to: \"192.0.2.1\\0x\"}");

	(void)state;
	assert_parse_error(yaml, 3, 20, "contains a NUL character");
}

static void test_parse_rejects_non_scalar_key(void **state)
{
	(void)state;
	assert_parse_error("version: 1\n? [a]\n: 1\n", 2, 3,
			   "mapping keys must be scalars, not a sequence");
}

/* ---- keys ----------------------------------------------------------------------------------- */

static void test_parse_rejects_unknown_top_key(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napp: {}\n", 2, 1,
			   "unknown key 'app' (expected version, sets, apps, bundle, audit, resolvers, "
			   "dns, home-region, regions, residency, residency-enforce, consent)");
}

static void test_parse_rejects_unknown_rule_key(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, port: 443}"), 3, 31,
			   "unknown key 'port' (expected to, ports, proto, region, cross-border, "
			   "purpose)");
}

static void test_parse_rejects_duplicate_key(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps: {a: {allow: []}}\nversion: 1\n", 3, 1,
			   "duplicate key 'version' (first at line 1, column 1)");
}

static void test_parse_rejects_duplicate_key_in_rule(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, proto: tcp, proto: udp}"), 3, 43,
			   "duplicate key 'proto' (first at line 3, column 31)");
}

static void test_parse_rejects_missing_version(void **state)
{
	(void)state;
	assert_parse_error("# no version\napps: {a: {allow: []}}\n", 2, 1,
			   "missing required key 'version'");
}

static void test_parse_rejects_missing_apps(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nsets: {}\n", 1, 1, "missing required key 'apps'");
}

static void test_parse_rejects_missing_allow(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a:\n    cgroup: x\n", 4, 5,
			   "missing required key 'allow' in app 'a'");
}

static void test_parse_rejects_missing_to(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a:\n    allow:\n      - ports: 443\n", 5, 9,
			   "missing required key 'to' in rule");
}

/* ---- version -------------------------------------------------------------------------------- */

static void test_parse_rejects_unsupported_version(void **state)
{
	(void)state;
	assert_parse_error("version: 2\napps: {a: {allow: []}}\n", 1, 10,
			   "unsupported policy version 2; this carwall reads version 1");
}

static void test_parse_rejects_non_integer_version(void **state)
{
	(void)state;
	assert_parse_error("version: '1'\n", 1, 10,
			   "'version' must be an integer, not a quoted string");
	assert_parse_error("version: 1.0\n", 1, 10, "'version' must be an integer, not '1.0'");
	assert_parse_error("version:\napps: {}\n", 1, 9, "'version' must be an integer, not null");
}

/* ---- types ---------------------------------------------------------------------------------- */

static void test_parse_rejects_mapping_where_list_expected(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a:\n    allow:\n      to: 192.0.2.1\n", 5, 7,
			   "'allow' must be a sequence of rules, not a mapping");
}

static void test_parse_rejects_null_value(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a:\n    allow: ~\n", 4, 12,
			   "'allow' must be a sequence of rules, not null");
	assert_parse_error(ONE_RULE("{to: }"), 3, 20,
			   "'to' must be a sequence or a string, not null");
}

static void test_parse_rejects_scalar_rule(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("192.0.2.1"), 3, 15,
			   "each rule in 'allow' must be a mapping, not a scalar");
}

static void test_parse_rejects_nested_list_in_to(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: [[192.0.2.1]]}"), 3, 21,
			   "elements of 'to' must be strings, not a sequence");
}

/* ---- apps ----------------------------------------------------------------------------------- */

static void test_parse_accepts_empty_apps(void **state)
{
	(void)state;
	struct policy *p = parse_ok("version: 1\napps: {}\n");

	assert_int_equal(p->n_apps, 0);
	policy_free(p);
}

static void test_parse_audit_global_and_per_app(void **state)
{
	(void)state;
	struct policy *p = parse_ok("version: 1\naudit: true\napps:\n"
				    "  a:\n    allow: []\n"
				    "  b:\n    audit: false\n    allow: []\n");

	assert_true(p->audit);
	assert_true(policy_app_audit(p, &p->apps[0]));
	assert_false(policy_app_audit(p, &p->apps[1]));
	policy_free(p);
}

static void test_parse_rejects_non_boolean_audit(void **state)
{
	(void)state;
	assert_parse_error("version: 1\naudit: yes\napps: {}\n", 2, 8,
			   "'audit' must be true or false, not 'yes'");
}

static void test_parse_rejects_duplicate_app_id(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a:\n    allow: []\n  a:\n    allow: []\n", 5, 3,
			   "duplicate app 'a' (first at line 3, column 3)");
}

static void test_parse_rejects_invalid_app_id(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  -a: {allow: []}\n", 3, 3, "invalid app id '-a'");
	assert_parse_error("version: 1\napps:\n  'a b': {allow: []}\n", 3, 3,
			   "invalid app id 'a b'");
}

static void test_parse_rejects_too_long_app_id(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  "
			   "a1234567890123456789012345678901234567890123456789012345678901234"
			   ": {allow: []}\n",
			   3, 3, "is longer than 64 characters (POLICY_MAX_ID_LEN)");
}

/* ---- cgroups -------------------------------------------------------------------------------- */

static void test_parse_rejects_absolute_cgroup(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a: {cgroup: /system.slice/a, allow: []}\n", 3, 15,
			   "must be relative to the cgroup root (no leading '/')");
}

static void test_parse_rejects_dot_dot_in_cgroup(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a: {cgroup: system.slice/../a, allow: []}\n", 3,
			   15, "must not contain '.' or '..'");
	assert_parse_error("version: 1\napps:\n  a: {cgroup: ./a, allow: []}\n", 3, 15,
			   "must not contain '.' or '..'");
}

static void test_parse_rejects_empty_cgroup_component(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a: {cgroup: 'a//b', allow: []}\n", 3, 15,
			   "cgroup path 'a//b' has an empty component");
	assert_parse_error("version: 1\napps:\n  a: {cgroup: 'a/', allow: []}\n", 3, 15,
			   "cgroup path 'a/' has an empty component");
	assert_parse_error("version: 1\napps:\n  a: {cgroup: '', allow: []}\n", 3, 15,
			   "'cgroup' must not be empty");
}

static void test_parse_rejects_null_cgroup(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps:\n  a:\n    cgroup:\n    allow: []\n", 4, 12,
			   "'cgroup' must be a string, not null");
}

static void test_parse_rejects_too_long_cgroup(void **state)
{
	char yaml[2048], *q;

	(void)state;
	q = yaml + sprintf(yaml, "version: 1\napps:\n  a:\n    cgroup: ");
	memset(q, 'c', POLICY_MAX_CGROUP_LEN + 1);
	strcpy(q + POLICY_MAX_CGROUP_LEN + 1, "\n    allow: []\n");
	assert_parse_error(yaml, 4, 13,
			   "cgroup path is longer than 1024 characters (POLICY_MAX_CGROUP_LEN)");
}

static void test_parse_rejects_two_apps_with_same_cgroup(void **state)
{
	(void)state;
	/* b's explicit cgroup is a's default one. */
	assert_parse_error(
		"version: 1\napps:\n  a: {allow: []}\n"
		"  b: {cgroup: 'system.slice/system-agl\\x2dapp.slice/agl-app@a.service', "
		"allow: []}\n",
		4, 15, "app 'b' has the same cgroup as app 'a' (line 3)");
}

/* ---- sets and destinations ------------------------------------------------------------------ */

static void test_parse_rejects_unknown_set(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nsets: {known: [192.0.2.0/24]}\napps:\n"
			   "  a: {allow: [{to: [known, unknown]}]}\n",
			   4, 28, "unknown set 'unknown'");
}

static void test_parse_rejects_empty_set(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nsets:\n  empty: []\n", 3, 10, "set 'empty' is empty");
}

static void test_parse_rejects_duplicate_set(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nsets:\n  s: [192.0.2.1]\n  s: [192.0.2.2]\n", 4, 3,
			   "duplicate set 's' (first at line 3, column 3)");
}

static void test_parse_rejects_set_name_that_reads_as_address(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nsets:\n  10.1: [192.0.2.1]\n", 3, 3,
			   "invalid set name '10.1': it reads as an address");
}

static void test_parse_rejects_set_inside_set(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nsets:\n  a: [192.0.2.1]\n  b: [a]\n", 4, 7,
			   "'a' is not an IP address or prefix (a set holds addresses");
}

static void test_parse_rejects_scalar_set(void **state)
{
	(void)state;
	assert_parse_error("version: 1\nsets:\n  a: 192.0.2.1\n", 3, 6,
			   "set 'a' must be a sequence, not a scalar");
}

static void test_parse_rejects_host_bits_in_to(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: [192.0.2.1, 198.51.100.1/24]}"), 3, 32,
			   "198.51.100.1/24 has host bits set; did you mean 198.51.100.0/24?");
}

static void test_parse_rejects_bad_address_in_to(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.256}"), 3, 20,
			   "'192.0.2.256' is not a valid IPv4 address or prefix");
	assert_parse_error(ONE_RULE("{to: 'oem backend'}"), 3, 20,
			   "'oem backend' is neither an IP address or prefix nor a set name");
}

static void test_parse_rejects_empty_to(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: []}"), 3, 20, "'to' must not be empty");
}

/* ---- ports and protocols -------------------------------------------------------------------- */

static void test_parse_rejects_port_zero(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: [443, 0]}"), 3, 44,
			   "port 0 is not a destination port");
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: 0-10}"), 3, 38,
			   "port 0 is not a destination port");
}

static void test_parse_rejects_port_out_of_range(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: 65536}"), 3, 38,
			   "port 65536 is out of range (1-65535)");
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: 1-99999999999}"), 3, 38,
			   "port 99999999999 is out of range (1-65535)");
}

static void test_parse_rejects_reversed_port_range(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: 9000-8000}"), 3, 38,
			   "port range 9000-8000 is reversed; did you mean 8000-9000?");
}

static void test_parse_rejects_port_that_is_not_a_number(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: https}"), 3, 38,
			   "'https' is not a port (1-65535) or a port range (A-B)");
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: 80-}"), 3, 38,
			   "'80-' is not a port (1-65535) or a port range (A-B)");
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: -5}"), 3, 38,
			   "'-5' is not a port (1-65535) or a port range (A-B)");
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: 0443}"), 3, 38,
			   "port '0443' has a leading zero");
}

static void test_parse_rejects_any_inside_port_list(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: [80, any]}"), 3, 43,
			   "'any' is a value of its own ('ports: any'), not a list element");
}

static void test_parse_rejects_empty_ports(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, ports: []}"), 3, 38,
			   "'ports' must not be empty");
}

static void test_parse_rejects_unknown_proto(void **state)
{
	(void)state;
	assert_parse_error(ONE_RULE("{to: 192.0.2.1, proto: icmp}"), 3, 38,
			   "unknown protocol 'icmp'; expected tcp, udp or any");
}

/* ---- limits --------------------------------------------------------------------------------- */

/* A policy built piece by piece, for the limits: n items, a '#' in `item` being 000, 001, ... */
static char *build(const char *head, const char *item, size_t n, const char *tail, size_t *ret_size)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	assert_non_null(f);
	fputs(head, f);
	for (size_t i = 0; i < n; i++) {
		const char *hash = strchr(item, '#');

		if (hash)
			fprintf(f, "%.*s%03zu%s", (int)(hash - item), item, i, hash + 1);
		else
			fputs(item, f);
	}
	fputs(tail, f);
	assert_int_equal(fclose(f), 0);
	*ret_size = size;
	return buf;
}

static void test_parse_rejects_too_many_ports(void **state)
{
	_cleanup_free_ char *yaml = NULL;
	size_t size;

	(void)state;
	/* Line 3 is "  a: {allow: [{to: 192.0.2.1, ports: [1000, 1001, ..., 1063, 1]}]}". */
	yaml = build("version: 1\napps:\n  a: {allow: [{to: 192.0.2.1, ports: [", "1#, ",
		     POLICY_MAX_RULE_PORTS, "1]}]}\n", &size);
	check_error(yaml, size, 3, 39 + 6 * POLICY_MAX_RULE_PORTS,
		    "too many ports in one rule: the limit is 64 (POLICY_MAX_RULE_PORTS)", __FILE__,
		    __LINE__);
}

static void test_parse_accepts_exactly_max_ports(void **state)
{
	_cleanup_free_ char *yaml = NULL;
	_cleanup_(policy_freep) struct policy *p = NULL;
	size_t size;

	(void)state;
	yaml = build("version: 1\napps:\n  a: {allow: [{to: 192.0.2.1, ports: [", "1#, ",
		     POLICY_MAX_RULE_PORTS - 1, "1]}]}\n", &size);
	p = parse_ok(yaml);
	assert_int_equal(p->apps[0].rules[0].n_ports, POLICY_MAX_RULE_PORTS);
	assert_int_equal(p->apps[0].rules[0].ports[0].first, 1000);
}

static void test_parse_rejects_too_many_apps(void **state)
{
	_cleanup_free_ char *yaml = NULL;
	size_t size;

	(void)state;
	yaml = build("version: 1\napps:\n", "  app#: {allow: []}\n", POLICY_MAX_APPS + 1, "",
		     &size);
	check_error(yaml, size, 3 + POLICY_MAX_APPS, 3,
		    "too many apps: the limit is 256 (POLICY_MAX_APPS)", __FILE__, __LINE__);
}

static void test_parse_rejects_too_many_set_entries_even_duplicates(void **state)
{
	_cleanup_free_ char *yaml = NULL;
	size_t size;

	(void)state;
	/* The same address over and over: duplicates count. */
	yaml = build("version: 1\nsets:\n  s:\n", "    - 192.0.2.1\n", POLICY_MAX_SET_ENTRIES + 1,
		     "", &size);
	check_error(yaml, size, 4 + POLICY_MAX_SET_ENTRIES, 7,
		    "too many entries in set 's': the limit is 65536 (POLICY_MAX_SET_ENTRIES)",
		    __FILE__, __LINE__);
}

static void test_parse_rejects_too_many_destinations(void **state)
{
	_cleanup_free_ char *yaml = NULL;
	size_t size;

	(void)state;
	yaml = build("version: 1\napps:\n  a:\n    allow:\n      - to:\n", "        - 192.0.2.1\n",
		     POLICY_MAX_RULE_DESTS + 1, "", &size);
	check_error(yaml, size, 6 + POLICY_MAX_RULE_DESTS, 11,
		    "too many destinations in one rule: the limit is 65536 (POLICY_MAX_RULE_DESTS)",
		    __FILE__, __LINE__);
}

static void test_parse_rejects_too_many_sets(void **state)
{
	_cleanup_free_ char *yaml = NULL;
	size_t size;

	(void)state;
	yaml = build("version: 1\nsets:\n", "  s#: [192.0.2.1]\n", POLICY_MAX_SETS + 1, "", &size);
	check_error(yaml, size, 3 + POLICY_MAX_SETS, 3,
		    "too many sets: the limit is 1024 (POLICY_MAX_SETS)", __FILE__, __LINE__);
}

static void test_parse_rejects_too_many_rules_across_apps(void **state)
{
	_cleanup_free_ char *half = NULL, *yaml = NULL;
	size_t size;

	(void)state;
	/* Half the limit in app a, half in app b, then one rule more in b. */
	half = build("", "      - to: 192.0.2.1\n", POLICY_MAX_RULES / 2, "", &size);
	assert_true(asprintf(&yaml,
			     "version: 1\napps:\n  a:\n    allow:\n%s  b:\n    allow:\n%s"
			     "      - to: 192.0.2.2\n",
			     half, half) > 0);
	assert_parse_error(yaml, 7 + POLICY_MAX_RULES, 9,
			   "too many rules: the limit is 131072 for all apps together "
			   "(POLICY_MAX_RULES)");
}

static void test_parse_buffer_rejects_too_large(void **state)
{
	_cleanup_free_ char *big = calloc(1, POLICY_MAX_FILE_BYTES + 1);
	struct policy *p = NULL;
	struct policy_error e;

	(void)state;
	assert_non_null(big);
	assert_int_equal(policy_parse_buffer("t.yaml", big, POLICY_MAX_FILE_BYTES + 1, &p, &e),
			 -EFBIG);
	assert_null(p);
	assert_int_equal(e.loc.line, 0);
	assert_non_null(strstr(e.reason, "the limit is 16777216 bytes (POLICY_MAX_FILE_BYTES)"));
}

/* ---- files ---------------------------------------------------------------------------------- */

static char *temp_file(const char *content, off_t size)
{
	char *path = strdup("/tmp/test_policy.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	if (content)
		assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	else
		assert_int_equal(ftruncate(fd, size), 0); /* sparse: nothing is written */
	close(fd);
	return path;
}

static void test_parse_file_reads_policy(void **state)
{
	_cleanup_free_ char *path = temp_file("version: 1\napps: {a: {allow: []}}\n", 0);
	_cleanup_(policy_freep) struct policy *p = NULL;
	struct policy_error e;
	int r;

	(void)state;
	r = policy_parse_file(path, &p, &e);
	unlink(path);
	assert_int_equal(r, 0);
	assert_string_equal(p->path, path);
	assert_int_equal(p->n_apps, 1);
}

static void test_parse_file_rejects_too_large_before_reading(void **state)
{
	_cleanup_free_ char *path = temp_file(NULL, (off_t)POLICY_MAX_FILE_BYTES + 1);
	struct policy *p = NULL;
	struct policy_error e;
	char msg[600];
	int r;

	(void)state;
	r = policy_parse_file(path, &p, &e);
	unlink(path);
	assert_int_equal(r, -EFBIG);
	assert_null(p);
	assert_int_equal(e.loc.line, 0);
	assert_int_equal(policy_error_format(&e, msg, sizeof(msg)), 0);
	assert_true(strncmp(msg, path, strlen(path)) == 0);
	assert_non_null(strstr(msg, ": the file is 16777217 bytes; the limit is 16777216 bytes "
				    "(POLICY_MAX_FILE_BYTES)"));
}

static void test_parse_file_reports_missing_file(void **state)
{
	struct policy *p = NULL;
	struct policy_error e;

	(void)state;
	assert_int_equal(policy_parse_file("/nonexistent/carwall.yaml", &p, &e), -ENOENT);
	assert_null(p);
	assert_string_equal(e.file, "/nonexistent/carwall.yaml");
	assert_int_equal(e.loc.line, 0);
	assert_non_null(strstr(e.reason, "cannot open"));
}

static void test_parse_file_error_names_the_file(void **state)
{
	_cleanup_free_ char *path = temp_file("version: 1\napps: []\n", 0);
	_cleanup_free_ char *expected = NULL;
	struct policy *p = NULL;
	struct policy_error e;
	char msg[600];
	int r;

	(void)state;
	r = policy_parse_file(path, &p, &e);
	unlink(path);
	assert_int_equal(r, -EINVAL);
	assert_int_equal(policy_error_format(&e, msg, sizeof(msg)), 0);
	assert_true(asprintf(&expected, "%s:2:7: 'apps' must be a mapping, not a sequence", path) >
		    0);
	assert_string_equal(msg, expected);
}

/* ---- prefixes ------------------------------------------------------------------------------- */

static void test_prefix_parse_ipv4(void **state)
{
	struct policy_prefix pfx;
	char reason[256];

	(void)state;
	assert_int_equal(policy_prefix_parse("198.51.100.20", &pfx, reason, sizeof(reason)), 0);
	assert_int_equal(pfx.family, AF_INET);
	assert_int_equal(pfx.len, 32);
	assert_memory_equal(pfx.addr, ((uint8_t[16]){ 198, 51, 100, 20 }), 16);

	assert_int_equal(policy_prefix_parse("198.51.100.0/24", &pfx, reason, sizeof(reason)), 0);
	assert_int_equal(pfx.len, 24);
	assert_int_equal(policy_prefix_parse("0.0.0.0/0", &pfx, reason, sizeof(reason)), 0);
	assert_int_equal(pfx.len, 0);
}

static void test_prefix_parse_ipv6(void **state)
{
	static const uint8_t net[16] = { 0x20, 0x01, 0x0d, 0xb8, 0x01 };
	struct policy_prefix pfx;
	char reason[256];

	(void)state;
	assert_int_equal(policy_prefix_parse("2001:db8:100::/40", &pfx, reason, sizeof(reason)), 0);
	assert_int_equal(pfx.family, AF_INET6);
	assert_int_equal(pfx.len, 40);
	assert_memory_equal(pfx.addr, net, 16);
	assert_int_equal(policy_prefix_parse("2001:db8::1", &pfx, reason, sizeof(reason)), 0);
	assert_int_equal(pfx.len, 128);
	assert_int_equal(policy_prefix_parse("::/0", &pfx, reason, sizeof(reason)), 0);
	assert_int_equal(pfx.family, AF_INET6);
	assert_int_equal(pfx.len, 0);
}

static void test_prefix_parse_mapped_becomes_ipv4(void **state)
{
	struct policy_prefix pfx;
	char reason[256];

	(void)state;
	assert_int_equal(policy_prefix_parse("::ffff:198.51.100.20", &pfx, reason, sizeof(reason)),
			 0);
	assert_int_equal(pfx.family, AF_INET);
	assert_int_equal(pfx.len, 32);
	assert_memory_equal(pfx.addr, ((uint8_t[16]){ 198, 51, 100, 20 }), 16);
	assert_int_equal(policy_prefix_parse("::ffff:0:0/96", &pfx, reason, sizeof(reason)), 0);
	assert_int_equal(pfx.family, AF_INET);
	assert_int_equal(pfx.len, 0);
}

static void test_prefix_parse_rejects_mapped_shorter_than_96(void **state)
{
	struct policy_prefix pfx;
	char reason[256];

	(void)state;
	assert_int_equal(policy_prefix_parse("::ffff:0:0/95", &pfx, reason, sizeof(reason)),
			 -EINVAL);
	assert_non_null(strstr(reason, "IPv4-mapped prefix shorter than /96"));
}

static void test_prefix_parse_rejects_host_bits(void **state)
{
	struct policy_prefix pfx;
	char reason[256];

	(void)state;
	assert_int_equal(policy_prefix_parse("198.51.100.1/24", &pfx, reason, sizeof(reason)),
			 -EINVAL);
	assert_string_equal(reason,
			    "198.51.100.1/24 has host bits set; did you mean 198.51.100.0/24?");
	assert_int_equal(policy_prefix_parse("2001:db8::1/64", &pfx, reason, sizeof(reason)),
			 -EINVAL);
	assert_string_equal(reason,
			    "2001:db8::1/64 has host bits set; did you mean 2001:db8::/64?");
	assert_int_equal(policy_prefix_parse("192.0.2.1/0", &pfx, reason, sizeof(reason)), -EINVAL);
	assert_non_null(strstr(reason, "did you mean 0.0.0.0/0?"));
}

static void test_prefix_parse_rejects_bad_length(void **state)
{
	static const struct {
		const char *text, *reason;
	} cases[] = {
		{ "192.0.2.0/33", "prefix length 33 is out of range for IPv4 (0-32)" },
		{ "2001:db8::/129", "prefix length 129 is out of range for IPv6 (0-128)" },
		{ "192.0.2.0/-1", "invalid prefix length '-1' in '192.0.2.0/-1'" },
		{ "192.0.2.0/", "'192.0.2.0/' has no prefix length after '/'" },
		{ "192.0.2.0/024", "invalid prefix length '024'" },
		{ "192.0.2.0/24/24", "invalid prefix length '24/24'" },
		{ "192.0.2.0/ 24", "invalid prefix length ' 24'" },
		{ "192.0.2.0/99999999999999999999",
		  "prefix length 99999999999999999999 is out of range" },
	};
	struct policy_prefix pfx;
	char reason[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(policy_prefix_parse(cases[i].text, &pfx, reason, sizeof(reason)),
				 -EINVAL);
		if (!strstr(reason, cases[i].reason))
			fail_msg("%s: got '%s', expected '%s'", cases[i].text, reason,
				 cases[i].reason);
	}
}

static void test_prefix_parse_rejects_garbage(void **state)
{
	static const char *const cases[] = {
		"",
		"/24",
		"oem",
		"192.0.2",
		"192.0.2.1.1",
		"01.2.3.4",
		" 192.0.2.1",
		"192.0.2.1 ",
		"2001:db8::1%eth0",
		"2001:db8:::1",
		"::ffff:256.0.0.1",
		"1.2.3.4:80",
		"0x01020304",
	};
	struct policy_prefix pfx;
	char reason[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		reason[0] = '\0';
		if (policy_prefix_parse(cases[i], &pfx, reason, sizeof(reason)) != -EINVAL)
			fail_msg("'%s' was accepted", cases[i]);
		if (!strstr(reason, "is not a valid"))
			fail_msg("'%s': unexpected reason '%s'", cases[i], reason);
	}
}

static void test_prefix_parse_accepts_null_reason(void **state)
{
	struct policy_prefix pfx;

	(void)state;
	assert_int_equal(policy_prefix_parse("nope", &pfx, NULL, 0), -EINVAL);
	assert_int_equal(policy_prefix_parse("192.0.2.7", &pfx, NULL, 0), 0);
}

/* ---- helpers -------------------------------------------------------------------------------- */

static void test_error_format(void **state)
{
	struct policy_error e = { .file = "x.yaml", .loc = { 3, 7 }, .reason = "bad" };
	char buf[64], tiny[8];

	(void)state;
	assert_int_equal(policy_error_format(&e, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "x.yaml:3:7: bad");
	e.loc.line = 0;
	assert_int_equal(policy_error_format(&e, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "x.yaml: bad");
	assert_int_equal(policy_error_format(&e, tiny, sizeof(tiny)), -ENOBUFS);
	assert_string_equal(tiny, "x.yaml:");
}

static void test_app_id_valid(void **state)
{
	char id[POLICY_MAX_ID_LEN + 2];

	(void)state;
	assert_true(policy_app_id_valid("mediaplayer"));
	assert_true(policy_app_id_valid("0.a_b-c"));
	memset(id, 'a', POLICY_MAX_ID_LEN);
	id[POLICY_MAX_ID_LEN] = '\0';
	assert_true(policy_app_id_valid(id));
	strcat(id, "a");
	assert_false(policy_app_id_valid(id));
	assert_false(policy_app_id_valid(""));
	assert_false(policy_app_id_valid(NULL));
	assert_false(policy_app_id_valid(".a"));
	assert_false(policy_app_id_valid("_a"));
	assert_false(policy_app_id_valid("a/b"));
	assert_false(policy_app_id_valid("a@b"));
	assert_false(policy_app_id_valid("a b"));
}

static void test_proto_names(void **state)
{
	(void)state;
	assert_string_equal(policy_proto_name(POLICY_PROTO_ANY), "any");
	assert_string_equal(policy_proto_name(POLICY_PROTO_TCP), "tcp");
	assert_string_equal(policy_proto_name(POLICY_PROTO_UDP), "udp");
}

static void test_find_app_and_free_null(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok("version: 1\napps: {x: {allow: []}}\n");

	(void)state;
	assert_non_null(policy_find_app(p, "x"));
	assert_null(policy_find_app(p, "y"));
	assert_null(policy_find_app(NULL, "x"));
	policy_free(NULL);
}

/* ---- bundle metadata ------------------------------------------------------------------------ */

/* A policy whose `bundle:` mapping starts on line 3; its keys are on lines 4-8. */
#define WITH_BUNDLE(body) "version: 1\napps: {a: {allow: []}}\nbundle:\n" body
#define BUNDLE_ID "  id: oem.headunit.policy\n"
#define BUNDLE_VERSION "  version: 42\n"
#define BUNDLE_TARGET "  target: agl-h3-refboard\n"
#define BUNDLE_NOT_BEFORE "  not-before: 2026-11-01T00:00:00Z\n"
#define BUNDLE_NOT_AFTER "  not-after: 2027-11-01T00:00:00Z\n"
#define BUNDLE_ALL BUNDLE_ID BUNDLE_VERSION BUNDLE_TARGET BUNDLE_NOT_BEFORE BUNDLE_NOT_AFTER

static void test_parse_bundle_metadata(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok(WITH_BUNDLE(BUNDLE_ALL));

	(void)state;
	assert_true(p->has_bundle);
	assert_string_equal(p->bundle.id, "oem.headunit.policy");
	assert_int_equal(p->bundle.version, 42);
	assert_string_equal(p->bundle.target, "agl-h3-refboard");
	assert_int_equal(p->bundle.not_before, 1793491200); /* 2026-11-01T00:00:00Z */
	assert_int_equal(p->bundle.not_after, 1825027200);  /* 2027-11-01T00:00:00Z */
	assert_int_equal(p->bundle.target_loc.line, 6);
	assert_int_equal(p->bundle.target_loc.column, 11);
	assert_int_equal(p->bundle.not_after_loc.line, 8);
	assert_int_equal(p->bundle.not_after_loc.column, 14);
}

static void test_parse_policy_without_bundle_has_no_metadata(void **state)
{
	_cleanup_(policy_freep) struct policy *p = parse_ok("version: 1\napps: {a: {allow: []}}\n");

	(void)state;
	assert_false(p->has_bundle);
}

static void test_parse_bundle_accepts_flow_style_and_quoted_times(void **state)
{
	_cleanup_(policy_freep) struct policy *p =
		parse_ok("version: 1\napps: {a: {allow: []}}\n"
			 "bundle: {id: x, version: 9007199254740992, target: t,\n"
			 "         not-before: '1970-01-01T00:00:00Z',\n"
			 "         not-after: \"9999-12-31T23:59:59Z\"}\n");

	(void)state;
	assert_int_equal(p->bundle.version, POLICY_BUNDLE_MAX_VERSION);
	assert_int_equal(p->bundle.not_before, 0);
	assert_int_equal(p->bundle.not_after, 253402300799);
}

static void test_parse_bundle_rejects_unknown_key(void **state)
{
	(void)state;
	assert_parse_error(WITH_BUNDLE(BUNDLE_ALL "  signer: me\n"), 9, 3,
			   "unknown key 'signer' (expected id, version, target, not-before, "
			   "not-after)");
}

static void test_parse_bundle_rejects_duplicate_key(void **state)
{
	(void)state;
	assert_parse_error(WITH_BUNDLE(BUNDLE_ALL "  version: 43\n"), 9, 3,
			   "duplicate key 'version' (first at line 5, column 3)");
}

static void test_parse_rejects_two_bundle_mappings(void **state)
{
	(void)state;
	assert_parse_error(WITH_BUNDLE(BUNDLE_ALL "bundle: {}\n"), 9, 1,
			   "duplicate key 'bundle' (first at line 3, column 1)");
}

static void test_parse_bundle_rejects_missing_key(void **state)
{
	(void)state;
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID BUNDLE_VERSION BUNDLE_TARGET BUNDLE_NOT_BEFORE), 4,
			   3, "missing required key 'not-after' in 'bundle'");
	assert_parse_error(WITH_BUNDLE(BUNDLE_VERSION BUNDLE_TARGET BUNDLE_NOT_BEFORE
					       BUNDLE_NOT_AFTER),
			   4, 3, "missing required key 'id' in 'bundle'");
}

static void test_parse_bundle_rejects_non_mapping(void **state)
{
	(void)state;
	assert_parse_error("version: 1\napps: {a: {allow: []}}\nbundle: oem\n", 3, 9,
			   "'bundle' must be a mapping, not a scalar");
	assert_parse_error("version: 1\napps: {a: {allow: []}}\nbundle:\n", 3, 8,
			   "'bundle' must be a mapping, not null");
}

static void test_parse_bundle_rejects_version_out_of_range(void **state)
{
	(void)state;
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  version: 0\n"), 5, 12,
			   "'bundle.version' 0 is out of range (1-9007199254740992)");
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  version: 9007199254740993\n"), 5, 12,
			   "'bundle.version' 9007199254740993 is out of range");
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  version: 99999999999999999999999999\n"), 5, 12,
			   "is out of range");
}

static void test_parse_bundle_rejects_version_that_is_not_an_integer(void **state)
{
	(void)state;
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  version: 042\n"), 5, 12,
			   "'bundle.version' must be an integer without leading zeros, not '042'");
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  version: -1\n"), 5, 12,
			   "must be an integer without leading zeros, not '-1'");
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  version: 4.2\n"), 5, 12,
			   "must be an integer without leading zeros, not '4.2'");
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  version: '42'\n"), 5, 12,
			   "'bundle.version' must be an integer, not a quoted string");
}

static void test_parse_bundle_rejects_invalid_id_and_target(void **state)
{
	(void)state;
	assert_parse_error(WITH_BUNDLE("  id: oem/policy\n"), 4, 7,
			   "invalid 'bundle.id' 'oem/policy': use letters, digits");
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  target: -board\n"), 5, 11,
			   "invalid 'bundle.target' '-board'");
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID "  target: [a]\n"), 5, 11,
			   "'bundle.target' must be a string, not a sequence");
	assert_parse_error(WITH_BUNDLE("  id: a234567890123456789012345678901234567890"
				       "12345678901234567890"
				       "12345\n"),
			   4, 7, "is longer than 64 characters (POLICY_MAX_ID_LEN)");
}

static void test_parse_bundle_rejects_times_not_rfc3339_utc(void **state)
{
	static const char *const bad[] = {
		"2026-11-01T00:00:00z",	     "2026-11-01t00:00:00Z",
		"2026-11-01 00:00:00Z",	     "2026-11-01T00:00:00+01:00",
		"2026-11-01T00:00:00.5Z",    "2026-11-01T00:00:00",
		"2026-02-30T00:00:00Z",	     "2026-11-01T24:00:00Z",
		"2026-12-31T23:59:60Z",	     "1969-12-31T23:59:59Z",
		"2026-13-01T00:00:00Z",	     "2026-11-1T00:00:00Z",
		"+2026-11-01T00:00:00Z",     "2026-11-01",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *yaml = NULL;

		assert_true(asprintf(&yaml, WITH_BUNDLE(BUNDLE_ID "  not-before: '%s'\n"), bad[i]) >
			    0);
		assert_parse_error(yaml, 5, 15,
				   "is not an RFC 3339 UTC time such as 2026-11-01T00:00:00Z");
	}
}

static void test_parse_bundle_rejects_not_after_not_later_than_not_before(void **state)
{
	(void)state;
	assert_parse_error(WITH_BUNDLE(BUNDLE_ID BUNDLE_VERSION BUNDLE_TARGET BUNDLE_NOT_BEFORE
					       "  not-after: 2026-11-01T00:00:00Z\n"),
			   8, 14, "'bundle.not-after' must be later than 'bundle.not-before'");
}

static void test_time_parse_and_format(void **state)
{
	char buf[POLICY_TIME_LEN + 1];
	int64_t t;

	(void)state;
	assert_int_equal(policy_time_parse("2027-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 1798761600);
	assert_int_equal(policy_time_parse("2024-02-29T12:34:56Z", &t), 0);
	assert_int_equal(policy_time_format(t, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2024-02-29T12:34:56Z");
	assert_int_equal(policy_time_parse("2023-02-29T12:34:56Z", &t), -EINVAL);
	assert_int_equal(policy_time_format(-1, buf, sizeof(buf)), -ERANGE);
	assert_int_equal(policy_time_format(253402300800, buf, sizeof(buf)), -ERANGE);
	assert_int_equal(policy_time_format(0, buf, POLICY_TIME_LEN), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demo_policy_parses_to_expected_structure),
		cmocka_unit_test(test_demo_policy_gets_default_agl_cgroup),
		cmocka_unit_test(test_agl_demo_policy_parses),
		cmocka_unit_test(test_parse_sets_defined_after_apps_resolve),
		cmocka_unit_test(test_parse_rule_index_is_global_in_file_order),
		cmocka_unit_test(test_parse_accepts_single_scalars_for_to_and_ports),
		cmocka_unit_test(test_parse_ports_any_or_absent_means_any_port),
		cmocka_unit_test(test_parse_accepts_quoted_ports),
		cmocka_unit_test(test_parse_empty_allow_means_deny_everything),
		cmocka_unit_test(test_parse_keeps_explicit_cgroup),
		cmocka_unit_test(test_parse_stores_mapped_ipv6_as_ipv4),
		cmocka_unit_test(test_parse_rejects_empty_file),
		cmocka_unit_test(test_parse_rejects_top_level_sequence),
		cmocka_unit_test(test_parse_rejects_multiple_documents),
		cmocka_unit_test(test_parse_rejects_yaml_syntax_error_at_its_location),
		cmocka_unit_test(test_parse_rejects_invalid_utf8),
		cmocka_unit_test(test_parse_rejects_alias),
		cmocka_unit_test(test_parse_rejects_anchor),
		cmocka_unit_test(test_parse_rejects_explicit_tag),
		cmocka_unit_test(test_parse_rejects_nul_in_string),
		cmocka_unit_test(test_parse_rejects_non_scalar_key),
		cmocka_unit_test(test_parse_rejects_unknown_top_key),
		cmocka_unit_test(test_parse_rejects_unknown_rule_key),
		cmocka_unit_test(test_parse_rejects_duplicate_key),
		cmocka_unit_test(test_parse_rejects_duplicate_key_in_rule),
		cmocka_unit_test(test_parse_rejects_missing_version),
		cmocka_unit_test(test_parse_rejects_missing_apps),
		cmocka_unit_test(test_parse_rejects_missing_allow),
		cmocka_unit_test(test_parse_rejects_missing_to),
		cmocka_unit_test(test_parse_rejects_unsupported_version),
		cmocka_unit_test(test_parse_rejects_non_integer_version),
		cmocka_unit_test(test_parse_rejects_mapping_where_list_expected),
		cmocka_unit_test(test_parse_rejects_null_value),
		cmocka_unit_test(test_parse_rejects_scalar_rule),
		cmocka_unit_test(test_parse_rejects_nested_list_in_to),
		cmocka_unit_test(test_parse_accepts_empty_apps),
		cmocka_unit_test(test_parse_audit_global_and_per_app),
		cmocka_unit_test(test_parse_rejects_non_boolean_audit),
		cmocka_unit_test(test_parse_rejects_duplicate_app_id),
		cmocka_unit_test(test_parse_rejects_invalid_app_id),
		cmocka_unit_test(test_parse_rejects_too_long_app_id),
		cmocka_unit_test(test_parse_rejects_absolute_cgroup),
		cmocka_unit_test(test_parse_rejects_dot_dot_in_cgroup),
		cmocka_unit_test(test_parse_rejects_empty_cgroup_component),
		cmocka_unit_test(test_parse_rejects_null_cgroup),
		cmocka_unit_test(test_parse_rejects_too_long_cgroup),
		cmocka_unit_test(test_parse_rejects_two_apps_with_same_cgroup),
		cmocka_unit_test(test_parse_rejects_unknown_set),
		cmocka_unit_test(test_parse_rejects_empty_set),
		cmocka_unit_test(test_parse_rejects_duplicate_set),
		cmocka_unit_test(test_parse_rejects_set_name_that_reads_as_address),
		cmocka_unit_test(test_parse_rejects_set_inside_set),
		cmocka_unit_test(test_parse_rejects_scalar_set),
		cmocka_unit_test(test_parse_rejects_host_bits_in_to),
		cmocka_unit_test(test_parse_rejects_bad_address_in_to),
		cmocka_unit_test(test_parse_rejects_empty_to),
		cmocka_unit_test(test_parse_rejects_port_zero),
		cmocka_unit_test(test_parse_rejects_port_out_of_range),
		cmocka_unit_test(test_parse_rejects_reversed_port_range),
		cmocka_unit_test(test_parse_rejects_port_that_is_not_a_number),
		cmocka_unit_test(test_parse_rejects_any_inside_port_list),
		cmocka_unit_test(test_parse_rejects_empty_ports),
		cmocka_unit_test(test_parse_rejects_unknown_proto),
		cmocka_unit_test(test_parse_rejects_too_many_ports),
		cmocka_unit_test(test_parse_accepts_exactly_max_ports),
		cmocka_unit_test(test_parse_rejects_too_many_apps),
		cmocka_unit_test(test_parse_rejects_too_many_set_entries_even_duplicates),
		cmocka_unit_test(test_parse_rejects_too_many_destinations),
		cmocka_unit_test(test_parse_rejects_too_many_sets),
		cmocka_unit_test(test_parse_rejects_too_many_rules_across_apps),
		cmocka_unit_test(test_parse_buffer_rejects_too_large),
		cmocka_unit_test(test_parse_file_reads_policy),
		cmocka_unit_test(test_parse_file_rejects_too_large_before_reading),
		cmocka_unit_test(test_parse_file_reports_missing_file),
		cmocka_unit_test(test_parse_file_error_names_the_file),
		cmocka_unit_test(test_prefix_parse_ipv4),
		cmocka_unit_test(test_prefix_parse_ipv6),
		cmocka_unit_test(test_prefix_parse_mapped_becomes_ipv4),
		cmocka_unit_test(test_prefix_parse_rejects_mapped_shorter_than_96),
		cmocka_unit_test(test_prefix_parse_rejects_host_bits),
		cmocka_unit_test(test_prefix_parse_rejects_bad_length),
		cmocka_unit_test(test_prefix_parse_rejects_garbage),
		cmocka_unit_test(test_prefix_parse_accepts_null_reason),
		cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_app_id_valid),
		cmocka_unit_test(test_proto_names),
		cmocka_unit_test(test_find_app_and_free_null),
		cmocka_unit_test(test_parse_bundle_metadata),
		cmocka_unit_test(test_parse_policy_without_bundle_has_no_metadata),
		cmocka_unit_test(test_parse_bundle_accepts_flow_style_and_quoted_times),
		cmocka_unit_test(test_parse_bundle_rejects_unknown_key),
		cmocka_unit_test(test_parse_bundle_rejects_duplicate_key),
		cmocka_unit_test(test_parse_rejects_two_bundle_mappings),
		cmocka_unit_test(test_parse_bundle_rejects_missing_key),
		cmocka_unit_test(test_parse_bundle_rejects_non_mapping),
		cmocka_unit_test(test_parse_bundle_rejects_version_out_of_range),
		cmocka_unit_test(test_parse_bundle_rejects_version_that_is_not_an_integer),
		cmocka_unit_test(test_parse_bundle_rejects_invalid_id_and_target),
		cmocka_unit_test(test_parse_bundle_rejects_times_not_rfc3339_utc),
		cmocka_unit_test(test_parse_bundle_rejects_not_after_not_later_than_not_before),
		cmocka_unit_test(test_time_parse_and_format),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
