/* SPDX-License-Identifier: GPL-2.0-only */
/* systemd's readiness protocol (sd_notify(3)): one datagram to $NOTIFY_SOCKET. */
#pragma once

/* Send e.g. "READY=1\nSTATUS=..." when $NOTIFY_SOCKET is set; 0 when it is not. */
int notify_send(const char *state);
