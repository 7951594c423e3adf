/* devplist: the plists a device sends, read as an allow-list: see devplist.h. */
#include "devplist.h"

#include "identity.h"

#include <string.h>

mdm_err devplist_parse(const char *who, const uint8_t *body, size_t len, const char *what,
        plist **root, char *err, size_t errlen)
{
	char perr[160] = "";
	mdm_err rc;

	*root = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	rc = plist_parse_ex((const char *)body, len, root, perr, sizeof(perr));
	if (rc != MDM_OK)
		return mdm_refuse(who, err, errlen,
		        rc == MDM_ERR_NOMEM || rc == MDM_ERR_LIMIT ? rc : MDM_ERR_PARSE,
		        "body is not a valid property list: %s", perr);
	if (plist_get_type(*root) != PLIST_DICT) {
		plist_free(*root);
		*root = NULL;
		return mdm_refuse(who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: a %s is a dictionary", what);
	}
	return MDM_OK;
}

/* The value of key, or a refusal when it is required and absent. */
static MDM_WUR mdm_err devplist_get(
        const struct devplist *m, const char *key, int required, const plist **v)
{
	*v = plist_dict_get0(m->dict, key);
	if (*v == NULL && required)
		return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: %s requires the %s key", m->what, key);
	return MDM_OK;
}

static MDM_WUR mdm_err devplist_type(
        const struct devplist *m, const char *key, const plist *v, enum plist_type want)
{
	if (plist_get_type(v) == want)
		return MDM_OK;
	return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_PARSE,
	        "Apple MDM protocol: %s in %s must be %s, not %s", key, m->what,
	        plist_type_str(want), plist_type_str(plist_get_type(v)));
}

mdm_err devplist_str(
        const struct devplist *m, const char *key, int required, size_t max, const char **out)
{
	const plist *v;
	size_t len = 0;
	mdm_err rc;

	*out = NULL;
	if ((rc = devplist_get(m, key, required, &v)) != MDM_OK || v == NULL ||
	        (rc = devplist_type(m, key, v, PLIST_STRING)) != MDM_OK)
		return rc;
	*out = plist_string_get0(v, &len);
	if (len > max || strlen(*out) != len)
		return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_LIMIT,
		        "%s in %s is over %zu bytes or holds a NUL", key, m->what, max);
	return MDM_OK;
}

mdm_err devplist_data(const struct devplist *m, const char *key, int required, size_t max,
        const uint8_t **out, size_t *outlen)
{
	const plist *v;
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if ((rc = devplist_get(m, key, required, &v)) != MDM_OK || v == NULL ||
	        (rc = devplist_type(m, key, v, PLIST_DATA)) != MDM_OK)
		return rc;
	*out = plist_data_get0(v, outlen);
	if (*outlen > max)
		return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_LIMIT,
		        "%s in %s is over %zu bytes", key, m->what, max);
	if (required && *outlen == 0)
		return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: %s in %s is empty", key, m->what);
	return MDM_OK;
}

mdm_err devplist_bool(const struct devplist *m, const char *key, int *out)
{
	const plist *v = plist_dict_get0(m->dict, key);

	*out = -1;
	if (v == NULL)
		return MDM_OK;
	if (plist_bool_get(v, out) != MDM_OK)
		return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: %s in %s must be a boolean", key, m->what);
	return MDM_OK;
}

mdm_err devplist_id(
        const struct devplist *m, const char *key, const char *alt, int required, const char **out)
{
	const char *a = NULL, *b = NULL;
	mdm_err rc;

	*out = NULL;
	if ((rc = devplist_str(m, key, 0, IDENTITY_MAX_ID, &a)) != MDM_OK ||
	        (alt != NULL && (rc = devplist_str(m, alt, 0, IDENTITY_MAX_ID, &b)) != MDM_OK))
		return rc;
	if (a != NULL && b != NULL)
		return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: %s carries both %s and %s", m->what, key, alt);
	*out = a != NULL ? a : b;
	if (*out == NULL) {
		if (required)
			return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_PARSE,
			        "Apple MDM protocol: %s requires %s%s%s", m->what, key,
			        alt != NULL ? " or " : "", alt != NULL ? alt : "");
		return MDM_OK;
	}
	if (!identity_id_valid(*out))
		return mdm_refuse(m->who, m->err, m->errlen, MDM_ERR_PARSE,
		        "%s must be 1 to %d characters of A-Z a-z 0-9 . _ : -",
		        *out == a ? key : alt, IDENTITY_MAX_ID);
	return MDM_OK;
}
