/*
 * The CA's lifecycle and the state a long-lived program holds: the active
 * CA certificate and key, the staged next CA, and the retired CAs whose
 * certificates keep verifying until they expire.  Certificates live in
 * mdm.certificate and mdm.ca; keys stay where key_uri points (a file or
 * a pkcs11: URI).  Loaded once per process and reloaded only when
 * mdm.ca_generation moves (after `mdmctl ca activate`, say), which its
 * trigger announces with NOTIFY mdm_ca (sql/021).
 *
 * Who owns what of the CA: ca.c which CA certificates and keys exist,
 * which one signs now and what a program holds (mdm.ca, rollover, the
 * per-process state); x509_issue.c what is signed (the fields, extensions
 * and validity of every certificate and CRL, from the key it is handed);
 * scep.c when a device identity is issued, renewed or refused.
 */
#ifndef MDM_CA_H
#define MDM_CA_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "errors.h"

struct x509_st;
struct evp_pkey_st;

struct ca_state {
	char generation[32];            /* mdm.ca_generation when loaded */
	struct x509_st *active;         /* signs certificates and CRLs */
	struct evp_pkey_st *active_key; /* NULL in a state from ca_load_certs */
	long long active_id;            /* mdm.certificate.id of active */
	struct x509_st *next;           /* staged, served by GetNextCACert; NULL if none */
	struct x509_st **verify;        /* active first, then retired: issuers we accept */
	size_t n_verify;
	struct x509_st *ra; /* optional RA (config ra_cert / ra_key) */
	struct evp_pkey_st *ra_key;
	/*
	 * Without an RA: the active key's SCEP responder certificate
	 * (x509_scep_responder), made with the state; NULL with an RA or a CA
	 * key that is not RSA.
	 */
	struct x509_st *responder;
	int certs_only; /* loaded by ca_load_certs: no key, no RA, no responder */
};

/*
 * Loads the CA state with the active CA's private key and the RA (the
 * signer: scep.fcgi, mdmctl); MDM_ERR_NOT_FOUND when no CA was created yet.
 */
MDM_WUR mdm_err ca_load(db *d, const config *cfg, struct ca_state **out);
/*
 * The certificates only (active, next, retired): for the programs that
 * verify identities but never sign with the CA (enroll, checkin and
 * server.fcgi), so that a process parsing hostile input holds no CA key
 * and never opens the token (issue 13).
 */
MDM_WUR mdm_err ca_load_certs(db *d, const config *cfg, struct ca_state **out);
/*
 * Loads *st when NULL (as ca_load, or as ca_load_certs when certs_only),
 * or reloads it, the same way, if mdm.ca changed since.  The load LISTENs
 * on d (mdm_ca); a refresh only looks for a notification, without a
 * round trip, and reads mdm.ca_generation when one came or d reconnected.
 * So refresh with the db the state was loaded with.
 */
MDM_WUR mdm_err ca_refresh(db *d, const config *cfg, struct ca_state **st);
MDM_WUR mdm_err ca_refresh_certs(db *d, const config *cfg, struct ca_state **st);
void ca_state_free(struct ca_state *st);

/*
 * Creates the first CA: a new RSA key of bits written to key_out (or the
 * existing key at key_uri when key_out is NULL), a self-signed
 * certificate for subject, valid days.  Refused if a CA exists.
 */
MDM_WUR mdm_err ca_init(db *d, const char *subject, int days, int bits, const char *key_out,
        const char *key_uri, time_t now);
/*
 * Stages the next CA: renewal (same key, new validity) when key_out and
 * key_uri are NULL; re-key (new key written to key_out, or an existing
 * key at key_uri) otherwise.  Same subject.  Refused if one is staged.
 */
MDM_WUR mdm_err ca_stage_next(
        db *d, int days, int bits, const char *key_out, const char *key_uri, time_t now);
/* The staged CA becomes active; the active one is retired. */
MDM_WUR mdm_err ca_activate(db *d);

/* The certificate in a bytea column of a result (mdm.certificate.der). */
MDM_WUR mdm_err ca_cert_from_res(const db_res *r, int row, int col, struct x509_st **out);

/*
 * Records a certificate in mdm.certificate.  udid, renewal_of and
 * transaction_id may be NULL.  *id is the new row's id.  With a
 * transaction_id (SCEP), its mdm.scep_transaction row is marked issued
 * and its challenge's used_by_certificate set, in the same statement.
 */
MDM_WUR mdm_err ca_cert_insert(db *d, struct x509_st *cert, const char *kind, const char *udid,
        const char *renewal_of, const char *transaction_id, long long *id);

/*
 * A server certificate from the active CA (today: the profile signer):
 * a new RSA key of bits written to key_out (mode 0600), the certificate
 * (x509_issue_server) written to cert_out as PEM (mode 0644); neither
 * file may exist (MDM_ERR_CONFLICT).  Recorded in mdm.certificate with
 * kind 'server'.  On failure no file is left behind.
 */
MDM_WUR mdm_err ca_server_cert(db *d, const config *cfg, const char *subject, int days, int bits,
        const char *key_out, const char *cert_out, time_t now);

/*
 * The client CA file of a web server that verifies client certificates
 * against a file (lighttpd's ssl.verifyclient.ca-file, which has no
 * Apache-style optional_no_ca): PEM of every CA a device identity can
 * chain to, the active CA, the staged next one and each retired one
 * whose not_after is after now, each preceded by a comment line naming
 * it.  *pem is the caller's (free); *n the number of certificates.
 */
MDM_WUR mdm_err ca_client_bundle(db *d, time_t now, char **pem, size_t *len, int *n);
/*
 * Writes ca_client_bundle to path: a temporary file beside it, fsynced,
 * mode 0644, renamed over path, so that a web server reading it at any
 * moment sees the old file or the new one, never half of one.
 */
MDM_WUR mdm_err ca_client_bundle_write(db *d, const char *path, time_t now, int *n);

#endif
