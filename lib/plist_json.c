/*
 * A plist tree as JSON, so that SQL can read device answers (jsonb):
 * dict -> object (keys in document order), array -> array, string ->
 * string, integer -> number, real -> number (NaN and infinities, which
 * JSON cannot carry, -> null), boolean -> true/false, date -> ISO 8601
 * UTC string, data -> base64 string.  One bounded writer that grows its
 * buffer with overflow-checked arithmetic.
 */
#include "plist.h"

#include "base64.h"
#include "mdm_limits.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct jbuf {
	char *p;
	size_t len, cap;
	mdm_err err;
};

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
	size_t need;
	char *q;

	if (b->err != MDM_OK)
		return;
	if (n > SIZE_MAX - b->len - 1) {
		b->err = MDM_ERR_LIMIT;
		return;
	}
	need = b->len + n + 1;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < need) {
			if (cap > SIZE_MAX / 2) {
				b->err = MDM_ERR_LIMIT;
				return;
			}
			cap *= 2;
		}
		if ((q = realloc(b->p, cap)) == NULL) {
			b->err = MDM_ERR_NOMEM;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void jb_str(struct jbuf *b, const char *s)
{
	jb_put(b, s, strlen(s));
}

/* A JSON string: the plist's strings are UTF-8 (the parser checked it). */
static void jb_quote(struct jbuf *b, const char *s, size_t n)
{
	size_t i, run = 0;
	char esc[8];

	jb_put(b, "\"", 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jb_put(b, s + run, i - run);
		run = i + 1;
		if (c == '"')
			jb_put(b, "\\\"", 2);
		else if (c == '\\')
			jb_put(b, "\\\\", 2);
		else if (c == '\n')
			jb_put(b, "\\n", 2);
		else if (c == '\t')
			jb_put(b, "\\t", 2);
		else if (c == '\r')
			jb_put(b, "\\r", 2);
		else {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			jb_put(b, esc, 6);
		}
	}
	jb_put(b, s + run, n - run);
	jb_put(b, "\"", 1);
}

static void jb_value(struct jbuf *b, const plist *p, int depth)
{
	char num[64];
	size_t i, n;

	if (depth > PLIST_MAX_DEPTH) {
		b->err = MDM_ERR_LIMIT;
		return;
	}
	switch (plist_get_type(p)) {
	case PLIST_DICT:
		jb_put(b, "{", 1);
		for (i = 0; i < plist_dict_count(p); i++) {
			const char *k = plist_dict_key_at(p, i);
			if (i > 0)
				jb_put(b, ",", 1);
			jb_quote(b, k, strlen(k));
			jb_put(b, ":", 1);
			jb_value(b, plist_dict_value_at(p, i), depth + 1);
		}
		jb_put(b, "}", 1);
		return;
	case PLIST_ARRAY:
		jb_put(b, "[", 1);
		for (i = 0; i < plist_array_count(p); i++) {
			if (i > 0)
				jb_put(b, ",", 1);
			jb_value(b, plist_array_get0(p, i), depth + 1);
		}
		jb_put(b, "]", 1);
		return;
	case PLIST_STRING: {
		const char *s = plist_string_get0(p, &n);
		jb_quote(b, s, n);
		return;
	}
	case PLIST_INTEGER:
		if (plist_integer_is_unsigned(p)) {
			uint64_t u = 0;
			if (plist_integer_get_unsigned(p, &u) != MDM_OK)
				b->err = MDM_ERR_INTERNAL;
			snprintf(num, sizeof(num), "%llu", (unsigned long long)u);
		} else {
			int64_t v = 0;
			if (plist_integer_get(p, &v) != MDM_OK)
				b->err = MDM_ERR_INTERNAL;
			snprintf(num, sizeof(num), "%lld", (long long)v);
		}
		jb_str(b, num);
		return;
	case PLIST_REAL: {
		double d = 0;
		if (plist_real_get(p, &d) != MDM_OK)
			b->err = MDM_ERR_INTERNAL;
		if (isnan(d) || isinf(d))
			jb_str(b, "null");
		else {
			snprintf(num, sizeof(num), "%.17g", d);
			jb_str(b, num);
		}
		return;
	}
	case PLIST_BOOLEAN: {
		int v = 0;
		if (plist_bool_get(p, &v) != MDM_OK)
			b->err = MDM_ERR_INTERNAL;
		jb_str(b, v ? "true" : "false");
		return;
	}
	case PLIST_DATE: {
		int64_t t = 0;
		struct tm tm;
		time_t tt;
		if (plist_date_get(p, &t) != MDM_OK)
			b->err = MDM_ERR_INTERNAL;
		tt = (time_t)t;
		if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 0 ||
		        tm.tm_year + 1900 > 9999) {
			b->err = MDM_ERR_INVAL;
			return;
		}
		strftime(num, sizeof(num), "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
		jb_str(b, num);
		return;
	}
	case PLIST_DATA: {
		const uint8_t *d = plist_data_get0(p, &n);
		char *s = NULL;
		size_t slen = 0;
		mdm_err rc = base64_encode(d, n, &s, &slen);
		if (rc != MDM_OK) {
			b->err = rc;
			return;
		}
		jb_quote(b, s, slen);
		free(s);
		return;
	}
	case PLIST__MAX:
		break;
	}
	b->err = MDM_ERR_INVAL;
}

mdm_err plist_to_json(const plist *p, char **out, size_t *outlen)
{
	struct jbuf b = {NULL, 0, 0, MDM_OK};

	*out = NULL;
	*outlen = 0;
	if (p == NULL)
		return MDM_ERR_INVAL;
	jb_value(&b, p, 0);
	if (b.err != MDM_OK) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*outlen = b.len;
	return MDM_OK;
}
