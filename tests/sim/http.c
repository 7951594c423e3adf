/* applesim: HTTP(S) through libcurl, as the device's URL loading does it. */
#include "sim.h"

#include <curl/curl.h>
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

void sim_http_do(struct sim_http *h)
{
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
