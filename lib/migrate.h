/*
 * Schema migrations: the ordered files sql/NNN_name.sql, compiled into
 * the library (scripts/embed-sql.sh), applied each in its own transaction
 * and recorded with a checksum in mdm.schema_migrations.
 */
#ifndef MDM_MIGRATE_H
#define MDM_MIGRATE_H

#include <stddef.h>

#include "db.h"
#include "errors.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const size_t migrations_count;

/*
 * Applies every migration not yet applied, in order.  Concurrent runs are
 * serialised by an advisory lock; an applied migration whose text changed
 * since is an error (MDM_ERR_CONFLICT), never silently skipped.
 * *applied counts the migrations this call applied.
 */
MDM_WUR mdm_err migrate_apply(db *d, int *applied);
/*
 * The highest applied version (0 for an empty database), the latest
 * known, and how many known migrations are not applied (also one below
 * current: migrations land out of order when branches merge, and
 * migrate_apply still applies them).
 */
MDM_WUR mdm_err migrate_status(db *d, int *current, int *latest, int *pending);

#endif
