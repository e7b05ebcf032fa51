/* SPDX-License-Identifier: GPL-2.0-only */
/* `carwall events`: see carwall_events.c. */
#pragma once

#include <stdbool.h>

int carwall_events_main(int argc, char **argv, bool json);
