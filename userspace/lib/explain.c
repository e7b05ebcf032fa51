// SPDX-License-Identifier: GPL-2.0-only
#include "explain.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

static int set_reason(char *reason, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_reason(char *reason, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (reason && size) {
		va_start(ap, fmt);
		vsnprintf(reason, size, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool all_digits_and_dots(const char *s)
{
	return strspn(s, "0123456789.") == strlen(s);
}

/* A port: decimal, 1 to 5 digits, no leading zero, at most 65535. */
static int parse_port(const char *s, const char *dest, uint16_t *ret, char *reason,
		      size_t reason_size)
{
	size_t len = strlen(s);
	unsigned v = 0;

	if (len == 0)
		return set_reason(reason, reason_size, "'%s' has no port after ':'", dest);
	if (!all_digits(s, len) || len > 5 || (len > 1 && s[0] == '0'))
		return set_reason(reason, reason_size,
				  "'%s' in '%s' is not a port (0-65535, no leading zero)", s, dest);
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > 65535)
		return set_reason(reason, reason_size, "port %s in '%s' is out of range (0-65535)",
				  s, dest);
	*ret = (uint16_t)v;
	return 0;
}

/* The host part: an IPv4 address, or an IPv6 address (brackets already removed). */
static int parse_addr(const char *host, int family, const char *dest, struct explain_dest *d,
		      char *reason, size_t reason_size)
{
	if (strchr(host, '%'))
		return set_reason(reason, reason_size,
				  "'%s': zone indexes (%%...) are not accepted", dest);
	if (inet_pton(family, host, d->addr) == 1) {
		d->family = family;
		return 0;
	}
	if (family == AF_INET6)
		return set_reason(reason, reason_size, "'%s' is not a valid IPv6 address", host);
	if (host[0] && strspn(host, "0123456789.") == strlen(host))
		return set_reason(reason, reason_size, "'%s' is not a valid IPv4 address", host);
	return set_reason(reason, reason_size,
			  "'%s' is neither an IP address nor a host name with a '.'", host);
}

int explain_dest_parse(const char *s, struct explain_dest *ret, char *reason, size_t reason_size)
{
	char buf[EXPLAIN_MAX_DEST_LEN + 1];
	struct explain_dest d = {};
	char *slash, *host, *port = NULL;
	size_t len;
	int r;

	if (!s || !ret)
		return set_reason(reason, reason_size, "invalid arguments");
	len = strlen(s);
	if (len == 0)
		return set_reason(reason, reason_size, "empty destination");
	if (len > EXPLAIN_MAX_DEST_LEN)
		return set_reason(reason, reason_size,
				  "destination longer than %d characters (EXPLAIN_MAX_DEST_LEN)",
				  EXPLAIN_MAX_DEST_LEN);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return set_reason(
			    reason, reason_size,
			    "destination '%.*s' contains a space or control character", (int)len,
			    s);
	memcpy(buf, s, len + 1);

	/* "/PROTO" at the end. A number there would be a prefix length. */
	slash = strrchr(buf, '/');
	if (slash) {
		*slash = '\0';
		if (!strcmp(slash + 1, "tcp"))
			d.proto = IPPROTO_TCP;
		else if (!strcmp(slash + 1, "udp"))
			d.proto = IPPROTO_UDP;
		else if (all_digits(slash + 1, strlen(slash + 1)))
			return set_reason(reason, reason_size,
					  "'%s' is a prefix; explain takes one address", s);
		else
			return set_reason(reason, reason_size,
					  "unknown protocol '%s' in '%s' (tcp or udp)", slash + 1,
					  s);
		if (strchr(buf, '/'))
			return set_reason(reason, reason_size, "'%s' has more than one '/'", s);
	}

	host = buf;
	if (host[0] == '[') {
		/* [IPv6] or [IPv6]:PORT */
		char *close = strchr(host, ']');

		if (!close)
			return set_reason(reason, reason_size, "'%s' has '[' without ']'", s);
		*close = '\0';
		host++;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return set_reason(reason, reason_size, "'%s': only ':PORT' may follow ']'",
					  s);
		if (!strchr(host, ':'))
			return set_reason(reason, reason_size,
					  "'%s': brackets are for IPv6 addresses only", s);
		r = parse_addr(host, AF_INET6, s, &d, reason, reason_size);
		if (r < 0)
			return r;
	} else if (strchr(buf, ']')) {
		return set_reason(reason, reason_size, "'%s' has ']' without '['", s);
	} else if (strchr(host, ':') != strrchr(host, ':')) {
		/* Two colons or more: a bare IPv6 address, which takes no port. */
		r = parse_addr(host, AF_INET6, s, &d, reason, reason_size);
		if (r < 0) {
			char *colon = strrchr(host, ':');
			uint8_t tmp[16];

			*colon = '\0';
			if (all_digits(colon + 1, strlen(colon + 1)) &&
			    inet_pton(AF_INET6, host, tmp) == 1)
				return set_reason(reason, reason_size,
						  "'%s': an IPv6 address with a port is written "
						  "[ADDR]:PORT, e.g. [%s]:%s",
						  s, host, colon + 1);
			return r;
		}
	} else {
		/* IPv4 or IPv4:PORT, or a host name */
		char *colon = strchr(host, ':');

		if (colon) {
			*colon = '\0';
			port = colon + 1;
		}
		if (!all_digits_and_dots(host) && policy_looks_like_host(host)) {
			bool wildcard;

			if (policy_host_parse(host, d.name, &wildcard, reason, reason_size) < 0)
				return -EINVAL;
			if (wildcard)
				return set_reason(reason, reason_size,
						  "'%s' is a wildcard; explain takes one "
						  "name, e.g. a.%s",
						  host, d.name);
			d.is_name = true;
		} else {
			r = parse_addr(host, AF_INET, s, &d, reason, reason_size);
			if (r < 0)
				return r;
		}
	}

	if (port) {
		r = parse_port(port, s, &d.port, reason, reason_size);
		if (r < 0)
			return r;
		d.has_port = true;
	}
	*ret = d;
	return 0;
}

bool explain_dest_is_v4_mapped(const struct explain_dest *d)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};

	return d->family == AF_INET6 && !memcmp(d->addr, mapped, sizeof(mapped));
}

/* The family and address as judged: an IPv4-mapped address as IPv4. */
static const uint8_t *judged_addr(const struct explain_dest *d, int *ret_family)
{
	if (explain_dest_is_v4_mapped(d)) {
		*ret_family = AF_INET;
		return d->addr + 12;
	}
	*ret_family = d->family;
	return d->addr;
}

int explain_dest_format_addr(const struct explain_dest *d, char *buf, size_t size)
{
	int family;
	const uint8_t *a = judged_addr(d, &family);

	return inet_ntop(family, a, buf, (socklen_t)size) ? 0 : -ENOSPC;
}

int explain_prefix_format(const struct policy_prefix *pfx, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	unsigned full = pfx->family == AF_INET ? 32 : 128;
	int n;

	if (!inet_ntop(pfx->family, pfx->addr, a, sizeof(a)))
		return -ENOSPC;
	if (pfx->len == full)
		n = snprintf(buf, size, "%s", a);
	else
		n = snprintf(buf, size, "%s/%u", a, pfx->len);
	return n >= 0 && (size_t)n < size ? 0 : -ENOSPC;
}

int explain_find_app(const struct policy *p, const char *id, size_t *ret_index)
{
	for (size_t i = 0; i < p->n_apps; i++)
		if (!strcmp(p->apps[i].id, id)) {
			*ret_index = i;
			return 0;
		}
	return -ENOENT;
}

static bool prefix_has(const struct policy_prefix *pfx, int family, const uint8_t *addr)
{
	unsigned full = pfx->len / 8, rest = pfx->len % 8;

	if (pfx->family != family)
		return false;
	if (memcmp(pfx->addr, addr, full))
		return false;
	return !rest || ((pfx->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* How closely host h matches a name it matches: the name itself best, then longer wildcards. */
static size_t host_rank(const struct policy_host *h)
{
	return h->wildcard ? strlen(h->name) + 1 : SIZE_MAX;
}

/* The element of the rule's `to` naming d's host name: the most specific, the first on a tie. */
static void attribute_name(const struct policy *p, const struct explain_dest *d,
			   struct explain_match *m)
{
	size_t best = 0;

	for (size_t j = 0; j < m->rule->n_to; j++) {
		const struct policy_dest *to = &m->rule->to[j];

		if (to->is_host) {
			if (policy_host_matches(&to->host, d->name) &&
			    host_rank(&to->host) > best) {
				best = host_rank(&to->host);
				m->to = to;
				m->set = NULL;
				m->host = &to->host;
			}
			continue;
		}
		if (!to->is_set)
			continue;
		const struct policy_set *set = &p->sets[to->set];
		for (size_t k = 0; k < set->n_hosts; k++) {
			const struct policy_host *h = &set->hosts[k];

			if (policy_host_matches(h, d->name) && host_rank(h) > best) {
				best = host_rank(h);
				m->to = to;
				m->set = set;
				m->host = h;
			}
		}
	}
}

/*
 * Name the rule with global index `rule` of app number `app` and the element of its `to` that
 * contains the address: the longest matching prefix, the first one in file order on a tie (for
 * a host name: the name, else its longest matching wildcard).
 */
static int attribute(const struct policy *p, size_t app, uint32_t rule,
		     const struct explain_dest *d, struct explain_match *ret)
{
	const struct policy_app *a = &p->apps[app];
	struct explain_match m = {};
	int family, best = -1;
	const uint8_t *addr = judged_addr(d, &family);

	for (size_t i = 0; i < a->n_rules; i++)
		if (a->rules[i].index == rule) {
			m.rule = &a->rules[i];
			m.app_rule = i;
			break;
		}
	if (!m.rule)
		return -EUCLEAN;

	if (d->is_name) {
		attribute_name(p, d, &m);
		if (!m.to)
			return -EUCLEAN;
		*ret = m;
		return 0;
	}
	for (size_t j = 0; j < m.rule->n_to; j++) {
		const struct policy_dest *to = &m.rule->to[j];

		if (to->is_host)
			continue;
		if (!to->is_set) {
			if (prefix_has(&to->prefix, family, addr) && to->prefix.len > best) {
				best = to->prefix.len;
				m.to = to;
				m.set = NULL;
				m.prefix = &to->prefix;
			}
			continue;
		}
		const struct policy_set *set = &p->sets[to->set];
		for (size_t k = 0; k < set->n_prefixes; k++) {
			const struct policy_prefix *pfx = &set->prefixes[k];

			if (prefix_has(pfx, family, addr) && pfx->len > best) {
				best = pfx->len;
				m.to = to;
				m.set = set;
				m.prefix = pfx;
			}
		}
	}
	if (!m.to)
		return -EUCLEAN;
	*ret = m;
	return 0;
}

/*
 * Home-only residency, as the kernel's cw_judge_home(): the flow the tries allow to d's address
 * (an address, not a name) is refused, its rule not being cross-border.
 */
static bool region_refuses(const struct policy_maps *m, size_t app, const struct explain_dest *d,
			   uint16_t proto, uint16_t port)
{
	struct cw_port_val val;
	uint32_t portset;

	if (!m->home_only ||
	    policy_maps_lookup_dst(m, (uint32_t)app, d->family, d->addr, &portset) <= 0 ||
	    !policy_maps_lookup_port(m, portset, proto, port, &val))
		return false;
	return policy_maps_region_refuses(m, d->family, d->addr, &val);
}

static uint32_t purpose_bit(const struct policy_rule *r)
{
	return r->purpose < 0 ? CW_PURPOSE_NONE : CW_PURPOSE_BIT((uint32_t)r->purpose);
}

/*
 * The maps name the first rule (in file order) that allows a flow; when the driver switched its
 * purpose off, the flow is allowed by a later one: the first rule whose purpose is on and that
 * covers the destination, protocol and port.
 */
static uint32_t first_consenting_rule(const struct policy *p, const struct policy_maps *m,
				      size_t app, const struct explain_dest *d, uint16_t proto,
				      uint16_t port, uint32_t rule)
{
	const struct policy_app *a = &p->apps[app];
	enum policy_proto want = proto == IPPROTO_TCP ? POLICY_PROTO_TCP : POLICY_PROTO_UDP;

	for (size_t i = 0; i < a->n_rules; i++)
		if (a->rules[i].index == rule &&
		    policy_maps_purposes_allowed(m, purpose_bit(&a->rules[i])))
			return rule;
	for (size_t i = 0; i < a->n_rules; i++) {
		const struct policy_rule *r = &a->rules[i];
		struct explain_match unused;
		bool port_ok = r->n_ports == 0;

		if (!policy_maps_purposes_allowed(m, purpose_bit(r)))
			continue;
		if (r->proto != POLICY_PROTO_ANY && r->proto != want)
			continue;
		for (size_t k = 0; k < r->n_ports; k++)
			if (port >= r->ports[k].first && port <= r->ports[k].last)
				port_ok = true;
		if (port_ok && attribute(p, app, (uint32_t)r->index, d, &unused) == 0)
			return (uint32_t)r->index;
	}
	return rule;
}

int explain_flow(const struct policy *p, const struct policy_maps *m, size_t app,
		 const struct explain_dest *d, uint16_t proto, uint16_t port,
		 struct explain_flow *ret)
{
	struct explain_flow f = {.proto = proto, .port = port};
	enum cw_verdict v;
	uint32_t rule = 0;
	int r;

	if (app >= p->n_apps)
		return -ENOENT;
	/* The verdict: from the compiled entries, as the kernel's tries (or cw_names) give it. */
	if (d->is_name) {
		v = policy_maps_judge_name(m, (uint32_t)app, d->name, proto, port, &rule,
					   &f.purposes);
		f.address_covered = policy_maps_match_name(m, (uint32_t)app, d->name) != NULL;
	} else {
		v = policy_maps_judge(m, (uint32_t)app, d->family, d->addr, proto, port, &rule,
				      &f.purposes);
		f.address_covered =
		    policy_maps_lookup_dst(m, (uint32_t)app, d->family, d->addr, NULL) > 0;
	}
	f.allowed = v == CW_VERDICT_ALLOW_RULE;
	f.refused_by_consent = v == CW_VERDICT_DENY_CONSENT;
	if (f.allowed)
		rule = first_consenting_rule(p, m, app, d, proto, port, rule);
	if (f.allowed || f.refused_by_consent) {
		r = attribute(p, app, rule, d, &f.match);
		if (r < 0)
			return r;
	}
	/* Then home-only residency, on what consent left allowed (as cw_judge_home()). */
	if (f.allowed) {
		f.region_refused = !d->is_name && region_refuses(m, app, d, proto, port);
		f.allowed = !f.region_refused;
	}
	*ret = f;
	return 0;
}

int explain_ports(const struct policy *p, const struct policy_maps *m, size_t app,
		  const struct explain_dest *d, uint16_t proto, struct explain_span **ret,
		  size_t *ret_n)
{
	_cleanup_free_ struct policy_port_span *ps = NULL;
	_cleanup_free_ struct explain_span *v = NULL;
	uint32_t portset;
	size_t n = 0;
	int r;

	if (app >= p->n_apps)
		return -ENOENT;
	*ret = NULL;
	*ret_n = 0;
	if (d->is_name) {
		const struct policy_name_entry *e;

		e = policy_maps_match_name(m, (uint32_t)app, d->name);
		if (!e)
			return 0;
		portset = e->val.portset;
	} else if (policy_maps_lookup_dst(m, (uint32_t)app, d->family, d->addr, &portset) <= 0) {
		return 0;
	}
	r = policy_maps_port_spans(m, portset, proto, &ps, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		/* A span's rule is one: its first port says whether home-only refuses it. */
		if (!d->is_name && region_refuses(m, app, d, proto, ps[i].first))
			continue;
		v[k].first = ps[i].first;
		v[k].last = ps[i].last;
		r = attribute(p, app, ps[i].rule, d, &v[k].match);
		if (r < 0)
			return r;
		k++;
	}
	if (k == 0)
		return 0;
	*ret = TAKE_PTR(v);
	*ret_n = k;
	return 0;
}

static bool list_add(char *buf, size_t size, size_t *o, const char *pre, const char *text);

int explain_consent_switches(const struct policy *p, uint32_t purposes, const bool *on, char *buf,
			     size_t size)
{
	size_t o = 0;
	int n = 0;

	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < p->consent.n_switches; i++) {
		const struct policy_switch *sw = &p->consent.switches[i];
		bool covers = false;

		if (on ? on[i] : sw->default_on)
			continue;
		for (size_t k = 0; k < p->consent.n_purposes; k++)
			if ((sw->purposes & (1u << k)) && (purposes & CW_PURPOSE_BIT(k)))
				covers = true;
		if (!covers)
			continue;
		n++;
		if (o < size)
			list_add(buf, size, &o, "", sw->name);
	}
	return n;
}

int explain_spans_format(const struct explain_span *spans, size_t n, char *buf, size_t size)
{
	size_t o = 0;
	int k;

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	if (n == 0)
		return snprintf(buf, size, "none") < (int)size ? 0 : -ENOSPC;
	if (explain_spans_count(spans, n) == 65536)
		return snprintf(buf, size, "any port") < (int)size ? 0 : -ENOSPC;

	for (size_t i = 0; i < n;) {
		uint32_t first = spans[i].first, last = spans[i].last;

		/* Merge neighbours whatever their rule. */
		for (i++; i < n && spans[i].first == last + 1; i++)
			last = spans[i].last;
		if (first == last)
			k = snprintf(buf + o, size - o, "%s%u", o ? ", " : "", first);
		else
			k = snprintf(buf + o, size - o, "%s%u-%u", o ? ", " : "", first, last);
		if (k < 0 || (size_t)k >= size - o)
			return -ENOSPC;
		o += (size_t)k;
	}
	return 0;
}

uint32_t explain_spans_count(const struct explain_span *spans, size_t n)
{
	uint32_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += (uint32_t)spans[i].last - spans[i].first + 1;
	return total;
}

/* Append "text" to buf (", " between items); false once it no longer fits ("..." then ends it). */
static bool list_add(char *buf, size_t size, size_t *o, const char *pre, const char *text)
{
	int k = snprintf(buf + *o, size - *o, "%s%s%s", *o ? ", " : "", pre, text);

	if (k >= 0 && (size_t)k < size - *o) {
		*o += (size_t)k;
		return true;
	}
	if (size >= 4)
		memcpy(buf + size - 4, "...", 4);
	*o = size;
	return false;
}

static bool host_listed(const struct policy_host *const *seen, size_t n,
			const struct policy_host *h)
{
	for (size_t i = 0; i < n; i++)
		if (seen[i]->wildcard == h->wildcard && !strcmp(seen[i]->name, h->name))
			return true;
	return false;
}

int explain_other_hosts(const struct policy *p, size_t app, const char *except, char *buf,
			size_t size)
{
	_cleanup_free_ const struct policy_host **seen = NULL;
	const struct policy_app *a;
	size_t n = 0, cap = 0, o = 0;

	if (!p || app >= p->n_apps || !buf || size == 0)
		return -EINVAL;
	a = &p->apps[app];
	buf[0] = '\0';
	for (size_t i = 0; i < a->n_rules; i++)
		for (size_t j = 0; j < a->rules[i].n_to; j++) {
			const struct policy_dest *to = &a->rules[i].to[j];
			const struct policy_host *hosts = to->is_host ? &to->host : NULL;
			size_t n_hosts = to->is_host;

			if (to->is_set) {
				hosts = p->sets[to->set].hosts;
				n_hosts = p->sets[to->set].n_hosts;
			}
			for (size_t k = 0; k < n_hosts; k++) {
				const struct policy_host *h = &hosts[k];

				if ((except && policy_host_matches(h, except)) ||
				    host_listed(seen, n, h))
					continue;
				if (n == cap) {
					const struct policy_host **v;

					cap = cap ? cap * 2 : 16;
					v = reallocarray(seen, cap, sizeof(*seen));
					if (!v)
						return -ENOMEM;
					seen = v;
				}
				seen[n++] = h;
				if (o < size)
					list_add(buf, size, &o, h->wildcard ? "*." : "", h->name);
			}
		}
	return n > INT32_MAX ? INT32_MAX : (int)n;
}
