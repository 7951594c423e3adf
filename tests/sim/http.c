/* applesim: HTTP(S) through libcurl, as the device's URL loading does it. */
#include "sim.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SIM_HTTP_MAX (16u << 20) /* answers kept, bytes */

static size_t sim_http_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct sim_http *h = ud;
	size_t len = size * n;

	if (h->resp.len + len > SIM_HTTP_MAX)
		return 0; /* curl fails the transfer */
	sim_buf_append(&h->resp, ptr, len);
	return len;
}

/* Copies the value of header line buf (len bytes) into out when it is name's. */
static void header_value(const char *buf, size_t len, const char *name, char *out, size_t outsz)
{
	size_t n = strlen(name), i, j = 0;

	if (len <= n || strncasecmp(buf, name, n) != 0 || buf[n] != ':')
		return;
	for (i = n + 1; i < len && (buf[i] == ' ' || buf[i] == '\t'); i++)
		;
	for (; i < len && buf[i] != '\r' && buf[i] != '\n' && j + 1 < outsz; i++)
		out[j++] = buf[i];
	out[j] = '\0';
}

static size_t sim_http_header(char *buf, size_t size, size_t n, void *ud)
{
	struct sim_http *h = ud;
	size_t len = size * n;

	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		h->resp_type[0] = '\0';
		h->resp_nonce[0] = '\0';
		h->resp_location[0] = '\0';
	}
	header_value(buf, len, "Content-Type", h->resp_type, sizeof(h->resp_type));
	header_value(buf, len, "Replay-Nonce", h->resp_nonce, sizeof(h->resp_nonce));
	header_value(buf, len, "Location", h->resp_location, sizeof(h->resp_location));
	return len;
}

/*
 * Certificate pinning as a device applies it: the chain is first verified
 * as without pinning (the store curl set up from ca_file), then it must
 * hold one of the pinned certificates, else the handshake fails whatever
 * else the store trusts.
 */
struct sim_pins {
	STACK_OF(X509) * certs;
	int refused;
};

static int sim_pin_verify(X509_STORE_CTX *ctx, void *arg)
{
	struct sim_pins *pins = arg;
	STACK_OF(X509) * chain;

	if (X509_verify_cert(ctx) != 1)
		return 0;
	chain = X509_STORE_CTX_get0_chain(ctx);
	for (int i = 0; i < sk_X509_num(chain); i++)
		for (int j = 0; j < sk_X509_num(pins->certs); j++)
			if (X509_cmp(sk_X509_value(chain, i), sk_X509_value(pins->certs, j)) == 0)
				return 1;
	pins->refused = 1;
	X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

static CURLcode sim_pin_ctx(CURL *c, void *sslctx, void *arg)
{
	(void)c;
	SSL_CTX_set_cert_verify_callback(sslctx, sim_pin_verify, arg);
	return CURLE_OK;
}

static STACK_OF(X509) * sim_pins_load(const char *path)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	BIO *b = BIO_new_file(path, "r");
	X509 *x;

	if (sk == NULL || b == NULL) {
		sk_X509_free(sk);
		BIO_free(b);
		sim_ossl_fail("BIO_new_file (pinned certificates)");
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	ERR_clear_error();
	BIO_free(b);
	if (sk_X509_num(sk) == 0) {
		sk_X509_free(sk);
		sim_fail("%s: no pinned certificate", path);
	}
	return sk;
}

void sim_http_do(struct sim_http *h)
{
	struct sim_pins pins = {NULL, 0};
	struct curl_slist *hdrs = NULL;
	char err[CURL_ERROR_SIZE] = "", ct[200];
	CURL *c;
	CURLcode rc;

	h->status = 0;
	h->resp.p = NULL;
	h->resp.len = 0;
	h->resp_type[0] = '\0';
	h->resp_nonce[0] = '\0';
	h->resp_location[0] = '\0';
	/* Before the handle exists: a refusal here leaks nothing (LeakSanitizer). */
	if (h->pin_file != NULL && !h->insecure)
		pins.certs = sim_pins_load(h->pin_file);
	if ((c = curl_easy_init()) == NULL)
		sim_fail("curl_easy_init failed");
	curl_easy_setopt(c, CURLOPT_URL, h->url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sim_http_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sim_http_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "MDM/1.0");
	if (h->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
	if (pins.certs != NULL) {
		curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, sim_pin_ctx);
		curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, &pins);
	}
	if (h->client_cert != NULL) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, h->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, h->client_key);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (h->content_type != NULL) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", h->content_type);
		hdrs = curl_slist_append(hdrs, ct);
	}
	for (size_t i = 0; i < sizeof(h->headers) / sizeof(h->headers[0]); i++)
		if (h->headers[i] != NULL)
			hdrs = curl_slist_append(hdrs, h->headers[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (strcmp(h->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(h->method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, h->method);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body != NULL ? h->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body_len);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
	/* Before sim_fail exits: a refused handshake is an expected end (LeakSanitizer). */
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	sk_X509_pop_free(pins.certs, X509_free);
	if (rc != CURLE_OK && pins.refused)
		sim_fail("%s %s: TLS: the server's chain holds none of the pinned certificates "
		         "(com.apple.mdm.yaml: ServerURLPinningCertificateUUIDs, "
		         "CheckInURLPinningCertificateUUIDs): refused as a device refuses it",
		        h->method, h->url);
	if (rc != CURLE_OK)
		sim_fail("%s %s: %s", h->method, h->url, err[0] ? err : curl_easy_strerror(rc));
	if (h->resp.p == NULL)
		sim_buf_append(&h->resp, "", 0);
}

void sim_http_free(struct sim_http *h)
{
	sim_buf_free(&h->resp);
}

char *sim_url_escape(const char *s)
{
	size_t n = strlen(s), j = 0;
	char *out = sim_xmalloc(3 * n + 1);

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		        (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
		        ch == '~') {
			out[j++] = (char)ch;
		} else {
			snprintf(out + j, 4, "%%%02X", ch);
			j += 3;
		}
	}
	out[j] = '\0';
	return out;
}
