/* Scratch databases for the suites that need PostgreSQL: see testdb.h. */
#include "testdb.h"

#include "migrate.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void testdb_create(struct testdb *t, const char *prefix)
{
	const char *base = getenv("MDM_TEST_DB");
	char sql[160];
	int applied;

	memset(t, 0, sizeof(*t));
	ck_assert_msg(base != NULL, "MDM_TEST_DB is not set: run the suite with `make test`");
	ck_assert_int_eq(db_new(base, "unit", &t->admin), MDM_OK);
	snprintf(t->name, sizeof(t->name), "%s_%ld_%ld", prefix, (long)getpid(), random() % 100000);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t->name);
	ck_assert_int_eq(db_exec(t->admin, sql, 0, NULL, NULL), MDM_OK);
	snprintf(t->conninfo, sizeof(t->conninfo), "%s dbname=%s", base, t->name);
	ck_assert_int_eq(db_new(t->conninfo, "unit", &t->d), MDM_OK);
	ck_assert_int_eq(migrate_apply(t->d, &applied), MDM_OK);
}

void testdb_drop(struct testdb *t)
{
	char sql[160];

	db_free(t->d);
	t->d = NULL;
	if (t->admin != NULL) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->name);
		ck_assert_int_eq(db_exec(t->admin, sql, 0, NULL, NULL), MDM_OK);
	}
	db_free(t->admin);
	t->admin = NULL;
}

char *testdb_query1(db *d, const char *sql, const char *param)
{
	const char *p[1] = {param};
	db_res *r = NULL;
	char *s;

	ck_assert_int_eq(db_exec(d, sql, param ? 1 : 0, param ? p : NULL, &r), MDM_OK);
	ck_assert_msg(db_res_rows(r) == 1, "%s: %d rows", sql, db_res_rows(r));
	s = strdup(db_res_is_null(r, 0, 0) ? "(null)" : db_res_get0(r, 0, 0));
	db_res_free(r);
	return s;
}
