/*
 * CMS for SCEP on OpenSSL: pkiMessage parsing under an allow-list, the
 * pkcsPKIEnvelope decrypted, CertRep and request messages built, and
 * degenerate certificates-only SignedData.  Every refusal of untrusted
 * input names the rule it enforces, is logged once here and copied to the
 * caller's err buffer; the OpenSSL error queue is always left empty.
 */
#include "cms.h"
#include "log.h"
#include "x509.h"
#include "mdm_limits.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* ---- tables ---- */

/*
 * Signed attributes we interpret.  The six SCEP ones come first, in the
 * order of their OIDs (2.16.840.1.113733.1.9.2 to .7).
 */
enum cms_attr {
	ATTR_MESSAGE_TYPE,
	ATTR_PKI_STATUS,
	ATTR_FAIL_INFO,
	ATTR_SENDER_NONCE,
	ATTR_RECIPIENT_NONCE,
	ATTR_TRANSACTION_ID,
	ATTR_CONTENT_TYPE,
	ATTR_MESSAGE_DIGEST,
	ATTR_SIGNING_TIME,
	ATTR_CHALLENGE,
	ATTR__MAX
};
#define ATTR_SCEP__MAX (ATTR_TRANSACTION_ID + 1)

static const struct {
	const char *name;
	const char *rule;
	const char *oid; /* SCEP attributes only; the others have NIDs */
	int nid;
} cms_attrs[ATTR__MAX] = {
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

/*
 * The algorithm policy: every digest, signature, content cipher and key
 * transport algorithm any path reads or writes, once, with the paths that
 * accept it.  The two reading paths differ: a SCEP pkiMessage (RFC 8894
 * 3.5.2) is RSA only, since the CertRep is enveloped to the signer's key;
 * Mdm-Signature and signed messages take what Apple devices sign with.
 */
enum cms_alg_kind { CMS_ALG_DIGEST, CMS_ALG_SIGNATURE, CMS_ALG_CIPHER, CMS_ALG_KEY_TRANSPORT };

#define CMS_USE_SCEP   0x01u /* read in a pkiMessage or its pkcsPKIEnvelope */
#define CMS_USE_SIGNED 0x02u /* read in Mdm-Signature and signed messages */
#define CMS_USE_DES    0x04u /* read in a pkcsPKIEnvelope if the caller allows single DES */
#define CMS_USE_BUILD  0x08u /* used in what we build */
/* A signature algorithm that may also be written as its key's own OID (rsaEncryption). */
#define CMS_ALG_BARE 0x10u

struct cms_alg {
	enum cms_alg_kind kind;
	int nid;          /* a signature's: its key algorithm, with any digest accepted */
	const char *name; /* ours, for logs */
	int id;           /* enum cms_digest or enum cms_cipher; -1 for none */
	unsigned flags;   /* CMS_USE_*, CMS_ALG_BARE */
	const EVP_MD *(*md)(void);
	const EVP_CIPHER *(*cipher)(void);
	int key_type; /* a signature's signer key: EVP_PKEY_RSA or EVP_PKEY_EC */
};

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

/* The row of kind for nid that one of the use bits accepts; NULL if none. */
static const struct cms_alg *cms_alg_find(enum cms_alg_kind kind, int nid, unsigned use)
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

/* The digest for what we build; NULL for one we do not write. */
static const EVP_MD *cms_md(enum cms_digest d)
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

/*
 * The SCEP OIDs are created once per process and never registered in
 * OpenSSL's global name table: OBJ_txt2obj on every message would
 * allocate each time, and OBJ_create could collide with a name another
 * library registers.  They live as long as the (long-lived) process.
 */
static ASN1_OBJECT *cms_scep_oids[ATTR_SCEP__MAX];
static int cms_oids_ok;
static pthread_once_t cms_once = PTHREAD_ONCE_INIT;

static void cms_init_oids(void)
{
	for (int i = 0; i < ATTR_SCEP__MAX; i++)
		if ((cms_scep_oids[i] = OBJ_txt2obj(cms_attrs[i].oid, 1)) == NULL)
			return;
	cms_oids_ok = 1;
}

static mdm_err cms_ready(void)
{
	if (pthread_once(&cms_once, cms_init_oids) != 0 || !cms_oids_ok) {
		log_error("cms: OBJ_txt2obj: cannot create the SCEP attribute OIDs");
		ERR_clear_error();
		return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

/* ---- helpers ---- */

/* The reason of the last OpenSSL error, for a log line (never secret). */
static const char *cms_ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	return r != NULL ? r : "no detail";
}

/* Logs an OpenSSL failure in something we build (not the peer's fault). */
static mdm_err cms_ossl_fail(const char *call, mdm_err rc)
{
	log_error("cms: %s failed: %s", call, cms_ossl_reason());
	return rc;
}

/*
 * What kind of rule a refusal of untrusted input enforces, in CMS terms:
 * the SCEP code answers each with its failInfo (scep_fails), the other
 * paths only log the rule and return the mdm_err.
 */
enum cms_fault {
	CMS_FAULT_NONE,
	CMS_FAULT_FORM,  /* the structure or a value breaks a rule */
	CMS_FAULT_ALG,   /* an algorithm outside the policy */
	CMS_FAULT_CHECK, /* the signature, the signer or the decryption fails */
	CMS_FAULT__MAX
};

/* Where a refusal of untrusted input is reported; fault is the last one's kind. */
struct cms_refusal {
	enum cms_fault fault;
	char *err;
	size_t errlen;
};

static mdm_err cms_refuse(struct cms_refusal *r, mdm_err rc, enum cms_fault fault, const char *fmt,
        ...) __attribute__((format(printf, 4, 5)));

static mdm_err cms_refuse(
        struct cms_refusal *r, mdm_err rc, enum cms_fault fault, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("cms: refused: %s", msg);
	r->fault = fault;
	if (r->err != NULL && r->errlen > 0)
		snprintf(r->err, r->errlen, "%s", msg);
	return rc;
}

/* Copies an OpenSSL-encoded object into a buffer the caller free()s. */
static mdm_err cms_i2d(CMS_ContentInfo *cms, uint8_t **out, size_t *outlen)
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

static mdm_err cms_bio_take(BIO *bio, uint8_t **out, size_t *outlen)
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

/* ---- parsing a pkiMessage ---- */

struct cms_parse {
	struct cms_refusal r;
	struct cms_scep_msg *m;
	int seen[ATTR__MAX];
	/* cms_scep_parse_unverified: no signature, no algorithm policy. */
	int unverified;
};

static void cms_msg_init(struct cms_scep_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->message_type = 0;
	m->digest = CMS_DIGEST__MAX;
	m->pki_status = SCEP_FAILURE;
	m->fail_info = SCEP_FAIL_NONE;
}

void cms_scep_msg_free(struct cms_scep_msg *m)
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

/* Which interpreted attribute obj is; ATTR__MAX for any other. */
static enum cms_attr cms_attr_kind(const ASN1_OBJECT *obj)
{
	int nid = OBJ_obj2nid(obj);

	for (int i = 0; i < ATTR__MAX; i++) {
		if (i < ATTR_SCEP__MAX) {
			if (OBJ_cmp(obj, cms_scep_oids[i]) == 0)
				return (enum cms_attr)i;
		} else if (nid != NID_undef && nid == cms_attrs[i].nid) {
			return (enum cms_attr)i;
		}
	}
	return ATTR__MAX;
}

/* The one value of a string attribute, of the type the rule asks for. */
static mdm_err cms_attr_bytes(struct cms_parse *ps, enum cms_attr a, const ASN1_TYPE *t, int type,
        const unsigned char **p, size_t *n)
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

static mdm_err cms_attr_message_type(struct cms_parse *ps, const ASN1_TYPE *t)
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

static mdm_err cms_attr_pki_status(struct cms_parse *ps, const ASN1_TYPE *t)
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

static mdm_err cms_attr_fail_info(struct cms_parse *ps, const ASN1_TYPE *t)
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

static mdm_err cms_attr_nonce(struct cms_parse *ps, enum cms_attr a, const ASN1_TYPE *t,
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

static mdm_err cms_attr_transaction_id(struct cms_parse *ps, const ASN1_TYPE *t)
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
static mdm_err cms_attr_challenge(struct cms_parse *ps, const ASN1_TYPE *t)
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

static mdm_err cms_attr_value(struct cms_parse *ps, enum cms_attr a, const ASN1_TYPE *t)
{
	struct cms_scep_msg *m = ps->m;
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
static mdm_err cms_read_attrs(struct cms_parse *ps, CMS_SignerInfo *si)
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
static mdm_err cms_check_attrs(struct cms_parse *ps)
{
	struct cms_scep_msg *m = ps->m;

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

/* How one reading path applies the table to a SignerInfo, and the words of its refusals. */
struct cms_alg_policy {
	unsigned use;           /* CMS_USE_SCEP or CMS_USE_SIGNED */
	const char *rule;       /* cited when a digest or signature algorithm is refused */
	const char *digests;    /* those accepted, as the refusal says */
	const char *signatures; /* likewise */
	int sig_params; /* signature algorithm parameters absent or NULL (not read by SCEP) */
};

static const struct cms_alg_policy cms_policy_scep = {CMS_USE_SCEP, "RFC 8894 3.5.2",
        "SHA-1, SHA-256 or SHA-512", "RSA with the digest named", 0};
static const struct cms_alg_policy cms_policy_signed = {CMS_USE_SIGNED, "RFC 5652 5.3",
        "SHA-1, SHA-256, SHA-384 or SHA-512", "RSA PKCS #1 v1.5 or ECDSA with the digest named", 1};

/*
 * The SignerInfo's digest and signature algorithms under policy p, before
 * anything is computed with them: *digest and *signature are their rows.
 * lookup_only (the unverified SCEP parse): the digest is only looked up
 * (*digest NULL when the policy refuses it) and nothing but missing
 * algorithms is refused.
 */
static mdm_err cms_signer_algs(struct cms_refusal *r, CMS_SignerInfo *si,
        const struct cms_alg_policy *p, int lookup_only, const struct cms_alg **digest,
        const struct cms_alg **signature)
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

/* The SCEP policy; unverified, the digest is only recorded (CMS_DIGEST__MAX if refused). */
static mdm_err cms_check_algs(struct cms_parse *ps, CMS_SignerInfo *si)
{
	const struct cms_alg *digest = NULL, *signature = NULL;
	mdm_err rc =
	        cms_signer_algs(&ps->r, si, &cms_policy_scep, ps->unverified, &digest, &signature);

	ps->m->digest = digest != NULL ? (enum cms_digest)digest->id : CMS_DIGEST__MAX;
	return rc;
}

/*
 * The certificate the SignerInfo's sid names, from the message itself
 * (never from a store): *out is a new reference.  missing is the rule
 * cited when it is absent.
 */
static mdm_err cms_signer_cert(struct cms_refusal *r, CMS_ContentInfo *cms, CMS_SignerInfo *si,
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

/* The signer certificate, from the message itself, matched by sid. */
static mdm_err cms_find_signer(
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
static mdm_err cms_verify_sig(struct cms_parse *ps, CMS_ContentInfo *cms, X509 *signer)
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
static mdm_err cms_take_envelope(struct cms_parse *ps, CMS_ContentInfo *cms)
{
	struct cms_scep_msg *m = ps->m;
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

static mdm_err cms_scep_parse_any(const uint8_t *der, size_t len, struct cms_scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen, int unverified);

mdm_err cms_scep_parse(const uint8_t *der, size_t len, struct cms_scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen)
{
	return cms_scep_parse_any(der, len, out, fail, err, errlen, 0);
}

mdm_err cms_scep_parse_unverified(const uint8_t *der, size_t len, struct cms_scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen)
{
	return cms_scep_parse_any(der, len, out, fail, err, errlen, 1);
}

/*
 * One DER SignedData with exactly one SignerInfo and nothing after it:
 * the shape of a SCEP pkiMessage (RFC 8894 3.2) and of every other signed
 * message read here (RFC 5652 5.1).  spec and what name the rule in a
 * refusal; count_fault is the kind of a wrong SignerInfo count.
 * *si borrows from *out.
 */
static mdm_err cms_decode_signed(struct cms_refusal *r, const uint8_t *der, size_t len,
        const char *spec, const char *what, enum cms_fault count_fault, CMS_ContentInfo **out,
        CMS_SignerInfo **si)
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

/* The failInfo a CertRep answers each kind of refusal with (RFC 8894 3.2.1.4). */
static const enum scep_fail_info scep_fails[CMS_FAULT__MAX] = {
        [CMS_FAULT_NONE] = SCEP_FAIL_NONE,
        [CMS_FAULT_FORM] = SCEP_BAD_REQUEST,
        [CMS_FAULT_ALG] = SCEP_BAD_ALG,
        [CMS_FAULT_CHECK] = SCEP_BAD_MESSAGE_CHECK,
};

static mdm_err cms_scep_parse_in(
        struct cms_parse *ps, const uint8_t *der, size_t len, struct cms_scep_msg **out);

static mdm_err cms_scep_parse_any(const uint8_t *der, size_t len, struct cms_scep_msg **out,
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
	                                             : cms_scep_parse_in(&ps, der, len, out);
	if (fail != NULL)
		*fail = scep_fails[ps.r.fault];
	return rc;
}

static mdm_err cms_scep_parse_in(
        struct cms_parse *ps, const uint8_t *der, size_t len, struct cms_scep_msg **out)
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
	cms_scep_msg_free(ps->m);
	return rc;
}

/* ---- decrypting the pkcsPKIEnvelope ---- */

/* The content cipher, from our outline of the EnvelopedData. */
static mdm_err cms_envelope_cipher(
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
static mdm_err cms_our_recipient(struct cms_refusal *r, CMS_ContentInfo *cms, X509 *cert,
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
mdm_err cms_scep_decrypt(const struct cms_scep_msg *m, struct evp_pkey_st *key,
        struct x509_st *cert, uint8_t **out, size_t *outlen, enum cms_cipher *cipher,
        enum scep_fail_info *fail)
{
	return cms_scep_decrypt_ex(m, key, cert, 0, out, outlen, cipher, fail, NULL);
}

mdm_err cms_scep_decrypt_des(const struct cms_scep_msg *m, struct evp_pkey_st *key,
        struct x509_st *cert, uint8_t **out, size_t *outlen, enum cms_cipher *cipher,
        enum scep_fail_info *fail)
{
	return cms_scep_decrypt_ex(m, key, cert, 1, out, outlen, cipher, fail, NULL);
}

static mdm_err cms_scep_decrypt_in(struct cms_refusal *r, const struct cms_scep_msg *m,
        EVP_PKEY *key, X509 *cert, int allow_des, uint8_t **out, size_t *outlen,
        enum cms_cipher *cipher, int *to_responder);

mdm_err cms_scep_decrypt_ex(const struct cms_scep_msg *m, struct evp_pkey_st *key,
        struct x509_st *cert, int allow_des, uint8_t **out, size_t *outlen, enum cms_cipher *cipher,
        enum scep_fail_info *fail, int *to_responder)
{
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0};
	mdm_err rc =
	        cms_scep_decrypt_in(&r, m, key, cert, allow_des, out, outlen, cipher, to_responder);

	if (fail != NULL)
		*fail = scep_fails[r.fault];
	return rc;
}

static mdm_err cms_scep_decrypt_in(struct cms_refusal *r, const struct cms_scep_msg *m,
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
		log_error("cms: cms_scep_decrypt: message has no pkcsPKIEnvelope");
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

static mdm_err cms_name_str(const X509_NAME *name, char **out)
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

mdm_err cms_scep_issuer_and_serial(const uint8_t *der, size_t len, char **issuer, char **serial_hex)
{
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0};
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

mdm_err cms_scep_issuer_and_subject(const uint8_t *der, size_t len, char **issuer, char **subject)
{
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0};
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

/* ---- building ---- */

/* One signed attribute to add: a PrintableString or an OCTET STRING. */
struct cms_attr_add {
	const ASN1_OBJECT *obj;
	int type;
	const void *bytes;
	int len;
};

struct cms_sign_spec {
	X509 *signer;
	EVP_PKEY *key;
	const EVP_MD *md;
	X509 *const *extra;
	size_t n_extra;
	const uint8_t *content; /* embedded unless detached; may be empty (failure CertRep) */
	size_t content_len;
	int detached; /* content digested and signed, not carried */
	const struct cms_attr_add *attrs;
	size_t n_attrs;
};

static mdm_err cms_check_signer(X509 *signer, EVP_PKEY *key)
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

/*
 * A SignedData with the content embedded (or detached: not carried),
 * eContentType data, and one SignerInfo: contentType, messageDigest,
 * signingTime and the attributes given; no SMIMECapabilities.  The signer
 * certificate and the extra certificates are carried.
 */
static mdm_err cms_sign(const struct cms_sign_spec *s, uint8_t **out, size_t *outlen)
{
	const unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	BIO *in = NULL;
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
	in = BIO_new_mem_buf(
	        s->content_len > 0 ? (const void *)s->content : "", (int)s->content_len);
	if (in == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if (!CMS_final(cms, in, NULL, CMS_BINARY)) {
		rc = cms_ossl_fail("CMS_final", MDM_ERR_CRYPTO);
		goto out;
	}
	rc = cms_i2d(cms, out, outlen);
out:
	ERR_clear_error();
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* EnvelopedData of in to recipient (RSA key transport), content cipher c. */
static mdm_err cms_envelope(X509 *recipient, enum cms_cipher c, int oaep, const uint8_t *in,
        size_t inlen, uint8_t **out, size_t *outlen)
{
	const EVP_CIPHER *cipher = cms_evp_cipher(c);
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	BIO *bio = NULL;
	mdm_err rc = MDM_ERR_CRYPTO;

	if (recipient == NULL || cipher == NULL || in == NULL || inlen == 0 || inlen > INT_MAX)
		return MDM_ERR_INVAL;
	if (X509_get0_pubkey(recipient) == NULL ||
	        EVP_PKEY_get_base_id(X509_get0_pubkey(recipient)) != EVP_PKEY_RSA) {
		log_error("cms: recipient key is not RSA: SCEP key transport needs RSA");
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
	if ((bio = BIO_new_mem_buf(in, (int)inlen)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if (!CMS_final(cms, bio, NULL, CMS_BINARY)) {
		rc = cms_ossl_fail("CMS_final", MDM_ERR_CRYPTO);
		goto out;
	}
	rc = cms_i2d(cms, out, outlen);
out:
	ERR_clear_error();
	BIO_free(bio);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* Degenerate certificates-only SignedData: no SignerInfo, no content. */
static mdm_err cms_degenerate(X509 *const *certs, size_t n, const uint8_t *crl_der, size_t crl_len,
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
	struct cms_refusal r = {CMS_FAULT_NONE, NULL, 0};
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

/* ---- CertRep and requests ---- */

static mdm_err cms_check_transaction_id(const char *tid)
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
static mdm_err cms_nonce(uint8_t nonce[SCEP_NONCE_LEN])
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

mdm_err cms_scep_certrep(const struct cms_certrep_params *p, uint8_t **out, size_t *outlen)
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
	        cms_scep_oids[ATTR_MESSAGE_TYPE], V_ASN1_PRINTABLESTRING, "3", 1};
	attrs[na++] = (struct cms_attr_add){
	        cms_scep_oids[ATTR_PKI_STATUS], V_ASN1_PRINTABLESTRING, statuses[p->status], 1};
	if (p->status == SCEP_FAILURE)
		attrs[na++] = (struct cms_attr_add){cms_scep_oids[ATTR_FAIL_INFO],
		        V_ASN1_PRINTABLESTRING, fails[p->fail_info], 1};
	attrs[na++] = (struct cms_attr_add){cms_scep_oids[ATTR_TRANSACTION_ID],
	        V_ASN1_PRINTABLESTRING, p->transaction_id, (int)strlen(p->transaction_id)};
	attrs[na++] = (struct cms_attr_add){
	        cms_scep_oids[ATTR_SENDER_NONCE], V_ASN1_OCTET_STRING, nonce, SCEP_NONCE_LEN};
	attrs[na++] = (struct cms_attr_add){cms_scep_oids[ATTR_RECIPIENT_NONCE],
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

mdm_err cms_scep_request(const struct cms_request_params *p, uint8_t **out, size_t *outlen)
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
	        cms_scep_oids[ATTR_MESSAGE_TYPE], V_ASN1_PRINTABLESTRING, type, (int)strlen(type)};
	attrs[na++] = (struct cms_attr_add){cms_scep_oids[ATTR_TRANSACTION_ID],
	        V_ASN1_PRINTABLESTRING, p->transaction_id, (int)strlen(p->transaction_id)};
	attrs[na++] = (struct cms_attr_add){
	        cms_scep_oids[ATTR_SENDER_NONCE], V_ASN1_OCTET_STRING, nonce, SCEP_NONCE_LEN};
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
static mdm_err cms_sig_algs(struct cms_sig *v, CMS_SignerInfo *si)
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
static mdm_err cms_sig_attrs(struct cms_sig *v, CMS_SignerInfo *si)
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
static mdm_err cms_sig_key(struct cms_sig *v, X509 *cert, EVP_PKEY **pub)
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
static mdm_err cms_sig_check(struct cms_sig *v, CMS_SignerInfo *si, X509 *cert, EVP_PKEY *pub,
        const uint8_t *content, size_t len)
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
static mdm_err cms_verify_signed(const uint8_t *sig, size_t siglen, size_t max,
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
	return cms_envelope(recipient, CMS_CIPHER_AES256, 0, content, len, out, outlen);
}
