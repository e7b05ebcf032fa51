/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Logging to stderr. Under systemd (JOURNAL_STREAM set) each line carries a syslog priority
 * prefix ("<3>") that journald turns into the entry's priority; otherwise lines read
 * "carwalld: error: ...". libbpf's own messages are routed here by log_setup_libbpf().
 *
 * Built with libsystemd (WITH_SYSTEMD=1) and with stderr being the journal stream itself
 * (JOURNAL_STREAM names its device and inode), messages go to journald natively instead
 * (sd_journal_sendv): MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and, for log_struct(), a MESSAGE_ID
 * (message_ids.h) and the caller's fields. A message journald does not take goes to stderr.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

#include <stddef.h>

/* A journal field of log_struct(): name in [A-Z0-9_], not starting with '_' (journald's own);
 * a NULL value leaves the field out. */
struct log_field {
	const char *name;
	const char *value;
};
#define LOG_MAX_FIELDS 24u

/* ident: program name for the plain form; max_level: LOG_LEVEL_INFO by default. */
void log_setup(const char *ident, enum log_level max_level);
void log_setup_libbpf(void);

/* Logs and returns error (a negative errno), so callers can `return log_error_errno(r, ...)`.
 * "%m" in the format prints strerror(-error). */
int log_internal(enum log_level level, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A message with a MESSAGE_ID and fields for the journal (only the message elsewhere). More
 * than LOG_MAX_FIELDS fields, or an invalid name: the message alone, to stderr. */
int log_struct_internal(enum log_level level, int error, const char *message_id,
			const struct log_field *fields, size_t n_fields, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

#define log_struct(level, id, fields, n, ...) \
	log_struct_internal((level), 0, (id), (fields), (n), __VA_ARGS__)
#define log_struct_errno(level, e, id, ...) log_struct_internal((level), (e), (id), NULL, 0, __VA_ARGS__)

/* Whether messages go to journald natively (for tests and diagnostics). */
bool log_journal_native(void);

#define log_error(...) log_internal(LOG_LEVEL_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_LEVEL_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_LEVEL_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_LEVEL_WARNING, (e), __VA_ARGS__)
