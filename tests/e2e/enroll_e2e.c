/*
 * GET /enroll through Apache: the signed enrollment profile.  The openssl
 * command line judges the signature (`openssl cms -verify -CAfile <device
 * CA>` with its default S/MIME purpose); lib/plist reads the content; the
 * stack's database (MDM_DB) says what became of the challenge.
 *
 * Several push topics: a second push certificate is imported for the
 * "topics" case (and removed after it, so the other suites keep one
 * topic and GET /enroll without ?topic=): each topic's profile names it,
 * devices enroll through their own (tests/e2e/devsim.sh) and over the air
 * (tests/e2e/otasim.sh, phase 3's MDM payload decrypted), the request
 * that chooses none is answered 409 naming the choice, an unknown topic
 * 404, malformed ones 400, with no challenge made; `mdmctl push-cert
 * list` counts the enrollments and `remove` refuses, then --force.
 *
 * Environment (tests/run.sh): E2E_HTTPS_BASE, E2E_TLS_CA, E2E_DEVICE_CA
 * (the CA that issued the profile signer), E2E_TMP, MDM_DB, E2E_MODE;
 * for the topics: E2E_PUSH_TOPIC (imported by run.sh), E2E_PUSH2_CERT,
 * E2E_PUSH2_KEY, E2E_PUSH2_TOPIC (a second push certificate, not
 * imported), E2E_MDMCTL_DIR, E2E_DEVSIM, E2E_OTASIM, E2E_OTA_DEVCA_CERT,
 * E2E_OTA_DEVCA_KEY, E2E_SCEP_LEGACY.
 */
#include "db.h"
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"
#include "plist.h"

#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

Suite *enroll_e2e_suite(void);

#define MAX_PROFILE (256 * 1024)

struct fetched {
	long status;
	char content_type[128];
	unsigned char *body;
	size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct fetched *f = ud;
	size_t len = size * n;
	unsigned char *b;

	if (f->len + len > MAX_PROFILE)
		return 0;
	if ((b = realloc(f->body, f->len + len + 1)) == NULL)
		return 0;
	f->body = b;
	memcpy(f->body + f->len, p, len);
	f->len += len;
	f->body[f->len] = '\0';
	return len;
}

static size_t on_hdr(char *p, size_t size, size_t n, void *ud)
{
	struct fetched *f = ud;
	size_t len = size * n, j = 0;
	static const char name[] = "content-type:";

	if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		size_t i = sizeof(name) - 1;
		while (i < len && p[i] == ' ')
			i++;
		for (; i < len && p[i] != '\r' && p[i] != '\n' && j + 1 < sizeof(f->content_type);
		        i++)
			f->content_type[j++] = p[i];
		f->content_type[j] = '\0';
	}
	return len;
}

static void fetch(const char *suffix, struct fetched *f)
{
	char url[512];
	CURL *c = curl_easy_init();

	memset(f, 0, sizeof(*f));
	ck_assert_ptr_nonnull(c);
	snprintf(url, sizeof(url), "%s/enroll%s", getenv("E2E_HTTPS_BASE"), suffix);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, getenv("E2E_TLS_CA"));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hdr);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	ck_assert_msg(curl_easy_perform(c) == CURLE_OK, "GET %s failed", url);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
	curl_easy_cleanup(c);
}

/* Fetches suffix, verifies with openssl against the device CA, parses; returns the profile. */
static plist *fetch_verified_at(const char *suffix)
{
	struct fetched f;
	char der[512], xml[512];
	char *text;
	size_t len;
	plist *p = NULL;
	static int n;

	fetch(suffix, &f);
	ck_assert_msg(f.status == 200, "GET /enroll%s: %ld %s", suffix, f.status,
	        f.body ? (char *)f.body : "");
	ck_assert_str_eq(f.content_type, "application/x-apple-aspen-config");
	snprintf(der, sizeof(der), "%s/enroll-%s-%ld-%d.der", getenv("E2E_TMP"), e2e_mode(),
	        (long)getpid(), n);
	snprintf(xml, sizeof(xml), "%s/enroll-%s-%ld-%d.xml", getenv("E2E_TMP"), e2e_mode(),
	        (long)getpid(), n++);
	ts_file_write(der, f.body, f.len);
	free(f.body);
	ck_assert_int_eq(ts_sh("openssl cms -verify -inform DER -in '%s' -CAfile '%s' -out '%s' "
	                       "2>/dev/null",
	                         der, getenv("E2E_DEVICE_CA"), xml),
	        0);
	text = ts_file_get(xml, &len);
	ck_assert_int_eq(plist_parse(text, len, &p), MDM_OK);
	free(text);
	unlink(der);
	unlink(xml);
	return p;
}

static plist *fetch_verified(void)
{
	return fetch_verified_at("");
}

static const plist *payload(const plist *profile, const char *type)
{
	const plist *content = plist_dict_get0(profile, "PayloadContent");

	for (size_t i = 0; i < plist_array_count(content); i++) {
		const plist *pl = plist_array_get0(content, i);
		const char *t = plist_dict_get_string0(pl, "PayloadType");
		if (t != NULL && strcmp(t, type) == 0)
			return pl;
	}
	return NULL;
}

static char *challenge_of(const plist *profile)
{
	const plist *scep = payload(profile, "com.apple.security.scep");
	const char *c =
	        plist_dict_get_string0(plist_dict_get0(scep, "PayloadContent"), "Challenge");

	ck_assert_ptr_nonnull(c);
	return strdup(c);
}

START_TEST(enroll_signed_profile)
{
	plist *p = fetch_verified();
	const plist *scep = payload(p, "com.apple.security.scep"),
	            *mdm = payload(p, "com.apple.mdm");
	char url[600];

	ck_assert_str_eq(plist_dict_get_string0(p, "PayloadType"), "Configuration");
	ck_assert_ptr_nonnull(scep);
	ck_assert_ptr_nonnull(mdm);
	ck_assert_str_eq(plist_dict_get_string0(mdm, "IdentityCertificateUUID"),
	        plist_dict_get_string0(scep, "PayloadUUID"));
	ck_assert_int_eq(
	        strncmp(plist_dict_get_string0(mdm, "Topic"), "com.apple.mgmt.External.", 24), 0);
	snprintf(url, sizeof(url), "%s/mdm/checkin", getenv("E2E_HTTPS_BASE"));
	ck_assert_str_eq(plist_dict_get_string0(mdm, "CheckInURL"), url);
	plist_free(p);
}
END_TEST

/*
 * The stack sets tls_trust_ca_file to its TLS CA (tests/fixtures.sh): the
 * profile carries it as a com.apple.security.root payload (its DER), after
 * the SCEP payload and before the MDM payload.
 */
START_TEST(enroll_profile_trust_anchor)
{
	const char *file = getenv("MDM_TLS_TRUST_CA_FILE");
	plist *p = fetch_verified();
	const plist *content = plist_dict_get0(p, "PayloadContent"), *root;
	const uint8_t *got;
	char dir[128], der[256];
	size_t glen, len, iroot = 0, imdm = 0;
	uint8_t *want;

	ck_assert_msg(file != NULL && file[0] != '\0', "MDM_TLS_TRUST_CA_FILE is not set");
	ck_assert_ptr_nonnull(root = payload(p, "com.apple.security.root"));
	for (size_t i = 0; i < plist_array_count(content); i++) {
		const char *t = plist_dict_get_string0(plist_array_get0(content, i), "PayloadType");

		if (strcmp(t, "com.apple.security.root") == 0)
			iroot = i;
		if (strcmp(t, "com.apple.mdm") == 0)
			imdm = i;
	}
	ck_assert_uint_lt(iroot, imdm);
	ts_tmpdir_new(dir, sizeof(dir), "anchor");
	snprintf(der, sizeof(der), "%s/ca.der", dir);
	ck_assert_int_eq(ts_sh("openssl x509 -in '%s' -outform DER -out '%s'", file, der), 0);
	want = ts_file_get(der, &len);
	got = plist_data_get0(plist_dict_get0(root, "PayloadContent"), &glen);
	ck_assert_uint_eq(glen, len);
	ck_assert_mem_eq(got, want, len);
	free(want);
	ts_tmpdir_done(dir);
	plist_free(p);
}
END_TEST

START_TEST(enroll_fresh_unused_challenges)
{
	plist *a = fetch_verified(), *b = fetch_verified();
	char *ca = challenge_of(a), *cb = challenge_of(b);
	const char *params[1];
	db *d = NULL;
	db_res *r = NULL;

	ck_assert_str_ne(ca, cb);
	/* Each is a one-time SCEP challenge in the database, not yet spent. */
	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e", &d), MDM_OK);
	params[0] = ca;
	ck_assert_int_eq(db_exec(d,
	                         "SELECT purpose, used_at IS NULL, expires_at > now() FROM "
	                         "mdm.challenge WHERE challenge_sha256 = "
	                         "encode(sha256(convert_to($1, 'UTF8')), 'hex')",
	                         1, params, &r),
	        MDM_OK);
	ck_assert_int_eq(db_res_rows(r), 1);
	ck_assert_str_eq(db_res_get0(r, 0, 0), "scep");
	ck_assert_str_eq(db_res_get0(r, 0, 1), "t");
	ck_assert_str_eq(db_res_get0(r, 0, 2), "t");
	db_res_free(r);
	db_free(d);
	free(ca);
	free(cb);
	plist_free(a);
	plist_free(b);
}
END_TEST

/* enroll_auth is open in the test stack: a token in the query changes nothing. */
START_TEST(enroll_open_ignores_token)
{
	struct fetched f;

	fetch("?token=whatever", &f);
	ck_assert_int_eq(f.status, 200);
	free(f.body);
}
END_TEST

/* ---- several push topics ---- */

static char tdir[512];
static const char *topic1, *topic2;
static char topic2_udid[64]; /* the iPhone topics_devices_enroll enrolled into topic2 */

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : dflt;
}

/* Unchecked fixture (runs in the runner even when a test failed): a second topic, then none. */
static void topics_setup(void)
{
	const char *mode = e2e_mode();

	topic1 = getenv("E2E_PUSH_TOPIC");
	topic2 = getenv("E2E_PUSH2_TOPIC");
	snprintf(tdir, sizeof(tdir), "%s/topics-%s", env_or("E2E_TMP", "/tmp"), mode);
	if (topic1 == NULL || topic2 == NULL || getenv("E2E_PUSH2_CERT") == NULL)
		return;
	if (ts_sh("mkdir -p %s && %s/mdmctl push-cert import --cert %s --key %s >%s/import.log "
	          "2>&1",
	            tdir, getenv("E2E_MDMCTL_DIR"), getenv("E2E_PUSH2_CERT"),
	            getenv("E2E_PUSH2_KEY"), tdir) != 0)
		fprintf(stderr, "enroll e2e: importing the second push certificate failed\n");
}

static void topics_teardown(void)
{
	if (topic2 != NULL)
		(void)ts_sh("%s/mdmctl push-cert remove %s --force >>%s/import.log 2>&1",
		        getenv("E2E_MDMCTL_DIR"), topic2, tdir);
}

static void need_topics(void)
{
	ck_assert_msg(topic1 != NULL && topic2 != NULL,
	        "E2E_PUSH_TOPIC and E2E_PUSH2_TOPIC are required (tests/run.sh)");
	e2e_assert_query("SELECT count(*)::text FROM mdm.push_cert WHERE topic = $1", topic2, "1");
}

static char *challenges(void)
{
	return e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);
}

static const char *mdm_topic_of(const plist *p)
{
	const plist *mdm = payload(p, "com.apple.mdm");

	ck_assert_ptr_nonnull(mdm);
	return plist_dict_get_string0(mdm, "Topic");
}

/* Each topic's own profile; its challenge records the topic. */
START_TEST(topics_each_profile)
{
	const char *t[2];

	need_topics();
	t[0] = topic1;
	t[1] = topic2;
	for (int i = 0; i < 2; i++) {
		char q[256], *c;
		plist *p;

		snprintf(q, sizeof(q), "?topic=%s", t[i]);
		p = fetch_verified_at(q);
		ck_assert_str_eq(mdm_topic_of(p), t[i]);
		c = challenge_of(p);
		e2e_assert_query(
		        "SELECT topic FROM mdm.challenge WHERE challenge_sha256 = "
		        "encode(sha256(convert_to($1, 'UTF8')), 'hex') AND used_at IS NULL",
		        c, t[i]);
		free(c);
		plist_free(p);
		/* Phase 1 of the over-the-air service chooses the same way. */
		snprintf(q, sizeof(q), "/ota?topic=%s", t[i]);
		{
			struct fetched f;

			fetch(q, &f);
			ck_assert_int_eq(f.status, 200);
			free(f.body);
		}
	}
}
END_TEST

/* Two topics, none chosen, no mdm_topic: 409 naming the choice; nothing made. */
START_TEST(topics_ambiguous_conflict)
{
	const char *suffixes[] = {"", "/ota", "?token=x"};
	char *before, *after;

	need_topics();
	before = challenges();
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		struct fetched f;

		fetch(suffixes[i], &f);
		ck_assert_msg(f.status == 409, "GET /enroll%s: %ld", suffixes[i], f.status);
		ck_assert_ptr_nonnull(f.body);
		ck_assert_msg(strstr((char *)f.body, "topic=") != NULL &&
		                strstr((char *)f.body, topic1) != NULL &&
		                strstr((char *)f.body, topic2) != NULL &&
		                strstr((char *)f.body, "mdm_topic") != NULL,
		        "409 body: %s", (char *)f.body);
		free(f.body);
	}
	after = challenges();
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	/* mdmctl says the same, with its own flag; mdm_topic makes a default. */
	ck_assert_int_ne(ts_sh("env -u MDM_MDM_TOPIC %s/mdmctl profile enroll --unsigned "
	                       ">%s/amb.out 2>%s/amb.err",
	                         getenv("E2E_MDMCTL_DIR"), tdir, tdir),
	        0);
	ck_assert_int_eq(ts_sh("grep -q -- '--topic TOPIC' %s/amb.err && grep -q '%s' %s/amb.err",
	                         tdir, topic2, tdir),
	        0);
	ck_assert_int_eq(ts_sh("MDM_MDM_TOPIC=%s %s/mdmctl profile enroll --unsigned >%s/def.xml "
	                       "2>%s/def.err && grep -q '<string>%s</string>' %s/def.xml",
	                         topic2, getenv("E2E_MDMCTL_DIR"), tdir, tdir, topic2, tdir),
	        0);
	ck_assert_int_eq(ts_sh("%s/mdmctl profile enroll --unsigned --topic %s >%s/t1.xml "
	                       "2>%s/t1.err && grep -q '<string>%s</string>' %s/t1.xml",
	                         getenv("E2E_MDMCTL_DIR"), topic1, tdir, tdir, topic1, tdir),
	        0);
}
END_TEST

/* A well-formed topic that is not imported: 404 naming it; nothing made. */
START_TEST(topics_unknown_not_found)
{
	static const char unknown[] =
	        "com.apple.mgmt.External.0E0E0E0E-0000-4000-8000-00000000E2E0";
	char q[256], *before, *after;
	struct fetched f;

	need_topics();
	before = challenges();
	snprintf(q, sizeof(q), "?topic=%s", unknown);
	fetch(q, &f);
	ck_assert_int_eq(f.status, 404);
	ck_assert_msg(strstr((char *)f.body, unknown) != NULL, "404 body: %s", (char *)f.body);
	free(f.body);
	snprintf(q, sizeof(q), "/ota?topic=%s", unknown);
	fetch(q, &f);
	ck_assert_int_eq(f.status, 404);
	free(f.body);
	ck_assert_int_ne(ts_sh("%s/mdmctl profile enroll --unsigned --topic %s >/dev/null "
	                       "2>%s/unknown.err",
	                         getenv("E2E_MDMCTL_DIR"), unknown, tdir),
	        0);
	after = challenges();
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
}
END_TEST

/* Malformed topics: 400, not echoed, nothing made, the schema untouched. */
START_TEST(topics_malformed_bad_request)
{
	static const char *const bad[] = {
	        "?topic=com.apple.mgmt.External.x'%3B%20DROP%20TABLE%20mdm.challenge%3B--",
	        "?topic=com.apple.mgmt.External.0E0E0E0E-0000-4000-8000-00000000E2E0'%20OR%201=1--",
	        "?topic=com.apple.mgmt.External.0E0E0E0E-0000-4000-8000-00000000E2E%0A",
	        "?topic=com.apple.mgmt.External.0E0E0E0E-0000-4000-8000-00000000E2E%00",
	        "?topic=com.apple.mgmt.External.0E0E0E0E-0000-4000-8000-00000000E2E%1B",
	        "?topic=com.apple.mgmt.Other.0E0E0E0E-0000-4000-8000-00000000E2E0",
	        "?topic=%zz",
	        "?topic=",
	        "/ota?topic=%0D%0Ainjected",
	};
	char *before, *after, *longq;
	size_t n = 4000;
	struct fetched f;

	need_topics();
	before = challenges();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fetch(bad[i], &f);
		ck_assert_msg(f.status == 400, "GET /enroll%s: %ld %s", bad[i], f.status,
		        f.body ? (char *)f.body : "");
		ck_assert_ptr_null(strstr((char *)f.body, "DROP"));
		ck_assert_ptr_null(strstr((char *)f.body, "injected"));
		free(f.body);
	}
	/* Both topics given, one twice, or far too long. */
	{
		char q[512];

		snprintf(q, sizeof(q), "?topic=%s&topic=%s", topic1, topic2);
		fetch(q, &f);
		ck_assert_int_eq(f.status, 400);
		free(f.body);
	}
	ck_assert_ptr_nonnull(longq = malloc(n + 16));
	memcpy(longq, "?topic=", 7);
	memset(longq + 7, 'A', n);
	longq[7 + n] = '\0';
	fetch(longq, &f);
	ck_assert_int_eq(f.status, 400);
	free(f.body);
	free(longq);
	after = challenges();
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	e2e_assert_query("SELECT count(*)::text FROM pg_tables WHERE schemaname = 'mdm' AND "
	                 "tablename IN ('challenge', 'push_cert')",
	        NULL, "2");
}
END_TEST

/* A device per topic, each through its own profile; push-cert list counts them. */
/*
 * Two iPhones (tests/sim/applesim), each enrolled through the profile of
 * its own topic, then woken: the daemon pushes each with the certificate
 * of its topic (the stand-in answers 200 only when apns-topic is the UID
 * of the client certificate it was sent with).
 */
START_TEST(topics_devices_enroll)
{
	const char *sim = getenv("E2E_APPLESIM"), *mode = e2e_mode();
	const char *t[2];
	char *n;

	need_topics();
	ck_assert_ptr_nonnull(sim);
	ck_assert_ptr_nonnull(getenv("E2E_PUSHD"));
	t[0] = topic1;
	t[1] = topic2;
	for (int i = 0; i < 2; i++) {
		char want[300], udid[64], *tok;

		/* An iPhone's UDID form, unique per mode and run. */
		snprintf(udid, sizeof(udid), "00008110-%c%07X%08X", mode[0] == 'a' ? 'A' : 'B',
		        (unsigned)getpid() & 0xFFFFFFFu, (unsigned)i + 1);
		ck_assert_msg(
		        ts_sh("rm -rf %s/dev%d && %s enroll --device iphone --udid %s --dir "
		              "%s/dev%d --enroll-url '%s/enroll?topic=%s' --trust %s --tls-ca "
		              "%s >%s/dev%d.log 2>&1 || { cat %s/dev%d.log; exit 1; }",
		                tdir, i + 1, sim, udid, tdir, i + 1, getenv("E2E_HTTPS_BASE"), t[i],
		                getenv("E2E_DEVICE_CA"), getenv("E2E_TLS_CA"), tdir, i + 1, tdir,
		                i + 1) == 0,
		        "applesim through topic %s failed (mode %s)", t[i], mode);
		if (i == 1)
			memcpy(topic2_udid, udid, sizeof(topic2_udid));
		snprintf(want, sizeof(want), "%s/true", t[i]);
		e2e_assert_query("SELECT topic || '/' || active::text FROM mdm.enrollment WHERE "
		                 "udid = $1 AND user_id IS NULL",
		        udid, want);
		/* Woken over APNs with the certificate of its own topic. */
		tok = e2e_query1("SELECT encode(push_token, 'hex') FROM mdm.enrollment WHERE "
		                 "udid = $1 AND user_id IS NULL",
		        udid);
		free(e2e_query1("SELECT mdm.push($1)::text", udid));
		ck_assert_int_eq(ts_sh("env MDM_APNS_URL=\"$E2E_APNS_URL\" "
		                       "MDM_APNS_CA_FILE=\"$E2E_APNS_CA\" MDM_PUSH_MIN_INTERVAL=0 "
		                       "%s --once --id topics-%s >>%s/pushd.log 2>&1",
		                         getenv("E2E_PUSHD"), mode, tdir),
		        0);
		ck_assert_msg(ts_sh("awk -F '\\t' '$7 == \"%s\" && $2 == \"200\" && $8 == \"%s\"' "
		                    "\"$E2E_APNS_DIR/requests.tsv\" | grep -q .",
		                      tok, t[i]) == 0,
		        "no push with topic %s reached the stand-in for %s (see %s/pushd.log)",
		        t[i], udid, tdir);
		free(tok);
	}
	/* What mdmctl prints is what the view counts. */
	n = e2e_query1(
	        "SELECT active_enrollments::text FROM mdm.push_certs WHERE topic = $1", topic2);
	ck_assert_int_ge(atoi(n), 1);
	ck_assert_int_eq(ts_sh("%s/mdmctl push-cert list >%s/list.out 2>&1 && grep -A7 '^%s' "
	                       "%s/list.out | grep -q 'enrollments %s active'",
	                         getenv("E2E_MDMCTL_DIR"), tdir, topic2, tdir, n),
	        0);
	free(n);
}
END_TEST

/* Over the air: the topic chosen in phase 1 is phase 3's MDM payload's. */
START_TEST(topics_ota_carries_topic)
{
	const char *sim = getenv("E2E_OTASIM"), *mode = e2e_mode();
	int legacy = e2e_legacy();
	char udid[64], want[256];

	need_topics();
	if (sim == NULL || getenv("E2E_OTA_DEVCA_CERT") == NULL)
		return;
	snprintf(udid, sizeof(udid), "TOPICS-OTA-%s-%ld", mode, (long)getpid());
	ck_assert_msg(ts_sh("OTASIM_QUERY='?topic=%s' sh %s %s/ota '%s' %s %s %s %s %s %s "
	                    ">%s/ota.log 2>&1 || { cat %s/ota.log; exit 1; }",
	                      topic2, sim, tdir, getenv("E2E_HTTPS_BASE"), getenv("E2E_DEVICE_CA"),
	                      getenv("E2E_TLS_CA"), udid, getenv("E2E_OTA_DEVCA_CERT"),
	                      getenv("E2E_OTA_DEVCA_KEY"), legacy ? "scepclient" : "certmonger",
	                      tdir, tdir) == 0,
	        "otasim through topic %s failed", topic2);
	/* The decrypted payloads of phase 3 name topic 2, not the default. */
	ck_assert_int_eq(ts_sh("xmllint --nonet --xpath \"string(//dict[key[.='PayloadType']/"
	                       "following-sibling::*[1][.='com.apple.mdm']]/key[.='Topic']/"
	                       "following-sibling::*[1])\" %s/ota/p3.clear >%s/ota.topic && "
	                       "grep -qx '%s' %s/ota.topic",
	                         tdir, tdir, topic2, tdir),
	        0);
	/* Recorded with both accepted messages. */
	snprintf(want, sizeof(want), "2:%s,3:%s", topic2, topic2);
	e2e_assert_query("SELECT string_agg(phase || ':' || topic, ',' ORDER BY phase) FROM "
	                 "mdm.ota_enrollment WHERE udid = $1",
	        udid, want);
}
END_TEST

/* Removal: refused while a device uses the topic, then --force; the rest keeps working. */
START_TEST(topics_remove)
{
	const char *dir = getenv("E2E_MDMCTL_DIR");
	struct fetched f;
	char q[256], *n;

	need_topics();
	n = e2e_query1(
	        "SELECT active_enrollments::text FROM mdm.push_certs WHERE topic = $1", topic2);
	ck_assert_int_ge(atoi(n), 1);
	ck_assert_int_ne(ts_sh("%s/mdmctl push-cert remove %s >%s/rm.out 2>%s/rm.err", dir, topic2,
	                         tdir, tdir),
	        0);
	ck_assert_int_eq(ts_sh("grep -q 'not removed: %s active enrollment' %s/rm.err && "
	                       "grep -q -- '--force' %s/rm.err",
	                         n, tdir, tdir),
	        0);
	e2e_assert_query("SELECT count(*)::text FROM mdm.push_certs WHERE topic = $1", topic2, "1");
	ck_assert_int_ne(ts_sh("%s/mdmctl push-cert remove "
	                       "com.apple.mgmt.External.0E0E0E0E-0000-4000-8000-00000000E2E0 "
	                       ">/dev/null 2>&1",
	                         dir),
	        0);
	ck_assert_int_eq(ts_sh("%s/mdmctl push-cert remove %s --force >%s/rm.out 2>%s/rm.err && "
	                       "grep -q '^removed %s (%s active' %s/rm.out",
	                         dir, topic2, tdir, tdir, topic2, n, tdir),
	        0);
	free(n);
	e2e_assert_query("SELECT count(*)::text FROM mdm.push_certs WHERE topic = $1", topic2, "0");
	/* Its device stays enrolled and cannot be woken: the daemon says why. */
	if (topic2_udid[0] != '\0') {
		free(e2e_query1("SELECT mdm.push($1)::text", topic2_udid));
		ck_assert_int_eq(ts_sh("env MDM_APNS_URL=\"$E2E_APNS_URL\" "
		                       "MDM_APNS_CA_FILE=\"$E2E_APNS_CA\" MDM_PUSH_MIN_INTERVAL=0 "
		                       "%s --once --id topics-rm >>%s/pushd.log 2>&1",
		                         getenv("E2E_PUSHD"), tdir),
		        0);
		e2e_assert_query("SELECT active::text || '/' || coalesce(last_reason, '-') FROM "
		                 "mdm.push_status WHERE udid = $1 AND user_id IS NULL",
		        topic2_udid, "true/NoPushCertificate");
	}
	/* Gone for enrollment; one topic again, so the plain URL works. */
	snprintf(q, sizeof(q), "?topic=%s", topic2);
	fetch(q, &f);
	ck_assert_int_eq(f.status, 404);
	free(f.body);
	{
		plist *p = fetch_verified();

		ck_assert_str_eq(mdm_topic_of(p), topic1);
		plist_free(p);
	}
}
END_TEST

Suite *enroll_e2e_suite(void)
{
	Suite *s = suite_create("enroll");
	TCase *tc = ts_tcase(s, "profile", 60, NULL, NULL);

	ts_add_tests(tc, enroll_signed_profile, enroll_profile_trust_anchor,
	        enroll_fresh_unused_challenges, enroll_open_ignores_token);
	tc = ts_tcase(s, "topics", 300, NULL, NULL);
	tcase_add_unchecked_fixture(tc, topics_setup, topics_teardown);
	ts_add_tests(tc, topics_each_profile, topics_ambiguous_conflict, topics_unknown_not_found,
	        topics_malformed_bad_request, topics_devices_enroll, topics_ota_carries_topic,
	        topics_remove);
	return s;
}
