/*
 * A scratch database per test, created from MDM_TEST_DB (tests/run.sh
 * starts the server) and dropped with FORCE afterwards, and the
 * one-value queries the unit and e2e tests check the database with.
 * Every failure fails the running check test.
 */
#ifndef MDM_TEST_TS_DB_H
#define MDM_TEST_TS_DB_H

#include "db.h"

struct ts_db {
	char name[64];
	char conninfo[1024]; /* of the scratch database */
	db *admin;           /* the MDM_TEST_DB connection that creates and drops it */
	db *d;               /* connected to the scratch database (ts_db_create) */
};

/* prefix names the database (letters and _ only); migrated, t->d connected to it. */
void ts_db_create(struct ts_db *t, const char *prefix);
/* The database only: empty, no connection to it (t->d NULL). */
void ts_db_create_empty(struct ts_db *t, const char *prefix);
/* Closes t->d and drops the database. */
void ts_db_drop(struct ts_db *t);

/* The first column of the only row of sql (n text parameters), malloc'd. */
char *ts_db_queryn(db *d, const char *sql, int n, const char *const *params);
/* The same with one optional parameter (none when param is NULL). */
char *ts_db_query1(db *d, const char *sql, const char *param);
/* Fails the test unless ts_db_query1(d, sql, param) is want. */
void ts_db_assert(db *d, const char *sql, const char *param, const char *want);
/* The number sql counts (its one value, as an integer). */
int ts_db_count(db *d, const char *sql);

#endif
