/*
 * Faults end to end, through the real Apache and the stack's PostgreSQL:
 * the database turns read-only under the running programs (their
 * sessions are cut, as a failover cuts them, and every new session is
 * read-only, as on a standby).  Every request is answered 503 with
 * Retry-After, nothing is written, and once the database is writable
 * again the same programs serve without a restart.  Prints a ledger.
 *
 * Environment (tests/run.sh): E2E_HTTPS_BASE, E2E_TLS_CA, E2E_TMP,
 * E2E_MODE, MDM_DB (the role owns the database: ALTER DATABASE is allowed).
 */
#include "db.h"
#include "e2eutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *faults_e2e_suite(void);

#define FAULT_REQUESTS 8

/* Runs sql on a session that is writable even while the database's default is not. */
static void admin_exec(const char *sql)
{
	char conninfo[2048];
	db *d = NULL;

	snprintf(conninfo, sizeof(conninfo), "%s options='-c default_transaction_read_only=off'",
	        getenv("MDM_DB"));
	ck_assert_int_eq(db_new(conninfo, "e2e-faults", &d), MDM_OK);
	ck_assert_int_eq(db_exec(d, sql, 0, NULL, NULL), MDM_OK);
	db_free(d);
}

/* GET /enroll (writes a challenge); returns the status, *retry_after set if the header came. */
static int get_enroll(int *retry_after)
{
	char hdr[1024], code[1024];
	char *h, *c;
	int status;

	snprintf(hdr, sizeof(hdr), "%s/faults-%s.hdr", getenv("E2E_TMP"), getenv("E2E_MODE"));
	snprintf(code, sizeof(code), "%s/faults-%s.code", getenv("E2E_TMP"), getenv("E2E_MODE"));
	ck_assert_int_eq(e2e_sh("curl -sS --cacert '%s' -D '%s' -o /dev/null -w '%%{http_code}' "
	                        "'%s/enroll' >'%s'",
	                         getenv("E2E_TLS_CA"), hdr, getenv("E2E_HTTPS_BASE"), code),
	        0);
	c = e2e_file_get(code, NULL);
	status = atoi(c);
	free(c);
	h = e2e_file_get(hdr, NULL);
	*retry_after = strstr(h, "\nRetry-After: 5\r\n") != NULL;
	free(h);
	return status;
}

/* Even when a check fails: the suites after this one need a writable database. */
static void writable_again(void)
{
	admin_exec("DO $$ BEGIN EXECUTE format("
	           "'ALTER DATABASE %I RESET default_transaction_read_only', "
	           "current_database()); END $$");
}

START_TEST(read_only_database_is_503_then_recovers)
{
	int before = 0, during = 0, after = 0, s503 = 0, s5xx = 0, retry = 0, ra;
	char *n0, *n1, *n2;

	ck_assert_int_eq(get_enroll(&ra), 200);
	before++;
	n0 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);

	/* The fault: new sessions are read-only, the programs' sessions are cut. */
	admin_exec("DO $$ BEGIN EXECUTE format("
	           "'ALTER DATABASE %I SET default_transaction_read_only = on', "
	           "current_database()); END $$");
	admin_exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
	           "WHERE datname = current_database() AND pid <> pg_backend_pid() "
	           "AND application_name LIKE '%.fcgi'");
	for (int i = 0; i < FAULT_REQUESTS; i++) {
		int st = get_enroll(&ra);
		during++;
		s503 += st == 503;
		s5xx += st >= 500 && st != 503;
		retry += st == 503 && ra;
	}
	n1 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);

	/* The fault goes away: the same programs serve again, no restart. */
	writable_again();
	admin_exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
	           "WHERE datname = current_database() AND pid <> pg_backend_pid() "
	           "AND application_name LIKE '%.fcgi'");
	ck_assert_int_eq(get_enroll(&ra), 200);
	after++;
	n2 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);

	printf("faults ledger (%s): read-only database: sent %d before (2xx %d), %d during "
	       "(503 %d with Retry-After %d, other 5xx %d), %d after (2xx %d); challenges "
	       "%s before, %s during (written while read-only: %d), %s after\n",
	        getenv("E2E_MODE"), before, before, during, s503, retry, s5xx, after, after, n0, n1,
	        atoi(n1) - atoi(n0), n2);
	fflush(stdout); /* a failed check exits the forked test without flushing */
	ck_assert_int_eq(s503, FAULT_REQUESTS);
	ck_assert_int_eq(retry, FAULT_REQUESTS);
	ck_assert_int_eq(s5xx, 0);
	ck_assert_str_eq(n1, n0); /* nothing half-written */
	ck_assert_int_eq(atoi(n2), atoi(n0) + 1);
	free(n0);
	free(n1);
	free(n2);
}
END_TEST

Suite *faults_e2e_suite(void)
{
	Suite *s = suite_create("faults-e2e");
	TCase *tc = tcase_create("read-only");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, NULL, writable_again);
	tcase_add_test(tc, read_only_database_is_503_then_recovers);
	suite_add_tcase(s, tc);
	return s;
}
