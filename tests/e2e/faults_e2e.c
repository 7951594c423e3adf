/*
 * Faults end to end, through the real Apache and the stack's PostgreSQL:
 * the database turns read-only under the running programs (their
 * sessions are cut, as a failover cuts them, and every new session is
 * read-only, as on a standby).  Every request is answered 503 with
 * Retry-After, nothing is written, and once the database is writable
 * again the same programs serve without a restart.  Under a concurrent
 * load of enrollments: Apache's graceful restart, an httpd child and a
 * FastCGI worker killed with -9; only requests in flight at a fault may
 * fail, and every challenge a device was given is in the database.
 * failover-e2e (tests/run.sh's failover pass, E2E_FAILOVER: the command
 * that crashes the primary and promotes its synchronous standby): under
 * GET /enroll loops, iPhones enrolling and one iPhone connecting to answer
 * the commands an operator queues, nothing a device or operator was told
 * is lost, no command is delivered again once its report was stored, no
 * 5xx but 503, and the same programs serve from the new primary.
 * Prints a ledger line per fault.
 *
 * Environment (tests/run.sh): E2E_HTTPS_BASE, E2E_TLS_CA, E2E_TMP,
 * E2E_MODE, MDM_DB (the role owns the database: ALTER DATABASE is allowed),
 * E2E_APACHE_PID_FILE (Apache's parent), E2E_CGI_BIN (this stack's programs);
 * failover-e2e also E2E_FAILOVER, E2E_APPLESIM, E2E_DEVICE_CA.
 */
#include "db.h"
#include "e2eutil.h"
#include "ts_check.h"
#include "ts_sys.h"

#include <check.h>
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

Suite *faults_e2e_suite(void);
Suite *failover_e2e_suite(void);

#define FAULT_REQUESTS 8

/* Runs sql on a session that is writable even while the database's default is not, as the
 * database's owner or (tablespaces are a superuser's business) the cluster's superuser; 0 or
 * -1. No ck_assert: the clean-ups run in check's parent process too. */
static int sql_try(int superuser, const char *sql)
{
	char conninfo[2048];
	db *d = NULL;
	int rc;

	snprintf(conninfo, sizeof(conninfo), "%s%s options='-c default_transaction_read_only=off'",
	        getenv("MDM_DB"), superuser ? " user=postgres" : "");
	if (db_new(conninfo, "e2e-faults", &d) != MDM_OK)
		return -1;
	rc = db_exec(d, sql, 0, NULL, NULL) == MDM_OK ? 0 : -1;
	db_free(d);
	return rc;
}

static void admin_exec(const char *sql)
{
	ck_assert_msg(sql_try(0, sql) == 0, "%s failed", sql);
}

/* GET /enroll (writes a challenge); returns the status, *retry_after set if the header came. */
static int get_enroll(int *retry_after)
{
	char hdr[1024], code[1024];
	char *h, *c;
	int status;

	snprintf(hdr, sizeof(hdr), "%s/faults-%s.hdr", getenv("E2E_TMP"), getenv("E2E_MODE"));
	snprintf(code, sizeof(code), "%s/faults-%s.code", getenv("E2E_TMP"), getenv("E2E_MODE"));
	ck_assert_int_eq(ts_sh("curl -sS --cacert '%s' -D '%s' -o /dev/null -w '%%{http_code}' "
	                       "'%s/enroll' >'%s'",
	                         getenv("E2E_TLS_CA"), hdr, getenv("E2E_HTTPS_BASE"), code),
	        0);
	c = ts_file_get(code, NULL);
	status = atoi(c);
	free(c);
	h = ts_file_get(hdr, NULL);
	/* Field names are case-insensitive (RFC 9110 5.1); HTTP/2 sends them lower-case. */
	for (char *p = h; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	*retry_after = strstr(h, "\nretry-after: 5\r\n") != NULL;
	free(h);
	return status;
}

/* The suites after this one need a writable database: also an unchecked fixture, which runs
 * in check's parent process even when a failed check has ended the forked case. */
static void writable_again(void)
{
	if (sql_try(0,
	            "DO $$ BEGIN EXECUTE format("
	            "'ALTER DATABASE %I RESET default_transaction_read_only', "
	            "current_database()); END $$") != 0)
		fprintf(stderr, "faults-e2e: could not reset default_transaction_read_only\n");
}

START_TEST(read_only_database_is_503_then_recovers)
{
	int before = 0, during = 0, after = 0, s503 = 0, s5xx = 0, retry = 0, ra;
	char *n0, *n1, *n2;

	ck_assert_int_eq(get_enroll(&ra), 200);
	before++;
	n0 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);

	/* The fault: new sessions are read-only, the programs' sessions are cut. */
	admin_exec("DO $$ BEGIN EXECUTE format("
	           "'ALTER DATABASE %I SET default_transaction_read_only = on', "
	           "current_database()); END $$");
	admin_exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
	           "WHERE datname = current_database() AND pid <> pg_backend_pid() "
	           "AND application_name LIKE '%.fcgi'");
	for (int i = 0; i < FAULT_REQUESTS; i++) {
		int st = get_enroll(&ra);
		during++;
		s503 += st == 503;
		s5xx += st >= 500 && st != 503;
		retry += st == 503 && ra;
	}
	n1 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);

	/* The fault goes away: the same programs serve again, no restart. */
	writable_again();
	admin_exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
	           "WHERE datname = current_database() AND pid <> pg_backend_pid() "
	           "AND application_name LIKE '%.fcgi'");
	ck_assert_int_eq(get_enroll(&ra), 200);
	after++;
	n2 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);

	printf("faults ledger (%s): read-only database: sent %d before (2xx %d), %d during "
	       "(503 %d with Retry-After %d, other 5xx %d), %d after (2xx %d); challenges "
	       "%s before, %s during (written while read-only: %d), %s after\n",
	        getenv("E2E_MODE"), before, before, during, s503, retry, s5xx, after, after, n0, n1,
	        atoi(n1) - atoi(n0), n2);
	fflush(stdout); /* a failed check exits the forked test without flushing */
	ck_assert_int_eq(s503, FAULT_REQUESTS);
	ck_assert_int_eq(retry, FAULT_REQUESTS);
	ck_assert_int_eq(s5xx, 0);
	ck_assert_str_eq(n1, n0); /* nothing half-written */
	ck_assert_int_eq(atoi(n2), atoi(n0) + 1);
	free(n0);
	free(n1);
	free(n2);
}
END_TEST

/* ------------------------------------------------- restarts and kills */

#define LOAD_LOOPS  4 /* concurrent clients: the most requests in flight at one fault */
#define LOAD_FAULTS 3 /* graceful restart, httpd child killed, FastCGI worker killed */
#define LOAD_AFTER  6 /* requests once the faults are over: all must be 200 */

/* The load: n shell loops of GET /enroll until DIR/stop, one status file each. */
static void load_start(const char *dir, int loops)
{
	char script[1200];

	snprintf(script, sizeof(script), "%s/load.sh", dir);
	ts_file_put(script,
	        "d=$1; n=$2; i=0\n"
	        "while [ ! -e \"$d/stop\" ]; do\n"
	        "\ti=$((i + 1))\n"
	        "\tcode=$(curl -s --noproxy '*' --cacert \"$E2E_TLS_CA\" --max-time 30 "
	        "-o \"$d/$n-$i.body\" -w '%%{http_code}' \"$E2E_HTTPS_BASE/enroll\")\n"
	        "\techo \"$i ${code:-000}\" >>\"$d/status-$n\"\n"
	        "done\n"
	        "touch \"$d/done-$n\"\n");
	for (int n = 0; n < loops; n++)
		ck_assert_int_eq(
		        ts_sh("sh '%s' '%s' %d </dev/null >/dev/null 2>&1 &", script, dir, n), 0);
}

/* Stops every loop of DIR (each touches DIR/done-NAME for NAME in names). */
static void load_stop(const char *dir, int loops, const char *more)
{
	ck_assert_int_eq(ts_sh("touch '%s/stop'", dir), 0);
	for (int n = 0; n < loops; n++)
		ck_assert_int_eq(ts_sh("i=0; while [ ! -e '%s/done-%d' ] && [ $i -lt 600 ]; do "
		                       "sleep 0.1; i=$((i + 1)); done; [ -e '%s/done-%d' ]",
		                         dir, n, dir, n),
		        0);
	if (more != NULL)
		ck_assert_msg(ts_sh("i=0; for n in %s; do while [ ! -e '%s/done-'$n ] && "
		                    "[ $i -lt 900 ]; do sleep 0.1; i=$((i + 1)); done; "
		                    "[ -e '%s/done-'$n ] || exit 1; done",
		                      more, dir, dir) == 0,
		        "%s: the loops %s did not stop", dir, more);
}

/* The Challenge string of an enrollment profile (signed, not encrypted): malloc'd or NULL. */
static char *profile_challenge(const char *body)
{
	const char *k = strstr(body, "<key>Challenge</key>"), *a, *b;

	if (k == NULL || (a = strstr(k, "<string>")) == NULL)
		return NULL;
	a += strlen("<string>");
	if ((b = strstr(a, "</string>")) == NULL || b == a)
		return NULL;
	return strndup(a, (size_t)(b - a));
}

struct load_ledger {
	int sent, ok, s503, s5xx, refused, other;
	int told, missing; /* challenges devices were given; of those, not in the database */
};

/* Reads every loop's statuses; each 200's challenge must be a row (nothing told is lost). */
static void load_count(const char *dir, int loops, struct load_ledger *l)
{
	const char *p[1];
	char path[1200], line[64];
	db *d = NULL;
	db_res *r = NULL;

	memset(l, 0, sizeof(*l));
	ck_assert_int_eq(db_new(getenv("MDM_DB"), "e2e-faults", &d), MDM_OK);
	for (int n = 0; n < loops; n++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/status-%d", dir, n);
		ck_assert_ptr_nonnull(f = fopen(path, "r"));
		while (fgets(line, sizeof(line), f) != NULL) {
			int i, code;
			char *body, *ch;

			ck_assert_int_eq(sscanf(line, "%d %d", &i, &code), 2);
			l->sent++;
			if (code == 0) {
				l->refused++;
				continue;
			}
			if (code == 503) {
				l->s503++;
				continue;
			}
			if (code >= 500) {
				l->s5xx++;
				continue;
			}
			if (code != 200) {
				l->other++;
				continue;
			}
			l->ok++;
			snprintf(path, sizeof(path), "%s/%d-%d.body", dir, n, i);
			body = ts_file_get(path, NULL);
			ch = profile_challenge(body);
			free(body);
			ck_assert_msg(ch != NULL, "%s: a 200 without a challenge", path);
			l->told++;
			p[0] = ch;
			ck_assert_int_eq(
			        db_exec(d,
			                "SELECT 1 FROM mdm.challenge WHERE challenge_sha256 = "
			                "encode(sha256(convert_to($1, 'UTF8')), 'hex')",
			                1, p, &r),
			        MDM_OK);
			l->missing += db_res_rows(r) != 1;
			db_res_free(r);
			r = NULL;
			free(ch);
		}
		fclose(f);
	}
	db_free(d);
}

/* The pid of one httpd child that serves requests (not mod_fcgid's process manager). */
static int httpd_child(int parent)
{
	char out[1024];
	char *s;
	int pid;

	snprintf(out, sizeof(out), "%s/faults-child.pid", getenv("E2E_TMP"));
	ck_assert_int_eq(ts_sh("for c in $(ps -o pid= --ppid %d); do "
	                       "pgrep -P $c >/dev/null || { echo $c; break; }; done >'%s'",
	                         parent, out),
	        0);
	s = ts_file_get(out, NULL);
	pid = atoi(s);
	free(s);
	return pid;
}

START_TEST(restarts_and_kills_lose_nothing)
{
	const char *pidfile = getenv("E2E_APACHE_PID_FILE"), *cgi = getenv("E2E_CGI_BIN");
	char dir[1024], *s, *n0, *n1;
	struct load_ledger l;
	int parent, child, after = 0, ra;

	if (pidfile == NULL || cgi == NULL) {
		printf("faults-e2e: E2E_APACHE_PID_FILE or E2E_CGI_BIN unset: restarts skipped\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/faults-load-%s", getenv("E2E_TMP"), getenv("E2E_MODE"));
	ck_assert_int_eq(ts_sh("rm -rf '%s' && mkdir -p '%s'", dir, dir), 0);
	s = ts_file_get(pidfile, NULL);
	parent = atoi(s);
	free(s);
	ck_assert_int_gt(parent, 1);

	n0 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);
	load_start(dir, LOAD_LOOPS);
	usleep(1500 * 1000);
	/* Apache's graceful restart (apachectl -k graceful is SIGUSR1 to the parent). */
	ck_assert_int_eq(kill(parent, SIGUSR1), 0);
	usleep(2000 * 1000);
	/* An httpd child killed with whatever it was serving. */
	/* lighttpd is one process: its graceful restart above is the web server's fault. */
	if (strcmp(getenv("E2E_MODE"), "lighttpd") != 0) {
		child = httpd_child(parent);
		ck_assert_int_gt(child, 1);
		ck_assert_int_eq(kill(child, SIGKILL), 0);
		usleep(2000 * 1000);
	}
	/* One FastCGI worker killed (this stack's only; a spawn-fcgi pool keeps the rest). */
	ck_assert_int_eq(ts_sh("kill -9 $(pgrep -o -f '^%s/enroll.fcgi')", cgi), 0);
	usleep(2000 * 1000);
	load_stop(dir, LOAD_LOOPS, NULL);
	n1 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);
	for (int i = 0; i < LOAD_AFTER; i++)
		after += get_enroll(&ra) == 200;
	load_count(dir, LOAD_LOOPS, &l);

	printf("faults ledger (%s): graceful restart, %sFastCGI worker killed "
	       "under %d clients: sent %d (2xx %d, 503 %d, other 5xx %d, connection cut %d, "
	       "other %d; allowed failures %d, the requests in flight at the faults); "
	       "challenges given to devices %d, not in the database %d, written %d; "
	       "%d after (2xx %d)\n",
	        getenv("E2E_MODE"),
	        strcmp(getenv("E2E_MODE"), "lighttpd") != 0 ? "httpd child and " : "", LOAD_LOOPS,
	        l.sent, l.ok, l.s503, l.s5xx, l.refused, l.other, LOAD_LOOPS * LOAD_FAULTS, l.told,
	        l.missing, atoi(n1) - atoi(n0), LOAD_AFTER, after);
	fflush(stdout);
	ck_assert_int_gt(l.ok, LOAD_LOOPS * 4);
	ck_assert_int_le(l.s503 + l.s5xx + l.refused, LOAD_LOOPS * LOAD_FAULTS);
	ck_assert_int_eq(l.other, 0);
	ck_assert_int_eq(l.missing, 0);
	/* Rows beyond what devices were told: only for requests cut after their commit. */
	ck_assert_int_ge(atoi(n1) - atoi(n0), l.told);
	ck_assert_int_le(atoi(n1) - atoi(n0) - l.told, l.s503 + l.s5xx + l.refused);
	ck_assert_int_eq(after, LOAD_AFTER);
	free(n0);
	free(n1);
}
END_TEST

/* ------------------------------------------------------------ disk full */

#define DISK_MB       4   /* the tmpfs holding the table */
#define DISK_MAX_FILL 400 /* requests at most until the last heap page is full */

/* The mount point of this Apache mode's tmpfs. */
static void disk_path(char *buf, size_t n)
{
	snprintf(buf, n, "%s/faults-disk-%s", getenv("E2E_TMP"), getenv("E2E_MODE"));
}

static void super_exec(const char *sql)
{
	ck_assert_msg(sql_try(1, sql) == 0, "%s failed", sql);
}

/* The table and any index of it back home, autovacuum as before. */
#define DISK_HOME                                                                                  \
	"DO $$ DECLARE i text; BEGIN "                                                             \
	"ALTER TABLE mdm.challenge SET TABLESPACE pg_default; "                                    \
	"ALTER TABLE mdm.challenge RESET (autovacuum_enabled); "                                   \
	"FOR i IN SELECT indexrelid::regclass::text FROM pg_index "                                \
	"WHERE indrelid = 'mdm.challenge'::regclass LOOP "                                         \
	"EXECUTE format('ALTER INDEX %s SET TABLESPACE pg_default', i); END LOOP; END $$"

/* An unchecked fixture, before and after the case, in check's parent process: a failed check
 * ends a forked case at once (no checked teardown runs then), and the next Apache mode's case
 * must not find this one's tablespace. Space back, the table home, the tablespace and the
 * mount gone. */
static void disk_clean(void)
{
	char mnt[1024];

	disk_path(mnt, sizeof(mnt));
	(void)ts_sh("rm -f '%s/fill'", mnt);
	if (sql_try(1, DISK_HOME) != 0 ||
	        sql_try(1, "DROP TABLESPACE IF EXISTS mdm_faults_disk") != 0)
		fprintf(stderr,
		        "faults-e2e: could not move mdm.challenge home or drop the "
		        "tablespace mdm_faults_disk\n");
	/* Backends may still hold descriptors of the moved files: detach lazily if busy. */
	(void)ts_sh("if mountpoint -q '%s'; then umount '%s' 2>/dev/null || umount -l '%s'; fi; "
	            "rmdir '%s' 2>/dev/null; true",
	        mnt, mnt, mnt, mnt);
}

START_TEST(disk_full_is_503_then_recovers)
{
	const char *pgdata = getenv("MDM_TEST_PGDATA");
	int before = 0, filled = 0, during = 0, s503 = 0, retry = 0, s5xx = 0, ra, st;
	char mnt[1024], sql[1400], *n0, *n1, *n2;

	if (pgdata == NULL || geteuid() != 0) {
		printf("faults-e2e: disk full needs root (mount) and MDM_TEST_PGDATA: skipped\n");
		return;
	}
	disk_path(mnt, sizeof(mnt));
	ck_assert_int_eq(ts_sh("mkdir -p '%s' && mount -t tmpfs -o size=%dm,mode=0700 "
	                       "mdm-faults '%s' && chown \"$(stat -c %%U '%s')\" '%s'",
	                         mnt, DISK_MB, mnt, pgdata, mnt),
	        0);
	snprintf(sql, sizeof(sql), "CREATE TABLESPACE mdm_faults_disk LOCATION '%s'", mnt);
	super_exec(sql);
	/* So that the fault is the same on every run: no dead row whose space a read could give
	 * back, no autovacuum to give it back, and the indexes left on the big disk (the unique
	 * index of random challenge hashes splits its pages at random). Once the last heap page
	 * is full, every insert needs a new page and no page can have room again. */
	super_exec("VACUUM FULL mdm.challenge");
	super_exec("ALTER TABLE mdm.challenge SET (autovacuum_enabled = false)");
	super_exec("ALTER TABLE mdm.challenge SET TABLESPACE mdm_faults_disk");
	ck_assert_int_eq(get_enroll(&ra), 200);
	before++;

	/* The fault: the filesystem under the hot table is full. */
	ck_assert_int_ne(ts_sh("dd if=/dev/zero of='%s/fill' bs=64k 2>/dev/null", mnt), 0);
	/* Rows still fit in the last page; the first new page fails. */
	while ((st = get_enroll(&ra)) == 200 && filled < DISK_MAX_FILL)
		filled++;
	ck_assert_msg(st == 503 && ra, "disk full: %d without Retry-After after %d enrollments", st,
	        filled);
	n0 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);
	for (int i = 0; i < FAULT_REQUESTS; i++) {
		st = get_enroll(&ra);
		during++;
		s503 += st == 503;
		s5xx += st >= 500 && st != 503;
		retry += st == 503 && ra;
	}
	n1 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);

	/* Space is freed: the same programs serve again. */
	ck_assert_int_eq(ts_sh("rm -f '%s/fill'", mnt), 0);
	ck_assert_int_eq(get_enroll(&ra), 200);
	n2 = e2e_query1("SELECT count(*)::text FROM mdm.challenge", NULL);

	printf("faults ledger (%s): disk full (%d MiB tmpfs tablespace under mdm.challenge's "
	       "heap): "
	       "%d before (2xx %d), %d more fitted in the last page, %d during (503 %d with "
	       "Retry-After %d, other 5xx %d); challenges %s, %s during (written while full: %d), "
	       "%s after space was freed\n",
	        getenv("E2E_MODE"), DISK_MB, before, before, filled, during, s503, retry, s5xx, n0,
	        n1, atoi(n1) - atoi(n0), n2);
	fflush(stdout);
	ck_assert_int_eq(s503, FAULT_REQUESTS);
	ck_assert_int_eq(retry, FAULT_REQUESTS);
	ck_assert_int_eq(s5xx, 0);
	ck_assert_str_eq(n1, n0);
	ck_assert_int_eq(atoi(n2), atoi(n0) + 1);
	free(n0);
	free(n1);
	free(n2);
}
END_TEST

/* ------------------------------------------------------------- failover */

#define FO_GET_LOOPS 2    /* GET /enroll loops beside the device and connect loops */
#define FO_BEFORE_MS 3000 /* load before the primary crashes */
#define FO_AFTER_MS  6000 /* load after the standby is promoted */

/* Runs applesim for the device in DIR/name: its exit status (its log in DIR/name.log). */
static int fo_sim(const char *dir, const char *name, const char *args)
{
	return ts_sh("\"$E2E_APPLESIM\" %s --dir '%s/%s' --enroll-url \"$E2E_HTTPS_BASE/enroll\" "
	             "--trust \"$E2E_DEVICE_CA\" --tls-ca \"$E2E_TLS_CA\" >>'%s/%s.log' 2>&1",
	        args, dir, name, dir, name);
}

/* A value of DIR/name/state (applesim's), malloc'd, or NULL. */
static char *fo_state(const char *dir, const char *name, const char *key)
{
	char path[1200], line[512], *v = NULL;
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/state", dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
			line[strcspn(line, "\n")] = '\0';
			free(v);
			v = strdup(line + klen + 1);
		}
	fclose(f);
	return v;
}

/*
 * The device loops: new iPhones enrolling one after another (DIR/devices:
 * "N EXIT"), and one enrolled iPhone connecting, each round after an
 * operator queued one command (DIR/queued: the UUIDs psql was told were
 * committed; DIR/connects: "N EXIT").
 */
static void fo_devices_start(const char *dir, const char *udid)
{
	char script[1200];
	const char *sim = "\"$E2E_APPLESIM\"",
	           *common = "--enroll-url \"$E2E_HTTPS_BASE/enroll\" --trust \"$E2E_DEVICE_CA\" "
	                     "--tls-ca \"$E2E_TLS_CA\"";

	snprintf(script, sizeof(script), "%s/devices.sh", dir);
	ts_file_put(script,
	        "d=$1; i=0\n"
	        "while [ ! -e \"$d/stop\" ]; do\n"
	        "\ti=$((i + 1))\n"
	        "\t%s enroll --device iphone --dir \"$d/dev-$i\" %s >\"$d/dev-$i.log\" 2>&1\n"
	        "\techo \"$i $?\" >>\"$d/devices\"\n"
	        "done\n"
	        "touch \"$d/done-dev\"\n",
	        sim, common);
	ck_assert_int_eq(ts_sh("sh '%s' '%s' </dev/null >/dev/null 2>&1 &", script, dir), 0);
	snprintf(script, sizeof(script), "%s/connects.sh", dir);
	ts_file_put(script,
	        "d=$1; i=0\n"
	        "while [ ! -e \"$d/stop\" ]; do\n"
	        "\ti=$((i + 1))\n"
	        "\tpsql -X -q -t -A \"$MDM_DB\" -c \"SELECT mdm.cmd_device_information('%s')\" "
	        ">>\"$d/queued\" 2>>\"$d/psql.log\"\n"
	        "\t%s commands --dir \"$d/conn\" >>\"$d/conn.log\" 2>&1\n"
	        "\techo \"$i $?\" >>\"$d/connects\"\n"
	        "done\n"
	        "touch \"$d/done-conn\"\n",
	        udid, sim);
	ck_assert_int_eq(ts_sh("sh '%s' '%s' </dev/null >/dev/null 2>&1 &", script, dir), 0);
}

/* Lines of DIR/name ("N EXIT"): how many, and how many exited 0. */
static void fo_count_runs(const char *dir, const char *name, int *runs, int *ok)
{
	char path[1200], line[64];
	FILE *f;
	int n, rc;

	*runs = *ok = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%d %d", &n, &rc) == 2) {
			(*runs)++;
			*ok += rc == 0;
		}
	fclose(f);
}

/* Every finished enrollment (exit 0) is on the new primary, with its identity. */
static int fo_devices_missing(const char *dir)
{
	char path[1200], line[64], name[32];
	int missing = 0, n, rc;
	FILE *f;

	snprintf(path, sizeof(path), "%s/devices", dir);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *udid, *fp, *got;

		if (sscanf(line, "%d %d", &n, &rc) != 2 || rc != 0)
			continue;
		snprintf(name, sizeof(name), "dev-%d", n);
		udid = fo_state(dir, name, "udid");
		fp = fo_state(dir, name, "identity_sha256");
		ck_assert_msg(
		        udid != NULL && fp != NULL, "%s: enrolled without udid or identity", name);
		got = e2e_query1("SELECT coalesce(string_agg(identity_sha256, ','), '') FROM "
		                 "mdm.devices WHERE udid = $1 AND user_id IS NULL AND enrolled",
		        udid);
		if (strcmp(got, fp) != 0) {
			printf("failover: %s (%s) finished its enrollment but is not enrolled with "
			       "its "
			       "identity on the new primary (%s)\n",
			        name, udid, got);
			missing++;
		}
		free(got);
		free(udid);
		free(fp);
	}
	fclose(f);
	return missing;
}

struct fo_commands {
	int queued, lost, answered_ok, redelivered;
};

/*
 * The connecting device's ledger: a command delivered again after the
 * server answered 200 to its report (acks.log, in order); a command the
 * operator was told is queued that has no stored answer at the end; every
 * command answered once.
 */
static void fo_commands_count(const char *dir, struct fo_commands *c)
{
	char path[1200], line[200], uuid[64], what[32];
	char(*done)[64] = NULL;
	int ndone = 0, cap = 0;
	long status;
	FILE *f;

	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), "%s/conn/acks.log", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		int k = sscanf(line, "%63s %31s %ld", uuid, what, &status);

		if (k >= 2 && strcmp(what, "delivered") == 0) {
			for (int i = 0; i < ndone; i++)
				if (strcmp(done[i], uuid) == 0) {
					printf("failover: %s delivered again after its answer was "
					       "stored (200)\n",
					        uuid);
					c->redelivered++;
				}
		} else if (k == 3 && strcmp(what, "answered") == 0 && status == 200) {
			if (ndone == cap) {
				cap = cap ? 2 * cap : 64;
				ck_assert_ptr_nonnull(
				        done = realloc(done, (size_t)cap * sizeof(*done)));
			}
			snprintf(done[ndone++], sizeof(done[0]), "%s", uuid);
			c->answered_ok++;
		}
	}
	fclose(f);
	free(done);

	snprintf(path, sizeof(path), "%s/queued", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f) != NULL) {
		char *got;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		c->queued++;
		got = e2e_query1("SELECT string_agg(status, ',') FROM mdm.command_results WHERE "
		                 "upper(command_uuid) = upper($1)",
		        line);
		if (strcmp(got, "Acknowledged") != 0) {
			printf("failover: queued command %s has answers '%s' on the new primary, "
			       "want one Acknowledged\n",
			        line, got);
			c->lost++;
		}
		free(got);
	}
	fclose(f);
}

START_TEST(failover_loses_nothing)
{
	const char *promote = getenv("E2E_FAILOVER");
	char dir[1024], *udid;
	struct load_ledger l;
	struct fo_commands c;
	int dev_runs, dev_ok, conn_runs, conn_ok, dev_missing, after = 0, ra, odd5xx;

	if (promote == NULL) {
		printf("failover-e2e: E2E_FAILOVER unset (tests/run.sh's failover pass sets it): "
		       "skipped\n");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/failover-%s", getenv("E2E_TMP"), getenv("E2E_MODE"));
	ck_assert_int_eq(ts_sh("rm -rf '%s' && mkdir -p '%s'", dir, dir), 0);
	/* The device that connects throughout, enrolled while all is well. */
	ck_assert_msg(fo_sim(dir, "conn", "enroll --device iphone") == 0, "%s/conn.log", dir);
	ck_assert_ptr_nonnull(udid = fo_state(dir, "conn", "udid"));

	load_start(dir, FO_GET_LOOPS);
	fo_devices_start(dir, udid);
	usleep(FO_BEFORE_MS * 1000);
	/* The primary crashes; the synchronous standby is promoted. */
	ck_assert_msg(ts_sh("%s", promote) == 0, "failover failed: %s", promote);
	usleep(FO_AFTER_MS * 1000);
	load_stop(dir, FO_GET_LOOPS, "dev conn");

	/* After: every kind of request is served by the new primary. */
	for (int i = 0; i < LOAD_AFTER; i++)
		after += get_enroll(&ra) == 200;
	ck_assert_msg(fo_sim(dir, "after", "enroll --device iphone") == 0,
	        "no enrollment after the failover: %s/after.log", dir);
	ck_assert_msg(fo_sim(dir, "conn", "commands") == 0,
	        "the device cannot connect after the failover: %s/conn.log", dir);
	e2e_assert_query("SELECT count(*)::text FROM mdm.queue WHERE udid = $1", udid, "0");

	load_count(dir, FO_GET_LOOPS, &l);
	fo_count_runs(dir, "devices", &dev_runs, &dev_ok);
	fo_count_runs(dir, "connects", &conn_runs, &conn_ok);
	dev_missing = fo_devices_missing(dir);
	fo_commands_count(dir, &c);
	/* A 5xx other than 503 anywhere in the devices' logs. */
	odd5xx = ts_sh("cat '%s'/*.log | grep -E 'HTTP 5(0[0-24-9]|[1-9][0-9])' >&2", dir) == 0;

	printf("faults ledger (%s): failover (primary crashed, synchronous standby promoted) "
	       "under %d GET /enroll loops, a device enrolling and a device connecting: "
	       "GET /enroll sent %d (2xx %d, 503 %d, other 5xx %d, cut %d, other %d), "
	       "challenges given %d, not on the new primary %d; enrollments %d (finished %d, "
	       "not on the new primary %d); connects %d (finished %d); commands queued %d, "
	       "reports stored (200) %d, lost %d, delivered again after 200 %d; other 5xx in "
	       "the devices' logs %s; %d after (2xx %d)\n",
	        getenv("E2E_MODE"), FO_GET_LOOPS, l.sent, l.ok, l.s503, l.s5xx, l.refused, l.other,
	        l.told, l.missing, dev_runs, dev_ok, dev_missing, conn_runs, conn_ok, c.queued,
	        c.answered_ok, c.lost, c.redelivered, odd5xx ? "yes" : "none", LOAD_AFTER, after);
	fflush(stdout);
	ck_assert_int_gt(l.ok, 0);
	ck_assert_int_gt(dev_ok, 0);
	ck_assert_int_gt(c.answered_ok, 0);
	ck_assert_int_eq(l.missing, 0);
	ck_assert_int_eq(l.s5xx, 0);
	ck_assert_int_eq(l.other, 0);
	ck_assert_int_eq(dev_missing, 0);
	ck_assert_int_eq(c.lost, 0);
	ck_assert_int_eq(c.redelivered, 0);
	ck_assert_int_eq(odd5xx, 0);
	ck_assert_int_eq(after, LOAD_AFTER);
	free(udid);
}
END_TEST

Suite *failover_e2e_suite(void)
{
	return ts_suite("failover-e2e", "failover", 300, failover_loses_nothing);
}

Suite *faults_e2e_suite(void)
{
	Suite *s = suite_create("faults-e2e");
	TCase *tc = ts_tcase(s, "read-only", 120, NULL, NULL);

	tcase_add_unchecked_fixture(tc, NULL, writable_again);
	ts_add_tests(tc, read_only_database_is_503_then_recovers);
	ts_add_tests(ts_tcase(s, "restarts", 120, NULL, NULL), restarts_and_kills_lose_nothing);
	tc = ts_tcase(s, "disk-full", 120, NULL, NULL);
	tcase_add_unchecked_fixture(tc, disk_clean, disk_clean);
	ts_add_tests(tc, disk_full_is_503_then_recovers);
	return s;
}
