/* SPDX-License-Identifier: GPL-2.0-only */
/* `carwall explain`: the verdict for one flow, offline (no kernel, no agent). */
#pragma once

#include <stdbool.h>

/* Exit codes of `carwall explain` (1 error and 2 usage are carwall's own). */
#define EXPLAIN_EXIT_ALLOWED 0 /* every flow asked about is allowed */
#define EXPLAIN_EXIT_REFUSED 3 /* every flow asked about is refused */
#define EXPLAIN_EXIT_PARTLY  4 /* some are allowed, some refused */

/*
 * argv[0] is "explain"; `json` is set when --json came before the object. Prints the result
 * (or the error, as JSON in JSON mode) and returns the exit code.
 */
int carwall_explain_main(int argc, char **argv, bool json);
