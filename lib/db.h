/*
 * PostgreSQL access (only this module includes libpq).
 *
 * Parameterised statements only: values travel as parameters, never in
 * the SQL text.  A lost connection is re-established on the next call.
 * A statement outside a transaction that fails because the connection was
 * lost is retried once on a fresh connection, so statements given to
 * db_exec must be safe to run twice (reads, or writes keyed so a repeat is
 * a no-op); anything else belongs in db_tx, which reruns the whole
 * transaction on a lost connection, a serialization failure or a deadlock.
 *
 * Statements are prepared once per connection (the first DB_MAX_PREPARED
 * distinct SQL texts; the others run unprepared), so PostgreSQL parses and
 * plans each once, not per request.  A plan the schema changed under
 * (0A000, "cached plan must not change result type") is prepared afresh
 * and the statement, or its whole transaction, run again.  A connection
 * pooler in front of PostgreSQL must keep sessions (PgBouncer: session
 * mode, or max_prepared_statements in 1.21 and later).
 */
#ifndef MDM_DB_H
#define MDM_DB_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define DB_MAX_PREPARED 64

typedef struct db db;
typedef struct db_res db_res;

/* A handle for conninfo; connects on first use, so this cannot fail on a down server. */
MDM_WUR mdm_err db_new(const char *conninfo, const char *application_name, db **out);
void db_free(db *d);

/* Connects now (or checks the connection) with a trivial query. */
MDM_WUR mdm_err db_ping(db *d);

/*
 * Runs one statement with text parameters (NULL entry = SQL NULL).
 * out may be NULL when no rows are wanted; otherwise *out is the result
 * (free with db_res_free).
 */
MDM_WUR mdm_err db_exec(
        db *d, const char *sql, int nparams, const char *const *params, db_res **out);
/* The same with binary-capable parameters (bytea): lengths/formats as libpq. */
MDM_WUR mdm_err db_exec_bin(db *d, const char *sql, int nparams, const char *const *values,
        const int *lengths, const int *formats, db_res **out);

/*
 * Runs one statement that is a transaction of its own and must not run
 * twice (a write a repeat would change: a whole request in one function
 * call).  One round trip where db_tx takes three.  Like db_tx's COMMIT, a
 * statement whose answer was lost is not sent again (MDM_ERR_DB_CONN: its
 * outcome is unknown); one PostgreSQL refused as a serialization failure,
 * a deadlock or a stale plan (rolled back) is.  A connection the server
 * closed while idle (a restart between requests) is noticed before the
 * statement is sent and replaced, so that case costs no request.
 */
MDM_WUR mdm_err db_exec_once(
        db *d, const char *sql, int nparams, const char *const *params, db_res **out);

/*
 * Runs fn inside BEGIN ... COMMIT.  fn returning non-OK rolls back and
 * that error is returned.  Lost connections and "unavailable" SQLSTATEs
 * (MDM_ERR_DB_CONN from fn: class 08, 53xxx, 57P01-3, 25006, which also
 * drops the read-only session), serialization failures and deadlocks
 * rerun fn, up to a few times.  A COMMIT whose answer was lost is never
 * rerun (it may have committed): MDM_ERR_DB_CONN, 503 to the client.
 */
typedef MDM_WUR mdm_err (*db_tx_fn)(db *d, void *arg);
MDM_WUR mdm_err db_tx(db *d, db_tx_fn fn, void *arg);

/*
 * Runs constant, multi-statement SQL shipped in the binary (the schema
 * migrations).  Never for SQL built from data: it takes no parameters.
 */
MDM_WUR mdm_err db_exec_script(db *d, const char *sql);

/*
 * LISTEN on channel (lower-case letters, digits and _, 1..63, at most
 * DB_MAX_LISTEN channels).  The channel is remembered: every new
 * connection LISTENs again, and db_wait_notify reports a reconnect as a
 * notification, since any sent meanwhile were lost.
 */
#define DB_MAX_LISTEN 4
MDM_WUR mdm_err db_listen(db *d, const char *channel);
/*
 * Waits up to timeout_ms (0: just looks) for notifications on the
 * channels listened to; *got is how many arrived (payloads are not kept:
 * callers re-read the state).  A signal ends the wait early with MDM_OK.
 * MDM_ERR_DB_CONN when the connection is lost (the next call reconnects).
 */
MDM_WUR mdm_err db_wait_notify(db *d, int timeout_ms, int *got);

/* SQLSTATE of the last failed statement ("" if none). */
const char *db_get0_sqlstate(const db *d);

int db_res_rows(const db_res *r);
int db_res_cols(const db_res *r);
/* The name of column col (NULL when out of range). */
const char *db_res_col_name0(const db_res *r, int col);
/* Text value (NULL for SQL NULL or out of range). */
const char *db_res_get0(const db_res *r, int row, int col);
int db_res_is_null(const db_res *r, int row, int col);
/* A bytea value (text result format) decoded into *out (caller frees). */
MDM_WUR mdm_err db_res_get_bytea(const db_res *r, int row, int col, uint8_t **out, size_t *outlen);
/* Affected rows of an INSERT/UPDATE/DELETE. */
long db_res_affected(const db_res *r);
void db_res_free(db_res *r);

#endif
