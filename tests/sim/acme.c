/*
 * applesim: the ACME client of an Apple device with a
 * com.apple.security.acme payload (HardwareBound, Attest): RFC 8555
 * (directory, newNonce, newAccount, newOrder, authorization, challenge,
 * finalize, certificate) with the device-attest-01 challenge of
 * draft-ietf-acme-device-attest.  The account key is P-256 (ES256); the
 * identity key is the payload's (P-384 for KeySize 384), the one a
 * device makes in its Secure Enclave.  The attestation comes from the
 * stand-in for Apple's attestation service (tests/attest/standin.c), as
 * a device gets it from Apple: for the key, the challenge's token, the
 * device's serial number and UDID.
 */
#include "sim.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct acme {
	const struct sim_acme_opts *o;
	EVP_PKEY *account;
	char nonce[256];
	char kid[512];
	char *jwk; /* {"crv":...,"kty":"EC","x":...,"y":...} */
};

/* base64url without padding (RFC 7515 section 2), malloc'd. */
static char *b64url(const uint8_t *p, size_t len)
{
	char *s = sim_b64(p, len);
	size_t j = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] == '=')
			break;
		s[j++] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
	}
	s[j] = '\0';
	return s;
}

static char *b64url_str(const char *s)
{
	return b64url((const uint8_t *)s, strlen(s));
}

static EVP_PKEY *ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	if (k == NULL)
		sim_ossl_fail("EVP_EC_gen");
	return k;
}

/* The JWK of an EC public key (RFC 7518 6.2.1), members in RFC 7638 order. */
static char *ec_jwk(EVP_PKEY *k)
{
	uint8_t pub[133];
	size_t n = 0, half;
	int bits = EVP_PKEY_get_bits(k);
	struct sim_buf b = {0};
	char *x, *y;

	if (!EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &n) ||
	        n < 3 || pub[0] != 0x04)
		sim_ossl_fail("EVP_PKEY_get_octet_string_param (EC public key)");
	half = (n - 1) / 2;
	x = b64url(pub + 1, half);
	y = b64url(pub + 1 + half, half);
	sim_buf_puts(&b, "{\"crv\":");
	sim_json_quote(&b, bits == 384 ? "P-384" : "P-256");
	sim_buf_puts(&b, ",\"kty\":\"EC\",\"x\":");
	sim_json_quote(&b, x);
	sim_buf_puts(&b, ",\"y\":");
	sim_json_quote(&b, y);
	sim_buf_puts(&b, "}");
	sim_buf_append(&b, "", 1);
	free(x);
	free(y);
	return (char *)b.p;
}

/* ES256 over input: the raw R || S of 32 bytes each (RFC 7518 3.4). */
static char *es256(EVP_PKEY *k, const char *input)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[128], raw[64];
	const uint8_t *p = der;
	size_t n = sizeof(der);
	ECDSA_SIG *sig;

	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) != 1 ||
	        EVP_DigestSign(ctx, der, &n, (const uint8_t *)input, strlen(input)) != 1)
		sim_ossl_fail("EVP_DigestSign (JWS)");
	EVP_MD_CTX_free(ctx);
	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)n)) == NULL ||
	        BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) != 32 ||
	        BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) != 32)
		sim_ossl_fail("ECDSA_SIG (JWS)");
	ECDSA_SIG_free(sig);
	return b64url(raw, sizeof(raw));
}

static void need_nonce(struct acme *a, const struct sim_http *h)
{
	if (h->resp_nonce[0] == '\0')
		sim_fail("acme: %s %s answered without Replay-Nonce (RFC 8555 6.5)", h->method,
		        h->url);
	snprintf(a->nonce, sizeof(a->nonce), "%s", h->resp_nonce);
}

static void new_nonce(struct acme *a, const char *url)
{
	struct sim_http h = {0};

	h.method = "HEAD";
	h.url = url;
	h.ca_file = a->o->ca_file;
	sim_http_do(&h);
	if (h.status != 200)
		sim_fail("acme: HEAD %s: HTTP %ld, want 200 (RFC 8555 7.2)", url, h.status);
	need_nonce(a, &h);
	sim_http_free(&h);
}

/*
 * POST payload (NULL: POST-as-GET, RFC 8555 6.3) to url as a flattened
 * JWS (6.2): jwk before the account exists, kid after.  The answer in *h;
 * its Replay-Nonce is the next request's.
 */
static void acme_post(
        struct acme *a, const char *url, const char *payload, const char *what, struct sim_http *h)
{
	struct sim_buf prot = {0}, body = {0};
	char *p64, *pl64, *sig, *input;
	size_t n;

	sim_buf_puts(&prot, "{\"alg\":\"ES256\",");
	if (a->kid[0] != '\0') {
		sim_buf_puts(&prot, "\"kid\":");
		sim_json_quote(&prot, a->kid);
	} else {
		sim_buf_puts(&prot, "\"jwk\":");
		sim_buf_puts(&prot, a->jwk);
	}
	sim_buf_puts(&prot, ",\"nonce\":");
	sim_json_quote(&prot, a->nonce);
	sim_buf_puts(&prot, ",\"url\":");
	sim_json_quote(&prot, url);
	sim_buf_puts(&prot, "}");
	sim_buf_append(&prot, "", 1);
	p64 = b64url_str((const char *)prot.p);
	pl64 = payload != NULL ? b64url_str(payload) : sim_xstrdup("");
	n = strlen(p64) + strlen(pl64) + 2;
	input = sim_xmalloc(n);
	snprintf(input, n, "%s.%s", p64, pl64);
	sig = es256(a->account, input);
	sim_buf_puts(&body, "{\"protected\":");
	sim_json_quote(&body, p64);
	sim_buf_puts(&body, ",\"payload\":");
	sim_json_quote(&body, pl64);
	sim_buf_puts(&body, ",\"signature\":");
	sim_json_quote(&body, sig);
	sim_buf_puts(&body, "}");
	memset(h, 0, sizeof(*h));
	h->method = "POST";
	h->url = url;
	h->body = body.p;
	h->body_len = body.len;
	h->content_type = "application/jose+json";
	h->ca_file = a->o->ca_file;
	sim_http_do(h);
	sim_log_exchange(what, body.p, body.len, h->resp.p, h->resp.len);
	need_nonce(a, h);
	free(p64);
	free(pl64);
	free(input);
	free(sig);
	sim_buf_free(&prot);
	sim_buf_free(&body);
}

/* The answer's JSON, or a failure naming the problem document (RFC 7807). */
static struct sim_json *answer(const struct sim_http *h, long want, const char *what)
{
	struct sim_json *j;

	if (h->status != want)
		sim_fail("acme: %s: HTTP %ld (want %ld): %.400s", what, h->status, want,
		        (const char *)h->resp.p);
	j = sim_json_parse(h->resp.p, h->resp.len, what);
	if (j->type != SIM_JSON_OBJECT)
		sim_fail("acme: %s: the answer is no JSON object", what);
	return j;
}

static const char *need(const struct sim_json *j, const char *key, const char *what)
{
	const char *v = sim_json_str(sim_json_get(j, key));

	if (v == NULL || *v == '\0')
		sim_fail("acme: %s: no \"%s\" string", what, key);
	return v;
}

/* A problem document with the expected type: returns 1 (a refusal the test wanted). */
static int refused_as(const struct sim_http *h, const char *type, const char *what)
{
	struct sim_json *j;
	const char *t;

	if (h->status < 400)
		return 0;
	if (strncasecmp(h->resp_type, "application/problem+json", 24) != 0)
		sim_fail("acme: %s: HTTP %ld with Content-Type \"%s\", want a problem document "
		         "(RFC 8555 6.7)",
		        what, h->status, h->resp_type);
	j = sim_json_parse(h->resp.p, h->resp.len, what);
	t = sim_json_str(sim_json_get(j, "type"));
	if (type == NULL || t == NULL || strcmp(t, type) != 0)
		sim_fail("acme: %s: refused with %s (%s), want %s", what, t ? t : "no type",
		        sim_json_str(sim_json_get(j, "detail"))
		                ? sim_json_str(sim_json_get(j, "detail"))
		                : "no detail",
		        type ? type : "success");
	sim_say("acme: %s refused as expected: %s (%s)", what, t,
	        sim_json_str(sim_json_get(j, "detail")) ? sim_json_str(sim_json_get(j, "detail"))
	                                                : "");
	sim_json_free(j);
	return 1;
}

/*
 * The attestation object from the stand-in for Apple's attestation
 * service: `attest_standin attest DIR --pubkey F --token T --serial S
 * --udid U --b64url`, base64url on its stdout.
 */
static char *attestation(const struct sim_acme_opts *o, EVP_PKEY *key, const char *token)
{
	const char *pub = sim_path("acme-identity.pub.pem");
	char out[65536];
	size_t n = 0;
	int fds[2], status;
	pid_t pid;
	FILE *f;

	if ((f = fopen(pub, "w")) == NULL || !PEM_write_PUBKEY(f, key))
		sim_fail("acme: cannot write %s", pub);
	fclose(f);
	if (pipe(fds) != 0 || (pid = fork()) < 0)
		sim_fail("acme: pipe/fork for the attestation service");
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(o->attest_cmd, o->attest_cmd, "attest", o->attest_dir, "--pubkey", pub,
		        "--token", o->attest_token != NULL ? o->attest_token : token, "--serial",
		        o->serial, "--udid", o->udid, "--b64url", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	for (ssize_t r;
	        n + 1 < sizeof(out) && (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0;)
		n += (size_t)r;
	close(fds[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		sim_fail("acme: %s attest failed (status %d)", o->attest_cmd, status);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	if (n == 0)
		sim_fail("acme: the attestation service gave nothing");
	return sim_xstrdup(out);
}

/* A CSR for key with the payload's Subject, signed with SHA-256 (PKCS #10). */
static char *csr_b64url(EVP_PKEY *key, X509_NAME *subject)
{
	X509_REQ *req = X509_REQ_new();
	unsigned char *der = NULL;
	char *s;
	int n;

	if (req == NULL || !X509_REQ_set_version(req, 0) ||
	        !X509_REQ_set_subject_name(req, subject) || !X509_REQ_set_pubkey(req, key) ||
	        !X509_REQ_sign(req, key, EVP_sha256()) || (n = i2d_X509_REQ(req, &der)) <= 0)
		sim_ossl_fail("X509_REQ (finalize)");
	s = b64url(der, (size_t)n);
	OPENSSL_free(der);
	X509_REQ_free(req);
	return s;
}

/* POST-as-GET url until its "status" is neither pending nor processing. */
static struct sim_json *poll_status(struct acme *a, const char *url, const char *what)
{
	for (int i = 0; i < 20; i++) {
		struct sim_http h;
		struct sim_json *j;
		const char *st;

		acme_post(a, url, NULL, what, &h);
		j = answer(&h, 200, what);
		sim_http_free(&h);
		st = need(j, "status", what);
		if (strcmp(st, "pending") != 0 && strcmp(st, "processing") != 0)
			return j;
		sim_json_free(j);
		usleep(200000);
	}
	sim_fail("acme: %s stayed pending", what);
}

int sim_acme_enroll(const struct sim_acme_opts *o, X509 **cert, EVP_PKEY **key)
{
	struct acme a = {0};
	struct sim_http h = {0};
	struct sim_json *dir, *acct, *order, *authz, *j;
	const struct sim_json *chs, *ch = NULL, *az;
	char *new_account, *new_order, *order_url, *authz_url, *finalize, *ch_url, *token, *att,
	        *csr, *cert_url;
	struct sim_buf body = {0};
	EVP_PKEY *idkey;
	BIO *bio;
	int ret = 0;

	a.o = o;
	*cert = NULL;
	*key = NULL;
	/* The directory (RFC 8555 7.1.1). */
	h.method = "GET";
	h.url = o->directory_url;
	h.ca_file = o->ca_file;
	sim_http_do(&h);
	dir = answer(&h, 200, "directory");
	sim_http_free(&h);
	new_account = sim_xstrdup(need(dir, "newAccount", "directory"));
	new_order = sim_xstrdup(need(dir, "newOrder", "directory"));
	new_nonce(&a, need(dir, "newNonce", "directory"));
	/* The account (7.3): a fresh ES256 key, as a device makes for each payload. */
	a.account = ec_key("P-256");
	a.jwk = ec_jwk(a.account);
	acme_post(&a, new_account, "{\"termsOfServiceAgreed\":true}", "acme-account", &h);
	acct = answer(&h, 201, "newAccount");
	if (h.resp_location[0] == '\0')
		sim_fail("acme: newAccount: 201 without Location (RFC 8555 7.3)");
	snprintf(a.kid, sizeof(a.kid), "%s", h.resp_location);
	sim_http_free(&h);
	sim_json_free(acct);
	/* The order (7.4): the ClientIdentifier as a permanent-identifier. */
	sim_buf_puts(&body, "{\"identifiers\":[{\"type\":\"permanent-identifier\",\"value\":");
	sim_json_quote(&body, o->client_identifier);
	sim_buf_puts(&body, "}]}");
	sim_buf_append(&body, "", 1);
	acme_post(&a, new_order, (const char *)body.p, "acme-order", &h);
	sim_buf_free(&body);
	if (refused_as(&h, o->expect_error_at_order, "newOrder")) {
		ret = 1;
		sim_http_free(&h);
		goto done;
	}
	order = answer(&h, 201, "newOrder");
	if (h.resp_location[0] == '\0')
		sim_fail("acme: newOrder: 201 without Location (RFC 8555 7.4)");
	order_url = sim_xstrdup(h.resp_location);
	sim_http_free(&h);
	az = sim_json_get(order, "authorizations");
	if (az == NULL || az->type != SIM_JSON_ARRAY || az->n != 1 ||
	        sim_json_str(az->kids[0]) == NULL)
		sim_fail("acme: newOrder: want one authorization URL");
	authz_url = sim_xstrdup(sim_json_str(az->kids[0]));
	finalize = sim_xstrdup(need(order, "finalize", "newOrder"));
	sim_json_free(order);
	/* The authorization (7.5) and its device-attest-01 challenge. */
	acme_post(&a, authz_url, NULL, "acme-authz", &h);
	authz = answer(&h, 200, "authorization");
	sim_http_free(&h);
	chs = sim_json_get(authz, "challenges");
	for (size_t i = 0; chs != NULL && chs->type == SIM_JSON_ARRAY && i < chs->n; i++) {
		const char *t = sim_json_str(sim_json_get(chs->kids[i], "type"));
		if (t != NULL && strcmp(t, "device-attest-01") == 0)
			ch = chs->kids[i];
	}
	if (ch == NULL)
		sim_fail("acme: the authorization offers no device-attest-01 challenge");
	ch_url = sim_xstrdup(need(ch, "url", "challenge"));
	token = sim_xstrdup(need(ch, "token", "challenge"));
	sim_json_free(authz);
	/* The Secure Enclave's key, attested by "Apple" for this token. */
	idkey = ec_key(o->curve);
	att = attestation(o, idkey, token);
	sim_buf_puts(&body, "{\"attObj\":");
	sim_json_quote(&body, att);
	sim_buf_puts(&body, "}");
	sim_buf_append(&body, "", 1);
	acme_post(&a, ch_url, (const char *)body.p, "acme-challenge", &h);
	sim_buf_free(&body);
	if (refused_as(&h, o->expect_error_at_challenge, "device-attest-01")) {
		ret = 1;
		sim_http_free(&h);
		goto free_challenge;
	}
	j = answer(&h, 200, "device-attest-01");
	sim_http_free(&h);
	sim_json_free(j);
	authz = poll_status(&a, authz_url, "acme-authz-poll");
	if (strcmp(need(authz, "status", "authorization"), "valid") != 0)
		sim_fail("acme: the authorization is %s after device-attest-01",
		        need(authz, "status", "authorization"));
	sim_json_free(authz);
	/* Finalize (7.4) with a CSR of the attested key. */
	{
		EVP_PKEY *csrkey = o->csr_other_key ? ec_key(o->curve) : idkey;
		csr = csr_b64url(csrkey, o->subject);
		if (csrkey != idkey)
			EVP_PKEY_free(csrkey);
	}
	sim_buf_puts(&body, "{\"csr\":");
	sim_json_quote(&body, csr);
	sim_buf_puts(&body, "}");
	sim_buf_append(&body, "", 1);
	acme_post(&a, finalize, (const char *)body.p, "acme-finalize", &h);
	sim_buf_free(&body);
	if (refused_as(&h, o->expect_error_at_finalize, "finalize")) {
		ret = 1;
		sim_http_free(&h);
		goto free_finalize;
	}
	j = answer(&h, 200, "finalize");
	sim_http_free(&h);
	sim_json_free(j);
	order = poll_status(&a, order_url, "acme-order-poll");
	if (strcmp(need(order, "status", "order"), "valid") != 0)
		sim_fail("acme: the order is %s after finalize", need(order, "status", "order"));
	cert_url = sim_xstrdup(need(order, "certificate", "order"));
	sim_json_free(order);
	/* The certificate chain (7.4.2), leaf first. */
	acme_post(&a, cert_url, NULL, "acme-certificate", &h);
	if (h.status != 200 || strncasecmp(h.resp_type, "application/pem-certificate-chain", 33))
		sim_fail("acme: certificate: HTTP %ld, Content-Type \"%s\" (want 200, "
		         "application/pem-certificate-chain)",
		        h.status, h.resp_type);
	if ((bio = BIO_new_mem_buf(h.resp.p, (int)h.resp.len)) == NULL ||
	        (*cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		sim_ossl_fail("PEM_read_bio_X509 (the ACME certificate)");
	BIO_free(bio);
	sim_file_write(sim_path("acme-chain.pem"), h.resp.p, h.resp.len);
	sim_http_free(&h);
	if (X509_check_private_key(*cert, idkey) != 1)
		sim_fail("acme: the certificate is not for the attested key");
	*key = idkey;
	idkey = NULL;
	sim_say("acme: certified by %s", o->directory_url);
	free(cert_url);
free_finalize:
	free(csr);
free_challenge:
	EVP_PKEY_free(idkey);
	free(att);
	free(ch_url);
	free(token);
	free(authz_url);
	free(finalize);
	free(order_url);
done:
	free(new_account);
	free(new_order);
	sim_json_free(dir);
	EVP_PKEY_free(a.account);
	free(a.jwk);
	return ret;
}
