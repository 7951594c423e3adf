/*
 * End-to-end tests through a real Apache (mod_proxy_fcgi or mod_fcgid, as
 * tests/run.sh started it) to the four FastCGI programs and a real
 * PostgreSQL: routing, client certificates reaching the programs, methods,
 * body limits (Content-Length and chunked), and that nothing wedges.
 *
 * Environment (set by tests/run.sh; tests/e2e/ENV.md has every variable of
 * every suite).  E2E_ENV, when set, names the environment file to load
 * first (e2e_env.c), as tests/run.sh runs it and as a suite is rerun by
 * hand:
 *   E2E_HTTPS_BASE   https://127.0.0.1:PORT
 *   E2E_HTTP_BASE    http://127.0.0.1:PORT
 *   E2E_TLS_CA       PEM trusted for the HTTPS server
 *   E2E_CLIENT_CERT, E2E_CLIENT_KEY, E2E_CLIENT_FP   a device identity
 *                    issued by the device CA, and its SHA-256 (hex)
 *   E2E_SELF_CERT, E2E_SELF_KEY, E2E_SELF_FP         a self-signed one
 *   E2E_MODE         proxy or fcgid (names the suite)
 *   E2E_PGCTL        optional: pg_ctl command prefix; enables the
 *                    database-down test (stop, expect 503, start)
 */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "e2e_env.h"
#include "mdm_limits.h"

#define BODY_KEEP    (64 * 1024) /* response bytes kept for assertions */
#define SLOW_TIMEOUT 120         /* seconds, for the 8 MiB uploads */
#define BURST        16          /* concurrent requests in the burst test */
#define FP_HEX_LEN   64

struct route {
	const char *path;
	const char *prog;
	const char *body_method; /* the method that carries a body */
	const char *body_query;  /* appended to the path for body requests */
	const char *allow[2];    /* methods the program allows */
	long limit;              /* body limit, bytes */
};

static const struct route routes[] = {
        {"/scep", "scep.fcgi", "POST", "?operation=PKIOperation", {"GET", "POST"},
                MDM_MAX_BODY_SCEP},
        {"/enroll", "enroll.fcgi", "POST", "", {"GET", "POST"}, MDM_MAX_BODY_ENROLL},
        {"/mdm/checkin", "checkin.fcgi", "PUT", "", {"PUT", NULL}, MDM_MAX_BODY_CHECKIN},
        {"/mdm/server", "server.fcgi", "PUT", "", {"PUT", NULL}, MDM_MAX_BODY_SERVER},
};
#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

/* Wrong methods per route: each must give 405 with an Allow header. */
static const struct {
	int route;
	const char *method;
} wrong[] = {
        {0, "DELETE"},
        {0, "PUT"},
        {1, "DELETE"},
        {1, "PUT"},
        {2, "GET"},
        {2, "POST"},
        {2, "DELETE"},
        {3, "GET"},
        {3, "POST"},
        {3, "DELETE"},
};
#define NWRONG ((int)(sizeof(wrong) / sizeof(wrong[0])))

enum cert_kind { CERT_NONE, CERT_DEVICE, CERT_SELF };

struct request {
	const char *method;
	char url[512];
	enum cert_kind cert;
	int has_body;
	int chunked;
	long body_len;
};

struct response {
	long status;
	char body[BODY_KEEP + 1];
	size_t body_len;
	char allow[256];
	char content_type[128];
	char error[CURL_ERROR_SIZE];
};

struct upload {
	long left;
};

static const char *env_https, *env_http, *env_ca, *env_client_cert, *env_client_key, *env_client_fp,
        *env_self_cert, *env_self_key, *env_self_fp, *env_mode, *env_pgctl;

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct response *r = ud;
	size_t len = size * n;
	size_t room = BODY_KEEP - r->body_len;
	size_t take = len < room ? len : room;

	memcpy(r->body + r->body_len, ptr, take);
	r->body_len += take;
	r->body[r->body_len] = '\0';
	return len;
}

/* Copies a header's value (trimmed) when the line is that header. */
static void take_header(const char *line, size_t len, const char *name, char *dst, size_t dstsz)
{
	size_t nlen = strlen(name);
	size_t i, j = 0;

	if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return;
	for (i = nlen + 1; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	for (; i < len && line[i] != '\r' && line[i] != '\n' && j + 1 < dstsz; i++)
		dst[j++] = line[i];
	dst[j] = '\0';
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
	struct response *r = ud;
	size_t len = size * n;

	/* A new status line (after 100 Continue) starts a new header set. */
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		r->allow[0] = '\0';
		r->content_type[0] = '\0';
	}
	take_header(buf, len, "Allow", r->allow, sizeof(r->allow));
	take_header(buf, len, "Content-Type", r->content_type, sizeof(r->content_type));
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t len = size * n;

	if ((long)len > u->left)
		len = (size_t)u->left;
	memset(buf, 'A', len);
	u->left -= (long)len;
	return len;
}

static void setup_handle(CURL *c, const struct request *q, struct response *r, struct upload *u,
        struct curl_slist **headers)
{
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)SLOW_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_CAINFO, env_ca);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->error);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (q->cert == CERT_DEVICE) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, env_client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, env_client_key);
	} else if (q->cert == CERT_SELF) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, env_self_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, env_self_key);
	}
	/* No 100-continue round trip: send the body straight away. */
	*headers = curl_slist_append(*headers, "Expect:");
	if (q->has_body) {
		u->left = q->body_len;
		*headers = curl_slist_append(*headers, "Content-Type: application/octet-stream");
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, u);
		/* Chunked is HTTP/1.1's transfer coding: HTTP/2 has none (lighttpd offers h2). */
		if (q->chunked) {
			*headers = curl_slist_append(*headers, "Transfer-Encoding: chunked");
			curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
		} else
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
	}
	/*
	 * A POST or PUT without a body says so, as RFC 9110 8.6 asks of a
	 * client (lighttpd answers 411 to a POST without Content-Length).
	 */
	else if (strcmp(q->method, "POST") == 0 || strcmp(q->method, "PUT") == 0)
		*headers = curl_slist_append(*headers, "Content-Length: 0");
	if (strcmp(q->method, "GET") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
}

/* One request; returns the status, or 0 when no HTTP answer came. */
static long perform(const struct request *q, struct response *r)
{
	struct upload u = {0};
	struct curl_slist *headers = NULL;
	CURL *c = curl_easy_init();
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	ck_assert_msg(c != NULL, "curl_easy_init failed");
	setup_handle(c, q, r, &u, &headers);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	else if (r->error[0] == '\0')
		snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	return r->status;
}

static void make_url(struct request *q, const char *base, const char *path, const char *suffix)
{
	int n = snprintf(q->url, sizeof(q->url), "%s%s%s", base, path, suffix);

	ck_assert_msg(n > 0 && (size_t)n < sizeof(q->url), "URL too long");
}

static void get(struct request *q, const char *base, const char *path, const char *suffix,
        enum cert_kind cert)
{
	memset(q, 0, sizeof(*q));
	q->method = "GET";
	q->cert = cert;
	make_url(q, base, path, suffix);
}

/* Is tok one of the space-separated words of the body's first line? */
static int has_token(const char *body, const char *tok)
{
	size_t tlen = strlen(tok);
	const char *p = body;

	while (*p != '\0' && *p != '\n') {
		size_t wlen;

		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		wlen = strcspn(p, " \t\r\n");
		if (wlen == tlen && strncmp(p, tok, tlen) == 0)
			return 1;
		p += wlen;
	}
	return 0;
}

/* Does the Allow header list this method? */
static int allows(const char *allow, const char *method)
{
	size_t mlen = strlen(method);
	const char *p = allow;

	while (*p != '\0') {
		size_t wlen;

		p += strspn(p, ", \t");
		wlen = strcspn(p, ", \t");
		if (wlen == mlen && strncmp(p, method, mlen) == 0)
			return 1;
		p += wlen;
	}
	return 0;
}

#define ASSERT_STATUS(q, r, want)                                                                  \
	ck_assert_msg((r).status == (want), "%s %s: status %ld, want %d (%s) body: %.200s",        \
	        (q).method, (q).url, (r).status, (want), (r).error, (r).body)

static void assert_health(const struct request *q, const struct response *r, const struct route *rt,
        const char *cert_token)
{
	ASSERT_STATUS(*q, *r, 200);
	ck_assert_msg(strncasecmp(r->content_type, "text/plain", 10) == 0,
	        "%s: Content-Type '%s', want text/plain", q->url, r->content_type);
	ck_assert_msg(has_token(r->body, "ok") && has_token(r->body, rt->prog),
	        "%s: body '%s' does not say 'ok %s'", q->url, r->body, rt->prog);
	ck_assert_msg(has_token(r->body, "db=up"), "%s: body '%s' lacks db=up", q->url, r->body);
	ck_assert_msg(has_token(r->body, cert_token), "%s: body '%s' lacks %s", q->url, r->body,
	        cert_token);
}

/* ------------------------------------------------------------- routing */

START_TEST(test_health_no_cert)
{
	const struct route *rt = &routes[_i];
	struct request q;
	struct response r;

	get(&q, env_https, rt->path, "/health", CERT_NONE);
	perform(&q, &r);
	assert_health(&q, &r, rt, "client_cert=none");
}
END_TEST

START_TEST(test_health_device_cert)
{
	const struct route *rt = &routes[_i];
	struct request q;
	struct response r;
	char tok[128];

	snprintf(tok, sizeof(tok), "client_cert=sha256:%s", env_client_fp);
	get(&q, env_https, rt->path, "/health", CERT_DEVICE);
	perform(&q, &r);
	assert_health(&q, &r, rt, tok);
}
END_TEST

/*
 * Apache's optional_no_ca passes it on; the programs judge it later.
 * lighttpd passes only a certificate that verifies against its
 * ssl.verifyclient.ca-file (lighttpd-conf/mdm-site.conf): none here.
 */
START_TEST(test_health_self_signed_cert)
{
	const struct route *rt = &routes[_i];
	struct request q;
	struct response r;
	char tok[128];

	if (strcmp(env_mode, "lighttpd") == 0)
		snprintf(tok, sizeof(tok), "client_cert=none");
	else
		snprintf(tok, sizeof(tok), "client_cert=sha256:%s", env_self_fp);
	get(&q, env_https, rt->path, "/health", CERT_SELF);
	perform(&q, &r);
	assert_health(&q, &r, rt, tok);
}
END_TEST

START_TEST(test_plain_http)
{
	const struct route *rt = &routes[_i];
	struct request q;
	struct response r;

	get(&q, env_http, rt->path, "/health", CERT_NONE);
	perform(&q, &r);
	if (strcmp(rt->path, "/scep") == 0) {
		assert_health(&q, &r, rt, "client_cert=none");
		return;
	}
	ASSERT_STATUS(q, r, 404);
	ck_assert_msg(strstr(r.body, rt->prog) == NULL, "%s reached %s", q.url, rt->prog);
	get(&q, env_http, rt->path, "", CERT_NONE);
	perform(&q, &r);
	ASSERT_STATUS(q, r, 404);
}
END_TEST

/* A route is a path segment: /scepx is not /scep. */
START_TEST(test_route_boundary)
{
	struct request q;
	struct response r;

	get(&q, env_https, "/scepx", "", CERT_NONE);
	perform(&q, &r);
	ASSERT_STATUS(q, r, 404);
	get(&q, env_https, "/mdm/checkinx", "/health", CERT_NONE);
	perform(&q, &r);
	ASSERT_STATUS(q, r, 404);
	get(&q, env_https, "/", "", CERT_NONE);
	perform(&q, &r);
	ASSERT_STATUS(q, r, 404);
}
END_TEST

/* -------------------------------------------------------------- methods */

START_TEST(test_wrong_method)
{
	const struct route *rt = &routes[wrong[_i].route];
	struct request q;
	struct response r;
	size_t k;

	get(&q, env_https, rt->path, "", CERT_DEVICE);
	q.method = wrong[_i].method;
	perform(&q, &r);
	ASSERT_STATUS(q, r, 405);
	ck_assert_msg(r.allow[0] != '\0', "%s %s: 405 without Allow", q.method, q.url);
	for (k = 0; k < 2 && rt->allow[k] != NULL; k++)
		ck_assert_msg(allows(r.allow, rt->allow[k]), "%s %s: Allow '%s' lacks %s", q.method,
		        q.url, r.allow, rt->allow[k]);
	ck_assert_msg(!allows(r.allow, q.method), "%s %s: Allow '%s' lists %s", q.method, q.url,
	        r.allow, q.method);
}
END_TEST

/* The device's check-in URL opened in a browser: checkin.fcgi says 405. */
START_TEST(test_get_checkin_url)
{
	struct request q;
	struct response r;

	get(&q, env_https, "/mdm/checkin", "", CERT_NONE);
	perform(&q, &r);
	ASSERT_STATUS(q, r, 405);
	ck_assert_msg(strstr(r.body, "checkin.fcgi") != NULL,
	        "GET %s: body does not name checkin.fcgi: %.200s", q.url, r.body);
	ck_assert_msg(allows(r.allow, "PUT"), "GET %s: Allow '%s' lacks PUT", q.url, r.allow);
}
END_TEST

/* --------------------------------------------------------------- limits */

static void body_request(struct request *q, const struct route *rt, long len, int chunked)
{
	memset(q, 0, sizeof(*q));
	q->method = rt->body_method;
	q->cert = CERT_DEVICE;
	q->has_body = 1;
	q->chunked = chunked;
	q->body_len = len;
	make_url(q, env_https, rt->path, rt->body_query);
}

static void assert_over_limit(int route, int chunked)
{
	const struct route *rt = &routes[route];
	struct request q;
	struct response r;

	body_request(&q, rt, rt->limit + 1, chunked);
	perform(&q, &r);
	ck_assert_msg(r.status == 413,
	        "%s %s with %ld bytes (%s): status %ld, want 413 (%s) %.200s", q.method, q.url,
	        q.body_len, chunked ? "chunked" : "Content-Length", r.status, r.error, r.body);
}

/*
 * A body of exactly the limit is read and judged on its content: any answer
 * from the program but 413 (the bytes are garbage, so 4xx; 501 while an
 * operation is not implemented), and never a gateway error or a crash.
 */
static void assert_at_limit(int route, int chunked)
{
	const struct route *rt = &routes[route];
	struct request q;
	struct response r;

	body_request(&q, rt, rt->limit, chunked);
	perform(&q, &r);
	ck_assert_msg(((r.status >= 200 && r.status < 500) || r.status == 501) && r.status != 413,
	        "%s %s with %ld bytes (%s): status %ld, want 2xx-4xx (not 413) or 501 (%s) %.200s",
	        q.method, q.url, q.body_len, chunked ? "chunked" : "Content-Length", r.status,
	        r.error, r.body);
}

START_TEST(test_over_limit_length)
{
	assert_over_limit(_i, 0);
}
END_TEST

START_TEST(test_over_limit_chunked)
{
	assert_over_limit(_i, 1);
}
END_TEST

START_TEST(test_at_limit_length)
{
	assert_at_limit(_i, 0);
}
END_TEST

START_TEST(test_at_limit_chunked)
{
	assert_at_limit(_i, 1);
}
END_TEST

/* ---------------------------------------------------------- afterwards */

/* After all of the above every program still answers, also in parallel. */
START_TEST(test_still_answers)
{
	struct request q[BURST];
	struct response *r = calloc(BURST, sizeof(*r));
	struct upload u[BURST];
	struct curl_slist *headers[BURST] = {NULL};
	CURL *c[BURST];
	CURLM *m = curl_multi_init();
	CURLMsg *msg;
	int i, running = 0, left;

	ck_assert_msg(r != NULL && m != NULL, "out of memory");
	for (i = 0; i < BURST; i++) {
		get(&q[i], env_https, routes[i % NROUTES].path, "/health", CERT_NONE);
		c[i] = curl_easy_init();
		ck_assert_msg(c[i] != NULL, "curl_easy_init failed");
		setup_handle(c[i], &q[i], &r[i], &u[i], &headers[i]);
		curl_easy_setopt(c[i], CURLOPT_PRIVATE, &r[i]);
		curl_multi_add_handle(m, c[i]);
	}
	do {
		curl_multi_perform(m, &running);
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	} while (running > 0);
	while ((msg = curl_multi_info_read(m, &left)) != NULL) {
		struct response *rr = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rr);
		if (msg->data.result == CURLE_OK)
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &rr->status);
	}
	for (i = 0; i < BURST; i++) {
		assert_health(&q[i], &r[i], &routes[i % NROUTES], "client_cert=none");
		curl_multi_remove_handle(m, c[i]);
		curl_easy_cleanup(c[i]);
		curl_slist_free_all(headers[i]);
	}
	curl_multi_cleanup(m);
	free(r);
}
END_TEST

static int run_pgctl(const char *action)
{
	char cmd[2048];
	int n = snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>&1", env_pgctl, action);

	ck_assert_msg(n > 0 && (size_t)n < sizeof(cmd), "E2E_PGCTL too long");
	return system(cmd);
}

/* PostgreSQL down: health says 503 db=down; back up: 200 db=up again. */
START_TEST(test_db_down_and_back)
{
	const struct route *rt = &routes[2];
	struct request q;
	struct response r;
	int i;

	ck_assert_msg(run_pgctl("stop -m fast") == 0, "%s stop failed", env_pgctl);
	get(&q, env_https, rt->path, "/health", CERT_NONE);
	perform(&q, &r);
	if (run_pgctl("start") != 0)
		ck_abort_msg("%s start failed", env_pgctl);
	ASSERT_STATUS(q, r, 503);
	ck_assert_msg(has_token(r.body, "db=down") && has_token(r.body, rt->prog),
	        "%s with the database down: body '%s' lacks %s db=down", q.url, r.body, rt->prog);
	for (i = 0; i < 40; i++) {
		perform(&q, &r);
		if (r.status == 200)
			break;
		usleep(250 * 1000);
	}
	assert_health(&q, &r, rt, "client_cert=none");
}
END_TEST

/* ----------------------------------------------------------------- main */

Suite *scep_interop_suite(void);
Suite *enroll_e2e_suite(void);
Suite *checkin_e2e_suite(void);
Suite *command_e2e_suite(void);
Suite *push_e2e_suite(void);
Suite *events_e2e_suite(void);
Suite *ota_e2e_suite(void);
Suite *applesim_e2e_suite(void);
Suite *ddm_e2e_suite(void);
Suite *faults_e2e_suite(void);
Suite *failover_e2e_suite(void);
Suite *tlsproxy_e2e_suite(void);
Suite *metrics_e2e_suite(void);
Suite *acme_e2e_suite(void);

static const char *need(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "check_e2e: %s is not set; run the suite with tests/run.sh\n",
		        name);
		exit(2);
	}
	return v;
}

static Suite *e2e_suite(void)
{
	static char name[64];
	Suite *s;
	TCase *tc;

	snprintf(name, sizeof(name), "e2e-%s", env_mode);
	s = suite_create(name);

	tc = tcase_create("routing");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_health_no_cert, 0, NROUTES);
	tcase_add_loop_test(tc, test_health_device_cert, 0, NROUTES);
	tcase_add_loop_test(tc, test_health_self_signed_cert, 0, NROUTES);
	tcase_add_loop_test(tc, test_plain_http, 0, NROUTES);
	tcase_add_test(tc, test_route_boundary);
	suite_add_tcase(s, tc);

	tc = tcase_create("methods");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_wrong_method, 0, NWRONG);
	tcase_add_test(tc, test_get_checkin_url);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, SLOW_TIMEOUT);
	tcase_add_loop_test(tc, test_over_limit_length, 0, NROUTES);
	tcase_add_loop_test(tc, test_over_limit_chunked, 0, NROUTES);
	tcase_add_loop_test(tc, test_at_limit_length, 0, NROUTES);
	tcase_add_loop_test(tc, test_at_limit_chunked, 0, NROUTES);
	suite_add_tcase(s, tc);

	tc = tcase_create("afterwards");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_still_answers);
	if (env_pgctl != NULL)
		tcase_add_test(tc, test_db_down_and_back);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *env_file = getenv("E2E_ENV");
	SRunner *sr;
	int failed;

	if (env_file != NULL && *env_file != '\0' && !e2e_env_load(env_file))
		return 2;
	env_https = need("E2E_HTTPS_BASE");
	env_http = need("E2E_HTTP_BASE");
	env_ca = need("E2E_TLS_CA");
	env_client_cert = need("E2E_CLIENT_CERT");
	env_client_key = need("E2E_CLIENT_KEY");
	env_client_fp = need("E2E_CLIENT_FP");
	env_self_cert = need("E2E_SELF_CERT");
	env_self_key = need("E2E_SELF_KEY");
	env_self_fp = need("E2E_SELF_FP");
	env_mode = getenv("E2E_MODE") != NULL ? getenv("E2E_MODE") : "apache";
	env_pgctl = getenv("E2E_PGCTL");
	if (env_pgctl != NULL && *env_pgctl == '\0')
		env_pgctl = NULL;
	if (strlen(env_client_fp) != FP_HEX_LEN || strlen(env_self_fp) != FP_HEX_LEN) {
		fprintf(stderr, "check_e2e: E2E_CLIENT_FP and E2E_SELF_FP must be 64 hex digits\n");
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "check_e2e: curl_global_init failed\n");
		return 2;
	}
	sr = srunner_create(e2e_suite());
	if (getenv("E2E_METRICS_TOKEN") != NULL)
		srunner_add_suite(sr, metrics_e2e_suite());
	if (getenv("E2E_SCEP_URL") != NULL)
		srunner_add_suite(sr, scep_interop_suite());
	if (getenv("E2E_ACME_CLIENT") != NULL)
		srunner_add_suite(sr, acme_e2e_suite());
	if (getenv("E2E_DEVICE_CA") != NULL) {
		srunner_add_suite(sr, enroll_e2e_suite());
		srunner_add_suite(sr, checkin_e2e_suite());
		srunner_add_suite(sr, command_e2e_suite());
		/* The push daemon does not depend on the Apache mode: once. */
		if (getenv("E2E_APNS_URL") != NULL && getenv("E2E_PUSHD") != NULL &&
		        strcmp(getenv("E2E_MODE") ? getenv("E2E_MODE") : "", "proxy") == 0)
			srunner_add_suite(sr, push_e2e_suite());
		/* Nor does the webhook daemon. */
		if (getenv("E2E_EVENTD") != NULL && getenv("E2E_EVENTS_RECEIVER") != NULL &&
		        strcmp(getenv("E2E_MODE") ? getenv("E2E_MODE") : "", "proxy") == 0)
			srunner_add_suite(sr, events_e2e_suite());
		if (getenv("E2E_OTA_DEVCA_CERT") != NULL)
			srunner_add_suite(sr, ota_e2e_suite());
		if (getenv("E2E_APPLESIM") != NULL) {
			srunner_add_suite(sr, applesim_e2e_suite());
			srunner_add_suite(sr, ddm_e2e_suite());
		}
		/* Last: it cuts every program's database session. */
		srunner_add_suite(sr, faults_e2e_suite());
		/* tests/run.sh's failover pass only: it crashes the primary. */
		if (getenv("E2E_FAILOVER") != NULL)
			srunner_add_suite(sr, failover_e2e_suite());
		if (getenv("E2E_TLSPROXY_BASE") != NULL)
			srunner_add_suite(sr, tlsproxy_e2e_suite());
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
