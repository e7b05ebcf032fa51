// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests: this boot's id (userspace/lib/fileio.c, read_boot_id()), the one reader the agent
 * has for the inventory's boots and consent's drives: the kernel's form is taken, with or
 * without its newline; anything else is refused with -EINVAL and an empty id, a missing file
 * with its errno.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fileio.h"

#define UUID "0f8fad5b-d9cb-469f-a165-70867728950e"

static char dir[] = "/tmp/test_boot_id.XXXXXX";

/* The boot id read from a file holding content (a missing file when content is NULL). */
static int read_from(const char *content, char buf[static BOOT_ID_LEN + 1])
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/boot_id", dir);
	unlink(path);
	if (content) {
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(content, f);
		assert_int_equal(fclose(f), 0);
	}
	memset(buf, 'x', BOOT_ID_LEN + 1);
	return read_boot_id(path, buf);
}

static void test_the_kernels_form_is_read(void **state)
{
	char buf[BOOT_ID_LEN + 1];

	(void)state;
	assert_int_equal(read_from(UUID "\n", buf), 0);
	assert_string_equal(buf, UUID);
	assert_int_equal(read_from(UUID, buf), 0);
	assert_string_equal(buf, UUID);
}

static void test_anything_else_is_refused_with_an_empty_id(void **state)
{
	static const char *const bad[] = {
		"",
		"0f8fad5b-d9cb-469f-a165\n",		     /* short */
		UUID "0\n",				     /* long */
		"0F8FAD5B-D9CB-469F-A165-70867728950E\n",  /* upper case */
		"0f8fad5b-d9cb-469f-a165-70867728950g\n",  /* not hex */
		"0f8fad5b d9cb 469f a165 70867728950e\n",  /* spaces */
	};
	char buf[BOOT_ID_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(read_from(bad[i], buf), -EINVAL);
		assert_string_equal(buf, "");
	}
	assert_int_equal(read_from(NULL, buf), -ENOENT);
	assert_string_equal(buf, "");
}

static void test_this_machines_boot_id_is_read(void **state)
{
	char buf[BOOT_ID_LEN + 1];

	(void)state;
	if (access(BOOT_ID_PATH, R_OK) < 0)
		skip();
	assert_int_equal(read_boot_id(BOOT_ID_PATH, buf), 0);
	assert_int_equal(strlen(buf), BOOT_ID_LEN);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "%s/boot_id", dir);
	unlink(path);
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_kernels_form_is_read),
		cmocka_unit_test(test_anything_else_is_refused_with_an_empty_id),
		cmocka_unit_test(test_this_machines_boot_id_is_read),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
