/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The anti-rollback state of signed bundles: for each bundle id, the highest version accepted
 * and the SHA-256 of its payload. Kept in one file of the agent's state folder,
 *
 *     carwall-bundle-state v1
 *     oem.headunit.policy 42 5f2b...e1
 *
 * (a header line, then one `id version sha256` line per id, sorted by id, each ending in "\n"),
 * mode 0600, replaced atomically: the new content goes to a temporary file that is written,
 * fsync()ed and renamed over the old one, and the folder is fsync()ed. A crash at any step
 * leaves the old or the new file; a temporary file left by a crash is never read, and is
 * removed by the next save. Only one process (the agent) may save a given folder.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle_digest.h"
#include "fileio.h"
#include "policy.h"

#define BUNDLE_STATE_FILE "bundle-state"
#define BUNDLE_STATE_TMP_FILE "bundle-state.tmp"
#define BUNDLE_STATE_HEADER "carwall-bundle-state v1"
#define BUNDLE_STATE_MAX_ENTRIES 256	    /* bundle ids */
#define BUNDLE_STATE_MAX_BYTES (64u * 1024) /* the file; 256 entries take 38 KiB */

struct bundle_state_entry {
	char id[POLICY_MAX_ID_LEN + 1];
	uint64_t version; /* 1..POLICY_BUNDLE_MAX_VERSION */
	uint8_t sha256[BUNDLE_SHA256_BYTES];
};

struct bundle_state {
	struct bundle_state_entry *entries; /* sorted by id */
	size_t n_entries;
};

/* An empty state (no bundle installed yet). */
int bundle_state_new(struct bundle_state **ret);

/*
 * Parse the content of a state file, strictly: the header line, then entries with a valid id,
 * a version in range without leading zeros and 64 lowercase hex digits, single spaces, every
 * line ending in "\n", no duplicate id, at most BUNDLE_STATE_MAX_ENTRIES. -EBADMSG with
 * "line N: reason" in reason[] on any defect (an empty file too), -EFBIG when too large.
 */
int bundle_state_parse(const char *data, size_t size, struct bundle_state **ret, char *reason,
		       size_t reason_size);

/*
 * Read DIR/bundle-state. A missing file is an empty state (first boot); the temporary file is
 * ignored. Errors as bundle_state_parse(), or the errno of the read.
 */
int bundle_state_load(const char *dir, struct bundle_state **ret, char *reason,
		      size_t reason_size);

/* The entry for a bundle id, or NULL. */
const struct bundle_state_entry *bundle_state_find(const struct bundle_state *s, const char *id);

/*
 * Record that `id` is at `version` with this payload hash. -ESTALE when that would lower the
 * version or give the recorded version other content, -ENOSPC past BUNDLE_STATE_MAX_ENTRIES,
 * -EINVAL for an invalid id or version. Recording the same version and hash again is a no-op.
 */
int bundle_state_set(struct bundle_state *s, const char *id, uint64_t version,
		     const uint8_t sha256[BUNDLE_SHA256_BYTES]);

/* The file content for s (NUL-terminated). */
int bundle_state_format(const struct bundle_state *s, char **ret_data, size_t *ret_size);

/* Replace DIR/bundle-state with s, atomically (see the top of this file). DIR must exist. */
int bundle_state_save(const char *dir, const struct bundle_state *s);

void bundle_state_free(struct bundle_state *s);

/*
 * Fault injection, for tests only: a hook called by bundle_state_save() after each step of its
 * durable write (file_replace_durably(), fileio.h). A test ends the process in it (fork() +
 * _exit()) to simulate a crash at that step.
 */
void bundle_state_set_fault_hook(void (*hook)(enum fileio_step step));
