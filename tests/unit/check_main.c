/*
 * The unit test runner: every suite, one summary line from check.
 * Run from the repository root (fixtures are read from tests/unit/data).
 * The db suite needs MDM_TEST_DB, a conninfo for a scratch database;
 * tests/run.sh starts one.
 */
#include "suites.h"

#include <stdlib.h>

int main(void)
{
	SRunner *sr = srunner_create(errors_suite());
	int failed;

	srunner_add_suite(sr, log_suite());
	srunner_add_suite(sr, config_suite());
	srunner_add_suite(sr, fcgi_suite());
	srunner_add_suite(sr, app_suite());
	srunner_add_suite(sr, x509_suite());
	srunner_add_suite(sr, plist_suite());
	srunner_add_suite(sr, cms_suite());
	srunner_add_suite(sr, db_suite());
	srunner_add_suite(sr, scep_suite());
	srunner_add_suite(sr, base64_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
