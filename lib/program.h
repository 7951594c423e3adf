/*
 * What every FastCGI program shares: configuration, logging, the database
 * handle, and the dispatch in front of its handler (health, method,
 * body limit).  A program is a program_spec (its name, methods, body
 * limit and handler) run by program_main.
 */
#ifndef MDM_PROGRAM_H
#define MDM_PROGRAM_H

#include <stddef.h>

#include "config.h"
#include "db.h"
#include "errors.h"
#include "fcgi.h"
#include "metrics.h"

struct ca_state;
struct identity;
struct program;

struct program_spec {
	const char *program;  /* "checkin.fcgi": names it in logs and answers */
	const char *methods;  /* allowed, as an Allow header: "GET, POST" */
	size_t max_body;      /* from mdm_limits.h */
	const char *protocol; /* what it speaks, for error messages */
	/* Called with the body read (r->body) for allowed methods. */
	MDM_WUR mdm_err (*handle)(struct program *a, fcgi_req *r);
};

struct program {
	const struct program_spec *ep;
	config *cfg;
	db *db;
	struct fcgi_proxies proxies; /* trusted_proxies (RFC 9440 Client-Cert) */
	int require_tls;             /* checkin_require_tls, read once at start-up */
	struct metrics metrics;      /* this worker's request counts (lib/metrics.h) */
};

/* The program's main(): returns its exit status. */
int program_main(const struct program_spec *ep, int argc, char **argv);

/*
 * One request through the dispatch (exposed for tests): GET <route>/health
 * is answered here; a method not in ep->methods gets 405 with Allow; a
 * body over ep->max_body gets 413; everything else reaches ep->handle.
 */
MDM_WUR mdm_err program_dispatch(struct program *a, fcgi_req *r);

/* Answers with err's status and a one-line message naming the program. */
MDM_WUR mdm_err program_fail(struct program *a, fcgi_req *r, mdm_err err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/*
 * The device behind a check-in or command-channel request, which Apple's
 * MDM protocol authenticates alike (lib/identity.c): checkin_require_tls
 * (the config key, or MDM_CHECKIN_REQUIRE_TLS per Location), then the TLS
 * client certificate and/or Mdm-Signature over the body.  MDM_OK with *id
 * set; otherwise the answer is sent: 403 for a refused identity, with a
 * body that names no rule (a 401 could make a real device unenroll; the
 * log line says which rule), 500 or 503 for what is not the device's fault.
 * lookup 0: the certificate is verified but not looked up in
 * mdm.certificate (identity_verify), for a caller that reads its row in
 * a statement of its own and applies identity_record.
 */
MDM_WUR mdm_err program_device(
        struct program *a, fcgi_req *r, const struct ca_state *ca, int lookup, struct identity *id);

#endif
