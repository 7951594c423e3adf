/*
 * Enrollment: the profile module (no database), push certificate topics
 * (the real Apple push certificate from the shared vectors when present),
 * and, against MDM_TEST_DB, push certificate import, the profile signer
 * and the enrollment profile with its one-time challenge.  Push-like
 * certificates and PKCS#12 files are made here with the openssl CLI.
 */
#include "ca.h"
#include "config.h"
#include "db.h"
#include "enroll.h"
#include "log.h"
#include "migrate.h"
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

/* ---- profile ---- */

static struct profile_enroll_params params(void)
{
	struct profile_enroll_params p = {0};

	p.public_url = "https://mdm.example.com";
	p.scep_name = "Unit CA";
	p.scep_subject = "/O=Example\\/Org/CN=Device";
	p.challenge = "0123456789abcdef";
	p.topic = "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9";
	p.organization = "Example";
	p.identifier = "com.example.mdm";
	p.access_rights = 8191;
	p.checkout_when_removed = 1;
	return p;
}

static const plist *payload_of(const plist *profile, const char *type)
{
	const plist *c = plist_dict_get0(profile, "PayloadContent");

	for (size_t i = 0; i < plist_array_count(c); i++) {
		const char *t = plist_dict_get_string0(plist_array_get0(c, i), "PayloadType");
		if (t != NULL && strcmp(t, type) == 0)
			return plist_array_get0(c, i);
	}
	return NULL;
}

static void assert_type(const plist *d, const char *key, enum plist_type t)
{
	ck_assert_msg(plist_get_type(plist_dict_get0(d, key)) == t, "%s: %s expected", key,
	        plist_type_str(t));
}

static void assert_payload(const plist *d, const char *type)
{
	ck_assert_str_eq(plist_dict_get_string0(d, "PayloadType"), type);
	assert_type(d, "PayloadVersion", PLIST_INTEGER);
	assert_type(d, "PayloadIdentifier", PLIST_STRING);
	assert_type(d, "PayloadUUID", PLIST_STRING);
	assert_type(d, "PayloadDisplayName", PLIST_STRING);
	ck_assert_uint_eq(strlen(plist_dict_get_string0(d, "PayloadUUID")), PROFILE_UUID_LEN);
}

/* Builds, serializes and parses back; returns the parsed tree. */
static plist *round_trip(const struct profile_enroll_params *p)
{
	plist *t = NULL, *back = NULL;
	char *xml = NULL;
	size_t len = 0;

	ck_assert_int_eq(profile_enroll_build(p, &t), MDM_OK);
	ck_assert_int_eq(plist_serialize(t, &xml, &len), MDM_OK);
	ck_assert_int_eq(plist_parse(xml, len, &back), MDM_OK);
	ck_assert(plist_equal(t, back));
	free(xml);
	plist_free(t);
	return back;
}

START_TEST(profile_round_trip_and_keys)
{
	struct profile_enroll_params p = params();
	plist *t = round_trip(&p);
	const plist *scep = payload_of(t, "com.apple.security.scep"),
	            *mdm = payload_of(t, "com.apple.mdm"), *c, *subj, *caps;
	int64_t n;
	int b;

	assert_payload(t, "Configuration");
	ck_assert_str_eq(plist_dict_get_string0(t, "PayloadIdentifier"), "com.example.mdm.enroll");
	ck_assert_str_eq(plist_dict_get_string0(t, "PayloadOrganization"), "Example");
	ck_assert_uint_eq(plist_array_count(plist_dict_get0(t, "PayloadContent")), 2);
	assert_payload(scep, "com.apple.security.scep");
	assert_payload(mdm, "com.apple.mdm");
	c = plist_dict_get0(scep, "PayloadContent");
	ck_assert_str_eq(plist_dict_get_string0(c, "URL"), "https://mdm.example.com/scep");
	ck_assert_str_eq(plist_dict_get_string0(c, "Name"), "Unit CA");
	ck_assert_str_eq(plist_dict_get_string0(c, "Challenge"), "0123456789abcdef");
	ck_assert_str_eq(plist_dict_get_string0(c, "Key Type"), "RSA");
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(c, "Keysize"), &n), MDM_OK);
	ck_assert_int_eq(n, 2048);
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(c, "Key Usage"), &n), MDM_OK);
	ck_assert_int_eq(n, 5);
	/* [[["O", "Example/Org"]], [["CN", "Device"]]] */
	subj = plist_dict_get0(c, "Subject");
	ck_assert_uint_eq(plist_array_count(subj), 2);
	ck_assert_str_eq(
	        plist_string_get0(
	                plist_array_get0(plist_array_get0(plist_array_get0(subj, 0), 0), 1), NULL),
	        "Example/Org");
	ck_assert_str_eq(
	        plist_string_get0(
	                plist_array_get0(plist_array_get0(plist_array_get0(subj, 1), 0), 0), NULL),
	        "CN");
	ck_assert_str_eq(plist_dict_get_string0(mdm, "IdentityCertificateUUID"),
	        plist_dict_get_string0(scep, "PayloadUUID"));
	ck_assert_str_ne(plist_dict_get_string0(mdm, "PayloadUUID"),
	        plist_dict_get_string0(scep, "PayloadUUID"));
	ck_assert_str_eq(
	        plist_dict_get_string0(mdm, "ServerURL"), "https://mdm.example.com/mdm/server");
	ck_assert_str_eq(
	        plist_dict_get_string0(mdm, "CheckInURL"), "https://mdm.example.com/mdm/checkin");
	ck_assert_str_eq(plist_dict_get_string0(mdm, "Topic"), p.topic);
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(mdm, "AccessRights"), &n), MDM_OK);
	ck_assert_int_eq(n, 8191);
	ck_assert_int_eq(plist_bool_get(plist_dict_get0(mdm, "SignMessage"), &b), MDM_OK);
	ck_assert_int_eq(b, 0);
	ck_assert_int_eq(plist_bool_get(plist_dict_get0(mdm, "CheckOutWhenRemoved"), &b), MDM_OK);
	ck_assert_int_eq(b, 1);
	caps = plist_dict_get0(mdm, "ServerCapabilities");
	ck_assert_uint_eq(plist_array_count(caps), 2);
	ck_assert_str_eq(plist_string_get0(plist_array_get0(caps, 0), NULL),
	        "com.apple.mdm.per-user-connections");
	ck_assert_str_eq(
	        plist_string_get0(plist_array_get0(caps, 1), NULL), "com.apple.mdm.bootstraptoken");
	plist_free(t);
}
END_TEST

START_TEST(profile_scep_url_and_fresh_uuids)
{
	struct profile_enroll_params p = params();
	plist *a, *b;

	p.scep_url = "http://scep.example.com:8080/cgi-bin/scep";
	a = round_trip(&p);
	b = round_trip(&p);
	ck_assert_str_eq(
	        plist_dict_get_string0(
	                plist_dict_get0(payload_of(a, "com.apple.security.scep"), "PayloadContent"),
	                "URL"),
	        p.scep_url);
	ck_assert_str_ne(
	        plist_dict_get_string0(a, "PayloadUUID"), plist_dict_get_string0(b, "PayloadUUID"));
	plist_free(a);
	plist_free(b);
}
END_TEST

START_TEST(profile_uuid_v4)
{
	char u[PROFILE_UUID_LEN + 1];

	ck_assert_int_eq(profile_uuid_new(u), MDM_OK);
	ck_assert_uint_eq(strlen(u), 36);
	ck_assert_int_eq(u[8], '-');
	ck_assert_int_eq(u[14], '4');
	ck_assert(strchr("89AB", u[19]) != NULL);
	ck_assert_uint_eq(strspn(u, "0123456789ABCDEF-"), 36);
}
END_TEST

/* XML metacharacters are escaped by the writer and come back intact. */
START_TEST(profile_hostile_org_escaped)
{
	struct profile_enroll_params p = params();
	plist *t;

	p.organization = "A & <B> \"C\" 'D' ]]> </string><key>x</key>";
	t = round_trip(&p);
	ck_assert_str_eq(plist_dict_get_string0(t, "PayloadOrganization"), p.organization);
	plist_free(t);
}
END_TEST

START_TEST(profile_bad_values_refused)
{
	static const char *const bad_public[] = {NULL, "http://mdm.example.com",
	        "https://mdm.example.com/?x=1", "https://mdm.example.com/#f", "https://",
	        "https://mdm example.com", "https://mdm.example.com/\x01", "ftp://x",
	        "https://mdm.example.com/\xc3\xa9", "https://mdm.example.com/"};
	struct profile_enroll_params p;
	plist *t = NULL;

	for (size_t i = 0; i < sizeof(bad_public) / sizeof(bad_public[0]); i++) {
		p = params();
		p.public_url = bad_public[i];
		ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
		ck_assert_ptr_null(t);
	}
	p = params();
	p.organization = "Evil\x01Corp";
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p = params();
	p.organization = "";
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p = params();
	p.identifier = "com..example";
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p = params();
	p.identifier = "com.example/<x>";
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p = params();
	p.access_rights = 8192;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p = params();
	p.access_rights = 0;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p = params();
	p.scep_url = "https://scep.example.com/?op=x";
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	ck_assert_ptr_null(t);
}
END_TEST

START_TEST(profile_subject_forms)
{
	static const char *const bad[] = {
	        "", "CN=x", "/XX=y", "/CN=", "/CN=a\\b", "/CN=a\nb", "/CN", "/CN=a/"};
	plist *s = NULL;

	ck_assert_int_eq(profile_subject_parse("/C=US/O=Example Inc./CN=foo", &s), MDM_OK);
	ck_assert_uint_eq(plist_array_count(s), 3);
	plist_free(s);
	s = NULL;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(
		        profile_subject_parse(bad[i], &s) == MDM_ERR_CONFIG, "accepted %s", bad[i]);
		ck_assert_ptr_null(s);
	}
}
END_TEST

/* ---- push topics ---- */

START_TEST(pushcert_topic_rules)
{
	ck_assert(pushcert_topic_valid(
	        "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9"));
	ck_assert(!pushcert_topic_valid("com.apple.mgmt.External."));
	ck_assert(!pushcert_topic_valid(
	        "com.apple.mgmt.Internal.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9"));
	ck_assert(!pushcert_topic_valid(
	        "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d"));
	ck_assert(!pushcert_topic_valid(
	        "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9x"));
	ck_assert(!pushcert_topic_valid(
	        "com.apple.mgmt.External.e0bd1eac_1f17-4c8e-8a63-dd17d3dd35d9"));
	ck_assert(!pushcert_topic_valid(
	        "com.apple.mgmt.External.g0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9"));
	ck_assert(!pushcert_topic_valid(NULL));
}
END_TEST

/* The real Apple MDM push certificate (nanomdm's test data): its topic. */
START_TEST(pushcert_topic_real_apple_cert)
{
	char path[4096], topic[PUSHCERT_MAX_TOPIC + 1];
	struct x509_st *c = NULL;

	if (vector_path("enroll", "nanomdm/test/e2e/testdata/push.pem", path, sizeof(path)) == NULL)
		return;
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_OK);
	ck_assert_int_eq(pushcert_topic(c, topic), MDM_OK);
	ck_assert_str_eq(topic, "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9");
	x509_cert_free(c);
}
END_TEST
/* The keys Apple's schemas allow in a certificate payload (CommonPayloadKeys.yaml + root/pem). */
static void assert_anchor_keys(const plist *d)
{
	static const char *const allowed[] = {"PayloadType", "PayloadVersion", "PayloadIdentifier",
	        "PayloadUUID", "PayloadDisplayName", "PayloadDescription", "PayloadOrganization",
	        "PayloadCertificateFileName", "PayloadContent"};
	size_t n = plist_dict_count(d), known = 0;

	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		known += plist_dict_get0(d, allowed[i]) != NULL;
	ck_assert_uint_eq(known, n);
	assert_type(d, "PayloadContent", PLIST_DATA);
	assert_type(d, "PayloadCertificateFileName", PLIST_STRING);
}

/* Trust anchors: one payload each, in order, between SCEP and MDM; none in phase 2. */
START_TEST(profile_anchor_payloads)
{
	static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	static const char pem[] =
	        "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
	struct profile_anchor a[PROFILE_MAX_ANCHORS + 1] = {{der, sizeof(der), 1, "Unit TLS Root"},
	        {(const uint8_t *)pem, strlen(pem), 0, "Unit TLS Intermediate"}};
	struct profile_enroll_params p = params();
	const plist *c, *r, *i;
	const uint8_t *got;
	size_t glen;
	plist *t;

	p.anchors = a;
	p.nanchors = 2;
	t = round_trip(&p);
	c = plist_dict_get0(t, "PayloadContent");
	ck_assert_uint_eq(plist_array_count(c), 4);
	ck_assert_str_eq(plist_dict_get_string0(plist_array_get0(c, 0), "PayloadType"),
	        "com.apple.security.scep");
	r = plist_array_get0(c, 1);
	i = plist_array_get0(c, 2);
	assert_payload(r, "com.apple.security.root");
	assert_payload(i, "com.apple.security.pem");
	assert_anchor_keys(r);
	assert_anchor_keys(i);
	ck_assert_str_eq(
	        plist_dict_get_string0(plist_array_get0(c, 3), "PayloadType"), "com.apple.mdm");
	got = plist_data_get0(plist_dict_get0(r, "PayloadContent"), &glen);
	ck_assert_uint_eq(glen, sizeof(der));
	ck_assert_mem_eq(got, der, sizeof(der));
	got = plist_data_get0(plist_dict_get0(i, "PayloadContent"), &glen);
	ck_assert_uint_eq(glen, strlen(pem));
	ck_assert_mem_eq(got, pem, glen);
	ck_assert_str_eq(
	        plist_dict_get_string0(r, "PayloadIdentifier"), "com.example.mdm.enroll.anchor1");
	ck_assert_str_eq(
	        plist_dict_get_string0(r, "PayloadDisplayName"), "Server trust: Unit TLS Root");
	ck_assert_str_ne(
	        plist_dict_get_string0(r, "PayloadUUID"), plist_dict_get_string0(i, "PayloadUUID"));
	plist_free(t);
	/* Phase 2 (identity only): no anchors. */
	ck_assert_int_eq(profile_scep_build(&p, &t), MDM_OK);
	ck_assert_uint_eq(plist_array_count(plist_dict_get0(t, "PayloadContent")), 1);
	plist_free(t);
	/* Refused: too many, an empty one, a name with a control character. */
	for (size_t k = 0; k <= PROFILE_MAX_ANCHORS; k++)
		a[k] = a[0];
	p.nanchors = PROFILE_MAX_ANCHORS + 1;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	ck_assert_ptr_null(t);
	p.nanchors = 1;
	a[0].len = 0;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	a[0].len = sizeof(der);
	a[0].name = "bad\nname";
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p.anchors = NULL;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
}
END_TEST

/* CAFingerprint (16 or 20 bytes, data), Retries and RetryDelay (integers, bounded). */
START_TEST(profile_scep_fingerprint_and_retries)
{
	static const uint8_t fp[20] = {
	        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
	struct profile_enroll_params p = params();
	const plist *c;
	const uint8_t *got;
	size_t glen;
	int64_t n;
	plist *t;

	p.ca_fingerprint = fp;
	p.ca_fingerprint_len = sizeof(fp);
	p.scep_retries = 60;
	p.scep_retry_delay = 30;
	t = round_trip(&p);
	c = plist_dict_get0(payload_of(t, "com.apple.security.scep"), "PayloadContent");
	got = plist_data_get0(plist_dict_get0(c, "CAFingerprint"), &glen);
	ck_assert_uint_eq(glen, sizeof(fp));
	ck_assert_mem_eq(got, fp, sizeof(fp));
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(c, "Retries"), &n), MDM_OK);
	ck_assert_int_eq(n, 60);
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(c, "RetryDelay"), &n), MDM_OK);
	ck_assert_int_eq(n, 30);
	plist_free(t);
	/* MD5's length is also one a device takes; SHA-256's is not. */
	p.ca_fingerprint_len = 16;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_OK);
	plist_free(t);
	p.ca_fingerprint_len = 32;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	ck_assert_int_eq(profile_scep_build(&p, &t), MDM_ERR_CONFIG);
	p.ca_fingerprint_len = 20;
	p.scep_retries = -1;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p.scep_retries = PROFILE_SCEP_RETRIES_MAX + 1;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p.scep_retries = 3;
	p.scep_retry_delay = PROFILE_SCEP_RETRY_DELAY_MAX + 1;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	p.scep_retry_delay = -1;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
	/* Without a fingerprint the key is left out. */
	p.scep_retry_delay = 10;
	p.ca_fingerprint = NULL;
	t = round_trip(&p);
	c = plist_dict_get0(payload_of(t, "com.apple.security.scep"), "PayloadContent");
	ck_assert_ptr_null(plist_dict_get0(c, "CAFingerprint"));
	plist_free(t);
}
END_TEST

/* Pinning: both URL pin lists name exactly the anchor payloads' UUIDs; no anchors, refused. */
START_TEST(profile_pinning_keys)
{
	static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	struct profile_anchor a[2] = {
	        {der, sizeof(der), 1, "Current TLS CA"}, {der, sizeof(der), 1, "Next TLS CA"}};
	static const char *const keys[] = {
	        "ServerURLPinningCertificateUUIDs", "CheckInURLPinningCertificateUUIDs"};
	struct profile_enroll_params p = params();
	const plist *c, *mdm;
	plist *t;
	int b;

	p.anchors = a;
	p.nanchors = 2;
	p.pinning = 1;
	p.pin_revocation = 1;
	t = round_trip(&p);
	c = plist_dict_get0(t, "PayloadContent");
	mdm = payload_of(t, "com.apple.mdm");
	for (size_t k = 0; k < 2; k++) {
		const plist *pins = plist_dict_get0(mdm, keys[k]);

		ck_assert_int_eq(plist_get_type(pins), PLIST_ARRAY);
		ck_assert_uint_eq(plist_array_count(pins), 2);
		for (size_t i = 0; i < 2; i++)
			ck_assert_str_eq(plist_string_get0(plist_array_get0(pins, i), NULL),
			        plist_dict_get_string0(plist_array_get0(c, 1 + i), "PayloadUUID"));
	}
	ck_assert_int_eq(
	        plist_bool_get(plist_dict_get0(mdm, "PinningRevocationCheckRequired"), &b), MDM_OK);
	ck_assert_int_eq(b, 1);
	plist_free(t);
	/* Off: none of the keys. */
	p.pinning = 0;
	t = round_trip(&p);
	mdm = payload_of(t, "com.apple.mdm");
	ck_assert_ptr_null(plist_dict_get0(mdm, keys[0]));
	ck_assert_ptr_null(plist_dict_get0(mdm, keys[1]));
	ck_assert_ptr_null(plist_dict_get0(mdm, "PinningRevocationCheckRequired"));
	plist_free(t);
	/* Pins with nothing to pin to: refused. */
	p.pinning = 1;
	p.nanchors = 0;
	ck_assert_int_eq(profile_enroll_build(&p, &t), MDM_ERR_CONFIG);
}
END_TEST

/* tls_trust_ca_file: CA certificates only, PEM only, bounded; root vs intermediate. */
START_TEST(enroll_anchor_file_rules)
{
	char tmp[128], path[256], bad[256];
	struct enroll_state st;
	uint8_t *der;
	size_t derlen;

	ts_tmpdir_new(tmp, sizeof(tmp), "anchors");
	ck_assert_int_eq(
	        ts_sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "
	              "root.key "
	              "-out root.pem -subj '/CN=Unit TLS Root' -addext "
	              "basicConstraints=critical,CA:TRUE "
	              "2>/dev/null && "
	              "openssl req -newkey rsa:2048 -nodes -keyout int.key -out int.csr "
	              "-subj '/CN=Unit TLS Int' 2>/dev/null && "
	              "printf 'basicConstraints=critical,CA:TRUE\\n' >ca.ext && "
	              "printf 'basicConstraints=CA:FALSE\\n' >leaf.ext && "
	              "openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -days 30 "
	              "-extfile ca.ext -out int.pem 2>/dev/null && "
	              "openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -days 30 "
	              "-extfile leaf.ext -out leaf.pem 2>/dev/null && "
	              "openssl x509 -in root.pem -outform der -out root.der && "
	              "cat root.pem int.pem >both.pem && cat root.pem root.key >withkey.pem && "
	              ": >empty.pem && printf 'not a certificate\\n' >junk.pem && "
	              "for i in 1 2 3 4 5 6 7 8 9; do cat root.pem; done >nine.pem",
	                tmp),
	        0);
	/* Accepted: a root (DER, com.apple.security.root) then an intermediate (PEM). */
	memset(&st, 0, sizeof(st));
	snprintf(path, sizeof(path), "%s/both.pem", tmp);
	ck_assert_int_eq(enroll_anchors_load(&st, path), MDM_OK);
	ck_assert_uint_eq(st.nanchors, 2);
	ck_assert_int_eq(st.anchors[0].root, 1);
	ck_assert_str_eq(st.anchors[0].name, "Unit TLS Root");
	snprintf(path, sizeof(path), "%s/root.der", tmp);
	der = ts_file_get(path, &derlen);
	ck_assert_uint_eq(st.anchors[0].len, derlen);
	ck_assert_mem_eq(st.anchors[0].data, der, derlen);
	free(der);
	ck_assert_int_eq(st.anchors[1].root, 0);
	ck_assert_str_eq(st.anchors[1].name, "Unit TLS Int");
	ck_assert_ptr_nonnull(strstr((const char *)st.anchors[1].data, "BEGIN CERTIFICATE"));
	for (size_t i = 0; i < st.nanchors; i++)
		free(st.anchor_data[i]);
	/* Unset or empty: none. */
	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(enroll_anchors_load(&st, NULL), MDM_OK);
	ck_assert_int_eq(enroll_anchors_load(&st, ""), MDM_OK);
	ck_assert_uint_eq(st.nanchors, 0);
	/* Refused, nothing kept: a server certificate, a key, DER, junk, empty, 9, missing. */
	{
		static const char *const refused[] = {"leaf.pem", "withkey.pem", "root.der",
		        "junk.pem", "empty.pem", "nine.pem", "missing.pem"};

		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			snprintf(bad, sizeof(bad), "%s/%s", tmp, refused[i]);
			memset(&st, 0, sizeof(st));
			ck_assert_msg(enroll_anchors_load(&st, bad) == MDM_ERR_CONFIG,
			        "%s accepted", refused[i]);
			ck_assert_uint_eq(st.nanchors, 0);
			for (size_t j = 0; j < PROFILE_MAX_ANCHORS; j++)
				ck_assert_ptr_null(st.anchor_data[j]);
		}
	}
	ts_tmpdir_done(tmp);
}
END_TEST

/* tls_server_chain_file loaded into a fresh state; its result, st kept for the caller. */
static mdm_err chain_load(const char *tmp, const char *file, struct enroll_state *st)
{
	char path[256];

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "%s/%s", tmp, file);
	return enroll_chain_anchors_load(st, path);
}

static void chain_free(struct enroll_state *st)
{
	for (size_t i = 0; i < st->nanchors; i++)
		free(st->anchor_data[i]);
	memset(st, 0, sizeof(*st));
}

/*
 * Test certificates in tmp: a root, an intermediate (CA), a server
 * certificate under it, a self-signed server certificate, and chain files
 * (chain.pem leaf-int-root, noroot.pem, misordered.pem, withkey.pem,
 * empty.pem, junk.pem), and an empty directory nostore.
 */
static void chain_make(const char *tmp)
{
	ck_assert_int_eq(
	        ts_sh("cd %s && printf 'basicConstraints=critical,CA:TRUE\\n' >ca.ext && "
	              "printf 'basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' "
	              ">leaf.ext && "
	              "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout root.key "
	              "-out root.pem -subj '/CN=Chain Root' -addext "
	              "basicConstraints=critical,CA:TRUE 2>/dev/null && "
	              "openssl req -newkey rsa:2048 -nodes -keyout int.key -out int.csr "
	              "-subj '/CN=Chain Int' 2>/dev/null && "
	              "openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -days 30 "
	              "-extfile ca.ext -out int.pem 2>/dev/null && "
	              "openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr "
	              "-subj '/CN=mdm.example.com' 2>/dev/null && "
	              "openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -days 30 "
	              "-extfile leaf.ext -out leaf.pem 2>/dev/null && "
	              "openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout self.key "
	              "-out selfsigned.pem -subj '/CN=mdm.example.com' -addext "
	              "basicConstraints=CA:FALSE 2>/dev/null && "
	              "openssl x509 -in root.pem -outform der -out root.der && "
	              "cat leaf.pem int.pem root.pem >chain.pem && cat leaf.pem int.pem "
	              ">noroot.pem "
	              "&& cat int.pem leaf.pem root.pem >misordered.pem && "
	              "cat leaf.pem leaf.key >withkey.pem && : >empty.pem && "
	              "printf 'not a certificate\\n' >junk.pem && mkdir -p nostore",
	                tmp),
	        0);
}

/*
 * tls_server_chain_file: refused first (missing, junk, out of order, a
 * private chain without its root, a self-signed server certificate
 * alone), then a public chain gives no payload, then a private one its
 * root (DER) and intermediate (PEM), never the server's certificate.
 * "Public" is OpenSSL's default trust store, pointed here at a test
 * directory through OpenSSL's own SSL_CERT_FILE and SSL_CERT_DIR.
 */
START_TEST(enroll_chain_file_rules)
{
	static const char *const refused[] = {"missing.pem", "junk.pem", "withkey.pem",
	        "misordered.pem", "noroot.pem", "selfsigned.pem", "empty.pem"};
	char tmp[128], path[256];
	struct enroll_state st;
	uint8_t *der;
	size_t derlen;

	ts_tmpdir_new(tmp, sizeof(tmp), "chain");
	chain_make(tmp);
	/* The system store stands empty: nothing here is public. */
	snprintf(path, sizeof(path), "%s/empty.pem", tmp);
	ck_assert_int_eq(setenv("SSL_CERT_FILE", path, 1), 0);
	snprintf(path, sizeof(path), "%s/nostore", tmp);
	ck_assert_int_eq(setenv("SSL_CERT_DIR", path, 1), 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		ck_assert_msg(chain_load(tmp, refused[i], &st) == MDM_ERR_CONFIG, "%s accepted",
		        refused[i]);
		ck_assert_uint_eq(st.nanchors, 0);
		for (size_t j = 0; j < PROFILE_MAX_ANCHORS; j++)
			ck_assert_ptr_null(st.anchor_data[j]);
	}
	/* Unset or empty: none. */
	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(enroll_chain_anchors_load(&st, NULL), MDM_OK);
	ck_assert_int_eq(enroll_chain_anchors_load(&st, ""), MDM_OK);
	ck_assert_uint_eq(st.nanchors, 0);
	/* Private: the root as com.apple.security.root (DER), the intermediate as .pem. */
	ck_assert_int_eq(chain_load(tmp, "chain.pem", &st), MDM_OK);
	ck_assert_uint_eq(st.nanchors, 2);
	ck_assert_int_eq(st.anchors[0].root, 1);
	ck_assert_str_eq(st.anchors[0].name, "Chain Root");
	snprintf(path, sizeof(path), "%s/root.der", tmp);
	der = ts_file_get(path, &derlen);
	ck_assert_uint_eq(st.anchors[0].len, derlen);
	ck_assert_mem_eq(st.anchors[0].data, der, derlen);
	free(der);
	ck_assert_int_eq(st.anchors[1].root, 0);
	ck_assert_str_eq(st.anchors[1].name, "Chain Int");
	ck_assert_ptr_nonnull(strstr((const char *)st.anchors[1].data, "BEGIN CERTIFICATE"));
	chain_free(&st);
	/* Public (the root in the system store): no payload, with or without the root. */
	snprintf(path, sizeof(path), "%s/root.pem", tmp);
	ck_assert_int_eq(setenv("SSL_CERT_FILE", path, 1), 0);
	ck_assert_int_eq(chain_load(tmp, "chain.pem", &st), MDM_OK);
	ck_assert_uint_eq(st.nanchors, 0);
	ck_assert_int_eq(chain_load(tmp, "noroot.pem", &st), MDM_OK);
	ck_assert_uint_eq(st.nanchors, 0);
	/* Order is still checked for a public chain. */
	ck_assert_int_eq(chain_load(tmp, "misordered.pem", &st), MDM_ERR_CONFIG);
	ck_assert_int_eq(unsetenv("SSL_CERT_FILE"), 0);
	ck_assert_int_eq(unsetenv("SSL_CERT_DIR"), 0);
	ts_tmpdir_done(tmp);
}
END_TEST

/* ---- against the database ---- */

static char dir[128];
static struct ts_db tdb;
static db *d;

/* A scratch database, and a directory for the openssl command line. */
static void db_setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&tdb, "enroll");
	d = tdb.d;
	ts_tmpdir_new(dir, sizeof(dir), "enroll");
}

static void db_teardown(void)
{
	d = NULL;
	ts_db_drop(&tdb); /* frees d */
	ts_tmpdir_done(dir);
}

/* dir/name.pem and dir/name.key: a self-signed certificate with subject subj. */
static void make_cert(const char *name, const char *subj)
{
	ck_assert_int_eq(
	        ts_sh("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout %s/%s.key "
	              "-out %s/%s.pem -subj '%s' 2>/dev/null",
	                dir, name, dir, name, subj),
	        0);
}

static void make_push(const char *name, const char *uuid)
{
	char subj[256];

	snprintf(subj, sizeof(subj), "/UID=com.apple.mgmt.External.%s/CN=APSP:%s/C=US", uuid, uuid);
	make_cert(name, subj);
}

static mdm_err import(const char *cert, const char *key, enum pushcert_import_result *res)
{
	char cp[256], kp[256], topic[PUSHCERT_MAX_TOPIC + 1];
	struct x509_st *c = NULL;
	struct evp_pkey_st *k = NULL;
	mdm_err rc;

	snprintf(cp, sizeof(cp), "%s/%s.pem", dir, cert);
	snprintf(kp, sizeof(kp), "%s/%s.key", dir, key);
	ck_assert_int_eq(x509_cert_load_file(cp, &c), MDM_OK);
	ck_assert_int_eq(x509_key_load(kp, &k), MDM_OK);
	rc = pushcert_import(d, c, k, kp, time(NULL), topic, res);
	x509_cert_free(c);
	x509_key_free(k);
	return rc;
}

static int count(const char *sql)
{
	return ts_db_count(d, sql);
}

#define UUID1 "e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9"
#define UUID2 "1b0c3e65-6a0f-4d6e-9a35-0c8f0f4f2b11"

START_TEST(pushcert_import_rules)
{
	enum pushcert_import_result res;

	make_push("push", UUID1);
	make_push("renewed", UUID1);
	make_cert("nouid", "/CN=APSP:" UUID1 "/C=US");
	make_cert("baduid", "/UID=com.example.topic/CN=x");
	ck_assert_int_eq(import("push", "renewed", &res), MDM_ERR_FORBIDDEN); /* wrong key */
	ck_assert_int_eq(import("nouid", "nouid", &res), MDM_ERR_PARSE);
	ck_assert_int_eq(import("baduid", "baduid", &res), MDM_ERR_PARSE);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.certificate"), 0);
	ck_assert_int_eq(import("push", "push", &res), MDM_OK);
	ck_assert_int_eq(res, PUSHCERT_IMPORTED);
	ck_assert_int_eq(import("push", "push", &res), MDM_OK);
	ck_assert_int_eq(res, PUSHCERT_UNCHANGED);
	/* A renewal replaces the topic's row; the old certificate stays. */
	ck_assert_int_eq(import("renewed", "renewed", &res), MDM_OK);
	ck_assert_int_eq(res, PUSHCERT_REPLACED);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.push_cert"), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.certificate WHERE kind = 'push'"), 2);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.push_cert p JOIN mdm.certificate c ON "
	                       "c.id = p.certificate_id WHERE c.not_before = (SELECT "
	                       "max(not_before) FROM mdm.certificate)"),
	        1);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.push_certs WHERE NOT expired"), 1);
}
END_TEST

START_TEST(pushcert_import_p12)
{
	char p12[256], pw[256], bad[256], topic[PUSHCERT_MAX_TOPIC + 1];
	struct x509_st *c = NULL;
	struct evp_pkey_st *k = NULL;
	enum pushcert_import_result res;

	make_push("push", UUID2);
	snprintf(p12, sizeof(p12), "%s/push.p12", dir);
	snprintf(pw, sizeof(pw), "%s/pw", dir);
	snprintf(bad, sizeof(bad), "%s/badpw", dir);
	ck_assert_int_eq(ts_sh("printf 'secret pass\\n' > %s && printf 'nope' > %s", pw, bad), 0);
	/* -legacy: RC2 and 3DES, as Keychain Access exports. */
	ck_assert_int_eq(ts_sh("openssl pkcs12 -export -legacy -in %s/push.pem -inkey %s/push.key "
	                       "-out %s -passout file:%s 2>/dev/null",
	                         dir, dir, p12, pw),
	        0);
	ck_assert_int_eq(x509_pkcs12_load(p12, bad, &c, &k), MDM_ERR_AUTH);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(x509_pkcs12_load(p12, pw, &c, &k), MDM_OK);
	ck_assert_int_eq(pushcert_topic(c, topic), MDM_OK);
	ck_assert_str_eq(topic, "com.apple.mgmt.External." UUID2);
	ck_assert_int_eq(
	        pushcert_import(d, c, k, "/nonexistent/push.key", time(NULL), topic, &res), MDM_OK);
	ck_assert_int_eq(res, PUSHCERT_IMPORTED);
	ck_assert_int_eq(
	        pushcert_import(d, c, k, "relative.key", time(NULL), topic, &res), MDM_ERR_INVAL);
	x509_cert_free(c);
	x509_key_free(k);
	/* Modern encryption (AES, PBKDF2) too. */
	ck_assert_int_eq(ts_sh("openssl pkcs12 -export -in %s/push.pem -inkey %s/push.key "
	                       "-out %s.aes -passout file:%s 2>/dev/null",
	                         dir, dir, p12, pw),
	        0);
	strcat(p12, ".aes");
	ck_assert_int_eq(x509_pkcs12_load(p12, pw, &c, &k), MDM_OK);
	x509_cert_free(c);
	x509_key_free(k);
}
END_TEST

#define TOPIC1 "com.apple.mgmt.External." UUID1
#define TOPIC2 "com.apple.mgmt.External." UUID2
#define TOPIC3 "com.apple.mgmt.External.0e0e0e0e-0000-4000-8000-000000000003"

/* An enrollment state without a signer, mdm_topic as given (NULL: unset). */
static struct enroll_state *state_with_default(const char *mdm_topic)
{
	struct enroll_state *st = NULL;
	config *cfg = NULL;
	char ca[256];

	snprintf(ca, sizeof(ca), "%s/ca.key", dir);
	if (count("SELECT count(*) FROM mdm.ca") == 0)
		ck_assert_int_eq(
		        ca_init(d, "/CN=Unit Topic CA/O=mdm", 3650, 2048, ca, NULL, time(NULL)),
		        MDM_OK);
	if (mdm_topic != NULL)
		setenv("MDM_MDM_TOPIC", mdm_topic, 1);
	else
		unsetenv("MDM_MDM_TOPIC");
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(enroll_state_load(d, cfg, 0, &st), MDM_OK);
	config_free(cfg);
	unsetenv("MDM_MDM_TOPIC");
	return st;
}

/* ?topic= from an untrusted query: the shape, once, bounded before allocation. */
START_TEST(enroll_topic_query_refusals)
{
	static const char *const bad[] = {
	        "topic=com.apple.mgmt.External.",
	        "topic=com.example.topic",
	        "topic=com.apple.mgmt.External." UUID1 "x",
	        "topic=com.apple.mgmt.External." UUID1 "%00",
	        "topic=com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d%0A",
	        "topic=com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d%01",
	        "topic=com.apple.mgmt.External.x'%3B%20DROP%20TABLE%20mdm.challenge%3B--",
	        "topic=com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d'",
	        "topic=" TOPIC1 "&topic=" TOPIC1,
	        "topic=%zz",
	        "topic=",
	        "topic",
	};
	char topic[PUSHCERT_MAX_TOPIC + 1], *longq;
	size_t n = 1 << 16;

	ck_assert_int_eq(enroll_topic_from_query("topic=" TOPIC1, topic), MDM_OK);
	ck_assert_str_eq(topic, TOPIC1);
	/* Percent-encoded dots decode to the same topic. */
	ck_assert_int_eq(
	        enroll_topic_from_query("a=1&topic=com%2Eapple.mgmt.External." UUID2, topic),
	        MDM_OK);
	ck_assert_str_eq(topic, TOPIC2);
	ck_assert_int_eq(enroll_topic_from_query("token=x", topic), MDM_ERR_NOT_FOUND);
	ck_assert_str_eq(topic, "");
	ck_assert_int_eq(enroll_topic_from_query(NULL, topic), MDM_ERR_NOT_FOUND);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(enroll_topic_from_query(bad[i], topic) == MDM_ERR_PARSE,
		        "accepted %s", bad[i]);
		ck_assert_str_eq(topic, "");
	}
	/* Far over the length of a topic, and over the query limit. */
	ck_assert_ptr_nonnull(longq = malloc(n + 16));
	memcpy(longq, "topic=", 6);
	memset(longq + 6, 'a', n);
	longq[6 + n] = '\0';
	ck_assert_int_eq(enroll_topic_from_query(longq, topic), MDM_ERR_PARSE);
	longq[6 + 200] = '\0';
	ck_assert_int_eq(enroll_topic_from_query(longq, topic), MDM_ERR_PARSE);
	free(longq);
}
END_TEST

/* Which topic a profile names: the request's, the Location's, mdm_topic, the only one. */
START_TEST(enroll_topic_choice)
{
	char topic[PUSHCERT_MAX_TOPIC + 1], why[ENROLL_MAX_WHY];
	enum pushcert_import_result res;
	struct enroll_state *st = state_with_default(NULL), *st2, *st3;

	/* Nothing imported: the server is not configured (500), the answer says why. */
	ck_assert_int_eq(
	        enroll_topic_choose(d, st, NULL, NULL, topic, why, sizeof(why)), MDM_ERR_CONFIG);
	ck_assert_str_eq(topic, "");
	ck_assert_ptr_nonnull(strstr(why, "no push certificate"));
	make_push("one", UUID1);
	make_push("two", UUID2);
	ck_assert_int_eq(import("one", "one", &res), MDM_OK);
	ck_assert_int_eq(enroll_topic_choose(d, st, NULL, NULL, topic, why, sizeof(why)), MDM_OK);
	ck_assert_str_eq(topic, TOPIC1);
	ck_assert_int_eq(import("two", "two", &res), MDM_OK);
	/* Two imported, none chosen, no mdm_topic: 409 naming the choice and the parameter. */
	ck_assert_int_eq(
	        enroll_topic_choose(d, st, NULL, NULL, topic, why, sizeof(why)), MDM_ERR_CONFLICT);
	ck_assert_str_eq(topic, "");
	ck_assert_ptr_nonnull(strstr(why, "topic="));
	ck_assert_ptr_nonnull(strstr(why, "mdm_topic"));
	ck_assert_ptr_nonnull(strstr(why, TOPIC1));
	ck_assert_ptr_nonnull(strstr(why, TOPIC2));
	/* The request chooses. */
	ck_assert_int_eq(enroll_topic_choose(d, st, TOPIC2, NULL, topic, why, sizeof(why)), MDM_OK);
	ck_assert_str_eq(topic, TOPIC2);
	ck_assert_int_eq(enroll_topic_choose(d, st, TOPIC1, NULL, topic, why, sizeof(why)), MDM_OK);
	ck_assert_str_eq(topic, TOPIC1);
	/* Not imported: 404 naming it; malformed: 400, never echoed. */
	ck_assert_int_eq(enroll_topic_choose(d, st, TOPIC3, NULL, topic, why, sizeof(why)),
	        MDM_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(why, TOPIC3));
	ck_assert_ptr_nonnull(strstr(why, TOPIC1));
	ck_assert_int_eq(enroll_topic_choose(d, st, "com.apple.mgmt.External.x'--", NULL, topic,
	                         why, sizeof(why)),
	        MDM_ERR_PARSE);
	ck_assert_ptr_null(strstr(why, "x'--"));
	/* A Location's topic: its only one. */
	ck_assert_int_eq(enroll_topic_choose(d, st, NULL, TOPIC2, topic, why, sizeof(why)), MDM_OK);
	ck_assert_str_eq(topic, TOPIC2);
	ck_assert_int_eq(
	        enroll_topic_choose(d, st, TOPIC2, TOPIC2, topic, why, sizeof(why)), MDM_OK);
	ck_assert_int_eq(enroll_topic_choose(d, st, TOPIC1, TOPIC2, topic, why, sizeof(why)),
	        MDM_ERR_FORBIDDEN);
	ck_assert_str_eq(topic, "");
	ck_assert_ptr_nonnull(strstr(why, TOPIC2));
	ck_assert_int_eq(enroll_topic_choose(d, st, NULL, TOPIC3, topic, why, sizeof(why)),
	        MDM_ERR_CONFLICT);
	ck_assert_int_eq(enroll_topic_choose(d, st, NULL, "com.example", topic, why, sizeof(why)),
	        MDM_ERR_CONFIG);
	/* An empty Location value is no value. */
	ck_assert_int_eq(
	        enroll_topic_choose(d, st, NULL, "", topic, why, sizeof(why)), MDM_ERR_CONFLICT);
	/* mdm_topic: the default a request may override. */
	st2 = state_with_default(TOPIC2);
	ck_assert_int_eq(enroll_topic_choose(d, st2, NULL, NULL, topic, why, sizeof(why)), MDM_OK);
	ck_assert_str_eq(topic, TOPIC2);
	ck_assert_int_eq(
	        enroll_topic_choose(d, st2, TOPIC1, NULL, topic, why, sizeof(why)), MDM_OK);
	ck_assert_str_eq(topic, TOPIC1);
	/* A default that is not imported (removed since): 409 naming it, never a 500. */
	st3 = state_with_default(TOPIC3);
	ck_assert_int_eq(
	        enroll_topic_choose(d, st3, NULL, NULL, topic, why, sizeof(why)), MDM_ERR_CONFLICT);
	ck_assert_ptr_nonnull(strstr(why, TOPIC3));
	ck_assert_ptr_nonnull(strstr(why, "mdm_topic"));
	enroll_state_free(st3);
	enroll_state_free(st2);
	enroll_state_free(st);
	/* A malformed mdm_topic stops the program at load. */
	{
		config *cfg = NULL;
		struct enroll_state *bad = NULL;

		setenv("MDM_MDM_TOPIC", "com.example", 1);
		ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
		ck_assert_int_eq(enroll_state_load(d, cfg, 0, &bad), MDM_ERR_CONFIG);
		ck_assert_ptr_null(bad);
		config_free(cfg);
		unsetenv("MDM_MDM_TOPIC");
	}
}
END_TEST

/* Auth comes first: who may not fetch a profile learns no topic. */
START_TEST(enroll_admit_auth_before_topics)
{
	char topic[PUSHCERT_MAX_TOPIC + 1], why[ENROLL_MAX_WHY];
	enum pushcert_import_result res;
	struct enroll_state *st;
	struct enroll_req req = {0};
	config *cfg = NULL;

	setenv("MDM_ENROLL_AUTH", "token", 1);
	setenv("MDM_ENROLL_TOKEN", "0123456789abcdefXYZ", 1);
	st = state_with_default(NULL);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	make_push("one", UUID1);
	make_push("two", UUID2);
	ck_assert_int_eq(import("one", "one", &res), MDM_OK);
	ck_assert_int_eq(import("two", "two", &res), MDM_OK);
	req.query = "";
	ck_assert_int_eq(
	        enroll_admit(d, st, cfg, &req, topic, why, sizeof(why)), MDM_ERR_FORBIDDEN);
	ck_assert_ptr_null(strstr(why, "com.apple"));
	req.query = "topic=" TOPIC3;
	ck_assert_int_eq(
	        enroll_admit(d, st, cfg, &req, topic, why, sizeof(why)), MDM_ERR_FORBIDDEN);
	ck_assert_ptr_null(strstr(why, "com.apple"));
	req.query = "token=wrong&topic=bad";
	ck_assert_int_eq(
	        enroll_admit(d, st, cfg, &req, topic, why, sizeof(why)), MDM_ERR_FORBIDDEN);
	req.query = "token=0123456789abcdefXYZ";
	ck_assert_int_eq(enroll_admit(d, st, cfg, &req, topic, why, sizeof(why)), MDM_ERR_CONFLICT);
	ck_assert_ptr_nonnull(strstr(why, TOPIC1));
	req.query = "token=0123456789abcdefXYZ&topic=" TOPIC2;
	ck_assert_int_eq(enroll_admit(d, st, cfg, &req, topic, why, sizeof(why)), MDM_OK);
	ck_assert_str_eq(topic, TOPIC2);
	req.query = "token=0123456789abcdefXYZ&topic=" TOPIC2 "%0A";
	ck_assert_int_eq(enroll_admit(d, st, cfg, &req, topic, why, sizeof(why)), MDM_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(why, "topic"));
	/* The Location's topic through the request. */
	req.query = "token=0123456789abcdefXYZ";
	req.location_topic = TOPIC1;
	ck_assert_int_eq(enroll_admit(d, st, cfg, &req, topic, why, sizeof(why)), MDM_OK);
	ck_assert_str_eq(topic, TOPIC1);
	config_free(cfg);
	enroll_state_free(st);
	unsetenv("MDM_ENROLL_AUTH");
	unsetenv("MDM_ENROLL_TOKEN");
	/* Nothing was made by any of it. */
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge"), 0);
}
END_TEST

/* A profile per topic; its challenge records the topic; a vanished topic makes none. */
/* SHA-1 of the active CA's DER by the openssl command line, 20 bytes. */
static void active_ca_sha1(uint8_t out[X509_SHA1_LEN])
{
	struct x509_st *ca = NULL;
	db_res *r = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	char path[256], hex[256];

	ck_assert_int_eq(db_exec(d,
	                         "SELECT c.der FROM mdm.ca a JOIN mdm.certificate c ON c.id = "
	                         "a.certificate_id WHERE a.state = 'active'",
	                         0, NULL, &r),
	        MDM_OK);
	ck_assert_int_eq(ca_cert_from_res(r, 0, 0, &ca), MDM_OK);
	ck_assert_int_eq(x509_cert_to_der(ca, &der, &len), MDM_OK);
	snprintf(path, sizeof(path), "%s/active.der", dir);
	ts_file_write(path, der, len);
	ck_assert_int_eq(ts_run(hex, sizeof(hex), "openssl dgst -sha1 -r %s", path), 0);
	for (size_t i = 0; i < X509_SHA1_LEN; i++) {
		unsigned v;

		ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	free(der);
	x509_cert_free(ca);
	db_res_free(r);
}

/* The CAFingerprint of a profile made now, and its Retries and RetryDelay. */
static void profile_scep(const struct enroll_state *st, const config *cfg, uint8_t fp[20],
        int64_t *retries, int64_t *delay)
{
	char *xml = NULL;
	size_t len = 0, glen = 0;
	plist *p = NULL;
	const plist *c;
	const uint8_t *got;

	ck_assert_int_eq(enroll_profile_xml(d, cfg, st, NULL, TOPIC1, &xml, &len), MDM_OK);
	ck_assert_int_eq(plist_parse(xml, len, &p), MDM_OK);
	c = plist_dict_get0(payload_of(p, "com.apple.security.scep"), "PayloadContent");
	got = plist_data_get0(plist_dict_get0(c, "CAFingerprint"), &glen);
	ck_assert_uint_eq(glen, X509_SHA1_LEN);
	memcpy(fp, got, glen);
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(c, "Retries"), retries), MDM_OK);
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(c, "RetryDelay"), delay), MDM_OK);
	plist_free(p);
	enroll_free_secret(xml, len);
}

/*
 * CAFingerprint is the active CA's, which GetCACert returns: still the old
 * one while a re-keyed CA is only staged (GetNextCACert), the new one in a
 * profile made after `ca activate`, by a process loaded before.
 */
START_TEST(enroll_ca_fingerprint_across_rekey)
{
	enum pushcert_import_result res;
	uint8_t want[X509_SHA1_LEN], old[X509_SHA1_LEN], got[X509_SHA1_LEN];
	struct enroll_state *st;
	config *cfg = NULL;
	char newkey[256];
	int64_t retries, delay;

	setenv("MDM_PUBLIC_URL", "https://mdm.example.com", 1);
	setenv("MDM_ENROLL_SCEP_RETRIES", "60", 1);
	setenv("MDM_ENROLL_SCEP_RETRY_DELAY", "60", 1);
	st = state_with_default(NULL);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	make_push("one", UUID1);
	ck_assert_int_eq(import("one", "one", &res), MDM_OK);
	active_ca_sha1(want);
	profile_scep(st, cfg, got, &retries, &delay);
	ck_assert_mem_eq(got, want, sizeof(want));
	ck_assert_int_eq(retries, 60);
	ck_assert_int_eq(delay, 60);
	memcpy(old, want, sizeof(old));
	snprintf(newkey, sizeof(newkey), "%s/next.key", dir);
	ck_assert_int_eq(ca_stage_next(d, 3650, 2048, newkey, NULL, time(NULL)), MDM_OK);
	profile_scep(st, cfg, got, &retries, &delay);
	ck_assert_mem_eq(got, old, sizeof(old));
	ck_assert_int_eq(ca_activate(d), MDM_OK);
	active_ca_sha1(want);
	ck_assert_mem_ne(want, old, sizeof(old));
	profile_scep(st, cfg, got, &retries, &delay);
	ck_assert_mem_eq(got, want, sizeof(want));
	config_free(cfg);
	enroll_state_free(st);
	/* mdm_pinning without tls_trust_ca_file: refused at load. */
	{
		struct enroll_state *bad = NULL;

		setenv("MDM_MDM_PINNING", "yes", 1);
		ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
		ck_assert_int_eq(enroll_state_load(d, cfg, 0, &bad), MDM_ERR_CONFIG);
		ck_assert_ptr_null(bad);
		config_free(cfg);
		unsetenv("MDM_MDM_PINNING");
	}
	/* Out of range: refused at load. */
	{
		struct enroll_state *bad = NULL;
		static const char *const vals[][2] = {{"MDM_ENROLL_SCEP_RETRIES", "1001"},
		        {"MDM_ENROLL_SCEP_RETRIES", "-1"}, {"MDM_ENROLL_SCEP_RETRY_DELAY", "3601"},
		        {"MDM_ENROLL_SCEP_RETRY_DELAY", "x"}};

		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			setenv(vals[i][0], vals[i][1], 1);
			ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
			ck_assert_int_eq(enroll_state_load(d, cfg, 0, &bad), MDM_ERR_CONFIG);
			ck_assert_ptr_null(bad);
			config_free(cfg);
			setenv(vals[i][0], "10", 1);
		}
	}
	unsetenv("MDM_ENROLL_SCEP_RETRIES");
	unsetenv("MDM_ENROLL_SCEP_RETRY_DELAY");
	unsetenv("MDM_PUBLIC_URL");
}
END_TEST

START_TEST(enroll_profile_per_topic)
{
	enum pushcert_import_result res;
	struct enroll_state *st;
	config *cfg = NULL;
	const char *topics[2] = {TOPIC1, TOPIC2};

	setenv("MDM_PUBLIC_URL", "https://mdm.example.com", 1);
	st = state_with_default(NULL);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	make_push("one", UUID1);
	make_push("two", UUID2);
	ck_assert_int_eq(import("one", "one", &res), MDM_OK);
	ck_assert_int_eq(import("two", "two", &res), MDM_OK);
	for (int i = 0; i < 2; i++) {
		char *xml = NULL;
		size_t len = 0;
		plist *p = NULL;
		const plist *mdm;

		ck_assert_int_eq(
		        enroll_profile_xml(d, cfg, st, NULL, topics[i], &xml, &len), MDM_OK);
		ck_assert_int_eq(plist_parse(xml, len, &p), MDM_OK);
		ck_assert_ptr_nonnull(mdm = payload_of(p, "com.apple.mdm"));
		ck_assert_str_eq(plist_dict_get_string0(mdm, "Topic"), topics[i]);
		plist_free(p);
		enroll_free_secret(xml, len);
	}
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge WHERE purpose = 'scep' AND "
	                       "topic = '" TOPIC1 "'"),
	        1);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge WHERE purpose = 'scep' AND "
	                       "topic = '" TOPIC2 "'"),
	        1);
	ck_assert_int_eq(
	        count("SELECT open_challenges FROM mdm.push_certs WHERE topic = '" TOPIC2 "'"), 1);
	/* Removed between the choice and the challenge: nothing is made. */
	{
		char *xml = NULL;
		size_t len = 0;

		ck_assert_int_eq(enroll_profile_xml(d, cfg, st, NULL, TOPIC3, &xml, &len),
		        MDM_ERR_NOT_FOUND);
		ck_assert_ptr_null(xml);
		ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge"), 2);
	}
	config_free(cfg);
	enroll_state_free(st);
	unsetenv("MDM_PUBLIC_URL");
}
END_TEST

/* Removal: refused while active enrollments use the topic, unless forced. */
START_TEST(pushcert_remove_rules)
{
	enum pushcert_import_result res;
	char key_uri[4096];
	long long active = -1;
	db_res *r = NULL;
	const char *params[1] = {TOPIC2};

	make_push("one", UUID1);
	make_push("two", UUID2);
	ck_assert_int_eq(import("one", "one", &res), MDM_OK);
	ck_assert_int_eq(import("two", "two", &res), MDM_OK);
	ck_assert_int_eq(pushcert_remove(d, TOPIC3, 0, &active, key_uri, sizeof(key_uri)),
	        MDM_ERR_NOT_FOUND);
	ck_assert_int_eq(pushcert_remove(d, "x'; DROP TABLE mdm.push_cert; --", 1, &active, key_uri,
	                         sizeof(key_uri)),
	        MDM_ERR_NOT_FOUND);
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.device (udid) VALUES ('U-A'), ('U-B'), ('U-C'); "
	                         "",
	                         0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.enrollment (udid, topic, active) VALUES "
	                         "('U-A', $1, true), ('U-B', $1, false), ('U-C', $1, true)",
	                         1, params, NULL),
	        MDM_OK);
	ck_assert_int_eq(
	        count("SELECT active_enrollments FROM mdm.push_certs WHERE topic = '" TOPIC2 "'"),
	        2);
	ck_assert_int_eq(
	        count("SELECT enrollments FROM mdm.push_certs WHERE topic = '" TOPIC2 "'"), 3);
	ck_assert_int_eq(
	        count("SELECT active_enrollments FROM mdm.push_certs WHERE topic = '" TOPIC1 "'"),
	        0);
	ck_assert_int_eq(
	        pushcert_remove(d, TOPIC2, 0, &active, key_uri, sizeof(key_uri)), MDM_ERR_CONFLICT);
	ck_assert_int_eq(active, 2);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.push_cert"), 2);
	/* The SQL function says the same, by SQLSTATE. */
	ck_assert_int_eq(db_exec(d, "SELECT mdm.push_cert_remove($1)", 1, params, &r), MDM_ERR_DB);
	ck_assert_str_eq(db_get0_sqlstate(d), "55006");
	ck_assert_int_eq(db_exec(d, "SELECT mdm.push_cert_remove('" TOPIC3 "', true)", 0, NULL, &r),
	        MDM_ERR_DB);
	ck_assert_str_eq(db_get0_sqlstate(d), "P0002");
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.push_cert"), 2);
	/* Forced: gone from mdm.push_cert; the certificate and the enrollments stay. */
	ck_assert_int_eq(pushcert_remove(d, TOPIC2, 1, &active, key_uri, sizeof(key_uri)), MDM_OK);
	ck_assert_int_eq(active, 2);
	ck_assert_ptr_nonnull(strstr(key_uri, "/two.key"));
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.push_cert"), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.certificate WHERE kind = 'push'"), 2);
	ck_assert_int_eq(
	        count("SELECT count(*) FROM mdm.enrollment WHERE topic = '" TOPIC2 "'"), 3);
	/* An unused topic goes without force; then none is left. */
	ck_assert_int_eq(pushcert_remove(d, TOPIC1, 0, &active, key_uri, sizeof(key_uri)), MDM_OK);
	ck_assert_int_eq(active, 0);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.push_cert"), 0);
	/* Imported again: the same certificate comes back. */
	ck_assert_int_eq(import("two", "two", &res), MDM_OK);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.push_cert"), 1);
}
END_TEST

/* The signer from `mdmctl ca server-cert`, a signed profile, its challenge in the database. */
START_TEST(enroll_signed_profile_with_challenge)
{
	char key[256], crt[256], ca[256], der[256], xml[256];
	char topic[PUSHCERT_MAX_TOPIC + 1], why[ENROLL_MAX_WHY];
	struct enroll_state *st = NULL;
	enum pushcert_import_result res;
	config *cfg = NULL;
	char *text = NULL;
	uint8_t *sig = NULL;
	size_t len = 0, siglen = 0, pemlen = 0, backlen;
	struct x509_st *cacert = NULL;
	char *pem = NULL, *back = NULL;
	db_res *r = NULL;

	snprintf(key, sizeof(key), "%s/signer.key", dir);
	snprintf(crt, sizeof(crt), "%s/signer.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca.key", dir);
	ck_assert_int_eq(
	        ca_init(d, "/CN=Unit Enroll CA/O=mdm", 3650, 2048, ca, NULL, time(NULL)), MDM_OK);
	unsetenv("MDM_MDM_TOPIC");
	setenv("MDM_PUBLIC_URL", "https://mdm.example.com", 1);
	setenv("MDM_PROFILE_SIGNER_CERT", crt, 1);
	setenv("MDM_PROFILE_SIGNER_KEY", key, 1);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(
	        ca_server_cert(d, cfg, "/CN=Unit Signer", 30, 2048, key, crt, time(NULL)), MDM_OK);
	/* Never over an existing file. */
	ck_assert_int_eq(ca_server_cert(d, cfg, "/CN=Unit Signer", 30, 2048, key, crt, time(NULL)),
	        MDM_ERR_CONFLICT);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.certificate WHERE kind = 'server'"), 1);
	/* No push certificate yet: the state loads (a topic imported later needs no
	 * restart), but no profile can name a topic. */
	ck_assert_int_eq(enroll_state_load(d, cfg, 1, &st), MDM_OK);
	ck_assert_int_eq(
	        enroll_topic_choose(d, st, NULL, NULL, topic, why, sizeof(why)), MDM_ERR_CONFIG);
	make_push("push", UUID1);
	ck_assert_int_eq(import("push", "push", &res), MDM_OK);
	ck_assert_str_eq(st->ca_name, "Unit Enroll CA");
	ck_assert_int_eq(enroll_topic_choose(d, st, NULL, NULL, topic, why, sizeof(why)), MDM_OK);
	ck_assert_int_eq(enroll_profile_xml(d, cfg, st, NULL, topic, &text, &len), MDM_OK);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge WHERE used_at IS NULL AND "
	                       "expires_at > now() + interval '59 minutes'"),
	        1);
	ck_assert_int_eq(enroll_profile_sign(st, text, len, &sig, &siglen), MDM_OK);
	snprintf(der, sizeof(der), "%s/p.der", dir);
	snprintf(xml, sizeof(xml), "%s/p.xml", dir);
	ts_file_write(der, sig, siglen);
	/* The CA as the only trust anchor, openssl's default (S/MIME) purpose. */
	ck_assert_int_eq(
	        db_exec(d, "SELECT der FROM mdm.certificate WHERE kind = 'ca'", 0, NULL, &r),
	        MDM_OK);
	ck_assert_int_eq(ca_cert_from_res(r, 0, 0, &cacert), MDM_OK);
	db_res_free(r);
	ck_assert_int_eq(x509_cert_to_pem(cacert, &pem, &pemlen), MDM_OK);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	ts_file_write(ca, pem, pemlen);
	ck_assert_int_eq(
	        ts_sh("openssl cms -verify -inform DER -in %s -CAfile %s -out %s 2>/dev/null", der,
	                ca, xml),
	        0);
	back = ts_file_get(xml, &backlen);
	ck_assert_uint_eq(backlen, len);
	ck_assert_int_eq(memcmp(back, text, len), 0);
	free(back);
	free(pem);
	x509_cert_free(cacert);
	enroll_free_secret(text, len);
	free(sig);
	enroll_state_free(st);
	config_free(cfg);
	unsetenv("MDM_PUBLIC_URL");
	unsetenv("MDM_PROFILE_SIGNER_CERT");
	unsetenv("MDM_PROFILE_SIGNER_KEY");
}
END_TEST

static mdm_err auth_q(const struct enroll_state *st, const config *cfg, const char *query,
        const char *remote_user)
{
	struct enroll_req req = {.query = query, .remote_user = remote_user};

	return enroll_authorize(st, cfg, &req);
}

static mdm_err auth_h(const struct enroll_state *st, const config *cfg, const char *header,
        const char *authorization)
{
	struct enroll_req req = {
	        .query = "", .token_header = header, .authorization = authorization};

	return enroll_authorize(st, cfg, &req);
}

/* enroll_auth: open, token (constant-time compare), apache (REMOTE_USER). */
START_TEST(enroll_authorization)
{
	struct enroll_state st;
	config *cfg = NULL;

	memset(&st, 0, sizeof(st));
	setenv("MDM_ENROLL_TOKEN", "0123456789abcdefXYZ", 1);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	st.auth = ENROLL_AUTH_OPEN;
	ck_assert_int_eq(auth_q(&st, cfg, "", NULL), MDM_OK);
	st.auth = ENROLL_AUTH_TOKEN;
	ck_assert_int_eq(auth_q(&st, cfg, "token=0123456789abcdefXYZ", NULL), MDM_OK);
	ck_assert_int_eq(auth_q(&st, cfg, "a=1&token=0123456789abcdef%58YZ", NULL), MDM_OK);
	ck_assert_int_eq(auth_q(&st, cfg, "", NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_q(&st, cfg, "token=0123456789abcdefXY", NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_q(&st, cfg, "token=0123456789abcdefXYZZ", NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_q(&st, cfg, "token=", NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_q(&st, cfg, "token=%zz", NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(
	        auth_q(&st, cfg, "token=a&token=0123456789abcdefXYZ", NULL), MDM_ERR_FORBIDDEN);
	/* REMOTE_USER is ignored unless enroll_auth says apache. */
	ck_assert_int_eq(auth_q(&st, cfg, "", "alice"), MDM_ERR_FORBIDDEN);
	st.auth = ENROLL_AUTH_APACHE;
	ck_assert_int_eq(auth_q(&st, cfg, "", "alice"), MDM_OK);
	ck_assert_int_eq(auth_q(&st, cfg, "token=0123456789abcdefXYZ", NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_q(&st, cfg, "", ""), MDM_ERR_FORBIDDEN);
	/* Issue 13: the token in a header, so it stays out of access logs. */
	st.auth = ENROLL_AUTH_TOKEN;
	ck_assert_int_eq(auth_h(&st, cfg, "0123456789abcdefXYZ", NULL), MDM_OK);
	ck_assert_int_eq(auth_h(&st, cfg, NULL, "Bearer 0123456789abcdefXYZ"), MDM_OK);
	ck_assert_int_eq(auth_h(&st, cfg, NULL, "bearer 0123456789abcdefXYZ"), MDM_OK);
	ck_assert_int_eq(auth_h(&st, cfg, "0123456789abcdefXY", NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_h(&st, cfg, "", NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_h(&st, cfg, NULL, "Basic 0123456789abcdefXYZ"), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_h(&st, cfg, NULL, "Bearer  0123456789abcdefXYZ"), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(auth_h(&st, cfg, NULL, "Bearer"), MDM_ERR_FORBIDDEN);
	/* Two tokens that disagree: refused, whichever is right. */
	ck_assert_int_eq(auth_h(&st, cfg, "0123456789abcdefXYZ", "Bearer nope-nope-nope-nope"),
	        MDM_ERR_FORBIDDEN);
	config_free(cfg);
	unsetenv("MDM_ENROLL_TOKEN");
}
END_TEST

/*
 * enroll_identity = acme: the identity payload is com.apple.security.acme
 * (hardware-bound, attested P-384), the MDM payload names it, and nothing
 * of SCEP is left in the profile.
 */
START_TEST(profile_acme_identity)
{
	struct profile_enroll_params p = params();
	plist *t, *bad = NULL;
	const plist *acme, *mdm, *c, *eku;
	int64_t n;
	int b;

	p.identity_acme = 1;
	t = round_trip(&p);
	acme = payload_of(t, "com.apple.security.acme");
	mdm = payload_of(t, "com.apple.mdm");
	ck_assert_ptr_nonnull(acme);
	ck_assert_ptr_null(payload_of(t, "com.apple.security.scep"));
	assert_payload(acme, "com.apple.security.acme");
	ck_assert_str_eq(plist_dict_get_string0(mdm, "IdentityCertificateUUID"),
	        plist_dict_get_string0(acme, "PayloadUUID"));
	/* The payload's own keys (com.apple.security.acme.yaml), no PayloadContent. */
	ck_assert_ptr_null(plist_dict_get0(acme, "PayloadContent"));
	c = acme;
	ck_assert_str_eq(plist_dict_get_string0(c, "DirectoryURL"),
	        "https://mdm.example.com/acme/directory");
	ck_assert_str_eq(plist_dict_get_string0(c, "ClientIdentifier"), "0123456789abcdef");
	ck_assert_str_eq(plist_dict_get_string0(c, "KeyType"), "ECSECPrimeRandom");
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(c, "KeySize"), &n), MDM_OK);
	ck_assert_int_eq(n, 384);
	ck_assert_int_eq(plist_bool_get(plist_dict_get0(c, "HardwareBound"), &b), MDM_OK);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(plist_bool_get(plist_dict_get0(c, "Attest"), &b), MDM_OK);
	ck_assert_int_eq(b, 1);
	ck_assert_int_eq(plist_integer_get(plist_dict_get0(c, "UsageFlags"), &n), MDM_OK);
	ck_assert_int_eq(n, 1);
	eku = plist_dict_get0(c, "ExtendedKeyUsage");
	ck_assert_uint_eq(plist_array_count(eku), 1);
	ck_assert_str_eq(plist_string_get0(plist_array_get0(eku, 0), NULL), "1.3.6.1.5.5.7.3.2");
	ck_assert_uint_eq(plist_array_count(plist_dict_get0(c, "Subject")), 2);
	ck_assert_ptr_null(plist_dict_get0(c, "Challenge"));
	ck_assert_ptr_null(plist_dict_get0(c, "CAFingerprint"));
	plist_free(t);

	p.acme_url = "https://acme.example.com/d";
	t = round_trip(&p);
	c = payload_of(t, "com.apple.security.acme");
	ck_assert_str_eq(plist_dict_get_string0(c, "DirectoryURL"), "https://acme.example.com/d");
	plist_free(t);
	/* DirectoryURL "must use the https scheme"; OTA phase 2 stays SCEP. */
	p.acme_url = "http://acme.example.com/d";
	ck_assert_int_eq(profile_enroll_build(&p, &bad), MDM_ERR_CONFIG);
	p.acme_url = NULL;
	ck_assert_int_eq(profile_scep_build(&p, &bad), MDM_ERR_CONFIG);
	ck_assert_ptr_null(bad);
}
END_TEST

static void quiet(void)
{
	log_set_level(MDM_LOG__MAX);
}

/* enroll_state_load with the given anchor settings (NULL: unset); its result and anchors. */
static mdm_err state_anchors(const char *trust, const char *chain, const char *pinning, size_t *n)
{
	struct enroll_state *st = NULL;
	config *cfg = NULL;
	mdm_err rc;

	*n = 0;
	if (trust != NULL)
		setenv("MDM_TLS_TRUST_CA_FILE", trust, 1);
	else
		unsetenv("MDM_TLS_TRUST_CA_FILE");
	if (chain != NULL)
		setenv("MDM_TLS_SERVER_CHAIN_FILE", chain, 1);
	else
		unsetenv("MDM_TLS_SERVER_CHAIN_FILE");
	setenv("MDM_MDM_PINNING", pinning, 1);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	rc = enroll_state_load(d, cfg, 0, &st);
	if (rc == MDM_OK)
		*n = st->nanchors;
	enroll_state_free(st);
	config_free(cfg);
	unsetenv("MDM_TLS_TRUST_CA_FILE");
	unsetenv("MDM_TLS_SERVER_CHAIN_FILE");
	unsetenv("MDM_MDM_PINNING");
	return rc;
}

/*
 * Where the anchors come from at load: tls_trust_ca_file when set (it
 * wins), else tls_server_chain_file; a public chain has none, so pinning
 * with it is refused; a bad chain file stops the load.
 */
START_TEST(enroll_state_anchor_sources)
{
	char ca[256], chain[300], noroot[300], intpem[300], path[300];
	size_t n = 0;

	snprintf(ca, sizeof(ca), "%s/ca.key", dir);
	ck_assert_int_eq(
	        ca_init(d, "/CN=Unit Enroll CA/O=mdm", 3650, 2048, ca, NULL, time(NULL)), MDM_OK);
	setenv("MDM_PUBLIC_URL", "https://mdm.example.com", 1);
	chain_make(dir);
	snprintf(chain, sizeof(chain), "%s/chain.pem", dir);
	snprintf(noroot, sizeof(noroot), "%s/noroot.pem", dir);
	snprintf(intpem, sizeof(intpem), "%s/int.pem", dir);
	snprintf(path, sizeof(path), "%s/empty.pem", dir);
	setenv("SSL_CERT_FILE", path, 1);
	snprintf(path, sizeof(path), "%s/nostore", dir);
	setenv("SSL_CERT_DIR", path, 1);
	/* Refused first: a private chain without its root, alone or pinned. */
	ck_assert_int_eq(state_anchors(NULL, noroot, "no", &n), MDM_ERR_CONFIG);
	ck_assert_int_eq(state_anchors("", noroot, "yes", &n), MDM_ERR_CONFIG);
	/* The chain's root and intermediate; tls_trust_ca_file wins over it. */
	ck_assert_int_eq(state_anchors(NULL, chain, "yes", &n), MDM_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(state_anchors("", chain, "no", &n), MDM_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(state_anchors(intpem, chain, "no", &n), MDM_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(state_anchors(intpem, noroot, "no", &n), MDM_OK);
	ck_assert_uint_eq(n, 1);
	/* Public: no payload, and nothing to pin to. */
	snprintf(path, sizeof(path), "%s/root.pem", dir);
	setenv("SSL_CERT_FILE", path, 1);
	ck_assert_int_eq(state_anchors(NULL, noroot, "no", &n), MDM_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(state_anchors(NULL, chain, "yes", &n), MDM_ERR_CONFIG);
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	unsetenv("MDM_PUBLIC_URL");
}
END_TEST

void enroll_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "profile", 0, quiet, NULL);

	ts_add_tests(tc, profile_round_trip_and_keys, profile_scep_url_and_fresh_uuids,
	        profile_uuid_v4, profile_hostile_org_escaped, profile_bad_values_refused,
	        profile_subject_forms, pushcert_topic_rules, pushcert_topic_real_apple_cert,
	        enroll_authorization, enroll_topic_query_refusals, profile_anchor_payloads,
	        enroll_anchor_file_rules, enroll_chain_file_rules,
	        profile_scep_fingerprint_and_retries, profile_pinning_keys, profile_acme_identity);
}

void enroll_db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "db", 60, db_setup, db_teardown);

	ts_add_tests(tc, pushcert_import_rules, pushcert_import_p12, enroll_topic_choice,
	        enroll_admit_auth_before_topics, enroll_profile_per_topic, pushcert_remove_rules,
	        enroll_signed_profile_with_challenge, enroll_ca_fingerprint_across_rekey,
	        enroll_state_anchor_sources);
}
