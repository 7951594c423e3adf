/*
 * sql/024_metrics.sql: mdm.metrics_text(), the Prometheus text exposition
 * (format 0.0.4) of what the database holds.  Every output is read back by
 * a strict checker: each line a # HELP, a # TYPE or a sample of the family
 * just announced, names and label names valid, label values escaped; and
 * the gauges count the fixture rows.
 */
#define _GNU_SOURCE /* asprintf */
#include "db.h"
#include "log.h"
#include "fakeio.h"
#include "metrics.h"
#include "program.h"
#include "suites.h"
#include "ts_db.h"
#include "ts_sys.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A topic a hostile device could report: a quote, a backslash, a newline. */
#define HOSTILE "evil\"topic\\x\nmdm_fake 1"

static struct ts_db t;
static db *d;

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&t, "metrics");
	d = t.d;
}

static void teardown(void)
{
	ts_db_drop(&t);
	d = NULL;
}

static int name_ok(const char *s, size_t n, int colon)
{
	if (n == 0 || isdigit((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && !(colon && s[i] == ':'))
			return 0;
	return 1;
}

/* A sample's name: the family's, or for a histogram the family's with _bucket, _sum, _count. */
static int sample_name_ok(const char *l, size_t n, const char *family, int histogram)
{
	size_t f = strlen(family);
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};

	if (!name_ok(l, n, 1) || n < f || strncmp(l, family, f) != 0)
		return 0;
	if (!histogram)
		return n == f;
	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++)
		if (n == f + strlen(sfx[i]) && strncmp(l + f, sfx[i], strlen(sfx[i])) == 0)
			return 1;
	return 0;
}

/* One sample line: name{label="value",...} number.  0 when malformed. */
static int sample_ok(const char *l, const char *family, int histogram)
{
	size_t n = strcspn(l, "{ ");
	const char *p = l + n;
	char *end;

	if (!sample_name_ok(l, n, family, histogram))
		return 0;
	if (histogram && strncmp(l + n - 7, "_bucket", 7) == 0 && strstr(l, ",le=\"") == NULL)
		return 0;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			size_t ln = strcspn(p, "=");
			if (!name_ok(p, ln, 0) || p[ln] != '=' || p[ln + 1] != '"')
				return 0;
			p += ln + 2;
			while (*p != '"') {
				if (*p == '\0' || *p == '\n')
					return 0;
				if (*p == '\\') {
					if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
						return 0;
					p++;
				}
				p++;
			}
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return 0;
		}
		p++;
	}
	if (*p != ' ' || p[1] == '\0')
		return 0;
	(void)strtod(p + 1, &end);
	return *end == '\0';
}

/* Checks every line of text; returns the number of samples. */
static int check_exposition(char *text)
{
	char family[128] = "", kind[16] = "";
	int samples = 0, lineno = 0;
	size_t len = strlen(text);

	ck_assert_msg(len > 0 && text[len - 1] == '\n', "the text ends with a newline");
	for (char *l = strtok(text, "\n"); l != NULL; l = strtok(NULL, "\n")) {
		lineno++;
		if (strncmp(l, "# HELP ", 7) == 0) {
			size_t n = strcspn(l + 7, " ");
			ck_assert_msg(name_ok(l + 7, n, 1) && n < sizeof family, "line %d: %s",
			        lineno, l);
			memcpy(family, l + 7, n);
			family[n] = '\0';
			kind[0] = '\0';
		} else if (strncmp(l, "# TYPE ", 7) == 0) {
			size_t n = strcspn(l + 7, " ");
			const char *k = l + 7 + n + 1;
			ck_assert_msg(n == strlen(family) && strncmp(l + 7, family, n) == 0,
			        "line %d: TYPE of another family: %s", lineno, l);
			ck_assert_msg(strcmp(k, "gauge") == 0 || strcmp(k, "counter") == 0 ||
			                strcmp(k, "histogram") == 0,
			        "line %d: %s", lineno, l);
			snprintf(kind, sizeof kind, "%s", k);
			if (strcmp(k, "counter") == 0)
				ck_assert_msg(n > 6 && strcmp(family + n - 6, "_total") == 0,
				        "counter %s ends with _total", family);
		} else {
			ck_assert_msg(
			        kind[0] != '\0', "line %d: sample before TYPE: %s", lineno, l);
			ck_assert_msg(strncmp(family, "mdm_", 4) == 0, "line %d: prefix", lineno);
			ck_assert_msg(sample_ok(l, family, strcmp(kind, "histogram") == 0),
			        "line %d: bad sample: %s", lineno, l);
			samples++;
		}
	}
	return samples;
}

static char *metrics(void)
{
	return ts_db_query1(d, "SELECT mdm.metrics_text()", NULL);
}

START_TEST(empty_database_is_valid)
{
	char *s = metrics();
	char *copy = strdup(s);

	ck_assert_int_gt(check_exposition(copy), 0);
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_devices 0\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_command_queue_depth 0\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_command_queue_oldest_age_seconds 0\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_scep_transactions{status=\"issued\"} 0\n"));
	free(copy);
	free(s);
}
END_TEST

START_TEST(checker_refuses_bad_lines)
{
	char c[] = "# HELP mdm_x x\n# TYPE mdm_x gauge\nmdm_x{a=\"v\"} 1\n";

	/* The checker is strict: a bare quote and an unknown escape are not samples. */
	ck_assert_int_eq(sample_ok("mdm_x{a=\"q\"q\"} 1", "mdm_x", 0), 0);
	ck_assert_int_eq(sample_ok("mdm_x{a=\"\\t\"} 1", "mdm_x", 0), 0);
	ck_assert_int_eq(sample_ok("mdm_x{a=\"v\"} x", "mdm_x", 0), 0);
	ck_assert_int_eq(sample_ok("mdm_y 1", "mdm_x", 0), 0);
	ck_assert_int_eq(sample_ok("mdm_x_sum 1", "mdm_x", 0), 0);
	ck_assert_int_eq(sample_ok("mdm_x_sum 1", "mdm_x", 1), 1);
	ck_assert_int_eq(sample_ok("mdm_x_bucket{a=\"v\"} 1", "mdm_x", 1), 0);
	ck_assert_int_eq(sample_ok("mdm_x_bucket{a=\"v\",le=\"+Inf\"} 1", "mdm_x", 1), 1);
	ck_assert_int_eq(sample_ok("mdm_x{a=\"v\\\"\\\\\\n\"} 1", "mdm_x", 0), 1);
	ck_assert_int_eq(check_exposition(c), 1);
}
END_TEST

/* n devices enrolled (one also with a user channel) under HOSTILE, m commands each queued. */
static void fleet(int n, int m)
{
	char ns[16], ms[16];
	const char *p[3] = {ns, ms, HOSTILE};

	snprintf(ns, sizeof ns, "%d", n);
	snprintf(ms, sizeof ms, "%d", m);
	ck_assert_int_eq(
	        db_exec(d,
	                "WITH dv AS (INSERT INTO mdm.device (udid) SELECT 'U-' || i "
	                " FROM generate_series(1, $1::int) i RETURNING udid), "
	                "e AS (INSERT INTO mdm.enrollment (udid, topic, active) "
	                " SELECT udid, $3, true FROM dv RETURNING id), "
	                "c AS (INSERT INTO mdm.command (command_uuid, request_type, plist) "
	                " SELECT 'C-' || j, 'ProfileList', '<plist/>' "
	                " FROM generate_series(1, $2::int) j RETURNING command_uuid) "
	                "INSERT INTO mdm.command_queue (enrollment_id, command_uuid, queued_at) "
	                "SELECT e.id, c.command_uuid, now() - interval '90 seconds' FROM e, c",
	                3, p, NULL),
	        MDM_OK);
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.enrollment (udid, user_id, topic, active) "
	                         "VALUES ('U-1', 'user1', 't2', true), ('U-1', 'old', 't2', false)",
	                         0, NULL, NULL),
	        MDM_OK);
}

START_TEST(counts_match_the_rows)
{
	char *s, *copy;

	fleet(3, 4);
	s = metrics();
	copy = strdup(s);
	ck_assert_int_gt(check_exposition(copy), 0);
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_devices 3\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_command_queue_depth 12\n"));
	/* Escaped: the newline made no line, the quote closes no value. */
	ck_assert_ptr_nonnull(strstr(s,
	        "\nmdm_enrollments{channel=\"device\","
	        "topic=\"evil\\\"topic\\\\x\\nmdm_fake 1\"} 3\n"));
	ck_assert_ptr_null(strstr(s, "\nmdm_fake"));
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_enrollments{channel=\"user\",topic=\"t2\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_command_queue_oldest_age_seconds 9"));
	free(copy);
	free(s);
	/* Answered commands leave the queue. */
	ck_assert_int_eq(db_exec(d,
	                         "UPDATE mdm.command_queue SET status = 'acknowledged', "
	                         "finished_at = now() WHERE command_uuid = 'C-1'",
	                         0, NULL, NULL),
	        MDM_OK);
	s = metrics();
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_command_queue_depth 9\n"));
	free(s);
}
END_TEST

START_TEST(push_state_is_counted)
{
	char *s, *copy;

	fleet(2, 0);
	ck_assert_int_eq(
	        db_exec(d,
	                "INSERT INTO mdm.push_state (enrollment_id, pending, pushes, failures, "
	                " last_status, last_reason, next_attempt_at, token_invalid_at) "
	                "SELECT id, i = 1, 5, CASE WHEN i = 1 THEN 2 ELSE 0 END, "
	                " CASE WHEN i = 1 THEN 0 ELSE 200 END, "
	                " CASE WHEN i = 1 THEN E'connect: \"refused\"\\\\' END, "
	                " now() + interval '1 hour', NULL "
	                "FROM (SELECT id, row_number() OVER (ORDER BY id) i FROM mdm.enrollment "
	                " WHERE user_id IS NULL) e",
	                0, NULL, NULL),
	        MDM_OK);
	s = metrics();
	copy = strdup(s);
	ck_assert_int_gt(check_exposition(copy), 0);
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_push_sent_total 10\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_push_pending 1\n"));
	ck_assert_ptr_nonnull(strstr(s, "\nmdm_push_backoff 1\n"));
	ck_assert_ptr_nonnull(strstr(
	        s, "\nmdm_push_failing{status=\"0\",reason=\"connect: \\\"refused\\\"\\\\\"} 1\n"));
	free(copy);
	free(s);
}
END_TEST

/* The value of the sample line starting with prefix (after a newline), -1 when none. */
static double sample(const char *text, const char *prefix)
{
	char *needle = NULL;
	const char *p;
	double v = -1;

	ck_assert_int_ne(asprintf(&needle, "\n%s ", prefix), -1);
	p = strstr(text, needle);
	if (p != NULL)
		v = strtod(p + strlen(needle), NULL);
	free(needle);
	return v;
}

#define REQ(cls) "mdm_http_requests_total{program=\"checkin.fcgi\",class=\"" cls "\"}"
#define HIST(x, c)                                                                                 \
	"mdm_http_request_duration_seconds_" x "{program=\"checkin.fcgi\",class=\"" c "\""

START_TEST(workers_aggregate_and_survive_restart)
{
	struct metrics w1, w2;
	db *d2 = NULL;
	char *s, *copy;

	ck_assert_int_eq(db_new(t.conninfo, "worker2", &d2), MDM_OK);
	metrics_init(&w1, "checkin.fcgi", 10, 100.0);
	metrics_init(&w2, "checkin.fcgi", 10, 100.0);
	metrics_observe(&w1, 200, 0.002);
	metrics_observe(&w1, 200, 0.3);
	metrics_observe(&w1, 403, 0.0005);
	metrics_observe(&w2, 200, 20.0);
	metrics_observe(&w2, 0, 0.001);
	/* Before the interval: nothing written, nothing lost. */
	ck_assert_int_eq(metrics_flush(&w1, d, 105.0, 0), MDM_OK);
	ck_assert_int_eq(ts_db_count(d, "SELECT count(*) FROM mdm.metrics_request"), 0);
	ck_assert_int_eq(metrics_flush(&w1, d, 110.0, 0), MDM_OK);
	ck_assert_int_eq(metrics_flush(&w2, d2, 111.0, 0), MDM_OK);
	s = metrics();
	copy = strdup(s);
	ck_assert_int_gt(check_exposition(copy), 0);
	ck_assert(sample(s, REQ("2xx")) == 3);
	ck_assert(sample(s, REQ("4xx")) == 1);
	ck_assert(sample(s, REQ("none")) == 1);
	/* Cumulative buckets: 0.002 is under 0.0025, 0.3 under 0.5, 20 only under +Inf. */
	ck_assert(sample(s, HIST("bucket", "2xx") ",le=\"0.001\"}") == 0);
	ck_assert(sample(s, HIST("bucket", "2xx") ",le=\"0.0025\"}") == 1);
	ck_assert(sample(s, HIST("bucket", "2xx") ",le=\"0.5\"}") == 2);
	ck_assert(sample(s, HIST("bucket", "2xx") ",le=\"10\"}") == 2);
	ck_assert(sample(s, HIST("bucket", "2xx") ",le=\"+Inf\"}") == 3);
	ck_assert(sample(s, HIST("count", "2xx") "}") == 3);
	ck_assert(sample(s, HIST("sum", "2xx") "}") > 20.30 &&
	        sample(s, HIST("sum", "2xx") "}") < 20.31);
	free(copy);
	free(s);
	/* Worker 1 restarts: a new process starts from zero, the totals do not. */
	metrics_init(&w1, "checkin.fcgi", 10, 0.0);
	metrics_observe(&w1, 204, 0.01);
	ck_assert_int_eq(metrics_flush(&w1, d, 0.0, 1), MDM_OK);
	s = metrics();
	ck_assert(sample(s, REQ("2xx")) == 4);
	ck_assert(sample(s, REQ("4xx")) == 1);
	free(s);
	db_free(d2);
}
END_TEST

START_TEST(failed_flush_keeps_the_counts)
{
	struct metrics w;
	db *away = NULL;
	char *s;

	ck_assert_int_eq(
	        db_new("host=/nonexistent port=1 dbname=x connect_timeout=1", "away", &away),
	        MDM_OK);
	metrics_init(&w, "scep.fcgi", 0, 0.0);
	metrics_observe(&w, 500, 0.01);
	ck_assert_int_ne(metrics_flush(&w, away, 1.0, 0), MDM_OK);
	metrics_observe(&w, 200, 0.01);
	ck_assert_int_eq(metrics_flush(&w, d, 2.0, 0), MDM_OK);
	s = metrics();
	ck_assert(sample(s, "mdm_http_requests_total{program=\"scep.fcgi\",class=\"5xx\"}") == 1);
	ck_assert(sample(s, "mdm_http_requests_total{program=\"scep.fcgi\",class=\"2xx\"}") == 1);
	free(s);
	db_free(away);
}
END_TEST

/*
 * SCEP answers by outcome and failInfo (issue 16: "SCEP issued/refused by
 * reason"): counted in the worker, added at its flush, summed over
 * workers; a bad label is not counted; a failed flush keeps them.
 */
START_TEST(scep_outcomes_by_fail_info)
{
	struct metrics w1, w2;
	db *away = NULL;
	char *s, *copy;

#define SCEP_OUT(o, f) "mdm_scep_pkioperations_total{outcome=\"" o "\",fail_info=\"" f "\"}"
	metrics_init(&w1, "scep.fcgi", 0, 0.0);
	metrics_init(&w2, "scep.fcgi", 0, 0.0);
	metrics_outcome(&w1, "scep_pkioperation", "SUCCESS");
	metrics_observe(&w1, 200, 0.01);
	metrics_outcome(&w1, "scep_pkioperation", "FAILURE_badRequest");
	metrics_observe(&w1, 200, 0.01);
	metrics_outcome(&w1, "scep_pkioperation", "FAILURE_badRequest");
	metrics_observe(&w1, 200, 0.01);
	metrics_outcome(&w1, "scep_pkioperation", "bad label\"}");
	metrics_observe(&w1, 200, 0.01);
	ck_assert_int_eq(w1.n_outcomes, 2);
	metrics_outcome(&w2, "scep_pkioperation", "FAILURE_badMessageCheck");
	metrics_outcome(&w2, "scep_pkioperation", "unanswered");
	metrics_observe(&w2, 400, 0.01);
	ck_assert_int_eq(metrics_flush(&w1, d, 1.0, 0), MDM_OK);
	/* The database away: w2's outcomes wait for the next flush. */
	ck_assert_int_eq(
	        db_new("host=/nonexistent port=1 dbname=x connect_timeout=1", "away", &away),
	        MDM_OK);
	ck_assert_int_ne(metrics_flush(&w2, away, 1.0, 0), MDM_OK);
	ck_assert_int_eq(metrics_flush(&w2, d, 2.0, 0), MDM_OK);
	s = metrics();
	copy = strdup(s);
	ck_assert_int_gt(check_exposition(copy), 0);
	ck_assert(sample(s, SCEP_OUT("SUCCESS", "")) == 1);
	ck_assert(sample(s, SCEP_OUT("FAILURE", "badRequest")) == 2);
	ck_assert(sample(s, SCEP_OUT("FAILURE", "badMessageCheck")) == 1);
	ck_assert(sample(s, SCEP_OUT("unanswered", "")) == 1);
	ck_assert_ptr_null(strstr(s, "bad label"));
	/* Flushed counts start again from zero: a second flush adds nothing twice. */
	metrics_outcome(&w1, "scep_pkioperation", "SUCCESS");
	metrics_observe(&w1, 200, 0.01);
	ck_assert_int_eq(metrics_flush(&w1, d, 3.0, 0), MDM_OK);
	free(s);
	s = metrics();
	ck_assert(sample(s, SCEP_OUT("SUCCESS", "")) == 2);
	ck_assert(sample(s, SCEP_OUT("FAILURE", "badRequest")) == 2);
#undef SCEP_OUT
	free(copy);
	free(s);
	db_free(away);
}
END_TEST

START_TEST(request_add_refuses_bad_shapes)
{
	const char *p[1] = {"{{1,2}}"};

	/* Two buckets are not the fourteen the histogram has: refused, nothing added. */
	ck_assert_int_ne(
	        db_exec(d, "SELECT mdm.metrics_request_add('x', '{2}', $1::bigint[], '{0}')", 1, p,
	                NULL),
	        MDM_OK);
	ck_assert_int_ne(db_exec(d,
	                         "SELECT mdm.metrics_request_add('Bad Name', '{2}', "
	                         "array_fill(1::bigint, ARRAY[1,14]), '{0}')",
	                         0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(ts_db_count(d, "SELECT count(*) FROM mdm.metrics_request"), 0);
}
END_TEST

/* A token file in a fresh directory; dir for ts_tmpdir_done. */
static void token_file(char *dir, size_t cap, char *path, size_t pcap, const char *content)
{
	ts_tmpdir_new(dir, cap, "metrics");
	snprintf(path, pcap, "%s/token", dir);
	ts_file_put(path, "%s", content);
}

START_TEST(authorize_needs_the_token)
{
	char dir[256], path[300];

	token_file(dir, sizeof dir, path, sizeof path, "0123456789abcdefXYZ\n");
	ck_assert_int_eq(metrics_authorize("Bearer 0123456789abcdefXYZ", path), MDM_OK);
	ck_assert_int_eq(metrics_authorize("bearer 0123456789abcdefXYZ", path), MDM_OK);
	ck_assert_int_eq(metrics_authorize(NULL, path), MDM_ERR_AUTH);
	ck_assert_int_eq(metrics_authorize("", path), MDM_ERR_AUTH);
	ck_assert_int_eq(metrics_authorize("Basic dXNlcjpwdw==", path), MDM_ERR_AUTH);
	ck_assert_int_eq(metrics_authorize("Bearer ", path), MDM_ERR_AUTH);
	ck_assert_int_eq(metrics_authorize("Bearer  0123456789abcdefXYZ", path), MDM_ERR_AUTH);
	ck_assert_int_eq(metrics_authorize("Bearer 0123456789abcdefXY", path), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(metrics_authorize("Bearer 0123456789abcdefXYZW", path), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(metrics_authorize("Bearer 0123456789abcdefXYz", path), MDM_ERR_FORBIDDEN);
	/* Unset: the URL is off; an unusable file is the operator's error, never an open door. */
	ck_assert_int_eq(metrics_authorize("Bearer x", NULL), MDM_ERR_NOT_FOUND);
	ck_assert_int_eq(metrics_authorize("Bearer x", ""), MDM_ERR_NOT_FOUND);
	ck_assert_int_eq(metrics_authorize("Bearer x", "/nonexistent/token"), MDM_ERR_CONFIG);
	ts_file_put(path, "short\n");
	ck_assert_int_eq(metrics_authorize("Bearer short", path), MDM_ERR_CONFIG);
	ts_file_put(path, "%s", "");
	ck_assert_int_eq(metrics_authorize("Bearer ", path), MDM_ERR_AUTH);
	ck_assert_int_eq(metrics_authorize("Bearer x", path), MDM_ERR_CONFIG);
	ts_file_put(path, "two tokens here 0123456789\n");
	ck_assert_int_eq(metrics_authorize("Bearer two", path), MDM_ERR_CONFIG);
	ts_tmpdir_done(dir);
}
END_TEST

static mdm_err never_handle(struct program *a, fcgi_req *r)
{
	(void)a;
	(void)r;
	ck_abort_msg("the metrics URL reached the program's handler");
	return MDM_ERR_INTERNAL;
}

static const struct program_spec ep_test = {"enroll.fcgi", "GET", 1024, "a test", never_handle};

/* GET /mdm/metrics through program_dispatch with this Authorization (NULL: none). */
static void scrape(const char *token_path, const char *auth, const char *cert, struct fakeio *f)
{
	char *env[8], *authz = NULL, *certenv = NULL;
	char conf[512];
	struct program a = {.ep = &ep_test, .db = d};
	struct fcgi_io io = fakeio_bind(f, "", 0);
	fcgi_req r;
	int n = 0;

	snprintf(conf, sizeof conf, "metrics_token_file = %s\nmetrics_flush_seconds = 10\n",
	        token_path);
	env[n++] = "REQUEST_METHOD=GET";
	env[n++] = "REQUEST_URI=/mdm/metrics";
	if (auth != NULL) {
		ck_assert_int_ne(asprintf(&authz, "HTTP_AUTHORIZATION=%s", auth), -1);
		env[n++] = authz;
	}
	if (cert != NULL) {
		ck_assert_int_ne(asprintf(&certenv, "SSL_CLIENT_CERT=%s", cert), -1);
		env[n++] = certenv;
	}
	env[n] = NULL;
	{
		char dir[256], path[300];
		ts_tmpdir_new(dir, sizeof dir, "metricsconf");
		snprintf(path, sizeof path, "%s/mdm.conf", dir);
		ts_file_put(path, "%s", conf);
		ck_assert_int_eq(config_load_file(path, 1, &a.cfg), MDM_OK);
		ts_tmpdir_done(dir);
	}
	metrics_init(&a.metrics, "enroll.fcgi", 10, metrics_now());
	metrics_observe(&a.metrics, 200, 0.004);
	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(program_dispatch(&a, &r), MDM_OK);
	ck_assert(r.responded);
	fcgi_req_clear(&r);
	config_free(a.cfg);
	free(authz);
	free(certenv);
}

START_TEST(url_refuses_then_serves)
{
	char dir[256], path[300];
	struct fakeio f;
	char *body;

	token_file(dir, sizeof dir, path, sizeof path, "scrape-token-0123456789\n");
	scrape(path, NULL, NULL, &f);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 401 "));
	ck_assert_ptr_nonnull(strstr(f.out, "WWW-Authenticate: Bearer\r\n"));
	ck_assert_ptr_null(strstr(f.out, "mdm_"));
	/* A device's certificate is no credential for metrics. */
	scrape(path, NULL, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", &f);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 401 "));
	scrape(path, "Bearer wrong-token-0123456789", NULL, &f);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 403 "));
	ck_assert_ptr_null(strstr(f.out, "mdm_"));
	scrape(path, "Bearer scrape-token-0123456789", NULL, &f);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 200 "));
	ck_assert_ptr_nonnull(
	        strstr(f.out, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
	body = strstr(f.out, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body = strdup(body + 4);
	ck_assert_int_gt(check_exposition(body), 0);
	free(body);
	/* The scraping worker's own request, flushed before the answer. */
	ck_assert_ptr_nonnull(strstr(
	        f.out, "\nmdm_http_requests_total{program=\"enroll.fcgi\",class=\"2xx\"} 1\n"));
	/* Unset: 404. */
	scrape("", "Bearer scrape-token-0123456789", NULL, &f);
	ck_assert_ptr_nonnull(strstr(f.out, "Status: 404 "));
	ts_tmpdir_done(dir);
}
END_TEST

static void quiet(void)
{
	log_set_level(MDM_LOG__MAX);
}

void metrics_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "authorize", 10, quiet, NULL);

	ts_add_tests(tc, authorize_needs_the_token);
}

/* An operator login reads the text and cannot add counts; PUBLIC can do neither. */
START_TEST(operator_reads_but_cannot_add)
{
	ck_assert_int_eq(
	        ts_db_count(d,
	                "SELECT count(*) FROM pg_catalog.pg_proc p, "
	                "aclexplode(p.proacl) a WHERE p.pronamespace = 'mdm'::regnamespace "
	                "AND p.proname LIKE 'metrics_%' AND a.grantee = 0 "
	                "AND a.privilege_type = 'EXECUTE' AND p.proname IN "
	                "('metrics_text', 'metrics_request_text', 'metrics_request_add')"),
	        0);
	ck_assert_int_eq(db_exec(d, "SET ROLE mdm_operator", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_exec(d, "SELECT mdm.metrics_text()", 0, NULL, NULL), MDM_OK);
	ck_assert_int_ne(db_exec(d,
	                         "SELECT mdm.metrics_request_add('x', '{2}', "
	                         "array_fill(1::bigint, ARRAY[1,14]), '{0}')",
	                         0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_ne(
	        db_exec(d, "SELECT count(*) FROM mdm.metrics_request", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_exec(d, "RESET ROLE", 0, NULL, NULL), MDM_OK);
}
END_TEST

void metrics_db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "db", 30, setup, teardown);

	ts_add_tests(tc, empty_database_is_valid, checker_refuses_bad_lines, counts_match_the_rows,
	        push_state_is_counted, workers_aggregate_and_survive_restart,
	        failed_flush_keeps_the_counts, scep_outcomes_by_fail_info,
	        request_add_refuses_bad_shapes, url_refuses_then_serves,
	        operator_reads_but_cannot_add);
}
