// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall events [--follow] [--json] [--app ID] [--state-dir DIR]`: the refused (and audited)
 * flows the agent has logged in its state folder, oldest first; with --follow, new ones as the
 * agent writes them (the log rotates; the reader follows it).
 */
#include "carwall_events.h"

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
	} else {
		dst = str_field(o, "dst", "-");
		printf("%s %-7s %-14s pid %lld (%s) %s %s%s%s:%lld %s: %s\n",
		       str_field(o, "time", "-"), str_field(o, "event", "-"), app ? app : "-",
		       (long long)int_field(o, "pid"), str_field(o, "comm", "-"),
		       str_field(o, "proto", "-"), strchr(dst, ':') ? "[" : "", dst,
		       strchr(dst, ':') ? "]" : "", (long long)int_field(o, "port"),
		       str_field(o, "hook", "-"), str_field(o, "reason", "-"));
	}
	rd->printed++;
	json_object_put(o);
}

/* Print the complete lines of f from its current position; returns at end of file. */
static void events_print_from(struct events_reader *rd, FILE *f)
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
		events_print_line(rd, line);
	}
	fflush(stdout);
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

static void usage(FILE *out)
{
	fprintf(out, "Usage: carwall events [--follow] [--json] [--app ID] [--state-dir DIR]\n"
		     "\n"
		     "Refused (and audit-mode) flows logged by carwalld, oldest first.\n"
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
	_cleanup_free_ char *path = NULL, *old_path = NULL;
	bool follow = false;
	FILE *f;
	int o;

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
	if (asprintf(&path, "%s/%s", state_dir, EVENTS_LOG_NAME) < 0 ||
	    asprintf(&old_path, "%s/%s", state_dir, EVENTS_LOG_OLD_NAME) < 0)
		return EXIT_FAILURE;

	f = fopen(old_path, "re");
	if (f) {
		events_print_from(&rd, f);
		fclose(f);
	}
	f = fopen(path, "re");
	if (!f && !follow) {
		if (errno == ENOENT)
			return EXIT_SUCCESS; /* no event yet */
		fprintf(stderr, "carwall events: %s: %s\n", path, strerror(errno));
		return EXIT_FAILURE;
	}
	if (f)
		events_print_from(&rd, f);
	while (follow) {
		/* The agent rotates the log by renaming it: finish the old file, then the new. */
		if (events_rotated(f, path)) {
			if (f) {
				events_print_from(&rd, f);
				fclose(f);
			}
			f = fopen(path, "re");
		}
		if (f) {
			clearerr(f);
			events_print_from(&rd, f);
		}
		sleep_ms(EVENTS_FOLLOW_POLL_MS);
	}
	if (f)
		fclose(f);
	return EXIT_SUCCESS;
}
