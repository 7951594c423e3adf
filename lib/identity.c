/*
 * Device identity for check-in and command requests: see identity.h.
 * The rules are Apple's (the identity certificate of the enrollment
 * profile authenticates the device) plus ours (the certificate is one
 * this CA issued and recorded, unrevoked, bound to one UDID).
 */
#include "identity.h"

#include "base64.h"
#include "cms.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *identity_auth_str(int sources)
{
	if (sources == (IDENTITY_TLS | IDENTITY_SIGNATURE))
		return "both";
	return sources == IDENTITY_SIGNATURE ? "signature" : "tls";
}

int identity_id_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++) {
		char c = s[n];
		if (n >= IDENTITY_MAX_ID)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		            c == '.' || c == '_' || c == ':' || c == '-'))
			return 0;
	}
	return n > 0;
}

void identity_clear(struct identity *id)
{
	if (id == NULL)
		return;
	x509_cert_free(id->cert);
	memset(id, 0, sizeof(*id));
}

/* The certificate of the Mdm-Signature header, its signature over body verified. */
static MDM_WUR mdm_err identity_from_signature(
        const char *b64, const uint8_t *body, size_t len, struct x509_st **out)
{
	uint8_t *der = NULL;
	size_t derlen = 0;
	mdm_err rc;

	*out = NULL;
	rc = base64_decode(b64, strlen(b64), CMS_MAX_SIGNATURE, &der, &derlen);
	if (rc != MDM_OK) {
		log_warn("identity refused: Mdm-Signature is not base64 of at most %d bytes "
		         "(Apple MDM protocol, SignMessage)",
		        CMS_MAX_SIGNATURE);
		return MDM_ERR_FORBIDDEN;
	}
	/* A refusal is logged there, once, naming the rule. */
	rc = cms_verify_detached(der, derlen, body, len, out, NULL, 0);
	free(der);
	if (rc == MDM_ERR_NOMEM)
		return rc;
	return rc != MDM_OK ? MDM_ERR_FORBIDDEN : MDM_OK;
}

mdm_err identity_record(struct identity *id, const db_res *r, int row, int col)
{
	const char *kind;

	if (db_res_rows(r) <= row || db_res_is_null(r, row, col)) {
		log_warn("identity refused: certificate sha256:%s chains to our CA but was not "
		         "issued by this server (not in mdm.certificate)",
		        id->sha256);
		return MDM_ERR_FORBIDDEN;
	}
	kind = db_res_get0(r, row, col + 1);
	if (strcmp(kind, "device") != 0) {
		log_warn("identity refused: certificate sha256:%s is a %s certificate, not a "
		         "device identity",
		        id->sha256, kind);
		return MDM_ERR_FORBIDDEN;
	}
	if (strcmp(db_res_get0(r, row, col + 2), "t") == 0) {
		log_warn("identity refused: certificate serial %s is revoked (RFC 5280 3.3)",
		        db_res_get0(r, row, col + 5));
		return MDM_ERR_FORBIDDEN;
	}
	id->cert_id = atoll(db_res_get0(r, row, col));
	snprintf(id->udid, sizeof(id->udid), "%s", db_res_get0(r, row, col + 3));
	id->renewal_of = atoll(db_res_get0(r, row, col + 4));
	snprintf(id->serial, sizeof(id->serial), "%s", db_res_get0(r, row, col + 5));
	return MDM_OK;
}

/* The certificate's record: issued by us as a device identity, not revoked. */
static MDM_WUR mdm_err identity_lookup(db *d, struct identity *id)
{
	const char *params[1] = {id->sha256};
	db_res *r = NULL;
	mdm_err rc;

	rc = db_exec(d,
	        "SELECT id, kind, revoked_at IS NOT NULL, coalesce(udid, ''), "
	        "coalesce(renewal_of, 0), serial FROM mdm.certificate WHERE sha256 = $1",
	        1, params, &r);
	if (rc == MDM_OK)
		rc = identity_record(id, r, 0, 0);
	db_res_free(r);
	return rc;
}

mdm_err identity_require_tls(int require_tls, const char *client_cert)
{
	if (!require_tls || (client_cert != NULL && client_cert[0] != '\0'))
		return MDM_OK;
	log_warn("identity refused: checkin_require_tls = yes and the request has no TLS "
	         "client certificate (an Mdm-Signature alone can be replayed: Apple's MDM "
	         "protocol has no nonce)");
	return MDM_ERR_FORBIDDEN;
}

int identity_require_tls_for(int configured, const char *location)
{
	return configured || (location != NULL && strcmp(location, "yes") == 0);
}

mdm_err identity_authenticate(db *d, const struct ca_state *ca, const char *client_cert,
        const char *mdm_signature, const uint8_t *body, size_t len, time_t now,
        struct identity *out)
{
	mdm_err rc = identity_verify(ca, client_cert, mdm_signature, body, len, now, out);

	if (rc == MDM_OK && (rc = identity_lookup(d, out)) != MDM_OK)
		identity_clear(out);
	return rc;
}

mdm_err identity_verify(const struct ca_state *ca, const char *client_cert,
        const char *mdm_signature, const uint8_t *body, size_t len, time_t now,
        struct identity *out)
{
	struct x509_st *tls = NULL, *sig = NULL;
	char tls_fp[X509_FP_HEX_LEN + 1], sig_fp[X509_FP_HEX_LEN + 1];
	struct x509_info info;
	mdm_err rc;

	memset(out, 0, sizeof(*out));
	if (client_cert != NULL && client_cert[0] != '\0') {
		if (x509_cert_from_pem_cached(client_cert, strlen(client_cert), &tls) != MDM_OK) {
			log_warn("identity refused: SSL_CLIENT_CERT is not one PEM certificate");
			rc = MDM_ERR_FORBIDDEN;
			goto out;
		}
		out->sources |= IDENTITY_TLS;
	}
	if (mdm_signature != NULL && mdm_signature[0] != '\0') {
		if ((rc = identity_from_signature(mdm_signature, body, len, &sig)) != MDM_OK)
			goto out;
		out->sources |= IDENTITY_SIGNATURE;
	}
	if (out->sources == 0) {
		log_warn("identity refused: neither a TLS client certificate nor an Mdm-Signature "
		         "(Apple MDM protocol: the identity certificate must authenticate every "
		         "request)");
		rc = MDM_ERR_FORBIDDEN;
		goto out;
	}
	if (tls != NULL && sig != NULL) {
		if (x509_cert_info(tls, &info) != MDM_OK) {
			rc = MDM_ERR_FORBIDDEN;
			goto out;
		}
		memcpy(tls_fp, info.sha256, sizeof(tls_fp));
		if (x509_cert_info(sig, &info) != MDM_OK) {
			rc = MDM_ERR_FORBIDDEN;
			goto out;
		}
		memcpy(sig_fp, info.sha256, sizeof(sig_fp));
		if (strcmp(tls_fp, sig_fp) != 0) {
			log_warn("identity refused: the TLS client certificate (sha256:%s) and the "
			         "Mdm-Signature signer (sha256:%s) differ; both must be the device "
			         "identity",
			        tls_fp, sig_fp);
			rc = MDM_ERR_FORBIDDEN;
			goto out;
		}
	}
	out->cert = tls != NULL ? tls : sig;
	if (out->cert == tls)
		tls = NULL;
	else
		sig = NULL;
	if (x509_cert_info(out->cert, &info) != MDM_OK) {
		log_warn("identity refused: the certificate cannot be read (RFC 5280 4.1)");
		rc = MDM_ERR_FORBIDDEN;
		goto out;
	}
	memcpy(out->sha256, info.sha256, sizeof(out->sha256));
	/* x509 logs which rule (chain, validity, clientAuth), naming the serial and issuer. */
	if (x509_verify_issued(out->cert, ca->verify, ca->n_verify, now, 1, NULL) != MDM_OK) {
		rc = MDM_ERR_FORBIDDEN;
		goto out;
	}
	rc = MDM_OK;
out:
	x509_cert_free(tls);
	x509_cert_free(sig);
	if (rc != MDM_OK)
		identity_clear(out);
	return rc;
}

/* The refusal of a certificate another UDID holds (identity_claim, a renewal). */
static MDM_WUR mdm_err identity_claimed_elsewhere(const struct identity *id, const char *udid)
{
	log_warn("identity refused: certificate serial %s is bound to another UDID and "
	         "cannot speak for %s (one identity certificate, one device)",
	        id->serial, udid);
	return MDM_ERR_FORBIDDEN;
}

mdm_err identity_claim(db *d, const struct identity *id, const char *udid)
{
	char cid[32];
	const char *p[2] = {cid, udid};
	db_res *r = NULL;
	mdm_err rc;

	snprintf(cid, sizeof(cid), "%lld", id->cert_id);
	/* One statement: the row lock makes a concurrent claim wait (sql/020). */
	rc = db_exec(d, "SELECT mdm.identity_claim($1::bigint, $2)", 2, p, &r);
	if (rc == MDM_OK && strcmp(db_res_get0(r, 0, 0), "t") != 0)
		rc = identity_claimed_elsewhere(id, udid);
	db_res_free(r);
	return rc;
}

mdm_err identity_bound_outcome(const struct identity *id, const char *udid, const char *outcome)
{
	if (strcmp(outcome, "bound") == 0)
		return MDM_OK;
	if (strcmp(outcome, "renewal") == 0) {
		log_info("identity: UDID %s bound to certificate serial %s (renewal of the bound "
		         "certificate, first used without Authenticate)",
		        udid, id->serial);
		return MDM_OK;
	}
	if (strcmp(outcome, "elsewhere") == 0)
		return identity_claimed_elsewhere(id, udid);
	log_warn("identity refused: certificate serial %s is not the identity bound to "
	         "UDID %s by its Authenticate, nor renewed from it (unknown UDID or another "
	         "certificate)",
	        id->serial, udid);
	return MDM_ERR_FORBIDDEN;
}

mdm_err identity_check_bound(db *d, const struct identity *id, const char *udid)
{
	char cid[32], renewal_of[32];
	const char *p[4] = {udid, cid, renewal_of, id->udid};
	db_res *r = NULL;
	const char *outcome;
	mdm_err rc;

	snprintf(cid, sizeof(cid), "%lld", id->cert_id);
	snprintf(renewal_of, sizeof(renewal_of), "%lld", id->renewal_of);
	rc = db_exec(
	        d, "SELECT mdm.identity_check_bound($1, $2::bigint, $3::bigint, $4)", 4, p, &r);
	if (rc != MDM_OK)
		goto out;
	outcome = db_res_get0(r, 0, 0);
	if (strcmp(outcome, "renewal") == 0) {
		outcome = "renewal"; /* r is freed below */
		db_res_free(r);
		r = NULL;
		/* The bound certificate is the one this one renewed. */
		p[2] = renewal_of;
		rc = db_exec(d, "SELECT mdm.identity_rebind_renewal($1, $2::bigint, $3::bigint)", 3,
		        p, &r);
		if (rc != MDM_OK)
			goto out;
		if (strcmp(db_res_get0(r, 0, 0), "t") != 0)
			outcome = "elsewhere";
	}
	rc = identity_bound_outcome(id, udid, outcome);
out:
	db_res_free(r);
	return rc;
}
