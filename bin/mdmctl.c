/*
 * mdmctl: the operator's command line.  Reads the same configuration as
 * the FastCGI programs (MDM_CONFIG, MDM_<KEY>).
 *
 *   mdmctl db migrate     apply the schema migrations not yet applied
 *   mdmctl db status      print the applied and the latest schema version
 *   mdmctl config show    print the effective configuration (secrets hidden)
 *   mdmctl config keys    list every configuration key with its meaning
 */
#include "config.h"
#include "db.h"
#include "log.h"
#include "migrate.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *fp)
{
	fprintf(fp, "usage: mdmctl db migrate | db status | config show | config keys\n");
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
