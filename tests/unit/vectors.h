/*
 * The real captures in ../shared/vectors (MDM_VECTORS, which tests/run.sh
 * sets): read in place, never copied into the tree.  Where they are
 * absent (a user's clone) each case says so on stdout and is skipped.
 */
#ifndef MDM_TEST_VECTORS_H
#define MDM_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

/* The vectors directory, or NULL (silently) when it is absent. */
const char *vector_dir(void);
/*
 * The path of rel under the vectors directory in buf, or NULL (with a
 * note naming who and rel) when the directory or the file is absent.
 */
const char *vector_path(const char *who, const char *rel, char *buf, size_t cap);
/*
 * The whole file (under 1 MiB, malloc'd, a NUL after its *len bytes), or
 * NULL and a note as vector_path.
 */
uint8_t *vector_read(const char *who, const char *rel, size_t *len);

#endif
