/* Over-the-air enrollment, phases 1 to 3: see ota.h. */
#include "ota.h"

#include "cms.h"
#include "log.h"
#include "profile.h"
#include "pushcert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ota_trust_free(struct ota_trust *t)
{
	if (t == NULL)
		return;
	x509_certs_free(t->certs, t->n);
	free(t);
}

mdm_err ota_trust_load(const config *cfg, struct ota_trust **out)
{
	const char *path = config_get0(cfg, "ota_trust_file");
	struct ota_trust *t;

	*out = NULL;
	if (path == NULL) {
		log_error("config: ota_trust_file is required for over-the-air enrollment");
		return MDM_ERR_CONFIG;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return MDM_ERR_NOMEM;
	if (x509_certs_load_file(path, &t->certs, &t->n) != MDM_OK) {
		log_error("config: ota_trust_file %s cannot be loaded (a PEM file of 1 to %d "
		          "certificates)",
		        path, X509_MAX_CHAIN);
		free(t);
		return MDM_ERR_CONFIG;
	}
	*out = t;
	return MDM_OK;
}

void ota_msg_clear(struct ota_msg *m)
{
	if (m == NULL)
		return;
	x509_cert_free(m->signer);
	if (m->challenge != NULL)
		enroll_free_secret(m->challenge, strlen(m->challenge));
	free(m->attrs_json);
	memset(m, 0, sizeof(*m));
}

/* 1 if one of cas signed cert: our CA issued it, so phase 3's rules apply. */
static int ota_ours(const struct x509_st *cert, struct x509_st *const *cas, size_t ncas)
{
	for (size_t i = 0; i < ncas; i++)
		if (cas[i] != NULL && x509_cert_signed_by(cert, cas[i]))
			return 1;
	return 0;
}

/*
 * The attributes plist: a dict of string or boolean values within the
 * caps; keys we do not know are kept (Apple adds attributes across OS
 * versions) under the same type and size rules.  CHALLENGE is taken out
 * of the tree into m->challenge.
 */
static MDM_WUR mdm_err ota_attrs(const uint8_t *content, size_t len, struct ota_msg *m)
{
	plist *attrs = NULL, *ch = NULL;
	const char *udid;
	size_t n, slen;
	mdm_err rc;

	if ((rc = plist_parse((const char *)content, len, &attrs)) != MDM_OK) {
		rc = rc == MDM_ERR_NOMEM ? rc : MDM_ERR_PARSE;
		goto out;
	}
	rc = MDM_ERR_PARSE;
	if (plist_get_type(attrs) != PLIST_DICT) {
		log_warn("ota refused: the signed content is not a dict of device attributes "
		         "(Over-the-Air Profile Delivery, phase 2)");
		goto out;
	}
	if ((n = plist_dict_count(attrs)) > OTA_MAX_ATTRS) {
		log_warn(
		        "ota refused: limit: %zu device attributes (at most %d)", n, OTA_MAX_ATTRS);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const plist *v = plist_dict_value_at(attrs, i);
		enum plist_type t = plist_get_type(v);

		if (t == PLIST_STRING && plist_string_get0(v, &slen) != NULL &&
		        slen <= OTA_MAX_ATTR_LEN)
			continue;
		if (t == PLIST_BOOLEAN && strcmp(plist_dict_key_at(attrs, i), "NotOnConsole") == 0)
			continue;
		log_warn("ota refused: device attribute \"%.64s\" is a %s%s (strings of at most %d "
		         "bytes; NotOnConsole a boolean)",
		        plist_dict_key_at(attrs, i), plist_type_str(t),
		        t == PLIST_STRING ? " over the limit" : "", OTA_MAX_ATTR_LEN);
		goto out;
	}
	if ((udid = plist_dict_get_string0(attrs, "UDID")) == NULL || !identity_id_valid(udid)) {
		log_warn("ota refused: UDID missing or not 1 to %d characters of [A-Za-z0-9._:-]",
		        IDENTITY_MAX_ID);
		goto out;
	}
	snprintf(m->udid, sizeof(m->udid), "%s", udid);
	if (plist_dict_take(attrs, "CHALLENGE", &ch) == MDM_OK) {
		const char *c = plist_string_get0(ch, &slen);

		if (c == NULL || slen == 0 || slen > MDM_MAX_CHALLENGE) {
			log_warn("ota refused: CHALLENGE is empty or over %d bytes",
			        MDM_MAX_CHALLENGE);
			goto out;
		}
		if ((m->challenge = strdup(c)) == NULL) {
			rc = MDM_ERR_NOMEM;
			goto out;
		}
	}
	if (m->phase == OTA_PHASE2 && m->challenge == NULL) {
		log_warn("ota refused: phase 2 without CHALLENGE (the Profile Service payload's "
		         "one-time challenge is required)");
		goto out;
	}
	rc = plist_to_json(attrs, &m->attrs_json, &slen);
out:
	if (ch != NULL) {
		size_t cl = 0;
		const char *c = plist_string_get0(ch, &cl);

		if (c != NULL)
			explicit_bzero((void *)c, cl);
	}
	plist_free(ch);
	plist_free(attrs);
	return rc;
}

mdm_err ota_msg_parse(const uint8_t *der, size_t len, const struct ota_trust *apple,
        struct x509_st *const *cas, size_t ncas, time_t now, struct ota_msg *out)
{
	uint8_t *content = NULL;
	size_t clen = 0;
	struct x509_info info;
	const char *why = NULL;
	mdm_err rc;

	memset(out, 0, sizeof(*out));
	if (der == NULL || apple == NULL || (cas == NULL && ncas > 0))
		return MDM_ERR_INVAL;
	rc = cms_verify_attached(der, len, &content, &clen, &out->signer, NULL, 0);
	if (rc != MDM_OK) {
		/* cms logged the rule where it found it. */
		if (rc == MDM_ERR_AUTH)
			rc = MDM_ERR_FORBIDDEN;
		else if (rc != MDM_ERR_LIMIT && rc != MDM_ERR_NOMEM)
			rc = MDM_ERR_PARSE;
		goto out;
	}
	if ((rc = x509_cert_info(out->signer, &info)) != MDM_OK) {
		log_warn("ota refused: the signer certificate cannot be read (RFC 5280 4.1)");
		rc = MDM_ERR_FORBIDDEN;
		goto out;
	}
	memcpy(out->signer_sha256, info.sha256, sizeof(out->signer_sha256));
	snprintf(out->signer_subject, sizeof(out->signer_subject), "%s", info.subject);
	snprintf(out->signer_issuer, sizeof(out->signer_issuer), "%s", info.issuer);
	/* Which phase: by who signed, never by what the body says. */
	if (ota_ours(out->signer, cas, ncas)) {
		out->phase = OTA_PHASE3;
		if (x509_verify_issued_why(out->signer, cas, ncas, now, 1, NULL, &why) != MDM_OK) {
			log_warn("ota refused: phase 3 signer sha256:%s is not a valid identity of "
			         "our CA now (%s)",
			        out->signer_sha256, why != NULL ? why : "not verified");
			rc = MDM_ERR_FORBIDDEN;
			goto out;
		}
	} else {
		out->phase = OTA_PHASE2;
		/* x509 logs the refusal, naming the rule; this is the answer. */
		if (x509_verify_pinned(out->signer, apple->certs, apple->n, now) != MDM_OK) {
			log_info("ota: phase 2 signer sha256:%s (%.200s) refused, not an Apple "
			         "device certificate of ota_trust_file (Over-the-Air Profile "
			         "Delivery: phase 2 is signed by the device's Apple-issued "
			         "identity)",
			        out->signer_sha256, out->signer_subject);
			rc = MDM_ERR_FORBIDDEN;
			goto out;
		}
	}
	rc = ota_attrs(content, clen, out);
out:
	if (content != NULL)
		explicit_bzero(content, clen);
	free(content);
	if (rc != MDM_OK)
		ota_msg_clear(out);
	return rc;
}

/* Signs a profile tree with the profile signer. */
static MDM_WUR mdm_err ota_sign_tree(
        const struct enroll_state *st, const plist *profile, uint8_t **der, size_t *derlen)
{
	char *xml = NULL;
	size_t len = 0;
	mdm_err rc;

	if ((rc = enroll_serialize(profile, &xml, &len)) == MDM_OK)
		rc = enroll_profile_sign(st, xml, len, der, derlen);
	enroll_free_secret(xml, len);
	return rc;
}

mdm_err ota_service_profile(db *d, const config *cfg, const struct enroll_state *st,
        const char *service_url, const char *topic, uint8_t **der, size_t *derlen)
{
	struct profile_service_params p = {0};
	char ttl[16];
	const char *params[2] = {ttl, topic};
	plist *profile = NULL;
	db_res *r = NULL;
	char *challenge = NULL;
	mdm_err rc;

	*der = NULL;
	*derlen = 0;
	snprintf(ttl, sizeof(ttl), "%d", st->ttl);
	/* The challenge carries the topic to phases 2 and 3. */
	rc = db_exec(d, "SELECT mdm.ota_challenge_new(make_interval(secs => $1::int), $2)", 2,
	        params, &r);
	if (rc == MDM_ERR_DB && strcmp(db_get0_sqlstate(d), "P0002") == 0) {
		log_warn("ota: topic %s is no longer imported: no profile service", topic);
		rc = MDM_ERR_NOT_FOUND;
	}
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1 || db_res_get0(r, 0, 0) == NULL) {
		rc = MDM_ERR_DB;
		goto out;
	}
	if ((challenge = strdup(db_res_get0(r, 0, 0))) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	p.url = service_url;
	p.challenge = challenge;
	p.organization = config_get0(cfg, "profile_org");
	p.identifier = config_get0(cfg, "profile_identifier");
	if ((rc = profile_service_build(&p, &profile)) != MDM_OK)
		goto out;
	rc = ota_sign_tree(st, profile, der, derlen);
out:
	if (challenge != NULL)
		enroll_free_secret(challenge, strlen(challenge));
	plist_free(profile);
	db_res_free(r);
	return rc;
}

/* A topic column (NULL: ""), checked before it goes anywhere. */
static MDM_WUR mdm_err ota_topic_copy(const db_res *r, int col, char topic[PUSHCERT_MAX_TOPIC + 1])
{
	const char *t = db_res_get0(r, 0, col);

	topic[0] = '\0';
	if (t == NULL)
		return MDM_OK;
	if (!pushcert_topic_valid(t)) {
		log_error("ota: the topic recorded with the challenge is not %s<UUID>",
		        PUSHCERT_TOPIC_PREFIX);
		return MDM_ERR_CONFIG;
	}
	memcpy(topic, t, strlen(t) + 1);
	return MDM_OK;
}

/*
 * Phase 3's topic: the one recorded with the SCEP challenge that issued
 * the signer (phase 2 copied it there from phase 1's); for an enrollment
 * begun before topics were recorded, the server's choice without a
 * request (mdm_topic, or the only topic).
 */
static MDM_WUR mdm_err ota_phase3_topic(db *d, const struct enroll_state *st,
        const struct ota_msg *m, const char *cert_id, char topic[PUSHCERT_MAX_TOPIC + 1])
{
	const char *params[1] = {cert_id};
	char why[ENROLL_MAX_WHY];
	db_res *r = NULL;
	mdm_err rc;

	topic[0] = '\0';
	rc = db_exec(d,
	        "SELECT h.topic FROM mdm.challenge h WHERE h.used_by_certificate = $1::bigint "
	        "AND h.purpose = 'scep' AND h.topic IS NOT NULL ORDER BY h.id DESC LIMIT 1",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) == 1) {
		rc = ota_topic_copy(r, 0, topic);
		goto out;
	}
	/* enroll logs why no topic can be chosen; this names the device it refuses. */
	if ((rc = enroll_topic_choose(d, st, NULL, NULL, topic, why, sizeof(why))) != MDM_OK)
		log_info("ota: phase 3 for UDID %s refused: its enrollment recorded no topic and "
		         "none can be chosen",
		        m->udid);
out:
	db_res_free(r);
	return rc;
}

mdm_err ota_answer_profile(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, enum ota_phase phase, const char *udid, const char *topic,
        struct x509_st *recipient, plist **out)
{
	plist *profile = NULL;
	mdm_err rc;

	*out = NULL;
	if (udid == NULL || (phase != OTA_PHASE2 && phase != OTA_PHASE3) ||
	        (phase == OTA_PHASE3 && (recipient == NULL || topic == NULL)))
		return MDM_ERR_INVAL;
	/*
	 * Phase 2: an identity over SCEP only, its challenge carrying the topic
	 * on; phase 3: the whole enrollment, encrypted, naming that topic.
	 */
	rc = enroll_profile_tree(
	        d, cfg, st, public_url, udid, topic, phase == OTA_PHASE3, &profile);
	if (rc == MDM_ERR_NOT_FOUND) {
		log_warn("ota refused: phase %d for UDID %s: its topic %s is no longer imported",
		        (int)phase, udid, topic != NULL ? topic : "(none)");
		rc = MDM_ERR_CONFLICT;
	}
	if (rc == MDM_OK && phase == OTA_PHASE3)
		rc = profile_encrypt(profile, recipient);
	if (rc != MDM_OK) {
		plist_free(profile);
		return rc;
	}
	*out = profile;
	return MDM_OK;
}

struct ota_tx {
	const config *cfg;
	const struct enroll_state *st;
	const char *public_url;
	const struct ota_msg *m;
	uint8_t *der;
	size_t derlen;
};

/*
 * Spends the phase-2 challenge: one UPDATE, so two messages cannot both
 * use it.  topic: the one phase 1 chose ("" for a challenge without).
 */
static MDM_WUR mdm_err ota_spend(
        db *d, const struct ota_msg *m, char *id, size_t cap, char topic[PUSHCERT_MAX_TOPIC + 1])
{
	const char *params[1] = {m->challenge};
	db_res *r = NULL;
	mdm_err rc;

	id[0] = '\0';
	topic[0] = '\0';
	rc = db_exec(d,
	        "UPDATE mdm.challenge SET used_at = now() "
	        "WHERE challenge_sha256 = encode(sha256(convert_to($1, 'UTF8')), 'hex') "
	        "AND purpose = 'ota' AND used_at IS NULL AND expires_at > now() "
	        "RETURNING id, topic",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		log_warn("ota refused: phase 2 for UDID %s: CHALLENGE unknown, expired or already "
		         "used (one-time, Profile Service payload)",
		        m->udid);
		rc = MDM_ERR_FORBIDDEN;
		goto out;
	}
	snprintf(id, cap, "%s", db_res_get0(r, 0, 0));
	rc = ota_topic_copy(r, 1, topic);
out:
	db_res_free(r);
	return rc;
}

/* Phase 3's signer: recorded as a device certificate of this UDID, unrevoked. */
static MDM_WUR mdm_err ota_cert_of_udid(db *d, const struct ota_msg *m, char *id, size_t cap)
{
	const char *params[1] = {m->signer_sha256};
	db_res *r = NULL;
	mdm_err rc;

	id[0] = '\0';
	rc = db_exec(d,
	        "SELECT id, kind, revoked_at IS NOT NULL, coalesce(udid, '') "
	        "FROM mdm.certificate WHERE sha256 = $1 FOR SHARE",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	rc = MDM_ERR_FORBIDDEN;
	if (db_res_rows(r) != 1)
		log_warn("ota refused: phase 3 signer sha256:%s chains to our CA but is not in "
		         "mdm.certificate",
		        m->signer_sha256);
	else if (strcmp(db_res_get0(r, 0, 1), "device") != 0)
		log_warn("ota refused: phase 3 signer sha256:%s is not a device identity",
		        m->signer_sha256);
	else if (strcmp(db_res_get0(r, 0, 2), "t") == 0)
		log_warn("ota refused: phase 3 signer sha256:%s is revoked (RFC 5280 3.3)",
		        m->signer_sha256);
	else if (strcmp(db_res_get0(r, 0, 3), m->udid) != 0)
		log_warn("ota refused: phase 3 for UDID %s signed by certificate sha256:%s, which "
		         "belongs to %s (the identity must be the one issued for this UDID)",
		        m->udid, m->signer_sha256,
		        db_res_get0(r, 0, 3)[0] ? db_res_get0(r, 0, 3) : "no UDID");
	else {
		snprintf(id, cap, "%s", db_res_get0(r, 0, 0));
		rc = MDM_OK;
	}
out:
	db_res_free(r);
	return rc;
}

static MDM_WUR mdm_err ota_record(db *d, const struct ota_msg *m, const char *challenge_id,
        const char *certificate_id, const char *topic)
{
	char phase[4];
	const char *params[9];

	snprintf(phase, sizeof(phase), "%d", (int)m->phase);
	params[0] = m->udid;
	params[1] = phase;
	params[2] = m->signer_sha256;
	params[3] = m->signer_subject;
	params[4] = m->signer_issuer;
	params[5] = challenge_id[0] ? challenge_id : NULL;
	params[6] = certificate_id[0] ? certificate_id : NULL;
	params[7] = m->attrs_json;
	params[8] = topic[0] ? topic : NULL;
	return db_exec(d,
	        "INSERT INTO mdm.ota_enrollment (udid, phase, signer_sha256, signer_subject, "
	        "signer_issuer, challenge_id, certificate_id, attributes, topic) VALUES ($1, "
	        "$2::smallint, $3, $4, $5, $6::bigint, $7::bigint, $8::jsonb, $9)",
	        9, params, NULL);
}

static MDM_WUR mdm_err ota_tx_fn(db *d, void *arg)
{
	struct ota_tx *t = arg;
	const struct ota_msg *m = t->m;
	const char *params[1] = {m->udid};
	char challenge_id[32] = "", cert_id[32] = "", topic[PUSHCERT_MAX_TOPIC + 1] = "";
	plist *profile = NULL;
	mdm_err rc;

	/* A retried transaction starts from a clean answer. */
	enroll_free_secret(t->der, t->derlen);
	t->der = NULL;
	t->derlen = 0;
	if (m->phase == OTA_PHASE2) {
		if ((rc = ota_spend(d, m, challenge_id, sizeof(challenge_id), topic)) != MDM_OK)
			goto out;
		/* The device row the UDID-bound challenge and its certificate point at. */
		if ((rc = db_exec(d,
		             "INSERT INTO mdm.device (udid) VALUES ($1) ON CONFLICT DO NOTHING", 1,
		             params, NULL)) != MDM_OK)
			goto out;
	} else if ((rc = ota_cert_of_udid(d, m, cert_id, sizeof(cert_id))) != MDM_OK ||
	        (rc = ota_phase3_topic(d, t->st, m, cert_id, topic)) != MDM_OK)
		goto out;
	if ((rc = ota_record(d, m, challenge_id, cert_id, topic)) != MDM_OK ||
	        (rc = ota_answer_profile(d, t->cfg, t->st, t->public_url, m->phase, m->udid,
	                 topic[0] ? topic : NULL, m->signer, &profile)) != MDM_OK)
		goto out;
	rc = ota_sign_tree(t->st, profile, &t->der, &t->derlen);
out:
	plist_free(profile);
	return rc;
}

mdm_err ota_answer(db *d, const config *cfg, const struct enroll_state *st, const char *public_url,
        const struct ota_msg *m, uint8_t **der, size_t *derlen)
{
	struct ota_tx t = {cfg, st, public_url, m, NULL, 0};
	mdm_err rc;

	*der = NULL;
	*derlen = 0;
	if ((rc = db_tx(d, ota_tx_fn, &t)) != MDM_OK) {
		enroll_free_secret(t.der, t.derlen);
		return rc;
	}
	log_info("ota: phase %d accepted for UDID %s (signer sha256:%s)", (int)m->phase, m->udid,
	        m->signer_sha256);
	*der = t.der;
	*derlen = t.derlen;
	return MDM_OK;
}
