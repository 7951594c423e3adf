/*
 * cms_sig: general CMS signing and the Mdm-Signature check.  A real Apple
 * Mdm-Signature (BER, detached, SHA-1, no signed attributes) verifies over
 * its exact body and fails when one byte of either changes; our detached
 * and attached signatures round-trip and verify with the openssl command
 * line, whose signatures verify with ours; hostile signatures (empty,
 * garbage, truncated, trailing bytes, oversized, attached, two signers,
 * no certificate, a foreign certificate, MD5, RSASSA-PSS, EnvelopedData)
 * are refused for the rule they break, logged once.
 *
 * Real captures come from the shared vectors (MDM_VECTORS, default
 * ../shared/vectors), read in place and skipped with a message when
 * absent.  openssl command-line cases run in a mkdtemp directory and are
 * skipped with a message when the command is missing.
 */
#include "base64.h"
#include "cms.h"
#include "cmstest.h"
#include "log.h"
#include "suites.h"
#include "ts_sys.h"
#include "vectors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define SIG2  "nanomdm/cryptoutil/cryptoutil_test.go.extracted/mdmSignatureHeader2"
#define SIG1  "nanomdm/cryptoutil/cryptoutil_test.go.extracted/mdmSignatureHeader1"
#define BODY2 "nanomdm/cryptoutil/cryptoutil_test.go.extracted/mdmSignatureBody2.plist"

/* Binary on purpose: CRLF, a bare LF, NUL and a non-UTF-8 byte must survive. */
static const uint8_t body[] = "<plist>\r\n<dict>\n<key>Status</key>\0\xff</dict>\r\n";
#define BODY_LEN (sizeof(body) - 1)

/* ---- fixture ---- */

static char tmpdir[64];

/* The shared fixture (cmstest.c), and a directory for the openssl command line. */
static void setup(void)
{
	cmstest_setup();
	tmpdir[0] = '\0';
}

static void teardown(void)
{
	if (tmpdir[0] != '\0')
		ts_tmpdir_done(tmpdir);
	cmstest_teardown();
}

/* ---- helpers ---- */

static void verify_ok(
        const uint8_t *sig, size_t siglen, const uint8_t *c, size_t clen, X509 *want_signer)
{
	char err[256];
	X509 *signer = (X509 *)err; /* must be cleared on entry */
	mdm_err e = cms_verify_detached(sig, siglen, c, clen, &signer, err, sizeof(err));

	ck_assert_msg(e == MDM_OK, "verify: %s: %s", err_str(e), err);
	ck_assert_ptr_nonnull(signer);
	ck_assert_str_eq(err, "");
	if (want_signer != NULL)
		ck_assert_int_eq(X509_cmp(signer, want_signer), 0);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
	X509_free(signer);
}

/* Refused with want, and msg (if not NULL) in the rule. */
static void verify_refused(const uint8_t *sig, size_t siglen, const uint8_t *c, size_t clen,
        mdm_err want, const char *msg)
{
	char err[256];
	X509 *signer = (X509 *)err;
	mdm_err e = cms_verify_detached(sig, siglen, c, clen, &signer, err, sizeof(err));

	ck_assert_msg(e == want, "got %s, want %s (%s)", err_str(e), err_str(want), err);
	ck_assert_ptr_null(signer);
	ck_assert_msg(err[0] != '\0', "refusal without a message");
	if (msg != NULL)
		ck_assert_msg(
		        strstr(err, msg) != NULL, "message \"%s\" does not say \"%s\"", err, msg);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}

static uint8_t *sign_detached(X509 *cert, EVP_PKEY *key, const uint8_t *c, size_t clen, size_t *len)
{
	uint8_t *der = NULL;
	mdm_err e = cms_sign_detached(cert, key, c, clen, &der, len);

	ck_assert_msg(e == MDM_OK, "cms_sign_detached: %s", err_str(e));
	ck_assert_ptr_nonnull(der);
	return der;
}

/* Where the SignerInfo's signature value sits in der (to flip a byte of it). */
static size_t signature_offset(const uint8_t *der, size_t len)
{
	const unsigned char *q = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	ASN1_OCTET_STRING *sig;
	size_t off;

	ck_assert_ptr_nonnull(cms);
	sig = CMS_SignerInfo_get0_signature(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0));
	ck_assert_ptr_nonnull(sig);
	off = ct_find(der, len, ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig));
	ck_assert_uint_ne(off, (size_t)-1);
	CMS_ContentInfo_free(cms);
	return off + 10;
}

/* ---- the openssl command line, in a mkdtemp directory ---- */

static int have_openssl(void)
{
	if (ts_sh("openssl version >/dev/null 2>&1") != 0) {
		printf("cms_sig: openssl command not found; command-line cases skipped\n");
		return 0;
	}
	if (tmpdir[0] == '\0')
		ts_tmpdir_new(tmpdir, sizeof(tmpdir), "cms_sig");
	return 1;
}

static void put(const char *name, const uint8_t *p, size_t n)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ts_file_write(path, p, n);
}

static uint8_t *get(const char *name, size_t *n)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return ts_file_get(path, n);
}

/* Runs "openssl ARGS" in tmpdir with D the test data; 1 on exit status 0. */
static int openssl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int openssl(const char *fmt, ...)
{
	char args[1024], cwd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	return ts_sh("cd '%s' && D='%s/%s' && openssl %s >/dev/null 2>&1", tmpdir, cwd, DATA,
	               args) == 0;
}

/* "openssl cms -sign ... -in body.bin -out s.der" with extra options; the DER. */
static uint8_t *cli_sign(const char *opts, size_t *len)
{
	put("body.bin", body, BODY_LEN);
	ck_assert_msg(openssl("cms -sign -binary -outform DER -in body.bin -out s.der %s", opts),
	        "openssl cms -sign %s failed", opts);
	return get("s.der", len);
}

/* ---- the real Apple Mdm-Signature ---- */

START_TEST(vector_header2)
{
	uint8_t *der, *b64, *dec = NULL, *b, *copy;
	size_t len, b64len, declen = 0, blen, off;

	if ((der = vector_read("cms_sig", SIG2 ".der", &len)) == NULL)
		return;
	b64 = vector_read("cms_sig", SIG2 ".b64", &b64len);
	b = vector_read("cms_sig", BODY2, &blen);
	ck_assert_ptr_nonnull(b64);
	ck_assert_ptr_nonnull(b);
	verify_ok(der, len, b, blen, NULL);

	/* The header value as sent decodes to the same bytes. */
	ck_assert_int_eq(
	        base64_decode((const char *)b64, b64len, CMS_MAX_SIGNATURE, &dec, &declen), MDM_OK);
	ck_assert_uint_eq(declen, len);
	ck_assert_mem_eq(dec, der, len);
	verify_ok(dec, declen, b, blen, NULL);

	/* No signed attributes: the signature is over the body itself. */
	b[blen / 2] ^= 1;
	verify_refused(der, len, b, blen, MDM_ERR_AUTH, "RFC 5652 5.4");
	b[blen / 2] ^= 1;
	verify_refused(der, len, b, blen - 1, MDM_ERR_AUTH, "signature does not match");
	verify_refused(der, len, b, 0, MDM_ERR_AUTH, "signature does not match");
	verify_refused(der, len, NULL, 0, MDM_ERR_AUTH, NULL);

	copy = malloc(len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, der, len);
	off = signature_offset(der, len);
	copy[off] ^= 0x20;
	verify_refused(copy, len, b, blen, MDM_ERR_AUTH, "signature does not match");
	/*
	 * Anywhere else: never a crash, nothing queued, and when it still
	 * verifies (bytes the signature does not cover: the SignedData's
	 * digestAlgorithms, certificate fields the caller's chain check
	 * covers) the key that signed is the original one.
	 */
	verify_ok(der, len, b, blen, NULL);
	{
		char err[256];
		X509 *orig = NULL;

		ck_assert_int_eq(
		        cms_verify_detached(der, len, b, blen, &orig, err, sizeof(err)), MDM_OK);
		for (size_t i = 0; i < len; i++) {
			X509 *s = NULL;
			mdm_err e;

			memcpy(copy, der, len);
			copy[i] ^= 0x01;
			e = cms_verify_detached(copy, len, b, blen, &s, err, sizeof(err));
			ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
			if (e != MDM_OK) {
				ck_assert_ptr_null(s);
				ck_assert_msg(
				        err[0] != '\0', "byte %zu: refusal without a rule", i);
				continue;
			}
			ck_assert_msg(EVP_PKEY_eq(X509_get0_pubkey(s), X509_get0_pubkey(orig)) == 1,
			        "byte %zu flipped: verifies with another key", i);
			ck_assert_uint_lt(i, off - 10);
			X509_free(s);
		}
		X509_free(orig);
	}
	free(copy);
	free(dec);
	free(b);
	free(b64);
	free(der);
}
END_TEST

/* Header1 (Gusto, BER): its body was never published; it must parse and fail AUTH only. */
START_TEST(vector_header1)
{
	uint8_t *der, *b64, *dec = NULL;
	size_t len, b64len, declen = 0;

	if ((der = vector_read("cms_sig", SIG1 ".der", &len)) == NULL)
		return;
	b64 = vector_read("cms_sig", SIG1 ".b64", &b64len);
	ck_assert_ptr_nonnull(b64);
	ck_assert_int_eq(
	        base64_decode((const char *)b64, b64len, CMS_MAX_SIGNATURE, &dec, &declen), MDM_OK);
	ck_assert_uint_eq(declen, len);
	ck_assert_mem_eq(dec, der, len);
	verify_refused(der, len, body, BODY_LEN, MDM_ERR_AUTH, "signature does not match");
	free(dec);
	free(b64);
	free(der);
}
END_TEST

/* ---- round trips ---- */

START_TEST(roundtrip)
{
	struct {
		X509 **cert;
		EVP_PKEY **key;
	} who[] = {{&client, &client_key}, {&issued, &client_key}, {&ec, &ec_key}};
	uint8_t *der, big[3000];
	size_t len;

	memset(big, 0xa5, sizeof(big));
	for (size_t i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		const unsigned char *q;
		CMS_ContentInfo *cms;

		der = sign_detached(*who[i].cert, *who[i].key, body, BODY_LEN, &len);
		verify_ok(der, len, body, BODY_LEN, *who[i].cert);
		verify_refused(der, len, body, BODY_LEN - 1, MDM_ERR_AUTH,
		        "RFC 5652 5.4: messageDigest does not match the content");
		verify_refused(der, len, big, sizeof(big), MDM_ERR_AUTH, "messageDigest");
		q = der;
		cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
		ck_assert_ptr_nonnull(cms);
		ck_assert_int_eq(CMS_is_detached(cms), 1);
		CMS_ContentInfo_free(cms);
		/* A signed attribute changed: the signature over them fails. */
		der[signature_offset(der, len) - 40] ^= 1;
		ck_assert_int_ne(
		        cms_verify_detached(der, len, body, BODY_LEN, &(X509 *){NULL}, NULL, 0),
		        MDM_OK);
		free(der);
		/* Empty content signs and verifies (and nothing else matches it). */
		der = sign_detached(*who[i].cert, *who[i].key, NULL, 0, &len);
		verify_ok(der, len, NULL, 0, *who[i].cert);
		verify_ok(der, len, body, 0, *who[i].cert);
		verify_refused(der, len, body, 1, MDM_ERR_AUTH, "messageDigest");
		free(der);
	}
	der = sign_detached(ec, ec_key, big, sizeof(big), &len);
	verify_ok(der, len, big, sizeof(big), ec);
	free(der);
}
END_TEST

START_TEST(sign_bad_arguments)
{
	uint8_t *der = (uint8_t *)&der;
	size_t len = 1;

	ck_assert_int_eq(
	        cms_sign_detached(client, ec_key, body, BODY_LEN, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(cms_sign_detached(NULL, client_key, body, 1, &der, &len), MDM_ERR_INVAL);
	ck_assert_int_eq(cms_sign_detached(client, client_key, NULL, 1, &der, &len), MDM_ERR_INVAL);
	ck_assert_int_eq(cms_sign_detached(client, client_key, body, 1, NULL, &len), MDM_ERR_INVAL);
	ck_assert_int_eq(
	        cms_sign_attached(client, client_key, NULL, 1, body, 1, &der, &len), MDM_ERR_INVAL);
	ck_assert_int_eq(
	        cms_sign_attached(client, client_key, NULL, 0, body, 1, &der, NULL), MDM_ERR_INVAL);
	ck_assert_int_eq(
	        cms_sign_attached(issued, ca_key, &ca, 1, body, 1, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	ck_assert_msg(ERR_peek_error() == 0, "OpenSSL error queue not empty");
}
END_TEST

/* ---- the openssl command line ---- */

START_TEST(cli_signs_we_verify)
{
	static const char *const opts[] = {
	        "-signer $D/client.pem -inkey $D/client.key",
	        "-signer $D/client.pem -inkey $D/client.key -md sha1",
	        "-signer $D/client.pem -inkey $D/client.key -md sha384",
	        "-signer $D/client.pem -inkey $D/client.key -md sha512",
	        "-signer $D/client.pem -inkey $D/client.key -noattr",
	        "-signer $D/client.pem -inkey $D/client.key -noattr -md sha1",
	        "-signer $D/client.pem -inkey $D/client.key -keyid",
	        "-signer $D/ec.pem -inkey $D/ec.key",
	        "-signer $D/ec.pem -inkey $D/ec.key -noattr -md sha384",
	        "-signer $D/issued.pem -inkey $D/client.key -certfile $D/ca.pem",
	};
	uint8_t *der;
	size_t len;

	if (!have_openssl())
		return;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		der = cli_sign(opts[i], &len);
		verify_ok(der, len, body, BODY_LEN, strstr(opts[i], "ec.pem") ? ec : NULL);
		verify_refused(der, len, body, BODY_LEN - 2, MDM_ERR_AUTH, "RFC 5652 5.4");
		free(der);
	}
}
END_TEST

START_TEST(we_sign_cli_verifies)
{
	X509 *chain[2] = {ca, issued};
	uint8_t *der, *out;
	size_t len, outlen;

	if (!have_openssl())
		return;
	put("body.bin", body, BODY_LEN);

	/* Attached, chained to ca.pem (the signer repeated in chain is carried once). */
	ck_assert_int_eq(
	        cms_sign_attached(issued, client_key, chain, 2, body, BODY_LEN, &der, &len),
	        MDM_OK);
	put("a.der", der, len);
	ck_assert(openssl("cms -verify -inform DER -in a.der -CAfile $D/ca.pem -binary "
	                  "-purpose any -out out.bin"));
	out = get("out.bin", &outlen);
	ck_assert_uint_eq(outlen, BODY_LEN);
	ck_assert_mem_eq(out, body, BODY_LEN);
	free(out);
	/* Not a detached signature: refused here. */
	verify_refused(der, len, body, BODY_LEN, MDM_ERR_PARSE, "encapsulated content present");
	/* Without the chain, the path to ca.pem cannot be built... */
	free(der);
	ck_assert_int_eq(
	        cms_sign_attached(ec, ec_key, NULL, 0, body, BODY_LEN, &der, &len), MDM_OK);
	put("a.der", der, len);
	ck_assert(!openssl("cms -verify -inform DER -in a.der -CAfile $D/ca.pem -binary "
	                   "-purpose any -out out.bin"));
	ck_assert(openssl("cms -verify -inform DER -in a.der -noverify -binary -out out.bin"));
	out = get("out.bin", &outlen);
	ck_assert_uint_eq(outlen, BODY_LEN);
	ck_assert_mem_eq(out, body, BODY_LEN);
	free(out);
	free(der);

	/* Detached: chained, then self-signed. */
	der = sign_detached(issued, client_key, body, BODY_LEN, &len);
	put("d.der", der, len);
	ck_assert(openssl("cms -verify -inform DER -in d.der -binary -content body.bin "
	                  "-CAfile $D/ca.pem -certfile $D/ca.pem -purpose any -out /dev/null"));
	put("body2.bin", body, BODY_LEN - 1);
	ck_assert(!openssl("cms -verify -inform DER -in d.der -binary -content body2.bin "
	                   "-CAfile $D/ca.pem -purpose any -out /dev/null"));
	free(der);
	der = sign_detached(ec, ec_key, body, BODY_LEN, &len);
	put("d.der", der, len);
	ck_assert(openssl("cms -verify -inform DER -in d.der -binary -content body.bin -noverify "
	                  "-out /dev/null"));
	free(der);
}
END_TEST

/* ---- refusals ---- */

START_TEST(cli_refusals)
{
	uint8_t *der;
	size_t len;

	if (!have_openssl())
		return;
	der = cli_sign("-signer $D/client.pem -inkey $D/client.key "
	               "-signer $D/ec.pem -inkey $D/ec.key",
	        &len);
	verify_refused(der, len, body, BODY_LEN, MDM_ERR_PARSE, "CMS has 2 SignerInfos");
	free(der);
	der = cli_sign("-signer $D/client.pem -inkey $D/client.key -nocerts", &len);
	verify_refused(der, len, body, BODY_LEN, MDM_ERR_PARSE,
	        "signer certificate not in the message (0 certificates)");
	free(der);
	/* Its only certificate is someone else's. */
	der = cli_sign("-signer $D/client.pem -inkey $D/client.key -nocerts "
	               "-certfile $D/other.pem",
	        &len);
	verify_refused(der, len, body, BODY_LEN, MDM_ERR_PARSE,
	        "signer certificate not in the message (1 certificates)");
	free(der);
	der = cli_sign("-signer $D/client.pem -inkey $D/client.key -nodetach", &len);
	verify_refused(der, len, body, BODY_LEN, MDM_ERR_PARSE, "encapsulated content present");
	free(der);
	der = cli_sign("-signer $D/client.pem -inkey $D/client.key -keyopt "
	               "rsa_padding_mode:pss",
	        &len);
	verify_refused(der, len, body, BODY_LEN, MDM_ERR_PARSE, "signature algorithm");
	free(der);
	if (openssl("cms -sign -binary -outform DER -in body.bin -out s.der -md md5 "
	            "-signer $D/client.pem -inkey $D/client.key")) {
		der = get("s.der", &len);
		verify_refused(der, len, body, BODY_LEN, MDM_ERR_PARSE, "digest md5 refused");
		free(der);
	} else {
		printf("cms_sig: this openssl cannot sign with MD5; that case skipped\n");
	}
	ck_assert(openssl("cms -encrypt -binary -outform DER -in body.bin -out e.der "
	                  "-aes256 $D/ca.pem"));
	der = get("e.der", &len);
	verify_refused(der, len, body, BODY_LEN, MDM_ERR_PARSE, "not a SignedData");
	free(der);
}
END_TEST

START_TEST(malformed)
{
	static const uint8_t garbage[] = "this is not DER at all";
	uint8_t *der, *big;
	size_t len;
	X509 *s = (X509 *)&s;

	der = sign_detached(client, client_key, body, BODY_LEN, &len);
	verify_refused(der, 0, body, BODY_LEN, MDM_ERR_PARSE, "empty signature");
	verify_refused(NULL, 0, body, BODY_LEN, MDM_ERR_PARSE, "empty signature");
	verify_refused(
	        garbage, sizeof(garbage), body, BODY_LEN, MDM_ERR_PARSE, "not a CMS ContentInfo");
	for (size_t i = 1; i < len; i += 13)
		verify_refused(der, i, body, BODY_LEN, MDM_ERR_PARSE, NULL);
	verify_refused(der, len - 1, body, BODY_LEN, MDM_ERR_PARSE, "not a CMS ContentInfo");

	big = calloc(1, CMS_MAX_SIGNATURE + 16);
	ck_assert_ptr_nonnull(big);
	memcpy(big, der, len);
	big[len] = 0x00;
	verify_refused(
	        big, len + 1, body, BODY_LEN, MDM_ERR_PARSE, "1 bytes after the ContentInfo");
	memcpy(big + len, "junk", 4);
	verify_refused(
	        big, len + 4, body, BODY_LEN, MDM_ERR_PARSE, "4 bytes after the ContentInfo");
	/* Over the limit: refused before parsing, whatever the bytes. */
	verify_refused(big, CMS_MAX_SIGNATURE + 1, body, BODY_LEN, MDM_ERR_LIMIT, "limit");
	memset(big, 0xff, CMS_MAX_SIGNATURE + 16);
	verify_refused(big, CMS_MAX_SIGNATURE + 16, body, BODY_LEN, MDM_ERR_LIMIT, "limit");
	free(big);

	/* Caller errors, outputs cleared. */
	ck_assert_int_eq(
	        cms_verify_detached(der, len, body, BODY_LEN, NULL, NULL, 0), MDM_ERR_INVAL);
	ck_assert_int_eq(cms_verify_detached(NULL, 5, body, BODY_LEN, &s, NULL, 0), MDM_ERR_INVAL);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(cms_verify_detached(der, len, NULL, 5, &s, NULL, 0), MDM_ERR_INVAL);
	/* err may be NULL. */
	ck_assert_int_eq(cms_verify_detached(der, len, body, 3, &s, NULL, 0), MDM_ERR_AUTH);
	ck_assert_ptr_null(s);
	free(der);
}
END_TEST

/* One refusal, one log line, naming the rule. */
START_TEST(logs_once)
{
	char buf[4096];
	int fds[2];
	ssize_t n;
	size_t len;
	uint8_t *der = sign_detached(ec, ec_key, body, BODY_LEN, &len);

	ck_assert_int_eq(pipe(fds), 0);
	log_init("test", MDM_LOG_DEBUG);
	log_set_fd(fds[1]);
	verify_refused(der, len, body, 1, MDM_ERR_AUTH, NULL);
	log_set_fd(-1);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(
	        strstr(buf, "RFC 5652 5.4: messageDigest does not match the content"));
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);
	free(der);
}
END_TEST

/*
 * The algorithm policy, one AlgorithmIdentifier of a good signature
 * changed at a time (the signature over the attributes still holds).
 */
START_TEST(alg_policy)
{
	/* want: the mdm_err */
	static const struct cmstest_alg_case cases[] = {
	        {0, CMSTEST_SIGNATURE_ALG, NID_rsaEncryption, V_ASN1_UNDEF, MDM_OK, NULL},
	        {0, CMSTEST_SIGNATURE_ALG, NID_sha256WithRSAEncryption, V_ASN1_NULL, MDM_OK, NULL},
	        {0, CMSTEST_SIGNATURE_ALG, NID_sha256WithRSAEncryption, V_ASN1_UNDEF, MDM_OK, NULL},
	        {0, CMSTEST_SIGNATURE_ALG, NID_sha1WithRSAEncryption, V_ASN1_NULL, MDM_ERR_PARSE,
	                "signature algorithm"},
	        {0, CMSTEST_SIGNATURE_ALG, NID_rsaEncryption, V_ASN1_INTEGER, MDM_ERR_PARSE,
	                "RFC 5754 3"},
	        {0, CMSTEST_SIGNATURE_ALG, NID_ecdsa_with_SHA256, V_ASN1_UNDEF, MDM_ERR_PARSE,
	                "signer key is not EC"},
	        {0, CMSTEST_SIGNATURE_ALG, NID_rsassaPss, V_ASN1_UNDEF, MDM_ERR_PARSE,
	                "signature algorithm"},
	        {0, CMSTEST_SIGNATURE_ALG, NID_md5WithRSAEncryption, V_ASN1_NULL, MDM_ERR_PARSE,
	                "signature algorithm"},
	        {0, CMSTEST_DIGEST_ALG, NID_sha256, V_ASN1_UNDEF, MDM_OK, NULL},
	        {0, CMSTEST_DIGEST_ALG, NID_sha256, V_ASN1_INTEGER, MDM_ERR_PARSE, "RFC 5754 2"},
	        {0, CMSTEST_DIGEST_ALG, NID_md5, V_ASN1_NULL, MDM_ERR_PARSE, "digest md5"},
	        {0, CMSTEST_DIGEST_ALG, NID_sha224, V_ASN1_NULL, MDM_ERR_PARSE, "digest sha224"},
	        /* SHA-384 passes the policy: only the messageDigest's size is then wrong. */
	        {0, CMSTEST_DIGEST_ALG, NID_sha384, V_ASN1_NULL, MDM_ERR_PARSE, "digest's size"},
	        {1, CMSTEST_SIGNATURE_ALG, NID_ecdsa_with_SHA256, V_ASN1_UNDEF, MDM_OK, NULL},
	        {1, CMSTEST_SIGNATURE_ALG, NID_ecdsa_with_SHA256, V_ASN1_NULL, MDM_OK, NULL},
	        {1, CMSTEST_SIGNATURE_ALG, NID_ecdsa_with_SHA1, V_ASN1_UNDEF, MDM_ERR_PARSE,
	                "signature algorithm"},
	        {1, CMSTEST_SIGNATURE_ALG, NID_X9_62_id_ecPublicKey, V_ASN1_UNDEF, MDM_ERR_PARSE,
	                "signature algorithm"},
	        {1, CMSTEST_SIGNATURE_ALG, NID_rsaEncryption, V_ASN1_NULL, MDM_ERR_PARSE,
	                "signer key is not RSA"},
	        {1, CMSTEST_SIGNATURE_ALG, NID_sha256WithRSAEncryption, V_ASN1_NULL, MDM_ERR_PARSE,
	                "signer key is not RSA"},
	};
	uint8_t *der, *mut;
	size_t len, mlen;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		der = sign_detached(cases[i].ec ? ec : client, cases[i].ec ? ec_key : client_key,
		        body, BODY_LEN, &len);
		mut = cmstest_with_alg(
		        der, len, cases[i].which, cases[i].nid, cases[i].ptype, &mlen);
		if (cases[i].want == MDM_OK)
			verify_ok(mut, mlen, body, BODY_LEN, cases[i].ec ? ec : client);
		else
			verify_refused(mut, mlen, body, BODY_LEN, cases[i].want, cases[i].msg);
		free(mut);
		free(der);
	}
}
END_TEST

void cms_sig_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "cms_sig", 120, setup, teardown);

	ts_add_tests(tc, vector_header2, vector_header1, roundtrip, sign_bad_arguments,
	        cli_signs_we_verify, we_sign_cli_verifies, cli_refusals, malformed, logs_once,
	        alg_policy);
}
