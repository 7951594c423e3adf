/*
 * Certificate paths: device certificates verified against the CA
 * certificates we issue under (current and previous, after renewals and
 * rekeys), device certificates verified against a vendor chain we pin
 * (Apple's device identities, the path built from the pinned certificates
 * only), and PEM files of a chain.  Each refusal is logged once with the
 * certificate's serial and issuer and the rule that failed.
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
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * OpenSSL 3.0 takes X509 * in a few read-only calls (X509_verify and the
 * extension-cache getters) because they fill a cache inside the object;
 * the certificate itself is not changed.  One place says so.
 */
static X509 *cert_mut(const X509 *c)
{
	return (X509 *)c;
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

mdm_err x509_verify_issued_why(const X509 *cert, X509 *const *cas, size_t ncas, time_t now,
        int client_auth, size_t *which, const char **whyp)
{
	enum verify_stage best = VS_NO_ISSUER;
	const char *why = "unknown issuer";

	if (which != NULL)
		*which = 0;
	if (whyp != NULL)
		*whyp = NULL;
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
	if (whyp != NULL)
		*whyp = why;
	return MDM_ERR_AUTH;
}

mdm_err x509_verify_issued(
        const X509 *cert, X509 *const *cas, size_t ncas, time_t now, int client_auth, size_t *which)
{
	char serial[2 * 20 + 1], issuer[256];
	const char *why = NULL;
	mdm_err rc = x509_verify_issued_why(cert, cas, ncas, now, client_auth, which, &why);

	if (rc != MDM_ERR_AUTH)
		return rc;
	if (!x509_serial_to_hex(X509_get0_serialNumber(cert), serial, sizeof(serial)))
		snprintf(serial, sizeof(serial), "?");
	if (x509_name_to_str(X509_get_issuer_name(cert), issuer, sizeof(issuer), 1) != MDM_OK)
		snprintf(issuer, sizeof(issuer), "?");
	log_warn("x509: certificate serial %s from issuer \"%s\" refused: %s", serial, issuer, why);
	return rc;
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

/* ---- public trust (the system's store) ---- */

mdm_err x509_chain_public(X509 *const *chain, size_t n, time_t now, int *out, const char **why)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	STACK_OF(X509) *untrusted = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	*out = 0;
	*why = NULL;
	if (chain == NULL || n == 0 || n > X509_MAX_CHAIN || chain[0] == NULL)
		return MDM_ERR_INVAL;
	if ((store = X509_STORE_new()) == NULL || (ctx = X509_STORE_CTX_new()) == NULL ||
	        (untrusted = sk_X509_new_null()) == NULL)
		goto out;
	for (size_t i = 1; i < n; i++)
		if (chain[i] == NULL || !sk_X509_push(untrusted, chain[i]))
			goto out;
	rc = MDM_ERR_CRYPTO;
	/* SSL_CERT_FILE / SSL_CERT_DIR, else OpenSSL's compiled-in paths. */
	if (X509_STORE_set_default_paths(store) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_STORE_set_default_paths");
		goto out;
	}
	if (X509_STORE_CTX_init(ctx, store, chain[0], untrusted) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_STORE_CTX_init");
		goto out;
	}
	X509_STORE_CTX_set_time(ctx, 0, now);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	X509_STORE_CTX_set_depth(ctx, X509_MAX_CHAIN);
	if (X509_verify_cert(ctx) == 1)
		*out = 1;
	else
		*why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
	rc = MDM_OK;
out:
	ERR_clear_error();
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

/* ---- chain files ---- */

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
		int got =
		        x509_pem_next(bio, count > 0, MDM_LOG_ERROR, &name, &header, &data, &dlen);

		if (got < 0) {
			log_error("x509: %s: no PEM certificates", path);
			goto out;
		}
		if (got == 0)
			break;
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
