/*
 * Events end to end: a device's check-ins and its answer to a command go
 * through Apache to checkin.fcgi and server.fcgi, their triggers write
 * the outbox, bin/mdm-eventd (its real code path, only pointed at a local
 * URL) POSTs them to tests/events/receiver.py, which stands in for the
 * operator's system: it checks each X-MDM-Signature with Python's own
 * hmac, records what it got, and can be told to fail.  Then 500s retried
 * with backoff, the receiver down (connection refused) with the daemon
 * killed and restarted meanwhile, and nothing lost, two daemons without
 * duplicates, and the configurations the daemon refuses.
 *
 * Runs in proxy mode only: the daemon does not depend on how Apache runs
 * the FastCGI programs.  Environment: E2E_EVENTD (the daemon),
 * E2E_EVENTS_RECEIVER (receiver.py), plus what push_e2e.c uses.
 */
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Suite *events_e2e_suite(void);

static char tmpdir[256], devdir[300], rdir[300], secret[320], udid[64], server_url[512],
        checkin_url[512];
static const char *tls_ca;

/* The daemon's environment: the receiver, short timings for tests. */
#define EVENTD_ENV                                                                                 \
	"MDM_WEBHOOK_SECRET_FILE='%s' MDM_WEBHOOK_BACKOFF_MIN=1 MDM_WEBHOOK_BACKOFF_MAX=2 "        \
	"MDM_WEBHOOK_TIMEOUT=5 MDM_LOG_LEVEL=info"

static int port;

static void receiver_start(int at_port)
{
	char path[400], *s;

	snprintf(path, sizeof(path), "%s/port", rdir);
	unlink(path);
	ck_assert_int_eq(
	        ts_sh("python3 %s %s %s %d >>%s/receiver.log 2>&1 & echo $! >%s/receiver.pid",
	                getenv("E2E_EVENTS_RECEIVER"), rdir, secret, at_port, tmpdir, tmpdir),
	        0);
	for (int i = 0; i < 100 && access(path, R_OK) != 0; i++)
		usleep(50000);
	s = ts_file_get(path, NULL);
	port = atoi(s);
	free(s);
	ck_assert_int_gt(port, 0);
}

static void receiver_stop(void)
{
	ck_assert_int_eq(ts_sh("[ ! -s %s/receiver.pid ] || { kill $(cat %s/receiver.pid) "
	                       "2>/dev/null; while kill -0 $(cat %s/receiver.pid) 2>/dev/null; do "
	                       "sleep 0.05; done; rm -f %s/receiver.pid; }",
	                         tmpdir, tmpdir, tmpdir, tmpdir),
	        0);
}

/* Starts a daemon in the background, its pid in tmpdir/eventd-ID.pid. */
static void eventd_start(const char *id)
{
	ck_assert_int_eq(ts_sh("env MDM_WEBHOOK_URL=http://127.0.0.1:%d/hook " EVENTD_ENV
	                       " %s --id %s >>%s/eventd.log 2>&1 & echo $! >%s/eventd-%s.pid",
	                         port, secret, getenv("E2E_EVENTD"), id, tmpdir, tmpdir, id),
	        0);
}

static void eventd_stop(const char *id, const char *sig)
{
	ck_assert_int_eq(ts_sh("p=$(cat %s/eventd-%s.pid) && kill -%s $p && while kill -0 $p "
	                       "2>/dev/null; do sleep 0.05; done; rm -f %s/eventd-%s.pid",
	                         tmpdir, id, sig, tmpdir, id),
	        0);
}

static void setup(void)
{
	/* The shared secret, made once (openssl, as README.md suggests), owner-only. */
	ck_assert_int_eq(
	        ts_sh("[ -s %s ] || { umask 077 && openssl rand -hex 32 >%s; }", secret, secret),
	        0);
	ck_assert_int_eq(
	        ts_sh("mkdir -p %s && rm -f %s/received.jsonl %s/fail", rdir, rdir, rdir), 0);
	receiver_start(0);
}

/* Whatever a failed check left running, by the pids this suite wrote. */
static void teardown(void)
{
	(void)ts_sh("for f in %s/eventd-*.pid %s/receiver.pid; do [ -s \"$f\" ] && kill -9 "
	            "$(cat \"$f\") 2>/dev/null; rm -f \"$f\"; done; true",
	        tmpdir, tmpdir);
}

static void enroll_once(void)
{
	if (!e2e_devsim_enrolled(udid, 1))
		e2e_devsim_enroll(devdir, udid, "scepclient", tmpdir);
	free(e2e_query1("SELECT mdm.queue_clear($1)::text", udid));
}

/* The largest event id so far: the tests look at what comes after. */
static long long last_event(void)
{
	char *s = e2e_query1("SELECT coalesce(max(id), 0)::text FROM mdm.event_outbox", NULL);
	long long n = atoll(s);

	free(s);
	return n;
}

/* One TokenUpdate from the device, through Apache. */
static void token_update(void)
{
	char tu[400];

	snprintf(tu, sizeof(tu), "%s/tokenupdate.plist", devdir);
	ck_assert_int_eq(e2e_device_put(devdir, checkin_url, tu,
	                         "application/x-apple-aspen-mdm-checkin", NULL),
	        200);
}

/* The count sql gives (its one value) with one bigint parameter. */
static int count_since(const char *sql, long long since)
{
	char p[32], *s;
	int n;

	snprintf(p, sizeof(p), "%lld", since);
	s = e2e_query1(sql, p);
	n = atoi(s);
	free(s);
	return n;
}

/* Waits until every event after since is delivered; how many there are. */
static int wait_delivered(long long since, int want, double seconds)
{
	int n = 0;

	for (int i = 0; i < (int)(seconds * 10); i++) {
		n = count_since(
		        "SELECT count(*)::text FROM mdm.event_outbox WHERE id > $1::bigint AND "
		        "delivered_at IS NOT NULL",
		        since);
		if (n >= want &&
		        count_since("SELECT count(*)::text FROM mdm.event_outbox WHERE id > "
		                    "$1::bigint AND delivered_at IS NULL",
		                since) == 0)
			break;
		usleep(100000);
	}
	return n;
}

/* The receiver's summary (receiver.py summary) into tmpdir/summary; its text, malloc'd. */
static char *summary(void)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/summary", tmpdir);
	ck_assert_int_eq(
	        ts_sh("python3 %s summary %s >%s", getenv("E2E_EVENTS_RECEIVER"), rdir, path), 0);
	return ts_file_get(path, NULL);
}

/* An awk program's one number over the summary (fields: receiver.py summary). */
static int summary_count(const char *awk, long long since)
{
	char out[400], *s;
	int n;

	snprintf(out, sizeof(out), "%s/count", tmpdir);
	free(summary());
	ck_assert_int_eq(ts_sh("awk -F '\\t' -v since=%lld '$1 > since && (%s) { n++ } END { print "
	                       "n+0 }' %s/summary >%s",
	                         since, awk, tmpdir, out),
	        0);
	s = ts_file_get(out, NULL);
	n = atoi(s);
	free(s);
	return n;
}

START_TEST(checkin_and_result_delivered_signed)
{
	long long since;
	char *uuid, body[400], reply[400], *line;

	enroll_once();
	eventd_start("a");
	/* The daemon turns recording on at start. */
	for (int i = 0; i < 100; i++) {
		char *on = e2e_query1("SELECT enabled::text FROM mdm.event_config", NULL);
		int done = strcmp(on, "true") == 0;
		free(on);
		if (done)
			break;
		usleep(50000);
	}
	e2e_assert_query("SELECT enabled::text FROM mdm.event_config", NULL, "true");
	since = last_event();
	/* A TokenUpdate, then a command fetched and answered, all through Apache. */
	token_update();
	uuid = e2e_query1("SELECT upper(mdm.cmd_profile_list($1)::text)", udid);
	snprintf(body, sizeof(body), "%s/idle.plist", tmpdir);
	snprintf(reply, sizeof(reply), "%s/idle.reply", tmpdir);
	e2e_idle_plist(body, udid);
	ck_assert_int_eq(e2e_device_put(devdir, server_url, body, NULL, reply), 200);
	snprintf(body, sizeof(body), "%s/ack.plist", tmpdir);
	ts_file_put(body,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
	        "<key>CommandUUID</key><string>%s</string><key>ProfileList</key><array/>"
	        "<key>Status</key><string>Acknowledged</string><key>UDID</key><string>%s</string>"
	        "</dict></plist>\n",
	        uuid, udid);
	ck_assert_int_eq(e2e_device_put(devdir, server_url, body, NULL, reply), 200);
	ck_assert_int_eq(wait_delivered(since, 2, 20), 2);
	eventd_stop("a", "TERM");
	/* Each event arrived once, signed, and is what the database holds. */
	ck_assert_int_eq(summary_count("$2 == 1 && $3 == 204 && $1 == $4 && $8 == 1", since), 2);
	ck_assert_int_eq(summary_count("1", since), 2);
	line = summary();
	{
		char want[512];
		snprintf(want, sizeof(want), "\tmdm.TokenUpdate\t%s\tTokenUpdate\t1\t1\t", udid);
		ck_assert_msg(strstr(line, want) != NULL, "no TokenUpdate event in %s", line);
		snprintf(want, sizeof(want),
		        "\tmdm.Connect\t%s\t%s/Acknowledged/ProfileList\t1\t1\t", udid, uuid);
		ck_assert_msg(
		        strstr(line, want) != NULL, "no result event for %s in %s", uuid, line);
	}
	free(line);
	/* The JSON posted is the row's, byte for byte after parsing; the headers as documented. */
	ck_assert_int_eq(
	        ts_sh("python3 -c 'import json,sys\n"
	              "for l in open(sys.argv[1]):\n"
	              "  r = json.loads(l)\n"
	              "  assert r[\"method\"] == \"POST\" and r[\"path\"] == \"/hook\", r\n"
	              "  assert r[\"content_type\"] == \"application/json\", r\n"
	              "  assert r[\"attempt\"] == \"1\" and int(r[\"ts\"]) > 0, r\n"
	              "  print(r[\"event_id\"], json.dumps(r[\"body\"], sort_keys=True))' "
	              "%s/received.jsonl | sort >%s/got && psql \"$MDM_DB\" -XAtq -c "
	              "\"SELECT id || ' ' || payload::text FROM mdm.event_outbox WHERE id > "
	              "%lld\" | python3 -c 'import json,sys\n"
	              "for l in sys.stdin:\n"
	              "  i, b = l.split(\" \", 1)\n"
	              "  print(i, json.dumps(json.loads(b), sort_keys=True))' | sort >%s/want "
	              "&& cmp %s/got %s/want",
	                rdir, tmpdir, since, tmpdir, tmpdir, tmpdir),
	        0);
	/* The raw payload of the TokenUpdate is the stored body, its secrets redacted. */
	ck_assert_int_eq(
	        count_since("SELECT count(DISTINCT o.id)::text FROM mdm.event_outbox o JOIN "
	                    "mdm.checkin c ON o.payload->'checkin_event'->>'raw_payload' = "
	                    "mdm.event_b64(c.body) WHERE o.id > $1::bigint AND "
	                    "c.message_type = 'TokenUpdate' AND convert_from(c.body, "
	                    "'UTF8') LIKE '%(redacted)%'",
	                since),
	        1);
	free(uuid);
}
END_TEST

START_TEST(failures_retried_with_backoff)
{
	long long since;
	char path[400], *s;
	double t[8];
	int n = 0;

	enroll_once();
	since = last_event();
	snprintf(path, sizeof(path), "%s/fail", rdir);
	ts_file_put(path, "3 500\n");
	eventd_start("b");
	token_update();
	ck_assert_int_eq(wait_delivered(since, 1, 30), 1);
	eventd_stop("b", "TERM");
	/* Three 500s, then delivered: four POSTs, each signed, counted in the row. */
	ck_assert_int_eq(summary_count("$3 == 500 && $2 == 1", since), 3);
	ck_assert_int_eq(summary_count("$3 == 204 && $2 == 1", since), 1);
	ck_assert_int_eq(count_since("SELECT count(*)::text FROM mdm.event_outbox WHERE id > "
	                             "$1::bigint AND last_status = 204 AND last_error IS NULL AND "
	                             "delivered_at IS NOT NULL",
	                         since),
	        1);
	ck_assert_int_eq(count_since("SELECT attempts::text FROM mdm.event_outbox WHERE id > "
	                             "$1::bigint",
	                         since),
	        4);
	/* The attempts numbered 1..4 in their header, spaced by the backoff (1 s, then 2 s: */
	/* each drawn between half and all). */
	s = summary();
	{
		const char *p = s;
		char line[1024];
		int used;
		while (n < 8 && sscanf(p, "%1023[^\n]\n%n", line, &used) == 1) {
			char *f[10];
			int k = 0;
			for (char *tok = strtok(line, "\t"); tok != NULL && k < 10;
			        tok = strtok(NULL, "\t"))
				f[k++] = tok;
			if (k == 10 && atoll(f[0]) > since) {
				ck_assert_int_eq(atoi(f[8]), n + 1);
				t[n++] = atof(f[9]);
			}
			p += used;
		}
	}
	ck_assert_int_eq(n, 4);
	ck_assert_msg(t[1] - t[0] >= 0.45 && t[2] - t[1] >= 0.95 && t[3] - t[2] >= 0.95,
	        "retries not spaced by the backoff: %.3f %.3f %.3f (%s)", t[1] - t[0], t[2] - t[1],
	        t[3] - t[2], s);
	free(s);
}
END_TEST

START_TEST(receiver_down_daemon_restarted_loses_nothing)
{
	long long since;
	int total;

	enroll_once();
	since = last_event();
	/* The receiver goes away: connections are refused. */
	receiver_stop();
	eventd_start("c");
	for (int i = 0; i < 5; i++)
		token_update();
	/* The daemon tried and failed (no answer: status 0)... */
	for (int i = 0; i < 100 &&
	        count_since("SELECT count(*)::text FROM mdm.event_outbox WHERE "
	                    "id > $1::bigint AND last_status = 0",
	                since) == 0;
	        i++)
		usleep(100000);
	ck_assert_int_ge(
	        count_since("SELECT count(*)::text FROM mdm.event_outbox WHERE id > "
	                    "$1::bigint AND last_status = 0 AND last_error LIKE 'network:%'",
	                since),
	        1);
	/*
	 * An outage costs one attempt per backoff (1 s doubling to 2 s, from
	 * half of each), not one per event: five events, two seconds, at most
	 * four attempts in all.
	 */
	usleep(2000000);
	ck_assert_int_le(count_since("SELECT sum(attempts)::text FROM mdm.event_outbox WHERE id > "
	                             "$1::bigint",
	                         since),
	        4);
	/*
	 * ...and is killed outright while it waits between attempts (stopped
	 * first, and let go on while a round holds claims: their lease would
	 * only delay them, and this test is about losing nothing).
	 */
	for (int i = 0; i < 100; i++) {
		int held;
		ck_assert_int_eq(ts_sh("kill -STOP $(cat %s/eventd-c.pid)", tmpdir), 0);
		held = count_since(
		        "SELECT count(*)::text FROM mdm.event_outbox WHERE id > $1::bigint "
		        "AND claimed_by IS NOT NULL",
		        since);
		if (held == 0)
			break;
		ck_assert_int_eq(ts_sh("kill -CONT $(cat %s/eventd-c.pid); sleep 0.05", tmpdir), 0);
	}
	eventd_stop("c", "KILL");
	for (int i = 0; i < 3; i++)
		token_update();
	ck_assert_int_eq(count_since("SELECT count(*)::text FROM mdm.event_outbox WHERE id > "
	                             "$1::bigint AND delivered_at IS NULL",
	                         since),
	        8);
	/* The receiver is back on its port, a new daemon starts: every event arrives. */
	receiver_start(port);
	eventd_start("d");
	total = wait_delivered(since, 8, 30);
	eventd_stop("d", "TERM");
	ck_assert_int_eq(total, 8);
	ck_assert_int_eq(summary_count("$2 == 1 && $3 == 204", since), 8);
	/* Each once: no event delivered twice. */
	{
		char out[400], *s;
		snprintf(out, sizeof(out), "%s/dups", tmpdir);
		ck_assert_int_eq(
		        ts_sh("awk -F '\\t' -v since=%lld '$1 > since && $3 == 204 { print "
		              "$1 }' %s/summary | sort | uniq -d | wc -l >%s",
		                since, tmpdir, out),
		        0);
		s = ts_file_get(out, NULL);
		ck_assert_int_eq(atoi(s), 0);
		free(s);
	}
}
END_TEST

START_TEST(two_daemons_no_duplicates)
{
	long long since;
	char out[400], *s;
	int total, distinct;

	enroll_once();
	since = last_event();
	/* Turned on already by the tests before; 20 events wait. */
	for (int i = 0; i < 20; i++)
		token_update();
	ck_assert_int_eq(
	        ts_sh("for id in e f; do env MDM_WEBHOOK_URL=http://127.0.0.1:%d/hook " EVENTD_ENV
	              " %s --once --id $id >>%s/eventd.log 2>&1 & done; wait",
	                port, secret, getenv("E2E_EVENTD"), tmpdir),
	        0);
	ck_assert_int_eq(wait_delivered(since, 20, 10), 20);
	free(summary());
	snprintf(out, sizeof(out), "%s/dups", tmpdir);
	ck_assert_int_eq(ts_sh("awk -F '\\t' -v since=%lld '$1 > since { print $1 }' %s/summary | "
	                       "sort | awk '{ t++; if (!s[$1]++) d++ } END { print t+0, d+0 }' >%s",
	                         since, tmpdir, out),
	        0);
	s = ts_file_get(out, NULL);
	ck_assert_int_eq(sscanf(s, "%d %d", &total, &distinct), 2);
	ck_assert_msg(total == 20 && distinct == 20, "%d POSTs of %d distinct events for 20", total,
	        distinct);
	/* Both daemons took part or one did all: either way every claim was its own. */
	ck_assert_int_eq(count_since("SELECT count(*)::text FROM mdm.event_outbox WHERE id > "
	                             "$1::bigint AND attempts <> 1",
	                         since),
	        0);
	free(s);
}
END_TEST

START_TEST(bad_configuration_refused)
{
	char log[400], *s, *sec;
	const char *d = getenv("E2E_EVENTD");

	snprintf(log, sizeof(log), "%s/refused.log", tmpdir);
	/* No URL; a URL of another scheme; a secret file others may read; a short secret. */
	ck_assert_int_eq(ts_sh("env -u MDM_WEBHOOK_URL MDM_WEBHOOK_SECRET_FILE=%s %s --once >%s "
	                       "2>&1; [ $? -eq 1 ] && grep -q 'webhook_url is required' %s",
	                         secret, d, log, log),
	        0);
	ck_assert_int_eq(ts_sh("env MDM_WEBHOOK_URL=ftp://127.0.0.1/ MDM_WEBHOOK_SECRET_FILE=%s %s "
	                       "--once >%s 2>&1; [ $? -eq 1 ] && grep -q 'webhook_url must be' %s",
	                         secret, d, log, log),
	        0);
	ck_assert_int_eq(
	        ts_sh("cp %s %s.open && chmod 644 %s.open && env "
	              "MDM_WEBHOOK_URL=http://127.0.0.1:%d/ MDM_WEBHOOK_SECRET_FILE=%s.open "
	              "%s --once >%s 2>&1; [ $? -eq 1 ] && grep -q 'read or written by "
	              "others' %s",
	                secret, secret, secret, port, secret, d, log, log),
	        0);
	ck_assert_int_eq(
	        ts_sh("printf short >%s.short && chmod 600 %s.short && env "
	              "MDM_WEBHOOK_URL=http://127.0.0.1:%d/ MDM_WEBHOOK_SECRET_FILE=%s.short "
	              "%s --once >%s 2>&1; [ $? -eq 1 ] && grep -q 'must be 16 to 4096' %s",
	                secret, secret, port, secret, d, log, log),
	        0);
	/* The secret is in no log the daemon wrote. */
	snprintf(log, sizeof(log), "%s/eventd.log", tmpdir);
	sec = ts_file_get(secret, NULL);
	sec[strcspn(sec, "\n")] = '\0';
	s = ts_file_get(log, NULL);
	ck_assert_ptr_null(strstr(s, sec));
	free(s);
	free(sec);
}
END_TEST

START_TEST(events_off_again)
{
	long long since;

	enroll_once();
	e2e_assert_query("SELECT mdm.events_enable(false)::text", NULL, "false");
	since = last_event();
	token_update();
	ck_assert_int_eq(count_since("SELECT count(*)::text FROM mdm.event_outbox WHERE id > "
	                             "$1::bigint",
	                         since),
	        0);
}
END_TEST

Suite *events_e2e_suite(void)
{
	const char *base;
	Suite *s = suite_create("events-e2e");
	TCase *tc;

	e2e_stack(&base, &tls_ca, NULL);
	e2e_tmpdir(tmpdir, sizeof(tmpdir), "events");
	snprintf(devdir, sizeof(devdir), "%s/device", tmpdir);
	snprintf(rdir, sizeof(rdir), "%s/receiver", tmpdir);
	snprintf(secret, sizeof(secret), "%s/webhook.secret", tmpdir);
	snprintf(udid, sizeof(udid), "EVENTS-DEVICE-1");
	snprintf(server_url, sizeof(server_url), "%s/mdm/server", base ? base : "");
	snprintf(checkin_url, sizeof(checkin_url), "%s/mdm/checkin", base ? base : "");
	tc = ts_tcase(s, "eventd", 120, setup, teardown);
	ts_add_tests(tc, checkin_and_result_delivered_signed, failures_retried_with_backoff,
	        receiver_down_daemon_restarted_loses_nothing, two_daemons_no_duplicates,
	        bad_configuration_refused, events_off_again);
	return s;
}
