// SPDX-License-Identifier: GPL-2.0-only
#include "log.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* The Makefile's WITH_SYSTEMD: journald's native protocol through libsystemd. */
#ifndef CARWALL_WITH_SYSTEMD
#define CARWALL_WITH_SYSTEMD 0
#endif
#if CARWALL_WITH_SYSTEMD
/* No CODE_FILE, CODE_LINE, CODE_FUNC: they would name log.c for every message. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#endif

static const char *log_ident = "carwall";
static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_journal;
static bool log_native;

/* Whether stderr is the journal stream systemd connected (JOURNAL_STREAM is "DEVICE:INODE" of
 * it, inherited by children whose stderr may be something else). */
static bool log_stderr_is_journal(const char *stream)
{
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!stream || sscanf(stream, "%llu:%llu%n", &dev, &ino, &end) != 2 || stream[end] != '\0')
		return false;
	return fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_setup(const char *ident, enum log_level max_level)
{
	const char *stream = getenv("JOURNAL_STREAM");

	log_ident = ident;
	log_max_level = max_level;
	log_journal = stream != NULL;
	log_native = CARWALL_WITH_SYSTEMD && log_stderr_is_journal(stream);
}

bool log_journal_native(void)
{
	return log_native;
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

static bool log_field_name_valid(const char *name)
{
	if (!name || !*name || *name == '_' || strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

#if CARWALL_WITH_SYSTEMD
/* One entry in journald's native protocol; 0, or a negative errno (the caller then writes to
 * stderr: a message is never lost). */
static int log_journal_send(enum log_level level, const char *message_id,
			    const struct log_field *fields, size_t n_fields, const char *msg)
{
	char *items[LOG_MAX_FIELDS + 4] = {};
	struct iovec iov[LOG_MAX_FIELDS + 4];
	size_t n = 0;
	int r = 0;

	if (asprintf(&items[n++], "MESSAGE=%s", msg) < 0 ||
	    asprintf(&items[n++], "PRIORITY=%d", (int)level) < 0 ||
	    asprintf(&items[n++], "SYSLOG_IDENTIFIER=%s", log_ident) < 0 ||
	    (message_id && asprintf(&items[n++], "MESSAGE_ID=%s", message_id) < 0)) {
		items[n - 1] = NULL;
		r = -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < n_fields; i++) {
		if (!fields[i].value)
			continue;
		if (asprintf(&items[n++], "%s=%s", fields[i].name, fields[i].value) < 0) {
			items[n - 1] = NULL;
			r = -ENOMEM;
		}
	}
	for (size_t i = 0; r == 0 && i < n; i++)
		iov[i] = (struct iovec){ .iov_base = items[i], .iov_len = strlen(items[i]) };
	if (r == 0)
		r = sd_journal_sendv(iov, (int)n);
	for (size_t i = 0; i < n; i++)
		free(items[i]);
	return r < 0 ? r : 0;
}
#endif

static void log_vwrite(enum log_level level, int error, const char *message_id,
		       const struct log_field *fields, size_t n_fields, const char *fmt, va_list ap)
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
#if CARWALL_WITH_SYSTEMD
	if (log_native && n_fields <= LOG_MAX_FIELDS) {
		bool valid = true;

		for (size_t i = 0; i < n_fields; i++)
			valid = valid && log_field_name_valid(fields[i].name);
		if (valid && log_journal_send(level, message_id, fields, n_fields, msg) == 0)
			return;
	}
#else
	(void)message_id;
	(void)fields;
	(void)n_fields;
	(void)log_field_name_valid;
#endif
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
		log_vwrite(level, error, NULL, NULL, 0, fmt, ap);
		va_end(ap);
	}
	return error < 0 ? error : -error;
}

int log_struct_internal(enum log_level level, int error, const char *message_id,
			const struct log_field *fields, size_t n_fields, const char *fmt, ...)
{
	va_list ap;

	if (level <= log_max_level) {
		va_start(ap, fmt);
		log_vwrite(level, error, message_id, fields, n_fields, fmt, ap);
		va_end(ap);
	}
	return error < 0 ? error : -error;
}

/*
 * A verifier log comes as one libbpf message of many lines, the reason for a refusal at its end:
 * one record per line, the first LOG_LIBBPF_HEAD_LINES and the last LOG_LIBBPF_TAIL_LINES (a log
 * may have a million lines), never cut at a buffer's size.
 */
#define LOG_LIBBPF_HEAD_LINES 8
#define LOG_LIBBPF_TAIL_LINES 60

static int log_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level l = level == LIBBPF_WARN ? LOG_LEVEL_WARNING
			   : level == LIBBPF_INFO ? LOG_LEVEL_DEBUG
						  : LOG_LEVEL_DEBUG;
	size_t n_lines = 0, i = 0;
	char *s = NULL;

	if (l > log_max_level)
		return 0;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (vasprintf(&s, fmt, ap) < 0)
		return 0;
#pragma GCC diagnostic pop
	for (const char *p = s; *p; p++)
		n_lines += *p == '\n' || !p[1];
	/* libbpf's messages start with "libbpf: " already; the lines of a log that it quotes not. */
	for (const char *p = s; *p; i++) {
		size_t len = strcspn(p, "\n");

		if (i < LOG_LIBBPF_HEAD_LINES || i + LOG_LIBBPF_TAIL_LINES >= n_lines)
			log_internal(l, 0, "%.*s", (int)len, p);
		else if (i == LOG_LIBBPF_HEAD_LINES)
			log_internal(l, 0, "  (%zu lines of libbpf's message left out)",
				     n_lines - LOG_LIBBPF_HEAD_LINES - LOG_LIBBPF_TAIL_LINES);
		p += len;
		if (*p)
			p++;
	}
	free(s);
	return 0;
}

void log_setup_libbpf(void)
{
	libbpf_set_print(log_libbpf_print);
}
