/*
 * Declarative Device Management (issue 17) through the real Apache and
 * PostgreSQL, the device played by tests/sim/applesim (its `ddm` step does
 * what a device does after a DeclarativeManagement command: tokens,
 * declaration-items, each new or changed declaration, a status report).
 * An operator works in SQL only: turns DDM on, puts declarations and sets,
 * changes and removes them, schedules a software update; the device sees
 * each change as a new token, a queued command and a push, gets 404 for
 * what it no longer has, and its status is readable in SQL.
 *
 * Environment (tests/run.sh): E2E_APPLESIM, E2E_HTTPS_BASE, E2E_TLS_CA,
 * E2E_DEVICE_CA, E2E_TMP, E2E_MODE, MDM_DB.
 */
#define _GNU_SOURCE /* asprintf */
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *ddm_e2e_suite(void);

static char tmpdir[256];
static const char *sim, *base, *tls_ca, *device_ca;

static int applesim(const char *name, const char *args)
{
	return e2e_applesim(tmpdir, name, args);
}

#define SIM_OK(name, args) ck_assert_msg(applesim(name, args) == 0, "applesim %s failed", args)

/* The contents of DIR/name/file; malloc'd. */
static char *sim_file(const char *name, const char *file)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s", tmpdir, name, file);
	return ts_file_get(path, NULL);
}

static char *state(const char *name, const char *key)
{
	char *s = sim_file(name, "state"), *line, *save = NULL, *v = NULL;
	size_t klen = strlen(key);

	for (line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, key, klen) == 0 && line[klen] == '=')
			v = strdup(line + klen + 1);
	free(s);
	ck_assert_msg(v != NULL, "%s: no %s in the device state", name, key);
	return v;
}

/* The device's ddm.log holds this line (as grep -x). */
static int ddm_log_has(const char *name, const char *line)
{
	return ts_sh("grep -qx -- '%s' %s/%s/ddm.log", line, tmpdir, name) == 0;
}

static void sql(const char *query, const char *param)
{
	free(e2e_query1(query, param));
}

/* The one ddm-endpoint check-in: "<HTTP status>\n<body>". */
static char *endpoint(const char *name, const char *ep, const char *body_file)
{
	char args[600];

	snprintf(args, sizeof(args), "ddm-endpoint --endpoint '%s'%s%s", ep,
	        body_file ? " --body " : "", body_file ? body_file : "");
	SIM_OK(name, args);
	return sim_file(name, "ddm-answer");
}

static void assert_endpoint(
        const char *name, const char *ep, const char *body_file, const char *status_prefix)
{
	char *a = endpoint(name, ep, body_file);

	ck_assert_msg(strncmp(a, status_prefix, strlen(status_prefix)) == 0, "%s: %.300s", ep, a);
	free(a);
}

/* A DeclarativeManagement is queued for udid, and the device's push is pending. */
static void assert_sync_queued(const char *udid)
{
	e2e_assert_query("SELECT count(*)::text FROM mdm.queue WHERE udid = $1 AND request_type "
	                 "= 'DeclarativeManagement'",
	        udid, "1");
	e2e_assert_query("SELECT s.pending::text FROM mdm.push_state s JOIN mdm.enrollment e ON "
	                 "e.id = s.enrollment_id WHERE e.udid = $1 AND e.user_id IS NULL",
	        udid, "true");
}

/* The device's commands step delivered it, with the token of now; then its sync. */
static void sync_device(const char *name, const char *udid)
{
	char *pushed, *tok;

	SIM_OK(name, "commands");
	e2e_assert_query("SELECT count(*)::text FROM mdm.queue WHERE udid = $1", udid, "0");
	pushed = state(name, "ddm_pushed_token");
	tok = e2e_query1("SELECT declarations_token FROM mdm.ddm_tokens WHERE udid = $1 AND "
	                 "user_id IS NULL",
	        udid);
	ck_assert_str_eq(pushed, tok);
	SIM_OK(name, "ddm");
	free(pushed);
	pushed = state(name, "ddm_token");
	ck_assert_str_eq(pushed, tok);
	free(pushed);
	free(tok);
}

static char *token_line(const char *kind, const char *id)
{
	char *t = e2e_query1("SELECT server_token FROM mdm.declarations WHERE identifier = $1", id),
	     *line = NULL;

	ck_assert_int_ne(asprintf(&line, "%s %s %s", kind, id, t), -1);
	free(t);
	return line;
}

/* The device's ddm.log says "verb kind id token" with the declaration's token of now. */
static void assert_ddm_log(const char *name, const char *verb, const char *kind, const char *id)
{
	char *line = token_line(kind, id), *want = NULL;

	ck_assert_int_ne(asprintf(&want, "%s %s", verb, line), -1);
	ck_assert_msg(ddm_log_has(name, want), "not in %s's ddm.log: %s", name, want);
	free(want);
	free(line);
}

START_TEST(ddm_lifecycle)
{
	char *udid, *other, *line, *old_cfg, *path = NULL;
	FILE *f;

	SIM_OK("ddm", "enroll --device iphone");
	SIM_OK("other", "enroll --device iphone");
	udid = state("ddm", "udid");
	other = state("other", "udid");
	/* Declarations are the server's, not a pass's: an earlier pass's go first. */
	sql("SELECT count(mdm.declaration_delete(x))::text FROM unnest(ARRAY['e2e.cfg', "
	    "'e2e.subs', 'e2e.act', 'e2e.legacy', $1]) x",
	        "e2e.su");

	/* Turning DDM on: the command, the push, the device's first (empty) sync. */
	sql("SELECT mdm.cmd_declarative_management($1)::text", udid);
	assert_sync_queued(udid);
	sync_device("ddm", udid);
	e2e_assert_query(
	        "SELECT count(*)::text FROM mdm.ddm_status_reports WHERE udid = $1", udid, "1");
	e2e_assert_query("SELECT value #>> '{}' FROM mdm.ddm_status WHERE udid = $1 AND item = "
	                 "'device.model.family'",
	        udid, "iPhone");

	/* Declarations from SQL: a configuration, status subscriptions, their activation. */
	sql("SELECT mdm.declaration_put('e2e.cfg', 'com.apple.configuration.management.test', "
	    "jsonb_build_object('Echo', $1::text))",
	        "one");
	sql("SELECT mdm.ddm_status_subscriptions('e2e.subs', ARRAY[$1, "
	    "'softwareupdate.install-state'])",
	        "device.operating-system.version");
	sql("SELECT mdm.ddm_activation('e2e.act', ARRAY['e2e.cfg', $1])", "e2e.subs");
	sql("SELECT count(mdm.declaration_set_add('e2e', x))::text FROM unnest(ARRAY['e2e.cfg', "
	    "'e2e.subs', $1]) x",
	        "e2e.act");
	sql("SELECT mdm.enrollment_set_add($1, 'e2e')::text", udid);
	assert_sync_queued(udid);
	sync_device("ddm", udid);
	old_cfg = token_line("configuration", "e2e.cfg");
	assert_ddm_log("ddm", "fetched", "configuration", "e2e.cfg");
	assert_ddm_log("ddm", "fetched", "configuration", "e2e.subs");
	assert_ddm_log("ddm", "fetched", "activation", "e2e.act");
	/* The declaration as the device got it. */
	{
		char *body = sim_file("ddm", "ddm-configuration-e2e.cfg.json");

		e2e_assert_query(
		        "SELECT ($1::jsonb = jsonb_build_object('Type', type, "
		        "'Identifier', identifier, 'ServerToken', server_token, 'Payload', "
		        "payload))::text FROM mdm.declarations WHERE identifier = 'e2e.cfg'",
		        body, "true");
		free(body);
	}
	/* Its status, per declaration, current. */
	e2e_assert_query("SELECT string_agg(identifier || ':' || valid || ':' || active || ':' || "
	                 "current, ',' ORDER BY identifier) FROM mdm.ddm_declaration_status WHERE "
	                 "udid = $1",
	        udid, "e2e.act:valid:true:true,e2e.cfg:valid:true:true,e2e.subs:valid:true:true");
	/* The other device gets none of it. */
	assert_endpoint("other", "declaration/configuration/e2e.cfg", NULL, "404\n");
	assert_endpoint("other", "declaration-items", NULL, "200\n");
	e2e_assert_query("SELECT count(*)::text FROM mdm.queue WHERE udid = $1", other, "0");

	/* A change: a new ServerToken and DeclarationsToken, the command, the push. */
	sql("SELECT mdm.declaration_put('e2e.cfg', 'com.apple.configuration.management.test', "
	    "jsonb_build_object('Echo', $1::text))",
	        "two");
	assert_sync_queued(udid);
	sync_device("ddm", udid);
	line = token_line("configuration", "e2e.cfg");
	ck_assert_str_ne(line, old_cfg);
	free(line);
	assert_ddm_log("ddm", "fetched", "configuration", "e2e.cfg");
	/* What did not change is not fetched again. */
	assert_ddm_log("ddm", "kept", "activation", "e2e.act");
	assert_ddm_log("ddm", "kept", "configuration", "e2e.subs");

	/* Removed from the set: the device removes it; 404 from then on. */
	sql("SELECT mdm.declaration_set_remove('e2e', $1)::text", "e2e.cfg");
	assert_sync_queued(udid);
	sync_device("ddm", udid);
	assert_ddm_log("ddm", "removed", "configuration", "e2e.cfg");
	assert_endpoint("ddm", "declaration/configuration/e2e.cfg", NULL, "404\n");

	/* A software update scheduled from SQL, its install state back in SQL. */
	sql("SELECT mdm.ddm_software_update('e2e.su', '26.1', '2026-12-24 18:00', $1, "
	    "'https://example.com/26.1')",
	        "23B74");
	sql("SELECT mdm.declaration_set_add('e2e', 'e2e.su')::text", NULL);
	sql("SELECT mdm.ddm_activation('e2e.act', ARRAY['e2e.su', $1])", "e2e.subs");
	sync_device("ddm", udid);
	assert_ddm_log("ddm", "fetched", "configuration", "e2e.su");
	e2e_assert_query("SELECT (value #>> '{}') || ' ' || (SELECT value ->> 'os-version' FROM "
	                 "mdm.ddm_status WHERE udid = $1 AND item = "
	                 "'softwareupdate.pending-version') FROM mdm.ddm_status WHERE udid = $1 "
	                 "AND item = 'softwareupdate.install-state'",
	        udid, "downloading 26.1");
	assert_endpoint("other", "declaration/configuration/e2e.su", NULL, "404\n");

	/* A legacy profile hosted here (legacy.yaml): to the device that gets it, only. */
	sql("SELECT mdm.ddm_legacy_profile('e2e.legacy', convert_to('<plist version=\"1.0\">"
	    "<dict/></plist>', 'UTF8'), $1)",
	        base);
	sql("SELECT mdm.declaration_set_add('e2e', 'e2e.legacy')::text", NULL);
	sql("SELECT mdm.ddm_activation('e2e.act', ARRAY['e2e.su', 'e2e.legacy', $1])", "e2e.subs");
	sync_device("ddm", udid);
	assert_ddm_log("ddm", "fetched", "configuration", "e2e.legacy");
	ck_assert_msg(ddm_log_has("ddm", "profile e2e.legacy 36"), "the profile was not fetched");
	{
		char *prof = sim_file("ddm", "ddm-profile-e2e.legacy");

		ck_assert_str_eq(prof, "<plist version=\"1.0\"><dict/></plist>");
		free(prof);
	}
	/* Another device's identity, and none: never the profile. */
	ck_assert_int_eq(ts_sh("code=$(curl -sS --cacert %s --cert %s/other/identity.pem --key "
	                       "%s/other/identity.key -o /dev/null -w '%%{http_code}' "
	                       "'%s/enroll/ddm/e2e.legacy') && test \"$code\" = 404",
	                         tls_ca, tmpdir, tmpdir, base),
	        0);
	ck_assert_int_eq(ts_sh("code=$(curl -sS --cacert %s -o /dev/null -w '%%{http_code}' "
	                       "'%s/enroll/ddm/e2e.legacy') && test \"$code\" = 403",
	                         tls_ca, base),
	        0);

	/* 400 through Apache: not JSON, not a StatusReport, an unknown Endpoint. */
	ck_assert_int_ne(asprintf(&path, "%s/garbage.json", tmpdir), -1);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"StatusItems\": {}, \"Errors\": [], \"Errors\": []}", f);
	fclose(f);
	assert_endpoint("ddm", "status", path, "400\n");
	assert_endpoint("ddm", "status", NULL, "400\n");
	assert_endpoint("ddm", "declarations", NULL, "400\n");
	assert_endpoint("ddm", "declaration/configuration/../../tokens", NULL, "400\n");
	e2e_assert_query(
	        "SELECT count(*)::text FROM mdm.ddm_status_reports WHERE udid = $1", udid, "6");
	free(path);
	free(old_cfg);
	free(udid);
	free(other);
}
END_TEST

/*
 * The iOS 26 check-ins: ReturnToService gets the operator's configuration
 * for that device (never another's) or Enabled false; GetToken a clear 501
 * while no token service is configured.
 */
START_TEST(return_to_service_and_get_token)
{
	char *udid, *other, *a;

	SIM_OK("rts", "enroll --device iphone");
	SIM_OK("rts-other", "enroll --device iphone");
	udid = state("rts", "udid");
	other = state("rts-other", "udid");
	sql("SELECT mdm.return_to_service_clear(NULL)::text", NULL);
	SIM_OK("rts", "return-to-service");
	a = sim_file("rts", "rts-answer");
	ck_assert_str_eq(a, "Enabled 0\n");
	free(a);
	sql("SELECT mdm.return_to_service_set($1, true, convert_to('wifi-profile', 'UTF8'))::text",
	        udid);
	SIM_OK("rts", "return-to-service");
	a = sim_file("rts", "rts-answer");
	ck_assert_str_eq(a, "Enabled 1\nWiFiProfileData 12\n");
	free(a);
	SIM_OK("rts-other", "return-to-service");
	a = sim_file("rts-other", "rts-answer");
	ck_assert_str_eq(a, "Enabled 0\n");
	free(a);
	e2e_assert_query("SELECT string_agg(message_type, ',' ORDER BY id) FROM mdm.checkin WHERE "
	                 "udid = $1 AND message_type = 'ReturnToService'",
	        udid, "ReturnToService,ReturnToService");
	SIM_OK("rts", "get-token");
	a = sim_file("rts", "gettoken-answer");
	ck_assert_msg(
	        strncmp(a, "501\n", 4) == 0 && strstr(a, "no token service") != NULL, "%s", a);
	free(a);
	free(udid);
	free(other);
}
END_TEST

Suite *ddm_e2e_suite(void)
{
	sim = getenv("E2E_APPLESIM");
	e2e_stack(&base, &tls_ca, &device_ca);
	e2e_tmpdir(tmpdir, sizeof(tmpdir), "ddm-%s", e2e_mode());
	return ts_suite("ddm-e2e", "devices", 300, ddm_lifecycle, return_to_service_and_get_token);
}
