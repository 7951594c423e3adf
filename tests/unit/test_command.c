/*
 * command: the command channel (Apple "Mobile Device Management
 * Protocol", ServerURL) against a real PostgreSQL: delivery order, the
 * answers Acknowledged / Error / CommandFormatError / NotNow, redelivery
 * of an unanswered command, refusals that change nothing, and the real
 * command answers in ../shared/vectors stored whole and as JSON.  The
 * identity is checked by the checkin suite; here a device is a row bound
 * to a certificate row, and the requests speak for that certificate.
 */
#define _GNU_SOURCE /* asprintf */
#include "cms.h"
#include "command.h"
#include "log.h"
#include "x509.h"
#include "suites.h"
#include "ts_db.h"
#include "ts_sys.h"
#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ts_db t;
static db *d;

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&t, "command");
	d = t.d;
}

static void teardown(void)
{
	ts_db_drop(&t);
	d = NULL;
}

/* A device bound to a (fake) certificate, its device channel enrolled and active. */
static void device(const char *udid, struct identity *id)
{
	const char *p[1] = {udid};
	char *cid;

	memset(id, 0, sizeof(*id));
	ck_assert_int_eq(
	        db_exec(d,
	                "WITH c AS (INSERT INTO mdm.certificate (sha256, serial, issuer, subject, "
	                " not_before, not_after, der, kind, udid) VALUES (md5($1) || md5($1 || "
	                "'x'), "
	                " upper(md5($1)), 'CN=CA', 'CN=' || $1, now() - interval '1 day', "
	                " now() + interval '1 day', '\\x00', 'device', $1) RETURNING id), "
	                "dv AS (INSERT INTO mdm.device (udid, identity_certificate_id) "
	                " SELECT $1, id FROM c RETURNING udid) "
	                "INSERT INTO mdm.enrollment (udid, topic, active) SELECT udid, 't', true "
	                "FROM dv",
	                1, p, NULL),
	        MDM_OK);
	cid = ts_db_query1(
	        d, "SELECT identity_certificate_id FROM mdm.device WHERE udid = $1", udid);
	id->cert_id = atoll(cid);
	free(cid);
	/* What identity_verify leaves for command_process to look up. */
	cid = ts_db_query1(d, "SELECT md5($1) || md5($1 || 'x')", udid);
	snprintf(id->sha256, sizeof(id->sha256), "%s", cid);
	free(cid);
	snprintf(id->serial, sizeof(id->serial), "TEST");
	snprintf(id->udid, sizeof(id->udid), "%s", udid);
	id->sources = IDENTITY_TLS;
}

static void queue(const char *udid, const char *uuid, const char *type, int priority)
{
	char prio[16], *xml = NULL;
	const char *p[4];

	ck_assert_int_ne(
	        asprintf(&xml,
	                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">"
	                "<dict><key>CommandUUID</key><string>%s</string><key>Command</key>"
	                "<dict><key>RequestType</key><string>%s</string></dict></dict>"
	                "</plist>\n",
	                uuid, type),
	        -1);
	snprintf(prio, sizeof(prio), "%d", priority);
	p[0] = udid;
	p[1] = uuid;
	p[2] = type;
	p[3] = xml;
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.command (command_uuid, request_type, plist) "
	                         "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
	                         3, p + 1, NULL),
	        MDM_OK);
	p[2] = prio;
	ck_assert_int_eq(
	        db_exec(d,
	                "INSERT INTO mdm.command_queue (enrollment_id, command_uuid, priority) "
	                "SELECT id, $2, $3::integer FROM mdm.enrollment WHERE udid = $1 "
	                "AND user_id IS NULL",
	                3, p, NULL),
	        MDM_OK);
	free(xml);
}

static char *report_body(const char *udid, const char *status, const char *uuid, const char *extra)
{
	char *s = NULL;

	ck_assert_int_ne(asprintf(&s,
	                         "<plist version=\"1.0\"><dict><key>Status</key><string>%s</string>"
	                         "<key>UDID</key><string>%s</string>%s%s%s%s</dict></plist>\n",
	                         status, udid, uuid ? "<key>CommandUUID</key><string>" : "",
	                         uuid ? uuid : "", uuid ? "</string>" : "", extra ? extra : ""),
	        -1);
	return s;
}

/* One request as server.fcgi runs it; *next is the delivered CommandUUID ("" if none). */
static mdm_err report(const struct identity *id, const char *body, char *next, size_t cap)
{
	struct command_report *r = NULL;
	struct command_reply reply;
	char err[256];
	mdm_err rc;

	next[0] = '\0';
	rc = command_report_parse((const uint8_t *)body, strlen(body), &r, err, sizeof(err));
	if (rc == MDM_OK)
		rc = command_process(d, id, NULL, r, (const uint8_t *)body, strlen(body), &reply,
		        err, sizeof(err));
	if (rc == MDM_OK) {
		if (reply.body != NULL) {
			ck_assert_ptr_nonnull(strstr(reply.body, reply.command_uuid));
			snprintf(next, cap, "%s", reply.command_uuid);
		}
		command_reply_clear(&reply);
	}
	command_report_free(r);
	return rc;
}

static void say(const struct identity *id, const char *udid, const char *status, const char *uuid,
        const char *extra, const char *want_next)
{
	char next[129], *body = report_body(udid, status, uuid, extra);
	mdm_err rc = report(id, body, next, sizeof(next));

	ck_assert_msg(rc == MDM_OK, "%s %s: %s", status, uuid ? uuid : "", err_str(rc));
	ck_assert_msg(strcmp(next, want_next) == 0, "%s %s: next %s, want %s", status,
	        uuid ? uuid : "", next[0] ? next : "(none)", want_next[0] ? want_next : "(none)");
	free(body);
}

static char *snapshot(void)
{
	return ts_db_query1(d,
	        "SELECT md5(concat_ws('#', "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.command_queue t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.command_result t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.enrollment t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.device t)))",
	        NULL);
}

static void refused(const struct identity *id, const char *body, mdm_err want)
{
	char next[129], *before = snapshot(), *after;
	mdm_err rc = report(id, body, next, sizeof(next));

	ck_assert_msg(rc == want, "got %s, want %s", err_str(rc), err_str(want));
	after = snapshot();
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
}

static void assert_q(const char *sql, const char *param, const char *want)
{
	ts_db_assert(d, sql, param, want);
}

/* ------------------------------------------------------------ parsing */

START_TEST(parse_refusals)
{
	static const char *const bad[] = {
	        "",
	        "<plist version=\"1.0\"><array/></plist>",
	        "<plist version=\"1.0\"><dict><key>UDID</key><string>A</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>Status</key><string>Busy</string>"
	        "<key>UDID</key><string>A</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>Status</key><string>Acknowledged</string>"
	        "<key>UDID</key><string>A</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>Status</key><string>Idle</string>"
	        "<key>UDID</key><string>A</string><key>CommandUUID</key><string>X</string></dict>"
	        "</plist>",
	        "<plist "
	        "version=\"1.0\"><dict><key>Status</key><string>Idle</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>Status</key><string>Idle</string>"
	        "<key>UDID</key><string>A B</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>Status</key><string>Idle</string>"
	        "<key>UDID</key><string>A</string><key>EnrollmentID</key><string>B</string></dict>"
	        "</plist>",
	        "<plist version=\"1.0\"><dict><key>Status</key><string>Error</string>"
	        "<key>UDID</key><string>A</string><key>CommandUUID</key><string>X</string>"
	        "<key>ErrorChain</key><string>no</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>Status</key><string>Acknowledged</string>"
	        "<key>UDID</key><string>A</string><key>CommandUUID</key><integer>1</integer></dict>"
	        "</plist>",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct command_report *r = NULL;
		char err[256] = "";
		mdm_err rc = command_report_parse(
		        (const uint8_t *)bad[i], strlen(bad[i]), &r, err, sizeof(err));
		ck_assert_msg(rc != MDM_OK, "accepted bad report %zu", i);
		ck_assert_ptr_null(r);
		ck_assert_msg(err[0] != '\0', "no reason for bad report %zu", i);
	}
}
END_TEST

START_TEST(json_of_every_type)
{
	const char *doc = "<plist version=\"1.0\"><dict><key>s</key><string>a\"b\\c\n&lt;</string>"
	                  "<key>i</key><integer>-5</integer><key>u</key>"
	                  "<integer>18446744073709551615</integer><key>r</key><real>1.5</real>"
	                  "<key>t</key><true/><key>f</key><false/><key>d</key>"
	                  "<date>2024-01-02T03:04:05Z</date><key>b</key><data>AAEC</data>"
	                  "<key>a</key><array><dict/><array/></array></dict></plist>";
	plist *p = NULL;
	char *json = NULL;
	size_t len;

	ck_assert_int_eq(plist_parse(doc, strlen(doc), &p), MDM_OK);
	ck_assert_int_eq(plist_to_json(p, &json, &len), MDM_OK);
	ck_assert_str_eq(json,
	        "{\"s\":\"a\\\"b\\\\c\\n<\",\"i\":-5,\"u\":18446744073709551615,"
	        "\"r\":1.5,\"t\":true,\"f\":false,\"d\":\"2024-01-02T03:04:05Z\","
	        "\"b\":\"AAEC\",\"a\":[{},[]]}");
	free(json);
	plist_free(p);
}
END_TEST

/* ------------------------------------------------------------ the queue */

START_TEST(order_and_answers)
{
	struct identity a;

	device("UDID-A", &a);
	/* Empty queue: nothing due. */
	say(&a, "UDID-A", "Idle", NULL, NULL, "");
	queue("UDID-A", "C-OLD", "ProfileList", 0);
	queue("UDID-A", "C-NEW", "SecurityInfo", 0);
	queue("UDID-A", "C-URGENT", "DeviceLock", 5);
	/* Priority first, then age; each answer gets the next command. */
	say(&a, "UDID-A", "Idle", NULL, NULL, "C-URGENT");
	say(&a, "UDID-A", "Acknowledged", "C-URGENT", NULL, "C-OLD");
	say(&a, "UDID-A", "Error", "C-OLD",
	        "<key>ErrorChain</key><array><dict><key>ErrorCode</key><integer>12</integer>"
	        "<key>ErrorDomain</key><string>MCMDMErrorDomain</string></dict></array>",
	        "C-NEW");
	say(&a, "UDID-A", "CommandFormatError", "C-NEW", NULL, "");
	assert_q("SELECT string_agg(command_uuid || ':' || status, ',' ORDER BY id) FROM "
	         "mdm.command_queue",
	        NULL, "C-OLD:error,C-NEW:format_error,C-URGENT:acknowledged");
	assert_q("SELECT error_chain->0->>'ErrorCode' FROM mdm.command_result WHERE command_uuid = "
	         "$1",
	        "C-OLD", "12");
	assert_q("SELECT result_json->>'Status' FROM mdm.command_result WHERE command_uuid = $1",
	        "C-URGENT", "Acknowledged");
	/* Finished commands are never delivered again. */
	say(&a, "UDID-A", "Idle", NULL, NULL, "");
}
END_TEST

/* Every report stamps last_seen_at (enrollment and device); only an Idle stamps idle_at. */
START_TEST(reports_stamp_seen_and_idle)
{
	static const char old[] = "2000-01-01 00:00:00+00";
	struct identity a;

	device("UDID-S", &a);
	queue("UDID-S", "C-1", "ProfileList", 0);
	say(&a, "UDID-S", "Idle", NULL, NULL, "C-1");
	assert_q("SELECT (idle_at IS NOT NULL AND last_seen_at IS NOT NULL)::text FROM "
	         "mdm.enrollment WHERE udid = $1",
	        "UDID-S", "true");
	assert_q("SELECT (last_seen_at IS NOT NULL)::text FROM mdm.device WHERE udid = $1",
	        "UDID-S", "true");
	ck_assert_int_eq(db_exec(d,
	                         "WITH e AS (UPDATE mdm.enrollment SET idle_at = '2000-01-01 "
	                         "00:00:00+00', last_seen_at = '2000-01-01 00:00:00+00') "
	                         "UPDATE mdm.device SET last_seen_at = '2000-01-01 00:00:00+00'",
	                         0, NULL, NULL),
	        MDM_OK);
	say(&a, "UDID-S", "Acknowledged", "C-1", NULL, "");
	assert_q("SELECT (idle_at = $1::timestamptz)::text FROM mdm.enrollment", old, "true");
	assert_q("SELECT (last_seen_at > idle_at)::text FROM mdm.enrollment WHERE udid = $1",
	        "UDID-S", "true");
	assert_q("SELECT (last_seen_at > '2000-01-02')::text FROM mdm.device WHERE udid = $1",
	        "UDID-S", "true");
}
END_TEST

/*
 * sql/020: a report is one statement; an Idle that only stamps the
 * enrollment (nothing due) commits with synchronous_commit off, and
 * everything that delivers or stores an answer durably.  What the setting
 * was at the end of the statement, and after it (SET LOCAL: not after).
 */
static void exchange_durability(
        const struct identity *id, const char *status, const char *uuid, const char *want)
{
	const char *p[4] = {id->sha256, id->udid, status, uuid};
	char *got;

	got = ts_db_queryn(d,
	        "WITH x AS MATERIALIZED (SELECT * FROM mdm.command_exchange($1, $2, NULL, $3, $4, "
	        "CASE WHEN $4::text IS NULL THEN NULL ELSE '<plist/>' END, NULL, NULL)) "
	        "SELECT x.outcome || '/' || current_setting('synchronous_commit') FROM x",
	        4, p);
	ck_assert_msg(
	        strcmp(got, want) == 0, "%s %s: %s, want %s", status, uuid ? uuid : "", got, want);
	free(got);
	assert_q("SELECT current_setting('synchronous_commit')", NULL, "on");
}

START_TEST(only_idle_stamps_commit_asynchronously)
{
	struct identity a;

	device("UDID-D", &a);
	ck_assert_int_eq(db_exec(d, "SET synchronous_commit = on", 0, NULL, NULL), MDM_OK);
	exchange_durability(&a, "Idle", NULL, "none/off");
	queue("UDID-D", "C-D", "ProfileList", 0);
	exchange_durability(&a, "Idle", NULL, "command/on");
	exchange_durability(&a, "Acknowledged", "C-D", "none/on");
	/* A refusal writes nothing and says so. */
	exchange_durability(&a, "Acknowledged", "C-D", "not_outstanding/on");
}
END_TEST

START_TEST(not_now_waits_for_next_idle)
{
	struct identity a;

	device("UDID-N", &a);
	queue("UDID-N", "C-1", "InstallProfile", 1);
	queue("UDID-N", "C-2", "ProfileList", 0);
	say(&a, "UDID-N", "Idle", NULL, NULL, "C-1");
	/* NotNow: C-1 stays queued but is skipped for the rest of this connection. */
	say(&a, "UDID-N", "NotNow", "C-1", NULL, "C-2");
	say(&a, "UDID-N", "Acknowledged", "C-2", NULL, "");
	assert_q("SELECT status FROM mdm.command_queue WHERE command_uuid = $1", "C-1", "queued");
	/* The next connection starts with Idle: C-1 again. */
	say(&a, "UDID-N", "Idle", NULL, NULL, "C-1");
	say(&a, "UDID-N", "Acknowledged", "C-1", NULL, "");
	assert_q("SELECT string_agg(status, ',' ORDER BY id) FROM mdm.command_result WHERE "
	         "command_uuid = $1",
	        "C-1", "NotNow,Acknowledged");
}
END_TEST

START_TEST(unanswered_is_delivered_again)
{
	struct identity a;

	device("UDID-R", &a);
	queue("UDID-R", "C-LOST", "DeviceInformation", 0);
	/* The response carrying it was lost (a crash, a dropped connection)... */
	say(&a, "UDID-R", "Idle", NULL, NULL, "C-LOST");
	/* ...so the device's next Idle gets it again, until it answers. */
	say(&a, "UDID-R", "Idle", NULL, NULL, "C-LOST");
	assert_q("SELECT delivered_count::text FROM mdm.command_queue WHERE command_uuid = $1",
	        "C-LOST", "2");
	say(&a, "UDID-R", "Acknowledged", "C-LOST", NULL, "");
	say(&a, "UDID-R", "Idle", NULL, NULL, "");
}
END_TEST

START_TEST(refusals_change_nothing)
{
	struct identity a, b, x;
	char *body;

	device("UDID-A", &a);
	device("UDID-B", &b);
	queue("UDID-A", "C-A", "ProfileList", 0);
	queue("UDID-B", "C-B", "ProfileList", 0);
	say(&a, "UDID-A", "Idle", NULL, NULL, "C-A");
	/* An answer for a command that is not outstanding for this enrollment. */
	body = report_body("UDID-A", "Acknowledged", "C-B", NULL);
	refused(&a, body, MDM_ERR_PARSE);
	free(body);
	body = report_body("UDID-A", "Acknowledged", "C-NEVER", NULL);
	refused(&a, body, MDM_ERR_PARSE);
	free(body);
	/* A's certificate speaking for B. */
	body = report_body("UDID-B", "Acknowledged", "C-B", NULL);
	refused(&a, body, MDM_ERR_FORBIDDEN);
	free(body);
	body = report_body("UDID-B", "Idle", NULL, NULL);
	refused(&a, body, MDM_ERR_FORBIDDEN);
	free(body);
	/* A finished command answered again. */
	say(&a, "UDID-A", "Acknowledged", "C-A", NULL, "");
	body = report_body("UDID-A", "Acknowledged", "C-A", NULL);
	refused(&a, body, MDM_ERR_PARSE);
	free(body);
	/* A canceled one. */
	queue("UDID-A", "C-X", "ProfileList", 0);
	ck_assert_int_eq(db_exec(d,
	                         "UPDATE mdm.command_queue SET status = 'canceled', finished_at = "
	                         "now() WHERE command_uuid = 'C-X'",
	                         0, NULL, NULL),
	        MDM_OK);
	say(&a, "UDID-A", "Idle", NULL, NULL, "");
	body = report_body("UDID-A", "Acknowledged", "C-X", NULL);
	refused(&a, body, MDM_ERR_PARSE);
	free(body);
	/*
	 * The certificate's record, read by the same statement (sql/020): not
	 * ours, not a device identity, revoked.  Refused before anything else.
	 */
	x = a;
	snprintf(x.sha256, sizeof(x.sha256), "%064d", 7);
	body = report_body("UDID-A", "Idle", NULL, NULL);
	refused(&x, body, MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(
	        db_exec(d, "UPDATE mdm.certificate SET kind = 'server' WHERE udid = 'UDID-A'", 0,
	                NULL, NULL),
	        MDM_OK);
	refused(&a, body, MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(db_exec(d,
	                         "UPDATE mdm.certificate SET kind = 'device', revoked_at = now(), "
	                         "revocation_reason = 'keyCompromise' WHERE udid = 'UDID-A'",
	                         0, NULL, NULL),
	        MDM_OK);
	refused(&a, body, MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(
	        db_exec(d,
	                "UPDATE mdm.certificate SET revoked_at = NULL, revocation_reason = "
	                "NULL WHERE udid = 'UDID-A'",
	                0, NULL, NULL),
	        MDM_OK);
	say(&a, "UDID-A", "Idle", NULL, NULL, "");
	free(body);
	/* After CheckOut the channel is closed. */
	ck_assert_int_eq(
	        db_exec(d, "UPDATE mdm.enrollment SET active = false WHERE udid = 'UDID-A'", 0,
	                NULL, NULL),
	        MDM_OK);
	body = report_body("UDID-A", "Idle", NULL, NULL);
	refused(&a, body, MDM_ERR_FORBIDDEN);
	free(body);
}
END_TEST

/* The real answers in ../shared/vectors, stored whole and as JSON. */
START_TEST(real_answers_stored)
{
	static const struct {
		const char *path, *type, *json_key;
	} v[] = {
	        {"commandment/testdata/DeviceInformation/macOS-10.13.1.xml", "DeviceInformation",
	                "QueryResponses"},
	        {"commandment/testdata/DeviceInformation/iOS-11.3.1.xml", "DeviceInformation",
	                "QueryResponses"},
	        {"nanomdm/mdm/testdata/DeviceInformation.1.plist", "DeviceInformation",
	                "QueryResponses"},
	        {"commandment/testdata/ProfileList/iOS-11.3.1.xml", "ProfileList", "ProfileList"},
	        {"commandment/testdata/SecurityInfo/iOS-11.3.1.xml", "SecurityInfo",
	                "SecurityInfo"},
	        {"commandment/testdata/CertificateList/10.11.x.xml", "CertificateList",
	                "CertificateList"},
	        {"commandment/testdata/InstalledApplicationList/iOS-12.1.xml",
	                "InstalledApplicationList", "InstalledApplicationList"},
	        {"commandment/testdata/Errors/iOS-11.3.1-RemoveProfile-Unmanaged.xml",
	                "RemoveProfile", "ErrorChain"},
	};
	const char *root = vector_dir();
	size_t i;
	int n = 0;

	if (root == NULL) {
		printf("command: shared vectors not found (set MDM_VECTORS): real command answers "
		       "skipped\n");
		return;
	}
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char path[1024], next[129], err[256], sql[256];
		struct command_report *r = NULL;
		struct identity id;
		char *body, *known;
		size_t len;

		snprintf(path, sizeof(path), "%s/%s", root, v[i].path);
		if ((body = ts_file_read(path, (1 << 20) - 1, &len)) == NULL) {
			printf("command: %s absent: skipped\n", path);
			continue;
		}
		ck_assert_msg(command_report_parse(
		                      (const uint8_t *)body, len, &r, err, sizeof(err)) == MDM_OK,
		        "%s: %s", path, err);
		/* Enroll the vector's UDID and queue the command it answers. */
		known = ts_db_query1(d, "SELECT count(*) FROM mdm.device WHERE udid = $1", r->udid);
		if (known[0] == '0')
			device(r->udid, &id);
		else {
			char *fp = ts_db_query1(d,
			        "SELECT c.sha256 FROM mdm.device v JOIN mdm.certificate c ON "
			        "c.id = v.identity_certificate_id WHERE v.udid = $1",
			        r->udid);
			memset(&id, 0, sizeof(id));
			snprintf(id.sha256, sizeof(id.sha256), "%s", fp);
			id.sources = IDENTITY_TLS;
			free(fp);
		}
		free(known);
		queue(r->udid, r->command_uuid, v[i].type, 0);
		command_report_free(r);
		ck_assert_msg(report(&id, body, next, sizeof(next)) == MDM_OK, "%s", path);
		snprintf(sql, sizeof(sql),
		        "SELECT (result = $1 AND result_json ? '%s')::text FROM mdm.command_result "
		        "ORDER BY id DESC LIMIT 1",
		        v[i].json_key);
		assert_q(sql, body, "true");
		free(body);
		n++;
	}
	ck_assert_int_ge(n, 6);
	/* SQL reads the answers: a DeviceInformation value, a profile identifier. */
	assert_q("SELECT count(*)::text FROM mdm.command_result WHERE "
	         "result_json->'QueryResponses' ? 'OSVersion' OR "
	         "result_json->'QueryResponses' ? 'HostName'",
	        NULL, "3");
}
END_TEST

/*
 * An encrypted InstallProfile is never sent in clear: without a signer it
 * cannot be built.  It must not wedge the channel either (issue 13, 4):
 * the answer that came with the request is kept, the command is marked
 * undeliverable with its reason, and the next one is delivered.
 */
START_TEST(undeliverable_moves_on)
{
	struct identity a;
	char *before;

	device("UDID-E", &a);
	queue("UDID-E", "C-LOCK", "DeviceLock", 2);
	queue("UDID-E", "C-ENC", "InstallProfile", 1);
	queue("UDID-E", "C-NEXT", "ProfileList", 0);
	ck_assert_int_eq(db_exec(d,
	                         "UPDATE mdm.command SET encrypt_payload = true WHERE "
	                         "command_uuid = 'C-ENC'",
	                         0, NULL, NULL),
	        MDM_OK);
	say(&a, "UDID-E", "Idle", NULL, NULL, "C-LOCK");
	say(&a, "UDID-E", "Acknowledged", "C-LOCK", NULL, "C-NEXT");
	assert_q("SELECT string_agg(command_uuid || '=' || status || '/' || delivered_count, ' ' "
	         "ORDER BY id) FROM mdm.command_queue WHERE $1 = $1",
	        "x", "C-LOCK=acknowledged/1 C-ENC=undeliverable/0 C-NEXT=queued/1");
	assert_q("SELECT status || ': ' || reason FROM mdm.command_results WHERE command_uuid = $1",
	        "C-ENC",
	        "Undeliverable: an encrypted InstallProfile needs a profile signer "
	        "(profile_signer_cert, profile_signer_key): none is configured");
	/* Nothing is tried again: the next Idle gets the same next command. */
	before = ts_db_query1(d, "SELECT count(*)::text FROM mdm.command_result", NULL);
	say(&a, "UDID-E", "Acknowledged", "C-NEXT", NULL, "");
	say(&a, "UDID-E", "Idle", NULL, NULL, "");
	assert_q("SELECT (count(*) - $1::int)::text FROM mdm.command_result", before, "1");
	free(before);
}
END_TEST

/*
 * command_profile_seal, the Payload of an encrypted InstallProfile (also
 * `mdmctl profile encrypt`): refused without a signer or a recipient, for
 * a profile that does not parse or has no PayloadContent array, each with
 * its reason; else signed, IsEncrypted, the payloads only in
 * EncryptedPayloadContent.
 */
START_TEST(profile_seal_rules)
{
	static const char good[] = "<plist><dict><key>PayloadType</key><string>Configuration"
	                           "</string><key>PayloadContent</key><array><dict><key>Secret"
	                           "</key><string>s3cret</string></dict></array></dict></plist>";
	static const char noarray[] = "<plist><dict><key>PayloadContent</key><dict/></dict>"
	                              "</plist>";
	char dir[128], path[256], why[1024];
	struct command_signer sg = {0};
	struct x509_st *rcpt = NULL, *signer = NULL;
	uint8_t *der = NULL, *content = NULL;
	size_t derlen = 0, clen = 0;
	plist *p = NULL;
	int enc = 0;

	log_set_level(MDM_LOG__MAX);
	ts_tmpdir_new(dir, sizeof(dir), "seal");
	ck_assert_int_eq(ts_sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "
	                       "s.key -out s.pem -subj /CN=signer 2>/dev/null && openssl req -x509 "
	                       "-newkey rsa:2048 -nodes -days 2 -keyout d.key -out d.pem "
	                       "-subj /CN=device 2>/dev/null",
	                         dir),
	        0);
	snprintf(path, sizeof(path), "%s/s.pem", dir);
	ck_assert_int_eq(x509_cert_load_file(path, &sg.cert), MDM_OK);
	snprintf(path, sizeof(path), "%s/s.key", dir);
	ck_assert_int_eq(x509_key_load(path, &sg.key), MDM_OK);
	snprintf(path, sizeof(path), "%s/d.pem", dir);
	ck_assert_int_eq(x509_cert_load_file(path, &rcpt), MDM_OK);
	ck_assert_int_eq(command_profile_seal(NULL, rcpt, (const uint8_t *)good, strlen(good), &der,
	                         &derlen, why, sizeof(why)),
	        MDM_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(why, "needs a profile signer"));
	ck_assert_int_eq(command_profile_seal(&sg, NULL, (const uint8_t *)good, strlen(good), &der,
	                         &derlen, why, sizeof(why)),
	        MDM_ERR_INTERNAL);
	ck_assert_int_eq(command_profile_seal(&sg, rcpt, (const uint8_t *)"junk", 4, &der, &derlen,
	                         why, sizeof(why)),
	        MDM_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "does not parse"));
	ck_assert_int_eq(command_profile_seal(&sg, rcpt, (const uint8_t *)noarray, strlen(noarray),
	                         &der, &derlen, why, sizeof(why)),
	        MDM_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "PayloadContent must be an array"));
	ck_assert_ptr_null(der);
	ck_assert_int_eq(command_profile_seal(&sg, rcpt, (const uint8_t *)good, strlen(good), &der,
	                         &derlen, why, sizeof(why)),
	        MDM_OK);
	ck_assert_int_eq(
	        cms_verify_attached(der, derlen, &content, &clen, &signer, NULL, 0), MDM_OK);
	ck_assert_ptr_null(strstr((const char *)content, "s3cret"));
	ck_assert_int_eq(plist_parse((const char *)content, clen, &p), MDM_OK);
	ck_assert_ptr_null(plist_dict_get0(p, "PayloadContent"));
	ck_assert_int_eq(plist_get_type(plist_dict_get0(p, "EncryptedPayloadContent")), PLIST_DATA);
	ck_assert_int_eq(plist_bool_get(plist_dict_get0(p, "IsEncrypted"), &enc), MDM_OK);
	ck_assert_int_eq(enc, 1);
	plist_free(p);
	free(content);
	free(der);
	x509_cert_free(signer);
	x509_cert_free(rcpt);
	x509_cert_free(sg.cert);
	x509_key_free(sg.key);
	ts_tmpdir_done(dir);
}
END_TEST

void command_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "parse", 0, NULL, NULL);

	ts_add_tests(tc, parse_refusals, json_of_every_type, profile_seal_rules);
}

void command_db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "queue", 60, setup, teardown);

	ts_add_tests(tc, order_and_answers, reports_stamp_seen_and_idle,
	        only_idle_stamps_commit_asynchronously, not_now_waits_for_next_idle,
	        unanswered_is_delivered_again, refusals_change_nothing, real_answers_stored,
	        undeliverable_moves_on);
}
