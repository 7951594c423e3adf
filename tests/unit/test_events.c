/*
 * Events out (sql/023_events.sql, lib/eventq.c, apns_http.c's POST): the
 * outbox rows the triggers write in the fact's own transaction (none
 * rolled back, none while events are off), their JSON, the claims (order,
 * SKIP LOCKED, leases that expire, late records that change nothing),
 * backoff, release, prune; and without a database the signature
 * (RFC 4231 vectors), the classification of answers, the secret file and
 * the URL rules, and a POST to a closed port.
 */
#include "apns.h"
#include "base64.h"
#include "eventq.h"
#include "log.h"
#include "suites.h"
#include "ts_db.h"
#include "ts_sys.h"
#include "x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------- no database */

START_TEST(hmac_rfc4231_vectors)
{
	/* RFC 4231 section 4.2 (test case 1) and 4.3 (test case 2), HMAC-SHA-256. */
	uint8_t key1[20];
	char hex[X509_FP_HEX_LEN + 1], sig[EVENTQ_SIG_LEN + 1];

	memset(key1, 0x0b, sizeof(key1));
	ck_assert_int_eq(
	        x509_hmac_sha256_hex(key1, sizeof(key1), (const uint8_t *)"Hi There", 8, hex),
	        MDM_OK);
	ck_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	ck_assert_int_eq(x509_hmac_sha256_hex((const uint8_t *)"Jefe", 4,
	                         (const uint8_t *)"what do ya want for nothing?", 28, hex),
	        MDM_OK);
	ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	ck_assert_int_eq(
	        eventq_sign((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, sig),
	        MDM_OK);
	ck_assert_str_eq(
	        sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* An empty body is signed; an empty key is refused. */
	ck_assert_int_eq(eventq_sign((const uint8_t *)"Jefe", 4, "", 0, sig), MDM_OK);
	ck_assert_int_eq((int)strlen(sig), EVENTQ_SIG_LEN);
	ck_assert_int_eq(eventq_sign((const uint8_t *)"", 0, "x", 1, sig), MDM_ERR_INVAL);
	ck_assert_str_eq(sig, "");
}
END_TEST

START_TEST(answers_classified)
{
	static const int delivered[] = {200, 201, 202, 204, 299};
	static const int unavailable[] = {0, 408, 429, 500, 502, 503, 504, 599};
	static const int rejected[] = {100, 199, 300, 301, 302, 400, 401, 403, 404, 413, 600};

	for (size_t i = 0; i < sizeof(delivered) / sizeof(delivered[0]); i++)
		ck_assert_int_eq(eventq_classify(delivered[i]), EVENTQ_DELIVERED);
	for (size_t i = 0; i < sizeof(unavailable) / sizeof(unavailable[0]); i++)
		ck_assert_int_eq(eventq_classify(unavailable[i]), EVENTQ_UNAVAILABLE);
	for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
		ck_assert_int_eq(eventq_classify(rejected[i]), EVENTQ_REJECTED);
}
END_TEST

START_TEST(backoff_doubles_capped_with_jitter)
{
	/* min 5, max 60: 5, 10, 20, 40, 60, 60 ... each drawn in [half, all]. */
	static const double full[] = {5, 10, 20, 40, 60, 60, 60};

	for (int a = 0; a < 7; a++) {
		ck_assert_double_eq_tol(eventq_backoff(a, 5, 60, 0), full[a] / 2, 1e-9);
		ck_assert_double_eq_tol(eventq_backoff(a, 5, 60, 0.999999), full[a], 1e-4);
	}
	/* Never overflows, never below half the minimum. */
	ck_assert_double_le(eventq_backoff(1000000, 5, 60, 0.5), 60);
	ck_assert_double_ge(eventq_backoff(0, 5, 60, -3), 2.5);
	ck_assert_double_le(eventq_backoff(0, 5, 60, 7), 5);
}
END_TEST

static char secret_dir[256];

static const char *secret_file(const char *name, const void *data, size_t len, mode_t mode)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", secret_dir, name);
	ts_file_write(path, data, len);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

static mdm_err secret_rc(const char *path, size_t *len)
{
	uint8_t *s = NULL;
	size_t n = 0;
	mdm_err rc = eventq_secret_load(path, &s, &n);

	if (rc == MDM_OK)
		ck_assert_ptr_nonnull(s);
	else
		ck_assert_ptr_null(s);
	if (len != NULL)
		*len = n;
	eventq_secret_free(s, n);
	return rc;
}

START_TEST(secret_file_rules)
{
	char big[EVENTQ_MAX_SECRET + 8];
	size_t n = 0;

	ts_tmpdir_new(secret_dir, sizeof(secret_dir), "events-secret");
	/* 32 bytes and a newline: the newline is not part of the secret. */
	ck_assert_int_eq(
	        secret_rc(secret_file("ok", "0123456789abcdef0123456789abcdef\n", 33, 0600), &n),
	        MDM_OK);
	ck_assert_uint_eq(n, 32);
	ck_assert_int_eq(
	        secret_rc(secret_file("crlf", "0123456789abcdef\r\n", 18, 0640), &n), MDM_OK);
	ck_assert_uint_eq(n, 16);
	/* Refusals, each before the secret is used. */
	ck_assert_int_eq(secret_rc(NULL, NULL), MDM_ERR_CONFIG);
	ck_assert_int_eq(secret_rc("", NULL), MDM_ERR_CONFIG);
	ck_assert_int_eq(secret_rc("/nonexistent/webhook.secret", NULL), MDM_ERR_CONFIG);
	ck_assert_int_eq(secret_rc(secret_dir, NULL), MDM_ERR_CONFIG);
	ck_assert_int_eq(secret_rc(secret_file("short", "0123456789abcde\n", 16, 0600), NULL),
	        MDM_ERR_CONFIG);
	ck_assert_int_eq(secret_rc(secret_file("empty", "", 0, 0600), NULL), MDM_ERR_CONFIG);
	ck_assert_int_eq(secret_rc(secret_file("nul", "0123456789\0abcdef0123", 21, 0600), NULL),
	        MDM_ERR_CONFIG);
	ck_assert_int_eq(secret_rc(secret_file("world", "0123456789abcdef0123", 20, 0604), NULL),
	        MDM_ERR_CONFIG);
	ck_assert_int_eq(secret_rc(secret_file("worldw", "0123456789abcdef0123", 20, 0602), NULL),
	        MDM_ERR_CONFIG);
	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(
	        secret_rc(secret_file("big", big, sizeof(big), 0600), NULL), MDM_ERR_LIMIT);
	ck_assert_int_eq(secret_rc(secret_file("max", big, EVENTQ_MAX_SECRET, 0600), &n), MDM_OK);
	ck_assert_uint_eq(n, EVENTQ_MAX_SECRET);
	ts_tmpdir_done(secret_dir);
}
END_TEST

START_TEST(webhook_url_rules)
{
	char longurl[APNS_HTTP_MAX_URL + 16];
	struct apns_http_opts o = {"ftp://example.com/", NULL, 1000, 1000};
	apns_http *h = NULL;

	ck_assert(apns_http_url_valid("http://127.0.0.1:8080/hook"));
	ck_assert(apns_http_url_valid("https://hooks.example.com/mdm?token=abc"));
	ck_assert(!apns_http_url_valid(NULL));
	ck_assert(!apns_http_url_valid(""));
	ck_assert(!apns_http_url_valid("ftp://example.com/"));
	ck_assert(!apns_http_url_valid("file:///etc/passwd"));
	ck_assert(!apns_http_url_valid("http://"));
	ck_assert(!apns_http_url_valid("http:///path"));
	ck_assert(!apns_http_url_valid("HTTP://example.com/"));
	ck_assert(!apns_http_url_valid("http://exa mple.com/"));
	ck_assert(!apns_http_url_valid("http://example.com/\r\nX-Evil: 1"));
	ck_assert(!apns_http_url_valid("http://example.com/\xc3\xa9"));
	memcpy(longurl, "http://", 7);
	memset(longurl + 7, 'a', sizeof(longurl) - 8);
	longurl[sizeof(longurl) - 1] = '\0';
	ck_assert(!apns_http_url_valid(longurl));
	longurl[APNS_HTTP_MAX_URL] = '\0';
	ck_assert(apns_http_url_valid(longurl));
	ck_assert_int_eq(apns_http_new(&o, &h), MDM_ERR_CONFIG);
	ck_assert_ptr_null(h);
}
END_TEST

START_TEST(post_refuses_bad_headers_and_reports_no_answer)
{
	char url[64], why[256];
	struct apns_http_opts o = {url, NULL, 3000, 3000};
	const char *bad[] = {"X-Evil: a\r\nX-Injected: b"};
	const char *noname[] = {": value"};
	const char *ok[] = {"X-MDM-Event-Id: 1"};
	apns_http *h = NULL;
	int status = -1;

	ck_assert_int_eq(apns_http_global_init(), MDM_OK);
	/* A port nobody listens on: no answer, status 0, and why says so. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", ts_free_port());
	ck_assert_int_eq(apns_http_new(&o, &h), MDM_OK);
	ck_assert_int_eq(
	        apns_http_post(h, bad, 1, "{}", 2, &status, why, sizeof(why)), MDM_ERR_INVAL);
	ck_assert_int_eq(status, 0);
	ck_assert_int_eq(
	        apns_http_post(h, noname, 1, "{}", 2, &status, why, sizeof(why)), MDM_ERR_INVAL);
	ck_assert_int_eq(apns_http_post(h, ok, 1, "{}", 2, &status, why, sizeof(why)), MDM_OK);
	ck_assert_int_eq(status, 0);
	ck_assert_msg(strncmp(why, "network: ", 9) == 0, "why: %s", why);
	ck_assert_int_eq(eventq_classify(status), EVENTQ_UNAVAILABLE);
	apns_http_free(h);
	apns_http_global_cleanup();
}
END_TEST

void events_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "events", 30, NULL, NULL);

	ts_add_tests(tc, hmac_rfc4231_vectors, answers_classified,
	        backoff_doubles_capped_with_jitter, secret_file_rules, webhook_url_rules,
	        post_refuses_bad_headers_and_reports_no_answer);
}

/* ------------------------------------------------------- the database */

static struct ts_db t;

static void exec_ok(db *d, const char *sql)
{
	ck_assert_msg(db_exec(d, sql, 0, NULL, NULL) == MDM_OK, "failed: %s", sql);
}

static void expect(const char *sql, const char *param, const char *want)
{
	ts_db_assert(t.d, sql, param, want);
}

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&t, "events");
	exec_ok(t.d, "INSERT INTO mdm.device (udid) VALUES ('U1'), ('U2')");
	exec_ok(t.d,
	        "INSERT INTO mdm.enrollment (udid, topic, active) VALUES "
	        "('U1', 'com.apple.mgmt.External.t', true), "
	        "('U2', 'com.apple.mgmt.External.t', true)");
	exec_ok(t.d,
	        "INSERT INTO mdm.enrollment (udid, user_id, active) VALUES "
	        "('U1', 'USER-1', true)");
}

static void teardown(void)
{
	ts_db_drop(&t);
}

/* A check-in row as checkin.c writes it (body: the plist text). */
static void checkin_row(
        db *d, const char *udid, const char *user, const char *type, const char *body)
{
	const char *p[] = {udid, user, type, body};

	ck_assert_int_eq(
	        db_exec(d,
	                "INSERT INTO mdm.checkin (udid, user_id, message_type, auth, body) "
	                "VALUES ($1, $2, $3, 'tls', convert_to($4, 'UTF8'))",
	                4, p, NULL),
	        MDM_OK);
}

START_TEST(off_by_default_nothing_recorded)
{
	expect("SELECT enabled::text FROM mdm.event_config", NULL, "false");
	checkin_row(t.d, "U1", NULL, "Authenticate", "<plist/>");
	expect("SELECT count(*) FROM mdm.event_outbox", NULL, "0");
	/* On: recorded; off again: not, and what waits stays. */
	ck_assert_int_eq(eventq_enable(t.d, 1), MDM_OK);
	checkin_row(t.d, "U1", NULL, "TokenUpdate", "<plist/>");
	ck_assert_int_eq(eventq_enable(t.d, 0), MDM_OK);
	checkin_row(t.d, "U1", NULL, "CheckOut", "<plist/>");
	expect("SELECT string_agg(topic, ',') FROM mdm.event_outbox", NULL, "mdm.TokenUpdate");
}
END_TEST

START_TEST(checkin_event_json)
{
	const char *body = "<plist version=\"1.0\"><dict><key>MessageType</key>"
	                   "<string>Authenticate</string></dict></plist>\n";
	char *b64 = NULL, *raw;
	size_t b64len;

	ck_assert_int_eq(eventq_enable(t.d, 1), MDM_OK);
	checkin_row(t.d, "U1", NULL, "Authenticate", body);
	checkin_row(t.d, "U1", "USER-1", "UserAuthenticate", "<plist/>");
	checkin_row(t.d, "U-NONE", NULL, "Authenticate", "<plist/>");
	expect("SELECT string_agg(kind || ' ' || topic || ' ' || udid, ',' ORDER BY id) FROM "
	       "mdm.event_outbox",
	        NULL,
	        "checkin mdm.Authenticate U1,checkin mdm.UserAuthenticate U1,"
	        "checkin mdm.Authenticate U-NONE");
	/* The documented shape (README.md, Events), every field. */
	expect("SELECT (payload->>'event_id')::bigint = id AND payload->>'topic' = topic AND "
	       "payload ? 'created_at' AND (payload->>'created_at') ~ "
	       "'^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z$' FROM mdm.event_outbox "
	       "ORDER BY id LIMIT 1",
	        NULL, "t");
	expect("SELECT string_agg(k, ',' ORDER BY k) FROM mdm.event_outbox, "
	       "jsonb_object_keys(payload->'checkin_event') k WHERE id = (SELECT min(id) FROM "
	       "mdm.event_outbox)",
	        NULL, "auth,enrollment_id,message_type,raw_payload,received_at,udid,user_id");
	expect("SELECT concat_ws('/', e->>'udid', coalesce(e->>'user_id', '-'), "
	       "(e->>'enrollment_id')::bigint = (SELECT id FROM mdm.enrollment WHERE udid = 'U1' "
	       "AND user_id IS NULL), e->>'message_type', e->>'auth') FROM (SELECT "
	       "payload->'checkin_event' e FROM mdm.event_outbox ORDER BY id LIMIT 1) x",
	        NULL, "U1/-/t/Authenticate/tls");
	expect("SELECT concat_ws('/', e->>'user_id', (e->>'enrollment_id')::bigint = (SELECT id "
	       "FROM mdm.enrollment WHERE user_id = 'USER-1')) FROM (SELECT "
	       "payload->'checkin_event' e FROM mdm.event_outbox ORDER BY id OFFSET 1 LIMIT 1) x",
	        NULL, "USER-1/t");
	/* A UDID with no enrollment: enrollment_id is null, the event is still there. */
	expect("SELECT jsonb_typeof(payload->'checkin_event'->'enrollment_id') FROM "
	       "mdm.event_outbox ORDER BY id DESC LIMIT 1",
	        NULL, "null");
	/* raw_payload: the stored body, base64 on one line. */
	b64 = ts_db_query1(t.d,
	        "SELECT payload->'checkin_event'->>'raw_payload' FROM mdm.event_outbox ORDER BY id "
	        "LIMIT 1",
	        NULL);
	ck_assert_ptr_null(strchr(b64, '\n'));
	ck_assert_int_eq(base64_decode(b64, strlen(b64), 4096, (uint8_t **)&raw, &b64len), MDM_OK);
	ck_assert_uint_eq(b64len, strlen(body));
	ck_assert_int_eq(memcmp(raw, body, b64len), 0);
	free(raw);
	free(b64);
}
END_TEST

/* What another session sees of the outbox. */
static void other_count(db *other, const char *want)
{
	char *n = ts_db_query1(other, "SELECT count(*)::text FROM mdm.event_outbox", NULL);

	ck_assert_str_eq(n, want);
	free(n);
}

START_TEST(written_in_the_fact_transaction)
{
	db *other = NULL;
	int got = 0;

	ck_assert_int_eq(eventq_enable(t.d, 1), MDM_OK);
	ck_assert_int_eq(db_new(t.conninfo, "unit-listener", &other), MDM_OK);
	ck_assert_int_eq(db_listen(other, "mdm_event"), MDM_OK);
	/* Inside the transaction the row exists; outside, not yet; rolled back, never. */
	exec_ok(t.d, "BEGIN");
	checkin_row(t.d, "U1", NULL, "TokenUpdate", "<plist/>");
	expect("SELECT count(*) FROM mdm.event_outbox", NULL, "1");
	other_count(other, "0");
	exec_ok(t.d, "ROLLBACK");
	expect("SELECT count(*) FROM mdm.event_outbox", NULL, "0");
	ck_assert_int_eq(db_wait_notify(other, 300, &got), MDM_OK);
	ck_assert_int_eq(got, 0);
	/* A failed statement after the check-in takes its event with it. */
	exec_ok(t.d, "BEGIN");
	checkin_row(t.d, "U1", NULL, "TokenUpdate", "<plist/>");
	ck_assert_int_ne(db_exec(t.d,
	                         "INSERT INTO mdm.checkin (udid, message_type, auth) VALUES "
	                         "('U1', 'CheckOut', 'nonsense')",
	                         0, NULL, NULL),
	        MDM_OK);
	exec_ok(t.d, "ROLLBACK");
	expect("SELECT count(*) FROM mdm.event_outbox", NULL, "0");
	/* Committed: the row, and one notification at commit for two events. */
	exec_ok(t.d, "BEGIN");
	checkin_row(t.d, "U1", NULL, "TokenUpdate", "<plist/>");
	checkin_row(t.d, "U2", NULL, "TokenUpdate", "<plist/>");
	exec_ok(t.d, "COMMIT");
	ck_assert_int_eq(db_wait_notify(other, 5000, &got), MDM_OK);
	ck_assert_int_eq(got, 1);
	other_count(other, "2");
	db_free(other);
}
END_TEST

START_TEST(command_result_event_json)
{
	char *uuid, *b64, *raw, *fields;
	const char *p[1];
	size_t len;
	const char *answer = "<plist version=\"1.0\"><dict><key>Status</key><string>Error</string>"
	                     "</dict></plist>\n";
	const char *params[2];

	uuid = ts_db_query1(t.d, "SELECT upper(mdm.cmd_profile_list('U1')::text)", NULL);
	ck_assert_int_eq(eventq_enable(t.d, 1), MDM_OK);
	params[0] = uuid;
	params[1] = answer;
	ck_assert_int_eq(
	        db_exec(t.d,
	                "INSERT INTO mdm.command_result (enrollment_id, command_uuid, status, "
	                "result, "
	                "error_chain) SELECT id, $1, 'Error', $2, '[{\"ErrorCode\": 12021}]' FROM "
	                "mdm.enrollment WHERE udid = 'U1' AND user_id IS NULL",
	                2, params, NULL),
	        MDM_OK);
	p[0] = uuid;
	expect("SELECT kind || ' ' || topic || ' ' || udid FROM mdm.event_outbox", NULL,
	        "command_result mdm.Connect U1");
	expect("SELECT string_agg(k, ',' ORDER BY k) FROM mdm.event_outbox, "
	       "jsonb_object_keys(payload->'acknowledge_event') k",
	        NULL,
	        "command_uuid,enrollment_id,error_chain,raw_payload,reason,received_at,request_"
	        "type,status,udid,user_id");
	fields = ts_db_queryn(t.d,
	        "SELECT concat_ws('/', e->>'command_uuid' = $1, e->>'request_type', e->>'status', "
	        "e->'error_chain'->0->>'ErrorCode', jsonb_typeof(e->'reason'), e->>'udid') FROM "
	        "(SELECT payload->'acknowledge_event' e FROM mdm.event_outbox) x",
	        1, p);
	ck_assert_str_eq(fields, "t/ProfileList/Error/12021/null/U1");
	free(fields);
	b64 = ts_db_query1(t.d,
	        "SELECT payload->'acknowledge_event'->>'raw_payload' FROM "
	        "mdm.event_outbox",
	        NULL);
	ck_assert_int_eq(base64_decode(b64, strlen(b64), 4096, (uint8_t **)&raw, &len), MDM_OK);
	ck_assert_uint_eq(len, strlen(answer));
	ck_assert_int_eq(memcmp(raw, answer, len), 0);
	free(raw);
	free(b64);
	free(uuid);
}
END_TEST

/* n events, ids returned in order. */
static void events_n(int n)
{
	ck_assert_int_eq(eventq_enable(t.d, 1), MDM_OK);
	for (int i = 0; i < n; i++)
		checkin_row(t.d, "U1", NULL, "TokenUpdate", "<plist/>");
}

START_TEST(claims_in_order_skip_locked)
{
	struct eventq_batch a, b, c;
	db *other = NULL;

	events_n(5);
	/* A claims two in an open transaction: B skips them and takes the next, in order. */
	exec_ok(t.d, "BEGIN");
	ck_assert_int_eq(eventq_claim(t.d, "a", 2, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 2);
	ck_assert(a.items[0].id < a.items[1].id);
	ck_assert_int_eq(db_new(t.conninfo, "unit", &other), MDM_OK);
	ck_assert_int_eq(eventq_claim(other, "b", 2, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 2);
	ck_assert(b.items[0].id > a.items[1].id && b.items[0].id < b.items[1].id);
	exec_ok(t.d, "COMMIT");
	/* The rest is the fifth; claimed ones stay claimed for the lease. */
	ck_assert_int_eq(eventq_claim(other, "c", 10, 60, &c), MDM_OK);
	ck_assert_uint_eq(c.n, 1);
	ck_assert(c.items[0].id > b.items[1].id);
	/* What the daemon posts: the payload text, the JSON of the row. */
	ck_assert_int_eq(a.items[0].attempts, 0);
	ck_assert_ptr_nonnull(strstr(a.items[0].payload, "\"checkin_event\""));
	ck_assert_uint_eq(a.items[0].len, strlen(a.items[0].payload));
	eventq_batch_free(&c);
	ck_assert_int_eq(eventq_claim(other, "c", 10, 60, &c), MDM_OK);
	ck_assert_uint_eq(c.n, 0);
	eventq_batch_free(&c);
	expect("SELECT string_agg(claimed_by, '' ORDER BY id) FROM mdm.event_outbox", NULL,
	        "aabbc");
	/* Bad arguments are refused before SQL. */
	ck_assert_int_eq(eventq_claim(t.d, NULL, 1, 60, &c), MDM_ERR_INVAL);
	ck_assert_int_eq(eventq_claim(t.d, "a", 0, 60, &c), MDM_ERR_INVAL);
	ck_assert_int_eq(eventq_claim(t.d, "a", 1, 0, &c), MDM_ERR_INVAL);
	eventq_batch_free(&a);
	eventq_batch_free(&b);
	db_free(other);
}
END_TEST

START_TEST(lease_expires_late_record_changes_nothing)
{
	struct eventq_batch a, b;
	int changed = -1;

	events_n(1);
	ck_assert_int_eq(eventq_claim(t.d, "crashed", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	exec_ok(t.d, "UPDATE mdm.event_outbox SET next_attempt_at = now() - interval '1 s'");
	ck_assert_int_eq(eventq_claim(t.d, "b", 10, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_int_eq(b.items[0].id, a.items[0].id);
	/* The first claimer's late failure does not touch b's claim... */
	ck_assert_int_eq(
	        eventq_record(t.d, a.items[0].id, "crashed", 500, "HTTP 500", 30, &changed),
	        MDM_OK);
	ck_assert_int_eq(changed, 0);
	expect("SELECT claimed_by || '/' || attempts FROM mdm.event_outbox", NULL, "b/0");
	/* ...a 2xx from anyone is delivered, once. */
	ck_assert_int_eq(
	        eventq_record(t.d, a.items[0].id, "crashed", 204, NULL, 0, &changed), MDM_OK);
	ck_assert_int_eq(changed, 1);
	ck_assert_int_eq(eventq_record(t.d, b.items[0].id, "b", 200, NULL, 0, &changed), MDM_OK);
	ck_assert_int_eq(changed, 0);
	expect("SELECT (delivered_at IS NOT NULL)::text || '/' || attempts || '/' || last_status "
	       "|| "
	       "'/' || coalesce(claimed_by, '-') FROM mdm.event_outbox",
	        NULL, "true/1/204/-");
	/* Delivered: never claimed again. */
	eventq_batch_free(&b);
	exec_ok(t.d, "UPDATE mdm.event_outbox SET next_attempt_at = now() - interval '1 h'");
	ck_assert_int_eq(eventq_claim(t.d, "b", 10, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 0);
	eventq_batch_free(&a);
	eventq_batch_free(&b);
}
END_TEST

START_TEST(failure_backs_off_release_waits)
{
	struct eventq_batch a;
	long long rest[2];
	double due = -2;
	int changed = 0;

	events_n(3);
	ck_assert_int_eq(eventq_next_due(t.d, &due), MDM_OK);
	ck_assert_double_eq_tol(due, 0, 1e-9);
	ck_assert_int_eq(eventq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 3);
	/* The first failed (the receiver is down): it and the rest wait 30 s. */
	ck_assert_int_eq(eventq_record(t.d, a.items[0].id, "a", 0, "network: Connection refused",
	                         30, &changed),
	        MDM_OK);
	ck_assert_int_eq(changed, 1);
	rest[0] = a.items[1].id;
	rest[1] = a.items[2].id;
	ck_assert_int_eq(eventq_release(t.d, rest, 2, "a", 30), MDM_OK);
	expect("SELECT string_agg(attempts || ':' || coalesce(last_status::text, '-') || ':' || "
	       "coalesce(claimed_by, '-') || ':' || (next_attempt_at BETWEEN now() + interval '29 "
	       "s' AND now() + interval '31 s')::text, ',' ORDER BY id) FROM mdm.event_outbox",
	        NULL, "1:0:-:true,0:-:-:true,0:-:-:true");
	expect("SELECT last_error FROM mdm.event_outbox ORDER BY id LIMIT 1", NULL,
	        "network: Connection refused");
	ck_assert_int_eq(eventq_next_due(t.d, &due), MDM_OK);
	ck_assert_msg(due > 28 && due <= 30, "next due in %f s", due);
	eventq_batch_free(&a);
	ck_assert_int_eq(eventq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 0);
	eventq_batch_free(&a);
	/* Nothing waits at all: -1. */
	exec_ok(t.d, "UPDATE mdm.event_outbox SET delivered_at = now()");
	ck_assert_int_eq(eventq_next_due(t.d, &due), MDM_OK);
	ck_assert_double_eq_tol(due, -1, 1e-9);
	/* An empty release is nothing. */
	ck_assert_int_eq(eventq_release(t.d, rest, 0, "a", 30), MDM_OK);
}
END_TEST

START_TEST(prune_keeps_undelivered)
{
	long n = -1;

	events_n(4);
	exec_ok(t.d,
	        "UPDATE mdm.event_outbox SET delivered_at = now() - interval '10 days' WHERE "
	        "id IN (SELECT id FROM mdm.event_outbox ORDER BY id LIMIT 2)");
	exec_ok(t.d,
	        "UPDATE mdm.event_outbox SET delivered_at = now() - interval '1 day' WHERE id "
	        "= (SELECT id FROM mdm.event_outbox ORDER BY id OFFSET 2 LIMIT 1)");
	exec_ok(t.d,
	        "UPDATE mdm.event_outbox SET created_at = now() - interval '1 year' WHERE "
	        "delivered_at IS NULL");
	ck_assert_int_eq(eventq_prune(t.d, 7, 1, &n), MDM_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(eventq_prune(t.d, 7, 1000, &n), MDM_OK);
	ck_assert_int_eq(n, 1);
	expect("SELECT count(*) FROM mdm.event_outbox", NULL, "2");
	ck_assert_int_eq(eventq_prune(t.d, 0, 1000, &n), MDM_OK);
	ck_assert_int_eq(n, 1);
	/* The undelivered one, a year old, stays. */
	expect("SELECT count(*)::text || '/' || (delivered_at IS NULL)::text FROM "
	       "mdm.event_outbox GROUP BY delivered_at IS NULL",
	        NULL, "1/true");
	ck_assert_int_eq(eventq_prune(t.d, -1, 1000, &n), MDM_ERR_INVAL);
}
END_TEST

START_TEST(operator_sees_states_not_payloads)
{
	events_n(1);
	expect("SELECT has_table_privilege('mdm_operator', 'mdm.events', 'SELECT')::text || '/' || "
	       "has_table_privilege('mdm_operator', 'mdm.event_outbox', 'SELECT')::text || '/' || "
	       "has_function_privilege('mdm_operator', 'mdm.event_claim(text, integer, integer)', "
	       "'EXECUTE')::text",
	        NULL, "true/false/false");
	expect("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'mdm' AND "
	       "table_name = 'events' AND column_name = 'payload'",
	        NULL, "0");
}
END_TEST

void events_db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "events_db", 30, setup, teardown);

	ts_add_tests(tc, off_by_default_nothing_recorded, checkin_event_json,
	        written_in_the_fact_transaction, command_result_event_json,
	        claims_in_order_skip_locked, lease_expires_late_record_changes_nothing,
	        failure_backs_off_release_waits, prune_keeps_undelivered,
	        operator_sees_states_not_payloads);
}
