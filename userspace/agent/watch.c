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
	int *dir_wds; /* watches of the folders of watch_set_dirs() */
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
	free(w->dir_wds);
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

/* What a folder's watch reports: a child made, removed or moved, the folder itself removed or
 * moved. (cgroupfs reports a child's rmdir as IN_DELETE in its parent, not as IN_DELETE_SELF of
 * the child; both are watched. IN_IGNORED, a watch gone, comes without asking.) */
#define WATCH_DIR_MASK                                                                             \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |     \
	 IN_ONLYDIR)

int watch_set_dirs(struct watch *w, char *const *dirs, size_t n)
{
	_cleanup_free_ int *wds = calloc(n + 1, sizeof(*wds));
	size_t n_wds = 0;
	int r = 0;

	if (!wds)
		return -ENOMEM;
	if (n > WATCH_MAX_DIRS)
		return -E2BIG;
	/*
	 * The new set is added before the old one is removed: a folder in both keeps its watch
	 * (inotify gives the same wd for the same inode), so no event falls in a gap. A folder
	 * made again has a new inode, hence a new watch.
	 */
	for (size_t i = 0; i < n; i++) {
		int wd = inotify_add_watch(w->fd, dirs[i], WATCH_DIR_MASK);

		if (wd < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue; /* its parent's watch reports when it appears */
			if (r == 0)
				r = negative_errno();
			continue;
		}
		wds[n_wds++] = wd;
	}
	for (size_t i = 0; i < w->n_dirs; i++) {
		bool kept = w->dir_wds[i] == w->file_wd;

		for (size_t k = 0; k < n_wds && !kept; k++)
			kept = wds[k] == w->dir_wds[i];
		if (!kept)
			inotify_rm_watch(w->fd, w->dir_wds[i]); /* EINVAL once the folder is gone */
	}
	free(w->dir_wds);
	w->dir_wds = TAKE_PTR(wds);
	w->n_dirs = n_wds;
	return r;
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
			} else if (watch_is_dir_wd(w, ev->wd) &&
				   ((ev->mask & IN_ISDIR) ||
				    (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)))) {
				/* A cgroup folder made, removed or moved, or a watched one gone. */
				*ret_dir_changed = true;
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	return 0;
}
