/*
 * One-line log records to stderr (Apache's error log under FastCGI).
 *
 * A record is formatted, escaped and truncated into one bounded buffer
 * (LOG_MAX_LINE) and written with a single write(2), so records from
 * concurrent processes never interleave.  Every record carries the
 * program name and the current request id.  Secrets (challenges, push
 * magic, tokens, keys, request bodies) are never passed to log_msg: log a
 * fingerprint or a length instead.
 */
#ifndef MDM_LOG_H
#define MDM_LOG_H

#include <stddef.h>

#include "errors.h"

enum log_level { MDM_LOG_DEBUG, MDM_LOG_INFO, MDM_LOG_WARN, MDM_LOG_ERROR, MDM_LOG__MAX };

/* Program name (e.g. "checkin.fcgi") and minimum level; fd 2 by default. */
void log_init(const char *program, enum log_level min);
void log_set_level(enum log_level min);
/* Where records go; tests point this at a pipe or file.  -1 restores 2. */
void log_set_fd(int fd);
MDM_WUR mdm_err log_level_parse(const char *s, enum log_level *out);

/* The id of the request being served ("-" when none).  Copied, bounded. */
void log_set_request_id(const char *id);
const char *log_get0_request_id(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Formats one record into buf (cap bytes, NUL-terminated, ends in '\n').
 * Returns the length written, excluding the NUL.  log_msg uses this;
 * it is public so that the escaping and bounds are tested directly.
 */
size_t log_format(char *buf, size_t cap, enum log_level level, const char *msg);

#define log_debug(...) log_msg(MDM_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(MDM_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(MDM_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(MDM_LOG_ERROR, __VA_ARGS__)

#endif
