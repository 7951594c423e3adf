/*
 * Configuration profiles (Apple "Configuration Profile Reference"): the
 * enrollment profile as a plist tree, with a SCEP payload
 * (com.apple.security.scep) for the device identity and an MDM payload
 * (com.apple.mdm) that names that identity.  No outside library: the
 * tree is lib/plist's, randomness comes from getrandom(2).
 *
 * Every string that reaches the profile is checked here: URLs must be
 * printable ASCII without query or fragment, the other values free of
 * control characters, so a bad configuration is a clear error rather than
 * a profile the device refuses.
 *
 * Who owns what in an enrollment profile, in all three modules: enroll.c
 * decides who gets one and for which topic and holds the per-process
 * state (signer, defaults); profile.c builds every payload (what keys a
 * payload has and how its values are checked); ota.c runs the profile
 * service's phases and, for phase 3, encrypts what profile.c built.
 * Signing is cms.c's, for all of them.
 */
#ifndef MDM_PROFILE_H
#define MDM_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "mdm_limits.h"
#include "errors.h"
#include "plist.h"

#define PROFILE_UUID_LEN          36 /* 8-4-4-4-12, upper-case hex */
#define PROFILE_ACCESS_RIGHTS_MAX 8191
#define PROFILE_MAX_ANCHORS       8 /* trust anchor payloads in one profile */
/* SCEP payload Retries (schema default 3) and RetryDelay (seconds, default 10). */
#define PROFILE_SCEP_RETRIES_MAX     1000
#define PROFILE_SCEP_RETRY_DELAY_MAX 3600

/*
 * A trust anchor of the HTTPS chain devices see (config tls_trust_ca_file,
 * or the CA certificates of tls_server_chain_file),
 * carried before the MDM payload.  root: a self-signed CA certificate, as
 * com.apple.security.root (Apple schema com.apple.security.root.yaml:
 * PayloadContent, data, the DER); else an intermediate CA certificate, as
 * com.apple.security.pem (com.apple.security.pem.yaml: PayloadContent,
 * data, the PEM text).  name: the certificate's CN, for the payload's
 * display name and file name.
 */
struct profile_anchor {
	const uint8_t *data;
	size_t len;
	int root;
	const char *name;
};

/* A fresh random (version 4) UUID, upper case as Apple writes them. */
MDM_WUR mdm_err profile_uuid_new(char out[PROFILE_UUID_LEN + 1]);

/*
 * A base or endpoint URL: http:// or https:// (https only when
 * https_only), a non-empty host, printable ASCII (no space), no query or
 * fragment, at most PROFILE_MAX_URL bytes.  MDM_ERR_CONFIG (logged with
 * what, e.g. "public_url") otherwise.
 */
MDM_WUR mdm_err profile_url_check(const char *what, const char *url, int https_only);

/*
 * The SCEP payload's Subject from openssl -subj syntax ("/O=MDM/CN=x":
 * outermost RDN first, \/ and \\ escape; types C ST L O OU CN DC UID
 * serialNumber emailAddress): Apple's array of RDNs, each an array of one
 * [type, value] array.  MDM_ERR_CONFIG for anything else.
 */
MDM_WUR mdm_err profile_subject_parse(const char *subject, plist **out);

struct profile_enroll_params {
	const char *public_url;    /* https base: <base>/mdm/checkin, <base>/mdm/server */
	const char *scep_url;      /* NULL: <public_url>/scep */
	const char *scep_name;     /* SCEP payload Name (the CA's name) */
	const char *scep_subject;  /* openssl -subj syntax */
	const char *challenge;     /* the one-time challenge (a secret: never logged) */
	const char *topic;         /* com.apple.mgmt.External.<uuid> */
	const char *organization;  /* PayloadOrganization */
	const char *identifier;    /* reverse-DNS prefix of PayloadIdentifier */
	int64_t access_rights;     /* 1..PROFILE_ACCESS_RIGHTS_MAX */
	int sign_message;          /* SignMessage */
	int checkout_when_removed; /* CheckOutWhenRemoved */
	/*
	 * CAFingerprint (com.apple.security.scep.yaml): the SHA-1 (20 bytes) or
	 * MD5 (16) of the DER of the CA certificate GetCACert returns, the
	 * only lengths devices accept; NULL: left out.
	 */
	const uint8_t *ca_fingerprint;
	size_t ca_fingerprint_len;
	/* Retries and RetryDelay (seconds) after a PENDING answer; see the limits below. */
	int64_t scep_retries, scep_retry_delay;
	/* Trust anchor payloads, before the MDM payload (with the MDM payload only). */
	const struct profile_anchor *anchors;
	size_t nanchors; /* 0..PROFILE_MAX_ANCHORS */
	/*
	 * Pinning (com.apple.mdm.yaml): ServerURLPinningCertificateUUIDs and
	 * CheckInURLPinningCertificateUUIDs name every anchor payload, and
	 * PinningRevocationCheckRequired is pin_revocation.  Needs anchors.
	 */
	int pinning, pin_revocation;
	/*
	 * The identity payload: 0 SCEP (com.apple.security.scep, challenge is
	 * its Challenge), 1 ACME (com.apple.security.acme.yaml: a P-384 key in
	 * the Secure Enclave, HardwareBound and Attest, so that Apple attests
	 * the device and the key (ACME device-attest-01); challenge is its
	 * ClientIdentifier, scep_subject its Subject).  acme_url NULL:
	 * <public_url>/acme/directory.
	 */
	int identity_acme;
	const char *acme_url;
};

/*
 * The enrollment profile: a Configuration payload whose PayloadContent
 * holds the identity payload (SCEP or ACME), the trust anchors (one
 * payload each, in order) and the MDM payload (IdentityCertificateUUID =
 * the identity payload's PayloadUUID), every PayloadUUID fresh.
 * MDM_ERR_CONFIG (logged) for a bad parameter.
 */
MDM_WUR mdm_err profile_enroll_build(const struct profile_enroll_params *p, plist **out);

/*
 * The same without the MDM payload and the anchors: OTA phase 2's answer
 * (an identity over SCEP only); topic and anchors are not used.
 */
MDM_WUR mdm_err profile_scep_build(const struct profile_enroll_params *p, plist **out);

struct profile_service_params {
	const char *url;          /* where phases 2 and 3 are POSTed (https) */
	const char *challenge;    /* one-time, purpose 'ota' (a secret: never logged) */
	const char *organization; /* PayloadOrganization */
	const char *identifier;   /* reverse-DNS prefix of PayloadIdentifier */
};

/*
 * OTA phase 1 (Apple "Over-the-Air Profile Delivery and Configuration"):
 * a Profile Service payload asking for UDID, IMEI, ICCID, VERSION,
 * PRODUCT, SERIAL, MAC_ADDRESS_EN0 and DEVICE_NAME with the Challenge.
 */
MDM_WUR mdm_err profile_service_build(const struct profile_service_params *p, plist **out);

struct x509_st;
/*
 * Encrypts a profile's payloads to recipient (the device identity
 * certificate): PayloadContent (an array of payloads) is serialized as a
 * plist, enveloped by cms_encrypt (AES-256, the RSA key only wraps the
 * content key) and replaced by EncryptedPayloadContent (<data>, DER),
 * with IsEncrypted true (Apple schema TopLevel.yaml: EncryptedPayloadContent
 * "if IsEncrypted is true"); every other key stays in clear.  MDM_ERR_PARSE when PayloadContent is
 * not an array.  On failure the profile is unchanged.
 */
MDM_WUR mdm_err profile_encrypt(plist *profile, struct x509_st *recipient);

#endif
