/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The `carwall` command: one file per OBJECT (bpftool's way), carwall.c holding main, the global
 * options and the command table. What the object files share is declared here.
 */
#pragma once

#include <stdbool.h>

/* `carwall app wait-managed`: see app.c. */
int carwall_app_main(int argc, char **argv, bool json, bool quiet, const char *run_dir);

/*
 * `carwall bundle ...`: making, signing, verifying and inspecting signed policy bundles.
 * argv[0] is "bundle", argv[1] the command: keygen, sign, verify or inspect. `json` is true when
 * --json came before the object; it is accepted after the command too. Returns the exit code:
 * 0 success (verify: the bundle is valid), 1 failure (verify: refused, with the reason), 2 usage.
 */
int carwall_bundle_main(int argc, char **argv, bool json);

/* `carwall events`: see events.c. */
int carwall_events_main(int argc, char **argv, bool json);

/* `carwall explain`: the verdict for one flow, offline (no kernel, no agent). */

/* Exit codes of `carwall explain` (1 error and 2 usage are carwall's own). */
#define EXPLAIN_EXIT_ALLOWED 0 /* every flow asked about is allowed */
#define EXPLAIN_EXIT_REFUSED 3 /* every flow asked about is refused */
#define EXPLAIN_EXIT_PARTLY  4 /* some are allowed, some refused */

/*
 * argv[0] is "explain"; `json` is set when --json came before the object. Prints the result
 * (or the error, as JSON in JSON mode) and returns the exit code.
 */
int carwall_explain_main(int argc, char **argv, bool json);
