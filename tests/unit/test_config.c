/* config: the key table, the strict file parser, environment overrides. */
#include "config.h"
#include "log.h"
#include "mdm_limits.h"
#include "suites.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every file a test writes, removed by teardown (a test writes several). */
#define TMP_FILES 32
static char tmp_paths[TMP_FILES][64];
static int n_tmp;

static const char *write_tmp(const char *text, size_t len)
{
	char *path;
	int fd;

	ck_assert_int_lt(n_tmp, TMP_FILES);
	path = tmp_paths[n_tmp];
	snprintf(path, sizeof(tmp_paths[0]), "/tmp/mdm-config-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	n_tmp++;
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

static void setup(void)
{
	unsetenv("MDM_DB");
	unsetenv("MDM_LOG_LEVEL");
	unsetenv("MDM_CONFIG");
	log_set_level(MDM_LOG__MAX); /* the refusals below log; keep the output quiet */
}

static void teardown(void)
{
	while (n_tmp > 0)
		unlink(tmp_paths[--n_tmp]);
}

static mdm_err load_text(const char *text, config **c)
{
	return config_load_file(write_tmp(text, strlen(text)), 1, c);
}

START_TEST(defaults)
{
	config *c = NULL;

	ck_assert_int_eq(config_load_file("/nonexistent/mdm.conf", 0, &c), MDM_OK);
	ck_assert_str_eq(config_get0(c, "db"), "dbname=mdm");
	ck_assert_str_eq(config_get0(c, "log_level"), "info");
	ck_assert_str_eq(config_source0(c, "db"), "default");
	ck_assert_ptr_null(config_get0(c, "no_such_key"));
	config_free(c);
}
END_TEST

START_TEST(file_then_env)
{
	config *c = NULL;

	ck_assert_int_eq(load_text("# comment\n\n  db =  host=/x dbname=y  \r\n"
	                           "log_level=debug\n",
	                         &c),
	        MDM_OK);
	ck_assert_str_eq(config_get0(c, "db"), "host=/x dbname=y");
	ck_assert_str_eq(config_get0(c, "log_level"), "debug");
	ck_assert_str_eq(config_source0(c, "db"), "file");
	config_free(c);

	setenv("MDM_DB", "dbname=fromenv", 1);
	ck_assert_int_eq(load_text("db = dbname=fromfile\n", &c), MDM_OK);
	ck_assert_str_eq(config_get0(c, "db"), "dbname=fromenv");
	ck_assert_str_eq(config_source0(c, "db"), "env");
	config_free(c);
}
END_TEST

START_TEST(mdm_config_names_the_file)
{
	config *c = NULL;

	setenv("MDM_CONFIG", write_tmp("log_level = warn\n", 17), 1);
	ck_assert_int_eq(config_load(&c), MDM_OK);
	ck_assert_str_eq(config_get0(c, "log_level"), "warn");
	config_free(c);
	/* A file named explicitly must exist. */
	setenv("MDM_CONFIG", "/nonexistent/mdm.conf", 1);
	ck_assert_int_eq(config_load(&c), MDM_ERR_CONFIG);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(refusals)
{
	static const char *const bad[] = {
	        "unknown_key = 1\n",          /* a typo never falls back to a default */
	        "db = a\ndb = b\n",           /* set twice */
	        "db\n",                       /* no '=' */
	        " = value\n",                 /* no key */
	        "log_level = info\nDB = x\n", /* keys are lower case */
	};
	config *c = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(load_text(bad[i], &c) != MDM_OK, "accepted: %s", bad[i]);
		ck_assert_ptr_null(c);
	}
	ck_assert_int_ne(config_load_file(write_tmp("db = a\0b\n", 9), 1, &c), MDM_OK);
	ck_assert_int_ne(config_load_file("/nonexistent/mdm.conf", 1, &c), MDM_OK);
	ck_assert_int_ne(config_load_file("/tmp", 1, &c), MDM_OK);
}
END_TEST

/* Reads what log records were written to fd since offset 0. */
static void read_log(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	buf[n > 0 ? (size_t)n : 0] = '\0';
}

START_TEST(retired_key_names_its_replacement)
{
	char logpath[] = "/tmp/mdm-config-log-XXXXXX", buf[4096];
	int fd = mkstemp(logpath);
	config *c = NULL;

	ck_assert_int_ge(fd, 0);
	unlink(logpath);
	log_set_level(MDM_LOG_ERROR);
	log_set_fd(fd);
	/* In a file: refused, and the log says what replaced it. */
	ck_assert_int_eq(load_text("scep_signer_subject = strict\n", &c), MDM_ERR_CONFIG);
	ck_assert_ptr_null(c);
	read_log(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "scep_signer_subject"));
	ck_assert_ptr_nonnull(strstr(buf, "replaced by scep_signer_match"));
	/* In the environment: refused too, never silently ignored. */
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	setenv("MDM_SCEP_SIGNER_SUBJECT", "key", 1);
	ck_assert_int_eq(config_load_file("/nonexistent/mdm.conf", 0, &c), MDM_ERR_CONFIG);
	ck_assert_ptr_null(c);
	unsetenv("MDM_SCEP_SIGNER_SUBJECT");
	read_log(fd, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "MDM_SCEP_SIGNER_SUBJECT"));
	ck_assert_ptr_nonnull(strstr(buf, "scep_signer_match"));
	log_set_fd(-1);
	log_set_level(MDM_LOG__MAX);
	close(fd);
	/* Its successor: none by default (Apple devices), key and key+subject opt in. */
	ck_assert_int_eq(config_load_file("/nonexistent/mdm.conf", 0, &c), MDM_OK);
	ck_assert_str_eq(config_get0(c, "scep_signer_match"), "none");
	/* SignMessage on: the only identity behind a TLS-terminating load balancer. */
	ck_assert_str_eq(config_get0(c, "mdm_sign_message"), "yes");
	config_free(c);
}
END_TEST

START_TEST(limits)
{
	size_t n = CONFIG_MAX_VALUE + 16;
	char *text = malloc(n + 8);
	config *c = NULL;

	ck_assert_ptr_nonnull(text);
	memcpy(text, "db = ", 5);
	memset(text + 5, 'x', n - 6);
	text[n - 1] = '\n';
	text[n] = '\0';
	ck_assert_int_eq(load_text(text, &c), MDM_ERR_LIMIT);
	free(text);

	text = calloc(1, CONFIG_MAX_FILE + 2);
	ck_assert_ptr_nonnull(text);
	memset(text, '#', CONFIG_MAX_FILE + 1);
	ck_assert_int_eq(
	        config_load_file(write_tmp(text, CONFIG_MAX_FILE + 1), 1, &c), MDM_ERR_LIMIT);
	free(text);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(dump_hides_secrets)
{
	config *c = NULL;
	char buf[4096];
	FILE *fp = tmpfile();
	size_t n;

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(load_text("db = host=/x password=hunter2\n", &c), MDM_OK);
	ck_assert_int_eq(config_dump(c, fp), MDM_OK);
	rewind(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	ck_assert_ptr_null(strstr(buf, "hunter2"));
	ck_assert_ptr_nonnull(strstr(buf, "db = (secret, set)"));
	ck_assert_ptr_nonnull(strstr(buf, "log_level = info"));
	config_free(c);
}
END_TEST

/* Issue 13: key locations (a pkcs11: URI may carry pin-value) are secrets too. */
START_TEST(dump_hides_key_uris)
{
	static const char *const keys[] = {
	        "db", "scep_challenge", "ra_key", "profile_signer_key", "enroll_token"};
	config *c = NULL;
	char buf[8192];
	FILE *fp = tmpfile();
	size_t n;

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(load_text("ra_key = pkcs11:token=ra;object=k?pin-value=1234\n"
	                           "profile_signer_key = /etc/mdm/signer-secret-path.key\n"
	                           "scep_challenge = static-challenge-0123456789\n"
	                           "enroll_token = enroll-token-0123456789\n",
	                         &c),
	        MDM_OK);
	ck_assert_int_eq(config_dump(c, fp), MDM_OK);
	rewind(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	ck_assert_ptr_null(strstr(buf, "pin-value"));
	ck_assert_ptr_null(strstr(buf, "signer-secret-path"));
	ck_assert_ptr_null(strstr(buf, "static-challenge"));
	ck_assert_ptr_null(strstr(buf, "enroll-token-"));
	ck_assert_ptr_nonnull(strstr(buf, "ra_key = (secret, set)"));
	for (size_t i = 0; i < config_key_count(); i++)
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strcmp(config_key_at(i)->name, keys[k]) == 0)
				ck_assert_msg(
				        config_key_at(i)->secret, "%s is not secret", keys[k]);
	config_free(c);
}
END_TEST

/* A file of the repository, whole (the tests run from its root). */
static char *repo_file(const char *path)
{
	char *buf = NULL;
	size_t len = 0;

	ck_assert_msg(config_file_read(path, "repository file", 1 << 20, 0, &buf, &len) == MDM_OK,
	        "%s not found (run from the repository root)", path);
	return buf;
}

/* docs/CONFIG.md documents every key (run from the repository root). */
START_TEST(every_key_documented)
{
	char *doc = repo_file("docs/CONFIG.md");

	for (size_t i = 0; i < config_key_count(); i++) {
		const struct config_key *k = config_key_at(i);
		char head[96], env[96];
		size_t j;

		snprintf(head, sizeof(head), "### `%s`", k->name);
		ck_assert_msg(strstr(doc, head) != NULL, "%s is not documented", k->name);
		snprintf(env, sizeof(env), "MDM_%s", k->name);
		for (j = 4; env[j]; j++)
			env[j] = (char)(env[j] >= 'a' && env[j] <= 'z' ? env[j] - 32 : env[j]);
		ck_assert_msg(strstr(doc, env) != NULL, "%s is not documented", env);
	}
	ck_assert_ptr_null(config_key_at(config_key_count()));
	free(doc);
}
END_TEST

/*
 * The commented configuration the package installs as /etc/mdm/mdm.conf
 * (dist/mdm.conf.in) lists every key, commented out, with its default.
 */
START_TEST(every_key_in_the_commented_config)
{
	char *conf = repo_file("dist/mdm.conf.in");

	for (size_t i = 0; i < config_key_count(); i++) {
		const struct config_key *k = config_key_at(i);
		const char *v = k->default_value ? k->default_value : "";
		char line[600], dflt[512];

		/* A default under DATADIR is written @DATADIR@/..., filled in by make install. */
		if (strncmp(v, MDM_DATADIR "/", strlen(MDM_DATADIR) + 1) == 0)
			snprintf(dflt, sizeof(dflt), "@DATADIR@%s", v + strlen(MDM_DATADIR));
		else
			snprintf(dflt, sizeof(dflt), "%s", v);
		snprintf(line, sizeof(line), "\n#%s =%s%s\n", k->name, *dflt ? " " : "", dflt);
		ck_assert_msg(strstr(conf, line) != NULL,
		        "dist/mdm.conf.in lacks the line \"#%s =%s%s\" (commented, with the "
		        "default)",
		        k->name, *dflt ? " " : "", dflt);
	}
	free(conf);
}
END_TEST

void config_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "load", 0, setup, teardown);

	ts_add_tests(tc, defaults, file_then_env, mdm_config_names_the_file, refusals,
	        retired_key_names_its_replacement, limits, dump_hides_secrets, dump_hides_key_uris,
	        every_key_documented, every_key_in_the_commented_config);
}
