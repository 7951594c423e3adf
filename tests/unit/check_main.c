/*
 * The unit test runner: every suite, one summary line from check.
 * Run from the repository root (fixtures are read from tests/unit/data).
 * The db and scep suites need MDM_TEST_DB, a conninfo for a scratch
 * database; tests/run.sh starts one.  MDM_TEST_EXCLUDE names suites to
 * leave out, separated by commas: the valgrind pass leaves out scep,
 * whose dozens of RSA key generations take minutes there (the sanitizer
 * build runs it in full).
 */
#include "suites.h"

#include <stdlib.h>
#include <string.h>

static int excluded(const char *name)
{
	const char *list = getenv("MDM_TEST_EXCLUDE");
	size_t n = strlen(name);

	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, ",");
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

int main(void)
{
	static const struct {
		const char *name;
		Suite *(*make)(void);
	} suites[] = {
	        {"errors", errors_suite},
	        {"log", log_suite},
	        {"config", config_suite},
	        {"fcgi", fcgi_suite},
	        {"program", program_suite},
	        {"base64", base64_suite},
	        {"x509", x509_suite},
	        {"plist", plist_suite},
	        {"cms", cms_suite},
	        {"cms_sig", cms_sig_suite},
	        {"db", db_suite},
	        {"scep", scep_suite},
	        {"scep_ops", scep_ops_suite},
	        {"enroll", enroll_suite},
	        {"checkin_parse", checkin_parse_suite},
	        {"checkin", checkin_suite},
	        {"checkin_require_tls", checkin_require_tls_suite},
	        {"command", command_suite},
	        {"commands_sql", commands_sql_suite},
	        {"apns", apns_suite},
	        {"pushq", pushq_suite},
	        {"ota", ota_suite},
	};
	SRunner *sr = NULL;
	int failed;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (excluded(suites[i].name))
			continue;
		if (sr == NULL)
			sr = srunner_create(suites[i].make());
		else
			srunner_add_suite(sr, suites[i].make());
	}
	if (sr == NULL)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
