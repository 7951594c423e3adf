/*
 * X.509 on OpenSSL: certificates, keys (files and PKCS#11 tokens), CSRs,
 * and the CA that issues device identities, renews or rekeys itself and
 * signs CRLs.
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
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Certificates we sign start an hour early: clients' clocks are not ours. */
#define CLOCK_SKEW 3600
/* The smallest RSA key the CA itself may have. */
#define CA_MIN_RSA_BITS 2048

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

/*
 * OpenSSL 3.0 takes X509 * in a few read-only calls (X509_verify and the
 * extension-cache getters) because they fill a cache inside the object;
 * the certificate itself is not changed.  One place says so.
 */
static X509 *cert_mut(const X509 *c)
{
	return (X509 *)c;
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

static mdm_err check_days(int days, time_t now)
{
	if (days < 1 || days > X509_MAX_DAYS) {
		log_error("x509: validity of %d days outside 1..%d", days, X509_MAX_DAYS);
		return MDM_ERR_INVAL;
	}
	/* Well after 1970, so that now - CLOCK_SKEW is a sane notBefore. */
	if (now < SECS_PER_DAY) {
		log_error("x509: implausible current time %lld", (long long)now);
		return MDM_ERR_INVAL;
	}
	return MDM_OK;
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

/* 1..40 hex digits, value above zero (RFC 5280 4.1.2.2). */
static ASN1_INTEGER *serial_from_hex(const char *s)
{
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn = NULL;
	size_t len;

	if (s == NULL || (len = strnlen(s, 41)) == 0 || len > 40)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (x509_hexval((unsigned char)s[i]) < 0)
			return NULL;
	if (BN_hex2bn(&bn, s) != (int)len) {
		x509_ossl_fail(MDM_LOG_ERROR, "BN_hex2bn");
		goto out;
	}
	if (BN_is_zero(bn))
		goto out;
	if ((ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		x509_ossl_fail(MDM_LOG_ERROR, "BN_to_ASN1_INTEGER");
out:
	BN_free(bn);
	return ai;
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

/*
 * Parses "/CN=MDM CA/O=Example" (the openssl -subj form, outermost RDN
 * first) into a name.  A value may hold '/' or '\' escaped with '\';
 * multi-valued RDNs ('+') are not supported.  Values are UTF-8; OpenSSL
 * picks the string type per attribute (PrintableString for C).
 */
static mdm_err name_parse(const char *s, X509_NAME **out)
{
	X509_NAME *name = NULL;
	char value[X509_MAX_SUBJECT + 1];
	mdm_err rc = MDM_ERR_INVAL;

	*out = NULL;
	if (s == NULL || strnlen(s, X509_MAX_SUBJECT + 1) > X509_MAX_SUBJECT || s[0] != '/') {
		log_error("x509: subject must be /TYPE=value/... of at most %d bytes",
		        X509_MAX_SUBJECT);
		return MDM_ERR_INVAL;
	}
	if ((name = X509_NAME_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_NAME_new");
		return MDM_ERR_NOMEM;
	}
	for (const char *p = s; *p == '/';) {
		const char *type = ++p, *eq = strchr(type, '=');
		size_t vlen = 0;
		int nid;

		if (eq == NULL ||
		        (nid = x509_name_type_nid(type, (size_t)(eq - type))) == NID_undef) {
			log_error("x509: subject: unknown or missing attribute type at offset %zu",
			        (size_t)(type - s));
			goto out;
		}
		for (p = eq + 1; *p != '\0' && *p != '/'; p++) {
			if (*p == '\\') {
				if (p[1] != '/' && p[1] != '\\') {
					log_error("x509: subject: only \\/ and \\\\ are escapes");
					goto out;
				}
				p++;
			}
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				log_error("x509: subject: control character in a value");
				goto out;
			}
			value[vlen++] = *p;
		}
		if (vlen == 0) {
			log_error("x509: subject: empty value");
			goto out;
		}
		if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, (unsigned char *)value,
		            (int)vlen, -1, 0) != 1) {
			/* e.g. C not two letters, CN over 64 characters, bad UTF-8 */
			x509_ossl_fail(MDM_LOG_ERROR, "X509_NAME_add_entry_by_NID");
			goto out;
		}
	}
	*out = name;
	name = NULL;
	rc = MDM_OK;
out:
	X509_NAME_free(name);
	return rc;
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
		if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
			unsigned long e = ERR_peek_last_error();

			/* The normal end: no further BEGIN line. */
			if (blocks > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
			        ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			x509_ossl_fail(MDM_LOG_WARN, "PEM_read_bio");
			goto out;
		}
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

/* ---- building certificates ---- */

/* 128 random bits as a positive INTEGER (17 DER octets when the top bit is set). */
static mdm_err serial_random(ASN1_INTEGER **out)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;
	mdm_err rc = MDM_ERR_CRYPTO;

	*out = NULL;
	do {
		if (RAND_bytes(b, sizeof(b)) != 1) {
			x509_ossl_fail(MDM_LOG_ERROR, "RAND_bytes");
			goto out;
		}
		BN_free(bn);
		if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL) {
			x509_ossl_fail(MDM_LOG_ERROR, "BN_bin2bn");
			goto out;
		}
	} while (BN_is_zero(bn)); /* RFC 5280 4.1.2.2: positive; 2^-128 */
	if ((*out = BN_to_ASN1_INTEGER(bn, NULL)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BN_to_ASN1_INTEGER");
		goto out;
	}
	rc = MDM_OK;
out:
	BN_free(bn);
	return rc;
}

static mdm_err set_time(X509 *x, int which, time_t t)
{
	ASN1_TIME *at;
	int ok;

	/* ASN1_TIME_set picks UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
	if ((at = ASN1_TIME_set(NULL, t)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "ASN1_TIME_set");
		return MDM_ERR_CRYPTO;
	}
	ok = which == 0 ? X509_set1_notBefore(x, at) : X509_set1_notAfter(x, at);
	ASN1_TIME_free(at);
	if (ok != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_set1_notBefore/notAfter");
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

/* v3, a fresh random serial, names, validity and the subject's public key. */
static mdm_err cert_new(const X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *pub,
        time_t not_before, time_t not_after, X509 **out)
{
	ASN1_INTEGER *serial = NULL;
	X509 *x = NULL;
	mdm_err rc = MDM_ERR_CRYPTO;

	*out = NULL;
	if ((x = X509_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_new");
		return MDM_ERR_NOMEM;
	}
	if (X509_set_version(x, X509_VERSION_3) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_set_version");
		goto out;
	}
	if ((rc = serial_random(&serial)) != MDM_OK)
		goto out;
	rc = MDM_ERR_CRYPTO;
	if (X509_set_serialNumber(x, serial) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_set_serialNumber");
		goto out;
	}
	if (X509_set_subject_name(x, subject) != 1 || X509_set_issuer_name(x, issuer) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_set_subject_name/issuer_name");
		goto out;
	}
	if ((rc = set_time(x, 0, not_before)) != MDM_OK ||
	        (rc = set_time(x, 1, not_after)) != MDM_OK)
		goto out;
	rc = MDM_ERR_CRYPTO;
	if (X509_set_pubkey(x, pub) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_set_pubkey");
		goto out;
	}
	*out = x;
	x = NULL;
	rc = MDM_OK;
out:
	ASN1_INTEGER_free(serial);
	X509_free(x);
	return rc;
}

static mdm_err add_ext(X509 *x, int nid, void *value, int critical)
{
	if (X509_add1_ext_i2d(x, nid, value, critical, X509V3_ADD_DEFAULT) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_add1_ext_i2d");
		log_error("x509: could not add extension %s", OBJ_nid2sn(nid));
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

/* basicConstraints, critical; a CA gets pathLenConstraint 0: it signs end entities only. */
static mdm_err add_basic_constraints(X509 *x, int ca)
{
	BASIC_CONSTRAINTS *bc;
	mdm_err rc = MDM_ERR_NOMEM;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BASIC_CONSTRAINTS_new");
		return MDM_ERR_NOMEM;
	}
	bc->ca = ca ? 0xff : 0;
	if (ca) {
		if ((bc->pathlen = ASN1_INTEGER_new()) == NULL ||
		        ASN1_INTEGER_set(bc->pathlen, 0) != 1) {
			x509_ossl_fail(MDM_LOG_ERROR, "ASN1_INTEGER_set");
			goto out;
		}
	}
	rc = add_ext(x, NID_basic_constraints, bc, 1);
out:
	BASIC_CONSTRAINTS_free(bc);
	return rc;
}

/* keyUsage, critical; bits are RFC 5280 4.2.1.3 bit numbers. */
enum {
	KU_BIT_DIGITAL_SIGNATURE = 0,
	KU_BIT_KEY_ENCIPHERMENT = 2,
	KU_BIT_KEY_CERT_SIGN = 5,
	KU_BIT_CRL_SIGN = 6
};

static mdm_err add_key_usage(X509 *x, const int *bits, size_t n)
{
	ASN1_BIT_STRING *ku;
	mdm_err rc = MDM_ERR_CRYPTO;

	if ((ku = ASN1_BIT_STRING_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "ASN1_BIT_STRING_new");
		return MDM_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (ASN1_BIT_STRING_set_bit(ku, bits[i], 1) != 1) {
			x509_ossl_fail(MDM_LOG_ERROR, "ASN1_BIT_STRING_set_bit");
			goto out;
		}
	}
	rc = add_ext(x, NID_key_usage, ku, 1);
out:
	ASN1_BIT_STRING_free(ku);
	return rc;
}

/* extendedKeyUsage with one purpose (clientAuth for devices, emailProtection for signers). */
static mdm_err add_eku(X509 *x, int nid)
{
	EXTENDED_KEY_USAGE *eku;
	ASN1_OBJECT *obj = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "sk_ASN1_OBJECT_new_null");
		return MDM_ERR_NOMEM;
	}
	if ((obj = OBJ_nid2obj(nid)) == NULL || sk_ASN1_OBJECT_push(eku, obj) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "sk_ASN1_OBJECT_push");
		goto out;
	}
	rc = add_ext(x, NID_ext_key_usage, eku, 0);
out:
	/* OBJ_nid2obj returns a built-in object: freeing it is a no-op. */
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return rc;
}

/* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING. */
static mdm_err key_id_of(const X509 *x, ASN1_OCTET_STRING **out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	*out = NULL;
	if (X509_pubkey_digest(x, EVP_sha1(), md, &len) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_pubkey_digest");
		return MDM_ERR_CRYPTO;
	}
	if ((*out = ASN1_OCTET_STRING_new()) == NULL ||
	        ASN1_OCTET_STRING_set(*out, md, (int)len) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "ASN1_OCTET_STRING_set");
		ASN1_OCTET_STRING_free(*out);
		*out = NULL;
		return MDM_ERR_NOMEM;
	}
	return MDM_OK;
}

/* The CA's key identifier: its SKI as written (AKI must match it), else computed. */
static mdm_err ca_key_id(const X509 *ca, ASN1_OCTET_STRING **out)
{
	int crit = -1;

	*out = X509_get_ext_d2i(ca, NID_subject_key_identifier, &crit, NULL);
	if (*out != NULL)
		return MDM_OK;
	ERR_clear_error();
	return key_id_of(ca, out);
}

static mdm_err add_ski(X509 *x)
{
	ASN1_OCTET_STRING *id = NULL;
	mdm_err rc;

	if ((rc = key_id_of(x, &id)) != MDM_OK)
		return rc;
	rc = add_ext(x, NID_subject_key_identifier, id, 0);
	ASN1_OCTET_STRING_free(id);
	return rc;
}

/* authorityKeyIdentifier with keyIdentifier only (RFC 5280 4.2.1.1). */
static mdm_err add_aki(X509 *x, const X509 *issuer)
{
	AUTHORITY_KEYID *akid;
	mdm_err rc;

	if ((akid = AUTHORITY_KEYID_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "AUTHORITY_KEYID_new");
		return MDM_ERR_NOMEM;
	}
	if ((rc = ca_key_id(issuer, &akid->keyid)) == MDM_OK)
		rc = add_ext(x, NID_authority_key_identifier, akid, 0);
	AUTHORITY_KEYID_free(akid);
	return rc;
}

static mdm_err cert_sign(X509 *x, EVP_PKEY *key)
{
	if (X509_sign(x, key, EVP_sha256()) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_sign");
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

/* The CA's own key: RSA of at least CA_MIN_RSA_BITS, or EC. */
static mdm_err ca_key_ok(EVP_PKEY *key)
{
	int id;

	if (key == NULL)
		return MDM_ERR_INVAL;
	id = EVP_PKEY_get_base_id(key);
	if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) >= CA_MIN_RSA_BITS)
		return MDM_OK;
	if (id == EVP_PKEY_EC)
		return MDM_OK;
	log_error("x509: a CA key must be RSA of %d bits or more, or EC", CA_MIN_RSA_BITS);
	return MDM_ERR_INVAL;
}

/* A self-signed CA certificate for key with subject name. */
static mdm_err ca_build(EVP_PKEY *key, const X509_NAME *name, int days, time_t now, X509 **out)
{
	static const int ku[] = {KU_BIT_DIGITAL_SIGNATURE, KU_BIT_KEY_CERT_SIGN, KU_BIT_CRL_SIGN};
	X509 *x = NULL;
	mdm_err rc;

	*out = NULL;
	if ((rc = check_days(days, now)) != MDM_OK || (rc = ca_key_ok(key)) != MDM_OK)
		return rc;
	if ((rc = cert_new(name, name, key, now - CLOCK_SKEW, now + (time_t)days * SECS_PER_DAY,
	             &x)) != MDM_OK)
		return rc;
	/*
	 * digitalSignature besides keyCertSign and cRLSign: the CA also signs
	 * SCEP CertReps, and certmonger refuses a CertRep signer without it.
	 * SKI before AKI: a root's AKI is its own SKI.
	 */
	if ((rc = add_basic_constraints(x, 1)) != MDM_OK ||
	        (rc = add_key_usage(x, ku, sizeof(ku) / sizeof(ku[0]))) != MDM_OK ||
	        (rc = add_ski(x)) != MDM_OK || (rc = add_aki(x, x)) != MDM_OK ||
	        (rc = cert_sign(x, key)) != MDM_OK)
		goto out;
	*out = x;
	x = NULL;
out:
	X509_free(x);
	return rc;
}

mdm_err x509_ca_create(EVP_PKEY *key, const char *subject, int days, time_t now, X509 **out)
{
	X509_NAME *name = NULL;
	mdm_err rc;

	*out = NULL;
	if ((rc = name_parse(subject, &name)) != MDM_OK)
		return rc;
	rc = ca_build(key, name, days, now, out);
	X509_NAME_free(name);
	return rc;
}

mdm_err x509_ca_next(const X509 *current, EVP_PKEY *key, int days, time_t now, X509 **out)
{
	*out = NULL;
	if (current == NULL)
		return MDM_ERR_INVAL;
	if (!x509_cert_is_ca(current)) {
		log_error("x509: the current CA certificate is not a CA (basicConstraints)");
		return MDM_ERR_INVAL;
	}
	return ca_build(key, X509_get_subject_name(current), days, now, out);
}

/* Checks that ca is a CA, valid at now, and that cakey is its key's private half. */
static mdm_err ca_usable(const X509 *ca, EVP_PKEY *cakey, time_t now, time_t *not_after)
{
	*not_after = 0;
	if (ca == NULL || cakey == NULL)
		return MDM_ERR_INVAL;
	if (!x509_cert_is_ca(ca)) {
		log_error("x509: the CA certificate has no basicConstraints cA");
		return MDM_ERR_CONFIG;
	}
	if (x509_validity_at(ca, now) != 0 ||
	        !x509_asn1_time_to_time_t(X509_get0_notAfter(ca), not_after)) {
		log_error("x509: the CA certificate is not valid now");
		return MDM_ERR_CONFIG;
	}
	/* Public halves only (cheap); the signature is checked after signing. */
	if (X509_get0_pubkey(ca) == NULL || EVP_PKEY_eq(cakey, X509_get0_pubkey(ca)) == 0) {
		ERR_clear_error();
		log_error("x509: the CA key does not belong to the CA certificate");
		return MDM_ERR_CONFIG;
	}
	ERR_clear_error();
	return MDM_OK;
}

/* The issued key: RSA of at least min_bits, or EC on P-256/P-384. */
static mdm_err issue_key_ok(EVP_PKEY *pub, int min_bits, int *is_rsa)
{
	char group[64];
	int nid;

	*is_rsa = 0;
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pub) < min_bits) {
			log_warn("x509: CSR has an RSA key of %d bits, under the %d required",
			        EVP_PKEY_get_bits(pub), min_bits);
			return MDM_ERR_FORBIDDEN;
		}
		*is_rsa = 1;
		return MDM_OK;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL) != 1) {
			x509_ossl_fail(MDM_LOG_WARN, "EVP_PKEY_get_group_name");
			return MDM_ERR_FORBIDDEN;
		}
		if ((nid = OBJ_sn2nid(group)) == NID_undef)
			nid = EC_curve_nist2nid(group);
		if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1)
			return MDM_OK;
		log_warn("x509: CSR has an EC key on %s; only P-256 and P-384 are issued", group);
		return MDM_ERR_FORBIDDEN;
	default:
		log_warn("x509: CSR key type %s is not issued (RSA or EC only)",
		        OBJ_nid2sn(EVP_PKEY_get_base_id(pub)));
		return MDM_ERR_FORBIDDEN;
	}
}

/* IA5String SAN values: printable ASCII without spaces, bounded. */
static int san_ia5_ok(const ASN1_IA5STRING *s)
{
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int len = ASN1_STRING_length(s);

	if (len <= 0 || len > X509_MAX_SAN_LEN)
		return 0;
	for (int i = 0; i < len; i++)
		if (d[i] <= 0x20 || d[i] >= 0x7f)
			return 0;
	return 1;
}

/* UPN: a UTF8String of valid UTF-8 without control characters. */
static int san_upn_ok(const ASN1_TYPE *v)
{
	unsigned char *u = NULL;
	int len, ok = 1;

	if (v == NULL || v->type != V_ASN1_UTF8STRING ||
	        ASN1_STRING_length(v->value.utf8string) > X509_MAX_SAN_LEN)
		return 0;
	/* ASN1_STRING_to_UTF8 rejects malformed UTF-8. */
	if ((len = ASN1_STRING_to_UTF8(&u, v->value.utf8string)) <= 0) {
		ERR_clear_error();
		OPENSSL_free(u);
		return 0;
	}
	for (int i = 0; i < len; i++)
		if (u[i] < 0x20 || u[i] == 0x7f)
			ok = 0;
	OPENSSL_free(u);
	return ok;
}

/*
 * The subjectAltName of the CSR's extensionRequest, if any, checked
 * against the allow-list: dNSName, rfc822Name, uniformResourceIdentifier
 * and the Microsoft UPN otherName (the forms an Apple SCEP payload can
 * ask for).  Any other form (iPAddress, directoryName, registeredID,
 * other otherNames) refuses the request rather than be dropped silently.
 * *out is NULL when the CSR asks for no SAN.
 */
static mdm_err csr_sans(X509_REQ *csr, GENERAL_NAMES **out)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	int crit = -1, n;
	mdm_err rc = MDM_ERR_PARSE;

	*out = NULL;
	if ((exts = X509_REQ_get_extensions(csr)) == NULL) {
		x509_ossl_fail(MDM_LOG_WARN, "X509_REQ_get_extensions");
		return MDM_ERR_PARSE;
	}
	if ((gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL)) == NULL) {
		if (crit == -1) { /* absent */
			ERR_clear_error();
			rc = MDM_OK;
		} else {
			x509_ossl_fail(MDM_LOG_WARN, "X509V3_get_d2i(subjectAltName)");
			log_warn("x509: CSR subjectAltName malformed or present twice");
		}
		goto out;
	}
	if ((n = sk_GENERAL_NAME_num(gens)) <= 0 || n > X509_MAX_SANS) {
		log_warn("x509: CSR asks for %d subjectAltNames, not 1..%d", n, X509_MAX_SANS);
		rc = MDM_ERR_FORBIDDEN;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		int ok = 0;

		switch (g->type) {
		case GEN_DNS:
		case GEN_EMAIL:
		case GEN_URI:
			ok = san_ia5_ok(g->d.ia5);
			break;
		case GEN_OTHERNAME:
			ok = OBJ_obj2nid(g->d.otherName->type_id) == NID_ms_upn &&
			        san_upn_ok(g->d.otherName->value);
			break;
		default:
			break;
		}
		if (!ok) {
			log_warn("x509: CSR subjectAltName %d (type %d) not in the allow-list", i,
			        g->type);
			rc = MDM_ERR_FORBIDDEN;
			goto out;
		}
	}
	*out = gens;
	gens = NULL;
	rc = MDM_OK;
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

mdm_err x509_issue(const X509 *ca, EVP_PKEY *cakey, X509_REQ *csr,
        const struct x509_issue_policy *policy, time_t now, X509 **out)
{
	/* EC keys get the first alone: keyEncipherment is for RSA (RFC 8813 2). */
	static const int ku[] = {KU_BIT_DIGITAL_SIGNATURE, KU_BIT_KEY_ENCIPHERMENT};
	const X509_NAME *subject;
	GENERAL_NAMES *sans = NULL;
	EVP_PKEY *pub;
	X509 *x = NULL;
	time_t ca_not_after, not_after;
	int min_bits, is_rsa = 0;
	mdm_err rc;

	*out = NULL;
	if (csr == NULL || policy == NULL)
		return MDM_ERR_INVAL;
	if ((rc = check_days(policy->days, now)) != MDM_OK ||
	        (rc = ca_usable(ca, cakey, now, &ca_not_after)) != MDM_OK)
		return rc;
	/* Never issue for a key whose holder has not proven possession. */
	if ((rc = x509_csr_verify(csr)) != MDM_OK)
		return rc;
	pub = X509_REQ_get0_pubkey(csr);
	min_bits = policy->min_rsa_bits > 0 ? policy->min_rsa_bits : X509_DEFAULT_MIN_RSA_BITS;
	if ((rc = issue_key_ok(pub, min_bits, &is_rsa)) != MDM_OK)
		return rc;
	subject = X509_REQ_get_subject_name(csr);
	if (X509_NAME_entry_count(subject) == 0) {
		log_warn("x509: CSR with an empty subject");
		return MDM_ERR_FORBIDDEN;
	}
	if (policy->copy_sans && (rc = csr_sans(csr, &sans)) != MDM_OK)
		return rc;
	/* Never beyond the CA: a certificate outliving its issuer cannot be verified. */
	not_after = now + (time_t)policy->days * SECS_PER_DAY;
	if (not_after > ca_not_after)
		not_after = ca_not_after;
	if ((rc = cert_new(subject, X509_get_subject_name(ca), pub, now - CLOCK_SKEW, not_after,
	             &x)) != MDM_OK)
		goto out;
	if ((rc = add_basic_constraints(x, 0)) != MDM_OK ||
	        (rc = add_key_usage(x, ku, is_rsa ? 2 : 1)) != MDM_OK ||
	        (rc = add_eku(x, NID_client_auth)) != MDM_OK || (rc = add_ski(x)) != MDM_OK ||
	        (rc = add_aki(x, ca)) != MDM_OK)
		goto out;
	if (sans != NULL && (rc = add_ext(x, NID_subject_alt_name, sans, 0)) != MDM_OK)
		goto out;
	if ((rc = cert_sign(x, cakey)) != MDM_OK)
		goto out;
	/* What we hand out must verify with the CA certificate (an HSM could misbehave). */
	if (X509_verify(x, X509_get0_pubkey(ca)) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_verify");
		log_error("x509: the certificate just issued does not verify with the CA");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	*out = x;
	x = NULL;
	rc = MDM_OK;
out:
	GENERAL_NAMES_free(sans);
	X509_free(x);
	return rc;
}

/* ---- verifying what we issued ---- */

/*
 * How far one candidate issuer got; the furthest is the reason logged when
 * none succeeds.
 */
enum verify_stage { VS_NO_ISSUER, VS_BAD_SIGNATURE, VS_CA_UNFIT, VS_CERT_UNFIT };

/* The issuing CA must itself be a CA, allowed to sign, and valid now; NULL when fit. */
static const char *ca_unfit(X509 *ca, time_t now)
{
	int v;

	if (!x509_cert_is_ca(ca))
		return "issuer is not a CA";
	if ((X509_get_extension_flags(ca) & EXFLAG_KUSAGE) &&
	        !(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN))
		return "issuer's keyUsage lacks keyCertSign";
	if ((v = x509_validity_at(ca, now)) < 0)
		return "issuing CA not yet valid";
	if (v == 1)
		return "issuing CA expired";
	if (v != 0)
		return "issuing CA validity unreadable";
	return NULL;
}

/* Checks of cert that do not depend on the issuer; NULL when fit. */
static const char *cert_unfit(const X509 *cert, time_t now, int client_auth)
{
	X509 *c = cert_mut(cert);
	uint32_t flags = X509_get_extension_flags(c);
	int v = x509_validity_at(cert, now);

	if (v < 0)
		return "certificate not yet valid";
	if (v == 1)
		return "certificate expired";
	if (v != 0)
		return "certificate validity unreadable";
	if (flags & EXFLAG_INVALID)
		return "certificate extensions malformed or duplicated";
	if (flags & EXFLAG_CRITICAL)
		return "certificate has an unsupported critical extension";
	if (x509_cert_is_ca(cert))
		return "certificate is a CA, not an end entity";
	if (client_auth) {
		if (!(flags & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(c) & XKU_SSL_CLIENT))
			return "no extendedKeyUsage clientAuth";
		if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(c) & KU_DIGITAL_SIGNATURE))
			return "keyUsage lacks digitalSignature";
	}
	return NULL;
}

mdm_err x509_verify_issued(
        const X509 *cert, X509 *const *cas, size_t ncas, time_t now, int client_auth, size_t *which)
{
	enum verify_stage best = VS_NO_ISSUER;
	const char *why = "unknown issuer";
	char serial[2 * 20 + 1], issuer[256];

	if (which != NULL)
		*which = 0;
	if (cert == NULL || (cas == NULL && ncas > 0))
		return MDM_ERR_INVAL;
	for (size_t i = 0; i < ncas; i++) {
		X509 *ca = cas[i];
		EVP_PKEY *capub;
		const char *unfit;

		if (ca == NULL ||
		        X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(ca)) != 0)
			continue;
		/*
		 * The signature decides which CA issued it: after a renewal two CA
		 * certificates share name and key, after a rekey only the name.
		 */
		if ((capub = X509_get0_pubkey(ca)) == NULL ||
		        X509_verify(cert_mut(cert), capub) != 1) {
			ERR_clear_error();
			if (best < VS_BAD_SIGNATURE) {
				best = VS_BAD_SIGNATURE;
				why = "signature does not verify with any CA of that name";
			}
			continue;
		}
		if ((unfit = ca_unfit(ca, now)) != NULL) {
			if (best < VS_CA_UNFIT) {
				best = VS_CA_UNFIT;
				why = unfit;
			}
			continue;
		}
		if ((unfit = cert_unfit(cert, now, client_auth)) != NULL) {
			best = VS_CERT_UNFIT;
			why = unfit;
			continue;
		}
		if (which != NULL)
			*which = i;
		return MDM_OK;
	}
	if (!x509_serial_to_hex(X509_get0_serialNumber(cert), serial, sizeof(serial)))
		snprintf(serial, sizeof(serial), "?");
	if (x509_name_to_str(X509_get_issuer_name(cert), issuer, sizeof(issuer), 1) != MDM_OK)
		snprintf(issuer, sizeof(issuer), "?");
	log_warn("x509: certificate serial %s from issuer \"%s\" refused: %s", serial, issuer, why);
	return MDM_ERR_AUTH;
}

/* ---- pinned vendor chains (Apple device identities) ---- */

/* 1 if the subject CN of c starts with "[TEST]" (Apple's factory test CAs). */
static int cert_is_test(const X509 *c)
{
	const X509_NAME *n = X509_get_subject_name(c);
	int i = -1;

	while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0) {
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
		int len = ASN1_STRING_length(v);

		if (len >= 6 && memcmp(ASN1_STRING_get0_data(v), "[TEST]", 6) == 0)
			return 1;
	}
	return 0;
}

mdm_err x509_verify_pinned(const X509 *cert, X509 *const *trust, size_t ntrust, time_t now)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) * chain;
	char serial[2 * 20 + 1], issuer[256];
	const char *why = NULL;
	mdm_err rc = MDM_ERR_AUTH;

	if (cert == NULL || (trust == NULL && ntrust > 0))
		return MDM_ERR_INVAL;
	if (!x509_serial_to_hex(X509_get0_serialNumber(cert), serial, sizeof(serial)))
		snprintf(serial, sizeof(serial), "?");
	if (x509_name_to_str(X509_get_issuer_name(cert), issuer, sizeof(issuer), 1) != MDM_OK)
		snprintf(issuer, sizeof(issuer), "?");
	if (cert_is_test(cert)) {
		why = "a [TEST] certificate is never a device identity";
		goto out;
	}
	if (X509_check_ca(cert_mut(cert)) != 0) {
		why = "RFC 5280 4.2.1.9: the device certificate is a CA";
		goto out;
	}
	if (!x509_cert_valid_at(cert, now)) {
		why = "RFC 5280 4.1.2.5: the device certificate is outside its validity period";
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL || (ctx = X509_STORE_CTX_new()) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < ntrust; i++) {
		if (trust[i] == NULL || X509_STORE_add_cert(store, trust[i]) != 1) {
			x509_ossl_fail(MDM_LOG_ERROR, "X509_STORE_add_cert");
			rc = MDM_ERR_CRYPTO;
			goto out;
		}
	}
	if (X509_STORE_CTX_init(ctx, store, cert_mut(cert), NULL) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_STORE_CTX_init");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	/* Dates of the pinned CAs are not checked (see x509.h); the leaf's were, above. */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
	X509_STORE_CTX_set_depth(ctx, X509_MAX_CHAIN);
	if (X509_verify_cert(ctx) != 1) {
		why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
		goto out;
	}
	chain = X509_STORE_CTX_get0_chain(ctx);
	for (int i = 0; i < sk_X509_num(chain); i++) {
		if (cert_is_test(sk_X509_value(chain, i))) {
			why = "the path runs through a [TEST] CA";
			goto out;
		}
	}
	rc = MDM_OK;
out:
	if (why != NULL)
		log_warn("x509: device certificate serial %s from issuer \"%s\" refused: %s",
		        serial, issuer, why);
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

/* ---- CRL ---- */

int x509_crl_entry_ok(const struct x509_revoked *r, const char **why)
{
	ASN1_INTEGER *serial;

	*why = NULL;
	if (r->revoked_at < 0) {
		*why = "revocation time before 1970";
		return 0;
	}
	if (r->revoked_at > X509_MAX_TIME) {
		*why = "revocation time after 9999-12-31T23:59:59Z has no GeneralizedTime (RFC "
		       "5280 "
		       "section 4.1.2.5.2)";
		return 0;
	}
	if ((serial = serial_from_hex(r->serial_hex)) == NULL) {
		*why = "serial is not 1..40 hex digits above zero";
		return 0;
	}
	ASN1_INTEGER_free(serial);
	/* RFC 5280 5.3.1: 7 is unused; removeFromCRL (8) belongs to delta CRLs only. */
	if (r->reason < -1 || r->reason > 10 || r->reason == 7 || r->reason == 8) {
		*why = "reason code not allowed on a full CRL (RFC 5280 section 5.3.1)";
		return 0;
	}
	return 1;
}

static mdm_err crl_add_revoked(X509_CRL *crl, const struct x509_revoked *r)
{
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	mdm_err rc = MDM_ERR_CRYPTO;

	if (r->revoked_at < 0) {
		log_error("x509: CRL: revocation time before 1970");
		return MDM_ERR_INVAL;
	}
	if (r->revoked_at > X509_MAX_TIME) {
		log_error("x509: CRL: revocation time after 9999-12-31T23:59:59Z has no "
		          "GeneralizedTime (RFC 5280 section 4.1.2.5.2)");
		return MDM_ERR_INVAL;
	}
	if ((serial = serial_from_hex(r->serial_hex)) == NULL) {
		log_error("x509: CRL: serial is not 1..40 hex digits above zero");
		return MDM_ERR_INVAL;
	}
	/* RFC 5280 5.3.1: 7 is unused; removeFromCRL (8) belongs to delta CRLs only. */
	if (r->reason < -1 || r->reason > 10 || r->reason == 7 || r->reason == 8) {
		log_error("x509: CRL: reason code %d not allowed", r->reason);
		rc = MDM_ERR_INVAL;
		goto out;
	}
	if ((rev = X509_REVOKED_new()) == NULL ||
	        (when = ASN1_TIME_set(NULL, r->revoked_at)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_REVOKED_new/ASN1_TIME_set");
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if (X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
	        X509_REVOKED_set_revocationDate(rev, when) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_REVOKED_set_serialNumber/revocationDate");
		goto out;
	}
	if (r->reason >= 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		        ASN1_ENUMERATED_set(reason, r->reason) != 1 ||
		        X509_REVOKED_add1_ext_i2d(
		                rev, NID_crl_reason, reason, 0, X509V3_ADD_DEFAULT) != 1) {
			x509_ossl_fail(MDM_LOG_ERROR, "X509_REVOKED_add1_ext_i2d(reasonCode)");
			goto out;
		}
	}
	if (X509_CRL_add0_revoked(crl, rev) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_add0_revoked");
		goto out;
	}
	rev = NULL;
	rc = MDM_OK;
out:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	X509_REVOKED_free(rev);
	return rc;
}

/*
 * crlNumber is now, in seconds: it increases with the clock without a
 * counter to store, and CRLs are built on demand, so two in the same
 * second can only differ if a revocation fell inside that second.
 */
mdm_err x509_crl_build(const X509 *ca, EVP_PKEY *cakey, const struct x509_revoked *revoked,
        size_t n, time_t now, int days, uint8_t **out, size_t *outlen)
{
	X509_CRL *crl = NULL;
	ASN1_TIME *t = NULL;
	ASN1_INTEGER *number = NULL;
	AUTHORITY_KEYID *akid = NULL;
	unsigned char *buf = NULL, *p;
	time_t ca_not_after;
	int len;
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if ((revoked == NULL && n > 0) || n > X509_MAX_CRL_ENTRIES)
		return MDM_ERR_INVAL;
	if (days < 1 || days > X509_MAX_CRL_DAYS) {
		log_error("x509: CRL validity of %d days outside 1..%d", days, X509_MAX_CRL_DAYS);
		return MDM_ERR_INVAL;
	}
	if ((rc = check_days(days, now)) != MDM_OK ||
	        (rc = ca_usable(ca, cakey, now, &ca_not_after)) != MDM_OK)
		return rc;
	rc = MDM_ERR_CRYPTO;
	if ((crl = X509_CRL_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_new");
		return MDM_ERR_NOMEM;
	}
	if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_set_version/issuer_name");
		goto out;
	}
	if ((t = ASN1_TIME_set(NULL, now)) == NULL || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
	        ASN1_TIME_set(t, now + (time_t)days * SECS_PER_DAY) == NULL ||
	        X509_CRL_set1_nextUpdate(crl, t) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_set1_lastUpdate/nextUpdate");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = crl_add_revoked(crl, &revoked[i])) != MDM_OK)
			goto out;
	rc = MDM_ERR_CRYPTO;
	if ((akid = AUTHORITY_KEYID_new()) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "AUTHORITY_KEYID_new");
		goto out;
	}
	if ((rc = ca_key_id(ca, &akid->keyid)) != MDM_OK)
		goto out;
	rc = MDM_ERR_CRYPTO;
	if (X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) !=
	        1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_add1_ext_i2d(authorityKeyIdentifier)");
		goto out;
	}
	if ((number = ASN1_INTEGER_new()) == NULL || ASN1_INTEGER_set_int64(number, now) != 1 ||
	        X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, X509V3_ADD_DEFAULT) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_add1_ext_i2d(crlNumber)");
		goto out;
	}
	if (X509_CRL_sort(crl) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_sort");
		goto out;
	}
	if (X509_CRL_sign(crl, cakey, EVP_sha256()) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_sign");
		goto out;
	}
	if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_CRL_verify");
		goto out;
	}
	if ((len = i2d_X509_CRL(crl, NULL)) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_X509_CRL");
		goto out;
	}
	if ((buf = malloc((size_t)len)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	p = buf;
	if (i2d_X509_CRL(crl, &p) != len) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_X509_CRL");
		goto out;
	}
	*out = buf;
	*outlen = (size_t)len;
	buf = NULL;
	rc = MDM_OK;
out:
	free(buf);
	AUTHORITY_KEYID_free(akid);
	ASN1_INTEGER_free(number);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	return rc;
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

/* ---- subject attributes, chains, PKCS#12, server certificates ---- */

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

void x509_certs_free(X509 **certs, size_t n)
{
	if (certs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
	free(certs);
}

mdm_err x509_certs_load_file(const char *path, X509 ***out, size_t *n)
{
	char *buf = NULL, *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen = 0;
	size_t len = 0, count = 0;
	BIO *bio = NULL;
	X509 **certs = NULL;
	mdm_err rc;

	*out = NULL;
	*n = 0;
	if ((rc = x509_file_read(path, X509_MAX_FILE, &buf, &len, NULL)) != MDM_OK)
		return rc;
	rc = MDM_ERR_NOMEM;
	if ((certs = calloc(X509_MAX_CHAIN, sizeof(*certs))) == NULL)
		goto out;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_new_mem_buf");
		goto out;
	}
	rc = MDM_ERR_PARSE;
	for (;;) {
		if (PEM_read_bio(bio, &name, &header, &data, &dlen) != 1) {
			unsigned long e = ERR_peek_last_error();

			if (count > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
			        ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				break;
			}
			x509_ossl_fail(MDM_LOG_ERROR, "PEM_read_bio");
			log_error("x509: %s: no PEM certificates", path);
			goto out;
		}
		if (strcmp(name, PEM_STRING_X509) != 0 || header[0] != '\0') {
			log_error("x509: %s: only CERTIFICATE blocks belong in a chain file", path);
			goto out;
		}
		if (count == X509_MAX_CHAIN) {
			log_error("x509: %s: more than %d certificates", path, X509_MAX_CHAIN);
			rc = MDM_ERR_LIMIT;
			goto out;
		}
		if ((rc = x509_cert_from_der(data, (size_t)dlen, &certs[count])) != MDM_OK)
			goto out;
		rc = MDM_ERR_PARSE;
		count++;
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
	}
	*out = certs;
	*n = count;
	certs = NULL;
	rc = MDM_OK;
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	x509_certs_free(certs, count);
	BIO_free(bio);
	x509_file_free(buf, len);
	return rc;
}

mdm_err x509_issue_server(const X509 *ca, EVP_PKEY *cakey, const char *subject, EVP_PKEY *key,
        int days, time_t now, X509 **out)
{
	static const int ku[] = {KU_BIT_DIGITAL_SIGNATURE};
	X509_NAME *name = NULL;
	X509 *x = NULL;
	time_t ca_not_after, not_after;
	int is_rsa = 0;
	mdm_err rc;

	*out = NULL;
	if (key == NULL)
		return MDM_ERR_INVAL;
	if ((rc = check_days(days, now)) != MDM_OK ||
	        (rc = ca_usable(ca, cakey, now, &ca_not_after)) != MDM_OK)
		return rc;
	if ((rc = issue_key_ok(key, X509_DEFAULT_MIN_RSA_BITS, &is_rsa)) != MDM_OK)
		return rc;
	if ((rc = name_parse(subject, &name)) != MDM_OK)
		return rc;
	not_after = now + (time_t)days * SECS_PER_DAY;
	if (not_after > ca_not_after)
		not_after = ca_not_after;
	if ((rc = cert_new(name, X509_get_subject_name(ca), key, now - CLOCK_SKEW, not_after,
	             &x)) != MDM_OK)
		goto out;
	if ((rc = add_basic_constraints(x, 0)) != MDM_OK ||
	        (rc = add_key_usage(x, ku, sizeof(ku) / sizeof(ku[0]))) != MDM_OK ||
	        (rc = add_eku(x, NID_email_protect)) != MDM_OK || (rc = add_ski(x)) != MDM_OK ||
	        (rc = add_aki(x, ca)) != MDM_OK || (rc = cert_sign(x, cakey)) != MDM_OK)
		goto out;
	if (X509_verify(x, X509_get0_pubkey(ca)) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_verify");
		log_error("x509: the certificate just issued does not verify with the CA");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	*out = x;
	x = NULL;
out:
	X509_NAME_free(name);
	X509_free(x);
	return rc;
}

/*
 * The responder's serial: a function of the CA certificate alone, so that
 * every process (and host) derives the same certificate, and a request
 * addressed to it is recognised without building it.  128 bits of
 * SHA-256, positive (RFC 5280 4.1.2.2); it cannot meet a random serial of
 * x509_issue but by a 2^-128 chance.
 */
static mdm_err responder_serial(const X509 *ca, ASN1_INTEGER **out)
{
	static const char label[] = "mdm SCEP responder serial";
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	BIGNUM *bn = NULL;
	int len;
	mdm_err rc = MDM_ERR_CRYPTO;

	*out = NULL;
	if ((len = i2d_X509(ca, &der)) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_X509");
		return MDM_ERR_CRYPTO;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	        EVP_DigestUpdate(ctx, label, sizeof(label) - 1) != 1 ||
	        EVP_DigestUpdate(ctx, der, (size_t)len) != 1 ||
	        EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_Digest(SHA-256)");
		goto out;
	}
	md[0] = (unsigned char)((md[0] & 0x7f) | 0x40); /* positive, never zero */
	if ((bn = BN_bin2bn(md, 16, NULL)) == NULL ||
	        (*out = BN_to_ASN1_INTEGER(bn, NULL)) == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BN_to_ASN1_INTEGER");
		goto out;
	}
	rc = MDM_OK;
out:
	BN_free(bn);
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return rc;
}

mdm_err x509_scep_responder(const X509 *ca, EVP_PKEY *cakey, X509 **out)
{
	/* Both: Apple devices want one RA that signs and encrypts, or two. */
	static const int ku[] = {KU_BIT_DIGITAL_SIGNATURE, KU_BIT_KEY_ENCIPHERMENT};
	ASN1_INTEGER *serial = NULL;
	X509_NAME *name = NULL;
	X509 *x = NULL;
	mdm_err rc;

	*out = NULL;
	if (ca == NULL || cakey == NULL)
		return MDM_ERR_INVAL;
	/* RFC 8894 3.5.2: requests are enveloped by RSA key transport only. */
	if (EVP_PKEY_get_base_id(cakey) != EVP_PKEY_RSA)
		return MDM_ERR_NOT_FOUND;
	if (!x509_cert_is_ca(ca) || X509_get0_pubkey(ca) == NULL ||
	        EVP_PKEY_eq(cakey, X509_get0_pubkey(ca)) != 1) {
		ERR_clear_error();
		log_error("x509: no SCEP responder: the key does not belong to a CA certificate");
		return MDM_ERR_CONFIG;
	}
	/* Its own name, apart from the CA's: the CA's with one RDN more. */
	if ((name = X509_NAME_dup(X509_get_subject_name(ca))) == NULL ||
	        X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
	                (const unsigned char *)"SCEP responder", -1, -1, 0) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_NAME_add_entry_by_txt");
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((rc = cert_new(name, X509_get_subject_name(ca), cakey, 0, 0, &x)) != MDM_OK ||
	        (rc = responder_serial(ca, &serial)) != MDM_OK)
		goto out;
	rc = MDM_ERR_CRYPTO;
	/* The CA's serial-derived number and its dates: the same bytes every time. */
	if (X509_set_serialNumber(x, serial) != 1 ||
	        X509_set1_notBefore(x, X509_get0_notBefore(ca)) != 1 ||
	        X509_set1_notAfter(x, X509_get0_notAfter(ca)) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_set_serialNumber/notBefore/notAfter");
		goto out;
	}
	/*
	 * No SKI: it would equal the CA's (one key), and clients that sort by
	 * key identifier (certmonger among them) would then see each
	 * certificate as the other's issuer.  The AKI names the CA.
	 */
	if ((rc = add_basic_constraints(x, 0)) != MDM_OK ||
	        (rc = add_key_usage(x, ku, sizeof(ku) / sizeof(ku[0]))) != MDM_OK ||
	        (rc = add_aki(x, ca)) != MDM_OK || (rc = cert_sign(x, cakey)) != MDM_OK)
		goto out;
	*out = x;
	x = NULL;
out:
	ASN1_INTEGER_free(serial);
	X509_NAME_free(name);
	X509_free(x);
	return rc;
}

int x509_scep_responder_named(const X509 *ca, const X509_NAME *issuer, const ASN1_INTEGER *serial)
{
	ASN1_INTEGER *mine = NULL;
	int ok;

	if (ca == NULL || issuer == NULL || serial == NULL ||
	        X509_NAME_cmp(issuer, X509_get_subject_name(ca)) != 0)
		return 0;
	if (responder_serial(ca, &mine) != MDM_OK)
		return 0;
	ok = ASN1_INTEGER_cmp(mine, serial) == 0;
	ASN1_INTEGER_free(mine);
	return ok;
}
