/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The country database: a MaxMind DB file (GeoLite2/GeoIP2 Country, DB-IP, ip-location-db's
 * country databases, an OEM's own) read offline with libmaxminddb. Looks an address up, and
 * lists the prefixes of a set of countries (the home region, for the kernel's cw_home4/cw_home6
 * maps) by walking the database's search tree.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "policy_compile.h"

#define GEO_MAX_DB_BYTES (512u << 20) /* a database file larger than this is refused */
/* Where `carwall geo` looks without --db (and without $CARWALL_GEO_DB). */
#define GEO_DEFAULT_DB "/etc/carwall/country.mmdb"

struct geo_db;

/* What identifies a database in evidence. */
struct geo_info {
	char path[4096];
	char type[128];	      /* the metadata's database_type, e.g. "GeoLite2-Country" */
	char description[256]; /* the metadata's description, in English when it has one */
	uint64_t build_epoch; /* the metadata's build_epoch: seconds since the epoch (UTC) */
	char sha256[65];      /* of the file's bytes */
	unsigned ip_version;  /* 4 or 6 */
	uint32_t node_count;
};

/*
 * Open a database. Returns 0 and *ret, or a negative errno with a one-line reason (the file is
 * missing, too large, or no MaxMind DB).
 */
int geo_open(const char *path, struct geo_db **ret, char *reason, size_t reason_size);
void geo_free(struct geo_db *db);

/* The sha256 (hex) of a database file's bytes, as geo_info().sha256. 0 or a negative errno. */
int geo_file_sha256(const char *path, char ret[65]);
const struct geo_info *geo_info(const struct geo_db *db);

/*
 * The country of an address (4 or 16 bytes, network order): its lower-case ISO code in
 * ret_country and the length of the database's network that holds it (IPv4 lengths for an
 * IPv4 address). The record's country is read from country.iso_code (MaxMind, DB-IP) or
 * country_code (ip-location-db). Returns 0, -ENOENT when the database has no country for the
 * address, -EIO when it is corrupt.
 */
int geo_lookup(const struct geo_db *db, int family, const uint8_t *addr, char ret_country[3],
	       unsigned *ret_prefixlen);

/*
 * The prefixes of the countries[] (lower-case codes), found by walking the whole search tree
 * (MMDB_read_node()): written into m as the home-region entries of m's generation
 * (m->home4/home6, replacing what was there). An address of an IPv6 database's IPv4 subtree
 * (::/96) is an IPv4 prefix; the aliases of that subtree (::ffff:0:0/96, 2002::/16, Teredo)
 * are not walked twice. Returns 0, or -E2BIG when the prefixes of one family do not fit
 * (POLICY_MAPS_MAX_HOME4/6), -EIO when the tree is corrupt, -ENOMEM; with a reason.
 */
int geo_home_maps(const struct geo_db *db, const char (*countries)[3], size_t n_countries,
		  struct policy_maps *m, char *reason, size_t reason_size);

/*
 * What an agent or `explain` does for a policy with `residency-enforce: home-only`: open the
 * database at db_path and fill m's home-region entries with the prefixes of p's home region,
 * and set m->home_only. A policy without it: nothing (m->home_only false, no entries). Fails
 * closed: with home-only asked and no database (db_path NULL) or an unreadable one, returns
 * -ENOENT or the error, with a reason; the policy must not be loaded then. *ret_info (may be
 * NULL) gets the database's identity when one was read.
 */
int geo_apply_policy(const struct policy *p, const char *db_path, struct policy_maps *m,
		     struct geo_info *ret_info, char *reason, size_t reason_size);

/* The countries of the home region, into ret (at most POLICY_MAX_GROUP_MEMBERS). */
int geo_home_countries(const struct policy *p, char (*ret)[3], size_t max, size_t *ret_n);
