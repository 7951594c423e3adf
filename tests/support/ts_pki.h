/*
 * Certificates, keys and SCEP requests the way the other side makes
 * them, with OpenSSL directly (the client is not ours): PEM files read
 * and written, the throw-away self-signed signer of RFC 8894 section
 * 2.3, a CSR, the parameters of a request.  For the unit and e2e tests
 * and bench/.  The loaders, the writers and ts_signer fail the running
 * check test; the other builders return NULL on failure instead, so
 * that bench/ (no check runner) can use them.
 */
#ifndef MDM_TEST_TS_PKI_H
#define MDM_TEST_TS_PKI_H

#include "scep_msg.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stddef.h>
#include <stdint.h>

X509 *ts_pem_cert(const char *path);
/* Unencrypted, or encrypted with an empty passphrase (the micromdm test CA's). */
EVP_PKEY *ts_pem_key(const char *path);
void ts_pem_write_cert(const char *path, X509 *x);
/* Unencrypted, mode 0600. */
void ts_pem_write_key(const char *path, EVP_PKEY *k);

/*
 * A certificate for key, subject and issuer CN=cn, signed by key with
 * SHA-256, serial serial, valid from secs seconds ago to secs from now.
 */
X509 *ts_self_signed(EVP_PKEY *key, const char *cn, long serial, long secs);
/* The tests' throw-away signer: serial 1, a day either side of now; fails the test on error. */
X509 *ts_signer(EVP_PKEY *key, const char *cn);
/*
 * A CSR for key with subject CN=cn and a challengePassword (none when
 * challenge is NULL), signed with SHA-256 by sign (NULL: key itself).
 */
X509_REQ *ts_csr(EVP_PKEY *key, const char *cn, const char *challenge, EVP_PKEY *sign);
/* Its DER, malloc'd, *len bytes. */
uint8_t *ts_csr_der(X509_REQ *r, size_t *len);
/*
 * A request of type from signer/key over content, enveloped to recipient,
 * SHA-256 and AES-256, no challengePassword attribute, a random nonce.
 */
struct scep_msg_request_params ts_scep_params(enum scep_message_type type, X509 *signer,
        EVP_PKEY *key, X509 *recipient, const char *txid, const uint8_t *content, size_t len);

#endif
