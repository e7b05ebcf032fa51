// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall events [--follow] [--json] [--app ID] [--state-dir DIR]`: the refused (and audited)
 * flows the agent has logged in its state folder (one log per app, see events.h), all apps in
 * time order; with --follow, new ones as the agent writes them (the logs rotate; the reader
 * follows them, and the logs of apps that appear).
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "util.h"

#define EVENTS_DEFAULT_STATE_DIR "/var/lib/carwall"
#define EVENTS_MAX_LINE 8192
#define EVENTS_FOLLOW_POLL_MS 200

struct events_reader {
	const char *app; /* filter, or NULL */
	bool json;
	unsigned long printed;
};

static const char *str_field(struct json_object *o, const char *key, const char *dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return dflt;
	return json_object_get_string(v);
}

static int64_t int_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* Print one log line if it passes the filter; lines that are not records are skipped. */
static void events_print_line(struct events_reader *rd, const char *line)
{
	struct json_object *o = json_tokener_parse(line);
	const char *app, *dst;

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return;
	}
	app = str_field(o, "app", NULL);
	if (rd->app && (!app || strcmp(app, rd->app))) {
		json_object_put(o);
		return;
	}
	if (rd->json) {
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
									 JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (!strcmp(str_field(o, "event", ""), "consent")) {
		/* The agent's record of a consent change (events.h, in EVENTS_AGENT_SHARE). */
		printf("%s %-7s %s\n", str_field(o, "time", "-"), "consent",
		       str_field(o, "reason", "-"));
	} else {
		dst = str_field(o, "dst", "-");
		int64_t count = int_field(o, "count");

		printf("%s %-7s %-14s pid %lld (%s) %s %s%s%s:%lld %s: %s",
		       str_field(o, "time", "-"), str_field(o, "event", "-"), app ? app : "-",
		       (long long)int_field(o, "pid"),
		       str_field(o, "comm", "-"), str_field(o, "proto", "-"),
		       strchr(dst, ':') ? "[" : "", dst, strchr(dst, ':') ? "]" : "",
		       (long long)int_field(o, "port"), str_field(o, "hook", "-"),
		       str_field(o, "reason", "-"));
		/* Repeats folded into one record (records of older agents have no count). */
		if (count > 1)
			printf(" (%lld times, the last at %s)", (long long)count,
			       str_field(o, "last", "-"));
		printf("\n");
	}
	rd->printed++;
	json_object_put(o);
}

/* Lines read and not printed yet: printed together, in time order. */
struct events_batch {
	struct events_line {
		char time[40]; /* the record's "time": sorts as text */
		size_t seq;    /* read order, for records of the same time */
		char *text;
	} *lines;
	size_t n, cap;
};

static int events_line_cmp(const void *x, const void *y)
{
	const struct events_line *a = x, *b = y;
	int c = strcmp(a->time, b->time);

	return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

/* Keeps a record that passes the filter; lines that are not records are skipped. */
static void events_batch_add(struct events_reader *rd, struct events_batch *b, const char *line)
{
	struct json_object *o = json_tokener_parse(line);
	const char *app;
	char *text;

	/* Flow records and consent changes; not the agent's lifecycle records (`carwall report`). */
	if (!o || !json_object_is_type(o, json_type_object) ||
	    (!events_record_is_flow(str_field(o, "event", NULL)) &&
	     strcmp(str_field(o, "event", ""), "consent")))
		goto out;
	app = str_field(o, "app", NULL);
	if (rd->app && (!app || strcmp(app, rd->app)))
		goto out;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		struct events_line *l = reallocarray(b->lines, cap, sizeof(*l));

		if (!l)
			goto out;
		b->lines = l;
		b->cap = cap;
	}
	text = strdup(line);
	if (!text)
		goto out;
	snprintf(b->lines[b->n].time, sizeof(b->lines[b->n].time), "%s", str_field(o, "time", ""));
	b->lines[b->n].seq = b->n;
	b->lines[b->n].text = text;
	b->n++;
out:
	json_object_put(o);
}

static void events_batch_print(struct events_reader *rd, struct events_batch *b)
{
	if (b->n == 0)
		return;
	qsort(b->lines, b->n, sizeof(*b->lines), events_line_cmp);
	for (size_t i = 0; i < b->n; i++) {
		events_print_line(rd, b->lines[i].text);
		free(b->lines[i].text);
	}
	b->n = 0;
	fflush(stdout);
}

static void events_batch_free(struct events_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->lines[i].text);
	free(b->lines);
}

/* Reads the complete lines of f from its current position into b; returns at end of file. */
static void events_read_from(struct events_reader *rd, struct events_batch *b, FILE *f)
{
	char line[EVENTS_MAX_LINE];

	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		if (n == 0 || line[n - 1] != '\n') {
			/* A line the agent is still writing: read it again next time. */
			fseek(f, -(long)n, SEEK_CUR);
			break;
		}
		line[n - 1] = '\0';
		events_batch_add(rd, b, line);
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The log at path is not the file f has open (the agent rotated it, or it appeared). */
static bool events_rotated(FILE *f, const char *path)
{
	struct stat on_disk, open;

	if (stat(path, &on_disk) < 0)
		return false;
	if (!f)
		return true;
	return fstat(fileno(f), &open) == 0 && open.st_ino != on_disk.st_ino;
}

/* One log: an app's share (or the log of an older agent), its current and previous file. */
struct events_source {
	char *path, *old_path;
	FILE *f; /* the current file, at the end of what was read */
};

struct events_sources {
	struct events_source *v;
	size_t n;
};

static void events_sources_free(struct events_sources *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		free(ss->v[i].path);
		free(ss->v[i].old_path);
		if (ss->v[i].f)
			fclose(ss->v[i].f);
	}
	free(ss->v);
}

static bool events_source_known(const struct events_sources *ss, const char *path)
{
	for (size_t i = 0; i < ss->n; i++)
		if (!strcmp(ss->v[i].path, path))
			return true;
	return false;
}

/* Adds the log dir/name (+ .1 for the previous file); its records are read into b. */
static int events_source_add(struct events_reader *rd, struct events_sources *ss,
			     struct events_batch *b, const char *path, const char *old_path)
{
	struct events_source *v, *src;
	FILE *old;

	if (events_source_known(ss, path))
		return 0;
	v = reallocarray(ss->v, ss->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	ss->v = v;
	src = &ss->v[ss->n];
	memset(src, 0, sizeof(*src));
	src->path = strdup(path);
	src->old_path = strdup(old_path);
	if (!src->path || !src->old_path) {
		free(src->path);
		free(src->old_path);
		return -ENOMEM;
	}
	ss->n++;
	old = fopen(src->old_path, "re");
	if (old) {
		events_read_from(rd, b, old);
		fclose(old);
	}
	src->f = fopen(src->path, "re");
	if (src->f)
		events_read_from(rd, b, src->f);
	return 0;
}

/* Every share in the events folder not known yet (and, once, the log of an older agent). */
static int events_sources_scan(struct events_reader *rd, struct events_sources *ss,
			       struct events_batch *b, const char *state_dir)
{
	_cleanup_free_ char *dir = NULL, *legacy = NULL, *legacy_old = NULL;
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (asprintf(&legacy, "%s/%s", state_dir, EVENTS_LEGACY_LOG_NAME) < 0 ||
	    asprintf(&legacy_old, "%s/%s", state_dir, EVENTS_LEGACY_LOG_OLD_NAME) < 0 ||
	    asprintf(&dir, "%s/%s", state_dir, EVENTS_DIR_NAME) < 0)
		return -ENOMEM;
	r = events_source_add(rd, ss, b, legacy, legacy_old);
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	while (r == 0 && (de = readdir(d))) {
		_cleanup_free_ char *path = NULL, *old_path = NULL;
		char share[EVENTS_SHARE_NAME_MAX];
		bool old;

		if (events_share_of_file(de->d_name, share, &old) < 0)
			continue;
		if (asprintf(&path, "%s/%s%s", dir, share, EVENTS_FILE_SUFFIX) < 0 ||
		    asprintf(&old_path, "%s/%s%s", dir, share, EVENTS_OLD_FILE_SUFFIX) < 0) {
			r = -ENOMEM;
			break;
		}
		r = events_source_add(rd, ss, b, path, old_path);
	}
	closedir(d);
	return r;
}

/* What the agent wrote since the last call, in every log. */
static void events_sources_poll(struct events_reader *rd, struct events_sources *ss,
				struct events_batch *b)
{
	for (size_t i = 0; i < ss->n; i++) {
		struct events_source *src = &ss->v[i];

		/* The agent rotates a log by renaming it: finish the old file, then the new. */
		if (events_rotated(src->f, src->path)) {
			if (src->f) {
				clearerr(src->f);
				events_read_from(rd, b, src->f);
				fclose(src->f);
			}
			src->f = fopen(src->path, "re");
		}
		if (src->f) {
			clearerr(src->f);
			events_read_from(rd, b, src->f);
		}
	}
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: carwall events [--follow] [--json] [--app ID] [--state-dir DIR]\n"
		     "\n"
		     "Refused (and audit-mode) flows logged by carwalld, every app's, oldest first.\n"
		     "The repeats of a flow are one record with a count, first and last time.\n"
		     "  -f --follow         keep printing new events as they come\n"
		     "  --json              one JSON object per line\n"
		     "  --app ID            only this app's events\n"
		     "  --state-dir DIR     the agent's state folder (default $CARWALL_STATE_DIR or "
		     "%s)\n",
		     EVENTS_DEFAULT_STATE_DIR);
}

int carwall_events_main(int argc, char **argv, bool json)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },	{ "json", no_argument, NULL, 'j' },
		{ "app", required_argument, NULL, 'a' }, { "state-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },	{},
	};
	struct events_reader rd = { .json = json };
	const char *state_dir = getenv("CARWALL_STATE_DIR");
	struct events_sources ss = {};
	struct events_batch b = {};
	bool follow = false;
	int o, r;

	if (!state_dir || !*state_dir)
		state_dir = EVENTS_DEFAULT_STATE_DIR;
	optind = 0;
	while ((o = getopt_long(argc, argv, "+fja:s:h", opts, NULL)) != -1) {
		switch (o) {
		case 'f':
			follow = true;
			break;
		case 'j':
			rd.json = true;
			break;
		case 'a':
			rd.app = optarg;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}

	r = events_sources_scan(&rd, &ss, &b, state_dir);
	if (r < 0) {
		fprintf(stderr, "carwall events: %s/%s: %s\n", state_dir, EVENTS_DIR_NAME,
			strerror(-r));
		events_batch_free(&b);
		events_sources_free(&ss);
		return EXIT_FAILURE;
	}
	events_batch_print(&rd, &b);
	while (follow) {
		sleep_ms(EVENTS_FOLLOW_POLL_MS);
		events_sources_poll(&rd, &ss, &b);
		events_sources_scan(&rd, &ss, &b, state_dir); /* shares that appeared */
		events_batch_print(&rd, &b);
	}
	events_batch_free(&b);
	events_sources_free(&ss);
	return EXIT_SUCCESS;
}
