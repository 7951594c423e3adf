/*
 * MDM push certificates (APNs): import into mdm.certificate (kind push)
 * and mdm.push_cert, and the topic the enrollment profile names.  The
 * topic is the certificate subject's UID, which Apple's MDM protocol
 * requires to be com.apple.mgmt.External.<UUID>; the private key stays
 * where key_uri points (an absolute file path or a pkcs11: URI).
 */
#ifndef MDM_PUSH_H
#define MDM_PUSH_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "errors.h"

struct x509_st;
struct evp_pkey_st;

#define PUSH_TOPIC_PREFIX "com.apple.mgmt.External."
/* The prefix and a 36-character UUID. */
#define PUSH_MAX_TOPIC (sizeof(PUSH_TOPIC_PREFIX) - 1 + 36)

/* 1 if topic is com.apple.mgmt.External.<UUID> (hex digits, 8-4-4-4-12). */
int push_topic_valid(const char *topic);

/*
 * The APNs topic of a push certificate (its subject UID) in
 * out[PUSH_MAX_TOPIC + 1].  MDM_ERR_PARSE (logged, citing Apple's rule)
 * when there is no UID or it is not a valid topic.
 */
MDM_WUR mdm_err push_cert_topic(const struct x509_st *cert, char out[PUSH_MAX_TOPIC + 1]);

enum push_import_result {
	PUSH_IMPORTED,  /* a new topic */
	PUSH_REPLACED,  /* the topic's certificate was replaced (a renewal) */
	PUSH_UNCHANGED, /* the same certificate and key were imported before */
};

/*
 * Imports cert with its key (which must match: MDM_ERR_FORBIDDEN
 * otherwise) under key_uri.  The topic's row is replaced by a renewed
 * certificate; earlier certificates stay in mdm.certificate.  An expired
 * certificate is imported with a warning (now decides).
 */
MDM_WUR mdm_err push_cert_import(db *d, struct x509_st *cert, struct evp_pkey_st *key,
        const char *key_uri, time_t now, char topic[PUSH_MAX_TOPIC + 1],
        enum push_import_result *result);

/*
 * The topic enrollment profiles carry: config mdm_topic when set (it must
 * be a valid topic), else that of the single row of mdm.push_cert.
 * MDM_ERR_CONFIG when none is imported or several are and mdm_topic is
 * unset (logged).
 */
MDM_WUR mdm_err push_topic_get(db *d, const config *cfg, char out[PUSH_MAX_TOPIC + 1]);

#endif
