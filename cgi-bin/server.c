/*
 * server.fcgi: the MDM command channel (Apple "Mobile Device Management
 * Protocol", ServerURL: Idle, Acknowledged, Error, CommandFormatError,
 * NotNow).  Authenticated exactly as check-ins are (lib/identity.c); the
 * queue is lib/command.c.  Identity refusals are 403 with a body that
 * names no rule; the log line says which.  The name is Apple's: the MDM
 * payload's ServerURL is where this program answers (CheckInURL is
 * checkin.fcgi's), so operators find the two URLs of a profile in the
 * two program names.
 */
#include "program.h"
#include "ca.h"
#include "command.h"
#include "identity.h"
#include "log.h"
#include "mdm_limits.h"

#include <string.h>
#include <time.h>

/* Loaded once per process; the CA is reloaded only when mdm.ca changes. */
static struct ca_state *ca;
static struct command_signer signer;
static int signer_loaded;

/*
 * The profile signer (profile_signer_cert/key/chain), for InstallProfile
 * commands encrypted at delivery.  Optional: without it those commands
 * are not delivered (lib/command.c says so in the log), everything else is.
 */
static void server_signer_load(const config *cfg)
{
	const char *cert = config_get0(cfg, "profile_signer_cert"),
	           *key = config_get0(cfg, "profile_signer_key"),
	           *chain = config_get0(cfg, "profile_signer_chain");

	signer_loaded = 1;
	if (cert == NULL || key == NULL)
		return;
	if (x509_cert_load_file(cert, &signer.cert) != MDM_OK ||
	        x509_key_load(key, &signer.key) != MDM_OK ||
	        !x509_key_matches_cert(signer.key, signer.cert) ||
	        (chain != NULL &&
	                x509_certs_load_file(chain, &signer.chain, &signer.nchain) != MDM_OK)) {
		log_error("server: the profile signer (profile_signer_cert, profile_signer_key, "
		          "profile_signer_chain) cannot be loaded; encrypted profiles will not be "
		          "delivered");
		x509_cert_free(signer.cert);
		x509_key_free(signer.key);
		memset(&signer, 0, sizeof(signer));
	}
}

static MDM_WUR mdm_err server_setup(struct program *a)
{
	if (!signer_loaded)
		server_signer_load(a->cfg);
	return ca_refresh_certs(a->db, a->cfg, &ca);
}

static MDM_WUR mdm_err server_handle(struct program *a, fcgi_req *r)
{
	struct identity id = {0};
	struct command_report *rep = NULL;
	struct command_reply reply = {0};
	char err[256] = "";
	mdm_err rc;

	if ((rc = server_setup(a)) != MDM_OK)
		return program_fail(a, r, rc == MDM_ERR_NOT_FOUND ? MDM_ERR_CONFIG : rc,
		        "the command channel is not configured (no CA?) or its database is "
		        "unavailable");
	/* Its mdm.certificate row is read by the report's one statement (command_process). */
	if ((rc = program_device(a, r, ca, 0, &id)) != MDM_OK)
		goto out;
	/* A refusal was logged where it was found; err is for the answer only. */
	if ((rc = command_report_parse(r->body, r->body_len, &rep, err, sizeof(err))) != MDM_OK) {
		rc = program_fail(a, r, rc == MDM_ERR_NOMEM ? rc : MDM_ERR_PARSE, "%s", err);
		goto out;
	}
	rc = command_process(a->db, &id, signer.cert != NULL ? &signer : NULL, rep, r->body,
	        r->body_len, &reply, err, sizeof(err));
	if (rc == MDM_ERR_FORBIDDEN)
		rc = fcgi_respond_text(r, 403, NULL, "forbidden");
	else if (rc == MDM_ERR_PARSE)
		rc = program_fail(a, r, MDM_ERR_PARSE, "%s", err);
	else if (rc != MDM_OK)
		rc = program_fail(a, r, rc, "the report could not be stored");
	else if (reply.body == NULL)
		/* Apple MDM protocol: nothing due is a 200 with an empty body. */
		rc = fcgi_respond(r, 200, "text/plain", NULL, "", 0);
	else
		rc = fcgi_respond(r, 200, "application/xml", NULL, reply.body, reply.len);
out:
	command_reply_clear(&reply);
	command_report_free(rep);
	identity_clear(&id);
	return rc;
}

static const struct program_spec server_endpoint = {
        "server.fcgi",
        "PUT",
        MDM_MAX_BODY_SERVER,
        "Apple MDM command channel",
        server_handle,
};

int main(int argc, char **argv)
{
	int status = program_main(&server_endpoint, argc, argv);

	ca_state_free(ca);
	x509_cert_free(signer.cert);
	x509_key_free(signer.key);
	x509_certs_free(signer.chain, signer.nchain);
	return status;
}
