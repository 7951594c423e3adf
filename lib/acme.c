/*
 * ACME for Apple devices (lib/acme.h): RFC 8555 requests, the JWS rules
 * of its section 6, and device-attest-01 (draft-acme-device-attest).
 * State and the device policy are in SQL (sql/027_acme.sql: one function
 * per endpoint); this file checks what arrives and builds the answers.
 */
#include "acme.h"
#include "attest.h"
#include "base64.h"
#include "ca.h"
#include "json.h"
#include "jws.h"
#include "log.h"
#include "mdm_limits.h"
#include "x509.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ACME_ERR "urn:ietf:params:acme:error:"
/* A CSR (DER) in finalize: far above a P-384 or RSA-4096 request. */
#define ACME_MAX_CSR (16 * 1024)

struct acme_server {
	db *db;
	const config *cfg;
	char base[1024];     /* https://host/acme */
	size_t base_path_at; /* offset of the path in base ("/acme") */
	int nonce_ttl, order_ttl, allow_serial;
	attest_trust *trust;
	struct ca_state *ca;
	struct x509_issue_policy policy;
};

/* One request on its way through. */
struct acme_req {
	struct acme_server *s;
	struct acme_reply *out;
	time_t now;
	char nonce[80]; /* the Replay-Nonce of the answer, "" until made */
	char url[2200]; /* the request's URL: base + route */
	jws_msg *m;
	jws_key *key;
	long long account;
	json_value *payload; /* NULL for POST-as-GET */
};

const char *acme_base_url(const struct acme_server *s)
{
	return s->base;
}

void acme_reply_clear(struct acme_reply *r)
{
	if (r == NULL)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

void acme_server_free(struct acme_server *s)
{
	if (s == NULL)
		return;
	attest_trust_free(s->trust);
	ca_state_free(s->ca);
	free(s);
}

mdm_err acme_server_new(db *d, const config *cfg, struct acme_server **out)
{
	struct acme_server *s = NULL;
	const char *base = config_get0(cfg, "acme_base_url"), *pub = config_get0(cfg, "public_url");
	const char *p;
	size_t n;
	mdm_err rc;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MDM_ERR_NOMEM;
	s->db = d;
	s->cfg = cfg;
	if (base != NULL && *base)
		n = (size_t)snprintf(s->base, sizeof(s->base), "%s", base);
	else if (pub != NULL && *pub)
		n = (size_t)snprintf(s->base, sizeof(s->base), "%s/acme", pub);
	else {
		log_error("config: acme_base_url (or public_url) must be set: ACME URLs are "
		          "absolute (RFC 8555 section 7.1) and checked against the JWS url");
		rc = MDM_ERR_CONFIG;
		goto fail;
	}
	while (n > 0 && s->base[n - 1] == '/')
		s->base[--n] = '\0';
	if (n >= sizeof(s->base) - 1 || strncmp(s->base, "https://", 8) != 0 ||
	        (p = strchr(s->base + 8, '/')) == NULL) {
		log_error(
		        "config: acme_base_url must be https://host[:port]/path (RFC 8555 section "
		        "6.1: ACME is HTTPS only), e.g. https://mdm.example.com/acme");
		rc = MDM_ERR_CONFIG;
		goto fail;
	}
	s->base_path_at = (size_t)(p - s->base);
	if ((rc = config_get_int(cfg, "acme_nonce_ttl", 10, 86400, &s->nonce_ttl)) != MDM_OK ||
	        (rc = config_get_int(cfg, "acme_order_ttl", 60, 30 * 86400, &s->order_ttl)) !=
	                MDM_OK ||
	        (rc = config_get_bool(cfg, "acme_allow_serial_identifier", &s->allow_serial)) !=
	                MDM_OK ||
	        (rc = config_get_int(cfg, "cert_days", 1, 3650, &s->policy.days)) != MDM_OK ||
	        (rc = config_get_int(
	                 cfg, "cert_min_rsa_bits", 2048, 16384, &s->policy.min_rsa_bits)) != MDM_OK)
		goto fail;
	if ((rc = attest_trust_load(config_get0(cfg, "acme_attest_root_file"), &s->trust)) !=
	        MDM_OK)
		goto fail;
	*out = s;
	return MDM_OK;
fail:
	acme_server_free(s);
	return rc == MDM_ERR_NOMEM ? rc : MDM_ERR_CONFIG;
}

long long acme_url_id(const char *base, const char *url, const char *kind, const char *suffix)
{
	size_t bl = strlen(base), kl = strlen(kind);
	const char *p;
	long long id = 0;
	int digits = 0;

	if (strncmp(url, base, bl) != 0 || url[bl] != '/' || strncmp(url + bl + 1, kind, kl) != 0 ||
	        url[bl + 1 + kl] != '/')
		return 0;
	p = url + bl + kl + 2;
	if (*p == '0')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++digits > 18)
			return 0;
		id = id * 10 + (*p - '0');
	}
	if (digits == 0)
		return 0;
	if (suffix == NULL)
		return *p == '\0' ? id : 0;
	return strcmp(p, suffix) == 0 ? id : 0;
}

/* ------------------------------------------------------------ answers */

/* A formatted string in *out (caller frees); its length, or -1. */
static int acme_asprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int acme_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	int n;

	*out = NULL;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(*out, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return n;
}

static MDM_WUR mdm_err reply_header(struct acme_reply *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static mdm_err reply_header(struct acme_reply *r, const char *fmt, ...)
{
	size_t used = strlen(r->headers);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->headers + used, sizeof(r->headers) - used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(r->headers) - used) {
		r->headers[used] = '\0';
		return MDM_ERR_INTERNAL;
	}
	return MDM_OK;
}

static MDM_WUR mdm_err reply_body(
        struct acme_reply *r, int status, const char *ctype, const char *body, size_t len)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
	r->status = status;
	r->content_type = ctype;
	if ((r->body = malloc(len + 1)) == NULL)
		return MDM_ERR_NOMEM;
	memcpy(r->body, body, len);
	r->body[len] = '\0';
	r->len = len;
	return MDM_OK;
}

/* The Replay-Nonce of the answer (RFC 8555 section 6.5), made now if the request made none. */
static MDM_WUR mdm_err acme_fresh_nonce(struct acme_req *q)
{
	char ttl[16];
	const char *params[1] = {ttl};
	db_res *res = NULL;
	mdm_err rc;

	if (q->nonce[0])
		return MDM_OK;
	snprintf(ttl, sizeof(ttl), "%d", q->s->nonce_ttl);
	rc = db_exec_once(q->s->db, "SELECT mdm.acme_nonce_new($1::integer)", 1, params, &res);
	if (rc == MDM_OK && db_res_rows(res) == 1 && db_res_get0(res, 0, 0) != NULL)
		snprintf(q->nonce, sizeof(q->nonce), "%s", db_res_get0(res, 0, 0));
	else if (rc == MDM_OK)
		rc = MDM_ERR_DB;
	db_res_free(res);
	return rc;
}

/* Every answer's common headers: Replay-Nonce, the directory link, no caching. */
static MDM_WUR mdm_err acme_finish(struct acme_req *q)
{
	mdm_err rc;

	if ((rc = acme_fresh_nonce(q)) != MDM_OK)
		return rc;
	return reply_header(q->out,
	        "Replay-Nonce: %s\r\nLink: <%s/directory>;rel=\"index\"\r\n"
	        "Cache-Control: no-store\r\n",
	        q->nonce, q->s->base);
}

/*
 * An RFC 7807 problem document with an ACME error type (RFC 8555 section
 * 6.7).  The detail is ours (no secrets, no request bytes but what is
 * named).  Logged at info: the refusal and its rule.
 */
static MDM_WUR mdm_err acme_problem(struct acme_req *q, const char *type, int status,
        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static mdm_err acme_problem(struct acme_req *q, const char *type, int status, const char *fmt, ...)
{
	char detail[768];
	char *quoted = NULL, *body = NULL;
	const char *alg;
	va_list ap;
	int n;
	mdm_err rc;

	va_start(ap, fmt);
	(void)vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	log_info("acme: refused (%s): %s", type, detail);
	if ((rc = json_quote(detail, strlen(detail), &quoted)) != MDM_OK) {
		/* Not UTF-8 (a bug: details are ours): say less rather than nothing. */
		if ((rc = json_quote("refused", 7, &quoted)) != MDM_OK)
			return rc;
	}
	/* RFC 8555 section 6.2: badSignatureAlgorithm lists the algorithms we take. */
	alg = strcmp(type, "badSignatureAlgorithm") == 0 ? jws_algorithms_json() : NULL;
	n = acme_asprintf(&body, "{\"type\":\"" ACME_ERR "%s\",\"detail\":%s,\"status\":%d%s%s}",
	        type, quoted, status, alg ? ",\"algorithms\":" : "", alg ? alg : "");
	free(quoted);
	if (n < 0)
		return MDM_ERR_NOMEM;
	rc = reply_body(q->out, status, "application/problem+json", body, (size_t)n);
	free(body);
	if (rc != MDM_OK)
		return rc;
	return acme_finish(q);
}

/* A JSON object answer (text from SQL's jsonb or built here). */
static MDM_WUR mdm_err acme_json(struct acme_req *q, int status, const char *json)
{
	mdm_err rc;

	if ((rc = reply_body(q->out, status, "application/json", json, strlen(json))) != MDM_OK)
		return rc;
	return acme_finish(q);
}

/* What a database failure answers: 503 when it is away (retry), else serverInternal. */
static MDM_WUR mdm_err acme_db_fail(struct acme_req *q, mdm_err rc, const char *what)
{
	log_error("acme: %s failed (%s)", what, err_str(rc));
	if (rc == MDM_ERR_DB_CONN) {
		/* No nonce can be made either: the program's 503 with Retry-After. */
		return rc;
	}
	return acme_problem(q, "serverInternal", 500, "%s failed", what);
}

/* ------------------------------------------------------------ GET and HEAD */

static MDM_WUR mdm_err acme_directory(struct acme_req *q)
{
	const char *b = q->s->base;
	char *body = NULL;
	int n;
	mdm_err rc;

	/*
	 * RFC 8555 section 7.1.1.  keyChange is left out: a device's account
	 * key lives as long as its ACME payload and is never rolled over.
	 * revokeCert is left out: operators revoke in SQL
	 * (mdm.certificate_revoke), and a device never revokes its identity.
	 */
	n = acme_asprintf(&body,
	        "{\"newNonce\":\"%s/new-nonce\",\"newAccount\":\"%s/new-account\","
	        "\"newOrder\":\"%s/new-order\",\"meta\":{\"externalAccountRequired\":false}}",
	        b, b, b);
	if (n < 0)
		return MDM_ERR_NOMEM;
	rc = reply_body(q->out, 200, "application/json", body, (size_t)n);
	free(body);
	if (rc != MDM_OK)
		return rc;
	return acme_finish(q);
}

static MDM_WUR mdm_err acme_new_nonce(struct acme_req *q, const char *method)
{
	mdm_err rc;

	/* RFC 8555 section 7.2: 200 for HEAD, 204 for GET, never cached. */
	if ((rc = reply_body(q->out, strcmp(method, "HEAD") == 0 ? 200 : 204, "text/plain", "",
	             0)) != MDM_OK)
		return rc;
	return acme_finish(q);
}

/* ------------------------------------------------------------ JWS (RFC 8555 6.2 - 6.5) */

enum acme_key_kind { ACME_BY_JWK, ACME_BY_KID };

/*
 * The checks every POST passes before its endpoint: media type, the JWS
 * and its protected header, the url, the nonce, the key (jwk for
 * newAccount, kid for the others) and the signature.  MDM_OK with q->m
 * and q->payload set, or MDM_ERR_AUTH after the problem was made (the
 * caller returns MDM_OK with it), or another error with no answer.
 */
static MDM_WUR mdm_err acme_jws(struct acme_req *q, const char *ctype, const uint8_t *body,
        size_t len, enum acme_key_kind want)
{
	char err[256] = "", ttl[16], acct[24];
	const char *params[3];
	db_res *res = NULL;
	mdm_err rc;
	int nonce_ok;

	if (ctype == NULL || strncasecmp(ctype, "application/jose+json", 21) != 0 ||
	        (ctype[21] != '\0' && ctype[21] != ';')) {
		rc = acme_problem(q, "malformed", 415,
		        "RFC 8555 section 6.2: a request is Content-Type application/jose+json");
		return rc == MDM_OK ? MDM_ERR_AUTH : rc;
	}
	rc = jws_parse((const char *)body, len, &q->m, err, sizeof(err));
	if (rc == MDM_ERR_UNSUPPORTED)
		rc = acme_problem(q, "badSignatureAlgorithm", 400, "%s", err);
	else if (rc == MDM_ERR_FORBIDDEN)
		rc = acme_problem(q, "badPublicKey", 400, "%s", err);
	else if (rc == MDM_ERR_CONFLICT) /* no nonce: RFC 8555 section 6.5 */
		rc = acme_problem(q, "badNonce", 400, "%s", err);
	else if (rc == MDM_ERR_PARSE || rc == MDM_ERR_LIMIT)
		rc = acme_problem(q, "malformed", 400, "%s", err);
	else if (rc == MDM_OK)
		goto parsed;
	return rc == MDM_OK ? MDM_ERR_AUTH : rc;
parsed:
	/* RFC 8555 section 6.4: the url the client signed is the one it asked for. */
	if (strcmp(q->m->url, q->url) != 0) {
		rc = acme_problem(q, "unauthorized", 401,
		        "RFC 8555 section 6.4: the JWS url header is not the request URL");
		return rc == MDM_OK ? MDM_ERR_AUTH : rc;
	}
	/* RFC 8555 section 6.2: jwk for newAccount (and revokeCert), kid for the rest. */
	if (want == ACME_BY_JWK && q->m->jwk == NULL) {
		rc = acme_problem(q, "malformed", 400,
		        "RFC 8555 section 6.2: newAccount is signed with a jwk, not a kid");
		return rc == MDM_OK ? MDM_ERR_AUTH : rc;
	}
	if (want == ACME_BY_KID && q->m->kid == NULL) {
		rc = acme_problem(q, "malformed", 400,
		        "RFC 8555 section 6.2: this request is signed with the account's kid, "
		        "not a jwk");
		return rc == MDM_OK ? MDM_ERR_AUTH : rc;
	}
	if (want == ACME_BY_KID &&
	        (q->account = acme_url_id(q->s->base, q->m->kid, "acct", NULL)) == 0) {
		rc = acme_problem(q, "accountDoesNotExist", 400,
		        "RFC 8555 section 6.2: kid is not an account URL of this server");
		return rc == MDM_OK ? MDM_ERR_AUTH : rc;
	}
	snprintf(ttl, sizeof(ttl), "%d", q->s->nonce_ttl);
	snprintf(acct, sizeof(acct), "%lld", q->account);
	params[0] = q->m->nonce;
	params[1] = q->account ? acct : NULL;
	params[2] = ttl;
	rc = db_exec_once(q->s->db,
	        "SELECT nonce_ok, new_nonce, jwk, account_status "
	        "FROM mdm.acme_begin($1, $2::bigint, $3::integer)",
	        3, params, &res);
	if (rc != MDM_OK)
		return acme_db_fail(q, rc, "the nonce check") == MDM_OK ? MDM_ERR_AUTH : rc;
	if (db_res_rows(res) != 1 || db_res_get0(res, 0, 1) == NULL) {
		db_res_free(res);
		return acme_db_fail(q, MDM_ERR_DB, "the nonce check") == MDM_OK ? MDM_ERR_AUTH
		                                                                : MDM_ERR_DB;
	}
	nonce_ok = strcmp(db_res_get0(res, 0, 0), "t") == 0;
	snprintf(q->nonce, sizeof(q->nonce), "%s", db_res_get0(res, 0, 1));
	if (!nonce_ok) {
		db_res_free(res);
		/* RFC 8555 section 6.5: badNonce, and the answer's Replay-Nonce is fresh. */
		rc = acme_problem(q, "badNonce", 400,
		        "RFC 8555 section 6.5: the nonce is unknown, expired or used already");
		return rc == MDM_OK ? MDM_ERR_AUTH : rc;
	}
	if (want == ACME_BY_KID) {
		const char *jwk = db_res_get0(res, 0, 2), *st = db_res_get0(res, 0, 3);

		if (jwk == NULL) {
			db_res_free(res);
			rc = acme_problem(q, "accountDoesNotExist", 400,
			        "RFC 8555 section 6.2: kid names no account of this server");
			return rc == MDM_OK ? MDM_ERR_AUTH : rc;
		}
		if (st == NULL || strcmp(st, "valid") != 0) {
			db_res_free(res);
			rc = acme_problem(q, "unauthorized", 401,
			        "RFC 8555 section 7.1.2: the account is not valid");
			return rc == MDM_OK ? MDM_ERR_AUTH : rc;
		}
		rc = jws_key_from_jwk(jwk, strlen(jwk), &q->key, err, sizeof(err));
		db_res_free(res);
		if (rc != MDM_OK)
			return acme_db_fail(q, MDM_ERR_INTERNAL,
			               "reading the stored account key") == MDM_OK
			        ? MDM_ERR_AUTH
			        : MDM_ERR_INTERNAL;
	} else {
		db_res_free(res);
	}
	rc = jws_verify(q->m, want == ACME_BY_JWK ? q->m->jwk : q->key, err, sizeof(err));
	if (rc == MDM_ERR_FORBIDDEN)
		rc = acme_problem(q, "badSignatureAlgorithm", 400, "%s", err);
	else if (rc != MDM_OK)
		rc = acme_problem(q, "malformed", 400, "%s", err);
	else
		goto verified;
	return rc == MDM_OK ? MDM_ERR_AUTH : rc;
verified:
	/* "" is POST-as-GET (RFC 8555 section 6.3); anything else is one JSON object. */
	if (q->m->payload_len > 0) {
		rc = json_parse((const char *)q->m->payload, q->m->payload_len, &q->payload, err,
		        sizeof(err));
		/* json_parse hands its reason up: the refusal is logged here. */
		if (rc != MDM_OK)
			rc = mdm_refuse("acme", NULL, 0, rc, "the JWS payload: %s", err);
		if (rc == MDM_OK && json_type_of(q->payload) != JSON_OBJECT)
			rc = mdm_refuse("acme", err, sizeof(err), MDM_ERR_PARSE,
			        "RFC 8555 section 7: a payload is a JSON object");
		if (rc != MDM_OK) {
			rc = acme_problem(q, "malformed", 400, "%s", err);
			return rc == MDM_OK ? MDM_ERR_AUTH : rc;
		}
	}
	return MDM_OK;
}

/* Refuses a payload where RFC 8555 section 6.3 wants POST-as-GET. */
static MDM_WUR mdm_err acme_want_get(struct acme_req *q, int *refused)
{
	*refused = 0;
	if (q->m->payload_len == 0)
		return MDM_OK;
	*refused = 1;
	return acme_problem(q, "malformed", 400,
	        "RFC 8555 section 6.3: this resource is read with POST-as-GET (an empty payload)");
}

/* ------------------------------------------------------------ accounts */

static MDM_WUR mdm_err acme_account_json(struct acme_req *q, int status, long long id)
{
	char *body = NULL;
	int n;
	mdm_err rc;

	n = acme_asprintf(
	        &body, "{\"status\":\"valid\",\"orders\":\"%s/acct/%lld/orders\"}", q->s->base, id);
	if (n < 0)
		return MDM_ERR_NOMEM;
	rc = acme_json(q, status, body);
	free(body);
	if (rc != MDM_OK)
		return rc;
	return reply_header(q->out, "Location: %s/acct/%lld\r\n", q->s->base, id);
}

static MDM_WUR mdm_err acme_new_account(struct acme_req *q)
{
	const json_value *v;
	int only = 0;
	const char *params[3];
	db_res *res = NULL;
	long long id;
	int created;
	mdm_err rc;

	if (q->payload == NULL)
		return acme_problem(q, "malformed", 400,
		        "RFC 8555 section 7.3: newAccount needs a JSON object");
	if ((v = json_get(q->payload, "onlyReturnExisting")) != NULL && !json_bool(v, &only))
		return acme_problem(q, "malformed", 400,
		        "RFC 8555 section 7.3: onlyReturnExisting is a boolean");
	if (json_get(q->payload, "externalAccountBinding") != NULL)
		return acme_problem(q, "malformed", 400,
		        "RFC 8555 section 7.3.4: this server takes no external account binding");
	/* contact and termsOfServiceAgreed are accepted and not kept: devices send none. */
	params[0] = q->m->jwk_json;
	params[1] = q->m->thumbprint;
	params[2] = only ? "true" : "false";
	rc = db_exec_once(q->s->db,
	        "SELECT id, status, created FROM mdm.acme_account_new($1, $2, $3::boolean)", 3,
	        params, &res);
	if (rc != MDM_OK)
		return acme_db_fail(q, rc, "newAccount");
	if (db_res_rows(res) != 1 || db_res_get0(res, 0, 0) == NULL) {
		db_res_free(res);
		return acme_problem(q, "accountDoesNotExist", 400,
		        "RFC 8555 section 7.3.1: no account has this key");
	}
	id = atoll(db_res_get0(res, 0, 0));
	created = strcmp(db_res_get0(res, 0, 2), "t") == 0;
	if (strcmp(db_res_get0(res, 0, 1), "valid") != 0) {
		db_res_free(res);
		return acme_problem(
		        q, "unauthorized", 401, "RFC 8555 section 7.1.2: the account is not valid");
	}
	db_res_free(res);
	if (created)
		log_info("acme: account %lld created", id);
	/* RFC 8555 section 7.3: 201 for a new account, 200 for the key's existing one. */
	return acme_account_json(q, created ? 201 : 200, id);
}

static MDM_WUR mdm_err acme_account_post(struct acme_req *q, long long id)
{
	const json_value *st;

	if (id != q->account)
		return acme_problem(q, "unauthorized", 403,
		        "RFC 8555 section 7.3.2: an account is read or updated by its own key");
	if (q->payload != NULL && (st = json_get(q->payload, "status")) != NULL)
		return acme_problem(q, "malformed", 400,
		        "RFC 8555 section 7.3.6: account deactivation is not offered (an operator "
		        "sets mdm.acme_account.status)");
	return acme_account_json(q, 200, id);
}

static MDM_WUR mdm_err acme_account_orders(struct acme_req *q, long long id)
{
	char acct[24];
	const char *params[2] = {acct, q->s->base};
	db_res *res = NULL;
	mdm_err rc;
	int refused;

	if ((rc = acme_want_get(q, &refused)) != MDM_OK || refused)
		return rc;
	if (id != q->account)
		return acme_problem(q, "unauthorized", 403,
		        "RFC 8555 section 7.1.2.1: an account's orders are read by its own key");
	snprintf(acct, sizeof(acct), "%lld", id);
	rc = db_exec(q->s->db,
	        "SELECT jsonb_build_object('orders', coalesce(jsonb_agg($2 || '/order/' || o.id "
	        "ORDER BY o.id), '[]'))::text FROM mdm.acme_order o WHERE o.account_id = "
	        "$1::bigint AND o.status IN ('pending', 'ready', 'processing') AND o.expires_at > "
	        "now()",
	        2, params, &res);
	if (rc != MDM_OK)
		return acme_db_fail(q, rc, "the orders list");
	rc = acme_json(q, 200, db_res_get0(res, 0, 0));
	db_res_free(res);
	return rc;
}

/* ------------------------------------------------------------ orders */

static MDM_WUR mdm_err acme_new_order(struct acme_req *q)
{
	const json_value *ids, *id0;
	const char *type, *value;
	char acct[24], ttl[16];
	const char *params[5];
	db_res *res = NULL;
	mdm_err rc;

	if (q->payload == NULL)
		return acme_problem(
		        q, "malformed", 400, "RFC 8555 section 7.4: newOrder needs a JSON object");
	if (json_get(q->payload, "notBefore") != NULL || json_get(q->payload, "notAfter") != NULL)
		return acme_problem(q, "malformed", 400,
		        "RFC 8555 section 7.4: notBefore and notAfter are not offered (the CA "
		        "chooses the validity)");
	ids = json_get(q->payload, "identifiers");
	if (json_type_of(ids) != JSON_ARRAY || json_array_len(ids) != 1)
		return acme_problem(q, "malformed", 400,
		        "draft-acme-device-attest section 3: an order has exactly one identifier");
	id0 = json_array_at(ids, 0);
	type = json_get_cstr(id0, "type");
	value = json_get_cstr(id0, "value");
	if (json_type_of(id0) != JSON_OBJECT || type == NULL || value == NULL ||
	        json_object_len(id0) != 2)
		return acme_problem(q, "malformed", 400,
		        "RFC 8555 section 7.1.3: an identifier is {\"type\", \"value\"}, both "
		        "strings");
	if (strcmp(type, "permanent-identifier") != 0)
		return acme_problem(q, "unsupportedIdentifier", 400,
		        "draft-acme-device-attest section 3: this server orders "
		        "permanent-identifier "
		        "only");
	if (*value == '\0' || strlen(value) > 256)
		return acme_problem(q, "rejectedIdentifier", 400,
		        "the identifier is not a ClientIdentifier this server accepts");
	snprintf(acct, sizeof(acct), "%lld", q->account);
	snprintf(ttl, sizeof(ttl), "%d", q->s->order_ttl);
	params[0] = acct;
	params[1] = value;
	params[2] = q->s->allow_serial ? "true" : "false";
	params[3] = ttl;
	params[4] = q->s->base;
	rc = db_exec_once(q->s->db,
	        "SELECT order_id, body::text FROM mdm.acme_order_new($1::bigint, $2, "
	        "$3::boolean, $4::integer, $5)",
	        5, params, &res);
	if (rc != MDM_OK)
		return acme_db_fail(q, rc, "newOrder");
	if (db_res_rows(res) != 1 || db_res_get0(res, 0, 0) == NULL) {
		db_res_free(res);
		/* One answer for unknown, spent and expired codes: nothing says which. */
		return acme_problem(q, "rejectedIdentifier", 400,
		        "the identifier is not a ClientIdentifier this server accepts");
	}
	log_info("acme: account %lld: order %s created", q->account, db_res_get0(res, 0, 0));
	rc = acme_json(q, 201, db_res_get0(res, 0, 1));
	if (rc == MDM_OK)
		rc = reply_header(
		        q->out, "Location: %s/order/%s\r\n", q->s->base, db_res_get0(res, 0, 0));
	db_res_free(res);
	return rc;
}

/* POST-as-GET of an order or an authorization: what SQL answers, or 404 for
 * what is not the account's (the same as for what does not exist). */
static MDM_WUR mdm_err acme_get_object(
        struct acme_req *q, const char *sql, long long id, const char *what)
{
	char acct[24], oid[24];
	const char *params[3] = {acct, oid, q->s->base};
	db_res *res = NULL;
	mdm_err rc;
	int refused;

	if ((rc = acme_want_get(q, &refused)) != MDM_OK || refused)
		return rc;
	snprintf(acct, sizeof(acct), "%lld", q->account);
	snprintf(oid, sizeof(oid), "%lld", id);
	if ((rc = db_exec(q->s->db, sql, 3, params, &res)) != MDM_OK)
		return acme_db_fail(q, rc, what);
	if (db_res_rows(res) != 1 || db_res_get0(res, 0, 0) == NULL)
		rc = acme_problem(q, "malformed", 404, "no such %s", what);
	else
		rc = acme_json(q, 200, db_res_get0(res, 0, 0));
	db_res_free(res);
	return rc;
}

/* ------------------------------------------------------------ device-attest-01 */

static MDM_WUR mdm_err acme_challenge(struct acme_req *q, long long id)
{
	char acct[24], cid[24], na[24], sip[8], kexts[8], err[512] = "";
	const char *params[17];
	int lengths[17] = {0}, formats[17] = {0};
	db_res *res = NULL, *res2 = NULL;
	const char *att;
	uint8_t *obj = NULL;
	size_t objlen = 0;
	attest_result ar;
	const char *etype = NULL;
	long long authz;
	mdm_err rc;

	memset(&ar, 0, sizeof(ar));
	snprintf(acct, sizeof(acct), "%lld", q->account);
	snprintf(cid, sizeof(cid), "%lld", id);
	params[0] = acct;
	params[1] = cid;
	params[2] = q->s->base;
	rc = db_exec(q->s->db,
	        "SELECT token, status, authz_id, expired, body::text "
	        "FROM mdm.acme_challenge_get($1::bigint, $2::bigint, $3)",
	        3, params, &res);
	if (rc != MDM_OK)
		return acme_db_fail(q, rc, "the challenge");
	if (db_res_rows(res) != 1 || db_res_get0(res, 0, 0) == NULL) {
		rc = acme_problem(q, "malformed", 404, "no such challenge");
		goto out;
	}
	authz = atoll(db_res_get0(res, 0, 2));
	/* POST-as-GET, or a challenge answered already: its state (RFC 8555 section 7.5.1). */
	if (q->payload == NULL || strcmp(db_res_get0(res, 0, 1), "pending") != 0) {
		if ((rc = acme_json(q, 200, db_res_get0(res, 0, 4))) == MDM_OK)
			rc = reply_header(
			        q->out, "Link: <%s/authz/%lld>;rel=\"up\"\r\n", q->s->base, authz);
		goto out;
	}
	att = json_get_cstr(q->payload, "attObj");
	if (att == NULL) {
		rc = acme_problem(q, "malformed", 400,
		        "draft-acme-device-attest section 5: the answer is {\"attObj\": "
		        "base64url}");
		goto out;
	}
	rc = base64url_decode(att, strlen(att), MDM_ATTEST_MAX_BYTES, &obj, &objlen);
	if (rc == MDM_ERR_LIMIT) {
		etype = "badAttestationStatement";
		snprintf(err, sizeof(err), "the attestation object is over %d bytes",
		        MDM_ATTEST_MAX_BYTES);
	} else if (rc != MDM_OK) {
		etype = "badAttestationStatement";
		snprintf(err, sizeof(err),
		        "draft-acme-device-attest section 5: attObj is not base64url");
	} else {
		const char *tok = db_res_get0(res, 0, 0);

		rc = attest_verify_apple(q->s->trust, obj, objlen, (const uint8_t *)tok,
		        strlen(tok), (long long)q->now, &ar, err, sizeof(err));
		if (rc == MDM_ERR_NOMEM)
			goto out;
		if (rc != MDM_OK)
			etype = "badAttestationStatement";
		else if (ar.udid[0] == '\0' || ar.serial[0] == '\0') {
			etype = "badAttestationStatement";
			snprintf(err, sizeof(err),
			        "the attestation states no serial number or UDID "
			        "(1.2.840.113635.100.8.9.1, .8.9.2)");
		}
	}
	snprintf(na, sizeof(na), "%lld", ar.not_after);
	params[3] = etype;
	params[4] = etype ? err : NULL;
	params[5] = ar.serial;
	params[6] = ar.udid;
	params[7] = ar.os_version;
	params[8] = ar.sepos_version;
	params[9] = ar.model;
	params[10] = etype ? "" : (const char *)ar.spki_der;
	lengths[10] = etype ? 0 : (int)ar.spki_len;
	formats[10] = 1;
	params[11] = na;
	params[12] = etype ? "" : ar.chain_pem;
	snprintf(sip, sizeof(sip), "%d", ar.sip_enabled);
	snprintf(kexts, sizeof(kexts), "%d", ar.kext_allowed);
	params[13] = ar.llb_version;
	params[14] = sip;
	params[15] = ar.secure_boot;
	params[16] = kexts;
	/* Safe to run twice (db_exec's retry): a repeat finds the challenge answered. */
	rc = db_exec_bin(q->s->db,
	        "SELECT status, problem_type, problem_detail, body::text "
	        "FROM mdm.acme_challenge_answer($1::bigint, $2::bigint, $3, $4, $5, $6, $7, $8, "
	        "$9, $10, $11, $12::bigint, $13, $14, $15::integer, $16, $17::integer)",
	        17, params, lengths, formats, &res2);
	if (rc != MDM_OK) {
		rc = acme_db_fail(q, rc, "recording the attestation");
		goto out;
	}
	if (db_res_rows(res2) != 1 || db_res_get0(res2, 0, 0) == NULL) {
		rc = acme_problem(q, "malformed", 404, "no such challenge");
		goto out;
	}
	if (db_res_get0(res2, 0, 1) != NULL) {
		/* The problem of the challenge (also stored in it, its authz and order). */
		log_info("acme: challenge %lld invalid", id);
		rc = acme_problem(q, db_res_get0(res2, 0, 1), 400, "%s", db_res_get0(res2, 0, 2));
	} else {
		log_info("acme: challenge %lld: attested device serial %s UDID %s", id, ar.serial,
		        ar.udid);
		rc = acme_json(q, 200, db_res_get0(res2, 0, 3));
	}
	if (rc == MDM_OK)
		rc = reply_header(
		        q->out, "Link: <%s/authz/%lld>;rel=\"up\"\r\n", q->s->base, authz);
out:
	attest_result_free(&ar);
	free(obj);
	db_res_free(res2);
	db_res_free(res);
	return rc;
}

/* ------------------------------------------------------------ finalize */

struct acme_fin {
	struct acme_req *q;
	long long order;
	struct X509_req_st *csr;
	/* results */
	const char *ptype; /* a refusal: problem type, status and detail */
	int pstatus;
	char detail[256];
	char *body; /* the order, on success */
	long long cert_id;
};

static MDM_WUR mdm_err acme_fin_refuse(
        struct acme_fin *f, const char *type, int status, const char *detail)
{
	f->ptype = type;
	f->pstatus = status;
	snprintf(f->detail, sizeof(f->detail), "%s", detail);
	return MDM_OK;
}

static MDM_WUR mdm_err acme_finalize_tx(db *d, void *arg)
{
	struct acme_fin *f = arg;
	struct acme_server *s = f->q->s;
	char acct[24], oid[24], cid[24], aid[24];
	const char *params[4];
	db_res *res = NULL;
	uint8_t *spki = NULL, *csr_spki = NULL;
	size_t spki_len = 0, csr_spki_len = 0;
	struct x509_st *cert = NULL;
	char udid[160], prev[24] = "";
	mdm_err rc;

	f->ptype = NULL;
	free(f->body);
	f->body = NULL;
	snprintf(acct, sizeof(acct), "%lld", f->q->account);
	snprintf(oid, sizeof(oid), "%lld", f->order);
	params[0] = acct;
	params[1] = oid;
	if ((rc = db_exec(d,
	             "SELECT status, expired, code_ok, spki, udid, attestation_id "
	             "FROM mdm.acme_finalize_begin($1::bigint, $2::bigint)",
	             2, params, &res)) != MDM_OK)
		goto out;
	if (db_res_rows(res) != 1 || db_res_get0(res, 0, 0) == NULL) {
		rc = acme_fin_refuse(f, "malformed", 404, "no such order");
		goto out;
	}
	if (strcmp(db_res_get0(res, 0, 1), "t") == 0) {
		rc = acme_fin_refuse(
		        f, "orderNotReady", 403, "RFC 8555 section 7.1.6: the order has expired");
		goto out;
	}
	if (strcmp(db_res_get0(res, 0, 0), "ready") != 0) {
		rc = acme_fin_refuse(f, "orderNotReady", 403,
		        "RFC 8555 section 7.4: the order is not ready (its challenge is not valid, "
		        "or it was finalized already)");
		goto out;
	}
	if (strcmp(db_res_get0(res, 0, 2), "t") != 0) {
		rc = acme_fin_refuse(f, "unauthorized", 403,
		        "the ClientIdentifier has bought its certificate already, or expired");
		goto out;
	}
	if ((rc = db_res_get_bytea(res, 0, 3, &spki, &spki_len)) != MDM_OK)
		goto out;
	snprintf(udid, sizeof(udid), "%s", db_res_get0(res, 0, 4));
	snprintf(aid, sizeof(aid), "%s", db_res_get0(res, 0, 5));
	db_res_free(res);
	res = NULL;
	/* draft-acme-device-attest section 5: the certificate is for the attested key only. */
	if ((rc = x509_csr_spki_der(f->csr, &csr_spki, &csr_spki_len)) != MDM_OK)
		goto out;
	if (csr_spki_len != spki_len || memcmp(csr_spki, spki, spki_len) != 0) {
		char problem[400];

		params[0] = oid;
		snprintf(problem, sizeof(problem),
		        "{\"type\":\"" ACME_ERR "badCSR\",\"status\":400,\"detail\":\"the CSR's "
		        "key is not the attested key\"}");
		params[1] = problem;
		if ((rc = db_exec(d, "SELECT mdm.acme_finalize_refuse($1::bigint, $2::jsonb)", 2,
		             params, NULL)) != MDM_OK)
			goto out;
		rc = acme_fin_refuse(f, "badCSR", 400,
		        "draft-acme-device-attest section 5: the CSR's public key is not the "
		        "attested key");
		goto out;
	}
	rc = x509_issue(s->ca->active, s->ca->active_key, f->csr, &s->policy, f->q->now, &cert);
	if (rc == MDM_ERR_FORBIDDEN || rc == MDM_ERR_PARSE || rc == MDM_ERR_AUTH ||
	        rc == MDM_ERR_UNSUPPORTED) {
		rc = acme_fin_refuse(f, "badCSR", 400, "the CSR is outside the CA's policy");
		goto out;
	}
	if (rc != MDM_OK)
		goto out;
	/*
	 * A device with an identity already (re-enrolling through a new ACME
	 * payload): Apple attests this key on that very UDID, so the new
	 * certificate is recorded as renewed from the bound one, and its first
	 * request rebinds the UDID to it (identity_binding reason renewal), as
	 * after a SCEP RenewalReq.
	 */
	params[0] = udid;
	if ((rc = db_exec(d,
	             "WITH n AS (INSERT INTO mdm.device (udid) VALUES ($1) ON CONFLICT DO NOTHING) "
	             "SELECT identity_certificate_id::text FROM mdm.device WHERE udid = $1",
	             1, params, &res)) != MDM_OK)
		goto out;
	if (db_res_rows(res) == 1 && db_res_get0(res, 0, 0) != NULL)
		snprintf(prev, sizeof(prev), "%s", db_res_get0(res, 0, 0));
	db_res_free(res);
	res = NULL;
	if ((rc = ca_cert_insert(
	             d, cert, "device", udid, prev[0] ? prev : NULL, NULL, &f->cert_id)) != MDM_OK)
		goto out;
	snprintf(cid, sizeof(cid), "%lld", f->cert_id);
	params[0] = oid;
	params[1] = cid;
	params[2] = aid;
	params[3] = s->base;
	if ((rc = db_exec(d,
	             "SELECT mdm.acme_finalize_done($1::bigint, $2::bigint, $3::bigint, $4)::text",
	             4, params, &res)) != MDM_OK)
		goto out;
	if (db_res_rows(res) != 1 || db_res_get0(res, 0, 0) == NULL ||
	        (f->body = strdup(db_res_get0(res, 0, 0))) == NULL)
		rc = MDM_ERR_DB;
out:
	x509_cert_free(cert);
	free(csr_spki);
	free(spki);
	db_res_free(res);
	return rc;
}

static MDM_WUR mdm_err acme_finalize(struct acme_req *q, long long order)
{
	struct acme_fin f;
	const char *csr_b64;
	uint8_t *der = NULL;
	size_t dlen = 0;
	mdm_err rc;

	memset(&f, 0, sizeof(f));
	f.q = q;
	f.order = order;
	if (q->payload == NULL || (csr_b64 = json_get_cstr(q->payload, "csr")) == NULL)
		return acme_problem(q, "malformed", 400,
		        "RFC 8555 section 7.4: finalize is {\"csr\": base64url DER}");
	rc = base64url_decode(csr_b64, strlen(csr_b64), ACME_MAX_CSR, &der, &dlen);
	if (rc != MDM_OK)
		return acme_problem(q, "badCSR", 400,
		        "RFC 8555 section 7.4: csr is not base64url of at most %d bytes",
		        ACME_MAX_CSR);
	rc = x509_csr_from_der(der, dlen, &f.csr);
	free(der);
	if (rc != MDM_OK)
		return acme_problem(
		        q, "badCSR", 400, "RFC 8555 section 7.4: csr is not a PKCS#10 CSR");
	if (x509_csr_verify(f.csr) != MDM_OK) {
		x509_csr_free(f.csr);
		return acme_problem(q, "badCSR", 400,
		        "RFC 2986: the CSR's signature does not verify with its key");
	}
	/* Before the transaction: a load LISTENs for CA changes, which a rollback would undo. */
	rc = ca_refresh(q->s->db, q->s->cfg, &q->s->ca);
	if (rc == MDM_OK)
		rc = db_tx(q->s->db, acme_finalize_tx, &f);
	x509_csr_free(f.csr);
	if (rc == MDM_ERR_NOT_FOUND) {
		rc = acme_problem(q, "serverInternal", 500, "no CA (run `mdmctl ca init`)");
	} else if (rc != MDM_OK) {
		rc = acme_db_fail(q, rc, "finalize");
	} else if (f.ptype != NULL) {
		rc = acme_problem(q, f.ptype, f.pstatus, "%s", f.detail);
	} else {
		log_info("acme: order %lld: issued certificate %lld", order, f.cert_id);
		/*
		 * No Location (RFC 8555 section 7.4 does not ask for one): under
		 * mod_fcgid and mod_cgi, Apache turns any 200 with a Location into
		 * a 302 (the CGI client redirect), which clients follow with a GET.
		 */
		rc = acme_json(q, 200, f.body);
	}
	free(f.body);
	return rc;
}

/* ------------------------------------------------------------ certificate */

static MDM_WUR mdm_err acme_certificate(struct acme_req *q, long long order)
{
	char acct[24], oid[24];
	const char *params[2] = {acct, oid};
	db_res *res = NULL;
	uint8_t *der = NULL;
	size_t dlen = 0;
	struct x509_st *cert = NULL;
	char *leaf = NULL, *ca = NULL, *chain = NULL;
	size_t llen = 0, clen = 0;
	mdm_err rc;
	int refused;

	if ((rc = acme_want_get(q, &refused)) != MDM_OK || refused)
		return rc;
	snprintf(acct, sizeof(acct), "%lld", q->account);
	snprintf(oid, sizeof(oid), "%lld", order);
	if ((rc = db_exec(q->s->db, "SELECT mdm.acme_certificate_get($1::bigint, $2::bigint)", 2,
	             params, &res)) != MDM_OK)
		return acme_db_fail(q, rc, "the certificate");
	if (db_res_rows(res) != 1 || db_res_is_null(res, 0, 0)) {
		db_res_free(res);
		return acme_problem(q, "malformed", 404, "no such certificate");
	}
	if ((rc = db_res_get_bytea(res, 0, 0, &der, &dlen)) != MDM_OK ||
	        (rc = x509_cert_from_der(der, dlen, &cert)) != MDM_OK ||
	        (rc = x509_cert_to_pem(cert, &leaf, &llen)) != MDM_OK)
		goto fail;
	if ((rc = ca_refresh(q->s->db, q->s->cfg, &q->s->ca)) != MDM_OK)
		goto fail;
	/* RFC 8555 section 7.4.2: the leaf, then the certificates that certify it. */
	for (size_t i = 0; i < q->s->ca->n_verify; i++)
		if (x509_cert_signed_by(cert, q->s->ca->verify[i])) {
			if ((rc = x509_cert_to_pem(q->s->ca->verify[i], &ca, &clen)) != MDM_OK)
				goto fail;
			break;
		}
	if ((chain = malloc(llen + clen + 1)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto fail;
	}
	memcpy(chain, leaf, llen);
	if (ca != NULL)
		memcpy(chain + llen, ca, clen);
	rc = reply_body(q->out, 200, "application/pem-certificate-chain", chain, llen + clen);
	if (rc == MDM_OK)
		rc = acme_finish(q);
	goto out;
fail:
	rc = acme_db_fail(q, rc, "the certificate");
out:
	free(chain);
	free(ca);
	free(leaf);
	x509_cert_free(cert);
	free(der);
	db_res_free(res);
	return rc;
}

/* ------------------------------------------------------------ dispatch */

static MDM_WUR mdm_err acme_post(
        struct acme_req *q, const char *ctype, const uint8_t *body, size_t len, const char *route)
{
	const char *b = q->s->base;
	long long id;
	mdm_err rc;
	int is_new_account = strcmp(route, "/new-account") == 0;

	rc = acme_jws(q, ctype, body, len, is_new_account ? ACME_BY_JWK : ACME_BY_KID);
	if (rc == MDM_ERR_AUTH)
		return MDM_OK; /* answered with its problem */
	if (rc != MDM_OK)
		return rc;
	if (is_new_account)
		return acme_new_account(q);
	if (strcmp(route, "/new-order") == 0)
		return acme_new_order(q);
	if ((id = acme_url_id(b, q->url, "acct", NULL)) != 0)
		return acme_account_post(q, id);
	if ((id = acme_url_id(b, q->url, "acct", "/orders")) != 0)
		return acme_account_orders(q, id);
	if ((id = acme_url_id(b, q->url, "order", NULL)) != 0)
		return acme_get_object(q,
		        "SELECT mdm.acme_order_get($1::bigint, $2::bigint, $3)::text", id, "order");
	if ((id = acme_url_id(b, q->url, "order", "/finalize")) != 0)
		return acme_finalize(q, id);
	if ((id = acme_url_id(b, q->url, "authz", NULL)) != 0)
		return acme_get_object(q,
		        "SELECT mdm.acme_authz_get($1::bigint, $2::bigint, $3)::text", id,
		        "authorization");
	if ((id = acme_url_id(b, q->url, "chall", NULL)) != 0)
		return acme_challenge(q, id);
	if ((id = acme_url_id(b, q->url, "cert", NULL)) != 0)
		return acme_certificate(q, id);
	return acme_problem(q, "malformed", 404, "no such ACME resource");
}

mdm_err acme_handle(struct acme_server *s, const char *method, const char *path,
        const char *content_type, const uint8_t *body, size_t len, time_t now,
        struct acme_reply *out)
{
	struct acme_req q;
	const char *bpath = s->base + s->base_path_at, *route;
	size_t bl = strlen(bpath);
	mdm_err rc;

	memset(out, 0, sizeof(*out));
	memset(&q, 0, sizeof(q));
	q.s = s;
	q.out = out;
	q.now = now;
	if (strncmp(path, bpath, bl) != 0 || (path[bl] != '/' && path[bl] != '\0'))
		return acme_problem(&q, "malformed", 404, "not an ACME URL of this server");
	route = path + bl;
	if ((size_t)snprintf(q.url, sizeof(q.url), "%s%s", s->base, route) >= sizeof(q.url))
		return acme_problem(&q, "malformed", 404, "not an ACME URL of this server");
	if (strcmp(route, "/new-nonce") == 0) {
		if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
			return acme_new_nonce(&q, method);
	} else if (strcmp(route, "/directory") == 0 || strcmp(route, "") == 0 ||
	        strcmp(route, "/") == 0) {
		if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
			return acme_directory(&q);
	} else if (strcmp(method, "POST") == 0) {
		rc = acme_post(&q, content_type, body, len, route);
		jws_key_free(q.key);
		jws_msg_free(q.m);
		json_free(q.payload);
		return rc;
	}
	/* RFC 8555 section 6.3: resources other than the directory and newNonce are POSTed. */
	if ((rc = acme_problem(&q, "malformed", 405,
	             "RFC 8555 section 6.3: %.8s is not how this resource is requested", method)) !=
	        MDM_OK)
		return rc;
	return reply_header(out, "Allow: %s\r\n",
	        strcmp(route, "/new-nonce") == 0 || strcmp(route, "/directory") == 0 ? "GET, HEAD"
	                                                                             : "POST");
}
