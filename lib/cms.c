/*
 * General CMS on OpenSSL, and what the SCEP messages share with it: the
 * signed attributes we interpret (SCEP's among them, their OIDs created
 * once), the one algorithm policy table with the check of a SignerInfo's
 * algorithms both reading paths use, refusals, decoding a SignedData with
 * one SignerInfo, and signing, enveloping and certificates-only
 * SignedData; then what the MDM side signs and checks (signed profiles,
 * Mdm-Signature, the OTA device attributes) and encrypted profiles.
 * lib/scep_msg.c and lib/scep_msg_env.c hold the SCEP pkiMessage.  Every
 * refusal of untrusted input names the rule it enforces, is logged once
 * and copied to the caller's err buffer; the OpenSSL error queue is
 * always left empty.
 */
#include "cms.h"
#include "cms_int.h"
#include "log.h"
#include "mdm_limits.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

/* ---- the signed attributes we interpret ---- */

const struct cms_attr_info cms_attrs[ATTR__MAX] = {
        [ATTR_MESSAGE_TYPE] = {"messageType", "RFC 8894 3.2.1.2", "2.16.840.1.113733.1.9.2",
                NID_undef},
        [ATTR_PKI_STATUS] = {"pkiStatus", "RFC 8894 3.2.1.3", "2.16.840.1.113733.1.9.3", NID_undef},
        [ATTR_FAIL_INFO] = {"failInfo", "RFC 8894 3.2.1.4", "2.16.840.1.113733.1.9.4", NID_undef},
        [ATTR_SENDER_NONCE] = {"senderNonce", "RFC 8894 3.2.1.5", "2.16.840.1.113733.1.9.5",
                NID_undef},
        [ATTR_RECIPIENT_NONCE] = {"recipientNonce", "RFC 8894 3.2.1.5", "2.16.840.1.113733.1.9.6",
                NID_undef},
        [ATTR_TRANSACTION_ID] = {"transactionID", "RFC 8894 3.2.1.1", "2.16.840.1.113733.1.9.7",
                NID_undef},
        [ATTR_CONTENT_TYPE] = {"contentType", "RFC 5652 11.1", NULL, NID_pkcs9_contentType},
        [ATTR_MESSAGE_DIGEST] = {"messageDigest", "RFC 5652 11.2", NULL, NID_pkcs9_messageDigest},
        [ATTR_SIGNING_TIME] = {"signingTime", "RFC 5652 11.3", NULL, NID_pkcs9_signingTime},
        [ATTR_CHALLENGE] = {"challengePassword", "RFC 2985 5.4.1", NULL,
                NID_pkcs9_challengePassword},
};

/*
 * The SCEP OIDs are created once per process and never registered in
 * OpenSSL's global name table: OBJ_txt2obj on every message would
 * allocate each time, and OBJ_create could collide with a name another
 * library registers.  They live as long as the (long-lived) process.
 */
ASN1_OBJECT *scep_msg_oids[ATTR_SCEP__MAX];
static int cms_oids_ok;
static pthread_once_t cms_once = PTHREAD_ONCE_INIT;

static void cms_init_oids(void)
{
	for (int i = 0; i < ATTR_SCEP__MAX; i++)
		if ((scep_msg_oids[i] = OBJ_txt2obj(cms_attrs[i].oid, 1)) == NULL)
			return;
	cms_oids_ok = 1;
}

mdm_err cms_ready(void)
{
	if (pthread_once(&cms_once, cms_init_oids) != 0 || !cms_oids_ok) {
		log_error("cms: OBJ_txt2obj: cannot create the SCEP attribute OIDs");
		ERR_clear_error();
		return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

enum cms_attr cms_attr_kind(const ASN1_OBJECT *obj)
{
	int nid = OBJ_obj2nid(obj);

	for (int i = 0; i < ATTR__MAX; i++) {
		if (i < ATTR_SCEP__MAX) {
			if (OBJ_cmp(obj, scep_msg_oids[i]) == 0)
				return (enum cms_attr)i;
		} else if (nid != NID_undef && nid == cms_attrs[i].nid) {
			return (enum cms_attr)i;
		}
	}
	return ATTR__MAX;
}

/*
 * The algorithm policy: every digest, signature, content cipher and key
 * transport algorithm any path reads or writes, once, with the paths that
 * accept it.  The two reading paths differ: a SCEP pkiMessage (RFC 8894
 * 3.5.2) is RSA only, since the CertRep is enveloped to the signer's key;
 * Mdm-Signature and signed messages take what Apple devices sign with.
 */
#define BOTH (CMS_USE_SCEP | CMS_USE_SIGNED)
static const struct cms_alg cms_algs[] = {
        /* SHA-1 because Apple devices still sign with it (SCEP: config scep_allow_sha1). */
        {CMS_ALG_DIGEST, NID_sha1, "sha1", CMS_DIGEST_SHA1, BOTH | CMS_USE_BUILD, .md = EVP_sha1},
        {CMS_ALG_DIGEST, NID_sha256, "sha256", CMS_DIGEST_SHA256, BOTH | CMS_USE_BUILD,
                .md = EVP_sha256},
        {CMS_ALG_DIGEST, NID_sha384, "sha384", -1, CMS_USE_SIGNED, .md = EVP_sha384},
        {CMS_ALG_DIGEST, NID_sha512, "sha512", CMS_DIGEST_SHA512, BOTH | CMS_USE_BUILD,
                .md = EVP_sha512},
        /* PKCS #1 v1.5 and ECDSA with the digest named; RSASSA-PSS and the rest refused. */
        {CMS_ALG_SIGNATURE, NID_rsaEncryption, "rsa", -1, BOTH | CMS_ALG_BARE,
                .key_type = EVP_PKEY_RSA},
        {CMS_ALG_SIGNATURE, NID_X9_62_id_ecPublicKey, "ecdsa", -1, CMS_USE_SIGNED,
                .key_type = EVP_PKEY_EC},
        {CMS_ALG_CIPHER, NID_des_ede3_cbc, "des-ede3-cbc", CMS_CIPHER_DES3,
                CMS_USE_SCEP | CMS_USE_BUILD, .cipher = EVP_des_ede3_cbc},
        {CMS_ALG_CIPHER, NID_aes_128_cbc, "aes-128-cbc", CMS_CIPHER_AES128,
                CMS_USE_SCEP | CMS_USE_BUILD, .cipher = EVP_aes_128_cbc},
        {CMS_ALG_CIPHER, NID_aes_256_cbc, "aes-256-cbc", CMS_CIPHER_AES256,
                CMS_USE_SCEP | CMS_USE_BUILD, .cipher = EVP_aes_256_cbc},
        /* Read only (micromdm's scepclient 2.1 sends nothing else); never written. */
        {CMS_ALG_CIPHER, NID_des_cbc, "des-cbc", CMS_CIPHER_DES, CMS_USE_DES, .cipher = NULL},
        {CMS_ALG_KEY_TRANSPORT, NID_rsaEncryption, "rsaEncryption", -1, CMS_USE_SCEP, .md = NULL},
        {CMS_ALG_KEY_TRANSPORT, NID_rsaesOaep, "rsaesOaep", -1, CMS_USE_SCEP, .md = NULL},
};
#undef BOTH

const struct cms_alg *cms_alg_find(enum cms_alg_kind kind, int nid, unsigned use)
{
	for (size_t i = 0; i < sizeof(cms_algs) / sizeof(cms_algs[0]); i++)
		if (cms_algs[i].kind == kind && cms_algs[i].nid == nid && (cms_algs[i].flags & use))
			return &cms_algs[i];
	return NULL;
}

/* The row of kind named id (an enum cms_digest or cms_cipher); NULL if none. */
static const struct cms_alg *cms_alg_by_id(enum cms_alg_kind kind, int id)
{
	for (size_t i = 0; id >= 0 && i < sizeof(cms_algs) / sizeof(cms_algs[0]); i++)
		if (cms_algs[i].kind == kind && cms_algs[i].id == id)
			return &cms_algs[i];
	return NULL;
}

const char *cms_digest_str(enum cms_digest d)
{
	const struct cms_alg *a = cms_alg_by_id(CMS_ALG_DIGEST, (int)d);

	return a != NULL ? a->name : "invalid";
}

const char *cms_cipher_str(enum cms_cipher c)
{
	const struct cms_alg *a = cms_alg_by_id(CMS_ALG_CIPHER, (int)c);

	return a != NULL ? a->name : "invalid";
}

const EVP_MD *cms_md(enum cms_digest d)
{
	const struct cms_alg *a = cms_alg_by_id(CMS_ALG_DIGEST, (int)d);

	return a != NULL && (a->flags & CMS_USE_BUILD) ? a->md() : NULL;
}

/* The content cipher for what we build; NULL for one we do not write. */
static const EVP_CIPHER *cms_evp_cipher(enum cms_cipher c)
{
	const struct cms_alg *a = cms_alg_by_id(CMS_ALG_CIPHER, (int)c);

	return a != NULL && (a->flags & CMS_USE_BUILD) ? a->cipher() : NULL;
}

static const struct cms_alg_policy cms_policy_signed = {CMS_USE_SIGNED, "RFC 5652 5.3",
        "SHA-1, SHA-256, SHA-384 or SHA-512", "RSA PKCS #1 v1.5 or ECDSA with the digest named", 1};

mdm_err cms_signer_algs(struct cms_refusal *r, CMS_SignerInfo *si, const struct cms_alg_policy *p,
        int lookup_only, const struct cms_alg **digest, const struct cms_alg **signature)
{
	X509_ALGOR *dig = NULL, *sig = NULL;
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, dnid, snid, sdig = NID_undef, spk = NID_undef;
	char name[64];

	*digest = NULL;
	*signature = NULL;
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	if (dig == NULL || sig == NULL)
		return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "RFC 5652 5.3: SignerInfo without algorithms");
	X509_ALGOR_get0(&obj, &ptype, &pval, dig);
	dnid = OBJ_obj2nid(obj);
	*digest = cms_alg_find(CMS_ALG_DIGEST, dnid, p->use);
	if (lookup_only)
		return MDM_OK;
	if (*digest == NULL) {
		OBJ_obj2txt(name, sizeof(name), obj, 0);
		return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "%s: digest %s refused (%s only)", p->rule, name, p->digests);
	}
	if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)
		return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "RFC 5754 2: digest parameters must be absent or NULL");
	/* The key's own OID where allowed, or a signature OID naming the digest used. */
	X509_ALGOR_get0(&obj, &ptype, &pval, sig);
	snid = OBJ_obj2nid(obj);
	*signature = cms_alg_find(CMS_ALG_SIGNATURE, snid, p->use);
	if (*signature != NULL && !((*signature)->flags & CMS_ALG_BARE))
		*signature = NULL;
	if (*signature == NULL && OBJ_find_sigid_algs(snid, &sdig, &spk) && sdig == dnid)
		*signature = cms_alg_find(CMS_ALG_SIGNATURE, spk, p->use);
	if (*signature == NULL) {
		OBJ_obj2txt(name, sizeof(name), obj, 0);
		return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "%s: signature algorithm %s refused (%s)", p->rule, name, p->signatures);
	}
	if (p->sig_params && ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)
		return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "RFC 5754 3: signature algorithm parameters must be absent or NULL");
	return MDM_OK;
}

/* ---- helpers ---- */

const char *cms_ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	return r != NULL ? r : "no detail";
}

mdm_err cms_ossl_fail(const char *call, mdm_err rc)
{
	log_error("cms: %s failed: %s", call, cms_ossl_reason());
	return rc;
}

mdm_err cms_refuse(struct cms_refusal *r, mdm_err rc, enum cms_fault fault, const char *fmt, ...)
{
	va_list ap;

	r->fault = fault;
	va_start(ap, fmt);
	if (!r->quiet)
		rc = mdm_vrefuse("cms:", r->err, r->errlen, rc, fmt, ap);
	else if (r->err != NULL && r->errlen > 0)
		vsnprintf(r->err, r->errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* Copies an OpenSSL-encoded object into a buffer the caller free()s. */
static MDM_WUR mdm_err cms_i2d(CMS_ContentInfo *cms, uint8_t **out, size_t *outlen)
{
	unsigned char *p;
	uint8_t *buf;
	int n;

	if ((n = i2d_CMS_ContentInfo(cms, NULL)) <= 0)
		return cms_ossl_fail("i2d_CMS_ContentInfo", MDM_ERR_CRYPTO);
	if ((buf = malloc((size_t)n)) == NULL)
		return MDM_ERR_NOMEM;
	p = buf;
	if (i2d_CMS_ContentInfo(cms, &p) != n) {
		free(buf);
		return cms_ossl_fail("i2d_CMS_ContentInfo", MDM_ERR_CRYPTO);
	}
	*out = buf;
	*outlen = (size_t)n;
	return MDM_OK;
}

/* CMS_final over content (len bytes, possibly none), then the DER into a buffer the caller free()s.
 */
static MDM_WUR mdm_err cms_finish(
        CMS_ContentInfo *cms, const uint8_t *content, size_t len, uint8_t **out, size_t *outlen)
{
	BIO *in;
	mdm_err rc;

	if (len > INT_MAX)
		return MDM_ERR_INVAL;
	if ((in = BIO_new_mem_buf(len > 0 ? (const void *)content : "", (int)len)) == NULL)
		return MDM_ERR_NOMEM;
	if (!CMS_final(cms, in, NULL, CMS_BINARY))
		rc = cms_ossl_fail("CMS_final", MDM_ERR_CRYPTO);
	else
		rc = cms_i2d(cms, out, outlen);
	BIO_free(in);
	return rc;
}

mdm_err cms_bio_take(BIO *bio, uint8_t **out, size_t *outlen)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	uint8_t *buf;

	if (n <= 0 || data == NULL)
		return MDM_ERR_PARSE;
	if ((buf = malloc((size_t)n)) == NULL)
		return MDM_ERR_NOMEM;
	memcpy(buf, data, (size_t)n);
	*out = buf;
	*outlen = (size_t)n;
	return MDM_OK;
}

mdm_err cms_signer_cert(struct cms_refusal *r, CMS_ContentInfo *cms, CMS_SignerInfo *si,
        const char *missing, X509 **out)
{
	STACK_OF(X509) *certs = CMS_get1_certs(cms);
	X509 *found = NULL;
	mdm_err rc = MDM_OK;

	*out = NULL;
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);

		if (CMS_SignerInfo_cert_cmp(si, x) != 0)
			continue;
		if (found != NULL && X509_cmp(found, x) != 0) {
			rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_CHECK,
			        "RFC 5652 5.3: SignerIdentifier matches two different "
			        "certificates");
			goto out;
		}
		found = x;
	}
	if (found == NULL) {
		rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_CHECK,
		        "%s: signer certificate not in the message (%d certificates)", missing,
		        certs != NULL ? sk_X509_num(certs) : 0);
		goto out;
	}
	if (!X509_up_ref(found)) {
		rc = cms_ossl_fail("X509_up_ref", MDM_ERR_INTERNAL);
		goto out;
	}
	*out = found;
out:
	sk_X509_pop_free(certs, X509_free);
	return rc;
}

mdm_err cms_decode_signed(struct cms_refusal *r, const uint8_t *der, size_t len, const char *spec,
        const char *what, enum cms_fault count_fault, CMS_ContentInfo **out, CMS_SignerInfo **si)
{
	const unsigned char *p = der;
	STACK_OF(CMS_SignerInfo) * sis;
	CMS_ContentInfo *cms;
	int n;

	*out = NULL;
	*si = NULL;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL)
		return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 3: d2i_CMS_ContentInfo: not a CMS ContentInfo (%s)",
		        cms_ossl_reason());
	if (p != der + len) {
		CMS_ContentInfo_free(cms);
		return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 3: %zu bytes after the ContentInfo", len - (size_t)(p - der));
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		CMS_ContentInfo_free(cms);
		return cms_refuse(
		        r, MDM_ERR_PARSE, CMS_FAULT_FORM, "%s: %s is not a SignedData", spec, what);
	}
	sis = CMS_get0_SignerInfos(cms);
	if ((n = sk_CMS_SignerInfo_num(sis)) != 1) {
		CMS_ContentInfo_free(cms);
		return cms_refuse(r, MDM_ERR_PARSE, count_fault,
		        "%s: CMS has %d SignerInfos (exactly one allowed)", spec, n < 0 ? 0 : n);
	}
	*si = sk_CMS_SignerInfo_value(sis, 0);
	*out = cms;
	return MDM_OK;
}

/* ---- building ---- */

mdm_err cms_check_signer(X509 *signer, EVP_PKEY *key)
{
	if (signer == NULL || key == NULL)
		return MDM_ERR_INVAL;
	if (X509_check_private_key(signer, key) != 1) {
		log_error("cms: X509_check_private_key: the signing key is not the certificate's");
		ERR_clear_error();
		return MDM_ERR_INVAL;
	}
	return MDM_OK;
}

/* 1 if c is already among the first n of v (CMS_add1_cert refuses duplicates). */
static int cms_cert_among(X509 *c, X509 *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (X509_cmp(c, v[i]) == 0)
			return 1;
	return 0;
}

mdm_err cms_sign(const struct cms_sign_spec *s, uint8_t **out, size_t *outlen)
{
	const unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	mdm_err rc = MDM_ERR_CRYPTO;

	if (s->content_len > INT_MAX)
		return MDM_ERR_INVAL;
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL) {
		rc = cms_ossl_fail("CMS_sign", MDM_ERR_CRYPTO);
		goto out;
	}
	if ((si = CMS_add1_signer(cms, s->signer, s->key, s->md, flags)) == NULL) {
		rc = cms_ossl_fail("CMS_add1_signer", MDM_ERR_CRYPTO);
		goto out;
	}
	for (size_t i = 0; i < s->n_attrs; i++) {
		const struct cms_attr_add *a = &s->attrs[i];

		if (!CMS_signed_add1_attr_by_OBJ(si, a->obj, a->type, a->bytes, a->len)) {
			rc = cms_ossl_fail("CMS_signed_add1_attr_by_OBJ", MDM_ERR_CRYPTO);
			goto out;
		}
	}
	for (size_t i = 0; i < s->n_extra; i++) {
		if (s->extra[i] == NULL) {
			rc = MDM_ERR_INVAL;
			goto out;
		}
		if (X509_cmp(s->extra[i], s->signer) == 0 ||
		        cms_cert_among(s->extra[i], s->extra, i))
			continue;
		if (!CMS_add1_cert(cms, s->extra[i])) {
			rc = cms_ossl_fail("CMS_add1_cert", MDM_ERR_CRYPTO);
			goto out;
		}
	}
	if (s->detached && !CMS_set_detached(cms, 1)) {
		rc = cms_ossl_fail("CMS_set_detached", MDM_ERR_CRYPTO);
		goto out;
	}
	rc = cms_finish(cms, s->content, s->content_len, out, outlen);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return rc;
}

/*
 * EnvelopedData of in to recipient: RSA key transport (KeyTransRecipientInfo)
 * or, with allow_ec, an EC key by ephemeral-static ECDH
 * (KeyAgreeRecipientInfo, RFC 5753 3.1: OpenSSL's default KDF and the AES
 * key wrap of the content cipher's size).
 */
static MDM_WUR mdm_err cms_envelope_to(X509 *recipient, enum cms_cipher c, int oaep, int allow_ec,
        const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	const EVP_CIPHER *cipher = cms_evp_cipher(c);
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	mdm_err rc = MDM_ERR_CRYPTO;
	int type;

	if (recipient == NULL || cipher == NULL || in == NULL || inlen == 0 || inlen > INT_MAX)
		return MDM_ERR_INVAL;
	type = X509_get0_pubkey(recipient) != NULL
	        ? EVP_PKEY_get_base_id(X509_get0_pubkey(recipient))
	        : EVP_PKEY_NONE;
	if (type != EVP_PKEY_RSA && !(allow_ec && type == EVP_PKEY_EC && !oaep)) {
		log_error(allow_ec ? "cms: recipient key is neither RSA nor EC"
		                   : "cms: recipient key is not RSA: SCEP key transport needs RSA");
		return MDM_ERR_INVAL;
	}
	if ((cms = CMS_EnvelopedData_create(cipher)) == NULL) {
		rc = cms_ossl_fail("CMS_EnvelopedData_create", MDM_ERR_CRYPTO);
		goto out;
	}
	ri = CMS_add1_recipient_cert(cms, recipient, oaep ? CMS_KEY_PARAM : 0);
	if (ri == NULL) {
		rc = cms_ossl_fail("CMS_add1_recipient_cert", MDM_ERR_CRYPTO);
		goto out;
	}
	if (oaep &&
	        EVP_PKEY_CTX_set_rsa_padding(
	                CMS_RecipientInfo_get0_pkey_ctx(ri), RSA_PKCS1_OAEP_PADDING) <= 0) {
		rc = cms_ossl_fail("EVP_PKEY_CTX_set_rsa_padding", MDM_ERR_CRYPTO);
		goto out;
	}
	/* Embedded: CMS_EnvelopedData_create leaves the ciphertext out otherwise. */
	if (!CMS_set_detached(cms, 0)) {
		rc = cms_ossl_fail("CMS_set_detached", MDM_ERR_CRYPTO);
		goto out;
	}
	rc = cms_finish(cms, in, inlen, out, outlen);
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return rc;
}

mdm_err cms_envelope(X509 *recipient, enum cms_cipher c, int oaep, const uint8_t *in, size_t inlen,
        uint8_t **out, size_t *outlen)
{
	return cms_envelope_to(recipient, c, oaep, 0, in, inlen, out, outlen);
}

mdm_err cms_degenerate(X509 *const *certs, size_t n, const uint8_t *crl_der, size_t crl_len,
        uint8_t **out, size_t *outlen)
{
	CMS_ContentInfo *cms = NULL;
	X509_CRL *crl = NULL;
	const unsigned char *p = crl_der;
	mdm_err rc = MDM_ERR_CRYPTO;

	if ((n > 0 && certs == NULL) || (crl_der == NULL && crl_len > 0) || crl_len > LONG_MAX)
		return MDM_ERR_INVAL;
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_BINARY | CMS_PARTIAL)) == NULL) {
		rc = cms_ossl_fail("CMS_sign", MDM_ERR_CRYPTO);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (certs[i] == NULL) {
			rc = MDM_ERR_INVAL;
			goto out;
		}
		if (cms_cert_among(certs[i], certs, i))
			continue;
		if (!CMS_add1_cert(cms, certs[i])) {
			rc = cms_ossl_fail("CMS_add1_cert", MDM_ERR_CRYPTO);
			goto out;
		}
	}
	if (crl_der != NULL) {
		if ((crl = d2i_X509_CRL(NULL, &p, (long)crl_len)) == NULL ||
		        p != crl_der + crl_len) {
			log_error("cms: d2i_X509_CRL: the CRL to send does not parse");
			rc = MDM_ERR_INVAL;
			goto out;
		}
		if (!CMS_add1_crl(cms, crl)) {
			rc = cms_ossl_fail("CMS_add1_crl", MDM_ERR_CRYPTO);
			goto out;
		}
	}
	/* RFC 8894 3.4: the encapsulated content is absent. */
	if (!CMS_set_detached(cms, 1)) {
		rc = cms_ossl_fail("CMS_set_detached", MDM_ERR_CRYPTO);
		goto out;
	}
	rc = cms_i2d(cms, out, outlen);
out:
	ERR_clear_error();
	X509_CRL_free(crl);
	CMS_ContentInfo_free(cms);
	return rc;
}

mdm_err cms_certs_only(struct x509_st *const *certs, size_t n, uint8_t **out, size_t *outlen)
{
	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (out == NULL || outlen == NULL || n == 0 || certs == NULL)
		return MDM_ERR_INVAL;
	return cms_degenerate(certs, n, NULL, 0, out, outlen);
}

mdm_err cms_sign_certs_only(struct x509_st *signer, struct evp_pkey_st *key,
        struct x509_st *const *certs, size_t n, uint8_t **out, size_t *outlen)
{
	struct cms_sign_spec s;
	uint8_t *inner = NULL;
	size_t inner_len = 0;
	mdm_err rc;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (out == NULL || outlen == NULL || n == 0 || certs == NULL)
		return MDM_ERR_INVAL;
	if ((rc = cms_check_signer(signer, key)) != MDM_OK)
		return rc;
	if ((rc = cms_degenerate(certs, n, NULL, 0, &inner, &inner_len)) != MDM_OK)
		return rc;
	memset(&s, 0, sizeof(s));
	s.signer = signer;
	s.key = key;
	s.md = EVP_sha256();
	s.content = inner;
	s.content_len = inner_len;
	rc = cms_sign(&s, out, outlen);
	free(inner);
	return rc;
}

mdm_err cms_certs_only_parse(const uint8_t *der, size_t len, struct x509_st ***certs, size_t *n)
{
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0, 0};
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *sk = NULL;
	ASN1_OCTET_STRING **pos;
	X509 **v = NULL;
	const unsigned char *p = der;
	int ns, nc;
	mdm_err rc = MDM_ERR_PARSE;

	if (certs != NULL)
		*certs = NULL;
	if (n != NULL)
		*n = 0;
	if (certs == NULL || n == NULL || (der == NULL && len > 0))
		return MDM_ERR_INVAL;
	if (len > MDM_MAX_BODY_SCEP)
		return cms_refuse(&r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: certificates-only SignedData of %zu bytes exceeds %d", len,
		        MDM_MAX_BODY_SCEP);
	if (len == 0 || (cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL) {
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 3: d2i_CMS_ContentInfo: not a CMS ContentInfo");
		goto out;
	}
	if (p != der + len) {
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 3: %zu bytes after the ContentInfo", len - (size_t)(p - der));
		goto out;
	}
	if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.4: certificates-only message is not a SignedData");
		goto out;
	}
	if ((ns = sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms))) > 0) {
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.4: certificates-only SignedData has %d SignerInfos", ns);
		goto out;
	}
	pos = CMS_get0_content(cms);
	if (pos != NULL && *pos != NULL && ASN1_STRING_length(*pos) > 0) {
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.4: certificates-only SignedData has content");
		goto out;
	}
	sk = CMS_get1_certs(cms);
	if ((nc = sk_X509_num(sk)) > CMS_MAX_CERTS) {
		rc = cms_refuse(&r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: %d certificates (at most %d)", nc, CMS_MAX_CERTS);
		goto out;
	}
	if (nc > 0) {
		if ((v = calloc((size_t)nc, sizeof(*v))) == NULL) {
			rc = MDM_ERR_NOMEM;
			goto out;
		}
		/* The stack's references move to the array. */
		for (int i = 0; i < nc; i++)
			v[i] = sk_X509_value(sk, i);
		sk_X509_free(sk);
		sk = NULL;
	}
	*certs = v;
	*n = (size_t)(nc > 0 ? nc : 0);
	rc = MDM_OK;
out:
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* ---- signed profiles and Mdm-Signature ---- */

mdm_err cms_sign_attached(struct x509_st *signer, struct evp_pkey_st *key,
        struct x509_st *const *chain, size_t nchain, const uint8_t *content, size_t len,
        uint8_t **out, size_t *outlen)
{
	struct cms_sign_spec s;
	mdm_err rc;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (out == NULL || outlen == NULL || (content == NULL && len > 0) ||
	        (chain == NULL && nchain > 0))
		return MDM_ERR_INVAL;
	if ((rc = cms_check_signer(signer, key)) != MDM_OK)
		return rc;
	memset(&s, 0, sizeof(s));
	s.signer = signer;
	s.key = key;
	s.md = EVP_sha256();
	s.extra = chain;
	s.n_extra = nchain;
	s.content = content;
	s.content_len = len;
	return cms_sign(&s, out, outlen);
}

mdm_err cms_sign_detached(struct x509_st *signer, struct evp_pkey_st *key, const uint8_t *content,
        size_t len, uint8_t **out, size_t *outlen)
{
	struct cms_sign_spec s;
	mdm_err rc;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (out == NULL || outlen == NULL || (content == NULL && len > 0))
		return MDM_ERR_INVAL;
	if ((rc = cms_check_signer(signer, key)) != MDM_OK)
		return rc;
	memset(&s, 0, sizeof(s));
	s.signer = signer;
	s.key = key;
	s.md = EVP_sha256();
	s.content = content;
	s.content_len = len;
	s.detached = 1;
	return cms_sign(&s, out, outlen);
}

/* What cms_verify_detached has learnt of the SignerInfo before any crypto runs. */
struct cms_sig {
	struct cms_refusal r;
	const EVP_MD *md;
	int key_type; /* EVP_PKEY_RSA or EVP_PKEY_EC, from the signature algorithm */
	int has_attrs;
	const ASN1_OCTET_STRING *message_digest; /* borrowed from the SignerInfo */
};

/* The Mdm-Signature policy, before anything is computed. */
static MDM_WUR mdm_err cms_sig_algs(struct cms_sig *v, CMS_SignerInfo *si)
{
	const struct cms_alg *digest = NULL, *signature = NULL;
	mdm_err rc = cms_signer_algs(&v->r, si, &cms_policy_signed, 0, &digest, &signature);

	if (rc != MDM_OK)
		return rc;
	v->md = digest->md();
	v->key_type = signature->key_type;
	return MDM_OK;
}

/*
 * Signed attributes, when present (Apple devices send none: the signature
 * is then over the content itself): contentType id-data and messageDigest
 * required, those two and signingTime at most once with one value; other
 * attributes are signed but mean nothing here.
 */
static MDM_WUR mdm_err cms_sig_attrs(struct cms_sig *v, CMS_SignerInfo *si)
{
	int seen[ATTR__MAX] = {0};
	int n = CMS_signed_get_attr_count(si);

	if (n < 0)
		return MDM_OK;
	if (n == 0)
		return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 5.3: signedAttrs present but empty");
	if (n > CMS_MAX_SIGNED_ATTRS)
		return cms_refuse(&v->r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: %d signed attributes (at most %d)", n, CMS_MAX_SIGNED_ATTRS);
	v->has_attrs = 1;
	for (int i = 0; i < n; i++) {
		X509_ATTRIBUTE *attr = CMS_signed_get_attr(si, i);
		const ASN1_TYPE *t;
		enum cms_attr a;
		int nv, type;

		if (attr == NULL)
			return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 5652 5.3: CMS_signed_get_attr: unreadable signed attribute");
		a = cms_attr_kind(X509_ATTRIBUTE_get0_object(attr));
		if (a != ATTR_CONTENT_TYPE && a != ATTR_MESSAGE_DIGEST && a != ATTR_SIGNING_TIME)
			continue;
		if (seen[a]++)
			return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "%s: %s attribute appears more than once", cms_attrs[a].rule,
			        cms_attrs[a].name);
		if ((nv = X509_ATTRIBUTE_count(attr)) != 1)
			return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "%s: %s attribute has %d values, not one", cms_attrs[a].rule,
			        cms_attrs[a].name, nv);
		t = X509_ATTRIBUTE_get0_type(attr, 0);
		type = t != NULL ? ASN1_TYPE_get(t) : V_ASN1_UNDEF;
		if (a == ATTR_CONTENT_TYPE &&
		        (type != V_ASN1_OBJECT || OBJ_obj2nid(t->value.object) != NID_pkcs7_data))
			return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 5652 11.1: contentType attribute is not id-data");
		if (a == ATTR_SIGNING_TIME && type != V_ASN1_UTCTIME &&
		        type != V_ASN1_GENERALIZEDTIME)
			return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 5652 11.3: signingTime is not a Time");
		if (a == ATTR_MESSAGE_DIGEST) {
			if (type != V_ASN1_OCTET_STRING ||
			        ASN1_STRING_length(t->value.octet_string) != EVP_MD_get_size(v->md))
				return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
				        "RFC 5652 11.2: messageDigest is not an OCTET STRING of "
				        "the digest's size");
			v->message_digest = t->value.octet_string;
		}
	}
	if (!seen[ATTR_CONTENT_TYPE] || !seen[ATTR_MESSAGE_DIGEST])
		return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 5.3: signedAttrs without %s",
		        !seen[ATTR_CONTENT_TYPE] ? "contentType" : "messageDigest");
	return MDM_OK;
}

/* The signer's key: decodes, and is of the signature algorithm's kind. */
static MDM_WUR mdm_err cms_sig_key(struct cms_sig *v, X509 *cert, EVP_PKEY **pub)
{
	if ((*pub = X509_get0_pubkey(cert)) == NULL)
		return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5280 4.1.2.7: X509_get0_pubkey: signer public key does not decode");
	if (EVP_PKEY_get_base_id(*pub) != v->key_type)
		return cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "RFC 5652 5.3: signer key is not %s, as the signature algorithm says",
		        v->key_type == EVP_PKEY_RSA ? "RSA" : "EC");
	return MDM_OK;
}

/*
 * The cryptography proper.  With signed attributes: the signature over
 * them, then messageDigest against the content.  Without: the signature
 * over the content itself (RFC 5652 5.4).
 */
static MDM_WUR mdm_err cms_sig_check(struct cms_sig *v, CMS_SignerInfo *si, X509 *cert,
        EVP_PKEY *pub, const uint8_t *content, size_t len)
{
	const uint8_t *c = content != NULL ? content : (const uint8_t *)"";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const ASN1_OCTET_STRING *sig;
	EVP_MD_CTX *ctx = NULL;
	mdm_err rc = MDM_OK;

	if (v->has_attrs) {
		CMS_SignerInfo_set1_signer_cert(si, cert);
		if (CMS_SignerInfo_verify(si) != 1) {
			rc = cms_refuse(&v->r, MDM_ERR_AUTH, CMS_FAULT_CHECK,
			        "RFC 5652 5.4: signature over the signed attributes does not "
			        "verify (%s)",
			        cms_ossl_reason());
			goto out;
		}
		if (EVP_Digest(c, len, md, &mdlen, v->md, NULL) != 1) {
			rc = cms_ossl_fail("EVP_Digest", MDM_ERR_CRYPTO);
			goto out;
		}
		if ((int)mdlen != ASN1_STRING_length(v->message_digest) ||
		        CRYPTO_memcmp(md, ASN1_STRING_get0_data(v->message_digest), mdlen) != 0)
			rc = cms_refuse(&v->r, MDM_ERR_AUTH, CMS_FAULT_CHECK,
			        "RFC 5652 5.4: messageDigest does not match the content");
		goto out;
	}
	sig = CMS_SignerInfo_get0_signature(si);
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, v->md, NULL, pub) != 1) {
		rc = cms_refuse(&v->r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "RFC 5652 5.4: EVP_DigestVerifyInit: signer key unusable (%s)",
		        cms_ossl_reason());
		goto out;
	}
	if (sig == NULL ||
	        EVP_DigestVerify(ctx, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig),
	                c, len) != 1)
		rc = cms_refuse(&v->r, MDM_ERR_AUTH, CMS_FAULT_CHECK,
		        "RFC 5652 5.4: signature does not match the content");
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/*
 * The SignedData allow-list shared by both forms.  Detached (econtent
 * NULL): no encapsulated content, the signature over content/len.
 * Attached (econtent not NULL): encapsulated id-data content required and
 * non-empty, copied to *econtent on success; content/len unused.
 */
static MDM_WUR mdm_err cms_verify_signed(const uint8_t *sig, size_t siglen, size_t max,
        const uint8_t *content, size_t len, uint8_t **econtent, size_t *econtent_len,
        struct x509_st **signer, char *err, size_t errlen)
{
	struct cms_sig v;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	ASN1_OCTET_STRING **pos;
	X509 *cert = NULL;
	EVP_PKEY *pub = NULL;
	mdm_err rc;

	memset(&v, 0, sizeof(v));
	v.r.err = err;
	v.r.errlen = errlen;
	if (signer != NULL)
		*signer = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (econtent != NULL)
		*econtent = NULL;
	if (econtent_len != NULL)
		*econtent_len = 0;
	if (signer == NULL || (sig == NULL && siglen > 0) || (content == NULL && len > 0) ||
	        ((econtent == NULL) != (econtent_len == NULL)))
		return MDM_ERR_INVAL;
	/* Before anything is allocated. */
	if (siglen > max)
		return cms_refuse(&v.r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: signed message of %zu bytes exceeds %zu", siglen, max);
	if (siglen == 0)
		return cms_refuse(
		        &v.r, MDM_ERR_PARSE, CMS_FAULT_FORM, "RFC 5652 3: empty signature");
	if ((rc = cms_ready()) != MDM_OK)
		return rc;

	if ((rc = cms_decode_signed(&v.r, sig, siglen, "RFC 5652 5.1", "signature", CMS_FAULT_FORM,
	             &cms, &si)) != MDM_OK)
		goto out;
	/* Detached: the signed content is the request body, never what the message says. */
	if (econtent == NULL && ((pos = CMS_get0_content(cms)) == NULL || *pos != NULL)) {
		rc = cms_refuse(&v.r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 5.2: encapsulated content present (a detached signature has "
		        "none)");
		goto out;
	}
	if (econtent != NULL) {
		if ((pos = CMS_get0_content(cms)) == NULL || *pos == NULL ||
		        ASN1_STRING_length(*pos) <= 0) {
			rc = cms_refuse(&v.r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 5652 5.2: no encapsulated content (a signed message carries "
			        "it)");
			goto out;
		}
		content = ASN1_STRING_get0_data(*pos);
		len = (size_t)ASN1_STRING_length(*pos);
	}
	if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
		rc = cms_refuse(&v.r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 5.2: encapsulated content type is not id-data");
		goto out;
	}
	if ((rc = cms_sig_algs(&v, si)) != MDM_OK || (rc = cms_sig_attrs(&v, si)) != MDM_OK)
		goto out;
	if ((rc = cms_signer_cert(&v.r, cms, si, "RFC 5652 5.3", &cert)) != MDM_OK ||
	        (rc = cms_sig_key(&v, cert, &pub)) != MDM_OK)
		goto out;
	if ((rc = cms_sig_check(&v, si, cert, pub, content, len)) != MDM_OK)
		goto out;
	if (econtent != NULL) {
		if ((*econtent = malloc(len + 1)) == NULL) {
			rc = MDM_ERR_NOMEM;
			goto out;
		}
		memcpy(*econtent, content, len);
		(*econtent)[len] = '\0';
		*econtent_len = len;
	}
	*signer = cert;
	cert = NULL;
out:
	ERR_clear_error();
	X509_free(cert);
	CMS_ContentInfo_free(cms);
	return rc;
}

mdm_err cms_verify_detached(const uint8_t *sig, size_t siglen, const uint8_t *content, size_t len,
        struct x509_st **signer, char *err, size_t errlen)
{
	return cms_verify_signed(
	        sig, siglen, CMS_MAX_SIGNATURE, content, len, NULL, NULL, signer, err, errlen);
}

mdm_err cms_verify_attached(const uint8_t *der, size_t len, uint8_t **content, size_t *content_len,
        struct x509_st **signer, char *err, size_t errlen)
{
	if (content == NULL || content_len == NULL) {
		if (signer != NULL)
			*signer = NULL;
		return MDM_ERR_INVAL;
	}
	return cms_verify_signed(der, len, CMS_MAX_SIGNED_MESSAGE, NULL, 0, content, content_len,
	        signer, err, errlen);
}

mdm_err cms_encrypt(struct x509_st *recipient, const uint8_t *content, size_t len, uint8_t **out,
        size_t *outlen)
{
	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (out == NULL || outlen == NULL || recipient == NULL || content == NULL || len == 0)
		return MDM_ERR_INVAL;
	if (cms_ready() != MDM_OK)
		return MDM_ERR_CRYPTO;
	/* A device identity is RSA (SCEP) or EC (ACME, P-256/P-384). */
	return cms_envelope_to(recipient, CMS_CIPHER_AES256, 0, 1, content, len, out, outlen);
}
