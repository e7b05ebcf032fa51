// SPDX-License-Identifier: GPL-2.0-only
/*
 * Learn mode, offline, from the flow inventory (cli/flows.c reads it):
 *
 * `carwall policy suggest --app ID [--since D] [--base POLICY]`: a policy for the app that allows
 * what it was seen doing (allowed and audited flows): a host-name rule where a name is known (a
 * wildcard "*.D" only when several hosts of one registrable domain D were seen, never on a public
 * suffix), the host address (/32, /128) where none is, the ports and protocol observed; never
 * any address or any port. Each rule carries its evidence in a comment (flows, first and last
 * seen, boots); destinations seen once, and flows refused by the policy in force, are listed
 * apart as comments for review. Port-53 flows to a resolver become `resolvers:` when names are
 * proposed (an app with names reaches them without a rule). With --base, a unified diff against
 * the base that `patch` applies (lib/policy_edit.h: inserted where the parser's marks say): the
 * rules, and ports, the base does not allow yet, added to the app's `allow` (or a new app); the
 * flows apart and the base rules of the app that no recorded flow used are comments before it.
 *
 * The text is written by this file, not by libyaml's emitter: the emitter cannot write comments,
 * and the evidence comments are the point. Every value written is first checked against the
 * policy grammar (app ids, canonical names, addresses, port numbers), every string is
 * double-quoted and none can hold a '"' or '\', and the result is parsed and compiled by the
 * policy parser before it is printed: a suggestion that `carwall policy check` would refuse is
 * never printed.
 *
 * `carwall policy replay --policy FILE [--app ID]`: each recorded flow judged by that policy, per
 * app, through lib/explain.c (the compiled map entries the kernel gets): by its address first,
 * then, if refused and a name is known, by that name, as the kernel judges an address it learned
 * for the name. A record that knows only a wildcard of the policy in force ("*.x") is judged by
 * that wildcard; a port-53 flow of an app with names to a trusted resolver of the policy is
 * allowed, as the kernel allows it. Exit code 0 when the policy refuses none, 3 when it refuses
 * some.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <libpsl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "explain.h"
#include "inventory.h"
#include "policy.h"
#include "policy_compile.h"
#include "policy_edit.h"
#include "fileio.h"
#include "util.h"

#define REPLAY_EXIT_REFUSED 3

/* A text buffer that grows. */
struct text {
	char *s;
	size_t len, cap;
	bool oom;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || t->len + (size_t)n + 1 > t->cap) {
		size_t cap = (t->cap ? t->cap * 2 : 4096) + (n > 0 ? (size_t)n : 0);
		char *s = realloc(t->s, cap);

		if (n < 0 || !s) {
			t->oom = true;
			return;
		}
		t->s = s;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static void addr_text(int family, const uint8_t *addr, char *buf, size_t size)
{
	if (!inet_ntop(family, addr, buf, (socklen_t)size))
		snprintf(buf, size, "?");
}

/* ---- suggest ------------------------------------------------------------------------------- */

/* One destination, protocol and port the app was seen using, every verdict and rule merged. */
struct seen_flow {
	char dest[POLICY_MAX_HOST_LEN + 1]; /* a name, "*.x", or an address */
	bool is_name;
	const struct inventory_record *first_rec; /* for the address and family */
	uint8_t proto;
	uint16_t port;
	uint64_t count;
	int64_t first_s, last_s;
	uint32_t boots;
	bool once;
};

struct suggest {
	struct cli *c;
	const char *base_path;
	bool diff; /* --base: the rules to add, as a diff against the base (policy_edit.h) */
	struct policy *base;
	struct policy_maps *base_maps;
	size_t base_app;
	bool base_has_app;
	struct seen_flow *flows;
	size_t n_flows;
	/* Resolvers: the base's, else the addresses the app sent port-53 flows to. */
	struct policy_resolver resolvers[POLICY_MAX_RESOLVERS];
	size_t n_resolvers;
};

static bool is_resolver(const struct suggest *s, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < s->n_resolvers; i++)
		if (s->resolvers[i].family == family &&
		    !memcmp(s->resolvers[i].addr, addr, family == AF_INET ? 4 : 16))
			return true;
	return false;
}

static int add_flow(struct suggest *s, const struct inventory_record *r)
{
	struct seen_flow *f;

	for (size_t i = 0; i < s->n_flows; i++) {
		f = &s->flows[i];
		if (f->proto != r->proto || f->port != r->port)
			continue;
		if (r->host[0] ? strcmp(f->dest, r->host)
			       : f->is_name || f->first_rec->family != r->family ||
				     memcmp(f->first_rec->addr, r->addr, 16))
			continue;
		f->count += r->count;
		if (r->first_s < f->first_s)
			f->first_s = r->first_s;
		if (r->last_s > f->last_s)
			f->last_s = r->last_s;
		if (r->boots > f->boots)
			f->boots = r->boots;
		return 0;
	}
	f = reallocarray(s->flows, s->n_flows + 1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	s->flows = f;
	f = &s->flows[s->n_flows++];
	memset(f, 0, sizeof(*f));
	f->is_name = r->host[0] != '\0';
	if (f->is_name)
		snprintf(f->dest, sizeof(f->dest), "%s", r->host);
	else
		addr_text(r->family, r->addr, f->dest, sizeof(f->dest));
	f->first_rec = r;
	f->proto = r->proto;
	f->port = r->port;
	f->count = r->count;
	f->first_s = r->first_s;
	f->last_s = r->last_s;
	f->boots = r->boots;
	return 0;
}

static void evidence_text(const struct seen_flow *f, char *buf, size_t size)
{
	char first[32], last[32];

	flows_format_time(f->first_s, first, sizeof(first));
	flows_format_time(f->last_s, last, sizeof(last));
	snprintf(buf, size, "%llu flows, first %s, last %s, %u boots", (unsigned long long)f->count,
		 first, last, f->boots);
}

/* The destination of a flow in the suggestion: its name folded into "*.D" when several hosts
 * of D were seen (and D is no public suffix). */
static void rule_dest(const struct suggest *s, const struct seen_flow *f, char *buf, size_t size)
{
	char dom[POLICY_MAX_HOST_LEN + 1], other[POLICY_MAX_HOST_LEN + 1];
	const psl_ctx_t *psl = psl_builtin();

	snprintf(buf, size, "%s", f->dest);
	if (!f->is_name || !strncmp(f->dest, "*.", 2) || !psl)
		return;
	flows_domain_of(f->dest, dom, sizeof(dom));
	if (!dom[0] || !strcmp(dom, f->dest) || psl_is_public_suffix2(psl, dom, PSL_TYPE_ANY))
		return;
	for (size_t i = 0; i < s->n_flows; i++) {
		const struct seen_flow *g = &s->flows[i];

		if (g->once || !g->is_name || !strncmp(g->dest, "*.", 2) ||
		    !strcmp(g->dest, f->dest) || !strcmp(g->dest, dom))
			continue;
		flows_domain_of(g->dest, other, sizeof(other));
		/* dom is shorter than the host below it by two bytes at least: "*.dom" fits. */
		if (!strcmp(other, dom) && strlen(dom) + 3 <= size) {
			buf[0] = '*';
			buf[1] = '.';
			memcpy(buf + 2, dom, strlen(dom) + 1);
			return;
		}
	}
}

/* A rule being built: one destination and protocol, the ports seen. */
struct rule_acc {
	char dest[POLICY_MAX_HOST_LEN + 1];
	bool is_name;
	uint8_t proto;
	uint16_t ports[64];
	size_t n_ports;
	bool more_ports;     /* past 64: a further rule */
	struct seen_flow ev; /* merged evidence */
	const struct seen_flow *sample;
};

static int port_cmp(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/*
 * Whether the base allows every flow seen that rule r stands for on `port`: each host folded into
 * it by its name (a wildcard of the policy then in force, "*.x", by a name below x, as it was
 * learned), each address by itself.
 */
static bool base_allows(const struct suggest *s, const struct rule_acc *r, uint16_t port)
{
	char dest[POLICY_MAX_HOST_LEN + 1];

	for (size_t i = 0; i < s->n_flows; i++) {
		const struct seen_flow *f = &s->flows[i];
		struct explain_dest d = {};
		struct explain_flow fl;

		if (f->once || f->proto != r->proto || f->port != port)
			continue;
		rule_dest(s, f, dest, sizeof(dest));
		if (strcmp(dest, r->dest))
			continue;
		if (f->is_name) {
			d.is_name = true;
			if (!strncmp(f->dest, "*.", 2))
				snprintf(d.name, sizeof(d.name), "x.%s", f->dest + 2);
			else
				snprintf(d.name, sizeof(d.name), "%s", f->dest);
		} else {
			d.family = f->first_rec->family;
			memcpy(d.addr, f->first_rec->addr, 16);
		}
		if (explain_flow(s->base, s->base_maps, s->base_app, &d, r->proto, port, &fl) < 0 ||
		    !fl.allowed)
			return false;
	}
	return true;
}

/*
 * A rule of the suggestion, items indented by `ind`. With --base (diff): only the ports the base
 * does not allow already; nothing when it allows them all (returns false).
 */
static bool write_rule(struct suggest *s, struct text *t, struct rule_acc *r, const char *ind)
{
	char ev[256];
	const char *bv = NULL;

	qsort(r->ports, r->n_ports, sizeof(r->ports[0]), port_cmp);
	if (s->diff && s->base_has_app) {
		size_t n = 0;

		for (size_t i = 0; i < r->n_ports; i++)
			if (!base_allows(s, r, r->ports[i]))
				r->ports[n++] = r->ports[i];
		if (!n)
			return false;
		if (n < r->n_ports)
			bv = "the base allows the other ports already";
		r->n_ports = n;
	}
	evidence_text(&r->ev, ev, sizeof(ev));
	text_add(t, "%s# %s\n", ind, ev);
	if (bv)
		text_add(t, "%s# %s\n", ind, bv);
	text_add(t, "%s- to: [\"%s\"]\n%s  ports: [", ind, r->dest, ind);
	for (size_t i = 0; i < r->n_ports; i++)
		text_add(t, "%s%u", i ? ", " : "", r->ports[i]);
	text_add(t, "]\n%s  proto: %s\n", ind, r->proto == IPPROTO_TCP ? "tcp" : "udp");
	return true;
}

/*
 * The suggestion for app: the whole policy in t; with s->diff, the comments of the diff's header
 * in t and the rules to add (block sequence items at column 0) in items.
 */
static int suggest_build(struct suggest *s, const char *app, struct text *t, struct text *items,
			 bool *ret_names)
{
	size_t n_added = 0;
	_cleanup_free_ struct rule_acc *rules = NULL;
	size_t n_rules = 0, n_apart = 0;
	bool names = false;
	char dest[POLICY_MAX_HOST_LEN + 1], ev[256], ap[INET6_ADDRSTRLEN + 16];

	for (size_t i = 0; i < s->n_flows; i++) {
		struct seen_flow *f = &s->flows[i];

		f->once = f->count <= 1;
		if (!f->once && f->is_name)
			names = true;
	}
	rules = calloc(s->n_flows + 1, sizeof(*rules));
	if (!rules)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_flows; i++) {
		const struct seen_flow *f = &s->flows[i];
		struct rule_acc *r = NULL;

		if (f->once)
			continue;
		if (names && f->port == 53 && !f->is_name &&
		    is_resolver(s, f->first_rec->family, f->first_rec->addr))
			continue; /* reached through `resolvers:` */
		rule_dest(s, f, dest, sizeof(dest));
		for (size_t k = 0; k < n_rules && !r; k++)
			if (!strcmp(rules[k].dest, dest) && rules[k].proto == f->proto &&
			    !rules[k].more_ports)
				r = &rules[k];
		if (r && r->n_ports == ARRAY_SIZE(r->ports)) {
			r->more_ports = true;
			r = NULL;
		}
		if (!r) {
			r = &rules[n_rules++];
			snprintf(r->dest, sizeof(r->dest), "%s", dest);
			r->is_name = f->is_name;
			r->proto = f->proto;
			r->ev = *f;
			r->sample = f;
		} else {
			r->ev.count += f->count;
			if (f->first_s < r->ev.first_s)
				r->ev.first_s = f->first_s;
			if (f->last_s > r->ev.last_s)
				r->ev.last_s = f->last_s;
			if (f->boots > r->ev.boots)
				r->ev.boots = f->boots;
		}
		bool dup = false;
		for (size_t k = 0; k < r->n_ports; k++)
			dup |= r->ports[k] == f->port;
		if (!dup)
			r->ports[r->n_ports++] = f->port;
	}

	text_add(t,
		 "# Suggested by `carwall policy suggest` for app %s from the flow inventory:\n"
		 "# a proposal to review (and sign), never applied by itself.\n",
		 app);
	if (s->base)
		text_add(t, "# Base: %s\n", s->base_path);
	if (s->diff) {
		const struct policy_app *pa = s->base_has_app ? &s->base->apps[s->base_app] : NULL;

		if (names && !s->base->n_resolvers)
			return -ENOENT; /* hostname rules need the base's `resolvers:` */
		for (size_t k = 0; k < n_rules; k++)
			n_added += write_rule(s, items, &rules[k], "");
		if (n_added)
			text_add(t,
				 "# The rules to add to it, each with its evidence: apply with `patch "
				 "%s`,\n# then `carwall policy check` and `carwall policy replay` it.\n",
				 s->base_path);
		else
			text_add(t, "# Nothing to add: the base allows every flow proposed.\n");
		if (pa && (pa->audit_set ? pa->audit : s->base->audit))
			text_add(t, "# App %s is in audit mode in the base: set `audit: false` to "
				    "enforce.\n",
				 app);
		goto apart;
	}
	text_add(t, "version: 1\n");
	if (names) {
		char a[INET6_ADDRSTRLEN];

		if (!s->n_resolvers)
			return -ENOENT;
		text_add(t, "resolvers: [");
		for (size_t i = 0; i < s->n_resolvers; i++) {
			addr_text(s->resolvers[i].family, s->resolvers[i].addr, a, sizeof(a));
			text_add(t, "%s\"%s\"", i ? ", " : "", a);
		}
		text_add(t, "]\n");
		if (s->base && s->base->dns.loc.line)
			text_add(
			    t,
			    "dns: {min-ttl: %u, max-ttl: %u, grace: %u, max-learned-per-app: %u}\n",
			    s->base->dns.min_ttl_s, s->base->dns.max_ttl_s, s->base->dns.grace_s,
			    s->base->dns.max_learned_per_app);
	}
	text_add(t, "apps:\n  %s:\n", app);
	if (s->base_has_app) {
		const struct policy_app *pa = &s->base->apps[s->base_app];

		if (pa->cgroup_explicit)
			text_add(t, "    cgroup: \"%s\"\n", pa->cgroup);
		else if (pa->n_cgroups == 1)
			text_add(t, "    template: %s\n", policy_template_name(pa->template));
	}
	text_add(t, "    allow:%s\n", n_rules ? "" : " []");
	for (size_t k = 0; k < n_rules; k++)
		write_rule(s, t, &rules[k], "      ");

apart:
	for (size_t i = 0; i < s->n_flows; i++)
		n_apart += s->flows[i].once;
	if (n_apart) {
		text_add(t, "%s# Seen once, not proposed (review: add a rule if the app needs it):\n",
			 s->diff ? "" : "\n");
		for (size_t i = 0; i < s->n_flows; i++) {
			const struct seen_flow *f = &s->flows[i];

			if (!f->once)
				continue;
			flows_format_addr_port(f->first_rec, ap, sizeof(ap));
			evidence_text(f, ev, sizeof(ev));
			text_add(t, "#   %s%s%s: %s\n", f->is_name ? f->dest : "",
				 f->is_name ? " " : "", ap, ev);
		}
	}
	if (s->base_has_app) {
		const struct policy_app *pa = &s->base->apps[s->base_app];
		bool header = false;

		for (size_t k = 0; k < pa->n_rules; k++) {
			bool used = false;

			/* Used: some allowed record names this rule (the base is the policy in
			 * force). */
			for (size_t i = 0; i < s->n_flows && !used; i++)
				used = s->flows[i].first_rec->verdict == INVENTORY_ALLOWED &&
				       s->flows[i].first_rec->rule == (int64_t)pa->rules[k].index;
			if (used)
				continue;
			if (!header)
				text_add(t, "%s# Rules of the base no recorded flow used (kept):\n",
					 s->diff ? "" : "\n");
			header = true;
			text_add(t, "#   %s:%u:%u\n", s->base_path, pa->rules[k].loc.line,
				 pa->rules[k].loc.column);
		}
	}
	*ret_names = names;
	return t->oom ? -ENOMEM : 0;
}

struct suggest_opts {
	const char *base;
};

static int suggest_extra(int opt, const char *arg, void *userdata)
{
	struct suggest_opts *o = userdata;

	if (opt != 'B')
		return -EINVAL;
	o->base = arg;
	return 0;
}

static void suggest_usage(FILE *f)
{
	fputs("Usage: carwall policy suggest --app ID [--since DURATION] [--base POLICY]\n"
	      "                              [--state-dir DIR | --inventory FILE] [--json]\n"
	      "\n"
	      "A policy for app ID allowing what the flow inventory saw it do: host-name rules\n"
	      "where a name is known (a wildcard only for several hosts of one registrable\n"
	      "domain), host addresses elsewhere, the ports and protocols seen; each rule with\n"
	      "its evidence as a comment. Flows seen once and refused flows are listed apart.\n"
	      "With --base, a unified diff against POLICY that `patch POLICY` applies: the rules\n"
	      "the base does not allow yet, added to the app's allow (or a new app), comments\n"
	      "before it. A proposal: review it, check it (carwall policy check), replay it\n"
	      "(carwall policy replay), sign it.\n",
	      f);
}

int cmd_policy_suggest(struct cli *c, int argc, char **argv)
{
	static const struct option extra[] = {{"base", required_argument, NULL, 'B'}};
	struct suggest s = {.c = c};
	struct suggest_opts so = {};
	struct flows_source src = {};
	struct flows_filter f = {};
	struct inventory *inv = NULL;
	struct text t = {}, items = {};
	struct policy_error perr = {};
	struct policy *check = NULL;
	char *base_text = NULL, *patched = NULL, *diff = NULL;
	size_t base_size = 0;
	struct policy_maps *check_maps = NULL;
	char reason[1024] = "";
	bool names = false;
	int i, r;

	i = flows_parse_options(c, argc, argv, &src, &f, extra, ARRAY_SIZE(extra), suggest_extra,
				&so, suggest_usage);
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc || !f.app) {
		suggest_usage(stderr);
		return EXIT_USAGE;
	}
	if (f.has_verdict) {
		fprintf(stderr, "carwall policy suggest: --verdict is not an option here\n");
		return EXIT_USAGE;
	}
	if (so.base) {
		s.base_path = so.base;
		s.diff = true;
		/* Read once: the diff edits the very bytes that were parsed. */
		r = read_file_limited(so.base, POLICY_MAX_FILE_BYTES, &base_text, &base_size);
		if (r < 0)
			return cli_fail(c, "cannot read %s: %s", so.base, strerror(-r));
		r = policy_parse_buffer(so.base, base_text, base_size, &s.base, &perr);
		if (r < 0) {
			free(base_text);
			policy_error_format(&perr, reason, sizeof(reason));
			return cli_fail(c, "%s", reason);
		}
		r = policy_compile(s.base, 0, &s.base_maps, reason, sizeof(reason));
		if (r < 0) {
			free(base_text);
			policy_free(s.base);
			return cli_fail(c, "%s", reason[0] ? reason : strerror(-r));
		}
		s.base_has_app = explain_find_app(s.base, f.app, &s.base_app) == 0;
		s.n_resolvers = s.base->n_resolvers;
		memcpy(s.resolvers, s.base->resolvers, s.n_resolvers * sizeof(s.resolvers[0]));
	}
	r = flows_source_load(&src, &inv, reason, sizeof(reason));
	if (r < 0) {
		r = cli_fail(c, "cannot read the flow inventory: %s",
			     reason[0] ? reason : strerror(-r));
		goto out;
	}
	for (size_t k = 0; k < inventory_count(inv); k++) {
		const struct inventory_record *rec = inventory_get(inv, k);

		if (!flows_filter_match(&f, rec))
			continue;
		/* Resolvers: without a base, where the app sent DNS. */
		if (!so.base && rec->port == 53 && !rec->host[0] &&
		    !is_resolver(&s, rec->family, rec->addr) &&
		    s.n_resolvers < ARRAY_SIZE(s.resolvers)) {
			s.resolvers[s.n_resolvers].family = rec->family;
			memcpy(s.resolvers[s.n_resolvers].addr, rec->addr, 16);
			s.n_resolvers++;
		}
	}
	/* The flows that went out (allowed, audited); the refused ones are listed apart. */
	for (size_t k = 0; k < inventory_count(inv); k++) {
		const struct inventory_record *rec = inventory_get(inv, k);

		if (!flows_filter_match(&f, rec) || rec->verdict == INVENTORY_REFUSED)
			continue;
		r = add_flow(&s, rec);
		if (r < 0) {
			r = cli_fail(c, "out of memory");
			goto out;
		}
	}
	r = suggest_build(&s, f.app, &t, &items, &names);
	if (r == -ENOENT) {
		r = cli_fail(c, s.diff ? "names were seen but the base has no `resolvers:`: add "
					 "the app's resolver there first"
				       : "names were seen but no resolver is known: give --base "
					 "with `resolvers:`");
		goto out;
	}
	if (r < 0) {
		r = cli_fail(c, "out of memory");
		goto out;
	}
	/* Refused flows: apart, for review. */
	for (size_t k = 0, header = 0; k < inventory_count(inv); k++) {
		const struct inventory_record *rec = inventory_get(inv, k);
		char ap[INET6_ADDRSTRLEN + 16];

		if (!flows_filter_match(&f, rec) || rec->verdict != INVENTORY_REFUSED)
			continue;
		if (!header++)
			text_add(&t, "%s# Refused by the policy in force, not proposed:\n",
				 s.diff ? "" : "\n");
		flows_format_addr_port(rec, ap, sizeof(ap));
		text_add(&t, "#   %s%s%s: %llu flows\n", rec->host, rec->host[0] ? " " : "", ap,
			 (unsigned long long)rec->count);
	}
	if (t.oom || items.oom) {
		r = cli_fail(c, "out of memory");
		goto out;
	}
	if (s.diff) {
		char to[PATH_MAX + 16];

		snprintf(to, sizeof(to), "%s.suggested", so.base);
		r = policy_edit_add_rules(s.base, base_text, base_size, f.app,
					  items.s ? items.s : "", so.base, to, &patched, &diff,
					  reason, sizeof(reason));
		if (r < 0) {
			r = cli_fail(c, "cannot write the suggestion as a diff: %s",
				     reason[0] ? reason : strerror(-r));
			goto out;
		}
	}
	/* Never print what `policy check` would refuse (with --base: the patched base). */
	if (s.diff)
		r = policy_parse_buffer(so.base, patched, strlen(patched), &check, &perr);
	else
		r = policy_parse_buffer("suggestion", t.s, t.len, &check, &perr);
	if (r >= 0)
		r = policy_compile(check, 0, &check_maps, reason, sizeof(reason));
	else
		policy_error_format(&perr, reason, sizeof(reason));
	if (r < 0) {
		r = cli_fail(c, "the suggestion is not a valid policy (a bug): %s", reason);
		goto out;
	}
	if (c->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "app", json_object_new_string(f.app));
		json_object_object_add(o, "rules", json_object_new_int64((int64_t)check->n_rules));
		if (s.diff) {
			json_object_object_add(o, "base", json_object_new_string(so.base));
			json_object_object_add(o, "comments", json_object_new_string(t.s));
			json_object_object_add(o, "diff", json_object_new_string(diff));
			json_object_object_add(o, "policy", json_object_new_string(patched));
		} else {
			json_object_object_add(o, "policy", json_object_new_string(t.s));
		}
		cli_print_json(o);
		json_object_put(o);
	} else {
		fputs(t.s, stdout);
		if (s.diff)
			fputs(diff, stdout);
	}
	r = EXIT_SUCCESS;
out:
	policy_maps_free(check_maps);
	policy_free(check);
	free(t.s);
	free(items.s);
	free(patched);
	free(diff);
	free(base_text);
	free(s.flows);
	inventory_free(inv);
	policy_maps_free(s.base_maps);
	policy_free(s.base);
	return r;
}

/* ---- replay -------------------------------------------------------------------------------- */

struct replay_opts {
	const char *policy;
};

static int replay_extra(int opt, const char *arg, void *userdata)
{
	struct replay_opts *o = userdata;

	if (opt != 'P')
		return -EINVAL;
	o->policy = arg;
	return 0;
}

static void replay_usage(FILE *f)
{
	fputs("Usage: carwall policy replay --policy FILE [--app ID] [--since DURATION]\n"
	      "                             [--state-dir DIR | --inventory FILE] [--json]\n"
	      "\n"
	      "Judge every recorded flow (carwall flows) by the policy FILE, as the kernel would\n"
	      "(by address, then by the name it was learned for), and list, per app, those it\n"
	      "refuses. Exit code 0: it refuses none; 3: it refuses some.\n",
	      f);
}

/* The verdict of `p` on a recorded flow; -ENOENT when its app is not in p. */
static int replay_judge(const struct policy *p, const struct policy_maps *m,
			const struct inventory_record *rec, bool *ret_allowed, size_t *ret_rule)
{
	struct explain_dest d = {};
	struct explain_flow fl;
	size_t app;
	int r;

	r = explain_find_app(p, rec->app, &app);
	if (r < 0)
		return r;
	d.family = rec->family;
	memcpy(d.addr, rec->addr, sizeof(d.addr));
	r = explain_flow(p, m, app, &d, rec->proto, rec->port, &fl);
	if (r < 0)
		return r;
	/* As cw_judge_name(): an app with names reaches the trusted resolvers on port 53. */
	if (!fl.allowed && rec->port == 53 && policy_app_has_hosts(p, &p->apps[app]))
		for (size_t i = 0; i < p->n_resolvers; i++)
			if (p->resolvers[i].family == rec->family &&
			    !memcmp(p->resolvers[i].addr, rec->addr,
				    rec->family == AF_INET ? 4 : 16)) {
				*ret_allowed = true;
				*ret_rule = 0;
				return 0;
			}
	if (!fl.allowed && rec->host[0]) {
		memset(&d, 0, sizeof(d));
		d.is_name = true;
		snprintf(d.name, sizeof(d.name), "%s",
			 strncmp(rec->host, "*.", 2) ? rec->host : rec->host + 2);
		/* A wildcard's record: a name strictly below it, as it was learned. */
		if (!strncmp(rec->host, "*.", 2)) {
			char below[POLICY_MAX_HOST_LEN + 1];

			if (snprintf(below, sizeof(below), "x.%s", d.name) < (int)sizeof(below))
				snprintf(d.name, sizeof(d.name), "%s", below);
		}
		r = explain_flow(p, m, app, &d, rec->proto, rec->port, &fl);
		if (r < 0)
			return r;
	}
	*ret_allowed = fl.allowed;
	*ret_rule = fl.allowed && fl.match.rule ? fl.match.rule->index : 0;
	return 0;
}

int cmd_policy_replay(struct cli *c, int argc, char **argv)
{
	static const struct option extra[] = {{"policy", required_argument, NULL, 'P'}};
	struct replay_opts ro = {};
	struct flows_source src = {};
	struct flows_filter f = {};
	struct inventory *inv = NULL;
	struct policy *p = NULL;
	struct policy_maps *m = NULL;
	struct policy_error perr = {};
	struct json_object *o = NULL, *apps = NULL;
	char reason[1024] = "";
	size_t n_refused = 0, n_allowed = 0, n_unmanaged = 0;
	int i, r;

	i = flows_parse_options(c, argc, argv, &src, &f, extra, ARRAY_SIZE(extra), replay_extra,
				&ro, replay_usage);
	if (i < 0)
		return EXIT_USAGE;
	if (i < argc || !ro.policy) {
		replay_usage(stderr);
		return EXIT_USAGE;
	}
	r = policy_parse_file(ro.policy, &p, &perr);
	if (r < 0) {
		policy_error_format(&perr, reason, sizeof(reason));
		return cli_fail(c, "%s", reason);
	}
	r = policy_compile(p, 0, &m, reason, sizeof(reason));
	if (r < 0) {
		policy_free(p);
		return cli_fail(c, "%s", reason[0] ? reason : strerror(-r));
	}
	r = flows_source_load(&src, &inv, reason, sizeof(reason));
	if (r < 0) {
		r = cli_fail(c, "cannot read the flow inventory: %s",
			     reason[0] ? reason : strerror(-r));
		goto out;
	}
	o = json_object_new_object();
	apps = json_object_new_object();
	for (size_t k = 0; k < inventory_count(inv); k++) {
		const struct inventory_record *rec = inventory_get(inv, k);
		struct json_object *app, *list, *j;
		bool allowed = false;
		size_t rule = 0;
		char ap[INET6_ADDRSTRLEN + 16];

		if (!flows_filter_match(&f, rec))
			continue;
		r = replay_judge(p, m, rec, &allowed, &rule);
		if (r == -ENOENT) {
			n_unmanaged++; /* not confined by that policy at all */
			continue;
		}
		if (r < 0) {
			r = cli_fail(c, "cannot judge a flow of %s: %s", rec->app, strerror(-r));
			goto out;
		}
		if (!json_object_object_get_ex(apps, rec->app, &app)) {
			app = json_object_new_object();
			json_object_object_add(app, "refused", json_object_new_array());
			json_object_object_add(app, "allowed", json_object_new_int64(0));
			json_object_object_add(apps, rec->app, app);
		}
		if (allowed) {
			n_allowed++;
			json_object_object_get_ex(app, "allowed", &j);
			json_object_set_int64(j, json_object_get_int64(j) + 1);
			continue;
		}
		n_refused++;
		json_object_object_get_ex(app, "refused", &list);
		json_object_array_add(list, inventory_record_to_json(rec));
		if (!c->json) {
			flows_format_addr_port(rec, ap, sizeof(ap));
			printf("%s: refused: %s%s%s (%s now, %llu flows)\n", rec->app, rec->host,
			       rec->host[0] ? " " : "", ap, inventory_verdict_name(rec->verdict),
			       (unsigned long long)rec->count);
		}
	}
	if (c->json) {
		json_object_object_add(o, "policy", json_object_new_string(ro.policy));
		json_object_object_add(o, "apps", apps);
		apps = NULL;
		json_object_object_add(o, "refused", json_object_new_int64((int64_t)n_refused));
		json_object_object_add(o, "allowed", json_object_new_int64((int64_t)n_allowed));
		json_object_object_add(o, "not_in_policy",
				       json_object_new_int64((int64_t)n_unmanaged));
		cli_print_json(o);
	} else {
		printf("%s: %zu recorded flows refused, %zu allowed%s\n", ro.policy, n_refused,
		       n_allowed, n_unmanaged ? " (flows of apps it does not name left out)" : "");
	}
	r = n_refused ? REPLAY_EXIT_REFUSED : EXIT_SUCCESS;
out:
	json_object_put(apps);
	json_object_put(o);
	inventory_free(inv);
	policy_maps_free(m);
	policy_free(p);
	return r;
}
