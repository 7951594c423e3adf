/*
 * GET /mdm/metrics through the test Apache: refused without the token,
 * with a device's certificate and with a wrong token, without a word of
 * the metrics; served with the token (E2E_METRICS_TOKEN, the contents of
 * MDM_METRICS_TOKEN_FILE), and the requests made before the scrape are in
 * its counts.  The harness sets metrics_flush_seconds = 0, so that every
 * worker's count is in the database when the scrape comes.
 */
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[512];
static char url[1024];

static void setup(void)
{
	const char *base;

	e2e_stack(&base, NULL, NULL);
	ck_assert_ptr_nonnull(base);
	snprintf(url, sizeof url, "%s/mdm/metrics", base);
	e2e_tmpdir(tmpdir, sizeof tmpdir, "metrics-%s", e2e_mode());
}

/* GET url with these curl options; the answer's body into *body (malloc'd). */
static int get(const char *u, const char *opts, char **body)
{
	char reply[600];
	int status;

	snprintf(reply, sizeof reply, "%s/reply", tmpdir);
	status = e2e_request("GET", u, "/dev/null", NULL, opts, reply);
	*body = ts_file_get(reply, NULL);
	return status;
}

/* The value of the sample line that starts with prefix, -1 when none. */
static long long sample(const char *text, const char *prefix)
{
	char needle[512];
	const char *p;

	snprintf(needle, sizeof needle, "\n%s ", prefix);
	p = strstr(text, needle);
	return p != NULL ? strtoll(p + strlen(needle), NULL, 10) : -1;
}

START_TEST(refused_without_the_token)
{
	char opts[2048], *body;

	ck_assert_int_eq(get(url, "", &body), 401);
	ck_assert_ptr_null(strstr(body, "mdm_"));
	free(body);
	/* A device's certificate: no credential here. */
	snprintf(opts, sizeof opts, "--cert '%s' --key '%s'", getenv("E2E_CLIENT_CERT"),
	        getenv("E2E_CLIENT_KEY"));
	ck_assert_int_eq(get(url, opts, &body), 401);
	ck_assert_ptr_null(strstr(body, "mdm_"));
	free(body);
	snprintf(opts, sizeof opts,
	        "--cert '%s' --key '%s' -H 'Authorization: Bearer not-the-token-0123456789'",
	        getenv("E2E_CLIENT_CERT"), getenv("E2E_CLIENT_KEY"));
	ck_assert_int_eq(get(url, opts, &body), 403);
	ck_assert_ptr_null(strstr(body, "mdm_"));
	free(body);
}
END_TEST

#define CHECKIN_2XX "mdm_http_requests_total{program=\"checkin.fcgi\",class=\"2xx\"}"

START_TEST(served_with_the_token_and_counts_requests)
{
	char auth[512], health[1100], *body;
	long long before, after;
	const char *base;

	e2e_stack(&base, NULL, NULL);
	snprintf(auth, sizeof auth, "-H 'Authorization: Bearer %s'", getenv("E2E_METRICS_TOKEN"));
	ck_assert_int_eq(get(url, auth, &body), 200);
	ck_assert_ptr_nonnull(strstr(body, "# TYPE mdm_devices gauge\n"));
	before = sample(body, CHECKIN_2XX);
	free(body);
	snprintf(health, sizeof health, "%s/mdm/checkin/health", base);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(get(health, "", &body), 200);
		free(body);
	}
	ck_assert_int_eq(get(url, auth, &body), 200);
	after = sample(body, CHECKIN_2XX);
	ck_assert_msg(after >= (before < 0 ? 0 : before) + 3, "checkin 2xx before %lld after %lld",
	        before, after);
	ck_assert_ptr_nonnull(strstr(body,
	        "mdm_http_request_duration_seconds_bucket{program="
	        "\"checkin.fcgi\",class=\"2xx\",le=\"+Inf\"}"));
	free(body);
}
END_TEST

#define SCEP_FAILED(f) "mdm_scep_pkioperations_total{outcome=\"FAILURE\",fail_info=\"" f "\"}"

/* The Apple simulator's SCEP request for one refusal (applesim's scep step). */
static int sim_scep(const char *args)
{
	char steps[512];

	snprintf(steps, sizeof steps, "profile scep %s", args);
	return e2e_applesim(tmpdir, "sim", steps);
}

/*
 * SCEP refusals are CertReps in HTTP 200: the request classes cannot show
 * them; mdm_scep_pkioperations_total counts them by failInfo.
 */
START_TEST(scep_refusals_counted_by_fail_info)
{
	char auth[512], *body;
	long long req0, alg0, req1, alg1;

	if (getenv("E2E_APPLESIM") == NULL || getenv("E2E_DEVICE_CA") == NULL) {
		printf("metrics-e2e: E2E_APPLESIM or E2E_DEVICE_CA unset: SCEP outcomes skipped\n");
		return;
	}
	snprintf(auth, sizeof auth, "-H 'Authorization: Bearer %s'", getenv("E2E_METRICS_TOKEN"));
	ck_assert_int_eq(get(url, auth, &body), 200);
	req0 = sample(body, SCEP_FAILED("badRequest"));
	alg0 = sample(body, SCEP_FAILED("badAlg"));
	free(body);
	ck_assert_int_eq(
	        sim_scep("--challenge not-a-challenge-of-ours --expect-failure badRequest"), 0);
	ck_assert_int_eq(
	        sim_scep("--challenge not-a-challenge-of-ours --expect-failure badRequest"), 0);
	ck_assert_int_eq(sim_scep("--digest md5 --expect-failure badAlg"), 0);
	ck_assert_int_eq(get(url, auth, &body), 200);
	req1 = sample(body, SCEP_FAILED("badRequest"));
	alg1 = sample(body, SCEP_FAILED("badAlg"));
	ck_assert_msg(req1 == (req0 < 0 ? 0 : req0) + 2 && alg1 == (alg0 < 0 ? 0 : alg0) + 1,
	        "badRequest %lld -> %lld, badAlg %lld -> %lld", req0, req1, alg0, alg1);
	free(body);
}
END_TEST

Suite *metrics_e2e_suite(void);
Suite *metrics_e2e_suite(void)
{
	Suite *s = suite_create("metrics-e2e");
	TCase *tc = tcase_create("metrics");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, refused_without_the_token);
	tcase_add_test(tc, served_with_the_token_and_counts_requests);
	tcase_add_test(tc, scep_refusals_counted_by_fail_info);
	suite_add_tcase(s, tc);
	return s;
}
