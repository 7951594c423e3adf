/*
 * The unit suites, in the order tests/unit/check_main.c runs them: the
 * one list.  A suite is a file tests/unit/test_NAME.c (the Makefile
 * builds every .c file there) whose function void NAME_tcases(Suite *)
 * adds its tcases (ts_tcase, ts_add_tests: tests/support/ts_check.h),
 * and one line below; that line declares the function and has the
 * runner call it.
 *
 * X(name, tcases, db): name is the check suite's (CK_RUN_SUITE,
 * MDM_TEST_EXCLUDE); tcases the function; db UNIT_DB when its tcases need
 * MDM_TEST_DB (a scratch PostgreSQL database per test, ts_db.h), else
 * UNIT_NO_DB.  A suite with tcases of both kinds has two lines, one
 * function each (NAME_tcases, NAME_db_tcases), side by side: they make
 * one check suite, of which `make unit` (MDM_TEST_NO_DB=1, no
 * PostgreSQL) runs only the UNIT_NO_DB part.
 *
 * Order matters in one process (CK_FORK=no, the valgrind pass): once x509
 * has loaded the pkcs11 engine and events has initialised libcurl, which
 * registers every loaded engine as a default, EVP_EC_gen goes to the
 * engine and fails ("unknown group").  acme, which makes EC keys, runs
 * before events.  No server program loads the engine before it
 * initialises libcurl (mdm-pushd: libcurl first, then its key).
 */
#ifndef MDM_TEST_SUITES_H
#define MDM_TEST_SUITES_H

#include <check.h>

#include "ts_check.h"

#define UNIT_NO_DB 0
#define UNIT_DB    1

#define UNIT_SUITES(X)                                                                             \
	X(errors, errors_tcases, UNIT_NO_DB)                                                       \
	X(log, log_tcases, UNIT_NO_DB)                                                             \
	X(config, config_tcases, UNIT_NO_DB)                                                       \
	X(fcgi, fcgi_tcases, UNIT_NO_DB)                                                           \
	X(program, program_tcases, UNIT_NO_DB)                                                     \
	X(base64, base64_tcases, UNIT_NO_DB)                                                       \
	X(json, json_tcases, UNIT_NO_DB)                                                           \
	X(jws, jws_tcases, UNIT_NO_DB)                                                             \
	X(x509, x509_tcases, UNIT_NO_DB)                                                           \
	X(plist, plist_tcases, UNIT_NO_DB)                                                         \
	X(cms, cms_tcases, UNIT_NO_DB)                                                             \
	X(cms_sig, cms_sig_tcases, UNIT_NO_DB)                                                     \
	X(attest, attest_tcases, UNIT_NO_DB)                                                       \
	X(db, db_tcases, UNIT_DB)                                                                  \
	X(scep, scep_tcases, UNIT_DB)                                                              \
	X(scep_ops, scep_ops_tcases, UNIT_DB)                                                      \
	X(enroll, enroll_tcases, UNIT_NO_DB)                                                       \
	X(enroll, enroll_db_tcases, UNIT_DB)                                                       \
	X(checkin_parse, checkin_parse_tcases, UNIT_NO_DB)                                         \
	X(checkin, checkin_tcases, UNIT_DB)                                                        \
	X(checkin_require_tls, checkin_require_tls_tcases, UNIT_NO_DB)                             \
	X(command, command_tcases, UNIT_NO_DB)                                                     \
	X(command, command_db_tcases, UNIT_DB)                                                     \
	X(commands_sql, commands_sql_tcases, UNIT_DB)                                              \
	X(ddm, ddm_tcases, UNIT_DB)                                                                \
	X(apns, apns_tcases, UNIT_NO_DB)                                                           \
	X(pushq, pushq_db_tcases, UNIT_DB)                                                         \
	X(pushq, pushq_tcases, UNIT_NO_DB)                                                         \
	X(ota, ota_tcases, UNIT_NO_DB)                                                             \
	X(ota, ota_db_tcases, UNIT_DB)                                                             \
	X(report, report_tcases, UNIT_NO_DB)                                                       \
	X(report, report_db_tcases, UNIT_DB)                                                       \
	X(acme, acme_tcases, UNIT_NO_DB)                                                           \
	X(acme, acme_db_tcases, UNIT_DB)                                                           \
	X(events, events_tcases, UNIT_NO_DB)                                                       \
	X(events, events_db_tcases, UNIT_DB)                                                       \
	X(metrics, metrics_tcases, UNIT_NO_DB)                                                     \
	X(metrics, metrics_db_tcases, UNIT_DB)

#define UNIT_SUITE_DECLARE(name, tcases, db) void tcases(Suite *s);
UNIT_SUITES(UNIT_SUITE_DECLARE)
#undef UNIT_SUITE_DECLARE

#endif
