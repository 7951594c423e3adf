/*
 * Apple Managed Device Attestation: the attestation object a device sends
 * in an ACME device-attest-01 challenge (draft-acme-device-attest, the
 * com.apple.security.acme payload with HardwareBound and Attest), and the
 * facts Apple's attestation certificate states about the device.
 *
 * The object is a WebAuthn-style CBOR map {"fmt": "apple", "attStmt":
 * {"x5c": [leaf, intermediate, ...]}, "authData": bytes}.  attest.c parses
 * it strictly (the only file that includes libcbor: definite lengths,
 * known keys once each, limits from mdm_limits.h checked before anything
 * is allocated); x509_attest.c verifies the x5c chain to the Apple
 * Enterprise Attestation Root CA and reads Apple's extensions from the
 * leaf (OpenSSL).
 *
 * What the caller (the ACME server) still decides: whether the attested
 * serial or UDID is the order's identifier, whether the device is one we
 * expect, and at finalize whether the CSR's key is out->spki_der.  This
 * module only states the facts.
 *
 * Conventions as in x509.h: outputs are cleared on entry and belong to
 * the caller only on MDM_OK; every refusal is logged once, here, through
 * mdm_refuse() naming the rule, and written into err.
 */
#ifndef MDM_ATTEST_H
#define MDM_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "mdm_limits.h"
#include "errors.h"

/* The trust store: the Apple Enterprise Attestation Root CA (1..N roots from
 * acme_attest_root_file), loaded once at start-up and read-only after. */
typedef struct attest_trust attest_trust;

/* Loads 1..N PEM root certificates (self-signed CA certificates).
 * MDM_ERR_CONFIG (logged with the path) when the file cannot be used. */
MDM_WUR mdm_err attest_trust_load(const char *pem_path, attest_trust **out);
void attest_trust_free(attest_trust *t);

/* Freshness nonce in the leaf (1.2.840.113635.100.8.11.1): SHA-256 of the token. */
#define ATTEST_NONCE_LEN 32

/* Security property not stated in the leaf. */
#define ATTEST_PROP_ABSENT (-1)

typedef struct attest_result {
	/* Apple's extensions, "" when absent. */
	char serial[64];        /* 1.2.840.113635.100.8.9.1 */
	char udid[64];          /* 1.2.840.113635.100.8.9.2 */
	char os_version[32];    /* 1.2.840.113635.100.8.10.1 */
	char sepos_version[32]; /* 1.2.840.113635.100.8.10.2 */
	char llb_version[32];   /* 1.2.840.113635.100.8.10.3 (Low-Level Bootloader) */
	char model[64];    /* 1.2.840.113635.100.8.9.4, Software Update Device ID ("J514sAP") */
	uint8_t nonce[64]; /* 1.2.840.113635.100.8.11.1, as found */
	size_t nonce_len;
	/* The attested (Secure Enclave) public key, DER SubjectPublicKeyInfo (malloc). */
	uint8_t *spki_der;
	size_t spki_len;
	/* x5c as PEM, leaf first, for storing (malloc; NULL from attest_leaf_properties). */
	char *chain_pem;
	long long not_before; /* leaf notBefore, Unix time */
	long long not_after;  /* leaf notAfter, Unix time */
	/*
	 * macOS 14.2 and later (Apple: DeviceInformation DevicePropertiesAttestation):
	 * 1.2.840.113635.100.8.13.1 SIP status (DER INTEGER, 0 enabled), .13.2 secure boot
	 * status ("Full Security", "Reduced Security", "Permissive Security"), .13.3 third
	 * party kernel extensions (DER INTEGER, 0 not allowed).  ATTEST_PROP_ABSENT / ""
	 * when not stated (iOS).
	 */
	int sip_enabled;      /* 1 enabled, 0 disabled */
	char secure_boot[32]; /* as stated */
	int kext_allowed;     /* 1 some kinds allowed, 0 none */
} attest_result;

/*
 * The attestation object, parsed (attest.c): pointers into the caller's
 * bytes, nothing allocated.  x5c[0] is the leaf.  authData is optional:
 * WebAuthn has it, but for fmt "apple" nothing in it is signed or used
 * (the nonce and the key are in the leaf; step-ca and nanoca never read
 * it), so it is taken when present as a byte string within
 * ATTEST_MAX_AUTHDATA and otherwise ignored.
 */
typedef struct attest_object {
	const uint8_t *x5c[ATTEST_MAX_X5C];
	size_t x5c_len[ATTEST_MAX_X5C];
	size_t n_x5c;
	const uint8_t *auth_data; /* NULL when absent */
	size_t auth_data_len;
} attest_object;

/*
 * Parses attobj strictly: one definite-length CBOR map with the text keys
 * "fmt" (the text "apple"), "attStmt" (a map whose one key "x5c" holds an
 * array of 1..ATTEST_MAX_X5C byte strings of 1..ATTEST_MAX_CERT bytes) and
 * optionally "authData", each once, and no byte after the map.  Refused
 * (logged and in err): MDM_ERR_LIMIT over a limit, MDM_ERR_UNSUPPORTED for
 * another fmt, MDM_ERR_PARSE for anything else.
 */
MDM_WUR mdm_err attest_parse(
        const uint8_t *attobj, size_t len, attest_object *out, char *err, size_t errlen);

/*
 * The whole device-attest-01 check of an attestation object (attobj, len
 * bytes, at most MDM_ATTEST_MAX_BYTES): parses the CBOR, verifies the x5c
 * chain to t at now (MDM_ERR_AUTH "chain does not lead to the Apple
 * Enterprise Attestation Root CA"), requires the nonce extension to equal
 * SHA-256(token) (constant time; MDM_ERR_AUTH), and fills out.
 * MDM_ERR_PARSE for malformed CBOR or DER, MDM_ERR_LIMIT over a limit,
 * MDM_ERR_UNSUPPORTED for a fmt other than "apple".
 */
MDM_WUR mdm_err attest_verify_apple(const attest_trust *t, const uint8_t *attobj, size_t len,
        const uint8_t *token, size_t token_len, long long now, attest_result *out, char *err,
        size_t errlen);

/* Apple's extensions and the public key from one certificate (DER), no chain
 * check: for reporting and the vector test.  out->chain_pem stays NULL. */
MDM_WUR mdm_err attest_leaf_properties(
        const uint8_t *der, size_t len, attest_result *out, char *err, size_t errlen);

/* Verifies ders[0] (the leaf) through ders[1..n-1] to t at now.  A chain
 * missing its intermediate is refused as such (MDM_ERR_AUTH), naming it. */
MDM_WUR mdm_err attest_check_chain(const attest_trust *t, const uint8_t *const *ders,
        const size_t *lens, size_t n, long long now, char *err, size_t errlen);

/* Frees what out holds (not out itself) and clears it; NULL is fine. */
void attest_result_free(attest_result *r);

#endif
