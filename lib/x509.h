/*
 * X.509: certificates, keys, CSRs and what the CA signs (certificates,
 * CRLs).  Only the x509*.c files and cms include OpenSSL; other modules
 * hold the opaque pointers below and call these functions.  Time is
 * always passed in (now), so tests control the clock.
 *
 * The sections below follow the files: x509.c certificates (decoding,
 * encoding, fields, comparisons) and the helpers the others share
 * (x509_int.h, private to x509*.c); x509_key.c keys, TLS identities and
 * PKCS#12; x509_csr.c CSRs; x509_issue.c issuing (the CA certificate,
 * device identities, the server and SCEP responder certificates, CRLs);
 * x509_chain.c verifying paths (what we issued, pinned vendor chains) and
 * chain files.  The CA's lifecycle (the CA certificates kept in the
 * database, renewal and rekey, the per-process CA state) is in ca.c; its
 * header says who owns what of the CA.
 *
 * Conventions: outputs are cleared on entry and belong to the caller only
 * on MDM_OK; buffers returned through uint8_t ** or char ** are freed with
 * free() (a challenge with x509_challenge_free).  Every refusal is logged
 * once, here, with the rule or the OpenSSL call that failed.
 */
#ifndef MDM_X509_H
#define MDM_X509_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mdm_limits.h"
#include "errors.h"

struct x509_st;        /* OpenSSL X509 */
struct evp_pkey_st;    /* OpenSSL EVP_PKEY */
struct X509_req_st;    /* OpenSSL X509_REQ */
struct X509_name_st;   /* OpenSSL X509_NAME */
struct asn1_string_st; /* OpenSSL ASN1_INTEGER */

#define X509_FP_HEX_LEN 64

/* The last instant a GeneralizedTime can name (RFC 5280 section 4.1.2.5.2: YYYY). */
#define X509_MAX_TIME 253402300799LL /* 9999-12-31T23:59:59Z */

/* ---- x509.c: certificates ---- */

/*
 * SHA-256 of the DER of one PEM certificate (as Apache passes
 * SSL_CLIENT_CERT), as lower-case hex in out[X509_FP_HEX_LEN + 1].
 * Anything but exactly one certificate is MDM_ERR_PARSE.
 */
MDM_WUR mdm_err x509_pem_fingerprint(const char *pem, size_t len, char out[X509_FP_HEX_LEN + 1]);

/*
 * Certificates.  from_der: exactly one DER certificate, no trailing bytes
 * (MDM_ERR_PARSE), at most X509_MAX_DER (MDM_ERR_LIMIT).  from_pem:
 * exactly one CERTIFICATE block whose content is such DER; other PEM
 * blocks are skipped.  load_file: PEM if it has a BEGIN line, else DER;
 * MDM_ERR_IO when it cannot be read, MDM_ERR_LIMIT over X509_MAX_FILE.
 */
MDM_WUR mdm_err x509_cert_from_der(const uint8_t *der, size_t len, struct x509_st **out);
MDM_WUR mdm_err x509_cert_from_pem(const char *pem, size_t len, struct x509_st **out);
/*
 * The same, through a small per-process cache keyed by the SHA-256 of the
 * text: a device presents the same certificate on every request, and
 * OpenSSL 3.0 decodes a public key through its provider decoders, a third
 * of server.fcgi's CPU per connect before this (bench/run.sh, BENCH_PERF).
 * Only decoding is cached: every check of the certificate is still made
 * by the caller.  *out is the caller's own reference (x509_cert_free).
 * One request at a time, as every program here: not thread-safe.
 */
#define X509_CERT_CACHE 64
MDM_WUR mdm_err x509_cert_from_pem_cached(const char *pem, size_t len, struct x509_st **out);
MDM_WUR mdm_err x509_cert_load_file(const char *path, struct x509_st **out);
MDM_WUR mdm_err x509_cert_to_der(const struct x509_st *c, uint8_t **out, size_t *outlen);
/* NUL-terminated; *outlen excludes the NUL. */
MDM_WUR mdm_err x509_cert_to_pem(const struct x509_st *c, char **out, size_t *outlen);
struct x509_st *x509_cert_up_ref(struct x509_st *c); /* returns c */
void x509_cert_free(struct x509_st *c);

struct x509_info {
	char sha256[X509_FP_HEX_LEN + 1]; /* of the DER, lower-case hex */
	char serial[2 * 20 + 1];          /* upper-case hex, no leading zeros */
	char subject[512];                /* RFC 2253, truncated if longer */
	char issuer[512];
	time_t not_before, not_after;
	int is_ca; /* basicConstraints cA */
};
/* MDM_ERR_PARSE for a negative or over-20-octet serial (RFC 5280 4.1.2.2). */
MDM_WUR mdm_err x509_cert_info(const struct x509_st *c, struct x509_info *out);
/*
 * SHA-1 of the certificate's DER, 20 bytes: the SCEP payload's
 * CAFingerprint.  Apple devices hash the CA certificate of GetCACert's
 * chain with MD5 or SHA-1, chosen by the fingerprint's length (16 or 20
 * bytes), and refuse any other length; SHA-1 here only names a
 * certificate, it verifies no signature.
 */
#define X509_SHA1_LEN 20
MDM_WUR mdm_err x509_cert_sha1(const struct x509_st *c, uint8_t out[X509_SHA1_LEN]);
/* SHA-256 of the DER SubjectPublicKeyInfo, lower-case hex (a key's stable name). */
MDM_WUR mdm_err x509_cert_key_sha256(const struct x509_st *c, char out[X509_FP_HEX_LEN + 1]);
/*
 * HMAC-SHA256 (RFC 2104, FIPS 198-1) of msg under key, as lower-case hex
 * in out[X509_FP_HEX_LEN + 1]: the webhook signature (bin/mdm-eventd).
 * Here because OpenSSL lives in x509*.c; MDM_ERR_INVAL for an empty key.
 */
MDM_WUR mdm_err x509_hmac_sha256_hex(const uint8_t *key, size_t keylen, const uint8_t *msg,
        size_t len, char out[X509_FP_HEX_LEN + 1]);
/*
 * 1 if the certificate names itself as issuer (the throw-away signer of a
 * first SCEP request).  Reads nothing else, so it works on certificates
 * x509_cert_info would refuse (negative or oversized serials).
 */
int x509_cert_self_issued(const struct x509_st *c);
/* 1 if issuer's key verifies cert's signature (names and dates not checked). */
int x509_cert_signed_by(const struct x509_st *cert, const struct x509_st *issuer);
/* 1 if both certificates carry the same public key. */
int x509_cert_same_key(const struct x509_st *a, const struct x509_st *b);

/*
 * The value of the one subject attribute of type attr ("UID", "CN", or any
 * short name of the subject syntax below) as UTF-8 in out (cap bytes,
 * NUL-ended).  MDM_ERR_NOT_FOUND when absent, MDM_ERR_PARSE when present
 * more than once or holding a NUL, MDM_ERR_LIMIT when it does not fit,
 * MDM_ERR_INVAL for an unknown attr.  The APNs topic of a push
 * certificate is its UID (OID 0.9.2342.19200300.100.1.1).
 */
MDM_WUR mdm_err x509_cert_subject_attr(
        const struct x509_st *c, const char *attr, char *out, size_t cap);
/* 1 if the certificate is valid (notBefore <= now <= notAfter). */
int x509_cert_valid_at(const struct x509_st *c, time_t now);

/* ---- x509_key.c: keys, TLS client identities, PKCS#12 ---- */

/*
 * Keys: a file path (PEM: PKCS#8, or traditional PKCS#1/SEC1), a file:
 * URI (file:/p, file:///p, file://localhost/p), or a pkcs11: URI (RFC 7512,
 * HSM via the OpenSSL pkcs11 engine; the PIN from pin-source=file:/path,
 * or pin-value, which makes the URI a secret; the module from
 * PKCS11_MODULE_PATH, else p11-kit-proxy).  Never prompts.
 * MDM_ERR_IO unreadable, MDM_ERR_PARSE not a key, MDM_ERR_UNSUPPORTED an
 * encrypted file or no pkcs11 engine, MDM_ERR_CRYPTO the token refused.
 */
MDM_WUR mdm_err x509_key_load(const char *uri, struct evp_pkey_st **out);
/* bits in X509_MIN_RSA_BITS..X509_MAX_RSA_BITS, else MDM_ERR_INVAL. */
MDM_WUR mdm_err x509_key_generate_rsa(int bits, struct evp_pkey_st **out);
/*
 * Writes PKCS#8 PEM with mode 0600; refuses to overwrite an existing file
 * (MDM_ERR_CONFLICT).  A failed write leaves no file behind.
 */
MDM_WUR mdm_err x509_key_write_pem(struct evp_pkey_st *key, const char *path);
/* 1 if key is the private half of cert's public key (a signature is made and verified). */
int x509_key_matches_cert(struct evp_pkey_st *key, const struct x509_st *cert);
void x509_key_free(struct evp_pkey_st *key);
/*
 * Makes an OpenSSL SSL_CTX (given as void *) present cert and key as its
 * TLS client identity.  The key may live in an HSM (x509_key_load of a
 * pkcs11: URI).
 */
MDM_WUR mdm_err x509_ssl_ctx_use_identity(
        void *ssl_ctx, struct x509_st *cert, struct evp_pkey_st *key);

/*
 * TLS clients (x509_tls.c).  A client is one identity (cert and key, not
 * taken: freed by the caller after the client), the CAs trusted for the
 * peer (ca_file, or the system's when NULL), TLS 1.2 or later, and the one
 * ALPN protocol the peer must choose (e.g. "h2").
 */
typedef struct x509_tls_client x509_tls_client;
typedef struct x509_tls x509_tls;
MDM_WUR mdm_err x509_tls_client_new(const char *ca_file, const char *alpn, struct x509_st *cert,
        struct evp_pkey_st *key, x509_tls_client **out);
void x509_tls_client_free(x509_tls_client *c);
/*
 * A connection to host:port, made within timeout_ms: TCP, then the
 * handshake, the peer's certificate verified to host (a name, or an IP
 * address literal).  MDM_ERR_IO when it cannot be made (logged at warn),
 * MDM_ERR_UNSUPPORTED when the peer does not choose the ALPN protocol.
 * Afterwards the socket does not block.
 */
MDM_WUR mdm_err x509_tls_connect(
        x509_tls_client *c, const char *host, const char *port, long timeout_ms, x509_tls **out);
int x509_tls_fd(const x509_tls *t);
/* 1 if the last read or write stopped until the socket can take data (poll POLLOUT). */
int x509_tls_want_write(const x509_tls *t);
/*
 * Up to cap bytes in, or len bytes out: *n is how many (0: it would
 * block).  MDM_ERR_IO when the connection is closed or broken.
 */
MDM_WUR mdm_err x509_tls_read(x509_tls *t, void *buf, size_t cap, size_t *n);
MDM_WUR mdm_err x509_tls_write(x509_tls *t, const void *buf, size_t len, size_t *n);
void x509_tls_free(x509_tls *t);

/*
 * 1 if OpenSSL's legacy provider (RC2, DES) is available: loaded once per
 * process on first call, with the default provider, kept until exit.
 */
int x509_legacy_provider(void);

/*
 * A PKCS#12 file (an exported identity, such as the MDM push certificate
 * from Keychain Access): the certificate and its private key.  The
 * password is the first line of password_file (may be empty).  Apple's
 * exports encrypt with RC2 and 3DES (PKCS#12 PBE), which OpenSSL 3 keeps
 * in its legacy provider: loaded on first use and kept until exit (x509_key.c).
 * The MAC must verify (MDM_ERR_AUTH: wrong password or a damaged file);
 * MDM_ERR_PARSE when it holds no key or no certificate for the key.
 */
MDM_WUR mdm_err x509_pkcs12_load(const char *path, const char *password_file, struct x509_st **cert,
        struct evp_pkey_st **key);

/* ---- x509_csr.c: certificate signing requests ---- */

/*
 * Certificate signing requests (PKCS#10).  from_der: strict DER like
 * certificates; version 0, or 2 as macOS sends it.
 */
MDM_WUR mdm_err x509_csr_from_der(const uint8_t *der, size_t len, struct X509_req_st **out);
/*
 * The CSR's own signature (proof the requester holds the key): MDM_ERR_AUTH
 * when it does not verify, MDM_ERR_UNSUPPORTED for a signature algorithm
 * other than RSA or ECDSA with SHA-1/SHA-2.
 */
MDM_WUR mdm_err x509_csr_verify(struct X509_req_st *csr);
/*
 * challengePassword attribute (any DirectoryString form) as UTF-8,
 * NUL-ended; free it with x509_challenge_free.  MDM_ERR_NOT_FOUND if
 * absent, MDM_ERR_LIMIT over MDM_MAX_CHALLENGE bytes, MDM_ERR_PARSE if
 * present twice, multi-valued, of another type or holding a NUL.
 */
MDM_WUR mdm_err x509_csr_challenge(struct X509_req_st *csr, char **out);
/* Wipes and frees a challenge (a secret); NULL is fine. */
void x509_challenge_free(char *s);
/* 1 if the CSR's public key equals the certificate's (RFC 8894 section 2.3). */
int x509_csr_key_matches_cert(struct X509_req_st *csr, const struct x509_st *cert);
/* 1 if the CSR's subject equals the certificate's subject. */
int x509_csr_subject_matches_cert(struct X509_req_st *csr, const struct x509_st *cert);
/* RSA modulus bits of the CSR key (0 for a non-RSA key). */
int x509_csr_rsa_bits(struct X509_req_st *csr);
/*
 * The CSR's public key as DER SubjectPublicKeyInfo (RFC 5280 section
 * 4.1), caller frees: ACME finalize compares it with the attested key.
 */
MDM_WUR mdm_err x509_csr_spki_der(struct X509_req_st *csr, uint8_t **der, size_t *len);
/* RFC 2253; MDM_ERR_LIMIT (and "") when it does not fit in cap. */
MDM_WUR mdm_err x509_csr_subject(struct X509_req_st *csr, char *out, size_t cap);
void x509_csr_free(struct X509_req_st *csr);

/* ---- x509_issue.c: what the CA signs ---- */

/*
 * The CA: a self-signed v3 root, random 128-bit serial, basicConstraints
 * critical cA (pathLen 0), keyUsage critical digitalSignature (it signs
 * CertReps) + keyCertSign + cRLSign, SKI, AKI, SHA-256, valid from
 * now - 1 h (clock skew) to now + days.  subject is "/CN=MDM CA/O=Example"
 * (openssl -subj syntax: outermost RDN first, \/ and \\ escape, types C
 * ST L O OU CN DC UID serialNumber emailAddress).  key: RSA >= 2048 or EC.
 */
MDM_WUR mdm_err x509_ca_create(
        struct evp_pkey_st *key, const char *subject, int days, time_t now, struct x509_st **out);
/* Same subject; key may be the old one (renew) or a new one (rekey). */
MDM_WUR mdm_err x509_ca_next(const struct x509_st *current, struct evp_pkey_st *key, int days,
        time_t now, struct x509_st **out);

/*
 * Issues a server certificate (the profile signer) for key's public half:
 * subject in the syntax of x509_ca_create, random serial, keyUsage
 * critical digitalSignature, extendedKeyUsage emailProtection (so that
 * S/MIME-purpose verifiers such as `openssl cms -verify` accept the
 * CMS signatures it makes), basicConstraints cA FALSE, SKI/AKI, SHA-256,
 * valid now - 1 h .. now + days but never past the CA.  MDM_ERR_CONFIG as
 * x509_issue when the CA cannot issue.
 */
MDM_WUR mdm_err x509_issue_server(const struct x509_st *ca, struct evp_pkey_st *cakey,
        const char *subject, struct evp_pkey_st *key, int days, time_t now, struct x509_st **out);

/*
 * The SCEP responder of a CA without an RA: an end-entity certificate for
 * the CA's own key, issued by the CA, under which GetCACert offers that key
 * for encrypting requests (RFC 8894 section 4.2.1.2, as an RA certificate
 * would be).  Clients that keep the certificate they encrypt to apart from
 * the CA they trust need two certificates to tell them apart; the lone CA
 * certificate leaves certmonger nothing to trust.  Apple devices take it
 * as the RA: they encrypt to it and accept only CertReps signed under it
 * (SecSCEPValidateCACertMessage wants an RA with digitalSignature and
 * keyEncipherment).  Subject: the CA's plus OU=SCEP responder; serial: a
 * hash of the CA certificate; the CA's dates; basicConstraints critical
 * cA FALSE, keyUsage critical digitalSignature and keyEncipherment, AKI,
 * no SKI; SHA-256.  Deterministic for an RSA key (PKCS #1 v1.5):
 * every process serves the same bytes.  MDM_ERR_NOT_FOUND for a CA key
 * that is not RSA (SCEP key transport is RSA only); MDM_ERR_CONFIG when
 * cakey is not the key of the CA certificate ca.
 */
MDM_WUR mdm_err x509_scep_responder(
        const struct x509_st *ca, struct evp_pkey_st *cakey, struct x509_st **out);
/* 1 if issuer and serial (an IssuerAndSerialNumber) name ca's SCEP responder. */
int x509_scep_responder_named(const struct x509_st *ca, const struct X509_name_st *issuer,
        const struct asn1_string_st *serial);

struct x509_issue_policy {
	int days;         /* validity */
	int min_rsa_bits; /* X509_DEFAULT_MIN_RSA_BITS when <= 0 */
	int copy_sans;    /* copy subjectAltName from the CSR */
};
/*
 * Issues a device identity certificate for csr: random 128-bit serial,
 * keyUsage digitalSignature + keyEncipherment (RSA; EC: digitalSignature
 * only), extendedKeyUsage clientAuth, basicConstraints cA FALSE, subject
 * from the CSR, SKI/AKI, signed with SHA-256, valid now - 1 h .. now + days
 * but never past the CA.  The CSR's signature is verified here too.
 * Refusals: MDM_ERR_FORBIDDEN (outside the policy) for an RSA key under
 * min_rsa_bits, a key neither RSA nor EC P-256/P-384, an empty subject,
 * or, when copy_sans, a SAN outside the allow-list (dNSName, rfc822Name,
 * URI, UPN otherName; at most X509_MAX_SANS); x509_csr_verify's errors
 * (MDM_ERR_AUTH, MDM_ERR_UNSUPPORTED); MDM_ERR_CONFIG when the CA is not a
 * valid CA now or cakey is not its key.
 */
MDM_WUR mdm_err x509_issue(const struct x509_st *ca, struct evp_pkey_st *cakey,
        struct X509_req_st *csr, const struct x509_issue_policy *policy, time_t now,
        struct x509_st **out);

struct x509_revoked {
	const char *serial_hex; /* 1..40 hex digits, either case */
	time_t revoked_at;
	int reason; /* RFC 5280 CRLReason, -1 for none */
};
/*
 * 1 when x509_crl_build can encode r; 0 with *why (static text) when not:
 * a revocation time before 1970 or after X509_MAX_TIME, a serial that is
 * not 1..40 hex digits above zero, a reason out of range or 7 or 8 (RFC
 * 5280 section 5.3.1).
 */
MDM_WUR int x509_crl_entry_ok(const struct x509_revoked *r, const char **why);
/*
 * A v2 CRL (DER) signed by the CA, thisUpdate now, nextUpdate now + days
 * (1..X509_MAX_CRL_DAYS), AKI, crlNumber = now (seconds: increases without
 * stored state), reasonCode per entry unless -1.  MDM_ERR_INVAL for a bad
 * serial or reason (7, 8 or out of range); MDM_ERR_CONFIG as x509_issue.
 */
MDM_WUR mdm_err x509_crl_build(const struct x509_st *ca, struct evp_pkey_st *cakey,
        const struct x509_revoked *revoked, size_t n, time_t now, int days, uint8_t **out,
        size_t *outlen);

/* ---- x509_chain.c: certificate paths, chain files ---- */

/*
 * Verifies cert to any of the CA certificates (current and previous) at
 * time now: signature, validity of cert and of the CA that issued it,
 * and, when client_auth, extendedKeyUsage clientAuth.  MDM_ERR_AUTH when
 * it does not chain (logged, naming the serial, the issuer and why);
 * *which (if not NULL) is the index of the issuer.  Also refused: a cert
 * that is itself a CA, with an unsupported critical extension, or
 * (client_auth) whose keyUsage lacks digitalSignature.
 */
MDM_WUR mdm_err x509_verify_issued(const struct x509_st *cert, struct x509_st *const *cas,
        size_t ncas, time_t now, int client_auth, size_t *which);
/*
 * The same check, logging nothing: on MDM_ERR_AUTH *why (if not NULL) is
 * the reason ("unknown issuer", "expired", ...), for a caller that refuses
 * with it in its own terms or only asks whether cert is ours.
 */
MDM_WUR mdm_err x509_verify_issued_why(const struct x509_st *cert, struct x509_st *const *cas,
        size_t ncas, time_t now, int client_auth, size_t *which, const char **why);

/*
 * Verifies a device certificate issued by a vendor CA we pin (Apple's
 * device identity chain, OTA enrollment phase 2): the path is built only
 * from the certificates in trust (root and intermediates: what the
 * message itself carries is never used to build it) and must end at a
 * self-signed certificate of trust.  Validity dates are checked for cert
 * at now, and deliberately NOT for the pinned CA certificates: Apple
 * still issues device certificates under "Apple iPhone Device CA"
 * (expired 2014) below "Apple iPhone Certification Authority" (expired
 * 2022); pinning those exact certificates is what makes them trusted.
 * Refused (MDM_ERR_AUTH, logged with the rule): no path, a leaf that is
 * itself a CA, a leaf outside its validity at now, and any certificate of
 * the path (leaf included) whose CN starts with "[TEST]" (Apple's factory
 * test CAs: "[TEST] Apple iPhone Device CA").  Signature algorithms are
 * OpenSSL's defaults (Apple's chain is SHA-1 with RSA-1024 device keys).
 */
MDM_WUR mdm_err x509_verify_pinned(
        const struct x509_st *cert, struct x509_st *const *trust, size_t ntrust, time_t now);

/*
 * Does chain (n certificates, leaf first, the rest the intermediates a
 * web server sends) verify at now, for TLS server use, to the system's
 * public trust store (OpenSSL's default paths: the files named by
 * SSL_CERT_FILE and SSL_CERT_DIR when set, else OpenSSL's directory,
 * /usr/lib/ssl/certs, which Debian links to /etc/ssl/certs)?  The
 * certificates of chain itself are never trusted.  *out 1 or 0 (and *why,
 * static text, OpenSSL's reason, when 0).  MDM_ERR_NOMEM/CRYPTO only when
 * the check itself cannot run.
 */
MDM_WUR mdm_err x509_chain_public(
        struct x509_st *const *chain, size_t n, time_t now, int *out, const char **why);

/*
 * A PEM file of 1..max certificates (a chain): *out an array of *n owned
 * certificates, freed with x509_certs_free.  Other PEM blocks are refused.
 */
MDM_WUR mdm_err x509_certs_load_file(const char *path, struct x509_st ***out, size_t *n);
void x509_certs_free(struct x509_st **certs, size_t n);

#endif
