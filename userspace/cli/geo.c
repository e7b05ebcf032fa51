// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall geo lookup ADDR [--db FILE]`: the country of an address in a country database
 * (MaxMind DB format), offline, with what identifies the database (type, build date, sha256).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cli.h"
#include "geo.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct geo_db *, geo_free)

static void geo_usage(FILE *f)
{
	fprintf(f, "Usage: carwall geo lookup [--db FILE] [--json] ADDR\n"
		   "  the country of ADDR (IPv4 or IPv6) in the country database FILE (default\n"
		   "  $CARWALL_GEO_DB or " GEO_DEFAULT_DB "), offline\n");
}

/* `carwall geo lookup`. */
int cmd_geo_lookup(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	_cleanup_(geo_freep) struct geo_db *db = NULL;
	const char *path = getenv("CARWALL_GEO_DB");
	char reason[4200], country[3] = "", built[32] = "-";
	const struct geo_info *info;
	uint8_t addr[16];
	unsigned len = 0;
	int family, o, r;
	struct tm tm;
	time_t t;

	optind = 0;
	while ((o = getopt_long(argc, argv, "+hj", opts, NULL)) != -1) {
		switch (o) {
		case 'd':
			path = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		case 'h':
			geo_usage(stdout);
			return EXIT_SUCCESS;
		default:
			geo_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		geo_usage(stderr);
		return EXIT_USAGE;
	}
	if (!path || !*path)
		path = GEO_DEFAULT_DB;
	if (inet_pton(AF_INET, argv[optind], addr) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, argv[optind], addr) == 1)
		family = AF_INET6;
	else
		return cli_fail(c, "'%s' is not an IPv4 or IPv6 address", argv[optind]);
	r = geo_open(path, &db, reason, sizeof(reason));
	if (r < 0)
		return cli_fail(c, "%s", reason);
	info = geo_info(db);
	r = geo_lookup(db, family, addr, country, &len);
	if (r < 0 && r != -ENOENT)
		return cli_fail(c, "country database %s: %s", path, strerror(-r));
	t = (time_t)info->build_epoch;
	if (gmtime_r(&t, &tm))
		strftime(built, sizeof(built), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (c->json) {
		struct json_object *j = json_object_new_object(), *d = json_object_new_object();

		json_object_object_add(j, "address", json_object_new_string(argv[optind]));
		json_object_object_add(j, "country",
				       r == 0 ? json_object_new_string(country) : NULL);
		json_object_object_add(j, "prefixlen",
				       r == 0 ? json_object_new_int((int)len) : NULL);
		json_object_object_add(d, "path", json_object_new_string(info->path));
		json_object_object_add(d, "type", json_object_new_string(info->type));
		json_object_object_add(d, "build_date", json_object_new_string(built));
		json_object_object_add(d, "build_epoch",
				       json_object_new_int64((int64_t)info->build_epoch));
		json_object_object_add(d, "sha256", json_object_new_string(info->sha256));
		json_object_object_add(d, "ip_version", json_object_new_int((int)info->ip_version));
		json_object_object_add(j, "database", d);
		cli_print_json(j);
		json_object_put(j);
	} else {
		if (r == 0)
			printf("%s: %s (network /%u)\n", argv[optind], country, len);
		else
			printf("%s: no country in the database\n", argv[optind]);
		printf("database: %s, type %s, built %s, sha256 %s\n", info->path,
		       info->type[0] ? info->type : "-", built, info->sha256);
	}
	return EXIT_SUCCESS;
}
