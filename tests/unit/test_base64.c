/* base64: strict decoding (RFC 4648 section 4) and encoding. */
#include "base64.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

START_TEST(round_trip)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {
	        "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

	for (size_t i = 0; i < 7; i++) {
		char *e = NULL;
		uint8_t *d = NULL;
		size_t n;
		ck_assert_int_eq(
		        base64_encode((const uint8_t *)plain[i], strlen(plain[i]), &e, &n), MDM_OK);
		ck_assert_str_eq(e, enc[i]);
		ck_assert_int_eq(base64_decode(e, n, 100, &d, &n), MDM_OK);
		ck_assert_uint_eq(n, strlen(plain[i]));
		ck_assert(memcmp(d, plain[i], n) == 0);
		free(e);
		free(d);
	}
}
END_TEST

START_TEST(white_space_and_scep_alphabet)
{
	uint8_t *d = NULL;
	size_t n;

	ck_assert_int_eq(base64_decode(" Zm9v\r\nYmFy\t", 12, 100, &d, &n), MDM_OK);
	ck_assert_uint_eq(n, 6);
	free(d);
	/* '+' and '/' as macOS sends them in GET PKIOperation. */
	ck_assert_int_eq(base64_decode("+/+/", 4, 100, &d, &n), MDM_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(d[0], 0xfb);
	free(d);
}
END_TEST

START_TEST(refusals)
{
	static const char *const bad[] = {"Zg=", "Zg",
	        "Z===", "Zm9v=", "Zg==Zg==", "Zh==", "Zm9=", "Zm-v", "Zm_v", "Zm9v\x01", "===="};
	uint8_t *d = NULL;
	size_t n = 7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(base64_decode(bad[i], strlen(bad[i]), 100, &d, &n) == MDM_ERR_PARSE,
		        "accepted %s", bad[i]);
		ck_assert_ptr_null(d);
		ck_assert_uint_eq(n, 0);
	}
	/* The cap applies to the decoded size, before allocating. */
	ck_assert_int_eq(base64_decode("Zm9vYmFy", 8, 5, &d, &n), MDM_ERR_LIMIT);
	ck_assert_int_eq(base64_decode("Zm9vYmFy", 8, 6, &d, &n), MDM_OK);
	free(d);
}
END_TEST

/* RFC 4648 section 10 vectors in the URL-safe alphabet, unpadded (RFC 7515 section 2). */
START_TEST(url_round_trip)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	static const uint8_t high[] = {0xfb, 0xff, 0xbf};
	char *e = NULL;
	uint8_t *d = NULL;
	size_t n;

	for (size_t i = 0; i < 7; i++) {
		ck_assert_int_eq(
		        base64url_encode((const uint8_t *)plain[i], strlen(plain[i]), &e, &n),
		        MDM_OK);
		ck_assert_str_eq(e, enc[i]);
		ck_assert_uint_eq(n, strlen(enc[i]));
		ck_assert_int_eq(base64url_decode(e, n, 100, &d, &n), MDM_OK);
		ck_assert_uint_eq(n, strlen(plain[i]));
		ck_assert(memcmp(d, plain[i], n) == 0);
		ck_assert_int_eq(d[n], 0);
		free(e);
		free(d);
	}
	/* '-' and '_' where base64 has '+' and '/'. */
	ck_assert_int_eq(base64url_encode(high, 3, &e, &n), MDM_OK);
	ck_assert_str_eq(e, "-_-_");
	ck_assert_int_eq(base64url_decode(e, n, 3, &d, &n), MDM_OK);
	ck_assert(n == 3 && memcmp(d, high, 3) == 0);
	free(e);
	free(d);
}
END_TEST

START_TEST(url_refusals)
{
	/* Padding, white space, the standard alphabet, len % 4 == 1, unused bits set. */
	static const char *const bad[] = {"Zg==", "Zg=", "Zm9v=", "Zm9 v", "Zm9v\n", "Zm9v\r",
	        "+/+/", "Zm+v", "Zm/v", "Z", "Zm9vY", "Zh", "Zm9", "Zm8=", "Zm.v", "Zm9v\x80"};
	uint8_t *d = NULL;
	size_t n = 7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(
		        base64url_decode(bad[i], strlen(bad[i]), 100, &d, &n) == MDM_ERR_PARSE,
		        "accepted %s", bad[i]);
		ck_assert_ptr_null(d);
		ck_assert_uint_eq(n, 0);
	}
	/* A NUL inside the length is a byte like another: refused. */
	ck_assert_int_eq(base64url_decode("Zm\0v", 4, 100, &d, &n), MDM_ERR_PARSE);
	/* The cap applies to the decoded size, before allocating. */
	ck_assert_int_eq(base64url_decode("Zm9vYmE", 7, 4, &d, &n), MDM_ERR_LIMIT);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(base64url_decode("Zm9vYmE", 7, 5, &d, &n), MDM_OK);
	ck_assert_uint_eq(n, 5);
	free(d);
}
END_TEST

void base64_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "strict", 0, NULL, NULL);

	ts_add_tests(tc, round_trip, white_space_and_scep_alphabet, refusals);
	tc = ts_tcase(s, "url", 0, NULL, NULL);
	ts_add_tests(tc, url_round_trip, url_refusals);
}
