// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: `policy suggest --base`'s diff writer (lib/policy_edit.c). The unified diff of one
 * edit (hunk ranges, context at both ends of the file), and rules added to an app where the
 * parser's marks say: the end of a block `allow` (after its last node, before trailing comments
 * and the next key), in place of `allow: []`, a new app in `apps` (block, or `apps: {}`); flow
 * style and a text without a final newline refused with a reason. Each edited text is parsed
 * again: the rules are the app's, nothing else changed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_edit.h"

static const char items[] = "# 3 flows\n"
			    "- to: [\"192.0.2.77\"]\n"
			    "  ports: [443]\n"
			    "  proto: tcp\n";

static void test_diff_of_an_insertion_has_three_lines_of_context(void **state)
{
	const char text[] = "1\n2\n3\n4\n5\n6\n7\n8\n";
	struct text_edit e = {.line = 5, .n_del = 0, .add = "new\n"};
	char *out = NULL, *diff = NULL;

	(void)state;
	assert_int_equal(text_edit_apply(text, strlen(text), &e, "a", "b", &out, &diff), 0);
	assert_string_equal(out, "1\n2\n3\n4\nnew\n5\n6\n7\n8\n");
	assert_string_equal(diff, "--- a\n+++ b\n@@ -2,6 +2,7 @@\n 2\n 3\n 4\n+new\n 5\n 6\n 7\n");
	free(out);
	free(diff);
}

static void test_diff_at_both_ends_of_the_file(void **state)
{
	const char text[] = "1\n2\n";
	struct text_edit end = {.line = 3, .add = "3\n"}, start = {.line = 1, .add = "0\n"};
	struct text_edit repl = {.line = 2, .n_del = 1, .add = "two\n"};
	char *out = NULL, *diff = NULL;

	(void)state;
	assert_int_equal(text_edit_apply(text, strlen(text), &end, "a", "b", &out, &diff), 0);
	assert_string_equal(out, "1\n2\n3\n");
	assert_string_equal(diff, "--- a\n+++ b\n@@ -1,2 +1,3 @@\n 1\n 2\n+3\n");
	free(out);
	free(diff);
	assert_int_equal(text_edit_apply(text, strlen(text), &start, "a", "b", &out, &diff), 0);
	assert_string_equal(diff, "--- a\n+++ b\n@@ -1,2 +1,3 @@\n+0\n 1\n 2\n");
	free(out);
	free(diff);
	assert_int_equal(text_edit_apply(text, strlen(text), &repl, "a", "b", &out, &diff), 0);
	assert_string_equal(out, "1\ntwo\n");
	assert_string_equal(diff, "--- a\n+++ b\n@@ -1,2 +1,2 @@\n 1\n-2\n+two\n");
	free(out);
	free(diff);
	/* An empty file: a range of no line starts at line 0. */
	assert_int_equal(text_edit_apply("", 0, &start, "a", "b", &out, &diff), 0);
	assert_string_equal(diff, "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+0\n");
	free(out);
	free(diff);
}

static void test_edits_outside_the_text_are_refused(void **state)
{
	struct text_edit past = {.line = 4, .add = "x\n"}, del = {.line = 2, .n_del = 2, .add = ""};
	struct text_edit nonl = {.line = 1, .add = "x"};
	char *out = NULL, *diff = NULL;

	(void)state;
	assert_int_equal(text_edit_apply("1\n2\n", 4, &past, "a", "b", &out, &diff), -EINVAL);
	assert_int_equal(text_edit_apply("1\n2\n", 4, &del, "a", "b", &out, &diff), -EINVAL);
	assert_int_equal(text_edit_apply("1\n2\n", 4, &nonl, "a", "b", &out, &diff), -EINVAL);
	assert_int_equal(text_edit_apply("1\n2", 3, &past, "a", "b", &out, &diff), -EINVAL);
}

/* Add items to app `app` of text; the edited text parses, and the app has n_rules rules. */
static char *edit_ok(const char *text, const char *app, size_t n_rules, char **ret_diff)
{
	struct policy *p = NULL, *q = NULL;
	struct policy_error err = {};
	char *out = NULL, reason[256] = "";
	const struct policy_app *a;

	assert_int_equal(policy_parse_buffer("base", text, strlen(text), &p, &err), 0);
	assert_int_equal(policy_edit_add_rules(p, text, strlen(text), app, items, "base", "new",
					       &out, ret_diff, reason, sizeof(reason)),
			 0);
	if (policy_parse_buffer("new", out, strlen(out), &q, &err) < 0)
		fail_msg("edited text does not parse: %u:%u: %s\n%s", err.loc.line, err.loc.column,
			 err.reason, out);
	a = policy_find_app(q, app);
	assert_non_null(a);
	assert_int_equal(a->n_rules, n_rules);
	assert_int_equal(a->rules[n_rules - 1].n_ports, 1);
	assert_int_equal(a->rules[n_rules - 1].ports[0].first, 443);
	assert_int_equal(q->n_apps, p->n_apps + (policy_find_app(p, app) ? 0 : 1));
	policy_free(p);
	policy_free(q);
	return out;
}

static void test_rules_go_after_the_last_node_of_a_block_allow(void **state)
{
	/* A UTF-8 comment (columns count characters), a flow sequence over two lines last, a
	 * trailing comment of the sequence, then the next key. */
	const char text[] = "version: 1\n"
			    "# Médiathèque → OEM\n"
			    "apps:\n"
			    "  mediaplayer:\n"
			    "    allow:\n"
			    "      - to: [198.51.100.20]\n"
			    "        ports: [9000,\n"
			    "          9001]\n"
			    "    # the end of the rules\n"
			    "    audit: true\n"
			    "  radio:\n"
			    "    allow: []\n";
	char *diff = NULL, *out = edit_ok(text, "mediaplayer", 2, &diff);

	(void)state;
	assert_string_equal(diff, "--- base\n+++ new\n@@ -6,6 +6,10 @@\n"
				  "       - to: [198.51.100.20]\n"
				  "         ports: [9000,\n"
				  "           9001]\n"
				  "+      # 3 flows\n"
				  "+      - to: [\"192.0.2.77\"]\n"
				  "+        ports: [443]\n"
				  "+        proto: tcp\n"
				  "     # the end of the rules\n"
				  "     audit: true\n"
				  "   radio:\n");
	free(out);
	free(diff);
}

static void test_rules_replace_an_empty_flow_allow(void **state)
{
	const char text[] =
	    "version: 1\napps:\n  hvac:\n    allow: [] # nothing yet\n    audit: true\n";
	char *diff = NULL, *out = edit_ok(text, "hvac", 1, &diff);

	(void)state;
	assert_string_equal(out, "version: 1\napps:\n  hvac:\n    allow: # nothing yet\n"
				 "      # 3 flows\n      - to: [\"192.0.2.77\"]\n"
				 "        ports: [443]\n        proto: tcp\n    audit: true\n");
	assert_non_null(strstr(diff, "-    allow: [] # nothing yet\n+    allow: # nothing yet\n"));
	free(out);
	free(diff);
}

static void test_an_indentless_allow_keeps_its_indentation(void **state)
{
	const char text[] = "version: 1\napps:\n  nav:\n    allow:\n    - to: 198.51.100.9\n";
	char *diff = NULL, *out = edit_ok(text, "nav", 2, &diff);

	(void)state;
	assert_non_null(
	    strstr(out, "    - to: 198.51.100.9\n    # 3 flows\n    - to: [\"192.0.2.77"));
	free(out);
	free(diff);
}

static void test_a_new_app_goes_at_the_end_of_apps(void **state)
{
	const char block[] = "version: 1\napps:\n  nav:\n    allow: []\nresolvers: [192.0.2.2]\n";
	const char empty[] = "version: 1\napps: {}\n";
	char *diff = NULL, *out = edit_ok(block, "mediaplayer", 1, &diff);

	(void)state;
	assert_non_null(strstr(out, "    allow: []\n  mediaplayer:\n    allow:\n      # 3 flows\n"
				    "      - to: [\"192.0.2.77\"]\n"));
	assert_non_null(strstr(out, "        proto: tcp\nresolvers: [192.0.2.2]\n"));
	free(out);
	free(diff);
	out = edit_ok(empty, "mediaplayer", 1, &diff);
	assert_string_equal(out, "version: 1\napps:\n  mediaplayer:\n    allow:\n"
				 "      # 3 flows\n      - to: [\"192.0.2.77\"]\n"
				 "        ports: [443]\n        proto: tcp\n");
	free(out);
	free(diff);
}

static void test_nothing_to_add_is_an_empty_diff(void **state)
{
	const char text[] = "version: 1\napps:\n  a:\n    allow: []\n";
	struct policy *p = NULL;
	struct policy_error err = {};
	char *out = NULL, *diff = NULL, reason[256] = "";

	(void)state;
	assert_int_equal(policy_parse_buffer("base", text, strlen(text), &p, &err), 0);
	assert_int_equal(policy_edit_add_rules(p, text, strlen(text), "a", "", "base", "new", &out,
					       &diff, reason, sizeof(reason)),
			 0);
	assert_string_equal(out, text);
	assert_string_equal(diff, "");
	free(out);
	free(diff);
	policy_free(p);
}

static void expect_refused(const char *text, const char *app, const char *why)
{
	struct policy *p = NULL;
	struct policy_error err = {};
	char *out = NULL, *diff = NULL, reason[256] = "";

	assert_int_equal(policy_parse_buffer("base", text, strlen(text), &p, &err), 0);
	assert_int_equal(policy_edit_add_rules(p, text, strlen(text), app, items, "base", "new",
					       &out, &diff, reason, sizeof(reason)),
			 -EINVAL);
	if (!strstr(reason, why))
		fail_msg("reason '%s' lacks '%s'", reason, why);
	assert_null(out);
	policy_free(p);
}

static void test_flow_style_and_a_missing_final_newline_are_refused(void **state)
{
	(void)state;
	expect_refused("version: 1\napps:\n  a: {allow: []}\n", "a",
		       "base:3:3: app 'a' is written "
		       "in flow style");
	expect_refused("version: 1\napps:\n  a:\n    allow: [{to: 192.0.2.9}]\n", "a",
		       "base:4:12: the 'allow' of app 'a' is in flow style");
	expect_refused("version: 1\napps: {a: {allow: []}}\n", "b", "'apps' is in flow style");
	expect_refused("version: 1\napps:\n  a:\n    allow: []", "a",
		       "does not end with a newline");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_diff_of_an_insertion_has_three_lines_of_context),
	    cmocka_unit_test(test_diff_at_both_ends_of_the_file),
	    cmocka_unit_test(test_edits_outside_the_text_are_refused),
	    cmocka_unit_test(test_rules_go_after_the_last_node_of_a_block_allow),
	    cmocka_unit_test(test_rules_replace_an_empty_flow_allow),
	    cmocka_unit_test(test_an_indentless_allow_keeps_its_indentation),
	    cmocka_unit_test(test_a_new_app_goes_at_the_end_of_apps),
	    cmocka_unit_test(test_nothing_to_add_is_an_empty_diff),
	    cmocka_unit_test(test_flow_style_and_a_missing_final_newline_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
