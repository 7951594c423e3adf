/*
 * Over-the-air enrollment: the pinned Apple chain (x509_verify_pinned)
 * over Apple's real device certificates and the [TEST] factory ones, the
 * real phase-2 message (zentral) parsed with the clock set inside its
 * signer's validity, refusals (tampered, unsigned, garbage, oversized,
 * another trust store), the encrypted profile (decrypted by the openssl
 * CLI), and against MDM_TEST_DB the real phase 2 stored, answered with a
 * UDID-bound SCEP challenge, and its replay refused with nothing stored.
 * Vectors are read in place from MDM_VECTORS and skipped when absent.
 */
#include "ca.h"
#include "cms.h"
#include "config.h"
#include "db.h"
#include "enroll.h"
#include "log.h"
#include "migrate.h"
#include "ota.h"
#include "plist.h"
#include "profile.h"
#include "pushcert.h"
#include "suites.h"
#include "ts_db.h"
#include "ts_sys.h"
#include "vectors.h"
#include "x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRUST_FILE "share/apple-ota-trust.pem"
#define PHASE2     "zentral/tests/mdm/testdata/ota_playload_phase_2"
#define SECDATA    "apple-Security/OSX/shared_regressions/si-20-sectrust-policies-data/"
#define MMDM       "micromdm/pkg/crypto/testdata/"
#define P2_UDID    "78897E40-F532-5DE0-A7DC-56BAC5CEEB9C"
#define UNIT_TOPIC "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9"
#define P2_CHAL    "8gLEIttrT7qbLOZs3XzL5XPgNXCliGwRLtn2Lfe4GBsa7g6MGm2sJjicKrLFal4D"
/* 2023-01-01, 2019-01-01, 2025-06-01, 2012-01-01 (UTC). */
#define T2023 ((time_t)1672531200)
#define T2019 ((time_t)1546300800)
#define T2025 ((time_t)1748736000)
#define T2012 ((time_t)1325376000)

/* MDM_VECTORS/rel, or NULL with a note when the vectors are absent. */
static const char *vector(const char *rel)
{
	static char path[4096];

	return vector_path("ota", rel, path, sizeof(path));
}

static struct ota_trust *trust_load(void)
{
	struct ota_trust *t = NULL;
	config *cfg = NULL;

	setenv("MDM_OTA_TRUST_FILE", TRUST_FILE, 1);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(ota_trust_load(cfg, &t), MDM_OK);
	ck_assert_uint_eq(t->n, 3);
	config_free(cfg);
	unsetenv("MDM_OTA_TRUST_FILE");
	return t;
}

static mdm_err pinned(const char *rel, const struct ota_trust *t, time_t now)
{
	const char *p = vector(rel);
	struct x509_st *c = NULL;
	mdm_err rc;

	if (p == NULL)
		return MDM_ERR_NOT_FOUND;
	ck_assert_int_eq(x509_cert_load_file(p, &c), MDM_OK);
	rc = x509_verify_pinned(c, t->certs, t->n, now);
	x509_cert_free(c);
	return rc;
}

START_TEST(apple_chain_pinned)
{
	struct ota_trust *t;
	const char *p;
	struct x509_st *all[4] = {NULL};
	struct x509_st *test_ca = NULL;
	mdm_err rc;

	log_set_level(MDM_LOG__MAX);
	t = trust_load();
	if (vector(MMDM "appleca_signed_newer.pem") == NULL) {
		ota_trust_free(t);
		return;
	}
	/* Real Apple device certificates: valid leaf, expired Apple CAs pinned. */
	ck_assert_int_eq(pinned(MMDM "appleca_signed_newer.pem", t, T2025), MDM_OK);
	ck_assert_int_eq(pinned(MMDM "appleca_signed.pem", t, T2019), MDM_OK);
	/* The leaf's own dates are checked. */
	ck_assert_int_eq(pinned(MMDM "appleca_signed.pem", t, T2025), MDM_ERR_AUTH);
	/* [TEST] Apple iPhone Device CA: no path to Apple Root CA ... */
	rc = pinned(SECDATA "factory_device_cert.cer", t, T2012);
	ck_assert(rc == MDM_ERR_AUTH || rc == MDM_ERR_NOT_FOUND);
	/* ... and refused by name even when someone puts the test CA in the store. */
	if ((p = vector(SECDATA "TestAppleiPhoneDeviceCA.cer")) != NULL) {
		struct ota_trust t2;

		ck_assert_int_eq(x509_cert_load_file(p, &test_ca), MDM_OK);
		for (size_t i = 0; i < t->n; i++)
			all[i] = t->certs[i];
		all[3] = test_ca;
		t2.certs = all;
		t2.n = 4;
		{
			/* The refusal must be the [TEST] rule itself, not a missing issuer or a
			 * date. */
			char logpath[] = "/tmp/mdm-ota-log-XXXXXX", buf[4096] = "";
			int fd = mkstemp(logpath);
			ssize_t n;

			ck_assert_int_ge(fd, 0);
			log_set_level(MDM_LOG_WARN);
			log_set_fd(fd);
			rc = pinned(SECDATA "factory_device_cert.cer", &t2, T2012);
			log_set_fd(2);
			log_set_level(MDM_LOG__MAX);
			n = pread(fd, buf, sizeof(buf) - 1, 0);
			close(fd);
			unlink(logpath);
			buf[n > 0 ? n : 0] = '\0';
			ck_assert_int_eq(rc, MDM_ERR_AUTH);
			ck_assert_msg(strstr(buf, "[TEST]") != NULL,
			        "refused for another reason: %s", buf);
		}
		/* The test CA itself as a "device": a CA, refused. */
		ck_assert_int_eq(x509_verify_pinned(test_ca, all, 4, T2012), MDM_ERR_AUTH);
		x509_cert_free(test_ca);
	}
	/* An Apple CA certificate is not a device certificate. */
	ck_assert_int_eq(x509_verify_pinned(t->certs[2], t->certs, t->n, T2012), MDM_ERR_AUTH);
	/* Without the intermediates in the store, nothing verifies. */
	ck_assert_int_eq(
	        pinned(MMDM "appleca_signed_newer.pem", &(struct ota_trust){t->certs, 1}, T2025),
	        MDM_ERR_AUTH);
	ota_trust_free(t);
}
END_TEST

START_TEST(phase2_vector_parses)
{
	const char *p = vector(PHASE2);
	struct ota_trust *t;
	struct ota_msg m;
	uint8_t *der;
	size_t len;

	log_set_level(MDM_LOG__MAX);
	if (p == NULL)
		return;
	t = trust_load();
	der = ts_file_get(p, &len);
	ck_assert_int_eq(ota_msg_parse(der, len, t, NULL, 0, T2023, &m), MDM_OK);
	ck_assert_int_eq(m.phase, OTA_PHASE2);
	ck_assert_str_eq(m.udid, P2_UDID);
	ck_assert_str_eq(m.challenge, P2_CHAL);
	ck_assert_str_eq(m.signer_subject, "CN=0B5938EB-A130-466F-BFA5-BFA950500D03");
	ck_assert_ptr_nonnull(strstr(m.attrs_json, "\"PRODUCT\":\"VirtualMac2,1\""));
	ck_assert_ptr_nonnull(strstr(m.attrs_json, "\"SERIAL\":\"ZDL2M9PTJ3\""));
	ck_assert_ptr_null(strstr(m.attrs_json, "CHALLENGE"));
	ck_assert_ptr_null(strstr(m.attrs_json, P2_CHAL));
	ota_msg_clear(&m);
	/* Today the device certificate (one year, 2022-2023) has expired. */
	ck_assert_int_eq(ota_msg_parse(der, len, t, NULL, 0, T2025, &m), MDM_ERR_FORBIDDEN);
	ck_assert_ptr_null(m.signer);
	/* Another trust store (only the root: no path). */
	ck_assert_int_eq(
	        ota_msg_parse(der, len, &(struct ota_trust){t->certs, 1}, NULL, 0, T2023, &m),
	        MDM_ERR_FORBIDDEN);
	/* Tampered: one byte of the signed plist (the SERIAL) changed. */
	for (size_t i = 0; i + 10 < len; i++) {
		if (memcmp(der + i, "ZDL2M9PTJ3", 10) == 0) {
			der[i] ^= 0x01;
			break;
		}
	}
	ck_assert_int_eq(ota_msg_parse(der, len, t, NULL, 0, T2023, &m), MDM_ERR_FORBIDDEN);
	/* Truncated. */
	ck_assert_int_eq(ota_msg_parse(der, len - 7, t, NULL, 0, T2023, &m), MDM_ERR_PARSE);
	free(der);
	ota_trust_free(t);
}
END_TEST

START_TEST(bad_bodies_refused)
{
	struct ota_trust *t;
	struct ota_msg m;
	static uint8_t big[CMS_MAX_SIGNED_MESSAGE + 1];
	const char *bare = "<plist version=\"1.0\"><dict><key>UDID</key><string>X</string>"
	                   "</dict></plist>";
	uint8_t *degenerate = NULL;
	size_t dlen = 0;

	log_set_level(MDM_LOG__MAX);
	t = trust_load();
	ck_assert_int_eq(
	        ota_msg_parse((const uint8_t *)"", 0, t, NULL, 0, T2023, &m), MDM_ERR_PARSE);
	ck_assert_int_eq(
	        ota_msg_parse((const uint8_t *)"garbage", 7, t, NULL, 0, T2023, &m), MDM_ERR_PARSE);
	/* Unsigned: the plist alone, and a SignedData without SignerInfo. */
	ck_assert_int_eq(ota_msg_parse((const uint8_t *)bare, strlen(bare), t, NULL, 0, T2023, &m),
	        MDM_ERR_PARSE);
	ck_assert_int_eq(cms_certs_only(t->certs, 1, &degenerate, &dlen), MDM_OK);
	ck_assert_int_eq(ota_msg_parse(degenerate, dlen, t, NULL, 0, T2023, &m), MDM_ERR_PARSE);
	free(degenerate);
	memset(big, 0x30, sizeof(big));
	ck_assert_int_eq(ota_msg_parse(big, sizeof(big), t, NULL, 0, T2023, &m), MDM_ERR_LIMIT);
	ck_assert_ptr_null(m.signer);
	ota_trust_free(t);
}
END_TEST

/* Signs attrs with a throw-away identity of key/cert; phase by that signer. */
/* An encrypted profile for an RSA (SCEP) or an EC (ACME) identity, opened by openssl cms. */
static void encrypted_profile_for(const char *newkey, const char *recipient_info)
{
	char dir[128], path[256];
	struct x509_st *c = NULL;
	struct profile_enroll_params p = {0};
	plist *profile = NULL;
	char *xml = NULL;
	size_t len = 0;
	int encrypted = 0;

	log_set_level(MDM_LOG__MAX);
	ts_tmpdir_new(dir, sizeof(dir), "ota");
	ck_assert_int_eq(ts_sh("openssl req -x509 -newkey %s -nodes -days 3 -keyout "
	                       "%s/k.pem -out %s/c.pem -subj /CN=dev 2>/dev/null",
	                         newkey, dir, dir),
	        0);
	snprintf(path, sizeof(path), "%s/c.pem", dir);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_OK);
	p.public_url = "https://mdm.example.com";
	p.scep_name = "CA";
	p.scep_subject = "/CN=x";
	p.challenge = "secret-challenge-value";
	p.topic = "com.apple.mgmt.External.x";
	p.organization = "Org";
	p.identifier = "com.example.mdm";
	p.access_rights = 8191;
	ck_assert_int_eq(profile_enroll_build(&p, &profile), MDM_OK);
	ck_assert_int_eq(profile_encrypt(profile, c), MDM_OK);
	ck_assert_ptr_null(plist_dict_get0(profile, "PayloadContent"));
	ck_assert_int_eq(
	        plist_get_type(plist_dict_get0(profile, "EncryptedPayloadContent")), PLIST_DATA);
	/* TopLevel.yaml: EncryptedPayloadContent "if IsEncrypted is true". */
	ck_assert_int_eq(
	        plist_bool_get(plist_dict_get0(profile, "IsEncrypted"), &encrypted), MDM_OK);
	ck_assert_int_eq(encrypted, 1);
	/* A second time: nothing left to encrypt. */
	ck_assert_int_eq(profile_encrypt(profile, c), MDM_ERR_PARSE);
	ck_assert_int_eq(plist_serialize(profile, &xml, &len), MDM_OK);
	ck_assert_ptr_null(strstr(xml, "secret-challenge-value"));
	ck_assert_ptr_null(strstr(xml, "com.apple.mdm<"));
	snprintf(path, sizeof(path), "%s/p.plist", dir);
	ts_file_write(path, xml, len);
	ck_assert_int_eq(
	        ts_sh("cd %s && xmllint --nonet --xpath \"string(//key[.='"
	              "EncryptedPayloadContent']/following-sibling::data[1])\" p.plist | "
	              "tr -d ' \\t\\n' | base64 -d >enc.der && openssl cms -decrypt -inform "
	              "DER -in enc.der "
	              "-inkey k.pem -recip c.pem -out clear.plist && grep -q "
	              "'<string>com.apple.mdm</string>' clear.plist && grep -q "
	              "secret-challenge-value clear.plist && openssl cms -cmsout -print "
	              "-inform DER -in enc.der | grep -q aes-256-cbc && openssl cms -cmsout -print "
	              "-inform DER -in enc.der | grep -q '%s'",
	                dir, recipient_info),
	        0);
	ts_tmpdir_done(dir);
	free(xml);
	plist_free(profile);
	x509_cert_free(c);
}

START_TEST(encrypted_profile_decrypts_with_openssl)
{
	encrypted_profile_for("rsa:2048", "d.ktri:");
	encrypted_profile_for("ec -pkeyopt ec_paramgen_curve:P-384", "d.kari:");
}
END_TEST

/* ota_answer_profile's refusals before the database: a phase, a UDID; phase 3 a recipient. */
START_TEST(answer_profile_needs)
{
	plist *p = (plist *)1;

	ck_assert_int_eq(
	        ota_answer_profile(NULL, NULL, NULL, NULL, OTA_PHASE2, NULL, NULL, NULL, &p),
	        MDM_ERR_INVAL);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(
	        ota_answer_profile(NULL, NULL, NULL, NULL, (enum ota_phase)4, "U", NULL, NULL, &p),
	        MDM_ERR_INVAL);
	ck_assert_int_eq(ota_answer_profile(NULL, NULL, NULL, NULL, OTA_PHASE3, "U",
	                         "com.apple.mgmt.External.x", NULL, &p),
	        MDM_ERR_INVAL);
}
END_TEST

/* ---- against the database ---- */

static char dir[128];
static struct ts_db tdb;
static db *d;

static void db_setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&tdb, "ota");
	d = tdb.d;
	ts_tmpdir_new(dir, sizeof(dir), "ota-db");
}

static void db_teardown(void)
{
	d = NULL;
	ts_db_drop(&tdb); /* frees d */
	ts_tmpdir_done(dir);
}

static void assert_q(const char *sql, const char *param, const char *want)
{
	ts_db_assert(d, sql, param, want);
}

/* CA, profile signer and a push certificate, then the enrollment state. */
static void enroll_setup(config **cfg, struct enroll_state **st)
{
	char key[256], crt[256], ca[256], pk[256], pc[256];
	struct x509_st *c = NULL;
	struct evp_pkey_st *k = NULL;
	enum pushcert_import_result res;
	char topic[PUSHCERT_MAX_TOPIC + 1];

	snprintf(key, sizeof(key), "%s/signer.key", dir);
	snprintf(crt, sizeof(crt), "%s/signer.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca.key", dir);
	snprintf(pk, sizeof(pk), "%s/push.key", dir);
	snprintf(pc, sizeof(pc), "%s/push.pem", dir);
	ck_assert_int_eq(
	        ca_init(d, "/CN=Unit OTA CA/O=mdm", 3650, 2048, ca, NULL, time(NULL)), MDM_OK);
	unsetenv("MDM_MDM_TOPIC");
	setenv("MDM_PUBLIC_URL", "https://mdm.example.com", 1);
	setenv("MDM_PROFILE_SIGNER_CERT", crt, 1);
	setenv("MDM_PROFILE_SIGNER_KEY", key, 1);
	ck_assert_int_eq(config_load_file(NULL, 0, cfg), MDM_OK);
	ck_assert_int_eq(
	        ca_server_cert(d, *cfg, "/CN=Unit Signer", 30, 2048, key, crt, time(NULL)), MDM_OK);
	ck_assert_int_eq(
	        ts_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout %s -out %s "
	              "-subj '/UID=com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-"
	              "dd17d3dd35d9/CN=APSP:x/C=US' 2>/dev/null",
	                pk, pc),
	        0);
	ck_assert_int_eq(x509_cert_load_file(pc, &c), MDM_OK);
	ck_assert_int_eq(x509_key_load(pk, &k), MDM_OK);
	ck_assert_int_eq(pushcert_import(d, c, k, pk, time(NULL), topic, &res), MDM_OK);
	x509_cert_free(c);
	x509_key_free(k);
	ck_assert_int_eq(enroll_state_load(d, *cfg, 1, st), MDM_OK);
	unsetenv("MDM_PUBLIC_URL");
	unsetenv("MDM_PROFILE_SIGNER_CERT");
	unsetenv("MDM_PROFILE_SIGNER_KEY");
}

START_TEST(phase1_profile_service)
{
	config *cfg = NULL;
	struct enroll_state *st = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	char path[256];

	enroll_setup(&cfg, &st);
	/* A topic that is not imported: no challenge is made. */
	ck_assert_int_eq(
	        ota_service_profile(d, cfg, st, "https://mdm.example.com" OTA_PATH,
	                "com.apple.mgmt.External.0e0e0e0e-0000-4000-8000-000000000003", &der, &len),
	        MDM_ERR_NOT_FOUND);
	ck_assert_ptr_null(der);
	assert_q("SELECT count(*) FROM mdm.challenge", NULL, "0");
	ck_assert_int_eq(ota_service_profile(d, cfg, st, "https://mdm.example.com" OTA_PATH,
	                         UNIT_TOPIC, &der, &len),
	        MDM_OK);
	/* The challenge carries the topic chosen now to phases 2 and 3. */
	assert_q("SELECT count(*) FROM mdm.challenge WHERE purpose = 'ota' AND used_at IS NULL "
	         "AND topic = $1",
	        UNIT_TOPIC, "1");
	snprintf(path, sizeof(path), "%s/ota.der", dir);
	ts_file_write(path, der, len);
	ck_assert_int_eq(
	        ts_sh("cd %s && openssl cms -verify -noverify -inform DER -in ota.der -out "
	              "ota.plist "
	              "2>/dev/null && grep -q '<string>Profile Service</string>' ota.plist && "
	              "grep -q '<string>https://mdm.example.com/enroll/ota</string>' ota.plist && "
	              "for a in UDID IMEI ICCID VERSION PRODUCT SERIAL MAC_ADDRESS_EN0 "
	              "DEVICE_NAME; "
	              "do grep -q \"<string>$a</string>\" ota.plist || exit 1; done && "
	              "grep -q '<key>Challenge</key>' ota.plist",
	                dir),
	        0);
	enroll_free_secret(der, len);
	enroll_state_free(st);
	config_free(cfg);
}
END_TEST

START_TEST(phase2_vector_stored_once)
{
	const char *p = vector(PHASE2);
	config *cfg = NULL;
	struct enroll_state *st = NULL;
	struct ota_trust *t;
	struct ota_msg m;
	uint8_t *body, *der = NULL;
	size_t len, derlen = 0;
	char path[256];

	if (p == NULL)
		return;
	enroll_setup(&cfg, &st);
	t = trust_load();
	body = ts_file_get(p, &len);
	ck_assert_int_eq(ota_msg_parse(body, len, t, NULL, 0, T2023, &m), MDM_OK);
	/* Not issued by us: no challenge of ours, refused, nothing stored. */
	ck_assert_int_eq(ota_answer(d, cfg, st, NULL, &m, &der, &derlen), MDM_ERR_FORBIDDEN);
	assert_q("SELECT count(*) FROM mdm.ota_enrollment", NULL, "0");
	assert_q("SELECT count(*) FROM mdm.device", NULL, "0");
	/* The zentral server's challenge, as if we had served it. */
	ck_assert_int_eq(
	        db_exec(d,
	                "INSERT INTO mdm.challenge (challenge_sha256, purpose, expires_at, topic) "
	                "VALUES (encode(sha256(convert_to('" P2_CHAL "', 'UTF8')), 'hex'), "
	                "'ota', now() + interval '1 hour', '" UNIT_TOPIC "')",
	                0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(ota_answer(d, cfg, st, NULL, &m, &der, &derlen), MDM_OK);
	assert_q("SELECT udid || '/' || phase || '/' || serial_number || '/' || product || '/' || "
	         "version FROM mdm.ota_enrollments",
	        NULL, P2_UDID "/2/ZDL2M9PTJ3/VirtualMac2,1/22A380");
	assert_q("SELECT attributes->>'UserShortName' FROM mdm.ota_enrollment", NULL, "admin");
	assert_q("SELECT count(*) FROM mdm.ota_enrollment WHERE attributes ? 'CHALLENGE'", NULL,
	        "0");
	assert_q("SELECT used_at IS NOT NULL FROM mdm.challenge WHERE purpose = 'ota'", NULL, "t");
	/* The answer's SCEP challenge is bound to that UDID and carries phase 1's topic on. */
	assert_q("SELECT count(*) FROM mdm.challenge WHERE purpose = 'scep' AND udid = $1", P2_UDID,
	        "1");
	assert_q("SELECT topic FROM mdm.challenge WHERE purpose = 'scep' AND udid = $1", P2_UDID,
	        UNIT_TOPIC);
	assert_q("SELECT topic FROM mdm.ota_enrollment WHERE udid = $1", P2_UDID, UNIT_TOPIC);
	/* ... and marked as OTA's: it can never take over an enrolled UDID (issue 13). */
	assert_q("SELECT origin FROM mdm.challenge WHERE purpose = 'scep' AND udid = $1", P2_UDID,
	        "ota");
	snprintf(path, sizeof(path), "%s/p2.der", dir);
	ts_file_write(path, der, derlen);
	ck_assert_int_eq(
	        ts_sh("cd %s && openssl cms -verify -noverify -inform DER -in p2.der -out "
	              "p2.plist 2>/dev/null && grep -q com.apple.security.scep p2.plist && "
	              "! grep -q '<string>com.apple.mdm</string>' p2.plist",
	                dir),
	        0);
	enroll_free_secret(der, derlen);
	der = NULL;
	/* Replayed: the challenge is spent; nothing more stored. */
	ck_assert_int_eq(ota_answer(d, cfg, st, NULL, &m, &der, &derlen), MDM_ERR_FORBIDDEN);
	ck_assert_ptr_null(der);
	assert_q("SELECT count(*) FROM mdm.ota_enrollment", NULL, "1");
	assert_q("SELECT count(*) FROM mdm.challenge WHERE purpose = 'scep'", NULL, "1");
	ota_msg_clear(&m);
	free(body);
	ota_trust_free(t);
	enroll_state_free(st);
	config_free(cfg);
}
END_TEST

void ota_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "parse", 0, NULL, NULL);

	ts_add_tests(tc, apple_chain_pinned, phase2_vector_parses, bad_bodies_refused,
	        encrypted_profile_decrypts_with_openssl, answer_profile_needs);
}

void ota_db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "db", 60, db_setup, db_teardown);

	ts_add_tests(tc, phase1_profile_service, phase2_vector_stored_once);
}
