/*
 * The enrollment profile (Apple "Configuration Profile Reference":
 * Configuration, SCEP and MDM payloads) as a plist tree.
 */
#include "profile.h"
#include "cms.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

mdm_err profile_uuid_new(char out[PROFILE_UUID_LEN + 1])
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char b[16];
	size_t got = 0, o = 0;

	out[0] = '\0';
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("profile: getrandom: %s", strerror(errno));
			return MDM_ERR_INTERNAL;
		}
		got += (size_t)n;
	}
	/* RFC 9562 5.4: version 4, variant 10. */
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 0x0f];
	}
	out[o] = '\0';
	return MDM_OK;
}

mdm_err profile_url_check(const char *what, const char *url, int https_only)
{
	const char *host;
	size_t len;

	if (url == NULL) {
		log_error("config: %s is required", what);
		return MDM_ERR_CONFIG;
	}
	len = strnlen(url, PROFILE_MAX_URL + 1);
	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (!https_only && strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else {
		log_error("config: %s must start with %s", what,
		        https_only ? "https:// (Apple MDM protocol: devices talk to the server "
		                     "over TLS)"
		                   : "http:// or https://");
		return MDM_ERR_CONFIG;
	}
	if (len > PROFILE_MAX_URL) {
		log_error("config: %s is longer than %d bytes", what, PROFILE_MAX_URL);
		return MDM_ERR_CONFIG;
	}
	if (*host == '\0' || *host == '/') {
		log_error("config: %s has no host", what);
		return MDM_ERR_CONFIG;
	}
	for (const char *p = url; *p != '\0'; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			log_error("config: %s may hold printable ASCII only (percent-encode the "
			          "rest)",
			        what);
			return MDM_ERR_CONFIG;
		}
		if (*p == '?' || *p == '#') {
			log_error("config: %s must not have a query or fragment", what);
			return MDM_ERR_CONFIG;
		}
	}
	return MDM_OK;
}

/* A configured text value: 1..PROFILE_MAX_VALUE bytes, no control characters. */
static MDM_WUR mdm_err text_check(const char *what, const char *v)
{
	size_t len;

	if (v == NULL || v[0] == '\0') {
		log_error("profile: %s is required", what);
		return MDM_ERR_CONFIG;
	}
	if ((len = strnlen(v, PROFILE_MAX_VALUE + 1)) > PROFILE_MAX_VALUE) {
		log_error("profile: %s is longer than %d bytes", what, PROFILE_MAX_VALUE);
		return MDM_ERR_CONFIG;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			log_error("profile: %s holds a control character (at byte %zu)", what, i);
			return MDM_ERR_CONFIG;
		}
	}
	return MDM_OK;
}

/* Reverse-DNS: labels of letters, digits and '-', separated by single dots. */
static MDM_WUR mdm_err identifier_check(const char *v)
{
	size_t len;

	if (text_check("profile_identifier", v) != MDM_OK)
		return MDM_ERR_CONFIG;
	len = strlen(v);
	if (len > 200 || v[0] == '.' || v[len - 1] == '.' || strstr(v, "..") != NULL ||
	        strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
	                len) {
		log_error("profile: profile_identifier must be reverse-DNS (com.example.mdm), "
		          "at most 200 bytes");
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

static const char *const subject_types[] = {
        "C", "ST", "L", "O", "OU", "CN", "DC", "UID", "serialNumber", "emailAddress"};

static const char *subject_type(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(subject_types) / sizeof(subject_types[0]); i++)
		if (strlen(subject_types[i]) == len && memcmp(subject_types[i], s, len) == 0)
			return subject_types[i];
	return NULL;
}

/* [[type, value]]: one RDN of Apple's Subject. */
static MDM_WUR mdm_err rdn_new(const char *type, const char *value, size_t vlen, plist **out)
{
	plist *pair = NULL, *rdn = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	*out = NULL;
	if ((pair = plist_new_array()) == NULL || (rdn = plist_new_array()) == NULL)
		goto out;
	if ((rc = plist_array_append(pair, plist_new_string(type))) != MDM_OK ||
	        (rc = plist_array_append(pair, plist_new_string_len(value, vlen))) != MDM_OK)
		goto out;
	rc = plist_array_append(rdn, pair);
	pair = NULL;
	if (rc != MDM_OK)
		goto out;
	*out = rdn;
	rdn = NULL;
out:
	plist_free(pair);
	plist_free(rdn);
	return rc;
}

mdm_err profile_subject_parse(const char *s, plist **out)
{
	plist *subj = NULL, *rdn = NULL;
	char value[PROFILE_MAX_VALUE + 1];
	size_t nrdn = 0;
	mdm_err rc = MDM_ERR_CONFIG;

	*out = NULL;
	if (s == NULL || strnlen(s, PROFILE_MAX_VALUE + 1) > PROFILE_MAX_VALUE || s[0] != '/') {
		log_error("config: enroll_scep_subject must be /TYPE=value/... of at most %d bytes",
		        PROFILE_MAX_VALUE);
		return MDM_ERR_CONFIG;
	}
	if ((subj = plist_new_array()) == NULL)
		return MDM_ERR_NOMEM;
	for (const char *p = s; *p == '/';) {
		const char *type = ++p, *eq = strchr(type, '='), *t;
		size_t vlen = 0;

		if (eq == NULL || (t = subject_type(type, (size_t)(eq - type))) == NULL) {
			log_error("config: enroll_scep_subject: unknown or missing attribute type "
			          "at offset %zu",
			        (size_t)(type - s));
			goto out;
		}
		if (++nrdn > PROFILE_MAX_RDNS) {
			log_error("config: enroll_scep_subject: more than %d attributes",
			        PROFILE_MAX_RDNS);
			goto out;
		}
		for (p = eq + 1; *p != '\0' && *p != '/'; p++) {
			if (*p == '\\') {
				if (p[1] != '/' && p[1] != '\\') {
					log_error("config: enroll_scep_subject: only \\/ and \\\\ "
					          "are escapes");
					goto out;
				}
				p++;
			}
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				log_error("config: enroll_scep_subject: control character in a "
				          "value");
				goto out;
			}
			value[vlen++] = *p;
		}
		if (vlen == 0) {
			log_error("config: enroll_scep_subject: empty value");
			goto out;
		}
		if ((rc = rdn_new(t, value, vlen, &rdn)) != MDM_OK)
			goto out;
		rc = plist_array_append(subj, rdn);
		rdn = NULL;
		if (rc != MDM_OK)
			goto out;
		rc = MDM_ERR_CONFIG;
	}
	*out = subj;
	subj = NULL;
	rc = MDM_OK;
out:
	plist_free(subj);
	return rc;
}

/* The keys every payload has (Configuration Profile Reference, "Payload"). */
static MDM_WUR mdm_err payload_common(plist *d, const char *type, const char *identifier,
        const char *suffix, const char *uuid, const char *display)
{
	char id[512];
	mdm_err rc;

	snprintf(id, sizeof(id), "%s%s", identifier, suffix);
	if ((rc = plist_dict_set(d, "PayloadType", plist_new_string(type))) != MDM_OK ||
	        (rc = plist_dict_set(d, "PayloadVersion", plist_new_integer(1))) != MDM_OK ||
	        (rc = plist_dict_set(d, "PayloadIdentifier", plist_new_string(id))) != MDM_OK ||
	        (rc = plist_dict_set(d, "PayloadUUID", plist_new_string(uuid))) != MDM_OK ||
	        (rc = plist_dict_set(d, "PayloadDisplayName", plist_new_string(display))) != MDM_OK)
		return rc;
	return MDM_OK;
}

static MDM_WUR mdm_err scep_payload(
        const struct profile_enroll_params *p, const char *scep_url, const char *uuid, plist **out)
{
	plist *d = NULL, *c = NULL, *subj = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	*out = NULL;
	if ((rc = profile_subject_parse(p->scep_subject, &subj)) != MDM_OK)
		return rc;
	rc = MDM_ERR_NOMEM;
	if ((d = plist_new_dict()) == NULL || (c = plist_new_dict()) == NULL)
		goto out;
	if ((rc = plist_dict_set(c, "URL", plist_new_string(scep_url))) != MDM_OK ||
	        (rc = plist_dict_set(c, "Name", plist_new_string(p->scep_name))) != MDM_OK)
		goto out;
	rc = plist_dict_set(c, "Subject", subj);
	subj = NULL;
	if (rc != MDM_OK)
		goto out;
	/* Key Usage 5: digital signature (1) and key encipherment (4). */
	if ((rc = plist_dict_set(c, "Challenge", plist_new_string(p->challenge))) != MDM_OK ||
	        (rc = plist_dict_set(c, "Keysize", plist_new_integer(2048))) != MDM_OK ||
	        (rc = plist_dict_set(c, "Key Type", plist_new_string("RSA"))) != MDM_OK ||
	        (rc = plist_dict_set(c, "Key Usage", plist_new_integer(5))) != MDM_OK)
		goto out;
	/* com.apple.security.scep.yaml: Retries and RetryDelay integers, CAFingerprint data. */
	if ((rc = plist_dict_set(c, "Retries", plist_new_integer(p->scep_retries))) != MDM_OK ||
	        (rc = plist_dict_set(c, "RetryDelay", plist_new_integer(p->scep_retry_delay))) !=
	                MDM_OK)
		goto out;
	if (p->ca_fingerprint != NULL &&
	        (rc = plist_dict_set(c, "CAFingerprint",
	                 plist_new_data(p->ca_fingerprint, p->ca_fingerprint_len))) != MDM_OK)
		goto out;
	if ((rc = payload_common(d, "com.apple.security.scep", p->identifier, ".enroll.scep", uuid,
	             "Device identity (SCEP)")) != MDM_OK)
		goto out;
	rc = plist_dict_set(d, "PayloadContent", c);
	c = NULL;
	if (rc != MDM_OK)
		goto out;
	*out = d;
	d = NULL;
out:
	plist_free(subj);
	plist_free(c);
	plist_free(d);
	return rc;
}

/*
 * The ACME payload (com.apple.security.acme.yaml): the device makes a
 * P-384 key in the Secure Enclave (HardwareBound: KeyType
 * ECSECPrimeRandom, KeySize 256 or 384), asks Apple to attest it and the
 * device (Attest, which needs HardwareBound), and sends ClientIdentifier
 * as the order's permanent-identifier.  UsageFlags 1 (digital
 * signature: TLS client authentication and Mdm-Signature) and the
 * clientAuth extended key usage are what the identity is for.
 */
static MDM_WUR mdm_err acme_payload(
        const struct profile_enroll_params *p, const char *acme_url, const char *uuid, plist **out)
{
	plist *d = NULL, *subj = NULL, *eku = NULL;
	mdm_err rc;

	*out = NULL;
	if ((rc = profile_subject_parse(p->scep_subject, &subj)) != MDM_OK)
		return rc;
	rc = MDM_ERR_NOMEM;
	if ((d = plist_new_dict()) == NULL || (eku = plist_new_array()) == NULL)
		goto out;
	if ((rc = plist_dict_set(d, "DirectoryURL", plist_new_string(acme_url))) != MDM_OK ||
	        (rc = plist_dict_set(d, "ClientIdentifier", plist_new_string(p->challenge))) !=
	                MDM_OK ||
	        (rc = plist_dict_set(d, "KeyType", plist_new_string("ECSECPrimeRandom"))) !=
	                MDM_OK ||
	        (rc = plist_dict_set(d, "KeySize", plist_new_integer(384))) != MDM_OK ||
	        (rc = plist_dict_set(d, "HardwareBound", plist_new_bool(1))) != MDM_OK ||
	        (rc = plist_dict_set(d, "Attest", plist_new_bool(1))) != MDM_OK ||
	        (rc = plist_dict_set(d, "UsageFlags", plist_new_integer(1))) != MDM_OK)
		goto out;
	rc = plist_dict_set(d, "Subject", subj);
	subj = NULL;
	if (rc != MDM_OK ||
	        (rc = plist_array_append(eku, plist_new_string("1.3.6.1.5.5.7.3.2"))) != MDM_OK)
		goto out;
	rc = plist_dict_set(d, "ExtendedKeyUsage", eku);
	eku = NULL;
	if (rc != MDM_OK)
		goto out;
	if ((rc = payload_common(d, "com.apple.security.acme", p->identifier, ".enroll.acme", uuid,
	             "Device identity (ACME, attested)")) != MDM_OK)
		goto out;
	*out = d;
	d = NULL;
out:
	plist_free(eku);
	plist_free(subj);
	plist_free(d);
	return rc;
}

/* An array of the anchor payloads' UUIDs, for the pinning keys. */
static MDM_WUR mdm_err pin_uuids(const struct profile_enroll_params *p,
        char (*anchor_uuids)[PROFILE_UUID_LEN + 1], plist **out)
{
	plist *a = plist_new_array();
	mdm_err rc = MDM_OK;

	*out = NULL;
	if (a == NULL)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < p->nanchors && rc == MDM_OK; i++)
		rc = plist_array_append(a, plist_new_string(anchor_uuids[i]));
	if (rc != MDM_OK) {
		plist_free(a);
		return rc;
	}
	*out = a;
	return MDM_OK;
}

/* The pinning keys of the MDM payload when p->pinning (com.apple.mdm.yaml). */
static MDM_WUR mdm_err mdm_pinning(
        const struct profile_enroll_params *p, char (*anchor_uuids)[PROFILE_UUID_LEN + 1], plist *d)
{
	static const char *const keys[] = {
	        "ServerURLPinningCertificateUUIDs", "CheckInURLPinningCertificateUUIDs"};
	plist *a = NULL;
	mdm_err rc;

	if (!p->pinning)
		return MDM_OK;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		if ((rc = pin_uuids(p, anchor_uuids, &a)) != MDM_OK ||
		        (rc = plist_dict_set(d, keys[k], a)) != MDM_OK)
			return rc;
		a = NULL;
	}
	return plist_dict_set(
	        d, "PinningRevocationCheckRequired", plist_new_bool(p->pin_revocation));
}

static MDM_WUR mdm_err mdm_payload(const struct profile_enroll_params *p, const char *uuid,
        const char *identity_uuid, char (*anchor_uuids)[PROFILE_UUID_LEN + 1], plist **out)
{
	char checkin[PROFILE_MAX_URL + 32], server[PROFILE_MAX_URL + 32];
	plist *d = NULL, *caps = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	*out = NULL;
	snprintf(checkin, sizeof(checkin), "%s/mdm/checkin", p->public_url);
	snprintf(server, sizeof(server), "%s/mdm/server", p->public_url);
	if ((d = plist_new_dict()) == NULL || (caps = plist_new_array()) == NULL)
		goto out;
	if ((rc = payload_common(d, "com.apple.mdm", p->identifier, ".enroll.mdm", uuid,
	             "Device management")) != MDM_OK)
		goto out;
	if ((rc = plist_array_append(
	             caps, plist_new_string("com.apple.mdm.per-user-connections"))) != MDM_OK ||
	        (rc = plist_array_append(caps, plist_new_string("com.apple.mdm.bootstraptoken"))) !=
	                MDM_OK)
		goto out;
	if ((rc = plist_dict_set(d, "ServerURL", plist_new_string(server))) != MDM_OK ||
	        (rc = plist_dict_set(d, "CheckInURL", plist_new_string(checkin))) != MDM_OK ||
	        (rc = plist_dict_set(d, "Topic", plist_new_string(p->topic))) != MDM_OK ||
	        (rc = plist_dict_set(d, "IdentityCertificateUUID",
	                 plist_new_string(identity_uuid))) != MDM_OK ||
	        (rc = plist_dict_set(d, "AccessRights", plist_new_integer(p->access_rights))) !=
	                MDM_OK ||
	        (rc = plist_dict_set(d, "SignMessage", plist_new_bool(p->sign_message))) !=
	                MDM_OK ||
	        (rc = plist_dict_set(d, "CheckOutWhenRemoved",
	                 plist_new_bool(p->checkout_when_removed))) != MDM_OK)
		goto out;
	rc = plist_dict_set(d, "ServerCapabilities", caps);
	caps = NULL;
	if (rc != MDM_OK || (rc = mdm_pinning(p, anchor_uuids, d)) != MDM_OK)
		goto out;
	*out = d;
	d = NULL;
out:
	plist_free(caps);
	plist_free(d);
	return rc;
}

/*
 * One trust anchor: com.apple.security.root (the DER of a self-signed CA)
 * or com.apple.security.pem (the PEM text of an intermediate), Apple
 * schemas com.apple.security.root.yaml and com.apple.security.pem.yaml:
 * PayloadContent (data, required), PayloadCertificateFileName (string).
 */
static MDM_WUR mdm_err anchor_payload(
        const struct profile_enroll_params *p, size_t i, const char *uuid, plist **out)
{
	const struct profile_anchor *a = &p->anchors[i];
	char suffix[64], display[PROFILE_MAX_VALUE + 64], file[64];
	plist *d = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	*out = NULL;
	snprintf(suffix, sizeof(suffix), ".enroll.anchor%zu", i + 1);
	snprintf(display, sizeof(display), "Server trust: %s", a->name);
	snprintf(file, sizeof(file), "tls-trust-%zu.%s", i + 1, a->root ? "cer" : "pem");
	if ((d = plist_new_dict()) == NULL)
		goto out;
	if ((rc = payload_common(d, a->root ? "com.apple.security.root" : "com.apple.security.pem",
	             p->identifier, suffix, uuid, display)) != MDM_OK ||
	        (rc = plist_dict_set(d, "PayloadCertificateFileName", plist_new_string(file))) !=
	                MDM_OK ||
	        (rc = plist_dict_set(d, "PayloadContent", plist_new_data(a->data, a->len))) !=
	                MDM_OK)
		goto out;
	*out = d;
	d = NULL;
out:
	plist_free(d);
	return rc;
}

static MDM_WUR mdm_err anchors_check(const struct profile_enroll_params *p)
{
	if (p->nanchors > PROFILE_MAX_ANCHORS || (p->nanchors > 0 && p->anchors == NULL)) {
		log_error("profile: at most %d trust anchor payloads", PROFILE_MAX_ANCHORS);
		return MDM_ERR_CONFIG;
	}
	for (size_t i = 0; i < p->nanchors; i++) {
		if (p->anchors[i].data == NULL || p->anchors[i].len == 0) {
			log_error("profile: trust anchor %zu is empty (Apple schema "
			          "com.apple.security.root.yaml: PayloadContent is required)",
			        i + 1);
			return MDM_ERR_CONFIG;
		}
		if (text_check("a trust anchor's name", p->anchors[i].name) != MDM_OK)
			return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

/* The MDM payload's topic only when there is one (with_mdm). */
static MDM_WUR mdm_err params_check(const struct profile_enroll_params *p, int with_mdm)
{
	mdm_err rc;

	if ((rc = profile_url_check("public_url", p->public_url, 1)) != MDM_OK)
		return rc;
	if (p->public_url[strlen(p->public_url) - 1] == '/') {
		log_error("config: public_url is a base URL: leave out the trailing /");
		return MDM_ERR_CONFIG;
	}
	if (p->scep_url != NULL && (rc = profile_url_check("scep_url", p->scep_url, 0)) != MDM_OK)
		return rc;
	/* com.apple.security.acme.yaml: DirectoryURL "must use the https scheme". */
	if (p->acme_url != NULL && (rc = profile_url_check("acme_url", p->acme_url, 1)) != MDM_OK)
		return rc;
	if (p->identity_acme && !with_mdm) {
		log_error(
		        "profile: OTA phase 2 answers with a SCEP identity; enroll_identity = acme "
		        "applies to the enrollment profile");
		return MDM_ERR_CONFIG;
	}
	if ((rc = text_check("profile_org", p->organization)) != MDM_OK ||
	        (rc = text_check("the SCEP Name (the CA's name)", p->scep_name)) != MDM_OK ||
	        (rc = text_check("the challenge", p->challenge)) != MDM_OK ||
	        (with_mdm && (rc = text_check("the topic", p->topic)) != MDM_OK) ||
	        (rc = identifier_check(p->identifier)) != MDM_OK)
		return rc;
	if (p->access_rights < 1 || p->access_rights > PROFILE_ACCESS_RIGHTS_MAX) {
		log_error("config: mdm_access_rights must be 1 to %d (Apple MDM payload)",
		        PROFILE_ACCESS_RIGHTS_MAX);
		return MDM_ERR_CONFIG;
	}
	if (p->scep_retries < 0 || p->scep_retries > PROFILE_SCEP_RETRIES_MAX) {
		log_error("config: enroll_scep_retries must be 0 to %d (Apple schema "
		          "com.apple.security.scep.yaml: Retries, an integer)",
		        PROFILE_SCEP_RETRIES_MAX);
		return MDM_ERR_CONFIG;
	}
	if (p->scep_retry_delay < 0 || p->scep_retry_delay > PROFILE_SCEP_RETRY_DELAY_MAX) {
		log_error("config: enroll_scep_retry_delay must be 0 to %d seconds (Apple schema "
		          "com.apple.security.scep.yaml: RetryDelay, an integer)",
		        PROFILE_SCEP_RETRY_DELAY_MAX);
		return MDM_ERR_CONFIG;
	}
	if (p->ca_fingerprint != NULL && p->ca_fingerprint_len != 16 &&
	        p->ca_fingerprint_len != 20) {
		log_error("profile: CAFingerprint must be 16 (MD5) or 20 (SHA-1) bytes: devices "
		          "refuse other lengths (com.apple.security.scep.yaml: CAFingerprint)");
		return MDM_ERR_CONFIG;
	}
	if (with_mdm && (rc = anchors_check(p)) != MDM_OK)
		return rc;
	if (with_mdm && p->pinning && p->nanchors == 0) {
		log_error(
		        "config: mdm_pinning needs trust anchor payloads (tls_trust_ca_file, or "
		        "a private tls_server_chain_file): the pins name them (com.apple.mdm.yaml: "
		        "ServerURLPinningCertificateUUIDs, CheckInURLPinningCertificateUUIDs)");
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

/* The Configuration profile: the identity payload, and the anchors and the MDM payload when
 * with_mdm. */
static MDM_WUR mdm_err profile_config_build(
        const struct profile_enroll_params *p, int with_mdm, plist **out)
{
	char top_uuid[PROFILE_UUID_LEN + 1], id_uuid[PROFILE_UUID_LEN + 1],
	        mdm_uuid[PROFILE_UUID_LEN + 1], id_url[PROFILE_MAX_URL + 32],
	        display[PROFILE_MAX_VALUE + 32],
	        anchor_uuids[PROFILE_MAX_ANCHORS][PROFILE_UUID_LEN + 1];
	plist *top = NULL, *content = NULL, *identity = NULL, *mdm = NULL, *anchor = NULL;
	mdm_err rc;

	*out = NULL;
	if (p == NULL)
		return MDM_ERR_INVAL;
	if ((rc = params_check(p, with_mdm)) != MDM_OK)
		return rc;
	if ((rc = profile_uuid_new(top_uuid)) != MDM_OK ||
	        (rc = profile_uuid_new(id_uuid)) != MDM_OK ||
	        (rc = profile_uuid_new(mdm_uuid)) != MDM_OK)
		return rc;
	/* The identity payload's URL: SCEP's, or the ACME directory. */
	if (p->identity_acme && p->acme_url != NULL)
		snprintf(id_url, sizeof(id_url), "%s", p->acme_url);
	else if (p->identity_acme)
		snprintf(id_url, sizeof(id_url), "%s/acme/directory", p->public_url);
	else if (p->scep_url != NULL)
		snprintf(id_url, sizeof(id_url), "%s", p->scep_url);
	else
		snprintf(id_url, sizeof(id_url), "%s/scep", p->public_url);
	snprintf(display, sizeof(display), "%s device management", p->organization);
	for (size_t i = 0; with_mdm && i < p->nanchors; i++)
		if ((rc = profile_uuid_new(anchor_uuids[i])) != MDM_OK)
			return rc;
	rc = p->identity_acme ? acme_payload(p, id_url, id_uuid, &identity)
	                      : scep_payload(p, id_url, id_uuid, &identity);
	if (rc != MDM_OK ||
	        (with_mdm &&
	                (rc = mdm_payload(p, mdm_uuid, id_uuid, anchor_uuids, &mdm)) != MDM_OK))
		goto out;
	rc = MDM_ERR_NOMEM;
	if ((top = plist_new_dict()) == NULL || (content = plist_new_array()) == NULL)
		goto out;
	rc = plist_array_append(content, identity);
	identity = NULL;
	if (rc != MDM_OK)
		goto out;
	/* The anchors before the MDM payload: its URLs are trusted through them. */
	for (size_t i = 0; with_mdm && i < p->nanchors; i++) {
		if ((rc = anchor_payload(p, i, anchor_uuids[i], &anchor)) != MDM_OK)
			goto out;
		rc = plist_array_append(content, anchor);
		anchor = NULL;
		if (rc != MDM_OK)
			goto out;
	}
	if (with_mdm) {
		rc = plist_array_append(content, mdm);
		mdm = NULL;
		if (rc != MDM_OK)
			goto out;
	}
	if ((rc = payload_common(top, "Configuration", p->identifier,
	             with_mdm ? ".enroll" : ".enroll.identity", top_uuid, display)) != MDM_OK ||
	        (rc = plist_dict_set(top, "PayloadOrganization",
	                 plist_new_string(p->organization))) != MDM_OK ||
	        (rc = plist_dict_set(top, "PayloadDescription",
	                 plist_new_string(p->identity_acme
	                                 ? "Enrolls this device in device management: a "
	                                   "hardware-bound device identity attested by "
	                                   "Apple, over ACME, then MDM."
	                                 : "Enrolls this device in device management: a "
	                                   "device identity certificate over SCEP, then "
	                                   "MDM."))) != MDM_OK)
		goto out;
	rc = plist_dict_set(top, "PayloadContent", content);
	content = NULL;
	if (rc != MDM_OK)
		goto out;
	*out = top;
	top = NULL;
out:
	plist_free(identity);
	plist_free(mdm);
	plist_free(anchor);
	plist_free(content);
	plist_free(top);
	return rc;
}

mdm_err profile_enroll_build(const struct profile_enroll_params *p, plist **out)
{
	return profile_config_build(p, 1, out);
}

mdm_err profile_scep_build(const struct profile_enroll_params *p, plist **out)
{
	return profile_config_build(p, 0, out);
}

/* Over-the-air attributes a device may be asked for (Profile Service payload). */
static const char *const service_attributes[] = {
        "UDID", "IMEI", "ICCID", "VERSION", "PRODUCT", "SERIAL", "MAC_ADDRESS_EN0", "DEVICE_NAME"};

mdm_err profile_service_build(const struct profile_service_params *p, plist **out)
{
	char uuid[PROFILE_UUID_LEN + 1], display[PROFILE_MAX_VALUE + 32];
	plist *top = NULL, *c = NULL, *attrs = NULL;
	mdm_err rc;

	*out = NULL;
	if (p == NULL)
		return MDM_ERR_INVAL;
	if ((rc = profile_url_check("the profile service URL", p->url, 1)) != MDM_OK ||
	        (rc = text_check("profile_org", p->organization)) != MDM_OK ||
	        (rc = text_check("the challenge", p->challenge)) != MDM_OK ||
	        (rc = identifier_check(p->identifier)) != MDM_OK ||
	        (rc = profile_uuid_new(uuid)) != MDM_OK)
		return rc;
	snprintf(display, sizeof(display), "%s device enrollment", p->organization);
	rc = MDM_ERR_NOMEM;
	if ((top = plist_new_dict()) == NULL || (c = plist_new_dict()) == NULL ||
	        (attrs = plist_new_array()) == NULL)
		goto out;
	for (size_t i = 0; i < sizeof(service_attributes) / sizeof(service_attributes[0]); i++)
		if ((rc = plist_array_append(attrs, plist_new_string(service_attributes[i]))) !=
		        MDM_OK)
			goto out;
	if ((rc = plist_dict_set(c, "URL", plist_new_string(p->url))) != MDM_OK)
		goto out;
	rc = plist_dict_set(c, "DeviceAttributes", attrs);
	attrs = NULL;
	if (rc != MDM_OK ||
	        (rc = plist_dict_set(c, "Challenge", plist_new_string(p->challenge))) != MDM_OK)
		goto out;
	if ((rc = payload_common(top, "Profile Service", p->identifier, ".ota", uuid, display)) !=
	                MDM_OK ||
	        (rc = plist_dict_set(top, "PayloadOrganization",
	                 plist_new_string(p->organization))) != MDM_OK ||
	        (rc = plist_dict_set(top, "PayloadDescription",
	                 plist_new_string("Sends this device's identifiers to the enrollment "
	                                  "service, which answers with the device management "
	                                  "profile."))) != MDM_OK)
		goto out;
	rc = plist_dict_set(top, "PayloadContent", c);
	c = NULL;
	if (rc != MDM_OK)
		goto out;
	*out = top;
	top = NULL;
out:
	plist_free(attrs);
	plist_free(c);
	plist_free(top);
	return rc;
}

mdm_err profile_encrypt(plist *profile, struct x509_st *recipient)
{
	plist *content = NULL;
	char *xml = NULL;
	size_t len = 0, derlen = 0;
	uint8_t *der = NULL;
	mdm_err rc;

	if (profile == NULL || recipient == NULL || plist_get_type(profile) != PLIST_DICT)
		return MDM_ERR_INVAL;
	if (plist_get_type(plist_dict_get0(profile, "PayloadContent")) != PLIST_ARRAY) {
		log_warn("profile: cannot encrypt: PayloadContent is not an array of payloads "
		         "(Configuration Profile Reference, EncryptedPayloadContent)");
		return MDM_ERR_PARSE;
	}
	if ((rc = plist_dict_take(profile, "PayloadContent", &content)) != MDM_OK)
		return rc;
	if ((rc = plist_serialize(content, &xml, &len)) != MDM_OK ||
	        (rc = cms_encrypt(recipient, (const uint8_t *)xml, len, &der, &derlen)) != MDM_OK)
		goto out;
	/* TopLevel.yaml: EncryptedPayloadContent "if IsEncrypted is true". */
	if ((rc = plist_dict_set(
	             profile, "EncryptedPayloadContent", plist_new_data(der, derlen))) == MDM_OK &&
	        (rc = plist_dict_set(profile, "IsEncrypted", plist_new_bool(1))) != MDM_OK) {
		plist *enc = NULL;

		if (plist_dict_take(profile, "EncryptedPayloadContent", &enc) == MDM_OK)
			plist_free(enc);
	}
out:
	/* On failure the clear content goes back, so the caller's tree is unchanged. */
	if (rc != MDM_OK && content != NULL &&
	        plist_dict_set(profile, "PayloadContent", content) == MDM_OK)
		content = NULL;
	plist_free(content);
	if (xml != NULL)
		explicit_bzero(xml, len);
	free(xml);
	free(der);
	return rc;
}
