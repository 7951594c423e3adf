/*
 * An iPhone and a Mac through the real Apache and PostgreSQL, played by
 * tests/sim/applesim (E2E_APPLESIM), whose every message has the shape
 * of a real capture: enrollment profile, SCEP with Apple's throw-away
 * signer of its own key (the shape the server refused before issue 12),
 * check-in, the command channel answered with the real captured plists
 * (MDM_VECTORS) or templates of their shape, identity renewal, CheckOut.
 * Then the SCEP refusals a device's mistakes or an attacker's get, each
 * a FAILURE CertRep with its failInfo and nothing issued.
 *
 * Environment (tests/run.sh): E2E_APPLESIM, E2E_HTTPS_BASE, E2E_TLS_CA,
 * E2E_DEVICE_CA (the root the profile signer chains to), E2E_TMP,
 * E2E_MODE, MDM_DB, MDM_VECTORS (optional).
 */
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Suite *applesim_e2e_suite(void);

static char tmpdir[256];
static const char *sim, *base, *tls_ca, *device_ca, *mode;

/* Runs applesim with args for the device in DIR/name; its exit status. */
static int applesim(const char *name, const char *args)
{
	return e2e_applesim(tmpdir, name, args);
}

#define SIM_OK(name, args) ck_assert_msg(applesim(name, args) == 0, "applesim %s failed", args)

/* A value of the device's state file (DIR/name/state); malloc'd. */
static char *state(const char *name, const char *key)
{
	char path[512], *s, *line, *save = NULL, *v = NULL;
	size_t klen = strlen(key);

	snprintf(path, sizeof(path), "%s/%s/state", tmpdir, name);
	s = ts_file_get(path, NULL);
	for (line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, key, klen) == 0 && line[klen] == '=')
			v = strdup(line + klen + 1);
	free(s);
	ck_assert_msg(v != NULL, "%s: no %s in the device state", name, key);
	return v;
}

static char *count_certs(void)
{
	return e2e_query1("SELECT count(*)::text FROM mdm.certificate WHERE kind = 'device'", NULL);
}

/* Does the simulator's log for name hold this line fragment? */
static int log_has(const char *name, const char *what)
{
	return ts_sh("grep -q -- '%s' %s/%s.log", what, tmpdir, name) == 0;
}

static void queue(const char *udid, const char *sql)
{
	free(e2e_query1(sql, udid));
}

/* The enrollment the simulator made: bound to its identity, push token stored. */
static void assert_enrolled(const char *name, const char *udid)
{
	char want[200], *fp = state(name, "identity_sha256");

	snprintf(want, sizeof(want), "true/%s/true", fp);
	e2e_assert_query(
	        "SELECT enrolled::text || '/' || identity_sha256 || '/' || has_push_token::text "
	        "FROM mdm.devices WHERE udid = $1 AND user_id IS NULL",
	        udid, want);
	free(fp);
}

/*
 * Apple's SCEP signer is not the CSR's key: the issued identity holds
 * the CSR's key, the throw-away certificate another one.
 */
static void assert_signer_not_csr_key(const char *name)
{
	ck_assert_int_eq(ts_sh("cd %s/%s && openssl x509 -in scep-signer.pem -noout -pubkey "
	                       ">signer.pub && openssl x509 -in identity.pem -noout -pubkey "
	                       ">identity.pub && ! cmp -s signer.pub identity.pub",
	                         tmpdir, name),
	        0);
}

/* The renewal: recorded as one, the device bound to it, the old identity refused. */
static void assert_renewed(const char *name, const char *udid)
{
	char *old = state(name, "previous_identity_sha256"), *fp = state(name, "identity_sha256");
	char want[200];

	snprintf(want, sizeof(want), "%s,%s", old, fp);
	e2e_assert_query("SELECT (n.renewal_of = o.id)::text FROM mdm.certificate n, "
	                 "mdm.certificate o WHERE o.sha256 = split_part($1, ',', 1) AND "
	                 "n.sha256 = split_part($1, ',', 2)",
	        want, "true");
	snprintf(want, sizeof(want), "true/%s/renewal", fp);
	e2e_assert_query("SELECT enrolled::text || '/' || identity_sha256 || '/' || "
	                 "(SELECT reason FROM mdm.identity_binding WHERE udid = d.udid ORDER BY id "
	                 "DESC LIMIT 1) FROM mdm.devices d WHERE udid = $1 AND user_id IS NULL",
	        udid, want);
	/* The identity renewed away opens nothing any more. */
	ck_assert_int_eq(ts_sh("cd %s/%s && b=$(ls log/*-TokenUpdate.req | tail -n 1) && "
	                       "code=$(curl -sS --cacert %s --cert identity-1.pem --key "
	                       "identity-1.key -X PUT --data-binary @$b -H 'Content-Type: "
	                       "application/x-apple-aspen-mdm-checkin' -o /dev/null -w "
	                       "'%%{http_code}' '%s/mdm/checkin') && test \"$code\" = 403",
	                         tmpdir, name, tls_ca, base),
	        0);
	free(old);
	free(fp);
}

static void assert_checked_out(const char *udid)
{
	e2e_assert_query("SELECT bool_or(active)::text || '/' || bool_and(checked_out_at IS NOT "
	                 "NULL)::text FROM mdm.enrollment WHERE udid = $1",
	        udid, "false/true");
	e2e_assert_query(
	        "SELECT enrolled::text FROM mdm.devices WHERE udid = $1 AND user_id IS NULL", udid,
	        "false");
}

/*
 * The iPhone: the profile's SignMessage (true) makes it sign every
 * request (SHA-1, as the real header) besides TLS; SCEP by POST.
 */
START_TEST(iphone_lifecycle)
{
	char *before = count_certs(), *after, *udid;

	SIM_OK("iphone", "enroll --device iphone");
	udid = state("iphone", "udid");
	after = count_certs();
	ck_assert_int_eq(atoi(after), atoi(before) + 1);
	ck_assert_msg(log_has("iphone", "PKCSReq sent by POST"), "the PKCSReq was not POSTed");
	assert_signer_not_csr_key("iphone");
	assert_enrolled("iphone", udid);
	e2e_assert_query("SELECT string_agg(message_type || ':' || auth, ',' ORDER BY id) FROM "
	                 "mdm.checkin WHERE udid = $1",
	        udid, "Authenticate:both,TokenUpdate:both");
	/*
	 * Its TokenUpdate is stored without its secrets (issue 13, 7): the push
	 * magic and the 1484-byte unlock token are only in mdm.enrollment.
	 */
	e2e_assert_query("SELECT (strpos(convert_from(c.body, 'UTF8'), e.push_magic) = 0 AND "
	                 "convert_from(c.body, 'UTF8') ~ '<key>UnlockToken</key>\\s*"
	                 "<string>\\(redacted\\)</string>' AND e.unlock_token IS NOT NULL)::text "
	                 "FROM mdm.checkin c JOIN mdm.enrollment e ON e.udid = c.udid AND "
	                 "e.user_id IS NULL WHERE c.udid = $1 AND c.message_type = 'TokenUpdate'",
	        udid, "true");
	/* The profile's one-time challenge bought this certificate. */
	e2e_assert_query("SELECT count(*)::text FROM mdm.challenge h JOIN mdm.device d ON "
	                 "d.identity_certificate_id = h.used_by_certificate WHERE d.udid = $1",
	        udid, "1");

	/* The command channel: five answers as captured, one NotNow, one Error. */
	queue(udid, "SELECT mdm.cmd_device_information($1)::text");
	queue(udid, "SELECT mdm.cmd_security_info($1)::text");
	queue(udid, "SELECT mdm.cmd_profile_list($1)::text");
	queue(udid, "SELECT mdm.cmd_certificate_list($1)::text");
	queue(udid, "SELECT mdm.cmd_installed_application_list($1)::text");
	queue(udid,
	        "SELECT mdm.cmd_install_profile($1, convert_to('<plist version=\"1.0\">"
	        "<dict/></plist>', 'UTF8'))::text");
	queue(udid, "SELECT mdm.cmd_remove_profile($1, 'com.example.absent')::text");
	if (getenv("MDM_VECTORS") == NULL)
		printf("applesim-e2e: MDM_VECTORS unset: the answers are applesim's templates\n");
	SIM_OK("iphone", "commands --notnow InstallProfile --error RemoveProfile");
	e2e_assert_query("SELECT string_agg(request_type, ',') FROM mdm.queue WHERE udid = $1",
	        udid, "InstallProfile");
	SIM_OK("iphone", "commands");
	e2e_assert_query("SELECT count(*)::text FROM mdm.queue WHERE udid = $1", udid, "0");
	e2e_assert_query("SELECT string_agg(request_type || ':' || status, ',' ORDER BY "
	                 "received_at, status) "
	                 "FROM mdm.command_results WHERE udid = $1",
	        udid,
	        "DeviceInformation:Acknowledged,SecurityInfo:Acknowledged,ProfileList:Acknowledged,"
	        "CertificateList:Acknowledged,InstalledApplicationList:Acknowledged,"
	        "InstallProfile:NotNow,RemoveProfile:Error,InstallProfile:Acknowledged");
	e2e_assert_query("SELECT (result_json->'QueryResponses'->>'OSVersion' IS NOT NULL AND "
	                 "result_json->'QueryResponses'->>'UDID' = udid)::text "
	                 "FROM mdm.command_results WHERE udid = $1 AND "
	                 "request_type = 'DeviceInformation'",
	        udid, "true");
	e2e_assert_query("SELECT (error_chain IS NOT NULL)::text FROM mdm.command_results WHERE "
	                 "udid = $1 AND status = 'Error'",
	        udid, "true");
	e2e_assert_query("SELECT (jsonb_array_length(result_json->'InstalledApplicationList') > "
	                 "0)::text FROM mdm.command_results WHERE udid = $1 AND "
	                 "request_type = 'InstalledApplicationList'",
	        udid, "true");

	/* Renewal, then on under the new identity without Authenticate. */
	free(before);
	before = count_certs();
	SIM_OK("iphone", "renew tokenupdate commands");
	free(after);
	after = count_certs();
	ck_assert_int_eq(atoi(after), atoi(before) + 1);
	assert_renewed("iphone", udid);
	e2e_assert_query("SELECT string_agg(message_type || ':' || auth, ',' ORDER BY id) FROM "
	                 "mdm.checkin WHERE udid = $1",
	        udid, "Authenticate:both,TokenUpdate:both,TokenUpdate:both");

	SIM_OK("iphone", "checkout");
	assert_checked_out(udid);
	free(before);
	free(after);
	free(udid);
}
END_TEST

/*
 * The Mac: SCEP by GET (base64 unescaped, as macOS sends it), the
 * challenge also a signed attribute (mdmclient), SHA-256 signatures, the
 * console user's channel.
 */
START_TEST(mac_lifecycle)
{
	char *udid, *user;

	SIM_OK("mac", "enroll --device mac --scep-get");
	udid = state("mac", "udid");
	user = state("mac", "user_id");
	ck_assert_msg(log_has("mac", "PKCSReq sent by GET"), "the PKCSReq did not go by GET");
	assert_signer_not_csr_key("mac");
	assert_enrolled("mac", udid);
	e2e_assert_query("SELECT string_agg(message_type || ':' || auth || ':' || "
	                 "(user_id IS NOT NULL)::text, ',' ORDER BY id) FROM mdm.checkin "
	                 "WHERE udid = $1",
	        udid,
	        "Authenticate:both:false,TokenUpdate:both:false,UserAuthenticate:both:true,"
	        "TokenUpdate:both:true");
	e2e_assert_query("SELECT active::text || '/' || user_short_name || '/' || user_long_name "
	                 "FROM mdm.enrollment WHERE user_id = $1",
	        user, "true/applesim/Apple Simulator");
	queue(udid, "SELECT mdm.cmd_device_information($1)::text");
	queue(udid, "SELECT mdm.cmd_security_info($1)::text");
	queue(udid, "SELECT mdm.cmd_profile_list($1)::text");
	queue(udid, "SELECT mdm.cmd_certificate_list($1)::text");
	SIM_OK("mac", "commands");
	e2e_assert_query(
	        "SELECT string_agg(request_type || ':' || status, ',' ORDER BY received_at) "
	        "FROM mdm.command_results WHERE udid = $1",
	        udid,
	        "DeviceInformation:Acknowledged,SecurityInfo:Acknowledged,ProfileList:Acknowledged,"
	        "CertificateList:Acknowledged");
	SIM_OK("mac", "renew");
	ck_assert_msg(log_has("mac", "RenewalReq sent by GET"), "the RenewalReq did not go by GET");
	SIM_OK("mac", "tokenupdate commands");
	assert_renewed("mac", udid);
	SIM_OK("mac", "checkout");
	assert_checked_out(udid);
	free(udid);
	free(user);
}
END_TEST

/*
 * Issue 13 (2): one identity, eight Authenticates for eight UDIDs sent at
 * once through Apache.  Exactly one is bound (200), the others 403, and
 * nothing of theirs is stored.
 */
/* One tag per pass sharing the test database (proxy, fcgid, lighttpd). */
static const char *race_tag(void)
{
	return mode[0] == 'f' ? "F" : mode[0] == 'l' ? "L" : "P";
}

START_TEST(racing_authenticates)
{
	char *n, want[16];

	SIM_OK("racer", "profile scep --device iphone");
	ck_assert_int_eq(
	        ts_sh("cd %s/racer && for i in 1 2 3 4 5 6 7 8; do "
	              "printf '<?xml version=\"1.0\" encoding=\"UTF-8\"?>\\n<plist "
	              "version=\"1.0\">"
	              "<dict><key>BuildVersion</key><string>22A3354</string><key>MessageType</key>"
	              "<string>Authenticate</string><key>OSVersion</key><string>18.0</string>"
	              "<key>ProductName</key><string>iPhone15,2</string><key>SerialNumber</key>"
	              "<string>RACE%%s</string><key>Topic</key><string>%%s</string><key>UDID</key>"
	              "<string>00008110-RACE%s%%07d</string></dict></plist>\\n' $i "
	              "\"$E2E_PUSH_TOPIC\" "
	              "$i >auth$i.plist; done; for i in 1 2 3 4 5 6 7 8; do curl -sS --cacert %s "
	              "--cert identity.pem --key identity.key -X PUT -H 'Content-Type: "
	              "application/x-apple-aspen-mdm-checkin' --data-binary @auth$i.plist -o "
	              "/dev/null -w '%%{http_code}\\n' '%s/mdm/checkin' >code$i & done; wait; "
	              "cat code? | sort | uniq -c | tr -s ' ' >codes; cat codes",
	                tmpdir, race_tag(), tls_ca, base),
	        0);
	{
		char path[512], *codes;

		snprintf(path, sizeof(path), "%s/racer/codes", tmpdir);
		codes = ts_file_get(path, NULL);
		ck_assert_msg(
		        strstr(codes, " 1 200\n") != NULL && strstr(codes, " 7 403\n") != NULL,
		        "want one 200 and seven 403, got: %s", codes);
		free(codes);
	}
	n = e2e_query1("SELECT count(*)::text FROM mdm.device WHERE udid LIKE '00008110-RACE' || "
	               "$1 || '%'",
	        race_tag());
	snprintf(want, sizeof(want), "1");
	ck_assert_str_eq(n, want);
	free(n);
	e2e_assert_query(
	        "SELECT count(*)::text FROM mdm.identity_binding b JOIN mdm.certificate c "
	        "ON c.id = b.certificate_id WHERE c.udid LIKE '00008110-RACE' || $1 || '%'",
	        race_tag(), "1");
}
END_TEST

/* The profile aside, one authentication at a time: TLS alone, Mdm-Signature alone. */
START_TEST(auth_one_way)
{
	static const struct {
		const char *name, *args, *want;
	} c[] = {
	        {"tls-only", "enroll --auth tls commands", "Authenticate:tls,TokenUpdate:tls"},
	        {"sig-only", "enroll --auth signature commands",
	                "Authenticate:signature,TokenUpdate:signature"},
	        {"sig-mac", "enroll --device mac --auth signature commands",
	                "Authenticate:signature,TokenUpdate:signature,"
	                "UserAuthenticate:signature,TokenUpdate:signature"},
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char *udid;

		SIM_OK(c[i].name, c[i].args);
		udid = state(c[i].name, "udid");
		assert_enrolled(c[i].name, udid);
		e2e_assert_query("SELECT string_agg(message_type || ':' || auth, ',' ORDER BY id) "
		                 "FROM mdm.checkin WHERE udid = $1",
		        udid, c[i].want);
		free(udid);
	}
}
END_TEST

/* One refused PKIOperation: the expected FAILURE, and no certificate issued. */
static void refused(const char *args)
{
	char *before = count_certs(), *after, full[1024];

	snprintf(full, sizeof(full), "scep %s", args);
	SIM_OK("refusals", full);
	after = count_certs();
	ck_assert_msg(strcmp(before, after) == 0, "%s: %s certificates before, %s after", args,
	        before, after);
	free(before);
	free(after);
}

static char *challenge_new(void)
{
	return e2e_query1("SELECT mdm.scep_challenge_new()", NULL);
}

START_TEST(scep_refusals)
{
	char args[512], *ch, *txid, *profile_ch, *fp, *before, *after;

	SIM_OK("refusals", "profile");
	profile_ch = state("refusals", "challenge");
	/* The CSR's signature is not its key's: no proof of possession. */
	refused("--tamper-csr --expect-failure badMessageCheck");
	/* An MD5-signed pkiMessage. */
	refused("--digest md5 --expect-failure badAlg");
	/* A challenge the server never gave. */
	refused("--challenge not-a-challenge-of-ours --expect-failure badRequest");
	/* None of those spent the profile's challenge: it enrolls now, once. */
	e2e_assert_query("SELECT (used_at IS NULL)::text FROM mdm.challenge WHERE "
	                 "challenge_sha256 = encode(sha256(convert_to($1, 'UTF8')), 'hex')",
	        profile_ch, "true");
	SIM_OK("refusals", "scep");
	refused("--expect-failure badRequest"); /* the same challenge again */
	/*
	 * The transactionID of that enrollment from another throw-away key,
	 * with a valid fresh challenge: only the binding of the transaction
	 * to its signer's key refuses it.
	 */
	txid = state("refusals", "scep_txid");
	ch = challenge_new();
	snprintf(args, sizeof(args),
	        "--challenge %s --transaction-id %s --expect-failure badRequest", ch, txid);
	refused(args);
	e2e_assert_query("SELECT (used_at IS NULL)::text FROM mdm.challenge WHERE "
	                 "challenge_sha256 = encode(sha256(convert_to($1, 'UTF8')), 'hex')",
	        ch, "true");
	/* And that challenge still buys a certificate, sent by GET this time. */
	snprintf(args, sizeof(args), "scep --scep-get --challenge %s", ch);
	SIM_OK("refusals", args);
	ck_assert_msg(log_has("refusals", "PKCSReq sent by GET"), "the PKCSReq did not go by GET");
	/* A RenewalReq signed by a revoked identity renews nothing. */
	fp = state("refusals", "identity_sha256");
	free(e2e_query1("SELECT mdm.certificate_revoke(serial, 'keyCompromise')::text FROM "
	                "mdm.certificate WHERE sha256 = $1",
	        fp));
	before = count_certs();
	SIM_OK("refusals", "renew --expect-failure badMessageCheck");
	after = count_certs();
	ck_assert_str_eq(before, after);
	free(fp);
	free(before);
	free(after);
	free(ch);
	free(txid);
	free(profile_ch);
}
END_TEST

/* applesim without --tls-ca: only what the profile gives it (and the system's store). */
static int applesim_bare(const char *name, const char *args)
{
	return ts_sh("%s %s --dir %s/%s --trust %s >>%s/%s.log 2>&1", sim, args, tmpdir, name,
	        device_ca, tmpdir, name);
}

/*
 * The stack's TLS CA is private and not in the system's store: the device
 * trusts the MDM URLs through the profile's com.apple.security.root
 * payload (tls_trust_ca_file) alone, and SCEP's CA through CAFingerprint.
 */
START_TEST(profile_only_trust)
{
	char url[600], *udid;

	snprintf(url, sizeof(url), "enroll --enroll-url '%s/enroll'", base);
	ck_assert_msg(applesim_bare("bare", url) == 0, "applesim enroll without --tls-ca failed");
	ck_assert_msg(log_has("bare", "1 trust anchor payload"), "no trust anchor payload read");
	ck_assert_msg(log_has("bare", "CAFingerprint (SHA-1)"), "CAFingerprint was not checked");
	udid = state("bare", "udid");
	assert_enrolled("bare", udid);
	free(udid);
}
END_TEST

/*
 * A profile without the anchor (tls_trust_ca_file empty, made by mdmctl
 * and handed over as a file): the device refuses the server's TLS, as an
 * iPhone does, and nothing is enrolled.
 */
START_TEST(profile_without_anchor_refused)
{
	char dir[512], *udid, *before, *after;

	snprintf(dir, sizeof(dir), "%s/noanchor", tmpdir);
	ck_assert_int_eq(ts_sh("mkdir -p %s && MDM_TLS_TRUST_CA_FILE= %s/mdmctl profile enroll "
	                       "--out %s/profile.mobileconfig >%s.mdmctl.log 2>&1 || "
	                       "{ cat %s.mdmctl.log; exit 1; }",
	                         dir, getenv("E2E_MDMCTL_DIR"), dir, dir, dir),
	        0);
	snprintf(dir, sizeof(dir), "profile --profile-file %s/noanchor/profile.mobileconfig",
	        tmpdir);
	ck_assert_int_eq(applesim_bare("noanchor", dir), 0);
	ck_assert_msg(log_has("noanchor", "0 trust anchor payload"), "the profile had an anchor");
	before = count_certs();
	ck_assert_int_eq(applesim_bare("noanchor", "scep"), 0); /* SCEP is plain HTTP */
	ck_assert_int_ne(applesim_bare("noanchor", "authenticate"), 0);
	ck_assert_msg(log_has("noanchor", "SSL certificate problem"),
	        "the refusal was not the server's certificate");
	after = count_certs();
	ck_assert_int_eq(atoi(after), atoi(before) + 1);
	udid = state("noanchor", "udid");
	e2e_assert_query("SELECT count(*)::text FROM mdm.checkin WHERE udid = $1", udid, "0");
	free(udid);
	free(before);
	free(after);
}
END_TEST

/* A CAFingerprint that is not GetCACert's CA: the device gives up before any request. */
START_TEST(ca_fingerprint_mismatch_refused)
{
	char args[600], *before = count_certs(), *after;

	snprintf(args, sizeof(args), "profile --enroll-url '%s/enroll'", base);
	ck_assert_int_eq(applesim_bare("badfp", args), 0);
	ck_assert_int_eq(ts_sh("sed -i 's/^ca_fingerprint=.*/ca_fingerprint="
	                       "00112233445566778899aabbccddeeff00112233/' %s/badfp/state",
	                         tmpdir),
	        0);
	ck_assert_int_ne(applesim_bare("badfp", "scep"), 0);
	ck_assert_msg(log_has("badfp", "CAFingerprint names"), "not refused for the fingerprint");
	after = count_certs();
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
}
END_TEST

/* mdmctl profile enroll with env (MDM_* settings) into DIR/name/profile.mobileconfig. */
static void mdmctl_profile(const char *name, const char *env)
{
	char dir[512];

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	ck_assert_int_eq(ts_sh("mkdir -p %s && env %s %s/mdmctl profile enroll --out "
	                       "%s/profile.mobileconfig >%s.mdmctl.log 2>&1 || "
	                       "{ cat %s.mdmctl.log; exit 1; }",
	                         dir, env, getenv("E2E_MDMCTL_DIR"), dir, dir, dir),
	        0);
}

/*
 * Pinning on (mdm_pinning, the stack's TLS CA as tls_trust_ca_file): the
 * simulator holds the check-in and server URLs to the pinned anchor
 * payload, and enrolls and takes commands through it with nothing else.
 */
START_TEST(pinned_anchor_enrolls)
{
	char args[600], *udid;

	mdmctl_profile("pinned", "MDM_MDM_PINNING=yes MDM_MDM_PINNING_REVOCATION_CHECK=no");
	snprintf(args, sizeof(args),
	        "enroll commands --profile-file %s/pinned/profile.mobileconfig", tmpdir);
	ck_assert_msg(applesim_bare("pinned", args) == 0, "applesim with pinning failed");
	ck_assert_msg(log_has("pinned", "ServerURL pinned, CheckInURL pinned"),
	        "the profile's pins were not read");
	udid = state("pinned", "udid");
	assert_enrolled("pinned", udid);
	free(udid);
}
END_TEST

/*
 * The profile pins a CA that is not the server's (tls_trust_ca_file names
 * another CA) while the device trusts the server's CA otherwise (--tls-ca,
 * its system store): the device refuses the server at the pinned URL, as
 * an iPhone does, and nothing checks in.  The same profile without
 * pinning is accepted through --tls-ca: the pin is what refuses.
 */
START_TEST(pinned_other_ca_refused)
{
	char args[900], *udid;

	ck_assert_int_eq(
	        ts_sh("mkdir -p %s/otherca && openssl req -x509 -newkey rsa:2048 -nodes "
	              "-keyout %s/otherca/key.pem -out %s/otherca/ca.pem -days 30 "
	              "-subj '/CN=Another TLS CA' -addext basicConstraints=critical,CA:true "
	              "2>/dev/null",
	                tmpdir, tmpdir, tmpdir),
	        0);
	snprintf(args, sizeof(args), "MDM_TLS_TRUST_CA_FILE=%s/otherca/ca.pem MDM_MDM_PINNING=yes",
	        tmpdir);
	mdmctl_profile("otherpin", args);
	snprintf(args, sizeof(args),
	        "profile scep --profile-file %s/otherpin/profile.mobileconfig --tls-ca %s", tmpdir,
	        tls_ca);
	ck_assert_int_eq(applesim_bare("otherpin", args), 0);
	ck_assert_msg(log_has("otherpin", "CheckInURL pinned"), "the profile's pins were not read");
	ck_assert_int_ne(applesim_bare("otherpin", "authenticate"), 0);
	ck_assert_msg(log_has("otherpin", "holds none of the pinned certificates"),
	        "not refused for the pin");
	udid = state("otherpin", "udid");
	e2e_assert_query("SELECT count(*)::text FROM mdm.checkin WHERE udid = $1", udid, "0");
	free(udid);
	/* Without the pins, --tls-ca alone is trusted. */
	snprintf(args, sizeof(args), "MDM_TLS_TRUST_CA_FILE=%s/otherca/ca.pem MDM_MDM_PINNING=no",
	        tmpdir);
	mdmctl_profile("otherunpinned", args);
	snprintf(args, sizeof(args),
	        "enroll --profile-file %s/otherunpinned/profile.mobileconfig --tls-ca %s", tmpdir,
	        tls_ca);
	ck_assert_msg(applesim_bare("otherunpinned", args) == 0,
	        "the unpinned profile was refused through --tls-ca");
	udid = state("otherunpinned", "udid");
	assert_enrolled("otherunpinned", udid);
	free(udid);
}
END_TEST

/*
 * tls_server_chain_file instead of tls_trust_ca_file: the chain Apache
 * serves (its certificate as the handshake gives it, then the TLS CA).
 * Private: the profile carries the CA as the one anchor payload and the
 * simulator enrolls through it alone.  The same chain made public (the
 * TLS CA in mdmctl's OpenSSL default store, SSL_CERT_FILE): no anchor
 * payload, and a device with the CA in its system store (--tls-ca)
 * enrolls.
 */
START_TEST(server_chain_anchors)
{
	char args[1200], *udid;

	ck_assert_int_eq(ts_sh("mkdir -p %s/chain && hostport=$(echo '%s' | sed 's,^https://,,; "
	                       "s,/.*,,') && openssl s_client -connect \"$hostport\" -CAfile %s "
	                       "</dev/null 2>/dev/null | openssl x509 >%s/chain/leaf.pem && "
	                       "cat %s/chain/leaf.pem %s >%s/chain/chain.pem",
	                         tmpdir, base, tls_ca, tmpdir, tmpdir, tls_ca, tmpdir),
	        0);
	snprintf(args, sizeof(args),
	        "MDM_TLS_TRUST_CA_FILE= MDM_TLS_SERVER_CHAIN_FILE=%s/chain/chain.pem "
	        "SSL_CERT_FILE=/nonexistent SSL_CERT_DIR=/nonexistent",
	        tmpdir);
	mdmctl_profile("chainpriv", args);
	snprintf(args, sizeof(args), "enroll --profile-file %s/chainpriv/profile.mobileconfig",
	        tmpdir);
	ck_assert_msg(applesim_bare("chainpriv", args) == 0,
	        "applesim with the anchor of tls_server_chain_file failed");
	ck_assert_msg(log_has("chainpriv", "1 trust anchor payload"), "no anchor payload");
	udid = state("chainpriv", "udid");
	assert_enrolled("chainpriv", udid);
	free(udid);
	snprintf(args, sizeof(args),
	        "MDM_TLS_TRUST_CA_FILE= MDM_TLS_SERVER_CHAIN_FILE=%s/chain/chain.pem "
	        "SSL_CERT_FILE=%s SSL_CERT_DIR=/nonexistent",
	        tmpdir, tls_ca);
	mdmctl_profile("chainpub", args);
	snprintf(args, sizeof(args),
	        "enroll --profile-file %s/chainpub/profile.mobileconfig --tls-ca %s", tmpdir,
	        tls_ca);
	ck_assert_msg(applesim_bare("chainpub", args) == 0, "applesim with a public chain failed");
	ck_assert_msg(
	        log_has("chainpub", "0 trust anchor payload"), "an anchor for a public chain");
	udid = state("chainpub", "udid");
	assert_enrolled("chainpub", udid);
	free(udid);
}
END_TEST

/* ---------------------------------------------------------------- ACME identities (issue 18) */

/*
 * An enrollment profile whose identity payload is ACME (enroll_identity =
 * acme), made by mdmctl and handed to the device as a file; the device
 * (name) reads it, and its UDID and serial become expected devices
 * (mdm.acme_expected_device) unless unexpected.  The simulator gets the
 * stand-in for Apple's attestation service (tests/fixtures.sh).  0 when
 * the stack has no ACME (attest_standin not built): the caller skips.
 */
static int acme_profile(const char *name, const char *device, int expected)
{
	char dir[512], args[900], *udid, *serial, *v;

	if (getenv("E2E_ATTEST_STANDIN") == NULL || getenv("E2E_ATTEST_DIR") == NULL) {
		printf("applesim-e2e: no stand-in attestation service: the ACME cases skip\n");
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/%s-profile", tmpdir, name);
	ck_assert_int_eq(ts_sh("mkdir -p %s && MDM_ENROLL_IDENTITY=acme %s/mdmctl profile enroll "
	                       "--out %s/profile.mobileconfig >%s/mdmctl.log 2>&1 || "
	                       "{ cat %s/mdmctl.log; exit 1; }",
	                         dir, getenv("E2E_MDMCTL_DIR"), dir, dir, dir),
	        0);
	snprintf(args, sizeof(args),
	        "profile --device %s --profile-file %s/profile.mobileconfig --attest-standin %s "
	        "--attest-dir %s",
	        device, dir, getenv("E2E_ATTEST_STANDIN"), getenv("E2E_ATTEST_DIR"));
	SIM_OK(name, args);
	v = state(name, "identity_kind");
	ck_assert_str_eq(v, "acme");
	free(v);
	if (expected) {
		udid = state(name, "udid");
		serial = state(name, "serial");
		snprintf(args, sizeof(args), "%s,%s", udid, serial);
		free(e2e_query1(
		        "INSERT INTO mdm.acme_expected_device (udid, serial, comment) VALUES "
		        "(split_part($1, ',', 1), split_part($1, ',', 2), 'applesim-e2e') "
		        "RETURNING udid",
		        args));
		free(udid);
		free(serial);
	}
	return 1;
}

/* The identity the device got over ACME: Apple-attested, P-384, tied to its UDID. */
static void assert_acme_identity(const char *name, const char *udid)
{
	char *fp = state(name, "identity_sha256"), want[300];

	assert_enrolled(name, udid);
	ck_assert_int_eq(ts_sh("openssl x509 -in %s/%s/identity.pem -noout -text | grep -q "
	                       "'NIST CURVE: P-384'",
	                         tmpdir, name),
	        0);
	/*
	 * The chain from acme.fcgi is the leaf and the active CA (the HSM
	 * passes' CA is not device_ca), and verifies.
	 */
	ck_assert_int_eq(
	        ts_sh("cd %s/%s && awk 'n>0{print} /END CERTIFICATE/{n++}' acme-chain.pem "
	              ">acme-ca.pem && openssl verify -CAfile acme-ca.pem acme-chain.pem "
	              ">/dev/null && openssl x509 -in acme-ca.pem -outform DER | sha256sum | "
	              "cut -c1-64 >acme-ca.sha256",
	                tmpdir, name),
	        0);
	snprintf(want, sizeof(want), "%s/%s/acme-ca.sha256", tmpdir, name);
	{
		char *sha = ts_file_get(want, NULL);
		sha[strcspn(sha, "\n")] = '\0';
		e2e_assert_query("SELECT c.state FROM mdm.ca c JOIN mdm.certificate x ON x.id = "
		                 "c.certificate_id WHERE x.sha256 = $1",
		        sha, "active");
		free(sha);
	}
	snprintf(want, sizeof(want), "%s/%s/%s", udid, udid, fp);
	e2e_assert_query("SELECT a.udid || '/' || c.udid || '/' || c.sha256 FROM "
	                 "mdm.device_attestation a JOIN mdm.certificate c ON c.sha256 = "
	                 "a.certificate_sha256 WHERE a.udid = $1 AND c.kind = 'device'",
	        udid, want);
	free(fp);
}

/*
 * An iPhone with an ACME identity: attested, certified, then the MDM
 * check-ins by TLS client certificate and Mdm-Signature (ECDSA) together,
 * and the command channel; the certificate opens nothing for another UDID,
 * and nothing at all once revoked.
 */
START_TEST(acme_iphone_lifecycle)
{
	char *before, *after, *udid, *fp, *code, args[300];

	if (!acme_profile("acme-iphone", "iphone", 1))
		return;
	before = count_certs();
	SIM_OK("acme-iphone", "acme authenticate tokenupdate --auth both");
	after = count_certs();
	ck_assert_int_eq(atoi(after), atoi(before) + 1);
	udid = state("acme-iphone", "udid");
	assert_acme_identity("acme-iphone", udid);
	e2e_assert_query("SELECT string_agg(message_type || ':' || auth, ',' ORDER BY id) FROM "
	                 "mdm.checkin WHERE udid = $1",
	        udid, "Authenticate:both,TokenUpdate:both");
	/* The one-time ClientIdentifier bought this certificate and nothing else. */
	e2e_assert_query("SELECT count(*)::text FROM mdm.challenge h JOIN mdm.device d ON "
	                 "d.identity_certificate_id = h.used_by_certificate WHERE d.udid = $1 "
	                 "AND h.purpose = 'acme'",
	        udid, "1");
	queue(udid, "SELECT mdm.cmd_device_information($1)::text");
	queue(udid, "SELECT mdm.cmd_security_info($1)::text");
	SIM_OK("acme-iphone", "commands");
	e2e_assert_query("SELECT string_agg(request_type || ':' || status, ',' ORDER BY "
	                 "received_at) FROM mdm.command_results WHERE udid = $1",
	        udid, "DeviceInformation:Acknowledged,SecurityInfo:Acknowledged");
	/* A second device of the same identity: refused (the certificate is this UDID's). */
	ck_assert_int_eq(ts_sh("cd %s/acme-iphone && b=$(ls log/*-Authenticate.req | tail -n 1) && "
	                       "sed 's/%s/00008110-0000000000000BAD/' $b >other.req && "
	                       "code=$(curl -sS --cacert %s --cert identity.pem --key identity.key "
	                       "-X PUT --data-binary @other.req -H 'Content-Type: "
	                       "application/x-apple-aspen-mdm-checkin' -o /dev/null -w "
	                       "'%%{http_code}' '%s/mdm/checkin') && test \"$code\" = 403",
	                         tmpdir, udid, tls_ca, base),
	        0);
	/*
	 * A new ACME payload (a fresh ClientIdentifier for this UDID): a new
	 * attested key, recorded as renewed from the bound identity, which the
	 * device's next request rebinds to (reason renewal) with no
	 * Authenticate; the identity it replaced opens nothing more.
	 */
	code = e2e_query1("SELECT mdm.acme_client_identifier_new($1)", udid);
	snprintf(args, sizeof(args), "acme --challenge %s tokenupdate commands", code);
	SIM_OK("acme-iphone", args);
	assert_renewed("acme-iphone", udid);
	free(code);
	/* Revoked (mdm.certificate_revoke, as for a SCEP identity): it opens nothing more. */
	fp = state("acme-iphone", "identity_sha256");
	free(e2e_query1("SELECT mdm.certificate_revoke(serial, 'keyCompromise')::text FROM "
	                "mdm.certificate WHERE sha256 = $1",
	        fp));
	ck_assert_int_ne(applesim("acme-iphone", "tokenupdate"), 0);
	ck_assert_msg(log_has("acme-iphone", "HTTP 403"), "the revoked identity was not refused");
	e2e_assert_query("SELECT count(*)::text FROM mdm.checkin WHERE udid = $1", udid, "3");
	free(fp);
	free(before);
	free(after);
	free(udid);
}
END_TEST

/* A Mac with an ACME identity that signs every request (Mdm-Signature only, no TLS certificate). */
START_TEST(acme_mac_signature_only)
{
	char *udid;

	if (!acme_profile("acme-mac", "mac", 1))
		return;
	SIM_OK("acme-mac", "acme authenticate tokenupdate --auth signature");
	udid = state("acme-mac", "udid");
	assert_acme_identity("acme-mac", udid);
	e2e_assert_query("SELECT string_agg(message_type || ':' || auth, ',' ORDER BY id) FROM "
	                 "mdm.checkin WHERE udid = $1",
	        udid, "Authenticate:signature,TokenUpdate:signature");
	free(udid);
}
END_TEST

/*
 * What an attested enrollment refuses, seen from the device, each with
 * nothing certified: a device the server does not expect, an attestation
 * of another token (not this challenge's nonce), a CSR of a key that is
 * not the attested one; then the same device, now expected, succeeds
 * with the same ClientIdentifier (spent only when a certificate is issued).
 */
START_TEST(acme_refusals)
{
	char *before, *after, *udid, *serial, both[300];

	if (!acme_profile("acme-refused", "iphone", 0))
		return;
	before = count_certs();
	SIM_OK("acme-refused", "acme --acme-expect challenge:rejectedIdentifier");
	ck_assert_msg(log_has("acme-refused", "not one this server expects"),
	        "the unknown device was not refused as such");
	udid = state("acme-refused", "udid");
	serial = state("acme-refused", "serial");
	snprintf(both, sizeof(both), "%s,%s", udid, serial);
	free(e2e_query1("INSERT INTO mdm.acme_expected_device (udid, serial) VALUES "
	                "(split_part($1, ',', 1), split_part($1, ',', 2)) RETURNING udid",
	        both));
	SIM_OK("acme-refused",
	        "acme --attest-token not-the-challenge-token "
	        "--acme-expect challenge:badAttestationStatement");
	SIM_OK("acme-refused", "acme --csr-other-key --acme-expect finalize:badCSR");
	after = count_certs();
	ck_assert_str_eq(after, before);
	e2e_assert_query(
	        "SELECT count(*)::text FROM mdm.device_attestation WHERE udid = $1", udid, "0");
	SIM_OK("acme-refused", "acme authenticate tokenupdate");
	free(after);
	after = count_certs();
	ck_assert_int_eq(atoi(after), atoi(before) + 1);
	assert_acme_identity("acme-refused", udid);
	/* The spent ClientIdentifier buys nothing more. */
	SIM_OK("acme-refused", "acme --acme-expect order:rejectedIdentifier");
	free(before);
	free(after);
	free(udid);
	free(serial);
}
END_TEST

Suite *applesim_e2e_suite(void)
{
	mode = e2e_mode();
	sim = getenv("E2E_APPLESIM");
	e2e_stack(&base, &tls_ca, &device_ca);
	e2e_tmpdir(tmpdir, sizeof(tmpdir), "applesim-%s", mode);
	return ts_suite("applesim-e2e", "devices", 300, iphone_lifecycle, mac_lifecycle,
	        auth_one_way, racing_authenticates, scep_refusals, profile_only_trust,
	        profile_without_anchor_refused, ca_fingerprint_mismatch_refused,
	        pinned_anchor_enrolls, pinned_other_ca_refused, server_chain_anchors,
	        acme_iphone_lifecycle, acme_mac_signature_only, acme_refusals);
}
