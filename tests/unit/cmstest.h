/*
 * Helpers shared by the CMS test files: test_cms.c (general CMS, and the
 * "cms" suite, whose tcases the others fill), test_scep_msg.c (the SCEP
 * signed layer), test_scep_msg_env.c (envelopes, their content, the real
 * captures) and test_cms_sig.c (Mdm-Signature).  cmstest.c holds them all.
 *
 * Keys and certificates of our own are throw-away files in
 * tests/unit/data/cms.  Hostile messages are built with OpenSSL directly,
 * so that they are not limited to what lib/ can produce.
 */
#ifndef MDM_TEST_CMSTEST_H
#define MDM_TEST_CMSTEST_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cms.h"
#include "errors.h"
#include "scep_msg.h"
#include "ts_pki.h"

#define DATA     "tests/unit/data/cms"
#define ANY_FAIL ((enum scep_fail_info) - 2)

#define OID_MESSAGE_TYPE    "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS      "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO       "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE    "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID  "2.16.840.1.113733.1.9.7"
#define OID_CHALLENGE       "1.2.840.113549.1.9.7"

/* Every digest with every cipher (the round-trip loop tests). */
#define CMSTEST_COMBOS (CMS_DIGEST__MAX * CMS_CIPHER__MAX)

/* ---- the fixture (cmstest_setup loads, cmstest_teardown frees) ---- */

extern const uint8_t nonce16[SCEP_NONCE_LEN];
extern X509 *ca, *client, *other, *ec, *issued;
extern EVP_PKEY *ca_key, *client_key, *other_key, *ec_key;
extern uint8_t *csr; /* csr.der, to ca */
extern size_t csr_len;

void cmstest_setup(void);
void cmstest_teardown(void);

/* ---- helpers ---- */

/* Where needle first occurs in hay; (size_t)-1 if nowhere. */
size_t ct_find(const uint8_t *hay, size_t n, const void *needle, size_t m);

/* ---- SCEP wrappers that assert ---- */

struct scep_msg *ct_parse_ok(const uint8_t *der, size_t len);
/* Refused with want, failInfo wantf (ANY_FAIL: any) and msg in the rule. */
void ct_check_refused(
        const uint8_t *der, size_t len, mdm_err want, enum scep_fail_info wantf, const char *msg);
/* A valid PKCSReq's parameters, client to ca (SHA-256, AES-128, a challenge). */
struct scep_msg_request_params ct_req_params(void);
uint8_t *ct_request(const struct scep_msg_request_params *p, size_t *len);
/* A CertRep of status st from ca to client (SUCCESS: issued and ca enveloped). */
struct scep_msg_certrep_params ct_rep_params(enum scep_pki_status st);
uint8_t *ct_certrep(const struct scep_msg_certrep_params *p, size_t *len);
uint8_t *ct_decrypt_ok(
        const struct scep_msg *m, EVP_PKEY *key, X509 *cert, size_t *len, enum cms_cipher *cipher);
void ct_decrypt_refused(
        const struct scep_msg *m, EVP_PKEY *key, X509 *cert, enum scep_fail_info wantf);
int ct_has_cert(X509 **v, size_t n, X509 *x);
void ct_free_certs(X509 **v, size_t n);
struct scep_msg *ct_unverified_ok(const uint8_t *der, size_t len);
/* Refused by both parsers with the same code, failInfo and rule. */
void ct_both_refused(
        const uint8_t *der, size_t len, mdm_err want, enum scep_fail_info wantf, const char *msg);
/* Verified and unverified parses of one message read the same fields. */
void ct_same_fields(const struct scep_msg *a, const struct scep_msg *b);

/* ---- hostile messages, built with OpenSSL directly ---- */

struct raw_attr {
	const char *oid;
	int type;
	const void *v;
	int len;
	int twice; /* the same attribute twice / a second value */
};

struct raw_opts {
	X509 *signer;
	EVP_PKEY *key;
	const EVP_MD *md;
	int nocerts;       /* leave the signer certificate out */
	int keyid;         /* SignerIdentifier by subjectKeyIdentifier */
	int second_signer; /* a second SignerInfo (other) */
	int no_content;    /* eContent absent */
	const char *econtent_oid;
	const uint8_t *content; /* NULL: an EnvelopedData of the CSR to the CA */
	size_t content_len;
	struct raw_attr attrs[8];
	size_t n_attrs;
	int two_values; /* attrs[0] gets two values in one attribute */
};

/* The attributes of a valid PKCSReq. */
struct raw_opts ct_raw_default(void);
uint8_t *ct_raw_build(const struct raw_opts *o, size_t *len);
void ct_raw_refused(
        const struct raw_opts *o, mdm_err want, enum scep_fail_info wantf, const char *msg);

/* Whether "openssl cms -verify -noverify" (with extra options) accepts der. */
int ct_openssl_verifies(const uint8_t *der, size_t len, const char *extra);

/* Which AlgorithmIdentifier of the (only) SignerInfo cmstest_with_alg replaces. */
enum cmstest_alg { CMSTEST_DIGEST_ALG, CMSTEST_SIGNATURE_ALG };

/* One case of an algorithm policy test (test_cms_sig.c, test_scep_msg.c). */
struct cmstest_alg_case {
	int ec; /* signed by ec.pem rather than client.pem */
	enum cmstest_alg which;
	int nid, ptype; /* the replacement, as cmstest_with_alg takes it */
	int want;       /* the path's verdict: an mdm_err or a SCEP failInfo */
	const char *msg;
};

/*
 * The SignedData der with the SignerInfo's digest or signature algorithm
 * replaced by nid, with parameters of ptype (V_ASN1_UNDEF absent,
 * V_ASN1_NULL, V_ASN1_INTEGER the integer 1); malloc'd, *outlen bytes.
 * Nothing else changes, so the signature over the signed attributes
 * still holds: only the algorithm policy can refuse the result.
 */
uint8_t *cmstest_with_alg(
        const uint8_t *der, size_t len, enum cmstest_alg which, int nid, int ptype, size_t *outlen);

/* ---- the "cms" suite's tcases, filled by each test file ---- */

void scep_msg_tests(TCase *vectors, TCase *roundtrip, TCase *hostile);
void scep_msg_env_tests(TCase *vectors, TCase *roundtrip, TCase *hostile);

#endif
