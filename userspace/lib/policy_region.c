// SPDX-License-Identifier: GPL-2.0-only
/*
 * Data residency of a policy: country codes, region groups and the checks of
 * `residency: strict` (policies/README.md, "Data residency").
 */
#include "policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* ISO 3166-1 alpha-2, the officially assigned codes, lower case, two letters each. */
static const char iso3166_assigned[] =
    "adaeafagaialamaoaqarasatauawaxazbabbbdbebfbgbhbibjblbmbnbobqbrbsbtbvbwbybzcacccdcfcgchci"
    "ckclcmcncocrcucvcwcxcycz"
    "dedjdkdmdodzeceeegehereseteu" /* "eu" is the built-in group, see below */
    "fifjfkfmfofrgagbgdgegfggghgiglgmgngpgqgrgsgtgugwgyhkhmhnhrhthuidieiliminioiqirisitje"
    "jmjojpkekgkhkikmknkpkrkwkykzlalblclilklrlsltlulvlymamcmdmemfmgmhmkmlmmmnmompmqmrmsmtmu"
    "mvmwmxmymznancnenfngninlnonpnrnunzompapepfpgphpkplpmpnprpsptpwpyqarerorsrurwsasbscsdse"
    "sgshsisjskslsmsnsosrssstsvsxsysztctdtftgthtjtktltmtntotrtttvtwtzuaugumusuyuzvavcvevgvi"
    "vnvuwfwsyeytzazmzw";

/* The built-in group "eu": the member states of the European Union. */
static const char *const eu_members[] = {
    "at", "be", "bg", "hr", "cy", "cz", "dk", "ee", "fi", "fr", "de", "gr", "hu", "ie",
    "it", "lv", "lt", "lu", "mt", "nl", "pl", "pt", "ro", "sk", "si", "es", "se",
};

bool policy_country_valid(const char *s)
{
	char c[3];

	if (!s || strlen(s) != 2)
		return false;
	c[0] = (char)(s[0] | 0x20);
	c[1] = (char)(s[1] | 0x20);
	c[2] = '\0';
	if (c[0] < 'a' || c[0] > 'z' || c[1] < 'a' || c[1] > 'z' || !strcmp(c, "eu"))
		return false;
	/* User-assigned: AA, QM-QZ, XA-XZ, ZZ. */
	if (!strcmp(c, "aa") || !strcmp(c, "zz") || c[0] == 'x' || (c[0] == 'q' && c[1] >= 'm'))
		return true;
	for (size_t i = 0; i + 1 < sizeof(iso3166_assigned); i += 2)
		if (iso3166_assigned[i] == c[0] && iso3166_assigned[i + 1] == c[1])
			return true;
	return false;
}

static const struct policy_region_group *find_group(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->residency.n_groups; i++)
		if (!strcmp(p->residency.groups[i].name, name))
			return &p->residency.groups[i];
	return NULL;
}

int policy_region_countries(const struct policy *p, const char *name, char (*ret)[3], size_t max,
			    size_t *ret_n)
{
	const struct policy_region_group *g;
	size_t n = 0;

	if (!strcmp(name, "eu")) {
		if (ARRAY_SIZE(eu_members) > max)
			return -E2BIG;
		for (size_t i = 0; i < ARRAY_SIZE(eu_members); i++)
			memcpy(ret[n++], eu_members[i], 3);
	} else if ((g = find_group(p, name))) {
		if (g->n_members > max)
			return -E2BIG;
		for (size_t i = 0; i < g->n_members; i++)
			memcpy(ret[n++], g->members[i], 3);
	} else if (policy_country_valid(name)) {
		if (max < 1)
			return -E2BIG;
		ret[n][0] = (char)(name[0] | 0x20);
		ret[n][1] = (char)(name[1] | 0x20);
		ret[n++][2] = '\0';
	} else {
		return -ENOENT;
	}
	*ret_n = n;
	return 0;
}

int policy_region_is_home(const struct policy *p, const char *name)
{
	char home[POLICY_MAX_GROUP_MEMBERS][3], region[POLICY_MAX_GROUP_MEMBERS][3];
	size_t n_home, n_region;
	int r;

	if (!p->residency.home.name[0])
		return -ENOENT;
	r = policy_region_countries(p, p->residency.home.name, home, ARRAY_SIZE(home), &n_home);
	if (r < 0)
		return r;
	r = policy_region_countries(p, name, region, ARRAY_SIZE(region), &n_region);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_region; i++) {
		bool found = false;

		for (size_t j = 0; j < n_home && !found; j++)
			found = !strcmp(region[i], home[j]);
		if (!found)
			return 0;
	}
	return 1;
}

const char *policy_dest_region(const struct policy *p, const struct policy_rule *rule,
			       const struct policy_dest *d)
{
	if (rule->region.name[0])
		return rule->region.name;
	if (d->is_set && d->set < p->n_sets && p->sets[d->set].region.name[0])
		return p->sets[d->set].region.name;
	return NULL;
}

static int check_fail(struct policy_error *e, struct policy_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int check_fail(struct policy_error *e, struct policy_loc loc, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		e->loc = loc;
		va_start(ap, fmt);
		vsnprintf(e->reason, sizeof(e->reason), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int check_known(const struct policy *p, const struct policy_region *region,
		       struct policy_error *e)
{
	char one[1][3];
	size_t n;

	if (!region->name[0] || !strcmp(region->name, "eu") || find_group(p, region->name) ||
	    policy_region_countries(p, region->name, one, 1, &n) == 0)
		return 0;
	return check_fail(e, region->loc,
			  "unknown region '%s': give an ISO 3166-1 alpha-2 country code, 'eu' or "
			  "a group of 'regions'",
			  region->name);
}

/* A rule's destinations under `residency: strict`, and its regions against the home region. */
static int check_rule(const struct policy *p, const struct policy_app *app,
		      const struct policy_rule *rule, struct policy_error *e)
{
	const struct policy_residency *res = &p->residency;

	for (size_t k = 0; k < rule->n_to; k++) {
		const struct policy_dest *d = &rule->to[k];
		const char *region;
		int home;

		if (d->is_set && rule->region.name[0] && p->sets[d->set].region.name[0] &&
		    strcmp(rule->region.name, p->sets[d->set].region.name))
			return check_fail(e, rule->region.loc,
					  "app '%s': the rule says region '%s', but set '%s' is in "
					  "region '%s'",
					  app->id, rule->region.name, p->sets[d->set].name,
					  p->sets[d->set].region.name);
		region = policy_dest_region(p, rule, d);
		if (!region || !res->home.name[0]) {
			if (res->strict)
				return check_fail(e, d->loc,
						  "app '%s': this destination has no region "
						  "(residency: strict): give the rule a 'region'%s",
						  app->id, d->is_set ? " or its set one" : "");
			continue;
		}
		home = policy_region_is_home(p, region);
		if (home < 0)
			return check_fail(e, rule->region.name[0] ? rule->region.loc : d->loc,
					  "region '%s' is unknown", region);
		if (!home && res->strict && !rule->cross_border)
			return check_fail(
			    e, rule->region.name[0] ? rule->region.loc : d->loc,
			    "app '%s': the rule goes to region '%s', outside the home "
			    "region '%s': it needs a 'cross-border' justification "
			    "(residency: strict)",
			    app->id, region, res->home.name);
	}
	return 0;
}

int policy_residency_check(const struct policy *p, struct policy_error *e)
{
	const struct policy_residency *res = &p->residency;
	int r;

	r = check_known(p, &res->home, e);
	if (r < 0)
		return r;
	if (res->strict && !res->home.name[0])
		return check_fail(e, res->strict_loc, "'residency: strict' needs a 'home-region'");
	if (res->home_only && !res->home.name[0])
		return check_fail(e, res->home_only_loc,
				  "'residency-enforce: home-only' needs a 'home-region'");
	for (size_t i = 0; i < p->n_sets; i++) {
		r = check_known(p, &p->sets[i].region, e);
		if (r < 0)
			return r;
	}
	for (size_t a = 0; a < p->n_apps; a++)
		for (size_t i = 0; i < p->apps[a].n_rules; i++) {
			const struct policy_rule *rule = &p->apps[a].rules[i];

			r = check_known(p, &rule->region, e);
			if (r < 0)
				return r;
			if (rule->cross_border && !res->home.name[0])
				return check_fail(e, rule->cross_border_loc,
						  "'cross-border' needs a top-level 'home-region'");
			r = check_rule(p, &p->apps[a], rule, e);
			if (r < 0)
				return r;
		}
	return 0;
}
