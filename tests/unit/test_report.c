/*
 * lib/report.c: mdmctl device list, device show, queue.  The values are a
 * device's (its name, its answers): no value may write a terminal escape,
 * a column or a row into an operator's output, in any format.
 */
#define _GNU_SOURCE /* asprintf */
#include "report.h"
#include "log.h"
#include "suites.h"
#include "ts_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A device name a hostile device could report: a tab, a newline, an escape, a backslash. */
#define HOSTILE "evil\tname\nrow\x1b[2J\\x"

struct cells {
	const char *const *v;
	int ncols;
};

static const char *cell_of(void *arg, int row, int col)
{
	const struct cells *c = arg;

	return c->v[row * c->ncols + col];
}

/* What report_write writes for these rows, malloc'd. */
static char *written(enum report_format f, int ncols, const char *const *headers, int nrows,
        const char *const *v)
{
	struct cells c = {v, ncols};
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(report_write(fp, f, ncols, headers, nrows, cell_of, &c), MDM_OK);
	fclose(fp);
	return out;
}

START_TEST(table_aligns_and_escapes)
{
	static const char *const h[] = {"udid", "name"};
	static const char *const v[] = {"A", HOSTILE, "BBBB", NULL, "C\xc3\xa9", "x"};
	char *s = written(REPORT_TABLE, 2, h, 3, v);

	/* One line per row: the newline and the escape are shown, not sent. */
	ck_assert_str_eq(s,
	        "udid  name\n"
	        "A     evil\\x09name\\x0arow\\x1b[2J\\x\n"
	        "BBBB  -\n"
	        "C\xc3\xa9    x\n");
	free(s);
}
END_TEST

START_TEST(tsv_is_copy_text)
{
	static const char *const h[] = {"udid", "name"};
	static const char *const v[] = {"A", HOSTILE, "B", NULL};
	char *s = written(REPORT_TSV, 2, h, 2, v);

	/* PostgreSQL's COPY TEXT: \t \n \\ escaped, \N for NULL, one tab per column. */
	ck_assert_str_eq(s,
	        "udid\tname\n"
	        "A\tevil\\tname\\nrow\\x1b[2J\\\\x\n"
	        "B\t\\N\n");
	free(s);
}
END_TEST

START_TEST(formats_parse)
{
	enum report_format f;

	ck_assert(report_format_parse(NULL, &f) && f == REPORT_TABLE);
	ck_assert(report_format_parse("--tsv", &f) && f == REPORT_TSV);
	ck_assert(report_format_parse("--json", &f) && f == REPORT_JSON);
	ck_assert(report_format_parse("--table", &f) && f == REPORT_TABLE);
	ck_assert(!report_format_parse("--xml", &f));
	ck_assert(!report_format_parse("json", &f));
}
END_TEST

void report_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "format", 10, NULL, NULL);

	ts_add_tests(tc, table_aligns_and_escapes, tsv_is_copy_text, formats_parse);
}

/* ------------------------------------------------------------- database */

static struct ts_db t;
static db *d;

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&t, "report");
	d = t.d;
}

static void teardown(void)
{
	ts_db_drop(&t);
	d = NULL;
}

/* A device named HOSTILE, enrolled, with two commands queued and one answered. */
static void fleet(void)
{
	const char *p[1] = {HOSTILE};

	ck_assert_int_eq(
	        db_exec(d,
	                "WITH dv AS (INSERT INTO mdm.device (udid, serial_number, device_name) "
	                " VALUES ('UDID-R', 'SER1', $1) RETURNING udid), "
	                "e AS (INSERT INTO mdm.enrollment (udid, topic, active) SELECT udid, 't', "
	                " true FROM dv RETURNING id), "
	                "c AS (INSERT INTO mdm.command (command_uuid, request_type, plist) VALUES "
	                " ('C-1', 'ProfileList', '<plist/>'), ('C-2', 'DeviceInformation', "
	                " '<plist/>'), ('C-0', 'SecurityInfo', '<plist/>') RETURNING command_uuid) "
	                "INSERT INTO mdm.command_queue (enrollment_id, command_uuid, priority) "
	                "SELECT e.id, c.command_uuid, CASE c.command_uuid WHEN 'C-2' THEN 5 ELSE 0 "
	                "END FROM e, c",
	                1, p, NULL),
	        MDM_OK);
	ck_assert_int_eq(db_exec(d,
	                         "WITH q AS (UPDATE mdm.command_queue SET status = 'acknowledged', "
	                         "finished_at = now() WHERE command_uuid = 'C-0' RETURNING "
	                         "enrollment_id) INSERT INTO mdm.command_result (enrollment_id, "
	                         "command_uuid, status, result) SELECT enrollment_id, 'C-0', "
	                         "'Acknowledged', '<plist/>' FROM q",
	                         0, NULL, NULL),
	        MDM_OK);
}

typedef mdm_err (*report_fn)(db *d, const char *udid, FILE *fp, enum report_format f);

/* What fn writes, malloc'd; NULL udid: report_devices. */
static char *reported(report_fn fn, const char *udid, enum report_format f, mdm_err want)
{
	char *out = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&out, &len);

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fn ? fn(d, udid, fp, f) : report_devices(d, fp, f), want);
	fclose(fp);
	return out;
}

/* PostgreSQL says whether s is JSON, and what path reads from it. */
static void assert_json(const char *s, const char *path, const char *want)
{
	char *sql = NULL;

	ck_assert_int_ne(asprintf(&sql, "SELECT ($1::jsonb #>> '%s')", path), -1);
	ts_db_assert(d, sql, s, want);
	free(sql);
}

START_TEST(device_list_in_every_format)
{
	int lines = 0;
	char *s;

	fleet();
	s = reported(NULL, NULL, REPORT_TABLE, MDM_OK);
	ck_assert_ptr_nonnull(strstr(s, "UDID-R"));
	ck_assert_ptr_nonnull(strstr(s, "evil\\x09name\\x0arow\\x1b[2J"));
	ck_assert_ptr_null(strchr(s, '\x1b'));
	/* A header and one row: the name's newline made no line. */
	for (const char *p = s; *p; p++)
		lines += *p == '\n';
	ck_assert_int_eq(lines, 2);
	free(s);
	s = reported(NULL, NULL, REPORT_TSV, MDM_OK);
	ck_assert_ptr_nonnull(strstr(s, "\tevil\\tname\\nrow"));
	free(s);
	s = reported(NULL, NULL, REPORT_JSON, MDM_OK);
	assert_json(s, "{0,name}", HOSTILE);
	assert_json(s, "{0,queued}", "2");
	assert_json(s, "{0,serial}", "SER1");
	free(s);
}
END_TEST

START_TEST(device_show_and_queue)
{
	char *s;

	fleet();
	s = reported(report_device, "UDID-R", REPORT_JSON, MDM_OK);
	assert_json(s, "{device,0,name}", HOSTILE);
	/* Delivery order: priority first. */
	assert_json(s, "{queue,0,command_uuid}", "C-2");
	assert_json(s, "{queue,1,command_uuid}", "C-1");
	assert_json(s, "{results,0,status}", "Acknowledged");
	free(s);
	s = reported(report_device, "UDID-R", REPORT_TABLE, MDM_OK);
	ck_assert_ptr_nonnull(strstr(s, "# device\n"));
	/* The device's wide row on its side: a line per field, a column per channel. */
	ck_assert_ptr_nonnull(strstr(s, "# device\nchannel "));
	ck_assert_ptr_nonnull(strstr(s, " device\nuser_id "));
	ck_assert_ptr_nonnull(strstr(s, "\nname "));
	ck_assert_ptr_nonnull(strstr(s, "evil\\x09name\\x0arow\\x1b[2J\\x\n"));
	ck_assert_ptr_nonnull(strstr(s, "# queue\n"));
	ck_assert_ptr_nonnull(strstr(s, "# results\n"));
	ck_assert_ptr_null(strchr(s, '\x1b'));
	free(s);
	s = reported(report_queue, "UDID-R", REPORT_TSV, MDM_OK);
	ck_assert_ptr_nonnull(strstr(s, "\\N\tC-2\tDeviceInformation\t5\t"));
	free(s);
	s = reported(report_queue, "UDID-R", REPORT_JSON, MDM_OK);
	assert_json(s, "{1,request_type}", "ProfileList");
	free(s);
}
END_TEST

START_TEST(unknown_udid_is_not_found)
{
	char *s;

	fleet();
	s = reported(report_device, "UDID-NONE", REPORT_TABLE, MDM_ERR_NOT_FOUND);
	ck_assert_str_eq(s, "");
	free(s);
	s = reported(report_queue, "x' OR '1'='1", REPORT_JSON, MDM_ERR_NOT_FOUND);
	ck_assert_str_eq(s, "");
	free(s);
}
END_TEST

void report_db_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "db", 30, setup, teardown);

	ts_add_tests(
	        tc, device_list_in_every_format, device_show_and_queue, unknown_udid_is_not_found);
}
