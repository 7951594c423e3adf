/*
 * acme: lib/acme.c and sql/027_acme.sql against a real PostgreSQL (a
 * database per test) and a CA made per test.  Requests are flattened JWS
 * signed here with OpenSSL directly (ES256, RFC 7518 section 3.4: the
 * client side is not ours), attestation objects come from the stand-in
 * Apple attestation CA (tests/support/ts_attest).  Every refusal is
 * checked for its ACME error type and for leaving no certificate issued.
 */
#include "acme.h"
#include "base64.h"
#include "ca.h"
#include "config.h"
#include "db.h"
#include "json.h"
#include "log.h"
#include "suites.h"
#include "ts_attest.h"
#include "ts_db.h"
#include "ts_pki.h"
#include "x509.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BASE "https://mdm.example.com/acme"

static char dir[256], other_dir[256], keypath[300];
static struct ts_db tdb;
static db *d;
static config *cfg;
static struct acme_server *srv;

static void start(void)
{
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(acme_server_new(d, cfg, &srv), MDM_OK);
}

static void stop(void)
{
	acme_server_free(srv);
	srv = NULL;
	config_free(cfg);
	cfg = NULL;
}

static void setup(void)
{
	char root[300];

	log_set_level(MDM_LOG__MAX);
	ts_db_create(&tdb, "acme");
	d = tdb.d;
	snprintf(dir, sizeof dir, "/tmp/mdm-acme-test-%ld", (long)getpid());
	snprintf(other_dir, sizeof other_dir, "/tmp/mdm-acme-test-%ld-other", (long)getpid());
	ck_assert_int_eq(ts_attest_ca_init(dir), 0);
	ck_assert_int_eq(ts_attest_ca_init(other_dir), 0);
	snprintf(keypath, sizeof keypath, "%s/ca.key", dir);
	ck_assert_int_eq(ca_init(d, "/CN=ACME Unit Test CA/O=mdm", 3650, 2048, keypath, NULL,
	                         time(NULL) - 86400),
	        MDM_OK);
	snprintf(root, sizeof root, "%s/" TS_ATTEST_ROOT, dir);
	setenv("MDM_ACME_ATTEST_ROOT_FILE", root, 1);
	setenv("MDM_ACME_BASE_URL", BASE, 1);
	unsetenv("MDM_ACME_ALLOW_SERIAL_IDENTIFIER");
	start();
}

static void teardown(void)
{
	char cmd[600];

	stop();
	d = NULL;
	ts_db_drop(&tdb);
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, other_dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int issued(void)
{
	return ts_db_count(d, "SELECT count(*) FROM mdm.certificate WHERE kind = 'device'");
}

/* ------------------------------------------------------------ the client side */

static char *b64u(const void *p, size_t len)
{
	char *s = NULL;
	size_t n;

	ck_assert_int_eq(base64url_encode(p, len, &s, &n), MDM_OK);
	return s;
}

static EVP_PKEY *ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	ck_assert_ptr_nonnull(k);
	return k;
}

/* The JWK of a P-256 key, members in RFC 7638 order. */
static char *jwk_of(EVP_PKEY *k)
{
	unsigned char x[32], y[32];
	BIGNUM *bx = NULL, *by = NULL;
	char *sx, *sy, *out;
	int n;

	ck_assert(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &bx));
	ck_assert(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &by));
	ck_assert_int_eq(BN_bn2binpad(bx, x, 32), 32);
	ck_assert_int_eq(BN_bn2binpad(by, y, 32), 32);
	sx = b64u(x, 32);
	sy = b64u(y, 32);
	n = snprintf(
	        NULL, 0, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", sx, sy);
	out = malloc((size_t)n + 1);
	snprintf(out, (size_t)n + 1, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
	        sx, sy);
	free(sx);
	free(sy);
	BN_free(bx);
	BN_free(by);
	return out;
}

/* ES256 over input: R || S, 64 bytes (RFC 7518 section 3.4). */
static void es256(EVP_PKEY *k, const char *input, unsigned char out[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[80];
	const unsigned char *p = der;
	size_t len = sizeof der;
	ECDSA_SIG *sig;

	ck_assert(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1);
	ck_assert(EVP_DigestSign(ctx, der, &len, (const unsigned char *)input, strlen(input)) == 1);
	EVP_MD_CTX_free(ctx);
	sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	ck_assert_ptr_nonnull(sig);
	ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32), 32);
	ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32), 32);
	ECDSA_SIG_free(sig);
}

struct client {
	EVP_PKEY *key;
	char kid[256]; /* "" until newAccount */
};

/* A flattened JWS: kid when c->kid is set (unless force_jwk), else jwk. */
static char *jws_make(const struct client *c, const char *url, const char *nonce,
        const char *payload, int force_jwk, int break_sig)
{
	char prot[2048], *jwk = NULL, *bp, *bpl, *bs, *input, *out;
	unsigned char sig[64];
	size_t n;

	if (c->kid[0] && !force_jwk) {
		snprintf(prot, sizeof prot,
		        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"%s\"}",
		        c->kid, nonce, url);
	} else {
		jwk = jwk_of(c->key);
		snprintf(prot, sizeof prot,
		        "{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"%s\",\"url\":\"%s\"}", jwk,
		        nonce, url);
	}
	bp = b64u(prot, strlen(prot));
	bpl = b64u(payload, strlen(payload));
	n = strlen(bp) + strlen(bpl) + 2;
	input = malloc(n);
	snprintf(input, n, "%s.%s", bp, bpl);
	es256(c->key, input, sig);
	if (break_sig)
		sig[7] ^= 1;
	bs = b64u(sig, 64);
	n = strlen(bp) + strlen(bpl) + strlen(bs) + 64;
	out = malloc(n);
	snprintf(out, n, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", bp, bpl,
	        bs);
	free(jwk);
	free(bp);
	free(bpl);
	free(bs);
	free(input);
	return out;
}

/* The value of header name in r (malloc'd), NULL when absent. */
static char *header(const struct acme_reply *r, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = r->headers; *p;) {
		const char *e = strstr(p, "\r\n");

		if (e == NULL)
			break;
		if (strncmp(p, name, n) == 0 && p[n] == ':' && p[n + 1] == ' ')
			return strndup(p + n + 2, (size_t)(e - p - n - 2));
		p = e + 2;
	}
	return NULL;
}

static void request(const char *method, const char *path, const char *ctype, const char *body,
        struct acme_reply *r)
{
	ck_assert_int_eq(acme_handle(srv, method, path, ctype, (const uint8_t *)body,
	                         body ? strlen(body) : 0, time(NULL), r),
	        MDM_OK);
	ck_assert_int_ne(r->status, 0);
}

static char *fresh_nonce(void)
{
	struct acme_reply r;
	char *n;

	request("HEAD", "/acme/new-nonce", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	n = header(&r, "Replay-Nonce");
	ck_assert_ptr_nonnull(n);
	acme_reply_clear(&r);
	return n;
}

/* POSTs payload to route signed by c with a fresh nonce. */
static void post(struct client *c, const char *route, const char *payload, struct acme_reply *r)
{
	char url[512], path[512], *nonce = fresh_nonce(), *body;

	snprintf(url, sizeof url, BASE "%s", route);
	snprintf(path, sizeof path, "/acme%s", route);
	body = jws_make(c, url, nonce, payload, 0, 0);
	request("POST", path, "application/jose+json", body, r);
	free(body);
	free(nonce);
}

/* A member of the reply's JSON object (a string), malloc'd; NULL when absent. */
static char *member(const struct acme_reply *r, const char *name)
{
	json_value *v = NULL;
	const char *s;
	char *out = NULL, err[128];

	ck_assert_int_eq(json_parse(r->body, r->len, &v, err, sizeof err), MDM_OK);
	if ((s = json_get_cstr(v, name)) != NULL)
		out = strdup(s);
	json_free(v);
	return out;
}

/* Fails unless r is the problem document of ACME error type want. */
static void assert_problem(const struct acme_reply *r, const char *want, int status)
{
	char full[128], *type, *nonce = header(r, "Replay-Nonce");

	ck_assert_str_eq(r->content_type, "application/problem+json");
	snprintf(full, sizeof full, "urn:ietf:params:acme:error:%s", want);
	type = member(r, "type");
	ck_assert_ptr_nonnull(type);
	ck_assert_str_eq(type, full);
	if (status)
		ck_assert_int_eq(r->status, status);
	/* RFC 8555 section 6.5: error answers carry a nonce too. */
	ck_assert_ptr_nonnull(nonce);
	free(type);
	free(nonce);
}

static void account(struct client *c)
{
	struct acme_reply r;
	char *loc;

	c->key = ec_key("P-256");
	c->kid[0] = '\0';
	post(c, "/new-account", "{\"termsOfServiceAgreed\":true}", &r);
	ck_assert_int_eq(r.status, 201);
	loc = header(&r, "Location");
	ck_assert_ptr_nonnull(loc);
	snprintf(c->kid, sizeof c->kid, "%s", loc);
	free(loc);
	acme_reply_clear(&r);
}

static void client_free(struct client *c)
{
	EVP_PKEY_free(c->key);
	c->key = NULL;
}

static char *code_new(const char *udid, const char *ttl)
{
	const char *params[2] = {udid, ttl};

	return ts_db_queryn(
	        d, "SELECT mdm.acme_client_identifier_new($1, $2::interval)", 2, params);
}

/* An order for identifier: its route ("/order/N"); NULL when refused (r kept). */
struct order {
	char route[64], authz[64], chall[64], finalize[80], token[128];
};

static void order_new(struct client *c, const char *identifier, struct order *o)
{
	struct acme_reply r;
	char payload[512], *loc, *authz, *url, *tok;
	const char *p;

	snprintf(payload, sizeof payload,
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"%s\"}]}",
	        identifier);
	post(c, "/new-order", payload, &r);
	ck_assert_msg(r.status == 201, "newOrder: %d %.*s", r.status, (int)r.len, r.body);
	loc = header(&r, "Location");
	ck_assert_ptr_nonnull(loc);
	snprintf(o->route, sizeof o->route, "%s", loc + strlen(BASE));
	snprintf(o->finalize, sizeof o->finalize, "%s/finalize", o->route);
	p = strstr(r.body, BASE "/authz/");
	ck_assert_ptr_nonnull(p);
	authz = strndup(p + strlen(BASE), strcspn(p + strlen(BASE), "\""));
	snprintf(o->authz, sizeof o->authz, "%s", authz);
	acme_reply_clear(&r);
	post(c, o->authz, "", &r);
	ck_assert_int_eq(r.status, 200);
	p = strstr(r.body, BASE "/chall/");
	ck_assert_ptr_nonnull(p);
	url = strndup(p + strlen(BASE), strcspn(p + strlen(BASE), "\""));
	snprintf(o->chall, sizeof o->chall, "%s", url);
	p = strstr(r.body, "\"token\": \"");
	ck_assert_ptr_nonnull(p);
	tok = strndup(p + 10, strcspn(p + 10, "\""));
	ck_assert_int_ge((int)strlen(tok), 22); /* 128 bits and more */
	snprintf(o->token, sizeof o->token, "%s", tok);
	free(tok);
	free(url);
	free(authz);
	free(loc);
	acme_reply_clear(&r);
}

/* Answers o's challenge with an attestation of dev from the CA in cadir. */
static void answer(struct client *c, const struct order *o, EVP_PKEY *dev, const char *cadir,
        const struct ts_attest_opts *opts, struct acme_reply *r)
{
	struct ts_attest_opts op = *opts;
	uint8_t *obj;
	size_t len;
	char *b, *payload;

	op.token = (const uint8_t *)o->token;
	op.token_len = strlen(o->token);
	obj = ts_attest_object(cadir, dev, &op, &len);
	ck_assert_ptr_nonnull(obj);
	b = b64u(obj, len);
	payload = malloc(strlen(b) + 32);
	sprintf(payload, "{\"attObj\":\"%s\"}", b);
	post(c, o->chall, payload, r);
	free(payload);
	free(b);
	free(obj);
}

static void finalize(
        struct client *c, const struct order *o, EVP_PKEY *csr_key, struct acme_reply *r)
{
	X509_REQ *req = ts_csr(csr_key, "ACME unit device", NULL, NULL);
	size_t len;
	uint8_t *der = ts_csr_der(req, &len);
	char *b = b64u(der, len), *payload = malloc(strlen(b) + 32);

	sprintf(payload, "{\"csr\":\"%s\"}", b);
	post(c, o->finalize, payload, r);
	free(payload);
	free(b);
	free(der);
	X509_REQ_free(req);
}

/* ------------------------------------------------------------ no database */

START_TEST(url_ids)
{
	ck_assert_int_eq(acme_url_id(BASE, BASE "/acct/12", "acct", NULL), 12);
	ck_assert_int_eq(acme_url_id(BASE, BASE "/order/7/finalize", "order", "/finalize"), 7);
	/* Anything else is no id of ours. */
	ck_assert_int_eq(acme_url_id(BASE, BASE "/order/7/finalize", "order", NULL), 0);
	ck_assert_int_eq(acme_url_id(BASE, BASE "/order/7", "order", "/finalize"), 0);
	ck_assert_int_eq(acme_url_id(BASE, BASE "/acct/012", "acct", NULL), 0);
	ck_assert_int_eq(acme_url_id(BASE, BASE "/acct/", "acct", NULL), 0);
	ck_assert_int_eq(acme_url_id(BASE, BASE "/acct/1x", "acct", NULL), 0);
	ck_assert_int_eq(acme_url_id(BASE, BASE "/acct/-1", "acct", NULL), 0);
	ck_assert_int_eq(acme_url_id(BASE, BASE "/acct/1234567890123456789", "acct", NULL), 0);
	ck_assert_int_eq(acme_url_id(BASE, "https://evil.example/acme/acct/1", "acct", NULL), 0);
	ck_assert_int_eq(acme_url_id(BASE, BASE "x/acct/1", "acct", NULL), 0);
	ck_assert_int_eq(acme_url_id(BASE, BASE "/authz/1", "acct", NULL), 0);
}
END_TEST

START_TEST(base_url_must_be_https)
{
	config *c = NULL;
	struct acme_server *s = NULL;

	log_set_level(MDM_LOG__MAX);
	setenv("MDM_ACME_BASE_URL", "http://mdm.example.com/acme", 1);
	ck_assert_int_eq(config_load_file(NULL, 0, &c), MDM_OK);
	ck_assert_int_eq(acme_server_new(NULL, c, &s), MDM_ERR_CONFIG);
	ck_assert_ptr_null(s);
	config_free(c);
	setenv("MDM_ACME_BASE_URL", "https://mdm.example.com", 1);
	ck_assert_int_eq(config_load_file(NULL, 0, &c), MDM_OK);
	ck_assert_int_eq(acme_server_new(NULL, c, &s), MDM_ERR_CONFIG);
	config_free(c);
	unsetenv("MDM_ACME_BASE_URL");
}
END_TEST

/* ------------------------------------------------------------ GET and HEAD */

START_TEST(directory_and_new_nonce)
{
	struct acme_reply r;
	char *v, *n1, *n2;

	request("GET", "/acme/directory", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 200);
	v = member(&r, "newNonce");
	ck_assert_str_eq(v, BASE "/new-nonce");
	free(v);
	v = member(&r, "newOrder");
	ck_assert_str_eq(v, BASE "/new-order");
	free(v);
	ck_assert_ptr_nonnull(strstr(r.body, "\"externalAccountRequired\":false"));
	acme_reply_clear(&r);
	/* RFC 8555 section 7.2: HEAD 200, GET 204, no-store, each nonce new. */
	request("GET", "/acme/new-nonce", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 204);
	v = header(&r, "Cache-Control");
	ck_assert_str_eq(v, "no-store");
	free(v);
	acme_reply_clear(&r);
	n1 = fresh_nonce();
	n2 = fresh_nonce();
	ck_assert_str_ne(n1, n2);
	/* Every answer carries one: the directory's, GET's and the two HEADs'. */
	ck_assert_int_eq(ts_db_count(d, "SELECT count(*) FROM mdm.acme_nonce"), 4);
	free(n1);
	free(n2);
	/* Everything else is POSTed (RFC 8555 section 6.3). */
	request("GET", "/acme/order/1", NULL, NULL, &r);
	assert_problem(&r, "malformed", 405);
	acme_reply_clear(&r);
	request("GET", "/elsewhere", NULL, NULL, &r);
	ck_assert_int_eq(r.status, 404);
	acme_reply_clear(&r);
}
END_TEST

/* ------------------------------------------------------------ JWS */

START_TEST(jws_refusals)
{
	struct client c = {0}, stranger = {0};
	struct acme_reply r;
	char *nonce, *body, *n2;
	const char *ord = "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"x\"}]}";

	account(&c);
	/* Media type (RFC 8555 section 6.2). */
	nonce = fresh_nonce();
	body = jws_make(&c, BASE "/new-order", nonce, ord, 0, 0);
	request("POST", "/acme/new-order", "application/json", body, &r);
	assert_problem(&r, "malformed", 415);
	acme_reply_clear(&r);
	free(body);
	/* Not a JWS. */
	request("POST", "/acme/new-order", "application/jose+json", "{\"payload\":\"\"}", &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	/* The url signed is not the one asked for (RFC 8555 section 6.4). */
	body = jws_make(&c, BASE "/new-account", nonce, ord, 0, 0);
	request("POST", "/acme/new-order", "application/jose+json", body, &r);
	assert_problem(&r, "unauthorized", 401);
	acme_reply_clear(&r);
	free(body);
	/* A bad signature. */
	body = jws_make(&c, BASE "/new-order", nonce, ord, 0, 1);
	request("POST", "/acme/new-order", "application/jose+json", body, &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	free(body);
	/* That spent the nonce: the same nonce again is badNonce, with a fresh one. */
	body = jws_make(&c, BASE "/new-order", nonce, ord, 0, 0);
	request("POST", "/acme/new-order", "application/jose+json", body, &r);
	assert_problem(&r, "badNonce", 400);
	n2 = header(&r, "Replay-Nonce");
	ck_assert_str_ne(n2, nonce);
	free(n2);
	acme_reply_clear(&r);
	free(body);
	free(nonce);
	/* alg none and HMAC: badSignatureAlgorithm, listing ours (RFC 8555 section 6.2). */
	for (int i = 0; i < 2; i++) {
		char prot[1024], raw[4096], *bp, *bpl;

		snprintf(prot, sizeof prot,
		        "{\"alg\":\"%s\",\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"" BASE
		        "/new-order\"}",
		        i == 0 ? "none" : "HS256", c.kid, "AAAAAAAAAAAAAAAAAAAAAA");
		bp = b64u(prot, strlen(prot));
		bpl = b64u(ord, strlen(ord));
		snprintf(raw, sizeof raw,
		        "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", bp, bpl,
		        i == 0 ? "" : "AAAA");
		request("POST", "/acme/new-order", "application/jose+json", raw, &r);
		assert_problem(&r, "badSignatureAlgorithm", 400);
		ck_assert_ptr_nonnull(strstr(r.body, "\"algorithms\":["));
		acme_reply_clear(&r);
		free(bp);
		free(bpl);
	}
	/* No nonce at all (RFC 8555 section 6.5: badNonce), and a payload that is no JSON. */
	{
		char prot[1024], raw[4096], *bp, *bpl;

		snprintf(prot, sizeof prot,
		        "{\"alg\":\"ES256\",\"kid\":\"%s\",\"url\":\"" BASE "/new-order\"}", c.kid);
		bp = b64u(prot, strlen(prot));
		bpl = b64u(ord, strlen(ord));
		snprintf(raw, sizeof raw,
		        "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"AAAA\"}", bp,
		        bpl);
		request("POST", "/acme/new-order", "application/jose+json", raw, &r);
		assert_problem(&r, "badNonce", 400);
		acme_reply_clear(&r);
		free(bp);
		free(bpl);
		nonce = fresh_nonce();
		body = jws_make(&c, BASE "/new-order", nonce, "{\"identifiers\":", 0, 0);
		request("POST", "/acme/new-order", "application/jose+json", body, &r);
		assert_problem(&r, "malformed", 400);
		ck_assert_ptr_nonnull(strstr(r.body, "RFC 8259"));
		acme_reply_clear(&r);
		free(body);
		free(nonce);
	}
	/* A nonce never handed out. */
	body = jws_make(&c, BASE "/new-order", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ord, 0, 0);
	request("POST", "/acme/new-order", "application/jose+json", body, &r);
	assert_problem(&r, "badNonce", 400);
	acme_reply_clear(&r);
	free(body);
	/* An expired nonce. */
	nonce = fresh_nonce();
	ck_assert_int_eq(db_exec(d, "UPDATE mdm.acme_nonce SET expires_at = now() - interval '1 s'",
	                         0, NULL, NULL),
	        MDM_OK);
	body = jws_make(&c, BASE "/new-order", nonce, ord, 0, 0);
	request("POST", "/acme/new-order", "application/jose+json", body, &r);
	assert_problem(&r, "badNonce", 400);
	acme_reply_clear(&r);
	free(body);
	free(nonce);
	/* A replayed request: the same body twice. */
	nonce = fresh_nonce();
	body = jws_make(&c, BASE "/new-order", nonce, ord, 0, 0);
	request("POST", "/acme/new-order", "application/jose+json", body, &r);
	assert_problem(&r, "rejectedIdentifier", 400);
	acme_reply_clear(&r);
	request("POST", "/acme/new-order", "application/jose+json", body, &r);
	assert_problem(&r, "badNonce", 400);
	acme_reply_clear(&r);
	free(body);
	free(nonce);
	/* jwk where a kid belongs, and the reverse (RFC 8555 section 6.2). */
	nonce = fresh_nonce();
	body = jws_make(&c, BASE "/new-order", nonce, ord, 1, 0);
	request("POST", "/acme/new-order", "application/jose+json", body, &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	free(body);
	free(nonce);
	nonce = fresh_nonce();
	body = jws_make(&c, BASE "/new-account", nonce, "{}", 0, 0);
	request("POST", "/acme/new-account", "application/jose+json", body, &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	free(body);
	free(nonce);
	/* A kid that is no account of ours, or names none. */
	stranger.key = ec_key("P-256");
	snprintf(stranger.kid, sizeof stranger.kid, "https://other.example/acme/acct/1");
	post(&stranger, "/new-order", ord, &r);
	assert_problem(&r, "accountDoesNotExist", 400);
	acme_reply_clear(&r);
	snprintf(stranger.kid, sizeof stranger.kid, BASE "/acct/999999");
	post(&stranger, "/new-order", ord, &r);
	assert_problem(&r, "accountDoesNotExist", 400);
	acme_reply_clear(&r);
	/* Another key signing with c's kid. */
	snprintf(stranger.kid, sizeof stranger.kid, "%s", c.kid);
	post(&stranger, "/new-order", ord, &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	/* A deactivated account. */
	ck_assert_int_eq(
	        db_exec(d, "UPDATE mdm.acme_account SET status = 'deactivated'", 0, NULL, NULL),
	        MDM_OK);
	post(&c, "/new-order", ord, &r);
	assert_problem(&r, "unauthorized", 401);
	acme_reply_clear(&r);
	client_free(&c);
	client_free(&stranger);
	ck_assert_int_eq(ts_db_count(d, "SELECT count(*) FROM mdm.acme_order"), 0);
}
END_TEST

START_TEST(accounts)
{
	struct client c = {0}, other = {0};
	struct acme_reply r;
	char *loc;

	account(&c);
	ck_assert_ptr_nonnull(strstr(c.kid, BASE "/acct/"));
	/* The same key again: its account, 200 (RFC 8555 section 7.3.1). */
	snprintf(other.kid, sizeof other.kid, "%s", "");
	other.key = c.key;
	post(&other, "/new-account", "{\"onlyReturnExisting\":true}", &r);
	ck_assert_int_eq(r.status, 200);
	loc = header(&r, "Location");
	ck_assert_str_eq(loc, c.kid);
	free(loc);
	acme_reply_clear(&r);
	/* onlyReturnExisting for an unknown key. */
	other.key = ec_key("P-256");
	post(&other, "/new-account", "{\"onlyReturnExisting\":true}", &r);
	assert_problem(&r, "accountDoesNotExist", 400);
	acme_reply_clear(&r);
	post(&other, "/new-account", "{\"onlyReturnExisting\":1}", &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	post(&other, "/new-account", "[]", &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	ck_assert_int_eq(ts_db_count(d, "SELECT count(*) FROM mdm.acme_account"), 1);
	/* The account object and its orders list, to its own key only. */
	{
		char route[300], *code = code_new(NULL, "1 hour");
		struct order o;

		snprintf(route, sizeof route, "%s", c.kid + strlen(BASE));
		post(&c, route, "", &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"valid\""));
		acme_reply_clear(&r);
		post(&c, route, "{\"status\":\"deactivated\"}", &r);
		assert_problem(&r, "malformed", 400);
		acme_reply_clear(&r);
		order_new(&c, code, &o);
		strcat(route, "/orders");
		post(&c, route, "", &r);
		ck_assert_int_eq(r.status, 200);
		ck_assert_ptr_nonnull(strstr(r.body, o.route));
		acme_reply_clear(&r);
		client_free(&other);
		account(&other);
		post(&other, route, "", &r);
		assert_problem(&r, "unauthorized", 403);
		acme_reply_clear(&r);
		free(code);
	}
	client_free(&c);
	client_free(&other);
}
END_TEST

/* ------------------------------------------------------------ orders */

START_TEST(new_order_identifier_rules)
{
	struct client c = {0};
	struct acme_reply r;
	char *code = code_new(NULL, "1 hour"), payload[512];
	static const char *const bad[] = {
	        "{}",
	        "{\"identifiers\":[]}",
	        "{\"identifiers\":{}}",
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\"}]}",
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":1}]}",
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"a\",\"x\":1}]}",
	};

	account(&c);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		post(&c, "/new-order", bad[i], &r);
		assert_problem(&r, "malformed", 400);
		acme_reply_clear(&r);
	}
	/* Two identifiers, a dns one, notAfter. */
	snprintf(payload, sizeof payload,
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"%s\"},"
	        "{\"type\":\"permanent-identifier\",\"value\":\"%s\"}]}",
	        code, code);
	post(&c, "/new-order", payload, &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	snprintf(payload, sizeof payload, "{\"identifiers\":[{\"type\":\"dns\",\"value\":\"%s\"}]}",
	        code);
	post(&c, "/new-order", payload, &r);
	assert_problem(&r, "unsupportedIdentifier", 400);
	acme_reply_clear(&r);
	snprintf(payload, sizeof payload,
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"%s\"}],"
	        "\"notAfter\":\"2030-01-01T00:00:00Z\"}",
	        code);
	post(&c, "/new-order", payload, &r);
	assert_problem(&r, "malformed", 400);
	acme_reply_clear(&r);
	/* An unknown code, a SCEP challenge, an expired code: the same answer. */
	post(&c, "/new-order",
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"nope\"}]}", &r);
	assert_problem(&r, "rejectedIdentifier", 400);
	ck_assert_ptr_nonnull(strstr(r.body, "not a ClientIdentifier this server accepts"));
	acme_reply_clear(&r);
	{
		char *scep = ts_db_query1(d, "SELECT mdm.scep_challenge_new()", NULL);

		snprintf(payload, sizeof payload,
		        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"%s\"}]}",
		        scep);
		post(&c, "/new-order", payload, &r);
		assert_problem(&r, "rejectedIdentifier", 400);
		acme_reply_clear(&r);
		free(scep);
	}
	ck_assert_int_eq(db_exec(d,
	                         "UPDATE mdm.challenge SET created_at = now() - interval '2 h', "
	                         "expires_at = now() - interval '1 s' WHERE purpose = 'acme'",
	                         0, NULL, NULL),
	        MDM_OK);
	snprintf(payload, sizeof payload,
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"%s\"}]}", code);
	post(&c, "/new-order", payload, &r);
	assert_problem(&r, "rejectedIdentifier", 400);
	ck_assert_ptr_nonnull(strstr(r.body, "not a ClientIdentifier this server accepts"));
	acme_reply_clear(&r);
	ck_assert_int_eq(ts_db_count(d, "SELECT count(*) FROM mdm.acme_order"), 0);
	free(code);
	client_free(&c);
}
END_TEST

START_TEST(device_attest_01_order)
{
	struct client c = {0}, other = {0};
	struct order o;
	struct acme_reply r;
	struct ts_attest_opts opts = {.udid = "00008030-00ACME000000001E", .serial = "ACMESER01"};
	EVP_PKEY *dev = ec_key("P-384");
	char *code = code_new("00008030-00ACME000000001E", "1 hour"), *v;
	X509 *leaf;
	const char *p;

	account(&c);
	account(&other);
	order_new(&c, code, &o);
	/* Another account sees nothing of it, as if it did not exist. */
	post(&other, o.route, "", &r);
	assert_problem(&r, "malformed", 404);
	acme_reply_clear(&r);
	post(&other, o.authz, "", &r);
	assert_problem(&r, "malformed", 404);
	acme_reply_clear(&r);
	post(&other, o.chall, "{}", &r);
	assert_problem(&r, "malformed", 404);
	acme_reply_clear(&r);
	/* Not ready before the challenge. */
	finalize(&c, &o, dev, &r);
	assert_problem(&r, "orderNotReady", 403);
	acme_reply_clear(&r);
	/* The challenge answered with an attestation of the device key. */
	answer(&c, &o, dev, dir, &opts, &r);
	ck_assert_msg(r.status == 200, "challenge: %d %.*s", r.status, (int)r.len, r.body);
	v = member(&r, "status");
	ck_assert_str_eq(v, "valid");
	free(v);
	/* Two Link headers: the directory (index) and the authorization (up). */
	ck_assert_ptr_nonnull(strstr(r.headers, "Link: <" BASE "/authz/"));
	ck_assert_ptr_nonnull(strstr(r.headers, ">;rel=\"up\"\r\n"));
	acme_reply_clear(&r);
	post(&c, o.route, "", &r);
	v = member(&r, "status");
	ck_assert_str_eq(v, "ready");
	free(v);
	acme_reply_clear(&r);
	/* Finalize: the certificate, recorded like SCEP's, with the attestation. */
	finalize(&c, &o, dev, &r);
	ck_assert_msg(r.status == 200, "finalize: %d %.*s", r.status, (int)r.len, r.body);
	v = member(&r, "certificate");
	ck_assert_ptr_nonnull(v);
	acme_reply_clear(&r);
	ck_assert_int_eq(issued(), 1);
	ts_db_assert(d, "SELECT udid FROM mdm.certificate WHERE kind = 'device'", NULL,
	        "00008030-00ACME000000001E");
	ts_db_assert(d, "SELECT serial || ' ' || os_version FROM mdm.device_attestation", NULL,
	        "ACMESER01 17.0");
	/* iOS states no macOS security properties. */
	ts_db_assert(d,
	        "SELECT (sip_enabled IS NULL AND secure_boot IS NULL AND kexts_allowed IS "
	        "NULL)::text FROM mdm.device_attestation",
	        NULL, "true");
	ts_db_assert(d,
	        "SELECT (used_at IS NOT NULL AND used_by_certificate IS NOT NULL)::text FROM "
	        "mdm.challenge WHERE purpose = 'acme'",
	        NULL, "true");
	/* The chain: the leaf for the attested key, then the CA. */
	post(&c, v + strlen(BASE), "", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.content_type, "application/pem-certificate-chain");
	p = strstr(r.body, "-----END CERTIFICATE-----");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(strstr(p, "-----BEGIN CERTIFICATE-----"));
	{
		BIO *b = BIO_new_mem_buf(r.body, (int)r.len);

		leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	ck_assert_ptr_nonnull(leaf);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(leaf), dev), 1);
	X509_free(leaf);
	acme_reply_clear(&r);
	post(&other, v + strlen(BASE), "", &r);
	assert_problem(&r, "malformed", 404);
	acme_reply_clear(&r);
	free(v);
	/* Finalized once: a second finalize, and a new order with the code, are refused. */
	finalize(&c, &o, dev, &r);
	assert_problem(&r, "orderNotReady", 403);
	acme_reply_clear(&r);
	{
		char payload[256];

		snprintf(payload, sizeof payload,
		        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"%s\"}]}",
		        code);
		post(&c, "/new-order", payload, &r);
		assert_problem(&r, "rejectedIdentifier", 400);
		acme_reply_clear(&r);
	}
	ck_assert_int_eq(issued(), 1);
	EVP_PKEY_free(dev);
	free(code);
	client_free(&c);
	client_free(&other);
}
END_TEST

/* One refused attestation: the problem, the challenge/authz/order invalid, nothing issued. */
static void attestation_refused(
        const char *code, const char *cadir, const struct ts_attest_opts *opts, const char *want)
{
	struct client c = {0};
	struct order o;
	struct acme_reply r;
	EVP_PKEY *dev = ec_key("P-384");

	account(&c);
	order_new(&c, code, &o);
	answer(&c, &o, dev, cadir, opts, &r);
	assert_problem(&r, want, 400);
	acme_reply_clear(&r);
	post(&c, o.chall, "", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "\"status\": \"invalid\""));
	ck_assert_ptr_nonnull(strstr(r.body, want));
	acme_reply_clear(&r);
	post(&c, o.route, "", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "\"status\": \"invalid\""));
	acme_reply_clear(&r);
	finalize(&c, &o, dev, &r);
	assert_problem(&r, "orderNotReady", 403);
	acme_reply_clear(&r);
	ck_assert_int_eq(issued(), 0);
	EVP_PKEY_free(dev);
	client_free(&c);
}

START_TEST(attestation_refusals)
{
	struct ts_attest_opts opts = {.udid = "00008030-00ACME000000002E", .serial = "ACMESER02"};
	struct ts_attest_opts wrong = opts, expired = opts;
	char *code;

	wrong.wrong_nonce = 1;
	expired.expired = 1;
	/* The nonce of another token. */
	code = code_new(opts.udid, "1 hour");
	attestation_refused(code, dir, &wrong, "badAttestationStatement");
	free(code);
	/* A chain to another root. */
	code = code_new(opts.udid, "1 hour");
	attestation_refused(code, other_dir, &opts, "badAttestationStatement");
	free(code);
	/* An expired attestation certificate. */
	code = code_new(opts.udid, "1 hour");
	attestation_refused(code, dir, &expired, "badAttestationStatement");
	free(code);
	/* A code bound to another UDID. */
	code = code_new("00008030-00OTHER00000002E", "1 hour");
	attestation_refused(code, dir, &opts, "rejectedIdentifier");
	free(code);
	/* An unbound code and a device nobody expects. */
	code = code_new(NULL, "1 hour");
	attestation_refused(code, dir, &opts, "rejectedIdentifier");
	free(code);
}
END_TEST

START_TEST(malformed_attestations)
{
	static const char *const bad[] = {
	        "{\"attObj\":\"oWNmbXQ\"}", /* CBOR {"fmt" ... truncated */
	        "{\"attObj\":\"!!!\"}",     /* not base64url */
	        "{\"attObj\":\"\"}",        /* empty */
	        "{\"attObj\":\"9g\"}",      /* CBOR undefined */
	};
	char *code = code_new("00008030-00ACME000000003E", "1 hour");

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct client c = {0};
		struct order o;
		struct acme_reply r;

		account(&c);
		order_new(&c, code, &o);
		post(&c, o.chall, bad[i], &r);
		assert_problem(&r, "badAttestationStatement", 400);
		acme_reply_clear(&r);
		client_free(&c);
	}
	/* No attObj at all. */
	{
		struct client c = {0};
		struct order o;
		struct acme_reply r;

		account(&c);
		order_new(&c, code, &o);
		post(&c, o.chall, "{}", &r);
		assert_problem(&r, "malformed", 400);
		acme_reply_clear(&r);
		client_free(&c);
	}
	ck_assert_int_eq(issued(), 0);
	free(code);
}
END_TEST

START_TEST(finalize_refusals)
{
	struct ts_attest_opts opts = {.udid = "00008030-00ACME000000004E", .serial = "ACMESER04"};
	struct client c = {0};
	struct order o;
	struct acme_reply r;
	EVP_PKEY *dev = ec_key("P-384"), *other = ec_key("P-384");
	char *code = code_new(opts.udid, "1 hour");

	/* A CSR of another key than the attested one: badCSR, the order invalid. */
	account(&c);
	order_new(&c, code, &o);
	answer(&c, &o, dev, dir, &opts, &r);
	ck_assert_int_eq(r.status, 200);
	acme_reply_clear(&r);
	post(&c, o.finalize, "{\"csr\":\"!!\"}", &r);
	assert_problem(&r, "badCSR", 400);
	acme_reply_clear(&r);
	post(&c, o.finalize, "{\"csr\":\"MAA\"}", &r);
	assert_problem(&r, "badCSR", 400);
	acme_reply_clear(&r);
	finalize(&c, &o, other, &r);
	assert_problem(&r, "badCSR", 400);
	acme_reply_clear(&r);
	finalize(&c, &o, dev, &r);
	assert_problem(&r, "orderNotReady", 403);
	acme_reply_clear(&r);
	ck_assert_int_eq(issued(), 0);
	/* An expired order (the code is still good). */
	order_new(&c, code, &o);
	answer(&c, &o, dev, dir, &opts, &r);
	ck_assert_int_eq(r.status, 200);
	acme_reply_clear(&r);
	ck_assert_int_eq(db_exec(d,
	                         "UPDATE mdm.acme_order SET expires_at = now() - interval '1 s' "
	                         "WHERE status = 'ready'",
	                         0, NULL, NULL),
	        MDM_OK);
	finalize(&c, &o, dev, &r);
	assert_problem(&r, "orderNotReady", 403);
	acme_reply_clear(&r);
	ck_assert_int_eq(issued(), 0);
	/* Two ready orders with one code: the first finalize spends it, the second is refused. */
	{
		struct order o1, o2;

		order_new(&c, code, &o1);
		answer(&c, &o1, dev, dir, &opts, &r);
		acme_reply_clear(&r);
		order_new(&c, code, &o2);
		answer(&c, &o2, dev, dir, &opts, &r);
		acme_reply_clear(&r);
		finalize(&c, &o1, dev, &r);
		ck_assert_int_eq(r.status, 200);
		acme_reply_clear(&r);
		finalize(&c, &o2, dev, &r);
		assert_problem(&r, "unauthorized", 403);
		acme_reply_clear(&r);
		ck_assert_int_eq(issued(), 1);
	}
	EVP_PKEY_free(dev);
	EVP_PKEY_free(other);
	free(code);
	client_free(&c);
}
END_TEST

START_TEST(serial_identifier)
{
	struct ts_attest_opts opts = {
	        .udid = "00008030-00ACME000000005E", .serial = "ACMESER05", .macos = 1};
	struct ts_attest_opts wrong = {.udid = "00008030-00ACME000000006E", .serial = "ACMESER06"};
	struct client c = {0};
	struct order o;
	struct acme_reply r;
	EVP_PKEY *dev = ec_key("P-384");
	const char *params[2] = {opts.serial, wrong.serial};

	ck_assert_int_eq(
	        db_exec(d, "INSERT INTO mdm.acme_expected_device (serial) VALUES ($1), ($2)", 2,
	                params, NULL),
	        MDM_OK);
	account(&c);
	/* Off by default: the serial is no ClientIdentifier. */
	post(&c, "/new-order",
	        "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":\"ACMESER05\"}]}",
	        &r);
	assert_problem(&r, "rejectedIdentifier", 400);
	acme_reply_clear(&r);
	stop();
	setenv("MDM_ACME_ALLOW_SERIAL_IDENTIFIER", "yes", 1);
	start();
	/* The attestation of another (expected) device is refused ... */
	order_new(&c, "ACMESER05", &o);
	answer(&c, &o, dev, dir, &wrong, &r);
	assert_problem(&r, "rejectedIdentifier", 400);
	acme_reply_clear(&r);
	/* ... that device's own is accepted. */
	order_new(&c, "ACMESER05", &o);
	answer(&c, &o, dev, dir, &opts, &r);
	ck_assert_int_eq(r.status, 200);
	acme_reply_clear(&r);
	finalize(&c, &o, dev, &r);
	ck_assert_int_eq(r.status, 200);
	acme_reply_clear(&r);
	ck_assert_int_eq(issued(), 1);
	/* A Mac's security properties, readable in SQL. */
	ts_db_assert(d,
	        "SELECT concat_ws(' ', udid, sip_enabled, secure_boot, kexts_allowed) FROM "
	        "mdm.device_attestation",
	        NULL, "00008030-00ACME000000005E t Full Security f");
	unsetenv("MDM_ACME_ALLOW_SERIAL_IDENTIFIER");
	EVP_PKEY_free(dev);
	client_free(&c);
}
END_TEST

START_TEST(sql_operator_api)
{
	/* ttl and UDID rules of the code function; the purpose check takes 'acme'. */
	ck_assert_int_ne(
	        db_exec(d, "SELECT mdm.acme_client_identifier_new(NULL, '0 s')", 0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_ne(
	        db_exec(d, "SELECT mdm.acme_client_identifier_new(NULL, '31 days')", 0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_ne(
	        db_exec(d, "SELECT mdm.acme_client_identifier_new('', '1 hour')", 0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_ne(db_exec(d,
	                         "SELECT mdm.acme_client_identifier_new(NULL, '1 hour', "
	                         "'com.apple.mgmt.External.not-imported')",
	                         0, NULL, NULL),
	        MDM_OK);
	ts_db_assert(d, "SELECT length(mdm.acme_client_identifier_new())::text", NULL, "64");
	ts_db_assert(
	        d, "SELECT count(*)::text FROM mdm.challenge WHERE purpose = 'acme'", NULL, "1");
	/* What mdm_operator may do. */
	ts_db_assert(d,
	        "SELECT has_function_privilege('mdm_operator', "
	        "'mdm.acme_client_identifier_new(text, interval, text)', 'EXECUTE')::text",
	        NULL, "true");
	ts_db_assert(d,
	        "SELECT has_table_privilege('mdm_operator', 'mdm.acme_expected_device', "
	        "'INSERT')::text",
	        NULL, "true");
	ts_db_assert(d,
	        "SELECT has_table_privilege('mdm_operator', 'mdm.device_attestation', "
	        "'SELECT')::text",
	        NULL, "true");
	ts_db_assert(d,
	        "SELECT has_table_privilege('mdm_operator', 'mdm.acme_order', 'SELECT')::text",
	        NULL, "false");
	ts_db_assert(d,
	        "SELECT has_function_privilege('mdm_operator', "
	        "'mdm.acme_begin(text, bigint, integer)', 'EXECUTE')::text",
	        NULL, "false");
	/* Nonces: one use; expired ones purged as new ones are made. */
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.acme_nonce SELECT 'old' || "
	                         "lpad(g::text, 20, '0'), now() - interval '1 h' FROM "
	                         "generate_series(1, 10) g",
	                         0, NULL, NULL),
	        MDM_OK);
	free(ts_db_query1(d, "SELECT mdm.acme_nonce_new(60)", NULL));
	ts_db_assert(
	        d, "SELECT count(*)::text FROM mdm.acme_nonce WHERE expires_at < now()", NULL, "6");
	{
		char *n = ts_db_query1(d, "SELECT mdm.acme_nonce_new(60)", NULL);

		ts_db_assert(
		        d, "SELECT nonce_ok::text FROM mdm.acme_begin($1, NULL, 60)", n, "true");
		ts_db_assert(
		        d, "SELECT nonce_ok::text FROM mdm.acme_begin($1, NULL, 60)", n, "false");
		free(n);
	}
}
END_TEST

void acme_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "nodb", 10, NULL, NULL);

	ts_add_tests(tc, url_ids, base_url_must_be_https);
}

void acme_db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "db", 120, setup, teardown);

	ts_add_tests(tc, directory_and_new_nonce, jws_refusals, accounts,
	        new_order_identifier_rules, device_attest_01_order, attestation_refusals,
	        malformed_attestations, finalize_refusals, serial_identifier, sql_operator_api);
}
