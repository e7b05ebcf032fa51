// SPDX-License-Identifier: GPL-2.0-only
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

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
