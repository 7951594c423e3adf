/*
 * Device identity: which identity certificate a check-in or command
 * request speaks for (Apple "Mobile Device Management Protocol": the
 * device authenticates with the identity certificate of its enrollment
 * profile, by TLS client certificate and/or the Mdm-Signature header).
 *
 * identity_authenticate does everything that needs no UDID: takes the
 * certificate from SSL_CLIENT_CERT (TLS proved possession of its key)
 * and/or from Mdm-Signature (a detached CMS signature over the exact
 * body), requires both to name the same certificate when both are
 * present, verifies it to our CA (current or a previous, still valid),
 * requires clientAuth, and looks it up in mdm.certificate (issued by us,
 * kind device, not revoked).  identity_check_bound then ties it to the
 * UDID a message names.  Every refusal is MDM_ERR_FORBIDDEN, logged once
 * with the rule; what the peer is told never says which rule, nor
 * whether a UDID exists.
 */
#ifndef MDM_IDENTITY_H
#define MDM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mdm_limits.h"
#include "ca.h"
#include "db.h"
#include "errors.h"
#include "x509.h"

#define IDENTITY_TLS       1 /* SSL_CLIENT_CERT */
#define IDENTITY_SIGNATURE 2 /* Mdm-Signature */

struct identity {
	struct x509_st *cert; /* owned */
	long long cert_id;    /* mdm.certificate.id */
	char sha256[X509_FP_HEX_LEN + 1];
	char serial[41];
	char udid[IDENTITY_MAX_ID + 1]; /* mdm.certificate.udid, "" while unbound */
	long long renewal_of;           /* mdm.certificate.renewal_of, 0 if none */
	int sources;                    /* IDENTITY_TLS | IDENTITY_SIGNATURE */
};

/*
 * client_cert: SSL_CLIENT_CERT (PEM) or NULL; mdm_signature: the
 * Mdm-Signature header (base64) or NULL; body: the exact request body.
 * ca: the CA state (ca->verify are the issuers accepted).  On MDM_OK *out
 * is filled (release with identity_clear); MDM_ERR_FORBIDDEN for every
 * refusal, MDM_ERR_DB / MDM_ERR_DB_CONN when the database fails.
 */
MDM_WUR mdm_err identity_authenticate(db *d, const struct ca_state *ca, const char *client_cert,
        const char *mdm_signature, const uint8_t *body, size_t len, time_t now,
        struct identity *out);
/*
 * The same checks but the database's: on MDM_OK the certificate is
 * verified to our CA and out->sha256 set, not yet looked up (cert_id 0).
 * The caller then reads its mdm.certificate row (a program that does so
 * inside a statement of its own, server.fcgi's mdm.command_exchange) and
 * applies identity_record to it.
 */
MDM_WUR mdm_err identity_verify(const struct ca_state *ca, const char *client_cert,
        const char *mdm_signature, const uint8_t *body, size_t len, time_t now,
        struct identity *out);
/*
 * The rules of the certificate's row, read into row of r from column col
 * on: id (NULL or no such row: not issued by us), kind, revoked (t/f),
 * udid, renewal_of, serial.  It must be a device identity we issued, not
 * revoked: then MDM_OK and id's cert_id, udid, renewal_of and serial are
 * set; otherwise MDM_ERR_FORBIDDEN, logged with the rule.
 */
MDM_WUR mdm_err identity_record(struct identity *id, const db_res *r, int row, int col);
void identity_clear(struct identity *id);

/*
 * checkin_require_tls (docs/CONFIG.md): Apple's MDM protocol has no nonce,
 * so a request proved by Mdm-Signature alone can be replayed.  With
 * require_tls set, MDM_ERR_FORBIDDEN (logged, citing the key) unless
 * client_cert (SSL_CLIENT_CERT) is present; MDM_OK otherwise.  Checked
 * before anything is read from the database, so it says nothing of a UDID.
 */
MDM_WUR mdm_err identity_require_tls(int require_tls, const char *client_cert);

/*
 * The setting for one request: checkin_require_tls, or "yes" in the
 * request's MDM_CHECKIN_REQUIRE_TLS (SetEnv in an Apache Location), which
 * can turn it on for a route, never off.  location: that value or NULL.
 */
int identity_require_tls_for(int configured, const char *location);

/* The body of that 403: it names the key, never a device. */
#define IDENTITY_REQUIRE_TLS_REFUSAL                                                               \
	"forbidden: checkin_require_tls = yes: a TLS client certificate is required "              \
	"(a signature-only request can be replayed)"

/* "tls", "signature" or "both". */
const char *identity_auth_str(int sources);

/*
 * 1 if s is an acceptable UDID / EnrollmentID / UserID: 1 to
 * IDENTITY_MAX_ID characters of [A-Za-z0-9._:-].
 */
int identity_id_valid(const char *s);

/*
 * For every request but Authenticate: the certificate must be the one
 * bound to udid (mdm.device.identity_certificate_id), or one renewed from
 * it (RenewalReq), which is then bound in its place (reason renewal): a
 * device goes on under its renewed identity without a new Authenticate.
 * Run inside the caller's transaction; locks the device row (FOR UPDATE)
 * so that a concurrent Authenticate cannot rebind it underneath.
 * MDM_ERR_FORBIDDEN (logged) when the UDID is unknown or bound to another
 * certificate: both look the same to the peer.
 */
MDM_WUR mdm_err identity_check_bound(db *d, const struct identity *id, const char *udid);

/*
 * What mdm.identity_check_bound (or mdm.command_exchange, which runs it)
 * answered for this certificate and udid, as identity_check_bound returns
 * it: MDM_OK for bound and renewal (logged: the renewed certificate is
 * bound now), MDM_ERR_FORBIDDEN (logged) for elsewhere and unbound.
 */
MDM_WUR mdm_err identity_bound_outcome(
        const struct identity *id, const char *udid, const char *outcome);

/*
 * Ties the certificate to udid (mdm.certificate.udid), decided under its
 * row lock inside the caller's transaction: MDM_OK when it was unbound or
 * already udid's, MDM_ERR_FORBIDDEN (logged) when it belongs to another
 * UDID, also one a concurrent request bound a moment ago.  What
 * identity_authenticate read (id->udid) is only a first, stale look.
 */
MDM_WUR mdm_err identity_claim(db *d, const struct identity *id, const char *udid);

#endif
