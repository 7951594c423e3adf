/* An in-memory FastCGI stream pair for tests of the fcgi and app modules. */
#ifndef MDM_TEST_FAKEIO_H
#define MDM_TEST_FAKEIO_H

#include "fcgi.h"

#include <stdlib.h>
#include <string.h>

struct fakeio {
	const char *in; /* request body bytes */
	size_t in_len, in_pos;
	size_t reads;
	char out[65536]; /* response, NUL-terminated */
	size_t out_len;
};

static inline int fakeio_read(void *ctx, char *buf, int n)
{
	struct fakeio *f = ctx;
	size_t left = f->in_len - f->in_pos;
	size_t k = left < (size_t)n ? left : (size_t)n;

	f->reads++;
	memcpy(buf, f->in + f->in_pos, k);
	f->in_pos += k;
	return (int)k;
}

static inline int fakeio_write(void *ctx, const char *buf, int n)
{
	struct fakeio *f = ctx;

	if (f->out_len + (size_t)n >= sizeof(f->out))
		return -1;
	memcpy(f->out + f->out_len, buf, (size_t)n);
	f->out_len += (size_t)n;
	f->out[f->out_len] = '\0';
	return n;
}

static inline struct fcgi_io fakeio_bind(struct fakeio *f, const char *in, size_t len)
{
	struct fcgi_io io = {f, fakeio_read, fakeio_write};

	memset(f, 0, sizeof(*f));
	f->in = in;
	f->in_len = len;
	return io;
}

#endif
