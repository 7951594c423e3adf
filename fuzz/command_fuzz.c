/*
 * libFuzzer target for command reports (command_report_parse: the plist
 * parser plus the Status allow-list, identifiers and ErrorChain), and the
 * JSON every accepted report is stored as: it must be produced.
 *
 * Build settings for scripts/fuzz.sh.  Seeds: the real command answers.
 * fuzz-max-len: 65536
 * fuzz-vectors: <key>Status</key>
 * fuzz-dict: "Acknowledged"
 * fuzz-dict: "NotNow"
 * fuzz-dict: "CommandFormatError"
 * fuzz-dict: "<key>CommandUUID</key>"
 * fuzz-dict: "<key>ErrorChain</key><array>"
 */
#include "command.h"
#include "log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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
	struct command_report *r = NULL;
	char err[256], *json = NULL;
	size_t len;

	if (command_report_parse(data, size, &r, err, sizeof(err)) != MDM_OK) {
		if (r != NULL || err[0] == '\0') {
			fprintf(stderr,
			        "command_fuzz: refusal without a reason or with a report\n");
			abort();
		}
		return 0;
	}
	if ((unsigned)r->status >= COMMAND__MAX || !identity_id_valid(r->udid) ||
	        (r->status != COMMAND_IDLE && r->command_uuid == NULL) ||
	        plist_to_json(r->root, &json, &len) != MDM_OK || len == 0) {
		fprintf(stderr, "command_fuzz: accepted a report that breaks the rules\n");
		abort();
	}
	free(json);
	command_report_free(r);
	return 0;
}
