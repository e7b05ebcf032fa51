/* SPDX-License-Identifier: GPL-2.0-only */
/* Reading a whole file once into memory, with its size checked before reading. */
#pragma once

#include <stddef.h>

/*
 * Read the regular file at path into a NUL-terminated buffer (the NUL is not counted in
 * *ret_size). -EFBIG when it is larger than max_size, -EINVAL when it is not a regular file.
 */
int read_file_limited(const char *path, size_t max_size, char **ret_data, size_t *ret_size);
