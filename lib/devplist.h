/*
 * devplist: the plists a device sends (Apple "Mobile Device Management
 * Protocol": check-in messages and command reports) read as an
 * allow-list: the body must be one XML plist dict; fields are fetched by
 * type, within caps, and every refusal names the rule, logged once and
 * written into err (mdm_refuse, errors.h).  Shared by checkin.c and
 * command.c; the plist value tree itself is plist.
 */
#ifndef MDM_DEVPLIST_H
#define MDM_DEVPLIST_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "plist.h"

/*
 * Who reads ("check-in", "command channel": mdm_refuse's who), the dict
 * being read, what it is ("TokenUpdate", "command report"), where
 * refusals go.
 */
struct devplist {
	const char *who;
	const plist *dict;
	const char *what;
	char *err;
	size_t errlen;
};

/*
 * Parses body as a plist whose root is a dict (what names it in the
 * refusal, who as in struct devplist).  MDM_ERR_PARSE / MDM_ERR_LIMIT /
 * MDM_ERR_NOMEM; *root owned by the caller on MDM_OK.
 */
MDM_WUR mdm_err devplist_parse(const char *who, const uint8_t *body, size_t len, const char *what,
        plist **root, char *err, size_t errlen);

/* Fields: absent is *out NULL (or -1 for a boolean) unless required; wrong type or over max is
 * refused. */
MDM_WUR mdm_err devplist_str(
        const struct devplist *m, const char *key, int required, size_t max, const char **out);
MDM_WUR mdm_err devplist_data(const struct devplist *m, const char *key, int required, size_t max,
        const uint8_t **out, size_t *outlen);
MDM_WUR mdm_err devplist_bool(const struct devplist *m, const char *key, int *out);

/*
 * An identifier under key or alt (UDID / EnrollmentID, UserID /
 * EnrollmentUserID), not both, valid as identity_id_valid says; alt may
 * be NULL (CommandUUID).
 */
MDM_WUR mdm_err devplist_id(
        const struct devplist *m, const char *key, const char *alt, int required, const char **out);

#endif
