/*
 * ACME (RFC 8555) for Apple devices: the com.apple.security.acme payload
 * with HardwareBound and Attest, answered with the device-attest-01
 * challenge of draft-acme-device-attest.  Only what devices use: the
 * directory, newNonce, newAccount, newOrder for one permanent-identifier,
 * POST-as-GET of orders, authorizations and certificates, the challenge,
 * finalize.  keyChange, revokeCert and account deactivation are not
 * offered (docs/ACME.md says why).
 *
 * acme_handle maps one HTTP request (method, path, Content-Type, body) to
 * one answer in struct acme_reply, so the protocol is tested without a
 * web server; cgi-bin/acme.c only copies the answer out.  State is in
 * PostgreSQL (sql/027_acme.sql); the server keeps only what is loaded once
 * at start-up: configuration, the attestation trust store and the CA.
 */
#ifndef MDM_ACME_H
#define MDM_ACME_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "errors.h"

struct acme_server;

struct acme_reply {
	int status;
	const char *content_type; /* static text */
	char *body;               /* owned; may hold NULs (a certificate chain is text) */
	size_t len;
	char headers[3072]; /* complete "Name: value\r\n" lines: Replay-Nonce, Location, Link */
};

/*
 * The server for cfg: acme_base_url (or public_url + "/acme"), the nonce
 * and order lifetimes, acme_allow_serial_identifier, cert_days and the
 * attestation roots of acme_attest_root_file (loaded now).  The CA is
 * loaded when first needed and reloaded when mdm.ca changes.
 * MDM_ERR_CONFIG naming the key that is missing or wrong.
 */
MDM_WUR mdm_err acme_server_new(db *d, const config *cfg, struct acme_server **out);
void acme_server_free(struct acme_server *s);

/* The base URL every ACME URL starts with (no trailing slash). */
const char *acme_base_url(const struct acme_server *s);

/*
 * One request: path is the request path (REQUEST_URI up to '?'),
 * content_type the request's (NULL when absent), body its len bytes.
 * *out is the answer, problem documents included (RFC 7807 with ACME's
 * error types, RFC 8555 section 6.7); MDM_OK unless no answer could be
 * made (then the caller answers 500 or 503 itself: MDM_ERR_DB_CONN,
 * MDM_ERR_NOMEM).  acme_reply_clear frees it.
 */
MDM_WUR mdm_err acme_handle(struct acme_server *s, const char *method, const char *path,
        const char *content_type, const uint8_t *body, size_t len, time_t now,
        struct acme_reply *out);
void acme_reply_clear(struct acme_reply *r);

/*
 * The id in a URL of ours: base "/" kind "/" digits (kind "acct", "order",
 * ...), nothing after unless suffix (e.g. "/finalize") follows exactly.
 * 0 when url is not such a URL (exposed for tests).
 */
long long acme_url_id(const char *base, const char *url, const char *kind, const char *suffix);

#endif
