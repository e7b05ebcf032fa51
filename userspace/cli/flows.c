// SPDX-License-Identifier: GPL-2.0-only
/*
 * `carwall flows [--app ID] [--since DURATION] [--verdict V] [--state-dir DIR | --inventory FILE]`:
 * the flow inventory the agent keeps (lib/inventory.h), grouped app -> registrable domain ->
 * host -> address:port. Read from the store file itself, as `carwall events` reads its logs: it
 * needs no running agent, works on a copy taken from a unit, and is as fresh as the agent's last
 * save (--inventory-save-interval). The state folder is root's (0700), so this is root's too.
 *
 * Also the inventory loading and filtering `carwall policy suggest` and `replay` share (cli.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "inventory.h"
#include "util.h"

#define FLOWS_DEFAULT_STATE_DIR "/var/lib/carwall"

int flows_duration_parse(const char *s, int64_t *ret)
{
	char *end;
	unsigned long long v;
	int64_t unit;

	if (!s[0] || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		unit = 1;
	else if (!strcmp(end, "m"))
		unit = 60;
	else if (!strcmp(end, "h"))
		unit = 3600;
	else if (!strcmp(end, "d"))
		unit = 86400;
	else
		return -EINVAL;
	if (v > (unsigned long long)(INT64_MAX / 86400))
		return -EINVAL;
	*ret = (int64_t)v * unit;
	return 0;
}

int flows_source_load(const struct flows_source *src, struct inventory **ret, char *reason,
		      size_t reason_size)
{
	_cleanup_free_ char *path = NULL;
	const char *dir = src->state_dir;

	if (src->inventory_file)
		return inventory_load_file(src->inventory_file, INVENTORY_MAX_RECORDS, ret, reason,
					   reason_size);
	if (!dir)
		dir = getenv("CARWALL_STATE_DIR");
	if (!dir || !dir[0])
		dir = FLOWS_DEFAULT_STATE_DIR;
	if (asprintf(&path, "%s/%s", dir, INVENTORY_FILE) < 0)
		return -ENOMEM;
	return inventory_load_file(path, INVENTORY_MAX_RECORDS, ret, reason, reason_size);
}

bool flows_filter_match(const struct flows_filter *f, const struct inventory_record *r)
{
	if (f->app && strcmp(f->app, r->app))
		return false;
	if (f->has_since && r->last_s < (int64_t)time(NULL) - f->since_s)
		return false;
	return !f->has_verdict || r->verdict == f->verdict;
}

/* The registrable domain of a host ("*.x": of x), or "" for none (no name, a public suffix). */
void flows_domain_of(const char *host, char *buf, size_t size)
{
	const char *name = !strncmp(host, "*.", 2) ? host + 2 : host;
	const char *d;

	buf[0] = '\0';
	if (!name[0])
		return;
	d = psl_registrable_domain(psl_builtin(), name);
	snprintf(buf, size, "%s", d ? d : name);
}

void flows_format_addr_port(const struct inventory_record *r, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(r->family, r->addr, addr, sizeof(addr));
	snprintf(buf, size, r->family == AF_INET6 ? "[%s]:%u/%s" : "%s:%u/%s", addr, r->port,
		 r->proto == IPPROTO_TCP ? "tcp" : "udp");
}

void flows_format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "%lld", (long long)t);
}

/* Records in display order: app, domain, host, address, port, protocol, verdict. */
struct flows_row {
	const struct inventory_record *r;
	char domain[POLICY_MAX_HOST_LEN + 1];
};

static int row_cmp(const void *pa, const void *pb)
{
	const struct flows_row *a = pa, *b = pb;
	int c;

	if ((c = strcmp(a->r->app, b->r->app)))
		return c;
	/* Unnamed destinations last. */
	if (!a->domain[0] != !b->domain[0])
		return a->domain[0] ? -1 : 1;
	if ((c = strcmp(a->domain, b->domain)) || (c = strcmp(a->r->host, b->r->host)))
		return c;
	if (a->r->family != b->r->family)
		return a->r->family < b->r->family ? -1 : 1;
	if ((c = memcmp(a->r->addr, b->r->addr, sizeof(a->r->addr))))
		return c;
	if (a->r->port != b->r->port)
		return a->r->port < b->r->port ? -1 : 1;
	if (a->r->proto != b->r->proto)
		return a->r->proto < b->r->proto ? -1 : 1;
	return (int)a->r->verdict - (int)b->r->verdict;
}

static void flows_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: carwall flows [--app ID] [--since DURATION] [--verdict "
	    "allowed|refused|audited]\n"
	    "                     [--state-dir DIR | --inventory FILE] [--json]\n"
	    "\n"
	    "The flow inventory carwalld keeps: every flow of every managed app, grouped app ->\n"
	    "registrable domain -> host -> address:port, with counts, first and last seen and the\n"
	    "boots it was seen in. Read from the agent's state folder (saved every few seconds).\n"
	    "A host marked (observed) is the name of a DNS answer the app received, not one of\n"
	    "its policy.\n"
	    "\n"
	    "  --app ID            that app's flows only\n"
	    "  --since DURATION    flows last seen within DURATION (N, Ns, Nm, Nh or Nd)\n"
	    "  --verdict V         allowed, refused or audited flows only\n"
	    "  --state-dir DIR     the agent's state folder (default $CARWALL_STATE_DIR or %s)\n"
	    "  --inventory FILE    an inventory file (e.g. copied from a unit) instead\n"
	    "  --json              print JSON\n",
	    FLOWS_DEFAULT_STATE_DIR);
}

/*
 * The options `flows`, `policy suggest` and `policy replay` share; extra: more options for the
 * caller (handled by it through on_extra). Returns the index of the first operand, or -1 (usage).
 */
int flows_parse_options(struct cli *c, int argc, char **argv, struct flows_source *src,
			struct flows_filter *f, const struct option *extra, size_t n_extra,
			int (*on_extra)(int opt, const char *arg, void *userdata), void *userdata,
			void (*usage)(FILE *f))
{
	struct option opts[32] = {
	    {"json", no_argument, NULL, 'j'},
	    {"app", required_argument, NULL, 'a'},
	    {"since", required_argument, NULL, 'S'},
	    {"verdict", required_argument, NULL, 'V'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"inventory", required_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	};
	size_t n = 7;
	int o;

	for (size_t i = 0; i < n_extra && n + 1 < ARRAY_SIZE(opts); i++)
		opts[n++] = extra[i];
	optind = 0;
	while ((o = getopt_long(argc, argv, "+jha:", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			c->json = true;
			break;
		case 'a':
			if (!policy_app_id_valid(optarg)) {
				fprintf(stderr, "carwall: bad app id '%s'\n", optarg);
				return -1;
			}
			f->app = optarg;
			break;
		case 'S':
			if (flows_duration_parse(optarg, &f->since_s) < 0) {
				fprintf(stderr, "carwall: bad --since '%s' (N, Ns, Nm, Nh or Nd)\n",
					optarg);
				return -1;
			}
			f->has_since = true;
			break;
		case 'V':
			if (inventory_verdict_parse(optarg, &f->verdict) < 0) {
				fprintf(
				    stderr,
				    "carwall: bad --verdict '%s' (allowed, refused or audited)\n",
				    optarg);
				return -1;
			}
			f->has_verdict = true;
			break;
		case 's':
			src->state_dir = optarg;
			break;
		case 'I':
			src->inventory_file = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			if (on_extra && on_extra(o, optarg, userdata) == 0)
				break;
			usage(stderr);
			return -1;
		}
	}
	if (src->state_dir && src->inventory_file) {
		fprintf(stderr, "carwall: --state-dir and --inventory exclude each other\n");
		return -1;
	}
	return optind;
}

int cmd_flows(struct cli *c, int argc, char **argv)
{
	_cleanup_free_ struct flows_row *rows = NULL;
	struct flows_source src = {};
	struct flows_filter f = {};
	struct inventory *inv = NULL;
	char reason[512] = "";
	size_t n = 0;
	int i, r;

	i = flows_parse_options(c, argc, argv, &src, &f, NULL, 0, NULL, NULL, flows_usage);
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc) {
		fprintf(stderr, "carwall flows: unexpected argument '%s'\n", argv[i]);
		return EXIT_USAGE;
	}
	r = flows_source_load(&src, &inv, reason, sizeof(reason));
	if (r == -ENOENT && !src.inventory_file) {
		r = inventory_new(INVENTORY_MIN_RECORDS, &inv); /* nothing recorded yet */
	}
	if (r < 0)
		return cli_fail(c, "cannot read the flow inventory: %s",
				reason[0] ? reason : strerror(-r));
	rows = calloc(inventory_count(inv) + 1, sizeof(*rows));
	if (!rows) {
		inventory_free(inv);
		return cli_fail(c, "out of memory");
	}
	for (size_t k = 0; k < inventory_count(inv); k++) {
		const struct inventory_record *rec = inventory_get(inv, k);

		if (!flows_filter_match(&f, rec))
			continue;
		rows[n].r = rec;
		flows_domain_of(rec->host, rows[n].domain, sizeof(rows[n].domain));
		n++;
	}
	qsort(rows, n, sizeof(*rows), row_cmp);

	if (c->json) {
		struct json_object *o = json_object_new_object(), *apps = json_object_new_array();
		struct json_object *app = NULL, *domains = NULL, *dom = NULL, *hosts = NULL;
		struct json_object *host = NULL, *flows = NULL;

		for (size_t k = 0; k < n; k++) {
			const struct inventory_record *rec = rows[k].r;
			bool new_app = !k || strcmp(rec->app, rows[k - 1].r->app);
			bool new_dom = new_app || strcmp(rows[k].domain, rows[k - 1].domain);
			bool new_host = new_dom || strcmp(rec->host, rows[k - 1].r->host);

			if (new_app) {
				app = json_object_new_object();
				domains = json_object_new_array();
				json_object_object_add(app, "app",
						       json_object_new_string(rec->app));
				json_object_object_add(app, "domains", domains);
				json_object_array_add(apps, app);
			}
			if (new_dom) {
				dom = json_object_new_object();
				hosts = json_object_new_array();
				json_object_object_add(dom, "domain",
						       rows[k].domain[0]
							   ? json_object_new_string(rows[k].domain)
							   : NULL);
				json_object_object_add(dom, "hosts", hosts);
				json_object_array_add(domains, dom);
			}
			if (new_host) {
				host = json_object_new_object();
				flows = json_object_new_array();
				json_object_object_add(
				    host, "host",
				    rec->host[0] ? json_object_new_string(rec->host) : NULL);
				json_object_object_add(host, "flows", flows);
				json_object_array_add(hosts, host);
			}
			json_object_array_add(flows, inventory_record_to_json(rec));
		}
		json_object_object_add(o, "apps", apps);
		json_object_object_add(o, "records", json_object_new_int64((int64_t)n));
		cli_print_json(o);
		json_object_put(o);
	} else {
		for (size_t k = 0; k < n; k++) {
			const struct inventory_record *rec = rows[k].r;
			bool new_app = !k || strcmp(rec->app, rows[k - 1].r->app);
			bool new_dom = new_app || strcmp(rows[k].domain, rows[k - 1].domain);
			bool new_host = new_dom || strcmp(rec->host, rows[k - 1].r->host);
			char ap[INET6_ADDRSTRLEN + 16], first[32], last[32], rule[32] = "";

			if (new_app)
				printf("%s\n", rec->app);
			if (new_dom)
				printf("  %s\n",
				       rows[k].domain[0] ? rows[k].domain : "(no name known)");
			if (new_host && rec->host[0])
				printf("    %s%s\n", rec->host,
				       rec->host_source == INVENTORY_HOST_OBSERVED ? " (observed)"
										   : "");
			flows_format_addr_port(rec, ap, sizeof(ap));
			flows_format_time(rec->first_s, first, sizeof(first));
			flows_format_time(rec->last_s, last, sizeof(last));
			if (rec->rule != INVENTORY_RULE_NONE)
				snprintf(rule, sizeof(rule), " rule #%lld", (long long)rec->rule);
			printf("      %-46s %-8s count %llu, boots %u, first %s, last %s%s\n", ap,
			       inventory_verdict_name(rec->verdict), (unsigned long long)rec->count,
			       rec->boots, first, last, rule);
		}
		if (!n)
			printf("no flows recorded%s\n",
			       f.app || f.has_since || f.has_verdict ? " that match" : "");
	}
	inventory_free(inv);
	return EXIT_SUCCESS;
}
