/* applesim: failing, files, encodings, and the device's state directory. */
#include "sim.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SIM_STATE_MAX 64
#define SIM_PATH_MAX  1024

static char sim_dir[SIM_PATH_MAX] = ".";

void sim_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("applesim: FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void sim_ossl_fail(const char *call)
{
	unsigned long e;
	char buf[256];

	fprintf(stderr, "applesim: FAIL: %s failed\n", call);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "applesim:   %s\n", buf);
	}
	exit(1);
}

void sim_say(const char *fmt, ...)
{
	va_list ap;

	fputs("applesim: ", stdout);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void *sim_xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);

	if (p == NULL)
		sim_fail("out of memory");
	return p;
}

char *sim_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = sim_xmalloc(n);

	memcpy(d, s, n);
	return d;
}

void sim_buf_free(struct sim_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

void sim_buf_append(struct sim_buf *b, const void *p, size_t len)
{
	uint8_t *n;

	if (len > SIZE_MAX - b->len - 1)
		sim_fail("buffer too large");
	if ((n = realloc(b->p, b->len + len + 1)) == NULL)
		sim_fail("out of memory");
	memcpy(n + b->len, p, len);
	b->p = n;
	b->len += len;
	b->p[b->len] = '\0'; /* text stays printable */
}

void sim_set_dir(const char *dir)
{
	if (strlen(dir) >= SIM_PATH_MAX - 64)
		sim_fail("directory name too long: %s", dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		sim_fail("cannot create %s: %s", dir, strerror(errno));
	snprintf(sim_dir, sizeof(sim_dir), "%s", dir);
}

const char *sim_path(const char *name)
{
	static char ring[8][SIM_PATH_MAX];
	static int next;
	char *p = ring[next];
	int n;

	next = (next + 1) % 8;
	n = snprintf(p, SIM_PATH_MAX, "%s/%s", sim_dir, name);
	if (n < 0 || n >= SIM_PATH_MAX)
		sim_fail("path too long: %s/%s", sim_dir, name);
	return p;
}

int sim_file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

struct sim_buf sim_file_read(const char *path)
{
	struct sim_buf b = {NULL, 0};
	char chunk[8192];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		sim_fail("cannot read %s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		sim_buf_append(&b, chunk, n);
	if (ferror(f))
		sim_fail("error reading %s", path);
	fclose(f);
	if (b.p == NULL)
		sim_buf_append(&b, "", 0);
	return b;
}

void sim_file_write(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		sim_fail("cannot write %s: %s", path, strerror(errno));
	if ((len > 0 && fwrite(p, 1, len, f) != len) || fclose(f) != 0)
		sim_fail("error writing %s", path);
}

char *sim_b64(const uint8_t *p, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1;
	char *out = sim_xmalloc(cap);

	if (len > 0x3fffffff)
		sim_fail("base64: input too large");
	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

struct sim_buf sim_unb64(const char *s)
{
	struct sim_buf b = {NULL, 0};
	size_t n = strlen(s), j = 0, pad = 0;
	char *clean = sim_xmalloc(n + 1);
	int got;

	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			clean[j++] = s[i];
	clean[j] = '\0';
	if (j % 4 != 0 || j > 0x3fffffff)
		sim_fail("base64: %zu characters is not a multiple of 4", j);
	b.p = sim_xmalloc(j / 4 * 3 + 1);
	got = EVP_DecodeBlock(b.p, (unsigned char *)clean, (int)j);
	if (got < 0)
		sim_fail("base64: invalid characters");
	if (j >= 1 && clean[j - 1] == '=')
		pad++;
	if (j >= 2 && clean[j - 2] == '=')
		pad++;
	b.len = (size_t)got - pad;
	free(clean);
	return b;
}

void sim_hex(const uint8_t *p, size_t len, int upper, char *out)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * len] = '\0';
}

void sim_random(uint8_t *p, size_t len)
{
	if (len > 0x7fffffff || RAND_bytes(p, (int)len) != 1)
		sim_ossl_fail("RAND_bytes");
}

void sim_uuid(char out[37])
{
	uint8_t b[16];
	char h[33];

	sim_random(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	sim_hex(b, sizeof(b), 1, h);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* ---------------------------------------------------------------- state */

static struct {
	char *key, *value;
} state[SIM_STATE_MAX];
static int nstate;

static void sim_state_save(void)
{
	struct sim_buf b = {NULL, 0};

	for (int i = 0; i < nstate; i++) {
		sim_buf_append(&b, state[i].key, strlen(state[i].key));
		sim_buf_append(&b, "=", 1);
		sim_buf_append(&b, state[i].value, strlen(state[i].value));
		sim_buf_append(&b, "\n", 1);
	}
	sim_file_write(sim_path("state"), b.p ? b.p : (uint8_t *)"", b.len);
	sim_buf_free(&b);
}

void sim_state_load(void)
{
	struct sim_buf b;
	char *line, *save = NULL;

	if (!sim_file_exists(sim_path("state")))
		return;
	b = sim_file_read(sim_path("state"));
	for (line = strtok_r((char *)b.p, "\n", &save); line != NULL;
	        line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (eq == NULL)
			sim_fail("%s: malformed line \"%s\"", sim_path("state"), line);
		*eq = '\0';
		sim_state_set(line, eq + 1);
	}
	sim_buf_free(&b);
}

const char *sim_state_get(const char *key)
{
	for (int i = 0; i < nstate; i++)
		if (strcmp(state[i].key, key) == 0)
			return state[i].value;
	return NULL;
}

const char *sim_state_need(const char *key)
{
	const char *v = sim_state_get(key);

	if (v == NULL)
		sim_fail("state has no %s: run the earlier steps first (profile, scep)", key);
	return v;
}

void sim_state_set(const char *key, const char *value)
{
	int i;

	if (strchr(value, '\n') != NULL || strchr(key, '=') != NULL)
		sim_fail("state value for %s holds a newline", key);
	for (i = 0; i < nstate; i++)
		if (strcmp(state[i].key, key) == 0)
			break;
	if (i == nstate) {
		if (nstate == SIM_STATE_MAX)
			sim_fail("too many state keys");
		state[nstate++].key = sim_xstrdup(key);
	} else {
		free(state[i].value);
	}
	state[i].value = sim_xstrdup(value);
	sim_state_save();
}

void sim_state_seti(const char *key, long value)
{
	char v[32];

	snprintf(v, sizeof(v), "%ld", value);
	sim_state_set(key, v);
}

long sim_state_geti(const char *key, long dflt)
{
	const char *v = sim_state_get(key);

	return v != NULL ? strtol(v, NULL, 10) : dflt;
}

int sim_log_exchange(
        const char *what, const void *req, size_t reqlen, const void *resp, size_t resplen)
{
	int seq = (int)sim_state_geti("log_seq", 0) + 1;
	char name[128];

	sim_state_seti("log_seq", seq);
	if (mkdir(sim_path("log"), 0700) != 0 && errno != EEXIST)
		sim_fail("cannot create %s: %s", sim_path("log"), strerror(errno));
	snprintf(name, sizeof(name), "log/%03d-%s.req", seq, what);
	sim_file_write(sim_path(name), req, reqlen);
	snprintf(name, sizeof(name), "log/%03d-%s.resp", seq, what);
	sim_file_write(sim_path(name), resp, resplen);
	return seq;
}
