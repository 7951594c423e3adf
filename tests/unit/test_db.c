/*
 * db and migrate, against the real PostgreSQL that tests/run.sh starts
 * (MDM_TEST_DB).  Each test gets a database of its own, dropped after.
 */
#include "program.h"
#include "db.h"
#include "fakeio.h"
#include "log.h"
#include "migrate.h"
#include "suites.h"
#include "ts_db.h"
#include "ts_sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct ts_db tdb;
static db *admin;            /* tdb.admin: may end backends of the scratch database */
static const char *conninfo; /* tdb.conninfo */

/* Runs MDM_TEST_PGCTL (tests/run.sh: the pg_ctl command of the test cluster) with args. */
static int pgctl(const char *args)
{
	return ts_sh("%s %s >/dev/null 2>&1", getenv("MDM_TEST_PGCTL"), args);
}

/* An empty database per test: the migrations are what some tests check. */
static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	/* A failed server_crash_is_503 must not leave the server down for the rest. */
	if (getenv("MDM_TEST_PGCTL") != NULL && pgctl("status") != 0)
		ck_assert_int_eq(pgctl("start"), 0);
	ts_db_create_empty(&tdb, "unit");
	admin = tdb.admin;
	conninfo = tdb.conninfo;
}

static void teardown(void)
{
	admin = NULL;
	conninfo = NULL;
	ts_db_drop(&tdb);
}

static db *open_db(void)
{
	db *d = NULL;

	ck_assert_int_eq(db_new(conninfo, "unit", &d), MDM_OK);
	return d;
}

static int backend_pid(db *d)
{
	db_res *r = NULL;
	int pid;

	ck_assert_int_eq(db_exec(d, "SELECT pg_backend_pid()", 0, NULL, &r), MDM_OK);
	pid = atoi(db_res_get0(r, 0, 0));
	db_res_free(r);
	return pid;
}

static void kill_backend(int pid)
{
	char p[16];
	const char *params[] = {p};
	db_res *r = NULL;

	snprintf(p, sizeof(p), "%d", pid);
	ck_assert_int_eq(
	        db_exec(admin, "SELECT pg_terminate_backend($1::integer)", 1, params, &r), MDM_OK);
	ck_assert_str_eq(db_res_get0(r, 0, 0), "t");
	db_res_free(r);
	/* Wait until the backend is gone. */
	for (int i = 0; i < 200; i++) {
		db_res *q = NULL;
		ck_assert_int_eq(db_exec(admin,
		                         "SELECT count(*) FROM pg_stat_activity WHERE pid = "
		                         "$1::integer",
		                         1, params, &q),
		        MDM_OK);
		int gone = strcmp(db_res_get0(q, 0, 0), "0") == 0;
		db_res_free(q);
		if (gone)
			return;
		usleep(10000);
	}
	ck_abort_msg("backend %d did not exit", pid);
}

START_TEST(parameters_carry_hostile_strings_intact)
{
	static const char *const hostile[] = {"'; DROP TABLE x; --", "\\x00", "$1", "a\"b",
	        "Robert'); DROP TABLE students;--", "\xe2\x80\x8f unicode"};
	db *d = open_db();

	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		db_res *r = NULL;
		const char *params[] = {hostile[i]};
		ck_assert_int_eq(db_exec(d, "SELECT $1::text, length($1)", 1, params, &r), MDM_OK);
		ck_assert_str_eq(db_res_get0(r, 0, 0), hostile[i]);
		db_res_free(r);
	}
	db_free(d);
}
END_TEST

START_TEST(nulls_and_errors)
{
	db *d = open_db();
	db_res *r = NULL;
	const char *params[] = {NULL};

	ck_assert_int_eq(db_exec(d, "SELECT $1::text IS NULL, $1::text", 1, params, &r), MDM_OK);
	ck_assert_str_eq(db_res_get0(r, 0, 0), "t");
	ck_assert(db_res_is_null(r, 0, 1));
	ck_assert_ptr_null(db_res_get0(r, 5, 0));
	db_res_free(r);
	ck_assert_int_eq(db_exec(d, "SELEC 1", 0, NULL, &r), MDM_ERR_DB);
	ck_assert_ptr_null(r);
	ck_assert_str_eq(db_get0_sqlstate(d), "42601");
	/* Only one statement per call: the extended protocol refuses two. */
	ck_assert_int_eq(db_exec(d, "SELECT 1; SELECT 2", 0, NULL, NULL), MDM_ERR_DB);
	db_free(d);
}
END_TEST

START_TEST(binary_parameters)
{
	db *d = open_db();
	db_res *r = NULL;
	const char bytes[] = {'a', 0, 'b', '\'', (char)0xff};
	const char *values[] = {bytes};
	int lengths[] = {sizeof(bytes)};
	int formats[] = {1};

	ck_assert_int_eq(
	        db_exec_bin(d, "SELECT encode($1::bytea, 'hex')", 1, values, lengths, formats, &r),
	        MDM_OK);
	ck_assert_str_eq(db_res_get0(r, 0, 0), "61006227ff");
	db_res_free(r);
	/* And back: a bytea result decodes to the same bytes. */
	{
		uint8_t *got = NULL;
		size_t n = 0;
		ck_assert_int_eq(db_exec_bin(d, "SELECT $1::bytea, NULL::bytea", 1, values, lengths,
		                         formats, &r),
		        MDM_OK);
		ck_assert_int_eq(db_res_get_bytea(r, 0, 0, &got, &n), MDM_OK);
		ck_assert_uint_eq(n, sizeof(bytes));
		ck_assert(memcmp(got, bytes, n) == 0);
		free(got);
		ck_assert_int_eq(db_res_get_bytea(r, 0, 1, &got, &n), MDM_ERR_NOT_FOUND);
		ck_assert_ptr_null(got);
		db_res_free(r);
	}
	db_free(d);
}
END_TEST

START_TEST(reconnects_after_lost_connection)
{
	db *d = open_db();
	int pid = backend_pid(d);

	kill_backend(pid);
	ck_assert_int_eq(db_ping(d), MDM_OK);
	ck_assert_int_ne(backend_pid(d), pid);
	db_free(d);
}
END_TEST

/* How many of this session's prepared statements have this text. */
static int prepared_count(db *d, const char *sql)
{
	const char *params[] = {sql};
	db_res *r = NULL;
	int n;

	ck_assert_int_eq(
	        db_exec(d, "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", 1,
	                params, &r),
	        MDM_OK);
	n = atoi(db_res_get0(r, 0, 0));
	db_res_free(r);
	return n;
}

/* A statement run again is parsed and planned once per connection (issue 15). */
START_TEST(statements_are_prepared_once)
{
	static const char sql[] = "SELECT $1::integer + 1";
	const char *params[] = {"41"};
	db *d = open_db();
	int pid;

	for (int i = 0; i < 3; i++) {
		db_res *r = NULL;
		ck_assert_int_eq(db_exec(d, sql, 1, params, &r), MDM_OK);
		ck_assert_str_eq(db_res_get0(r, 0, 0), "42");
		db_res_free(r);
	}
	ck_assert_int_eq(prepared_count(d, sql), 1);
	/* A new connection knows none of them: they are prepared again. */
	pid = backend_pid(d);
	kill_backend(pid);
	ck_assert_int_eq(db_exec(d, sql, 1, params, NULL), MDM_OK);
	ck_assert_int_ne(backend_pid(d), pid);
	ck_assert_int_eq(prepared_count(d, sql), 1);
	db_free(d);
}
END_TEST

static mdm_err tx_select_star(db *d, void *arg)
{
	db_res *r = NULL;
	mdm_err rc = db_exec(d, "SELECT * FROM plan_t", 0, NULL, &r);

	if (rc == MDM_OK)
		*(int *)arg = db_res_cols(r);
	db_res_free(r);
	return rc;
}

/*
 * A migration that changes a table under a running program: PostgreSQL
 * refuses a prepared SELECT * whose result type changed (0A000, "cached
 * plan must not change result type"); the statement is prepared afresh
 * and run again, alone or as its whole transaction.
 */
START_TEST(prepared_plans_follow_schema_changes)
{
	db *d = open_db(), *other = open_db();
	int cols = 0;

	ck_assert_int_eq(db_exec(d, "CREATE TABLE plan_t (a integer)", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(tx_select_star(d, &cols), MDM_OK);
	ck_assert_int_eq(cols, 1);
	ck_assert_int_eq(
	        db_exec(other, "ALTER TABLE plan_t ADD COLUMN b integer", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(tx_select_star(d, &cols), MDM_OK);
	ck_assert_int_eq(cols, 2);
	ck_assert_int_eq(
	        db_exec(other, "ALTER TABLE plan_t ADD COLUMN c integer", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_tx(d, tx_select_star, &cols), MDM_OK);
	ck_assert_int_eq(cols, 3);
	db_free(other);
	db_free(d);
}
END_TEST

/*
 * More distinct statements than the cache holds still run; the session's
 * prepared set stays bounded.
 */
START_TEST(statement_cache_is_bounded)
{
	db *d = open_db();
	db_res *r = NULL;

	for (int i = 0; i < 3 * DB_MAX_PREPARED; i++) {
		char sql[64];
		snprintf(sql, sizeof(sql), "SELECT %d", i);
		ck_assert_int_eq(db_exec(d, sql, 0, NULL, NULL), MDM_OK);
	}
	ck_assert_int_eq(
	        db_exec(d, "SELECT count(*) FROM pg_prepared_statements", 0, NULL, &r), MDM_OK);
	ck_assert_int_le(atoi(db_res_get0(r, 0, 0)), DB_MAX_PREPARED);
	db_res_free(r);
	db_free(d);
}
END_TEST

static mdm_err tx_crash(db *d, void *arg)
{
	(void)arg;
	ck_assert_int_eq(pgctl("-m immediate stop"), 0);
	return db_exec(d, "SELECT 1", 0, NULL, NULL);
}

/*
 * The server crashes under an open session (pg_ctl stop -m immediate, what
 * a failover's old primary does): libpq answers "server closed the
 * connection unexpectedly" with no SQLSTATE, and PQstatus still says
 * CONNECTION_OK.  That is "unavailable" (503, retried), not a failed
 * statement (500).
 */
START_TEST(server_crash_is_503)
{
	db *d;

	if (getenv("MDM_TEST_PGCTL") == NULL) {
		printf("db: MDM_TEST_PGCTL unset: the server-crash case is skipped\n");
		return;
	}
	d = open_db();
	ck_assert_int_eq(db_ping(d), MDM_OK);
	ck_assert_int_eq(pgctl("-m immediate stop"), 0);
	ck_assert_int_eq(db_exec(d, "SELECT 1", 0, NULL, NULL), MDM_ERR_DB_CONN);
	ck_assert_int_eq(pgctl("start"), 0);
	ck_assert_int_eq(db_ping(d), MDM_OK);
	/* In a transaction: unavailable too, and retried until the attempts run out. */
	ck_assert_int_eq(db_tx(d, tx_crash, NULL), MDM_ERR_DB_CONN);
	ck_assert_int_eq(pgctl("start"), 0);
	ck_assert_int_eq(db_ping(d), MDM_OK);
	db_free(d);
}
END_TEST

START_TEST(unreachable_database)
{
	db *d = NULL;

	ck_assert_int_eq(db_new("host=/nonexistent-socket-dir dbname=x", "unit", &d), MDM_OK);
	ck_assert_int_eq(db_ping(d), MDM_ERR_DB_CONN);
	ck_assert_int_eq(db_ping(d), MDM_ERR_DB_CONN);
	db_free(d);
}
END_TEST

struct tx_arg {
	int calls;
	int fail_with; /* 0: succeed; 1: return an error; 2: lose the connection once;
	                  3: lose it just before COMMIT, so COMMIT's outcome is unknown */
};

static mdm_err tx_insert(db *d, void *arg)
{
	struct tx_arg *t = arg;
	mdm_err rc;

	t->calls++;
	if ((rc = db_exec(d, "INSERT INTO t (v) VALUES ('row')", 0, NULL, NULL)) != MDM_OK)
		return rc;
	if (t->fail_with == 1)
		return MDM_ERR_CONFLICT;
	if (t->fail_with == 2 && t->calls == 1) {
		kill_backend(backend_pid(d));
		return db_exec(d, "SELECT 1", 0, NULL, NULL);
	}
	if (t->fail_with == 3 && t->calls == 1)
		kill_backend(backend_pid(d));
	return MDM_OK;
}

/* The one value sql reads, as a number. */
static long long value_of(db *d, const char *sql)
{
	db_res *r = NULL;
	long long n;

	ck_assert_int_eq(db_exec(d, sql, 0, NULL, &r), MDM_OK);
	n = atoll(db_res_get0(r, 0, 0));
	db_res_free(r);
	return n;
}

static int count_rows(db *d)
{
	return (int)value_of(d, "SELECT count(*) FROM t");
}

START_TEST(transactions_commit_roll_back_and_retry)
{
	db *d = open_db();
	struct tx_arg ok = {0, 0}, bad = {0, 1}, lost = {0, 2};

	ck_assert_int_eq(db_exec(d, "CREATE TABLE t (v text)", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_tx(d, tx_insert, &ok), MDM_OK);
	ck_assert_int_eq(count_rows(d), 1);
	ck_assert_int_eq(db_tx(d, tx_insert, &bad), MDM_ERR_CONFLICT);
	ck_assert_int_eq(count_rows(d), 1); /* rolled back */
	ck_assert_int_eq(bad.calls, 1);     /* an application error is not retried */
	ck_assert_int_eq(db_tx(d, tx_insert, &lost), MDM_OK);
	ck_assert_int_eq(lost.calls, 2);    /* rerun on a fresh connection */
	ck_assert_int_eq(count_rows(d), 2); /* and the lost attempt left nothing */
	db_free(d);
}
END_TEST

START_TEST(commit_with_unknown_outcome_is_not_retried)
{
	db *d = open_db();
	struct tx_arg lost = {0, 3};

	ck_assert_int_eq(db_exec(d, "CREATE TABLE t (v text)", 0, NULL, NULL), MDM_OK);
	/* The client cannot tell a COMMIT that never arrived from one whose
	 * answer was lost: rerunning fn could do twice what was done once. */
	ck_assert_int_eq(db_tx(d, tx_insert, &lost), MDM_ERR_DB_CONN);
	ck_assert_int_eq(lost.calls, 1);
	ck_assert_int_eq(count_rows(d), 0); /* the next call reconnects */
	db_free(d);
}
END_TEST

/* How many times db_exec_once sent a statement: nextval('s') is not rolled back. */
static long long once_calls(db *d)
{
	return value_of(d, "SELECT last_value FROM s");
}

/*
 * db_exec_once (a whole request in one statement, sql/020): a statement
 * whose answer was lost is not sent again (it may have done its work); one
 * the server rolled back (40001, 40P01) is; a connection the server closed
 * while idle is replaced before sending, so that costs no request.  The
 * sequence s counts the sends: nextval is not rolled back.
 */
START_TEST(exec_once_is_sent_once)
{
	db *d = open_db();
	int pid;

	ck_assert_int_eq(db_exec_script(d,
	                         "CREATE SEQUENCE s; "
	                         "CREATE FUNCTION flaky(state text) RETURNS bigint LANGUAGE "
	                         "plpgsql AS $$ DECLARE n bigint := nextval('s'); BEGIN "
	                         "IF n % 2 = 0 THEN RAISE EXCEPTION 'once more' USING ERRCODE "
	                         "= state; END IF; RETURN n; END $$"),
	        MDM_OK);
	/* Lost with its answer: once, where db_exec would have sent it twice. */
	ck_assert_int_eq(
	        db_exec_once(d, "SELECT nextval('s'), pg_terminate_backend(pg_backend_pid())", 0,
	                NULL, NULL),
	        MDM_ERR_DB_CONN);
	ck_assert_int_eq(once_calls(d), 1);
	/* Rolled back by the server (serialization failure, deadlock): sent again. */
	ck_assert_int_eq(db_exec_once(d, "SELECT flaky('40001')", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(once_calls(d), 3);
	ck_assert_int_eq(db_exec_once(d, "SELECT flaky('40P01')", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(once_calls(d), 5);
	/* Any other error is the statement's: not sent again. */
	ck_assert_int_eq(db_exec_once(d, "SELECT flaky('22023')", 0, NULL, NULL), MDM_ERR_DB);
	ck_assert_int_eq(once_calls(d), 6);
	/* The server ended the idle connection (a restart): noticed, replaced, sent once. */
	pid = backend_pid(d);
	kill_backend(pid);
	ck_assert_int_eq(db_exec_once(d, "SELECT nextval('s')", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(once_calls(d), 7);
	ck_assert_int_ne(backend_pid(d), pid);
	db_free(d);
}
END_TEST

/* The SQLSTATEs that mean "the database cannot serve now, try later". */
START_TEST(unavailable_sqlstates_are_503)
{
	static const char *const states[] = {"53100", "53200", "53300", "53400", "57P01", "57P02",
	        "57P03", "08006", "08001", "25006"};
	static const char *const permanent[] = {"23505", "42P01", "22P02", "40001"};
	char sql[128];

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		db *d = open_db();
		snprintf(sql, sizeof(sql),
		        "DO $$ BEGIN RAISE EXCEPTION 'fault' USING ERRCODE = '%s'; END $$",
		        states[i]);
		ck_assert_msg(db_exec(d, sql, 0, NULL, NULL) == MDM_ERR_DB_CONN, "%s", states[i]);
		ck_assert_str_eq(db_get0_sqlstate(d), states[i]);
		ck_assert_int_eq(err_http_status(MDM_ERR_DB_CONN), 503);
		ck_assert_int_eq(db_ping(d), MDM_OK); /* and service resumes */
		db_free(d);
	}
	for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++) {
		db *d = open_db();
		snprintf(sql, sizeof(sql),
		        "DO $$ BEGIN RAISE EXCEPTION 'fault' USING ERRCODE = '%s'; END $$",
		        permanent[i]);
		ck_assert_msg(db_exec(d, sql, 0, NULL, NULL) == MDM_ERR_DB, "%s", permanent[i]);
		db_free(d);
	}
}
END_TEST

/* A read-only session (a demoted primary, a standby reached by a stale
 * connection) is dropped, so that the reconnect finds the primary. */
START_TEST(read_only_drops_the_connection)
{
	db *d = open_db();
	struct tx_arg ok = {0, 0};
	int pid;

	ck_assert_int_eq(db_exec(d, "CREATE TABLE t (v text)", 0, NULL, NULL), MDM_OK);
	pid = backend_pid(d);
	ck_assert_int_eq(
	        db_exec(d, "SET default_transaction_read_only = on", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_tx(d, tx_insert, &ok), MDM_OK);
	ck_assert_int_eq(ok.calls, 2); /* refused with 25006, rerun on a new session */
	ck_assert_int_ne(backend_pid(d), pid);
	ck_assert_int_eq(count_rows(d), 1);
	db_free(d);
}
END_TEST

static int table_exists(db *d, const char *name)
{
	db_res *r = NULL;
	const char *params[] = {name};
	int yes;

	ck_assert_int_eq(db_exec(d, "SELECT to_regclass($1) IS NOT NULL", 1, params, &r), MDM_OK);
	yes = strcmp(db_res_get0(r, 0, 0), "t") == 0;
	db_res_free(r);
	return yes;
}

START_TEST(migrate_applies_once_and_records)
{
	db *d = open_db();
	int applied = -1, current = -1, latest = -1, pending = -1;

	ck_assert_int_eq(migrate_status(d, &current, &latest, &pending), MDM_OK);
	ck_assert_int_eq(current, 0);
	ck_assert_int_ge(latest, 1);
	ck_assert_int_eq(pending, (int)migrations_count);
	ck_assert_int_eq(migrate_apply(d, &applied), MDM_OK);
	ck_assert_int_eq(applied, (int)migrations_count);
	ck_assert_int_eq(migrate_apply(d, &applied), MDM_OK);
	ck_assert_int_eq(applied, 0);
	ck_assert_int_eq(migrate_status(d, &current, &latest, &pending), MDM_OK);
	ck_assert_int_eq(current, latest);
	ck_assert_int_eq(pending, 0);
	/* One below the highest missing (branches merged out of order): still reported. */
	{
		char sql[96];
		snprintf(sql, sizeof(sql), "DELETE FROM mdm.schema_migrations WHERE version = %d",
		        migrations[0].version);
		ck_assert_int_eq(db_exec(d, sql, 0, NULL, NULL), MDM_OK);
	}
	ck_assert_int_eq(migrate_status(d, &current, &latest, &pending), MDM_OK);
	ck_assert_int_eq(current, latest);
	ck_assert_int_eq(pending, 1);
	ck_assert(table_exists(d, "mdm.device"));
	ck_assert(table_exists(d, "mdm.certificate"));
	ck_assert(table_exists(d, "mdm.challenge"));
	ck_assert(table_exists(d, "mdm.devices"));
	ck_assert(table_exists(d, "mdm.certificates"));
	db_free(d);
}
END_TEST

START_TEST(migrate_refuses_a_changed_migration)
{
	db *d = open_db();
	int applied;

	ck_assert_int_eq(migrate_apply(d, &applied), MDM_OK);
	ck_assert_int_eq(db_exec(d,
	                         "UPDATE mdm.schema_migrations SET checksum = 'x' "
	                         "WHERE version = 1",
	                         0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(migrate_apply(d, &applied), MDM_ERR_CONFLICT);
	db_free(d);
}
END_TEST

/* Two migrators at once (two hosts deploying): both succeed, each step once. */
START_TEST(migrate_concurrent)
{
	pid_t kids[3];
	db *d;
	db_res *r = NULL;

	for (int i = 0; i < 3; i++) {
		if ((kids[i] = fork()) == 0) {
			db *c = NULL;
			int applied;
			if (db_new(conninfo, "unit", &c) != MDM_OK ||
			        migrate_apply(c, &applied) != MDM_OK)
				_exit(1);
			db_free(c);
			_exit(0);
		}
		ck_assert_int_gt(kids[i], 0);
	}
	for (int i = 0; i < 3; i++) {
		int st;
		ck_assert_int_eq(waitpid(kids[i], &st, 0), kids[i]);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	d = open_db();
	ck_assert_int_eq(db_exec(d,
	                         "SELECT count(*) = count(DISTINCT version) "
	                         "FROM mdm.schema_migrations",
	                         0, NULL, &r),
	        MDM_OK);
	ck_assert_str_eq(db_res_get0(r, 0, 0), "t");
	db_res_free(r);
	db_free(d);
}
END_TEST

static mdm_err noop_handle(struct program *a, fcgi_req *r)
{
	(void)a;
	(void)r;
	return MDM_ERR_INTERNAL;
}

START_TEST(health_with_database)
{
	static const struct program_spec ep = {"t.fcgi", "PUT", 10, "t", noop_handle};
	char *env[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/health", NULL};
	struct program a = {.ep = &ep, .db = open_db()};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "", 0);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(program_dispatch(&a, &r), MDM_OK);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 200 OK\r\n"));
	ck_assert_ptr_nonnull(strstr(f.out, "ok t.fcgi db=up client_cert=none\n"));
	fcgi_req_clear(&r);
	db_free(a.db);
}
END_TEST

START_TEST(listen_and_wait_notify)
{
	db *d = open_db(), *o = open_db();
	const char *p[] = {"U1"};
	int got = -1;

	ck_assert_int_eq(db_listen(d, "mdm_command"), MDM_OK);
	ck_assert_int_eq(db_listen(d, "mdm_command"), MDM_OK); /* twice is once */
	/* Nothing yet: a short wait times out. */
	ck_assert_int_eq(db_wait_notify(d, 50, &got), MDM_OK);
	ck_assert_int_eq(got, 0);
	ck_assert_int_eq(db_exec(o, "SELECT pg_notify('mdm_command', $1)", 1, p, NULL), MDM_OK);
	ck_assert_int_eq(db_exec(o, "SELECT pg_notify('other', 'x')", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_wait_notify(d, 5000, &got), MDM_OK);
	ck_assert_int_ge(got, 1);
	ck_assert_int_eq(db_wait_notify(d, 0, &got), MDM_OK);
	ck_assert_int_eq(got, 0);
	/* Notifications that arrive during other statements are kept for the wait. */
	ck_assert_int_eq(db_exec(o, "SELECT pg_notify('mdm_command', $1)", 1, p, NULL), MDM_OK);
	usleep(100000);
	ck_assert_int_eq(db_exec(d, "SELECT 1", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_wait_notify(d, 1000, &got), MDM_OK);
	ck_assert_int_eq(got, 1);
	db_free(o);
	db_free(d);
}
END_TEST

START_TEST(listen_survives_reconnect)
{
	db *d = open_db(), *o = open_db();
	int got = -1;
	mdm_err rc;

	ck_assert_int_eq(db_listen(d, "mdm_command"), MDM_OK);
	kill_backend(backend_pid(d));
	/* The loss is seen, then the next wait reconnects and says "maybe missed". */
	got = 0;
	for (int i = 0; i < 3 && got == 0; i++) {
		rc = db_wait_notify(d, 200, &got);
		ck_assert(rc == MDM_ERR_DB_CONN || rc == MDM_OK);
	}
	ck_assert_int_eq(got, 1);
	/* LISTEN again on the new connection: a NOTIFY arrives. */
	ck_assert_int_eq(db_exec(o, "NOTIFY mdm_command, 'x'", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_wait_notify(d, 5000, &got), MDM_OK);
	ck_assert_int_eq(got, 1);
	/* A reconnect inside a statement also LISTENs again. */
	kill_backend(backend_pid(d));
	ck_assert_int_eq(db_exec(d, "SELECT 1", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_exec(o, "NOTIFY mdm_command, 'y'", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_wait_notify(d, 5000, &got), MDM_OK);
	ck_assert_int_ge(got, 1);
	db_free(o);
	db_free(d);
}
END_TEST

START_TEST(listen_refuses_bad_channels)
{
	static const char *const bad[] = {"", "Mdm", "a b", "x;DROP TABLE y", "1abc", "a-b",
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
	db *d = open_db();

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(db_listen(d, bad[i]), MDM_ERR_INVAL);
	ck_assert_int_eq(db_listen(d, NULL), MDM_ERR_INVAL);
	ck_assert_int_eq(db_listen(d, "a1"), MDM_OK);
	ck_assert_int_eq(db_listen(d, "a2"), MDM_OK);
	ck_assert_int_eq(db_listen(d, "a3"), MDM_OK);
	ck_assert_int_eq(db_listen(d, "a4"), MDM_OK);
	ck_assert_int_eq(db_listen(d, "a5"), MDM_ERR_LIMIT);
	db_free(d);
}
END_TEST

void db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "postgresql", 30, setup, teardown);

	ts_add_tests(tc, parameters_carry_hostile_strings_intact, nulls_and_errors,
	        binary_parameters, reconnects_after_lost_connection, statements_are_prepared_once,
	        prepared_plans_follow_schema_changes, statement_cache_is_bounded,
	        unreachable_database, server_crash_is_503, transactions_commit_roll_back_and_retry,
	        commit_with_unknown_outcome_is_not_retried, exec_once_is_sent_once,
	        unavailable_sqlstates_are_503, read_only_drops_the_connection,
	        migrate_applies_once_and_records, migrate_refuses_a_changed_migration,
	        migrate_concurrent, health_with_database, listen_and_wait_notify,
	        listen_survives_reconnect, listen_refuses_bad_channels);
}
