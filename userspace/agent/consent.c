// SPDX-License-Identifier: GPL-2.0-only
/*
 * Driver consent in the agent: the switches' states, kept in the state folder (lib/consent.h),
 * turned into the purposes the kernel refuses (cw_gen_info.consent_deny) each time a policy is
 * applied, and changed over the control socket. A change is applied like a reload of the
 * policy in force: written into the inactive generation with a new epoch and flipped to (no
 * decision sees half a change, cached verdicts are of the old epoch), then the established
 * flows the change refuses are cut (revoke.c). Every change is a record of the events log's
 * "consent" share: which switch, its new state, who set it and when.
 */
#include "agent.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Read the saved states once, at the first policy; a state that cannot be read tightens. */
static void agent_consent_load(struct agent *a)
{
	char reason[256] = "";
	int r;

	if (a->consent_loaded)
		return;
	a->consent_loaded = true;
	r = consent_load(a->state_dir, &a->consent, reason, sizeof(reason));
	a->consent_saved = a->consent;
	if (r < 0)
		log_error("Consent state %s/%s cannot be read (%s): every consent switch is off "
			  "until set again",
			  a->state_dir, CONSENT_FILE, reason);
}

void agent_consent_resolve(struct agent *a, const struct policy *pol,
			   bool on[static POLICY_MAX_SWITCHES])
{
	agent_consent_load(a);
	consent_resolve(pol, &a->consent, a->boot_id, on);
}

void agent_consent_commit(struct agent *a, const struct policy *pol, const bool *on)
{
	struct consent_state next;
	int r;

	consent_from_policy(pol, on, a->boot_id, &next);
	memcpy(a->consent_on, on, sizeof(a->consent_on));
	for (size_t i = 0; i < a->consent.n; i++)
		if (!policy_find_switch(pol, a->consent.v[i].name))
			log_info("Consent switch '%s' is no longer in the policy: dropped",
				 a->consent.v[i].name);
	a->consent = next;
	if (!a->consent_saved.all_off && next.n == a->consent_saved.n &&
	    !strcmp(next.boot_id, a->consent_saved.boot_id) &&
	    !memcmp(next.v, a->consent_saved.v, next.n * sizeof(next.v[0])))
		return;
	r = consent_save(a->state_dir, &next);
	if (r < 0) {
		log_error_errno(r,
				"Cannot save the consent state in %s: %m (in force, but a "
				"restart would not find it)",
				a->state_dir);
		return;
	}
	a->consent_saved = next;
}

static struct json_object *switch_json(const struct policy *pol, size_t i, bool on)
{
	const struct policy_switch *sw = &pol->consent.switches[i];
	struct json_object *o = json_object_new_object(), *purposes = json_object_new_array();

	for (size_t k = 0; k < pol->consent.n_purposes; k++)
		if (sw->purposes & (1u << k))
			json_object_array_add(
			    purposes, json_object_new_string(pol->consent.purposes[k].name));
	JSON_ADD(o, "name", json_object_new_string(sw->name));
	JSON_ADD(o, "state", json_object_new_string(on ? "on" : "off"));
	JSON_ADD(o, "default", json_object_new_string(sw->default_on ? "on" : "off"));
	JSON_ADD(o, "reset",
		 json_object_new_string(sw->reset == POLICY_RESET_DRIVE ? "drive" : "persistent"));
	JSON_ADD(o, "purposes", purposes);
	return o;
}

struct json_object *agent_consent_list_json(struct agent *a)
{
	struct json_object *o = json_object_new_object(), *sws = json_object_new_array(),
			   *mandatory = json_object_new_array();
	const struct policy *pol = a->policy;

	if (!pol)
		return json_error("no policy in force: no consent switches");
	for (size_t i = 0; i < pol->consent.n_switches; i++)
		json_object_array_add(sws, switch_json(pol, i, a->consent_on[i]));
	for (size_t k = 0; k < pol->consent.n_purposes; k++)
		if (pol->consent.purposes[k].mandatory)
			json_object_array_add(
			    mandatory, json_object_new_string(pol->consent.purposes[k].name));
	JSON_ADD(o, "switches", sws);
	JSON_ADD(o, "mandatory", mandatory);
	JSON_ADD(o, "epoch", json_object_new_int64((int64_t)loader_epoch(a->loader)));
	return o;
}

/* The change as a record of the events log (share "consent"), and a journal line. */
static void agent_consent_event(struct agent *a, const char *name, bool on,
				const struct ucred *peer)
{
	struct json_object *o;
	char when[40], reason[160];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + strlen(when), sizeof(when) - strlen(when), ".%06ldZ", ts.tv_nsec / 1000);
	snprintf(reason, sizeof(reason), "consent switch %s set %s by uid %u (pid %d)", name,
		 on ? "on" : "off", (unsigned)peer->uid, (int)peer->pid);
	log_notice("%s", reason);
	if (!a->events_log)
		return;
	o = json_object_new_object();
	JSON_ADD(o, "time", json_object_new_string(when));
	JSON_ADD(o, "event", json_object_new_string("consent"));
	JSON_ADD(o, "switch", json_object_new_string(name));
	JSON_ADD(o, "state", json_object_new_string(on ? "on" : "off"));
	JSON_ADD(o, "uid", json_object_new_int64(peer->uid));
	JSON_ADD(o, "pid", json_object_new_int64(peer->pid));
	JSON_ADD(o, "policy_sha256", json_object_new_string(a->policy_sha256));
	JSON_ADD(o, "epoch", json_object_new_int64((int64_t)loader_epoch(a->loader)));
	JSON_ADD(o, "reason", json_object_new_string(reason));
	if (events_log_append(a->events_log, EVENTS_AGENT_SHARE, o) < 0 ||
	    events_log_flush(a->events_log) < 0)
		a->events_log_errors++;
	json_object_put(o);
}

/*
 * `consent-set NAME on|off`: applied like a reload of the policy in force; the reply comes once
 * the flip is done (every decision from then on sees the new state) and the established flows
 * it refuses are cut.
 */
struct json_object *agent_consent_set_json(struct agent *a, const struct control_request *req,
					   const char *arg)
{
	char name[POLICY_MAX_CONSENT_NAME + 2], state[8], extra[2], reason[1024] = "", sha[65];
	struct consent_state saved = a->consent;
	const struct policy_switch *sw;
	struct agent_timing t = {};
	bool on;
	int r;

	if (sscanf(arg, "%33s %7s %1s", name, state, extra) != 2 ||
	    (strcmp(state, "on") && strcmp(state, "off")))
		return json_error("consent-set NAME on|off");
	on = !strcmp(state, "on");
	if (!a->policy)
		return json_error("no policy in force: no consent switches");
	sw = policy_find_switch(a->policy, name);
	if (!sw)
		return json_error("no consent switch '%.33s' in the policy in force", name);
	/* The saved state with this switch changed; agent_apply() resolves it. */
	for (size_t i = 0; i < a->consent.n; i++)
		if (!strcmp(a->consent.v[i].name, name)) {
			a->consent.v[i].on = on;
			a->consent.v[i].reset = sw->reset;
		}
	/* A copy: agent_apply() writes a->policy_sha256 from its argument. */
	snprintf(sha, sizeof(sha), "%s", a->policy_sha256);
	r = agent_apply(a, a->policy, sha, false, &t, reason, sizeof(reason), NULL);
	if (r < 0) {
		a->consent = saved;
		return json_error("consent switch '%s' not set: %s", name, reason);
	}
	agent_consent_event(a, name, on, &req->peer);
	return agent_consent_list_json(a);
}
