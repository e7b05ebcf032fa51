/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Names observed in the apps' DNS answers (bpf/carwall.h, struct cw_dns_report): per app,
 * address -> the question name of the app's last answer that gave it, until that answer's TTL
 * runs out. The flow inventory (agent/flows.c) names with it the flows of an app whose
 * destination no name of the app's policy covers. Evidence only: nothing here reaches a verdict.
 *
 * Only the app's own answers name its flows: the table is keyed by the app's uid (the kernel's
 * cw_app_val.uid of the socket that received the answer), never shared between apps.
 *
 * Bounds: at most max_per_app entries per app and max_entries in all. A new address of an app
 * that holds max_per_app entries takes the place of that app's oldest entry (the one added or
 * refreshed longest ago); a new address when the table holds max_entries takes the place of the
 * app's oldest entry if it has one, else it is not kept (counted as refused). So one app never
 * evicts another's entries. Expired entries are removed by observed_expire() and never named.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OBSERVED_MAX_ENTRIES 16384u /* every app together */
#define OBSERVED_MAX_PER_APP 256u
#define OBSERVED_MAX_APPS    1024u /* apps with entries at once (CW_MAX_APPS) */
#define OBSERVED_NAME_MAX    253   /* a name's text, no final dot (RFC 1035) */

struct observed_stats {
	uint64_t added;	    /* new (app, address) entries */
	uint64_t refreshed; /* an entry given a new name or expiry by a later answer */
	uint64_t evicted;   /* an app's oldest entry, for a new one of the same app */
	uint64_t refused;   /* not kept: the table full and the app holding none to give up */
	uint64_t expired;   /* removed by observed_expire() */
};

struct observed;

int observed_new(size_t max_entries, size_t max_per_app, struct observed **ret);
void observed_free(struct observed *o);

/*
 * The answer of app `app_uid` naming `addr` (family AF_INET: addr[0..3]) with `name` (canonical
 * text, at most OBSERVED_NAME_MAX bytes), valid until expires_ns (boot clock). Returns 0 (kept),
 * -ENOSPC (not kept: see above), -EINVAL (a bad name or family).
 */
int observed_add(struct observed *o, uint32_t app_uid, int family, const uint8_t *addr,
		 const char *name, uint64_t expires_ns);

/* The name app `app_uid` observed for addr, still valid at now_ns; false when there is none. */
bool observed_lookup(const struct observed *o, uint32_t app_uid, int family, const uint8_t *addr,
		     uint64_t now_ns, char *buf, size_t size);

/* Remove the entries expired at now_ns; returns how many. */
size_t observed_expire(struct observed *o, uint64_t now_ns);
/* When observed_expire() has an entry to remove (boot clock, never later than the first one to
 * expire; UINT64_MAX: the table is empty). O(1). */
uint64_t observed_next_expiry(const struct observed *o);

size_t observed_count(const struct observed *o);
size_t observed_app_count(const struct observed *o, uint32_t app_uid);
void observed_get_stats(const struct observed *o, struct observed_stats *ret);
