/*
 * What the x509 unit tests share (tests/unit/test_x509*.c): the fixed
 * clock, the key files, a log capture, and CSRs, CAs and certificates
 * made for a test.  Names start with xt_ (x509 tests); files, scratch
 * directories and runs of the openssl command line are tests/support's
 * (ts_sys.h, included here).  Each test file adds its tests to the
 * tcases that x509_tcases (test_x509.c) makes.
 */
#ifndef MDM_TEST_X509_TESTUTIL_H
#define MDM_TEST_X509_TESTUTIL_H

#include "log.h"
#include "suites.h"
#include "ts_sys.h"
#include "x509.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DATA "tests/unit/data/x509/"
#define NOW  ((time_t)1800000000) /* 2027-01-15T08:00:00Z */
#define DAY  ((time_t)86400)

extern const struct x509_issue_policy xt_default_policy;

/* A key file of DATA, loaded with x509_key_load. */
EVP_PKEY *xt_load_key(const char *name);
void xt_write_pem(const char *path, const X509 *c);

/* Records logged while a test runs, to check that refusals say why. */
void xt_logcap_start(void);
/* 1 if the records since the last call contain needle; then forgets them. */
int xt_logcap_take(const char *needle);
void xt_logcap_stop(void);

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
X509_REQ *xt_req_build(EVP_PKEY *k, const struct req_opts *o);
uint8_t *xt_req_der(X509_REQ *r, size_t *len);
/* A CSR as the module sees it: built, encoded, parsed back. */
X509_REQ *xt_csr_new(EVP_PKEY *k, const struct req_opts *o);
X509 *xt_ca_new(EVP_PKEY *k, time_t now, int days);
/* A device certificate for devkey issued by ca under xt_default_policy. */
X509 *xt_issue(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *devkey, time_t now);
/* A certificate made directly with OpenSSL: serial bytes (negative if neg), n OU entries. */
X509 *xt_raw_cert(EVP_PKEY *k, const unsigned char *serial, int slen, int neg, int n_ou);

/* The tests of each file, added to the tcase x509_tcases made for them. */
void x509_key_tests(TCase *tc);
void x509_csr_tests(TCase *tc);
void x509_issue_tests(TCase *tc);
void x509_chain_tests(TCase *tc);

#endif
