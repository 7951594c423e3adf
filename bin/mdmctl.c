/*
 * mdmctl: the operator's command line.  Reads the same configuration as
 * the FastCGI programs (MDM_CONFIG, MDM_<KEY>).
 *
 *   mdmctl db migrate     apply the schema migrations not yet applied
 *   mdmctl db status      print the applied and the latest schema version
 *   mdmctl config show    print the effective configuration (secrets hidden)
 *   mdmctl config keys    list every configuration key with its meaning
 *   mdmctl ca init --subject DN (--key-out FILE | --key URI) [--days N] [--bits N]
 *                         create the CA (the key stays in FILE or the HSM)
 *   mdmctl ca renew [--days N]
 *                         stage the next CA: same key, new validity
 *   mdmctl ca rekey (--key-out FILE | --key URI) [--days N] [--bits N]
 *                         stage the next CA: new key, same subject
 *   mdmctl ca activate    the staged CA becomes active; the old one retires
 *   mdmctl ca show        list the CA certificates and their states
 *   mdmctl ca cert        print the active CA certificate (PEM)
 */
#include "ca.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *fp)
{
	fprintf(fp,
	        "usage: mdmctl db migrate | db status\n"
	        "       mdmctl config show | config keys\n"
	        "       mdmctl ca init --subject DN (--key-out FILE | --key URI) [--days N] "
	        "[--bits N]\n"
	        "       mdmctl ca renew [--days N]\n"
	        "       mdmctl ca rekey (--key-out FILE | --key URI) [--days N] [--bits N]\n"
	        "       mdmctl ca activate | ca show | ca cert\n");
}

struct ca_opts {
	const char *subject, *key_out, *key;
	int days, bits;
};

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		return 0;
	*out = (int)v;
	return 1;
}

/* --name value pairs after `ca <sub>`. */
static int parse_ca_opts(int argc, char **argv, struct ca_opts *o)
{
	for (int i = 0; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			fprintf(stderr, "mdmctl: %s needs a value\n", k);
			return 0;
		}
		if (strcmp(k, "--subject") == 0)
			o->subject = v;
		else if (strcmp(k, "--key-out") == 0)
			o->key_out = v;
		else if (strcmp(k, "--key") == 0)
			o->key = v;
		else if (strcmp(k, "--days") == 0 && parse_int(v, 1, 36500, &o->days))
			continue;
		else if (strcmp(k, "--bits") == 0 && parse_int(v, 2048, 16384, &o->bits))
			continue;
		else {
			fprintf(stderr, "mdmctl: bad option %s %s\n", k, v);
			return 0;
		}
	}
	return 1;
}

static int cmd_ca_show(db *d)
{
	db_res *r = NULL;

	if (db_exec(d,
	            "SELECT a.state, c.serial, c.subject, c.not_before, c.not_after, c.sha256, "
	            "a.key_uri FROM mdm.ca a JOIN mdm.certificate c ON c.id = a.certificate_id "
	            "ORDER BY a.id",
	            0, NULL, &r) != MDM_OK)
		return 1;
	for (int i = 0; i < db_res_rows(r); i++)
		printf("%-8s serial %s\n         subject %s\n         valid %s .. %s\n"
		       "         sha256 %s\n         key %s\n",
		        db_res_get0(r, i, 0), db_res_get0(r, i, 1), db_res_get0(r, i, 2),
		        db_res_get0(r, i, 3), db_res_get0(r, i, 4), db_res_get0(r, i, 5),
		        db_res_get0(r, i, 6));
	if (db_res_rows(r) == 0)
		printf("no CA yet: mdmctl ca init --subject '/CN=...' --key-out FILE\n");
	db_res_free(r);
	return 0;
}

static int cmd_ca_cert(db *d, config *cfg)
{
	struct ca_state *st = NULL;
	char *pem = NULL;
	size_t len;
	int status = 1;

	/* Loads the key too: proves the CA can sign before anyone trusts it. */
	if (ca_load(d, cfg, &st) != MDM_OK)
		return 1;
	if (x509_cert_to_pem(st->active, &pem, &len) == MDM_OK &&
	        fwrite(pem, 1, len, stdout) == len)
		status = 0;
	free(pem);
	ca_state_free(st);
	return status;
}

static int cmd_ca(config *cfg, int argc, char **argv)
{
	struct ca_opts o = {NULL, NULL, NULL, 0, 2048};
	const char *sub = argv[0];
	db *d = NULL;
	mdm_err rc = MDM_ERR_INVAL;
	int status = 1;

	if (!parse_ca_opts(argc - 1, argv + 1, &o)) {
		usage(stderr);
		return 2;
	}
	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK)
		return 1;
	if (strcmp(sub, "init") == 0) {
		if (o.subject == NULL || (o.key_out == NULL) == (o.key == NULL)) {
			usage(stderr);
			status = 2;
			goto out;
		}
		rc = ca_init(
		        d, o.subject, o.days ? o.days : 3650, o.bits, o.key_out, o.key, time(NULL));
	} else if (strcmp(sub, "renew") == 0) {
		if (o.key_out || o.key || o.subject) {
			fprintf(stderr, "mdmctl: renew keeps the key and subject (see ca rekey)\n");
			status = 2;
			goto out;
		}
		rc = ca_stage_next(d, o.days ? o.days : 3650, o.bits, NULL, NULL, time(NULL));
	} else if (strcmp(sub, "rekey") == 0) {
		if ((o.key_out == NULL) == (o.key == NULL) || o.subject) {
			usage(stderr);
			status = 2;
			goto out;
		}
		rc = ca_stage_next(d, o.days ? o.days : 3650, o.bits, o.key_out, o.key, time(NULL));
	} else if (strcmp(sub, "activate") == 0 && argc == 1) {
		rc = ca_activate(d);
	} else if (strcmp(sub, "cert") == 0 && argc == 1) {
		status = cmd_ca_cert(d, cfg);
		goto out;
	} else if (strcmp(sub, "show") == 0 && argc == 1) {
		status = cmd_ca_show(d);
		goto out;
	} else {
		usage(stderr);
		status = 2;
		goto out;
	}
	if (rc != MDM_OK) {
		fprintf(stderr, "mdmctl: ca %s failed: %s (see the log line above)\n", sub,
		        err_str(rc));
		goto out;
	}
	status = cmd_ca_show(d);
out:
	db_free(d);
	return status;
}

static int cmd_db(config *cfg, const char *sub)
{
	db *d = NULL;
	int status = 1, applied = 0, current = 0, latest = 0;

	if (db_new(config_get0(cfg, "db"), "mdmctl", &d) != MDM_OK) {
		fprintf(stderr, "mdmctl: no database configured (key db, MDM_DB)\n");
		return 1;
	}
	if (strcmp(sub, "migrate") == 0) {
		if (migrate_apply(d, &applied) != MDM_OK) {
			fprintf(stderr, "mdmctl: migration failed (see the log line above)\n");
			goto out;
		}
		if (migrate_status(d, &current, &latest) != MDM_OK)
			goto out;
		printf("schema at version %d (%d applied now)\n", current, applied);
		status = 0;
	} else if (strcmp(sub, "status") == 0) {
		if (migrate_status(d, &current, &latest) != MDM_OK) {
			fprintf(stderr, "mdmctl: cannot read the schema version\n");
			goto out;
		}
		printf("schema at version %d, latest %d%s\n", current, latest,
		        current < latest ? " (run: mdmctl db migrate)" : "");
		status = current == latest ? 0 : 3;
	} else {
		usage(stderr);
		status = 2;
	}
out:
	db_free(d);
	return status;
}

static int cmd_config(config *cfg, const char *sub)
{
	if (strcmp(sub, "show") == 0)
		return config_dump(cfg, stdout) == MDM_OK ? 0 : 1;
	if (strcmp(sub, "keys") == 0) {
		for (size_t i = 0; i < config_key_count(); i++) {
			const struct config_key *k = config_key_at(i);
			printf("%-20s %s (default: %s)\n", k->name, k->doc,
			        k->default_value ? k->default_value : "unset");
		}
		return 0;
	}
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	config *cfg = NULL;
	enum log_level level;
	int status = 2;

	log_init("mdmctl", MDM_LOG_INFO);
	if (argc >= 3 && strcmp(argv[1], "ca") == 0) {
		if (config_load(&cfg) != MDM_OK)
			return 1;
		if (log_level_parse(config_get0(cfg, "log_level"), &level) == MDM_OK)
			log_set_level(level);
		status = cmd_ca(cfg, argc - 2, argv + 2);
		config_free(cfg);
		return status;
	}
	if (argc != 3) {
		usage(argc == 2 && strcmp(argv[1], "help") == 0 ? stdout : stderr);
		return argc == 2 && strcmp(argv[1], "help") == 0 ? 0 : 2;
	}
	if (config_load(&cfg) != MDM_OK)
		return 1;
	if (log_level_parse(config_get0(cfg, "log_level"), &level) == MDM_OK)
		log_set_level(level);
	if (strcmp(argv[1], "db") == 0)
		status = cmd_db(cfg, argv[2]);
	else if (strcmp(argv[1], "config") == 0)
		status = cmd_config(cfg, argv[2]);
	else
		usage(stderr);
	config_free(cfg);
	return status;
}
