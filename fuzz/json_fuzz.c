/*
 * libFuzzer target for the strict JSON reader (lib/json.c).  Every
 * promise of json.h must hold: MDM_ERR_LIMIT for input over
 * MDM_JSON_MAX_BYTES, a "json: " reason and no tree on every refusal; and
 * what parses must write back (with json_quote for the strings and the
 * numbers as sent) to a text that parses to the same tree and writes the
 * same bytes again.  A mismatch aborts: a bug in the reader or the quoter.
 *
 * Build settings for scripts/fuzz.sh.  Seeds: tests/unit/data/json.
 * fuzz-max-len: 65600
 */
#include "json.h"
#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what, const char *detail) __attribute__((noreturn));

static void fuzz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "json_fuzz: %s%s%s\n", what, detail != NULL ? ": " : "",
	        detail != NULL ? detail : "");
	abort();
}

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (p == NULL)
			fuzz_fail("realloc", NULL);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void put_quoted(struct buf *b, const char *s, size_t n)
{
	char *q = NULL;

	if (json_quote(s, n, &q) != MDM_OK)
		fuzz_fail("json_quote refused a string the reader took", NULL);
	put(b, q, strlen(q));
	free(q);
}

/* The tree as compact JSON; checks the accessors agree with the type on the way. */
static void write_value(struct buf *b, const json_value *v)
{
	const char *s, *name;
	size_t n;
	int bv;

	switch (json_type_of(v)) {
	case JSON_NULL:
		put(b, "null", 4);
		break;
	case JSON_BOOL:
		if (!json_bool(v, &bv))
			fuzz_fail("a boolean json_bool does not take", NULL);
		put(b, bv ? "true" : "false", bv ? 4 : 5);
		break;
	case JSON_NUMBER:
		if ((s = json_number_text(v)) == NULL)
			fuzz_fail("a number without its text", NULL);
		put(b, s, strlen(s));
		break;
	case JSON_STRING:
		if ((s = json_string(v, &n)) == NULL || s[n] != '\0')
			fuzz_fail("a string json_string does not give", NULL);
		put_quoted(b, s, n);
		break;
	case JSON_ARRAY:
		put(b, "[", 1);
		for (size_t i = 0; i < json_array_len(v); i++) {
			if (i > 0)
				put(b, ",", 1);
			write_value(b, json_array_at(v, i));
		}
		put(b, "]", 1);
		break;
	case JSON_OBJECT:
		put(b, "{", 1);
		for (size_t i = 0; i < json_object_len(v); i++) {
			const json_value *m = json_object_at(v, i, &name);
			if (m == NULL || name == NULL)
				fuzz_fail("a member without a value or a name", NULL);
			if (i > 0)
				put(b, ",", 1);
			put_quoted(b, name, strlen(name));
			put(b, ":", 1);
			write_value(b, m);
		}
		put(b, "}", 1);
		break;
	}
}

/*
 * Whether a member name holds a NUL: json_object_at gives names as C
 * strings, so such a tree cannot be written back.  Any other name must
 * find its own member with json_get (names are unique).
 */
static int has_nul_name(const json_value *v)
{
	const char *name;

	if (json_type_of(v) == JSON_ARRAY) {
		for (size_t i = 0; i < json_array_len(v); i++)
			if (has_nul_name(json_array_at(v, i)))
				return 1;
		return 0;
	}
	for (size_t i = 0; i < json_object_len(v); i++) {
		const json_value *m = json_object_at(v, i, &name);
		if (json_get(v, name) != m)
			return 1;
		if (has_nul_name(m))
			return 1;
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_value *v = (json_value *)err, *w = NULL;
	struct buf b1 = {NULL, 0, 0}, b2 = {NULL, 0, 0};
	mdm_err e;

	err[0] = '\0';
	e = json_parse((const char *)data, size, &v, err, sizeof(err));
	if (e != MDM_OK) {
		if (v != NULL)
			fuzz_fail("tree returned on refusal", err);
		if (strncmp(err, "json: ", 6) != 0)
			fuzz_fail("refusal without a reason", err_str(e));
		if (e != MDM_ERR_PARSE && e != MDM_ERR_LIMIT)
			fuzz_fail("refused with an unexpected error", err_str(e));
		if (size > MDM_JSON_MAX_BYTES && e != MDM_ERR_LIMIT)
			fuzz_fail("oversized input not refused for its size", err);
		return 0;
	}
	if (v == NULL)
		fuzz_fail("MDM_OK without a tree", NULL);
	if (size > MDM_JSON_MAX_BYTES)
		fuzz_fail("oversized input taken", NULL);
	if (!has_nul_name(v)) {
		write_value(&b1, v);
		if ((e = json_parse(b1.p, b1.len, &w, err, sizeof(err))) != MDM_OK)
			fuzz_fail("what was written does not parse", err);
		write_value(&b2, w);
		if (b1.len != b2.len || memcmp(b1.p, b2.p, b1.len) != 0)
			fuzz_fail("the tree changed in a round trip", b1.p);
		json_free(w);
	}
	free(b1.p);
	free(b2.p);
	json_free(v);
	return 0;
}

/*
 * libFuzzer dictionary, one token per line (scripts/fuzz.sh extracts it).
 * fuzz-dict: "true"
 * fuzz-dict: "false"
 * fuzz-dict: "null"
 * fuzz-dict: "\"\\u0000\""
 * fuzz-dict: "\"\\ud83d\\ude00\""
 * fuzz-dict: "\"\\ud800\""
 * fuzz-dict: "\"\\udc00\""
 * fuzz-dict: "\xed\xa0\x80"
 * fuzz-dict: "\xf4\x90\x80\x80"
 * fuzz-dict: "\xc0\xaf"
 * fuzz-dict: "\xef\xbb\xbf"
 * fuzz-dict: "-9223372036854775808"
 * fuzz-dict: "9223372036854775808"
 * fuzz-dict: "1.5e-300"
 * fuzz-dict: "-0"
 * fuzz-dict: "\"alg\":"
 * fuzz-dict: "\"jwk\":{"
 * fuzz-dict: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
 * fuzz-dict: "//"
 * fuzz-dict: ",]"
 * fuzz-dict: ",}"
 */
