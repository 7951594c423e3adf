/*
 * libFuzzer target for jws_parse and jws_verify (lib/x509_jws.c): the
 * input is an ACME request body (and, when jws_parse refuses it, the
 * inner JWS of a key change for jws_parse_inner).  Every promise of
 * jws.h must hold: no message and a printable reason on every refusal,
 * MDM_ERR_LIMIT for a body over JWS_MAX_BODY; a message taken has an
 * allowed alg, a url, exactly one of kid and jwk, and with jwk a
 * canonical JWK that reads back to the same key and thumbprint (an inner
 * one: jwk and no nonce); verifying it gives MDM_OK, MDM_ERR_AUTH or (a
 * stored key of another kind) MDM_ERR_FORBIDDEN, and nothing is left on
 * the OpenSSL error queue.
 *
 * Inputs that start with 'S' are a recipe instead: bits 0-1 of byte 1
 * pick a key made at start-up (0 and 3 P-256, 1 P-384, 2 RSA-2048), bit 2
 * "kid" instead of "jwk", bits 3-7 the payload byte changed after; the
 * rest is the payload, signed here with OpenSSL as a client would.  That
 * must parse and verify, and must fail with MDM_ERR_AUTH once a byte of
 * the payload changes.
 *
 * Build settings for scripts/fuzz.sh.  Seeds: tests/unit/data/jws, what
 * python3-acme sends and a few recipes.
 * fuzz-max-len: 65600
 */
#include "base64.h"
#include "jws.h"
#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const recipe_alg[3] = {"ES256", "ES384", "RS256"};
static EVP_PKEY *recipe_pk[3];
static jws_key *recipe_key[3];
static char recipe_jwk[3][1024];

static void fuzz_fail(const char *what, const char *detail) __attribute__((noreturn));

static void fuzz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "jws_fuzz: %s%s%s\n", what, detail != NULL ? ": " : "",
	        detail != NULL ? detail : "");
	abort();
}

static void check_queue(const char *after)
{
	if (ERR_peek_error() != 0)
		fuzz_fail("OpenSSL error left queued", after);
}

static char *b64u(const void *p, size_t n)
{
	char *s = NULL;
	size_t l;

	if (base64url_encode(p, n, &s, &l) != MDM_OK)
		fuzz_fail("base64url_encode", NULL);
	return s;
}

static char *bn_b64u(EVP_PKEY *pk, const char *name, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[512];
	int n;

	if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
		fuzz_fail("EVP_PKEY_get_bn_param", name);
	n = pad > 0 ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	if (n <= 0)
		fuzz_fail("BN_bn2bin", name);
	return b64u(buf, (size_t)n);
}

static void recipe_setup(void)
{
	for (int i = 0; i < 3; i++) {
		char *a, *b;
		recipe_pk[i] = i == 0 ? EVP_EC_gen("P-256")
		        : i == 1      ? EVP_EC_gen("P-384")
		                      : EVP_RSA_gen(2048);
		if (recipe_pk[i] == NULL)
			fuzz_fail("recipe setup", "key");
		if (i < 2) {
			a = bn_b64u(recipe_pk[i], OSSL_PKEY_PARAM_EC_PUB_X, i == 0 ? 32 : 48);
			b = bn_b64u(recipe_pk[i], OSSL_PKEY_PARAM_EC_PUB_Y, i == 0 ? 32 : 48);
			snprintf(recipe_jwk[i], sizeof(recipe_jwk[i]),
			        "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
			        i == 0 ? "P-256" : "P-384", a, b);
		} else {
			a = bn_b64u(recipe_pk[i], OSSL_PKEY_PARAM_RSA_E, 0);
			b = bn_b64u(recipe_pk[i], OSSL_PKEY_PARAM_RSA_N, 0);
			snprintf(recipe_jwk[i], sizeof(recipe_jwk[i]),
			        "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a, b);
		}
		free(a);
		free(b);
		if (jws_key_from_jwk(recipe_jwk[i], strlen(recipe_jwk[i]), &recipe_key[i], NULL,
		            0) != MDM_OK)
			fuzz_fail("recipe setup", "jws_key_from_jwk");
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX);
	recipe_setup();
	ERR_clear_error();
	return 0;
}

/* The promises of a message jws_parse took. */
static void check_msg(const jws_msg *m)
{
	jws_key *k = NULL;
	char tp[64], err[512];
	uint8_t *der = NULL;
	size_t n;

	if (strcmp(m->alg, "ES256") != 0 && strcmp(m->alg, "ES384") != 0 &&
	        strcmp(m->alg, "RS256") != 0)
		fuzz_fail("an alg off the list taken", m->alg);
	if (m->url == NULL || m->payload == NULL)
		fuzz_fail("a message without url or payload", NULL);
	if ((m->kid == NULL) == (m->jwk == NULL))
		fuzz_fail("not exactly one of kid and jwk", NULL);
	if (m->kid != NULL) {
		if (m->jwk_json != NULL || m->thumbprint[0] != '\0')
			fuzz_fail("kid with a jwk's fields", NULL);
		return;
	}
	if (m->jwk_json == NULL || strlen(m->thumbprint) != JWS_THUMBPRINT_LEN)
		fuzz_fail("jwk without its canonical text or thumbprint", NULL);
	if (jws_key_from_jwk(m->jwk_json, strlen(m->jwk_json), &k, err, sizeof(err)) != MDM_OK)
		fuzz_fail("the canonical JWK does not read back", err);
	if (!jws_key_equal(k, m->jwk))
		fuzz_fail("the canonical JWK reads back to another key", m->jwk_json);
	if (jws_key_thumbprint(k, tp) != MDM_OK || strcmp(tp, m->thumbprint) != 0)
		fuzz_fail("the thumbprint changed", m->jwk_json);
	if (jws_key_spki_der(k, &der, &n) != MDM_OK || n == 0)
		fuzz_fail("no SPKI for a key taken", m->jwk_json);
	free(der);
	jws_key_free(k);
}

/*
 * One parse (jws_parse, or jws_parse_inner when inner) and its promises;
 * verified with key (NULL: m->jwk) when taken.
 */
static mdm_err parse_verify(const char *body, size_t len, const jws_key *key, int inner)
{
	char err[512];
	jws_msg *m = (jws_msg *)err;
	mdm_err e;

	err[0] = '\0';
	e = inner ? jws_parse_inner(body, len, &m, err, sizeof(err))
	          : jws_parse(body, len, &m, err, sizeof(err));
	check_queue("jws_parse");
	if (e != MDM_OK) {
		if (m != NULL)
			fuzz_fail("message returned on refusal", err);
		if (e != MDM_ERR_NOMEM && err[0] == '\0')
			fuzz_fail("refusal without a reason", err_str(e));
		for (const char *c = err; *c != '\0'; c++)
			if (*c < 0x20 || *c >= 0x7f)
				fuzz_fail("a reason that is not printable ASCII", err);
		if (len > JWS_MAX_BODY && e != MDM_ERR_LIMIT)
			fuzz_fail("oversized body not refused for its size", err);
		return e;
	}
	if (m == NULL || err[0] != '\0')
		fuzz_fail("MDM_OK without a message, or with a reason", err);
	check_msg(m);
	if (inner && (m->nonce != NULL || m->jwk == NULL))
		fuzz_fail("an inner JWS with a nonce or without a jwk", NULL);
	if (key == NULL)
		key = m->jwk;
	if (key != NULL) {
		e = jws_verify(m, key, err, sizeof(err));
		check_queue("jws_verify");
		if (e != MDM_OK && e != MDM_ERR_AUTH && e != MDM_ERR_FORBIDDEN)
			fuzz_fail("jws_verify gave an unexpected error", err_str(e));
		if (e == MDM_ERR_FORBIDDEN && m->jwk != NULL && key == m->jwk)
			fuzz_fail("a jwk that does not fit alg was taken", m->alg);
	}
	jws_msg_free(m);
	return e;
}

static char *recipe_body(int k, int kid, const uint8_t *payload, size_t n)
{
	char prot[2048], *p64, *y64, *input, *s64, *body;
	unsigned char sig[1024];
	size_t siglen = sizeof(sig), len;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (kid)
		snprintf(prot, sizeof(prot),
		        "{\"alg\":\"%s\",\"kid\":\"https://acme.example/acct/"
		        "1\",\"nonce\":\"bm9uY2U\","
		        "\"url\":\"https://acme.example/new-order\"}",
		        recipe_alg[k]);
	else
		snprintf(prot, sizeof(prot),
		        "{\"alg\":\"%s\",\"jwk\":%s,\"nonce\":\"bm9uY2U\","
		        "\"url\":\"https://acme.example/new-account\"}",
		        recipe_alg[k], recipe_jwk[k]);
	p64 = b64u(prot, strlen(prot));
	y64 = b64u(payload, n);
	len = strlen(p64) + strlen(y64) + 2;
	if ((input = malloc(len)) == NULL || ctx == NULL)
		fuzz_fail("recipe", "malloc");
	snprintf(input, len, "%s.%s", p64, y64);
	if (EVP_DigestSignInit(
	            ctx, NULL, k == 1 ? EVP_sha384() : EVP_sha256(), NULL, recipe_pk[k]) != 1 ||
	        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, strlen(input)) != 1)
		fuzz_fail("recipe", "EVP_DigestSign");
	EVP_MD_CTX_free(ctx);
	if (k < 2) {
		/* DER to R || S (RFC 7518 section 3.4). */
		const unsigned char *q = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
		int flen = k == 0 ? 32 : 48;
		if (es == NULL)
			fuzz_fail("recipe", "d2i_ECDSA_SIG");
		BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, flen);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + flen, flen);
		ECDSA_SIG_free(es);
		siglen = 2 * (size_t)flen;
	}
	s64 = b64u(sig, siglen);
	len = strlen(p64) + strlen(y64) + strlen(s64) + 64;
	if ((body = malloc(len)) == NULL)
		fuzz_fail("recipe", "malloc");
	snprintf(body, len, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", p64,
	        y64, s64);
	free(p64);
	free(y64);
	free(s64);
	free(input);
	return body;
}

static void recipe(const uint8_t *d, size_t n)
{
	int k, kid;
	char *body;
	uint8_t *copy;

	if (n < 2 || n > 16 * 1024)
		return;
	k = (d[1] & 3) % 3;
	kid = (d[1] & 4) != 0;
	body = recipe_body(k, kid, d + 2, n - 2);
	if (parse_verify(body, strlen(body), recipe_key[k], 0) != MDM_OK)
		fuzz_fail("recipe: our own message does not verify", body);
	free(body);
	if (n > 2) {
		if ((copy = malloc(n - 2)) == NULL)
			fuzz_fail("recipe", "malloc");
		memcpy(copy, d + 2, n - 2);
		body = recipe_body(k, kid, copy, n - 2);
		copy[(d[1] >> 3) % (n - 2)] ^= 0x01;
		{
			/* The signature of the original over the changed payload. */
			char *changed = recipe_body(k, kid, copy, n - 2);
			char *sig = strstr(body, "\"signature\":\"");
			char *csig = strstr(changed, "\"signature\":\"");
			size_t keep = (size_t)(csig - changed);
			char *mix = malloc(keep + strlen(sig) + 1);
			if (mix == NULL)
				fuzz_fail("recipe", "malloc");
			memcpy(mix, changed, keep);
			strcpy(mix + keep, sig);
			if (parse_verify(mix, strlen(mix), recipe_key[k], 0) != MDM_ERR_AUTH)
				fuzz_fail("recipe: a changed payload not refused with MDM_ERR_AUTH",
				        mix);
			free(mix);
			free(changed);
		}
		free(body);
		free(copy);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'S') {
		recipe(data, size);
		return 0;
	}
	if (parse_verify((const char *)data, size, NULL, 0) != MDM_OK)
		(void)parse_verify((const char *)data, size, NULL, 1);
	/* A kid message is verified with a stored key: each of ours once. */
	for (int i = 0; i < 3; i++)
		(void)parse_verify((const char *)data, size, recipe_key[i], 0);
	return 0;
}

/*
 * libFuzzer dictionary, one token per line (scripts/fuzz.sh extracts it).
 * fuzz-dict: "\"protected\":"
 * fuzz-dict: "\"payload\":"
 * fuzz-dict: "\"signature\":"
 * fuzz-dict: "\"header\":"
 * fuzz-dict: "\"signatures\":"
 * fuzz-dict: "eyJhbGciOiJFUzI1NiJ9"
 * fuzz-dict: "eyJhbGciOiJub25lIn0"
 * fuzz-dict: "eyJ"
 * fuzz-dict: "e30"
 */
