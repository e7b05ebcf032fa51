// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the policy parser: any input must give either a policy or an error with a
 * location inside the input, never a crash, a leak or undefined behaviour.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
