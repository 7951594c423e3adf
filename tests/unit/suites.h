/* Every check suite of the unit test runner (tests/unit/check_main.c). */
#ifndef MDM_TEST_SUITES_H
#define MDM_TEST_SUITES_H

#include <check.h>

Suite *errors_suite(void);
Suite *log_suite(void);
Suite *config_suite(void);
Suite *fcgi_suite(void);
Suite *program_suite(void);
Suite *x509_suite(void);
Suite *db_suite(void);
Suite *plist_suite(void);
Suite *cms_suite(void);
Suite *scep_suite(void);
Suite *scep_ops_suite(void);
Suite *base64_suite(void);
Suite *enroll_suite(void);
Suite *cms_sig_suite(void);
Suite *checkin_parse_suite(void);
Suite *checkin_suite(void);
Suite *checkin_require_tls_suite(void);
Suite *command_suite(void);
Suite *commands_sql_suite(void);
Suite *apns_suite(void);
Suite *pushq_suite(void);
Suite *ota_suite(void);

#endif
