/*
 * apns: token and magic validation, the parser of Apple's error bodies
 * (hostile input), the URLs a client takes, and what a batch gets when no
 * server answers.  Through a server: tests/e2e/push_e2e.c.
 */
#include "apns.h"
#include "log.h"
#include "suites.h"
#include "ts_sys.h"
#include "x509_testutil.h"

#include <openssl/x509.h>

#include <string.h>
#include <time.h>

static void quiet(void)
{
	log_set_level(MDM_LOG__MAX);
}

START_TEST(tokens)
{
	char hex[2 * APNS_MAX_TOKEN + 4];

	memset(hex, 'a', 64);
	hex[64] = '\0';
	ck_assert(apns_token_valid(hex));
	hex[3] = 'F';
	ck_assert(apns_token_valid(hex)); /* either case */
	hex[3] = 'g';
	ck_assert(!apns_token_valid(hex));
	hex[3] = 'a';
	hex[63] = '\0';
	ck_assert(!apns_token_valid(hex)); /* odd */
	hex[2 * APNS_MIN_TOKEN - 2] = '\0';
	ck_assert(!apns_token_valid(hex)); /* too short */
	memset(hex, '0', 2 * APNS_MAX_TOKEN);
	hex[2 * APNS_MAX_TOKEN] = '\0';
	ck_assert(apns_token_valid(hex));
	hex[2 * APNS_MAX_TOKEN] = '0';
	hex[2 * APNS_MAX_TOKEN + 1] = '0';
	hex[2 * APNS_MAX_TOKEN + 2] = '\0';
	ck_assert(!apns_token_valid(hex)); /* too long */
	ck_assert(!apns_token_valid(""));
	ck_assert(!apns_token_valid(NULL));
	ck_assert(!apns_token_valid("abab abab abab abab abab abab abab abab"));
	ck_assert(!apns_token_valid("../../../../3/device/aaaaaaaaaaaaaaaaaaaaaaaa"));
}
END_TEST

START_TEST(magics)
{
	char m[APNS_MAX_MAGIC + 2];

	ck_assert(apns_magic_valid("8E3B7F8C-5F76-4B1A-9B6B-0E0C8A9A5E11"));
	ck_assert(!apns_magic_valid(""));
	ck_assert(!apns_magic_valid(NULL));
	ck_assert(!apns_magic_valid("a\"b"));
	ck_assert(!apns_magic_valid("a\\b"));
	ck_assert(!apns_magic_valid("a\nb"));
	ck_assert(!apns_magic_valid("caf\xc3\xa9"));
	memset(m, 'x', APNS_MAX_MAGIC);
	m[APNS_MAX_MAGIC] = '\0';
	ck_assert(apns_magic_valid(m));
	m[APNS_MAX_MAGIC] = 'x';
	m[APNS_MAX_MAGIC + 1] = '\0';
	ck_assert(!apns_magic_valid(m));
}
END_TEST

static mdm_err parse(const char *body, char out[APNS_MAX_REASON + 1])
{
	return apns_reason_parse(body, strlen(body), out);
}

START_TEST(reasons)
{
	char r[APNS_MAX_REASON + 1];

	ck_assert_int_eq(parse("{\"reason\":\"BadDeviceToken\"}", r), MDM_OK);
	ck_assert_str_eq(r, "BadDeviceToken");
	ck_assert_int_eq(
	        parse(" {\n \"reason\" : \"Unregistered\" , \"timestamp\": 1700000000000 }\r\n", r),
	        MDM_OK);
	ck_assert_str_eq(r, "Unregistered");
	ck_assert_int_eq(parse("{\"timestamp\":-1.5e3,\"reason\":\"TooManyRequests\"}", r), MDM_OK);
	ck_assert_str_eq(r, "TooManyRequests");
}
END_TEST

START_TEST(hostile_reasons)
{
	static const char *const bad[] = {
	        "",
	        "   ",
	        "{",
	        "}",
	        "[]",
	        "{}",
	        "null",
	        "{\"reason\":\"BadDeviceToken\"",
	        "{\"reason\":\"BadDeviceToken\"}}",
	        "{\"reason\":\"BadDeviceToken\"} x",
	        "{\"reason\":\"BadDeviceToken\",}",
	        "{\"reason\":\"A\",\"reason\":\"B\"}",
	        "{\"reason\":\"Bad\\u0044eviceToken\"}",
	        "{\"reason\":\"Bad\\\"Token\"}",
	        "{\"reason\":\"Bad Device Token\"}",
	        "{\"reason\":\"Bad\nToken\"}",
	        "{\"reason\":\"\"}",
	        "{\"reason\":42}",
	        "{\"reason\":null}",
	        "{\"reason\":true}",
	        "{\"reason\":{\"x\":\"y\"}}",
	        "{\"reason\":[\"BadDeviceToken\"]}",
	        "{\"other\":{\"reason\":\"Nested\"}}",
	        "{\"other\":\"x\"}",
	        "{reason:\"BadDeviceToken\"}",
	        "{'reason':'BadDeviceToken'}",
	        "{\"reason\" \"BadDeviceToken\"}",
	        "{\"reason\":\"%s%s%s%n\"}",
	        "{\"reason\":"
	        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
	        "{\"timestamp\":-,\"reason\":\"X\"}",
	        "{\"reason\":\"caf\xc3\xa9\"}",
	};
	char r[APNS_MAX_REASON + 1];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i], r) == MDM_ERR_PARSE, "accepted: %s", bad[i]);
		ck_assert_str_eq(r, "");
	}
	/* An embedded NUL and a length that cuts the object. */
	ck_assert_int_eq(apns_reason_parse("{\"reason\":\"A\0B\"}", 16, r), MDM_ERR_PARSE);
	ck_assert_int_eq(apns_reason_parse("{\"reason\":\"AB\"}", 10, r), MDM_ERR_PARSE);
	ck_assert_int_eq(apns_reason_parse(NULL, 0, r), MDM_ERR_PARSE);
}
END_TEST

START_TEST(client_refuses_bad_urls)
{
	static const char *const bad[] = {"http://api.push.apple.com", "https://", "ftp://x",
	        "https://a b", "https://x?y", "https://x#y", "api.push.apple.com",
	        "https://x/3/device", "https://user@x", "https://x:", "https://x:12345678",
	        "https://x:44a", "https://[::1", "https://[::1]x", "https://[]:443",
	        "https://:443"};
	struct apns_opts o = {NULL, NULL, 10, 1000};
	apns *a = (apns *)1;

	ck_assert_int_eq(apns_global_init(), MDM_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.url = bad[i];
		ck_assert_int_eq(
		        apns_new(&o, "t", (struct x509_st *)1, (struct evp_pkey_st *)1, &a),
		        MDM_ERR_CONFIG);
		ck_assert_ptr_null(a);
	}
	apns_global_cleanup();
}
END_TEST

START_TEST(batch_without_server)
{
	static const char *const good[] = {
	        "https://api.push.apple.com", "https://[::1]:8443/", "https://127.0.0.1:2197//"};
	EVP_PKEY *k = xt_load_key("device.key");
	X509 *cert = xt_ca_new(k, time(NULL), 30);
	struct apns_opts o = {NULL, NULL, 2, 5000};
	struct apns_push p[5];
	char url[64], tok[65];
	apns *a = NULL;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		o.url = good[i];
		ck_assert_int_eq(apns_new(&o, "com.apple.mgmt.External.t", cert, k, &a), MDM_OK);
		apns_free(a);
	}
	/* Five pushes, two streams at once, and nobody listening. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", ts_free_port());
	o.url = url;
	ck_assert_int_eq(apns_new(&o, "com.apple.mgmt.External.t", cert, k, &a), MDM_OK);
	memset(tok, 'a', 64);
	tok[64] = '\0';
	memset(p, 0, sizeof(p));
	for (int i = 0; i < 5; i++) {
		p[i].token_hex = tok;
		p[i].magic = "M";
	}
	p[2].token_hex = "abc"; /* refused before any connection */
	ck_assert_int_eq(apns_send(a, p, 5), MDM_OK);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(p[i].status, 0);
		ck_assert_str_eq(p[i].reason,
		        i == 2 ? "local: bad token or magic" : "network: cannot connect");
		ck_assert_str_eq(p[i].apns_id, "");
	}
	ck_assert_int_eq(apns_connections(a), 0);
	apns_free(a);
	X509_free(cert);
	EVP_PKEY_free(k);
}
END_TEST

void apns_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "parse", 0, quiet, NULL);

	ts_add_tests(tc, tokens, magics, reasons, hostile_reasons, client_refuses_bad_urls);
	tc = ts_tcase(s, "client", 10, quiet, NULL);
	ts_add_tests(tc, batch_without_server);
}
