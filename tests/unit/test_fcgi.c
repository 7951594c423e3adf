/* fcgi: request parameters, body limits before allocation, responses. */
#include "fakeio.h"
#include "fcgi.h"
#include "log.h"
#include "mdm_limits.h"
#include "suites.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void quiet(void)
{
	log_set_level(MDM_LOG__MAX);
}

START_TEST(init_reads_parameters)
{
	char *env[] = {"REQUEST_METHOD=PUT", "REQUEST_URI=/mdm/checkin?x=1", "QUERY_STRING=x=1",
	        "CONTENT_LENGTH=5", "SSL_CLIENT_CERT=", "HTTP_MDM_SIGNATURE=abc",
	        "UNIQUE_ID=aZ09-_@", NULL};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "hello", 5);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_str_eq(r.method, "PUT");
	ck_assert_str_eq(r.path, "/mdm/checkin");
	ck_assert_str_eq(r.query, "x=1");
	ck_assert_ptr_null(r.client_cert); /* Apache passes it empty without a certificate */
	ck_assert_int_eq(r.content_length, 5);
	ck_assert_str_eq(fcgi_header0(&r, "Mdm-Signature"), "abc");
	ck_assert_str_eq(fcgi_header0(&r, "mdm-signature"), "abc");
	ck_assert_ptr_null(fcgi_header0(&r, "Mdm-Signature-X"));
	ck_assert_ptr_null(fcgi_param0(&r, "REQUEST"));
	ck_assert_str_eq(r.request_id, "aZ09-_@");
	fcgi_req_clear(&r);
}
END_TEST

START_TEST(init_refuses_malformed)
{
	static const char *const bad_len[] = {"CONTENT_LENGTH=12a", "CONTENT_LENGTH=-1",
	        "CONTENT_LENGTH=+5", "CONTENT_LENGTH=99999999999999999999999", "CONTENT_LENGTH= 5"};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "", 0);
	fcgi_req r;
	char *nomethod[] = {"REQUEST_URI=/", NULL};

	ck_assert_int_eq(fcgi_req_init(&r, nomethod, &io), MDM_ERR_PARSE);
	fcgi_req_clear(&r);
	for (size_t i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
		char *env[] = {"REQUEST_METHOD=PUT", (char *)bad_len[i], NULL};
		ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_ERR_PARSE);
		fcgi_req_clear(&r);
	}
}
END_TEST

START_TEST(init_refuses_long_query)
{
	size_t n = MDM_MAX_QUERY + 20;
	char *q = malloc(n);
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "", 0);
	fcgi_req r;

	memcpy(q, "QUERY_STRING=", 13);
	memset(q + 13, 'a', n - 14);
	q[n - 1] = '\0';
	char *env[] = {"REQUEST_METHOD=GET", q, NULL};
	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_ERR_LIMIT);
	fcgi_req_clear(&r);
	free(q);
}
END_TEST

START_TEST(body_exact)
{
	char *env[] = {"REQUEST_METHOD=PUT", "CONTENT_LENGTH=5", NULL};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "helloEXTRA", 10);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(fcgi_read_body(&r, 5), MDM_OK);
	ck_assert_uint_eq(r.body_len, 5);
	ck_assert_str_eq((char *)r.body, "hello");
	ck_assert_uint_eq(f.in_pos, 5); /* never reads past Content-Length */
	fcgi_req_clear(&r);
}
END_TEST

START_TEST(body_short_is_refused)
{
	char *env[] = {"REQUEST_METHOD=PUT", "CONTENT_LENGTH=50", NULL};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "hello", 5);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(fcgi_read_body(&r, 1000), MDM_ERR_PARSE);
	ck_assert_ptr_null(r.body);
	fcgi_req_clear(&r);
}
END_TEST

/*
 * A declared length of a terabyte: refused from the header alone.  Had it
 * tried to allocate first, malloc would have failed with NOMEM instead.
 */
START_TEST(body_over_limit_refused_before_allocation)
{
	char *env[] = {"REQUEST_METHOD=PUT", "CONTENT_LENGTH=1099511627776", NULL};
	static char in[100000];
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, in, sizeof(in));
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(fcgi_read_body(&r, 65536), MDM_ERR_TOO_LARGE);
	ck_assert_ptr_null(r.body);
	ck_assert_uint_eq(f.in_pos, sizeof(in)); /* drained, so a reused connection stays in step */
	fcgi_req_clear(&r);
}
END_TEST

START_TEST(body_limit_boundary)
{
	static char in[1025];
	char *env_ok[] = {"REQUEST_METHOD=PUT", "CONTENT_LENGTH=1024", NULL};
	char *env_big[] = {"REQUEST_METHOD=PUT", "CONTENT_LENGTH=1025", NULL};
	struct fakeio f;
	struct fcgi_io io;
	fcgi_req r;

	io = fakeio_bind(&f, in, 1024);
	ck_assert_int_eq(fcgi_req_init(&r, env_ok, &io), MDM_OK);
	ck_assert_int_eq(fcgi_read_body(&r, 1024), MDM_OK);
	fcgi_req_clear(&r);
	io = fakeio_bind(&f, in, 1025);
	ck_assert_int_eq(fcgi_req_init(&r, env_big, &io), MDM_OK);
	ck_assert_int_eq(fcgi_read_body(&r, 1024), MDM_ERR_TOO_LARGE);
	fcgi_req_clear(&r);
}
END_TEST

START_TEST(body_chunked)
{
	static char in[300000];
	char *env[] = {"REQUEST_METHOD=PUT", NULL};
	struct fakeio f;
	struct fcgi_io io;
	fcgi_req r;

	memset(in, 'a', sizeof(in));
	/* Without a length, under the limit: read whole. */
	io = fakeio_bind(&f, in, 70000);
	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(r.content_length, -1);
	ck_assert_int_eq(fcgi_read_body(&r, 70000), MDM_OK);
	ck_assert_uint_eq(r.body_len, 70000);
	fcgi_req_clear(&r);
	/* Over it: refused once it passes the limit, the rest drained. */
	io = fakeio_bind(&f, in, sizeof(in));
	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(fcgi_read_body(&r, 65536), MDM_ERR_TOO_LARGE);
	ck_assert_ptr_null(r.body);
	ck_assert_uint_eq(f.in_pos, sizeof(in));
	fcgi_req_clear(&r);
	/* Empty. */
	io = fakeio_bind(&f, in, 0);
	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(fcgi_read_body(&r, 10), MDM_OK);
	ck_assert_uint_eq(r.body_len, 0);
	ck_assert_str_eq((char *)r.body, "");
	fcgi_req_clear(&r);
}
END_TEST

START_TEST(respond_format)
{
	char *env[] = {"REQUEST_METHOD=GET", "UNIQUE_ID=abc", NULL};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "", 0);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(fcgi_respond(&r, 413, "text/plain", "Allow: PUT\r\n", "big", 3), MDM_OK);
	ck_assert_str_eq(f.out,
	        "Status: 413 Payload Too Large\r\nContent-Type: text/plain\r\n"
	        "Content-Length: 3\r\nX-Request-Id: abc\r\nAllow: PUT\r\n\r\nbig");
	/* One response per request. */
	ck_assert_int_eq(fcgi_respond(&r, 200, "text/plain", NULL, "x", 1), MDM_ERR_INTERNAL);
	fcgi_req_clear(&r);
}
END_TEST

START_TEST(respond_refuses_header_injection)
{
	char *env[] = {"REQUEST_METHOD=GET", NULL};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "", 0);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(
	        fcgi_respond(&r, 200, "text/plain\r\nSet-Cookie: x", NULL, "", 0), MDM_ERR_INVAL);
	ck_assert_int_eq(
	        fcgi_respond(&r, 200, "text/plain", "A: b\nC: d\r\n", "", 0), MDM_ERR_INVAL);
	ck_assert_int_eq(fcgi_respond(&r, 200, "text/plain", "A: b", "", 0), MDM_ERR_INVAL);
	ck_assert_uint_eq(f.out_len, 0);
	fcgi_req_clear(&r);
}
END_TEST

START_TEST(head_has_no_body)
{
	char *env[] = {"REQUEST_METHOD=HEAD", NULL};
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "", 0);
	fcgi_req r;

	ck_assert_int_eq(fcgi_req_init(&r, env, &io), MDM_OK);
	ck_assert_int_eq(fcgi_respond_text(&r, 200, NULL, "ok %d", 1), MDM_OK);
	ck_assert_ptr_nonnull(strstr(f.out, "Content-Length: 5\r\n"));
	ck_assert_ptr_null(strstr(f.out, "ok 1"));
	fcgi_req_clear(&r);
}
END_TEST

START_TEST(query_get)
{
	char *v = NULL;
	size_t n;

	ck_assert_int_eq(
	        fcgi_query_get("operation=GetCACaps&message=x", "operation", 0, &v, &n), MDM_OK);
	ck_assert_str_eq(v, "GetCACaps");
	free(v);
	/* macOS sends base64 unescaped: '+' and '/' must survive. */
	ck_assert_int_eq(
	        fcgi_query_get("operation=PKIOperation&message=ab+/c%3D%3d", "message", 0, &v, &n),
	        MDM_OK);
	ck_assert_str_eq(v, "ab+/c==");
	ck_assert_uint_eq(n, 7);
	free(v);
	ck_assert_int_eq(fcgi_query_get("q=a+b", "q", 1, &v, &n), MDM_OK);
	ck_assert_str_eq(v, "a b");
	free(v);
	ck_assert_int_eq(fcgi_query_get("q=&r=1", "q", 0, &v, &n), MDM_OK);
	ck_assert_str_eq(v, "");
	free(v);
	ck_assert_int_eq(fcgi_query_get("q=%00x", "q", 0, &v, &n), MDM_OK);
	ck_assert_uint_eq(n, 2); /* embedded NUL: callers use the length */
	free(v);
	ck_assert_int_eq(fcgi_query_get("operationX=1", "operation", 0, &v, &n), MDM_ERR_NOT_FOUND);
	ck_assert_int_eq(fcgi_query_get("", "operation", 0, &v, &n), MDM_ERR_NOT_FOUND);
	ck_assert_int_eq(fcgi_query_get("a=1&a=2", "a", 0, &v, &n), MDM_ERR_PARSE);
	ck_assert_int_eq(fcgi_query_get("a=%4", "a", 0, &v, &n), MDM_ERR_PARSE);
	ck_assert_int_eq(fcgi_query_get("a=%zz", "a", 0, &v, &n), MDM_ERR_PARSE);
	ck_assert_ptr_null(v);
}
END_TEST

/* Into the caller's buffer: nothing allocated, over its size refused. */
START_TEST(query_get_buf)
{
	char b[8];
	size_t n = 99;

	ck_assert_int_eq(fcgi_query_get_buf("a=1&t=ab%2Ec", "t", 0, b, sizeof(b), &n), MDM_OK);
	ck_assert_str_eq(b, "ab.c");
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(fcgi_query_get_buf("t=1234567", "t", 0, b, sizeof(b), &n), MDM_OK);
	ck_assert_uint_eq(n, 7);
	ck_assert_int_eq(fcgi_query_get_buf("t=12345678", "t", 0, b, sizeof(b), &n), MDM_ERR_LIMIT);
	ck_assert_str_eq(b, "");
	ck_assert_uint_eq(n, 0);
	/* Escapes count as what they decode to. */
	ck_assert_int_eq(
	        fcgi_query_get_buf("t=%31%32%33%34%35%36%37", "t", 0, b, sizeof(b), &n), MDM_OK);
	ck_assert_str_eq(b, "1234567");
	ck_assert_int_eq(fcgi_query_get_buf("t=%00", "t", 0, b, sizeof(b), &n), MDM_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(fcgi_query_get_buf("t=1&t=2", "t", 0, b, sizeof(b), &n), MDM_ERR_PARSE);
	ck_assert_int_eq(fcgi_query_get_buf("t=%g1", "t", 0, b, sizeof(b), &n), MDM_ERR_PARSE);
	ck_assert_str_eq(b, "");
	ck_assert_int_eq(fcgi_query_get_buf("u=1", "t", 0, b, sizeof(b), &n), MDM_ERR_NOT_FOUND);
	ck_assert_int_eq(fcgi_query_get_buf(NULL, "t", 0, b, sizeof(b), &n), MDM_ERR_NOT_FOUND);
}
END_TEST

/* trusted_proxies: addresses, prefixes, IPv4-mapped IPv6; refusals name the entry. */
START_TEST(proxies_parse_and_match)
{
	struct fcgi_proxies tp;
	static const char *const bad[] = {"10.0.0.0/33", "::1/129", "10.0.0.1/", "10.0.0.1/-1",
	        "10.0.0", "proxy.example.com", "10.0.0.1/8x", "1.2.3.4/ 8"};

	quiet();
	ck_assert_int_eq(fcgi_proxies_parse("", &tp), MDM_OK);
	ck_assert_int_eq(tp.n, 0);
	ck_assert(!fcgi_proxies_match(&tp, "127.0.0.1"));
	ck_assert_int_eq(
	        fcgi_proxies_parse("127.0.0.1, 10.0.0.0/8  fd00::/8,192.168.1.128/25", &tp),
	        MDM_OK);
	ck_assert_int_eq(tp.n, 4);
	ck_assert(fcgi_proxies_match(&tp, "127.0.0.1"));
	ck_assert(fcgi_proxies_match(&tp, "::ffff:127.0.0.1"));
	ck_assert(!fcgi_proxies_match(&tp, "127.0.0.2"));
	ck_assert(fcgi_proxies_match(&tp, "10.255.1.2"));
	ck_assert(!fcgi_proxies_match(&tp, "11.0.0.1"));
	ck_assert(fcgi_proxies_match(&tp, "fd12::1"));
	ck_assert(!fcgi_proxies_match(&tp, "fe80::1"));
	ck_assert(fcgi_proxies_match(&tp, "192.168.1.200"));
	ck_assert(!fcgi_proxies_match(&tp, "192.168.1.127"));
	ck_assert(!fcgi_proxies_match(&tp, "::1"));
	ck_assert(!fcgi_proxies_match(&tp, NULL));
	ck_assert(!fcgi_proxies_match(&tp, "garbage"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(
		        fcgi_proxies_parse(bad[i], &tp) == MDM_ERR_CONFIG, "%s accepted", bad[i]);
}
END_TEST

/*
 * RFC 9440 Client-Cert: believed from a trusted proxy only, in place of
 * SSL_CLIENT_CERT; from anyone else ignored; malformed from a proxy refused.
 */
START_TEST(client_cert_from_proxy)
{
	/* 96 bytes of "DER": the PEM wraps at 64 base64 characters. */
	static const char b64[] =
	        "MIIBkTCB+6ADAgECAhQAAQIDBAUGBwgJCgsMDQ4PEBESEzANBgkqhkiG9w0BAQsFADAPMQ0w"
	        "CwYDVQQDDARyb290MB4XDTI2";
	char hdr[256],
	        *env[5] = {"REQUEST_METHOD=PUT", "REQUEST_URI=/mdm/checkin",
	                "SSL_CLIENT_CERT=-----BEGIN CERTIFICATE-----\nPROXY\n-----END "
	                "CERTIFICATE-----\n",
	                NULL, NULL};
	static const char *const malformed[] = {"", ":", "::", "MIIB", ":MIIB",
	        "MIIB:", ":MII B:", ":MIIB==:", ":M:IB:", ":-_-_:", ":AAE=:x"};
	struct fcgi_proxies tp;
	struct fakeio f;
	struct fcgi_io io = fakeio_bind(&f, "", 0);
	fcgi_req r;
	char addr[64];

	quiet();
	ck_assert_int_eq(fcgi_proxies_parse("127.0.0.1", &tp), MDM_OK);
	snprintf(hdr, sizeof(hdr), "HTTP_CLIENT_CERT= :%s:\t", b64);
	env[3] = hdr;
	/* From an address that is not a proxy: the header changes nothing. */
	snprintf(addr, sizeof(addr), "REMOTE_ADDR=192.0.2.7");
	env[4] = addr;
	{
		char *e6[] = {env[0], env[1], env[2], env[3], env[4], NULL};

		ck_assert_int_eq(fcgi_req_init(&r, e6, &io), MDM_OK);
		ck_assert_int_eq(fcgi_client_cert_from_proxy(&r, &tp), MDM_OK);
		ck_assert_ptr_nonnull(strstr(r.client_cert, "PROXY"));
		fcgi_req_clear(&r);
		/* Nor with no proxies configured at all. */
		snprintf(addr, sizeof(addr), "REMOTE_ADDR=127.0.0.1");
		ck_assert_int_eq(fcgi_req_init(&r, e6, &io), MDM_OK);
		ck_assert_int_eq(fcgi_proxies_parse("", &tp), MDM_OK);
		ck_assert_int_eq(fcgi_client_cert_from_proxy(&r, &tp), MDM_OK);
		ck_assert_ptr_nonnull(strstr(r.client_cert, "PROXY"));
		fcgi_req_clear(&r);
		/* From the proxy: its header is the device's certificate. */
		ck_assert_int_eq(fcgi_proxies_parse("127.0.0.0/8", &tp), MDM_OK);
		ck_assert_int_eq(fcgi_req_init(&r, e6, &io), MDM_OK);
		ck_assert_int_eq(fcgi_client_cert_from_proxy(&r, &tp), MDM_OK);
		ck_assert_str_eq(r.client_cert,
		        "-----BEGIN CERTIFICATE-----\n"
		        "MIIBkTCB+6ADAgECAhQAAQIDBAUGBwgJCgsMDQ4PEBESEzANBgkqhkiG9w0BAQsF\n"
		        "ADAPMQ0wCwYDVQQDDARyb290MB4XDTI2\n"
		        "-----END CERTIFICATE-----\n");
		fcgi_req_clear(&r);
		for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
			snprintf(hdr, sizeof(hdr), "HTTP_CLIENT_CERT=%s", malformed[i]);
			ck_assert_int_eq(fcgi_req_init(&r, e6, &io), MDM_OK);
			ck_assert_msg(fcgi_client_cert_from_proxy(&r, &tp) == MDM_ERR_PARSE,
			        "\"%s\" accepted", malformed[i]);
			fcgi_req_clear(&r);
		}
	}
}
END_TEST

START_TEST(method_in)
{
	ck_assert(fcgi_method_in("GET", "GET, POST"));
	ck_assert(fcgi_method_in("POST", "GET, POST"));
	ck_assert(!fcgi_method_in("PUT", "GET, POST"));
	ck_assert(!fcgi_method_in("GE", "GET, POST"));
	ck_assert(!fcgi_method_in("", "GET"));
	ck_assert(!fcgi_method_in("get", "GET"));
}
END_TEST

void fcgi_tcases(Suite *s)
{
	TCase *tc = ts_tcase(s, "request", 0, quiet, NULL);

	ts_add_tests(tc, init_reads_parameters, init_refuses_malformed, init_refuses_long_query,
	        body_exact, body_short_is_refused, body_over_limit_refused_before_allocation,
	        body_limit_boundary, body_chunked, respond_format, respond_refuses_header_injection,
	        head_has_no_body, query_get, query_get_buf, method_in, proxies_parse_and_match,
	        client_cert_from_proxy);
}
