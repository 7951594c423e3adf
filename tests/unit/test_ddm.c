/*
 * ddm: Declarative Device Management in SQL (sql/025_ddm.sql) against a
 * real PostgreSQL (MDM_TEST_DB; a database per test): the tokens, the
 * answers mdm.ddm_checkin gives checkin.fcgi for each Endpoint, the real
 * status reports of ../shared/vectors stored (MDM_VECTORS; skipped with a
 * note when absent), hostile JSON refused with nothing written, the
 * builders, and what mdm_operator may do.  The test includes libpq itself:
 * lib/db.h exposes neither error messages nor notices.
 */
#define _GNU_SOURCE /* asprintf */
#include "db.h"
#include "log.h"
#include "suites.h"
#include "ts_db.h"
#include "vectors.h"

#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UDID_A "00008030-000A1234567890DD"
#define UDID_B "00008030-000B1234567890DD"

static struct ts_db tdb;
static db *d;
static PGconn *pg;
static char notice[512]; /* the last NOTICE or WARNING */

static void on_notice(void *arg, const PGresult *r)
{
	const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	snprintf(notice, sizeof(notice), "%s: %s",
	        PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED), m ? m : "");
}

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&tdb, "ddm");
	d = tdb.d;
	ck_assert_int_eq(
	        db_exec(d, "INSERT INTO mdm.device (udid) VALUES ('" UDID_A "'), ('" UDID_B "')", 0,
	                NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.enrollment (udid, user_id, active) VALUES "
	                         "('" UDID_A "', NULL, true), ('" UDID_A "', 'user-1', true), "
	                         "('" UDID_B "', NULL, true)",
	                         0, NULL, NULL),
	        MDM_OK);
	pg = PQconnectdb(tdb.conninfo);
	ck_assert_int_eq(PQstatus(pg), CONNECTION_OK);
	PQsetNoticeReceiver(pg, on_notice, NULL);
	notice[0] = '\0';
}

static void teardown(void)
{
	PQfinish(pg);
	pg = NULL;
	d = NULL;
	ts_db_drop(&tdb);
}

/* ------------------------------------------------------------ helpers */

static PGresult *exec(const char *sql, int n, const char *const *p)
{
	return PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
}

/* One value (text; "(null)" for NULL) of a one-row query; the caller frees it. */
static char *q1(const char *sql, int n, const char *const *p)
{
	PGresult *r = exec(sql, n, p);
	char *s;

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(pg));
	ck_assert_msg(PQntuples(r) == 1, "%s: %d rows", sql, PQntuples(r));
	s = strdup(PQgetisnull(r, 0, 0) ? "(null)" : PQgetvalue(r, 0, 0));
	ck_assert_ptr_nonnull(s);
	PQclear(r);
	return s;
}

static void want(const char *sql, int n, const char *const *p, const char *expect)
{
	char *got = q1(sql, n, p);

	ck_assert_msg(strcmp(got, expect) == 0, "%s: got %s, want %s", sql, got, expect);
	free(got);
}

static char *snapshot(void)
{
	return q1(
	        "SELECT md5(concat_ws('#', "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.declaration t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM "
	        " mdm.declaration_set_member t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM "
	        " mdm.enrollment_declaration_set t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.ddm_enrollment t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.command_queue t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.ddm_status_report t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.ddm_status_item t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM "
	        " mdm.ddm_declaration_state t)))",
	        0, NULL);
}

/* The statement fails with sqlstate, its message says rule, nothing written. */
static void refused(
        const char *sql, int n, const char *const *p, const char *sqlstate, const char *rule)
{
	char *before = snapshot(), *after;
	PGresult *r = exec(sql, n, p);
	const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "accepted: %s [%s]", sql,
	        n > 0 && p[n - 1] ? p[n - 1] : "");
	ck_assert_msg(st && strcmp(st, sqlstate) == 0, "%s: sqlstate %s, want %s (%s)", sql,
	        st ? st : "none", sqlstate, msg ? msg : "");
	ck_assert_msg(msg && strstr(msg, rule), "%s: \"%s\" does not say \"%s\"", sql,
	        msg ? msg : "", rule);
	PQclear(r);
	after = snapshot();
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}

/*
 * What checkin.fcgi gets for a DeclarativeManagement check-in of udid's
 * device channel: "<status> <body>" (body "(null)" when NULL).
 */
static char *answer(const char *udid, const char *endpoint, const void *data, size_t len)
{
	const char *p[3] = {udid, endpoint, data};
	int lens[3] = {0, 0, (int)len}, fmts[3] = {0, 0, 1};
	PGresult *r = PQexecParams(pg,
	        "SELECT status, body FROM mdm.ddm_checkin($1, NULL, $2, $3::bytea)", 3, NULL, p,
	        lens, fmts, 0);
	char *s = NULL;

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", endpoint, PQerrorMessage(pg));
	ck_assert_int_ne(asprintf(&s, "%s %s", PQgetvalue(r, 0, 0),
	                         PQgetisnull(r, 0, 1) ? "(null)" : PQgetvalue(r, 0, 1)),
	        -1);
	PQclear(r);
	return s;
}

/* A status report answered 400 naming rule, nothing written. */
static void report_refused(const void *data, size_t len, const char *rule)
{
	char *before = snapshot(), *after, *a = answer(UDID_A, "status", data, len);

	ck_assert_msg(strncmp(a, "400 ", 4) == 0, "accepted: %.200s", a);
	ck_assert_msg(strstr(a, rule) != NULL, "%.300s does not say %s", a, rule);
	free(a);
	after = snapshot();
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}

static void report_ok(const void *data, size_t len)
{
	char *a = answer(UDID_A, "status", data, len);

	ck_assert_msg(strcmp(a, "200 (null)") == 0, "%.300s", a);
	free(a);
}

static char *token_of(const char *udid)
{
	const char *p[1] = {udid};

	return q1("SELECT coalesce((SELECT declarations_token FROM mdm.ddm_tokens WHERE udid = $1 "
	          "AND user_id IS NULL), '-')",
	        1, p);
}

static long queued_syncs(const char *udid)
{
	const char *p[1] = {udid};
	char *s = q1("SELECT count(*) FROM mdm.command_queue q JOIN mdm.command c USING "
	             "(command_uuid) JOIN mdm.enrollment e ON e.id = q.enrollment_id WHERE "
	             "e.udid = $1 AND e.user_id IS NULL AND q.status = 'queued' AND "
	             "c.request_type = 'DeclarativeManagement'",
	        1, p);
	long n = strtol(s, NULL, 10);

	free(s);
	return n;
}

static void run(const char *sql)
{
	PGresult *r = PQexec(pg, sql);

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK,
	        "%s: %s", sql, PQerrorMessage(pg));
	PQclear(r);
}

/* -------------------------------------------------------------- tests */

/*
 * ServerToken changes exactly when the content does; the DeclarationsToken
 * of an enrollment exactly when its set of declarations or one of their
 * tokens does, and each change queues one DeclarativeManagement (one
 * waiting at a time) and marks the push.
 */
START_TEST(tokens)
{
	char *t1, *t2, *t3, *dt1, *dt2, *dt3, *b0;

	t1 = q1("SELECT mdm.declaration_put('c1', 'com.apple.configuration.management.test', "
	        "'{\"Echo\": \"one\"}')",
	        0, NULL);
	ck_assert_int_eq(strlen(t1), 64);
	t2 = q1("SELECT mdm.declaration_put('c1', 'com.apple.configuration.management.test', "
	        "'{\"Echo\":\"one\"}')",
	        0, NULL);
	ck_assert_str_eq(t1, t2); /* same content, other spelling: same token */
	free(t2);
	t2 = q1("SELECT mdm.declaration_put('c1', 'com.apple.configuration.management.test', "
	        "'{\"Echo\": \"two\"}')",
	        0, NULL);
	ck_assert_str_ne(t1, t2);
	/* The Type and the Identifier are content too. */
	t3 = q1("SELECT mdm.declaration_put('c2', 'com.apple.configuration.management.test', "
	        "'{\"Echo\": \"two\"}')",
	        0, NULL);
	ck_assert_str_ne(t2, t3);
	free(t3);

	/* Nothing assigned: no token row, no command. */
	ck_assert_str_eq((b0 = token_of(UDID_B)), "-");
	run("SELECT mdm.declaration_set_add('s', 'c1')");
	ck_assert_int_eq(queued_syncs(UDID_A), 0);
	want("SELECT mdm.enrollment_set_add($1, 's')", 1, (const char *[]){UDID_A}, "t");
	want("SELECT mdm.enrollment_set_add($1, 's')", 1, (const char *[]){UDID_A}, "f");
	dt1 = token_of(UDID_A);
	ck_assert_uint_le(strlen(dt1), 256);
	ck_assert_int_eq(queued_syncs(UDID_A), 1);
	want("SELECT pending::text FROM mdm.push_state s JOIN mdm.enrollment e ON "
	     "e.id = s.enrollment_id WHERE e.udid = $1 AND e.user_id IS NULL",
	        1, (const char *[]){UDID_A}, "true");
	/* The command carries the TokensResponse of now (mdm/commands/declarativemanagement). */
	want("SELECT (convert_from(decode((regexp_match(c.plist, '<data>([^<]*)</data>'))[1], "
	     "'base64'), 'UTF8')::jsonb #>> '{SyncTokens,DeclarationsToken}') = $2 FROM "
	     "mdm.command c JOIN mdm.command_queue q USING (command_uuid) JOIN mdm.enrollment e "
	     "ON e.id = q.enrollment_id WHERE e.udid = $1 AND q.status = 'queued'",
	        2, (const char *[]){UDID_A, dt1}, "t");

	/* A put of the same content changes nothing and queues nothing. */
	run("SELECT mdm.declaration_put('c1', 'com.apple.configuration.management.test', "
	    "'{\"Echo\": \"two\"}')");
	dt2 = token_of(UDID_A);
	ck_assert_str_eq(dt1, dt2);
	free(dt2);
	want("SELECT count(*) FROM mdm.command WHERE request_type = 'DeclarativeManagement'", 0,
	        NULL, "1");
	/* New content: a new token, the waiting command replaced (one at a time). */
	run("SELECT mdm.declaration_put('c1', 'com.apple.configuration.management.test', "
	    "'{\"Echo\": \"three\"}')");
	dt2 = token_of(UDID_A);
	ck_assert_str_ne(dt1, dt2);
	ck_assert_int_eq(queued_syncs(UDID_A), 1);
	want("SELECT count(*) FROM mdm.command_queue WHERE status = 'canceled'", 0, NULL, "1");
	/* Another member: a new token; removing it: the old token again. */
	run("SELECT mdm.declaration_set_add('s', 'c2')");
	dt3 = token_of(UDID_A);
	ck_assert_str_ne(dt3, dt2);
	run("SELECT mdm.declaration_set_remove('s', 'c2')");
	free(dt3);
	dt3 = token_of(UDID_A);
	ck_assert_str_eq(dt3, dt2);
	free(dt3);
	/* A delivered command is not canceled: the device may be acting on it. */
	run("UPDATE mdm.command_queue SET delivered_at = now(), delivered_count = 1 WHERE status "
	    "= 'queued'");
	run("SELECT mdm.declaration_delete('c1')");
	ck_assert_int_eq(queued_syncs(UDID_A), 2);
	dt3 = token_of(UDID_A);
	ck_assert_str_ne(dt3, dt2);
	/* The other device never changed. */
	free(b0);
	ck_assert_str_eq((b0 = token_of(UDID_B)), "-");
	ck_assert_int_eq(queued_syncs(UDID_B), 0);
	/* The set removed from the enrollment: tokens of the empty set. */
	want("SELECT mdm.enrollment_set_remove($1, 's')", 1, (const char *[]){UDID_A}, "t");
	want("SELECT declarations_token = encode(sha256(''::bytea), 'hex') FROM mdm.ddm_tokens "
	     "WHERE udid = $1 AND user_id IS NULL",
	        1, (const char *[]){UDID_A}, "t");
	/* The user channel is its own enrollment. */
	run("SELECT mdm.declaration_put('c3', 'com.apple.configuration.management.test', '{}')");
	run("SELECT mdm.declaration_set_add('u', 'c3')");
	want("SELECT mdm.enrollment_set_add($1, 'u', 'user-1')", 1, (const char *[]){UDID_A}, "t");
	want("SELECT count(*) FROM mdm.enrollment_declarations WHERE udid = $1 AND user_id = "
	     "'user-1' AND identifier = 'c3'",
	        1, (const char *[]){UDID_A}, "1");
	want("SELECT count(*) FROM mdm.enrollment_declarations WHERE udid = $1 AND user_id IS NULL",
	        1, (const char *[]){UDID_A}, "0");
	/* cmd_declarative_management: the command on demand (turns DDM on). */
	want("SELECT length(mdm.cmd_declarative_management($1)::text)", 1, (const char *[]){UDID_B},
	        "36");
	ck_assert_int_eq(queued_syncs(UDID_B), 1);
	refused("SELECT mdm.cmd_declarative_management('nope')", 0, NULL, "P0002", "no enrollment");
	free(t1);
	free(t2);
	free(dt1);
	free(dt2);
	free(dt3);
	free(b0);
}
END_TEST

/* Each Endpoint's answer has the keys its schema requires (declarative/protocol). */
START_TEST(endpoints)
{
	char *a;

	run("SELECT mdm.declaration_put('cfg', 'com.apple.configuration.management.test', "
	    "'{\"Echo\": \"x\"}')");
	run("SELECT mdm.ddm_activation('act', ARRAY['cfg'])");
	run("SELECT mdm.declaration_put('org', 'com.apple.management.organization-info', "
	    "'{\"OrganizationName\": \"Example\"}')");
	run("SELECT mdm.declaration_put('cred', 'com.apple.asset.data', "
	    "'{\"Reference\": {\"DataURL\": \"https://example.com/x\"}}')");
	run("SELECT mdm.declaration_set_add('s', x) FROM unnest(ARRAY['cfg','act','org','cred']) "
	    "x");
	run("SELECT mdm.enrollment_set_add('" UDID_A "', 's')");

	a = answer(UDID_A, "tokens", NULL, 0);
	ck_assert_str_eq(strtok(a, " "), "200");
	want("SELECT (j #>> '{SyncTokens,DeclarationsToken}' = (SELECT declarations_token FROM "
	     "mdm.ddm_tokens WHERE udid = $2 AND user_id IS NULL) AND "
	     "(j #>> '{SyncTokens,Timestamp}') ~ '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$')::"
	     "text FROM (SELECT $1::jsonb j) x",
	        2, (const char *[]){a + 4, UDID_A}, "true");
	free(a);

	a = answer(UDID_A, "declaration-items", NULL, 0);
	ck_assert_str_eq(strtok(a, " "), "200");
	want("SELECT string_agg(k || ':' || jsonb_array_length(j -> 'Declarations' -> k), ',' "
	     "ORDER BY k) || ' ' || (j ->> 'DeclarationsToken' IS NOT NULL)::text FROM (SELECT "
	     "$1::jsonb j) x, unnest(ARRAY['Activations','Assets','Configurations','Management']) "
	     "k GROUP BY j",
	        1, (const char *[]){a + 4},
	        "Activations:1,Assets:1,Configurations:1,Management:1 true");
	/* Each item: Identifier and ServerToken, the declaration's. */
	want("SELECT bool_and(i ->> 'ServerToken' = (SELECT server_token FROM mdm.declarations d "
	     "WHERE d.identifier = i ->> 'Identifier'))::text FROM (SELECT $1::jsonb j) x, "
	     "jsonb_array_elements((j -> 'Declarations' -> 'Activations') || (j -> 'Declarations' "
	     "-> 'Configurations') || (j -> 'Declarations' -> 'Assets') || (j -> 'Declarations' -> "
	     "'Management')) i",
	        1, (const char *[]){a + 4}, "true");
	free(a);

	static const char *const each[][2] = {{"declaration/configuration/cfg", "cfg"},
	        {"declaration/activation/act", "act"}, {"declaration/management/org", "org"},
	        {"declaration/asset/cred", "cred"}};
	for (size_t i = 0; i < sizeof(each) / sizeof(each[0]); i++) {
		a = answer(UDID_A, each[i][0], NULL, 0);
		ck_assert_str_eq(strtok(a, " "), "200");
		/* declarationbase.yaml: Type, Identifier, ServerToken, Payload. */
		want("SELECT (j ->> 'Identifier' = $2 AND j ->> 'Type' = d.type AND j ->> "
		     "'ServerToken' = d.server_token AND j -> 'Payload' = d.payload)::text FROM "
		     "(SELECT $1::jsonb j) x JOIN mdm.declarations d ON d.identifier = $2",
		        2, (const char *[]){a + 4, each[i][1]}, "true");
		free(a);
	}
	/* The activation names its configuration. */
	want("SELECT payload::text FROM mdm.declarations WHERE identifier = 'act'", 0, NULL,
	        "{\"StandardConfigurations\": [\"cfg\"]}");
	/* 404: the wrong kind, another device, a deleted one. */
	static const char *const missing[][2] = {{UDID_A, "declaration/asset/cfg"},
	        {UDID_B, "declaration/configuration/cfg"},
	        {UDID_A, "declaration/configuration/no"}};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		a = answer(missing[i][0], missing[i][1], NULL, 0);
		ck_assert_str_eq(a, "404 (null)");
		free(a);
	}
	/* 400: what the Endpoint may not be. */
	static const char *const bad[] = {"", "token", "declaration/", "declaration/configuration/",
	        "declaration/profile/cfg", "declaration/configuration/cfg/x", "declaration//cfg",
	        "../tokens", "TOKENS"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		a = answer(UDID_A, bad[i], NULL, 0);
		ck_assert_msg(strncmp(a, "400 mdm/checkin/declarativemanagement.yaml", 42) == 0,
		        "%s: %s", bad[i], a);
		free(a);
	}
	run("SELECT mdm.declaration_delete('cfg')");
	a = answer(UDID_A, "declaration/configuration/cfg", NULL, 0);
	ck_assert_str_eq(a, "404 (null)");
	free(a);
}
END_TEST

/* declaration_put's rules: each refusal names it and writes nothing. */
START_TEST(put_refusals)
{
	static const struct {
		const char *json, *state, *rule;
	} bad[] = {
	        {"{\"Identifier\": \"a\", \"Type\": ", "22023", "RFC 8259"},
	        {"[1]", "22023", "a declaration is a JSON object"},
	        {"{\"Type\": \"com.apple.configuration.management.test\"}", "22023",
	                "Identifier and Type are required"},
	        {"{\"Identifier\": \"a\"}", "22023", "Identifier and Type are required"},
	        {"{\"Identifier\": 1, \"Type\": \"com.apple.configuration.management.test\"}",
	                "22023", "Identifier and Type are required"},
	        {"{\"Identifier\": \"a\", \"Type\": \"com.apple.configuration.management.test\", "
	         "\"Identifier\": \"b\"}",
	                "22023", "RFC 8259 section 4"},
	        {"{\"Identifier\": \"a\", \"Type\": \"com.apple.configuration.management.test\", "
	         "\"Payload\": {\"x\": {\"y\": 1, \"y\": 2}}}",
	                "22023", "RFC 8259 section 4"},
	        {"{\"Identifier\": \"a\", \"Type\": \"com.apple.configuration.management.test\", "
	         "\"Extra\": 1}",
	                "22023", "unknown key"},
	        {"{\"Identifier\": \"a/b\", \"Type\": \"com.apple.configuration.management.test\"}",
	                "22023", "path segment"},
	        {"{\"Identifier\": \"..\", \"Type\": \"com.apple.configuration.management.test\"}",
	                "22023", "path segment"},
	        {"{\"Identifier\": \"a'b\", \"Type\": \"com.apple.configuration.management.test\"}",
	                "22023", "path segment"},
	        {"{\"Identifier\": \"a\", \"Type\": \"com.example.configuration.x\"}", "22023",
	                "com.apple.<activation"},
	        {"{\"Identifier\": \"a\", \"Type\": \"com.apple.configuration.\"}", "22023",
	                "com.apple.<activation"},
	        {"{\"Identifier\": \"a\", \"Type\": \"com.apple.configuration.management.test\", "
	         "\"Payload\": [1]}",
	                "22023", "Payload must be a JSON object"},
	};
	const char *p[1];
	char deep[200] = "";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p[0] = bad[i].json;
		refused("SELECT mdm.declaration_put($1)", 1, p, bad[i].state, bad[i].rule);
	}
	/* 33 levels of Payload. */
	strcat(deep,
	        "{\"Identifier\":\"a\",\"Type\":\"com.apple.configuration.management.test\","
	        "\"Payload\":");
	for (int i = 0; i < 32; i++)
		strcat(deep, "[");
	for (int i = 0; i < 32; i++)
		strcat(deep, "]");
	strcat(deep, "}");
	p[0] = deep;
	refused("SELECT mdm.declaration_put($1)", 1, p, "22023", "nested too deeply");
	refused("SELECT mdm.declaration_put('a', NULL, '{}')", 0, NULL, "22004", "required");
	refused("SELECT mdm.declaration_put('a', 'com.apple.configuration.management.test', "
	        "'\"x\"')",
	        0, NULL, "22023", "Payload must be a JSON object");
	refused("SELECT mdm.declaration_set_add('s', 'nope')", 0, NULL, "P0002", "no declaration");
	refused("SELECT mdm.enrollment_set_add('" UDID_A "', 'nope')", 0, NULL, "P0002",
	        "no declaration set");
	refused("SELECT mdm.enrollment_set_add('nope', 'nope')", 0, NULL, "P0002", "no enrollment");
	/* An unknown type of a known kind: accepted, with a WARNING (Apple adds types). */
	{
		PGresult *r = PQexec(pg,
		        "SELECT mdm.declaration_put('{\"Identifier\": \"f\", "
		        "\"Type\": \"com.apple.configuration.future.thing\", "
		        "\"ServerToken\": \"ignored\"}')");

		ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
		ck_assert_str_ne(PQgetvalue(r, 0, 0), "ignored");
		ck_assert_msg(strncmp(notice, "WARNING: ", 9) == 0 &&
		                strstr(notice, "com.apple.configuration.future.thing"),
		        "%s", notice);
		PQclear(r);
		want("SELECT kind || ' ' || payload::text FROM mdm.declarations WHERE identifier = "
		     "'f'",
		        0, NULL, "configuration {}");
	}
}
END_TEST

static void vector_report(const char *rel)
{
	size_t len;
	uint8_t *body = vector_read("ddm", rel, &len);

	if (body == NULL)
		return;
	report_ok(body, len);
	want("SELECT report = convert_from($1::bytea, 'UTF8') FROM mdm.ddm_status_report ORDER BY "
	     "id DESC LIMIT 1",
	        1, (const char *[]){(const char *)body}, "t");
	free(body);
}

/* The real status reports (MANIFEST.md: kmfddm, zentral): items, errors with reasons. */
START_TEST(real_status_reports)
{
	if (vector_dir() == NULL) {
		printf("ddm: MDM_VECTORS absent: real status reports skipped\n");
		return;
	}
	vector_report("kmfddm/test/e2e/testdata/status.1st.json");
	vector_report("kmfddm/test/e2e/testdata/status.D0.error.json");
	/* status.D0.error.json: the configuration not referenced by an activation. */
	want("SELECT kind || ' ' || active || ' ' || valid || ' ' || server_token || ' ' || "
	     "(reasons -> 0 ->> 'code') || ' ' || (reasons #>> '{0,details,Identifier}') || ' ' "
	     "|| current FROM mdm.ddm_declaration_status WHERE udid = $1 AND identifier = "
	     "'com.example.test'",
	        1, (const char *[]){UDID_A},
	        "configuration false unknown 7c6d85989e823101 Info.NotReferencedByActivation "
	        "com.example.test false");
	vector_report("kmfddm/ddm/testdata/"
	              "A047820F-FC6B-4104-BED0-466876D82BB8.20220628-103225.001918.status.json");
	want("SELECT string_agg(identifier || '=' || valid || ':' || coalesce(reasons #>> "
	     "'{0,details,Error}', '-'), ',' ORDER BY identifier) FROM mdm.ddm_declaration_status "
	     "WHERE udid = $1 AND kind = 'configuration' AND valid = 'invalid'",
	        1, (const char *[]){UDID_A},
	        "0FCD2F56-D5BC-48EA-B98D-E0CCC0C6F9E0=invalid:An internal error has occurred.,"
	        "4D6F8451-C089-4E65-A615-7C6EFF154F72=invalid:Profile Installation Failed");
	want("SELECT value #>> '{}' FROM mdm.ddm_status WHERE udid = $1 AND item = "
	     "'device.model.marketing-name'",
	        1, (const char *[]){UDID_A}, "iPhone 8 Plus");
	vector_report("zentral/tests/mdm/testdata/status_report.json");
	/* The latest value wins; items Apple names with a dictionary value stay whole. */
	want("SELECT value #>> '{}' FROM mdm.ddm_status WHERE udid = $1 AND item = "
	     "'device.model.marketing-name'",
	        1, (const char *[]){UDID_A}, "Mac mini (M1, 2020)");
	want("SELECT (value -> 'supported-versions')::text FROM mdm.ddm_status WHERE udid = $1 "
	     "AND item = 'management.client-capabilities'",
	        1, (const char *[]){UDID_A}, "[\"1.0.0\"]");
	want("SELECT value #>> '{}' FROM mdm.ddm_status WHERE udid = $1 AND item = "
	     "'device.operating-system.supplemental.extra-version'",
	        1, (const char *[]){UDID_A}, "(a)");
	want("SELECT count(*) FROM mdm.ddm_status_reports WHERE udid = $1", 1,
	        (const char *[]){UDID_A}, "4");
	/* Nothing on the other device. */
	want("SELECT count(*) FROM mdm.ddm_status WHERE udid = $1", 1, (const char *[]){UDID_B},
	        "0");
}
END_TEST

/* Errors, incremental and full reports, the install state of a software update. */
START_TEST(status_semantics)
{
	static const char r1[] =
	        "{\"StatusItems\": {\"softwareupdate\": {\"install-state\": \"downloading\", "
	        "\"pending-version\": {\"os-version\": \"26.1\", \"build-version\": \"23B74\"}}, "
	        "\"management\": {\"declarations\": {\"configurations\": [{\"identifier\": \"x\", "
	        "\"active\": true, \"valid\": \"valid\", \"server-token\": \"1\"}, "
	        "{\"identifier\": "
	        "\"y\", \"active\": true, \"valid\": \"valid\", \"server-token\": \"1\"}]}}}, "
	        "\"Errors\": [{\"StatusItem\": \"device.power.battery-health\", \"Reasons\": "
	        "[{\"Code\": \"Error.NotSupported\", \"Description\": \"no battery\"}]}]}";
	static const char r2[] =
	        "{\"StatusItems\": {\"softwareupdate\": {\"install-state\": \"installing\"}, "
	        "\"management\": {\"declarations\": {\"configurations\": [{\"identifier\": \"x\", "
	        "\"active\": false, \"valid\": \"invalid\", \"server-token\": \"2\", \"reasons\": "
	        "[{\"code\": \"Error.X\"}]}]}}}, \"Errors\": []}";
	static const char r3[] =
	        "{\"StatusItems\": {\"management\": {\"declarations\": {\"configurations\": "
	        "[{\"identifier\": \"y\", \"active\": true, \"valid\": \"valid\", "
	        "\"server-token\": "
	        "\"1\"}]}}}, \"Errors\": [], \"FullReport\": true}";

	report_ok(r1, strlen(r1));
	want("SELECT value #>> '{}' FROM mdm.ddm_status WHERE item = "
	     "'softwareupdate.install-state'",
	        0, NULL, "downloading");
	want("SELECT value ->> 'build-version' FROM mdm.ddm_status WHERE item = "
	     "'softwareupdate.pending-version'",
	        0, NULL, "23B74");
	want("SELECT (value IS NULL)::text || ' ' || (error -> 0 ->> 'Code') FROM mdm.ddm_status "
	     "WHERE item = 'device.power.battery-health'",
	        0, NULL, "true Error.NotSupported");
	/* Incremental: x changes, y stays. */
	report_ok(r2, strlen(r2));
	want("SELECT value #>> '{}' FROM mdm.ddm_status WHERE item = "
	     "'softwareupdate.install-state'",
	        0, NULL, "installing");
	want("SELECT string_agg(identifier || ':' || valid || ':' || active || ':' || "
	     "coalesce(reasons -> 0 ->> 'code', '-'), ',' ORDER BY identifier) FROM "
	     "mdm.ddm_declaration_status",
	        0, NULL, "x:invalid:false:Error.X,y:valid:true:-");
	/* FullReport (statusreport.yaml): the whole state; x is gone. */
	report_ok(r3, strlen(r3));
	want("SELECT string_agg(identifier, ',') FROM mdm.ddm_declaration_status", 0, NULL, "y");
	/* The error stays until the device reports the item again. */
	want("SELECT count(*) FROM mdm.ddm_status WHERE error IS NOT NULL", 0, NULL, "1");
}
END_TEST

/* Hostile status reports: 400 with the rule, nothing written, never a 500. */
START_TEST(hostile_reports)
{
	static const struct {
		const char *json, *rule;
	} bad[] = {
	        {"", "RFC 8259"},
	        {"{\"StatusItems\": {}, \"Errors\": []} x", "RFC 8259"},
	        {"{\"StatusItems\": {}, \"Errors\": [], }", "RFC 8259"},
	        {"{'StatusItems': {}}", "RFC 8259"},
	        {"[]", "statusreport.yaml"},
	        {"\"x\"", "statusreport.yaml"},
	        {"{\"Errors\": []}", "statusreport.yaml"},
	        {"{\"StatusItems\": {}}", "statusreport.yaml"},
	        {"{\"StatusItems\": [], \"Errors\": []}", "statusreport.yaml"},
	        {"{\"StatusItems\": {}, \"Errors\": {}}", "statusreport.yaml"},
	        {"{\"StatusItems\": null, \"Errors\": []}", "statusreport.yaml"},
	        {"{\"StatusItems\": {}, \"Errors\": [], \"FullReport\": \"yes\"}", "FullReport"},
	        {"{\"StatusItems\": {}, \"Errors\": [1]}", "StatusItem"},
	        {"{\"StatusItems\": {}, \"Errors\": [{\"StatusItem\": 1}]}", "StatusItem"},
	        {"{\"StatusItems\": {}, \"Errors\": [{\"StatusItem\": \"a\", \"Reasons\": {}}]}",
	                "StatusItem"},
	        {"{\"StatusItems\": {\"management\": {\"declarations\": []}}, \"Errors\": []}",
	                "management.declarations.yaml"},
	        {"{\"StatusItems\": {\"management\": {\"declarations\": {\"configurations\": "
	         "{}}}}, \"Errors\": []}",
	                "management.declarations.yaml"},
	        {"{\"StatusItems\": {\"management\": {\"declarations\": {\"assets\": [\"x\"]}}}, "
	         "\"Errors\": []}",
	                "management.declarations.yaml"},
	        {"{\"StatusItems\": {\"management\": {\"declarations\": {\"activations\": "
	         "[{\"identifier\": \"a\", \"active\": \"true\", \"valid\": \"valid\", "
	         "\"server-token\": \"1\"}]}}}, \"Errors\": []}",
	                "management.declarations.yaml"},
	        {"{\"StatusItems\": {\"management\": {\"declarations\": {\"activations\": "
	         "[{\"identifier\": \"a\", \"active\": true, \"valid\": \"valid\"}]}}}, "
	         "\"Errors\": []}",
	                "management.declarations.yaml"},
	        {"{\"StatusItems\": {\"a\": 1, \"a\": 2}, \"Errors\": []}", "RFC 8259 section 4"},
	        {"{\"StatusItems\": {\"device\": {\"x\": [{\"k\": 1, \"k\": 1}]}}, \"Errors\": []}",
	                "RFC 8259 section 4"},
	        {"{\"StatusItems\": {}, \"Errors\": [], \"Errors\": []}", "RFC 8259 section 4"},
	};
	char *deep, *big;
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		report_refused(bad[i].json, strlen(bad[i].json), bad[i].rule);
	/* No Data at all, bytes that are not UTF-8. */
	report_refused(NULL, 0, "StatusReport in Data");
	report_refused("{\"StatusItems\": {\"a\": \"\xff\"}, \"Errors\": []}", 37, "UTF-8");
	/* Depth: 33 levels, and far past PostgreSQL's own stack. */
	for (int levels = 33; levels <= 200000; levels = levels == 33 ? 200000 : levels + 1) {
		n = 2 * (size_t)levels + 40;
		deep = malloc(n);
		ck_assert_ptr_nonnull(deep);
		strcpy(deep, "{\"StatusItems\": {\"x\": ");
		size_t at = strlen(deep);
		for (int i = 0; i < levels - 2; i++)
			deep[at++] = '[';
		for (int i = 0; i < levels - 2; i++)
			deep[at++] = ']';
		strcpy(deep + at, "}, \"Errors\": []}");
		report_refused(deep, strlen(deep), levels == 33 ? "nested too deeply" : "");
		free(deep);
	}
	/* 32 levels are fine. */
	n = 200;
	deep = calloc(1, n);
	strcpy(deep, "{\"StatusItems\": {\"x\": ");
	for (int i = 0; i < 30; i++)
		strcat(deep, "[");
	for (int i = 0; i < 30; i++)
		strcat(deep, "]");
	strcat(deep, "}, \"Errors\": []}");
	report_ok(deep, strlen(deep));
	free(deep);
	/* Size: over 192 KiB refused before it is parsed. */
	n = 192 * 1024 + 1;
	big = malloc(n + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', n);
	memcpy(big, "{\"StatusItems\": {}, \"Errors\": []}", 33);
	big[n] = '\0';
	report_refused(big, n, "over 192 KiB");
	free(big);
	/* A channel that is not enrolled. */
	{
		char *a = answer("nope", "status", "{}", 2);

		ck_assert_msg(strncmp(a, "400 ", 4) == 0, "%s", a);
		free(a);
	}
}
END_TEST

/* The builders make ordinary declarations, with the schemas' keys. */
START_TEST(builders)
{
	char *a;

	run("SELECT mdm.ddm_software_update('su', '26.1', '2026-12-24 18:00', '23B74', "
	    "'https://example.com/update')");
	want("SELECT type || ' ' || payload::text FROM mdm.declarations WHERE identifier = 'su'", 0,
	        NULL,
	        "com.apple.configuration.softwareupdate.enforcement.specific {\"DetailsURL\": "
	        "\"https://example.com/update\", \"TargetOSVersion\": \"26.1\", "
	        "\"TargetBuildVersion\": \"23B74\", \"TargetLocalDateTime\": "
	        "\"2026-12-24T18:00:00\"}");
	run("SELECT mdm.ddm_software_update('su2', '26.2', '2027-01-10 09:30')");
	want("SELECT payload::text FROM mdm.declarations WHERE identifier = 'su2'", 0, NULL,
	        "{\"TargetOSVersion\": \"26.2\", \"TargetLocalDateTime\": "
	        "\"2027-01-10T09:30:00\"}");
	run("SELECT mdm.ddm_status_subscriptions('subs', ARRAY['softwareupdate.install-state', "
	    "'device.operating-system.version', 'softwareupdate.install-state'])");
	want("SELECT payload::text FROM mdm.declarations WHERE identifier = 'subs'", 0, NULL,
	        "{\"StatusItems\": [{\"Name\": \"device.operating-system.version\"}, {\"Name\": "
	        "\"softwareupdate.install-state\"}]}");
	run("SELECT mdm.ddm_activation('act', ARRAY['su', 'subs'], "
	    "'@status(device.model.family) == \"iPhone\"')");
	want("SELECT payload::text FROM mdm.declarations WHERE identifier = 'act'", 0, NULL,
	        "{\"Predicate\": \"@status(device.model.family) == \\\"iPhone\\\"\", "
	        "\"StandardConfigurations\": [\"su\", \"subs\"]}");
	run("SELECT mdm.declaration_set_add('fleet', x) FROM unnest(ARRAY['su', 'subs', 'act']) x");
	run("SELECT mdm.enrollment_set_add('" UDID_A "', 'fleet')");
	a = answer(UDID_A, "declaration/configuration/su", NULL, 0);
	ck_assert_msg(strstr(a, "\"TargetOSVersion\": \"26.1\"") != NULL, "%s", a);
	free(a);
	refused("SELECT mdm.ddm_software_update('x', '26 1', '2026-12-24 18:00')", 0, NULL, "22023",
	        "TargetOSVersion");
	refused("SELECT mdm.ddm_software_update('x', NULL, '2026-12-24 18:00')", 0, NULL, "22023",
	        "TargetOSVersion");
	refused("SELECT mdm.ddm_software_update('x', '26.1', NULL)", 0, NULL, "22023",
	        "TargetLocalDateTime");
	refused("SELECT mdm.ddm_software_update('x', '26.1', 'infinity')", 0, NULL, "22023",
	        "TargetLocalDateTime");
	refused("SELECT mdm.ddm_software_update('x', '26.1', '2026-12-24', '23B74\"')", 0, NULL,
	        "22023", "TargetBuildVersion");
	refused("SELECT mdm.ddm_software_update('x', '26.1', '2026-12-24', NULL, "
	        "'javascript:alert(1)')",
	        0, NULL, "22023", "DetailsURL");
	refused("SELECT mdm.ddm_status_subscriptions('x', ARRAY[]::text[])", 0, NULL, "22023",
	        "StatusItems");
	refused("SELECT mdm.ddm_status_subscriptions('x', ARRAY['a b'])", 0, NULL, "22023",
	        "StatusItems");
	/* A hosted legacy profile: its hash in the URL, so a new profile is a new token. */
	{
		char *t1 = q1("SELECT mdm.ddm_legacy_profile('leg', 'one'::bytea, "
		              "'https://mdm.example.com:8443')",
		        0, NULL);
		char *t2 = q1("SELECT mdm.ddm_legacy_profile('leg', 'two'::bytea, "
		              "'https://mdm.example.com:8443')",
		        0, NULL);

		ck_assert_str_ne(t1, t2);
		want("SELECT payload ->> 'ProfileURL' = "
		     "'https://mdm.example.com:8443/enroll/ddm/leg"
		     "?sha256=' || encode(sha256('two'::bytea), 'hex') FROM mdm.declarations WHERE "
		     "identifier = 'leg'",
		        0, NULL, "t");
		want("SELECT type FROM mdm.declarations WHERE identifier = 'leg'", 0, NULL,
		        "com.apple.configuration.legacy");
		free(t1);
		free(t2);
		refused("SELECT mdm.ddm_legacy_profile('leg2', 'x'::bytea, "
		        "'http://mdm.example.com')",
		        0, NULL, "22023", "https://");
		refused("SELECT mdm.ddm_legacy_profile('leg2', 'x'::bytea, "
		        "'https://mdm.example.com/path')",
		        0, NULL, "22023", "https://");
		refused("SELECT mdm.ddm_legacy_profile('leg2', ''::bytea, "
		        "'https://mdm.example.com')",
		        0, NULL, "22023", "1 MiB");
		/* Deleted with its declaration. */
		run("SELECT mdm.declaration_delete('leg')");
		want("SELECT count(*) FROM mdm.ddm_profile", 0, NULL, "0");
	}
	refused("SELECT mdm.ddm_activation('x', ARRAY['nope'])", 0, NULL, "P0002",
	        "no configuration declaration");
	refused("SELECT mdm.ddm_activation('x', ARRAY['act'])", 0, NULL, "P0002",
	        "no configuration declaration");
}
END_TEST

/* mdm_operator: the API and the views, no table, not the programs' functions. */
START_TEST(operator_role)
{
	PGresult *r;

	run("SET ROLE mdm_operator");
	run("SELECT mdm.declaration_put('op', 'com.apple.configuration.management.test', '{}')");
	run("SELECT mdm.declaration_set_add('s', 'op')");
	run("SELECT mdm.enrollment_set_add('" UDID_A "', 's')");
	run("SELECT * FROM mdm.declarations, mdm.declaration_sets, mdm.enrollment_sets, "
	    "mdm.enrollment_declarations, mdm.ddm_tokens");
	run("SELECT * FROM mdm.ddm_status, mdm.ddm_declaration_status, mdm.ddm_status_reports");
	static const char *const no[] = {"SELECT * FROM mdm.declaration",
	        "SELECT * FROM mdm.ddm_status_item",
	        "SELECT * FROM mdm.ddm_checkin('" UDID_A "', NULL, 'tokens', NULL)",
	        "SELECT mdm.ddm_status_store(1, '\\x7b7d')", "SELECT mdm.ddm_refresh(ARRAY[1])",
	        "SELECT mdm.ddm_sync_enqueue(1)"};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		r = PQexec(pg, no[i]);
		ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "allowed: %s", no[i]);
		ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501");
		PQclear(r);
	}
	run("RESET ROLE");
	want("SELECT (updated_by = session_user)::text FROM mdm.declarations WHERE identifier = "
	     "'op'",
	        0, NULL, "true");
}
END_TEST

void ddm_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "sql", 60, setup, teardown);

	ts_add_tests(tc, tokens, endpoints, put_refusals, real_status_reports, status_semantics,
	        hostile_reports, builders, operator_role);
}
