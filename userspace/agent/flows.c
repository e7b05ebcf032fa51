// SPDX-License-Identifier: GPL-2.0-only
/*
 * The flow inventory in the agent: every flow event of a managed app (allowed flows as the
 * socket-address hooks report them, at most once per destination and --flow-report-interval,
 * with the destination's running total: bpf/carwall.h cw_seen; refused and audited ones as they
 * come) becomes a record of the store (lib/inventory.h: aggregation, bounds, ageing, file),
 * named as the policy in force names things: the app's id, and the host name its destination
 * was learned for (cw_learned: only names of the app's own rules are learned; "host_source":
 * "policy"), else the question of the last DNS answer of that app that gave the address and whose
 * TTL has not run out (agent/observed.h, from the kernel's struct cw_dns_report; "observed"), else
 * none: recorded by address alone.
 *
 * What is recorded: flows of an app of the policy (not the guard's), TCP or UDP, from the
 * connect/sendmsg hooks and the egress backstop; a refusal for the socket kind or the address
 * family is in the events log only.
 *
 * Allowed-flow counts: the agent keeps the total of each cw_seen key it last counted
 * (struct flows_seen) and adds the difference to the record, at each event and at each read of
 * the whole map (before every save): exact, but for the flows of a key the LRU map dropped
 * between two reads. Each read deletes the keys with no flow since the last one, which gives an
 * app's share of the map (CW_SEEN_PER_APP) back; the flows of an app that held its whole share
 * are counted without their destination (cw_ratelimit.unlisted: "unlisted_flows"). An agent that starts takes the totals already in the (pinned) map as
 * counted: those since the last save of an agent that crashed are lost.
 *
 * Durability: the store is saved (a new file, fsync, rename, fsync of the folder) at most every
 * --inventory-save-interval seconds when something changed, and when the agent stops; a power
 * cut loses what came since the last save, never what was saved. The event loop formats the
 * store; a thread writes it (an fsync can take seconds on a busy disk, and the loop answers
 * the control socket and drains the ring buffer meanwhile); one save at a time, and the last
 * one, at stop, in the loop. A store file that cannot be
 * read is kept aside as inventory.json.bad and a new one started (logged).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include <bpf/bpf.h>

#include "agent.h"
#include "dns.h"

/*
 * The totals of cw_seen as last counted: open addressing, at most half full, sized to the keys it
 * holds (from FLOWS_SEEN_MIN_SLOTS, doubling) up to a power of two above 2 * CW_MAX_SEEN.
 */
#define FLOWS_SEEN_SLOTS 32768u
#define FLOWS_SEEN_MIN_SLOTS 64u
_Static_assert(FLOWS_SEEN_SLOTS >= 2 * CW_MAX_SEEN, "flows_seen load factor");

struct flows_seen_slot {
	struct cw_seen_key key;
	uint64_t known;
	bool used;
};

struct flows_seen {
	struct flows_seen_slot *slot;
	size_t cap; /* a power of two, FLOWS_SEEN_MIN_SLOTS..FLOWS_SEEN_SLOTS */
	size_t n;
};

static void seen_free(struct flows_seen *t)
{
	if (t)
		free(t->slot);
	free(t);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct flows_seen *, seen_free)

static struct flows_seen *seen_new(void)
{
	_cleanup_(seen_freep) struct flows_seen *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cap = FLOWS_SEEN_MIN_SLOTS;
	t->slot = calloc(t->cap, sizeof(*t->slot));
	if (!t->slot)
		return NULL;
	return TAKE_PTR(t);
}

static uint64_t seen_hash(const struct cw_seen_key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < sizeof(*k); i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The free slot or the slot of key in slot[cap]. */
static struct flows_seen_slot *seen_find(struct flows_seen_slot *slot, size_t cap,
					 const struct cw_seen_key *k)
{
	size_t i = seen_hash(k) & (cap - 1);

	while (slot[i].used && memcmp(&slot[i].key, k, sizeof(*k)))
		i = (i + 1) & (cap - 1);
	return &slot[i];
}

/* Twice the slots; -ENOMEM leaves the table as it was. */
static int seen_grow(struct flows_seen *t)
{
	size_t cap = t->cap * 2;
	struct flows_seen_slot *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i].used)
			*seen_find(slot, cap, &t->slot[i].key) = t->slot[i];
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

/* The slot of key, added (known 0) when absent; NULL when the table is full (or no memory). */
static struct flows_seen_slot *seen_get(struct flows_seen *t, const struct cw_seen_key *k)
{
	struct flows_seen_slot *s = seen_find(t->slot, t->cap, k);

	if (s->used)
		return s;
	if (t->n + 1 > t->cap / 2) {
		if (t->cap >= FLOWS_SEEN_SLOTS || seen_grow(t) < 0)
			return NULL;
		s = seen_find(t->slot, t->cap, k);
	}
	s->used = true;
	s->key = *k;
	s->known = 0;
	t->n++;
	return s;
}

static void flows_sweep(struct agent *a, bool baseline);

int flows_open(struct agent *a)
{
	_cleanup_free_ char *path = NULL, *bad = NULL;
	char reason[512] = "";
	int r;

	/* Read under the largest bound: a file saved with a larger --inventory-max-records. */
	r = inventory_load(a->state_dir, INVENTORY_MAX_RECORDS, &a->inventory, reason,
			   sizeof(reason));
	if (r >= 0) {
		r = inventory_set_max(a->inventory, a->inventory_max);
		if (r < 0)
			return log_error_errno(r, "Cannot set up the flow inventory: %m");
		if (inventory_count(a->inventory))
			log_info("Flow inventory: %zu records from %s",
				 inventory_count(a->inventory), a->state_dir);
	} else if (r == -ENOENT)
		r = inventory_new(a->inventory_max, &a->inventory);
	else if (r < 0) {
		if (asprintf(&path, "%s/%s", a->state_dir, INVENTORY_FILE) < 0 ||
		    asprintf(&bad, "%s/%s.bad", a->state_dir, INVENTORY_FILE) < 0)
			return log_error_errno(-ENOMEM, "Cannot set up the flow inventory: %m");
		log_warning("Cannot read the flow inventory %s (%s): kept as %s, a new one starts",
			    path, reason, bad);
		if (rename(path, bad) < 0)
			log_warning_errno(negative_errno(), "Cannot rename %s: %m", path);
		r = inventory_new(a->inventory_max, &a->inventory);
	}
	if (r < 0)
		return log_error_errno(r, "Cannot set up the flow inventory: %m");
	a->flows_seen = seen_new();
	if (!a->flows_seen)
		return log_error_errno(-ENOMEM, "Cannot set up the flow inventory: %m");
	r = observed_new(OBSERVED_MAX_ENTRIES, OBSERVED_MAX_PER_APP, &a->observed);
	if (r < 0)
		return log_error_errno(r, "Cannot set up the table of observed names: %m");
	flows_sweep(a, true);
	a->inventory_saved_ns = boottime_ns();
	return 0;
}

/* Add what was seen of (event e's destination, app) to the store. */
static void flows_record(struct agent *a, const struct cw_event *e, const char *app, uint64_t count)
{
	struct inventory_record rec = {.rule = INVENTORY_RULE_NONE};
	int r;

	switch (e->verdict) {
	case CW_VERDICT_ALLOW_RULE:
		rec.verdict = INVENTORY_ALLOWED;
		break;
	case CW_VERDICT_DENY_NO_RULE:
		rec.verdict = e->flags & CW_EVENT_F_AUDIT ? INVENTORY_AUDITED : INVENTORY_REFUSED;
		break;
	default:
		return; /* the socket kind or address form: in the events log */
	}
	snprintf(rec.app, sizeof(rec.app), "%s", app);
	if (agent_host_of(a, e, rec.host, sizeof(rec.host)))
		rec.host_source = INVENTORY_HOST_POLICY;
	else if (a->observed &&
		 observed_lookup(a->observed, policy_app_uid(app), e->family, e->addr,
				 e->boot_ns ? e->boot_ns : boottime_ns(), rec.host, sizeof(rec.host)))
		rec.host_source = INVENTORY_HOST_OBSERVED;
	else
		rec.host[0] = '\0';
	rec.family = e->family;
	memcpy(rec.addr, e->addr, e->family == AF_INET ? 4 : 16);
	rec.port = e->port;
	rec.proto = e->proto;
	if (e->rule != CW_RULE_NONE)
		rec.rule = e->rule;
	rec.last_s = time(NULL);
	rec.count = count;
	snprintf(rec.boot_id, sizeof(rec.boot_id), "%s", a->boot_id);
	r = inventory_add(a->inventory, &rec);
	if (r < 0) {
		a->inventory_errors++;
		log_debug("Flow of %s not recorded in the inventory: %s", app, strerror(-r));
		return;
	}
	a->inventory_dirty = true;
}

static void seen_key_of(const struct cw_event *e, const char *app, struct cw_seen_key *k)
{
	memset(k, 0, sizeof(*k));
	k->app_uid = policy_app_uid(app);
	k->port = e->port;
	k->family = e->family;
	k->proto = e->proto;
	memcpy(k->addr, e->addr, e->family == AF_INET ? 4 : 16);
}

void flows_on_event(struct agent *a, const struct cw_event *e, const char *app)
{
	struct cw_seen_key key;
	struct flows_seen_slot *s;
	uint32_t delta;

	if (!a->inventory || !app || (e->proto != IPPROTO_TCP && e->proto != IPPROTO_UDP) ||
	    (e->family != AF_INET && e->family != AF_INET6))
		return;
	if (e->verdict != CW_VERDICT_ALLOW_RULE) {
		flows_record(a, e, app, 1);
		return;
	}
	a->inventory_reports++;
	a->flows_activity = true;
	/* The event holds the key's total (low 32 bits): count what is new. */
	seen_key_of(e, app, &key);
	s = seen_get(a->flows_seen, &key);
	if (!s) {
		flows_record(a, e, app, 1);
		return;
	}
	if (e->count < (uint32_t)s->known) {
		/* The key left the map (LRU) and came back, counting anew. */
		delta = e->count;
		s->known = e->count;
	} else {
		delta = e->count - (uint32_t)s->known;
		s->known += delta;
	}
	/* 0: the last read of the map counted them already; the record is seen now all the same. */
	flows_record(a, e, app, delta);
}

/*
 * A learnable DNS answer an app received (bpf/carwall.h): its addresses named by its question in
 * the app's table of observed names, until now + the TTL clamped as the policy in force clamps
 * learned ones (`dns:` min-ttl, max-ttl, grace). A question that is no host name the policy format
 * takes (a single label, '_' in it) names nothing.
 */
void flows_on_dns_report(struct agent *a, const struct cw_dns_report *r)
{
	char text[1100], canon[POLICY_MAX_HOST_LEN + 1];
	uint32_t min_ttl = POLICY_DNS_MIN_TTL_DEFAULT, max_ttl = POLICY_DNS_MAX_TTL_DEFAULT, grace = 0;
	bool wildcard;

	a->dns_reports++;
	if (!a->observed)
		return;
	if (r->qname_len > sizeof(r->qname) || r->n_addrs > CW_DNS_REPORT_ADDRS ||
	    dns_name_to_text(r->qname, r->qname_len, text, sizeof(text)) < 0 ||
	    policy_host_parse(text, canon, &wildcard, NULL, 0) < 0 || wildcard ||
	    strlen(canon) > OBSERVED_NAME_MAX) {
		a->dns_reports_bad++;
		return;
	}
	if (a->policy) {
		min_ttl = a->policy->dns.min_ttl_s;
		max_ttl = a->policy->dns.max_ttl_s;
		grace = a->policy->dns.grace_s;
	}
	for (size_t i = 0; i < r->n_addrs; i++) {
		const struct cw_dns_report_addr *d = &r->addrs[i];
		uint32_t ttl = d->ttl < min_ttl ? min_ttl : d->ttl > max_ttl ? max_ttl : d->ttl;

		if (d->family != AF_INET && d->family != AF_INET6)
			continue;
		/* -ENOSPC: the app holds none to give up and the table is full (counted there). */
		observed_add(a->observed, r->app_uid, d->family, d->addr, canon,
			     r->boot_ns + ((uint64_t)ttl + grace) * 1000000000ull);
	}
}

/* Record what a key of cw_seen gained (delta flows), named as the generation that judged it. */
static void seen_record(struct agent *a, const struct cw_seen_key *key,
			const struct cw_seen_val *val, uint64_t delta)
{
	struct cw_event e = {};
	const char *app = NULL;

	if (!delta || val->gen >= CW_GENERATIONS)
		return;
	for (size_t i = 0; i < a->gen_n_apps[val->gen] && !app; i++)
		if (a->gen_apps[val->gen][i] &&
		    policy_app_uid(a->gen_apps[val->gen][i]) == key->app_uid) {
			app = a->gen_apps[val->gen][i];
			e.app = (uint32_t)i;
		}
	if (!app)
		return; /* the app left the policy */
	e.gen = (uint8_t)val->gen;
	e.family = key->family;
	e.proto = key->proto;
	e.port = key->port;
	memcpy(e.addr, key->addr, sizeof(e.addr));
	e.rule = val->rule;
	e.verdict = CW_VERDICT_ALLOW_RULE;
	flows_record(a, &e, app, delta);
}

static int learned_app_cmp(const void *x, const void *y)
{
	const struct learned_app *p = x, *q = y;

	return p->uid < q->uid ? -1 : p->uid > q->uid;
}

/* The app slot (active generation) of the app with uid, or CW_APP_SLOTS; apps sorted by uid. */
static uint32_t seen_slot(const struct learned_app *apps, size_t n, uint32_t uid)
{
	const struct learned_app want = { .uid = uid }, *p;

	p = bsearch(&want, apps, n, sizeof(*apps), learned_app_cmp);
	return p && p->app < CW_APP_SLOTS ? p->app : CW_APP_SLOTS;
}

/* A key of cw_seen with no flow since the last read, to delete once the whole map is read. */
struct flows_idle {
	struct cw_seen_key key;
	uint64_t known;
};

/*
 * Read every key of cw_seen, count what its total gained since it was last counted (baseline:
 * take the totals as counted, at start), and keep only the keys the map still holds. A key with
 * no flow since the last read is deleted (its flows are counted: a flow between the read and
 * the delete is counted from the deleted value), which gives its app's share (CW_SEEN_PER_APP)
 * back for a new destination; then each app's count of keys is set to the keys it holds. (Keys
 * the kernel adds while this runs are not in the count: an app may go past its share by those.)
 */
static void flows_sweep(struct agent *a, bool baseline)
{
	_cleanup_(seen_freep) struct flows_seen *next = seen_new();
	_cleanup_free_ struct flows_idle *idle = NULL;
	_cleanup_free_ uint64_t *keys = calloc(CW_APP_SLOTS, sizeof(*keys));
	_cleanup_free_ struct learned_app *apps = NULL;
	int fd = loader_seen_fd(a->loader), keys_fd = loader_seen_keys_fd(a->loader);
	struct cw_seen_key key, k;
	struct cw_seen_val val;
	size_t n = 0, n_idle = 0, idle_cap = 0, n_apps = 0;
	bool again = false; /* a key may gain flows no report tells of: read the map again */
	void *prev = NULL;
	uint32_t slot;

	if (!next || !keys || !a->flows_seen ||
	    loader_active_apps(a->loader, &apps, &n_apps) < 0)
		return;
	qsort(apps, n_apps, sizeof(*apps), learned_app_cmp);
	/* No key is deleted while the map is walked: a walk from a deleted key starts over. */
	while (n++ < CW_MAX_SEEN * 2 && bpf_map_get_next_key(fd, prev, &k) == 0) {
		struct flows_seen_slot *old, *s;
		uint64_t delta;

		key = k;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &val) < 0)
			continue; /* dropped meanwhile */
		old = seen_get(a->flows_seen, &key);
		if (!baseline && old && val.flows == old->known) {
			if (n_idle == idle_cap) {
				/* At most one per key walked: CW_MAX_SEEN * 2. */
				size_t c = idle_cap ? idle_cap * 2 : 64;
				struct flows_idle *p = reallocarray(idle, c, sizeof(*idle));

				if (!p)
					return; /* counted at the next read */
				idle = p;
				idle_cap = c;
			}
			idle[n_idle++] = (struct flows_idle){ .key = key, .known = old->known };
			continue;
		}
		s = seen_get(next, &key);
		if (!s)
			break;
		again = true; /* it had flows not counted before */
		delta = old && val.flows >= old->known ? val.flows - old->known : val.flows;
		s->known = val.flows;
		slot = seen_slot(apps, n_apps, key.app_uid);
		if (slot < CW_APP_SLOTS)
			keys[slot]++;
		if (!baseline)
			seen_record(a, &key, &val, delta);
	}
	for (size_t i = 0; i < n_idle; i++) {
		struct flows_seen_slot *s;

		if (bpf_map_lookup_and_delete_elem(fd, &idle[i].key, &val) == 0) {
			if (val.flows > idle[i].known)
				seen_record(a, &idle[i].key, &val, val.flows - idle[i].known);
			continue;
		}
		if (errno == ENOENT)
			continue; /* dropped meanwhile */
		/* Not deleted (a kernel without lookup-and-delete for LRU maps): kept. */
		again = true; /* its next flows may not be reported: the key stays */
		s = seen_get(next, &idle[i].key);
		if (!s)
			break;
		s->known = idle[i].known;
		slot = seen_slot(apps, n_apps, idle[i].key.app_uid);
		if (slot < CW_APP_SLOTS)
			keys[slot]++;
	}
	for (slot = 0; slot < CW_APP_SLOTS; slot++)
		bpf_map_update_elem(keys_fd, &slot, &keys[slot], BPF_ANY);
	seen_free(a->flows_seen);
	a->flows_seen = TAKE_PTR(next);
	a->flows_swept_ns = boottime_ns();
	/* Keys that moved may move again: the next read finds them idle (and deletes them). */
	a->flows_activity = again;
}

/* A save written by a thread: the text the loop formatted, and the outcome. */
struct flows_writer {
	const char *dir;
	char *data;
	size_t size;
	int result;
	atomic_bool done;
	bool running;
	pthread_t thread;
};

static void *flows_writer_main(void *arg)
{
	struct flows_writer *w = arg;

	w->result = inventory_write(w->dir, w->data, w->size);
	atomic_store(&w->done, true);
	return NULL;
}

/* The save in flight, once it is over (wait: until it is): its outcome counted and logged. */
static void flows_writer_reap(struct agent *a, bool wait)
{
	struct flows_writer *w = a->flows_writer;

	if (!w || !w->running || (!wait && !atomic_load(&w->done)))
		return;
	pthread_join(w->thread, NULL);
	w->running = false;
	free(w->data);
	w->data = NULL;
	if (w->result < 0) {
		a->inventory_errors++;
		a->inventory_dirty = true; /* written again at the next save */
		log_warning_errno(w->result, "Cannot save the flow inventory in %s: %m", w->dir);
	}
}

/* Save in a thread (in the loop if no thread can be had); false when a save is still running. */
static bool flows_writer_start(struct agent *a, char *data, size_t size)
{
	struct flows_writer *w = a->flows_writer;
	sigset_t all, old;
	int r;

	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			goto inline_save;
		a->flows_writer = w;
	}
	if (w->running)
		return false;
	*w = (struct flows_writer){ .dir = a->state_dir, .data = data, .size = size };
	/* The thread takes no signal: the agent's are read from a signalfd. */
	sigfillset(&all);
	if (pthread_sigmask(SIG_SETMASK, &all, &old) == 0) {
		w->running = pthread_create(&w->thread, NULL, flows_writer_main, w) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (w->running)
		return true;
	w->data = NULL;
inline_save:
	r = inventory_write(a->state_dir, data, size);
	free(data);
	if (r < 0) {
		a->inventory_errors++;
		a->inventory_dirty = true;
		log_warning_errno(r, "Cannot save the flow inventory in %s: %m", a->state_dir);
	}
	return true;
}

/* The allowed flows not kept by destination, every app slot together (cw_ratelimit.unlisted). */
static uint64_t flows_unlisted(struct agent *a)
{
	int fd = loader_ratelimit_fd(a->loader);
	struct cw_ratelimit rl;
	uint64_t sum = 0;

	for (uint32_t slot = 0; slot < CW_APP_SLOTS; slot++)
		if (bpf_map_lookup_elem(fd, &slot, &rl) == 0)
			sum += rl.unlisted;
	return sum;
}

static void flows_save(struct agent *a)
{
	char *data = NULL;
	size_t size = 0;
	int r;

	if (!a->inventory)
		return;
	flows_writer_reap(a, false);
	if (a->flows_writer && a->flows_writer->running)
		return; /* the last save is still being written: at a later tick */
	flows_sweep(a, false);
	if (!a->inventory_dirty)
		return;
	r = inventory_format(a->inventory, &data, &size);
	a->inventory_saved_ns = boottime_ns();
	if (r < 0) {
		a->inventory_errors++;
		log_warning_errno(r, "Cannot save the flow inventory in %s: %m", a->state_dir);
		return;
	}
	a->inventory_dirty = false;
	flows_writer_start(a, data, size);
}

/*
 * The evidence timer's work here: the observed names that expired, the save in flight reaped,
 * and a save (with its read of cw_seen) when the inventory changed and the last save is
 * --inventory-save-interval old, or a read of cw_seen alone when that long has passed since the
 * last one and the map may hold flows not counted yet (a->flows_activity: an allowed-flow report
 * since the last read, or keys that read found with new flows or could not delete).
 *
 * The kernel adds or counts a key without a report only within a key's report period, over the
 * app's budget (within the second of a report of the same app) or with the ring buffer full
 * (whose reports are read afterwards): the read that follows such a report, or the one after a
 * read that found the key moving, counts it. A key with no flow since the last read is deleted
 * by it, and its next flow is reported: idle keys need no read.
 */
void flows_tick(struct agent *a)
{
	uint64_t now = boottime_ns(), interval = a->inventory_save_s * 1000000000ull;

	if (a->observed && observed_next_expiry(a->observed) <= now)
		observed_expire(a->observed, now);
	flows_writer_reap(a, false);
	if ((a->inventory_dirty && now - a->inventory_saved_ns >= interval) ||
	    (a->flows_activity && now - a->flows_swept_ns >= interval))
		flows_save(a);
}

/* When flows_tick() has work (boot clock; 0: at once; UINT64_MAX: none), from the above. */
uint64_t flows_next_deadline(const struct agent *a)
{
	uint64_t interval = a->inventory_save_s * 1000000000ull, due = UINT64_MAX;

	if (a->observed)
		due = observed_next_expiry(a->observed);
	if (!a->inventory)
		return due;
	/* The save in flight tells nothing when it ends: it is looked at on each tick. */
	if (a->flows_writer && a->flows_writer->running)
		return 0;
	if (a->inventory_dirty)
		due = min_u64(due, a->inventory_saved_ns + interval);
	if (a->flows_activity)
		due = min_u64(due, a->flows_swept_ns + interval);
	return due;
}

void flows_close(struct agent *a)
{
	/* The last save, whole, before the agent goes: in the loop. */
	flows_writer_reap(a, true);
	if (a->inventory) {
		flows_sweep(a, false);
		if (a->inventory_dirty) {
			int r = inventory_save(a->state_dir, a->inventory);

			if (r < 0) {
				a->inventory_errors++;
				log_warning_errno(r, "Cannot save the flow inventory in %s: %m",
						  a->state_dir);
			}
		}
	}
	free(a->flows_writer);
	a->flows_writer = NULL;
	inventory_free(a->inventory);
	a->inventory = NULL;
	seen_free(a->flows_seen);
	a->flows_seen = NULL;
	observed_free(a->observed);
	a->observed = NULL;
}

/* The inventory's figures, in `status` and `stats` (events.inventory). */
void flows_json(struct agent *a, struct json_object *o)
{
	struct json_object *inv = json_object_new_object();
	struct inventory_stats st = {};

	if (a->inventory)
		inventory_get_stats(a->inventory, &st);
	JSON_ADD(inv, "records",
		 json_object_new_int64(a->inventory ? (int64_t)inventory_count(a->inventory) : 0));
	JSON_ADD(inv, "max_records", json_object_new_int64(a->inventory_max));
	JSON_ADD(inv, "evicted", json_object_new_int64((int64_t)st.evicted));
	JSON_ADD(inv, "errors", json_object_new_int64((int64_t)a->inventory_errors));
	JSON_ADD(inv, "allowed_reports", json_object_new_int64((int64_t)a->inventory_reports));
	JSON_ADD(inv, "unlisted_flows",
		 json_object_new_int64(a->loader ? (int64_t)flows_unlisted(a) : 0));
	JSON_ADD(inv, "report_interval_s", json_object_new_int64(a->flow_report_s));
	JSON_ADD(inv, "save_interval_s", json_object_new_int64(a->inventory_save_s));
	if (a->observed) {
		struct observed_stats os;
		struct json_object *obs = json_object_new_object();

		observed_get_stats(a->observed, &os);
		JSON_ADD(obs, "reports", json_object_new_int64((int64_t)a->dns_reports));
		JSON_ADD(obs, "reports_bad", json_object_new_int64((int64_t)a->dns_reports_bad));
		JSON_ADD(obs, "entries",
			 json_object_new_int64((int64_t)observed_count(a->observed)));
		JSON_ADD(obs, "max_entries", json_object_new_int64(OBSERVED_MAX_ENTRIES));
		JSON_ADD(obs, "max_per_app", json_object_new_int64(OBSERVED_MAX_PER_APP));
		JSON_ADD(obs, "evicted", json_object_new_int64((int64_t)os.evicted));
		JSON_ADD(obs, "refused", json_object_new_int64((int64_t)os.refused));
		JSON_ADD(obs, "expired", json_object_new_int64((int64_t)os.expired));
		JSON_ADD(inv, "observed_names", obs);
	}
	JSON_ADD(o, "inventory", inv);
}
