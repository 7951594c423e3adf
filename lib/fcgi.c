/* FastCGI request reading with limits, and responses.  Owns libfcgi. */
#include "fcgi.h"
#include "base64.h"
#include "log.h"
#include "mdm_limits.h"

#include <fcgiapp.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Upper bound of one read from the web server. */
#define FCGI_CHUNK 16384

const char *fcgi_param0(const fcgi_req *r, const char *name)
{
	size_t n;

	if (r == NULL || r->envp == NULL || name == NULL)
		return NULL;
	n = strlen(name);
	for (char *const *e = r->envp; *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

const char *fcgi_header0(const fcgi_req *r, const char *header)
{
	char name[128] = "HTTP_";
	size_t n = 5;

	for (; header != NULL && *header != '\0'; header++) {
		unsigned char c = (unsigned char)*header;
		if (n + 1 >= sizeof(name))
			return NULL;
		if (c == '-')
			name[n++] = '_';
		else if (c >= 'a' && c <= 'z')
			name[n++] = (char)(c - 'a' + 'A');
		else
			name[n++] = (char)c;
	}
	name[n] = '\0';
	return fcgi_param0(r, name);
}

int fcgi_method_in(const char *method, const char *list)
{
	size_t n;

	if (method == NULL || list == NULL || (n = strlen(method)) == 0)
		return 0;
	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, ", ");
		if (len == n && strncmp(p, method, n) == 0)
			return 1;
		p += len;
		p += strspn(p, ", ");
	}
	return 0;
}

static int fcgi_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The raw (still escaped) value of name in query, or NULL; MDM_ERR_PARSE if given twice. */
static MDM_WUR mdm_err fcgi_query_find(
        const char *query, const char *name, const char **found, size_t *found_len)
{
	size_t nlen = strlen(name);

	*found = NULL;
	*found_len = 0;
	if (query == NULL)
		return MDM_ERR_NOT_FOUND;
	if (strlen(query) > MDM_MAX_QUERY)
		return MDM_ERR_LIMIT;
	for (const char *p = query; *p != '\0';) {
		size_t len = strcspn(p, "&");
		if ((len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') ||
		        (len == nlen && strncmp(p, name, nlen) == 0)) {
			if (*found != NULL) {
				log_warn("fcgi: query parameter \"%s\" given twice", name);
				*found = NULL;
				return MDM_ERR_PARSE;
			}
			*found = len > nlen ? p + nlen + 1 : p + len;
			*found_len = len > nlen ? len - nlen - 1 : 0;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return *found == NULL ? MDM_ERR_NOT_FOUND : MDM_OK;
}

/*
 * Decodes raw[0..rawlen) into out, which holds cap bytes with the NUL:
 * MDM_ERR_LIMIT as soon as the value does not fit.
 */
static MDM_WUR mdm_err fcgi_query_decode(const char *name, const char *raw, size_t rawlen,
        int plus_is_space, char *out, size_t cap, size_t *outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < rawlen; i++) {
		char c = raw[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= rawlen || (hi = fcgi_hexval(raw[i + 1])) < 0 ||
			        (lo = fcgi_hexval(raw[i + 2])) < 0) {
				log_warn("fcgi: bad %%-escape in query parameter \"%s\"", name);
				return MDM_ERR_PARSE;
			}
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		if (n + 1 >= cap)
			return MDM_ERR_LIMIT;
		out[n++] = c;
	}
	out[n] = '\0';
	*outlen = n;
	return MDM_OK;
}

mdm_err fcgi_query_get(
        const char *query, const char *name, int plus_is_space, char **out, size_t *outlen)
{
	const char *found;
	size_t found_len;
	char *v;
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if ((rc = fcgi_query_find(query, name, &found, &found_len)) != MDM_OK)
		return rc;
	/* Decoding never lengthens: the raw length bounds the value. */
	if ((v = malloc(found_len + 1)) == NULL)
		return MDM_ERR_NOMEM;
	if ((rc = fcgi_query_decode(
	             name, found, found_len, plus_is_space, v, found_len + 1, outlen)) != MDM_OK) {
		free(v);
		*outlen = 0;
		return rc;
	}
	*out = v;
	return MDM_OK;
}

mdm_err fcgi_query_get_buf(const char *query, const char *name, int plus_is_space, char *buf,
        size_t cap, size_t *outlen)
{
	const char *found;
	size_t found_len;
	mdm_err rc;

	*outlen = 0;
	if (cap == 0)
		return MDM_ERR_INVAL;
	buf[0] = '\0';
	if ((rc = fcgi_query_find(query, name, &found, &found_len)) != MDM_OK)
		return rc;
	rc = fcgi_query_decode(name, found, found_len, plus_is_space, buf, cap, outlen);
	if (rc != MDM_OK) {
		explicit_bzero(buf, cap);
		*outlen = 0;
	}
	return rc;
}

/* Strict decimal: digits only, no sign, no overflow. */
static int fcgi_parse_length(const char *s, long long *out)
{
	long long v = 0;

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		if (v > (LLONG_MAX - 9) / 10)
			return 0;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return 1;
}

static void fcgi_new_request_id(fcgi_req *r)
{
	static const char hex[] = "0123456789abcdef";
	const char *uid = fcgi_param0(r, "UNIQUE_ID");
	unsigned char rnd[12];
	size_t i;

	/* mod_unique_id's id ties our log lines to Apache's access log. */
	if (uid != NULL && *uid != '\0' && strlen(uid) < sizeof(r->request_id) &&
	        strspn(uid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@-_") ==
	                strlen(uid)) {
		memcpy(r->request_id, uid, strlen(uid) + 1);
		return;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++) {
		r->request_id[2 * i] = hex[rnd[i] >> 4];
		r->request_id[2 * i + 1] = hex[rnd[i] & 0xf];
	}
	r->request_id[2 * i] = '\0';
}

void fcgi_req_clear(fcgi_req *r)
{
	if (r == NULL)
		return;
	free(r->path);
	free(r->body);
	free(r->client_cert_owned);
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
}

/* ------------------------------------------------- trusted proxies (RFC 9440) */

static int fcgi_addr_parse(const char *s, int *family, unsigned char addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, s, addr) != 1)
		return 0;
	*family = AF_INET6;
	/* ::ffff:a.b.c.d is the IPv4 address a.b.c.d. */
	if (memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*family = AF_INET;
	}
	return 1;
}

mdm_err fcgi_proxies_parse(const char *list, struct fcgi_proxies *out)
{
	const char *p = list != NULL ? list : "";

	memset(out, 0, sizeof(*out));
	while (*p != '\0') {
		char item[64], *slash, *end;
		size_t n = strcspn(p, ", \t");
		long prefix;
		int max;

		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(item) || out->n == FCGI_MAX_PROXIES) {
			log_error(
			        "config: trusted_proxies: %s (at most %d addresses of at most %zu "
			        "characters)",
			        n >= sizeof(item) ? "entry too long" : "too many entries",
			        FCGI_MAX_PROXIES, sizeof(item) - 1);
			return MDM_ERR_CONFIG;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		p += n;
		if ((slash = strchr(item, '/')) != NULL)
			*slash++ = '\0';
		if (!fcgi_addr_parse(item, &out->net[out->n].family, out->net[out->n].addr)) {
			log_error("config: trusted_proxies: \"%s\" is not an IPv4 or IPv6 address",
			        item);
			return MDM_ERR_CONFIG;
		}
		max = out->net[out->n].family == AF_INET ? 32 : 128;
		prefix = max;
		if (slash != NULL) {
			prefix = strtol(slash, &end, 10);
			if (*slash < '0' || *slash > '9' || *end != '\0' || prefix < 0 ||
			        prefix > max) {
				log_error("config: trusted_proxies: \"%s/%s\": the prefix must be "
				          "0 to %d",
				        item, slash, max);
				return MDM_ERR_CONFIG;
			}
		}
		out->net[out->n++].prefix = (int)prefix;
	}
	return MDM_OK;
}

int fcgi_proxies_match(const struct fcgi_proxies *tp, const char *addr)
{
	unsigned char a[16];
	int family;

	if (tp == NULL || tp->n == 0 || addr == NULL || !fcgi_addr_parse(addr, &family, a))
		return 0;
	for (int i = 0; i < tp->n; i++) {
		int bits = tp->net[i].prefix, k = bits / 8;

		if (tp->net[i].family != family || memcmp(a, tp->net[i].addr, (size_t)k) != 0)
			continue;
		if (bits % 8 == 0 ||
		        ((a[k] ^ tp->net[i].addr[k]) & (unsigned char)(0xff << (8 - bits % 8))) ==
		                0)
			return 1;
	}
	return 0;
}

/* DER as one PEM certificate, 64 base64 characters a line. */
static MDM_WUR mdm_err fcgi_der_to_pem(const uint8_t *der, size_t len, char **out)
{
	static const char head[] = "-----BEGIN CERTIFICATE-----\n";
	static const char tail[] = "-----END CERTIFICATE-----\n";
	char *b64 = NULL, *pem, *w;
	size_t blen = 0, cap;
	mdm_err rc;

	if ((rc = base64_encode(der, len, &b64, &blen)) != MDM_OK)
		return rc;
	cap = sizeof(head) + blen + blen / 64 + 1 + sizeof(tail);
	if ((pem = malloc(cap)) == NULL) {
		free(b64);
		return MDM_ERR_NOMEM;
	}
	memcpy(pem, head, sizeof(head) - 1);
	w = pem + sizeof(head) - 1;
	for (size_t i = 0; i < blen; i += 64) {
		size_t n = blen - i < 64 ? blen - i : 64;

		memcpy(w, b64 + i, n);
		w += n;
		*w++ = '\n';
	}
	snprintf(w, cap - (size_t)(w - pem), "%s", tail);
	free(b64);
	*out = pem;
	return MDM_OK;
}

mdm_err fcgi_client_cert_from_proxy(fcgi_req *r, const struct fcgi_proxies *tp)
{
	const char *h = fcgi_param0(r, "HTTP_CLIENT_CERT"), *addr = fcgi_param0(r, "REMOTE_ADDR");
	size_t n;
	uint8_t *der = NULL;
	size_t derlen = 0;
	mdm_err rc;

	if (h == NULL)
		return MDM_OK;
	if (!fcgi_proxies_match(tp, addr)) {
		log_warn("fcgi: Client-Cert header from %s ignored: not a trusted proxy "
		         "(trusted_proxies; RFC 9440 section 4: only a proxy's header is believed)",
		        addr != NULL ? addr : "an unknown address");
		return MDM_OK;
	}
	/* RFC 8941 section 3.3.5: ":" base64 ":", optional white space around it. */
	while (*h == ' ' || *h == '\t')
		h++;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n > MDM_MAX_HEADER_VALUE) {
		log_warn("fcgi: Client-Cert from proxy %s longer than %d bytes", addr,
		        MDM_MAX_HEADER_VALUE);
		return MDM_ERR_LIMIT;
	}
	if (n < 2 || h[0] != ':' || h[n - 1] != ':' || memchr(h + 1, ':', n - 2) != NULL ||
	        strcspn(h + 1, " \t\r\n") < n - 2 ||
	        base64_decode(h + 1, n - 2, MDM_MAX_HEADER_VALUE, &der, &derlen) != MDM_OK ||
	        derlen == 0) {
		free(der);
		log_warn("fcgi: Client-Cert from proxy %s is not a Byte Sequence of base64 DER "
		         "(RFC 9440 section 2.2, RFC 8941 section 3.3.5)",
		        addr);
		return MDM_ERR_PARSE;
	}
	rc = fcgi_der_to_pem(der, derlen, &r->client_cert_owned);
	free(der);
	if (rc != MDM_OK)
		return rc;
	r->client_cert = r->client_cert_owned;
	return MDM_OK;
}

mdm_err fcgi_req_init(fcgi_req *r, char *const *envp, const struct fcgi_io *io)
{
	const char *uri, *cl;
	size_t plen;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	r->envp = envp;
	r->io = *io;
	fcgi_new_request_id(r);
	log_set_request_id(r->request_id);

	r->method = fcgi_param0(r, "REQUEST_METHOD");
	if (r->method == NULL || *r->method == '\0') {
		log_error("fcgi: request without REQUEST_METHOD");
		return MDM_ERR_PARSE;
	}
	r->query = fcgi_param0(r, "QUERY_STRING");
	if (r->query == NULL)
		r->query = "";
	if (strlen(r->query) > MDM_MAX_QUERY) {
		log_error("fcgi: query string longer than %d bytes", MDM_MAX_QUERY);
		return MDM_ERR_LIMIT;
	}
	if ((uri = fcgi_param0(r, "REQUEST_URI")) == NULL)
		uri = fcgi_param0(r, "SCRIPT_NAME");
	if (uri == NULL)
		uri = "/";
	plen = strcspn(uri, "?");
	if (plen > MDM_MAX_QUERY) {
		log_error("fcgi: request path longer than %d bytes", MDM_MAX_QUERY);
		return MDM_ERR_LIMIT;
	}
	if ((r->path = malloc(plen + 1)) == NULL)
		return MDM_ERR_NOMEM;
	memcpy(r->path, uri, plen);
	r->path[plen] = '\0';

	r->client_cert = fcgi_param0(r, "SSL_CLIENT_CERT");
	if (r->client_cert != NULL && *r->client_cert == '\0')
		r->client_cert = NULL;
	if (r->client_cert != NULL && strlen(r->client_cert) > MDM_MAX_HEADER_VALUE) {
		log_error("fcgi: client certificate larger than %d bytes", MDM_MAX_HEADER_VALUE);
		return MDM_ERR_LIMIT;
	}

	cl = fcgi_param0(r, "CONTENT_LENGTH");
	if (cl != NULL && *cl != '\0' && !fcgi_parse_length(cl, &r->content_length)) {
		log_error("fcgi: malformed CONTENT_LENGTH");
		r->content_length = -1;
		return MDM_ERR_PARSE;
	}
	if (r->content_length == 0)
		r->body_done = 1;
	return MDM_OK;
}

mdm_err fcgi_drain(fcgi_req *r)
{
	char buf[FCGI_CHUNK];
	long long left = r->content_length < 0 ? -1 : r->content_length - (long long)r->body_len;

	if (r->body_done)
		return MDM_OK;
	for (;;) {
		int want =
		        (left < 0 || left > (long long)sizeof(buf)) ? (int)sizeof(buf) : (int)left;
		int n;

		if (left == 0)
			break;
		if ((n = r->io.read(r->io.ctx, buf, want)) < 0)
			return MDM_ERR_IO;
		if (n == 0)
			break;
		if (left > 0)
			left -= n;
	}
	r->body_done = 1;
	return MDM_OK;
}

/* Reads up to want bytes; returns how many (short only at the end). */
static MDM_WUR mdm_err fcgi_read_full(fcgi_req *r, unsigned char *dst, size_t want, size_t *got)
{
	*got = 0;
	while (*got < want) {
		size_t chunk = want - *got > FCGI_CHUNK ? FCGI_CHUNK : want - *got;
		int n = r->io.read(r->io.ctx, (char *)dst + *got, (int)chunk);
		if (n < 0)
			return MDM_ERR_IO;
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return MDM_OK;
}

mdm_err fcgi_read_body(fcgi_req *r, size_t limit)
{
	unsigned char *buf = NULL;
	size_t cap = 0, len = 0, got;
	mdm_err rc;

	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	if (limit > MDM_MAX_BODY_ANY)
		limit = MDM_MAX_BODY_ANY;

	if (r->content_length >= 0) {
		if ((unsigned long long)r->content_length > limit) {
			log_warn("fcgi: body of %lld bytes refused: the limit for %s is %zu",
			        r->content_length, r->path, limit);
			if (fcgi_drain(r) != MDM_OK)
				return MDM_ERR_IO;
			return MDM_ERR_TOO_LARGE;
		}
		if ((buf = malloc((size_t)r->content_length + 1)) == NULL)
			return MDM_ERR_NOMEM;
		if ((rc = fcgi_read_full(r, buf, (size_t)r->content_length, &got)) != MDM_OK)
			goto fail;
		if (got != (size_t)r->content_length) {
			log_error(
			        "fcgi: body ended after %zu of %lld bytes", got, r->content_length);
			rc = MDM_ERR_PARSE;
			goto fail;
		}
		len = got;
	} else {
		/* No length (chunked): grow, but never past limit + 1. */
		for (;;) {
			size_t want;
			if (len == cap) {
				size_t ncap = cap == 0 ? 4096 : cap * 2;
				unsigned char *nb;
				if (ncap > limit + 1)
					ncap = limit + 1;
				if (ncap == cap) {
					log_warn("fcgi: chunked body over the limit of %zu for %s",
					        limit, r->path);
					free(buf);
					r->body_len = len; /* what was consumed so far */
					if (fcgi_drain(r) != MDM_OK)
						return MDM_ERR_IO;
					r->body_len = 0;
					return MDM_ERR_TOO_LARGE;
				}
				if ((nb = realloc(buf, ncap + 1)) == NULL) {
					rc = MDM_ERR_NOMEM;
					goto fail;
				}
				buf = nb;
				cap = ncap;
			}
			want = cap - len;
			if ((rc = fcgi_read_full(r, buf + len, want, &got)) != MDM_OK)
				goto fail;
			len += got;
			if (got < want)
				break;
		}
		if (len > limit) {
			log_warn("fcgi: chunked body over the limit of %zu for %s", limit, r->path);
			free(buf);
			r->body_done = 1;
			return MDM_ERR_TOO_LARGE;
		}
		if (buf == NULL && (buf = malloc(1)) == NULL)
			return MDM_ERR_NOMEM;
	}
	buf[len] = '\0';
	r->body = buf;
	r->body_len = len;
	r->body_done = 1;
	return MDM_OK;
fail:
	free(buf);
	return rc;
}

static int fcgi_headers_ok(const char *h)
{
	/* Every line must end in CRLF; no bare CR or LF (header injection). */
	for (const char *p = h; *p != '\0'; p++) {
		if (*p == '\r' && p[1] != '\n')
			return 0;
		if (*p == '\n' && (p == h || p[-1] != '\r'))
			return 0;
	}
	return *h == '\0' || (strlen(h) >= 2 && strcmp(h + strlen(h) - 2, "\r\n") == 0);
}

static MDM_WUR mdm_err fcgi_write_all(fcgi_req *r, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		int chunk = len > FCGI_CHUNK ? FCGI_CHUNK : (int)len;
		if (r->io.write(r->io.ctx, p, chunk) != chunk)
			return MDM_ERR_IO;
		p += chunk;
		len -= (size_t)chunk;
	}
	return MDM_OK;
}

mdm_err fcgi_respond(fcgi_req *r, int status, const char *content_type, const char *extra_headers,
        const void *body, size_t len)
{
	char head[512];
	int n;
	mdm_err rc;

	if (r->responded) {
		log_error("fcgi: second response to one request");
		return MDM_ERR_INTERNAL;
	}
	if (extra_headers == NULL)
		extra_headers = "";
	if (content_type == NULL || strpbrk(content_type, "\r\n") != NULL ||
	        !fcgi_headers_ok(extra_headers))
		return MDM_ERR_INVAL;
	n = snprintf(head, sizeof(head),
	        "Status: %d %s\r\nContent-Type: %s\r\n"
	        "Content-Length: %zu\r\nX-Request-Id: %s\r\n",
	        status, err_http_reason(status), content_type, len, r->request_id);
	if (n < 0 || (size_t)n >= sizeof(head))
		return MDM_ERR_INVAL;
	r->responded = 1;
	r->status = status;
	if ((rc = fcgi_write_all(r, head, (size_t)n)) != MDM_OK ||
	        (rc = fcgi_write_all(r, extra_headers, strlen(extra_headers))) != MDM_OK ||
	        (rc = fcgi_write_all(r, "\r\n", 2)) != MDM_OK)
		return rc;
	if (len > 0 && body != NULL && strcmp(r->method, "HEAD") != 0)
		return fcgi_write_all(r, body, len);
	return MDM_OK;
}

mdm_err fcgi_respond_text(fcgi_req *r, int status, const char *extra_headers, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return MDM_ERR_INVAL;
	if ((size_t)n >= sizeof(buf) - 1)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	return fcgi_respond(r, status, "text/plain; charset=utf-8", extra_headers, buf, (size_t)n);
}

/* libfcgi binding. */

static int fcgi_stream_read(void *ctx, char *buf, int n)
{
	FCGX_Request *req = ctx;
	int got = FCGX_GetStr(buf, n, req->in);

	if (got < n && FCGX_GetError(req->in) != 0)
		return -1;
	return got;
}

static int fcgi_stream_write(void *ctx, const char *buf, int n)
{
	FCGX_Request *req = ctx;

	return FCGX_PutStr(buf, n, req->out) == n ? n : -1;
}

mdm_err fcgi_run(fcgi_handler handler, void *arg)
{
	FCGX_Request req;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0) {
		log_error("fcgi: FCGX_Init failed");
		return MDM_ERR_IO;
	}
	while (FCGX_Accept_r(&req) >= 0) {
		struct fcgi_io io = {&req, fcgi_stream_read, fcgi_stream_write};
		fcgi_req r;
		mdm_err rc = fcgi_req_init(&r, req.envp, &io);

		if (rc != MDM_OK) {
			if (fcgi_drain(&r) == MDM_OK)
				err_ignore(fcgi_respond_text(&r, err_http_status(rc), NULL,
				        "%d %s: malformed request", err_http_status(rc),
				        err_http_reason(err_http_status(rc))));
		} else {
			rc = handler(&r, arg);
			if (!r.responded)
				err_ignore(fcgi_respond_text(&r, err_http_status(rc), NULL, "%d %s",
				        err_http_status(rc), err_http_reason(err_http_status(rc))));
			/* Read what is left: a reused connection must stay in step. */
			err_ignore(fcgi_drain(&r));
		}
		fcgi_req_clear(&r);
		log_set_request_id(NULL);
		FCGX_Finish_r(&req);
	}
	return MDM_OK;
}
