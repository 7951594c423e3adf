/*
 * A strict JSON reader (RFC 8259) for untrusted input: a recursive
 * descent over the bytes, depth-capped, building a read-only tree; and
 * the quoter writers use.  See json.h for what is refused and why.
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_value {
	json_type type;
	int b;             /* JSON_BOOL */
	char *str;         /* JSON_STRING: decoded, NUL-terminated; JSON_NUMBER: the text */
	size_t len;        /* of str */
	json_value **item; /* JSON_ARRAY, JSON_OBJECT: the values */
	char **name;       /* JSON_OBJECT: member names, NUL-terminated */
	size_t *namelen;   /* JSON_OBJECT: their lengths */
	size_t n, cap;
};

struct json_parser {
	const unsigned char *p;
	size_t len, pos;
	size_t nodes;
	char *err;
	size_t errlen;
};

MDM_WUR static mdm_err json_value_parse(struct json_parser *jp, int depth, json_value **out);

MDM_WUR static mdm_err json_fail(struct json_parser *jp, mdm_err rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

MDM_WUR static mdm_err json_fail(struct json_parser *jp, mdm_err rc, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (jp->err != NULL && jp->errlen > 0)
		snprintf(jp->err, jp->errlen, "json: %s at byte %zu", msg, jp->pos);
	return rc;
}

static void json_skip_ws(struct json_parser *jp)
{
	/* RFC 8259 section 2: ws = space, horizontal tab, line feed, carriage return. */
	while (jp->pos < jp->len) {
		unsigned char c = jp->p[jp->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		jp->pos++;
	}
}

MDM_WUR static mdm_err json_new(struct json_parser *jp, json_type t, json_value **out)
{
	json_value *v;

	*out = NULL;
	if (jp->nodes >= MDM_JSON_MAX_NODES)
		return json_fail(jp, MDM_ERR_LIMIT, "more than %d values", MDM_JSON_MAX_NODES);
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return MDM_ERR_NOMEM;
	jp->nodes++;
	v->type = t;
	*out = v;
	return MDM_OK;
}

void json_free(json_value *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		json_free(v->item[i]);
		if (v->name != NULL)
			free(v->name[i]);
	}
	free(v->item);
	free(v->name);
	free(v->namelen);
	free(v->str);
	free(v);
}

/*
 * The length of the UTF-8 sequence at s (at most avail bytes), 0 if it is
 * not well formed (RFC 3629 section 4: no overlong forms, no surrogates,
 * nothing past U+10FFFF).
 */
static size_t json_utf8_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (avail < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static int json_hex4(const unsigned char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return 0;
		v = v << 4 | d;
	}
	*out = v;
	return 1;
}

static size_t json_put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * A string at jp->pos (the opening quote), decoded into *out (NUL-
 * terminated) and *outlen.  The decoded form is never longer than the
 * text (an escape of 6 or 12 bytes gives at most 4), so one allocation
 * of the text's size, known after the scan, is enough.
 */
MDM_WUR static mdm_err json_string_parse(struct json_parser *jp, char **out, size_t *outlen)
{
	size_t start = jp->pos + 1, end, o = 0;
	char *buf;

	*out = NULL;
	*outlen = 0;
	/* First pass: find the closing quote, checking everything but escapes' values. */
	for (end = start;; end++) {
		if (end >= jp->len) {
			jp->pos = end;
			return json_fail(
			        jp, MDM_ERR_PARSE, "RFC 8259 section 7: unterminated string");
		}
		if (jp->p[end] == '"')
			break;
		if (jp->p[end] == '\\') {
			end++;
			if (end >= jp->len) {
				jp->pos = end;
				return json_fail(jp, MDM_ERR_PARSE,
				        "RFC 8259 section 7: unterminated string");
			}
		}
	}
	if ((buf = malloc(end - start + 1)) == NULL)
		return MDM_ERR_NOMEM;
	jp->pos = start;
	while (jp->pos < end) {
		const unsigned char *s = jp->p + jp->pos;
		size_t n;
		unsigned cp, lo;

		if (s[0] < 0x20) {
			free(buf);
			return json_fail(jp, MDM_ERR_PARSE,
			        "RFC 8259 section 7: control character 0x%02x in a string", s[0]);
		}
		if (s[0] != '\\') {
			if ((n = json_utf8_len(s, end - jp->pos)) == 0) {
				free(buf);
				return json_fail(
				        jp, MDM_ERR_PARSE, "RFC 8259 section 8.1: invalid UTF-8");
			}
			memcpy(buf + o, s, n);
			o += n;
			jp->pos += n;
			continue;
		}
		switch (s[1]) {
		case '"':
		case '\\':
		case '/':
			buf[o++] = (char)s[1];
			break;
		case 'b':
			buf[o++] = '\b';
			break;
		case 'f':
			buf[o++] = '\f';
			break;
		case 'n':
			buf[o++] = '\n';
			break;
		case 'r':
			buf[o++] = '\r';
			break;
		case 't':
			buf[o++] = '\t';
			break;
		case 'u':
			if (end - jp->pos < 6 || !json_hex4(s + 2, &cp)) {
				free(buf);
				return json_fail(
				        jp, MDM_ERR_PARSE, "RFC 8259 section 7: bad \\u escape");
			}
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				free(buf);
				return json_fail(jp, MDM_ERR_PARSE,
				        "RFC 8259 section 8.2: lone low surrogate \\u%04x", cp);
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - jp->pos < 12 || s[6] != '\\' || s[7] != 'u' ||
				        !json_hex4(s + 8, &lo) || lo < 0xdc00 || lo > 0xdfff) {
					free(buf);
					return json_fail(jp, MDM_ERR_PARSE,
					        "RFC 8259 section 8.2: lone high surrogate \\u%04x",
					        cp);
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				jp->pos += 6;
			}
			o += json_put_utf8(buf + o, cp);
			jp->pos += 6;
			continue;
		default:
			free(buf);
			return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 7: bad escape");
		}
		jp->pos += 2;
	}
	buf[o] = '\0';
	jp->pos = end + 1;
	*out = buf;
	*outlen = o;
	return MDM_OK;
}

static int json_digit(const struct json_parser *jp, size_t i)
{
	return i < jp->len && jp->p[i] >= '0' && jp->p[i] <= '9';
}

/* RFC 8259 section 6: number = [ minus ] int [ frac ] [ exp ]. */
MDM_WUR static mdm_err json_number_parse(struct json_parser *jp, json_value *v)
{
	size_t i = jp->pos, start = jp->pos;

	if (i < jp->len && jp->p[i] == '-')
		i++;
	if (!json_digit(jp, i))
		return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 6: bad number");
	if (jp->p[i] == '0') {
		i++;
		if (json_digit(jp, i))
			return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 6: leading zero");
	} else
		while (json_digit(jp, i))
			i++;
	if (i < jp->len && jp->p[i] == '.') {
		i++;
		if (!json_digit(jp, i))
			return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 6: bad fraction");
		while (json_digit(jp, i))
			i++;
	}
	if (i < jp->len && (jp->p[i] == 'e' || jp->p[i] == 'E')) {
		i++;
		if (i < jp->len && (jp->p[i] == '+' || jp->p[i] == '-'))
			i++;
		if (!json_digit(jp, i))
			return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 6: bad exponent");
		while (json_digit(jp, i))
			i++;
	}
	if ((v->str = malloc(i - start + 1)) == NULL)
		return MDM_ERR_NOMEM;
	memcpy(v->str, jp->p + start, i - start);
	v->str[i - start] = '\0';
	v->len = i - start;
	jp->pos = i;
	return MDM_OK;
}

MDM_WUR static mdm_err json_push(json_value *v, json_value *child, char *name, size_t namelen)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		json_value **it;
		if ((it = realloc(v->item, cap * sizeof(*it))) == NULL)
			return MDM_ERR_NOMEM;
		v->item = it;
		if (v->type == JSON_OBJECT) {
			char **nm;
			size_t *nl;
			if ((nm = realloc(v->name, cap * sizeof(*nm))) == NULL)
				return MDM_ERR_NOMEM;
			v->name = nm;
			if ((nl = realloc(v->namelen, cap * sizeof(*nl))) == NULL)
				return MDM_ERR_NOMEM;
			v->namelen = nl;
		}
		v->cap = cap;
	}
	v->item[v->n] = child;
	if (v->type == JSON_OBJECT) {
		v->name[v->n] = name;
		v->namelen[v->n] = namelen;
	}
	v->n++;
	return MDM_OK;
}

MDM_WUR static mdm_err json_array_parse(struct json_parser *jp, int depth, json_value *v)
{
	mdm_err rc;

	jp->pos++; /* '[' */
	json_skip_ws(jp);
	if (jp->pos < jp->len && jp->p[jp->pos] == ']') {
		jp->pos++;
		return MDM_OK;
	}
	for (;;) {
		json_value *child = NULL;
		if ((rc = json_value_parse(jp, depth + 1, &child)) != MDM_OK)
			return rc;
		if ((rc = json_push(v, child, NULL, 0)) != MDM_OK) {
			json_free(child);
			return rc;
		}
		json_skip_ws(jp);
		if (jp->pos < jp->len && jp->p[jp->pos] == ',') {
			jp->pos++;
			continue;
		}
		if (jp->pos < jp->len && jp->p[jp->pos] == ']') {
			jp->pos++;
			return MDM_OK;
		}
		return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 5: expected ',' or ']'");
	}
}

MDM_WUR static mdm_err json_object_parse(struct json_parser *jp, int depth, json_value *v)
{
	mdm_err rc;

	jp->pos++; /* '{' */
	json_skip_ws(jp);
	if (jp->pos < jp->len && jp->p[jp->pos] == '}') {
		jp->pos++;
		return MDM_OK;
	}
	for (;;) {
		json_value *child = NULL;
		char *name = NULL;
		size_t namelen = 0, at;

		json_skip_ws(jp);
		if (jp->pos >= jp->len || jp->p[jp->pos] != '"')
			return json_fail(
			        jp, MDM_ERR_PARSE, "RFC 8259 section 4: expected a member name");
		at = jp->pos;
		if ((rc = json_string_parse(jp, &name, &namelen)) != MDM_OK)
			return rc;
		for (size_t i = 0; i < v->n; i++)
			if (v->namelen[i] == namelen && memcmp(v->name[i], name, namelen) == 0) {
				free(name);
				jp->pos = at;
				return json_fail(jp, MDM_ERR_PARSE,
				        "RFC 8259 section 4, RFC 7515 section 5.2: duplicate "
				        "member "
				        "name");
			}
		json_skip_ws(jp);
		if (jp->pos >= jp->len || jp->p[jp->pos] != ':') {
			free(name);
			return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 4: expected ':'");
		}
		jp->pos++;
		if ((rc = json_value_parse(jp, depth + 1, &child)) != MDM_OK) {
			free(name);
			return rc;
		}
		if ((rc = json_push(v, child, name, namelen)) != MDM_OK) {
			free(name);
			json_free(child);
			return rc;
		}
		json_skip_ws(jp);
		if (jp->pos < jp->len && jp->p[jp->pos] == ',') {
			jp->pos++;
			continue;
		}
		if (jp->pos < jp->len && jp->p[jp->pos] == '}') {
			jp->pos++;
			return MDM_OK;
		}
		return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 4: expected ',' or '}'");
	}
}

static int json_literal(struct json_parser *jp, const char *lit)
{
	size_t n = strlen(lit);

	if (jp->len - jp->pos < n || memcmp(jp->p + jp->pos, lit, n) != 0)
		return 0;
	jp->pos += n;
	return 1;
}

MDM_WUR static mdm_err json_value_parse(struct json_parser *jp, int depth, json_value **out)
{
	json_value *v = NULL;
	mdm_err rc;
	unsigned char c;

	*out = NULL;
	json_skip_ws(jp);
	if (jp->pos >= jp->len)
		return json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 2: expected a value");
	c = jp->p[jp->pos];
	if ((c == '[' || c == '{') && depth >= MDM_JSON_MAX_DEPTH)
		return json_fail(jp, MDM_ERR_LIMIT, "nested deeper than %d", MDM_JSON_MAX_DEPTH);
	switch (c) {
	case '{':
		if ((rc = json_new(jp, JSON_OBJECT, &v)) == MDM_OK)
			rc = json_object_parse(jp, depth, v);
		break;
	case '[':
		if ((rc = json_new(jp, JSON_ARRAY, &v)) == MDM_OK)
			rc = json_array_parse(jp, depth, v);
		break;
	case '"':
		if ((rc = json_new(jp, JSON_STRING, &v)) == MDM_OK)
			rc = json_string_parse(jp, &v->str, &v->len);
		break;
	case 't':
	case 'f':
	case 'n':
		if ((rc = json_new(jp, c == 'n' ? JSON_NULL : JSON_BOOL, &v)) != MDM_OK)
			break;
		v->b = c == 't';
		if (!json_literal(jp, c == 't' ? "true" : c == 'f' ? "false" : "null"))
			rc = json_fail(jp, MDM_ERR_PARSE, "RFC 8259 section 3: unknown literal");
		break;
	default:
		if (c != '-' && (c < '0' || c > '9')) {
			rc = json_fail(
			        jp, MDM_ERR_PARSE, "RFC 8259 section 3: unexpected byte 0x%02x", c);
			break;
		}
		if ((rc = json_new(jp, JSON_NUMBER, &v)) == MDM_OK)
			rc = json_number_parse(jp, v);
		break;
	}
	if (rc != MDM_OK) {
		json_free(v);
		return rc;
	}
	*out = v;
	return MDM_OK;
}

mdm_err json_parse(const char *p, size_t len, json_value **out, char *err, size_t errlen)
{
	struct json_parser jp = {(const unsigned char *)p, len, 0, 0, err, errlen};
	json_value *v = NULL;
	mdm_err rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (p == NULL && len > 0)
		return MDM_ERR_INVAL;
	if (len > MDM_JSON_MAX_BYTES)
		return json_fail(
		        &jp, MDM_ERR_LIMIT, "text of %zu bytes, over %d", len, MDM_JSON_MAX_BYTES);
	if ((rc = json_value_parse(&jp, 0, &v)) != MDM_OK)
		return rc;
	json_skip_ws(&jp);
	if (jp.pos != jp.len) {
		json_free(v);
		return json_fail(&jp, MDM_ERR_PARSE, "RFC 8259 section 2: bytes after the value");
	}
	*out = v;
	return MDM_OK;
}

json_type json_type_of(const json_value *v)
{
	return v == NULL ? JSON_NULL : v->type;
}

const json_value *json_get(const json_value *obj, const char *name)
{
	size_t n;

	if (obj == NULL || obj->type != JSON_OBJECT || name == NULL)
		return NULL;
	n = strlen(name);
	for (size_t i = 0; i < obj->n; i++)
		if (obj->namelen[i] == n && memcmp(obj->name[i], name, n) == 0)
			return obj->item[i];
	return NULL;
}

const char *json_string(const json_value *v, size_t *len)
{
	if (len != NULL)
		*len = 0;
	if (v == NULL || v->type != JSON_STRING)
		return NULL;
	if (len != NULL)
		*len = v->len;
	return v->str;
}

const char *json_get_cstr(const json_value *obj, const char *name)
{
	size_t n;
	const char *s = json_string(json_get(obj, name), &n);

	if (s == NULL || strlen(s) != n)
		return NULL;
	return s;
}

int json_bool(const json_value *v, int *out)
{
	if (v == NULL || v->type != JSON_BOOL)
		return 0;
	*out = v->b;
	return 1;
}

int json_int64(const json_value *v, int64_t *out)
{
	const char *s;
	int neg = 0;
	uint64_t acc = 0, lim;

	if (v == NULL || v->type != JSON_NUMBER)
		return 0;
	s = v->str;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *s != '\0'; s++) {
		unsigned d;
		if (*s < '0' || *s > '9')
			return 0; /* a fraction or an exponent */
		d = (unsigned)(*s - '0');
		if (acc > (lim - d) / 10)
			return 0;
		acc = acc * 10 + d;
	}
	if (neg)
		*out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
	else
		*out = (int64_t)acc;
	return 1;
}

const char *json_number_text(const json_value *v)
{
	return v != NULL && v->type == JSON_NUMBER ? v->str : NULL;
}

size_t json_array_len(const json_value *v)
{
	return v != NULL && v->type == JSON_ARRAY ? v->n : 0;
}

const json_value *json_array_at(const json_value *v, size_t i)
{
	return v != NULL && v->type == JSON_ARRAY && i < v->n ? v->item[i] : NULL;
}

size_t json_object_len(const json_value *v)
{
	return v != NULL && v->type == JSON_OBJECT ? v->n : 0;
}

const json_value *json_object_at(const json_value *v, size_t i, const char **name)
{
	if (name != NULL)
		*name = NULL;
	if (v == NULL || v->type != JSON_OBJECT || i >= v->n)
		return NULL;
	if (name != NULL)
		*name = v->name[i];
	return v->item[i];
}

mdm_err json_quote(const char *s, size_t len, char **out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t o = 0, n;
	char *buf;

	*out = NULL;
	if (s == NULL && len > 0)
		return MDM_ERR_INVAL;
	/* Each byte becomes at most 6 ("\u001f"), plus the quotes and the NUL. */
	if (len > (SIZE_MAX - 3) / 6)
		return MDM_ERR_LIMIT;
	if ((buf = malloc(len * 6 + 3)) == NULL)
		return MDM_ERR_NOMEM;
	buf[o++] = '"';
	for (size_t i = 0; i < len; i += n) {
		unsigned char c = u[i];
		n = 1;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20) {
			const char *short_esc = NULL;
			switch (c) {
			case '\b':
				short_esc = "\\b";
				break;
			case '\f':
				short_esc = "\\f";
				break;
			case '\n':
				short_esc = "\\n";
				break;
			case '\r':
				short_esc = "\\r";
				break;
			case '\t':
				short_esc = "\\t";
				break;
			default:
				break;
			}
			if (short_esc != NULL) {
				memcpy(buf + o, short_esc, 2);
				o += 2;
			} else {
				memcpy(buf + o, "\\u00", 4);
				buf[o + 4] = hex[c >> 4];
				buf[o + 5] = hex[c & 0xf];
				o += 6;
			}
		} else if (c < 0x80)
			buf[o++] = (char)c;
		else {
			if ((n = json_utf8_len(u + i, len - i)) == 0) {
				free(buf);
				return MDM_ERR_INVAL;
			}
			memcpy(buf + o, u + i, n);
			o += n;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	*out = buf;
	return MDM_OK;
}
