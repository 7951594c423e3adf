/*
 * GET /enroll through Apache: the signed enrollment profile.  The openssl
 * command line judges the signature (`openssl cms -verify -CAfile <device
 * CA>` with its default S/MIME purpose); lib/plist reads the content; the
 * stack's database (MDM_DB) says what became of the challenge.
 *
 * Environment (tests/run.sh): E2E_HTTPS_BASE, E2E_TLS_CA, E2E_DEVICE_CA
 * (the CA that issued the profile signer), E2E_TMP, MDM_DB.
 */
#include "db.h"
#include "plist.h"

#include <check.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
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

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = malloc(MAX_PROFILE + 1);
	size_t n;

	ck_assert_ptr_nonnull(fp);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, MAX_PROFILE, fp);
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Fetches, verifies with openssl against the device CA, parses; returns the profile. */
static plist *fetch_verified(void)
{
	struct fetched f;
	char der[512], xml[512];
	FILE *fp;
	char *text;
	size_t len;
	plist *p = NULL;
	static int n;

	fetch("", &f);
	ck_assert_msg(
	        f.status == 200, "GET /enroll: %ld %s", f.status, f.body ? (char *)f.body : "");
	ck_assert_str_eq(f.content_type, "application/x-apple-aspen-config");
	snprintf(der, sizeof(der), "%s/enroll-%s-%ld-%d.der", getenv("E2E_TMP"),
	        getenv("E2E_MODE") ? getenv("E2E_MODE") : "apache", (long)getpid(), n);
	snprintf(xml, sizeof(xml), "%s/enroll-%s-%ld-%d.xml", getenv("E2E_TMP"),
	        getenv("E2E_MODE") ? getenv("E2E_MODE") : "apache", (long)getpid(), n++);
	ck_assert_ptr_nonnull(fp = fopen(der, "wb"));
	ck_assert_uint_eq(fwrite(f.body, 1, f.len, fp), f.len);
	fclose(fp);
	free(f.body);
	ck_assert_int_eq(sh("openssl cms -verify -inform DER -in '%s' -CAfile '%s' -out '%s' "
	                    "2>/dev/null",
	                         der, getenv("E2E_DEVICE_CA"), xml),
	        0);
	text = read_all(xml, &len);
	ck_assert_int_eq(plist_parse(text, len, &p), MDM_OK);
	free(text);
	unlink(der);
	unlink(xml);
	return p;
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

Suite *enroll_e2e_suite(void)
{
	Suite *s = suite_create("enroll");
	TCase *tc = tcase_create("profile");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, enroll_signed_profile);
	tcase_add_test(tc, enroll_fresh_unused_challenges);
	tcase_add_test(tc, enroll_open_ignores_token);
	suite_add_tcase(s, tc);
	return s;
}
