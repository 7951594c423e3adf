/*
 * libFuzzer target for cms_verify_detached (Mdm-Signature).  The input is
 * the signature; the content is the body the real Apple signature was
 * made over (read at start-up from the shared vectors, MDM_VECTORS or
 * ../shared/vectors, never copied into the tree; empty when absent), and
 * then the input itself.  Every promise of cms.h must hold: MDM_ERR_LIMIT
 * exactly when the input is over CMS_MAX_SIGNATURE, a rule in err for
 * every refusal, the signer returned only on MDM_OK, nothing left on the
 * OpenSSL error queue.
 *
 * Inputs that start with 'S' are a recipe instead: the rest is signed
 * detached (RSA or EC, with or without signed attributes, by byte 1) with
 * keys made at start-up, with cms_sign_detached or OpenSSL directly; that
 * must verify with the signer returned, and must fail with MDM_ERR_AUTH
 * once a byte of the content changes.
 *
 * Build settings for scripts/fuzz.sh.
 * fuzz-max-len: 32832
 * fuzz-seed-dirs: apple-Security/OSX/shared_regressions/si-27-cms-parse
 * fuzz-seeds: nanomdm/cryptoutil/cryptoutil_test.go.extracted/mdmSignatureHeader2.der
 * fuzz-seeds: nanomdm/cryptoutil/cryptoutil_test.go.extracted/mdmSignatureHeader1.der
 */
#include "cms.h"
#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BODY2 "nanomdm/cryptoutil/cryptoutil_test.go.extracted/mdmSignatureBody2.plist"

static uint8_t body[4096];
static size_t body_len;

static X509 *recipe_cert[2];
static EVP_PKEY *recipe_key[2];

static void fuzz_fail(const char *what, const char *detail) __attribute__((noreturn));

static void fuzz_fail(const char *what, const char *detail)
{
	fprintf(stderr, "mdmsig_fuzz: %s%s%s\n", what, detail != NULL ? ": " : "",
	        detail != NULL ? detail : "");
	abort();
}

static void check_queue(const char *after)
{
	if (ERR_peek_error() != 0)
		fuzz_fail("OpenSSL error left queued", after);
}

static void read_body(void)
{
	const char *dir = getenv("MDM_VECTORS");
	char path[4096];
	FILE *fp;

	if (dir == NULL || *dir == '\0')
		dir = "../shared/vectors";
	snprintf(path, sizeof(path), "%s/%s", dir, BODY2);
	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "mdmsig_fuzz: %s absent; the content is empty\n", path);
		return;
	}
	body_len = fread(body, 1, sizeof(body), fp);
	fclose(fp);
}

static void recipe_setup(void)
{
	for (int i = 0; i < 2; i++) {
		X509_NAME *name = X509_NAME_new();

		recipe_key[i] = i == 0 ? EVP_RSA_gen(1024) : EVP_EC_gen("P-256");
		if (recipe_key[i] == NULL || name == NULL || (recipe_cert[i] = X509_new()) == NULL)
			fuzz_fail("recipe setup", "key");
		X509_NAME_add_entry_by_txt(
		        name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
		ASN1_INTEGER_set(X509_get_serialNumber(recipe_cert[i]), 7 + i);
		X509_set_issuer_name(recipe_cert[i], name);
		X509_set_subject_name(recipe_cert[i], name);
		X509_gmtime_adj(X509_getm_notBefore(recipe_cert[i]), 0);
		X509_gmtime_adj(X509_getm_notAfter(recipe_cert[i]), 3600);
		X509_set_pubkey(recipe_cert[i], recipe_key[i]);
		if (!X509_sign(recipe_cert[i], recipe_key[i], EVP_sha256()))
			fuzz_fail("recipe setup", "X509_sign");
		X509_NAME_free(name);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX);
	read_body();
	recipe_setup();
	ERR_clear_error();
	return 0;
}

/* One call and its promises; the result, the signer freed. */
static mdm_err verify(const uint8_t *sig, size_t siglen, const uint8_t *c, size_t clen)
{
	char err[256];
	X509 *signer = (X509 *)err;
	mdm_err e = cms_verify_detached(sig, siglen, c, clen, &signer, err, sizeof(err));

	check_queue("cms_verify_detached");
	if (e == MDM_OK) {
		if (signer == NULL || err[0] != '\0')
			fuzz_fail("accepted with bad outputs", err);
		X509_free(signer);
		return e;
	}
	if (signer != NULL)
		fuzz_fail("signer returned on refusal", err);
	if ((e == MDM_ERR_PARSE || e == MDM_ERR_LIMIT || e == MDM_ERR_AUTH) && err[0] == '\0')
		fuzz_fail("refusal without a rule", err_str(e));
	if (e == MDM_ERR_LIMIT && strncmp(err, "limit: ", 7) != 0)
		fuzz_fail("MDM_ERR_LIMIT without a limit named", err);
	if (siglen > CMS_MAX_SIGNATURE && e != MDM_ERR_LIMIT)
		fuzz_fail("oversized signature not refused for its size", err_str(e));
	return e;
}

/* Byte 1: bit 0 EC, bit 1 no signed attributes (OpenSSL directly), bit 2 SHA-1. */
static void recipe(const uint8_t *d, size_t n)
{
	unsigned int flags = CMS_BINARY | CMS_DETACHED | CMS_NOSMIMECAP;
	CMS_ContentInfo *cms = NULL;
	BIO *in = NULL;
	uint8_t *der = NULL, *copy = NULL;
	unsigned char *p = NULL;
	size_t len = 0;
	int k, l = 0;

	if (n < 2)
		return;
	k = d[1] & 1;
	if ((d[1] & 6) == 0) {
		if (cms_sign_detached(recipe_cert[k], recipe_key[k], d + 2, n - 2, &der, &len) !=
		        MDM_OK)
			fuzz_fail("cms_sign_detached", NULL);
	} else {
		if (d[1] & 2)
			flags |= CMS_NOATTR;
		if ((in = BIO_new_mem_buf(d + 2, (int)(n - 2))) == NULL ||
		        (cms = CMS_sign(NULL, NULL, NULL, NULL, flags | CMS_PARTIAL)) == NULL ||
		        CMS_add1_signer(cms, recipe_cert[k], recipe_key[k],
		                d[1] & 4 ? EVP_sha1() : EVP_sha384(), flags) == NULL ||
		        CMS_final(cms, in, NULL, flags) != 1 ||
		        (l = i2d_CMS_ContentInfo(cms, &p)) <= 0)
			fuzz_fail("recipe: CMS_sign", NULL);
		len = (size_t)l;
		der = malloc(len);
		if (der == NULL)
			fuzz_fail("recipe", "malloc");
		memcpy(der, p, len);
		OPENSSL_free(p);
	}
	check_queue("recipe signing");
	if (verify(der, len, d + 2, n - 2) != MDM_OK)
		fuzz_fail("recipe: our own signature does not verify", NULL);
	if (n > 2) {
		if ((copy = malloc(n - 2)) == NULL)
			fuzz_fail("recipe", "malloc");
		memcpy(copy, d + 2, n - 2);
		copy[(d[1] >> 3) % (n - 2)] ^= 0x80;
		if (verify(der, len, copy, n - 2) != MDM_ERR_AUTH)
			fuzz_fail("recipe: changed content not refused with MDM_ERR_AUTH", NULL);
	}
	free(copy);
	free(der);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'S') {
		recipe(data, size);
		return 0;
	}
	(void)verify(data, size, body, body_len);
	(void)verify(data, size, data, size);
	return 0;
}

/*
 * libFuzzer dictionary, one token per line (scripts/fuzz.sh extracts it):
 * CMS content types, the digests and signature algorithms, BER openers.
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03"
 * fuzz-dict: "\x06\x05\x2b\x0e\x03\x02\x1a"
 * fuzz-dict: "\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01"
 * fuzz-dict: "\x06\x08\x2a\x86\x48\x86\xf7\x0d\x02\x05"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x05"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a"
 * fuzz-dict: "\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"
 * fuzz-dict: "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x09\x04"
 * fuzz-dict: "\x30\x80"
 * fuzz-dict: "\xa0\x80"
 * fuzz-dict: "\x00\x00"
 */
