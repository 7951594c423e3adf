/*
 * The plist parser, the only libxml2 user in lib/: one XML document into
 * a tree (lib/plist.c).  libxml2's xmlTextReader runs streaming, so every
 * cap is checked before our tree grows, under an allow-list of the eight
 * plist types; the raw bytes are checked first (size, UTF-8, prolog,
 * attribute and comment counts) so that entity declarations and a DTD
 * internal subset never reach libxml2.  Refusals are reported once, with
 * the rule and the line.
 */
#include "base64.h"
#include "log.h"
#include "mdm_limits.h"
#include "plist_int.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlreader.h>

/* libxml2 2.12 made the structured error argument const. */
#if LIBXML_VERSION >= 21200
typedef const xmlError *plist_xml_err;
#else
typedef xmlErrorPtr plist_xml_err;
#endif

/* Numbers and dates are short; longer text is refused before strtod sees it. */
#define PLIST_MAX_SCALAR 128
/* Messages quote at most this many bytes of untrusted text. */
#define PLIST_MAX_QUOTE 48
/* Duplicate keys are found by sorting above this many keys, by pairs below. */
#define PLIST_DUP_SORT_MIN 16

/* XML whitespace (the S production). */
static int plist_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Untrusted text made safe to quote in a message: printable ASCII, bounded. */
static void plist_quote(char *dst, size_t cap, const char *s, size_t len)
{
	size_t i, n = 0;

	if (cap == 0)
		return;
	for (i = 0; i < len && n + 4 < cap && i < PLIST_MAX_QUOTE; i++) {
		unsigned char c = (unsigned char)s[i];

		dst[n++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	if (i < len && n + 4 <= cap) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t plist_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int plist_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

enum plist_elem {
	PE_NONE,
	PE_PLIST,
	PE_DICT,
	PE_ARRAY,
	PE_KEY,
	PE_STRING,
	PE_INTEGER,
	PE_REAL,
	PE_TRUE,
	PE_FALSE,
	PE_DATE,
	PE_DATA,
	PE__MAX
};

static const char *const plist_elem_names[PE__MAX] = {
        [PE_NONE] = "",
        [PE_PLIST] = "plist",
        [PE_DICT] = "dict",
        [PE_ARRAY] = "array",
        [PE_KEY] = "key",
        [PE_STRING] = "string",
        [PE_INTEGER] = "integer",
        [PE_REAL] = "real",
        [PE_TRUE] = "true",
        [PE_FALSE] = "false",
        [PE_DATE] = "date",
        [PE_DATA] = "data",
};

struct plist_frame {
	enum plist_elem kind;
	plist *node; /* dict or array being filled; owned by its parent */
	char *key;   /* dict: a <key> waiting for its value */
	size_t keylen;
	int has_value; /* plist: its one value was seen */
};

struct plist_parser {
	xmlTextReaderPtr r;
	/* <plist>, PLIST_MAX_DEPTH containers and one leaf. */
	struct plist_frame st[PLIST_MAX_DEPTH + 2];
	size_t sp;
	plist *root;
	int done;
	size_t nodes;
	char *text; /* content of the open leaf, NUL-terminated */
	size_t textlen, textcap;
	mdm_err err;
	char *errbuf;
	size_t errlen;
};

static long plist_line(struct plist_parser *ps)
{
	xmlNodePtr n;

	if (ps->r == NULL || (n = xmlTextReaderCurrentNode(ps->r)) == NULL)
		return 0;
	/* On an attribute the "node" may be an xmlNs, which has no line. */
	switch (n->type) {
	case XML_ELEMENT_NODE:
	case XML_TEXT_NODE:
	case XML_CDATA_SECTION_NODE:
	case XML_COMMENT_NODE:
	case XML_PI_NODE:
	case XML_ENTITY_REF_NODE:
		return xmlGetLineNo(n);
	default:
		return 0;
	}
}

/*
 * Records the first refusal in ps->err, which the parse returns; every later
 * one is a consequence of it.  Returns ps->err, which a caller about to
 * return ps->err anyway passes to err_ignore().
 */
static MDM_WUR mdm_err plist_fail(struct plist_parser *ps, mdm_err err, long line, const char *fmt,
        ...) __attribute__((format(printf, 4, 5)));

static MDM_WUR mdm_err plist_fail(
        struct plist_parser *ps, mdm_err err, long line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->err != MDM_OK)
		return ps->err;
	ps->err = err;
	if (ps->errbuf == NULL || ps->errlen == 0)
		return err;
	n = snprintf(ps->errbuf, ps->errlen, "plist: ");
	if (n < 0 || (size_t)n >= ps->errlen)
		return err;
	va_start(ap, fmt);
	vsnprintf(ps->errbuf + n, ps->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	n = (int)strlen(ps->errbuf);
	if (line > 0 && (size_t)n < ps->errlen)
		snprintf(ps->errbuf + n, ps->errlen - (size_t)n, " (line %ld)", line);
	return err;
}

/* Every libxml2 error ends the parse; warnings change nothing we accept. */
static void plist_xml_error(void *arg, plist_xml_err e)
{
	struct plist_parser *ps = arg;
	char msg[128];
	size_t n;

	if (e == NULL || e->level == XML_ERR_WARNING)
		return;
	n = e->message != NULL ? strlen(e->message) : 0;
	while (n > 0 && plist_is_space((unsigned char)e->message[n - 1]))
		n--;
	plist_quote(msg, sizeof(msg), e->message != NULL ? e->message : "", n);
	err_ignore(plist_fail(ps, MDM_ERR_PARSE, e->line, "XML not well-formed: %s", msg));
}

/* Unstructured libxml2 chatter is dropped; real errors arrive structured. */
static void plist_xml_generic(void *arg, const char *fmt, ...)
{
	(void)arg;
	(void)fmt;
}

static pthread_once_t plist_once = PTHREAD_ONCE_INIT;

static void plist_init(void)
{
	xmlInitParser();
}

/*
 * The bytes, before libxml2 sees them: strict UTF-8 carrying only XML 1.0
 * characters (so no NUL, no UTF-16 and no encoding tricks).
 */
static MDM_WUR mdm_err plist_check_chars(struct plist_parser *ps, const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		if (s[i] >= 0x20 && s[i] < 0x80) {
			i++;
			continue;
		}
		if ((n = plist_utf8_len(s + i, len - i, &cp)) == 0)
			return plist_fail(ps, MDM_ERR_PARSE, 0, "invalid UTF-8 at byte %zu", i);
		if (!plist_xml_char(cp))
			return plist_fail(ps, MDM_ERR_PARSE, 0,
			        "character U+%04" PRIX32 " not allowed in XML at byte %zu", cp, i);
		i += n;
	}
	return MDM_OK;
}

static int plist_has(const char *buf, size_t len, size_t pos, const char *lit)
{
	size_t n = strlen(lit);

	return pos <= len && len - pos >= n && memcmp(buf + pos, lit, n) == 0;
}

static size_t plist_skip_space(const char *buf, size_t len, size_t pos)
{
	while (pos < len && plist_is_space((unsigned char)buf[pos]))
		pos++;
	return pos;
}

/* Position just past the first lit at or after pos, or 0 when absent. */
static size_t plist_find(const char *buf, size_t len, size_t pos, const char *lit)
{
	size_t n = strlen(lit);

	for (; pos < len && len - pos >= n; pos++)
		if (memcmp(buf + pos, lit, n) == 0)
			return pos + n;
	return 0;
}

/* <?xml version="1.0" encoding="UTF-8" standalone="..."?>, in [pos, end). */
static MDM_WUR mdm_err plist_check_xmldecl(
        struct plist_parser *ps, const char *buf, size_t pos, size_t end)
{
	while (pos < end) {
		size_t name, namelen, val, vallen;
		char q;

		pos = plist_skip_space(buf, end, pos);
		if (pos == end)
			break;
		name = pos;
		while (pos < end && buf[pos] >= 'a' && buf[pos] <= 'z')
			pos++;
		namelen = pos - name;
		pos = plist_skip_space(buf, end, pos);
		if (namelen == 0 || pos == end || buf[pos] != '=')
			goto bad;
		pos = plist_skip_space(buf, end, pos + 1);
		if (pos == end || (buf[pos] != '"' && buf[pos] != '\''))
			goto bad;
		q = buf[pos++];
		val = pos;
		while (pos < end && buf[pos] != q)
			pos++;
		if (pos == end)
			goto bad;
		vallen = pos++ - val;
		if (namelen == 7 && memcmp(buf + name, "version", 7) == 0) {
			/* XML 1.1 would let character references carry control characters. */
			if (vallen != 3 || memcmp(buf + val, "1.0", 3) != 0)
				return plist_fail(ps, MDM_ERR_PARSE, 1, "XML version must be 1.0");
		} else if (namelen == 8 && memcmp(buf + name, "encoding", 8) == 0) {
			if (vallen != 5 || strncasecmp(buf + val, "UTF-8", 5) != 0)
				return plist_fail(ps, MDM_ERR_PARSE, 1,
				        "encoding must be UTF-8 (Apple writes nothing else)");
		} else if (!(namelen == 10 && memcmp(buf + name, "standalone", 10) == 0))
			goto bad;
	}
	return MDM_OK;
bad:
	return plist_fail(ps, MDM_ERR_PARSE, 1, "malformed XML declaration");
}

/*
 * The prolog, up to the root element: an optional XML declaration,
 * comments, whitespace and at most one DOCTYPE without an internal
 * subset.  The internal subset is where entities are declared (billion
 * laughs, XXE, parameter entities), so it is refused here and libxml2
 * never sees one.  Anything unexpected is refused rather than passed on.
 */
static MDM_WUR mdm_err plist_check_prolog(struct plist_parser *ps, const char *buf, size_t len)
{
	size_t pos = 0, end;
	int doctype = 0;

	if (plist_has(buf, len, 0, "\xef\xbb\xbf"))
		pos = 3;
	if (plist_has(buf, len, pos, "<?xml") && pos + 5 < len &&
	        plist_is_space((unsigned char)buf[pos + 5])) {
		if ((end = plist_find(buf, len, pos + 5, "?>")) == 0)
			return plist_fail(ps, MDM_ERR_PARSE, 1, "unterminated XML declaration");
		if (plist_check_xmldecl(ps, buf, pos + 5, end - 2) != MDM_OK)
			return ps->err;
		pos = end;
	}
	for (;;) {
		pos = plist_skip_space(buf, len, pos);
		if (plist_has(buf, len, pos, "<!--")) {
			if ((pos = plist_find(buf, len, pos + 4, "-->")) == 0)
				return plist_fail(ps, MDM_ERR_PARSE, 0, "unterminated comment");
		} else if (plist_has(buf, len, pos, "<!DOCTYPE")) {
			if (doctype++)
				return plist_fail(ps, MDM_ERR_PARSE, 0, "more than one DOCTYPE");
			for (pos += 9; pos < len && buf[pos] != '>'; pos++) {
				if (buf[pos] == '[')
					return plist_fail(ps, MDM_ERR_PARSE, 0,
					        "DTD internal subset not allowed "
					        "(entity declarations are refused)");
				if (buf[pos] == '"' || buf[pos] == '\'') {
					char q = buf[pos];

					while (++pos < len && buf[pos] != q)
						continue;
					if (pos == len)
						break;
				}
			}
			if (pos >= len)
				return plist_fail(ps, MDM_ERR_PARSE, 0, "unterminated DOCTYPE");
			pos++;
		} else if (plist_has(buf, len, pos, "<?"))
			return plist_fail(
			        ps, MDM_ERR_PARSE, 0, "processing instructions are not allowed");
		else if (plist_has(buf, len, pos, "<!"))
			return plist_fail(
			        ps, MDM_ERR_PARSE, 0, "markup declarations are not allowed");
		else
			return MDM_OK;
	}
}

/* Position just past the first lit at or after pos, or len when absent. */
static size_t plist_skip_past(const char *buf, size_t len, size_t pos, const char *lit)
{
	size_t end = plist_find(buf, len, pos, lit);

	return end == 0 ? len : end;
}

/*
 * One linear pass over the markup (quoted values honoured) for what
 * libxml2 would pay for before any callback of ours could object:
 *
 * - libxml2 before 2.12 looks for a duplicate attribute by comparing each
 *   one with all before it: a few megabytes of attributes on one tag cost
 *   minutes of CPU.  No element we accept has more than one attribute.
 * - The reader returns to us at element boundaries only, so a run of
 *   comments, CDATA sections or processing instructions becomes libxml2
 *   nodes all at once: their number is capped at PLIST_MAX_NODES too.
 */
static MDM_WUR mdm_err plist_check_markup(struct plist_parser *ps, const char *buf, size_t len)
{
	size_t pos = 0, attrs, other = 0;
	char q;

	while ((pos = plist_find(buf, len, pos, "<")) != 0) {
		if (plist_has(buf, len, pos, "!--"))
			pos = plist_skip_past(buf, len, pos + 3, "-->");
		else if (plist_has(buf, len, pos, "![CDATA["))
			pos = plist_skip_past(buf, len, pos + 8, "]]>");
		else if (plist_has(buf, len, pos, "?"))
			pos = plist_skip_past(buf, len, pos + 1, "?>");
		else {
			for (attrs = 0, q = 0; pos < len; pos++) {
				if (q != 0) {
					if (buf[pos] == q)
						q = 0;
				} else if (buf[pos] == '"' || buf[pos] == '\'')
					q = buf[pos];
				else if (buf[pos] == '=')
					attrs++;
				else if (buf[pos] == '>')
					break;
			}
			if (attrs > 1)
				return plist_fail(ps, MDM_ERR_PARSE, 0,
				        "more than one attribute on an element");
			continue;
		}
		if (++other > PLIST_MAX_NODES)
			return plist_fail(ps, MDM_ERR_LIMIT, 0,
			        "more than %d comments, CDATA sections and processing instructions",
			        PLIST_MAX_NODES);
	}
	return MDM_OK;
}

static enum plist_elem plist_elem_lookup(const char *name)
{
	int i;

	for (i = PE_PLIST; i < PE__MAX; i++)
		if (strcmp(name, plist_elem_names[i]) == 0)
			return (enum plist_elem)i;
	return PE_NONE;
}

static int plist_is_leaf(enum plist_elem k)
{
	return k >= PE_KEY && k < PE__MAX;
}

/* Attaches a new value to the open container; takes v in every case. */
static MDM_WUR mdm_err plist_attach(struct plist_parser *ps, plist *v)
{
	struct plist_frame *top = &ps->st[ps->sp - 1];
	mdm_err err = MDM_OK;

	switch (top->kind) {
	case PE_PLIST:
		ps->root = v;
		top->has_value = 1;
		return MDM_OK;
	case PE_ARRAY:
		err = plist_array_append(top->node, v);
		break;
	case PE_DICT:
		if ((err = plist_dict_push(top->node, top->key, top->keylen, v)) != MDM_OK) {
			plist_free(v);
			break;
		}
		top->key = NULL;
		break;
	default:
		plist_free(v);
		err = MDM_ERR_INTERNAL;
		break;
	}
	if (err != MDM_OK)
		return plist_fail(ps, err, plist_line(ps), "out of memory");
	return MDM_OK;
}

static MDM_WUR mdm_err plist_push(struct plist_parser *ps, enum plist_elem kind, plist *node)
{
	struct plist_frame *f;

	if (ps->sp >= sizeof(ps->st) / sizeof(ps->st[0]))
		return plist_fail(ps, MDM_ERR_INTERNAL, plist_line(ps), "parser stack overflow");
	f = &ps->st[ps->sp++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->node = node;
	ps->textlen = 0;
	if (ps->text != NULL)
		ps->text[0] = '\0';
	return MDM_OK;
}

static MDM_WUR mdm_err plist_text_append(struct plist_parser *ps, const char *s, size_t n)
{
	enum plist_elem kind = ps->st[ps->sp - 1].kind;
	size_t max, need;
	char *nt;

	if (kind == PE_DATA)
		max = PLIST_MAX_BYTES; /* base64 and whitespace; decoded size is checked later */
	else if (kind == PE_STRING || kind == PE_KEY)
		max = PLIST_MAX_STRING;
	else
		max = PLIST_MAX_SCALAR;
	if (n > max || ps->textlen > max - n) {
		if (max == PLIST_MAX_SCALAR)
			return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "<%s> too long",
			        plist_elem_names[kind]);
		return plist_fail(ps, MDM_ERR_LIMIT, plist_line(ps), "<%s> longer than %zu bytes",
		        plist_elem_names[kind], max);
	}
	need = ps->textlen + n + 1;
	if (need > ps->textcap) {
		size_t ncap = ps->textcap == 0 ? 64 : ps->textcap;

		while (ncap < need)
			ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
		if ((nt = realloc(ps->text, ncap)) == NULL)
			return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
		ps->text = nt;
		ps->textcap = ncap;
	}
	memcpy(ps->text + ps->textlen, s, n);
	ps->textlen += n;
	ps->text[ps->textlen] = '\0';
	return MDM_OK;
}

/* Hands the leaf text over (never NULL); the parser starts a new buffer. */
static char *plist_text_take(struct plist_parser *ps, size_t *lenp)
{
	char *t = ps->text, *shrunk;

	if (t == NULL && (t = calloc(1, 1)) == NULL)
		return NULL;
	/* The buffer grew by doubling; the tree keeps only what it needs. */
	if (ps->textcap > ps->textlen + 1 && (shrunk = realloc(t, ps->textlen + 1)) != NULL)
		t = shrunk;
	*lenp = ps->textlen;
	ps->text = NULL;
	ps->textlen = ps->textcap = 0;
	return t;
}

/* The text with surrounding XML whitespace removed, as CFPropertyList reads numbers. */
static const char *plist_trim(const char *s, size_t *lenp)
{
	size_t n = *lenp;

	while (n > 0 && plist_is_space((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && plist_is_space((unsigned char)s[n - 1]))
		n--;
	*lenp = n;
	return s;
}

static MDM_WUR mdm_err plist_leaf_integer(struct plist_parser *ps, plist **out)
{
	size_t n = ps->textlen, i = 0;
	const char *s = plist_trim(ps->text != NULL ? ps->text : "", &n);
	uint64_t v = 0;
	int neg = 0;
	char q[PLIST_MAX_QUOTE + 4];

	if (n > 0 && (s[0] == '-' || s[0] == '+'))
		neg = s[i++] == '-';
	if (i == n)
		goto bad;
	for (; i < n; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9)
			goto bad;
		if (v > (UINT64_MAX - d) / 10)
			goto range;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			goto range;
		*out = plist_new_integer(v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v);
	} else
		*out = plist_new_unsigned(v);
	if (*out == NULL)
		return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
	return MDM_OK;
range:
	plist_quote(q, sizeof(q), s, n);
	return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "<integer> \"%s\" out of range", q);
bad:
	plist_quote(q, sizeof(q), s, n);
	return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "invalid <integer> \"%s\"", q);
}

/*
 * Decimal reals as %.17g writes them, and CFPropertyList's spellings of
 * infinity and NaN.  The syntax is checked here because strtod would also
 * take hex floats and nan(...).  Overflow to infinity is refused.
 */
static MDM_WUR mdm_err plist_leaf_real(struct plist_parser *ps, plist **out)
{
	static const struct {
		const char *s;
		double v;
	} special[] = {
	        {"nan", NAN},
	        {"inf", INFINITY},
	        {"+inf", INFINITY},
	        {"-inf", -INFINITY},
	        {"infinity", INFINITY},
	        {"+infinity", INFINITY},
	        {"-infinity", -INFINITY},
	};
	size_t n = ps->textlen, i = 0, k, digits = 0;
	const char *s = plist_trim(ps->text != NULL ? ps->text : "", &n);
	char tmp[PLIST_MAX_SCALAR + 1], q[PLIST_MAX_QUOTE + 4], *end;
	double v;

	for (k = 0; k < sizeof(special) / sizeof(special[0]); k++)
		if (strlen(special[k].s) == n && strncasecmp(s, special[k].s, n) == 0) {
			v = special[k].v;
			goto make;
		}
	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		goto bad;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			i++;
		if (i == n || s[i] < '0' || s[i] > '9')
			goto bad;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i != n || n >= sizeof(tmp))
		goto bad;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	/* Underflow (ERANGE with a subnormal or zero) is the nearest double: accepted. */
	v = strtod(tmp, &end);
	if (end != tmp + n)
		goto bad;
	if (isinf(v)) {
		plist_quote(q, sizeof(q), s, n);
		return plist_fail(
		        ps, MDM_ERR_PARSE, plist_line(ps), "<real> \"%s\" out of range", q);
	}
make:
	if ((*out = plist_new_real(v)) == NULL)
		return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
	return MDM_OK;
bad:
	plist_quote(q, sizeof(q), s, n);
	return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "invalid <real> \"%s\"", q);
}

static int plist_digits(const char *s, size_t n, unsigned *v)
{
	size_t i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 1;
}

/*
 * Exactly YYYY-MM-DDTHH:MM:SSZ, UTC, every field range-checked and the
 * seconds computed from the fields (timegm would normalise Feb 30).
 */
static MDM_WUR mdm_err plist_leaf_date(struct plist_parser *ps, plist **out)
{
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *s = ps->text != NULL ? ps->text : "";
	unsigned y, mo, d, h, mi, sec, dim;
	char q[PLIST_MAX_QUOTE + 4];

	if (ps->textlen != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
	        s[16] != ':' || s[19] != 'Z' || !plist_digits(s, 4, &y) ||
	        !plist_digits(s + 5, 2, &mo) || !plist_digits(s + 8, 2, &d) ||
	        !plist_digits(s + 11, 2, &h) || !plist_digits(s + 14, 2, &mi) ||
	        !plist_digits(s + 17, 2, &sec))
		goto bad;
	if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59)
		goto bad;
	dim = mdays[mo - 1] + (mo == 2 && plist_leap(y));
	if (d < 1 || d > dim)
		goto bad;
	*out = plist_new_date(plist_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec);
	if (*out == NULL)
		return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
	return MDM_OK;
bad:
	plist_quote(q, sizeof(q), s, ps->textlen);
	return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps),
	        "invalid <date> \"%s\" (want YYYY-MM-DDTHH:MM:SSZ)", q);
}

/* <data>: strict base64 (lib/base64.c), its decoded size capped before allocation. */
static MDM_WUR mdm_err plist_leaf_data(struct plist_parser *ps, plist **out)
{
	const char *s = ps->text != NULL ? ps->text : "";
	uint8_t *buf = NULL;
	size_t olen = 0;
	plist *p = NULL;
	mdm_err rc;

	rc = base64_decode(s, ps->textlen, PLIST_MAX_STRING, &buf, &olen);
	if (rc == MDM_ERR_LIMIT)
		return plist_fail(ps, MDM_ERR_LIMIT, plist_line(ps),
		        "<data> decodes to more than %d bytes", PLIST_MAX_STRING);
	if (rc == MDM_ERR_NOMEM)
		return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
	if (rc != MDM_OK)
		return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "invalid base64 in <data>");
	if ((p = plist_alloc(PLIST_DATA)) == NULL) {
		free(buf);
		return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
	}
	if (olen == 0) {
		free(buf);
		buf = NULL;
	}
	p->u.data.p = buf;
	p->u.data.len = olen;
	*out = p;
	return MDM_OK;
}

/* Closes a leaf: a key waits in its dict, a value joins the open container. */
static MDM_WUR mdm_err plist_end_leaf(struct plist_parser *ps)
{
	enum plist_elem kind = ps->st[ps->sp - 1].kind;
	plist *v = NULL;
	char *t;
	size_t len;

	ps->sp--;
	switch (kind) {
	case PE_KEY:
	case PE_STRING:
		if ((t = plist_text_take(ps, &len)) == NULL)
			return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
		if (kind == PE_KEY) {
			ps->st[ps->sp - 1].key = t;
			ps->st[ps->sp - 1].keylen = len;
			return MDM_OK;
		}
		if ((v = plist_alloc(PLIST_STRING)) == NULL) {
			free(t);
			return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
		}
		v->u.str.s = t;
		v->u.str.len = len;
		break;
	case PE_INTEGER:
		if (plist_leaf_integer(ps, &v) != MDM_OK)
			return ps->err;
		break;
	case PE_REAL:
		if (plist_leaf_real(ps, &v) != MDM_OK)
			return ps->err;
		break;
	case PE_TRUE:
	case PE_FALSE:
		if ((v = plist_new_bool(kind == PE_TRUE)) == NULL)
			return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
		break;
	case PE_DATE:
		if (plist_leaf_date(ps, &v) != MDM_OK)
			return ps->err;
		break;
	case PE_DATA:
		if (plist_leaf_data(ps, &v) != MDM_OK)
			return ps->err;
		break;
	default:
		return plist_fail(ps, MDM_ERR_INTERNAL, 0, "not a leaf");
	}
	return plist_attach(ps, v);
}

static int plist_kv_order(const struct plist_kv *x, const struct plist_kv *y)
{
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);

	if (c != 0)
		return c;
	return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static int plist_kv_cmp(const void *a, const void *b)
{
	return plist_kv_order(
	        *(const struct plist_kv *const *)a, *(const struct plist_kv *const *)b);
}

/*
 * A repeated key is refused (which value would the caller get?).  Large
 * dicts are sorted so a hostile one costs n log n, not n squared.
 */
static MDM_WUR mdm_err plist_check_dups(struct plist_parser *ps, const plist *d)
{
	const struct plist_kv *dup = NULL, **idx = NULL;
	size_t i, j, n = d->u.dict.n;
	char q[PLIST_MAX_QUOTE + 4];

	if (n <= PLIST_DUP_SORT_MIN) {
		for (i = 0; i < n && dup == NULL; i++)
			for (j = i + 1; j < n && dup == NULL; j++)
				if (plist_kv_order(&d->u.dict.kv[i], &d->u.dict.kv[j]) == 0)
					dup = &d->u.dict.kv[i];
	} else {
		if ((idx = calloc(n, sizeof(*idx))) == NULL)
			return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
		for (i = 0; i < n; i++)
			idx[i] = &d->u.dict.kv[i];
		qsort(idx, n, sizeof(*idx), plist_kv_cmp);
		for (i = 1; i < n && dup == NULL; i++)
			if (plist_kv_order(idx[i - 1], idx[i]) == 0)
				dup = idx[i];
		free(idx);
	}
	if (dup == NULL)
		return MDM_OK;
	plist_quote(q, sizeof(q), dup->key, dup->keylen);
	return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "duplicate key \"%s\" in dict", q);
}

static MDM_WUR mdm_err plist_end(struct plist_parser *ps)
{
	struct plist_frame *top = &ps->st[ps->sp - 1];
	char q[PLIST_MAX_QUOTE + 4];

	if (plist_is_leaf(top->kind))
		return plist_end_leaf(ps);
	switch (top->kind) {
	case PE_DICT:
		if (top->key != NULL) {
			plist_quote(q, sizeof(q), top->key, top->keylen);
			return plist_fail(
			        ps, MDM_ERR_PARSE, plist_line(ps), "key \"%s\" without a value", q);
		}
		if (plist_check_dups(ps, top->node) != MDM_OK)
			return ps->err;
		break;
	case PE_ARRAY:
		break;
	case PE_PLIST:
		if (!top->has_value)
			return plist_fail(
			        ps, MDM_ERR_PARSE, plist_line(ps), "<plist> holds no value");
		ps->done = 1;
		break;
	default:
		return plist_fail(ps, MDM_ERR_INTERNAL, 0, "bad frame");
	}
	ps->sp--;
	return MDM_OK;
}

/* <plist> may carry version="1.0" and nothing else; other elements carry nothing. */
static MDM_WUR mdm_err plist_check_attrs(
        struct plist_parser *ps, enum plist_elem kind, const char *name)
{
	char q[PLIST_MAX_QUOTE + 4];
	long line = plist_line(ps); /* before moving onto the attributes */
	int rc;

	if (xmlTextReaderHasAttributes(ps->r) != 1)
		return MDM_OK;
	while ((rc = xmlTextReaderMoveToNextAttribute(ps->r)) == 1) {
		const char *an = (const char *)xmlTextReaderConstName(ps->r);
		const char *av = (const char *)xmlTextReaderConstValue(ps->r);

		if (an == NULL)
			an = "";
		if (kind == PE_PLIST && strcmp(an, "version") == 0) {
			if (av == NULL || strcmp(av, "1.0") != 0) {
				plist_quote(q, sizeof(q), av != NULL ? av : "",
				        av != NULL ? strlen(av) : 0);
				return plist_fail(ps, MDM_ERR_PARSE, line,
				        "<plist version=\"%s\"> is not version 1.0", q);
			}
			continue;
		}
		plist_quote(q, sizeof(q), an, strlen(an));
		return plist_fail(
		        ps, MDM_ERR_PARSE, line, "attribute %s not allowed on <%s>", q, name);
	}
	if (rc < 0 || xmlTextReaderMoveToElement(ps->r) < 0)
		return plist_fail(ps, MDM_ERR_PARSE, line, "unreadable attributes");
	return MDM_OK;
}

static MDM_WUR mdm_err plist_start(struct plist_parser *ps)
{
	const char *raw = (const char *)xmlTextReaderConstName(ps->r);
	char name[PLIST_MAX_QUOTE + 4];
	enum plist_elem kind;
	struct plist_frame *top;
	int empty;
	plist *node;

	if (raw == NULL)
		raw = "";
	plist_quote(name, sizeof(name), raw, strlen(raw));
	kind = plist_elem_lookup(raw);
	if ((empty = xmlTextReaderIsEmptyElement(ps->r)) < 0)
		return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "unreadable element");
	if (ps->done)
		return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "<%s> after </plist>", name);
	if (ps->sp == 0 && kind != PE_PLIST)
		return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps),
		        "root element is <%s>, not <plist>", name);
	if (kind == PE_NONE)
		return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "unknown element <%s>", name);
	if (plist_check_attrs(ps, kind, name) != MDM_OK)
		return ps->err;
	if (ps->sp == 0) {
		if (plist_push(ps, PE_PLIST, NULL) != MDM_OK)
			return ps->err;
		return empty ? plist_end(ps) : MDM_OK;
	}
	top = &ps->st[ps->sp - 1];
	if (kind == PE_PLIST || plist_is_leaf(top->kind))
		return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "<%s> not allowed inside <%s>",
		        name, plist_elem_names[top->kind]);
	if (top->kind == PE_PLIST && top->has_value)
		return plist_fail(
		        ps, MDM_ERR_PARSE, plist_line(ps), "more than one value in <plist>");
	if (top->kind == PE_DICT && top->key == NULL && kind != PE_KEY)
		return plist_fail(
		        ps, MDM_ERR_PARSE, plist_line(ps), "<%s> in dict without a <key>", name);
	if (top->kind == PE_DICT && top->key != NULL && kind == PE_KEY) {
		plist_quote(name, sizeof(name), top->key, top->keylen);
		return plist_fail(
		        ps, MDM_ERR_PARSE, plist_line(ps), "key \"%s\" without a value", name);
	}
	if (top->kind != PE_DICT && kind == PE_KEY)
		return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "<key> outside a dict");
	if (kind != PE_KEY) {
		if (ps->nodes >= PLIST_MAX_NODES)
			return plist_fail(ps, MDM_ERR_LIMIT, plist_line(ps), "more than %d values",
			        PLIST_MAX_NODES);
		ps->nodes++;
	}
	node = NULL;
	if (kind == PE_DICT || kind == PE_ARRAY) {
		/* Open containers, excluding <plist>, are ps->sp - 1. */
		if (ps->sp - 1 >= PLIST_MAX_DEPTH)
			return plist_fail(ps, MDM_ERR_LIMIT, plist_line(ps),
			        "nesting deeper than %d", PLIST_MAX_DEPTH);
		if ((node = plist_alloc(kind == PE_DICT ? PLIST_DICT : PLIST_ARRAY)) == NULL)
			return plist_fail(ps, MDM_ERR_NOMEM, 0, "out of memory");
		if (plist_attach(ps, node) != MDM_OK)
			return ps->err;
	}
	if (plist_push(ps, kind, node) != MDM_OK)
		return ps->err;
	return empty ? plist_end(ps) : MDM_OK;
}

static MDM_WUR mdm_err plist_text(struct plist_parser *ps, int type)
{
	const char *v = (const char *)xmlTextReaderConstValue(ps->r);
	enum plist_elem kind = ps->sp > 0 ? ps->st[ps->sp - 1].kind : PE_NONE;
	size_t n, i;

	if (v == NULL)
		v = "";
	n = strlen(v);
	if (plist_is_leaf(kind) && kind != PE_TRUE && kind != PE_FALSE)
		return plist_text_append(ps, v, n);
	for (i = 0; i < n; i++)
		if (!plist_is_space((unsigned char)v[i]))
			break;
	if (i == n && type != XML_READER_TYPE_CDATA)
		return MDM_OK;
	return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "text not allowed %s<%s>",
	        kind == PE_NONE ? "outside " : "inside ",
	        kind == PE_NONE ? "plist" : plist_elem_names[kind]);
}

static MDM_WUR mdm_err plist_node(struct plist_parser *ps)
{
	int type = xmlTextReaderNodeType(ps->r);
	const char *name;
	char q[PLIST_MAX_QUOTE + 4];

	switch (type) {
	case XML_READER_TYPE_ELEMENT:
		return plist_start(ps);
	case XML_READER_TYPE_END_ELEMENT:
		if (ps->sp == 0)
			return plist_fail(ps, MDM_ERR_INTERNAL, plist_line(ps), "unbalanced end");
		return plist_end(ps);
	case XML_READER_TYPE_TEXT:
	case XML_READER_TYPE_CDATA:
	case XML_READER_TYPE_WHITESPACE:
	case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
		return plist_text(ps, type);
	case XML_READER_TYPE_COMMENT:
		/* Comments carry no data; CFPropertyList skips them too. */
		return MDM_OK;
	case XML_READER_TYPE_DOCUMENT_TYPE:
		/* The prolog check already refused internal subsets. */
		if (ps->sp != 0 || ps->done)
			return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps), "misplaced DOCTYPE");
		return MDM_OK;
	case XML_READER_TYPE_ENTITY_REFERENCE:
		name = (const char *)xmlTextReaderConstName(ps->r);
		plist_quote(
		        q, sizeof(q), name != NULL ? name : "", name != NULL ? strlen(name) : 0);
		return plist_fail(
		        ps, MDM_ERR_PARSE, plist_line(ps), "entity reference &%s; not allowed", q);
	case XML_READER_TYPE_PROCESSING_INSTRUCTION:
		return plist_fail(ps, MDM_ERR_PARSE, plist_line(ps),
		        "processing instructions are not allowed");
	default:
		return plist_fail(
		        ps, MDM_ERR_PARSE, plist_line(ps), "unexpected XML node type %d", type);
	}
}

mdm_err plist_parse_ex(const char *buf, size_t len, plist **out, char *errbuf, size_t errlen)
{
	struct plist_parser ps;
	xmlStructuredErrorFunc old_serr;
	xmlGenericErrorFunc old_gerr;
	void *old_sctx, *old_gctx;
	int rc, handlers = 0;
	size_t i;

	memset(&ps, 0, sizeof(ps));
	ps.errbuf = errbuf;
	ps.errlen = errlen;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (out != NULL)
		*out = NULL;
	if (out == NULL || (buf == NULL && len != 0))
		return plist_fail(&ps, MDM_ERR_INVAL, 0, "invalid arguments");
	if (len > PLIST_MAX_BYTES)
		return plist_fail(&ps, MDM_ERR_LIMIT, 0, "document of %zu bytes exceeds %d", len,
		        PLIST_MAX_BYTES);
	if (len == 0)
		return plist_fail(&ps, MDM_ERR_PARSE, 0, "empty document");
	if (plist_check_chars(&ps, buf, len) != MDM_OK ||
	        plist_check_prolog(&ps, buf, len) != MDM_OK ||
	        plist_check_markup(&ps, buf, len) != MDM_OK)
		goto out;
	if (pthread_once(&plist_once, plist_init) != 0) {
		err_ignore(plist_fail(&ps, MDM_ERR_INTERNAL, 0, "libxml2 initialisation failed"));
		goto out;
	}

	/*
	 * These handlers are per thread in libxml2; they catch what is raised
	 * outside the reader's own handler and are restored before returning.
	 */
	old_serr = xmlStructuredError;
	old_sctx = xmlStructuredErrorContext;
	old_gerr = xmlGenericError;
	old_gctx = xmlGenericErrorContext;
	xmlSetStructuredErrorFunc(&ps, plist_xml_error);
	xmlSetGenericErrorFunc(NULL, plist_xml_generic);
	handlers = 1;

	/*
	 * NONET and nothing else: no entity substitution (NOENT), no DTD
	 * loading, defaulting or validation, no recovery, no HUGE, no XInclude.
	 */
	ps.r = xmlReaderForMemory(buf, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_BIG_LINES);
	if (ps.r == NULL) {
		err_ignore(plist_fail(&ps, MDM_ERR_NOMEM, 0, "cannot create XML reader"));
		goto out;
	}
	xmlTextReaderSetStructuredErrorHandler(ps.r, plist_xml_error, &ps);
	/* Pinned off explicitly, whatever a libxml2 version defaults to. */
	if (xmlTextReaderSetParserProp(ps.r, XML_PARSER_LOADDTD, 0) != 0 ||
	        xmlTextReaderSetParserProp(ps.r, XML_PARSER_DEFAULTATTRS, 0) != 0 ||
	        xmlTextReaderSetParserProp(ps.r, XML_PARSER_VALIDATE, 0) != 0 ||
	        xmlTextReaderSetParserProp(ps.r, XML_PARSER_SUBST_ENTITIES, 0) != 0) {
		err_ignore(plist_fail(&ps, MDM_ERR_INTERNAL, 0, "cannot configure XML reader"));
		goto out;
	}
	for (;;) {
		rc = xmlTextReaderRead(ps.r);
		if (ps.err != MDM_OK)
			goto out;
		if (rc == 0)
			break;
		if (rc < 0) {
			err_ignore(plist_fail(&ps, MDM_ERR_PARSE, 0, "XML not well-formed"));
			goto out;
		}
		if (plist_node(&ps) != MDM_OK)
			goto out;
	}
	if (!ps.done) {
		err_ignore(plist_fail(&ps, MDM_ERR_PARSE, 0, "no complete <plist> element"));
		goto out;
	}
	*out = ps.root;
	ps.root = NULL;
out:
	if (ps.r != NULL)
		xmlFreeTextReader(ps.r);
	if (handlers) {
		xmlSetStructuredErrorFunc(old_sctx, old_serr);
		xmlSetGenericErrorFunc(old_gctx, old_gerr);
	}
	for (i = 0; i < ps.sp; i++)
		free(ps.st[i].key);
	free(ps.text);
	plist_free(ps.root);
	return ps.err;
}

mdm_err plist_parse(const char *buf, size_t len, plist **out)
{
	char errbuf[256];
	mdm_err err;

	if ((err = plist_parse_ex(buf, len, out, errbuf, sizeof(errbuf))) != MDM_OK)
		log_msg(MDM_LOG_WARN, "%s", errbuf);
	return err;
}
