/*
 * scep.fcgi: SCEP (RFC 8894) and the CA behind it.  The operations of
 * section 3.2 (operation=...), answered by lib/scep.c; this file only
 * maps HTTP to them.
 */
#include "program.h"
#include "base64.h"
#include "log.h"
#include "mdm_limits.h"
#include "scep.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct scep_server *scep;

/* Loaded once per process; the CA itself is reloaded only when it changes. */
static MDM_WUR mdm_err scep_get(struct program *a, struct scep_server **out)
{
	mdm_err rc;

	*out = NULL;
	if (scep == NULL && (rc = scep_server_new(a->db, a->cfg, &scep)) != MDM_OK)
		return rc;
	*out = scep;
	return MDM_OK;
}

static MDM_WUR mdm_err scep_pkioperation(struct program *a, fcgi_req *r, struct scep_server *s)
{
	uint8_t *msg = NULL, *reply = NULL;
	size_t len = 0, rlen = 0;
	char *b64 = NULL;
	size_t b64len;
	mdm_err rc;

	if (strcmp(r->method, "POST") == 0) {
		msg = r->body;
		len = r->body_len;
	} else {
		/* GET: message=<base64>; macOS sends '+' and '/' unescaped. */
		rc = fcgi_query_get(r->query, "message", 0, &b64, &b64len);
		if (rc != MDM_OK)
			return program_fail(a, r, rc == MDM_ERR_NOT_FOUND ? MDM_ERR_PARSE : rc,
			        "RFC 8894 section 4.1: GET PKIOperation needs message=<base64>");
		rc = base64_decode(b64, b64len, MDM_MAX_BODY_SCEP, &msg, &len);
		free(b64);
		if (rc != MDM_OK)
			return program_fail(a, r,
			        rc == MDM_ERR_LIMIT ? MDM_ERR_TOO_LARGE : MDM_ERR_PARSE,
			        "RFC 8894 section 4.1: message is not base64 of at most %d bytes",
			        MDM_MAX_BODY_SCEP);
	}
	rc = scep_pki_operation(s, msg, len, time(NULL), &reply, &rlen);
	if (msg != r->body)
		free(msg);
	{
		const char *outcome, *fail_info;
		char label[32];

		scep_pki_outcome(s, &outcome, &fail_info);
		snprintf(label, sizeof(label), "%s%s%s", outcome, *fail_info ? "_" : "", fail_info);
		metrics_outcome(&a->metrics, "scep_pkioperation", label);
	}
	if (rc == MDM_ERR_PARSE)
		return program_fail(a, r, rc,
		        "not a SCEP pkiMessage this server can answer "
		        "(RFC 8894 section 3.2; see the error log for the rule)");
	if (rc != MDM_OK)
		return program_fail(a, r, rc, "PKIOperation failed");
	rc = fcgi_respond(r, 200, "application/x-pki-message", NULL, reply, rlen);
	free(reply);
	return rc;
}

static MDM_WUR mdm_err scep_handle(struct program *a, fcgi_req *r)
{
	struct scep_server *s;
	char *op = NULL;
	size_t oplen;
	uint8_t *der = NULL;
	size_t len = 0;
	const char *ctype;
	char *caps = NULL;
	mdm_err rc;

	rc = fcgi_query_get(r->query, "operation", 0, &op, &oplen);
	if (rc == MDM_ERR_NOT_FOUND)
		return program_fail(a, r, MDM_ERR_PARSE,
		        "RFC 8894 section 3.2: the operation parameter is required");
	if (rc != MDM_OK)
		return program_fail(a, r, rc, "RFC 8894 section 3.2: malformed query string");
	if ((rc = scep_get(a, &s)) != MDM_OK) {
		rc = program_fail(a, r, rc == MDM_ERR_CONFIG ? MDM_ERR_CONFIG : MDM_ERR_DB_CONN,
		        "the SCEP service is not configured or its database is unavailable");
		goto out;
	}
	if (strcmp(op, "PKIOperation") == 0) {
		rc = scep_pkioperation(a, r, s);
	} else if (strcmp(r->method, "GET") != 0) {
		rc = program_fail(a, r, MDM_ERR_METHOD, "RFC 8894 section 4.1: %.32s is a GET", op);
	} else if (strcmp(op, "GetCACaps") == 0) {
		if ((rc = scep_get_ca_caps(s, &caps, &len)) != MDM_OK)
			rc = program_fail(a, r, rc, "no CA (run `mdmctl ca init`)");
		else
			rc = fcgi_respond(r, 200, "text/plain", NULL, caps, len);
	} else if (strcmp(op, "GetCACert") == 0) {
		if ((rc = scep_get_ca_cert(s, &der, &len, &ctype)) != MDM_OK)
			rc = program_fail(a, r, rc, "no CA (run `mdmctl ca init`)");
		else
			rc = fcgi_respond(r, 200, ctype, NULL, der, len);
	} else if (strcmp(op, "GetNextCACert") == 0) {
		rc = scep_get_next_ca_cert(s, &der, &len);
		if (rc == MDM_ERR_NOT_FOUND)
			rc = program_fail(
			        a, r, rc, "RFC 8894 section 4.7: no CA rollover is staged");
		else if (rc != MDM_OK)
			rc = program_fail(a, r, rc, "GetNextCACert failed");
		else
			rc = fcgi_respond(
			        r, 200, "application/x-x509-next-ca-cert", NULL, der, len);
	} else {
		rc = program_fail(a, r, MDM_ERR_PARSE,
		        "RFC 8894 section 3.2: unknown operation \"%.32s\"", op);
	}
out:
	free(caps);
	free(der);
	free(op);
	return rc;
}

static const struct program_spec scep_endpoint = {
        "scep.fcgi",
        "GET, POST",
        MDM_MAX_BODY_SCEP,
        "SCEP, RFC 8894",
        scep_handle,
};

int main(int argc, char **argv)
{
	int status = program_main(&scep_endpoint, argc, argv);

	scep_server_free(scep);
	return status;
}
