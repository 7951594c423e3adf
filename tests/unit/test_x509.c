/* x509: identifying the certificate Apache passes. */
#include "log.h"
#include "suites.h"
#include "x509.h"

#include <stdio.h>
#include <string.h>

static size_t slurp(const char *path, char *buf, size_t cap)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	ck_assert_msg(fp != NULL, "%s missing (run from the repository root)", path);
	n = fread(buf, 1, cap - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return n;
}

START_TEST(fingerprint_matches_openssl)
{
	char pem[8192], want[128], fp[X509_FP_HEX_LEN + 1];
	size_t n = slurp("tests/unit/data/x509/client.pem", pem, sizeof(pem));

	slurp("tests/unit/data/x509/client.sha256", want, sizeof(want));
	want[strcspn(want, "\n")] = '\0';
	ck_assert_int_eq(x509_pem_fingerprint(pem, n, fp), MDM_OK);
	ck_assert_str_eq(fp, want);
}
END_TEST

START_TEST(refuses_non_certificates)
{
	char pem[8192], two[16384], fp[X509_FP_HEX_LEN + 1];
	size_t n = slurp("tests/unit/data/x509/client.pem", pem, sizeof(pem));

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

Suite *x509_suite(void)
{
	Suite *s = suite_create("x509");
	TCase *tc = tcase_create("fingerprint");

	tcase_add_test(tc, fingerprint_matches_openssl);
	tcase_add_test(tc, refuses_non_certificates);
	suite_add_tcase(s, tc);
	return s;
}
