/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The country of an address, offline, from a country database in MaxMind DB format (read with
 * libmaxminddb): MaxMind's GeoLite2/GeoIP2 Country (country.iso_code), ip-location-db's
 * (country_code) or an OEM's own with either layout. One small file, so that `carwall geo
 * lookup` and the agent's home-region checks can share it.
 */
#pragma once

#include "report.h"

struct report_geo;

/* Opens (maps) the database; fills *info (path, type, description, build date, sha256 of the
 * file's bytes). -ENOENT, -EINVAL (not a MaxMind DB), -ENOMEM. */
int report_geo_open(const char *path, struct report_geo **ret, struct report_db_info *info);
/* The ISO 3166 alpha-2 code of addr (text, IPv4 or IPv6), upper case: 0; -ENOENT when the
 * database has no country for it (ret_country ""), -EINVAL for a bad address, -EIO. */
int report_geo_lookup(struct report_geo *g, const char *addr, char ret_country[3]);
/* report_lookup_fn over report_geo_lookup: a country that is not there is "", not an error. */
int report_geo_lookup_fn(const char *addr, char ret_country[3], void *userdata);
void report_geo_free(struct report_geo *g);
