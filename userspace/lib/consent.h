/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Driver consent state: which of the policy's switches (`consent.switches`) are on, kept in the
 * agent's state folder so that a persistent switch survives restarts and reboots and a per-drive
 * one (`reset: drive`) goes back to its default at the next boot (a new boot id).
 *
 * The file <state-dir>/consent, written whole and durably (temporary file, fsync, rename, fsync
 * of the folder), one line each, at most CONSENT_MAX_BYTES:
 *
 *   carwall-consent 1
 *   boot <boot id>                              the boot its per-drive states belong to
 *   switch <name> on|off persistent|drive      at most POLICY_MAX_SWITCHES lines
 *
 * A switch the policy in force no longer declares is dropped; one it declares that the file
 * does not hold (or a per-drive one of another boot) takes its default. A file that cannot be
 * read or parsed tightens, never loosens: every switch is taken as off until the driver sets
 * them again.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fileio.h"
#include "policy.h"

#define CONSENT_FILE	     "consent"
#define CONSENT_TMP_FILE     "consent.tmp"
#define CONSENT_MAX_BYTES    8192
#define CONSENT_BOOT_ID_LEN  BOOT_ID_LEN

struct consent_entry {
	char name[POLICY_MAX_CONSENT_NAME + 1];
	bool on;
	enum policy_reset reset;
};

struct consent_state {
	char boot_id[CONSENT_BOOT_ID_LEN + 1]; /* "" when unknown */
	struct consent_entry v[POLICY_MAX_SWITCHES];
	size_t n;
	bool all_off; /* the saved state could not be read: every switch off */
};

/* Parse the file's bytes. 0, or -EINVAL with a reason (one line). */
int consent_parse(const char *data, size_t size, struct consent_state *ret, char *reason,
		  size_t reason_size);

/* Format it (NUL-terminated, *ret_size without the NUL). 0 or -ENOMEM. */
int consent_format(const struct consent_state *s, char **ret_data, size_t *ret_size);

/*
 * Read <dir>/consent: 0 with *ret (empty when there is no file yet), or a negative errno with
 * *ret set to all_off and a reason: the caller says so and goes on, tightened.
 */
int consent_load(const char *dir, struct consent_state *ret, char *reason, size_t reason_size);

/* Write <dir>/consent durably. 0 or a negative errno. */
int consent_save(const char *dir, const struct consent_state *s);

/*
 * The state of each of p's switches (on[i] for p->consent.switches[i]) from the saved state s
 * at boot `boot_id`: its saved state if it is persistent, or per-drive and saved in this boot;
 * else its default; every switch off when s->all_off.
 */
void consent_resolve(const struct policy *p, const struct consent_state *s, const char *boot_id,
		     bool on[static POLICY_MAX_SWITCHES]);

/* The state to save for p's switches in on[] (the switches p does not declare dropped). */
void consent_from_policy(const struct policy *p, const bool *on, const char *boot_id,
			 struct consent_state *ret);
