/*
 * The little JSON a device's Declarative Management client reads and
 * writes (RFC 8259): the server's TokensResponse, DeclarationItemsResponse
 * and declarations, and the StatusReport it sends.  A reader of exactly
 * RFC 8259 (no comments, no trailing commas, no duplicate names, at most
 * SIM_JSON_DEPTH levels) and a string quoter; the simulator judges the
 * server's answers with it, so it is strict.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIM_JSON_DEPTH 64

struct jp {
	const char *start, *p, *end, *what;
};

static void jp_fail(const struct jp *j, const char *why) SIM_NORETURN;
static void jp_fail(const struct jp *j, const char *why)
{
	sim_fail(
	        "%s: not JSON (RFC 8259): %s at offset %ld", j->what, why, (long)(j->p - j->start));
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) >= n && memcmp(j->p, lit, n) == 0) {
		j->p += n;
		return 1;
	}
	return 0;
}

static void utf8_put(struct sim_buf *b, unsigned long c)
{
	uint8_t u[4];
	size_t n;

	if (c < 0x80) {
		u[0] = (uint8_t)c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = (uint8_t)(0xC0 | (c >> 6));
		u[1] = (uint8_t)(0x80 | (c & 0x3F));
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (uint8_t)(0xE0 | (c >> 12));
		u[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
		u[2] = (uint8_t)(0x80 | (c & 0x3F));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xF0 | (c >> 18));
		u[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
		u[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
		u[3] = (uint8_t)(0x80 | (c & 0x3F));
		n = 4;
	}
	sim_buf_append(b, u, n);
}

static unsigned long jp_hex4(struct jp *j)
{
	unsigned long v = 0;

	if (j->end - j->p < 4)
		jp_fail(j, "short \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = *j->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned long)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned long)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned long)(c - 'A' + 10);
		else
			jp_fail(j, "bad \\u escape");
	}
	return v;
}

static char *jp_string(struct jp *j)
{
	struct sim_buf b = {NULL, 0};
	char *s;

	if (j->p >= j->end || *j->p != '"')
		jp_fail(j, "a string was expected");
	j->p++;
	for (;;) {
		unsigned char c;

		if (j->p >= j->end)
			jp_fail(j, "unterminated string");
		c = (unsigned char)*j->p++;
		if (c == '"')
			break;
		if (c < 0x20)
			jp_fail(j, "control character in a string");
		if (c != '\\') {
			sim_buf_append(&b, &c, 1);
			continue;
		}
		if (j->p >= j->end)
			jp_fail(j, "unterminated escape");
		c = (unsigned char)*j->p++;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			sim_buf_append(&b, &c, 1);
			break;
		case 'b':
			sim_buf_append(&b, "\b", 1);
			break;
		case 'f':
			sim_buf_append(&b, "\f", 1);
			break;
		case 'n':
			sim_buf_append(&b, "\n", 1);
			break;
		case 'r':
			sim_buf_append(&b, "\r", 1);
			break;
		case 't':
			sim_buf_append(&b, "\t", 1);
			break;
		case 'u': {
			unsigned long u = jp_hex4(j);

			if (u >= 0xD800 && u <= 0xDBFF) {
				unsigned long lo;

				if (!jp_lit(j, "\\u"))
					jp_fail(j, "lone surrogate");
				lo = jp_hex4(j);
				if (lo < 0xDC00 || lo > 0xDFFF)
					jp_fail(j, "bad surrogate pair");
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
			} else if (u >= 0xDC00 && u <= 0xDFFF) {
				jp_fail(j, "lone surrogate");
			}
			utf8_put(&b, u);
			break;
		}
		default:
			jp_fail(j, "unknown escape");
		}
	}
	s = sim_xmalloc(b.len + 1);
	if (b.len > 0)
		memcpy(s, b.p, b.len);
	s[b.len] = '\0';
	sim_buf_free(&b);
	return s;
}

static struct sim_json *jp_value(struct jp *j, int depth);

static void jp_add(struct sim_json *v, char *key, struct sim_json *kid)
{
	v->kids = realloc(v->kids, (v->n + 1) * sizeof(*v->kids));
	v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
	if (v->kids == NULL || v->keys == NULL)
		sim_fail("out of memory");
	v->kids[v->n] = kid;
	v->keys[v->n] = key;
	v->n++;
}

static struct sim_json *jp_value(struct jp *j, int depth)
{
	struct sim_json *v = sim_xmalloc(sizeof(*v));

	memset(v, 0, sizeof(*v));
	if (depth > SIM_JSON_DEPTH)
		jp_fail(j, "nested too deeply");
	jp_ws(j);
	if (j->p >= j->end)
		jp_fail(j, "a value was expected");
	if (*j->p == '{' || *j->p == '[') {
		int obj = *j->p == '{';

		v->type = obj ? SIM_JSON_OBJECT : SIM_JSON_ARRAY;
		j->p++;
		jp_ws(j);
		if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
			j->p++;
			return v;
		}
		for (;;) {
			char *key = NULL;

			jp_ws(j);
			if (obj) {
				key = jp_string(j);
				if (sim_json_get(v, key) != NULL)
					jp_fail(j, "a name twice in an object");
				jp_ws(j);
				if (j->p >= j->end || *j->p++ != ':')
					jp_fail(j, "':' was expected");
			}
			jp_add(v, key, jp_value(j, depth + 1));
			jp_ws(j);
			if (j->p < j->end && *j->p == ',') {
				j->p++;
				continue;
			}
			if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
				j->p++;
				return v;
			}
			jp_fail(j, obj ? "',' or '}' was expected" : "',' or ']' was expected");
		}
	}
	if (*j->p == '"') {
		v->type = SIM_JSON_STRING;
		v->str = jp_string(j);
	} else if (jp_lit(j, "true")) {
		v->type = SIM_JSON_BOOL;
		v->b = 1;
	} else if (jp_lit(j, "false")) {
		v->type = SIM_JSON_BOOL;
	} else if (jp_lit(j, "null")) {
		v->type = SIM_JSON_NULL;
	} else {
		const char *s = j->p;
		char buf[64], *endp;

		if (j->p < j->end && *j->p == '-')
			j->p++;
		if (j->p >= j->end || *j->p < '0' || *j->p > '9')
			jp_fail(j, "unexpected character");
		while (j->p < j->end && strchr("0123456789.eE+-", *j->p) != NULL)
			j->p++;
		if ((size_t)(j->p - s) >= sizeof(buf))
			jp_fail(j, "number too long");
		memcpy(buf, s, (size_t)(j->p - s));
		buf[j->p - s] = '\0';
		v->type = SIM_JSON_NUMBER;
		v->num = strtod(buf, &endp);
		if (*endp != '\0')
			jp_fail(j, "bad number");
	}
	return v;
}

struct sim_json *sim_json_parse(const void *p, size_t len, const char *what)
{
	struct jp j = {p, p, (const char *)p + len, what};
	struct sim_json *v;

	if (p == NULL || len == 0)
		sim_fail("%s: empty, where JSON was expected", what);
	v = jp_value(&j, 0);
	jp_ws(&j);
	if (j.p != j.end)
		jp_fail(&j, "text after the value");
	return v;
}

const struct sim_json *sim_json_get(const struct sim_json *v, const char *key)
{
	if (v == NULL || v->type != SIM_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->keys[i], key) == 0)
			return v->kids[i];
	return NULL;
}

const char *sim_json_str(const struct sim_json *v)
{
	return v != NULL && v->type == SIM_JSON_STRING ? v->str : NULL;
}

void sim_json_free(struct sim_json *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->n; i++) {
		sim_json_free(v->kids[i]);
		free(v->keys[i]);
	}
	free(v->kids);
	free(v->keys);
	free(v->str);
	free(v);
}

void sim_json_quote(struct sim_buf *b, const char *s)
{
	sim_buf_append(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		char esc[8];

		if (*c == '"' || *c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*c;
			sim_buf_append(b, esc, 2);
		} else if (*c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *c);
			sim_buf_append(b, esc, 6);
		} else {
			sim_buf_append(b, c, 1);
		}
	}
	sim_buf_append(b, "\"", 1);
}

void sim_buf_puts(struct sim_buf *b, const char *s)
{
	sim_buf_append(b, s, strlen(s));
}
