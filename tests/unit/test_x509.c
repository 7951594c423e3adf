/*
 * x509: certificates, keys, CSRs, the CA, verification and CRLs.
 *
 * CSRs and odd certificates are built here with OpenSSL directly, so each
 * refusal is tested against exactly the defect it is about; the openssl
 * command line checks what the module writes as an independent party.
 * The clock is fixed (NOW).  Keys are throw-away files in
 * tests/unit/data/x509; the real vectors (MDM_VECTORS, else
 * ../shared/vectors) and SoftHSM are used when present, else skipped.
 */
#include "log.h"
#include "suites.h"
#include "x509.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA "tests/unit/data/x509/"
#define NOW  ((time_t)1800000000) /* 2027-01-15T08:00:00Z */
#define DAY  ((time_t)86400)

static const struct x509_issue_policy default_policy = {365, 2048, 0};

/* ---- helpers ---- */

static size_t slurp(const char *path, char *buf, size_t cap)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	ck_assert_msg(fp != NULL, "%s missing (run from the repository root)", path);
	n = fread(buf, 1, cap - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return n;
}

static void spit(const char *path, const void *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(buf, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

/* memmem is a GNU extension; the tests build without _GNU_SOURCE. */
static uint8_t *find(uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

static EVP_PKEY *load_key(const char *name)
{
	EVP_PKEY *k = NULL;
	char path[256];

	snprintf(path, sizeof(path), DATA "%s", name);
	ck_assert_int_eq(x509_key_load(path, &k), MDM_OK);
	ck_assert_ptr_nonnull(k);
	return k;
}

/* A scratch directory, removed by tmpdir_done. */
static void tmpdir_new(char dir[64])
{
	strcpy(dir, "/tmp/mdm-x509-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void tmpdir_done(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Runs a shell command, its stdout+stderr into out; returns the exit status. */
static int run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	FILE *p;
	size_t n = 0;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	if (out != NULL && cap > 0) {
		n = fread(out, 1, cap - 1, p);
		out[n] = '\0';
	} else {
		char sink[512];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_pem(const char *path, const X509 *c)
{
	char *pem = NULL;
	size_t len = 0;

	ck_assert_int_eq(x509_cert_to_pem(c, &pem, &len), MDM_OK);
	spit(path, pem, len);
	free(pem);
}

/* Records logged while a test runs, to check that refusals say why. */
static FILE *logcap;

static void logcap_start(void)
{
	ck_assert_ptr_nonnull(logcap = tmpfile());
	log_set_level(MDM_LOG_DEBUG);
	log_set_fd(fileno(logcap));
}

/* 1 if the records since the last call contain needle; then forgets them. */
static int logcap_take(const char *needle)
{
	static char buf[65536];
	size_t n;

	fflush(logcap);
	rewind(logcap);
	n = fread(buf, 1, sizeof(buf) - 1, logcap);
	buf[n] = '\0';
	ck_assert_int_eq(ftruncate(fileno(logcap), 0), 0);
	rewind(logcap);
	return strstr(buf, needle) != NULL;
}

static void logcap_stop(void)
{
	log_set_fd(-1);
	fclose(logcap);
	logcap = NULL;
}

struct req_opts {
	const char *cn;        /* NULL: empty subject */
	const char *challenge; /* NULL: none */
	size_t challenge_len;  /* 0: strlen */
	int challenge_type;    /* 0: MBSTRING_UTF8 */
	const EVP_MD *md;      /* NULL: SHA-256 (Ed25519: none) */
	long version;          /* 0 */
	GENERAL_NAMES *sans;   /* NULL: no extensionRequest */
};

/* A CSR built with OpenSSL directly, as a device would send it. */
static X509_REQ *req_build(EVP_PKEY *k, const struct req_opts *o)
{
	X509_REQ *r = X509_REQ_new();

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(X509_REQ_set_version(r, o->version), 1);
	if (o->cn != NULL) {
		X509_NAME *n = X509_REQ_get_subject_name(r);

		ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
		                         (const unsigned char *)"Test", -1, -1, 0),
		        1);
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
		                         (const unsigned char *)o->cn, -1, -1, 0),
		        1);
	}
	ck_assert_int_eq(X509_REQ_set_pubkey(r, k), 1);
	if (o->challenge != NULL) {
		size_t len = o->challenge_len ? o->challenge_len : strlen(o->challenge);

		ck_assert_int_eq(X509_REQ_add1_attr_by_NID(r, NID_pkcs9_challengePassword,
		                         o->challenge_type ? o->challenge_type : MBSTRING_UTF8,
		                         (const unsigned char *)o->challenge, (int)len),
		        1);
	}
	if (o->sans != NULL) {
		STACK_OF(X509_EXTENSION) *exts = NULL;

		ck_assert_int_eq(X509V3_add1_i2d(&exts, NID_subject_alt_name, o->sans, 0, 0), 1);
		ck_assert_int_eq(X509_REQ_add_extensions(r, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519)
		ck_assert_int_gt(X509_REQ_sign(r, k, NULL), 0);
	else
		ck_assert_int_gt(X509_REQ_sign(r, k, o->md ? o->md : EVP_sha256()), 0);
	return r;
}

static uint8_t *req_der(X509_REQ *r, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(r, &der);

	ck_assert_int_gt(n, 0);
	*len = (size_t)n;
	return der;
}

/* A CSR as the module sees it: built, encoded, parsed back. */
static X509_REQ *csr_new(EVP_PKEY *k, const struct req_opts *o)
{
	X509_REQ *r = req_build(k, o), *csr = NULL;
	size_t len;
	uint8_t *der = req_der(r, &len);

	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	OPENSSL_free(der);
	X509_REQ_free(r);
	return csr;
}

static X509 *ca_new(EVP_PKEY *k, time_t now, int days)
{
	X509 *ca = NULL;

	ck_assert_int_eq(x509_ca_create(k, "/CN=MDM Test CA/O=Example", days, now, &ca), MDM_OK);
	ck_assert_ptr_nonnull(ca);
	return ca;
}

static X509 *issue(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *devkey, time_t now)
{
	struct req_opts o = {.cn = "device-1"};
	X509_REQ *csr = csr_new(devkey, &o);
	X509 *c = NULL;

	ck_assert_int_eq(x509_issue(ca, cakey, csr, &default_policy, now, &c), MDM_OK);
	x509_csr_free(csr);
	return c;
}

static int ext_critical(const X509 *c, int nid)
{
	int i = X509_get_ext_by_NID(c, nid, -1);

	ck_assert_int_ge(i, 0);
	return X509_EXTENSION_get_critical(X509_get_ext(c, i));
}

static void assert_time(const ASN1_TIME *t, time_t want)
{
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(t, want), 0);
}

/* ---- fingerprints (as Apache passes client certificates) ---- */

START_TEST(fingerprint_matches_openssl)
{
	char pem[8192], want[128], fp[X509_FP_HEX_LEN + 1];
	size_t n = slurp(DATA "client.pem", pem, sizeof(pem));

	slurp(DATA "client.sha256", want, sizeof(want));
	want[strcspn(want, "\n")] = '\0';
	ck_assert_int_eq(x509_pem_fingerprint(pem, n, fp), MDM_OK);
	ck_assert_str_eq(fp, want);
}
END_TEST

START_TEST(refuses_non_certificates)
{
	char pem[8192], two[16384], fp[X509_FP_HEX_LEN + 1];
	size_t n = slurp(DATA "client.pem", pem, sizeof(pem));

	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_pem_fingerprint("", 0, fp), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_pem_fingerprint("garbage", 7, fp), MDM_ERR_PARSE);
	ck_assert_str_eq(fp, "");
	/* Truncated at every 97th byte: never a fingerprint. */
	for (size_t i = 1; i + 1 < n; i += 97)
		ck_assert_int_eq(x509_pem_fingerprint(pem, i, fp), MDM_ERR_PARSE);
	/* Two certificates where one is expected. */
	snprintf(two, sizeof(two), "%s%s", pem, pem);
	ck_assert_int_eq(x509_pem_fingerprint(two, strlen(two), fp), MDM_ERR_PARSE);
}
END_TEST

/* ---- certificates: encodings ---- */

START_TEST(cert_encodings_round_trip)
{
	char pem[8192], want[128], dir[64], path[128];
	size_t n = slurp(DATA "client.pem", pem, sizeof(pem)), derlen = 0, pemlen = 0;
	X509 *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	uint8_t *der = NULL;
	char *pem2 = NULL;
	struct x509_info ia, ib;

	slurp(DATA "client.sha256", want, sizeof(want));
	want[strcspn(want, "\n")] = '\0';
	ck_assert_int_eq(x509_cert_load_file(DATA "client.pem", &a), MDM_OK);
	ck_assert_int_eq(x509_cert_from_pem(pem, n, &b), MDM_OK);
	ck_assert_int_eq(x509_cert_to_der(a, &der, &derlen), MDM_OK);
	ck_assert_int_eq(x509_cert_from_der(der, derlen, &c), MDM_OK);
	ck_assert_int_eq(x509_cert_to_pem(c, &pem2, &pemlen), MDM_OK);
	ck_assert_uint_eq(strlen(pem2), pemlen);
	ck_assert_str_eq(pem2, pem); /* the file is what PEM_write makes */
	/* DER on disk is recognised too. */
	tmpdir_new(dir);
	snprintf(path, sizeof(path), "%s/client.der", dir);
	spit(path, der, derlen);
	ck_assert_int_eq(x509_cert_load_file(path, &d), MDM_OK);
	ck_assert_int_eq(x509_cert_info(a, &ia), MDM_OK);
	ck_assert_int_eq(x509_cert_info(d, &ib), MDM_OK);
	ck_assert_str_eq(ia.sha256, want);
	ck_assert_str_eq(ib.sha256, want);
	ck_assert_int_eq(x509_cert_same_key(a, d), 1);
	/* The key's name: SHA-256 of the SubjectPublicKeyInfo, as openssl computes it. */
	{
		char kfp[X509_FP_HEX_LEN + 1], out[256];

		ck_assert_int_eq(x509_cert_key_sha256(a, kfp), MDM_OK);
		ck_assert_int_eq(
		        run(out, sizeof(out),
		                "openssl x509 -in " DATA "client.pem -noout -pubkey | "
		                "openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"),
		        0);
		ck_assert_msg(strncmp(out, kfp, 64) == 0, "%s vs %s", out, kfp);
		ck_assert_str_ne(kfp, ia.sha256);
		ck_assert_int_eq(x509_cert_key_sha256(NULL, kfp), MDM_ERR_INVAL);
		ck_assert_str_eq(kfp, "");
	}
	/* up_ref: two frees of one object. */
	ck_assert_ptr_eq(x509_cert_up_ref(d), d);
	x509_cert_free(d);
	x509_cert_free(d);
	x509_cert_free(NULL);
	tmpdir_done(dir);
	free(der);
	free(pem2);
	x509_cert_free(a);
	x509_cert_free(b);
	x509_cert_free(c);
}
END_TEST

START_TEST(cert_der_is_strict)
{
	char pem[8192], dir[64], path[128];
	uint8_t *der = NULL, *big;
	size_t derlen = 0;
	X509 *a = NULL, *c = (X509 *)1;

	log_set_level(MDM_LOG__MAX);
	slurp(DATA "client.pem", pem, sizeof(pem));
	ck_assert_int_eq(x509_cert_from_pem(pem, strlen(pem), &a), MDM_OK);
	ck_assert_int_eq(x509_cert_to_der(a, &der, &derlen), MDM_OK);
	ck_assert_ptr_nonnull(big = calloc(1, X509_MAX_DER + 2));
	memcpy(big, der, derlen);
	/* One trailing byte, or a second certificate glued on: refused, out cleared. */
	ck_assert_int_eq(x509_cert_from_der(big, derlen + 1, &c), MDM_ERR_PARSE);
	ck_assert_ptr_null(c);
	memcpy(big + derlen, der, derlen);
	ck_assert_int_eq(x509_cert_from_der(big, 2 * derlen, &c), MDM_ERR_PARSE);
	/* Every truncation. */
	for (size_t i = 0; i < derlen; i++)
		ck_assert_int_eq(x509_cert_from_der(der, i, &c), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_cert_from_der(NULL, 0, &c), MDM_ERR_PARSE);
	/* Over the limit: refused before parsing. */
	ck_assert_int_eq(x509_cert_from_der(big, X509_MAX_DER + 1, &c), MDM_ERR_LIMIT);
	/* The same for files: trailing garbage after DER. */
	tmpdir_new(dir);
	snprintf(path, sizeof(path), "%s/trailing.der", dir);
	spit(path, big, derlen + 1);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_ERR_PARSE);
	snprintf(path, sizeof(path), "%s/big.pem", dir);
	spit(path, big, X509_MAX_FILE + 1);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_ERR_LIMIT);
	snprintf(path, sizeof(path), "%s/empty", dir);
	spit(path, "", 0);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_ERR_LIMIT);
	ck_assert_int_eq(x509_cert_load_file(dir, &c), MDM_ERR_IO);
	snprintf(path, sizeof(path), "%s/absent", dir);
	ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_ERR_IO);
	ck_assert_ptr_null(c);
	tmpdir_done(dir);
	free(big);
	free(der);
	x509_cert_free(a);
}
END_TEST

START_TEST(cert_pem_is_strict)
{
	char pem[8192], buf[32768], key[4096];
	X509 *c = (X509 *)1;

	log_set_level(MDM_LOG__MAX);
	slurp(DATA "client.pem", pem, sizeof(pem));
	slurp(DATA "ca.key", key, sizeof(key));
	/* Two certificates where one is expected. */
	snprintf(buf, sizeof(buf), "%s%s", pem, pem);
	ck_assert_int_eq(x509_cert_from_pem(buf, strlen(buf), &c), MDM_ERR_PARSE);
	ck_assert_ptr_null(c);
	/* No certificate at all. */
	ck_assert_int_eq(x509_cert_from_pem(key, strlen(key), &c), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_cert_from_pem("garbage", 7, &c), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_cert_from_pem("", 0, &c), MDM_ERR_PARSE);
	/* A key next to the certificate is skipped, and so is text before it. */
	snprintf(buf, sizeof(buf), "%s%s", key, pem);
	ck_assert_int_eq(x509_cert_from_pem(buf, strlen(buf), &c), MDM_OK);
	x509_cert_free(c);
	{
		char dir[64], path[128];

		tmpdir_new(dir);
		snprintf(path, sizeof(path), "%s/c.pem", dir);
		snprintf(buf, sizeof(buf), "0 subject=CN=x\n%s", pem);
		spit(path, buf, strlen(buf));
		ck_assert_int_eq(x509_cert_load_file(path, &c), MDM_OK);
		x509_cert_free(c);
		tmpdir_done(dir);
	}
	/* Truncations. */
	for (size_t i = 1; i + 30 < strlen(pem); i += 61)
		ck_assert_int_eq(x509_cert_from_pem(pem, i, &c), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_cert_from_pem(buf, X509_MAX_FILE + 1, &c), MDM_ERR_LIMIT);
}
END_TEST

/* A certificate made directly with OpenSSL: serial bytes (negative if neg), n OU entries. */
static X509 *raw_cert(EVP_PKEY *k, const unsigned char *serial, int slen, int neg, int n_ou)
{
	X509 *x = X509_new();
	ASN1_INTEGER *ai = ASN1_INTEGER_new();
	X509_NAME *name = X509_NAME_new();

	ck_assert_int_eq(ASN1_STRING_set(ai, serial, slen), 1);
	if (neg)
		ai->type = V_ASN1_NEG_INTEGER;
	ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
	ck_assert_int_eq(X509_set_serialNumber(x, ai), 1);
	for (int i = 0; i < n_ou; i++)
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_ASC,
		                         (const unsigned char *)"organisational unit", -1, -1, 0),
		        1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	                         (const unsigned char *)"raw,\"cn\"", -1, -1, 0),
	        1);
	ck_assert_int_eq(X509_set_subject_name(x, name), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, name), 1);
	ck_assert_ptr_nonnull(X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &(time_t){NOW}));
	ck_assert_ptr_nonnull(X509_time_adj_ex(X509_getm_notAfter(x), 1, 0, &(time_t){NOW}));
	ck_assert_int_eq(X509_set_pubkey(x, k), 1);
	ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
	X509_NAME_free(name);
	ASN1_INTEGER_free(ai);
	return x;
}

START_TEST(cert_info_edge_cases)
{
	static const unsigned char twenty[20] = {
	        0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
	static const unsigned char one[] = {0x0a}, lead0[] = {0x00, 0x01, 0x02};
	static const unsigned char big[21] = {1};
	EVP_PKEY *k = load_key("device.key");
	struct x509_info info;
	X509 *x;

	/* Serial: upper-case hex, no leading zero nibble. */
	x = raw_cert(k, one, sizeof(one), 0, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_OK);
	ck_assert_str_eq(info.serial, "A");
	/* RFC 2253 escaping; no basicConstraints: not a CA. */
	ck_assert_str_eq(info.subject, "CN=raw\\,\\\"cn\\\"");
	ck_assert_int_eq(info.is_ca, 0);
	ck_assert_int_eq(info.not_before, NOW);
	ck_assert_int_eq(info.not_after, NOW + DAY);
	x509_cert_free(x);
	x = raw_cert(k, lead0, sizeof(lead0), 0, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_OK);
	ck_assert_str_eq(info.serial, "102");
	x509_cert_free(x);
	x = raw_cert(k, twenty, sizeof(twenty), 0, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_OK);
	ck_assert_str_eq(info.serial, "7F0102030405060708090A0B0C0D0E0F10111213");
	x509_cert_free(x);
	/* Over 20 octets, or negative: RFC 5280 4.1.2.2, refused and out cleared. */
	log_set_level(MDM_LOG__MAX);
	x = raw_cert(k, big, sizeof(big), 0, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_ERR_PARSE);
	ck_assert_str_eq(info.sha256, "");
	x509_cert_free(x);
	x = raw_cert(k, one, sizeof(one), 1, 0);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_ERR_PARSE);
	x509_cert_free(x);
	/* A long subject is truncated to the field. */
	x = raw_cert(k, one, sizeof(one), 0, 40);
	ck_assert_int_eq(x509_cert_info(x, &info), MDM_OK);
	ck_assert_uint_eq(strlen(info.subject), sizeof(info.subject) - 1);
	ck_assert(strncmp(info.subject, "CN=raw", 6) == 0);
	x509_cert_free(x);
	ck_assert_int_eq(x509_cert_info(NULL, &info), MDM_ERR_INVAL);
	x509_key_free(k);
}
END_TEST

/* ---- keys ---- */

START_TEST(key_load_forms)
{
	EVP_PKEY *k = NULL, *k2 = NULL;
	char dir[64], path[160], uri[256], buf[4096];
	size_t n;

	log_set_level(MDM_LOG__MAX);
	/* PKCS#8, PKCS#1 (traditional), SEC1 (EC). */
	k = load_key("ca.key");
	ck_assert_int_eq(EVP_PKEY_get_bits(k), 2048);
	x509_key_free(k);
	k = load_key("device.key");
	ck_assert_int_eq(EVP_PKEY_get_base_id(k), EVP_PKEY_RSA);
	x509_key_free(k);
	k = load_key("ec256.key");
	ck_assert_int_eq(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	x509_key_free(k);
	/* file: URIs, with a percent-escape in the name. */
	tmpdir_new(dir);
	n = slurp(DATA "ca.key", buf, sizeof(buf));
	snprintf(path, sizeof(path), "%s/a key.pem", dir);
	spit(path, buf, n);
	k = load_key("ca.key");
	snprintf(uri, sizeof(uri), "file://%s/a%%20key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_OK);
	ck_assert_int_eq(EVP_PKEY_eq(k, k2), 1);
	x509_key_free(k2);
	snprintf(uri, sizeof(uri), "file:%s/a%%20key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_OK);
	x509_key_free(k2);
	snprintf(uri, sizeof(uri), "file://localhost%s/a%%20key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_OK);
	x509_key_free(k2);
	x509_key_free(k);
	/* Refusals; out stays NULL. */
	k2 = (EVP_PKEY *)1;
	snprintf(uri, sizeof(uri), "file://elsewhere%s/a%%20key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_ERR_CONFIG);
	ck_assert_ptr_null(k2);
	snprintf(uri, sizeof(uri), "file://%s/a%%2key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_ERR_CONFIG);
	snprintf(uri, sizeof(uri), "file://%s/a%%00key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_ERR_CONFIG);
	snprintf(uri, sizeof(uri), "file://%s/a%%20key.pem?x=1", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_ERR_CONFIG);
	ck_assert_int_eq(x509_key_load("file:relative.pem", &k2), MDM_ERR_CONFIG);
	ck_assert_int_eq(x509_key_load("", &k2), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_key_load(NULL, &k2), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_key_load(DATA "absent.key", &k2), MDM_ERR_IO);
	ck_assert_int_eq(x509_key_load(dir, &k2), MDM_ERR_IO);
	ck_assert_int_eq(x509_key_load(DATA "notakey.pem", &k2), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_key_load(DATA "client.pem", &k2), MDM_ERR_PARSE);
	ck_assert_ptr_null(k2);
	tmpdir_done(dir);
}
END_TEST

START_TEST(key_load_never_prompts)
{
	EVP_PKEY *k = (EVP_PKEY *)1;

	/* An encrypted key is refused at once (no terminal prompt), and says why. */
	logcap_start();
	ck_assert_int_eq(x509_key_load(DATA "encrypted.key", &k), MDM_ERR_UNSUPPORTED);
	ck_assert_ptr_null(k);
	ck_assert(logcap_take("is encrypted"));
	logcap_stop();
}
END_TEST

START_TEST(key_generate_write_and_match)
{
	EVP_PKEY *k = NULL, *back = NULL, *other = load_key("ca2.key");
	char dir[64], path[128], before[4096], after[4096], out[512];
	struct stat st;
	X509 *ca;

	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_key_generate_rsa(1024, &k), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_key_generate_rsa(16384, &k), MDM_ERR_INVAL);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(x509_key_generate_rsa(2048, &k), MDM_OK);
	ck_assert_int_eq(EVP_PKEY_get_bits(k), 2048);
	tmpdir_new(dir);
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	ck_assert_int_eq(x509_key_write_pem(k, path), MDM_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	slurp(path, before, sizeof(before));
	ck_assert(strncmp(before, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
	ck_assert_int_eq(run(out, sizeof(out), "openssl pkey -in '%s' -noout", path), 0);
	/* Never overwritten, by the same key or another. */
	ck_assert_int_eq(x509_key_write_pem(other, path), MDM_ERR_CONFLICT);
	ck_assert_int_eq(x509_key_write_pem(k, path), MDM_ERR_CONFLICT);
	slurp(path, after, sizeof(after));
	ck_assert_str_eq(before, after);
	/* Nor through a symbolic link. */
	snprintf(out, sizeof(out), "%s/link.key", dir);
	ck_assert_int_eq(symlink("/nonexistent-target", out), 0);
	ck_assert_int_eq(x509_key_write_pem(k, out), MDM_ERR_CONFLICT);
	snprintf(out, sizeof(out), "%s/nodir/k.key", dir);
	ck_assert_int_eq(x509_key_write_pem(k, out), MDM_ERR_IO);
	ck_assert_int_eq(x509_key_write_pem(NULL, out), MDM_ERR_INVAL);
	/* What was written is the key. */
	ck_assert_int_eq(x509_key_load(path, &back), MDM_OK);
	ca = ca_new(k, NOW, 30);
	ck_assert_int_eq(x509_key_matches_cert(back, ca), 1);
	ck_assert_int_eq(x509_key_matches_cert(k, ca), 1);
	ck_assert_int_eq(x509_key_matches_cert(other, ca), 0);
	ck_assert_int_eq(x509_key_matches_cert(NULL, ca), 0);
	ck_assert_int_eq(x509_key_matches_cert(k, NULL), 0);
	/* Any key type: EC and Ed25519 too. */
	{
		EVP_PKEY *ec = load_key("ec256.key"), *ed = load_key("ed25519.key");
		unsigned char one = 1;
		X509 *xe = raw_cert(ec, &one, 1, 0, 0), *xd = NULL;

		/* raw_cert signs with SHA-256, which Ed25519 refuses: build that one apart. */
		ck_assert_int_eq(x509_key_matches_cert(ec, xe), 1);
		ck_assert_int_eq(x509_key_matches_cert(ed, xe), 0);
		ck_assert_ptr_nonnull(xd = X509_new());
		ck_assert_int_eq(X509_set_pubkey(xd, ed), 1);
		ck_assert_int_eq(x509_key_matches_cert(ed, xd), 1);
		ck_assert_int_eq(x509_key_matches_cert(ec, xd), 0);
		x509_cert_free(xd);
		x509_cert_free(xe);
		x509_key_free(ed);
		x509_key_free(ec);
	}
	tmpdir_done(dir);
	x509_cert_free(ca);
	x509_key_free(back);
	x509_key_free(other);
	x509_key_free(k);
	x509_key_free(NULL);
}
END_TEST

/* ---- CSRs ---- */

START_TEST(csr_parse_and_inspect)
{
	EVP_PKEY *k = load_key("device.key"), *ec = load_key("ec256.key");
	struct req_opts o = {.cn = "device-1", .challenge = "s3cret"};
	X509_REQ *csr = csr_new(k, &o), *csr_ec;
	char subject[128], tiny[8], *ch = NULL;

	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	ck_assert_int_eq(x509_csr_rsa_bits(csr), 2048);
	ck_assert_int_eq(x509_csr_subject(csr, subject, sizeof(subject)), MDM_OK);
	ck_assert_str_eq(subject, "CN=device-1,O=Test");
	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_csr_subject(csr, tiny, sizeof(tiny)), MDM_ERR_LIMIT);
	ck_assert_str_eq(tiny, "");
	ck_assert_int_eq(x509_csr_subject(csr, tiny, 0), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_csr_challenge(csr, &ch), MDM_OK);
	ck_assert_str_eq(ch, "s3cret");
	x509_challenge_free(ch);
	x509_challenge_free(NULL);
	csr_ec = csr_new(ec, &o);
	ck_assert_int_eq(x509_csr_verify(csr_ec), MDM_OK);
	ck_assert_int_eq(x509_csr_rsa_bits(csr_ec), 0);
	x509_csr_free(csr_ec);
	x509_csr_free(csr);
	x509_csr_free(NULL);
	x509_key_free(ec);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_der_is_strict)
{
	EVP_PKEY *k = load_key("device.key");
	struct req_opts o = {.cn = "device-1"};
	X509_REQ *r = req_build(k, &o), *csr = (X509_REQ *)1;
	size_t len;
	uint8_t *der = req_der(r, &len), *big;

	log_set_level(MDM_LOG__MAX);
	ck_assert_ptr_nonnull(big = calloc(1, X509_MAX_DER + 1));
	memcpy(big, der, len);
	ck_assert_int_eq(x509_csr_from_der(big, len + 1, &csr), MDM_ERR_PARSE);
	ck_assert_ptr_null(csr);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(x509_csr_from_der(der, i, &csr), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_csr_from_der(big, X509_MAX_DER + 1, &csr), MDM_ERR_LIMIT);
	/* A certificate is not a CSR. */
	{
		X509 *c = NULL;
		uint8_t *cder = NULL;
		size_t clen = 0;

		ck_assert_int_eq(x509_cert_load_file(DATA "client.pem", &c), MDM_OK);
		ck_assert_int_eq(x509_cert_to_der(c, &cder, &clen), MDM_OK);
		ck_assert_int_eq(x509_csr_from_der(cder, clen, &csr), MDM_ERR_PARSE);
		free(cder);
		x509_cert_free(c);
	}
	free(big);
	OPENSSL_free(der);
	X509_REQ_free(r);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_version_quirk)
{
	EVP_PKEY *k = load_key("device.key");
	struct req_opts o = {.cn = "device-1", .version = 2};
	X509_REQ *r = req_build(k, &o), *csr = NULL;
	size_t len;
	uint8_t *der = req_der(r, &len);

	/* 2, as macOS sends: accepted. */
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	/* 1: neither RFC 2986 nor a client we know. */
	log_set_level(MDM_LOG__MAX);
	o.version = 1;
	r = req_build(k, &o);
	der = req_der(r, &len);
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_ERR_PARSE);
	ck_assert_ptr_null(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_bad_signature_refused)
{
	EVP_PKEY *k = load_key("device.key"), *other = load_key("ca2.key");
	struct req_opts o = {.cn = "device-1", .challenge = "pw"};
	X509_REQ *r = req_build(k, &o), *csr = NULL;
	size_t len;
	uint8_t *der = req_der(r, &len);

	logcap_start();
	/* The signature is the last bytes of the DER: flip one. */
	der[len - 1] ^= 0x01;
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_ERR_AUTH);
	ck_assert(logcap_take("X509_REQ_verify"));
	x509_csr_free(csr);
	OPENSSL_free(der);
	/* A subject byte changed after signing. */
	der = req_der(r, &len);
	{
		uint8_t *p = find(der, len, "device-1", 8);

		ck_assert_ptr_nonnull(p);
		p[7] = '2';
	}
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_ERR_AUTH);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	/* Signed by another key than the one it carries. */
	r = req_build(k, &o);
	ck_assert_int_gt(X509_REQ_sign(r, other, EVP_sha256()), 0);
	der = req_der(r, &len);
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_ERR_AUTH);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	/* MD5: not an accepted signature algorithm. */
	o.md = EVP_md5();
	csr = csr_new(k, &o);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_ERR_UNSUPPORTED);
	ck_assert(logcap_take("not accepted"));
	x509_csr_free(csr);
	/* SHA-1, as macOS signs: accepted. */
	o.md = EVP_sha1();
	csr = csr_new(k, &o);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	x509_csr_free(csr);
	logcap_stop();
	x509_key_free(other);
	x509_key_free(k);
}
END_TEST

static mdm_err challenge_of(EVP_PKEY *k, const struct req_opts *o, char **out)
{
	X509_REQ *csr = csr_new(k, o);
	mdm_err rc = x509_csr_challenge(csr, out);

	x509_csr_free(csr);
	return rc;
}

START_TEST(csr_challenge_forms)
{
	EVP_PKEY *k = load_key("device.key");
	struct req_opts o = {.cn = "device-1"};
	char *ch = (char *)1, big[300];
	/* "pwé" as UCS-2 and UCS-4, big-endian. */
	static const char bmp[] = {0, 'p', 0, 'w', 0, (char)0xe9};
	static const char ucs4[] = {0, 0, 0, 'p', 0, 0, 0, 'w', 0, 0, 0, (char)0xe9};

	log_set_level(MDM_LOG__MAX);
	/* Absent. */
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_NOT_FOUND);
	ck_assert_ptr_null(ch);
	/* PrintableString (what most clients send), UTF8String, BMP, Universal, T61. */
	o.challenge = "03DD5575C1694064";
	o.challenge_type = V_ASN1_PRINTABLESTRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "03DD5575C1694064");
	x509_challenge_free(ch);
	o.challenge = "pw\xc3\xa9";
	o.challenge_type = V_ASN1_UTF8STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "pw\xc3\xa9");
	x509_challenge_free(ch);
	o.challenge = bmp;
	o.challenge_len = sizeof(bmp);
	o.challenge_type = V_ASN1_BMPSTRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "pw\xc3\xa9");
	x509_challenge_free(ch);
	o.challenge = ucs4;
	o.challenge_len = sizeof(ucs4);
	o.challenge_type = V_ASN1_UNIVERSALSTRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "pw\xc3\xa9");
	x509_challenge_free(ch);
	o.challenge = "pw\xe9"; /* T61 read as Latin-1 */
	o.challenge_len = 0;
	o.challenge_type = V_ASN1_T61STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_str_eq(ch, "pw\xc3\xa9");
	x509_challenge_free(ch);
	/* Exactly 255 bytes: fine; 256: over the limit. */
	memset(big, 'a', sizeof(big));
	big[255] = '\0';
	o.challenge = big;
	o.challenge_type = V_ASN1_PRINTABLESTRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_OK);
	ck_assert_uint_eq(strlen(ch), 255);
	x509_challenge_free(ch);
	big[255] = 'a';
	big[256] = '\0';
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_LIMIT);
	ck_assert_ptr_null(ch);
	/* 128 two-byte characters: 256 bytes of UTF-8, over the limit too. */
	for (int i = 0; i < 128; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[256] = '\0';
	o.challenge_type = V_ASN1_UTF8STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_LIMIT);
	/* Not a DirectoryString. */
	o.challenge = "pw";
	o.challenge_type = V_ASN1_IA5STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_PARSE);
	o.challenge_type = V_ASN1_OCTET_STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_PARSE);
	/* A NUL inside: a C string would cut it short. */
	o.challenge = "ab\0cd";
	o.challenge_len = 5;
	o.challenge_type = V_ASN1_UTF8STRING;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_PARSE);
	/* Malformed UTF-8. */
	o.challenge = "\xc3(";
	o.challenge_len = 0;
	ck_assert_int_eq(challenge_of(k, &o, &ch), MDM_ERR_PARSE);
	ck_assert_ptr_null(ch);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_challenge_must_be_single)
{
	EVP_PKEY *k = load_key("device.key");
	struct req_opts o = {.cn = "device-1", .challenge = "one"};
	X509_REQ *r = req_build(k, &o), *csr = NULL;
	X509_ATTRIBUTE *attr;
	size_t len;
	uint8_t *der;
	char *ch = NULL;

	log_set_level(MDM_LOG__MAX);
	/* Two values in the one attribute. */
	attr = X509_REQ_get_attr(r, X509_REQ_get_attr_by_NID(r, NID_pkcs9_challengePassword, -1));
	ck_assert_int_eq(X509_ATTRIBUTE_set1_data(attr, MBSTRING_UTF8, "two", 3), 1);
	ck_assert_int_eq(X509_ATTRIBUTE_count(attr), 2);
	der = req_der(r, &len);
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_challenge(csr, &ch), MDM_ERR_PARSE);
	ck_assert_ptr_null(ch);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	/*
	 * The attribute twice: OpenSSL will not build that, so an
	 * unstructuredName (1.2.840.113549.1.9.2) is renamed to
	 * challengePassword (.9.7) in the DER.
	 */
	r = req_build(k, &o);
	ck_assert_int_eq(X509_REQ_add1_attr_by_NID(r, NID_pkcs9_unstructuredName, MBSTRING_UTF8,
	                         (const unsigned char *)"other", 5),
	        1);
	der = req_der(r, &len);
	{
		static const uint8_t oid[] = {
		        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x02};
		uint8_t *p = find(der, len, oid, sizeof(oid));

		ck_assert_ptr_nonnull(p);
		p[sizeof(oid) - 1] = 0x07;
	}
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(x509_csr_challenge(csr, &ch), MDM_ERR_PARSE);
	x509_csr_free(csr);
	OPENSSL_free(der);
	X509_REQ_free(r);
	x509_key_free(k);
}
END_TEST

START_TEST(csr_matches_cert)
{
	EVP_PKEY *cak = load_key("ca.key"), *dk = load_key("device.key"),
	         *ek = load_key("ec256.key");
	X509 *ca = ca_new(cak, NOW, 3650), *c = issue(ca, cak, dk, NOW);
	struct req_opts same = {.cn = "device-1"}, other = {.cn = "device-2"};
	X509_REQ *a = csr_new(dk, &same), *b = csr_new(dk, &other), *e = csr_new(ek, &same);

	/* RFC 8894 2.3: a renewal's CSR carries the same key, the same subject. */
	ck_assert_int_eq(x509_csr_key_matches_cert(a, c), 1);
	ck_assert_int_eq(x509_csr_subject_matches_cert(a, c), 1);
	ck_assert_int_eq(x509_csr_key_matches_cert(b, c), 1);
	ck_assert_int_eq(x509_csr_subject_matches_cert(b, c), 0);
	ck_assert_int_eq(x509_csr_key_matches_cert(e, c), 0);
	ck_assert_int_eq(x509_csr_subject_matches_cert(e, c), 1);
	ck_assert_int_eq(x509_csr_key_matches_cert(a, ca), 0);
	ck_assert_int_eq(x509_csr_subject_matches_cert(a, ca), 0);
	ck_assert_int_eq(x509_csr_key_matches_cert(NULL, c), 0);
	ck_assert_int_eq(x509_csr_subject_matches_cert(a, NULL), 0);
	x509_csr_free(a);
	x509_csr_free(b);
	x509_csr_free(e);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(ek);
	x509_key_free(dk);
	x509_key_free(cak);
}
END_TEST

/* ---- the CA ---- */

START_TEST(ca_create_profile)
{
	EVP_PKEY *k = load_key("ca.key");
	X509 *ca = ca_new(k, NOW, 3650);
	struct x509_info info;
	ASN1_OCTET_STRING *ski;
	AUTHORITY_KEYID *aki;
	BASIC_CONSTRAINTS *bc;
	const ASN1_INTEGER *serial = X509_get0_serialNumber(ca);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char dir[64], path[128], out[4096];
	int crit;

	ck_assert_int_eq(X509_get_version(ca), X509_VERSION_3);
	ck_assert_int_eq(X509_get_signature_nid(ca), NID_sha256WithRSAEncryption);
	ck_assert_int_eq(X509_verify(ca, k), 1);
	/* Serial: positive, 128 random bits (16 or 17 octets with the sign byte). */
	ck_assert_int_eq(ASN1_STRING_type(serial), V_ASN1_INTEGER);
	ck_assert_int_le(ASN1_STRING_length(serial), 16);
	ck_assert_int_ge(ASN1_STRING_length(serial), 12);
	/* basicConstraints critical cA, pathLen 0. */
	ck_assert_ptr_nonnull(bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL));
	ck_assert_int_eq(crit, 1);
	ck_assert(bc->ca);
	ck_assert_int_eq(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	/* keyUsage critical: certmonger wants digitalSignature on the CertRep signer. */
	ck_assert_uint_eq(
	        X509_get_key_usage(ca), KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ck_assert_int_eq(ext_critical(ca, NID_key_usage), 1);
	ck_assert_int_lt(X509_get_ext_by_NID(ca, NID_ext_key_usage, -1), 0);
	/* SKI is SHA-1 of the key; a root's AKI is its SKI. */
	ck_assert_int_eq(X509_pubkey_digest(ca, EVP_sha1(), md, &mdlen), 1);
	ck_assert_ptr_nonnull(ski = X509_get_ext_d2i(ca, NID_subject_key_identifier, NULL, NULL));
	ck_assert_int_eq(ASN1_STRING_length(ski), (int)mdlen);
	ck_assert_mem_eq(ASN1_STRING_get0_data(ski), md, mdlen);
	ck_assert_ptr_nonnull(aki = X509_get_ext_d2i(ca, NID_authority_key_identifier, NULL, NULL));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(aki->keyid, ski), 0);
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(aki);
	/* Validity: an hour back for clock skew, days forward. */
	assert_time(X509_get0_notBefore(ca), NOW - 3600);
	assert_time(X509_get0_notAfter(ca), NOW + 3650 * DAY);
	/* info. */
	ck_assert_int_eq(x509_cert_info(ca, &info), MDM_OK);
	ck_assert_str_eq(info.subject, "O=Example,CN=MDM Test CA");
	ck_assert_str_eq(info.issuer, info.subject);
	ck_assert_int_eq(info.not_before, NOW - 3600);
	ck_assert_int_eq(info.not_after, NOW + 3650 * DAY);
	ck_assert_int_eq(info.is_ca, 1);
	ck_assert_uint_eq(strlen(info.sha256), 64);
	ck_assert(info.serial[0] != '0' &&
	        strspn(info.serial, "0123456789ABCDEF") == strlen(info.serial));
	ck_assert_int_eq(x509_key_matches_cert(k, ca), 1);
	/* An independent party agrees: self-signed root verifies, fingerprint and serial match. */
	tmpdir_new(dir);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	write_pem(path, ca);
	ck_assert_int_eq(run(out, sizeof(out), "openssl verify -attime %lld -CAfile '%s' '%s'",
	                         (long long)NOW, path, path),
	        0);
	ck_assert_int_eq(
	        run(out, sizeof(out),
	                "openssl x509 -in '%s' -noout -fingerprint -sha256 -serial | tr -d :",
	                path),
	        0);
	{
		char want[128], fp_uc[X509_FP_HEX_LEN + 1];
		size_t i;

		/* openssl prints upper case, and whole octets: at most one leading zero. */
		for (i = 0; info.sha256[i] != '\0'; i++)
			fp_uc[i] = (char)(info.sha256[i] >= 'a' ? info.sha256[i] - 32
			                                        : info.sha256[i]);
		fp_uc[i] = '\0';
		snprintf(want, sizeof(want), "sha256 Fingerprint=%s\n", fp_uc);
		ck_assert_msg(strstr(out, want) != NULL, "%s vs %s", out, want);
		snprintf(want, sizeof(want), "serial=%s%s\n", strlen(info.serial) % 2 ? "0" : "",
		        info.serial);
		ck_assert_msg(strstr(out, want) != NULL, "%s vs %s", out, want);
	}
	ck_assert_int_eq(run(out, sizeof(out), "openssl x509 -in '%s' -noout -text", path), 0);
	ck_assert(strstr(out, "CA:TRUE, pathlen:0") != NULL);
	ck_assert(strstr(out, "Digital Signature, Certificate Sign, CRL Sign") != NULL);
	tmpdir_done(dir);
	x509_cert_free(ca);
	x509_key_free(k);
}
END_TEST

START_TEST(ca_create_subject_and_refusals)
{
	EVP_PKEY *k = load_key("ca.key"), *small = load_key("small.key"),
	         *ec = load_key("ec256.key");
	X509 *ca = (X509 *)1;
	struct x509_info info;
	char longcn[80];

	ck_assert_int_eq(
	        x509_ca_create(k, "/C=DE/O=A\\/B \\\\ C/OU=Dept/CN=Root CA", 10, NOW, &ca), MDM_OK);
	ck_assert_int_eq(x509_cert_info(ca, &info), MDM_OK);
	ck_assert_str_eq(info.subject, "CN=Root CA,OU=Dept,O=A/B \\\\ C,C=DE");
	x509_cert_free(ca);
	/* UTF-8 values. */
	ck_assert_int_eq(
	        x509_ca_create(k, "/CN=Zertifizierungsstelle M\xc3\xbcnchen", 10, NOW, &ca),
	        MDM_OK);
	x509_cert_free(ca);
	/* EC CA keys are fine. */
	ck_assert_int_eq(x509_ca_create(ec, "/CN=EC CA", 10, NOW, &ca), MDM_OK);
	ck_assert_int_eq(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);
	x509_cert_free(ca);
	log_set_level(MDM_LOG__MAX);
	memset(longcn, 'x', sizeof(longcn));
	memcpy(longcn, "/CN=", 4);
	longcn[sizeof(longcn) - 1] = '\0';
	{
		static const char *const bad[] = {
		        "CN=x",      /* RFC 2253 form: not this syntax */
		        "",          /* empty */
		        "/",         /* no attribute */
		        "/CN",       /* no '=' */
		        "/CN=",      /* empty value */
		        "/CN=a/",    /* empty trailing RDN */
		        "/XX=y",     /* unknown type */
		        "/cn=y",     /* types are case-sensitive short names */
		        "/C=USA",    /* countryName is two letters */
		        "/CN=a\\q",  /* unknown escape */
		        "/CN=a\nb",  /* control character */
		        "/CN=\xc3(", /* bad UTF-8 */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			ca = (X509 *)1;
			ck_assert_msg(x509_ca_create(k, bad[i], 10, NOW, &ca) == MDM_ERR_INVAL,
			        "%s", bad[i]);
			ck_assert_ptr_null(ca);
		}
	}
	ck_assert_int_eq(x509_ca_create(k, longcn, 10, NOW, &ca), MDM_ERR_INVAL); /* CN > 64 */
	ck_assert_int_eq(x509_ca_create(k, NULL, 10, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(k, "/CN=x", 0, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(k, "/CN=x", X509_MAX_DAYS + 1, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(k, "/CN=x", 10, 0, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(small, "/CN=x", 10, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(NULL, "/CN=x", 10, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_ptr_null(ca);
	x509_key_free(ec);
	x509_key_free(small);
	x509_key_free(k);
}
END_TEST

START_TEST(ca_validity_past_2049)
{
	EVP_PKEY *k = load_key("ca.key");
	X509 *ca = ca_new(k, NOW, X509_MAX_DAYS);
	struct x509_info info;

	/* GeneralizedTime from 2050 on (RFC 5280 4.1.2.5), read back exactly. */
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_notAfter(ca)), V_ASN1_GENERALIZEDTIME);
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_notBefore(ca)), V_ASN1_UTCTIME);
	ck_assert_int_eq(x509_cert_info(ca, &info), MDM_OK);
	ck_assert_int_eq(info.not_after, NOW + (time_t)X509_MAX_DAYS * DAY);
	x509_cert_free(ca);
	x509_key_free(k);
}
END_TEST

START_TEST(ca_renew_and_rekey)
{
	EVP_PKEY *k1 = load_key("ca.key"), *k2 = load_key("ca2.key"), *dk = load_key("device.key");
	X509 *old = ca_new(k1, NOW - 300 * DAY, 365), *renewed = NULL, *rekeyed = NULL, *dev_old,
	     *dev_new, *cas[2];
	struct x509_info io, ir, ik;
	size_t which = 99;
	ASN1_OCTET_STRING *ski_old, *ski_new;
	char dir[64], path[128], path2[128], out[4096];

	ck_assert_int_eq(x509_ca_next(old, k1, 730, NOW, &renewed), MDM_OK);
	ck_assert_int_eq(x509_ca_next(old, k2, 730, NOW, &rekeyed), MDM_OK);
	ck_assert_int_eq(x509_cert_info(old, &io), MDM_OK);
	ck_assert_int_eq(x509_cert_info(renewed, &ir), MDM_OK);
	ck_assert_int_eq(x509_cert_info(rekeyed, &ik), MDM_OK);
	/* Renewal: same subject and key, new serial and validity. */
	ck_assert_str_eq(ir.subject, io.subject);
	ck_assert_str_eq(ir.issuer, io.subject);
	ck_assert_int_eq(x509_cert_same_key(old, renewed), 1);
	ck_assert_str_ne(ir.serial, io.serial);
	ck_assert_int_eq(ir.not_before, NOW - 3600);
	ck_assert_int_eq(ir.not_after, NOW + 730 * DAY);
	ck_assert_int_eq(ir.is_ca, 1);
	/* Rekey: same subject, new key, the SKI follows the key. */
	ck_assert_str_eq(ik.subject, io.subject);
	ck_assert_int_eq(x509_cert_same_key(old, rekeyed), 0);
	{
		char ko[X509_FP_HEX_LEN + 1], kr[X509_FP_HEX_LEN + 1], kk[X509_FP_HEX_LEN + 1];

		ck_assert_int_eq(x509_cert_key_sha256(old, ko), MDM_OK);
		ck_assert_int_eq(x509_cert_key_sha256(renewed, kr), MDM_OK);
		ck_assert_int_eq(x509_cert_key_sha256(rekeyed, kk), MDM_OK);
		ck_assert_str_eq(ko, kr);
		ck_assert_str_ne(ko, kk);
	}
	ck_assert_int_eq(x509_key_matches_cert(k2, rekeyed), 1);
	ck_assert_int_eq(x509_key_matches_cert(k1, rekeyed), 0);
	ski_old = X509_get_ext_d2i(old, NID_subject_key_identifier, NULL, NULL);
	ski_new = X509_get_ext_d2i(rekeyed, NID_subject_key_identifier, NULL, NULL);
	ck_assert_int_ne(ASN1_OCTET_STRING_cmp(ski_old, ski_new), 0);
	ASN1_OCTET_STRING_free(ski_old);
	ski_old = X509_get_ext_d2i(renewed, NID_subject_key_identifier, NULL, NULL);
	ck_assert_ptr_nonnull(ski_old);
	ASN1_OCTET_STRING_free(ski_old);
	ASN1_OCTET_STRING_free(ski_new);
	/* A device certificate issued by the old CA still verifies with [new, old]. */
	dev_old = issue(old, k1, dk, NOW - 10 * DAY);
	dev_new = issue(rekeyed, k2, dk, NOW);
	cas[0] = rekeyed;
	cas[1] = old;
	ck_assert_int_eq(x509_verify_issued(dev_old, cas, 2, NOW, 1, &which), MDM_OK);
	ck_assert_uint_eq(which, 1);
	ck_assert_int_eq(x509_verify_issued(dev_new, cas, 2, NOW, 1, &which), MDM_OK);
	ck_assert_uint_eq(which, 0);
	/* And after a renewal, the renewed certificate alone vouches for it (same key). */
	ck_assert_int_eq(x509_verify_issued(dev_old, &renewed, 1, NOW, 1, &which), MDM_OK);
	/* But the rekeyed CA alone does not. */
	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_verify_issued(dev_old, &rekeyed, 1, NOW, 1, &which), MDM_ERR_AUTH);
	/* Once the old CA has expired, neither does the list (the device cert was capped to it). */
	ck_assert_int_eq(
	        x509_verify_issued(dev_old, cas, 2, NOW + 100 * DAY, 1, &which), MDM_ERR_AUTH);
	/* openssl agrees: the old device cert chains to the old root only. */
	tmpdir_new(dir);
	snprintf(path, sizeof(path), "%s/old.pem", dir);
	write_pem(path, old);
	snprintf(path2, sizeof(path2), "%s/dev.pem", dir);
	write_pem(path2, dev_old);
	ck_assert_int_eq(run(out, sizeof(out), "openssl verify -attime %lld -CAfile '%s' '%s'",
	                         (long long)NOW, path, path2),
	        0);
	snprintf(path, sizeof(path), "%s/new.pem", dir);
	write_pem(path, rekeyed);
	ck_assert_int_ne(run(out, sizeof(out), "openssl verify -attime %lld -CAfile '%s' '%s'",
	                         (long long)NOW, path, path2),
	        0);
	tmpdir_done(dir);
	/* x509_ca_next wants a CA. */
	{
		X509 *none = (X509 *)1;

		ck_assert_int_eq(x509_ca_next(dev_new, k1, 10, NOW, &none), MDM_ERR_INVAL);
		ck_assert_ptr_null(none);
		ck_assert_int_eq(x509_ca_next(NULL, k1, 10, NOW, &none), MDM_ERR_INVAL);
	}
	x509_cert_free(renewed);
	x509_cert_free(dev_old);
	x509_cert_free(dev_new);
	x509_cert_free(old);
	x509_cert_free(rekeyed);
	x509_key_free(dk);
	x509_key_free(k2);
	x509_key_free(k1);
}
END_TEST

/* ---- issuing ---- */

START_TEST(issue_profile_and_openssl_verify)
{
	EVP_PKEY *cak = load_key("ca.key"), *dk = load_key("device.key");
	X509 *ca = ca_new(cak, NOW - DAY, 3650), *c = NULL;
	struct req_opts o = {.cn = "device-1", .challenge = "pw"};
	X509_REQ *csr = csr_new(dk, &o);
	struct x509_info info;
	BASIC_CONSTRAINTS *bc;
	EXTENDED_KEY_USAGE *eku;
	AUTHORITY_KEYID *aki;
	ASN1_OCTET_STRING *ca_ski, *ski;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char dir[64], capath[128], path[128], out[8192];
	size_t which = 99;
	int crit;

	ck_assert_int_eq(x509_issue(ca, cak, csr, &default_policy, NOW, &c), MDM_OK);
	ck_assert_int_eq(X509_get_version(c), X509_VERSION_3);
	ck_assert_int_eq(X509_get_signature_nid(c), NID_sha256WithRSAEncryption);
	ck_assert_int_eq(X509_verify(c, X509_get0_pubkey(ca)), 1);
	ck_assert_int_eq(
	        X509_NAME_cmp(X509_get_subject_name(c), X509_REQ_get_subject_name(csr)), 0);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ca)), 0);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(c), dk), 1);
	ck_assert_int_le(ASN1_STRING_length(X509_get0_serialNumber(c)), 16);
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_serialNumber(c)), V_ASN1_INTEGER);
	/* keyUsage critical digitalSignature + keyEncipherment; EKU clientAuth only. */
	ck_assert_uint_eq(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(ext_critical(c, NID_key_usage), 1);
	ck_assert_ptr_nonnull(eku = X509_get_ext_d2i(c, NID_ext_key_usage, &crit, NULL));
	ck_assert_int_eq(sk_ASN1_OBJECT_num(eku), 1);
	ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	ck_assert_ptr_nonnull(bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL));
	ck_assert(!bc->ca);
	ck_assert_int_eq(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	/* SKI of the device key; AKI = the CA's SKI. */
	ck_assert_int_eq(X509_pubkey_digest(c, EVP_sha1(), md, &mdlen), 1);
	ck_assert_ptr_nonnull(ski = X509_get_ext_d2i(c, NID_subject_key_identifier, NULL, NULL));
	ck_assert_mem_eq(ASN1_STRING_get0_data(ski), md, mdlen);
	ck_assert_ptr_nonnull(
	        ca_ski = X509_get_ext_d2i(ca, NID_subject_key_identifier, NULL, NULL));
	ck_assert_ptr_nonnull(aki = X509_get_ext_d2i(c, NID_authority_key_identifier, NULL, NULL));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(aki->keyid, ca_ski), 0);
	ASN1_OCTET_STRING_free(ski);
	ASN1_OCTET_STRING_free(ca_ski);
	AUTHORITY_KEYID_free(aki);
	/* No SAN unless asked; no challengePassword leaks into the certificate. */
	ck_assert_int_lt(X509_get_ext_by_NID(c, NID_subject_alt_name, -1), 0);
	ck_assert_int_eq(X509_get_ext_count(c), 5);
	/* info. */
	ck_assert_int_eq(x509_cert_info(c, &info), MDM_OK);
	ck_assert_str_eq(info.subject, "CN=device-1,O=Test");
	ck_assert_str_eq(info.issuer, "O=Example,CN=MDM Test CA");
	ck_assert_int_eq(info.not_before, NOW - 3600);
	ck_assert_int_eq(info.not_after, NOW + 365 * DAY);
	ck_assert_int_eq(info.is_ca, 0);
	/* Ours accepts it, for TLS client authentication. */
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, &which), MDM_OK);
	ck_assert_uint_eq(which, 0);
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 0, NULL), MDM_OK);
	/* openssl, independently, with the sslclient purpose. */
	tmpdir_new(dir);
	snprintf(capath, sizeof(capath), "%s/ca.pem", dir);
	snprintf(path, sizeof(path), "%s/dev.pem", dir);
	write_pem(capath, ca);
	write_pem(path, c);
	ck_assert_int_eq(run(out, sizeof(out),
	                         "openssl verify -x509_strict -purpose sslclient -attime %lld "
	                         "-CAfile '%s' '%s'",
	                         (long long)NOW, capath, path),
	        0);
	ck_assert_int_ne(run(out, sizeof(out), "openssl verify -attime %lld -CAfile '%s' '%s'",
	                         (long long)(NOW + 366 * DAY), capath, path),
	        0);
	ck_assert_int_eq(run(out, sizeof(out), "openssl x509 -in '%s' -noout -text", path), 0);
	ck_assert(strstr(out, "TLS Web Client Authentication") != NULL);
	ck_assert(strstr(out, "Digital Signature, Key Encipherment") != NULL);
	ck_assert(strstr(out, "CA:FALSE") != NULL);
	tmpdir_done(dir);
	x509_csr_free(csr);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(dk);
	x509_key_free(cak);
}
END_TEST

/*
 * The SCEP responder of a CA without an RA (x509_scep_responder): the CA's
 * key under an end-entity certificate the CA issued, the same bytes every
 * time, recognised by IssuerAndSerialNumber alone; none for an EC CA.
 */
START_TEST(scep_responder_profile)
{
	EVP_PKEY *cak = load_key("ca.key"), *ec = load_key("ec256.key"),
	         *other = load_key("ca2.key");
	X509 *ca = ca_new(cak, NOW - DAY, 3650), *ca2 = ca_new(cak, NOW - DAY, 3650);
	X509 *ecca = ca_new(ec, NOW - DAY, 3650), *r = NULL, *again = NULL;
	BASIC_CONSTRAINTS *bc;
	AUTHORITY_KEYID *aki;
	ASN1_OCTET_STRING *ca_ski;
	unsigned char *d1 = NULL, *d2 = NULL;
	char dir[64], capath[128], path[128], out[8192];
	int n1, n2, crit;

	ck_assert_int_eq(x509_scep_responder(ca, cak, &r), MDM_OK);
	ck_assert_int_eq(X509_get_version(r), X509_VERSION_3);
	ck_assert_int_eq(X509_get_signature_nid(r), NID_sha256WithRSAEncryption);
	ck_assert_int_eq(X509_verify(r, X509_get0_pubkey(ca)), 1);
	ck_assert_int_eq(X509_check_issued(ca, r), X509_V_OK);
	/* The CA's key, its own name (the CA's and OU=SCEP responder), the CA's dates. */
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(r), X509_get0_pubkey(ca)), 1);
	ck_assert_int_ne(X509_NAME_cmp(X509_get_subject_name(r), X509_get_subject_name(ca)), 0);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(r), X509_get_subject_name(ca)), 0);
	ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(r)),
	        X509_NAME_entry_count(X509_get_subject_name(ca)) + 1);
	ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notBefore(r), X509_get0_notBefore(ca)), 0);
	ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notAfter(r), X509_get0_notAfter(ca)), 0);
	ck_assert_int_ne(
	        ASN1_INTEGER_cmp(X509_get0_serialNumber(r), X509_get0_serialNumber(ca)), 0);
	/*
	 * An end entity that signs and encrypts: Apple devices take such an
	 * RA for both (SecSCEPValidateCACertMessage); keyEncipherment alone
	 * is an invalid RA response to them.
	 */
	ck_assert_uint_eq(X509_get_key_usage(r), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(ext_critical(r, NID_key_usage), 1);
	ck_assert_ptr_nonnull(bc = X509_get_ext_d2i(r, NID_basic_constraints, &crit, NULL));
	ck_assert(!bc->ca);
	ck_assert_int_eq(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_int_eq(X509_check_ca(r), 0);
	/* AKI: the CA's SKI; no SKI of its own (it would be the CA's), no EKU. */
	ck_assert_ptr_nonnull(
	        ca_ski = X509_get_ext_d2i(ca, NID_subject_key_identifier, NULL, NULL));
	ck_assert_ptr_nonnull(aki = X509_get_ext_d2i(r, NID_authority_key_identifier, NULL, NULL));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(aki->keyid, ca_ski), 0);
	ASN1_OCTET_STRING_free(ca_ski);
	AUTHORITY_KEYID_free(aki);
	ck_assert_int_lt(X509_get_ext_by_NID(r, NID_subject_key_identifier, -1), 0);
	ck_assert_int_lt(X509_get_ext_by_NID(r, NID_ext_key_usage, -1), 0);
	ck_assert_int_eq(X509_get_ext_count(r), 3);
	/* Every process derives the same bytes (certmonger compares GetCACert answers). */
	ck_assert_int_eq(x509_scep_responder(ca, cak, &again), MDM_OK);
	n1 = i2d_X509(r, &d1);
	n2 = i2d_X509(again, &d2);
	ck_assert_int_gt(n1, 0);
	ck_assert_int_eq(n1, n2);
	ck_assert_mem_eq(d1, d2, (size_t)n1);
	OPENSSL_free(d1);
	OPENSSL_free(d2);
	x509_cert_free(again);
	again = NULL;
	/* Named by its IssuerAndSerialNumber, and only by it. */
	ck_assert_int_eq(
	        x509_scep_responder_named(ca, X509_get_issuer_name(r), X509_get0_serialNumber(r)),
	        1);
	ck_assert_int_eq(
	        x509_scep_responder_named(ca, X509_get_issuer_name(ca), X509_get0_serialNumber(ca)),
	        0);
	ck_assert_int_eq(
	        x509_scep_responder_named(ca2, X509_get_issuer_name(r), X509_get0_serialNumber(r)),
	        0);
	ck_assert_int_eq(
	        x509_scep_responder_named(ca, X509_get_subject_name(r), X509_get0_serialNumber(r)),
	        0);
	ck_assert_int_eq(x509_scep_responder_named(ca, NULL, X509_get0_serialNumber(r)), 0);
	/* A renewed CA (same key, new certificate) has another responder. */
	ck_assert_int_eq(x509_scep_responder(ca2, cak, &again), MDM_OK);
	ck_assert_int_ne(X509_cmp(again, r), 0);
	x509_cert_free(again);
	again = NULL;
	/* openssl, independently: it chains to the CA. */
	tmpdir_new(dir);
	snprintf(capath, sizeof(capath), "%s/ca.pem", dir);
	snprintf(path, sizeof(path), "%s/responder.pem", dir);
	write_pem(capath, ca);
	write_pem(path, r);
	ck_assert_int_eq(run(out, sizeof(out),
	                         "openssl verify -x509_strict -attime %lld "
	                         "-CAfile '%s' '%s'",
	                         (long long)NOW, capath, path),
	        0);
	tmpdir_done(dir);
	/* Refused: an EC CA (no key transport), another key, no CA. */
	ck_assert_int_eq(x509_scep_responder(ecca, ec, &again), MDM_ERR_NOT_FOUND);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(x509_scep_responder(ca, other, &again), MDM_ERR_CONFIG);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(x509_scep_responder(r, cak, &again), MDM_ERR_CONFIG);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(x509_scep_responder(NULL, cak, &again), MDM_ERR_INVAL);
	x509_cert_free(r);
	x509_cert_free(ca);
	x509_cert_free(ca2);
	x509_cert_free(ecca);
	x509_key_free(cak);
	x509_key_free(ec);
	x509_key_free(other);
}
END_TEST

START_TEST(issue_validity_capped_to_ca)
{
	EVP_PKEY *cak = load_key("ca.key"), *dk = load_key("device.key");
	X509 *ca = ca_new(cak, NOW, 30), *c = issue(ca, cak, dk, NOW);
	struct x509_info ci, ii;

	ck_assert_int_eq(x509_cert_info(ca, &ci), MDM_OK);
	ck_assert_int_eq(x509_cert_info(c, &ii), MDM_OK);
	ck_assert_int_eq(ii.not_after, ci.not_after);
	ck_assert_int_eq(ii.not_before, NOW - 3600);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(dk);
	x509_key_free(cak);
}
END_TEST

START_TEST(issue_refusals)
{
	EVP_PKEY *cak = load_key("ca.key"), *other = load_key("ca2.key"),
	         *dk = load_key("device.key"), *small = load_key("small.key"),
	         *ec = load_key("ec256.key"), *ec521 = load_key("ec521.key"),
	         *ed = load_key("ed25519.key");
	X509 *ca = ca_new(cak, NOW, 3650), *c = (X509 *)1, *dev;
	struct req_opts o = {.cn = "device-1"}, empty = {.cn = NULL};
	struct x509_issue_policy p = default_policy;
	X509_REQ *csr;

	logcap_start();
	/* 1024-bit RSA under the policy's 2048: forbidden. */
	csr = csr_new(small, &o);
	ck_assert_int_eq(x509_csr_rsa_bits(csr), 1024);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_FORBIDDEN);
	ck_assert_ptr_null(c);
	ck_assert(logcap_take("1024 bits"));
	p.min_rsa_bits = 0; /* the default is 2048 too */
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_FORBIDDEN);
	p.min_rsa_bits = 1024;
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_OK);
	x509_cert_free(c);
	x509_csr_free(csr);
	p = default_policy;
	/* Empty subject. */
	csr = csr_new(dk, &empty);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_FORBIDDEN);
	ck_assert(logcap_take("empty subject"));
	x509_csr_free(csr);
	/* EC: P-256 yes (digitalSignature only), P-521 and Ed25519 no. */
	csr = csr_new(ec, &o);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_OK);
	ck_assert_uint_eq(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE);
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, NULL), MDM_OK);
	x509_cert_free(c);
	x509_csr_free(csr);
	csr = csr_new(ec521, &o);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_FORBIDDEN);
	ck_assert(logcap_take("only P-256 and P-384"));
	x509_csr_free(csr);
	/* Ed25519 already fails the CSR signature allow-list. */
	csr = csr_new(ed, &o);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_UNSUPPORTED);
	x509_csr_free(csr);
	/* A CSR whose signature does not verify. */
	{
		X509_REQ *r = req_build(dk, &o);
		size_t len;
		uint8_t *der = req_der(r, &len);

		der[len - 1] ^= 0x80;
		ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
		ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_AUTH);
		x509_csr_free(csr);
		OPENSSL_free(der);
		X509_REQ_free(r);
	}
	csr = csr_new(dk, &o);
	/* The CA key does not belong to the CA certificate. */
	ck_assert_int_eq(x509_issue(ca, other, csr, &p, NOW, &c), MDM_ERR_CONFIG);
	ck_assert(logcap_take("does not belong"));
	/* The CA is not valid (yet, or any more). */
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW - 2 * 3600, &c), MDM_ERR_CONFIG);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW + 3651 * DAY, &c), MDM_ERR_CONFIG);
	/* A device certificate is no CA. */
	dev = issue(ca, cak, dk, NOW);
	ck_assert_int_eq(x509_issue(dev, dk, csr, &p, NOW, &c), MDM_ERR_CONFIG);
	x509_cert_free(dev);
	/* Unusable policies. */
	p.days = 0;
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_INVAL);
	p.days = X509_MAX_DAYS + 1;
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_issue(ca, cak, csr, NULL, NOW, &c), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_issue(ca, cak, NULL, &default_policy, NOW, &c), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_issue(NULL, cak, csr, &default_policy, NOW, &c), MDM_ERR_INVAL);
	ck_assert_ptr_null(c);
	logcap_stop();
	x509_csr_free(csr);
	x509_cert_free(ca);
	x509_key_free(ed);
	x509_key_free(ec521);
	x509_key_free(ec);
	x509_key_free(small);
	x509_key_free(dk);
	x509_key_free(other);
	x509_key_free(cak);
}
END_TEST

static void san_add(GENERAL_NAMES *g, int type, const char *v)
{
	GENERAL_NAME *n = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	ck_assert_int_eq(ASN1_STRING_set(s, v, -1), 1);
	GENERAL_NAME_set0_value(n, type, s);
	ck_assert_int_gt(sk_GENERAL_NAME_push(g, n), 0);
}

static void san_add_upn(GENERAL_NAMES *g, const char *v, int utf8)
{
	GENERAL_NAME *n = GENERAL_NAME_new();
	ASN1_TYPE *t = ASN1_TYPE_new();
	ASN1_STRING *s = utf8 ? ASN1_UTF8STRING_new() : ASN1_IA5STRING_new();

	ck_assert_int_eq(ASN1_STRING_set(s, v, -1), 1);
	ASN1_TYPE_set(t, utf8 ? V_ASN1_UTF8STRING : V_ASN1_IA5STRING, s);
	ck_assert_int_eq(GENERAL_NAME_set0_othername(n, OBJ_nid2obj(NID_ms_upn), t), 1);
	ck_assert_int_gt(sk_GENERAL_NAME_push(g, n), 0);
}

static mdm_err issue_with_sans(GENERAL_NAMES *g, int copy, X509 **out)
{
	EVP_PKEY *cak = load_key("ca.key"), *dk = load_key("device.key");
	X509 *ca = ca_new(cak, NOW, 3650);
	struct req_opts o = {.cn = "device-1", .sans = g};
	struct x509_issue_policy p = {365, 2048, copy};
	X509_REQ *csr = csr_new(dk, &o);
	mdm_err rc = x509_issue(ca, cak, csr, &p, NOW, out);

	if (rc == MDM_OK)
		ck_assert_int_eq(x509_verify_issued(*out, &ca, 1, NOW, 1, NULL), MDM_OK);
	x509_csr_free(csr);
	x509_cert_free(ca);
	x509_key_free(dk);
	x509_key_free(cak);
	GENERAL_NAMES_free(g);
	return rc;
}

START_TEST(issue_copies_allowed_sans)
{
	GENERAL_NAMES *g = GENERAL_NAMES_new(), *got;
	X509 *c = NULL;
	int crit = -1;

	san_add(g, GEN_DNS, "device-1.example.com");
	san_add(g, GEN_EMAIL, "user@example.com");
	san_add(g, GEN_URI, "urn:uuid:063D7953-1338-4BF0-8F99-913382996224");
	san_add_upn(g, "user@EXAMPLE.COM", 1);
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_OK);
	ck_assert_ptr_nonnull(got = X509_get_ext_d2i(c, NID_subject_alt_name, &crit, NULL));
	ck_assert_int_eq(crit, 0);
	ck_assert_int_eq(sk_GENERAL_NAME_num(got), 4);
	ck_assert_int_eq(sk_GENERAL_NAME_value(got, 0)->type, GEN_DNS);
	ck_assert_int_eq(sk_GENERAL_NAME_value(got, 3)->type, GEN_OTHERNAME);
	GENERAL_NAMES_free(got);
	x509_cert_free(c);
	/* Not asked to copy: none in the certificate. */
	g = GENERAL_NAMES_new();
	san_add(g, GEN_DNS, "device-1.example.com");
	ck_assert_int_eq(issue_with_sans(g, 0, &c), MDM_OK);
	ck_assert_int_lt(X509_get_ext_by_NID(c, NID_subject_alt_name, -1), 0);
	x509_cert_free(c);
}
END_TEST

START_TEST(issue_refuses_other_sans)
{
	GENERAL_NAMES *g;
	X509 *c = (X509 *)1;

	log_set_level(MDM_LOG__MAX);
	/* iPAddress: not in the allow-list. */
	g = GENERAL_NAMES_new();
	{
		GENERAL_NAME *n = GENERAL_NAME_new();
		ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();

		ck_assert_int_eq(
		        ASN1_OCTET_STRING_set(ip, (const unsigned char *)"\x7f\0\0\1", 4), 1);
		GENERAL_NAME_set0_value(n, GEN_IPADD, ip);
		sk_GENERAL_NAME_push(g, n);
	}
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	ck_assert_ptr_null(c);
	/* A DNS name with a space or a control character. */
	g = GENERAL_NAMES_new();
	san_add(g, GEN_DNS, "a b.example.com");
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	g = GENERAL_NAMES_new();
	san_add(g, GEN_EMAIL, "a\x01@example.com");
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	/* A UPN that is not a UTF8String. */
	g = GENERAL_NAMES_new();
	san_add_upn(g, "user@EXAMPLE.COM", 0);
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	/* Too many. */
	g = GENERAL_NAMES_new();
	for (int i = 0; i <= X509_MAX_SANS; i++)
		san_add(g, GEN_DNS, "d.example.com");
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	/* The same with copy_sans off: the SAN is ignored, the certificate issued. */
	g = GENERAL_NAMES_new();
	san_add(g, GEN_DNS, "a b.example.com");
	ck_assert_int_eq(issue_with_sans(g, 0, &c), MDM_OK);
	x509_cert_free(c);
}
END_TEST

/* ---- verifying ---- */

/* A copy of c changed by edit, then signed again by key (a CA, or an intruder). */
static X509 *resign(const X509 *c, EVP_PKEY *key, void (*edit)(X509 *))
{
	X509 *x = X509_dup(c);

	ck_assert_ptr_nonnull(x);
	edit(x);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	return x;
}

static void drop_eku(X509 *x)
{
	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x, NID_ext_key_usage, -1)));
}

static void eku_server_only(X509 *x)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();

	drop_eku(x);
	sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, 0), 1);
	sk_ASN1_OBJECT_free(eku);
}

static void ku_encipher_only(X509 *x)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();

	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1)));
	ASN1_BIT_STRING_set_bit(ku, 2, 1);
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_key_usage, ku, 1, 0), 1);
	ASN1_BIT_STRING_free(ku);
}

static void unknown_critical(X509 *x)
{
	ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
	ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;

	ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2);
	ck_assert_ptr_nonnull(e = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, v));
	ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(v);
	ASN1_OBJECT_free(obj);
}

static void make_ca(X509 *x)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();

	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x, NID_basic_constraints, -1)));
	bc->ca = 0xff;
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, 0), 1);
	BASIC_CONSTRAINTS_free(bc);
}

static void no_change(X509 *x)
{
	(void)x;
}

static void refused_because(
        const X509 *c, X509 *const *cas, size_t n, time_t now, int client, const char *why)
{
	size_t which = 99;

	ck_assert_int_eq(x509_verify_issued(c, cas, n, now, client, &which), MDM_ERR_AUTH);
	ck_assert_uint_eq(which, 0);
	ck_assert_msg(logcap_take(why), "log does not say \"%s\"", why);
}

START_TEST(verify_refusals_say_why)
{
	EVP_PKEY *cak = load_key("ca.key"), *k2 = load_key("ca2.key"), *dk = load_key("device.key");
	X509 *ca = ca_new(cak, NOW - 10 * DAY, 3650), *c = issue(ca, cak, dk, NOW), *x, *foreign,
	     *twin, *both[2];

	logcap_start();
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, NULL), MDM_OK);
	/* Expired, not yet valid. */
	refused_because(c, &ca, 1, NOW + 366 * DAY, 1, "certificate expired");
	refused_because(c, &ca, 1, NOW - 2 * 3600, 1, "certificate not yet valid");
	/* The CA expired (the certificate, capped, with it). */
	refused_because(c, &ca, 1, NOW + 3651 * DAY, 1, "issuing CA expired");
	/* A foreign CA: another name, or the same name with another key. */
	foreign = NULL;
	ck_assert_int_eq(x509_ca_create(k2, "/CN=Other CA", 3650, NOW - DAY, &foreign), MDM_OK);
	refused_because(c, &foreign, 1, NOW, 1, "unknown issuer");
	twin = ca_new(k2, NOW - DAY, 3650);
	refused_because(c, &twin, 1, NOW, 1, "signature does not verify");
	/* With the right CA second in the list it is found. */
	both[0] = twin;
	both[1] = ca;
	{
		size_t which = 99;

		ck_assert_int_eq(x509_verify_issued(c, both, 2, NOW, 1, &which), MDM_OK);
		ck_assert_uint_eq(which, 1);
	}
	/* Signed by an intruder under our CA's name. */
	x = resign(c, k2, no_change);
	refused_because(x, &ca, 1, NOW, 1, "signature does not verify");
	x509_cert_free(x);
	/* A flipped bit in the signature. */
	{
		uint8_t *der = NULL;
		size_t len = 0;

		ck_assert_int_eq(x509_cert_to_der(c, &der, &len), MDM_OK);
		der[len - 5] ^= 0x04;
		ck_assert_int_eq(x509_cert_from_der(der, len, &x), MDM_OK);
		refused_because(x, &ca, 1, NOW, 1, "signature does not verify");
		x509_cert_free(x);
		free(der);
	}
	/* No clientAuth: refused for TLS client authentication only. */
	x = resign(c, cak, drop_eku);
	refused_because(x, &ca, 1, NOW, 1, "no extendedKeyUsage clientAuth");
	ck_assert_int_eq(x509_verify_issued(x, &ca, 1, NOW, 0, NULL), MDM_OK);
	x509_cert_free(x);
	x = resign(c, cak, eku_server_only);
	refused_because(x, &ca, 1, NOW, 1, "no extendedKeyUsage clientAuth");
	x509_cert_free(x);
	x = resign(c, cak, ku_encipher_only);
	refused_because(x, &ca, 1, NOW, 1, "keyUsage lacks digitalSignature");
	x509_cert_free(x);
	/* An unknown critical extension; a CA posing as a device. */
	x = resign(c, cak, unknown_critical);
	refused_because(x, &ca, 1, NOW, 0, "unsupported critical extension");
	x509_cert_free(x);
	x = resign(c, cak, make_ca);
	refused_because(x, &ca, 1, NOW, 0, "is a CA");
	x509_cert_free(x);
	refused_because(ca, &ca, 1, NOW, 0, "is a CA");
	/* No CAs at all; a NULL in the list is skipped. */
	refused_because(c, NULL, 0, NOW, 1, "unknown issuer");
	both[0] = NULL;
	ck_assert_int_eq(x509_verify_issued(c, both, 2, NOW, 1, NULL), MDM_OK);
	ck_assert_int_eq(x509_verify_issued(NULL, both, 2, NOW, 1, NULL), MDM_ERR_INVAL);
	logcap_stop();
	x509_cert_free(twin);
	x509_cert_free(foreign);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(dk);
	x509_key_free(k2);
	x509_key_free(cak);
}
END_TEST

/* ---- CRL ---- */

START_TEST(crl_build_and_openssl_reads_it)
{
	EVP_PKEY *cak = load_key("ca.key");
	X509 *ca = ca_new(cak, NOW - DAY, 3650);
	const struct x509_revoked rev[] = {
	        {"1A2B3C", NOW - 3600, 1},      /* keyCompromise */
	        {"00deadbeef", NOW - 7200, -1}, /* lower case, leading zeros */
	        {"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NOW, 4}, /* 20 octets, superseded */
	};
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509_CRL *crl;
	ASN1_INTEGER *num;
	char dir[64], path[128], capath[128], out[8192];

	ck_assert_int_eq(x509_crl_build(ca, cak, rev, 3, NOW, 7, &der, &len), MDM_OK);
	p = der;
	ck_assert_ptr_nonnull(crl = d2i_X509_CRL(NULL, &p, (long)len));
	ck_assert_ptr_eq(p, der + len);
	ck_assert_int_eq(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	ck_assert_int_eq(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)), 0);
	assert_time(X509_CRL_get0_lastUpdate(crl), NOW);
	assert_time(X509_CRL_get0_nextUpdate(crl), NOW + 7 * DAY);
	ck_assert_int_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3);
	ck_assert_ptr_nonnull(num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL));
	ck_assert_int_eq(ASN1_INTEGER_get(num), (long)NOW);
	ASN1_INTEGER_free(num);
	ck_assert_int_ge(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1), 0);
	X509_CRL_free(crl);
	/* openssl reads it, lists the serials and reasons, and verifies it. */
	tmpdir_new(dir);
	snprintf(path, sizeof(path), "%s/ca.crl", dir);
	snprintf(capath, sizeof(capath), "%s/ca.pem", dir);
	spit(path, der, len);
	write_pem(capath, ca);
	ck_assert_int_eq(
	        run(out, sizeof(out), "openssl crl -inform DER -in '%s' -noout -text", path), 0);
	ck_assert_msg(strstr(out, "Version 2") != NULL, "%s", out);
	ck_assert(strstr(out, "Serial Number: 1A2B3C") != NULL);
	ck_assert(strstr(out, "Serial Number: DEADBEEF") != NULL);
	ck_assert(strstr(out, "Serial Number: 7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF") != NULL);
	ck_assert(strstr(out, "Key Compromise") != NULL);
	ck_assert(strstr(out, "Superseded") != NULL);
	ck_assert(strstr(out, "X509v3 CRL Number") != NULL);
	ck_assert(strstr(out, "X509v3 Authority Key Identifier") != NULL);
	ck_assert(strstr(out, "sha256WithRSAEncryption") != NULL);
	ck_assert_int_eq(
	        run(out, sizeof(out), "openssl crl -inform DER -in '%s' -CAfile '%s' -noout", path,
	                capath),
	        0);
	ck_assert_msg(strstr(out, "verify OK") != NULL, "%s", out);
	tmpdir_done(dir);
	free(der);
	/* An empty CRL is a CRL. */
	ck_assert_int_eq(x509_crl_build(ca, cak, NULL, 0, NOW, 1, &der, &len), MDM_OK);
	ck_assert_uint_gt(len, 0);
	free(der);
	x509_cert_free(ca);
	x509_key_free(cak);
}
END_TEST

START_TEST(crl_refusals)
{
	EVP_PKEY *cak = load_key("ca.key"), *other = load_key("ca2.key");
	X509 *ca = ca_new(cak, NOW - DAY, 3650);
	uint8_t *der = (uint8_t *)1;
	size_t len = 1;
	static const char *const bad_serials[] = {
	        "", "0", "000", "xyz", "-1", "12 34", "0x12",
	        "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF0", /* 41 digits */
	};
	struct x509_revoked r = {"01", NOW, -1};

	log_set_level(MDM_LOG__MAX);
	for (size_t i = 0; i < sizeof(bad_serials) / sizeof(bad_serials[0]); i++) {
		r.serial_hex = bad_serials[i];
		ck_assert_msg(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len) == MDM_ERR_INVAL,
		        "%s", bad_serials[i]);
		ck_assert_ptr_null(der);
		ck_assert_uint_eq(len, 0);
	}
	r.serial_hex = NULL;
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	r.serial_hex = "01";
	for (int reason = -2; reason <= 11; reason++) {
		mdm_err want = (reason < -1 || reason == 7 || reason == 8 || reason > 10)
		        ? MDM_ERR_INVAL
		        : MDM_OK;

		r.reason = reason;
		ck_assert_msg(
		        x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len) == want, "%d", reason);
		if (want == MDM_OK)
			free(der);
	}
	r.reason = -1;
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 0, &der, &len), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, X509_MAX_CRL_DAYS + 1, &der, &len),
	        MDM_ERR_INVAL);
	ck_assert_int_eq(x509_crl_build(ca, cak, NULL, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_crl_build(ca, other, &r, 1, NOW, 7, &der, &len), MDM_ERR_CONFIG);
	ck_assert_int_eq(
	        x509_crl_build(ca, cak, &r, 1, NOW + 3651 * DAY, 7, &der, &len), MDM_ERR_CONFIG);
	ck_assert_int_eq(x509_crl_build(NULL, cak, &r, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	x509_cert_free(ca);
	x509_key_free(other);
	x509_key_free(cak);
}
END_TEST

/*
 * Found by fuzz/certrep_fuzz.c (fuzz/regress/certrep): a revocation time
 * after 9999-12-31T23:59:59Z (PostgreSQL timestamps go to 294276 AD) has
 * no GeneralizedTime (RFC 5280 section 4.1.2.5.2: four-digit years), so
 * x509_crl_build failed on it and took the whole CRL down, while
 * x509_crl_entry_ok, which GetCRL asks to leave such rows out, said 1.
 */
START_TEST(crl_entry_time_past_9999)
{
	EVP_PKEY *cak = load_key("ca.key");
	X509 *ca = ca_new(cak, NOW - DAY, 3650);
	uint8_t *der = NULL;
	size_t len = 0;
	const char *why = NULL;
	struct x509_revoked r = {"01", (time_t)253402300799LL, 4}; /* 9999-12-31T23:59:59Z */

	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_crl_entry_ok(&r, &why), 1);
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len), MDM_OK);
	free(der);
	der = NULL;
	r.revoked_at = (time_t)253402300800LL; /* 10000-01-01T00:00:00Z */
	ck_assert_int_eq(x509_crl_entry_ok(&r, &why), 0);
	ck_assert_ptr_nonnull(strstr(why, "RFC 5280 section 4.1.2.5.2"));
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	r.revoked_at = (time_t)0x00FFFF0060000000LL; /* the fuzzer's input */
	ck_assert_int_eq(x509_crl_entry_ok(&r, &why), 0);
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	x509_cert_free(ca);
	x509_key_free(cak);
}
END_TEST

/* ---- real vectors ---- */

/* The vectors' directory, or NULL (and a message) when they are absent. */
static const char *vectors(void)
{
	static char dir[512];
	const char *env = getenv("MDM_VECTORS");
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", env != NULL && env[0] != '\0' ? env : "../shared/vectors");
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "x509: vectors not found at %s (set MDM_VECTORS): skipped\n", dir);
		return NULL;
	}
	return dir;
}

START_TEST(vector_scep_testca)
{
	const char *v = vectors();
	char crt[640], key[640], dir[64], plain[128], out[1024];
	EVP_PKEY *k = NULL;
	X509 *ca = NULL;
	struct x509_info info;

	if (v == NULL)
		return;
	snprintf(crt, sizeof(crt), "%s/scep/testdata/testca/ca.crt", v);
	snprintf(key, sizeof(key), "%s/scep/testdata/testca/ca.key", v);
	ck_assert_int_eq(x509_cert_load_file(crt, &ca), MDM_OK);
	ck_assert_int_eq(x509_cert_info(ca, &info), MDM_OK);
	ck_assert_str_eq(info.subject, "OU=CA,O=etcd-ca,C=USA");
	ck_assert_str_eq(info.issuer, info.subject);
	ck_assert_str_eq(info.serial, "1");
	ck_assert_int_eq(info.not_before, 1464529625); /* 2016-05-29T13:47:05Z */
	ck_assert_int_eq(info.not_after, 1780062428);  /* 2026-05-29T13:47:08Z */
	ck_assert_int_eq(info.is_ca, 1);
	/* The key is PEM-encrypted (empty passphrase): refused without a prompt. */
	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_key_load(key, &k), MDM_ERR_UNSUPPORTED);
	/* Decrypted, it is the certificate's key. */
	tmpdir_new(dir);
	snprintf(plain, sizeof(plain), "%s/ca.key", dir);
	ck_assert_int_eq(
	        run(out, sizeof(out), "openssl pkey -passin pass: -in '%s' -out '%s'", key, plain),
	        0);
	ck_assert_int_eq(x509_key_load(plain, &k), MDM_OK);
	ck_assert_int_eq(EVP_PKEY_get_bits(k), 4096);
	ck_assert_int_eq(x509_key_matches_cert(k, ca), 1);
	tmpdir_done(dir);
	x509_key_free(k);
	x509_cert_free(ca);
}
END_TEST

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = malloc(65536);

	ck_assert_ptr_nonnull(fp);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, 65536, fp);
	fclose(fp);
	return buf;
}

START_TEST(vector_macos_csr)
{
	const char *v = vectors();
	char path[640], subject[256], plain[128], dir[64], out[1024], *ch = (char *)1;
	uint8_t *der;
	size_t len, which = 99;
	X509_REQ *csr = NULL;
	X509 *ca = NULL, *c = NULL;
	EVP_PKEY *k = NULL;
	struct x509_issue_policy p = {365, 2048, 0};
	const time_t t2020 = 1577836800; /* inside the vector CA's validity */

	if (v == NULL)
		return;
	snprintf(path, sizeof(path), "%s/_derived/scep/PKCSReq.der.decrypted-csr.der", v);
	der = read_all(path, &len);
	/* Version 2 (macOS quirk) accepted; SHA-1 signature verifies. */
	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	ck_assert_int_eq(X509_REQ_get_version(csr), 2);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	ck_assert_int_eq(x509_csr_subject(csr, subject, sizeof(subject)), MDM_OK);
	ck_assert_str_eq(
	        subject, "CN=com.apple.security.scep.063D7953-1338-4BF0-8F99-913382996224");
	ck_assert_int_eq(x509_csr_rsa_bits(csr), 1024);
	ck_assert_int_eq(x509_csr_challenge(csr, &ch), MDM_ERR_NOT_FOUND);
	ck_assert_ptr_null(ch);
	/* Trailing garbage after the real DER. */
	log_set_level(MDM_LOG__MAX);
	{
		X509_REQ *bad = (X509_REQ *)1;

		der[len] = 0;
		ck_assert_int_eq(x509_csr_from_der(der, len + 1, &bad), MDM_ERR_PARSE);
		ck_assert_ptr_null(bad);
	}
	/* Issued by the vector CA: refused at 2048 bits, accepted at 1024. */
	snprintf(path, sizeof(path), "%s/scep/testdata/testca/ca.crt", v);
	ck_assert_int_eq(x509_cert_load_file(path, &ca), MDM_OK);
	tmpdir_new(dir);
	snprintf(plain, sizeof(plain), "%s/ca.key", dir);
	snprintf(path, sizeof(path), "%s/scep/testdata/testca/ca.key", v);
	ck_assert_int_eq(
	        run(out, sizeof(out), "openssl pkey -passin pass: -in '%s' -out '%s'", path, plain),
	        0);
	ck_assert_int_eq(x509_key_load(plain, &k), MDM_OK);
	ck_assert_int_eq(x509_issue(ca, k, csr, &p, t2020, &c), MDM_ERR_FORBIDDEN);
	p.min_rsa_bits = 1024;
	ck_assert_int_eq(x509_issue(ca, k, csr, &p, t2020, &c), MDM_OK);
	ck_assert_int_eq(x509_csr_key_matches_cert(csr, c), 1);
	ck_assert_int_eq(x509_csr_subject_matches_cert(csr, c), 1);
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, t2020, 1, &which), MDM_OK);
	ck_assert_uint_eq(which, 0);
	/* The vector CA expired on 2026-05-29. */
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, &which), MDM_ERR_AUTH);
	tmpdir_done(dir);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(k);
	x509_csr_free(csr);
	free(der);
}
END_TEST

/* ---- PKCS#11 (SoftHSM through the pkcs11 engine) ---- */

static const char *softhsm_module(void)
{
	static const char *const paths[] = {
	        "/usr/lib/softhsm/libsofthsm2.so",
	        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	        "/usr/local/lib/softhsm/libsofthsm2.so",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

START_TEST(pkcs11_softhsm_key)
{
	const char *module = softhsm_module();
	char dir[64], conf[128], out[4096], capath[128], path[128];
	EVP_PKEY *hk = NULL, *dk = load_key("device.key"), *fk = load_key("ca.key");
	X509 *ca = NULL, *c = NULL;
	uint8_t *crl = NULL;
	size_t crllen = 0;
	struct x509_revoked r = {"0A", NOW, 1};

	if (module == NULL ||
	        run(NULL, 0, "command -v softhsm2-util && command -v pkcs11-tool") != 0 ||
	        run(NULL, 0, "openssl engine pkcs11 -t") != 0) {
		fprintf(stderr,
		        "x509: pkcs11 test skipped: needs softhsm2, opensc (pkcs11-tool) and "
		        "libengine-pkcs11-openssl\n");
		x509_key_free(fk);
		x509_key_free(dk);
		return;
	}
	tmpdir_new(dir);
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	snprintf(out, sizeof(out),
	        "directories.tokendir = %s\nobjectstore.backend = file\n"
	        "log.level = ERROR\n",
	        dir);
	spit(conf, out, strlen(out));
	ck_assert_int_eq(setenv("SOFTHSM2_CONF", conf, 1), 0);
	ck_assert_int_eq(setenv("PKCS11_MODULE_PATH", module, 1), 0);
	ck_assert_int_eq(run(out, sizeof(out),
	                         "softhsm2-util --init-token --free --label mdmtest --pin 1234 "
	                         "--so-pin 5678"),
	        0);
	ck_assert_int_eq(
	        run(out, sizeof(out),
	                "pkcs11-tool --module '%s' --token-label mdmtest --login --pin 1234 "
	                "--keypairgen --key-type rsa:2048 --id 01 --label ca",
	                module),
	        0);
	/* Without a PIN, with a wrong one, or a missing object: refused, never a prompt. */
	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(
	        x509_key_load("pkcs11:token=mdmtest;object=ca;type=private", &hk), MDM_ERR_CRYPTO);
	ck_assert_int_eq(
	        x509_key_load("pkcs11:token=mdmtest;object=ca;type=private?pin-value=0000", &hk),
	        MDM_ERR_CRYPTO);
	/* The PIN from a file (keeps it out of the URI), then logged in for the process. */
	snprintf(path, sizeof(path), "%s/pin", dir);
	spit(path, "1234", 4);
	snprintf(out, sizeof(out), "pkcs11:token=mdmtest;object=ca;type=private?pin-source=file:%s",
	        path);
	ck_assert_int_eq(x509_key_load(out, &hk), MDM_OK);
	x509_key_free(hk);
	hk = NULL;
	ck_assert_int_eq(
	        x509_key_load("pkcs11:token=mdmtest;object=none;type=private?pin-value=1234", &hk),
	        MDM_ERR_CRYPTO);
	ck_assert_ptr_null(hk);
	log_set_level(MDM_LOG_INFO);
	ck_assert_int_eq(
	        x509_key_load("pkcs11:token=mdmtest;object=ca;type=private?pin-value=1234", &hk),
	        MDM_OK);
	/* The HSM key as CA key: create, issue, verify, CRL. */
	ca = ca_new(hk, NOW, 3650);
	ck_assert_int_eq(x509_key_matches_cert(hk, ca), 1);
	ck_assert_int_eq(x509_key_matches_cert(fk, ca), 0);
	c = issue(ca, hk, dk, NOW);
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, NULL), MDM_OK);
	ck_assert_int_eq(x509_crl_build(ca, hk, &r, 1, NOW, 7, &crl, &crllen), MDM_OK);
	snprintf(capath, sizeof(capath), "%s/ca.pem", dir);
	snprintf(path, sizeof(path), "%s/dev.pem", dir);
	write_pem(capath, ca);
	write_pem(path, c);
	ck_assert_int_eq(run(out, sizeof(out),
	                         "openssl verify -purpose sslclient -attime %lld -CAfile '%s' '%s'",
	                         (long long)NOW, capath, path),
	        0);
	/* A key that lives in the token cannot be written out. */
	log_set_level(MDM_LOG__MAX);
	snprintf(path, sizeof(path), "%s/exported.key", dir);
	ck_assert_int_ne(x509_key_write_pem(hk, path), MDM_OK);
	ck_assert_int_ne(access(path, F_OK), 0);
	tmpdir_done(dir);
	free(crl);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(hk);
	x509_key_free(fk);
	x509_key_free(dk);
}
END_TEST

Suite *x509_suite(void)
{
	Suite *s = suite_create("x509");
	TCase *tc;

	tc = tcase_create("fingerprint");
	tcase_add_test(tc, fingerprint_matches_openssl);
	tcase_add_test(tc, refuses_non_certificates);
	suite_add_tcase(s, tc);

	tc = tcase_create("certificates");
	tcase_add_test(tc, cert_encodings_round_trip);
	tcase_add_test(tc, cert_der_is_strict);
	tcase_add_test(tc, cert_pem_is_strict);
	tcase_add_test(tc, cert_info_edge_cases);
	suite_add_tcase(s, tc);

	/* Key generation, openssl runs and SoftHSM take seconds under sanitizers. */
	tc = tcase_create("keys");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, key_load_forms);
	tcase_add_test(tc, key_load_never_prompts);
	tcase_add_test(tc, key_generate_write_and_match);
	tcase_add_test(tc, pkcs11_softhsm_key);
	suite_add_tcase(s, tc);

	tc = tcase_create("csr");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, csr_parse_and_inspect);
	tcase_add_test(tc, csr_der_is_strict);
	tcase_add_test(tc, csr_version_quirk);
	tcase_add_test(tc, csr_bad_signature_refused);
	tcase_add_test(tc, csr_challenge_forms);
	tcase_add_test(tc, csr_challenge_must_be_single);
	tcase_add_test(tc, csr_matches_cert);
	suite_add_tcase(s, tc);

	tc = tcase_create("ca");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ca_create_profile);
	tcase_add_test(tc, ca_create_subject_and_refusals);
	tcase_add_test(tc, ca_validity_past_2049);
	tcase_add_test(tc, ca_renew_and_rekey);
	tcase_add_test(tc, issue_profile_and_openssl_verify);
	tcase_add_test(tc, scep_responder_profile);
	tcase_add_test(tc, issue_validity_capped_to_ca);
	tcase_add_test(tc, issue_refusals);
	tcase_add_test(tc, issue_copies_allowed_sans);
	tcase_add_test(tc, issue_refuses_other_sans);
	tcase_add_test(tc, verify_refusals_say_why);
	tcase_add_test(tc, crl_build_and_openssl_reads_it);
	tcase_add_test(tc, crl_refusals);
	tcase_add_test(tc, crl_entry_time_past_9999);
	suite_add_tcase(s, tc);

	tc = tcase_create("vectors");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, vector_scep_testca);
	tcase_add_test(tc, vector_macos_csr);
	suite_add_tcase(s, tc);
	return s;
}
