/*
 * What lib/plist.c (the tree), lib/plist_parse.c (the parser) and
 * lib/plist_write.c (the writer) share: the node layout, which callers
 * outside them never see (plist.h keeps struct plist opaque), and the
 * helpers more than one of them needs.  Included by lib/plist*.c only.
 */
#ifndef MDM_PLIST_INT_H
#define MDM_PLIST_INT_H

#include <stddef.h>
#include <stdint.h>

#include "plist.h"

struct plist_kv {
	char *key;
	size_t keylen;
	plist *val;
};

struct plist {
	enum plist_type type;
	union {
		struct {
			char *s; /* always NUL-terminated */
			size_t len;
		} str;
		struct {
			uint8_t *p; /* NULL when empty */
			size_t len;
		} data;
		struct {
			int64_t s;
			uint64_t u;
			int big; /* above INT64_MAX: only u is meaningful */
		} num;
		double real;
		int boolean;
		int64_t date;
		struct {
			plist **v;
			size_t n, cap;
		} arr;
		struct {
			struct plist_kv *kv;
			size_t n, cap;
		} dict;
	} u;
};

/* A zeroed node of type t (plist.c); NULL when out of memory. */
plist *plist_alloc(enum plist_type t);
/* Appends without looking for the key; takes key and val only on success. */
MDM_WUR mdm_err plist_dict_push(plist *dict, char *key, size_t keylen, plist *val);

/*
 * Text checks the parser and the writer both apply (plist.c): the length
 * of the well-formed UTF-8 sequence at s (0 when there is none), and
 * whether a code point is an XML 1.0 character.
 */
size_t plist_utf8_len(const unsigned char *s, size_t n, uint32_t *cp);
int plist_xml_char(uint32_t c);

#endif
