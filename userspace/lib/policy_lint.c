// SPDX-License-Identifier: GPL-2.0-only
#include "policy_lint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpsl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

/* A range a destination is compared with. */
struct lint_range {
	int family;
	uint8_t addr[16];
	uint8_t len;
	const char *name;
	const char *why; /* for translation ranges */
};

static const struct lint_range translation[] = {
	{ AF_INET6, { 0, 0x64, 0xff, 0x9b }, 96, "NAT64 64:ff9b::/96",
	  "through a NAT64 gateway its addresses reach the IPv4 hosts they embed" },
	{ AF_INET6, { 0, 0x64, 0xff, 0x9b, 0, 1 }, 48, "local NAT64 64:ff9b:1::/48",
	  "through a NAT64 gateway its addresses reach the IPv4 hosts they embed" },
	{ AF_INET6, { 0x20, 0x02 }, 16, "6to4 2002::/16",
	  "its addresses are tunnelled to the IPv4 hosts they embed" },
	{ AF_INET6, { 0x20, 0x01, 0, 0 }, 32, "Teredo 2001::/32",
	  "its addresses are tunnelled through Teredo to IPv4 hosts" },
};

static const struct lint_range local[] = {
	{ AF_INET, { 10 }, 8, "the private range 10.0.0.0/8", NULL },
	{ AF_INET, { 172, 16 }, 12, "the private range 172.16.0.0/12", NULL },
	{ AF_INET, { 192, 168 }, 16, "the private range 192.168.0.0/16", NULL },
	{ AF_INET, { 169, 254 }, 16, "the link-local range 169.254.0.0/16", NULL },
	{ AF_INET6, { 0xfc }, 7, "the unique local range fc00::/7", NULL },
	{ AF_INET6, { 0xfe, 0x80 }, 10, "the link-local range fe80::/10", NULL },
};

struct linter {
	const struct policy *policy;
	struct policy_lint *out;
};

static int warn(struct linter *l, enum policy_lint_kind kind, struct policy_loc loc,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int warn(struct linter *l, enum policy_lint_kind kind, struct policy_loc loc,
		const char *fmt, ...)
{
	struct policy_lint *o = l->out;
	struct policy_lint_warning *w;
	va_list ap;

	o->n_total++;
	if (o->n_warnings >= POLICY_LINT_MAX_WARNINGS)
		return 0;
	w = &o->warnings[o->n_warnings++];
	*w = (struct policy_lint_warning){ .kind = kind, .loc = loc };
	va_start(ap, fmt);
	vsnprintf(w->reason, sizeof(w->reason), fmt, ap);
	va_end(ap);
	return 0;
}

static bool overlaps(const struct policy_prefix *p, const struct lint_range *r)
{
	struct policy_prefix q = { .family = r->family, .len = r->len };

	memcpy(q.addr, r->addr, sizeof(q.addr));
	return policy_prefix_overlaps(p, &q);
}

static void prefix_text(const struct policy_prefix *p, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(p->family, p->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, size, "%s/%u", a, p->len);
}

/* What a prefix says on its own: every address, or a translation range. */
static void lint_prefix(struct linter *l, const struct policy_prefix *p, struct policy_loc loc)
{
	char text[INET6_ADDRSTRLEN + 8];

	prefix_text(p, text, sizeof(text));
	if (p->len == 0) {
		warn(l, POLICY_LINT_EVERY_ADDRESS, loc, "%s is every %s address", text,
		     p->family == AF_INET ? "IPv4" : "IPv6 (and, through NAT64, every IPv4)");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(translation); i++)
		if (overlaps(p, &translation[i])) {
			warn(l, POLICY_LINT_TRANSLATION, loc, "%s %s %s: %s", text,
			     p->len == translation[i].len ? "is" : "overlaps", translation[i].name,
			     translation[i].why);
			return;
		}
}

/* What a host name says on its own: a wildcard on a public suffix. */
static void lint_host(struct linter *l, const struct policy_host *h, const psl_ctx_t *psl)
{
	if (!h->wildcard)
		return;
	if (!strchr(h->name, '.'))
		warn(l, POLICY_LINT_PUBLIC_SUFFIX, h->loc,
		     "'*.%s' is a wildcard on a top-level domain: names below it belong to anyone",
		     h->name);
	else if (!psl || psl_is_public_suffix2(psl, h->name, PSL_TYPE_ANY))
		warn(l, POLICY_LINT_PUBLIC_SUFFIX, h->loc,
		     "'*.%s' is a wildcard on a public suffix%s: names below it belong to anyone",
		     h->name, psl ? "" : " (no public suffix list to tell otherwise)");
}

/* A prefix in a rule without ports: every service of local hosts. */
static void lint_local(struct linter *l, const struct policy_prefix *p,
		       const struct policy_dest *d, const struct policy_set *set)
{
	char text[INET6_ADDRSTRLEN + 8];

	if (p->len == 0)
		return; /* said already, and more */
	prefix_text(p, text, sizeof(text));
	for (size_t i = 0; i < ARRAY_SIZE(local); i++) {
		if (!overlaps(p, &local[i]))
			continue;
		if (set)
			warn(l, POLICY_LINT_LOCAL_ANY_PORT, d->loc,
			     "set '%s' brings %s (line %u, column %u) into a rule without 'ports': "
			     "every port of %s; name the ports",
			     set->name, text, p->loc.line, p->loc.column, local[i].name);
		else
			warn(l, POLICY_LINT_LOCAL_ANY_PORT, d->loc,
			     "%s in a rule without 'ports': every port of %s; name the ports", text,
			     local[i].name);
		return;
	}
}

/* Data residency: a rule's regions against the home region (policies/README.md). */
static void lint_residency(struct linter *l, const struct policy_app *app,
			   const struct policy_rule *rule)
{
	const struct policy *p = l->policy;

	if (!p->residency.home.name[0])
		return;
	for (size_t j = 0; j < rule->n_to; j++) {
		const struct policy_dest *d = &rule->to[j];
		const char *region = policy_dest_region(p, rule, d);

		if (!rule->cross_border && region && policy_region_is_home(p, region) == 0) {
			warn(l, POLICY_LINT_CROSS_BORDER, d->loc,
			     "app '%s': this destination is in region '%s', outside the home region "
			     "'%s', and the rule has no 'cross-border' justification",
			     app->id, region, p->residency.home.name);
			return;
		}
		if (rule->cross_border && p->residency.home_only && !d->is_set && !d->is_host &&
		    d->prefix.len == 0) {
			warn(l, POLICY_LINT_HOME_ONLY_OPEN, d->loc,
			     "app '%s': a cross-border rule to every address is never checked by "
			     "home-only residency",
			     app->id);
			return;
		}
	}
}

/* A switch the driver sees that changes nothing: none of its purposes is any rule's. */
static void lint_consent(struct linter *l)
{
	const struct policy *p = l->policy;
	uint32_t served = 0;

	for (size_t a = 0; a < p->n_apps; a++)
		for (size_t i = 0; i < p->apps[a].n_rules; i++)
			if (p->apps[a].rules[i].purpose >= 0)
				served |= 1u << p->apps[a].rules[i].purpose;
	for (size_t s = 0; s < p->consent.n_switches; s++) {
		const struct policy_switch *sw = &p->consent.switches[s];

		if (!(sw->purposes & served))
			warn(l, POLICY_LINT_SWITCH_NO_EFFECT, sw->loc,
			     "switch '%s' covers no purpose that a rule serves: turning it off "
			     "refuses nothing",
			     sw->name);
	}
}

int policy_lint(const struct policy *p, struct policy_lint **ret)
{
	_cleanup_free_ struct policy_lint *out = NULL;
	const psl_ctx_t *psl = psl_builtin();
	struct linter l = { .policy = p };

	out = calloc(1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	out->warnings = calloc(POLICY_LINT_MAX_WARNINGS, sizeof(*out->warnings));
	if (!out->warnings)
		return -ENOMEM;
	l.out = out;

	for (size_t s = 0; s < p->n_sets; s++) {
		const struct policy_set *set = &p->sets[s];

		for (size_t k = 0; k < set->n_prefixes; k++)
			lint_prefix(&l, &set->prefixes[k], set->prefixes[k].loc);
		for (size_t k = 0; k < set->n_hosts; k++)
			lint_host(&l, &set->hosts[k], psl);
	}
	for (size_t a = 0; a < p->n_apps; a++)
		for (size_t i = 0; i < p->apps[a].n_rules; i++) {
			const struct policy_rule *rule = &p->apps[a].rules[i];

			lint_residency(&l, &p->apps[a], rule);
			for (size_t j = 0; j < rule->n_to; j++) {
				const struct policy_dest *d = &rule->to[j];
				const struct policy_set *set = d->is_set ? &p->sets[d->set] : NULL;

				if (d->is_host) {
					lint_host(&l, &d->host, psl);
					continue;
				}
				if (!set) {
					lint_prefix(&l, &d->prefix, d->loc);
					if (!rule->n_ports)
						lint_local(&l, &d->prefix, d, NULL);
					continue;
				}
				for (size_t k = 0; k < set->n_prefixes && !rule->n_ports; k++)
					lint_local(&l, &set->prefixes[k], d, set);
			}
		}
	lint_consent(&l);
	*ret = TAKE_PTR(out);
	return 0;
}

void policy_lint_free(struct policy_lint *l)
{
	if (!l)
		return;
	free(l->warnings);
	free(l);
}

const char *policy_lint_kind_name(enum policy_lint_kind kind)
{
	switch (kind) {
	case POLICY_LINT_EVERY_ADDRESS:
		return "every-address";
	case POLICY_LINT_TRANSLATION:
		return "translation-range";
	case POLICY_LINT_PUBLIC_SUFFIX:
		return "public-suffix-wildcard";
	case POLICY_LINT_LOCAL_ANY_PORT:
		return "local-range-any-port";
	case POLICY_LINT_CROSS_BORDER:
		return "cross-border-undeclared";
	case POLICY_LINT_HOME_ONLY_OPEN:
		return "cross-border-every-address";
	case POLICY_LINT_SWITCH_NO_EFFECT:
		return "switch-without-effect";
	}
	return "unknown";
}
