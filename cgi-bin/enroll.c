/*
 * enroll.fcgi: the enrollment profile (GET /enroll: a signed .mobileconfig
 * with a fresh one-time SCEP challenge) and Apple's over-the-air profile
 * service (lib/ota.c): GET /enroll/ota is phase 1, POST (application/
 * pkcs7-signature) phases 2 and 3.  The signer, the settings and the OTA
 * trust store are loaded once per process; the CA certificates are
 * reloaded only when mdm.ca changed (ca_refresh_certs: never the CA key,
 * which only scep.fcgi loads).  The push topic is
 * chosen per request among the imported ones (?topic=, the Location's
 * MDM_MDM_TOPIC, mdm_topic, or the only one: enroll_admit), from topic
 * names alone: no push certificate or key is ever read here.
 */
#include "program.h"
#include "ca.h"
#include "enroll.h"
#include "identity.h"
#include "log.h"
#include "mdm_limits.h"
#include "ota.h"
#include "profile.h"
#include "pushcert.h"

#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct enroll_state *state;
static struct ota_trust *trust;
static struct ca_state *ca;

static MDM_WUR mdm_err enroll_get(struct program *a, struct enroll_state **out)
{
	mdm_err rc;

	*out = NULL;
	if (state == NULL && (rc = enroll_state_load(a->db, a->cfg, 1, &state)) != MDM_OK)
		return rc;
	*out = state;
	return MDM_OK;
}

/*
 * Without public_url (the demo): https://<Host>, the Host header checked
 * to be a plain host[:port] so it cannot add a path, userinfo or query.
 */
static MDM_WUR mdm_err enroll_public_url(struct program *a, fcgi_req *r, char *out, size_t cap)
{
	const char *host = fcgi_param0(r, "HTTP_HOST");
	size_t n;

	out[0] = '\0';
	if (config_get0(a->cfg, "public_url") != NULL) {
		snprintf(out, cap, "%s", config_get0(a->cfg, "public_url"));
		return MDM_OK;
	}
	if (host == NULL || (n = strlen(host)) == 0 || n > 255 ||
	        strspn(host,
	                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
	                n) {
		log_warn("enroll: public_url is unset and the Host header is missing or not a "
		         "host[:port]");
		return MDM_ERR_PARSE;
	}
	snprintf(out, cap, "https://%s", host);
	return MDM_OK;
}

/*
 * What /enroll and the OTA profile service both check first: enrollment
 * configured (500, or 503 while the database is away), enroll_auth (403),
 * the push topic (400/403/404/409, 500 when nothing is imported, with the
 * reason, which may name the topics), and the URL base devices will use.
 */
static MDM_WUR mdm_err enroll_preflight(struct program *a, fcgi_req *r, struct enroll_state **st,
        char topic[PUSHCERT_MAX_TOPIC + 1], char base[PROFILE_MAX_URL + 1])
{
	/* Set by Apache (SetEnv in a <Location>), never by the client (HTTP_*). */
	struct enroll_req req = {r->query, fcgi_param0(r, "REMOTE_USER"),
	        fcgi_param0(r, "MDM_MDM_TOPIC"), fcgi_header0(r, "X-MDM-Enroll-Token"),
	        fcgi_header0(r, "Authorization")};
	char why[ENROLL_MAX_WHY];
	mdm_err rc;

	if ((rc = enroll_get(a, st)) != MDM_OK)
		return program_fail(a, r, rc == MDM_ERR_DB_CONN ? rc : MDM_ERR_CONFIG,
		        "enrollment is not configured or its database is unavailable (see the "
		        "error log)");
	if ((rc = enroll_admit(a->db, *st, a->cfg, &req, topic, why, sizeof(why))) != MDM_OK)
		return program_fail(a, r, rc, "%s", why);
	if ((rc = enroll_public_url(a, r, base, PROFILE_MAX_URL + 1)) != MDM_OK)
		return program_fail(a, r, rc, "no public_url and no usable Host header");
	return MDM_OK;
}

static MDM_WUR mdm_err enroll_profile(struct program *a, fcgi_req *r)
{
	struct enroll_state *st;
	char base[PROFILE_MAX_URL + 1], topic[PUSHCERT_MAX_TOPIC + 1];
	char *xml = NULL;
	uint8_t *der = NULL;
	size_t len = 0, derlen = 0;
	mdm_err rc;

	if ((rc = enroll_preflight(a, r, &st, topic, base)) != MDM_OK)
		return rc;
	if ((rc = enroll_profile_xml(a->db, a->cfg, st, base, topic, &xml, &len)) != MDM_OK) {
		rc = program_fail(a, r, rc,
		        rc == MDM_ERR_NOT_FOUND ? "topic %s was removed meanwhile"
		                                : "the enrollment profile could not be built (see "
		                                  "the log)%s",
		        rc == MDM_ERR_NOT_FOUND ? topic : "");
		goto out;
	}
	if ((rc = enroll_profile_sign(st, xml, len, &der, &derlen)) != MDM_OK) {
		rc = program_fail(a, r, rc, "the enrollment profile could not be signed");
		goto out;
	}
	/* Cached nowhere: every copy carries its own one-time challenge. */
	rc = fcgi_respond(r, 200, "application/x-apple-aspen-config",
	        "Cache-Control: no-store\r\n"
	        "Content-Disposition: attachment; filename=\"enroll.mobileconfig\"\r\n",
	        der, derlen);
	log_info("enroll: profile served for topic %s (%zu bytes signed)", topic, derlen);
out:
	enroll_free_secret(xml, len);
	enroll_free_secret(der, derlen);
	return rc;
}

/* The path names the OTA service: <anything>/ota (Apache maps /enroll/ota here). */
static int enroll_is_ota(const fcgi_req *r)
{
	size_t n = strlen(r->path);

	return n >= 4 && strcmp(r->path + n - 4, "/ota") == 0;
}

/*
 * Phase 1: the Profile Service payload, under the same enroll_auth and
 * topic choice as /enroll; the challenge carries the topic to phase 3.
 */
static MDM_WUR mdm_err enroll_ota_service(struct program *a, fcgi_req *r)
{
	struct enroll_state *st;
	char base[PROFILE_MAX_URL + 1], url[PROFILE_MAX_URL + sizeof(OTA_PATH)];
	char topic[PUSHCERT_MAX_TOPIC + 1];
	uint8_t *der = NULL;
	size_t derlen = 0;
	mdm_err rc;

	if ((rc = enroll_preflight(a, r, &st, topic, base)) != MDM_OK)
		return rc;
	snprintf(url, sizeof(url), "%s%s", base, OTA_PATH);
	if ((rc = ota_service_profile(a->db, a->cfg, st, url, topic, &der, &derlen)) != MDM_OK)
		return program_fail(a, r, rc,
		        rc == MDM_ERR_NOT_FOUND
		                ? "topic %s was removed meanwhile"
		                : "the profile service profile could not be built%s",
		        rc == MDM_ERR_NOT_FOUND ? topic : "");
	rc = fcgi_respond(r, 200, "application/x-apple-aspen-config",
	        "Cache-Control: no-store\r\n"
	        "Content-Disposition: attachment; filename=\"ota.mobileconfig\"\r\n",
	        der, derlen);
	log_info("enroll: OTA profile service served for topic %s (%zu bytes signed)", topic,
	        derlen);
	enroll_free_secret(der, derlen);
	return rc;
}

/* What phases 2 and 3 need beyond the enrollment state: trust store and CA. */
static MDM_WUR mdm_err enroll_ota_setup(struct program *a)
{
	mdm_err rc;

	if (trust == NULL && (rc = ota_trust_load(a->cfg, &trust)) != MDM_OK)
		return rc;
	return ca_refresh_certs(a->db, a->cfg, &ca);
}

/* Phases 2 and 3: which one is decided by the signer (lib/ota.c). */
static MDM_WUR mdm_err enroll_ota_post(struct program *a, fcgi_req *r)
{
	const char *ctype = fcgi_param0(r, "CONTENT_TYPE");
	struct enroll_state *st;
	struct ota_msg m;
	char base[PROFILE_MAX_URL + 1];
	uint8_t *der = NULL;
	size_t derlen = 0;
	mdm_err rc;

	memset(&m, 0, sizeof(m));
	if (ctype == NULL || strncmp(ctype, "application/pkcs7-signature", 27) != 0 ||
	        (ctype[27] != '\0' && ctype[27] != ';')) {
		log_warn("enroll: OTA POST refused: Content-Type is not application/"
		         "pkcs7-signature (Over-the-Air Profile Delivery, phases 2 and 3)");
		return program_fail(a, r, MDM_ERR_PARSE,
		        "Content-Type must be application/"
		        "pkcs7-signature");
	}
	if ((rc = enroll_get(a, &st)) != MDM_OK || (rc = enroll_ota_setup(a)) != MDM_OK)
		return program_fail(a, r, rc == MDM_ERR_DB_CONN ? rc : MDM_ERR_CONFIG,
		        "over-the-air enrollment is not configured or its database is "
		        "unavailable (see the error log)");
	if ((rc = enroll_public_url(a, r, base, sizeof(base))) != MDM_OK)
		return program_fail(a, r, rc, "no public_url and no usable Host header");
	rc = ota_msg_parse(r->body, r->body_len, trust, ca->verify, ca->n_verify, time(NULL), &m);
	if (rc != MDM_OK) {
		rc = program_fail(a, r, rc,
		        rc == MDM_ERR_FORBIDDEN ? "the signed device attributes were refused"
		                                : "not a signed device attributes message");
		goto out;
	}
	if ((rc = ota_answer(a->db, a->cfg, st, base, &m, &der, &derlen)) != MDM_OK) {
		rc = program_fail(
		        a, r, rc, "the over-the-air enrollment was refused (see the log)");
		goto out;
	}
	rc = fcgi_respond(r, 200, "application/x-apple-aspen-config", "Cache-Control: no-store\r\n",
	        der, derlen);
out:
	enroll_free_secret(der, derlen);
	ota_msg_clear(&m);
	return rc;
}

/*
 * GET .../enroll/ddm/<identifier>: the profile of a configuration.legacy
 * declaration this server hosts (sql/025, mdm.ddm_legacy_profile; Apple
 * declarative/declarations/configurations/legacy.yaml: "hosted by the MDM
 * server"), only to a device that gets the declaration, authenticated by
 * its identity as every check-in (a GET has no body: the TLS client
 * certificate).  404 to any other device, naming nothing.
 */
static const char *enroll_ddm_id(const fcgi_req *r)
{
	const char *p = strstr(r->path, "/ddm/");

	if (p == NULL || p[5] == '\0' || strchr(p + 5, '/') != NULL)
		return NULL;
	return p + 5;
}

static MDM_WUR mdm_err enroll_ddm_profile(struct program *a, fcgi_req *r, const char *ident)
{
	struct identity id = {0};
	const char *p[2];
	char cid[32];
	db_res *res = NULL;
	uint8_t *prof = NULL;
	size_t plen = 0;
	mdm_err rc;

	if ((rc = ca_refresh_certs(a->db, a->cfg, &ca)) != MDM_OK)
		return program_fail(a, r, rc == MDM_ERR_DB_CONN ? rc : MDM_ERR_CONFIG,
		        "the CA is not configured or its database is unavailable");
	if ((rc = program_device(a, r, ca, 1, &id)) != MDM_OK)
		return rc; /* answered there */
	snprintf(cid, sizeof(cid), "%lld", id.cert_id);
	p[0] = cid;
	p[1] = ident;
	if ((rc = db_exec(a->db, "SELECT mdm.ddm_profile_get($1::bigint, $2)", 2, p, &res)) !=
	        MDM_OK) {
		rc = program_fail(a, r, rc, "the profile could not be read");
		goto out;
	}
	if (db_res_rows(res) != 1 || db_res_is_null(res, 0, 0)) {
		log_info("enroll: DDM profile %.200s is not for certificate serial %s (404)", ident,
		        id.serial);
		rc = fcgi_respond_text(r, 404, NULL, "no such profile for this device");
		goto out;
	}
	if ((rc = db_res_get_bytea(res, 0, 0, &prof, &plen)) != MDM_OK) {
		rc = program_fail(a, r, rc, "the profile could not be read");
		goto out;
	}
	rc = fcgi_respond(r, 200, "application/x-apple-aspen-config", "Cache-Control: no-store\r\n",
	        prof, plen);
	log_info("enroll: DDM profile %.200s served to certificate serial %s (%zu bytes)", ident,
	        id.serial, plen);
out:
	free(prof);
	db_res_free(res);
	identity_clear(&id);
	return rc;
}

static MDM_WUR mdm_err enroll_handle(struct program *a, fcgi_req *r)
{
	const char *ddm;

	if (strcmp(r->method, "POST") == 0)
		return enroll_ota_post(a, r);
	if ((ddm = enroll_ddm_id(r)) != NULL)
		return enroll_ddm_profile(a, r, ddm);
	if (enroll_is_ota(r))
		return enroll_ota_service(a, r);
	return enroll_profile(a, r);
}

static const struct program_spec enroll_endpoint = {
        "enroll.fcgi",
        "GET, POST",
        MDM_MAX_BODY_ENROLL,
        "enrollment profile and Apple over-the-air profile service",
        enroll_handle,
};

int main(int argc, char **argv)
{
	int status = program_main(&enroll_endpoint, argc, argv);

	enroll_state_free(state);
	ota_trust_free(trust);
	ca_state_free(ca);
	return status;
}
