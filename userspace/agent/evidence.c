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

#include <bpf/libbpf.h>

#include "agent.h"

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
void agent_retire_gen(struct agent *a, uint32_t gen, const struct policy *next)
{
	for (size_t i = 0; i < a->gen_n_apps[gen]; i++) {
		struct agent_app_total *t = agent_total(a, a->gen_apps[gen][i]);
		struct cw_app_counters c;

		if (t && loader_read_app_counters(a->loader, gen, (uint32_t)i, &c) == 0) {
			t->c.allowed += c.allowed;
			t->c.refused += c.refused;
			t->c.audited += c.audited;
			t->c.events_dropped += c.events_dropped;
		}
		free(a->gen_apps[gen][i]);
	}
	free(a->gen_apps[gen]);
	a->gen_apps[gen] = NULL;
	a->gen_n_apps[gen] = 0;
	if (!next || !next->n_apps)
		return;
	a->gen_apps[gen] = calloc(next->n_apps, sizeof(char *));
	if (!a->gen_apps[gen])
		return;
	for (size_t i = 0; i < next->n_apps; i++)
		a->gen_apps[gen][i] = strdup(next->apps[i].id);
	a->gen_n_apps[gen] = next->n_apps;
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
}

static uint64_t boottime_ns(void)
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
	struct events_names n = {
		.app = r->app,
		.exe = r->exe,
		.realtime_ns = r->first_ns,
		.count = r->count,
		.last_ns = r->last_ns,
	};
	char line[1536], share[EVENTS_SHARE_NAME_MAX];
	struct json_object *record;

	events_share_name(r->app, r->e->verdict, share);
	if (events_quota_take(a->journal_quota, share, boottime_ns())) {
		events_format_line(r->e, &n, line, sizeof(line));
		log_notice("%s", line);
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
	(void)userdata;
	log_notice("events: %llu more records of %s were not logged here (at most %u a second); "
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

/* One refused (or audited) flow from the ring buffer, named as the policy names it. */
static int agent_on_event(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct cw_event *e = data;
	const char *app = NULL;

	if (size < sizeof(*e))
		return 0;
	a->events_received++;
	if (e->gen < CW_GENERATIONS && e->app < a->gen_n_apps[e->gen])
		app = a->gen_apps[e->gen][e->app];
	events_agg_add(a->events_agg, e, app, (int64_t)e->boot_ns + realtime_offset_ns());
	return 0;
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
	a->events_tick_fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->events_tick_fd < 0)
		return log_error_errno(negative_errno(), "timerfd: %m");
	struct itimerspec tick = { .it_interval.tv_sec = 1, .it_value.tv_sec = 1 };
	timerfd_settime(a->events_tick_fd, 0, &tick, NULL);
	return 0;
}

/* The ring buffer is readable: every event into the table, the log written. */
void evidence_consume(struct agent *a)
{
	ring_buffer__consume(a->events_rb);
	if (a->events_log)
		events_log_flush(a->events_log);
}

/* Once a second: the repeats that are due, and the journal lines refused. */
void evidence_tick(struct agent *a)
{
	uint64_t expirations;

	if (read(a->events_tick_fd, &expirations, sizeof(expirations)) > 0) {
		events_agg_tick(a->events_agg, boottime_ns());
		events_quota_report(a->journal_quota, boottime_ns(), agent_report_quota, NULL);
	}
	if (a->events_log)
		events_log_flush(a->events_log);
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
		agent_retire_gen(a, g, NULL);
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
	return o;
}

/*
 * Counters: per app since the policy in force was loaded and since the agent started, per rule
 * since the policy was loaded, and the event path's own figures.
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
		JSON_ADD(app, "since_load", counters_json(&c));
		t = guard ? NULL : agent_total(a, a->policy->apps[i].id);
		if (t)
			total = t->c;
		total.allowed += c.allowed;
		total.refused += c.refused;
		total.audited += c.audited;
		total.events_dropped += c.events_dropped;
		JSON_ADD(app, "since_start", counters_json(&total));
		json_object_array_add(apps, app);
	}
	for (size_t i = 0; a->policy && i < a->policy->n_apps; i++) {
		const struct policy_app *app = &a->policy->apps[i];

		for (size_t k = 0; k < app->n_rules; k++) {
			const struct policy_rule *rule = &app->rules[k];
			struct json_object *r;
			uint64_t hits = 0;

			loader_read_rule_hits(a->loader, gen, (uint32_t)rule->index, &hits);
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
