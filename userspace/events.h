/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Flow evidence: turning the BPF programs' events (struct cw_event) into records named the way
 * the policy names things, and the agent's bounded, rotated JSON-lines log of them
 * (<state-dir>/events.jsonl, the previous one in events.jsonl.1), which `carwall events` reads.
 */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "carwall.h"

#define EVENTS_LOG_NAME "events.jsonl"
#define EVENTS_LOG_OLD_NAME "events.jsonl.1"
#define EVENTS_LOG_MAX_BYTES (4u << 20) /* per file; two files at most */

/* What the agent knows about an event beyond the record itself. */
struct events_names {
	const char *app;    /* app id, NULL when the event's app is not known (guard) */
	const char *exe;    /* executable path, NULL when unknown (process gone) */
	const char *cgroup; /* the task's cgroup path, NULL when unknown */
	int64_t realtime_ns;
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

struct events_log;

int events_log_open(const char *state_dir, size_t max_bytes, struct events_log **ret);
/* Append one record (a JSON object, one line); rotates when the file is full. */
int events_log_append(struct events_log *log, struct json_object *record);
int events_log_flush(struct events_log *log);
void events_log_free(struct events_log *log);
