// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the policy parser: any input must give either a policy or an error with a
 * location inside the input, never a crash, a leak or undefined behaviour. A valid policy's host
 * names are canonical (they parse again to themselves), its resolvers and dns: within their
 * limits, and its warnings (policy_lint()) bounded, each with a location.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_lint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A host name as stored parses again to itself. */
static void check_host(const struct policy_host *h)
{
	char text[POLICY_MAX_HOST_LEN + 3], again[POLICY_MAX_HOST_LEN + 1];
	bool wildcard;

	snprintf(text, sizeof(text), "%s%s", h->wildcard ? "*." : "", h->name);
	if (policy_host_parse(text, again, &wildcard, NULL, 0) < 0 || wildcard != h->wildcard ||
	    strcmp(again, h->name) || !h->loc.line)
		abort();
}

static void check_hosts(const struct policy *p)
{
	for (size_t s = 0; s < p->n_sets; s++)
		for (size_t k = 0; k < p->sets[s].n_hosts; k++)
			check_host(&p->sets[s].hosts[k]);
	for (size_t a = 0; a < p->n_apps; a++)
		for (size_t i = 0; i < p->apps[a].n_rules; i++)
			for (size_t j = 0; j < p->apps[a].rules[i].n_to; j++)
				if (p->apps[a].rules[i].to[j].is_host)
					check_host(&p->apps[a].rules[i].to[j].host);
	if (p->n_resolvers == 0)
		for (size_t a = 0; a < p->n_apps; a++)
			if (policy_app_has_hosts(p, &p->apps[a]))
				abort(); /* names need resolvers */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy *p = NULL;
	struct policy_error e;
	char msg[600];
	int r;

	r = policy_parse_buffer("fuzz.yaml", data, size, &p, &e);
	if (r < 0) {
		/* A failed parse returns nothing, and its error must format. */
		if (p || policy_error_format(&e, msg, sizeof(msg)) < 0 ||
		    memchr(e.reason, '\0', sizeof(e.reason)) == NULL || strchr(e.reason, '\n'))
			abort();
		return 0;
	}
	if (!p)
		abort();
	check_hosts(p);
	if (p->n_resolvers > POLICY_MAX_RESOLVERS || p->dns.min_ttl_s > p->dns.max_ttl_s ||
	    p->dns.max_ttl_s > POLICY_DNS_TTL_LIMIT || p->dns.grace_s > POLICY_DNS_GRACE_LIMIT ||
	    !p->dns.max_learned_per_app ||
	    p->dns.max_learned_per_app > POLICY_DNS_MAX_LEARNED_LIMIT)
		abort();
	struct policy_lint *l = NULL;
	if (policy_lint(p, &l) < 0 || l->n_warnings > POLICY_LINT_MAX_WARNINGS ||
	    l->n_total < l->n_warnings)
		abort();
	for (size_t i = 0; i < l->n_warnings; i++)
		if (!l->warnings[i].loc.line || !memchr(l->warnings[i].reason, '\0', 256))
			abort();
	policy_lint_free(l);
	/* Every set reference must have been resolved. */
	for (size_t a = 0; a < p->n_apps; a++)
		for (size_t i = 0; i < p->apps[a].n_rules; i++)
			for (size_t j = 0; j < p->apps[a].rules[i].n_to; j++)
				if (p->apps[a].rules[i].to[j].is_set &&
				    p->apps[a].rules[i].to[j].set >= p->n_sets)
					abort();
	policy_free(p);
	return 0;
}
