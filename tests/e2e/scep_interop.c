/*
 * SCEP through Apache with clients nobody here wrote: micromdm's
 * scepclient (Debian package scep) and certmonger's scep-submit, plus the
 * openssl command line as the judge of what they received.  Each client
 * runs in a fresh directory; challenges come from mdm.scep_challenge_new
 * in the stack's database (MDM_DB).
 */
#include "db.h"

#include <check.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

Suite *scep_interop_suite(void);

static const char *scep_url, *tmpdir, *static_challenge;

/* Runs a shell command; returns its exit status (output to the given log). */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *challenge_new(void)
{
	db *d = NULL;
	db_res *r = NULL;
	char *c;

	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e", &d), MDM_OK);
	ck_assert_int_eq(db_exec(d, "SELECT mdm.scep_challenge_new()", 0, NULL, &r), MDM_OK);
	c = strdup(db_res_get0(r, 0, 0));
	db_res_free(r);
	db_free(d);
	return c;
}

static int issued_count(void)
{
	db *d = NULL;
	db_res *r = NULL;
	int n;

	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e", &d), MDM_OK);
	ck_assert_int_eq(db_exec(d, "SELECT count(*) FROM mdm.certificate WHERE kind = 'device'", 0,
	                         NULL, &r),
	        MDM_OK);
	n = atoi(db_res_get0(r, 0, 0));
	db_res_free(r);
	db_free(d);
	return n;
}

/* The CA as GetCACert serves it, in PEM for openssl verify. */
static void fetch_ca(const char *dir)
{
	ck_assert_int_eq(sh("curl -sSf -o %s/ca.der '%s?operation=GetCACert' && "
	                    "openssl x509 -inform DER -in %s/ca.der -out %s/ca.pem",
	                         dir, scep_url, dir, dir),
	        0);
}

/* scepclient in a fresh directory; returns its exit status. */
static int scepclient(const char *dir, const char *challenge, const char *cn)
{
	ck_assert_int_eq(sh("mkdir -p %s && openssl genrsa -traditional -out %s/key.pem 2048 "
	                    "2>/dev/null",
	                         dir, dir),
	        0);
	return sh("cd %s && scepclient -server-url '%s' -challenge '%s' -private-key key.pem "
	          "-cn '%s' >scepclient.log 2>&1",
	        dir, scep_url, challenge, cn);
}

START_TEST(caps_offer_what_we_do)
{
	char path[512], buf[512] = "";
	FILE *fp;

	snprintf(path, sizeof(path), "%s/caps.txt", tmpdir);
	ck_assert_int_eq(sh("curl -sSf -o %s '%s?operation=GetCACaps'", path, scep_url), 0);
	fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	buf[fread(buf, 1, sizeof(buf) - 1, fp)] = '\0';
	fclose(fp);
	ck_assert_ptr_nonnull(strstr(buf, "AES"));
	ck_assert_ptr_nonnull(strstr(buf, "SHA-256"));
	ck_assert_ptr_nonnull(strstr(buf, "POSTPKIOperation"));
	ck_assert_ptr_nonnull(strstr(buf, "SCEPStandard"));
}
END_TEST

START_TEST(scepclient_one_time_challenge)
{
	char dir[512], dir2[512];
	char *ch = challenge_new();
	int before;

	snprintf(dir, sizeof(dir), "%s/scepclient-1", tmpdir);
	ck_assert_int_eq(scepclient(dir, ch, "e2e-device-1"), 0);
	fetch_ca(dir);
	/* openssl, not our code, says the certificate is ours and for client auth. */
	ck_assert_int_eq(sh("openssl verify -purpose sslclient -CAfile %s/ca.pem %s/client.pem "
	                    ">/dev/null",
	                         dir, dir),
	        0);
	ck_assert_int_eq(sh("openssl x509 -in %s/client.pem -noout -subject | grep -q "
	                    "e2e-device-1",
	                         dir),
	        0);
	/* The same challenge a second time (new key, new directory): refused. */
	before = issued_count();
	snprintf(dir2, sizeof(dir2), "%s/scepclient-2", tmpdir);
	ck_assert_int_ne(scepclient(dir2, ch, "e2e-device-2"), 0);
	ck_assert_int_ne(access(dir2, F_OK), -1);
	ck_assert_int_eq(issued_count(), before);
	free(ch);
}
END_TEST

START_TEST(scepclient_static_challenge)
{
	char dir[512];

	if (static_challenge == NULL) {
		fprintf(stderr, "scep-interop: E2E_STATIC_CHALLENGE unset; static case skipped\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/scepclient-static", tmpdir);
	ck_assert_int_eq(scepclient(dir, static_challenge, "e2e-static"), 0);
	fetch_ca(dir);
	ck_assert_int_eq(
	        sh("openssl verify -CAfile %s/ca.pem %s/client.pem >/dev/null", dir, dir), 0);
}
END_TEST

START_TEST(scepclient_wrong_challenge)
{
	char dir[512];
	int before = issued_count();

	snprintf(dir, sizeof(dir), "%s/scepclient-wrong", tmpdir);
	ck_assert_int_ne(scepclient(dir, "wrong-challenge-wrong-challenge", "e2e-wrong"), 0);
	ck_assert_int_eq(issued_count(), before);
}
END_TEST

START_TEST(certmonger_enrols)
{
	char dir[512];
	char *ch = challenge_new();
	const char *script = getenv("E2E_CERTMONGER_SCRIPT");

	if (script == NULL ||
	        sh("command -v certmonger >/dev/null && command -v "
	           "dbus-run-session >/dev/null") != 0) {
		fprintf(stderr,
		        "scep-interop: certmonger or dbus missing; certmonger case skipped\n");
		free(ch);
		return;
	}
	snprintf(dir, sizeof(dir), "%s/certmonger", tmpdir);
	ck_assert_int_eq(sh("mkdir -p %s", dir), 0);
	fetch_ca(dir);
	ck_assert_int_eq(
	        sh("sh %s %s '%s' '%s' >%s/certmonger.log 2>&1", script, dir, scep_url, ch, dir),
	        0);
	ck_assert_int_eq(sh("openssl verify -purpose sslclient -CAfile %s/ca.pem %s/cert.pem "
	                    ">/dev/null",
	                         dir, dir),
	        0);
	free(ch);
}
END_TEST

Suite *scep_interop_suite(void)
{
	Suite *s = suite_create("scep-interop");
	TCase *tc = tcase_create("clients");

	static char dir[512];

	scep_url = getenv("E2E_SCEP_URL");
	/* A directory per Apache mode: scepclient reuses what it finds in one. */
	snprintf(dir, sizeof(dir), "%s/%s", getenv("E2E_TMP") ? getenv("E2E_TMP") : "/tmp",
	        getenv("E2E_MODE") ? getenv("E2E_MODE") : "apache");
	mkdir(dir, 0700);
	tmpdir = dir;
	static_challenge = getenv("E2E_STATIC_CHALLENGE");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, caps_offer_what_we_do);
	tcase_add_test(tc, scepclient_one_time_challenge);
	tcase_add_test(tc, scepclient_static_challenge);
	tcase_add_test(tc, scepclient_wrong_challenge);
	tcase_add_test(tc, certmonger_enrols);
	suite_add_tcase(s, tc);
	return s;
}
