/* Program glue: start-up, and the checks in front of every handler. */
#include "program.h"
#include "identity.h"
#include "log.h"
#include "x509.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int program_is_health(const fcgi_req *r)
{
	static const char suffix[] = "/health";
	size_t n = strlen(r->path), s = sizeof(suffix) - 1;

	return (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) && n >= s &&
	        strcmp(r->path + n - s, suffix) == 0;
}

/* Seconds a client waits after a 503 (database unavailable). */
#define APP_RETRY_AFTER "5"

mdm_err program_fail(struct program *a, fcgi_req *r, mdm_err err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int status = err_http_status(err);

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* RFC 9110 section 15.6.4: the database is down or read-only for now;
	 * Apple clients and curl --retry honour a short Retry-After. */
	err_ignore(fcgi_respond_text(r, status,
	        status == 503 ? "Retry-After: " APP_RETRY_AFTER "\r\n" : NULL, "%d %s: %s: %s",
	        status, err_http_reason(status), a->ep->program, msg));
	return err;
}

mdm_err program_device(
        struct program *a, fcgi_req *r, const struct ca_state *ca, int lookup, struct identity *id)
{
	int require_tls =
	        identity_require_tls_for(a->require_tls, fcgi_param0(r, "MDM_CHECKIN_REQUIRE_TLS"));
	mdm_err rc;

	if (identity_require_tls(require_tls, r->client_cert) != MDM_OK) {
		err_ignore(fcgi_respond_text(r, 403, NULL, IDENTITY_REQUIRE_TLS_REFUSAL));
		return MDM_ERR_FORBIDDEN;
	}
	if (lookup)
		rc = identity_authenticate(a->db, ca, r->client_cert,
		        fcgi_header0(r, "Mdm-Signature"), r->body, r->body_len, time(NULL), id);
	else
		rc = identity_verify(ca, r->client_cert, fcgi_header0(r, "Mdm-Signature"), r->body,
		        r->body_len, time(NULL), id);
	if (rc == MDM_ERR_FORBIDDEN) {
		err_ignore(fcgi_respond_text(r, 403, NULL, "forbidden"));
		return rc;
	}
	if (rc != MDM_OK)
		return program_fail(a, r, rc, "the device identity could not be checked");
	return MDM_OK;
}

/* Liveness and wiring: the database, and the client certificate Apache passed. */
static MDM_WUR mdm_err program_health(struct program *a, fcgi_req *r)
{
	char fp[X509_FP_HEX_LEN + 1];
	const char *cert = "none";
	char certbuf[X509_FP_HEX_LEN + 8];
	int db_up = a->db != NULL && db_ping(a->db) == MDM_OK;

	if (r->client_cert != NULL) {
		if (x509_pem_fingerprint(r->client_cert, strlen(r->client_cert), fp) == MDM_OK) {
			snprintf(certbuf, sizeof(certbuf), "sha256:%s", fp);
			cert = certbuf;
		} else {
			cert = "invalid";
		}
	}
	return fcgi_respond_text(r, db_up ? 200 : 503, "Cache-Control: no-store\r\n",
	        "%s %s db=%s client_cert=%s", db_up ? "ok" : "unavailable", a->ep->program,
	        db_up ? "up" : "down", cert);
}

/*
 * GET /mdm/metrics: the Prometheus text of mdm.metrics_text(), to a scraper
 * with the metrics_token_file token only.  Refusals say nothing more than
 * their status: 401 without a token, 403 for a wrong one, 404 while
 * metrics_token_file is unset.
 */
static MDM_WUR mdm_err program_metrics(struct program *a, fcgi_req *r)
{
	mdm_err rc = metrics_authorize(
	        fcgi_header0(r, "Authorization"), config_get0(a->cfg, "metrics_token_file"));
	db_res *res = NULL;
	const char *text;

	if (fcgi_drain(r) != MDM_OK)
		return MDM_ERR_IO;
	if (rc == MDM_ERR_AUTH)
		return fcgi_respond_text(
		        r, 401, "WWW-Authenticate: Bearer\r\n", "401 Unauthorized");
	if (rc == MDM_ERR_FORBIDDEN)
		return fcgi_respond_text(r, 403, NULL, "403 Forbidden");
	if (rc == MDM_ERR_NOT_FOUND)
		return fcgi_respond_text(r, 404, NULL, "404 Not Found");
	if (rc != MDM_OK)
		return program_fail(a, r, rc, "metrics are not available (see the log)");
	/* This worker's own counts first, so a scrape sees the requests before it. */
	if (a->metrics.flush_seconds >= 0)
		err_ignore(metrics_flush(&a->metrics, a->db, metrics_now(), 1));
	if ((rc = db_exec(a->db, "SELECT mdm.metrics_text()", 0, NULL, &res)) != MDM_OK ||
	        (text = db_res_get0(res, 0, 0)) == NULL) {
		db_res_free(res);
		return program_fail(a, r, rc != MDM_OK ? rc : MDM_ERR_DB, "metrics query failed");
	}
	rc = fcgi_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	        "Cache-Control: no-store\r\n", text, strlen(text));
	db_res_free(res);
	return rc;
}

mdm_err program_dispatch(struct program *a, fcgi_req *r)
{
	const struct program_spec *ep = a->ep;
	char allow[128];
	mdm_err rc;

	if ((rc = fcgi_client_cert_from_proxy(r, &a->proxies)) != MDM_OK)
		return program_fail(a, r, rc,
		        "the trusted proxy's Client-Cert header is not one base64 DER certificate "
		        "(RFC 9440 section 2.2)");
	if (program_is_health(r))
		return program_health(a, r);
	if (strcmp(r->path, "/mdm/metrics") == 0 && strcmp(r->method, "GET") == 0)
		return program_metrics(a, r);
	if (!fcgi_method_in(r->method, ep->methods)) {
		if (fcgi_drain(r) != MDM_OK)
			return MDM_ERR_IO;
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", ep->methods);
		log_info("%s: method %.16s refused", ep->program, r->method);
		err_ignore(fcgi_respond_text(r, 405, allow,
		        "405 Method Not Allowed: %s accepts %s (%s)", ep->program, ep->methods,
		        ep->protocol));
		return MDM_ERR_METHOD;
	}
	rc = fcgi_read_body(r, ep->max_body);
	if (rc == MDM_ERR_TOO_LARGE)
		return program_fail(
		        a, r, rc, "request body over the limit of %zu bytes", ep->max_body);
	if (rc != MDM_OK)
		return program_fail(a, r, rc, "could not read the request body");
	return ep->handle(a, r);
}

/* Every request counted in the worker's memory; the counts reach the database at most
 * every metrics_flush_seconds, after the answer was written (lib/metrics.h). */
static MDM_WUR mdm_err program_handler(fcgi_req *r, void *arg)
{
	struct program *a = arg;
	double start = metrics_now(), end;
	mdm_err rc = program_dispatch(a, r);

	end = metrics_now();
	metrics_observe(&a->metrics, r->status, end - start);
	if (a->metrics.flush_seconds >= 0 && metrics_flush(&a->metrics, a->db, end, 0) != MDM_OK)
		log_warn("%s: the request metrics could not be written; kept for the next flush",
		        a->ep->program);
	return rc;
}

int program_main(const struct program_spec *ep, int argc, char **argv)
{
	struct program a = {.ep = ep};
	enum log_level level;
	int status = 1, flush = 0;

	(void)argc;
	(void)argv;
	log_init(ep->program, MDM_LOG_INFO);
	if (config_load(&a.cfg) != MDM_OK)
		goto out;
	if (log_level_parse(config_get0(a.cfg, "log_level"), &level) != MDM_OK) {
		log_error("config: log_level must be debug, info, warn or error");
		goto out;
	}
	log_set_level(level);
	if (fcgi_proxies_parse(config_get0(a.cfg, "trusted_proxies"), &a.proxies) != MDM_OK)
		goto out;
	/* Read once: every program may meet device requests' identity (program_device). */
	if (config_get_bool(a.cfg, "checkin_require_tls", &a.require_tls) != MDM_OK)
		goto out;
	/* Connects lazily: the program starts, and says db=down, while PostgreSQL is away. */
	if (db_new(config_get0(a.cfg, "db"), ep->program, &a.db) != MDM_OK)
		goto out;
	/* -1: not counted at all (metrics_flush_seconds = off). */
	if (strcmp(config_get0(a.cfg, "metrics_flush_seconds"), "off") == 0)
		metrics_init(&a.metrics, ep->program, -1, metrics_now());
	else if (config_get_int(a.cfg, "metrics_flush_seconds", 0, 3600, &flush) != MDM_OK)
		goto out;
	else
		metrics_init(&a.metrics, ep->program, flush, metrics_now());
	log_info("%s: started", ep->program);
	if (fcgi_run(program_handler, &a) == MDM_OK)
		status = 0;
	/* What this worker counted since its last flush, before it goes. */
	if (a.metrics.flush_seconds >= 0)
		err_ignore(metrics_flush(&a.metrics, a.db, metrics_now(), 1));
out:
	db_free(a.db);
	config_free(a.cfg);
	return status;
}
