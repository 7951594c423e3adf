/* Certificates, keys and SCEP requests as a client makes them: see ts_pki.h. */
#include "ts_pki.h"

#include <check.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

X509 *ts_pem_cert(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *x;

	ck_assert_msg(fp != NULL, "%s missing (tests run from the repository root)", path);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	ck_assert_msg(x != NULL, "%s: no PEM certificate", path);
	return x;
}

EVP_PKEY *ts_pem_key(const char *path)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *k;

	ck_assert_msg(fp != NULL, "%s missing", path);
	k = PEM_read_PrivateKey(fp, NULL, NULL, (void *)"");
	fclose(fp);
	ck_assert_msg(k != NULL, "%s: no PEM private key", path);
	return k;
}

void ts_pem_write_cert(const char *path, X509 *x)
{
	FILE *fp = fopen(path, "w");

	ck_assert_msg(fp != NULL, "cannot write %s", path);
	ck_assert_int_eq(PEM_write_X509(fp, x), 1);
	ck_assert_int_eq(fclose(fp), 0);
}

void ts_pem_write_key(const char *path, EVP_PKEY *k)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FILE *fp;

	ck_assert_msg(fd >= 0, "cannot write %s", path);
	ck_assert_ptr_nonnull(fp = fdopen(fd, "w"));
	ck_assert_int_eq(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	ck_assert_int_eq(fclose(fp), 0);
}

/* CN=cn, or NULL. */
static X509_NAME *cn_name(const char *cn)
{
	X509_NAME *name = X509_NAME_new();

	if (name != NULL &&
	        X509_NAME_add_entry_by_txt(
	                name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) != 1) {
		X509_NAME_free(name);
		name = NULL;
	}
	return name;
}

X509 *ts_self_signed(EVP_PKEY *key, const char *cn, long serial, long secs)
{
	X509 *x = X509_new();
	X509_NAME *name = cn_name(cn);
	int ok;

	ok = x != NULL && name != NULL && X509_set_version(x, 2) &&
	        ASN1_INTEGER_set(X509_get_serialNumber(x), serial) &&
	        X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
	        X509_gmtime_adj(X509_getm_notBefore(x), -secs) &&
	        X509_gmtime_adj(X509_getm_notAfter(x), secs) && X509_set_pubkey(x, key) &&
	        X509_sign(x, key, EVP_sha256()) > 0;
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

X509 *ts_signer(EVP_PKEY *key, const char *cn)
{
	X509 *x = ts_self_signed(key, cn, 1, 86400);

	ck_assert_msg(x != NULL, "self-signed CN=%s: OpenSSL failed", cn);
	return x;
}

X509_REQ *ts_csr(EVP_PKEY *key, const char *cn, const char *challenge, EVP_PKEY *sign)
{
	X509_REQ *r = X509_REQ_new();
	X509_NAME *name = cn_name(cn);
	int ok;

	ok = r != NULL && name != NULL && X509_REQ_set_subject_name(r, name) &&
	        X509_REQ_set_pubkey(r, key) &&
	        (challenge == NULL ||
	                X509_REQ_add1_attr_by_NID(r, NID_pkcs9_challengePassword, MBSTRING_ASC,
	                        (const unsigned char *)challenge, -1)) &&
	        X509_REQ_sign(r, sign != NULL ? sign : key, EVP_sha256()) > 0;
	X509_NAME_free(name);
	if (!ok) {
		X509_REQ_free(r);
		r = NULL;
	}
	return r;
}

uint8_t *ts_csr_der(X509_REQ *r, size_t *len)
{
	unsigned char *der = NULL;
	uint8_t *out = NULL;
	int n = r != NULL ? i2d_X509_REQ(r, &der) : -1;

	*len = 0;
	if (n > 0 && (out = malloc((size_t)n)) != NULL) {
		memcpy(out, der, (size_t)n);
		*len = (size_t)n;
	}
	OPENSSL_free(der);
	return out;
}

struct scep_msg_request_params ts_scep_params(enum scep_message_type type, X509 *signer,
        EVP_PKEY *key, X509 *recipient, const char *txid, const uint8_t *content, size_t len)
{
	struct scep_msg_request_params p = {.type = type,
	        .signer = signer,
	        .key = key,
	        .recipient = recipient,
	        .digest = CMS_DIGEST_SHA256,
	        .cipher = CMS_CIPHER_AES256,
	        .transaction_id = txid,
	        .content = content,
	        .content_len = len};

	return p;
}
