/*
 * A TLS-terminating reverse proxy in front of Apache (issue 13, 9): HAProxy
 * (tests/tlsproxy.sh) asks the devices for their identity, proves they hold
 * its key, and passes it in an RFC 9440 Client-Cert header on its own TLS
 * connection to Apache, from 127.0.0.2, the one address in trusted_proxies.
 * The stack runs with checkin_require_tls = yes: a device that reaches the
 * programs only through the proxy is accepted because of that header and
 * nothing else.  The iPhone simulator enrolls, checks in and answers
 * commands through the proxy; then the header is forged every way an
 * attacker can (through the proxy, which must drop it; straight to Apache
 * from an address that is not the proxy's) and a signature-only replay is
 * tried: each refused, nothing written.
 *
 * Environment (tests/run.sh, TLS proxy pass): E2E_TLSPROXY_BASE (the
 * proxy's https URL, the profile's ServerURL), E2E_TLSPROXY_SOURCE (the
 * proxy's address as Apache sees it), E2E_HTTPS_BASE (Apache itself),
 * E2E_APACHE_ACCESS_LOG, E2E_APPLESIM, E2E_TLS_CA, E2E_DEVICE_CA,
 * E2E_CLIENT_CERT/KEY (a client certificate of another CA), E2E_TMP,
 * MDM_DB.
 */
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Suite *tlsproxy_e2e_suite(void);

static char tmpdir[256];
static const char *sim, *proxy, *source, *apache, *tls_ca, *device_ca, *access_log;

#define CTYPE "application/x-apple-aspen-mdm-checkin"

/*
 * PUTs the device's last TokenUpdate body (as applesim sent it) to url
 * with the curl options opts; the HTTP status, 0 when no answer came (a
 * refused handshake).
 */
static int put_tokenupdate(const char *url, const char *opts)
{
	char path[512], *code;
	int n;

	snprintf(path, sizeof(path), "%s/iphone/put.code", tmpdir);
	ts_sh("cd %s/iphone && b=$(ls log/*-TokenUpdate.req | tail -n 1) && "
	      "curl -sS --cacert %s %s -X PUT --data-binary @$b -H 'Content-Type: " CTYPE "' "
	      "-o put.reply -w '%%{http_code}' '%s/mdm/checkin' >put.code 2>put.err",
	        tmpdir, tls_ca, opts, url);
	code = ts_file_get(path, NULL);
	n = atoi(code);
	free(code);
	return n;
}

static char *checkins(const char *udid)
{
	return e2e_query1("SELECT count(*)::text FROM mdm.checkin WHERE udid = $1", udid);
}

/* One refusal: the status, and not one check-in row more. */
static void refused(const char *what, int want, const char *url, const char *opts, const char *udid)
{
	char *before = checkins(udid), *after;
	int code = put_tokenupdate(url, opts);

	after = checkins(udid);
	ck_assert_msg(code == want, "%s: HTTP %d, want %d", what, code, want);
	ck_assert_msg(strcmp(before, after) == 0, "%s: %s check-ins before, %s after", what, before,
	        after);
	free(before);
	free(after);
}

START_TEST(identity_through_the_proxy)
{
	char *udid, forged[1024], opts[1200], id[600];
	const char *cc = getenv("E2E_CLIENT_CERT"), *ck = getenv("E2E_CLIENT_KEY");

	/* The whole way through the proxy: profile, check-in, commands. */
	ck_assert_int_eq(
	        ts_sh("%s enroll --device iphone --dir %s/iphone --enroll-url '%s/enroll' "
	              "--trust %s --tls-ca %s >>%s/iphone.log 2>&1 || { cat %s/iphone.log; exit "
	              "1; }",
	                sim, tmpdir, proxy, device_ca, tls_ca, tmpdir, tmpdir),
	        0);
	{
		char path[512], *st, *p;

		snprintf(path, sizeof(path), "%s/iphone/state", tmpdir);
		st = ts_file_get(path, NULL);
		ck_assert_ptr_nonnull(p = strstr(st, "\nudid="));
		udid = strndup(p + 6, strcspn(p + 6, "\n"));
		free(st);
	}
	/* TLS as well as the signature: the identity came in the proxy's header. */
	e2e_assert_query("SELECT string_agg(message_type || ':' || auth, ',' ORDER BY id) FROM "
	                 "mdm.checkin WHERE udid = $1",
	        udid, "Authenticate:both,TokenUpdate:both");
	free(e2e_query1("SELECT mdm.cmd_device_information($1)::text", udid));
	ck_assert_int_eq(ts_sh("%s commands --dir %s/iphone >>%s/iphone.log 2>&1 || { cat "
	                       "%s/iphone.log; exit 1; }",
	                         sim, tmpdir, tmpdir, tmpdir),
	        0);
	e2e_assert_query("SELECT string_agg(request_type || ':' || status, ',') FROM "
	                 "mdm.command_results WHERE udid = $1",
	        udid, "DeviceInformation:Acknowledged");
	/* Apache saw the proxy's address, not the device's. */
	ck_assert_msg(ts_sh("grep -q '^%s .*\"PUT /mdm/checkin ' %s && grep -q '^%s .*\"PUT "
	                    "/mdm/server ' %s",
	                      source, access_log, source, access_log) == 0,
	        "no check-in from the proxy's address %s in %s", source, access_log);

	snprintf(id, sizeof(id), "--cert %s/iphone/identity.pem --key %s/iphone/identity.key",
	        tmpdir, tmpdir);
	snprintf(forged, sizeof(forged),
	        "-H \"Client-Cert: :$(openssl x509 -in %s/iphone/identity.pem -outform DER | "
	        "base64 -w0):\"",
	        tmpdir);
	/* The identity in TLS, through the proxy and straight to Apache: accepted. */
	ck_assert_int_eq(put_tokenupdate(proxy, id), 200);
	ck_assert_int_eq(put_tokenupdate(apache, id), 200);
	/* A signature alone is replayable: refused where TLS is required. */
	ck_assert_int_eq(ts_sh("cd %s/iphone && %s sign --dir . --body $(ls log/*-TokenUpdate.req "
	                       "| tail -n 1) >>../iphone.log 2>&1",
	                         tmpdir, sim),
	        0);
	snprintf(opts, sizeof(opts), "-H \"Mdm-Signature: $(base64 -w0 mdm-signature.der)\"");
	refused("signature only, through the proxy", 403, proxy, opts, udid);
	/* The device's (public) certificate forged into the header: the proxy drops it... */
	refused("Client-Cert forged through the proxy", 403, proxy, forged, udid);
	/* ...and Apache believes it from the proxy's address only (RFC 9440 section 4). */
	refused("Client-Cert forged to Apache", 403, apache, forged, udid);
	/* From the proxy's address a malformed header is an error, not an identity. */
	snprintf(
	        opts, sizeof(opts), "--interface %s -H 'Client-Cert: not-a-byte-sequence'", source);
	refused("malformed Client-Cert from the proxy's address", 400, apache, opts, udid);
	/* A client certificate of another CA never gets past the proxy's handshake. */
	snprintf(opts, sizeof(opts), "--cert %s --key %s", cc, ck);
	refused("another CA's client certificate", 0, proxy, opts, udid);
	free(udid);
}
END_TEST

Suite *tlsproxy_e2e_suite(void)
{
	sim = getenv("E2E_APPLESIM");
	proxy = getenv("E2E_TLSPROXY_BASE");
	source = getenv("E2E_TLSPROXY_SOURCE");
	e2e_stack(&apache, &tls_ca, &device_ca);
	access_log = getenv("E2E_APACHE_ACCESS_LOG");
	e2e_tmpdir(tmpdir, sizeof(tmpdir), "tlsproxy");
	return ts_suite("tlsproxy-e2e", "haproxy", 300, identity_through_the_proxy);
}
