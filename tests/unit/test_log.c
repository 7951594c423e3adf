/* log: one bounded, escaped line per record, with the request id. */
#include "log.h"
#include "mdm_limits.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Captures what log_msg writes through a pipe. */
static size_t capture(char *out, size_t cap, void (*emit)(void))
{
	int fds[2];
	ssize_t n;

	ck_assert_int_eq(pipe(fds), 0);
	log_set_fd(fds[1]);
	emit();
	log_set_fd(-1);
	close(fds[1]);
	n = read(fds[0], out, cap - 1);
	close(fds[0]);
	ck_assert_int_ge(n, 0);
	out[n] = '\0';
	return (size_t)n;
}

static void emit_hostile(void)
{
	log_init("test.fcgi", MDM_LOG_DEBUG);
	log_set_request_id("req42");
	log_warn("user said \"%s\"", "a\nlevel=error req=forged\r\x1b[31m\\");
}

START_TEST(escapes_control_characters_and_quotes)
{
	char buf[4096];
	size_t n = capture(buf, sizeof(buf), emit_hostile);

	ck_assert_str_eq(buf,
	        "test.fcgi: level=warn req=req42 msg=\"user said \\\"a\\x0alevel=error "
	        "req=forged\\x0d\\x1b[31m\\\\\\\"\"\n");
	/* Exactly one line, whatever the message held. */
	ck_assert_ptr_eq(memchr(buf, '\n', n - 1), NULL);
}
END_TEST

static void emit_long(void)
{
	char *big = malloc(3 * LOG_MAX_LINE);
	ck_assert_ptr_nonnull(big);
	memset(big, '\x01', 3 * LOG_MAX_LINE - 1);
	big[3 * LOG_MAX_LINE - 1] = '\0';
	log_init("t", MDM_LOG_INFO);
	log_error("%s", big);
	free(big);
}

START_TEST(bounded_and_marked_when_truncated)
{
	char buf[4 * LOG_MAX_LINE];
	size_t n = capture(buf, sizeof(buf), emit_long);

	ck_assert_uint_le(n, LOG_MAX_LINE - 1);
	ck_assert_ptr_nonnull(strstr(buf, "...[truncated]\"\n"));
	ck_assert_ptr_eq(memchr(buf, '\n', n - 1), NULL);
}
END_TEST

START_TEST(format_never_overflows_small_buffers)
{
	char buf[64];
	char big[300];

	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (size_t cap = 0; cap <= sizeof(buf); cap++) {
		memset(buf, 'Z', sizeof(buf));
		size_t n = log_format(buf, cap, MDM_LOG_INFO, big);
		if (cap > 0) {
			ck_assert_uint_lt(n, cap);
			ck_assert_int_eq(buf[n], '\0');
		}
		for (size_t i = cap; i < sizeof(buf); i++)
			ck_assert_int_eq(buf[i], 'Z');
	}
}
END_TEST

static void emit_filtered(void)
{
	log_init("t", MDM_LOG_WARN);
	log_info("hidden");
	log_debug("hidden");
	log_error("shown");
}

START_TEST(level_filter)
{
	char buf[512];

	capture(buf, sizeof(buf), emit_filtered);
	ck_assert_ptr_null(strstr(buf, "hidden"));
	ck_assert_ptr_nonnull(strstr(buf, "level=error req="));
}
END_TEST

static void emit_forged_reqid(void)
{
	log_init("t", MDM_LOG_INFO);
	log_set_request_id("a b\"c\nd");
	log_info("x");
	log_set_request_id(NULL);
	log_info("y");
}

START_TEST(request_id_is_sanitised)
{
	char buf[512];

	capture(buf, sizeof(buf), emit_forged_reqid);
	ck_assert_ptr_nonnull(strstr(buf, "req=a_b_c_d msg=\"x\""));
	ck_assert_ptr_nonnull(strstr(buf, "req=- msg=\"y\""));
}
END_TEST

START_TEST(level_parse)
{
	enum log_level l;

	ck_assert_int_eq(log_level_parse("debug", &l), MDM_OK);
	ck_assert_int_eq(l, MDM_LOG_DEBUG);
	ck_assert_int_eq(log_level_parse("error", &l), MDM_OK);
	ck_assert_int_eq(l, MDM_LOG_ERROR);
	ck_assert_int_ne(log_level_parse("verbose", &l), MDM_OK);
	ck_assert_int_ne(log_level_parse(NULL, &l), MDM_OK);
}
END_TEST

void log_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "lines", 0, NULL, NULL);

	ts_add_tests(tc, escapes_control_characters_and_quotes, bounded_and_marked_when_truncated,
	        format_never_overflows_small_buffers, level_filter, request_id_is_sanitised,
	        level_parse);
}
