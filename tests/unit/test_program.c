/* program: the dispatch every program puts in front of its handler. */
#include "program.h"
#include "fakeio.h"
#include "log.h"
#include "suites.h"
#include "ts_sys.h"

#include <stdio.h>
#include <stdlib.h>

static int handled;
static size_t handled_len;

static mdm_err record_handle(struct program *a, fcgi_req *r)
{
	(void)a;
	handled++;
	handled_len = r->body_len;
	return fcgi_respond_text(r, 200, NULL, "handled");
}

static const struct program_spec ep = {
        "test.fcgi",
        "PUT",
        1024,
        "a test protocol",
        record_handle,
};

static mdm_err unavailable_handle(struct program *a, fcgi_req *r)
{
	return program_fail(a, r, MDM_ERR_DB_CONN, "the database cannot serve now");
}

static const struct program_spec ep_unavailable = {
        "test.fcgi",
        "PUT",
        1024,
        "a test protocol",
        unavailable_handle,
};

static void setup(void)
{
	handled = 0;
	handled_len = 0;
	log_set_level(MDM_LOG__MAX);
}

static void run(char **env, const char *body, size_t len, struct fakeio *f, mdm_err want)
{
	struct program a = {.ep = &ep};
	struct fcgi_io io = fakeio_bind(f, body, len);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(program_dispatch(&a, &r), want);
	ck_assert(r.responded);
	fcgi_req_clear(&r);
}

/* A small file into buf, without its trailing newlines. */
static void slurp(const char *path, char *buf, size_t cap)
{
	size_t n = ts_file_into(path, buf, cap);

	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
}

START_TEST(health_without_database)
{
	char *env[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/mdm/checkin/health", NULL};
	struct fakeio f;

	run(env, "", 0, &f, MDM_OK);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 503 "));
	ck_assert_ptr_nonnull(strstr(f.out, "unavailable test.fcgi db=down client_cert=none\n"));
	ck_assert_int_eq(handled, 0);
}
END_TEST

START_TEST(health_reports_client_certificate)
{
	char fp[80], want[128];
	static char certenv[8192] = "SSL_CLIENT_CERT=";
	size_t n = strlen(certenv);
	struct fakeio f;

	slurp("tests/unit/data/x509/client.sha256", fp, sizeof(fp));
	slurp("tests/unit/data/x509/client.pem", certenv + n, sizeof(certenv) - n);
	char *env[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x/health?y", certenv, NULL};
	run(env, "", 0, &f, MDM_OK);
	snprintf(want, sizeof(want), "client_cert=sha256:%s\n", fp);
	ck_assert_ptr_nonnull(strstr(f.out, want));

	char *bad[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x/health",
	        "SSL_CLIENT_CERT=-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	        NULL};
	run(bad, "", 0, &f, MDM_OK);
	ck_assert_ptr_nonnull(strstr(f.out, "client_cert=invalid\n"));
}
END_TEST

START_TEST(wrong_method_gets_405_with_allow)
{
	char *env[] = {"REQUEST_METHOD=DELETE", "REQUEST_URI=/x", "CONTENT_LENGTH=3", NULL};
	struct fakeio f;

	run(env, "abc", 3, &f, MDM_ERR_METHOD);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 405 Method Not Allowed\r\n"));
	ck_assert_ptr_nonnull(strstr(f.out, "\r\nAllow: PUT\r\n"));
	ck_assert_ptr_nonnull(strstr(f.out, "test.fcgi accepts PUT (a test protocol)"));
	ck_assert_uint_eq(f.in_pos, 3); /* drained */
	ck_assert_int_eq(handled, 0);

	/* /health is only for GET and HEAD. */
	char *post[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/x/health", NULL};
	run(post, "", 0, &f, MDM_ERR_METHOD);
	ck_assert_int_eq(handled, 0);
}
END_TEST

START_TEST(oversized_body_gets_413)
{
	static char big[2048];
	char *env[] = {"REQUEST_METHOD=PUT", "REQUEST_URI=/x", "CONTENT_LENGTH=1025", NULL};
	char *chunked[] = {"REQUEST_METHOD=PUT", "REQUEST_URI=/x", NULL};
	struct fakeio f;

	run(env, big, 1025, &f, MDM_ERR_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 413 Payload Too Large\r\n"));
	ck_assert_ptr_nonnull(strstr(f.out, "limit of 1024 bytes"));
	run(chunked, big, sizeof(big), &f, MDM_ERR_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 413 "));
	ck_assert_int_eq(handled, 0);
}
END_TEST

START_TEST(allowed_request_reaches_handler)
{
	char *env[] = {"REQUEST_METHOD=PUT", "REQUEST_URI=/x", "CONTENT_LENGTH=1024", NULL};
	static char body[1024];
	struct fakeio f;

	run(env, body, sizeof(body), &f, MDM_OK);
	ck_assert_int_eq(handled, 1);
	ck_assert_uint_eq(handled_len, 1024);
	ck_assert_ptr_nonnull(strstr(f.out, "handled\n"));
}
END_TEST

/* RFC 9110 section 15.6.4: a 503 may say when to come back. */
START_TEST(unavailable_database_gets_503_with_retry_after)
{
	char *env[] = {"REQUEST_METHOD=PUT", "REQUEST_URI=/x", "CONTENT_LENGTH=0", NULL};
	struct program a = {.ep = &ep_unavailable};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "", 0);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(program_dispatch(&a, &r), MDM_ERR_DB_CONN);
	fcgi_req_clear(&r);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 503 Service Unavailable\r\n"));
	ck_assert_ptr_nonnull(strstr(f.out, "\r\nRetry-After: 5\r\n"));
}
END_TEST

/* Configuration every program needs is read once, at start-up: a bad value stops it there. */
START_TEST(bad_require_tls_stops_start_up)
{
	setenv("MDM_DB", "dbname=mdm-unit-never-connected", 1);
	setenv("MDM_CHECKIN_REQUIRE_TLS", "maybe", 1);
	unsetenv("MDM_CONFIG");
	ck_assert_int_eq(program_main(&ep, 0, NULL), 1);
	unsetenv("MDM_CHECKIN_REQUIRE_TLS");
}
END_TEST

void program_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "dispatch", 0, setup, NULL);

	ts_add_tests(tc, health_without_database, health_reports_client_certificate,
	        wrong_method_gets_405_with_allow, oversized_body_gets_413,
	        allowed_request_reaches_handler, unavailable_database_gets_503_with_retry_after,
	        bad_require_tls_stops_start_up);
}
