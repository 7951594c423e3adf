/*
 * Apple XML property lists: a strict, capped parser and Apple's writer.
 * lib/plist.c holds the value tree (constructors, dict and array
 * operations, getters, plist_equal, plist_free), lib/plist_parse.c the
 * parser (plist_parse, plist_parse_ex; the only libxml2 user),
 * lib/plist_write.c the writer (plist_serialize); lib/plist_int.h is
 * what those three share (the node layout, a few helpers).
 * lib/plist_json.c (plist_to_json) uses this header only.
 *
 * Parsing is an allow-list: the eight plist types, <plist version="1.0">
 * around exactly one value, no DTD internal subset (so no entities), no
 * processing instructions, no unknown elements or attributes, no text
 * where no text belongs, no duplicate dict keys, strict base64, integers,
 * reals and dates.  PLIST_MAX_* from mdm_limits.h cap bytes, depth, values
 * and string sizes before the memory they bound is allocated.
 *
 * Serialization writes Apple's layout (tab indentation, <data> wrapped as
 * CFPropertyList wraps it) but keeps dict keys in insertion order, so
 * serialize(parse(serialize(t))) is byte-identical to serialize(t).
 *
 * Trees parsed here are at most PLIST_MAX_DEPTH deep; plist_free and
 * plist_equal recurse, so callers building trees by hand should stay
 * within the same bound (plist_serialize refuses deeper trees).
 */
#ifndef MDM_PLIST_H
#define MDM_PLIST_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef struct plist plist;

enum plist_type {
	PLIST_DICT,
	PLIST_ARRAY,
	PLIST_STRING,
	PLIST_INTEGER,
	PLIST_REAL,
	PLIST_BOOLEAN,
	PLIST_DATE,
	PLIST_DATA,
	PLIST__MAX
};

/*
 * Parses one XML plist.  *out is NULL on entry and owned by the caller on
 * MDM_OK.  MDM_ERR_PARSE: malformed or not allowed; MDM_ERR_LIMIT: over a
 * PLIST_MAX_* cap; MDM_ERR_INVAL: NULL arguments.  plist_parse logs the
 * refusal once (log_msg, warn); plist_parse_ex does not log and instead
 * writes the reason ("plist: duplicate key \"UDID\" in dict (line 9)")
 * into errbuf when errbuf is not NULL ("" on success).
 */
MDM_WUR mdm_err plist_parse(const char *buf, size_t len, plist **out);
MDM_WUR mdm_err plist_parse_ex(
        const char *buf, size_t len, plist **out, char *errbuf, size_t errlen);

/*
 * Apple's XML form, NUL-terminated, newline-terminated; *out is the
 * caller's (free(3)) on MDM_OK.  MDM_ERR_INVAL when the tree cannot be
 * written as a document plist_parse accepts: invalid UTF-8, characters XML
 * 1.0 cannot carry (NUL and other controls except tab, LF, CR), a date
 * outside years 0000-9999, nesting deeper than PLIST_MAX_DEPTH.
 */
MDM_WUR mdm_err plist_serialize(const plist *p, char **out, size_t *outlen);

void plist_free(plist *p);

/* Constructors: NULL only when out of memory.  Strings are copied. */
plist *plist_new_dict(void);
plist *plist_new_array(void);
plist *plist_new_string(const char *s);
plist *plist_new_string_len(const char *s, size_t len);
plist *plist_new_integer(int64_t v);
plist *plist_new_unsigned(uint64_t v); /* values above INT64_MAX, as Apple allows */
plist *plist_new_real(double v);
plist *plist_new_bool(int v);
plist *plist_new_date(int64_t unix_seconds);
plist *plist_new_data(const void *p, size_t len);

/*
 * Both take ownership of val in every case, even on failure, so that
 * plist_dict_set(d, "k", plist_new_string("v")) needs one check: a NULL
 * val (a failed constructor) gives MDM_ERR_NOMEM.  dict_set replaces the
 * value of an existing key in place, keeping the key's position.  val
 * must not already belong to a tree.
 */
MDM_WUR mdm_err plist_dict_set(plist *dict, const char *key, plist *val);
MDM_WUR mdm_err plist_array_append(plist *array, plist *val);
/*
 * Removes key from dict and hands its value to the caller (*out, to
 * plist_free); the other keys keep their order.  MDM_ERR_NOT_FOUND when
 * the key is absent.
 */
MDM_WUR mdm_err plist_dict_take(plist *dict, const char *key, plist **out);

/* PLIST__MAX for NULL. */
enum plist_type plist_get_type(const plist *p);
const char *plist_type_str(enum plist_type t);

/*
 * Borrowed pointers into the tree (get0); NULL when p is NULL, of another
 * type, or the index/key does not exist.  Dict order is document order.
 */
const plist *plist_dict_get0(const plist *dict, const char *key);
size_t plist_dict_count(const plist *dict);
const char *plist_dict_key_at(const plist *dict, size_t i);
const plist *plist_dict_value_at(const plist *dict, size_t i);
size_t plist_array_count(const plist *array);
const plist *plist_array_get0(const plist *array, size_t i);
/* NUL-terminated; *lenp (optional) gets the length. */
const char *plist_string_get0(const plist *p, size_t *lenp);
/* NULL if absent or not a string. */
const char *plist_dict_get_string0(const plist *dict, const char *key);
/* Never NULL for a <data> node, even when empty. */
const uint8_t *plist_data_get0(const plist *p, size_t *lenp);

/*
 * Scalar getters: *out is 0 on entry; MDM_ERR_INVAL for a NULL or
 * differently typed p; MDM_ERR_PARSE when an integer does not fit the
 * requested type (a value above INT64_MAX, or a negative one unsigned).
 */
MDM_WUR mdm_err plist_integer_get(const plist *p, int64_t *out);
MDM_WUR mdm_err plist_integer_get_unsigned(const plist *p, uint64_t *out);
/* 1 when the value is above INT64_MAX (only readable unsigned). */
int plist_integer_is_unsigned(const plist *p);
MDM_WUR mdm_err plist_real_get(const plist *p, double *out);
MDM_WUR mdm_err plist_bool_get(const plist *p, int *out);
MDM_WUR mdm_err plist_date_get(const plist *p, int64_t *out);

/*
 * Deep equality: 1 if equal.  Dict key order is significant (parse and
 * serialize preserve it); NaN equals NaN; -0.0 differs from 0.0.
 */
int plist_equal(const plist *a, const plist *b);

/*
 * The tree as JSON (lib/plist_json.c), for SQL (jsonb): dicts as objects
 * in document order, data as base64 strings, dates as ISO 8601 UTC
 * strings, NaN and infinities as null.  *out NUL-terminated, free(3).
 */
MDM_WUR mdm_err plist_to_json(const plist *p, char **out, size_t *outlen);

#endif
