/*
 * The plist value tree: constructors, the dict and array operations,
 * borrowed-pointer and scalar getters, deep equality and free.  The node
 * layout is private to lib/plist*.c (plist_int.h); the parser
 * (plist_parse.c), the writer (plist_write.c) and the JSON form
 * (plist_json.c) build on it.  The UTF-8 and XML character checks at the
 * end are here because parser and writer both apply them.
 */
#include "plist_int.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const plist_type_names[PLIST__MAX] = {
        [PLIST_DICT] = "dict",
        [PLIST_ARRAY] = "array",
        [PLIST_STRING] = "string",
        [PLIST_INTEGER] = "integer",
        [PLIST_REAL] = "real",
        [PLIST_BOOLEAN] = "boolean",
        [PLIST_DATE] = "date",
        [PLIST_DATA] = "data",
};

const char *plist_type_str(enum plist_type t)
{
	if ((unsigned)t >= PLIST__MAX)
		return "invalid";
	return plist_type_names[t];
}

/* ---- tree ---- */

plist *plist_alloc(enum plist_type t)
{
	plist *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->type = t;
	return p;
}

void plist_free(plist *p)
{
	size_t i;

	if (p == NULL)
		return;
	switch (p->type) {
	case PLIST_DICT:
		for (i = 0; i < p->u.dict.n; i++) {
			free(p->u.dict.kv[i].key);
			plist_free(p->u.dict.kv[i].val);
		}
		free(p->u.dict.kv);
		break;
	case PLIST_ARRAY:
		for (i = 0; i < p->u.arr.n; i++)
			plist_free(p->u.arr.v[i]);
		free(p->u.arr.v);
		break;
	case PLIST_STRING:
		free(p->u.str.s);
		break;
	case PLIST_DATA:
		free(p->u.data.p);
		break;
	default:
		break;
	}
	free(p);
}

/* Makes room for one more element of size elsz; *cap doubles, overflow-checked. */
static MDM_WUR mdm_err plist_grow(void **v, size_t *cap, size_t n, size_t elsz)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return MDM_OK;
	ncap = *cap == 0 ? 8 : *cap;
	if (*cap != 0) {
		if (ncap > SIZE_MAX / 2)
			return MDM_ERR_NOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elsz)
		return MDM_ERR_NOMEM;
	if ((nv = realloc(*v, ncap * elsz)) == NULL)
		return MDM_ERR_NOMEM;
	*v = nv;
	*cap = ncap;
	return MDM_OK;
}

plist *plist_new_dict(void)
{
	return plist_alloc(PLIST_DICT);
}

plist *plist_new_array(void)
{
	return plist_alloc(PLIST_ARRAY);
}

plist *plist_new_string_len(const char *s, size_t len)
{
	plist *p;

	if ((s == NULL && len != 0) || len == SIZE_MAX)
		return NULL;
	if ((p = plist_alloc(PLIST_STRING)) == NULL)
		return NULL;
	if ((p->u.str.s = malloc(len + 1)) == NULL) {
		free(p);
		return NULL;
	}
	if (len != 0)
		memcpy(p->u.str.s, s, len);
	p->u.str.s[len] = '\0';
	p->u.str.len = len;
	return p;
}

plist *plist_new_string(const char *s)
{
	if (s == NULL)
		return NULL;
	return plist_new_string_len(s, strlen(s));
}

plist *plist_new_integer(int64_t v)
{
	plist *p;

	if ((p = plist_alloc(PLIST_INTEGER)) == NULL)
		return NULL;
	p->u.num.s = v;
	p->u.num.u = (uint64_t)v;
	return p;
}

plist *plist_new_unsigned(uint64_t v)
{
	plist *p;

	/* One representation per value, so plist_equal needs no special case. */
	if (v <= INT64_MAX)
		return plist_new_integer((int64_t)v);
	if ((p = plist_alloc(PLIST_INTEGER)) == NULL)
		return NULL;
	p->u.num.u = v;
	p->u.num.big = 1;
	return p;
}

plist *plist_new_real(double v)
{
	plist *p;

	if ((p = plist_alloc(PLIST_REAL)) == NULL)
		return NULL;
	p->u.real = v;
	return p;
}

plist *plist_new_bool(int v)
{
	plist *p;

	if ((p = plist_alloc(PLIST_BOOLEAN)) == NULL)
		return NULL;
	p->u.boolean = v != 0;
	return p;
}

plist *plist_new_date(int64_t unix_seconds)
{
	plist *p;

	if ((p = plist_alloc(PLIST_DATE)) == NULL)
		return NULL;
	p->u.date = unix_seconds;
	return p;
}

plist *plist_new_data(const void *d, size_t len)
{
	plist *p;

	if (d == NULL && len != 0)
		return NULL;
	if ((p = plist_alloc(PLIST_DATA)) == NULL)
		return NULL;
	if (len != 0) {
		if ((p->u.data.p = malloc(len)) == NULL) {
			free(p);
			return NULL;
		}
		memcpy(p->u.data.p, d, len);
	}
	p->u.data.len = len;
	return p;
}

static long plist_dict_index(const plist *dict, const char *key, size_t keylen)
{
	size_t i;

	for (i = 0; i < dict->u.dict.n; i++)
		if (dict->u.dict.kv[i].keylen == keylen &&
		        memcmp(dict->u.dict.kv[i].key, key, keylen) == 0)
			return (long)i;
	return -1;
}

/* Appends without looking for the key; takes key and val only on success. */
mdm_err plist_dict_push(plist *dict, char *key, size_t keylen, plist *val)
{
	struct plist_kv *kv;
	mdm_err err;

	err = plist_grow((void **)&dict->u.dict.kv, &dict->u.dict.cap, dict->u.dict.n,
	        sizeof(*dict->u.dict.kv));
	if (err != MDM_OK)
		return err;
	kv = &dict->u.dict.kv[dict->u.dict.n++];
	kv->key = key;
	kv->keylen = keylen;
	kv->val = val;
	return MDM_OK;
}

mdm_err plist_dict_set(plist *dict, const char *key, plist *val)
{
	char *k = NULL;
	size_t keylen;
	long i;
	mdm_err err;

	if (val == NULL)
		return MDM_ERR_NOMEM;
	if (dict == NULL || dict->type != PLIST_DICT || key == NULL || val == dict) {
		err = MDM_ERR_INVAL;
		goto out;
	}
	keylen = strlen(key);
	if ((i = plist_dict_index(dict, key, keylen)) >= 0) {
		plist_free(dict->u.dict.kv[i].val);
		dict->u.dict.kv[i].val = val;
		return MDM_OK;
	}
	if ((k = strdup(key)) == NULL) {
		err = MDM_ERR_NOMEM;
		goto out;
	}
	if ((err = plist_dict_push(dict, k, keylen, val)) != MDM_OK)
		goto out;
	return MDM_OK;
out:
	free(k);
	plist_free(val);
	return err;
}

mdm_err plist_dict_take(plist *dict, const char *key, plist **out)
{
	long i;

	if (out != NULL)
		*out = NULL;
	if (dict == NULL || dict->type != PLIST_DICT || key == NULL || out == NULL)
		return MDM_ERR_INVAL;
	if ((i = plist_dict_index(dict, key, strlen(key))) < 0)
		return MDM_ERR_NOT_FOUND;
	*out = dict->u.dict.kv[i].val;
	free(dict->u.dict.kv[i].key);
	memmove(&dict->u.dict.kv[i], &dict->u.dict.kv[i + 1],
	        (dict->u.dict.n - (size_t)i - 1) * sizeof(dict->u.dict.kv[0]));
	dict->u.dict.n--;
	return MDM_OK;
}

mdm_err plist_array_append(plist *array, plist *val)
{
	mdm_err err;

	if (val == NULL)
		return MDM_ERR_NOMEM;
	if (array == NULL || array->type != PLIST_ARRAY || val == array) {
		err = MDM_ERR_INVAL;
		goto out;
	}
	err = plist_grow((void **)&array->u.arr.v, &array->u.arr.cap, array->u.arr.n,
	        sizeof(*array->u.arr.v));
	if (err != MDM_OK)
		goto out;
	array->u.arr.v[array->u.arr.n++] = val;
	return MDM_OK;
out:
	plist_free(val);
	return err;
}

/* ---- getters ---- */

enum plist_type plist_get_type(const plist *p)
{
	return p == NULL ? PLIST__MAX : p->type;
}

const plist *plist_dict_get0(const plist *dict, const char *key)
{
	long i;

	if (dict == NULL || dict->type != PLIST_DICT || key == NULL)
		return NULL;
	if ((i = plist_dict_index(dict, key, strlen(key))) < 0)
		return NULL;
	return dict->u.dict.kv[i].val;
}

size_t plist_dict_count(const plist *dict)
{
	if (dict == NULL || dict->type != PLIST_DICT)
		return 0;
	return dict->u.dict.n;
}

const char *plist_dict_key_at(const plist *dict, size_t i)
{
	if (dict == NULL || dict->type != PLIST_DICT || i >= dict->u.dict.n)
		return NULL;
	return dict->u.dict.kv[i].key;
}

const plist *plist_dict_value_at(const plist *dict, size_t i)
{
	if (dict == NULL || dict->type != PLIST_DICT || i >= dict->u.dict.n)
		return NULL;
	return dict->u.dict.kv[i].val;
}

size_t plist_array_count(const plist *array)
{
	if (array == NULL || array->type != PLIST_ARRAY)
		return 0;
	return array->u.arr.n;
}

const plist *plist_array_get0(const plist *array, size_t i)
{
	if (array == NULL || array->type != PLIST_ARRAY || i >= array->u.arr.n)
		return NULL;
	return array->u.arr.v[i];
}

const char *plist_string_get0(const plist *p, size_t *lenp)
{
	if (lenp != NULL)
		*lenp = 0;
	if (p == NULL || p->type != PLIST_STRING)
		return NULL;
	if (lenp != NULL)
		*lenp = p->u.str.len;
	return p->u.str.s;
}

const char *plist_dict_get_string0(const plist *dict, const char *key)
{
	return plist_string_get0(plist_dict_get0(dict, key), NULL);
}

const uint8_t *plist_data_get0(const plist *p, size_t *lenp)
{
	static const uint8_t empty[1];

	if (lenp != NULL)
		*lenp = 0;
	if (p == NULL || p->type != PLIST_DATA)
		return NULL;
	if (lenp != NULL)
		*lenp = p->u.data.len;
	return p->u.data.p != NULL ? p->u.data.p : empty;
}

mdm_err plist_integer_get(const plist *p, int64_t *out)
{
	if (out != NULL)
		*out = 0;
	if (p == NULL || p->type != PLIST_INTEGER || out == NULL)
		return MDM_ERR_INVAL;
	if (p->u.num.big)
		return MDM_ERR_PARSE;
	*out = p->u.num.s;
	return MDM_OK;
}

mdm_err plist_integer_get_unsigned(const plist *p, uint64_t *out)
{
	if (out != NULL)
		*out = 0;
	if (p == NULL || p->type != PLIST_INTEGER || out == NULL)
		return MDM_ERR_INVAL;
	if (!p->u.num.big && p->u.num.s < 0)
		return MDM_ERR_PARSE;
	*out = p->u.num.u;
	return MDM_OK;
}

int plist_integer_is_unsigned(const plist *p)
{
	return p != NULL && p->type == PLIST_INTEGER && p->u.num.big;
}

mdm_err plist_real_get(const plist *p, double *out)
{
	if (out != NULL)
		*out = 0;
	if (p == NULL || p->type != PLIST_REAL || out == NULL)
		return MDM_ERR_INVAL;
	*out = p->u.real;
	return MDM_OK;
}

mdm_err plist_bool_get(const plist *p, int *out)
{
	if (out != NULL)
		*out = 0;
	if (p == NULL || p->type != PLIST_BOOLEAN || out == NULL)
		return MDM_ERR_INVAL;
	*out = p->u.boolean;
	return MDM_OK;
}

mdm_err plist_date_get(const plist *p, int64_t *out)
{
	if (out != NULL)
		*out = 0;
	if (p == NULL || p->type != PLIST_DATE || out == NULL)
		return MDM_ERR_INVAL;
	*out = p->u.date;
	return MDM_OK;
}

static int plist_real_equal(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return a == b && signbit(a) == signbit(b);
}

int plist_equal(const plist *a, const plist *b)
{
	size_t i;

	if (a == NULL || b == NULL)
		return a == b;
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case PLIST_DICT:
		if (a->u.dict.n != b->u.dict.n)
			return 0;
		for (i = 0; i < a->u.dict.n; i++) {
			const struct plist_kv *x = &a->u.dict.kv[i], *y = &b->u.dict.kv[i];

			if (x->keylen != y->keylen || memcmp(x->key, y->key, x->keylen) != 0 ||
			        !plist_equal(x->val, y->val))
				return 0;
		}
		return 1;
	case PLIST_ARRAY:
		if (a->u.arr.n != b->u.arr.n)
			return 0;
		for (i = 0; i < a->u.arr.n; i++)
			if (!plist_equal(a->u.arr.v[i], b->u.arr.v[i]))
				return 0;
		return 1;
	case PLIST_STRING:
		return a->u.str.len == b->u.str.len &&
		        memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
	case PLIST_DATA:
		return a->u.data.len == b->u.data.len &&
		        (a->u.data.len == 0 ||
		                memcmp(a->u.data.p, b->u.data.p, a->u.data.len) == 0);
	case PLIST_INTEGER:
		return a->u.num.big == b->u.num.big && a->u.num.u == b->u.num.u;
	case PLIST_REAL:
		return plist_real_equal(a->u.real, b->u.real);
	case PLIST_BOOLEAN:
		return a->u.boolean == b->u.boolean;
	case PLIST_DATE:
		return a->u.date == b->u.date;
	default:
		return 0;
	}
}

/* ---- text helpers shared by parser and writer ---- */

/*
 * Length (1-4) of the well-formed UTF-8 sequence at s, 0 if there is none
 * (overlong forms, surrogates and values above U+10FFFF are not).
 */
size_t plist_utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c, min;
	size_t len, i;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* The XML 1.0 Char production. */
int plist_xml_char(uint32_t c)
{
	return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0xd7ff) ||
	        (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}
