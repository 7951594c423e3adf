/*
 * The command channel end to end, through the real Apache and the
 * stack's PostgreSQL: a device enrolled by tests/e2e/devsim.sh, commands
 * queued with the admin SQL API, fetched by Idle and answered with the
 * real device answers in ../shared/vectors (Acknowledged, NotNow, Error);
 * then the failures a queue must survive: a worker killed in the middle
 * of a request (mod_fcgid mode, which restarts workers), PostgreSQL
 * restarted in the middle of one, and two connections of one device at
 * once.  No command may be lost or delivered again after it finished.
 *
 * Environment: as checkin_e2e.c, plus E2E_PGCTL (pg_ctl command prefix)
 * and MDM_VECTORS (optional: without it the answers are minimal).
 */
#include "db.h"
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"
#include "errors.h"
#include "plist.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Suite *command_e2e_suite(void);

static char tmpdir[256], devdir[300], server_url[512], udid[64];
static const char *tls_ca, *mode;
/*
 * Enrolls this suite's device once (devsim: profile, SCEP, Authenticate,
 * TokenUpdate); each test runs in its own process, so "once" is read
 * from the database.
 */
static void enroll_once(void)
{
	if (e2e_devsim_enrolled(udid, 0)) {
		/* A clean queue for each test, whatever the one before left. */
		free(e2e_query1("SELECT mdm.queue_clear($1)::text", udid));
		return;
	}
	e2e_devsim_enroll(devdir, udid, e2e_legacy() ? "scepclient" : "certmonger", tmpdir);
}

/* PUT a report file as the device (TLS identity); the HTTP status; the reply in reply. */
static int put(const char *body, const char *reply)
{
	return e2e_device_put(devdir, server_url, body, NULL, reply);
}

/*
 * Writes a report: the real answer at vectors/vec when given (its UDID and
 * CommandUUID replaced by ours), else a minimal one.
 */
static void report_write(const char *path, const char *status, const char *uuid, const char *vec)
{
	const char *root = getenv("MDM_VECTORS");
	plist *p = NULL;
	char *xml = NULL, vpath[1024];
	size_t len;

	if (vec != NULL && root != NULL) {
		char *src;
		snprintf(vpath, sizeof(vpath), "%s/%s", root, vec);
		if (access(vpath, R_OK) == 0) {
			src = ts_file_get(vpath, &len);
			ck_assert_int_eq(plist_parse(src, len, &p), MDM_OK);
			free(src);
		}
	}
	if (p == NULL)
		ck_assert_ptr_nonnull(p = plist_new_dict());
	ck_assert_int_eq(plist_dict_set(p, "Status", plist_new_string(status)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(p, "UDID", plist_new_string(udid)), MDM_OK);
	if (uuid != NULL)
		ck_assert_int_eq(plist_dict_set(p, "CommandUUID", plist_new_string(uuid)), MDM_OK);
	ck_assert_int_eq(plist_serialize(p, &xml, &len), MDM_OK);
	ts_file_put(path, "%s", xml);
	free(xml);
	plist_free(p);
}

/*
 * One exchange: sends status (for uuid), expects 200, returns the
 * CommandUUID and RequestType of the command in the reply ("" if none).
 */
static void exchange(const char *status, const char *uuid, const char *vec, char *next, char *type)
{
	char body[400], reply[400];
	plist *p = NULL;
	char *s;
	size_t len;
	int code;

	snprintf(body, sizeof(body), "%s/report.plist", tmpdir);
	snprintf(reply, sizeof(reply), "%s/reply.plist", tmpdir);
	report_write(body, status, uuid, vec);
	code = put(body, reply);
	s = ts_file_get(reply, &len);
	ck_assert_msg(code == 200, "%s %s: HTTP %d %.300s", status, uuid ? uuid : "", code, s);
	next[0] = type[0] = '\0';
	if (len > 0) {
		const plist *cmd;
		ck_assert_msg(plist_parse(s, len, &p) == MDM_OK, "reply is not a plist: %.300s", s);
		snprintf(next, 129, "%s", plist_dict_get_string0(p, "CommandUUID"));
		ck_assert_ptr_nonnull(cmd = plist_dict_get0(p, "Command"));
		ck_assert_ptr_nonnull(plist_dict_get_string0(cmd, "RequestType"));
		snprintf(type, 129, "%s", plist_dict_get_string0(cmd, "RequestType"));
		plist_free(p);
	}
	free(s);
}

/* Expects the command uuid (of type) next; "" for none. */
static void expect(const char *status, const char *uuid, const char *vec, const char *want_uuid,
        const char *want_type)
{
	char next[129], type[129];

	exchange(status, uuid, vec, next, type);
	ck_assert_msg(strcmp(next, want_uuid) == 0, "after %s %s: got %s (%s), want %s (%s)",
	        status, uuid ? uuid : "", next[0] ? next : "nothing", type,
	        want_uuid[0] ? want_uuid : "nothing", want_type);
	if (want_type != NULL)
		ck_assert_str_eq(type, want_type);
}

static char *enqueue(const char *sql)
{
	return e2e_query1(sql, udid);
}

START_TEST(builders_in_order)
{
	static const struct {
		const char *sql, *type, *status, *vec;
	} c[] = {
	        {"SELECT upper(mdm.cmd_device_information($1)::text)", "DeviceInformation",
	                "Acknowledged", "commandment/testdata/DeviceInformation/iOS-11.3.1.xml"},
	        {"SELECT upper(mdm.cmd_security_info($1)::text)", "SecurityInfo", "Acknowledged",
	                "commandment/testdata/SecurityInfo/iOS-11.3.1.xml"},
	        {"SELECT upper(mdm.cmd_profile_list($1)::text)", "ProfileList", "Acknowledged",
	                "commandment/testdata/ProfileList/iOS-11.3.1.xml"},
	        {"SELECT upper(mdm.cmd_installed_application_list($1)::text)",
	                "InstalledApplicationList", "Acknowledged",
	                "commandment/testdata/InstalledApplicationList/iOS-12.1.xml"},
	        {"SELECT upper(mdm.cmd_certificate_list($1)::text)", "CertificateList",
	                "Acknowledged", "commandment/testdata/CertificateList/10.11.x.xml"},
	        {"SELECT upper(mdm.cmd_install_profile($1, convert_to('<plist "
	         "version=\"1.0\"><dict/>"
	         "</plist>', 'UTF8'))::text)",
	                "InstallProfile", "NotNow", "commandment/testdata/NotNow/iOS-11.3.1.xml"},
	        {"SELECT upper(mdm.cmd_remove_profile($1, 'com.example.<&>\"''')::text)",
	                "RemoveProfile", "Error",
	                "commandment/testdata/Errors/iOS-11.3.1-RemoveProfile-Unmanaged.xml"},
	        {"SELECT upper(mdm.cmd_device_lock($1, '123456', 'Lost? Call <&> \"us\"')::text)",
	                "DeviceLock", "Acknowledged",
	                "commandment/testdata/DeviceLock/iOS-11.3.1.xml"},
	        {"SELECT upper(mdm.cmd_erase_device($1)::text)", "EraseDevice", "Acknowledged",
	                NULL},
	        {"SELECT upper(mdm.cmd_restart_device($1)::text)", "RestartDevice", "Acknowledged",
	                NULL},
	};
	enum { N = sizeof(c) / sizeof(c[0]) };
	char *uuid[N];
	int i;

	enroll_once();
	if (getenv("MDM_VECTORS") == NULL)
		printf("command-e2e: MDM_VECTORS unset: minimal answers instead of the real "
		       "ones\n");
	for (i = 0; i < N; i++)
		uuid[i] = enqueue(c[i].sql);
	e2e_assert_query("SELECT count(*)::text FROM mdm.queue WHERE udid = $1", udid, "10");
	/* Idle gets the oldest; each answer gets the next; NotNow skips to the next. */
	expect("Idle", NULL, NULL, uuid[0], c[0].type);
	for (i = 0; i < N; i++)
		expect(c[i].status, uuid[i], c[i].vec, i + 1 < N ? uuid[i + 1] : "",
		        i + 1 < N ? c[i + 1].type : NULL);
	/* The next connection: the command answered NotNow, and nothing after it. */
	expect("Idle", NULL, NULL, uuid[5], "InstallProfile");
	expect("Acknowledged", uuid[5], NULL, "", NULL);
	expect("Idle", NULL, NULL, "", NULL);
	/* Everything readable in SQL. */
	e2e_assert_query("SELECT count(*)::text FROM mdm.queue WHERE udid = $1", udid, "0");
	e2e_assert_query("SELECT string_agg(status, ',' ORDER BY received_at, status) FROM "
	                 "mdm.command_results WHERE udid = $1 AND request_type = 'InstallProfile'",
	        udid, "NotNow,Acknowledged");
	e2e_assert_query("SELECT status FROM mdm.command_results WHERE udid = $1 AND "
	                 "request_type = 'RemoveProfile'",
	        udid, "Error");
	/* Only the real answers carry an ErrorChain, an OSVersion, a ProfileList. */
	if (getenv("MDM_VECTORS") == NULL) {
		printf("command-e2e: MDM_VECTORS unset: ErrorChain, QueryResponses and "
		       "ProfileList of the real answers not checked\n");
	} else {
		e2e_assert_query("SELECT (error_chain IS NOT NULL)::text FROM mdm.command_results "
		                 "WHERE udid = $1 AND request_type = 'RemoveProfile'",
		        udid, "true");
		e2e_assert_query(
		        "SELECT (result_json->'QueryResponses'->>'OSVersion' IS NOT NULL)::text "
		        "FROM mdm.command_results WHERE udid = $1 AND "
		        "request_type = 'DeviceInformation'",
		        udid, "true");
		e2e_assert_query(
		        "SELECT (jsonb_array_length(result_json->'ProfileList') > 0)::text "
		        "FROM mdm.command_results WHERE udid = $1 AND "
		        "request_type = 'ProfileList'",
		        udid, "true");
	}
	for (i = 0; i < N; i++)
		free(uuid[i]);
}
END_TEST

/* Holds the device's enrollment row so that its next request blocks in PostgreSQL. */
static db *lock_enrollment(void)
{
	const char *p[1] = {udid};
	db *d = NULL;

	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e-lock", &d), MDM_OK);
	ck_assert_int_eq(db_exec(d, "BEGIN", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(db_exec(d,
	                         "SELECT 1 FROM mdm.enrollment WHERE udid = $1 AND user_id IS NULL "
	                         "FOR UPDATE",
	                         1, p, NULL),
	        MDM_OK);
	return d;
}

/* Starts an Idle in the background and waits until it blocks on the lock. */
static void idle_in_background(const char *reply)
{
	char body[400], *n = NULL;
	int i;

	snprintf(body, sizeof(body), "%s/idle-bg.plist", tmpdir);
	report_write(body, "Idle", NULL, NULL);
	ck_assert_int_eq(ts_sh("(curl -sS --cacert %s --cert %s/cert.pem --key %s/key.pem -X PUT "
	                       "--max-time 60 --data-binary @%s -o %s -w '%%{http_code}' '%s' "
	                       ">%s.code 2>/dev/null; touch %s.done) &",
	                         tls_ca, devdir, devdir, body, reply, server_url, reply, reply),
	        0);
	for (i = 0; i < 100; i++) {
		n = e2e_query1(
		        "SELECT count(*)::text FROM pg_stat_activity WHERE wait_event_type = "
		        "'Lock' AND datname = current_database() AND pid <> pg_backend_pid()",
		        NULL);
		if (strcmp(n, "0") != 0)
			break;
		free(n);
		n = NULL;
		usleep(100000);
	}
	ck_assert_msg(n != NULL, "the Idle never blocked on the enrollment lock");
	free(n);
}

static int wait_done(const char *reply)
{
	char done[400], code[400];
	char *s;
	int i, c;

	snprintf(done, sizeof(done), "%s.done", reply);
	snprintf(code, sizeof(code), "%s.code", reply);
	for (i = 0; i < 600 && access(done, F_OK) != 0; i++)
		usleep(100000);
	ck_assert_msg(access(done, F_OK) == 0, "the background request never finished");
	s = ts_file_get(code, NULL);
	c = atoi(s);
	free(s);
	return c;
}

START_TEST(worker_killed_mid_request)
{
	char reply[400], *uuid;
	db *lock;
	int code;

	if (strcmp(mode, "fcgid") != 0) {
		printf("command-e2e: worker kill runs in fcgid mode (mod_fcgid restarts workers; "
		       "spawn-fcgi does not)\n");
		return;
	}
	enroll_once();
	expect("Idle", NULL, NULL, "", NULL);
	uuid = enqueue("SELECT upper(mdm.cmd_profile_list($1)::text)");
	snprintf(reply, sizeof(reply), "%s/killed.reply", tmpdir);
	lock = lock_enrollment();
	idle_in_background(reply);
	/*
	 * The worker has read the request and is inside its transaction: kill
	 * it.  Only this stack's (E2E_CGI_BIN): other stacks on the machine run
	 * server.fcgi too, and spawn-fcgi pools do not come back.
	 */
	if (getenv("E2E_CGI_BIN") != NULL)
		ck_assert_int_eq(ts_sh("pkill -9 -f '^%s/server.fcgi'", getenv("E2E_CGI_BIN")), 0);
	else
		ck_assert_int_eq(ts_sh("pkill -9 -x server.fcgi"), 0);
	code = wait_done(reply);
	ck_assert_msg(code != 200, "a killed worker answered %d", code);
	db_free(lock); /* ROLLBACK by disconnecting */
	/*
	 * Nothing was lost: the command is still queued.  The request is one
	 * statement (sql/020), which PostgreSQL runs to its end once it has it,
	 * whether or not the worker lives to pass the answer on; so it may
	 * count as delivered once, and a delivered but unanswered command is
	 * delivered again at the next Idle.
	 */
	e2e_assert_query("SELECT status || '/' || (delivered_count <= 1)::text FROM "
	                 "mdm.command_queue WHERE command_uuid = $1",
	        uuid, "queued/true");
	expect("Idle", NULL, NULL, uuid, "ProfileList");
	expect("Acknowledged", uuid, NULL, "", NULL);
	free(uuid);
}
END_TEST

START_TEST(postgres_restarted_mid_request)
{
	const char *pgctl = getenv("E2E_PGCTL");
	char reply[400], *uuid, *s;
	db *lock;
	int code;

	if (pgctl == NULL || *pgctl == '\0') {
		printf("command-e2e: E2E_PGCTL unset: PostgreSQL restart skipped\n");
		return;
	}
	enroll_once();
	expect("Idle", NULL, NULL, "", NULL);
	uuid = enqueue("SELECT upper(mdm.cmd_security_info($1)::text)");
	snprintf(reply, sizeof(reply), "%s/pgrestart.reply", tmpdir);
	lock = lock_enrollment();
	idle_in_background(reply);
	ck_assert_int_eq(ts_sh("%s restart -m fast >/dev/null 2>&1", pgctl), 0);
	db_free(lock);
	code = wait_done(reply);
	/* Either the retry on a fresh connection delivered it, or the device is told to retry. */
	ck_assert_msg(code == 200 || code == 503, "HTTP %d after a PostgreSQL restart", code);
	s = ts_file_get(reply, NULL);
	if (code == 200)
		ck_assert_msg(strstr(s, uuid) != NULL, "200 without the command: %.300s", s);
	free(s);
	/* Not lost: the next Idle has it (delivered again if its answer never came). */
	expect("Idle", NULL, NULL, uuid, "SecurityInfo");
	expect("Acknowledged", uuid, NULL, "", NULL);
	/* Finished: never again. */
	expect("Idle", NULL, NULL, "", NULL);
	e2e_assert_query(
	        "SELECT count(*)::text FROM mdm.command_result WHERE command_uuid = $1 AND "
	        "status = 'Acknowledged'",
	        uuid, "1");
	free(uuid);
}
END_TEST

START_TEST(two_connections_at_once)
{
	char r1[400], r2[400], body[400], reply[400], *uuid, *s1, *s2;
	int got;

	enroll_once();
	expect("Idle", NULL, NULL, "", NULL);
	uuid = enqueue("SELECT upper(mdm.cmd_certificate_list($1)::text)");
	snprintf(body, sizeof(body), "%s/idle2.plist", tmpdir);
	report_write(body, "Idle", NULL, NULL);
	snprintf(r1, sizeof(r1), "%s/conc1.reply", tmpdir);
	snprintf(r2, sizeof(r2), "%s/conc2.reply", tmpdir);
	ck_assert_int_eq(ts_sh("for r in %s %s; do (curl -sS --cacert %s --cert %s/cert.pem "
	                       "--key %s/key.pem -X PUT --data-binary @%s -o $r -w '%%{http_code}' "
	                       "'%s' >$r.code 2>/dev/null) & done; wait",
	                         r1, r2, tls_ca, devdir, devdir, body, server_url),
	        0);
	s1 = ts_file_get(r1, NULL);
	s2 = ts_file_get(r2, NULL);
	got = (strstr(s1, uuid) != NULL) + (strstr(s2, uuid) != NULL);
	ck_assert_msg(got >= 1, "neither connection got the command");
	free(s1);
	free(s2);
	/* One answer finishes it; the same answer again is refused and changes nothing. */
	expect("Acknowledged", uuid, NULL, "", NULL);
	snprintf(body, sizeof(body), "%s/ack-again.plist", tmpdir);
	snprintf(reply, sizeof(reply), "%s/ack-again.reply", tmpdir);
	report_write(body, "Acknowledged", uuid, NULL);
	ck_assert_int_eq(put(body, reply), 400);
	expect("Idle", NULL, NULL, "", NULL);
	e2e_assert_query(
	        "SELECT count(*)::text FROM mdm.command_result WHERE command_uuid = $1", uuid, "1");
	free(uuid);
}
END_TEST

/*
 * InstallProfile encrypted to the device (mdm.cmd_install_profile(...,
 * true)): what the device gets is signed by the server (openssl verifies
 * it to the CA) and its PayloadContent only opens with the device's key
 * (openssl cms -decrypt, not our code); the secret is nowhere in clear.
 */
START_TEST(encrypted_install_profile)
{
	char next[129], type[129], path[400], *uuid, *s;
	plist *cmd = NULL, *inner = NULL;
	const plist *payload, *enc;
	const uint8_t *p;
	size_t len;

	enroll_once();
	uuid = enqueue("SELECT upper(mdm.cmd_install_profile($1, convert_to('<?xml version=\"1.0\" "
	               "encoding=\"UTF-8\"?><plist version=\"1.0\"><dict><key>PayloadType</key>"
	               "<string>Configuration</string><key>PayloadIdentifier</key>"
	               "<string>com.example.wifi</string><key>PayloadContent</key><array><dict>"
	               "<key>PayloadType</key><string>com.apple.wifi.managed</string>"
	               "<key>Password</key><string>s3cret-wifi</string></dict></array></dict>"
	               "</plist>', 'UTF8'), true)::text)");
	exchange("Idle", NULL, NULL, next, type);
	ck_assert_str_eq(next, uuid);
	ck_assert_str_eq(type, "InstallProfile");
	snprintf(path, sizeof(path), "%s/reply.plist", tmpdir);
	s = ts_file_get(path, &len);
	ck_assert_ptr_null(strstr(s, "s3cret-wifi"));
	ck_assert_int_eq(plist_parse(s, len, &cmd), MDM_OK);
	free(s);
	payload = plist_dict_get0(plist_dict_get0(cmd, "Command"), "Payload");
	ck_assert_int_eq(plist_get_type(payload), PLIST_DATA);
	p = plist_data_get0(payload, &len);
	snprintf(path, sizeof(path), "%s/profile.der", tmpdir);
	ts_file_write(path, p, len);
	/* Signed by the server, to the CA devices trust. */
	ck_assert_int_eq(ts_sh("openssl cms -verify -inform DER -binary -purpose any -in %s "
	                       "-CAfile %s -out %s/profile.plist 2>%s/verify.log",
	                         path, getenv("E2E_DEVICE_CA"), tmpdir, tmpdir),
	        0);
	snprintf(path, sizeof(path), "%s/profile.plist", tmpdir);
	s = ts_file_get(path, &len);
	ck_assert_ptr_null(strstr(s, "s3cret-wifi"));
	ck_assert_ptr_null(strstr(s, "<key>PayloadContent</key>"));
	ck_assert_int_eq(plist_parse(s, len, &inner), MDM_OK);
	free(s);
	ck_assert_ptr_nonnull(enc = plist_dict_get0(inner, "EncryptedPayloadContent"));
	p = plist_data_get0(enc, &len);
	snprintf(path, sizeof(path), "%s/content.der", tmpdir);
	ts_file_write(path, p, len);
	/* Only the device's key opens it. */
	ck_assert_int_eq(ts_sh("openssl cms -decrypt -inform DER -in %s -inkey %s/key.pem -recip "
	                       "%s/cert.pem -out %s/content.plist",
	                         path, devdir, devdir, tmpdir),
	        0);
	snprintf(path, sizeof(path), "%s/content.plist", tmpdir);
	s = ts_file_get(path, NULL);
	ck_assert_ptr_nonnull(strstr(s, "s3cret-wifi"));
	ck_assert_ptr_nonnull(strstr(s, "com.apple.wifi.managed"));
	free(s);
	expect("Acknowledged", uuid, NULL, "", NULL);
	plist_free(cmd);
	plist_free(inner);
	free(uuid);
}
END_TEST

/*
 * A command the server cannot build does not wedge the channel (issue 13,
 * 4).  An encrypted InstallProfile whose profile lib/plist refuses (queued
 * before 016 refused it at enqueue: written here by hand) sits between a
 * RestartDevice and a ProfileList.  Before the fix the Acknowledged of
 * RestartDevice was answered 500 and rolled back: RestartDevice came again
 * on every connection and ProfileList never.
 */
START_TEST(undeliverable_moves_on)
{
	char *first, *bad, *last, *ok, three[160];

	enroll_once();
	first = enqueue("SELECT upper(mdm.cmd_restart_device($1)::text)");
	bad = enqueue("SELECT upper(mdm.cmd_install_profile($1, convert_to('<plist version=\"1.0\">"
	              "<dict><key>PayloadContent</key><array><dict><key>PayloadVersion</key>"
	              "<integer>0x1</integer></dict></array></dict></plist>', 'UTF8'))::text)");
	ok = e2e_query1("WITH u AS (UPDATE mdm.command SET encrypt_payload = true WHERE "
	                "upper(command_uuid) = $1 RETURNING 1) SELECT count(*)::text FROM u",
	        bad);
	ck_assert_str_eq(ok, "1");
	free(ok);
	last = enqueue("SELECT upper(mdm.cmd_profile_list($1)::text)");
	expect("Idle", NULL, NULL, first, "RestartDevice");
	expect("Acknowledged", first, NULL, last, "ProfileList");
	expect("Acknowledged", last, NULL, "", NULL);
	expect("Idle", NULL, NULL, "", NULL);
	snprintf(three, sizeof(three), "%s,%s,%s", first, bad, last);
	e2e_assert_query(
	        "SELECT string_agg(q.status || '/' || q.delivered_count, ' ' ORDER BY q.id) "
	        "FROM mdm.command_queue q WHERE upper(q.command_uuid) = "
	        "ANY (string_to_array($1, ','))",
	        three, "acknowledged/1 undeliverable/0 acknowledged/1");
	e2e_assert_query(
	        "SELECT status || ': ' || split_part(reason, ' (line', 1) FROM mdm.command_results "
	        "WHERE upper(command_uuid) = $1",
	        bad,
	        "Undeliverable: the profile to encrypt does not parse: plist: invalid <integer> "
	        "\"0x1\"");
	free(first);
	free(bad);
	free(last);
}
END_TEST

Suite *command_e2e_suite(void)
{
	const char *base;

	mode = e2e_mode();
	e2e_stack(&base, &tls_ca, NULL);
	e2e_tmpdir(tmpdir, sizeof(tmpdir), "command-%s", mode);
	snprintf(devdir, sizeof(devdir), "%s/device", tmpdir);
	snprintf(udid, sizeof(udid), "CMD-DEVICE-%s", mode);
	snprintf(server_url, sizeof(server_url), "%s/mdm/server", base ? base : "");
	return ts_suite("command-e2e", "channel", 300, builders_in_order, encrypted_install_profile,
	        undeliverable_moves_on, worker_killed_mid_request, postgres_restarted_mid_request,
	        two_connections_at_once);
}
