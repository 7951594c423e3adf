/*
 * Over-the-air enrollment (Apple "Over-the-Air Profile Delivery and
 * Configuration"), the profile service behind enroll.fcgi:
 *
 *   phase 1  GET: a signed profile with a Profile Service payload (the
 *            URL to POST to, the DeviceAttributes wanted, a one-time
 *            challenge of purpose 'ota' recording the push topic chosen
 *            as for GET /enroll).
 *   phase 2  POST: the attributes plist in a CMS SignedData signed by the
 *            device's Apple-issued certificate (chain to ota_trust_file,
 *            x509_verify_pinned).  The challenge is spent, the attributes
 *            stored (mdm.ota_enrollment), and the answer is a signed
 *            profile with a SCEP payload whose one-time challenge is bound
 *            to the UDID and carries the topic on.
 *   phase 3  POST: the attributes again, signed by the identity our CA
 *            issued over that SCEP (x509_verify_issued, recorded for that
 *            UDID in mdm.certificate).  The answer is the enrollment
 *            profile (SCEP + MDM payloads, the MDM payload naming the topic
 *            recorded with the SCEP challenge that issued the identity)
 *            with its payloads encrypted to that certificate
 *            (EncryptedPayloadContent), the whole signed.
 *
 * Phase 2 and 3 are told apart by who signed, never by the body: a
 * signer whose issuer is one of our CA certificates is held to phase 3's
 * rules and nothing else; any other signer to phase 2's.
 *
 * Who owns what in an enrollment profile, in all three modules: enroll.c
 * decides who gets one and for which topic and holds the per-process
 * state (signer, defaults); profile.c builds every payload (what keys a
 * payload has and how its values are checked); ota.c runs the profile
 * service's phases and, for phase 3, encrypts what profile.c built.
 * Signing is cms.c's, for all of them.
 */
#ifndef MDM_OTA_H
#define MDM_OTA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mdm_limits.h"
#include "ca.h"
#include "config.h"
#include "db.h"
#include "enroll.h"
#include "errors.h"
#include "identity.h"
#include "plist.h"
#include "x509.h"

#define OTA_PATH "/enroll/ota" /* appended to public_url: the service URL */

enum ota_phase { OTA_PHASE2 = 2, OTA_PHASE3 = 3 };

/* The certificates of ota_trust_file (Apple Root CA and Apple's device CAs). */
struct ota_trust {
	struct x509_st **certs;
	size_t n;
};
/* MDM_ERR_CONFIG (logged with the key) when the file cannot be loaded. */
MDM_WUR mdm_err ota_trust_load(const config *cfg, struct ota_trust **out);
void ota_trust_free(struct ota_trust *t);

/* A phase-2 or phase-3 message, its signature and signer verified. */
struct ota_msg {
	enum ota_phase phase;
	struct x509_st *signer; /* owned */
	char signer_sha256[X509_FP_HEX_LEN + 1];
	char signer_subject[512];
	char signer_issuer[512];
	char udid[IDENTITY_MAX_ID + 1];
	char *challenge;  /* phase 2 (required), or NULL; a secret */
	char *attrs_json; /* the attributes without CHALLENGE, a JSON object */
};

/*
 * Verifies der (the POST body) at time now: the CMS allow-list of
 * cms_verify_attached, then the signer: issued by one of cas (our CA,
 * current and previous) -> phase 3, held to x509_verify_issued with
 * clientAuth; otherwise -> phase 2, held to x509_verify_pinned against
 * apple.  Then the attributes: a dict of at most OTA_MAX_ATTRS string or
 * boolean values of at most OTA_MAX_ATTR_LEN bytes, UDID a valid
 * identifier, CHALLENGE required in phase 2.  MDM_ERR_LIMIT over the
 * size limit, MDM_ERR_PARSE for a malformed message or attributes,
 * MDM_ERR_FORBIDDEN for a signature or signer refused; each logged once
 * with the rule.  *out is cleared on entry; release with ota_msg_clear.
 */
MDM_WUR mdm_err ota_msg_parse(const uint8_t *der, size_t len, const struct ota_trust *apple,
        struct x509_st *const *cas, size_t ncas, time_t now, struct ota_msg *out);
void ota_msg_clear(struct ota_msg *m);

/*
 * Phase 1: the signed Profile Service profile (DER) with a new challenge
 * (mdm.ota_challenge_new, valid enroll_challenge_ttl) that records topic
 * (enroll_topic_choose's) for phases 2 and 3, service_url the URL devices
 * POST to.  Free *der with enroll_free_secret.  MDM_ERR_NOT_FOUND (no
 * challenge made) when the topic is not imported.
 */
MDM_WUR mdm_err ota_service_profile(db *d, const config *cfg, const struct enroll_state *st,
        const char *service_url, const char *topic, uint8_t **der, size_t *derlen);

/*
 * The profile phase 2 or 3 answers, unsigned (ota_answer signs it; `mdmctl
 * profile ota-answer` prints it): phase 2 the identity-only profile
 * (enroll_profile_tree without the MDM payload) whose SCEP challenge is
 * bound to udid and records topic (NULL: none); phase 3 the enrollment
 * profile naming topic (required) with its payloads encrypted to
 * recipient (required, the device identity: profile_encrypt).  No
 * ota_enrollment row, no check of the device: ota_answer does those.
 * MDM_ERR_CONFLICT (logged) when the topic is no longer imported.
 */
MDM_WUR mdm_err ota_answer_profile(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, enum ota_phase phase, const char *udid, const char *topic,
        struct x509_st *recipient, plist **out);

/*
 * Phases 2 and 3 in one database transaction: the checks that need the
 * database (phase 2: the challenge unspent, of purpose 'ota', unexpired,
 * now spent; phase 3: the signer recorded as a device certificate of
 * m->udid, unrevoked), the mdm.ota_enrollment row, and the signed answer
 * (DER, free with enroll_free_secret: it holds a challenge).  Nothing is
 * stored when anything fails.  MDM_ERR_FORBIDDEN (logged) for a refusal.
 */
MDM_WUR mdm_err ota_answer(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, const struct ota_msg *m, uint8_t **der, size_t *derlen);

#endif
