// SPDX-License-Identifier: GPL-2.0-only
/* The anti-rollback state of signed bundles; the file format is at the top of bundle_state.h. */
#include "bundle_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

static void (*fault_hook)(enum fileio_step step);

void bundle_state_set_fault_hook(void (*hook)(enum fileio_step step))
{
	fault_hook = hook;
}

static int state_error(char *reason, size_t reason_size, int error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int state_error(char *reason, size_t reason_size, int error, const char *fmt, ...)
{
	va_list ap;

	if (reason && reason_size > 0) {
		va_start(ap, fmt);
		vsnprintf(reason, reason_size, fmt, ap);
		va_end(ap);
	}
	return error;
}

int bundle_state_new(struct bundle_state **ret)
{
	struct bundle_state *s;

	if (!ret)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

void bundle_state_free(struct bundle_state *s)
{
	if (!s)
		return;
	free(s->entries);
	free(s);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_state *, bundle_state_free)

/* Index of id in the sorted entries, or where it would go (*found false). */
static size_t state_search(const struct bundle_state *s, const char *id, bool *found)
{
	size_t lo = 0, hi = s->n_entries;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->entries[mid].id, id);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

const struct bundle_state_entry *bundle_state_find(const struct bundle_state *s, const char *id)
{
	bool found;
	size_t i;

	if (!s || !id)
		return NULL;
	i = state_search(s, id, &found);
	return found ? &s->entries[i] : NULL;
}

/* Insert a new entry at index i; the caller checked the limit. */
static int state_insert(struct bundle_state *s, size_t i, const struct bundle_state_entry *e)
{
	struct bundle_state_entry *entries;

	entries = realloc(s->entries, (s->n_entries + 1) * sizeof(*entries));
	if (!entries)
		return -ENOMEM;
	s->entries = entries;
	memmove(&entries[i + 1], &entries[i], (s->n_entries - i) * sizeof(*entries));
	entries[i] = *e;
	s->n_entries++;
	return 0;
}

int bundle_state_set(struct bundle_state *s, const char *id, uint64_t version,
		     const uint8_t sha256[BUNDLE_SHA256_BYTES])
{
	struct bundle_state_entry e = { .version = version };
	bool found;
	size_t i;

	if (!s || !sha256 || !policy_app_id_valid(id) || version == 0 ||
	    version > POLICY_BUNDLE_MAX_VERSION)
		return -EINVAL;
	i = state_search(s, id, &found);
	if (found) {
		struct bundle_state_entry *old = &s->entries[i];

		if (version < old->version)
			return -ESTALE;
		if (version == old->version &&
		    memcmp(old->sha256, sha256, BUNDLE_SHA256_BYTES) != 0)
			return -ESTALE;
		old->version = version;
		memcpy(old->sha256, sha256, BUNDLE_SHA256_BYTES);
		return 0;
	}
	if (s->n_entries >= BUNDLE_STATE_MAX_ENTRIES)
		return -ENOSPC;
	snprintf(e.id, sizeof(e.id), "%s", id);
	memcpy(e.sha256, sha256, BUNDLE_SHA256_BYTES);
	return state_insert(s, i, &e);
}

/* ---- parsing -------------------------------------------------------------------------------- */

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int hex_value(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* One entry line (without its "\n"): "id version sha256". */
static int parse_entry(const char *line, size_t len, struct bundle_state_entry *ret,
		       char *why, size_t why_size)
{
	const char *sp1, *sp2, *v;
	size_t id_len, v_len;
	uint64_t version = 0;

	sp1 = memchr(line, ' ', len);
	if (!sp1)
		return state_error(why, why_size, -EBADMSG, "expected 'id version sha256'");
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line));
	if (!sp2 || memchr(sp2 + 1, ' ', len - (size_t)(sp2 + 1 - line)))
		return state_error(why, why_size, -EBADMSG, "expected 'id version sha256'");

	id_len = (size_t)(sp1 - line);
	if (id_len == 0 || id_len > POLICY_MAX_ID_LEN)
		return state_error(why, why_size, -EBADMSG, "invalid bundle id");
	memcpy(ret->id, line, id_len);
	ret->id[id_len] = '\0';
	if (!policy_app_id_valid(ret->id))
		return state_error(why, why_size, -EBADMSG, "invalid bundle id");

	v = sp1 + 1;
	v_len = (size_t)(sp2 - v);
	if (v_len == 0 || v_len > 16 || (v_len > 1 && v[0] == '0'))
		return state_error(why, why_size, -EBADMSG, "invalid version");
	for (size_t i = 0; i < v_len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return state_error(why, why_size, -EBADMSG, "invalid version");
		version = version * 10 + (uint64_t)(v[i] - '0');
	}
	if (version == 0 || version > POLICY_BUNDLE_MAX_VERSION)
		return state_error(why, why_size, -EBADMSG, "version out of range");
	ret->version = version;

	if (len - (size_t)(sp2 + 1 - line) != BUNDLE_SHA256_HEX_LEN)
		return state_error(why, why_size, -EBADMSG, "the sha256 is not 64 hex digits");
	for (size_t i = 0; i < BUNDLE_SHA256_BYTES; i++) {
		char hi = sp2[1 + 2 * i], lo = sp2[2 + 2 * i];

		if (!is_lower_hex(hi) || !is_lower_hex(lo))
			return state_error(why, why_size, -EBADMSG,
					   "the sha256 is not 64 lowercase hex digits");
		ret->sha256[i] = (uint8_t)(hex_value(hi) << 4 | hex_value(lo));
	}
	return 0;
}

int bundle_state_parse(const char *data, size_t size, struct bundle_state **ret, char *reason,
		       size_t reason_size)
{
	_cleanup_(bundle_state_freep) struct bundle_state *s = NULL;
	char why[128];
	size_t off = 0;
	unsigned line_no = 0;
	int r;

	if (!ret || (!data && size > 0))
		return state_error(reason, reason_size, -EINVAL, "invalid arguments");
	if (size > BUNDLE_STATE_MAX_BYTES)
		return state_error(reason, reason_size, -EFBIG,
				   "the state is %zu bytes; the limit is %u "
				   "(BUNDLE_STATE_MAX_BYTES)",
				   size, BUNDLE_STATE_MAX_BYTES);
	if (size == 0)
		return state_error(reason, reason_size, -EBADMSG, "the state file is empty");
	r = bundle_state_new(&s);
	if (r < 0)
		return state_error(reason, reason_size, r, "out of memory");

	while (off < size) {
		const char *line = data + off, *nl = memchr(line, '\n', size - off);
		size_t len;

		line_no++;
		if (!nl)
			return state_error(reason, reason_size, -EBADMSG,
					   "line %u: no newline at the end (a cut file?)", line_no);
		len = (size_t)(nl - line);
		off += len + 1;
		if (memchr(line, '\0', len))
			return state_error(reason, reason_size, -EBADMSG,
					   "line %u: contains a NUL byte", line_no);
		if (line_no == 1) {
			if (len != strlen(BUNDLE_STATE_HEADER) ||
			    memcmp(line, BUNDLE_STATE_HEADER, len) != 0)
				return state_error(reason, reason_size, -EBADMSG,
						   "line 1: expected '%s'", BUNDLE_STATE_HEADER);
			continue;
		}

		struct bundle_state_entry e = {};
		bool found;
		size_t i;

		r = parse_entry(line, len, &e, why, sizeof(why));
		if (r < 0)
			return state_error(reason, reason_size, r, "line %u: %s", line_no, why);
		i = state_search(s, e.id, &found);
		if (found)
			return state_error(reason, reason_size, -EBADMSG,
					   "line %u: duplicate bundle id '%s'", line_no, e.id);
		if (s->n_entries >= BUNDLE_STATE_MAX_ENTRIES)
			return state_error(reason, reason_size, -EBADMSG,
					   "line %u: more than %d entries "
					   "(BUNDLE_STATE_MAX_ENTRIES)",
					   line_no, BUNDLE_STATE_MAX_ENTRIES);
		r = state_insert(s, i, &e);
		if (r < 0)
			return state_error(reason, reason_size, r, "out of memory");
	}
	*ret = TAKE_PTR(s);
	return 0;
}

int bundle_state_load(const char *dir, struct bundle_state **ret, char *reason,
		      size_t reason_size)
{
	_cleanup_free_ char *path = NULL, *data = NULL;
	size_t size = 0;
	int r;

	if (!dir || !ret)
		return state_error(reason, reason_size, -EINVAL, "invalid arguments");
	if (asprintf(&path, "%s/%s", dir, BUNDLE_STATE_FILE) < 0) {
		path = NULL;
		return state_error(reason, reason_size, -ENOMEM, "out of memory");
	}
	r = read_file_limited(path, BUNDLE_STATE_MAX_BYTES, &data, &size);
	if (r == -ENOENT) {
		r = bundle_state_new(ret);
		return r < 0 ? state_error(reason, reason_size, r, "out of memory") : 0;
	}
	if (r == -EFBIG)
		return state_error(reason, reason_size, r,
				   "%s is larger than %u bytes (BUNDLE_STATE_MAX_BYTES)", path,
				   BUNDLE_STATE_MAX_BYTES);
	if (r < 0)
		return state_error(reason, reason_size, r, "cannot read %s: %s", path,
				   strerror(-r));
	return bundle_state_parse(data, size, ret, reason, reason_size);
}

/* ---- saving --------------------------------------------------------------------------------- */

int bundle_state_format(const struct bundle_state *s, char **ret_data, size_t *ret_size)
{
	_cleanup_free_ char *buf = NULL;
	size_t size, off;
	int n;

	if (!s || !ret_data || !ret_size)
		return -EINVAL;
	/* header + "\n", and per entry: id, ' ', at most 16 digits, ' ', 64 hex, "\n". */
	size = sizeof(BUNDLE_STATE_HEADER) + 1 +
	       s->n_entries * (POLICY_MAX_ID_LEN + 1 + 16 + 1 + BUNDLE_SHA256_HEX_LEN + 1);
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	n = snprintf(buf, size, "%s\n", BUNDLE_STATE_HEADER);
	off = (size_t)n;
	for (size_t i = 0; i < s->n_entries; i++) {
		char hex[BUNDLE_SHA256_HEX_LEN + 1];

		bundle_hex(s->entries[i].sha256, BUNDLE_SHA256_BYTES, hex);
		n = snprintf(buf + off, size - off, "%s %" PRIu64 " %s\n", s->entries[i].id,
			     s->entries[i].version, hex);
		if (n < 0 || (size_t)n >= size - off)
			return -EOVERFLOW;
		off += (size_t)n;
	}
	*ret_data = TAKE_PTR(buf);
	*ret_size = off;
	return 0;
}

int bundle_state_save(const char *dir, const struct bundle_state *s)
{
	_cleanup_free_ char *data = NULL;
	size_t size = 0;
	int r;

	if (!dir || !s)
		return -EINVAL;
	r = bundle_state_format(s, &data, &size);
	if (r < 0)
		return r;
	return file_replace_durably(dir, BUNDLE_STATE_FILE, BUNDLE_STATE_TMP_FILE, data, size,
				    fault_hook);
}
