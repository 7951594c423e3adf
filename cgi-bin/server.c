/*
 * server.fcgi: the MDM command channel (Apple "Mobile Device Management
 * Protocol": Idle, Acknowledged, Error, CommandFormatError, NotNow).  The
 * foundation validates the request; the queue arrives with its issue.
 */
#include "app.h"
#include "log.h"
#include "mdm_limits.h"
#include "plist.h"

static mdm_err server_handle(struct app *a, fcgi_req *r)
{
	char err[160] = "";
	plist *msg = NULL;
	const char *status;
	mdm_err rc;

	if ((rc = plist_parse_ex((const char *)r->body, r->body_len, &msg, err, sizeof(err))) !=
	        MDM_OK)
		return app_fail(a, r, rc, "body is not a valid property list: %s", err);
	if ((status = plist_dict_get_string0(msg, "Status")) == NULL) {
		rc = app_fail(a, r, MDM_ERR_PARSE,
		        "command report has no Status string (Apple MDM protocol)");
		goto out;
	}
	rc = app_fail(a, r, MDM_ERR_UNSUPPORTED, "Status %.64s is not implemented yet", status);
out:
	plist_free(msg);
	return rc;
}

static const struct app_endpoint server_endpoint = {
        "server.fcgi",
        "PUT",
        MDM_MAX_BODY_SERVER,
        "Apple MDM command channel",
        server_handle,
};

int main(int argc, char **argv)
{
	return app_main(&server_endpoint, argc, argv);
}
