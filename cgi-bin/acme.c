/*
 * acme.fcgi: the ACME server (RFC 8555) for Apple devices' hardware-bound
 * identities (the com.apple.security.acme payload, device-attest-01).
 * lib/acme.c answers; this file maps HTTP to it.  Configuration, the
 * attestation roots and (on first use) the CA are loaded once per process.
 */
#include "program.h"
#include "acme.h"
#include "log.h"
#include "mdm_limits.h"

#include <time.h>

static struct acme_server *acme;

static MDM_WUR mdm_err acme_fcgi_handle(struct program *a, fcgi_req *r)
{
	struct acme_reply reply = {0};
	mdm_err rc;

	if (acme == NULL && (rc = acme_server_new(a->db, a->cfg, &acme)) != MDM_OK)
		return program_fail(a, r, rc,
		        "the ACME service is not configured (acme_base_url, "
		        "acme_attest_root_file: see the log)");
	rc = acme_handle(acme, r->method, r->path, fcgi_param0(r, "CONTENT_TYPE"), r->body,
	        r->body_len, time(NULL), &reply);
	if (rc != MDM_OK) {
		acme_reply_clear(&reply);
		return program_fail(a, r, rc, "the request could not be answered");
	}
	rc = fcgi_respond(
	        r, reply.status, reply.content_type, reply.headers, reply.body, reply.len);
	acme_reply_clear(&reply);
	return rc;
}

static const struct program_spec acme_endpoint = {
        "acme.fcgi",
        "GET, HEAD, POST",
        MDM_MAX_BODY_ACME,
        "ACME, RFC 8555 (device-attest-01)",
        acme_fcgi_handle,
};

int main(int argc, char **argv)
{
	int status = program_main(&acme_endpoint, argc, argv);

	acme_server_free(acme);
	return status;
}
