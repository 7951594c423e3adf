/*
 * MDM pushes to APNs over one HTTP/2 connection per topic, many requests
 * at once as concurrent streams: libnghttp2 frames them, x509_tls carries
 * them (OpenSSL, the push certificate as TLS client certificate).
 *
 * Not libcurl: the libcurl of Debian 12 (7.88.1) ends every finished
 * HTTP/2 stream with an RST_STREAM (http2_handle_stream_close clears the
 * stream's closed flag, so its done handler resets it), and a server
 * guarding against "rapid reset" (CVE-2023-44487; libnghttp2's default
 * is a burst of 1000) answers with GOAWAY: a new connection, a new TLS
 * handshake, every thousand pushes or so.  Here a stream ends when the
 * server ends it, and the connection lasts until the server says GOAWAY
 * or goes away.
 */
#include "apns.h"
#include "log.h"
#include "x509.h"

#include <nghttp2/nghttp2.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define APNS_PATH "/3/device/"
/* A dead connection is replaced at most this often within one apns_send. */
#define APNS_MAX_RECONNECTS 3

/* One request in flight: a slot, made once per client and used again. */
struct apns_stream {
	size_t push; /* index into the batch; SIZE_MAX when the slot is free */
	int32_t id;
	char path[sizeof(APNS_PATH) + 2 * APNS_MAX_TOKEN];
	char body[APNS_MAX_MAGIC + 16];
	char clen[8];
	size_t body_len, body_off;
	char resp[APNS_MAX_RESPONSE];
	size_t resp_len;
	int resp_cut;
	int status;
};

struct apns {
	char host[APNS_MAX_URL + 1];
	char port[8];
	char authority[APNS_MAX_URL + 1];
	char topic[160];
	int concurrency;
	long timeout_ms;
	x509_tls_client *client;
	/* The connection, when there is one. */
	x509_tls *tls;
	nghttp2_session *h2;
	int goaway; /* the server said GOAWAY: no new streams on this connection */
	int broken; /* reading or writing failed: drop the connection */
	long connects;
	/* The batch being sent (apns_send). */
	struct apns_push *p;
	size_t *queue; /* pushes waiting for a stream, from queue_head on */
	size_t queue_len, queue_head;
	size_t finished;
	/* The slots; free ones are listed in free_slots[0 .. nfree - 1]. */
	struct apns_stream *slots;
	size_t *free_slots;
	size_t nfree;
	uint8_t rbuf[16384];
};

mdm_err apns_global_init(void)
{
	nghttp2_info *v = nghttp2_version(0);

	/* Headers without copies (NGHTTP2_NV_FLAG_NO_COPY_*) came in 1.17. */
	if (nghttp2_version(0x011100) == NULL) {
		log_error("apns: libnghttp2 %s is too old: 1.17 or later", v->version_str);
		return MDM_ERR_UNSUPPORTED;
	}
	return MDM_OK;
}

void apns_global_cleanup(void)
{
}

static int apns_hexdigit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int apns_token_valid(const char *hex)
{
	size_t n = 0;

	if (hex == NULL)
		return 0;
	for (; hex[n] != '\0'; n++)
		if (!apns_hexdigit(hex[n]) || n >= 2 * APNS_MAX_TOKEN)
			return 0;
	return n % 2 == 0 && n >= 2 * APNS_MIN_TOKEN;
}

int apns_magic_valid(const char *magic)
{
	size_t n = 0;

	if (magic == NULL)
		return 0;
	for (; magic[n] != '\0'; n++)
		if (magic[n] < 0x20 || magic[n] > 0x7e || magic[n] == '"' || magic[n] == '\\' ||
		        n >= APNS_MAX_MAGIC)
			return 0;
	return n > 0;
}

/* ------------------------------------------------------------------ reason */

struct apns_lex {
	const char *p, *end;
};

static void apns_ws(struct apns_lex *l)
{
	while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\r' || *l->p == '\n'))
		l->p++;
}

/* A string without escapes, pointed to within the body. */
static int apns_string(struct apns_lex *l, const char **s, size_t *n)
{
	const char *start;

	if (l->p >= l->end || *l->p != '"')
		return 0;
	start = ++l->p;
	while (l->p < l->end && *l->p != '"') {
		if (*l->p == '\\' || (unsigned char)*l->p < 0x20)
			return 0;
		l->p++;
	}
	if (l->p >= l->end)
		return 0;
	*s = start;
	*n = (size_t)(l->p - start);
	l->p++;
	return 1;
}

/* A JSON number, loosely: digits, sign, point, exponent; at least one digit. */
static int apns_number(struct apns_lex *l)
{
	int digits = 0;

	while (l->p < l->end && strchr("0123456789+-.eE", *l->p) != NULL && *l->p != '\0') {
		digits += *l->p >= '0' && *l->p <= '9';
		l->p++;
	}
	return digits > 0;
}

mdm_err apns_reason_parse(const char *body, size_t len, char out[APNS_MAX_REASON + 1])
{
	struct apns_lex l = {body, body + len};
	const char *key, *val, *reason = NULL;
	size_t klen, vlen, rlen = 0;
	const char *why = NULL;

	out[0] = '\0';
	if (body == NULL) {
		why = "no body";
		goto out;
	}
	apns_ws(&l);
	if (l.p >= l.end || *l.p++ != '{') {
		why = "not an object";
		goto out;
	}
	apns_ws(&l);
	if (l.p < l.end && *l.p == '}') {
		l.p++;
	} else {
		for (;;) {
			apns_ws(&l);
			if (!apns_string(&l, &key, &klen)) {
				why = "bad member name";
				goto out;
			}
			apns_ws(&l);
			if (l.p >= l.end || *l.p++ != ':') {
				why = "no colon";
				goto out;
			}
			apns_ws(&l);
			if (l.p < l.end && *l.p == '"') {
				if (!apns_string(&l, &val, &vlen)) {
					why = "bad string";
					goto out;
				}
				if (klen == 6 && memcmp(key, "reason", 6) == 0) {
					if (reason != NULL) {
						why = "duplicate reason";
						goto out;
					}
					reason = val;
					rlen = vlen;
				}
			} else if (!apns_number(&l)) {
				why = "value is neither string nor number";
				goto out;
			} else if (klen == 6 && memcmp(key, "reason", 6) == 0) {
				why = "reason is not a string";
				goto out;
			}
			apns_ws(&l);
			if (l.p < l.end && *l.p == ',') {
				l.p++;
				continue;
			}
			if (l.p < l.end && *l.p == '}') {
				l.p++;
				break;
			}
			why = "expected , or }";
			goto out;
		}
	}
	apns_ws(&l);
	if (l.p != l.end) {
		why = "data after the object";
		goto out;
	}
	if (reason == NULL) {
		why = "no reason";
		goto out;
	}
	if (rlen == 0 || rlen > APNS_MAX_REASON) {
		why = "reason empty or too long";
		goto out;
	}
	for (size_t i = 0; i < rlen; i++) {
		char c = reason[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
			why = "reason is not letters and digits";
			goto out;
		}
	}
	memcpy(out, reason, rlen);
	out[rlen] = '\0';
out:
	if (why != NULL) {
		log_debug("apns: Apple's error body refused: %s", why);
		return MDM_ERR_PARSE;
	}
	return MDM_OK;
}

/* ------------------------------------------------------------------ client */

/* "https://host[:port]" (host a name, an IPv4 address or [IPv6]) into a. */
static MDM_WUR mdm_err apns_url_split(apns *a, const char *url)
{
	size_t ulen = strlen(url), hlen;
	const char *h, *end, *colon = NULL;

	while (ulen > 0 && url[ulen - 1] == '/')
		ulen--;
	if (strncmp(url, "https://", 8) != 0 || ulen <= 8 || ulen > APNS_MAX_URL ||
	        strpbrk(url, " \t\r\n?#@") != NULL || memchr(url + 8, '/', ulen - 8) != NULL)
		return MDM_ERR_CONFIG;
	h = url + 8;
	end = url + ulen;
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));
		if (close == NULL || (close + 1 < end && close[1] != ':'))
			return MDM_ERR_CONFIG;
		colon = close + 1 < end ? close + 1 : NULL;
		hlen = (size_t)(close - h - 1);
		memcpy(a->host, h + 1, hlen);
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hlen = (size_t)((colon ? colon : end) - h);
		memcpy(a->host, h, hlen);
	}
	a->host[hlen] = '\0';
	if (hlen == 0)
		return MDM_ERR_CONFIG;
	if (colon != NULL) {
		size_t plen = (size_t)(end - colon - 1);
		if (plen == 0 || plen >= sizeof(a->port) || strspn(colon + 1, "0123456789") < plen)
			return MDM_ERR_CONFIG;
		memcpy(a->port, colon + 1, plen);
		a->port[plen] = '\0';
	} else {
		memcpy(a->port, "443", 4);
	}
	memcpy(a->authority, h, (size_t)(end - h));
	a->authority[end - h] = '\0';
	return MDM_OK;
}

mdm_err apns_new(const struct apns_opts *o, const char *topic, struct x509_st *cert,
        struct evp_pkey_st *key, apns **out)
{
	apns *a = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	*out = NULL;
	if (topic == NULL || strlen(topic) >= sizeof(a->topic) || cert == NULL || key == NULL ||
	        o->concurrency < 1 || o->concurrency > 1000)
		return MDM_ERR_INVAL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return MDM_ERR_NOMEM;
	if (apns_url_split(a, o->url ? o->url : APNS_DEFAULT_URL) != MDM_OK) {
		log_error("apns: apns_url must be https://host[:port] (Apple: HTTP/2 over TLS), "
		          "at most %d characters",
		        APNS_MAX_URL);
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	memcpy(a->topic, topic, strlen(topic) + 1);
	a->concurrency = o->concurrency;
	a->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	if ((a->slots = calloc((size_t)a->concurrency, sizeof(*a->slots))) == NULL ||
	        (a->free_slots = calloc((size_t)a->concurrency, sizeof(*a->free_slots))) == NULL)
		goto out;
	if ((rc = x509_tls_client_new(o->ca_file, "h2", cert, key, &a->client)) != MDM_OK)
		goto out;
	*out = a;
	a = NULL;
out:
	apns_free(a);
	return rc;
}

static void apns_disconnect(apns *a)
{
	nghttp2_session_del(a->h2);
	x509_tls_free(a->tls);
	a->h2 = NULL;
	a->tls = NULL;
	a->goaway = 0;
	a->broken = 0;
}

void apns_free(apns *a)
{
	if (a == NULL)
		return;
	apns_disconnect(a);
	x509_tls_client_free(a->client);
	free(a->slots);
	free(a->free_slots);
	free(a);
}

long apns_connections(const apns *a)
{
	return a->connects;
}

static void apns_fail(struct apns_push *p, const char *why)
{
	p->status = 0;
	snprintf(p->reason, sizeof(p->reason), "%s", why);
}

/* ------------------------------------------------------- nghttp2 callbacks */

static ssize_t apns_h2_send(
        nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *arg)
{
	apns *a = arg;
	size_t n = 0;

	(void)s;
	(void)flags;
	if (x509_tls_write(a->tls, data, len, &n) != MDM_OK) {
		a->broken = 1;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return n > 0 ? (ssize_t)n : NGHTTP2_ERR_WOULDBLOCK;
}

static ssize_t apns_h2_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
        uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct apns_stream *st = src->ptr;
	size_t n = st->body_len - st->body_off;

	(void)s;
	(void)id;
	(void)arg;
	if (n > len)
		n = len;
	memcpy(buf, st->body + st->body_off, n);
	st->body_off += n;
	if (st->body_off == st->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static struct apns_stream *apns_stream_get(nghttp2_session *s, int32_t id)
{
	return id > 0 ? nghttp2_session_get_stream_user_data(s, id) : NULL;
}

static int apns_h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
        size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	apns *a = arg;
	struct apns_stream *st = apns_stream_get(s, f->hd.stream_id);
	size_t e;

	(void)flags;
	if (st == NULL || st->push == SIZE_MAX || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
		/* nghttp2 checked it is three digits. */
		st->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
	} else if (nlen == 7 && memcmp(name, "apns-id", 7) == 0) {
		for (e = 0; e < vlen && (apns_hexdigit((char)value[e]) || value[e] == '-'); e++)
			;
		/* Only a well-formed, bounded id is kept; anything else is ignored. */
		if (e == vlen && e > 0 && e <= APNS_MAX_ID) {
			struct apns_push *p = &a->p[st->push];
			memcpy(p->apns_id, value, e);
			p->apns_id[e] = '\0';
		}
	}
	return 0;
}

static int apns_h2_data(
        nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *arg)
{
	struct apns_stream *st = apns_stream_get(s, id);
	size_t room;

	(void)flags;
	(void)arg;
	if (st == NULL || st->push == SIZE_MAX)
		return 0;
	room = sizeof(st->resp) - st->resp_len;
	/* Bounded: the rest is dropped, and a cut body is never parsed. */
	if (len > room) {
		st->resp_cut = 1;
		len = room;
	}
	memcpy(st->resp + st->resp_len, data, len);
	st->resp_len += len;
	return 0;
}

static void apns_slot_release(apns *a, struct apns_stream *st)
{
	st->push = SIZE_MAX;
	a->free_slots[a->nfree++] = (size_t)(st - a->slots);
}

/* The outcome of a stream the server ended (error 0) or reset. */
static void apns_stream_finish(apns *a, struct apns_stream *st, uint32_t error)
{
	struct apns_push *p = &a->p[st->push];
	char reason[APNS_MAX_REASON + 1];

	if (error == NGHTTP2_REFUSED_STREAM) {
		/* Not processed (RFC 9113 8.7): sent again, on this or a new connection. */
		a->queue[--a->queue_head] = st->push;
		p->apns_id[0] = '\0';
		return;
	}
	a->finished++;
	if (error != NGHTTP2_NO_ERROR || st->status == 0) {
		snprintf(p->reason, sizeof(p->reason), "network: stream reset (%s)",
		        nghttp2_http2_strerror(error));
		p->status = 0;
		return;
	}
	p->status = st->status;
	if (st->status == 200 || st->resp_len == 0)
		return;
	if (!st->resp_cut && apns_reason_parse(st->resp, st->resp_len, reason) == MDM_OK)
		memcpy(p->reason, reason, strlen(reason) + 1);
	else
		snprintf(p->reason, sizeof(p->reason), "(unparsed)");
}

static int apns_h2_close(nghttp2_session *s, int32_t id, uint32_t error, void *arg)
{
	apns *a = arg;
	struct apns_stream *st = apns_stream_get(s, id);

	(void)nghttp2_session_set_stream_user_data(s, id, NULL);
	/* SIZE_MAX: already given up on (apns_fail_inflight). */
	if (st == NULL || st->push == SIZE_MAX)
		return 0;
	apns_stream_finish(a, st, error);
	apns_slot_release(a, st);
	return 0;
}

static int apns_h2_frame(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
	apns *a = arg;

	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		/* Streams above last_stream_id are closed as refused, and go again. */
		log_info("apns: %s: the server sent GOAWAY (%s): reconnecting", a->topic,
		        nghttp2_http2_strerror(f->goaway.error_code));
		a->goaway = 1;
	}
	return 0;
}

/* ------------------------------------------------------------- connection */

static MDM_WUR mdm_err apns_connect(apns *a, const char **why)
{
	nghttp2_session_callbacks *cb = NULL;
	/* No server push. */
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
	mdm_err rc;

	apns_disconnect(a);
	*why = "network: cannot connect";
	if ((rc = x509_tls_connect(a->client, a->host, a->port, a->timeout_ms, &a->tls)) !=
	        MDM_OK) {
		if (rc == MDM_ERR_UNSUPPORTED)
			*why = "network: not HTTP/2";
		return rc;
	}
	a->connects++;
	*why = "local: nghttp2 session";
	if (nghttp2_session_callbacks_new(&cb) != 0)
		return MDM_ERR_NOMEM;
	nghttp2_session_callbacks_set_send_callback(cb, apns_h2_send);
	nghttp2_session_callbacks_set_on_header_callback(cb, apns_h2_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, apns_h2_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, apns_h2_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, apns_h2_frame);
	rc = nghttp2_session_client_new(&a->h2, cb, a) == 0 &&
	                nghttp2_submit_settings(
	                        a->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) == 0
	        ? MDM_OK
	        : MDM_ERR_NOMEM;
	nghttp2_session_callbacks_del(cb);
	if (rc != MDM_OK) {
		log_error("apns: cannot start an HTTP/2 session");
		apns_disconnect(a);
	}
	return rc;
}

/* Reads what the server sent, without waiting; 0 when the connection is unusable. */
static int apns_read(apns *a)
{
	for (;;) {
		size_t n = 0;
		if (x509_tls_read(a->tls, a->rbuf, sizeof(a->rbuf), &n) != MDM_OK) {
			a->broken = 1;
			return 0;
		}
		if (n == 0)
			return 1;
		if (nghttp2_session_mem_recv(a->h2, a->rbuf, n) < 0) {
			log_warn("apns: %s: the server broke HTTP/2 framing", a->topic);
			a->broken = 1;
			return 0;
		}
	}
}

/* Sends what nghttp2 has queued; 0 when the connection is unusable. */
static int apns_flush(apns *a)
{
	if (nghttp2_session_send(a->h2) != 0) {
		a->broken = 1;
		return 0;
	}
	return 1;
}

/* A connection that can take new streams now: 1, else 0. */
static int apns_usable(apns *a)
{
	if (a->h2 == NULL || a->broken)
		return 0;
	/* Whatever arrived while it was idle: a PING, a GOAWAY, the close. */
	if (!apns_read(a) || !apns_flush(a))
		return 0;
	return !a->goaway && nghttp2_session_want_read(a->h2);
}

/* Starts one stream for the next queued push; 0 when none could start. */
static int apns_submit(apns *a)
{
	struct apns_stream *st = &a->slots[a->free_slots[a->nfree - 1]];
	size_t i = a->queue[a->queue_head];
	struct apns_push *p = &a->p[i];
	nghttp2_data_provider body;
	const uint8_t fl = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
#define APNS_NV(n, v, vlen) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), fl}
	nghttp2_nv nv[] = {APNS_NV(":method", "POST", 4), APNS_NV(":scheme", "https", 5),
	        APNS_NV(":authority", a->authority, strlen(a->authority)),
	        APNS_NV(":path", st->path, 0), APNS_NV("apns-topic", a->topic, strlen(a->topic)),
	        APNS_NV("apns-push-type", "mdm", 3),
	        APNS_NV("content-type", "application/json", 16),
	        APNS_NV("content-length", st->clen, 0)};
#undef APNS_NV
	int32_t id;

	nv[3].valuelen =
	        (size_t)snprintf(st->path, sizeof(st->path), "%s%s", APNS_PATH, p->token_hex);
	st->body_len = (size_t)snprintf(st->body, sizeof(st->body), "{\"mdm\":\"%s\"}", p->magic);
	nv[7].valuelen = (size_t)snprintf(st->clen, sizeof(st->clen), "%zu", st->body_len);
	st->body_off = 0;
	st->resp_len = 0;
	st->resp_cut = 0;
	st->status = 0;
	st->push = i;
	body.source.ptr = st;
	body.read_callback = apns_h2_body;
	id = nghttp2_submit_request(a->h2, NULL, nv, sizeof(nv) / sizeof(nv[0]), &body, st);
	if (id < 0) {
		st->push = SIZE_MAX;
		/* Stream ids used up (2^31): a new connection takes the rest. */
		a->goaway = 1;
		return 0;
	}
	st->id = id;
	a->nfree--;
	a->queue_head++;
	return 1;
}

/* Every stream still open: the connection went away, or time ran out. */
static void apns_fail_inflight(apns *a, const char *why)
{
	for (size_t i = 0; i < (size_t)a->concurrency; i++) {
		struct apns_stream *st = &a->slots[i];
		if (st->push == SIZE_MAX)
			continue;
		apns_fail(&a->p[st->push], why);
		a->finished++;
		apns_slot_release(a, st);
	}
}

/* Every push not yet sent. */
static void apns_fail_queued(apns *a, const char *why)
{
	for (; a->queue_head < a->queue_len; a->queue_head++) {
		apns_fail(&a->p[a->queue[a->queue_head]], why);
		a->finished++;
	}
}

static long apns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------- send */

/* The pushes that cannot be sent at all are answered here; the rest are queued. */
static void apns_enqueue(apns *a, struct apns_push *p, size_t n)
{
	a->p = p;
	a->queue_len = a->queue_head = a->finished = 0;
	a->nfree = 0;
	for (size_t i = (size_t)a->concurrency; i-- > 0;) {
		a->slots[i].push = SIZE_MAX;
		a->free_slots[a->nfree++] = i;
	}
	for (size_t i = 0; i < n; i++) {
		p[i].status = 0;
		p[i].apns_id[0] = '\0';
		p[i].reason[0] = '\0';
		if (!apns_token_valid(p[i].token_hex) || !apns_magic_valid(p[i].magic)) {
			apns_fail(&p[i], "local: bad token or magic");
			a->finished++;
		} else {
			a->queue[a->queue_len++] = i;
		}
	}
}

/* Streams at once: ours, and no more than the server allows. */
static size_t apns_window(apns *a)
{
	uint32_t remote =
	        nghttp2_session_get_remote_settings(a->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

	return remote < (uint32_t)a->concurrency ? remote : (size_t)a->concurrency;
}

mdm_err apns_send(apns *a, struct apns_push *p, size_t n)
{
	long deadline = apns_now_ms() + a->timeout_ms;
	int reconnects = 0;
	const char *why = "network: connection lost";

	if (n == 0)
		return MDM_OK;
	if (n > 100000 || (a->queue = calloc(n, sizeof(*a->queue))) == NULL) {
		for (size_t i = 0; i < n; i++)
			apns_fail(&p[i], "local: out of memory");
		return MDM_ERR_NOMEM;
	}
	apns_enqueue(a, p, n);
	/* A connection kept from an earlier batch: what arrived while it was idle. */
	if (a->h2 != NULL && !apns_usable(a))
		apns_disconnect(a);
	while (a->finished < n) {
		struct pollfd pfd;
		long left = deadline - apns_now_ms();
		int r;

		if (left <= 0) {
			apns_fail_inflight(a, "network: timeout");
			apns_fail_queued(a, "network: timeout");
			apns_disconnect(a); /* answers to those streams would come to nobody */
			break;
		}
		if (a->h2 != NULL && (a->broken || !nghttp2_session_want_read(a->h2))) {
			/* What was in flight may have been delivered: not sent again here. */
			apns_fail_inflight(a, "network: connection lost");
			apns_disconnect(a);
		} else if (a->h2 != NULL && a->goaway && a->nfree == (size_t)a->concurrency) {
			apns_disconnect(a);
		}
		if (a->finished == n)
			break;
		if (a->h2 == NULL) {
			if (reconnects++ > APNS_MAX_RECONNECTS || apns_connect(a, &why) != MDM_OK) {
				apns_fail_queued(a, why);
				break;
			}
		}
		while (!a->goaway && a->queue_head < a->queue_len && a->nfree > 0 &&
		        (size_t)a->concurrency - a->nfree < apns_window(a))
			if (!apns_submit(a))
				break;
		if (!apns_flush(a))
			continue;
		pfd.fd = x509_tls_fd(a->tls);
		pfd.events = POLLIN;
		if (nghttp2_session_want_write(a->h2) || x509_tls_want_write(a->tls))
			pfd.events |= POLLOUT;
		pfd.revents = 0;
		r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR) {
			log_error("apns: poll: %s", strerror(errno));
			a->broken = 1;
		} else if (r > 0) {
			(void)apns_read(a);
		}
	}
	free(a->queue);
	a->queue = NULL;
	a->p = NULL;
	return MDM_OK;
}
