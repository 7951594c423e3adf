/*
 * The CBOR of an ACME device-attest-01 attestation object (attest.h): the
 * only file that includes libcbor.  libcbor's streaming decoder reads one
 * item head at a time and allocates nothing; the shape is fixed (a map,
 * a map, an array, byte strings), so each item is checked against what
 * may stand at its place before the next is read, and nothing is skipped:
 * an unexpected key, type or length ends the parse.  Nesting cannot grow
 * past the three levels of the shape, so nesting bombs, huge declared
 * lengths and indefinite-length items are refused at their first byte.
 */
#include "attest.h"

#include <cbor.h>

#include <stdbool.h>
#include <string.h>

static const char attest_who[] = "device-attest-01";

#define RULE_DA   "draft-acme-device-attest sec. 5"
#define RULE_CBOR "RFC 8949"

enum ctok_kind {
	CT_NONE = 0,
	CT_BYTES, /* definite-length byte string */
	CT_TEXT,  /* definite-length text string */
	CT_ARRAY, /* definite-length array */
	CT_MAP,   /* definite-length map */
	CT_INDEF, /* any indefinite-length item */
	CT_OTHER, /* integers, tags, simple values, floats, break */
};

/* One item head, as the decoder's callback reported it. */
struct ctok {
	enum ctok_kind kind;
	const char *what; /* for refusals: "a tag", "an indefinite-length map" */
	const uint8_t *data;
	size_t len; /* bytes of a string, entries of an array or map */
	int calls;  /* callbacks seen: exactly one per item */
};

struct crd {
	const uint8_t *p;
	size_t left;
	char *err;
	size_t errlen;
};

static void ct_set(void *ctx, enum ctok_kind kind, const char *what)
{
	struct ctok *t = ctx;

	t->kind = kind;
	t->what = what;
	t->calls++;
}

static void cb_uint8(void *ctx, uint8_t v)
{
	(void)v;
	ct_set(ctx, CT_OTHER, "an integer");
}

static void cb_uint16(void *ctx, uint16_t v)
{
	(void)v;
	ct_set(ctx, CT_OTHER, "an integer");
}

static void cb_uint32(void *ctx, uint32_t v)
{
	(void)v;
	ct_set(ctx, CT_OTHER, "an integer");
}

static void cb_uint64(void *ctx, uint64_t v)
{
	(void)v;
	ct_set(ctx, CT_OTHER, "an integer");
}

static void cb_bytes(void *ctx, cbor_data data, size_t len)
{
	struct ctok *t = ctx;

	ct_set(ctx, CT_BYTES, "a byte string");
	t->data = data;
	t->len = len;
}

static void cb_text(void *ctx, cbor_data data, size_t len)
{
	struct ctok *t = ctx;

	ct_set(ctx, CT_TEXT, "a text string");
	t->data = data;
	t->len = len;
}

static void cb_array(void *ctx, size_t n)
{
	struct ctok *t = ctx;

	ct_set(ctx, CT_ARRAY, "an array");
	t->len = n;
}

static void cb_map(void *ctx, size_t n)
{
	struct ctok *t = ctx;

	ct_set(ctx, CT_MAP, "a map");
	t->len = n;
}

static void cb_indef_bytes(void *ctx)
{
	ct_set(ctx, CT_INDEF, "an indefinite-length byte string");
}

static void cb_indef_text(void *ctx)
{
	ct_set(ctx, CT_INDEF, "an indefinite-length text string");
}

static void cb_indef_array(void *ctx)
{
	ct_set(ctx, CT_INDEF, "an indefinite-length array");
}

static void cb_indef_map(void *ctx)
{
	ct_set(ctx, CT_INDEF, "an indefinite-length map");
}

static void cb_tag(void *ctx, uint64_t v)
{
	(void)v;
	ct_set(ctx, CT_OTHER, "a tag");
}

static void cb_float(void *ctx, float v)
{
	(void)v;
	ct_set(ctx, CT_OTHER, "a float");
}

static void cb_double(void *ctx, double v)
{
	(void)v;
	ct_set(ctx, CT_OTHER, "a float");
}

static void cb_simple(void *ctx)
{
	ct_set(ctx, CT_OTHER, "a simple value");
}

static void cb_bool(void *ctx, bool v)
{
	(void)v;
	ct_set(ctx, CT_OTHER, "a boolean");
}

static void cb_break(void *ctx)
{
	ct_set(ctx, CT_OTHER, "a break");
}

/* Every callback set: libcbor calls them without checking for NULL. */
static const struct cbor_callbacks attest_cbor_cb = {
        .uint8 = cb_uint8,
        .uint16 = cb_uint16,
        .uint32 = cb_uint32,
        .uint64 = cb_uint64,
        .negint8 = cb_uint8,
        .negint16 = cb_uint16,
        .negint32 = cb_uint32,
        .negint64 = cb_uint64,
        .byte_string = cb_bytes,
        .byte_string_start = cb_indef_bytes,
        .string = cb_text,
        .string_start = cb_indef_text,
        .array_start = cb_array,
        .indef_array_start = cb_indef_array,
        .map_start = cb_map,
        .indef_map_start = cb_indef_map,
        .tag = cb_tag,
        .float2 = cb_float,
        .float4 = cb_float,
        .float8 = cb_double,
        .undefined = cb_simple,
        .null = cb_simple,
        .boolean = cb_bool,
        .indef_break = cb_break,
};

/* The next item head of r into t; what names the place for refusals. */
static MDM_WUR mdm_err cbor_next(struct crd *r, struct ctok *t, const char *what)
{
	struct cbor_decoder_result res;
	const uint8_t *end;

	memset(t, 0, sizeof(*t));
	if (r->left == 0)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_CBOR
		        " sec. 3: the attestation object is truncated (it ends before %s)",
		        what);
	res = cbor_stream_decode(r->p, r->left, &attest_cbor_cb, t);
	if (res.status == CBOR_DECODER_NEDATA)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_CBOR " sec. 3: the attestation object is truncated (inside %s)", what);
	if (res.status != CBOR_DECODER_FINISHED || res.read == 0 || res.read > r->left ||
	        t->calls != 1 || t->kind == CT_NONE)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_CBOR " sec. 3: malformed CBOR at %s", what);
	end = r->p + res.read;
	/* The decoder's string must lie inside what it consumed; checked, not assumed. */
	if ((t->kind == CT_BYTES || t->kind == CT_TEXT) &&
	        (t->data < r->p || t->data > end || t->len > (size_t)(end - t->data)))
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_CBOR " sec. 3: malformed CBOR at %s", what);
	r->p = end;
	r->left -= res.read;
	return MDM_OK;
}

/* The next item must be of kind (definite length); what names it. */
static MDM_WUR mdm_err cbor_expect(
        struct crd *r, struct ctok *t, enum ctok_kind kind, const char *kind_name, const char *what)
{
	mdm_err rc;

	if ((rc = cbor_next(r, t, what)) != MDM_OK)
		return rc;
	if (t->kind == CT_INDEF)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_DA ": %s is %s; only definite lengths are accepted", what, t->what);
	if (t->kind != kind)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_DA ": %s must be %s, not %s", what, kind_name, t->what);
	return MDM_OK;
}

static int text_is(const struct ctok *t, const char *s)
{
	size_t n = strlen(s);

	return t->kind == CT_TEXT && t->len == n && memcmp(t->data, s, n) == 0;
}

/* A text string fit to quote in a refusal: printable ASCII, at most 32 bytes. */
static int text_quotable(const struct ctok *t)
{
	if (t->len == 0 || t->len > 32)
		return 0;
	for (size_t i = 0; i < t->len; i++)
		if (t->data[i] < 0x20 || t->data[i] > 0x7e || t->data[i] == '"')
			return 0;
	return 1;
}

/* attStmt: {"x5c": [bytes, ...]} and nothing else. */
static MDM_WUR mdm_err parse_att_stmt(struct crd *r, attest_object *o)
{
	struct ctok t;
	mdm_err rc;

	if ((rc = cbor_expect(r, &t, CT_MAP, "a map", "attStmt")) != MDM_OK)
		return rc;
	if (t.len != 1)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_DA " (apple): attStmt must hold exactly the key x5c, not %zu keys",
		        t.len);
	if ((rc = cbor_expect(r, &t, CT_TEXT, "a text string", "the key of attStmt")) != MDM_OK)
		return rc;
	if (!text_is(&t, "x5c"))
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_DA " (apple): attStmt must hold exactly the key x5c");
	if ((rc = cbor_expect(r, &t, CT_ARRAY, "an array", "attStmt.x5c")) != MDM_OK)
		return rc;
	if (t.len == 0)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_DA " (apple): x5c is empty; it must start with the attestation "
		                "certificate");
	if (t.len > ATTEST_MAX_X5C)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_LIMIT,
		        RULE_DA " (apple): x5c holds %zu certificates, more than %d", t.len,
		        ATTEST_MAX_X5C);
	o->n_x5c = t.len;
	for (size_t i = 0; i < o->n_x5c; i++) {
		struct ctok c;

		if ((rc = cbor_expect(r, &c, CT_BYTES, "a byte string (a DER certificate)",
		             "an x5c entry")) != MDM_OK)
			return rc;
		if (c.len == 0)
			return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
			        RULE_DA " (apple): x5c[%zu] is empty", i);
		if (c.len > ATTEST_MAX_CERT)
			return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_LIMIT,
			        RULE_DA " (apple): x5c[%zu] has %zu bytes, more than %d", i, c.len,
			        ATTEST_MAX_CERT);
		o->x5c[i] = c.data;
		o->x5c_len[i] = c.len;
	}
	return MDM_OK;
}

enum { SEEN_FMT = 1, SEEN_STMT = 2, SEEN_AUTH = 4 };

/* One key of the top map and its value; seen collects the keys read. */
static MDM_WUR mdm_err parse_entry(struct crd *r, attest_object *o, unsigned *seen)
{
	struct ctok k, v;
	unsigned bit;
	mdm_err rc;

	if ((rc = cbor_expect(
	             r, &k, CT_TEXT, "a text string", "a key of the attestation object")) != MDM_OK)
		return rc;
	if (text_is(&k, "fmt"))
		bit = SEEN_FMT;
	else if (text_is(&k, "attStmt"))
		bit = SEEN_STMT;
	else if (text_is(&k, "authData"))
		bit = SEEN_AUTH;
	else if (text_quotable(&k))
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_DA ": unknown key \"%.*s\" in the attestation object (fmt, attStmt "
		                "and authData only)",
		        (int)k.len, (const char *)k.data);
	else
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_DA ": unknown key in the attestation object (fmt, attStmt and "
		                "authData only)");
	if (*seen & bit)
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_PARSE,
		        RULE_CBOR " sec. 5.6: the key %.*s appears twice in the attestation object",
		        (int)k.len, (const char *)k.data);
	*seen |= bit;
	switch (bit) {
	case SEEN_FMT:
		if ((rc = cbor_expect(r, &v, CT_TEXT, "a text string", "fmt")) != MDM_OK)
			return rc;
		if (text_is(&v, "apple"))
			return MDM_OK;
		if (text_quotable(&v))
			return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_UNSUPPORTED,
			        RULE_DA ": attestation format \"%.*s\" is not supported (only "
			                "apple: Apple Managed Device Attestation)",
			        (int)v.len, (const char *)v.data);
		return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_UNSUPPORTED,
		        RULE_DA ": the attestation format is not supported (only apple: Apple "
		                "Managed Device Attestation)");
	case SEEN_STMT:
		return parse_att_stmt(r, o);
	default:
		if ((rc = cbor_expect(r, &v, CT_BYTES, "a byte string", "authData")) != MDM_OK)
			return rc;
		if (v.len > ATTEST_MAX_AUTHDATA)
			return mdm_refuse(attest_who, r->err, r->errlen, MDM_ERR_LIMIT,
			        RULE_DA ": authData has %zu bytes, more than %d", v.len,
			        ATTEST_MAX_AUTHDATA);
		o->auth_data = v.data;
		o->auth_data_len = v.len;
		return MDM_OK;
	}
}

mdm_err attest_parse(
        const uint8_t *attobj, size_t len, attest_object *out, char *err, size_t errlen)
{
	struct crd r = {attobj, len, err, errlen};
	attest_object o;
	struct ctok t;
	unsigned seen = 0;
	mdm_err rc;

	if (out == NULL)
		return MDM_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	memset(&o, 0, sizeof(o));
	if (attobj == NULL || len == 0)
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        RULE_DA ": the attestation object is empty");
	if (len > MDM_ATTEST_MAX_BYTES)
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_LIMIT,
		        RULE_DA ": the attestation object has %zu bytes, more than %d", len,
		        MDM_ATTEST_MAX_BYTES);
	if ((rc = cbor_expect(&r, &t, CT_MAP, "a map", "the attestation object")) != MDM_OK)
		return rc;
	if (t.len > 3)
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        RULE_DA ": the attestation object has %zu keys (fmt, attStmt and authData "
		                "only)",
		        t.len);
	for (size_t i = 0; i < t.len; i++)
		if ((rc = parse_entry(&r, &o, &seen)) != MDM_OK)
			return rc;
	if (!(seen & SEEN_FMT))
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        RULE_DA ": the attestation object lacks fmt");
	if (!(seen & SEEN_STMT))
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        RULE_DA ": the attestation object lacks attStmt");
	if (r.left != 0)
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        RULE_CBOR " sec. 5.1: %zu bytes after the attestation object's map",
		        r.left);
	*out = o;
	return MDM_OK;
}
