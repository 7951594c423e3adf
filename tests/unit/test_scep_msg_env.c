/*
 * cms (the pkcsPKIEnvelope, lib/scep_msg_env.c): real SCEP messages
 * (macOS PKCSReq and mdmclient, Windows, jscep, micromdm, NDES, sscep)
 * parse and decrypt or are refused for the rule they break; weak content
 * ciphers (single DES, RC2) are refused unless asked for; the
 * IssuerAndSerialNumber and IssuerAndSubject of CertPoll, GetCert and
 * GetCRL are read strictly.  Its tcases join the "cms" suite
 * (test_cms.c).
 *
 * Real captures come from the shared vectors (MDM_VECTORS, default
 * ../shared/vectors); they are read in place, never copied into the tree,
 * and their cases are skipped with a message when absent.
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
	struct scep_msg *m;
	enum cms_cipher c;
	EVP_PKEY *key;
	X509 *cert;
	size_t envlen;

	if (der == NULL || want == NULL) {
		free(der);
		free(want);
		return;
	}
	m = ct_parse_ok(der, len);
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
	key = ts_pem_key(path);
	snprintf(path, sizeof(path), "%s/scep/testdata/testca/ca.crt", dir);
	cert = ts_pem_cert(path);
	out = ct_decrypt_ok(m, key, cert, &outlen, &c);
	ck_assert_int_eq(c, CMS_CIPHER_DES3);
	ck_assert_uint_eq(outlen, csrlen);
	ck_assert_mem_eq(out, want, csrlen);
	free(out);

	/* Not ours: refused before any private-key operation. */
	ct_decrypt_refused(m, ca_key, ca, SCEP_BAD_MESSAGE_CHECK);
	/*
	 * Our certificate, a wrong key: OpenSSL goes on with a random content
	 * key (the Bleichenbacher defence), so this fails or, rarely, yields
	 * garbage; never the CSR.
	 */
	{
		enum scep_fail_info f = SCEP_FAIL_NONE;
		mdm_err e;

		out = NULL;
		e = scep_msg_decrypt(m, other_key, cert, &out, &outlen, &c, &f);
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
	scep_msg_free(m);
	free(der);
	free(want);
}
END_TEST

START_TEST(vector_mdmclient)
{
	size_t len;
	uint8_t *der = vector_read("cms", "commandment/testdata/mdmclient-PKIOperation.der", &len);
	struct scep_msg *m;

	if (der == NULL)
		return;
	m = ct_parse_ok(der, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(m->digest, CMS_DIGEST_SHA512);
	ck_assert_str_eq(m->transaction_id, "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B");
	ck_assert_ptr_nonnull(m->challenge);
	ck_assert_str_eq(m->challenge, "03DD5575C1694064");
	ck_assert_uint_eq(m->sender_nonce_len, 8);
	/* Enveloped to an NDES RA whose key is not published. */
	ct_decrypt_refused(m, ca_key, ca, SCEP_BAD_MESSAGE_CHECK);
	scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(vector_windows)
{
	size_t len;
	uint8_t *der = vector_read(
	        "cms", "smallstep-pkcs7/parse_test.go.extracted/windows_scep_pkcsreq.der", &len);
	struct scep_msg *m;

	if (der == NULL)
		return;
	/* The signer's critical AKI is no concern of ours: no chain is built. */
	m = ct_parse_ok(der, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(m->digest, CMS_DIGEST_SHA1);
	ck_assert_str_eq(m->transaction_id, "252e27f890ea721a5a5790225ce6b42a02d14fbf");
	ck_assert_uint_eq(m->sender_nonce_len, 16);
	ck_assert_uint_eq(m->envelope_len, 5941);
	ct_decrypt_refused(m, ca_key, ca, SCEP_BAD_MESSAGE_CHECK);
	scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(vector_jscep)
{
	size_t len, len1;
	uint8_t *req2 = vector_read("cms", "jscep/src/samples/scep_req2.der", &len);
	uint8_t *req1 = vector_read("cms", "jscep/src/samples/scep_req1.der", &len1);
	uint8_t *der;
	struct scep_msg *m;
	X509 **certs = NULL;
	size_t n = 0;

	if (req2 == NULL || req1 == NULL) {
		free(req2);
		free(req1);
		return;
	}
	m = ct_parse_ok(req2, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(m->digest, CMS_DIGEST_SHA256);
	ck_assert_str_eq(m->transaction_id, "7XXEY-ERLPU-2JDR9");
	/* req2 wraps req1 byte for byte. */
	ck_assert_uint_eq(m->envelope_len, len1);
	ck_assert_mem_eq(m->envelope, req1, len1);
	scep_msg_free(m);
	free(req2);
	free(req1);

	if ((der = vector_read("cms", "jscep/src/samples/scep_resp2.der", &len)) != NULL) {
		uint8_t *resp1 = vector_read("cms", "jscep/src/samples/scep_resp1.der", &len1);

		m = ct_parse_ok(der, len);
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
		scep_msg_free(m);
		free(der);
	}
	/* The other layers are not pkiMessages. */
	if ((der = vector_read("cms", "jscep/src/samples/scep_req0.der", &len)) != NULL) {
		ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "RFC 5652 3");
		free(der);
	}
	if ((der = vector_read("cms", "jscep/src/samples/scep_resp1.der", &len)) != NULL) {
		ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "not a SignedData");
		free(der);
	}
	if ((der = vector_read("cms", "jscep/src/samples/scep_resp0.der", &len)) != NULL) {
		ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "0 SignerInfos");
		/* It is the certs-only content of the CertRep: one issued certificate. */
		ck_assert_int_eq(cms_certs_only_parse(der, len, &certs, &n), MDM_OK);
		ck_assert_uint_eq(n, 1);
		ct_free_certs(certs, n);
		free(der);
	}
}
END_TEST

START_TEST(vector_legacy_certreps)
{
	size_t len;
	uint8_t *der;
	struct scep_msg *m;

	/* micromdm 2016 answering PKCSReq.der: 8-byte recipientNonce, single DES inside. */
	if ((der = vector_read("cms", "scep/_history/CertRep.der", &len)) != NULL) {
		m = ct_parse_ok(der, len);
		ck_assert_int_eq(m->message_type, SCEP_CERTREP);
		ck_assert_int_eq(m->pki_status, SCEP_SUCCESS);
		ck_assert_str_eq(m->transaction_id, "A13090761A30F66664F85D37433D2065E1112BA1");
		ck_assert_uint_eq(m->recipient_nonce_len, 8);
		ck_assert_mem_eq(m->recipient_nonce, "\xae\x7f\xe8\x81\x6c\xc6\xbe\xdd", 8);
		ct_decrypt_refused(m, client_key, client, SCEP_BAD_ALG);
		scep_msg_free(m);
		free(der);
	}
	/* NDES sends no certificates: the signer must come from elsewhere. */
	if ((der = vector_read(
	             "cms", "scep/_history/CertRep_NoCertificatesForSigners.der", &len)) != NULL) {
		ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK,
		        "signer certificate not in the message");
		free(der);
	}
	/* sscep-style request: MD5. */
	if ((der = vector_read("cms", "libscep/tests/test-files/util_b64_pkcs7.bin", &len)) !=
	        NULL) {
		ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "md5");
		free(der);
	}
	/* BT's failure reply: MD5 and no certificates. */
	if ((der = vector_read("cms",
	             "apple-Security/OSX/sec/Security/Regressions/secitem/"
	             "si-63-scep.h.extracted/scep_reply_17_58_00_der.der",
	             &len)) != NULL) {
		ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, NULL);
		free(der);
	}
}
END_TEST

/* ---- the content ---- */

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
	ck_assert_int_eq(scep_msg_issuer_and_serial(der, (size_t)len, &issuer, &serial), MDM_OK);
	ck_assert_str_eq(issuer, "CN=MDM Test CA,O=MDM Test");
	ck_assert_str_eq(serial, "A1B2C");
	free(issuer);
	free(serial);
	/* Truncated everywhere, one trailing byte: refused, outputs NULL. */
	for (int i = 0; i < len; i++) {
		issuer = serial = (char *)&der;
		ck_assert_int_eq(scep_msg_issuer_and_serial(der, (size_t)i, &issuer, &serial),
		        MDM_ERR_PARSE);
		ck_assert_ptr_null(issuer);
		ck_assert_ptr_null(serial);
	}
	big = malloc((size_t)len + 1);
	memcpy(big, der, (size_t)len);
	big[len] = 0;
	ck_assert_int_eq(
	        scep_msg_issuer_and_serial(big, (size_t)len + 1, &issuer, &serial), MDM_ERR_PARSE);
	free(big);
	OPENSSL_free(der);
	der = NULL;
	/* Negative serial numbers and zero. */
	ck_assert_int_eq(ASN1_INTEGER_set(ias->serial, -5), 1);
	len = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
	ck_assert_int_eq(
	        scep_msg_issuer_and_serial(der, (size_t)len, &issuer, &serial), MDM_ERR_PARSE);
	OPENSSL_free(der);
	der = NULL;
	ck_assert_int_eq(ASN1_INTEGER_set(ias->serial, 0), 1);
	len = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
	ck_assert_int_eq(scep_msg_issuer_and_serial(der, (size_t)len, &issuer, &serial), MDM_OK);
	ck_assert_str_eq(serial, "0");
	free(issuer);
	free(serial);
	OPENSSL_free(der);
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	ck_assert_int_eq(scep_msg_issuer_and_serial(NULL, 0, &issuer, &serial), MDM_ERR_PARSE);
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
	ck_assert_int_eq(scep_msg_issuer_and_subject(der, len, &issuer, &subject), MDM_OK);
	ck_assert_str_eq(issuer, "CN=MDM Test CA,O=MDM Test");
	ck_assert_str_eq(subject, "O=MDM Test,CN=device-0001");
	free(issuer);
	free(subject);
	for (size_t i = 0; i < len; i++) {
		issuer = subject = (char *)&der;
		ck_assert_int_eq(
		        scep_msg_issuer_and_subject(der, i, &issuer, &subject), MDM_ERR_PARSE);
		ck_assert_ptr_null(issuer);
		ck_assert_ptr_null(subject);
	}
	free(der);
	/* An IssuerAndSerialNumber is not an IssuerAndSubject. */
	{
		uint8_t i2[] = {0x02, 0x01, 0x05};

		der = der_seq2(a, (size_t)an, i2, sizeof(i2), &len);
		ck_assert_int_eq(
		        scep_msg_issuer_and_subject(der, len, &issuer, &subject), MDM_ERR_PARSE);
		ck_assert_int_eq(scep_msg_issuer_and_serial(der, len, &issuer, &subject), MDM_OK);
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
		struct raw_opts o = ct_raw_default();
		struct scep_msg *m;
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
		msg = ct_raw_build(&o, &len);
		m = ct_parse_ok(msg, len);
		ct_decrypt_refused(m, ca_key, ca, SCEP_BAD_ALG);
		scep_msg_free(m);
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
		struct raw_opts o = ct_raw_default();
		struct scep_msg *m;
		size_t len, off;
		int n;

		sk_X509_push(to, ca);
		env = CMS_encrypt(to, in, EVP_des_ede3_cbc(), CMS_BINARY);
		ck_assert_ptr_nonnull(env);
		n = i2d_CMS_ContentInfo(env, &der);
		off = ct_find(der, (size_t)n, des3, sizeof(des3));
		ck_assert_uint_ne(off, (size_t)-1);
		der[off + sizeof(des3) - 1] = 0x02;
		o.content = der;
		o.content_len = (size_t)n;
		msg = ct_raw_build(&o, &len);
		m = ct_parse_ok(msg, len);
		ct_decrypt_refused(m, ca_key, ca, SCEP_BAD_ALG);
		scep_msg_free(m);
		free(msg);
		OPENSSL_free(der);
		CMS_ContentInfo_free(env);
		BIO_free(in);
		sk_X509_free(to);
	}
}
END_TEST

void scep_msg_env_tests(TCase *vectors, TCase *roundtrip, TCase *hostile)
{
	ts_add_tests(vectors, vector_macos_pkcsreq, vector_mdmclient, vector_windows, vector_jscep,
	        vector_legacy_certreps);
	ts_add_tests(roundtrip, issuer_and_serial, issuer_and_subject);
	ts_add_tests(hostile, weak_content_ciphers);
}
