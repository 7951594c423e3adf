/*
 * applesim: the SCEP client of an Apple device (RFC 8894), shaped like
 * the real captures in ../shared/vectors:
 *
 *   scep/testdata/PKCSReq.der (macOS): signer "CN=MDM SCEP SIGNER, C=US",
 *     its own 2048-bit key, serial 1, one year, keyUsage digitalSignature
 *     and extendedKeyUsage clientAuth, both critical, no other
 *     extension; signed attributes messageType, contentType, senderNonce
 *     (8 bytes), signingTime, messageDigest, transactionID (40 hex digits:
 *     the SHA-1 of the CSR's RSAPublicKey); signatureAlgorithm
 *     rsaEncryption; the content a pkcs7-data holding the EnvelopedData
 *     (version 0, key transport to the CA by issuer and serial); the CSR
 *     version field 2, keyUsage requested as a critical extension.
 *   commandment/testdata/mdmclient-PKIOperation.der (macOS mdmclient):
 *     the challengePassword also as a signed attribute, SHA-512.
 *   iOS: the signer is CN=<random UUID>, a new one every request.
 *
 * The digest and cipher are the strongest GetCACaps offers.
 */
#include "sim.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SCEP_NONCE_LEN    8  /* what macOS sends */
#define SCEP_POLL_TRIES   10 /* CertPoll rounds while PENDING */
#define SCEP_POLL_SECONDS 2

enum { MSG_CERTREP = 3, MSG_RENEWALREQ = 17, MSG_PKCSREQ = 19, MSG_CERTPOLL = 20 };

static const char *const fail_names[] = {
        "badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"};

struct scep_ctx {
	const struct sim_scep_opts *o;
	int caps_post, caps_aes, caps_des3, caps_sha512, caps_sha256, caps_sha1, caps_renewal;
	X509 *ca;                 /* the CA (borrowed from from_ca) */
	X509 *recipient;          /* the RA when there is one, else the CA (borrowed) */
	X509 *reply_signer;       /* who must sign the CertRep: the RA, else the CA (borrowed) */
	STACK_OF(X509) * from_ca; /* every certificate GetCACert gave */
	const EVP_MD *md;
	const EVP_CIPHER *cipher;
	char txid[64];
	uint8_t nonce[SCEP_NONCE_LEN];
	/* Who signs the pkiMessage and opens the CertRep. */
	X509 *signer;
	EVP_PKEY *signer_key;
	EVP_PKEY *key; /* the CSR's */
	X509_REQ *csr;
	struct sim_buf csr_der;
};

/* ---------------------------------------------------------------- HTTP */

static struct sim_buf scep_get(
        const char *url, const char *op, const char *msg, char *ctype, size_t ctcap)
{
	struct sim_http h = {0};
	struct sim_buf out;
	char *full, *esc = msg ? sim_url_escape(msg) : NULL;
	size_t n = strlen(url) + strlen(op) + (esc ? strlen(esc) : 0) + 64;

	full = sim_xmalloc(n);
	snprintf(full, n, "%s?operation=%s%s%s", url, op, esc ? "&message=" : "", esc ? esc : "");
	h.method = "GET";
	h.url = full;
	sim_http_do(&h);
	sim_log_exchange(op, full, strlen(full), h.resp.p, h.resp.len);
	if (h.status != 200)
		sim_fail("SCEP %s: HTTP %ld: %.200s", op, h.status, (const char *)h.resp.p);
	snprintf(ctype, ctcap, "%s", h.resp_type);
	out = h.resp;
	free(full);
	free(esc);
	return out;
}

static void scep_caps(struct scep_ctx *c)
{
	char ctype[128];
	struct sim_buf b = scep_get(c->o->url, "GetCACaps", NULL, ctype, sizeof(ctype));
	char *line, *save = NULL;

	for (line = strtok_r((char *)b.p, "\r\n", &save); line != NULL;
	        line = strtok_r(NULL, "\r\n", &save)) {
		if (strcasecmp(line, "POSTPKIOperation") == 0)
			c->caps_post = 1;
		else if (strcasecmp(line, "AES") == 0)
			c->caps_aes = 1;
		else if (strcasecmp(line, "DES3") == 0)
			c->caps_des3 = 1;
		else if (strcasecmp(line, "SHA-512") == 0)
			c->caps_sha512 = 1;
		else if (strcasecmp(line, "SHA-256") == 0)
			c->caps_sha256 = 1;
		else if (strcasecmp(line, "SHA-1") == 0)
			c->caps_sha1 = 1;
		else if (strcasecmp(line, "Renewal") == 0)
			c->caps_renewal = 1;
		else if (strcasecmp(line, "SCEPStandard") == 0)
			c->caps_aes = c->caps_sha256 = c->caps_post = 1; /* RFC 8894 3.5.2 */
	}
	sim_buf_free(&b);
	/* The strongest offered (RFC 8894 3.5.2), as Apple's client chooses. */
	c->md = c->caps_sha512 ? EVP_sha512() : c->caps_sha256 ? EVP_sha256() : EVP_sha1();
	c->cipher = c->caps_aes ? EVP_aes_128_cbc() : EVP_des_ede3_cbc();
	if (c->o->digest != NULL && (c->md = EVP_get_digestbyname(c->o->digest)) == NULL)
		sim_fail("unknown digest %s", c->o->digest);
	sim_say("scep: GetCACaps: %s, %s, %s", c->caps_post ? "POST" : "GET",
	        EVP_MD_get0_name(c->md), EVP_CIPHER_get0_name(c->cipher));
}

static int scep_self_signed(X509 *x)
{
	return X509_check_issued(x, x) == X509_V_OK;
}

/* The certificate of the set that issued x (name, key identifiers, signature), or NULL. */
static X509 *scep_issuer_in(STACK_OF(X509) * set, X509 *x)
{
	for (int i = 0; i < sk_X509_num(set); i++) {
		X509 *y = sk_X509_value(set, i);
		EVP_PKEY *k = X509_get0_pubkey(y);
		if (y != x && X509_check_issued(y, x) == X509_V_OK && k != NULL &&
		        X509_verify(x, k) == 1)
			return y;
	}
	ERR_clear_error();
	return NULL;
}

/* keyUsage bits; none when the extension is absent (an RA must say what it does). */
static uint32_t scep_key_usage(X509 *x)
{
	uint32_t ku = X509_get_key_usage(x);

	return ku == UINT32_MAX ? 0 : ku;
}

/*
 * The CA and the RA an Apple device takes from a CA/RA GetCACert, by the
 * rules of Apple's SCEP client (Security framework,
 * SecSCEPValidateCACertMessage and SecSCEPVerifyReply): each certificate
 * that chains to a self-signed one of the set is a candidate RA, sorted
 * by its keyUsage: digitalSignature and keyEncipherment (one RA for both),
 * keyEncipherment only (encrypts), digitalSignature only (signs).  There
 * must be a CA and either an RA for both or a signing and an encrypting
 * one (the pair is preferred); anything else is "an invalid RA response"
 * and the device gives up.  Requests are enveloped to the RA that
 * encrypts, and the CertRep must be signed by exactly the RA that signs.
 */
static void scep_ca_ra(struct scep_ctx *c)
{
	X509 *both = NULL, *enc = NULL, *sign = NULL;

	for (int i = 0; i < sk_X509_num(c->from_ca); i++) {
		X509 *leaf = sk_X509_value(c->from_ca, i), *top = leaf, *up;
		int depth = 0;
		uint32_t ku;

		while (!scep_self_signed(top) && (up = scep_issuer_in(c->from_ca, top)) != NULL &&
		        depth++ < sk_X509_num(c->from_ca))
			top = up;
		if (top == leaf || !scep_self_signed(top))
			continue; /* the CA itself, or no chain */
		if (c->ca == NULL)
			c->ca = top;
		else if (X509_cmp(c->ca, top) != 0)
			sim_fail("GetCACert: RA certificates under two different CAs");
		ku = scep_key_usage(leaf);
		if ((ku & KU_DIGITAL_SIGNATURE) && (ku & KU_KEY_ENCIPHERMENT)) {
			if (both == NULL)
				both = leaf;
		} else if (ku & KU_KEY_ENCIPHERMENT) {
			if (enc == NULL)
				enc = leaf;
		} else if (ku & KU_DIGITAL_SIGNATURE) {
			if (sign == NULL)
				sign = leaf;
		}
	}
	if (c->ca == NULL || (both == NULL && (enc == NULL || sign == NULL)))
		sim_fail("GetCACert: an invalid RA response for an Apple device: %d certificates, "
		         "%s CA, RA for signing and encryption %s, for encryption only %s, for "
		         "signing only %s (SecSCEPValidateCACertMessage wants a CA and an RA with "
		         "digitalSignature and keyEncipherment, or one of each)",
		        sk_X509_num(c->from_ca), c->ca ? "a" : "no", both ? "yes" : "no",
		        enc ? "yes" : "no", sign ? "yes" : "no");
	if (enc != NULL && sign != NULL) {
		c->recipient = enc;
		c->reply_signer = sign;
	} else {
		c->recipient = both;
		c->reply_signer = both;
	}
}

/*
 * The profile's CAFingerprint against the CA GetCACert gave, as Apple's
 * client does (SecSCEPValidateCACertMessage): MD5 or SHA-1 of the CA's
 * DER, chosen by the fingerprint's length; any other length, or a
 * mismatch, and the device gives up.
 */
static void scep_ca_fingerprint(struct scep_ctx *c)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	const EVP_MD *alg;

	if (c->o->ca_fingerprint_len == 0)
		return;
	if (c->o->ca_fingerprint_len == 16)
		alg = EVP_md5();
	else if (c->o->ca_fingerprint_len == 20)
		alg = EVP_sha1();
	else
		sim_fail("profile: CAFingerprint of %zu bytes: a device takes 16 (MD5) or 20 "
		         "(SHA-1) only",
		        c->o->ca_fingerprint_len);
	if (!X509_digest(c->ca, alg, md, &n))
		sim_ossl_fail("X509_digest (CAFingerprint)");
	if (n != c->o->ca_fingerprint_len || memcmp(md, c->o->ca_fingerprint, n) != 0)
		sim_fail("GetCACert: the CA is not the one the profile's CAFingerprint names: a "
		         "device refuses it");
	sim_say("scep: the CA matches the profile's CAFingerprint (%s)", n == 16 ? "MD5" : "SHA-1");
}

/* GetCACert: one DER certificate, or the CA and RA as a degenerate PKCS#7. */
static void scep_ca_certs(struct scep_ctx *c)
{
	char ctype[128];
	struct sim_buf b = scep_get(c->o->url, "GetCACert", c->o->ca_ident, ctype, sizeof(ctype));
	const unsigned char *p = b.p;
	FILE *f;

	c->from_ca = sk_X509_new_null();
	if (strcasecmp(ctype, "application/x-x509-ca-cert") == 0) {
		if ((c->ca = d2i_X509(NULL, &p, (long)b.len)) == NULL || p != b.p + b.len)
			sim_fail(
			        "GetCACert: application/x-x509-ca-cert is not one DER certificate");
		sk_X509_push(c->from_ca, c->ca);
		c->recipient = c->ca;
		c->reply_signer = c->ca;
	} else if (strcasecmp(ctype, "application/x-x509-ca-ra-cert") == 0) {
		CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)b.len);
		STACK_OF(X509) *all = cms ? CMS_get1_certs(cms) : NULL;

		if (all == NULL || sk_X509_num(all) < 2)
			sim_fail("GetCACert: x-x509-ca-ra-cert is not a PKCS#7 of the CA and RA");
		for (int i = 0; i < sk_X509_num(all); i++) {
			X509 *x = sk_X509_value(all, i);
			X509_up_ref(x);
			sk_X509_push(c->from_ca, x);
		}
		sk_X509_pop_free(all, X509_free);
		scep_ca_ra(c);
		CMS_ContentInfo_free(cms);
	} else {
		sim_fail("GetCACert: Content-Type \"%s\" (RFC 8894 4.2.1)", ctype);
	}
	sim_buf_free(&b);
	scep_ca_fingerprint(c);
	if ((f = fopen(sim_path("ca.pem"), "w")) == NULL)
		sim_fail("cannot write %s", sim_path("ca.pem"));
	PEM_write_X509(f, c->ca);
	if (c->recipient != c->ca)
		PEM_write_X509(f, c->recipient);
	fclose(f);
}

/* ---------------------------------------------------------------- keys */

static EVP_PKEY *scep_rsa(int bits)
{
	EVP_PKEY *k = EVP_RSA_gen((unsigned)bits);

	if (k == NULL)
		sim_ossl_fail("EVP_RSA_gen");
	return k;
}

static void scep_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL || !X509_add_ext(x, e, -1))
		sim_ossl_fail("X509V3_EXT_conf_nid");
	X509_EXTENSION_free(e);
}

/* The throw-away self-signed signer of a first request, as captured. */
static void scep_throwaway(struct scep_ctx *c)
{
	X509_NAME *n = X509_NAME_new();
	char uuid[37];
	X509 *x = X509_new();

	c->signer_key = scep_rsa(2048);
	if (c->o->mac) {
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
		        (const unsigned char *)"MDM SCEP SIGNER", -1, -1, 0);
		X509_NAME_add_entry_by_txt(
		        n, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0);
	} else {
		sim_uuid(uuid);
		X509_NAME_add_entry_by_txt(
		        n, "CN", MBSTRING_UTF8, (const unsigned char *)uuid, -1, -1, 0);
	}
	if (x == NULL || !X509_set_version(x, 2) ||
	        !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) || !X509_set_subject_name(x, n) ||
	        !X509_set_issuer_name(x, n) || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	        X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) == NULL ||
	        !X509_set_pubkey(x, c->signer_key))
		sim_ossl_fail("building the throw-away signer certificate");
	scep_add_ext(x, NID_key_usage, "critical,digitalSignature");
	scep_add_ext(x, NID_ext_key_usage, "critical,clientAuth");
	if (X509_sign(x, c->signer_key, EVP_sha256()) <= 0)
		sim_ossl_fail("X509_sign");
	X509_NAME_free(n);
	c->signer = x;
	sim_save_cert(sim_path("scep-signer.pem"), x);
	sim_save_key(sim_path("scep-signer.key"), c->signer_key);
}

/* ---------------------------------------------------------------- CSR */

/*
 * The CertificationRequest with version field 2, as Apple's is: built
 * with OpenSSL at version 0, then its CertificationRequestInfo re-encoded
 * with the version Apple writes and signed here (OpenSSL 3 refuses
 * X509_REQ_set_version(2) in newer releases, and this way one path serves
 * every release).
 */
static void scep_csr_sign(struct scep_ctx *c)
{
	unsigned char *tbs = NULL, *sig = NULL, *alg = NULL;
	struct sim_buf body = {NULL, 0}, out = {NULL, 0};
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	X509_ALGOR *a = X509_ALGOR_new();
	size_t siglen = 0, hl;
	int tbslen, alglen;
	uint8_t *bits;

	if ((tbslen = i2d_re_X509_REQ_tbs(c->csr, &tbs)) <= 0)
		sim_ossl_fail("i2d_re_X509_REQ_tbs");
	/* SEQUENCE header, then INTEGER 0 (02 01 00): the version. */
	hl = (tbs[1] & 0x80) ? 2 + (size_t)(tbs[1] & 0x7f) : 2;
	if ((size_t)tbslen < hl + 3 || tbs[0] != 0x30 || tbs[hl] != 0x02 || tbs[hl + 1] != 0x01 ||
	        tbs[hl + 2] != 0x00)
		sim_fail("unexpected CertificationRequestInfo encoding");
	tbs[hl + 2] = 0x02;
	if (md == NULL ||
	        EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, c->key, NULL) != 1 ||
	        EVP_DigestSign(md, NULL, &siglen, tbs, (size_t)tbslen) != 1)
		sim_ossl_fail("EVP_DigestSignInit_ex");
	sig = sim_xmalloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, tbs, (size_t)tbslen) != 1)
		sim_ossl_fail("EVP_DigestSign");
	if (c->o->tamper_csr)
		sig[siglen / 2] ^= 0x01; /* no longer the key holder's signature */
	if (a == NULL ||
	        !X509_ALGOR_set0(a, OBJ_nid2obj(NID_sha256WithRSAEncryption), V_ASN1_NULL, NULL) ||
	        (alglen = i2d_X509_ALGOR(a, &alg)) <= 0)
		sim_ossl_fail("i2d_X509_ALGOR");
	bits = sim_xmalloc(siglen + 1);
	bits[0] = 0; /* no unused bits */
	memcpy(bits + 1, sig, siglen);
	sim_buf_append(&body, tbs, (size_t)tbslen);
	sim_buf_append(&body, alg, (size_t)alglen);
	sim_der_tlv(&body, 0x03, bits, siglen + 1);
	sim_der_tlv(&out, 0x30, body.p, body.len);
	c->csr_der = out;
	sim_buf_free(&body);
	free(bits);
	free(sig);
	OPENSSL_free(tbs);
	OPENSSL_free(alg);
	X509_ALGOR_free(a);
	EVP_MD_CTX_free(md);
}

/* Key Usage of the SCEP payload (1 signing, 4 encryption); captured default: signing. */
static void scep_csr_key_usage(struct scep_ctx *c)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *e;
	char ku[80] = "critical";

	if ((c->o->key_usage & 1) || (c->o->key_usage & 5) == 0)
		strcat(ku, ",digitalSignature");
	if (c->o->key_usage & 4)
		strcat(ku, ",keyEncipherment");
	if ((e = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage, ku)) == NULL ||
	        !sk_X509_EXTENSION_push(exts, e) || !X509_REQ_add_extensions(c->csr, exts))
		sim_ossl_fail("X509_REQ_add_extensions");
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

static int scep_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		            (*s >= '0' && *s <= '9') || strchr(" '()+,-./:=?", *s) != NULL))
			return 0;
	return 1;
}

static void scep_csr(struct scep_ctx *c, X509_NAME *subject)
{
	const unsigned char *p;
	unsigned char *pub = NULL;
	unsigned char sha1[20];
	X509_REQ *check;
	int publen;

	c->key = scep_rsa(c->o->keysize);
	if ((c->csr = X509_REQ_new()) == NULL || !X509_REQ_set_subject_name(c->csr, subject) ||
	        !X509_REQ_set_pubkey(c->csr, c->key))
		sim_ossl_fail("X509_REQ_new");
	if (c->o->challenge != NULL) {
		const char *ch = c->o->challenge;
		int type = scep_printable(ch) ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING;

		if (!X509_REQ_add1_attr_by_NID(c->csr, NID_pkcs9_challengePassword, type,
		            (const unsigned char *)ch, (int)strlen(ch)))
			sim_ossl_fail("X509_REQ_add1_attr_by_NID(challengePassword)");
	}
	scep_csr_key_usage(c);
	scep_csr_sign(c);
	/* What we send must parse as a CSR, version 2, and (untampered) verify. */
	p = c->csr_der.p;
	if ((check = d2i_X509_REQ(NULL, &p, (long)c->csr_der.len)) == NULL ||
	        X509_REQ_get_version(check) != 2 ||
	        (!c->o->tamper_csr && X509_REQ_verify(check, c->key) != 1))
		sim_ossl_fail("the CSR built does not read back");
	X509_REQ_free(check);
	sim_file_write(sim_path("csr.der"), c->csr_der.p, c->csr_der.len);
	/* Apple's transactionID: hex SHA-1 of the CSR's RSAPublicKey. */
	if ((publen = i2d_PublicKey(c->key, &pub)) <= 0)
		sim_ossl_fail("i2d_PublicKey");
	SHA1(pub, (size_t)publen, sha1);
	sim_hex(sha1, sizeof(sha1), 1, c->txid);
	OPENSSL_free(pub);
	if (c->o->transaction_id != NULL)
		snprintf(c->txid, sizeof(c->txid), "%s", c->o->transaction_id);
}

/* ---------------------------------------------------------------- pkiMessage */

static ASN1_OBJECT *scep_oid(const char *last)
{
	char txt[64];
	ASN1_OBJECT *o;

	snprintf(txt, sizeof(txt), "2.16.840.1.113733.1.9.%s", last);
	if ((o = OBJ_txt2obj(txt, 1)) == NULL)
		sim_ossl_fail("OBJ_txt2obj");
	return o;
}

static void scep_attr(CMS_SignerInfo *si, const char *oid, int type, const void *p, int len)
{
	ASN1_OBJECT *o = scep_oid(oid);

	if (!CMS_signed_add1_attr_by_OBJ(si, o, type, p, len))
		sim_ossl_fail("CMS_signed_add1_attr_by_OBJ");
	ASN1_OBJECT_free(o);
}

/* EnvelopedData of content to the CA (or RA), DER. */
static struct sim_buf scep_envelope(struct scep_ctx *c, const struct sim_buf *content)
{
	STACK_OF(X509) *to = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf(content->p, (int)content->len);
	CMS_ContentInfo *env;
	struct sim_buf out = {NULL, 0};
	unsigned char *der = NULL;
	int n;

	sk_X509_push(to, c->recipient);
	if ((env = CMS_encrypt(to, in, c->cipher, CMS_BINARY)) == NULL)
		sim_ossl_fail("CMS_encrypt");
	if ((n = i2d_CMS_ContentInfo(env, &der)) <= 0)
		sim_ossl_fail("i2d_CMS_ContentInfo");
	sim_buf_append(&out, der, (size_t)n);
	OPENSSL_free(der);
	CMS_ContentInfo_free(env);
	BIO_free(in);
	sk_X509_free(to);
	return out;
}

static struct sim_buf scep_pki_message(struct scep_ctx *c, int type, const struct sim_buf *env)
{
	CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
	BIO *in = BIO_new_mem_buf(env->p, (int)env->len);
	struct sim_buf out;
	unsigned char *der = NULL;
	CMS_SignerInfo *si;
	X509_ALGOR *digalg = NULL;
	char t[8];
	int n;

	if (cms == NULL ||
	        (si = CMS_add1_signer(cms, c->signer, c->signer_key, c->md,
	                 CMS_PARTIAL | CMS_BINARY | CMS_NOSMIMECAP)) == NULL)
		sim_ossl_fail("CMS_add1_signer");
	/* digestAlgorithm with its NULL parameter, as in the captures. */
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &digalg, NULL);
	if (!X509_ALGOR_set0(digalg, OBJ_nid2obj(EVP_MD_get_type(c->md)), V_ASN1_NULL, NULL))
		sim_ossl_fail("X509_ALGOR_set0 (digestAlgorithm)");
	snprintf(t, sizeof(t), "%d", type);
	scep_attr(si, "2", V_ASN1_PRINTABLESTRING, t, (int)strlen(t));
	scep_attr(si, "5", V_ASN1_OCTET_STRING, c->nonce, SCEP_NONCE_LEN);
	scep_attr(si, "7", V_ASN1_PRINTABLESTRING, c->txid, (int)strlen(c->txid));
	/* macOS mdmclient: the challenge is a signed attribute too. */
	if (c->o->mac && c->o->challenge != NULL && type == MSG_PKCSREQ &&
	        !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_challengePassword,
	                V_ASN1_PRINTABLESTRING, c->o->challenge, (int)strlen(c->o->challenge)))
		sim_ossl_fail("CMS_signed_add1_attr_by_NID(challengePassword)");
	if (!CMS_final(cms, in, NULL, CMS_BINARY))
		sim_ossl_fail("CMS_final");
	if ((n = i2d_CMS_ContentInfo(cms, &der)) <= 0)
		sim_ossl_fail("i2d_CMS_ContentInfo");
	out = sim_signed_data_apple(der, (size_t)n, c->md, 0);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return out;
}

static struct sim_buf scep_send(struct scep_ctx *c, const struct sim_buf *msg, const char *what)
{
	struct sim_http h = {0};
	char *url = NULL, *b64 = NULL, *q = NULL;
	size_t n;

	if (c->caps_post && !c->o->force_get) {
		n = strlen(c->o->url) + 32;
		url = sim_xmalloc(n);
		snprintf(url, n, "%s?operation=PKIOperation", c->o->url);
		h.method = "POST";
		h.body = msg->p;
		h.body_len = msg->len;
		h.content_type = "application/x-pki-message";
	} else {
		/* GET: base64 in the query; iOS escapes it, macOS sends '+' and '/' as is. */
		b64 = sim_b64(msg->p, msg->len);
		q = c->o->url_escape ? sim_url_escape(b64) : sim_xstrdup(b64);
		n = strlen(c->o->url) + strlen(q) + 48;
		url = sim_xmalloc(n);
		snprintf(url, n, "%s?operation=PKIOperation&message=%s", c->o->url, q);
		h.method = "GET";
	}
	h.url = url;
	sim_http_do(&h);
	sim_log_exchange(what, msg->p, msg->len, h.resp.p, h.resp.len);
	if (h.status != 200)
		sim_fail("SCEP %s (%s): HTTP %ld: %.200s", what, h.method, h.status,
		        (const char *)h.resp.p);
	if (strcasecmp(h.resp_type, "application/x-pki-message") != 0)
		sim_fail("SCEP %s: Content-Type \"%s\", want application/x-pki-message", what,
		        h.resp_type);
	sim_say("scep: %s sent by %s (%zu bytes)", what, h.method, msg->len);
	free(url);
	free(b64);
	free(q);
	return h.resp;
}

/* ---------------------------------------------------------------- CertRep */

struct certrep {
	int status; /* 0 SUCCESS, 2 FAILURE, 3 PENDING */
	int fail;   /* failInfo, -1 none */
	struct sim_buf content;
};

static int scep_attr_get(CMS_SignerInfo *si, const char *oid, int type, struct sim_buf *out)
{
	ASN1_OBJECT *o = scep_oid(oid);
	ASN1_STRING *s = CMS_signed_get0_data_by_OBJ(si, o, -3, type);

	ASN1_OBJECT_free(o);
	out->p = NULL;
	out->len = 0;
	if (s == NULL)
		return 0;
	sim_buf_append(out, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	return 1;
}

static int scep_attr_int(CMS_SignerInfo *si, const char *oid, const char *name)
{
	struct sim_buf b;
	char *end;
	long v;

	if (!scep_attr_get(si, oid, V_ASN1_PRINTABLESTRING, &b))
		sim_fail("CertRep: no %s PrintableString (RFC 8894 3.2.1)", name);
	v = strtol((char *)b.p, &end, 10);
	if (b.len == 0 || *end != '\0')
		sim_fail("CertRep: %s \"%s\" is not a number", name, (char *)b.p);
	sim_buf_free(&b);
	return (int)v;
}

/* Verifies the CertRep to the CA/RA and checks that it answers our request. */
static struct certrep scep_certrep(struct scep_ctx *c, const struct sim_buf *resp)
{
	const unsigned char *p = resp->p;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)resp->len);
	X509_STORE *store = X509_STORE_new();
	BIO *out = BIO_new(BIO_s_mem()), *empty = NULL;
	STACK_OF(CMS_SignerInfo) * sis;
	STACK_OF(X509) * signers;
	ASN1_OCTET_STRING **pos;
	CMS_SignerInfo *si;
	struct certrep r = {2, -1, {NULL, 0}};
	struct sim_buf b;
	char *data;
	long n;
	int ok = 0;

	if (cms == NULL || p != resp->p + resp->len ||
	        OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
		sim_fail("CertRep is not one CMS SignedData");
	X509_STORE_add_cert(store, c->ca);
	X509_STORE_set_purpose(store, X509_PURPOSE_ANY);
	/* FAILURE and PENDING carry no envelope: the content may be absent. */
	pos = CMS_get0_content(cms);
	if (pos == NULL || *pos == NULL)
		empty = BIO_new_mem_buf("", 0);
	if (!CMS_verify(cms, c->from_ca, store, empty, out, CMS_BINARY))
		sim_ossl_fail("CMS_verify of the CertRep (signed by the CA or RA?)");
	/* SecSCEPVerifyReply: "response should be signed by ra", that very certificate. */
	signers = CMS_get0_signers(cms);
	ok = sk_X509_num(signers) == 1 && X509_cmp(sk_X509_value(signers, 0), c->reply_signer) == 0;
	if (!ok)
		sim_fail("CertRep is not signed by the %s of GetCACert (Apple requires exactly it)",
		        c->reply_signer == c->ca ? "CA" : "RA that signs");
	sk_X509_free(signers);
	sis = CMS_get0_SignerInfos(cms);
	si = sk_CMS_SignerInfo_value(sis, 0);
	if (scep_attr_int(si, "2", "messageType") != MSG_CERTREP)
		sim_fail("CertRep: messageType is not 3");
	if (!scep_attr_get(si, "7", V_ASN1_PRINTABLESTRING, &b) || strcmp((char *)b.p, c->txid))
		sim_fail("CertRep: transactionID \"%s\" is not ours (%s)", b.p ? (char *)b.p : "",
		        c->txid);
	sim_buf_free(&b);
	if (!scep_attr_get(si, "6", V_ASN1_OCTET_STRING, &b) || b.len != SCEP_NONCE_LEN ||
	        memcmp(b.p, c->nonce, SCEP_NONCE_LEN) != 0)
		sim_fail("CertRep: recipientNonce is not our senderNonce (RFC 8894 3.2.1.5)");
	sim_buf_free(&b);
	if (!scep_attr_get(si, "5", V_ASN1_OCTET_STRING, &b) || b.len == 0)
		sim_fail("CertRep: no senderNonce (RFC 8894 3.2.1.5)");
	sim_buf_free(&b);
	r.status = scep_attr_int(si, "3", "pkiStatus");
	if (r.status == 2)
		r.fail = scep_attr_int(si, "4", "failInfo");
	else if (r.status != 0 && r.status != 3)
		sim_fail("CertRep: pkiStatus %d", r.status);
	n = BIO_get_mem_data(out, &data);
	if (n > 0)
		sim_buf_append(&r.content, data, (size_t)n);
	BIO_free(out);
	BIO_free(empty);
	X509_STORE_free(store);
	CMS_ContentInfo_free(cms);
	return r;
}

/* Opens the CertRep's envelope with the signer's key: the issued certificate. */
static X509 *scep_issued(struct scep_ctx *c, const struct sim_buf *content)
{
	const unsigned char *p = content->p;
	CMS_ContentInfo *env = d2i_CMS_ContentInfo(NULL, &p, (long)content->len), *certs;
	BIO *out = BIO_new(BIO_s_mem());
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) * all;
	X509 *mine = NULL;
	char *data;
	long n;

	if (env == NULL || OBJ_obj2nid(CMS_get0_type(env)) != NID_pkcs7_enveloped)
		sim_fail("CertRep SUCCESS: the content is not an EnvelopedData");
	/* Only the requester's signer key opens it (RFC 8894 3.3.2). */
	if (!CMS_decrypt(env, c->signer_key, c->signer, NULL, out, CMS_BINARY))
		sim_ossl_fail("CMS_decrypt of the CertRep envelope with the signer's key");
	n = BIO_get_mem_data(out, &data);
	p = (const unsigned char *)data;
	if ((certs = d2i_CMS_ContentInfo(NULL, &p, n)) == NULL ||
	        (all = CMS_get1_certs(certs)) == NULL)
		sim_fail(
		        "CertRep SUCCESS: the envelope holds no degenerate PKCS#7 of certificates");
	for (int i = 0; i < sk_X509_num(all); i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(all, i)), c->key) == 1)
			mine = sk_X509_value(all, i);
	if (mine == NULL)
		sim_fail("CertRep SUCCESS: no certificate holds the CSR's key");
	X509_up_ref(mine);
	X509_STORE_add_cert(store, c->ca);
	if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, mine, all) ||
	        X509_verify_cert(ctx) != 1)
		sim_fail("the issued certificate does not chain to the CA: %s",
		        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	if (X509_NAME_cmp(X509_get_subject_name(mine), X509_REQ_get_subject_name(c->csr)) != 0)
		sim_fail("the issued certificate's subject is not the CSR's");
	if ((X509_get_extended_key_usage(mine) & XKU_SSL_CLIENT) == 0)
		sim_fail("the issued certificate is not for TLS client authentication");
	sk_X509_pop_free(all, X509_free);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	CMS_ContentInfo_free(certs);
	CMS_ContentInfo_free(env);
	BIO_free(out);
	return mine;
}

/* CertPoll's content: IssuerAndSubject (RFC 8894 3.3.3). */
static struct sim_buf scep_issuer_and_subject(struct scep_ctx *c)
{
	unsigned char *iss = NULL, *sub = NULL;
	struct sim_buf body = {NULL, 0}, out = {NULL, 0};
	int il = i2d_X509_NAME(X509_get_subject_name(c->ca), &iss);
	int sl = i2d_X509_NAME(X509_REQ_get_subject_name(c->csr), &sub);

	if (il <= 0 || sl <= 0)
		sim_ossl_fail("i2d_X509_NAME");
	sim_buf_append(&body, iss, (size_t)il);
	sim_buf_append(&body, sub, (size_t)sl);
	sim_der_tlv(&out, 0x30, body.p, body.len);
	sim_buf_free(&body);
	OPENSSL_free(iss);
	OPENSSL_free(sub);
	return out;
}

static const char *scep_fail_name(int f)
{
	return f >= 0 && f < 5 ? fail_names[f] : "unknown";
}

int sim_scep_enroll(const struct sim_scep_opts *o, X509 **cert, EVP_PKEY **key)
{
	struct scep_ctx c;
	struct sim_buf env, msg, resp;
	struct certrep r;
	int type = o->renew_cert != NULL ? MSG_RENEWALREQ : MSG_PKCSREQ;
	const char *what = type == MSG_PKCSREQ ? "PKCSReq" : "RenewalReq";
	X509_NAME *subject;
	int refused = 0;

	memset(&c, 0, sizeof(c));
	c.o = o;
	*cert = NULL;
	*key = NULL;
	scep_caps(&c);
	scep_ca_certs(&c);
	if (type == MSG_RENEWALREQ) {
		if (!c.caps_renewal)
			sim_fail("GetCACaps does not offer Renewal");
		/* Signed by the identity it renews; the subject stays. */
		c.signer = o->renew_cert;
		c.signer_key = o->renew_key;
		subject = X509_get_subject_name(o->renew_cert);
	} else {
		scep_throwaway(&c);
		subject = o->subject;
	}
	scep_csr(&c, subject);
	sim_random(c.nonce, sizeof(c.nonce));
	env = scep_envelope(&c, &c.csr_der);
	msg = scep_pki_message(&c, type, &env);
	resp = scep_send(&c, &msg, what);
	r = scep_certrep(&c, &resp);
	for (int i = 0; r.status == 3 && i < SCEP_POLL_TRIES; i++) {
		struct sim_buf ias = scep_issuer_and_subject(&c), penv, poll;

		sim_say("scep: PENDING; CertPoll in %d s", SCEP_POLL_SECONDS);
		sleep(SCEP_POLL_SECONDS);
		sim_random(c.nonce, sizeof(c.nonce));
		penv = scep_envelope(&c, &ias);
		poll = scep_pki_message(&c, MSG_CERTPOLL, &penv);
		sim_buf_free(&resp);
		sim_buf_free(&r.content);
		resp = scep_send(&c, &poll, "CertPoll");
		r = scep_certrep(&c, &resp);
		sim_buf_free(&ias);
		sim_buf_free(&penv);
		sim_buf_free(&poll);
	}
	if (r.status == 3)
		sim_fail("%s: still PENDING after %d CertPolls", what, SCEP_POLL_TRIES);
	if (o->expect_failure != NULL) {
		if (r.status != 2)
			sim_fail("%s: a certificate was issued where FAILURE %s was expected", what,
			        o->expect_failure);
		if (strcmp(scep_fail_name(r.fail), o->expect_failure) != 0)
			sim_fail("%s: FAILURE with failInfo %s, want %s", what,
			        scep_fail_name(r.fail), o->expect_failure);
		sim_say("scep: %s refused as expected: FAILURE %s", what, o->expect_failure);
		refused = 1;
	} else {
		if (r.status == 2)
			sim_fail("%s: CertRep FAILURE, failInfo %s", what, scep_fail_name(r.fail));
		*cert = scep_issued(&c, &r.content);
		*key = c.key;
		c.key = NULL;
		/* The transaction that bought the identity (a replay test reuses it). */
		sim_state_set(type == MSG_PKCSREQ ? "scep_txid" : "renewal_txid", c.txid);
		sim_say("scep: %s: SUCCESS, identity issued, transactionID %s", what, c.txid);
	}
	if (type == MSG_PKCSREQ) {
		X509_free(c.signer);
		EVP_PKEY_free(c.signer_key);
	}
	EVP_PKEY_free(c.key);
	X509_REQ_free(c.csr);
	sk_X509_pop_free(c.from_ca, X509_free);
	sim_buf_free(&c.csr_der);
	sim_buf_free(&env);
	sim_buf_free(&msg);
	sim_buf_free(&resp);
	sim_buf_free(&r.content);
	return refused;
}
