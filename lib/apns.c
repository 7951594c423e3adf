/* libcurl: MDM pushes to APNs over one multiplexed HTTP/2 connection per topic. */
#include "apns.h"
#include "log.h"
#include "x509.h"

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define APNS_PATH "/3/device/"

struct apns {
	CURLM *multi;
	char *url; /* base, without a trailing slash */
	char *ca_file;
	char topic[160];
	int concurrency;
	long timeout_ms;
	struct x509_st *cert;
	struct evp_pkey_st *key;
};

/* One transfer in flight. */
struct apns_xfer {
	struct apns_push *push;
	CURL *easy;
	struct curl_slist *headers;
	char body[APNS_MAX_MAGIC + 16];
	char resp[APNS_MAX_RESPONSE];
	size_t resp_len;
	int resp_cut;
	int done;
	long connects; /* new connections this transfer made (0: multiplexed or reused) */
};

mdm_err apns_global_init(void)
{
	const curl_version_info_data *v;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("apns: curl_global_init failed");
		return MDM_ERR_INTERNAL;
	}
	v = curl_version_info(CURLVERSION_NOW);
	if (!(v->features & CURL_VERSION_HTTP2)) {
		log_error("apns: this libcurl has no HTTP/2 (Apple requires it): install one built "
		          "with nghttp2 (Debian: libcurl4-openssl-dev)");
		return MDM_ERR_UNSUPPORTED;
	}
	/* The client identity is set on OpenSSL's SSL_CTX (x509_ssl_ctx_use_identity). */
	if (v->ssl_version == NULL || strncmp(v->ssl_version, "OpenSSL/", 8) != 0) {
		log_error("apns: libcurl must use OpenSSL, not %s",
		        v->ssl_version ? v->ssl_version : "no TLS");
		return MDM_ERR_UNSUPPORTED;
	}
	return MDM_OK;
}

void apns_global_cleanup(void)
{
	curl_global_cleanup();
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

/* --------------------------------------------------------------- transfers */

static size_t apns_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct apns_xfer *x = arg;
	size_t n = size * nmemb;
	size_t room = sizeof(x->resp) - x->resp_len;

	/* Bounded: the rest is dropped, and a cut body is never parsed. */
	if (n > room) {
		x->resp_cut = 1;
		memcpy(x->resp + x->resp_len, data, room);
		x->resp_len += room;
	} else {
		memcpy(x->resp + x->resp_len, data, n);
		x->resp_len += n;
	}
	return n;
}

static size_t apns_on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct apns_xfer *x = arg;
	size_t n = size * nmemb, v, e;
	static const char name[] = "apns-id:";

	if (n < sizeof(name) - 1 || strncasecmp(data, name, sizeof(name) - 1) != 0)
		return n;
	for (v = sizeof(name) - 1; v < n && (data[v] == ' ' || data[v] == '\t'); v++)
		;
	for (e = v; e < n && (apns_hexdigit(data[e]) || data[e] == '-'); e++)
		;
	/* Only a well-formed, bounded id is kept; anything else is ignored. */
	if (e > v && e - v <= APNS_MAX_ID && (e == n || data[e] == '\r' || data[e] == '\n')) {
		memcpy(x->push->apns_id, data + v, e - v);
		x->push->apns_id[e - v] = '\0';
	}
	return n;
}

static CURLcode apns_on_ssl_ctx(CURL *easy, void *ssl_ctx, void *arg)
{
	apns *a = arg;

	(void)easy;
	if (x509_ssl_ctx_use_identity(ssl_ctx, a->cert, a->key) != MDM_OK)
		return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

mdm_err apns_new(const struct apns_opts *o, const char *topic, struct x509_st *cert,
        struct evp_pkey_st *key, apns **out)
{
	const char *url = o->url ? o->url : APNS_DEFAULT_URL;
	size_t ulen = strlen(url);
	apns *a = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	*out = NULL;
	while (ulen > 0 && url[ulen - 1] == '/')
		ulen--;
	if (strncmp(url, "https://", 8) != 0 || ulen <= 8 || ulen > APNS_MAX_URL ||
	        strpbrk(url, " \t\r\n?#") != NULL) {
		log_error("apns: apns_url must be https://host[:port] (Apple: HTTP/2 over TLS), "
		          "at most %d characters",
		        APNS_MAX_URL);
		return MDM_ERR_CONFIG;
	}
	if (topic == NULL || strlen(topic) >= sizeof(a->topic) || cert == NULL || key == NULL ||
	        o->concurrency < 1 || o->concurrency > 1000)
		return MDM_ERR_INVAL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto out;
	if ((a->url = malloc(ulen + 1)) == NULL)
		goto out;
	memcpy(a->url, url, ulen);
	a->url[ulen] = '\0';
	if (o->ca_file != NULL && (a->ca_file = strdup(o->ca_file)) == NULL)
		goto out;
	memcpy(a->topic, topic, strlen(topic) + 1);
	a->concurrency = o->concurrency;
	a->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
	a->cert = cert;
	a->key = key;
	if ((a->multi = curl_multi_init()) == NULL)
		goto out;
	/* One connection, many streams: Apple asks for connections to be kept and reused. */
	if (curl_multi_setopt(a->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) !=
	                CURLM_OK ||
	        curl_multi_setopt(a->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L) != CURLM_OK ||
	        curl_multi_setopt(a->multi, CURLMOPT_MAX_CONCURRENT_STREAMS,
	                (long)o->concurrency) != CURLM_OK) {
		log_error("apns: libcurl refused HTTP/2 multiplexing options");
		rc = MDM_ERR_UNSUPPORTED;
		goto out;
	}
	*out = a;
	a = NULL;
	rc = MDM_OK;
out:
	apns_free(a);
	return rc;
}

void apns_free(apns *a)
{
	if (a == NULL)
		return;
	if (a->multi != NULL)
		curl_multi_cleanup(a->multi);
	free(a->url);
	free(a->ca_file);
	free(a);
}

static void apns_xfer_free(struct apns_xfer *x, CURLM *multi)
{
	if (x->easy != NULL) {
		(void)curl_multi_remove_handle(multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	x->easy = NULL;
	x->headers = NULL;
}

static void apns_fail(struct apns_push *p, const char *why)
{
	p->status = 0;
	snprintf(p->reason, sizeof(p->reason), "%s", why);
}

static int apns_add_header(struct curl_slist **h, const char *line)
{
	struct curl_slist *n = curl_slist_append(*h, line);

	if (n == NULL)
		return 0;
	*h = n;
	return 1;
}

/* Builds one transfer; 0 on a local failure (the push is marked). */
static int apns_xfer_setup(apns *a, struct apns_xfer *x)
{
	char url[APNS_MAX_URL + sizeof(APNS_PATH) + 2 * APNS_MAX_TOKEN + 1];
	char topic_header[sizeof(a->topic) + 16];
	struct apns_push *p = x->push;
	CURL *e;
	int ok = 1;

	if (!apns_token_valid(p->token_hex) || !apns_magic_valid(p->magic)) {
		apns_fail(p, "local: bad token or magic");
		return 0;
	}
	snprintf(url, sizeof(url), "%s%s%s", a->url, APNS_PATH, p->token_hex);
	snprintf(x->body, sizeof(x->body), "{\"mdm\":\"%s\"}", p->magic);
	snprintf(topic_header, sizeof(topic_header), "apns-topic: %s", a->topic);
	if ((x->easy = e = curl_easy_init()) == NULL) {
		apns_fail(p, "local: out of memory");
		return 0;
	}
	ok = apns_add_header(&x->headers, topic_header) &&
	        apns_add_header(&x->headers, "apns-push-type: mdm") &&
	        apns_add_header(&x->headers, "content-type: application/json");
	ok = ok && curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS) ==
	                CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_POST, 1L) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body)) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) ==
	                CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, apns_on_ssl_ctx) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, a) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, a->timeout_ms) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, a->timeout_ms) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, apns_on_body) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_WRITEDATA, x) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, apns_on_header) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_HEADERDATA, x) == CURLE_OK &&
	        curl_easy_setopt(e, CURLOPT_PRIVATE, x) == CURLE_OK &&
	        (a->ca_file == NULL || curl_easy_setopt(e, CURLOPT_CAINFO, a->ca_file) == CURLE_OK);
	if (!ok) {
		log_error("apns: libcurl refused an option for a push");
		apns_fail(p, "local: libcurl option refused");
		return 0;
	}
	if (curl_multi_add_handle(a->multi, e) != CURLM_OK) {
		apns_fail(p, "local: curl_multi_add_handle");
		return 0;
	}
	return 1;
}

/* Fills the push's outcome from a finished transfer. */
static void apns_xfer_finish(struct apns_xfer *x, CURLcode cc)
{
	struct apns_push *p = x->push;
	long status = 0, version = 0;
	char reason[APNS_MAX_REASON + 1];

	x->done = 1;
	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &x->connects) != CURLE_OK)
		x->connects = 0;
	if (cc != CURLE_OK) {
		/* curl's generic text: it never carries the URL, so no token. */
		snprintf(p->reason, sizeof(p->reason), "network: %s", curl_easy_strerror(cc));
		p->status = 0;
		return;
	}
	if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
	        curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version) != CURLE_OK) {
		apns_fail(p, "local: curl_easy_getinfo");
		return;
	}
	if (version != CURL_HTTP_VERSION_2_0) {
		/* Apple speaks only HTTP/2; an answer over HTTP/1.1 is not APNs. */
		apns_fail(p, "network: not HTTP/2");
		return;
	}
	p->status = (int)status;
	if (status == 200 || x->resp_len == 0)
		return;
	if (!x->resp_cut && apns_reason_parse(x->resp, x->resp_len, reason) == MDM_OK)
		memcpy(p->reason, reason, strlen(reason) + 1);
	else
		snprintf(p->reason, sizeof(p->reason), "(unparsed)");
}

mdm_err apns_send(apns *a, struct apns_push *p, size_t n)
{
	struct apns_xfer *x = NULL;
	long connects = 0;
	int running = 0;
	mdm_err rc = MDM_OK;

	for (size_t i = 0; i < n; i++) {
		p[i].status = 0;
		p[i].apns_id[0] = '\0';
		p[i].reason[0] = '\0';
	}
	if (n == 0)
		return MDM_OK;
	if (n > 100000 || (x = calloc(n, sizeof(*x))) == NULL) {
		for (size_t i = 0; i < n; i++)
			apns_fail(&p[i], "local: out of memory");
		return MDM_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		x[i].push = &p[i];
		if (!apns_xfer_setup(a, &x[i]))
			x[i].done = 1;
	}
	do {
		CURLMcode mc = curl_multi_perform(a->multi, &running);
		CURLMsg *m;
		int left;

		if (mc == CURLM_OK && running > 0)
			mc = curl_multi_poll(a->multi, NULL, 0, 1000, NULL);
		if (mc != CURLM_OK) {
			log_error("apns: curl multi: %s", curl_multi_strerror(mc));
			rc = MDM_ERR_INTERNAL;
			break;
		}
		while ((m = curl_multi_info_read(a->multi, &left)) != NULL) {
			struct apns_xfer *done = NULL;
			if (m->msg != CURLMSG_DONE)
				continue;
			if (curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&done) ==
			                CURLE_OK &&
			        done != NULL)
				apns_xfer_finish(done, m->data.result);
		}
	} while (running > 0);
	for (size_t i = 0; i < n; i++) {
		if (!x[i].done)
			apns_fail(&p[i], "local: not finished");
		connects += x[i].connects;
		apns_xfer_free(&x[i], a->multi);
	}
	log_debug("apns: %zu pushes to %s over %ld new connection(s)", n, a->topic, connects);
	free(x);
	return rc;
}
