/* Helpers shared by the e2e suites: see e2eutil.h. */
#include "e2eutil.h"

#include "db.h"
#include "ts_db.h"
#include "ts_sys.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *e2e_mode(void)
{
	const char *m = getenv("E2E_MODE");

	return m != NULL ? m : "apache";
}

int e2e_legacy(void)
{
	const char *v = getenv("E2E_SCEP_LEGACY");

	return v == NULL || strcmp(v, "0") != 0;
}

void e2e_stack(const char **https_base, const char **tls_ca, const char **device_ca)
{
	if (https_base != NULL)
		*https_base = getenv("E2E_HTTPS_BASE");
	if (tls_ca != NULL)
		*tls_ca = getenv("E2E_TLS_CA");
	if (device_ca != NULL)
		*device_ca = getenv("E2E_DEVICE_CA");
}

void e2e_tmpdir(char *dir, size_t cap, const char *fmt, ...)
{
	const char *t = getenv("E2E_TMP");
	char name[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	snprintf(dir, cap, "%s/%s", t ? t : "/tmp", name);
	mkdir(dir, 0700);
}

char *e2e_query1(const char *sql, const char *param)
{
	db *d = NULL;
	char *s;

	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e", &d), MDM_OK);
	s = ts_db_query1(d, sql, param);
	db_free(d);
	return s;
}

void e2e_assert_query(const char *sql, const char *param, const char *want)
{
	db *d = NULL;

	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e", &d), MDM_OK);
	ts_db_assert(d, sql, param, want);
	db_free(d);
}

int e2e_request(const char *method, const char *url, const char *body, const char *ctype,
        const char *opts, const char *reply)
{
	char code[] = "/tmp/mdm-e2e-code-XXXXXX", type[256] = "";
	int fd = mkstemp(code), status;
	char *s;

	ck_assert_int_ge(fd, 0);
	close(fd);
	if (ctype != NULL)
		snprintf(type, sizeof(type), "-H 'Content-Type: %s'", ctype);
	/* curl's own exit status says less than the HTTP status ("000": no answer). */
	(void)ts_sh("curl -sS --cacert '%s' %s %s -X %s --data-binary @'%s' -o '%s' "
	            "-w '%%{http_code}' '%s' >'%s'",
	        getenv("E2E_TLS_CA"), type, opts, method, body, reply ? reply : "/dev/null", url,
	        code);
	s = ts_file_get(code, NULL);
	status = atoi(s);
	free(s);
	unlink(code);
	return status;
}

int e2e_device_put(
        const char *dir, const char *url, const char *body, const char *ctype, const char *reply)
{
	char opts[2100];

	snprintf(opts, sizeof(opts), "--cert '%s/cert.pem' --key '%s/key.pem'", dir, dir);
	return e2e_request("PUT", url, body, ctype, opts, reply);
}

void e2e_idle_plist(const char *path, const char *udid)
{
	ts_file_put(path,
	        "<plist version=\"1.0\"><dict><key>Status</key><string>Idle</string>"
	        "<key>UDID</key><string>%s</string></dict></plist>\n",
	        udid);
}

int e2e_devsim_enrolled(const char *udid, int device_channel)
{
	char *n = e2e_query1(device_channel ? "SELECT count(*)::text FROM mdm.devices WHERE udid = "
	                                      "$1 AND enrolled AND channel = 'device'"
	                                    : "SELECT count(*)::text FROM mdm.devices WHERE udid = "
	                                      "$1 AND enrolled",
	        udid);
	int done = strcmp(n, "1") == 0;

	free(n);
	return done;
}

void e2e_devsim_enroll(const char *devdir, const char *udid, const char *client, const char *logdir)
{
	const char *tls_ca = NULL;

	e2e_stack(NULL, &tls_ca, NULL);
	ck_assert_msg(ts_sh("sh %s %s '%s/enroll' %s %s %s tls %s >%s/devsim.log 2>&1 || "
	                    "{ cat %s/devsim.log; exit 1; }",
	                      getenv("E2E_DEVSIM"), devdir, getenv("E2E_HTTPS_BASE"),
	                      getenv("E2E_DEVICE_CA"), tls_ca, udid, client, logdir, logdir) == 0,
	        "devsim failed (log above)");
}

int e2e_applesim(const char *dir, const char *name, const char *args)
{
	const char *base = NULL, *tls_ca = NULL, *device_ca = NULL;

	e2e_stack(&base, &tls_ca, &device_ca);
	return ts_sh("%s %s --dir %s/%s --enroll-url '%s/enroll' --trust %s --tls-ca %s "
	             ">>%s/%s.log 2>&1 || { cat %s/%s.log; exit 1; }",
	        getenv("E2E_APPLESIM"), args, dir, name, base, device_ca, tls_ca, dir, name, dir,
	        name);
}
