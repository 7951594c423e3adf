/*
 * Certificate signing requests (PKCS#10) as SCEP clients send them: strict
 * DER (version 0, or macOS's 2), the CSR's own signature with an
 * allow-list of algorithms, the challengePassword (a secret: wiped, never
 * logged), and comparisons of the CSR's key and subject with a
 * certificate's.  What a CSR may ask of the certificate we issue (its key,
 * its subjectAltNames) is judged in x509_issue.c.
 */
#include "x509.h"
#include "x509_int.h"
#include "log.h"
#include "mdm_limits.h"

#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- CSRs ---- */

mdm_err x509_csr_from_der(const uint8_t *der, size_t len, X509_REQ **out)
{
	ASN1_VALUE *v = NULL;
	X509_REQ *r;
	long version;
	mdm_err rc;

	*out = NULL;
	if ((rc = x509_der_decode(der, len, ASN1_ITEM_rptr(X509_REQ), "CSR", "d2i_X509_REQ", &v)) !=
	        MDM_OK)
		return rc;
	r = (X509_REQ *)v;
	/*
	 * RFC 2986 4.1: version is 0.  macOS's SCEP client sends 2 (seen in a
	 * real PKCSReq); the field has no other meaning, is covered by the
	 * CSR's signature and nothing of it reaches the certificate we issue,
	 * so 2 is tolerated.  Anything else is refused.
	 */
	version = X509_REQ_get_version(r);
	if (version != 0 && version != 2) {
		log_warn("x509: RFC 2986 4.1: CSR version %ld", version);
		X509_REQ_free(r);
		return MDM_ERR_PARSE;
	}
	*out = r;
	return MDM_OK;
}

/*
 * Signature algorithms a CSR may use.  SHA-1 stays: macOS signs its SCEP
 * CSRs with it, and a CSR signature only proves possession of the key,
 * which a collision does not help forge.
 */
static int csr_sigalg_ok(int signid)
{
	int md = NID_undef, pk = NID_undef;

	if (!OBJ_find_sigid_algs(signid, &md, &pk))
		return 0;
	if (md != NID_sha1 && md != NID_sha224 && md != NID_sha256 && md != NID_sha384 &&
	        md != NID_sha512)
		return 0;
	return pk == NID_rsaEncryption || pk == NID_X9_62_id_ecPublicKey;
}

mdm_err x509_csr_verify(X509_REQ *csr)
{
	EVP_PKEY *pub;
	int signid;

	if (csr == NULL)
		return MDM_ERR_INVAL;
	signid = X509_REQ_get_signature_nid(csr);
	if (!csr_sigalg_ok(signid)) {
		log_warn("x509: CSR signature algorithm %s not accepted", OBJ_nid2sn(signid));
		return MDM_ERR_UNSUPPORTED;
	}
	if ((pub = X509_REQ_get0_pubkey(csr)) == NULL) {
		x509_ossl_fail(MDM_LOG_WARN, "X509_REQ_get0_pubkey");
		return MDM_ERR_UNSUPPORTED;
	}
	if (X509_REQ_verify(csr, pub) != 1) {
		x509_ossl_fail(MDM_LOG_WARN, "X509_REQ_verify");
		log_warn("x509: RFC 2986: CSR signature does not verify with its own key");
		return MDM_ERR_AUTH;
	}
	return MDM_OK;
}

mdm_err x509_csr_challenge(X509_REQ *csr, char **out)
{
	X509_ATTRIBUTE *attr;
	ASN1_TYPE *t;
	unsigned char *utf8 = NULL;
	char *s = NULL;
	int idx, len = -1;
	mdm_err rc = MDM_ERR_PARSE;

	*out = NULL;
	if (csr == NULL)
		return MDM_ERR_INVAL;
	if ((idx = X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1)) < 0)
		return MDM_ERR_NOT_FOUND;
	if (X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, idx) >= 0) {
		log_warn("x509: RFC 2986: challengePassword attribute present twice");
		return MDM_ERR_PARSE;
	}
	if ((attr = X509_REQ_get_attr(csr, idx)) == NULL || X509_ATTRIBUTE_count(attr) != 1 ||
	        (t = X509_ATTRIBUTE_get0_type(attr, 0)) == NULL) {
		log_warn("x509: RFC 2985 5.4.1: challengePassword must have exactly one value");
		return MDM_ERR_PARSE;
	}
	/* RFC 2985 5.4.1: a DirectoryString, any of its five forms. */
	switch (t->type) {
	case V_ASN1_PRINTABLESTRING:
	case V_ASN1_UTF8STRING:
	case V_ASN1_T61STRING:
	case V_ASN1_BMPSTRING:
	case V_ASN1_UNIVERSALSTRING:
		break;
	default:
		log_warn("x509: RFC 2985 5.4.1: challengePassword of ASN.1 type %d, not a "
		         "DirectoryString",
		        t->type);
		return MDM_ERR_PARSE;
	}
	/* Four bytes a character at most (UniversalString): bound before converting. */
	if (ASN1_STRING_length(t->value.asn1_string) > 4 * MDM_MAX_CHALLENGE) {
		log_warn("x509: challengePassword over %d characters", MDM_MAX_CHALLENGE);
		return MDM_ERR_LIMIT;
	}
	if ((len = ASN1_STRING_to_UTF8(&utf8, t->value.asn1_string)) < 0) {
		x509_ossl_fail(MDM_LOG_WARN, "ASN1_STRING_to_UTF8");
		goto out;
	}
	if (len > MDM_MAX_CHALLENGE) {
		log_warn("x509: challengePassword of %d bytes over %d", len, MDM_MAX_CHALLENGE);
		rc = MDM_ERR_LIMIT;
		goto out;
	}
	if (memchr(utf8, '\0', (size_t)len) != NULL) {
		log_warn("x509: challengePassword holds a NUL");
		goto out;
	}
	if ((s = malloc((size_t)len + 1)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	memcpy(s, utf8, (size_t)len);
	s[len] = '\0';
	*out = s;
	rc = MDM_OK;
out:
	/* A secret: wiped, never logged. */
	if (utf8 != NULL)
		OPENSSL_clear_free(utf8, (size_t)len);
	return rc;
}

void x509_challenge_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

int x509_csr_key_matches_cert(X509_REQ *csr, const X509 *cert)
{
	EVP_PKEY *a, *b;
	int eq;

	if (csr == NULL || cert == NULL || (a = X509_REQ_get0_pubkey(csr)) == NULL ||
	        (b = X509_get0_pubkey(cert)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	eq = EVP_PKEY_eq(a, b) == 1;
	ERR_clear_error();
	return eq;
}

int x509_csr_subject_matches_cert(X509_REQ *csr, const X509 *cert)
{
	int cmp;

	if (csr == NULL || cert == NULL)
		return 0;
	/* X509_NAME_cmp compares canonical encodings; -2 is an error, not "less". */
	cmp = X509_NAME_cmp(X509_REQ_get_subject_name(csr), X509_get_subject_name(cert));
	ERR_clear_error();
	return cmp == 0;
}

int x509_csr_rsa_bits(X509_REQ *csr)
{
	EVP_PKEY *k;

	if (csr == NULL || (k = X509_REQ_get0_pubkey(csr)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	return EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA ? EVP_PKEY_get_bits(k) : 0;
}

mdm_err x509_pkey_spki_der(EVP_PKEY *k, uint8_t **der, size_t *len)
{
	unsigned char *p = NULL;
	int n;

	*der = NULL;
	*len = 0;
	if ((n = i2d_PUBKEY(k, &p)) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_PUBKEY");
		return MDM_ERR_CRYPTO;
	}
	/* OPENSSL_malloc'd: copied so that the caller frees with free(). */
	if ((*der = malloc((size_t)n)) == NULL) {
		OPENSSL_free(p);
		return MDM_ERR_NOMEM;
	}
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(p);
	return MDM_OK;
}

mdm_err x509_csr_spki_der(X509_REQ *csr, uint8_t **der, size_t *len)
{
	EVP_PKEY *k;

	if (der == NULL || len == NULL)
		return MDM_ERR_INVAL;
	*der = NULL;
	*len = 0;
	if (csr == NULL)
		return MDM_ERR_INVAL;
	if ((k = X509_REQ_get0_pubkey(csr)) == NULL) {
		x509_ossl_fail(MDM_LOG_WARN, "X509_REQ_get0_pubkey");
		return MDM_ERR_PARSE;
	}
	return x509_pkey_spki_der(k, der, len);
}

mdm_err x509_csr_subject(X509_REQ *csr, char *out, size_t cap)
{
	if (out == NULL || cap == 0)
		return MDM_ERR_INVAL;
	out[0] = '\0';
	if (csr == NULL)
		return MDM_ERR_INVAL;
	return x509_name_to_str(X509_REQ_get_subject_name(csr), out, cap, 0);
}

void x509_csr_free(X509_REQ *csr)
{
	X509_REQ_free(csr);
}
