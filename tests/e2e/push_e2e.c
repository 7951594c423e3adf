/*
 * Pushes end to end: SQL enqueue -> bin/mdm-pushd (its real code path,
 * only the URL and CA bundle pointed at the stand-in) -> the APNs
 * stand-in of tests/apns (HTTP/2, client certificate checked against the
 * push certificate's issuer, every request recorded) -> the device, which
 * then fetches its command through Apache.  Then coalescing, 410
 * invalidation until the next TokenUpdate, 429/500 retried with backoff,
 * two daemons without duplicates, a daemon restart without a lost push,
 * and the bad inputs (no token, an invalid token, no push certificate).
 *
 * Runs in proxy mode only: the daemon does not depend on how Apache runs
 * the FastCGI programs, and the stand-in is shared by both modes.
 * Environment: E2E_APNS_URL, E2E_APNS_CA, E2E_APNS_DIR, E2E_PUSH_TOPIC,
 * E2E_PUSHD (the daemon), plus what command_e2e.c uses.
 */
#define _GNU_SOURCE /* strptime, timegm, strndup */
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

Suite *push_e2e_suite(void);

static char tmpdir[256], devdir[300], udid[64], server_url[512], checkin_url[512];
static const char *apns_dir, *tls_ca;

/* The daemon's environment: the stand-in, and short timings for tests. */
#define PUSHD_ENV                                                                                  \
	"MDM_APNS_URL=\"$E2E_APNS_URL\" MDM_APNS_CA_FILE=\"$E2E_APNS_CA\" MDM_PUSH_BACKOFF_MIN=1 " \
	"MDM_PUSH_BACKOFF_MAX=2 MDM_PUSH_SWEEP_SECONDS=1 MDM_PUSH_MIN_INTERVAL=0 "                 \
	"MDM_LOG_LEVEL=info"

static void enroll_once(void)
{
	if (!e2e_devsim_enrolled(udid, 1))
		e2e_devsim_enroll(devdir, udid, "scepclient", tmpdir);
	/* Every test starts from a quiet queue, no rules and no records. */
	free(e2e_query1("SELECT mdm.queue_clear($1)::text", udid));
	ck_assert_int_eq(ts_sh("flock %s/rules sh -c ': >\"$0\"' %s/rules && : >%s/requests.tsv",
	                         apns_dir, apns_dir, apns_dir),
	        0);
}

static char *token_hex(void)
{
	return e2e_query1("SELECT encode(push_token, 'hex') FROM mdm.enrollment WHERE udid = $1 "
	                  "AND user_id IS NULL",
	        udid);
}

/* Requests recorded for token with status (NULL: any). */
static int recorded(const char *token, const char *status)
{
	char out[400], *s;
	int n;

	snprintf(out, sizeof(out), "%s/count", tmpdir);
	ck_assert_int_eq(ts_sh("awk -F '\\t' '$7 == \"%s\" && (\"%s\" == \"\" || $2 == \"%s\")' "
	                       "%s/requests.tsv | wc -l >%s",
	                         token, status ? status : "", status ? status : "", apns_dir, out),
	        0);
	s = ts_file_get(out, NULL);
	n = atoi(s);
	free(s);
	return n;
}

/* Seconds since the epoch of a stand-in record time (2024-05-01T12:00:00.123456Z). */
static double record_time(const char *ts)
{
	struct tm tm = {0};
	const char *dot = strchr(ts, '.');

	ck_assert_ptr_nonnull(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm));
	return (double)timegm(&tm) + (dot != NULL ? atof(dot) : 0);
}

/* The times of the requests recorded for token with status, in order; how many (at most max). */
static int record_times(const char *token, const char *status, double *t, int max)
{
	char out[400], ts[64], *s;
	const char *p;
	int n = 0, used;

	snprintf(out, sizeof(out), "%s/times", tmpdir);
	ck_assert_int_eq(ts_sh("awk -F '\\t' '$7 == \"%s\" && $2 == \"%s\" { print $1 }' "
	                       "%s/requests.tsv >%s",
	                         token, status, apns_dir, out),
	        0);
	s = ts_file_get(out, NULL);
	for (p = s; n < max && sscanf(p, "%63s%n", ts, &used) == 1; p += used)
		t[n++] = record_time(ts);
	free(s);
	return n;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int pushd_once(const char *id)
{
	return ts_sh("env " PUSHD_ENV " %s --once --id %s >>%s/pushd.log 2>&1", getenv("E2E_PUSHD"),
	        id, tmpdir);
}

static void rule(const char *token, const char *status_count)
{
	ck_assert_int_eq(ts_sh("flock %s/rules sh -c 'echo \"$1\" >>\"$0\"' %s/rules '%s %s'",
	                         apns_dir, apns_dir, token, status_count),
	        0);
}

/* The device's Idle through Apache: the CommandUUID it gets ("" for none). */
static char *device_idle(void)
{
	char body[400], reply[400], *s, *p, *q, *uuid;

	snprintf(body, sizeof(body), "%s/idle.plist", tmpdir);
	snprintf(reply, sizeof(reply), "%s/idle.reply", tmpdir);
	e2e_idle_plist(body, udid);
	ck_assert_int_eq(e2e_device_put(devdir, server_url, body, NULL, reply), 200);
	s = ts_file_get(reply, NULL);
	uuid = strdup("");
	if ((p = strstr(s, "<key>CommandUUID</key>")) != NULL && (p = strstr(p, "<string>")) &&
	        (q = strstr(p, "</string>")) != NULL) {
		free(uuid);
		uuid = strndup(p + 8, (size_t)(q - p - 8));
	}
	free(s);
	return uuid;
}

START_TEST(push_reaches_device)
{
	char *tok, *uuid, *c1, *c2, *c3, want[512];

	enroll_once();
	tok = token_hex();
	/* Three enqueues, one push (coalesced). */
	c1 = e2e_query1("SELECT upper(mdm.cmd_profile_list($1)::text)", udid);
	c2 = e2e_query1("SELECT upper(mdm.cmd_security_info($1)::text)", udid);
	c3 = e2e_query1("SELECT upper(mdm.cmd_certificate_list($1)::text)", udid);
	ck_assert_int_eq(pushd_once("e2e-a"), 0);
	ck_assert_int_eq(recorded(tok, NULL), 1);
	ck_assert_int_eq(recorded(tok, "200"), 1);
	/* The right topic, body and client certificate, over HTTP/2. */
	snprintf(want, sizeof(want), "%s/fields", tmpdir);
	ck_assert_int_eq(ts_sh("awk -F '\\t' '$7 == \"%s\" { print $5, $6, $8, $9, $10, $11 }' "
	                       "%s/requests.tsv >%s",
	                         tok, apns_dir, want),
	        0);
	{
		char *line = ts_file_get(want, NULL), exp[1024];
		char *magic =
		        e2e_query1("SELECT push_magic FROM mdm.enrollment WHERE udid = $1 AND "
		                   "user_id IS NULL",
		                udid);
		snprintf(exp, sizeof(exp), "HTTP/2.0 POST %s %s mdm %s\n", getenv("E2E_PUSH_TOPIC"),
		        magic, getenv("E2E_PUSH_TOPIC"));
		ck_assert_str_eq(line, exp);
		free(line);
		free(magic);
	}
	e2e_assert_query("SELECT last_status || '/' || (last_apns_id IS NOT NULL)::text || '/' || "
	                 "pending::text FROM mdm.push_status WHERE udid = $1 AND user_id IS NULL",
	        udid, "200/true/false");
	/* The device, woken, fetches its commands through Apache. */
	uuid = device_idle();
	ck_assert_str_eq(uuid, c1);
	free(uuid);
	/* Nothing new to push: a second sweep sends nothing. */
	ck_assert_int_eq(pushd_once("e2e-a"), 0);
	ck_assert_int_eq(recorded(tok, NULL), 1);
	free(tok);
	free(c1);
	free(c2);
	free(c3);
}
END_TEST

START_TEST(unregistered_until_token_update)
{
	char *tok, tu[400];

	enroll_once();
	tok = token_hex();
	rule(tok, "410");
	free(e2e_query1("SELECT mdm.cmd_profile_list($1)::text", udid));
	ck_assert_int_eq(pushd_once("e2e-a"), 0);
	ck_assert_int_eq(recorded(tok, "410"), 1);
	e2e_assert_query("SELECT (token_invalid_at IS NOT NULL)::text || '/' || last_reason FROM "
	                 "mdm.push_status WHERE udid = $1 AND user_id IS NULL",
	        udid, "true/Unregistered");
	/* No more pushes to that token, however many commands wait. */
	free(e2e_query1("SELECT mdm.cmd_security_info($1)::text", udid));
	free(e2e_query1("SELECT mdm.push($1)::text", udid));
	ck_assert_int_eq(pushd_once("e2e-a"), 0);
	ck_assert_int_eq(recorded(tok, NULL), 1);
	/* A new TokenUpdate (through Apache) makes the device reachable again. */
	ck_assert_int_eq(ts_sh("flock %s/rules sh -c ': >\"$0\"' %s/rules", apns_dir, apns_dir), 0);
	snprintf(tu, sizeof(tu), "%s/tokenupdate.plist", devdir);
	ck_assert_int_eq(e2e_device_put(devdir, checkin_url, tu,
	                         "application/x-apple-aspen-mdm-checkin", NULL),
	        200);
	free(e2e_query1("SELECT mdm.push($1)::text", udid));
	ck_assert_int_eq(pushd_once("e2e-a"), 0);
	ck_assert_int_eq(recorded(tok, "200"), 1);
	free(tok);
}
END_TEST

START_TEST(retry_with_backoff)
{
	char *tok, out[400], *s;
	double t429 = 0, t500 = 0, t200 = 0;

	enroll_once();
	tok = token_hex();
	rule(tok, "429 1");
	rule(tok, "500 1");
	free(e2e_query1("SELECT mdm.cmd_profile_list($1)::text", udid));
	/*
	 * The long-running daemon retries on its own, when each backoff ends
	 * (push_backoff_min 1, max 2: the first retry 0.5 to 1 s after the
	 * failure, the second 1 to 2 s, docs/CONFIG.md).
	 */
	ck_assert_int_eq(ts_sh("env " PUSHD_ENV " %s --id e2e-b >>%s/pushd.log 2>&1 & echo $! "
	                       ">%s/pushd.pid",
	                         getenv("E2E_PUSHD"), tmpdir, tmpdir),
	        0);
	for (int i = 0; i < 150 && recorded(tok, "200") == 0; i++)
		usleep(100000);
	ck_assert_int_eq(
	        ts_sh("kill -TERM $(cat %s/pushd.pid); wait 2>/dev/null; sleep 0.5", tmpdir), 0);
	ck_assert_int_eq(recorded(tok, "429"), 1);
	ck_assert_int_eq(recorded(tok, "500"), 1);
	ck_assert_int_eq(recorded(tok, "200"), 1);
	/* Spaced by the backoff: no retry before its delay's lower bound. */
	snprintf(out, sizeof(out), "%s/times", tmpdir);
	ck_assert_int_eq(ts_sh("awk -F '\\t' '$7 == \"%s\" { print $2, $1 }' %s/requests.tsv >%s",
	                         tok, apns_dir, out),
	        0);
	s = ts_file_get(out, NULL);
	{
		char st[8], ts[64];
		const char *p = s;
		int n;
		while (sscanf(p, "%7s %63s%n", st, ts, &n) == 2) {
			struct tm tm = {0};
			double frac = 0;
			char *dot = strchr(ts, '.');
			strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
			if (dot != NULL)
				frac = atof(dot);
			double t = (double)timegm(&tm) + frac;
			if (strcmp(st, "429") == 0)
				t429 = t;
			else if (strcmp(st, "500") == 0)
				t500 = t;
			else if (strcmp(st, "200") == 0)
				t200 = t;
			p += n;
		}
	}
	ck_assert_msg(t500 - t429 >= 0.5 && t200 - t500 >= 1.0,
	        "retries not spaced by the backoff: 429 at %.3f, 500 at %.3f, 200 at %.3f (%s)",
	        t429, t500, t200, s);
	free(s);
	free(tok);
}
END_TEST

/*
 * push_min_interval (docs/CONFIG.md): three commands queued 50 ms apart,
 * two daemons LISTENing on one database.  The first push goes out at
 * once; at most one more follows, no sooner than the interval after the
 * first, and it does come (the daemons wake when the interval ends, not
 * at the next sweep, which is a minute away here).
 */
START_TEST(min_interval_spaces_pushes)
{
	const double interval = 1.0;
	char *tok, *c[3];
	double t[8], tq[3], t_end;
	int n = 0;

	enroll_once();
	tok = token_hex();
	ck_assert_int_eq(ts_sh("for id in e2e-j e2e-k; do env " PUSHD_ENV
	                       " MDM_PUSH_MIN_INTERVAL=1 MDM_PUSH_SWEEP_SECONDS=60 %s --id $id "
	                       ">>%s/pushd.log 2>&1 & echo $! >>%s/pushd-jk.pid; done",
	                         getenv("E2E_PUSHD"), tmpdir, tmpdir),
	        0);
	/* Both are up: connected, LISTENing, and waiting after their first round. */
	for (int i = 0; i < 100; i++) {
		char *up = e2e_query1("SELECT count(*)::text FROM pg_stat_activity WHERE "
		                      "application_name = 'mdm-pushd' AND state = 'idle' AND "
		                      "query NOT LIKE 'LISTEN%'",
		        NULL);
		int ready = strcmp(up, "2") == 0;
		free(up);
		if (ready)
			break;
		usleep(100000);
	}
	for (int i = 0; i < 3; i++) {
		if (i > 0)
			usleep(50000);
		tq[i] = now_real();
		c[i] = e2e_query1("SELECT mdm.cmd_device_information($1)::text", udid);
	}
	/* Wait for the second push (generously), then as long again for a third. */
	t_end = now_real() + interval + 10;
	while (now_real() < t_end && record_times(tok, "200", t, 8) < 2)
		usleep(50000);
	usleep((useconds_t)((interval + 0.5) * 1e6));
	ck_assert_int_eq(ts_sh("kill -TERM $(cat %s/pushd-jk.pid); wait 2>/dev/null; "
	                       "rm -f %s/pushd-jk.pid; sleep 0.5",
	                         tmpdir, tmpdir),
	        0);
	n = record_times(tok, "200", t, 8);
	ck_assert_int_eq(recorded(tok, NULL), n);
	for (int i = 0; i < n; i++)
		fprintf(stderr,
		        "push_min_interval: push %d at +%.6f s (commands at +0, +%.6f, "
		        "+%.6f)\n",
		        i + 1, t[i] - tq[0], tq[1] - tq[0], tq[2] - tq[0]);
	ck_assert_msg(n >= 1 && n <= 2, "%d pushes for 3 commands: want 1, and at most 1 more", n);
	ck_assert_msg(t[0] - tq[0] < 5.0, "the first push came %.3f s after the first command",
	        t[0] - tq[0]);
	if (n == 2)
		ck_assert_msg(t[1] - t[0] >= interval,
		        "the second push came %.6f s after the first (push_min_interval %.0f)",
		        t[1] - t[0], interval);
	/* The last push was claimed after the last command was queued: it covers them all. */
	ck_assert_msg(t[n - 1] >= tq[2],
	        "no push after the third command (last at %.6f, it at %.6f)", t[n - 1], tq[2]);
	e2e_assert_query("SELECT pending::text FROM mdm.push_status WHERE udid = $1 AND user_id IS "
	                 "NULL",
	        udid, "false");
	for (int i = 0; i < 3; i++)
		free(c[i]);
	free(tok);
}
END_TEST

START_TEST(two_daemons_no_duplicates)
{
	char out[400], *s, *n;
	int total, distinct;

	enroll_once();
	/*
	 * Every enrolled device of the stack that can be pushed (its topic's
	 * certificate imported: the enroll suite removes one) gets a command,
	 * so several pushes are due.
	 */
	n = e2e_query1("SELECT count(*)::text FROM (SELECT mdm.cmd_profile_list(udid) FROM "
	               "mdm.devices d WHERE enrolled AND channel = 'device' AND has_push_token "
	               "AND EXISTS (SELECT 1 FROM mdm.push_cert p WHERE p.topic = d.topic)) x",
	        NULL);
	ck_assert_int_ge(atoi(n), 1);
	ck_assert_int_eq(ts_sh("env " PUSHD_ENV " %s --once --id e2e-c >>%s/pushd.log 2>&1 & "
	                       "env " PUSHD_ENV " %s --once --id e2e-d >>%s/pushd.log 2>&1 & wait",
	                         getenv("E2E_PUSHD"), tmpdir, getenv("E2E_PUSHD"), tmpdir),
	        0);
	snprintf(out, sizeof(out), "%s/dups", tmpdir);
	ck_assert_int_eq(ts_sh("awk -F '\\t' '{ print $7 }' %s/requests.tsv | sort | "
	                       "awk '{ t++; if (!s[$1]++) d++ } END { print t+0, d+0 }' >%s",
	                         apns_dir, out),
	        0);
	s = ts_file_get(out, NULL);
	ck_assert_int_eq(sscanf(s, "%d %d", &total, &distinct), 2);
	ck_assert_msg(total == distinct && total == atoi(n),
	        "%d pushes for %d devices (%d distinct): duplicates or losses", total, atoi(n),
	        distinct);
	free(s);
	free(n);
}
END_TEST

/*
 * One connection, kept: a long-running daemon sends two rounds over the
 * connection it opened for the first; when the stand-in's Apache restarts
 * (graceful: idle connections are closed) the next round opens one new
 * connection, and nothing is lost.
 */
START_TEST(connection_kept_and_renewed)
{
	char *tok, log[400], *s;
	int conns[3] = {0, 0, 0}, n = 0;

	enroll_once();
	tok = token_hex();
	snprintf(log, sizeof(log), "%s/pushd-conn.log", tmpdir);
	ck_assert_int_eq(
	        ts_sh("rm -f %s; env " PUSHD_ENV " MDM_PUSH_SWEEP_SECONDS=60 %s --id e2e-l "
	              ">>%s 2>&1 & echo $! >%s/pushd-l.pid",
	                log, getenv("E2E_PUSHD"), log, tmpdir),
	        0);
	for (int round = 1; round <= 3; round++) {
		if (round == 3)
			ck_assert_int_eq(
			        ts_sh("/usr/sbin/apache2 -f %s/apache/httpd.conf -k graceful "
			              ">/dev/null 2>&1 && sleep 1",
			                apns_dir),
			        0);
		free(e2e_query1("SELECT mdm.cmd_profile_list($1)::text", udid));
		for (int i = 0; i < 100 && recorded(tok, "200") < round; i++)
			usleep(100000);
		ck_assert_int_eq(recorded(tok, "200"), round);
	}
	ck_assert_int_eq(
	        ts_sh("kill -TERM $(cat %s/pushd-l.pid); wait 2>/dev/null; sleep 0.5", tmpdir), 0);
	ck_assert_int_eq(recorded(tok, NULL), 3);
	s = ts_file_get(log, NULL);
	for (const char *p = s; n < 3 && (p = strstr(p, " new connection(s)")) != NULL; p++) {
		const char *q = p;
		while (q > s && q[-1] >= '0' && q[-1] <= '9')
			q--;
		conns[n++] = atoi(q);
	}
	ck_assert_msg(n == 3 && conns[0] == 1 && conns[1] == 0 && conns[2] == 1,
	        "new connections per round: %d %d %d (%d rounds logged; want 1 0 1): %s", conns[0],
	        conns[1], conns[2], n, log);
	free(s);
	free(tok);
}
END_TEST

START_TEST(restart_loses_nothing)
{
	char *tok;

	enroll_once();
	tok = token_hex();
	/* The daemon runs, stops (SIGTERM), a command is queued while it is down... */
	ck_assert_int_eq(ts_sh("env " PUSHD_ENV " %s --id e2e-e >>%s/pushd.log 2>&1 & p=$!; "
	                       "sleep 1; kill -TERM $p; wait $p",
	                         getenv("E2E_PUSHD"), tmpdir),
	        0);
	free(e2e_query1("SELECT mdm.cmd_profile_list($1)::text", udid));
	ck_assert_int_eq(recorded(tok, NULL), 0);
	/* ...and its first sweep after the restart pushes it. */
	ck_assert_int_eq(
	        ts_sh("env " PUSHD_ENV " %s --id e2e-f >>%s/pushd.log 2>&1 & p=$!; "
	              "i=0; until awk -F '\\t' '$7 == \"%s\"' %s/requests.tsv | grep -q .; "
	              "do i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1; done; "
	              "kill -TERM $p; wait $p",
	                getenv("E2E_PUSHD"), tmpdir, tok, apns_dir),
	        0);
	ck_assert_int_eq(recorded(tok, "200"), 1);
	free(tok);
}
END_TEST

START_TEST(bad_input_keeps_running)
{
	enroll_once();
	/* No token; an invalid token (3 bytes); a topic with no push certificate. */
	e2e_assert_query("WITH d AS (INSERT INTO mdm.device (udid) VALUES ('PUSH-BAD-1'), "
	                 "('PUSH-BAD-2'), ('PUSH-BAD-3') ON CONFLICT DO NOTHING RETURNING 1) "
	                 "SELECT count(*)::text FROM d",
	        NULL, "3");
	e2e_assert_query("WITH e AS (INSERT INTO mdm.enrollment (udid, topic, active, push_token, "
	                 "push_magic) VALUES ('PUSH-BAD-1', $1, true, NULL, 'm'), "
	                 "('PUSH-BAD-2', $1, true, decode('010203', 'hex'), 'm'), "
	                 "('PUSH-BAD-3', "
	                 "'com.apple.mgmt.External.00000000-0000-0000-0000-000000000000', true, "
	                 "decode(repeat('ab', 32), 'hex'), 'm') RETURNING 1) "
	                 "SELECT count(*)::text FROM e",
	        getenv("E2E_PUSH_TOPIC"), "3");
	free(e2e_query1(
	        "SELECT mdm.push(ARRAY['PUSH-BAD-1', 'PUSH-BAD-2', 'PUSH-BAD-3', $1])::text",
	        udid));
	/* The daemon records each, and still pushes the good device. */
	ck_assert_int_eq(pushd_once("e2e-g"), 0);
	e2e_assert_query(
	        "SELECT string_agg(udid || ':' || coalesce(last_reason, '-'), ',' ORDER BY "
	        "udid) FROM mdm.push_status WHERE udid LIKE 'PUSH-BAD-%'",
	        NULL,
	        "PUSH-BAD-1:NoPushToken,PUSH-BAD-2:InvalidPushToken,PUSH-BAD-3:NoPushCertificate");
	{
		char *tok = token_hex();
		ck_assert_int_eq(recorded(tok, "200"), 1);
		free(tok);
	}
}
END_TEST

START_TEST(apns_403_is_loud_and_slow)
{
	char *tok, *log;

	enroll_once();
	tok = token_hex();
	rule(tok, "403 1 BadCertificate");
	free(e2e_query1("SELECT mdm.cmd_profile_list($1)::text", udid));
	/* A long backoff ceiling, so that "later" is well after this test. */
	ck_assert_int_eq(ts_sh("env " PUSHD_ENV " MDM_PUSH_BACKOFF_MAX=600 %s --once --id e2e-h "
	                       ">>%s/pushd.log 2>&1",
	                         getenv("E2E_PUSHD"), tmpdir),
	        0);
	ck_assert_int_eq(recorded(tok, "403"), 1);
	/* Surfaced in SQL for the topic and the device; retried later, not now. */
	e2e_assert_query("SELECT last_status || '/' || last_reason || '/' || (errors > 0)::text "
	                 "FROM mdm.push_topics WHERE topic = $1",
	        getenv("E2E_PUSH_TOPIC"), "403/BadCertificate/true");
	e2e_assert_query("SELECT pending::text || '/' || (next_attempt_at > now())::text FROM "
	                 "mdm.push_status WHERE udid = $1 AND user_id IS NULL",
	        udid, "true/true");
	ck_assert_int_eq(pushd_once("e2e-h"), 0);
	ck_assert_int_eq(recorded(tok, NULL), 1);
	/* Loudly: an error line in the daemon's log names the status. */
	{
		char path[400];
		snprintf(path, sizeof(path), "%s/pushd.log", tmpdir);
		log = ts_file_get(path, NULL);
		ck_assert_msg(strstr(log, "level=error") != NULL && strstr(log, "403") != NULL,
		        "no error line for the 403 in %s", path);
		free(log);
	}
	free(tok);
}
END_TEST

/*
 * An expired push certificate for a second topic: nothing is sent with
 * it, the reason is in SQL, and the daemon goes on.
 */
START_TEST(expired_push_certificate)
{
	char dir[400];
	const char *issuer = getenv("E2E_PUSH_ISSUER");
	const char *topic = "com.apple.mgmt.External.0e0e0e0e-0000-4000-8000-000000000001";

	enroll_once();
	snprintf(dir, sizeof(dir), "%s/expired", tmpdir);
	ck_assert_int_eq(
	        ts_sh("rm -rf %s && mkdir -p %s && cd %s && touch index.txt && echo 01 >serial && "
	              "printf '[ca]\ndefault_ca=x\n[x]\ndatabase=index.txt\nnew_certs_dir=.\n"
	              "serial=serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\n"
	              "UID=optional\ncommonName=supplied\ncountryName=optional\n' >ca.cnf && "
	              "openssl req -new -newkey rsa:2048 -nodes -keyout key.pem -subj "
	              "'/UID=%s/CN=APSP:expired/C=US' -out req.csr 2>/dev/null && "
	              "openssl ca -batch -config ca.cnf -cert %s -keyfile %.*s.key -startdate "
	              "20200101000000Z -enddate 20200201000000Z -in req.csr -out cert.pem -notext "
	              "-preserveDN >ca.log 2>&1 && %s/mdmctl push-cert import --cert cert.pem "
	              "--key "
	              "key.pem >import.log 2>&1",
	                dir, dir, dir, topic, issuer, (int)strlen(issuer) - 4, issuer,
	                getenv("E2E_MDMCTL_DIR")),
	        0);
	e2e_assert_query(
	        "SELECT cert_expired::text FROM mdm.push_topics WHERE topic = $1", topic, "true");
	e2e_assert_query("WITH d AS (INSERT INTO mdm.device (udid) VALUES ('PUSH-EXPIRED') ON "
	                 "CONFLICT DO NOTHING RETURNING 1) SELECT count(*)::text FROM d",
	        NULL, "1");
	e2e_assert_query("WITH e AS (INSERT INTO mdm.enrollment (udid, topic, active, push_token, "
	                 "push_magic) VALUES ('PUSH-EXPIRED', $1, true, decode(repeat('cd', 32), "
	                 "'hex'), 'm') RETURNING 1) SELECT count(*)::text FROM e",
	        topic, "1");
	free(e2e_query1("SELECT mdm.push('PUSH-EXPIRED')::text", NULL));
	ck_assert_int_eq(pushd_once("e2e-i"), 0);
	e2e_assert_query("SELECT last_reason FROM mdm.push_status WHERE udid = 'PUSH-EXPIRED'",
	        NULL, "PushCertificateExpired");
	e2e_assert_query("SELECT last_reason FROM mdm.push_topics WHERE topic = $1", topic,
	        "PushCertificateExpired");
	ck_assert_int_eq(
	        recorded("cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", NULL),
	        0);
	/* enroll.fcgi serves one topic: take the expired one out again. */
	free(e2e_query1("WITH x AS (DELETE FROM mdm.push_cert WHERE topic = $1 RETURNING 1) "
	                "SELECT count(*)::text FROM x",
	        topic));
}
END_TEST

Suite *push_e2e_suite(void)
{
	const char *base;

	apns_dir = getenv("E2E_APNS_DIR");
	e2e_stack(&base, &tls_ca, NULL);
	e2e_tmpdir(tmpdir, sizeof(tmpdir), "push");
	snprintf(devdir, sizeof(devdir), "%s/device", tmpdir);
	snprintf(udid, sizeof(udid), "PUSH-DEVICE-1");
	snprintf(server_url, sizeof(server_url), "%s/mdm/server", base ? base : "");
	snprintf(checkin_url, sizeof(checkin_url), "%s/mdm/checkin", base ? base : "");
	return ts_suite("push-e2e", "pushd", 120, push_reaches_device,
	        unregistered_until_token_update, retry_with_backoff, min_interval_spaces_pushes,
	        two_daemons_no_duplicates, connection_kept_and_renewed, restart_loses_nothing,
	        bad_input_keeps_running, apns_403_is_loud_and_slow, expired_push_certificate);
}
