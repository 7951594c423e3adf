/*
 * TEMPORARY (branch i4-enroll): cms_sign_attached until the real one in
 * lib/cms.c is merged from the CMS branch; delete this file then.
 * OpenSSL CMS_sign: SHA-256, CMS_BINARY, signer and chain carried.
 */
#include "cms.h"
#include "log.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include <stdlib.h>
#include <string.h>

mdm_err cms_sign_attached(struct x509_st *signer, struct evp_pkey_st *key,
        struct x509_st *const *chain, size_t nchain, const uint8_t *content, size_t len,
        uint8_t **out, size_t *outlen)
{
	STACK_OF(X509) *certs = NULL;
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	unsigned char *der = NULL;
	int n;
	mdm_err rc = MDM_ERR_CRYPTO;

	*out = NULL;
	*outlen = 0;
	if (signer == NULL || key == NULL || content == NULL || len > INT32_MAX)
		return MDM_ERR_INVAL;
	if ((certs = sk_X509_new_null()) == NULL)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < nchain; i++)
		if (sk_X509_push(certs, chain[i]) <= 0)
			goto out;
	if ((in = BIO_new_mem_buf(content, (int)len)) == NULL)
		goto out;
	cms = CMS_sign(NULL, NULL, certs, in, CMS_BINARY | CMS_PARTIAL);
	if (cms == NULL || CMS_add1_signer(cms, signer, key, EVP_sha256(), CMS_BINARY) == NULL ||
	        CMS_final(cms, in, NULL, CMS_BINARY) != 1) {
		log_error(
		        "cms: CMS_sign failed: %s", ERR_reason_error_string(ERR_peek_last_error()));
		goto out;
	}
	if ((n = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		log_error("cms: i2d_CMS_ContentInfo failed");
		goto out;
	}
	if ((*out = malloc((size_t)n)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	memcpy(*out, der, (size_t)n);
	*outlen = (size_t)n;
	rc = MDM_OK;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	sk_X509_free(certs);
	return rc;
}
