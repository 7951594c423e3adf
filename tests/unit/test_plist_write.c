/*
 * plist writer: trees built by hand come out in Apple's layout byte for
 * byte (escaping, number and date forms, <data> wrapping) and read back
 * equal; what XML 1.0 cannot carry, and trees deeper than the parser
 * accepts, are refused.  Part of the "plist" suite (test_plist.c holds
 * the shared checks).
 */
#include "mdm_limits.h"
#include "plist.h"
#include "plist_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char all_types_xml[] =
        HDR "<dict>\n"
            "\t<key>String</key>\n"
            "\t<string>h\xc3\xa9llo &lt;&amp;&gt; w\xc3\xb6rld</string>\n"
            "\t<key>Empty</key>\n"
            "\t<string></string>\n"
            "\t<key>Integer</key>\n"
            "\t<integer>-42</integer>\n"
            "\t<key>Max</key>\n"
            "\t<integer>18446744073709551615</integer>\n"
            "\t<key>Min</key>\n"
            "\t<integer>-9223372036854775808</integer>\n"
            "\t<key>Real</key>\n"
            "\t<real>0.10000000000000001</real>\n"
            "\t<key>Whole</key>\n"
            "\t<real>29</real>\n"
            "\t<key>Infinity</key>\n"
            "\t<real>-infinity</real>\n"
            "\t<key>True</key>\n"
            "\t<true/>\n"
            "\t<key>False</key>\n"
            "\t<false/>\n"
            "\t<key>Date</key>\n"
            "\t<date>2018-06-30T13:46:38Z</date>\n"
            "\t<key>Data</key>\n"
            "\t<data>\n"
            "\tAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEy\n"
            "\tMzQ1Njc4OTo7\n"
            "\t</data>\n"
            "\t<key>EmptyData</key>\n"
            "\t<data>\n"
            "\t</data>\n"
            "\t<key>Array</key>\n"
            "\t<array>\n"
            "\t\t<string>a</string>\n"
            "\t\t<integer>1</integer>\n"
            "\t\t<dict/>\n"
            "\t\t<array/>\n"
            "\t</array>\n"
            "\t<key>Nested</key>\n"
            "\t<dict>\n"
            "\t\t<key>Key</key>\n"
            "\t\t<array>\n"
            "\t\t\t<data>\n"
            "\t\t\tYWJj\n"
            "\t\t\t</data>\n"
            "\t\t</array>\n"
            "\t</dict>\n"
            "</dict>\n" FTR;

static plist *build_all_types(void)
{
	plist *d = plist_new_dict(), *a = plist_new_array(), *n = plist_new_dict(),
	      *na = plist_new_array();
	unsigned char bytes[60];
	size_t i;

	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_nonnull(na);
	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)i;
	ck_assert_int_eq(
	        plist_dict_set(d, "String", plist_new_string("h\xc3\xa9llo <&> w\xc3\xb6rld")),
	        MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Empty", plist_new_string("")), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Integer", plist_new_integer(-42)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Max", plist_new_unsigned(UINT64_MAX)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Min", plist_new_integer(INT64_MIN)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Real", plist_new_real(0.1)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Whole", plist_new_real(29)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Infinity", plist_new_real(-INFINITY)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "True", plist_new_bool(1)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "False", plist_new_bool(0)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Date", plist_new_date(1530366398)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Data", plist_new_data(bytes, sizeof(bytes))), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "EmptyData", plist_new_data(NULL, 0)), MDM_OK);
	ck_assert_int_eq(plist_array_append(a, plist_new_string("a")), MDM_OK);
	ck_assert_int_eq(plist_array_append(a, plist_new_integer(1)), MDM_OK);
	ck_assert_int_eq(plist_array_append(a, plist_new_dict()), MDM_OK);
	ck_assert_int_eq(plist_array_append(a, plist_new_array()), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Array", a), MDM_OK);
	ck_assert_int_eq(plist_array_append(na, plist_new_data("abc", 3)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(n, "Key", na), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "Nested", n), MDM_OK);
	return d;
}

START_TEST(builder_exact_output)
{
	plist *d = build_all_types(), *f;
	size_t len, flen;
	char *out = pt_serialize_ok(d, &len), *file;

	ck_assert_str_eq(out, all_types_xml);
	pt_check_roundtrip(d, "all types");

	/* The fixture holds the same document: parsing it gives the same tree. */
	file = pt_read_file(FIXTURES "/all_types.plist", &flen);
	ck_assert_ptr_nonnull(file);
	ck_assert_uint_eq(flen, len);
	ck_assert_mem_eq(file, out, len);
	f = pt_parse_ok(file, flen);
	ck_assert(plist_equal(d, f));
	plist_free(f);
	free(file);
	free(out);
	plist_free(d);
}
END_TEST

START_TEST(builder_escaping)
{
	plist *p = plist_new_string("<&>\r\n\t]]>\"'");
	size_t len;
	char *out;

	out = pt_serialize_ok(p, &len);
	ck_assert_ptr_nonnull(strstr(out, "<string>&lt;&amp;&gt;&#13;\n\t]]&gt;\"'</string>"));
	pt_check_roundtrip(p, "escaping");
	free(out);
	plist_free(p);

	p = plist_new_dict();
	ck_assert_int_eq(plist_dict_set(p, "a<b>&c", plist_new_bool(1)), MDM_OK);
	out = pt_serialize_ok(p, &len);
	ck_assert_ptr_nonnull(strstr(out, "<key>a&lt;b&gt;&amp;c</key>"));
	pt_check_roundtrip(p, "key escaping");
	free(out);
	plist_free(p);
}
END_TEST

static void check_unwritable(plist *p)
{
	char *out = (char *)&out;
	size_t len = 99;

	ck_assert_int_eq(plist_serialize(p, &out, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);
	plist_free(p);
}

START_TEST(builder_refuses_unwritable)
{
	plist *d;

	check_unwritable(plist_new_string("bell\a"));
	check_unwritable(plist_new_string("\x1b[31m"));
	check_unwritable(plist_new_string_len("a\0b", 3));
	check_unwritable(plist_new_string("\xff"));
	check_unwritable(plist_new_string("\xed\xa0\x80"));
	check_unwritable(plist_new_string("\xef\xbf\xbf"));
	check_unwritable(plist_new_date(253402300800)); /* 10000-01-01 */
	check_unwritable(plist_new_date(-62167219201)); /* -0001-12-31 */
	check_unwritable(plist_new_date(INT64_MIN));
	check_unwritable(plist_new_date(INT64_MAX));
	d = plist_new_dict();
	ck_assert_int_eq(plist_dict_set(d, "\x01", plist_new_bool(1)), MDM_OK);
	check_unwritable(d);
	d = plist_new_array();
	ck_assert_int_eq(plist_array_append(d, plist_new_string("ok")), MDM_OK);
	ck_assert_int_eq(plist_array_append(d, plist_new_string("\x02")), MDM_OK);
	check_unwritable(d);
	ck_assert_int_eq(plist_serialize(NULL, &(char *){NULL}, NULL), MDM_ERR_INVAL);
}
END_TEST

START_TEST(builder_depth)
{
	plist *root = plist_new_array(), *cur = root, *next;
	size_t i;

	for (i = 1; i < PLIST_MAX_DEPTH; i++) {
		next = plist_new_array();
		ck_assert_int_eq(plist_array_append(cur, next), MDM_OK);
		cur = next;
	}
	pt_check_roundtrip(root, "64 levels built");
	ck_assert_int_eq(plist_array_append(cur, plist_new_dict()), MDM_OK);
	check_unwritable(root);
}
END_TEST

START_TEST(builder_numbers)
{
	static const double reals[] = {0.0, -0.0, 1.0, -1.5, 0.1, 1e300, -1e-300, 5e-324,
	        2.2250738585072014e-308, 1.7976931348623157e308, 217.90493011474609,
	        15.468269348144531, 123456789012345678.0, NAN, INFINITY, -INFINITY};
	static const int64_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1000000000000};
	plist *a = plist_new_array(), *u;
	size_t i, len;
	char *out;

	for (i = 0; i < sizeof(reals) / sizeof(reals[0]); i++)
		ck_assert_int_eq(plist_array_append(a, plist_new_real(reals[i])), MDM_OK);
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		ck_assert_int_eq(plist_array_append(a, plist_new_integer(ints[i])), MDM_OK);
	ck_assert_int_eq(plist_array_append(a, plist_new_unsigned(UINT64_MAX)), MDM_OK);
	ck_assert_int_eq(
	        plist_array_append(a, plist_new_unsigned((uint64_t)INT64_MAX + 1)), MDM_OK);
	ck_assert_int_eq(plist_array_append(a, plist_new_unsigned(5)), MDM_OK);
	pt_check_roundtrip(a, "numbers");
	out = pt_serialize_ok(a, &len);
	ck_assert_ptr_nonnull(strstr(out, "<real>-0</real>"));
	ck_assert_ptr_nonnull(strstr(out, "<real>nan</real>"));
	ck_assert_ptr_nonnull(strstr(out, "<real>+infinity</real>"));
	ck_assert_ptr_nonnull(strstr(out, "<real>1.7976931348623157e+308</real>"));
	ck_assert_ptr_nonnull(strstr(out, "<integer>18446744073709551615</integer>"));
	ck_assert_ptr_nonnull(strstr(out, "<integer>9223372036854775808</integer>"));
	free(out);
	/* Unsigned small values are ordinary integers. */
	u = plist_new_integer(5);
	ck_assert(plist_equal(plist_array_get0(a, plist_array_count(a) - 1), u));
	ck_assert(!plist_integer_is_unsigned(u));
	plist_free(u);
	/* -0.0 and 0.0 differ; NaN equals NaN. */
	ck_assert(!plist_equal(plist_array_get0(a, 0), plist_array_get0(a, 1)));
	ck_assert(plist_equal(plist_array_get0(a, 13), plist_array_get0(a, 13)));
	plist_free(a);
}
END_TEST

START_TEST(builder_data_wrapping)
{
	/* CFPropertyList: 76 columns, a tab counts as 8, at most 8 tabs. */
	unsigned char bytes[300];
	plist *root, *cur, *next;
	size_t i, len;
	char *out, *line, *save = NULL;

	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)(i * 7);
	root = plist_new_array();
	cur = root;
	for (i = 0; i < 10; i++) {
		ck_assert_int_eq(
		        plist_array_append(cur, plist_new_data(bytes, sizeof(bytes))), MDM_OK);
		next = plist_new_array();
		ck_assert_int_eq(plist_array_append(cur, next), MDM_OK);
		cur = next;
	}
	pt_check_roundtrip(root, "data at every indentation");
	out = pt_serialize_ok(root, &len);
	for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		size_t tabs = strspn(line, "\t"), w = strlen(line) - tabs;

		if (line[tabs] == '<')
			continue;
		ck_assert_uint_le(tabs, 8);
		ck_assert_uint_le(8 * tabs + w, 77);
	}
	free(out);
	plist_free(root);
}
END_TEST

void plist_write_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "builder", 0, NULL, NULL);

	ts_add_tests(tc, builder_exact_output, builder_escaping, builder_refuses_unwritable,
	        builder_depth, builder_numbers, builder_data_wrapping);
}
