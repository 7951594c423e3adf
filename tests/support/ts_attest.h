/*
 * A stand-in for Apple's attestation service (no test can hold Apple's
 * key): a root and an intermediate like the Apple Enterprise Attestation
 * Root CA and Sub CA 1 (P-384, ECDSA-SHA384), and attestation objects as a
 * device gets them from Apple for ACME device-attest-01: a leaf in the
 * shape and extension encoding of the real one (../shared/vectors/nanoca:
 * each of Apple's extensions holds its bare value, the nonce 32 bytes of
 * SHA-256 of the token; SIP and kernel extension status a DER INTEGER),
 * in the CBOR map {"fmt": "apple", "attStmt": {"x5c": [leaf, sub]}}.
 *
 * OpenSSL and libcbor directly, nothing of lib/ (the client side is not
 * ours), and no check calls: tests/attest/standin.c uses it as a program.
 * Failures return NULL or -1 with a line on stderr.
 */
#ifndef MDM_TEST_TS_ATTEST_H
#define MDM_TEST_TS_ATTEST_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stddef.h>
#include <stdint.h>

/* The files of a stand-in CA directory. */
#define TS_ATTEST_ROOT     "root.pem" /* the trust anchor: acme_attest_root_file */
#define TS_ATTEST_ROOT_KEY "root.key"
#define TS_ATTEST_SUB      "sub.pem"
#define TS_ATTEST_SUB_KEY  "sub.key"

#define TS_ATTEST_ROOT_CN "Stand-in Apple Enterprise Attestation Root CA"
#define TS_ATTEST_SUB_CN  "Stand-in Apple Enterprise Attestation Sub CA 1"

/* Creates dir (if missing) with a new root and intermediate in it; 0 or -1. */
int ts_attest_ca_init(const char *dir);

struct ts_attest_opts {
	const uint8_t *token; /* nonce = SHA-256(token) */
	size_t token_len;
	const char *serial; /* NULL: "STANDIN0001"; "": extension omitted */
	const char *udid;   /* NULL: "00008030-000000000000001E"; "": omitted */
	const char *os;     /* NULL: "17.0" (OS, sepOS and LLB versions); "": omitted */
	const char *model;  /* Software Update Device ID; NULL: "D84AP"; "": omitted */
	long long now;      /* 0: the current time */
	long days;          /* leaf lifetime; 0: 90 */
	int expired;        /* the leaf's validity ended a day before now */
	int wrong_nonce;    /* the nonce is SHA-256 of another token */
	int no_nonce;       /* no nonce extension */
	int macos;          /* the macOS 14.2 security properties (SIP on, Full Security) */
};

/* The stand-in intermediate of dir, or NULL. */
X509 *ts_attest_sub(const char *dir);
/* A leaf for pub (only its public part is used) issued by dir's intermediate. */
X509 *ts_attest_leaf(const char *dir, EVP_PKEY *pub, const struct ts_attest_opts *o);
/*
 * The CBOR attestation object {"fmt": fmt, "attStmt": {"x5c": x5c[0..n-1]}}
 * and, when auth_data is not NULL, "authData" (malloc'd, *len bytes); fmt
 * NULL leaves the key out.  NULL on failure.
 */
uint8_t *ts_attest_cbor(const char *fmt, X509 *const *x5c, size_t n, const uint8_t *auth_data,
        size_t auth_len, size_t *len);
/* What a device gets from Apple: ts_attest_cbor("apple", {leaf, sub}, no authData). */
uint8_t *ts_attest_object(
        const char *dir, EVP_PKEY *pub, const struct ts_attest_opts *o, size_t *len);
/* A public or private key from a PEM file, or NULL. */
EVP_PKEY *ts_attest_read_key(const char *path);

#endif
