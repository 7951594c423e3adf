/*
 * enroll.fcgi: the enrollment profile (GET) and Apple's over-the-air
 * profile service (POST, phases 2 and 3).  The foundation routes the
 * requests; the profiles arrive with their issues.
 */
#include "app.h"
#include "log.h"
#include "mdm_limits.h"

#include <string.h>

static mdm_err enroll_handle(struct app *a, fcgi_req *r)
{
	if (strcmp(r->method, "POST") == 0)
		return app_fail(a, r, MDM_ERR_UNSUPPORTED,
		        "over-the-air profile service is not implemented yet");
	return app_fail(a, r, MDM_ERR_UNSUPPORTED, "enrollment profile is not implemented yet");
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
	return app_main(&enroll_endpoint, argc, argv);
}
