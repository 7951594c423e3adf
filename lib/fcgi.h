/*
 * FastCGI request glue: the parameters of one request, its body read
 * under a per-endpoint limit enforced before allocation, and responses.
 *
 * The request logic works on an environment array and two I/O callbacks,
 * so it is unit-tested without a web server; fcgi_run() binds it to
 * libfcgi (only this module includes libfcgi).
 */
#ifndef MDM_FCGI_H
#define MDM_FCGI_H

#include <stddef.h>

#include "mdm_limits.h"
#include "errors.h"

struct fcgi_io {
	void *ctx;
	/* Bytes read into buf (at most n), 0 at the end of the body, -1 on error. */
	int (*read)(void *ctx, char *buf, int n);
	/* Bytes written (all of n), -1 on error. */
	int (*write)(void *ctx, const char *buf, int n);
};

typedef struct fcgi_req {
	char *const *envp;
	struct fcgi_io io;
	const char *method;       /* REQUEST_METHOD */
	char *path;               /* REQUEST_URI up to '?', owned */
	const char *query;        /* QUERY_STRING, "" when none */
	const char *client_cert;  /* SSL_CLIENT_CERT (PEM), NULL when absent or empty */
	char *client_cert_owned;  /* the PEM made from a trusted proxy's Client-Cert */
	long long content_length; /* -1 when the request had none (chunked) */
	unsigned char *body;      /* NUL-terminated copy, owned; NULL before reading */
	size_t body_len;
	int body_done; /* the body was read or drained to the end */
	int responded;
	int status; /* the status sent (fcgi_respond), 0 before */
	char request_id[40];
} fcgi_req;

/*
 * trusted_proxies: the addresses (IPv4 or IPv6, with an optional /prefix)
 * of reverse proxies that terminate TLS in front of the server and pass the
 * client certificate in an RFC 9440 Client-Cert header.  At most
 * FCGI_MAX_PROXIES entries.
 */
struct fcgi_proxies {
	int n;
	struct {
		int family; /* AF_INET or AF_INET6 */
		unsigned char addr[16];
		int prefix;
	} net[FCGI_MAX_PROXIES];
};
/* Parses a comma- or space-separated list ("" for none); MDM_ERR_CONFIG naming the entry. */
MDM_WUR mdm_err fcgi_proxies_parse(const char *list, struct fcgi_proxies *out);
/* 1 when addr (REMOTE_ADDR; IPv4-mapped IPv6 counts as IPv4) is in the list. */
int fcgi_proxies_match(const struct fcgi_proxies *tp, const char *addr);
/*
 * RFC 9440: when the request comes from a trusted proxy (REMOTE_ADDR) and
 * carries Client-Cert (section 2.2: an RFC 8941 Byte Sequence, ":" base64
 * DER ":"), that certificate becomes r->client_cert, as PEM, in place of
 * SSL_CLIENT_CERT (which, behind a proxy, would be the proxy's own).  From
 * any other address the header is ignored (logged): anyone can send it.
 * MDM_ERR_PARSE when a trusted proxy's header is malformed.
 */
MDM_WUR mdm_err fcgi_client_cert_from_proxy(fcgi_req *r, const struct fcgi_proxies *tp);

/* Validates and indexes one request's parameters; clears *r first. */
MDM_WUR mdm_err fcgi_req_init(fcgi_req *r, char *const *envp, const struct fcgi_io *io);
void fcgi_req_clear(fcgi_req *r);

/* A CGI parameter by name (e.g. "HTTPS"), NULL when absent. */
const char *fcgi_param0(const fcgi_req *r, const char *name);
/* An HTTP request header by its name ("Mdm-Signature"), NULL when absent. */
const char *fcgi_header0(const fcgi_req *r, const char *header);
/* 1 if method appears in a list such as "GET, POST". */
int fcgi_method_in(const char *method, const char *list);

/*
 * The value of query parameter name, percent-decoded, in *out (NUL-ended,
 * caller frees) and *outlen.  MDM_ERR_NOT_FOUND when absent; a parameter
 * given twice or a bad %-escape is MDM_ERR_PARSE.  plus_is_space applies
 * the HTML form rule; SCEP passes 0 because macOS sends base64 '+' and '/'
 * unescaped in GET PKIOperation.
 */
MDM_WUR mdm_err fcgi_query_get(
        const char *query, const char *name, int plus_is_space, char **out, size_t *outlen);
/*
 * The same into buf (cap bytes, NUL included), allocating nothing: a value
 * that does not fit is MDM_ERR_LIMIT, found while decoding, so a value of
 * any length costs no memory.  buf is "" unless MDM_OK.
 */
MDM_WUR mdm_err fcgi_query_get_buf(const char *query, const char *name, int plus_is_space,
        char *buf, size_t cap, size_t *outlen);

/*
 * Reads the whole body into r->body.  A declared Content-Length over
 * limit is refused before anything is allocated; a body without one
 * (chunked) is refused as soon as it passes limit.  Either way the rest of
 * the body is drained, so a reused connection stays in step, and
 * MDM_ERR_TOO_LARGE (413) is returned.
 */
MDM_WUR mdm_err fcgi_read_body(fcgi_req *r, size_t limit);
/* Reads and discards whatever is left of the body. */
MDM_WUR mdm_err fcgi_drain(fcgi_req *r);

/*
 * Writes one response.  extra_headers is NULL or complete "Name: value\r\n"
 * lines from our own code (checked: no bare CR or LF).
 */
MDM_WUR mdm_err fcgi_respond(fcgi_req *r, int status, const char *content_type,
        const char *extra_headers, const void *body, size_t len);
/* A text/plain response from a printf format, newline added. */
MDM_WUR mdm_err fcgi_respond_text(fcgi_req *r, int status, const char *extra_headers,
        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

typedef MDM_WUR mdm_err (*fcgi_handler)(fcgi_req *r, void *arg);

/*
 * The FastCGI accept loop: for each request, init, call handler, drain
 * what the handler left unread, finish.  Returns when the web server
 * closes the listening socket or a signal ends FCGX_Accept_r.
 */
MDM_WUR mdm_err fcgi_run(fcgi_handler handler, void *arg);

#endif
