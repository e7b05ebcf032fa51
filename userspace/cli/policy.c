// SPDX-License-Identifier: GPL-2.0-only
/*
 * The policy file, offline: `carwall policy check FILE` (parse and compile it), and
 * `carwall explain --policy FILE --app ID DEST` and its batch form: the verdict the kernel would
 * give, the rule that gives it and where it is written. The logic is in lib/explain.c; this file
 * reads the options and prints.
 */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "explain.h"
#include "geo.h"
#include "policy.h"
#include "policy_compile.h"
#include "policy_lint.h"
#include "util.h"

#define EXIT_USAGE 2

/* At most this many lines in a --batch file. */
#define EXPLAIN_MAX_BATCH_LINES 1000000

struct explain_cli {
	bool json;
	const char *policy_path;
	const char *app_id;
	const char *batch;
	const char *geo_db; /* --geo-db: the country database of home-only residency */
	struct policy *policy;
	struct policy_maps *maps;
	size_t app;
	/* --consent NAME=on|off: the switches' states judged with (the others: defaults). */
	const char *consent_args[POLICY_MAX_SWITCHES];
	size_t n_consent_args;
	bool consent_on[POLICY_MAX_SWITCHES];
};

static void explain_usage(FILE *f)
{
	fputs(
	    "Usage: carwall explain --policy FILE --app ID DEST\n"
	    "       carwall explain --policy FILE --app ID --batch FILE|-\n"
	    "\n"
	    "The verdict carwall gives a flow of app ID, computed offline (no kernel, no agent)\n"
	    "from the BPF map entries the policy compiles to, the rule that gives it, and where\n"
	    "that rule and the matching element of its `to` are written.\n"
	    "\n"
	    "DEST = HOST[:PORT][/PROTO]\n"
	    "  HOST   an IPv4 address, or an IPv6 address: in brackets when a port follows\n"
	    "         ([2001:db8::1]:443), bare or in brackets otherwise. One address, not a\n"
	    "         prefix. ::ffff:a.b.c.d is judged by the IPv4 rules. Or a host name\n"
	    "         (tiles.oem.example, not a wildcard): judged as an address the app\n"
	    "         learned for it from a trusted resolver, by the name's rules only.\n"
	    "  PORT   0-65535. Without it: every port the app may use towards HOST, e.g.\n"
	    "         \"tcp 443, 8443-8450; udp: none\".\n"
	    "  PROTO  tcp or udp. Without it: both.\n"
	    "  e.g.   203.0.113.7  203.0.113.7:443  203.0.113.7:443/tcp  203.0.113.7/udp\n"
	    "         2001:db8::1  [2001:db8::1]:443/udp  [::ffff:198.51.100.20]:443\n"
	    "         tiles.oem.example:443/tcp\n"
	    "\n"
	    "Options:\n"
	    "  --policy FILE   the policy (YAML, as `carwall policy check` reads it)\n"
	    "  --app ID        the app, as named in the policy\n"
	    "  --geo-db FILE   the country database (MaxMind DB) of a policy with\n"
	    "                  'residency-enforce: home-only', as the agent's --geo-db: a flow\n"
	    "                  to an address outside the home region is refused unless its\n"
	    "                  rule is cross-border (required for such a policy)\n"
	    "  --batch FILE    one DEST per line, each with PORT and PROTO (ADDR:PORT/PROTO),\n"
	    "                  at most 1000000 lines; '-' reads stdin. Prints one line per\n"
	    "                  input line: \"allowed DEST rule INDEX FILE:LINE:COLUMN\" or\n"
	    "                  \"refused DEST\" (with --json: one JSON object per line)\n"
	    "  --consent NAME=on|off\n"
	    "                  judge with the policy's consent switch NAME on or off\n"
	    "                  (repeatable; the others: their defaults). A flow whose rules\n"
	    "                  all serve purposes switched off is refused (consent), and the\n"
	    "                  switches that refuse it are named\n"
	    "  --json          print JSON (errors too)\n"
	    "  -h --help       show this help\n"
	    "\n"
	    "JSON: verdict; flows[] (with PORT) or ports[] (without), each with proto, verdict,\n"
	    "rule {index (0-based, as in the maps), app_rule (1-based, in the app's allow list),\n"
	    "file, line, column} and to {set (or null), line, column, prefix, prefix_line,\n"
	    "prefix_column (for a name: host, host_line, host_column)} when allowed. For a\n"
	    "name also: name, resolvers[], limit, other_names.\n"
	    "\n"
	    "Exit codes: 0 allowed (every flow asked about: both protocols without PROTO,\n"
	    "every port without PORT, every line with --batch), 3 refused (every one),\n"
	    "4 partly allowed, 1 error (policy, app not in the policy, batch line), 2 usage.\n",
	    f);
}

static void json_print(struct json_object *o, bool pretty)
{
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE;

	flags |=
	    pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN;
	printf("%s\n", json_object_to_json_string_ext(o, flags));
}

/* Report an error the way the output mode wants it; returns `code`. */
static int explain_error(const struct explain_cli *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int explain_error(const struct explain_cli *c, int code, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(buf));
		json_print(o, true);
		json_object_put(o);
	} else {
		fprintf(stderr, "carwall explain: %s\n", buf);
	}
	return code;
}

static const char *proto_name(uint16_t proto)
{
	return proto == IPPROTO_TCP ? "tcp" : "udp";
}

static int exit_code(size_t allowed, size_t total)
{
	if (allowed == total)
		return EXPLAIN_EXIT_ALLOWED;
	return allowed == 0 ? EXPLAIN_EXIT_REFUSED : EXPLAIN_EXIT_PARTLY;
}

static const char *verdict_name(int code)
{
	return code == EXPLAIN_EXIT_ALLOWED   ? "allowed"
	       : code == EXPLAIN_EXIT_REFUSED ? "refused"
					      : "partly allowed";
}

/* ---- the matching rule --------------------------------------------------------------------- */

/* "rule 2 of navigation at p.yaml:20:7" */
static void match_rule_text(const struct explain_cli *c, const struct explain_match *m, char *buf,
			    size_t size)
{
	snprintf(buf, size, "rule %zu of %s at %s:%u:%u", m->app_rule + 1,
		 c->policy->apps[c->app].id, c->policy->path, m->rule->loc.line,
		 m->rule->loc.column);
}

/* "198.51.100.0/24 at p.yaml:21:13" or "set oem-maps at p.yaml:21:13, entry ... at p.yaml:4:13" */
static void match_to_text(const struct explain_cli *c, const struct explain_match *m, char *buf,
			  size_t size)
{
	char pfx[POLICY_MAX_HOST_LEN + 8];
	const struct policy_loc *entry = m->host ? &m->host->loc : NULL;

	if (m->host)
		snprintf(pfx, sizeof(pfx), "%s%s", m->host->wildcard ? "*." : "", m->host->name);
	else if (explain_prefix_format(m->prefix, pfx, sizeof(pfx)) < 0)
		snprintf(pfx, sizeof(pfx), "?");
	if (!entry)
		entry = &m->prefix->loc;
	if (!m->set)
		snprintf(buf, size, "%s at %s:%u:%u", pfx, c->policy->path, m->to->loc.line,
			 m->to->loc.column);
	else
		snprintf(buf, size, "set %s at %s:%u:%u, its entry %s at %s:%u:%u", m->set->name,
			 c->policy->path, m->to->loc.line, m->to->loc.column, pfx, c->policy->path,
			 entry->line, entry->column);
}

static void match_json(const struct explain_cli *c, const struct explain_match *m,
		       struct json_object *o)
{
	struct json_object *rule = json_object_new_object(), *to = json_object_new_object();
	char pfx[INET6_ADDRSTRLEN + 8];

	json_object_object_add(rule, "index", json_object_new_int64((int64_t)m->rule->index));
	json_object_object_add(rule, "app_rule", json_object_new_int64((int64_t)m->app_rule + 1));
	json_object_object_add(rule, "file", json_object_new_string(c->policy->path));
	json_object_object_add(rule, "line", json_object_new_int((int)m->rule->loc.line));
	json_object_object_add(rule, "column", json_object_new_int((int)m->rule->loc.column));
	json_object_object_add(o, "rule", rule);

	json_object_object_add(to, "set", m->set ? json_object_new_string(m->set->name) : NULL);
	json_object_object_add(to, "line", json_object_new_int((int)m->to->loc.line));
	json_object_object_add(to, "column", json_object_new_int((int)m->to->loc.column));
	if (m->host) {
		char host[POLICY_MAX_HOST_LEN + 3];

		snprintf(host, sizeof(host), "%s%s", m->host->wildcard ? "*." : "", m->host->name);
		json_object_object_add(to, "host", json_object_new_string(host));
		json_object_object_add(to, "host_line",
				       json_object_new_int((int)m->host->loc.line));
		json_object_object_add(to, "host_column",
				       json_object_new_int((int)m->host->loc.column));
		json_object_object_add(o, "to", to);
		return;
	}
	if (explain_prefix_format(m->prefix, pfx, sizeof(pfx)) < 0)
		pfx[0] = '\0';
	json_object_object_add(to, "prefix", json_object_new_string(pfx));
	json_object_object_add(to, "prefix_line", json_object_new_int((int)m->prefix->loc.line));
	json_object_object_add(to, "prefix_column",
			       json_object_new_int((int)m->prefix->loc.column));
	json_object_object_add(o, "to", to);
}

/* ---- host names ----------------------------------------------------------------------------- */

/* "127.0.0.53, ::1": the policy's trusted resolvers. */
static void resolvers_text(const struct policy *p, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n_resolvers && o < size; i++) {
		char a[INET6_ADDRSTRLEN];

		if (!inet_ntop(p->resolvers[i].family, p->resolvers[i].addr, a, sizeof(a)))
			snprintf(a, sizeof(a), "?");
		o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", a);
	}
}

#define NAME_LIMIT_TEXT                                                                            \
	"carwall learns addresses, not names: every other name served from an address learned "   \
	"for this name (shared hosting, a CDN) is reached as well, and an address a prefix rule "  \
	"of the app covers gets that rule's ports too"

/* What a verdict for a name rests on, and its honest limit, for the text output. */
static int name_notes(const struct explain_cli *c, const struct explain_dest *d)
{
	char others[1024], resolvers[256];
	int n = explain_other_hosts(c->policy, c->app, d->name, others, sizeof(others));

	if (n < 0)
		return n;
	resolvers_text(c->policy, resolvers, sizeof(resolvers));
	printf("  learned: from the answers of the trusted resolvers (%s) to this app's own "
	       "lookups; before a lookup, or once its TTL (clamped to %u-%us, plus %us of grace) "
	       "has run out, a new connection is refused\n",
	       resolvers, c->policy->dns.min_ttl_s, c->policy->dns.max_ttl_s,
	       c->policy->dns.grace_s);
	printf("  limit: " NAME_LIMIT_TEXT "\n");
	if (n > 0)
		printf("  the app's other names (%d), which may share an address with it: %s\n", n,
		       others);
	return 0;
}

static int name_json(const struct explain_cli *c, const struct explain_dest *d,
		     struct json_object *o)
{
	struct json_object *resolvers = json_object_new_array();
	char others[4096];
	int n = explain_other_hosts(c->policy, c->app, d->name, others, sizeof(others));

	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "address", NULL);
	json_object_object_add(o, "family", NULL);
	for (size_t i = 0; i < c->policy->n_resolvers; i++) {
		char a[INET6_ADDRSTRLEN];

		if (inet_ntop(c->policy->resolvers[i].family, c->policy->resolvers[i].addr, a,
			      sizeof(a)))
			json_object_array_add(resolvers, json_object_new_string(a));
	}
	json_object_object_add(o, "resolvers", resolvers);
	json_object_object_add(o, "limit", json_object_new_string(NAME_LIMIT_TEXT));
	if (n < 0)
		return n;
	json_object_object_add(o, "other_names", json_object_new_string(others));
	return 0;
}

/* ---- one DEST ------------------------------------------------------------------------------- */

/* "tcp 443, 8443-8450; udp: none" for the address, over the protocols asked about. */
static int ports_summary(const struct explain_cli *c, const struct explain_dest *d,
			 const uint16_t *protos, size_t n_protos, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n_protos; i++) {
		_cleanup_free_ struct explain_span *spans = NULL;
		char text[1024];
		size_t n = 0;
		int r = explain_ports(c->policy, c->maps, c->app, d, protos[i], &spans, &n);

		if (r < 0)
			return r;
		if (explain_spans_format(spans, n, text, sizeof(text)) < 0)
			snprintf(text + sizeof(text) - 5, 5, "...");
		/* "tcp 443, 8443-8450", "udp: none", "tcp: any port" */
		bool listed = n > 0 && explain_spans_count(spans, n) < 65536;
		o += (size_t)snprintf(buf + o, size > o ? size - o : 0, "%s%s%s%s", i ? "; " : "",
				      proto_name(protos[i]), listed ? " " : ": ", text);
		if (o >= size)
			break;
	}
	return 0;
}

/* "consent": {"switches": [...]}: the switches off that refuse a flow whose rules allow it. */
static void consent_json(const struct explain_cli *c, const struct explain_flow *f,
			 struct json_object *o)
{
	struct json_object *co = json_object_new_object(), *list = json_object_new_array();

	for (size_t i = 0; i < c->policy->consent.n_switches; i++) {
		char one[POLICY_MAX_CONSENT_NAME + 1];
		bool off_one[POLICY_MAX_SWITCHES];

		/* Ask for this switch alone: off as it is, every other one on. */
		for (size_t k = 0; k < POLICY_MAX_SWITCHES; k++)
			off_one[k] = true;
		off_one[i] = c->consent_on[i];
		if (explain_consent_switches(c->policy, f->purposes, off_one, one, sizeof(one)) > 0)
			json_object_array_add(list, json_object_new_string(one));
	}
	json_object_object_add(co, "switches", list);
	json_object_object_add(o, "consent", co);
}

static int explain_one(struct explain_cli *c, const char *dest_text)
{
	struct json_object *o = NULL, *list = NULL;
	struct explain_dest d;
	char reason[512], addr[POLICY_MAX_HOST_LEN + 1], written[POLICY_MAX_HOST_LEN + 1];
	char judged[POLICY_MAX_HOST_LEN + 32] = "";
	uint16_t protos[2];
	size_t n_protos = 0, allowed = 0, total = 0;
	const char *app = c->policy->apps[c->app].id;
	int r;

	r = explain_dest_parse(dest_text, &d, reason, sizeof(reason));
	if (r < 0)
		return explain_error(c, EXIT_USAGE, "%s", reason);
	if (d.proto)
		protos[n_protos++] = d.proto;
	else {
		protos[n_protos++] = IPPROTO_TCP;
		protos[n_protos++] = IPPROTO_UDP;
	}
	if (d.is_name) {
		snprintf(addr, sizeof(addr), "%s", d.name);
		snprintf(written, sizeof(written), "%s", d.name);
	} else if (explain_dest_format_addr(&d, addr, sizeof(addr)) < 0 ||
		   !inet_ntop(d.family, d.addr, written, sizeof(written))) {
		return explain_error(c, EXIT_FAILURE, "cannot format the address");
	}
	if (explain_dest_is_v4_mapped(&d))
		snprintf(judged, sizeof(judged), " (judged as IPv4 %s)", addr);

	if (c->json) {
		o = json_object_new_object();
		json_object_object_add(o, "policy", json_object_new_string(c->policy->path));
		json_object_object_add(o, "app", json_object_new_string(app));
		json_object_object_add(o, "destination", json_object_new_string(dest_text));
		if (d.is_name) {
			r = name_json(c, &d, o);
			if (r < 0)
				goto fail;
		} else {
			json_object_object_add(o, "address", json_object_new_string(addr));
			json_object_object_add(
			    o, "family",
			    json_object_new_string(d.family == AF_INET ? "ipv4" : "ipv6"));
		}
		json_object_object_add(o, "ipv4_mapped",
				       json_object_new_boolean(explain_dest_is_v4_mapped(&d)));
		json_object_object_add(o, "port", d.has_port ? json_object_new_int(d.port) : NULL);
		list = json_object_new_array();
		json_object_object_add(o, d.has_port ? "flows" : "ports", list);
	}

	if (d.has_port) {
		for (size_t i = 0; i < n_protos; i++) {
			struct explain_flow f;

			r = explain_flow(c->policy, c->maps, c->app, &d, protos[i], d.port, &f);
			if (r < 0)
				goto fail;
			total++;
			allowed += f.allowed;
			if (c->json) {
				struct json_object *fo = json_object_new_object();
				json_object_object_add(fo, "proto",
						       json_object_new_string(proto_name(f.proto)));
				json_object_object_add(fo, "port", json_object_new_int(f.port));
				json_object_object_add(
				    fo, "verdict",
				    json_object_new_string(f.allowed ? "allowed" : "refused"));
				json_object_object_add(fo, "address_covered",
						       json_object_new_boolean(f.address_covered));
				if (f.region_refused)
					json_object_object_add(fo, "reason",
							       json_object_new_string("deny-region"));
				if (f.allowed || f.region_refused || f.refused_by_consent)
					match_json(c, &f.match, fo);
				if (f.refused_by_consent)
					consent_json(c, &f, fo);
				json_object_array_add(list, fo);
				continue;
			}
			printf("%s to %s port %u/%s%s: %s\n", app, written, d.port,
			       proto_name(f.proto), judged,
			       f.allowed		? "allowed"
			       : f.refused_by_consent ? "refused (consent)"
						      : "refused");
			if (f.refused_by_consent) {
				char rule[1024], switches[512];
				match_rule_text(c, &f.match, rule, sizeof(rule));
				explain_consent_switches(c->policy, f.purposes, c->consent_on,
							 switches, sizeof(switches));
				printf("  by:  %s\n  consent: every rule allowing it serves a "
				       "purpose switched off by: %s\n",
				       rule, switches);
			} else if (f.allowed) {
				char rule[1024], to[1024];
				match_rule_text(c, &f.match, rule, sizeof(rule));
				match_to_text(c, &f.match, to, sizeof(to));
				printf("  by:  %s\n  to:  %s\n", rule, to);
			} else if (f.region_refused) {
				char rule[1024];
				match_rule_text(c, &f.match, rule, sizeof(rule));
				printf("  home region only: %s is outside the home region '%s' and %s "
				       "is not cross-border\n",
				       addr, c->policy->residency.home.name, rule);
			} else if (f.address_covered) {
				char sum[2048];
				r = ports_summary(c, &d,
						  (const uint16_t[]){IPPROTO_TCP, IPPROTO_UDP}, 2,
						  sum, sizeof(sum));
				if (r < 0)
					goto fail;
				printf(
				    "  default deny: no rule of app %s matches; its rules for %s "
				    "allow only %s\n",
				    app, addr, sum);
			} else if (d.is_name) {
				printf("  default deny: no rule of app %s names %s\n", app, addr);
			} else {
				printf("  default deny: no rule of app %s matches\n", app);
			}
		}
	} else {
		char sum[2048];

		r = ports_summary(c, &d, protos, n_protos, sum, sizeof(sum));
		if (r < 0)
			goto fail;
		if (!c->json)
			printf("%s to %s%s: %s\n", app, written, judged, sum);
		for (size_t i = 0; i < n_protos; i++) {
			_cleanup_free_ struct explain_span *spans = NULL;
			size_t n = 0;

			r = explain_ports(c->policy, c->maps, c->app, &d, protos[i], &spans, &n);
			if (r < 0)
				goto fail;
			total += 65536;
			allowed += explain_spans_count(spans, n);
			for (size_t k = 0; k < n; k++) {
				if (c->json) {
					struct json_object *so = json_object_new_object();
					json_object_object_add(
					    so, "proto",
					    json_object_new_string(proto_name(protos[i])));
					json_object_object_add(so, "first",
							       json_object_new_int(spans[k].first));
					json_object_object_add(so, "last",
							       json_object_new_int(spans[k].last));
					json_object_object_add(so, "verdict",
							       json_object_new_string("allowed"));
					match_json(c, &spans[k].match, so);
					json_object_array_add(list, so);
					continue;
				}
				char ports[1024], rule[1024], to[1024];
				explain_spans_format(&spans[k], 1, ports, sizeof(ports));
				match_rule_text(c, &spans[k].match, rule, sizeof(rule));
				match_to_text(c, &spans[k].match, to, sizeof(to));
				printf("  %s %s: by %s, to %s\n", proto_name(protos[i]), ports,
				       rule, to);
			}
		}
		if (c->json)
			json_object_object_add(o, "summary", json_object_new_string(sum));
		else if (allowed == 0)
			printf("  default deny: no rule of app %s %s\n", app,
			       d.is_name ? "names it" : "matches");
	}
	if (d.is_name && !c->json) {
		r = name_notes(c, &d);
		if (r < 0)
			goto fail;
	} else if (!c->json && allowed < total &&
		   policy_app_has_hosts(c->policy, &c->policy->apps[c->app])) {
		char names[1024];

		if (explain_other_hosts(c->policy, c->app, NULL, names, sizeof(names)) > 0)
			printf("  but: if the app learned %s for one of its names (%s), that name's "
			       "rules judge it too: explain the name\n",
			       addr, names);
	}

	r = exit_code(allowed, total);
	if (c->json) {
		json_object_object_add(o, "verdict", json_object_new_string(verdict_name(r)));
		json_print(o, true);
		json_object_put(o);
	}
	return r;

fail:
	json_object_put(o);
	return explain_error(c, EXIT_FAILURE, "%s: %s", dest_text,
			     r == -EUCLEAN ? "the compiled maps do not agree with the policy"
					   : strerror(-r));
}

/* ---- --batch -------------------------------------------------------------------------------- */

static int explain_batch(struct explain_cli *c)
{
	_cleanup_fclose_ FILE *owned = NULL;
	_cleanup_free_ char *line = NULL;
	const char *name = strcmp(c->batch, "-") ? c->batch : "stdin";
	size_t cap = 0, n_lines = 0, allowed = 0;
	FILE *f = stdin;
	ssize_t len;
	int r;

	if (strcmp(c->batch, "-")) {
		owned = fopen(c->batch, "re");
		if (!owned)
			return explain_error(c, EXIT_FAILURE, "cannot open %s: %m", c->batch);
		f = owned;
	}

	while ((len = getline(&line, &cap, f)) >= 0) {
		struct explain_dest d;
		struct explain_flow fl;
		char reason[512];

		if (++n_lines > EXPLAIN_MAX_BATCH_LINES)
			return explain_error(c, EXIT_FAILURE,
					     "%s: more than %d lines (EXPLAIN_MAX_BATCH_LINES)",
					     name, EXPLAIN_MAX_BATCH_LINES);
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (strlen(line) != (size_t)len)
			return explain_error(c, EXIT_FAILURE, "%s:%zu: a NUL byte in the line",
					     name, n_lines);

		r = explain_dest_parse(line, &d, reason, sizeof(reason));
		if (r < 0)
			return explain_error(c, EXIT_FAILURE, "%s:%zu: %s", name, n_lines, reason);
		if (!d.has_port || !d.proto)
			return explain_error(
			    c, EXIT_FAILURE,
			    "%s:%zu: '%s': a batch line needs a port and a protocol "
			    "(ADDR:PORT/PROTO)",
			    name, n_lines, line);
		r = explain_flow(c->policy, c->maps, c->app, &d, d.proto, d.port, &fl);
		if (r < 0)
			return explain_error(c, EXIT_FAILURE, "%s:%zu: %s", name, n_lines,
					     r == -EUCLEAN ? "the compiled maps do not agree with "
							     "the policy"
							   : strerror(-r));
		allowed += fl.allowed;

		if (c->json) {
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "destination", json_object_new_string(line));
			json_object_object_add(
			    o, "verdict",
			    json_object_new_string(fl.allowed ? "allowed" : "refused"));
			if (fl.allowed || fl.refused_by_consent)
				match_json(c, &fl.match, o);
			if (fl.refused_by_consent)
				consent_json(c, &fl, o);
			json_print(o, false);
			json_object_put(o);
		} else if (fl.allowed) {
			printf("allowed %s rule %zu %s:%u:%u\n", line, fl.match.rule->index,
			       c->policy->path, fl.match.rule->loc.line, fl.match.rule->loc.column);
		} else if (fl.refused_by_consent) {
			char switches[512];
			explain_consent_switches(c->policy, fl.purposes, c->consent_on, switches,
						 sizeof(switches));
			printf("refused %s consent %s\n", line, switches);
		} else {
			printf("refused %s\n", line);
		}
	}
	if (ferror(f))
		return explain_error(c, EXIT_FAILURE, "reading %s: %m", name);
	if (fflush(stdout) != 0)
		return EXIT_FAILURE;
	return exit_code(allowed, n_lines);
}

/* ---- main ----------------------------------------------------------------------------------- */

static int explain_load(struct explain_cli *c)
{
	struct policy_error perr = {};
	char reason[1024];
	int r;

	r = policy_parse_file(c->policy_path, &c->policy, &perr);
	if (r < 0) {
		policy_error_format(&perr, reason, sizeof(reason));
		return explain_error(c, EXIT_FAILURE, "%s", reason);
	}
	/* Generation 0: the verdict does not depend on the generation. */
	r = policy_compile(c->policy, 0, &c->maps, reason, sizeof(reason));
	if (r < 0) {
		if (!reason[0])
			snprintf(reason, sizeof(reason), "%s: %s", c->policy_path, strerror(-r));
		return explain_error(c, EXIT_FAILURE, "%s", reason); /* "file[:line:column]: why" */
	}
	/* Home-only residency: the home prefixes, as the agent reads them (never judged open). */
	r = geo_apply_policy(c->policy, c->geo_db, c->maps, NULL, reason, sizeof(reason));
	if (r < 0)
		return explain_error(c, EXIT_FAILURE, "%s", reason);

	/* Consent: the switches' defaults, then --consent NAME=on|off. */
	for (size_t i = 0; i < c->policy->consent.n_switches; i++)
		c->consent_on[i] = c->policy->consent.switches[i].default_on;
	for (size_t k = 0; k < c->n_consent_args; k++) {
		const char *arg = c->consent_args[k], *eq = strchr(arg, '=');
		bool found = false;

		if (!eq || (strcmp(eq + 1, "on") && strcmp(eq + 1, "off")))
			return explain_error(c, EXIT_USAGE, "--consent %s: expected NAME=on|off",
					     arg);
		for (size_t i = 0; i < c->policy->consent.n_switches; i++) {
			const char *name = c->policy->consent.switches[i].name;

			if (strlen(name) == (size_t)(eq - arg) &&
			    !strncmp(name, arg, (size_t)(eq - arg))) {
				c->consent_on[i] = !strcmp(eq + 1, "on");
				found = true;
			}
		}
		if (!found)
			return explain_error(c, EXIT_FAILURE, "--consent %s: no such switch in %s",
					     arg, c->policy_path);
	}
	c->maps->consent_deny = policy_consent_deny(c->policy, c->consent_on);

	if (explain_find_app(c->policy, c->app_id, &c->app) < 0) {
		char apps[2048];
		size_t o = 0;

		apps[0] = '\0';
		for (size_t i = 0; i < c->policy->n_apps && o < sizeof(apps); i++)
			o += (size_t)snprintf(apps + o, sizeof(apps) - o, "%s%s", i ? ", " : "",
					      c->policy->apps[i].id);
		return explain_error(c, EXIT_FAILURE, "app '%s' is not in %s; its apps are: %s",
				     c->app_id, c->policy_path, apps);
	}
	return 0;
}

int carwall_explain_main(int argc, char **argv, bool json)
{
	static const struct option opts[] = {
	    {"policy", required_argument, NULL, 'p'}, {"app", required_argument, NULL, 'a'},
	    {"batch", required_argument, NULL, 'B'},  {"json", no_argument, NULL, 'j'},
	    {"geo-db", required_argument, NULL, 'g'},
	    {"consent", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},	      {},
	};
	struct explain_cli c = {.json = json};
	int o, r;

	optind = 0; /* glibc: restart scanning */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			c.policy_path = optarg;
			break;
		case 'a':
			c.app_id = optarg;
			break;
		case 'B':
			c.batch = optarg;
			break;
		case 'g':
			c.geo_db = optarg;
			break;
		case 'C':
			if (c.n_consent_args >= POLICY_MAX_SWITCHES)
				return explain_error(&c, EXIT_USAGE, "more than %d --consent",
						     POLICY_MAX_SWITCHES);
			c.consent_args[c.n_consent_args++] = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'h':
			explain_usage(stdout);
			return EXIT_SUCCESS;
		default:
			explain_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!c.policy_path || !c.app_id)
		return explain_error(&c, EXIT_USAGE, "--policy FILE and --app ID are required");
	if (c.batch ? optind != argc : optind + 1 != argc)
		return explain_error(&c, EXIT_USAGE,
				     c.batch ? "no DEST with --batch"
					     : "exactly one DEST is required (see --help)");

	r = explain_load(&c);
	if (r == 0)
		r = c.batch ? explain_batch(&c) : explain_one(&c, argv[optind]);
	policy_maps_free(c.maps);
	policy_free(c.policy);
	return r;
}

int cmd_policy_check(struct cli *c, int argc, char **argv)
{
	struct policy_error perr = {};
	struct policy_maps *maps = NULL;
	struct policy_lint *lint = NULL;
	struct policy *p = NULL;
	char reason[1024];
	int i, r;

	c->strict_ok = true;
	i = cli_parse(c, argc, argv, false, false);
	if (i < 0)
		return EXIT_USAGE;
	if (i + 1 != argc) {
		fprintf(stderr, "Usage: carwall policy check [--strict] FILE\n");
		return EXIT_USAGE;
	}
	const char *file = argv[i];

	r = policy_parse_file(file, &p, &perr);
	if (r < 0) {
		policy_error_format(&perr, reason, sizeof(reason));
		if (!c->json) {
			fprintf(stderr, "%s\n", reason);
			return EXIT_FAILURE;
		}
		struct json_object *o = json_object_new_object();
		struct json_object *e = json_object_new_object();
		json_object_object_add(o, "file", json_object_new_string(file));
		json_object_object_add(o, "valid", json_object_new_boolean(false));
		json_object_object_add(e, "file", json_object_new_string(perr.file));
		json_object_object_add(e, "line", json_object_new_int((int)perr.loc.line));
		json_object_object_add(e, "column", json_object_new_int((int)perr.loc.column));
		json_object_object_add(e, "reason", json_object_new_string(perr.reason));
		json_object_object_add(e, "message", json_object_new_string(reason));
		json_object_object_add(o, "error", e);
		cli_print_json(o);
		json_object_put(o);
		return EXIT_FAILURE;
	}

	/* Compiling too: a policy that parses but does not fit the maps is not valid. */
	r = policy_compile(p, 0, &maps, reason, sizeof(reason));
	if (r < 0) {
		policy_free(p);
		if (!reason[0])
			snprintf(reason, sizeof(reason), "%s: %s", file, strerror(-r));
		return cli_fail(c, "%s", reason); /* "file[:line:column]: why" */
	}
	r = policy_lint(p, &lint);
	if (r < 0) {
		policy_maps_free(maps);
		policy_free(p);
		return cli_fail(c, "%s: cannot check for warnings: %s", file, strerror(-r));
	}
	if (c->json) {
		struct json_object *o = json_object_new_object();
		struct json_object *warnings = json_object_new_array();
		json_object_object_add(o, "file", json_object_new_string(file));
		json_object_object_add(o, "valid", json_object_new_boolean(true));
		for (size_t k = 0; k < lint->n_warnings; k++) {
			const struct policy_lint_warning *w = &lint->warnings[k];
			struct json_object *wo = json_object_new_object();
			const char *kind = policy_lint_kind_name(w->kind);
			json_object_object_add(wo, "kind", json_object_new_string(kind));
			json_object_object_add(wo, "line", json_object_new_int((int)w->loc.line));
			json_object_object_add(wo, "column",
					       json_object_new_int((int)w->loc.column));
			json_object_object_add(wo, "reason", json_object_new_string(w->reason));
			json_object_array_add(warnings, wo);
		}
		json_object_object_add(o, "warnings", warnings);
		json_object_object_add(o, "warnings_total",
				       json_object_new_int64((int64_t)lint->n_total));
		json_object_object_add(o, "strict", json_object_new_boolean(c->strict));
		json_object_object_add(o, "apps", json_object_new_int64((int64_t)p->n_apps));
		json_object_object_add(o, "sets", json_object_new_int64((int64_t)p->n_sets));
		json_object_object_add(o, "rules", json_object_new_int64((int64_t)p->n_rules));
		json_object_object_add(o, "ipv4_prefixes", json_object_new_int64((int64_t)maps->n_dst4));
		json_object_object_add(o, "ipv6_prefixes", json_object_new_int64((int64_t)maps->n_dst6));
		json_object_object_add(o, "port_entries", json_object_new_int64((int64_t)maps->n_ports));
		json_object_object_add(o, "host_names",
				       json_object_new_int64((int64_t)maps->n_names));
		json_object_object_add(o, "resolvers",
				       json_object_new_int64((int64_t)maps->n_resolvers));
		cli_print_json(o);
		json_object_put(o);
	} else {
		char names[64] = "";

		if (maps->n_names)
			snprintf(names, sizeof(names), ", %zu host names", maps->n_names);
		printf("%s: valid: %zu apps, %zu sets, %zu rules (%zu IPv4 and %zu IPv6 prefixes, %zu "
		       "port entries%s)\n",
		       file, p->n_apps, p->n_sets, p->n_rules, maps->n_dst4, maps->n_dst6,
		       maps->n_ports, names);
		for (size_t k = 0; k < lint->n_warnings; k++)
			fprintf(stderr, "%s:%u:%u: warning: %s\n", file, lint->warnings[k].loc.line,
				lint->warnings[k].loc.column, lint->warnings[k].reason);
		if (lint->n_total > lint->n_warnings)
			fprintf(stderr, "%s: warning: %zu more warnings not shown\n", file,
				lint->n_total - lint->n_warnings);
	}
	r = c->strict && lint->n_total ? EXIT_FAILURE : EXIT_SUCCESS;
	policy_lint_free(lint);
	policy_maps_free(maps);
	policy_free(p);
	return r;
}
