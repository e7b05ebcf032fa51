// SPDX-License-Identifier: GPL-2.0-only
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

bool boot_id_valid(const char *s, size_t len)
{
	return len == BOOT_ID_LEN && strspn(s, "0123456789abcdef-") >= len;
}

int read_boot_id(const char *path, char buf[static BOOT_ID_LEN + 1])
{
	/* A procfs file: its size is 0 to stat(), so it is read as it comes. */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	char data[64];
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return negative_errno();
	do
		n = read(fd, data, sizeof(data) - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	if (n < BOOT_ID_LEN || (n > BOOT_ID_LEN && data[BOOT_ID_LEN] != '\n') ||
	    !boot_id_valid(data, BOOT_ID_LEN))
		return -EINVAL;
	memcpy(buf, data, BOOT_ID_LEN);
	buf[BOOT_ID_LEN] = '\0';
	return 0;
}

int read_file_limited(const char *path, size_t max_size, char **ret_data, size_t *ret_size)
{
	/* O_NONBLOCK: a FIFO (or a device) must not hang the caller in open(); it is refused
	 * below. Reads from a regular file ignore the flag. */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	_cleanup_free_ char *data = NULL;
	struct stat st;
	size_t got = 0;

	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((unsigned long long)st.st_size > max_size)
		return -EFBIG;

	data = malloc((size_t)st.st_size + 1);
	if (!data)
		return -ENOMEM;
	/* Read what fstat announced and one byte more, to notice a file that grew meanwhile. */
	for (;;) {
		ssize_t n = read(fd, data + got, (size_t)st.st_size + 1 - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > (size_t)st.st_size)
			return -EFBIG;
	}
	data[got] = '\0';
	*ret_data = TAKE_PTR(data);
	*ret_size = got;
	return 0;
}

static int write_all(int fd, const uint8_t *data, size_t size)
{
	while (size > 0) {
		ssize_t n = write(fd, data, size);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		data += n;
		size -= (size_t)n;
	}
	return 0;
}

static void step_done(void (*step)(enum fileio_step step), enum fileio_step s)
{
	if (step)
		step(s);
}

int file_replace_durably(const char *dir, const char *name, const char *tmp_name, const void *data,
		      size_t size, void (*step)(enum fileio_step step))
{
	_cleanup_close_ int dfd = -1, fd = -1;
	size_t half = size / 2;
	int r;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return negative_errno();
	if (unlinkat(dfd, tmp_name, 0) < 0 && errno != ENOENT)
		return negative_errno();
	fd = openat(dfd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return negative_errno();
	step_done(step, FILEIO_STEP_TMP_CREATED);
	r = write_all(fd, data, half);
	if (r < 0)
		goto fail;
	step_done(step, FILEIO_STEP_TMP_HALF_WRITTEN);
	r = write_all(fd, (const uint8_t *)data + half, size - half);
	if (r < 0)
		goto fail;
	step_done(step, FILEIO_STEP_TMP_WRITTEN);
	/* 0600 whatever the umask was. */
	if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
		r = negative_errno();
		goto fail;
	}
	if (close(TAKE_FD(fd)) < 0) {
		r = negative_errno();
		goto fail;
	}
	step_done(step, FILEIO_STEP_TMP_SYNCED);
	if (renameat(dfd, tmp_name, dfd, name) < 0) {
		r = negative_errno();
		goto fail;
	}
	step_done(step, FILEIO_STEP_RENAMED);
	if (fsync(dfd) < 0)
		return negative_errno();
	step_done(step, FILEIO_STEP_DIR_SYNCED);
	return 0;

fail:
	(void)unlinkat(dfd, tmp_name, 0);
	return r;
}
