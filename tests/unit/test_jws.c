/*
 * jws: flattened JWS as ACME sends them (RFC 8555 section 6.2).  The
 * refusals first: the message's structure, the protected header, the
 * JWK, then signatures that must not verify.  Then the RFC examples
 * (RFC 7515 appendices A.2 and A.3, RFC 7638 section 3.1) and messages
 * signed here with OpenSSL keys made for the tcase, as a client would.
 */
#include "base64.h"
#include "json.h"
#include "jws.h"
#include "suites.h"
#include "ts_sys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL   "https://mdm.example.com/acme/new-account"
#define NONCE "Zm9vYmFyYmF6"

/* ---- keys made once per tcase (unchecked fixture: before the tests fork) ---- */

struct tkey {
	const char *alg;
	EVP_PKEY *pk;
	char jwk[2048]; /* the public JWK, canonical member order */
};

static struct tkey k256 = {"ES256", NULL, ""}, k384 = {"ES384", NULL, ""},
                   krsa = {"RS256", NULL, ""};

static char *b64u(const void *p, size_t len)
{
	char *s = NULL;
	size_t n;

	ck_assert_int_eq(base64url_encode(p, len, &s, &n), MDM_OK);
	return s;
}

static char *b64u_str(const char *s)
{
	return b64u(s, strlen(s));
}

static char *bn_param_b64u(EVP_PKEY *pk, const char *name, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;

	ck_assert_int_eq(EVP_PKEY_get_bn_param(pk, name, &bn), 1);
	n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	ck_assert_int_gt(n, 0);
	BN_free(bn);
	return b64u(buf, (size_t)n);
}

static void tkey_jwk(struct tkey *k)
{
	char *a, *b;

	if (EVP_PKEY_is_a(k->pk, "RSA")) {
		a = bn_param_b64u(k->pk, OSSL_PKEY_PARAM_RSA_E, 0);
		b = bn_param_b64u(k->pk, OSSL_PKEY_PARAM_RSA_N, 0);
		snprintf(k->jwk, sizeof(k->jwk), "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a,
		        b);
	} else {
		int flen = strcmp(k->alg, "ES256") == 0 ? 32 : 48;
		a = bn_param_b64u(k->pk, OSSL_PKEY_PARAM_EC_PUB_X, flen);
		b = bn_param_b64u(k->pk, OSSL_PKEY_PARAM_EC_PUB_Y, flen);
		snprintf(k->jwk, sizeof(k->jwk),
		        "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
		        flen == 32 ? "P-256" : "P-384", a, b);
	}
	free(a);
	free(b);
}

static void keys_make(void)
{
	k256.pk = EVP_EC_gen("P-256");
	k384.pk = EVP_EC_gen("P-384");
	krsa.pk = EVP_RSA_gen(2048);
	ck_assert(k256.pk != NULL && k384.pk != NULL && krsa.pk != NULL);
	tkey_jwk(&k256);
	tkey_jwk(&k384);
	tkey_jwk(&krsa);
}

static void keys_free(void)
{
	EVP_PKEY_free(k256.pk);
	EVP_PKEY_free(k384.pk);
	EVP_PKEY_free(krsa.pk);
}

/*
 * A JWS signature over input with pk as alg wants it: RSASSA-PKCS1-v1_5,
 * or ECDSA as R || S of the field size (RFC 7518 section 3.4); der keeps
 * OpenSSL's DER form instead (which JWS must not take).
 */
static uint8_t *sign_raw(EVP_PKEY *pk, const char *alg, const char *input, size_t *siglen, int der)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = strcmp(alg, "ES384") == 0 ? EVP_sha384() : EVP_sha256();
	unsigned char buf[1024];
	size_t n = sizeof(buf);
	uint8_t *out;

	ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, md, NULL, pk), 1);
	ck_assert_int_eq(
	        EVP_DigestSign(ctx, buf, &n, (const unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	if (alg[0] == 'E' && !der) {
		const unsigned char *p = buf;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		int flen = strcmp(alg, "ES256") == 0 ? 32 : 48;
		ck_assert_ptr_nonnull(es);
		out = malloc(2 * (size_t)flen);
		ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), out, flen), flen);
		ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), out + flen, flen), flen);
		ECDSA_SIG_free(es);
		*siglen = 2 * (size_t)flen;
		return out;
	}
	out = malloc(n);
	memcpy(out, buf, n);
	*siglen = n;
	return out;
}

/* A flattened JWS of the protected header text and payload, signed by pk as alg. */
static char *jws_make(EVP_PKEY *pk, const char *alg, const char *prot, const char *payload)
{
	char *p64 = b64u_str(prot), *y64 = b64u_str(payload), *s64, *input, *body;
	size_t siglen, n;
	uint8_t *sig;

	n = strlen(p64) + strlen(y64) + 2;
	input = malloc(n);
	snprintf(input, n, "%s.%s", p64, y64);
	sig = sign_raw(pk, alg, input, &siglen, 0);
	s64 = b64u(sig, siglen);
	n = strlen(p64) + strlen(y64) + strlen(s64) + 64;
	body = malloc(n);
	snprintf(body, n, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", p64,
	        y64, s64);
	free(p64);
	free(y64);
	free(s64);
	free(sig);
	free(input);
	return body;
}

/* A protected header with k's JWK. */
static char *prot_jwk(const struct tkey *k, const char *url)
{
	char *s = malloc(4096);

	snprintf(s, 4096, "{\"alg\":\"%s\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"%s\"}",
	        k->alg, k->jwk, url);
	return s;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
	char *s = malloc(8192);
	va_list ap;

	va_start(ap, f);
	ck_assert_int_lt(vsnprintf(s, 8192, f, ap), 8192);
	va_end(ap);
	return s;
}

/* jws_parse refuses body with rc, returns no message and says why (needle in err). */
static void refused(const char *body, size_t len, mdm_err rc, const char *needle)
{
	jws_msg *m = (jws_msg *)1;
	char err[512] = "";
	mdm_err got = jws_parse(body, len ? len : strlen(body), &m, err, sizeof(err));

	ck_assert_msg(
	        got == rc, "%.200s: got %s (%s), wanted %s", body, err_str(got), err, err_str(rc));
	ck_assert_ptr_null(m);
	ck_assert_msg(
	        strstr(err, needle) != NULL, "%.200s: err \"%s\" lacks \"%s\"", body, err, needle);
	/* What goes back to the peer is printable ASCII: it fits in a problem document. */
	for (const char *c = err; *c != '\0'; c++)
		ck_assert_msg(*c >= 0x20 && *c < 0x7f, "err has byte 0x%02x", (unsigned char)*c);
}

/* A signed message with k over the protected header prot, refused. */
static void refused_prot(const struct tkey *k, const char *prot, mdm_err rc, const char *needle)
{
	char *body = jws_make(k->pk, k->alg, prot, "{}");

	refused(body, 0, rc, needle);
	free(body);
}

static char *body_with(const char *body, int i, const char *value);

/* ---- refusals: the structure of the message ---- */

START_TEST(refuses_structure)
{
	char *prot = prot_jwk(&k256, URL), *good = jws_make(k256.pk, "ES256", prot, "{}");
	json_value *v = NULL;
	const char *p, *y, *s;
	char *body;

	/* Parts of the good message, to rebuild it wrongly. */
	ck_assert_int_eq(json_parse(good, strlen(good), &v, NULL, 0), MDM_OK);
	p = json_get_cstr(v, "protected");
	y = json_get_cstr(v, "payload");
	s = json_get_cstr(v, "signature");

	/* The compact serialization (RFC 7515 section 7.1) is not JSON. */
	body = fmt("%s.%s.%s", p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "compact serialization is refused");
	free(body);
	body = fmt("%s..%s", p, s); /* detached payload (RFC 7515 appendix F) */
	refused(body, 0, MDM_ERR_PARSE, "compact serialization is refused");
	free(body);
	body = fmt("\"%s.%s.%s\"", p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "flattened JWS, a JSON object");
	free(body);
	refused("[]", 0, MDM_ERR_PARSE, "JSON object");
	refused("", 0, MDM_ERR_PARSE, "strict JSON");

	/* The general serialization (RFC 7515 section 7.2.1). */
	body = fmt(
	        "{\"payload\":\"%s\",\"signatures\":[{\"protected\":\"%s\",\"signature\":\"%s\"}]}",
	        y, p, s);
	refused(body, 0, MDM_ERR_PARSE, "general JSON serialization");
	free(body);
	/* Unprotected header parameters, even empty. */
	body = fmt("{\"protected\":\"%s\",\"header\":{},\"payload\":\"%s\",\"signature\":\"%s\"}",
	        p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "unprotected \"header\"");
	free(body);
	body = fmt("{\"protected\":\"%s\",\"header\":{\"kid\":\"x\"},\"payload\":\"%s\","
	           "\"signature\":\"%s\"}",
	        p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "unprotected \"header\"");
	free(body);
	/* Any other member. */
	body = fmt(
	        "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\",\"x\":1}", p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "unexpected member \"x\"");
	free(body);
	/* A member name that is not printable is shown with '?' only. */
	body = fmt(
	        "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\",\"\\u0007\\u00e9\":"
	        "1}",
	        p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "unexpected member \"???\"");
	free(body);
	/* A missing member, or one that is not a string. */
	body = fmt("{\"protected\":\"%s\",\"payload\":\"%s\"}", p, y);
	refused(body, 0, MDM_ERR_PARSE, "\"signature\" string");
	free(body);
	body = fmt("{\"payload\":\"%s\",\"signature\":\"%s\"}", y, s);
	refused(body, 0, MDM_ERR_PARSE, "\"protected\" string");
	free(body);
	body = fmt("{\"protected\":\"%s\",\"signature\":\"%s\"}", p, s);
	refused(body, 0, MDM_ERR_PARSE, "\"payload\" string");
	free(body);
	body = fmt("{\"protected\":\"%s\",\"payload\":{},\"signature\":\"%s\"}", p, s);
	refused(body, 0, MDM_ERR_PARSE, "\"payload\" string");
	free(body);
	body = fmt("{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":null}", p, y);
	refused(body, 0, MDM_ERR_PARSE, "\"signature\" string");
	free(body);
	/* Duplicate members: which one would be verified? */
	body = fmt("{\"protected\":\"%s\",\"payload\":\"%s\",\"payload\":\"e30\",\"signature\":\"%"
	           "s\"}",
	        p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "duplicate");
	free(body);
	/* Bad UTF-8 and trailing bytes in the body. */
	body = fmt("{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"} x", p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "after the value");
	free(body);
	body = fmt(
	        "{\"protected\":\"%s\",\"payload\":\"%s\xc0\xaf\",\"signature\":\"%s\"}", p, y, s);
	refused(body, 0, MDM_ERR_PARSE, "UTF-8");
	free(body);
	json_free(v);
	free(prot);
	free(good);
}
END_TEST

START_TEST(refuses_bad_base64url)
{
	char *prot = prot_jwk(&k256, URL), *good = jws_make(k256.pk, "ES256", prot, "{\"a\":1}");
	static const char *const spoil[] = {"=", "==", " ", "\\n", "+", "/", "*"};
	json_value *v = NULL;
	const char *part[3];
	static const char *const name[3] = {"protected", "payload", "signature"};

	ck_assert_int_eq(json_parse(good, strlen(good), &v, NULL, 0), MDM_OK);
	for (int i = 0; i < 3; i++)
		part[i] = json_get_cstr(v, name[i]);
	/* Each part, with padding, white space or the standard alphabet added. */
	for (int i = 0; i < 3; i++)
		for (size_t j = 0; j < sizeof(spoil) / sizeof(spoil[0]); j++) {
			char p[3][4096];
			char *body;
			for (int k = 0; k < 3; k++)
				snprintf(p[k], sizeof(p[k]), "%s%s", part[k],
				        k == i ? spoil[j] : "");
			body = fmt("{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}",
			        p[0], p[1], p[2]);
			refused(body, 0, MDM_ERR_PARSE, name[i]);
			free(body);
		}
	/* An empty signature (what "none" would send) under a good header. */
	{
		char *body = body_with(good, 2, "");
		refused(body, 0, MDM_ERR_PARSE, "\"signature\" must be base64url of 1 to");
		free(body);
	}
	json_free(v);
	free(prot);
	free(good);
}
END_TEST

START_TEST(refuses_over_limits)
{
	size_t n = JWS_MAX_BODY + 1;
	char *big = malloc(n), *deep, *prot, *body;

	/* Over the cap: refused before it is parsed. */
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	refused(big, n, MDM_ERR_LIMIT, "over");
	free(big);
	/* Nesting in the body and in the protected header (in an extra, ignored member). */
	deep = malloc(2 * (MDM_JSON_MAX_DEPTH + 1) + 1);
	for (int i = 0; i <= MDM_JSON_MAX_DEPTH; i++) {
		deep[i] = '[';
		deep[2 * (MDM_JSON_MAX_DEPTH + 1) - 1 - i] = ']';
	}
	deep[2 * (MDM_JSON_MAX_DEPTH + 1)] = '\0';
	body = fmt("{\"protected\":\"e30\",\"payload\":\"\",\"signature\":\"AA\",\"x\":%s}", deep);
	refused(body, 0, MDM_ERR_LIMIT, "nested");
	free(body);
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL
	           "\",\"x\":%s}",
	        k256.jwk, deep);
	refused_prot(&k256, prot, MDM_ERR_LIMIT, "nested");
	free(prot);
	free(deep);
	/* A protected header over JWS_MAX_PROTECTED. */
	big = malloc(JWS_MAX_PROTECTED + 64);
	memset(big, 'a', JWS_MAX_PROTECTED + 63);
	big[JWS_MAX_PROTECTED + 63] = '\0';
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL
	           "\",\"x\":\"%.7000s\"}",
	        k256.jwk, big);
	free(big);
	big = malloc(JWS_MAX_PROTECTED + 200);
	snprintf(big, JWS_MAX_PROTECTED + 200, "%s%*s", prot, JWS_MAX_PROTECTED, "");
	free(prot);
	refused_prot(&k256, big, MDM_ERR_LIMIT, "protected header over");
	free(big);
	/* A URL, nonce or kid over its cap. */
	big = malloc(JWS_MAX_URL + 2);
	memset(big, 'u', JWS_MAX_URL + 1);
	big[JWS_MAX_URL + 1] = '\0';
	prot = prot_jwk(&k256, big);
	refused_prot(&k256, prot, MDM_ERR_LIMIT, "\"url\"");
	free(prot);
	prot = fmt("{\"alg\":\"ES256\",\"kid\":\"%s\",\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}",
	        big);
	refused_prot(&k256, prot, MDM_ERR_LIMIT, "\"kid\"");
	free(prot);
	big[JWS_MAX_NONCE + 4] = '\0';
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"%s\",\"url\":\"" URL "\"}", k256.jwk,
	        big);
	refused_prot(&k256, prot, MDM_ERR_LIMIT, "\"nonce\"");
	free(prot);
	free(big);
}
END_TEST

/* ---- refusals: the protected header ---- */

START_TEST(refuses_algorithms)
{
	static const char *const algs[] = {
	        "none", "HS256", "HS384", "HS512", "ES512", "PS256", "RS384", "EdDSA", "es256", ""};
	char *prot;

	/* badSignatureAlgorithm (RFC 8555 section 6.2): not on the list, whatever the key. */
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		prot = fmt("{\"alg\":\"%s\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL
		           "\"}",
		        algs[i], k256.jwk);
		refused_prot(&k256, prot, MDM_ERR_UNSUPPORTED, "is not offered");
		free(prot);
	}
	/* "none" with the empty signature RFC 7515 appendix A.5 gives it. */
	prot = b64u_str("{\"alg\":\"none\"}");
	char *body = fmt("{\"protected\":\"%s\",\"payload\":\"e30\",\"signature\":\"\"}", prot);
	refused(body, 0, MDM_ERR_UNSUPPORTED, "\"none\"");
	free(body);
	free(prot);
	/* HS256 with an oct key. */
	prot = fmt("{\"alg\":\"HS256\",\"jwk\":{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},\"nonce\":"
	           "\"" NONCE "\",\"url\":\"" URL "\"}");
	refused_prot(&k256, prot, MDM_ERR_UNSUPPORTED, "HS256");
	free(prot);
	/* An alg that is not printable is shown with '?'. */
	prot = fmt("{\"alg\":\"E\\u0000S\\n\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL
	           "\"}",
	        k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "no \"alg\" string");
	free(prot);
	prot = fmt("{\"alg\":\"E\\u00e9\\n\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL
	           "\"}",
	        k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_UNSUPPORTED, "\"E???\"");
	free(prot);
	/* Absent, or not a string. */
	prot = fmt("{\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}", k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "no \"alg\"");
	free(prot);
	prot = fmt(
	        "{\"alg\":256,\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}", k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "no \"alg\"");
	free(prot);
}
END_TEST

START_TEST(refuses_header_members)
{
	char *prot;

	/* Duplicate names: RFC 7515 section 5.2 (the classic: a second alg of "none"). */
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL
	           "\",\"alg\":\"none\"}",
	        k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "duplicate");
	free(prot);
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL
	           "\",\"url\":\"https://evil.example/\"}",
	        k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "duplicate");
	free(prot);
	/* Not an object, not JSON, bad UTF-8. */
	refused_prot(&k256, "[\"ES256\"]", MDM_ERR_PARSE, "must be a JSON object");
	refused_prot(&k256, "{\"alg\":\"ES256\",}", MDM_ERR_PARSE, "not strict JSON");
	refused_prot(&k256, "{\"alg\":\"ES256\",\"url\":\"\xed\xa0\x80\"}", MDM_ERR_PARSE, "UTF-8");
	/* crit (RFC 7515 section 4.1.11), even empty, even with b64. */
	prot = fmt("{\"alg\":\"ES256\",\"crit\":[],\"jwk\":%s,\"nonce\":\"" NONCE
	           "\",\"url\":\"" URL "\"}",
	        k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "crit");
	free(prot);
	prot = fmt("{\"alg\":\"ES256\",\"b64\":false,\"crit\":[\"b64\"],\"jwk\":%s,\"nonce\":"
	           "\"" NONCE "\",\"url\":\"" URL "\"}",
	        k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "crit");
	free(prot);
	/* jwk and kid: exactly one. */
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"kid\":\"https://mdm.example.com/acme/acct/1\","
	           "\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}",
	        k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "both");
	free(prot);
	refused_prot(&k256, "{\"alg\":\"ES256\",\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}",
	        MDM_ERR_PARSE, "neither");
	refused_prot(&k256,
	        "{\"alg\":\"ES256\",\"kid\":7,\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}",
	        MDM_ERR_PARSE, "\"kid\"");
	refused_prot(&k256,
	        "{\"alg\":\"ES256\",\"kid\":\"\",\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}",
	        MDM_ERR_PARSE, "\"kid\"");
	refused_prot(&k256,
	        "{\"alg\":\"ES256\",\"jwk\":\"x\",\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}",
	        MDM_ERR_PARSE, "JSON object");
	/* nonce: absent is badNonce (CONFLICT); present, it must be base64url. */
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"url\":\"" URL "\"}", k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_CONFLICT, "no \"nonce\"");
	free(prot);
	static const char *const nonces[] = {"\"\"", "\"a+b/\"", "\"Zm9v=\"", "\"Zh\"", "\"a b\"",
	        "12", "null", "\"Zm9v\\u0000\""};
	for (size_t i = 0; i < sizeof(nonces) / sizeof(nonces[0]); i++) {
		prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":%s,\"url\":\"" URL "\"}",
		        k256.jwk, nonces[i]);
		refused_prot(&k256, prot, MDM_ERR_PARSE, "\"nonce\"");
		free(prot);
	}
	/* url: a string, not empty. */
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"" NONCE "\"}", k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "\"url\"");
	free(prot);
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":[]}", k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "\"url\"");
	free(prot);
	prot = fmt("{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"\"}", k256.jwk);
	refused_prot(&k256, prot, MDM_ERR_PARSE, "\"url\"");
	free(prot);
}
END_TEST

/* ---- refusals: the JWK ---- */

static void refused_jwk(const char *alg, const char *jwk, mdm_err rc, const char *needle)
{
	jws_key *k = (jws_key *)1;
	char err[512] = "";
	char *prot = fmt("{\"alg\":\"%s\",\"jwk\":%s,\"nonce\":\"" NONCE "\",\"url\":\"" URL "\"}",
	        alg, jwk);

	/* In a message and on its own (a stored key), the same refusal. */
	refused_prot(&k256, prot, rc, needle);
	free(prot);
	if (rc != MDM_ERR_FORBIDDEN || strstr(needle, "needs") == NULL) {
		ck_assert_int_eq(jws_key_from_jwk(jwk, strlen(jwk), &k, err, sizeof(err)), rc);
		ck_assert_ptr_null(k);
		ck_assert_msg(strstr(err, needle) != NULL, "%s: %s", jwk, err);
	}
}

/* k's JWK with member name's value replaced by the base64url of p (len bytes). */
static char *jwk_with(const struct tkey *k, const char *name, const uint8_t *p, size_t len)
{
	char *v = b64u(p, len), *s = malloc(4096);
	json_value *j = NULL;
	const char *nm;
	size_t o = 0;

	ck_assert_int_eq(json_parse(k->jwk, strlen(k->jwk), &j, NULL, 0), MDM_OK);
	o += (size_t)snprintf(s + o, 4096 - o, "{");
	for (size_t i = 0; i < json_object_len(j); i++) {
		const json_value *m = json_object_at(j, i, &nm);
		o += (size_t)snprintf(s + o, 4096 - o, "%s\"%s\":\"%s\"", i ? "," : "", nm,
		        strcmp(nm, name) == 0 ? v : json_string(m, NULL));
	}
	snprintf(s + o, 4096 - o, "}");
	json_free(j);
	free(v);
	return s;
}

static size_t jwk_member(const struct tkey *k, const char *name, uint8_t *out)
{
	json_value *j = NULL;
	uint8_t *d = NULL;
	size_t n = 0;
	const char *s;

	ck_assert_int_eq(json_parse(k->jwk, strlen(k->jwk), &j, NULL, 0), MDM_OK);
	s = json_get_cstr(j, name);
	ck_assert_int_eq(base64url_decode(s, strlen(s), 1024, &d, &n), MDM_OK);
	memcpy(out, d, n);
	free(d);
	json_free(j);
	return n;
}

START_TEST(refuses_jwks)
{
	uint8_t buf[1100];
	size_t n;
	char *jwk;
	EVP_PKEY *small;
	struct tkey ksmall = {"RS256", NULL, ""};

	/* Private members (RFC 7518 section 6): a client must never send them. */
	static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
		jwk = fmt("{\"%s\":\"AQAB\",%s", priv[i], k256.jwk + 1);
		refused_jwk("ES256", jwk, MDM_ERR_PARSE, "private member");
		free(jwk);
	}
	/* The point not on the curve: y changed in its last bit. */
	n = jwk_member(&k256, "y", buf);
	buf[n - 1] ^= 1;
	jwk = jwk_with(&k256, "y", buf, n);
	refused_jwk("ES256", jwk, MDM_ERR_FORBIDDEN, "not on P-256");
	free(jwk);
	n = jwk_member(&k384, "x", buf);
	buf[0] ^= 0x40;
	jwk = jwk_with(&k384, "x", buf, n);
	refused_jwk("ES384", jwk, MDM_ERR_FORBIDDEN, "not on P-384");
	free(jwk);
	/* A coordinate at or over the field prime (all ones is over it). */
	memset(buf, 0xff, 32);
	jwk = jwk_with(&k256, "x", buf, 32);
	refused_jwk("ES256", jwk, MDM_ERR_FORBIDDEN, "field prime");
	free(jwk);
	/* x, y not the full field size: short (a leading zero dropped) and long. */
	n = jwk_member(&k256, "x", buf);
	jwk = jwk_with(&k256, "x", buf + 1, n - 1);
	refused_jwk("ES256", jwk, MDM_ERR_PARSE, "exactly 32 octets");
	free(jwk);
	buf[0] = 0;
	n = jwk_member(&k256, "x", buf + 1);
	jwk = jwk_with(&k256, "x", buf, n + 1);
	refused_jwk("ES256", jwk, MDM_ERR_PARSE, "exactly 32 octets");
	free(jwk);
	jwk = fmt("{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"AA=\",\"y\":\"AA\"}");
	refused_jwk("ES256", jwk, MDM_ERR_PARSE, "exactly 32 octets");
	free(jwk);
	/* Curves and key types we do not take, or none. */
	jwk = fmt("{\"crv\":\"P-521\",%s", strchr(k256.jwk, ',') + 1);
	refused_jwk("ES256", jwk, MDM_ERR_FORBIDDEN, "curve \"P-521\"");
	free(jwk);
	jwk = fmt("{%s", strchr(k256.jwk, ',') + 1);
	refused_jwk("ES256", jwk, MDM_ERR_PARSE, "\"crv\"");
	free(jwk);
	refused_jwk("ES256", "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"AA\"}",
	        MDM_ERR_FORBIDDEN, "key type \"OKP\"");
	refused_jwk("ES256", "{\"kty\":\"oct\"}", MDM_ERR_FORBIDDEN, "key type \"oct\"");
	refused_jwk("ES256", "{\"crv\":\"P-256\"}", MDM_ERR_PARSE, "\"kty\"");
	refused_jwk("ES256", "[]", MDM_ERR_PARSE, "JSON object");
	/* RSA: 1024 bits; n with a leading zero; e even, 1 or absent. */
	small = EVP_RSA_gen(1024);
	ck_assert_ptr_nonnull(small);
	ksmall.pk = small;
	tkey_jwk(&ksmall);
	refused_jwk("RS256", ksmall.jwk, MDM_ERR_FORBIDDEN, "1024 bits, under 2048");
	EVP_PKEY_free(small);
	n = jwk_member(&krsa, "n", buf + 1);
	buf[0] = 0;
	jwk = jwk_with(&krsa, "n", buf, n + 1);
	refused_jwk("RS256", jwk, MDM_ERR_PARSE, "leading zero");
	free(jwk);
	jwk = jwk_with(&krsa, "e", (const uint8_t *)"\x01\x00\x00", 3);
	refused_jwk("RS256", jwk, MDM_ERR_FORBIDDEN, "odd");
	free(jwk);
	jwk = jwk_with(&krsa, "e", (const uint8_t *)"\x01", 1);
	refused_jwk("RS256", jwk, MDM_ERR_FORBIDDEN, "odd");
	free(jwk);
	jwk = jwk_with(&krsa, "e", (const uint8_t *)"\x00\x01\x00\x01", 4);
	refused_jwk("RS256", jwk, MDM_ERR_PARSE, "leading zero");
	free(jwk);
	jwk = fmt("{\"kty\":\"RSA\",%s", strstr(krsa.jwk, "\"n\""));
	refused_jwk("RS256", jwk, MDM_ERR_PARSE, "\"e\"");
	free(jwk);
	/* An even modulus of the right size is no RSA key. */
	n = jwk_member(&krsa, "n", buf);
	buf[n - 1] &= 0xfe;
	jwk = jwk_with(&krsa, "n", buf, n);
	refused_jwk("RS256", jwk, MDM_ERR_FORBIDDEN, "RSA public key");
	free(jwk);
	/* Over JWS_MAX_RSA_BITS. */
	memset(buf, 0xab, sizeof(buf));
	jwk = jwk_with(&krsa, "n", buf, JWS_MAX_RSA_BITS / 8 + 1);
	refused_jwk("RS256", jwk, MDM_ERR_FORBIDDEN, "over 8192 bits");
	free(jwk);
	/* The key does not fit alg (RFC 7518 section 3.1). */
	refused_jwk("ES256", k384.jwk, MDM_ERR_FORBIDDEN, "needs a P-256 key");
	refused_jwk("ES384", k256.jwk, MDM_ERR_FORBIDDEN, "needs a P-384 key");
	refused_jwk("RS256", k256.jwk, MDM_ERR_FORBIDDEN, "needs a RSA key");
	refused_jwk("ES256", krsa.jwk, MDM_ERR_FORBIDDEN, "needs a P-256 key");
}
END_TEST

/* ---- refusals: signatures ---- */

static jws_msg *parsed(const char *body)
{
	jws_msg *m = NULL;
	char err[512] = "";

	ck_assert_msg(jws_parse(body, strlen(body), &m, err, sizeof(err)) == MDM_OK, "%s", err);
	ck_assert_ptr_nonnull(m);
	return m;
}

static void verify_fails(const char *body, const jws_key *key, mdm_err rc)
{
	jws_msg *m = parsed(body);
	char err[512] = "";

	ck_assert_int_eq(jws_verify(m, key ? key : m->jwk, err, sizeof(err)), rc);
	ck_assert_msg(
	        strstr(err, rc == MDM_ERR_AUTH ? "does not verify" : "needs") != NULL, "%s", err);
	jws_msg_free(m);
}

/* body with part i (0 protected, 1 payload, 2 signature) replaced by value. */
static char *body_with(const char *body, int i, const char *value)
{
	static const char *const name[3] = {"protected", "payload", "signature"};
	json_value *v = NULL;
	const char *p[3];
	char *out;

	ck_assert_int_eq(json_parse(body, strlen(body), &v, NULL, 0), MDM_OK);
	for (int k = 0; k < 3; k++)
		p[k] = k == i ? value : json_get_cstr(v, name[k]);
	out = fmt(
	        "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", p[0], p[1], p[2]);
	json_free(v);
	return out;
}

START_TEST(refuses_bad_signatures)
{
	const struct tkey *keys[] = {&k256, &k384, &krsa};

	for (size_t i = 0; i < 3; i++) {
		const struct tkey *k = keys[i];
		char *prot = prot_jwk(k, URL), *body = jws_make(k->pk, k->alg, prot, "{\"a\":1}");
		char *other = prot_jwk(k, URL "x"), *b, *v;
		jws_msg *m = parsed(body);
		uint8_t *sig;
		size_t n;
		char *input;

		/* The good one verifies. */
		ck_assert_int_eq(jws_verify(m, m->jwk, NULL, 0), MDM_OK);
		/* Tampered payload, protected header (another url), signature. */
		v = b64u_str("{\"a\":2}");
		b = body_with(body, 1, v);
		verify_fails(b, NULL, MDM_ERR_AUTH);
		free(b);
		free(v);
		v = b64u_str(other);
		b = body_with(body, 0, v);
		verify_fails(b, NULL, MDM_ERR_AUTH);
		free(b);
		free(v);
		sig = malloc(m->sig_len_);
		memcpy(sig, m->sig_, m->sig_len_);
		sig[m->sig_len_ / 2] ^= 0x10;
		v = b64u(sig, m->sig_len_);
		b = body_with(body, 2, v);
		verify_fails(b, NULL, MDM_ERR_AUTH);
		free(b);
		free(v);
		/* One byte short, one byte more. */
		v = b64u(m->sig_, m->sig_len_ - 1);
		b = body_with(body, 2, v);
		verify_fails(b, NULL, MDM_ERR_AUTH);
		free(b);
		free(v);
		memcpy(sig, m->sig_, m->sig_len_);
		sig = realloc(sig, m->sig_len_ + 1);
		sig[m->sig_len_] = 0;
		v = b64u(sig, m->sig_len_ + 1);
		b = body_with(body, 2, v);
		verify_fails(b, NULL, MDM_ERR_AUTH);
		free(b);
		free(v);
		free(sig);
		if (k->alg[0] == 'E') {
			/* OpenSSL's DER form of a valid signature is not R || S (RFC 7518
			 * section 3.4). */
			input = m->signing_input_;
			sig = sign_raw(k->pk, k->alg, input, &n, 1);
			v = b64u(sig, n);
			b = body_with(body, 2, v);
			verify_fails(b, NULL, MDM_ERR_AUTH);
			free(b);
			free(v);
			free(sig);
			/* R || S of zeros, and of the group order's bytes all ones (out of range).
			 */
			sig = calloc(1, m->sig_len_);
			v = b64u(sig, m->sig_len_);
			b = body_with(body, 2, v);
			verify_fails(b, NULL, MDM_ERR_AUTH);
			free(b);
			free(v);
			memset(sig, 0xff, m->sig_len_);
			v = b64u(sig, m->sig_len_);
			b = body_with(body, 2, v);
			verify_fails(b, NULL, MDM_ERR_AUTH);
			free(b);
			free(v);
			free(sig);
		}
		/* Another key of the same kind does not verify it; a key of another kind does not
		 * fit. */
		{
			EVP_PKEY *pk2 = k->alg[0] == 'R' ? EVP_RSA_gen(2048)
			        : k->alg[2] == '2'       ? EVP_EC_gen("P-256")
			                                 : EVP_EC_gen("P-384");
			struct tkey k2 = {k->alg, pk2, ""};
			jws_key *key2 = NULL;
			tkey_jwk(&k2);
			ck_assert_int_eq(
			        jws_key_from_jwk(k2.jwk, strlen(k2.jwk), &key2, NULL, 0), MDM_OK);
			verify_fails(body, key2, MDM_ERR_AUTH);
			jws_key_free(key2);
			EVP_PKEY_free(pk2);
			const struct tkey *wrong = k == &krsa ? &k256 : &krsa;
			ck_assert_int_eq(
			        jws_key_from_jwk(wrong->jwk, strlen(wrong->jwk), &key2, NULL, 0),
			        MDM_OK);
			verify_fails(body, key2, MDM_ERR_FORBIDDEN);
			jws_key_free(key2);
		}
		jws_msg_free(m);
		free(prot);
		free(other);
		free(body);
	}
}
END_TEST

/* ---- the RFC examples ---- */

/* RFC 7515 appendix A.2 and A.3: the same payload, signed with RS256 and ES256. */
#define RFC7515_PAYLOAD                                                                            \
	"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0" \
	"cnV"                                                                                      \
	"lfQ"
#define RFC7515_A2_N                                                                               \
	"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"                               \
	"HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"                               \
	"D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"                               \
	"SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"                               \
	"MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"                               \
	"NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
#define RFC7515_A2_SIG                                                                             \
	"cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_"    \
	"O8W2Fp5j"                                                                                 \
	"ujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"                                        \
	"nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L0"                                            \
	"7Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"                                             \
	"eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUip"                                       \
	"UTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
#define RFC7515_A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define RFC7515_A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define RFC7515_A3_SIG                                                                             \
	"DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"

static void rfc_example(const char *jwk, const char *alg, const char *prot64, const char *sig64)
{
	jws_key *k = NULL;
	char err[256] = "", input[512];
	uint8_t *sig = NULL;
	size_t siglen;

	ck_assert_msg(
	        jws_key_from_jwk(jwk, strlen(jwk), &k, err, sizeof(err)) == MDM_OK, "%s", err);
	ck_assert_int_eq(base64url_decode(sig64, strlen(sig64), 1024, &sig, &siglen), MDM_OK);
	snprintf(input, sizeof(input), "%s.%s", prot64, RFC7515_PAYLOAD);
	ck_assert_int_eq(
	        jws_verify_raw(k, alg, (const uint8_t *)input, strlen(input), sig, siglen), MDM_OK);
	/* One bit of the input, one of the signature. */
	input[strlen(input) - 1] ^= 1;
	ck_assert_int_eq(jws_verify_raw(k, alg, (const uint8_t *)input, strlen(input), sig, siglen),
	        MDM_ERR_AUTH);
	input[strlen(input) - 1] ^= 1;
	sig[3] ^= 1;
	ck_assert_int_eq(jws_verify_raw(k, alg, (const uint8_t *)input, strlen(input), sig, siglen),
	        MDM_ERR_AUTH);
	/* The key under another alg: does not fit, or is not offered. */
	ck_assert_int_eq(jws_verify_raw(k, alg[0] == 'R' ? "ES256" : "RS256",
	                         (const uint8_t *)input, strlen(input), sig, siglen),
	        MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(jws_verify_raw(k, "none", (const uint8_t *)input, strlen(input), sig, 0),
	        MDM_ERR_UNSUPPORTED);
	free(sig);
	jws_key_free(k);
}

START_TEST(rfc7515_a2_rs256)
{
	rfc_example("{\"kty\":\"RSA\",\"n\":\"" RFC7515_A2_N "\",\"e\":\"AQAB\"}", "RS256",
	        "eyJhbGciOiJSUzI1NiJ9", RFC7515_A2_SIG);
}
END_TEST

START_TEST(rfc7515_a3_es256)
{
	rfc_example("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" RFC7515_A3_X
	            "\",\"y\":\"" RFC7515_A3_Y "\"}",
	        "ES256", "eyJhbGciOiJFUzI1NiJ9", RFC7515_A3_SIG);
}
END_TEST

/* RFC 7638 section 3.1: the thumbprint of the RFC 7517 appendix A.1 RSA key. */
START_TEST(rfc7638_thumbprint)
{
	static const char n[] =
	        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
	        "tSoc_"
	        "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
	        "65YGjQR0_"
	        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyr"
	        "dkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-"
	        "csFCur-kEgU8awapJzKnqDKgw";
	char *jwk = fmt("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":"
	                "\"2011-04-29\"}",
	        n);
	char *canon = fmt("{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"%s\"}", n), *out = NULL;
	char tp[64];
	jws_key *k = NULL;

	ck_assert_int_eq(jws_key_from_jwk(jwk, strlen(jwk), &k, NULL, 0), MDM_OK);
	ck_assert_int_eq(jws_key_thumbprint(k, tp), MDM_OK);
	ck_assert_str_eq(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	ck_assert_uint_eq(strlen(tp), JWS_THUMBPRINT_LEN);
	/* The canonical form: required members only, sorted, no white space (section 3.2). */
	ck_assert_int_eq(jws_key_to_jwk(k, &out), MDM_OK);
	ck_assert_str_eq(out, canon);
	ck_assert_str_eq(jws_key_kty(k), "RSA");
	free(out);
	/* RFC 8555 section 8.1: token "." thumbprint, and its SHA-256. */
	{
		uint8_t md[32], want[32];
		unsigned int mdlen;
		ck_assert_int_eq(
		        jws_key_authorization(
		                "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", k, &out, md),
		        MDM_OK);
		ck_assert_str_eq(out,
		        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_"
		        "7noWXFZAfHkxZsRG"
		        "C9Xs");
		ck_assert_int_eq(EVP_Digest(out, strlen(out), want, &mdlen, EVP_sha256(), NULL), 1);
		ck_assert(memcmp(md, want, 32) == 0);
		free(out);
		ck_assert_int_eq(jws_key_authorization("a.b", k, &out, NULL), MDM_ERR_INVAL);
		ck_assert_ptr_null(out);
		ck_assert_int_eq(jws_key_authorization("", k, &out, NULL), MDM_ERR_INVAL);
		ck_assert_int_eq(jws_key_authorization("ab=", k, &out, NULL), MDM_ERR_INVAL);
	}
	jws_key_free(k);
	free(jwk);
	free(canon);
}
END_TEST

/* ---- messages signed here ---- */

START_TEST(signed_messages)
{
	const struct tkey *keys[] = {&k256, &k384, &krsa};

	for (size_t i = 0; i < 3; i++) {
		const struct tkey *k = keys[i];
		char *prot = prot_jwk(k, URL);
		char *body = jws_make(k->pk, k->alg, prot, "{\"termsOfServiceAgreed\":true}");
		jws_msg *m = parsed(body);
		jws_key *stored = NULL;
		char tp[64], err[256];
		uint8_t *der = NULL;
		unsigned char *want = NULL;
		size_t derlen;
		int wantlen;

		ck_assert_str_eq(m->alg, k->alg);
		ck_assert_str_eq(m->nonce, NONCE);
		ck_assert_str_eq(m->url, URL);
		ck_assert_ptr_null(m->kid);
		ck_assert_ptr_nonnull(m->jwk);
		ck_assert_str_eq(m->jwk_json, k->jwk);
		ck_assert_uint_eq(m->payload_len, strlen("{\"termsOfServiceAgreed\":true}"));
		ck_assert_str_eq((const char *)m->payload, "{\"termsOfServiceAgreed\":true}");
		ck_assert_int_eq(jws_verify(m, m->jwk, err, sizeof(err)), MDM_OK);

		/* The stored JWK gives back the same key: thumbprint, SPKI, equality. */
		ck_assert_int_eq(
		        jws_key_from_jwk(m->jwk_json, strlen(m->jwk_json), &stored, NULL, 0),
		        MDM_OK);
		ck_assert_int_eq(jws_key_thumbprint(stored, tp), MDM_OK);
		ck_assert_str_eq(tp, m->thumbprint);
		ck_assert_uint_eq(strlen(tp), JWS_THUMBPRINT_LEN);
		ck_assert(jws_key_equal(stored, m->jwk));
		ck_assert(!jws_key_equal(stored, NULL));
		ck_assert_str_eq(jws_key_kty(stored), k->alg[0] == 'E' ? "EC" : "RSA");
		ck_assert_int_eq(jws_key_spki_der(stored, &der, &derlen), MDM_OK);
		wantlen = i2d_PUBKEY(k->pk, &want);
		ck_assert_int_gt(wantlen, 0);
		ck_assert_uint_eq(derlen, (size_t)wantlen);
		ck_assert(memcmp(der, want, derlen) == 0);
		free(der);
		OPENSSL_free(want);
		jws_msg_free(m);
		free(body);
		free(prot);

		/* With kid: the account's stored key verifies it; POST-as-GET has an empty payload.
		 */
		prot = fmt("{\"alg\":\"%s\",\"kid\":\"https://mdm.example.com/acme/acct/7\","
		           "\"nonce\":\"" NONCE
		           "\",\"url\":\"https://mdm.example.com/acme/order/1\","
		           "\"typ\":\"ignored\"}",
		        k->alg);
		body = jws_make(k->pk, k->alg, prot, "");
		m = parsed(body);
		ck_assert_str_eq(m->kid, "https://mdm.example.com/acme/acct/7");
		ck_assert_ptr_null(m->jwk);
		ck_assert_ptr_null(m->jwk_json);
		ck_assert_str_eq(m->thumbprint, "");
		ck_assert_uint_eq(m->payload_len, 0);
		ck_assert_ptr_nonnull(m->payload);
		ck_assert_int_eq(jws_verify(m, stored, err, sizeof(err)), MDM_OK);
		jws_msg_free(m);
		free(body);
		free(prot);
		jws_key_free(stored);
	}
	jws_msg_free(NULL);
	jws_key_free(NULL);
}
END_TEST

/* RFC 8555 section 7.3.5: the inner JWS of a key change has jwk and no nonce. */
START_TEST(key_change_inner)
{
	char *prot = fmt("{\"alg\":\"ES384\",\"jwk\":%s,\"url\":\"https://mdm.example.com/acme/"
	                 "key-change\"}",
	        k384.jwk);
	char *body = jws_make(k384.pk, "ES384", prot, "{\"account\":\"a\",\"oldKey\":{}}");
	char err[512] = "";
	jws_msg *m = NULL;

	ck_assert_msg(
	        jws_parse_inner(body, strlen(body), &m, err, sizeof(err)) == MDM_OK, "%s", err);
	ck_assert_ptr_null(m->nonce);
	ck_assert_str_eq(m->url, "https://mdm.example.com/acme/key-change");
	ck_assert_int_eq(jws_verify(m, m->jwk, err, sizeof(err)), MDM_OK);
	jws_msg_free(m);
	/* As an outer JWS it lacks its nonce. */
	ck_assert_int_eq(jws_parse(body, strlen(body), &m, err, sizeof(err)), MDM_ERR_CONFLICT);
	ck_assert_ptr_null(m);
	free(body);
	free(prot);
	/* With a nonce, or with kid: refused. */
	prot = prot_jwk(&k384, URL);
	body = jws_make(k384.pk, "ES384", prot, "{}");
	ck_assert_int_eq(jws_parse_inner(body, strlen(body), &m, err, sizeof(err)), MDM_ERR_PARSE);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(strstr(err, "must not have a \"nonce\""));
	free(body);
	free(prot);
	prot = fmt("{\"alg\":\"ES384\",\"kid\":\"https://mdm.example.com/acme/acct/1\",\"url\":"
	           "\"" URL "\"}");
	body = jws_make(k384.pk, "ES384", prot, "{}");
	ck_assert_int_eq(jws_parse_inner(body, strlen(body), &m, err, sizeof(err)), MDM_ERR_PARSE);
	ck_assert_ptr_nonnull(strstr(err, "must have a \"jwk\""));
	free(body);
	free(prot);
}
END_TEST

/* The list a badSignatureAlgorithm problem carries: each one is taken, with its key. */
START_TEST(algorithms_list)
{
	const struct tkey *keys[] = {&k256, &k384, &krsa};
	const char *list = jws_algorithms_json();
	json_value *v = NULL;

	ck_assert_int_eq(json_parse(list, strlen(list), &v, NULL, 0), MDM_OK);
	ck_assert_uint_eq(json_array_len(v), 3);
	for (size_t i = 0; i < 3; i++) {
		const char *alg = json_string(json_array_at(v, i), NULL);
		const struct tkey *k = NULL;
		for (size_t j = 0; j < 3; j++)
			if (strcmp(keys[j]->alg, alg) == 0)
				k = keys[j];
		ck_assert_ptr_nonnull(k);
		char *prot = prot_jwk(k, URL), *body = jws_make(k->pk, alg, prot, "{}");
		jws_msg *m = parsed(body);
		ck_assert_int_eq(jws_verify(m, m->jwk, NULL, 0), MDM_OK);
		jws_msg_free(m);
		free(body);
		free(prot);
	}
	json_free(v);
}
END_TEST

/* JWK members in any order, with optional members, give the canonical form. */
START_TEST(jwk_canonical)
{
	json_value *j = NULL;
	jws_key *k = NULL;
	char *jwk, *out = NULL;

	ck_assert_int_eq(json_parse(k256.jwk, strlen(k256.jwk), &j, NULL, 0), MDM_OK);
	jwk = fmt("{ \"y\" : \"%s\", \"use\":\"sig\", \"kid\":\"1\", \"x\":\"%s\", \"kty\":\"EC\", "
	          "\"crv\":\"P-256\", \"alg\":\"ES256\", \"key_ops\":[\"verify\"] }",
	        json_get_cstr(j, "y"), json_get_cstr(j, "x"));
	ck_assert_int_eq(jws_key_from_jwk(jwk, strlen(jwk), &k, NULL, 0), MDM_OK);
	ck_assert_int_eq(jws_key_to_jwk(k, &out), MDM_OK);
	ck_assert_str_eq(out, k256.jwk);
	free(out);
	jws_key_free(k);
	free(jwk);
	json_free(j);
	/* Not JSON at all. */
	ck_assert_int_eq(jws_key_from_jwk("{", 1, &k, NULL, 0), MDM_ERR_PARSE);
	ck_assert_ptr_null(k);
}
END_TEST

/* What a third-party client sends (tests/unit/data/jws/README.md: python3-acme). */
START_TEST(third_party_client)
{
	static const char *const algs[] = {"es256", "es384", "rs256"};

	for (size_t i = 0; i < 3; i++) {
		char path[256], err[512] = "", tp[64];
		size_t n;
		char *text;
		jws_msg *m = NULL;
		jws_key *stored = NULL;

		snprintf(path, sizeof(path), "tests/unit/data/jws/key-%s.jwk", algs[i]);
		text = ts_file_get(path, &n);
		ck_assert_msg(jws_key_from_jwk(text, n, &stored, err, sizeof(err)) == MDM_OK,
		        "%s: %s", path, err);
		free(text);

		snprintf(path, sizeof(path), "tests/unit/data/jws/newaccount-%s.json", algs[i]);
		text = ts_file_get(path, &n);
		ck_assert_msg(
		        jws_parse(text, n, &m, err, sizeof(err)) == MDM_OK, "%s: %s", path, err);
		free(text);
		ck_assert_int_eq(strncasecmp(m->alg, algs[i], 5), 0);
		ck_assert_str_eq(m->url, "https://mdm.example.com/acme/new-account");
		ck_assert_ptr_nonnull(m->jwk);
		ck_assert(jws_key_equal(m->jwk, stored));
		ck_assert_int_eq(jws_key_thumbprint(stored, tp), MDM_OK);
		ck_assert_str_eq(m->thumbprint, tp);
		ck_assert_str_eq((const char *)m->payload,
		        "{\"termsOfServiceAgreed\": true, \"contact\": []}");
		ck_assert_msg(
		        jws_verify(m, m->jwk, err, sizeof(err)) == MDM_OK, "%s: %s", path, err);
		jws_msg_free(m);

		snprintf(path, sizeof(path), "tests/unit/data/jws/postasget-%s.json", algs[i]);
		text = ts_file_get(path, &n);
		ck_assert_msg(
		        jws_parse(text, n, &m, err, sizeof(err)) == MDM_OK, "%s: %s", path, err);
		free(text);
		ck_assert_str_eq(m->kid, "https://mdm.example.com/acme/acct/1");
		ck_assert_uint_eq(m->payload_len, 0);
		ck_assert_msg(
		        jws_verify(m, stored, err, sizeof(err)) == MDM_OK, "%s: %s", path, err);
		jws_msg_free(m);
		jws_key_free(stored);
	}
}
END_TEST

void jws_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "refusals", 60, NULL, NULL);

	tcase_add_unchecked_fixture(tc, keys_make, keys_free);
	ts_add_tests(tc, refuses_structure, refuses_bad_base64url, refuses_over_limits,
	        refuses_algorithms, refuses_header_members, refuses_jwks, refuses_bad_signatures);
	tc = ts_tcase(s, "rfc", 0, NULL, NULL);
	ts_add_tests(
	        tc, rfc7515_a2_rs256, rfc7515_a3_es256, rfc7638_thumbprint, third_party_client);
	tc = ts_tcase(s, "signed", 60, NULL, NULL);
	tcase_add_unchecked_fixture(tc, keys_make, keys_free);
	ts_add_tests(tc, signed_messages, key_change_inner, algorithms_list, jwk_canonical);
}
