/*
 * Private to lib/x509*.c: the helpers the X.509 files share (OpenSSL
 * failure logging, time, names, serials, file reading, DER decoding).
 * Included by nothing else; the public interface is x509.h.
 */
#ifndef MDM_X509_INT_H
#define MDM_X509_INT_H

#include "x509.h"
#include "log.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/x509.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define SECS_PER_DAY 86400

/* Logs an OpenSSL failure with the call's name and the library's reason. */
void x509_ossl_fail(enum log_level level, const char *call);
/* k's DER SubjectPublicKeyInfo into *der (malloc'd: free()) and *len. */
MDM_WUR mdm_err x509_pkey_spki_der(EVP_PKEY *k, uint8_t **der, size_t *len);
/* The value of one hex digit, -1 for any other character. */
int x509_hexval(int c);

/* ---- time ---- */

int x509_asn1_time_to_time_t(const ASN1_TIME *t, time_t *out);
/* Validity of c at now: 0 valid, -1 not yet valid, 1 expired, 2 unreadable. */
int x509_validity_at(const X509 *c, time_t now);

/* ---- strings ---- */

/* Serial as upper-case hex without leading zeros; 0 for a negative or over-long one. */
int x509_serial_to_hex(const ASN1_INTEGER *ai, char *out, size_t cap);
/*
 * A name as RFC 2253 text (printable ASCII, safe to log).  Longer than
 * cap - 1: truncated when truncate, else MDM_ERR_LIMIT.
 */
MDM_WUR mdm_err x509_name_to_str(const X509_NAME *name, char *out, size_t cap, int truncate);
/* The NID of a subject attribute type a CA subject may use, NID_undef for others. */
int x509_name_type_nid(const char *s, size_t len);

/* ---- files ---- */

/*
 * A whole regular file of 1..max bytes, NUL-terminated; freed (wiped) with
 * x509_file_free.  mode, if not NULL, gets the file's st_mode.
 */
MDM_WUR mdm_err x509_file_read(
        const char *path, size_t max, char **out, size_t *outlen, mode_t *mode);
void x509_file_free(char *buf, size_t len);

/* ---- certificates ---- */

/*
 * Exactly one DER object of type it, the checks every decoder of network
 * input shares: 1..X509_MAX_DER bytes (counted before OpenSSL sees them)
 * and no trailing bytes.  what names the object in the log ("CSR"), call
 * the decoder (d2i_X509 is ASN1_item_d2i of X509's item); *out is freed
 * with the type's free (X509_free) or ASN1_item_free.
 */
MDM_WUR mdm_err x509_der_decode(const uint8_t *der, size_t len, const ASN1_ITEM *it,
        const char *what, const char *call, ASN1_VALUE **out);
/*
 * The next PEM block of bio (PEM_read_bio): 1 read, 0 the normal end (no
 * further BEGIN line, once seen says a block came before), -1 an error,
 * logged at level.
 */
int x509_pem_next(BIO *bio, int seen, enum log_level level, char **name, char **header,
        unsigned char **data, long *len);
/* 1 if basicConstraints says cA (RFC 5280 4.2.1.9), else 0. */
int x509_cert_is_ca(const X509 *c);

#endif
