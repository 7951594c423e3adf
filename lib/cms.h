/*
 * CMS (RFC 5652) on OpenSSL: signing, verifying and encrypting for the
 * MDM side (signed profiles, Mdm-Signature, OTA device attributes,
 * encrypted profiles), degenerate certificates-only SignedData, and the
 * algorithm names the SCEP messages (scep_msg.h) share.  Only the cms,
 * scep_msg and x509 files include OpenSSL; other modules pass the opaque
 * pointers along.
 *
 * lib/cms.c holds all of this header, with the algorithm policy and the
 * helpers lib/cms_int.h shares with lib/scep_msg.c and lib/scep_msg_env.c.
 *
 * The verifiers are allow-lists (after OpenBSD rpki-client): exactly one
 * SignerInfo, a known digest, the signer certificate carried in the
 * message, each interpreted attribute at most once with one value, and
 * every refusal names the rule it enforces.
 */
#ifndef MDM_CMS_H
#define MDM_CMS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "mdm_limits.h"

struct x509_st;
struct evp_pkey_st;

/* Digests and content ciphers, our names (not OpenSSL NIDs). */
enum cms_digest { CMS_DIGEST_SHA1, CMS_DIGEST_SHA256, CMS_DIGEST_SHA512, CMS_DIGEST__MAX };
/* CMS_CIPHER_DES (single DES) is only ever read, by scep_msg_decrypt_des. */
enum cms_cipher {
	CMS_CIPHER_DES3,
	CMS_CIPHER_AES128,
	CMS_CIPHER_AES256,
	CMS_CIPHER_DES,
	CMS_CIPHER__MAX
};

/* "sha256", "aes-128-cbc": for logs; "invalid" out of range. */
const char *cms_digest_str(enum cms_digest d);
const char *cms_cipher_str(enum cms_cipher c);

/* Degenerate certificates-only SignedData (GetCACert with an RA); n >= 1. */
MDM_WUR mdm_err cms_certs_only(
        struct x509_st *const *certs, size_t n, uint8_t **out, size_t *outlen);
/*
 * GetNextCACert (RFC 8894 section 4.7): a SignedData signed by the current
 * CA (or RA) whose content is a degenerate certs-only SignedData holding
 * the next CA (and RA) certificates (eContentType data, SHA-256, the
 * signer certificate carried).
 */
MDM_WUR mdm_err cms_sign_certs_only(struct x509_st *signer, struct evp_pkey_st *key,
        struct x509_st *const *certs, size_t n, uint8_t **out, size_t *outlen);

/*
 * Certificates of a degenerate certs-only SignedData (our tests read
 * GetCACert, and the decrypted content of a CertRep).  *certs is an array
 * of *n owned certificates (X509_free / x509_cert_free each, then free()
 * the array); NULL when there are none (a CRL-only reply).  At most
 * CMS_MAX_CERTS; SignerInfos or content are refused.
 */
MDM_WUR mdm_err cms_certs_only_parse(
        const uint8_t *der, size_t len, struct x509_st ***certs, size_t *n);

/*
 * General CMS signing (RFC 5652) for what the MDM side signs and checks:
 * signed profiles (.mobileconfig) and Mdm-Signature (Apple MDM protocol,
 * SignMessage: a detached signature over the exact request body).
 */

/*
 * Signs content as an attached SignedData (a signed .mobileconfig):
 * SHA-256, signed attributes (contentType, messageDigest, signingTime),
 * the signer and chain[0..nchain) carried (each once) so a verifier can
 * build the path to its root.  The bytes are signed as they are (binary,
 * no MIME canonicalisation); content may be empty.  key must be the
 * signer's (MDM_ERR_INVAL otherwise).  *out is DER (free()).
 */
MDM_WUR mdm_err cms_sign_attached(struct x509_st *signer, struct evp_pkey_st *key,
        struct x509_st *const *chain, size_t nchain, const uint8_t *content, size_t len,
        uint8_t **out, size_t *outlen);

/* The same, detached (content not carried): what a device puts in Mdm-Signature. */
MDM_WUR mdm_err cms_sign_detached(struct x509_st *signer, struct evp_pkey_st *key,
        const uint8_t *content, size_t len, uint8_t **out, size_t *outlen);

/*
 * Verifies a detached SignedData (DER or BER) over content, byte for
 * byte, with the signer certificate the signature carries; the chain is
 * NOT checked (the caller decides what the signer must be).  Allow-list:
 * exactly one SignerInfo, no encapsulated content (eContentType data),
 * the signer certificate present and found by the sid, digest SHA-1
 * (Apple devices still use it), SHA-256, SHA-384 or SHA-512 (MD5 and the
 * rest refused), RSA PKCS #1 v1.5 or ECDSA with the signer key of that
 * kind.  Signed attributes are optional (devices send none: the signature
 * is then over the content itself); when present, contentType id-data
 * and messageDigest are required, each (and signingTime) once with one
 * value.  Nothing after the DER object.  content may be empty (len 0).
 * *signer (owned by the caller) on MDM_OK, NULL otherwise.
 * MDM_ERR_LIMIT over CMS_MAX_SIGNATURE (checked first, before parsing) or
 * over CMS_MAX_SIGNED_ATTRS, MDM_ERR_PARSE for a malformed or disallowed
 * structure, MDM_ERR_AUTH when the signature or the messageDigest does not
 * match content; each refusal is logged once and err (if not NULL) names
 * the rule, e.g. "RFC 5652 5.4: messageDigest does not match the content".
 */
MDM_WUR mdm_err cms_verify_detached(const uint8_t *sig, size_t siglen, const uint8_t *content,
        size_t len, struct x509_st **signer, char *err, size_t errlen);

/*
 * An attached SignedData (OTA profile service phases 2 and 3: the device
 * attributes plist, signed by the device): the allow-list of
 * cms_verify_detached, with non-empty encapsulated id-data content
 * required instead of forbidden.  On MDM_OK *content (NUL-terminated,
 * free()) is the signed content and *signer its certificate (the chain
 * is NOT checked: the caller decides what the signer must be).
 * MDM_ERR_LIMIT over CMS_MAX_SIGNED_MESSAGE, before parsing.
 */
MDM_WUR mdm_err cms_verify_attached(const uint8_t *der, size_t len, uint8_t **content,
        size_t *content_len, struct x509_st **signer, char *err, size_t errlen);

/*
 * EnvelopedData (RFC 5652 6) of content to recipient: AES-256-CBC with a
 * fresh random key, which RSA (PKCS #1 v1.5, what Apple devices decrypt)
 * wraps for the recipient's key, or for an EC identity (ACME) ECDH
 * key agreement (RFC 5753) with an ephemeral key.  The recipient's key
 * never touches the content, so its size does not bound the content's.
 * An encrypted profile's EncryptedPayloadContent.  *out DER, free().
 */
MDM_WUR mdm_err cms_encrypt(struct x509_st *recipient, const uint8_t *content, size_t len,
        uint8_t **out, size_t *outlen);

#endif
