/*
 * A strict JSON reader (RFC 8259) for untrusted input, and a string
 * quoter for writers.  Everything RFC 8259 leaves open is refused:
 * duplicate member names (section 4 says SHOULD be unique; RFC 7515
 * section 5.2 requires it of JOSE headers, and two readers disagreeing on
 * which one wins is how signed content is smuggled), invalid UTF-8,
 * lone surrogates in \u escapes (section 8.2), trailing bytes after the
 * value, comments, trailing commas, a byte order mark, control
 * characters in strings.  The input size, nesting depth and value count
 * are capped (mdm_limits.h) before anything they bound is allocated.
 *
 * The tree is read-only; accessors take a NULL or wrongly typed value and
 * answer "absent" (NULL, 0), so a caller checks a member's presence and
 * type in one test.  Strings are decoded to UTF-8 with their length: a
 * \u0000 escape gives a NUL inside the string, so callers that want a C
 * string compare the length with strlen() (json_get_cstr does).
 */
#ifndef MDM_JSON_H
#define MDM_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "mdm_limits.h"

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;

/*
 * Parses exactly one JSON text of len bytes (the whole of it, white space
 * around the value allowed) into *out (json_free).  MDM_ERR_LIMIT over
 * MDM_JSON_MAX_BYTES, MDM_JSON_MAX_DEPTH or MDM_JSON_MAX_NODES,
 * MDM_ERR_PARSE for anything else refused; the reason, with the byte
 * offset and the RFC section, goes to err ("json: ...").  It logs
 * nothing: a check whose caller decides, as plist_parse_ex, so the caller
 * refuses with err (mdm_refuse) and that logs it once.  *out is NULL
 * unless MDM_OK.
 */
MDM_WUR mdm_err json_parse(const char *p, size_t len, json_value **out, char *err, size_t errlen);
void json_free(json_value *v);

json_type json_type_of(const json_value *v); /* JSON_NULL for a NULL v */

/* The member called name (a C string), NULL if absent or obj is not an object. */
const json_value *json_get(const json_value *obj, const char *name);
/* The string's bytes (NUL-terminated as well) and length; NULL unless a string. */
const char *json_string(const json_value *v, size_t *len);
/*
 * The member name of obj as a C string: NULL if absent, not a string or
 * holding a NUL byte.
 */
const char *json_get_cstr(const json_value *obj, const char *name);
/* 1 and *out if a boolean, else 0. */
int json_bool(const json_value *v, int *out);
/*
 * 1 and *out if an integer number (no fraction, no exponent) within
 * int64_t, else 0.  "-0" is 0.
 */
int json_int64(const json_value *v, int64_t *out);
/* A number's text as it was sent (RFC 8259 section 6 grammar), NULL for others. */
const char *json_number_text(const json_value *v);

size_t json_array_len(const json_value *v); /* 0 unless an array */
const json_value *json_array_at(const json_value *v, size_t i);
size_t json_object_len(const json_value *v); /* 0 unless an object */
/* The i-th member in document order; *name (if name is not NULL) its name. */
const json_value *json_object_at(const json_value *v, size_t i, const char **name);

/*
 * s (len bytes, UTF-8) as a JSON string: quotes, RFC 8259 section 7
 * escapes for '"', '\\' and the control characters, everything else as
 * is.  *out NUL-terminated, caller frees.  MDM_ERR_INVAL if s is not
 * valid UTF-8 (what we write is ours: a bug, not a refusal).
 */
MDM_WUR mdm_err json_quote(const char *s, size_t len, char **out);

#endif
