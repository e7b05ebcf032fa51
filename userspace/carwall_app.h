/* SPDX-License-Identifier: GPL-2.0-only */
/* `carwall app wait-managed`: see carwall_app.c. */
#pragma once

#include <stdbool.h>

int carwall_app_main(int argc, char **argv, bool json, bool quiet, const char *run_dir);
