// SPDX-License-Identifier: GPL-2.0-only
#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
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

int cgroup_find_mount(char *buf, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
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
		unescape_octal(point);
		if (strlen(point) + 1 > size)
			return -ENAMETOOLONG;
		strcpy(buf, point);
		return 0;
	}
	return -ENOENT;
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
