/*
 * plist: the checks the plist tests share, real device plists that
 * round-trip exactly (parsed, written, parsed again), and the tree API.
 * The parser's cases are in test_plist_parse.c, the writer's in
 * test_plist_write.c; all are tcases of the one "plist" suite.
 *
 * Real captures come from the shared vectors (MDM_VECTORS, default
 * ../shared/vectors); they are read in place, never copied into the tree,
 * and their cases are skipped with a message when the directory is absent.
 */
#include "mdm_limits.h"
#include "plist.h"
#include "plist_test.h"
#include "suites.h"
#include "ts_sys.h"
#include "vectors.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

char *pt_read_file(const char *path, size_t *lenp)
{
	return ts_file_read(path, PLIST_MAX_BYTES + 1, lenp);
}

plist *pt_parse_ok(const char *buf, size_t len)
{
	char err[256];
	plist *p = NULL;
	mdm_err e = plist_parse_ex(buf, len, &p, err, sizeof(err));

	ck_assert_msg(e == MDM_OK, "parse failed (%s): %s", err_str(e), err);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(err, "");
	return p;
}

plist *pt_parse_str_ok(const char *s)
{
	return pt_parse_ok(s, strlen(s));
}

char *pt_serialize_ok(const plist *p, size_t *lenp)
{
	char *out = NULL;
	mdm_err e = plist_serialize(p, &out, lenp);

	ck_assert_msg(e == MDM_OK, "serialize failed: %s", err_str(e));
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(strlen(out), *lenp);
	return out;
}

/* parse(serialize(t)) equals t, and serializing again gives the same bytes. */
void pt_check_roundtrip(const plist *t, const char *what)
{
	char *s1, *s2, err[256];
	size_t n1, n2;
	plist *u = NULL;
	mdm_err e;

	s1 = pt_serialize_ok(t, &n1);
	e = plist_parse_ex(s1, n1, &u, err, sizeof(err));
	ck_assert_msg(e == MDM_OK, "%s: reparse failed: %s", what, err);
	ck_assert_msg(plist_equal(t, u), "%s: not equal after round trip", what);
	s2 = pt_serialize_ok(u, &n2);
	ck_assert_msg(
	        n1 == n2 && memcmp(s1, s2, n1) == 0, "%s: second serialization differs", what);
	ck_assert_int_eq(s1[n1 - 1], '\n');
	free(s1);
	free(s2);
	plist_free(u);
}

/* Refused with the wanted error and a message naming the rule; nothing returned. */
void pt_check_refused_len(const char *buf, size_t len, mdm_err want, const char *msg)
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

void pt_check_refused(const char *doc, mdm_err want, const char *msg)
{
	pt_check_refused_len(doc, strlen(doc), want, msg);
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
	char *head;
	size_t n, i = 0;
	int yes;

	if ((head = ts_file_read(path, 4095, &n)) == NULL)
		return 0;
	if (n >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < n && strchr(" \t\r\n", head[i]) != NULL && head[i] != '\0')
		i++;
	yes = (strncmp(head + i, "<?xml", 5) == 0 ||
	              strncmp(head + i, "<!DOCTYPE plist", 15) == 0 ||
	              strncmp(head + i, "<plist", 6) == 0) &&
	        strstr(head + i, "<plist") != NULL;
	free(head);
	return yes;
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
		char *buf = pt_read_file(pl.v[i], &len), err[256];
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
			pt_check_roundtrip(p, pl.v[i]);
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
		p = pt_parse_ok(buf, len);
		out = pt_serialize_ok(p, &olen);
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
		p = pt_parse_ok(buf, len);
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
		p = pt_parse_ok(buf, len);
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
		p = pt_parse_ok(buf, len);
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
		p = pt_parse_ok(buf, len);
		d = plist_data_get0(plist_dict_get0(p, "Challenge"), &n);
		ck_assert_uint_eq(n, 5);
		ck_assert_mem_eq(d, "apple", 5);
		plist_free(p);
		free(buf);
	}
}
END_TEST

/* ---- the tree ---- */

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

void plist_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "vectors", 60, NULL, NULL);

	ts_add_tests(tc, vectors_roundtrip, vectors_apple_layout, vectors_values);
	plist_parse_tcases(s);
	plist_write_tcases(s);
	tc = ts_tcase(s, "tree", 0, NULL, NULL);
	ts_add_tests(tc, builder_api);
}
