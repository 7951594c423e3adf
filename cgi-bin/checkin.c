/*
 * checkin.fcgi: MDM check-in (Apple "Mobile Device Management Protocol",
 * check-in messages).  The foundation validates the request; the message
 * types themselves are answered by the check-in issue.
 */
#include "app.h"
#include "log.h"
#include "mdm_limits.h"
#include "plist.h"

static mdm_err checkin_handle(struct app *a, fcgi_req *r)
{
	char err[160] = "";
	plist *msg = NULL;
	const char *type;
	mdm_err rc;

	if ((rc = plist_parse_ex((const char *)r->body, r->body_len, &msg, err, sizeof(err))) !=
	        MDM_OK)
		return app_fail(a, r, rc, "body is not a valid property list: %s", err);
	if ((type = plist_dict_get_string0(msg, "MessageType")) == NULL) {
		rc = app_fail(a, r, MDM_ERR_PARSE,
		        "check-in message has no MessageType string (Apple MDM protocol)");
		goto out;
	}
	rc = app_fail(a, r, MDM_ERR_UNSUPPORTED, "MessageType %.64s is not implemented yet", type);
out:
	plist_free(msg);
	return rc;
}

static const struct app_endpoint checkin_endpoint = {
        "checkin.fcgi",
        "PUT",
        MDM_MAX_BODY_CHECKIN,
        "Apple MDM check-in protocol",
        checkin_handle,
};

int main(int argc, char **argv)
{
	return app_main(&checkin_endpoint, argc, argv);
}
