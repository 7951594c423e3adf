/*
 * The project-wide error enum.  Every fallible function in libmdm returns
 * one of these; err_http_status() is the single table that maps them to
 * HTTP status codes, err_str() to a short stable name for logs.
 */
#ifndef MDM_ERRORS_H
#define MDM_ERRORS_H

/*
 * On every function returning mdm_err, static ones and function pointer
 * types too (GCC takes the attribute on a function, not on the enum, so
 * `make lint` checks that none lacks it).  A (void) cast does not silence
 * it: a result that cannot be acted on goes through err_ignore().
 */
#define MDM_WUR __attribute__((warn_unused_result))

typedef enum mdm_err {
	MDM_OK = 0,
	MDM_ERR_NOMEM,       /* allocation failed */
	MDM_ERR_INVAL,       /* caller passed something unusable */
	MDM_ERR_PARSE,       /* untrusted input is malformed */
	MDM_ERR_LIMIT,       /* untrusted input exceeds a limit in mdm_limits.h */
	MDM_ERR_TOO_LARGE,   /* request body over the endpoint's limit */
	MDM_ERR_METHOD,      /* HTTP method not allowed on this endpoint */
	MDM_ERR_NOT_FOUND,   /* no such resource (never used for auth failures) */
	MDM_ERR_UNSUPPORTED, /* well-formed, but a feature we do not offer */
	MDM_ERR_AUTH,        /* authentication failed; never says why to the peer */
	MDM_ERR_FORBIDDEN,   /* authenticated but not allowed */
	MDM_ERR_CONFLICT,    /* state does not allow this now */
	MDM_ERR_CRYPTO,      /* a cryptographic operation failed */
	MDM_ERR_DB,          /* the database refused or failed */
	MDM_ERR_DB_CONN,     /* the database is unreachable */
	MDM_ERR_CONFIG,      /* configuration is missing or invalid */
	MDM_ERR_IO,          /* reading or writing a file or stream failed */
	MDM_ERR_INTERNAL,    /* a bug: should not happen */
	MDM_ERR__MAX
} mdm_err;

/*
 * For the few results that cannot be acted on (a response the client
 * hung up on, a ROLLBACK on a dying connection): says so at the call.
 */
static inline void err_ignore(mdm_err e)
{
	(void)e;
}

/* HTTP status for an error (MDM_OK is 200). */
int err_http_status(mdm_err e);
/* Short stable name, e.g. "too_large". */
const char *err_str(mdm_err e);
/* HTTP reason phrase for a status code we emit ("Payload Too Large"). */
const char *err_http_reason(int status);

#endif
