/* Enrollment: authorisation, the topic of a profile, per-process state, the signed profile. */
#include "enroll.h"
#include "ca.h"
#include "cms.h"
#include "fcgi.h"
#include "log.h"
#include "plist.h"
#include "profile.h"
#include "x509.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void enroll_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

void enroll_state_free(struct enroll_state *st)
{
	if (st == NULL)
		return;
	x509_cert_free(st->signer);
	x509_key_free(st->key);
	x509_certs_free(st->chain, st->nchain);
	for (size_t i = 0; i < st->nanchors; i++)
		free(st->anchor_data[i]);
	free(st);
}

/* One anchor: a CA certificate, its payload kind, its data and name. */
static MDM_WUR mdm_err enroll_anchor_one(const char *key, const char *path, size_t i,
        const struct x509_st *c, struct enroll_state *st)
{
	struct x509_info info;
	char *pem = NULL;
	mdm_err rc;

	if ((rc = x509_cert_info(c, &info)) != MDM_OK) {
		log_error("config: %s %s: certificate %zu cannot be read", key, path, i + 1);
		return MDM_ERR_CONFIG;
	}
	if (!info.is_ca) {
		log_error("config: %s %s: certificate %zu (%s) is not a CA certificate "
		          "(basicConstraints cA): only the CA certificates of the HTTPS chain "
		          "become trust anchors, not the server's (Apple schemas "
		          "com.apple.security.root.yaml, com.apple.security.pem.yaml)",
		        key, path, i + 1, info.subject);
		return MDM_ERR_CONFIG;
	}
	if (!x509_cert_valid_at(c, time(NULL)))
		log_warn("config: %s %s: certificate %zu (%s) is not valid now: devices will "
		         "refuse the chain",
		        key, path, i + 1, info.subject);
	st->anchors[i].root = x509_cert_self_issued(c) && x509_cert_signed_by(c, c);
	if (st->anchors[i].root)
		rc = x509_cert_to_der(c, &st->anchor_data[i], &st->anchors[i].len);
	else if ((rc = x509_cert_to_pem(c, &pem, &st->anchors[i].len)) == MDM_OK)
		st->anchor_data[i] = (uint8_t *)pem;
	if (rc != MDM_OK)
		return rc;
	st->anchors[i].data = st->anchor_data[i];
	if (x509_cert_subject_attr(c, "CN", st->anchor_name[i], sizeof(st->anchor_name[i])) !=
	        MDM_OK)
		snprintf(st->anchor_name[i], sizeof(st->anchor_name[i]), "%.200s", info.subject);
	for (char *p = st->anchor_name[i]; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (st->anchor_name[i][0] == '\0')
		snprintf(st->anchor_name[i], sizeof(st->anchor_name[i]), "CA %zu", i + 1);
	st->anchors[i].name = st->anchor_name[i];
	return MDM_OK;
}

/* Frees the first n anchors' data after a failure: st as before the load. */
static void enroll_anchors_drop(struct enroll_state *st, size_t n)
{
	for (size_t j = 0; j <= n && j < PROFILE_MAX_ANCHORS; j++) {
		free(st->anchor_data[j]);
		st->anchor_data[j] = NULL;
	}
	memset(st->anchors, 0, sizeof(st->anchors));
}

mdm_err enroll_anchors_load(struct enroll_state *st, const char *path)
{
	struct x509_st **certs = NULL;
	size_t n = 0, i = 0;
	mdm_err rc;

	if (path == NULL || path[0] == '\0')
		return MDM_OK;
	if (st->nanchors != 0)
		return MDM_ERR_INVAL;
	if ((rc = x509_certs_load_file(path, &certs, &n)) != MDM_OK) {
		log_error("config: tls_trust_ca_file %s: must be a readable PEM file of 1 to %d CA "
		          "certificates (CERTIFICATE blocks only), at most %d bytes",
		        path, PROFILE_MAX_ANCHORS, X509_MAX_FILE);
		return MDM_ERR_CONFIG;
	}
	if (n == 0 || n > PROFILE_MAX_ANCHORS) {
		log_error("config: tls_trust_ca_file %s: holds %zu certificates, 1 to %d allowed",
		        path, n, PROFILE_MAX_ANCHORS);
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	for (i = 0; i < n; i++)
		if ((rc = enroll_anchor_one("tls_trust_ca_file", path, i, certs[i], st)) != MDM_OK)
			break;
	if (rc != MDM_OK) {
		enroll_anchors_drop(st, i);
		goto out;
	}
	st->nanchors = n;
out:
	x509_certs_free(certs, n);
	return rc;
}

/* enroll_identity: scep (0) or acme (1). */
static MDM_WUR mdm_err enroll_identity_parse(const config *cfg, int *acme)
{
	const char *v = config_get0(cfg, "enroll_identity");

	*acme = v != NULL && strcmp(v, "acme") == 0;
	if (v == NULL || *acme || strcmp(v, "scep") == 0)
		return MDM_OK;
	log_error("config: enroll_identity must be scep or acme");
	return MDM_ERR_CONFIG;
}

/*
 * The chain file's certificates, leaf first, each signed by the next; the
 * certificate number (1-based) of the first that is not, or 0.
 */
static size_t enroll_chain_break(struct x509_st *const *certs, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (!x509_cert_signed_by(certs[i], certs[i + 1]))
			return i + 1;
	return 0;
}

/* The anchors of a private chain: the self-signed top first, then the intermediates. */
static MDM_WUR mdm_err enroll_chain_anchors(
        const char *path, struct x509_st *const *certs, size_t n, struct enroll_state *st)
{
	const struct x509_st *top = certs[n - 1];
	size_t i = 0;
	mdm_err rc = MDM_OK;

	if (!x509_cert_self_issued(top) || !x509_cert_signed_by(top, top)) {
		log_error("config: tls_server_chain_file %s: the chain does not verify to the "
		          "system's public trust store and its last certificate is not a "
		          "self-signed root: add the root CA certificate at the end of the file "
		          "(devices get it as a com.apple.security.root payload), or name the CA "
		          "certificates in tls_trust_ca_file",
		        path);
		return MDM_ERR_CONFIG;
	}
	if (n == 1) {
		log_error("config: tls_server_chain_file %s: a self-signed server certificate "
		          "alone: devices trust a CA certificate as an anchor, not the server's "
		          "own (com.apple.security.root.yaml); issue the server certificate from a "
		          "CA and list that CA after it",
		        path);
		return MDM_ERR_CONFIG;
	}
	if (n - 1 > PROFILE_MAX_ANCHORS) {
		log_error("config: tls_server_chain_file %s: %zu CA certificates, at most %d", path,
		        n - 1, PROFILE_MAX_ANCHORS);
		return MDM_ERR_CONFIG;
	}
	for (i = 0; i < n - 1 && rc == MDM_OK; i++)
		rc = enroll_anchor_one("tls_server_chain_file", path, i, certs[n - 1 - i], st);
	if (rc != MDM_OK) {
		enroll_anchors_drop(st, i);
		return rc;
	}
	st->nanchors = n - 1;
	return MDM_OK;
}

mdm_err enroll_chain_anchors_load(struct enroll_state *st, const char *path)
{
	struct x509_st **certs = NULL;
	const char *why = NULL;
	size_t n = 0, bad;
	int pub = 0;
	mdm_err rc;

	if (path == NULL || path[0] == '\0')
		return MDM_OK;
	if (st->nanchors != 0)
		return MDM_ERR_INVAL;
	if ((rc = x509_certs_load_file(path, &certs, &n)) != MDM_OK) {
		log_error("config: tls_server_chain_file %s: must be a readable PEM file of the "
		          "server certificate and its CA certificates, leaf first (CERTIFICATE "
		          "blocks only, at most %d), at most %d bytes",
		        path, X509_MAX_CHAIN, X509_MAX_FILE);
		return MDM_ERR_CONFIG;
	}
	rc = MDM_ERR_CONFIG;
	if ((bad = enroll_chain_break(certs, n)) != 0) {
		log_error("config: tls_server_chain_file %s: certificate %zu is not signed by "
		          "certificate %zu: the file must be the server certificate first, each "
		          "certificate followed by its issuer (as the web server sends it)",
		        path, bad, bad + 1);
		goto out;
	}
	if ((rc = x509_chain_public(certs, n, time(NULL), &pub, &why)) != MDM_OK)
		goto out;
	if (pub) {
		/* Off when public: devices already trust it (and a payload would add nothing). */
		log_info("enroll: tls_server_chain_file %s verifies to the system's public trust "
		         "store: the profiles carry no trust anchor payload",
		        path);
		goto out;
	}
	log_info("enroll: tls_server_chain_file %s is not publicly trusted (%s): its CA "
	         "certificates go into the profiles as trust anchor payloads",
	        path, why != NULL ? why : "not verified");
	rc = enroll_chain_anchors(path, certs, n, st);
out:
	x509_certs_free(certs, n);
	return rc;
}

static MDM_WUR mdm_err enroll_auth_parse(const config *cfg, enum enroll_auth *out)
{
	const char *v = config_get0(cfg, "enroll_auth"), *tok = config_get0(cfg, "enroll_token");

	*out = ENROLL_AUTH_OPEN;
	if (v == NULL || strcmp(v, "open") == 0)
		return MDM_OK;
	if (strcmp(v, "apache") == 0) {
		*out = ENROLL_AUTH_APACHE;
		return MDM_OK;
	}
	if (strcmp(v, "token") != 0) {
		log_error("config: enroll_auth must be open, token or apache");
		return MDM_ERR_CONFIG;
	}
	if (tok == NULL || strlen(tok) < ENROLL_MIN_TOKEN) {
		log_error("config: enroll_auth = token needs enroll_token of at least %d "
		          "characters",
		        ENROLL_MIN_TOKEN);
		return MDM_ERR_CONFIG;
	}
	*out = ENROLL_AUTH_TOKEN;
	return MDM_OK;
}

/*
 * The active CA (the one GetCACert returns until `mdmctl ca activate`
 * switches to the staged next one): its CN (its subject when it has none),
 * the SCEP payload's Name, and the SHA-1 of its DER, the CAFingerprint.
 * Read for each profile, so that a profile made after `ca activate`
 * names the new CA even in a process that started before.
 */
static MDM_WUR mdm_err enroll_active_ca(db *d, char *out, size_t cap, uint8_t fp[X509_SHA1_LEN])
{
	struct x509_st *ca = NULL;
	struct x509_info info;
	db_res *r = NULL;
	mdm_err rc;

	out[0] = '\0';
	memset(fp, 0, X509_SHA1_LEN);
	rc = db_exec(d,
	        "SELECT c.der FROM mdm.ca a JOIN mdm.certificate c ON c.id = a.certificate_id "
	        "WHERE a.state = 'active'",
	        0, NULL, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		log_error("enroll: no active CA: run `mdmctl ca init`");
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	if ((rc = ca_cert_from_res(r, 0, 0, &ca)) != MDM_OK ||
	        (rc = x509_cert_sha1(ca, fp)) != MDM_OK)
		goto out;
	rc = x509_cert_subject_attr(ca, "CN", out, cap);
	if (rc == MDM_ERR_NOT_FOUND && (rc = x509_cert_info(ca, &info)) == MDM_OK)
		snprintf(out, cap, "%s", info.subject);
out:
	x509_cert_free(ca);
	db_res_free(r);
	return rc;
}

static MDM_WUR mdm_err enroll_signer_load(const config *cfg, struct enroll_state *st)
{
	const char *cert = config_get0(cfg, "profile_signer_cert"),
	           *key = config_get0(cfg, "profile_signer_key"),
	           *chain = config_get0(cfg, "profile_signer_chain");
	mdm_err rc;

	if (cert == NULL || key == NULL) {
		log_error("enroll: profile_signer_cert and profile_signer_key must be set to sign "
		          "profiles (`mdmctl ca server-cert` issues one; docs/CONFIG.md)");
		return MDM_ERR_CONFIG;
	}
	if ((rc = x509_cert_load_file(cert, &st->signer)) != MDM_OK ||
	        (rc = x509_key_load(key, &st->key)) != MDM_OK) {
		log_error("enroll: profile_signer_cert or profile_signer_key cannot be loaded");
		return MDM_ERR_CONFIG;
	}
	if (!x509_key_matches_cert(st->key, st->signer)) {
		log_error("enroll: profile_signer_key does not belong to profile_signer_cert");
		return MDM_ERR_CONFIG;
	}
	if (chain != NULL &&
	        (rc = x509_certs_load_file(chain, &st->chain, &st->nchain)) != MDM_OK) {
		log_error("enroll: profile_signer_chain cannot be loaded");
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

/* mdm_topic: only its shape here; whether it is imported is asked per request. */
static MDM_WUR mdm_err enroll_default_topic(const config *cfg, char out[PUSHCERT_MAX_TOPIC + 1])
{
	const char *t = config_get0(cfg, "mdm_topic");

	out[0] = '\0';
	if (t == NULL)
		return MDM_OK;
	if (!pushcert_topic_valid(t)) {
		log_error("config: mdm_topic must be %s<UUID> (Apple MDM protocol: the push "
		          "certificate's UID)",
		        PUSHCERT_TOPIC_PREFIX);
		return MDM_ERR_CONFIG;
	}
	memcpy(out, t, strlen(t) + 1);
	return MDM_OK;
}

mdm_err enroll_state_load(db *d, const config *cfg, int with_signer, struct enroll_state **out)
{
	struct enroll_state *st;
	const char *trust;
	mdm_err rc;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return MDM_ERR_NOMEM;
	if ((rc = enroll_auth_parse(cfg, &st->auth)) != MDM_OK ||
	        (rc = enroll_identity_parse(cfg, &st->identity_acme)) != MDM_OK ||
	        (rc = config_get_int(cfg, "enroll_challenge_ttl", 60, 2592000, &st->ttl)) !=
	                MDM_OK ||
	        (rc = config_get_int(cfg, "mdm_access_rights", 1, PROFILE_ACCESS_RIGHTS_MAX,
	                 &st->access_rights)) != MDM_OK ||
	        (rc = config_get_bool(cfg, "mdm_sign_message", &st->sign_message)) != MDM_OK ||
	        (rc = config_get_bool(
	                 cfg, "mdm_checkout_when_removed", &st->checkout_when_removed)) != MDM_OK ||
	        (rc = config_get_int(cfg, "enroll_scep_retries", 0, PROFILE_SCEP_RETRIES_MAX,
	                 &st->scep_retries)) != MDM_OK ||
	        (rc = config_get_int(cfg, "enroll_scep_retry_delay", 0,
	                 PROFILE_SCEP_RETRY_DELAY_MAX, &st->scep_retry_delay)) != MDM_OK ||
	        (rc = config_get_bool(cfg, "mdm_pinning", &st->pinning)) != MDM_OK ||
	        (rc = config_get_bool(cfg, "mdm_pinning_revocation_check", &st->pin_revocation)) !=
	                MDM_OK)
		goto out;
	if (with_signer && (rc = enroll_signer_load(cfg, st)) != MDM_OK)
		goto out;
	if ((rc = enroll_default_topic(cfg, st->default_topic)) != MDM_OK)
		goto out;
	/* tls_trust_ca_file when set, else the anchors of tls_server_chain_file. */
	trust = config_get0(cfg, "tls_trust_ca_file");
	if ((rc = trust != NULL && trust[0] != '\0'
	                    ? enroll_anchors_load(st, trust)
	                    : enroll_chain_anchors_load(
	                              st, config_get0(cfg, "tls_server_chain_file"))) != MDM_OK)
		goto out;
	if (st->pinning && st->nanchors == 0) {
		log_error("config: mdm_pinning = yes needs trust anchor payloads to pin to "
		          "(tls_trust_ca_file, or a tls_server_chain_file that is not publicly "
		          "trusted): the pins name those certificate payloads (com.apple.mdm.yaml: "
		          "ServerURLPinningCertificateUUIDs)");
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	if ((rc = enroll_active_ca(d, st->ca_name, sizeof(st->ca_name), st->ca_sha1)) != MDM_OK)
		goto out;
	*out = st;
	st = NULL;
out:
	enroll_state_free(st);
	return rc;
}

/* Equal strings, in time that depends on the length of secret only. */
static int enroll_ct_equal(const char *given, size_t glen, const char *secret, size_t slen)
{
	volatile unsigned char diff = (unsigned char)(glen != slen);

	for (size_t i = 0; i < slen; i++)
		diff |= (unsigned char)(secret[i] ^ (i < glen ? given[i] : 0));
	return diff == 0;
}

/* One token given by the request matches enroll_token; how it came is for the log. */
static int enroll_token_ok(const char *secret, const char *tok, size_t len, const char *how)
{
	if (secret != NULL && enroll_ct_equal(tok, len, secret, strlen(secret)))
		return 1;
	log_warn("enroll: enroll_auth = token and the token in %s does not match: refused", how);
	return 0;
}

mdm_err enroll_authorize(
        const struct enroll_state *st, const config *cfg, const struct enroll_req *req)
{
	static const char bearer[] = "Bearer ";
	const char *secret = config_get0(cfg, "enroll_token");
	const char *query = req->query != NULL ? req->query : "";
	char *tok = NULL;
	size_t toklen = 0, given = 0;
	mdm_err rc;
	int ok = 1;

	switch (st->auth) {
	case ENROLL_AUTH_OPEN:
		return MDM_OK;
	case ENROLL_AUTH_APACHE:
		if (req->remote_user != NULL && req->remote_user[0] != '\0')
			return MDM_OK;
		log_warn("enroll: enroll_auth = apache and Apache passed no REMOTE_USER: refused "
		         "(is the Auth* configuration in front of /enroll?)");
		return MDM_ERR_FORBIDDEN;
	case ENROLL_AUTH_TOKEN:
		break;
	}
	if (req->token_header != NULL) {
		given++;
		ok &= enroll_token_ok(
		        secret, req->token_header, strlen(req->token_header), "X-MDM-Enroll-Token");
	}
	if (req->authorization != NULL) {
		const char *v = req->authorization;

		given++;
		/* RFC 6750 2.1: "Bearer" (case-insensitive, RFC 7235 2.1), one space, the token. */
		if (strncasecmp(v, bearer, sizeof(bearer) - 1) != 0 ||
		        v[sizeof(bearer) - 1] == ' ' || v[sizeof(bearer) - 1] == '\0') {
			log_warn("enroll: enroll_auth = token and the Authorization header is not "
			         "\"Bearer <token>\" (RFC 6750 2.1): refused");
			ok = 0;
		} else {
			v += sizeof(bearer) - 1;
			ok &= enroll_token_ok(secret, v, strlen(v), "Authorization: Bearer");
		}
	}
	rc = fcgi_query_get(query, "token", 1, &tok, &toklen);
	if (rc == MDM_OK) {
		given++;
		ok &= enroll_token_ok(secret, tok, toklen, "?token=");
		enroll_free_secret(tok, toklen);
	} else if (rc != MDM_ERR_NOT_FOUND) {
		log_warn("enroll: enroll_auth = token and the request has a malformed query: "
		         "refused");
		return MDM_ERR_FORBIDDEN;
	}
	if (given == 0) {
		log_warn("enroll: enroll_auth = token and the request has no token "
		         "(X-MDM-Enroll-Token, Authorization: Bearer or ?token=): refused");
		return MDM_ERR_FORBIDDEN;
	}
	return ok ? MDM_OK : MDM_ERR_FORBIDDEN;
}

static void enroll_why(char *why, size_t cap, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void enroll_why(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || cap == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

mdm_err enroll_topic_from_query(const char *query, char out[PUSHCERT_MAX_TOPIC + 1])
{
	size_t n = 0;
	mdm_err rc;

	out[0] = '\0';
	/* Into the fixed buffer: a longer value is refused while decoding. */
	rc = fcgi_query_get_buf(query, "topic", 0, out, PUSHCERT_MAX_TOPIC + 1, &n);
	if (rc == MDM_ERR_NOT_FOUND)
		return rc;
	if (rc == MDM_OK && n == strlen(out) && pushcert_topic_valid(out))
		return MDM_OK;
	out[0] = '\0';
	log_warn("enroll: refused: the topic parameter must be given once as %s<UUID> (%zu "
	         "characters)",
	        PUSHCERT_TOPIC_PREFIX, (size_t)PUSHCERT_MAX_TOPIC);
	return MDM_ERR_PARSE;
}

/* The imported topics for an answer: the first few, and how many more. */
static void enroll_topics_named(const struct pushcert_topics *t, char *buf, size_t cap)
{
	if (t->n > PUSHCERT_MAX_LISTED)
		snprintf(buf, cap, "%s and %lld more (`mdmctl push-cert list`)", t->list,
		        t->n - PUSHCERT_MAX_LISTED);
	else
		snprintf(buf, cap, "%s", t->list);
}

/* The topic wanted (asked for, the Location's, or mdm_topic) is not imported. */
static MDM_WUR mdm_err enroll_topic_missing(const struct pushcert_topics *t, const char *want,
        const char *requested, const char *location, char *why, size_t whycap)
{
	char named[sizeof(t->list) + 64];

	enroll_topics_named(t, named, sizeof(named));
	if (requested != NULL) {
		log_warn("enroll: refused: topic %s asked for is not imported", requested);
		enroll_why(why, whycap, "topic %s is not imported here%s%s", requested,
		        t->n > 0 ? "; imported: " : " (no push certificate is imported)", named);
		return MDM_ERR_NOT_FOUND;
	}
	if (location != NULL) {
		log_error("enroll: topic %s, this URL's (MDM_MDM_TOPIC of its Apache Location), is "
		          "not imported: import its push certificate or change the SetEnv",
		        want);
		enroll_why(why, whycap,
		        "this URL's topic %s is not imported (any more): the administrator imports "
		        "its push certificate or changes MDM_MDM_TOPIC of the Location",
		        want);
		return MDM_ERR_CONFLICT;
	}
	log_error("enroll: mdm_topic %s is not imported (`mdmctl push-cert list`): import it "
	          "or change mdm_topic",
	        want);
	if (t->n > 0)
		enroll_why(why, whycap,
		        "the default topic %s (mdm_topic) is not imported: add topic=<topic> to "
		        "the "
		        "query (one of: %s), or the administrator changes mdm_topic",
		        want, named);
	else
		enroll_why(why, whycap,
		        "the default topic %s (mdm_topic) is not imported, nor is any other", want);
	return MDM_ERR_CONFLICT;
}

mdm_err enroll_topic_choose(db *d, const struct enroll_state *st, const char *requested,
        const char *location, char out[PUSHCERT_MAX_TOPIC + 1], char *why, size_t whycap)
{
	char named[PUSHCERT_MAX_LISTED * (PUSHCERT_MAX_TOPIC + 2) + 64];
	struct pushcert_topics t;
	const char *want;
	mdm_err rc;

	out[0] = '\0';
	enroll_why(why, whycap, "%s", "");
	if (location != NULL && location[0] == '\0')
		location = NULL;
	if (requested != NULL && !pushcert_topic_valid(requested)) {
		log_warn("enroll: refused: the topic asked for is not %s<UUID>",
		        PUSHCERT_TOPIC_PREFIX);
		enroll_why(why, whycap, "the topic must be %s<UUID> (the push certificate's UID)",
		        PUSHCERT_TOPIC_PREFIX);
		return MDM_ERR_PARSE;
	}
	if (location != NULL && !pushcert_topic_valid(location)) {
		log_error("enroll: MDM_MDM_TOPIC of this request (SetEnv in an Apache Location) is "
		          "not %s<UUID>: fix Apache's configuration",
		        PUSHCERT_TOPIC_PREFIX);
		enroll_why(why, whycap,
		        "this URL's topic (MDM_MDM_TOPIC of its Apache Location) is misconfigured");
		return MDM_ERR_CONFIG;
	}
	if (requested != NULL && location != NULL && strcmp(requested, location) != 0) {
		log_warn("enroll: refused: topic %s asked for where the Location serves %s only",
		        requested, location);
		enroll_why(why, whycap,
		        "this URL serves topic %s only (MDM_MDM_TOPIC of its Location): leave out "
		        "topic= or ask for that one",
		        location);
		return MDM_ERR_FORBIDDEN;
	}
	want = requested != NULL               ? requested
	        : location != NULL             ? location
	        : st->default_topic[0] != '\0' ? st->default_topic
	                                       : NULL;
	if ((rc = pushcert_topics_get(d, want, &t)) != MDM_OK) {
		enroll_why(why, whycap, "the push topics could not be read");
		return rc;
	}
	if (want != NULL) {
		if (!t.wanted_found)
			return enroll_topic_missing(&t, want, requested, location, why, whycap);
		memcpy(out, want, strlen(want) + 1);
		return MDM_OK;
	}
	if (t.n == 1 && t.only[0] != '\0') {
		memcpy(out, t.only, strlen(t.only) + 1);
		return MDM_OK;
	}
	if (t.n == 0) {
		log_error("enroll: no push certificate is imported: run `mdmctl push-cert import`");
		enroll_why(why, whycap, "no push certificate is imported yet");
		return MDM_ERR_CONFIG;
	}
	if (t.n == 1) {
		log_error("enroll: the topic in mdm.push_cert is not %s<UUID>",
		        PUSHCERT_TOPIC_PREFIX);
		enroll_why(why, whycap, "the imported push topic is not usable");
		return MDM_ERR_CONFIG;
	}
	log_warn("enroll: refused: %lld push topics are imported and the request chose none "
	         "(enrollers add ?topic=, or set mdm_topic for a default)",
	        t.n);
	enroll_topics_named(&t, named, sizeof(named));
	enroll_why(why, whycap,
	        "%lld push topics are imported and none was chosen: add topic=<topic> to the "
	        "query (one of: %s), or the administrator sets mdm_topic",
	        t.n, named);
	return MDM_ERR_CONFLICT;
}

mdm_err enroll_admit(db *d, const struct enroll_state *st, const config *cfg,
        const struct enroll_req *req, char topic[PUSHCERT_MAX_TOPIC + 1], char *why, size_t whycap)
{
	char asked[PUSHCERT_MAX_TOPIC + 1];
	mdm_err rc;

	topic[0] = '\0';
	enroll_why(why, whycap, "%s", "");
	/* First: nothing about topics reaches someone who may not enroll. */
	if (enroll_authorize(st, cfg, req) != MDM_OK) {
		enroll_why(why, whycap, "not allowed to enroll (enroll_auth)");
		return MDM_ERR_FORBIDDEN;
	}
	rc = enroll_topic_from_query(req->query, asked);
	if (rc != MDM_OK && rc != MDM_ERR_NOT_FOUND) {
		enroll_why(why, whycap,
		        "the topic parameter must be given once as %s<UUID> (the push "
		        "certificate's UID)",
		        PUSHCERT_TOPIC_PREFIX);
		return rc;
	}
	return enroll_topic_choose(
	        d, st, rc == MDM_OK ? asked : NULL, req->location_topic, topic, why, whycap);
}

/*
 * A new one-time challenge, valid st->ttl seconds, recording topic (NULL:
 * none): the SCEP payload's Challenge (mdm.scep_challenge_new) or, with
 * acme, the ACME payload's ClientIdentifier
 * (mdm.acme_client_identifier_new).  MDM_ERR_NOT_FOUND when the topic is
 * not imported (removed since it was chosen): nothing is made.
 */
static MDM_WUR mdm_err enroll_challenge(db *d, const struct enroll_state *st, int acme,
        const char *udid, const char *topic, char **out)
{
	char ttl[16];
	const char *params[3] = {ttl, udid, topic};
	db_res *r = NULL;
	const char *c, *sql;
	mdm_err rc;

	*out = NULL;
	snprintf(ttl, sizeof(ttl), "%d", st->ttl);
	/*
	 * A UDID-bound challenge here is OTA phase 2's, for the UDID the
	 * device claimed: recorded as such (origin ota), it never takes over
	 * an actively enrolled UDID (lib/checkin.c).  A UDID-bound ACME
	 * ClientIdentifier (phase 3) is honoured only for a device Apple
	 * attests to have that UDID (sql/027_acme.sql).
	 */
	if (acme)
		sql = "SELECT mdm.acme_client_identifier_new($2, make_interval(secs => $1::int), "
		      "$3)";
	else if (udid != NULL)
		sql = "SELECT mdm.ota_scep_challenge_new($2, make_interval(secs => $1::int), $3)";
	else
		sql = "SELECT mdm.scep_challenge_new($2, make_interval(secs => $1::int), $3)";
	rc = db_exec(d, sql, 3, params, &r);
	if (rc == MDM_ERR_DB && strcmp(db_get0_sqlstate(d), "P0002") == 0) {
		log_warn("enroll: topic %s is no longer imported: no profile", topic);
		rc = MDM_ERR_NOT_FOUND;
	}
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1 || (c = db_res_get0(r, 0, 0)) == NULL) {
		rc = MDM_ERR_DB;
		goto out;
	}
	if ((*out = strdup(c)) == NULL)
		rc = MDM_ERR_NOMEM;
out:
	db_res_free(r);
	return rc;
}

mdm_err enroll_profile_tree(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, const char *udid, const char *topic, int with_mdm, plist **out)
{
	struct profile_enroll_params p = {0};
	char *challenge = NULL, ca_name[sizeof(st->ca_name)];
	uint8_t fp[X509_SHA1_LEN];
	mdm_err rc;

	*out = NULL;
	if (with_mdm && (topic == NULL || !pushcert_topic_valid(topic)))
		return MDM_ERR_INVAL;
	if ((rc = enroll_active_ca(d, ca_name, sizeof(ca_name), fp)) != MDM_OK)
		return rc;
	p.public_url = public_url != NULL ? public_url : config_get0(cfg, "public_url");
	p.scep_url = config_get0(cfg, "scep_url");
	p.scep_name = ca_name;
	p.ca_fingerprint = fp;
	p.ca_fingerprint_len = sizeof(fp);
	p.scep_retries = st->scep_retries;
	p.scep_retry_delay = st->scep_retry_delay;
	p.scep_subject = config_get0(cfg, "enroll_scep_subject");
	p.topic = topic;
	p.organization = config_get0(cfg, "profile_org");
	p.identifier = config_get0(cfg, "profile_identifier");
	p.access_rights = st->access_rights;
	p.sign_message = st->sign_message;
	p.checkout_when_removed = st->checkout_when_removed;
	p.anchors = st->anchors;
	p.nanchors = st->nanchors;
	p.pinning = st->pinning;
	p.pin_revocation = st->pin_revocation;
	/* OTA phase 2 (no MDM payload) is the device's first profile: always SCEP. */
	p.identity_acme = with_mdm && st->identity_acme;
	p.acme_url = config_get0(cfg, "enroll_acme_url");
	if ((rc = enroll_challenge(d, st, p.identity_acme, udid, topic, &challenge)) != MDM_OK)
		goto out;
	p.challenge = challenge;
	rc = with_mdm ? profile_enroll_build(&p, out) : profile_scep_build(&p, out);
out:
	if (challenge != NULL)
		enroll_free_secret(challenge, strlen(challenge));
	return rc;
}

mdm_err enroll_serialize(const plist *profile, char **xml, size_t *len)
{
	mdm_err rc;

	if ((rc = plist_serialize(profile, xml, len)) != MDM_OK && rc != MDM_ERR_NOMEM) {
		log_error("enroll: the profile cannot be written as a plist (invalid UTF-8 in "
		          "profile_org, enroll_scep_subject or another setting?)");
		rc = MDM_ERR_CONFIG;
	}
	return rc;
}

mdm_err enroll_profile_xml(db *d, const config *cfg, const struct enroll_state *st,
        const char *public_url, const char *topic, char **xml, size_t *len)
{
	plist *profile = NULL;
	mdm_err rc;

	*xml = NULL;
	*len = 0;
	if ((rc = enroll_profile_tree(d, cfg, st, public_url, NULL, topic, 1, &profile)) == MDM_OK)
		rc = enroll_serialize(profile, xml, len);
	plist_free(profile);
	return rc;
}

mdm_err enroll_profile_sign(
        const struct enroll_state *st, const char *xml, size_t len, uint8_t **der, size_t *derlen)
{
	*der = NULL;
	*derlen = 0;
	if (st->signer == NULL || st->key == NULL) {
		log_error("enroll: no profile signer loaded");
		return MDM_ERR_CONFIG;
	}
	return cms_sign_attached(
	        st->signer, st->key, st->chain, st->nchain, (const uint8_t *)xml, len, der, derlen);
}
