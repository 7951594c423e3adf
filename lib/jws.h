/*
 * JSON Web Signatures as ACME uses them (RFC 8555 section 6.2): the
 * flattened JSON serialization (RFC 7515 section 7.2.2) only, signed with
 * an asymmetric algorithm from a short allow-list, the key either in the
 * protected header as a JWK (RFC 7517) or named by "kid" (an account
 * URL).  The implementation is lib/x509_jws.c (it needs OpenSSL, which
 * only x509*.c and cms*.c include); JSON comes from lib/json.h.
 *
 * What is refused, and with which mdm_err (the ACME problem type, RFC 8555
 * section 6.7, the caller answers with):
 *   MDM_ERR_LIMIT        body over JWS_MAX_BODY or a part over its cap
 *                        (malformed, or 413 before reading)
 *   MDM_ERR_PARSE        not exactly {"protected","payload","signature"};
 *                        an unprotected "header"; compact or general
 *                        serialization; bad base64url; a protected header
 *                        that is not a JSON object, lacks url, has
 *                        both or neither of jwk/kid, has "crit"; a JWK
 *                        with private members or malformed members
 *                        (malformed)
 *   MDM_ERR_UNSUPPORTED  alg not ES256/ES384/RS256: "none", HMAC, others
 *                        (badSignatureAlgorithm)
 *   MDM_ERR_FORBIDDEN    a public key we do not take: kty/crv other than
 *                        EC P-256/P-384 and RSA, RSA under
 *                        JWS_MIN_RSA_BITS, an EC point not on the curve,
 *                        a key that does not fit alg (badPublicKey)
 *   MDM_ERR_CONFLICT     the protected header has no "nonce" (badNonce,
 *                        RFC 8555 section 6.5; a malformed one is PARSE)
 *   MDM_ERR_AUTH         the signature does not verify (malformed or
 *                        unauthorized, the caller's choice)
 * Each refusal is logged once, at warn, as "jws refused: <reason>", by the
 * function that detects it (mdm_refuse), and the reason, naming the RFC
 * section, is written into err for the answer: printable ASCII only (what
 * the peer sent is shown with '?' for anything else), so it can go into
 * a problem document through json_quote.  MDM_ERR_NOMEM and MDM_ERR_CRYPTO
 * (OpenSSL failing on what we built) are internal errors, without err.
 */
#ifndef MDM_JWS_H
#define MDM_JWS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "mdm_limits.h"

/* The RFC 7638 thumbprint: base64url of a SHA-256, 43 characters and a NUL. */
#define JWS_THUMBPRINT_LEN 43

/* A public key from a JWK (EC P-256, EC P-384 or RSA). */
typedef struct jws_key jws_key;

typedef struct jws_msg {
	char alg[8];    /* "ES256", "ES384" or "RS256" only (RFC 8555 6.2: no "none", no MAC) */
	char *nonce;    /* protected "nonce" as sent (base64url text, checked as such) */
	char *url;      /* protected "url" */
	char *kid;      /* protected "kid", or NULL */
	jws_key *jwk;   /* from protected "jwk", or NULL; exactly one of kid/jwk (RFC 8555 6.2) */
	char *jwk_json; /* the jwk re-serialized canonically (RFC 7638 section 3: the
	                 * required members only, lexicographic order, no white space),
	                 * for storing; NULL when kid */
	/* RFC 7638 SHA-256 thumbprint, base64url, NUL-terminated; "" when kid. */
	char thumbprint[64];
	uint8_t *payload;   /* decoded payload (NUL-terminated as well; never NULL) */
	size_t payload_len; /* payload "" means POST-as-GET (RFC 8555 6.3): 0 */
	/* private fields after this comment for the verifier: signing input, signature bytes */
	char *signing_input_; /* ASCII(protected "." payload), RFC 7515 section 5.2 step 8 */
	size_t signing_input_len_;
	uint8_t *sig_; /* decoded signature */
	size_t sig_len_;
} jws_msg;

/*
 * Parses a flattened JWS of len bytes (an ACME request body) into *out
 * (jws_msg_free): the structure, the protected header and the JWK are
 * checked as above; the signature is not verified (jws_verify, with
 * m->jwk or the account key that m->kid names).
 */
MDM_WUR mdm_err jws_parse(const char *body, size_t len, jws_msg **out, char *err, size_t errlen);

/*
 * The inner JWS of a key change (RFC 8555 section 7.3.5): as jws_parse,
 * except that it must have "jwk" (not "kid") and must not have "nonce"
 * (m->nonce is NULL).  Comparing its url with the outer one and reading
 * its payload ({"account", "oldKey"}) is the caller's.
 */
MDM_WUR mdm_err jws_parse_inner(
        const char *body, size_t len, jws_msg **out, char *err, size_t errlen);

/*
 * The algorithms jws_parse takes, as the JSON array the badSignatureAlgorithm
 * problem document carries in "algorithms" (RFC 8555 section 6.2).
 */
const char *jws_algorithms_json(void);

/*
 * Verifies m's signature with key (m->jwk, or the stored account key).
 * MDM_ERR_FORBIDDEN if key does not fit m->alg, MDM_ERR_AUTH if the
 * signature does not verify (ECDSA: exactly 2 * the field size bytes,
 * R || S, RFC 7518 section 3.4; RS256: RSASSA-PKCS1-v1_5 with SHA-256).
 */
MDM_WUR mdm_err jws_verify(const jws_msg *m, const jws_key *key, char *err, size_t errlen);

/*
 * A signature over input with k under alg ("ES256", "ES384", "RS256"),
 * as jws_verify checks it: for the RFC 7515 examples and for ACME's
 * inner JWS (key change).  MDM_ERR_UNSUPPORTED for other alg,
 * MDM_ERR_FORBIDDEN when k does not fit alg, MDM_ERR_AUTH when it does
 * not verify.  Logs nothing (the caller refuses).
 */
MDM_WUR mdm_err jws_verify_raw(const jws_key *k, const char *alg, const uint8_t *input,
        size_t inlen, const uint8_t *sig, size_t siglen);

/*
 * A public key from a JWK text (a stored account key, or one from a
 * request): the checks of a protected "jwk" above.
 */
MDM_WUR mdm_err jws_key_from_jwk(
        const char *jwk_json, size_t len, jws_key **out, char *err, size_t errlen);
/* The RFC 7638 SHA-256 thumbprint, base64url, NUL-terminated in out. */
MDM_WUR mdm_err jws_key_thumbprint(const jws_key *k, char out[64]);
/* The canonical JWK (as jws_msg.jwk_json), NUL-terminated, caller frees. */
MDM_WUR mdm_err jws_key_to_jwk(const jws_key *k, char **out);
/*
 * The key authorization of a challenge (RFC 8555 section 8.1): token "."
 * the account key's thumbprint, NUL-terminated in *out (caller frees), and
 * its SHA-256 in sha256 if not NULL (what device-attest-01 attestations
 * carry as their nonce).  MDM_ERR_INVAL unless token is base64url text
 * (the server's own: a bug otherwise).
 */
MDM_WUR mdm_err jws_key_authorization(
        const char *token, const jws_key *account, char **out, uint8_t sha256[32]);
/* DER SubjectPublicKeyInfo (RFC 5280 section 4.1), caller frees. */
MDM_WUR mdm_err jws_key_spki_der(const jws_key *k, uint8_t **der, size_t *len);
/*
 * Whether two keys are the same public key (1) or not (0): ACME compares
 * the key of a request with the account's (RFC 8555 section 7.3.5).
 */
int jws_key_equal(const jws_key *a, const jws_key *b);
/* "EC" or "RSA". */
const char *jws_key_kty(const jws_key *k);
void jws_key_free(jws_key *k);
void jws_msg_free(jws_msg *m);

#endif
