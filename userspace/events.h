/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Flow evidence: turning the BPF programs' events (struct cw_event) into records named the way
 * the policy names things, and the agent's bounded, rotated JSON-lines log of them
 * (<state-dir>/events.jsonl, the previous one in events.jsonl.1), which `carwall events` reads.
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
/* Written by agents before the shares (one log for all apps); still read by `carwall events`. */
#define EVENTS_LEGACY_LOG_NAME "events.jsonl"
#define EVENTS_LEGACY_LOG_OLD_NAME "events.jsonl.1"

/*
 * Aggregation: the events of one key (app, or cgroup for what is not an app, family, address,
 * port, protocol, socket type, hook, verdict, audit) make one record when the first comes
 * (written at once), then one record per flush for the repeats since the last ("count",
 * "first", "last"). A key's flush period doubles after each flush from EVENTS_AGG_FLUSH_MIN_NS
 * to EVENTS_AGG_FLUSH_MAX_NS: a flow refused for hours costs a record a minute. The table holds
 * EVENTS_AGG_MAX_KEYS keys; a new key evicts the least recently seen one (its repeats written
 * first).
 */
#define EVENTS_AGG_MAX_KEYS 4096u
#define EVENTS_AGG_FLUSH_MIN_NS (2ull * 1000000000ull)
#define EVENTS_AGG_FLUSH_MAX_NS (60ull * 1000000000ull)
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

/* ---- aggregation ----------------------------------------------------------------------------- */

/* One record to write, handed by the table to its writer. */
struct events_agg_record {
	const struct cw_event *e; /* the last event it stands for (pid, uid, comm of that sender) */
	const char *app;	  /* NULL: not an app of the policy */
	const char *exe;	  /* of e->pid, NULL when unknown */
	uint64_t count;		  /* events it stands for */
	int64_t first_ns;	  /* realtime of the first and the last of them */
	int64_t last_ns;
	bool first_of_key; /* the first event of its key (else: repeats since the last record) */
};

/* Writes a record (log and journal); called from inside the events_agg_* calls. */
typedef void (*events_agg_write_fn)(const struct events_agg_record *r, void *userdata);
/* The executable of pid into buf, "" when unknown; called only when a key's sender changes. */
typedef void (*events_agg_exe_fn)(uint32_t pid, char *buf, size_t size, void *userdata);

struct events_agg_stats {
	uint64_t events;  /* events added */
	uint64_t folded;  /* of which repeats of a known key */
	uint64_t records; /* records written */
	uint64_t evicted; /* keys evicted for a new one */
	uint64_t pending; /* repeats not written yet */
	size_t keys;	  /* keys in the table */
};

struct events_agg;

int events_agg_new(size_t max_keys, uint64_t flush_min_ns, uint64_t flush_max_ns,
		   events_agg_write_fn write, events_agg_exe_fn exe, void *userdata,
		   struct events_agg **ret);
/* One event (its app as the policy names it, its realtime): written at once if it is the first
 * of its key, else folded into the key's next record. O(1). */
void events_agg_add(struct events_agg *agg, const struct cw_event *e, const char *app,
		    int64_t realtime_ns);
/* Writes the repeats whose flush is due at boot_ns (CLOCK_BOOTTIME, as the events' boot_ns). */
void events_agg_tick(struct events_agg *agg, uint64_t boot_ns);
/* Writes every pending repeat now (the agent stops). */
void events_agg_flush(struct events_agg *agg);
void events_agg_get_stats(const struct events_agg *agg, struct events_agg_stats *ret);
void events_agg_free(struct events_agg *agg);

/* ---- the agent's own log --------------------------------------------------------------------- */

/*
 * The journal gets at most EVENTS_JOURNAL_LINES lines per share and EVENTS_JOURNAL_WINDOW_NS
 * (a scan of many destinations is one new key per flow); the lines refused are counted and
 * reported once the window is over. Every record still goes to the events log.
 */
#define EVENTS_JOURNAL_LINES 20u
#define EVENTS_JOURNAL_WINDOW_NS 1000000000ull
#define EVENTS_JOURNAL_MAX_SHARES 512u /* forgotten (all windows restart) when half full */

struct events_quota;

int events_quota_new(unsigned lines, uint64_t window_ns, struct events_quota **ret);
/* Whether a line of the share may be logged at now_ns (CLOCK_BOOTTIME). O(1). */
bool events_quota_take(struct events_quota *q, const char *share, uint64_t now_ns);
/* Calls report for each share whose window is over with lines refused in it. */
void events_quota_report(struct events_quota *q, uint64_t now_ns,
			 void (*report)(const char *share, uint64_t refused, void *userdata),
			 void *userdata);
void events_quota_free(struct events_quota *q);

/* ---- the log on disk ------------------------------------------------------------------------- */

/* The share of a record: "app-<id>", "guard" or "unknown". */
void events_share_name(const char *app, uint8_t verdict, char buf[EVENTS_SHARE_NAME_MAX]);
/* The share of a file name in the events folder, and whether it is the previous (.1) file;
 * -EINVAL when the name is not a share's file. */
int events_share_of_file(const char *name, char share[EVENTS_SHARE_NAME_MAX], bool *ret_old);

struct events_log;

/* max_bytes: all shares together; max_shares: shares kept at most. */
int events_log_open(const char *state_dir, size_t max_bytes, size_t max_shares,
		    struct events_log **ret);
/* Append one record (a JSON object, one line) to a share; rotates the share's file when full. */
int events_log_append(struct events_log *log, const char *share, struct json_object *record);
int events_log_flush(struct events_log *log);
void events_log_free(struct events_log *log);
