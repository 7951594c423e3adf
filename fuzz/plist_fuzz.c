/*
 * libFuzzer target for the plist parser: whatever parses must serialize,
 * parse again to an equal tree and serialize to the same bytes.  A
 * mismatch aborts: that is a bug in the parser or the writer.
 *
 * Build settings for scripts/fuzz.sh.  Seeds: the shared vectors holding
 * a plist, and tests/unit/data/plist.  The dictionary is at the end.
 * fuzz-max-len: 65536
 * fuzz-vectors: <plist
 */
#include "plist.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what, const char *err)
{
	fprintf(stderr, "plist_fuzz: %s%s%s\n", what, err != NULL ? ": " : "",
	        err != NULL ? err : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], *s1 = NULL, *s2 = NULL;
	size_t n1 = 0, n2 = 0;
	plist *p = NULL, *q = NULL;
	mdm_err e;

	if (plist_parse_ex((const char *)data, size, &p, err, sizeof(err)) != MDM_OK) {
		if (p != NULL)
			fuzz_fail("tree returned on failure", err);
		if (strncmp(err, "plist: ", 7) != 0)
			fuzz_fail("refusal without a message", err);
		return 0;
	}
	if ((e = plist_serialize(p, &s1, &n1)) != MDM_OK)
		fuzz_fail("parsed tree does not serialize", err_str(e));
	if (plist_parse_ex(s1, n1, &q, err, sizeof(err)) != MDM_OK)
		fuzz_fail("serialized tree does not parse", err);
	if (!plist_equal(p, q))
		fuzz_fail("tree changed in a round trip", NULL);
	if ((e = plist_serialize(q, &s2, &n2)) != MDM_OK)
		fuzz_fail("reparsed tree does not serialize", err_str(e));
	if (n1 != n2 || memcmp(s1, s2, n1) != 0)
		fuzz_fail("second serialization differs", NULL);
	free(s1);
	free(s2);
	plist_free(p);
	plist_free(q);
	return 0;
}

/*
 * libFuzzer dictionary, one token per line (scripts/fuzz.sh extracts it).
 * fuzz-dict: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
 * fuzz-dict: "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"x\">"
 * fuzz-dict: "<plist version=\"1.0\">"
 * fuzz-dict: "</plist>"
 * fuzz-dict: "<dict>"
 * fuzz-dict: "</dict>"
 * fuzz-dict: "<dict/>"
 * fuzz-dict: "<key>"
 * fuzz-dict: "</key>"
 * fuzz-dict: "<array>"
 * fuzz-dict: "</array>"
 * fuzz-dict: "<array/>"
 * fuzz-dict: "<string>"
 * fuzz-dict: "</string>"
 * fuzz-dict: "<integer>"
 * fuzz-dict: "</integer>"
 * fuzz-dict: "<real>"
 * fuzz-dict: "</real>"
 * fuzz-dict: "<date>"
 * fuzz-dict: "</date>"
 * fuzz-dict: "<data>"
 * fuzz-dict: "</data>"
 * fuzz-dict: "<true/>"
 * fuzz-dict: "<false/>"
 * fuzz-dict: "<![CDATA["
 * fuzz-dict: "]]>"
 * fuzz-dict: "<!--"
 * fuzz-dict: "-->"
 * fuzz-dict: "<!ENTITY"
 * fuzz-dict: "&amp;"
 * fuzz-dict: "&#13;"
 * fuzz-dict: "&#x"
 * fuzz-dict: "xmlns:"
 * fuzz-dict: "2018-06-30T13:46:38Z"
 * fuzz-dict: "18446744073709551615"
 * fuzz-dict: "-9223372036854775808"
 * fuzz-dict: "1e308"
 * fuzz-dict: "-infinity"
 * fuzz-dict: "YQ=="
 * fuzz-dict: "\xef\xbb\xbf"
 */
