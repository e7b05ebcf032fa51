// SPDX-License-Identifier: GPL-2.0-only
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "util.h"

/* Undo mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape_octal(char *s)
{
	char *o = s;

	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
		    p[3] >= '0' && p[3] <= '7') {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/*
 * A cgroup2 line of /proc/self/mountinfo: its root (the folder of the hierarchy mounted, "/"
 * for the whole of it) and its mount point, unescaped. With want_point, the last line of that
 * mount point (the mount on top, the one paths reach); else the first cgroup2 line.
 */
static int cgroup_mountinfo(const char *want_point, char *ret_root, char *ret_point, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	bool found = false;
	size_t cap = 0;

	if (!f)
		return negative_errno();
	/* "36 35 98:0 /root /mnt/point rw,noatime master:1 - cgroup2 cgroup2 rw" */
	while (getline(&line, &cap, f) > 0) {
		char *sep = strstr(line, " - ");
		char root[4096], point[4096], fstype[64];

		if (!sep || sscanf(sep + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) != 2)
			continue;
		unescape_octal(root);
		unescape_octal(point);
		if (want_point && strcmp(point, want_point))
			continue;
		if (strlen(point) + 1 > size || strlen(root) + 1 > size)
			return -ENAMETOOLONG;
		strcpy(ret_root, root);
		strcpy(ret_point, point);
		found = true;
		if (!want_point)
			break;
	}
	return found ? 0 : -ENOENT;
}

int cgroup_find_mount(char *buf, size_t size)
{
	char root[4096];

	return cgroup_mountinfo(NULL, root, buf, size < sizeof(root) ? size : sizeof(root));
}

/* The inode number of the initial cgroup namespace (PROC_CGROUP_INIT_INO, Linux >= 4.6). */
#define CGROUP_INIT_NS_INO 0xEFFFFFFBu

int cgroup_ns_is_initial(void)
{
	struct stat st;

	if (stat("/proc/self/ns/cgroup", &st) < 0)
		return errno == ENOENT ? 1 : negative_errno(); /* no cgroup namespaces at all */
	return st.st_ino == CGROUP_INIT_NS_INO;
}

int cgroup_check_hierarchy(const char *mount, char *reason, size_t size)
{
	char root[4096], point[4096];
	int r = cgroup_ns_is_initial();

	if (r < 0) {
		snprintf(reason, size, "cannot read /proc/self/ns/cgroup: %s", strerror(-r));
		return r;
	}
	if (r == 0) {
		snprintf(reason, size,
			 "this process is in a cgroup namespace: the cgroup paths it sees are not "
			 "the hierarchy's, so the levels computed from them would not be the "
			 "kernel's and no app would be managed; run carwalld in the initial cgroup "
			 "namespace");
		return -EXDEV;
	}
	r = cgroup_mountinfo(mount, root, point, sizeof(root));
	if (r < 0) {
		snprintf(reason, size, "%s is not a cgroup2 mount point in /proc/self/mountinfo",
			 mount);
		return r;
	}
	if (strcmp(root, "/")) {
		snprintf(reason, size,
			 "the cgroup2 file system at %s is the subtree %s of the hierarchy (a bind "
			 "mount), not its root: the levels computed from paths would not be the "
			 "kernel's and no app would be managed; mount cgroup2 itself there",
			 mount, root);
		return -EXDEV;
	}
	return 0;
}

int cgroup_path_of_id(int mount_fd, uint64_t id, char *buf, size_t size)
{
	union {
		struct file_handle fh;
		char raw[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h = { .fh.handle_bytes = sizeof(uint64_t), .fh.handle_type = CGROUP_FILEID_KERNFS };
	_cleanup_close_ int fd = -1;
	char link[64];
	ssize_t n;

	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(mount_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, size);
	if (n < 0)
		return negative_errno();
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

int cgroup_check_v2(const char *path)
{
	struct statfs sfs;
	struct stat st;

	if (stat(path, &st) < 0)
		return negative_errno();
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (statfs(path, &sfs) < 0)
		return negative_errno();
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return -EMEDIUMTYPE;
	return 0;
}

int cgroup_get_id(const char *path, uint64_t *ret_id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mount_id;

	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) < 0)
		return negative_errno();
	if (h.fh.handle_bytes != sizeof(uint64_t))
		return -EPROTO;
	memcpy(ret_id, h.fh.f_handle, sizeof(*ret_id));
	return 0;
}

int cgroup_get_level(const char *mount, const char *path, unsigned *ret_level)
{
	size_t n = strlen(mount);
	unsigned level = 0;

	while (n > 1 && mount[n - 1] == '/')
		n--;
	if (strncmp(path, mount, n) || (path[n] != '/' && path[n] != '\0'))
		return -EXDEV;
	for (const char *p = path + n; *p; p++)
		if (*p == '/' && p[1] != '/' && p[1] != '\0')
			level++;
	*ret_level = level;
	return 0;
}

int cgroup_create(const char *path)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return negative_errno();
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return negative_errno();
	return cgroup_check_v2(p);
}

int cgroup_attach_pid(const char *path, pid_t pid)
{
	_cleanup_free_ char *procs = NULL;
	_cleanup_close_ int fd = -1;
	char buf[32];
	int n;

	if (asprintf(&procs, "%s/cgroup.procs", path) < 0)
		return -ENOMEM;
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	if (write(fd, buf, (size_t)n) != n)
		return negative_errno();
	return 0;
}
