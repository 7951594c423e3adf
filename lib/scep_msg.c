/*
 * SCEP pkiMessages (RFC 8894), the signed layer: a request or CertRep
 * parsed under an allow-list (one SignerInfo, the RSA policy of RFC 8894
 * 3.5.2, the signer certificate in the message, each SCEP attribute once
 * with one value, what each message type must carry), its signature
 * verified or, for addressing a FAILURE only, not; and CertRep and request
 * messages built (attributes, fresh nonces) on cms.c's signing and
 * enveloping.  The failInfo a refusal is answered with is chosen here,
 * from the kind of rule cms_refuse recorded.  The pkcsPKIEnvelope and its
 * content are lib/scep_msg_env.c's.
 */
#include "scep_msg.h"
#include "cms_int.h"
#include "log.h"
#include "mdm_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

static const struct {
	const char *s;
	enum scep_message_type v;
} cms_message_types[] = {
        {"3", SCEP_CERTREP},
        {"17", SCEP_RENEWALREQ},
        {"19", SCEP_PKCSREQ},
        {"20", SCEP_CERTPOLL},
        {"21", SCEP_GETCERT},
        {"22", SCEP_GETCRL},
};

/* RSA only: the CertRep is enveloped to the signer's key (RFC 8894 3.5.2). */
static const struct cms_alg_policy cms_policy_scep = {CMS_USE_SCEP, "RFC 8894 3.5.2",
        "SHA-1, SHA-256 or SHA-512", "RSA with the digest named", 0};

/* X.680 PrintableString: letters, digits, space and '()+,-./:=? */
static int cms_printable_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	        (c != '\0' && strchr(" '()+,-./:=?", c) != NULL);
}

static int cms_printable(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!cms_printable_char(s[i]))
			return 0;
	return 1;
}

/* Strict UTF-8 (no overlong forms, surrogates or NUL), for challengePassword. */
static int cms_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned long cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		        (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* ---- parsing a pkiMessage ---- */

struct cms_parse {
	struct cms_refusal r;
	struct scep_msg *m;
	int seen[ATTR__MAX];
	/* scep_msg_parse_unverified: no signature, no algorithm policy. */
	int unverified;
};

static void cms_msg_init(struct scep_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->message_type = 0;
	m->digest = CMS_DIGEST__MAX;
	m->pki_status = SCEP_FAILURE;
	m->fail_info = SCEP_FAIL_NONE;
}

void scep_msg_free(struct scep_msg *m)
{
	if (m == NULL)
		return;
	X509_free(m->signer);
	if (m->challenge != NULL) {
		OPENSSL_cleanse(m->challenge, strlen(m->challenge));
		free(m->challenge);
	}
	free(m->envelope);
	free(m);
}

/* The one value of a string attribute, of the type the rule asks for. */
static MDM_WUR mdm_err cms_attr_bytes(struct cms_parse *ps, enum cms_attr a, const ASN1_TYPE *t,
        int type, const unsigned char **p, size_t *n)
{
	const ASN1_STRING *s;

	*p = NULL;
	*n = 0;
	if (t == NULL || ASN1_TYPE_get(t) != type)
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM, "%s: %s is not a%s",
		        cms_attrs[a].rule, cms_attrs[a].name,
		        type == V_ASN1_OCTET_STRING ? "n OCTET STRING" : " PrintableString");
	s = t->value.asn1_string;
	*p = ASN1_STRING_get0_data(s);
	*n = (size_t)ASN1_STRING_length(s);
	return MDM_OK;
}

/* A small decimal PrintableString compared against an allow-list (exact text). */
static int cms_decimal_is(const unsigned char *p, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(p, want, n) == 0;
}

static MDM_WUR mdm_err cms_attr_message_type(struct cms_parse *ps, const ASN1_TYPE *t)
{
	const unsigned char *p = NULL;
	size_t n = 0;
	mdm_err rc;

	if ((rc = cms_attr_bytes(ps, ATTR_MESSAGE_TYPE, t, V_ASN1_PRINTABLESTRING, &p, &n)) !=
	        MDM_OK)
		return rc;
	for (size_t i = 0; i < sizeof(cms_message_types) / sizeof(cms_message_types[0]); i++) {
		if (cms_decimal_is(p, n, cms_message_types[i].s)) {
			ps->m->message_type = cms_message_types[i].v;
			return MDM_OK;
		}
	}
	return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
	        "RFC 8894 3.2.1.2: unknown messageType \"%.*s\"", (int)(n > 8 ? 8 : n), p);
}

static MDM_WUR mdm_err cms_attr_pki_status(struct cms_parse *ps, const ASN1_TYPE *t)
{
	static const struct {
		const char *s;
		enum scep_pki_status v;
	} tab[] = {{"0", SCEP_SUCCESS}, {"2", SCEP_FAILURE}, {"3", SCEP_PENDING}};
	const unsigned char *p = NULL;
	size_t n = 0;
	mdm_err rc;

	if ((rc = cms_attr_bytes(ps, ATTR_PKI_STATUS, t, V_ASN1_PRINTABLESTRING, &p, &n)) != MDM_OK)
		return rc;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (cms_decimal_is(p, n, tab[i].s)) {
			ps->m->pki_status = tab[i].v;
			return MDM_OK;
		}
	}
	return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
	        "RFC 8894 3.2.1.3: unknown pkiStatus \"%.*s\"", (int)(n > 8 ? 8 : n), p);
}

static MDM_WUR mdm_err cms_attr_fail_info(struct cms_parse *ps, const ASN1_TYPE *t)
{
	static const char *const tab[] = {"0", "1", "2", "3", "4"};
	const unsigned char *p = NULL;
	size_t n = 0;
	mdm_err rc;

	if ((rc = cms_attr_bytes(ps, ATTR_FAIL_INFO, t, V_ASN1_PRINTABLESTRING, &p, &n)) != MDM_OK)
		return rc;
	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (cms_decimal_is(p, n, tab[i])) {
			ps->m->fail_info = (enum scep_fail_info)i;
			return MDM_OK;
		}
	}
	return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
	        "RFC 8894 3.2.1.4: unknown failInfo \"%.*s\"", (int)(n > 8 ? 8 : n), p);
}

static MDM_WUR mdm_err cms_attr_nonce(struct cms_parse *ps, enum cms_attr a, const ASN1_TYPE *t,
        uint8_t dst[SCEP_NONCE_LEN], int *has, size_t *dstlen)
{
	const unsigned char *p = NULL;
	size_t n = 0;
	mdm_err rc;

	if ((rc = cms_attr_bytes(ps, a, t, V_ASN1_OCTET_STRING, &p, &n)) != MDM_OK)
		return rc;
	if (n < SCEP_NONCE_MIN_LEN || n > SCEP_NONCE_LEN)
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1.5: %s of %zu bytes (%d to %d accepted)", cms_attrs[a].name,
		        n, SCEP_NONCE_MIN_LEN, SCEP_NONCE_LEN);
	memcpy(dst, p, n);
	*has = 1;
	*dstlen = n;
	return MDM_OK;
}

static MDM_WUR mdm_err cms_attr_transaction_id(struct cms_parse *ps, const ASN1_TYPE *t)
{
	const unsigned char *p = NULL;
	size_t n = 0;
	mdm_err rc;

	if ((rc = cms_attr_bytes(ps, ATTR_TRANSACTION_ID, t, V_ASN1_PRINTABLESTRING, &p, &n)) !=
	        MDM_OK)
		return rc;
	if (n == 0 || n > SCEP_MAX_TRANSID)
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1.1: transactionID of %zu bytes (1 to %d allowed)", n,
		        SCEP_MAX_TRANSID);
	/* It keys the transaction in the database and appears in logs. */
	if (!cms_printable(p, n))
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1.1: transactionID has characters outside PrintableString");
	memcpy(ps->m->transaction_id, p, n);
	ps->m->transaction_id[n] = '\0';
	return MDM_OK;
}

/*
 * challengePassword is a DirectoryString; clients use PrintableString
 * (mdmclient) or UTF8String.  PrintableString is taken as any visible
 * ASCII: clients put '!' or '_' there, and refusing would only break
 * enrolment, not protect anything (the value is compared, never parsed).
 */
static MDM_WUR mdm_err cms_attr_challenge(struct cms_parse *ps, const ASN1_TYPE *t)
{
	const ASN1_STRING *s;
	const unsigned char *p = NULL;
	size_t n = 0;
	int type = t != NULL ? ASN1_TYPE_get(t) : V_ASN1_UNDEF;

	if (type != V_ASN1_PRINTABLESTRING && type != V_ASN1_UTF8STRING)
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 2985 5.4.1: challengePassword is neither PrintableString nor "
		        "UTF8String");
	s = t->value.asn1_string;
	p = ASN1_STRING_get0_data(s);
	n = (size_t)ASN1_STRING_length(s);
	if (n == 0 || n > MDM_MAX_CHALLENGE)
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 2985 5.4.1: challengePassword of %zu bytes (1 to %d allowed)", n,
		        MDM_MAX_CHALLENGE);
	for (size_t i = 0; type == V_ASN1_PRINTABLESTRING && i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 2985 5.4.1: challengePassword has control or non-ASCII bytes");
	if (type == V_ASN1_UTF8STRING && !cms_utf8(p, n))
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 2985 5.4.1: challengePassword is not valid UTF-8");
	if ((ps->m->challenge = malloc(n + 1)) == NULL)
		return MDM_ERR_NOMEM;
	memcpy(ps->m->challenge, p, n);
	ps->m->challenge[n] = '\0';
	return MDM_OK;
}

static MDM_WUR mdm_err cms_attr_value(struct cms_parse *ps, enum cms_attr a, const ASN1_TYPE *t)
{
	struct scep_msg *m = ps->m;
	int type = t != NULL ? ASN1_TYPE_get(t) : V_ASN1_UNDEF;

	switch (a) {
	case ATTR_MESSAGE_TYPE:
		return cms_attr_message_type(ps, t);
	case ATTR_PKI_STATUS:
		return cms_attr_pki_status(ps, t);
	case ATTR_FAIL_INFO:
		return cms_attr_fail_info(ps, t);
	case ATTR_SENDER_NONCE:
		return cms_attr_nonce(
		        ps, a, t, m->sender_nonce, &m->has_sender_nonce, &m->sender_nonce_len);
	case ATTR_RECIPIENT_NONCE:
		return cms_attr_nonce(ps, a, t, m->recipient_nonce, &m->has_recipient_nonce,
		        &m->recipient_nonce_len);
	case ATTR_TRANSACTION_ID:
		return cms_attr_transaction_id(ps, t);
	case ATTR_CHALLENGE:
		return cms_attr_challenge(ps, t);
	case ATTR_SIGNING_TIME:
		/* Read for its form only: SCEP clients' clocks are not to be trusted. */
		if (type != V_ASN1_UTCTIME && type != V_ASN1_GENERALIZEDTIME)
			return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 5652 11.3: signingTime is not a Time");
		return MDM_OK;
	case ATTR_CONTENT_TYPE:
	case ATTR_MESSAGE_DIGEST:
		/* CMS_verify has checked their values against the content. */
		return MDM_OK;
	default:
		return MDM_ERR_INTERNAL;
	}
}

/* Each interpreted attribute at most once, with exactly one value. */
static MDM_WUR mdm_err cms_read_attrs(struct cms_parse *ps, CMS_SignerInfo *si)
{
	int n = CMS_signed_get_attr_count(si);
	mdm_err rc;

	for (int i = 0; i < n; i++) {
		X509_ATTRIBUTE *attr = CMS_signed_get_attr(si, i);
		enum cms_attr a;
		int nv;

		if (attr == NULL)
			return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 5652 5.3: CMS_signed_get_attr: unreadable signed attribute");
		/* Others (randomNonce, Microsoft's) are signed but mean nothing to us. */
		if ((a = cms_attr_kind(X509_ATTRIBUTE_get0_object(attr))) == ATTR__MAX)
			continue;
		if (ps->seen[a]++)
			return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "%s: %s attribute appears more than once", cms_attrs[a].rule,
			        cms_attrs[a].name);
		if ((nv = X509_ATTRIBUTE_count(attr)) != 1)
			return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "%s: %s attribute has %d values, not one", cms_attrs[a].rule,
			        cms_attrs[a].name, nv);
		if ((rc = cms_attr_value(ps, a, X509_ATTRIBUTE_get0_type(attr, 0))) != MDM_OK)
			return rc;
	}
	return MDM_OK;
}

/* What each message type must (and must not) carry, once the values are known. */
static MDM_WUR mdm_err cms_check_attrs(struct cms_parse *ps)
{
	struct scep_msg *m = ps->m;

	if (!ps->seen[ATTR_MESSAGE_TYPE])
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1: messageType attribute missing");
	if (!ps->seen[ATTR_TRANSACTION_ID])
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1: transactionID attribute missing");
	if (m->message_type != SCEP_CERTREP) {
		if (!m->has_sender_nonce)
			return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 8894 3.2.1: senderNonce attribute missing");
		if (ps->seen[ATTR_PKI_STATUS] || ps->seen[ATTR_FAIL_INFO])
			return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 8894 3.2.1.3: pkiStatus or failInfo in a request");
		m->pki_status = SCEP_FAILURE;
		m->fail_info = SCEP_FAIL_NONE;
		return MDM_OK;
	}
	if (!ps->seen[ATTR_PKI_STATUS])
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1: CertRep without pkiStatus");
	if (m->pki_status == SCEP_FAILURE && !ps->seen[ATTR_FAIL_INFO])
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1.4: FAILURE without failInfo");
	if (m->pki_status != SCEP_FAILURE && ps->seen[ATTR_FAIL_INFO])
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1.4: failInfo in a CertRep that is not FAILURE");
	return MDM_OK;
}

/* The SCEP policy; unverified, the digest is only recorded (CMS_DIGEST__MAX if refused). */
static MDM_WUR mdm_err cms_check_algs(struct cms_parse *ps, CMS_SignerInfo *si)
{
	const struct cms_alg *digest = NULL, *signature = NULL;
	mdm_err rc =
	        cms_signer_algs(&ps->r, si, &cms_policy_scep, ps->unverified, &digest, &signature);

	ps->m->digest = digest != NULL ? (enum cms_digest)digest->id : CMS_DIGEST__MAX;
	return rc;
}

/* The signer certificate, from the message itself, matched by sid. */
static MDM_WUR mdm_err cms_find_signer(
        struct cms_parse *ps, CMS_ContentInfo *cms, CMS_SignerInfo *si, X509 **out)
{
	X509 *found = NULL;
	EVP_PKEY *pub;
	mdm_err rc;

	*out = NULL;
	if ((rc = cms_signer_cert(&ps->r, cms, si, "RFC 8894 3.2", &found)) != MDM_OK)
		return rc;
	/* NULL when the key does not decode: the certificate itself still parses. */
	if ((pub = X509_get0_pubkey(found)) == NULL) {
		rc = cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_CHECK,
		        "RFC 5280 4.1.2.7: X509_get0_pubkey: signer public key does not decode");
		goto out;
	}
	/* Unverified: only a FAILURE (no envelope) is ever addressed to it. */
	if (!ps->unverified && EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA) {
		rc = cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_ALG,
		        "RFC 8894 3.5.2: signer key is not RSA");
		goto out;
	}
	*out = found;
	found = NULL;
out:
	X509_free(found);
	return rc;
}

/*
 * Signature over the signed attributes and messageDigest over the
 * content, with the signer certificate only (CMS_NOINTERN: no other
 * certificate of the message is tried; no chain: the caller decides what
 * the signer must be).  A failure CertRep has no content: its digest is
 * that of the empty string.
 */
static MDM_WUR mdm_err cms_verify_sig(struct cms_parse *ps, CMS_ContentInfo *cms, X509 *signer)
{
	STACK_OF(X509) *one = sk_X509_new_null();
	ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
	BIO *dcont = NULL;
	mdm_err rc = MDM_OK;

	if (one == NULL || !sk_X509_push(one, signer)) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((pos == NULL || *pos == NULL) && (dcont = BIO_new_mem_buf("", 0)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if (CMS_verify(cms, one, NULL, dcont, NULL,
	            CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY) != 1)
		rc = cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_CHECK,
		        "RFC 5652 5.6: CMS_verify: signature does not verify (%s)",
		        cms_ossl_reason());
out:
	BIO_free(dcont);
	sk_X509_free(one);
	return rc;
}

/* The encapsulated pkcsPKIEnvelope: present where it must be, an EnvelopedData. */
static MDM_WUR mdm_err cms_take_envelope(struct cms_parse *ps, CMS_ContentInfo *cms)
{
	struct scep_msg *m = ps->m;
	ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
	const unsigned char *p, *q;
	CMS_ContentInfo *env = NULL;
	size_t n = 0;
	int want = m->message_type != SCEP_CERTREP || m->pki_status == SCEP_SUCCESS;
	mdm_err rc = MDM_OK;

	if (pos != NULL && *pos != NULL)
		n = (size_t)ASN1_STRING_length(*pos);
	if (n == 0) {
		if (want)
			return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
			        "RFC 8894 3.2.2: pkcsPKIEnvelope missing");
		return MDM_OK;
	}
	if (!want)
		return cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.3.2: CertRep %s carries a pkcsPKIEnvelope",
		        m->pki_status == SCEP_PENDING ? "PENDING" : "FAILURE");
	p = q = ASN1_STRING_get0_data(*pos);
	if ((env = d2i_CMS_ContentInfo(NULL, &q, (long)n)) == NULL ||
	        OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped) {
		rc = cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.2: pkcsPKIEnvelope is not an EnvelopedData");
		goto out;
	}
	if (q != p + n) {
		rc = cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.2: %zu bytes after the pkcsPKIEnvelope", n - (size_t)(q - p));
		goto out;
	}
	if ((m->envelope = malloc(n)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	memcpy(m->envelope, p, n);
	m->envelope_len = n;
out:
	CMS_ContentInfo_free(env);
	return rc;
}

static MDM_WUR mdm_err scep_msg_parse_any(const uint8_t *der, size_t len, struct scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen, int unverified);

mdm_err scep_msg_parse(const uint8_t *der, size_t len, struct scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen)
{
	return scep_msg_parse_any(der, len, out, fail, err, errlen, 0);
}

mdm_err scep_msg_parse_unverified(const uint8_t *der, size_t len, struct scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen)
{
	return scep_msg_parse_any(der, len, out, fail, err, errlen, 1);
}

/* RFC 8894 3.2.1.4: the failInfo a CertRep answers each kind of refusal with. */
static const enum scep_fail_info scep_fails[CMS_FAULT__MAX] = {
        [CMS_FAULT_NONE] = SCEP_FAIL_NONE,
        [CMS_FAULT_FORM] = SCEP_BAD_REQUEST,
        [CMS_FAULT_ALG] = SCEP_BAD_ALG,
        [CMS_FAULT_CHECK] = SCEP_BAD_MESSAGE_CHECK,
};

enum scep_fail_info scep_msg_fail(enum cms_fault f)
{
	return (unsigned)f < CMS_FAULT__MAX ? scep_fails[f] : SCEP_BAD_REQUEST;
}

static MDM_WUR mdm_err scep_msg_parse_in(
        struct cms_parse *ps, const uint8_t *der, size_t len, struct scep_msg **out);

static MDM_WUR mdm_err scep_msg_parse_any(const uint8_t *der, size_t len, struct scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen, int unverified)
{
	struct cms_parse ps;
	mdm_err rc;

	memset(&ps, 0, sizeof(ps));
	ps.r.err = err;
	ps.r.errlen = errlen;
	ps.unverified = unverified;
	if (out != NULL)
		*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	rc = out == NULL || (der == NULL && len > 0) ? MDM_ERR_INVAL
	                                             : scep_msg_parse_in(&ps, der, len, out);
	if (fail != NULL)
		*fail = scep_msg_fail(ps.r.fault);
	return rc;
}

static MDM_WUR mdm_err scep_msg_parse_in(
        struct cms_parse *ps, const uint8_t *der, size_t len, struct scep_msg **out)
{
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	int n;
	mdm_err rc;

	/* Before anything is allocated. */
	if (len > MDM_MAX_BODY_SCEP)
		return cms_refuse(&ps->r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: pkiMessage of %zu bytes exceeds %d", len, MDM_MAX_BODY_SCEP);
	if (len == 0)
		return cms_refuse(
		        &ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM, "RFC 8894 3.2: empty pkiMessage");
	if ((rc = cms_ready()) != MDM_OK)
		return rc;
	if ((ps->m = malloc(sizeof(*ps->m))) == NULL)
		return MDM_ERR_NOMEM;
	cms_msg_init(ps->m);

	if ((rc = cms_decode_signed(&ps->r, der, len, "RFC 8894 3.2", "pkiMessage", CMS_FAULT_CHECK,
	             &cms, &si)) != MDM_OK)
		goto out;
	if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
		rc = cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2: encapsulated content type is not data");
		goto out;
	}
	if ((rc = cms_check_algs(ps, si)) != MDM_OK)
		goto out;
	if ((n = CMS_signed_get_attr_count(si)) <= 0) {
		rc = cms_refuse(&ps->r, MDM_ERR_PARSE, CMS_FAULT_FORM,
		        "RFC 8894 3.2.1: no signed attributes");
		goto out;
	}
	if (n > CMS_MAX_SIGNED_ATTRS) {
		rc = cms_refuse(&ps->r, MDM_ERR_LIMIT, CMS_FAULT_FORM,
		        "limit: %d signed attributes (at most %d)", n, CMS_MAX_SIGNED_ATTRS);
		goto out;
	}
	if ((rc = cms_find_signer(ps, cms, si, &ps->m->signer)) != MDM_OK)
		goto out;
	if (!ps->unverified && (rc = cms_verify_sig(ps, cms, ps->m->signer)) != MDM_OK)
		goto out;
	/* Only now are the attributes worth reading: they are the signer's (if verified). */
	if ((rc = cms_read_attrs(ps, si)) != MDM_OK)
		goto out;
	if ((rc = cms_check_attrs(ps)) != MDM_OK)
		goto out;
	if ((rc = cms_take_envelope(ps, cms)) != MDM_OK)
		goto out;
	*out = ps->m;
	ps->m = NULL;
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	scep_msg_free(ps->m);
	return rc;
}

/* ---- CertRep and requests ---- */

static MDM_WUR mdm_err cms_check_transaction_id(const char *tid)
{
	size_t n = 0;

	if (tid == NULL)
		return MDM_ERR_INVAL;
	n = strlen(tid);
	if (n == 0 || n > SCEP_MAX_TRANSID || !cms_printable((const unsigned char *)tid, n)) {
		log_error("cms: transactionID to send is not 1 to %d PrintableString characters",
		        SCEP_MAX_TRANSID);
		return MDM_ERR_INVAL;
	}
	return MDM_OK;
}

/* A fresh nonce; RAND_bytes is checked (and an all-zero result taken as broken). */
static MDM_WUR mdm_err cms_nonce(uint8_t nonce[SCEP_NONCE_LEN])
{
	unsigned char any = 0;

	if (RAND_bytes(nonce, SCEP_NONCE_LEN) == 1)
		for (int i = 0; i < SCEP_NONCE_LEN; i++)
			any |= nonce[i];
	if (any == 0) {
		log_error("cms: RAND_bytes failed: %s", cms_ossl_reason());
		ERR_clear_error();
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

mdm_err scep_msg_certrep(const struct scep_msg_certrep_params *p, uint8_t **out, size_t *outlen)
{
	static const char *const statuses[] = {
	        [SCEP_SUCCESS] = "0", [SCEP_FAILURE] = "2", [SCEP_PENDING] = "3"};
	static const char *const fails[] = {"0", "1", "2", "3", "4"};
	struct cms_attr_add attrs[6];
	struct cms_sign_spec s;
	uint8_t nonce[SCEP_NONCE_LEN];
	uint8_t *inner = NULL, *env = NULL;
	size_t inner_len = 0, env_len = 0, na = 0, rnlen;
	mdm_err rc;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (p == NULL || out == NULL || outlen == NULL || cms_md(p->digest) == NULL ||
	        p->recipient_nonce == NULL)
		return MDM_ERR_INVAL;
	rnlen = p->recipient_nonce_len != 0 ? p->recipient_nonce_len : SCEP_NONCE_LEN;
	if (rnlen < SCEP_NONCE_MIN_LEN || rnlen > SCEP_NONCE_LEN)
		return MDM_ERR_INVAL;
	if (p->status != SCEP_SUCCESS && p->status != SCEP_FAILURE && p->status != SCEP_PENDING)
		return MDM_ERR_INVAL;
	if (p->status == SCEP_FAILURE &&
	        (p->fail_info < SCEP_BAD_ALG || p->fail_info > SCEP_BAD_CERT_ID))
		return MDM_ERR_INVAL;
	if (p->n_extra_certs > 0 && p->extra_certs == NULL)
		return MDM_ERR_INVAL;
	if ((rc = cms_ready()) != MDM_OK || (rc = cms_check_signer(p->signer, p->key)) != MDM_OK ||
	        (rc = cms_check_transaction_id(p->transaction_id)) != MDM_OK)
		return rc;
	if (p->status == SCEP_SUCCESS) {
		if (p->recipient == NULL || (p->n_certs == 0 && p->crl_der == NULL))
			return MDM_ERR_INVAL;
		if ((rc = cms_degenerate(p->certs, p->n_certs, p->crl_der, p->crl_len, &inner,
		             &inner_len)) != MDM_OK)
			goto out;
		if ((rc = cms_envelope(p->recipient, p->cipher, 0, inner, inner_len, &env,
		             &env_len)) != MDM_OK)
			goto out;
	}
	if ((rc = cms_nonce(nonce)) != MDM_OK)
		goto out;

	attrs[na++] = (struct cms_attr_add){
	        scep_msg_oids[ATTR_MESSAGE_TYPE], V_ASN1_PRINTABLESTRING, "3", 1};
	attrs[na++] = (struct cms_attr_add){
	        scep_msg_oids[ATTR_PKI_STATUS], V_ASN1_PRINTABLESTRING, statuses[p->status], 1};
	if (p->status == SCEP_FAILURE)
		attrs[na++] = (struct cms_attr_add){scep_msg_oids[ATTR_FAIL_INFO],
		        V_ASN1_PRINTABLESTRING, fails[p->fail_info], 1};
	attrs[na++] = (struct cms_attr_add){scep_msg_oids[ATTR_TRANSACTION_ID],
	        V_ASN1_PRINTABLESTRING, p->transaction_id, (int)strlen(p->transaction_id)};
	attrs[na++] = (struct cms_attr_add){
	        scep_msg_oids[ATTR_SENDER_NONCE], V_ASN1_OCTET_STRING, nonce, SCEP_NONCE_LEN};
	attrs[na++] = (struct cms_attr_add){scep_msg_oids[ATTR_RECIPIENT_NONCE],
	        V_ASN1_OCTET_STRING, p->recipient_nonce, (int)rnlen};

	memset(&s, 0, sizeof(s));
	s.signer = p->signer;
	s.key = p->key;
	s.md = cms_md(p->digest);
	s.extra = p->extra_certs;
	s.n_extra = p->n_extra_certs;
	/*
	 * FAILURE and PENDING carry no pkcsPKIEnvelope (RFC 8894 3.3.2), but
	 * an empty embedded content rather than none: that is what micromdm
	 * and smallstep send, and what Apple's and certmonger's verifiers,
	 * which read the content before the status, are known to accept.
	 */
	s.content = env;
	s.content_len = env_len;
	s.attrs = attrs;
	s.n_attrs = na;
	rc = cms_sign(&s, out, outlen);
out:
	free(inner);
	free(env);
	return rc;
}

mdm_err scep_msg_request(const struct scep_msg_request_params *p, uint8_t **out, size_t *outlen)
{
	static const struct {
		enum scep_message_type t;
		const char *s;
	} types[] = {{SCEP_RENEWALREQ, "17"}, {SCEP_PKCSREQ, "19"}, {SCEP_CERTPOLL, "20"},
	        {SCEP_GETCERT, "21"}, {SCEP_GETCRL, "22"}};
	struct cms_attr_add attrs[4];
	struct cms_sign_spec s;
	uint8_t nonce[SCEP_NONCE_LEN];
	uint8_t *env = NULL;
	size_t env_len = 0, na = 0, clen;
	const char *type = NULL;
	mdm_err rc;

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (p == NULL || out == NULL || outlen == NULL || cms_md(p->digest) == NULL ||
	        p->content == NULL || p->content_len == 0)
		return MDM_ERR_INVAL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].t == p->type)
			type = types[i].s;
	if (type == NULL)
		return MDM_ERR_INVAL;
	if ((rc = cms_ready()) != MDM_OK || (rc = cms_check_signer(p->signer, p->key)) != MDM_OK ||
	        (rc = cms_check_transaction_id(p->transaction_id)) != MDM_OK)
		return rc;
	if (p->challenge_attr != NULL) {
		clen = strlen(p->challenge_attr);
		if (clen == 0 || clen > MDM_MAX_CHALLENGE ||
		        !cms_utf8((const unsigned char *)p->challenge_attr, clen))
			return MDM_ERR_INVAL;
	}
	if (p->sender_nonce != NULL)
		memcpy(nonce, p->sender_nonce, SCEP_NONCE_LEN);
	else if ((rc = cms_nonce(nonce)) != MDM_OK)
		return rc;
	if ((rc = cms_envelope(p->recipient, p->cipher, p->rsa_oaep, p->content, p->content_len,
	             &env, &env_len)) != MDM_OK)
		goto out;

	attrs[na++] = (struct cms_attr_add){
	        scep_msg_oids[ATTR_MESSAGE_TYPE], V_ASN1_PRINTABLESTRING, type, (int)strlen(type)};
	attrs[na++] = (struct cms_attr_add){scep_msg_oids[ATTR_TRANSACTION_ID],
	        V_ASN1_PRINTABLESTRING, p->transaction_id, (int)strlen(p->transaction_id)};
	attrs[na++] = (struct cms_attr_add){
	        scep_msg_oids[ATTR_SENDER_NONCE], V_ASN1_OCTET_STRING, nonce, SCEP_NONCE_LEN};
	if (p->challenge_attr != NULL) {
		clen = strlen(p->challenge_attr);
		/* As mdmclient does; UTF8String when PrintableString cannot say it. */
		attrs[na++] = (struct cms_attr_add){OBJ_nid2obj(NID_pkcs9_challengePassword),
		        cms_printable((const unsigned char *)p->challenge_attr, clen)
		                ? V_ASN1_PRINTABLESTRING
		                : V_ASN1_UTF8STRING,
		        p->challenge_attr, (int)clen};
	}
	memset(&s, 0, sizeof(s));
	s.signer = p->signer;
	s.key = p->key;
	s.md = cms_md(p->digest);
	s.content = env;
	s.content_len = env_len;
	s.attrs = attrs;
	s.n_attrs = na;
	rc = cms_sign(&s, out, outlen);
out:
	free(env);
	return rc;
}
