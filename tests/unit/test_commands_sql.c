/*
 * commands_sql: the admin SQL API of sql/004_commands.sql against a real
 * PostgreSQL (MDM_TEST_DB; a database per test).  Every builder's plist
 * is read back with our own parser (plist_parse) and must carry the
 * returned CommandUUID; refusals must name their rule, carry the right
 * SQLSTATE and write nothing; hostile strings must round-trip exactly;
 * NOTIFY is watched on a second connection; the role mdm_operator must
 * reach the API and the views but no table.  The test includes libpq
 * itself: lib/db.h exposes neither error messages nor notifications.
 */
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "plist.h"
#include "suites.h"
#include "ts_db.h"

#include <libpq-fe.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define UDID_A     "00008030-000A1234567890AB"
#define UDID_B     "00008030-000B1234567890AB"
#define UDID_NOENR "00008030-000C1234567890AB"

static struct ts_db tdb;
static db *d;
static PGconn *pg;

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&tdb, "commands");
	d = tdb.d;
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.device (udid) VALUES ('" UDID_A "'), ('" UDID_B
	                         "'), ('" UDID_NOENR "')",
	                         0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.enrollment (udid, user_id, active) VALUES "
	                         "('" UDID_A "', NULL, true), ('" UDID_A "', 'user-1', true), "
	                         "('" UDID_B "', NULL, true)",
	                         0, NULL, NULL),
	        MDM_OK);
	pg = PQconnectdb(tdb.conninfo);
	ck_assert_int_eq(PQstatus(pg), CONNECTION_OK);
}

static void teardown(void)
{
	PQfinish(pg);
	pg = NULL;
	d = NULL;
	ts_db_drop(&tdb); /* frees d */
}

/* ------------------------------------------------------------ helpers */

/* One value of a one-row, one-column query; the caller frees it. */
static char *query1(const char *sql, int n, const char *const *params)
{
	db_res *r = NULL;
	char *s;

	ck_assert_msg(db_exec(d, sql, n, params, &r) == MDM_OK, "%s: %s", sql, db_get0_sqlstate(d));
	ck_assert_int_eq(db_res_rows(r), 1);
	s = strdup(db_res_is_null(r, 0, 0) ? "(null)" : db_res_get0(r, 0, 0));
	ck_assert_ptr_nonnull(s);
	db_res_free(r);
	return s;
}

static long count(const char *sql)
{
	char *s = query1(sql, 0, NULL);
	long n = strtol(s, NULL, 10);

	free(s);
	return n;
}

/* Everything the API writes, so that a refusal can be shown to write nothing. */
static char *snapshot(void)
{
	return query1("SELECT (SELECT count(*) FROM mdm.command) || '/' || "
	              "(SELECT count(*) FROM mdm.command_queue) || '/' || "
	              "(SELECT count(*) FROM mdm.command_queue WHERE status = 'canceled')",
	        0, NULL);
}

/*
 * The stored plist of the command the API returned, parsed with our own
 * parser, after checking its RequestType, its CommandUUID (the returned
 * uuid) and its queue row for the device channel of udid.
 */
static plist *stored(const char *uuid, const char *udid, const char *request_type)
{
	const char *p[2] = {uuid, udid};
	char *text, *rt;
	plist *pl = NULL, *cmd;
	const char *cu;

	text = query1("SELECT plist FROM mdm.command WHERE command_uuid = upper($1)", 1, p);
	ck_assert_msg(plist_parse(text, strlen(text), &pl) == MDM_OK, "does not parse: %s", text);
	cu = plist_dict_get_string0(pl, "CommandUUID");
	ck_assert_ptr_nonnull(cu);
	ck_assert_msg(strcasecmp(cu, uuid) == 0, "CommandUUID %s, returned %s", cu, uuid);
	cmd = (plist *)plist_dict_get0(pl, "Command");
	ck_assert_int_eq(plist_get_type(cmd), PLIST_DICT);
	ck_assert_str_eq(plist_dict_get_string0(cmd, "RequestType"), request_type);
	rt = query1("SELECT request_type FROM mdm.command WHERE command_uuid = upper($1)", 1, p);
	ck_assert_str_eq(rt, request_type);
	free(rt);
	free(text);
	text = query1("SELECT count(*) FROM mdm.command_queue q JOIN mdm.enrollment e "
	              "ON e.id = q.enrollment_id WHERE upper(q.command_uuid) = upper($1) "
	              "AND e.udid = $2 AND e.user_id IS NULL AND q.status = 'queued'",
	        2, p);
	ck_assert_str_eq(text, "1");
	free(text);
	return pl;
}

static const plist *command_of(const plist *pl)
{
	return plist_dict_get0(pl, "Command");
}

/* Runs sql (as uuid-returning call) and returns the uuid; the caller frees it. */
static char *call(const char *sql, int n, const char *const *params)
{
	char *u = query1(sql, n, params);

	ck_assert_int_eq(strlen(u), 36);
	return u;
}

/*
 * A refusal: the statement fails with sqlstate and a message containing
 * rule, and nothing was written.
 */
static void refused(
        const char *sql, int n, const char *const *params, const char *sqlstate, const char *rule)
{
	char *before = snapshot(), *after;
	PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

	ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "accepted: %s (%s)", sql,
	        n > 1 && params[1] ? params[1] : "");
	ck_assert_msg(state && strcmp(state, sqlstate) == 0, "%s: sqlstate %s, want %s (%s)", sql,
	        state ? state : "none", sqlstate, msg ? msg : "");
	ck_assert_msg(msg && strstr(msg, rule), "%s: message \"%s\" does not say \"%s\"", sql,
	        msg ? msg : "", rule);
	PQclear(r);
	after = snapshot();
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}

#define PLIST_HEAD                                                                                 \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                             \
	"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "                                  \
	"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"                                    \
	"<plist version=\"1.0\">\n"

static const char enqueue1[] = "SELECT mdm.enqueue_command($1, $2)";

/* -------------------------------------------------------------- tests */

START_TEST(builders)
{
	static const struct {
		const char *sql, *type;
	} simple[] = {
	        {"SELECT mdm.cmd_security_info($1)", "SecurityInfo"},
	        {"SELECT mdm.cmd_profile_list($1)", "ProfileList"},
	        {"SELECT mdm.cmd_installed_application_list($1)", "InstalledApplicationList"},
	        {"SELECT mdm.cmd_certificate_list($1)", "CertificateList"},
	        {"SELECT mdm.cmd_restart_device($1)", "RestartDevice"},
	        {"SELECT mdm.cmd_device_lock($1)", "DeviceLock"},
	        {"SELECT mdm.cmd_erase_device($1)", "EraseDevice"},
	};
	const char *p[3] = {UDID_A, NULL, NULL};
	const plist *c, *q;
	plist *pl;
	char *u;
	const uint8_t *data;
	size_t len;

	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		u = call(simple[i].sql, 1, p);
		pl = stored(u, UDID_A, simple[i].type);
		ck_assert_uint_eq(plist_dict_count(command_of(pl)), 1);
		ck_assert_uint_eq(plist_dict_count(pl), 2);
		plist_free(pl);
		free(u);
	}

	/* DeviceInformation: the default list, and a list of our own. */
	u = call("SELECT mdm.cmd_device_information($1)", 1, p);
	pl = stored(u, UDID_A, "DeviceInformation");
	q = plist_dict_get0(command_of(pl), "Queries");
	ck_assert_int_eq(plist_get_type(q), PLIST_ARRAY);
	ck_assert_uint_eq(plist_array_count(q), 16);
	ck_assert_str_eq(plist_string_get0(plist_array_get0(q, 0), NULL), "DeviceName");
	ck_assert_str_eq(plist_string_get0(plist_array_get0(q, 15), NULL), "IsSupervised");
	plist_free(pl);
	free(u);
	p[1] = "{UDID,\"Battery<Level>\"}";
	u = call("SELECT mdm.cmd_device_information($1, $2::text[])", 2, p);
	pl = stored(u, UDID_A, "DeviceInformation");
	q = plist_dict_get0(command_of(pl), "Queries");
	ck_assert_uint_eq(plist_array_count(q), 2);
	ck_assert_str_eq(plist_string_get0(plist_array_get0(q, 0), NULL), "UDID");
	ck_assert_str_eq(plist_string_get0(plist_array_get0(q, 1), NULL), "Battery<Level>");
	plist_free(pl);
	free(u);

	/* InstallProfile: every byte value survives base64 in <data>. */
	p[1] = "\\x"
	       "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	       "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	       "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	       "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	       "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	       "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	       "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	       "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
	u = call("SELECT mdm.cmd_install_profile($1, $2::bytea)", 2, p);
	pl = stored(u, UDID_A, "InstallProfile");
	c = plist_dict_get0(command_of(pl), "Payload");
	ck_assert_int_eq(plist_get_type(c), PLIST_DATA);
	data = plist_data_get0(c, &len);
	ck_assert_uint_eq(len, 256);
	for (size_t i = 0; i < 256; i++)
		ck_assert_uint_eq(data[i], i);
	plist_free(pl);
	free(u);

	p[1] = "com.example.wifi";
	u = call("SELECT mdm.cmd_remove_profile($1, $2)", 2, p);
	pl = stored(u, UDID_A, "RemoveProfile");
	ck_assert_str_eq(plist_dict_get_string0(command_of(pl), "Identifier"), "com.example.wifi");
	plist_free(pl);
	free(u);

	p[1] = "123456";
	p[2] = "Lost. Call +1 555 0100";
	u = call("SELECT mdm.cmd_device_lock($1, $2, $3)", 3, p);
	pl = stored(u, UDID_A, "DeviceLock");
	ck_assert_str_eq(plist_dict_get_string0(command_of(pl), "PIN"), "123456");
	ck_assert_str_eq(plist_dict_get_string0(command_of(pl), "Message"), p[2]);
	plist_free(pl);
	free(u);

	p[1] = NULL;
	u = call("SELECT mdm.cmd_device_lock($1, $2, $3)", 3, p);
	pl = stored(u, UDID_A, "DeviceLock");
	ck_assert_ptr_null(plist_dict_get0(command_of(pl), "PIN"));
	ck_assert_str_eq(plist_dict_get_string0(command_of(pl), "Message"), p[2]);
	plist_free(pl);
	free(u);

	p[1] = "000000";
	u = call("SELECT mdm.cmd_erase_device($1, $2)", 2, p);
	pl = stored(u, UDID_A, "EraseDevice");
	ck_assert_str_eq(plist_dict_get_string0(command_of(pl), "PIN"), "000000");
	plist_free(pl);
	free(u);

	ck_assert_int_eq(count("SELECT count(*) FROM mdm.queue WHERE udid = '" UDID_A "'"), 14);
}
END_TEST

START_TEST(enqueue_raw)
{
	const char *p[3] = {UDID_A, NULL, NULL};
	char *u, *text;
	plist *pl;

	/* Apple's layout, with a CommandUUID: stored exactly as given. */
	p[1] = PLIST_HEAD "<dict>\n"
	                  "\t<key>Command</key>\n\t<dict>\n"
	                  "\t\t<key>RequestType</key>\n\t\t<string>ProfileList</string>\n"
	                  "\t\t<key>ManagedOnly</key>\n\t\t<true/>\n"
	                  "\t</dict>\n"
	                  "\t<key>CommandUUID</key>\n"
	                  "\t<string>0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0</string>\n"
	                  "</dict>\n</plist>\n";
	u = call(enqueue1, 2, p);
	ck_assert_str_eq(u, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
	text = query1("SELECT plist FROM mdm.command WHERE command_uuid = "
	              "'0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0'",
	        0, NULL);
	ck_assert_str_eq(text, p[1]);
	free(text);
	pl = stored(u, UDID_A, "ProfileList");
	plist_free(pl);
	free(u);

	/* Lower case, compact, no declaration; priority given. */
	p[1] = "<plist version=\"1.0\"><dict><key>CommandUUID</key>"
	       "<string>7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d</string><key>Command</key><dict>"
	       "<key>RequestType</key><string>DeviceInformation</string><key>Queries</key>"
	       "<array><string>UDID</string></array></dict></dict></plist>";
	p[2] = "7";
	u = call("SELECT mdm.enqueue_command($1, $2, $3::integer)", 3, p);
	ck_assert_str_eq(u, "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d");
	text = query1("SELECT priority FROM mdm.queue WHERE command_uuid = "
	              "'7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d'",
	        0, NULL);
	ck_assert_str_eq(text, "7");
	free(text);
	text = query1("SELECT plist FROM mdm.command WHERE command_uuid = "
	              "'7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d'",
	        0, NULL);
	ck_assert_str_eq(text, p[1]);
	free(text);
	free(u);

	/* Without CommandUUID: one is generated and put in the top dict. */
	p[1] = PLIST_HEAD "<dict>\n\t<key>Command</key>\n\t<dict>\n"
	                  "\t\t<key>RequestType</key>\n\t\t<string>SecurityInfo</string>\n"
	                  "\t</dict>\n</dict>\n</plist>\n";
	u = call(enqueue1, 2, p);
	pl = stored(u, UDID_A, "SecurityInfo");
	ck_assert_uint_eq(plist_dict_count(pl), 2);
	ck_assert_str_eq(plist_dict_key_at(pl, 0), "CommandUUID");
	plist_free(pl);
	free(u);
	p[1] = "<plist><dict><key>Command</key><dict><key>RequestType</key>"
	       "<string>Settings</string><key>Settings</key><array/></dict></dict></plist>";
	u = call(enqueue1, 2, p);
	pl = stored(u, UDID_A, "Settings");
	plist_free(pl);
	free(u);

	/* The default priority is 0. */
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.queue WHERE priority = 0"), 3);
}
END_TEST

/* mdm.cmd_install_profile(udid, profile, true): only a readable profile can be encrypted. */
START_TEST(encrypted_install_profile)
{
	const char *p[2] = {UDID_A, NULL};
	char *u, *e;

	p[1] = "\\x3082";
	refused("SELECT mdm.cmd_install_profile($1, $2::bytea, true)", 2, p, "22023",
	        "unsigned .mobileconfig");
	p[1] = "<plist version=\"1.0\"><dict><key>PayloadType</key><string>Configuration"
	       "</string></dict></plist>";
	refused("SELECT mdm.cmd_install_profile($1, convert_to($2, 'UTF8'), true)", 2, p, "22023",
	        "PayloadContent array");
	p[1] = "<plist version=\"1.0\"><dict><key>PayloadContent</key><array/></dict></plist>";
	u = query1("SELECT upper(mdm.cmd_install_profile($1, convert_to($2, 'UTF8'), "
	           "true)::text)",
	        2, p);
	ck_assert_int_eq(strlen(u), 36);
	p[0] = u;
	e = query1("SELECT encrypt_payload::text FROM mdm.command WHERE command_uuid = $1", 1, p);
	ck_assert_str_eq(e, "true");
	free(e);
	free(u);
}
END_TEST

START_TEST(refusals)
{
	static const char cmd_ok[] = "<plist><dict><key>Command</key><dict><key>RequestType</key>"
	                             "<string>ProfileList</string></dict></dict></plist>";
	static const struct {
		const char *command, *rule;
	} bad[] = {
	        {"", "not well-formed XML"},
	        {"ProfileList", "not well-formed XML"},
	        {"<plist><dict><key>Command</key>", "not well-formed XML"},
	        {"<plist><dict></dict></plist><plist/>", "not well-formed XML"},
	        {"<plist><dict><key>a</key>&foo;</dict></plist>", "not well-formed XML"},
	        {"<!DOCTYPE plist [<!ENTITY x \"ProfileList\">]><plist><dict><key>Command</key>"
	         "<dict><key>RequestType</key><string>&x;</string></dict></dict></plist>",
	                "DTD internal subset"},
	        {"<dict><key>Command</key><dict><key>RequestType</key><string>X</string></dict>"
	         "</dict>",
	                "exactly one <dict>"},
	        {"<plist><array/></plist>", "exactly one <dict>"},
	        {"<plist><dict/><dict/></plist>", "exactly one <dict>"},
	        {"<plist><dict/></plist>", "must have Command"},
	        {"<plist><dict><key>command</key><dict><key>RequestType</key><string>X</string>"
	         "</dict></dict></plist>",
	                "must have Command"},
	        {"<plist><dict><key>Command</key><string>ProfileList</string></dict></plist>",
	                "must have Command"},
	        {"<plist><dict><key>Command</key><dict/></dict></plist>", "RequestType, a string"},
	        {"<plist><dict><key>Command</key><dict><key>Request</key><string>X</string>"
	         "</dict></dict></plist>",
	                "RequestType, a string"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><integer>1</integer>"
	         "</dict></dict></plist>",
	                "RequestType, a string"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string></string>"
	         "</dict></dict></plist>",
	                "RequestType must be"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key>"
	         "<string>Profile List</string></dict></dict></plist>",
	                "RequestType must be"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "<key>RequestType</key><string>Y</string></dict></dict></plist>",
	                "duplicate key"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "</dict><key>Command</key><dict/></dict></plist>",
	                "duplicate key"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "</dict><key>CommandUUID</key><string>not-a-uuid</string></dict></plist>",
	                "CommandUUID must be a UUID"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "</dict><key>CommandUUID</key>"
	         "<string>0f1e2d3c-4b5a-6978-8796-A5B4C3D2E1F0</string></dict></plist>",
	                "CommandUUID must be a UUID"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "</dict><key>CommandUUID</key>"
	         "<string> 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</string></dict></plist>",
	                "CommandUUID must be a UUID"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "</dict><key>CommandUUID</key><integer>1</integer></dict></plist>",
	                "CommandUUID must be a string"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "<key>Extra</key><script/></dict></dict></plist>",
	                "not a plist type"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "<key>Lonely</key></dict></dict></plist>",
	                "alternate <key>"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "<string>a</string><string>b</string></dict></dict></plist>",
	                "alternate <key>"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	         "</dict>stray</dict></plist>",
	                "text or element"},
	        {"<plist><dict><key>Command</key><dict><key>RequestType</key><string>X"
	         "<string>Y</string></string></dict></dict></plist>",
	                "text or element"},
	        /* CommandUUID cannot be added after a <plist><dict> in a comment. */
	        {"<!-- <plist><dict> --><plist><dict><key>Command</key><dict><key>RequestType"
	         "</key><string>X</string></dict></dict></plist>",
	                "cannot add CommandUUID"},
	};
	const char *p[3] = {UDID_A, NULL, NULL};
	char *u;
	char big[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p[1] = bad[i].command;
		refused(enqueue1, 2, p, "22023", bad[i].rule);
	}

	/* Duplicate CommandUUID, in either case. */
	p[1] = "<plist><dict><key>CommandUUID</key>"
	       "<string>11111111-2222-4333-8444-555555555555</string><key>Command</key><dict>"
	       "<key>RequestType</key><string>ProfileList</string></dict></dict></plist>";
	u = call(enqueue1, 2, p);
	free(u);
	refused(enqueue1, 2, p, "23505", "already used");
	p[0] = UDID_B;
	refused(enqueue1, 2, p, "23505", "already used");
	p[1] = "<plist><dict><key>CommandUUID</key>"
	       "<string>11111111-2222-4333-8444-555555555555</string><key>Command</key><dict>"
	       "<key>RequestType</key><string>ProfileList</string></dict></dict></plist>";
	refused(enqueue1, 2, p, "23505", "already used");

	/* Devices: unknown, without enrollment, NULL. */
	p[1] = cmd_ok;
	p[0] = "no-such-udid";
	refused(enqueue1, 2, p, "P0002", "no device-channel enrollment");
	p[0] = UDID_NOENR;
	refused(enqueue1, 2, p, "P0002", "no device-channel enrollment");
	refused("SELECT mdm.cmd_restart_device($1)", 1, p, "P0002", "no device-channel enrollment");
	p[0] = NULL;
	refused(enqueue1, 2, p, "22004", "no NULL");
	p[0] = UDID_A;
	p[1] = NULL;
	refused(enqueue1, 2, p, "22004", "command is NULL");

	/* Over the size limit, before anything is parsed. */
	snprintf(big, sizeof(big), "%d", 4194305);
	refused("SELECT mdm.enqueue_command($1, repeat(' ', $2::integer))", 2,
	        (const char *const[]){UDID_A, big}, "22023", "larger than 4 MiB");

	/* Builders: PIN, control characters, empty values. */
	p[1] = "12345";
	refused("SELECT mdm.cmd_device_lock($1, $2)", 2, p, "22023", "PIN must be 6 digits");
	refused("SELECT mdm.cmd_erase_device($1, $2)", 2, p, "22023", "PIN must be 6 digits");
	p[1] = "12345a";
	refused("SELECT mdm.cmd_device_lock($1, $2)", 2, p, "22023", "PIN must be 6 digits");
	p[1] = "1234567";
	refused("SELECT mdm.cmd_device_lock($1, $2)", 2, p, "22023", "PIN must be 6 digits");
	p[1] = "\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6"; /* Arabic-Indic digits */
	refused("SELECT mdm.cmd_device_lock($1, $2)", 2, p, "22023", "PIN must be 6 digits");
	p[1] = NULL;
	p[2] = "bell \a here";
	refused("SELECT mdm.cmd_device_lock($1, $2, $3)", 3, p, "22023", "control characters");
	p[1] = "com.example\x1b[2J";
	refused("SELECT mdm.cmd_remove_profile($1, $2)", 2, p, "22023", "control characters");
	p[1] = "\xef\xbf\xbe"; /* U+FFFE */
	refused("SELECT mdm.cmd_remove_profile($1, $2)", 2, p, "22023", "control characters");
	p[1] = "{DeviceName,\"a\x01\"}";
	refused("SELECT mdm.cmd_device_information($1, $2::text[])", 2, p, "22023",
	        "control characters");
	p[1] = "{}";
	refused("SELECT mdm.cmd_device_information($1, $2::text[])", 2, p, "22023", "queries");
	p[1] = "";
	refused("SELECT mdm.cmd_remove_profile($1, $2)", 2, p, "22023", "identifier is empty");
	refused("SELECT mdm.cmd_install_profile($1, $2::bytea)", 2, p, "22023", "profile is empty");
	/* A raw plist with a control character is not XML at all. */
	p[1] = "<plist><dict><key>Command</key><dict><key>RequestType</key><string>X</string>"
	       "<key>M</key><string>\x01</string></dict></dict></plist>";
	refused(enqueue1, 2, p, "22023", "not well-formed XML");

	ck_assert_int_eq(count("SELECT count(*) FROM mdm.command"), 1);
}
END_TEST

START_TEST(hostile_strings)
{
	static const char *const strings[] = {
	        "</string><key>x</key>",
	        "</string></dict><key>Command</key><dict><key>RequestType</key>"
	        "<string>EraseDevice</string></dict></dict></plist>",
	        "&amp;",
	        "&lt;&#0;&#x1;&foo;",
	        "\"double\" and 'single' quotes",
	        "'; DROP TABLE mdm.device; --",
	        "<![CDATA[ x ]]>",
	        "]]>",
	        "<!-- comment -->",
	        "tab\there, LF\nthere, CR\rthere, CRLF\r\n",
	        "  leading and trailing spaces  ",
	        "\xc3\xbc\xc3\xb1\xc3\xaf\xc3\xa7\xc3\xb8"
	        "d\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
	        "\xf0\x9f\x94\x92 \xe2\x80\xae"
	        " RTL",
	        "$1 $2 %s %n \\ \\x00",
	};
	const char *p[3] = {UDID_A, NULL, NULL};
	char *u;
	plist *pl;

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		p[2] = strings[i];
		p[1] = NULL;
		u = call("SELECT mdm.cmd_device_lock($1, $2, $3)", 3, p);
		pl = stored(u, UDID_A, "DeviceLock");
		ck_assert_str_eq(plist_dict_get_string0(command_of(pl), "Message"), strings[i]);
		ck_assert_uint_eq(plist_dict_count(command_of(pl)), 2);
		plist_free(pl);
		free(u);

		p[1] = strings[i];
		u = call("SELECT mdm.cmd_remove_profile($1, $2)", 2, p);
		pl = stored(u, UDID_A, "RemoveProfile");
		ck_assert_str_eq(plist_dict_get_string0(command_of(pl), "Identifier"), strings[i]);
		plist_free(pl);
		free(u);
	}
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.device"), 3);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.command WHERE request_type NOT IN "
	                       "('DeviceLock', 'RemoveProfile')"),
	        0);
}
END_TEST

START_TEST(array_all_or_nothing)
{
	static const char cmd[] = "<plist><dict><key>Command</key><dict><key>RequestType</key>"
	                          "<string>ProfileList</string></dict></dict></plist>";
	const char *p[3] = {NULL, cmd, "5"};
	char *u, *s;

	p[0] = "{" UDID_A "," UDID_B "}";
	u = call("SELECT mdm.enqueue_command($1::text[], $2, $3::integer)", 3, p);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.command"), 1);
	s = query1("SELECT string_agg(udid || ':' || priority, ',' ORDER BY udid) FROM mdm.queue "
	           "WHERE command_uuid = upper($1)",
	        1, (const char *const[]){u});
	ck_assert_str_eq(s, UDID_A ":5," UDID_B ":5");
	free(s);
	free(u);

	/* The same UDID twice: one delivery. */
	p[0] = "{" UDID_B "," UDID_B "}";
	u = call("SELECT mdm.enqueue_command($1::text[], $2)", 2, p);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.command_queue"), 3);
	free(u);

	/* One device without enrollment: nothing at all. */
	p[0] = "{" UDID_A "," UDID_NOENR "," UDID_B "}";
	refused("SELECT mdm.enqueue_command($1::text[], $2)", 2, p, "P0002", UDID_NOENR);
	p[0] = "{" UDID_A ",nope}";
	refused("SELECT mdm.enqueue_command($1::text[], $2)", 2, p, "P0002", "nope");
	p[0] = "{}";
	refused("SELECT mdm.enqueue_command($1::text[], $2)", 2, p, "22004", "at least one UDID");
	p[0] = "{" UDID_A ",NULL}";
	refused("SELECT mdm.enqueue_command($1::text[], $2)", 2, p, "22004", "no NULL");
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.command"), 2);
}
END_TEST

START_TEST(clear_and_cancel)
{
	const char *p[2] = {UDID_A, NULL};
	char *u1, *u2, *u3, *s;

	u1 = call("SELECT mdm.cmd_profile_list($1)", 1, p);
	u2 = call("SELECT mdm.cmd_security_info($1)", 1, p);
	p[0] = "{" UDID_A "," UDID_B "}";
	p[1] = "<plist><dict><key>Command</key><dict><key>RequestType</key>"
	       "<string>CertificateList</string></dict></dict></plist>";
	u3 = call("SELECT mdm.enqueue_command($1::text[], $2)", 2, p);
	/* A user-channel command and an answered one are queued too. */
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.command_queue (enrollment_id, command_uuid) "
	                         "SELECT e.id, upper($1) FROM mdm.enrollment e "
	                         "WHERE e.user_id = 'user-1'",
	                         1, (const char *const[]){u1}, NULL),
	        MDM_OK);
	ck_assert_int_eq(db_exec(d,
	                         "UPDATE mdm.command_queue SET status = 'acknowledged', "
	                         "finished_at = now() WHERE command_uuid = upper($1)",
	                         1, (const char *const[]){u2}, NULL),
	        MDM_OK);

	/* command_cancel: every still-queued delivery of that command. */
	s = query1("SELECT mdm.command_cancel($1::uuid)", 1, (const char *const[]){u3});
	ck_assert_str_eq(s, "2");
	free(s);
	s = query1("SELECT mdm.command_cancel($1::uuid)", 1, (const char *const[]){u3});
	ck_assert_str_eq(s, "0");
	free(s);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.command_queue WHERE status = 'canceled' "
	                       "AND finished_at IS NOT NULL"),
	        2);
	refused("SELECT mdm.command_cancel($1::uuid)", 1,
	        (const char *const[]){"99999999-9999-4999-8999-999999999999"}, "P0002",
	        "no command");

	/* queue_clear: device and user channel of A, not the acknowledged one, not B. */
	s = query1("SELECT mdm.queue_clear($1)", 1, (const char *const[]){UDID_A});
	ck_assert_str_eq(s, "2");
	free(s);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.queue"), 0);
	s = query1("SELECT string_agg(status, ',' ORDER BY id) FROM mdm.command_queue", 0, NULL);
	ck_assert_str_eq(s, "canceled,acknowledged,canceled,canceled,canceled");
	free(s);
	s = query1("SELECT mdm.queue_clear($1)", 1, (const char *const[]){UDID_A});
	ck_assert_str_eq(s, "0");
	free(s);
	refused("SELECT mdm.queue_clear($1)", 1, (const char *const[]){"nope"}, "P0002",
	        "no enrollment");
	free(u1);
	free(u2);
	free(u3);
}
END_TEST

START_TEST(notify)
{
	PGconn *l = PQconnectdb(tdb.conninfo);
	PGresult *r;
	PGnotify *n;
	char seen[256] = "";
	char *u;
	int tries;

	ck_assert_int_eq(PQstatus(l), CONNECTION_OK);
	r = PQexec(l, "LISTEN mdm_command");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);

	u = call("SELECT mdm.enqueue_command($1::text[], $2)", 2,
	        (const char *const[]){"{" UDID_B "," UDID_A "}",
	                "<plist><dict><key>Command</key><dict><key>RequestType</key>"
	                "<string>ProfileList</string></dict></dict></plist>"});
	free(u);
	u = call("SELECT mdm.cmd_restart_device($1)", 1, (const char *const[]){UDID_B});
	free(u);
	/* A refusal notifies nobody. */
	refused("SELECT mdm.cmd_restart_device($1)", 1, (const char *const[]){UDID_NOENR}, "P0002",
	        "enrollment");

	for (tries = 0; tries < 50 && strlen(seen) < 3 * strlen(UDID_A) + 3; tries++) {
		struct pollfd pfd = {.fd = PQsocket(l), .events = POLLIN};

		(void)poll(&pfd, 1, 100);
		ck_assert_int_eq(PQconsumeInput(l), 1);
		while ((n = PQnotifies(l)) != NULL) {
			ck_assert_str_eq(n->relname, "mdm_command");
			strncat(seen, n->extra, sizeof(seen) - strlen(seen) - 2);
			strcat(seen, ",");
			PQfreemem(n);
		}
	}
	ck_assert_str_eq(seen, UDID_A "," UDID_B "," UDID_B ",");
	PQfinish(l);
}
END_TEST

START_TEST(operator_role)
{
	static const char *const denied[] = {
	        "SELECT count(*) FROM mdm.command",
	        "SELECT count(*) FROM mdm.command_queue",
	        "SELECT count(*) FROM mdm.command_result",
	        "SELECT count(*) FROM mdm.enrollment",
	        "SELECT count(*) FROM mdm.device",
	        "SELECT count(*) FROM mdm.challenge",
	        "UPDATE mdm.command_queue SET priority = 9",
	        "DELETE FROM mdm.command_queue",
	        "SELECT mdm.plist_escape('x')",
	        "SELECT mdm.command_check('<plist/>')",
	        "SELECT mdm.command_plist('X')",
	};
	static const char *const views[] = {
	        "mdm.devices",
	        "mdm.enrollments",
	        "mdm.certificates",
	        "mdm.queue",
	        "mdm.command_results",
	        "mdm.identity_bindings",
	        "mdm.push_certs",
	        "mdm.scep_pending",
	};
	PGresult *r;
	char sql[128];
	char *s;

	r = PQexec(pg, "SET ROLE mdm_operator");
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK,
	        "SET ROLE mdm_operator: %s (the test user must be a superuser or a member of "
	        "mdm_operator, as scripts/stack.sh makes it)",
	        PQerrorMessage(pg));
	PQclear(r);

	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", views[i]);
		r = PQexec(pg, sql);
		ck_assert_msg(
		        PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(pg));
		PQclear(r);
	}
	/* Issue 13: a key URI may carry a pkcs11 pin-value; the operator never sees it. */
	r = PQexec(pg, "SELECT key_uri FROM mdm.push_certs");
	ck_assert_msg(
	        PQresultStatus(r) == PGRES_FATAL_ERROR, "operator read mdm.push_certs.key_uri");
	ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501");
	PQclear(r);
	r = PQexec(pg,
	        "SELECT topic, subject, serial, sha256, not_before, not_after, expired, "
	        "imported_at, "
	        "active_enrollments, enrollments, open_challenges FROM mdm.push_certs");
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(pg));
	PQclear(r);
	r = PQexec(pg,
	        "SELECT mdm.cmd_device_information('" UDID_A "'), "
	        "mdm.cmd_device_lock('" UDID_B "', '123456', 'x'), "
	        "mdm.enqueue_command('" UDID_A "', '<plist><dict><key>Command</key><dict>"
	        "<key>RequestType</key><string>ProfileList</string></dict></dict></plist>', "
	        "3), mdm.scep_challenge_new(), current_user");
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(pg));
	ck_assert_str_eq(PQgetvalue(r, 0, 4), "mdm_operator");
	PQclear(r);
	r = PQexec(pg, "SELECT count(*) FROM mdm.queue");
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(pg));
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "3");
	PQclear(r);
	r = PQexec(pg,
	        "SELECT mdm.queue_clear('" UDID_B "'), mdm.command_cancel(("
	        "SELECT command_uuid::uuid FROM mdm.queue WHERE priority = 3))");
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQerrorMessage(pg));
	ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
	ck_assert_str_eq(PQgetvalue(r, 0, 1), "1");
	PQclear(r);
	/* certificate_revoke reaches the table: no such certificate, not permission denied. */
	r = PQexec(pg, "SELECT mdm.certificate_revoke('ABCDEF')");
	ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "P0002");
	PQclear(r);

	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		r = PQexec(pg, denied[i]);
		ck_assert_msg(PQresultStatus(r) == PGRES_FATAL_ERROR, "allowed: %s", denied[i]);
		ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501");
		PQclear(r);
	}

	/* The commands carry who queued them: the login, not the role. */
	s = query1("SELECT string_agg(DISTINCT created_by, ',') FROM mdm.command", 0, NULL);
	ck_assert_str_ne(s, "mdm_operator");
	free(s);

	/* PUBLIC gets nothing: a role without mdm_operator is refused the API. */
	r = PQexec(pg, "RESET ROLE");
	PQclear(r);
	r = PQexec(pg,
	        "SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON "
	        "n.oid = p.pronamespace WHERE n.nspname = 'mdm' AND p.proname <> "
	        "'ca_touch' AND has_function_privilege('public', p.oid, 'EXECUTE')");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_msg(PQntuples(r) == 0, "PUBLIC may execute %s", PQgetvalue(r, 0, 0));
	PQclear(r);
	/* Every API function runs as its definer with a fixed search_path. */
	r = PQexec(pg,
	        "SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON "
	        "n.oid = p.pronamespace WHERE n.nspname = 'mdm' AND "
	        "has_function_privilege('mdm_operator', p.oid, 'EXECUTE') AND NOT "
	        "(p.prosecdef AND 'search_path=pg_catalog, pg_temp' = ANY(p.proconfig))");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_msg(PQntuples(r) == 0, "not SECURITY DEFINER with search_path: %s",
	        PQgetvalue(r, 0, 0));
	PQclear(r);
}
END_TEST

START_TEST(comments)
{
	/* Every object of the API is documented. */
	ck_assert_int_eq(count("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON "
	                       "n.oid = p.pronamespace WHERE n.nspname = 'mdm' AND "
	                       "p.proname <> 'ca_touch' AND obj_description(p.oid, 'pg_proc') "
	                       "IS NULL"),
	        0);
	ck_assert_int_eq(count("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
	                       "n.oid = c.relnamespace WHERE n.nspname = 'mdm' AND "
	                       "c.relkind IN ('r', 'v') AND obj_description(c.oid, 'pg_class') "
	                       "IS NULL"),
	        0);
}
END_TEST

/*
 * Issue 13: anonymous GET /enroll makes a challenge each; expired unspent
 * ones are purged when a new one is made, spent or referenced ones kept.
 */
START_TEST(challenge_purge)
{
	PGresult *r;

	/* Old rows as if made before: the purge would take them at once. */
	r = PQexec(pg, "ALTER TABLE mdm.challenge DISABLE TRIGGER challenge_purge");
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(pg));
	PQclear(r);
	free(query1(
	        "WITH i AS (INSERT INTO mdm.challenge (challenge_sha256, created_at, expires_at) "
	        "SELECT encode(sha256(convert_to('old' || i, 'UTF8')), 'hex'), "
	        "now() - interval '3 days', now() - interval '2 days' "
	        "FROM generate_series(1, 5) i RETURNING 1) SELECT count(*) FROM i",
	        0, NULL));
	free(query1("WITH i AS (INSERT INTO mdm.challenge (challenge_sha256, created_at, "
	            "expires_at, used_at) "
	            "VALUES (encode(sha256('spent'::bytea), 'hex'), now() - interval '3 days', "
	            "now() - interval '2 days', now() - interval '3 days') RETURNING 1) SELECT "
	            "count(*) FROM i",
	        0, NULL));
	free(query1(
	        "WITH i AS (INSERT INTO mdm.challenge (challenge_sha256, created_at, expires_at) "
	        "VALUES (encode(sha256('recent'::bytea), 'hex'), now() - interval '2 hours', "
	        "now() - interval '1 hour') RETURNING 1) SELECT count(*) FROM i",
	        0, NULL));
	r = PQexec(pg, "ALTER TABLE mdm.challenge ENABLE TRIGGER challenge_purge");
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(pg));
	PQclear(r);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge"), 7);
	free(query1("SELECT mdm.scep_challenge_new()", 0, NULL));
	/* The five long expired went; the spent, the just expired and the new one stay. */
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge"), 3);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge WHERE used_at IS NOT NULL"), 1);
	free(query1("SELECT mdm.ota_challenge_new()", 0, NULL));
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge"), 4);
}
END_TEST

/*
 * The profile an encrypted InstallProfile carries is parsed by lib/plist
 * at delivery; mdm.cmd_install_profile(..., true) must refuse at enqueue
 * exactly what that parser refuses (issue 13, 4: <integer>0x1</integer>
 * passed PostgreSQL's xmlparse, failed at delivery and wedged the
 * channel).  Each document goes through both; they must agree.
 */
#define PC_OPEN  "<plist version=\"1.0\"><dict><key>PayloadContent</key><array><dict>"
#define PC_CLOSE "</dict></array></dict></plist>"
#define PC(v)    PC_OPEN "<key>V</key>" v PC_CLOSE

static char *nested(const char *open, const char *close, int depth)
{
	size_t lo = strlen(open), lc = strlen(close);
	size_t cap = sizeof(PC_OPEN PC_CLOSE) + 64 + (size_t)depth * (lo + lc), n;
	char *s = malloc(cap);

	ck_assert_ptr_nonnull(s);
	n = (size_t)snprintf(s, cap, "%s<key>V</key>", PC_OPEN);
	for (int i = 0; i < depth; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s", open);
	n += (size_t)snprintf(s + n, cap - n, "<true/>");
	for (int i = 0; i < depth; i++)
		n += (size_t)snprintf(s + n, cap - n, "%s", close);
	snprintf(s + n, cap - n, "%s", PC_CLOSE);
	ck_assert(n < cap);
	return s;
}

START_TEST(profile_rules_match_lib_plist)
{
	static const char *const docs[] = {
	        PC("<integer>1</integer>"),
	        PC("<integer> -42 \n</integer>"),
	        PC("<integer>+7</integer>"),
	        PC("<integer>0x1</integer>"),
	        PC("<integer>1.0</integer>"),
	        PC("<integer></integer>"),
	        PC("<integer/>"),
	        PC("<integer>-</integer>"),
	        PC("<integer>1 2</integer>"),
	        PC("<integer>18446744073709551615</integer>"),
	        PC("<integer>18446744073709551616</integer>"),
	        PC("<integer>-9223372036854775808</integer>"),
	        PC("<integer>-9223372036854775809</integer>"),
	        PC("<integer>\xd9\xa1</integer>"),
	        PC("<integer>\xc2\xa0"
	           "1</integer>"),
	        PC("<real>1.5</real>"),
	        PC("<real>-.5e-3</real>"),
	        PC("<real>5.</real>"),
	        PC("<real>.</real>"),
	        PC("<real>1e</real>"),
	        PC("<real>0x1p3</real>"),
	        PC("<real>1e400</real>"),
	        PC("<real>1e-400</real>"),
	        PC("<real>NaN</real>"),
	        PC("<real>-Infinity</real>"),
	        PC("<real>nan(1)</real>"),
	        PC("<real> 2 </real>"),
	        PC("<date>2026-12-04T05:00:00Z</date>"),
	        PC("<date>2024-02-29T23:59:59Z</date>"),
	        PC("<date>2023-02-29T00:00:00Z</date>"),
	        PC("<date>1900-02-29T00:00:00Z</date>"),
	        PC("<date>2000-02-29T00:00:00Z</date>"),
	        PC("<date>2026-13-01T00:00:00Z</date>"),
	        PC("<date>2026-12-04T24:00:00Z</date>"),
	        PC("<date>2026-12-04T05:00:60Z</date>"),
	        PC("<date>2026-12-04 05:00:00Z</date>"),
	        PC("<date> 2026-12-04T05:00:00Z</date>"),
	        PC("<date>2026-12-04T05:00:00+01:00</date>"),
	        PC("<data>AAEC</data>"),
	        PC("<data>AA\n EC\t</data>"),
	        PC("<data></data>"),
	        PC("<data>AAE=</data>"),
	        PC("<data>AAF=</data>"),
	        PC("<data>AA==</data>"),
	        PC("<data>AB==</data>"),
	        PC("<data>AAE</data>"),
	        PC("<data>A=AA</data>"),
	        PC("<data>AA-_</data>"),
	        PC("<data>AAEC====</data>"),
	        PC("<string>caf\xc3\xa9 &amp; &#x26;</string>"),
	        PC("<string><![CDATA[<x>]]></string>"),
	        PC("<string>a<!-- c -->b</string>"),
	        PC("<true/>"),
	        PC("<true>x</true>"),
	        PC("<false></false>"),
	        PC("<bool/>"),
	        PC("<array><integer>1</integer><key>k</key></array>"),
	        PC("<dict><key>a</key><true/><key>a</key><false/></dict>"),
	        PC("<dict><key>a</key></dict>"),
	        PC("<dict><true/></dict>"),
	        PC("<string a=\"1\">x</string>"),
	        "<plist version=\"1.1\"><dict><key>PayloadContent</key><array/></dict></plist>",
	        "<plist><dict><key>PayloadContent</key><array/></dict></plist>",
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC "
	        "\"-//Apple//DTD PLIST 1.0//EN\" "
	        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
	        "<plist version=\"1.0\"><dict><key>PayloadContent</key><array/></dict></plist>\n",
	        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><plist><dict><key>PayloadContent"
	        "</key><array/></dict></plist>",
	        "<?xml version=\"1.1\"?><plist><dict><key>PayloadContent</key><array/></dict>"
	        "</plist>",
	        "<?pi x?><plist><dict><key>PayloadContent</key><array/></dict></plist>",
	        "<plist><dict><key>PayloadContent</key><array/></dict><?pi x?></plist>",
	        "<!DOCTYPE plist [<!ENTITY e \"x\">]><plist><dict><key>PayloadContent</key>"
	        "<array/></dict></plist>",
	        "<plist><dict><key>PayloadContent</key><array/></dict></plist><!-- after -->",
	        "<plist></plist>",
	        "<plist/>",
	        "<plist><dict><key>PayloadContent</key><array/></dict><dict/></plist>",
	        "<plist><dict><key>PayloadContent</key><array/></dict>x</plist>",
	        "<plist><dict><key>PayloadContent</key><array/><key>PayloadContent</key><array/>"
	        "</dict></plist>",
	        "\xef\xbb\xbf<plist><dict><key>PayloadContent</key><array/></dict></plist>",
	};
	char *deep[4] = {
	        nested("<array>", "</array>", 61),
	        nested("<array>", "</array>", 62),
	        nested("<dict><key>k</key>", "</dict>", 61),
	        nested("<dict><key>k</key>", "</dict>", 62),
	};
	int disagree = 0;

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]) + 4; i++) {
		const char *doc = i < sizeof(docs) / sizeof(docs[0])
		        ? docs[i]
		        : deep[i - sizeof(docs) / sizeof(docs[0])];
		plist *pl = NULL;
		int lib = plist_parse(doc, strlen(doc), &pl) == MDM_OK;
		const char *p[1] = {doc};
		PGresult *r = PQexecParams(
		        pg, "SELECT mdm.plist_check($1, 'test')", 1, NULL, p, NULL, NULL, 0);
		int sql = PQresultStatus(r) == PGRES_TUPLES_OK;

		if (lib != sql) {
			printf("commands_sql: lib/plist %s, mdm.plist_check %s (%s): %.200s\n",
			        lib ? "accepts" : "refuses", sql ? "accepts" : "refuses",
			        sql ? "" : PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), doc);
			disagree++;
		} else if (!sql) {
			const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			ck_assert_msg(st && strcmp(st, "22023") == 0, "%s: sqlstate %s", doc, st);
		}
		PQclear(r);
		plist_free(pl);
	}
	for (int i = 0; i < 4; i++)
		free(deep[i]);
	ck_assert_int_eq(disagree, 0);
	/* And the API itself: the profile that wedged the channel is refused, nothing written. */
	{
		const char *p[2] = {UDID_A, PC("<integer>0x1</integer>")};

		refused("SELECT mdm.cmd_install_profile($1, convert_to($2, 'UTF8'), true)", 2, p,
		        "22023", "invalid <integer>");
	}
}
END_TEST

void commands_sql_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "sql", 60, setup, teardown);

	ts_add_tests(tc, builders, enqueue_raw, refusals, encrypted_install_profile,
	        profile_rules_match_lib_plist, hostile_strings, array_all_or_nothing,
	        clear_and_cancel, notify, operator_role, comments, challenge_purge);
}
