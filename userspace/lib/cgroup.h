/* SPDX-License-Identifier: GPL-2.0-only */
/* cgroup v2 discovery and manipulation: the mount, cgroup ids and levels, creating cgroups,
 * moving processes. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* The cgroup2 mount point, from /proc/self/mountinfo (works on hybrid hosts too). */
int cgroup_find_mount(char *buf, size_t size);

/*
 * Whether the cgroup2 hierarchy at mount is the one the kernel's cgroup ids and levels refer
 * to: this process in the initial cgroup namespace, and mount the hierarchy's root (mountinfo's
 * root field "/", not a bind-mounted subtree). Levels computed from paths below it are then
 * the kernel's. 0, or a negative errno with the reason.
 */
int cgroup_check_hierarchy(const char *mount, char *reason, size_t size);

/* 1 when this process is in the initial cgroup namespace, 0 when not, or a negative errno. */
int cgroup_ns_is_initial(void);

/* The file handle type of kernfs (cgroup2) nodes, the 64-bit cgroup id: <linux/exportfs.h>,
 * not in the UAPI. */
#define CGROUP_FILEID_KERNFS 0xfe

/*
 * The path of a live cgroup (as this process sees it) from its 64-bit id; mount_fd is the
 * cgroup2 mount, opened. -ESTALE once the cgroup was removed. Needs CAP_DAC_READ_SEARCH.
 */
int cgroup_path_of_id(int mount_fd, uint64_t id, char *buf, size_t size);

/* 0 when path is a directory on a cgroup2 file system, -ENOTDIR / -EMEDIUMTYPE otherwise. */
int cgroup_check_v2(const char *path);

/* The kernel's 64-bit id of the cgroup at path (what bpf_get_current_cgroup_id() returns). */
int cgroup_get_id(const char *path, uint64_t *ret_id);

/* The cgroup's level in the hierarchy (0 = root), which bpf_get_current_ancestor_cgroup_id()
 * takes; path must be below mount (the cgroup2 mount point). */
int cgroup_get_level(const char *mount, const char *path, unsigned *ret_level);

/* mkdir -p for a cgroup path below an existing cgroup. */
int cgroup_create(const char *path);

/* Move a process (0: the caller) into the cgroup. */
int cgroup_attach_pid(const char *path, pid_t pid);
