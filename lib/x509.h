/*
 * X.509 certificates (only this module and cms include OpenSSL).
 * The CA itself arrives with the SCEP issue; this is the part every
 * program needs from the start: identifying a certificate.
 */
#ifndef MDM_X509_H
#define MDM_X509_H

#include <stddef.h>

#include "errors.h"

#define X509_FP_HEX_LEN 64

/*
 * SHA-256 of the DER of one PEM certificate (as Apache passes
 * SSL_CLIENT_CERT), as lower-case hex in out[X509_FP_HEX_LEN + 1].
 * Anything but exactly one certificate is MDM_ERR_PARSE.
 */
MDM_WUR mdm_err x509_pem_fingerprint(const char *pem, size_t len, char out[X509_FP_HEX_LEN + 1]);

#endif
