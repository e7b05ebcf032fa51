// SPDX-License-Identifier: GPL-2.0-only
#include "log.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_ident = "carwall";
static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_journal;

void log_setup(const char *ident, enum log_level max_level)
{
	log_ident = ident;
	log_max_level = max_level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

static const char *log_level_word(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERR:
		return "error: ";
	case LOG_LEVEL_WARNING:
		return "warning: ";
	case LOG_LEVEL_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

static void log_vwrite(enum log_level level, int error, const char *fmt, va_list ap)
{
	char msg[2048];
	char expanded[1024];
	const char *f = fmt;

	/* Expand %m from the given error, not from errno (which may have changed). */
	if (error != 0 && strstr(fmt, "%m")) {
		const char *err = strerror(error < 0 ? -error : error);
		size_t o = 0;
		for (const char *p = fmt; *p && o + 1 < sizeof(expanded); p++) {
			if (p[0] == '%' && p[1] == 'm') {
				for (const char *e = err; *e && o + 1 < sizeof(expanded); e++)
					expanded[o++] = *e == '%' ? ' ' : *e;
				p++;
			} else {
				expanded[o++] = *p;
			}
		}
		expanded[o] = '\0';
		f = expanded;
	}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(msg, sizeof(msg), f, ap);
#pragma GCC diagnostic pop
	/* One line per message; strip a trailing newline (libbpf ends its messages with one). */
	size_t n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", (int)level, msg);
	else
		fprintf(stderr, "%s: %s%s\n", log_ident, log_level_word(level), msg);
}

int log_internal(enum log_level level, int error, const char *fmt, ...)
{
	va_list ap;

	if (level <= log_max_level) {
		va_start(ap, fmt);
		log_vwrite(level, error, fmt, ap);
		va_end(ap);
	}
	return error < 0 ? error : -error;
}

static int log_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level l = level == LIBBPF_WARN ? LOG_LEVEL_WARNING
			   : level == LIBBPF_INFO ? LOG_LEVEL_DEBUG
						  : LOG_LEVEL_DEBUG;
	if (l > log_max_level)
		return 0;
	/* libbpf's messages start with "libbpf: " already. */
	log_vwrite(l, 0, fmt, ap);
	return 0;
}

void log_setup_libbpf(void)
{
	libbpf_set_print(log_libbpf_print);
}
