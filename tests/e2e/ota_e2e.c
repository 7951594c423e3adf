/*
 * Over-the-air enrollment end to end, through the real Apache and the
 * stack's PostgreSQL: tests/e2e/otasim.sh runs phases 1 to 3 (curl,
 * openssl, xmllint and a third-party SCEP client) and decrypts the final
 * profile with `openssl cms -decrypt`.  Then the refusals, each answered
 * 400, 403 or 413 with the database unchanged: the phase-2 message
 * replayed, the Apple certificate again where phase 3 is due, phase 3
 * signed by another device's identity, a wrong challenge, a signer that
 * is neither Apple's nor ours, an unsigned body, garbage, a wrong
 * Content-Type, an oversized body.
 *
 * Environment (tests/run.sh): E2E_HTTPS_BASE, E2E_TLS_CA, E2E_DEVICE_CA,
 * E2E_OTASIM, E2E_OTA_DEVCA_CERT/KEY (the stand-in Apple device CA that
 * MDM_OTA_TRUST_FILE trusts), E2E_SELF_CERT/KEY, E2E_TMP, E2E_MODE,
 * E2E_SCEP_LEGACY, MDM_DB.
 */
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

Suite *ota_e2e_suite(void);

static char tmpdir[256], otasim[1024], ota_url[1024];
static const char *base, *tls_ca, *device_ca, *devca_cert, *devca_key;
static int legacy = 1;

static char *snapshot(void)
{
	return e2e_query1(
	        "SELECT md5(concat_ws('#', "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.ota_enrollment t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.device t), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.challenge t "
	        "  WHERE t.purpose = 'scep' OR t.used_at IS NOT NULL), "
	        "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.certificate t)))",
	        NULL);
}

static int run_otasim(const char *name, const char *udid)
{
	return ts_sh("sh %s %s/%s '%s' %s %s %s %s %s %s >%s/%s.log 2>&1 || "
	             "{ cat %s/%s.log; exit 1; }",
	        otasim, tmpdir, name, base, device_ca, tls_ca, udid, devca_cert, devca_key,
	        legacy ? "scepclient" : "certmonger", tmpdir, name, tmpdir, name);
}

/* POSTs file with ctype to the OTA URL; the HTTP status. */
static int post(const char *file, const char *ctype)
{
	char reply[1024];

	snprintf(reply, sizeof(reply), "%s/post.reply", tmpdir);
	return e2e_request("POST", ota_url, file, ctype, "", reply);
}

#define P7 "application/pkcs7-signature"

static void refused(int want, const char *file, const char *ctype)
{
	char *before = snapshot(), *after;
	int code = post(file, ctype);

	ck_assert_msg(code == want, "%s: HTTP %d, want %d", file, code, want);
	after = snapshot();
	ck_assert_msg(strcmp(before, after) == 0, "%s: the database changed", file);
	free(before);
	free(after);
}

/* dir/out.der: dir/attrs-like plist in signed by cert/key (openssl cms). */
static void sign(const char *in, const char *cert, const char *key, const char *out)
{
	ck_assert_int_eq(ts_sh("openssl cms -sign -nodetach -binary -in %s -signer %s -inkey %s "
	                       "-outform DER -out %s",
	                         in, cert, key, out),
	        0);
}

START_TEST(phases_1_to_3)
{
	char udid[64];

	snprintf(udid, sizeof(udid), "OTASIM-%s-%s", getenv("E2E_MODE"), "ONE");
	ck_assert_msg(run_otasim("one", udid) == 0, "otasim failed, log above");
	e2e_assert_query(
	        "SELECT string_agg(phase::text || ':' || (serial_number LIKE 'OTASIM%')::text "
	        "|| ':' || device_name || ':' || product, ',' ORDER BY id) FROM "
	        "mdm.ota_enrollments WHERE udid = $1",
	        udid, "2:true:otasim & co:iPhone15,2,3:true:otasim & co:iPhone15,2");
	/* Phase 3 was signed by the identity SCEP issued for this UDID. */
	e2e_assert_query("SELECT c.udid FROM mdm.ota_enrollment o JOIN mdm.certificate c ON "
	                 "c.id = o.certificate_id WHERE o.udid = $1",
	        udid, udid);
	/* Both answers' SCEP challenges were bound to the UDID; the first one is spent. */
	e2e_assert_query("SELECT count(*)::text || '/' || count(used_at)::text FROM mdm.challenge "
	                 "WHERE purpose = 'scep' AND udid = $1",
	        udid, "2/1");
}
END_TEST

/*
 * Issue 13 (1): with any Apple device's key, an attacker runs OTA phase 2
 * claiming a victim's UDID and gets an identity over the challenge phase 2
 * minted for it.  Authenticating as the victim with it is refused (403),
 * and the victim keeps its identity and enrollment.
 */
START_TEST(ota_cannot_take_over)
{
	const char *sim = getenv("E2E_APPLESIM"), *topic = getenv("E2E_PUSH_TOPIC");
	char udid[64], body[512], dir[600], url[512], *fp, *before, *after;

	ck_assert_ptr_nonnull(sim);
	ck_assert_ptr_nonnull(topic);
	snprintf(udid, sizeof(udid), "00008110-%c00000000000000A",
	        getenv("E2E_MODE")[0] == 'f'           ? 'F'
	                : getenv("E2E_MODE")[0] == 'l' ? 'C'
	                                               : 'E');
	ck_assert_msg(
	        ts_sh("rm -rf %s/victim && %s enroll --device iphone --udid %s --dir "
	              "%s/victim --enroll-url '%s/enroll' --trust %s --tls-ca %s "
	              ">%s/victim.log 2>&1 || { cat %s/victim.log; exit 1; }",
	                tmpdir, sim, udid, tmpdir, base, device_ca, tls_ca, tmpdir, tmpdir) == 0,
	        "applesim (the victim) failed");
	fp = e2e_query1("SELECT identity_sha256 FROM mdm.devices WHERE udid = $1 AND channel = "
	                "'device'",
	        udid);
	before =
	        e2e_query1("SELECT count(*)::text FROM mdm.identity_binding WHERE udid = $1", udid);
	/* The attacker's phases with the victim's UDID; phase 2 mints the challenge. */
	(void)run_otasim("attacker", udid);
	snprintf(body, sizeof(body), "%s/attacker/cert.pem", tmpdir);
	{
		struct stat st;
		ck_assert_msg(stat(body, &st) == 0,
		        "otasim got no identity for the claimed UDID (log in %s/attacker.log)",
		        tmpdir);
	}
	snprintf(body, sizeof(body), "%s/auth.plist", tmpdir);
	ts_file_put(body,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
	        "<key>BuildVersion</key><string>22A3354</string>"
	        "<key>MessageType</key><string>Authenticate</string>"
	        "<key>OSVersion</key><string>18.0</string>"
	        "<key>ProductName</key><string>iPhone15,2</string>"
	        "<key>SerialNumber</key><string>OTASIMATTACK</string>"
	        "<key>Topic</key><string>%s</string>"
	        "<key>UDID</key><string>%s</string></dict></plist>\n",
	        topic, udid);
	snprintf(dir, sizeof(dir), "%s/attacker", tmpdir);
	snprintf(url, sizeof(url), "%s/mdm/checkin", base);
	ck_assert_int_eq(
	        e2e_device_put(dir, url, body, "application/x-apple-aspen-mdm-checkin", NULL), 403);
	/* Nothing written: the victim's identity and bindings are as they were. */
	e2e_assert_query("SELECT identity_sha256 FROM mdm.devices WHERE udid = $1 AND channel = "
	                 "'device'",
	        udid, fp);
	after = e2e_query1("SELECT count(*)::text FROM mdm.identity_binding WHERE udid = $1", udid);
	ck_assert_str_eq(after, before);
	free(fp);
	free(before);
	free(after);
}
END_TEST

START_TEST(refusals)
{
	char a[512], b[512], f[1024], g[1024], udid_a[64], udid_b[64];
	const char *sc = getenv("E2E_SELF_CERT"), *sk = getenv("E2E_SELF_KEY");

	snprintf(udid_a, sizeof(udid_a), "OTASIM-%s-A", getenv("E2E_MODE"));
	snprintf(udid_b, sizeof(udid_b), "OTASIM-%s-B", getenv("E2E_MODE"));
	ck_assert_msg(run_otasim("a", udid_a) == 0, "otasim a failed");
	ck_assert_msg(run_otasim("b", udid_b) == 0, "otasim b failed");
	snprintf(a, sizeof(a), "%s/a", tmpdir);
	snprintf(b, sizeof(b), "%s/b", tmpdir);

	/* The phase-2 message replayed: its challenge is spent. */
	snprintf(f, sizeof(f), "%s/p2.der", a);
	refused(403, f, P7);
	/* Phase 3 due, signed by the Apple certificate again: a phase 2, challenge spent. */
	snprintf(f, sizeof(f), "%s/again.der", a);
	snprintf(g, sizeof(g), "%s/attrs.plist", a);
	{
		char ac[600], ak[600];

		snprintf(ac, sizeof(ac), "%s/apple.pem", a);
		snprintf(ak, sizeof(ak), "%s/apple.key", a);
		sign(g, ac, ak, f);
	}
	refused(403, f, P7);
	/* A's attributes signed by B's identity: that certificate belongs to B. */
	snprintf(f, sizeof(f), "%s/cross.der", tmpdir);
	{
		char bc[600], bk[600];

		snprintf(bc, sizeof(bc), "%s/cert.pem", b);
		snprintf(bk, sizeof(bk), "%s/key.pem", b);
		sign(g, bc, bk, f);
	}
	refused(403, f, P7);
	/* A wrong challenge, signed by a good Apple-issued certificate. */
	snprintf(f, sizeof(f), "%s/wrong.plist", tmpdir);
	ts_file_put(f,
	        "<plist version=\"1.0\"><dict><key>CHALLENGE</key><string>not-ours</string>"
	        "<key>UDID</key><string>OTASIM-WRONG</string></dict></plist>\n");
	snprintf(g, sizeof(g), "%s/wrong.der", tmpdir);
	{
		char ac[600], ak[600];

		snprintf(ac, sizeof(ac), "%s/apple.pem", a);
		snprintf(ak, sizeof(ak), "%s/apple.key", a);
		sign(f, ac, ak, g);
	}
	refused(403, g, P7);
	/* Signed by a self-signed certificate: neither Apple's nor ours. */
	snprintf(g, sizeof(g), "%s/self.der", tmpdir);
	sign(f, sc, sk, g);
	refused(403, g, P7);
	/* Unsigned, garbage, wrong type, oversized. */
	refused(400, f, P7);
	snprintf(g, sizeof(g), "%s/garbage.der", tmpdir);
	ck_assert_int_eq(ts_sh("head -c 3000 /dev/urandom >%s", g), 0);
	refused(400, g, P7);
	snprintf(g, sizeof(g), "%s/p2.der", a);
	refused(400, g, "text/plain");
	snprintf(g, sizeof(g), "%s/big.der", tmpdir);
	ck_assert_int_eq(ts_sh("head -c 70000 /dev/zero >%s", g), 0);
	refused(413, g, P7);
}
END_TEST

Suite *ota_e2e_suite(void)
{
	const char *sim = getenv("E2E_OTASIM");

	e2e_stack(&base, &tls_ca, &device_ca);
	devca_cert = getenv("E2E_OTA_DEVCA_CERT");
	devca_key = getenv("E2E_OTA_DEVCA_KEY");
	legacy = e2e_legacy();
	e2e_tmpdir(tmpdir, sizeof(tmpdir), "otasim-%s", e2e_mode());
	snprintf(otasim, sizeof(otasim), "%s", sim ? sim : "tests/e2e/otasim.sh");
	snprintf(ota_url, sizeof(ota_url), "%s/enroll/ota", base ? base : "");
	return ts_suite("ota-e2e", "otasim", 300, phases_1_to_3, refusals, ota_cannot_take_over);
}
