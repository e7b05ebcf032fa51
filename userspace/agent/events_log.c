// SPDX-License-Identifier: GPL-2.0-only
#include "events_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "policy.h"
#include "util.h"

/* ---- aggregation ----------------------------------------------------------------------------- */

/* What makes two events the same record. Zeroed before it is filled: compared with memcmp. */
struct events_agg_key {
	uint64_t cgroup_id;
	uint8_t addr[16];
	uint32_t sock_type;
	uint16_t port;
	uint8_t family;
	uint8_t proto;
	uint8_t hook;
	uint8_t verdict;
	uint8_t audit;
	uint8_t has_app;
	char app[EVENTS_APP_MAX + 1];
	uint8_t pad[7];
};
_Static_assert(sizeof(struct events_agg_key) == 112, "events_agg_key has no implicit padding");
_Static_assert(EVENTS_APP_MAX == POLICY_MAX_ID_LEN, "an app id fits a key");

#define EVENTS_AGG_NONE UINT32_MAX

struct events_agg_entry {
	struct events_agg_key key;
	struct cw_event last; /* the last event of the key */
	char *exe;	      /* of exe_pid; NULL when unknown */
	uint32_t exe_pid;
	uint64_t pending;	/* repeats since the last record */
	int64_t first_ns;	/* realtime of the first and last pending repeat */
	int64_t last_ns;
	uint64_t written_boot_ns; /* when the key's last record was written */
	uint64_t period_ns;	  /* the key's flush period */
	uint32_t hash_next;	  /* chain of its bucket */
	uint32_t lru_prev, lru_next; /* most recently seen first */
	bool used;
};

/* The table's first size: it doubles as keys come, up to max_keys. */
#define EVENTS_AGG_MIN_KEYS 64u

struct events_agg {
	struct events_agg_entry *entries; /* cap entries, the first n_used used */
	size_t cap;
	size_t max_keys;
	uint32_t *buckets; /* n_buckets heads, a power of two */
	size_t n_buckets;
	uint32_t lru_head, lru_tail; /* most and least recently seen */
	uint32_t n_used;
	uint64_t flush_min_ns, flush_max_ns;
	/* No repeat is due before this (boot clock; UINT64_MAX: none pending). It may be earlier
	 * than the first one due (a key flushed meanwhile): then a tick finds nothing and sets it
	 * again. */
	uint64_t next_due_ns;
	events_agg_write_fn write;
	events_agg_exe_fn exe;
	void *userdata;
	struct events_agg_stats stats;
};

static int events_agg_rehash(struct events_agg *agg);

int events_agg_new(size_t max_keys, uint64_t flush_min_ns, uint64_t flush_max_ns,
		   events_agg_write_fn write, events_agg_exe_fn exe, void *userdata,
		   struct events_agg **ret)
{
	struct events_agg *agg;

	if (max_keys == 0 || max_keys >= EVENTS_AGG_NONE / 2 || !write || flush_min_ns == 0 ||
	    flush_max_ns < flush_min_ns)
		return -EINVAL;
	agg = calloc(1, sizeof(*agg));
	if (!agg)
		return -ENOMEM;
	agg->max_keys = max_keys;
	agg->cap = max_keys < EVENTS_AGG_MIN_KEYS ? max_keys : EVENTS_AGG_MIN_KEYS;
	agg->entries = calloc(agg->cap, sizeof(*agg->entries));
	if (!agg->entries || events_agg_rehash(agg) < 0) {
		events_agg_free(agg);
		return -ENOMEM;
	}
	agg->lru_head = agg->lru_tail = EVENTS_AGG_NONE;
	agg->flush_min_ns = flush_min_ns;
	agg->flush_max_ns = flush_max_ns;
	agg->next_due_ns = UINT64_MAX;
	agg->write = write;
	agg->exe = exe;
	agg->userdata = userdata;
	*ret = agg;
	return 0;
}

void events_agg_free(struct events_agg *agg)
{
	if (!agg)
		return;
	for (size_t i = 0; agg->entries && i < agg->n_used; i++)
		free(agg->entries[i].exe);
	free(agg->entries);
	free(agg->buckets);
	free(agg);
}

static void events_agg_key_of(const struct cw_event *e, const char *app, struct events_agg_key *k)
{
	memset(k, 0, sizeof(*k));
	/* An app is one key whatever its cgroup (a restarted unit has a new one); what is not an
	 * app (below the guard) is told apart by its cgroup. */
	if (!app)
		k->cgroup_id = e->cgroup_id;
	memcpy(k->addr, e->addr, sizeof(k->addr));
	k->sock_type = e->sock_type;
	k->port = e->port;
	k->family = e->family;
	k->proto = e->proto;
	k->hook = e->hook;
	k->verdict = e->verdict;
	k->audit = !!(e->flags & CW_EVENT_F_AUDIT);
	if (app) {
		k->has_app = 1;
		strncpy(k->app, app, EVENTS_APP_MAX); /* ids are at most EVENTS_APP_MAX long */
	}
}

/* FNV-1a, 64 bits. */
static size_t events_agg_bucket(const struct events_agg *agg, const struct events_agg_key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return (size_t)(h ^ (h >> 32)) & (agg->n_buckets - 1);
}

/* Buckets for cap keys (a power of two, at least twice as many), the used keys in them. */
static int events_agg_rehash(struct events_agg *agg)
{
	size_t n = 1;
	uint32_t *buckets;

	while (n < 2 * agg->cap)
		n <<= 1;
	buckets = malloc(n * sizeof(*buckets));
	if (!buckets)
		return -ENOMEM;
	free(agg->buckets);
	agg->buckets = buckets;
	agg->n_buckets = n;
	for (size_t b = 0; b < n; b++)
		agg->buckets[b] = EVENTS_AGG_NONE;
	for (uint32_t i = 0; i < agg->n_used; i++) {
		size_t b = events_agg_bucket(agg, &agg->entries[i].key);

		agg->entries[i].hash_next = agg->buckets[b];
		agg->buckets[b] = i;
	}
	return 0;
}

/* Room for twice the keys, up to max_keys; -ENOMEM leaves the table as it was. */
static int events_agg_grow(struct events_agg *agg)
{
	size_t cap = agg->cap * 2 < agg->max_keys ? agg->cap * 2 : agg->max_keys;
	struct events_agg_entry *entries = reallocarray(agg->entries, cap, sizeof(*entries));
	size_t old_cap = agg->cap;

	if (!entries)
		return -ENOMEM;
	memset(entries + old_cap, 0, (cap - old_cap) * sizeof(*entries));
	agg->entries = entries;
	agg->cap = cap;
	if (events_agg_rehash(agg) < 0) {
		agg->cap = old_cap; /* the larger block is kept; only old_cap of it is used */
		return -ENOMEM;
	}
	return 0;
}

static void events_agg_lru_unlink(struct events_agg *agg, uint32_t i)
{
	struct events_agg_entry *x = &agg->entries[i];

	if (x->lru_prev != EVENTS_AGG_NONE)
		agg->entries[x->lru_prev].lru_next = x->lru_next;
	else
		agg->lru_head = x->lru_next;
	if (x->lru_next != EVENTS_AGG_NONE)
		agg->entries[x->lru_next].lru_prev = x->lru_prev;
	else
		agg->lru_tail = x->lru_prev;
	x->lru_prev = x->lru_next = EVENTS_AGG_NONE;
}

static void events_agg_lru_push(struct events_agg *agg, uint32_t i)
{
	struct events_agg_entry *x = &agg->entries[i];

	x->lru_prev = EVENTS_AGG_NONE;
	x->lru_next = agg->lru_head;
	if (agg->lru_head != EVENTS_AGG_NONE)
		agg->entries[agg->lru_head].lru_prev = i;
	agg->lru_head = i;
	if (agg->lru_tail == EVENTS_AGG_NONE)
		agg->lru_tail = i;
}

static void events_agg_write(struct events_agg *agg, struct events_agg_entry *x, uint64_t count,
			     int64_t first_ns, int64_t last_ns, bool first_of_key)
{
	struct events_agg_record r = {
		.e = &x->last,
		.app = x->key.has_app ? x->key.app : NULL,
		.exe = x->exe,
		.count = count,
		.first_ns = first_ns,
		.last_ns = last_ns,
		.first_of_key = first_of_key,
	};

	agg->stats.records++;
	agg->write(&r, agg->userdata);
}

/* The key's repeats as one record, and its next period. */
static void events_agg_write_pending(struct events_agg *agg, struct events_agg_entry *x,
				     uint64_t boot_ns)
{
	uint64_t n = x->pending;

	if (!n)
		return;
	x->pending = 0;
	agg->stats.pending -= n;
	events_agg_write(agg, x, n, x->first_ns, x->last_ns, false);
	x->written_boot_ns = boot_ns;
	x->period_ns = x->period_ns * 2 > agg->flush_max_ns ? agg->flush_max_ns : x->period_ns * 2;
}

/* The sender of the key's last event; its executable is looked up when the sender changes. */
static void events_agg_set_sender(struct events_agg *agg, struct events_agg_entry *x,
				  const struct cw_event *e)
{
	char exe[512];

	x->last = *e;
	if (x->exe && x->exe_pid == e->pid)
		return;
	free(x->exe);
	x->exe = NULL;
	x->exe_pid = e->pid;
	if (!agg->exe || !e->pid)
		return;
	exe[0] = '\0';
	agg->exe(e, exe, sizeof(exe), agg->userdata);
	if (exe[0])
		x->exe = strdup(exe); /* NULL (unknown) when out of memory */
}

/* Removes the least recently seen key (its repeats written first); returns its slot. */
static uint32_t events_agg_evict(struct events_agg *agg, uint64_t boot_ns)
{
	uint32_t i = agg->lru_tail;
	struct events_agg_entry *x = &agg->entries[i];
	uint32_t *p = &agg->buckets[events_agg_bucket(agg, &x->key)];

	events_agg_write_pending(agg, x, boot_ns);
	while (*p != i)
		p = &agg->entries[*p].hash_next;
	*p = x->hash_next;
	events_agg_lru_unlink(agg, i);
	free(x->exe);
	memset(x, 0, sizeof(*x));
	agg->n_used--;
	agg->stats.evicted++;
	return i;
}

void events_agg_add(struct events_agg *agg, const struct cw_event *e, const char *app,
		    int64_t realtime_ns)
{
	struct events_agg_key k;
	struct events_agg_entry *x;
	size_t b;
	uint32_t i;

	events_agg_key_of(e, app, &k);
	b = events_agg_bucket(agg, &k);
	agg->stats.events++;
	for (i = agg->buckets[b]; i != EVENTS_AGG_NONE; i = agg->entries[i].hash_next)
		if (!memcmp(&agg->entries[i].key, &k, sizeof(k)))
			break;
	if (i != EVENTS_AGG_NONE) {
		x = &agg->entries[i];
		if (x->pending++ == 0) {
			x->first_ns = realtime_ns;
			agg->next_due_ns =
				min_u64(agg->next_due_ns, x->written_boot_ns + x->period_ns);
		}
		x->last_ns = realtime_ns;
		agg->stats.folded++;
		agg->stats.pending++;
		events_agg_set_sender(agg, x, e);
		if (agg->lru_head != i) {
			events_agg_lru_unlink(agg, i);
			events_agg_lru_push(agg, i);
		}
		return;
	}

	/* The first of its key: the next free slot (slots are only freed to be reused at once;
	 * the table grows up to max_keys), else the least recently seen key's. */
	if (agg->n_used == agg->cap && agg->cap < agg->max_keys && events_agg_grow(agg) == 0)
		b = events_agg_bucket(agg, &k);
	if (agg->n_used < agg->cap) {
		i = agg->n_used;
	} else {
		i = events_agg_evict(agg, e->boot_ns);
		b = events_agg_bucket(agg, &k);
	}
	x = &agg->entries[i];
	x->key = k;
	x->used = true;
	x->written_boot_ns = e->boot_ns;
	x->period_ns = agg->flush_min_ns;
	x->hash_next = agg->buckets[b];
	agg->buckets[b] = i;
	events_agg_lru_push(agg, i);
	agg->n_used++;
	events_agg_set_sender(agg, x, e);
	events_agg_write(agg, x, 1, realtime_ns, realtime_ns, true);
}

void events_agg_tick(struct events_agg *agg, uint64_t boot_ns)
{
	agg->next_due_ns = UINT64_MAX;
	for (size_t i = 0; i < agg->n_used; i++) {
		struct events_agg_entry *x = &agg->entries[i];

		if (!x->used || !x->pending)
			continue;
		if (boot_ns >= x->written_boot_ns && boot_ns - x->written_boot_ns >= x->period_ns)
			events_agg_write_pending(agg, x, boot_ns);
		else
			agg->next_due_ns = min_u64(agg->next_due_ns, x->written_boot_ns + x->period_ns);
	}
}

uint64_t events_agg_next_deadline(const struct events_agg *agg)
{
	return agg->stats.pending ? agg->next_due_ns : UINT64_MAX;
}

void events_agg_flush(struct events_agg *agg)
{
	for (size_t i = 0; i < agg->n_used; i++)
		if (agg->entries[i].used)
			events_agg_write_pending(agg, &agg->entries[i],
						 agg->entries[i].written_boot_ns);
	agg->next_due_ns = UINT64_MAX;
}

void events_agg_get_stats(const struct events_agg *agg, struct events_agg_stats *ret)
{
	*ret = agg->stats;
	ret->keys = agg->n_used;
}

/* ---- the log on disk ------------------------------------------------------------------------- */

struct events_share {
	char name[EVENTS_SHARE_NAME_MAX];
	FILE *f; /* the current file, opened when first written */
	size_t size;
	uint64_t last_write; /* the log's write clock; 0: not written by this agent */
	int64_t mtime;	     /* of its files when the log was opened */
};

struct events_log {
	char *dir;
	size_t file_max; /* per file: max_bytes / (2 * max_shares) */
	size_t max_shares;
	struct events_share *shares; /* max_shares slots, n_shares in use */
	size_t n_shares;
	uint64_t clock;
};

static int events_log_path(const struct events_log *log, const char *share, bool old, char **ret)
{
	if (asprintf(ret, "%s/%s%s", log->dir, share,
		     old ? EVENTS_OLD_FILE_SUFFIX : EVENTS_FILE_SUFFIX) < 0)
		return -ENOMEM;
	return 0;
}

static struct events_share *events_log_find(struct events_log *log, const char *share)
{
	for (size_t i = 0; i < log->n_shares; i++)
		if (!strcmp(log->shares[i].name, share))
			return &log->shares[i];
	return NULL;
}

/* Removes a share and its files (the least recently written one, to make room). */
static void events_log_remove(struct events_log *log, size_t i)
{
	struct events_share *s = &log->shares[i];

	for (int old = 0; old <= 1; old++) {
		_cleanup_free_ char *path = NULL;

		if (events_log_path(log, s->name, old, &path) == 0)
			unlink(path);
	}
	if (s->f)
		fclose(s->f);
	log->shares[i] = log->shares[--log->n_shares];
}

/* The share written least recently; never the agent's own (the timeline of what was in force,
 * which many apps' floods must not remove), unless it is the only one. */
static size_t events_log_oldest(const struct events_log *log)
{
	size_t oldest = !strcmp(log->shares[0].name, EVENTS_AGENT_SHARE) && log->n_shares > 1;

	for (size_t i = oldest + 1; i < log->n_shares; i++) {
		const struct events_share *a = &log->shares[i], *b = &log->shares[oldest];

		if (!strcmp(a->name, EVENTS_AGENT_SHARE))
			continue;
		if (a->last_write < b->last_write ||
		    (a->last_write == b->last_write && a->mtime < b->mtime))
			oldest = i;
	}
	return oldest;
}

static struct events_share *events_log_add(struct events_log *log, const char *share,
					   int64_t mtime)
{
	struct events_share *s;

	if (log->n_shares == log->max_shares)
		events_log_remove(log, events_log_oldest(log));
	s = &log->shares[log->n_shares++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", share);
	s->mtime = mtime;
	return s;
}

/* The shares already on disk, so that the bound holds across restarts. */
static int events_log_scan(struct events_log *log)
{
	DIR *d = opendir(log->dir);
	struct dirent *de;

	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		char share[EVENTS_SHARE_NAME_MAX];
		struct events_share *s;
		struct stat st;
		bool old;

		if (events_share_of_file(de->d_name, share, &old) < 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		s = events_log_find(log, share);
		if (!s)
			s = events_log_add(log, share, (int64_t)st.st_mtime);
		else if ((int64_t)st.st_mtime > s->mtime)
			s->mtime = (int64_t)st.st_mtime;
	}
	closedir(d);
	return 0;
}

int events_log_open(const char *state_dir, size_t max_bytes, size_t max_shares,
		    struct events_log **ret)
{
	struct events_log *log;
	int r;

	if (max_shares == 0 || max_bytes / 2 / max_shares < EVENTS_LOG_MIN_FILE_BYTES)
		return -EINVAL;
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	log->max_shares = max_shares;
	log->file_max = max_bytes / 2 / max_shares;
	log->shares = calloc(max_shares, sizeof(*log->shares));
	if (!log->shares || asprintf(&log->dir, "%s/%s", state_dir, EVENTS_DIR_NAME) < 0) {
		log->dir = NULL;
		events_log_free(log);
		return -ENOMEM;
	}
	r = mkdir(log->dir, 0700) < 0 && errno != EEXIST ? negative_errno() : 0;
	if (r == 0)
		r = events_log_scan(log);
	if (r < 0) {
		events_log_free(log);
		return r;
	}
	*ret = log;
	return 0;
}

static int events_log_open_share(struct events_log *log, struct events_share *s)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r = events_log_path(log, s->name, false, &path);

	if (r < 0)
		return r;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &st) < 0)
		return negative_errno();
	s->f = fdopen(fd, "a");
	if (!s->f)
		return negative_errno();
	TAKE_FD(fd);
	s->size = (size_t)st.st_size;
	return 0;
}

/* The current file becomes the previous one (replacing it); a new one is started. */
static int events_log_rotate(struct events_log *log, struct events_share *s)
{
	_cleanup_free_ char *path = NULL, *old_path = NULL;
	int r;

	fclose(s->f);
	s->f = NULL;
	r = events_log_path(log, s->name, false, &path);
	if (r == 0)
		r = events_log_path(log, s->name, true, &old_path);
	if (r < 0)
		return r;
	if (rename(path, old_path) < 0)
		return negative_errno();
	return events_log_open_share(log, s);
}

int events_log_append(struct events_log *log, const char *share, struct json_object *record)
{
	const char *line = json_object_to_json_string_ext(record, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = strlen(line) + 1;
	struct events_share *s;
	int r;

	if (!events_share_name_valid(share))
		return -EINVAL;
	if (len > log->file_max)
		return -E2BIG;
	s = events_log_find(log, share);
	if (!s)
		s = events_log_add(log, share, 0);
	s->last_write = ++log->clock;
	if (!s->f) {
		r = events_log_open_share(log, s);
		if (r < 0)
			return r;
	}
	if (s->size + len > log->file_max) {
		r = events_log_rotate(log, s);
		if (r < 0)
			return r;
	}
	if (fprintf(s->f, "%s\n", line) < 0)
		return -EIO;
	s->size += len;
	return 0;
}

int events_log_flush(struct events_log *log)
{
	int r = 0;

	for (size_t i = 0; i < log->n_shares; i++)
		if (log->shares[i].f && fflush(log->shares[i].f) != 0)
			r = negative_errno();
	return r;
}

void events_log_free(struct events_log *log)
{
	if (!log)
		return;
	for (size_t i = 0; i < log->n_shares; i++)
		if (log->shares[i].f)
			fclose(log->shares[i].f);
	free(log->shares);
	free(log->dir);
	free(log);
}

/* ---- the agent's own log --------------------------------------------------------------------- */

struct events_quota_slot {
	char share[EVENTS_SHARE_NAME_MAX]; /* "" when free */
	uint64_t window_start_ns;
	uint32_t lines;
	uint64_t refused;
};

struct events_quota {
	struct events_quota_slot slots[EVENTS_JOURNAL_MAX_SHARES]; /* open addressing */
	size_t used;
	unsigned lines;
	uint64_t window_ns;
	/* No report is due before this (UINT64_MAX: no line refused); may be early, as above. */
	uint64_t next_report_ns;
};

int events_quota_new(unsigned lines, uint64_t window_ns, struct events_quota **ret)
{
	struct events_quota *q;

	if (window_ns == 0)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->lines = lines;
	q->window_ns = window_ns;
	q->next_report_ns = UINT64_MAX;
	*ret = q;
	return 0;
}

void events_quota_free(struct events_quota *q)
{
	free(q);
}

static struct events_quota_slot *events_quota_slot(struct events_quota *q, const char *share)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (const char *p = share; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	for (i = h % EVENTS_JOURNAL_MAX_SHARES;; i = (i + 1) % EVENTS_JOURNAL_MAX_SHARES) {
		struct events_quota_slot *s = &q->slots[i];

		if (!strcmp(s->share, share))
			return s;
		if (s->share[0])
			continue;
		if (q->used >= EVENTS_JOURNAL_MAX_SHARES / 2) {
			/* Apps of earlier policies: forget every share and start again. */
			memset(q->slots, 0, sizeof(q->slots));
			q->used = 0;
			return events_quota_slot(q, share);
		}
		snprintf(s->share, sizeof(s->share), "%s", share);
		q->used++;
		return s;
	}
}

bool events_quota_take(struct events_quota *q, const char *share, uint64_t now_ns)
{
	struct events_quota_slot *s = events_quota_slot(q, share);

	if (now_ns - s->window_start_ns >= q->window_ns && !s->refused) {
		s->window_start_ns = now_ns;
		s->lines = 0;
	}
	if (s->lines < q->lines && !s->refused) {
		s->lines++;
		return true;
	}
	s->refused++;
	q->next_report_ns = min_u64(q->next_report_ns, s->window_start_ns + q->window_ns);
	return false;
}

void events_quota_report(struct events_quota *q, uint64_t now_ns,
			 void (*report)(const char *share, uint64_t refused, void *userdata),
			 void *userdata)
{
	q->next_report_ns = UINT64_MAX;
	for (size_t i = 0; i < EVENTS_JOURNAL_MAX_SHARES; i++) {
		struct events_quota_slot *s = &q->slots[i];

		if (!s->share[0] || !s->refused)
			continue;
		if (now_ns - s->window_start_ns < q->window_ns) {
			q->next_report_ns = min_u64(q->next_report_ns, s->window_start_ns + q->window_ns);
			continue;
		}
		report(s->share, s->refused, userdata);
		s->refused = 0;
		s->window_start_ns = now_ns;
		s->lines = 0;
	}
}

uint64_t events_quota_next_deadline(const struct events_quota *q)
{
	return q->next_report_ns;
}
