/*
 * Enrollment: who may fetch the enrollment profile (enroll_auth), the
 * state a program loads once (signer certificate, key and chain, the
 * push topic, the CA's name, the profile settings), and the profile
 * itself: a fresh one-time SCEP challenge from mdm.scep_challenge_new,
 * built by lib/profile, signed by lib/cms.  Shared by enroll.fcgi and
 * `mdmctl profile enroll`.
 */
#ifndef MDM_ENROLL_H
#define MDM_ENROLL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "errors.h"
#include "plist.h"
#include "push.h"

struct x509_st;
struct evp_pkey_st;

#define ENROLL_MIN_TOKEN 16

enum enroll_auth { ENROLL_AUTH_OPEN, ENROLL_AUTH_TOKEN, ENROLL_AUTH_APACHE };

struct enroll_state {
	/* NULL when loaded without the signer (mdmctl profile enroll --unsigned). */
	struct x509_st *signer;
	struct evp_pkey_st *key;
	struct x509_st **chain;
	size_t nchain;
	char topic[PUSH_MAX_TOPIC + 1];
	char ca_name[512];
	enum enroll_auth auth;
	int ttl; /* enroll_challenge_ttl, seconds */
	int sign_message, checkout_when_removed;
	int access_rights;
};

/*
 * Reads and checks every enrollment setting, loads the signer
 * (profile_signer_cert/key/chain; the key must match) when with_signer,
 * the topic (push_topic_get) and the active CA's name.  MDM_ERR_CONFIG
 * (logged with the key to fix) for a missing or bad setting.
 */
MDM_WUR mdm_err enroll_state_load(
        db *d, const config *cfg, int with_signer, struct enroll_state **out);
void enroll_state_free(struct enroll_state *st);

/*
 * May this request have a profile?  query is the request's query string,
 * remote_user Apache's REMOTE_USER (NULL when unset).  MDM_ERR_FORBIDDEN
 * (logged with the reason, never the token) when not.
 */
MDM_WUR mdm_err enroll_authorize(const struct enroll_state *st, const config *cfg,
        const char *query, const char *remote_user);

/*
 * The enrollment profile's XML with a new one-time challenge.  public_url
 * NULL: config public_url.  *xml (NUL-ended, free with enroll_free_secret:
 * it holds the challenge) on MDM_OK.
 */
MDM_WUR mdm_err enroll_profile_xml(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, char **xml, size_t *len);

/*
 * The same as a tree: the challenge bound to udid (NULL: unbound), the
 * MDM payload left out unless with_mdm (OTA phase 2's identity profile).
 */
MDM_WUR mdm_err enroll_profile_tree(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, const char *udid, int with_mdm, plist **out);

/* plist_serialize, a failure logged as the configuration's (MDM_ERR_CONFIG). */
MDM_WUR mdm_err enroll_serialize(const plist *profile, char **xml, size_t *len);

/* Signs xml (CMS SignedData, content attached, DER); st must have a signer. */
MDM_WUR mdm_err enroll_profile_sign(
        const struct enroll_state *st, const char *xml, size_t len, uint8_t **der, size_t *derlen);

/* Wipes and frees a buffer that held a challenge. */
void enroll_free_secret(void *p, size_t len);

#endif
