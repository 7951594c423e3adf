/*
 * Private keys and identities: keys from files, file: URIs and PKCS#11
 * tokens (the pkcs11 engine, never prompting for a PIN), RSA generation,
 * PKCS#8 files written 0600 without replacing one, proof that a key
 * belongs to a certificate, a key and certificate as a TLS client
 * identity, and PKCS#12 files (Keychain exports, through OpenSSL's legacy
 * provider).  Key and password buffers are wiped when freed.
 */
#include "x509.h"
#include "x509_int.h"
#include "log.h"
#include "mdm_limits.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>
#include <openssl/ui.h>
#include <openssl/x509.h>
#if !defined(OPENSSL_NO_ENGINE) && !defined(OPENSSL_NO_DEPRECATED_3_0)
#include <openssl/engine.h>
#define X509_HAVE_ENGINE 1
#else
#define X509_HAVE_ENGINE 0
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- keys ---- */

struct pass_state {
	int asked;
};

/*
 * The PEM passphrase callback: never prompts (a FastCGI process has no
 * terminal and would hang), only notes that a passphrase was wanted.
 */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	((struct pass_state *)u)->asked = 1;
	return -1;
}

static MDM_WUR mdm_err key_load_file(const char *path, EVP_PKEY **out)
{
	struct pass_state ps = {0};
	char *buf = NULL;
	size_t len = 0;
	mode_t mode = 0;
	BIO *bio = NULL;
	EVP_PKEY *k = NULL;
	mdm_err rc;

	*out = NULL;
	if ((rc = x509_file_read(path, X509_MAX_FILE, &buf, &len, &mode)) != MDM_OK)
		return rc;
	/* Warn, not refuse: a 0640 key readable by a service group is a common setup. */
	if ((mode & 077) != 0)
		log_warn("x509: key file %s is accessible by group or others (mode %03o)", path,
		        (unsigned)(mode & 0777));
	rc = MDM_ERR_PARSE;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_new_mem_buf");
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	/* PKCS#8 ("PRIVATE KEY") and the traditional PKCS#1/SEC1 forms alike. */
	if ((k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &ps)) == NULL) {
		if (ps.asked) {
			ERR_clear_error();
			log_error("x509: key file %s is encrypted: keep it unencrypted, mode 0600, "
			          "or in an HSM (pkcs11: URI)",
			        path);
			rc = MDM_ERR_UNSUPPORTED;
		} else {
			x509_ossl_fail(MDM_LOG_ERROR, "PEM_read_bio_PrivateKey");
			log_error("x509: %s: no PEM private key", path);
		}
		goto out;
	}
	*out = k;
	rc = MDM_OK;
out:
	BIO_free(bio);
	x509_file_free(buf, len);
	return rc;
}

#if X509_HAVE_ENGINE
/*
 * The pkcs11 engine, initialised once and kept for the process's life:
 * initialising it loads the PKCS#11 module and opens the token, which is
 * too slow per request, and libp11 unloads the module when the last
 * functional reference goes, which would strand the keys it handed out.
 * The module is the engine's default (p11-kit-proxy) or the one in
 * PKCS11_MODULE_PATH.  Not locked: the programs are single-threaded.
 * ENGINE is deprecated in OpenSSL 3, but Debian 12 ships no pkcs11
 * provider; the deprecation warnings are silenced for this function only.
 */
static ENGINE *pkcs11_engine;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static MDM_WUR mdm_err key_load_pkcs11(const char *uri, EVP_PKEY **out)
{
	EVP_PKEY *k;

	*out = NULL;
	if (pkcs11_engine == NULL) {
		ENGINE *e;

		if ((e = ENGINE_by_id("pkcs11")) == NULL) {
			x509_ossl_fail(MDM_LOG_ERROR, "ENGINE_by_id(pkcs11)");
			log_error("x509: no pkcs11 engine (Debian: libengine-pkcs11-openssl)");
			return MDM_ERR_UNSUPPORTED;
		}
		/*
		 * Unless quiet, libp11 prints failures to stderr itself, the
		 * URI with its pin-value included.  Optional: older engines lack it.
		 */
		if (ENGINE_ctrl_cmd_string(e, "QUIET", NULL, 1) != 1)
			ERR_clear_error();
		if (ENGINE_init(e) != 1) {
			x509_ossl_fail(MDM_LOG_ERROR, "ENGINE_init(pkcs11)");
			ENGINE_free(e);
			return MDM_ERR_CRYPTO;
		}
		/* The functional reference from ENGINE_init keeps it; drop the structural one. */
		ENGINE_free(e);
		pkcs11_engine = e;
	}
	/*
	 * UI_null: a missing PIN fails instead of prompting.  The URI is not
	 * logged: it may carry pin-value.  UI_null's method is read-only in
	 * practice; the cast only fits the engine API's older signature.
	 */
	if ((k = ENGINE_load_private_key(pkcs11_engine, uri, (UI_METHOD *)UI_null(), NULL)) ==
	        NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "ENGINE_load_private_key");
		log_error("x509: the pkcs11: key could not be loaded (token, object, PIN?)");
		return MDM_ERR_CRYPTO;
	}
	*out = k;
	return MDM_OK;
}
#pragma GCC diagnostic pop
#else
static MDM_WUR mdm_err key_load_pkcs11(const char *uri, EVP_PKEY **out)
{
	(void)uri;
	*out = NULL;
	log_error("x509: this OpenSSL has no engine support: pkcs11: keys unavailable");
	return MDM_ERR_UNSUPPORTED;
}
#endif

/*
 * A file: URI (RFC 8089) as a local path: file:/p, file:///p or
 * file://localhost/p, percent-escapes decoded.  No query or fragment.
 */
static MDM_WUR mdm_err file_uri_path(const char *uri, char **out)
{
	const char *p = uri + 5; /* after "file:" */
	char *path = NULL;
	size_t n = 0;

	*out = NULL;
	if (strncmp(p, "//", 2) == 0) {
		p += 2;
		if (strncmp(p, "localhost/", 10) == 0)
			p += 9;
		else if (*p != '/') {
			log_error("x509: file: URI with a remote host");
			return MDM_ERR_CONFIG;
		}
	}
	if (*p != '/' || strpbrk(p, "?#") != NULL) {
		log_error("x509: file: URI must name an absolute path, without ? or #");
		return MDM_ERR_CONFIG;
	}
	if ((path = malloc(strlen(p) + 1)) == NULL)
		return MDM_ERR_NOMEM;
	for (; *p != '\0'; p++) {
		if (*p == '%') {
			int hi = x509_hexval((unsigned char)p[1]),
			    lo = hi < 0 ? -1 : x509_hexval((unsigned char)p[2]);

			if (lo < 0 || (hi == 0 && lo == 0)) {
				log_error("x509: file: URI with a bad percent-escape");
				free(path);
				return MDM_ERR_CONFIG;
			}
			path[n++] = (char)(hi << 4 | lo);
			p += 2;
		} else
			path[n++] = *p;
	}
	path[n] = '\0';
	*out = path;
	return MDM_OK;
}

mdm_err x509_key_load(const char *uri, EVP_PKEY **out)
{
	char *path = NULL;
	mdm_err rc;

	*out = NULL;
	if (uri == NULL || uri[0] == '\0' || strnlen(uri, X509_MAX_URI + 1) > X509_MAX_URI) {
		log_error("x509: key URI empty or over %d bytes", X509_MAX_URI);
		return MDM_ERR_INVAL;
	}
	if (strncmp(uri, "pkcs11:", 7) == 0)
		return key_load_pkcs11(uri, out);
	if (strncmp(uri, "file:", 5) == 0) {
		if ((rc = file_uri_path(uri, &path)) != MDM_OK)
			return rc;
		rc = key_load_file(path, out);
		free(path);
		return rc;
	}
	return key_load_file(uri, out);
}

mdm_err x509_key_generate_rsa(int bits, EVP_PKEY **out)
{
	EVP_PKEY *k;

	*out = NULL;
	if (bits < X509_MIN_RSA_BITS || bits > X509_MAX_RSA_BITS) {
		log_error("x509: RSA key of %d bits outside %d..%d", bits, X509_MIN_RSA_BITS,
		        X509_MAX_RSA_BITS);
		return MDM_ERR_INVAL;
	}
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_PKEY_Q_keygen");
		return MDM_ERR_CRYPTO;
	}
	*out = k;
	return MDM_OK;
}

mdm_err x509_key_write_pem(EVP_PKEY *key, const char *path)
{
	BIO *bio = NULL;
	int fd, err;
	mdm_err rc = MDM_ERR_IO;

	if (key == NULL || path == NULL)
		return MDM_ERR_INVAL;
	/* O_EXCL: never replace a key (it may be the only copy of the CA's). */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
	             0600)) < 0) {
		err = errno;
		log_error("x509: create %s: %s", path, strerror(err));
		return err == EEXIST ? MDM_ERR_CONFLICT : MDM_ERR_IO;
	}
	/* Straight to the descriptor: no copy of the key in a memory buffer. */
	if ((bio = BIO_new_fd(fd, BIO_NOCLOSE)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_new_fd");
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if (PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "PEM_write_bio_PKCS8PrivateKey");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	if (BIO_flush(bio) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_flush");
		goto out;
	}
	if (fsync(fd) != 0) {
		log_error("x509: fsync %s: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		log_error("x509: close %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	rc = MDM_OK;
out:
	BIO_free(bio);
	if (fd >= 0)
		close(fd);
	/* A half-written key is worse than none; the file is ours (O_EXCL). */
	if (rc != MDM_OK)
		unlink(path);
	return rc;
}

/*
 * Proves possession: a signature by key over a fixed message must verify
 * with pub.  Comparing public halves alone would not catch an HSM object
 * whose private half belongs to another certificate.
 */
static int key_signs_for(EVP_PKEY *key, EVP_PKEY *pub)
{
	static const unsigned char msg[] = "mdm x509 key/certificate match";
	unsigned char *sig = NULL;
	size_t siglen;
	EVP_MD_CTX *md = NULL;
	const EVP_MD *dg = EVP_sha256();
	int type = EVP_PKEY_get_base_id(pub), ok = 0;

	/* EdDSA signs the message itself: no separate digest. */
	if (type == EVP_PKEY_ED25519 || type == EVP_PKEY_ED448)
		dg = NULL;
	if (EVP_PKEY_get_base_id(key) != type)
		goto out;
	/* Different public halves settle it; -1/-2 (cannot compare, an engine key): sign. */
	if (EVP_PKEY_eq(key, pub) == 0)
		goto out;
	if (EVP_PKEY_get_size(key) <= 0)
		goto out;
	siglen = (size_t)EVP_PKEY_get_size(key);
	if ((sig = malloc(siglen)) == NULL)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_MD_CTX_new");
		goto out;
	}
	if (EVP_DigestSignInit(md, NULL, dg, NULL, key) != 1 ||
	        EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_DigestSign");
		goto out;
	}
	EVP_MD_CTX_free(md);
	if ((md = EVP_MD_CTX_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_MD_CTX_new");
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, dg, NULL, pub) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_DigestVerifyInit");
		goto out;
	}
	ok = EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) == 1;
out:
	free(sig);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok;
}

int x509_key_matches_cert(EVP_PKEY *key, const X509 *cert)
{
	EVP_PKEY *pub;

	if (key == NULL || cert == NULL || (pub = X509_get0_pubkey(cert)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	return key_signs_for(key, pub);
}

mdm_err x509_ssl_ctx_use_identity(void *ssl_ctx, X509 *cert, EVP_PKEY *key)
{
	SSL_CTX *ctx = ssl_ctx;

	if (ctx == NULL || cert == NULL || key == NULL)
		return MDM_ERR_INVAL;
	if (SSL_CTX_use_certificate(ctx, cert) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "SSL_CTX_use_certificate");
		return MDM_ERR_CRYPTO;
	}
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "SSL_CTX_use_PrivateKey");
		return MDM_ERR_CRYPTO;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "SSL_CTX_check_private_key");
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

void x509_key_free(EVP_PKEY *key)
{
	EVP_PKEY_free(key);
}

/* ---- PKCS#12 ---- */

/* The first line of a password file (an empty file: ""), wiped by x509_file_free. */
static MDM_WUR mdm_err password_read(const char *path, char **out, size_t *outlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, line = 0;
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
		if ((*out = calloc(1, 1)) == NULL)
			return MDM_ERR_NOMEM;
		return MDM_OK;
	}
	if ((rc = x509_file_read(path, X509_MAX_PASSWORD, &buf, &len, NULL)) != MDM_OK)
		return rc;
	for (; line < len && buf[line] != '\n' && buf[line] != '\r'; line++) {
		if (buf[line] == '\0') {
			log_error("x509: %s: a NUL byte in the password", path);
			x509_file_free(buf, len);
			return MDM_ERR_PARSE;
		}
	}
	buf[line] = '\0';
	*out = buf;
	*outlen = len;
	return MDM_OK;
}

/*
 * OpenSSL 3's legacy provider (RC2 and 3DES in Keychain-exported PKCS#12,
 * single DES for micromdm's scepclient): loaded once per process, on first
 * need, with the default provider (loading one by hand stops the default
 * from loading by itself), and kept until exit.  Unloading them after use
 * would leave the process with no provider at all once the default one
 * had only been loaded through us.
 */
static pthread_once_t x509_legacy_once = PTHREAD_ONCE_INIT;
static int x509_legacy_ok;
static OSSL_PROVIDER *x509_prov_default, *x509_prov_legacy;

/* At exit, before OpenSSL's own clean-up: the providers are ours to unload. */
static void x509_legacy_unload(void)
{
	if (x509_prov_legacy != NULL)
		OSSL_PROVIDER_unload(x509_prov_legacy);
	if (x509_prov_default != NULL)
		OSSL_PROVIDER_unload(x509_prov_default);
	x509_prov_legacy = x509_prov_default = NULL;
}

static void x509_legacy_load(void)
{
	x509_prov_default = OSSL_PROVIDER_load(NULL, "default");
	x509_prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
	x509_legacy_ok = x509_prov_default != NULL && x509_prov_legacy != NULL;
	if (atexit(x509_legacy_unload) != 0)
		log_warn("x509: atexit failed: the providers stay loaded until exit");
	if (!x509_legacy_ok)
		x509_ossl_fail(MDM_LOG_ERROR, "OSSL_PROVIDER_load(legacy)");
}

int x509_legacy_provider(void)
{
	pthread_once(&x509_legacy_once, x509_legacy_load);
	return x509_legacy_ok;
}

mdm_err x509_pkcs12_load(const char *path, const char *password_file, X509 **cert, EVP_PKEY **key)
{
	char *buf = NULL, *pass = NULL;
	size_t len = 0, passlen = 0;
	BIO *bio = NULL;
	PKCS12 *p12 = NULL;
	STACK_OF(X509) *extra = NULL;
	int legacy;
	X509 *c = NULL;
	EVP_PKEY *k = NULL;
	mdm_err rc;

	*cert = NULL;
	*key = NULL;
	if (path == NULL || password_file == NULL)
		return MDM_ERR_INVAL;
	if ((rc = password_read(password_file, &pass, &passlen)) != MDM_OK)
		return rc;
	if ((rc = x509_file_read(path, X509_MAX_FILE, &buf, &len, NULL)) != MDM_OK)
		goto out;
	rc = MDM_ERR_PARSE;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_new_mem_buf");
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((p12 = d2i_PKCS12_bio(bio, NULL)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "d2i_PKCS12_bio");
		log_error("x509: %s is not a PKCS#12 file (DER)", path);
		goto out;
	}
	if (PKCS12_verify_mac(p12, pass, -1) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "PKCS12_verify_mac");
		log_error(
		        "x509: %s: RFC 7292 5.1: the MAC does not verify (wrong password?)", path);
		rc = MDM_ERR_AUTH;
		goto out;
	}
	/*
	 * Keychain Access encrypts the certificate bag with RC2-40 and the
	 * key bag with 3DES: the legacy provider is loaded for this parse
	 * only (the default provider with it, since loading one explicitly
	 * stops the default from being loaded implicitly).
	 */
	legacy = x509_legacy_provider();
	if (PKCS12_parse(p12, pass, &k, &c, &extra) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "PKCS12_parse");
		log_error("x509: %s: could not decrypt the PKCS#12 bags%s", path,
		        !legacy ? " (no legacy provider for RC2)" : "");
		goto out;
	}
	if (k == NULL || c == NULL) {
		log_error("x509: %s: RFC 7292: no private key with its certificate", path);
		goto out;
	}
	if (!x509_key_matches_cert(k, c)) {
		log_error("x509: %s: the key does not belong to the certificate", path);
		goto out;
	}
	*cert = c;
	*key = k;
	c = NULL;
	k = NULL;
	rc = MDM_OK;
out:
	sk_X509_pop_free(extra, X509_free);
	X509_free(c);
	EVP_PKEY_free(k);
	PKCS12_free(p12);
	BIO_free(bio);
	x509_file_free(buf, len);
	x509_file_free(pass, passlen);
	return rc;
}
