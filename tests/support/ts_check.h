/*
 * check's boilerplate for the unit and e2e suites, once: a tcase made,
 * its timeout and checked fixture set and added to its suite in one
 * call, its tests added in one more, and a suite of one such tcase in
 * one expression.
 */
#ifndef MDM_TEST_TS_CHECK_H
#define MDM_TEST_TS_CHECK_H

#include <check.h>

/*
 * A tcase named name in s: timeout in seconds (0: check's default,
 * CK_DEFAULT_TIMEOUT), setup and teardown a checked fixture, run in the
 * forked test (both NULL: none).  Its tests are added after.
 */
TCase *ts_tcase(Suite *s, const char *name, double timeout, SFun setup, SFun teardown);

/* Adds the tests (START_TEST names) to tc in order, as tcase_add_test each. */
#define ts_add_tests(tc, ...) ts_add_test_list((tc), (const TTest *const[]){__VA_ARGS__, NULL})
void ts_add_test_list(TCase *tc, const TTest *const *tests);

/* A suite of one tcase (no fixture) with the tests, as ts_tcase and ts_add_tests make it. */
#define ts_suite(name, tcase, timeout, ...)                                                        \
	ts_suite_of((name), (tcase), (timeout), (const TTest *const[]){__VA_ARGS__, NULL})
Suite *ts_suite_of(const char *name, const char *tcase, double timeout, const TTest *const *tests);

#endif
