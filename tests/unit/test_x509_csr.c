/*
 * x509 CSRs: parsing and strict DER, the version macOS sends, signatures
 * that do not verify, challengePassword in every DirectoryString form and
 * its refusals, and comparisons with a certificate.
 */
#include "x509_testutil.h"

#include <openssl/objects.h>

#include <stdlib.h>
#include <string.h>

/* memmem is a GNU extension; the tests build without _GNU_SOURCE. */
static uint8_t *find(uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

/* ---- CSRs ---- */

START_TEST(csr_parse_and_inspect)
{
	EVP_PKEY *k = xt_load_key("device.key"), *ec = xt_load_key("ec256.key");
	struct req_opts o = {.cn = "device-1", .challenge = "s3cret"};
	X509_REQ *csr = xt_csr_new(k, &o), *csr_ec;
	char subject[128], tiny[8], *ch = NULL;

	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	ck_assert_int_eq(x509_csr_rsa_bits(csr), 2048);
	ck_assert_int_eq(x509_csr_subject(csr, subject, sizeof(subject)), MDM_OK);
	ck_assert_str_eq(subject, "CN=device-1,O=Test");
	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_csr_subject(csr, tiny, sizeof(tiny)), MDM_ERR_LIMIT);
	ck_assert_str_eq(tiny, "");
	ck_assert_int_eq(x509_csr_subject(csr, tiny, 0), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_csr_challenge(csr, &ch), MDM_OK);
	ck_assert_str_eq(ch, "s3cret");
	x509_challenge_free(ch);
	x509_challenge_free(NULL);
	csr_ec = xt_csr_new(ec, &o);
	ck_assert_int_eq(x509_csr_verify(csr_ec), MDM_OK);
	ck_assert_int_eq(x509_csr_rsa_bits(csr_ec), 0);
	x509_csr_free(csr_ec);
	x509_csr_free(csr);
	x509_csr_free(NULL);
	x509_key_free(ec);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_der_is_strict)
{
	EVP_PKEY *k = xt_load_key("device.key");
	struct req_opts o = {.cn = "device-1"};
	X509_REQ *r = xt_req_build(k, &o), *csr = (X509_REQ *)1;
	size_t len;
	uint8_t *der = xt_req_der(r, &len), *big;

	log_set_level(MDM_LOG__MAX);
	ck_assert_ptr_nonnull(big = calloc(1, X509_MAX_DER + 1));
	memcpy(big, der, len);
	ck_assert_int_eq(x509_csr_from_der(big, len + 1, &csr), MDM_ERR_PARSE);
	ck_assert_ptr_null(csr);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(x509_csr_from_der(der, i, &csr), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_csr_from_der(big, X509_MAX_DER + 1, &csr), MDM_ERR_LIMIT);
	/* A certificate is not a CSR. */
	{
		X509 *c = NULL;
		uint8_t *cder = NULL;
		size_t clen = 0;

		ck_assert_int_eq(x509_cert_load_file(DATA "client.pem", &c), MDM_OK);
		ck_assert_int_eq(x509_cert_to_der(c, &cder, &clen), MDM_OK);
		ck_assert_int_eq(x509_csr_from_der(cder, clen, &csr), MDM_ERR_PARSE);
		free(cder);
		x509_cert_free(c);
	}
	free(big);
	OPENSSL_free(der);
	X509_REQ_free(r);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_version_quirk)
{
	EVP_PKEY *k = xt_load_key("device.key");
	struct req_opts o = {.cn = "device-1", .version = 2};
	X509_REQ *r = xt_req_build(k, &o), *csr = NULL;
	size_t len;
	uint8_t *der = xt_req_der(r, &len);

	/* 2, as macOS sends: accepted. */
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	/* 1: neither RFC 2986 nor a client we know. */
	log_set_level(MDM_LOG__MAX);
	o.version = 1;
	r = xt_req_build(k, &o);
	der = xt_req_der(r, &len);
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_ERR_PARSE);
	ck_assert_ptr_null(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_bad_signature_refused)
{
	EVP_PKEY *k = xt_load_key("device.key"), *other = xt_load_key("ca2.key");
	struct req_opts o = {.cn = "device-1", .challenge = "pw"};
	X509_REQ *r = xt_req_build(k, &o), *csr = NULL;
	size_t len;
	uint8_t *der = xt_req_der(r, &len);

	xt_logcap_start();
	/* The signature is the last bytes of the DER: flip one. */
	der[len - 1] ^= 0x01;
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_ERR_AUTH);
	ck_assert(xt_logcap_take("X509_REQ_verify"));
	x509_csr_free(csr);
	OPENSSL_free(der);
	/* A subject byte changed after signing. */
	der = xt_req_der(r, &len);
	{
		uint8_t *p = find(der, len, "device-1", 8);

		ck_assert_ptr_nonnull(p);
		p[7] = '2';
	}
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_ERR_AUTH);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	/* Signed by another key than the one it carries. */
	r = xt_req_build(k, &o);
	ck_assert_int_gt(X509_REQ_sign(r, other, EVP_sha256()), 0);
	der = xt_req_der(r, &len);
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_ERR_AUTH);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	/* MD5: not an accepted signature algorithm. */
	o.md = EVP_md5();
	csr = xt_csr_new(k, &o);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_ERR_UNSUPPORTED);
	ck_assert(xt_logcap_take("not accepted"));
	x509_csr_free(csr);
	/* SHA-1, as macOS signs: accepted. */
	o.md = EVP_sha1();
	csr = xt_csr_new(k, &o);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	x509_csr_free(csr);
	xt_logcap_stop();
	x509_key_free(other);
	x509_key_free(k);
}
END_TEST

static mdm_err challenge_of(EVP_PKEY *k, const struct req_opts *o, char **out)
{
	X509_REQ *csr = xt_csr_new(k, o);
	mdm_err rc = x509_csr_challenge(csr, out);

	x509_csr_free(csr);
	return rc;
}

START_TEST(csr_challenge_forms)
{
	EVP_PKEY *k = xt_load_key("device.key");
	struct req_opts o = {.cn = "device-1"};
	char *ch = (char *)1, big[300];
	/* "pwé" as UCS-2 and UCS-4, big-endian. */
	static const char bmp[] = {0, 'p', 0, 'w', 0, (char)0xe9};
	static const char ucs4[] = {0, 0, 0, 'p', 0, 0, 0, 'w', 0, 0, 0, (char)0xe9};

	log_set_level(MDM_LOG__MAX);
	/* Absent. */
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_NOT_FOUND);
	ck_assert_ptr_null(ch);
	/* PrintableString (what most clients send), UTF8String, BMP, Universal, T61. */
	o.challenge = "03DD5575C1694064";
	o.challenge_type = V_ASN1_PRINTABLESTRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "03DD5575C1694064");
	x509_challenge_free(ch);
	o.challenge = "pw\xc3\xa9";
	o.challenge_type = V_ASN1_UTF8STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "pw\xc3\xa9");
	x509_challenge_free(ch);
	o.challenge = bmp;
	o.challenge_len = sizeof(bmp);
	o.challenge_type = V_ASN1_BMPSTRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "pw\xc3\xa9");
	x509_challenge_free(ch);
	o.challenge = ucs4;
	o.challenge_len = sizeof(ucs4);
	o.challenge_type = V_ASN1_UNIVERSALSTRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "pw\xc3\xa9");
	x509_challenge_free(ch);
	o.challenge = "pw\xe9"; /* T61 read as Latin-1 */
	o.challenge_len = 0;
	o.challenge_type = V_ASN1_T61STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "pw\xc3\xa9");
	x509_challenge_free(ch);
	/* Exactly 255 bytes: fine; 256: over the limit. */
	memset(big, 'a', sizeof(big));
	big[255] = '\0';
	o.challenge = big;
	o.challenge_type = V_ASN1_PRINTABLESTRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_uint_eq(strlen(ch), 255);
	x509_challenge_free(ch);
	big[255] = 'a';
	big[256] = '\0';
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_LIMIT);
	ck_assert_ptr_null(ch);
	/* 128 two-byte characters: 256 bytes of UTF-8, over the limit too. */
	for (int i = 0; i < 128; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[256] = '\0';
	o.challenge_type = V_ASN1_UTF8STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_LIMIT);
	/* Not a DirectoryString. */
	o.challenge = "pw";
	o.challenge_type = V_ASN1_IA5STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_PARSE);
	o.challenge_type = V_ASN1_OCTET_STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_PARSE);
	/* A NUL inside: a C string would cut it short. */
	o.challenge = "ab\0cd";
	o.challenge_len = 5;
	o.challenge_type = V_ASN1_UTF8STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_PARSE);
	/* Malformed UTF-8. */
	o.challenge = "\xc3(";
	o.challenge_len = 0;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_PARSE);
	ck_assert_ptr_null(ch);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_challenge_must_be_single)
{
	EVP_PKEY *k = xt_load_key("device.key");
	struct req_opts o = {.cn = "device-1", .challenge = "one"};
	X509_REQ *r = xt_req_build(k, &o), *csr = NULL;
	X509_ATTRIBUTE *attr;
	size_t len;
	uint8_t *der;
	char *ch = NULL;

	log_set_level(MDM_LOG__MAX);
	/* Two values in the one attribute. */
	attr = X509_REQ_get_attr(r, X509_REQ_get_attr_by_NID(r, NID_pkcs9_challengePassword, -1));
	ck_assert_int_eq(X509_ATTRIBUTE_set1_data(attr, MBSTRING_UTF8, "two", 3), 1);
	ck_assert_int_eq(X509_ATTRIBUTE_count(attr), 2);
	der = xt_req_der(r, &len);
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_challenge(csr, &ch), MDM_ERR_PARSE);
	ck_assert_ptr_null(ch);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	/*
	 * The attribute twice: OpenSSL will not build that, so an
	 * unstructuredName (1.2.840.113549.1.9.2) is renamed to
	 * challengePassword (.9.7) in the DER.
	 */
	r = xt_req_build(k, &o);
	ck_assert_int_eq(X509_REQ_add1_attr_by_NID(r, NID_pkcs9_unstructuredName, MBSTRING_UTF8,
	                         (const unsigned char *)"other", 5),
	        1);
	der = xt_req_der(r, &len);
	{
		static const uint8_t oid[] = {
		        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x02};
		uint8_t *p = find(der, len, oid, sizeof(oid));

		ck_assert_ptr_nonnull(p);
		p[sizeof(oid) - 1] = 0x07;
	}
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_challenge(csr, &ch), MDM_ERR_PARSE);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_matches_cert)
{
	EVP_PKEY *cak = xt_load_key("ca.key"), *dk = xt_load_key("device.key"),
	         *ek = xt_load_key("ec256.key");
	X509 *ca = xt_ca_new(cak, NOW, 3650), *c = xt_issue(ca, cak, dk, NOW);
	struct req_opts same = {.cn = "device-1"}, other = {.cn = "device-2"};
	X509_REQ *a = xt_csr_new(dk, &same), *b = xt_csr_new(dk, &other),
	         *e = xt_csr_new(ek, &same);

	/* RFC 8894 2.3: a renewal's CSR carries the same key, the same subject. */
	ck_assert_int_eq(x509_csr_key_matches_cert(a, c), 1);
	ck_assert_int_eq(x509_csr_subject_matches_cert(a, c), 1);
	ck_assert_int_eq(x509_csr_key_matches_cert(b, c), 1);
	ck_assert_int_eq(x509_csr_subject_matches_cert(b, c), 0);
	ck_assert_int_eq(x509_csr_key_matches_cert(e, c), 0);
	ck_assert_int_eq(x509_csr_subject_matches_cert(e, c), 1);
	ck_assert_int_eq(x509_csr_key_matches_cert(a, ca), 0);
	ck_assert_int_eq(x509_csr_subject_matches_cert(a, ca), 0);
	ck_assert_int_eq(x509_csr_key_matches_cert(NULL, c), 0);
	ck_assert_int_eq(x509_csr_subject_matches_cert(a, NULL), 0);
	x509_csr_free(a);
	x509_csr_free(b);
	x509_csr_free(e);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(ek);
	x509_key_free(dk);
	x509_key_free(cak);
}
END_TEST

void x509_csr_tests(TCase *tc)
{
	ts_add_tests(tc, csr_parse_and_inspect, csr_der_is_strict, csr_version_quirk,
	        csr_bad_signature_refused, csr_challenge_forms, csr_challenge_must_be_single,
	        csr_matches_cert);
}
