/*
 * plist parser: hostile documents (entity expansion, XXE, depth, size,
 * malformed values, truncation, duplicate keys) are refused cleanly, with
 * a message naming the rule and nothing else said; the accepted forms of
 * each value type read back right.  Part of the "plist" suite
 * (test_plist.c holds the shared checks).
 */
#include "log.h"
#include "mdm_limits.h"
#include "plist.h"
#include "plist_test.h"
#include "vectors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- hostile documents ---- */

static void check_fixture_refused(const char *name, mdm_err want, const char *msg)
{
	char path[512];
	size_t len;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	buf = pt_read_file(path, &len);
	ck_assert_msg(buf != NULL, "fixture %s missing (run from the repository root)", path);
	pt_check_refused_len(buf, len, want, msg);
	free(buf);
}

START_TEST(hostile_fixtures)
{
	const char *subset = "DTD internal subset not allowed (entity declarations are refused)";

	check_fixture_refused("billion_lol.plist", MDM_ERR_PARSE, subset);
	check_fixture_refused("quadratic_blowup.plist", MDM_ERR_PARSE, subset);
	check_fixture_refused("xxe_file.plist", MDM_ERR_PARSE, subset);
	check_fixture_refused("xxe_http.plist", MDM_ERR_PARSE, subset);
	check_fixture_refused("xxe_parameter.plist", MDM_ERR_PARSE, subset);
	check_fixture_refused("external_dtd_internal_subset.plist", MDM_ERR_PARSE, subset);
	check_fixture_refused("undefined_entity.plist", MDM_ERR_PARSE, "udid");
	check_fixture_refused("xinclude.plist", MDM_ERR_PARSE, "more than one attribute");
	check_fixture_refused("stylesheet_pi.plist", MDM_ERR_PARSE, "processing instruction");
}
END_TEST

START_TEST(external_dtd_never_loaded)
{
	/* The DOCTYPE names broken.dtd (relative to the repository root): loading it would fail. */
	struct stat st;
	char *buf;
	size_t len;
	plist *p;

	ck_assert_int_eq(stat(FIXTURES "/broken.dtd", &st), 0);
	buf = pt_read_file(FIXTURES "/external_dtd_not_loaded.plist", &len);
	ck_assert_ptr_nonnull(buf);
	p = pt_parse_ok(buf, len);
	ck_assert_str_eq(plist_dict_get_string0(p, "UDID"), "not-from-the-dtd");
	plist_free(p);
	free(buf);
}
END_TEST

struct bad_case {
	const char *name;
	const char *doc;
	mdm_err want;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
        {"empty", "", MDM_ERR_PARSE, "empty"},
        {"blank", " \n\t", MDM_ERR_PARSE, NULL},
        {"not xml", "hello", MDM_ERR_PARSE, NULL},
        {"prolog only", HDR, MDM_ERR_PARSE, NULL},
        {"trailing garbage", HDR "<true/>" FTR "garbage", MDM_ERR_PARSE, NULL},
        {"trailing element", HDR "<true/>" FTR "<plist><true/></plist>", MDM_ERR_PARSE, NULL},
        {"trailing pi", HDR "<true/>" FTR "<?evil x?>", MDM_ERR_PARSE, "processing instruction"},
        {"two roots", HDR "<string>a</string><string>b</string>" FTR, MDM_ERR_PARSE,
                "more than one value"},
        {"empty plist", HDR FTR, MDM_ERR_PARSE, "no value"},
        {"empty plist tag", "<plist/>", MDM_ERR_PARSE, "no value"},
        {"wrong root", "<dict><key>a</key><true/></dict>", MDM_ERR_PARSE, "not <plist>"},
        {"nested plist", HDR "<plist><true/></plist>" FTR, MDM_ERR_PARSE, "not allowed inside"},
        {"version", "<plist version=\"2.0\"><true/></plist>", MDM_ERR_PARSE, "version 1.0"},
        {"plist attribute", "<plist foo=\"x\"><true/></plist>", MDM_ERR_PARSE, "attribute foo"},
        {"two attributes", "<plist version=\"1.0\" foo=\"x\"><true/></plist>", MDM_ERR_PARSE,
                "more than one attribute"},
        {"attributes in quotes", "<plist version=\"1.0\" a='=' b=\"=\"><true/></plist>",
                MDM_ERR_PARSE, "more than one attribute"},
        {"namespace", "<plist xmlns=\"urn:x\"><true/></plist>", MDM_ERR_PARSE, "attribute xmlns"},
        {"dict attribute", HDR "<dict id=\"1\"/>" FTR, MDM_ERR_PARSE, "not allowed on <dict>"},
        {"unknown element", HDR "<dict><key>a</key><foo/></dict>" FTR, MDM_ERR_PARSE,
                "unknown element <foo>"},
        {"prefixed element", HDR "<x:string xmlns:x=\"urn:x\">a</x:string>" FTR, MDM_ERR_PARSE,
                "unknown element"},
        {"element in string", HDR "<string>a<true/>c</string>" FTR, MDM_ERR_PARSE,
                "not allowed inside <string>"},
        {"text in dict", HDR "<dict>hello<key>a</key><true/></dict>" FTR, MDM_ERR_PARSE,
                "text not allowed inside <dict>"},
        {"text in array", HDR "<array><true/>x</array>" FTR, MDM_ERR_PARSE,
                "text not allowed inside <array>"},
        {"text in plist", "<plist>x<true/></plist>", MDM_ERR_PARSE, "inside <plist>"},
        {"cdata in dict", HDR "<dict><![CDATA[ ]]></dict>" FTR, MDM_ERR_PARSE, "text not allowed"},
        {"text in true", HDR "<true>yes</true>" FTR, MDM_ERR_PARSE, "inside <true>"},
        {"duplicate key",
                HDR "<dict><key>UDID</key><string>a</string><key>UDID</key>"
                    "<string>b</string></dict>" FTR,
                MDM_ERR_PARSE, "duplicate key \"UDID\" in dict"},
        {"key without value", HDR "<dict><key>UDID</key></dict>" FTR, MDM_ERR_PARSE,
                "key \"UDID\" without a value"},
        {"key then key", HDR "<dict><key>a</key><key>b</key><true/></dict>" FTR, MDM_ERR_PARSE,
                "key \"a\" without a value"},
        {"value without key", HDR "<dict><string>a</string></dict>" FTR, MDM_ERR_PARSE,
                "without a <key>"},
        {"key in array", HDR "<array><key>a</key></array>" FTR, MDM_ERR_PARSE, "outside a dict"},
        {"key at root", HDR "<key>a</key>" FTR, MDM_ERR_PARSE, "outside a dict"},
        {"integer overflow", HDR "<integer>18446744073709551616</integer>" FTR, MDM_ERR_PARSE,
                "out of range"},
        {"integer underflow", HDR "<integer>-9223372036854775809</integer>" FTR, MDM_ERR_PARSE,
                "out of range"},
        {"integer huge", HDR "<integer>99999999999999999999999999</integer>" FTR, MDM_ERR_PARSE,
                "out of range"},
        {"integer junk", HDR "<integer>12a</integer>" FTR, MDM_ERR_PARSE, "invalid <integer>"},
        {"integer hex", HDR "<integer>0x10</integer>" FTR, MDM_ERR_PARSE, "invalid <integer>"},
        {"integer inner space", HDR "<integer>1 2</integer>" FTR, MDM_ERR_PARSE, "invalid"},
        {"integer sign only", HDR "<integer>-</integer>" FTR, MDM_ERR_PARSE, "invalid"},
        {"integer double sign", HDR "<integer>--1</integer>" FTR, MDM_ERR_PARSE, "invalid"},
        {"integer empty", HDR "<integer/>" FTR, MDM_ERR_PARSE, "invalid <integer>"},
        {"integer long",
                HDR "<integer>000000000000000000000000000000000000000000000000000000000000"
                    "0000000000000000000000000000000000000000000000000000000000000000000"
                    "00000000000000000000000000000000000001</integer>" FTR,
                MDM_ERR_PARSE, "too long"},
        {"real overflow", HDR "<real>1e400</real>" FTR, MDM_ERR_PARSE, "out of range"},
        {"real hex", HDR "<real>0x1p3</real>" FTR, MDM_ERR_PARSE, "invalid <real>"},
        {"real nan payload", HDR "<real>nan(1)</real>" FTR, MDM_ERR_PARSE, "invalid <real>"},
        {"real two points", HDR "<real>1.2.3</real>" FTR, MDM_ERR_PARSE, "invalid <real>"},
        {"real exponent only", HDR "<real>e5</real>" FTR, MDM_ERR_PARSE, "invalid <real>"},
        {"real bare exponent", HDR "<real>1e</real>" FTR, MDM_ERR_PARSE, "invalid <real>"},
        {"real empty", HDR "<real></real>" FTR, MDM_ERR_PARSE, "invalid <real>"},
        {"date feb 30", HDR "<date>2020-02-30T00:00:00Z</date>" FTR, MDM_ERR_PARSE,
                "invalid <date>"},
        {"date not leap", HDR "<date>2021-02-29T00:00:00Z</date>" FTR, MDM_ERR_PARSE,
                "invalid <date>"},
        {"date century", HDR "<date>1900-02-29T00:00:00Z</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date month 13", HDR "<date>2020-13-01T00:00:00Z</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date month 0", HDR "<date>2020-00-01T00:00:00Z</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date day 0", HDR "<date>2020-01-00T00:00:00Z</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date hour 24", HDR "<date>2020-01-01T24:00:00Z</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date leap second", HDR "<date>2016-12-31T23:59:60Z</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date space", HDR "<date>2020-01-01 00:00:00Z</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date no zone", HDR "<date>2020-01-01T00:00:00</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date offset", HDR "<date>2020-01-01T00:00:00+01:00</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date fraction", HDR "<date>2020-01-01T00:00:00.5Z</date>" FTR, MDM_ERR_PARSE, "invalid"},
        {"date signed field", HDR "<date>2020-+1-01T00:00:00Z</date>" FTR, MDM_ERR_PARSE,
                "invalid"},
        {"date empty", HDR "<date/>" FTR, MDM_ERR_PARSE, "invalid <date>"},
        {"base64 bad char", HDR "<data>YW!j</data>" FTR, MDM_ERR_PARSE, "invalid base64 in <data>"},
        {"base64 url alphabet", HDR "<data>-_-_</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"base64 short", HDR "<data>YQ=</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"base64 unpadded", HDR "<data>YQ</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"base64 three pads", HDR "<data>Y===</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"base64 after pad", HDR "<data>YQ==YQ==</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"base64 stray pad", HDR "<data>Y=Q=</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"base64 nonzero bits 1", HDR "<data>YR==</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"base64 nonzero bits 2", HDR "<data>YWK=</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"base64 redacted", HDR "<data>Base64=</data>" FTR, MDM_ERR_PARSE, "invalid base64"},
        {"internal subset",
                "<!DOCTYPE plist [<!ENTITY a \"b\">]><plist><string>&a;</string></plist>",
                MDM_ERR_PARSE, "DTD internal subset not allowed"},
        {"subset behind quoted >",
                "<!DOCTYPE plist SYSTEM \"a>b\" [<!ENTITY a \"b\">]><plist><string>&a;</string>"
                "</plist>",
                MDM_ERR_PARSE, "DTD internal subset not allowed"},
        {"subset behind quoted '",
                "<!DOCTYPE plist PUBLIC \"x'y\" 'z\"w' [<!ENTITY a \"b\">]><plist><true/></plist>",
                MDM_ERR_PARSE, "DTD internal subset not allowed"},
        {"subset after comment", "<!-- > --><!DOCTYPE plist [<!ENTITY a \"b\">]><plist/>",
                MDM_ERR_PARSE, "DTD internal subset not allowed"},
        {"two doctypes",
                "<!DOCTYPE plist SYSTEM \"a\"><!DOCTYPE plist SYSTEM \"b\"><plist><true/></plist>",
                MDM_ERR_PARSE, "more than one DOCTYPE"},
        {"unterminated doctype", "<!DOCTYPE plist SYSTEM \"a", MDM_ERR_PARSE, "unterminated"},
        {"unterminated comment", "<!-- <plist><true/></plist>", MDM_ERR_PARSE, "unterminated"},
        {"element declaration", "<!ELEMENT plist ANY><plist><true/></plist>", MDM_ERR_PARSE,
                "markup declarations"},
        {"entity declaration", "<!ENTITY a \"b\"><plist><true/></plist>", MDM_ERR_PARSE,
                "markup declarations"},
        {"prolog pi", "<?php x?><plist><true/></plist>", MDM_ERR_PARSE, "processing instruction"},
        {"pi in dict", HDR "<dict><?x y?></dict>" FTR, MDM_ERR_PARSE, "processing instruction"},
        {"undefined entity", "<plist><string>&foo;</string></plist>", MDM_ERR_PARSE, "foo"},
        {"control char ref", HDR "<string>&#1;</string>" FTR, MDM_ERR_PARSE, NULL},
        {"nul char ref", HDR "<string>&#0;</string>" FTR, MDM_ERR_PARSE, NULL},
        {"surrogate char ref", HDR "<string>&#xD800;</string>" FTR, MDM_ERR_PARSE, NULL},
        {"xml 1.1", "<?xml version=\"1.1\"?><plist><string>&#1;</string></plist>", MDM_ERR_PARSE,
                "version must be 1.0"},
        {"latin1", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><plist><true/></plist>",
                MDM_ERR_PARSE, "encoding must be UTF-8"},
        {"utf16 declared", "<?xml version=\"1.0\" encoding=\"UTF-16\"?><plist><true/></plist>",
                MDM_ERR_PARSE, "encoding must be UTF-8"},
        {"bad declaration", "<?xml version=\"1.0\" bogus=\"1\"?><plist><true/></plist>",
                MDM_ERR_PARSE, "XML declaration"},
        {"unterminated declaration", "<?xml version=\"1.0\"", MDM_ERR_PARSE, "unterminated"},
        {"utf16 bom", "\xff\xfe<\0p\0", MDM_ERR_PARSE, "invalid UTF-8"},
        {"invalid utf8", HDR "<string>\xff</string>" FTR, MDM_ERR_PARSE, "invalid UTF-8"},
        {"overlong utf8", HDR "<string>\xc0\xaf</string>" FTR, MDM_ERR_PARSE, "invalid UTF-8"},
        {"surrogate utf8", HDR "<string>\xed\xa0\x80</string>" FTR, MDM_ERR_PARSE, "invalid UTF-8"},
        {"too high utf8", HDR "<string>\xf4\x90\x80\x80</string>" FTR, MDM_ERR_PARSE,
                "invalid UTF-8"},
        {"truncated utf8", HDR "<string>\xe2\x82</string>" FTR, MDM_ERR_PARSE, "invalid UTF-8"},
        {"raw control", HDR "<string>\x01</string>" FTR, MDM_ERR_PARSE, "U+0001"},
        {"raw fffe", HDR "<string>\xef\xbf\xbe</string>" FTR, MDM_ERR_PARSE, "U+FFFE"},
        {"mismatched tags", HDR "<dict></array>" FTR, MDM_ERR_PARSE, NULL},
        {"unclosed", HDR "<dict><key>a</key><string>b</string>", MDM_ERR_PARSE, NULL},
};

START_TEST(hostile_inline)
{
	const struct bad_case *c = &bad_cases[_i];

	ck_assert_msg(c->doc != NULL, "%s", c->name);
	pt_check_refused(c->doc, c->want, c->msg);
}
END_TEST

/* libxml2 < 2.12 checks attribute names pairwise: refused before it sees them. */
START_TEST(many_attributes)
{
	size_t n = 400000, len, i;
	char *doc = malloc(n * 12 + 64), *p = doc;
	plist *pl;

	ck_assert_ptr_nonnull(doc);
	p += sprintf(p, "<plist");
	for (i = 0; i < n; i++)
		p += sprintf(p, " a%zu=''", i);
	p += sprintf(p, "><true/></plist>");
	len = (size_t)(p - doc);
	ck_assert_uint_le(len, PLIST_MAX_BYTES);
	pt_check_refused_len(doc, len, MDM_ERR_PARSE, "more than one attribute");
	/* '=' in text, comments, CDATA and quoted values is no attribute. */
	pl = pt_parse_str_ok("<?xml version='1.0' encoding='UTF-8'?><!-- a=b c=d -->"
	                     "<plist version='1.0'><array><string>a=b=c</string><data>YQ==</data>"
	                     "<string><![CDATA[<x a='1' b='2'>]]></string><!-- <x a=1 b=2> -->"
	                     "</array></plist>");
	plist_free(pl);
	free(doc);
}
END_TEST

START_TEST(nul_byte_inside)
{
	static const char doc[] = HDR "<string>a\0b</string>" FTR;

	pt_check_refused_len(doc, sizeof(doc) - 1, MDM_ERR_PARSE, "U+0000");
	/* A NUL after a complete document is still part of the input. */
	pt_check_refused_len(HDR "<true/>" FTR, sizeof(HDR "<true/>" FTR), MDM_ERR_PARSE, "U+0000");
}
END_TEST

START_TEST(bad_arguments)
{
	plist *p = NULL;
	char err[64];

	ck_assert_int_eq(plist_parse_ex(NULL, 10, &p, err, sizeof(err)), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_parse_ex("<plist/>", 8, NULL, NULL, 0), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_parse_ex(NULL, 0, &p, NULL, 0), MDM_ERR_PARSE);
	ck_assert_ptr_null(p);
	/* A tiny error buffer is truncated, never overrun. */
	ck_assert_int_eq(plist_parse_ex("x", 1, &p, err, 4), MDM_ERR_PARSE);
	ck_assert_uint_le(strlen(err), 3);
}
END_TEST

static char *repeat_doc(
        const char *open, const char *mid, const char *close, size_t n, size_t *lenp)
{
	size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close), lh = strlen(HDR),
	       lf = strlen(FTR);
	size_t len = lh + n * (lo + lc) + lm + lf, i;
	char *buf = malloc(len + 1), *p;

	ck_assert_ptr_nonnull(buf);
	p = buf;
	memcpy(p, HDR, lh);
	p += lh;
	for (i = 0; i < n; i++, p += lo)
		memcpy(p, open, lo);
	memcpy(p, mid, lm);
	p += lm;
	for (i = 0; i < n; i++, p += lc)
		memcpy(p, close, lc);
	memcpy(p, FTR, lf);
	p += lf;
	*p = '\0';
	*lenp = len;
	return buf;
}

/* The reader hands libxml2's comment nodes over only at element boundaries. */
START_TEST(comment_flood)
{
	size_t len;
	char *doc;
	plist *p;

	doc = repeat_doc("<!---->", "", "", PLIST_MAX_NODES + 1, &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "comments, CDATA sections");
	free(doc);
	doc = repeat_doc("<array><!-- x -->", "", "</array>", 10, &len);
	p = pt_parse_ok(doc, len);
	plist_free(p);
	free(doc);
}
END_TEST

START_TEST(depth_limit)
{
	size_t len;
	char *doc;
	plist *p;

	doc = repeat_doc("<array>", "", "</array>", PLIST_MAX_DEPTH, &len);
	p = pt_parse_ok(doc, len);
	pt_check_roundtrip(p, "64 levels");
	plist_free(p);
	free(doc);

	doc = repeat_doc("<array>", "", "</array>", PLIST_MAX_DEPTH + 1, &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "nesting deeper than 64");
	free(doc);

	doc = repeat_doc("<dict><key>k</key>", "<true/>", "</dict>", PLIST_MAX_DEPTH + 1, &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "nesting deeper than 64");
	free(doc);

	doc = repeat_doc("<array>", "", "</array>", 100000, &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "nesting deeper than 64");
	free(doc);

	/* Unclosed, so libxml2 would also object: our rule still comes first. */
	doc = repeat_doc("<dict><key>k</key>", "", "", 100000, &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "nesting deeper than 64");
	free(doc);
}
END_TEST

static char *flat_array(size_t n, size_t *lenp)
{
	char *doc, *body = malloc(n * 7 + 1), *p = body;
	size_t i, blen;

	ck_assert_ptr_nonnull(body);
	for (i = 0; i < n; i++, p += 7)
		memcpy(p, "<true/>", 7);
	*p = '\0';
	doc = repeat_doc("<array>", body, "</array>", 1, &blen);
	free(body);
	*lenp = blen;
	return doc;
}

START_TEST(node_limit)
{
	size_t len;
	char *doc;
	plist *p;

	/* The array itself is a value too. */
	doc = flat_array(PLIST_MAX_NODES - 1, &len);
	p = pt_parse_ok(doc, len);
	ck_assert_uint_eq(plist_array_count(p), PLIST_MAX_NODES - 1);
	plist_free(p);
	free(doc);

	doc = flat_array(PLIST_MAX_NODES, &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "more than 262144 values");
	free(doc);
}
END_TEST

static char *big_leaf(const char *open, char fill, size_t n, const char *close, size_t *lenp)
{
	char *body = malloc(n + 1), *doc;

	ck_assert_ptr_nonnull(body);
	memset(body, fill, n);
	body[n] = '\0';
	doc = repeat_doc(open, body, close, 1, lenp);
	free(body);
	return doc;
}

START_TEST(string_limit)
{
	size_t len, n;
	char *doc;
	plist *p;

	doc = big_leaf("<string>", 'a', PLIST_MAX_STRING, "</string>", &len);
	p = pt_parse_ok(doc, len);
	ck_assert_ptr_nonnull(plist_string_get0(p, &n));
	ck_assert_uint_eq(n, PLIST_MAX_STRING);
	plist_free(p);
	free(doc);

	doc = big_leaf("<string>", 'a', PLIST_MAX_STRING + 1, "</string>", &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "<string> longer than");
	free(doc);

	doc = big_leaf("<dict><key>", 'k', PLIST_MAX_STRING + 1, "</key><true/></dict>", &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "<key> longer than");
	free(doc);

	/* "AAAA" decodes to three bytes: one quad more than the cap allows. */
	doc = big_leaf("<data>", 'A', (PLIST_MAX_STRING / 3 + 1) * 4, "</data>", &len);
	pt_check_refused_len(doc, len, MDM_ERR_LIMIT, "<data> decodes to more than");
	free(doc);
}
END_TEST

/* A valid document padded with a comment to exactly len bytes. */
static char *padded_doc(size_t len)
{
	static const char head[] = HDR "<true/>" FTR "<!--";
	size_t hl = sizeof(head) - 1;
	char *doc = malloc(len);

	ck_assert_ptr_nonnull(doc);
	ck_assert_uint_gt(len, hl + 3);
	memcpy(doc, head, hl);
	memset(doc + hl, 'x', len - hl - 3);
	memcpy(doc + len - 3, "-->", 3);
	return doc;
}

START_TEST(document_limit)
{
	char *doc;
	plist *p;

	doc = padded_doc(PLIST_MAX_BYTES + 1);
	pt_check_refused_len(doc, PLIST_MAX_BYTES + 1, MDM_ERR_LIMIT, "exceeds");
	free(doc);
	/* At the limit the same document is fine: only the size was refused. */
	doc = padded_doc(PLIST_MAX_BYTES);
	p = pt_parse_ok(doc, PLIST_MAX_BYTES);
	plist_free(p);
	free(doc);
}
END_TEST

static void check_prefixes(const char *buf, size_t len, const char *what)
{
	const char *end = strstr(buf, "</plist>");
	size_t complete, i;

	ck_assert_ptr_nonnull(end);
	complete = (size_t)(end - buf) + strlen("</plist>");
	for (i = 0; i < len; i++) {
		char err[256], *copy = malloc(i + 1);
		plist *p = NULL;
		mdm_err e;

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, buf, i); /* exact-size copy so ASan sees any overread */
		e = plist_parse_ex(copy, i, &p, err, sizeof(err));
		if (i < complete)
			ck_assert_msg(e == MDM_ERR_PARSE && p == NULL,
			        "%s: prefix of %zu bytes gave %s (%s)", what, i, err_str(e), err);
		else
			ck_assert_msg(e == MDM_OK, "%s: prefix of %zu bytes: %s", what, i, err);
		plist_free(p);
		free(copy);
	}
}

START_TEST(truncated_everywhere)
{
	size_t len;
	char *buf;

	buf = pt_read_file(FIXTURES "/all_types.plist", &len);
	ck_assert_ptr_nonnull(buf);
	check_prefixes(buf, len, "all_types.plist");
	free(buf);
	if ((buf = (char *)vector_read(
	             "plist", "nanomdm/mdm/testdata/TokenUpdate.1.plist", &len)) != NULL) {
		check_prefixes(buf, len, "TokenUpdate.1.plist");
		free(buf);
	}
}
END_TEST

/* libxml2 must not write to stderr: refusals are reported once, by us. */
START_TEST(quiet_on_stderr)
{
	FILE *tmp = tmpfile();
	int saved;
	long size;
	size_t i;

	ck_assert_ptr_nonnull(tmp);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fileno(tmp), 2), 0);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		plist *p = NULL;

		if (plist_parse_ex(bad_cases[i].doc, strlen(bad_cases[i].doc), &p, NULL, 0) ==
		        MDM_OK)
			plist_free(p);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	fseek(tmp, 0, SEEK_END);
	size = ftell(tmp);
	fclose(tmp);
	ck_assert_int_eq(size, 0);
}
END_TEST

/* plist_parse logs exactly one line per refusal. */
START_TEST(parse_logs_once)
{
	char buf[4096];
	int fds[2];
	ssize_t n;
	plist *p = NULL;

	ck_assert_int_eq(pipe(fds), 0);
	log_init("test", MDM_LOG_DEBUG);
	log_set_fd(fds[1]);
	ck_assert_int_eq(plist_parse(HDR "<dict><key>UDID</key></dict>" FTR,
	                         strlen(HDR "<dict><key>UDID</key></dict>" FTR), &p),
	        MDM_ERR_PARSE);
	ck_assert_ptr_null(p);
	log_set_fd(-1);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_ptr_nonnull(strstr(buf, "without a value"));
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1);
}
END_TEST

START_TEST(duplicate_keys_large_dict)
{
	/* More keys than the pairwise check handles: found by sorting. */
	char doc[8192], *p = doc;
	int i;

	p += sprintf(p, "%s<dict>", HDR);
	for (i = 0; i < 100; i++)
		p += sprintf(p, "<key>k%d</key><integer>%d</integer>", i, i);
	p += sprintf(p, "<key>k42</key><true/></dict>%s", FTR);
	pt_check_refused(doc, MDM_ERR_PARSE, "duplicate key \"k42\" in dict");
	/* Keys that differ only in length are distinct. */
	pt_check_refused(HDR
	        "<dict><key>a</key><true/><key>a</key><true/><key>aa</key><true/></dict>" FTR,
	        MDM_ERR_PARSE, "duplicate key \"a\"");
	{
		plist *q =
		        pt_parse_str_ok(HDR "<dict><key>a</key><true/><key>aa</key><true/><key></"
		                            "key><true/></dict>" FTR);

		ck_assert_uint_eq(plist_dict_count(q), 3);
		ck_assert_ptr_nonnull(plist_dict_get0(q, ""));
		plist_free(q);
	}
}
END_TEST

/* ---- accepted forms ---- */

START_TEST(value_checks)
{
	static const char doc[] =
	        "<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n"
	        "<!-- c --><plist><!-- c --><array>\n<false></false>"
	        "<integer> -12 </integer><integer>+7</integer><integer>-0</integer>"
	        "<string>a<!-- c -->b<![CDATA[<&>]]>&amp;&#x41;&#13;\r\n</string>"
	        "<string/><string>  </string>"
	        "<integer>9223372036854775808</integer>"
	        "<integer>-9223372036854775808</integer>"
	        "<real>NaN</real><real>-Infinity</real><real>+inf</real><real>.5</real>"
	        "<real>-1.5E-3</real><real> 2 </real>"
	        "<date>1970-01-01T00:00:00Z</date><date>1969-12-31T23:59:59Z</date>"
	        "<date>2000-02-29T12:00:00Z</date><date>0000-01-01T00:00:00Z</date>"
	        "<date>9999-12-31T23:59:59Z</date>"
	        "<data></data><data>\n\tYW\r\n Jj ZA =\n=\n</data><data/>"
	        "<dict/><dict></dict><array/></array>"
	        "</plist><!-- trailing comment -->\n";
	plist *p = pt_parse_str_ok(doc);
	const plist *v;
	const uint8_t *d;
	const char *s;
	int64_t i;
	uint64_t u;
	double r;
	size_t n, k = 0;
	int b;

	ck_assert_uint_eq(plist_array_count(p), 26);
	ck_assert_int_eq(plist_bool_get(plist_array_get0(p, k++), &b), MDM_OK);
	ck_assert_int_eq(b, 0);
	ck_assert_int_eq(plist_integer_get(plist_array_get0(p, k++), &i), MDM_OK);
	ck_assert_int_eq(i, -12);
	ck_assert_int_eq(plist_integer_get(plist_array_get0(p, k++), &i), MDM_OK);
	ck_assert_int_eq(i, 7);
	ck_assert_int_eq(plist_integer_get(plist_array_get0(p, k++), &i), MDM_OK);
	ck_assert_int_eq(i, 0);
	s = plist_string_get0(plist_array_get0(p, k++), &n);
	/* Raw CRLF is LF (XML end-of-line handling); &#13; is a real CR. */
	ck_assert_str_eq(s, "ab<&>&A\r\n");
	ck_assert_uint_eq(n, 9);
	s = plist_string_get0(plist_array_get0(p, k++), &n);
	ck_assert_str_eq(s, "");
	ck_assert_uint_eq(n, 0);
	ck_assert_str_eq(plist_string_get0(plist_array_get0(p, k++), NULL), "  ");
	v = plist_array_get0(p, k++);
	ck_assert(plist_integer_is_unsigned(v));
	ck_assert_int_eq(plist_integer_get(v, &i), MDM_ERR_PARSE);
	ck_assert_int_eq(i, 0);
	ck_assert_int_eq(plist_integer_get_unsigned(v, &u), MDM_OK);
	ck_assert(u == (uint64_t)INT64_MAX + 1);
	v = plist_array_get0(p, k++);
	ck_assert_int_eq(plist_integer_get(v, &i), MDM_OK);
	ck_assert(i == INT64_MIN);
	ck_assert_int_eq(plist_integer_get_unsigned(v, &u), MDM_ERR_PARSE);
	ck_assert_int_eq(plist_real_get(plist_array_get0(p, k++), &r), MDM_OK);
	ck_assert(isnan(r));
	ck_assert_int_eq(plist_real_get(plist_array_get0(p, k++), &r), MDM_OK);
	ck_assert(isinf(r) && r < 0);
	ck_assert_int_eq(plist_real_get(plist_array_get0(p, k++), &r), MDM_OK);
	ck_assert(isinf(r) && r > 0);
	ck_assert_int_eq(plist_real_get(plist_array_get0(p, k++), &r), MDM_OK);
	ck_assert(r == 0.5);
	ck_assert_int_eq(plist_real_get(plist_array_get0(p, k++), &r), MDM_OK);
	ck_assert(r == -1.5e-3);
	ck_assert_int_eq(plist_real_get(plist_array_get0(p, k++), &r), MDM_OK);
	ck_assert(r == 2.0);
	ck_assert_int_eq(plist_date_get(plist_array_get0(p, k++), &i), MDM_OK);
	ck_assert_int_eq(i, 0);
	ck_assert_int_eq(plist_date_get(plist_array_get0(p, k++), &i), MDM_OK);
	ck_assert_int_eq(i, -1);
	ck_assert_int_eq(plist_date_get(plist_array_get0(p, k++), &i), MDM_OK);
	ck_assert_int_eq(i, 951825600);
	ck_assert_int_eq(plist_date_get(plist_array_get0(p, k++), &i), MDM_OK);
	ck_assert_int_eq(i, -62167219200);
	ck_assert_int_eq(plist_date_get(plist_array_get0(p, k++), &i), MDM_OK);
	ck_assert_int_eq(i, 253402300799);
	d = plist_data_get0(plist_array_get0(p, k++), &n);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(n, 0);
	d = plist_data_get0(plist_array_get0(p, k++), &n);
	ck_assert_uint_eq(n, 4);
	ck_assert_mem_eq(d, "abcd", 4);
	ck_assert_ptr_nonnull(plist_data_get0(plist_array_get0(p, k++), &n));
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(plist_get_type(plist_array_get0(p, k)), PLIST_DICT);
	ck_assert_uint_eq(plist_dict_count(plist_array_get0(p, k++)), 0);
	ck_assert_int_eq(plist_get_type(plist_array_get0(p, k++)), PLIST_DICT);
	ck_assert_int_eq(plist_get_type(plist_array_get0(p, k++)), PLIST_ARRAY);
	ck_assert_uint_eq(k, 26);
	ck_assert_ptr_null(plist_array_get0(p, k));
	pt_check_roundtrip(p, "accepted forms");
	plist_free(p);
}
END_TEST

void plist_parse_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "hostile", 120, NULL, NULL);

	ts_add_tests(tc, hostile_fixtures, external_dtd_never_loaded);
	tcase_add_loop_test(tc, hostile_inline, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	ts_add_tests(tc, nul_byte_inside, many_attributes, comment_flood, bad_arguments,
	        depth_limit, node_limit, string_limit, document_limit, truncated_everywhere,
	        duplicate_keys_large_dict, quiet_on_stderr, parse_logs_once);
	tc = ts_tcase(s, "values", 0, NULL, NULL);
	ts_add_tests(tc, value_checks);
}
