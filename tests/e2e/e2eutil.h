/* Helpers shared by the e2e suites that drive tools and read the stack's database. */
#ifndef MDM_E2E_UTIL_H
#define MDM_E2E_UTIL_H

#include <stddef.h>

/* Runs a shell command; its exit status (128 when it did not exit). */
int e2e_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* First column of the single row of sql (one optional parameter) in MDM_DB; malloc'd. */
char *e2e_query1(const char *sql, const char *param);
/* Fails the test unless e2e_query1(sql, param) is want. */
void e2e_assert_query(const char *sql, const char *param, const char *want);
/* Writes a file (printf format); fails the test on error. */
void e2e_file_put(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads a whole file (at most 16 MiB), NUL-terminated; fails the test on error. */
char *e2e_file_get(const char *path, size_t *len);

#endif
