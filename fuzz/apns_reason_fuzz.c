/*
 * libFuzzer target for Apple's APNs error body parser: whatever parses
 * gives a reason of 1..APNS_MAX_REASON letters and digits; anything else
 * leaves the output empty.
 *
 * Build settings for scripts/fuzz.sh.
 * fuzz-max-len: 2048
 * fuzz-dict: "reason"
 * fuzz-dict: "timestamp"
 * fuzz-dict: "BadDeviceToken"
 * fuzz-dict: "{\"reason\":\""
 */
#include "apns.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reason[APNS_MAX_REASON + 1];
	size_t n;

	if (apns_reason_parse((const char *)data, size, reason) != MDM_OK) {
		if (reason[0] != '\0')
			abort();
		return 0;
	}
	n = strlen(reason);
	if (n == 0 || n > APNS_MAX_REASON)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((reason[i] >= 'A' && reason[i] <= 'Z') ||
		            (reason[i] >= 'a' && reason[i] <= 'z') ||
		            (reason[i] >= '0' && reason[i] <= '9')))
			abort();
	return 0;
}
