/*
 * scep.fcgi: SCEP (RFC 8894) and the CA behind it.  The foundation routes
 * the operations of RFC 8894 section 3.2 (operation=...); the CA arrives
 * with the SCEP issue.
 */
#include "app.h"
#include "log.h"
#include "mdm_limits.h"

#include <stdlib.h>
#include <string.h>

static const char *const scep_operations[] = {
        "GetCACaps",
        "GetCACert",
        "GetNextCACert",
        "PKIOperation",
};

static mdm_err scep_handle(struct app *a, fcgi_req *r)
{
	char *op = NULL;
	size_t oplen;
	mdm_err rc;
	int known = 0;

	rc = fcgi_query_get(r->query, "operation", 0, &op, &oplen);
	if (rc == MDM_ERR_NOT_FOUND)
		return app_fail(a, r, MDM_ERR_PARSE,
		        "RFC 8894 section 3.2: the operation parameter is required");
	if (rc != MDM_OK)
		return app_fail(a, r, rc, "RFC 8894 section 3.2: malformed query string");
	for (size_t i = 0; i < sizeof(scep_operations) / sizeof(scep_operations[0]); i++)
		if (strcmp(op, scep_operations[i]) == 0)
			known = 1;
	if (!known)
		rc = app_fail(a, r, MDM_ERR_PARSE,
		        "RFC 8894 section 3.2: unknown operation \"%.32s\"", op);
	else
		rc = app_fail(a, r, MDM_ERR_UNSUPPORTED, "operation %s is not implemented yet", op);
	free(op);
	return rc;
}

static const struct app_endpoint scep_endpoint = {
        "scep.fcgi",
        "GET, POST",
        MDM_MAX_BODY_SCEP,
        "SCEP, RFC 8894",
        scep_handle,
};

int main(int argc, char **argv)
{
	return app_main(&scep_endpoint, argc, argv);
}
