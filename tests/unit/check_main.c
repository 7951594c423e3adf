/*
 * The unit test runner: the suites of tests/unit/suites.h, in its order,
 * one summary line from check.  Run from the repository root (fixtures
 * are read from tests/unit/data).
 *
 * The suites marked UNIT_DB need MDM_TEST_DB, a conninfo for a server
 * that lets its role create databases (tests/run.sh starts one); each of
 * their tests gets a scratch database.  MDM_TEST_NO_DB=1 (`make unit`)
 * leaves them out and says so: the rest needs no PostgreSQL.
 * MDM_TEST_EXCLUDE names suites to leave out, separated by commas: the
 * valgrind pass leaves out scep, whose dozens of RSA key generations take
 * minutes there (the sanitizer build runs it in full).
 */
#include "suites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	void (*tcases)(Suite *s);
	int db;
} parts[] = {
#define UNIT_SUITE_PART(name, tcases, db) {#name, tcases, db},
        UNIT_SUITES(UNIT_SUITE_PART)
#undef UNIT_SUITE_PART
};

/* Whether parts[i] is one of two parts of its suite (the suite also has tcases of the other kind).
 */
static int split(size_t i)
{
	size_t n = sizeof(parts) / sizeof(parts[0]);

	return (i > 0 && strcmp(parts[i - 1].name, parts[i].name) == 0) ||
	        (i + 1 < n && strcmp(parts[i + 1].name, parts[i].name) == 0);
}

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
	const char *nodb = getenv("MDM_TEST_NO_DB");
	int without_db = nodb != NULL && strcmp(nodb, "") != 0 && strcmp(nodb, "0") != 0;
	SRunner *sr = NULL;
	Suite *s = NULL;
	const char *cur = NULL;
	int failed, left_out = 0;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (excluded(parts[i].name))
			continue;
		if (without_db && parts[i].db) {
			printf("%s %s%s",
			        left_out++ ? "," : "check_unit: MDM_TEST_NO_DB, left out:",
			        parts[i].name, split(i) ? " (its database tcases)" : "");
			continue;
		}
		/* The parts of one suite stand together in the list: one check suite. */
		if (cur == NULL || strcmp(cur, parts[i].name) != 0) {
			s = suite_create(parts[i].name);
			cur = parts[i].name;
			if (sr == NULL)
				sr = srunner_create(s);
			else
				srunner_add_suite(sr, s);
		}
		parts[i].tcases(s);
	}
	if (left_out)
		printf("\n");
	if (sr == NULL)
		return EXIT_FAILURE;
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
