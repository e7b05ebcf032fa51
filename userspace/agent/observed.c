// SPDX-License-Identifier: GPL-2.0-only
/*
 * Names observed in the apps' DNS answers; bounds and eviction order are in observed.h.
 *
 * One array of entries (a free list through `hnext`), a hash of (app uid, family, address) ->
 * entry chained through `hnext`, and per app a list of its entries from the oldest added or
 * refreshed to the newest, so that eviction is O(1).
 */
#include "observed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

#define NONE UINT32_MAX

struct obs_entry {
	uint32_t app_uid;
	uint32_t app;	       /* index of the app's slot */
	uint32_t hnext;	       /* next in its hash bucket, or in the free list */
	uint32_t older, newer; /* the app's list */
	uint8_t family;
	bool used;
	uint8_t addr[16];
	uint64_t expires_ns;
	char name[OBSERVED_NAME_MAX + 1];
};

struct obs_app {
	uint32_t uid;
	uint32_t n; /* 0: the slot is free */
	uint32_t oldest, newest;
};

struct observed {
	struct obs_entry *e;
	uint32_t *bucket;
	uint32_t n_buckets; /* a power of two */
	uint32_t free_head; /* entries given back, linked by hnext */
	uint32_t top;	    /* e[top..max) never used yet: their pages never touched */
	size_t n, max, max_per_app;
	/* No entry expires before this (UINT64_MAX: none); may be early (an entry refreshed or
	 * evicted since), then observed_expire() finds less and sets it again. */
	uint64_t next_expiry_ns;
	struct obs_app apps[OBSERVED_MAX_APPS];
	struct observed_stats st;
};

int observed_new(size_t max_entries, size_t max_per_app, struct observed **ret)
{
	struct observed *o;

	if (!max_entries || max_entries > OBSERVED_MAX_ENTRIES || !max_per_app ||
	    max_per_app > max_entries)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->max = max_entries;
	o->max_per_app = max_per_app;
	for (o->n_buckets = 1; o->n_buckets < 2 * max_entries; o->n_buckets *= 2)
		;
	o->e = calloc(max_entries, sizeof(*o->e));
	o->bucket = malloc(o->n_buckets * sizeof(*o->bucket));
	if (!o->e || !o->bucket) {
		observed_free(o);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->n_buckets; i++)
		o->bucket[i] = NONE;
	o->free_head = NONE;
	o->next_expiry_ns = UINT64_MAX;
	*ret = o;
	return 0;
}

void observed_free(struct observed *o)
{
	if (!o)
		return;
	free(o->e);
	free(o->bucket);
	free(o);
}

static uint32_t obs_hash(const struct observed *o, uint32_t uid, int family, const uint8_t *addr)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint8_t key[4 + 1 + 16];

	memcpy(key, &uid, 4);
	key[4] = (uint8_t)family;
	memset(key + 5, 0, 16);
	memcpy(key + 5, addr, family == AF_INET ? 4 : 16);
	for (size_t i = 0; i < sizeof(key); i++) {
		h ^= key[i];
		h *= 0x100000001b3ull;
	}
	return (uint32_t)(h ^ (h >> 32)) & (o->n_buckets - 1);
}

static uint32_t obs_find(const struct observed *o, uint32_t uid, int family, const uint8_t *addr)
{
	size_t len = family == AF_INET ? 4 : 16;

	for (uint32_t i = o->bucket[obs_hash(o, uid, family, addr)]; i != NONE; i = o->e[i].hnext)
		if (o->e[i].app_uid == uid && o->e[i].family == family &&
		    !memcmp(o->e[i].addr, addr, len))
			return i;
	return NONE;
}

static struct obs_app *obs_app(struct observed *o, uint32_t uid, bool add)
{
	struct obs_app *free_slot = NULL;

	for (size_t i = 0; i < OBSERVED_MAX_APPS; i++) {
		if (o->apps[i].n && o->apps[i].uid == uid)
			return &o->apps[i];
		if (!o->apps[i].n && !free_slot)
			free_slot = &o->apps[i];
	}
	if (!add || !free_slot)
		return NULL;
	*free_slot = (struct obs_app){.uid = uid, .oldest = NONE, .newest = NONE};
	return free_slot;
}

/* Take entry i out of its app's list. */
static void obs_unlink_app(struct observed *o, uint32_t i)
{
	struct obs_entry *x = &o->e[i];
	struct obs_app *a = &o->apps[x->app];

	if (x->older != NONE)
		o->e[x->older].newer = x->newer;
	else
		a->oldest = x->newer;
	if (x->newer != NONE)
		o->e[x->newer].older = x->older;
	else
		a->newest = x->older;
	x->older = x->newer = NONE;
}

/* Put entry i at the newest end of its app's list. */
static void obs_link_app(struct observed *o, uint32_t i)
{
	struct obs_entry *x = &o->e[i];
	struct obs_app *a = &o->apps[x->app];

	x->older = a->newest;
	x->newer = NONE;
	if (a->newest != NONE)
		o->e[a->newest].newer = i;
	else
		a->oldest = i;
	a->newest = i;
}

static void obs_remove(struct observed *o, uint32_t i)
{
	struct obs_entry *x = &o->e[i];
	uint32_t *p = &o->bucket[obs_hash(o, x->app_uid, x->family, x->addr)];

	while (*p != i)
		p = &o->e[*p].hnext;
	*p = x->hnext;
	obs_unlink_app(o, i);
	o->apps[x->app].n--;
	x->used = false;
	x->hnext = o->free_head;
	o->free_head = i;
	o->n--;
}

int observed_add(struct observed *o, uint32_t app_uid, int family, const uint8_t *addr,
		 const char *name, uint64_t expires_ns)
{
	struct obs_app *a;
	struct obs_entry *x;
	uint32_t i, h;
	size_t len = strnlen(name, OBSERVED_NAME_MAX + 1);

	if ((family != AF_INET && family != AF_INET6) || !len || len > OBSERVED_NAME_MAX)
		return -EINVAL;
	o->next_expiry_ns = min_u64(o->next_expiry_ns, expires_ns);
	i = obs_find(o, app_uid, family, addr);
	if (i != NONE) {
		/* The last answer names the address, until its own TTL runs out. */
		x = &o->e[i];
		memcpy(x->name, name, len + 1);
		x->expires_ns = expires_ns;
		obs_unlink_app(o, i);
		obs_link_app(o, i);
		o->st.refreshed++;
		return 0;
	}
	a = obs_app(o, app_uid, true);
	if (a && (a->n >= o->max_per_app || o->n >= o->max) && a->n) {
		obs_remove(o,
			   a->oldest); /* the app gives up its own oldest entry, never another's */
		o->st.evicted++;
		a = obs_app(o, app_uid, true); /* its slot, again: freed if it held only that one */
	}
	if (!a || o->n >= o->max || (o->free_head == NONE && o->top >= o->max)) {
		o->st.refused++;
		return -ENOSPC;
	}
	if (o->free_head != NONE) {
		i = o->free_head;
		o->free_head = o->e[i].hnext;
	} else {
		i = o->top++;
	}
	x = &o->e[i];
	memset(x, 0, sizeof(*x));
	x->used = true;
	x->app_uid = app_uid;
	x->app = (uint32_t)(a - o->apps);
	x->family = (uint8_t)family;
	memcpy(x->addr, addr, family == AF_INET ? 4 : 16);
	memcpy(x->name, name, len + 1);
	x->expires_ns = expires_ns;
	h = obs_hash(o, app_uid, family, addr);
	x->hnext = o->bucket[h];
	o->bucket[h] = i;
	a->n++;
	obs_link_app(o, i);
	o->n++;
	o->st.added++;
	return 0;
}

bool observed_lookup(const struct observed *o, uint32_t app_uid, int family, const uint8_t *addr,
		     uint64_t now_ns, char *buf, size_t size)
{
	uint32_t i;

	if ((family != AF_INET && family != AF_INET6) || !size)
		return false;
	i = obs_find(o, app_uid, family, addr);
	if (i == NONE || o->e[i].expires_ns <= now_ns)
		return false;
	if ((size_t)snprintf(buf, size, "%s", o->e[i].name) >= size) {
		buf[0] = '\0';
		return false;
	}
	return true;
}

size_t observed_expire(struct observed *o, uint64_t now_ns)
{
	size_t n = 0;

	o->next_expiry_ns = UINT64_MAX;
	for (uint32_t i = 0; i < o->top; i++) {
		if (!o->e[i].used)
			continue;
		if (o->e[i].expires_ns <= now_ns) {
			obs_remove(o, i);
			n++;
		} else {
			o->next_expiry_ns = min_u64(o->next_expiry_ns, o->e[i].expires_ns);
		}
	}
	o->st.expired += n;
	return n;
}

uint64_t observed_next_expiry(const struct observed *o)
{
	return o->n ? o->next_expiry_ns : UINT64_MAX;
}

size_t observed_count(const struct observed *o)
{
	return o->n;
}

size_t observed_app_count(const struct observed *o, uint32_t app_uid)
{
	for (size_t i = 0; i < OBSERVED_MAX_APPS; i++)
		if (o->apps[i].n && o->apps[i].uid == app_uid)
			return o->apps[i].n;
	return 0;
}

void observed_get_stats(const struct observed *o, struct observed_stats *ret)
{
	*ret = o->st;
}
