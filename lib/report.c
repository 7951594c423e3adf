/* Operator reports from the admin views: see report.h. */
#include "report.h"

#include <stdlib.h>
#include <string.h>

int report_format_parse(const char *opt, enum report_format *out)
{
	if (opt == NULL || strcmp(opt, "--table") == 0)
		*out = REPORT_TABLE;
	else if (strcmp(opt, "--tsv") == 0)
		*out = REPORT_TSV;
	else if (strcmp(opt, "--json") == 0)
		*out = REPORT_JSON;
	else
		return 0;
	return 1;
}

/*
 * One value, escaped: control characters as \xNN (and, for TSV, COPY TEXT's
 * \\ \t \n \r), so that no value ends a line, a column or sends a terminal
 * escape.  Writes to fp when it is not NULL; returns the display width
 * (UTF-8 continuation bytes take no column).
 */
static size_t report_put(FILE *fp, const char *s, int tsv)
{
	size_t w = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		char esc[8] = "";

		if (tsv && (*p == '\\' || *p == '\t' || *p == '\n' || *p == '\r'))
			snprintf(esc, sizeof(esc), "\\%c",
			        *p == '\\'           ? '\\'
			                : *p == '\t' ? 't'
			                : *p == '\n' ? 'n'
			                             : 'r');
		else if (*p < 0x20 || *p == 0x7f)
			snprintf(esc, sizeof(esc), "\\x%02x", *p);
		if (esc[0] != '\0') {
			if (fp != NULL)
				fputs(esc, fp);
			w += strlen(esc);
			continue;
		}
		if (fp != NULL)
			fputc(*p, fp);
		if ((*p & 0xc0) != 0x80)
			w++;
	}
	return w;
}

mdm_err report_write(FILE *fp, enum report_format f, int ncols, const char *const *headers,
        int nrows, report_cell_fn cell, void *arg)
{
	const int tsv = f == REPORT_TSV;
	const char *null = tsv ? "\\N" : "-";
	size_t *width = NULL;

	if (f == REPORT_JSON || ncols <= 0 || nrows < 0)
		return MDM_ERR_INVAL;
	if (!tsv) {
		if ((width = calloc((size_t)ncols, sizeof(*width))) == NULL)
			return MDM_ERR_NOMEM;
		for (int c = 0; c < ncols; c++) {
			width[c] = report_put(NULL, headers[c], 0);
			for (int r = 0; r < nrows; r++) {
				const char *v = cell(arg, r, c);
				size_t w = v != NULL ? report_put(NULL, v, 0) : strlen(null);
				if (w > width[c])
					width[c] = w;
			}
		}
	}
	for (int r = -1; r < nrows; r++)
		for (int c = 0; c < ncols; c++) {
			const char *v = r < 0 ? headers[c] : cell(arg, r, c);
			size_t w;

			if (v == NULL) {
				fputs(null, fp);
				w = strlen(null);
			} else {
				w = report_put(fp, v, tsv);
			}
			if (c + 1 == ncols)
				fputc('\n', fp);
			else if (tsv)
				fputc('\t', fp);
			else
				fprintf(fp, "%*s", (int)(width[c] - w + 2), "");
		}
	free(width);
	return ferror(fp) ? MDM_ERR_IO : MDM_OK;
}

/* A result's cell, NULL for SQL NULL. */
static const char *report_res_cell(void *arg, int row, int col)
{
	const db_res *r = arg;

	return db_res_is_null(r, row, col) ? NULL : db_res_get0(r, row, col);
}

/*
 * The same result on its side, for rows too wide for a terminal: a line
 * per column but the first, whose values head the columns.
 */
static const char *report_res_cell_across(void *arg, int row, int col)
{
	const db_res *r = arg;

	return col == 0 ? db_res_col_name0(r, row + 1) : report_res_cell(arg, col - 1, row + 1);
}

/*
 * The rows of sql (at most one parameter) in format f; JSON is the same
 * rows as json_agg makes them.  across: a table is written on its side.
 */
static MDM_WUR mdm_err report_query(
        db *d, FILE *fp, enum report_format f, const char *sql, const char *param, int across)
{
	const char *p[1] = {param};
	char *json_sql = NULL;
	const char **headers = NULL;
	db_res *r = NULL;
	mdm_err rc;
	int n;

	if (f == REPORT_JSON) {
		size_t len = strlen(sql) + 64;
		if ((json_sql = malloc(len)) == NULL)
			return MDM_ERR_NOMEM;
		snprintf(json_sql, len, "SELECT coalesce(json_agg(t), '[]') FROM (%s) t", sql);
		rc = db_exec(d, json_sql, param ? 1 : 0, param ? p : NULL, &r);
		if (rc == MDM_OK) {
			fprintf(fp, "%s\n", db_res_get0(r, 0, 0));
			rc = ferror(fp) ? MDM_ERR_IO : MDM_OK;
		}
		goto out;
	}
	if ((rc = db_exec(d, sql, param ? 1 : 0, param ? p : NULL, &r)) != MDM_OK)
		goto out;
	across = across && f == REPORT_TABLE && db_res_rows(r) > 0 && db_res_cols(r) > 1;
	n = across ? db_res_rows(r) + 1 : db_res_cols(r);
	if ((headers = calloc((size_t)n, sizeof(*headers))) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	for (int c = 0; c < n; c++)
		headers[c] = !across ? db_res_col_name0(r, c)
		        : c == 0     ? db_res_col_name0(r, 0)
		                     : report_res_cell(r, c - 1, 0);
	for (int c = 0; c < n; c++)
		if (headers[c] == NULL)
			headers[c] = "-";
	if (across)
		rc = report_write(fp, f, n, headers, db_res_cols(r) - 1, report_res_cell_across, r);
	else
		rc = report_write(fp, f, n, headers, db_res_rows(r), report_res_cell, r);
out:
	free(headers);
	free(json_sql);
	db_res_free(r);
	return rc;
}

/* Times are cut to the second (date_trunc): what an operator reads. */
mdm_err report_devices(db *d, FILE *fp, enum report_format f)
{
	return report_query(d, fp, f,
	        "SELECT udid, channel, user_short_name AS \"user\", serial_number AS serial, "
	        "model_name AS model, os_version AS os, device_name AS name, enrolled, "
	        "date_trunc('second', last_seen_at) AS last_seen, queued_commands AS queued, "
	        "identity_serial FROM mdm.devices ORDER BY udid, user_id NULLS FIRST",
	        NULL, 0);
}

static const char report_queue_sql[] =
        "SELECT user_id, command_uuid, request_type, priority, "
        "date_trunc('second', queued_at) AS queued, "
        "date_trunc('second', delivered_at) AS delivered, delivered_count AS deliveries, "
        "date_trunc('second', not_now_at) AS not_now FROM mdm.queue WHERE udid = $1 "
        "ORDER BY user_id NULLS FIRST, priority DESC, queued_at";

/* MDM_ERR_NOT_FOUND unless a device has this UDID. */
static MDM_WUR mdm_err report_known(db *d, const char *udid)
{
	const char *p[1] = {udid};
	db_res *r = NULL;
	mdm_err rc = db_exec(d, "SELECT 1 FROM mdm.device WHERE udid = $1", 1, p, &r);

	if (rc == MDM_OK && db_res_rows(r) == 0)
		rc = MDM_ERR_NOT_FOUND;
	db_res_free(r);
	return rc;
}

mdm_err report_queue(db *d, const char *udid, FILE *fp, enum report_format f)
{
	mdm_err rc = report_known(d, udid);

	return rc != MDM_OK ? rc : report_query(d, fp, f, report_queue_sql, udid, 0);
}

mdm_err report_device(db *d, const char *udid, FILE *fp, enum report_format f)
{
	static const char *const titles[] = {"device", "queue", "results"};
	static const char *const sql[] = {
	        "SELECT channel, user_id, user_short_name AS \"user\", serial_number AS serial, "
	        "model_name AS model, product_name AS product, os_version AS os, "
	        "build_version AS build, device_name AS name, enrolled, topic, has_push_token, "
	        "date_trunc('second', authenticated_at) AS authenticated, "
	        "date_trunc('second', token_updated_at) AS token_updated, "
	        "date_trunc('second', checked_out_at) AS checked_out, "
	        "date_trunc('second', last_seen_at) AS last_seen, identity_serial, "
	        "identity_not_after, identity_revoked_at, queued_commands AS queued "
	        "FROM mdm.devices WHERE udid = $1 ORDER BY user_id NULLS FIRST",
	        report_queue_sql,
	        "SELECT date_trunc('second', received_at) AS received, user_id, command_uuid, "
	        "request_type, status, reason FROM mdm.command_results WHERE udid = $1 "
	        "ORDER BY received_at DESC LIMIT 10",
	};
	mdm_err rc = report_known(d, udid);

	if (rc != MDM_OK)
		return rc;
	if (f == REPORT_JSON)
		fputs("{", fp);
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && rc == MDM_OK; i++) {
		if (f == REPORT_JSON)
			fprintf(fp, "%s\"%s\": ", i ? ", " : "", titles[i]);
		else
			fprintf(fp, "%s# %s\n", i && f == REPORT_TABLE ? "\n" : "", titles[i]);
		/* The device's own rows are wide: on their side on a terminal. */
		rc = report_query(d, fp, f, sql[i], udid, i == 0);
	}
	if (f == REPORT_JSON)
		fputs("}\n", fp);
	return rc == MDM_OK && ferror(fp) ? MDM_ERR_IO : rc;
}
