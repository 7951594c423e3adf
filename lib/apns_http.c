/*
 * HTTP POSTs for the webhook (bin/mdm-eventd): libcurl, one easy handle
 * per destination, kept between requests so that the connection is
 * reused.  In the apns module because the module that speaks HTTP to the
 * outside owns the HTTP client libraries (apns.c: libnghttp2; this file:
 * libcurl, which nothing else in lib/ includes).  See apns.h.
 */
#include "apns.h"
#include "log.h"

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct apns_http {
	CURL *curl;
	char url[APNS_HTTP_MAX_URL + 1];
	char errbuf[CURL_ERROR_SIZE];
	size_t reply_len; /* bytes of the last answer's body, read and dropped */
};

mdm_err apns_http_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("http: curl_global_init failed");
		return MDM_ERR_INTERNAL;
	}
	return MDM_OK;
}

void apns_http_global_cleanup(void)
{
	curl_global_cleanup();
}

int apns_http_url_valid(const char *url)
{
	size_t n, skip;

	if (url == NULL)
		return 0;
	n = strlen(url);
	if (strncmp(url, "https://", 8) == 0)
		skip = 8;
	else if (strncmp(url, "http://", 7) == 0)
		skip = 7;
	else
		return 0;
	if (n <= skip || n > APNS_HTTP_MAX_URL)
		return 0;
	/* Printable ASCII, no spaces: nothing a header or a log line could be split by. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return 0;
	/* A host: not "/", not empty. */
	return url[skip] != '/' && url[skip] != '?' && url[skip] != '#';
}

/* The answer's body is the receiver's: counted, never kept or logged. */
static size_t apns_http_drop(char *ptr, size_t size, size_t n, void *arg)
{
	apns_http *h = arg;

	(void)ptr;
	h->reply_len += size * n;
	return size * n;
}

mdm_err apns_http_new(const struct apns_http_opts *o, apns_http **out)
{
	apns_http *h;
	long timeout = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	long connect = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : timeout;

	*out = NULL;
	if (!apns_http_url_valid(o->url)) {
		log_error("http: the URL must be http:// or https:// followed by a host, printable "
		          "ASCII without spaces, at most %d characters",
		        APNS_HTTP_MAX_URL);
		return MDM_ERR_CONFIG;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return MDM_ERR_NOMEM;
	memcpy(h->url, o->url, strlen(o->url) + 1);
	if ((h->curl = curl_easy_init()) == NULL) {
		free(h);
		log_error("http: curl_easy_init failed");
		return MDM_ERR_NOMEM;
	}
	if (curl_easy_setopt(h->curl, CURLOPT_URL, h->url) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, timeout) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, connect) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	        (o->ca_file != NULL && o->ca_file[0] != '\0' &&
	                curl_easy_setopt(h->curl, CURLOPT_CAINFO, o->ca_file) != CURLE_OK) ||
	        curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, apns_http_drop) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "mdm-eventd") != CURLE_OK) {
		log_error("http: curl_easy_setopt failed (libcurl without http/https?)");
		apns_http_free(h);
		return MDM_ERR_UNSUPPORTED;
	}
	*out = h;
	return MDM_OK;
}

void apns_http_free(apns_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	free(h);
}

/* A header line is "Name: value", printable ASCII, no CR or LF. */
static int apns_http_header_valid(const char *line)
{
	const char *colon = strchr(line, ':');
	size_t n = strlen(line);

	if (colon == NULL || colon == line || n > APNS_HTTP_MAX_HEADER)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			return 0;
	return 1;
}

mdm_err apns_http_post(apns_http *h, const char *const *headers, size_t nheaders, const char *body,
        size_t len, int *status, char *why, size_t whylen)
{
	struct curl_slist *list = NULL, *next;
	long code = 0;
	CURLcode cc;
	mdm_err rc = MDM_ERR_NOMEM;

	*status = 0;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (h == NULL || (body == NULL && len > 0))
		return MDM_ERR_INVAL;
	/* No "Expect: 100-continue" round trip before a large body. */
	if ((list = curl_slist_append(NULL, "Expect:")) == NULL)
		goto out;
	if ((next = curl_slist_append(list, "Content-Type: application/json")) == NULL)
		goto out;
	list = next;
	for (size_t i = 0; i < nheaders; i++) {
		if (!apns_http_header_valid(headers[i])) {
			log_error("http: refusing a malformed request header");
			rc = MDM_ERR_INVAL;
			goto out;
		}
		if ((next = curl_slist_append(list, headers[i])) == NULL)
			goto out;
		list = next;
	}
	h->errbuf[0] = '\0';
	h->reply_len = 0;
	if (curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, list) != CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) !=
	                CURLE_OK ||
	        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body != NULL ? body : "") !=
	                CURLE_OK) {
		log_error("http: curl_easy_setopt failed");
		rc = MDM_ERR_INTERNAL;
		goto out;
	}
	cc = curl_easy_perform(h->curl);
	if (cc == CURLE_OK && curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK)
		*status = code >= 100 && code <= 999 ? (int)code : 0;
	if (why != NULL && whylen > 0) {
		if (cc != CURLE_OK)
			snprintf(why, whylen, "network: %s",
			        h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(cc));
		else if (*status == 0)
			snprintf(why, whylen, "network: no HTTP status in the answer");
		else
			snprintf(why, whylen, "HTTP %d", *status);
	}
	rc = MDM_OK;
out:
	/* The list is the handle's until the next request: detached before it is freed. */
	if (h != NULL && h->curl != NULL)
		(void)curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(list);
	return rc;
}
