/*
 * Enrollment and check-in end to end, through the real Apache and the
 * stack's PostgreSQL: tests/e2e/devsim.sh (a device simulator built on
 * curl, openssl, xmllint and a third-party SCEP client) fetches the
 * profile, verifies it, enrolls over SCEP and checks in, once by TLS
 * client certificate and once by Mdm-Signature.  Then the refusals, each
 * answered 400, 403 or 413 (never 401) with the database unchanged.
 *
 * Environment (tests/run.sh): E2E_HTTPS_BASE, E2E_TLS_CA, E2E_DEVICE_CA
 * (the root the profile signer chains to), E2E_CLIENT_CERT/KEY (a client
 * certificate of another CA), E2E_SELF_CERT/KEY (self-signed), E2E_TMP,
 * E2E_MODE, E2E_SCEP_LEGACY (1: scepclient can enroll; 0: certmonger),
 * MDM_DB.
 */
#include "db.h"
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"
#include "errors.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *checkin_e2e_suite(void);

static char tmpdir[256], devsim[1024], checkin_url[1024];
static const char *base, *tls_ca, *device_ca;
static int legacy = 1;

static char *snapshot(void)
{
	return e2e_query1(
	        "SELECT md5(concat_ws('#', "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.device t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.enrollment t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.checkin t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.identity_binding t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.certificate t)))",
	        NULL);
}

/* Runs the simulator for udid into DIR/<name>; returns its exit status. */
static int run_devsim(const char *name, const char *udid, const char *auth)
{
	return ts_sh("sh %s %s/%s '%s/enroll' %s %s %s %s %s >%s/%s.log 2>&1 || "
	             "{ cat %s/%s.log; exit 1; }",
	        devsim, tmpdir, name, base, device_ca, tls_ca, udid, auth,
	        legacy ? "scepclient" : "certmonger", tmpdir, name, tmpdir, name);
}

/* The SHA-256 of a PEM certificate, as mdm.certificate.sha256. */
static char *fingerprint(const char *pem)
{
	char *fp = calloc(1, 65);

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(
	        ts_run(fp, 65, "openssl x509 -in %s -outform DER | sha256sum | cut -c1-64", pem),
	        0);
	ck_assert_uint_eq(strlen(fp), 64);
	return fp;
}

/*
 * PUT body (a file) to the check-in URL.  cert/key: TLS client identity
 * (NULL: none); sig_cert/sig_key: sign sig_body (default body) into
 * Mdm-Signature.  Returns the HTTP status.
 */
static const char *put_extra = ""; /* more curl arguments (headers) */

static int put(const char *body, const char *cert, const char *key, const char *sig_cert,
        const char *sig_key, const char *sig_body, const char *ctype)
{
	char tls[1024] = "", sig[2048] = "", opts[4096], reply[1024];

	if (cert != NULL)
		snprintf(tls, sizeof(tls), "--cert %s --key %s", cert, key);
	if (sig_cert != NULL) {
		ck_assert_int_eq(ts_sh("openssl cms -sign -binary -in %s -signer %s -inkey %s "
		                       "-outform DER -out %s/put.sig",
		                         sig_body ? sig_body : body, sig_cert, sig_key, tmpdir),
		        0);
		snprintf(
		        sig, sizeof(sig), "-H \"Mdm-Signature: $(base64 -w0 %s/put.sig)\"", tmpdir);
	}
	snprintf(opts, sizeof(opts), "%s %s %s", tls, sig, put_extra);
	snprintf(reply, sizeof(reply), "%s/put.reply", tmpdir);
	return e2e_request("PUT", checkin_url, body, ctype, opts, reply);
}

#define CTYPE "application/x-apple-aspen-mdm-checkin"

START_TEST(devsim_tls)
{
	char udid[64], pem[1024], want[256], *fp;

	snprintf(udid, sizeof(udid), "DEVSIM-TLS-%s", getenv("E2E_MODE"));
	ck_assert_msg(run_devsim("tls", udid, "tls") == 0, "devsim (tls) failed, log above");
	snprintf(pem, sizeof(pem), "%s/tls/cert.pem", tmpdir);
	fp = fingerprint(pem);
	snprintf(want, sizeof(want), "true/%s/true", fp);
	e2e_assert_query(
	        "SELECT enrolled::text || '/' || identity_sha256 || '/' || has_push_token::text "
	        "FROM mdm.devices WHERE udid = $1",
	        udid, want);
	e2e_assert_query("SELECT string_agg(message_type || ':' || auth, ',' ORDER BY id) FROM "
	                 "mdm.checkin WHERE udid = $1",
	        udid, "Authenticate:tls,TokenUpdate:tls");
	/* The profile's challenge was spent by that enrollment. */
	e2e_assert_query("SELECT count(*) FROM mdm.challenge h JOIN mdm.certificate c ON "
	                 "c.id = h.used_by_certificate WHERE c.sha256 = $1",
	        fp, "1");
	free(fp);
}
END_TEST

START_TEST(devsim_signature)
{
	char udid[64], pem[1024], want[256], *fp;

	snprintf(udid, sizeof(udid), "DEVSIM-SIG-%s", getenv("E2E_MODE"));
	ck_assert_msg(
	        run_devsim("sig", udid, "signature") == 0, "devsim (signature) failed, log above");
	snprintf(pem, sizeof(pem), "%s/sig/cert.pem", tmpdir);
	fp = fingerprint(pem);
	snprintf(want, sizeof(want), "true/%s/true", fp);
	e2e_assert_query(
	        "SELECT enrolled::text || '/' || identity_sha256 || '/' || has_push_token::text "
	        "FROM mdm.devices WHERE udid = $1",
	        udid, want);
	e2e_assert_query("SELECT string_agg(message_type || ':' || auth, ',' ORDER BY id) FROM "
	                 "mdm.checkin WHERE udid = $1",
	        udid, "Authenticate:signature,TokenUpdate:signature");
	free(fp);
}
END_TEST

/* Each refused request: the status, never 401, and nothing written. */
static void refused(int want, const char *body, const char *cert, const char *key,
        const char *sig_cert, const char *sig_key, const char *sig_body, const char *ctype)
{
	char *before = snapshot(), *after;
	int code = put(body, cert, key, sig_cert, sig_key, sig_body, ctype);

	ck_assert_int_ne(code, 401);
	ck_assert_msg(code == want, "%s: HTTP %d, want %d", body, code, want);
	after = snapshot();
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
}

START_TEST(refusals)
{
	char a[300], b[300], akey[1024], acert[1024], bkey[1024], bcert[1024];
	char tok_a[1024], tok_b[1024], auth_b[1024], bad[1024], big[1024], other[1024];
	char *serial_b, udid_a[64], udid_b[64], extra[1200];
	const char *cc = getenv("E2E_CLIENT_CERT"), *ck = getenv("E2E_CLIENT_KEY");
	const char *sc = getenv("E2E_SELF_CERT"), *sk = getenv("E2E_SELF_KEY");

	snprintf(udid_a, sizeof(udid_a), "DEVSIM-A-%s", getenv("E2E_MODE"));
	snprintf(udid_b, sizeof(udid_b), "DEVSIM-B-%s", getenv("E2E_MODE"));
	ck_assert_msg(run_devsim("a", udid_a, "tls") == 0, "devsim a failed");
	ck_assert_msg(run_devsim("b", udid_b, "tls") == 0, "devsim b failed");
	snprintf(a, sizeof(a), "%s/a", tmpdir);
	snprintf(b, sizeof(b), "%s/b", tmpdir);
	snprintf(acert, sizeof(acert), "%s/cert.pem", a);
	snprintf(akey, sizeof(akey), "%s/key.pem", a);
	snprintf(bcert, sizeof(bcert), "%s/cert.pem", b);
	snprintf(bkey, sizeof(bkey), "%s/key.pem", b);
	snprintf(tok_a, sizeof(tok_a), "%s/tokenupdate.plist", a);
	snprintf(tok_b, sizeof(tok_b), "%s/tokenupdate.plist", b);
	snprintf(auth_b, sizeof(auth_b), "%s/authenticate.plist", b);
	snprintf(other, sizeof(other), "%s/checkout.plist", a);
	ts_file_put(other,
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>CheckOut</string>"
	        "<key>Topic</key><string>x</string><key>UDID</key><string>%s</string></dict>"
	        "</plist>\n",
	        udid_a);

	/* Sanity: A's own TokenUpdate is accepted both ways. */
	ck_assert_int_eq(put(tok_a, acert, akey, NULL, NULL, NULL, CTYPE), 200);
	ck_assert_int_eq(put(tok_a, NULL, NULL, acert, akey, NULL, CTYPE), 200);

	/* No certificate at all. */
	refused(403, tok_a, NULL, NULL, NULL, NULL, NULL, CTYPE);
	/*
	 * A's certificate (public) forged into an RFC 9440 Client-Cert header:
	 * believed only from trusted_proxies, which is empty here (issue 13, 9).
	 */
	snprintf(extra, sizeof(extra),
	        "-H \"Client-Cert: :$(openssl x509 -in %s -outform DER | base64 -w0):\"", acert);
	put_extra = extra;
	refused(403, tok_a, NULL, NULL, NULL, NULL, NULL, CTYPE);
	put_extra = "";
	/* A client certificate of another CA; a self-signed one; by TLS and by signature. */
	refused(403, tok_a, cc, ck, NULL, NULL, NULL, CTYPE);
	refused(403, tok_a, sc, sk, NULL, NULL, NULL, CTYPE);
	refused(403, tok_a, NULL, NULL, sc, sk, NULL, CTYPE);
	/* A's valid certificate for B: every message type. */
	refused(403, tok_b, acert, akey, NULL, NULL, NULL, CTYPE);
	refused(403, auth_b, acert, akey, NULL, NULL, NULL, CTYPE);
	refused(403, auth_b, NULL, NULL, acert, akey, NULL, CTYPE);
	/* Mdm-Signature over another body (tampered); TLS and signature disagreeing. */
	refused(403, tok_a, NULL, NULL, acert, akey, other, CTYPE);
	refused(403, tok_a, acert, akey, bcert, bkey, NULL, CTYPE);
	/* Malformed, wrong type, oversized. */
	snprintf(bad, sizeof(bad), "%s/bad.plist", tmpdir);
	ts_file_put(bad,
	        "<plist version=\"1.0\"><dict><key>MessageType</key>"
	        "<string>TokenUpdate</string></dict>");
	refused(400, bad, acert, akey, NULL, NULL, NULL, CTYPE);
	refused(400, tok_a, acert, akey, NULL, NULL, NULL, "text/plain");
	snprintf(big, sizeof(big), "%s/big.plist", tmpdir);
	ck_assert_int_eq(ts_sh("head -c 300000 /dev/zero | tr '\\0' a >%s", big), 0);
	refused(413, big, acert, akey, NULL, NULL, NULL, CTYPE);
	/* Revoked: B's certificate stops working at once. */
	serial_b = e2e_query1("SELECT identity_serial FROM mdm.devices WHERE udid = $1", udid_b);
	ck_assert_int_eq(put(tok_b, bcert, bkey, NULL, NULL, NULL, CTYPE), 200);
	free(e2e_query1("SELECT mdm.certificate_revoke($1, 'keyCompromise')::text", serial_b));
	refused(403, tok_b, bcert, bkey, NULL, NULL, NULL, CTYPE);
	refused(403, tok_b, NULL, NULL, bcert, bkey, NULL, CTYPE);
	free(serial_b);
}
END_TEST

/*
 * Issue 13: a captured signature-only request is accepted again and again
 * (Apple's protocol has no nonce).  Where checkin_require_tls applies (here
 * a Location of the test Apache sets MDM_CHECKIN_REQUIRE_TLS, as a
 * production one may), the replay is 403 citing the key; TLS still works.
 */
START_TEST(require_tls_refuses_replay)
{
	char dir[300], cert[1024], key[1024], tok[1024], idle[1024], saved[1024], reply[1024];
	char udid[64], *text;

	snprintf(udid, sizeof(udid), "DEVSIM-RTLS-%s", getenv("E2E_MODE"));
	ck_assert_msg(run_devsim("rtls", udid, "tls") == 0, "devsim rtls failed");
	snprintf(dir, sizeof(dir), "%s/rtls", tmpdir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(tok, sizeof(tok), "%s/tokenupdate.plist", dir);
	snprintf(idle, sizeof(idle), "%s/idle.plist", dir);
	snprintf(reply, sizeof(reply), "%s/put.reply", tmpdir);
	e2e_idle_plist(idle, udid);
	free(e2e_query1("SELECT mdm.cmd_device_lock($1, '123456', 'x')::text", udid));

	/* Without the setting the same signed body is accepted twice (the replay). */
	ck_assert_int_eq(put(tok, NULL, NULL, cert, key, NULL, CTYPE), 200);
	ck_assert_int_eq(put(tok, NULL, NULL, cert, key, NULL, CTYPE), 200);

	snprintf(saved, sizeof(saved), "%s", checkin_url);
	snprintf(checkin_url, sizeof(checkin_url), "%s/mdm/checkin/require-tls", base);
	refused(403, tok, NULL, NULL, cert, key, NULL, CTYPE);
	text = ts_file_get(reply, NULL);
	ck_assert_ptr_nonnull(strstr(text, "checkin_require_tls"));
	free(text);
	ck_assert_int_eq(put(tok, cert, key, NULL, NULL, NULL, CTYPE), 200);
	ck_assert_int_eq(put(tok, cert, key, cert, key, NULL, CTYPE), 200);

	/* The command channel: a signature-only Idle gets no DeviceLock. */
	snprintf(checkin_url, sizeof(checkin_url), "%s/mdm/server/require-tls", base);
	ck_assert_int_eq(
	        put(idle, NULL, NULL, cert, key, NULL, "application/x-apple-aspen-mdm"), 403);
	text = ts_file_get(reply, NULL);
	ck_assert_ptr_nonnull(strstr(text, "checkin_require_tls"));
	ck_assert_ptr_null(strstr(text, "DeviceLock"));
	free(text);
	e2e_assert_query("SELECT count(*)::text FROM mdm.queue WHERE udid = $1", udid, "1");
	ck_assert_int_eq(
	        put(idle, cert, key, NULL, NULL, NULL, "application/x-apple-aspen-mdm"), 200);
	text = ts_file_get(reply, NULL);
	ck_assert_ptr_nonnull(strstr(text, "DeviceLock"));
	free(text);
	snprintf(checkin_url, sizeof(checkin_url), "%s", saved);
}
END_TEST

Suite *checkin_e2e_suite(void)
{
	const char *root = getenv("E2E_DEVSIM");

	e2e_stack(&base, &tls_ca, &device_ca);
	legacy = e2e_legacy();
	e2e_tmpdir(tmpdir, sizeof(tmpdir), "devsim-%s", e2e_mode());
	snprintf(devsim, sizeof(devsim), "%s", root ? root : "tests/e2e/devsim.sh");
	snprintf(checkin_url, sizeof(checkin_url), "%s/mdm/checkin", base ? base : "");
	return ts_suite("checkin-e2e", "devsim", 300, devsim_tls, devsim_signature, refusals,
	        require_tls_refuses_replay);
}
