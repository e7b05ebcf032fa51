// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the control protocol's request parser (control_parse_request() in
 * userspace/lib/control.c): whatever a client sends first, as received so far and at its end of
 * file. The parser reads only the bytes it is given, and what it accepts is what the agent may
 * act on, so each result is checked:
 *   - accepted: the line is printable ASCII within CONTROL_MAX_REQUEST, ends at a newline (or at
 *     the end of the input at eof), only `install SIZE` carries a payload and SIZE is within
 *     CONTROL_MAX_PAYLOAD; the header alone parses to the same result;
 *   - more bytes needed: only before eof, with no newline yet and room left;
 *   - refused: a known errno and a one-line reason for the client.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;

	for (int eof = 0; eof < 2; eof++) {
		struct control_header h = {}, again = {};
		const char *error = NULL, *error2 = NULL;
		int r = control_parse_request(buf, size, eof, &h, &error);

		if (r == 0) {
			check(!error);
			check(h.line_len >= 1 && h.line_len <= h.header_len);
			check(h.header_len <= size);
			check(h.header_len <= CONTROL_MAX_REQUEST);
			check(h.header_len == h.line_len + 1 ? buf[h.line_len] == '\n'
							      : eof && h.header_len == size);
			for (size_t i = 0; i < h.line_len; i++)
				check(buf[i] >= 0x20 && buf[i] <= 0x7e);
			check(h.payload_size <= CONTROL_MAX_PAYLOAD);
			check((h.payload_size > 0) ==
			      (h.line_len > 8 && !memcmp(buf, "install ", 8)));
			check(!h.payload_size || h.header_len == h.line_len + 1);
			check(control_parse_request(buf, h.header_len, eof, &again, &error2) == 0);
			check(!memcmp(&h, &again, sizeof(h)));
		} else if (r == -EAGAIN) {
			check(!eof && !error && size < CONTROL_MAX_REQUEST);
			check(!memchr(buf, '\n', size));
		} else {
			check(r == -EMSGSIZE || r == -EBADMSG || r == -EINVAL || r == -EFBIG ||
			      r == -EPERM);
			check(error && *error && !strchr(error, '\n'));
		}
	}
	return 0;
}
