/*
 * X.509 on OpenSSL, the certificates themselves: decoding (strict DER, one
 * PEM block, files), encoding, fingerprints, the fields we read (serial,
 * names, dates, cA, subject attributes) and comparisons of keys and
 * signatures; and the helpers the other x509*.c files share through
 * x509_int.h (OpenSSL failure logging, time, names and serials as text,
 * file reading, DER decoding).  Keys are in x509_key.c, CSRs in
 * x509_csr.c, issuing in x509_issue.c, certificate paths in x509_chain.c.
 *
 * Certificates and CSRs from the network are size-capped before OpenSSL
 * sees them and must be exactly one DER object (no trailing bytes).
 * Every OpenSSL failure is logged with the call's name.  The clock is a
 * parameter: nothing here reads the time.
 */
#include "x509.h"
#include "x509_int.h"
#include "log.h"
#include "mdm_limits.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Logs an OpenSSL failure with the call's name and the library's reason. */
void x509_ossl_fail(enum log_level level, const char *call)
{
	unsigned long e = ERR_peek_last_error();
	char why[256] = "no reason given";

	if (e != 0)
		ERR_error_string_n(e, why, sizeof(why));
	log_msg(level, "x509: %s failed: %s", call, why);
	ERR_clear_error();
}

int x509_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian); no timegm needed. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int x509_asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;
	int64_t days;

	*out = 0;
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		x509_ossl_fail(MDM_LOG_WARN, "ASN1_TIME_to_tm");
		return 0;
	}
	days = days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	*out = (time_t)(days * SECS_PER_DAY + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
	return 1;
}

/* Validity of c at now: 0 valid, -1 not yet valid, 1 expired, 2 unreadable. */
int x509_validity_at(const X509 *c, time_t now)
{
	int nb = ASN1_TIME_cmp_time_t(X509_get0_notBefore(c), now);
	int na = ASN1_TIME_cmp_time_t(X509_get0_notAfter(c), now);

	if (nb == -2 || na == -2) {
		ERR_clear_error();
		return 2;
	}
	if (nb > 0)
		return -1;
	if (na < 0)
		return 1;
	return 0;
}

/* ---- strings ---- */

/* n bytes as lower-case hex into out[2 * n + 1]. */
static void hex_lower(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/* Serial as upper-case hex without leading zeros; 0 for a negative or over-long one. */
int x509_serial_to_hex(const ASN1_INTEGER *ai, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *d;
	int len, i = 0;
	size_t n = 0;

	out[0] = '\0';
	if (ai == NULL || ASN1_STRING_type(ai) != V_ASN1_INTEGER)
		return 0; /* RFC 5280 4.1.2.2: a serial is positive */
	d = ASN1_STRING_get0_data(ai);
	len = ASN1_STRING_length(ai);
	while (i < len && d[i] == 0)
		i++;
	if (len - i > 20 || cap < 2 * 20 + 1)
		return 0; /* RFC 5280 4.1.2.2: at most 20 octets */
	for (; i < len; i++) {
		if (n > 0 || (d[i] >> 4) != 0)
			out[n++] = hex[d[i] >> 4];
		out[n++] = hex[d[i] & 0xf];
	}
	if (n == 0)
		out[n++] = '0';
	out[n] = '\0';
	return 1;
}

/*
 * A name as RFC 2253 text.  XN_FLAG_RFC2253 escapes control and non-ASCII
 * bytes, so the result is printable ASCII and safe to log.  Longer than
 * cap - 1: truncated when truncate, else MDM_ERR_LIMIT.
 */
mdm_err x509_name_to_str(const X509_NAME *name, char *out, size_t cap, int truncate)
{
	BIO *bio = NULL;
	char *p = NULL;
	long len;
	mdm_err rc = MDM_ERR_CRYPTO;

	out[0] = '\0';
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_new");
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
		x509_ossl_fail(MDM_LOG_WARN, "X509_NAME_print_ex");
		goto out;
	}
	if ((len = BIO_get_mem_data(bio, &p)) < 0 || (len > 0 && p == NULL)) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_get_mem_data");
		goto out;
	}
	if ((size_t)len >= cap) {
		if (!truncate) {
			log_warn("x509: name of %ld bytes longer than %zu", len, cap - 1);
			rc = MDM_ERR_LIMIT;
			goto out;
		}
		len = (long)cap - 1;
	}
	if (len > 0)
		memcpy(out, p, (size_t)len);
	out[len] = '\0';
	rc = MDM_OK;
out:
	BIO_free(bio);
	return rc;
}

/* The attribute types a CA subject may use, by their OpenSSL short names. */
static const struct {
	const char *name;
	int nid;
} name_types[] = {
        {"C", NID_countryName},
        {"ST", NID_stateOrProvinceName},
        {"L", NID_localityName},
        {"O", NID_organizationName},
        {"OU", NID_organizationalUnitName},
        {"CN", NID_commonName},
        {"DC", NID_domainComponent},
        {"UID", NID_userId},
        {"serialNumber", NID_serialNumber},
        {"emailAddress", NID_pkcs9_emailAddress},
};

int x509_name_type_nid(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(name_types) / sizeof(name_types[0]); i++)
		if (strlen(name_types[i].name) == len && memcmp(name_types[i].name, s, len) == 0)
			return name_types[i].nid;
	return NID_undef;
}

/* ---- files ---- */

/*
 * Reads a whole regular file of 1..max bytes, the size checked before the
 * buffer is allocated.  The buffer is NUL-terminated for the PEM readers
 * and wiped when freed by x509_file_free (key files pass through here).
 */
mdm_err x509_file_read(const char *path, size_t max, char **out, size_t *outlen, mode_t *mode)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0, size;
	int fd = -1;
	mdm_err rc = MDM_ERR_IO;

	*out = NULL;
	*outlen = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		log_error("x509: open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_error("x509: %s: not a regular file", path);
		goto out;
	}
	if (st.st_size <= 0 || (uintmax_t)st.st_size > max) {
		log_error("x509: %s: %jd bytes, not 1..%zu", path, (intmax_t)st.st_size, max);
		rc = MDM_ERR_LIMIT;
		goto out;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size + 1)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error(
			        "x509: read %s: %s", path, n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (mode != NULL)
		*mode = st.st_mode;
	*out = buf;
	*outlen = got;
	buf = NULL;
	rc = MDM_OK;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, got);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

void x509_file_free(char *buf, size_t len)
{
	if (buf == NULL)
		return;
	OPENSSL_cleanse(buf, len);
	free(buf);
}

/* ---- certificates ---- */

mdm_err x509_pem_fingerprint(const char *pem, size_t len, char out[X509_FP_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	BIO *bio = NULL;
	X509 *cert = NULL, *extra = NULL;
	mdm_err rc = MDM_ERR_PARSE;

	out[0] = '\0';
	if (pem == NULL || len == 0 || len > MDM_MAX_HEADER_VALUE)
		return MDM_ERR_PARSE;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		log_warn("x509: PEM_read_bio_X509: not a PEM certificate");
		goto out;
	}
	/* Exactly one certificate: a second one would be ignored silently. */
	if ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		log_warn("x509: more than one certificate where one is expected");
		goto out;
	}
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32) {
		log_error("x509: X509_digest failed");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	hex_lower(md, mdlen, out);
	rc = MDM_OK;
out:
	ERR_clear_error();
	X509_free(extra);
	X509_free(cert);
	BIO_free(bio);
	return rc;
}

mdm_err x509_der_decode(const uint8_t *der, size_t len, const ASN1_ITEM *it, const char *what,
        const char *call, ASN1_VALUE **out)
{
	const unsigned char *p = der;
	ASN1_VALUE *v = NULL;

	*out = NULL;
	if (der == NULL || len == 0)
		return MDM_ERR_PARSE;
	if (len > X509_MAX_DER) {
		log_warn("x509: %s of %zu bytes over %d", what, len, X509_MAX_DER);
		return MDM_ERR_LIMIT;
	}
	if ((v = ASN1_item_d2i(NULL, &p, (long)len, it)) == NULL) {
		x509_ossl_fail(MDM_LOG_WARN, call);
		return MDM_ERR_PARSE;
	}
	if (p != der + len) {
		log_warn("x509: %zu bytes after the %s's DER", (size_t)(der + len - p), what);
		ASN1_item_free(v, it);
		return MDM_ERR_PARSE;
	}
	*out = v;
	return MDM_OK;
}

mdm_err x509_cert_from_der(const uint8_t *der, size_t len, X509 **out)
{
	ASN1_VALUE *v = NULL;
	mdm_err rc;

	*out = NULL;
	if ((rc = x509_der_decode(der, len, ASN1_ITEM_rptr(X509), "certificate", "d2i_X509", &v)) ==
	        MDM_OK)
		*out = (X509 *)v;
	return rc;
}

int x509_pem_next(BIO *bio, int seen, enum log_level level, char **name, char **header,
        unsigned char **data, long *len)
{
	unsigned long e;

	if (PEM_read_bio(bio, name, header, data, len) == 1)
		return 1;
	e = ERR_peek_last_error();
	/* The normal end: no further BEGIN line. */
	if (seen && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
		return 0;
	}
	x509_ossl_fail(level, "PEM_read_bio");
	return -1;
}

/*
 * PEM: exactly one CERTIFICATE block, without encryption headers, whose
 * content is strict DER.  Other block types (a key beside the
 * certificate in one file) are skipped.
 */
mdm_err x509_cert_from_pem(const char *pem, size_t len, X509 **out)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen = 0;
	X509 *c = NULL;
	int blocks = 0, certs = 0;
	mdm_err rc = MDM_ERR_PARSE;

	*out = NULL;
	if (pem == NULL || len == 0)
		return MDM_ERR_PARSE;
	if (len > X509_MAX_FILE) {
		log_warn("x509: PEM of %zu bytes over %d", len, X509_MAX_FILE);
		return MDM_ERR_LIMIT;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_new_mem_buf");
		return MDM_ERR_NOMEM;
	}
	for (;;) {
		int got =
		        x509_pem_next(bio, blocks > 0, MDM_LOG_WARN, &name, &header, &data, &dlen);

		if (got < 0)
			goto out;
		if (got == 0)
			break;
		blocks++;
		if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0) {
			if (++certs > 1 || header[0] != '\0') {
				log_warn("x509: PEM: %s",
				        certs > 1 ? "more than one certificate"
				                  : "certificate with headers");
				goto out;
			}
			if ((rc = x509_cert_from_der(data, (size_t)dlen, &c)) != MDM_OK)
				goto out;
			rc = MDM_ERR_PARSE;
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_clear_free(data, (size_t)dlen);
		name = header = NULL;
		data = NULL;
	}
	if (c == NULL) {
		log_warn("x509: PEM without a certificate");
		goto out;
	}
	*out = c;
	c = NULL;
	rc = MDM_OK;
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_clear_free(data, dlen > 0 ? (size_t)dlen : 0);
	X509_free(c);
	BIO_free(bio);
	return rc;
}

/* What x509_cert_from_pem_cached holds: the SHA-256 of a text and its certificate. */
static struct {
	unsigned char key[32];
	X509 *cert;
} pem_cache[X509_CERT_CACHE];
static unsigned pem_cache_next;

mdm_err x509_cert_from_pem_cached(const char *pem, size_t len, X509 **out)
{
	unsigned char key[32];
	unsigned int klen = 0;
	unsigned slot;
	mdm_err rc;

	*out = NULL;
	if (pem == NULL || len == 0 || len > X509_MAX_FILE)
		return x509_cert_from_pem(pem, len, out);
	if (EVP_Digest(pem, len, key, &klen, EVP_sha256(), NULL) != 1 || klen != sizeof(key)) {
		ERR_clear_error();
		return x509_cert_from_pem(pem, len, out);
	}
	for (size_t i = 0; i < X509_CERT_CACHE; i++)
		if (pem_cache[i].cert != NULL && memcmp(pem_cache[i].key, key, sizeof(key)) == 0) {
			*out = x509_cert_up_ref(pem_cache[i].cert);
			return MDM_OK;
		}
	if ((rc = x509_cert_from_pem(pem, len, out)) != MDM_OK)
		return rc;
	/* Round robin: the oldest entry goes; its holders keep their references. */
	slot = pem_cache_next++ % X509_CERT_CACHE;
	X509_free(pem_cache[slot].cert);
	pem_cache[slot].cert = x509_cert_up_ref(*out);
	memcpy(pem_cache[slot].key, key, sizeof(key));
	return MDM_OK;
}

mdm_err x509_cert_load_file(const char *path, X509 **out)
{
	char *buf = NULL;
	size_t len = 0;
	mdm_err rc;

	*out = NULL;
	if (path == NULL)
		return MDM_ERR_INVAL;
	if ((rc = x509_file_read(path, X509_MAX_FILE, &buf, &len, NULL)) != MDM_OK)
		return rc;
	/*
	 * PEM if it has a BEGIN line (x509_file_read NUL-terminates; a NUL inside
	 * DER only ends the search early), else DER.
	 */
	if (strstr(buf, "-----BEGIN ") != NULL)
		rc = x509_cert_from_pem(buf, len, out);
	else
		rc = x509_cert_from_der((const uint8_t *)buf, len, out);
	if (rc != MDM_OK)
		log_error("x509: %s: not one PEM or DER certificate", path);
	x509_file_free(buf, len);
	return rc;
}

mdm_err x509_cert_to_der(const X509 *c, uint8_t **out, size_t *outlen)
{
	unsigned char *buf = NULL, *p;
	int len;

	*out = NULL;
	*outlen = 0;
	if (c == NULL)
		return MDM_ERR_INVAL;
	if ((len = i2d_X509(c, NULL)) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_X509");
		return MDM_ERR_CRYPTO;
	}
	if ((buf = malloc((size_t)len)) == NULL)
		return MDM_ERR_NOMEM;
	p = buf;
	if (i2d_X509(c, &p) != len) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_X509");
		free(buf);
		return MDM_ERR_CRYPTO;
	}
	*out = buf;
	*outlen = (size_t)len;
	return MDM_OK;
}

mdm_err x509_cert_to_pem(const X509 *c, char **out, size_t *outlen)
{
	BIO *bio = NULL;
	char *p = NULL, *buf = NULL;
	long len;
	mdm_err rc = MDM_ERR_CRYPTO;

	*out = NULL;
	*outlen = 0;
	if (c == NULL)
		return MDM_ERR_INVAL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_new");
		return MDM_ERR_NOMEM;
	}
	if (PEM_write_bio_X509(bio, c) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "PEM_write_bio_X509");
		goto out;
	}
	if ((len = BIO_get_mem_data(bio, &p)) <= 0 || p == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_get_mem_data");
		goto out;
	}
	if ((buf = malloc((size_t)len + 1)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	memcpy(buf, p, (size_t)len);
	buf[len] = '\0';
	*out = buf;
	*outlen = (size_t)len;
	rc = MDM_OK;
out:
	BIO_free(bio);
	return rc;
}

X509 *x509_cert_up_ref(X509 *c)
{
	/* Only an atomic increment: it cannot fail on a valid object. */
	if (c != NULL)
		(void)X509_up_ref(c);
	return c;
}

void x509_cert_free(X509 *c)
{
	X509_free(c);
}

/* 1 if basicConstraints says cA (RFC 5280 4.2.1.9), else 0. */
int x509_cert_is_ca(const X509 *c)
{
	BASIC_CONSTRAINTS *bc;
	int crit = -1, ca;

	if ((bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	ca = bc->ca != 0;
	BASIC_CONSTRAINTS_free(bc);
	return ca;
}

mdm_err x509_cert_info(const X509 *c, struct x509_info *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	mdm_err rc;

	memset(out, 0, sizeof(*out));
	if (c == NULL)
		return MDM_ERR_INVAL;
	if (!X509_digest(c, EVP_sha256(), md, &mdlen) || mdlen != 32) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_digest");
		rc = MDM_ERR_CRYPTO;
		goto fail;
	}
	hex_lower(md, mdlen, out->sha256);
	if (!x509_serial_to_hex(X509_get0_serialNumber(c), out->serial, sizeof(out->serial))) {
		log_warn("x509: RFC 5280 4.1.2.2: serial negative or over 20 octets");
		rc = MDM_ERR_PARSE;
		goto fail;
	}
	if ((rc = x509_name_to_str(
	             X509_get_subject_name(c), out->subject, sizeof(out->subject), 1)) != MDM_OK ||
	        (rc = x509_name_to_str(
	                 X509_get_issuer_name(c), out->issuer, sizeof(out->issuer), 1)) != MDM_OK)
		goto fail;
	if (!x509_asn1_time_to_time_t(X509_get0_notBefore(c), &out->not_before) ||
	        !x509_asn1_time_to_time_t(X509_get0_notAfter(c), &out->not_after)) {
		rc = MDM_ERR_PARSE;
		goto fail;
	}
	out->is_ca = x509_cert_is_ca(c);
	return MDM_OK;
fail:
	memset(out, 0, sizeof(*out));
	return rc;
}

mdm_err x509_cert_sha1(const X509 *c, uint8_t out[X509_SHA1_LEN])
{
	unsigned int mdlen = 0;

	memset(out, 0, X509_SHA1_LEN);
	if (c == NULL)
		return MDM_ERR_INVAL;
	if (!X509_digest(c, EVP_sha1(), out, &mdlen) || mdlen != X509_SHA1_LEN) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_digest (SHA-1)");
		memset(out, 0, X509_SHA1_LEN);
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

mdm_err x509_cert_key_sha256(const X509 *c, char out[X509_FP_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int mdlen = 0;
	int len;
	mdm_err rc = MDM_ERR_CRYPTO;

	out[0] = '\0';
	if (c == NULL)
		return MDM_ERR_INVAL;
	/* The whole SubjectPublicKeyInfo, algorithm included (not X509_pubkey_digest's BIT STRING).
	 */
	if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), &der)) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_X509_PUBKEY");
		goto out;
	}
	if (EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_Digest");
		goto out;
	}
	hex_lower(md, mdlen, out);
	rc = MDM_OK;
out:
	OPENSSL_free(der);
	return rc;
}

mdm_err x509_hmac_sha256_hex(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len,
        char out[X509_FP_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	out[0] = '\0';
	if (key == NULL || keylen == 0 || keylen > INT32_MAX || (msg == NULL && len > 0))
		return MDM_ERR_INVAL;
	if (HMAC(EVP_sha256(), key, (int)keylen, msg != NULL ? msg : (const uint8_t *)"", len, md,
	            &mdlen) == NULL ||
	        mdlen != 32) {
		x509_ossl_fail(MDM_LOG_ERROR, "HMAC");
		OPENSSL_cleanse(md, sizeof(md));
		return MDM_ERR_CRYPTO;
	}
	hex_lower(md, mdlen, out);
	OPENSSL_cleanse(md, sizeof(md));
	return MDM_OK;
}

int x509_cert_same_key(const X509 *a, const X509 *b)
{
	EVP_PKEY *ka, *kb;
	int eq;

	if (a == NULL || b == NULL || (ka = X509_get0_pubkey(a)) == NULL ||
	        (kb = X509_get0_pubkey(b)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	eq = EVP_PKEY_eq(ka, kb) == 1;
	ERR_clear_error();
	return eq;
}

int x509_cert_self_issued(const struct x509_st *c)
{
	return c != NULL && X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(c)) == 0;
}

int x509_cert_signed_by(const struct x509_st *cert, const struct x509_st *issuer)
{
	EVP_PKEY *pub;
	int ok;

	if (cert == NULL || issuer == NULL || (pub = X509_get0_pubkey((X509 *)issuer)) == NULL)
		return 0;
	ok = X509_verify((X509 *)cert, pub) == 1;
	ERR_clear_error();
	return ok;
}

/* ---- subject attributes, validity ---- */

mdm_err x509_cert_subject_attr(const X509 *c, const char *attr, char *out, size_t cap)
{
	const X509_NAME *name;
	unsigned char *utf8 = NULL;
	int nid, idx, len;
	mdm_err rc = MDM_ERR_PARSE;

	if (out != NULL && cap > 0)
		out[0] = '\0';
	if (c == NULL || attr == NULL || out == NULL || cap == 0)
		return MDM_ERR_INVAL;
	if ((nid = x509_name_type_nid(attr, strlen(attr))) == NID_undef) {
		log_error("x509: unknown subject attribute type %.32s", attr);
		return MDM_ERR_INVAL;
	}
	name = X509_get_subject_name(c);
	if ((idx = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
		return MDM_ERR_NOT_FOUND;
	if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0) {
		log_warn("x509: the subject has more than one %s", attr);
		return MDM_ERR_PARSE;
	}
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
	if (len < 0) {
		x509_ossl_fail(MDM_LOG_WARN, "ASN1_STRING_to_UTF8");
		return MDM_ERR_PARSE;
	}
	if (memchr(utf8, '\0', (size_t)len) != NULL) {
		log_warn("x509: the subject's %s holds a NUL byte", attr);
		goto out;
	}
	if ((size_t)len >= cap) {
		log_warn("x509: the subject's %s is %d bytes, over %zu", attr, len, cap - 1);
		rc = MDM_ERR_LIMIT;
		goto out;
	}
	memcpy(out, utf8, (size_t)len);
	out[len] = '\0';
	rc = MDM_OK;
out:
	OPENSSL_free(utf8);
	return rc;
}

int x509_cert_valid_at(const X509 *c, time_t now)
{
	return c != NULL && x509_validity_at(c, now) == 0;
}
