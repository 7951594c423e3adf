/*
 * libFuzzer target for the ACME device-attest-01 attestation object
 * (attest.h): attest_parse over the input, attest_leaf_properties over the
 * leaf it yields, and the whole attest_verify_apple against the shipped
 * Apple Enterprise Attestation Root CA (MDM_SRCDIR, set by
 * scripts/fuzz.sh), the clock fixed.  Every promise of attest.h must hold:
 * MDM_ERR_LIMIT whenever the input is over MDM_ATTEST_MAX_BYTES, on
 * MDM_OK 1 to ATTEST_MAX_X5C certificates of 1 to ATTEST_MAX_CERT bytes
 * lying inside the input, outputs cleared on any refusal, the leaf's
 * strings NUL-terminated printable text, nothing left on the OpenSSL error
 * queue.  Seeds: tests/unit/data/attest (stand-in objects).
 *
 * Build settings for scripts/fuzz.sh.
 * fuzz-max-len: 66000
 * fuzz-dict: "fmt"
 * fuzz-dict: "attStmt"
 * fuzz-dict: "x5c"
 * fuzz-dict: "authData"
 * fuzz-dict: "apple"
 */
#include "attest.h"
#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1754006400LL /* 2025-08-01 */

static attest_trust *trust;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX);
	if (attest_trust_load(MDM_SRCDIR "/share/apple-enterprise-attestation-root.pem", &trust) !=
	        MDM_OK) {
		fprintf(stderr, "attest_fuzz: set-up failed (run from the repository root)\n");
		abort();
	}
	return 0;
}

static int inside(const uint8_t *p, size_t len, const uint8_t *data, size_t size)
{
	return p >= data && p <= data + size && len <= (size_t)(data + size - p);
}

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			abort();
}

static void check_result(const attest_result *r)
{
	check_text(r->serial, sizeof(r->serial));
	check_text(r->udid, sizeof(r->udid));
	check_text(r->os_version, sizeof(r->os_version));
	check_text(r->sepos_version, sizeof(r->sepos_version));
	check_text(r->llb_version, sizeof(r->llb_version));
	check_text(r->model, sizeof(r->model));
	check_text(r->secure_boot, sizeof(r->secure_boot));
	if (r->nonce_len > sizeof(r->nonce) || r->spki_der == NULL || r->spki_len == 0)
		abort();
	if (r->sip_enabled < ATTEST_PROP_ABSENT || r->sip_enabled > 1 ||
	        r->kext_allowed < ATTEST_PROP_ABSENT || r->kext_allowed > 1)
		abort();
}

static int cleared(const attest_result *r)
{
	return r->spki_der == NULL && r->chain_pem == NULL && r->serial[0] == '\0' &&
	        r->nonce_len == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	attest_object o;
	attest_result r;
	char err[256];
	mdm_err rc = attest_parse(data, size, &o, err, sizeof(err));

	if (size > MDM_ATTEST_MAX_BYTES && rc != MDM_ERR_LIMIT)
		abort();
	if (rc == MDM_OK) {
		if (o.n_x5c == 0 || o.n_x5c > ATTEST_MAX_X5C)
			abort();
		for (size_t i = 0; i < o.n_x5c; i++)
			if (o.x5c_len[i] == 0 || o.x5c_len[i] > ATTEST_MAX_CERT ||
			        !inside(o.x5c[i], o.x5c_len[i], data, size))
				abort();
		if (o.auth_data != NULL &&
		        (o.auth_data_len > ATTEST_MAX_AUTHDATA ||
		                !inside(o.auth_data, o.auth_data_len, data, size)))
			abort();
		if (attest_leaf_properties(o.x5c[0], o.x5c_len[0], &r, err, sizeof(err)) ==
		        MDM_OK) {
			check_result(&r);
			if (r.chain_pem != NULL)
				abort();
		} else if (!cleared(&r)) {
			abort();
		}
		attest_result_free(&r);
	} else if (o.n_x5c != 0 || o.auth_data != NULL) {
		abort();
	}
	rc = attest_verify_apple(
	        trust, data, size, (const uint8_t *)"token", 5, FUZZ_NOW, &r, err, sizeof(err));
	if (rc == MDM_OK) {
		check_result(&r);
		if (r.chain_pem == NULL || r.nonce_len != ATTEST_NONCE_LEN)
			abort();
	} else if (!cleared(&r)) {
		abort();
	}
	attest_result_free(&r);
	if (ERR_peek_error() != 0)
		abort();
	return 0;
}
