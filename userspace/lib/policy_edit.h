/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Editing a policy's text where the parser found things (struct policy_span: libyaml's marks),
 * never with a parser of its own, and the edit as a unified diff (`diff -u` form, 3 lines of
 * context) that `patch` applies to the file: `carwall policy suggest --base`.
 *
 * policy_edit_add_rules() adds rules at the end of an app's `allow` sequence (block style), or
 * in place of an empty `allow: []`, or a new app at the end of `apps` (block style, or in place
 * of an empty `apps: {}`). An app or `apps` in flow style with content, and a text that does not
 * end with a newline, are refused with a reason: edit the file by hand there.
 */
#pragma once

#include <stddef.h>

#include "policy.h"

/* One edit of a text: lines [line, line + n_del) (1-based) replaced by the lines of `add`. */
struct text_edit {
	size_t line;	 /* 1..lines + 1 (n_del 0: insert before it; lines + 1: at the end) */
	size_t n_del;	 /* lines removed */
	const char *add; /* lines added, each ending in '\n'; "" for none */
};

/*
 * text (size bytes, ending in '\n' or empty) with one edit applied (*ret_text, NUL-terminated)
 * and the unified diff from `from` to `to` labels (*ret_diff: "" when the edit changes nothing).
 * -EINVAL for an edit outside the text or `add` not ending in '\n'.
 */
int text_edit_apply(const char *text, size_t size, const struct text_edit *edit, const char *from,
		    const char *to, char **ret_text, char **ret_diff);

/*
 * The text of policy `base` (parsed from text, size bytes) with `items` (block sequence items
 * at column 0, each line ending in '\n': "- to: [...]\n  ports: [...]\n", comments allowed)
 * added to the `allow` of app `app_id`, or as a new app; "" adds nothing (an empty diff).
 * *ret_text and *ret_diff as text_edit_apply(). -EINVAL with a reason when the text cannot be
 * edited there (see above).
 */
int policy_edit_add_rules(const struct policy *base, const char *text, size_t size,
			  const char *app_id, const char *items, const char *from, const char *to,
			  char **ret_text, char **ret_diff, char *reason, size_t reason_size);
