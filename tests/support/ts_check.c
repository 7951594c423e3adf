/* check's boilerplate for the suites: see ts_check.h. */
#include "ts_check.h"

#include <stddef.h>

TCase *ts_tcase(Suite *s, const char *name, double timeout, SFun setup, SFun teardown)
{
	TCase *tc = tcase_create(name);

	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	if (setup != NULL || teardown != NULL)
		tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

void ts_add_test_list(TCase *tc, const TTest *const *tests)
{
	for (; *tests != NULL; tests++)
		tcase_add_test(tc, *tests);
}

Suite *ts_suite_of(const char *name, const char *tcase, double timeout, const TTest *const *tests)
{
	Suite *s = suite_create(name);

	ts_add_test_list(ts_tcase(s, tcase, timeout, NULL, NULL), tests);
	return s;
}
