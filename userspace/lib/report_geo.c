// SPDX-License-Identifier: GPL-2.0-only
/* Country lookups in a MaxMind DB file (report_geo.h). */
#include "report_geo.h"

#include <errno.h>
#include <maxminddb.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_digest.h"

struct report_geo {
	MMDB_s db;
};

int report_geo_open(const char *path, struct report_geo **ret, struct report_db_info *info)
{
	struct report_geo *g = calloc(1, sizeof(*g));
	uint8_t md[BUNDLE_SHA256_BYTES];
	const MMDB_metadata_s *m;
	int r;

	if (!g)
		return -ENOMEM;
	r = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
	if (r != MMDB_SUCCESS) {
		free(g);
		if (r == MMDB_FILE_OPEN_ERROR)
			return errno > 0 ? -errno : -ENOENT;
		return r == MMDB_OUT_OF_MEMORY_ERROR ? -ENOMEM : -EINVAL;
	}
	m = &g->db.metadata;
	memset(info, 0, sizeof(*info));
	snprintf(info->path, sizeof(info->path), "%s", path);
	snprintf(info->type, sizeof(info->type), "%s", m->database_type ? m->database_type : "");
	for (size_t i = 0; i < m->description.count; i++) {
		const MMDB_description_s *d = m->description.descriptions[i];

		if (d && d->description && (!info->description[0] ||
					    (d->language && !strcmp(d->language, "en"))))
			snprintf(info->description, sizeof(info->description), "%s",
				 d->description);
	}
	/* In seconds; one that would not fit in nanoseconds (past 2262) is taken as unknown. */
	info->build_epoch = m->build_epoch >= INT64_MAX / 1000000000 ? 0 : (int64_t)m->build_epoch;
	/* The bytes looked up are the bytes hashed: the mapping libmaxminddb reads. */
	bundle_sha256(g->db.file_content, (size_t)g->db.file_size, md);
	bundle_hex(md, sizeof(md), info->sha256);
	*ret = g;
	return 0;
}

/* A two-letter code at one of the layouts' paths, upper-cased. */
static bool geo_code(MMDB_entry_s *entry, const char *const *path, char ret[3])
{
	MMDB_entry_data_s d;
	MMDB_entry_s e = *entry;

	if (MMDB_aget_value(&e, &d, path) != MMDB_SUCCESS || !d.has_data ||
	    d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
		return false;
	for (int i = 0; i < 2; i++) {
		char c = d.utf8_string[i] & ~0x20;

		if (c < 'A' || c > 'Z')
			return false;
		ret[i] = c;
	}
	ret[2] = '\0';
	return true;
}

int report_geo_lookup(struct report_geo *g, const char *addr, char ret_country[3])
{
	static const char *const paths[][3] = {
		{ "country", "iso_code", NULL },	    /* MaxMind GeoLite2/GeoIP2 */
		{ "country_code", NULL, NULL },		    /* ip-location-db */
		{ "registered_country", "iso_code", NULL }, /* MaxMind, no physical country */
	};
	MMDB_lookup_result_s res;
	int gai = 0, err = MMDB_SUCCESS;

	ret_country[0] = '\0';
	res = MMDB_lookup_string(&g->db, addr, &gai, &err);
	if (gai)
		return -EINVAL;
	if (err != MMDB_SUCCESS)
		return err == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR ? -ENOENT : -EIO;
	if (!res.found_entry)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (geo_code(&res.entry, paths[i], ret_country))
			return 0;
	return -ENOENT;
}

int report_geo_lookup_fn(const char *addr, char ret_country[3], void *userdata)
{
	int r = report_geo_lookup(userdata, addr, ret_country);

	return r == -ENOENT ? 0 : r;
}

void report_geo_free(struct report_geo *g)
{
	if (!g)
		return;
	MMDB_close(&g->db);
	free(g);
}
