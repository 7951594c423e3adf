/* The stand-in for Apple's attestation service: see ts_attest.h. */
#include "ts_attest.h"

#include <cbor.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DAY 86400L

static void fail(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	fprintf(stderr, "ts_attest: %s%s%s\n", what, *buf ? ": " : "", buf);
	ERR_clear_error();
}

static int path_in(char *buf, size_t cap, const char *dir, const char *file)
{
	int n = snprintf(buf, cap, "%s/%s", dir, file);

	if (n < 0 || (size_t)n >= cap) {
		fail("path too long");
		return -1;
	}
	return 0;
}

static X509 *read_cert(const char *dir, const char *file)
{
	char path[4096];
	FILE *fp;
	X509 *x;

	if (path_in(path, sizeof(path), dir, file) != 0)
		return NULL;
	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "ts_attest: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	if (x == NULL)
		fail(path);
	return x;
}

EVP_PKEY *ts_attest_read_key(const char *path)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *k;

	if (fp == NULL) {
		fprintf(stderr, "ts_attest: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	k = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	if (k == NULL) {
		ERR_clear_error();
		rewind(fp);
		k = PEM_read_PrivateKey(fp, NULL, NULL, (void *)"");
	}
	fclose(fp);
	if (k == NULL)
		fail("no PEM public or private key");
	return k;
}

static int write_cert(const char *dir, const char *file, X509 *x)
{
	char path[4096];
	FILE *fp;
	int ok;

	if (path_in(path, sizeof(path), dir, file) != 0 || (fp = fopen(path, "w")) == NULL) {
		fail("cannot write a certificate");
		return -1;
	}
	ok = PEM_write_X509(fp, x) == 1;
	ok = fclose(fp) == 0 && ok;
	if (!ok)
		fail(path);
	return ok ? 0 : -1;
}

static int write_key(const char *dir, const char *file, EVP_PKEY *k)
{
	char path[4096];
	FILE *fp;
	int fd, ok;

	if (path_in(path, sizeof(path), dir, file) != 0 ||
	        (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	        (fp = fdopen(fd, "w")) == NULL) {
		fail("cannot write a key");
		return -1;
	}
	ok = PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL) == 1;
	ok = fclose(fp) == 0 && ok;
	if (!ok)
		fail(path);
	return ok ? 0 : -1;
}

static EVP_PKEY *read_key_in(const char *dir, const char *file)
{
	char path[4096];

	if (path_in(path, sizeof(path), dir, file) != 0)
		return NULL;
	return ts_attest_read_key(path);
}

/* A name of (field, value) pairs, NULL-terminated. */
static X509_NAME *name_of(const char *const *kv)
{
	X509_NAME *n = X509_NAME_new();

	for (size_t i = 0; n != NULL && kv[i] != NULL; i += 2) {
		if (X509_NAME_add_entry_by_txt(n, kv[i], MBSTRING_UTF8,
		            (const unsigned char *)kv[i + 1], -1, -1, 0) != 1) {
			X509_NAME_free(n);
			return NULL;
		}
	}
	return n;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	return ok;
}

/* A raw extension: extnValue's OCTET STRING holds value itself, as Apple's do. */
static int add_raw_ext(X509 *x, const char *oid, const uint8_t *value, size_t len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e = NULL;
	int ok = 0;

	if (obj != NULL && os != NULL && ASN1_OCTET_STRING_set(os, value, (int)len) == 1 &&
	        (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL)
		ok = X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return ok;
}

static int add_text_ext(X509 *x, const char *oid, const char *value)
{
	if (value == NULL || *value == '\0')
		return 1;
	return add_raw_ext(x, oid, (const uint8_t *)value, strlen(value));
}

static int set_serial_random(X509 *x)
{
	uint8_t b[8];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return 0;
	b[0] &= 0x7f;
	b[0] |= 0x01;
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		return 0;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

/* A certificate for pub with subject and issuer, valid from..to (Unix time). */
static X509 *cert_new(EVP_PKEY *pub, const X509_NAME *subject, const X509_NAME *issuer,
        long long from, long long to)
{
	X509 *x = X509_new();

	if (x == NULL || X509_set_version(x, 2) != 1 || !set_serial_random(x) ||
	        X509_set_subject_name(x, subject) != 1 || X509_set_issuer_name(x, issuer) != 1 ||
	        X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &(time_t){(time_t)from}) == NULL ||
	        X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &(time_t){(time_t)to}) == NULL ||
	        X509_set_pubkey(x, pub) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static EVP_PKEY *p384_new(void)
{
	return EVP_EC_gen("P-384");
}

int ts_attest_ca_init(const char *dir)
{
	static const char *const root_kv[] = {
	        "CN", TS_ATTEST_ROOT_CN, "O", "Stand-in (tests)", "C", "US", NULL};
	static const char *const sub_kv[] = {
	        "CN", TS_ATTEST_SUB_CN, "O", "Stand-in (tests)", "C", "US", NULL};
	EVP_PKEY *rk = NULL, *sk = NULL;
	X509_NAME *rn = NULL, *sn = NULL;
	X509 *root = NULL, *sub = NULL;
	long long now = (long long)time(NULL);
	int rc = -1;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "ts_attest: mkdir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if ((rk = p384_new()) == NULL || (sk = p384_new()) == NULL ||
	        (rn = name_of(root_kv)) == NULL || (sn = name_of(sub_kv)) == NULL) {
		fail("P-384 keys");
		goto out;
	}
	if ((root = cert_new(rk, rn, rn, now - DAY, now + 20 * 365 * DAY)) == NULL ||
	        !add_ext(root, root, NID_basic_constraints, "critical,CA:TRUE") ||
	        !add_ext(root, root, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	        !add_ext(root, root, NID_subject_key_identifier, "hash") ||
	        X509_sign(root, rk, EVP_sha384()) <= 0) {
		fail("the stand-in root");
		goto out;
	}
	if ((sub = cert_new(sk, sn, rn, now - DAY, now + 10 * 365 * DAY)) == NULL ||
	        !add_ext(sub, root, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	        !add_ext(sub, root, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	        !add_ext(sub, root, NID_subject_key_identifier, "hash") ||
	        !add_ext(sub, root, NID_authority_key_identifier, "keyid:always") ||
	        X509_sign(sub, rk, EVP_sha384()) <= 0) {
		fail("the stand-in intermediate");
		goto out;
	}
	if (write_cert(dir, TS_ATTEST_ROOT, root) != 0 ||
	        write_key(dir, TS_ATTEST_ROOT_KEY, rk) != 0 ||
	        write_cert(dir, TS_ATTEST_SUB, sub) != 0 ||
	        write_key(dir, TS_ATTEST_SUB_KEY, sk) != 0)
		goto out;
	rc = 0;
out:
	X509_free(root);
	X509_free(sub);
	X509_NAME_free(rn);
	X509_NAME_free(sn);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(sk);
	return rc;
}

X509 *ts_attest_sub(const char *dir)
{
	return read_cert(dir, TS_ATTEST_SUB);
}

/* The leaf's CN: hex of SHA-256 of its public key, like Apple's 64 hex digits. */
static int leaf_cn(EVP_PKEY *pub, char out[65])
{
	unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
	int n = i2d_PUBKEY(pub, &der);

	if (n <= 0)
		return 0;
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 1;
}

static const char *dflt(const char *v, const char *d)
{
	return v == NULL ? d : v;
}

X509 *ts_attest_leaf(const char *dir, EVP_PKEY *pub, const struct ts_attest_opts *o)
{
	static const uint8_t der_int0[] = {0x02, 0x01, 0x00};
	const char *os = dflt(o->os, "17.0");
	const char *kv[] = {
	        "CN", NULL, "OU", "AAA Certification", "O", "Apple Inc.", "ST", "California", NULL};
	long long now = o->now != 0 ? o->now : (long long)time(NULL);
	long long from = now - 60, to = now + (o->days > 0 ? o->days : 90) * DAY;
	uint8_t nonce[SHA256_DIGEST_LENGTH];
	X509 *sub = NULL, *leaf = NULL;
	EVP_PKEY *sk = NULL;
	X509_NAME *name = NULL;
	char cn[65];
	int ok = 0;

	if (o->expired) {
		from = now - 91 * DAY;
		to = now - DAY;
	}
	if ((sub = ts_attest_sub(dir)) == NULL ||
	        (sk = read_key_in(dir, TS_ATTEST_SUB_KEY)) == NULL)
		goto out;
	if (!leaf_cn(pub, cn) || (kv[1] = cn, name = name_of(kv)) == NULL) {
		fail("the leaf's name");
		goto out;
	}
	SHA256(o->token != NULL ? o->token : (const uint8_t *)"", o->token_len, nonce);
	if (o->wrong_nonce)
		nonce[0] ^= 0x01;
	/* The real leaf's extensions, in its order. */
	if ((leaf = cert_new(pub, name, X509_get_subject_name(sub), from, to)) == NULL ||
	        !add_ext(leaf, sub, NID_basic_constraints, "critical,CA:FALSE") ||
	        !add_ext(leaf, sub, NID_key_usage,
	                "critical,digitalSignature,nonRepudiation,keyEncipherment,"
	                "dataEncipherment") ||
	        !add_text_ext(leaf, "1.2.840.113635.100.8.10.2", os) ||
	        !add_text_ext(leaf, "1.2.840.113635.100.8.10.3", os) ||
	        !add_text_ext(leaf, "1.2.840.113635.100.8.10.1", os) ||
	        !add_text_ext(leaf, "1.2.840.113635.100.8.9.4", dflt(o->model, "D84AP")))
		goto fail;
	if (o->macos &&
	        (!add_text_ext(leaf, "1.2.840.113635.100.8.13.2", "Full Security") ||
	                !add_raw_ext(
	                        leaf, "1.2.840.113635.100.8.13.1", der_int0, sizeof(der_int0)) ||
	                !add_raw_ext(
	                        leaf, "1.2.840.113635.100.8.13.3", der_int0, sizeof(der_int0))))
		goto fail;
	if (!add_text_ext(leaf, "1.2.840.113635.100.8.9.1", dflt(o->serial, "STANDIN0001")) ||
	        !add_text_ext(leaf, "1.2.840.113635.100.8.9.2",
	                dflt(o->udid, "00008030-000000000000001E")) ||
	        (!o->no_nonce &&
	                !add_raw_ext(leaf, "1.2.840.113635.100.8.11.1", nonce, sizeof(nonce))) ||
	        X509_sign(leaf, sk, EVP_sha384()) <= 0)
		goto fail;
	ok = 1;
	goto out;
fail:
	fail("the attestation leaf");
out:
	if (!ok) {
		X509_free(leaf);
		leaf = NULL;
	}
	X509_NAME_free(name);
	X509_free(sub);
	EVP_PKEY_free(sk);
	return leaf;
}

static cbor_item_t *cert_bytes(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	cbor_item_t *b;

	if (n <= 0)
		return NULL;
	b = cbor_build_bytestring(der, (size_t)n);
	OPENSSL_free(der);
	return b;
}

static int map_put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
	cbor_item_t *k = cbor_build_string(key);
	int ok = k != NULL && value != NULL &&
	        cbor_map_add(map, (struct cbor_pair){.key = k, .value = value});

	if (k != NULL)
		cbor_decref(&k);
	if (value != NULL)
		cbor_decref(&value);
	return ok;
}

uint8_t *ts_attest_cbor(const char *fmt, X509 *const *x5c, size_t n, const uint8_t *auth_data,
        size_t auth_len, size_t *len)
{
	cbor_item_t *top = cbor_new_definite_map(3), *stmt = cbor_new_definite_map(1);
	cbor_item_t *arr = cbor_new_definite_array(n);
	unsigned char *buf = NULL;
	size_t cap = 0;
	int ok = top != NULL && stmt != NULL && arr != NULL;

	*len = 0;
	for (size_t i = 0; ok && i < n; i++) {
		cbor_item_t *b = cert_bytes(x5c[i]);

		ok = b != NULL && cbor_array_push(arr, b);
		if (b != NULL)
			cbor_decref(&b);
	}
	if (ok && fmt != NULL)
		ok = map_put(top, "fmt", cbor_build_string(fmt));
	if (ok) {
		ok = map_put(stmt, "x5c", arr);
		arr = NULL;
	}
	if (ok) {
		ok = map_put(top, "attStmt", stmt);
		stmt = NULL;
	}
	if (ok && auth_data != NULL)
		ok = map_put(top, "authData", cbor_build_bytestring(auth_data, auth_len));
	if (ok)
		*len = cbor_serialize_alloc(top, &buf, &cap);
	if (!ok || *len == 0) {
		fprintf(stderr, "ts_attest: CBOR encoding failed\n");
		free(buf);
		buf = NULL;
		*len = 0;
	}
	if (arr != NULL)
		cbor_decref(&arr);
	if (stmt != NULL)
		cbor_decref(&stmt);
	if (top != NULL)
		cbor_decref(&top);
	return buf;
}

uint8_t *ts_attest_object(
        const char *dir, EVP_PKEY *pub, const struct ts_attest_opts *o, size_t *len)
{
	X509 *x5c[2] = {NULL, NULL};
	uint8_t *obj = NULL;

	*len = 0;
	if ((x5c[0] = ts_attest_leaf(dir, pub, o)) != NULL && (x5c[1] = ts_attest_sub(dir)) != NULL)
		obj = ts_attest_cbor("apple", x5c, 2, NULL, 0, len);
	X509_free(x5c[0]);
	X509_free(x5c[1]);
	return obj;
}
