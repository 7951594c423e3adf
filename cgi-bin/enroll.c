/*
 * enroll.fcgi: the enrollment profile (GET: a signed .mobileconfig with a
 * fresh one-time SCEP challenge) and Apple's over-the-air profile service
 * (POST, phases 2 and 3: not implemented yet).  The signer, the push
 * topic and the settings are loaded once per process (lib/enroll.c).
 */
#include "app.h"
#include "enroll.h"
#include "log.h"
#include "mdm_limits.h"
#include "profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct enroll_state *state;

static mdm_err enroll_get(struct app *a, struct enroll_state **out)
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
static mdm_err enroll_public_url(struct app *a, fcgi_req *r, char *out, size_t cap)
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

static mdm_err enroll_profile(struct app *a, fcgi_req *r)
{
	struct enroll_state *st;
	char base[PROFILE_MAX_URL + 1];
	char *xml = NULL;
	uint8_t *der = NULL;
	size_t len = 0, derlen = 0;
	mdm_err rc;

	if ((rc = enroll_get(a, &st)) != MDM_OK)
		return app_fail(a, r, rc == MDM_ERR_DB_CONN ? rc : MDM_ERR_CONFIG,
		        "enrollment is not configured or its database is unavailable (see the "
		        "error log)");
	if (enroll_authorize(st, a->cfg, r->query, fcgi_param0(r, "REMOTE_USER")) != MDM_OK)
		return app_fail(a, r, MDM_ERR_FORBIDDEN, "not allowed to enroll (enroll_auth)");
	if ((rc = enroll_public_url(a, r, base, sizeof(base))) != MDM_OK)
		return app_fail(a, r, rc, "no public_url and no usable Host header");
	if ((rc = enroll_profile_xml(a->db, a->cfg, st, base, &xml, &len)) != MDM_OK) {
		rc = app_fail(a, r, rc, "the enrollment profile could not be built (see the log)");
		goto out;
	}
	if ((rc = enroll_profile_sign(st, xml, len, &der, &derlen)) != MDM_OK) {
		rc = app_fail(a, r, rc, "the enrollment profile could not be signed");
		goto out;
	}
	/* Cached nowhere: every copy carries its own one-time challenge. */
	rc = fcgi_respond(r, 200, "application/x-apple-aspen-config",
	        "Cache-Control: no-store\r\n"
	        "Content-Disposition: attachment; filename=\"enroll.mobileconfig\"\r\n",
	        der, derlen);
	log_info("enroll: profile served (%zu bytes signed)", derlen);
out:
	enroll_free_secret(xml, len);
	enroll_free_secret(der, derlen);
	return rc;
}

static mdm_err enroll_handle(struct app *a, fcgi_req *r)
{
	if (strcmp(r->method, "POST") == 0)
		return app_fail(a, r, MDM_ERR_UNSUPPORTED,
		        "over-the-air profile service is not implemented yet");
	return enroll_profile(a, r);
}

static const struct app_endpoint enroll_endpoint = {
        "enroll.fcgi",
        "GET, POST",
        MDM_MAX_BODY_ENROLL,
        "enrollment profile and Apple over-the-air profile service",
        enroll_handle,
};

int main(int argc, char **argv)
{
	int status = app_main(&enroll_endpoint, argc, argv);

	enroll_state_free(state);
	return status;
}
