/*
 * plist: real device plists round-trip exactly; hostile documents (entity
 * expansion, XXE, depth, size, malformed values, truncation) are refused
 * cleanly; the builder writes Apple's layout.
 *
 * Real captures come from the shared vectors (MDM_VECTORS, default
 * ../shared/vectors); they are read in place, never copied into the tree,
 * and their cases are skipped with a message when the directory is absent.
 */
#include "log.h"
#include "mdm_limits.h"
#include "plist.h"
#include "suites.h"
#include "vectors.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURES "tests/unit/data/plist"

#define HDR                                                                                        \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                             \
	"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "                                  \
	"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"                                    \
	"<plist version=\"1.0\">\n"
#define FTR "</plist>\n"

/* Redacted in the source repositories to placeholders that are not base64. */
static const char *const redacted_vectors[] = {
        "commandment/testdata/CertificateList/iOS-11.3.1.xml",
        "commandment/testdata/TokenUpdate/10.11.x-user.plist",
        "commandment/testdata/TokenUpdate/iOS-11.3.1.xml",
        "micromdm-mdm/test/responses/certificatelist.plist",
        "micromdm-mdm/test/responses/tokenupdate.plist",
};

/* Written by CFPropertyList on a device: our writer must reproduce them byte for byte. */
static const char *const apple_written_vectors[] = {
        "nanomdm/mdm/testdata/TokenUpdate.1.plist",
        "nanomdm/mdm/testdata/Authenticate.1.plist",
        "commandment/testdata/DeviceInformation/macOS-10.13.1.xml",
        "zentral/tests/mdm/testdata/device_information.plist",
        "nanomdm/docs/enroll.mobileconfig",
};

static char *read_file(const char *path, size_t *lenp)
{
	FILE *fp;
	char *buf;
	size_t n;

	*lenp = 0;
	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	buf = malloc(PLIST_MAX_BYTES + 1);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, PLIST_MAX_BYTES + 1, fp);
	fclose(fp);
	*lenp = n;
	return buf;
}

static plist *parse_ok(const char *buf, size_t len)
{
	char err[256];
	plist *p = NULL;
	mdm_err e = plist_parse_ex(buf, len, &p, err, sizeof(err));

	ck_assert_msg(e == MDM_OK, "parse failed (%s): %s", err_str(e), err);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(err, "");
	return p;
}

static plist *parse_str_ok(const char *s)
{
	return parse_ok(s, strlen(s));
}

static char *serialize_ok(const plist *p, size_t *lenp)
{
	char *out = NULL;
	mdm_err e = plist_serialize(p, &out, lenp);

	ck_assert_msg(e == MDM_OK, "serialize failed: %s", err_str(e));
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(strlen(out), *lenp);
	return out;
}

/* parse(serialize(t)) equals t, and serializing again gives the same bytes. */
static void check_roundtrip(const plist *t, const char *what)
{
	char *s1, *s2, err[256];
	size_t n1, n2;
	plist *u = NULL;
	mdm_err e;

	s1 = serialize_ok(t, &n1);
	e = plist_parse_ex(s1, n1, &u, err, sizeof(err));
	ck_assert_msg(e == MDM_OK, "%s: reparse failed: %s", what, err);
	ck_assert_msg(plist_equal(t, u), "%s: not equal after round trip", what);
	s2 = serialize_ok(u, &n2);
	ck_assert_msg(
	        n1 == n2 && memcmp(s1, s2, n1) == 0, "%s: second serialization differs", what);
	ck_assert_int_eq(s1[n1 - 1], '\n');
	free(s1);
	free(s2);
	plist_free(u);
}

/* Refused with the wanted error and a message naming the rule; nothing returned. */
static void check_refused_len(const char *buf, size_t len, mdm_err want, const char *msg)
{
	char err[256];
	plist *p = (plist *)&err; /* must be cleared on entry */
	mdm_err e = plist_parse_ex(buf, len, &p, err, sizeof(err));

	ck_assert_msg(e == want, "got %s, want %s (%s) for: %.80s", err_str(e), err_str(want), err,
	        buf != NULL ? buf : "(null)");
	ck_assert_ptr_null(p);
	ck_assert_msg(strncmp(err, "plist: ", 7) == 0, "message \"%s\" lacks the prefix", err);
	if (msg != NULL)
		ck_assert_msg(
		        strstr(err, msg) != NULL, "message \"%s\" does not say \"%s\"", err, msg);
}

static void check_refused(const char *doc, mdm_err want, const char *msg)
{
	check_refused_len(doc, strlen(doc), want, msg);
}

/* ---- real captures ---- */

struct pathlist {
	char **v;
	size_t n, cap;
};

static int has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Text plists only: the DER files that embed one are not. */
static int looks_like_plist(const char *path)
{
	char head[4096];
	size_t n, i = 0;
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL)
		return 0;
	n = fread(head, 1, sizeof(head) - 1, fp);
	fclose(fp);
	head[n] = '\0';
	if (n >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < n && strchr(" \t\r\n", head[i]) != NULL && head[i] != '\0')
		i++;
	if (strncmp(head + i, "<?xml", 5) != 0 && strncmp(head + i, "<!DOCTYPE plist", 15) != 0 &&
	        strncmp(head + i, "<plist", 6) != 0)
		return 0;
	return strstr(head + i, "<plist") != NULL;
}

static void collect(const char *dir, struct pathlist *pl, int depth)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	char path[4096];

	if (depth > 32 || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			collect(path, pl, depth + 1);
			continue;
		}
		if (!S_ISREG(st.st_mode) || st.st_size > PLIST_MAX_BYTES || !looks_like_plist(path))
			continue;
		if (pl->n == pl->cap) {
			pl->cap = pl->cap ? pl->cap * 2 : 64;
			pl->v = realloc(pl->v, pl->cap * sizeof(*pl->v));
			ck_assert_ptr_nonnull(pl->v);
		}
		pl->v[pl->n] = strdup(path);
		ck_assert_ptr_nonnull(pl->v[pl->n]);
		pl->n++;
	}
	closedir(d);
}

static int is_redacted(const char *path)
{
	size_t i;

	for (i = 0; i < sizeof(redacted_vectors) / sizeof(redacted_vectors[0]); i++)
		if (has_suffix(path, redacted_vectors[i]))
			return 1;
	return 0;
}

START_TEST(vectors_roundtrip)
{
	const char *dir = vector_dir();
	struct pathlist pl = {NULL, 0, 0};
	size_t i, ok = 0, refused = 0;

	if (dir == NULL) {
		printf("plist: shared vectors not found (set MDM_VECTORS); vector cases skipped\n");
		return;
	}
	collect(dir, &pl, 0);
	ck_assert_msg(pl.n > 0, "no plists found under %s", dir);
	for (i = 0; i < pl.n; i++) {
		size_t len;
		char *buf = read_file(pl.v[i], &len), err[256];
		plist *p = NULL;
		mdm_err e;

		ck_assert_ptr_nonnull(buf);
		e = plist_parse_ex(buf, len, &p, err, sizeof(err));
		if (is_redacted(pl.v[i])) {
			ck_assert_msg(e == MDM_ERR_PARSE && strstr(err, "invalid base64") != NULL,
			        "%s: want the base64 refusal, got %s (%s)", pl.v[i], err_str(e),
			        err);
			refused++;
		} else {
			ck_assert_msg(e == MDM_OK, "%s: %s", pl.v[i], err);
			check_roundtrip(p, pl.v[i]);
			ok++;
		}
		plist_free(p);
		free(buf);
		free(pl.v[i]);
	}
	free(pl.v);
	printf("plist: %zu vectors round-tripped, %zu redacted ones refused\n", ok, refused);
	ck_assert_uint_gt(ok, 0);
}
END_TEST

START_TEST(vectors_apple_layout)
{
	size_t i;

	for (i = 0; i < sizeof(apple_written_vectors) / sizeof(apple_written_vectors[0]); i++) {
		size_t len, olen;
		char *buf = (char *)vector_read("plist", apple_written_vectors[i], &len), *out;
		plist *p;

		if (buf == NULL)
			continue;
		p = parse_ok(buf, len);
		out = serialize_ok(p, &olen);
		ck_assert_msg(olen == len && memcmp(out, buf, len) == 0,
		        "%s: not reproduced byte for byte", apple_written_vectors[i]);
		free(out);
		plist_free(p);
		free(buf);
	}
}
END_TEST

START_TEST(vectors_values)
{
	size_t len, n;
	char *buf;
	plist *p;
	const plist *v, *q;
	const uint8_t *d;
	int64_t t;
	double r;
	int b;

	if ((buf = (char *)vector_read(
	             "plist", "nanomdm/mdm/testdata/Authenticate.1.plist", &len)) != NULL) {
		p = parse_ok(buf, len);
		ck_assert_int_eq(plist_get_type(p), PLIST_DICT);
		ck_assert_uint_eq(plist_dict_count(p), 7);
		ck_assert_str_eq(plist_dict_key_at(p, 0), "BuildVersion");
		ck_assert_str_eq(plist_dict_key_at(p, 6), "UDID");
		ck_assert_str_eq(plist_dict_get_string0(p, "MessageType"), "Authenticate");
		ck_assert_str_eq(plist_dict_get_string0(p, "UDID"),
		        "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69");
		ck_assert_str_eq(plist_dict_get_string0(p, "Topic"),
		        "com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9");
		ck_assert_ptr_null(plist_dict_get_string0(p, "NoSuchKey"));
		plist_free(p);
		free(buf);
	}
	if ((buf = (char *)vector_read(
	             "plist", "nanomdm/mdm/testdata/TokenUpdate.1.plist", &len)) != NULL) {
		p = parse_ok(buf, len);
		d = plist_data_get0(plist_dict_get0(p, "Token"), &n);
		ck_assert_ptr_nonnull(d);
		ck_assert_uint_eq(n, 32);
		ck_assert_int_eq(d[0], 0x47);
		ck_assert_int_eq(d[1], 0xe8);
		ck_assert_int_eq(d[31], 0x51);
		ck_assert_int_eq(
		        plist_bool_get(plist_dict_get0(p, "AwaitingConfiguration"), &b), MDM_OK);
		ck_assert_int_eq(b, 0);
		/* A multi-line <data> (the UnlockToken) decodes too. */
		d = plist_data_get0(plist_dict_get0(p, "UnlockToken"), &n);
		ck_assert_ptr_nonnull(d);
		ck_assert_uint_gt(n, 1000);
		ck_assert_mem_eq(d, "DATA", 4);
		plist_free(p);
		free(buf);
	}
	if ((buf = (char *)vector_read("plist",
	             "commandment/testdata/DeviceInformation/macOS-10.13.1.xml", &len)) != NULL) {
		p = parse_ok(buf, len);
		q = plist_dict_get0(p, "QueryResponses");
		ck_assert_int_eq(plist_get_type(q), PLIST_DICT);
		ck_assert_int_eq(
		        plist_real_get(plist_dict_get0(q, "AvailableDeviceCapacity"), &r), MDM_OK);
		ck_assert(r == 217.90493011474609);
		v = plist_dict_get0(plist_dict_get0(q, "OSUpdateSettings"), "PreviousScanDate");
		ck_assert_int_eq(plist_date_get(v, &t), MDM_OK);
		ck_assert_int_eq(t, 1530366398); /* 2018-06-30T13:46:38Z */
		plist_free(p);
		free(buf);
	}
	if ((buf = (char *)vector_read(
	             "plist", "commandment/testdata/Authenticate/10.11.x.xml", &len)) != NULL) {
		/* Indented base64 with whitespace around it. */
		p = parse_ok(buf, len);
		d = plist_data_get0(plist_dict_get0(p, "Challenge"), &n);
		ck_assert_uint_eq(n, 5);
		ck_assert_mem_eq(d, "apple", 5);
		plist_free(p);
		free(buf);
	}
}
END_TEST

/* ---- hostile documents ---- */

static void check_fixture_refused(const char *name, mdm_err want, const char *msg)
{
	char path[512];
	size_t len;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	buf = read_file(path, &len);
	ck_assert_msg(buf != NULL, "fixture %s missing (run from the repository root)", path);
	check_refused_len(buf, len, want, msg);
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
	buf = read_file(FIXTURES "/external_dtd_not_loaded.plist", &len);
	ck_assert_ptr_nonnull(buf);
	p = parse_ok(buf, len);
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
	check_refused(c->doc, c->want, c->msg);
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
	check_refused_len(doc, len, MDM_ERR_PARSE, "more than one attribute");
	/* '=' in text, comments, CDATA and quoted values is no attribute. */
	pl = parse_str_ok("<?xml version='1.0' encoding='UTF-8'?><!-- a=b c=d -->"
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

	check_refused_len(doc, sizeof(doc) - 1, MDM_ERR_PARSE, "U+0000");
	/* A NUL after a complete document is still part of the input. */
	check_refused_len(HDR "<true/>" FTR, sizeof(HDR "<true/>" FTR), MDM_ERR_PARSE, "U+0000");
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
	check_refused_len(doc, len, MDM_ERR_LIMIT, "comments, CDATA sections");
	free(doc);
	doc = repeat_doc("<array><!-- x -->", "", "</array>", 10, &len);
	p = parse_ok(doc, len);
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
	p = parse_ok(doc, len);
	check_roundtrip(p, "64 levels");
	plist_free(p);
	free(doc);

	doc = repeat_doc("<array>", "", "</array>", PLIST_MAX_DEPTH + 1, &len);
	check_refused_len(doc, len, MDM_ERR_LIMIT, "nesting deeper than 64");
	free(doc);

	doc = repeat_doc("<dict><key>k</key>", "<true/>", "</dict>", PLIST_MAX_DEPTH + 1, &len);
	check_refused_len(doc, len, MDM_ERR_LIMIT, "nesting deeper than 64");
	free(doc);

	doc = repeat_doc("<array>", "", "</array>", 100000, &len);
	check_refused_len(doc, len, MDM_ERR_LIMIT, "nesting deeper than 64");
	free(doc);

	/* Unclosed, so libxml2 would also object: our rule still comes first. */
	doc = repeat_doc("<dict><key>k</key>", "", "", 100000, &len);
	check_refused_len(doc, len, MDM_ERR_LIMIT, "nesting deeper than 64");
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
	p = parse_ok(doc, len);
	ck_assert_uint_eq(plist_array_count(p), PLIST_MAX_NODES - 1);
	plist_free(p);
	free(doc);

	doc = flat_array(PLIST_MAX_NODES, &len);
	check_refused_len(doc, len, MDM_ERR_LIMIT, "more than 262144 values");
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
	p = parse_ok(doc, len);
	ck_assert_ptr_nonnull(plist_string_get0(p, &n));
	ck_assert_uint_eq(n, PLIST_MAX_STRING);
	plist_free(p);
	free(doc);

	doc = big_leaf("<string>", 'a', PLIST_MAX_STRING + 1, "</string>", &len);
	check_refused_len(doc, len, MDM_ERR_LIMIT, "<string> longer than");
	free(doc);

	doc = big_leaf("<dict><key>", 'k', PLIST_MAX_STRING + 1, "</key><true/></dict>", &len);
	check_refused_len(doc, len, MDM_ERR_LIMIT, "<key> longer than");
	free(doc);

	/* "AAAA" decodes to three bytes: one quad more than the cap allows. */
	doc = big_leaf("<data>", 'A', (PLIST_MAX_STRING / 3 + 1) * 4, "</data>", &len);
	check_refused_len(doc, len, MDM_ERR_LIMIT, "<data> decodes to more than");
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
	check_refused_len(doc, PLIST_MAX_BYTES + 1, MDM_ERR_LIMIT, "exceeds");
	free(doc);
	/* At the limit the same document is fine: only the size was refused. */
	doc = padded_doc(PLIST_MAX_BYTES);
	p = parse_ok(doc, PLIST_MAX_BYTES);
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

	buf = read_file(FIXTURES "/all_types.plist", &len);
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
	plist *p = parse_str_ok(doc);
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
	check_roundtrip(p, "accepted forms");
	plist_free(p);
}
END_TEST

/* ---- builder and writer ---- */

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
	char *out = serialize_ok(d, &len), *file;

	ck_assert_str_eq(out, all_types_xml);
	check_roundtrip(d, "all types");

	/* The fixture holds the same document: parsing it gives the same tree. */
	file = read_file(FIXTURES "/all_types.plist", &flen);
	ck_assert_ptr_nonnull(file);
	ck_assert_uint_eq(flen, len);
	ck_assert_mem_eq(file, out, len);
	f = parse_ok(file, flen);
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

	out = serialize_ok(p, &len);
	ck_assert_ptr_nonnull(strstr(out, "<string>&lt;&amp;&gt;&#13;\n\t]]&gt;\"'</string>"));
	check_roundtrip(p, "escaping");
	free(out);
	plist_free(p);

	p = plist_new_dict();
	ck_assert_int_eq(plist_dict_set(p, "a<b>&c", plist_new_bool(1)), MDM_OK);
	out = serialize_ok(p, &len);
	ck_assert_ptr_nonnull(strstr(out, "<key>a&lt;b&gt;&amp;c</key>"));
	check_roundtrip(p, "key escaping");
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
	check_roundtrip(root, "64 levels built");
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
	check_roundtrip(a, "numbers");
	out = serialize_ok(a, &len);
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
	check_roundtrip(root, "data at every indentation");
	out = serialize_ok(root, &len);
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

START_TEST(builder_api)
{
	plist *d = plist_new_dict(), *a = plist_new_array();
	const plist *v;
	int64_t i;
	int b;
	double r;
	size_t n;

	ck_assert_int_eq(plist_dict_set(d, "a", plist_new_integer(1)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "b", plist_new_integer(2)), MDM_OK);
	ck_assert_int_eq(plist_dict_set(d, "c", plist_new_integer(3)), MDM_OK);
	/* Replacing keeps the position. */
	ck_assert_int_eq(plist_dict_set(d, "b", plist_new_string("two")), MDM_OK);
	ck_assert_uint_eq(plist_dict_count(d), 3);
	ck_assert_str_eq(plist_dict_key_at(d, 1), "b");
	ck_assert_str_eq(plist_dict_get_string0(d, "b"), "two");
	ck_assert_ptr_null(plist_dict_key_at(d, 3));
	ck_assert_ptr_null(plist_dict_value_at(d, 3));
	ck_assert_ptr_eq(plist_dict_value_at(d, 1), plist_dict_get0(d, "b"));
	/* A failed constructor is NOMEM at the setter; a wrong target frees val. */
	ck_assert_int_eq(plist_dict_set(d, "x", NULL), MDM_ERR_NOMEM);
	ck_assert_int_eq(plist_array_append(a, NULL), MDM_ERR_NOMEM);
	ck_assert_int_eq(plist_dict_set(a, "x", plist_new_bool(1)), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_array_append(d, plist_new_bool(1)), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_dict_set(d, NULL, plist_new_bool(1)), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_dict_set(NULL, "x", plist_new_bool(1)), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_array_append(NULL, plist_new_bool(1)), MDM_ERR_INVAL);
	ck_assert_ptr_null(plist_new_string(NULL));
	ck_assert_ptr_null(plist_new_data(NULL, 1));

	/* Getters refuse other types and NULL. */
	v = plist_dict_get0(d, "a");
	ck_assert_int_eq(plist_get_type(v), PLIST_INTEGER);
	ck_assert_ptr_null(plist_string_get0(v, &n));
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(plist_data_get0(v, NULL));
	ck_assert_int_eq(plist_bool_get(v, &b), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_real_get(v, &r), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_date_get(v, &i), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_integer_get(NULL, &i), MDM_ERR_INVAL);
	ck_assert_int_eq(plist_get_type(NULL), PLIST__MAX);
	ck_assert_ptr_null(plist_dict_get0(a, "a"));
	ck_assert_ptr_null(plist_dict_get_string0(d, "a"));
	ck_assert_ptr_null(plist_dict_get_string0(NULL, "a"));
	ck_assert_uint_eq(plist_array_count(d), 0);
	ck_assert_uint_eq(plist_dict_count(a), 0);
	ck_assert_str_eq(plist_type_str(PLIST_DATE), "date");
	ck_assert_str_eq(plist_type_str(PLIST__MAX), "invalid");

	/* Key order matters to plist_equal. */
	{
		plist *x = plist_new_dict(), *y = plist_new_dict();

		ck_assert_int_eq(plist_dict_set(x, "a", plist_new_bool(1)), MDM_OK);
		ck_assert_int_eq(plist_dict_set(x, "b", plist_new_bool(1)), MDM_OK);
		ck_assert_int_eq(plist_dict_set(y, "b", plist_new_bool(1)), MDM_OK);
		ck_assert_int_eq(plist_dict_set(y, "a", plist_new_bool(1)), MDM_OK);
		ck_assert(!plist_equal(x, y));
		ck_assert(plist_equal(x, x));
		ck_assert(!plist_equal(x, NULL));
		ck_assert(plist_equal(NULL, NULL));
		plist_free(x);
		plist_free(y);
	}
	plist_free(d);
	plist_free(a);
	plist_free(NULL);
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
	check_refused(doc, MDM_ERR_PARSE, "duplicate key \"k42\" in dict");
	/* Keys that differ only in length are distinct. */
	check_refused(HDR
	        "<dict><key>a</key><true/><key>a</key><true/><key>aa</key><true/></dict>" FTR,
	        MDM_ERR_PARSE, "duplicate key \"a\"");
	{
		plist *q = parse_str_ok(HDR "<dict><key>a</key><true/><key>aa</key><true/><key></"
		                            "key><true/></dict>" FTR);

		ck_assert_uint_eq(plist_dict_count(q), 3);
		ck_assert_ptr_nonnull(plist_dict_get0(q, ""));
		plist_free(q);
	}
}
END_TEST

Suite *plist_suite(void)
{
	Suite *s = suite_create("plist");
	TCase *tc;

	tc = tcase_create("vectors");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, vectors_roundtrip);
	tcase_add_test(tc, vectors_apple_layout);
	tcase_add_test(tc, vectors_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hostile_fixtures);
	tcase_add_test(tc, external_dtd_never_loaded);
	tcase_add_loop_test(tc, hostile_inline, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, nul_byte_inside);
	tcase_add_test(tc, many_attributes);
	tcase_add_test(tc, comment_flood);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, depth_limit);
	tcase_add_test(tc, node_limit);
	tcase_add_test(tc, string_limit);
	tcase_add_test(tc, document_limit);
	tcase_add_test(tc, truncated_everywhere);
	tcase_add_test(tc, duplicate_keys_large_dict);
	tcase_add_test(tc, quiet_on_stderr);
	tcase_add_test(tc, parse_logs_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_test(tc, value_checks);
	suite_add_tcase(s, tc);

	tc = tcase_create("builder");
	tcase_add_test(tc, builder_exact_output);
	tcase_add_test(tc, builder_escaping);
	tcase_add_test(tc, builder_refuses_unwritable);
	tcase_add_test(tc, builder_depth);
	tcase_add_test(tc, builder_numbers);
	tcase_add_test(tc, builder_data_wrapping);
	tcase_add_test(tc, builder_api);
	suite_add_tcase(s, tc);
	return s;
}
