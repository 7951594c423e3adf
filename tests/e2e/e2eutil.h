/*
 * What the e2e suites share beyond tests/support (ts_*.h): the stack's
 * settings that tests/run.sh passes in E2E_* variables, the stack's
 * database (MDM_DB), and requests to the stack through curl.  Names
 * start with e2e_; every failure fails the running check test.
 */
#ifndef MDM_E2E_UTIL_H
#define MDM_E2E_UTIL_H

#include <stddef.h>

/* E2E_MODE: the Apache mode of this pass, "proxy" or "fcgid"; "apache" when unset. */
const char *e2e_mode(void);
/*
 * E2E_SCEP_LEGACY: 1 when the stack allows what micromdm's scepclient
 * needs (SHA-1, single DES: tests/run.sh's proxy pass, and unset), 0 when
 * it refuses it ("0", the fcgid pass).
 */
int e2e_legacy(void);
/*
 * The stack tests/run.sh started: Apache's https URL (E2E_HTTPS_BASE),
 * the CA of its TLS certificate (E2E_TLS_CA), the CA the profile signer
 * chains to (E2E_DEVICE_CA); NULL for those not wanted.
 */
void e2e_stack(const char **https_base, const char **tls_ca, const char **device_ca);
/* Makes the directory E2E_TMP/NAME (/tmp without E2E_TMP; NAME a printf format) in dir. */
void e2e_tmpdir(char *dir, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* First column of the single row of sql (one optional parameter) in MDM_DB; malloc'd. */
char *e2e_query1(const char *sql, const char *param);
/* Fails the test unless e2e_query1(sql, param) is want. */
void e2e_assert_query(const char *sql, const char *param, const char *want);

/*
 * Sends the file body to url by method with curl, trusting E2E_TLS_CA,
 * with the Content-Type ctype (NULL: none) and more curl options opts
 * (a TLS identity, headers; shell words, "" for none); the answer's body
 * into reply (NULL: discarded).  The HTTP status, 0 when no answer came
 * (a refused handshake).
 */
int e2e_request(const char *method, const char *url, const char *body, const char *ctype,
        const char *opts, const char *reply);
/* e2e_request PUT as the device whose TLS identity is dir/cert.pem and dir/key.pem. */
int e2e_device_put(
        const char *dir, const char *url, const char *body, const char *ctype, const char *reply);
/*
 * 1 when udid is enrolled (its device channel only, with device_channel),
 * read from the database: each check test runs in a process of its own.
 */
int e2e_devsim_enrolled(const char *udid, int device_channel);
/*
 * Enrolls udid with tests/e2e/devsim.sh (E2E_DEVSIM: profile, SCEP with
 * client, scepclient or certmonger, Authenticate, TokenUpdate) through
 * E2E_HTTPS_BASE, its state in devdir, its log in logdir/devsim.log
 * (shown when it fails, which fails the test).
 */
void e2e_devsim_enroll(
        const char *devdir, const char *udid, const char *client, const char *logdir);
/*
 * Runs the Apple simulator (E2E_APPLESIM) with args for the device whose
 * state is in dir/name, through the stack (e2e_stack: its enrollment URL,
 * E2E_DEVICE_CA for the profile signer, E2E_TLS_CA), its output appended
 * to dir/name.log and shown when it fails; its exit status.
 */
int e2e_applesim(const char *dir, const char *name, const char *args);
/* Writes the Idle status a device sends for its commands (path), for udid. */
void e2e_idle_plist(const char *path, const char *udid);

#endif
