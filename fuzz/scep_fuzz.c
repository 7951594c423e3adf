/*
 * libFuzzer target for the SCEP CMS parsers.  scep_msg_parse runs on the
 * input; what it accepts must keep every promise of cms.h (known type,
 * printable transactionID, nonce lengths, envelope where one belongs) and
 * is then decrypted with the test CA key when that is at hand.  The
 * other parsers of untrusted DER (certs-only, IssuerAndSerialNumber,
 * IssuerAndSubject) run on the same bytes.  A broken promise, a refusal
 * without a rule or an OpenSSL error left queued aborts.
 *
 * scep_msg_parse_unverified runs on the same bytes (see fuzz_unverified).
 *
 * The signature is checked before any signed attribute is read, so a
 * mutated message rarely gets past it.  Inputs that start with 'S' are
 * therefore read as a recipe instead: signed attributes (OID, ASN.1 type,
 * value, duplicated or not) that this target signs with a key made at
 * start-up, so that the attribute rules and the decryption run on
 * messages whose signature is good.  Other inputs are parsed as they are:
 * seed those with real messages (build-fuzz/corpus/scep; scripts/fuzz.sh
 * copies tests/unit/data/scep if present, and its vector search skips
 * DER, so copy scep/testdata/PKCSReq.der and friends there by hand).
 *
 * Build settings for scripts/fuzz.sh.
 * fuzz-max-len: 65600
 * fuzz-seed-dirs: apple-Security/OSX/shared_regressions/si-27-cms-parse
 * fuzz-seeds: scep/testdata/PKCSReq.der
 * fuzz-seeds: commandment/testdata/mdmclient-PKIOperation.der
 * fuzz-seeds: smallstep-pkcs7/parse_test.go.extracted/windows_scep_pkcsreq.der
 * fuzz-seeds: jscep/src/samples/scep_req0.der
 * fuzz-seeds: jscep/src/samples/scep_resp0.der
 */
#include "cms.h"
#include "log.h"
#include "mdm_limits.h"
#include "scep_msg.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The recipient of the seeds made by the unit tests (tests/unit/data/cms). */
static X509 *fuzz_cert;
static EVP_PKEY *fuzz_key;

/* For recipes: our own signer (also the recipient) and an envelope to it. */
static X509 *recipe_cert;
static EVP_PKEY *recipe_key;
static uint8_t *recipe_env;
static int recipe_env_len;
static ASN1_OBJECT *recipe_oids[10];
static const char *const recipe_oid_txt[10] = {
        "2.16.840.1.113733.1.9.2",
        "2.16.840.1.113733.1.9.3",
        "2.16.840.1.113733.1.9.4",
        "2.16.840.1.113733.1.9.5",
        "2.16.840.1.113733.1.9.6",
        "2.16.840.1.113733.1.9.7",
        "1.2.840.113549.1.9.7",
        "1.2.840.113549.1.9.5",
        "1.2.840.113549.1.9.25.3",
        "1.3.6.1.4.1.311.21.38",
};
static const int recipe_types[8] = {V_ASN1_PRINTABLESTRING, V_ASN1_OCTET_STRING, V_ASN1_UTF8STRING,
        V_ASN1_IA5STRING, V_ASN1_PRINTABLESTRING, V_ASN1_OCTET_STRING, V_ASN1_UTCTIME,
        V_ASN1_BMPSTRING};

static void fuzz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "scep_fuzz: %s%s%s\n", what, detail != NULL ? ": " : "",
	        detail != NULL ? detail : "");
	abort();
}

static void recipe_setup(void)
{
	static const uint8_t content[] = "a CSR would be here";
	X509_NAME *name = NULL;
	STACK_OF(X509) *to = NULL;
	CMS_ContentInfo *env = NULL;
	BIO *in = NULL;
	unsigned char *der = NULL;

	for (int i = 0; i < 10; i++)
		if ((recipe_oids[i] = OBJ_txt2obj(recipe_oid_txt[i], 1)) == NULL)
			fuzz_fail("recipe setup", "OBJ_txt2obj");
	if ((recipe_key = EVP_RSA_gen(1024)) == NULL || (recipe_cert = X509_new()) == NULL ||
	        (name = X509_NAME_new()) == NULL)
		fuzz_fail("recipe setup", "key");
	X509_NAME_add_entry_by_txt(
	        name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
	ASN1_INTEGER_set(X509_get_serialNumber(recipe_cert), 7);
	X509_set_issuer_name(recipe_cert, name);
	X509_set_subject_name(recipe_cert, name);
	X509_gmtime_adj(X509_getm_notBefore(recipe_cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(recipe_cert), 3600);
	X509_set_pubkey(recipe_cert, recipe_key);
	if (!X509_sign(recipe_cert, recipe_key, EVP_sha256()))
		fuzz_fail("recipe setup", "X509_sign");
	if ((to = sk_X509_new_null()) == NULL || !sk_X509_push(to, recipe_cert) ||
	        (in = BIO_new_mem_buf(content, sizeof(content))) == NULL ||
	        (env = CMS_encrypt(to, in, EVP_aes_128_cbc(), CMS_BINARY)) == NULL ||
	        (recipe_env_len = i2d_CMS_ContentInfo(env, &der)) <= 0)
		fuzz_fail("recipe setup", "envelope");
	recipe_env = der;
	CMS_ContentInfo_free(env);
	BIO_free(in);
	sk_X509_free(to);
	X509_NAME_free(name);
}

/*
 * A recipe: byte 1 picks the digest and the content (our envelope, none,
 * or the rest of the input); then records of [attribute, type|flags, len,
 * value...].  Returns the signed DER (OPENSSL_free) or NULL.
 */
static uint8_t *recipe_build(const uint8_t *d, size_t n, int *outlen)
{
	static const unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	const EVP_MD *mds[4] = {EVP_sha1(), EVP_sha256(), EVP_sha512(), EVP_sha384()};
	CMS_ContentInfo *cms = NULL;
	CMS_SignerInfo *si;
	BIO *in = NULL;
	uint8_t *der = NULL;
	const void *content = "";
	int clen = 0;

	if (n < 2)
		return NULL;
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL ||
	        (si = CMS_add1_signer(cms, recipe_cert, recipe_key, mds[d[1] & 3], flags)) == NULL)
		goto out;
	switch ((d[1] >> 2) & 3) {
	case 0:
	case 1:
		content = recipe_env;
		clen = recipe_env_len;
		break;
	case 2:
		CMS_set_detached(cms, 1);
		break;
	default:
		break;
	}
	d += 2;
	n -= 2;
	while (n >= 3) {
		int type = recipe_types[d[1] & 7];
		size_t len = d[2] < n - 3 ? d[2] : n - 3;
		X509_ATTRIBUTE *a = X509_ATTRIBUTE_create_by_OBJ(
		        NULL, recipe_oids[d[0] % 10], type, d + 3, (int)len);

		if (a == NULL)
			break;
		if (d[1] & 0x10)
			X509_ATTRIBUTE_set1_data(a, type, d + 3, (int)len);
		CMS_signed_add1_attr(si, a);
		if (d[1] & 0x20)
			CMS_signed_add1_attr(si, a);
		X509_ATTRIBUTE_free(a);
		d += 3 + len;
		n -= 3 + len;
	}
	if ((in = BIO_new_mem_buf(content, clen)) != NULL &&
	        CMS_final(cms, in, NULL, CMS_BINARY) == 1)
		*outlen = i2d_CMS_ContentInfo(cms, &der);
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	return *outlen > 0 ? der : NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FILE *fp;

	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX);
	if ((fp = fopen("tests/unit/data/cms/ca.pem", "r")) != NULL) {
		fuzz_cert = PEM_read_X509(fp, NULL, NULL, NULL);
		fclose(fp);
	}
	if ((fp = fopen("tests/unit/data/cms/ca.key", "r")) != NULL) {
		fuzz_key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
		fclose(fp);
	}
	recipe_setup();
	ERR_clear_error();
	return 0;
}

static void check_queue(const char *after)
{
	if (ERR_peek_error() != 0)
		fuzz_fail("OpenSSL error left queued", after);
}

static int printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		            (*s >= '0' && *s <= '9') || strchr(" '()+,-./:=?", *s) != NULL))
			return 0;
	return 1;
}

static void check_nonce(int has, size_t len, const char *which)
{
	if (has ? (len < SCEP_NONCE_MIN_LEN || len > SCEP_NONCE_LEN) : len != 0)
		fuzz_fail("nonce length", which);
}

/* unverified: from scep_msg_parse_unverified, whose digest may be unknown. */
static void check_msg(const struct scep_msg *m, int unverified)
{
	size_t n = strnlen(m->transaction_id, sizeof(m->transaction_id));

	switch (m->message_type) {
	case SCEP_CERTREP:
	case SCEP_RENEWALREQ:
	case SCEP_PKCSREQ:
	case SCEP_CERTPOLL:
	case SCEP_GETCERT:
	case SCEP_GETCRL:
		break;
	default:
		fuzz_fail("unknown messageType accepted", NULL);
	}
	if (n == 0 || n > SCEP_MAX_TRANSID || !printable(m->transaction_id))
		fuzz_fail("transactionID", m->transaction_id);
	check_nonce(m->has_sender_nonce, m->sender_nonce_len, "sender");
	check_nonce(m->has_recipient_nonce, m->recipient_nonce_len, "recipient");
	if (!unverified && (unsigned)m->digest >= CMS_DIGEST__MAX)
		fuzz_fail("digest", NULL);
	if (unverified && (unsigned)m->digest > CMS_DIGEST__MAX)
		fuzz_fail("unverified digest", NULL);
	if (m->signer == NULL)
		fuzz_fail("no signer", NULL);
	if (m->challenge != NULL &&
	        (m->challenge[0] == '\0' || strlen(m->challenge) > MDM_MAX_CHALLENGE))
		fuzz_fail("challenge length", NULL);
	if ((m->envelope == NULL) != (m->envelope_len == 0))
		fuzz_fail("envelope and its length disagree", NULL);
	if (m->message_type != SCEP_CERTREP) {
		if (!m->has_sender_nonce || m->envelope == NULL)
			fuzz_fail("request without senderNonce or envelope", NULL);
		if (m->fail_info != SCEP_FAIL_NONE)
			fuzz_fail("failInfo on a request", NULL);
		return;
	}
	switch (m->pki_status) {
	case SCEP_SUCCESS:
		if (m->envelope == NULL || m->fail_info != SCEP_FAIL_NONE)
			fuzz_fail("SUCCESS without envelope or with failInfo", NULL);
		break;
	case SCEP_FAILURE:
		if (m->envelope != NULL || m->fail_info < SCEP_BAD_ALG ||
		        m->fail_info > SCEP_BAD_CERT_ID)
			fuzz_fail("FAILURE with envelope or without failInfo", NULL);
		break;
	case SCEP_PENDING:
		if (m->envelope != NULL || m->fail_info != SCEP_FAIL_NONE)
			fuzz_fail("PENDING with envelope or failInfo", NULL);
		break;
	default:
		fuzz_fail("unknown pkiStatus accepted", NULL);
	}
}

static void fuzz_decrypt(const struct scep_msg *m, EVP_PKEY *key, X509 *cert)
{
	enum scep_fail_info fail = SCEP_FAIL_NONE;
	enum cms_cipher cipher = CMS_CIPHER__MAX;
	uint8_t *out = NULL;
	size_t outlen = 0;
	mdm_err e;

	if (key == NULL || cert == NULL || m->envelope == NULL)
		return;
	e = scep_msg_decrypt(m, key, cert, &out, &outlen, &cipher, &fail);
	check_queue("scep_msg_decrypt");
	if (e == MDM_OK) {
		if (out == NULL || outlen == 0 || (unsigned)cipher >= CMS_CIPHER__MAX ||
		        fail != SCEP_FAIL_NONE)
			fuzz_fail("decrypt succeeded with bad outputs", NULL);
		free(out);
	} else if (out != NULL || outlen != 0 || cipher != CMS_CIPHER__MAX ||
	        (e == MDM_ERR_PARSE && fail == SCEP_FAIL_NONE)) {
		fuzz_fail("decrypt refused with bad outputs", err_str(e));
	}
}

static void fuzz_other_parsers(const uint8_t *data, size_t size)
{
	struct x509_st **certs = NULL;
	char *a = NULL, *b = NULL;
	size_t n = 0;

	if (cms_certs_only_parse(data, size, &certs, &n) == MDM_OK) {
		if ((n == 0) != (certs == NULL) || n > CMS_MAX_CERTS)
			fuzz_fail("certs-only outputs", NULL);
		for (size_t i = 0; i < n; i++) {
			if (certs[i] == NULL)
				fuzz_fail("certs-only NULL certificate", NULL);
			X509_free(certs[i]);
		}
		free(certs);
	} else if (certs != NULL || n != 0) {
		fuzz_fail("certs-only output on refusal", NULL);
	}
	check_queue("cms_certs_only_parse");
	if (scep_msg_issuer_and_serial(data, size, &a, &b) == MDM_OK) {
		if (a == NULL || b == NULL || b[0] == '\0')
			fuzz_fail("issuer_and_serial outputs", NULL);
	} else if (a != NULL || b != NULL) {
		fuzz_fail("issuer_and_serial output on refusal", NULL);
	}
	free(a);
	free(b);
	a = b = NULL;
	check_queue("scep_msg_issuer_and_serial");
	if (scep_msg_issuer_and_subject(data, size, &a, &b) == MDM_OK) {
		if (a == NULL || b == NULL)
			fuzz_fail("issuer_and_subject outputs", NULL);
	} else if (a != NULL || b != NULL) {
		fuzz_fail("issuer_and_subject output on refusal", NULL);
	}
	free(a);
	free(b);
	check_queue("scep_msg_issuer_and_subject");
}

/*
 * scep_msg_parse_unverified on the same bytes: the same promises except
 * the digest, and it accepts whatever scep_msg_parse accepted (verified
 * says whether it did).
 */
static void fuzz_unverified(const uint8_t *data, size_t size, int verified)
{
	struct scep_msg *m = NULL;
	enum scep_fail_info fail = SCEP_BAD_ALG;
	char err[256];
	mdm_err e;

	e = scep_msg_parse_unverified(data, size, &m, &fail, err, sizeof(err));
	check_queue("scep_msg_parse_unverified");
	if (e != MDM_OK) {
		if (m != NULL)
			fuzz_fail("unverified: message returned on refusal", err);
		if (verified && e != MDM_ERR_NOMEM)
			fuzz_fail("unverified refuses what scep_msg_parse accepted", err);
		if ((e == MDM_ERR_PARSE || e == MDM_ERR_LIMIT) &&
		        (err[0] == '\0' || fail == SCEP_FAIL_NONE))
			fuzz_fail("unverified: refusal without a rule or failInfo", err_str(e));
	} else {
		if (m == NULL || err[0] != '\0' || fail != SCEP_FAIL_NONE)
			fuzz_fail("unverified: accepted with bad outputs", err);
		check_msg(m, 1);
		scep_msg_free(m);
	}
}

static void fuzz_message(const uint8_t *data, size_t size, int recipe)
{
	struct scep_msg *m = NULL;
	enum scep_fail_info fail = SCEP_BAD_ALG;
	char err[256];
	mdm_err e;

	e = scep_msg_parse(data, size, &m, &fail, err, sizeof(err));
	check_queue("scep_msg_parse");
	if (e != MDM_OK) {
		if (m != NULL)
			fuzz_fail("message returned on refusal", err);
		if ((e == MDM_ERR_PARSE || e == MDM_ERR_LIMIT) &&
		        (err[0] == '\0' || fail == SCEP_FAIL_NONE))
			fuzz_fail("refusal without a rule or failInfo", err_str(e));
	} else {
		if (m == NULL || err[0] != '\0' || fail != SCEP_FAIL_NONE)
			fuzz_fail("accepted with bad outputs", err);
		check_msg(m, 0);
		fuzz_decrypt(m, recipe ? recipe_key : fuzz_key, recipe ? recipe_cert : fuzz_cert);
		scep_msg_free(m);
	}
	fuzz_unverified(data, size, e == MDM_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'S') {
		int len = 0;
		uint8_t *der = recipe_build(data, size, &len);

		if (der != NULL)
			fuzz_message(der, (size_t)len, 1);
		OPENSSL_free(der);
		return 0;
	}
	fuzz_message(data, size, 0);
	fuzz_other_parsers(data, size);
	return 0;
}

/*
 * libFuzzer dictionary, one token per line (scripts/fuzz.sh extracts it):
 * the SCEP attribute OIDs and the CMS content types, DER encoded.
 * fuzz-dict: "\x06\x0a\x60\x86\x48\x01\x86\xf8\x45\x01\x09\x02"
 * fuzz-dict: "\x06\x0a\x60\x86\x48\x01\x86\xf8\x45\x01\x09\x03"
 * fuzz-dict: "\x06\x0a\x60\x86\x48\x01\x86\xf8\x45\x01\x09\x05"
 * fuzz-dict: "\x06\x0a\x60\x86\x48\x01\x86\xf8\x45\x01\x09\x07"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x09\x07"
 * fuzz-dict: "\x24\x80"
 * fuzz-dict: "\x30\x80"
 * fuzz-dict: "\xa0\x80"
 * fuzz-dict: "\x00\x00"
 * fuzz-dict: "\x13\x02\x31\x39"
 */
