/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Policy format v1: reading a YAML policy (libyaml) into a validated in-memory policy.
 * The format is documented in policies/README.md.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Explicit limits, checked while parsing, before anything reaches a map. */
#define POLICY_MAX_FILE_BYTES (16u << 20)
#define POLICY_MAX_APPS 256
#define POLICY_MAX_SETS 1024
#define POLICY_MAX_SET_ENTRIES 65536
#define POLICY_MAX_RULES 131072	     /* all apps together */
#define POLICY_MAX_RULE_DESTS 65536  /* destinations in one rule's `to` */
#define POLICY_MAX_RULE_PORTS 64     /* entries in one rule's `ports` */
#define POLICY_MAX_ID_LEN 64	     /* app ids and set names */
#define POLICY_MAX_CGROUP_LEN 1024   /* an explicit cgroup path */
#define POLICY_MAX_NESTING 16	     /* YAML nesting depth */
#define POLICY_BUNDLE_MAX_VERSION (UINT64_C(1) << 53) /* `bundle.version`: 1..2^53 */
#define POLICY_MAX_HOST_LEN 253	     /* a host name in text, "*." included, no final dot */
#define POLICY_MAX_HOST_LABEL 63     /* bytes of one label of a host name */
#define POLICY_MAX_HOST_LABELS 32    /* labels of a host name: what the DNS parser hashes */
#define POLICY_MAX_RESOLVERS 8	     /* `resolvers:` entries (CW_MAX_RESOLVERS) */
#define POLICY_MAX_REGION_GROUPS 64  /* `regions:` groups (the built-in `eu` not counted) */
#define POLICY_MAX_GROUP_MEMBERS 256 /* countries of one `regions:` group */
#define POLICY_MAX_CROSS_BORDER_LEN 512 /* bytes of a rule's `cross-border:` justification */
#define POLICY_MAX_PURPOSES 31	     /* `consent.purposes` + `mandatory` (CW_MAX_PURPOSES) */
#define POLICY_MAX_SWITCHES 32	     /* `consent.switches` */
#define POLICY_MAX_CONSENT_NAME 32   /* a purpose or switch name: [a-z0-9-], letter first */

/* `dns:` tunables: defaults and accepted ranges (seconds, entries). */
#define POLICY_DNS_MIN_TTL_DEFAULT 30
#define POLICY_DNS_MAX_TTL_DEFAULT 3600
#define POLICY_DNS_GRACE_DEFAULT 60
#define POLICY_DNS_MAX_LEARNED_DEFAULT 1024
#define POLICY_DNS_TTL_LIMIT 604800	   /* min-ttl and max-ttl: 0..7 days */
#define POLICY_DNS_GRACE_LIMIT 3600	   /* grace: 0..1 hour */
#define POLICY_DNS_MAX_LEARNED_LIMIT 65536 /* max-learned-per-app: 1..65536 */

/*
 * AGL's app templates: applaunchd starts an app as `agl-app@<id>.service`,
 * `agl-app-web@<id>.service` or `agl-app-flutter@<id>.service`, each in its own slice under
 * system.slice. An app's `template:` names one; without it (and without `cgroup:`) the app may
 * run in any of the three.
 */
enum policy_template {
	POLICY_TEMPLATE_ANY = 0, /* no `template:` */
	POLICY_TEMPLATE_APP,	 /* agl-app@ */
	POLICY_TEMPLATE_WEB,	 /* agl-app-web@ */
	POLICY_TEMPLATE_FLUTTER, /* agl-app-flutter@ */
};
#define POLICY_AGL_TEMPLATES 3

/* The slice of each template (policy_agl_slices[t - 1]), relative to the cgroup root. */
extern const char *const policy_agl_slices[POLICY_AGL_TEMPLATES];

enum policy_proto {
	POLICY_PROTO_ANY = 0,
	POLICY_PROTO_TCP,
	POLICY_PROTO_UDP,
};

/* A place in the policy file, 1-based, as printed in `file:line:column: reason`. */
struct policy_loc {
	unsigned line;
	unsigned column;
};

struct policy_prefix {
	int family;	  /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network byte order; IPv4 uses addr[0..3]; host bits are zero */
	uint8_t len;	  /* prefix length: 0..32 or 0..128 */
	struct policy_loc loc;
};

/*
 * A host name ("tiles.oem.example") or a wildcard ("*.maps.oem.example": every name strictly
 * below maps.oem.example, not that name itself). ASCII only (IDNA names in their A-label form,
 * xn--...): letters, digits and '-', labels of 1 to 63 bytes, at least two labels.
 */
struct policy_host {
	char *name;    /* canonical: lowercase, no final dot; for a wildcard, without the "*." */
	bool wildcard; /* written "*.name" */
	struct policy_loc loc;
};

/*
 * A region (`region:`, `home-region:`): an ISO 3166-1 alpha-2 country code, stored lower case
 * ("cn"), or the name of a group of countries (`regions:`, or the built-in "eu"). name[0] == 0:
 * none declared.
 */
struct policy_region {
	char name[POLICY_MAX_ID_LEN + 1];
	struct policy_loc loc;
};

/* A `regions:` group: a name for a list of countries (lower-case alpha-2 codes). */
struct policy_region_group {
	char *name;
	char (*members)[3];
	size_t n_members;
	struct policy_loc loc;
};

/* Data residency (policies/README.md, "Data residency"). */
struct policy_residency {
	struct policy_region home; /* `home-region:` */
	struct policy_region_group *groups; /* `regions:` */
	size_t n_groups;
	bool strict;		    /* `residency: strict` */
	struct policy_loc strict_loc;
	bool home_only;		    /* `residency-enforce: home-only` */
	struct policy_loc home_only_loc;
};

struct policy_set {
	char *name;
	struct policy_region region; /* `region:` of a set written as a mapping */
	struct policy_prefix *prefixes;
	size_t n_prefixes;
	struct policy_host *hosts; /* the set's host names and wildcards */
	size_t n_hosts;
	struct policy_loc loc; /* of the set's name */
};

/* One element of a rule's `to`: an inline prefix, an inline host name, or a named set. */
struct policy_dest {
	bool is_set;
	bool is_host;
	size_t set;		     /* index into policy.sets, when is_set */
	struct policy_prefix prefix; /* when neither is_set nor is_host */
	struct policy_host host;     /* when is_host */
	struct policy_loc loc;
};

struct policy_port_range {
	uint16_t first; /* 1..65535 */
	uint16_t last;	/* first..65535 */
	struct policy_loc loc;
};

struct policy_rule {
	struct policy_dest *to;
	size_t n_to;
	struct policy_port_range *ports; /* n_ports == 0: any port */
	size_t n_ports;
	enum policy_proto proto; /* POLICY_PROTO_ANY when `proto` is absent or `any` */
	struct policy_region region; /* `region:` of the rule */
	char *cross_border;	     /* `cross-border:` justification; NULL: none */
	struct policy_loc cross_border_loc;
	size_t index;		 /* global rule index, in file order across all apps */
	struct policy_loc loc;	 /* of the rule's sequence item */
	/* `purpose:`: index into policy.consent.purposes, or -1 (none: never switched off). */
	int purpose;
	char *purpose_name; /* as written, until resolved at the end of parsing; then NULL */
	struct policy_loc purpose_loc;
};

/*
 * Where a collection is in the policy's text, from libyaml's marks (lines 1-based, columns
 * 1-based and counted in characters, as in messages): for tools that edit the file at the
 * places the parser found (`carwall policy suggest --base`), never with a parser of their own.
 */
struct policy_span {
	bool set;		       /* the collection is in the text */
	bool flow;		       /* flow style: [...] or {...} */
	struct policy_loc key;	       /* the key it is the value of */
	struct policy_loc start;       /* its first character: '[', '{', its first '-' or key */
	struct policy_loc end;	       /* flow style: just after its closing bracket */
	struct policy_loc content_end; /* just after the last node inside it; line 0: empty */
};

struct policy_app {
	char *id;
	/*
	 * The cgroups the app may run in, relative to the cgroup root, no leading '/': its
	 * explicit `cgroup`, or its template's, or (neither named) AGL's three templates' in the
	 * order app, web, flutter. `cgroup` is the first (AGL's agl-app@ one by default).
	 */
	char *cgroups[POLICY_AGL_TEMPLATES];
	size_t n_cgroups;
	char *cgroup;
	bool cgroup_explicit;
	enum policy_template template;
	struct policy_rule *rules;
	size_t n_rules;
	bool audit;	/* `audit:` of the app, when audit_set */
	bool audit_set;
	struct policy_loc loc; /* of the app's id */
	struct policy_span span;       /* the app's mapping */
	struct policy_span allow_span; /* its `allow` sequence */
};

/*
 * The optional top-level `bundle:` of a policy shipped as a signed bundle (userspace/lib/bundle.h):
 * what it is, which release, for which hardware, and when it may be installed.
 */
struct policy_bundle_meta {
	char id[POLICY_MAX_ID_LEN + 1];	    /* [A-Za-z0-9][A-Za-z0-9._-]* */
	uint64_t version;		    /* 1..POLICY_BUNDLE_MAX_VERSION */
	char target[POLICY_MAX_ID_LEN + 1]; /* hardware/model id, same charset as id */
	int64_t not_before;		    /* seconds since the epoch (UTC), inclusive */
	int64_t not_after;		    /* likewise, inclusive, later than not_before */
	struct policy_loc loc;		    /* of the `bundle` mapping */
	struct policy_loc target_loc, not_before_loc, not_after_loc, version_loc;
};

/* A trusted resolver (`resolvers:`): an address, port 53, UDP and TCP. */
struct policy_resolver {
	int family;	  /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network byte order; IPv4 uses addr[0..3] */
	struct policy_loc loc;
};

/* `dns:`: how learned addresses live (see bpf/carwall.h, struct cw_gen_info). */
struct policy_dns {
	uint32_t min_ttl_s;
	uint32_t max_ttl_s;
	uint32_t grace_s;
	uint32_t max_learned_per_app;
	struct policy_loc loc; /* of the `dns` mapping; line 0 when absent (the defaults) */
};

/*
 * `consent:`: the purposes rules serve, and the switches a driver sees. A switch only takes
 * permissions away: a flow stays allowed iff one of the rules allowing it has no purpose, or
 * one no switch that is off covers. Mandatory purposes are covered by no switch.
 */
enum policy_reset {
	POLICY_RESET_PERSISTENT = 0, /* `reset: persistent`: kept across restarts and reboots */
	POLICY_RESET_DRIVE,	     /* `reset: drive`: back to the default at each boot */
};

struct policy_purpose {
	char *name;
	bool mandatory; /* listed in `mandatory`: no switch may cover it */
	struct policy_loc loc;
};

struct policy_switch {
	char *name;
	uint32_t purposes; /* bit i: policy.consent.purposes[i] */
	bool default_on;
	enum policy_reset reset;
	struct policy_loc loc; /* of the switch's mapping */
};

struct policy_consent {
	struct policy_purpose *purposes; /* at most POLICY_MAX_PURPOSES */
	size_t n_purposes;
	struct policy_switch *switches; /* at most POLICY_MAX_SWITCHES */
	size_t n_switches;
	struct policy_loc loc; /* of the `consent` mapping; line 0 when absent */
};

struct policy_pool;

struct policy {
	char *path; /* as given to policy_parse*(); used in messages */
	struct policy_consent consent;
	struct policy_resolver *resolvers; /* at most CW_MAX_RESOLVERS */
	size_t n_resolvers;
	struct policy_dns dns;
	struct policy_set *sets;
	size_t n_sets;
	struct policy_app *apps;
	size_t n_apps;
	struct policy_span apps_span; /* the `apps` mapping */
	size_t n_rules; /* all apps together */
	struct policy_bundle_meta bundle; /* when has_bundle */
	bool has_bundle;
	bool audit; /* top-level `audit:`: every app's default */
	/* Where the parser keeps the rules' `to` and `ports` arrays: they are freed with the
	 * policy (policy_free(), policy_rule_clear()), never with free(). */
	struct policy_pool *pool;
	struct policy_residency residency;
};

/* A parse or validation error: where, and why (one line, no trailing newline or period). */
struct policy_error {
	char file[256];
	struct policy_loc loc; /* line 0 when the error is about the whole file (e.g. too large) */
	char reason[256];
};

/*
 * Parse and validate a policy. On success returns 0 and *ret_policy; on failure returns a
 * negative errno (-EINVAL for any content error, -ENOENT, -EFBIG, -ENOMEM, ...) and fills
 * *ret_error when it is not NULL.
 *
 * policy_parse_file() reads the file once, with its size checked before reading;
 * policy_parse_buffer() parses bytes already in memory (a verified bundle, a test, a fuzzer);
 * `name` is used as the file name in errors and as policy.path.
 */
int policy_parse_file(const char *path, struct policy **ret_policy, struct policy_error *ret_error);
int policy_parse_buffer(const char *name, const void *data, size_t size, struct policy **ret_policy,
			struct policy_error *ret_error);

/* `file:line:column: reason`, or `file: reason` when the error has no line. */
int policy_error_format(const struct policy_error *e, char *buf, size_t size);

void policy_free(struct policy *p);

/* Free what a rule of p holds (its destinations, their host names, its ports) and empty it. */
void policy_rule_clear(struct policy *p, struct policy_rule *rule);

/* Audit mode of an app: its own `audit:`, else the policy's. Refusals are reported, the flows
 * go out. */
bool policy_app_audit(const struct policy *p, const struct policy_app *app);

/* Some rule of the app names a host (inline or through a set). */
bool policy_app_has_hosts(const struct policy *p, const struct policy_app *app);

/* "app", "web", "flutter", or "any". */
const char *policy_template_name(enum policy_template t);

/* Lookups; NULL or -ENOENT when absent. */
const struct policy_app *policy_find_app(const struct policy *p, const char *id);
const struct policy_switch *policy_find_switch(const struct policy *p, const char *name);

/*
 * The purposes (CW_PURPOSE_BIT() of each) that switches turn off: those of every switch whose
 * state is off. on[i] is switch i's state (policy.consent.switches order); NULL: the defaults.
 */
uint32_t policy_consent_deny(const struct policy *p, const bool *on);

/* Helpers shared with the CLI and the compiler. */
const char *policy_proto_name(enum policy_proto proto);
bool policy_app_id_valid(const char *id);

/*
 * RFC 3339 timestamps in UTC, the one form `bundle:` uses: "2026-11-01T00:00:00Z" exactly
 * (upper-case T and Z, no fraction, no offset, no leap second), years 1970-9999. The fields are
 * checked for shape here and converted by the C library (strptime(), timegm()); a date that
 * does not exist (02-30) is refused. Returns 0 or -EINVAL.
 */
#define POLICY_TIME_LEN (sizeof("YYYY-MM-DDTHH:MM:SSZ") - 1)
int policy_time_parse(const char *s, int64_t *ret);
/* Format t (0..253402300799) into buf (at least POLICY_TIME_LEN + 1 bytes); 0 or -ERANGE. */
int policy_time_format(int64_t t, char *buf, size_t size);

/*
 * A host name as a policy writes it: "tiles.oem.example", or "*.maps.oem.example" for every
 * name strictly below maps.oem.example. ASCII only (an IDNA name in its A-label form,
 * "xn--..."); labels of letters, digits and '-' (not first or last), 1 to 63 bytes; at most
 * POLICY_MAX_HOST_LABELS labels (a wildcard: one fewer, so that a name below it has at most
 * that many); at least two labels (a wildcard: "*." and one); at most POLICY_MAX_HOST_LEN
 * characters, "*." included; the last label not all digits; one final '.' allowed; '*' only
 * as the whole first label. Upper case is folded. Writes the canonical form (lowercase, no
 * final dot, without the "*.") into buf and *ret_wildcard. Returns 0, or -EINVAL with a
 * reason in reason[].
 */
int policy_host_parse(const char *s, char buf[static POLICY_MAX_HOST_LEN + 1], bool *ret_wildcard,
		      char *reason, size_t reason_size);

/* Whether the canonical host name `name` is one that h allows (h itself, or strictly below
 * it for a wildcard). */
bool policy_host_matches(const struct policy_host *h, const char *name);

/* A `to` or set element that is not an address: a host name when it has a '.' or a '*' (set
 * names have neither). */
bool policy_looks_like_host(const char *s);

/* Whether two prefixes of one family share an address (one contains the other). */
bool policy_prefix_overlaps(const struct policy_prefix *a, const struct policy_prefix *b);

/*
 * Parse "198.51.100.0/24", "2001:db8::/32", "198.51.100.20" (a /32) or "2001:db8::1" (a /128).
 * IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d/n, n >= 96) are stored as their IPv4 prefix.
 * Host bits set below the prefix length are an error ("has host bits set").
 * Returns 0, or -EINVAL with a reason in reason[] (size reason_size).
 */
int policy_prefix_parse(const char *s, struct policy_prefix *ret, char *reason, size_t reason_size);

/* ---- data residency (userspace/lib/policy_region.c) ---------------------------------------- */

/*
 * Whether `s` is an ISO 3166-1 alpha-2 code (either case): an assigned one, or one of the
 * user-assigned ranges (AA, QM-QZ, XA-XZ, ZZ) that private databases and tests use.
 */
bool policy_country_valid(const char *s);

/*
 * The countries of region `name` (lower case): itself for a country code, the members of a
 * `regions:` group of p, or of the built-in "eu" (the 27 member states; a policy may not
 * redefine it). Copies at most `max` codes into ret[] and the count into *ret_n. Returns 0,
 * -ENOENT when `name` is no country and no group, -E2BIG when ret[] is too small.
 */
int policy_region_countries(const struct policy *p, const char *name, char (*ret)[3], size_t max,
			    size_t *ret_n);

/*
 * Whether every country of region `name` is one of the home region's: 1 yes, 0 no, -ENOENT
 * when the policy has no `home-region` or either region is unknown.
 */
int policy_region_is_home(const struct policy *p, const char *name);

/*
 * The region a destination of a rule is declared in: the rule's `region:`, else that of the set
 * it names; NULL when neither declares one.
 */
const char *policy_dest_region(const struct policy *p, const struct policy_rule *rule,
			       const struct policy_dest *d);

/*
 * The residency checks of a parsed policy: every region named is known; `residency: strict`
 * and `residency-enforce: home-only` need a `home-region`; with `residency: strict`, every
 * destination of every rule has a region (the rule's, or the set's it names) and a rule to a
 * region outside the home region carries `cross-border:`. Returns 0, or -EINVAL with *e filled
 * (file:line:column).
 */
int policy_residency_check(const struct policy *p, struct policy_error *e);
