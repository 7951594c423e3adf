/*
 * pushcert: MDM push certificates (APNs), not pushes: import into
 * mdm.certificate (kind push) and mdm.push_cert, and the topic the
 * enrollment profile names.  The push queue is pushq, the HTTP/2 client
 * that sends pushes apns.  The topic is the certificate subject's UID,
 * which Apple's MDM protocol requires to be com.apple.mgmt.External.<UUID>;
 * the private key stays where key_uri points (an absolute file path or a
 * pkcs11: URI).
 */
#ifndef MDM_PUSHCERT_H
#define MDM_PUSHCERT_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "errors.h"

struct x509_st;
struct evp_pkey_st;

#define PUSHCERT_TOPIC_PREFIX "com.apple.mgmt.External."
/* The prefix and a 36-character UUID. */
#define PUSHCERT_MAX_TOPIC (sizeof(PUSHCERT_TOPIC_PREFIX) - 1 + 36)

/* 1 if topic is com.apple.mgmt.External.<UUID> (hex digits, 8-4-4-4-12). */
int pushcert_topic_valid(const char *topic);

/*
 * The APNs topic of a push certificate (its subject UID) in
 * out[PUSHCERT_MAX_TOPIC + 1].  MDM_ERR_PARSE (logged, citing Apple's rule)
 * when there is no UID or it is not a valid topic.
 */
MDM_WUR mdm_err pushcert_topic(const struct x509_st *cert, char out[PUSHCERT_MAX_TOPIC + 1]);

enum pushcert_import_result {
	PUSHCERT_IMPORTED,  /* a new topic */
	PUSHCERT_REPLACED,  /* the topic's certificate was replaced (a renewal) */
	PUSHCERT_UNCHANGED, /* the same certificate and key were imported before */
};

/*
 * Imports cert with its key (which must match: MDM_ERR_FORBIDDEN
 * otherwise) under key_uri.  The topic's row is replaced by a renewed
 * certificate; earlier certificates stay in mdm.certificate.  An expired
 * certificate is imported with a warning (now decides).
 */
MDM_WUR mdm_err pushcert_import(db *d, struct x509_st *cert, struct evp_pkey_st *key,
        const char *key_uri, time_t now, char topic[PUSHCERT_MAX_TOPIC + 1],
        enum pushcert_import_result *result);

/* Topics named in one answer or log line at most (pushcert_topics_get). */
#define PUSHCERT_MAX_LISTED 8

/* What is imported, as enrollment needs to know it (pushcert_topics_get). */
struct pushcert_topics {
	long long n;      /* push certificates imported (topics) */
	int wanted_found; /* the topic asked about is one of them */
	/* The first PUSHCERT_MAX_LISTED topics in order, ", " between, "" when none. */
	char list[PUSHCERT_MAX_LISTED * (PUSHCERT_MAX_TOPIC + 2) + 1];
	/* n == 1: that topic, if it is a valid one ("" otherwise). */
	char only[PUSHCERT_MAX_TOPIC + 1];
};

/*
 * One cheap query over mdm.push_cert (topic names only: no certificate or
 * key is read): how many topics, whether wanted (NULL: none) is one of
 * them, and the first few to name in an answer.
 */
MDM_WUR mdm_err pushcert_topics_get(db *d, const char *wanted, struct pushcert_topics *out);

/*
 * Removes topic's push certificate (mdm.push_cert_remove, in one
 * transaction).  *active: the active enrollments using the topic, also
 * when refused.  MDM_ERR_CONFLICT when some exist and !force,
 * MDM_ERR_NOT_FOUND when the topic is not imported, MDM_ERR_INVAL for a
 * topic over PUSHCERT_MAX_TOPIC + 200 bytes.  key_uri (cap bytes) receives
 * where its key is: the key is left there.  The certificate stays in
 * mdm.certificate and enrollments keep their topic.
 */
MDM_WUR mdm_err pushcert_remove(
        db *d, const char *topic, int force, long long *active, char *key_uri, size_t cap);

#endif
