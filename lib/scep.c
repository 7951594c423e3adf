/* SCEP server rules (RFC 8894): authorise, issue once, answer. */
#include "scep.h"
#include "cms.h"
#include "log.h"
#include "scep_msg.h"
#include "x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scep_fail_names[] = {
        "badAlg",
        "badMessageCheck",
        "badRequest",
        "badTime",
        "badCertId",
};

static const char *scep_fail_str(enum scep_fail_info f)
{
	return (f >= 0 && f <= SCEP_BAD_CERT_ID) ? scep_fail_names[f] : "none";
}

mdm_err scep_server_new(db *d, const config *cfg, struct scep_server **out)
{
	struct scep_server *s;
	const char *v;
	mdm_err rc;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MDM_ERR_NOMEM;
	s->db = d;
	s->cfg = cfg;
	if ((rc = config_get_bool(cfg, "scep_allow_sha1", &s->policy.allow_sha1)) != MDM_OK ||
	        (rc = config_get_bool(cfg, "scep_allow_des3", &s->policy.allow_des3)) != MDM_OK ||
	        (rc = config_get_bool(cfg, "scep_allow_des", &s->policy.allow_des)) != MDM_OK ||
	        (rc = config_get_bool(cfg, "cert_copy_sans", &s->policy.copy_sans)) != MDM_OK ||
	        (rc = config_get_int(cfg, "cert_days", 1, 3650, &s->policy.days)) != MDM_OK ||
	        (rc = config_get_int(cfg, "cert_min_rsa_bits", 2048, 16384,
	                 &s->policy.min_rsa_bits)) != MDM_OK ||
	        (rc = config_get_int(cfg, "crl_days", 1, 365, &s->policy.crl_days)) != MDM_OK)
		goto fail;
	v = config_get0(cfg, "scep_approval");
	if (v == NULL || strcmp(v, "auto") == 0) {
		s->policy.manual_approval = 0;
	} else if (strcmp(v, "manual") == 0) {
		s->policy.manual_approval = 1;
	} else {
		log_error("config: scep_approval must be auto or manual");
		rc = MDM_ERR_CONFIG;
		goto fail;
	}
	v = config_get0(cfg, "scep_signer_match");
	if (v == NULL || strcmp(v, "none") == 0) {
		s->policy.signer_match = SCEP_SIGNER_MATCH_NONE;
	} else if (strcmp(v, "key") == 0) {
		s->policy.signer_match = SCEP_SIGNER_MATCH_KEY;
	} else if (strcmp(v, "key+subject") == 0) {
		s->policy.signer_match = SCEP_SIGNER_MATCH_KEY_SUBJECT;
	} else {
		log_error("config: scep_signer_match must be none, key or key+subject");
		rc = MDM_ERR_CONFIG;
		goto fail;
	}
	v = config_get0(cfg, "scep_challenge");
	if (v != NULL && *v != '\0') {
		if (strlen(v) < 16) {
			log_error("config: scep_challenge must be at least 16 characters");
			rc = MDM_ERR_CONFIG;
			goto fail;
		}
		if ((s->policy.static_challenge = strdup(v)) == NULL) {
			rc = MDM_ERR_NOMEM;
			goto fail;
		}
	}
	*out = s;
	return MDM_OK;
fail:
	scep_server_free(s);
	return rc;
}

void scep_server_free(struct scep_server *s)
{
	if (s == NULL)
		return;
	ca_state_free(s->ca);
	free(s->policy.static_challenge);
	free(s);
}

static MDM_WUR mdm_err scep_ca(struct scep_server *s)
{
	return ca_refresh(s->db, s->cfg, &s->ca);
}

mdm_err scep_get_ca_caps(struct scep_server *s, char **out, size_t *outlen)
{
	char buf[256];
	int n;
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if ((rc = scep_ca(s)) != MDM_OK)
		return rc;
	/* Only what we really do (RFC 8894 section 3.5.2). */
	n = snprintf(buf, sizeof(buf),
	        "AES\nPOSTPKIOperation\nRenewal\nSCEPStandard\nSHA-256\n"
	        "SHA-512\n%s%s%s",
	        s->policy.allow_des3 ? "DES3\n" : "", s->policy.allow_sha1 ? "SHA-1\n" : "",
	        s->ca->next ? "GetNextCACert\n" : "");
	if (n < 0 || (size_t)n >= sizeof(buf) || (*out = strdup(buf)) == NULL)
		return MDM_ERR_NOMEM;
	*outlen = (size_t)n;
	return MDM_OK;
}

mdm_err scep_get_ca_cert(
        struct scep_server *s, uint8_t **out, size_t *outlen, const char **content_type)
{
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	*content_type = NULL;
	if ((rc = scep_ca(s)) != MDM_OK)
		return rc;
	/*
	 * Without an RA, the CA's key is offered under its responder
	 * certificate beside the CA (section 4.2.1.2, as an RA would be):
	 * clients that never trust the certificate they encrypt to
	 * (certmonger) find the CA apart from it, and Apple devices take it
	 * as the RA that encrypts and signs (scep_reply).
	 */
	struct x509_st *ee = s->ca->ra != NULL ? s->ca->ra : s->ca->responder;
	if (ee == NULL) {
		/* A CA key that is not RSA: the lone CA certificate (section 4.2.1.1). */
		*content_type = "application/x-x509-ca-cert";
		return x509_cert_to_der(s->ca->active, out, outlen);
	}
	struct x509_st *certs[2] = {ee, s->ca->active};
	*content_type = "application/x-x509-ca-ra-cert";
	return cms_certs_only(certs, 2, out, outlen);
}

mdm_err scep_get_next_ca_cert(struct scep_server *s, uint8_t **out, size_t *outlen)
{
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if ((rc = scep_ca(s)) != MDM_OK)
		return rc;
	if (s->ca->next == NULL)
		return MDM_ERR_NOT_FOUND;
	struct x509_st *certs[1] = {s->ca->next};
	return cms_sign_certs_only(s->ca->ra ? s->ca->ra : s->ca->active,
	        s->ca->ra ? s->ca->ra_key : s->ca->active_key, certs, 1, out, outlen);
}

/* One request being answered. */
struct scep_op {
	struct scep_server *s;
	struct scep_msg *msg;
	time_t now;
	enum cms_cipher cipher;
	uint8_t *content; /* decrypted pkcsPKIEnvelope */
	int to_ca;        /* it was enveloped to the CA certificate, not to its responder */
	size_t content_len;
	struct X509_req_st *csr;
	char key_sha256[X509_FP_HEX_LEN + 1]; /* of the signer's public key */
	/* Authorisation found. */
	char renewal_of[32]; /* certificate id, "" for none */
	char udid[129];      /* from the old certificate or the challenge */
	/* Answer. */
	enum scep_pki_status status;
	enum scep_fail_info fail;
	struct x509_st *cert; /* issued or found */
	uint8_t *crl;
	size_t crl_len;
};

/* Refuses with failInfo, logging the rule once. */
static MDM_WUR mdm_err scep_refuse(struct scep_op *op, enum scep_fail_info fail, const char *rule)
{
	log_warn("scep: %s refused: %s (failInfo %s)", op->msg->transaction_id, rule,
	        scep_fail_str(fail));
	op->status = SCEP_FAILURE;
	op->fail = fail;
	return MDM_OK;
}

/*
 * The same answer to a refusal the callee (x509, cms) logged with its
 * rule: only the answer is logged here, naming the transaction and what
 * was refused.
 */
static MDM_WUR mdm_err scep_refused_by_callee(
        struct scep_op *op, enum scep_fail_info fail, const char *what)
{
	log_info("scep: %s: %s refused (its rule is logged): FAILURE, failInfo %s",
	        op->msg->transaction_id, what, scep_fail_str(fail));
	op->status = SCEP_FAILURE;
	op->fail = fail;
	return MDM_OK;
}

/*
 * The digest a CertRep is signed with: the request's when this server
 * accepts it, else the server's own (SHA-256, the one GetCACaps names
 * first).  A refusal for its digest (SHA-1 without scep_allow_sha1, MD5)
 * is never answered in that digest over the transactionID and nonce the
 * requester chose.
 */
static enum cms_digest scep_reply_digest(const struct scep_server *s, enum cms_digest asked)
{
	if (asked == CMS_DIGEST_SHA256 || asked == CMS_DIGEST_SHA512)
		return asked;
	if (asked == CMS_DIGEST_SHA1 && s->policy.allow_sha1)
		return asked;
	return CMS_DIGEST_SHA256;
}

/*
 * The CertRep is signed under the certificate GetCACert offered as the RA:
 * Apple devices accept a reply signed by exactly that certificate and no
 * other (Security framework, SecSCEPVerifyReply), and with the lone CA
 * certificate only by the CA.  So: the RA when one is configured; without
 * one the responder (the CA's own key), unless the request was enveloped
 * to the CA certificate itself, from a client that read the lone CA
 * (older answers of this server): then the CA.  Failures found before
 * decryption go out under the responder, as current clients expect.
 */
static MDM_WUR mdm_err scep_reply_build(struct scep_op *op, uint8_t **out, size_t *outlen)
{
	struct ca_state *ca = op->s->ca;
	struct x509_st *extra[1] = {ca->active};
	struct x509_st *certs[1] = {op->cert};
	struct x509_st *ee = ca->ra ? ca->ra : op->to_ca ? NULL : ca->responder;
	struct scep_msg_certrep_params p;

	memset(&p, 0, sizeof(p));
	p.signer = ee ? ee : ca->active;
	p.key = ca->ra ? ca->ra_key : ca->active_key;
	p.extra_certs = ee ? extra : NULL;
	p.n_extra_certs = ee ? 1 : 0;
	p.digest = scep_reply_digest(op->s, op->msg->digest);
	p.transaction_id = op->msg->transaction_id;
	p.recipient_nonce = op->msg->has_sender_nonce ? op->msg->sender_nonce : NULL;
	p.recipient_nonce_len = op->msg->sender_nonce_len; /* Apple sends 8 bytes */
	p.status = op->status;
	p.fail_info = op->status == SCEP_FAILURE ? op->fail : SCEP_FAIL_NONE;
	if (op->status == SCEP_SUCCESS) {
		p.certs = op->cert ? certs : NULL;
		p.n_certs = op->cert ? 1 : 0;
		p.crl_der = op->crl;
		p.crl_len = op->crl_len;
		p.recipient = op->msg->signer;
		/* The request's cipher, but never single DES: AES-256 instead. */
		p.cipher = op->cipher == CMS_CIPHER_DES ? CMS_CIPHER_AES256 : op->cipher;
	}
	return scep_msg_certrep(&p, out, outlen);
}

/* The CertRep, and what it answered recorded for scep_pki_outcome. */
static MDM_WUR mdm_err scep_reply(struct scep_op *op, uint8_t **out, size_t *outlen)
{
	mdm_err rc = scep_reply_build(op, out, outlen);

	if (rc == MDM_OK) {
		op->s->last_outcome = op->status == SCEP_SUCCESS ? "SUCCESS"
		        : op->status == SCEP_PENDING             ? "PENDING"
		                                                 : "FAILURE";
		op->s->last_fail_info = op->status == SCEP_FAILURE ? scep_fail_str(op->fail) : "";
	}
	return rc;
}

static int scep_ct_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
	unsigned char diff = (unsigned char)(la != lb);

	/* Constant time in the secret's contents. */
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
	return diff == 0;
}

/*
 * A transactionID seen before: the same key gets the same answer
 * (an idempotent retry), another key is refused.  *found says whether
 * there was one.
 */
static MDM_WUR mdm_err scep_existing(struct scep_op *op, int *found)
{
	const char *params[1] = {op->msg->transaction_id};
	db_res *r = NULL;
	const char *status;
	mdm_err rc;

	*found = 0;
	rc = db_exec(op->s->db,
	        "SELECT t.signer_key_sha256, t.status, c.der, coalesce(t.refusal, ''), "
	        "coalesce(t.refusal_fail_info, 0) FROM mdm.scep_transaction t "
	        "LEFT JOIN mdm.certificate c ON c.id = t.certificate_id "
	        "WHERE t.transaction_id = $1",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) == 0)
		goto out;
	*found = 1;
	if (strcmp(db_res_get0(r, 0, 0), op->key_sha256) != 0) {
		rc = scep_refuse(op, SCEP_BAD_REQUEST,
		        "RFC 8894 section 3.2.1.1: transactionID already used with another key");
		goto out;
	}
	status = db_res_get0(r, 0, 1);
	if (strcmp(status, "issued") == 0) {
		op->status = SCEP_SUCCESS;
		rc = ca_cert_from_res(r, 0, 2, &op->cert);
		log_info("scep: %s: retry answered with the certificate already issued",
		        op->msg->transaction_id);
	} else if (strcmp(status, "pending") == 0) {
		op->status = SCEP_PENDING;
	} else if (strcmp(status, "refused") == 0) {
		rc = scep_refuse(
		        op, (enum scep_fail_info)atoi(db_res_get0(r, 0, 4)), db_res_get0(r, 0, 3));
	} else {
		rc = scep_refuse(op, SCEP_BAD_REQUEST, "the request was rejected by an operator");
	}
out:
	db_res_free(r);
	return rc;
}

/* RenewalReq, or a PKCSReq from an enrolled client: the signer is ours. */
static MDM_WUR mdm_err scep_auth_by_certificate(struct scep_op *op, int *ok)
{
	struct x509_info info;
	const char *params[1];
	db_res *r = NULL;
	mdm_err rc;

	*ok = 0;
	if ((rc = x509_cert_info(op->msg->signer, &info)) != MDM_OK)
		return rc;
	params[0] = info.sha256;
	rc = db_exec(op->s->db,
	        "SELECT id, revoked_at IS NOT NULL, coalesce(udid, ''), subject FROM "
	        "mdm.certificate WHERE sha256 = $1 AND kind = 'device'",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		rc = scep_refuse(op, SCEP_BAD_MESSAGE_CHECK,
		        "RFC 8894 section 2.3: the signer certificate was not issued by this CA");
		goto out;
	}
	if (strcmp(db_res_get0(r, 0, 1), "t") == 0) {
		rc = scep_refuse(op, SCEP_BAD_MESSAGE_CHECK, "the signer certificate is revoked");
		goto out;
	}
	if (!x509_csr_subject_matches_cert(op->csr, op->msg->signer)) {
		rc = scep_refuse(op, SCEP_BAD_REQUEST,
		        "a renewal keeps the subject of the certificate it renews");
		goto out;
	}
	snprintf(op->renewal_of, sizeof(op->renewal_of), "%s", db_res_get0(r, 0, 0));
	snprintf(op->udid, sizeof(op->udid), "%s", db_res_get0(r, 0, 2));
	*ok = 1;
out:
	db_res_free(r);
	return rc;
}

struct scep_issue_tx {
	struct scep_op *op;
	const char *challenge; /* one-time challenge to spend, or NULL */
	int unique_violation;
};

/* Spends a one-time challenge: atomically, so two requests cannot both use it. */
static MDM_WUR mdm_err scep_spend_challenge(
        db *d, struct scep_op *op, const char *challenge, char *challenge_id, size_t cap)
{
	const char *params[1] = {challenge};
	db_res *r = NULL;
	mdm_err rc;

	challenge_id[0] = '\0';
	/* Looked up by its SHA-256: the comparison never touches the secret itself. */
	rc = db_exec(d,
	        "UPDATE mdm.challenge SET used_at = now() "
	        "WHERE challenge_sha256 = encode(sha256(convert_to($1, 'UTF8')), 'hex') "
	        "AND purpose = 'scep' AND used_at IS NULL AND expires_at > now() "
	        "RETURNING id, coalesce(udid, '')",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		rc = scep_refuse(op, SCEP_BAD_REQUEST,
		        "challengePassword unknown, expired or already used (RFC 8894 section "
		        "2.2)");
		goto out;
	}
	snprintf(challenge_id, cap, "%s", db_res_get0(r, 0, 0));
	if (*db_res_get0(r, 0, 1) != '\0')
		snprintf(op->udid, sizeof(op->udid), "%s", db_res_get0(r, 0, 1));
out:
	db_res_free(r);
	return rc;
}

/* Issues op->csr and records the certificate on the transaction. */
static MDM_WUR mdm_err scep_issue_cert(db *d, struct scep_op *op)
{
	struct x509_issue_policy pol = {
	        op->s->policy.days, op->s->policy.min_rsa_bits, op->s->policy.copy_sans};
	struct ca_state *ca = op->s->ca;
	long long cid;
	mdm_err rc;

	if ((rc = x509_issue(ca->active, ca->active_key, op->csr, &pol, op->now, &op->cert)) !=
	        MDM_OK) {
		if (rc == MDM_ERR_FORBIDDEN || rc == MDM_ERR_PARSE)
			return scep_refuse(op, SCEP_BAD_REQUEST, "the CSR is outside the policy");
		return rc;
	}
	rc = ca_cert_insert(d, op->cert, "device", op->udid[0] ? op->udid : NULL,
	        op->renewal_of[0] ? op->renewal_of : NULL, op->msg->transaction_id, &cid);
	if (rc != MDM_OK)
		return rc;
	/* The transaction is marked issued, its challenge linked, by the same statement. */
	if (rc == MDM_OK) {
		op->status = SCEP_SUCCESS;
		log_info("scep: %s: issued certificate %lld%s", op->msg->transaction_id, cid,
		        op->renewal_of[0] ? " (renewal)" : "");
	}
	return rc;
}

static MDM_WUR mdm_err scep_issue_tx_fn(db *d, void *arg)
{
	struct scep_issue_tx *t = arg;
	struct scep_op *op = t->op;
	char challenge_id[32] = "", type[8];
	uint8_t *csr_der = NULL;
	size_t csr_len = 0;
	char subject[512];
	const char *values[8];
	int lengths[8] = {0}, formats[8] = {0};
	mdm_err rc;

	/* A retry of the whole transaction starts from a clean answer. */
	op->status = SCEP_FAILURE;
	op->fail = SCEP_FAIL_NONE;
	x509_cert_free(op->cert);
	op->cert = NULL;
	if (t->challenge != NULL) {
		rc = scep_spend_challenge(d, op, t->challenge, challenge_id, sizeof(challenge_id));
		if (rc != MDM_OK || op->fail != SCEP_FAIL_NONE)
			return rc == MDM_OK ? MDM_ERR_FORBIDDEN : rc; /* roll back */
	}
	if ((rc = x509_csr_subject(op->csr, subject, sizeof(subject))) != MDM_OK)
		return rc;
	csr_der = op->content;
	csr_len = op->content_len;
	snprintf(type, sizeof(type), "%d", (int)op->msg->message_type);
	values[0] = op->msg->transaction_id;
	values[1] = op->key_sha256;
	values[2] = type;
	values[3] = (const char *)csr_der;
	lengths[3] = (int)csr_len;
	formats[3] = 1;
	values[4] = subject;
	values[5] = challenge_id[0] ? challenge_id : NULL;
	values[6] = op->renewal_of[0] ? op->renewal_of : NULL;
	values[7] = op->udid[0] ? op->udid : NULL;
	rc = db_exec_bin(d,
	        "INSERT INTO mdm.scep_transaction (transaction_id, signer_key_sha256, "
	        "message_type, "
	        "status, csr, subject, challenge_id, renewal_of, udid) VALUES ($1, $2, "
	        "$3::smallint, 'pending', $4, $5, $6::bigint, $7::bigint, $8)",
	        8, values, lengths, formats, NULL);
	if (rc != MDM_OK) {
		if (strcmp(db_get0_sqlstate(d), "23505") == 0)
			t->unique_violation = 1; /* a concurrent request with this transactionID */
		return rc;
	}
	if (op->s->policy.manual_approval) {
		op->status = SCEP_PENDING;
		log_info("scep: %s: waiting for an operator (mdm.scep_approve)",
		        op->msg->transaction_id);
		return MDM_OK;
	}
	rc = scep_issue_cert(d, op);
	if (rc == MDM_OK && op->status != SCEP_SUCCESS)
		return MDM_ERR_FORBIDDEN; /* refused by policy: roll back, challenge unspent */
	return rc;
}

/*
 * A first request's throw-away signer (RFC 8894 section 2.3).  It is the
 * key the CertRep is encrypted to and the transaction is bound to, and
 * nothing more: the proof of possession of the key being certified is
 * the CSR's own signature, the authorisation the challenge.  It must be
 * self-signed (issuer = subject, verified by its own key; its AKI is not
 * looked at: Windows' signer carries a critical one that matches
 * nothing).  Its dates are the device's clock and mean nothing for a
 * one-request key, so they are not checked: a device whose clock is off
 * during Setup Assistant still enrolls.  Apple devices give it their own
 * key and a random subject, so requiring the CSR's key or subject
 * (scep_signer_match) is only for other fleets.  1 if it passes; 0 with
 * the refusal recorded.
 */
static int scep_throwaway_signer_ok(struct scep_op *op)
{
	enum scep_signer_match match = op->s->policy.signer_match;
	struct x509_st *signer = op->msg->signer;

	if (!x509_cert_self_issued(signer) || !x509_cert_signed_by(signer, signer)) {
		err_ignore(scep_refuse(op, SCEP_BAD_MESSAGE_CHECK,
		        "RFC 8894 section 2.3: the signer is neither a certificate this CA "
		        "issued (valid, for client authentication) nor self-signed"));
		return 0;
	}
	if (match != SCEP_SIGNER_MATCH_NONE && !x509_csr_key_matches_cert(op->csr, signer)) {
		err_ignore(scep_refuse(op, SCEP_BAD_MESSAGE_CHECK,
		        "the self-signed signer's key is not the CSR's (scep_signer_match)"));
		return 0;
	}
	if (match == SCEP_SIGNER_MATCH_KEY_SUBJECT &&
	        !x509_csr_subject_matches_cert(op->csr, signer)) {
		err_ignore(scep_refuse(op, SCEP_BAD_MESSAGE_CHECK,
		        "the self-signed signer's subject is not the CSR's (scep_signer_match = "
		        "key+subject)"));
		return 0;
	}
	return 1;
}

/*
 * The challengePassword of a first request (RFC 8894 section 2.2): in the
 * CSR, or as a CMS signed attribute (macOS mdmclient), the same in both
 * when in both.  *challenge (borrowed from op or *csr_challenge, which
 * the caller frees) is NULL when the request is refused.
 */
static MDM_WUR mdm_err scep_challenge_of(
        struct scep_op *op, char **csr_challenge, const char **challenge)
{
	mdm_err rc;

	*csr_challenge = NULL;
	*challenge = NULL;
	rc = x509_csr_challenge(op->csr, csr_challenge);
	if (rc != MDM_OK && rc != MDM_ERR_NOT_FOUND)
		return scep_refused_by_callee(op, SCEP_BAD_REQUEST, "the CSR's challengePassword");
	if (*csr_challenge && op->msg->challenge &&
	        !scep_ct_equal(*csr_challenge, op->msg->challenge))
		return scep_refuse(op, SCEP_BAD_REQUEST,
		        "two different challengePasswords (CSR and signed attribute)");
	*challenge = *csr_challenge ? *csr_challenge : op->msg->challenge;
	if (*challenge == NULL)
		return scep_refuse(op, SCEP_BAD_REQUEST,
		        "RFC 8894 section 2.2: a challengePassword is required");
	return MDM_OK;
}

/* PKCSReq (19) and RenewalReq (17): RFC 8894 sections 3.3.1 and 4.3. */
static MDM_WUR mdm_err scep_enrol(struct scep_op *op)
{
	struct scep_server *s = op->s;
	struct scep_issue_tx t = {op, NULL, 0};
	char *csr_challenge = NULL;
	const char *challenge = NULL;
	int found, ours = 0;
	size_t which;
	const char *why = "self-issued";
	char rule[160];
	mdm_err rc;

	/* Who asks first (signature, authorisation), then what is asked for (policy). */
	if (x509_csr_from_der(op->content, op->content_len, &op->csr) != MDM_OK)
		return scep_refused_by_callee(op, SCEP_BAD_REQUEST,
		        "the content (RFC 8894 section 3.3.1: a PKCS#10 CSR)");
	if (x509_csr_verify(op->csr) != MDM_OK)
		return scep_refused_by_callee(
		        op, SCEP_BAD_MESSAGE_CHECK, "the CSR's signature (proof of possession)");
	if ((rc = x509_cert_key_sha256(op->msg->signer, op->key_sha256)) != MDM_OK)
		return rc;
	if ((rc = scep_existing(op, &found)) != MDM_OK || found)
		return rc;

	/*
	 * Is the signer a certificate we issued (current or a previous CA)?
	 * A self-issued signer is the throw-away kind: not worth asking.  A
	 * question, not a refusal: nothing is logged unless a RenewalReq is
	 * refused for the answer.
	 */
	if (!x509_cert_self_issued(op->msg->signer) &&
	        x509_verify_issued_why(op->msg->signer, s->ca->verify, s->ca->n_verify, op->now, 1,
	                &which, &why) == MDM_OK) {
		if ((rc = scep_auth_by_certificate(op, &ours)) != MDM_OK || !ours)
			return rc;
	} else if (op->msg->message_type == SCEP_RENEWALREQ) {
		snprintf(rule, sizeof(rule),
		        "RFC 8894 section 3.3.1.2: a RenewalReq is signed by a valid certificate "
		        "this CA issued (its signer's: %s)",
		        why != NULL ? why : "not verified");
		return scep_refuse(op, SCEP_BAD_MESSAGE_CHECK, rule);
	}
	if (!ours) {
		if (!scep_throwaway_signer_ok(op))
			return MDM_OK;
		if ((rc = scep_challenge_of(op, &csr_challenge, &challenge)) != MDM_OK ||
		        challenge == NULL)
			goto out;
		if (s->policy.static_challenge != NULL &&
		        scep_ct_equal(challenge, s->policy.static_challenge))
			challenge = NULL; /* the static one: nothing to spend */
		t.challenge = challenge;
	}
	if (x509_csr_rsa_bits(op->csr) < s->policy.min_rsa_bits) {
		rc = scep_refuse(op, SCEP_BAD_REQUEST,
		        "the CSR's key is not an RSA key of the minimum size (cert_min_rsa_bits)");
		goto out;
	}
	rc = db_tx(s->db, scep_issue_tx_fn, &t);
	if (rc == MDM_ERR_FORBIDDEN && op->fail != SCEP_FAIL_NONE)
		rc = MDM_OK; /* refused, rolled back; the CertRep says why */
	else if (rc != MDM_OK && t.unique_violation) {
		/* Lost a race with a retry of the same transaction: answer as it did. */
		op->fail = SCEP_FAIL_NONE;
		if ((rc = scep_existing(op, &found)) == MDM_OK && !found)
			rc = MDM_ERR_DB;
	}
out:
	free(csr_challenge);
	return rc;
}

struct scep_poll_tx {
	struct scep_op *op;
};

/*
 * An approved renewal is issued only if what it was asked on still holds
 * when the CertPoll comes (the approval was for those grounds): the
 * certificate it renews unrevoked, still valid to our CA chain, bound to
 * the same UDID, and that UDID not bound to another certificate since.
 * When not, *why and *fail say which rule (NULL: it holds), *detail (or
 * NULL) what x509 found, for the log only.
 */
static MDM_WUR mdm_err scep_renewal_grounds(db *d, struct scep_op *op, const char *tx_udid,
        enum scep_fail_info *fail, const char **why, const char **detail)
{
	const char *params[1] = {op->renewal_of};
	struct x509_st *old = NULL;
	db_res *r = NULL;
	size_t which;
	mdm_err rc;

	*why = NULL;
	*detail = NULL;
	*fail = SCEP_FAIL_NONE;
	rc = db_exec(d,
	        "SELECT c.der, c.revoked_at IS NOT NULL, coalesce(c.udid, ''), "
	        "coalesce((SELECT identity_certificate_id::text FROM mdm.device v "
	        "WHERE v.udid = c.udid), '') FROM mdm.certificate c "
	        "WHERE c.id = $1::bigint AND c.kind = 'device' FOR SHARE",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		*fail = SCEP_BAD_MESSAGE_CHECK;
		*why = "RFC 8894 section 3.3.1.2: the certificate this request renews is gone";
		goto out;
	}
	if (strcmp(db_res_get0(r, 0, 1), "t") == 0) {
		*fail = SCEP_BAD_MESSAGE_CHECK;
		*why = "RFC 8894 section 3.3.1.2: the certificate this request renews was revoked "
		       "after the request; its approval is void";
		goto out;
	}
	if ((rc = ca_cert_from_res(r, 0, 0, &old)) != MDM_OK)
		goto out;
	if (x509_verify_issued_why(old, op->s->ca->verify, op->s->ca->n_verify, op->now, 1, &which,
	            detail) != MDM_OK) {
		*fail = SCEP_BAD_MESSAGE_CHECK;
		*why = "RFC 8894 section 3.3.1.2: the certificate this request renews has expired "
		       "or no longer verifies to this CA; its approval is void";
		goto out;
	}
	if (tx_udid[0] != '\0' && strcmp(db_res_get0(r, 0, 2), tx_udid) != 0) {
		*fail = SCEP_BAD_REQUEST;
		*why = "the certificate this request renews is bound to another UDID than when "
		       "the request came; its approval is void";
		goto out;
	}
	if (*db_res_get0(r, 0, 3) != '\0' && strcmp(db_res_get0(r, 0, 3), op->renewal_of) != 0) {
		*fail = SCEP_BAD_REQUEST;
		*why = "the UDID of the certificate this request renews is now bound to another "
		       "certificate; its approval is void";
		goto out;
	}
out:
	x509_cert_free(old);
	db_res_free(r);
	return rc;
}

/*
 * Records why an approved transaction was refused at issue time, and
 * answers so; the log also gives detail (NULL: none).
 */
static MDM_WUR mdm_err scep_refuse_approved(
        db *d, struct scep_op *op, enum scep_fail_info fail, const char *why, const char *detail)
{
	char f[8], rule[320];
	const char *params[3] = {op->msg->transaction_id, why, f};
	mdm_err rc;

	snprintf(f, sizeof(f), "%d", (int)fail);
	rc = db_exec(d,
	        "UPDATE mdm.scep_transaction SET status = 'refused', refusal = $2, "
	        "refusal_fail_info = $3::smallint WHERE transaction_id = $1",
	        3, params, NULL);
	if (rc != MDM_OK)
		return rc;
	snprintf(rule, sizeof(rule), "%s%s%s%s", why, detail != NULL ? " (x509: " : "",
	        detail != NULL ? detail : "", detail != NULL ? ")" : "");
	return scep_refuse(op, fail, rule);
}

static MDM_WUR mdm_err scep_poll_tx_fn(db *d, void *arg)
{
	struct scep_op *op = ((struct scep_poll_tx *)arg)->op;
	const char *params[1] = {op->msg->transaction_id};
	db_res *r = NULL;
	mdm_err rc;

	op->status = SCEP_FAILURE;
	op->fail = SCEP_FAIL_NONE;
	rc = db_exec(d,
	        "SELECT signer_key_sha256, status, decided_at IS NOT NULL, csr, "
	        "coalesce(renewal_of::text, ''), coalesce(udid, ''), coalesce(refusal, ''), "
	        "coalesce(refusal_fail_info, 0) "
	        "FROM mdm.scep_transaction WHERE transaction_id = $1 FOR UPDATE",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1 || strcmp(db_res_get0(r, 0, 0), op->key_sha256) != 0) {
		rc = scep_refuse(op, SCEP_BAD_CERT_ID,
		        "RFC 8894 section 3.3.3: no such transaction for this key");
		goto out;
	}
	if (strcmp(db_res_get0(r, 0, 1), "issued") == 0) {
		db_res_free(r);
		r = NULL;
		{
			int found;
			rc = scep_existing(op, &found);
		}
		goto out;
	}
	if (strcmp(db_res_get0(r, 0, 1), "rejected") == 0) {
		rc = scep_refuse(op, SCEP_BAD_REQUEST, "the request was rejected by an operator");
		goto out;
	}
	if (strcmp(db_res_get0(r, 0, 1), "refused") == 0) {
		rc = scep_refuse(
		        op, (enum scep_fail_info)atoi(db_res_get0(r, 0, 7)), db_res_get0(r, 0, 6));
		goto out;
	}
	if (strcmp(db_res_get0(r, 0, 2), "t") != 0) {
		op->status = SCEP_PENDING;
		goto out;
	}
	/* Approved: issue from the CSR stored with the transaction. */
	{
		uint8_t *der = NULL;
		size_t n = 0;
		if ((rc = db_res_get_bytea(r, 0, 3, &der, &n)) != MDM_OK)
			goto out;
		x509_csr_free(op->csr);
		op->csr = NULL;
		rc = x509_csr_from_der(der, n, &op->csr);
		free(der);
		if (rc != MDM_OK)
			goto out;
	}
	snprintf(op->renewal_of, sizeof(op->renewal_of), "%s", db_res_get0(r, 0, 4));
	snprintf(op->udid, sizeof(op->udid), "%s", db_res_get0(r, 0, 5));
	if (op->renewal_of[0] != '\0') {
		enum scep_fail_info fail;
		const char *why, *detail;
		if ((rc = scep_renewal_grounds(d, op, op->udid, &fail, &why, &detail)) != MDM_OK)
			goto out;
		if (why != NULL) {
			rc = scep_refuse_approved(d, op, fail, why, detail);
			goto out;
		}
	}
	rc = scep_issue_cert(d, op);
out:
	db_res_free(r);
	return rc;
}

/* CertPoll (20): RFC 8894 section 3.3.3. */
static MDM_WUR mdm_err scep_poll(struct scep_op *op)
{
	struct scep_poll_tx t = {op};
	char *issuer = NULL, *subject = NULL;
	mdm_err rc;

	if (scep_msg_issuer_and_subject(op->content, op->content_len, &issuer, &subject) != MDM_OK)
		return scep_refused_by_callee(op, SCEP_BAD_REQUEST,
		        "the CertPoll content (RFC 8894 section 3.3.3: IssuerAndSubject)");
	free(issuer);
	free(subject);
	if ((rc = x509_cert_key_sha256(op->msg->signer, op->key_sha256)) != MDM_OK)
		return rc;
	return db_tx(op->s->db, scep_poll_tx_fn, &t);
}

/* GetCert (21), section 3.3.4: any certificate this CA issued, by serial. */
static MDM_WUR mdm_err scep_get_cert(struct scep_op *op)
{
	char *issuer = NULL, *serial = NULL;
	const char *params[2];
	db_res *r = NULL;
	mdm_err rc;

	if (scep_msg_issuer_and_serial(op->content, op->content_len, &issuer, &serial) != MDM_OK)
		return scep_refused_by_callee(op, SCEP_BAD_REQUEST,
		        "the content (RFC 8894 section 3.3.4: IssuerAndSerialNumber)");
	params[0] = serial;
	params[1] = issuer;
	rc = db_exec(op->s->db,
	        "SELECT der FROM mdm.certificate WHERE serial = $1 AND issuer = $2 "
	        "AND kind = 'device'",
	        2, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		rc = scep_refuse(
		        op, SCEP_BAD_CERT_ID, "RFC 8894 section 3.3.4: no such certificate");
		goto out;
	}
	if ((rc = ca_cert_from_res(r, 0, 0, &op->cert)) == MDM_OK)
		op->status = SCEP_SUCCESS;
out:
	db_res_free(r);
	free(issuer);
	free(serial);
	return rc;
}

static int scep_reason_code(const char *name)
{
	static const char *const reasons[] = {"unspecified", "keyCompromise", "cACompromise",
	        "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold", "",
	        "removeFromCRL", "privilegeWithdrawn", "aACompromise"};

	for (size_t i = 0; name && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i][0] && strcmp(reasons[i], name) == 0)
			return (int)i;
	return -1;
}

/*
 * Whether the certificate a GetCRL names was signed by the active CA key.
 * Unknown to us: badCertId.  From a previous key: badCertId, logged.
 */
static MDM_WUR mdm_err scep_crl_issued_by_active(
        struct scep_op *op, const char *issuer, const char *serial)
{
	struct x509_st *cert = NULL, *active[1] = {op->s->ca->active};
	const char *params[2] = {serial, issuer};
	db_res *r = NULL;
	mdm_err rc;

	rc = db_exec(op->s->db,
	        "SELECT der FROM mdm.certificate WHERE serial = $1 AND issuer = $2 "
	        "AND kind = 'device'",
	        2, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		rc = scep_refuse(op, SCEP_BAD_CERT_ID,
		        "RFC 8894 section 3.3.4: GetCRL names no certificate of this CA");
		goto out;
	}
	if ((rc = ca_cert_from_res(r, 0, 0, &cert)) != MDM_OK)
		goto out;
	/* Signature only: an expired or revoked certificate may still want its CRL. */
	if (!x509_cert_signed_by(cert, active[0]))
		rc = scep_refuse(op, SCEP_BAD_CERT_ID,
		        "GetCRL for a certificate of a previous CA key: this server signs CRLs "
		        "with the active key only");
out:
	x509_cert_free(cert);
	db_res_free(r);
	return rc;
}

/* GetCRL (22), section 3.3.4: the active CA's CRL. */
static MDM_WUR mdm_err scep_get_crl(struct scep_op *op)
{
	struct ca_state *ca = op->s->ca;
	struct x509_info info;
	struct x509_revoked *rev = NULL;
	char *issuer = NULL, *serial = NULL, now[32];
	const char *params[2];
	db_res *r = NULL;
	int n;
	mdm_err rc;

	if (scep_msg_issuer_and_serial(op->content, op->content_len, &issuer, &serial) != MDM_OK)
		return scep_refused_by_callee(op, SCEP_BAD_REQUEST,
		        "the content (RFC 8894 section 3.3.4: IssuerAndSerialNumber)");
	if ((rc = x509_cert_info(ca->active, &info)) != MDM_OK)
		goto out;
	if (strcmp(issuer, info.subject) != 0) {
		rc = scep_refuse(op, SCEP_BAD_CERT_ID, "GetCRL names an issuer other than this CA");
		goto out;
	}
	/*
	 * After a re-key the old and the new CA share a name but not a key.
	 * A CRL is signed with the active key, so it only speaks for the
	 * certificates that key issued: asked about one from the previous
	 * key, say so rather than hand out a CRL its relying parties cannot
	 * verify.
	 */
	if ((rc = scep_crl_issued_by_active(op, issuer, serial)) != MDM_OK ||
	        op->fail != SCEP_FAIL_NONE)
		goto out;
	snprintf(now, sizeof(now), "%lld", (long long)op->now);
	params[0] = info.subject;
	params[1] = now;
	rc = db_exec(op->s->db,
	        "SELECT serial, CASE WHEN isfinite(revoked_at) "
	        "THEN extract(epoch FROM revoked_at)::bigint END, revocation_reason "
	        "FROM mdm.certificate WHERE issuer = $1 AND revoked_at IS NOT NULL "
	        "AND not_after > to_timestamp($2::bigint) ORDER BY revoked_at",
	        2, params, &r);
	if (rc != MDM_OK)
		goto out;
	n = db_res_rows(r);
	if ((rev = calloc((size_t)n + 1, sizeof(*rev))) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	/*
	 * One row never breaks the CRL (sql/README.md): a reason a full CRL
	 * cannot carry (removeFromCRL from before 013, RFC 5280 section
	 * 5.3.1; a name no RFC has) is left out and the certificate still
	 * listed; a row whose serial or date cannot be encoded at all is
	 * logged and left out: so is a revoked_at of +-infinity (a timestamptz
	 * may hold it; no CRL time can), which the query gives as NULL.
	 */
	size_t m = 0;
	for (int i = 0; i < n; i++) {
		const char *why = NULL;
		rev[m].serial_hex = db_res_get0(r, i, 0);
		if (db_res_is_null(r, i, 1)) {
			log_error("scep: CRL: serial %s left out: revoked_at is infinite, which no "
			          "CRL time can say (RFC 5280 section 5.1.2.6)",
			        rev[m].serial_hex);
			continue;
		}
		rev[m].revoked_at = (time_t)atoll(db_res_get0(r, i, 1));
		rev[m].reason = scep_reason_code(db_res_get0(r, i, 2));
		if (rev[m].reason == 8 || rev[m].reason < 0) {
			log_warn("scep: CRL: serial %s: reason \"%s\" cannot be on a full CRL "
			         "(RFC 5280 section 5.3.1): listed without a reasonCode",
			        rev[m].serial_hex, db_res_get0(r, i, 2));
			rev[m].reason = -1;
		}
		if (!x509_crl_entry_ok(&rev[m], &why)) {
			log_error("scep: CRL: serial %s left out: %s", rev[m].serial_hex, why);
			continue;
		}
		m++;
	}
	rc = x509_crl_build(ca->active, ca->active_key, rev, m, op->now, op->s->policy.crl_days,
	        &op->crl, &op->crl_len);
	if (rc == MDM_OK)
		op->status = SCEP_SUCCESS;
out:
	free(rev);
	db_res_free(r);
	free(issuer);
	free(serial);
	return rc;
}

static void scep_op_clear(struct scep_op *op)
{
	scep_msg_free(op->msg);
	free(op->content);
	x509_csr_free(op->csr);
	x509_cert_free(op->cert);
	free(op->crl);
}

/*
 * RFC 8894 section 3.3.2.2: a request refused for its algorithm (badAlg)
 * or its signature (badMessageCheck) is still answered with a signed
 * CertRep FAILURE, addressed with the fields scep_msg_parse_unverified
 * reads.  Those are unauthenticated: they only address the answer;
 * nothing is issued, stored or spent.  MDM_ERR_PARSE (HTTP 400) when the
 * message cannot be read even that far, or is not a request.  The
 * refusal was logged by scep_msg_parse; what is logged here is the
 * answer, naming the transaction.
 */
static MDM_WUR mdm_err scep_answer_unverified(struct scep_server *s, const uint8_t *msg, size_t len,
        enum scep_fail_info fail, uint8_t **out, size_t *outlen)
{
	struct scep_op op;
	enum scep_fail_info f2 = SCEP_FAIL_NONE;
	mdm_err rc;

	memset(&op, 0, sizeof(op));
	op.s = s;
	/* A refusal here is another rule, logged by cms as the first was. */
	if ((rc = scep_msg_parse_unverified(msg, len, &op.msg, &f2, NULL, 0)) != MDM_OK)
		return rc == MDM_ERR_NOMEM ? rc : MDM_ERR_PARSE;
	if (op.msg->message_type == SCEP_CERTREP || op.msg->signer == NULL ||
	        op.msg->transaction_id[0] == '\0') {
		log_info("scep: PKIOperation answered 400: no CertRep FAILURE can be addressed to "
		         "it (a CertRep, or no signer or transactionID)");
		rc = MDM_ERR_PARSE;
		goto out;
	}
	op.status = SCEP_FAILURE;
	op.fail = fail;
	log_info("scep: %s (unverified) answered FAILURE, failInfo %s", op.msg->transaction_id,
	        scep_fail_str(fail));
	rc = scep_reply(&op, out, outlen);
out:
	scep_op_clear(&op);
	return rc;
}

mdm_err scep_pki_operation(struct scep_server *s, const uint8_t *msg, size_t len, time_t now,
        uint8_t **out, size_t *outlen)
{
	struct scep_op op;
	enum scep_fail_info fail = SCEP_FAIL_NONE;
	char err[256] = "", rule[400];
	struct ca_state *ca;
	int to_responder = 0;
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	memset(&op, 0, sizeof(op));
	op.s = s;
	op.now = now;
	op.status = SCEP_FAILURE;
	op.fail = SCEP_FAIL_NONE;
	op.cipher = CMS_CIPHER_AES256;
	s->last_outcome = "unanswered";
	s->last_fail_info = "";
	if ((rc = scep_ca(s)) != MDM_OK)
		return rc;
	ca = s->ca;

	/* A refusal is logged there, naming the rule; err says whether there was one. */
	rc = scep_msg_parse(msg, len, &op.msg, &fail, err, sizeof(err));
	if (rc != MDM_OK) {
		if (rc == MDM_ERR_PARSE && (fail == SCEP_BAD_ALG || fail == SCEP_BAD_MESSAGE_CHECK))
			return scep_answer_unverified(s, msg, len, fail, out, outlen);
		/* Nothing to address an answer with: HTTP 400. */
		if (err[0] == '\0')
			log_warn("scep: PKIOperation not read: %s", err_str(rc));
		return rc == MDM_ERR_NOMEM ? rc : MDM_ERR_PARSE;
	}
	if (op.msg->message_type == SCEP_CERTREP) {
		log_warn("scep: a CertRep is an answer, not a request (RFC 8894 section 3.3)");
		rc = MDM_ERR_PARSE;
		goto out;
	}
	if (op.msg->digest == CMS_DIGEST_SHA1 && !s->policy.allow_sha1) {
		rc = scep_refuse(&op, SCEP_BAD_ALG, "SHA-1 is not enabled (scep_allow_sha1)");
		goto reply;
	}
	if (op.msg->envelope == NULL) {
		rc = scep_refuse(
		        &op, SCEP_BAD_REQUEST, "RFC 8894 section 3.2.2: no pkcsPKIEnvelope");
		goto reply;
	}
	/* Logs nothing: the rule comes back in err, logged once below with the transaction. */
	rc = scep_msg_decrypt_ex(op.msg, ca->ra ? ca->ra_key : ca->active_key,
	        ca->ra ? ca->ra : ca->active, s->policy.allow_des, &op.content, &op.content_len,
	        &op.cipher, &fail, &to_responder, err, sizeof(err));
	op.to_ca = rc == MDM_OK && ca->ra == NULL && !to_responder;
	if (rc != MDM_OK) {
		op.cipher = CMS_CIPHER_AES256;
		snprintf(rule, sizeof(rule),
		        "RFC 8894 section 3.2.2: the pkcsPKIEnvelope cannot be decrypted by this "
		        "CA: %s",
		        err[0] != '\0' ? err : err_str(rc));
		rc = scep_refuse(&op, fail != SCEP_FAIL_NONE ? fail : SCEP_BAD_MESSAGE_CHECK, rule);
		goto reply;
	}
	if (op.cipher == CMS_CIPHER_DES3 && !s->policy.allow_des3) {
		op.cipher = CMS_CIPHER_AES256;
		rc = scep_refuse(&op, SCEP_BAD_ALG, "3DES is not enabled (scep_allow_des3)");
		goto reply;
	}
	switch (op.msg->message_type) {
	case SCEP_PKCSREQ:
	case SCEP_RENEWALREQ:
		rc = scep_enrol(&op);
		break;
	case SCEP_CERTPOLL:
		rc = scep_poll(&op);
		break;
	case SCEP_GETCERT:
		rc = scep_get_cert(&op);
		break;
	case SCEP_GETCRL:
		rc = scep_get_crl(&op);
		break;
	default:
		rc = scep_refuse(
		        &op, SCEP_BAD_REQUEST, "RFC 8894 section 3.2.1.2: unknown messageType");
		break;
	}
	if (rc != MDM_OK)
		goto out;
reply:
	if (rc == MDM_OK)
		rc = scep_reply(&op, out, outlen);
out:
	scep_op_clear(&op);
	return rc;
}

void scep_pki_outcome(const struct scep_server *s, const char **outcome, const char **fail_info)
{
	*outcome = s->last_outcome != NULL ? s->last_outcome : "unanswered";
	*fail_info = s->last_fail_info != NULL ? s->last_fail_info : "";
}
