/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Flow evidence, what the agent writes and `carwall events` reads: turning the BPF programs'
 * events (struct cw_event) into records named the way the policy names things, and the layout
 * of the agent's bounded, rotated JSON-lines log of them (the writer: agent/events_log.h).
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "carwall.h"

/*
 * The log on disk: one share per app ("app-<id>"), one for flows below the guard ("guard") and
 * one for events of an unknown app ("unknown"), each <state-dir>/events/<share>.jsonl and its
 * previous file <share>.jsonl.1, so that one app's flood rotates out only its own records.
 * The shares together never exceed EVENTS_LOG_MAX_BYTES: each file gets
 * max_bytes / (2 * max_shares); when more shares than max_shares have records, the one written
 * least recently is removed (only many apps refusing at once do that; one app cannot).
 */
#define EVENTS_DIR_NAME "events"
#define EVENTS_FILE_SUFFIX ".jsonl"
#define EVENTS_OLD_FILE_SUFFIX ".jsonl.1"
#define EVENTS_LOG_MAX_BYTES (8u << 20) /* all shares together */
#define EVENTS_LOG_MAX_SHARES 32u	/* 128 KiB per file */
#define EVENTS_LOG_MIN_FILE_BYTES 4096u /* a share's file holds a few records at least */
#define EVENTS_SHARE_NAME_MAX 80	/* "app-" + an app id (64), NUL included */
/* The agent's records of consent changes (switch, state, who, when): no kernel event. */
#define EVENTS_CONSENT_SHARE "consent"
/* Written by agents before the shares (one log for all apps); still read by `carwall events`. */
#define EVENTS_LEGACY_LOG_NAME "events.jsonl"
#define EVENTS_LEGACY_LOG_OLD_NAME "events.jsonl.1"

#define EVENTS_APP_MAX 64 /* = POLICY_MAX_ID_LEN */

/* What the agent knows about an event beyond the record itself. */
struct events_names {
	const char *app;    /* app id, NULL when the event's app is not known (guard) */
	const char *exe;    /* executable path, NULL when unknown (process gone) */
	const char *cgroup; /* the task's cgroup path, NULL when unknown */
	int64_t realtime_ns; /* of the (first) event of the record */
	uint64_t count;	     /* events the record stands for; 0 is taken as 1 */
	int64_t last_ns;     /* realtime of the last of them (count > 1) */
	/* The host name the app learned the destination for (cw_learned), NULL when none. */
	const char *host;
};

const char *events_hook_name(uint8_t hook);
const char *events_verdict_name(uint8_t verdict);
const char *events_proto_name(uint8_t proto);

/* A one-line reason, e.g. "default deny: no rule of mediaplayer allows it". */
void events_reason(const struct cw_event *e, const char *app, char *buf, size_t size);

/* The event as a JSON object (owned by the caller). */
struct json_object *events_to_json(const struct cw_event *e, const struct events_names *n);

/* The event as one logfmt line for the journal (key=value, values quoted when needed). */
void events_format_line(const struct cw_event *e, const struct events_names *n, char *buf,
			size_t size);

/* The time as the records write it: 2026-01-02T03:04:05.123456Z (sorts as text). */
void events_time_format(int64_t realtime_ns, char *buf, size_t size);

/* ---- the log on disk ------------------------------------------------------------------------- */

/* The share of a record: "app-<id>", "guard" or "unknown". */
void events_share_name(const char *app, uint8_t verdict, char buf[EVENTS_SHARE_NAME_MAX]);
/* The share of a file name in the events folder, and whether it is the previous (.1) file;
 * -EINVAL when the name is not a share's file. */
int events_share_of_file(const char *name, char share[EVENTS_SHARE_NAME_MAX], bool *ret_old);
/* Whether s names a share: "guard", "unknown" or "app-" and a valid app id. */
bool events_share_name_valid(const char *s);
