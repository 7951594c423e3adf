/* Enrollment: authorisation, per-process state, the signed enrollment profile. */
#include "enroll.h"
#include "ca.h"
#include "cms.h"
#include "fcgi.h"
#include "log.h"
#include "plist.h"
#include "profile.h"
#include "x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void enroll_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

void enroll_state_free(struct enroll_state *st)
{
	if (st == NULL)
		return;
	x509_cert_free(st->signer);
	x509_key_free(st->key);
	x509_certs_free(st->chain, st->nchain);
	free(st);
}

static mdm_err enroll_auth_parse(const config *cfg, enum enroll_auth *out)
{
	const char *v = config_get0(cfg, "enroll_auth"), *tok = config_get0(cfg, "enroll_token");

	*out = ENROLL_AUTH_OPEN;
	if (v == NULL || strcmp(v, "open") == 0)
		return MDM_OK;
	if (strcmp(v, "apache") == 0) {
		*out = ENROLL_AUTH_APACHE;
		return MDM_OK;
	}
	if (strcmp(v, "token") != 0) {
		log_error("config: enroll_auth must be open, token or apache");
		return MDM_ERR_CONFIG;
	}
	if (tok == NULL || strlen(tok) < ENROLL_MIN_TOKEN) {
		log_error("config: enroll_auth = token needs enroll_token of at least %d "
		          "characters",
		        ENROLL_MIN_TOKEN);
		return MDM_ERR_CONFIG;
	}
	*out = ENROLL_AUTH_TOKEN;
	return MDM_OK;
}

/* The active CA's CN (its subject when it has none): the SCEP payload's Name. */
static mdm_err enroll_ca_name(db *d, char *out, size_t cap)
{
	struct x509_st *ca = NULL;
	struct x509_info info;
	db_res *r = NULL;
	mdm_err rc;

	out[0] = '\0';
	rc = db_exec(d,
	        "SELECT c.der FROM mdm.ca a JOIN mdm.certificate c ON c.id = a.certificate_id "
	        "WHERE a.state = 'active'",
	        0, NULL, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		log_error("enroll: no active CA: run `mdmctl ca init`");
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	if ((rc = ca_cert_from_res(r, 0, 0, &ca)) != MDM_OK)
		goto out;
	rc = x509_cert_subject_attr(ca, "CN", out, cap);
	if (rc == MDM_ERR_NOT_FOUND && (rc = x509_cert_info(ca, &info)) == MDM_OK)
		snprintf(out, cap, "%s", info.subject);
out:
	x509_cert_free(ca);
	db_res_free(r);
	return rc;
}

static mdm_err enroll_signer_load(const config *cfg, struct enroll_state *st)
{
	const char *cert = config_get0(cfg, "profile_signer_cert"),
	           *key = config_get0(cfg, "profile_signer_key"),
	           *chain = config_get0(cfg, "profile_signer_chain");
	mdm_err rc;

	if (cert == NULL || key == NULL) {
		log_error("enroll: profile_signer_cert and profile_signer_key must be set to sign "
		          "profiles (`mdmctl ca server-cert` issues one; docs/CONFIG.md)");
		return MDM_ERR_CONFIG;
	}
	if ((rc = x509_cert_load_file(cert, &st->signer)) != MDM_OK ||
	        (rc = x509_key_load(key, &st->key)) != MDM_OK) {
		log_error("enroll: profile_signer_cert or profile_signer_key cannot be loaded");
		return MDM_ERR_CONFIG;
	}
	if (!x509_key_matches_cert(st->key, st->signer)) {
		log_error("enroll: profile_signer_key does not belong to profile_signer_cert");
		return MDM_ERR_CONFIG;
	}
	if (chain != NULL &&
	        (rc = x509_certs_load_file(chain, &st->chain, &st->nchain)) != MDM_OK) {
		log_error("enroll: profile_signer_chain cannot be loaded");
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

mdm_err enroll_state_load(db *d, const config *cfg, int with_signer, struct enroll_state **out)
{
	struct enroll_state *st;
	mdm_err rc;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return MDM_ERR_NOMEM;
	if ((rc = enroll_auth_parse(cfg, &st->auth)) != MDM_OK ||
	        (rc = config_get_int(cfg, "enroll_challenge_ttl", 60, 2592000, &st->ttl)) !=
	                MDM_OK ||
	        (rc = config_get_int(cfg, "mdm_access_rights", 1, PROFILE_ACCESS_RIGHTS_MAX,
	                 &st->access_rights)) != MDM_OK ||
	        (rc = config_get_bool(cfg, "mdm_sign_message", &st->sign_message)) != MDM_OK ||
	        (rc = config_get_bool(
	                 cfg, "mdm_checkout_when_removed", &st->checkout_when_removed)) != MDM_OK)
		goto out;
	if (with_signer && (rc = enroll_signer_load(cfg, st)) != MDM_OK)
		goto out;
	if ((rc = push_topic_get(d, cfg, st->topic)) != MDM_OK ||
	        (rc = enroll_ca_name(d, st->ca_name, sizeof(st->ca_name))) != MDM_OK)
		goto out;
	*out = st;
	st = NULL;
out:
	enroll_state_free(st);
	return rc;
}

/* Equal strings, in time that depends on the length of secret only. */
static int enroll_ct_equal(const char *given, size_t glen, const char *secret, size_t slen)
{
	volatile unsigned char diff = (unsigned char)(glen != slen);

	for (size_t i = 0; i < slen; i++)
		diff |= (unsigned char)(secret[i] ^ (i < glen ? given[i] : 0));
	return diff == 0;
}

mdm_err enroll_authorize(const struct enroll_state *st, const config *cfg, const char *query,
        const char *remote_user)
{
	const char *secret = config_get0(cfg, "enroll_token");
	char *tok = NULL;
	size_t toklen = 0;
	mdm_err rc;
	int ok;

	switch (st->auth) {
	case ENROLL_AUTH_OPEN:
		return MDM_OK;
	case ENROLL_AUTH_APACHE:
		if (remote_user != NULL && remote_user[0] != '\0')
			return MDM_OK;
		log_warn("enroll: enroll_auth = apache and Apache passed no REMOTE_USER: refused "
		         "(is the Auth* configuration in front of /enroll?)");
		return MDM_ERR_FORBIDDEN;
	case ENROLL_AUTH_TOKEN:
		break;
	}
	rc = fcgi_query_get(query != NULL ? query : "", "token", 1, &tok, &toklen);
	if (rc != MDM_OK) {
		log_warn("enroll: enroll_auth = token and the request has %s: refused",
		        rc == MDM_ERR_NOT_FOUND ? "no token" : "a malformed query");
		return MDM_ERR_FORBIDDEN;
	}
	ok = secret != NULL && enroll_ct_equal(tok, toklen, secret, strlen(secret));
	enroll_free_secret(tok, toklen);
	if (!ok) {
		log_warn("enroll: enroll_auth = token and the token does not match: refused");
		return MDM_ERR_FORBIDDEN;
	}
	return MDM_OK;
}

/* A new one-time challenge (mdm.scep_challenge_new), valid st->ttl seconds. */
static mdm_err enroll_challenge(db *d, const struct enroll_state *st, const char *udid, char **out)
{
	char ttl[16];
	const char *params[2] = {ttl, udid};
	db_res *r = NULL;
	const char *c;
	mdm_err rc;

	*out = NULL;
	snprintf(ttl, sizeof(ttl), "%d", st->ttl);
	rc = db_exec(d, "SELECT mdm.scep_challenge_new($2, make_interval(secs => $1::int))", 2,
	        params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1 || (c = db_res_get0(r, 0, 0)) == NULL) {
		rc = MDM_ERR_DB;
		goto out;
	}
	if ((*out = strdup(c)) == NULL)
		rc = MDM_ERR_NOMEM;
out:
	db_res_free(r);
	return rc;
}

mdm_err enroll_profile_tree(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, const char *udid, int with_mdm, plist **out)
{
	struct profile_enroll_params p = {0};
	char *challenge = NULL;
	mdm_err rc;

	*out = NULL;
	p.public_url = public_url != NULL ? public_url : config_get0(cfg, "public_url");
	p.scep_url = config_get0(cfg, "scep_url");
	p.scep_name = st->ca_name;
	p.scep_subject = config_get0(cfg, "enroll_scep_subject");
	p.topic = st->topic;
	p.organization = config_get0(cfg, "profile_org");
	p.identifier = config_get0(cfg, "profile_identifier");
	p.access_rights = st->access_rights;
	p.sign_message = st->sign_message;
	p.checkout_when_removed = st->checkout_when_removed;
	if ((rc = enroll_challenge(d, st, udid, &challenge)) != MDM_OK)
		goto out;
	p.challenge = challenge;
	rc = with_mdm ? profile_enroll_build(&p, out) : profile_scep_build(&p, out);
out:
	if (challenge != NULL)
		enroll_free_secret(challenge, strlen(challenge));
	return rc;
}

mdm_err enroll_serialize(const plist *profile, char **xml, size_t *len)
{
	mdm_err rc;

	if ((rc = plist_serialize(profile, xml, len)) != MDM_OK && rc != MDM_ERR_NOMEM) {
		log_error("enroll: the profile cannot be written as a plist (invalid UTF-8 in "
		          "profile_org, enroll_scep_subject or another setting?)");
		rc = MDM_ERR_CONFIG;
	}
	return rc;
}

mdm_err enroll_profile_xml(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, char **xml, size_t *len)
{
	plist *profile = NULL;
	mdm_err rc;

	*xml = NULL;
	*len = 0;
	if ((rc = enroll_profile_tree(d, cfg, st, public_url, NULL, 1, &profile)) == MDM_OK)
		rc = enroll_serialize(profile, xml, len);
	plist_free(profile);
	return rc;
}

mdm_err enroll_profile_sign(
        const struct enroll_state *st, const char *xml, size_t len, uint8_t **der, size_t *derlen)
{
	*der = NULL;
	*derlen = 0;
	if (st->signer == NULL || st->key == NULL) {
		log_error("enroll: no profile signer loaded");
		return MDM_ERR_CONFIG;
	}
	return cms_sign_attached(
	        st->signer, st->key, st->chain, st->nchain, (const uint8_t *)xml, len, der, derlen);
}
