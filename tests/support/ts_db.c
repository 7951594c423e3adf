/* Scratch databases and one-value queries for the tests: see ts_db.h. */
#include "ts_db.h"

#include "migrate.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ts_db_create_empty(struct ts_db *t, const char *prefix)
{
	const char *base = getenv("MDM_TEST_DB");
	char sql[160];

	memset(t, 0, sizeof(*t));
	ck_assert_msg(base != NULL,
	        "MDM_TEST_DB is not set: run the suite with `make test` "
	        "(`make unit` runs the suites that need no database)");
	ck_assert_int_eq(db_new(base, "unit", &t->admin), MDM_OK);
	snprintf(t->name, sizeof(t->name), "%s_%ld_%ld", prefix, (long)getpid(), random() % 100000);
	/* An identifier cannot be a parameter; this one is the prefix and digits. */
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t->name);
	ck_assert_int_eq(db_exec(t->admin, sql, 0, NULL, NULL), MDM_OK);
	snprintf(t->conninfo, sizeof(t->conninfo), "%s dbname=%s", base, t->name);
}

void ts_db_create(struct ts_db *t, const char *prefix)
{
	int applied;

	ts_db_create_empty(t, prefix);
	ck_assert_int_eq(db_new(t->conninfo, "unit", &t->d), MDM_OK);
	ck_assert_int_eq(migrate_apply(t->d, &applied), MDM_OK);
}

void ts_db_drop(struct ts_db *t)
{
	char sql[160];

	db_free(t->d);
	t->d = NULL;
	if (t->admin != NULL) {
		mdm_err rc;

		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->name);
		/*
		 * PostgreSQL 15's FORCE refuses (42501, "must be a member of the role
		 * whose process is being terminated") while an autovacuum worker,
		 * which has no role, is connected to the database: it leaves soon.
		 */
		for (int i = 0; (rc = db_exec(t->admin, sql, 0, NULL, NULL)) != MDM_OK && i < 100 &&
		        strcmp(db_get0_sqlstate(t->admin), "42501") == 0;
		        i++)
			usleep(100 * 1000);
		ck_assert_int_eq(rc, MDM_OK);
	}
	db_free(t->admin);
	t->admin = NULL;
}

char *ts_db_queryn(db *d, const char *sql, int n, const char *const *params)
{
	db_res *r = NULL;
	char *s;

	ck_assert_int_eq(db_exec(d, sql, n, params, &r), MDM_OK);
	ck_assert_msg(db_res_rows(r) == 1, "%s: %d rows", sql, db_res_rows(r));
	s = strdup(db_res_is_null(r, 0, 0) ? "(null)" : db_res_get0(r, 0, 0));
	db_res_free(r);
	ck_assert_ptr_nonnull(s);
	return s;
}

char *ts_db_query1(db *d, const char *sql, const char *param)
{
	const char *p[1] = {param};

	return ts_db_queryn(d, sql, param ? 1 : 0, param ? p : NULL);
}

void ts_db_assert(db *d, const char *sql, const char *param, const char *want)
{
	char *got = ts_db_query1(d, sql, param);

	ck_assert_msg(strcmp(got, want) == 0, "%s [%s]: got %s, want %s", sql, param ? param : "",
	        got, want);
	free(got);
}

int ts_db_count(db *d, const char *sql)
{
	char *s = ts_db_query1(d, sql, NULL);
	int n = atoi(s);

	free(s);
	return n;
}
