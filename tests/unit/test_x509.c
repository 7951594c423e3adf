/*
 * x509: fingerprints, certificate encodings and fields, the real vectors,
 * and x509_tcases, which gathers the tests of test_x509_key.c (keys),
 * test_x509_csr.c (CSRs), test_x509_issue.c (the CA, issuing, CRLs) and
 * test_x509_chain.c (verification) into its tcases.
 *
 * CSRs and odd certificates are built here with OpenSSL directly, so each
 * refusal is tested against exactly the defect it is about; the openssl
 * command line checks what the module writes as an independent party.
 * The clock is fixed (NOW).  Keys are throw-away files in
 * tests/unit/data/x509; the real vectors (MDM_VECTORS, else
 * ../shared/vectors) and SoftHSM are used when present, else skipped.
 */
#include "x509_testutil.h"

#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- fingerprints (as Apache passes client certificates) ---- */

START_TEST(fingerprint_matches_openssl)
{
	char pem[8192], want[128], fp[X509_FP_HEX_LEN + 1];
	size_t n = ts_file_into(DATA "client.pem", pem, sizeof(pem));

	ts_file_into(DATA "client.sha256", want, sizeof(want));
	want[strcspn(want, "\n")] = '\0';
	ck_assert_int_eq(x509_pem_fingerprint(pem, n, fp), MDM_OK);
	ck_assert_str_eq(fp, want);
}
END_TEST

START_TEST(refuses_non_certificates)
{
	char pem[8192], two[16384], fp[X509_FP_HEX_LEN + 1];
	size_t n = ts_file_into(DATA "client.pem", pem, sizeof(pem));

	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_pem_fingerprint("", 0, fp), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_pem_fingerprint("garbage", 7, fp), MDM_ERR_PARSE);
	ck_assert_str_eq(fp, "");
	/* Truncated at every 97th byte: never a fingerprint. */
	for (size_t i = 1; i + 1 < n; i += 97)
		ck_assert_int_eq(x509_pem_fingerprint(pem, i, fp), MDM_ERR_PARSE);
	/* Two certificates where one is expected. */
	snprintf(two, sizeof(two), "%s%s", pem, pem);
	ck_assert_int_eq(x509_pem_fingerprint(two, strlen(two), fp), MDM_ERR_PARSE);
}
END_TEST

/* ---- certificates: encodings ---- */

START_TEST(cert_encodings_round_trip)
{
	char pem[8192], want[128], dir[64], path[128];
	size_t n = ts_file_into(DATA "client.pem", pem, sizeof(pem)), derlen = 0, pemlen = 0;
	X509 *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	uint8_t *der = NULL;
	char *pem2 = NULL;
	struct x509_info ia, ib;

	ts_file_into(DATA "client.sha256", want, sizeof(want));
	want[strcspn(want, "\n")] = '\0';
	ck_assert_int_eq(x509_cert_load_file(DATA "client.pem", &a), MDM_OK);
	ck_assert_int_eq(x509_cert_from_pem(pem, n, &b), MDM_OK);
	ck_assert_int_eq(x509_cert_to_der(a, &der, &derlen), MDM_OK);
	ck_assert_int_eq(x509_cert_from_der(der, derlen, &c), MDM_OK);
	ck_assert_int_eq(x509_cert_to_pem(c, &pem2, &pemlen), MDM_OK);
	ck_assert_uint_eq(strlen(pem2), pemlen);
	ck_assert_str_eq(pem2, pem); /* the file is what PEM_write makes */
	/* DER on disk is recognised too. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(path, sizeof(path), "%s/client.der", dir);
	ts_file_write(path, der, derlen);
	ck_assert_int_eq(x509_cert_load_file(path, &d), MDM_OK);
	ck_assert_int_eq(x509_cert_info(a, &ia), MDM_OK);
	ck_assert_int_eq(x509_cert_info(d, &ib), MDM_OK);
	ck_assert_str_eq(ia.sha256, want);
	ck_assert_str_eq(ib.sha256, want);
	ck_assert_int_eq(x509_cert_same_key(a, d), 1);
	/* The key's name: SHA-256 of the SubjectPublicKeyInfo, as openssl computes it. */
	{
		char kfp[X509_FP_HEX_LEN + 1], out[256];

		ck_assert_int_eq(x509_cert_key_sha256(a, kfp), MDM_OK);
		ck_assert_int_eq(
		        ts_run(out, sizeof(out),
		                "openssl x509 -in " DATA "client.pem -noout -pubkey | "
		                "openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"),
		        0);
		ck_assert_msg(strncmp(out, kfp, 64) == 0, "%s vs %s", out, kfp);
		ck_assert_str_ne(kfp, ia.sha256);
		ck_assert_int_eq(x509_cert_key_sha256(NULL, kfp), MDM_ERR_INVAL);
		ck_assert_str_eq(kfp, "");
	}
	/* up_ref: two frees of one object. */
	ck_assert_ptr_eq(x509_cert_up_ref(d), d);
	x509_cert_free(d);
	x509_cert_free(d);
	x509_cert_free(NULL);
	ts_tmpdir_done(dir);
	free(der);
	free(pem2);
	x509_cert_free(a);
	x509_cert_free(b);
	x509_cert_free(c);
}
END_TEST

START_TEST(cert_der_is_strict)
{
	char pem[8192], dir[64], path[128];
	uint8_t *der = NULL, *big;
	size_t derlen = 0;
	X509 *a = NULL, *c = (X509 *)1;

	log_set_level(MDM_LOG__MAX);
	ts_file_into(DATA "client.pem", pem, sizeof(pem));
	ck_assert_int_eq(x509_cert_from_pem(pem, strlen(pem), &a), MDM_OK);
	ck_assert_int_eq(x509_cert_to_der(a, &der, &derlen), MDM_OK);
	ck_assert_ptr_nonnull(big = calloc(1, X509_MAX_DER + 2));
	memcpy(big, der, derlen);
	/* One trailing byte, or a second certificate glued on: refused, out cleared. */
	ck_assert_int_eq(x509_cert_from_der(big, derlen + 1, &c), MDM_ERR_PARSE);
	ck_assert_ptr_null(c);
	memcpy(big + derlen, der, derlen);
	ck_assert_int_eq(x509_cert_from_der(big, 2 * derlen, &c), MDM_ERR_PARSE);
	/* Every truncation. */
	for (size_t i = 0; i < derlen; i++)
		ck_assert_int_eq(x509_cert_from_der(der, i, &c), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_cert_from_der(NULL, 0, &c), MDM_ERR_PARSE);
	/* Over the limit: refused before parsing. */
	ck_assert_int_eq(x509_cert_from_der(big, X509_MAX_DER + 1, &c), MDM_ERR_LIMIT);
	/* The same for files: trailing garbage after DER. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(path, sizeof(path), "%s/trailing.der", dir);
	ts_file_write(path, big, derlen + 1);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_ERR_PARSE);
	snprintf(path, sizeof(path), "%s/big.pem", dir);
	ts_file_write(path, big, X509_MAX_FILE + 1);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_ERR_LIMIT);
	snprintf(path, sizeof(path), "%s/empty", dir);
	ts_file_write(path, "", 0);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_ERR_LIMIT);
	ck_assert_int_eq(x509_cert_load_file(dir, &c), MDM_ERR_IO);
	snprintf(path, sizeof(path), "%s/absent", dir);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_ERR_IO);
	ck_assert_ptr_null(c);
	ts_tmpdir_done(dir);
	free(big);
	free(der);
	x509_cert_free(a);
}
END_TEST

START_TEST(cert_pem_is_strict)
{
	char pem[8192], buf[32768], key[4096];
	X509 *c = (X509 *)1;

	log_set_level(MDM_LOG__MAX);
	ts_file_into(DATA "client.pem", pem, sizeof(pem));
	ts_file_into(DATA "ca.key", key, sizeof(key));
	/* Two certificates where one is expected. */
	snprintf(buf, sizeof(buf), "%s%s", pem, pem);
	ck_assert_int_eq(x509_cert_from_pem(buf, strlen(buf), &c), MDM_ERR_PARSE);
	ck_assert_ptr_null(c);
	/* No certificate at all. */
	ck_assert_int_eq(x509_cert_from_pem(key, strlen(key), &c), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_cert_from_pem("garbage", 7, &c), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_cert_from_pem("", 0, &c), MDM_ERR_PARSE);
	/* A key next to the certificate is skipped, and so is text before it. */
	snprintf(buf, sizeof(buf), "%s%s", key, pem);
	ck_assert_int_eq(x509_cert_from_pem(buf, strlen(buf), &c), MDM_OK);
	x509_cert_free(c);
	{
		char dir[64], path[128];

		ts_tmpdir_new(dir, sizeof(dir), "x509");
		snprintf(path, sizeof(path), "%s/c.pem", dir);
		snprintf(buf, sizeof(buf), "0 subject=CN=x\n%s", pem);
		ts_file_write(path, buf, strlen(buf));
		ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_OK);
		x509_cert_free(c);
		ts_tmpdir_done(dir);
	}
	/* Truncations. */
	for (size_t i = 1; i + 30 < strlen(pem); i += 61)
		ck_assert_int_eq(x509_cert_from_pem(pem, i, &c), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_cert_from_pem(buf, X509_MAX_FILE + 1, &c), MDM_ERR_LIMIT);
}
END_TEST

/*
 * The per-process cache of decoded client certificates (identity's
 * SSL_CLIENT_CERT): the same text gives the same certificate, each caller
 * its own reference; what does not decode is refused every time; more
 * certificates than it holds are decoded all the same (issue 15).
 */
START_TEST(cert_pem_cache)
{
	char pem[8192], *other = NULL;
	size_t olen = 0;
	EVP_PKEY *k = xt_load_key("ca.key");
	X509 *a = NULL, *b = NULL, *c = (X509 *)1, *ca = xt_ca_new(k, time(NULL), 1);

	log_set_level(MDM_LOG__MAX);
	ts_file_into(DATA "client.pem", pem, sizeof(pem));
	ck_assert_int_eq(x509_cert_to_pem(ca, &other, &olen), MDM_OK);
	ck_assert_int_eq(x509_cert_from_pem_cached(pem, strlen(pem), &a), MDM_OK);
	ck_assert_int_eq(x509_cert_from_pem_cached(pem, strlen(pem), &b), MDM_OK);
	ck_assert_int_eq(X509_cmp(a, b), 0);
	x509_cert_free(a);
	/* b is still whole after a is freed. */
	ck_assert_int_eq(x509_cert_from_pem_cached(other, strlen(other), &a), MDM_OK);
	ck_assert_int_ne(X509_cmp(a, b), 0);
	x509_cert_free(a);
	x509_cert_free(b);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(x509_cert_from_pem_cached("garbage", 7, &c), MDM_ERR_PARSE);
		ck_assert_ptr_null(c);
	}
	/* Past its capacity: every entry replaced, every answer still right. */
	for (int i = 0; i < 3 * X509_CERT_CACHE; i++) {
		char buf[8300];
		X509 *d = NULL, *want = NULL;

		/* Text before the certificate is skipped, so each of these is a new key. */
		snprintf(buf, sizeof(buf), "%d\n%s", i, i % 2 ? pem : other);
		ck_assert_int_eq(x509_cert_from_pem_cached(buf, strlen(buf), &d), MDM_OK);
		ck_assert_int_eq(x509_cert_from_pem(buf, strlen(buf), &want), MDM_OK);
		ck_assert_int_eq(X509_cmp(d, want), 0);
		x509_cert_free(want);
		x509_cert_free(d);
	}
	free(other);
	x509_cert_free(ca);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(cert_info_edge_cases)
{
	static const unsigned char twenty[20] = {
	        0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
	static const unsigned char one[] = {0x0a}, lead0[] = {0x00, 0x01, 0x02};
	static const unsigned char big[21] = {1};
	EVP_PKEY *k = xt_load_key("device.key");
	struct x509_info info;
	X509 *x;

	/* Serial: upper-case hex, no leading zero nibble. */
	x = xt_raw_cert(k, one, sizeof(one), 0, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_OK);
	ck_assert_str_eq(info.serial, "A");
	/* RFC 2253 escaping; no basicConstraints: not a CA. */
	ck_assert_str_eq(info.subject, "CN=raw\\,\\\"cn\\\"");
	ck_assert_int_eq(info.is_ca, 0);
	ck_assert_int_eq(info.not_before, NOW);
	ck_assert_int_eq(info.not_after, NOW + DAY);
	x509_cert_free(x);
	x = xt_raw_cert(k, lead0, sizeof(lead0), 0, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_OK);
	ck_assert_str_eq(info.serial, "102");
	x509_cert_free(x);
	x = xt_raw_cert(k, twenty, sizeof(twenty), 0, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_OK);
	ck_assert_str_eq(info.serial, "7F0102030405060708090A0B0C0D0E0F10111213");
	x509_cert_free(x);
	/* Over 20 octets, or negative: RFC 5280 4.1.2.2, refused and out cleared. */
	log_set_level(MDM_LOG__MAX);
	x = xt_raw_cert(k, big, sizeof(big), 0, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_ERR_PARSE);
	ck_assert_str_eq(info.sha256, "");
	x509_cert_free(x);
	x = xt_raw_cert(k, one, sizeof(one), 1, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_ERR_PARSE);
	x509_cert_free(x);
	/* A long subject is truncated to the field. */
	x = xt_raw_cert(k, one, sizeof(one), 0, 40);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_OK);
	ck_assert_uint_eq(strlen(info.subject), sizeof(info.subject) - 1);
	ck_assert(strncmp(info.subject, "CN=raw", 6) == 0);
	x509_cert_free(x);
	ck_assert_int_eq(x509_cert_info(NULL, &info), MDM_ERR_INVAL);
	x509_key_free(k);
}
END_TEST

/* ---- real vectors ---- */

/* The vectors' directory, or NULL (and a message) when they are absent. */
static const char *vectors(void)
{
	static char dir[512];
	const char *env = getenv("MDM_VECTORS");
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", env != NULL && env[0] != '\0' ? env : "../shared/vectors");
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "x509: vectors not found at %s (set MDM_VECTORS): skipped\n", dir);
		return NULL;
	}
	return dir;
}

START_TEST(vector_scep_testca)
{
	const char *v = vectors();
	char crt[640], key[640], dir[64], plain[128], out[1024];
	EVP_PKEY *k = NULL;
	X509 *ca = NULL;
	struct x509_info info;

	if (v == NULL)
		return;
	snprintf(crt, sizeof(crt), "%s/scep/testdata/testca/ca.crt", v);
	snprintf(key, sizeof(key), "%s/scep/testdata/testca/ca.key", v);
	ck_assert_int_eq(x509_cert_load_file(crt, &ca), MDM_OK);
	ck_assert_int_eq(x509_cert_info(ca, &info), MDM_OK);
	ck_assert_str_eq(info.subject, "OU=CA,O=etcd-ca,C=USA");
	ck_assert_str_eq(info.issuer, info.subject);
	ck_assert_str_eq(info.serial, "1");
	ck_assert_int_eq(info.not_before, 1464529625); /* 2016-05-29T13:47:05Z */
	ck_assert_int_eq(info.not_after, 1780062428);  /* 2026-05-29T13:47:08Z */
	ck_assert_int_eq(info.is_ca, 1);
	/* The key is PEM-encrypted (empty passphrase): refused without a prompt. */
	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_key_load(key, &k), MDM_ERR_UNSUPPORTED);
	/* Decrypted, it is the certificate's key. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(plain, sizeof(plain), "%s/ca.key", dir);
	ck_assert_int_eq(ts_run(out, sizeof(out), "openssl pkey -passin pass: -in '%s' -out '%s'",
	                         key, plain),
	        0);
	ck_assert_int_eq(x509_key_load(plain, &k), MDM_OK);
	ck_assert_int_eq(EVP_PKEY_get_bits(k), 4096);
	ck_assert_int_eq(x509_key_matches_cert(k, ca), 1);
	ts_tmpdir_done(dir);
	x509_key_free(k);
	x509_cert_free(ca);
}
END_TEST

START_TEST(vector_macos_csr)
{
	const char *v = vectors();
	char path[640], subject[256], plain[128], dir[64], out[1024], *ch = (char *)1;
	uint8_t *der;
	size_t len, which = 99;
	X509_REQ *csr = NULL;
	X509 *ca = NULL, *c = NULL;
	EVP_PKEY *k = NULL;
	struct x509_issue_policy p = {365, 2048, 0};
	const time_t t2020 = 1577836800; /* inside the vector CA's validity */

	if (v == NULL)
		return;
	snprintf(path, sizeof(path), "%s/_derived/scep/PKCSReq.der.decrypted-csr.der", v);
	der = ts_file_get(path, &len);
	/* Version 2 (macOS quirk) accepted; SHA-1 signature verifies. */
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(X509_REQ_get_version(csr), 2);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	ck_assert_int_eq(x509_csr_subject(csr, subject, sizeof(subject)), MDM_OK);
	ck_assert_str_eq(
	        subject, "CN=com.apple.security.scep.063D7953-1338-4BF0-8F99-913382996224");
	ck_assert_int_eq(x509_csr_rsa_bits(csr), 1024);
	ck_assert_int_eq(x509_csr_challenge(csr, &ch), MDM_ERR_NOT_FOUND);
	ck_assert_ptr_null(ch);
	/* Trailing garbage after the real DER. */
	log_set_level(MDM_LOG__MAX);
	{
		X509_REQ *bad = (X509_REQ *)1;

		der[len] = 0;
		ck_assert_int_eq(x509_csr_from_der(der, len + 1, &bad), MDM_ERR_PARSE);
		ck_assert_ptr_null(bad);
	}
	/* Issued by the vector CA: refused at 2048 bits, accepted at 1024. */
	snprintf(path, sizeof(path), "%s/scep/testdata/testca/ca.crt", v);
	ck_assert_int_eq(x509_cert_load_file(path, &ca), MDM_OK);
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(plain, sizeof(plain), "%s/ca.key", dir);
	snprintf(path, sizeof(path), "%s/scep/testdata/testca/ca.key", v);
	ck_assert_int_eq(ts_run(out, sizeof(out), "openssl pkey -passin pass: -in '%s' -out '%s'",
	                         path, plain),
	        0);
	ck_assert_int_eq(x509_key_load(plain, &k), MDM_OK);
	ck_assert_int_eq(x509_issue(ca, k, csr, &p, t2020, &c), MDM_ERR_FORBIDDEN);
	p.min_rsa_bits = 1024;
	ck_assert_int_eq(x509_issue(ca, k, csr, &p, t2020, &c), MDM_OK);
	ck_assert_int_eq(x509_csr_key_matches_cert(csr, c), 1);
	ck_assert_int_eq(x509_csr_subject_matches_cert(csr, c), 1);
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, t2020, 1, &which), MDM_OK);
	ck_assert_uint_eq(which, 0);
	/* The vector CA expired on 2026-05-29. */
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, &which), MDM_ERR_AUTH);
	ts_tmpdir_done(dir);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(k);
	x509_csr_free(csr);
	free(der);
}
END_TEST

void x509_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "fingerprint", 0, NULL, NULL);

	ts_add_tests(tc, fingerprint_matches_openssl, refuses_non_certificates);
	tc = ts_tcase(s, "certificates", 0, NULL, NULL);
	ts_add_tests(tc, cert_encodings_round_trip, cert_der_is_strict, cert_pem_is_strict,
	        cert_pem_cache, cert_info_edge_cases);
	/* Key generation, openssl runs and SoftHSM take seconds under sanitizers. */
	x509_key_tests(ts_tcase(s, "keys", 60, NULL, NULL));
	x509_csr_tests(ts_tcase(s, "csr", 60, NULL, NULL));
	tc = ts_tcase(s, "ca", 60, NULL, NULL);
	x509_issue_tests(tc);
	x509_chain_tests(tc);
	tc = ts_tcase(s, "vectors", 60, NULL, NULL);
	ts_add_tests(tc, vector_scep_testca, vector_macos_csr);
}
