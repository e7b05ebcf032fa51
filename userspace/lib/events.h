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
#include "log.h"

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
	/* A region refusal: the destination's country in the agent's database, NULL unknown. */
	const char *country;
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

/*
 * The record as journal fields (log_struct()), for `journalctl CARWALL_APP=navigation`:
 * CARWALL_EVENT (refused, audit), CARWALL_APP (absent when not an app of the policy),
 * CARWALL_DEST, CARWALL_PORT, CARWALL_PROTO, CARWALL_FAMILY, CARWALL_HOOK, CARWALL_VERDICT,
 * CARWALL_RULE, CARWALL_REASON, CARWALL_HOST (the name the app learned the destination for,
 * when known), CARWALL_COUNT (and CARWALL_FIRST, CARWALL_LAST when it stands for repeats),
 * CARWALL_PID, CARWALL_UID, CARWALL_COMM, CARWALL_EXE (when known), CARWALL_CGROUP_ID,
 * CARWALL_GENERATION. Its MESSAGE_ID and PRIORITY: refused warning, audited notice. The
 * fields point into ret, which must outlive their use.
 */
#define EVENTS_JOURNAL_FIELDS 22u
struct events_journal {
	enum log_level priority;
	const char *message_id;
	struct log_field fields[EVENTS_JOURNAL_FIELDS];
	size_t n_fields;
	/* The texts the fields point to. */
	char dest[64], port[8], proto[8], pid[16], uid[16], comm[17], count[24], cgroup_id[24];
	char generation[8], first[64], last[64], reason[256];
};
_Static_assert(EVENTS_JOURNAL_FIELDS <= LOG_MAX_FIELDS, "the journal takes every field");
void events_journal_fields(const struct cw_event *e, const struct events_names *n,
			   struct events_journal *ret);

/* The time as the records write it: 2026-01-02T03:04:05.123456Z (sorts as text). */
void events_time_format(int64_t realtime_ns, char *buf, size_t size);

/* ---- the log on disk ------------------------------------------------------------------------- */

/* The share of a record: "app-<id>", "guard" or "unknown". */
void events_share_name(const char *app, uint8_t verdict, char buf[EVENTS_SHARE_NAME_MAX]);
/* The share of a file name in the events folder, and whether it is the previous (.1) file;
 * -EINVAL when the name is not a share's file. */
int events_share_of_file(const char *name, char share[EVENTS_SHARE_NAME_MAX], bool *ret_old);
/* Whether s names a share: "guard", "unknown", "agent" or "app-" and a valid app id. */
bool events_share_name_valid(const char *s);

/* ---- the agent's lifecycle records ----------------------------------------------------------- */

/*
 * Besides the flows, the agent writes what a report needs to say over which intervals evidence
 * holds, into its own share, "agent" (no app can write there: an app's share is "app-<id>").
 * Every record has "time" (events_time_format) and "event":
 *   "agent-start"    the agent started; "pid", "version". A start after a record of the same
 *                    agent with no "agent-stop" between: the earlier agent ended uncleanly.
 *   "agent-stop"     the agent stopped (SIGTERM/SIGINT); "pid". Between a stop and the next
 *                    start the pinned programs still enforce, but no event is logged.
 *   "policy"         a policy went in force: "state" ("in-force", "none": no valid policy, only
 *                    the guards; "fail-closed": the one in force is no longer trusted),
 *                    "sha256", "path", "signed", "bundle_id" and "bundle_version" (null when
 *                    not a bundle), "apps", "rules", "why" (start, reload, install...).
 *   "events-dropped" events the kernel could not deliver since the last such record (rate
 *                    limit, full ring buffer): "app" (null: below the guards), "count".
 *   "consent"        (written by the consent switches) "switch", "state" ("on"/"off").
 * Flow records ("refused", "audit") are the other kinds; allowed flows are never in the log:
 * the flow inventory keeps them (inventory.h). What `carwall report residency` reads of a flow
 * record (lib/report.h): "app", "dst", "port", "proto", "host", "count", "first"/"last" (else
 * "time"), "rule" (text) and "rule_index" (the policy's global rule index).
 */
#define EVENTS_AGENT_SHARE "agent"
#define EVENTS_REC_AGENT_START "agent-start"
#define EVENTS_REC_AGENT_STOP "agent-stop"
#define EVENTS_REC_POLICY "policy"
#define EVENTS_REC_DROPPED "events-dropped"
#define EVENTS_REC_CONSENT "consent"

/* Whether a record's "event" is a flow ("refused", "audit", "allowed"), not a lifecycle record. */
bool events_record_is_flow(const char *event);
