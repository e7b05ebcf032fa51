/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the agent watches with inotify: the policy file (an editor's write-then-rename included)
 * and the folders where app cgroups appear (a systemd unit that starts creates its cgroup).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Folders watched for app cgroups: every app cgroup, the guard and their parents. */
#define WATCH_MAX_DIRS 16384

struct watch;

int watch_new(struct watch **ret);
void watch_free(struct watch *w);

/* The fd to poll for readability. */
int watch_fd(const struct watch *w);

/* Watch the file at path: its folder is watched for writes, renames and creations of its name. */
int watch_set_file(struct watch *w, const char *path);

/*
 * Watch these folders for subfolders made or removed and for their own removal (replaces the
 * previous set without a gap). Missing folders are skipped: watch their parent. Returns the
 * first error of inotify_add_watch() other than a missing folder (e.g. -ENOSPC: the user's
 * watch limit); the other folders are watched all the same.
 */
int watch_set_dirs(struct watch *w, char *const *dirs, size_t n);

/* Drain pending events; tells whether the file changed and whether a watched folder got or lost
 * a subfolder, or was itself removed or moved (or events were lost). */
int watch_read(struct watch *w, bool *ret_file_changed, bool *ret_dir_changed);
