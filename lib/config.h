/*
 * One configuration source for every program.
 *
 * The file named by the environment variable MDM_CONFIG (default
 * /etc/mdm/mdm.conf; a missing default file is not an error) holds
 * `key = value` lines.  Every key KEY is overridden by the environment
 * variable MDM_<KEY> (upper case).  Keys are a fixed, documented table
 * (docs/CONFIG.md); an unknown or duplicated key in the file is an error
 * so a typo never silently falls back to a default.
 */
#ifndef MDM_CONFIG_H
#define MDM_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "errors.h"

#define CONFIG_DEFAULT_PATH "/etc/mdm/mdm.conf"

struct config_key {
	const char *name;          /* file key; MDM_<NAME> in the environment */
	const char *default_value; /* NULL: unset unless configured */
	int secret;                /* never printed or logged */
	const char *doc;           /* one line; docs/CONFIG.md says more */
};

typedef struct config config;

/* MDM_CONFIG or the default path, then the environment. */
MDM_WUR mdm_err config_load(config **out);
/* An explicit file (required unless path_required is 0), then the environment. */
MDM_WUR mdm_err config_load_file(const char *path, int path_required, config **out);
void config_free(config *c);

/* The value of a known key (NULL when unset); NULL for an unknown key. */
const char *config_get0(const config *c, const char *key);
/*
 * Reads the whole of the regular file at path into a NUL-terminated buffer
 * (*out, the caller's to free), refusing one over max bytes before
 * allocating (MDM_ERR_LIMIT); what names the file in messages ("the
 * configuration file", a key's name).  secret: refused when others may
 * read or write it, and zeroed before it is freed on failure.
 * MDM_ERR_NOT_FOUND, with nothing logged, when it does not exist.
 */
MDM_WUR mdm_err config_file_read(
        const char *path, const char *what, size_t max, int secret, char **out, size_t *outlen);

/* Where a key's value came from: "default", "file", "env" or "unset". */
const char *config_source0(const config *c, const char *key);

size_t config_key_count(void);
const struct config_key *config_key_at(size_t i);

/* key = value for every key, secrets shown as "(secret, set)"; never logged. */
MDM_WUR mdm_err config_dump(const config *c, FILE *fp);

/*
 * Typed reads, logged once on a bad value (MDM_ERR_CONFIG): a yes/no key
 * (unset is no), and a whole number in lo..hi (unset is an error).
 */
MDM_WUR mdm_err config_get_bool(const config *c, const char *key, int *out);
MDM_WUR mdm_err config_get_int(const config *c, const char *key, int lo, int hi, int *out);

#endif
