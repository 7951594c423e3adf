/*
 * Helpers shared by the CMS test files (cmstest.h): the throw-away keys
 * and certificates of tests/unit/data/cms, parse and build wrappers that
 * assert, and hostile messages built with OpenSSL directly.
 */
#include "cmstest.h"
#include "log.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

const uint8_t nonce16[SCEP_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ---- fixture ---- */

X509 *ca, *client, *other, *ec, *issued;
EVP_PKEY *ca_key, *client_key, *other_key, *ec_key;
uint8_t *csr;
size_t csr_len;

void cmstest_setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ca = ts_pem_cert(DATA "/ca.pem");
	client = ts_pem_cert(DATA "/client.pem");
	other = ts_pem_cert(DATA "/other.pem");
	ec = ts_pem_cert(DATA "/ec.pem");
	issued = ts_pem_cert(DATA "/issued.pem");
	ca_key = ts_pem_key(DATA "/ca.key");
	client_key = ts_pem_key(DATA "/client.key");
	other_key = ts_pem_key(DATA "/other.key");
	ec_key = ts_pem_key(DATA "/ec.key");
	csr = ts_file_get(DATA "/csr.der", &csr_len);
}

void cmstest_teardown(void)
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

size_t ct_find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; m > 0 && i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return i;
	return (size_t)-1;
}

struct scep_msg *ct_parse_ok(const uint8_t *der, size_t len)
{
	char err[256];
	enum scep_fail_info f = SCEP_BAD_ALG;
	struct scep_msg *m = NULL;
	mdm_err e = scep_msg_parse(der, len, &m, &f, err, sizeof(err));

	ck_assert_msg(e == MDM_OK, "parse: %s: %s", err_str(e), err);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(f, SCEP_FAIL_NONE);
	ck_assert_str_eq(err, "");
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
	return m;
}

/* Refused with want, failInfo wantf (ANY_FAIL: any) and msg in the rule. */
void ct_check_refused(
        const uint8_t *der, size_t len, mdm_err want, enum scep_fail_info wantf, const char *msg)
{
	char err[256];
	enum scep_fail_info f = SCEP_FAIL_NONE;
	struct scep_msg *m = (struct scep_msg *)err; /* must be cleared on entry */
	mdm_err e = scep_msg_parse(der, len, &m, &f, err, sizeof(err));

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

struct scep_msg_request_params ct_req_params(void)
{
	struct scep_msg_request_params p = ts_scep_params(SCEP_PKCSREQ, client, client_key, ca,
	        "0123456789ABCDEF0123456789ABCDEF01234567", csr, csr_len);

	p.cipher = CMS_CIPHER_AES128;
	p.sender_nonce = nonce16;
	p.challenge_attr = "s3cret";
	return p;
}

uint8_t *ct_request(const struct scep_msg_request_params *p, size_t *len)
{
	uint8_t *der = NULL;
	mdm_err e = scep_msg_request(p, &der, len);

	ck_assert_msg(e == MDM_OK, "scep_msg_request: %s", err_str(e));
	ck_assert_ptr_nonnull(der);
	return der;
}

struct scep_msg_certrep_params ct_rep_params(enum scep_pki_status st)
{
	static X509 *certs[2];
	struct scep_msg_certrep_params p;

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

uint8_t *ct_certrep(const struct scep_msg_certrep_params *p, size_t *len)
{
	uint8_t *der = NULL;
	mdm_err e = scep_msg_certrep(p, &der, len);

	ck_assert_msg(e == MDM_OK, "scep_msg_certrep: %s", err_str(e));
	ck_assert_ptr_nonnull(der);
	return der;
}

uint8_t *ct_decrypt_ok(
        const struct scep_msg *m, EVP_PKEY *key, X509 *cert, size_t *len, enum cms_cipher *cipher)
{
	uint8_t *out = NULL;
	enum scep_fail_info f = SCEP_BAD_ALG;
	mdm_err e = scep_msg_decrypt(m, key, cert, &out, len, cipher, &f);

	ck_assert_msg(e == MDM_OK, "decrypt: %s (failInfo %d)", err_str(e), f);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(f, SCEP_FAIL_NONE);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
	return out;
}

void ct_decrypt_refused(
        const struct scep_msg *m, EVP_PKEY *key, X509 *cert, enum scep_fail_info wantf)
{
	uint8_t *out = (uint8_t *)&out;
	size_t len = 1;
	enum cms_cipher c = CMS_CIPHER_DES3;
	enum scep_fail_info f = SCEP_FAIL_NONE;

	ck_assert_int_eq(scep_msg_decrypt(m, key, cert, &out, &len, &c, &f), MDM_ERR_PARSE);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(c, CMS_CIPHER__MAX);
	ck_assert_int_eq(f, wantf);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}

int ct_has_cert(X509 **v, size_t n, X509 *x)
{
	for (size_t i = 0; i < n; i++)
		if (X509_cmp(v[i], x) == 0)
			return 1;
	return 0;
}

void ct_free_certs(X509 **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		X509_free(v[i]);
	free(v);
}

/* ---- hostile messages, built with OpenSSL directly ---- */

/* The attributes of a valid PKCSReq. */
struct raw_opts ct_raw_default(void)
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

uint8_t *ct_raw_build(const struct raw_opts *o, size_t *len)
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

void ct_raw_refused(
        const struct raw_opts *o, mdm_err want, enum scep_fail_info wantf, const char *msg)
{
	size_t len;
	uint8_t *der = ct_raw_build(o, &len);

	ct_check_refused(der, len, want, wantf, msg);
	free(der);
}

/* ---- scep_msg_parse_unverified ---- */

struct scep_msg *ct_unverified_ok(const uint8_t *der, size_t len)
{
	char err[256];
	enum scep_fail_info f = SCEP_BAD_ALG;
	struct scep_msg *m = NULL;
	mdm_err e = scep_msg_parse_unverified(der, len, &m, &f, err, sizeof(err));

	ck_assert_msg(e == MDM_OK, "unverified: %s: %s", err_str(e), err);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(m->signer);
	ck_assert_int_eq(f, SCEP_FAIL_NONE);
	ck_assert_str_eq(err, "");
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
	return m;
}

/* Refused by both parsers with the same code, failInfo and rule. */
void ct_both_refused(
        const uint8_t *der, size_t len, mdm_err want, enum scep_fail_info wantf, const char *msg)
{
	char err[256], err2[256];
	enum scep_fail_info f = SCEP_FAIL_NONE, f2 = SCEP_FAIL_NONE;
	struct scep_msg *m = (struct scep_msg *)err; /* must be cleared on entry */
	mdm_err e;

	ct_check_refused(der, len, want, wantf, msg);
	ck_assert_int_eq(scep_msg_parse(der, len, &m, &f, err, sizeof(err)), want);
	ck_assert_ptr_null(m);
	m = (struct scep_msg *)err2;
	e = scep_msg_parse_unverified(der, len, &m, &f2, err2, sizeof(err2));
	ck_assert_msg(
	        e == want, "unverified: got %s, want %s (%s)", err_str(e), err_str(want), err2);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(f2, f);
	ck_assert_str_eq(err2, err);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}

/* Verified and unverified parses of one message read the same fields. */
void ct_same_fields(const struct scep_msg *a, const struct scep_msg *b)
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

int ct_openssl_verifies(const uint8_t *der, size_t len, const char *extra)
{
	char path[] = "/tmp/cms-test-XXXXXX";
	int fd = mkstemp(path), rc;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, der, len), (ssize_t)len);
	close(fd);
	rc = ts_sh("openssl cms -verify -noverify -inform DER -in %s %s -out /dev/null "
	           ">/dev/null 2>&1",
	        path, extra);
	unlink(path);
	return rc == 0;
}

uint8_t *cmstest_with_alg(
        const uint8_t *der, size_t len, enum cmstest_alg which, int nid, int ptype, size_t *outlen)
{
	const unsigned char *q = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	CMS_SignerInfo *si;
	X509_ALGOR *dig = NULL, *sig = NULL;
	ASN1_INTEGER *one = NULL;
	uint8_t *enc = NULL, *out;
	int n;

	ck_assert_ptr_nonnull(cms);
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	ck_assert_ptr_nonnull(si);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	ck_assert_ptr_nonnull(dig);
	ck_assert_ptr_nonnull(sig);
	if (ptype == V_ASN1_INTEGER) {
		one = ASN1_INTEGER_new();
		ck_assert_ptr_nonnull(one);
		ck_assert_int_eq(ASN1_INTEGER_set(one, 1), 1);
	}
	ck_assert_int_eq(X509_ALGOR_set0(which == CMSTEST_DIGEST_ALG ? dig : sig, OBJ_nid2obj(nid),
	                         ptype, one),
	        1);
	n = i2d_CMS_ContentInfo(cms, &enc);
	ck_assert_int_gt(n, 0);
	out = malloc((size_t)n);
	ck_assert_ptr_nonnull(out);
	memcpy(out, enc, (size_t)n);
	*outlen = (size_t)n;
	OPENSSL_free(enc);
	CMS_ContentInfo_free(cms);
	return out;
}
