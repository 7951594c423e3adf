/*
 * The plist writer: a tree (lib/plist.c) as Apple's XML form, the layout
 * CFPropertyList writes (tab indentation, <data> wrapped at 76 columns
 * counting a tab as eight), dict keys in insertion order.  One bounded
 * buffer; text XML 1.0 cannot carry, dates outside years 0000-9999 and
 * trees deeper than PLIST_MAX_DEPTH are refused rather than written.
 */
#include "mdm_limits.h"
#include "plist_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char plist_b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The date of a day since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm). */
static void plist_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* The one bounded writer: every append is checked, the first failure sticks. */
struct plist_buf {
	char *p;
	size_t len, cap;
	mdm_err err;
};

static void plist_buf_add(struct plist_buf *b, const char *s, size_t n)
{
	size_t need, ncap;
	char *np;

	if (b->err != MDM_OK)
		return;
	if (n > SIZE_MAX - 1 - b->len) {
		b->err = MDM_ERR_NOMEM;
		return;
	}
	need = b->len + n + 1;
	if (need > b->cap) {
		ncap = b->cap == 0 ? 1024 : b->cap;
		while (ncap < need)
			ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->err = MDM_ERR_NOMEM;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void plist_buf_puts(struct plist_buf *b, const char *s)
{
	plist_buf_add(b, s, strlen(s));
}

static void plist_buf_indent(struct plist_buf *b, size_t n)
{
	static const char tabs[] = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t";
	size_t k;

	while (n > 0) {
		k = n < sizeof(tabs) - 1 ? n : sizeof(tabs) - 1;
		plist_buf_add(b, tabs, k);
		n -= k;
	}
}

static void plist_buf_fail(struct plist_buf *b, mdm_err err)
{
	if (b->err == MDM_OK)
		b->err = err;
}

/*
 * Character data: & < > as entities and CR as a character reference (a
 * raw CR would come back as LF).  Text XML 1.0 cannot carry is refused
 * rather than written into a document nobody can read.
 */
static void plist_write_text(struct plist_buf *b, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0, n;
	uint32_t cp;
	const char *rep;

	while (i < len) {
		if ((n = plist_utf8_len(u + i, len - i, &cp)) == 0 || !plist_xml_char(cp)) {
			plist_buf_fail(b, MDM_ERR_INVAL);
			return;
		}
		switch (cp) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '\r':
			rep = "&#13;";
			break;
		default:
			rep = NULL;
			break;
		}
		if (rep != NULL) {
			plist_buf_add(b, s + run, i - run);
			plist_buf_puts(b, rep);
			run = i + n;
		}
		i += n;
	}
	plist_buf_add(b, s + run, i - run);
}

/*
 * CFPropertyList's layout: lines of 76 columns counting a tab as eight,
 * at most eight tabs of indentation, flushed after the byte that fills
 * the line.
 */
static void plist_write_base64(struct plist_buf *b, const uint8_t *d, size_t len, size_t indent)
{
	char line[80];
	size_t i, pos = 0, maxline;

	if (indent > 8)
		indent = 8;
	maxline = 76 - 8 * indent;
	for (i = 0; i < len; i++) {
		switch (i % 3) {
		case 0:
			line[pos++] = plist_b64_alphabet[d[i] >> 2];
			break;
		case 1:
			line[pos++] = plist_b64_alphabet[((d[i - 1] & 0x3) << 4) | (d[i] >> 4)];
			break;
		default:
			line[pos++] = plist_b64_alphabet[((d[i - 1] & 0xf) << 2) | (d[i] >> 6)];
			line[pos++] = plist_b64_alphabet[d[i] & 0x3f];
			break;
		}
		if (pos >= maxline) {
			plist_buf_indent(b, indent);
			plist_buf_add(b, line, pos);
			plist_buf_add(b, "\n", 1);
			pos = 0;
		}
	}
	switch (i % 3) {
	case 1:
		line[pos++] = plist_b64_alphabet[(d[i - 1] & 0x3) << 4];
		line[pos++] = '=';
		line[pos++] = '=';
		break;
	case 2:
		line[pos++] = plist_b64_alphabet[(d[i - 1] & 0xf) << 2];
		line[pos++] = '=';
		break;
	default:
		break;
	}
	if (pos > 0) {
		plist_buf_indent(b, indent);
		plist_buf_add(b, line, pos);
		plist_buf_add(b, "\n", 1);
	}
}

static void plist_write_date(struct plist_buf *b, int64_t t)
{
	int64_t days = t / 86400, secs = t % 86400, y;
	unsigned m, d;
	char tmp[64];

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	plist_civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		plist_buf_fail(b, MDM_ERR_INVAL);
		return;
	}
	snprintf(tmp, sizeof(tmp), "<date>%04d-%02u-%02uT%02d:%02d:%02dZ</date>\n", (int)y, m, d,
	        (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
	plist_buf_puts(b, tmp);
}

static void plist_write(struct plist_buf *b, const plist *p, size_t indent, size_t depth)
{
	char tmp[64];
	size_t i;

	if (b->err != MDM_OK)
		return;
	if (p == NULL) {
		plist_buf_fail(b, MDM_ERR_INVAL);
		return;
	}
	if ((p->type == PLIST_DICT || p->type == PLIST_ARRAY) && depth >= PLIST_MAX_DEPTH) {
		plist_buf_fail(b, MDM_ERR_INVAL);
		return;
	}
	plist_buf_indent(b, indent);
	switch (p->type) {
	case PLIST_DICT:
		if (p->u.dict.n == 0) {
			plist_buf_puts(b, "<dict/>\n");
			break;
		}
		plist_buf_puts(b, "<dict>\n");
		for (i = 0; i < p->u.dict.n; i++) {
			plist_buf_indent(b, indent + 1);
			plist_buf_puts(b, "<key>");
			plist_write_text(b, p->u.dict.kv[i].key, p->u.dict.kv[i].keylen);
			plist_buf_puts(b, "</key>\n");
			plist_write(b, p->u.dict.kv[i].val, indent + 1, depth + 1);
		}
		plist_buf_indent(b, indent);
		plist_buf_puts(b, "</dict>\n");
		break;
	case PLIST_ARRAY:
		if (p->u.arr.n == 0) {
			plist_buf_puts(b, "<array/>\n");
			break;
		}
		plist_buf_puts(b, "<array>\n");
		for (i = 0; i < p->u.arr.n; i++)
			plist_write(b, p->u.arr.v[i], indent + 1, depth + 1);
		plist_buf_indent(b, indent);
		plist_buf_puts(b, "</array>\n");
		break;
	case PLIST_STRING:
		plist_buf_puts(b, "<string>");
		plist_write_text(b, p->u.str.s, p->u.str.len);
		plist_buf_puts(b, "</string>\n");
		break;
	case PLIST_INTEGER:
		if (p->u.num.big)
			snprintf(tmp, sizeof(tmp), "<integer>%" PRIu64 "</integer>\n", p->u.num.u);
		else
			snprintf(tmp, sizeof(tmp), "<integer>%" PRId64 "</integer>\n", p->u.num.s);
		plist_buf_puts(b, tmp);
		break;
	case PLIST_REAL:
		/* %.17g reads back to the same double (C locale, as FastCGI programs run). */
		if (isnan(p->u.real))
			plist_buf_puts(b, "<real>nan</real>\n");
		else if (isinf(p->u.real))
			plist_buf_puts(b,
			        p->u.real > 0 ? "<real>+infinity</real>\n"
			                      : "<real>-infinity</real>\n");
		else {
			snprintf(tmp, sizeof(tmp), "<real>%.17g</real>\n", p->u.real);
			plist_buf_puts(b, tmp);
		}
		break;
	case PLIST_BOOLEAN:
		plist_buf_puts(b, p->u.boolean ? "<true/>\n" : "<false/>\n");
		break;
	case PLIST_DATE:
		plist_write_date(b, p->u.date);
		break;
	case PLIST_DATA:
		plist_buf_puts(b, "<data>\n");
		plist_write_base64(b, p->u.data.p, p->u.data.len, indent);
		plist_buf_indent(b, indent);
		plist_buf_puts(b, "</data>\n");
		break;
	default:
		plist_buf_fail(b, MDM_ERR_INVAL);
		break;
	}
}

mdm_err plist_serialize(const plist *p, char **out, size_t *outlen)
{
	struct plist_buf b = {NULL, 0, 0, MDM_OK};

	if (out != NULL)
		*out = NULL;
	if (outlen != NULL)
		*outlen = 0;
	if (p == NULL || out == NULL)
		return MDM_ERR_INVAL;
	plist_buf_puts(&b,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
	        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
	        "<plist version=\"1.0\">\n");
	plist_write(&b, p, 0, 0);
	plist_buf_puts(&b, "</plist>\n");
	if (b.err != MDM_OK) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	if (outlen != NULL)
		*outlen = b.len;
	return MDM_OK;
}
