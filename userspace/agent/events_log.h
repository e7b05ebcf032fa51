/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent's evidence log (the record format and the log's layout: lib/events.h): folding
 * repeated events into records, the journal's quota, and writing the shares on disk.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"

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
/* The executable of the event's sender (e->pid) into buf, "" when unknown; called only when a
 * key's sender changes. */
typedef void (*events_agg_exe_fn)(const struct cw_event *e, char *buf, size_t size,
				  void *userdata);

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
/* When events_agg_tick() has repeats to write (boot clock, never later than the first one due;
 * UINT64_MAX: none pending). O(1). */
uint64_t events_agg_next_deadline(const struct events_agg *agg);
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
/* When events_quota_report() has a report to make (never later than the first one due;
 * UINT64_MAX: no line refused). O(1). */
uint64_t events_quota_next_deadline(const struct events_quota *q);
void events_quota_free(struct events_quota *q);

/* ---- the log on disk ------------------------------------------------------------------------- */

struct events_log;

/* max_bytes: all shares together; max_shares: shares kept at most. */
int events_log_open(const char *state_dir, size_t max_bytes, size_t max_shares,
		    struct events_log **ret);
/* Append one record (a JSON object, one line) to a share; rotates the share's file when full. */
int events_log_append(struct events_log *log, const char *share, struct json_object *record);
int events_log_flush(struct events_log *log);
void events_log_free(struct events_log *log);
