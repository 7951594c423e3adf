/*
 * SCEP pkiMessages (RFC 8894), the pkcsPKIEnvelope and its content: the
 * content cipher and key transport checked against the algorithm policy
 * before anything is decrypted, the recipient found (our certificate or
 * its SCEP responder's), the envelope opened without telling a client
 * which step failed (the Bleichenbacher defence), and the
 * IssuerAndSerialNumber and IssuerAndSubject of CertPoll, GetCert and
 * GetCRL read.  The ASN.1 outlines are ours: OpenSSL has no getter for an
 * EnvelopedData's content cipher, nor a type for IssuerAndSubject.
 */
#include "scep_msg.h"
#include "cms_int.h"
#include "log.h"
#include "mdm_limits.h"
#include "x509.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

/* ---- the EnvelopedData outline (its content cipher has no OpenSSL getter) ---- */

/* clang-format off */
typedef struct {
	ASN1_OBJECT *type;
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *content;
} SCEP_ECI;

ASN1_SEQUENCE(SCEP_ECI) = {
	ASN1_SIMPLE(SCEP_ECI, type, ASN1_OBJECT),
	ASN1_SIMPLE(SCEP_ECI, alg, X509_ALGOR),
	ASN1_IMP_OPT(SCEP_ECI, content, ASN1_OCTET_STRING, 0),
} static_ASN1_SEQUENCE_END(SCEP_ECI)

typedef struct {
	ASN1_INTEGER *version;
	STACK_OF(ASN1_TYPE) *originator;
	STACK_OF(ASN1_TYPE) *recipients;
	SCEP_ECI *eci;
	STACK_OF(ASN1_TYPE) *unprotected;
} SCEP_ENV;

ASN1_SEQUENCE(SCEP_ENV) = {
	ASN1_SIMPLE(SCEP_ENV, version, ASN1_INTEGER),
	ASN1_IMP_SEQUENCE_OF_OPT(SCEP_ENV, originator, ASN1_ANY, 0),
	ASN1_SET_OF(SCEP_ENV, recipients, ASN1_ANY),
	ASN1_SIMPLE(SCEP_ENV, eci, SCEP_ECI),
	ASN1_IMP_SET_OF_OPT(SCEP_ENV, unprotected, ASN1_ANY, 1),
} static_ASN1_SEQUENCE_END(SCEP_ENV)

typedef struct {
	ASN1_OBJECT *type;
	SCEP_ENV *env;
} SCEP_ENV_CI;

ASN1_SEQUENCE(SCEP_ENV_CI) = {
	ASN1_SIMPLE(SCEP_ENV_CI, type, ASN1_OBJECT),
	ASN1_EXP(SCEP_ENV_CI, env, SCEP_ENV, 0),
} static_ASN1_SEQUENCE_END(SCEP_ENV_CI)

/* RFC 8894 3.3.3 IssuerAndSubject and RFC 5652 10.2.4 IssuerAndSerialNumber. */
typedef struct {
	X509_NAME *issuer;
	X509_NAME *subject;
} SCEP_IAS;

ASN1_SEQUENCE(SCEP_IAS) = {
	ASN1_SIMPLE(SCEP_IAS, issuer, X509_NAME),
	ASN1_SIMPLE(SCEP_IAS, subject, X509_NAME),
} static_ASN1_SEQUENCE_END(SCEP_IAS)

typedef struct {
	X509_NAME *issuer;
	ASN1_INTEGER *serial;
} SCEP_IASN;

ASN1_SEQUENCE(SCEP_IASN) = {
	ASN1_SIMPLE(SCEP_IASN, issuer, X509_NAME),
	ASN1_SIMPLE(SCEP_IASN, serial, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(SCEP_IASN)

/* Decodes one whole DER/BER object of an item; trailing bytes are refused. */
static void *cms_item_d2i(const uint8_t *der, size_t len, const ASN1_ITEM *it, int *trailing);
/* clang-format on */

static void *cms_item_d2i(const uint8_t *der, size_t len, const ASN1_ITEM *it, int *trailing)
{
	const unsigned char *p = der;
	ASN1_VALUE *v;

	*trailing = 0;
	if (len > LONG_MAX)
		return NULL;
	if ((v = ASN1_item_d2i(NULL, &p, (long)len, it)) == NULL)
		return NULL;
	if (p != der + len) {
		*trailing = 1;
		ASN1_item_free(v, it);
		return NULL;
	}
	return v;
}

/* ---- decrypting the pkcsPKIEnvelope ---- */

/* The content cipher, from our outline of the EnvelopedData. */
static MDM_WUR mdm_err cms_envelope_cipher(
        struct cms_refusal *r, const uint8_t *der, size_t len, int allow_des, enum cms_cipher *out)
{
	SCEP_ENV_CI *ci;
	const struct cms_alg *a;
	const ASN1_OBJECT *obj;
	int nid, trailing;
	char name[64];
	mdm_err rc = MDM_OK;

	*out = CMS_CIPHER__MAX;
	ci = cms_item_d2i(der, len, ASN1_ITEM_rptr(SCEP_ENV_CI), &trailing);
	if (ci == NULL || OBJ_obj2nid(ci->type) != NID_pkcs7_enveloped) {
		rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 6.1: pkcsPKIEnvelope is not an EnvelopedData%s",
		        trailing ? " (trailing bytes)" : "");
		goto out;
	}
	if (OBJ_obj2nid(ci->env->eci->type) != NID_pkcs7_data) {
		rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.2: enveloped content type is not data");
		goto out;
	}
	X509_ALGOR_get0(&obj, NULL, NULL, ci->env->eci->alg);
	nid = OBJ_obj2nid(obj);
	if ((a = cms_alg_find(CMS_ALG_CIPHER, nid, CMS_USE_SCEP | (allow_des ? CMS_USE_DES : 0))) !=
	        NULL)
		*out = (enum cms_cipher)a->id;
	if (*out == CMS_CIPHER__MAX) {
		OBJ_obj2txt(name, sizeof(name), obj, 0);
		/* Single DES and RC2 are the usual suspects (sscep, old servers). */
		rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "RFC 8894 3.5.2: content cipher %s refused (3DES, AES-128 or AES-256 "
		        "CBC only)",
		        name);
	}
out:
	ASN1_item_free((ASN1_VALUE *)ci, ASN1_ITEM_rptr(SCEP_ENV_CI));
	return rc;
}

/*
 * Who the first key transport recipient is, for the log: the usual cause
 * is a device still enveloping to a CA certificate we no longer use.
 */
static void cms_recipient_str(STACK_OF(CMS_RecipientInfo) * ris, char *buf, size_t cap)
{
	ASN1_OCTET_STRING *keyid = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = NULL;
	char *hex = NULL, name[96];

	snprintf(buf, cap, "none for key transport");
	for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

		if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS ||
		        !CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &serial))
			continue;
		if (issuer == NULL || serial == NULL) {
			snprintf(buf, cap, "by subjectKeyIdentifier");
			break;
		}
		if (X509_NAME_oneline(issuer, name, sizeof(name)) == NULL)
			snprintf(name, sizeof(name), "?");
		if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) != NULL)
			hex = BN_bn2hex(bn);
		snprintf(buf, cap, "issuer %s serial %s", name, hex != NULL ? hex : "?");
		break;
	}
	OPENSSL_free(hex);
	BN_free(bn);
}

/* Is ri addressed to cert (via_responder 0) or to cert's SCEP responder (1)? */
static int cms_ri_addressed(CMS_RecipientInfo *ri, X509 *cert, int via_responder)
{
	ASN1_OCTET_STRING *keyid = NULL;
	X509_NAME *issuer = NULL;
	ASN1_INTEGER *serial = NULL;

	if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS)
		return 0;
	if (!via_responder)
		return CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0;
	return CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &serial) &&
	        x509_scep_responder_named(cert, issuer, serial);
}

/*
 * Our key transport RecipientInfo: RSA (PKCS #1 v1.5 or OAEP) to cert, or
 * to cert's SCEP responder (x509_scep_responder: the same key under the
 * end-entity certificate GetCACert offers; *via_responder is then 1).
 * One addressed to cert itself is preferred.
 */
static MDM_WUR mdm_err cms_our_recipient(struct cms_refusal *r, CMS_ContentInfo *cms, X509 *cert,
        CMS_RecipientInfo **out, int *via_responder)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	int n = sk_CMS_RecipientInfo_num(ris);
	char who[160];

	*out = NULL;
	*via_responder = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
			X509_ALGOR *alg = NULL;
			const ASN1_OBJECT *obj;
			int nid;

			if (!cms_ri_addressed(ri, cert, pass))
				continue;
			if (!CMS_RecipientInfo_ktri_get0_algs(ri, NULL, NULL, &alg) || alg == NULL)
				return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_FORM,
				        "RFC 5652 6.2.1: KeyTransRecipientInfo without an "
				        "algorithm");
			X509_ALGOR_get0(&obj, NULL, NULL, alg);
			nid = OBJ_obj2nid(obj);
			if (cms_alg_find(CMS_ALG_KEY_TRANSPORT, nid, CMS_USE_SCEP) == NULL)
				return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_ALG,
				        "RFC 8894 3.5.2: key transport %s refused (RSA only)",
				        OBJ_nid2sn(nid));
			*out = ri;
			*via_responder = pass;
			return MDM_OK;
		}
	}
	cms_recipient_str(ris, who, sizeof(who));
	return cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_CHECK,
	        "RFC 8894 3.2.2: pkcsPKIEnvelope is not addressed to our certificate (%d "
	        "RecipientInfos, first: %s)",
	        n < 0 ? 0 : n, who);
}

/*
 * Opens the content key of ri with key, as CMS_decrypt does for a
 * recipient certificate when CMS_DEBUG_DECRYPT is not set: a failure is
 * not reported, the content is then decrypted with a random key (below).
 */
static void cms_open_recipient(CMS_ContentInfo *cms, CMS_RecipientInfo *ri, EVP_PKEY *key)
{
	if (EVP_PKEY_up_ref(key) != 1)
		return;
	CMS_RecipientInfo_set0_pkey(ri, key);
	(void)CMS_RecipientInfo_decrypt(cms, ri);
	CMS_RecipientInfo_set0_pkey(ri, NULL);
	ERR_clear_error();
}

/*
 * CMS_DEBUG_DECRYPT is deliberately not used.  Without it, a key
 * transport that fails to decrypt (bad PKCS #1 padding, wrong OAEP label)
 * is not reported: OpenSSL goes on with a random content key, so the
 * failure shows only as a content decryption failure, exactly like a
 * ciphertext that was tampered with.  A client therefore cannot tell
 * which step failed, which is what Bleichenbacher's and Manger's
 * attacks need.  The price is that a wrong key now and then "decrypts"
 * to garbage; callers must answer content that does not parse (not a
 * CSR) exactly as they answer a decryption failure: badMessageCheck.
 */
static MDM_WUR mdm_err scep_msg_decrypt_in(struct cms_refusal *r, const struct scep_msg *m,
        EVP_PKEY *key, X509 *cert, int allow_des, uint8_t **out, size_t *outlen,
        enum cms_cipher *cipher, int *to_responder);

/* The three entry points: r says where a refusal goes, *fail its failInfo. */
static MDM_WUR mdm_err scep_msg_decrypt_run(struct cms_refusal *r, const struct scep_msg *m,
        EVP_PKEY *key, X509 *cert, int allow_des, uint8_t **out, size_t *outlen,
        enum cms_cipher *cipher, enum scep_fail_info *fail, int *to_responder)
{
	mdm_err rc =
	        scep_msg_decrypt_in(r, m, key, cert, allow_des, out, outlen, cipher, to_responder);

	if (fail != NULL)
		*fail = scep_msg_fail(r->fault);
	return rc;
}

mdm_err scep_msg_decrypt(const struct scep_msg *m, struct evp_pkey_st *key, struct x509_st *cert,
        uint8_t **out, size_t *outlen, enum cms_cipher *cipher, enum scep_fail_info *fail)
{
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0, 0};

	return scep_msg_decrypt_run(&r, m, key, cert, 0, out, outlen, cipher, fail, NULL);
}

mdm_err scep_msg_decrypt_des(const struct scep_msg *m, struct evp_pkey_st *key,
        struct x509_st *cert, uint8_t **out, size_t *outlen, enum cms_cipher *cipher,
        enum scep_fail_info *fail)
{
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0, 0};

	return scep_msg_decrypt_run(&r, m, key, cert, 1, out, outlen, cipher, fail, NULL);
}

mdm_err scep_msg_decrypt_ex(const struct scep_msg *m, struct evp_pkey_st *key, struct x509_st *cert,
        int allow_des, uint8_t **out, size_t *outlen, enum cms_cipher *cipher,
        enum scep_fail_info *fail, int *to_responder, char *err, size_t errlen)
{
	struct cms_refusal r = {CMS_FAULT_NONE, err, errlen, 1};

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	return scep_msg_decrypt_run(
	        &r, m, key, cert, allow_des, out, outlen, cipher, fail, to_responder);
}

static MDM_WUR mdm_err scep_msg_decrypt_in(struct cms_refusal *r, const struct scep_msg *m,
        EVP_PKEY *key, X509 *cert, int allow_des, uint8_t **out, size_t *outlen,
        enum cms_cipher *cipher, int *to_responder)
{
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri = NULL;
	BIO *bio = NULL;
	const unsigned char *p = NULL;
	enum cms_cipher c = CMS_CIPHER__MAX;
	int via_responder = 0;
	mdm_err rc;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (cipher != NULL)
		*cipher = CMS_CIPHER__MAX;
	if (to_responder != NULL)
		*to_responder = 0;
	if (m == NULL || key == NULL || cert == NULL || out == NULL || outlen == NULL)
		return MDM_ERR_INVAL;
	if (m->envelope == NULL || m->envelope_len == 0) {
		log_error("cms: scep_msg_decrypt: message has no pkcsPKIEnvelope");
		return MDM_ERR_INVAL;
	}
	if (m->envelope_len > MDM_MAX_BODY_SCEP)
		return cms_refuse(r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: pkcsPKIEnvelope of %zu bytes exceeds %d", m->envelope_len,
		        MDM_MAX_BODY_SCEP);
	if ((rc = cms_envelope_cipher(r, m->envelope, m->envelope_len, allow_des, &c)) != MDM_OK)
		goto out;
	if (c == CMS_CIPHER_DES) {
		/* Single DES lives in OpenSSL 3's legacy provider (x509 loads it once). */
		if (!x509_legacy_provider()) {
			rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_ALG,
			        "RFC 8894 3.5.2: single DES is not available in this OpenSSL");
			goto out;
		}
	}
	p = m->envelope;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)m->envelope_len)) == NULL ||
	        p != m->envelope + m->envelope_len ||
	        OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
		rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5652 6.1: d2i_CMS_ContentInfo: pkcsPKIEnvelope is not an "
		        "EnvelopedData");
		goto out;
	}
	if ((rc = cms_our_recipient(r, cms, cert, &ri, &via_responder)) != MDM_OK)
		goto out;
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	/* Through the responder: the key is opened first, CMS_decrypt then uses it. */
	if (via_responder)
		cms_open_recipient(cms, ri, key);
	if (CMS_decrypt(cms, via_responder ? NULL : key, via_responder ? NULL : cert, NULL, bio,
	            CMS_BINARY) != 1) {
		rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_CHECK,
		        "RFC 8894 3.2.2: CMS_decrypt: pkcsPKIEnvelope does not decrypt with our "
		        "key");
		goto out;
	}
	if ((rc = cms_bio_take(bio, out, outlen)) != MDM_OK) {
		if (rc == MDM_ERR_PARSE)
			rc = cms_refuse(r, MDM_ERR_PARSE, CMS_FAULT_CHECK,
			        "RFC 8894 3.2.2: pkcsPKIEnvelope decrypts to nothing");
		goto out;
	}
	if (cipher != NULL)
		*cipher = c;
	if (to_responder != NULL)
		*to_responder = via_responder;
out:
	ERR_clear_error();
	BIO_free(bio);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* ---- IssuerAndSerialNumber, IssuerAndSubject ---- */

static MDM_WUR mdm_err cms_name_str(const X509_NAME *name, char **out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	uint8_t *buf = NULL;
	size_t n = 0;
	mdm_err rc;

	if (bio == NULL)
		return MDM_ERR_NOMEM;
	/* Escaped per RFC 2253 (control and non-ASCII bytes too): safe in logs and SQL text. */
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
		rc = cms_ossl_fail("X509_NAME_print_ex", MDM_ERR_PARSE);
		goto out;
	}
	if (BIO_write(bio, "", 1) != 1) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((rc = cms_bio_take(bio, &buf, &n)) != MDM_OK)
		goto out;
	*out = (char *)buf;
out:
	BIO_free(bio);
	return rc;
}

mdm_err scep_msg_issuer_and_serial(const uint8_t *der, size_t len, char **issuer, char **serial_hex)
{
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0, 0};
	SCEP_IASN *v = NULL;
	BIGNUM *bn = NULL;
	char *hex = NULL, *is = NULL, *sh = NULL;
	const char *h;
	int trailing = 0;
	mdm_err rc;

	if (issuer != NULL)
		*issuer = NULL;
	if (serial_hex != NULL)
		*serial_hex = NULL;
	if (issuer == NULL || serial_hex == NULL || (der == NULL && len > 0))
		return MDM_ERR_INVAL;
	if (len > MDM_MAX_BODY_SCEP)
		return cms_refuse(&r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: IssuerAndSerialNumber of %zu bytes exceeds %d", len,
		        MDM_MAX_BODY_SCEP);
	if ((v = cms_item_d2i(der, len, ASN1_ITEM_rptr(SCEP_IASN), &trailing)) == NULL) {
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.3.4: not an IssuerAndSerialNumber%s",
		        trailing ? " (trailing bytes)" : "");
		goto out;
	}
	if (ASN1_STRING_type(v->serial) == V_ASN1_NEG_INTEGER) {
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5280 4.1.2.2: negative serial number");
		goto out;
	}
	if (ASN1_STRING_length(v->serial) > 20) {
		/* badCertId, if any, is the caller's answer (scep.c): no failInfo here. */
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 5280 4.1.2.2: serial number longer than 20 octets");
		goto out;
	}
	if ((bn = ASN1_INTEGER_to_BN(v->serial, NULL)) == NULL || (hex = BN_bn2hex(bn)) == NULL) {
		rc = cms_ossl_fail("BN_bn2hex", MDM_ERR_NOMEM);
		goto out;
	}
	/* Upper-case, no leading zeros: the form x509_cert_info reports. */
	for (h = hex; h[0] == '0' && h[1] != '\0'; h++)
		;
	if ((sh = strdup(h)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((rc = cms_name_str(v->issuer, &is)) != MDM_OK)
		goto out;
	*issuer = is;
	*serial_hex = sh;
	is = sh = NULL;
out:
	ERR_clear_error();
	free(is);
	free(sh);
	OPENSSL_free(hex);
	BN_free(bn);
	ASN1_item_free((ASN1_VALUE *)v, ASN1_ITEM_rptr(SCEP_IASN));
	return rc;
}

mdm_err scep_msg_issuer_and_subject(const uint8_t *der, size_t len, char **issuer, char **subject)
{
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0, 0};
	SCEP_IAS *v = NULL;
	char *is = NULL, *su = NULL;
	int trailing = 0;
	mdm_err rc;

	if (issuer != NULL)
		*issuer = NULL;
	if (subject != NULL)
		*subject = NULL;
	if (issuer == NULL || subject == NULL || (der == NULL && len > 0))
		return MDM_ERR_INVAL;
	if (len > MDM_MAX_BODY_SCEP)
		return cms_refuse(&r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: IssuerAndSubject of %zu bytes exceeds %d", len, MDM_MAX_BODY_SCEP);
	if ((v = cms_item_d2i(der, len, ASN1_ITEM_rptr(SCEP_IAS), &trailing)) == NULL) {
		rc = cms_refuse(&r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.3.3: not an IssuerAndSubject%s",
		        trailing ? " (trailing bytes)" : "");
		goto out;
	}
	if ((rc = cms_name_str(v->issuer, &is)) != MDM_OK ||
	        (rc = cms_name_str(v->subject, &su)) != MDM_OK)
		goto out;
	*issuer = is;
	*subject = su;
	is = su = NULL;
out:
	ERR_clear_error();
	free(is);
	free(su);
	ASN1_item_free((ASN1_VALUE *)v, ASN1_ITEM_rptr(SCEP_IAS));
	return rc;
}
