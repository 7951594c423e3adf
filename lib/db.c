/* libpq: connections that heal, parameterised statements, transactions. */
#include "db.h"
#include "log.h"

#include <libpq-fe.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_TX_ATTEMPTS 3

/* A statement prepared on the current connection, named "mdm<generation>g<index>". */
struct db_stmt {
	char *sql;
	uint64_t hash;
};

struct db {
	char *conninfo;
	char *appname;
	PGconn *conn;
	int in_tx;
	struct db_stmt stmts[DB_MAX_PREPARED];
	int nstmts;
	unsigned stmt_gen; /* in the names: a new cache never reuses an old name */
	int plan_stale;    /* a prepared plan was refused (0A000): start the cache again */
	char sqlstate[6];
	char listen[DB_MAX_LISTEN][64];
	int nlisten;
	int relistened; /* a new connection LISTENed again: notifications may be lost */
	int closing;    /* the server sent FATAL between statements: the connection is ending */
};

struct db_res {
	PGresult *res;
};

static char *db_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

mdm_err db_new(const char *conninfo, const char *application_name, db **out)
{
	db *d;

	*out = NULL;
	if (conninfo == NULL)
		return MDM_ERR_CONFIG;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return MDM_ERR_NOMEM;
	d->conninfo = db_strdup(conninfo);
	d->appname = db_strdup(application_name ? application_name : "mdm");
	if (d->conninfo == NULL || d->appname == NULL) {
		db_free(d);
		return MDM_ERR_NOMEM;
	}
	*out = d;
	return MDM_OK;
}

/* Forgets every prepared statement (a new connection has none). */
static void db_stmts_clear(db *d)
{
	for (int i = 0; i < d->nstmts; i++)
		free(d->stmts[i].sql);
	d->nstmts = 0;
}

void db_free(db *d)
{
	if (d == NULL)
		return;
	db_stmts_clear(d);
	if (d->conn != NULL)
		PQfinish(d->conn);
	free(d->conninfo);
	free(d->appname);
	free(d);
}

/*
 * Notices, and what the server says between statements: a FATAL one
 * (pg_terminate_backend, a shutdown) is the last word of a connection
 * whose end may not have arrived yet, so it is not used again.
 */
static void db_notice(void *arg, const PGresult *res)
{
	const char *msg = PQresultErrorMessage(res),
	           *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	db *d = arg;

	if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		d->closing = 1;
	log_debug("db: %.*s", (int)strcspn(msg, "\n"), msg);
}

/* LISTEN again on a new connection (channel names were checked by db_listen). */
static MDM_WUR mdm_err db_relisten(db *d)
{
	for (int i = 0; i < d->nlisten; i++) {
		char sql[80];
		PGresult *res;
		int ok;

		snprintf(sql, sizeof(sql), "LISTEN %s", d->listen[i]);
		/* The channel is an allow-listed identifier; the extended protocol runs one
		 * statement. */
		res = PQexecParams(d->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
		ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
		if (!ok) {
			log_error("db: LISTEN %s failed on a new connection: %.*s", d->listen[i],
			        (int)strcspn(PQerrorMessage(d->conn), "\n"),
			        PQerrorMessage(d->conn));
			PQfinish(d->conn);
			d->conn = NULL;
			return MDM_ERR_DB_CONN;
		}
		d->relistened = 1;
	}
	return MDM_OK;
}

/* Connects if there is no healthy connection. */
static MDM_WUR mdm_err db_connect(db *d)
{
	/* Ours first, so that the same keywords in conninfo override them. */
	const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
	const char *vals[] = {"5", d->appname, d->conninfo, NULL};

	if (d->conn != NULL && PQstatus(d->conn) == CONNECTION_OK)
		return MDM_OK;
	if (d->conn != NULL) {
		PQfinish(d->conn);
		d->conn = NULL;
	}
	d->in_tx = 0;
	db_stmts_clear(d);
	d->conn = PQconnectdbParams(keys, vals, 1);
	if (d->conn == NULL)
		return MDM_ERR_NOMEM;
	if (PQstatus(d->conn) != CONNECTION_OK) {
		/* The message names host and reason, never the password. */
		log_error("db: connection failed: %.*s",
		        (int)strcspn(PQerrorMessage(d->conn), "\n"), PQerrorMessage(d->conn));
		PQfinish(d->conn);
		d->conn = NULL;
		return MDM_ERR_DB_CONN;
	}
	d->closing = 0;
	PQsetNoticeReceiver(d->conn, db_notice, d);
	return db_relisten(d);
}

/*
 * SQLSTATEs (PostgreSQL Appendix A) that mean "cannot serve now, the same
 * request will succeed later": class 08 connection exceptions, class 53
 * insufficient resources (53100 disk_full ...), 57P01 admin_shutdown,
 * 57P02 crash_shutdown, 57P03 cannot_connect_now, and 25006
 * read_only_sql_transaction (a standby, or a primary set read-only).
 */
static int db_sqlstate_unavailable(const char *state)
{
	return strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
	        strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
	        strcmp(state, "57P03") == 0 || strcmp(state, "25006") == 0;
}

/* Classifies a failed result; logs once. */
static MDM_WUR mdm_err db_result_error(db *d, PGresult *res, const char *sql)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(d->conn);

	snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", state ? state : "");
	if (PQstatus(d->conn) != CONNECTION_OK) {
		log_warn("db: connection lost: %.*s", (int)strcspn(msg, "\n"), msg);
		return MDM_ERR_DB_CONN;
	}
	/*
	 * An error the server did not send (no SQLSTATE) is libpq's own: the
	 * server went away under the session.  A crashed primary leaves
	 * "server closed the connection unexpectedly" with PQstatus still
	 * CONNECTION_OK; drop the session so that the next attempt reconnects.
	 */
	if (d->sqlstate[0] == '\0') {
		log_warn("db: connection lost: %.*s", (int)strcspn(msg, "\n"), msg);
		PQfinish(d->conn);
		d->conn = NULL;
		return MDM_ERR_DB_CONN;
	}
	if (db_sqlstate_unavailable(d->sqlstate)) {
		log_warn("db: unavailable, try later: %s: %.*s", d->sqlstate,
		        (int)strcspn(msg, "\n"), msg);
		/* A read-only session is a demoted primary or a standby: drop it, so
		 * that the reconnect (target_session_attrs=read-write) finds the primary. */
		if (strcmp(d->sqlstate, "25006") == 0) {
			PQfinish(d->conn);
			d->conn = NULL;
		}
		return MDM_ERR_DB_CONN;
	}
	/* Log the statement's first line, never its parameters (they may be secrets). */
	log_error("db: %s: %.*s (in: %.*s)", d->sqlstate[0] ? d->sqlstate : "error",
	        (int)strcspn(msg, "\n"), msg, (int)strcspn(sql, "\n"), sql);
	return MDM_ERR_DB;
}

/* FNV-1a: tells cached SQL texts apart before strcmp does. */
static uint64_t db_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/*
 * Runs sql as a statement prepared on this connection, preparing it the
 * first time; unprepared once the cache is full.  The result, or NULL.
 */
static PGresult *db_run(db *d, const char *sql, int nparams, const char *const *values,
        const int *lengths, const int *formats)
{
	uint64_t h = db_hash(sql);
	char name[32];
	PGresult *res;
	size_t n;
	int i;

	if (d->plan_stale && !d->in_tx) {
		/* Best effort: names carry a generation, so a leftover cannot collide.
		 * A constant statement, through the extended protocol like every other. */
		PQclear(PQexecParams(d->conn, "DEALLOCATE ALL", 0, NULL, NULL, NULL, NULL, 0));
		db_stmts_clear(d);
		d->stmt_gen++;
		d->plan_stale = 0;
	}
	for (i = 0; i < d->nstmts; i++)
		if (d->stmts[i].hash == h && strcmp(d->stmts[i].sql, sql) == 0)
			break;
	snprintf(name, sizeof(name), "mdm%ug%d", d->stmt_gen, i);
	if (i == d->nstmts) {
		n = strlen(sql) + 1;
		if (d->nstmts == DB_MAX_PREPARED || (d->stmts[i].sql = malloc(n)) == NULL)
			return PQexecParams(
			        d->conn, sql, nparams, NULL, values, lengths, formats, 0);
		res = PQprepare(d->conn, name, sql, nparams, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			free(d->stmts[i].sql);
			return res;
		}
		PQclear(res);
		memcpy(d->stmts[i].sql, sql, n);
		d->stmts[i].hash = h;
		d->nstmts++;
	}
	return PQexecPrepared(d->conn, name, nparams, values, lengths, formats, 0);
}

/*
 * PostgreSQL refused a prepared plan whose result type the schema changed
 * (0A000, "cached plan must not change result type"): the cache starts
 * again, under new names, before the next statement outside a transaction.
 */
static int db_plan_refused(db *d, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (state == NULL || strcmp(state, "0A000") != 0 || d->conn == NULL ||
	        PQstatus(d->conn) != CONNECTION_OK)
		return 0;
	log_info("db: a prepared plan no longer fits the schema; preparing again");
	d->plan_stale = 1;
	return 1;
}

/* A server-side refusal that rolled the statement back: safe to send again. */
static int db_rolled_back(const db *d)
{
	return strcmp(d->sqlstate, "40001") == 0 || strcmp(d->sqlstate, "40P01") == 0 ||
	        strcmp(d->sqlstate, "0A000") == 0;
}

/*
 * An idle connection is readable only for what the server sent on its own:
 * notifications, or the FATAL message and end of a connection it closed
 * (a restart, pg_terminate_backend).  Read that now, without waiting, so
 * that a closed connection is replaced before a statement is sent on it.
 */
static void db_idle_check(db *d)
{
	struct pollfd pfd;

	for (int i = 0; i < 4 && d->conn != NULL && PQstatus(d->conn) == CONNECTION_OK; i++) {
		pfd.fd = PQsocket(d->conn);
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0 || !PQconsumeInput(d->conn))
			break;
		(void)PQisBusy(d->conn); /* parses it: a FATAL reaches db_notice */
	}
	if (d->conn != NULL && d->closing) {
		PQfinish(d->conn);
		d->conn = NULL;
	}
}

/*
 * One statement.  Outside a transaction a lost connection gets one fresh
 * try, unless once: then only a statement the server refused and rolled
 * back is sent again (db_exec_once).
 */
static MDM_WUR mdm_err db_exec_mode(db *d, const char *sql, int nparams, const char *const *values,
        const int *lengths, const int *formats, db_res **out, int once)
{
	int attempt, attempts = d->in_tx ? 1 : once ? DB_TX_ATTEMPTS : 2;
	mdm_err rc = MDM_ERR_DB_CONN;

	if (out != NULL)
		*out = NULL;
	d->sqlstate[0] = '\0';
	if (once && !d->in_tx)
		db_idle_check(d);
	for (attempt = 0; attempt < attempts; attempt++) {
		PGresult *res;
		ExecStatusType st;

		if (!d->in_tx && (rc = db_connect(d)) != MDM_OK)
			return rc;
		if (d->conn == NULL)
			return MDM_ERR_DB_CONN;
		res = db_run(d, sql, nparams, values, lengths, formats);
		st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
			if (out != NULL) {
				db_res *r = malloc(sizeof(*r));
				if (r == NULL) {
					PQclear(res);
					return MDM_ERR_NOMEM;
				}
				r->res = res;
				*out = r;
			} else {
				PQclear(res);
			}
			return MDM_OK;
		}
		if (db_plan_refused(d, res)) {
			PQclear(res);
			/* Alone: prepared afresh and run again; in a transaction, db_tx reruns it.
			 */
			if (!d->in_tx && attempt + 1 < attempts)
				continue;
			snprintf(d->sqlstate, sizeof(d->sqlstate), "0A000");
			return MDM_ERR_DB;
		}
		rc = db_result_error(d, res, sql);
		PQclear(res);
		if (once ? !db_rolled_back(d) : rc != MDM_ERR_DB_CONN)
			return rc;
		if (once)
			log_warn("db: statement attempt %d refused (%s), sending it again",
			        attempt + 1, d->sqlstate);
	}
	return rc;
}

mdm_err db_exec_bin(db *d, const char *sql, int nparams, const char *const *values,
        const int *lengths, const int *formats, db_res **out)
{
	return db_exec_mode(d, sql, nparams, values, lengths, formats, out, 0);
}

mdm_err db_exec_once(db *d, const char *sql, int nparams, const char *const *params, db_res **out)
{
	return db_exec_mode(d, sql, nparams, params, NULL, NULL, out, 1);
}

mdm_err db_exec(db *d, const char *sql, int nparams, const char *const *params, db_res **out)
{
	return db_exec_bin(d, sql, nparams, params, NULL, NULL, out);
}

mdm_err db_ping(db *d)
{
	return db_exec(d, "SELECT 1", 0, NULL, NULL);
}

mdm_err db_exec_script(db *d, const char *sql)
{
	PGresult *res;
	mdm_err rc = MDM_OK;

	if (!d->in_tx && (rc = db_connect(d)) != MDM_OK)
		return rc;
	if (d->conn == NULL)
		return MDM_ERR_DB_CONN;
	/* The simple-query protocol runs several statements; it takes no parameters. */
	if (!PQsendQuery(d->conn, sql))
		return db_result_error(d, NULL, sql);
	while ((res = PQgetResult(d->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		if (rc == MDM_OK && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
		        st != PGRES_EMPTY_QUERY)
			rc = db_result_error(d, res, sql);
		PQclear(res);
		if (d->conn == NULL) /* db_result_error dropped the session */
			return rc;
	}
	if (rc == MDM_OK && PQstatus(d->conn) != CONNECTION_OK)
		rc = MDM_ERR_DB_CONN;
	return rc;
}

static int db_retryable(const db *d, mdm_err rc)
{
	return rc == MDM_ERR_DB_CONN || strcmp(d->sqlstate, "40001") == 0 ||
	        strcmp(d->sqlstate, "40P01") == 0 ||
	        (d->plan_stale && strcmp(d->sqlstate, "0A000") == 0);
}

mdm_err db_tx(db *d, db_tx_fn fn, void *arg)
{
	mdm_err rc = MDM_ERR_DB;

	if (d->in_tx) {
		log_error("db: nested transaction");
		return MDM_ERR_INTERNAL;
	}
	for (int attempt = 0; attempt < DB_TX_ATTEMPTS; attempt++) {
		if ((rc = db_exec(d, "BEGIN", 0, NULL, NULL)) != MDM_OK) {
			if (rc == MDM_ERR_DB_CONN)
				continue;
			return rc;
		}
		d->in_tx = 1;
		rc = fn(d, arg);
		if (rc == MDM_OK) {
			rc = db_exec(d, "COMMIT", 0, NULL, NULL);
			/*
			 * COMMIT sent and its answer lost: it may have committed.
			 * Rerunning fn could then do twice what was done once, so
			 * the caller gets 503 and the client's own retry decides.
			 * A server that answered 25006 or 53xxx refused it: known.
			 */
			if (rc == MDM_ERR_DB_CONN && strcmp(d->sqlstate, "25006") != 0 &&
			        strncmp(d->sqlstate, "53", 2) != 0) {
				log_error("db: COMMIT outcome unknown (%s), not retried",
				        d->sqlstate[0] ? d->sqlstate : "connection lost");
				d->in_tx = 0;
				return rc;
			}
		}
		if (rc != MDM_OK && d->conn != NULL && PQstatus(d->conn) == CONNECTION_OK) {
			char state[6];
			/* Keep the error's SQLSTATE across the rollback. */
			memcpy(state, d->sqlstate, sizeof(state));
			err_ignore(db_exec(d, "ROLLBACK", 0, NULL, NULL));
			memcpy(d->sqlstate, state, sizeof(state));
		}
		d->in_tx = 0;
		if (rc == MDM_OK || !db_retryable(d, rc))
			return rc;
		log_warn("db: transaction attempt %d failed (%s), retrying", attempt + 1,
		        d->sqlstate[0] ? d->sqlstate : err_str(rc));
	}
	return rc;
}

/* An identifier LISTEN can take unquoted: it cannot be a parameter. */
static int db_channel_valid(const char *c)
{
	size_t n = 0;

	for (; c[n] != '\0'; n++)
		if (!((c[n] >= 'a' && c[n] <= 'z') || c[n] == '_' ||
		            (n > 0 && c[n] >= '0' && c[n] <= '9')))
			return 0;
	return n >= 1 && n <= 63;
}

mdm_err db_listen(db *d, const char *channel)
{
	char sql[80];
	mdm_err rc;

	if (channel == NULL || !db_channel_valid(channel)) {
		log_error(
		        "db: LISTEN channel must be 1..63 of [a-z_0-9], not starting with a digit");
		return MDM_ERR_INVAL;
	}
	for (int i = 0; i < d->nlisten; i++)
		if (strcmp(d->listen[i], channel) == 0)
			return MDM_OK;
	if (d->nlisten >= DB_MAX_LISTEN) {
		log_error("db: more than %d LISTEN channels", DB_MAX_LISTEN);
		return MDM_ERR_LIMIT;
	}
	if (d->in_tx) {
		log_error("db: LISTEN inside a transaction");
		return MDM_ERR_INTERNAL;
	}
	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	if ((rc = db_exec(d, sql, 0, NULL, NULL)) != MDM_OK)
		return rc;
	/* Remembered only once it worked; a reconnect inside db_exec had none to redo. */
	memcpy(d->listen[d->nlisten++], channel, strlen(channel) + 1);
	return MDM_OK;
}

/* Takes what arrived off libpq's queue. */
static int db_drain_notifies(db *d)
{
	PGnotify *n;
	int got = 0;

	while ((n = PQnotifies(d->conn)) != NULL) {
		got++;
		PQfreemem(n);
	}
	return got;
}

mdm_err db_wait_notify(db *d, int timeout_ms, int *got)
{
	struct pollfd pfd;
	mdm_err rc;
	int r;

	*got = 0;
	if (d->in_tx) {
		log_error("db: waiting for notifications inside a transaction");
		return MDM_ERR_INTERNAL;
	}
	if ((rc = db_connect(d)) != MDM_OK)
		return rc;
	if (d->relistened) {
		/* Whatever was sent while we were away is lost: say so as a wake-up. */
		d->relistened = 0;
		*got = 1;
	}
	rc = MDM_ERR_DB_CONN;
	if (!PQconsumeInput(d->conn))
		goto out;
	*got += db_drain_notifies(d);
	rc = MDM_OK;
	if (*got > 0 || timeout_ms <= 0)
		goto out;
	pfd.fd = PQsocket(d->conn);
	pfd.events = POLLIN;
	pfd.revents = 0;
	if (pfd.fd < 0) {
		rc = MDM_ERR_DB_CONN;
		goto out;
	}
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0 && errno != EINTR) {
		log_error("db: poll: %s", strerror(errno));
		rc = MDM_ERR_IO;
	} else if (r > 0) {
		if (!PQconsumeInput(d->conn))
			rc = MDM_ERR_DB_CONN;
		else
			*got = db_drain_notifies(d);
	}
out:
	if (rc == MDM_ERR_DB_CONN) {
		log_warn("db: connection lost while waiting for notifications: %.*s",
		        (int)strcspn(PQerrorMessage(d->conn), "\n"), PQerrorMessage(d->conn));
		PQfinish(d->conn);
		d->conn = NULL;
	}
	return rc;
}

const char *db_get0_sqlstate(const db *d)
{
	return d->sqlstate;
}

int db_res_rows(const db_res *r)
{
	return r ? PQntuples(r->res) : 0;
}

int db_res_cols(const db_res *r)
{
	return r ? PQnfields(r->res) : 0;
}

const char *db_res_col_name0(const db_res *r, int col)
{
	return r != NULL && col >= 0 && col < PQnfields(r->res) ? PQfname(r->res, col) : NULL;
}

const char *db_res_get0(const db_res *r, int row, int col)
{
	if (r == NULL || row < 0 || col < 0 || row >= PQntuples(r->res) ||
	        col >= PQnfields(r->res) || PQgetisnull(r->res, row, col))
		return NULL;
	return PQgetvalue(r->res, row, col);
}

mdm_err db_res_get_bytea(const db_res *r, int row, int col, uint8_t **out, size_t *outlen)
{
	const char *v = db_res_get0(r, row, col);
	unsigned char *raw;
	size_t n = 0;

	*out = NULL;
	*outlen = 0;
	if (v == NULL)
		return MDM_ERR_NOT_FOUND;
	/* libpq's decoder: hex ("\\x...") and escape formats alike. */
	if ((raw = PQunescapeBytea((const unsigned char *)v, &n)) == NULL)
		return MDM_ERR_NOMEM;
	if ((*out = malloc(n ? n : 1)) == NULL) {
		PQfreemem(raw);
		return MDM_ERR_NOMEM;
	}
	memcpy(*out, raw, n);
	*outlen = n;
	PQfreemem(raw);
	return MDM_OK;
}

int db_res_is_null(const db_res *r, int row, int col)
{
	return db_res_get0(r, row, col) == NULL;
}

long db_res_affected(const db_res *r)
{
	const char *s = r ? PQcmdTuples(r->res) : "";

	return *s ? strtol(s, NULL, 10) : 0;
}

void db_res_free(db_res *r)
{
	if (r == NULL)
		return;
	PQclear(r->res);
	free(r);
}
