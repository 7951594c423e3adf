/*
 * pushq and sql/006_push.sql against PostgreSQL: coalescing, claims that
 * never overlap and expire, outcomes (one at a time and a round in one
 * statement, 019_push_batch.sql), TokenUpdate, mdm.push, and the pure
 * classify/backoff rules.
 */
#include "pushq.h"
#include "log.h"
#include "suites.h"
#include "ts_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct ts_db t;

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&t, "pushq");
	ck_assert_int_eq(db_exec(t.d, "INSERT INTO mdm.device (udid) VALUES ('U1'), ('U2'), ('U3')",
	                         0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(
	        db_exec(t.d,
	                "INSERT INTO mdm.enrollment (udid, topic, push_token, push_magic, active) "
	                "VALUES ('U1', 'com.apple.mgmt.External.t', decode(repeat('ab', 32), "
	                "'hex'), "
	                "'M1', true), ('U2', 'com.apple.mgmt.External.t', "
	                "decode(repeat('cd', 32), 'hex'), 'M2', true), ('U3', "
	                "'com.apple.mgmt.External.t', NULL, NULL, true)",
	                0, NULL, NULL),
	        MDM_OK);
}

static void teardown(void)
{
	ts_db_drop(&t);
}

static void enqueue(const char *udids)
{
	const char *p[] = {udids};

	ck_assert_int_eq(db_exec(t.d,
	                         "SELECT mdm.enqueue_command($1::text[], "
	                         "mdm.command_plist('ProfileList'))",
	                         1, p, NULL),
	        MDM_OK);
}

static void expect(const char *sql, const char *param, const char *want)
{
	ts_db_assert(t.d, sql, param, want);
}

START_TEST(enqueues_coalesce_into_one_claim)
{
	struct pushq_batch b, c;

	for (int i = 0; i < 5; i++)
		enqueue("{U1,U2}");
	expect("SELECT count(*) FROM mdm.push_state WHERE pending", NULL, "2");
	ck_assert_int_eq(pushq_claim(t.d, "a", 100, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 2);
	for (size_t i = 0; i < b.n; i++) {
		ck_assert(strcmp(b.items[i].udid, "U1") == 0 || strcmp(b.items[i].udid, "U2") == 0);
		ck_assert_int_eq((int)strlen(b.items[i].token_hex), 64);
		ck_assert_str_eq(b.items[i].topic, "com.apple.mgmt.External.t");
		ck_assert_ptr_null(b.items[i].user_id);
	}
	/* Claimed: nobody else gets them while the lease runs. */
	ck_assert_int_eq(pushq_claim(t.d, "b", 100, 60, &c), MDM_OK);
	ck_assert_uint_eq(c.n, 0);
	pushq_batch_free(&c);
	pushq_batch_free(&b);
}
END_TEST

START_TEST(concurrent_claimers_never_share)
{
	db *other = NULL;
	struct pushq_batch a, b;

	enqueue("{U1,U2}");
	/* Claimer a holds its rows locked in an open transaction: b skips them. */
	ck_assert_int_eq(db_exec(t.d, "BEGIN", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(pushq_claim(t.d, "a", 1, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_int_eq(db_new(t.conninfo, "unit", &other), MDM_OK);
	ck_assert_int_eq(pushq_claim(other, "b", 100, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_str_ne(a.items[0].udid, b.items[0].udid);
	pushq_batch_free(&b);
	ck_assert_int_eq(db_exec(t.d, "COMMIT", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(pushq_claim(other, "b", 100, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 0);
	pushq_batch_free(&b);
	pushq_batch_free(&a);
	db_free(other);
}
END_TEST

START_TEST(expired_claims_are_taken_over)
{
	struct pushq_batch a, b;

	enqueue("{U1}");
	ck_assert_int_eq(pushq_claim(t.d, "crashed", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_int_eq(
	        db_exec(t.d, "UPDATE mdm.push_state SET claimed_until = now() - interval '1 s'", 0,
	                NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(pushq_claim(t.d, "b", 10, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 1);
	expect("SELECT claimed_by FROM mdm.push_state", NULL, "b");
	/* The crashed claimer's late record does not release b's claim. */
	ck_assert_int_eq(pushq_record(t.d, &a.items[0], "crashed", 200, "X", NULL, 0, 0), MDM_OK);
	expect("SELECT claimed_by FROM mdm.push_state", NULL, "b");
	pushq_batch_free(&a);
	pushq_batch_free(&b);
}
END_TEST

START_TEST(success_clears_pending_unless_requested_again)
{
	struct pushq_batch a;

	enqueue("{U1,U2}");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 2);
	/* A new request for U2 while its push is in flight. */
	enqueue("{U2}");
	for (size_t i = 0; i < a.n; i++)
		ck_assert_int_eq(pushq_record(t.d, &a.items[i], "a", 200,
		                         "5D1E1C33-0000-0000-0000-000000000001", NULL, 0, 0),
		        MDM_OK);
	expect("SELECT pending FROM mdm.push_status WHERE udid = $1", "U1", "f");
	expect("SELECT pending FROM mdm.push_status WHERE udid = $1", "U2", "t");
	expect("SELECT last_apns_id FROM mdm.push_status WHERE udid = $1", "U1",
	        "5D1E1C33-0000-0000-0000-000000000001");
	expect("SELECT last_status || ' ' || pushes || ' ' || failures || ' ' || "
	       "(claimed_by IS NULL) FROM mdm.push_status WHERE udid = $1",
	        "U1", "200 1 0 true");
	pushq_batch_free(&a);
	/* U2 is due again at once (push_min_interval 0 here). */
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_str_eq(a.items[0].udid, "U2");
	pushq_batch_free(&a);
}
END_TEST

/*
 * push_min_interval (docs/CONFIG.md): after a successful push, no other
 * push to that enrollment for the interval, whoever asks (more commands,
 * mdm.push, another claimer); what was asked meanwhile is claimed once
 * the interval is over.
 */
START_TEST(min_interval_holds_between_pushes)
{
	struct pushq_batch a, b;
	double due = 0;

	ck_assert_int_eq(pushq_next_due(t.d, &due), MDM_OK);
	ck_assert(due == -1); /* nothing waits */
	enqueue("{U1}");
	ck_assert_int_eq(pushq_next_due(t.d, &due), MDM_OK);
	ck_assert(due == 0); /* due now */
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_int_eq(pushq_record(t.d, &a.items[0], "a", 200, "X", NULL, 1, 0), MDM_OK);
	pushq_batch_free(&a);
	expect("SELECT pending FROM mdm.push_status WHERE udid = $1", "U1", "f");
	ck_assert_int_eq(pushq_next_due(t.d, &due), MDM_OK);
	ck_assert(due == -1); /* pushed, nothing new */
	/* Three commands within the interval: pending again, not due. */
	for (int i = 0; i < 3; i++)
		enqueue("{U1}");
	expect("SELECT pending FROM mdm.push_status WHERE udid = $1", "U1", "t");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 0);
	pushq_batch_free(&a);
	/* mdm.push ends a backoff, not the interval; nor does another claimer get it. */
	expect("SELECT mdm.push('U1')", NULL, "1");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 0);
	pushq_batch_free(&a);
	ck_assert_int_eq(pushq_claim(t.d, "b", 10, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 0);
	pushq_batch_free(&b);
	/* The daemons learn when to wake for it; the view shows it too. */
	ck_assert_int_eq(pushq_next_due(t.d, &due), MDM_OK);
	ck_assert_msg(due > 0 && due <= 1, "next due in %f s", due);
	expect("SELECT next_attempt_at > now() FROM mdm.push_status WHERE udid = $1", "U1", "t");
	/* The interval is over: one claim covers all four requests. */
	usleep(1100000);
	ck_assert_int_eq(pushq_claim(t.d, "b", 10, 60, &b), MDM_OK);
	ck_assert_uint_eq(b.n, 1);
	ck_assert_str_eq(b.items[0].udid, "U1");
	ck_assert_int_eq(b.items[0].claimed_seq, 5);
	ck_assert_int_eq(pushq_record(t.d, &b.items[0], "b", 200, "Y", NULL, 1, 0), MDM_OK);
	pushq_batch_free(&b);
	expect("SELECT pending || ' ' || pushes FROM mdm.push_status WHERE udid = $1", "U1",
	        "false 2");
}
END_TEST

START_TEST(invalid_token_waits_for_token_update)
{
	struct pushq_batch a;

	enqueue("{U1}");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_int_eq(
	        pushq_record(t.d, &a.items[0], "a", 410, NULL, "Unregistered", 0, 1), MDM_OK);
	pushq_batch_free(&a);
	expect("SELECT (token_invalid_at IS NOT NULL) || ' ' || pending || ' ' || last_reason "
	       "FROM mdm.push_status WHERE udid = $1",
	        "U1", "true true Unregistered");
	/* More commands, mdm.push: still nothing to claim. */
	enqueue("{U1}");
	expect("SELECT mdm.push('U1')", NULL, "1");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 0);
	pushq_batch_free(&a);
	/* The row is kept; a TokenUpdate (push_token set) clears the mark. */
	ck_assert_int_eq(db_exec(t.d,
	                         "UPDATE mdm.enrollment SET push_token = "
	                         "decode(repeat('ef', 32), 'hex') WHERE udid = 'U1'",
	                         0, NULL, NULL),
	        MDM_OK);
	expect("SELECT token_invalid_at IS NULL FROM mdm.push_status WHERE udid = $1", "U1", "t");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_str_eq(a.items[0].token_hex,
	        "efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef");
	pushq_batch_free(&a);
}
END_TEST

START_TEST(failures_back_off)
{
	struct pushq_batch a;

	enqueue("{U1}");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_int_eq(a.items[0].failures, 0);
	ck_assert_int_eq(
	        pushq_record(t.d, &a.items[0], "a", 429, NULL, "TooManyRequests", 30, 0), MDM_OK);
	pushq_batch_free(&a);
	expect("SELECT failures || ' ' || pending || ' ' || (next_attempt_at > now() + "
	       "interval '20 s') FROM mdm.push_status WHERE udid = $1",
	        "U1", "1 true true");
	/* In backoff: not claimable, even after more commands. */
	enqueue("{U1}");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 0);
	pushq_batch_free(&a);
	/* mdm.push ends the backoff (not push_min_interval): claimed with its failure count. */
	expect("SELECT mdm.push('U1')", NULL, "1");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_int_eq(a.items[0].failures, 1);
	ck_assert_int_eq(pushq_record(t.d, &a.items[0], "a", 200, NULL, NULL, 0, 0), MDM_OK);
	pushq_batch_free(&a);
	expect("SELECT failures FROM mdm.push_status WHERE udid = $1", "U1", "0");
}
END_TEST

START_TEST(no_token_is_claimed_for_marking)
{
	struct pushq_batch a;

	enqueue("{U3}");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	ck_assert_ptr_null(a.items[0].token_hex);
	ck_assert_ptr_null(a.items[0].magic);
	ck_assert_int_eq(pushq_record(t.d, &a.items[0], "a", 0, NULL, "NoPushToken", 0, 1), MDM_OK);
	pushq_batch_free(&a);
	expect("SELECT last_reason || ' ' || (token_invalid_at IS NOT NULL) FROM mdm.push_status "
	       "WHERE udid = $1",
	        "U3", "NoPushToken true");
}
END_TEST

START_TEST(push_function_and_topics)
{
	expect("SELECT mdm.push(ARRAY['U1', 'U2', 'U1'])", NULL, "2");
	expect("SELECT count(*) FROM mdm.push_state WHERE pending", NULL, "2");
	ck_assert_int_eq(db_exec(t.d, "SELECT mdm.push('nope')", 0, NULL, NULL), MDM_ERR_DB);
	ck_assert_str_eq(db_get0_sqlstate(t.d), "P0002");
	ck_assert_int_eq(
	        db_exec(t.d, "SELECT mdm.push(ARRAY[NULL]::text[])", 0, NULL, NULL), MDM_ERR_DB);
	ck_assert_str_eq(db_get0_sqlstate(t.d), "22004");
	ck_assert_int_eq(pushq_topic_record(t.d, "com.apple.mgmt.External.t", 403,
	                         "BadCertificateEnvironment"),
	        MDM_OK);
	expect("SELECT topic_problem FROM mdm.push_status WHERE udid = $1", "U1",
	        "BadCertificateEnvironment");
	expect("SELECT errors FROM mdm.push_topics", NULL, "1");
	ck_assert_int_eq(pushq_topic_record(t.d, "com.apple.mgmt.External.t", 200, NULL), MDM_OK);
	expect("SELECT topic_problem FROM mdm.push_status WHERE udid = $1", "U1", "(null)");
	/* Claims refuse nonsense arguments. */
	ck_assert_int_eq(
	        db_exec(t.d, "SELECT * FROM mdm.push_claim('', 1, 1)", 0, NULL, NULL), MDM_ERR_DB);
	/* Operators may call mdm.push and read the views, not claim. */
	expect("SELECT has_function_privilege('mdm_operator', 'mdm.push(text)', 'EXECUTE')", NULL,
	        "t");
	expect("SELECT has_function_privilege('mdm_operator', "
	       "'mdm.push_claim(text, integer, integer)', 'EXECUTE')",
	        NULL, "f");
	expect("SELECT has_table_privilege('mdm_operator', 'mdm.push_status', 'SELECT')", NULL,
	        "t");
}
END_TEST

/* n more enrollments BATCH-1..n on topic t, each with a token, made due. */
static void many(int n)
{
	char ns[16];
	const char *p[] = {ns};

	snprintf(ns, sizeof(ns), "%d", n);
	ck_assert_int_eq(db_exec(t.d,
	                         "INSERT INTO mdm.device (udid) SELECT 'BATCH-' || g FROM "
	                         "generate_series(1, $1::integer) g",
	                         1, p, NULL),
	        MDM_OK);
	ck_assert_int_eq(db_exec(t.d,
	                         "INSERT INTO mdm.enrollment (udid, topic, push_token, push_magic, "
	                         "active) SELECT 'BATCH-' || g, 'com.apple.mgmt.External.t', "
	                         "decode(md5(g::text), 'hex'), 'M' || g, true FROM "
	                         "generate_series(1, $1::integer) g",
	                         1, p, NULL),
	        MDM_OK);
	expect("SELECT count(*) FROM (SELECT mdm.push(ARRAY(SELECT udid FROM mdm.enrollment WHERE "
	       "udid LIKE 'BATCH-%'))) x",
	        NULL, "1");
}

/* Results for every item of b: status for each, reason and apns-id by index. */
static struct pushq_result *results(const struct pushq_batch *b, int status, const char *reason)
{
	struct pushq_result *r = calloc(b->n ? b->n : 1, sizeof(*r));

	ck_assert_ptr_nonnull(r);
	for (size_t i = 0; i < b->n; i++)
		r[i] = (struct pushq_result){&b->items[i], status,
		        status == 200 ? "5D1E1C33-0000-0000-0000-000000000002" : NULL, reason,
		        status == 200 ? 0 : 30, 0};
	return r;
}

START_TEST(batch_records_every_push)
{
	struct pushq_batch a;
	struct pushq_result *r;
	/* A reason that needs quoting in an array literal. */
	const char *odd = "network: a \"b\", {c} \\d NULL";

	many(250);
	ck_assert_int_eq(pushq_claim(t.d, "a", 1000, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 250);
	r = results(&a, 200, NULL);
	/* Every third answered otherwise: 429 (retry), 410 (token invalid), a network error. */
	for (size_t i = 0; i < a.n; i += 3) {
		r[i].status = i % 2 ? 429 : 410;
		r[i].reason = i % 2 ? "TooManyRequests" : "Unregistered";
		r[i].apns_id = NULL;
		r[i].retry_s = 30;
		r[i].token_invalid = !(i % 2);
	}
	r[1].status = 0;
	r[1].reason = odd;
	r[1].apns_id = NULL;
	r[1].retry_s = 30;
	ck_assert_int_eq(pushq_record_batch(t.d, "a", r, a.n), MDM_OK);
	/* One result recorded for each, and every claim released. */
	expect("SELECT count(*) FILTER (WHERE last_result_at IS NOT NULL) || ' ' || "
	       "count(*) FILTER (WHERE claimed_by IS NULL) FROM mdm.push_state",
	        NULL, "250 250");
	expect("SELECT count(*) FROM mdm.push_state WHERE last_status = 200 AND NOT pending AND "
	       "pushes = 1 AND last_apns_id = '5D1E1C33-0000-0000-0000-000000000002'",
	        NULL, "165");
	expect("SELECT count(*) FROM mdm.push_state WHERE last_status = 410 AND "
	       "token_invalid_at IS NOT NULL AND pending",
	        NULL, "42");
	expect("SELECT count(*) FROM mdm.push_state WHERE last_status = 429 AND failures = 1 AND "
	       "pending AND next_attempt_at > now() + interval '20 s'",
	        NULL, "42");
	expect("SELECT last_reason FROM mdm.push_state WHERE last_status = 0", NULL, odd);
	/* Nothing is due again: no second push for any of them. */
	pushq_batch_free(&a);
	ck_assert_int_eq(pushq_claim(t.d, "b", 1000, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 0);
	pushq_batch_free(&a);
	free(r);
}
END_TEST

START_TEST(batch_claims_once_under_two_daemons)
{
	db *other = NULL;
	struct pushq_batch a, b;
	struct pushq_result *ra, *rb;
	int rounds = 0;
	size_t total = 0;

	many(500);
	ck_assert_int_eq(db_new(t.conninfo, "unit", &other), MDM_OK);
	/* Two claimers take turns, a holding its claim open in a transaction while b claims. */
	for (;;) {
		ck_assert_int_eq(db_exec(t.d, "BEGIN", 0, NULL, NULL), MDM_OK);
		ck_assert_int_eq(pushq_claim(t.d, "a", 70, 60, &a), MDM_OK);
		ck_assert_int_eq(pushq_claim(other, "b", 90, 60, &b), MDM_OK);
		ck_assert_int_eq(db_exec(t.d, "COMMIT", 0, NULL, NULL), MDM_OK);
		for (size_t i = 0; i < a.n; i++)
			for (size_t j = 0; j < b.n; j++)
				ck_assert_int_ne(
				        a.items[i].enrollment_id, b.items[j].enrollment_id);
		total += a.n + b.n;
		ra = results(&a, 200, NULL);
		rb = results(&b, 200, NULL);
		ck_assert_int_eq(pushq_record_batch(t.d, "a", ra, a.n), MDM_OK);
		ck_assert_int_eq(pushq_record_batch(other, "b", rb, b.n), MDM_OK);
		free(ra);
		free(rb);
		rounds++;
		if (a.n == 0 && b.n == 0)
			break;
		pushq_batch_free(&a);
		pushq_batch_free(&b);
		ck_assert_int_lt(rounds, 20);
	}
	pushq_batch_free(&a);
	pushq_batch_free(&b);
	/* Each claimed exactly once, each pushed exactly once. */
	ck_assert_uint_eq(total, 500);
	expect("SELECT count(*) || ' ' || sum(pushes) || ' ' || bool_or(pending) FROM "
	       "mdm.push_state",
	        NULL, "500 500 false");
	db_free(other);
}
END_TEST

START_TEST(batch_refusals)
{
	struct pushq_batch a;
	struct pushq_result r[2];
	struct pushq_item ghost = {999999, "ghost", NULL, NULL, NULL, NULL, 1, 0};

	enqueue("{U1}");
	ck_assert_int_eq(pushq_claim(t.d, "a", 10, 60, &a), MDM_OK);
	ck_assert_uint_eq(a.n, 1);
	/* An enrollment twice: refused whole, nothing recorded. */
	r[0] = (struct pushq_result){&a.items[0], 200, NULL, NULL, 0, 0};
	r[1] = r[0];
	ck_assert_int_eq(pushq_record_batch(t.d, "a", r, 2), MDM_ERR_DB);
	ck_assert_str_eq(db_get0_sqlstate(t.d), "22023");
	expect("SELECT count(*) FROM mdm.push_state WHERE last_result_at IS NOT NULL", NULL, "0");
	/* Arrays of unequal length, NULL ids: refused. */
	for (int i = 0; i < 2; i++) {
		const char *ids[] = {i == 0 ? "{1,2}" : "{NULL}"};
		ck_assert_int_eq(db_exec(t.d,
		                         "SELECT mdm.push_record_batch('a', $1::bigint[], '{1}', "
		                         "'{200}', '{NULL}', '{NULL}', '{0}', '{f}')",
		                         1, ids, NULL),
		        MDM_ERR_DB);
		ck_assert_str_eq(db_get0_sqlstate(t.d), "22023");
	}
	/* An enrollment without push state is named; the others are recorded. */
	r[1] = (struct pushq_result){&ghost, 200, NULL, NULL, 0, 0};
	ck_assert_int_eq(pushq_record_batch(t.d, "a", r, 2), MDM_ERR_NOT_FOUND);
	expect("SELECT last_status || ' ' || (claimed_by IS NULL) FROM mdm.push_status WHERE udid "
	       "= $1",
	        "U1", "200 true");
	/* An empty round is nothing to do; operators may not record. */
	ck_assert_int_eq(pushq_record_batch(t.d, "a", r, 0), MDM_OK);
	expect("SELECT has_function_privilege('mdm_operator', 'mdm.push_record_batch(text, "
	       "bigint[], bigint[], integer[], text[], text[], double precision[], boolean[])', "
	       "'EXECUTE')",
	        NULL, "f");
	pushq_batch_free(&a);
}
END_TEST

START_TEST(classify_and_backoff)
{
	ck_assert_int_eq(pushq_classify(200, NULL), PUSHQ_SENT);
	ck_assert_int_eq(pushq_classify(410, "Unregistered"), PUSHQ_TOKEN_INVALID);
	ck_assert_int_eq(pushq_classify(400, "BadDeviceToken"), PUSHQ_TOKEN_INVALID);
	ck_assert_int_eq(pushq_classify(400, "DeviceTokenNotForTopic"), PUSHQ_TOKEN_INVALID);
	ck_assert_int_eq(pushq_classify(400, "BadTopic"), PUSHQ_REFUSED);
	ck_assert_int_eq(pushq_classify(400, NULL), PUSHQ_REFUSED);
	ck_assert_int_eq(pushq_classify(403, "ExpiredProviderToken"), PUSHQ_CERT);
	ck_assert_int_eq(pushq_classify(429, NULL), PUSHQ_RETRY);
	ck_assert_int_eq(pushq_classify(500, NULL), PUSHQ_RETRY);
	ck_assert_int_eq(pushq_classify(503, NULL), PUSHQ_RETRY);
	ck_assert_int_eq(pushq_classify(0, "network"), PUSHQ_RETRY);
	ck_assert_int_eq(pushq_classify(404, NULL), PUSHQ_REFUSED);
	ck_assert_int_eq(pushq_classify(302, NULL), PUSHQ_REFUSED);
	/* min doubled per failure, capped, jittered into [half, all]. */
	ck_assert(pushq_backoff(0, 5, 3600, 0) == 2.5);
	ck_assert(pushq_backoff(0, 5, 3600, 0.999) < 5.0);
	ck_assert(pushq_backoff(1, 5, 3600, 0) == 5.0);
	ck_assert(pushq_backoff(3, 5, 3600, 0) == 20.0);
	ck_assert(pushq_backoff(30, 5, 3600, 0) == 1800.0);
	ck_assert(pushq_backoff(1000000, 5, 3600, 0.5) <= 3600.0);
	ck_assert(pushq_backoff(-1, 5, 3600, 7) == 2.5);
	ck_assert(pushq_backoff(2, 10, 5, 0) == 5.0); /* max below min: min */
}
END_TEST

void pushq_db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "postgresql", 30, setup, teardown);

	ts_add_tests(tc, enqueues_coalesce_into_one_claim, concurrent_claimers_never_share,
	        expired_claims_are_taken_over, success_clears_pending_unless_requested_again,
	        min_interval_holds_between_pushes, invalid_token_waits_for_token_update,
	        failures_back_off, no_token_is_claimed_for_marking, push_function_and_topics,
	        batch_records_every_push, batch_claims_once_under_two_daemons, batch_refusals);
}

void pushq_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "rules", 0, NULL, NULL);

	ts_add_tests(tc, classify_and_backoff);
}
