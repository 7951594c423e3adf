/*
 * The project-wide error enum.  Every fallible function in libmdm returns
 * one of these; err_http_status() is the single table that maps them to
 * HTTP status codes, err_str() to a short stable name for logs.
 *
 * Reporting a refusal (untrusted input breaking a rule, a certificate that
 * is not the right one, a policy saying no): it is logged once, at warn,
 * by the library function that detects it, naming the rule (the RFC
 * section or Apple document) and what it concerns (a UDID, a serial, a
 * topic; never a secret).  Every record carries the program and the
 * request id, so the request's context is there.  When the caller answers
 * with the reason (a 400 body, a CertRep failInfo, mdmctl's message), the
 * same function also writes it, in terms fit for the peer, into the
 * caller's err buffer: mdm_refuse() does both from one text.  A function
 * handed a reason in err, or whose callee logged the refusal, never logs
 * the reason again: it uses err for its answer and logs its decision, if
 * anything, at info.  A check whose caller decides (whether a signer is
 * ours, a decryption inside a SCEP operation, a plist inside a device
 * message) logs nothing and hands the reason up, and says so
 * (x509_verify_issued_why, scep_msg_decrypt_ex, plist_parse_ex,
 * x509_crl_entry_ok): its caller refuses with it, and so logs it.  An
 * OpenSSL failure is logged with the call's name where it happens (x509,
 * cms); on untrusted input that line is detail under the refusal.
 * Internal errors (NOMEM, the database, OpenSSL failing on what we build,
 * configuration) are logged where they happen, as errors, and have no err
 * text.
 */
#ifndef MDM_ERRORS_H
#define MDM_ERRORS_H

#include <stdarg.h>
#include <stddef.h>

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

/*
 * A refusal, reported as above: logs "<who> refused: <reason>" (warn) and
 * writes the reason into err (errlen bytes, when err is not NULL and
 * errlen > 0); returns rc.  who opens the log line: the area ("cms:",
 * "check-in") and, where the log may say more than the answer, what the
 * refusal concerns ("command channel: Acknowledged from UDID X").
 */
MDM_WUR mdm_err mdm_refuse(const char *who, char *err, size_t errlen, mdm_err rc, const char *fmt,
        ...) __attribute__((format(printf, 5, 6)));
MDM_WUR mdm_err mdm_vrefuse(const char *who, char *err, size_t errlen, mdm_err rc, const char *fmt,
        va_list ap) __attribute__((format(printf, 5, 0)));

/* HTTP status for an error (MDM_OK is 200). */
int err_http_status(mdm_err e);
/* Short stable name, e.g. "too_large". */
const char *err_str(mdm_err e);
/* HTTP reason phrase for a status code we emit ("Payload Too Large"). */
const char *err_http_reason(int status);

#endif
