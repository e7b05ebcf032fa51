// SPDX-License-Identifier: GPL-2.0-only
#include "bundle_digest.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <string.h>

void bundle_hex(const uint8_t *bytes, size_t n, char *ret)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		ret[2 * i] = digits[bytes[i] >> 4];
		ret[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	ret[2 * n] = '\0';
}

void bundle_sha256(const void *data, size_t size, uint8_t ret[BUNDLE_SHA256_BYTES])
{
	unsigned int len = 0;

	/* EVP_Digest() of SHA-256 only fails without memory; the hash is then all zeros, and
	 * matches nothing real. */
	if (EVP_Digest(data ? data : "", size, ret, &len, EVP_sha256(), NULL) != 1 ||
	    len != BUNDLE_SHA256_BYTES) {
		memset(ret, 0, BUNDLE_SHA256_BYTES);
		ERR_clear_error();
	}
}
