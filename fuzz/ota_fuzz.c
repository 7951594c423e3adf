/*
 * libFuzzer target for ota_msg_parse (OTA enrollment phases 2 and 3: the
 * POST body of enroll.fcgi).  The trust store is the shipped
 * share/apple-ota-trust.pem (MDM_SRCDIR, set by scripts/fuzz.sh); our CA is a throw-away one made
 * at start-up (so a signer "issued by us" takes the phase-3 path), the clock fixed. Every promise
 * of ota.h must hold: MDM_ERR_LIMIT exactly when the input is over CMS_MAX_SIGNED_MESSAGE, the
 * message filled only on MDM_OK (a phase, a valid UDID, attributes as JSON, a challenge in phase
 * 2), cleared otherwise, nothing left on the OpenSSL error queue.
 *
 * Build settings for scripts/fuzz.sh.
 * fuzz-max-len: 66000
 * fuzz-seeds: zentral/tests/mdm/testdata/ota_playload_phase_2
 * fuzz-dict: "<key>UDID</key>"
 * fuzz-dict: "<key>CHALLENGE</key>"
 */
#include "cms.h"
#include "config.h"
#include "log.h"
#include "ota.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ota_trust *trust;
static struct x509_st *ca;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct evp_pkey_st *key = NULL;
	config *cfg = NULL;

	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX);
	setenv("MDM_OTA_TRUST_FILE", MDM_SRCDIR "/share/apple-ota-trust.pem", 1);
	if (config_load_file(NULL, 0, &cfg) != MDM_OK || ota_trust_load(cfg, &trust) != MDM_OK ||
	        x509_key_generate_rsa(2048, &key) != MDM_OK ||
	        x509_ca_create(key, "/CN=Fuzz CA", 30, 1672531200, &ca) != MDM_OK) {
		fprintf(stderr, "ota_fuzz: set-up failed (run from the repository root)\n");
		abort();
	}
	x509_key_free(key);
	config_free(cfg);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ota_msg m;
	mdm_err rc;

	rc = ota_msg_parse(data, size, trust, &ca, 1, 1672531200, &m);
	if ((rc == MDM_ERR_LIMIT) != (size > CMS_MAX_SIGNED_MESSAGE))
		abort();
	if (rc == MDM_OK) {
		if ((m.phase != OTA_PHASE2 && m.phase != OTA_PHASE3) || m.signer == NULL ||
		        !identity_id_valid(m.udid) || m.attrs_json == NULL ||
		        m.attrs_json[0] != '{' || (m.phase == OTA_PHASE2 && m.challenge == NULL))
			abort();
	} else if (m.signer != NULL || m.challenge != NULL || m.attrs_json != NULL) {
		abort();
	}
	if (ERR_peek_error() != 0)
		abort();
	ota_msg_clear(&m);
	return 0;
}
