/*
 * SCEP (RFC 8894) server rules: what a request must prove before the CA
 * issues, and the answers.  The CMS encoding is in cms, the certificate
 * work in x509, the CA's state in ca; this module decides.
 *
 * The question users bring: a PKCSReq is signed by a throw-away
 * self-signed certificate whose CN changes every time.  That
 * is RFC 8894 section 2.3, and Apple devices use it the way the RFC
 * allows but does not recommend: the throw-away certificate has its own
 * key and a random subject (macOS "CN=MDM SCEP SIGNER", iOS CN=<UUID>).
 * So the CMS signature is verified with the certificate the message
 * carries (self-signed, its own signature checked), the CSR's own
 * signature is the proof of possession of the key being certified, the
 * one-time challenge authorises, the CertRep is encrypted to the signer
 * (only the requester holds its key), and the transaction is bound to
 * the signer's key: a retry, a CertPoll or a reused transactionID from
 * any other key gets nothing.  Requiring the signer's key (and subject)
 * to be the CSR's is an opt-in for other fleets (scep_signer_match).
 * A request signed by a certificate this CA issued (RenewalReq, or a
 * PKCSReq from an enrolled client) is authenticated by that certificate
 * instead: it must chain to our CA, be unexpired and unrevoked.
 */
#ifndef MDM_SCEP_H
#define MDM_SCEP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ca.h"
#include "config.h"
#include "db.h"
#include "errors.h"

/* What a throw-away signer must share with the CSR (config scep_signer_match). */
enum scep_signer_match {
	SCEP_SIGNER_MATCH_NONE,        /* Apple devices: own key, random subject */
	SCEP_SIGNER_MATCH_KEY,         /* the CSR's key */
	SCEP_SIGNER_MATCH_KEY_SUBJECT, /* the CSR's key and subject, as RFC 8894 2.3 advises */
};

struct scep_policy {
	int allow_sha1;                      /* scep_allow_sha1 */
	int allow_des3;                      /* scep_allow_des3 */
	int allow_des;                       /* scep_allow_des (requests only) */
	enum scep_signer_match signer_match; /* scep_signer_match */
	char *static_challenge;              /* scep_challenge (secret), NULL: one-time only */
	int manual_approval;                 /* scep_approval = manual */
	int days;                            /* cert_days */
	int min_rsa_bits;                    /* cert_min_rsa_bits */
	int copy_sans;                       /* cert_copy_sans */
	int crl_days;                        /* crl_days */
};

struct scep_server {
	db *db;
	const config *cfg;
	struct ca_state *ca;
	struct scep_policy policy;
	/* What the last scep_pki_operation answered (scep_pki_outcome). */
	const char *last_outcome, *last_fail_info;
};

/* Reads the policy from cfg; the CA is loaded on first use. */
MDM_WUR mdm_err scep_server_new(db *d, const config *cfg, struct scep_server **out);
void scep_server_free(struct scep_server *s);

/* GetCACaps (RFC 8894 section 3.5.2): one capability per line. */
MDM_WUR mdm_err scep_get_ca_caps(struct scep_server *s, char **out, size_t *outlen);
/* GetCACert (section 4.2): DER CA certificate, or CA+RA certs-only PKCS#7. */
MDM_WUR mdm_err scep_get_ca_cert(
        struct scep_server *s, uint8_t **out, size_t *outlen, const char **content_type);
/* GetNextCACert (section 4.7); MDM_ERR_NOT_FOUND when no rollover is staged. */
MDM_WUR mdm_err scep_get_next_ca_cert(struct scep_server *s, uint8_t **out, size_t *outlen);

/*
 * PKIOperation (sections 3.3, 4.3-4.6): *out is a signed CertRep
 * (SUCCESS, FAILURE with failInfo, or PENDING) for every request that
 * could be read well enough to be answered; MDM_ERR_PARSE (HTTP 400) for
 * anything else.
 */
MDM_WUR mdm_err scep_pki_operation(struct scep_server *s, const uint8_t *msg, size_t len,
        time_t now, uint8_t **out, size_t *outlen);
/*
 * What the last scep_pki_operation answered, for the metrics: outcome
 * "SUCCESS", "PENDING" or "FAILURE" (a CertRep was sent) or "unanswered"
 * (no CertRep: HTTP 400 or an error); fail_info the CertRep's failInfo
 * (RFC 8894 section 3.3.2.2: badAlg, badMessageCheck, badRequest, badTime,
 * badCertId), "" unless FAILURE.
 */
void scep_pki_outcome(const struct scep_server *s, const char **outcome, const char **fail_info);

#endif
