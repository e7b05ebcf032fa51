// SPDX-License-Identifier: GPL-2.0-only
#include "watch.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "util.h"

struct watch {
	int fd;
	int file_wd;
	char *file_name; /* basename of the watched file */
	int dir_wds[WATCH_MAX_DIRS];
	size_t n_dirs;
};

int watch_new(struct watch **ret)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->file_wd = -1;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		int r = negative_errno();
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	close(w->fd);
	free(w->file_name);
	free(w);
}

int watch_fd(const struct watch *w)
{
	return w->fd;
}

int watch_set_file(struct watch *w, const char *path)
{
	_cleanup_free_ char *d = strdup(path), *b = strdup(path);
	int wd;

	if (!d || !b)
		return -ENOMEM;
	/* The folder, not the file: a rename over the file replaces the inode we would watch. */
	wd = inotify_add_watch(w->fd, dirname(d), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE);
	if (wd < 0)
		return negative_errno();
	free(w->file_name);
	w->file_name = strdup(basename(b));
	if (!w->file_name)
		return -ENOMEM;
	w->file_wd = wd;
	return 0;
}

int watch_set_dirs(struct watch *w, char *const *dirs, size_t n)
{
	for (size_t i = 0; i < w->n_dirs; i++)
		if (w->dir_wds[i] != w->file_wd)
			inotify_rm_watch(w->fd, w->dir_wds[i]);
	w->n_dirs = 0;
	for (size_t i = 0; i < n && w->n_dirs < WATCH_MAX_DIRS; i++) {
		int wd = inotify_add_watch(w->fd, dirs[i], IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_MASK_ADD);

		if (wd < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			return negative_errno();
		}
		w->dir_wds[w->n_dirs++] = wd;
	}
	return 0;
}

static bool watch_is_dir_wd(const struct watch *w, int wd)
{
	for (size_t i = 0; i < w->n_dirs; i++)
		if (w->dir_wds[i] == wd)
			return true;
	return false;
}

int watch_read(struct watch *w, bool *ret_file_changed, bool *ret_dir_changed)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

	*ret_file_changed = *ret_dir_changed = false;
	/* Bounded: the queue is finite, and each read drains part of it. */
	for (int rounds = 0; rounds < 1024; rounds++) {
		ssize_t n = read(w->fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & IN_Q_OVERFLOW) {
				/* Events were lost: assume everything changed. */
				*ret_file_changed = *ret_dir_changed = true;
			} else if (ev->len && ev->wd == w->file_wd && w->file_name &&
				   !strcmp(ev->name, w->file_name)) {
				*ret_file_changed = true;
			} else if (ev->len && (ev->mask & IN_ISDIR) && watch_is_dir_wd(w, ev->wd)) {
				*ret_dir_changed = true;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	return 0;
}
