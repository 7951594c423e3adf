/* Shell commands, files and scratch directories for the tests: see ts_sys.h. */
#include "ts_sys.h"

#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The command line, formatted; a command cut short would run something else. */
static void format_cmd(char *cmd, size_t cap, const char *fmt, va_list ap)
{
	int n = vsnprintf(cmd, cap, fmt, ap);

	ck_assert_msg(
	        n >= 0 && (size_t)n < cap, "command longer than %zu bytes: %.80s...", cap, cmd);
}

int ts_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;

	va_start(ap, fmt);
	format_cmd(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int ts_run(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[8192], sink[512];
	va_list ap;
	FILE *p;
	size_t n;
	int st;

	va_start(ap, fmt);
	format_cmd(cmd, sizeof(cmd) - sizeof(" 2>&1"), fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	if (out != NULL && cap > 0) {
		n = fread(out, 1, cap - 1, p);
		out[n] = '\0';
	}
	while (fread(sink, 1, sizeof(sink), p) > 0)
		;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void *ts_file_read(const char *path, size_t cap, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL, *nb;
	size_t n = 0, size = 0, got;

	if (len != NULL)
		*len = 0;
	if (fp == NULL)
		return NULL;
	do {
		if (n == size) {
			size = size == 0 ? 4096 : size * 2;
			if (size > cap)
				size = cap;
			ck_assert_ptr_nonnull(nb = realloc(buf, size + 1));
			buf = nb;
		}
		got = fread(buf + n, 1, size - n, fp);
		n += got;
	} while (got > 0 && n < cap);
	fclose(fp);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

void *ts_file_get(const char *path, size_t *len)
{
	void *buf = ts_file_read(path, SIZE_MAX - 1, len);

	ck_assert_msg(buf != NULL, "cannot read %s (tests run from the repository root)", path);
	return buf;
}

size_t ts_file_into(const char *path, char *buf, size_t cap)
{
	FILE *fp = fopen(path, "rb");
	size_t n;

	ck_assert_msg(fp != NULL, "cannot read %s (tests run from the repository root)", path);
	n = fread(buf, 1, cap - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return n;
}

void ts_file_write(const char *path, const void *buf, size_t len)
{
	FILE *fp = fopen(path, "wb");

	ck_assert_msg(fp != NULL, "cannot write %s", path);
	ck_assert_uint_eq(fwrite(buf, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

void ts_file_put(const char *path, const char *fmt, ...)
{
	FILE *fp = fopen(path, "w");
	va_list ap;

	ck_assert_msg(fp != NULL, "cannot write %s", path);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	ck_assert_int_eq(fclose(fp), 0);
}

void ts_tmpdir_new(char *dir, size_t cap, const char *name)
{
	int n = snprintf(dir, cap, "/tmp/mdm-%s-XXXXXX", name);

	ck_assert(n > 0 && (size_t)n < cap);
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s failed", dir);
}

void ts_tmpdir_done(const char *dir)
{
	ck_assert_int_eq(ts_sh("rm -rf '%s'", dir), 0);
}

int ts_bench_window(const char *phase)
{
	const char *cmd = getenv("BENCH_WINDOW");
	pid_t pid;
	int st;

	if (cmd == NULL || cmd[0] == '\0')
		return 0;
	fflush(NULL);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "$BENCH_WINDOW \"$1\"", "sh", phase, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int ts_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}
