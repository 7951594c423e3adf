/* Certificate helpers on OpenSSL. */
#include "x509.h"
#include "log.h"
#include "mdm_limits.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string.h>

mdm_err x509_pem_fingerprint(const char *pem, size_t len, char out[X509_FP_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	BIO *bio = NULL;
	X509 *cert = NULL, *extra = NULL;
	mdm_err rc = MDM_ERR_PARSE;

	out[0] = '\0';
	if (pem == NULL || len == 0 || len > MDM_MAX_HEADER_VALUE)
		return MDM_ERR_PARSE;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		log_warn("x509: PEM_read_bio_X509: not a PEM certificate");
		goto out;
	}
	/* Exactly one certificate: a second one would be ignored silently. */
	if ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		log_warn("x509: more than one certificate where one is expected");
		goto out;
	}
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32) {
		log_error("x509: X509_digest failed");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	for (unsigned i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
	rc = MDM_OK;
out:
	ERR_clear_error();
	X509_free(extra);
	X509_free(cert);
	BIO_free(bio);
	return rc;
}
