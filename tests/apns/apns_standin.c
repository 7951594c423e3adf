/*
 * apns_standin: a test double for Apple's push service (APNs, "Sending
 * notification requests to APNs", certificate-based), as an MDM server
 * uses it.  A FastCGI program behind Apache (mod_http2, mod_ssl with
 * SSLVerifyClient require against the push certificate's issuer,
 * mod_proxy_fcgi); tests/apns/apns.sh starts it.  Usage:
 *
 *     apns_standin DIR
 *
 * It checks what APNs checks for an MDM push: POST, path
 * /3/device/<hex token>, apns-topic equal to the UID in the client
 * certificate's subject, body exactly {"mdm":"<PushMagic>"} of at most
 * 4096 bytes; and answers as APNs does (200 with apns-id, or a status and
 * {"reason":"..."}).
 *
 * DIR/rules, re-read on every request, makes it answer otherwise for
 * chosen tokens: one rule a line, "TOKEN STATUS [COUNT] [REASON]", TOKEN
 * a hex token or "*" for any, COUNT how many requests the rule answers
 * before it is used up (absent: all), REASON replacing the usual one for
 * STATUS.  The first rule that matches wins; a counted rule is
 * decremented in the file (and removed at 0) under flock(2) on it.
 *
 * DIR/requests.tsv gets one line per request, written before the answer
 * (fields below).  It holds push magic in clear: this is a test
 * double, and the tests compare it.
 */
#include "fcgi.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Apple: a notification payload is at most 4096 bytes. */
#define APNS_MAX_PAYLOAD   4096
#define APNS_MIN_TOKEN_HEX 16
#define APNS_MAX_TOKEN_HEX 200
#define APPLE_MAX_MAGIC    256
#define APNS_MAX_RULES     65536
#define APNS_MAX_FIELD     512
#define APNS_PATH_PREFIX   "/3/device/"

/*
 * A record is one line of tab-separated fields, in this order:
 *   time (UTC, microseconds)  status  reason  apns-id  protocol (SERVER_PROTOCOL)
 *   method  token  apns-topic  push-magic  apns-push-type
 *   cert-uid  cert-serial  cert-subject  cert-issuer
 * "-" stands for empty or absent; tabs and control characters become '?'.
 */

struct standin {
	char rules[PATH_MAX];
	char records[PATH_MAX];
	int records_fd; /* O_APPEND, open for the program's life (apns_reset truncates it) */
};

/* What one request turned out to be, for the answer and the record. */
struct verdict {
	int status;
	const char *reason; /* NULL on 200 */
	char reason_buf[64];
	char apns_id[37];
	const char *token; /* borrowed from the path, may be "" */
	char magic[APPLE_MAX_MAGIC + 1];
};

static int standin_is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		            (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

/* A reason name: letters and digits only, so it needs no JSON escaping. */
static int standin_is_word(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		            (*s >= '0' && *s <= '9')))
			return 0;
	return 1;
}

static int standin_token_ok(const char *t)
{
	size_t n = strlen(t);

	return n >= APNS_MIN_TOKEN_HEX && n <= APNS_MAX_TOKEN_HEX && n % 2 == 0 &&
	        standin_is_hex(t, n);
}

/* A version 4 UUID, lowercase (Apple's canonical apns-id form). */
static int standin_new_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t o = 0;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return 0;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0xf];
	}
	out[o] = '\0';
	return 1;
}

/* Apple: a client's apns-id is echoed when it is a UUID (8-4-4-4-12 hex). */
static int standin_uuid_ok(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!standin_is_hex(s + i, 1)) {
			return 0;
		}
	}
	return 1;
}

static const char *standin_skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/*
 * The body must be the one object {"mdm":"<PushMagic>"}, whitespace
 * allowed between tokens.  The push magic has no escapes or control
 * characters (Apple's is a UUID string).
 */
static int standin_parse_body(const char *body, size_t len, char magic[APPLE_MAX_MAGIC + 1])
{
	const char *p = body, *start;
	size_t n;

	magic[0] = '\0';
	if (strlen(body) != len)
		return 0;
	p = standin_skip_ws(p);
	if (*p++ != '{')
		return 0;
	p = standin_skip_ws(p);
	if (strncmp(p, "\"mdm\"", 5) != 0)
		return 0;
	p = standin_skip_ws(p + 5);
	if (*p++ != ':')
		return 0;
	p = standin_skip_ws(p);
	if (*p++ != '"')
		return 0;
	start = p;
	while (*p != '"') {
		if (*p == '\0' || *p == '\\' || (unsigned char)*p < 0x20)
			return 0;
		p++;
	}
	n = (size_t)(p - start);
	if (n == 0 || n > APPLE_MAX_MAGIC)
		return 0;
	p = standin_skip_ws(p + 1);
	if (*p++ != '}')
		return 0;
	if (*standin_skip_ws(p) != '\0')
		return 0;
	memcpy(magic, start, n);
	magic[n] = '\0';
	return 1;
}

static const char *standin_default_reason(int status)
{
	switch (status) {
	case 400:
		return "BadDeviceToken";
	case 403:
		return "BadCertificate";
	case 404:
		return "BadPath";
	case 405:
		return "MethodNotAllowed";
	case 410:
		return "Unregistered";
	case 413:
		return "PayloadTooLarge";
	case 429:
		return "TooManyRequests";
	case 500:
		return "InternalServerError";
	case 503:
		return "ServiceUnavailable";
	default:
		return NULL;
	}
}

static int standin_parse_uint(const char *s, long max, long *out)
{
	long v = 0;

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 1;
}

/*
 * One line of the rules file against token.  Returns 1 on a match with
 * *status, *count (-1: unlimited) and reason filled; 0 otherwise (also
 * for comments, blank and malformed lines, the last logged).
 */
static int standin_rule_match(const char *line, size_t len, const char *token, int *status,
        long *count, char *reason, size_t reason_cap, char *rule_token, size_t rule_token_cap)
{
	char buf[512], *f[5], *save = NULL;
	int nf = 0;
	long v;

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, line, len);
	buf[len] = '\0';
	for (char *t = strtok_r(buf, " \t\r", &save); t != NULL && nf < 5;
	        t = strtok_r(NULL, " \t\r", &save))
		f[nf++] = t;
	if (nf == 0 || f[0][0] == '#')
		return 0;
	if (nf < 2 || nf > 4 || !standin_parse_uint(f[1], 599, &v) || v < 200) {
		log_warn("rules: malformed line ignored (TOKEN STATUS [COUNT] [REASON])");
		return 0;
	}
	if ((strcmp(f[0], "*") != 0 && strcasecmp(f[0], token) != 0) ||
	        strlen(f[0]) >= rule_token_cap)
		return 0;
	memcpy(rule_token, f[0], strlen(f[0]) + 1);
	*status = (int)v;
	*count = -1;
	reason[0] = '\0';
	for (int i = 2; i < nf; i++) {
		if (standin_parse_uint(f[i], LONG_MAX, &v))
			*count = v;
		else if (strlen(f[i]) < reason_cap && standin_is_word(f[i]))
			memcpy(reason, f[i], strlen(f[i]) + 1);
	}
	return *count != 0;
}

/*
 * Applies DIR/rules to token.  Returns 1 when a rule decided the answer.
 * A counted rule is decremented in place while the file is locked.
 */
static int standin_rules_apply(const struct standin *s, const char *token, struct verdict *v)
{
	char *text = NULL;
	struct stat st;
	int fd, hit = 0;

	/* No rules (the usual case): one stat, no open, lock or read. */
	if (stat(s->rules, &st) == 0 && st.st_size == 0)
		return 0;
	if ((fd = open(s->rules, O_RDWR | O_CLOEXEC)) < 0) {
		if (errno != ENOENT)
			log_warn("rules: open %s: %s", s->rules, strerror(errno));
		return 0;
	}
	if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0 || st.st_size > APNS_MAX_RULES ||
	        (text = malloc((size_t)st.st_size + 1)) == NULL) {
		log_warn("rules: %s unreadable or over %d bytes", s->rules, APNS_MAX_RULES);
		goto out;
	}
	if (pread(fd, text, (size_t)st.st_size, 0) != st.st_size) {
		log_warn("rules: read %s: %s", s->rules, strerror(errno));
		goto out;
	}
	text[st.st_size] = '\0';
	for (char *line = text; *line != '\0';) {
		size_t len = strcspn(line, "\n");
		char *next = line + len + (line[len] == '\n');
		char rule_token[APNS_MAX_TOKEN_HEX + 1];
		long count;

		if (!standin_rule_match(line, len, token, &v->status, &count, v->reason_buf,
		            sizeof(v->reason_buf), rule_token, sizeof(rule_token))) {
			line = next;
			continue;
		}
		hit = 1;
		v->reason = v->reason_buf[0] != '\0' ? v->reason_buf
		                                     : standin_default_reason(v->status);
		if (count > 0) {
			/* The line again without its rule, or with COUNT - 1. */
			char repl[512];
			size_t head = (size_t)(line - text), tail = strlen(next);
			int n = 0;

			if (count > 1)
				n = snprintf(repl, sizeof(repl), "%s %d %ld%s%s\n", rule_token,
				        v->status, count - 1, v->reason_buf[0] != '\0' ? " " : "",
				        v->reason_buf);
			/*
			 * Written over, then cut to length: never empty in between, as a
			 * reader that only stats the file (above) would take it for no
			 * rules at all.
			 */
			if (n < 0 || (size_t)n >= sizeof(repl) ||
			        pwrite(fd, repl, (size_t)n, (off_t)head) != n ||
			        pwrite(fd, next, tail, (off_t)head + n) != (ssize_t)tail ||
			        ftruncate(fd, (off_t)(head + (size_t)n + tail)) != 0)
				log_error(
				        "rules: cannot rewrite %s: %s", s->rules, strerror(errno));
		}
		break;
	}
out:
	free(text);
	close(fd);
	return hit;
}

/* Appends src to the record line, "-" when empty, tabs and controls as '?'. */
static void standin_field(char *line, size_t cap, size_t *len, const char *src, int last)
{
	size_t n = 0;

	if (src == NULL || *src == '\0')
		src = "-";
	for (; *src != '\0' && n < APNS_MAX_FIELD && *len + 2 < cap; src++, n++) {
		unsigned char c = (unsigned char)*src;
		line[(*len)++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	line[(*len)++] = last ? '\n' : '\t';
	line[*len] = '\0';
}

static void standin_record(const struct standin *s, const fcgi_req *r, const struct verdict *v)
{
	char line[8192], when[64], status[16];
	struct timespec ts;
	struct tm tm;
	size_t len = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	/* Microseconds: tests measure the gaps between pushes (push_min_interval). */
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
	        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	        (long)(ts.tv_nsec / 1000));
	snprintf(status, sizeof(status), "%d", v->status);
	line[0] = '\0';
	standin_field(line, sizeof(line), &len, when, 0);
	standin_field(line, sizeof(line), &len, status, 0);
	standin_field(line, sizeof(line), &len, v->reason, 0);
	standin_field(line, sizeof(line), &len, v->apns_id, 0);
	standin_field(line, sizeof(line), &len, fcgi_param0(r, "SERVER_PROTOCOL"), 0);
	standin_field(line, sizeof(line), &len, r->method, 0);
	standin_field(line, sizeof(line), &len, v->token, 0);
	standin_field(line, sizeof(line), &len, fcgi_header0(r, "apns-topic"), 0);
	standin_field(line, sizeof(line), &len, v->magic, 0);
	standin_field(line, sizeof(line), &len, fcgi_header0(r, "apns-push-type"), 0);
	standin_field(line, sizeof(line), &len, fcgi_param0(r, "SSL_CLIENT_S_DN_UID"), 0);
	standin_field(line, sizeof(line), &len, fcgi_param0(r, "SSL_CLIENT_M_SERIAL"), 0);
	standin_field(line, sizeof(line), &len, fcgi_param0(r, "SSL_CLIENT_S_DN"), 0);
	standin_field(line, sizeof(line), &len, fcgi_param0(r, "SSL_CLIENT_I_DN"), 1);
	/* One write with O_APPEND: lines from the pool's processes do not mix. */
	if (write(s->records_fd, line, len) != (ssize_t)len)
		log_error("cannot append to %s: %s", s->records, strerror(errno));
}

/* The checks, in the order APNs reports them; v->status 0 means valid. */
static void standin_check(fcgi_req *r, struct verdict *v)
{
	const char *topic = fcgi_header0(r, "apns-topic");
	const char *uid = fcgi_param0(r, "SSL_CLIENT_S_DN_UID");
	const char *type = fcgi_header0(r, "apns-push-type");
	const char *prio = fcgi_header0(r, "apns-priority");
	const char *proto = fcgi_param0(r, "SERVER_PROTOCOL");
	mdm_err rc;

	v->token = strncmp(r->path, APNS_PATH_PREFIX, strlen(APNS_PATH_PREFIX)) == 0
	        ? r->path + strlen(APNS_PATH_PREFIX)
	        : "";
	if (proto == NULL || strcmp(proto, "HTTP/2.0") != 0) {
		/* APNs speaks HTTP/2 only; not one of Apple's reasons. */
		v->status = 505;
		v->reason = "HTTP2Required";
	} else if (strcmp(r->method, "POST") != 0) {
		v->status = 405;
		v->reason = "MethodNotAllowed";
	} else if (strncmp(r->path, APNS_PATH_PREFIX, strlen(APNS_PATH_PREFIX)) != 0) {
		v->status = 404;
		v->reason = "BadPath";
	} else if (*v->token == '\0') {
		v->status = 400;
		v->reason = "MissingDeviceToken";
	} else if (!standin_token_ok(v->token)) {
		v->status = 400;
		v->reason = "BadDeviceToken";
	} else if (topic == NULL || *topic == '\0') {
		v->status = 400;
		v->reason = "MissingTopic";
	} else if (uid == NULL || strcmp(topic, uid) != 0) {
		v->status = 400;
		v->reason = "BadTopic";
	} else if (type != NULL && strcmp(type, "mdm") != 0) {
		v->status = 400;
		v->reason = "InvalidPushType";
	} else if (prio != NULL && strcmp(prio, "5") != 0 && strcmp(prio, "10") != 0 &&
	        strcmp(prio, "1") != 0) {
		v->status = 400;
		v->reason = "BadPriority";
	} else if ((rc = fcgi_read_body(r, APNS_MAX_PAYLOAD)) == MDM_ERR_TOO_LARGE) {
		v->status = 413;
		v->reason = "PayloadTooLarge";
	} else if (rc != MDM_OK) {
		v->status = 400;
		v->reason = "PayloadEmpty";
	} else if (r->body_len == 0) {
		v->status = 400;
		v->reason = "PayloadEmpty";
	} else if (!standin_parse_body((const char *)r->body, r->body_len, v->magic)) {
		/* Not one of Apple's reasons: APNs would take any JSON object. */
		v->status = 400;
		v->reason = "BadPayload";
	}
}

static mdm_err standin_handle(fcgi_req *r, void *arg)
{
	const struct standin *s = arg;
	struct verdict v = {0};
	const char *want_id = fcgi_header0(r, "apns-id");
	char headers[128], body[160];
	int n = 0;

	if (want_id != NULL && standin_uuid_ok(want_id))
		snprintf(v.apns_id, sizeof(v.apns_id), "%s", want_id);
	else if (!standin_new_uuid(v.apns_id))
		return MDM_ERR_INTERNAL;
	standin_check(r, &v);
	if (v.status == 0 && !standin_rules_apply(s, v.token, &v))
		v.status = 200;
	if (v.reason == NULL && v.status != 200)
		v.reason = "InternalServerError";
	standin_record(s, r, &v);
	snprintf(headers, sizeof(headers), "apns-id: %s\r\n", v.apns_id);
	if (v.status == 200)
		return fcgi_respond(r, 200, "application/json", headers, "", 0);
	if (v.status == 410)
		n = snprintf(body, sizeof(body), "{\"reason\":\"%s\",\"timestamp\":%lld}", v.reason,
		        (long long)time(NULL) * 1000);
	else
		n = snprintf(body, sizeof(body), "{\"reason\":\"%s\"}", v.reason);
	if (n < 0 || (size_t)n >= sizeof(body))
		return MDM_ERR_INTERNAL;
	return fcgi_respond(r, v.status, "application/json", headers, body, (size_t)n);
}

int main(int argc, char **argv)
{
	struct standin s;

	log_init("apns_standin", MDM_LOG_INFO);
	if (argc != 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: apns_standin /absolute/dir\n");
		return 2;
	}
	if ((size_t)snprintf(s.rules, sizeof(s.rules), "%s/rules", argv[1]) >= sizeof(s.rules) ||
	        (size_t)snprintf(s.records, sizeof(s.records), "%s/requests.tsv", argv[1]) >=
	                sizeof(s.records)) {
		fprintf(stderr, "apns_standin: %s: path too long\n", argv[1]);
		return 2;
	}
	if ((s.records_fd = open(s.records, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		fprintf(stderr, "apns_standin: %s: %s\n", s.records, strerror(errno));
		return 1;
	}
	return fcgi_run(standin_handle, &s) == MDM_OK ? 0 : 1;
}
