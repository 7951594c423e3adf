/*
 * Apple Managed Device Attestation (lib/attest.c, lib/x509_attest.c): the
 * real attestation certificate of ../shared/vectors/nanoca (serial, UDID,
 * versions, nonce; its root is the shipped file; alone, its missing
 * intermediate reported as such), and with the stand-in Apple CA
 * (tests/support/ts_attest.h) a good object verified and every refusal:
 * another root, another token's nonce, expired, no nonce, fmt, x5c
 * shape, indefinite lengths, truncation at every byte, extra keys,
 * trailing bytes, oversized input, nesting bombs and huge declared
 * lengths.  Vector cases are skipped with a note when the vectors are
 * absent.
 */
#include "attest.h"
#include "log.h"
#include "suites.h"
#include "ts_attest.h"
#include "vectors.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SHIPPED_ROOT "share/apple-enterprise-attestation-root.pem"
#define VEC_DIR      "nanoca/verifiers/apple/"
#define VEC_LEAF     VEC_DIR "apple_test.go.extracted-attestation-leaf.pem"
#define VEC_ROOT     VEC_DIR "Apple_Enterprise_Attestation_Root_CA.pem"
/* 2025-08-01 UTC: inside the real leaf's validity (2025-07-13 to 2025-10-12). */
#define T_VEC ((long long)1754006400)

#define TOKEN "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"

/* The stand-in CA (dir_a, trusted) and another one (dir_b), made once per tcase. */
static char dir_a[64], dir_b[64];
static EVP_PKEY *device_key;

static void standin_setup(void)
{
	snprintf(dir_a, sizeof(dir_a), "/tmp/mdm-attest-a-XXXXXX");
	snprintf(dir_b, sizeof(dir_b), "/tmp/mdm-attest-b-XXXXXX");
	if (mkdtemp(dir_a) == NULL || mkdtemp(dir_b) == NULL || ts_attest_ca_init(dir_a) != 0 ||
	        ts_attest_ca_init(dir_b) != 0) {
		fprintf(stderr, "attest: the stand-in CAs cannot be made\n");
		abort();
	}
}

static void standin_teardown(void)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir_a, dir_b);
	if (system(cmd) != 0)
		fprintf(stderr, "attest: %s failed\n", cmd);
}

static void key_setup(void)
{
	ck_assert_ptr_nonnull(device_key = EVP_EC_gen("P-384"));
}

static void key_teardown(void)
{
	EVP_PKEY_free(device_key);
	device_key = NULL;
}

static attest_trust *trust_of(const char *dir)
{
	char path[128];
	attest_trust *t = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, TS_ATTEST_ROOT);
	ck_assert_int_eq(attest_trust_load(path, &t), MDM_OK);
	ck_assert_ptr_nonnull(t);
	return t;
}

static struct ts_attest_opts opts(void)
{
	return (struct ts_attest_opts){.token = (const uint8_t *)TOKEN, .token_len = strlen(TOKEN)};
}

static uint8_t *object(const char *dir, const struct ts_attest_opts *o, size_t *len)
{
	uint8_t *obj = ts_attest_object(dir, device_key, o, len);

	ck_assert_ptr_nonnull(obj);
	return obj;
}

/* attest_verify_apple of obj against dir_a's root with TOKEN, now. */
static mdm_err verify(const uint8_t *obj, size_t len, char *err, size_t errlen, attest_result *r)
{
	attest_trust *t = trust_of(dir_a);
	mdm_err rc = attest_verify_apple(t, obj, len, (const uint8_t *)TOKEN, strlen(TOKEN),
	        (long long)time(NULL), r, err, errlen);

	attest_trust_free(t);
	return rc;
}

/* verify() must refuse with rc, err containing want, and leave r empty. */
static void refused(const uint8_t *obj, size_t len, mdm_err want_rc, const char *want)
{
	attest_result r;
	char err[512] = "";
	mdm_err rc = verify(obj, len, err, sizeof(err), &r);

	ck_assert_msg(rc == want_rc, "rc %s, not %s (%s)", err_str(rc), err_str(want_rc), err);
	ck_assert_msg(strstr(err, want) != NULL, "\"%s\" lacks \"%s\"", err, want);
	ck_assert_ptr_null(r.spki_der);
	ck_assert_ptr_null(r.chain_pem);
	ck_assert_str_eq(r.serial, "");
}

/* attest_parse only (no certificates needed). */
static void parse_refused(const uint8_t *obj, size_t len, mdm_err want_rc, const char *want)
{
	attest_object o;
	char err[512] = "";
	mdm_err rc = attest_parse(obj, len, &o, err, sizeof(err));

	ck_assert_msg(rc == want_rc, "rc %s, not %s (%s)", err_str(rc), err_str(want_rc), err);
	ck_assert_msg(strstr(err, want) != NULL, "\"%s\" lacks \"%s\"", err, want);
	ck_assert_uint_eq(o.n_x5c, 0);
}

/* ---- a small CBOR writer for the hostile objects ---- */

struct cb {
	uint8_t b[4096];
	size_t n;
};

static void cb_head(struct cb *c, unsigned major, uint64_t v)
{
	ck_assert_uint_lt(c->n + 9, sizeof(c->b));
	if (v < 24) {
		c->b[c->n++] = (uint8_t)(major << 5 | v);
	} else if (v <= 0xff) {
		c->b[c->n++] = (uint8_t)(major << 5 | 24);
		c->b[c->n++] = (uint8_t)v;
	} else if (v <= 0xffff) {
		c->b[c->n++] = (uint8_t)(major << 5 | 25);
		c->b[c->n++] = (uint8_t)(v >> 8);
		c->b[c->n++] = (uint8_t)v;
	} else {
		c->b[c->n++] = (uint8_t)(major << 5 | 27);
		for (int i = 7; i >= 0; i--)
			c->b[c->n++] = (uint8_t)(v >> (8 * i));
	}
}

static void cb_raw(struct cb *c, const void *p, size_t len)
{
	ck_assert_uint_le(c->n + len, sizeof(c->b));
	memcpy(c->b + c->n, p, len);
	c->n += len;
}

static void cb_text(struct cb *c, const char *s)
{
	cb_head(c, 3, strlen(s));
	cb_raw(c, s, strlen(s));
}

static void cb_bytes(struct cb *c, const void *p, size_t len)
{
	cb_head(c, 2, len);
	cb_raw(c, p, len);
}

/* {"fmt": "apple", "attStmt": {"x5c": [ then the caller's entries. */
static void cb_prefix(struct cb *c, size_t entries)
{
	cb_head(c, 5, 2);
	cb_text(c, "fmt");
	cb_text(c, "apple");
	cb_text(c, "attStmt");
	cb_head(c, 5, 1);
	cb_text(c, "x5c");
	cb_head(c, 4, entries);
}

/* ---- the real attestation certificate ---- */

static uint8_t *pem_to_der(const char *pem, size_t *len)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	unsigned char *der = NULL;
	int n;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_gt(n = i2d_X509(x, &der), 0);
	X509_free(x);
	BIO_free(bio);
	*len = (size_t)n;
	return der;
}

START_TEST(vector_leaf_properties)
{
	static const uint8_t nonce0[] = {0x9f, 0xf2, 0x19, 0xc2};
	size_t plen, dlen;
	uint8_t *pem = vector_read("attest", VEC_LEAF, &plen), *der;
	attest_result r;
	char err[256] = "";
	EVP_PKEY *k;
	const unsigned char *p;

	if (pem == NULL)
		return;
	der = pem_to_der((const char *)pem, &dlen);
	ck_assert_int_eq(attest_leaf_properties(der, dlen, &r, err, sizeof(err)), MDM_OK);
	ck_assert_str_eq(r.serial, "TMWFWWWP67");
	ck_assert_str_eq(r.udid, "00006030-000651690A84001C");
	ck_assert_str_eq(r.os_version, "15.5");
	ck_assert_str_eq(r.sepos_version, "15.5");
	ck_assert_str_eq(r.llb_version, "15.5");
	ck_assert_str_eq(r.model, "J514sAP");
	ck_assert_uint_eq(r.nonce_len, 32);
	ck_assert_mem_eq(r.nonce, nonce0, sizeof(nonce0));
	ck_assert_str_eq(r.secure_boot, "Full Security");
	ck_assert_int_eq(r.sip_enabled, 1);
	ck_assert_int_eq(r.kext_allowed, 0);
	ck_assert_int_eq(r.not_before, 1752399487);
	ck_assert_int_eq(r.not_after, 1760261887);
	ck_assert_ptr_null(r.chain_pem);
	/* The key: a P-384 SubjectPublicKeyInfo. */
	p = r.spki_der;
	ck_assert_ptr_nonnull(k = d2i_PUBKEY(NULL, &p, (long)r.spki_len));
	ck_assert_ptr_eq(p, r.spki_der + r.spki_len);
	ck_assert_int_eq(EVP_PKEY_get_bits(k), 384);
	EVP_PKEY_free(k);
	attest_result_free(&r);
	ck_assert_ptr_null(r.spki_der);
	OPENSSL_free(der);
	free(pem);
}
END_TEST

/* SHA-256 of the DER of the first certificate in a PEM text. */
static void cert_sha256(const char *pem, uint8_t out[SHA256_DIGEST_LENGTH])
{
	size_t len;
	uint8_t *der = pem_to_der(pem, &len);

	SHA256(der, len, out);
	OPENSSL_free(der);
}

START_TEST(vector_root_is_shipped)
{
	uint8_t a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
	size_t len;
	uint8_t *vec = vector_read("attest", VEC_ROOT, &len);
	FILE *fp;
	char shipped[8192];
	size_t n;
	BIO *bio;
	X509 *root;
	attest_trust *t = NULL;

	if (vec == NULL)
		return;
	ck_assert_ptr_nonnull(fp = fopen(SHIPPED_ROOT, "r"));
	n = fread(shipped, 1, sizeof(shipped) - 1, fp);
	fclose(fp);
	shipped[n] = '\0';
	cert_sha256((const char *)vec, a);
	cert_sha256(shipped, b);
	ck_assert_mem_eq(a, b, sizeof(a));
	/* Self-signed, P-384, and the trust store takes it. */
	bio = BIO_new_mem_buf(vec, (int)len);
	ck_assert_ptr_nonnull(root = PEM_read_bio_X509(bio, NULL, NULL, NULL));
	ck_assert_int_eq(X509_check_issued(root, root), X509_V_OK);
	ck_assert_int_eq(X509_verify(root, X509_get0_pubkey(root)), 1);
	ck_assert_int_eq(EVP_PKEY_get_bits(X509_get0_pubkey(root)), 384);
	X509_free(root);
	BIO_free(bio);
	ck_assert_int_eq(attest_trust_load(SHIPPED_ROOT, &t), MDM_OK);
	attest_trust_free(t);
	free(vec);
}
END_TEST

START_TEST(vector_leaf_alone_lacks_intermediate)
{
	size_t plen, dlen, olen;
	uint8_t *pem = vector_read("attest", VEC_LEAF, &plen), *der, *obj;
	const uint8_t *ders[1];
	attest_trust *t = NULL;
	attest_result r;
	char err[512] = "";
	X509 *leaf;
	BIO *bio;

	if (pem == NULL)
		return;
	der = pem_to_der((const char *)pem, &dlen);
	ders[0] = der;
	ck_assert_int_eq(attest_trust_load(SHIPPED_ROOT, &t), MDM_OK);
	ck_assert_int_eq(
	        attest_check_chain(t, ders, &dlen, 1, T_VEC, err, sizeof(err)), MDM_ERR_AUTH);
	ck_assert_msg(strstr(err, "lacks the issuer") != NULL &&
	                strstr(err,
	                        "intermediate Apple Enterprise Attestation Sub CA 1 must "
	                        "be in x5c") != NULL,
	        "%s", err);
	/* The same inside an attestation object: refused, not crashed. */
	bio = BIO_new_mem_buf(pem, (int)plen);
	ck_assert_ptr_nonnull(leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL));
	ck_assert_ptr_nonnull(obj = ts_attest_cbor("apple", &leaf, 1, NULL, 0, &olen));
	err[0] = '\0';
	ck_assert_int_eq(attest_verify_apple(t, obj, olen, (const uint8_t *)"x", 1, T_VEC, &r, err,
	                         sizeof(err)),
	        MDM_ERR_AUTH);
	ck_assert_ptr_nonnull(strstr(err, "Apple Enterprise Attestation Sub CA 1"));
	free(obj);
	X509_free(leaf);
	BIO_free(bio);
	attest_trust_free(t);
	OPENSSL_free(der);
	free(pem);
}
END_TEST

/* ---- the trust file ---- */

START_TEST(trust_file_refusals)
{
	attest_trust *t = (attest_trust *)&t;
	char path[128];

	ck_assert_int_eq(attest_trust_load("/nonexistent/roots.pem", &t), MDM_ERR_CONFIG);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(attest_trust_load(NULL, &t), MDM_ERR_CONFIG);
	ck_assert_int_eq(attest_trust_load("/dev/null", &t), MDM_ERR_CONFIG);
	/* An intermediate is not a root. */
	snprintf(path, sizeof(path), "%s/%s", dir_a, TS_ATTEST_SUB);
	ck_assert_int_eq(attest_trust_load(path, &t), MDM_ERR_CONFIG);
	ck_assert_ptr_null(t);
	/* A key file has no certificate. */
	snprintf(path, sizeof(path), "%s/%s", dir_a, TS_ATTEST_SUB_KEY);
	ck_assert_int_eq(attest_trust_load(path, &t), MDM_ERR_CONFIG);
}
END_TEST

/* ---- the stand-in: the good object ---- */

static void check_good(const struct ts_attest_opts *o, int macos)
{
	size_t len;
	uint8_t *obj = object(dir_a, o, &len);
	attest_result r;
	char err[512] = "";
	unsigned char *spki = NULL;
	int n;

	ck_assert_msg(verify(obj, len, err, sizeof(err), &r) == MDM_OK, "%s", err);
	ck_assert_str_eq(r.serial, "STANDIN0001");
	ck_assert_str_eq(r.udid, "00008030-000000000000001E");
	ck_assert_str_eq(r.os_version, "17.0");
	ck_assert_str_eq(r.sepos_version, "17.0");
	ck_assert_str_eq(r.model, "D84AP");
	ck_assert_uint_eq(r.nonce_len, 32);
	/* The attested key is the device's. */
	ck_assert_int_gt(n = i2d_PUBKEY(device_key, &spki), 0);
	ck_assert_uint_eq(r.spki_len, (size_t)n);
	ck_assert_mem_eq(r.spki_der, spki, (size_t)n);
	/* The chain for storing: leaf and intermediate. */
	ck_assert_ptr_nonnull(r.chain_pem);
	ck_assert_ptr_nonnull(
	        strstr(strstr(r.chain_pem, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
	ck_assert_int_gt(r.not_after, (long long)time(NULL));
	if (macos) {
		ck_assert_int_eq(r.sip_enabled, 1);
		ck_assert_str_eq(r.secure_boot, "Full Security");
		ck_assert_int_eq(r.kext_allowed, 0);
	} else {
		ck_assert_int_eq(r.sip_enabled, ATTEST_PROP_ABSENT);
		ck_assert_str_eq(r.secure_boot, "");
		ck_assert_int_eq(r.kext_allowed, ATTEST_PROP_ABSENT);
	}
	attest_result_free(&r);
	OPENSSL_free(spki);
	free(obj);
}

START_TEST(good_object_verifies)
{
	struct ts_attest_opts o = opts();

	check_good(&o, 0);
	o.macos = 1;
	check_good(&o, 1);
}
END_TEST

START_TEST(auth_data_is_taken_and_ignored)
{
	struct ts_attest_opts o = opts();
	static const uint8_t ad[37] = {1, 2, 3};
	X509 *x5c[2];
	attest_result r;
	char err[512] = "";
	size_t len;
	uint8_t *obj;

	ck_assert_ptr_nonnull(x5c[0] = ts_attest_leaf(dir_a, device_key, &o));
	ck_assert_ptr_nonnull(x5c[1] = ts_attest_sub(dir_a));
	ck_assert_ptr_nonnull(obj = ts_attest_cbor("apple", x5c, 2, ad, sizeof(ad), &len));
	ck_assert_msg(verify(obj, len, err, sizeof(err), &r) == MDM_OK, "%s", err);
	attest_result_free(&r);
	free(obj);
	ck_assert_ptr_nonnull(obj = ts_attest_cbor("apple", x5c, 2, ad, 0, &len));
	ck_assert_msg(verify(obj, len, err, sizeof(err), &r) == MDM_OK, "%s", err);
	attest_result_free(&r);
	free(obj);
	X509_free(x5c[0]);
	X509_free(x5c[1]);
}
END_TEST

/* ---- refusals of the certificates ---- */

START_TEST(refuses_another_root)
{
	struct ts_attest_opts o = opts();
	size_t len;
	uint8_t *obj = object(dir_b, &o, &len);

	refused(obj, len, MDM_ERR_AUTH, "chain does not lead to the Apple Enterprise Attestation");
	free(obj);
}
END_TEST

START_TEST(refuses_leaf_without_intermediate)
{
	struct ts_attest_opts o = opts();
	X509 *leaf = ts_attest_leaf(dir_a, device_key, &o);
	size_t len;
	uint8_t *obj;

	ck_assert_ptr_nonnull(leaf);
	ck_assert_ptr_nonnull(obj = ts_attest_cbor("apple", &leaf, 1, NULL, 0, &len));
	refused(obj, len, MDM_ERR_AUTH, "the intermediate " TS_ATTEST_SUB_CN " must be in x5c");
	free(obj);
	X509_free(leaf);
}
END_TEST

START_TEST(refuses_nonce_of_another_token)
{
	struct ts_attest_opts o = opts();
	size_t len;
	uint8_t *obj;

	o.token = (const uint8_t *)"another-token";
	o.token_len = strlen("another-token");
	obj = object(dir_a, &o, &len);
	refused(obj, len, MDM_ERR_AUTH, "is not SHA-256 of this challenge's token");
	free(obj);
	o = opts();
	o.wrong_nonce = 1;
	obj = object(dir_a, &o, &len);
	refused(obj, len, MDM_ERR_AUTH, "is not SHA-256 of this challenge's token");
	free(obj);
}
END_TEST

START_TEST(refuses_expired_leaf)
{
	struct ts_attest_opts o = opts();
	size_t len;
	uint8_t *obj;

	o.expired = 1;
	obj = object(dir_a, &o, &len);
	refused(obj, len, MDM_ERR_AUTH, "expired");
	free(obj);
	/* Not yet valid: a leaf of tomorrow. */
	o = opts();
	o.now = (long long)time(NULL) + 86400;
	obj = object(dir_a, &o, &len);
	refused(obj, len, MDM_ERR_AUTH, "not yet valid");
	free(obj);
}
END_TEST

START_TEST(refuses_leaf_without_nonce)
{
	struct ts_attest_opts o = opts();
	size_t len;
	uint8_t *obj;

	o.no_nonce = 1;
	obj = object(dir_a, &o, &len);
	refused(obj, len, MDM_ERR_AUTH, "lacks the freshness nonce");
	free(obj);
}
END_TEST

START_TEST(refuses_ca_as_leaf)
{
	X509 *sub = ts_attest_sub(dir_a);
	size_t len;
	uint8_t *obj;

	ck_assert_ptr_nonnull(sub);
	ck_assert_ptr_nonnull(obj = ts_attest_cbor("apple", &sub, 1, NULL, 0, &len));
	refused(obj, len, MDM_ERR_AUTH, "is a CA");
	free(obj);
	X509_free(sub);
}
END_TEST

START_TEST(refuses_malformed_extensions)
{
	struct ts_attest_opts o = opts();
	char longer[80];
	size_t len;
	uint8_t *obj;

	o.serial = "TAB\tSERIAL";
	obj = object(dir_a, &o, &len);
	refused(obj, len, MDM_ERR_PARSE,
	        "1.2.840.113635.100.8.9.1 (serial number) is not printable");
	free(obj);
	memset(longer, 'A', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	o = opts();
	o.udid = longer;
	obj = object(dir_a, &o, &len);
	refused(obj, len, MDM_ERR_PARSE, "1.2.840.113635.100.8.9.2 (UDID)");
	free(obj);
}
END_TEST

START_TEST(refuses_certificate_garbage)
{
	static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
	struct cb c = {.n = 0};

	cb_prefix(&c, 1);
	cb_bytes(&c, junk, sizeof(junk));
	refused(c.b, c.n, MDM_ERR_PARSE, "x5c[0] is not one DER X.509 certificate");
}
END_TEST

/* ---- refusals of the CBOR ---- */

START_TEST(refuses_fmt)
{
	struct ts_attest_opts o = opts();
	X509 *x5c[2];
	size_t len;
	uint8_t *obj;

	ck_assert_ptr_nonnull(x5c[0] = ts_attest_leaf(dir_a, device_key, &o));
	ck_assert_ptr_nonnull(x5c[1] = ts_attest_sub(dir_a));
	ck_assert_ptr_nonnull(obj = ts_attest_cbor("packed", x5c, 2, NULL, 0, &len));
	refused(obj, len, MDM_ERR_UNSUPPORTED, "attestation format \"packed\" is not supported");
	free(obj);
	ck_assert_ptr_nonnull(obj = ts_attest_cbor(NULL, x5c, 2, NULL, 0, &len));
	refused(obj, len, MDM_ERR_PARSE, "lacks fmt");
	free(obj);
	ck_assert_ptr_nonnull(obj = ts_attest_cbor("apple-appattest", x5c, 2, NULL, 0, &len));
	refused(obj, len, MDM_ERR_UNSUPPORTED, "not supported");
	free(obj);
	X509_free(x5c[0]);
	X509_free(x5c[1]);
}
END_TEST

START_TEST(refuses_x5c_shapes)
{
	struct cb c = {.n = 0};
	static const uint8_t der[] = {0x30, 0x00};

	/* Empty. */
	cb_prefix(&c, 0);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "x5c is empty");
	/* A text string, an integer, an empty byte string where a certificate goes. */
	c.n = 0;
	cb_prefix(&c, 1);
	cb_text(&c, "MIIB...");
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "must be a byte string (a DER certificate)");
	c.n = 0;
	cb_prefix(&c, 1);
	cb_head(&c, 0, 7);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "not an integer");
	c.n = 0;
	cb_prefix(&c, 1);
	cb_bytes(&c, der, 0);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "x5c[0] is empty");
	/* Five certificates. */
	c.n = 0;
	cb_prefix(&c, 5);
	for (int i = 0; i < 5; i++)
		cb_bytes(&c, der, sizeof(der));
	parse_refused(c.b, c.n, MDM_ERR_LIMIT, "more than 4");
	/* x5c not an array; attStmt not a map. */
	c.n = 0;
	cb_head(&c, 5, 2);
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	cb_text(&c, "attStmt");
	cb_head(&c, 5, 1);
	cb_text(&c, "x5c");
	cb_bytes(&c, der, sizeof(der));
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "attStmt.x5c must be an array");
	c.n = 0;
	cb_head(&c, 5, 2);
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	cb_text(&c, "attStmt");
	cb_head(&c, 4, 0);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "attStmt must be a map");
	/* One certificate over ATTEST_MAX_CERT: refused by its declared length. */
	c.n = 0;
	cb_prefix(&c, 1);
	cb_head(&c, 2, ATTEST_MAX_CERT + 1);
	{
		static uint8_t big[ATTEST_MAX_CERT + 64];
		size_t n = c.n;

		memcpy(big, c.b, n);
		memset(big + n, 0x30, ATTEST_MAX_CERT + 1);
		parse_refused(big, n + ATTEST_MAX_CERT + 1, MDM_ERR_LIMIT, "more than 16384");
	}
}
END_TEST

START_TEST(refuses_indefinite_lengths)
{
	static const uint8_t der[] = {0x30, 0x00};
	struct cb c = {.n = 0};

	/* The top map. */
	c.b[c.n++] = 0xbf;
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	c.b[c.n++] = 0xff;
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "only definite lengths");
	/* fmt as an indefinite text string. */
	c.n = 0;
	cb_head(&c, 5, 2);
	cb_text(&c, "fmt");
	c.b[c.n++] = 0x7f;
	cb_text(&c, "apple");
	c.b[c.n++] = 0xff;
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "an indefinite-length text string");
	/* x5c as an indefinite array, a certificate as an indefinite byte string. */
	c.n = 0;
	cb_head(&c, 5, 2);
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	cb_text(&c, "attStmt");
	cb_head(&c, 5, 1);
	cb_text(&c, "x5c");
	c.b[c.n++] = 0x9f;
	cb_bytes(&c, der, sizeof(der));
	c.b[c.n++] = 0xff;
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "an indefinite-length array");
	c.n = 0;
	cb_prefix(&c, 1);
	c.b[c.n++] = 0x5f;
	cb_bytes(&c, der, sizeof(der));
	c.b[c.n++] = 0xff;
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "an indefinite-length byte string");
}
END_TEST

START_TEST(refuses_truncation_at_every_byte)
{
	struct ts_attest_opts o = opts();
	size_t len;
	uint8_t *obj = object(dir_a, &o, &len), *copy;
	attest_object ao;

	ck_assert_int_eq(attest_parse(obj, len, &ao, NULL, 0), MDM_OK);
	ck_assert_uint_eq(ao.n_x5c, 2);
	log_set_level(MDM_LOG_ERROR); /* a refusal a byte: quiet */
	for (size_t n = 0; n < len; n++) {
		char err[512] = "";

		/* A copy of exactly n bytes, so that a read past it is a crash under ASan. */
		ck_assert_ptr_nonnull(copy = malloc(n ? n : 1));
		memcpy(copy, obj, n);
		ck_assert_msg(attest_parse(copy, n, &ao, err, sizeof(err)) == MDM_ERR_PARSE,
		        "%zu of %zu bytes: %s", n, len, err);
		ck_assert_uint_eq(ao.n_x5c, 0);
		free(copy);
	}
	log_set_level(MDM_LOG_INFO);
	refused(obj, len / 2, MDM_ERR_PARSE, "truncated");
	free(obj);
}
END_TEST

START_TEST(refuses_extra_and_duplicate_keys)
{
	static const uint8_t der[] = {0x30, 0x00};
	struct cb c = {.n = 0};

	/* A fourth key. */
	cb_head(&c, 5, 4);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "has 4 keys");
	/* An unknown key among three. */
	c.n = 0;
	cb_head(&c, 5, 3);
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	cb_text(&c, "extra");
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "unknown key \"extra\"");
	/* A key that is not text. */
	c.n = 0;
	cb_head(&c, 5, 2);
	cb_head(&c, 0, 1);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "a key of the attestation object must be a text");
	/* fmt twice. */
	c.n = 0;
	cb_head(&c, 5, 3);
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "appears twice");
	/* attStmt with a second key (sig), or another one. */
	c.n = 0;
	cb_head(&c, 5, 2);
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	cb_text(&c, "attStmt");
	cb_head(&c, 5, 2);
	cb_text(&c, "x5c");
	cb_head(&c, 4, 1);
	cb_bytes(&c, der, sizeof(der));
	cb_text(&c, "sig");
	cb_bytes(&c, der, sizeof(der));
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "exactly the key x5c, not 2 keys");
	c.n = 0;
	cb_head(&c, 5, 2);
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	cb_text(&c, "attStmt");
	cb_head(&c, 5, 1);
	cb_text(&c, "alg");
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "exactly the key x5c");
	/* No attStmt; the top not a map. */
	c.n = 0;
	cb_head(&c, 5, 1);
	cb_text(&c, "fmt");
	cb_text(&c, "apple");
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "lacks attStmt");
	c.n = 0;
	cb_head(&c, 4, 0);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "must be a map, not an array");
	/* authData not bytes. */
	c.n = 0;
	cb_head(&c, 5, 1);
	cb_text(&c, "authData");
	cb_text(&c, "x");
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "authData must be a byte string");
}
END_TEST

START_TEST(refuses_trailing_bytes)
{
	struct ts_attest_opts o = opts();
	size_t len;
	uint8_t *obj = object(dir_a, &o, &len), *more;

	ck_assert_ptr_nonnull(more = malloc(len + 1));
	memcpy(more, obj, len);
	more[len] = 0x00;
	refused(more, len + 1, MDM_ERR_PARSE, "1 bytes after the attestation object's map");
	/* A second whole object after the first. */
	ck_assert_ptr_nonnull(more = realloc(more, 2 * len));
	memcpy(more + len, obj, len);
	refused(more, 2 * len, MDM_ERR_PARSE, "bytes after the attestation object's map");
	free(more);
	free(obj);
}
END_TEST

START_TEST(refuses_oversized_input)
{
	uint8_t *big = calloc(1, MDM_ATTEST_MAX_BYTES + 1);

	ck_assert_ptr_nonnull(big);
	big[0] = 0xa2;
	refused(big, MDM_ATTEST_MAX_BYTES + 1, MDM_ERR_LIMIT, "more than 65536");
	refused(big, 0, MDM_ERR_PARSE, "empty");
	free(big);
}
END_TEST

START_TEST(refuses_nesting_bombs_and_huge_lengths)
{
	size_t n = 60000;
	uint8_t *bomb = malloc(n + 1);
	struct cb c = {.n = 0};

	/* 60000 nested one-element arrays, and the same under fmt. */
	ck_assert_ptr_nonnull(bomb);
	memset(bomb, 0x81, n);
	bomb[n] = 0x00;
	parse_refused(bomb, n + 1, MDM_ERR_PARSE, "must be a map, not an array");
	bomb[0] = 0xa1;
	bomb[1] = 0x63;
	memcpy(bomb + 2, "fmt", 3);
	parse_refused(bomb, n + 1, MDM_ERR_PARSE, "fmt must be a text string, not an array");
	/* Nested maps: the top's first value a map. */
	memset(bomb, 0xa1, n);
	parse_refused(bomb, n + 1, MDM_ERR_PARSE, "must be a text string, not a map");
	free(bomb);
	/* Declared lengths far past the input: 2^64-1 entries, bytes, keys. */
	c.n = 0;
	cb_head(&c, 5, UINT64_MAX);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "keys");
	c.n = 0;
	cb_prefix(&c, 0);
	c.n--;
	cb_head(&c, 4, UINT64_MAX);
	parse_refused(c.b, c.n, MDM_ERR_LIMIT, "more than 4");
	c.n = 0;
	cb_prefix(&c, 1);
	cb_head(&c, 2, UINT64_MAX);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "truncated");
	c.n = 0;
	cb_head(&c, 5, 2);
	cb_head(&c, 3, UINT64_MAX - 2);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "truncated");
	/* Tags, simple values, floats and a lone break where the map goes. */
	c.n = 0;
	cb_head(&c, 6, 24);
	cb_head(&c, 5, 0);
	parse_refused(c.b, c.n, MDM_ERR_PARSE, "not a tag");
	parse_refused((const uint8_t *)"\xf6", 1, MDM_ERR_PARSE, "not a simple value");
	parse_refused((const uint8_t *)"\xfb\0\0\0\0\0\0\0\0", 9, MDM_ERR_PARSE, "not a float");
	parse_refused((const uint8_t *)"\xff", 1, MDM_ERR_PARSE, "not a break");
	/* Reserved additional information (28-30): malformed. */
	parse_refused((const uint8_t *)"\x1c", 1, MDM_ERR_PARSE, "malformed CBOR");
}
END_TEST

void attest_tcases(Suite *s)
{
	TCase *vec = ts_tcase(s, "vectors", 0, NULL, NULL);
	TCase *tc = ts_tcase(s, "standin", 60, key_setup, key_teardown);

	ts_add_tests(vec, vector_leaf_properties, vector_root_is_shipped,
	        vector_leaf_alone_lacks_intermediate);
	tcase_add_unchecked_fixture(tc, standin_setup, standin_teardown);
	ts_add_tests(tc, trust_file_refusals, good_object_verifies, auth_data_is_taken_and_ignored,
	        refuses_another_root, refuses_leaf_without_intermediate,
	        refuses_nonce_of_another_token, refuses_expired_leaf, refuses_leaf_without_nonce,
	        refuses_ca_as_leaf, refuses_malformed_extensions, refuses_certificate_garbage,
	        refuses_fmt, refuses_x5c_shapes, refuses_indefinite_lengths,
	        refuses_truncation_at_every_byte, refuses_extra_and_duplicate_keys,
	        refuses_trailing_bytes, refuses_oversized_input,
	        refuses_nesting_bombs_and_huge_lengths);
}
