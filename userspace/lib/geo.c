// SPDX-License-Identifier: GPL-2.0-only
/* The country database (MaxMind DB format), read with libmaxminddb. See geo.h. */
#include "geo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bundle_digest.h"
#include "fileio.h"
#include "util.h"

struct geo_db {
	MMDB_s mmdb;
	bool open;
	struct geo_info info;
};

void geo_free(struct geo_db *db)
{
	if (!db)
		return;
	if (db->open)
		MMDB_close(&db->mmdb);
	free(db);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct geo_db *, geo_free)

int geo_file_sha256(const char *path, char ret[65])
{
	_cleanup_free_ char *data = NULL;
	uint8_t sha[BUNDLE_SHA256_BYTES];
	size_t size;
	int r;

	r = read_file_limited(path, GEO_MAX_DB_BYTES, &data, &size);
	if (r < 0)
		return r;
	bundle_sha256(data, size, sha);
	bundle_hex(sha, sizeof(sha), ret);
	return 0;
}

int geo_open(const char *path, struct geo_db **ret, char *reason, size_t reason_size)
{
	_cleanup_(geo_freep) struct geo_db *db = NULL;
	int r;

	db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	/* The bytes hashed are read once, then the file is opened by libmaxminddb. */
	r = geo_file_sha256(path, db->info.sha256);
	if (r < 0) {
		snprintf(reason, reason_size, "country database %s: %s%s", path, strerror(-r),
			 r == -EFBIG ? " (GEO_MAX_DB_BYTES)" : "");
		return r;
	}
	r = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
	if (r != MMDB_SUCCESS) {
		snprintf(reason, reason_size, "country database %s: %s", path, MMDB_strerror(r));
		return r == MMDB_FILE_OPEN_ERROR ? -ENOENT : -EINVAL;
	}
	db->open = true;
	snprintf(db->info.path, sizeof(db->info.path), "%s", path);
	snprintf(db->info.type, sizeof(db->info.type), "%s",
		 db->mmdb.metadata.database_type ? db->mmdb.metadata.database_type : "");
	for (size_t i = 0; i < db->mmdb.metadata.description.count; i++) {
		const MMDB_description_s *d = db->mmdb.metadata.description.descriptions[i];

		if (d && d->description &&
		    (!db->info.description[0] || (d->language && !strcmp(d->language, "en"))))
			snprintf(db->info.description, sizeof(db->info.description), "%s",
				 d->description);
	}
	db->info.build_epoch = db->mmdb.metadata.build_epoch;
	db->info.ip_version = db->mmdb.metadata.ip_version;
	db->info.node_count = db->mmdb.metadata.node_count;
	if (db->info.ip_version != 4 && db->info.ip_version != 6) {
		snprintf(reason, reason_size, "country database %s: unknown ip_version %u", path,
			 db->info.ip_version);
		return -EINVAL;
	}
	*ret = TAKE_PTR(db);
	return 0;
}

const struct geo_info *geo_info(const struct geo_db *db)
{
	return &db->info;
}

/*
 * The country of a data record: country.iso_code (MaxMind, DB-IP), else country_code
 * (ip-location-db). 0 with ret (lower case), -ENOENT when it has none.
 */
static int entry_country(MMDB_entry_s *entry, char ret[3])
{
	MMDB_entry_data_s d;

	if (MMDB_get_value(entry, &d, "country", "iso_code", NULL) != MMDB_SUCCESS || !d.has_data ||
	    d.type != MMDB_DATA_TYPE_UTF8_STRING) {
		if (MMDB_get_value(entry, &d, "country_code", NULL) != MMDB_SUCCESS ||
		    !d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING)
			return -ENOENT;
	}
	if (d.data_size != 2)
		return -ENOENT;
	ret[0] = (char)(d.utf8_string[0] | 0x20);
	ret[1] = (char)(d.utf8_string[1] | 0x20);
	ret[2] = '\0';
	return 0;
}

int geo_lookup(const struct geo_db *db, int family, const uint8_t *addr, char ret_country[3],
	       unsigned *ret_prefixlen)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	struct sockaddr_in sin = {.sin_family = AF_INET};
	MMDB_lookup_result_s res;
	int err = MMDB_SUCCESS;

	if (family == AF_INET) {
		memcpy(&sin.sin_addr, addr, 4);
		res = MMDB_lookup_sockaddr(&db->mmdb, (const struct sockaddr *)&sin, &err);
	} else if (family == AF_INET6) {
		if (db->info.ip_version == 4)
			return -ENOENT; /* an IPv4 database knows no IPv6 address */
		memcpy(&sin6.sin6_addr, addr, 16);
		res = MMDB_lookup_sockaddr(&db->mmdb, (const struct sockaddr *)&sin6, &err);
	} else {
		return -EAFNOSUPPORT;
	}
	if (err != MMDB_SUCCESS)
		return -EIO;
	if (!res.found_entry || entry_country(&res.entry, ret_country) < 0)
		return -ENOENT;
	if (ret_prefixlen) {
		unsigned len = res.netmask;

		/* libmaxminddb gives an IPv4 address's netmask in the IPv6 tree's bits. */
		if (family == AF_INET && db->info.ip_version == 6 && len >= 96)
			len -= 96;
		*ret_prefixlen = len;
	}
	return 0;
}

/* ---- walking the search tree ---------------------------------------------------------------- */

struct geo_walk {
	const struct geo_db *db;
	const char (*countries)[3];
	size_t n_countries;
	struct policy_maps *m;
	size_t cap4, cap6;
	uint32_t v4_start; /* the node of ::/96 in an IPv6 database; UINT32_MAX: none */
	uint8_t path[16];  /* the bits of the current node's prefix */
	/* The last data record looked at, and whether its country is a home one. */
	uint32_t last_offset;
	bool last_valid, last_home;
	char last_country[3];
	char *reason;
	size_t reason_size;
};

static bool path_zero(const uint8_t *path, unsigned bits)
{
	for (unsigned i = 0; i < bits; i++)
		if (path[i / 8] & (0x80 >> (i % 8)))
			return false;
	return true;
}

static int emit4(struct geo_walk *w, const uint8_t *addr, unsigned len, const char country[3])
{
	struct policy_maps *m = w->m;
	struct policy_home4_entry *e;

	if (m->n_home4 >= POLICY_MAPS_MAX_HOME4) {
		snprintf(w->reason, w->reason_size,
			 "the home region has more than %u IPv4 prefixes in %s "
			 "(POLICY_MAPS_MAX_HOME4)",
			 (unsigned)POLICY_MAPS_MAX_HOME4, w->db->info.path);
		return -E2BIG;
	}
	if (m->n_home4 == w->cap4) {
		size_t cap = w->cap4 ? 2 * w->cap4 : 1024;
		void *v = reallocarray(m->home4, cap, sizeof(*m->home4));

		if (!v)
			return -ENOMEM;
		m->home4 = v;
		w->cap4 = cap;
	}
	e = &m->home4[m->n_home4++];
	memset(e, 0, sizeof(*e));
	e->key.prefixlen = 32 + len;
	e->key.gen = m->gen;
	memcpy(e->key.addr, addr, 4);
	memcpy(e->val.country, country, 2);
	return 0;
}

static int emit6(struct geo_walk *w, const uint8_t *addr, unsigned len, const char country[3])
{
	struct policy_maps *m = w->m;
	struct policy_home6_entry *e;

	if (m->n_home6 >= POLICY_MAPS_MAX_HOME6) {
		snprintf(w->reason, w->reason_size,
			 "the home region has more than %u IPv6 prefixes in %s "
			 "(POLICY_MAPS_MAX_HOME6)",
			 (unsigned)POLICY_MAPS_MAX_HOME6, w->db->info.path);
		return -E2BIG;
	}
	if (m->n_home6 == w->cap6) {
		size_t cap = w->cap6 ? 2 * w->cap6 : 1024;
		void *v = reallocarray(m->home6, cap, sizeof(*m->home6));

		if (!v)
			return -ENOMEM;
		m->home6 = v;
		w->cap6 = cap;
	}
	e = &m->home6[m->n_home6++];
	memset(e, 0, sizeof(*e));
	e->key.prefixlen = 32 + len;
	e->key.gen = m->gen;
	memcpy(e->key.addr, addr, 16);
	memcpy(e->val.country, country, 2);
	return 0;
}

/* A data record for the prefix path/len: a prefix of the home region when its country is. */
static int walk_data(struct geo_walk *w, MMDB_entry_s *entry, unsigned len)
{
	int r;

	if (!w->last_valid || entry->offset != w->last_offset) {
		w->last_offset = entry->offset;
		w->last_valid = true;
		w->last_home = false;
		if (entry_country(entry, w->last_country) == 0)
			for (size_t i = 0; i < w->n_countries && !w->last_home; i++)
				w->last_home = !strcmp(w->countries[i], w->last_country);
	}
	if (!w->last_home)
		return 0;
	if (w->db->info.ip_version == 4)
		return emit4(w, w->path, len, w->last_country);
	/* In an IPv6 database, IPv4 lives at ::/96: a prefix there (or one above it) is IPv4. */
	if (len >= 96 && path_zero(w->path, 96))
		return emit4(w, w->path + 12, len - 96, w->last_country);
	if (path_zero(w->path, len)) {
		uint8_t zero[4] = {};

		r = emit4(w, zero, 0, w->last_country);
		if (r < 0)
			return r;
	}
	return emit6(w, w->path, len, w->last_country);
}

/* The subtree of `node` at depth `depth` (its prefix: the first `depth` bits of w->path). */
static int walk_node(struct geo_walk *w, uint32_t node, unsigned depth)
{
	unsigned max_depth = w->db->info.ip_version == 4 ? 32 : 128;
	MMDB_search_node_s n;
	int r;

	if (depth >= max_depth)
		return -EIO; /* a search node below the last bit: corrupt */
	if (MMDB_read_node(&w->db->mmdb, node, &n) != MMDB_SUCCESS)
		return -EIO;
	for (unsigned bit = 0; bit < 2; bit++) {
		uint8_t type = bit ? n.right_record_type : n.left_record_type;
		uint64_t rec = bit ? n.right_record : n.left_record;
		MMDB_entry_s *entry = bit ? &n.right_record_entry : &n.left_record_entry;
		uint8_t mask = (uint8_t)(0x80 >> (depth % 8));

		if (bit)
			w->path[depth / 8] |= mask;
		else
			w->path[depth / 8] &= (uint8_t)~mask;
		switch (type) {
		case MMDB_RECORD_TYPE_SEARCH_NODE:
			/* The aliases of the IPv4 subtree (::ffff:0:0/96, 2002::/16...) point to
			 * it: it is walked once, at ::/96. */
			if (rec == w->v4_start && !(depth + 1 == 96 && path_zero(w->path, 96)))
				break;
			r = walk_node(w, (uint32_t)rec, depth + 1);
			if (r < 0)
				return r;
			break;
		case MMDB_RECORD_TYPE_DATA:
			r = walk_data(w, entry, depth + 1);
			if (r < 0)
				return r;
			break;
		case MMDB_RECORD_TYPE_EMPTY:
			break;
		default:
			return -EIO;
		}
	}
	w->path[depth / 8] &= (uint8_t) ~(0x80 >> (depth % 8));
	return 0;
}

int geo_home_maps(const struct geo_db *db, const char (*countries)[3], size_t n_countries,
		  struct policy_maps *m, char *reason, size_t reason_size)
{
	struct geo_walk w = {
	    .db = db,
	    .countries = countries,
	    .n_countries = n_countries,
	    .m = m,
	    .v4_start = UINT32_MAX,
	    .reason = reason,
	    .reason_size = reason_size,
	};
	MMDB_search_node_s n;
	uint32_t node = 0;
	int r;

	free(m->home4);
	free(m->home6);
	m->home4 = NULL;
	m->home6 = NULL;
	m->n_home4 = m->n_home6 = 0;
	if (db->info.ip_version == 6) {
		/* ::/96: 96 left turns from the root. */
		for (unsigned i = 0; i < 96; i++) {
			if (MMDB_read_node(&db->mmdb, node, &n) != MMDB_SUCCESS)
				break;
			if (n.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE)
				break;
			node = (uint32_t)n.left_record;
			if (i == 95)
				w.v4_start = node;
		}
	}
	if (db->info.node_count == 0)
		return 0;
	r = walk_node(&w, 0, 0);
	if (r == 0)
		policy_maps_sort_home(m);
	if (r == -EIO)
		snprintf(reason, reason_size, "country database %s: its search tree is corrupt",
			 db->info.path);
	else if (r == -ENOMEM)
		snprintf(reason, reason_size, "out of memory");
	return r;
}

int geo_home_countries(const struct policy *p, char (*ret)[3], size_t max, size_t *ret_n)
{
	if (!p->residency.home.name[0])
		return -ENOENT;
	return policy_region_countries(p, p->residency.home.name, ret, max, ret_n);
}

int geo_apply_policy(const struct policy *p, const char *db_path, struct policy_maps *m,
		     struct geo_info *ret_info, char *reason, size_t reason_size)
{
	_cleanup_(geo_freep) struct geo_db *db = NULL;
	char countries[POLICY_MAX_GROUP_MEMBERS][3];
	size_t n;
	int r;

	m->home_only = false;
	if (!p->residency.home_only)
		return 0;
	if (!db_path) {
		snprintf(reason, reason_size,
			 "the policy asks for 'residency-enforce: home-only' but no country "
			 "database was given (--geo-db FILE): the policy is not loaded");
		return -ENOENT;
	}
	r = geo_home_countries(p, countries, ARRAY_SIZE(countries), &n);
	if (r < 0) {
		snprintf(reason, reason_size, "the home region '%s': %s", p->residency.home.name,
			 strerror(-r));
		return r;
	}
	r = geo_open(db_path, &db, reason, reason_size);
	if (r < 0)
		return r;
	r = geo_home_maps(db, (const char(*)[3])countries, n, m, reason, reason_size);
	if (r < 0)
		return r;
	if (m->n_home4 + m->n_home6 == 0) {
		snprintf(reason, reason_size,
			 "country database %s has no prefix of the home region '%s': every flow "
			 "would be refused; the policy is not loaded",
			 db_path, p->residency.home.name);
		return -ENOENT;
	}
	m->home_only = true;
	if (ret_info)
		*ret_info = db->info;
	return 0;
}
