/* The one table from mdm_err to HTTP status and names, and the one way to refuse. */
#include "errors.h"
#include "log.h"

#include <stdio.h>

static const struct {
	int status;
	const char *name;
} err_table[MDM_ERR__MAX] = {
        [MDM_OK] = {200, "ok"},
        [MDM_ERR_NOMEM] = {503, "nomem"},
        [MDM_ERR_INVAL] = {500, "inval"},
        [MDM_ERR_PARSE] = {400, "parse"},
        [MDM_ERR_LIMIT] = {400, "limit"},
        [MDM_ERR_TOO_LARGE] = {413, "too_large"},
        [MDM_ERR_METHOD] = {405, "method"},
        [MDM_ERR_NOT_FOUND] = {404, "not_found"},
        [MDM_ERR_UNSUPPORTED] = {501, "unsupported"},
        [MDM_ERR_AUTH] = {401, "auth"},
        [MDM_ERR_FORBIDDEN] = {403, "forbidden"},
        [MDM_ERR_CONFLICT] = {409, "conflict"},
        [MDM_ERR_CRYPTO] = {500, "crypto"},
        [MDM_ERR_DB] = {500, "db"},
        [MDM_ERR_DB_CONN] = {503, "db_conn"},
        [MDM_ERR_CONFIG] = {500, "config"},
        [MDM_ERR_IO] = {500, "io"},
        [MDM_ERR_INTERNAL] = {500, "internal"},
};

int err_http_status(mdm_err e)
{
	if ((unsigned)e >= MDM_ERR__MAX)
		return 500;
	return err_table[e].status;
}

const char *err_str(mdm_err e)
{
	if ((unsigned)e >= MDM_ERR__MAX)
		return "unknown";
	return err_table[e].name;
}

const char *err_http_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

mdm_err mdm_vrefuse(
        const char *who, char *err, size_t errlen, mdm_err rc, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_warn("%s refused: %s", who, msg);
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
	return rc;
}

mdm_err mdm_refuse(const char *who, char *err, size_t errlen, mdm_err rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rc = mdm_vrefuse(who, err, errlen, rc, fmt, ap);
	va_end(ap);
	return rc;
}
