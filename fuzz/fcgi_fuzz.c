/*
 * libFuzzer target for FastCGI request reading (lib/fcgi.c): parameters
 * validated by fcgi_req_init, the body read by fcgi_read_body under a
 * limit, query parameters decoded, all over a fake request stream.
 *
 * Input: byte 0 picks the body limit (times 64 bytes), byte 1 the largest
 * read the stream returns at once (1..256); then NUL-terminated
 * "NAME=value" parameters up to an empty one; the rest is the body.
 * Promises checked: a body only on MDM_OK, never over the limit, equal
 * to the stream's bytes and exactly CONTENT_LENGTH long when one was
 * given; MDM_ERR_TOO_LARGE leaves no body and the body consumed (drained)
 * to its declared end; a decoded query value fits what was asked.
 *
 * fuzz-max-len: 70000
 * fuzz-dict: "REQUEST_METHOD=POST"
 * fuzz-dict: "CONTENT_LENGTH="
 * fuzz-dict: "QUERY_STRING=operation=PKIOperation&message="
 * fuzz-dict: "REQUEST_URI=/scep?"
 * fuzz-dict: "HTTP_MDM_SIGNATURE="
 * fuzz-dict: "SSL_CLIENT_CERT="
 */
#include "fcgi.h"
#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PARAMS 64

struct fuzz_stream {
	const uint8_t *p;
	size_t len, pos, step;
};

static int fuzz_read(void *ctx, char *buf, int n)
{
	struct fuzz_stream *s = ctx;
	size_t k = s->len - s->pos;

	if (n < 0)
		abort();
	if (k > (size_t)n)
		k = (size_t)n;
	if (k > s->step)
		k = s->step;
	memcpy(buf, s->p + s->pos, k);
	s->pos += k;
	return (int)k;
}

static int fuzz_write(void *ctx, const char *buf, int n)
{
	(void)ctx;
	(void)buf;
	return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX); /* quiet: refusals are the point */
	return 0;
}

static void fuzz_query(const char *query)
{
	static const char *const names[] = {"operation", "message", "topic"};
	char buf[64];
	size_t len;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *v = NULL;
		size_t vlen = 0;

		if (fcgi_query_get(query, names[i], (int)i & 1, &v, &vlen) == MDM_OK) {
			if (v == NULL || strlen(v) > vlen)
				abort();
			free(v);
		} else if (v != NULL)
			abort();
		if (fcgi_query_get_buf(query, names[i], 0, buf, sizeof(buf), &len) == MDM_OK) {
			if (len >= sizeof(buf) || strlen(buf) > len)
				abort();
		} else if (buf[0] != '\0')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = NULL, *envp[FUZZ_MAX_PARAMS + 1];
	struct fuzz_stream s = {0};
	struct fcgi_io io = {&s, fuzz_read, fuzz_write};
	fcgi_req r;
	size_t limit, i = 2, n = 0;
	mdm_err rc;

	if (size < 2)
		return 0;
	limit = (size_t)data[0] * 64;
	s.step = (size_t)data[1] + 1;
	/* The parameters: a copy, so that each is NUL-terminated in memory we own. */
	if ((copy = malloc(size - i + 1)) == NULL)
		return 0;
	memcpy(copy, data + i, size - i);
	copy[size - i] = '\0';
	while (i < size && n < FUZZ_MAX_PARAMS) {
		char *p = copy + (i - 2);
		size_t l = strlen(p);

		i += l + 1;
		if (l == 0)
			break;
		envp[n++] = p;
	}
	envp[n] = NULL;
	if (i > size)
		i = size;
	s.p = data + i;
	s.len = size - i;

	if (fcgi_req_init(&r, envp, &io) != MDM_OK) {
		fcgi_req_clear(&r);
		free(copy);
		return 0;
	}
	if (r.method == NULL || r.path == NULL || r.query == NULL || strchr(r.path, '?') != NULL)
		abort();
	fuzz_query(r.query);
	(void)fcgi_header0(&r, "Mdm-Signature");
	rc = fcgi_read_body(&r, limit);
	if (rc == MDM_OK) {
		if (r.body == NULL || r.body_len > limit || r.body[r.body_len] != '\0' ||
		        r.body_len > s.pos || memcmp(r.body, s.p, r.body_len) != 0)
			abort();
		if (r.content_length >= 0 && r.body_len != (size_t)r.content_length)
			abort();
	} else if (r.body != NULL) {
		abort();
	} else if (rc == MDM_ERR_TOO_LARGE) {
		if (r.content_length < 0 ? s.pos != s.len
		                         : s.pos != s.len && s.pos < (size_t)r.content_length)
			abort();
	}
	if (fcgi_drain(&r) != MDM_OK)
		abort();
	(void)fcgi_respond(&r, 200, "text/plain", NULL, "ok", 2);
	fcgi_req_clear(&r);
	free(copy);
	return 0;
}
