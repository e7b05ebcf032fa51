// SPDX-License-Identifier: GPL-2.0-only
/* Editing a policy's text at the parser's marks, and the edit as a unified diff (policy_edit.h). */
#include "policy_edit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define DIFF_CONTEXT 3

static void edit_reason(char *reason, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void edit_reason(char *reason, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!reason || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, size, fmt, ap);
	va_end(ap);
}

/* The lines of a text: where each starts, its length with its '\n'. */
struct lines {
	const char **s;
	size_t *len;
	size_t n;
};

static void lines_free(struct lines *l)
{
	free(l->s);
	free(l->len);
}

static int lines_split(const char *text, size_t size, struct lines *ret)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < size; i++)
		n += text[i] == '\n';
	if (size && text[size - 1] != '\n')
		return -EINVAL;
	*ret = (struct lines){
	    .s = calloc(n + 1, sizeof(*ret->s)), .len = calloc(n + 1, sizeof(*ret->len)), .n = n};
	if (!ret->s || !ret->len) {
		lines_free(ret);
		return -ENOMEM;
	}
	for (size_t i = 0, start = 0; i < size; i++)
		if (text[i] == '\n') {
			ret->s[k] = text + start;
			ret->len[k++] = i + 1 - start;
			start = i + 1;
		}
	return 0;
}

/* Each line of `add` with the prefix c ('+', ' ', '-'). */
static void put_prefixed(FILE *f, char c, const char *s, size_t len)
{
	while (len) {
		const char *nl = memchr(s, '\n', len);
		size_t n = nl ? (size_t)(nl - s) + 1 : len;

		fputc(c, f);
		fwrite(s, 1, n, f);
		s += n;
		len -= n;
	}
}

int text_edit_apply(const char *text, size_t size, const struct text_edit *edit, const char *from,
		    const char *to, char **ret_text, char **ret_diff)
{
	_cleanup_free_ char *out = NULL, *diff = NULL;
	size_t out_size = 0, diff_size = 0, add_len = strlen(edit->add), n_add = 0;
	size_t before, after, first, last;
	struct lines l;
	FILE *f;
	int r;

	if (add_len && edit->add[add_len - 1] != '\n')
		return -EINVAL;
	r = lines_split(text, size, &l);
	if (r < 0)
		return r;
	if (edit->line < 1 || edit->line > l.n + 1 || edit->n_del > l.n + 1 - edit->line) {
		lines_free(&l);
		return -EINVAL;
	}
	for (size_t i = 0; i < add_len; i++)
		n_add += edit->add[i] == '\n';
	first = edit->line - 1;	    /* 0-based: the first line removed, or inserted before */
	last = first + edit->n_del; /* the first line kept after it */

	f = open_memstream(&out, &out_size);
	if (!f) {
		lines_free(&l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < first; i++)
		fwrite(l.s[i], 1, l.len[i], f);
	fputs(edit->add, f);
	for (size_t i = last; i < l.n; i++)
		fwrite(l.s[i], 1, l.len[i], f);
	if (fclose(f) != 0) {
		lines_free(&l);
		return -ENOMEM;
	}

	f = open_memstream(&diff, &diff_size);
	if (!f) {
		lines_free(&l);
		return -ENOMEM;
	}
	if (edit->n_del || n_add) {
		before = first < DIFF_CONTEXT ? first : DIFF_CONTEXT;
		after = l.n - last < DIFF_CONTEXT ? l.n - last : DIFF_CONTEXT;
		size_t old_n = before + edit->n_del + after, new_n = before + n_add + after;
		size_t start = first - before + 1;

		/* diff -u: a range of no line starts at the line before it. */
		fprintf(f, "--- %s\n+++ %s\n@@ -%zu,%zu +%zu,%zu @@\n", from, to,
			old_n ? start : start - 1, old_n, new_n ? start : start - 1, new_n);
		for (size_t i = first - before; i < first; i++)
			put_prefixed(f, ' ', l.s[i], l.len[i]);
		for (size_t i = first; i < last; i++)
			put_prefixed(f, '-', l.s[i], l.len[i]);
		put_prefixed(f, '+', edit->add, add_len);
		for (size_t i = last; i < last + after; i++)
			put_prefixed(f, ' ', l.s[i], l.len[i]);
	}
	lines_free(&l);
	if (fclose(f) != 0)
		return -ENOMEM;
	*ret_text = TAKE_PTR(out);
	*ret_diff = TAKE_PTR(diff);
	return 0;
}

/* The byte offset in line s (len bytes) of character column `column` (1-based, as libyaml
 * counts: one per UTF-8 character); len when the line is shorter. */
static size_t column_offset(const char *s, size_t len, unsigned column)
{
	size_t i = 0;

	for (unsigned c = 1; c < column && i < len; c++)
		do
			i++;
		while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80);
	return i;
}

/* Append each line of items to f, indented by `indent` spaces (empty lines stay empty). */
static void put_indented(FILE *f, const char *items, unsigned indent)
{
	for (const char *s = items; *s;) {
		size_t n = strcspn(s, "\n");

		if (n)
			fprintf(f, "%*s%.*s", (int)indent, "", (int)n, s);
		fputc('\n', f);
		s += n + (s[n] == '\n');
	}
}

/*
 * The line of an empty flow collection (`allow: []`, `apps: {}`, on one line) without it: the
 * text before it, trailing blanks dropped, then what follows it (a comment, the newline).
 */
static int empty_flow_line(FILE *f, const struct lines *l, const struct policy_span *span)
{
	size_t i = span->start.line - 1, a, b;

	if (span->start.line != span->end.line || i >= l->n)
		return -EINVAL;
	a = column_offset(l->s[i], l->len[i], span->start.column);
	b = column_offset(l->s[i], l->len[i], span->end.column);
	if (b >= l->len[i])
		return -EINVAL;
	while (a && (l->s[i][a - 1] == ' ' || l->s[i][a - 1] == '\t'))
		a--;
	fwrite(l->s[i], 1, a, f);
	if (l->s[i][b] != '\n' && l->s[i][b] != ' ' && l->s[i][b] != '\t')
		fputc(' ', f);
	fwrite(l->s[i] + b, 1, l->len[i] - b, f);
	return 0;
}

/* Where to insert after a block collection's content: the line after the one it ends on. */
static size_t line_after(const struct policy_span *span)
{
	/* An end at column 1 is the end of the line before (a scalar's final line break). */
	return span->content_end.column == 1 ? span->content_end.line : span->content_end.line + 1;
}

int policy_edit_add_rules(const struct policy *base, const char *text, size_t size,
			  const char *app_id, const char *items, const char *from, const char *to,
			  char **ret_text, char **ret_diff, char *reason, size_t reason_size)
{
	_cleanup_free_ char *add = NULL;
	const struct policy_app *app = policy_find_app(base, app_id);
	struct text_edit edit = {};
	size_t add_size = 0;
	struct lines l;
	FILE *f;
	int r;

	if (size && text[size - 1] != '\n') {
		edit_reason(reason, reason_size, "%s does not end with a newline", from);
		return -EINVAL;
	}
	if (!items[0]) {
		/* Nothing to add: the text as it is, an empty diff. */
		static const struct text_edit none = {.line = 1, .add = ""};

		return text_edit_apply(text, size, &none, from, to, ret_text, ret_diff);
	}
	r = lines_split(text, size, &l);
	if (r < 0)
		return r;
	f = open_memstream(&add, &add_size);
	if (!f) {
		lines_free(&l);
		return -ENOMEM;
	}
	r = 0;
	if (app) {
		const struct policy_span *s = &app->allow_span;

		if (app->span.flow || !s->set) {
			edit_reason(reason, reason_size,
				    "%s:%u:%u: app '%s' is written in flow style ({...}): write it "
				    "in block style to get a diff",
				    from, app->loc.line, app->loc.column, app_id);
			r = -EINVAL;
		} else if (s->flow && s->content_end.line) {
			edit_reason(reason, reason_size,
				    "%s:%u:%u: the 'allow' of app '%s' is in flow style ([...]): "
				    "write it in block style to get a diff",
				    from, s->start.line, s->start.column, app_id);
			r = -EINVAL;
		} else if (s->flow) {
			/* `allow: []`: that line without `[]`, the items below the key. */
			r = empty_flow_line(f, &l, s);
			put_indented(f, items, s->key.column - 1 + 2);
			edit = (struct text_edit){.line = s->start.line, .n_del = 1};
		} else {
			put_indented(f, items, s->start.column - 1);
			edit = (struct text_edit){.line = line_after(s)};
		}
	} else {
		const struct policy_span *s = &base->apps_span;
		unsigned col;

		if (!s->set || (s->flow && s->content_end.line)) {
			edit_reason(reason, reason_size,
				    "%s: 'apps' is in flow style ({...}) or absent: write it in "
				    "block style to get a diff",
				    from);
			r = -EINVAL;
		} else {
			if (s->flow) {
				r = empty_flow_line(f, &l, s);
				col = s->key.column - 1 + 2;
				edit = (struct text_edit){.line = s->start.line, .n_del = 1};
			} else {
				col = s->start.column - 1;
				edit = (struct text_edit){.line = line_after(s)};
			}
			fprintf(f, "%*s%s:\n%*sallow:\n", (int)col, "", app_id, (int)col + 2, "");
			put_indented(f, items, col + 4);
		}
	}
	lines_free(&l);
	if (fclose(f) != 0)
		return -ENOMEM;
	if (r == -EINVAL && reason && !reason[0])
		edit_reason(reason, reason_size, "%s: a collection to edit is not on one line",
			    from);
	if (r < 0)
		return r;
	edit.add = add;
	r = text_edit_apply(text, size, &edit, from, to, ret_text, ret_diff);
	if (r == -EINVAL)
		edit_reason(reason, reason_size, "%s: the parser's marks are outside the text",
			    from);
	return r;
}
