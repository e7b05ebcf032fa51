/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The flow inventory: what each managed app talked to, aggregated, bounded and durable. The
 * agent fills it from the kernel's events (agent/flows.c); `carwall flows`, `carwall policy
 * suggest` and `carwall policy replay` read its file.
 *
 * A record per (app, host name when known, address, port, protocol, verdict, rule) with the first
 * and last time it was seen (wall clock, seconds), its connection count and the number of boots
 * it was seen in (the boot id it was last seen in is kept to tell a new boot).
 *
 * Bounds: at most max_records records (INVENTORY_DEFAULT_MAX_RECORDS unless the agent is told
 * otherwise, at most INVENTORY_MAX_RECORDS); a record's JSON is at most INVENTORY_RECORD_MAX_BYTES,
 * so the file is at most inventory_max_file_bytes(max_records).
 *
 * Ageing: when a new key finds the inventory full, an eighth of it (at least one record) is
 * evicted at once, in this order: refused and audited flows before allowed ones, flows seen once
 * before repeated ones, flows of fewer boots before flows of more, the least recently seen
 * first. An app's most recently seen record is evicted only when nothing else is left (never
 * while another app has more than one), so every app that talked keeps a trace.
 *
 * File (INVENTORY_FILE in the state folder, 0600), JSON parsed with json-c:
 *
 *   { "format": "carwall-inventory", "version": 1, "records": [
 *     { "app": "media-player", "host": "api.music.example", "address": "198.51.100.20",
 *       "port": 443, "proto": "tcp", "verdict": "allowed", "rule": 2, "first": 1764500000,
 *       "last": 1764503600, "count": 12, "boots": 2, "boot_id": "<uuid>" }, ... ] }
 *
 * "host" is absent when no name is known for the address, "rule" when no rule allowed (a refusal,
 * or the app's trusted resolver). "host_source" says where the host came from: "policy" (a name
 * of the app's policy the kernel learned the address for; also when absent, as files written
 * before it had the member) or "observed" (the question of a DNS answer the app received, for an
 * address no name of its policy covers: agent/observed.h); it is not part of the key: the last
 * flow's source is kept. Durable: inventory_save() writes a new file, fsync()s it,
 * renames it over the old one and fsync()s the folder: a crash at any point leaves the old file
 * or the new one, whole.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fileio.h"
#include "policy.h"

#define INVENTORY_FILE		      "inventory.json"
#define INVENTORY_TMP_FILE	      "inventory.json.tmp"
#define INVENTORY_FORMAT	      "carwall-inventory"
#define INVENTORY_VERSION	      1
#define INVENTORY_DEFAULT_MAX_RECORDS 4096u
#define INVENTORY_MIN_RECORDS	      16u
#define INVENTORY_MAX_RECORDS	      65536u
/* One record's JSON, host and app at their longest, every number at its widest. */
#define INVENTORY_RECORD_MAX_BYTES 768u
#define INVENTORY_BOOT_ID_LEN	   36 /* a UUID as /proc/sys/kernel/random/boot_id gives it */

static inline size_t inventory_max_file_bytes(size_t max_records)
{
	return 256 + max_records * INVENTORY_RECORD_MAX_BYTES;
}

enum inventory_verdict {
	INVENTORY_ALLOWED = 0,
	INVENTORY_REFUSED,
	INVENTORY_AUDITED, /* refused by the policy, let out in audit mode */
};

#define INVENTORY_RULE_NONE (-1)

/* Where a record's host came from ("host_source"). */
enum inventory_host_source {
	INVENTORY_HOST_NONE = 0, /* no host */
	INVENTORY_HOST_POLICY,	 /* a name of the app's policy, learned by the kernel */
	INVENTORY_HOST_OBSERVED, /* the question of an answer the app received (evidence only) */
};

struct inventory_record {
	/* The key. */
	char app[POLICY_MAX_ID_LEN + 1];
	char host[POLICY_MAX_HOST_LEN + 1]; /* canonical name; "" when none is known */
	int family;			    /* AF_INET or AF_INET6 */
	uint8_t addr[16];		    /* network byte order; IPv4 in addr[0..3], rest 0 */
	uint16_t port;
	uint8_t proto;	 /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t verdict; /* enum inventory_verdict */
	int64_t rule;	 /* global rule index in the policy in force then; INVENTORY_RULE_NONE */
	/* What is known of it. */
	uint8_t host_source; /* enum inventory_host_source: NONE when host is "" (a host given
				to inventory_add() with NONE is the policy's) */
	int64_t first_s; /* wall clock, seconds since the epoch */
	int64_t last_s;
	uint64_t count; /* connections (TCP) or datagrams/sockets (UDP): see inventory_add() */
	uint32_t boots;
	char boot_id[INVENTORY_BOOT_ID_LEN + 1]; /* of the last boot it was seen in */
};

struct inventory_stats {
	uint64_t evicted; /* records aged out for new ones since inventory_new() */
};

struct inventory;

int inventory_new(size_t max_records, struct inventory **ret);
void inventory_free(struct inventory *inv);
size_t inventory_count(const struct inventory *inv);
const struct inventory_record *inventory_get(const struct inventory *inv, size_t i);
void inventory_get_stats(const struct inventory *inv, struct inventory_stats *ret);

/*
 * Add what was seen: `seen` carries the key, the time (last_s; first_s is ignored), the flows it
 * stands for (count, 0: seen, nothing new to count) and the boot id. Merged into the key's
 * record (count added, last seen moved on, boots counted when the boot id differs), or a new
 * record (ageing the inventory when full; none for a count of 0). -EINVAL for a record the file
 * could not hold (bad app id, host, family, protocol).
 */
int inventory_add(struct inventory *inv, const struct inventory_record *seen);

/*
 * Set the bound to max_records (INVENTORY_MIN_RECORDS..INVENTORY_MAX_RECORDS), ageing records out
 * (in the order above) until the inventory is within it: a file saved under a larger bound.
 */
int inventory_set_max(struct inventory *inv, size_t max_records);

/* Whether the record's key is valid (what the parser and inventory_add() check). */
bool inventory_record_valid(const struct inventory_record *r);

const char *inventory_verdict_name(uint8_t verdict);
const char *inventory_host_source_name(uint8_t source); /* "policy", "observed", "" for none */
int inventory_verdict_parse(const char *s, uint8_t *ret);

/* A record as JSON (the file's form), and back (-EINVAL with a reason for a bad one). */
struct json_object *inventory_record_to_json(const struct inventory_record *r);
int inventory_record_from_json(struct json_object *o, struct inventory_record *ret, char *reason,
			       size_t reason_size);

/* The whole file's text, and back: -EINVAL (with a reason) when it is not a valid inventory,
 * -E2BIG when it holds more than max_records records. */
int inventory_format(const struct inventory *inv, char **ret_data, size_t *ret_size);
int inventory_parse(const char *data, size_t size, size_t max_records, struct inventory **ret,
		    char *reason, size_t reason_size);

/* The file in folder dir: load it (-ENOENT: none yet), save it durably (see above). */
int inventory_load_file(const char *path, size_t max_records, struct inventory **ret, char *reason,
			size_t reason_size);
int inventory_load(const char *dir, size_t max_records, struct inventory **ret, char *reason,
		   size_t reason_size);
int inventory_save(const char *dir, const struct inventory *inv);
/* Save the text inventory_format() made (the agent formats in its loop, writes in a thread). */
int inventory_write(const char *dir, const char *data, size_t size);

/* Fault injection, for tests only: see file_replace_durably() (fileio.h). */
void inventory_set_fault_hook(void (*hook)(enum fileio_step step));
