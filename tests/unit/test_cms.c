/*
 * cms: real SCEP messages (macOS PKCSReq and mdmclient, Windows, cryptlib,
 * NDES, Apple's CMS robustness corpus) parse, verify and decrypt or are
 * refused for the rule they break; our requests and CertReps round-trip
 * for every digest and cipher; hostile variants (flipped bytes, missing
 * signer, MD5, two signers, duplicated or malformed attributes,
 * truncation, trailing bytes, oversize) are refused, quietly and once.
 *
 * Real captures come from the shared vectors (MDM_VECTORS, default
 * ../shared/vectors); they are read in place, never copied into the tree,
 * and their cases are skipped with a message when absent.  Keys and
 * certificates of our own are throw-away files in tests/unit/data/cms.
 * Hostile messages are built here with OpenSSL directly, so that they are
 * not limited to what cms.c can produce.
 */
#include "cms.h"
#include "cmstest.h"
#include "log.h"
#include "mdm_limits.h"
#include "scep_msg.h"
#include "suites.h"
#include "vectors.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#define DATA     "tests/unit/data/cms"
#define ANY_FAIL ((enum scep_fail_info) - 2)

#define OID_MESSAGE_TYPE    "2.16.840.1.113733.1.9.2"
#define OID_PKI_STATUS      "2.16.840.1.113733.1.9.3"
#define OID_FAIL_INFO       "2.16.840.1.113733.1.9.4"
#define OID_SENDER_NONCE    "2.16.840.1.113733.1.9.5"
#define OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define OID_TRANSACTION_ID  "2.16.840.1.113733.1.9.7"
#define OID_CHALLENGE       "1.2.840.113549.1.9.7"

static const uint8_t nonce16[SCEP_NONCE_LEN] = {
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ---- files ---- */

static uint8_t *slurp(const char *path, size_t *lenp)
{
	FILE *fp;
	uint8_t *buf;
	size_t cap = 1 << 20;

	*lenp = 0;
	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	*lenp = fread(buf, 1, cap, fp);
	fclose(fp);
	ck_assert_uint_lt(*lenp, cap);
	return buf;
}

static X509 *pem_cert(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *x;

	ck_assert_msg(fp != NULL, "%s missing (run from the repository root)", path);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	ck_assert_ptr_nonnull(x);
	return x;
}

/* Unencrypted, or (the micromdm test CA) encrypted with an empty passphrase. */
static EVP_PKEY *pem_key(const char *path)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *k;

	ck_assert_msg(fp != NULL, "%s missing", path);
	k = PEM_read_PrivateKey(fp, NULL, NULL, (void *)"");
	fclose(fp);
	ck_assert_ptr_nonnull(k);
	return k;
}

/* ---- fixture ---- */

static X509 *ca, *client, *other, *ec, *issued;
static EVP_PKEY *ca_key, *client_key, *other_key, *ec_key;
static uint8_t *csr;
static size_t csr_len;

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ca = pem_cert(DATA "/ca.pem");
	client = pem_cert(DATA "/client.pem");
	other = pem_cert(DATA "/other.pem");
	ec = pem_cert(DATA "/ec.pem");
	issued = pem_cert(DATA "/issued.pem");
	ca_key = pem_key(DATA "/ca.key");
	client_key = pem_key(DATA "/client.key");
	other_key = pem_key(DATA "/other.key");
	ec_key = pem_key(DATA "/ec.key");
	csr = slurp(DATA "/csr.der", &csr_len);
	ck_assert_ptr_nonnull(csr);
}

static void teardown(void)
{
	X509_free(ca);
	X509_free(client);
	X509_free(other);
	X509_free(ec);
	X509_free(issued);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(client_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(ec_key);
	free(csr);
	log_set_level(MDM_LOG_INFO);
}

/* ---- helpers ---- */

static size_t find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; m > 0 && i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return i;
	return (size_t)-1;
}

static struct cms_scep_msg *parse_ok(const uint8_t *der, size_t len)
{
	char err[256];
	enum scep_fail_info f = SCEP_BAD_ALG;
	struct cms_scep_msg *m = NULL;
	mdm_err e = cms_scep_parse(der, len, &m, &f, err, sizeof(err));

	ck_assert_msg(e == MDM_OK, "parse: %s: %s", err_str(e), err);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(f, SCEP_FAIL_NONE);
	ck_assert_str_eq(err, "");
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
	return m;
}

/* Refused with want, failInfo wantf (ANY_FAIL: any) and msg in the rule. */
static void check_refused(
        const uint8_t *der, size_t len, mdm_err want, enum scep_fail_info wantf, const char *msg)
{
	char err[256];
	enum scep_fail_info f = SCEP_FAIL_NONE;
	struct cms_scep_msg *m = (struct cms_scep_msg *)err; /* must be cleared on entry */
	mdm_err e = cms_scep_parse(der, len, &m, &f, err, sizeof(err));

	ck_assert_msg(e == want, "got %s, want %s (%s)", err_str(e), err_str(want), err);
	ck_assert_ptr_null(m);
	ck_assert_msg(f != SCEP_FAIL_NONE, "no failInfo for: %s", err);
	if (wantf != ANY_FAIL)
		ck_assert_msg(f == wantf, "failInfo %d, want %d (%s)", f, wantf, err);
	ck_assert_msg(err[0] != '\0', "refusal without a message");
	if (msg != NULL)
		ck_assert_msg(
		        strstr(err, msg) != NULL, "message \"%s\" does not say \"%s\"", err, msg);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}

static struct cms_request_params req_params(void)
{
	struct cms_request_params p;

	memset(&p, 0, sizeof(p));
	p.type = SCEP_PKCSREQ;
	p.signer = client;
	p.key = client_key;
	p.recipient = ca;
	p.digest = CMS_DIGEST_SHA256;
	p.cipher = CMS_CIPHER_AES128;
	p.transaction_id = "0123456789ABCDEF0123456789ABCDEF01234567";
	p.sender_nonce = nonce16;
	p.challenge_attr = "s3cret";
	p.content = csr;
	p.content_len = csr_len;
	return p;
}

static uint8_t *request(const struct cms_request_params *p, size_t *len)
{
	uint8_t *der = NULL;
	mdm_err e = cms_scep_request(p, &der, len);

	ck_assert_msg(e == MDM_OK, "cms_scep_request: %s", err_str(e));
	ck_assert_ptr_nonnull(der);
	return der;
}

static struct cms_certrep_params rep_params(enum scep_pki_status st)
{
	static X509 *certs[2];
	struct cms_certrep_params p;

	certs[0] = issued;
	certs[1] = ca;
	memset(&p, 0, sizeof(p));
	p.signer = ca;
	p.key = ca_key;
	p.digest = CMS_DIGEST_SHA256;
	p.transaction_id = "0123456789ABCDEF0123456789ABCDEF01234567";
	p.recipient_nonce = nonce16;
	p.status = st;
	p.fail_info = SCEP_FAIL_NONE;
	if (st == SCEP_SUCCESS) {
		p.certs = certs;
		p.n_certs = 2;
		p.recipient = client;
		p.cipher = CMS_CIPHER_AES128;
	}
	return p;
}

static uint8_t *certrep(const struct cms_certrep_params *p, size_t *len)
{
	uint8_t *der = NULL;
	mdm_err e = cms_scep_certrep(p, &der, len);

	ck_assert_msg(e == MDM_OK, "cms_scep_certrep: %s", err_str(e));
	ck_assert_ptr_nonnull(der);
	return der;
}

static uint8_t *decrypt_ok(const struct cms_scep_msg *m, EVP_PKEY *key, X509 *cert, size_t *len,
        enum cms_cipher *cipher)
{
	uint8_t *out = NULL;
	enum scep_fail_info f = SCEP_BAD_ALG;
	mdm_err e = cms_scep_decrypt(m, key, cert, &out, len, cipher, &f);

	ck_assert_msg(e == MDM_OK, "decrypt: %s (failInfo %d)", err_str(e), f);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(f, SCEP_FAIL_NONE);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
	return out;
}

static void decrypt_refused(
        const struct cms_scep_msg *m, EVP_PKEY *key, X509 *cert, enum scep_fail_info wantf)
{
	uint8_t *out = (uint8_t *)&out;
	size_t len = 1;
	enum cms_cipher c = CMS_CIPHER_DES3;
	enum scep_fail_info f = SCEP_FAIL_NONE;

	ck_assert_int_eq(cms_scep_decrypt(m, key, cert, &out, &len, &c, &f), MDM_ERR_PARSE);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(c, CMS_CIPHER__MAX);
	ck_assert_int_eq(f, wantf);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}

static int has_cert(X509 **v, size_t n, X509 *x)
{
	for (size_t i = 0; i < n; i++)
		if (X509_cmp(v[i], x) == 0)
			return 1;
	return 0;
}

static void free_certs(X509 **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		X509_free(v[i]);
	free(v);
}

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
static struct raw_opts raw_default(void)
{
	struct raw_opts o;

	memset(&o, 0, sizeof(o));
	o.signer = client;
	o.key = client_key;
	o.md = EVP_sha256();
	o.attrs[0] = (struct raw_attr){OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "19", 2, 0};
	o.attrs[1] = (struct raw_attr){OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, "tid-1", 5, 0};
	o.attrs[2] = (struct raw_attr){OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce16, 16, 0};
	o.n_attrs = 3;
	return o;
}

static uint8_t *envelope_of_csr(size_t *len)
{
	STACK_OF(X509) *to = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf(csr, (int)csr_len);
	CMS_ContentInfo *env;
	uint8_t *der = NULL;
	int n;

	ck_assert_ptr_nonnull(to);
	ck_assert_int_gt(sk_X509_push(to, ca), 0);
	env = CMS_encrypt(to, in, EVP_aes_128_cbc(), CMS_BINARY);
	ck_assert_ptr_nonnull(env);
	n = i2d_CMS_ContentInfo(env, &der);
	ck_assert_int_gt(n, 0);
	*len = (size_t)n;
	CMS_ContentInfo_free(env);
	BIO_free(in);
	sk_X509_free(to);
	return der; /* OPENSSL_free */
}

static void raw_add_attr(CMS_SignerInfo *si, const struct raw_attr *a, int two_values)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(a->oid, 1);
	X509_ATTRIBUTE *attr;

	ck_assert_ptr_nonnull(obj);
	attr = X509_ATTRIBUTE_create_by_OBJ(NULL, obj, a->type, a->v, a->len);
	ck_assert_ptr_nonnull(attr);
	if (two_values)
		ck_assert_int_eq(X509_ATTRIBUTE_set1_data(attr, a->type, a->v, a->len), 1);
	ck_assert_int_eq(CMS_signed_add1_attr(si, attr), 1);
	if (a->twice)
		ck_assert_int_eq(CMS_signed_add1_attr(si, attr), 1);
	X509_ATTRIBUTE_free(attr);
	ASN1_OBJECT_free(obj);
}

static uint8_t *raw_build(const struct raw_opts *o, size_t *len)
{
	unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	CMS_SignerInfo *si;
	uint8_t *env = NULL, *der = NULL, *out;
	size_t env_len = 0;
	const uint8_t *content = o->content;
	size_t content_len = o->content_len;
	BIO *in;
	int n;

	ck_assert_ptr_nonnull(cms);
	si = CMS_add1_signer(cms, o->signer, o->key, o->md,
	        flags | (o->nocerts ? CMS_NOCERTS : 0) | (o->keyid ? CMS_USE_KEYID : 0));
	ck_assert_msg(si != NULL, "CMS_add1_signer: %s", ERR_reason_error_string(ERR_get_error()));
	for (size_t i = 0; i < o->n_attrs; i++)
		raw_add_attr(si, &o->attrs[i], i == 0 && o->two_values);
	if (o->second_signer) {
		CMS_SignerInfo *si2 = CMS_add1_signer(cms, other, other_key, EVP_sha256(), flags);

		ck_assert_ptr_nonnull(si2);
		for (size_t i = 0; i < o->n_attrs; i++)
			raw_add_attr(si2, &o->attrs[i], 0);
	}
	if (o->econtent_oid != NULL) {
		ASN1_OBJECT *obj = OBJ_txt2obj(o->econtent_oid, 1);

		ck_assert_int_eq(CMS_set1_eContentType(cms, obj), 1);
		ASN1_OBJECT_free(obj);
	}
	if (content == NULL) {
		env = envelope_of_csr(&env_len);
		content = env;
		content_len = env_len;
	}
	if (o->no_content)
		ck_assert_int_eq(CMS_set_detached(cms, 1), 1);
	in = BIO_new_mem_buf(content_len > 0 ? (const void *)content : "", (int)content_len);
	ck_assert_int_eq(CMS_final(cms, in, NULL, CMS_BINARY), 1);
	n = i2d_CMS_ContentInfo(cms, &der);
	ck_assert_int_gt(n, 0);
	out = malloc((size_t)n);
	ck_assert_ptr_nonnull(out);
	memcpy(out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	OPENSSL_free(env);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return out;
}

static void raw_refused(
        const struct raw_opts *o, mdm_err want, enum scep_fail_info wantf, const char *msg)
{
	size_t len;
	uint8_t *der = raw_build(o, &len);

	check_refused(der, len, want, wantf, msg);
	free(der);
}

/* ---- cms_scep_parse_unverified ---- */

static struct cms_scep_msg *unverified_ok(const uint8_t *der, size_t len)
{
	char err[256];
	enum scep_fail_info f = SCEP_BAD_ALG;
	struct cms_scep_msg *m = NULL;
	mdm_err e = cms_scep_parse_unverified(der, len, &m, &f, err, sizeof(err));

	ck_assert_msg(e == MDM_OK, "unverified: %s: %s", err_str(e), err);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(m->signer);
	ck_assert_int_eq(f, SCEP_FAIL_NONE);
	ck_assert_str_eq(err, "");
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
	return m;
}

/* Refused by both parsers with the same code, failInfo and rule. */
static void both_refused(
        const uint8_t *der, size_t len, mdm_err want, enum scep_fail_info wantf, const char *msg)
{
	char err[256], err2[256];
	enum scep_fail_info f = SCEP_FAIL_NONE, f2 = SCEP_FAIL_NONE;
	struct cms_scep_msg *m = (struct cms_scep_msg *)err; /* must be cleared on entry */
	mdm_err e;

	check_refused(der, len, want, wantf, msg);
	ck_assert_int_eq(cms_scep_parse(der, len, &m, &f, err, sizeof(err)), want);
	ck_assert_ptr_null(m);
	m = (struct cms_scep_msg *)err2;
	e = cms_scep_parse_unverified(der, len, &m, &f2, err2, sizeof(err2));
	ck_assert_msg(
	        e == want, "unverified: got %s, want %s (%s)", err_str(e), err_str(want), err2);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(f2, f);
	ck_assert_str_eq(err2, err);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}

/* Verified and unverified parses of one message read the same fields. */
static void same_fields(const struct cms_scep_msg *a, const struct cms_scep_msg *b)
{
	ck_assert_int_eq(a->message_type, b->message_type);
	ck_assert_str_eq(a->transaction_id, b->transaction_id);
	ck_assert_int_eq(a->has_sender_nonce, b->has_sender_nonce);
	ck_assert_uint_eq(a->sender_nonce_len, b->sender_nonce_len);
	ck_assert_mem_eq(a->sender_nonce, b->sender_nonce, SCEP_NONCE_LEN);
	ck_assert_int_eq(a->digest, b->digest);
	ck_assert_int_eq(X509_cmp(a->signer, b->signer), 0);
	ck_assert_uint_eq(a->envelope_len, b->envelope_len);
}

/* ---- real captures ---- */

START_TEST(vector_macos_pkcsreq)
{
	static const char tid[] = "A13090761A30F66664F85D37433D2065E1112BA1";
	size_t len, csrlen, outlen;
	uint8_t *der = vector_read("cms", "scep/testdata/PKCSReq.der", &len);
	uint8_t *want = vector_read("cms", "_derived/scep/PKCSReq.der.decrypted-csr.der", &csrlen);
	uint8_t *env_want, *out;
	const char *dir = vector_dir();
	char path[4096], cn[64];
	struct cms_scep_msg *m;
	enum cms_cipher c;
	EVP_PKEY *key;
	X509 *cert;
	size_t envlen;

	if (der == NULL || want == NULL) {
		free(der);
		free(want);
		return;
	}
	m = parse_ok(der, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_str_eq(m->transaction_id, tid);
	ck_assert_int_eq(m->digest, CMS_DIGEST_SHA1);
	ck_assert_int_eq(m->has_sender_nonce, 1);
	/* macOS sends 8 bytes, not RFC 8894's 16. */
	ck_assert_uint_eq(m->sender_nonce_len, 8);
	ck_assert_mem_eq(m->sender_nonce, "\xae\x7f\xe8\x81\x6c\xc6\xbe\xdd", 8);
	ck_assert_int_eq(m->has_recipient_nonce, 0);
	ck_assert_ptr_null(m->challenge);
	ck_assert_int_eq(m->fail_info, SCEP_FAIL_NONE);
	X509_NAME_get_text_by_NID(X509_get_subject_name(m->signer), NID_commonName, cn, sizeof(cn));
	ck_assert_str_eq(cn, "MDM SCEP SIGNER");
	/* The envelope kept is byte for byte the one inside. */
	env_want = vector_read("cms", "_derived/scep/PKCSReq.der.inner-envelopedData.der", &envlen);
	if (env_want != NULL) {
		ck_assert_uint_eq(m->envelope_len, envlen);
		ck_assert_mem_eq(m->envelope, env_want, envlen);
		free(env_want);
	}

	snprintf(path, sizeof(path), "%s/scep/testdata/testca/ca.key", dir);
	key = pem_key(path);
	snprintf(path, sizeof(path), "%s/scep/testdata/testca/ca.crt", dir);
	cert = pem_cert(path);
	out = decrypt_ok(m, key, cert, &outlen, &c);
	ck_assert_int_eq(c, CMS_CIPHER_DES3);
	ck_assert_uint_eq(outlen, csrlen);
	ck_assert_mem_eq(out, want, csrlen);
	free(out);

	/* Not ours: refused before any private-key operation. */
	decrypt_refused(m, ca_key, ca, SCEP_BAD_MESSAGE_CHECK);
	/*
	 * Our certificate, a wrong key: OpenSSL goes on with a random content
	 * key (the Bleichenbacher defence), so this fails or, rarely, yields
	 * garbage; never the CSR.
	 */
	{
		enum scep_fail_info f = SCEP_FAIL_NONE;
		mdm_err e;

		out = NULL;
		e = cms_scep_decrypt(m, other_key, cert, &out, &outlen, &c, &f);
		if (e == MDM_OK) {
			ck_assert(outlen != csrlen || memcmp(out, want, csrlen) != 0);
			free(out);
		} else {
			ck_assert_int_eq(e, MDM_ERR_PARSE);
			ck_assert_int_eq(f, SCEP_BAD_MESSAGE_CHECK);
		}
		ck_assert(ERR_peek_error() == 0);
	}
	EVP_PKEY_free(key);
	X509_free(cert);
	cms_scep_msg_free(m);
	free(der);
	free(want);
}
END_TEST

START_TEST(vector_mdmclient)
{
	size_t len;
	uint8_t *der = vector_read("cms", "commandment/testdata/mdmclient-PKIOperation.der", &len);
	struct cms_scep_msg *m;

	if (der == NULL)
		return;
	m = parse_ok(der, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(m->digest, CMS_DIGEST_SHA512);
	ck_assert_str_eq(m->transaction_id, "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B");
	ck_assert_ptr_nonnull(m->challenge);
	ck_assert_str_eq(m->challenge, "03DD5575C1694064");
	ck_assert_uint_eq(m->sender_nonce_len, 8);
	/* Enveloped to an NDES RA whose key is not published. */
	decrypt_refused(m, ca_key, ca, SCEP_BAD_MESSAGE_CHECK);
	cms_scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(vector_windows)
{
	size_t len;
	uint8_t *der = vector_read(
	        "cms", "smallstep-pkcs7/parse_test.go.extracted/windows_scep_pkcsreq.der", &len);
	struct cms_scep_msg *m;

	if (der == NULL)
		return;
	/* The signer's critical AKI is no concern of ours: no chain is built. */
	m = parse_ok(der, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(m->digest, CMS_DIGEST_SHA1);
	ck_assert_str_eq(m->transaction_id, "252e27f890ea721a5a5790225ce6b42a02d14fbf");
	ck_assert_uint_eq(m->sender_nonce_len, 16);
	ck_assert_uint_eq(m->envelope_len, 5941);
	decrypt_refused(m, ca_key, ca, SCEP_BAD_MESSAGE_CHECK);
	cms_scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(vector_jscep)
{
	size_t len, len1;
	uint8_t *req2 = vector_read("cms", "jscep/src/samples/scep_req2.der", &len);
	uint8_t *req1 = vector_read("cms", "jscep/src/samples/scep_req1.der", &len1);
	uint8_t *der;
	struct cms_scep_msg *m;
	X509 **certs = NULL;
	size_t n = 0;

	if (req2 == NULL || req1 == NULL) {
		free(req2);
		free(req1);
		return;
	}
	m = parse_ok(req2, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(m->digest, CMS_DIGEST_SHA256);
	ck_assert_str_eq(m->transaction_id, "7XXEY-ERLPU-2JDR9");
	/* req2 wraps req1 byte for byte. */
	ck_assert_uint_eq(m->envelope_len, len1);
	ck_assert_mem_eq(m->envelope, req1, len1);
	cms_scep_msg_free(m);
	free(req2);
	free(req1);

	if ((der = vector_read("cms", "jscep/src/samples/scep_resp2.der", &len)) != NULL) {
		uint8_t *resp1 = vector_read("cms", "jscep/src/samples/scep_resp1.der", &len1);

		m = parse_ok(der, len);
		ck_assert_int_eq(m->message_type, SCEP_CERTREP);
		ck_assert_int_eq(m->pki_status, SCEP_SUCCESS);
		ck_assert_int_eq(m->fail_info, SCEP_FAIL_NONE);
		ck_assert_int_eq(m->has_recipient_nonce, 1);
		ck_assert_uint_eq(m->recipient_nonce_len, 16);
		ck_assert_str_eq(m->transaction_id, "7XXEY-ERLPU-2JDR9");
		if (resp1 != NULL) {
			ck_assert_uint_eq(m->envelope_len, len1);
			ck_assert_mem_eq(m->envelope, resp1, len1);
		}
		free(resp1);
		cms_scep_msg_free(m);
		free(der);
	}
	/* The other layers are not pkiMessages. */
	if ((der = vector_read("cms", "jscep/src/samples/scep_req0.der", &len)) != NULL) {
		check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "RFC 5652 3");
		free(der);
	}
	if ((der = vector_read("cms", "jscep/src/samples/scep_resp1.der", &len)) != NULL) {
		check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "not a SignedData");
		free(der);
	}
	if ((der = vector_read("cms", "jscep/src/samples/scep_resp0.der", &len)) != NULL) {
		check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "0 SignerInfos");
		/* It is the certs-only content of the CertRep: one issued certificate. */
		ck_assert_int_eq(cms_certs_only_parse(der, len, &certs, &n), MDM_OK);
		ck_assert_uint_eq(n, 1);
		free_certs(certs, n);
		free(der);
	}
}
END_TEST

START_TEST(vector_legacy_certreps)
{
	size_t len;
	uint8_t *der;
	struct cms_scep_msg *m;

	/* micromdm 2016 answering PKCSReq.der: 8-byte recipientNonce, single DES inside. */
	if ((der = vector_read("cms", "scep/_history/CertRep.der", &len)) != NULL) {
		m = parse_ok(der, len);
		ck_assert_int_eq(m->message_type, SCEP_CERTREP);
		ck_assert_int_eq(m->pki_status, SCEP_SUCCESS);
		ck_assert_str_eq(m->transaction_id, "A13090761A30F66664F85D37433D2065E1112BA1");
		ck_assert_uint_eq(m->recipient_nonce_len, 8);
		ck_assert_mem_eq(m->recipient_nonce, "\xae\x7f\xe8\x81\x6c\xc6\xbe\xdd", 8);
		decrypt_refused(m, client_key, client, SCEP_BAD_ALG);
		cms_scep_msg_free(m);
		free(der);
	}
	/* NDES sends no certificates: the signer must come from elsewhere. */
	if ((der = vector_read(
	             "cms", "scep/_history/CertRep_NoCertificatesForSigners.der", &len)) != NULL) {
		check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK,
		        "signer certificate not in the message");
		free(der);
	}
	/* sscep-style request: MD5. */
	if ((der = vector_read("cms", "libscep/tests/test-files/util_b64_pkcs7.bin", &len)) !=
	        NULL) {
		check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "md5");
		free(der);
	}
	/* BT's failure reply: MD5 and no certificates. */
	if ((der = vector_read("cms",
	             "apple-Security/OSX/sec/Security/Regressions/secitem/"
	             "si-63-scep.h.extracted/scep_reply_17_58_00_der.der",
	             &len)) != NULL) {
		check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, NULL);
		free(der);
	}
}
END_TEST

START_TEST(vector_getcacert)
{
	static const struct {
		const char *path;
		size_t n;
	} v[] = {
	        {"getcacert.der", 2}, {"bmw_scep_pkt.der", 4}, {"msscep_getcacert.der", 3},
	        {"_getCACertReponse_97197618.der", 3}, /* BER, indefinite lengths */
	};
	char rel[512];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		X509 **certs = (X509 **)rel;
		size_t len, n = 99;
		uint8_t *der;

		snprintf(rel, sizeof(rel),
		        "apple-Security/OSX/sec/Security/Regressions/secitem/"
		        "si-63-scep.h.extracted/"
		        "%s",
		        v[i].path);
		if ((der = vector_read("cms", rel, &len)) == NULL)
			continue;
		ck_assert_msg(
		        cms_certs_only_parse(der, len, &certs, &n) == MDM_OK, "%s", v[i].path);
		ck_assert_uint_eq(n, v[i].n);
		ck_assert_ptr_nonnull(certs[n - 1]);
		free_certs(certs, n);
		/* Not a pkiMessage: no SignerInfo. */
		check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "0 SignerInfos");
		/* Trailing garbage is refused here too. */
		der[len] = 0;
		certs = (X509 **)rel;
		ck_assert_int_eq(cms_certs_only_parse(der, len + 1, &certs, &n), MDM_ERR_PARSE);
		ck_assert_ptr_null(certs);
		ck_assert_uint_eq(n, 0);
		free(der);
	}
}
END_TEST

/* Apple's CMS decoder corpus: all refused (none is a SCEP message), none crashes. */
START_TEST(vector_apple_corpus)
{
	static const char *const sub[] = {"ParseFailureCMS", "ParseSuccessCMS"};
	const char *dir = vector_dir();
	size_t total = 0;

	if (dir == NULL) {
		printf("cms: shared vectors not found (set MDM_VECTORS); Apple corpus skipped\n");
		return;
	}
	for (size_t s = 0; s < 2; s++) {
		char path[4096];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path),
		        "%s/apple-Security/OSX/shared_regressions/si-27-cms-parse/%s", dir, sub[s]);
		if ((d = opendir(path)) == NULL) {
			printf("cms: %s missing; skipped\n", path);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			char file[4096 + 256];
			X509 **certs = NULL;
			size_t len, n = 0;
			uint8_t *der;

			if (de->d_name[0] == '.')
				continue;
			snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
			if ((der = slurp(file, &len)) == NULL)
				continue;
			check_refused(der, len,
			        len > MDM_MAX_BODY_SCEP ? MDM_ERR_LIMIT : MDM_ERR_PARSE, ANY_FAIL,
			        NULL);
			if (cms_certs_only_parse(der, len, &certs, &n) == MDM_OK)
				free_certs(certs, n);
			ck_assert(ERR_peek_error() == 0);
			free(der);
			total++;
		}
		closedir(d);
	}
	printf("cms: %zu files of Apple's CMS corpus refused as pkiMessages\n", total);
}
END_TEST

/* ---- round trips ---- */

START_TEST(request_roundtrip)
{
	enum cms_digest d = (enum cms_digest)(_i / CMS_CIPHER__MAX);
	enum cms_cipher c = (enum cms_cipher)(_i % CMS_CIPHER__MAX);
	struct cms_request_params p = req_params();

	struct cms_scep_msg *m;
	enum cms_cipher got;
	uint8_t *der, *out;
	size_t len, outlen;

	/* Single DES is only ever read, never written (cms_scep_decrypt_des). */
	if (c == CMS_CIPHER_DES) {
		p.cipher = c;
		ck_assert_int_eq(cms_scep_request(&p, &der, &len), MDM_ERR_INVAL);
		return;
	}

	p.digest = d;
	p.cipher = c;
	der = request(&p, &len);
	m = parse_ok(der, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(m->digest, d);
	ck_assert_str_eq(m->transaction_id, p.transaction_id);
	ck_assert_uint_eq(m->sender_nonce_len, SCEP_NONCE_LEN);
	ck_assert_mem_eq(m->sender_nonce, nonce16, SCEP_NONCE_LEN);
	ck_assert_str_eq(m->challenge, "s3cret");
	ck_assert_int_eq(X509_cmp(m->signer, client), 0);
	out = decrypt_ok(m, ca_key, ca, &outlen, &got);
	ck_assert_int_eq(got, c);
	ck_assert_uint_eq(outlen, csr_len);
	ck_assert_mem_eq(out, csr, csr_len);
	/* Addressed to the CA, not to anyone else. */
	decrypt_refused(m, other_key, other, SCEP_BAD_MESSAGE_CHECK);
	free(out);
	cms_scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(request_variants)
{
	static const enum scep_message_type types[] = {
	        SCEP_RENEWALREQ, SCEP_PKCSREQ, SCEP_CERTPOLL, SCEP_GETCERT, SCEP_GETCRL};
	struct cms_request_params p = req_params();
	struct cms_scep_msg *m;
	uint8_t *der, *out, *der2;
	size_t len, outlen, len2;
	enum cms_cipher c;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		p.type = types[i];
		der = request(&p, &len);
		m = parse_ok(der, len);
		ck_assert_int_eq(m->message_type, types[i]);
		cms_scep_msg_free(m);
		free(der);
	}
	/* RSA-OAEP key transport, as the Windows client; random nonce; no challenge. */
	p = req_params();
	p.rsa_oaep = 1;
	p.cipher = CMS_CIPHER_AES256;
	p.sender_nonce = NULL;
	p.challenge_attr = NULL;
	der = request(&p, &len);
	m = parse_ok(der, len);
	ck_assert_ptr_null(m->challenge);
	ck_assert_uint_eq(m->sender_nonce_len, SCEP_NONCE_LEN);
	ck_assert(memcmp(m->sender_nonce, nonce16, SCEP_NONCE_LEN) != 0);
	out = decrypt_ok(m, ca_key, ca, &outlen, &c);
	ck_assert_int_eq(c, CMS_CIPHER_AES256);
	ck_assert_mem_eq(out, csr, csr_len);
	free(out);
	cms_scep_msg_free(m);
	/* Fresh nonces differ. */
	der2 = request(&p, &len2);
	m = parse_ok(der2, len2);
	{
		struct cms_scep_msg *m1 = parse_ok(der, len);

		ck_assert(memcmp(m->sender_nonce, m1->sender_nonce, SCEP_NONCE_LEN) != 0);
		cms_scep_msg_free(m1);
	}
	cms_scep_msg_free(m);
	free(der);
	free(der2);
	/* A challenge PrintableString cannot carry goes as UTF8String. */
	p = req_params();
	p.challenge_attr = "pa_ss!w\xc3\xb6rd";
	der = request(&p, &len);
	m = parse_ok(der, len);
	ck_assert_str_eq(m->challenge, "pa_ss!w\xc3\xb6rd");
	cms_scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(request_bad_arguments)
{
	struct cms_request_params p = req_params();
	uint8_t *der = (uint8_t *)&p;
	size_t len = 1;

	ck_assert_int_eq(cms_scep_request(NULL, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert_uint_eq(len, 0);
	p.type = SCEP_CERTREP;
	ck_assert_int_eq(cms_scep_request(&p, &der, &len), MDM_ERR_INVAL);
	p = req_params();
	p.key = other_key; /* not the signer's */
	ck_assert_int_eq(cms_scep_request(&p, &der, &len), MDM_ERR_INVAL);
	p = req_params();
	p.transaction_id = "has_underscore";
	ck_assert_int_eq(cms_scep_request(&p, &der, &len), MDM_ERR_INVAL);
	p = req_params();
	p.recipient = ec; /* no RSA key transport to an EC key */
	ck_assert_int_eq(cms_scep_request(&p, &der, &len), MDM_ERR_INVAL);
	p = req_params();
	p.content_len = 0;
	ck_assert_int_eq(cms_scep_request(&p, &der, &len), MDM_ERR_INVAL);
	p = req_params();
	p.digest = CMS_DIGEST__MAX;
	ck_assert_int_eq(cms_scep_request(&p, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

START_TEST(certrep_success_roundtrip)
{
	enum cms_digest d = (enum cms_digest)(_i / CMS_CIPHER__MAX);
	enum cms_cipher c = (enum cms_cipher)(_i % CMS_CIPHER__MAX);
	struct cms_certrep_params p = rep_params(SCEP_SUCCESS);
	X509 *extra[1] = {other};
	struct cms_scep_msg *m;
	X509 **certs = NULL;
	uint8_t *der, *out;
	size_t len, outlen, n = 0;
	enum cms_cipher got;
	CMS_ContentInfo *cms;
	STACK_OF(X509) * outer;

	/* Replies never use single DES. */
	if (c == CMS_CIPHER_DES) {
		p.cipher = c;
		ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
		return;
	}
	const unsigned char *q;

	p.digest = d;
	p.cipher = c;
	p.extra_certs = extra;
	p.n_extra_certs = 1;
	der = certrep(&p, &len);
	m = parse_ok(der, len);
	ck_assert_int_eq(m->message_type, SCEP_CERTREP);
	ck_assert_int_eq(m->pki_status, SCEP_SUCCESS);
	ck_assert_int_eq(m->fail_info, SCEP_FAIL_NONE);
	ck_assert_int_eq(m->digest, d);
	ck_assert_str_eq(m->transaction_id, p.transaction_id);
	ck_assert_uint_eq(m->recipient_nonce_len, SCEP_NONCE_LEN);
	ck_assert_mem_eq(m->recipient_nonce, nonce16, SCEP_NONCE_LEN);
	ck_assert_uint_eq(m->sender_nonce_len, SCEP_NONCE_LEN);
	ck_assert(memcmp(m->sender_nonce, nonce16, SCEP_NONCE_LEN) != 0);
	ck_assert_int_eq(X509_cmp(m->signer, ca), 0);
	/* Signer and extra certificate carried outside. */
	q = der;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	ck_assert_ptr_nonnull(cms);
	outer = CMS_get1_certs(cms);
	ck_assert_int_eq(sk_X509_num(outer), 2);
	sk_X509_pop_free(outer, X509_free);
	CMS_ContentInfo_free(cms);

	out = decrypt_ok(m, client_key, client, &outlen, &got);
	ck_assert_int_eq(got, c);
	ck_assert_int_eq(cms_certs_only_parse(out, outlen, &certs, &n), MDM_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert(has_cert(certs, n, issued));
	ck_assert(has_cert(certs, n, ca));
	free_certs(certs, n);
	free(out);
	cms_scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(certrep_failure_and_pending)
{
	for (int fi = SCEP_BAD_ALG; fi <= SCEP_BAD_CERT_ID; fi++) {
		struct cms_certrep_params p = rep_params(SCEP_FAILURE);
		struct cms_scep_msg *m;
		uint8_t *der;
		size_t len;

		p.fail_info = (enum scep_fail_info)fi;
		p.digest = (enum cms_digest)(fi % CMS_DIGEST__MAX);
		der = certrep(&p, &len);
		m = parse_ok(der, len);
		ck_assert_int_eq(m->message_type, SCEP_CERTREP);
		ck_assert_int_eq(m->pki_status, SCEP_FAILURE);
		ck_assert_int_eq(m->fail_info, fi);
		ck_assert_ptr_null(m->envelope);
		ck_assert_uint_eq(m->envelope_len, 0);
		ck_assert_int_eq(cms_scep_decrypt(m, client_key, client, &(uint8_t *){NULL},
		                         &(size_t){0}, NULL, NULL),
		        MDM_ERR_INVAL);
		cms_scep_msg_free(m);
		free(der);
	}
	{
		struct cms_certrep_params p = rep_params(SCEP_PENDING);
		struct cms_scep_msg *m;
		uint8_t *der;
		size_t len;

		/* The request's 8-byte nonce (macOS) goes back as it came. */
		p.recipient_nonce_len = 8;
		der = certrep(&p, &len);
		m = parse_ok(der, len);
		ck_assert_int_eq(m->pki_status, SCEP_PENDING);
		ck_assert_int_eq(m->fail_info, SCEP_FAIL_NONE);
		ck_assert_ptr_null(m->envelope);
		ck_assert_uint_eq(m->recipient_nonce_len, 8);
		ck_assert_mem_eq(m->recipient_nonce, nonce16, 8);
		cms_scep_msg_free(m);
		free(der);
	}
}
END_TEST

static X509_CRL *make_crl(void)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, 1700000000);

	ck_assert_ptr_nonnull(crl);
	ck_assert_int_eq(X509_CRL_set_version(crl, 1), 1);
	ck_assert_int_eq(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
	ck_assert_int_eq(X509_CRL_set1_lastUpdate(crl, t), 1);
	ck_assert_int_gt(X509_CRL_sign(crl, ca_key, EVP_sha256()), 0);
	ASN1_TIME_free(t);
	return crl;
}

START_TEST(certrep_with_crl)
{
	struct cms_certrep_params p = rep_params(SCEP_SUCCESS);
	X509_CRL *crl = make_crl();
	uint8_t *crl_der = NULL, *der, *out;
	size_t len, outlen, n = 0;
	struct cms_scep_msg *m;
	X509 **certs = NULL;
	CMS_ContentInfo *cms;
	STACK_OF(X509_CRL) * crls;
	const unsigned char *q;
	int crl_len = i2d_X509_CRL(crl, &crl_der);

	ck_assert_int_gt(crl_len, 0);
	/* GetCRL: the CRL alone. */
	p.certs = NULL;
	p.n_certs = 0;
	p.crl_der = crl_der;
	p.crl_len = (size_t)crl_len;
	der = certrep(&p, &len);
	m = parse_ok(der, len);
	out = decrypt_ok(m, client_key, client, &outlen, NULL);
	ck_assert_int_eq(cms_certs_only_parse(out, outlen, &certs, &n), MDM_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(certs);
	q = out;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)outlen);
	ck_assert_ptr_nonnull(cms);
	crls = CMS_get1_crls(cms);
	ck_assert_int_eq(sk_X509_CRL_num(crls), 1);
	ck_assert_int_eq(X509_CRL_cmp(sk_X509_CRL_value(crls, 0), crl), 0);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	CMS_ContentInfo_free(cms);
	free(out);
	cms_scep_msg_free(m);
	free(der);
	/* A CRL that does not parse is the caller's bug. */
	p.crl_len = (size_t)crl_len - 1;
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
	ck_assert(ERR_peek_error() == 0);
	OPENSSL_free(crl_der);
	X509_CRL_free(crl);
}
END_TEST

START_TEST(certrep_bad_arguments)
{
	struct cms_certrep_params p = rep_params(SCEP_SUCCESS);
	uint8_t *der = (uint8_t *)&p;
	size_t len = 1;

	ck_assert_int_eq(cms_scep_certrep(NULL, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert_uint_eq(len, 0);
	p.recipient = NULL;
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = rep_params(SCEP_FAILURE);
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL); /* no failInfo */
	p.fail_info = (enum scep_fail_info)5;
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = rep_params(SCEP_PENDING);
	p.status = (enum scep_pki_status)1;
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = rep_params(SCEP_PENDING);
	p.recipient_nonce_len = 4;
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p.recipient_nonce_len = 17;
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = rep_params(SCEP_PENDING);
	p.key = client_key;
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = rep_params(SCEP_PENDING);
	p.transaction_id = "";
	ck_assert_int_eq(cms_scep_certrep(&p, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

static int openssl_verifies(const uint8_t *der, size_t len, const char *extra)
{
	char path[] = "/tmp/cms-test-XXXXXX", cmd[512];
	int fd = mkstemp(path), rc;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, der, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd),
	        "openssl cms -verify -noverify -inform DER -in %s %s -out /dev/null "
	        ">/dev/null 2>&1",
	        path, extra);
	rc = system(cmd);
	unlink(path);
	return rc == 0;
}

/* An independent party (the openssl command line) accepts what we sign. */
START_TEST(openssl_cli_verifies)
{
	struct cms_certrep_params p = rep_params(SCEP_SUCCESS);
	struct cms_request_params r = req_params();
	uint8_t *der;
	size_t len;

	if (system("openssl version >/dev/null 2>&1") != 0) {
		printf("cms: openssl command not found; independent check skipped\n");
		return;
	}
	der = certrep(&p, &len);
	ck_assert(openssl_verifies(der, len, ""));
	der[len - 10] ^= 1; /* in the signature */
	ck_assert(!openssl_verifies(der, len, ""));
	free(der);
	p = rep_params(SCEP_FAILURE);
	p.fail_info = SCEP_BAD_REQUEST;
	der = certrep(&p, &len);
	ck_assert(openssl_verifies(der, len, ""));
	free(der);
	p = rep_params(SCEP_PENDING);
	p.digest = CMS_DIGEST_SHA1;
	der = certrep(&p, &len);
	ck_assert(openssl_verifies(der, len, ""));
	free(der);
	der = request(&r, &len);
	ck_assert(openssl_verifies(der, len, ""));
	free(der);
}
END_TEST

START_TEST(certs_only)
{
	X509 *v[3] = {ca, issued, ca};
	X509 **certs = NULL;
	size_t len, n = 0;
	uint8_t *der = NULL;
	CMS_ContentInfo *cms;
	const unsigned char *q;
	BIO *out;
	char *content;
	long clen;

	/* Duplicates are sent once. */
	ck_assert_int_eq(cms_certs_only(v, 3, &der, &len), MDM_OK);
	ck_assert_int_eq(cms_certs_only_parse(der, len, &certs, &n), MDM_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert(has_cert(certs, n, ca) && has_cert(certs, n, issued));
	free_certs(certs, n);
	/* RFC 8894 3.4: encapsulated content absent. */
	q = der;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	ck_assert_ptr_nonnull(cms);
	ck_assert_int_eq(CMS_is_detached(cms), 1);
	CMS_ContentInfo_free(cms);
	free(der);
	ck_assert_int_eq(cms_certs_only(v, 0, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);

	/* GetNextCACert: signed by the CA, the certs-only inside. */
	ck_assert_int_eq(cms_sign_certs_only(ca, ca_key, v, 2, &der, &len), MDM_OK);
	if (system("openssl version >/dev/null 2>&1") == 0)
		ck_assert(openssl_verifies(der, len, ""));
	q = der;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	ck_assert_ptr_nonnull(cms);
	out = BIO_new(BIO_s_mem());
	{
		STACK_OF(X509) *one = sk_X509_new_null();

		sk_X509_push(one, ca);
		ck_assert_int_eq(CMS_verify(cms, one, NULL, NULL, out,
		                         CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY),
		        1);
		sk_X509_free(one);
	}
	clen = BIO_get_mem_data(out, &content);
	ck_assert_int_gt(clen, 0);
	ck_assert_int_eq(
	        cms_certs_only_parse((uint8_t *)content, (size_t)clen, &certs, &n), MDM_OK);
	ck_assert_uint_eq(n, 2);
	free_certs(certs, n);
	/* A signed message is not certificates-only. */
	ck_assert_int_eq(cms_certs_only_parse(der, len, &certs, &n), MDM_ERR_PARSE);
	ck_assert_ptr_null(certs);
	BIO_free(out);
	CMS_ContentInfo_free(cms);
	free(der);
	ck_assert_int_eq(cms_sign_certs_only(ca, client_key, v, 2, &der, &len), MDM_ERR_INVAL);
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

/* DER SEQUENCE of two encodings. */
static uint8_t *der_seq2(const uint8_t *a, size_t an, const uint8_t *b, size_t bn, size_t *len)
{
	size_t body = an + bn, hl = body < 0x80 ? 2 : body < 0x100 ? 3 : 4;
	uint8_t *d = malloc(hl + body);

	ck_assert_ptr_nonnull(d);
	d[0] = 0x30;
	if (hl == 2) {
		d[1] = (uint8_t)body;
	} else if (hl == 3) {
		d[1] = 0x81;
		d[2] = (uint8_t)body;
	} else {
		d[1] = 0x82;
		d[2] = (uint8_t)(body >> 8);
		d[3] = (uint8_t)body;
	}
	memcpy(d + hl, a, an);
	memcpy(d + hl + an, b, bn);
	*len = hl + body;
	return d;
}

START_TEST(issuer_and_serial)
{
	PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
	uint8_t *der = NULL, *big;
	char *issuer = (char *)&der, *serial = (char *)&der;
	int len;

	ck_assert_ptr_nonnull(ias);
	ck_assert_int_eq(X509_NAME_set(&ias->issuer, X509_get_issuer_name(issued)), 1);
	ck_assert_int_eq(ASN1_STRING_copy(ias->serial, X509_get0_serialNumber(issued)), 1);
	len = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(cms_scep_issuer_and_serial(der, (size_t)len, &issuer, &serial), MDM_OK);
	ck_assert_str_eq(issuer, "CN=MDM Test CA,O=MDM Test");
	ck_assert_str_eq(serial, "A1B2C");
	free(issuer);
	free(serial);
	/* Truncated everywhere, one trailing byte: refused, outputs NULL. */
	for (int i = 0; i < len; i++) {
		issuer = serial = (char *)&der;
		ck_assert_int_eq(cms_scep_issuer_and_serial(der, (size_t)i, &issuer, &serial),
		        MDM_ERR_PARSE);
		ck_assert_ptr_null(issuer);
		ck_assert_ptr_null(serial);
	}
	big = malloc((size_t)len + 1);
	memcpy(big, der, (size_t)len);
	big[len] = 0;
	ck_assert_int_eq(
	        cms_scep_issuer_and_serial(big, (size_t)len + 1, &issuer, &serial), MDM_ERR_PARSE);
	free(big);
	OPENSSL_free(der);
	der = NULL;
	/* Negative serial numbers and zero. */
	ck_assert_int_eq(ASN1_INTEGER_set(ias->serial, -5), 1);
	len = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
	ck_assert_int_eq(
	        cms_scep_issuer_and_serial(der, (size_t)len, &issuer, &serial), MDM_ERR_PARSE);
	OPENSSL_free(der);
	der = NULL;
	ck_assert_int_eq(ASN1_INTEGER_set(ias->serial, 0), 1);
	len = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
	ck_assert_int_eq(cms_scep_issuer_and_serial(der, (size_t)len, &issuer, &serial), MDM_OK);
	ck_assert_str_eq(serial, "0");
	free(issuer);
	free(serial);
	OPENSSL_free(der);
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	ck_assert_int_eq(cms_scep_issuer_and_serial(NULL, 0, &issuer, &serial), MDM_ERR_PARSE);
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

START_TEST(issuer_and_subject)
{
	uint8_t *a = NULL, *b = NULL, *der;
	int an = i2d_X509_NAME(X509_get_issuer_name(issued), &a);
	int bn = i2d_X509_NAME(X509_get_subject_name(issued), &b);
	char *issuer = NULL, *subject = NULL;
	size_t len;

	ck_assert_int_gt(an, 0);
	ck_assert_int_gt(bn, 0);
	der = der_seq2(a, (size_t)an, b, (size_t)bn, &len);
	ck_assert_int_eq(cms_scep_issuer_and_subject(der, len, &issuer, &subject), MDM_OK);
	ck_assert_str_eq(issuer, "CN=MDM Test CA,O=MDM Test");
	ck_assert_str_eq(subject, "O=MDM Test,CN=device-0001");
	free(issuer);
	free(subject);
	for (size_t i = 0; i < len; i++) {
		issuer = subject = (char *)&der;
		ck_assert_int_eq(
		        cms_scep_issuer_and_subject(der, i, &issuer, &subject), MDM_ERR_PARSE);
		ck_assert_ptr_null(issuer);
		ck_assert_ptr_null(subject);
	}
	free(der);
	/* An IssuerAndSerialNumber is not an IssuerAndSubject. */
	{
		uint8_t i2[] = {0x02, 0x01, 0x05};

		der = der_seq2(a, (size_t)an, i2, sizeof(i2), &len);
		ck_assert_int_eq(
		        cms_scep_issuer_and_subject(der, len, &issuer, &subject), MDM_ERR_PARSE);
		ck_assert_int_eq(cms_scep_issuer_and_serial(der, len, &issuer, &subject), MDM_OK);
		ck_assert_str_eq(subject, "5");
		free(issuer);
		free(subject);
		free(der);
	}
	OPENSSL_free(a);
	OPENSSL_free(b);
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

/* ---- hostile ---- */

START_TEST(flipped_bytes)
{
	struct cms_request_params p = req_params();
	size_t len, off;
	uint8_t *der = request(&p, &len);
	struct cms_scep_msg *m = parse_ok(der, len);
	CMS_ContentInfo *cms;
	ASN1_OCTET_STRING *sig;
	const unsigned char *q = der;

	/* In the signature. */
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	ck_assert_ptr_nonnull(cms);
	sig = CMS_SignerInfo_get0_signature(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0));
	off = find(der, len, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig));
	ck_assert_uint_ne(off, (size_t)-1);
	CMS_ContentInfo_free(cms);
	der[off + 100] ^= 0x20;
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "RFC 5652 5.6");
	der[off + 100] ^= 0x20;
	/* In the signed attributes: the transactionID and the challenge. */
	off = find(der, len, p.transaction_id, strlen(p.transaction_id));
	ck_assert_uint_ne(off, (size_t)-1);
	der[off + 3] ^= 0x01;
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "signature");
	der[off + 3] ^= 0x01;
	off = find(der, len, "s3cret", 6);
	ck_assert_uint_ne(off, (size_t)-1);
	der[off] = 'S';
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
	der[off] = 's';
	/* In the content (the pkcsPKIEnvelope), at its start, middle and end. */
	off = find(der, len, m->envelope, m->envelope_len);
	ck_assert_uint_ne(off, (size_t)-1);
	{
		size_t at[] = {4, m->envelope_len / 2, m->envelope_len - 1};

		for (size_t i = 0; i < 3; i++) {
			der[off + at[i]] ^= 0x80;
			check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
			der[off + at[i]] ^= 0x80;
		}
	}
	cms_scep_msg_free(m);
	m = parse_ok(der, len); /* restored */
	cms_scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(signer_checks)
{
	struct raw_opts o = raw_default();
	size_t len;
	uint8_t *der;
	struct cms_scep_msg *m;

	/* The baseline is accepted: what follows fails for one reason each. */
	der = raw_build(&o, &len);
	m = parse_ok(der, len);
	ck_assert_str_eq(m->transaction_id, "tid-1");
	cms_scep_msg_free(m);
	free(der);

	/* The signer named by subjectKeyIdentifier (the CA has one) is found too. */
	o.signer = ca;
	o.key = ca_key;
	o.keyid = 1;
	der = raw_build(&o, &len);
	m = parse_ok(der, len);
	ck_assert_int_eq(X509_cmp(m->signer, ca), 0);
	cms_scep_msg_free(m);
	free(der);

	o = raw_default();
	o.nocerts = 1;
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "signer certificate not in");
	o = raw_default();
	o.second_signer = 1;
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "CMS has 2 SignerInfos");
	o = raw_default();
	o.md = EVP_md5();
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_ALG, "digest md5");
	o = raw_default();
	o.md = EVP_sha384();
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_ALG, "digest sha384");
	o = raw_default();
	o.signer = ec;
	o.key = ec_key;
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_ALG, "RFC 8894 3.5.2");
	o = raw_default();
	o.econtent_oid = "1.2.840.113549.1.7.2";
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "not data");
	o = raw_default();
	o.n_attrs = 0;
	o.attrs[0] = (struct raw_attr){OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, "t", 1, 0};
	o.n_attrs = 1;
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "messageType attribute missing");
}
END_TEST

/* Found by scep_fuzz: a signer certificate that parses but whose key does not. */
START_TEST(signer_key_undecodable)
{
	struct cms_request_params p = req_params();
	const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(client);
	size_t len, off;
	uint8_t *der = request(&p, &len);

	off = find(der, len, ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits));
	ck_assert_uint_ne(off, (size_t)-1);
	ck_assert_int_eq(der[off], 0x30); /* RSAPublicKey SEQUENCE */
	der[off] = 0x31;
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "does not decode");
	free(der);
}
END_TEST

START_TEST(attribute_checks)
{
	static const uint8_t n4[4] = {1, 2, 3, 4}, n17[17] = {0}, n32[32] = {0};
	static const struct {
		struct raw_attr a; /* replaces attrs[idx] (idx 3: appended) */
		int idx;
		int two_values;
		const char *msg;
	} cases[] = {
	        {{OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, "tid-1", 5, 1}, 1, 0,
	                "transactionID attribute appears more than once"},
	        {{OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "19", 2, 0}, 0, 1,
	                "messageType attribute has 2 values"},
	        {{OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "19", 2, 1}, 0, 0,
	                "messageType attribute appears more than once"},
	        {{OID_SENDER_NONCE, V_ASN1_OCTET_STRING, n4, 4, 0}, 2, 0, "senderNonce of 4 bytes"},
	        {{OID_SENDER_NONCE, V_ASN1_OCTET_STRING, n17, 17, 0}, 2, 0,
	                "senderNonce of 17 bytes"},
	        {{OID_SENDER_NONCE, V_ASN1_OCTET_STRING, n32, 32, 0}, 2, 0,
	                "senderNonce of 32 bytes"},
	        {{OID_SENDER_NONCE, V_ASN1_PRINTABLESTRING, "0123456789abcdef", 16, 0}, 2, 0,
	                "senderNonce is not an OCTET STRING"},
	        {{OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce16, 16, 1}, 2, 0,
	                "senderNonce attribute appears more than once"},
	        {{OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "99", 2, 0}, 0, 0,
	                "unknown messageType"},
	        {{OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "019", 3, 0}, 0, 0,
	                "unknown messageType"},
	        {{OID_MESSAGE_TYPE, V_ASN1_UTF8STRING, "19", 2, 0}, 0, 0,
	                "messageType is not a PrintableString"},
	        {{OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, "tid_1", 5, 0}, 1, 0,
	                "outside PrintableString"},
	        {{OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, "", 0, 0}, 1, 0,
	                "transactionID of 0 bytes"},
	        {{OID_TRANSACTION_ID, V_ASN1_IA5STRING, "tid-1", 5, 0}, 1, 0,
	                "transactionID is not a PrintableString"},
	        {{OID_SENDER_NONCE, V_ASN1_OCTET_STRING, nonce16, 16, 0}, -1, 0, NULL},
	        {{OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "0", 1, 0}, 3, 0,
	                "pkiStatus or failInfo in a request"},
	        {{OID_CHALLENGE, V_ASN1_PRINTABLESTRING, "a\x01", 2, 0}, 3, 0,
	                "challengePassword has control"},
	        {{OID_CHALLENGE, V_ASN1_UTF8STRING, "\xc0\xaf", 2, 0}, 3, 0,
	                "challengePassword is not valid UTF-8"},
	        {{OID_CHALLENGE, V_ASN1_IA5STRING, "pw", 2, 0}, 3, 0,
	                "challengePassword is neither"},
	        {{OID_CHALLENGE, V_ASN1_PRINTABLESTRING, "pw", 2, 1}, 3, 0,
	                "challengePassword attribute appears more than once"},
	        {{"1.2.840.113549.1.9.5", V_ASN1_PRINTABLESTRING, "now", 3, 0}, 3, 0,
	                "signingTime is not a Time"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct raw_opts o = raw_default();

		if (cases[i].idx == -1) {
			/* senderNonce missing from a request */
			o.n_attrs = 2;
			raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST,
			        "senderNonce attribute missing");
			continue;
		}
		if (cases[i].idx == 3)
			o.n_attrs = 4;
		o.attrs[cases[i].idx] = cases[i].a;
		if (cases[i].two_values) {
			/* two values in attrs[0] */
			o.two_values = 1;
		}
		raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, cases[i].msg);
	}
	/* 8 to 16 byte nonces are taken; unknown attributes are ignored. */
	{
		struct raw_opts o = raw_default();
		static const uint8_t n8[8] = {9, 9, 9, 9, 9, 9, 9, 9};
		struct cms_scep_msg *m;
		uint8_t *der;
		size_t len;

		o.attrs[2] = (struct raw_attr){OID_SENDER_NONCE, V_ASN1_OCTET_STRING, n8, 8, 0};
		o.attrs[3] =
		        (struct raw_attr){"1.2.840.113549.1.9.25.3", V_ASN1_OCTET_STRING, n8, 8, 1};
		o.n_attrs = 4;
		der = raw_build(&o, &len);
		m = parse_ok(der, len);
		ck_assert_uint_eq(m->sender_nonce_len, 8);
		ck_assert_mem_eq(m->sender_nonce, n8, 8);
		cms_scep_msg_free(m);
		free(der);
	}
}
END_TEST

START_TEST(certrep_attribute_checks)
{
	struct raw_opts o = raw_default();

	o.attrs[0] = (struct raw_attr){OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "3", 1, 0};
	o.n_attrs = 2; /* no pkiStatus */
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "CertRep without pkiStatus");
	o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "2", 1, 0};
	o.n_attrs = 3;
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "FAILURE without failInfo");
	o.attrs[3] = (struct raw_attr){OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, "14606", 5, 0};
	o.n_attrs = 4;
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "unknown failInfo");
	/* FAILURE carrying an envelope. */
	o.attrs[3] = (struct raw_attr){OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, "2", 1, 0};
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "carries a pkcsPKIEnvelope");
	o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "0", 1, 0};
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "failInfo in a CertRep that is not");
	o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "1", 1, 0};
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "unknown pkiStatus");
	/* SUCCESS without an envelope, with a content that is not one. */
	o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "0", 1, 0};
	o.n_attrs = 3;
	o.no_content = 1;
	o.content = (const uint8_t *)"";
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "pkcsPKIEnvelope missing");
	o.no_content = 0;
	o.content = csr;
	o.content_len = csr_len;
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "not an EnvelopedData");
	/* A detached FAILURE (no eContent) is verified against empty content. */
	{
		struct cms_scep_msg *m;
		uint8_t *der;
		size_t len;

		o = raw_default();
		o.attrs[0] = (struct raw_attr){OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "3", 1, 0};
		o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "3", 1, 0};
		o.content = (const uint8_t *)"";
		o.content_len = 0;
		o.no_content = 1;
		der = raw_build(&o, &len);
		m = parse_ok(der, len);
		ck_assert_int_eq(m->pki_status, SCEP_PENDING);
		ck_assert_ptr_null(m->envelope);
		cms_scep_msg_free(m);
		free(der);
	}
}
END_TEST

START_TEST(truncated_trailing_oversized)
{
	struct cms_request_params p = req_params();
	size_t len;
	uint8_t *der = request(&p, &len), *big;

	for (size_t i = 0; i < len; i += (i < 64 ? 1 : 13))
		check_refused(der, i, MDM_ERR_PARSE, ANY_FAIL, NULL);
	big = calloc(1, MDM_MAX_BODY_SCEP + 2);
	ck_assert_ptr_nonnull(big);
	memcpy(big, der, len);
	check_refused(big, len + 1, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "1 bytes after");
	big[len] = 0x30;
	big[len + 1] = 0x00;
	check_refused(big, len + 2, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "2 bytes after");
	/* Over the limit: refused on length alone, before any parsing. */
	check_refused(big, MDM_MAX_BODY_SCEP + 1, MDM_ERR_LIMIT, SCEP_BAD_REQUEST, "limit");
	free(big);
	free(der);
	check_refused((const uint8_t *)"", 0, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "empty");
}
END_TEST

START_TEST(bad_arguments)
{
	struct cms_scep_msg *m = NULL;
	char err[8];
	enum scep_fail_info f;

	ck_assert_int_eq(cms_scep_parse(NULL, 5, &m, &f, err, sizeof(err)), MDM_ERR_INVAL);
	ck_assert_int_eq(
	        cms_scep_parse((const uint8_t *)"x", 1, NULL, &f, err, sizeof(err)), MDM_ERR_INVAL);
	/* err and fail are optional; a short err buffer is truncated, not overrun. */
	ck_assert_int_eq(cms_scep_parse((const uint8_t *)"x", 1, &m, NULL, NULL, 0), MDM_ERR_PARSE);
	ck_assert_int_eq(
	        cms_scep_parse((const uint8_t *)"x", 1, &m, &f, err, sizeof(err)), MDM_ERR_PARSE);
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
	ck_assert_int_eq(
	        cms_scep_decrypt(NULL, ca_key, ca, &(uint8_t *){NULL}, &(size_t){0}, NULL, NULL),
	        MDM_ERR_INVAL);
	cms_scep_msg_free(NULL);
	ck_assert_str_eq(cms_digest_str(CMS_DIGEST_SHA512), "sha512");
	ck_assert_str_eq(cms_cipher_str(CMS_CIPHER_DES3), "des-ede3-cbc");
	ck_assert_str_eq(cms_cipher_str(CMS_CIPHER__MAX), "invalid");
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

/* A forged envelope: the single DES and RC2 a client might still use are refused. */
START_TEST(weak_content_ciphers)
{
	static const struct {
		const char *name;
	} weak[] = {{"DES-CBC"}, {"RC2-CBC"}, {"AES-192-CBC"}};

	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
		EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, weak[i].name, NULL);
		STACK_OF(X509) *to = sk_X509_new_null();
		BIO *in = BIO_new_mem_buf(csr, (int)csr_len);
		CMS_ContentInfo *env;
		uint8_t *der = NULL, *msg;
		struct raw_opts o = raw_default();
		struct cms_scep_msg *m;
		size_t len;
		int n;

		if (cipher == NULL) {
			/* DES and RC2 live in OpenSSL 3's legacy provider. */
			printf("cms: %s not available here; case skipped\n", weak[i].name);
			ERR_clear_error();
			sk_X509_free(to);
			BIO_free(in);
			continue;
		}
		sk_X509_push(to, ca);
		env = CMS_encrypt(to, in, cipher, CMS_BINARY);
		ck_assert_ptr_nonnull(env);
		n = i2d_CMS_ContentInfo(env, &der);
		o.content = der;
		o.content_len = (size_t)n;
		msg = raw_build(&o, &len);
		m = parse_ok(msg, len);
		decrypt_refused(m, ca_key, ca, SCEP_BAD_ALG);
		cms_scep_msg_free(m);
		free(msg);
		OPENSSL_free(der);
		CMS_ContentInfo_free(env);
		BIO_free(in);
		sk_X509_free(to);
		EVP_CIPHER_free(cipher);
	}
	/*
	 * RC2 without the legacy provider: a 3DES envelope relabelled (the
	 * two OIDs differ in their last byte only).  Refused on its label.
	 */
	{
		static const uint8_t des3[] = {
		        0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07};
		STACK_OF(X509) *to = sk_X509_new_null();
		BIO *in = BIO_new_mem_buf(csr, (int)csr_len);
		CMS_ContentInfo *env;
		uint8_t *der = NULL, *msg;
		struct raw_opts o = raw_default();
		struct cms_scep_msg *m;
		size_t len, off;
		int n;

		sk_X509_push(to, ca);
		env = CMS_encrypt(to, in, EVP_des_ede3_cbc(), CMS_BINARY);
		ck_assert_ptr_nonnull(env);
		n = i2d_CMS_ContentInfo(env, &der);
		off = find(der, (size_t)n, des3, sizeof(des3));
		ck_assert_uint_ne(off, (size_t)-1);
		der[off + sizeof(des3) - 1] = 0x02;
		o.content = der;
		o.content_len = (size_t)n;
		msg = raw_build(&o, &len);
		m = parse_ok(msg, len);
		decrypt_refused(m, ca_key, ca, SCEP_BAD_ALG);
		cms_scep_msg_free(m);
		free(msg);
		OPENSSL_free(der);
		CMS_ContentInfo_free(env);
		BIO_free(in);
		sk_X509_free(to);
	}
}
END_TEST

/* Refusals write nothing to stderr (OpenSSL included) and leave no OpenSSL error. */
START_TEST(quiet_on_stderr)
{
	struct raw_opts o = raw_default();
	FILE *tmp = tmpfile();
	size_t len;
	uint8_t *der;
	int saved, devnull;
	long size;

	ck_assert_ptr_nonnull(tmp);
	devnull = open("/dev/null", O_WRONLY);
	ck_assert_int_ge(devnull, 0);
	log_set_level(MDM_LOG_DEBUG);
	log_set_fd(devnull);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fileno(tmp), 2), 0);
	o.md = EVP_md5();
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_ALG, NULL);
	o = raw_default();
	o.nocerts = 1;
	raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
	o = raw_default();
	der = raw_build(&o, &len);
	der[len - 5] ^= 1;
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
	for (size_t i = 1; i < len; i += 97)
		check_refused(der, i, MDM_ERR_PARSE, ANY_FAIL, NULL);
	free(der);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log_set_fd(-1);
	close(devnull);
	fseek(tmp, 0, SEEK_END);
	size = ftell(tmp);
	fclose(tmp);
	ck_assert_int_eq(size, 0);
}
END_TEST

/* One refusal, one log line, naming the rule. */
START_TEST(parse_logs_once)
{
	struct raw_opts o = raw_default();
	char buf[4096];
	int fds[2];
	ssize_t n;
	size_t len;
	uint8_t *der;

	o.second_signer = 1;
	der = raw_build(&o, &len);
	ck_assert_int_eq(pipe(fds), 0);
	log_init("test", MDM_LOG_DEBUG);
	log_set_fd(fds[1]);
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
	log_set_fd(-1);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "RFC 8894 3.2: CMS has 2 SignerInfos"));
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);
	free(der);
}
END_TEST

/*
 * cms_scep_parse_unverified: reads what addresses a FAILURE CertRep from
 * messages refused for their algorithm or signature, and refuses every
 * other rule exactly as cms_scep_parse.
 */
START_TEST(unverified_parse)
{
	struct cms_request_params p = req_params();
	struct raw_opts o;
	struct cms_scep_msg *m, *u;
	CMS_ContentInfo *cms;
	ASN1_OCTET_STRING *sig;
	const unsigned char *q;
	size_t len, off;
	uint8_t *der;

	/* Real captures: accepted by both, the same fields. */
	if ((der = vector_read("cms", "scep/testdata/PKCSReq.der", &len)) != NULL) {
		m = parse_ok(der, len);
		u = unverified_ok(der, len);
		same_fields(m, u);
		ck_assert_int_eq(u->message_type, SCEP_PKCSREQ);
		ck_assert_str_eq(u->transaction_id, "A13090761A30F66664F85D37433D2065E1112BA1");
		ck_assert_uint_eq(u->sender_nonce_len, 8);
		cms_scep_msg_free(m);
		cms_scep_msg_free(u);
		free(der);
	}
	/* sscep-style MD5 request: refused by one, readable by the other. */
	if ((der = vector_read("cms", "libscep/tests/test-files/util_b64_pkcs7.bin", &len)) !=
	        NULL) {
		check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "md5");
		u = unverified_ok(der, len);
		ck_assert_int_eq(u->digest, CMS_DIGEST__MAX);
		ck_assert_str_ne(u->transaction_id, "");
		cms_scep_msg_free(u);
		free(der);
	}
	/* No signer certificate: nobody to answer, refused by both. */
	if ((der = vector_read(
	             "cms", "scep/_history/CertRep_NoCertificatesForSigners.der", &len)) != NULL) {
		both_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK,
		        "signer certificate not in the message");
		free(der);
	}

	/* A flipped signature byte: badMessageCheck, the fields still read. */
	der = request(&p, &len);
	m = parse_ok(der, len);
	q = der;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	ck_assert_ptr_nonnull(cms);
	sig = CMS_SignerInfo_get0_signature(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0));
	off = find(der, len, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig));
	ck_assert_uint_ne(off, (size_t)-1);
	CMS_ContentInfo_free(cms);
	der[off + 100] ^= 0x20;
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "RFC 5652 5.6");
	u = unverified_ok(der, len);
	same_fields(m, u);
	ck_assert_str_eq(u->transaction_id, p.transaction_id);
	ck_assert_uint_eq(u->sender_nonce_len, SCEP_NONCE_LEN);
	ck_assert_mem_eq(u->sender_nonce, nonce16, SCEP_NONCE_LEN);
	ck_assert_int_eq(X509_cmp(u->signer, client), 0);
	cms_scep_msg_free(u);
	cms_scep_msg_free(m);
	/* Truncated, trailing bytes, empty, oversized: refused by both alike. */
	for (size_t i = 0; i < len; i += (i < 64 ? 1 : 29))
		both_refused(der, i, MDM_ERR_PARSE, ANY_FAIL, NULL);
	{
		uint8_t *big = calloc(1, MDM_MAX_BODY_SCEP + 1);

		ck_assert_ptr_nonnull(big);
		memcpy(big, der, len);
		both_refused(big, len + 1, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "1 bytes after");
		both_refused(big, MDM_MAX_BODY_SCEP + 1, MDM_ERR_LIMIT, SCEP_BAD_REQUEST, "limit");
		free(big);
	}
	both_refused((const uint8_t *)"", 0, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "empty");
	free(der);

	/* MD5, SHA-384, an EC signer: the algorithm policy is not applied. */
	o = raw_default();
	o.md = EVP_md5();
	der = raw_build(&o, &len);
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "digest md5");
	u = unverified_ok(der, len);
	ck_assert_int_eq(u->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(u->digest, CMS_DIGEST__MAX);
	ck_assert_str_eq(u->transaction_id, "tid-1");
	ck_assert_uint_eq(u->sender_nonce_len, 16);
	cms_scep_msg_free(u);
	free(der);
	o = raw_default();
	o.signer = ec;
	o.key = ec_key;
	der = raw_build(&o, &len);
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "RFC 8894 3.5.2");
	u = unverified_ok(der, len);
	ck_assert_int_eq(X509_cmp(u->signer, ec), 0);
	cms_scep_msg_free(u);
	free(der);

	/* Every structural rule still holds. */
	o = raw_default();
	o.md = EVP_md5();
	o.nocerts = 1;
	der = raw_build(&o, &len);
	check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "md5");
	m = (struct cms_scep_msg *)&o;
	ck_assert_int_eq(cms_scep_parse_unverified(der, len, &m, NULL, NULL, 0), MDM_ERR_PARSE);
	ck_assert_ptr_null(m);
	free(der);
	o = raw_default();
	o.second_signer = 1;
	der = raw_build(&o, &len);
	both_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "CMS has 2 SignerInfos");
	free(der);
	o = raw_default();
	o.econtent_oid = "1.2.840.113549.1.7.2";
	der = raw_build(&o, &len);
	both_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "not data");
	free(der);
	/* Attribute rules, with MD5 so that only the unverified parse reaches them. */
	o = raw_default();
	o.md = EVP_md5();
	o.attrs[1].twice = 1;
	der = raw_build(&o, &len);
	m = (struct cms_scep_msg *)&o;
	{
		char err[256];
		enum scep_fail_info f = SCEP_FAIL_NONE;

		ck_assert_int_eq(cms_scep_parse_unverified(der, len, &m, &f, err, sizeof(err)),
		        MDM_ERR_PARSE);
		ck_assert_ptr_null(m);
		ck_assert_int_eq(f, SCEP_BAD_REQUEST);
		ck_assert_msg(strstr(err, "more than once") != NULL, "%s", err);
	}
	free(der);
	o = raw_default();
	o.md = EVP_md5();
	o.attrs[1] = o.attrs[2]; /* no transactionID */
	o.n_attrs = 2;
	der = raw_build(&o, &len);
	m = (struct cms_scep_msg *)&o;
	{
		char err[256];
		enum scep_fail_info f = SCEP_FAIL_NONE;

		ck_assert_int_eq(cms_scep_parse_unverified(der, len, &m, &f, err, sizeof(err)),
		        MDM_ERR_PARSE);
		ck_assert_ptr_null(m);
		ck_assert_int_eq(f, SCEP_BAD_REQUEST);
		ck_assert_msg(strstr(err, "transactionID attribute missing") != NULL, "%s", err);
	}
	free(der);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}
END_TEST

/*
 * The algorithm policy of RFC 8894 3.5.2, one AlgorithmIdentifier of a
 * good request changed at a time (the signature still holds).  Unlike
 * Mdm-Signature, no ECDSA, no SHA-384, and signature parameters unread.
 */
START_TEST(alg_policy)
{
	static const struct {
		int ec; /* signed by ec.pem rather than client.pem */
		enum cmstest_alg which;
		int nid, ptype;
		enum scep_fail_info want; /* SCEP_FAIL_NONE: accepted */
		const char *msg;
	} cases[] = {
	        {0, CMSTEST_SIGNATURE_ALG, NID_rsaEncryption, V_ASN1_UNDEF, SCEP_FAIL_NONE, NULL},
	        {0, CMSTEST_SIGNATURE_ALG, NID_rsaEncryption, V_ASN1_INTEGER, SCEP_FAIL_NONE, NULL},
	        {0, CMSTEST_SIGNATURE_ALG, NID_sha256WithRSAEncryption, V_ASN1_NULL, SCEP_FAIL_NONE,
	                NULL},
	        {0, CMSTEST_SIGNATURE_ALG, NID_sha256WithRSAEncryption, V_ASN1_INTEGER,
	                SCEP_FAIL_NONE, NULL},
	        {0, CMSTEST_SIGNATURE_ALG, NID_sha1WithRSAEncryption, V_ASN1_NULL, SCEP_BAD_ALG,
	                "signature algorithm"},
	        {0, CMSTEST_SIGNATURE_ALG, NID_ecdsa_with_SHA256, V_ASN1_UNDEF, SCEP_BAD_ALG,
	                "signature algorithm"},
	        {0, CMSTEST_SIGNATURE_ALG, NID_rsassaPss, V_ASN1_UNDEF, SCEP_BAD_ALG,
	                "signature algorithm"},
	        {0, CMSTEST_DIGEST_ALG, NID_sha256, V_ASN1_UNDEF, SCEP_FAIL_NONE, NULL},
	        {0, CMSTEST_DIGEST_ALG, NID_sha256, V_ASN1_INTEGER, SCEP_BAD_ALG, "RFC 5754 2"},
	        {0, CMSTEST_DIGEST_ALG, NID_sha384, V_ASN1_NULL, SCEP_BAD_ALG, "digest sha384"},
	        {0, CMSTEST_DIGEST_ALG, NID_sha224, V_ASN1_NULL, SCEP_BAD_ALG, "digest sha224"},
	        {1, CMSTEST_SIGNATURE_ALG, NID_rsaEncryption, V_ASN1_NULL, SCEP_BAD_ALG,
	                "RFC 8894 3.5.2: signer key is not RSA"},
	        {1, CMSTEST_SIGNATURE_ALG, NID_ecdsa_with_SHA256, V_ASN1_UNDEF, SCEP_BAD_ALG,
	                "signature algorithm"},
	};
	struct raw_opts o;
	struct cms_scep_msg *m;
	uint8_t *der, *mut;
	size_t len, mlen;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = raw_default();
		if (cases[i].ec) {
			o.signer = ec;
			o.key = ec_key;
		}
		der = raw_build(&o, &len);
		mut = cmstest_with_alg(
		        der, len, cases[i].which, cases[i].nid, cases[i].ptype, &mlen);
		if (cases[i].want == SCEP_FAIL_NONE) {
			m = parse_ok(mut, mlen);
			ck_assert_int_eq(m->digest, CMS_DIGEST_SHA256);
			cms_scep_msg_free(m);
		} else {
			check_refused(mut, mlen, MDM_ERR_PARSE, cases[i].want, cases[i].msg);
		}
		free(mut);
		free(der);
	}
}
END_TEST

Suite *cms_suite(void)
{
	Suite *s = suite_create("cms");
	TCase *tc;
	const int combos = CMS_DIGEST__MAX * CMS_CIPHER__MAX;

	tc = tcase_create("vectors");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, vector_macos_pkcsreq);
	tcase_add_test(tc, vector_mdmclient);
	tcase_add_test(tc, vector_windows);
	tcase_add_test(tc, vector_jscep);
	tcase_add_test(tc, vector_legacy_certreps);
	tcase_add_test(tc, vector_getcacert);
	tcase_add_test(tc, vector_apple_corpus);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, request_roundtrip, 0, combos);
	tcase_add_test(tc, request_variants);
	tcase_add_test(tc, request_bad_arguments);
	tcase_add_loop_test(tc, certrep_success_roundtrip, 0, combos);
	tcase_add_test(tc, certrep_failure_and_pending);
	tcase_add_test(tc, certrep_with_crl);
	tcase_add_test(tc, certrep_bad_arguments);
	tcase_add_test(tc, openssl_cli_verifies);
	tcase_add_test(tc, certs_only);
	tcase_add_test(tc, issuer_and_serial);
	tcase_add_test(tc, issuer_and_subject);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, flipped_bytes);
	tcase_add_test(tc, signer_checks);
	tcase_add_test(tc, signer_key_undecodable);
	tcase_add_test(tc, attribute_checks);
	tcase_add_test(tc, certrep_attribute_checks);
	tcase_add_test(tc, truncated_trailing_oversized);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, weak_content_ciphers);
	tcase_add_test(tc, quiet_on_stderr);
	tcase_add_test(tc, parse_logs_once);
	tcase_add_test(tc, unverified_parse);
	tcase_add_test(tc, alg_policy);
	suite_add_tcase(s, tc);
	return s;
}
