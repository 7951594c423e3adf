/*
 * x509 keys: the forms x509_key_load reads (PEM files, file: URIs), never
 * prompting for a passphrase, RSA generation and PKCS#8 files, keys
 * matched to certificates, a key and certificate as TLS client identity
 * (x509_tls, against openssl s_server), and a key in SoftHSM through the
 * pkcs11 engine, also as TLS client identity (skipped where SoftHSM is
 * absent).
 */
#include "ts_sys.h"
#include "x509_testutil.h"

#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- keys ---- */

START_TEST(key_load_forms)
{
	EVP_PKEY *k = NULL, *k2 = NULL;
	char dir[64], path[160], uri[256], buf[4096];
	size_t n;

	log_set_level(MDM_LOG__MAX);
	/* PKCS#8, PKCS#1 (traditional), SEC1 (EC). */
	k = xt_load_key("ca.key");
	ck_assert_int_eq(EVP_PKEY_get_bits(k), 2048);
	x509_key_free(k);
	k = xt_load_key("device.key");
	ck_assert_int_eq(EVP_PKEY_get_base_id(k), EVP_PKEY_RSA);
	x509_key_free(k);
	k = xt_load_key("ec256.key");
	ck_assert_int_eq(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
	x509_key_free(k);
	/* file: URIs, with a percent-escape in the name. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	n = ts_file_into(DATA "ca.key", buf, sizeof(buf));
	snprintf(path, sizeof(path), "%s/a key.pem", dir);
	ts_file_write(path, buf, n);
	k = xt_load_key("ca.key");
	snprintf(uri, sizeof(uri), "file://%s/a%%20key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_OK);
	ck_assert_int_eq(EVP_PKEY_eq(k, k2), 1);
	x509_key_free(k2);
	snprintf(uri, sizeof(uri), "file:%s/a%%20key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_OK);
	x509_key_free(k2);
	snprintf(uri, sizeof(uri), "file://localhost%s/a%%20key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_OK);
	x509_key_free(k2);
	x509_key_free(k);
	/* Refusals; out stays NULL. */
	k2 = (EVP_PKEY *)1;
	snprintf(uri, sizeof(uri), "file://elsewhere%s/a%%20key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_ERR_CONFIG);
	ck_assert_ptr_null(k2);
	snprintf(uri, sizeof(uri), "file://%s/a%%2key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_ERR_CONFIG);
	snprintf(uri, sizeof(uri), "file://%s/a%%00key.pem", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_ERR_CONFIG);
	snprintf(uri, sizeof(uri), "file://%s/a%%20key.pem?x=1", dir);
	ck_assert_int_eq(x509_key_load(uri, &k2), MDM_ERR_CONFIG);
	ck_assert_int_eq(x509_key_load("file:relative.pem", &k2), MDM_ERR_CONFIG);
	ck_assert_int_eq(x509_key_load("", &k2), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_key_load(NULL, &k2), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_key_load(DATA "absent.key", &k2), MDM_ERR_IO);
	ck_assert_int_eq(x509_key_load(dir, &k2), MDM_ERR_IO);
	ck_assert_int_eq(x509_key_load(DATA "notakey.pem", &k2), MDM_ERR_PARSE);
	ck_assert_int_eq(x509_key_load(DATA "client.pem", &k2), MDM_ERR_PARSE);
	ck_assert_ptr_null(k2);
	ts_tmpdir_done(dir);
}
END_TEST

START_TEST(key_load_never_prompts)
{
	EVP_PKEY *k = (EVP_PKEY *)1;

	/* An encrypted key is refused at once (no terminal prompt), and says why. */
	xt_logcap_start();
	ck_assert_int_eq(x509_key_load(DATA "encrypted.key", &k), MDM_ERR_UNSUPPORTED);
	ck_assert_ptr_null(k);
	ck_assert(xt_logcap_take("is encrypted"));
	xt_logcap_stop();
}
END_TEST

START_TEST(key_generate_write_and_match)
{
	EVP_PKEY *k = NULL, *back = NULL, *other = xt_load_key("ca2.key");
	char dir[64], path[128], before[4096], after[4096], out[512];
	struct stat st;
	X509 *ca;

	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_key_generate_rsa(1024, &k), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_key_generate_rsa(16384, &k), MDM_ERR_INVAL);
	ck_assert_ptr_null(k);
	ck_assert_int_eq(x509_key_generate_rsa(2048, &k), MDM_OK);
	ck_assert_int_eq(EVP_PKEY_get_bits(k), 2048);
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	ck_assert_int_eq(x509_key_write_pem(k, path), MDM_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ts_file_into(path, before, sizeof(before));
	ck_assert(strncmp(before, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
	ck_assert_int_eq(ts_run(out, sizeof(out), "openssl pkey -in '%s' -noout", path), 0);
	/* Never overwritten, by the same key or another. */
	ck_assert_int_eq(x509_key_write_pem(other, path), MDM_ERR_CONFLICT);
	ck_assert_int_eq(x509_key_write_pem(k, path), MDM_ERR_CONFLICT);
	ts_file_into(path, after, sizeof(after));
	ck_assert_str_eq(before, after);
	/* Nor through a symbolic link. */
	snprintf(out, sizeof(out), "%s/link.key", dir);
	ck_assert_int_eq(symlink("/nonexistent-target", out), 0);
	ck_assert_int_eq(x509_key_write_pem(k, out), MDM_ERR_CONFLICT);
	snprintf(out, sizeof(out), "%s/nodir/k.key", dir);
	ck_assert_int_eq(x509_key_write_pem(k, out), MDM_ERR_IO);
	ck_assert_int_eq(x509_key_write_pem(NULL, out), MDM_ERR_INVAL);
	/* What was written is the key. */
	ck_assert_int_eq(x509_key_load(path, &back), MDM_OK);
	ca = xt_ca_new(k, NOW, 30);
	ck_assert_int_eq(x509_key_matches_cert(back, ca), 1);
	ck_assert_int_eq(x509_key_matches_cert(k, ca), 1);
	ck_assert_int_eq(x509_key_matches_cert(other, ca), 0);
	ck_assert_int_eq(x509_key_matches_cert(NULL, ca), 0);
	ck_assert_int_eq(x509_key_matches_cert(k, NULL), 0);
	/* Any key type: EC and Ed25519 too. */
	{
		EVP_PKEY *ec = xt_load_key("ec256.key"), *ed = xt_load_key("ed25519.key");
		unsigned char one = 1;
		X509 *xe = xt_raw_cert(ec, &one, 1, 0, 0), *xd = NULL;

		/* xt_raw_cert signs with SHA-256, which Ed25519 refuses: build that one apart. */
		ck_assert_int_eq(x509_key_matches_cert(ec, xe), 1);
		ck_assert_int_eq(x509_key_matches_cert(ed, xe), 0);
		ck_assert_ptr_nonnull(xd = X509_new());
		ck_assert_int_eq(X509_set_pubkey(xd, ed), 1);
		ck_assert_int_eq(x509_key_matches_cert(ed, xd), 1);
		ck_assert_int_eq(x509_key_matches_cert(ec, xd), 0);
		x509_cert_free(xd);
		x509_cert_free(xe);
		x509_key_free(ed);
		x509_key_free(ec);
	}
	ts_tmpdir_done(dir);
	x509_cert_free(ca);
	x509_key_free(back);
	x509_key_free(other);
	x509_key_free(k);
	x509_key_free(NULL);
}
END_TEST

/* ---- TLS client identity (x509_tls) ---- */

/*
 * One TLS connection from x509_tls to `openssl s_server` on 127.0.0.1,
 * which offers ALPN alpn (NULL: no ALPN) and requires a client certificate: cert itself
 * (self-signed, the server's only trust anchor), whose key is key.  The
 * server's certificate names IP 127.0.0.1 only; the client connects to
 * host.  Returns what x509_tls_connect returned.
 */
static mdm_err tls_handshake(X509 *cert, EVP_PKEY *key, const char *alpn, const char *host)
{
	char dir[64], path[128], out[4096], port[8];
	x509_tls_client *c = NULL;
	x509_tls *t = NULL;
	mdm_err rc;

	ts_tmpdir_new(dir, sizeof(dir), "tls");
	snprintf(path, sizeof(path), "%s/client.pem", dir);
	xt_write_pem(path, cert);
	snprintf(port, sizeof(port), "%d", ts_free_port());
	ck_assert_int_eq(
	        ts_run(out, sizeof(out),
	                "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout srv.key "
	                "-out srv.pem -subj /CN=127.0.0.1 -addext "
	                "subjectAltName=IP:127.0.0.1 -days 2 >/dev/null 2>&1 && "
	                "{ openssl s_server -naccept 1 -accept 127.0.0.1:%s -cert srv.pem "
	                "-key srv.key -Verify 1 -verify_return_error -CAfile client.pem "
	                "%s %s -www >s_server.log 2>&1 & echo $! >s_server.pid; }",
	                dir, port, alpn ? "-alpn" : "", alpn ? alpn : ""),
	        0);
	/* s_server says ACCEPT when it listens. */
	for (int i = 0; i < 100 && ts_sh("grep -q ACCEPT %s/s_server.log", dir) != 0; i++)
		usleep(50000);
	snprintf(path, sizeof(path), "%s/srv.pem", dir);
	ck_assert_int_eq(x509_tls_client_new(path, "h2", cert, key, &c), MDM_OK);
	rc = x509_tls_connect(c, host, port, 5000, &t);
	if (rc == MDM_OK) {
		size_t n = 0;
		ck_assert_int_ge(x509_tls_fd(t), 0);
		ck_assert_int_eq(x509_tls_write(t, "GET / HTTP/1.0\r\n\r\n", 18, &n), MDM_OK);
		ck_assert_uint_eq(n, 18);
	}
	x509_tls_free(t);
	x509_tls_client_free(c);
	ck_assert_int_eq(ts_sh("kill $(cat %s/s_server.pid) 2>/dev/null; true", dir), 0);
	ts_tmpdir_done(dir);
	return rc;
}

START_TEST(tls_client_identity)
{
	EVP_PKEY *k = xt_load_key("device.key");
	X509 *c = xt_ca_new(k, time(NULL), 30);
	x509_tls_client *tc = NULL;

	log_set_level(MDM_LOG__MAX);
	/* Verified to the address, the identity accepted, h2 chosen. */
	ck_assert_int_eq(tls_handshake(c, k, "h2", "127.0.0.1"), MDM_OK);
	/* The certificate names 127.0.0.1, not localhost: refused. */
	ck_assert_int_eq(tls_handshake(c, k, "h2", "localhost"), MDM_ERR_IO);
	/* A server without ALPN (HTTP/1.1 only), and one offering only http/1.1. */
	ck_assert_int_eq(tls_handshake(c, k, NULL, "127.0.0.1"), MDM_ERR_UNSUPPORTED);
	ck_assert_int_eq(tls_handshake(c, k, "http/1.1", "127.0.0.1"), MDM_ERR_IO);
	/* No ALPN, no identity, an unreadable CA file: no client. */
	ck_assert_int_eq(x509_tls_client_new(NULL, "", c, k, &tc), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_tls_client_new(NULL, "h2", NULL, k, &tc), MDM_ERR_INVAL);
	ck_assert_int_eq(
	        x509_tls_client_new("/nonexistent/ca.pem", "h2", c, k, &tc), MDM_ERR_CONFIG);
	ck_assert_ptr_null(tc);
	log_set_level(MDM_LOG_INFO);
	x509_cert_free(c);
	x509_key_free(k);
}
END_TEST

/* ---- PKCS#11 (SoftHSM through the pkcs11 engine) ---- */

static const char *softhsm_module(void)
{
	static const char *const paths[] = {
	        "/usr/lib/softhsm/libsofthsm2.so",
	        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	        "/usr/local/lib/softhsm/libsofthsm2.so",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], R_OK) == 0)
			return paths[i];
	return NULL;
}

START_TEST(pkcs11_softhsm_key)
{
	const char *module = softhsm_module();
	char dir[64], conf[128], out[4096], capath[128], path[128];
	EVP_PKEY *hk = NULL, *dk = xt_load_key("device.key"), *fk = xt_load_key("ca.key");
	X509 *ca = NULL, *c = NULL;
	uint8_t *crl = NULL;
	size_t crllen = 0;
	struct x509_revoked r = {"0A", NOW, 1};

	if (module == NULL ||
	        ts_run(NULL, 0, "command -v softhsm2-util && command -v pkcs11-tool") != 0 ||
	        ts_run(NULL, 0, "openssl engine pkcs11 -t") != 0) {
		fprintf(stderr,
		        "x509: pkcs11 test skipped: needs softhsm2, opensc (pkcs11-tool) and "
		        "libengine-pkcs11-openssl\n");
		x509_key_free(fk);
		x509_key_free(dk);
		return;
	}
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	snprintf(out, sizeof(out),
	        "directories.tokendir = %s\nobjectstore.backend = file\n"
	        "log.level = ERROR\n",
	        dir);
	ts_file_write(conf, out, strlen(out));
	ck_assert_int_eq(setenv("SOFTHSM2_CONF", conf, 1), 0);
	ck_assert_int_eq(setenv("PKCS11_MODULE_PATH", module, 1), 0);
	ck_assert_int_eq(ts_run(out, sizeof(out),
	                         "softhsm2-util --init-token --free --label mdmtest --pin 1234 "
	                         "--so-pin 5678"),
	        0);
	ck_assert_int_eq(
	        ts_run(out, sizeof(out),
	                "pkcs11-tool --module '%s' --token-label mdmtest --login --pin 1234 "
	                "--keypairgen --key-type rsa:2048 --id 01 --label ca",
	                module),
	        0);
	/* Without a PIN, with a wrong one, or a missing object: refused, never a prompt. */
	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(
	        x509_key_load("pkcs11:token=mdmtest;object=ca;type=private", &hk), MDM_ERR_CRYPTO);
	ck_assert_int_eq(
	        x509_key_load("pkcs11:token=mdmtest;object=ca;type=private?pin-value=0000", &hk),
	        MDM_ERR_CRYPTO);
	/* The PIN from a file (keeps it out of the URI), then logged in for the process. */
	snprintf(path, sizeof(path), "%s/pin", dir);
	ts_file_write(path, "1234", 4);
	snprintf(out, sizeof(out), "pkcs11:token=mdmtest;object=ca;type=private?pin-source=file:%s",
	        path);
	ck_assert_int_eq(x509_key_load(out, &hk), MDM_OK);
	x509_key_free(hk);
	hk = NULL;
	ck_assert_int_eq(
	        x509_key_load("pkcs11:token=mdmtest;object=none;type=private?pin-value=1234", &hk),
	        MDM_ERR_CRYPTO);
	ck_assert_ptr_null(hk);
	log_set_level(MDM_LOG_INFO);
	ck_assert_int_eq(
	        x509_key_load("pkcs11:token=mdmtest;object=ca;type=private?pin-value=1234", &hk),
	        MDM_OK);
	/* The HSM key as CA key: create, issue, verify, CRL. */
	ca = xt_ca_new(hk, NOW, 3650);
	ck_assert_int_eq(x509_key_matches_cert(hk, ca), 1);
	ck_assert_int_eq(x509_key_matches_cert(fk, ca), 0);
	c = xt_issue(ca, hk, dk, NOW);
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, NULL), MDM_OK);
	ck_assert_int_eq(x509_crl_build(ca, hk, &r, 1, NOW, 7, &crl, &crllen), MDM_OK);
	snprintf(capath, sizeof(capath), "%s/ca.pem", dir);
	snprintf(path, sizeof(path), "%s/dev.pem", dir);
	xt_write_pem(capath, ca);
	xt_write_pem(path, c);
	ck_assert_int_eq(ts_run(out, sizeof(out),
	                         "openssl verify -purpose sslclient -attime %lld -CAfile '%s' '%s'",
	                         (long long)NOW, capath, path),
	        0);
	/* The token's key as TLS client identity (a push certificate's key, say). */
	ck_assert_int_eq(tls_handshake(ca, hk, "h2", "127.0.0.1"), MDM_OK);
	/* A key that lives in the token cannot be written out. */
	log_set_level(MDM_LOG__MAX);
	snprintf(path, sizeof(path), "%s/exported.key", dir);
	ck_assert_int_ne(x509_key_write_pem(hk, path), MDM_OK);
	ck_assert_int_ne(access(path, F_OK), 0);
	ts_tmpdir_done(dir);
	free(crl);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(hk);
	x509_key_free(fk);
	x509_key_free(dk);
}
END_TEST

void x509_key_tests(TCase *tc)
{
	ts_add_tests(tc, key_load_forms, key_load_never_prompts, key_generate_write_and_match,
	        tls_client_identity, pkcs11_softhsm_key);
}
