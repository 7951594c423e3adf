/*
 * SCEP through Apache with clients nobody here wrote: micromdm's
 * scepclient (Debian package scep) and certmonger's scep-submit, plus the
 * openssl command line as the judge of what they received.  Each client
 * runs in a fresh directory; challenges come from mdm.scep_challenge_new
 * in the stack's database (MDM_DB).  PKIOperation by GET is also sent
 * from here (scep_msg_request, as macOS would send it) to check what
 * Apache and the query parser do to base64's '+' and '/'.
 */
#include "base64.h"
#include "cms.h"
#include "db.h"
#include "e2eutil.h"
#include "scep_msg.h"
#include "ts_pki.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Suite *scep_interop_suite(void);

static const char *scep_url, *tmpdir, *static_challenge;
/*
 * E2E_SCEP_LEGACY=1 (tests/run.sh, proxy mode): the stack allows what
 * micromdm's scepclient needs (SHA-1, single DES);
 * 0 (fcgid mode): the defaults, which refuse it.  Unset counts as 1.
 */
static int legacy = 1;

static char *challenge_new(void)
{
	return e2e_query1("SELECT mdm.scep_challenge_new()", NULL);
}

static int issued_count(void)
{
	char *s = e2e_query1("SELECT count(*) FROM mdm.certificate WHERE kind = 'device'", NULL);
	int n = atoi(s);

	free(s);
	return n;
}

/*
 * What GetCACert serves, as served (ca.der, its Content-Type in ca.type)
 * and in PEM for openssl verify (ca.pem): a DER certificate, or the
 * certificates of a certs-only PKCS#7 (RFC 8894 section 4.2.1).
 */
static void fetch_ca(const char *dir)
{
	ck_assert_int_eq(
	        ts_sh("curl -sSf -o %s/ca.der -w '%%{content_type}' '%s?operation=GetCACert' "
	              ">%s/ca.type && { openssl x509 -inform DER -in %s/ca.der -out %s/ca.pem "
	              "2>/dev/null || openssl pkcs7 -inform DER -in %s/ca.der -print_certs "
	              "-out %s/ca.pem; }",
	                dir, scep_url, dir, dir, dir, dir, dir),
	        0);
}

/* The certificates of GetCACert's answer in dir/ca.der (fetch_ca); *n of them. */
static X509 **ca_answer(const char *dir, size_t *n)
{
	char path[600];
	uint8_t *der;
	size_t len;
	const unsigned char *q;
	X509 *one, **out;
	struct x509_st **certs = NULL;

	snprintf(path, sizeof(path), "%s/ca.der", dir);
	der = ts_file_get(path, &len);
	q = der;
	if ((one = d2i_X509(NULL, &q, (long)len)) != NULL && q == der + len) {
		out = malloc(sizeof(*out));
		ck_assert_ptr_nonnull(out);
		out[0] = one;
		*n = 1;
	} else {
		X509_free(one);
		*n = 0;
		ck_assert_int_eq(cms_certs_only_parse(der, len, &certs, n), MDM_OK);
		out = (X509 **)certs;
	}
	free(der);
	return out;
}

static void certs_free(X509 **certs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
	free(certs);
}

/* The CA among them: the self-signed CA certificate. */
static X509 *ca_of(X509 **certs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (X509_check_ca(certs[i]) && X509_check_issued(certs[i], certs[i]) == X509_V_OK)
			return certs[i];
	return NULL;
}

/*
 * What a client encrypts to, as Apple's and certmonger's pick it: the one
 * certificate, or the end-entity certificate made for key encipherment.
 */
static X509 *recipient_of(X509 **certs, size_t n)
{
	if (n == 1)
		return certs[0];
	for (size_t i = 0; i < n; i++)
		if (!X509_check_ca(certs[i]) &&
		        (X509_get_key_usage(certs[i]) & KU_KEY_ENCIPHERMENT))
			return certs[i];
	return NULL;
}

/* scepclient in a fresh directory; returns its exit status. */
static int scepclient(const char *dir, const char *challenge, const char *cn)
{
	ck_assert_int_eq(ts_sh("mkdir -p %s && openssl genrsa -traditional -out %s/key.pem 2048 "
	                       "2>/dev/null",
	                         dir, dir),
	        0);
	return ts_sh("cd %s && scepclient -server-url '%s' -challenge '%s' -private-key key.pem "
	             "-cn '%s' >scepclient.log 2>&1",
	        dir, scep_url, challenge, cn);
}

START_TEST(caps_offer_what_we_do)
{
	char path[512], buf[512];

	snprintf(path, sizeof(path), "%s/caps.txt", tmpdir);
	ck_assert_int_eq(ts_sh("curl -sSf -o %s '%s?operation=GetCACaps'", path, scep_url), 0);
	ts_file_into(path, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "AES"));
	ck_assert_ptr_nonnull(strstr(buf, "SHA-256"));
	ck_assert_ptr_nonnull(strstr(buf, "POSTPKIOperation"));
	ck_assert_ptr_nonnull(strstr(buf, "SCEPStandard"));
}
END_TEST

START_TEST(scepclient_one_time_challenge)
{
	char dir[512], dir2[512];
	char *ch = challenge_new();
	int before;

	snprintf(dir, sizeof(dir), "%s/scepclient-1", tmpdir);
	if (!legacy) {
		/* Default policy: SHA-1 and single DES refused, nothing issued. */
		before = issued_count();
		ck_assert_int_ne(scepclient(dir, ch, "e2e-device-1"), 0);
		ck_assert_int_eq(issued_count(), before);
		free(ch);
		return;
	}
	ck_assert_int_eq(scepclient(dir, ch, "e2e-device-1"), 0);
	fetch_ca(dir);
	/* openssl, not our code, says the certificate is ours and for client auth. */
	ck_assert_int_eq(ts_sh("openssl verify -purpose sslclient -CAfile %s/ca.pem %s/client.pem "
	                       ">/dev/null",
	                         dir, dir),
	        0);
	ck_assert_int_eq(ts_sh("openssl x509 -in %s/client.pem -noout -subject | grep -q "
	                       "e2e-device-1",
	                         dir),
	        0);
	/* The same challenge a second time (new key, new directory): refused. */
	before = issued_count();
	snprintf(dir2, sizeof(dir2), "%s/scepclient-2", tmpdir);
	ck_assert_int_ne(scepclient(dir2, ch, "e2e-device-2"), 0);
	ck_assert_int_ne(access(dir2, F_OK), -1);
	ck_assert_int_eq(issued_count(), before);
	free(ch);
}
END_TEST

START_TEST(scepclient_static_challenge)
{
	char dir[512];

	if (static_challenge == NULL) {
		fprintf(stderr, "scep-interop: E2E_STATIC_CHALLENGE unset; static case skipped\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/scepclient-static", tmpdir);
	if (!legacy) {
		int before = issued_count();
		ck_assert_int_ne(scepclient(dir, static_challenge, "e2e-static"), 0);
		ck_assert_int_eq(issued_count(), before);
		return;
	}
	ck_assert_int_eq(scepclient(dir, static_challenge, "e2e-static"), 0);
	fetch_ca(dir);
	ck_assert_int_eq(
	        ts_sh("openssl verify -CAfile %s/ca.pem %s/client.pem >/dev/null", dir, dir), 0);
}
END_TEST

START_TEST(scepclient_wrong_challenge)
{
	char dir[512];
	int before = issued_count();

	snprintf(dir, sizeof(dir), "%s/scepclient-wrong", tmpdir);
	ck_assert_int_ne(scepclient(dir, "wrong-challenge-wrong-challenge", "e2e-wrong"), 0);
	ck_assert_int_eq(issued_count(), before);
}
END_TEST

static int certmonger_missing(void)
{
	if (getenv("E2E_CERTMONGER_SCRIPT") != NULL &&
	        ts_sh("command -v certmonger >/dev/null && command -v "
	              "dbus-run-session >/dev/null") == 0)
		return 0;
	fprintf(stderr, "scep-interop: certmonger or dbus missing; certmonger case skipped\n");
	return 1;
}

/*
 * certmonger set up as its users do it (`getcert add-scep-ca -c NAME -u
 * URL`, tests/e2e/certmonger.sh): it discovers the CA by GetCACaps and
 * GetCACert and enrolls.  Its discovery keeps the certificate it encrypts
 * to apart from the CA it verifies replies with, and never trusts the
 * former: GetCACert must let it find both, with an RA (the RA and the CA)
 * and without one.  tls_ca: for an https URL.
 */
static void certmonger_by_discovery(const char *tag, const char *url, const char *tls_ca)
{
	char dir[512];
	char *ch;
	int rc;

	if (certmonger_missing())
		return;
	ch = challenge_new();
	snprintf(dir, sizeof(dir), "%s/certmonger-%s", tmpdir, tag);
	ck_assert_int_eq(ts_sh("rm -rf %s && mkdir -p %s", dir, dir), 0);
	rc = ts_sh("sh %s %s '%s' '%s' '%s' >%s/certmonger.log 2>&1",
	        getenv("E2E_CERTMONGER_SCRIPT"), dir, url, ch, tls_ca ? tls_ca : "", dir);
	if (rc == 77) {
		fprintf(stderr,
		        "scep-interop: cannot add the TLS CA to a private trust store (root "
		        "and unshare -m needed); certmonger over https skipped\n");
		free(ch);
		return;
	}
	ck_assert_msg(rc == 0, "certmonger did not enrol by discovery; see %s/certmonger.log", dir);
	/* Discovery found the CA apart from the certificate it encrypts to. */
	ck_assert_int_eq(ts_sh("grep -q '^ca_encryption_issuer_cert=' %s/cas.txt", dir), 0);
	fetch_ca(dir);
	ck_assert_int_eq(ts_sh("openssl verify -purpose sslclient -CAfile %s/ca.pem %s/cert.pem "
	                       ">/dev/null",
	                         dir, dir),
	        0);
	free(ch);
}

START_TEST(certmonger_enrols)
{
	certmonger_by_discovery("http", scep_url, NULL);
}
END_TEST

/* The same over https: -R names the TLS server's CA, nothing else is given. */
START_TEST(certmonger_enrols_https)
{
	char url[512];

	if (getenv("E2E_HTTPS_BASE") == NULL || getenv("E2E_TLS_CA") == NULL) {
		fprintf(stderr, "scep-interop: no E2E_HTTPS_BASE/E2E_TLS_CA; https case skipped\n");
		return;
	}
	snprintf(url, sizeof(url), "%s/scep", getenv("E2E_HTTPS_BASE"));
	certmonger_by_discovery("https", url, getenv("E2E_TLS_CA"));
}
END_TEST

/*
 * GetCACert (RFC 8894 section 4.2.1) as the stack is configured: with an RA
 * (E2E_RA_CERT) the RA and the CA; without one the CA and the end-entity
 * certificate its key answers requests under.  Either way a client can tell
 * the CA (self-signed, cA) from the certificate to encrypt to (issued by
 * that CA, not a CA, keyEncipherment).
 */
START_TEST(getcacert_tells_ca_from_recipient)
{
	char dir[512], path[600], type[128];
	const char *ra_path = getenv("E2E_RA_CERT");
	X509 **certs, *ca, *to;
	size_t n;

	snprintf(dir, sizeof(dir), "%s/getcacert", tmpdir);
	ck_assert_int_eq(ts_sh("mkdir -p %s", dir), 0);
	fetch_ca(dir);
	snprintf(path, sizeof(path), "%s/ca.type", dir);
	ts_file_into(path, type, sizeof(type));
	ck_assert_str_eq(type, "application/x-x509-ca-ra-cert");
	certs = ca_answer(dir, &n);
	ck_assert_uint_eq(n, 2);
	ca = ca_of(certs, n);
	to = recipient_of(certs, n);
	ck_assert_ptr_nonnull(ca);
	ck_assert_ptr_nonnull(to);
	ck_assert_ptr_ne(ca, to);
	ck_assert_int_eq(X509_check_issued(ca, to), X509_V_OK);
	if (ra_path != NULL) {
		X509 *ra = ts_pem_cert(ra_path);

		ck_assert_int_eq(X509_cmp(ra, to), 0);
		X509_free(ra);
	} else {
		/* No RA: the CA's own key, under an end-entity certificate. */
		ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(ca), X509_get0_pubkey(to)), 1);
	}
	certs_free(certs, n);
}
END_TEST

/*
 * GET with the URL in a curl config file (a PKIOperation URL is longer
 * than sh's buffer); the body to out; returns the HTTP status, -1 when
 * curl could not ask.
 */
static int http_get(const char *url, const char *out)
{
	char cfgpath[600], code[16];

	snprintf(cfgpath, sizeof(cfgpath), "%s.curl", out);
	ts_file_put(cfgpath,
	        "url = \"%s\"\noutput = \"%s\"\ngloboff\nsilent\nwrite-out = \"%%{http_code}\"\n",
	        url, out);
	(void)ts_run(code, sizeof(code), "curl -K '%s'", cfgpath);
	return code[0] ? atoi(code) : -1;
}

/*
 * Enrols by GET PKIOperation as macOS does: message=<base64> with '+'
 * and '/' left as they are (escaped == 0) or percent-encoded.
 */
static void get_enrol(const char *tag, int escaped)
{
	char dir[512], path[600], txid[96];
	char *ch = challenge_new(), *b64 = NULL, *url;
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509_REQ *csr;
	X509 *self, **answer, *ca, *to;
	uint8_t *req = NULL, *reply, *inner = NULL, *csr_der;
	size_t reqlen, b64len = 0, replylen, innerlen, n_answer = 0, n = 0, csr_len;
	struct scep_msg_request_params p;
	struct scep_msg *rep = NULL;
	enum scep_fail_info fail;
	enum cms_cipher cipher;
	struct x509_st **certs = NULL;
	int tries, before = issued_count();

	snprintf(dir, sizeof(dir), "%s/get-%s", tmpdir, tag);
	ck_assert_int_eq(ts_sh("mkdir -p %s", dir), 0);
	fetch_ca(dir);
	answer = ca_answer(dir, &n_answer);
	ca = ca_of(answer, n_answer);
	to = recipient_of(answer, n_answer);
	ck_assert_ptr_nonnull(ca);
	ck_assert_ptr_nonnull(to);

	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(csr = ts_csr(key, "e2e-get-device", ch, NULL));
	ck_assert_ptr_nonnull(csr_der = ts_csr_der(csr, &csr_len));
	self = ts_signer(key, "e2e-get-device");

	/* A message whose base64 has both '+' and '/' (almost any does). */
	for (tries = 0; tries < 100; tries++) {
		snprintf(txid, sizeof(txid), "E2E-GET-%s-%s-%ld-%d", e2e_mode(), tag,
		        (long)getpid(), tries);
		p = ts_scep_params(SCEP_PKCSREQ, self, key, to, txid, csr_der, csr_len);
		ck_assert_int_eq(scep_msg_request(&p, &req, &reqlen), MDM_OK);
		ck_assert_int_eq(base64_encode(req, reqlen, &b64, &b64len), MDM_OK);
		free(req);
		if (strchr(b64, '+') != NULL && strchr(b64, '/') != NULL)
			break;
		free(b64);
		b64 = NULL;
	}
	ck_assert_ptr_nonnull(b64);

	url = malloc(strlen(scep_url) + 3 * b64len + 64);
	ck_assert_ptr_nonnull(url);
	n = (size_t)sprintf(url, "%s?operation=PKIOperation&message=", scep_url);
	for (size_t i = 0; i < b64len; i++) {
		if (escaped && (b64[i] == '+' || b64[i] == '/' || b64[i] == '='))
			n += (size_t)sprintf(url + n, "%%%02X", (unsigned char)b64[i]);
		else
			url[n++] = b64[i];
	}
	url[n] = '\0';
	snprintf(path, sizeof(path), "%s/reply.der", dir);
	ck_assert_int_eq(http_get(url, path), 200);

	reply = ts_file_get(path, &replylen);
	ck_assert_int_eq(scep_msg_parse(reply, replylen, &rep, &fail, NULL, 0), MDM_OK);
	ck_assert_int_eq(rep->message_type, SCEP_CERTREP);
	ck_assert_str_eq(rep->transaction_id, txid);
	ck_assert_int_eq(rep->pki_status, SCEP_SUCCESS);
	ck_assert_int_eq(
	        scep_msg_decrypt(rep, key, self, &inner, &innerlen, &cipher, &fail), MDM_OK);
	n = 0;
	ck_assert_int_eq(cms_certs_only_parse(inner, innerlen, &certs, &n), MDM_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(certs[0]), key), 1);
	ck_assert_int_eq(X509_check_issued(ca, certs[0]), X509_V_OK);
	ck_assert_int_eq(issued_count(), before + 1);

	X509_free(certs[0]);
	free(certs);
	free(inner);
	scep_msg_free(rep);
	free(reply);
	free(url);
	free(b64);
	free(csr_der);
	X509_REQ_free(csr);
	X509_free(self);
	certs_free(answer, n_answer);
	EVP_PKEY_free(key);
	free(ch);
}

START_TEST(get_pkioperation_unescaped)
{
	/* macOS: base64 straight into the query, '+' and '/' unescaped. */
	get_enrol("raw", 0);
}
END_TEST

START_TEST(get_pkioperation_percent_encoded)
{
	get_enrol("pct", 1);
}
END_TEST

START_TEST(no_next_ca_staged)
{
	char path[512], url[600];
	uint8_t *body;
	size_t len;

	/* GetCACaps does not offer GetNextCACert ... */
	snprintf(path, sizeof(path), "%s/caps-next.txt", tmpdir);
	snprintf(url, sizeof(url), "%s?operation=GetCACaps", scep_url);
	ck_assert_int_eq(http_get(url, path), 200);
	body = ts_file_get(path, &len);
	ck_assert_ptr_null(strstr((char *)body, "GetNextCACert"));
	free(body);
	/* ... and asking anyway is a 404 that says why. */
	snprintf(path, sizeof(path), "%s/next-ca.txt", tmpdir);
	snprintf(url, sizeof(url), "%s?operation=GetNextCACert", scep_url);
	ck_assert_int_eq(http_get(url, path), 404);
	body = ts_file_get(path, &len);
	ck_assert_msg(strstr((char *)body, "no CA rollover is staged") != NULL,
	        "GetNextCACert 404 body: %s", (char *)body);
	free(body);
}
END_TEST

/*
 * POSTs a PKIOperation (RFC 8894 section 4.3) from memory; the reply
 * body to dir/name.der, parsed and verified by scep_msg_parse.
 */
static struct scep_msg *post_pki(
        const char *dir, const char *name, const uint8_t *req, size_t reqlen, int *status)
{
	char in[600], out[600], code[16];
	struct scep_msg *rep = NULL;
	enum scep_fail_info fail;
	uint8_t *reply;
	size_t replylen;

	snprintf(in, sizeof(in), "%s/%s.req", dir, name);
	snprintf(out, sizeof(out), "%s/%s.der", dir, name);
	ts_file_write(in, req, reqlen);
	(void)ts_run(code, sizeof(code),
	        "curl -s -o '%s' -w '%%{http_code}' -H 'Content-Type: application/x-pki-message' "
	        "--data-binary @'%s' '%s?operation=PKIOperation'",
	        out, in, scep_url);
	*status = atoi(code);
	if (*status != 200)
		return NULL;
	reply = ts_file_get(out, &replylen);
	ck_assert_int_eq(scep_msg_parse(reply, replylen, &rep, &fail, NULL, 0), MDM_OK);
	ck_assert_int_eq(rep->message_type, SCEP_CERTREP);
	free(reply);
	return rep;
}

/* A request of type signed by signer/key over content, enveloped to to. */
static uint8_t *pki_req(enum scep_message_type type, X509 *signer, EVP_PKEY *key, X509 *to,
        enum cms_digest dg, const char *txid, const uint8_t *content, size_t len, size_t *reqlen)
{
	struct scep_msg_request_params p =
	        ts_scep_params(type, signer, key, to, txid, content, len);
	uint8_t *req = NULL;

	p.digest = dg;
	ck_assert_int_eq(scep_msg_request(&p, &req, reqlen), MDM_OK);
	return req;
}

/* A client of ours: key, CSR with a new challenge, self-signed signer. */
struct e2e_client {
	EVP_PKEY *key;
	X509 *self, *cert;
	uint8_t *csr_der;
	size_t csr_len;
};

static void e2e_client_new(struct e2e_client *c, const char *cn)
{
	char *ch = challenge_new();
	X509_REQ *csr;

	memset(c, 0, sizeof(*c));
	c->key = EVP_RSA_gen(2048);
	ck_assert_ptr_nonnull(c->key);
	ck_assert_ptr_nonnull(csr = ts_csr(c->key, cn, ch, NULL));
	ck_assert_ptr_nonnull(c->csr_der = ts_csr_der(csr, &c->csr_len));
	c->self = ts_signer(c->key, cn);
	X509_REQ_free(csr);
	free(ch);
}

static void e2e_client_free(struct e2e_client *c)
{
	EVP_PKEY_free(c->key);
	X509_free(c->self);
	X509_free(c->cert);
	free(c->csr_der);
}

/* The inner content of a SUCCESS CertRep, decrypted with the requester's key. */
static uint8_t *reply_inner(struct scep_msg *rep, EVP_PKEY *key, X509 *signer, size_t *len)
{
	enum scep_fail_info fail;
	enum cms_cipher cipher;
	uint8_t *inner = NULL;

	ck_assert_int_eq(rep->pki_status, SCEP_SUCCESS);
	ck_assert_int_eq(scep_msg_decrypt(rep, key, signer, &inner, len, &cipher, &fail), MDM_OK);
	return inner;
}

static void e2e_enrol(const char *dir, struct e2e_client *c, X509 *to, const char *txid)
{
	struct scep_msg *rep;
	struct x509_st **certs = NULL;
	uint8_t *req, *inner;
	size_t reqlen, innerlen, n = 0;
	int status;

	req = pki_req(SCEP_PKCSREQ, c->self, c->key, to, CMS_DIGEST_SHA256, txid, c->csr_der,
	        c->csr_len, &reqlen);
	rep = post_pki(dir, txid, req, reqlen, &status);
	ck_assert_int_eq(status, 200);
	inner = reply_inner(rep, c->key, c->self, &innerlen);
	ck_assert_int_eq(cms_certs_only_parse(inner, innerlen, &certs, &n), MDM_OK);
	ck_assert_uint_eq(n, 1);
	c->cert = certs[0];
	free(certs);
	free(inner);
	free(req);
	scep_msg_free(rep);
}

/*
 * With SHA-1 refused (the fcgid stack's defaults), a SHA-1 PKCSReq gets
 * FAILURE badAlg signed with SHA-256, the server's digest, never with the
 * SHA-1 it refuses; both our parser and openssl verify that signature.
 */
START_TEST(sha1_refusal_signed_with_server_digest)
{
	char dir[512], txid[96];
	struct e2e_client c;
	struct scep_msg *rep;
	X509 **answer, *to;
	uint8_t *req;
	size_t reqlen, n_answer;
	int status, before = issued_count();

	if (legacy) {
		fprintf(stderr,
		        "scep-interop: SHA-1 allowed in this mode; SHA-1 refusal skipped\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/sha1-refusal", tmpdir);
	ck_assert_int_eq(ts_sh("mkdir -p %s", dir), 0);
	fetch_ca(dir);
	answer = ca_answer(dir, &n_answer);
	to = recipient_of(answer, n_answer);
	ck_assert_ptr_nonnull(to);
	e2e_client_new(&c, "e2e-sha1");
	snprintf(txid, sizeof(txid), "E2E-SHA1-%ld", (long)getpid());
	req = pki_req(SCEP_PKCSREQ, c.self, c.key, to, CMS_DIGEST_SHA1, txid, c.csr_der, c.csr_len,
	        &reqlen);
	rep = post_pki(dir, "reply", req, reqlen, &status);
	ck_assert_int_eq(status, 200);
	ck_assert_int_eq(rep->pki_status, SCEP_FAILURE);
	ck_assert_int_eq(rep->fail_info, SCEP_BAD_ALG);
	ck_assert_str_eq(rep->transaction_id, txid);
	ck_assert_int_eq(rep->digest, CMS_DIGEST_SHA256);
	/* openssl, not our code, verifies the signature and names its digest. */
	ck_assert_int_eq(ts_sh("openssl cms -verify -noverify -inform DER -in %s/reply.der -out "
	                       "/dev/null 2>%s/verify.log",
	                         dir, dir),
	        0);
	ck_assert_int_eq(ts_sh("openssl cms -cmsout -print -inform DER -in %s/reply.der "
	                       ">%s/reply.txt && grep -A1 'digestAlgorithm' %s/reply.txt | grep -q "
	                       "'algorithm: sha256'",
	                         dir, dir, dir),
	        0);
	/* No digest of the SignedData or its SignerInfo is anything else (SHA-1). */
	ck_assert_int_eq(
	        ts_sh("grep -A1 'digestAlgorithm' %s/reply.txt | grep 'algorithm: ' | grep "
	              "-qv 'algorithm: sha256'",
	                dir),
	        1);
	ck_assert_int_eq(issued_count(), before);
	free(req);
	scep_msg_free(rep);
	e2e_client_free(&c);
	certs_free(answer, n_answer);
}
END_TEST

/* IssuerAndSerialNumber (RFC 5652 section 10.2.4) of cert, DER. */
static unsigned char *ias_of(X509 *cert, int *len)
{
	PKCS7_ISSUER_AND_SERIAL *ias = PKCS7_ISSUER_AND_SERIAL_new();
	unsigned char *der = NULL;

	ck_assert_ptr_nonnull(ias);
	ck_assert_int_eq(X509_NAME_set(&ias->issuer, X509_get_issuer_name(cert)), 1);
	ASN1_INTEGER_free(ias->serial);
	ias->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(cert));
	*len = i2d_PKCS7_ISSUER_AND_SERIAL(ias, &der);
	ck_assert_int_gt(*len, 0);
	PKCS7_ISSUER_AND_SERIAL_free(ias);
	return der;
}

/* mdm.certificate_revoke(serial of cert, reason): 1 if it revoked. */
static int e2e_revoke(X509 *cert, const char *reason)
{
	char serial[128];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = BN_bn2hex(bn);
	const char *params[2] = {serial, reason};
	db *d = NULL;
	mdm_err rc;

	snprintf(serial, sizeof(serial), "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e", &d), MDM_OK);
	rc = db_exec(d, "SELECT mdm.certificate_revoke($1, $2)", 2, params, NULL);
	if (rc != MDM_OK)
		ck_assert_str_eq(db_get0_sqlstate(d), "22023");
	db_free(d);
	return rc == MDM_OK;
}

/*
 * GetCRL through Apache after a revocation with every reason
 * mdm.certificate_revoke accepts: HTTP 200, SUCCESS, a CRL openssl
 * verifies against the CA, listing each certificate with its reasonCode.
 * removeFromCRL is refused (RFC 5280 section 5.3.1) and breaks nothing.
 */
START_TEST(getcrl_after_every_reason)
{
	static const char *const names[] = {"unspecified", "keyCompromise", "cACompromise",
	        "affiliationChanged", "superseded", "cessationOfOperation", "certificateHold",
	        "privilegeWithdrawn", "aACompromise"};
	static const char *const printed[] = {"Unspecified", "Key Compromise", "CA Compromise",
	        "Affiliation Changed", "Superseded", "Cessation Of Operation", "Certificate Hold",
	        "Privilege Withdrawn", "AA Compromise"};
	enum { N = sizeof(names) / sizeof(names[0]) };
	char dir[512], txid[96], path[600];
	struct e2e_client c[N + 1], keep;
	struct scep_msg *rep;
	X509 **answer, *to;
	uint8_t *req, *inner;
	unsigned char *ias;
	size_t reqlen, n_answer, innerlen;
	int status, iaslen;

	snprintf(dir, sizeof(dir), "%s/getcrl-reasons", tmpdir);
	ck_assert_int_eq(ts_sh("mkdir -p %s", dir), 0);
	fetch_ca(dir);
	answer = ca_answer(dir, &n_answer);
	to = recipient_of(answer, n_answer);
	ck_assert_ptr_nonnull(to);
	e2e_client_new(&keep, "e2e-crl-keep");
	snprintf(txid, sizeof(txid), "E2E-CRL-KEEP-%ld", (long)getpid());
	e2e_enrol(dir, &keep, to, txid);
	for (size_t i = 0; i < N + 1; i++) {
		e2e_client_new(&c[i], "e2e-crl-reason");
		snprintf(txid, sizeof(txid), "E2E-CRL-%zu-%ld", i, (long)getpid());
		e2e_enrol(dir, &c[i], to, txid);
	}
	ck_assert_int_eq(e2e_revoke(c[N].cert, "removeFromCRL"), 0);
	for (size_t i = 0; i < N; i++)
		ck_assert_int_eq(e2e_revoke(c[i].cert, names[i]), 1);

	ias = ias_of(keep.cert, &iaslen);
	snprintf(txid, sizeof(txid), "E2E-CRL-GET-%ld", (long)getpid());
	req = pki_req(SCEP_GETCRL, keep.cert, keep.key, to, CMS_DIGEST_SHA256, txid, ias,
	        (size_t)iaslen, &reqlen);
	rep = post_pki(dir, "getcrl", req, reqlen, &status);
	ck_assert_int_eq(status, 200);
	inner = reply_inner(rep, keep.key, keep.cert, &innerlen);
	snprintf(path, sizeof(path), "%s/crl.p7", dir);
	ts_file_write(path, inner, innerlen);
	/* openssl reads the CRL, verifies it with the CA and lists every reason. */
	ck_assert_int_eq(
	        ts_sh("openssl pkcs7 -inform DER -in %s/crl.p7 -print_certs -out %s/crl.txt", dir,
	                dir),
	        0);
	ck_assert_int_eq(ts_sh("awk '/BEGIN X509 CRL/,/END X509 CRL/' %s/crl.txt > %s/crl.pem && "
	                       "openssl crl -in %s/crl.pem -CAfile %s/ca.pem -noout -text "
	                       ">%s/crl.out 2>&1 && grep -q 'verify OK' %s/crl.out",
	                         dir, dir, dir, dir, dir, dir),
	        0);
	for (size_t i = 0; i < N; i++) {
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c[i].cert), NULL);
		char *hex = BN_bn2hex(bn);
		ck_assert_msg(ts_sh("grep -A4 'Serial Number: %s' %s/crl.out | grep -q '%s'", hex,
		                      dir, printed[i]) == 0,
		        "%s (%s) not on the CRL with its reason", names[i], hex);
		OPENSSL_free(hex);
		BN_free(bn);
	}
	free(inner);
	free(req);
	OPENSSL_free(ias);
	scep_msg_free(rep);
	for (size_t i = 0; i < N + 1; i++)
		e2e_client_free(&c[i]);
	e2e_client_free(&keep);
	certs_free(answer, n_answer);
}
END_TEST

Suite *scep_interop_suite(void)
{
	static char dir[512];

	scep_url = getenv("E2E_SCEP_URL");
	/* A directory per Apache mode: scepclient reuses what it finds in one. */
	e2e_tmpdir(dir, sizeof(dir), "%s", e2e_mode());
	tmpdir = dir;
	static_challenge = getenv("E2E_STATIC_CHALLENGE");
	legacy = e2e_legacy();
	return ts_suite("scep-interop", "clients", 120, caps_offer_what_we_do,
	        scepclient_one_time_challenge, scepclient_static_challenge,
	        scepclient_wrong_challenge, certmonger_enrols, certmonger_enrols_https,
	        getcacert_tells_ca_from_recipient, get_pkioperation_unescaped,
	        get_pkioperation_percent_encoded, no_next_ca_staged,
	        sha1_refusal_signed_with_server_digest, getcrl_after_every_reason);
}
