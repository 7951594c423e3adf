/*
 * libFuzzer target for the GetCRL / GetCert answer: revocation entries as
 * mdm.certificate rows could hold them (serial text, revocation time,
 * reasonCode, hostile ones included) through x509_crl_entry_ok and
 * x509_crl_build, the CRL (and a certificate, as GetCert answers) into
 * scep_msg_certrep, and the CertRep read back as a client reads it:
 * scep_msg_parse, scep_msg_decrypt with the requester's key, then the
 * degenerate certs-only content by cms_certs_only_parse.  What each step
 * accepts must keep its header's promises:
 *
 *   - x509_crl_entry_ok says 1 exactly when x509_crl_build can encode the
 *     entry (x509.h); a CRL of the entries it accepted (what scep.c's
 *     GetCRL builds) is built, signed by the CA, and lists each of them;
 *   - the CertRep built from it parses as a SUCCESS CertRep with our
 *     transactionID and the request's nonce as recipientNonce, its
 *     envelope decrypts, and the content holds the same CRL and
 *     certificates (cms.h).
 *
 * Inputs are read as a recipe when they start with 'C' (entries) or 'R'
 * (the rest of the input is the CRL handed to scep_msg_certrep, as if a
 * caller passed bytes x509_crl_build never made).  Any other input is a
 * CertRep as a client receives it (scep_msg_parse, decrypted with the
 * requester's key when it is a SUCCESS) and the decrypted certs-only
 * content (cms_certs_only_parse).  A broken promise, a refusal without a
 * rule or an OpenSSL error left queued aborts.
 *
 * The reason names of mdm.certificate rows are mapped to codes in scep.c
 * (static); here the codes themselves are fuzzed, every int8 value.
 *
 * Recipe 'C': byte 1 = digest (bits 0-1), cipher (bits 2-3), whether the
 * requester's certificate rides along as a GetCert answer would (bit 4),
 * recipientNonce length 8 + bits 5-7 + bit 7 (8..16); then up to 64 entries of
 * [serial length (low 6 bits), serial bytes, 8-byte big-endian revocation
 * time, reason as int8].
 *
 * Build settings for scripts/fuzz.sh.
 * fuzz-max-len: 16384
 * fuzz-seed-dirs: apple-Security/OSX/shared_regressions/si-27-cms-parse
 * fuzz-seeds: jscep/src/samples/scep_resp0.der
 * fuzz-seeds: jscep/src/samples/scep_req0.der
 */
#include "cms.h"
#include "log.h"
#include "scep_msg.h"
#include "x509.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#ifndef MDM_SRCDIR
#define MDM_SRCDIR "."
#endif

#define FUZZ_MAX_ENTRIES 64
#define FUZZ_CRL_DAYS    7
#define FUZZ_TXN         "certrep-fuzz-1"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *ca_cert;
static EVP_PKEY *ca_key;
static X509 *client_cert; /* the requester: the CertRep is enveloped to it */
static EVP_PKEY *client_key;
static time_t fuzz_now;

static void fuzz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "certrep_fuzz: %s%s%s\n", what, detail != NULL ? ": " : "",
	        detail != NULL ? detail : "");
	abort();
}

static void check_queue(const char *after)
{
	if (ERR_peek_error() != 0)
		fuzz_fail("OpenSSL error left queued", after);
}

static void *read_pem(const char *name, int key)
{
	char path[512];
	void *v;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/tests/unit/data/cms/%s", MDM_SRCDIR, name);
	if ((fp = fopen(path, "r")) == NULL)
		fuzz_fail("cannot open", path);
	v = key ? (void *)PEM_read_PrivateKey(fp, NULL, NULL, NULL)
	        : (void *)PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (v == NULL)
		fuzz_fail("cannot read", path);
	return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX);
	/* A fixed clock: CRL times and the CA's validity do not drift during a run. */
	fuzz_now = time(NULL);
	if (x509_key_generate_rsa(2048, &ca_key) != MDM_OK ||
	        x509_ca_create(ca_key, "/CN=Fuzz CA/O=Example", 3650, fuzz_now, &ca_cert) != MDM_OK)
		fuzz_fail("CA setup", NULL);
	client_cert = read_pem("client.pem", 0);
	client_key = read_pem("client.key", 1);
	ERR_clear_error();
	return 0;
}

static int64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

/* The CRL inside the decrypted content must be exactly crl (and certs n_certs). */
static void check_content(
        const uint8_t *content, size_t len, const uint8_t *crl, size_t crl_len, size_t n_certs)
{
	const unsigned char *p = content;
	CMS_ContentInfo *cms;
	STACK_OF(X509_CRL) *crls = NULL;
	struct x509_st **certs = NULL;
	unsigned char *der = NULL;
	size_t n = 0;
	int der_len;

	if (cms_certs_only_parse(content, len, &certs, &n) != MDM_OK)
		fuzz_fail("certs-only content of our CertRep refused", NULL);
	check_queue("cms_certs_only_parse (ours)");
	if (n != n_certs || (n == 0) != (certs == NULL))
		fuzz_fail("certs-only content lost or gained certificates", NULL);
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
	free(certs);
	if (crl == NULL)
		return;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL || p != content + len ||
	        (crls = CMS_get1_crls(cms)) == NULL || sk_X509_CRL_num(crls) != 1 ||
	        (der_len = i2d_X509_CRL(sk_X509_CRL_value(crls, 0), &der)) <= 0 ||
	        (size_t)der_len != crl_len || memcmp(der, crl, crl_len) != 0)
		fuzz_fail("the CRL in the CertRep is not the one given", NULL);
	OPENSSL_free(der);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	CMS_ContentInfo_free(cms);
}

/*
 * scep_msg_certrep with crl (may be NULL) and maybe the client certificate;
 * must_build: crl came from x509_crl_build, so the CertRep must be made.
 * Whatever is built must read back as cms.h promises.
 */
static void certrep_roundtrip(const uint8_t *crl, size_t crl_len, unsigned int opts, int must_build)
{
	struct x509_st *certs[1] = {client_cert};
	struct scep_msg_certrep_params p;
	struct scep_msg *m = NULL;
	enum scep_fail_info fail = SCEP_BAD_ALG;
	enum cms_cipher cipher = CMS_CIPHER__MAX;
	uint8_t nonce[SCEP_NONCE_LEN], *rep = NULL, *content = NULL;
	size_t rep_len = 0, content_len = 0;
	char err[256];
	mdm_err e;

	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(opts * 31 + i);
	memset(&p, 0, sizeof(p));
	p.signer = ca_cert;
	p.key = ca_key;
	p.digest = (enum cms_digest)((opts & 3) % CMS_DIGEST__MAX);
	p.transaction_id = FUZZ_TXN;
	p.recipient_nonce = nonce;
	p.recipient_nonce_len = SCEP_NONCE_MIN_LEN + ((opts >> 5) & 7) + ((opts >> 7) & 1);
	p.status = SCEP_SUCCESS;
	p.fail_info = SCEP_FAIL_NONE;
	p.certs = (opts & 0x10) ? certs : NULL;
	p.n_certs = (opts & 0x10) ? 1 : 0;
	p.crl_der = crl;
	p.crl_len = crl_len;
	p.recipient = client_cert;
	p.cipher = (enum cms_cipher)(((opts >> 2) & 3) % CMS_CIPHER_DES);
	if (crl == NULL && p.n_certs == 0)
		return;
	e = scep_msg_certrep(&p, &rep, &rep_len);
	check_queue("scep_msg_certrep");
	if (e != MDM_OK) {
		if (rep != NULL || rep_len != 0)
			fuzz_fail("scep_msg_certrep output on refusal", err_str(e));
		if (must_build)
			fuzz_fail("scep_msg_certrep refused a CRL x509_crl_build made", err_str(e));
		return;
	}
	e = scep_msg_parse(rep, rep_len, &m, &fail, err, sizeof(err));
	check_queue("scep_msg_parse (ours)");
	if (e != MDM_OK)
		fuzz_fail("our own CertRep refused", err);
	if (m->message_type != SCEP_CERTREP || m->pki_status != SCEP_SUCCESS ||
	        strcmp(m->transaction_id, FUZZ_TXN) != 0 || !m->has_recipient_nonce ||
	        m->recipient_nonce_len != p.recipient_nonce_len ||
	        memcmp(m->recipient_nonce, nonce, p.recipient_nonce_len) != 0 ||
	        m->sender_nonce_len != SCEP_NONCE_LEN || m->digest != p.digest ||
	        m->envelope == NULL)
		fuzz_fail("our CertRep reads back different", NULL);
	e = scep_msg_decrypt(m, client_key, client_cert, &content, &content_len, &cipher, &fail);
	check_queue("scep_msg_decrypt (ours)");
	if (e != MDM_OK || cipher != p.cipher)
		fuzz_fail("our CertRep's envelope does not decrypt", err_str(e));
	check_content(content, content_len, crl, crl_len, p.n_certs);
	free(content);
	scep_msg_free(m);
	free(rep);
}

/* Whether CRL entry r is want (serial, revocation time, reasonCode). */
static int entry_is(const X509_REVOKED *r, const struct x509_revoked *want)
{
	BIGNUM *a = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL), *b = NULL;
	ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
	struct tm tm;
	int same;

	same = a != NULL && BN_hex2bn(&b, want->serial_hex) > 0 && BN_cmp(a, b) == 0 &&
	        ASN1_TIME_to_tm(X509_REVOKED_get0_revocationDate(r), &tm) == 1 &&
	        timegm(&tm) == want->revoked_at && (want->reason < 0) == (reason == NULL) &&
	        (reason == NULL || ASN1_ENUMERATED_get(reason) == want->reason);
	ASN1_ENUMERATED_free(reason);
	BN_free(a);
	BN_free(b);
	ERR_clear_error(); /* X509_REVOKED_get_ext_d2i without the extension */
	return same;
}

/* The CRL is signed by the CA and lists exactly want[0..n), in any order. */
static void check_crl(const uint8_t *der, size_t len, const struct x509_revoked *want, size_t n)
{
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
	STACK_OF(X509_REVOKED) * revs;
	int used[FUZZ_MAX_ENTRIES] = {0};

	if (crl == NULL || p != der + len)
		fuzz_fail("x509_crl_build made a CRL that does not parse", NULL);
	if (X509_CRL_verify(crl, ca_key) != 1)
		fuzz_fail("x509_crl_build made a CRL the CA key does not verify", NULL);
	revs = X509_CRL_get_REVOKED(crl);
	if ((size_t)sk_X509_REVOKED_num(revs) != n && !(n == 0 && revs == NULL))
		fuzz_fail("CRL entry count", NULL);
	for (size_t i = 0; i < n; i++) {
		const X509_REVOKED *r = sk_X509_REVOKED_value(revs, (int)i);
		size_t j;

		for (j = 0; j < n; j++)
			if (!used[j] && entry_is(r, &want[j]))
				break;
		if (j == n)
			fuzz_fail("CRL entry not among those given", NULL);
		used[j] = 1;
	}
	X509_CRL_free(crl);
}

static void fuzz_entries(const uint8_t *d, size_t n)
{
	char serials[FUZZ_MAX_ENTRIES][64];
	struct x509_revoked all[FUZZ_MAX_ENTRIES], ok[FUZZ_MAX_ENTRIES];
	size_t n_all = 0, n_ok = 0, crl_len = 0;
	uint8_t *crl = NULL;
	unsigned int opts;
	mdm_err e;

	if (n < 2)
		return;
	opts = d[1];
	d += 2;
	n -= 2;
	while (n >= 1 && n_all < FUZZ_MAX_ENTRIES) {
		size_t sl = d[0] & 63;
		const char *why = (const char *)1;
		int good;

		if (n < 1 + sl + 9)
			break;
		memcpy(serials[n_all], d + 1, sl);
		serials[n_all][sl] = '\0';
		all[n_all].serial_hex = serials[n_all];
		all[n_all].revoked_at = (time_t)be64(d + 1 + sl);
		all[n_all].reason = (int8_t)d[1 + sl + 8];
		d += 1 + sl + 9;
		n -= 1 + sl + 9;
		good = x509_crl_entry_ok(&all[n_all], &why);
		check_queue("x509_crl_entry_ok");
		if (good != 0 && good != 1)
			fuzz_fail("x509_crl_entry_ok result", NULL);
		if (good ? why != NULL : (why == NULL || why[0] == '\0'))
			fuzz_fail("x509_crl_entry_ok reason text", NULL);
		/* One entry alone: the promise is per entry. */
		e = x509_crl_build(
		        ca_cert, ca_key, &all[n_all], 1, fuzz_now, FUZZ_CRL_DAYS, &crl, &crl_len);
		check_queue("x509_crl_build (one entry)");
		if (good && e != MDM_OK)
			fuzz_fail("x509_crl_entry_ok accepted an entry x509_crl_build refuses",
			        err_str(e));
		if (!good && e != MDM_ERR_INVAL)
			fuzz_fail(
			        "x509_crl_build did not refuse (INVAL) an entry x509_crl_entry_ok "
			        "refuses",
			        why);
		if ((e == MDM_OK) != (crl != NULL) || (crl == NULL) != (crl_len == 0))
			fuzz_fail("x509_crl_build outputs", err_str(e));
		free(crl);
		crl = NULL;
		crl_len = 0;
		if (good)
			ok[n_ok++] = all[n_all];
		n_all++;
	}
	/* What GetCRL does: the rows that can be encoded, in one CRL. */
	e = x509_crl_build(ca_cert, ca_key, ok, n_ok, fuzz_now, FUZZ_CRL_DAYS, &crl, &crl_len);
	check_queue("x509_crl_build");
	if (e != MDM_OK)
		fuzz_fail("x509_crl_build refused entries x509_crl_entry_ok accepted", err_str(e));
	check_crl(crl, crl_len, ok, n_ok);
	if (n_ok < n_all) {
		uint8_t *bad = NULL;
		size_t bad_len = 0;

		if (x509_crl_build(ca_cert, ca_key, all, n_all, fuzz_now, FUZZ_CRL_DAYS, &bad,
		            &bad_len) != MDM_ERR_INVAL ||
		        bad != NULL)
			fuzz_fail("x509_crl_build took a list with a refused entry", NULL);
		check_queue("x509_crl_build (refused)");
	}
	certrep_roundtrip(crl, crl_len, opts, 1);
	free(crl);
}

/* A CertRep as a client reads it, and its decrypted content. */
static void fuzz_client(const uint8_t *data, size_t size)
{
	struct scep_msg *m = NULL;
	enum scep_fail_info fail = SCEP_BAD_ALG;
	enum cms_cipher cipher = CMS_CIPHER__MAX;
	struct x509_st **certs = NULL;
	uint8_t *content = NULL;
	size_t content_len = 0, n = 0;
	char err[256];
	mdm_err e;

	e = scep_msg_parse(data, size, &m, &fail, err, sizeof(err));
	check_queue("scep_msg_parse");
	if (e != MDM_OK) {
		if (m != NULL)
			fuzz_fail("message returned on refusal", err);
		if ((e == MDM_ERR_PARSE || e == MDM_ERR_LIMIT) &&
		        (err[0] == '\0' || fail == SCEP_FAIL_NONE))
			fuzz_fail("refusal without a rule or failInfo", err_str(e));
	} else {
		if (m == NULL || err[0] != '\0' || fail != SCEP_FAIL_NONE)
			fuzz_fail("accepted with bad outputs", err);
		if (m->message_type == SCEP_CERTREP && m->pki_status == SCEP_SUCCESS &&
		        m->envelope == NULL)
			fuzz_fail("SUCCESS CertRep without envelope", NULL);
		if (m->envelope != NULL) {
			e = scep_msg_decrypt(
			        m, client_key, client_cert, &content, &content_len, &cipher, &fail);
			check_queue("scep_msg_decrypt");
			if (e == MDM_OK) {
				if (content == NULL || content_len == 0)
					fuzz_fail("decrypt succeeded without content", NULL);
				if (cms_certs_only_parse(content, content_len, &certs, &n) ==
				        MDM_OK) {
					for (size_t i = 0; i < n; i++)
						X509_free(certs[i]);
					free(certs);
					certs = NULL;
				}
				check_queue("cms_certs_only_parse (decrypted)");
				free(content);
			} else if (content != NULL || content_len != 0) {
				fuzz_fail("decrypt refused with outputs", err_str(e));
			}
		}
		scep_msg_free(m);
	}
	/* The same bytes as the decrypted content of a CertRep. */
	n = 0;
	if (cms_certs_only_parse(data, size, &certs, &n) == MDM_OK) {
		if ((n == 0) != (certs == NULL) || n > CMS_MAX_CERTS)
			fuzz_fail("certs-only outputs", NULL);
		for (size_t i = 0; i < n; i++) {
			if (certs[i] == NULL)
				fuzz_fail("certs-only NULL certificate", NULL);
			X509_free(certs[i]);
		}
		free(certs);
	} else if (certs != NULL || n != 0) {
		fuzz_fail("certs-only output on refusal", NULL);
	}
	check_queue("cms_certs_only_parse");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'C') {
		fuzz_entries(data, size);
		return 0;
	}
	if (size > 2 && data[0] == 'R') {
		certrep_roundtrip(data + 2, size - 2, data[1], 0);
		return 0;
	}
	fuzz_client(data, size);
	return 0;
}

/*
 * libFuzzer dictionary: recipe headers, hex serials, times at the edges
 * of what ASN.1 UTCTime / GeneralizedTime can hold, DER CMS types.
 * fuzz-dict: "C\x00\x010A1B2C"
 * fuzz-dict: "R\x10"
 * fuzz-dict: "\x28"
 * fuzz-dict: "\x00\x00\x00\x00\x7f\xff\xff\xff"
 * fuzz-dict: "\x00\x00\x00\x3a\xff\xf4\x41\x7f"
 * fuzz-dict: "\x00\x00\x00\x00\x00\x00\x00\x00"
 * fuzz-dict: "\xff\xff\xff\xff\xff\xff\xff\xff"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03"
 * fuzz-dict: "\x30\x82"
 */
