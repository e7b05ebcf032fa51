/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the agent watches with inotify: the policy file (an editor's write-then-rename included)
 * and the folders where app cgroups appear (a systemd unit that starts creates its cgroup).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define WATCH_MAX_DIRS 256

struct watch;

int watch_new(struct watch **ret);
void watch_free(struct watch *w);

/* The fd to poll for readability. */
int watch_fd(const struct watch *w);

/* Watch the file at path: its folder is watched for writes, renames and creations of its name. */
int watch_set_file(struct watch *w, const char *path);

/* Watch these folders for new subfolders (replaces the previous set). Missing folders are
 * skipped. */
int watch_set_dirs(struct watch *w, char *const *dirs, size_t n);

/* Drain pending events; tells whether the file changed and whether a watched folder got a new
 * subfolder. */
int watch_read(struct watch *w, bool *ret_file_changed, bool *ret_dir_changed);
