/*
 * cms: general CMS, and the suite the SCEP message tests fill
 * (test_scep_msg.c, test_scep_msg_env.c): degenerate certificates-only
 * SignedData built and read, real GetCACert replies, and Apple's CMS
 * robustness corpus, all refused as pkiMessages, none crashing.
 *
 * Real captures come from the shared vectors (MDM_VECTORS, default
 * ../shared/vectors); they are read in place, never copied into the tree,
 * and their cases are skipped with a message when absent.  The fixture
 * and helpers are cmstest.c's.
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

/* ---- real captures ---- */

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
		ct_free_certs(certs, n);
		/* Not a pkiMessage: no SignerInfo. */
		ct_check_refused(der, len, MDM_ERR_PARSE, SCEP_BAD_MESSAGE_CHECK, "0 SignerInfos");
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
			/* Over the limit is refused as such: so much is read. */
			if ((der = ts_file_read(file, MDM_MAX_BODY_SCEP + 1, &len)) == NULL)
				continue;
			ct_check_refused(der, len,
			        len > MDM_MAX_BODY_SCEP ? MDM_ERR_LIMIT : MDM_ERR_PARSE, ANY_FAIL,
			        NULL);
			if (cms_certs_only_parse(der, len, &certs, &n) == MDM_OK)
				ct_free_certs(certs, n);
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
	ck_assert(ct_has_cert(certs, n, ca) && ct_has_cert(certs, n, issued));
	ct_free_certs(certs, n);
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
	if (ts_sh("openssl version >/dev/null 2>&1") == 0)
		ck_assert(ct_openssl_verifies(der, len, ""));
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
	ct_free_certs(certs, n);
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

void cms_tcases(Suite *s)
{
	TCase *vectors = ts_tcase(s, "vectors", 120, cmstest_setup, cmstest_teardown);
	TCase *roundtrip = ts_tcase(s, "roundtrip", 120, cmstest_setup, cmstest_teardown);
	TCase *hostile = ts_tcase(s, "hostile", 120, cmstest_setup, cmstest_teardown);

	ts_add_tests(vectors, vector_getcacert, vector_apple_corpus);
	ts_add_tests(roundtrip, certs_only);
	scep_msg_tests(vectors, roundtrip, hostile);
	scep_msg_env_tests(vectors, roundtrip, hostile);
}
