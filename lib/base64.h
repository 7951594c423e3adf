/*
 * Strict base64 (RFC 4648 section 4, standard alphabet): white space is
 * skipped anywhere; padding to a multiple of four, '=' only at the end
 * and zero unused bits are required.  base64url (section 5) as JOSE
 * wants it: no padding, no white space.  The decoded size is known and
 * checked against the caller's cap before anything is allocated.
 */
#ifndef MDM_BASE64_H
#define MDM_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/*
 * Decodes len bytes of s into *out (caller frees; never NULL on success,
 * even for empty input).  MDM_ERR_PARSE for anything not base64,
 * MDM_ERR_LIMIT when it would decode to more than max_out bytes.
 */
MDM_WUR mdm_err base64_decode(
        const char *s, size_t len, size_t max_out, uint8_t **out, size_t *outlen);

/* Encodes without line breaks; *out is NUL-terminated (caller frees). */
MDM_WUR mdm_err base64_encode(const uint8_t *p, size_t len, char **out, size_t *outlen);

/*
 * base64url (RFC 4648 section 5) without padding, as JOSE (RFC 7515
 * section 2) and ACME (RFC 8555 section 6.1) use it: only the URL-safe
 * alphabet, no '=', no white space, zero unused bits, len % 4 != 1.
 * MDM_ERR_PARSE otherwise, MDM_ERR_LIMIT (before allocating) when it
 * would decode to more than max_out bytes.  *out never NULL on success
 * (NUL-terminated for convenience; *outlen excludes it).
 */
MDM_WUR mdm_err base64url_decode(
        const char *s, size_t len, size_t max_out, uint8_t **out, size_t *outlen);

/* Encodes without padding; *out is NUL-terminated (caller frees). */
MDM_WUR mdm_err base64url_encode(const uint8_t *p, size_t len, char **out, size_t *outlen);

#endif
