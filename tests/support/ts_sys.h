/*
 * What the unit, e2e and bench programs need from the system, once:
 * shell commands, whole files read and written, scratch directories.
 * Names start with ts_ (test support).  Unless a comment says otherwise
 * a failure fails the running check test, so these are for tests only.
 */
#ifndef MDM_TEST_TS_SYS_H
#define MDM_TEST_TS_SYS_H

#include <stddef.h>

/* Runs a shell command; its exit status (128 when it did not exit). */
int ts_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Runs a shell command with stdout and stderr into out (at most cap - 1
 * bytes, NUL-terminated; out NULL: discarded); its exit status (-1 when
 * it did not exit).
 */
int ts_run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * At most cap bytes of the file (malloc'd, a NUL after them, their number
 * in *len unless len is NULL), or NULL when it cannot be opened.
 */
void *ts_file_read(const char *path, size_t cap, size_t *len);
/* The whole file, as ts_file_read; fails the test when it cannot be opened. */
void *ts_file_get(const char *path, size_t *len);
/* The file into buf (at most cap - 1 bytes, NUL-terminated); its length. */
size_t ts_file_into(const char *path, char *buf, size_t cap);
void ts_file_write(const char *path, const void *buf, size_t len);
/* Writes a file (printf format). */
void ts_file_put(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * For the bench programs: runs `$BENCH_WINDOW PHASE` when BENCH_WINDOW is
 * set, so that a timed window can be observed from outside (bench/run.sh
 * profiles the servers with perf between "start" and "stop").  Its exit
 * status, 0 when unset; never fails a test.
 */
int ts_bench_window(const char *phase);

/* A TCP port on 127.0.0.1 that nothing listens on now (bound, then closed). */
int ts_free_port(void);

/* A new directory /tmp/mdm-NAME-XXXXXX in dir (at least 64 bytes), for ts_tmpdir_done. */
void ts_tmpdir_new(char *dir, size_t cap, const char *name);
/* Removes the directory and everything in it. */
void ts_tmpdir_done(const char *dir);

#endif
