// SPDX-License-Identifier: GPL-2.0-only
/*
 * Evidence: events from the ring buffer named as the policy names things, folded by the
 * aggregation table (events_log.h) into the journal and the events log; the app counters of
 * retired generations (totals since start) and the `stats` answer.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "dns.h"
#include "learned.h"
#include "message_ids.h"

/*
 * The evidence timer fires at most once per EVIDENCE_TICK_GAP_NS (the period of the tick of
 * earlier agents: no work waits longer than it did), and only while work is pending.
 */
#define EVIDENCE_TICK_GAP_NS 1000000000ull
#define AGENT_SWEEP_EVERY_S 5 /* seconds between two sweeps of cw_learned, while any is due */

static void agent_sweep_learned(struct agent *a, uint64_t now);
static void evidence_want_sweep(struct agent *a);

static struct agent_app_total *agent_total(struct agent *a, const char *id)
{
	struct agent_app_total *t;

	for (size_t i = 0; i < a->n_totals; i++)
		if (!strcmp(a->totals[i].id, id))
			return &a->totals[i];
	t = reallocarray(a->totals, a->n_totals + 1, sizeof(*t));
	if (!t)
		return NULL;
	a->totals = t;
	t = &a->totals[a->n_totals];
	memset(t, 0, sizeof(*t));
	t->id = strdup(id);
	if (!t->id)
		return NULL;
	a->n_totals++;
	return t;
}

/*
 * Generation `gen` is about to be reused: add what its apps counted to the agent's totals, and
 * record the app ids it will hold, so that events and counters are named as the policy names
 * things.
 */
static void counters_add(struct cw_app_counters *to, const struct cw_app_counters *c)
{
	to->allowed += c->allowed;
	to->refused += c->refused;
	to->audited += c->audited;
	to->events_dropped += c->events_dropped;
	to->refused_consent += c->refused_consent;
}

static void dns_counters_add(struct cw_dns_counters *to, const struct cw_dns_counters *c)
{
	uint64_t *t = (uint64_t *)to;
	const uint64_t *f = (const uint64_t *)c;

	_Static_assert(sizeof(*c) % sizeof(uint64_t) == 0, "u64 fields only");
	for (size_t i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		t[i] += f[i];
}

void agent_retire_gen(struct agent *a, uint32_t gen, const struct policy *next,
		      const char *next_sha256)
{
	/* Another policy than the one in force: "since load" starts again. */
	bool same = next && a->policy && !strcmp(next_sha256, a->policy_sha256);

	if (next && !same) {
		for (size_t i = 0; i < a->n_totals; i++) {
			memset(&a->totals[i].load, 0, sizeof(a->totals[i].load));
			memset(&a->totals[i].dns_load, 0, sizeof(a->totals[i].dns_load));
		}
		a->learn_refused_reported = 0; /* its first address not learned is warned of */
	}
	for (size_t i = 0; i < a->gen_n_apps[gen]; i++) {
		struct agent_app_total *t = agent_total(a, a->gen_apps[gen][i]);
		bool load = same && !strcmp(a->gen_sha256[gen], next_sha256);
		struct cw_app_counters c;
		struct cw_dns_counters d;

		if (t && loader_read_app_counters(a->loader, gen, (uint32_t)i, &c) == 0) {
			counters_add(&t->c, &c);
			if (load)
				counters_add(&t->load, &c);
		}
		if (t && load && loader_read_dns_counters(a->loader, gen, (uint32_t)i, &d) == 0)
			dns_counters_add(&t->dns_load, &d);
		free(a->gen_apps[gen][i]);
	}
	free(a->gen_apps[gen]);
	a->gen_apps[gen] = NULL;
	a->gen_n_apps[gen] = 0;
	snprintf(a->gen_sha256[gen], sizeof(a->gen_sha256[gen]), "%s", next ? next_sha256 : "");
	if (!next || !next->n_apps)
		return;
	a->gen_apps[gen] = calloc(next->n_apps, sizeof(char *));
	if (!a->gen_apps[gen])
		return;
	for (size_t i = 0; i < next->n_apps; i++)
		a->gen_apps[gen][i] = strdup(next->apps[i].id);
	a->gen_n_apps[gen] = next->n_apps;
}

/*
 * The counters app `id` has in generation `gen` (zero when it has none there), and its DNS
 * counters there if ret_dns is not NULL.
 */
static void agent_gen_counters(struct agent *a, uint32_t gen, const char *id,
			       struct cw_app_counters *ret, struct cw_dns_counters *ret_dns)
{
	memset(ret, 0, sizeof(*ret));
	if (ret_dns)
		memset(ret_dns, 0, sizeof(*ret_dns));
	for (size_t i = 0; i < a->gen_n_apps[gen]; i++)
		if (a->gen_apps[gen][i] && !strcmp(a->gen_apps[gen][i], id)) {
			loader_read_app_counters(a->loader, gen, (uint32_t)i, ret);
			if (ret_dns)
				loader_read_dns_counters(a->loader, gen, (uint32_t)i, ret_dns);
			return;
		}
}

/*
 * App i of the policy in force: its DNS counters since that policy was loaded, gen being the
 * generation in force (a re-registration of app cgroups writes the policy again into the other
 * one): those of the generations retired that held it, of the other generation if it holds it
 * too, and of gen.
 */
static void agent_dns_since_load(struct agent *a, uint32_t gen, size_t i,
				 struct cw_dns_counters *ret)
{
	const char *id = a->policy->apps[i].id;
	struct agent_app_total *t = agent_total(a, id);
	struct cw_dns_counters d;
	struct cw_app_counters c;

	memset(ret, 0, sizeof(*ret));
	if (t) {
		*ret = t->dns_load;
		if (!strcmp(a->gen_sha256[!gen], a->policy_sha256)) {
			agent_gen_counters(a, !gen, id, &c, &d);
			dns_counters_add(ret, &d);
		}
	}
	if (loader_read_dns_counters(a->loader, gen, (uint32_t)i, &d) == 0)
		dns_counters_add(ret, &d);
}

/* The event path's figures, in status and stats. */
void agent_events_json(struct agent *a, struct json_object *ev)
{
	struct events_agg_stats st = {};

	if (a->events_agg)
		events_agg_get_stats(a->events_agg, &st);
	JSON_ADD(ev, "received", json_object_new_int64((int64_t)a->events_received));
	JSON_ADD(ev, "folded", json_object_new_int64((int64_t)st.folded));
	JSON_ADD(ev, "records", json_object_new_int64((int64_t)st.records));
	JSON_ADD(ev, "pending", json_object_new_int64((int64_t)st.pending));
	JSON_ADD(ev, "log_errors", json_object_new_int64((int64_t)a->events_log_errors));
	JSON_ADD(ev, "rate_limit_per_app", json_object_new_int64((int64_t)a->event_rate));
	flows_json(a, ev);
}

uint64_t boottime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t realtime_offset_ns(void)
{
	struct timespec rt, bt;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	return ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000 + (rt.tv_nsec - bt.tv_nsec);
}

/*
 * One record of the aggregation table: a log line (the whole event for the first of its key, a
 * summary with count, first and last for its repeats) and a record in the app's share of the
 * events log.
 */
static void agent_write_record(const struct events_agg_record *r, void *userdata)
{
	struct agent *a = userdata;
	char host[1100], country[3];
	struct events_names n = {
		.app = r->app,
		.exe = r->exe,
		.realtime_ns = r->first_ns,
		.count = r->count,
		.last_ns = r->last_ns,
	};
	char line[1536], share[EVENTS_SHARE_NAME_MAX];
	struct json_object *record;

	if (agent_host_of(a, r->e, host, sizeof(host)))
		n.host = host;
	if (r->e->verdict == CW_VERDICT_DENY_REGION && a->geo_db &&
	    geo_lookup(a->geo_db, r->e->family, r->e->addr, country, NULL) == 0)
		n.country = country;
	events_share_name(r->app, r->e->verdict, share);
	if (events_quota_take(a->journal_quota, share, boottime_ns())) {
		struct events_journal j;

		/* The logfmt line is the MESSAGE; journald gets the fields too (events.h). */
		events_format_line(r->e, &n, line, sizeof(line));
		events_journal_fields(r->e, &n, &j);
		log_struct(j.priority, j.message_id, j.fields, j.n_fields, "%s", line);
	}
	if (!a->events_log)
		return;
	record = events_to_json(r->e, &n);
	if (events_log_append(a->events_log, share, record) < 0)
		a->events_log_errors++;
	json_object_put(record);
}

static void agent_report_quota(const char *share, uint64_t refused, void *userdata)
{
	char count[24];
	const struct log_field fields[] = {
		{ "CARWALL_SHARE", share },
		{ "CARWALL_COUNT", count },
	};

	(void)userdata;
	snprintf(count, sizeof(count), "%llu", (unsigned long long)refused);
	log_struct(LOG_LEVEL_NOTICE, CW_MESSAGE_FLOWS_NOT_LOGGED, fields, ARRAY_SIZE(fields),
		   "events: %llu more records of %s were not logged here (at most %u a second); "
		   "every one is in `carwall events`",
		   (unsigned long long)refused, share, EVENTS_JOURNAL_LINES);
}

/*
 * The executable of an event's sender, read from /proc when the event is processed, which may be
 * after the task exec'd another program or exited (and its pid was reused). The link is read
 * first, then the task's comm: if it still is the event's, the task ran that executable when it
 * sent; otherwise "" (unknown), never another program's path.
 */
static void agent_exe_of(const struct cw_event *e, char *buf, size_t size, void *userdata)
{
	char path[64], comm[sizeof(e->comm) + 1];
	_cleanup_close_ int fd = -1;
	ssize_t len, n;

	(void)userdata;
	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%u/exe", e->pid);
	len = readlink(path, buf, size - 1);
	if (len <= 0) {
		buf[0] = '\0';
		return;
	}
	buf[len] = '\0';
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", e->pid, e->tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, comm, sizeof(comm) - 1);
	if (n <= 0) {
		buf[0] = '\0';
		return;
	}
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	if (strncmp(comm, e->comm, sizeof(e->comm)) != 0)
		buf[0] = '\0';
}

/*
 * One flow from the ring buffer, named as the policy names it: every one into the flow
 * inventory; a refused (or audited) one into the evidence log too.
 */
static int agent_on_event(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct cw_event *e = data;
	const char *app = NULL;

	evidence_want_sweep(a);
	/* The other record of the ring buffer, told apart by its size (bpf/carwall.h). */
	if (size == sizeof(struct cw_dns_report)) {
		flows_on_dns_report(a, data);
		return 0;
	}
	if (size < sizeof(*e))
		return 0;
	if (e->gen < CW_GENERATIONS && e->app < a->gen_n_apps[e->gen])
		app = a->gen_apps[e->gen][e->app];
	flows_on_event(a, e, app);
	if (e->verdict == CW_VERDICT_ALLOW_RULE)
		return 0; /* allowed flows are evidence of nothing refused: counted by flows.c */
	a->events_received++;
	events_agg_add(a->events_agg, e, app, (int64_t)e->boot_ns + realtime_offset_ns());
	return 0;
}

/* ---- lifecycle records: what was in force, when (lib/events.h) -------------------------------- */

/* One record of the agent's own share, stamped now; no-op without an events log. */
static void evidence_record(struct agent *a, const char *event, struct json_object *o)
{
	struct timespec now;
	char when[64];

	clock_gettime(CLOCK_REALTIME, &now);
	events_time_format((int64_t)now.tv_sec * 1000000000 + now.tv_nsec, when, sizeof(when));
	if (a->events_log) {
		struct json_object *rec = json_object_new_object();

		JSON_ADD(rec, "time", json_object_new_string(when));
		JSON_ADD(rec, "event", json_object_new_string(event));
		json_object_object_foreach(o, key, val)
			JSON_ADD(rec, key, json_object_get(val));
		if (events_log_append(a->events_log, EVENTS_AGENT_SHARE, rec) < 0 ||
		    events_log_flush(a->events_log) < 0)
			a->events_log_errors++;
		json_object_put(rec);
	}
	json_object_put(o);
}

void evidence_record_start(struct agent *a)
{
	struct json_object *o = json_object_new_object();

	JSON_ADD(o, "pid", json_object_new_int64(getpid()));
	JSON_ADD(o, "version", json_object_new_string(CARWALL_VERSION));
	evidence_record(a, EVENTS_REC_AGENT_START, o);
}

void evidence_record_stop(struct agent *a)
{
	struct json_object *o = json_object_new_object();

	JSON_ADD(o, "pid", json_object_new_int64(getpid()));
	evidence_record(a, EVENTS_REC_AGENT_STOP, o);
}

/*
 * The policy now in force: its hash, file, signature and bundle; "state" says when there is
 * none (only the guards), when the one in force is no longer trusted (fail closed), or when an
 * earlier agent's pinned policy stays (its content unknown to this agent).
 */
void evidence_record_policy(struct agent *a, const char *why)
{
	struct json_object *o = json_object_new_object();
	bool bundle = a->policy && a->signed_policy && a->policy->has_bundle;
	const char *state = a->distrust[0] ? "fail-closed"
			    : a->policy	   ? "in-force"
			    : a->adopted   ? "adopted"
					   : "none";

	JSON_ADD(o, "state", json_object_new_string(state));
	JSON_ADD(o, "sha256", a->policy && a->policy_sha256[0]
				      ? json_object_new_string(a->policy_sha256)
				      : NULL);
	JSON_ADD(o, "path", json_object_new_string(a->policy_path));
	JSON_ADD(o, "signed", json_object_new_boolean(a->signed_policy));
	JSON_ADD(o, "bundle_id", bundle ? json_object_new_string(a->policy->bundle.id) : NULL);
	JSON_ADD(o, "bundle_version",
		 bundle ? json_object_new_int64((int64_t)a->policy->bundle.version) : NULL);
	JSON_ADD(o, "apps", json_object_new_int64(a->policy ? (int64_t)a->policy->n_apps : 0));
	JSON_ADD(o, "rules", json_object_new_int64(a->policy ? (int64_t)a->policy->n_rules : 0));
	JSON_ADD(o, "why", json_object_new_string(why));
	evidence_record(a, EVENTS_REC_POLICY, o);
}

/*
 * The events of each app of the policy in force that the kernel could not deliver (counted as
 * dropped: rate limit, full ring buffer) since the last record of them, from its counters since
 * the agent started.
 */
void evidence_record_dropped(struct agent *a)
{
	for (size_t i = 0; a->policy && i < a->policy->n_apps; i++) {
		struct agent_app_total *t = agent_total(a, a->policy->apps[i].id);
		struct cw_app_counters g0, g1;
		struct json_object *o;
		uint64_t total;

		if (!t)
			continue;
		agent_gen_counters(a, 0, t->id, &g0, NULL);
		agent_gen_counters(a, 1, t->id, &g1, NULL);
		total = t->c.events_dropped + g0.events_dropped + g1.events_dropped;
		if (total <= t->dropped_logged) {
			t->dropped_logged = total; /* counters of a generation rewritten */
			continue;
		}
		o = json_object_new_object();
		JSON_ADD(o, "app", json_object_new_string(t->id));
		JSON_ADD(o, "count", json_object_new_int64((int64_t)(total - t->dropped_logged)));
		evidence_record(a, EVENTS_REC_DROPPED, o);
		t->dropped_logged = total;
	}
}

/* Reading the ring buffer: what its reader writes to exists first (evidence_close() reads it
 * at exit too). */
int evidence_open(struct agent *a)
{
	int r;

	r = events_quota_new(EVENTS_JOURNAL_LINES, EVENTS_JOURNAL_WINDOW_NS, &a->journal_quota);
	if (r >= 0)
		r = events_agg_new(EVENTS_AGG_MAX_KEYS, EVENTS_AGG_FLUSH_MIN_NS,
				   EVENTS_AGG_FLUSH_MAX_NS, agent_write_record, agent_exe_of, a,
				   &a->events_agg);
	if (r < 0)
		return log_error_errno(r, "Cannot set up the events table: %m");
	a->events_rb = ring_buffer__new(loader_events_fd(a->loader), agent_on_event, a, NULL);
	if (!a->events_rb)
		return log_error_errno(negative_errno(), "Cannot read the event ring buffer: %m");
	r = events_log_open(a->state_dir, EVENTS_LOG_MAX_BYTES, EVENTS_LOG_MAX_SHARES,
			    &a->events_log);
	if (r < 0)
		log_warning_errno(r, "Cannot open the events log in %s; events go to this log only: %m",
				  a->state_dir);
	/* Opened after the first policy went in force: that one is recorded here. */
	evidence_record_start(a);
	evidence_record_policy(a, "start");
	/* Armed by evidence_schedule() when work is due; never periodic. */
	a->events_tick_fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->events_tick_fd < 0)
		return log_error_errno(negative_errno(), "timerfd: %m");
	a->tick_armed_ns = UINT64_MAX;
	/* What the pinned maps hold from before: swept and recorded now, and then when due. */
	agent_sweep_learned(a, boottime_ns());
	evidence_record_dropped(a);
	return flows_open(a);
}

/* The ring buffer is readable: every event into the table, the log written. */
void evidence_consume(struct agent *a)
{
	ring_buffer__consume(a->events_rb);
	if (a->events_log)
		events_log_flush(a->events_log);
}

/* ---- host names: the addresses learned from the apps' DNS answers ----------------------------- */

/*
 * A record came from the ring buffer: the kernel may have learned addresses (or refused them
 * room, or dropped events) that the agent was not told of. It reports every learnable answer
 * (struct cw_dns_report) but those over the app's budget, which come within the second of one
 * it reported, and those while the ring buffer is half full, which is then read; and it drops
 * events only past the app's budget (within the second of one sent) or with the ring buffer
 * full. So a sweep AGENT_SWEEP_EVERY_S after a record, and one more after each sweep that
 * followed a record, see all of it.
 */
static void evidence_want_sweep(struct agent *a)
{
	if (a->sweep_activity)
		return; /* a sweep is due within AGENT_SWEEP_EVERY_S already */
	a->sweep_activity = true;
	a->sweep_due_ns =
		min_u64(a->sweep_due_ns, boottime_ns() + AGENT_SWEEP_EVERY_S * 1000000000ull);
}

/*
 * Delete the learned addresses that expired or whose app or name left the policy in force, keep
 * each app's count for its quota, and report the addresses the kernel could not learn (an app
 * over its quota, a full map). Enforcement never waits for this. The next sweep is due
 * AGENT_SWEEP_EVERY_S later while records came since the last one (evidence_want_sweep()) or
 * when the policy changed, else at the first expiry of what it kept (not before
 * AGENT_SWEEP_EVERY_S), else never.
 */
static void agent_sweep_learned(struct agent *a, uint64_t now)
{
	_cleanup_free_ struct learned_app *apps = NULL;
	struct learned_sweep_stats st = {};
	uint32_t gen = loader_active_gen(a->loader);
	uint64_t refused = 0, next = now + AGENT_SWEEP_EVERY_S * 1000000000ull;
	size_t n = 0;
	int r;

	a->sweep_due_ns = a->sweep_activity ? next : UINT64_MAX;
	a->sweep_activity = false;
	a->sweep_epoch = loader_epoch(a->loader);
	r = loader_active_apps(a->loader, &apps, &n);
	if (r >= 0)
		r = learned_sweep(loader_learned_fd(a->loader), loader_learn_count_fd(a->loader),
				  loader_names_fd(a->loader), gen, apps, n, now, &st);
	if (r < 0) {
		a->sweep_due_ns = next; /* again, as long as it fails */
		log_warning_errno(r, "Cannot sweep the learned addresses: %m");
		return;
	}
	/* Nothing new: the next sweep worth making is the one that deletes the first to expire. */
	a->sweep_due_ns =
		min_u64(a->sweep_due_ns, st.next_expiry_ns > next ? st.next_expiry_ns : next);
	if (st.expired || st.orphaned)
		log_debug("Learned addresses: %zu kept, %zu expired and %zu no longer in the policy "
			  "deleted",
			  st.kept, st.expired, st.orphaned);
	/* Since the policy was loaded, as `carwall stats` counts them. */
	for (size_t i = 0; a->policy && i < a->policy->n_apps; i++) {
		struct cw_dns_counters c;

		agent_dns_since_load(a, gen, i, &c);
		refused += c.over_quota + c.map_full;
	}
	if (refused > a->learn_refused_reported)
		log_warning("%llu addresses from DNS answers were not learned since the policy was "
			    "loaded: an app over its max-learned-per-app, or the learned table full "
			    "(see `carwall stats`); nothing is opened for them",
			    (unsigned long long)refused);
	a->learn_refused_reported = refused;
}

/*
 * The text of name (kind, hash) of app `app` in generation `gen` ("*.x" for a wildcard), and
 * its rule; false when the name is not (or no longer) one of the app's.
 */
static bool agent_name_text(struct agent *a, uint32_t gen, uint32_t app, uint32_t kind,
			    uint64_t hash, char *buf, size_t size, uint32_t *ret_rule)
{
	struct cw_name_key key = { .scope = cw_scope(gen, app), .kind = kind, .hash = hash };
	struct cw_name_val name;
	size_t pre = kind == CW_NAME_WILDCARD ? 2 : 0;

	if (size <= pre || bpf_map_lookup_elem(loader_names_fd(a->loader), &key, &name) < 0)
		return false;
	memcpy(buf, "*.", pre);
	if (dns_name_to_text(name.wire, name.wire_len, buf + pre, size - pre) < 0)
		return false;
	if (ret_rule)
		*ret_rule = name.rule;
	return true;
}

/*
 * The host name a refused flow's destination was learned for by its app (an expired address,
 * a port the name does not allow), so that events name it; false when there is none.
 */
bool agent_host_of(struct agent *a, const struct cw_event *e, char *buf, size_t size)
{
	struct cw_learned_key key = { .family = e->family };
	struct cw_learned_val val;

	if (e->gen >= CW_GENERATIONS || e->app >= a->gen_n_apps[e->gen] ||
	    !a->gen_apps[e->gen][e->app] || (e->family != AF_INET && e->family != AF_INET6))
		return false;
	key.app_uid = policy_app_uid(a->gen_apps[e->gen][e->app]);
	memcpy(key.addr, e->addr, e->family == AF_INET ? 4 : 16);
	if (bpf_map_lookup_elem(loader_learned_fd(a->loader), &key, &val) < 0)
		return false;
	return agent_name_text(a, e->gen, e->app, val.name_kind, val.name_hash, buf, size, NULL);
}

/* The rule (global index) of the policy in force, for evidence; NULL when it has none. */
static const struct policy_rule *agent_rule(struct agent *a, uint32_t index)
{
	for (size_t i = 0; a->policy && i < a->policy->n_apps; i++)
		for (size_t k = 0; k < a->policy->apps[i].n_rules; k++)
			if (a->policy->apps[i].rules[k].index == index)
				return &a->policy->apps[i].rules[k];
	return NULL;
}

static struct json_object *dns_counters_json(const struct cw_dns_counters *c, uint64_t entries)
{
	struct json_object *o = json_object_new_object();

	JSON_ADD(o, "entries", json_object_new_int64((int64_t)entries));
	JSON_ADD(o, "learned", json_object_new_int64((int64_t)c->learned));
	JSON_ADD(o, "untrusted", json_object_new_int64((int64_t)c->untrusted));
	JSON_ADD(o, "unlearnable", json_object_new_int64((int64_t)c->unlearnable));
	JSON_ADD(o, "other_name", json_object_new_int64((int64_t)c->other_name));
	JSON_ADD(o, "skipped_records", json_object_new_int64((int64_t)c->skipped));
	JSON_ADD(o, "over_quota", json_object_new_int64((int64_t)c->over_quota));
	JSON_ADD(o, "map_full", json_object_new_int64((int64_t)c->map_full));
	JSON_ADD(o, "unreported", json_object_new_int64((int64_t)c->unreported));
	return o;
}

/*
 * `carwall names [--app ID]`: the learned table, from the pinned maps, named as the policy in
 * force names things: app, name (NULL when it left the policy), address, seconds left, rule.
 */
struct json_object *agent_names_json(struct agent *a, const char *only)
{
	_cleanup_free_ struct learned_entry *e = NULL;
	_cleanup_free_ struct learned_app *apps = NULL;
	struct json_object *o, *list;
	uint32_t gen = loader_active_gen(a->loader);
	uint64_t now = boottime_ns();
	size_t n = 0, n_apps = 0;
	int r;

	if (only && (!a->policy || !policy_find_app(a->policy, only)))
		return json_error("app '%s' is not in the policy in force", only);
	r = loader_active_apps(a->loader, &apps, &n_apps);
	if (r >= 0)
		r = learned_read_all(loader_learned_fd(a->loader), &e, &n);
	if (r < 0)
		return json_error("cannot read the learned addresses: %s", strerror(-r));
	o = json_object_new_object();
	list = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		const struct learned_app *app = NULL;
		const struct policy_rule *rule = NULL;
		uint32_t rule_index;
		const char *id = NULL;
		char addr[INET6_ADDRSTRLEN], text[1100];
		struct json_object *j;
		int64_t left;

		for (size_t k = 0; k < n_apps && !app; k++)
			if (apps[k].uid == e[i].key.app_uid)
				app = &apps[k];
		if (app && app->app < a->gen_n_apps[gen])
			id = a->gen_apps[gen][app->app];
		if (only && (!id || strcmp(id, only)))
			continue;
		j = json_object_new_object();
		JSON_ADD(j, "app", id ? json_object_new_string(id) : NULL);
		JSON_ADD(j, "app_uid", json_object_new_int64(e[i].key.app_uid));
		text[0] = '\0';
		if (app && agent_name_text(a, gen, app->app, e[i].val.name_kind, e[i].val.name_hash,
					   text, sizeof(text), &rule_index))
			rule = agent_rule(a, rule_index);
		else
			text[0] = '\0';
		JSON_ADD(j, "name", text[0] ? json_object_new_string(text) : NULL);
		inet_ntop((int)e[i].key.family, e[i].key.addr, addr, sizeof(addr));
		JSON_ADD(j, "address", json_object_new_string(addr));
		left = (int64_t)(e[i].val.expires_ns / 1000000000ull) - (int64_t)(now / 1000000000ull);
		JSON_ADD(j, "expires_in_s", json_object_new_int64(left));
		JSON_ADD(j, "expired", json_object_new_boolean(e[i].val.expires_ns <= now));
		if (rule) {
			JSON_ADD(j, "rule", json_object_new_int64((int64_t)rule->index));
			JSON_ADD(j, "file", json_object_new_string(a->policy_path));
			JSON_ADD(j, "line", json_object_new_int((int)rule->loc.line));
			JSON_ADD(j, "column", json_object_new_int((int)rule->loc.column));
		}
		json_object_array_add(list, j);
	}
	JSON_ADD(o, "learned", list);
	JSON_ADD(o, "capacity", json_object_new_int64(CW_MAX_LEARNED));
	return o;
}


/*
 * The evidence timer fired: the work that is due (each module knows its own), then the log
 * flushed. evidence_schedule() arms the timer again.
 */
void evidence_tick(struct agent *a)
{
	uint64_t expirations, now;

	if (read(a->events_tick_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_warning_errno(negative_errno(), "Evidence timer: %m");
	now = boottime_ns();
	a->tick_ns = now;
	a->tick_armed_ns = 0; /* fired (or about to): set again by evidence_schedule() */
	events_agg_tick(a->events_agg, now);
	events_quota_report(a->journal_quota, now, agent_report_quota, NULL);
	if (now >= a->sweep_due_ns) {
		agent_sweep_learned(a, now);
		evidence_record_dropped(a);
	}
	flows_tick(a);
	if (a->events_log)
		events_log_flush(a->events_log);
}

/*
 * After each turn of the event loop: the evidence timer armed (one-shot) for the first deadline
 * of the work pending, never sooner than EVIDENCE_TICK_GAP_NS after the last tick (a burst costs
 * one tick a second, as a periodic tick did, and nothing waits longer than it did), and disarmed
 * while nothing is pending: an idle agent does not wake. Every deadline is O(1) to read.
 */
void evidence_schedule(struct agent *a)
{
	uint64_t due;

	if (a->events_tick_fd < 0)
		return;
	/* A new policy (reload, apps registered again): its orphans in cw_learned go. */
	if (loader_epoch(a->loader) != a->sweep_epoch)
		evidence_want_sweep(a);
	due = min_u64(events_agg_next_deadline(a->events_agg),
		      events_quota_next_deadline(a->journal_quota));
	due = min_u64(due, a->sweep_due_ns);
	due = min_u64(due, flows_next_deadline(a));
	if (due != UINT64_MAX && due < a->tick_ns + EVIDENCE_TICK_GAP_NS)
		due = a->tick_ns + EVIDENCE_TICK_GAP_NS;
	if (due == a->tick_armed_ns)
		return;
	struct itimerspec its = {}; /* zero: disarmed */
	if (due != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(due / 1000000000ull);
		its.it_value.tv_nsec = (long)(due % 1000000000ull);
	}
	if (timerfd_settime(a->events_tick_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		/* Never stop writing evidence: tick as earlier agents did. */
		struct itimerspec every = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };

		log_warning_errno(negative_errno(), "Cannot arm the evidence timer: %m");
		timerfd_settime(a->events_tick_fd, 0, &every, NULL);
		a->tick_armed_ns = 0;
		return;
	}
	a->tick_armed_ns = due;
}

/* The agent stops: what is still queued and every repeat not written yet go to the log. */
void evidence_close(struct agent *a)
{
	if (a->events_rb) {
		ring_buffer__consume(a->events_rb);
		ring_buffer__free(a->events_rb);
	}
	if (a->events_agg)
		events_agg_flush(a->events_agg);
	flows_close(a);
	if (a->events_log) {
		evidence_record_dropped(a);
		evidence_record_stop(a);
	}
	if (a->journal_quota)
		events_quota_report(a->journal_quota, UINT64_MAX, agent_report_quota, NULL);
	if (a->events_log)
		events_log_flush(a->events_log);
	events_agg_free(a->events_agg);
	events_quota_free(a->journal_quota);
	events_log_free(a->events_log);
	if (a->events_tick_fd >= 0)
		close(a->events_tick_fd);
	for (uint32_t g = 0; g < CW_GENERATIONS; g++)
		agent_retire_gen(a, g, NULL, "");
	for (size_t i = 0; i < a->n_totals; i++)
		free(a->totals[i].id);
	free(a->totals);
}

static struct json_object *counters_json(const struct cw_app_counters *c)
{
	struct json_object *o = json_object_new_object();

	JSON_ADD(o, "allowed", json_object_new_int64((int64_t)c->allowed));
	JSON_ADD(o, "refused", json_object_new_int64((int64_t)c->refused));
	JSON_ADD(o, "audited", json_object_new_int64((int64_t)c->audited));
	JSON_ADD(o, "events_dropped", json_object_new_int64((int64_t)c->events_dropped));
	JSON_ADD(o, "refused_consent", json_object_new_int64((int64_t)c->refused_consent));
	return o;
}

/*
 * Home-only residency: the app's flows refused (or audited) for a destination outside the home
 * region, in the generation in force (the policy in force), when the policy asks for it.
 */
static void agent_region_stats_json(struct agent *a, uint32_t gen, uint32_t app,
				    struct json_object *o)
{
	uint64_t n = 0;

	if (!a->policy || !a->policy->residency.home_only ||
	    loader_read_region_refusals(a->loader, gen, app, &n) < 0)
		return;
	JSON_ADD(o, "region_refused_in_generation", json_object_new_int64((int64_t)n));
}

/*
 * Counters: per app since the policy in force was loaded and since the agent started, per app's
 * DNS answers and per rule since the policy was loaded (a re-registration of app cgroups does not
 * start them again), and the event path's own figures.
 */
struct json_object *agent_stats_json(struct agent *a)
{
	struct json_object *o = json_object_new_object();
	struct json_object *apps = json_object_new_array();
	struct json_object *rules = json_object_new_array();
	struct json_object *ev = json_object_new_object();
	uint32_t gen = loader_active_gen(a->loader);
	uint64_t dropped = 0;

	JSON_ADD(o, "generation", json_object_new_int((int)gen));
	JSON_ADD(o, "epoch", json_object_new_int64((int64_t)loader_epoch(a->loader)));
	for (size_t i = 0; a->policy && i <= a->policy->n_apps; i++) {
		bool guard = i == a->policy->n_apps;
		struct cw_app_counters c = {}, total = {};
		struct agent_app_total *t;
		struct json_object *app;

		if (guard && !a->n_guards)
			break;
		if (loader_read_app_counters(a->loader, gen, (uint32_t)i, &c) < 0)
			continue;
		dropped += c.events_dropped;
		app = json_object_new_object();
		JSON_ADD(app, "id", guard ? NULL : json_object_new_string(a->policy->apps[i].id));
		if (guard)
			JSON_ADD(app, "guard", json_object_new_string(a->guards_text));
		/*
		 * since_load: what the generations that held the policy in force counted (a
		 * re-registration of app cgroups writes it again into the other one); since_start:
		 * every generation since the agent started. The other generation counts here until
		 * it is retired.
		 */
		t = guard ? NULL : agent_total(a, a->policy->apps[i].id);
		if (t) {
			struct cw_app_counters other, load = t->load;

			agent_gen_counters(a, !gen, a->policy->apps[i].id, &other, NULL);
			if (!strcmp(a->gen_sha256[!gen], a->policy_sha256))
				counters_add(&load, &other);
			counters_add(&load, &c);
			total = t->c;
			counters_add(&total, &other);
			counters_add(&total, &c);
			c = load;
		} else {
			total = c;
		}
		JSON_ADD(app, "since_load", counters_json(&c));
		JSON_ADD(app, "since_start", counters_json(&total));
		agent_region_stats_json(a, gen, (uint32_t)i, app);
		if (!guard) { /* answers are read (and reported) for every app (bpf/dns.bpf.c) */
			uint32_t uid = policy_app_uid(a->policy->apps[i].id);
			struct cw_dns_counters dns;
			uint64_t entries = 0;

			/* Since the policy was loaded, as since_load. */
			agent_dns_since_load(a, gen, i, &dns);
			bpf_map_lookup_elem(loader_learn_count_fd(a->loader), &uid, &entries);
			JSON_ADD(app, "dns", dns_counters_json(&dns, entries));
		}
		json_object_array_add(apps, app);
	}
	for (size_t i = 0; a->policy && i < a->policy->n_apps; i++) {
		const struct policy_app *app = &a->policy->apps[i];

		for (size_t k = 0; k < app->n_rules; k++) {
			const struct policy_rule *rule = &app->rules[k];
			struct json_object *r;
			uint64_t hits = 0;

			loader_rule_hits_in_force(a->loader, (uint32_t)rule->index, &hits);
			r = json_object_new_object();
			JSON_ADD(r, "app", json_object_new_string(app->id));
			JSON_ADD(r, "rule", json_object_new_int64((int64_t)k));
			JSON_ADD(r, "file", json_object_new_string(a->policy_path));
			JSON_ADD(r, "line", json_object_new_int((int)rule->loc.line));
			JSON_ADD(r, "column", json_object_new_int((int)rule->loc.column));
			JSON_ADD(r, "allowed", json_object_new_int64((int64_t)hits));
			json_object_array_add(rules, r);
		}
	}
	JSON_ADD(o, "apps", apps);
	JSON_ADD(o, "rules", rules);
	agent_events_json(a, ev);
	JSON_ADD(ev, "dropped_since_load", json_object_new_int64((int64_t)dropped));
	JSON_ADD(o, "events", ev);
	return o;
}
