/*
 * command_bench: command-channel connects per second through Apache, and
 * the server's CPU time per connect.
 *
 *   command_bench HTTPS_BASE TLS_CA N CONCURRENCY USER [ROOT_PID...]
 *
 * MDM_DB names the stack's database; the active CA (mdmctl ca init) is
 * loaded from it.  Setup, not timed: N device identities (EC P-256 keys,
 * certificates issued by the CA and recorded as mdm.certificate does for
 * SCEP), each checked in through Apache (Authenticate, TokenUpdate), a
 * warm-up Idle for the first devices, then one ProfileList command queued
 * per device.  The timed run: every device makes one connect as a device
 * woken by a push does (Apple MDM protocol, ServerURL): on one new TLS
 * connection with its identity as client certificate, PUT Idle (gets its
 * command), PUT Acknowledged for it (gets an empty 200), close.
 * CONCURRENCY connects at a time, every one a full handshake.  Then the
 * same with each device resuming its own TLS session (a second command
 * each; the sessions made by an untimed Idle), and connects with nothing
 * due (Idle, an empty 200), resumed and full.  After each clock stops,
 * every session must have got its own command and every command must be
 * acknowledged, once delivered, in mdm.command_queue.
 *
 * CPU is the utime+stime (+ waited-for children) of USER's processes
 * named server.fcgi, apache2 (lighttpd with BENCH_WEB=lighttpd) and
 * postgres (those ROOT_PIDs, or their
 * children, when given), from /proc, before and after;
 * one that starts during the run counts whole.  Then, for scale, what
 * TLS alone allows with the same client: N full handshakes with the same
 * identities, each with one GET Apache answers 404 itself.  Prints one
 * line: `connects=N ok=N ... per_second=R ... cpu_ms_per_connect=C ...
 * handshake_only_per_second=H ...`, then `resumed: ...
 * cpu_ms_per_connect_resumed=...` and `idle only: cpu_ms_per_idle=...
 * cpu_ms_per_idle_resumed=...`, each with its split by program.
 */
#include "ca.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "x509.h"
#include "ts_sys.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctype.h>
#include <dirent.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHECKIN_CTYPE "Content-Type: application/x-apple-aspen-mdm-checkin"
#define SERVER_CTYPE  "Content-Type: application/x-apple-aspen-mdm"

/*
 * CHECKIN Authenticate + TokenUpdate; WARM and IDLE one Idle (IDLE: nothing
 * may be due); CONNECT Idle -> command -> Acknowledged; HANDSHAKE a static 404.
 */
enum phase { PHASE_CHECKIN, PHASE_WARM, PHASE_IDLE, PHASE_CONNECT, PHASE_HANDSHAKE };

struct dev {
	char udid[64];
	char command[80];    /* the CommandUUID queued for it */
	char delivered[130]; /* the CommandUUID the Idle got ("" if none) */
	char *cert_pem, *key_pem;
	size_t cert_len, key_len;
	int step, ok, connections;
	CURLSH *tls; /* its TLS session, kept between connections when resuming */
};

struct session {
	struct dev *dev;
	enum phase phase;
	CURL *c;
	struct curl_slist *hdr;
	char body[2048];
	char *reply;
	size_t reply_len;
};

struct bench {
	const char *base, *tls_ca;
	struct dev *devs;
	int n, conc, failed;
	int resume; /* each device resumes its TLS session (as Apple devices do) */
};

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct session *s = ud;
	char *np;

	if (s->reply_len + size * n > 65536 ||
	        (np = realloc(s->reply, s->reply_len + size * n + 1)) == NULL)
		return 0;
	memcpy(np + s->reply_len, ptr, size * n);
	s->reply = np;
	s->reply_len += size * n;
	s->reply[s->reply_len] = '\0';
	return size * n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- CPU */

/* This client's own CPU so far, in seconds: it shares the machine with the server. */
static double self_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

enum proc_kind { PROC_SERVER, PROC_APACHE, PROC_POSTGRES, PROC__MAX };

/* The web server's process name: apache2, or lighttpd with BENCH_WEB=lighttpd. */
static const char *proc_names[PROC__MAX] = {
        [PROC_SERVER] = "server.fcgi",
        [PROC_APACHE] = "apache2",
        [PROC_POSTGRES] = "postgres",
};

struct proc_cpu {
	int pid;
	enum proc_kind kind;
	long long ticks;
};

struct cpu_snap {
	struct proc_cpu *p;
	size_t n, cap;
};

/* utime+stime+cutime+cstime of pid, in clock ticks; -1 if gone. */
static long long cpu_ticks(int pid)
{
	char path[64], line[2048], *p;
	long long v[4];
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), fp) == NULL) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	/* Fields after the command name "(...)": utime is the 14th field overall. */
	if ((p = strrchr(line, ')')) == NULL)
		return -1;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld %lld %lld", &v[0],
	            &v[1], &v[2], &v[3]) != 4)
		return -1;
	return v[0] + v[1] + v[2] + v[3];
}

/*
 * The stack's own processes (ROOT_PID... on the command line: PostgreSQL's
 * postmaster, Apache's parent, the server.fcgi pool): one of them or a
 * child of one counts; without them every process of the user does.  The
 * user may run other clusters and Apaches (a developer's, a test's).
 */
static const char *const *roots;
static int nroots;

static int cpu_is_ours(int pid)
{
	char path[64], line[2048], *p;
	int ppid = -1;
	FILE *fp;

	if (nroots == 0)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), fp) != NULL && (p = strrchr(line, ')')) != NULL &&
	        sscanf(p + 2, "%*c %d", &ppid) != 1)
		ppid = -1;
	fclose(fp);
	for (int i = 0; i < nroots; i++)
		if (atoi(roots[i]) == pid || atoi(roots[i]) == ppid)
			return 1;
	return 0;
}

/* Every process of uid whose name is one of proc_names, with its CPU so far. */
static int cpu_snapshot(uid_t uid, struct cpu_snap *s)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;

	s->n = 0;
	if (dir == NULL)
		return 0;
	while ((e = readdir(dir)) != NULL) {
		char path[300], comm[64] = "";
		struct stat st;
		FILE *fp;
		int k, pid;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = atoi(e->d_name);
		snprintf(path, sizeof(path), "/proc/%d", pid);
		if (stat(path, &st) != 0 || st.st_uid != uid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), fp) == NULL)
			comm[0] = '\0';
		fclose(fp);
		comm[strcspn(comm, "\n")] = '\0';
		for (k = 0; k < PROC__MAX; k++)
			if (strcmp(comm, proc_names[k]) == 0)
				break;
		if (k == PROC__MAX || !cpu_is_ours(pid))
			continue;
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 64;
			struct proc_cpu *np = realloc(s->p, cap * sizeof(*np));
			if (np == NULL) {
				closedir(dir);
				return 0;
			}
			s->p = np;
			s->cap = cap;
		}
		s->p[s->n].pid = pid;
		s->p[s->n].kind = (enum proc_kind)k;
		if ((s->p[s->n].ticks = cpu_ticks(pid)) >= 0)
			s->n++;
	}
	closedir(dir);
	return 1;
}

/* CPU between two snapshots per kind, in ticks; a process new in b counts whole. */
static void cpu_delta(const struct cpu_snap *a, const struct cpu_snap *b, long long *out)
{
	memset(out, 0, PROC__MAX * sizeof(*out));
	for (size_t i = 0; i < b->n; i++) {
		long long before = 0;
		for (size_t j = 0; j < a->n; j++)
			if (a->p[j].pid == b->p[i].pid) {
				before = a->p[j].ticks;
				break;
			}
		out[b->p[i].kind] += b->p[i].ticks - before;
	}
}

/* ---------------------------------------------------------------- setup */

/* A device identity: EC P-256 key, certificate from the CA, recorded in mdm.certificate. */
static int dev_identity(db *d, const struct ca_state *ca, struct dev *v)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	struct x509_issue_policy pol = {30, 0, 0};
	struct x509_st *cert = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long len;
	long long id;
	int ok = 0;

	if (key == NULL || req == NULL || name == NULL || bio == NULL)
		goto out;
	if (!X509_NAME_add_entry_by_txt(
	            name, "CN", MBSTRING_ASC, (const unsigned char *)v->udid, -1, -1, 0) ||
	        !X509_REQ_set_subject_name(req, name) || !X509_REQ_set_pubkey(req, key) ||
	        !X509_REQ_sign(req, key, EVP_sha256())) {
		fprintf(stderr, "command_bench: X509_REQ for %s failed\n", v->udid);
		goto out;
	}
	if (x509_issue(ca->active, ca->active_key, req, &pol, time(NULL), &cert) != MDM_OK ||
	        ca_cert_insert(d, cert, "device", NULL, NULL, NULL, &id) != MDM_OK ||
	        x509_cert_to_pem(cert, &v->cert_pem, &v->cert_len) != MDM_OK) {
		fprintf(stderr, "command_bench: issuing the identity of %s failed\n", v->udid);
		goto out;
	}
	if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ||
	        (len = BIO_get_mem_data(bio, &p)) <= 0 ||
	        (v->key_pem = malloc((size_t)len)) == NULL) {
		fprintf(stderr, "command_bench: PEM_write_bio_PrivateKey failed\n");
		goto out;
	}
	memcpy(v->key_pem, p, (size_t)len);
	v->key_len = (size_t)len;
	ok = 1;
out:
	BIO_free(bio);
	x509_cert_free(cert);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return ok;
}

struct issue_job {
	const struct ca_state *ca;
	struct dev *devs;
	int n;
};

static mdm_err issue_tx(db *d, void *arg)
{
	struct issue_job *j = arg;

	for (int i = 0; i < j->n; i++)
		if (!dev_identity(d, j->ca, &j->devs[i]))
			return MDM_ERR_INTERNAL;
	return MDM_OK;
}

/*
 * One ProfileList command per bench device, as an admin would queue it:
 * CommandUUID CMD-<batch><UDID>.
 */
static int queue_commands(db *d, const char *prefix, const char *batch)
{
	const char *p[2] = {prefix, batch};

	if (db_exec(d,
	            "INSERT INTO mdm.command (command_uuid, request_type, plist) "
	            "SELECT 'CMD-' || $2 || udid, 'ProfileList', "
	            "'<?xml version=\"1.0\" encoding=\"UTF-8\"?>' || chr(10) || "
	            "'<plist version=\"1.0\"><dict><key>CommandUUID</key><string>CMD-' || $2 || "
	            "udid || '</string><key>Command</key><dict><key>RequestType</key>"
	            "<string>ProfileList</string></dict></dict></plist>' || chr(10) "
	            "FROM mdm.enrollment WHERE starts_with(udid, $1) AND user_id IS NULL",
	            2, p, NULL) != MDM_OK ||
	        db_exec(d,
	                "INSERT INTO mdm.command_queue (enrollment_id, command_uuid) "
	                "SELECT id, 'CMD-' || $2 || udid FROM mdm.enrollment "
	                "WHERE starts_with(udid, $1) AND user_id IS NULL",
	                2, p, NULL) != MDM_OK)
		return 0;
	return 1;
}

/* ---------------------------------------------------------------- sessions */

static int session_steps(enum phase ph)
{
	return ph == PHASE_CONNECT || ph == PHASE_CHECKIN ? 2 : 1;
}

/* The body of the session's current step. */
static void session_body(struct session *s)
{
	const struct dev *v = s->dev;

	if (s->phase == PHASE_CHECKIN && v->step == 0)
		snprintf(s->body, sizeof(s->body),
		        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
		        "<key>BuildVersion</key><string>21A5326a</string>"
		        "<key>MessageType</key><string>Authenticate</string>"
		        "<key>Model</key><string>iPhone15,2</string>"
		        "<key>ModelName</key><string>iPhone</string>"
		        "<key>OSVersion</key><string>17.0</string>"
		        "<key>ProductName</key><string>iPhone15,2</string>"
		        "<key>SerialNumber</key><string>B%.10s</string>"
		        "<key>Topic</key><string>com.apple.mgmt.External.bench</string>"
		        "<key>UDID</key><string>%s</string></dict></plist>\n",
		        v->udid + strlen(v->udid) - 10, v->udid);
	else if (s->phase == PHASE_CHECKIN)
		snprintf(s->body, sizeof(s->body),
		        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
		        "<key>AwaitingConfiguration</key><false/>"
		        "<key>MessageType</key><string>TokenUpdate</string>"
		        "<key>PushMagic</key><string>BENCH-MAGIC-%s</string>"
		        "<key>Token</key><data>AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=</data>"
		        "<key>Topic</key><string>com.apple.mgmt.External.bench</string>"
		        "<key>UDID</key><string>%s</string></dict></plist>\n",
		        v->udid, v->udid);
	else if (v->step == 0)
		snprintf(s->body, sizeof(s->body),
		        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
		        "<key>Status</key><string>Idle</string>"
		        "<key>UDID</key><string>%s</string></dict></plist>\n",
		        v->udid);
	else
		snprintf(s->body, sizeof(s->body),
		        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
		        "<key>CommandUUID</key><string>%s</string>"
		        "<key>Status</key><string>Acknowledged</string>"
		        "<key>UDID</key><string>%s</string></dict></plist>\n",
		        v->delivered, v->udid);
}

/* The CommandUUID in a command plist, as a device reads it; "" if none. */
static void command_uuid_of(const char *xml, char *out, size_t cap)
{
	const char *k = xml ? strstr(xml, "<key>CommandUUID</key>") : NULL;
	const char *a, *b;

	out[0] = '\0';
	if (k == NULL || (a = strstr(k, "<string>")) == NULL ||
	        (b = strstr(a, "</string>")) == NULL)
		return;
	a += strlen("<string>");
	if ((size_t)(b - a) < cap)
		snprintf(out, cap, "%.*s", (int)(b - a), a);
}

static void session_send(struct bench *b, CURLM *m, struct session *s)
{
	struct dev *v = s->dev;
	char url[1024];
	int last = v->step == session_steps(s->phase) - 1;

	free(s->reply);
	s->reply = NULL;
	s->reply_len = 0;
	if (s->phase == PHASE_HANDSHAKE) {
		/* Apache alone: a static 404, no FastCGI program, no database. */
		snprintf(url, sizeof(url), "%s/bench-handshake-only", b->base);
		curl_easy_setopt(s->c, CURLOPT_URL, url);
	} else {
		snprintf(url, sizeof(url), "%s%s", b->base,
		        s->phase == PHASE_CHECKIN ? "/mdm/checkin" : "/mdm/server");
		session_body(s);
		curl_easy_setopt(s->c, CURLOPT_URL, url);
		curl_easy_setopt(s->c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(s->c, CURLOPT_POSTFIELDS, s->body);
		curl_easy_setopt(s->c, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
	}
	/* One connection per session: a fresh one first, closed after the last step. */
	curl_easy_setopt(s->c, CURLOPT_FRESH_CONNECT, v->step == 0 ? 1L : 0L);
	curl_easy_setopt(s->c, CURLOPT_FORBID_REUSE, last ? 1L : 0L);
	curl_multi_add_handle(m, s->c);
}

static struct session *session_new(struct bench *b, struct dev *v, enum phase ph)
{
	struct session *s = calloc(1, sizeof(*s));
	struct curl_blob cert, key;

	if (s == NULL || (s->c = curl_easy_init()) == NULL) {
		free(s);
		return NULL;
	}
	s->dev = v;
	s->phase = ph;
	v->step = 0;
	s->hdr = curl_slist_append(NULL, ph == PHASE_CHECKIN ? CHECKIN_CTYPE : SERVER_CTYPE);
	cert.data = v->cert_pem;
	cert.len = v->cert_len;
	cert.flags = CURL_BLOB_COPY;
	key.data = v->key_pem;
	key.len = v->key_len;
	key.flags = CURL_BLOB_COPY;
	curl_easy_setopt(s->c, CURLOPT_HTTPHEADER, s->hdr);
	curl_easy_setopt(s->c, CURLOPT_CAINFO, b->tls_ca);
	curl_easy_setopt(s->c, CURLOPT_SSLCERT_BLOB, &cert);
	curl_easy_setopt(s->c, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(s->c, CURLOPT_SSLKEY_BLOB, &key);
	curl_easy_setopt(s->c, CURLOPT_SSLKEYTYPE, "PEM");
	/* A full handshake every connect, or the device's own session resumed. */
	if (b->resume && v->tls != NULL)
		curl_easy_setopt(s->c, CURLOPT_SHARE, v->tls);
	else
		curl_easy_setopt(s->c, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(s->c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(s->c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->c, CURLOPT_PRIVATE, s);
	curl_easy_setopt(s->c, CURLOPT_TIMEOUT, 60L);
	return s;
}

static void session_free(struct session *s)
{
	if (s == NULL)
		return;
	curl_easy_cleanup(s->c);
	curl_slist_free_all(s->hdr);
	free(s->reply);
	free(s);
}

/*
 * A step's answer: 1 to go on (or end the session well), 0 on a wrong
 * one (counted; the session ends).  What the Idle delivered is only kept
 * here and compared with the queue after the clock stops.
 */
static int session_check(struct session *s, CURLcode cc)
{
	struct dev *v = s->dev;
	long status = 0, conns = 0;
	int want_body = s->phase == PHASE_CONNECT && v->step == 0;
	long want_status = s->phase == PHASE_HANDSHAKE ? 404 : 200;

	if (cc == CURLE_OK)
		curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(s->c, CURLINFO_NUM_CONNECTS, &conns);
	v->connections += (int)conns;
	if (status != want_status) {
		fprintf(stderr, "command_bench: %s step %d of phase %d: %s, HTTP %ld\n", v->udid,
		        v->step, (int)s->phase, curl_easy_strerror(cc), status);
		return 0;
	}
	if (want_body) {
		command_uuid_of(s->reply, v->delivered, sizeof(v->delivered));
		if (v->delivered[0] == '\0') {
			fprintf(stderr, "command_bench: %s: Idle got no command\n", v->udid);
			return 0;
		}
	} else if (s->reply_len != 0 && s->phase != PHASE_HANDSHAKE) {
		fprintf(stderr, "command_bench: %s step %d of phase %d: a body where none is due\n",
		        v->udid, v->step, (int)s->phase);
		return 0;
	}
	return 1;
}

/* Runs one session of phase ph for each of devs[0..n), conc at a time. */
static int run_phase(struct bench *b, struct dev *devs, int n, enum phase ph)
{
	CURLM *m = curl_multi_init();
	int next = 0, running = 0, failed = 0;

	if (m == NULL)
		return 0;
	while (next < n || running > 0) {
		CURLMsg *msg;
		int left;

		while (next < n && running < b->conc) {
			struct session *s = session_new(b, &devs[next], ph);
			if (s == NULL) {
				curl_multi_cleanup(m);
				return 0;
			}
			session_send(b, m, s);
			next++;
			running++;
		}
		curl_multi_perform(m, &left);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct session *s;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			curl_multi_remove_handle(m, s->c);
			if (!session_check(s, msg->data.result)) {
				failed++;
			} else if (++s->dev->step < session_steps(ph)) {
				session_send(b, m, s);
				continue;
			} else {
				s->dev->ok = 1;
			}
			session_free(s);
			running--;
		}
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	curl_multi_cleanup(m);
	return failed == 0;
}

/* ---------------------------------------------------------------- main */

/* A timed phase: wall seconds, the servers' CPU by kind (ticks), the client's CPU seconds. */
struct timing {
	double secs, client_s;
	long long cpu[PROC__MAX];
};

/* Runs ph for every device, measured; window: the perf window too (BENCH_WINDOW). */
static int timed_phase(struct bench *b, enum phase ph, uid_t uid, int window, struct timing *t)
{
	struct cpu_snap s0 = {0}, s1 = {0};
	double t0, u0;
	int ok = 0;

	memset(t, 0, sizeof(*t));
	if (window)
		ts_bench_window("start");
	if (cpu_snapshot(uid, &s0)) {
		u0 = self_cpu_s();
		t0 = now_s();
		ok = run_phase(b, b->devs, b->n, ph);
		t->secs = now_s() - t0;
		t->client_s = self_cpu_s() - u0;
		if (cpu_snapshot(uid, &s1))
			cpu_delta(&s0, &s1, t->cpu);
		else
			ok = 0;
	}
	if (window)
		ts_bench_window("stop");
	free(s0.p);
	free(s1.p);
	return ok;
}

/* Server CPU in ms per operation: one kind, or all (PROC__MAX). */
static double timing_ms(const struct timing *t, int kind, int n)
{
	long long ticks = 0;

	for (int k = 0; k < PROC__MAX; k++)
		if (kind == PROC__MAX || k == kind)
			ticks += t->cpu[k];
	return (double)ticks * 1000.0 / (double)sysconf(_SC_CLK_TCK) / n;
}

/* How many of the bench's commands were delivered once, to their device, and acknowledged. */
static long acknowledged(db *d, const char *prefix, const char *batch)
{
	const char *p[2] = {prefix, batch};
	db_res *r = NULL;
	long n = -1;

	if (db_exec(d,
	            "SELECT count(*) FROM mdm.command_queue q "
	            "JOIN mdm.enrollment e ON e.id = q.enrollment_id "
	            "JOIN mdm.command_result res ON res.command_uuid = q.command_uuid "
	            " AND res.enrollment_id = e.id AND res.status = 'Acknowledged' "
	            "WHERE starts_with(e.udid, $1) AND q.command_uuid = 'CMD-' || $2 || e.udid "
	            "AND q.status = 'acknowledged' AND q.delivered_count = 1",
	            2, p, &r) == MDM_OK)
		n = atol(db_res_get0(r, 0, 0));
	db_res_free(r);
	return n;
}

int main(int argc, char **argv)
{
	struct bench b = {0};
	struct timing full, resumed, idle_full, idle_resumed, hs;
	struct ca_state *ca = NULL;
	struct issue_job job;
	struct passwd *pw;
	config *cfg = NULL;
	db *d = NULL;
	char prefix[40];
	long acked, acked_resumed;
	int ok = 0, ok_resumed = 0, ok_idle, conns = 0, warm, status = 1;

	if (argc < 6) {
		fprintf(stderr,
		        "usage: command_bench HTTPS_BASE TLS_CA N CONCURRENCY USER "
		        "[ROOT_PID...]\n");
		return 2;
	}
	roots = (const char *const *)argv + 6;
	if (getenv("BENCH_WEB") != NULL && strcmp(getenv("BENCH_WEB"), "lighttpd") == 0)
		proc_names[PROC_APACHE] = "lighttpd";
	nroots = argc - 6;
	b.base = argv[1];
	b.tls_ca = argv[2];
	b.n = atoi(argv[3]);
	b.conc = atoi(argv[4]);
	if (b.n <= 0 || b.conc <= 0 || (pw = getpwnam(argv[5])) == NULL)
		return 2;
	log_init("command_bench", MDM_LOG_WARN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (config_load(&cfg) != MDM_OK || db_new(config_get0(cfg, "db"), "bench", &d) != MDM_OK ||
	        ca_load(d, cfg, &ca) != MDM_OK) {
		fprintf(stderr, "command_bench: no database or no CA (MDM_DB, mdmctl ca init)\n");
		goto out;
	}
	if ((b.devs = calloc((size_t)b.n, sizeof(*b.devs))) == NULL)
		goto out;
	snprintf(prefix, sizeof(prefix), "BENCH-%ld-%ld-", (long)getpid(), (long)time(NULL));
	for (int i = 0; i < b.n; i++) {
		snprintf(b.devs[i].udid, sizeof(b.devs[i].udid), "%s%08d", prefix, i);
		snprintf(b.devs[i].command, sizeof(b.devs[i].command), "CMD-%s", b.devs[i].udid);
	}
	job.ca = ca;
	job.devs = b.devs;
	job.n = b.n;
	if (db_tx(d, issue_tx, &job) != MDM_OK)
		goto out;
	if (!run_phase(&b, b.devs, b.n, PHASE_CHECKIN)) {
		fprintf(stderr, "command_bench: check-ins failed\n");
		goto out;
	}
	/* Every server.fcgi connects to PostgreSQL and loads the CA before the clock starts. */
	warm = b.n < 4 * b.conc ? b.n : 4 * b.conc;
	if (!run_phase(&b, b.devs, warm, PHASE_WARM) || !queue_commands(d, prefix, "")) {
		fprintf(stderr, "command_bench: warm-up or queueing failed\n");
		goto out;
	}
	for (int i = 0; i < b.n; i++)
		b.devs[i].ok = b.devs[i].connections = 0;

	/* 1. A connect with a command, on a full handshake: a device woken by a push. */
	if (!timed_phase(&b, PHASE_CONNECT, pw->pw_uid, 1, &full))
		fprintf(stderr, "command_bench: some connects failed\n");
	for (int i = 0; i < b.n; i++) {
		ok += b.devs[i].ok && strcmp(b.devs[i].delivered, b.devs[i].command) == 0;
		conns += b.devs[i].connections;
	}
	acked = acknowledged(d, prefix, "");

	/* 2. The same with each device's own TLS session resumed, as Apple devices do. */
	for (int i = 0; i < b.n; i++) {
		if ((b.devs[i].tls = curl_share_init()) == NULL ||
		        curl_share_setopt(b.devs[i].tls, CURLSHOPT_SHARE,
		                CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
			goto out;
		snprintf(b.devs[i].command, sizeof(b.devs[i].command), "CMD-R-%s", b.devs[i].udid);
		b.devs[i].ok = 0;
		b.devs[i].delivered[0] = '\0';
	}
	b.resume = 1;
	/* Not timed: each device's first connection, whose session the others resume. */
	if (!run_phase(&b, b.devs, b.n, PHASE_IDLE) || !queue_commands(d, prefix, "R-")) {
		fprintf(stderr, "command_bench: the sessions to resume could not be made\n");
		goto out;
	}
	if (!timed_phase(&b, PHASE_CONNECT, pw->pw_uid, 0, &resumed))
		fprintf(stderr, "command_bench: some resumed connects failed\n");
	for (int i = 0; i < b.n; i++)
		ok_resumed += b.devs[i].ok && strcmp(b.devs[i].delivered, b.devs[i].command) == 0;
	acked_resumed = acknowledged(d, prefix, "R-");

	/* 3. A connect with nothing due (Idle, an empty 200), resumed, then on full handshakes. */
	ok_idle = timed_phase(&b, PHASE_IDLE, pw->pw_uid, 0, &idle_resumed);
	b.resume = 0;
	ok_idle = timed_phase(&b, PHASE_IDLE, pw->pw_uid, 0, &idle_full) && ok_idle;

	/* 4. What TLS alone allows: the same handshakes, same client, no program behind. */
	if (!timed_phase(&b, PHASE_HANDSHAKE, pw->pw_uid, 0, &hs)) {
		fprintf(stderr, "command_bench: handshake-only run failed\n");
		goto out;
	}
	printf("connects=%d ok=%d acknowledged=%ld requests=%d tls_connections=%d seconds=%.3f "
	       "per_second=%.1f requests_per_second=%.1f cpu_ms_per_connect=%.2f "
	       "(server.fcgi %.2f, %s %.2f, postgres %.2f) client_cpu_ms_per_connect=%.2f "
	       "handshake_only_per_second=%.1f handshake_only_%s_cpu_ms=%.2f "
	       "handshake_only_client_cpu_ms=%.2f\n",
	        b.n, ok, acked, 2 * b.n, conns, full.secs, b.n / full.secs, 2 * b.n / full.secs,
	        timing_ms(&full, PROC__MAX, b.n), timing_ms(&full, PROC_SERVER, b.n),
	        proc_names[PROC_APACHE], timing_ms(&full, PROC_APACHE, b.n),
	        timing_ms(&full, PROC_POSTGRES, b.n), full.client_s * 1000.0 / b.n, b.n / hs.secs,
	        proc_names[PROC_APACHE], timing_ms(&hs, PROC_APACHE, b.n),
	        hs.client_s * 1000.0 / b.n);
	printf("resumed: ok=%d acknowledged=%ld cpu_ms_per_connect_resumed=%.2f "
	       "(server.fcgi %.2f, %s %.2f, postgres %.2f)\n",
	        ok_resumed, acked_resumed, timing_ms(&resumed, PROC__MAX, b.n),
	        timing_ms(&resumed, PROC_SERVER, b.n), proc_names[PROC_APACHE],
	        timing_ms(&resumed, PROC_APACHE, b.n), timing_ms(&resumed, PROC_POSTGRES, b.n));
	printf("idle only: cpu_ms_per_idle=%.2f (server.fcgi %.2f, %s %.2f, postgres %.2f) "
	       "cpu_ms_per_idle_resumed=%.2f (server.fcgi %.2f, %s %.2f, postgres %.2f)\n",
	        timing_ms(&idle_full, PROC__MAX, b.n), timing_ms(&idle_full, PROC_SERVER, b.n),
	        proc_names[PROC_APACHE], timing_ms(&idle_full, PROC_APACHE, b.n),
	        timing_ms(&idle_full, PROC_POSTGRES, b.n), timing_ms(&idle_resumed, PROC__MAX, b.n),
	        timing_ms(&idle_resumed, PROC_SERVER, b.n), proc_names[PROC_APACHE],
	        timing_ms(&idle_resumed, PROC_APACHE, b.n),
	        timing_ms(&idle_resumed, PROC_POSTGRES, b.n));
	if (ok == b.n && acked == b.n && ok_resumed == b.n && acked_resumed == b.n && ok_idle)
		status = 0;
out:
	if (b.devs != NULL)
		for (int i = 0; i < b.n; i++) {
			free(b.devs[i].cert_pem);
			free(b.devs[i].key_pem);
			if (b.devs[i].tls != NULL)
				curl_share_cleanup(b.devs[i].tls);
		}
	free(b.devs);
	ca_state_free(ca);
	db_free(d);
	config_free(cfg);
	curl_global_cleanup();
	return status;
}
