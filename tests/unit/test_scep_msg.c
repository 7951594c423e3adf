/*
 * cms (the SCEP signed layer, lib/scep_msg.c): our requests and CertReps
 * round-trip for every digest and cipher and verify with the openssl
 * command line; hostile variants (flipped bytes, missing signer, MD5,
 * ECDSA, two signers, duplicated or malformed attributes, truncation,
 * trailing bytes, oversize) are refused for the rule they break, quietly
 * and once, by the verified and the unverified parse alike.  Its tcases
 * join the "cms" suite (test_cms.c).
 */
#include "cms.h"
#include "cmstest.h"
#include "log.h"
#include "mdm_limits.h"
#include "scep_msg.h"
#include "suites.h"
#include "ts_sys.h"
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

/* ---- round trips ---- */

START_TEST(request_roundtrip)
{
	enum cms_digest d = (enum cms_digest)(_i / CMS_CIPHER__MAX);
	enum cms_cipher c = (enum cms_cipher)(_i % CMS_CIPHER__MAX);
	struct scep_msg_request_params p = ct_req_params();

	struct scep_msg *m;
	enum cms_cipher got;
	uint8_t *der, *out;
	size_t len, outlen;

	/* Single DES is only ever read, never written (scep_msg_decrypt_des). */
	if (c == CMS_CIPHER_DES) {
		p.cipher = c;
		ck_assert_int_eq(scep_msg_request(&p, &der, &len), MDM_ERR_INVAL);
		return;
	}

	p.digest = d;
	p.cipher = c;
	der = ct_request(&p, &len);
	m = ct_parse_ok(der, len);
	ck_assert_int_eq(m->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(m->digest, d);
	ck_assert_str_eq(m->transaction_id, p.transaction_id);
	ck_assert_uint_eq(m->sender_nonce_len, SCEP_NONCE_LEN);
	ck_assert_mem_eq(m->sender_nonce, nonce16, SCEP_NONCE_LEN);
	ck_assert_str_eq(m->challenge, "s3cret");
	ck_assert_int_eq(X509_cmp(m->signer, client), 0);
	out = ct_decrypt_ok(m, ca_key, ca, &outlen, &got);
	ck_assert_int_eq(got, c);
	ck_assert_uint_eq(outlen, csr_len);
	ck_assert_mem_eq(out, csr, csr_len);
	/* Addressed to the CA, not to anyone else. */
	ct_decrypt_refused(m, other_key, other, SCEP_BAD_MESSAGE_CHECK);
	free(out);
	scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(request_variants)
{
	static const enum scep_message_type types[] = {
	        SCEP_RENEWALREQ, SCEP_PKCSREQ, SCEP_CERTPOLL, SCEP_GETCERT, SCEP_GETCRL};
	struct scep_msg_request_params p = ct_req_params();
	struct scep_msg *m;
	uint8_t *der, *out, *der2;
	size_t len, outlen, len2;
	enum cms_cipher c;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		p.type = types[i];
		der = ct_request(&p, &len);
		m = ct_parse_ok(der, len);
		ck_assert_int_eq(m->message_type, types[i]);
		scep_msg_free(m);
		free(der);
	}
	/* RSA-OAEP key transport, as the Windows client; random nonce; no challenge. */
	p = ct_req_params();
	p.rsa_oaep = 1;
	p.cipher = CMS_CIPHER_AES256;
	p.sender_nonce = NULL;
	p.challenge_attr = NULL;
	der = ct_request(&p, &len);
	m = ct_parse_ok(der, len);
	ck_assert_ptr_null(m->challenge);
	ck_assert_uint_eq(m->sender_nonce_len, SCEP_NONCE_LEN);
	ck_assert(memcmp(m->sender_nonce, nonce16, SCEP_NONCE_LEN) != 0);
	out = ct_decrypt_ok(m, ca_key, ca, &outlen, &c);
	ck_assert_int_eq(c, CMS_CIPHER_AES256);
	ck_assert_mem_eq(out, csr, csr_len);
	free(out);
	scep_msg_free(m);
	/* Fresh nonces differ. */
	der2 = ct_request(&p, &len2);
	m = ct_parse_ok(der2, len2);
	{
		struct scep_msg *m1 = ct_parse_ok(der, len);

		ck_assert(memcmp(m->sender_nonce, m1->sender_nonce, SCEP_NONCE_LEN) != 0);
		scep_msg_free(m1);
	}
	scep_msg_free(m);
	free(der);
	free(der2);
	/* A challenge PrintableString cannot carry goes as UTF8String. */
	p = ct_req_params();
	p.challenge_attr = "pa_ss!w\xc3\xb6rd";
	der = ct_request(&p, &len);
	m = ct_parse_ok(der, len);
	ck_assert_str_eq(m->challenge, "pa_ss!w\xc3\xb6rd");
	scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(request_bad_arguments)
{
	struct scep_msg_request_params p = ct_req_params();
	uint8_t *der = (uint8_t *)&p;
	size_t len = 1;

	ck_assert_int_eq(scep_msg_request(NULL, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert_uint_eq(len, 0);
	p.type = SCEP_CERTREP;
	ck_assert_int_eq(scep_msg_request(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_req_params();
	p.key = other_key; /* not the signer's */
	ck_assert_int_eq(scep_msg_request(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_req_params();
	p.transaction_id = "has_underscore";
	ck_assert_int_eq(scep_msg_request(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_req_params();
	p.recipient = ec; /* no RSA key transport to an EC key */
	ck_assert_int_eq(scep_msg_request(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_req_params();
	p.content_len = 0;
	ck_assert_int_eq(scep_msg_request(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_req_params();
	p.digest = CMS_DIGEST__MAX;
	ck_assert_int_eq(scep_msg_request(&p, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

START_TEST(certrep_success_roundtrip)
{
	enum cms_digest d = (enum cms_digest)(_i / CMS_CIPHER__MAX);
	enum cms_cipher c = (enum cms_cipher)(_i % CMS_CIPHER__MAX);
	struct scep_msg_certrep_params p = ct_rep_params(SCEP_SUCCESS);
	X509 *extra[1] = {other};
	struct scep_msg *m;
	X509 **certs = NULL;
	uint8_t *der, *out;
	size_t len, outlen, n = 0;
	enum cms_cipher got;
	CMS_ContentInfo *cms;
	STACK_OF(X509) * outer;

	/* Replies never use single DES. */
	if (c == CMS_CIPHER_DES) {
		p.cipher = c;
		ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
		return;
	}
	const unsigned char *q;

	p.digest = d;
	p.cipher = c;
	p.extra_certs = extra;
	p.n_extra_certs = 1;
	der = ct_certrep(&p, &len);
	m = ct_parse_ok(der, len);
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

	out = ct_decrypt_ok(m, client_key, client, &outlen, &got);
	ck_assert_int_eq(got, c);
	ck_assert_int_eq(cms_certs_only_parse(out, outlen, &certs, &n), MDM_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert(ct_has_cert(certs, n, issued));
	ck_assert(ct_has_cert(certs, n, ca));
	ct_free_certs(certs, n);
	free(out);
	scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(certrep_failure_and_pending)
{
	for (int fi = SCEP_BAD_ALG; fi <= SCEP_BAD_CERT_ID; fi++) {
		struct scep_msg_certrep_params p = ct_rep_params(SCEP_FAILURE);
		struct scep_msg *m;
		uint8_t *der;
		size_t len;

		p.fail_info = (enum scep_fail_info)fi;
		p.digest = (enum cms_digest)(fi % CMS_DIGEST__MAX);
		der = ct_certrep(&p, &len);
		m = ct_parse_ok(der, len);
		ck_assert_int_eq(m->message_type, SCEP_CERTREP);
		ck_assert_int_eq(m->pki_status, SCEP_FAILURE);
		ck_assert_int_eq(m->fail_info, fi);
		ck_assert_ptr_null(m->envelope);
		ck_assert_uint_eq(m->envelope_len, 0);
		ck_assert_int_eq(scep_msg_decrypt(m, client_key, client, &(uint8_t *){NULL},
		                         &(size_t){0}, NULL, NULL),
		        MDM_ERR_INVAL);
		scep_msg_free(m);
		free(der);
	}
	{
		struct scep_msg_certrep_params p = ct_rep_params(SCEP_PENDING);
		struct scep_msg *m;
		uint8_t *der;
		size_t len;

		/* The request's 8-byte nonce (macOS) goes back as it came. */
		p.recipient_nonce_len = 8;
		der = ct_certrep(&p, &len);
		m = ct_parse_ok(der, len);
		ck_assert_int_eq(m->pki_status, SCEP_PENDING);
		ck_assert_int_eq(m->fail_info, SCEP_FAIL_NONE);
		ck_assert_ptr_null(m->envelope);
		ck_assert_uint_eq(m->recipient_nonce_len, 8);
		ck_assert_mem_eq(m->recipient_nonce, nonce16, 8);
		scep_msg_free(m);
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
	struct scep_msg_certrep_params p = ct_rep_params(SCEP_SUCCESS);
	X509_CRL *crl = make_crl();
	uint8_t *crl_der = NULL, *der, *out;
	size_t len, outlen, n = 0;
	struct scep_msg *m;
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
	der = ct_certrep(&p, &len);
	m = ct_parse_ok(der, len);
	out = ct_decrypt_ok(m, client_key, client, &outlen, NULL);
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
	scep_msg_free(m);
	free(der);
	/* A CRL that does not parse is the caller's bug. */
	p.crl_len = (size_t)crl_len - 1;
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
	ck_assert(ERR_peek_error() == 0);
	OPENSSL_free(crl_der);
	X509_CRL_free(crl);
}
END_TEST

START_TEST(certrep_bad_arguments)
{
	struct scep_msg_certrep_params p = ct_rep_params(SCEP_SUCCESS);
	uint8_t *der = (uint8_t *)&p;
	size_t len = 1;

	ck_assert_int_eq(scep_msg_certrep(NULL, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert_uint_eq(len, 0);
	p.recipient = NULL;
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_rep_params(SCEP_FAILURE);
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL); /* no failInfo */
	p.fail_info = (enum scep_fail_info)5;
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_rep_params(SCEP_PENDING);
	p.status = (enum scep_pki_status)1;
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_rep_params(SCEP_PENDING);
	p.recipient_nonce_len = 4;
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p.recipient_nonce_len = 17;
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_rep_params(SCEP_PENDING);
	p.key = client_key;
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
	p = ct_rep_params(SCEP_PENDING);
	p.transaction_id = "";
	ck_assert_int_eq(scep_msg_certrep(&p, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

/* An independent party (the openssl command line) accepts what we sign. */
START_TEST(openssl_cli_verifies)
{
	struct scep_msg_certrep_params p = ct_rep_params(SCEP_SUCCESS);
	struct scep_msg_request_params r = ct_req_params();
	uint8_t *der;
	size_t len;

	if (ts_sh("openssl version >/dev/null 2>&1") != 0) {
		printf("cms: openssl command not found; independent check skipped\n");
		return;
	}
	der = ct_certrep(&p, &len);
	ck_assert(ct_openssl_verifies(der, len, ""));
	der[len - 10] ^= 1; /* in the signature */
	ck_assert(!ct_openssl_verifies(der, len, ""));
	free(der);
	p = ct_rep_params(SCEP_FAILURE);
	p.fail_info = SCEP_BAD_REQUEST;
	der = ct_certrep(&p, &len);
	ck_assert(ct_openssl_verifies(der, len, ""));
	free(der);
	p = ct_rep_params(SCEP_PENDING);
	p.digest = CMS_DIGEST_SHA1;
	der = ct_certrep(&p, &len);
	ck_assert(ct_openssl_verifies(der, len, ""));
	free(der);
	der = ct_request(&r, &len);
	ck_assert(ct_openssl_verifies(der, len, ""));
	free(der);
}
END_TEST

/* ---- hostile ---- */

START_TEST(flipped_bytes)
{
	struct scep_msg_request_params p = ct_req_params();
	size_t len, off;
	uint8_t *der = ct_request(&p, &len);
	struct scep_msg *m = ct_parse_ok(der, len);
	CMS_ContentInfo *cms;
	ASN1_OCTET_STRING *sig;
	const unsigned char *q = der;

	/* In the signature. */
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	ck_assert_ptr_nonnull(cms);
	sig = CMS_SignerInfo_get0_signature(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0));
	off = ct_find(der, len, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig));
	ck_assert_uint_ne(off, (size_t)-1);
	CMS_ContentInfo_free(cms);
	der[off + 100] ^= 0x20;
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "RFC 5652 5.6");
	der[off + 100] ^= 0x20;
	/* In the signed attributes: the transactionID and the challenge. */
	off = ct_find(der, len, p.transaction_id, strlen(p.transaction_id));
	ck_assert_uint_ne(off, (size_t)-1);
	der[off + 3] ^= 0x01;
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "signature");
	der[off + 3] ^= 0x01;
	off = ct_find(der, len, "s3cret", 6);
	ck_assert_uint_ne(off, (size_t)-1);
	der[off] = 'S';
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
	der[off] = 's';
	/* In the content (the pkcsPKIEnvelope), at its start, middle and end. */
	off = ct_find(der, len, m->envelope, m->envelope_len);
	ck_assert_uint_ne(off, (size_t)-1);
	{
		size_t at[] = {4, m->envelope_len / 2, m->envelope_len - 1};

		for (size_t i = 0; i < 3; i++) {
			der[off + at[i]] ^= 0x80;
			ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
			der[off + at[i]] ^= 0x80;
		}
	}
	scep_msg_free(m);
	m = ct_parse_ok(der, len); /* restored */
	scep_msg_free(m);
	free(der);
}
END_TEST

START_TEST(signer_checks)
{
	struct raw_opts o = ct_raw_default();
	size_t len;
	uint8_t *der;
	struct scep_msg *m;

	/* The baseline is accepted: what follows fails for one reason each. */
	der = ct_raw_build(&o, &len);
	m = ct_parse_ok(der, len);
	ck_assert_str_eq(m->transaction_id, "tid-1");
	scep_msg_free(m);
	free(der);

	/* The signer named by subjectKeyIdentifier (the CA has one) is found too. */
	o.signer = ca;
	o.key = ca_key;
	o.keyid = 1;
	der = ct_raw_build(&o, &len);
	m = ct_parse_ok(der, len);
	ck_assert_int_eq(X509_cmp(m->signer, ca), 0);
	scep_msg_free(m);
	free(der);

	o = ct_raw_default();
	o.nocerts = 1;
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "signer certificate not in");
	o = ct_raw_default();
	o.second_signer = 1;
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "CMS has 2 SignerInfos");
	o = ct_raw_default();
	o.md = EVP_md5();
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_ALG, "digest md5");
	o = ct_raw_default();
	o.md = EVP_sha384();
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_ALG, "digest sha384");
	o = ct_raw_default();
	o.signer = ec;
	o.key = ec_key;
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_ALG, "RFC 8894 3.5.2");
	o = ct_raw_default();
	o.econtent_oid = "1.2.840.113549.1.7.2";
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "not data");
	o = ct_raw_default();
	o.n_attrs = 0;
	o.attrs[0] = (struct raw_attr){OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, "t", 1, 0};
	o.n_attrs = 1;
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "messageType attribute missing");
}
END_TEST

/* Found by scep_fuzz: a signer certificate that parses but whose key does not. */
START_TEST(signer_key_undecodable)
{
	struct scep_msg_request_params p = ct_req_params();
	const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(client);
	size_t len, off;
	uint8_t *der = ct_request(&p, &len);

	off = ct_find(der, len, ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits));
	ck_assert_uint_ne(off, (size_t)-1);
	ck_assert_int_eq(der[off], 0x30); /* RSAPublicKey SEQUENCE */
	der[off] = 0x31;
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "does not decode");
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
		struct raw_opts o = ct_raw_default();

		if (cases[i].idx == -1) {
			/* senderNonce missing from a request */
			o.n_attrs = 2;
			ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST,
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
		ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, cases[i].msg);
	}
	/* 8 to 16 byte nonces are taken; unknown attributes are ignored. */
	{
		struct raw_opts o = ct_raw_default();
		static const uint8_t n8[8] = {9, 9, 9, 9, 9, 9, 9, 9};
		struct scep_msg *m;
		uint8_t *der;
		size_t len;

		o.attrs[2] = (struct raw_attr){OID_SENDER_NONCE, V_ASN1_OCTET_STRING, n8, 8, 0};
		o.attrs[3] =
		        (struct raw_attr){"1.2.840.113549.1.9.25.3", V_ASN1_OCTET_STRING, n8, 8, 1};
		o.n_attrs = 4;
		der = ct_raw_build(&o, &len);
		m = ct_parse_ok(der, len);
		ck_assert_uint_eq(m->sender_nonce_len, 8);
		ck_assert_mem_eq(m->sender_nonce, n8, 8);
		scep_msg_free(m);
		free(der);
	}
}
END_TEST

START_TEST(certrep_attribute_checks)
{
	struct raw_opts o = ct_raw_default();

	o.attrs[0] = (struct raw_attr){OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "3", 1, 0};
	o.n_attrs = 2; /* no pkiStatus */
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "CertRep without pkiStatus");
	o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "2", 1, 0};
	o.n_attrs = 3;
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "FAILURE without failInfo");
	o.attrs[3] = (struct raw_attr){OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, "14606", 5, 0};
	o.n_attrs = 4;
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "unknown failInfo");
	/* FAILURE carrying an envelope. */
	o.attrs[3] = (struct raw_attr){OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, "2", 1, 0};
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "carries a pkcsPKIEnvelope");
	o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "0", 1, 0};
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "failInfo in a CertRep that is not");
	o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "1", 1, 0};
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "unknown pkiStatus");
	/* SUCCESS without an envelope, with a content that is not one. */
	o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "0", 1, 0};
	o.n_attrs = 3;
	o.no_content = 1;
	o.content = (const uint8_t *)"";
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "pkcsPKIEnvelope missing");
	o.no_content = 0;
	o.content = csr;
	o.content_len = csr_len;
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "not an EnvelopedData");
	/* A detached FAILURE (no eContent) is verified against empty content. */
	{
		struct scep_msg *m;
		uint8_t *der;
		size_t len;

		o = ct_raw_default();
		o.attrs[0] = (struct raw_attr){OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, "3", 1, 0};
		o.attrs[2] = (struct raw_attr){OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, "3", 1, 0};
		o.content = (const uint8_t *)"";
		o.content_len = 0;
		o.no_content = 1;
		der = ct_raw_build(&o, &len);
		m = ct_parse_ok(der, len);
		ck_assert_int_eq(m->pki_status, SCEP_PENDING);
		ck_assert_ptr_null(m->envelope);
		scep_msg_free(m);
		free(der);
	}
}
END_TEST

START_TEST(truncated_trailing_oversized)
{
	struct scep_msg_request_params p = ct_req_params();
	size_t len;
	uint8_t *der = ct_request(&p, &len), *big;

	for (size_t i = 0; i < len; i += (i < 64 ? 1 : 13))
		ct_check_refused(der, i, MDM_ERR_PARSE, ANY_FAIL, NULL);
	big = calloc(1, MDM_MAX_BODY_SCEP + 2);
	ck_assert_ptr_nonnull(big);
	memcpy(big, der, len);
	ct_check_refused(big, len + 1, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "1 bytes after");
	big[len] = 0x30;
	big[len + 1] = 0x00;
	ct_check_refused(big, len + 2, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "2 bytes after");
	/* Over the limit: refused on length alone, before any parsing. */
	ct_check_refused(big, MDM_MAX_BODY_SCEP + 1, MDM_ERR_LIMIT, SCEP_BAD_REQUEST, "limit");
	free(big);
	free(der);
	ct_check_refused((const uint8_t *)"", 0, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "empty");
}
END_TEST

START_TEST(bad_arguments)
{
	struct scep_msg *m = NULL;
	char err[8];
	enum scep_fail_info f;

	ck_assert_int_eq(scep_msg_parse(NULL, 5, &m, &f, err, sizeof(err)), MDM_ERR_INVAL);
	ck_assert_int_eq(
	        scep_msg_parse((const uint8_t *)"x", 1, NULL, &f, err, sizeof(err)), MDM_ERR_INVAL);
	/* err and fail are optional; a short err buffer is truncated, not overrun. */
	ck_assert_int_eq(scep_msg_parse((const uint8_t *)"x", 1, &m, NULL, NULL, 0), MDM_ERR_PARSE);
	ck_assert_int_eq(
	        scep_msg_parse((const uint8_t *)"x", 1, &m, &f, err, sizeof(err)), MDM_ERR_PARSE);
	ck_assert_uint_eq(strlen(err), sizeof(err) - 1);
	ck_assert_int_eq(
	        scep_msg_decrypt(NULL, ca_key, ca, &(uint8_t *){NULL}, &(size_t){0}, NULL, NULL),
	        MDM_ERR_INVAL);
	scep_msg_free(NULL);
	ck_assert_str_eq(cms_digest_str(CMS_DIGEST_SHA512), "sha512");
	ck_assert_str_eq(cms_cipher_str(CMS_CIPHER_DES3), "des-ede3-cbc");
	ck_assert_str_eq(cms_cipher_str(CMS_CIPHER__MAX), "invalid");
	ck_assert(ERR_peek_error() == 0);
}
END_TEST

/* Refusals write nothing to stderr (OpenSSL included) and leave no OpenSSL error. */
START_TEST(quiet_on_stderr)
{
	struct raw_opts o = ct_raw_default();
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
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_ALG, NULL);
	o = ct_raw_default();
	o.nocerts = 1;
	ct_raw_refused(&o, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
	o = ct_raw_default();
	der = ct_raw_build(&o, &len);
	der[len - 5] ^= 1;
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
	for (size_t i = 1; i < len; i += 97)
		ct_check_refused(der, i, MDM_ERR_PARSE, ANY_FAIL, NULL);
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
	struct raw_opts o = ct_raw_default();
	char buf[4096];
	int fds[2];
	ssize_t n;
	size_t len;
	uint8_t *der;

	o.second_signer = 1;
	der = ct_raw_build(&o, &len);
	ck_assert_int_eq(pipe(fds), 0);
	log_init("test", MDM_LOG_DEBUG);
	log_set_fd(fds[1]);
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, NULL);
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
 * scep_msg_parse_unverified: reads what addresses a FAILURE CertRep from
 * messages refused for their algorithm or signature, and refuses every
 * other rule exactly as scep_msg_parse.
 */
/* The unverified parse refuses der as badRequest, err naming why. */
static void unverified_bad_request(const uint8_t *der, size_t len, const char *why)
{
	char err[256];
	enum scep_fail_info f = SCEP_FAIL_NONE;
	/* Not NULL before: the refusal must clear it. */
	struct scep_msg *m = (struct scep_msg *)(void *)err;

	ck_assert_int_eq(
	        scep_msg_parse_unverified(der, len, &m, &f, err, sizeof(err)), MDM_ERR_PARSE);
	ck_assert_ptr_null(m);
	ck_assert_int_eq(f, SCEP_BAD_REQUEST);
	ck_assert_msg(strstr(err, why) != NULL, "%s", err);
}

START_TEST(unverified_parse)
{
	struct scep_msg_request_params p = ct_req_params();
	struct raw_opts o;
	struct scep_msg *m, *u;
	CMS_ContentInfo *cms;
	ASN1_OCTET_STRING *sig;
	const unsigned char *q;
	size_t len, off;
	uint8_t *der;

	/* Real captures: accepted by both, the same fields. */
	if ((der = vector_read("cms", "scep/testdata/PKCSReq.der", &len)) != NULL) {
		m = ct_parse_ok(der, len);
		u = ct_unverified_ok(der, len);
		ct_same_fields(m, u);
		ck_assert_int_eq(u->message_type, SCEP_PKCSREQ);
		ck_assert_str_eq(u->transaction_id, "A13090761A30F66664F85D37433D2065E1112BA1");
		ck_assert_uint_eq(u->sender_nonce_len, 8);
		scep_msg_free(m);
		scep_msg_free(u);
		free(der);
	}
	/* sscep-style MD5 request: refused by one, readable by the other. */
	if ((der = vector_read("cms", "libscep/tests/test-files/util_b64_pkcs7.bin", &len)) !=
	        NULL) {
		ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "md5");
		u = ct_unverified_ok(der, len);
		ck_assert_int_eq(u->digest, CMS_DIGEST__MAX);
		ck_assert_str_ne(u->transaction_id, "");
		scep_msg_free(u);
		free(der);
	}
	/* No signer certificate: nobody to answer, refused by both. */
	if ((der = vector_read(
	             "cms", "scep/_history/CertRep_NoCertificatesForSigners.der", &len)) != NULL) {
		ct_both_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK,
		        "signer certificate not in the message");
		free(der);
	}

	/* A flipped signature byte: badMessageCheck, the fields still read. */
	der = ct_request(&p, &len);
	m = ct_parse_ok(der, len);
	q = der;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	ck_assert_ptr_nonnull(cms);
	sig = CMS_SignerInfo_get0_signature(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0));
	off = ct_find(der, len, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig));
	ck_assert_uint_ne(off, (size_t)-1);
	CMS_ContentInfo_free(cms);
	der[off + 100] ^= 0x20;
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "RFC 5652 5.6");
	u = ct_unverified_ok(der, len);
	ct_same_fields(m, u);
	ck_assert_str_eq(u->transaction_id, p.transaction_id);
	ck_assert_uint_eq(u->sender_nonce_len, SCEP_NONCE_LEN);
	ck_assert_mem_eq(u->sender_nonce, nonce16, SCEP_NONCE_LEN);
	ck_assert_int_eq(X509_cmp(u->signer, client), 0);
	scep_msg_free(u);
	scep_msg_free(m);
	/* Truncated, trailing bytes, empty, oversized: refused by both alike. */
	for (size_t i = 0; i < len; i += (i < 64 ? 1 : 29))
		ct_both_refused(der, i, MDM_ERR_PARSE, ANY_FAIL, NULL);
	{
		uint8_t *big = calloc(1, MDM_MAX_BODY_SCEP + 1);

		ck_assert_ptr_nonnull(big);
		memcpy(big, der, len);
		ct_both_refused(big, len + 1, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "1 bytes after");
		ct_both_refused(
		        big, MDM_MAX_BODY_SCEP + 1, MDM_ERR_LIMIT, SCEP_BAD_REQUEST, "limit");
		free(big);
	}
	ct_both_refused((const uint8_t *)"", 0, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "empty");
	free(der);

	/* MD5, SHA-384, an EC signer: the algorithm policy is not applied. */
	o = ct_raw_default();
	o.md = EVP_md5();
	der = ct_raw_build(&o, &len);
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "digest md5");
	u = ct_unverified_ok(der, len);
	ck_assert_int_eq(u->message_type, SCEP_PKCSREQ);
	ck_assert_int_eq(u->digest, CMS_DIGEST__MAX);
	ck_assert_str_eq(u->transaction_id, "tid-1");
	ck_assert_uint_eq(u->sender_nonce_len, 16);
	scep_msg_free(u);
	free(der);
	o = ct_raw_default();
	o.signer = ec;
	o.key = ec_key;
	der = ct_raw_build(&o, &len);
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "RFC 8894 3.5.2");
	u = ct_unverified_ok(der, len);
	ck_assert_int_eq(X509_cmp(u->signer, ec), 0);
	scep_msg_free(u);
	free(der);

	/* Every structural rule still holds. */
	o = ct_raw_default();
	o.md = EVP_md5();
	o.nocerts = 1;
	der = ct_raw_build(&o, &len);
	ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_ALG, "md5");
	m = (struct scep_msg *)&o;
	ck_assert_int_eq(scep_msg_parse_unverified(der, len, &m, NULL, NULL, 0), MDM_ERR_PARSE);
	ck_assert_ptr_null(m);
	free(der);
	o = ct_raw_default();
	o.second_signer = 1;
	der = ct_raw_build(&o, &len);
	ct_both_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "CMS has 2 SignerInfos");
	free(der);
	o = ct_raw_default();
	o.econtent_oid = "1.2.840.113549.1.7.2";
	der = ct_raw_build(&o, &len);
	ct_both_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_REQUEST, "not data");
	free(der);
	/* Attribute rules, with MD5 so that only the unverified parse reaches them. */
	o = ct_raw_default();
	o.md = EVP_md5();
	o.attrs[1].twice = 1;
	der = ct_raw_build(&o, &len);
	unverified_bad_request(der, len, "more than once");
	free(der);
	o = ct_raw_default();
	o.md = EVP_md5();
	o.attrs[1] = o.attrs[2]; /* no transactionID */
	o.n_attrs = 2;
	der = ct_raw_build(&o, &len);
	unverified_bad_request(der, len, "transactionID attribute missing");
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
	/* want: the failInfo, SCEP_FAIL_NONE when accepted */
	static const struct cmstest_alg_case cases[] = {
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
	struct scep_msg *m;
	uint8_t *der, *mut;
	size_t len, mlen;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = ct_raw_default();
		if (cases[i].ec) {
			o.signer = ec;
			o.key = ec_key;
		}
		der = ct_raw_build(&o, &len);
		mut = cmstest_with_alg(
		        der, len, cases[i].which, cases[i].nid, cases[i].ptype, &mlen);
		if (cases[i].want == SCEP_FAIL_NONE) {
			m = ct_parse_ok(mut, mlen);
			ck_assert_int_eq(m->digest, CMS_DIGEST_SHA256);
			scep_msg_free(m);
		} else {
			ct_check_refused(mut, mlen, MDM_ERR_PARSE, cases[i].want, cases[i].msg);
		}
		free(mut);
		free(der);
	}
}
END_TEST

void scep_msg_tests(TCase *vectors, TCase *roundtrip, TCase *hostile)
{
	(void)vectors;
	tcase_add_loop_test(roundtrip, request_roundtrip, 0, CMSTEST_COMBOS);
	ts_add_tests(roundtrip, request_variants, request_bad_arguments);
	tcase_add_loop_test(roundtrip, certrep_success_roundtrip, 0, CMSTEST_COMBOS);
	ts_add_tests(roundtrip, certrep_failure_and_pending, certrep_with_crl,
	        certrep_bad_arguments, openssl_cli_verifies);
	ts_add_tests(hostile, flipped_bytes, signer_checks, signer_key_undecodable,
	        attribute_checks, certrep_attribute_checks, truncated_trailing_oversized,
	        bad_arguments, quiet_on_stderr, parse_logs_once, unverified_parse, alg_policy);
}
