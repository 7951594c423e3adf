/* The shared real captures, read in place (vectors.h). */
#include "vectors.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define VECTOR_MAX (1u << 20)

const char *vector_dir(void)
{
	const char *dir = getenv("MDM_VECTORS");
	struct stat st;

	if (dir == NULL || *dir == '\0')
		dir = "../shared/vectors";
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir : NULL;
}

const char *vector_path(const char *who, const char *rel, char *buf, size_t cap)
{
	const char *dir = vector_dir();
	struct stat st;
	int n;

	if (dir == NULL) {
		printf("%s: shared vectors not found (set MDM_VECTORS); %s skipped\n", who, rel);
		return NULL;
	}
	n = snprintf(buf, cap, "%s/%s", dir, rel);
	ck_assert(n > 0 && (size_t)n < cap);
	if (stat(buf, &st) != 0 || !S_ISREG(st.st_mode)) {
		printf("%s: vector %s missing; skipped\n", who, buf);
		return NULL;
	}
	return buf;
}

uint8_t *vector_read(const char *who, const char *rel, size_t *len)
{
	char path[4096];
	uint8_t *buf;
	FILE *fp;

	*len = 0;
	if (vector_path(who, rel, path, sizeof(path)) == NULL)
		return NULL;
	ck_assert_ptr_nonnull(fp = fopen(path, "rb"));
	ck_assert_ptr_nonnull(buf = malloc(VECTOR_MAX));
	*len = fread(buf, 1, VECTOR_MAX, fp);
	fclose(fp);
	ck_assert_uint_lt(*len, VECTOR_MAX);
	buf[*len] = '\0'; /* a plist or PEM can be read as a string */
	return buf;
}
