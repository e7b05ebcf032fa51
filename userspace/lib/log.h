/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Logging to stderr. Under systemd (JOURNAL_STREAM set) each line carries a syslog priority
 * prefix ("<3>") that journald turns into the entry's priority; otherwise lines read
 * "carwalld: error: ...". libbpf's own messages are routed here by log_setup_libbpf().
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

/* ident: program name for the plain form; max_level: LOG_LEVEL_INFO by default. */
void log_setup(const char *ident, enum log_level max_level);
void log_setup_libbpf(void);

/* Logs and returns error (a negative errno), so callers can `return log_error_errno(r, ...)`.
 * "%m" in the format prints strerror(-error). */
int log_internal(enum log_level level, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) log_internal(LOG_LEVEL_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_LEVEL_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_LEVEL_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_LEVEL_WARNING, (e), __VA_ARGS__)
