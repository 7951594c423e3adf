/*
 * libFuzzer target for check-in messages (checkin_parse: the plist parser
 * plus the allow-list of MessageTypes, keys, types and identifiers).
 * Whatever it accepts must name a known MessageType and a valid UDID, and
 * carry the keys its type requires.
 *
 * Build settings for scripts/fuzz.sh.  Seeds: the real check-in plists.
 * fuzz-max-len: 65536
 * fuzz-vectors: MessageType
 * fuzz-dict: "Authenticate"
 * fuzz-dict: "TokenUpdate"
 * fuzz-dict: "CheckOut"
 * fuzz-dict: "UserAuthenticate"
 * fuzz-dict: "SetBootstrapToken"
 * fuzz-dict: "<key>UDID</key>"
 * fuzz-dict: "<key>UserID</key>"
 * fuzz-dict: "<key>Token</key><data>"
 */
#include "checkin.h"
#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(MDM_LOG__MAX); /* quiet: the library logs every refusal */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct checkin_msg *m = NULL;
	char err[256];

	if (checkin_parse(data, size, &m, err, sizeof(err)) != MDM_OK) {
		if (m != NULL || err[0] == '\0') {
			fprintf(stderr,
			        "checkin_fuzz: refusal without a reason or with a message\n");
			abort();
		}
		return 0;
	}
	if ((unsigned)m->type >= CHECKIN__MAX || !identity_id_valid(m->udid) ||
	        (m->user_id != NULL && !identity_id_valid(m->user_id)) ||
	        (m->type == CHECKIN_TOKEN_UPDATE && (m->token == NULL || m->push_magic == NULL)) ||
	        (m->type == CHECKIN_AUTHENTICATE && (m->topic == NULL || m->user_id != NULL))) {
		fprintf(stderr, "checkin_fuzz: accepted a message that breaks the rules\n");
		abort();
	}
	checkin_msg_free(m);
	return 0;
}
