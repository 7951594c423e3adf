/*
 * TLS client connections (OpenSSL SSL) for lib/apns.c: one SSL_CTX per
 * client identity, trusting a CA file or the system store, TLS 1.2 at
 * least, the peer verified to the host name or IP address, one ALPN
 * protocol required; connections made within a deadline, then read and
 * written without blocking.
 */
#include "x509.h"
#include "x509_int.h"
#include "log.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct x509_tls_client {
	SSL_CTX *ctx;
	unsigned char alpn[32]; /* wire form: length-prefixed */
	size_t alpn_len;
};

struct x509_tls {
	SSL *ssl;
	int fd;
	int want_write; /* the last call stopped waiting for the socket to take data */
};

static long x509_tls_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

mdm_err x509_tls_client_new(const char *ca_file, const char *alpn, struct x509_st *cert,
        struct evp_pkey_st *key, x509_tls_client **out)
{
	x509_tls_client *c = NULL;
	size_t alen = alpn != NULL ? strlen(alpn) : 0;
	mdm_err rc = MDM_ERR_CRYPTO;

	*out = NULL;
	if (alen == 0 || alen + 1 > sizeof(c->alpn) || cert == NULL || key == NULL)
		return MDM_ERR_INVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return MDM_ERR_NOMEM;
	c->alpn[0] = (unsigned char)alen;
	memcpy(c->alpn + 1, alpn, alen);
	c->alpn_len = alen + 1;
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "SSL_CTX_new");
		goto out;
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(
	        c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "SSL_CTX_set_min_proto_version");
		goto out;
	}
	if (ca_file != NULL ? SSL_CTX_load_verify_file(c->ctx, ca_file) != 1
	                    : SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR,
		        ca_file != NULL ? "SSL_CTX_load_verify_file"
		                        : "SSL_CTX_set_default_verify_paths");
		rc = MDM_ERR_CONFIG;
		goto out;
	}
	/* SSL_CTX_set_alpn_protos returns 0 on success. */
	if (SSL_CTX_set_alpn_protos(c->ctx, c->alpn, (unsigned)c->alpn_len) != 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "SSL_CTX_set_alpn_protos");
		goto out;
	}
	if ((rc = x509_ssl_ctx_use_identity(c->ctx, cert, key)) != MDM_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	x509_tls_client_free(c);
	return rc;
}

void x509_tls_client_free(x509_tls_client *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

/* Waits until fd is ready for events or deadline (ms, monotonic) passes; 1 if ready. */
static int x509_tls_wait(int fd, short events, long deadline)
{
	for (;;) {
		struct pollfd p = {fd, events, 0};
		long left = deadline - x509_tls_now_ms();
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
	}
}

/* A TCP connection to host:port within deadline, non-blocking; -1 (logged) on failure. */
static int x509_tls_tcp(const char *host, const char *port, long deadline)
{
	struct addrinfo hints, *res = NULL;
	int fd = -1, err, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((err = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_warn("tls: cannot resolve %s: %s", host, gai_strerror(err));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		socklen_t len = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		        ai->ai_protocol);
		if (fd < 0)
			continue;
		err = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
		        (errno != EINPROGRESS || !x509_tls_wait(fd, POLLOUT, deadline) ||
		                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
		                err != 0)) {
			log_warn("tls: cannot connect to %s port %s: %s", host, port,
			        err != 0                       ? strerror(err)
			                : errno == EINPROGRESS ? "timeout"
			                                       : strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		/* Requests are small frames: no Nagle delay between them. */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		break;
	}
	freeaddrinfo(res);
	return fd;
}

/* 1 if host is an IPv4 or IPv6 literal. */
static int x509_tls_is_ip(const char *host)
{
	struct addrinfo hints, *res = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	freeaddrinfo(res);
	return 1;
}

mdm_err x509_tls_connect(
        x509_tls_client *c, const char *host, const char *port, long timeout_ms, x509_tls **out)
{
	long deadline = x509_tls_now_ms() + (timeout_ms > 0 ? timeout_ms : 30000);
	const unsigned char *proto = NULL;
	unsigned proto_len = 0;
	x509_tls *t = NULL;
	mdm_err rc = MDM_ERR_IO;
	int ip = x509_tls_is_ip(host);

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return MDM_ERR_NOMEM;
	t->fd = -1;
	if ((t->fd = x509_tls_tcp(host, port, deadline)) < 0)
		goto out;
	if ((t->ssl = SSL_new(c->ctx)) == NULL || SSL_set_fd(t->ssl, t->fd) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "SSL_new");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	/* The peer's certificate must name host (RFC 6125), or carry the address. */
	if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1
	       : SSL_set_tlsext_host_name(t->ssl, host) != 1 || SSL_set1_host(t->ssl, host) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "SSL_set1_host");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	for (;;) {
		int r = SSL_connect(t->ssl), e;

		if (r == 1)
			break;
		e = SSL_get_error(t->ssl, r);
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		        !x509_tls_wait(
		                t->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
			long v = SSL_get_verify_result(t->ssl);
			if (v != X509_V_OK)
				log_warn("tls: %s port %s: certificate refused: %s", host, port,
				        X509_verify_cert_error_string(v));
			else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				log_warn("tls: %s port %s: handshake timed out", host, port);
			else
				x509_ossl_fail(MDM_LOG_WARN, "SSL_connect");
			ERR_clear_error();
			goto out;
		}
	}
	SSL_get0_alpn_selected(t->ssl, &proto, &proto_len);
	if (proto_len + 1 != c->alpn_len || memcmp(proto, c->alpn + 1, proto_len) != 0) {
		log_warn("tls: %s port %s does not speak %.*s (ALPN)", host, port,
		        (int)c->alpn_len - 1, (const char *)c->alpn + 1);
		rc = MDM_ERR_UNSUPPORTED;
		goto out;
	}
	*out = t;
	t = NULL;
	rc = MDM_OK;
out:
	x509_tls_free(t);
	return rc;
}

int x509_tls_fd(const x509_tls *t)
{
	return t->fd;
}

int x509_tls_want_write(const x509_tls *t)
{
	return t->want_write;
}

/* MDM_OK with *n bytes (0: would block), MDM_ERR_IO when the connection is closed or broken. */
static MDM_WUR mdm_err x509_tls_result(x509_tls *t, int r, size_t *n, const char *call)
{
	int e = SSL_get_error(t->ssl, r);

	if (r > 0) {
		*n = (size_t)r;
		return MDM_OK;
	}
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		t->want_write = e == SSL_ERROR_WANT_WRITE;
		return MDM_OK;
	}
	if (e == SSL_ERROR_ZERO_RETURN)
		log_debug("tls: the peer closed the connection");
	else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		log_debug("tls: connection lost: %s", errno != 0 ? strerror(errno) : "EOF");
	else
		x509_ossl_fail(MDM_LOG_WARN, call);
	ERR_clear_error();
	return MDM_ERR_IO;
}

mdm_err x509_tls_read(x509_tls *t, void *buf, size_t cap, size_t *n)
{
	*n = 0;
	t->want_write = 0;
	errno = 0;
	return x509_tls_result(
	        t, SSL_read(t->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap), n, "SSL_read");
}

mdm_err x509_tls_write(x509_tls *t, const void *buf, size_t len, size_t *n)
{
	*n = 0;
	t->want_write = 0;
	errno = 0;
	if (len == 0)
		return MDM_OK;
	return x509_tls_result(
	        t, SSL_write(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len), n, "SSL_write");
}

void x509_tls_free(x509_tls *t)
{
	if (t == NULL)
		return;
	/* No close_notify: the socket may be dead, and the peer learns from the close. */
	SSL_free(t->ssl);
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}
