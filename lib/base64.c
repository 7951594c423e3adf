/* Strict base64 decoding and encoding. */
#include "base64.h"

#include <stdlib.h>

static const char base64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A character's value in an alphabet whose last two are c62 and c63; -1 if none. */
static int alphabet_value(unsigned char c, char c62, char c63)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (unsigned char)c62)
		return 62;
	if (c == (unsigned char)c63)
		return 63;
	return -1;
}

static int base64_value(unsigned char c)
{
	return alphabet_value(c, '+', '/');
}

static int base64_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

mdm_err base64_decode(const char *s, size_t len, size_t max_out, uint8_t **out, size_t *outlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, sym = 0, pad = 0, olen, o = 0, q = 0;
	unsigned quad[4];
	uint8_t *buf;

	*out = NULL;
	*outlen = 0;
	for (i = 0; i < len; i++) {
		if (base64_is_space(u[i]))
			continue;
		if (u[i] == '=')
			pad++;
		else if (base64_value(u[i]) < 0 || pad > 0)
			return MDM_ERR_PARSE;
		else
			sym++;
	}
	if ((sym + pad) % 4 != 0 || pad > 2)
		return MDM_ERR_PARSE;
	olen = (sym + pad) / 4 * 3 - pad;
	if (olen > max_out)
		return MDM_ERR_LIMIT;
	if ((buf = malloc(olen ? olen : 1)) == NULL)
		return MDM_ERR_NOMEM;
	for (i = 0; i < len; i++) {
		if (base64_is_space(u[i]))
			continue;
		quad[q++] = u[i] == '=' ? 0 : (unsigned)base64_value(u[i]);
		if (q < 4)
			continue;
		q = 0;
		buf[o++] = (uint8_t)(quad[0] << 2 | quad[1] >> 4);
		if (o < olen)
			buf[o++] = (uint8_t)((quad[1] & 0xf) << 4 | quad[2] >> 2);
		else if ((quad[1] & 0xf) != 0)
			goto bad;
		if (o < olen)
			buf[o++] = (uint8_t)((quad[2] & 0x3) << 6 | quad[3]);
		else if ((quad[2] & 0x3) != 0)
			goto bad;
	}
	*out = buf;
	*outlen = olen;
	return MDM_OK;
bad:
	free(buf);
	return MDM_ERR_PARSE;
}

/*
 * One encoder for both alphabets: RFC 4648 section 4 with '=' padding, or
 * section 5 (base64url) without, as RFC 7515 section 2 wants it.
 */
static MDM_WUR mdm_err encode_with(
        const char *alphabet, int pad, const uint8_t *p, size_t len, char **out, size_t *outlen)
{
	size_t n, o = 0;
	char *buf;

	*out = NULL;
	*outlen = 0;
	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return MDM_ERR_LIMIT;
	n = (len + 2) / 3 * 4;
	if ((buf = malloc(n + 1)) == NULL)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		buf[o++] = alphabet[(v >> 18) & 0x3f];
		buf[o++] = alphabet[(v >> 12) & 0x3f];
		if (i + 1 < len)
			buf[o++] = alphabet[(v >> 6) & 0x3f];
		else if (pad)
			buf[o++] = '=';
		if (i + 2 < len)
			buf[o++] = alphabet[v & 0x3f];
		else if (pad)
			buf[o++] = '=';
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return MDM_OK;
}

mdm_err base64_encode(const uint8_t *p, size_t len, char **out, size_t *outlen)
{
	return encode_with(base64_alphabet, 1, p, len, out, outlen);
}

static const char base64url_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int base64url_value(unsigned char c)
{
	return alphabet_value(c, '-', '_');
}

mdm_err base64url_decode(const char *s, size_t len, size_t max_out, uint8_t **out, size_t *outlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t olen, o = 0;
	uint8_t *buf;
	unsigned acc = 0;
	int bits = 0;

	*out = NULL;
	*outlen = 0;
	/* A lone sixth of a byte: no length of input encodes to it (RFC 4648 section 5). */
	if (len % 4 == 1)
		return MDM_ERR_PARSE;
	for (size_t i = 0; i < len; i++)
		if (base64url_value(u[i]) < 0)
			return MDM_ERR_PARSE;
	olen = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
	if (olen > max_out)
		return MDM_ERR_LIMIT;
	if ((buf = malloc(olen + 1)) == NULL)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 6 | (unsigned)base64url_value(u[i])) & 0xfff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* The bits left over must be zero, or two texts would decode to one value. */
	if ((acc & ((1u << bits) - 1)) != 0) {
		free(buf);
		return MDM_ERR_PARSE;
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = olen;
	return MDM_OK;
}

mdm_err base64url_encode(const uint8_t *p, size_t len, char **out, size_t *outlen)
{
	return encode_with(base64url_alphabet, 0, p, len, out, outlen);
}
