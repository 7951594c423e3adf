/*
 * Private to lib/cms.c, lib/scep_msg.c and lib/scep_msg_env.c (no other
 * file includes it): what the general CMS code and the SCEP messages
 * share.  lib/cms.c holds all of it (the signed attributes we interpret,
 * the algorithm policy, refusals, decoding a SignedData, signing and
 * enveloping) except scep_msg_fail, which lib/scep_msg.c holds.
 */
#ifndef MDM_CMS_INT_H
#define MDM_CMS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cms.h"
#include "errors.h"
#include "scep_msg.h"

/* ---- the signed attributes we interpret ---- */

/* The six SCEP ones come first, in the order of their OIDs (2.16.840.1.113733.1.9.2 to .7). */
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

struct cms_attr_info {
	const char *name;
	const char *rule;
	const char *oid; /* SCEP attributes only; the others have NIDs */
	int nid;
};
extern const struct cms_attr_info cms_attrs[ATTR__MAX];
/* The SCEP attribute OIDs, once cms_ready has succeeded. */
extern ASN1_OBJECT *scep_msg_oids[ATTR_SCEP__MAX];

/* Creates the SCEP OIDs once per process; MDM_ERR_NOMEM if it cannot. */
MDM_WUR mdm_err cms_ready(void);
/* Which interpreted attribute obj is; ATTR__MAX for any other. */
enum cms_attr cms_attr_kind(const ASN1_OBJECT *obj);

/* ---- the algorithm policy (one table, cms.c) ---- */

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

/* The row of kind for nid that one of the use bits accepts; NULL if none. */
const struct cms_alg *cms_alg_find(enum cms_alg_kind kind, int nid, unsigned use);
/* The digest for what we build; NULL for one we do not write. */
const EVP_MD *cms_md(enum cms_digest d);

/* How one reading path applies the table to a SignerInfo, and the words of its refusals. */
struct cms_alg_policy {
	unsigned use;           /* CMS_USE_SCEP or CMS_USE_SIGNED */
	const char *rule;       /* cited when a digest or signature algorithm is refused */
	const char *digests;    /* those accepted, as the refusal says */
	const char *signatures; /* likewise */
	int sig_params; /* signature algorithm parameters absent or NULL (not read by SCEP) */
};

/* ---- refusals of untrusted input, and OpenSSL failures ---- */

/*
 * What kind of rule a refusal of untrusted input enforces, in CMS terms:
 * the SCEP code answers each with its failInfo (scep_msg_fail), the other
 * paths only log the rule and return the mdm_err.
 */
enum cms_fault {
	CMS_FAULT_NONE,
	CMS_FAULT_FORM,  /* the structure or a value breaks a rule */
	CMS_FAULT_ALG,   /* an algorithm outside the policy */
	CMS_FAULT_CHECK, /* the signature, the signer or the decryption fails */
	CMS_FAULT__MAX
};

/*
 * Where a refusal of untrusted input is reported; fault is the last one's
 * kind.  quiet: written into err only, for a caller that refuses with it
 * and logs it (scep_msg_decrypt_ex).
 */
struct cms_refusal {
	enum cms_fault fault;
	char *err;
	size_t errlen;
	int quiet;
};

/* mdm_refuse (errors.h) as "cms:" (only err when r->quiet), and records fault; returns rc. */
MDM_WUR mdm_err cms_refuse(struct cms_refusal *r, mdm_err rc, enum cms_fault fault, const char *fmt,
        ...) __attribute__((format(printf, 4, 5)));
/* The reason of the last OpenSSL error, for a log line (never secret). */
const char *cms_ossl_reason(void);
/* Logs an OpenSSL failure in something we build (not the peer's fault). */
MDM_WUR mdm_err cms_ossl_fail(const char *call, mdm_err rc);
/* A memory BIO's contents, copied into a buffer the caller free()s; MDM_ERR_PARSE if empty. */
MDM_WUR mdm_err cms_bio_take(BIO *bio, uint8_t **out, size_t *outlen);

/* The failInfo a CertRep answers each kind of refusal with (scep_msg.c). */
enum scep_fail_info scep_msg_fail(enum cms_fault f);

/* ---- reading a SignedData ---- */

/*
 * One DER SignedData with exactly one SignerInfo and nothing after it:
 * the shape of a SCEP pkiMessage (RFC 8894 3.2) and of every other signed
 * message read here (RFC 5652 5.1).  spec and what name the rule in a
 * refusal; count_fault is the kind of a wrong SignerInfo count.
 * *si borrows from *out.
 */
MDM_WUR mdm_err cms_decode_signed(struct cms_refusal *r, const uint8_t *der, size_t len,
        const char *spec, const char *what, enum cms_fault count_fault, CMS_ContentInfo **out,
        CMS_SignerInfo **si);
/*
 * The SignerInfo's digest and signature algorithms under policy p, before
 * anything is computed with them: *digest and *signature are their rows.
 * lookup_only (the unverified SCEP parse): the digest is only looked up
 * (*digest NULL when the policy refuses it) and nothing but missing
 * algorithms is refused.
 */
MDM_WUR mdm_err cms_signer_algs(struct cms_refusal *r, CMS_SignerInfo *si,
        const struct cms_alg_policy *p, int lookup_only, const struct cms_alg **digest,
        const struct cms_alg **signature);
/*
 * The certificate the SignerInfo's sid names, from the message itself
 * (never from a store): *out is a new reference.  missing is the rule
 * cited when it is absent.
 */
MDM_WUR mdm_err cms_signer_cert(struct cms_refusal *r, CMS_ContentInfo *cms, CMS_SignerInfo *si,
        const char *missing, X509 **out);

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

/* MDM_ERR_INVAL (logged) unless key is signer's. */
MDM_WUR mdm_err cms_check_signer(X509 *signer, EVP_PKEY *key);
/*
 * A SignedData with the content embedded (or detached: not carried),
 * eContentType data, and one SignerInfo: contentType, messageDigest,
 * signingTime and the attributes given; no SMIMECapabilities.  The signer
 * certificate and the extra certificates are carried.
 */
MDM_WUR mdm_err cms_sign(const struct cms_sign_spec *s, uint8_t **out, size_t *outlen);
/* EnvelopedData of in to recipient (RSA key transport), content cipher c. */
MDM_WUR mdm_err cms_envelope(X509 *recipient, enum cms_cipher c, int oaep, const uint8_t *in,
        size_t inlen, uint8_t **out, size_t *outlen);
/* Degenerate certificates-only SignedData: no SignerInfo, no content. */
MDM_WUR mdm_err cms_degenerate(X509 *const *certs, size_t n, const uint8_t *crl_der, size_t crl_len,
        uint8_t **out, size_t *outlen);

#endif
