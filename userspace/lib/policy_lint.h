/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `carwall policy check` warnings: destinations that are valid but open far more than they seem
 * to say. Pure computation over a parsed policy (and libpsl's built-in public suffix list).
 *
 *   - every address: 0.0.0.0/0, ::/0;
 *   - translation and tunnel ranges, whose addresses lead to IPv4 hosts: NAT64 64:ff9b::/96,
 *     6to4 2002::/16, Teredo 2001::/32 (a prefix overlapping one);
 *   - a wildcard on a public suffix ("*.com", "*.cloudfront.net", any single label): names
 *     below it belong to anyone;
 *   - private and link-local ranges (10/8, 172.16/12, 192.168/16, 169.254/16, fc00::/7,
 *     fe80::/10) in a rule without `ports`: every service of the local hosts;
 *   - data residency: a rule declared outside the home region without `cross-border` (an
 *     error under `residency: strict`), and under home-only, a cross-border rule to every
 *     address (0.0.0.0/0, ::/0), which home-only then never checks.
 *   - a consent switch that covers no purpose any rule serves: turning it off refuses nothing.
 *
 * A set entry is warned about once, at the entry, for what it says alone; the port warning is
 * given at each rule's `to` element that brings the range in without a port.
 */
#pragma once

#include <stddef.h>

#include "policy.h"

/* Warnings reported at most (the rest are counted). */
#define POLICY_LINT_MAX_WARNINGS 1000

enum policy_lint_kind {
	POLICY_LINT_EVERY_ADDRESS = 1,
	POLICY_LINT_TRANSLATION,
	POLICY_LINT_PUBLIC_SUFFIX,
	POLICY_LINT_LOCAL_ANY_PORT,
	POLICY_LINT_CROSS_BORDER,   /* a rule abroad without `cross-border` (not strict) */
	POLICY_LINT_HOME_ONLY_OPEN, /* home-only: a cross-border rule to every address */
	POLICY_LINT_SWITCH_NO_EFFECT,
};

struct policy_lint_warning {
	enum policy_lint_kind kind;
	struct policy_loc loc;
	char reason[256]; /* one line, no trailing period */
};

struct policy_lint {
	struct policy_lint_warning *warnings; /* in file order of the checks, at most the max */
	size_t n_warnings;
	size_t n_total; /* every warning found, reported or not */
};

/* Returns 0 and *ret (free with policy_lint_free(); n_total 0 when nothing to say), -ENOMEM. */
int policy_lint(const struct policy *p, struct policy_lint **ret);
void policy_lint_free(struct policy_lint *l);

/* Short names for enum policy_lint_kind ("every-address", ...), for JSON. */
const char *policy_lint_kind_name(enum policy_lint_kind kind);
