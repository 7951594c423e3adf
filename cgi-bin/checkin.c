/*
 * checkin.fcgi: MDM check-in (Apple "Mobile Device Management Protocol",
 * CheckInURL).  Every message is authenticated by the device identity
 * (lib/identity.c) and applied by lib/checkin.c; this file maps HTTP to
 * them.  Identity refusals are 403 with a body that names no rule (a 401
 * could make a real device unenroll; the log line says which rule).
 */
#include "program.h"
#include "ca.h"
#include "checkin.h"
#include "identity.h"
#include "log.h"
#include "mdm_limits.h"

#include <string.h>
#include <strings.h>
#include <time.h>

/* Loaded once per process; the CA is reloaded only when mdm.ca changes. */
static struct ca_state *ca;
static struct checkin_policy policy;
static int policy_loaded;

static MDM_WUR mdm_err checkin_setup(struct program *a)
{
	mdm_err rc;

	if (!policy_loaded) {
		if ((rc = config_get_bool(
		             a->cfg, "checkin_allow_takeover", &policy.allow_takeover)) != MDM_OK ||
		        (rc = config_get_bool(
		                 a->cfg, "checkin_user_channel", &policy.user_channel)) != MDM_OK)
			return rc;
		policy_loaded = 1;
	}
	return ca_refresh_certs(a->db, a->cfg, &ca);
}

static MDM_WUR mdm_err checkin_forbidden(struct program *a, fcgi_req *r)
{
	(void)a;
	return fcgi_respond_text(r, 403, NULL, "forbidden");
}

static MDM_WUR mdm_err checkin_handle(struct program *a, fcgi_req *r)
{
	const char *ctype = fcgi_param0(r, "CONTENT_TYPE");
	struct identity id = {0};
	struct checkin_msg *m = NULL;
	struct checkin_reply reply = {0};
	char err[256] = "";
	mdm_err rc;

	/* Apple MDM protocol: check-in bodies are application/x-apple-aspen-mdm-checkin. */
	if (ctype == NULL || strncasecmp(ctype, "application/x-apple-aspen-mdm-checkin", 37) != 0 ||
	        (ctype[37] != '\0' && ctype[37] != ';'))
		return program_fail(a, r, MDM_ERR_PARSE,
		        "Apple MDM protocol: a check-in is Content-Type "
		        "application/x-apple-aspen-mdm-checkin");
	if ((rc = checkin_setup(a)) != MDM_OK)
		return program_fail(a, r, rc == MDM_ERR_NOT_FOUND ? MDM_ERR_CONFIG : rc,
		        "the check-in service is not configured (no CA?) or its database is "
		        "unavailable");
	if ((rc = program_device(a, r, ca, 1, &id)) != MDM_OK)
		goto out;
	/* A refusal was logged where it was found; err is for the answer only. */
	if ((rc = checkin_parse(r->body, r->body_len, &m, err, sizeof(err))) != MDM_OK) {
		rc = program_fail(a, r, rc == MDM_ERR_NOMEM ? rc : MDM_ERR_PARSE, "%s", err);
		goto out;
	}
	rc = checkin_process(
	        a->db, &policy, &id, m, r->body, r->body_len, &reply, err, sizeof(err));
	if (rc == MDM_ERR_FORBIDDEN) {
		rc = checkin_forbidden(a, r);
	} else if (rc == MDM_ERR_PARSE || rc == MDM_ERR_LIMIT) {
		rc = program_fail(a, r, MDM_ERR_PARSE, "%s", err);
	} else if (rc != MDM_OK) {
		rc = program_fail(a, r, rc, "the check-in could not be stored");
	} else if (reply.body == NULL) {
		/* Apple MDM protocol: success is a 200 with an empty body. */
		rc = fcgi_respond(r, reply.status, "text/plain", NULL, "", 0);
	} else {
		rc = fcgi_respond(r, reply.status, reply.content_type, NULL, reply.body, reply.len);
	}
out:
	checkin_reply_clear(&reply);
	checkin_msg_free(m);
	identity_clear(&id);
	return rc;
}

static const struct program_spec checkin_endpoint = {
        "checkin.fcgi",
        "PUT",
        MDM_MAX_BODY_CHECKIN,
        "Apple MDM check-in protocol",
        checkin_handle,
};

int main(int argc, char **argv)
{
	int status = program_main(&checkin_endpoint, argc, argv);

	ca_state_free(ca);
	return status;
}
