/*
 * What an operator asks without writing SQL (mdmctl device list, device
 * show, queue): the admin views (mdm.devices, mdm.queue,
 * mdm.command_results) written as a table for a terminal, as TSV, or as
 * JSON.  Values come from devices (a device name, a command's answer) and
 * are hostile: text and TSV escape every control character, so that a
 * device cannot write terminal escapes or extra columns and rows into an
 * operator's output.  JSON is made by PostgreSQL (json_agg).
 */
#ifndef MDM_REPORT_H
#define MDM_REPORT_H

#include <stdio.h>

#include "db.h"
#include "errors.h"

enum report_format {
	REPORT_TABLE, /* aligned columns with a header; NULL as "-" */
	REPORT_TSV,   /* a header line, then tab-separated rows; COPY TEXT escapes, NULL as \N */
	REPORT_JSON,  /* an array of objects, one per row */
};

/* "--table", "--tsv" or "--json" (NULL: table) into *out; 0 for anything else. */
int report_format_parse(const char *opt, enum report_format *out);

/*
 * Writes ncols columns of nrows rows: cell(arg, row, col) is a value or
 * NULL for SQL NULL.  For REPORT_TABLE and REPORT_TSV only.
 */
typedef const char *(*report_cell_fn)(void *arg, int row, int col);
MDM_WUR mdm_err report_write(FILE *fp, enum report_format f, int ncols, const char *const *headers,
        int nrows, report_cell_fn cell, void *arg);

/* Every device channel (mdm.devices), by UDID. */
MDM_WUR mdm_err report_devices(db *d, FILE *fp, enum report_format f);
/* One device: its channels and identity, its queue, its last 10 answers.  MDM_ERR_NOT_FOUND
 * when no device has that UDID. */
MDM_WUR mdm_err report_device(db *d, const char *udid, FILE *fp, enum report_format f);
/* The commands queued for a UDID (every channel), in delivery order. */
MDM_WUR mdm_err report_queue(db *d, const char *udid, FILE *fp, enum report_format f);

#endif
