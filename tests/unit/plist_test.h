/*
 * What the plist unit tests (tests/unit/test_plist*.c) share: Apple's
 * document header and footer, the fixture directory, and the parse,
 * serialize and refusal checks, defined in test_plist.c.
 */
#ifndef MDM_TEST_PLIST_H
#define MDM_TEST_PLIST_H

#include <check.h>
#include <stddef.h>

#include "errors.h"
#include "plist.h"
#include "ts_check.h"

#define FIXTURES "tests/unit/data/plist"

#define HDR                                                                                        \
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                             \
	"<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "                                  \
	"\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"                                    \
	"<plist version=\"1.0\">\n"
#define FTR "</plist>\n"

/* A file read whole (at most PLIST_MAX_BYTES + 1 bytes); NULL when it cannot be opened. */
char *pt_read_file(const char *path, size_t *lenp);
/* Parsed with no message; the tree is the caller's. */
plist *pt_parse_ok(const char *buf, size_t len);
plist *pt_parse_str_ok(const char *s);
/* Serialized, *lenp the length; free(3). */
char *pt_serialize_ok(const plist *p, size_t *lenp);
void pt_check_roundtrip(const plist *t, const char *what);
void pt_check_refused_len(const char *buf, size_t len, mdm_err want, const char *msg);
void pt_check_refused(const char *doc, mdm_err want, const char *msg);

/* The tcases of test_plist_parse.c and test_plist_write.c, for plist_tcases. */
void plist_parse_tcases(Suite *s);
void plist_write_tcases(Suite *s);

#endif
