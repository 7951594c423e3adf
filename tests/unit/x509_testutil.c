/* The x509 unit tests' shared helpers (x509_testutil.h). */
#include "x509_testutil.h"

#include <openssl/objects.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct x509_issue_policy xt_default_policy = {365, 2048, 0};

EVP_PKEY *xt_load_key(const char *name)
{
	EVP_PKEY *k = NULL;
	char path[256];

	snprintf(path, sizeof(path), DATA "%s", name);
	ck_assert_int_eq(x509_key_load(path, &k), MDM_OK);
	ck_assert_ptr_nonnull(k);
	return k;
}

void xt_write_pem(const char *path, const X509 *c)
{
	char *pem = NULL;
	size_t len = 0;

	ck_assert_int_eq(x509_cert_to_pem(c, &pem, &len), MDM_OK);
	ts_file_write(path, pem, len);
	free(pem);
}

static FILE *logcap;

void xt_logcap_start(void)
{
	ck_assert_ptr_nonnull(logcap = tmpfile());
	log_set_level(MDM_LOG_DEBUG);
	log_set_fd(fileno(logcap));
}

int xt_logcap_take(const char *needle)
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

void xt_logcap_stop(void)
{
	log_set_fd(-1);
	fclose(logcap);
	logcap = NULL;
}

X509_REQ *xt_req_build(EVP_PKEY *k, const struct req_opts *o)
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

uint8_t *xt_req_der(X509_REQ *r, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(r, &der);

	ck_assert_int_gt(n, 0);
	*len = (size_t)n;
	return der;
}

/* A CSR as the module sees it: built, encoded, parsed back. */
X509_REQ *xt_csr_new(EVP_PKEY *k, const struct req_opts *o)
{
	X509_REQ *r = xt_req_build(k, o), *csr = NULL;
	size_t len;
	uint8_t *der = xt_req_der(r, &len);

	ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
	OPENSSL_free(der);
	X509_REQ_free(r);
	return csr;
}

X509 *xt_ca_new(EVP_PKEY *k, time_t now, int days)
{
	X509 *ca = NULL;

	ck_assert_int_eq(x509_ca_create(k, "/CN=MDM Test CA/O=Example", days, now, &ca), MDM_OK);
	ck_assert_ptr_nonnull(ca);
	return ca;
}

X509 *xt_issue(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *devkey, time_t now)
{
	struct req_opts o = {.cn = "device-1"};
	X509_REQ *csr = xt_csr_new(devkey, &o);
	X509 *c = NULL;

	ck_assert_int_eq(x509_issue(ca, cakey, csr, &xt_default_policy, now, &c), MDM_OK);
	x509_csr_free(csr);
	return c;
}

X509 *xt_raw_cert(EVP_PKEY *k, const unsigned char *serial, int slen, int neg, int n_ou)
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
