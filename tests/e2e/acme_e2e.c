/*
 * acme.fcgi through the test Apache (issue 18), driven by
 * tests/acme/client.py, an ACME client on Debian's python3-acme (JWS,
 * nonces and messages by a library nobody here wrote): a whole
 * device-attest-01 order with a one-time ClientIdentifier from SQL and an
 * attestation from the stand-in Apple attestation CA
 * (build/tests/attest_standin, whose root the stack's acme.fcgi trusts:
 * MDM_ACME_ATTEST_ROOT_FILE), the chain checked with `openssl verify`;
 * then every refusal, each with no certificate issued.
 *
 * E2E_ACME_CLIENT (client.py), E2E_ATTEST_STANDIN (the stand-in program),
 * E2E_ATTEST_DIR (its CA, the one trusted) and E2E_ATTEST_OTHER_DIR (a
 * second stand-in CA nobody trusts) come from tests/fixtures.sh
 * (fixture_acme).
 */
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[512];
static char directory[1024];
static const char *tls_ca, *device_ca;

static void setup(void)
{
	const char *base;

	e2e_stack(&base, &tls_ca, &device_ca);
	ck_assert_ptr_nonnull(base);
	ck_assert_ptr_nonnull(tls_ca);
	ck_assert_ptr_nonnull(getenv("E2E_ACME_CLIENT"));
	ck_assert_ptr_nonnull(getenv("E2E_ATTEST_STANDIN"));
	ck_assert_ptr_nonnull(getenv("E2E_ATTEST_DIR"));
	ck_assert_ptr_nonnull(getenv("E2E_ATTEST_OTHER_DIR"));
	snprintf(directory, sizeof directory, "%s/acme/directory", base);
	e2e_tmpdir(tmpdir, sizeof tmpdir, "acme-%s", e2e_mode());
}

/* A UDID and serial of this pass and test: passes share the database. */
static void device_names(const char *what, char *udid, size_t ucap, char *serial, size_t scap)
{
	snprintf(udid, ucap, "ACME-%s-%s-%ld", e2e_mode(), what, (long)getpid());
	snprintf(serial, scap, "S%s%ld", strncmp(e2e_mode(), "proxy", 5) == 0 ? "P" : "F",
	        (long)getpid());
}

/* A one-time ClientIdentifier, bound to udid unless NULL, valid for ttl. */
static char *code_new(const char *udid, const char *ttl)
{
	char sql[256];

	snprintf(sql, sizeof sql, "SELECT mdm.acme_client_identifier_new(%s, '%s')",
	        udid ? "$1" : "NULL", ttl);
	return e2e_query1(sql, udid);
}

static int device_certificates(void)
{
	char *n = e2e_query1("SELECT count(*) FROM mdm.certificate WHERE kind = 'device'", NULL);
	int v = atoi(n);

	free(n);
	return v;
}

/* Runs client.py SCENARIO; its output appended to tmpdir/client.log (shown on failure). */
static int client(const char *scenario, const char *code, const char *udid, const char *serial,
        const char *extra)
{
	char log[600];
	int rc;

	snprintf(log, sizeof log, "%s/client.log", tmpdir);
	ts_file_put(log, "%s", "");
	rc = ts_sh("/usr/bin/python3 '%s' %s --directory '%s' --ca '%s' --code '%s' "
	           "--standin '%s' --standin-dir '%s' --other-dir '%s' --serial '%s' --udid '%s' "
	           "--out '%s' --mode '%s' %s >>'%s' 2>&1",
	        getenv("E2E_ACME_CLIENT"), scenario, directory, tls_ca, code ? code : "",
	        getenv("E2E_ATTEST_STANDIN"), getenv("E2E_ATTEST_DIR"),
	        getenv("E2E_ATTEST_OTHER_DIR"), serial ? serial : "", udid ? udid : "", tmpdir,
	        e2e_mode(), extra ? extra : "", log);
	if (rc != 0)
		(void)ts_sh("sed 's/^/client.py: /' '%s' >&2", log);
	return rc;
}

/* A refusal scenario: the client saw the refusal, and no certificate came of it. */
static void refused(const char *scenario, const char *code, const char *udid, const char *serial,
        const char *extra)
{
	int before = device_certificates();

	ck_assert_msg(
	        client(scenario, code, udid, serial, extra) == 0, "%s was not refused", scenario);
	ck_assert_int_eq(device_certificates(), before);
}

START_TEST(device_attest_01_order_end_to_end)
{
	char udid[128], serial[64], *code, *s;
	int before = device_certificates();

	device_names("happy", udid, sizeof udid, serial, sizeof serial);
	code = code_new(udid, "1 hour");
	ck_assert_int_eq(client("happy", code, udid, serial, NULL), 0);
	ck_assert_int_eq(device_certificates(), before + 1);
	/* The chain is the CA's: leaf first, then the CA that issued it. */
	ck_assert_int_eq(
	        ts_sh("openssl verify -CAfile '%s' '%s/leaf.pem' >/dev/null", device_ca, tmpdir),
	        0);
	ck_assert_int_eq(ts_sh("openssl verify -CAfile '%s/chain.pem' '%s/leaf.pem' >/dev/null",
	                         tmpdir, tmpdir),
	        0);
	/* Recorded like a SCEP certificate, with what Apple attested. */
	e2e_assert_query("SELECT count(*) FROM mdm.certificate WHERE kind = 'device' AND udid = $1",
	        udid, "1");
	e2e_assert_query("SELECT serial FROM mdm.device_attestation WHERE udid = $1", udid, serial);
	s = e2e_query1(
	        "SELECT certificate_serial FROM mdm.device_attestation WHERE udid = $1", udid);
	ck_assert_int_gt((int)strlen(s), 0);
	free(s);
	/* The code bought its certificate: spent, and a second order with it is refused. */
	e2e_assert_query("SELECT (used_at IS NOT NULL AND used_by_certificate IS NOT NULL)::text "
	                 "FROM mdm.challenge WHERE challenge_sha256 = "
	                 "encode(sha256(convert_to($1, 'UTF8')), 'hex')",
	        code, "true");
	refused("spent-code", code, udid, serial, NULL);
	free(code);
}
END_TEST

START_TEST(nonces_directory_and_accounts)
{
	ck_assert_int_eq(client("new-nonce", NULL, NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(attestation_of_another_token_is_refused)
{
	char udid[128], serial[64], *code;

	device_names("nonce", udid, sizeof udid, serial, sizeof serial);
	code = code_new(udid, "1 hour");
	refused("wrong-nonce", code, udid, serial, NULL);
	free(code);
}
END_TEST

START_TEST(chain_to_another_root_is_refused)
{
	char udid[128], serial[64], *code;

	device_names("root", udid, sizeof udid, serial, sizeof serial);
	code = code_new(udid, "1 hour");
	refused("other-root", code, udid, serial, NULL);
	free(code);
}
END_TEST

START_TEST(code_bound_to_another_udid_is_refused)
{
	char udid[128], serial[64], *code;

	device_names("bound", udid, sizeof udid, serial, sizeof serial);
	code = code_new("00008030-NOT-THIS-DEVICE", "1 hour");
	refused("not-attested-device", code, udid, serial, NULL);
	free(code);
}
END_TEST

START_TEST(unknown_device_is_refused)
{
	char udid[128], serial[64], *code;

	/* An unbound code, and a device neither enrolled nor expected. */
	device_names("unknown", udid, sizeof udid, serial, sizeof serial);
	code = code_new(NULL, "1 hour");
	refused("not-attested-device", code, udid, serial, NULL);
	free(code);
}
END_TEST

START_TEST(expected_device_with_unbound_code_enrolls)
{
	char udid[128], serial[64], *code, *id;
	int before = device_certificates();

	device_names("expected", udid, sizeof udid, serial, sizeof serial);
	id = e2e_query1("INSERT INTO mdm.acme_expected_device (udid, comment) VALUES ($1, "
	                "'acme_e2e') RETURNING id",
	        udid);
	free(id);
	code = code_new(NULL, "1 hour");
	ck_assert_int_eq(client("happy", code, udid, serial, NULL), 0);
	ck_assert_int_eq(device_certificates(), before + 1);
	free(code);
}
END_TEST

START_TEST(csr_of_another_key_is_refused)
{
	char udid[128], serial[64], *code;

	device_names("csr", udid, sizeof udid, serial, sizeof serial);
	code = code_new(udid, "1 hour");
	refused("csr-key", code, udid, serial, NULL);
	free(code);
}
END_TEST

START_TEST(expired_order_is_not_finalized)
{
	char udid[128], serial[64], *code;

	device_names("expired", udid, sizeof udid, serial, sizeof serial);
	/* The order lives no longer than its code. */
	code = code_new(udid, "4 seconds");
	refused("expired-order", code, udid, serial, "--wait 5");
	free(code);
}
END_TEST

START_TEST(malformed_cbor_is_refused)
{
	char udid[128], serial[64], *code;

	device_names("cbor", udid, sizeof udid, serial, sizeof serial);
	code = code_new(udid, "1 hour");
	refused("malformed-cbor", code, udid, serial, NULL);
	free(code);
}
END_TEST

START_TEST(one_code_one_certificate_under_concurrency)
{
	char udid[128], serial[64], *code;
	int before = device_certificates();

	/* Two ready orders on one code, finalized at once: the row locks let one issue. */
	device_names("race", udid, sizeof udid, serial, sizeof serial);
	code = code_new(udid, "1 hour");
	ck_assert_int_eq(client("concurrent-finalize", code, udid, serial, NULL), 0);
	ck_assert_int_eq(device_certificates(), before + 1);
	free(code);
}
END_TEST

START_TEST(jws_and_nonce_refusals)
{
	static const char *const scenarios[] = {"nonce-reuse", "replay", "bad-signature",
	        "url-mismatch", "unknown-kid", "jwk-on-new-order", "media-type", "oversized"};
	char udid[128], serial[64], *code;

	device_names("jws", udid, sizeof udid, serial, sizeof serial);
	code = code_new(udid, "1 hour");
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		refused(scenarios[i], code, udid, serial, NULL);
	free(code);
}
END_TEST

Suite *acme_e2e_suite(void);

Suite *acme_e2e_suite(void)
{
	Suite *s = suite_create("acme-e2e");
	TCase *tc = ts_tcase(s, "acme", 240, setup, NULL);

	ts_add_tests(tc, device_attest_01_order_end_to_end, nonces_directory_and_accounts,
	        attestation_of_another_token_is_refused, chain_to_another_root_is_refused,
	        code_bound_to_another_udid_is_refused, unknown_device_is_refused,
	        expected_device_with_unbound_code_enrolls, csr_of_another_key_is_refused,
	        expired_order_is_not_finalized, malformed_cbor_is_refused,
	        one_code_one_certificate_under_concurrency, jws_and_nonce_refusals);
	return s;
}
