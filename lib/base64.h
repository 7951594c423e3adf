/*
 * Strict base64 (RFC 4648 section 4, standard alphabet): white space is
 * skipped anywhere; padding to a multiple of four, '=' only at the end
 * and zero unused bits are required.  The decoded size is known and
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

#endif
