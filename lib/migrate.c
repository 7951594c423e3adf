/* Applies the embedded schema migrations, once each, in order. */
#include "migrate.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock key: serialises concurrent migrators ("mdm-migr"). */
#define MIGRATE_LOCK "7301835734089508722"

static const char migrate_bootstrap[] =
        "CREATE SCHEMA IF NOT EXISTS mdm;\n"
        "CREATE TABLE IF NOT EXISTS mdm.schema_migrations (\n"
        "  version    integer PRIMARY KEY,\n"
        "  name       text NOT NULL,\n"
        "  checksum   text NOT NULL,\n"
        "  applied_at timestamptz NOT NULL DEFAULT now()\n"
        ");\n"
        "COMMENT ON TABLE mdm.schema_migrations IS\n"
        "  'One row per applied sql/NNN_name.sql migration; checksum is the SHA-256 of its "
        "text.';\n";

struct migrate_step {
	const struct migration *m;
	int applied; /* set when this transaction applied it */
};

static MDM_WUR mdm_err migrate_lock(db *d)
{
	return db_exec(d, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", 0, NULL, NULL);
}

static MDM_WUR mdm_err migrate_bootstrap_tx(db *d, void *arg)
{
	mdm_err rc;

	(void)arg;
	if ((rc = migrate_lock(d)) != MDM_OK)
		return rc;
	return db_exec_script(d, migrate_bootstrap);
}

static MDM_WUR mdm_err migrate_one_tx(db *d, void *arg)
{
	struct migrate_step *st = arg;
	char version[16];
	const char *params[3];
	db_res *res = NULL;
	mdm_err rc;

	st->applied = 0;
	snprintf(version, sizeof(version), "%d", st->m->version);
	if ((rc = migrate_lock(d)) != MDM_OK)
		return rc;
	params[0] = version;
	params[1] = st->m->sql;
	rc = db_exec(d,
	        "SELECT checksum = encode(sha256(convert_to($2, 'UTF8')), 'hex') "
	        "FROM mdm.schema_migrations WHERE version = $1::integer",
	        2, params, &res);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(res) == 1) {
		if (strcmp(db_res_get0(res, 0, 0), "t") != 0) {
			log_error("migrate: %s was changed after it was applied; "
			          "write a new migration instead",
			        st->m->name);
			rc = MDM_ERR_CONFLICT;
		}
		goto out;
	}
	if ((rc = db_exec_script(d, st->m->sql)) != MDM_OK) {
		log_error("migrate: %s failed", st->m->name);
		goto out;
	}
	params[0] = version;
	params[1] = st->m->name;
	params[2] = st->m->sql;
	rc = db_exec(d,
	        "INSERT INTO mdm.schema_migrations (version, name, checksum) "
	        "VALUES ($1::integer, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'))",
	        3, params, NULL);
	if (rc == MDM_OK)
		st->applied = 1;
out:
	db_res_free(res);
	return rc;
}

mdm_err migrate_apply(db *d, int *applied)
{
	mdm_err rc;

	*applied = 0;
	if ((rc = db_tx(d, migrate_bootstrap_tx, NULL)) != MDM_OK)
		return rc;
	for (size_t i = 0; i < migrations_count; i++) {
		struct migrate_step st = {&migrations[i], 0};

		if (i > 0 && migrations[i].version <= migrations[i - 1].version) {
			log_error("migrate: %s is out of order", migrations[i].name);
			return MDM_ERR_INTERNAL;
		}
		if ((rc = db_tx(d, migrate_one_tx, &st)) != MDM_OK)
			return rc;
		if (st.applied) {
			log_info("migrate: applied %s", migrations[i].name);
			(*applied)++;
		}
	}
	return MDM_OK;
}

mdm_err migrate_status(db *d, int *current, int *latest, int *pending)
{
	db_res *res = NULL;
	mdm_err rc;

	*current = 0;
	*pending = (int)migrations_count;
	*latest = migrations_count ? migrations[migrations_count - 1].version : 0;
	rc = db_exec(d, "SELECT to_regclass('mdm.schema_migrations') IS NOT NULL", 0, NULL, &res);
	if (rc != MDM_OK)
		return rc;
	if (strcmp(db_res_get0(res, 0, 0), "t") != 0) {
		db_res_free(res);
		return MDM_OK;
	}
	db_res_free(res);
	res = NULL;
	rc = db_exec(d, "SELECT version FROM mdm.schema_migrations", 0, NULL, &res);
	if (rc != MDM_OK)
		goto out;
	for (int i = 0; i < db_res_rows(res); i++) {
		int v = atoi(db_res_get0(res, i, 0));
		if (v > *current)
			*current = v;
		for (size_t j = 0; j < migrations_count; j++)
			if (migrations[j].version == v)
				(*pending)--;
	}
out:
	db_res_free(res);
	return rc;
}
