/* Configuration: a documented key table, a strict file parser, env overrides. */
#include "config.h"
#include "log.h"
#include "mdm_limits.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Set by the Makefile (DATADIR); the fallback matches its default PREFIX. */
#ifndef MDM_DATADIR
#define MDM_DATADIR "/usr/local/share/mdm"
#endif

/*
 * The table of every key.  Adding a key: add it here and document it in
 * docs/CONFIG.md (a unit test checks that every key is documented).
 */
static const struct config_key config_keys[] = {
        {"db", "dbname=mdm", 1,
                "libpq connection string (conninfo) of the PostgreSQL database; "
                "may hold a password, so it is treated as a secret"},
        {"log_level", "info", 0, "minimum log level: debug, info, warn or error"},
        {"scep_challenge", NULL, 1,
                "static SCEP challengePassword (16+ characters) accepted besides one-time ones"},
        {"scep_allow_sha1", "no", 0, "accept SCEP messages signed with SHA-1 (yes or no)"},
        {"scep_allow_des3", "no", 0, "accept SCEP envelopes encrypted with 3DES (yes or no)"},
        {"scep_allow_des", "no", 0,
                "accept single-DES SCEP request envelopes (yes or no); replies never use DES"},
        {"scep_signer_match", "none", 0,
                "what a throw-away SCEP signer must share with the CSR: none (Apple "
                "devices), key, or key+subject"},
        {"scep_approval", "auto", 0,
                "auto: issue at once; manual: answer PENDING until mdm.scep_approve"},
        {"cert_days", "365", 0, "validity of issued device certificates, in days"},
        {"cert_min_rsa_bits", "2048", 0, "smallest RSA key the CA certifies"},
        {"cert_copy_sans", "no", 0, "copy DNS, email and URI subjectAltNames from the CSR"},
        {"crl_days", "7", 0, "days until the nextUpdate of a CRL served by GetCRL"},
        {"ra_cert", NULL, 0,
                "optional SCEP RA certificate (PEM): receives requests and signs replies"},
        {"ra_key", NULL, 1,
                "the RA's private key: a file path or a pkcs11: URI (a secret: a URI may "
                "carry pin-value)"},
        {"public_url", NULL, 0,
                "base URL devices reach the server at (https://mdm.example.com); the "
                "profile's SCEP, check-in and server URLs are built from it"},
        {"scep_url", NULL, 0, "SCEP URL put in profiles (default: public_url + /scep)"},
        {"profile_signer_cert", NULL, 0,
                "PEM certificate that signs the profiles enroll.fcgi serves"},
        {"profile_signer_key", NULL, 1,
                "its private key: a file path or a pkcs11: URI (a secret: a URI may carry "
                "pin-value)"},
        {"profile_signer_chain", NULL, 0,
                "PEM file of the certificates above the signer, carried in signed profiles"},
        {"profile_org", "MDM", 0, "PayloadOrganization of the profiles"},
        {"profile_identifier", "com.example.mdm", 0,
                "PayloadIdentifier prefix of the profiles (reverse DNS)"},
        {"enroll_auth", "open", 0,
                "who may fetch the enrollment profile: open, token (?token=) or apache "
                "(REMOTE_USER set by Apache's authentication)"},
        {"enroll_token", NULL, 1, "the token enroll_auth=token requires (16+ characters)"},
        {"enroll_challenge_ttl", "3600", 0,
                "seconds the one-time SCEP challenge in an enrollment profile stays valid"},
        {"enroll_scep_subject", "/O=MDM/CN=MDM Device Identity", 0,
                "Subject of the SCEP payload (openssl -subj syntax)"},
        {"enroll_scep_retries", "3", 0,
                "Retries of the SCEP payload: polls after a PENDING answer (0 to 1000)"},
        {"enroll_scep_retry_delay", "10", 0,
                "RetryDelay of the SCEP payload: seconds between those polls (0 to 3600)"},
        {"enroll_identity", "scep", 0,
                "the enrollment profile's device identity payload: scep, or acme (a "
                "hardware-bound key attested by Apple, ACME device-attest-01)"},
        {"enroll_acme_url", NULL, 0,
                "DirectoryURL of the ACME payload (https); unset: <public_url>/acme/directory"},
        {"ota_trust_file", MDM_DATADIR "/apple-ota-trust.pem", 0,
                "PEM file of the CA certificates an OTA phase-2 device certificate must "
                "chain to (Apple Root CA and Apple's device CAs, shipped as "
                "share/apple-ota-trust.pem)"},
        {"acme_attest_root_file", MDM_DATADIR "/apple-enterprise-attestation-root.pem", 0,
                "PEM file of the root certificates an ACME device-attest-01 attestation "
                "chain must end at (the Apple Enterprise Attestation Root CA, shipped as "
                "share/apple-enterprise-attestation-root.pem)"},
        {"acme_base_url", NULL, 0,
                "base URL of the ACME server (https://mdm.example.com/acme): the directory "
                "is <base>/directory and every JWS url is checked against it; default: "
                "public_url + /acme"},
        {"acme_nonce_ttl", "300", 0,
                "seconds an ACME Replay-Nonce stays valid (10 to 86400; each is used once)"},
        {"acme_order_ttl", "3600", 0,
                "seconds an ACME order stays open (60 to 2592000; never past its "
                "ClientIdentifier)"},
        {"acme_allow_serial_identifier", "no", 0,
                "accept an ACME order whose identifier is the serial number or UDID of a "
                "device in mdm.acme_expected_device, without a one-time ClientIdentifier "
                "(yes or no)"},
        {"tls_trust_ca_file", NULL, 0,
                "PEM file of the CA certificates of the HTTPS chain devices see, when not "
                "publicly trusted: carried as trust anchor payloads in enrollment profiles"},
        {"tls_server_chain_file", NULL, 0,
                "PEM file of the chain the web server sends (server certificate first), "
                "read when tls_trust_ca_file is unset: its CA certificates become trust "
                "anchor payloads unless the chain is publicly trusted"},
        {"tls_client_ca_file", NULL, 0,
                "PEM file mdmctl keeps current with every CA a device identity can chain "
                "to, for a web server that verifies client certificates against a file "
                "(lighttpd's ssl.verifyclient.ca-file)"},
        {"mdm_topic", NULL, 0,
                "default APNs topic of enrollment profiles (a request may choose another "
                "imported one with ?topic=); unset: the only one imported"},
        {"mdm_sign_message", "yes", 0,
                "SignMessage in the enrollment profile: devices add Mdm-Signature (yes or no)"},
        {"mdm_access_rights", "8191", 0, "AccessRights of the MDM payload (1 to 8191)"},
        {"mdm_pinning", "no", 0,
                "pin the MDM payload's server and check-in URLs to the trust anchor "
                "payloads (tls_trust_ca_file or tls_server_chain_file; yes or no)"},
        {"mdm_pinning_revocation_check", "no", 0,
                "PinningRevocationCheckRequired of the MDM payload (yes or no)"},
        {"mdm_checkout_when_removed", "yes", 0,
                "CheckOutWhenRemoved of the MDM payload (yes or no)"},
        {"checkin_allow_takeover", "no", 0,
                "let a new identity take over an actively enrolled UDID without a "
                "UDID-bound challenge or renewal (yes or no; logged and recorded)"},
        {"checkin_require_tls", "no", 0,
                "refuse check-in and command-channel requests without a TLS client "
                "certificate (yes or no): an Mdm-Signature alone can be replayed"},
        {"trusted_proxies", "", 0,
                "addresses (CIDR allowed) of reverse proxies that terminate TLS and pass the "
                "device's certificate in an RFC 9440 Client-Cert header; empty: none"},
        {"checkin_user_channel", "yes", 0,
                "accept the user channel (UserAuthenticate); no answers it 410 as Apple "
                "documents"},
        {"metrics_flush_seconds", "10", 0,
                "seconds between a FastCGI worker's writes of its request counts to "
                "mdm.metrics_request (0 to 3600; 0: after every request; off: not counted)"},
        {"metrics_token_file", NULL, 0,
                "file holding the Bearer token (16 to 256 characters) a scraper of "
                "GET /mdm/metrics must send; unset: the URL answers 404"},
        {"apns_url", "https://api.push.apple.com", 0,
                "APNs base URL for mdm-pushd (sandbox: https://api.sandbox.push.apple.com)"},
        {"apns_ca_file", NULL, 0,
                "PEM CA bundle mdm-pushd trusts for apns_url; unset: the system's"},
        {"push_concurrency", "100", 0,
                "HTTP/2 streams mdm-pushd runs at once on each topic's connection (1 to 1000)"},
        {"push_batch", "1000", 0,
                "pushes one mdm-pushd round claims, sends and records together (1 to 10000)"},
        {"push_backoff_min", "5", 0, "seconds before the first retry of a failed push"},
        {"push_backoff_max", "3600", 0,
                "longest retry delay in seconds (also the pace of certificate errors)"},
        {"push_sweep_seconds", "30", 0,
                "seconds between mdm-pushd's sweeps for due pushes besides NOTIFY"},
        {"push_min_interval", "1", 0,
                "least seconds between two pushes to one enrollment (requests meanwhile "
                "share the next)"},
        {"push_lease_seconds", "120", 0,
                "how long an mdm-pushd claim lasts before another daemon may take it"},
        {"webhook_url", NULL, 1,
                "where mdm-eventd POSTs check-in and command-result events (http:// or "
                "https://); a secret, as a URL may carry a token"},
        {"webhook_secret_file", NULL, 0,
                "file holding the secret of the events' X-MDM-Signature (HMAC-SHA256), "
                "16 to 4096 bytes"},
        {"webhook_ca_file", NULL, 0,
                "PEM CA bundle mdm-eventd trusts for an https webhook_url; unset: the system's"},
        {"webhook_timeout", "10", 0,
                "seconds one event POST may take, connection included (1 to 300)"},
        {"webhook_backoff_min", "5", 0, "seconds before the first retry of a failed event"},
        {"webhook_backoff_max", "3600", 0, "longest retry delay of an event, in seconds"},
        {"webhook_keep_days", "7", 0,
                "days delivered events stay in mdm.event_outbox before mdm-eventd deletes "
                "them (0 to 3650)"},
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/*
 * Keys that were removed: set in a file or the environment, they stop the
 * program with what replaced them, rather than being ignored.
 */
static const struct {
	const char *name;
	const char *why;
} config_retired[] = {
        {"scep_signer_subject",
                "replaced by scep_signer_match (none, key or key+subject; default none), "
                "because Apple devices sign SCEP requests with a throw-away certificate "
                "of their own key and subject"},
};

static const char *config_retired_why(const char *key)
{
	for (size_t i = 0; i < sizeof(config_retired) / sizeof(config_retired[0]); i++)
		if (strcmp(config_retired[i].name, key) == 0)
			return config_retired[i].why;
	return NULL;
}

/* MDM_<KEY>, upper case; "" when it does not fit. */
static void config_env_name(const char *key, char *name, size_t cap)
{
	size_t n = 4;

	if (cap < 5 || strlen(key) + 5 > cap) {
		if (cap > 0)
			name[0] = '\0';
		return;
	}
	memcpy(name, "MDM_", 4);
	for (const char *k = key; *k; k++)
		name[n++] = (char)toupper((unsigned char)*k);
	name[n] = '\0';
}

enum config_src { CONFIG_SRC_UNSET, CONFIG_SRC_DEFAULT, CONFIG_SRC_FILE, CONFIG_SRC_ENV };

struct config {
	char *value[CONFIG_NKEYS];
	enum config_src src[CONFIG_NKEYS];
};

size_t config_key_count(void)
{
	return CONFIG_NKEYS;
}

const struct config_key *config_key_at(size_t i)
{
	return i < CONFIG_NKEYS ? &config_keys[i] : NULL;
}

static int config_index(const char *key)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].name, key) == 0)
			return (int)i;
	return -1;
}

void config_free(config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		free(c->value[i]);
	free(c);
}

static MDM_WUR mdm_err config_set(config *c, int i, const char *v, size_t len, enum config_src src)
{
	char *dup;

	if (len > CONFIG_MAX_VALUE)
		return MDM_ERR_LIMIT;
	if ((dup = malloc(len + 1)) == NULL)
		return MDM_ERR_NOMEM;
	memcpy(dup, v, len);
	dup[len] = '\0';
	free(c->value[i]);
	c->value[i] = dup;
	c->src[i] = src;
	return MDM_OK;
}

mdm_err config_file_read(
        const char *path, const char *what, size_t max, int secret, char **out, size_t *outlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd;
	mdm_err rc = MDM_ERR_CONFIG;

	*out = NULL;
	*outlen = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		if (errno == ENOENT)
			return MDM_ERR_NOT_FOUND;
		log_error("config: %s %s cannot be opened: %s", what, path, strerror(errno));
		return MDM_ERR_CONFIG;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_error("config: %s %s is not a regular file", what, path);
		goto out;
	}
	if (secret && (st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
		log_error("config: %s %s may be read or written by others: chmod o-rw it", what,
		        path);
		goto out;
	}
	if ((size_t)st.st_size > max) {
		log_error("config: %s %s is over %zu bytes", what, path, max);
		rc = MDM_ERR_LIMIT;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (len != (size_t)st.st_size) {
		log_error("config: short read on %s %s", what, path);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = MDM_OK;
out:
	if (buf != NULL && secret)
		explicit_bzero(buf, (size_t)st.st_size);
	free(buf);
	close(fd);
	return rc;
}

/* The configuration file, refused over CONFIG_MAX_FILE before allocating. */
static MDM_WUR mdm_err config_read_file(const char *path, int required, char **out, size_t *outlen)
{
	mdm_err rc = config_file_read(path, "configuration file", CONFIG_MAX_FILE, 0, out, outlen);

	if (rc == MDM_ERR_NOT_FOUND) {
		if (!required)
			return MDM_OK;
		log_error("config: cannot open %s: %s", path, strerror(ENOENT));
		return MDM_ERR_CONFIG;
	}
	return rc;
}

static int config_is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Parses `key = value` lines; # starts a comment line. */
static MDM_WUR mdm_err config_parse(config *c, const char *path, const char *buf, size_t len)
{
	int seen[CONFIG_NKEYS] = {0};
	size_t pos = 0;
	unsigned lineno = 0;

	while (pos < len) {
		const char *line = buf + pos, *eol = memchr(line, '\n', len - pos);
		size_t n = eol ? (size_t)(eol - line) : len - pos;
		const char *k, *ke, *v, *ve, *eq;
		char key[64];
		int i;
		mdm_err rc;

		pos += n + (eol ? 1 : 0);
		lineno++;
		if (memchr(line, '\0', n) != NULL) {
			log_error("config: %s:%u: NUL byte", path, lineno);
			return MDM_ERR_CONFIG;
		}
		k = line;
		ve = line + n;
		while (k < ve && config_is_space(*k))
			k++;
		if (k == ve || *k == '#')
			continue;
		if ((eq = memchr(k, '=', (size_t)(ve - k))) == NULL) {
			log_error("config: %s:%u: expected `key = value`", path, lineno);
			return MDM_ERR_CONFIG;
		}
		ke = eq;
		while (ke > k && config_is_space(ke[-1]))
			ke--;
		v = eq + 1;
		while (v < ve && config_is_space(*v))
			v++;
		while (ve > v && config_is_space(ve[-1]))
			ve--;
		if (ke == k || (size_t)(ke - k) >= sizeof(key)) {
			log_error("config: %s:%u: bad key", path, lineno);
			return MDM_ERR_CONFIG;
		}
		memcpy(key, k, (size_t)(ke - k));
		key[ke - k] = '\0';
		if ((i = config_index(key)) < 0) {
			const char *why = config_retired_why(key);
			if (why != NULL)
				log_error(
				        "config: %s:%u: key \"%s\" was %s", path, lineno, key, why);
			else
				log_error("config: %s:%u: unknown key \"%s\" (docs/CONFIG.md lists "
				          "them)",
				        path, lineno, key);
			return MDM_ERR_CONFIG;
		}
		if (seen[i]++) {
			log_error("config: %s:%u: key \"%s\" set twice", path, lineno, key);
			return MDM_ERR_CONFIG;
		}
		if ((rc = config_set(c, i, v, (size_t)(ve - v), CONFIG_SRC_FILE)) != MDM_OK) {
			log_error("config: %s:%u: value of \"%s\" is too long", path, lineno, key);
			return rc;
		}
	}
	return MDM_OK;
}

static MDM_WUR mdm_err config_apply_env(config *c)
{
	for (size_t i = 0; i < sizeof(config_retired) / sizeof(config_retired[0]); i++) {
		char name[80];

		config_env_name(config_retired[i].name, name, sizeof(name));
		if (name[0] != '\0' && getenv(name) != NULL) {
			log_error("config: environment variable %s: %s was %s", name,
			        config_retired[i].name, config_retired[i].why);
			return MDM_ERR_CONFIG;
		}
	}
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		char name[80];
		const char *v;
		mdm_err rc;

		config_env_name(config_keys[i].name, name, sizeof(name));
		if (name[0] == '\0' || (v = getenv(name)) == NULL)
			continue;
		if ((rc = config_set(c, (int)i, v, strlen(v), CONFIG_SRC_ENV)) != MDM_OK) {
			log_error("config: environment variable %s is too long", name);
			return rc;
		}
	}
	return MDM_OK;
}

mdm_err config_load_file(const char *path, int path_required, config **out)
{
	config *c;
	char *buf = NULL;
	size_t len = 0;
	mdm_err rc;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return MDM_ERR_NOMEM;
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (config_keys[i].default_value == NULL)
			continue;
		rc = config_set(c, (int)i, config_keys[i].default_value,
		        strlen(config_keys[i].default_value), CONFIG_SRC_DEFAULT);
		if (rc != MDM_OK)
			goto out;
	}
	if (path != NULL) {
		if ((rc = config_read_file(path, path_required, &buf, &len)) != MDM_OK)
			goto out;
		if (buf != NULL && (rc = config_parse(c, path, buf, len)) != MDM_OK)
			goto out;
	}
	if ((rc = config_apply_env(c)) != MDM_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	free(buf);
	config_free(c);
	return rc;
}

mdm_err config_load(config **out)
{
	const char *path = getenv("MDM_CONFIG");

	if (path != NULL && *path != '\0')
		return config_load_file(path, 1, out);
	return config_load_file(CONFIG_DEFAULT_PATH, 0, out);
}

const char *config_get0(const config *c, const char *key)
{
	int i;

	if (c == NULL || key == NULL || (i = config_index(key)) < 0)
		return NULL;
	return c->value[i];
}

const char *config_source0(const config *c, const char *key)
{
	static const char *const names[] = {"unset", "default", "file", "env"};
	int i;

	if (c == NULL || key == NULL || (i = config_index(key)) < 0)
		return "unset";
	return c->value[i] ? names[c->src[i]] : "unset";
}

mdm_err config_dump(const config *c, FILE *fp)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const char *v = c->value[i];
		int r;

		if (v == NULL)
			r = fprintf(fp, "# %s (unset)\n", config_keys[i].name);
		else if (config_keys[i].secret)
			r = fprintf(fp, "%s = (secret, set) # from %s\n", config_keys[i].name,
			        config_source0(c, config_keys[i].name));
		else
			r = fprintf(fp, "%s = %s # from %s\n", config_keys[i].name, v,
			        config_source0(c, config_keys[i].name));
		if (r < 0)
			return MDM_ERR_IO;
	}
	return MDM_OK;
}

/* Yes/no configuration values. */
mdm_err config_get_bool(const config *cfg, const char *key, int *out)
{
	const char *v = config_get0(cfg, key);

	*out = 0;
	if (v == NULL || strcmp(v, "no") == 0)
		return MDM_OK;
	if (strcmp(v, "yes") == 0) {
		*out = 1;
		return MDM_OK;
	}
	log_error("config: %s must be yes or no", key);
	return MDM_ERR_CONFIG;
}

mdm_err config_get_int(const config *cfg, const char *key, int lo, int hi, int *out)
{
	const char *v = config_get0(cfg, key);
	char *end;
	long n;

	*out = 0;
	if (v == NULL) {
		log_error("config: %s is required", key);
		return MDM_ERR_CONFIG;
	}
	n = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
		log_error("config: %s must be a whole number from %d to %d", key, lo, hi);
		return MDM_ERR_CONFIG;
	}
	*out = (int)n;
	return MDM_OK;
}
