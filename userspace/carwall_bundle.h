/* SPDX-License-Identifier: GPL-2.0-only */
/* `carwall bundle ...`: making, signing, verifying and inspecting signed policy bundles. */
#pragma once

#include <stdbool.h>

/*
 * argv[0] is "bundle", argv[1] the command: keygen, sign, verify or inspect. `json` is true when
 * --json came before the object; it is accepted after the command too. Returns the exit code:
 * 0 success (verify: the bundle is valid), 1 failure (verify: refused, with the reason), 2 usage.
 */
int carwall_bundle_main(int argc, char **argv, bool json);
