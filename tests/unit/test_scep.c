/*
 * scep: the rules a request must meet before the CA issues, against a real
 * PostgreSQL (MDM_TEST_DB; a database per test) and a CA made per test.
 * Client messages are built here with OpenSSL directly (the client side
 * is not ours), then sent through scep_pki_operation as scep.fcgi does.
 * Every refusal is checked for its failInfo and for leaving no
 * certificate issued.
 */
#include "ca.h"
#include "cms.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "scep.h"
#include "scep_msg.h"
#include "suites.h"
#include "ts_db.h"
#include "ts_pki.h"
#include "vectors.h"
#include "x509.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 ((time_t)1800000000) /* 2027-01-15, the tests' "now" */

static char keypath[128];
static struct ts_db tdb;
static db *d;
static config *cfg;
static struct scep_server *srv;

static void db_setup(void)
{
	ts_db_create(&tdb, "scep");
	d = tdb.d;
}

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	db_setup();
	snprintf(keypath, sizeof(keypath), "/tmp/mdm-scep-test-%ld.key", (long)getpid());
	unlink(keypath);
	ck_assert_int_eq(
	        ca_init(d, "/CN=Unit Test CA/O=mdm", 3650, 2048, keypath, NULL, T0 - 86400),
	        MDM_OK);
	unsetenv("MDM_SCEP_CHALLENGE");
	setenv("MDM_SCEP_ALLOW_SHA1", "no", 1);
	unsetenv("MDM_SCEP_APPROVAL");
	unsetenv("MDM_SCEP_SIGNER_MATCH");
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(scep_server_new(d, cfg, &srv), MDM_OK);
}

static void teardown(void)
{
	scep_server_free(srv);
	srv = NULL;
	config_free(cfg);
	cfg = NULL;
	d = NULL;
	ts_db_drop(&tdb); /* frees d */
	unlink(keypath);
}

/* Reloads config from the environment (after setenv in a test). */
static void reconfigure(void)
{
	scep_server_free(srv);
	config_free(cfg);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(scep_server_new(d, cfg, &srv), MDM_OK);
}

static int count(const char *sql)
{
	return ts_db_count(d, sql);
}

static int issued(void)
{
	return count("SELECT count(*) FROM mdm.certificate WHERE kind = 'device'");
}

static char *new_challenge(const char *ttl)
{
	const char *params[1] = {ttl};
	db_res *r = NULL;
	char *c;

	ck_assert_int_eq(
	        db_exec(d, "SELECT mdm.scep_challenge_new(NULL, $1::interval)", 1, params, &r),
	        MDM_OK);
	c = strdup(db_res_get0(r, 0, 0));
	db_res_free(r);
	return c;
}

/*
 * A client: key and CSR, and two throw-away signers.  apple is the one
 * Apple devices make (real macOS PKCSReq, iOS): its own key, a random
 * CN=<UUID>, keyUsage digitalSignature and extendedKeyUsage clientAuth,
 * both critical.  self is what RFC 8894 section 2.3 advises and generic
 * clients (scepclient, certmonger) make: the CSR's key and subject.
 */
struct client {
	EVP_PKEY *key;
	X509_REQ *csr;
	X509 *self;
	EVP_PKEY *apple_key;
	X509 *apple;
	uint8_t *csr_der;
	size_t csr_len;
};

static void client_csr(struct client *c, const char *cn, const char *challenge, EVP_PKEY *sign)
{
	ck_assert_ptr_nonnull(c->csr = ts_csr(c->key, cn, challenge, sign));
	ck_assert_ptr_nonnull(c->csr_der = ts_csr_der(c->csr, &c->csr_len));
}

static void add_ext(X509 *x, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, nid, value);

	ck_assert_ptr_nonnull(ext);
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key named cn, signed by signer_key under issuer_cn. */
static X509 *cert_by(
        EVP_PKEY *key, const char *cn, EVP_PKEY *signer_key, const char *issuer_cn, int apple_exts)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new(), *iname = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_NAME_add_entry_by_txt(
	        iname, "CN", MBSTRING_ASC, (const unsigned char *)issuer_cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, iname);
	X509_time_adj_ex(X509_getm_notBefore(x), -1, 0, NULL);
	X509_time_adj_ex(X509_getm_notAfter(x), 1, 0, NULL);
	X509_set_pubkey(x, key);
	if (apple_exts) {
		add_ext(x, NID_key_usage, "critical,digitalSignature");
		add_ext(x, NID_ext_key_usage, "critical,clientAuth");
	}
	ck_assert_int_gt(X509_sign(x, signer_key, EVP_sha256()), 0);
	X509_NAME_free(name);
	X509_NAME_free(iname);
	return x;
}

/* A throw-away signer shaped like Apple's: its own new key, CN=<random UUID>. */
static X509 *apple_signer(EVP_PKEY **key)
{
	unsigned char r[16];
	char cn[37];

	ck_assert_int_eq(RAND_bytes(r, sizeof(r)), 1);
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(cn, sizeof(cn),
	        "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", r[0], r[1],
	        r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
	        r[15]);
	*key = EVP_RSA_gen(2048);
	ck_assert_ptr_nonnull(*key);
	return cert_by(*key, cn, *key, cn, 1);
}

static void client_new(struct client *c, const char *cn, const char *challenge)
{
	memset(c, 0, sizeof(*c));
	c->key = EVP_RSA_gen(2048);
	ck_assert_ptr_nonnull(c->key);
	client_csr(c, cn, challenge, NULL);
	c->self = ts_signer(c->key, cn);
	c->apple = apple_signer(&c->apple_key);
}

static void client_free(struct client *c)
{
	EVP_PKEY_free(c->key);
	X509_REQ_free(c->csr);
	X509_free(c->self);
	EVP_PKEY_free(c->apple_key);
	X509_free(c->apple);
	free(c->csr_der);
}

struct answer {
	enum scep_pki_status status;
	enum scep_fail_info fail;
	enum cms_digest digest; /* of the CertRep's SignerInfo */
	X509 *cert;
};

/* Sends one request and reads the CertRep the way a client does. */
static mdm_err send_req(enum scep_message_type type, X509 *signer, EVP_PKEY *key,
        const uint8_t *content, size_t len, const char *txid, enum cms_digest dg,
        const char *challenge_attr, time_t now, struct answer *a)
{
	struct scep_msg_request_params p;
	struct scep_msg *rep = NULL;
	enum scep_fail_info fail;
	uint8_t *req = NULL, *reply = NULL, *inner = NULL;
	size_t reqlen, replylen, innerlen;
	enum cms_cipher cipher;
	mdm_err rc;

	memset(a, 0, sizeof(*a));
	if (srv->ca == NULL || srv->ca->active == NULL)
		ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	p = ts_scep_params(type, signer, key, srv->ca->active, txid, content, len);
	p.digest = dg;
	p.challenge_attr = challenge_attr;
	ck_assert_int_eq(scep_msg_request(&p, &req, &reqlen), MDM_OK);
	rc = scep_pki_operation(srv, req, reqlen, now, &reply, &replylen);
	free(req);
	if (rc != MDM_OK)
		return rc;
	ck_assert_int_eq(scep_msg_parse(reply, replylen, &rep, &fail, NULL, 0), MDM_OK);
	ck_assert_int_eq(rep->message_type, SCEP_CERTREP);
	ck_assert_str_eq(rep->transaction_id, txid);
	a->status = rep->pki_status;
	a->fail = rep->fail_info;
	a->digest = rep->digest;
	if (rep->pki_status == SCEP_SUCCESS) {
		struct x509_st **certs = NULL;
		size_t n = 0;
		ck_assert_int_eq(
		        scep_msg_decrypt(rep, key, signer, &inner, &innerlen, &cipher, &fail),
		        MDM_OK);
		ck_assert_int_eq(cms_certs_only_parse(inner, innerlen, &certs, &n), MDM_OK);
		ck_assert_uint_ge(n, 1);
		a->cert = certs[0];
		for (size_t i = 1; i < n; i++)
			X509_free(certs[i]);
		free(certs);
		free(inner);
	}
	scep_msg_free(rep);
	free(reply);
	return MDM_OK;
}

/* Enrolls the way an Apple device does: signed by its own throw-away key. */
static void enrol_ok(struct client *c, const char *txid, struct answer *a)
{
	ck_assert_int_eq(send_req(SCEP_PKCSREQ, c->apple, c->apple_key, c->csr_der, c->csr_len,
	                         txid, CMS_DIGEST_SHA256, NULL, T0, a),
	        MDM_OK);
	ck_assert_int_eq(a->status, SCEP_SUCCESS);
	ck_assert_ptr_nonnull(a->cert);
}

static void expect_fail(
        struct client *c, X509 *signer, EVP_PKEY *key, const char *txid, enum scep_fail_info want)
{
	struct answer a;
	int before = issued();

	ck_assert_int_eq(send_req(SCEP_PKCSREQ, signer, key, c->csr_der, c->csr_len, txid,
	                         CMS_DIGEST_SHA256, NULL, T0, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_FAILURE);
	ck_assert_int_eq(a.fail, want);
	ck_assert_ptr_null(a.cert);
	ck_assert_int_eq(issued(), before);
}

START_TEST(one_time_challenge_enrols_once)
{
	char *ch = new_challenge("1 hour");
	struct client c, c2;
	struct answer a;

	client_new(&c, "device-1", ch);
	enrol_ok(&c, "TX-1", &a);
	/* The certificate is the CSR's key, from our CA, for client authentication. */
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(a.cert), c.key), 1);
	ck_assert_int_eq(
	        x509_verify_issued(a.cert, srv->ca->verify, srv->ca->n_verify, T0, 1, NULL),
	        MDM_OK);
	ck_assert_int_eq(issued(), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge WHERE used_at IS NOT NULL"), 1);
	/* The challenge records the certificate it authorised. */
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge c JOIN mdm.certificate x ON "
	                       "x.id = c.used_by_certificate WHERE x.kind = 'device'"),
	        1);
	X509_free(a.cert);

	/* The same challenge again, from another device: refused. */
	client_new(&c2, "device-2", ch);
	expect_fail(&c2, c2.apple, c2.apple_key, "TX-2", SCEP_BAD_REQUEST);
	client_free(&c);
	client_free(&c2);
	free(ch);
}
END_TEST

START_TEST(retry_is_idempotent_and_txid_bound_to_key)
{
	char *ch = new_challenge("1 hour");
	struct client c, other;
	struct answer a, b;

	client_new(&c, "device-1", ch);
	enrol_ok(&c, "TX-RETRY", &a);
	/* A retry (same transactionID, same key) gets the same certificate, not a new one. */
	enrol_ok(&c, "TX-RETRY", &b);
	ck_assert_int_eq(X509_cmp(a.cert, b.cert), 0);
	ck_assert_int_eq(issued(), 1);
	/* The transactionID with another key: badRequest. */
	client_new(&other, "device-1", ch);
	expect_fail(&other, other.apple, other.apple_key, "TX-RETRY", SCEP_BAD_REQUEST);
	X509_free(a.cert);
	X509_free(b.cert);
	client_free(&c);
	client_free(&other);
	free(ch);
}
END_TEST

START_TEST(refuses_wrong_expired_and_missing_challenges)
{
	char *expired = new_challenge("1 second");
	struct client c;

	client_new(&c, "device-1", "not-a-challenge-we-made");
	expect_fail(&c, c.apple, c.apple_key, "TX-W", SCEP_BAD_REQUEST);
	client_free(&c);
	sleep(2);
	client_new(&c, "device-1", expired);
	expect_fail(&c, c.apple, c.apple_key, "TX-E", SCEP_BAD_REQUEST);
	client_free(&c);
	client_new(&c, "device-1", NULL);
	expect_fail(&c, c.apple, c.apple_key, "TX-N", SCEP_BAD_REQUEST);
	client_free(&c);
	free(expired);
}
END_TEST

START_TEST(static_challenge)
{
	struct client c;
	struct answer a;

	setenv("MDM_SCEP_CHALLENGE", "static-challenge-0123456789", 1);
	reconfigure();
	client_new(&c, "device-s", "static-challenge-0123456789");
	enrol_ok(&c, "TX-S1", &a);
	X509_free(a.cert);
	client_free(&c);
	/* A prefix of it is not it. */
	client_new(&c, "device-s", "static-challenge-012345678");
	expect_fail(&c, c.apple, c.apple_key, "TX-S2", SCEP_BAD_REQUEST);
	client_free(&c);
	unsetenv("MDM_SCEP_CHALLENGE");
}
END_TEST

START_TEST(challenge_as_signed_attribute)
{
	char *ch = new_challenge("1 hour");
	struct client c;
	struct answer a;

	/* macOS mdmclient sends the challenge as a signed attribute, not in the CSR. */
	client_new(&c, "device-mac", NULL);
	ck_assert_int_eq(send_req(SCEP_PKCSREQ, c.apple, c.apple_key, c.csr_der, c.csr_len,
	                         "TX-MAC", CMS_DIGEST_SHA512, ch, T0, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_SUCCESS);
	X509_free(a.cert);
	client_free(&c);
	free(ch);
}
END_TEST

/*
 * The issue that stopped every Apple device: a PKCSReq signed by a
 * throw-away certificate of its own key and a random subject is issued
 * by the default configuration.  The certificate holds the CSR's key;
 * the CertRep opens with the signer's key (send_req decrypts with it)
 * and not with the CSR's.
 */
START_TEST(apple_throwaway_signer_enrols)
{
	char *ch = new_challenge("1 hour"), *ch2 = new_challenge("1 hour");
	struct client c, c2;
	struct answer a, b;
	struct scep_msg_request_params p;
	struct scep_msg *rep = NULL;
	uint8_t *req = NULL, *reply = NULL, *inner = NULL;
	size_t reqlen, replylen, innerlen;
	enum scep_fail_info fail;

	client_new(&c, "com.apple.security.scep.4F9C2E0B-0D5E-4C8A-9B1E-3A6D2F7C8E11", ch);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(c.apple), c.key), 0);
	enrol_ok(&c, "TX-APPLE-1", &a);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(a.cert), c.key), 1);
	ck_assert_int_eq(
	        x509_verify_issued(a.cert, srv->ca->verify, srv->ca->n_verify, T0, 1, NULL),
	        MDM_OK);
	/* Another device, another throw-away key and UUID: also issued. */
	client_new(&c2, "com.apple.security.scep.0B7F2C1D-77A0-4E4B-8D44-2C9D1E0F5A63", ch2);
	enrol_ok(&c2, "TX-APPLE-2", &b);
	ck_assert_int_eq(issued(), 2);

	/* The CertRep is enveloped to the signer: the CSR's key cannot open it. */
	/* The retry: answered with the same certificate. */
	p = ts_scep_params(SCEP_PKCSREQ, c.apple, c.apple_key, srv->ca->active, "TX-APPLE-1",
	        c.csr_der, c.csr_len);
	ck_assert_int_eq(scep_msg_request(&p, &req, &reqlen), MDM_OK);
	ck_assert_int_eq(scep_pki_operation(srv, req, reqlen, T0, &reply, &replylen), MDM_OK);
	ck_assert_int_eq(scep_msg_parse(reply, replylen, &rep, &fail, NULL, 0), MDM_OK);
	ck_assert_int_eq(rep->pki_status, SCEP_SUCCESS);
	ck_assert_int_ne(
	        scep_msg_decrypt(rep, c.key, c.apple, &inner, &innerlen, NULL, NULL), MDM_OK);
	ck_assert_int_eq(
	        scep_msg_decrypt(rep, c.apple_key, c.apple, &inner, &innerlen, NULL, NULL), MDM_OK);
	free(inner);
	scep_msg_free(rep);
	free(reply);
	free(req);
	ck_assert_int_eq(issued(), 2);
	X509_free(a.cert);
	X509_free(b.cert);
	client_free(&c);
	client_free(&c2);
	free(ch);
	free(ch2);
}
END_TEST

/*
 * Without an RA, GetCACert offers the CA key under its responder (an RA
 * that signs and encrypts, as Apple devices want).  A request enveloped to
 * the responder is answered under the responder, the CA carried beside it
 * (Apple accepts a CertRep from exactly the RA it encrypted to); one
 * enveloped to the CA certificate itself (a client that read the lone CA)
 * under the CA.  Both open with the signer's key and hold the CSR's key.
 */
START_TEST(reply_signed_under_the_certificate_encrypted_to)
{
	char *ch = new_challenge("1 hour"), *ch2 = new_challenge("1 hour");
	struct x509_st *to[2];
	const char *txid[2] = {"TX-TO-RESPONDER", "TX-TO-CA"};
	struct client c[2];

	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	ck_assert_ptr_nonnull(srv->ca->responder);
	to[0] = srv->ca->responder;
	to[1] = srv->ca->active;
	client_new(&c[0], "device-to-responder", ch);
	client_new(&c[1], "device-to-ca", ch2);
	for (int i = 0; i < 2; i++) {
		struct scep_msg_request_params p;
		struct scep_msg *rep = NULL;
		enum scep_fail_info fail;
		uint8_t *req = NULL, *reply = NULL, *inner = NULL;
		size_t reqlen, replylen, innerlen, n = 0;
		struct x509_st **certs = NULL;
		const unsigned char *q;
		CMS_ContentInfo *cms;
		STACK_OF(X509) * carried;

		p = ts_scep_params(SCEP_PKCSREQ, c[i].apple, c[i].apple_key, to[i], txid[i],
		        c[i].csr_der, c[i].csr_len);
		p.cipher = CMS_CIPHER_AES128;
		ck_assert_int_eq(scep_msg_request(&p, &req, &reqlen), MDM_OK);
		ck_assert_int_eq(
		        scep_pki_operation(srv, req, reqlen, T0, &reply, &replylen), MDM_OK);
		ck_assert_int_eq(scep_msg_parse(reply, replylen, &rep, &fail, NULL, 0), MDM_OK);
		ck_assert_int_eq(rep->pki_status, SCEP_SUCCESS);
		ck_assert_int_eq(X509_cmp(rep->signer, to[i]), 0);
		/* Under the responder the CA is carried too, so the chain can be built. */
		q = reply;
		ck_assert_ptr_nonnull(cms = d2i_CMS_ContentInfo(NULL, &q, (long)replylen));
		ck_assert_ptr_nonnull(carried = CMS_get1_certs(cms));
		ck_assert_int_eq(sk_X509_num(carried), i == 0 ? 2 : 1);
		sk_X509_pop_free(carried, X509_free);
		CMS_ContentInfo_free(cms);
		ck_assert_int_eq(scep_msg_decrypt(rep, c[i].apple_key, c[i].apple, &inner,
		                         &innerlen, NULL, NULL),
		        MDM_OK);
		ck_assert_int_eq(cms_certs_only_parse(inner, innerlen, &certs, &n), MDM_OK);
		ck_assert_uint_eq(n, 1);
		ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(certs[0]), c[i].key), 1);
		X509_free(certs[0]);
		free(certs);
		free(inner);
		scep_msg_free(rep);
		free(reply);
		free(req);
	}
	ck_assert_int_eq(issued(), 2);
	client_free(&c[0]);
	client_free(&c[1]);
	free(ch);
	free(ch2);
}
END_TEST

/* The generic shape (the CSR's key and subject, scepclient, certmonger) enrols too. */
START_TEST(rfc_shaped_signer_enrols)
{
	char *ch = new_challenge("1 hour");
	struct client c;
	struct answer a;

	client_new(&c, "device-rfc", ch);
	ck_assert_int_eq(send_req(SCEP_PKCSREQ, c.self, c.key, c.csr_der, c.csr_len, "TX-RFC",
	                         CMS_DIGEST_SHA256, NULL, T0, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_SUCCESS);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(a.cert), c.key), 1);
	X509_free(a.cert);
	client_free(&c);
	free(ch);
}
END_TEST

/*
 * RFC 8894 section 2.3: a signer that is not ours must be self-signed.
 * One issued by someone else's CA, or one whose name says self-issued but
 * whose signature is another key's, is refused and spends nothing.
 */
START_TEST(signer_must_be_self_signed)
{
	char *ch = new_challenge("1 hour");
	struct client c;
	EVP_PKEY *k = EVP_RSA_gen(2048), *foreign = EVP_RSA_gen(2048);
	X509 *by_foreign, *forged;

	client_new(&c, "device-1", ch);
	by_foreign = cert_by(k, "8A1F3C55-2B44-4E0F-9C2D-1B7E6A5F4D33", foreign, "Other CA", 1);
	expect_fail(&c, by_foreign, k, "TX-SS1", SCEP_BAD_MESSAGE_CHECK);
	forged = cert_by(k, "8A1F3C55-2B44-4E0F-9C2D-1B7E6A5F4D33", foreign,
	        "8A1F3C55-2B44-4E0F-9C2D-1B7E6A5F4D33", 1);
	expect_fail(&c, forged, k, "TX-SS2", SCEP_BAD_MESSAGE_CHECK);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge WHERE used_at IS NULL"), 1);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.scep_transaction"), 0);
	X509_free(by_foreign);
	X509_free(forged);
	EVP_PKEY_free(k);
	EVP_PKEY_free(foreign);
	client_free(&c);
	free(ch);
}
END_TEST

/* scep_signer_match: what a non-Apple fleet may opt into, never the default. */
START_TEST(signer_match_is_opt_in)
{
	char *ch = new_challenge("1 hour");
	struct client c;
	struct answer a;
	X509 *wrong_subject;

	client_new(&c, "device-1", ch);
	wrong_subject = ts_signer(c.key, "someone-else");
	setenv("MDM_SCEP_SIGNER_MATCH", "key", 1);
	reconfigure();
	/* key: Apple's own-key signer refused, the CSR's key under any subject not. */
	expect_fail(&c, c.apple, c.apple_key, "TX-K1", SCEP_BAD_MESSAGE_CHECK);
	setenv("MDM_SCEP_SIGNER_MATCH", "key+subject", 1);
	reconfigure();
	expect_fail(&c, wrong_subject, c.key, "TX-K2", SCEP_BAD_MESSAGE_CHECK);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge WHERE used_at IS NULL"), 1);
	ck_assert_int_eq(send_req(SCEP_PKCSREQ, c.self, c.key, c.csr_der, c.csr_len, "TX-K3",
	                         CMS_DIGEST_SHA256, NULL, T0, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_SUCCESS);
	X509_free(a.cert);
	/* Anything else does not start. */
	setenv("MDM_SCEP_SIGNER_MATCH", "strict", 1);
	scep_server_free(srv);
	srv = NULL;
	config_free(cfg);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(scep_server_new(d, cfg, &srv), MDM_ERR_CONFIG);
	ck_assert_ptr_null(srv);
	unsetenv("MDM_SCEP_SIGNER_MATCH");
	reconfigure();
	X509_free(wrong_subject);
	client_free(&c);
	free(ch);
}
END_TEST

START_TEST(csr_signature_must_verify)
{
	char *ch = new_challenge("1 hour");
	struct client c;
	EVP_PKEY *other = EVP_RSA_gen(2048);

	memset(&c, 0, sizeof(c));
	c.key = EVP_RSA_gen(2048);
	/* A CSR carrying c.key but signed with another key. */
	client_csr(&c, "device-1", ch, other);
	c.self = ts_signer(c.key, "device-1");
	c.apple = apple_signer(&c.apple_key);
	expect_fail(&c, c.apple, c.apple_key, "TX-CSR", SCEP_BAD_MESSAGE_CHECK);
	EVP_PKEY_free(other);
	client_free(&c);
	free(ch);
}
END_TEST

START_TEST(small_keys_and_sha1_refused)
{
	char *ch = new_challenge("1 hour");
	struct client c;
	struct answer a;

	memset(&c, 0, sizeof(c));
	c.key = EVP_RSA_gen(1024);
	client_csr(&c, "device-small", ch, NULL);
	c.self = ts_signer(c.key, "device-small");
	c.apple = apple_signer(&c.apple_key);
	expect_fail(&c, c.apple, c.apple_key, "TX-1024", SCEP_BAD_REQUEST);
	client_free(&c);

	client_new(&c, "device-sha1", ch);
	ck_assert_int_eq(send_req(SCEP_PKCSREQ, c.apple, c.apple_key, c.csr_der, c.csr_len,
	                         "TX-SHA1", CMS_DIGEST_SHA1, NULL, T0, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_FAILURE);
	ck_assert_int_eq(a.fail, SCEP_BAD_ALG);
	/*
	 * The refusal is signed with the server's own digest, never with the
	 * SHA-1 it refuses over the request's transactionID and nonce; the
	 * client verified it (scep_msg_parse in send_req).
	 */
	ck_assert_int_eq(a.digest, CMS_DIGEST_SHA256);
	ck_assert_int_eq(issued(), 0);
	/* Allowed by configuration: accepted. */
	setenv("MDM_SCEP_ALLOW_SHA1", "yes", 1);
	reconfigure();
	ck_assert_int_eq(send_req(SCEP_PKCSREQ, c.apple, c.apple_key, c.csr_der, c.csr_len,
	                         "TX-SHA1b", CMS_DIGEST_SHA1, NULL, T0, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_SUCCESS);
	ck_assert_int_eq(a.digest, CMS_DIGEST_SHA1); /* what the client asked for, now allowed */
	X509_free(a.cert);
	client_free(&c);
	free(ch);
}
END_TEST

static uint8_t *csr_der_of(struct client *c, size_t *len)
{
	*len = c->csr_len;
	return c->csr_der;
}

START_TEST(renewal_by_existing_certificate)
{
	char *ch = new_challenge("1 hour");
	struct client c, next;
	struct answer a, r;
	size_t len;
	uint8_t *der;

	client_new(&c, "device-r", ch);
	enrol_ok(&c, "TX-R0", &a);
	/* RenewalReq: a new key, signed with the certificate we issued; no challenge. */
	client_new(&next, "device-r", NULL);
	der = csr_der_of(&next, &len);
	ck_assert_int_eq(send_req(SCEP_RENEWALREQ, a.cert, c.key, der, len, "TX-R1",
	                         CMS_DIGEST_SHA256, NULL, T0 + 3600, &r),
	        MDM_OK);
	ck_assert_int_eq(r.status, SCEP_SUCCESS);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(r.cert), next.key), 1);
	ck_assert_int_eq(
	        count("SELECT count(*) FROM mdm.certificate WHERE renewal_of IS NOT NULL"), 1);
	X509_free(r.cert);

	/* Revoked: refused. */
	{
		struct x509_info info;
		const char *params[1];
		ck_assert_int_eq(x509_cert_info(a.cert, &info), MDM_OK);
		params[0] = info.serial;
		ck_assert_int_eq(db_exec(d, "SELECT mdm.certificate_revoke($1, 'keyCompromise')", 1,
		                         params, NULL),
		        MDM_OK);
	}
	ck_assert_int_eq(send_req(SCEP_RENEWALREQ, a.cert, c.key, der, len, "TX-R2",
	                         CMS_DIGEST_SHA256, NULL, T0 + 7200, &r),
	        MDM_OK);
	ck_assert_int_eq(r.status, SCEP_FAILURE);
	ck_assert_int_eq(r.fail, SCEP_BAD_MESSAGE_CHECK);
	ck_assert_int_eq(issued(), 2);
	X509_free(a.cert);
	client_free(&c);
	client_free(&next);
	free(ch);
}
END_TEST

START_TEST(renewal_refused_when_expired_or_foreign)
{
	char *ch = new_challenge("1 hour");
	struct client c, next, foreign;
	struct answer a, r;

	client_new(&c, "device-x", ch);
	enrol_ok(&c, "TX-X0", &a);
	client_new(&next, "device-x", NULL);
	/* A year and more later the certificate (365 days) has expired. */
	ck_assert_int_eq(send_req(SCEP_RENEWALREQ, a.cert, c.key, next.csr_der, next.csr_len,
	                         "TX-X1", CMS_DIGEST_SHA256, NULL, T0 + 400 * 86400, &r),
	        MDM_OK);
	ck_assert_int_eq(r.status, SCEP_FAILURE);
	ck_assert_int_eq(r.fail, SCEP_BAD_MESSAGE_CHECK);
	/* Signed by a certificate from elsewhere (self-signed, not ours). */
	client_new(&foreign, "device-x", NULL);
	ck_assert_int_eq(send_req(SCEP_RENEWALREQ, foreign.self, foreign.key, next.csr_der,
	                         next.csr_len, "TX-X2", CMS_DIGEST_SHA256, NULL, T0, &r),
	        MDM_OK);
	ck_assert_int_eq(r.status, SCEP_FAILURE);
	ck_assert_int_eq(r.fail, SCEP_BAD_MESSAGE_CHECK);
	ck_assert_int_eq(issued(), 1);
	X509_free(a.cert);
	client_free(&c);
	client_free(&next);
	client_free(&foreign);
	free(ch);
}
END_TEST

/* IssuerAndSubject (RFC 8894 section 3.3.3): the CA's name, then the CSR's. */
static unsigned char *ias_of(X509_REQ *csr, int *len)
{
	X509_NAME *issuer = X509_get_subject_name(srv->ca->active);
	unsigned char *p1 = NULL, *p2 = NULL, *ias;
	int n1 = i2d_X509_NAME(issuer, &p1);
	int n2 = i2d_X509_NAME(X509_REQ_get_subject_name(csr), &p2);

	/* DER SEQUENCE header for a short body (both names are small). */
	ck_assert_int_lt(n1 + n2, 65536);
	ias = malloc((size_t)(n1 + n2 + 8));
	ck_assert_ptr_nonnull(ias);
	ias[0] = 0x30;
	ias[1] = 0x82;
	ias[2] = (unsigned char)((n1 + n2) >> 8);
	ias[3] = (unsigned char)((n1 + n2) & 0xff);
	memcpy(ias + 4, p1, (size_t)n1);
	memcpy(ias + 4 + n1, p2, (size_t)n2);
	*len = 4 + n1 + n2;
	OPENSSL_free(p1);
	OPENSSL_free(p2);
	return ias;
}

static void sql1(const char *sql, const char *arg)
{
	const char *params[1] = {arg};

	ck_assert_int_eq(db_exec(d, sql, arg ? 1 : 0, arg ? params : NULL, NULL), MDM_OK);
}

/*
 * A RenewalReq waiting under scep_approval = manual, approved: txid is
 * then answered by the CertPoll.  *old is the certificate it renews.
 */
static void renewal_approved(struct client *c, struct client *next, const char *tx0,
        const char *txid, struct answer *old)
{
	struct answer a;

	unsetenv("MDM_SCEP_APPROVAL");
	reconfigure();
	enrol_ok(c, tx0, old);
	setenv("MDM_SCEP_APPROVAL", "manual", 1);
	reconfigure();
	ck_assert_int_eq(send_req(SCEP_RENEWALREQ, old->cert, c->key, next->csr_der, next->csr_len,
	                         txid, CMS_DIGEST_SHA256, NULL, T0 + 3600, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_PENDING);
	sql1("SELECT mdm.scep_approve($1)", txid);
}

/* The CertPoll of a renewal refused at issue time, twice, nothing issued, and why is kept. */
static void poll_refused(struct client *c, struct client *next, X509 *old, const char *txid,
        time_t when, enum scep_fail_info want, const char *why)
{
	struct answer a;
	unsigned char *ias;
	int iaslen, before = issued();
	char sql[512];

	ias = ias_of(next->csr, &iaslen);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(send_req(SCEP_CERTPOLL, old, c->key, ias, (size_t)iaslen, txid,
		                         CMS_DIGEST_SHA256, NULL, when + i, &a),
		        MDM_OK);
		ck_assert_int_eq(a.status, SCEP_FAILURE);
		ck_assert_int_eq(a.fail, want);
		ck_assert_ptr_null(a.cert);
	}
	ck_assert_int_eq(issued(), before);
	/* The operator sees that the approval went void, and why. */
	snprintf(sql, sizeof(sql),
	        "SELECT count(*) FROM mdm.scep_transactions WHERE transaction_id = '%s' AND "
	        "status = 'refused' AND approved AND refusal LIKE '%%%s%%'",
	        txid, why);
	ck_assert_msg(count(sql) == 1, "%s: no refusal naming \"%s\"", txid, why);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.scep_pending"), 0);
	free(ias);
}

START_TEST(manual_renewal_rechecked_at_issue)
{
	char *ch = new_challenge("1 hour"), *ch2 = new_challenge("1 hour"),
	     *ch3 = new_challenge("1 hour"), *ch4 = new_challenge("1 hour");
	struct client c, next;
	struct answer old;
	struct x509_info info;

	/* Revoked after the approval: badMessageCheck, as a renewal by it would be. */
	client_new(&c, "device-mr", ch);
	client_new(&next, "device-mr", NULL);
	renewal_approved(&c, &next, "TX-MR0", "TX-MR1", &old);
	ck_assert_int_eq(x509_cert_info(old.cert, &info), MDM_OK);
	sql1("SELECT mdm.certificate_revoke($1, 'keyCompromise')", info.serial);
	poll_refused(&c, &next, old.cert, "TX-MR1", T0 + 7200, SCEP_BAD_MESSAGE_CHECK, "revoked");
	X509_free(old.cert);
	client_free(&c);
	client_free(&next);

	/* Expired by the time the client polls (cert_days 365). */
	client_new(&c, "device-me", ch2);
	client_new(&next, "device-me", NULL);
	renewal_approved(&c, &next, "TX-ME0", "TX-ME1", &old);
	poll_refused(
	        &c, &next, old.cert, "TX-ME1", T0 + 400 * 86400, SCEP_BAD_MESSAGE_CHECK, "expired");
	X509_free(old.cert);
	client_free(&c);
	client_free(&next);

	/*
	 * Bound to a UDID when the request came; the UDID is bound to another
	 * certificate by the time of the CertPoll (re-enrolled, taken over).
	 */
	client_new(&c, "device-mb", ch3);
	client_new(&next, "device-mb", NULL);
	unsetenv("MDM_SCEP_APPROVAL");
	reconfigure();
	enrol_ok(&c, "TX-MB0", &old);
	ck_assert_int_eq(x509_cert_info(old.cert, &info), MDM_OK);
	sql1("INSERT INTO mdm.device (udid) VALUES ('UDID-MB')", NULL);
	sql1("UPDATE mdm.certificate SET udid = 'UDID-MB' WHERE sha256 = $1", info.sha256);
	sql1("UPDATE mdm.device SET identity_certificate_id = (SELECT id FROM mdm.certificate "
	     "WHERE sha256 = $1) WHERE udid = 'UDID-MB'",
	        info.sha256);
	{
		struct answer a;
		setenv("MDM_SCEP_APPROVAL", "manual", 1);
		reconfigure();
		ck_assert_int_eq(
		        send_req(SCEP_RENEWALREQ, old.cert, c.key, next.csr_der, next.csr_len,
		                "TX-MB1", CMS_DIGEST_SHA256, NULL, T0 + 3600, &a),
		        MDM_OK);
		ck_assert_int_eq(a.status, SCEP_PENDING);
		sql1("SELECT mdm.scep_approve($1)", "TX-MB1");
	}
	{
		struct client other;
		struct answer o;
		struct x509_info oi;
		unsetenv("MDM_SCEP_APPROVAL");
		reconfigure();
		client_new(&other, "device-mb", ch4);
		enrol_ok(&other, "TX-MB2", &o);
		ck_assert_int_eq(x509_cert_info(o.cert, &oi), MDM_OK);
		sql1("UPDATE mdm.device SET identity_certificate_id = (SELECT id FROM "
		     "mdm.certificate WHERE sha256 = $1) WHERE udid = 'UDID-MB'",
		        oi.sha256);
		X509_free(o.cert);
		client_free(&other);
	}
	poll_refused(&c, &next, old.cert, "TX-MB1", T0 + 7200, SCEP_BAD_REQUEST, "bound");
	X509_free(old.cert);
	client_free(&c);
	client_free(&next);

	unsetenv("MDM_SCEP_APPROVAL");
	free(ch);
	free(ch2);
	free(ch3);
	free(ch4);
}
END_TEST

/*
 * The operator cannot approve a renewal of a certificate revoked while it
 * waited (issue 13, 3): mdm.scep_approve refuses, naming the serial, and the
 * request stays pending for mdm.scep_reject (the CertPoll would refuse it
 * anyway).
 */
START_TEST(approval_of_revoked_renewal_refused)
{
	char *ch = new_challenge("1 hour");
	struct client c, next;
	struct answer old, a;
	struct x509_info info;
	const char *p[1] = {"TX-MA1"};

	unsetenv("MDM_SCEP_APPROVAL");
	reconfigure();
	client_new(&c, "device-ma", ch);
	client_new(&next, "device-ma", NULL);
	enrol_ok(&c, "TX-MA0", &old);
	setenv("MDM_SCEP_APPROVAL", "manual", 1);
	reconfigure();
	ck_assert_int_eq(send_req(SCEP_RENEWALREQ, old.cert, c.key, next.csr_der, next.csr_len,
	                         "TX-MA1", CMS_DIGEST_SHA256, NULL, T0 + 3600, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_PENDING);
	ck_assert_int_eq(x509_cert_info(old.cert, &info), MDM_OK);
	sql1("SELECT mdm.certificate_revoke($1, 'keyCompromise')", info.serial);
	ck_assert_int_ne(db_exec(d, "SELECT mdm.scep_approve($1)", 1, p, NULL), MDM_OK);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.scep_pending WHERE transaction_id = "
	                       "'TX-MA1' AND NOT approved"),
	        1);
	sql1("SELECT mdm.scep_reject($1)", "TX-MA1");
	X509_free(old.cert);
	client_free(&c);
	client_free(&next);
	unsetenv("MDM_SCEP_APPROVAL");
	free(ch);
}
END_TEST

/* An approved renewal whose grounds still hold is issued by the CertPoll. */
START_TEST(manual_renewal_issued_when_grounds_hold)
{
	char *ch = new_challenge("1 hour");
	struct client c, next;
	struct answer old, a;
	unsigned char *ias;
	int iaslen;

	client_new(&c, "device-mok", ch);
	client_new(&next, "device-mok", NULL);
	renewal_approved(&c, &next, "TX-MOK0", "TX-MOK1", &old);
	ias = ias_of(next.csr, &iaslen);
	ck_assert_int_eq(send_req(SCEP_CERTPOLL, old.cert, c.key, ias, (size_t)iaslen, "TX-MOK1",
	                         CMS_DIGEST_SHA256, NULL, T0 + 7200, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_SUCCESS);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(a.cert), next.key), 1);
	ck_assert_int_eq(issued(), 2);
	X509_free(a.cert);
	X509_free(old.cert);
	free(ias);
	client_free(&c);
	client_free(&next);
	unsetenv("MDM_SCEP_APPROVAL");
	free(ch);
}
END_TEST

START_TEST(manual_approval_then_certpoll)
{
	char *ch = new_challenge("1 hour");
	struct client c;
	struct answer a;
	X509_NAME *subj;
	unsigned char *ias = NULL;
	int iaslen;

	setenv("MDM_SCEP_APPROVAL", "manual", 1);
	reconfigure();
	client_new(&c, "device-m", ch);
	ck_assert_int_eq(send_req(SCEP_PKCSREQ, c.apple, c.apple_key, c.csr_der, c.csr_len, "TX-M",
	                         CMS_DIGEST_SHA256, NULL, T0, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_PENDING);
	ck_assert_int_eq(issued(), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.scep_pending"), 1);

	/* IssuerAndSubject (RFC 8894 section 3.3.3): the CA's name, then ours. */
	{
		X509_NAME *issuer = X509_get_subject_name(srv->ca->active);
		unsigned char *p1 = NULL, *p2 = NULL;
		int n1 = i2d_X509_NAME(issuer, &p1);
		subj = X509_REQ_get_subject_name(c.csr);
		int n2 = i2d_X509_NAME(subj, &p2);
		ias = malloc((size_t)(n1 + n2 + 8));
		/* DER SEQUENCE header for a short body (both names are small). */
		ck_assert_int_lt(n1 + n2, 65536);
		ias[0] = 0x30;
		ias[1] = 0x82;
		ias[2] = (unsigned char)((n1 + n2) >> 8);
		ias[3] = (unsigned char)((n1 + n2) & 0xff);
		memcpy(ias + 4, p1, (size_t)n1);
		memcpy(ias + 4 + n1, p2, (size_t)n2);
		iaslen = 4 + n1 + n2;
		OPENSSL_free(p1);
		OPENSSL_free(p2);
	}
	ck_assert_int_eq(send_req(SCEP_CERTPOLL, c.apple, c.apple_key, ias, (size_t)iaslen, "TX-M",
	                         CMS_DIGEST_SHA256, NULL, T0 + 60, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_PENDING);
	/* The transaction is the throw-away key's: a CertPoll from another gets nothing. */
	{
		struct client thief;
		client_new(&thief, "device-m", NULL);
		ck_assert_int_eq(
		        send_req(SCEP_CERTPOLL, thief.apple, thief.apple_key, ias, (size_t)iaslen,
		                "TX-M", CMS_DIGEST_SHA256, NULL, T0 + 90, &a),
		        MDM_OK);
		ck_assert_int_eq(a.status, SCEP_FAILURE);
		ck_assert_int_eq(a.fail, SCEP_BAD_CERT_ID);
		client_free(&thief);
	}
	ck_assert_int_eq(db_exec(d, "SELECT mdm.scep_approve('TX-M')", 0, NULL, NULL), MDM_OK);
	ck_assert_int_eq(send_req(SCEP_CERTPOLL, c.apple, c.apple_key, ias, (size_t)iaslen, "TX-M",
	                         CMS_DIGEST_SHA256, NULL, T0 + 120, &a),
	        MDM_OK);
	ck_assert_int_eq(a.status, SCEP_SUCCESS);
	ck_assert_int_eq(issued(), 1);
	X509_free(a.cert);
	free(ias);
	client_free(&c);
	free(ch);
	unsetenv("MDM_SCEP_APPROVAL");
}
END_TEST

/*
 * A refusal answered with a signed CertRep FAILURE (RFC 8894 section
 * 3.3.2.2): signed by our CA with SHA-256, addressed to the request's
 * transactionID and senderNonce, nothing issued.
 */
static void expect_failure_reply(const uint8_t *req, size_t reqlen, const char *txid,
        const uint8_t *nonce, size_t nonce_len, enum scep_fail_info want)
{
	struct scep_msg *rep = NULL;
	enum scep_fail_info fail;
	uint8_t *reply = NULL;
	size_t replylen = 0;
	int before = issued(), tx = count("SELECT count(*) FROM mdm.scep_transaction");

	ck_assert_int_eq(scep_pki_operation(srv, req, reqlen, T0, &reply, &replylen), MDM_OK);
	ck_assert_ptr_nonnull(reply);
	ck_assert_int_eq(scep_msg_parse(reply, replylen, &rep, &fail, NULL, 0), MDM_OK);
	ck_assert_int_eq(rep->message_type, SCEP_CERTREP);
	ck_assert_int_eq(rep->pki_status, SCEP_FAILURE);
	ck_assert_int_eq(rep->fail_info, want);
	ck_assert_str_eq(rep->transaction_id, txid);
	ck_assert_int_eq(rep->digest, CMS_DIGEST_SHA256);
	/* Found before decryption: under the responder GetCACert offers as the RA. */
	ck_assert_ptr_nonnull(srv->ca->responder);
	ck_assert_int_eq(X509_cmp(rep->signer, srv->ca->responder), 0);
	ck_assert_ptr_null(rep->envelope);
	ck_assert_int_eq(rep->has_recipient_nonce, 1);
	ck_assert_uint_eq(rep->recipient_nonce_len, nonce_len);
	ck_assert_mem_eq(rep->recipient_nonce, nonce, nonce_len);
	ck_assert_int_eq(issued(), before);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.scep_transaction"), tx);
	scep_msg_free(rep);
	free(reply);
}

static void add_attr(CMS_SignerInfo *si, const char *oid, int type, const void *v, int len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);

	ck_assert_ptr_nonnull(obj);
	ck_assert_int_eq(CMS_signed_add1_attr_by_OBJ(si, obj, type, v, len), 1);
	ASN1_OBJECT_free(obj);
}

/* A PKCSReq as sscep builds it: MD5 signer digest, the SCEP signed attributes. */
static uint8_t *md5_pkcsreq(
        struct client *c, const char *txid, const uint8_t *nonce, size_t nonce_len, size_t *len)
{
	unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
	STACK_OF(X509) *to = sk_X509_new_null();
	BIO *csr = BIO_new_mem_buf(c->csr_der, (int)c->csr_len), *in;
	CMS_ContentInfo *env, *cms;
	CMS_SignerInfo *si;
	unsigned char *envder = NULL, *der = NULL;
	uint8_t *out;
	int n, envlen;

	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	ck_assert_int_gt(sk_X509_push(to, srv->ca->active), 0);
	env = CMS_encrypt(to, csr, EVP_aes_128_cbc(), CMS_BINARY);
	ck_assert_ptr_nonnull(env);
	envlen = i2d_CMS_ContentInfo(env, &envder);
	ck_assert_int_gt(envlen, 0);
	cms = CMS_sign(NULL, NULL, NULL, NULL, flags);
	ck_assert_ptr_nonnull(cms);
	si = CMS_add1_signer(cms, c->self, c->key, EVP_md5(), flags);
	ck_assert_ptr_nonnull(si);
	add_attr(si, "2.16.840.1.113733.1.9.2", V_ASN1_PRINTABLESTRING, "19", 2);
	if (txid != NULL) /* NULL: none */
		add_attr(si, "2.16.840.1.113733.1.9.7", V_ASN1_PRINTABLESTRING, txid,
		        (int)strlen(txid));
	add_attr(si, "2.16.840.1.113733.1.9.5", V_ASN1_OCTET_STRING, nonce, (int)nonce_len);
	in = BIO_new_mem_buf(envder, envlen);
	ck_assert_int_eq(CMS_final(cms, in, NULL, CMS_BINARY), 1);
	n = i2d_CMS_ContentInfo(cms, &der);
	ck_assert_int_gt(n, 0);
	out = malloc((size_t)n);
	ck_assert_ptr_nonnull(out);
	memcpy(out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	OPENSSL_free(envder);
	BIO_free(in);
	BIO_free(csr);
	CMS_ContentInfo_free(cms);
	CMS_ContentInfo_free(env);
	sk_X509_free(to);
	return out;
}

START_TEST(md5_request_answered_bad_alg)
{
	static const uint8_t nonce[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	char *ch = new_challenge("1 hour");
	struct client c;
	struct answer a;
	uint8_t *req, *reply = NULL;
	size_t len, replylen;

	client_new(&c, "device-md5", ch);
	req = md5_pkcsreq(&c, "TX-MD5", nonce, sizeof(nonce), &len);
	expect_failure_reply(req, len, "TX-MD5", nonce, sizeof(nonce), SCEP_BAD_ALG);
	/* Without a transactionID it cannot be addressed: HTTP 400. */
	ck_assert_int_eq(
	        scep_pki_operation(srv, req, len - 1, T0, &reply, &replylen), MDM_ERR_PARSE);
	ck_assert_ptr_null(reply);
	free(req);
	/* The challenge was not spent: the same device enrols with SHA-256. */
	enrol_ok(&c, "TX-MD5-OK", &a);
	ck_assert_int_eq(issued(), 1);
	X509_free(a.cert);
	client_free(&c);
	free(ch);
}
END_TEST

START_TEST(bad_signature_answered_bad_message_check)
{
	static const uint8_t nonce[SCEP_NONCE_LEN] = "0123456789abcdef";
	char *ch = new_challenge("1 hour");
	struct client c;
	struct scep_msg_request_params p;
	struct answer a;
	uint8_t *req = NULL, *sigbytes;
	size_t reqlen, off, siglen;
	CMS_ContentInfo *cms;
	ASN1_OCTET_STRING *sig;
	const unsigned char *q;

	client_new(&c, "device-flip", ch);
	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	p = ts_scep_params(
	        SCEP_PKCSREQ, c.self, c.key, srv->ca->active, "TX-FLIP", c.csr_der, c.csr_len);
	p.sender_nonce = nonce;
	ck_assert_int_eq(scep_msg_request(&p, &req, &reqlen), MDM_OK);
	q = req;
	cms = d2i_CMS_ContentInfo(NULL, &q, (long)reqlen);
	ck_assert_ptr_nonnull(cms);
	sig = CMS_SignerInfo_get0_signature(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0));
	sigbytes = (uint8_t *)ASN1_STRING_get0_data(sig);
	siglen = (size_t)ASN1_STRING_length(sig);
	ck_assert_uint_gt(siglen, 16);
	for (off = 0; off + siglen <= reqlen; off++)
		if (memcmp(req + off, sigbytes, siglen) == 0)
			break;
	ck_assert_uint_le(off + siglen, reqlen);
	CMS_ContentInfo_free(cms);

	req[off + siglen / 2] ^= 0x01;
	expect_failure_reply(req, reqlen, "TX-FLIP", nonce, SCEP_NONCE_LEN, SCEP_BAD_MESSAGE_CHECK);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.challenge WHERE used_at IS NOT NULL"), 0);
	/* Restored: the same request enrols, with the challenge still unspent. */
	req[off + siglen / 2] ^= 0x01;
	free(req);
	enrol_ok(&c, "TX-FLIP", &a);
	ck_assert_int_eq(issued(), 1);
	X509_free(a.cert);
	client_free(&c);
	free(ch);
}
END_TEST

START_TEST(garbage_is_refused_without_issuing)
{
	static const uint8_t junk[] = {0x30, 0x80, 0x06, 0x09, 0x2a, 0x86};
	char *ch = new_challenge("1 hour");
	struct client c;
	struct scep_msg_request_params p;
	uint8_t *req = NULL, *reply = NULL;
	size_t reqlen, replylen;

	ck_assert_int_eq(
	        scep_pki_operation(srv, junk, sizeof(junk), T0, &reply, &replylen), MDM_ERR_PARSE);
	ck_assert_ptr_null(reply);
	client_new(&c, "device-t", ch);
	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	p = ts_scep_params(
	        SCEP_PKCSREQ, c.self, c.key, srv->ca->active, "TX-T", c.csr_der, c.csr_len);
	ck_assert_int_eq(scep_msg_request(&p, &req, &reqlen), MDM_OK);
	/* Every truncation is refused and issues nothing. */
	for (size_t cut = 1; cut < reqlen; cut += reqlen / 40 + 1) {
		ck_assert_int_eq(
		        scep_pki_operation(srv, req, cut, T0, &reply, &replylen), MDM_ERR_PARSE);
		ck_assert_ptr_null(reply);
	}
	ck_assert_int_eq(issued(), 0);
	free(req);
	client_free(&c);
	free(ch);
}
END_TEST

START_TEST(ca_rollover_keeps_devices)
{
	char *ch = new_challenge("1 hour"), *ch2;
	char newkey[160];
	struct client c, next, fresh;
	struct answer a, r, f;
	uint8_t *der = NULL;
	size_t len;

	client_new(&c, "device-old", ch);
	enrol_ok(&c, "TX-O", &a);
	/* Re-key: a new CA key, staged, served by GetNextCACert, then activated. */
	snprintf(newkey, sizeof(newkey), "%s.next", keypath);
	unlink(newkey);
	ck_assert_int_eq(scep_get_next_ca_cert(srv, &der, &len), MDM_ERR_NOT_FOUND);
	ck_assert_int_eq(ca_stage_next(d, 3650, 2048, newkey, NULL, T0), MDM_OK);
	ck_assert_int_eq(scep_get_next_ca_cert(srv, &der, &len), MDM_OK);
	free(der);
	ck_assert_int_eq(ca_activate(d), MDM_OK);
	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	ck_assert_uint_eq(srv->ca->n_verify, 2);
	/* The old device certificate still renews, and the renewal comes from the new CA. */
	client_new(&next, "device-old", NULL);
	ck_assert_int_eq(send_req(SCEP_RENEWALREQ, a.cert, c.key, next.csr_der, next.csr_len,
	                         "TX-O2", CMS_DIGEST_SHA256, NULL, T0 + 60, &r),
	        MDM_OK);
	ck_assert_int_eq(r.status, SCEP_SUCCESS);
	ck_assert_int_eq(X509_check_issued(srv->ca->active, r.cert), X509_V_OK);
	/* And a new device enrols under the new CA. */
	ch2 = new_challenge("1 hour");
	client_new(&fresh, "device-new", ch2);
	enrol_ok(&fresh, "TX-N", &f);
	ck_assert_int_eq(X509_check_issued(srv->ca->active, f.cert), X509_V_OK);
	X509_free(a.cert);
	X509_free(r.cert);
	X509_free(f.cert);
	client_free(&c);
	client_free(&next);
	client_free(&fresh);
	unlink(newkey);
	free(ch);
	free(ch2);
}
END_TEST

/* The certificates of a PEM bundle, in order; *n of them. */
static X509 **bundle_certs(const char *pem, size_t len, int *n)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 **out = calloc(8, sizeof(*out)), *x;

	ck_assert_ptr_nonnull(b);
	*n = 0;
	while (*n < 8 && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		out[(*n)++] = x;
	ERR_clear_error();
	BIO_free(b);
	return out;
}

static void bundle_free(X509 **c, int n)
{
	for (int i = 0; i < n; i++)
		X509_free(c[i]);
	free(c);
}

/*
 * lighttpd exports SSL_CLIENT_CERT only for a certificate that verifies
 * against its ssl.verifyclient.ca-file (lighttpd-conf/): the file must
 * hold the active CA, the staged next one and every retired one still
 * valid, or a rollover locks devices out.
 */
START_TEST(client_ca_bundle_follows_rollover)
{
	char newkey[160], path[160], tmp[170], *pem = NULL;
	size_t len = 0;
	X509 **c, *old;
	int n = 0, got = 0;
	struct stat sb;

	snprintf(newkey, sizeof(newkey), "%s.next", keypath);
	snprintf(path, sizeof(path), "%s.bundle.pem", keypath);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(newkey);
	unlink(path);
	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	old = srv->ca->active;
	ck_assert_int_eq(ca_client_bundle(d, T0, &pem, &len, &n), MDM_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_nonnull(strstr(pem, "# active CA: "));
	c = bundle_certs(pem, len, &got);
	ck_assert_int_eq(got, 1);
	ck_assert_int_eq(X509_cmp(c[0], old), 0);
	bundle_free(c, got);
	free(pem);

	/* Staged: the next CA is in before anything it issues exists. */
	ck_assert_int_eq(ca_stage_next(d, 3650, 2048, newkey, NULL, T0), MDM_OK);
	ck_assert_int_eq(ca_client_bundle_write(d, path, T0, &n), MDM_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0644);
	ck_assert_int_eq(access(tmp, F_OK), -1);

	/* Activated: the new CA first, the retired one kept while valid. */
	ck_assert_int_eq(ca_activate(d), MDM_OK);
	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	ck_assert_int_eq(ca_client_bundle(d, T0, &pem, &len, &n), MDM_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_ptr_nonnull(strstr(pem, "# retired CA: "));
	c = bundle_certs(pem, len, &got);
	ck_assert_int_eq(got, 2);
	ck_assert_int_eq(X509_cmp(c[0], srv->ca->active), 0);
	ck_assert_int_eq(X509_cmp(c[1], srv->ca->verify[1]), 0);
	bundle_free(c, got);
	free(pem);

	/* Once the retired CA expired nothing it issued verifies: left out. */
	ck_assert_int_eq(ca_client_bundle(d, T0 + 3650L * 86400, &pem, &len, &n), MDM_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_null(strstr(pem, "# retired CA: "));
	free(pem);

	/* A stale temporary file from a crash does not stop the rewrite. */
	ck_assert_int_eq(close(open(tmp, O_WRONLY | O_CREAT, 0600)), 0);
	ck_assert_int_eq(ca_client_bundle_write(d, path, T0, &n), MDM_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	unlink(path);
	unlink(newkey);
}
END_TEST

START_TEST(verifiers_load_no_ca_key)
{
	struct ca_state *v = NULL, *full = NULL;
	char away[160], newkey[160];

	/*
	 * enroll, checkin and server.fcgi parse hostile input and only verify
	 * identities: their state holds the certificates and never reads the
	 * key (issue 13), so they keep working with the key out of reach.
	 */
	snprintf(away, sizeof(away), "%s.away", keypath);
	ck_assert_int_eq(rename(keypath, away), 0);
	ck_assert_int_ne(ca_load(d, cfg, &full), MDM_OK);
	ck_assert_ptr_null(full);
	ck_assert_int_eq(ca_refresh_certs(d, cfg, &v), MDM_OK);
	ck_assert_ptr_nonnull(v->active);
	ck_assert_ptr_null(v->active_key);
	ck_assert_ptr_null(v->ra_key);
	ck_assert_ptr_null(v->responder);
	ck_assert_uint_eq(v->n_verify, 1);
	ck_assert_int_eq(rename(away, keypath), 0);
	/* A rollover reloads it, still without the key, by either refresh. */
	snprintf(newkey, sizeof(newkey), "%s.next", keypath);
	unlink(newkey);
	ck_assert_int_eq(ca_stage_next(d, 3650, 2048, newkey, NULL, T0), MDM_OK);
	ck_assert_int_eq(ca_activate(d), MDM_OK);
	ck_assert_int_eq(ca_refresh(d, cfg, &v), MDM_OK);
	ck_assert_uint_eq(v->n_verify, 2);
	ck_assert_ptr_null(v->active_key);
	ck_assert_int_eq(ca_load(d, cfg, &full), MDM_OK);
	ck_assert_ptr_nonnull(full->active_key);
	ck_assert_int_eq(X509_cmp(full->active, v->active), 0);
	ca_state_free(full);
	ca_state_free(v);
	unlink(newkey);
}
END_TEST

/*
 * sql/021: the programs no longer read mdm.ca_generation on every request;
 * mdm.ca's trigger sends NOTIFY mdm_ca and a refresh only looks for it.
 * Nothing read when nothing changed (the sequence renamed away does not
 * break a refresh), a change from another connection reaches the state,
 * and a connection the server ended is replaced, the generation read again.
 */
START_TEST(ca_changes_are_announced)
{
	struct ca_state *v = NULL;
	db *other = NULL;
	char newkey[160], pid[16], *backend;
	const char *p[1] = {pid};
	int i;

	ck_assert_int_eq(ca_refresh_certs(d, cfg, &v), MDM_OK);
	ck_assert_uint_eq(v->n_verify, 1);
	ck_assert_int_eq(db_new(tdb.conninfo, "unit-other", &other), MDM_OK);
	ck_assert_int_eq(
	        db_exec(other, "ALTER SEQUENCE mdm.ca_generation RENAME TO away", 0, NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(ca_refresh_certs(d, cfg, &v), MDM_OK);
	ck_assert_int_eq(
	        db_exec(other, "ALTER SEQUENCE mdm.away RENAME TO ca_generation", 0, NULL, NULL),
	        MDM_OK);
	/* A rollover by another program (mdmctl): announced, reloaded. */
	snprintf(newkey, sizeof(newkey), "%s.announced", keypath);
	unlink(newkey);
	ck_assert_int_eq(ca_stage_next(other, 3650, 2048, newkey, NULL, T0), MDM_OK);
	ck_assert_int_eq(ca_activate(other), MDM_OK);
	for (i = 0; i < 200 && v->n_verify != 2; i++) {
		ck_assert_int_eq(ca_refresh_certs(d, cfg, &v), MDM_OK);
		if (v->n_verify != 2)
			usleep(10000);
	}
	ck_assert_uint_eq(v->n_verify, 2);
	/* The server ends the connection: the next refresh reconnects and reads again. */
	backend = ts_db_query1(d, "SELECT pg_backend_pid()::text", NULL);
	snprintf(pid, sizeof(pid), "%s", backend);
	free(backend);
	ck_assert_int_eq(
	        db_exec(other, "SELECT pg_terminate_backend($1::integer, 5000)", 1, p, NULL),
	        MDM_OK);
	ck_assert_int_eq(ca_refresh_certs(d, cfg, &v), MDM_OK);
	ck_assert_uint_eq(v->n_verify, 2);
	ca_state_free(v);
	db_free(other);
	unlink(newkey);
}
END_TEST

START_TEST(caps_and_cacert)
{
	char *caps = NULL;
	size_t n;
	uint8_t *der = NULL;
	const char *ctype;

	ck_assert_int_eq(scep_get_ca_caps(srv, &caps, &n), MDM_OK);
	ck_assert_ptr_nonnull(strstr(caps, "AES\n"));
	ck_assert_ptr_nonnull(strstr(caps, "SHA-256\n"));
	ck_assert_ptr_nonnull(strstr(caps, "POSTPKIOperation\n"));
	ck_assert_ptr_nonnull(strstr(caps, "Renewal\n"));
	ck_assert_ptr_null(strstr(caps, "SHA-1"));
	ck_assert_ptr_null(strstr(caps, "DES3"));
	ck_assert_ptr_null(strstr(caps, "GetNextCACert"));
	free(caps);
	/* No RA: the CA and its key's responder certificate (test_scep_ops.c). */
	ck_assert_int_eq(scep_get_ca_cert(srv, &der, &n, &ctype), MDM_OK);
	ck_assert_str_eq(ctype, "application/x-x509-ca-ra-cert");
	free(der);
}
END_TEST

/* Two devices racing with one challenge: exactly one certificate. */
START_TEST(concurrent_use_of_one_challenge)
{
	char *ch = new_challenge("1 hour");
	pid_t kids[4];
	int won = 0;

	for (int i = 0; i < 4; i++) {
		if ((kids[i] = fork()) == 0) {
			struct client c;
			struct answer a;
			char cn[32], tx[32];
			/* A connection and a server of its own, like another FastCGI process. */
			if (db_new(tdb.conninfo, "race", &d) != MDM_OK ||
			        scep_server_new(d, cfg, &srv) != MDM_OK)
				_exit(2);
			snprintf(cn, sizeof(cn), "racer-%d", i);
			snprintf(tx, sizeof(tx), "TX-RACE-%d", i);
			client_new(&c, cn, ch);
			if (send_req(SCEP_PKCSREQ, c.apple, c.apple_key, c.csr_der, c.csr_len, tx,
			            CMS_DIGEST_SHA256, NULL, T0, &a) != MDM_OK)
				_exit(2);
			_exit(a.status == SCEP_SUCCESS ? 0 : a.fail == SCEP_BAD_REQUEST ? 1 : 2);
		}
		ck_assert_int_gt(kids[i], 0);
	}
	for (int i = 0; i < 4; i++) {
		int st;
		ck_assert_int_eq(waitpid(kids[i], &st, 0), kids[i]);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) <= 1);
		won += WEXITSTATUS(st) == 0;
	}
	ck_assert_int_eq(won, 1);
	ck_assert_int_eq(issued(), 1);
	free(ch);
}
END_TEST

/* ---- real captures through the whole policy ---- */

/* Log records written while fn runs, in buf (the log's level set to warn). */
static void capture_log(int *fd)
{
	char path[] = "/tmp/mdm-scep-log-XXXXXX";

	*fd = mkstemp(path);
	ck_assert_int_ge(*fd, 0);
	unlink(path);
	log_set_level(MDM_LOG_WARN);
	log_set_fd(*fd);
}

static void captured_log(int fd, char *buf, size_t cap)
{
	ssize_t n;

	log_set_fd(-1);
	log_set_level(MDM_LOG__MAX);
	n = pread(fd, buf, cap - 1, 0);
	buf[n > 0 ? (size_t)n : 0] = '\0';
	close(fd);
}

/* The CertRep for a real capture: FAILURE with want, addressed to txid, nothing issued. */
static void capture_refused(const uint8_t *der, size_t len, time_t now, const char *txid,
        enum scep_fail_info want, X509 *signer, char *log, size_t logcap)
{
	struct scep_msg *rep = NULL;
	enum scep_fail_info fail;
	uint8_t *reply = NULL;
	size_t replylen = 0;
	int fd;

	capture_log(&fd);
	ck_assert_int_eq(scep_pki_operation(srv, der, len, now, &reply, &replylen), MDM_OK);
	captured_log(fd, log, logcap);
	ck_assert_int_eq(scep_msg_parse(reply, replylen, &rep, &fail, NULL, 0), MDM_OK);
	ck_assert_int_eq(rep->message_type, SCEP_CERTREP);
	ck_assert_int_eq(rep->pki_status, SCEP_FAILURE);
	ck_assert_int_eq(rep->fail_info, want);
	ck_assert_str_eq(rep->transaction_id, txid);
	ck_assert_int_eq(X509_cmp(rep->signer, signer), 0);
	ck_assert_int_eq(rep->has_recipient_nonce, 1);
	ck_assert_uint_eq(rep->recipient_nonce_len, 8); /* macOS's 8-byte senderNonce, echoed */
	ck_assert_int_eq(issued(), 0);
	ck_assert_int_eq(count("SELECT count(*) FROM mdm.scep_transaction"), 0);
	scep_msg_free(rep);
	free(reply);
}

/* No signer or CSR rule may have spoken. */
static void no_signer_or_csr_rule(const char *log)
{
	ck_assert_msg(strstr(log, "signer") == NULL, "a signer rule refused: %s", log);
	ck_assert_msg(strstr(log, "CSR") == NULL, "a CSR rule refused: %s", log);
	ck_assert_msg(strstr(log, "unverified") == NULL, "the signature did not verify: %s", log);
}

/*
 * macOS mdmclient's PKIOperation (commandment): SHA-512, its own
 * "MDM SCEP SIGNER, C=AU", the challenge as a signed attribute.  Its
 * signature verifies; it is refused only because it is enveloped to
 * another CA (an NDES RA whose key is not published).
 */
START_TEST(real_mdmclient_refused_only_for_its_recipient)
{
	size_t len;
	uint8_t *der = vector_read("scep", "commandment/testdata/mdmclient-PKIOperation.der", &len);
	char log[4096];

	if (der == NULL)
		return;
	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	capture_refused(der, len, T0, "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B",
	        SCEP_BAD_MESSAGE_CHECK, srv->ca->responder, log, sizeof(log));
	ck_assert_msg(
	        strstr(log, "pkcsPKIEnvelope cannot be decrypted by this CA") != NULL, "%s", log);
	no_signer_or_csr_rule(log);
	free(der);
}
END_TEST

/* 2016-06-01: inside the real macOS PKCSReq's signer and CA validity. */
#define T_2016 ((time_t)1464782400)

/* The CA the real macOS PKCSReq was enveloped to (micromdm's scep/testdata/testca). */
static int install_capture_ca(void)
{
	char crt[4096], keyf[4096], id[32];
	const char *params[2];
	long long cid;
	EVP_PKEY *key;
	X509 *cert;

	if (vector_path("scep", "scep/testdata/testca/ca.crt", crt, sizeof(crt)) == NULL ||
	        vector_path("scep", "scep/testdata/testca/ca.key", keyf, sizeof(keyf)) == NULL)
		return 0;
	cert = ts_pem_cert(crt);
	/* Encrypted with an empty passphrase: written out in clear for key_uri. */
	key = ts_pem_key(keyf);
	ts_pem_write_key(keypath, key);
	ck_assert_int_eq(ca_cert_insert(d, cert, "ca", NULL, NULL, NULL, &cid), MDM_OK);
	snprintf(id, sizeof(id), "%lld", cid);
	params[0] = id;
	params[1] = keypath;
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.ca (certificate_id, key_uri, state, "
	                         "activated_at) VALUES ($1::bigint, $2, 'active', now())",
	                         2, params, NULL),
	        MDM_OK);
	EVP_PKEY_free(key);
	X509_free(cert);
	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	return 1;
}

static void capture_setup(void)
{
	log_set_level(MDM_LOG__MAX);
	db_setup();
	snprintf(keypath, sizeof(keypath), "/tmp/mdm-scep-capture-%ld.key", (long)getpid());
	unlink(keypath);
	unsetenv("MDM_SCEP_CHALLENGE");
	unsetenv("MDM_SCEP_APPROVAL");
	unsetenv("MDM_SCEP_SIGNER_MATCH");
	setenv("MDM_SCEP_ALLOW_SHA1", "no", 1);
	unsetenv("MDM_SCEP_ALLOW_DES3");
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(scep_server_new(d, cfg, &srv), MDM_OK);
}

/*
 * The real macOS PKCSReq (2016): signed by its own "MDM SCEP SIGNER,
 * C=US" (2048-bit) over a CSR of another, 1024-bit key, version 2,
 * SHA-1 and 3DES because its server offered no better.  With its CA and
 * a clock inside its validity, and the algorithms its server offered
 * enabled, it passes every signer and CSR rule and is refused by the
 * challenge rule alone: it carries no challengePassword.  With the
 * defaults it is refused for SHA-1 (badAlg), again no signer rule.
 */
START_TEST(real_macos_pkcsreq_reaches_the_challenge_rule)
{
	static const char tid[] = "A13090761A30F66664F85D37433D2065E1112BA1";
	size_t len;
	uint8_t *der = vector_read("scep", "scep/testdata/PKCSReq.der", &len);
	char log[4096];

	if (der == NULL || !install_capture_ca()) {
		free(der);
		return;
	}
	capture_refused(der, len, T_2016, tid, SCEP_BAD_ALG, srv->ca->responder, log, sizeof(log));
	ck_assert_msg(strstr(log, "SHA-1 is not enabled") != NULL, "%s", log);
	no_signer_or_csr_rule(log);

	setenv("MDM_SCEP_ALLOW_SHA1", "yes", 1);
	setenv("MDM_SCEP_ALLOW_DES3", "yes", 1);
	reconfigure();
	ck_assert_int_eq(ca_refresh(d, cfg, &srv->ca), MDM_OK);
	/* Enveloped to the CA certificate itself (its server served the lone CA): the CA answers.
	 */
	capture_refused(der, len, T_2016, tid, SCEP_BAD_REQUEST, srv->ca->active, log, sizeof(log));
	ck_assert_msg(strstr(log, "RFC 8894 section 2.2: a challengePassword is required") != NULL,
	        "%s", log);
	no_signer_or_csr_rule(log);
	/* Years later (the signer long expired): the same; its dates are not a rule. */
	capture_refused(der, len, T0, tid, SCEP_BAD_REQUEST, srv->ca->active, log, sizeof(log));
	ck_assert_msg(strstr(log, "a challengePassword is required") != NULL, "%s", log);
	unsetenv("MDM_SCEP_ALLOW_DES3");
	free(der);
}
END_TEST

void scep_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "rules", 60, setup, teardown);

	ts_add_tests(tc, caps_and_cacert, one_time_challenge_enrols_once,
	        retry_is_idempotent_and_txid_bound_to_key,
	        refuses_wrong_expired_and_missing_challenges, static_challenge,
	        challenge_as_signed_attribute, apple_throwaway_signer_enrols,
	        rfc_shaped_signer_enrols, reply_signed_under_the_certificate_encrypted_to,
	        signer_must_be_self_signed, signer_match_is_opt_in, csr_signature_must_verify,
	        small_keys_and_sha1_refused, renewal_by_existing_certificate,
	        renewal_refused_when_expired_or_foreign, manual_approval_then_certpoll,
	        manual_renewal_rechecked_at_issue, manual_renewal_issued_when_grounds_hold,
	        approval_of_revoked_renewal_refused, md5_request_answered_bad_alg,
	        bad_signature_answered_bad_message_check, garbage_is_refused_without_issuing,
	        ca_rollover_keeps_devices, client_ca_bundle_follows_rollover,
	        verifiers_load_no_ca_key, ca_changes_are_announced, concurrent_use_of_one_challenge,
	        real_mdmclient_refused_only_for_its_recipient);
	tc = ts_tcase(s, "captures", 60, capture_setup, teardown);
	ts_add_tests(tc, real_macos_pkcsreq_reaches_the_challenge_rule);
}
