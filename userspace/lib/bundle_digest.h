/* SPDX-License-Identifier: GPL-2.0-only */
/* SHA-256 and hex of bundle bytes, what bundle and bundle_state both use (OpenSSL libcrypto). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define BUNDLE_SHA256_BYTES 32
#define BUNDLE_SHA256_HEX_LEN 64

void bundle_sha256(const void *data, size_t size, uint8_t ret[BUNDLE_SHA256_BYTES]);
void bundle_hex(const uint8_t *bytes, size_t n, char *ret /* 2 * n + 1 */);
