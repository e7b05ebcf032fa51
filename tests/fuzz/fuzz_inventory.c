// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the flow inventory's file parser (inventory_parse() in
 * userspace/lib/inventory.c), which reads what the agent wrote in its state folder or a file
 * copied from a unit (`carwall flows --inventory FILE`). What it accepts is checked: within the
 * bound, every record valid, and formatting it again gives a file that parses to the same records.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_RECORDS 64

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inventory *inv = NULL, *again = NULL;
	char reason[256] = "";
	char *text = NULL;
	size_t len = 0;
	int r;

	r = inventory_parse((const char *)data, size, FUZZ_MAX_RECORDS, &inv, reason,
			    sizeof(reason));
	if (r < 0) {
		check(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
		check(!inv);
		return 0;
	}
	check(inventory_count(inv) <= FUZZ_MAX_RECORDS);
	for (size_t i = 0; i < inventory_count(inv); i++)
		check(inventory_record_valid(inventory_get(inv, i)));
	check(inventory_format(inv, &text, &len) == 0);
	check(len <= inventory_max_file_bytes(inventory_count(inv)));
	check(inventory_parse(text, len, FUZZ_MAX_RECORDS, &again, NULL, 0) == 0);
	check(inventory_count(again) == inventory_count(inv));
	for (size_t i = 0; i < inventory_count(inv); i++)
		check(!memcmp(inventory_get(inv, i), inventory_get(again, i),
			      sizeof(struct inventory_record)));
	free(text);
	inventory_free(again);
	inventory_free(inv);
	return 0;
}
