/* errors: the one table from mdm_err to HTTP status. */
#include "errors.h"
#include "suites.h"

#include <string.h>

START_TEST(every_error_has_a_status_and_name)
{
	for (int e = 0; e < MDM_ERR__MAX; e++) {
		int st = err_http_status((mdm_err)e);
		ck_assert_msg(st >= 200 && st <= 599, "error %d has status %d", e, st);
		ck_assert_str_ne(err_str((mdm_err)e), "unknown");
		ck_assert_str_ne(err_http_reason(st), "Unknown");
	}
}
END_TEST

START_TEST(statuses)
{
	ck_assert_int_eq(err_http_status(MDM_OK), 200);
	ck_assert_int_eq(err_http_status(MDM_ERR_TOO_LARGE), 413);
	ck_assert_int_eq(err_http_status(MDM_ERR_METHOD), 405);
	ck_assert_int_eq(err_http_status(MDM_ERR_PARSE), 400);
	ck_assert_int_eq(err_http_status(MDM_ERR_AUTH), 401);
	ck_assert_int_eq(err_http_status(MDM_ERR_DB_CONN), 503);
	ck_assert_int_eq(err_http_status(MDM_ERR_UNSUPPORTED), 501);
	ck_assert_str_eq(err_http_reason(413), "Payload Too Large");
}
END_TEST

START_TEST(out_of_range)
{
	ck_assert_int_eq(err_http_status(MDM_ERR__MAX), 500);
	ck_assert_int_eq(err_http_status((mdm_err)-1), 500);
	ck_assert_str_eq(err_str((mdm_err)1000), "unknown");
}
END_TEST

void errors_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "table", 0, NULL, NULL);

	ts_add_tests(tc, every_error_has_a_status_and_name, statuses, out_of_range);
}
