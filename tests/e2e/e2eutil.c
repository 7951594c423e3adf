/* Helpers shared by the e2e suites: see e2eutil.h. */
#include "e2eutil.h"

#include "db.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int e2e_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

char *e2e_query1(const char *sql, const char *param)
{
	const char *p[1] = {param};
	db *d = NULL;
	db_res *r = NULL;
	char *s;

	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e", &d), MDM_OK);
	ck_assert_int_eq(db_exec(d, sql, param ? 1 : 0, param ? p : NULL, &r), MDM_OK);
	ck_assert_msg(db_res_rows(r) == 1, "%s: %d rows", sql, db_res_rows(r));
	s = strdup(db_res_is_null(r, 0, 0) ? "(null)" : db_res_get0(r, 0, 0));
	db_res_free(r);
	db_free(d);
	return s;
}

void e2e_assert_query(const char *sql, const char *param, const char *want)
{
	char *got = e2e_query1(sql, param);

	ck_assert_msg(strcmp(got, want) == 0, "%s [%s]: got %s, want %s", sql, param ? param : "",
	        got, want);
	free(got);
}

void e2e_file_put(const char *path, const char *fmt, ...)
{
	FILE *f = fopen(path, "w");
	va_list ap;

	ck_assert_msg(f != NULL, "cannot write %s", path);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	ck_assert_int_eq(fclose(f), 0);
}

char *e2e_file_get(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	ck_assert_msg(f != NULL, "cannot read %s", path);
	buf = malloc(16 << 20);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, (16 << 20) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}
