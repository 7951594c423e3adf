/*
 * Enrollment: who may fetch the enrollment profile (enroll_auth), which
 * push topic it names (one of the imported ones: the request's ?topic=,
 * its Apache Location's, mdm_topic, or the only one), the state a program
 * loads once (signer certificate, key and chain, the default topic, the
 * CA's name, the profile settings), and the profile itself: a fresh
 * one-time SCEP challenge from mdm.scep_challenge_new recording the topic,
 * built by lib/profile, signed by lib/cms.  Shared by enroll.fcgi and
 * `mdmctl profile enroll`.
 *
 * Who owns what in an enrollment profile, in all three modules: enroll.c
 * decides who gets one and for which topic and holds the per-process
 * state (signer, defaults); profile.c builds every payload (what keys a
 * payload has and how its values are checked); ota.c runs the profile
 * service's phases and, for phase 3, encrypts what profile.c built.
 * Signing is cms.c's, for all of them.
 */
#ifndef MDM_ENROLL_H
#define MDM_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include "mdm_limits.h"
#include "config.h"
#include "db.h"
#include "errors.h"
#include "plist.h"
#include "profile.h"
#include "pushcert.h"
#include "x509.h"

struct x509_st;
struct evp_pkey_st;

enum enroll_auth { ENROLL_AUTH_OPEN, ENROLL_AUTH_TOKEN, ENROLL_AUTH_APACHE };

struct enroll_state {
	/* NULL when loaded without the signer (mdmctl profile enroll --unsigned). */
	struct x509_st *signer;
	struct evp_pkey_st *key;
	struct x509_st **chain;
	size_t nchain;
	char default_topic[PUSHCERT_MAX_TOPIC + 1]; /* mdm_topic, "" when unset */
	char ca_name[512];              /* the active CA's at load (each profile reads it anew) */
	uint8_t ca_sha1[X509_SHA1_LEN]; /* its CAFingerprint at load */
	int scep_retries, scep_retry_delay; /* enroll_scep_retries, enroll_scep_retry_delay */
	int pinning, pin_revocation;        /* mdm_pinning, mdm_pinning_revocation_check */
	int identity_acme;                  /* enroll_identity = acme */
	enum enroll_auth auth;
	int ttl; /* enroll_challenge_ttl, seconds */
	int sign_message, checkout_when_removed;
	int access_rights;
	/*
	 * tls_trust_ca_file's certificates in the file's order, else the CA
	 * certificates of a private tls_server_chain_file (root first), else
	 * none: each anchor's data and name point into anchor_data and
	 * anchor_name, owned here.
	 */
	struct profile_anchor anchors[PROFILE_MAX_ANCHORS];
	uint8_t *anchor_data[PROFILE_MAX_ANCHORS];
	char anchor_name[PROFILE_MAX_ANCHORS][256];
	size_t nanchors;
};

/*
 * Reads and checks every enrollment setting (mdm_topic, when set, must be
 * a valid topic; whether it is imported is decided per request), loads
 * the signer (profile_signer_cert/key/chain; the key must match) when
 * with_signer, the active CA's name, and the trust anchors:
 * tls_trust_ca_file's (enroll_anchors_load), else those of
 * tls_server_chain_file (enroll_chain_anchors_load).  MDM_ERR_CONFIG (logged with the key to
 * fix) for a missing or bad setting.
 */
MDM_WUR mdm_err enroll_state_load(
        db *d, const config *cfg, int with_signer, struct enroll_state **out);
void enroll_state_free(struct enroll_state *st);

/*
 * tls_trust_ca_file (path; NULL or "": none) into st->anchors: a PEM file
 * of 1 to PROFILE_MAX_ANCHORS CERTIFICATE blocks, at most X509_MAX_FILE
 * bytes, each a CA certificate (basicConstraints cA); a self-signed one
 * becomes a com.apple.security.root payload (its DER), any other a
 * com.apple.security.pem payload (its PEM).  MDM_ERR_CONFIG (logged,
 * naming the certificate and the rule) otherwise; st unchanged then.
 */
MDM_WUR mdm_err enroll_anchors_load(struct enroll_state *st, const char *path);

/*
 * tls_server_chain_file (path; NULL or "": none), used when
 * tls_trust_ca_file is unset: the PEM chain the web server sends (the
 * server certificate first, each certificate followed by its issuer, at
 * most X509_MAX_CHAIN).  A chain that verifies to the system's public
 * trust store (x509_chain_public) gives no anchors (logged once: devices
 * trust it already); otherwise its last certificate must be a self-signed
 * root, which becomes a com.apple.security.root payload, and the
 * intermediates com.apple.security.pem payloads (the server certificate
 * none).  MDM_ERR_CONFIG (logged, naming the file and the rule) for an
 * unreadable file, a chain out of order, a private chain whose top is not
 * self-signed, a self-signed server certificate alone; st unchanged then.
 */
MDM_WUR mdm_err enroll_chain_anchors_load(struct enroll_state *st, const char *path);

/* A request to enroll.fcgi as enroll_authorize and enroll_admit see it. */
struct enroll_req {
	const char *query;          /* the query string (token=, topic=), or NULL */
	const char *remote_user;    /* Apache's REMOTE_USER, or NULL */
	const char *location_topic; /* Apache's MDM_MDM_TOPIC for this request, or NULL */
	const char *token_header;   /* the X-MDM-Enroll-Token header, or NULL */
	const char *authorization;  /* the Authorization header, or NULL */
};

/*
 * May this request have a profile?  enroll_auth = token takes the token
 * from the X-MDM-Enroll-Token header, "Authorization: Bearer <token>"
 * (RFC 6750 2.1) or ?token= (which lands in access logs); when several are
 * given they must all match.  remote_user: Apache's REMOTE_USER (NULL
 * when unset).  MDM_ERR_FORBIDDEN (logged with the reason, never the
 * token) when not.
 */
MDM_WUR mdm_err enroll_authorize(
        const struct enroll_state *st, const config *cfg, const struct enroll_req *req);

/* Room for the one-line explanation enroll_topic_choose and enroll_admit give. */
#define ENROLL_MAX_WHY 768

/*
 * The request's ?topic= (untrusted): decoded into out without allocating,
 * at most PUSHCERT_MAX_TOPIC bytes, no NUL inside, given once, and
 * com.apple.mgmt.External.<UUID>.  MDM_ERR_NOT_FOUND when absent,
 * MDM_ERR_PARSE (logged, the value never echoed) otherwise; out is ""
 * unless MDM_OK.
 */
MDM_WUR mdm_err enroll_topic_from_query(const char *query, char out[PUSHCERT_MAX_TOPIC + 1]);

/*
 * The topic of one profile, among the imported ones (one query of topic
 * names, pushcert_topics_get):
 *   - requested (?topic=, `mdmctl profile enroll --topic`): that one;
 *   - location (Apache's MDM_MDM_TOPIC for this request, set with SetEnv
 *     in a <Location>; NULL or "": none) is the only topic that Location
 *     serves: a different requested one is refused;
 *   - else mdm_topic (st->default_topic), else the only one imported.
 * MDM_ERR_PARSE (400): requested is not a topic.  MDM_ERR_FORBIDDEN
 * (403): requested differs from the Location's.  MDM_ERR_NOT_FOUND (404):
 * requested is not imported.  MDM_ERR_CONFLICT (409): several imported
 * and none chosen, or the Location's or mdm_topic is not imported (any
 * more).  MDM_ERR_CONFIG (500): none imported, or a Location's value is
 * not a topic.  Each logged once; why (whycap bytes) gets the answer's
 * text, naming the imported topics where it helps (never a secret): call
 * it only for a request enroll_authorize admitted (enroll_admit does).
 */
MDM_WUR mdm_err enroll_topic_choose(db *d, const struct enroll_state *st, const char *requested,
        const char *location, char out[PUSHCERT_MAX_TOPIC + 1], char *why, size_t whycap);

/*
 * enroll_authorize, then (only for an admitted request, so that nobody
 * who may not fetch a profile learns a topic) enroll_topic_from_query and
 * enroll_topic_choose.  Their errors; why as for enroll_topic_choose.
 */
MDM_WUR mdm_err enroll_admit(db *d, const struct enroll_state *st, const config *cfg,
        const struct enroll_req *req, char topic[PUSHCERT_MAX_TOPIC + 1], char *why, size_t whycap);

/*
 * The enrollment profile's XML with a new one-time challenge, naming
 * topic (enroll_topic_choose's).  public_url NULL: config public_url.
 * *xml (NUL-ended, free with enroll_free_secret: it holds the challenge)
 * on MDM_OK.  MDM_ERR_NOT_FOUND (and no challenge made) when the topic is
 * no longer imported.
 */
MDM_WUR mdm_err enroll_profile_xml(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, const char *topic, char **xml, size_t *len);

/*
 * The same as a tree: the challenge bound to udid (NULL: unbound) and
 * recording topic, the MDM payload left out unless with_mdm (OTA phase
 * 2's identity profile, where topic may be NULL).
 */
MDM_WUR mdm_err enroll_profile_tree(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, const char *udid, const char *topic, int with_mdm, plist **out);

/* plist_serialize, a failure logged as the configuration's (MDM_ERR_CONFIG). */
MDM_WUR mdm_err enroll_serialize(const plist *profile, char **xml, size_t *len);

/* Signs xml (CMS SignedData, content attached, DER); st must have a signer. */
MDM_WUR mdm_err enroll_profile_sign(
        const struct enroll_state *st, const char *xml, size_t len, uint8_t **der, size_t *derlen);

/* Wipes and frees a buffer that held a challenge. */
void enroll_free_secret(void *p, size_t len);

#endif
