/*
 * Every limit on untrusted input, in one place.  Each is enforced before
 * the memory it bounds is allocated.  Change a value here, nowhere else.
 */
#ifndef MDM_LIMITS_H
#define MDM_LIMITS_H

/* HTTP request bodies, per endpoint (bytes).  Over the limit: 413. */
#define MDM_MAX_BODY_SCEP    (64 * 1024)       /* PKIOperation; real ones are 2-8 KiB */
#define MDM_MAX_BODY_ENROLL  (64 * 1024)       /* OTA phase 2/3 signed attributes */
#define MDM_MAX_BODY_CHECKIN (256 * 1024)      /* check-in plists, bootstrap token */
#define MDM_MAX_BODY_SERVER  (8 * 1024 * 1024) /* command results (app lists) */
/* The largest of the above: Apache's LimitRequestBody must not be lower. */
#define MDM_MAX_BODY_ANY MDM_MAX_BODY_SERVER

/* HTTP request metadata. */
#define MDM_MAX_HEADER_VALUE (64 * 1024) /* a header (Mdm-Signature, client cert) */
#define MDM_MAX_QUERY        (64 * 1024) /* SCEP GET PKIOperation carries base64 */

/* Apple XML property lists. */
#define PLIST_MAX_BYTES  MDM_MAX_BODY_ANY  /* whole document */
#define PLIST_MAX_DEPTH  64                /* nested dict/array levels */
#define PLIST_MAX_NODES  (256 * 1024)      /* values in one document */
#define PLIST_MAX_STRING (4 * 1024 * 1024) /* one string, key or decoded <data> */

/* Logging: one line, never longer than this (bytes, including the newline). */
#define LOG_MAX_LINE 2048

/* Configuration file. */
#define CONFIG_MAX_FILE  (64 * 1024)
#define CONFIG_MAX_VALUE 4096

/* APNs answers (lib/apns.c): what Apple sends back to a push. */
#define APNS_MAX_RESPONSE 1024 /* body ({"reason":...}); more is cut and unparsed */
#define APNS_MAX_REASON   64   /* Apple's reason string (BadDeviceToken ...) */
#define APNS_MAX_ID       64   /* apns-id header (a UUID) */
/* What we send: device tokens (bytes; Apple's are 32, "may vary") and PushMagic. */
#define APNS_MIN_TOKEN 16
#define APNS_MAX_TOKEN 100
#define APNS_MAX_MAGIC 128
#define APNS_MAX_URL   512 /* apns_url */

#endif
