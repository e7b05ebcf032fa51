/* SPDX-License-Identifier: GPL-2.0-only */
/* Reading a whole file once into memory, with its size checked before reading; replacing one
 * durably; this boot's id. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define BOOT_ID_LEN  36 /* a UUID, as the kernel gives it without its newline */
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

/* Whether the len bytes at s are a boot id (lower-case hex digits and dashes, BOOT_ID_LEN). */
bool boot_id_valid(const char *s, size_t len);

/*
 * This boot's id from path (BOOT_ID_PATH, or a file holding one) into buf: 0, or a negative
 * errno (-EINVAL when the file holds no boot id), buf "" then.
 */
int read_boot_id(const char *path, char buf[static BOOT_ID_LEN + 1]);

/*
 * Read the regular file at path into a NUL-terminated buffer (the NUL is not counted in
 * *ret_size). -EFBIG when it is larger than max_size, -EINVAL when it is not a regular file.
 */
int read_file_limited(const char *path, size_t max_size, char **ret_data, size_t *ret_size);

/* The steps of file_replace_durably(), for fault injection in tests. */
enum fileio_step {
	FILEIO_STEP_TMP_CREATED,
	FILEIO_STEP_TMP_HALF_WRITTEN,
	FILEIO_STEP_TMP_WRITTEN,
	FILEIO_STEP_TMP_SYNCED,
	FILEIO_STEP_RENAMED,
	FILEIO_STEP_DIR_SYNCED,
	FILEIO_STEP_COUNT,
};

/*
 * Replace file `name` in folder dir with data, so that a crash at any point leaves the old file or
 * the new one, whole: written to tmp_name (replacing one a crash left), fsync()ed, mode 0600,
 * renamed over `name`, then the folder fsync()ed. step (NULL: none) is called after each step;
 * a test ends the process there (fork() + _exit()) to simulate a crash. Returns 0 or a negative
 * errno (the temporary file removed).
 */
int file_replace_durably(const char *dir, const char *name, const char *tmp_name, const void *data,
		      size_t size, void (*step)(enum fileio_step step));
