/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The MESSAGE_ID of each kind of record carwalld sends to the journal (like systemd's
 * sd-messages.h): fixed 128-bit ids made once with `systemd-id128 new`, never reused for
 * another kind. `journalctl MESSAGE_ID=...` lists one kind; README "AGL deployment" lists them
 * with their priorities.
 */
#pragma once

/* Flow evidence (lib/events.h): a refused flow (warning), an audited one (notice), and the
 * summary of the records the journal's quota kept out (notice). */
#define CW_MESSAGE_FLOW_REFUSED "960487e1854244a49f6820b5107ed92a"
#define CW_MESSAGE_FLOW_AUDITED "a8972b0665ac4d24b3c541381cf2718b"
#define CW_MESSAGE_FLOWS_NOT_LOGGED "d752bece5d004dc689ed0c319e1b733a"

/* The agent's lifecycle: ready (info), a policy in force (info), a policy refused (error), no
 * valid policy so every app refused (error), stopping (info). */
#define CW_MESSAGE_READY "54e4aef506f44ef9985bc2cba3f2f20d"
#define CW_MESSAGE_POLICY_IN_FORCE "a0f187d90ddd4de6a13b5829accfeacd"
#define CW_MESSAGE_POLICY_REFUSED "57f2ccd0d0c546289ab1298645c6c537"
#define CW_MESSAGE_FAIL_CLOSED "303b9d6ae76e41cdb112ca3633ad476e"
#define CW_MESSAGE_STOPPING "05bcd745dedf4d52afece2a8954680fd"
