/*
 * A scratch database per test: created from MDM_TEST_DB (tests/run.sh
 * starts the server), migrated, dropped with FORCE afterwards.
 */
#ifndef MDM_TEST_TESTDB_H
#define MDM_TEST_TESTDB_H

#include "db.h"

struct testdb {
	char name[64];
	char conninfo[1024]; /* of the scratch database */
	db *admin;           /* the MDM_TEST_DB connection that creates and drops it */
	db *d;               /* connected to the scratch database */
};

/* prefix names the database (letters and _ only); fails the test on error. */
void testdb_create(struct testdb *t, const char *prefix);
void testdb_drop(struct testdb *t);
/* The first column of the first row of sql (one optional text parameter), malloc'd. */
char *testdb_query1(db *d, const char *sql, const char *param);

#endif
