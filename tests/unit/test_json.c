/* json: the strict RFC 8259 reader (refusals first) and the string quoter. */
#include "json.h"
#include "suites.h"
#include "ts_sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_case {
	const char *text;
	size_t len; /* 0: strlen(text) */
	mdm_err rc;
	const char *why; /* a piece of the err text */
};

static void json_refused(const struct json_case *c)
{
	json_value *v = (json_value *)1;
	char err[256] = "x";
	size_t len = c->len ? c->len : strlen(c->text);
	mdm_err rc = json_parse(c->text, len, &v, err, sizeof(err));

	ck_assert_msg(rc == c->rc, "%s: got %s", c->text, err_str(rc));
	ck_assert_ptr_null(v);
	ck_assert_msg(strncmp(err, "json: ", 6) == 0, "%s: err %s", c->text, err);
	if (c->why != NULL)
		ck_assert_msg(strstr(err, c->why) != NULL, "%s: err %s", c->text, err);
}

START_TEST(refuses_garbage_comments_commas)
{
	static const struct json_case cases[] = {
	        {"", 0, MDM_ERR_PARSE, "section 2"}, {"   ", 0, MDM_ERR_PARSE, "section 2"},
	        {"{} x", 0, MDM_ERR_PARSE, "after the value"},
	        {"{}{}", 0, MDM_ERR_PARSE, "after the value"},
	        {"1 2", 0, MDM_ERR_PARSE, "after the value"},
	        {"{}\0", 3, MDM_ERR_PARSE, "after the value"}, {"// c\n{}", 0, MDM_ERR_PARSE, NULL},
	        {"{/* c */}", 0, MDM_ERR_PARSE, NULL}, {"{} // c", 0, MDM_ERR_PARSE, NULL},
	        {"[1,]", 0, MDM_ERR_PARSE, NULL}, {"[,1]", 0, MDM_ERR_PARSE, NULL},
	        {"{\"a\":1,}", 0, MDM_ERR_PARSE, "member name"}, {"{,}", 0, MDM_ERR_PARSE, NULL},
	        {"[1 2]", 0, MDM_ERR_PARSE, "','"}, {"{\"a\" 1}", 0, MDM_ERR_PARSE, "':'"},
	        {"{\"a\":}", 0, MDM_ERR_PARSE, NULL}, {"{a:1}", 0, MDM_ERR_PARSE, "member name"},
	        {"{'a':1}", 0, MDM_ERR_PARSE, NULL}, {"['a']", 0, MDM_ERR_PARSE, NULL},
	        {"[", 0, MDM_ERR_PARSE, NULL}, {"{", 0, MDM_ERR_PARSE, NULL},
	        {"{\"a\":1", 0, MDM_ERR_PARSE, NULL},
	        {"\xef\xbb\xbf{}", 0, MDM_ERR_PARSE, NULL}, /* a byte order mark */
	        {"tru", 0, MDM_ERR_PARSE, "literal"}, {"True", 0, MDM_ERR_PARSE, NULL},
	        {"nul", 0, MDM_ERR_PARSE, "literal"},
	        {"falsey", 0, MDM_ERR_PARSE, "after the value"}, {"NaN", 0, MDM_ERR_PARSE, NULL},
	        {"Infinity", 0, MDM_ERR_PARSE, NULL}, {"\v{}", 0, MDM_ERR_PARSE, NULL},
	        {"\f{}", 0, MDM_ERR_PARSE, NULL},
	        {"{}\xc2\xa0", 0, MDM_ERR_PARSE, NULL}, /* no-break space is not white space */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		json_refused(&cases[i]);
}
END_TEST

START_TEST(refuses_bad_numbers)
{
	static const char *const bad[] = {"01", "-01", "00", "+1", "-", "1.", ".5", "1.e5", "1e",
	        "1e+", "1E-", "0x10", "-.5", "1.5.5", "--1", "1e5.5"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_case c = {bad[i], 0, MDM_ERR_PARSE, NULL};
		json_refused(&c);
	}
}
END_TEST

/* RFC 8259 section 4 leaves duplicates open; RFC 7515 section 5.2 forbids them in JOSE. */
START_TEST(refuses_duplicate_names)
{
	static const struct json_case cases[] = {
	        {"{\"a\":1,\"a\":1}", 0, MDM_ERR_PARSE, "duplicate"},
	        {"{\"a\":1,\"b\":2,\"a\":3}", 0, MDM_ERR_PARSE, "duplicate"},
	        /* The same name through an escape is the same name. */
	        {"{\"alg\":\"ES256\",\"\\u0061lg\":\"none\"}", 0, MDM_ERR_PARSE, "duplicate"},
	        {"{\"x\":{\"k\":1,\"k\":2}}", 0, MDM_ERR_PARSE, "duplicate"},
	        {"[{\"k\":1},{\"k\":2,\"k\":3}]", 0, MDM_ERR_PARSE, "duplicate"},
	        {"{\"\":1,\"\":2}", 0, MDM_ERR_PARSE, "duplicate"},
	};
	json_value *v = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		json_refused(&cases[i]);
	/* Names that differ only after a NUL are different names. */
	ck_assert_int_eq(json_parse("{\"a\":1,\"a\\u0000\":2}", 19, &v, NULL, 0), MDM_OK);
	ck_assert_uint_eq(json_object_len(v), 2);
	json_free(v);
	/* The same names in two objects are fine. */
	ck_assert_int_eq(json_parse("[{\"k\":1},{\"k\":2}]", 17, &v, NULL, 0), MDM_OK);
	json_free(v);
}
END_TEST

START_TEST(refuses_bad_strings)
{
	static const struct json_case cases[] = {
	        /* Control characters (RFC 8259 section 7): raw, even tab and NUL. */
	        {"\"a\tb\"", 0, MDM_ERR_PARSE, "control character"},
	        {"\"a\nb\"", 0, MDM_ERR_PARSE, "control character"},
	        {"\"a\0b\"", 5, MDM_ERR_PARSE, "control character"},
	        {"\"\x1f\"", 0, MDM_ERR_PARSE, "control character"},
	        /* Escapes. */
	        {"\"\\x41\"", 0, MDM_ERR_PARSE, "bad escape"},
	        {"\"\\'\"", 0, MDM_ERR_PARSE, "bad escape"},
	        {"\"\\u12\"", 0, MDM_ERR_PARSE, "\\u escape"},
	        {"\"\\u12g4\"", 0, MDM_ERR_PARSE, "\\u escape"},
	        {"\"\\U0041\"", 0, MDM_ERR_PARSE, "bad escape"},
	        {"\"\\", 0, MDM_ERR_PARSE, "unterminated"},
	        {"\"abc", 0, MDM_ERR_PARSE, "unterminated"},
	        {"\"abc\\\"", 0, MDM_ERR_PARSE, "unterminated"},
	        /* Lone surrogates (section 8.2). */
	        {"\"\\ud800\"", 0, MDM_ERR_PARSE, "surrogate"},
	        {"\"\\udbff x\"", 0, MDM_ERR_PARSE, "surrogate"},
	        {"\"\\udc00\"", 0, MDM_ERR_PARSE, "surrogate"},
	        {"\"\\ud800\\u0041\"", 0, MDM_ERR_PARSE, "surrogate"},
	        {"\"\\ud800\\ud800\"", 0, MDM_ERR_PARSE, "surrogate"},
	        {"\"\\udc00\\ud800\"", 0, MDM_ERR_PARSE, "surrogate"},
	        /* Invalid UTF-8 (section 8.1, RFC 3629). */
	        {"\"\x80\"", 0, MDM_ERR_PARSE, "UTF-8"},
	        {"\"\xc0\xaf\"", 0, MDM_ERR_PARSE, "UTF-8"},         /* overlong '/' */
	        {"\"\xc1\xbf\"", 0, MDM_ERR_PARSE, "UTF-8"},         /* overlong */
	        {"\"\xe0\x80\xaf\"", 0, MDM_ERR_PARSE, "UTF-8"},     /* overlong */
	        {"\"\xf0\x80\x80\xaf\"", 0, MDM_ERR_PARSE, "UTF-8"}, /* overlong */
	        {"\"\xed\xa0\x80\"", 0, MDM_ERR_PARSE, "UTF-8"},     /* U+D800 encoded */
	        {"\"\xed\xbf\xbf\"", 0, MDM_ERR_PARSE, "UTF-8"},     /* U+DFFF encoded */
	        {"\"\xf4\x90\x80\x80\"", 0, MDM_ERR_PARSE, "UTF-8"}, /* U+110000 */
	        {"\"\xf5\x80\x80\x80\"", 0, MDM_ERR_PARSE, "UTF-8"},
	        {"\"\xff\"", 0, MDM_ERR_PARSE, "UTF-8"},
	        {"\"\xe2\x82\"", 0, MDM_ERR_PARSE, "UTF-8"},      /* truncated before the quote */
	        {"\"\xe2\x82", 0, MDM_ERR_PARSE, "unterminated"}, /* truncated at the end */
	        {"\"\xe2\x28\xa1\"", 0, MDM_ERR_PARSE, "UTF-8"},
	        {"{\"\xc3\":1}", 0, MDM_ERR_PARSE, "UTF-8"}, /* in a member name too */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		json_refused(&cases[i]);
}
END_TEST

static char *json_nest(int depth, const char *open, const char *close, const char *mid)
{
	size_t lo = strlen(open), lc = strlen(close), lm = strlen(mid);
	char *s = malloc((size_t)depth * (lo + lc) + lm + 1), *o = s;

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < depth; i++, o += lo)
		memcpy(o, open, lo);
	memcpy(o, mid, lm);
	o += lm;
	for (int i = 0; i < depth; i++, o += lc)
		memcpy(o, close, lc);
	*o = '\0';
	return s;
}

START_TEST(refuses_over_limits)
{
	json_value *v = NULL;
	char err[256];
	char *s;
	size_t n;

	/* Depth: MDM_JSON_MAX_DEPTH containers parse, one more does not. */
	s = json_nest(MDM_JSON_MAX_DEPTH, "[", "]", "1");
	ck_assert_int_eq(json_parse(s, strlen(s), &v, err, sizeof(err)), MDM_OK);
	json_free(v);
	free(s);
	s = json_nest(MDM_JSON_MAX_DEPTH + 1, "[", "]", "1");
	ck_assert_int_eq(json_parse(s, strlen(s), &v, err, sizeof(err)), MDM_ERR_LIMIT);
	ck_assert_ptr_null(v);
	ck_assert_ptr_nonnull(strstr(err, "nested"));
	free(s);
	s = json_nest(MDM_JSON_MAX_DEPTH + 1, "{\"a\":", "}", "{}");
	ck_assert_int_eq(json_parse(s, strlen(s), &v, err, sizeof(err)), MDM_ERR_LIMIT);
	free(s);
	/* Far deeper than the stack would take without the cap, cut at the cap. */
	s = json_nest(20000, "[", "]", "");
	ck_assert_int_eq(json_parse(s, strlen(s), &v, err, sizeof(err)), MDM_ERR_LIMIT);
	free(s);

	/* Values: MDM_JSON_MAX_NODES in all (the array counts) parse, one more does not. */
	n = 1 + 2 * (MDM_JSON_MAX_NODES - 1);
	s = malloc(n + 3);
	ck_assert_ptr_nonnull(s);
	s[0] = '[';
	for (size_t i = 0; i < MDM_JSON_MAX_NODES - 1; i++) {
		s[1 + 2 * i] = '0';
		s[2 + 2 * i] = ',';
	}
	s[n - 1] = ']';
	ck_assert_int_eq(json_parse(s, n, &v, err, sizeof(err)), MDM_OK);
	ck_assert_uint_eq(json_array_len(v), MDM_JSON_MAX_NODES - 1);
	json_free(v);
	s[n - 1] = ',';
	s[n] = '0';
	s[n + 1] = ']';
	ck_assert_int_eq(json_parse(s, n + 2, &v, err, sizeof(err)), MDM_ERR_LIMIT);
	ck_assert_ptr_null(v);
	ck_assert_ptr_nonnull(strstr(err, "values"));
	free(s);

	/* Bytes: checked before anything is read (the buffer need not even be JSON). */
	n = MDM_JSON_MAX_BYTES + 1;
	s = malloc(n);
	ck_assert_ptr_nonnull(s);
	memset(s, ' ', n);
	s[0] = '1';
	ck_assert_int_eq(json_parse(s, n, &v, err, sizeof(err)), MDM_ERR_LIMIT);
	ck_assert_ptr_nonnull(strstr(err, "bytes"));
	ck_assert_int_eq(json_parse(s, n - 1, &v, err, sizeof(err)), MDM_OK);
	json_free(v);
	free(s);
}
END_TEST

START_TEST(values_and_accessors)
{
	static const char text[] =
	        " {\"s\":\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\","
	        "\"n\":null,\"t\":true,\"f\":false,\"i\":-42,\"r\":1.5e3,"
	        "\"a\":[1,[],{}],\"o\":{\"k\":\"v\"},\"z\":\"x\\u0000y\"}\r\n";
	json_value *v = NULL;
	const json_value *a;
	const char *s, *name;
	size_t n;
	int b;
	int64_t i;

	ck_assert_int_eq(json_parse(text, sizeof(text) - 1, &v, NULL, 0), MDM_OK);
	ck_assert_int_eq(json_type_of(v), JSON_OBJECT);
	ck_assert_uint_eq(json_object_len(v), 9);
	ck_assert_ptr_nonnull(json_object_at(v, 0, &name));
	ck_assert_str_eq(name, "s");
	ck_assert_ptr_nonnull(json_object_at(v, 8, &name));
	ck_assert_str_eq(name, "z");
	ck_assert_ptr_null(json_object_at(v, 9, &name));
	ck_assert_ptr_null(name);

	s = json_string(json_get(v, "s"), &n);
	ck_assert_str_eq(s, "a\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	ck_assert_uint_eq(n, strlen(s));
	ck_assert_str_eq(json_get_cstr(v, "s"), s);

	ck_assert_int_eq(json_type_of(json_get(v, "n")), JSON_NULL);
	ck_assert_ptr_nonnull(json_get(v, "n"));
	ck_assert(json_bool(json_get(v, "t"), &b) && b == 1);
	ck_assert(json_bool(json_get(v, "f"), &b) && b == 0);
	ck_assert(!json_bool(json_get(v, "n"), &b));
	ck_assert(json_int64(json_get(v, "i"), &i) && i == -42);
	ck_assert(!json_int64(json_get(v, "r"), &i));
	ck_assert_str_eq(json_number_text(json_get(v, "r")), "1.5e3");
	ck_assert_ptr_null(json_number_text(json_get(v, "s")));

	a = json_get(v, "a");
	ck_assert_uint_eq(json_array_len(a), 3);
	ck_assert_int_eq(json_type_of(json_array_at(a, 1)), JSON_ARRAY);
	ck_assert_int_eq(json_type_of(json_array_at(a, 2)), JSON_OBJECT);
	ck_assert_ptr_null(json_array_at(a, 3));
	ck_assert_uint_eq(json_array_len(json_array_at(a, 1)), 0);
	ck_assert_str_eq(json_get_cstr(json_get(v, "o"), "k"), "v");

	/* A NUL inside a string keeps its length; json_get_cstr refuses it. */
	s = json_string(json_get(v, "z"), &n);
	ck_assert_uint_eq(n, 3);
	ck_assert(memcmp(s, "x\0y", 3) == 0);
	ck_assert_ptr_null(json_get_cstr(v, "z"));

	/* Wrong types and absence answer "absent". */
	ck_assert_ptr_null(json_get(v, "missing"));
	ck_assert_ptr_null(json_get(a, "s"));
	ck_assert_ptr_null(json_get(NULL, "s"));
	ck_assert_ptr_null(json_string(json_get(v, "i"), &n));
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(json_get_cstr(v, "i"));
	ck_assert_uint_eq(json_array_len(v), 0);
	ck_assert_uint_eq(json_object_len(a), 0);
	ck_assert_ptr_null(json_array_at(v, 0));
	ck_assert_int_eq(json_type_of(NULL), JSON_NULL);
	json_free(v);
	json_free(NULL);

	/* Scalars at the top level (RFC 8259 section 2 allows any value). */
	ck_assert_int_eq(json_parse("\"x\"", 3, &v, NULL, 0), MDM_OK);
	ck_assert_str_eq(json_string(v, NULL), "x");
	json_free(v);
	ck_assert_int_eq(json_parse("null", 4, &v, NULL, 0), MDM_OK);
	ck_assert_int_eq(json_type_of(v), JSON_NULL);
	json_free(v);
}
END_TEST

START_TEST(int64_range)
{
	static const struct {
		const char *text;
		int ok;
		int64_t val;
	} cases[] = {
	        {"0", 1, 0},
	        {"-0", 1, 0},
	        {"9223372036854775807", 1, INT64_MAX},
	        {"-9223372036854775808", 1, INT64_MIN},
	        {"9223372036854775808", 0, 0},
	        {"-9223372036854775809", 0, 0},
	        {"18446744073709551616", 0, 0},
	        {"1.0", 0, 0},
	        {"1e2", 0, 0},
	        {"100", 1, 100},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		json_value *v = NULL;
		int64_t i = 12345;
		ck_assert_int_eq(
		        json_parse(cases[k].text, strlen(cases[k].text), &v, NULL, 0), MDM_OK);
		ck_assert_msg(json_int64(v, &i) == cases[k].ok, "%s", cases[k].text);
		if (cases[k].ok)
			ck_assert_msg(i == cases[k].val, "%s", cases[k].text);
		json_free(v);
	}
}
END_TEST

START_TEST(quote)
{
	static const char raw[] = "a\"b\\c/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9\0z";
	char *q = NULL;
	json_value *v = NULL;
	const char *s;
	size_t n;

	ck_assert_int_eq(json_quote(raw, sizeof(raw) - 1, &q), MDM_OK);
	ck_assert_str_eq(q, "\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9\\u0000z\"");
	/* What it writes reads back to the same bytes. */
	ck_assert_int_eq(json_parse(q, strlen(q), &v, NULL, 0), MDM_OK);
	s = json_string(v, &n);
	ck_assert_uint_eq(n, sizeof(raw) - 1);
	ck_assert(memcmp(s, raw, n) == 0);
	json_free(v);
	free(q);

	ck_assert_int_eq(json_quote("", 0, &q), MDM_OK);
	ck_assert_str_eq(q, "\"\"");
	free(q);
	/* Not UTF-8: ours to get right, so INVAL. */
	ck_assert_int_eq(json_quote("a\xff", 2, &q), MDM_ERR_INVAL);
	ck_assert_ptr_null(q);
	ck_assert_int_eq(json_quote("\xed\xa0\x80", 3, &q), MDM_ERR_INVAL);
	ck_assert_int_eq(json_quote("\xc3", 1, &q), MDM_ERR_INVAL);
}
END_TEST

/* The fuzz seeds (tests/unit/data/json): the ACME ones parse, the hostile ones do not. */
START_TEST(data_files)
{
	static const struct {
		const char *name;
		mdm_err rc;
	} files[] = {
	        {"acme-new-account.json", MDM_OK},
	        {"acme-new-order.json", MDM_OK},
	        {"acme-directory.json", MDM_OK},
	        {"acme-device-attest.json", MDM_OK},
	        {"hostile-duplicate.json", MDM_ERR_PARSE},
	        {"hostile-lone-surrogate.json", MDM_ERR_PARSE},
	        {"hostile-bad-utf8.json", MDM_ERR_PARSE},
	        {"hostile-deep.json", MDM_ERR_LIMIT},
	        {"hostile-trailing-comma.json", MDM_ERR_PARSE},
	        {"hostile-comment.json", MDM_ERR_PARSE},
	        {"hostile-numbers.json", MDM_ERR_PARSE},
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[256], err[256] = "";
		json_value *v = NULL;
		size_t n;
		char *text;

		snprintf(path, sizeof(path), "tests/unit/data/json/%s", files[i].name);
		text = ts_file_get(path, &n);
		ck_assert_msg(json_parse(text, n, &v, err, sizeof(err)) == files[i].rc, "%s: %s",
		        path, err);
		json_free(v);
		free(text);
	}
}
END_TEST

void json_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "refusals", 0, NULL, NULL);

	ts_add_tests(tc, refuses_garbage_comments_commas, refuses_bad_numbers,
	        refuses_duplicate_names, refuses_bad_strings, refuses_over_limits);
	tc = ts_tcase(s, "values", 0, NULL, NULL);
	ts_add_tests(tc, values_and_accessors, int64_range, quote, data_files);
}
