/*
 * checkin: check-in messages (Apple "Mobile Device Management Protocol")
 * and the device identity rules, against a real PostgreSQL (MDM_TEST_DB;
 * a database per test) and a CA made per test.  Parsing is tested on the
 * real device plists in ../shared/vectors (skipped when absent) and on
 * hostile ones; identity on certificates of our CA, of another CA,
 * self-signed, expired, revoked, unrecorded, bound to another UDID, and
 * on Mdm-Signature (valid, tampered body, disagreeing with TLS).  Every
 * refusal is checked to leave the database exactly as it was.
 */
#define _GNU_SOURCE /* asprintf */
#include "base64.h"
#include "ca.h"
#include "checkin.h"
#include "cms.h"
#include "config.h"
#include "db.h"
#include "identity.h"
#include "log.h"
#include "migrate.h"
#include "plist.h"
#include "suites.h"
#include "ts_db.h"
#include "ts_sys.h"
#include "vectors.h"
#include "x509.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char keypath[128];
static struct ts_db tdb;
static db *d;
static config *cfg;
static struct ca_state *ca;
static time_t now;
static const struct checkin_policy strict = {0, 1};

static void setup(void)
{
	log_set_level(MDM_LOG__MAX);
	ts_db_create(&tdb, "checkin");
	d = tdb.d;
	now = time(NULL);
	snprintf(keypath, sizeof(keypath), "/tmp/mdm-checkin-test-%ld.key", (long)getpid());
	unlink(keypath);
	ck_assert_int_eq(ca_init(d, "/CN=Checkin Test CA/O=mdm", 3650, 2048, keypath, NULL,
	                         now - 10 * 86400),
	        MDM_OK);
	ck_assert_int_eq(config_load_file(NULL, 0, &cfg), MDM_OK);
	ck_assert_int_eq(ca_load(d, cfg, &ca), MDM_OK);
}

static void teardown(void)
{
	ca_state_free(ca);
	ca = NULL;
	config_free(cfg);
	cfg = NULL;
	d = NULL;
	ts_db_drop(&tdb); /* frees d */
	unlink(keypath);
}

/* ------------------------------------------------------------ helpers */

struct device {
	EVP_PKEY *key;
	X509 *cert;
	char *pem;
	long long id;
};

static X509_REQ *csr_for(EVP_PKEY *key, const char *cn)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();

	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_subject_name(req, name);
	X509_REQ_set_pubkey(req, key);
	ck_assert_int_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
	X509_NAME_free(name);
	return req;
}

/*
 * A device identity issued by issuer/ikey at t for days; recorded in
 * mdm.certificate (with udid, renewal_of) unless record is 0.
 */
static void device_issue(struct device *dv, X509 *issuer, EVP_PKEY *ikey, time_t t, int days,
        int record, const char *udid, const char *renewal_of)
{
	struct x509_issue_policy pol = {days, 2048, 0};
	X509_REQ *req;
	size_t len;

	memset(dv, 0, sizeof(*dv));
	dv->key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(dv->key);
	req = csr_for(dv->key, "device");
	ck_assert_int_eq(x509_issue(issuer, ikey, req, &pol, t, &dv->cert), MDM_OK);
	X509_REQ_free(req);
	ck_assert_int_eq(x509_cert_to_pem(dv->cert, &dv->pem, &len), MDM_OK);
	if (record)
		ck_assert_int_eq(
		        ca_cert_insert(d, dv->cert, "device", udid, renewal_of, NULL, &dv->id),
		        MDM_OK);
}

static void device_new(struct device *dv)
{
	device_issue(dv, ca->active, ca->active_key, now, 30, 1, NULL, NULL);
}

static void device_free(struct device *dv)
{
	EVP_PKEY_free(dv->key);
	X509_free(dv->cert);
	free(dv->pem);
	memset(dv, 0, sizeof(*dv));
}

/* Everything a check-in may write, hashed: a refusal must not change it. */
static char *snapshot(void)
{
	db_res *r = NULL;
	char *s;

	ck_assert_int_eq(
	        db_exec(d,
	                "SELECT md5(concat_ws('#', "
	                "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.device t), "
	                "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.enrollment t), "
	                "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.checkin t), "
	                "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM "
	                " mdm.identity_binding t), "
	                "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM mdm.certificate "
	                "t), "
	                "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM "
	                " mdm.ddm_status_report t), "
	                "(SELECT string_agg(t::text, '|' ORDER BY t::text) FROM "
	                " mdm.ddm_status_item t)))",
	                0, NULL, &r),
	        MDM_OK);
	s = strdup(db_res_get0(r, 0, 0));
	db_res_free(r);
	return s;
}

static char *query1(const char *sql, const char *param)
{
	return ts_db_query1(d, sql, param);
}

static void assert_query(const char *sql, const char *param, const char *want)
{
	ts_db_assert(d, sql, param, want);
}

static char *msg_authenticate(const char *udid)
{
	char *s = NULL;

	ck_assert_int_ne(asprintf(&s,
	                         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	                         "<plist version=\"1.0\"><dict>"
	                         "<key>MessageType</key><string>Authenticate</string>"
	                         "<key>Topic</key><string>com.apple.mgmt.External.test</string>"
	                         "<key>UDID</key><string>%s</string>"
	                         "<key>SerialNumber</key><string>C02TEST</string>"
	                         "<key>Model</key><string>iPhone15,2</string>"
	                         "<key>DeviceName</key><string>Test &amp; Phone</string>"
	                         "</dict></plist>\n",
	                         udid),
	        -1);
	return s;
}

static char *msg_token_update(const char *udid, const char *user)
{
	char *s = NULL;

	ck_assert_int_ne(asprintf(&s,
	                         "<plist version=\"1.0\"><dict>"
	                         "<key>MessageType</key><string>TokenUpdate</string>"
	                         "<key>Topic</key><string>com.apple.mgmt.External.test</string>"
	                         "<key>UDID</key><string>%s</string>%s%s%s"
	                         "<key>Token</key><data>3q2+7w==</data>"
	                         "<key>PushMagic</key><string>magic-1</string>"
	                         "<key>UnlockToken</key><data>AAEC</data>"
	                         "<key>AwaitingConfiguration</key><false/>"
	                         "</dict></plist>\n",
	                         udid, user ? "<key>UserID</key><string>" : "", user ? user : "",
	                         user ? "</string><key>UserShortName</key><string>u</string>" : ""),
	        -1);
	return s;
}

static char *msg_simple(const char *type, const char *udid, const char *extra)
{
	char *s = NULL;

	ck_assert_int_ne(asprintf(&s,
	                         "<plist version=\"1.0\"><dict>"
	                         "<key>MessageType</key><string>%s</string>"
	                         "<key>UDID</key><string>%s</string>%s"
	                         "</dict></plist>\n",
	                         type, udid, extra ? extra : ""),
	        -1);
	return s;
}

/*
 * One check-in as checkin.fcgi runs it: identity, parse, process.  tls
 * and sig_by are the TLS certificate and the Mdm-Signature signer (NULL:
 * none); sig_body, when not NULL, is what was signed instead of body.
 */
static mdm_err run_db(db *dd, const struct checkin_policy *pol, const struct device *tls,
        const struct device *sig_by, const char *sig_body, const char *body,
        struct checkin_reply *reply);

static mdm_err run(const struct checkin_policy *pol, const struct device *tls,
        const struct device *sig_by, const char *sig_body, const char *body,
        struct checkin_reply *reply)
{
	return run_db(d, pol, tls, sig_by, sig_body, body, reply);
}

/* One check-in through connection dd (d for every test but the races). */
static mdm_err run_db(db *dd, const struct checkin_policy *pol, const struct device *tls,
        const struct device *sig_by, const char *sig_body, const char *body,
        struct checkin_reply *reply)
{
	struct identity id = {0};
	struct checkin_msg *m = NULL;
	char err[256];
	char *b64 = NULL;
	uint8_t *sig = NULL;
	size_t siglen, b64len;
	const char *signed_body = sig_body ? sig_body : body;
	mdm_err rc;

	memset(reply, 0, sizeof(*reply));
	if (sig_by != NULL) {
		ck_assert_int_eq(
		        cms_sign_detached(sig_by->cert, sig_by->key, (const uint8_t *)signed_body,
		                strlen(signed_body), &sig, &siglen),
		        MDM_OK);
		ck_assert_int_eq(base64_encode(sig, siglen, &b64, &b64len), MDM_OK);
	}
	rc = identity_authenticate(dd, ca, tls ? tls->pem : NULL, b64, (const uint8_t *)body,
	        strlen(body), time(NULL), &id);
	if (rc == MDM_OK)
		rc = checkin_parse((const uint8_t *)body, strlen(body), &m, err, sizeof(err));
	if (rc == MDM_OK)
		rc = checkin_process(dd, pol, &id, m, (const uint8_t *)body, strlen(body), reply,
		        err, sizeof(err));
	checkin_msg_free(m);
	identity_clear(&id);
	free(sig);
	free(b64);
	return rc;
}

static mdm_err run_tls(const struct device *dv, const char *body)
{
	struct checkin_reply reply;
	mdm_err rc = run(&strict, dv, NULL, NULL, body, &reply);

	checkin_reply_clear(&reply);
	return rc;
}

/* Authenticate + TokenUpdate over TLS: an active enrollment. */
static void enroll(const struct device *dv, const char *udid)
{
	char *a = msg_authenticate(udid), *t = msg_token_update(udid, NULL);

	ck_assert_int_eq(run_tls(dv, a), MDM_OK);
	ck_assert_int_eq(run_tls(dv, t), MDM_OK);
	free(a);
	free(t);
}

/* A refused check-in must change nothing. */
static void assert_refused(const struct checkin_policy *pol, const struct device *tls,
        const struct device *sig_by, const char *sig_body, const char *body, mdm_err want)
{
	struct checkin_reply reply;
	char *before = snapshot(), *after;
	mdm_err rc = run(pol, tls, sig_by, sig_body, body, &reply);

	checkin_reply_clear(&reply);
	ck_assert_msg(rc == want, "got %s, want %s", err_str(rc), err_str(want));
	after = snapshot();
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
}

/* ------------------------------------------------------------ parsing */

static const char *parse_err(const char *body)
{
	static char err[256];
	struct checkin_msg *m = NULL;
	mdm_err rc = checkin_parse((const uint8_t *)body, strlen(body), &m, err, sizeof(err));

	checkin_msg_free(m);
	return rc == MDM_OK ? NULL : err;
}

START_TEST(parse_refusals)
{
	static const char *const bad[] = {
	        "",
	        "not a plist",
	        "<plist version=\"1.0\"><array/></plist>",
	        "<plist version=\"1.0\"><dict/></plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><integer>1</integer></dict>"
	        "</plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>Hello</string>"
	        "<key>UDID</key><string>A</string></dict></plist>",
	        /* Authenticate without UDID, without Topic, with a UserID */
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>Authenticate</string>"
	        "<key>Topic</key><string>t</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>Authenticate</string>"
	        "<key>UDID</key><string>A</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>Authenticate</string>"
	        "<key>UDID</key><string>A</string><key>Topic</key><string>t</string>"
	        "<key>UserID</key><string>U</string></dict></plist>",
	        /* UDID of the wrong type, with hostile characters, too long, twice */
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>CheckOut</string>"
	        "<key>UDID</key><data>AA==</data></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>CheckOut</string>"
	        "<key>UDID</key><string>A'; DROP TABLE mdm.device; --</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>CheckOut</string>"
	        "<key>UDID</"
	        "key><string>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA</"
	        "string>"
	        "</dict></plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>CheckOut</string>"
	        "<key>UDID</key><string>A</string><key>EnrollmentID</key><string>B</string></dict>"
	        "</plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>CheckOut</string>"
	        "<key>UDID</key><string>A</string><key>UDID</key><string>B</string></dict></plist>",
	        /* TokenUpdate without Token, with a string Token, empty PushMagic */
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>TokenUpdate</string>"
	        "<key>UDID</key><string>A</string><key>Topic</key><string>t</string>"
	        "<key>PushMagic</key><string>m</string></dict></plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>TokenUpdate</string>"
	        "<key>UDID</key><string>A</string><key>Topic</key><string>t</string>"
	        "<key>Token</key><string>x</string><key>PushMagic</key><string>m</string></dict>"
	        "</plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>TokenUpdate</string>"
	        "<key>UDID</key><string>A</string><key>Topic</key><string>t</string>"
	        "<key>Token</key><data>AA==</data><key>PushMagic</key><string></string></dict>"
	        "</plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>TokenUpdate</string>"
	        "<key>UDID</key><string>A</string><key>Topic</key><string>t</string>"
	        "<key>Token</key><data>AA==</data><key>PushMagic</key><string>m</string>"
	        "<key>AwaitingConfiguration</key><string>no</string></dict></plist>",
	        /* XXE, trailing garbage */
	        "<?xml version=\"1.0\"?><!DOCTYPE plist [<!ENTITY x SYSTEM "
	        "\"file:///etc/passwd\">]>"
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>&x;</string></dict>"
	        "</plist>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>CheckOut</string>"
	        "<key>UDID</key><string>A</string></dict></plist><plist/>",
	        "<plist version=\"1.0\"><dict><key>MessageType</key><string>GetToken</string>"
	        "<key>UDID</key><string>A</string></dict></plist>",
	        "<plist "
	        "version=\"1.0\"><dict><key>MessageType</key><string>UserAuthenticate</string>"
	        "<key>UDID</key><string>A</string></dict></plist>",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *e = parse_err(bad[i]);
		ck_assert_msg(e != NULL, "accepted bad message %zu", i);
		ck_assert_msg(e[0] != '\0', "no reason for bad message %zu", i);
	}
}
END_TEST

START_TEST(parse_token_too_long)
{
	char *s = NULL, *b64 = NULL;
	uint8_t tok[CHECKIN_MAX_TOKEN + 1] = {0};
	size_t n;

	ck_assert_int_eq(base64_encode(tok, sizeof(tok), &b64, &n), MDM_OK);
	ck_assert_int_ne(
	        asprintf(&s,
	                "<plist version=\"1.0\"><dict>"
	                "<key>MessageType</key><string>TokenUpdate</string>"
	                "<key>UDID</key><string>A</string><key>Topic</key><string>t</string>"
	                "<key>Token</key><data>%s</data>"
	                "<key>PushMagic</key><string>m</string></dict></plist>",
	                b64),
	        -1);
	ck_assert_ptr_nonnull(parse_err(s));
	free(s);
	free(b64);
}
END_TEST

/* Every real check-in plist in ../shared/vectors, by MessageType. */
static int vectors_each(void (*fn)(const char *path, const char *body))
{
	static const char *const dirs[] = {
	        "nanomdm/mdm/testdata",
	        "commandment/testdata/Authenticate",
	        "commandment/testdata/TokenUpdate",
	        "commandment/testdata/CheckOut",
	        "micromdm-mdm/test/responses",
	};
	const char *root = vector_dir();
	int n = 0;
	size_t i;

	if (root == NULL) {
		printf("checkin: shared vectors not found (set MDM_VECTORS): real check-in plists "
		       "skipped\n");
		return -1;
	}
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char dir[1024];
		DIR *dp;
		struct dirent *e;

		snprintf(dir, sizeof(dir), "%s/%s", root, dirs[i]);
		if ((dp = opendir(dir)) == NULL) {
			printf("checkin: %s absent: skipped\n", dir);
			continue;
		}
		while ((e = readdir(dp)) != NULL) {
			char path[2048], *body;

			if (strstr(e->d_name, ".plist") == NULL &&
			        strstr(e->d_name, ".xml") == NULL)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			body = ts_file_get(path, NULL);
			if (strstr(body, "<key>MessageType</key>") == NULL) {
				free(body); /* a command result, not a check-in */
				continue;
			}
			fn(path, body);
			free(body);
			n++;
		}
		closedir(dp);
	}
	return n;
}

static void vector_parses(const char *path, const char *body)
{
	struct checkin_msg *m = NULL;
	char err[256];

	if (checkin_parse((const uint8_t *)body, strlen(body), &m, err, sizeof(err)) != MDM_OK) {
		/* Redaction left "AAAA=" or "Base64=" in some <data>: not base64. */
		ck_assert_msg(
		        (strstr(body, "AAAA=\n") != NULL || strstr(body, "Base64=\n") != NULL) &&
		                strstr(err, "invalid base64"),
		        "%s: %s", path, err);
		printf("checkin: %s refused as expected (its redacted <data> is not base64)\n",
		        path);
		return;
	}
	ck_assert_ptr_nonnull(m->udid);
	if (m->type == CHECKIN_TOKEN_UPDATE) {
		ck_assert_ptr_nonnull(m->token);
		ck_assert_ptr_nonnull(m->push_magic);
	}
	if (strstr(path, "-user") != NULL)
		ck_assert_ptr_nonnull(m->user_id);
	checkin_msg_free(m);
}

START_TEST(parse_real_vectors)
{
	int n = vectors_each(vector_parses);

	if (n >= 0)
		ck_assert_int_ge(n, 18);
}
END_TEST

/*
 * The stored body keeps no secret (issue 13, 7; sql/README: mdm.checkin):
 * UnlockToken, PushMagic, BootstrapToken, the push Token, DigestResponse
 * and TokenParameters' SecurityToken are replaced by the string
 * "(redacted)"; everything else is the device's message.
 */
static void assert_body_redacted(const char *path, const struct checkin_msg *m)
{
	static const char *const secrets[] = {
	        "UnlockToken", "PushMagic", "BootstrapToken", "Token", "DigestResponse"};
	char *stored = query1("SELECT coalesce(convert_from(body, 'UTF8'), '(null)') FROM "
	                      "mdm.checkin WHERE udid = $1 ORDER BY id DESC LIMIT 1",
	        m->udid);
	const plist *v, *tp;
	plist *root = NULL;

	ck_assert_msg(strcmp(stored, "(null)") != 0, "%s: no body stored", path);
	ck_assert_msg(
	        plist_parse(stored, strlen(stored), &root) == MDM_OK, "%s: stored body", path);
	ck_assert_str_eq(plist_dict_get_string0(root, "MessageType"), m->message_type);
	ck_assert_str_eq(plist_dict_get_string0(root, "UDID"), m->udid);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if ((v = plist_dict_get0(root, secrets[i])) != NULL)
			ck_assert_msg(plist_get_type(v) == PLIST_STRING &&
			                strcmp(plist_string_get0(v, NULL), "(redacted)") == 0,
			        "%s: %s stored as the device sent it", path, secrets[i]);
	if ((tp = plist_dict_get0(root, "TokenParameters")) != NULL &&
	        (v = plist_dict_get0(tp, "SecurityToken")) != NULL)
		ck_assert_str_eq(plist_string_get0(v, NULL), "(redacted)");
	plist_free(root);
	free(stored);
}

/* Stored with the right fields: each real message through checkin_process. */
static void vector_stored(const char *path, const char *body)
{
	struct checkin_msg *m = NULL;
	struct identity id = {0};
	struct checkin_reply reply;
	struct device dv;
	char err[256], *a;

	if (checkin_parse((const uint8_t *)body, strlen(body), &m, err, sizeof(err)) != MDM_OK)
		return; /* the redacted one, see vector_parses */
	{
		/* Each UDID gets its own identity and Authenticate first (by our own message). */
		char *known = query1("SELECT count(*) FROM mdm.device WHERE udid = $1", m->udid);
		char *bound;

		if (known[0] == '0') {
			device_new(&dv);
			a = msg_authenticate(m->udid);
			ck_assert_int_eq(run_tls(&dv, a), MDM_OK);
			free(a);
			device_free(&dv);
		}
		/* Act as the bound certificate of that UDID. */
		bound = query1(
		        "SELECT identity_certificate_id FROM mdm.device WHERE udid = $1", m->udid);
		id.cert_id = atoll(bound);
		free(bound);
		free(known);
		snprintf(id.serial, sizeof(id.serial), "test");
		snprintf(id.udid, sizeof(id.udid), "%s", m->udid);
		id.sources = IDENTITY_TLS;
	}
	ck_assert_msg(checkin_process(d, &strict, &id, m, (const uint8_t *)body, strlen(body),
	                      &reply, err, sizeof(err)) == MDM_OK,
	        "%s: %s", path, err);
	checkin_reply_clear(&reply);
	if (m->type == CHECKIN_AUTHENTICATE) {
		if (m->serial_number)
			assert_query("SELECT serial_number FROM mdm.device WHERE udid = $1",
			        m->udid, m->serial_number);
		if (m->os_version)
			assert_query("SELECT os_version FROM mdm.device WHERE udid = $1", m->udid,
			        m->os_version);
		if (m->imei)
			assert_query(
			        "SELECT imei FROM mdm.device WHERE udid = $1", m->udid, m->imei);
		if (m->meid)
			assert_query(
			        "SELECT meid FROM mdm.device WHERE udid = $1", m->udid, m->meid);
		if (m->device_name)
			assert_query("SELECT device_name FROM mdm.device WHERE udid = $1", m->udid,
			        m->device_name);
		assert_query("SELECT topic FROM mdm.enrollment WHERE udid = $1 AND user_id IS NULL",
		        m->udid, m->topic);
	} else if (m->type == CHECKIN_TOKEN_UPDATE && m->user_id == NULL) {
		assert_query("SELECT push_magic FROM mdm.enrollment WHERE udid = $1 AND user_id IS "
		             "NULL",
		        m->udid, m->push_magic);
		assert_query(
		        "SELECT active::text FROM mdm.enrollment WHERE udid = $1 AND user_id IS "
		        "NULL",
		        m->udid, "true");
	} else if (m->type == CHECKIN_TOKEN_UPDATE) {
		const char *p[2] = {m->udid, m->user_id};
		db_res *r = NULL;
		ck_assert_int_eq(
		        db_exec(d,
		                "SELECT push_magic FROM mdm.enrollment WHERE udid = $1 AND "
		                "user_id = $2 AND active",
		                2, p, &r),
		        MDM_OK);
		ck_assert_int_eq(db_res_rows(r), 1);
		ck_assert_str_eq(db_res_get0(r, 0, 0), m->push_magic);
		db_res_free(r);
	} else if (m->type == CHECKIN_CHECK_OUT) {
		assert_query("SELECT bool_or(active)::text FROM mdm.enrollment WHERE udid = $1",
		        m->udid, "false");
	}
	assert_query(
	        "SELECT message_type FROM mdm.checkin WHERE udid = $1 ORDER BY id DESC LIMIT 1",
	        m->udid, m->message_type);
	assert_body_redacted(path, m);
	checkin_msg_free(m);
}

START_TEST(store_real_vectors)
{
	vectors_each(vector_stored);
}
END_TEST

/* ------------------------------------------------------------ identity */

START_TEST(enroll_tls_and_signature)
{
	struct device a, b;
	struct checkin_reply reply;
	char *auth = msg_authenticate("UDID-A"), *tok = msg_token_update("UDID-A", NULL);
	char *out = msg_simple("CheckOut", "UDID-A", NULL);

	device_new(&a);
	device_new(&b);
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, auth, &reply), MDM_OK);
	ck_assert_int_eq(reply.status, 200);
	ck_assert_ptr_null(reply.body);
	checkin_reply_clear(&reply);
	assert_query("SELECT serial_number || '/' || model || '/' || device_name FROM mdm.device "
	             "WHERE udid = $1",
	        "UDID-A", "C02TEST/iPhone15,2/Test & Phone");
	assert_query("SELECT enrolled::text FROM mdm.devices WHERE udid = $1", "UDID-A", "false");
	assert_query("SELECT reason FROM mdm.identity_binding WHERE udid = $1", "UDID-A", "first");
	/* The certificate now belongs to UDID-A. */
	assert_query("SELECT udid FROM mdm.certificate WHERE kind = 'device' AND udid IS NOT NULL",
	        NULL, "UDID-A");
	/* TokenUpdate signed (Mdm-Signature only), then both sources agreeing. */
	ck_assert_int_eq(run(&strict, NULL, &a, NULL, tok, &reply), MDM_OK);
	checkin_reply_clear(&reply);
	ck_assert_int_eq(run(&strict, &a, &a, NULL, tok, &reply), MDM_OK);
	checkin_reply_clear(&reply);
	assert_query("SELECT enrolled::text || encode(e.push_token, 'hex') FROM mdm.devices v "
	             "JOIN mdm.enrollment e USING (udid) WHERE udid = $1",
	        "UDID-A", "truedeadbeef");
	assert_query("SELECT string_agg(auth, ',' ORDER BY id) FROM mdm.checkin WHERE udid = $1",
	        "UDID-A", "tls,signature,both");
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, out, &reply), MDM_OK);
	checkin_reply_clear(&reply);
	assert_query("SELECT enrolled::text || (checked_out_at IS NOT NULL)::text FROM mdm.devices "
	             "WHERE udid = $1",
	        "UDID-A", "falsetrue");
	/* History kept: the device row and every message. */
	assert_query("SELECT count(*) FROM mdm.checkin WHERE udid = $1", "UDID-A", "4");
	device_free(&a);
	device_free(&b);
	free(auth);
	free(tok);
	free(out);
}
END_TEST

START_TEST(identity_refusals)
{
	struct device a, other_ca, unrecorded, expired, revoked, self;
	X509 *ca2 = NULL;
	EVP_PKEY *ca2key = EVP_EC_gen("P-256");
	char *auth_a = msg_authenticate("UDID-A"), *tok_a = msg_token_update("UDID-A", NULL);
	char *auth_x = msg_authenticate("UDID-X");
	X509_NAME *n = X509_NAME_new();

	device_new(&a);
	enroll(&a, "UDID-A");
	/* A certificate of another CA (same subject as ours, to be sure names do not count). */
	ck_assert_int_eq(
	        x509_ca_create(ca2key, "/CN=Checkin Test CA/O=mdm", 365, now - 86400, &ca2),
	        MDM_OK);
	device_issue(&other_ca, ca2, ca2key, now, 30, 0, NULL, NULL);
	/* Ours but never recorded, expired, revoked. */
	device_issue(&unrecorded, ca->active, ca->active_key, now, 30, 0, NULL, NULL);
	device_issue(&expired, ca->active, ca->active_key, now - 5 * 86400, 1, 1, NULL, NULL);
	device_new(&revoked);
	assert_query("SELECT 'ok' FROM (SELECT mdm.certificate_revoke(serial, 'keyCompromise') "
	             "FROM mdm.certificate WHERE id = (SELECT max(id) FROM mdm.certificate)) x",
	        NULL, "ok");
	/* Self-signed, with a device-like subject. */
	memset(&self, 0, sizeof(self));
	self.key = EVP_EC_gen("P-256");
	self.cert = X509_new();
	X509_set_version(self.cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(self.cert), 7);
	X509_NAME_add_entry_by_txt(
	        n, "CN", MBSTRING_ASC, (const unsigned char *)"device", -1, -1, 0);
	X509_set_subject_name(self.cert, n);
	X509_set_issuer_name(self.cert, n);
	X509_time_adj_ex(X509_getm_notBefore(self.cert), -1, 0, NULL);
	X509_time_adj_ex(X509_getm_notAfter(self.cert), 1, 0, NULL);
	X509_set_pubkey(self.cert, self.key);
	ck_assert_int_gt(X509_sign(self.cert, self.key, EVP_sha256()), 0);
	{
		size_t len;
		ck_assert_int_eq(x509_cert_to_pem(self.cert, &self.pem, &len), MDM_OK);
	}

	/* No certificate at all. */
	assert_refused(&strict, NULL, NULL, NULL, tok_a, MDM_ERR_FORBIDDEN);
	/* Each bad certificate, by TLS and by signature, for a fresh and a known UDID. */
	{
		const struct device *bad[] = {&other_ca, &unrecorded, &expired, &revoked, &self};
		size_t i;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_refused(&strict, bad[i], NULL, NULL, auth_x, MDM_ERR_FORBIDDEN);
			assert_refused(&strict, NULL, bad[i], NULL, auth_x, MDM_ERR_FORBIDDEN);
			assert_refused(&strict, bad[i], NULL, NULL, tok_a, MDM_ERR_FORBIDDEN);
		}
	}
	/* A tampered body under Mdm-Signature; TLS and signature disagreeing. */
	assert_refused(&strict, NULL, &a, auth_x, tok_a, MDM_ERR_FORBIDDEN);
	assert_refused(&strict, &a, &unrecorded, NULL, tok_a, MDM_ERR_FORBIDDEN);
	{
		struct device a2;
		device_new(&a2);
		assert_refused(&strict, &a, &a2, NULL, tok_a, MDM_ERR_FORBIDDEN);
		device_free(&a2);
	}
	/* Garbage in Mdm-Signature. */
	{
		struct identity id;
		ck_assert_int_eq(identity_authenticate(d, ca, NULL, "!!notbase64",
		                         (const uint8_t *)"x", 1, now, &id),
		        MDM_ERR_FORBIDDEN);
		ck_assert_int_eq(identity_authenticate(
		                         d, ca, NULL, "AAAA", (const uint8_t *)"x", 1, now, &id),
		        MDM_ERR_FORBIDDEN);
		ck_assert_int_eq(identity_authenticate(d, ca,
		                         "-----BEGIN CERTIFICATE-----\nAA==\n"
		                         "-----END CERTIFICATE-----\n",
		                         NULL, (const uint8_t *)"x", 1, now, &id),
		        MDM_ERR_FORBIDDEN);
	}
	device_free(&a);
	device_free(&other_ca);
	device_free(&unrecorded);
	device_free(&expired);
	device_free(&revoked);
	device_free(&self);
	X509_free(ca2);
	EVP_PKEY_free(ca2key);
	X509_NAME_free(n);
	free(auth_a);
	free(tok_a);
	free(auth_x);
}
END_TEST

START_TEST(device_a_for_udid_b)
{
	struct device a, b;
	char *auth_b = msg_authenticate("UDID-B"), *tok_b = msg_token_update("UDID-B", NULL);
	char *out_b = msg_simple("CheckOut", "UDID-B", NULL);
	char *tok_z = msg_token_update("UDID-NEVER-SEEN", NULL);

	device_new(&a);
	device_new(&b);
	enroll(&a, "UDID-A");
	enroll(&b, "UDID-B");
	/* A's certificate is bound to UDID-A: refused for B, whatever the message. */
	assert_refused(&strict, &a, NULL, NULL, auth_b, MDM_ERR_FORBIDDEN);
	assert_refused(&strict, &a, NULL, NULL, tok_b, MDM_ERR_FORBIDDEN);
	assert_refused(&strict, NULL, &a, NULL, out_b, MDM_ERR_FORBIDDEN);
	/* Even with takeover allowed: a bound certificate never moves. */
	{
		struct checkin_policy loose = {1, 1};
		assert_refused(&loose, &a, NULL, NULL, auth_b, MDM_ERR_FORBIDDEN);
	}
	/* An unknown UDID looks exactly like a foreign one. */
	assert_refused(&strict, &a, NULL, NULL, tok_z, MDM_ERR_FORBIDDEN);
	device_free(&a);
	device_free(&b);
	free(auth_b);
	free(tok_b);
	free(out_b);
	free(tok_z);
}
END_TEST

/*
 * Events (sql/023_events.sql): with them on, every accepted check-in has
 * its event, written in the check-in's own transaction, its raw_payload
 * the stored body (secrets redacted); a refused one has none.
 */
START_TEST(events_with_checkins)
{
	struct device a, b;
	char *auth = msg_authenticate("UDID-EV"), *tok = msg_token_update("UDID-EV", NULL);
	char *out = msg_simple("CheckOut", "UDID-EV", NULL), *b64;
	char *raw = NULL;
	size_t len;

	assert_query("SELECT mdm.events_enable(true)::text", NULL, "true");
	device_new(&a);
	device_new(&b);
	enroll(&a, "UDID-EV");
	assert_query("SELECT string_agg(topic, ',' ORDER BY id) FROM mdm.event_outbox", NULL,
	        "mdm.Authenticate,mdm.TokenUpdate");
	/* The event carries what mdm.checkin stored: the push magic and unlock token redacted. */
	b64 = query1("SELECT payload->'checkin_event'->>'raw_payload' FROM mdm.event_outbox WHERE "
	             "topic = 'mdm.TokenUpdate'",
	        NULL);
	ck_assert_int_eq(base64_decode(b64, strlen(b64), 65536, (uint8_t **)&raw, &len), MDM_OK);
	raw = realloc(raw, len + 1);
	ck_assert_ptr_nonnull(raw);
	raw[len] = '\0';
	ck_assert_ptr_nonnull(strstr(raw, "(redacted)"));
	ck_assert_ptr_null(strstr(raw, "magic-1"));
	assert_query("SELECT count(*) FROM mdm.checkin c JOIN mdm.event_outbox o ON "
	             "o.payload->'checkin_event'->>'raw_payload' = mdm.event_b64(c.body) WHERE "
	             "c.udid = $1",
	        "UDID-EV", "2");
	assert_query("SELECT string_agg(DISTINCT ((payload->'checkin_event'->>'enrollment_id') = "
	             "(SELECT id::text FROM mdm.enrollment WHERE udid = $1))::text, ',') FROM "
	             "mdm.event_outbox",
	        "UDID-EV", "true");
	/* Refused (B's certificate for A's UDID, inside the transaction): no event. */
	assert_refused(&strict, &b, NULL, NULL, tok, MDM_ERR_FORBIDDEN);
	assert_query("SELECT count(*) FROM mdm.event_outbox", NULL, "2");
	ck_assert_int_eq(run_tls(&a, out), MDM_OK);
	assert_query("SELECT topic || '/' || (payload->'checkin_event'->>'auth') FROM "
	             "mdm.event_outbox ORDER BY id DESC LIMIT 1",
	        NULL, "mdm.CheckOut/tls");
	free(raw);
	free(b64);
	device_free(&a);
	device_free(&b);
	free(auth);
	free(tok);
	free(out);
}
END_TEST

START_TEST(takeover_rules)
{
	struct device a, a2, a3, a4, a5;
	struct checkin_policy loose = {1, 1};
	char *auth = msg_authenticate("UDID-T"), *out = msg_simple("CheckOut", "UDID-T", NULL);
	char id[32];
	const char *p[2];

	device_new(&a);
	enroll(&a, "UDID-T");
	/* Another valid certificate of ours may not take over an active enrollment. */
	device_new(&a2);
	assert_refused(&strict, &a2, NULL, NULL, auth, MDM_ERR_FORBIDDEN);
	/* ... unless issued against a challenge bound to that UDID, */
	device_new(&a3);
	snprintf(id, sizeof(id), "%lld", a3.id);
	p[0] = id;
	p[1] = "UDID-T";
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.challenge (challenge_sha256, udid, expires_at, "
	                         "used_at, used_by_certificate) VALUES (repeat('a', 64), $2, "
	                         "now() + interval '1 hour', now(), $1::bigint)",
	                         2, p, NULL),
	        MDM_OK);
	ck_assert_int_eq(run_tls(&a3, auth), MDM_OK);
	assert_query("SELECT reason FROM mdm.identity_binding WHERE udid = $1 ORDER BY id DESC "
	             "LIMIT 1",
	        "UDID-T", "challenge");
	/* The old certificate is no longer the device's. */
	{
		char *tok = msg_token_update("UDID-T", NULL);
		assert_refused(&strict, &a, NULL, NULL, tok, MDM_ERR_FORBIDDEN);
		ck_assert_int_eq(run_tls(&a3, tok), MDM_OK);
		free(tok);
	}
	/* ... or renewed from its current certificate, */
	snprintf(id, sizeof(id), "%lld", a3.id);
	device_issue(&a4, ca->active, ca->active_key, now, 30, 1, NULL, id);
	ck_assert_int_eq(run_tls(&a4, auth), MDM_OK);
	assert_query("SELECT reason FROM mdm.identity_binding WHERE udid = $1 ORDER BY id DESC "
	             "LIMIT 1",
	        "UDID-T", "renewal");
	{
		char *tok = msg_token_update("UDID-T", NULL);
		ck_assert_int_eq(run_tls(&a4, tok), MDM_OK);
		free(tok);
	}
	/* ... or when the configuration allows it (recorded as a takeover). */
	ck_assert_int_eq(run(&loose, &a2, NULL, NULL, auth, &(struct checkin_reply){0}), MDM_OK);
	assert_query("SELECT reason FROM mdm.identity_bindings WHERE udid = $1 ORDER BY bound_at "
	             "DESC, serial LIMIT 1",
	        "UDID-T", "takeover");
	/* After CheckOut the enrollment is over: a new identity re-enrolls. */
	{
		char *tok = msg_token_update("UDID-T", NULL);
		ck_assert_int_eq(run_tls(&a2, tok), MDM_OK);
		free(tok);
	}
	ck_assert_int_eq(run_tls(&a2, out), MDM_OK);
	device_new(&a5);
	ck_assert_int_eq(run_tls(&a5, auth), MDM_OK);
	assert_query("SELECT reason FROM mdm.identity_binding WHERE udid = $1 ORDER BY id DESC "
	             "LIMIT 1",
	        "UDID-T", "reenroll");
	/* Re-authenticating with the bound certificate changes no binding. */
	ck_assert_int_eq(run_tls(&a5, auth), MDM_OK);
	assert_query("SELECT count(*) FROM mdm.identity_binding WHERE udid = $1", "UDID-T", "5");
	device_free(&a);
	device_free(&a2);
	device_free(&a3);
	device_free(&a4);
	device_free(&a5);
	free(auth);
	free(out);
}
END_TEST

/*
 * Issue 13 (1): OTA phase 2 mints a SCEP challenge bound to the UDID the
 * device's signed attributes claim, which nothing ties to the Apple
 * certificate that signed them.  Such a challenge may enroll a UDID that
 * is not actively enrolled, never take over one that is: only an
 * operator's mdm.scep_challenge_new(udid) may.
 */
START_TEST(ota_challenge_never_takes_over)
{
	struct device victim, attacker, fresh;
	char *auth = msg_authenticate("UDID-V"), *auth_n = msg_authenticate("UDID-N");
	char id[32];
	const char *p[2];

	device_new(&victim);
	enroll(&victim, "UDID-V");
	device_new(&attacker);
	snprintf(id, sizeof(id), "%lld", attacker.id);
	p[0] = id;
	p[1] = "UDID-V";
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.challenge (challenge_sha256, udid, expires_at, "
	                         "used_at, used_by_certificate, origin) VALUES (repeat('b', 64), "
	                         "$2, now() + interval '1 hour', now(), $1::bigint, 'ota')",
	                         2, p, NULL),
	        MDM_OK);
	assert_refused(&strict, &attacker, NULL, NULL, auth, MDM_ERR_FORBIDDEN);
	/* Refused with nothing written: the victim keeps its identity. */
	assert_query("SELECT count(*) FROM mdm.identity_binding WHERE udid = $1", "UDID-V", "1");
	snprintf(id, sizeof(id), "%lld", victim.id);
	assert_query("SELECT identity_certificate_id::text FROM mdm.device WHERE udid = $1",
	        "UDID-V", id);
	{
		char *tok = msg_token_update("UDID-V", NULL);
		ck_assert_int_eq(run_tls(&victim, tok), MDM_OK);
		free(tok);
	}
	/* The same kind of challenge still enrolls a UDID nobody holds. */
	device_new(&fresh);
	snprintf(id, sizeof(id), "%lld", fresh.id);
	p[0] = id;
	p[1] = "UDID-N";
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.challenge (challenge_sha256, udid, expires_at, "
	                         "used_at, used_by_certificate, origin) VALUES (repeat('c', 64), "
	                         "$2, now() + interval '1 hour', now(), $1::bigint, 'ota')",
	                         2, p, NULL),
	        MDM_OK);
	ck_assert_int_eq(run_tls(&fresh, auth_n), MDM_OK);
	device_free(&victim);
	device_free(&attacker);
	device_free(&fresh);
	free(auth);
	free(auth_n);
}
END_TEST

/*
 * Issue 13 (2): one certificate, several UDIDs, Authenticates racing on
 * their own connections.  The binding is decided under the certificate's
 * row lock: exactly one wins, every other gets 403 and writes nothing.
 */
#define RACERS 8

struct racer {
	const struct device *dv;
	char udid[48]; /* room for any two ints: -Wformat-truncation at -O1 */
	pthread_barrier_t *start;
	mdm_err rc;
};

static void *race_authenticate(void *arg)
{
	struct racer *r = arg;
	struct checkin_reply reply;
	char *auth = msg_authenticate(r->udid);
	db *dd = NULL;

	r->rc = db_new(tdb.conninfo, "race", &dd);
	pthread_barrier_wait(r->start);
	if (r->rc == MDM_OK)
		r->rc = run_db(dd, &strict, r->dv, NULL, NULL, auth, &reply);
	checkin_reply_clear(&reply);
	db_free(dd);
	free(auth);
	return NULL;
}

START_TEST(racing_authenticates_bind_one_udid)
{
	struct device x;
	struct racer r[RACERS];
	pthread_t t[RACERS];
	pthread_barrier_t start;
	char id[32];
	int won = 0, refused = 0;

	device_new(&x);
	snprintf(id, sizeof(id), "%lld", x.id);
	for (int round = 0; round < 5; round++) {
		ck_assert_int_eq(pthread_barrier_init(&start, NULL, RACERS), 0);
		for (int i = 0; i < RACERS; i++) {
			r[i].dv = &x;
			r[i].start = &start;
			snprintf(r[i].udid, sizeof(r[i].udid), "UDID-RACE-%d-%d", round, i);
			ck_assert_int_eq(pthread_create(&t[i], NULL, race_authenticate, &r[i]), 0);
		}
		for (int i = 0; i < RACERS; i++) {
			pthread_join(t[i], NULL);
			won += r[i].rc == MDM_OK;
			refused += r[i].rc == MDM_ERR_FORBIDDEN;
		}
		pthread_barrier_destroy(&start);
	}
	/* The first round binds it; every later Authenticate of another UDID is refused. */
	ck_assert_int_eq(won, 1);
	ck_assert_int_eq(refused, 5 * RACERS - 1);
	assert_query("SELECT count(*) FROM mdm.identity_binding WHERE certificate_id = $1::bigint",
	        id, "1");
	assert_query("SELECT count(*) FROM mdm.device WHERE identity_certificate_id = $1::bigint",
	        id, "1");
	assert_query("SELECT count(*) FROM mdm.enrollment e JOIN mdm.device v USING (udid) WHERE "
	             "v.identity_certificate_id = $1::bigint",
	        id, "1");
	assert_query("SELECT count(*) FROM mdm.device WHERE udid LIKE 'UDID-RACE-%' AND $1 <> ''",
	        id, "1");
	device_free(&x);
}
END_TEST

/*
 * A renewed identity (RenewalReq) is used straight away for TokenUpdate
 * and the command channel, without a new Authenticate: the applesim
 * lifecycle found it refused as "not the identity bound to UDID".  The
 * renewal of the bound certificate is bound in its place; the old one,
 * a stale renewal and a renewal of another device's certificate are not.
 */
START_TEST(renewal_without_authenticate)
{
	struct device a, a2, a3, b, b2;
	char id[32];
	char *tok = msg_token_update("UDID-R", NULL), *out = msg_simple("CheckOut", "UDID-R", NULL);

	device_new(&a);
	device_new(&b);
	enroll(&a, "UDID-R");
	enroll(&b, "UDID-S");
	snprintf(id, sizeof(id), "%lld", a.id);
	/* scep.c records a renewal with the renewed certificate's UDID. */
	device_issue(&a2, ca->active, ca->active_key, now, 30, 1, "UDID-R", id);
	device_issue(&a3, ca->active, ca->active_key, now, 30, 1, "UDID-R", id);
	snprintf(id, sizeof(id), "%lld", b.id);
	device_issue(&b2, ca->active, ca->active_key, now, 30, 1, "UDID-S", id);
	/* Another device's renewal is refused for this UDID. */
	assert_refused(&strict, &b2, NULL, NULL, tok, MDM_ERR_FORBIDDEN);
	/* The renewal, by signature as by TLS: accepted and bound. */
	ck_assert_int_eq(run(&strict, NULL, &a2, NULL, tok, &(struct checkin_reply){0}), MDM_OK);
	snprintf(id, sizeof(id), "%lld", a2.id);
	assert_query("SELECT identity_certificate_id::text FROM mdm.device WHERE udid = $1",
	        "UDID-R", id);
	assert_query("SELECT reason || '/' || (previous_certificate_id = "
	             "(SELECT renewal_of FROM mdm.certificate WHERE id = certificate_id))::text "
	             "FROM mdm.identity_binding WHERE udid = $1 ORDER BY id DESC LIMIT 1",
	        "UDID-R", "renewal/true");
	ck_assert_int_eq(run_tls(&a2, tok), MDM_OK);
	assert_query("SELECT count(*) FROM mdm.identity_binding WHERE udid = $1", "UDID-R", "2");
	/* The certificate renewed away, and a second renewal of it, are done. */
	assert_refused(&strict, &a, NULL, NULL, tok, MDM_ERR_FORBIDDEN);
	assert_refused(&strict, &a3, NULL, NULL, tok, MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(run_tls(&a2, out), MDM_OK);
	device_free(&a);
	device_free(&a2);
	device_free(&a3);
	device_free(&b);
	device_free(&b2);
	free(tok);
	free(out);
}
END_TEST

START_TEST(user_channel_and_tokens)
{
	struct device a;
	struct checkin_reply reply;
	struct checkin_policy no_users = {0, 0};
	char *tok_u = msg_token_update("UDID-U", "USER-1");
	char *ua = msg_simple(
	        "UserAuthenticate", "UDID-U", "<key>UserID</key><string>USER-1</string>");
	char *ua2 = msg_simple("UserAuthenticate", "UDID-U",
	        "<key>UserID</key><string>USER-1</string><key>DigestResponse</key><string>x</"
	        "string>");
	char *set = msg_simple(
	        "SetBootstrapToken", "UDID-U", "<key>BootstrapToken</key><data>c2VjcmV0</data>");
	char *get = msg_simple("GetBootstrapToken", "UDID-U", NULL);
	char *gt = msg_simple(
	        "GetToken", "UDID-U", "<key>TokenServiceType</key><string>com.apple.maid</string>");
	char *dm = msg_simple(
	        "DeclarativeManagement", "UDID-U", "<key>Endpoint</key><string>tokens</string>");
	char *out_u = msg_simple("CheckOut", "UDID-U", "<key>UserID</key><string>USER-1</string>");

	device_new(&a);
	enroll(&a, "UDID-U");
	/* UserAuthenticate step one: a zero-length DigestChallenge. */
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, ua, &reply), MDM_OK);
	ck_assert_int_eq(reply.status, 200);
	ck_assert_ptr_nonnull(strstr(reply.body, "<key>DigestChallenge</key>"));
	ck_assert_ptr_nonnull(strstr(reply.body, "<string></string>"));
	checkin_reply_clear(&reply);
	assert_refused(&strict, &a, NULL, NULL, ua2, MDM_ERR_PARSE);
	ck_assert_int_eq(run(&no_users, &a, NULL, NULL, ua, &reply), MDM_OK);
	ck_assert_int_eq(reply.status, 410);
	checkin_reply_clear(&reply);
	/* The user channel's TokenUpdate: its own enrollment row. */
	assert_refused(&no_users, &a, NULL, NULL, tok_u, MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(run_tls(&a, tok_u), MDM_OK);
	assert_query("SELECT channel || '/' || user_short_name || '/' || active::text FROM "
	             "mdm.enrollment WHERE user_id = $1",
	        "USER-1", "user/u/true");
	/* mdm.devices: one row per enrollment. */
	assert_query("SELECT string_agg(channel || ':' || coalesce(user_id, '-') || ':' || "
	             "enrolled::text, ',' ORDER BY channel) FROM mdm.devices WHERE udid = $1",
	        "UDID-U", "device:-:true,user:USER-1:true");
	/* The user's CheckOut ends only the user channel. */
	ck_assert_int_eq(run_tls(&a, out_u), MDM_OK);
	assert_query("SELECT string_agg(channel || active::text, ',' ORDER BY channel) FROM "
	             "mdm.enrollment WHERE udid = $1",
	        "UDID-U", "devicetrue,userfalse");
	/* Bootstrap token: escrowed, returned, and never kept in the check-in history. */
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, get, &reply), MDM_OK);
	ck_assert_ptr_null(strstr(reply.body, "BootstrapToken"));
	checkin_reply_clear(&reply);
	ck_assert_int_eq(run_tls(&a, set), MDM_OK);
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, get, &reply), MDM_OK);
	ck_assert_ptr_nonnull(strstr(reply.body, "c2VjcmV0"));
	checkin_reply_clear(&reply);
	/* Stored, but not the token (issue 13, 7). */
	assert_query("SELECT (strpos(convert_from(body, 'UTF8'), 'c2VjcmV0') = 0 AND "
	             "strpos(convert_from(body, 'UTF8'), '(redacted)') > 0)::text FROM "
	             "mdm.checkin WHERE message_type = $1",
	        "SetBootstrapToken", "true");
	/* GetToken: stored, answered "not supported"; DeclarativeManagement: answered (025). */
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, gt, &reply), MDM_OK);
	ck_assert_int_eq(reply.status, 501);
	checkin_reply_clear(&reply);
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, dm, &reply), MDM_OK);
	ck_assert_int_eq(reply.status, 200);
	ck_assert_str_eq(reply.content_type, "application/json");
	ck_assert_ptr_nonnull(strstr(reply.body, "\"DeclarationsToken\""));
	checkin_reply_clear(&reply);
	assert_query("SELECT convert_from(body, 'UTF8') FROM mdm.checkin WHERE message_type = $1",
	        "DeclarativeManagement", dm);
	device_free(&a);
	free(tok_u);
	free(ua);
	free(ua2);
	free(set);
	free(get);
	free(gt);
	free(dm);
	free(out_u);
}
END_TEST

/* A DeclarativeManagement check-in with this Endpoint (and Data, base64 of data). */
static char *msg_ddm(const char *udid, const char *user, const char *endpoint, const char *data)
{
	char *s = NULL, *b64 = NULL, *extra = NULL;
	size_t b64len;

	if (data != NULL)
		ck_assert_int_eq(
		        base64_encode((const uint8_t *)data, strlen(data), &b64, &b64len), MDM_OK);
	ck_assert_int_ne(
	        asprintf(&extra, "%s%s%s<key>Endpoint</key><string>%s</string>%s%s%s",
	                user ? "<key>UserID</key><string>" : "", user ? user : "",
	                user ? "</string>" : "", endpoint, b64 ? "<key>Data</key><data>" : "",
	                b64 ? b64 : "", b64 ? "</data>" : ""),
	        -1);
	s = msg_simple("DeclarativeManagement", udid, extra);
	free(extra);
	free(b64);
	return s;
}

/* One DeclarativeManagement check-in over dv's TLS identity: its answer. */
static void ddm_run(const struct device *dv, const char *udid, const char *endpoint,
        const char *data, int want_status, struct checkin_reply *reply)
{
	char *m = msg_ddm(udid, NULL, endpoint, data);

	ck_assert_int_eq(run(&strict, dv, NULL, NULL, m, reply), MDM_OK);
	ck_assert_int_eq(reply->status, want_status);
	free(m);
}

/* The answer's JSON (PostgreSQL reads it) satisfies a boolean expression over $1::jsonb. */
static void assert_json(const struct checkin_reply *reply, const char *expr)
{
	char *sql = NULL;

	ck_assert_str_eq(reply->content_type, "application/json");
	ck_assert_int_ne(asprintf(&sql, "SELECT (%s)::text", expr), -1);
	assert_query(sql, reply->body, "true");
	free(sql);
}

/*
 * Issue 17: the DeclarativeManagement check-in, dispatched on Endpoint
 * (mdm/checkin/declarativemanagement.yaml), each answer with the keys its
 * schema requires (declarative/protocol), 404 for a declaration the
 * channel does not get (another device's), 400 for what breaks the rules
 * (nothing written), the identity rules of every check-in.
 */
START_TEST(declarative_management)
{
	struct device a, b;
	struct checkin_reply reply;
	struct checkin_policy no_users = {0, 0};
	char *m, *tok;
	static const char report[] =
	        "{\"StatusItems\":{\"device\":{\"operating-system\":{\"version\":\"26.1\"}},"
	        "\"management\":{\"declarations\":{\"configurations\":[{\"identifier\":\"cfg.a\","
	        "\"active\":true,\"valid\":\"valid\",\"server-token\":\"t1\"}]}}},\"Errors\":[]}";

	device_new(&a);
	device_new(&b);
	enroll(&a, "UDID-DA");
	enroll(&b, "UDID-DB");
	free(query1("SELECT mdm.declaration_put('cfg.a', "
	            "'com.apple.configuration.management.test', $1::jsonb)",
	        "{\"Echo\":\"a\"}"));
	free(query1("SELECT mdm.declaration_set_add('set-a', 'cfg.a')", NULL));
	free(query1("SELECT mdm.enrollment_set_add($1, 'set-a')", "UDID-DA"));

	/* tokens: TokensResponse (tokensresponse.yaml: SyncTokens required). */
	ddm_run(&a, "UDID-DA", "tokens", NULL, 200, &reply);
	assert_json(&reply,
	        "jsonb_typeof($1::jsonb #> '{SyncTokens,DeclarationsToken}') = "
	        "'string' AND jsonb_typeof($1::jsonb #> '{SyncTokens,Timestamp}') = "
	        "'string'");
	tok = query1("SELECT declarations_token FROM mdm.ddm_tokens WHERE udid = $1", "UDID-DA");
	ck_assert_ptr_nonnull(strstr(reply.body, tok));
	checkin_reply_clear(&reply);

	/* declaration-items: the four arrays and DeclarationsToken (all required). */
	ddm_run(&a, "UDID-DA", "declaration-items", NULL, 200, &reply);
	assert_json(&reply,
	        "jsonb_typeof($1::jsonb #> '{Declarations,Activations}') = 'array' AND "
	        "jsonb_typeof($1::jsonb #> '{Declarations,Configurations}') = 'array' AND "
	        "jsonb_typeof($1::jsonb #> '{Declarations,Assets}') = 'array' AND "
	        "jsonb_typeof($1::jsonb #> '{Declarations,Management}') = 'array' AND "
	        "jsonb_typeof($1::jsonb -> 'DeclarationsToken') = 'string' AND "
	        "$1::jsonb #> '{Declarations,Configurations,0}' = jsonb_build_object("
	        "'Identifier', 'cfg.a', 'ServerToken', (SELECT server_token FROM mdm.declarations "
	        "WHERE identifier = 'cfg.a'))");
	ck_assert_ptr_nonnull(strstr(reply.body, tok));
	checkin_reply_clear(&reply);

	/* declaration/<type>/<identifier>: declarationbase.yaml's keys. */
	ddm_run(&a, "UDID-DA", "declaration/configuration/cfg.a", NULL, 200, &reply);
	assert_json(&reply,
	        "$1::jsonb ->> 'Type' = 'com.apple.configuration.management.test' "
	        "AND $1::jsonb ->> 'Identifier' = 'cfg.a' AND $1::jsonb ? 'ServerToken' "
	        "AND $1::jsonb -> 'Payload' = '{\"Echo\": \"a\"}'");
	checkin_reply_clear(&reply);
	/* Another kind, an unknown one, another device's: 404. */
	ddm_run(&a, "UDID-DA", "declaration/activation/cfg.a", NULL, 404, &reply);
	checkin_reply_clear(&reply);
	ddm_run(&a, "UDID-DA", "declaration/configuration/nope", NULL, 404, &reply);
	checkin_reply_clear(&reply);
	ddm_run(&b, "UDID-DB", "declaration/configuration/cfg.a", NULL, 404, &reply);
	checkin_reply_clear(&reply);
	/* Removed from the set: 404 from then on, and a new token. */
	free(query1("SELECT mdm.declaration_set_remove('set-a', 'cfg.a')", NULL));
	ddm_run(&a, "UDID-DA", "declaration/configuration/cfg.a", NULL, 404, &reply);
	checkin_reply_clear(&reply);
	ddm_run(&a, "UDID-DA", "tokens", NULL, 200, &reply);
	ck_assert_ptr_null(strstr(reply.body, tok));
	checkin_reply_clear(&reply);

	/* status: stored, 200 with an empty body. */
	ddm_run(&a, "UDID-DA", "status", report, 200, &reply);
	ck_assert_ptr_null(reply.body);
	checkin_reply_clear(&reply);
	assert_query("SELECT value #>> '{}' FROM mdm.ddm_status WHERE udid = $1 AND item = "
	             "'device.operating-system.version'",
	        "UDID-DA", "26.1");
	assert_query("SELECT identifier || ' ' || valid || ' ' || active FROM "
	             "mdm.ddm_declaration_status WHERE udid = $1",
	        "UDID-DA", "cfg.a valid true");

	/* 400: no Data, not JSON, not a StatusReport, an unknown Endpoint; nothing written. */
	m = msg_ddm("UDID-DA", NULL, "status", NULL);
	assert_refused(&strict, &a, NULL, NULL, m, MDM_ERR_PARSE);
	free(m);
	m = msg_ddm("UDID-DA", NULL, "status", "{\"StatusItems\":");
	assert_refused(&strict, &a, NULL, NULL, m, MDM_ERR_PARSE);
	free(m);
	m = msg_ddm("UDID-DA", NULL, "status", "{\"StatusItems\":{},\"Errors\":{}}");
	assert_refused(&strict, &a, NULL, NULL, m, MDM_ERR_PARSE);
	free(m);
	m = msg_ddm("UDID-DA", NULL, "status", "{\"StatusItems\":{},\"Errors\":[],\"Errors\":[]}");
	assert_refused(&strict, &a, NULL, NULL, m, MDM_ERR_PARSE);
	free(m);
	m = msg_ddm("UDID-DA", NULL, "configuration", NULL);
	assert_refused(&strict, &a, NULL, NULL, m, MDM_ERR_PARSE);
	free(m);
	m = msg_ddm("UDID-DA", NULL, "declaration/configuration/a/b", NULL);
	assert_refused(&strict, &a, NULL, NULL, m, MDM_ERR_PARSE);
	free(m);
	/* Endpoint is required (declarativemanagement.yaml). */
	m = msg_simple("DeclarativeManagement", "UDID-DA", NULL);
	ck_assert_ptr_nonnull(strstr(parse_err(m), "Endpoint"));
	free(m);
	m = msg_simple("DeclarativeManagement", "UDID-DA",
	        "<key>Endpoint</key><string>tokens</string><key>Data</key><string>x</string>");
	ck_assert_ptr_nonnull(parse_err(m));
	free(m);
	m = msg_simple("DeclarativeManagement", "UDID-DA", "<key>Endpoint</key><string></string>");
	ck_assert_ptr_nonnull(strstr(parse_err(m), "Endpoint is empty"));
	free(m);
	/* Data over CHECKIN_MAX_DDM_DATA: refused by the parser (the body limit is above it). */
	{
		char *big = malloc(CHECKIN_MAX_DDM_DATA + 2);

		ck_assert_ptr_nonnull(big);
		memset(big, ' ', CHECKIN_MAX_DDM_DATA + 1);
		big[CHECKIN_MAX_DDM_DATA + 1] = '\0';
		m = msg_ddm("UDID-DA", NULL, "status", big);
		ck_assert_ptr_nonnull(parse_err(m));
		free(m);
		free(big);
	}

	/* The identity rules: b's certificate cannot speak for a's UDID. */
	m = msg_ddm("UDID-DA", NULL, "declaration-items", NULL);
	assert_refused(&strict, &b, NULL, NULL, m, MDM_ERR_FORBIDDEN);
	free(m);
	/* The user channel, when turned off, is refused like its TokenUpdate. */
	m = msg_ddm("UDID-DA", "USER-1", "tokens", NULL);
	assert_refused(&no_users, &a, NULL, NULL, m, MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, m, &reply), MDM_OK);
	ck_assert_int_eq(reply.status, 200);
	checkin_reply_clear(&reply);
	free(m);
	free(tok);
	device_free(&a);
	device_free(&b);
}
END_TEST

/*
 * ReturnToService (mdm/checkin/returntoservice.yaml): the operator's
 * configuration for this device, else the default, else Enabled false;
 * the BootstrapToken only the device's own, only with app preservation;
 * never on a user channel.  The EraseDevice builder's ReturnToService.
 */
START_TEST(return_to_service)
{
	struct device a, b;
	struct checkin_reply reply;
	char *ra = msg_simple("ReturnToService", "UDID-RA", NULL);
	char *rb = msg_simple("ReturnToService", "UDID-RB", NULL);
	char *ru = msg_simple(
	        "ReturnToService", "UDID-RA", "<key>UserID</key><string>USER-1</string>");
	char *set = msg_simple(
	        "SetBootstrapToken", "UDID-RA", "<key>BootstrapToken</key><data>c2VjcmV0</data>");
	char *cmd;

	device_new(&a);
	device_new(&b);
	enroll(&a, "UDID-RA");
	enroll(&b, "UDID-RB");
	ck_assert_int_eq(run_tls(&a, set), MDM_OK);
	/* Nothing configured: Enabled false. */
	ck_assert_int_eq(run(&strict, &b, NULL, NULL, rb, &reply), MDM_OK);
	ck_assert_int_eq(reply.status, 200);
	ck_assert_ptr_nonnull(strstr(reply.body, "<key>ReturnToService</key>"));
	ck_assert_ptr_nonnull(strstr(reply.body, "<key>Enabled</key>\n\t\t<false/>"));
	checkin_reply_clear(&reply);
	/* A's own, with app preservation: its profile and its own bootstrap token. */
	free(query1("SELECT mdm.return_to_service_set($1, true, convert_to('wifi', 'UTF8'), "
	            "NULL, true)::text",
	        "UDID-RA"));
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, ra, &reply), MDM_OK);
	ck_assert_int_eq(reply.status, 200);
	ck_assert_ptr_nonnull(strstr(reply.body, "<true/>"));
	ck_assert_ptr_nonnull(strstr(reply.body, "<key>WiFiProfileData</key>"));
	ck_assert_ptr_nonnull(strstr(reply.body, "d2lmaQ==")); /* "wifi" */
	ck_assert_ptr_nonnull(strstr(reply.body, "<key>BootstrapToken</key>"));
	ck_assert_ptr_nonnull(strstr(reply.body, "c2VjcmV0"));
	checkin_reply_clear(&reply);
	/* B still gets nothing of A's; with a default, the default and no token. */
	ck_assert_int_eq(run(&strict, &b, NULL, NULL, rb, &reply), MDM_OK);
	ck_assert_ptr_nonnull(strstr(reply.body, "<false/>"));
	ck_assert_ptr_null(strstr(reply.body, "d2lmaQ=="));
	checkin_reply_clear(&reply);
	free(query1("SELECT mdm.return_to_service_set(NULL, true, NULL, "
	            "convert_to('mdmprofile', 'UTF8'), true)::text",
	        NULL));
	ck_assert_int_eq(run(&strict, &b, NULL, NULL, rb, &reply), MDM_OK);
	ck_assert_ptr_nonnull(strstr(reply.body, "<true/>"));
	ck_assert_ptr_nonnull(strstr(reply.body, "<key>MDMProfileData</key>"));
	ck_assert_ptr_null(strstr(reply.body, "c2VjcmV0"));
	ck_assert_ptr_null(strstr(reply.body, "WiFiProfileData"));
	checkin_reply_clear(&reply);
	/* Another device's certificate cannot ask for A's; no user channel. */
	assert_refused(&strict, &b, NULL, NULL, ra, MDM_ERR_FORBIDDEN);
	ck_assert_ptr_nonnull(strstr(parse_err(ru), "returntoservice.yaml"));
	/* Cleared: the default again. */
	assert_query("SELECT mdm.return_to_service_clear($1)::text", "UDID-RA", "true");
	ck_assert_int_eq(run(&strict, &a, NULL, NULL, ra, &reply), MDM_OK);
	ck_assert_ptr_nonnull(strstr(reply.body, "<key>MDMProfileData</key>"));
	checkin_reply_clear(&reply);
	/* EraseDevice with ReturnToService (device.erase.yaml). */
	free(query1("SELECT mdm.cmd_erase_device($1, NULL, true, convert_to('w', 'UTF8'))::text",
	        "UDID-RA"));
	cmd = query1("SELECT plist FROM mdm.command WHERE request_type = 'EraseDevice'", NULL);
	ck_assert_msg(strstr(cmd,
	                      "<key>ReturnToService</key>\n\t\t<dict>\n\t\t\t<key>Enabled</"
	                      "key>\n\t\t\t<true/>\n\t\t\t<key>WiFiProfileData</key>\n\t\t\t"
	                      "<data>dw==</data>"),
	        "%s", cmd);
	free(cmd);
	device_free(&a);
	device_free(&b);
	free(ra);
	free(rb);
	free(ru);
	free(set);
}
END_TEST

START_TEST(topic_must_be_ours)
{
	struct device a, push;
	char id[32];
	const char *p[1];
	char *auth = msg_authenticate("UDID-P");

	device_new(&a);
	/* Once a push certificate is imported, its topic is the only one accepted. */
	device_issue(&push, ca->active, ca->active_key, now, 30, 0, NULL, NULL);
	ck_assert_int_eq(ca_cert_insert(d, push.cert, "push", NULL, NULL, NULL, &push.id), MDM_OK);
	snprintf(id, sizeof(id), "%lld", push.id);
	p[0] = id;
	ck_assert_int_eq(
	        db_exec(d,
	                "INSERT INTO mdm.push_cert (topic, certificate_id, key_uri) VALUES "
	                "('com.apple.mgmt.External.other', $1::bigint, '/nonexistent')",
	                1, p, NULL),
	        MDM_OK);
	assert_refused(&strict, &a, NULL, NULL, auth, MDM_ERR_PARSE);
	ck_assert_int_eq(
	        db_exec(d, "UPDATE mdm.push_cert SET topic = 'com.apple.mgmt.External.test'", 0,
	                NULL, NULL),
	        MDM_OK);
	ck_assert_int_eq(run_tls(&a, auth), MDM_OK);
	device_free(&a);
	device_free(&push);
	free(auth);
}
END_TEST

/* Parsing alone (no database; also run under valgrind). */
void checkin_parse_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "parse", 0, NULL, NULL);

	ts_add_tests(tc, parse_refusals, parse_token_too_long, parse_real_vectors);
}

/* Issue 13: checkin_require_tls refuses signature-only requests (they can be replayed). */
START_TEST(require_tls_policy)
{
	ck_assert_int_eq(identity_require_tls(1, NULL), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(identity_require_tls(1, ""), MDM_ERR_FORBIDDEN);
	ck_assert_int_eq(identity_require_tls(1, "-----BEGIN CERTIFICATE-----"), MDM_OK);
	ck_assert_int_eq(identity_require_tls(0, NULL), MDM_OK);
	/* A Location turns it on, never off. */
	ck_assert_int_eq(identity_require_tls_for(0, "yes"), 1);
	ck_assert_int_eq(identity_require_tls_for(1, "no"), 1);
	ck_assert_int_eq(identity_require_tls_for(0, "no"), 0);
	ck_assert_int_eq(identity_require_tls_for(0, NULL), 0);
	ck_assert_int_eq(identity_require_tls_for(0, "YES "), 0);
}
END_TEST

void checkin_require_tls_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "policy", 0, NULL, NULL);

	ts_add_tests(tc, require_tls_policy);
}

/* Rows stored in clear before 017 are scrubbed by it (its text, run again: idempotent). */
START_TEST(old_bodies_scrubbed)
{
	static const char old[] =
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
	        "<key>MessageType</key><string>TokenUpdate</string>"
	        "<key>PushMagic</key><string>MAGIC-5EC2E7</string>"
	        "<key>Token</key><data>\n  dG9rZW4tc2VjcmV0\n</data>"
	        "<key>Topic</key><string>com.apple.mgmt.x</string>"
	        "<key>UDID</key><string>SCRUB-1</string>"
	        "<key>UnlockToken</key><data>dW5sb2NrLXNlY3JldA==</data></dict></plist>\n";
	const struct migration *m17 = NULL;
	char *got, *upd, *cut;

	for (size_t i = 0; i < migrations_count; i++)
		if (migrations[i].version == 17)
			m17 = &migrations[i];
	ck_assert_ptr_nonnull(m17);
	ck_assert_int_eq(db_exec(d,
	                         "INSERT INTO mdm.checkin (udid, message_type, auth, body) VALUES "
	                         "('SCRUB-1', 'TokenUpdate', 'tls', convert_to($1, 'UTF8'))",
	                         1, (const char *const[]){old}, NULL),
	        MDM_OK);
	/* Its first statement, the UPDATE (db_exec runs one statement). */
	ck_assert_ptr_nonnull(upd = strdup(m17->sql));
	ck_assert_ptr_nonnull(cut = strstr(upd, "\nCOMMENT ON"));
	*cut = '\0';
	ck_assert_int_eq(db_exec(d, upd, 0, NULL, NULL), MDM_OK);
	free(upd);
	got = query1(
	        "SELECT convert_from(body, 'UTF8') FROM mdm.checkin WHERE udid = $1", "SCRUB-1");
	ck_assert_ptr_null(strstr(got, "MAGIC-5EC2E7"));
	ck_assert_ptr_null(strstr(got, "dG9rZW4tc2VjcmV0"));
	ck_assert_ptr_null(strstr(got, "dW5sb2NrLXNlY3JldA"));
	ck_assert_ptr_nonnull(strstr(got, "<key>Topic</key><string>com.apple.mgmt.x</string>"));
	ck_assert_ptr_nonnull(strstr(got, "<key>UnlockToken</key><string>(redacted)</string>"));
	free(got);
}
END_TEST

/*
 * The challenge behind a certificate (Authenticate's binding rules, the
 * OTA topic) is found by an index (sql/022): bench/run.sh's plan pass saw
 * a sequential scan of every challenge, 122 ms at a million.  With
 * sequential scans priced out, each lookup's plan must name the index.
 */
START_TEST(challenge_lookups_use_an_index)
{
	static const char *const lookups[] = {
	        "EXPLAIN SELECT EXISTS (SELECT 1 FROM mdm.challenge h WHERE "
	        "h.used_by_certificate = 7 AND h.udid = 'UDID-X')",
	        "EXPLAIN SELECT h.topic FROM mdm.challenge h WHERE h.used_by_certificate = 7",
	};
	db_res *r = NULL;

	ck_assert_int_eq(db_exec(d, "SET enable_seqscan = off", 0, NULL, NULL), MDM_OK);
	for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		int found = 0;

		ck_assert_int_eq(db_exec(d, lookups[i], 0, NULL, &r), MDM_OK);
		for (int row = 0; row < db_res_rows(r); row++)
			found |= strstr(db_res_get0(r, row, 0),
			                 "challenge_used_by_certificate_idx") != NULL;
		ck_assert_msg(found, "%s: no index scan (%s)", lookups[i], db_res_get0(r, 0, 0));
		db_res_free(r);
		r = NULL;
	}
	ck_assert_int_eq(db_exec(d, "RESET enable_seqscan", 0, NULL, NULL), MDM_OK);
}
END_TEST

void checkin_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "db", 60, setup, teardown);

	ts_add_tests(tc, store_real_vectors, enroll_tls_and_signature, identity_refusals,
	        device_a_for_udid_b, events_with_checkins, takeover_rules,
	        ota_challenge_never_takes_over, racing_authenticates_bind_one_udid,
	        renewal_without_authenticate, user_channel_and_tokens, declarative_management,
	        return_to_service, old_bodies_scrubbed, topic_must_be_ours,
	        challenge_lookups_use_an_index);
}
