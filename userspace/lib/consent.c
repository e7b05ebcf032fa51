// SPDX-License-Identifier: GPL-2.0-only
#include "consent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

#define CONSENT_MAGIC "carwall-consent 1"

static int parse_line(const char *line, size_t len, size_t lineno, struct consent_state *s,
		      char *reason, size_t reason_size)
{
	char name[POLICY_MAX_CONSENT_NAME + 2], state[8], reset[16], extra[2];
	char buf[256];
	struct consent_entry *e;

	if (len >= sizeof(buf)) {
		snprintf(reason, reason_size, "line %zu is too long", lineno);
		return -EINVAL;
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	if (lineno == 1) {
		if (strcmp(buf, CONSENT_MAGIC)) {
			snprintf(reason, reason_size, "line 1 is not '%s'", CONSENT_MAGIC);
			return -EINVAL;
		}
		return 0;
	}
	if (!strncmp(buf, "boot ", 5)) {
		if (lineno != 2 || !boot_id_valid(buf + 5, len - 5)) {
			snprintf(reason, reason_size, "line %zu: a bad boot line", lineno);
			return -EINVAL;
		}
		memcpy(s->boot_id, buf + 5, CONSENT_BOOT_ID_LEN + 1);
		return 0;
	}
	if (sscanf(buf, "switch %33s %7s %15s %1s", name, state, reset, extra) != 3 ||
	    strlen(name) > POLICY_MAX_CONSENT_NAME ||
	    (strcmp(state, "on") && strcmp(state, "off")) ||
	    (strcmp(reset, "persistent") && strcmp(reset, "drive"))) {
		snprintf(reason, reason_size,
			 "line %zu: expected 'switch NAME on|off drive|persistent'", lineno);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].name, name)) {
			snprintf(reason, reason_size, "line %zu: switch '%s' again", lineno, name);
			return -EINVAL;
		}
	if (s->n >= POLICY_MAX_SWITCHES) {
		snprintf(reason, reason_size, "line %zu: more than %d switches", lineno,
			 POLICY_MAX_SWITCHES);
		return -EINVAL;
	}
	e = &s->v[s->n++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->on = !strcmp(state, "on");
	e->reset = !strcmp(reset, "drive") ? POLICY_RESET_DRIVE : POLICY_RESET_PERSISTENT;
	return 0;
}

int consent_parse(const char *data, size_t size, struct consent_state *ret, char *reason,
		  size_t reason_size)
{
	struct consent_state s = {};
	size_t lineno = 0;
	int r;

	if (size > CONSENT_MAX_BYTES || memchr(data, '\0', size)) {
		snprintf(reason, reason_size, "larger than %d bytes or not text",
			 CONSENT_MAX_BYTES);
		return -EINVAL;
	}
	for (size_t off = 0; off < size;) {
		const char *nl = memchr(data + off, '\n', size - off);
		size_t len;

		if (!nl) {
			snprintf(reason, reason_size, "the last line has no newline (cut short?)");
			return -EINVAL;
		}
		len = (size_t)(nl - (data + off));
		r = parse_line(data + off, len, ++lineno, &s, reason, reason_size);
		if (r < 0)
			return r;
		off += len + 1;
	}
	if (lineno < 2) {
		snprintf(reason, reason_size, "no boot line");
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

int consent_format(const struct consent_state *s, char **ret_data, size_t *ret_size)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return -ENOMEM;
	fprintf(f, "%s\nboot %s\n", CONSENT_MAGIC,
		s->boot_id[0] ? s->boot_id : "00000000-0000-0000-0000-000000000000");
	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "switch %s %s %s\n", s->v[i].name, s->v[i].on ? "on" : "off",
			s->v[i].reset == POLICY_RESET_DRIVE ? "drive" : "persistent");
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*ret_data = buf;
	*ret_size = size;
	return 0;
}

int consent_load(const char *dir, struct consent_state *ret, char *reason, size_t reason_size)
{
	_cleanup_free_ char *path = NULL, *data = NULL;
	size_t size;
	int r;

	*ret = (struct consent_state){.all_off = true};
	if (asprintf(&path, "%s/%s", dir, CONSENT_FILE) < 0) {
		path = NULL;
		snprintf(reason, reason_size, "out of memory");
		return -ENOMEM;
	}
	r = read_file_limited(path, CONSENT_MAX_BYTES, &data, &size);
	if (r == -ENOENT) {
		*ret = (struct consent_state){};
		return 0;
	}
	if (r < 0) {
		snprintf(reason, reason_size, "%s: %s", path, strerror(-r));
		return r;
	}
	r = consent_parse(data, size, ret, reason, reason_size);
	if (r < 0) {
		*ret = (struct consent_state){.all_off = true};
		return r;
	}
	return 0;
}

int consent_save(const char *dir, const struct consent_state *s)
{
	_cleanup_free_ char *data = NULL;
	size_t size;
	int r;

	r = consent_format(s, &data, &size);
	if (r < 0)
		return r;
	return file_replace_durably(dir, CONSENT_FILE, CONSENT_TMP_FILE, data, size, NULL);
}

void consent_resolve(const struct policy *p, const struct consent_state *s, const char *boot_id,
		     bool on[static POLICY_MAX_SWITCHES])
{
	for (size_t i = 0; i < p->consent.n_switches && i < POLICY_MAX_SWITCHES; i++) {
		const struct policy_switch *sw = &p->consent.switches[i];

		on[i] = sw->default_on;
		if (s->all_off) {
			on[i] = false;
			continue;
		}
		for (size_t k = 0; k < s->n; k++) {
			if (strcmp(s->v[k].name, sw->name))
				continue;
			/* An unknown boot id ("") matches only within one run of the agent. */
			if (sw->reset == POLICY_RESET_PERSISTENT ||
			    !strcmp(s->boot_id, boot_id ? boot_id : ""))
				on[i] = s->v[k].on;
			break;
		}
	}
}

void consent_from_policy(const struct policy *p, const bool *on, const char *boot_id,
			 struct consent_state *ret)
{
	*ret = (struct consent_state){};
	snprintf(ret->boot_id, sizeof(ret->boot_id), "%s", boot_id ? boot_id : "");
	for (size_t i = 0; i < p->consent.n_switches && i < POLICY_MAX_SWITCHES; i++) {
		struct consent_entry *e = &ret->v[ret->n++];

		snprintf(e->name, sizeof(e->name), "%s", p->consent.switches[i].name);
		e->on = on[i];
		e->reset = p->consent.switches[i].reset;
	}
}
