// SPDX-License-Identifier: GPL-2.0-only
#include "events.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include "message_ids.h"
#include "policy.h"
#include "util.h"

const char *events_hook_name(uint8_t hook)
{
	switch (hook) {
	case CW_HOOK_CONNECT4:
		return "connect4";
	case CW_HOOK_CONNECT6:
		return "connect6";
	case CW_HOOK_SENDMSG4:
		return "sendmsg4";
	case CW_HOOK_SENDMSG6:
		return "sendmsg6";
	case CW_HOOK_SOCK_CREATE:
		return "sock_create";
	case CW_HOOK_SKB_EGRESS:
		return "skb_egress";
	default:
		return "unknown";
	}
}

const char *events_verdict_name(uint8_t verdict)
{
	switch (verdict) {
	case CW_VERDICT_ALLOW_RULE:
		return "allow";
	case CW_VERDICT_DENY_NO_RULE:
		return "default-deny";
	case CW_VERDICT_DENY_PROTOCOL:
		return "deny-protocol";
	case CW_VERDICT_DENY_FAMILY:
		return "deny-family";
	case CW_VERDICT_DENY_GUARD:
		return "deny-unknown-app";
	case CW_VERDICT_DENY_REGION:
		return "deny-region";
	case CW_VERDICT_DENY_CONSENT:
		return "deny-consent";
	default:
		return "unmanaged";
	}
}

const char *events_proto_name(uint8_t proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case IPPROTO_UDPLITE:
		return "udplite";
	case IPPROTO_SCTP:
		return "sctp";
	case IPPROTO_RAW:
		return "raw";
	default:
		return NULL;
	}
}

/*
 * The rule of a refusal: none decided ("default deny"), except for a region refusal, whose rule
 * allowed the flow but is not cross-border (its global index, 0-based, as `carwall stats`).
 */
static void events_rule(const struct cw_event *e, char *buf, size_t size)
{
	if (e->verdict == CW_VERDICT_DENY_REGION && e->rule != CW_RULE_NONE)
		snprintf(buf, size, "rule #%u, not cross-border", e->rule);
	else if (e->verdict == CW_VERDICT_DENY_CONSENT)
		snprintf(buf, size, "consent");
	else
		snprintf(buf, size, "default deny");
}

void events_reason(const struct cw_event *e, const char *app, char *buf, size_t size)
{
	switch (e->verdict) {
	case CW_VERDICT_DENY_NO_RULE:
		snprintf(buf, size, "default deny: no rule of %s allows it", app ? app : "the app");
		break;
	case CW_VERDICT_DENY_PROTOCOL:
		snprintf(buf, size, "only TCP and UDP sockets are allowed to apps");
		break;
	case CW_VERDICT_DENY_FAMILY:
		snprintf(buf, size, "unexpected address family");
		break;
	case CW_VERDICT_DENY_GUARD:
		snprintf(buf, size, "not an app of the policy (below the guard cgroup)");
		break;
	case CW_VERDICT_DENY_REGION:
		snprintf(buf, size,
			 "home region only: the address is outside the home region and the rule "
			 "that allows it is not cross-border");
		break;
	case CW_VERDICT_DENY_CONSENT:
		snprintf(buf, size,
			 "consent: the rules of %s that allow it serve purposes the driver "
			 "switched off",
			 app ? app : "the app");
		break;
	default:
		snprintf(buf, size, "%s", events_verdict_name(e->verdict));
		break;
	}
}

static void events_addr(const struct cw_event *e, char *buf, size_t size)
{
	if (e->family == AF_INET || e->family == AF_INET6) {
		if (inet_ntop(e->family, e->addr, buf, (socklen_t)size))
			return;
	}
	snprintf(buf, size, "-");
}

/* The command name as the kernel gave it, made printable. */
static void events_comm(const struct cw_event *e, char out[17])
{
	size_t i;

	for (i = 0; i < 16 && e->comm[i]; i++)
		out[i] = (e->comm[i] >= 0x20 && e->comm[i] < 0x7f) ? e->comm[i] : '?';
	out[i] = '\0';
}

void events_time_format(int64_t realtime_ns, char *buf, size_t size)
{
	time_t secs = (time_t)(realtime_ns / 1000000000);
	struct tm tm;
	size_t len;

	if (size == 0)
		return;
	buf[0] = '\0';
	if (!gmtime_r(&secs, &tm))
		return;
	len = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + len, size - len, ".%06lldZ", (long long)(realtime_ns % 1000000000) / 1000);
}

static uint64_t events_count(const struct events_names *n)
{
	return n->count ? n->count : 1;
}

struct json_object *events_to_json(const struct cw_event *e, const struct events_names *n)
{
	struct json_object *o = json_object_new_object();
	char addr[INET6_ADDRSTRLEN], reason[256], comm[17], when[64], last[64], rule[64];
	const char *proto = events_proto_name(e->proto);
	uint64_t count = events_count(n);

	events_time_format(n->realtime_ns, when, sizeof(when));
	events_time_format(count > 1 ? n->last_ns : n->realtime_ns, last, sizeof(last));
	events_addr(e, addr, sizeof(addr));
	events_reason(e, n->app, reason, sizeof(reason));
	events_comm(e, comm);

	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "event", json_object_new_string(e->flags & CW_EVENT_F_AUDIT
									    ? "audit"
									    : "refused"));
	json_object_object_add(o, "app", n->app ? json_object_new_string(n->app) : NULL);
	json_object_object_add(o, "cgroup_id", json_object_new_int64((int64_t)e->cgroup_id));
	if (n->cgroup)
		json_object_object_add(o, "cgroup", json_object_new_string(n->cgroup));
	json_object_object_add(o, "pid", json_object_new_int64(e->pid));
	json_object_object_add(o, "tid", json_object_new_int64(e->tid));
	json_object_object_add(o, "uid", json_object_new_int64(e->uid));
	json_object_object_add(o, "comm", json_object_new_string(comm));
	json_object_object_add(o, "exe", n->exe ? json_object_new_string(n->exe) : NULL);
	json_object_object_add(o, "family", json_object_new_string(e->family == AF_INET6 ? "ipv6"
								    : e->family == AF_INET ? "ipv4"
											   : "other"));
	json_object_object_add(o, "proto", proto ? json_object_new_string(proto)
						 : json_object_new_int(e->proto));
	json_object_object_add(o, "dst", json_object_new_string(addr));
	json_object_object_add(o, "port", json_object_new_int(e->port));
	json_object_object_add(o, "hook", json_object_new_string(events_hook_name(e->hook)));
	json_object_object_add(o, "verdict", json_object_new_string(events_verdict_name(e->verdict)));
	events_rule(e, rule, sizeof(rule));
	json_object_object_add(o, "rule", json_object_new_string(rule));
	if (e->verdict == CW_VERDICT_DENY_CONSENT)
		json_object_object_add(o, "rule_index", json_object_new_int64(e->rule));
	json_object_object_add(o, "reason", json_object_new_string(reason));
	json_object_object_add(o, "generation", json_object_new_int(e->gen));
	json_object_object_add(o, "count", json_object_new_int64((int64_t)count));
	json_object_object_add(o, "first", json_object_new_string(when));
	json_object_object_add(o, "last", json_object_new_string(last));
	if (n->host)
		json_object_object_add(o, "host", json_object_new_string(n->host));
	if (n->country)
		json_object_object_add(o, "country", json_object_new_string(n->country));
	return o;
}

/* A logfmt value: bare when it is simple, else quoted with " and \ escaped. */
static int logfmt_value(char *buf, size_t size, const char *v)
{
	bool bare = *v != '\0';
	size_t o = 0;

	for (const char *p = v; *p; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
			bare = false;
	if (bare)
		return snprintf(buf, size, "%s", v);
	if (size < 3)
		return 0;
	buf[o++] = '"';
	for (const char *p = v; *p && o + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			buf[o++] = '\\';
		buf[o++] = (unsigned char)*p < 0x20 ? '?' : *p;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return (int)o;
}

void events_format_line(const struct cw_event *e, const struct events_names *n, char *buf,
			size_t size)
{
	char addr[INET6_ADDRSTRLEN], reason[256], comm[17], proto_num[8];
	const char *proto = events_proto_name(e->proto);
	char app[160], exe[600], qcomm[40], qreason[300], repeats[192] = "", host[1100] = "";
	char rule[64], qrule[80], country[24] = "";
	uint64_t count = events_count(n);

	events_addr(e, addr, sizeof(addr));
	events_reason(e, n->app, reason, sizeof(reason));
	events_comm(e, comm);
	if (!proto) {
		snprintf(proto_num, sizeof(proto_num), "%u", e->proto);
		proto = proto_num;
	}
	logfmt_value(app, sizeof(app), n->app ? n->app : "-");
	logfmt_value(exe, sizeof(exe), n->exe ? n->exe : "-");
	logfmt_value(qcomm, sizeof(qcomm), comm);
	logfmt_value(qreason, sizeof(qreason), reason);
	events_rule(e, rule, sizeof(rule));
	logfmt_value(qrule, sizeof(qrule), rule);
	if (count > 1) {
		char first[64], last[64];

		events_time_format(n->realtime_ns, first, sizeof(first));
		events_time_format(n->last_ns, last, sizeof(last));
		snprintf(repeats, sizeof(repeats), " count=%llu first=%s last=%s",
			 (unsigned long long)count, first, last);
	}
	if (n->host) {
		memcpy(host, " host=", 6);
		logfmt_value(host + 6, sizeof(host) - 6, n->host);
	}
	if (n->country) {
		memcpy(country, " country=", 9);
		logfmt_value(country + 9, sizeof(country) - 9, n->country);
	}
	snprintf(buf, size,
		 "event=%s app=%s pid=%u tid=%u uid=%u comm=%s exe=%s proto=%s dst=%s port=%u "
		 "hook=%s verdict=%s rule=%s reason=%s cgroup_id=%llu%s%s%s",
		 e->flags & CW_EVENT_F_AUDIT ? "audit" : "refused", app, e->pid, e->tid, e->uid,
		 qcomm, exe, proto, addr, e->port, events_hook_name(e->hook),
		 events_verdict_name(e->verdict), qrule, qreason, (unsigned long long)e->cgroup_id,
		 repeats, host, country);
}

void events_journal_fields(const struct cw_event *e, const struct events_names *n,
			   struct events_journal *ret)
{
	const char *proto = events_proto_name(e->proto);
	bool audit = e->flags & CW_EVENT_F_AUDIT;
	uint64_t count = events_count(n);
	size_t k = 0;

	memset(ret, 0, sizeof(*ret));
	ret->priority = audit ? LOG_LEVEL_NOTICE : LOG_LEVEL_WARNING;
	ret->message_id = audit ? CW_MESSAGE_FLOW_AUDITED : CW_MESSAGE_FLOW_REFUSED;
	events_addr(e, ret->dest, sizeof(ret->dest));
	if (proto)
		snprintf(ret->proto, sizeof(ret->proto), "%s", proto);
	else
		snprintf(ret->proto, sizeof(ret->proto), "%u", e->proto);
	snprintf(ret->port, sizeof(ret->port), "%u", e->port);
	snprintf(ret->pid, sizeof(ret->pid), "%u", e->pid);
	snprintf(ret->uid, sizeof(ret->uid), "%u", e->uid);
	snprintf(ret->count, sizeof(ret->count), "%llu", (unsigned long long)count);
	snprintf(ret->cgroup_id, sizeof(ret->cgroup_id), "%llu", (unsigned long long)e->cgroup_id);
	snprintf(ret->generation, sizeof(ret->generation), "%u", e->gen);
	events_comm(e, ret->comm);
	events_reason(e, n->app, ret->reason, sizeof(ret->reason));
	if (count > 1) {
		events_time_format(n->realtime_ns, ret->first, sizeof(ret->first));
		events_time_format(n->last_ns, ret->last, sizeof(ret->last));
	}
#define FIELD(name_, value_) ret->fields[k++] = (struct log_field){ (name_), (value_) }
	FIELD("CARWALL_EVENT", audit ? "audit" : "refused");
	FIELD("CARWALL_APP", n->app);
	FIELD("CARWALL_DEST", ret->dest);
	FIELD("CARWALL_PORT", ret->port);
	FIELD("CARWALL_PROTO", ret->proto);
	FIELD("CARWALL_FAMILY", e->family == AF_INET6  ? "ipv6"
				: e->family == AF_INET ? "ipv4"
						       : "other");
	FIELD("CARWALL_HOOK", events_hook_name(e->hook));
	FIELD("CARWALL_VERDICT", events_verdict_name(e->verdict));
	FIELD("CARWALL_RULE", "default deny");
	FIELD("CARWALL_REASON", ret->reason);
	FIELD("CARWALL_HOST", n->host);
	FIELD("CARWALL_COUNT", ret->count);
	FIELD("CARWALL_FIRST", count > 1 ? ret->first : NULL);
	FIELD("CARWALL_LAST", count > 1 ? ret->last : NULL);
	FIELD("CARWALL_PID", ret->pid);
	FIELD("CARWALL_UID", ret->uid);
	FIELD("CARWALL_COMM", ret->comm);
	FIELD("CARWALL_EXE", n->exe);
	FIELD("CARWALL_CGROUP_ID", ret->cgroup_id);
	FIELD("CARWALL_GENERATION", ret->generation);
#undef FIELD
	ret->n_fields = k;
}

/* ---- the log on disk ------------------------------------------------------------------------- */

void events_share_name(const char *app, uint8_t verdict, char buf[EVENTS_SHARE_NAME_MAX])
{
	if (app)
		snprintf(buf, EVENTS_SHARE_NAME_MAX, "app-%.*s", EVENTS_APP_MAX, app);
	else
		snprintf(buf, EVENTS_SHARE_NAME_MAX, "%s",
			 verdict == CW_VERDICT_DENY_GUARD ? "guard" : "unknown");
}

bool events_share_name_valid(const char *s)
{
	if (!strcmp(s, "guard") || !strcmp(s, "unknown") || !strcmp(s, EVENTS_AGENT_SHARE))
		return true;
	return !strncmp(s, "app-", 4) && strlen(s + 4) <= EVENTS_APP_MAX &&
	       policy_app_id_valid(s + 4);
}

int events_share_of_file(const char *name, char share[EVENTS_SHARE_NAME_MAX], bool *ret_old)
{
	static const char *const suffixes[] = { EVENTS_FILE_SUFFIX, EVENTS_OLD_FILE_SUFFIX };
	size_t len = strlen(name);

	for (size_t s = 0; s < ARRAY_SIZE(suffixes); s++) {
		size_t n = strlen(suffixes[s]);

		if (len <= n || len - n >= EVENTS_SHARE_NAME_MAX ||
		    strcmp(name + len - n, suffixes[s]))
			continue;
		memcpy(share, name, len - n);
		share[len - n] = '\0';
		if (!events_share_name_valid(share))
			return -EINVAL;
		*ret_old = s == 1;
		return 0;
	}
	return -EINVAL;
}

bool events_record_is_flow(const char *event)
{
	return event &&
	       (!strcmp(event, "refused") || !strcmp(event, "audit") || !strcmp(event, "allowed"));
}
