/* Bounded, escaped, one-line log records.  One writer: log_format. */
#include "log.h"
#include "mdm_limits.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

#define LOG_MAX_PROGRAM 48
#define LOG_MAX_REQID   64

static char log_program[LOG_MAX_PROGRAM] = "mdm";
static char log_reqid[LOG_MAX_REQID] = "-";
static enum log_level log_min = MDM_LOG_INFO;
static int log_fd = 2;

static const char *const log_names[MDM_LOG__MAX] = {"debug", "info", "warn", "error"};

/* Copies a short identifier, keeping only characters that need no escaping. */
static void log_copy_ident(char *dst, size_t cap, const char *src, const char *dflt)
{
	size_t n = 0;

	if (src == NULL || *src == '\0')
		src = dflt;
	for (; *src != '\0' && n + 1 < cap; src++) {
		unsigned char c = (unsigned char)*src;
		dst[n++] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '_';
	}
	dst[n] = '\0';
}

void log_init(const char *program, enum log_level min)
{
	log_copy_ident(log_program, sizeof(log_program), program, "mdm");
	log_set_level(min);
}

void log_set_level(enum log_level min)
{
	/* MDM_LOG__MAX silences everything (tests of refusals use it). */
	if ((unsigned)min <= MDM_LOG__MAX)
		log_min = min;
}

void log_set_fd(int fd)
{
	log_fd = fd < 0 ? 2 : fd;
}

mdm_err log_level_parse(const char *s, enum log_level *out)
{
	*out = MDM_LOG_INFO;
	if (s == NULL)
		return MDM_ERR_INVAL;
	for (int i = 0; i < MDM_LOG__MAX; i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return MDM_OK;
		}
	}
	return MDM_ERR_CONFIG;
}

void log_set_request_id(const char *id)
{
	log_copy_ident(log_reqid, sizeof(log_reqid), id, "-");
}

const char *log_get0_request_id(void)
{
	return log_reqid;
}

/*
 * The single bounded writer.  Appends src escaped while room remains for
 * the truncation marker, the closing quote and the newline; reports
 * whether everything fitted.
 */
struct logbuf {
	char *p;
	size_t len;
	size_t cap; /* usable bytes, excluding the reserved tail */
};

static int logbuf_put(struct logbuf *b, const char *s, size_t n)
{
	if (n > b->cap - b->len)
		return 0;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 1;
}

static int logbuf_put_escaped(struct logbuf *b, const char *src)
{
	static const char hex[] = "0123456789abcdef";

	for (const unsigned char *s = (const unsigned char *)src; *s != '\0'; s++) {
		char tmp[4];
		size_t n;

		if (*s == '\\' || *s == '"') {
			tmp[0] = '\\';
			tmp[1] = (char)*s;
			n = 2;
		} else if (*s < 0x20 || *s == 0x7f) {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[*s >> 4];
			tmp[3] = hex[*s & 0xf];
			n = 4;
		} else {
			tmp[0] = (char)*s;
			n = 1;
		}
		if (!logbuf_put(b, tmp, n))
			return 0;
	}
	return 1;
}

size_t log_format(char *buf, size_t cap, enum log_level level, const char *msg)
{
	static const char trunc[] = "...[truncated]";
	/* Always room for the marker, closing quote, newline and NUL. */
	const size_t tail = sizeof(trunc) - 1 + 3;
	struct logbuf b;
	char head[LOG_MAX_PROGRAM + LOG_MAX_REQID + 48];
	int ok;

	if (buf == NULL || cap == 0)
		return 0;
	if (cap <= tail + 1) {
		buf[0] = '\0';
		return 0;
	}
	if ((unsigned)level >= MDM_LOG__MAX)
		level = MDM_LOG_ERROR;
	b.p = buf;
	b.len = 0;
	b.cap = cap - tail;

	snprintf(head, sizeof(head), "%s: level=%s req=%s msg=\"", log_program, log_names[level],
	        log_reqid);
	ok = logbuf_put(&b, head, strlen(head)) && logbuf_put_escaped(&b, msg ? msg : "(null)");
	b.cap += tail; /* the reserved tail is ours now */
	if (!ok)
		(void)logbuf_put(&b, trunc, sizeof(trunc) - 1);
	(void)logbuf_put(&b, "\"\n", 2);
	buf[b.len] = '\0';
	return b.len;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[LOG_MAX_LINE];
	char line[LOG_MAX_LINE];
	va_list ap;
	size_t n;
	int r, saved = errno;

	if ((unsigned)level >= MDM_LOG__MAX || level < log_min)
		return;
	va_start(ap, fmt);
	r = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r < 0)
		snprintf(msg, sizeof(msg), "(unformattable log record)");
	else if ((size_t)r >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	n = log_format(line, sizeof(line), level, msg);
	/* One write per record: atomic on pipes for records below PIPE_BUF. */
	while (n > 0) {
		ssize_t w = write(log_fd, line, n);
		if (w < 0 && errno == EINTR)
			continue;
		break;
	}
	errno = saved;
}
