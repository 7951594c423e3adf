/*
 * Loads the environment file of tests/e2e/ENV.md.  The file is written by
 * tests/run.sh, but a hand-edited copy is read the same way, so every line
 * is checked and the whole file refused on the first bad one:
 *   - blank lines and lines starting with '#' are skipped;
 *   - otherwise NAME='value': NAME one of E2E_*, MDM_*, PKCS11_MODULE_PATH,
 *     P11_KIT_SERVER_ADDRESS (letters, digits, '_'), each at most once;
 *   - the value is one or more single-quoted pieces, with \' between them
 *     for a quote (the shell's 'it'\''s'); nothing else, no trailing bytes;
 *   - no NUL byte, no line over E2E_ENV_MAX_LINE bytes, at most
 *     E2E_ENV_MAX_VARS variables.
 * Only when all of it parses is anything set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "e2e_env.h"

#define E2E_ENV_MAX_LINE 4096
#define E2E_ENV_MAX_VARS 256

struct env_var {
	char *name;
	char *value;
};

static int name_allowed(const char *name, size_t len)
{
	static const char *const exact[] = {"PKCS11_MODULE_PATH", "P11_KIT_SERVER_ADDRESS"};
	size_t i;

	for (i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		            c == '_'))
			return 0;
	}
	if ((len > 4 && strncmp(name, "E2E_", 4) == 0) ||
	        (len > 4 && strncmp(name, "MDM_", 4) == 0))
		return 1;
	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strlen(exact[i]) == len && strncmp(name, exact[i], len) == 0)
			return 1;
	return 0;
}

/* Unquotes src (the text after '=') into dst, which has room for it. */
static const char *unquote(const char *src, char *dst)
{
	size_t n = 0;

	if (*src != '\'')
		return "the value must be single-quoted";
	while (*src != '\0') {
		if (*src == '\'') {
			const char *end = strchr(src + 1, '\'');

			if (end == NULL)
				return "unterminated quote";
			memcpy(dst + n, src + 1, (size_t)(end - src - 1));
			n += (size_t)(end - src - 1);
			src = end + 1;
		} else if (src[0] == '\\' && src[1] == '\'' && src[2] == '\'') {
			dst[n++] = '\'';
			src += 2;
		} else {
			return "only quoted pieces and \\' may follow '='";
		}
	}
	dst[n] = '\0';
	return NULL;
}

/* Parses one line (without its newline) into v; the rule broken, or NULL. */
static const char *parse_line(const char *line, struct env_var *v)
{
	const char *eq = strchr(line, '=');
	const char *why;
	size_t nlen;

	if (eq == NULL)
		return "not NAME='value'";
	nlen = (size_t)(eq - line);
	if (!name_allowed(line, nlen))
		return "the name is not E2E_*, MDM_* or a PKCS#11 variable";
	v->name = strndup(line, nlen);
	v->value = malloc(strlen(eq + 1) + 1);
	if (v->name == NULL || v->value == NULL)
		return "out of memory";
	why = unquote(eq + 1, v->value);
	return why;
}

int e2e_env_load(const char *path)
{
	struct env_var vars[E2E_ENV_MAX_VARS];
	size_t nvars = 0, cap = 0, i, lineno = 0;
	char *line = NULL;
	const char *why = NULL;
	ssize_t len;
	FILE *f = NULL;
	int ok = 0;

	f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		return 0;
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len > E2E_ENV_MAX_LINE) {
			why = "line too long";
			goto out;
		}
		if (strlen(line) != (size_t)len) {
			why = "NUL byte in the line";
			goto out;
		}
		if (len == 0 || line[0] == '#')
			continue;
		if (nvars == E2E_ENV_MAX_VARS) {
			why = "too many variables";
			goto out;
		}
		vars[nvars].name = vars[nvars].value = NULL;
		why = parse_line(line, &vars[nvars]);
		nvars++;
		if (why != NULL)
			goto out;
		for (i = 0; i + 1 < nvars; i++) {
			if (strcmp(vars[i].name, vars[nvars - 1].name) == 0) {
				why = "the name is set twice";
				goto out;
			}
		}
	}
	if (ferror(f)) {
		perror(path);
		lineno = 0;
		goto out;
	}
	for (i = 0; i < nvars; i++) {
		if (setenv(vars[i].name, vars[i].value, 1) != 0) {
			perror("setenv");
			lineno = 0;
			goto out;
		}
	}
	ok = 1;
out:
	if (why != NULL)
		fprintf(stderr, "%s:%zu: refused: %s (tests/e2e/ENV.md)\n", path, lineno, why);
	for (i = 0; i < nvars; i++) {
		free(vars[i].name);
		free(vars[i].value);
	}
	free(line);
	fclose(f);
	return ok;
}
