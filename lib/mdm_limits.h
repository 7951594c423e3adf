/*
 * Every limit on untrusted input (requests, files, configuration), in one
 * place.  Each is enforced before the memory it bounds is allocated.
 * Change a value here, nowhere else.  What stays with its module is not an
 * input limit: protocol constants (SCEP_NONCE_LEN, X509_MAX_TIME,
 * PUSHCERT_MAX_TOPIC from Apple's topic form) and the sizes of our own
 * buffers and lists (ENROLL_MAX_WHY, DB_MAX_LISTEN, PUSHCERT_MAX_LISTED).
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

/* Challenges (SCEP challengePassword, RFC 2985 upper bound; OTA phase 2). */
#define MDM_MAX_CHALLENGE 255

/* Check-in plists, beyond the plist limits (real: tokens 32 bytes, strings < 100). */
#define CHECKIN_MAX_STRING    1024
#define CHECKIN_MAX_TOPIC     255
#define CHECKIN_MAX_TOKEN     256
#define CHECKIN_MAX_BOOTSTRAP (64 * 1024)
/* A DeclarativeManagement status report (Data); sql/025 holds the same bound. */
#define CHECKIN_MAX_DDM_DATA (192 * 1024)
/* Largest UDID, EnrollmentID or UserID we accept (they are 25 to 40 characters). */
#define IDENTITY_MAX_ID 128

/* SCEP pkiMessages and CMS, beyond MDM_MAX_BODY_SCEP (real: 6 to 8 attributes, 1 to 4
 * certificates). */
#define SCEP_MAX_TRANSID       128 /* transactionID, printable string, bytes */
#define CMS_MAX_SIGNED_ATTRS   32
#define CMS_MAX_CERTS          32
#define CMS_MAX_SIGNATURE      (32 * 1024) /* a detached signature, DER (real ones: 2-5 KiB) */
#define CMS_MAX_SIGNED_MESSAGE MDM_MAX_BODY_ENROLL /* cms_verify_attached */

/* OTA phase 2 attributes (lib/ota.c). */
#define OTA_MAX_ATTRS    64   /* keys in the attributes dict */
#define OTA_MAX_ATTR_LEN 1024 /* bytes of one attribute value */

/* Certificates, CSRs, keys and CRLs (lib/x509.c). */
#define X509_MAX_DER              (64 * 1024) /* one certificate or CSR, DER */
#define X509_MAX_FILE             (64 * 1024) /* a PEM text, certificate or key file */
#define X509_MAX_URI              4096        /* a key path or URI */
#define X509_MAX_SUBJECT          1024        /* a CA subject string */
#define X509_MAX_SANS             16          /* subjectAltNames copied from a CSR */
#define X509_MAX_SAN_LEN          255         /* bytes of one of them */
#define X509_MAX_DAYS             36500       /* validity of a certificate */
#define X509_MAX_CRL_DAYS         3650        /* nextUpdate - thisUpdate */
#define X509_MAX_CRL_ENTRIES      (1 << 20)   /* revoked certificates in one CRL */
#define X509_MIN_RSA_BITS         2048        /* x509_key_generate_rsa */
#define X509_MAX_RSA_BITS         8192
#define X509_DEFAULT_MIN_RSA_BITS 2048 /* x509_issue_policy.min_rsa_bits <= 0 */
#define X509_MAX_CHAIN            8    /* certificates in one PEM chain file */
#define X509_MAX_PASSWORD         1024 /* a PKCS#12 password */

/* Apple device attestation objects (lib/attest.c, ACME device-attest-01; real: 3-5 KiB). */
#define MDM_ATTEST_MAX_BYTES (64 * 1024) /* the whole CBOR attestation object */
#define ATTEST_MAX_X5C       4           /* certificates in attStmt.x5c */
#define ATTEST_MAX_CERT      (16 * 1024) /* one of them, DER */
#define ATTEST_MAX_AUTHDATA  (16 * 1024) /* authData bytes */

/* What goes into a profile from configuration (lib/profile.c). */
#define PROFILE_MAX_URL   1024 /* a URL in a profile */
#define PROFILE_MAX_VALUE 1024 /* an organization, identifier, subject, challenge */
#define PROFILE_MAX_RDNS  16   /* RDNs of the SCEP Subject */

/* JSON (lib/json.c) and JWS (lib/x509_jws.c), as ACME requests carry them (real: < 4 KiB). */
#define MDM_JSON_MAX_BYTES (64 * 1024)        /* one JSON text */
#define MDM_JSON_MAX_DEPTH 32                 /* nested arrays/objects */
#define MDM_JSON_MAX_NODES 4096               /* values in one text */
#define JWS_MAX_BODY       MDM_JSON_MAX_BYTES /* a flattened JWS (jws_parse) */
#define JWS_MAX_PROTECTED  (8 * 1024)         /* decoded protected header */
#define JWS_MAX_URL        2048               /* protected "url", bytes */
#define JWS_MAX_NONCE      256                /* protected "nonce", base64url characters */
#define JWS_MAX_KID        2048               /* protected "kid" (an account URL), bytes */
#define JWS_MIN_RSA_BITS   2048               /* an RSA JWK's modulus (RFC 7518 section 3.3) */
#define JWS_MAX_RSA_BITS   8192

/* Configuration values with a size of their own. */
#define ENROLL_MIN_TOKEN 16 /* enroll_token, characters */
#define FCGI_MAX_PROXIES 32 /* trusted_proxies entries */

/* acme.fcgi's request bodies: one flattened JWS (real: under 16 KiB with an attestation). */
#define MDM_MAX_BODY_ACME JWS_MAX_BODY

#endif
