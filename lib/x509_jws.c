/*
 * JWS as ACME uses it (RFC 8555 section 6.2), see jws.h: the flattened
 * serialization read with the strict JSON reader, public keys from JWKs
 * (RFC 7517, RFC 7518 section 6) checked and turned into OpenSSL keys,
 * RFC 7638 thumbprints, and the ECDSA and RSA verification of RFC 7518
 * section 3.  Named x509_jws.c because only x509*.c and cms*.c include
 * OpenSSL; it uses nothing else of x509.
 */
#include "jws.h"

#include "base64.h"
#include "json.h"
#include "x509_int.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char jws_who[] = "jws";

enum jws_kind { JWS_KEY_P256, JWS_KEY_P384, JWS_KEY_RSA };

struct jws_key {
	enum jws_kind kind;
	EVP_PKEY *pkey;
	char *jwk; /* canonical (RFC 7638 section 3.2), what the thumbprint hashes */
};

/* The allow-list of RFC 8555 section 6.2: asymmetric only, no "none", no MAC. */
static const struct jws_alg {
	const char *name;
	enum jws_kind kind;
	const EVP_MD *(*md)(void);
} jws_algs[] = {
        {"ES256", JWS_KEY_P256, EVP_sha256},
        {"ES384", JWS_KEY_P384, EVP_sha384},
        {"RS256", JWS_KEY_RSA, EVP_sha256},
};

/*
 * The same list as JSON, for the badSignatureAlgorithm problem document:
 * written from the table once, so the two cannot drift apart.  One
 * request at a time, as every program here: not thread-safe.
 */
const char *jws_algorithms_json(void)
{
	static char list[64];
	size_t o = 0;

	/* Names fit jws_msg.alg (at most 7 bytes): '"', name, '"' and ',' each, and "[]". */
	_Static_assert(sizeof(jws_algs) / sizeof(jws_algs[0]) * 10 + 3 <= sizeof(list),
	        "jws_algorithms_json's buffer is too small for the table");

	if (list[0] != '\0')
		return list;
	list[o++] = '[';
	for (size_t i = 0; i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o - 1, "%s\"%s\"", i > 0 ? "," : "",
		        jws_algs[i].name);
	list[o++] = ']';
	list[o] = '\0';
	return list;
}

/* The curves of RFC 7518 section 6.2.1.1 we take; the field size is x's, y's and R's, S's. */
static const struct jws_curve {
	const char *crv, *group;
	int nid;
	size_t flen;
} jws_curves[] = {
        [JWS_KEY_P256] = {"P-256", "prime256v1", NID_X9_62_prime256v1, 32},
        [JWS_KEY_P384] = {"P-384", "secp384r1", NID_secp384r1, 48},
};

/* The largest signature: an RSA one of JWS_MAX_RSA_BITS. */
#define JWS_MAX_SIG (JWS_MAX_RSA_BITS / 8)

/* Private JWK members (RFC 7518 sections 6.2.2, 6.3.2 and 6.4.1). */
static const char *const jws_private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

static const struct jws_alg *jws_alg_find(const char *name)
{
	for (size_t i = 0; i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
		if (strcmp(jws_algs[i].name, name) == 0)
			return &jws_algs[i];
	return NULL;
}

static const char *jws_kind_name(enum jws_kind k)
{
	return k == JWS_KEY_RSA ? "RSA" : jws_curves[k].crv;
}

/*
 * Untrusted text for an err buffer that goes back to the peer (in a JSON
 * problem document): printable ASCII only, bounded.
 */
static const char *jws_show(const char *s, char *buf, size_t cap)
{
	size_t o = 0;

	for (; *s != '\0' && o + 4 < cap; s++)
		buf[o++] = (*s >= 0x20 && *s < 0x7f && *s != '"' && *s != '\\') ? *s : '?';
	if (*s != '\0') {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- keys ---- */

void jws_key_free(jws_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->jwk);
	free(k);
}

/*
 * A base64url member of a JWK, decoded: MDM_ERR_PARSE when absent, not a
 * string or not base64url; MDM_ERR_LIMIT over max bytes.
 */
MDM_WUR static mdm_err jws_member_b64(
        const json_value *jwk, const char *name, size_t max, uint8_t **out, size_t *outlen)
{
	size_t n;
	const char *s = json_string(json_get(jwk, name), &n);

	*out = NULL;
	*outlen = 0;
	if (s == NULL)
		return MDM_ERR_PARSE;
	return base64url_decode(s, n, max, out, outlen);
}

/* s as base64url between quotes after "name":, appended to a canonical JWK in buf. */
MDM_WUR static mdm_err jws_jwk_member(
        char *buf, size_t cap, size_t *o, const char *name, const uint8_t *p, size_t len)
{
	char *b64 = NULL;
	size_t n;
	mdm_err rc;
	int w;

	if ((rc = base64url_encode(p, len, &b64, &n)) != MDM_OK)
		return rc;
	w = snprintf(buf + *o, cap - *o, "%s\"%s\":\"%s\"", *o > 1 ? "," : "", name, b64);
	free(b64);
	if (w < 0 || (size_t)w >= cap - *o)
		return MDM_ERR_INTERNAL;
	*o += (size_t)w;
	return MDM_OK;
}

/* Public-key checks OpenSSL makes (the point on the curve, RSA n odd and sane). */
static int jws_pkey_check(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	int ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;

	if (!ok)
		x509_ossl_fail(MDM_LOG_INFO, "EVP_PKEY_public_check");
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

MDM_WUR static mdm_err jws_pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	mdm_err rc = MDM_ERR_CRYPTO;

	*out = NULL;
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "OSSL_PARAM_BLD_to_param");
		return MDM_ERR_NOMEM;
	}
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	        EVP_PKEY_fromdata_init(ctx) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_PKEY_fromdata_init");
		goto out;
	}
	/* Fails on untrusted values (a point off the curve): detail under the refusal. */
	if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		x509_ossl_fail(MDM_LOG_INFO, "EVP_PKEY_fromdata");
		*out = NULL;
		rc = MDM_ERR_FORBIDDEN;
		goto out;
	}
	rc = MDM_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return rc;
}

/* An EC JWK (RFC 7518 section 6.2.1) on P-256 or P-384. */
MDM_WUR static mdm_err jws_key_ec(const json_value *jwk, jws_key *k, char *err, size_t errlen)
{
	const char *crv = json_get_cstr(jwk, "crv");
	const struct jws_curve *c = NULL;
	uint8_t *x = NULL, *y = NULL, pt[1 + 2 * 48];
	size_t xl = 0, yl = 0, o = 1;
	OSSL_PARAM_BLD *bld = NULL;
	EC_GROUP *group = NULL;
	BIGNUM *p = NULL, *bx = NULL, *by = NULL;
	char show[40], buf[256];
	mdm_err rc;

	if (crv == NULL)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 7518 section 6.2.1.1: an EC JWK without a \"crv\" string");
	if (strcmp(crv, "P-256") == 0)
		k->kind = JWS_KEY_P256;
	else if (strcmp(crv, "P-384") == 0)
		k->kind = JWS_KEY_P384;
	else
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 8555 section 6.2: curve \"%s\" is not offered (P-256, P-384)",
		        jws_show(crv, show, sizeof(show)));
	c = &jws_curves[k->kind];
	if ((rc = jws_member_b64(jwk, "x", c->flen, &x, &xl)) == MDM_ERR_NOMEM ||
	        (rc == MDM_OK &&
	                (rc = jws_member_b64(jwk, "y", c->flen, &y, &yl)) == MDM_ERR_NOMEM))
		goto out;
	/* The full field size, leading zeros kept (RFC 7518 section 6.2.1.2, 6.2.1.3). */
	if (rc != MDM_OK || xl != c->flen || yl != c->flen) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 7518 section 6.2.1.2: \"x\" and \"y\" must be base64url of "
		        "exactly %zu octets for %s",
		        c->flen, c->crv);
		goto out;
	}
	/* Coordinates are field elements: below p, so that one key has one JWK. */
	rc = MDM_ERR_NOMEM;
	if ((group = EC_GROUP_new_by_curve_name(c->nid)) == NULL || (p = BN_new()) == NULL ||
	        EC_GROUP_get_curve(group, p, NULL, NULL, NULL) != 1 ||
	        (bx = BN_bin2bn(x, (int)xl, NULL)) == NULL ||
	        (by = BN_bin2bn(y, (int)yl, NULL)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "EC_GROUP_get_curve");
		goto out;
	}
	if (BN_cmp(bx, p) >= 0 || BN_cmp(by, p) >= 0) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 7518 section 6.2.1.2: a coordinate is not below the field prime of %s",
		        c->crv);
		goto out;
	}
	pt[0] = 0x04; /* uncompressed (SEC 1 section 2.3.3) */
	memcpy(pt + 1, x, xl);
	memcpy(pt + 1 + xl, y, yl);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) !=
	                1 ||
	        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + xl + yl) !=
	                1) {
		x509_ossl_fail(MDM_LOG_ERROR, "OSSL_PARAM_BLD_push");
		goto out;
	}
	if ((rc = jws_pkey_fromdata("EC", bld, &k->pkey)) == MDM_OK && !jws_pkey_check(k->pkey))
		rc = MDM_ERR_FORBIDDEN;
	if (rc == MDM_ERR_FORBIDDEN) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 8555 section 6.2: the JWK's point is not on %s", c->crv);
		goto out;
	}
	if (rc != MDM_OK)
		goto out;
	snprintf(buf, sizeof(buf), "{\"crv\":\"%s\",\"kty\":\"EC\"", c->crv);
	o = strlen(buf);
	if ((rc = jws_jwk_member(buf, sizeof(buf), &o, "x", x, xl)) != MDM_OK ||
	        (rc = jws_jwk_member(buf, sizeof(buf), &o, "y", y, yl)) != MDM_OK)
		goto out;
	if (o + 2 > sizeof(buf)) {
		rc = MDM_ERR_INTERNAL;
		goto out;
	}
	buf[o++] = '}';
	buf[o] = '\0';
	if ((k->jwk = strdup(buf)) == NULL)
		rc = MDM_ERR_NOMEM;
out:
	OSSL_PARAM_BLD_free(bld);
	EC_GROUP_free(group);
	BN_free(p);
	BN_free(bx);
	BN_free(by);
	free(x);
	free(y);
	return rc;
}

/* An RSA JWK (RFC 7518 section 6.3.1) of JWS_MIN_RSA_BITS to JWS_MAX_RSA_BITS. */
MDM_WUR static mdm_err jws_key_rsa(const json_value *jwk, jws_key *k, char *err, size_t errlen)
{
	uint8_t *n = NULL, *e = NULL;
	size_t nl = 0, el = 0, bits, cap, o;
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	char *buf = NULL;
	mdm_err rc;

	k->kind = JWS_KEY_RSA;
	rc = jws_member_b64(jwk, "n", JWS_MAX_RSA_BITS / 8, &n, &nl);
	if (rc == MDM_ERR_LIMIT) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 8555 section 6.2: an RSA modulus over %d bits", JWS_MAX_RSA_BITS);
		goto out;
	}
	if (rc == MDM_OK)
		rc = jws_member_b64(jwk, "e", 8, &e, &el);
	if (rc == MDM_ERR_NOMEM)
		goto out;
	/* Unsigned big-endian, minimal: no leading zero octet (RFC 7518 section 6.3.1.1). */
	if (rc != MDM_OK || nl == 0 || el == 0 || n[0] == 0 || e[0] == 0) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 7518 section 6.3.1: \"n\" and \"e\" must be base64url of an unsigned "
		        "integer without leading zero octets (\"e\" of at most 8)");
		goto out;
	}
	bits = nl * 8;
	for (unsigned top = n[0]; (top & 0x80) == 0; top <<= 1)
		bits--;
	if (bits < JWS_MIN_RSA_BITS) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 7518 section 3.3: an RSA key of %zu bits, under %d", bits,
		        JWS_MIN_RSA_BITS);
		goto out;
	}
	if ((e[el - 1] & 1) == 0 || (el == 1 && e[0] < 3)) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 8017 section 3.1: the RSA exponent must be odd and at least 3");
		goto out;
	}
	rc = MDM_ERR_NOMEM;
	if ((bn = BN_bin2bn(n, (int)nl, NULL)) == NULL ||
	        (be = BN_bin2bn(e, (int)el, NULL)) == NULL ||
	        (bld = OSSL_PARAM_BLD_new()) == NULL ||
	        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
	        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "OSSL_PARAM_BLD_push_BN");
		goto out;
	}
	if ((rc = jws_pkey_fromdata("RSA", bld, &k->pkey)) == MDM_OK && !jws_pkey_check(k->pkey))
		rc = MDM_ERR_FORBIDDEN;
	if (rc == MDM_ERR_FORBIDDEN) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 8017 section 3.1: not a valid RSA public key");
		goto out;
	}
	if (rc != MDM_OK)
		goto out;
	cap = 64 + (nl + 2) / 3 * 4 + 16;
	if ((buf = malloc(cap)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	buf[0] = '{';
	o = 1;
	if ((rc = jws_jwk_member(buf, cap, &o, "e", e, el)) != MDM_OK)
		goto out;
	memcpy(buf + o, ",\"kty\":\"RSA\"", 12);
	o += 12;
	if ((rc = jws_jwk_member(buf, cap, &o, "n", n, nl)) != MDM_OK)
		goto out;
	if (o + 2 > cap) {
		rc = MDM_ERR_INTERNAL;
		goto out;
	}
	buf[o++] = '}';
	buf[o] = '\0';
	k->jwk = buf;
	buf = NULL;
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(buf);
	free(n);
	free(e);
	return rc;
}

MDM_WUR static mdm_err jws_key_from_value(
        const json_value *jwk, jws_key **out, char *err, size_t errlen)
{
	jws_key *k = NULL;
	const char *kty;
	char show[40];
	mdm_err rc;

	*out = NULL;
	if (json_type_of(jwk) != JSON_OBJECT)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 7517 section 4: a JWK is a JSON object");
	for (size_t i = 0; i < sizeof(jws_private_members) / sizeof(jws_private_members[0]); i++)
		if (json_get(jwk, jws_private_members[i]) != NULL)
			return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
			        "RFC 7518 section 6: the JWK has the private member \"%s\"",
			        jws_private_members[i]);
	if ((kty = json_get_cstr(jwk, "kty")) == NULL)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 7517 section 4.1: a JWK without a \"kty\" string");
	if (strcmp(kty, "EC") != 0 && strcmp(kty, "RSA") != 0)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 8555 section 6.2: key type \"%s\" is not offered (EC, RSA)",
		        jws_show(kty, show, sizeof(show)));
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return MDM_ERR_NOMEM;
	rc = kty[0] == 'E' ? jws_key_ec(jwk, k, err, errlen) : jws_key_rsa(jwk, k, err, errlen);
	if (rc != MDM_OK) {
		jws_key_free(k);
		return rc;
	}
	*out = k;
	return MDM_OK;
}

mdm_err jws_key_from_jwk(const char *jwk_json, size_t len, jws_key **out, char *err, size_t errlen)
{
	json_value *v = NULL;
	char jerr[160];
	mdm_err rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((rc = json_parse(jwk_json, len, &v, jerr, sizeof(jerr))) != MDM_OK) {
		if (rc != MDM_ERR_PARSE && rc != MDM_ERR_LIMIT)
			return rc;
		return mdm_refuse(jws_who, err, errlen, rc, "RFC 7517 section 4: a JWK: %s", jerr);
	}
	rc = jws_key_from_value(v, out, err, errlen);
	json_free(v);
	return rc;
}

mdm_err jws_key_thumbprint(const jws_key *k, char out[64])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *b64 = NULL;
	size_t n;
	mdm_err rc;

	out[0] = '\0';
	if (k == NULL || k->jwk == NULL)
		return MDM_ERR_INVAL;
	/* RFC 7638 section 3: SHA-256 over the UTF-8 of the canonical JWK. */
	if (EVP_Digest(k->jwk, strlen(k->jwk), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	        mdlen != sizeof(md)) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_Digest");
		return MDM_ERR_CRYPTO;
	}
	if ((rc = base64url_encode(md, sizeof(md), &b64, &n)) != MDM_OK)
		return rc;
	if (n != JWS_THUMBPRINT_LEN) {
		free(b64);
		return MDM_ERR_INTERNAL;
	}
	memcpy(out, b64, n + 1);
	free(b64);
	return MDM_OK;
}

mdm_err jws_key_authorization(
        const char *token, const jws_key *account, char **out, uint8_t sha256[32])
{
	char tp[64];
	size_t tl, n;
	unsigned int mdlen = 0;
	char *ka;
	mdm_err rc;

	*out = NULL;
	if (token == NULL || (tl = strlen(token)) == 0 || tl > 1024)
		return MDM_ERR_INVAL;
	for (size_t i = 0; i < tl; i++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
		            token[i]) == NULL)
			return MDM_ERR_INVAL;
	if ((rc = jws_key_thumbprint(account, tp)) != MDM_OK)
		return rc;
	n = tl + 1 + strlen(tp);
	if ((ka = malloc(n + 1)) == NULL)
		return MDM_ERR_NOMEM;
	memcpy(ka, token, tl);
	ka[tl] = '.';
	memcpy(ka + tl + 1, tp, strlen(tp) + 1);
	if (sha256 != NULL &&
	        (EVP_Digest(ka, n, sha256, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_Digest");
		free(ka);
		return MDM_ERR_CRYPTO;
	}
	*out = ka;
	return MDM_OK;
}

mdm_err jws_key_to_jwk(const jws_key *k, char **out)
{
	*out = NULL;
	if (k == NULL || k->jwk == NULL)
		return MDM_ERR_INVAL;
	if ((*out = strdup(k->jwk)) == NULL)
		return MDM_ERR_NOMEM;
	return MDM_OK;
}

mdm_err jws_key_spki_der(const jws_key *k, uint8_t **der, size_t *len)
{
	*der = NULL;
	*len = 0;
	if (k == NULL || k->pkey == NULL)
		return MDM_ERR_INVAL;
	return x509_pkey_spki_der(k->pkey, der, len);
}

int jws_key_equal(const jws_key *a, const jws_key *b)
{
	/* The canonical JWK is one text per public key (fixed-size or minimal integers). */
	return a != NULL && b != NULL && a->jwk != NULL && b->jwk != NULL &&
	        strcmp(a->jwk, b->jwk) == 0;
}

const char *jws_key_kty(const jws_key *k)
{
	if (k == NULL)
		return NULL;
	return k->kind == JWS_KEY_RSA ? "RSA" : "EC";
}

/* ---- verification ---- */

/* R || S (RFC 7518 section 3.4) as the DER ECDSA-Sig-Value OpenSSL verifies. */
MDM_WUR static mdm_err jws_ecdsa_der(
        const uint8_t *sig, size_t flen, unsigned char **der, int *derlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;

	*der = NULL;
	*derlen = 0;
	if ((es = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(sig, (int)flen, NULL)) == NULL ||
	        (s = BN_bin2bn(sig + flen, (int)flen, NULL)) == NULL ||
	        ECDSA_SIG_set0(es, r, s) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "ECDSA_SIG_set0");
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return MDM_ERR_NOMEM;
	}
	*derlen = i2d_ECDSA_SIG(es, der);
	ECDSA_SIG_free(es);
	if (*derlen <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_ECDSA_SIG");
		*der = NULL;
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

mdm_err jws_verify_raw(const jws_key *k, const char *alg, const uint8_t *input, size_t inlen,
        const uint8_t *sig, size_t siglen)
{
	const struct jws_alg *a;
	EVP_MD_CTX *ctx = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	const unsigned char *s = sig;
	size_t slen = siglen;
	int derlen = 0, v;
	mdm_err rc;

	if (k == NULL || k->pkey == NULL || alg == NULL || (input == NULL && inlen > 0) ||
	        (sig == NULL && siglen > 0))
		return MDM_ERR_INVAL;
	if ((a = jws_alg_find(alg)) == NULL)
		return MDM_ERR_UNSUPPORTED;
	if (a->kind != k->kind)
		return MDM_ERR_FORBIDDEN;
	if (k->kind == JWS_KEY_RSA) {
		/* RFC 8017 section 8.2.2 step 1: exactly the modulus' length. */
		if (siglen != (size_t)EVP_PKEY_get_size(k->pkey))
			return MDM_ERR_AUTH;
	} else {
		size_t flen = jws_curves[k->kind].flen;
		if (siglen != 2 * flen)
			return MDM_ERR_AUTH;
		if ((rc = jws_ecdsa_der(sig, flen, &der, &derlen)) != MDM_OK)
			return rc;
		s = der;
		slen = (size_t)derlen;
	}
	rc = MDM_ERR_CRYPTO;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	        EVP_DigestVerifyInit(ctx, &pctx, a->md(), NULL, k->pkey) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_DigestVerifyInit");
		goto out;
	}
	if (k->kind == JWS_KEY_RSA && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_PKEY_CTX_set_rsa_padding");
		goto out;
	}
	v = EVP_DigestVerify(ctx, s, slen, input, inlen);
	/* 0 is a bad signature; below 0 a malformed one (R or S out of range): the same to us. */
	rc = v == 1 ? MDM_OK : MDM_ERR_AUTH;
	ERR_clear_error();
out:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return rc;
}

mdm_err jws_verify(const jws_msg *m, const jws_key *key, char *err, size_t errlen)
{
	mdm_err rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (m == NULL || key == NULL)
		return MDM_ERR_INVAL;
	rc = jws_verify_raw(key, m->alg, (const uint8_t *)m->signing_input_, m->signing_input_len_,
	        m->sig_, m->sig_len_);
	switch (rc) {
	case MDM_ERR_FORBIDDEN:
		return mdm_refuse(jws_who, err, errlen, rc,
		        "RFC 7518 section 3.1: alg %s needs a %s key, the key is %s", m->alg,
		        jws_kind_name(jws_alg_find(m->alg)->kind), jws_kind_name(key->kind));
	case MDM_ERR_AUTH:
		return mdm_refuse(jws_who, err, errlen, rc,
		        "RFC 7515 section 5.2: the %s signature does not verify", m->alg);
	case MDM_ERR_UNSUPPORTED: /* jws_parse let no other alg through */
		return MDM_ERR_INTERNAL;
	default:
		return rc;
	}
}

/* ---- messages ---- */

void jws_msg_free(jws_msg *m)
{
	if (m == NULL)
		return;
	free(m->nonce);
	free(m->url);
	free(m->kid);
	jws_key_free(m->jwk);
	free(m->jwk_json);
	free(m->payload);
	free(m->signing_input_);
	free(m->sig_);
	free(m);
}

/*
 * A string member of the protected header, copied: absent or not a
 * NUL-free string is MDM_ERR_PARSE, empty too, longer than max
 * MDM_ERR_LIMIT.  The caller words the refusal.
 */
MDM_WUR static mdm_err jws_header_str(const json_value *h, const char *name, size_t max, char **out)
{
	const char *s = json_get_cstr(h, name);
	size_t n;

	*out = NULL;
	if (s == NULL || (n = strlen(s)) == 0)
		return MDM_ERR_PARSE;
	if (n > max)
		return MDM_ERR_LIMIT;
	if ((*out = strdup(s)) == NULL)
		return MDM_ERR_NOMEM;
	return MDM_OK;
}

/*
 * The protected "nonce" (RFC 8555 section 6.5), into m->nonce: required
 * and base64url; absent is badNonce (MDM_ERR_CONFLICT).  The inner JWS of
 * a key change must have none (section 7.3.5).
 */
MDM_WUR static mdm_err jws_nonce(
        const json_value *h, int inner, jws_msg *m, char *err, size_t errlen)
{
	uint8_t *nb = NULL;
	size_t nbl = 0;
	mdm_err rc;

	if (inner) {
		if (json_get(h, "nonce") != NULL)
			return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
			        "RFC 8555 section 7.3.5: the inner JWS of a key change must not "
			        "have "
			        "a \"nonce\"");
		return MDM_OK;
	}
	if (json_get(h, "nonce") == NULL)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_CONFLICT,
		        "RFC 8555 section 6.5: the protected header has no \"nonce\"");
	if ((rc = jws_header_str(h, "nonce", JWS_MAX_NONCE, &m->nonce)) != MDM_OK) {
		if (rc == MDM_ERR_NOMEM)
			return rc;
		return mdm_refuse(jws_who, err, errlen, rc,
		        "RFC 8555 section 6.5.1: \"nonce\" must be a base64url string of 1 to %d "
		        "characters",
		        JWS_MAX_NONCE);
	}
	if ((rc = base64url_decode(m->nonce, strlen(m->nonce), JWS_MAX_NONCE, &nb, &nbl)) !=
	        MDM_OK) {
		if (rc == MDM_ERR_NOMEM)
			return rc;
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 8555 section 6.5.1: \"nonce\" is not base64url");
	}
	free(nb);
	return MDM_OK;
}

/* The protected header (RFC 8555 section 6.2), decoded, into m. */
MDM_WUR static mdm_err jws_protected(
        const char *b64, size_t b64len, int inner, jws_msg *m, char *err, size_t errlen)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	json_value *h = NULL;
	const json_value *jwk, *kid;
	const struct jws_alg *a;
	const char *alg;
	char jerr[160], show[40];
	mdm_err rc;

	if ((rc = base64url_decode(b64, b64len, JWS_MAX_PROTECTED, &raw, &rawlen)) != MDM_OK) {
		if (rc == MDM_ERR_NOMEM)
			return rc;
		if (rc == MDM_ERR_LIMIT)
			return mdm_refuse(jws_who, err, errlen, rc,
			        "RFC 8555 section 6.2: a protected header over %d bytes",
			        JWS_MAX_PROTECTED);
		return mdm_refuse(jws_who, err, errlen, rc,
		        "RFC 7515 section 7.2.1: \"protected\" is not base64url (unpadded, RFC "
		        "4648 section 5)");
	}
	rc = json_parse((const char *)raw, rawlen, &h, jerr, sizeof(jerr));
	free(raw);
	if (rc != MDM_OK) {
		if (rc != MDM_ERR_PARSE && rc != MDM_ERR_LIMIT)
			return rc;
		return mdm_refuse(jws_who, err, errlen, rc,
		        "RFC 7515 section 4: the protected header is not strict JSON: %s", jerr);
	}
	if (json_type_of(h) != JSON_OBJECT) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 7515 section 4: the protected header must be a JSON object");
		goto out;
	}
	/* alg first: "none" and MACs are badSignatureAlgorithm, whatever else is wrong. */
	if ((alg = json_get_cstr(h, "alg")) == NULL) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 7515 section 4.1.1: the protected header has no \"alg\" string");
		goto out;
	}
	if ((a = jws_alg_find(alg)) == NULL) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_UNSUPPORTED,
		        "RFC 8555 section 6.2: alg \"%s\" is not offered (ES256, ES384, RS256)",
		        jws_show(alg, show, sizeof(show)));
		goto out;
	}
	snprintf(m->alg, sizeof(m->alg), "%s", a->name);
	if (json_get(h, "crit") != NULL) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 7515 section 4.1.11: \"crit\" names extensions not understood here");
		goto out;
	}
	if ((rc = jws_nonce(h, inner, m, err, errlen)) != MDM_OK)
		goto out;
	if ((rc = jws_header_str(h, "url", JWS_MAX_URL, &m->url)) != MDM_OK) {
		if (rc != MDM_ERR_NOMEM)
			rc = mdm_refuse(jws_who, err, errlen, rc,
			        "RFC 8555 section 6.4: the protected header needs a \"url\" "
			        "string of 1 to %d bytes",
			        JWS_MAX_URL);
		goto out;
	}
	jwk = json_get(h, "jwk");
	kid = json_get(h, "kid");
	if ((jwk == NULL) == (kid == NULL)) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 8555 section 6.2: the protected header must have exactly one "
		        "of \"jwk\" and \"kid\" (it has %s)",
		        jwk == NULL ? "neither" : "both");
		goto out;
	}
	if (kid != NULL && inner) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 8555 section 7.3.5: the inner JWS of a key change must have a "
		        "\"jwk\"");
		goto out;
	}
	if (kid != NULL) {
		if ((rc = jws_header_str(h, "kid", JWS_MAX_KID, &m->kid)) != MDM_OK &&
		        rc != MDM_ERR_NOMEM)
			rc = mdm_refuse(jws_who, err, errlen, rc,
			        "RFC 8555 section 6.2: \"kid\" must be an account URL "
			        "string of 1 to %d bytes",
			        JWS_MAX_KID);
		goto out;
	}
	if ((rc = jws_key_from_value(jwk, &m->jwk, err, errlen)) != MDM_OK)
		goto out;
	if (m->jwk->kind != a->kind) {
		rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_FORBIDDEN,
		        "RFC 7518 section 3.1: alg %s needs a %s key, the jwk is %s", a->name,
		        jws_kind_name(a->kind), jws_kind_name(m->jwk->kind));
		goto out;
	}
	if ((rc = jws_key_to_jwk(m->jwk, &m->jwk_json)) != MDM_OK ||
	        (rc = jws_key_thumbprint(m->jwk, m->thumbprint)) != MDM_OK)
		goto out;
out:
	json_free(h);
	return rc;
}

/*
 * The three members of a flattened JWS (RFC 7515 section 7.2.2) as
 * strings: anything else is refused, so that no part of the message is
 * unprotected (RFC 8555 section 6.2).
 */
MDM_WUR static mdm_err jws_members(
        const json_value *top, const char *parts[3], size_t lens[3], char *err, size_t errlen)
{
	static const char *const names[3] = {"protected", "payload", "signature"};
	char show[40];

	if (json_type_of(top) != JSON_OBJECT)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 8555 section 6.2: the body must be a flattened JWS, a JSON object");
	if (json_get(top, "signatures") != NULL)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 8555 section 6.2: the general JSON serialization is refused, only the "
		        "flattened one is taken");
	if (json_get(top, "header") != NULL)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 8555 section 6.2: an unprotected \"header\" is refused");
	for (size_t i = 0; i < json_object_len(top); i++) {
		const char *name;
		(void)json_object_at(top, i, &name);
		if (strcmp(name, names[0]) != 0 && strcmp(name, names[1]) != 0 &&
		        strcmp(name, names[2]) != 0)
			return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
			        "RFC 8555 section 6.2: unexpected member \"%s\" in the JWS",
			        jws_show(name, show, sizeof(show)));
	}
	for (int i = 0; i < 3; i++) {
		parts[i] = json_string(json_get(top, names[i]), &lens[i]);
		if (parts[i] == NULL)
			return mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
			        "RFC 7515 section 7.2.1: the JWS needs a \"%s\" string", names[i]);
	}
	return MDM_OK;
}

MDM_WUR static mdm_err jws_parse_as(
        const char *body, size_t len, int inner, jws_msg **out, char *err, size_t errlen)
{
	json_value *top = NULL;
	jws_msg *m = NULL;
	const char *parts[3];
	size_t lens[3];
	char jerr[160];
	mdm_err rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (body == NULL && len > 0)
		return MDM_ERR_INVAL;
	if (len > JWS_MAX_BODY)
		return mdm_refuse(jws_who, err, errlen, MDM_ERR_LIMIT,
		        "RFC 8555 section 6.2: a JWS of %zu bytes, over %d", len, JWS_MAX_BODY);
	if ((rc = json_parse(body, len, &top, jerr, sizeof(jerr))) != MDM_OK) {
		if (rc != MDM_ERR_PARSE && rc != MDM_ERR_LIMIT)
			return rc;
		/* A compact JWS (RFC 7515 section 7.1) starts with the base64url of '{'. */
		if (len >= 2 && body[0] == 'e' && body[1] == 'y')
			return mdm_refuse(jws_who, err, errlen, rc,
			        "RFC 8555 section 6.2: the compact serialization is refused, "
			        "only the flattened JSON one is taken");
		return mdm_refuse(jws_who, err, errlen, rc,
		        "RFC 8555 section 6.2: the body is not a flattened JWS in strict JSON: %s",
		        jerr);
	}
	if ((rc = jws_members(top, parts, lens, err, errlen)) != MDM_OK)
		goto out;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((rc = jws_protected(parts[0], lens[0], inner, m, err, errlen)) != MDM_OK)
		goto out;
	/* "" is POST-as-GET (RFC 8555 section 6.3): decodes to nothing, as it should. */
	if ((rc = base64url_decode(
	             parts[1], lens[1], JWS_MAX_BODY, &m->payload, &m->payload_len)) != MDM_OK) {
		if (rc != MDM_ERR_NOMEM)
			rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
			        "RFC 7515 section 7.2.1: \"payload\" is not base64url (RFC 4648 "
			        "section 5, unpadded)");
		goto out;
	}
	if ((rc = base64url_decode(parts[2], lens[2], JWS_MAX_SIG, &m->sig_, &m->sig_len_)) !=
	                MDM_OK ||
	        m->sig_len_ == 0) {
		if (rc != MDM_ERR_NOMEM)
			rc = mdm_refuse(jws_who, err, errlen, MDM_ERR_PARSE,
			        "RFC 7515 section 7.2.1: \"signature\" must be base64url of "
			        "1 to %d octets",
			        JWS_MAX_SIG);
		goto out;
	}
	/* RFC 7515 section 5.2 step 8: ASCII(BASE64URL(protected) || '.' || BASE64URL(payload)). */
	m->signing_input_len_ = lens[0] + 1 + lens[1];
	if ((m->signing_input_ = malloc(m->signing_input_len_ + 1)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	memcpy(m->signing_input_, parts[0], lens[0]);
	m->signing_input_[lens[0]] = '.';
	memcpy(m->signing_input_ + lens[0] + 1, parts[1], lens[1]);
	m->signing_input_[m->signing_input_len_] = '\0';
	*out = m;
	m = NULL;
out:
	jws_msg_free(m);
	json_free(top);
	return rc;
}

mdm_err jws_parse(const char *body, size_t len, jws_msg **out, char *err, size_t errlen)
{
	return jws_parse_as(body, len, 0, out, err, errlen);
}

mdm_err jws_parse_inner(const char *body, size_t len, jws_msg **out, char *err, size_t errlen)
{
	return jws_parse_as(body, len, 1, out, err, errlen);
}
