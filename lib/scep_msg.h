/*
 * SCEP pkiMessages (RFC 8894) on CMS: a request or CertRep parsed with its
 * signature verified, its pkcsPKIEnvelope decrypted, the contents of
 * CertPoll, GetCert and GetCRL read, and CertRep and request messages
 * built.  The failInfo codes live here; the digest and cipher names are
 * cms.h's.
 *
 * lib/scep_msg.c holds the signed layer: scep_msg_parse,
 * scep_msg_parse_unverified, scep_msg_free, scep_msg_certrep and
 * scep_msg_request.  lib/scep_msg_env.c holds the pkcsPKIEnvelope and its
 * content: scep_msg_decrypt*, scep_msg_issuer_and_serial and
 * scep_msg_issuer_and_subject.  (The scep_msg_ prefix is kept from when
 * they lived in cms.c, so that no caller changes.)
 *
 * The parser is an allow-list (after OpenBSD rpki-client): exactly one
 * SignerInfo, a known digest, the signer certificate carried in the
 * message, each SCEP attribute present at most once with one value, and
 * every refusal names the rule it enforces.
 */
#ifndef MDM_SCEP_MSG_H
#define MDM_SCEP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "cms.h"
#include "errors.h"
#include "mdm_limits.h"

struct x509_st;
struct evp_pkey_st;

/* RFC 8894 section 3.2.1.2 messageType. */
enum scep_message_type {
	SCEP_CERTREP = 3,
	SCEP_RENEWALREQ = 17,
	SCEP_PKCSREQ = 19,
	SCEP_CERTPOLL = 20,
	SCEP_GETCERT = 21,
	SCEP_GETCRL = 22,
};

/* RFC 8894 section 3.2.1.3 pkiStatus. */
enum scep_pki_status { SCEP_SUCCESS = 0, SCEP_FAILURE = 2, SCEP_PENDING = 3 };

/* RFC 8894 section 3.2.1.4 failInfo; SCEP_FAIL_NONE when not a failure. */
enum scep_fail_info {
	SCEP_FAIL_NONE = -1,
	SCEP_BAD_ALG = 0,
	SCEP_BAD_MESSAGE_CHECK = 1,
	SCEP_BAD_REQUEST = 2,
	SCEP_BAD_TIME = 3,
	SCEP_BAD_CERT_ID = 4,
};

/*
 * RFC 8894 says 16-byte nonces, but macOS (PKCSReq 2016, mdmclient 2017)
 * sends 8-byte senderNonces and expects them back: 8 to 16 are accepted.
 */
#define SCEP_NONCE_LEN     16
#define SCEP_NONCE_MIN_LEN 8

/*
 * A parsed, signature-verified pkiMessage (request or CertRep).  For a
 * request pki_status is SCEP_FAILURE and fail_info SCEP_FAIL_NONE (both
 * meaningless); every request has a sender nonce and an envelope.
 */
struct scep_msg {
	enum scep_message_type message_type;
	char transaction_id[SCEP_MAX_TRANSID + 1];
	uint8_t sender_nonce[SCEP_NONCE_LEN]; /* sender_nonce_len bytes, zero-padded */
	int has_sender_nonce;
	size_t sender_nonce_len; /* SCEP_NONCE_MIN_LEN to SCEP_NONCE_LEN; 0 if absent */
	uint8_t recipient_nonce[SCEP_NONCE_LEN];
	int has_recipient_nonce;
	size_t recipient_nonce_len;
	enum cms_digest digest;
	/* The certificate that signed (self-signed throw-away, or one we issued). Owned. */
	struct x509_st *signer;
	/* challengePassword as a signed attribute (macOS mdmclient), NUL-ended; NULL if absent. */
	char *challenge;
	/* CertRep only. */
	enum scep_pki_status pki_status;
	enum scep_fail_info fail_info;
	/* The pkcsPKIEnvelope (EnvelopedData, DER); NULL when absent (failure CertRep). */
	uint8_t *envelope;
	size_t envelope_len;
};

/*
 * Parses pkiMessage DER (BER with indefinite lengths accepted) and
 * verifies its signature with the signer certificate it carries (chain
 * NOT checked: the caller decides what the signer must be).  On refusal,
 * *fail says which failInfo the CertRep should carry (badAlg for MD5 or an
 * unknown digest, badMessageCheck for a bad signature or a missing signer
 * certificate, badRequest for the rest) and err (if not NULL) the rule,
 * e.g. "RFC 8894 3.2: CMS has 2 SignerInfos".  fail may be NULL.
 * MDM_ERR_LIMIT above MDM_MAX_BODY_SCEP (checked first), MDM_ERR_PARSE for
 * every other refusal.  Unknown signed attributes are ignored; the ones
 * read here must appear at most once, with one value.
 */
MDM_WUR mdm_err scep_msg_parse(const uint8_t *der, size_t len, struct scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen);

/*
 * UNVERIFIED.  The same parse, for a message scep_msg_parse refused with
 * badAlg or badMessageCheck, with the signature NOT verified and the
 * algorithm policy NOT applied (digest, its parameters, signature
 * algorithm, signer key type): every field of *out is the sender's claim,
 * unauthenticated.  Only to address a FAILURE CertRep (transactionID,
 * senderNonce, messageType, signer); never to decide, issue or store
 * anything.  m->digest is CMS_DIGEST__MAX when the digest is not one we
 * accept.  Every other rule (one SignerInfo, the signer certificate in
 * the message, its key decoding, attributes once with one value,
 * transactionID and senderNonce present, envelope, limits, no trailing
 * bytes) is enforced and refused exactly as by scep_msg_parse.
 */
MDM_WUR mdm_err scep_msg_parse_unverified(const uint8_t *der, size_t len, struct scep_msg **out,
        enum scep_fail_info *fail, char *err, size_t errlen);
void scep_msg_free(struct scep_msg *m);

/*
 * Decrypts m->envelope with the recipient's key (the CA or RA key, whose
 * certificate is cert).  *out is the content (a CSR DER for PKCSReq and
 * RenewalReq, IssuerAndSubject for CertPoll, IssuerAndSerialNumber for
 * GetCert and GetCRL; free() it); *cipher the content cipher the client
 * used (CMS_CIPHER__MAX until success; cipher and fail may be NULL).
 * Key transport RSA PKCS #1 v1.5 or RSAES-OAEP; content 3DES or AES-128/256
 * CBC.  Single DES and RC2 are refused (badAlg); an envelope not addressed
 * to cert or that does not decrypt is MDM_ERR_PARSE with badMessageCheck.
 * A wrong key may now and then yield garbage rather than an error (the
 * Bleichenbacher defence, see cms.c): treat content that does not parse
 * exactly like a decryption failure (badMessageCheck).
 */
MDM_WUR mdm_err scep_msg_decrypt(const struct scep_msg *m, struct evp_pkey_st *key,
        struct x509_st *cert, uint8_t **out, size_t *outlen, enum cms_cipher *cipher,
        enum scep_fail_info *fail);

/*
 * The same, also accepting a single-DES envelope (micromdm's scepclient
 * 2.1 sends nothing else); *cipher is then CMS_CIPHER_DES.  For callers
 * whose policy allows it (config scep_allow_des); replies never use DES.
 */
MDM_WUR mdm_err scep_msg_decrypt_des(const struct scep_msg *m, struct evp_pkey_st *key,
        struct x509_st *cert, uint8_t **out, size_t *outlen, enum cms_cipher *cipher,
        enum scep_fail_info *fail);
/*
 * Either of the two (allow_des), also saying whether the envelope was
 * addressed to cert's SCEP responder (x509_scep_responder) rather than to
 * cert itself: *to_responder (may be NULL) is 1 then, on success only.
 * The CertRep is signed under the certificate the client encrypted to.
 * Unlike the two, it logs no refusal: the rule goes into err (if not
 * NULL) for the caller, which refuses with it and logs it once, naming
 * the transaction (scep.c).
 */
MDM_WUR mdm_err scep_msg_decrypt_ex(const struct scep_msg *m, struct evp_pkey_st *key,
        struct x509_st *cert, int allow_des, uint8_t **out, size_t *outlen, enum cms_cipher *cipher,
        enum scep_fail_info *fail, int *to_responder, char *err, size_t errlen);

/*
 * The parts of IssuerAndSubject (CertPoll) / IssuerAndSerialNumber
 * (GetCert, GetCRL), DER, no trailing bytes.  Names are RFC 2253 strings
 * (OpenSSL XN_FLAG_RFC2253), the serial upper-case hex without leading
 * zeros (as x509_cert_info); all free()d by the caller.  A negative serial
 * or one over 20 octets is refused.
 */
MDM_WUR mdm_err scep_msg_issuer_and_serial(
        const uint8_t *der, size_t len, char **issuer, char **serial_hex);
MDM_WUR mdm_err scep_msg_issuer_and_subject(
        const uint8_t *der, size_t len, char **issuer, char **subject);

struct scep_msg_certrep_params {
	struct x509_st *signer;             /* CA or RA certificate (keyUsage digitalSignature) */
	struct evp_pkey_st *key;            /* its key */
	struct x509_st *const *extra_certs; /* also carried (e.g. CA behind an RA) */
	size_t n_extra_certs;
	enum cms_digest digest; /* the request's, or the best both support */
	const char *transaction_id;
	const uint8_t *recipient_nonce; /* the request's senderNonce */
	size_t recipient_nonce_len;     /* its length (m->sender_nonce_len); 0: SCEP_NONCE_LEN */
	enum scep_pki_status status;
	enum scep_fail_info fail_info; /* FAILURE only */
	/* SUCCESS: certificates and/or one CRL, enveloped to recipient with cipher. */
	struct x509_st *const *certs;
	size_t n_certs;
	const uint8_t *crl_der;
	size_t crl_len;
	struct x509_st *recipient; /* the request's signer certificate */
	enum cms_cipher cipher;
};

/*
 * Builds a signed CertRep (RFC 8894 section 3.3.2), fresh senderNonce,
 * *out DER to free().  SUCCESS needs recipient and certs and/or a CRL;
 * FAILURE and PENDING carry an empty content (no pkcsPKIEnvelope).
 */
MDM_WUR mdm_err scep_msg_certrep(
        const struct scep_msg_certrep_params *p, uint8_t **out, size_t *outlen);

/*
 * Builds a request pkiMessage (for tests, benchmarks and our own client):
 * content enveloped to recipient with cipher, signed by signer/key.
 */
struct scep_msg_request_params {
	enum scep_message_type type;
	struct x509_st *signer;
	struct evp_pkey_st *key;
	struct x509_st *recipient;
	enum cms_digest digest;
	enum cms_cipher cipher;
	const char *transaction_id;
	const uint8_t *sender_nonce; /* SCEP_NONCE_LEN bytes; NULL: random */
	const char *challenge_attr;  /* NULL: no challengePassword signed attribute */
	const uint8_t *content;      /* CSR DER or IssuerAndSerial... */
	size_t content_len;
	int rsa_oaep; /* key transport RSAES-OAEP (as Windows) rather than PKCS #1 v1.5 */
};
MDM_WUR mdm_err scep_msg_request(
        const struct scep_msg_request_params *p, uint8_t **out, size_t *outlen);

#endif
