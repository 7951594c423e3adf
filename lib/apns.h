/*
 * APNs client for MDM pushes (only this module includes libnghttp2, and,
 * in apns_http.c, libcurl; TLS is x509_tls's).
 *
 * Apple, "Sending notification requests to APNs" (certificate-based):
 * POST <url>/3/device/<hex token> over HTTP/2, the MDM push certificate as
 * the TLS client certificate, header apns-topic = the certificate's topic,
 * apns-push-type mdm, body {"mdm":"<PushMagic>"}.  One apns handle per
 * topic keeps one connection, kept open between batches, over which a
 * batch of pushes is multiplexed as concurrent HTTP/2 streams: up to
 * concurrency at once, and no more than the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS.  A GOAWAY, or a connection that went
 * away while idle, means a new connection for what was not yet sent.
 */
#ifndef MDM_APNS_H
#define MDM_APNS_H

#include <stddef.h>

#include "errors.h"
#include "mdm_limits.h"

struct x509_st;
struct evp_pkey_st;

#define APNS_DEFAULT_URL "https://api.push.apple.com"
#define APNS_SANDBOX_URL "https://api.sandbox.push.apple.com"

typedef struct apns apns;

struct apns_opts {
	const char *url;     /* base URL, https:// (APNS_DEFAULT_URL when NULL) */
	const char *ca_file; /* PEM bundle trusted for url; NULL: the system's */
	int concurrency;     /* streams at once on the connection (1..1000) */
	long timeout_ms;     /* per batch (apns_send), connections included */
};

/* One push and, after apns_send, its outcome. */
struct apns_push {
	const char *token_hex; /* apns_token_valid */
	const char *magic;     /* apns_magic_valid */
	/* Outcome: status is Apple's HTTP status, 0 when there was no answer. */
	int status;
	char apns_id[APNS_MAX_ID + 1];
	/* Apple's reason; for status 0 a short local one ("network: ..."). */
	char reason[APNS_MAX_REASON + 1];
};

/* Once per process: MDM_ERR_UNSUPPORTED when libnghttp2 is too old. */
MDM_WUR mdm_err apns_global_init(void);
void apns_global_cleanup(void);

/* 1 if hex is an even count of hex digits, APNS_MIN_TOKEN..APNS_MAX_TOKEN bytes. */
int apns_token_valid(const char *hex);
/* 1 if magic is 1..APNS_MAX_MAGIC printable ASCII bytes, without " or \ (JSON-safe). */
int apns_magic_valid(const char *magic);

/*
 * Apple's error body {"reason":"BadDeviceToken"} (other members with
 * string or number values are allowed, e.g. "timestamp" with 410): the
 * reason into out.  A strict parse of one flat object: no escapes, no
 * nesting, no duplicate reason, nothing after the object; the reason is
 * 1..APNS_MAX_REASON letters and digits.  MDM_ERR_PARSE otherwise
 * (logged at debug: the body is the peer's, not ours to trust).
 */
MDM_WUR mdm_err apns_reason_parse(const char *body, size_t len, char out[APNS_MAX_REASON + 1]);

/*
 * A client for topic authenticating with cert and key (not taken: the
 * caller frees them after apns_free).  MDM_ERR_CONFIG for a bad URL or
 * CA file.  No connection is made before the first apns_send.
 */
MDM_WUR mdm_err apns_new(const struct apns_opts *o, const char *topic, struct x509_st *cert,
        struct evp_pkey_st *key, apns **out);
void apns_free(apns *a);

/*
 * Sends n pushes concurrently over the topic's connection and waits for
 * all of them, timeout_ms at most; each outcome is in its apns_push (a
 * stream the server refused unprocessed is sent again; one in flight when
 * the connection broke is a network error, status 0).  Returns non-OK
 * only when nothing could be attempted (a local failure, logged).
 */
MDM_WUR mdm_err apns_send(apns *a, struct apns_push *p, size_t n);
/* How many connections a has opened since apns_new. */
long apns_connections(const apns *a);

/*
 * ---- apns_http.c: HTTP POSTs with libcurl (the webhook of bin/mdm-eventd) ----
 *
 * One handle per destination URL; it keeps its connection between posts.
 * The answer's body is read and dropped, never kept or logged.  Redirects
 * are not followed; https verifies the server's certificate and name
 * (ca_file, or the system's store).
 */
#define APNS_HTTP_MAX_URL    2048
#define APNS_HTTP_MAX_HEADER 1024

typedef struct apns_http apns_http;

struct apns_http_opts {
	const char *url;         /* http:// or https://, apns_http_url_valid */
	const char *ca_file;     /* PEM bundle trusted for https; NULL: the system's */
	long timeout_ms;         /* the whole request (<= 0: 10 s) */
	long connect_timeout_ms; /* the connection alone (<= 0: timeout_ms) */
};

/* Once per process (libcurl's global state). */
MDM_WUR mdm_err apns_http_global_init(void);
void apns_http_global_cleanup(void);

/* 1 if url is http:// or https://, a host, printable ASCII without spaces, <= APNS_HTTP_MAX_URL. */
int apns_http_url_valid(const char *url);
/* MDM_ERR_CONFIG for a URL apns_http_url_valid refuses; no connection is made yet. */
MDM_WUR mdm_err apns_http_new(const struct apns_http_opts *o, apns_http **out);
void apns_http_free(apns_http *h);

/*
 * POSTs len bytes of body (Content-Type: application/json) with nheaders
 * more header lines ("Name: value", printable ASCII, at most
 * APNS_HTTP_MAX_HEADER: MDM_ERR_INVAL otherwise) and waits for the
 * answer.  *status is its HTTP status, 0 when none came (refused,
 * timed out, TLS failure); why (whylen bytes) says which, for logs.
 * Returns non-OK only when nothing could be attempted.
 */
MDM_WUR mdm_err apns_http_post(apns_http *h, const char *const *headers, size_t nheaders,
        const char *body, size_t len, int *status, char *why, size_t whylen);

#endif
