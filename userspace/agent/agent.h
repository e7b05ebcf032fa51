/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the files of the agent share: struct agent (its options and state, one per process) and
 * the functions each file offers the others. Only the agent's files include it.
 */
#pragma once

#include <bpf/libbpf.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "bundle.h"
#include "bundle_state.h"
#include "cgroup.h"
#include "consent.h"
#include "control_server.h"
#include "events_log.h"
#include "fileio.h"
#include "geo.h"
#include "inventory.h"
#include "loader.h"
#include "observed.h"
#include "log.h"
#include "notify.h"
#include "policy.h"
#include "policy_compile.h"
#include "revoke.h"
#include "util.h"
#include "watch.h"

#define JSON_ADD(o, key, value) json_object_object_add((o), (key), (value))

DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_trust *, bundle_trust_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle_state *, bundle_state_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct bundle *, bundle_free)

#define AGENT_MAX_GUARDS 16 /* --guard-cgroup */

struct agent_timing {
	uint64_t read_us, parse_us, compile_us, apply_us, total_us;
	/* The agent's CPU time for the whole load (its main thread, kernel time included: what
	 * other load on the machine does not stretch), from cpu_start_us (thread_cpu_us()). */
	uint64_t cpu_us, cpu_start_us;
};

/*
 * An app's counters from the generations retired since the agent started (c), and of those the
 * ones that held the policy in force (load): a re-registration of app cgroups applies the same
 * policy to the other generation, and its counts must not be lost from "since load".
 */
struct agent_app_total {
	char *id;
	struct cw_app_counters c;
	struct cw_app_counters load;
	struct cw_dns_counters dns_load; /* DNS answers, generations that held the policy in force */
	uint64_t dropped_logged; /* events_dropped (since start) written as lifecycle records */
};

struct flows_seen;

struct agent {
	/* Options. */
	const char *policy_path;
	const char *pin_dir;
	const char *run_dir;
	const char *state_dir;
	gid_t control_group;
	uint32_t event_rate;
	uint32_t flow_report_s; /* --flow-report-interval */
	bool developer_mode; /* accept unsigned policies: never on a vehicle */
	const char *geo_db_path; /* --geo-db: the country database of home-only residency */
	const char *trust_dir;
	char target[POLICY_MAX_ID_LEN + 1];
	char bundle_ids[BUNDLE_MAX_ACCEPTED_IDS][POLICY_MAX_ID_LEN + 1]; /* --bundle-id */
	const char *bundle_id_list[BUNDLE_MAX_ACCEPTED_IDS];
	size_t n_bundle_ids;
	unsigned threshold;
	char cgroup_root[4096];
	char cgroup_mount[4096];
	/*
	 * The guards, absolute (--guard-cgroup; by default AGL's three app slices): below each,
	 * a cgroup that is no registered app is refused everything. None when disabled.
	 */
	char *guard_paths[AGENT_MAX_GUARDS];
	size_t n_guards;
	char guards_text[AGENT_MAX_GUARDS * 160]; /* their paths, for messages */

	struct loader *loader;
	struct watch *watch;
	int timer_fd;
	int expiry_fd; /* fires when the bundle in force expires */

	/*
	 * The policy in force with what it was resolved to on this host; NULL while none is
	 * (then only the guard is registered, or an earlier agent's pinned policy stays).
	 */
	struct policy *policy;
	char policy_sha256[65];
	char gen_sha256[CW_GENERATIONS][65]; /* the policy each generation was written with */
	/*
	 * The cgroups followed: each app's (one, or AGL's three for an app that names no template
	 * nor cgroup) in policy order, then the guards. .id is the cgroup's id when it was last
	 * resolved (0: not there); the registered ones are those there, except the cgroups of an
	 * app found in two templates at once (ambiguous: neither is registered).
	 */
	struct loader_cgroup *cgroups;
	size_t n_cgroups;
	char **cgroup_paths; /* n_cgroups entries */
	char ambiguous[1024]; /* the apps found in several templates at once; "" when none */
	time_t loaded_at;
	struct policy_maps_stats {
		size_t dst4, dst6, ports, portsets;
	} stats;
	struct agent_timing timing; /* of the last policy that was applied */
	/* The country database the policy in force was loaded with (home-only); path "": none. */
	struct geo_info geo;
	struct geo_db *geo_db; /* that database, open: the country of a region refusal's event */
	bool adopted;		    /* the maps hold a policy pinned by an earlier agent */
	bool signed_policy;	    /* the policy in force came in a verified bundle */
	char signers[256];	    /* key ids (short) of its valid signatures */
	/*
	 * The bytes of the bundle in force, verified again at every reload against the trust
	 * folder, target, bundle ids and floor of that moment (with the time it went in force:
	 * expiry is checked when a bundle goes in force, not while it is in force).
	 */
	char *bundle_data;
	size_t bundle_size;
	time_t bundle_verified_at;
	uint8_t bundle_payload_sha256[BUNDLE_SHA256_BYTES];
	/* Why the policy that was in force is no longer trusted (then fail closed); "" if not. */
	char distrust[1024];
	bool revoke_unsupported_warned;

	/* Following the cgroups: why the last registration again failed, "" when it did not. */
	char cgroup_error[512];

	/* The last refused policy, "" when the last attempt succeeded. */
	char last_error[1024];

	/* Evidence: events from the ring buffer, and the app ids of each generation. */
	struct ring_buffer *events_rb;
	struct events_agg *events_agg; /* repeats folded into one record per key */
	struct events_quota *journal_quota; /* record lines in this log, per app */
	struct events_log *events_log;
	/*
	 * The evidence timer (CLOCK_BOOTTIME, one-shot): armed by evidence_schedule() for the first
	 * deadline of the work pending (repeats, journal reports, sweeps, inventory saves, observed
	 * names' expiry), at most once per EVIDENCE_TICK_GAP_NS; disarmed while none is.
	 */
	int events_tick_fd;
	uint64_t tick_ns;	/* when evidence_tick() last ran (boot clock) */
	uint64_t tick_armed_ns; /* what the timer is set to; UINT64_MAX: disarmed, 0: unknown */
	char **gen_apps[CW_GENERATIONS];
	size_t gen_n_apps[CW_GENERATIONS];
	uint64_t events_received;
	uint64_t events_log_errors;
	/*
	 * Host names: the next sweep of cw_learned (UINT64_MAX: none due), whether a record came
	 * from the ring buffer since the last one (the kernel may have learned an address without
	 * telling: see evidence.c), the policy epoch it swept for, and addresses refused room.
	 */
	uint64_t sweep_due_ns;
	bool sweep_activity;
	uint64_t sweep_epoch;
	uint64_t learn_refused_reported;
	struct agent_app_total *totals;
	size_t n_totals;

	/*
	 * Driver consent (consent.c): the switches' states (read from the state folder at the
	 * first policy), and the state of each switch of the policy in
	 * force (consent_on[i]: policy->consent.switches[i]). consent_group: the group that may
	 * list and set switches over the control socket and nothing else (--consent-group).
	 */
	struct consent_state consent;	    /* in force (or, in a change, about to be) */
	struct consent_state consent_saved; /* as the state folder holds it */
	bool consent_loaded;
	bool consent_on[POLICY_MAX_SWITCHES];
	gid_t consent_group;
	/* The flow inventory (flows.c): options, the store, when it was last saved. */
	uint32_t inventory_max;	   /* --inventory-max-records */
	uint32_t inventory_save_s; /* --inventory-save-interval */
	struct inventory *inventory; /* NULL: none (could not be set up; logged) */
	struct flows_seen *flows_seen; /* cw_seen's totals as last counted */
	struct flows_writer *flows_writer; /* the save in flight (flows.c) */
	bool inventory_dirty;
	uint64_t inventory_saved_ns; /* CLOCK_BOOTTIME */
	uint64_t flows_swept_ns;     /* the last read of cw_seen, CLOCK_BOOTTIME */
	bool flows_activity;	     /* cw_seen may hold flows not counted (flows.c) */
	uint64_t inventory_errors;
	uint64_t inventory_reports; /* allowed-flow events received */
	/* Names observed in the apps' DNS answers (observed.h), for flows no policy name covers. */
	struct observed *observed;
	uint64_t dns_reports;	  /* struct cw_dns_report records received */
	uint64_t dns_reports_bad; /* of those, not kept: a name or address carwall does not take */
	/* This boot's id (--boot-id-file; "" when unknown): the inventory's boots, consent's drives. */
	const char *boot_id_file;
	char boot_id[BOOT_ID_LEN + 1];
};

/* The anti-rollback state to save before a bundle goes in force, and the one it replaces. */
struct agent_floor {
	const struct bundle_state *next;
	const struct bundle_state *prev;
};

/* ---- lifecycle.c: the policy lifecycle -------------------------------------------------- */

uint64_t now_us(void);
uint64_t thread_cpu_us(void);
int agent_apply(struct agent *a, struct policy *p, const char *sha256, bool create,
		struct agent_timing *t, char *reason, size_t reason_size,
		const struct agent_floor *floor);
int agent_load_policy(struct agent *a, const char *why);
int agent_load_bytes(struct agent *a, const char *name, const char *data, size_t size,
		     uint64_t start, struct agent_timing *t, const char *why);
int agent_persist_policy(struct agent *a, const char *data, size_t size);
int agent_first_policy(struct agent *a);

/* ---- registry.c: the app registry ------------------------------------------------------- */

void free_paths(char **paths, size_t n);
int agent_resolve_cgroup(struct agent *a, const char *path, uint32_t app, bool create,
			 struct loader_cgroup *ret);
size_t agent_followed(const struct agent *a, char *const **ret_paths);
void agent_watch_cgroups(struct agent *a);
bool agent_cgroups_ambiguous(const struct loader_cgroup *cgroups, size_t n, uint32_t app);
bool agent_app_ambiguous(const struct agent *a, uint32_t app);
const char *agent_app_cgroup(const struct agent *a, uint32_t app);
bool agent_cgroup_stale(const struct agent *a, size_t i);
bool agent_cgroups_stale(const struct agent *a);
int agent_refresh(struct agent *a, const char *why);
struct json_object *agent_check_overriders(struct agent *a, bool warn);

/* ---- evidence.c: events, counters, stats ------------------------------------------------ */

void agent_retire_gen(struct agent *a, uint32_t gen, const struct policy *next,
		      const char *next_sha256);
void agent_events_json(struct agent *a, struct json_object *ev);
int evidence_open(struct agent *a);
void evidence_consume(struct agent *a);
void evidence_tick(struct agent *a);
void evidence_schedule(struct agent *a);
void evidence_close(struct agent *a);
struct json_object *agent_stats_json(struct agent *a);
/* Lifecycle records of the events log (lib/events.h), for `carwall report`; no-ops without one. */
void evidence_record_start(struct agent *a);
void evidence_record_stop(struct agent *a);
void evidence_record_policy(struct agent *a, const char *why);
void evidence_record_dropped(struct agent *a);
/* `carwall names [APP]`: the learned table, named as the policy in force names things. */
struct json_object *agent_names_json(struct agent *a, const char *only);
/* The host name a flow's destination was learned for by its app; false when there is none. */
bool agent_host_of(struct agent *a, const struct cw_event *e, char *buf, size_t size);
uint64_t boottime_ns(void);

/* ---- flows.c: the flow inventory -------------------------------------------------------- */

int flows_open(struct agent *a);
void flows_on_event(struct agent *a, const struct cw_event *e, const char *app);
void flows_on_dns_report(struct agent *a, const struct cw_dns_report *r);
void flows_tick(struct agent *a);
uint64_t flows_next_deadline(const struct agent *a);
void flows_close(struct agent *a);
void flows_json(struct agent *a, struct json_object *o);

/* ---- consent.c: driver consent --------------------------------------------------------- */

/* The state of each switch of pol (on[]) for the policy about to be applied. */
void agent_consent_resolve(struct agent *a, const struct policy *pol,
			   bool on[static POLICY_MAX_SWITCHES]);
/* pol went in force with on[]: remember it, and save it when it changed. */
void agent_consent_commit(struct agent *a, const struct policy *pol, const bool *on);
/* `carwall consent list` and `carwall consent set NAME on|off`. */
struct json_object *agent_consent_list_json(struct agent *a);
struct json_object *agent_consent_set_json(struct agent *a, const struct control_request *req,
					   const char *arg);

/* ---- api.c: the control API ------------------------------------------------------------- */

/* A reply with an "error" member. */
struct json_object *json_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct json_object *agent_handle(const struct control_request *req, void *userdata);
