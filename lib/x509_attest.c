/*
 * Apple Managed Device Attestation, the X.509 half (attest.h): the trust
 * store of the Apple Enterprise Attestation Root CA, the x5c path to it,
 * and what Apple's extensions in the leaf state.  attest.c parses the
 * CBOR around the certificates.
 *
 * How Apple encodes the leaf's extensions (checked on a real one,
 * ../shared/vectors/nanoca): the extnValue OCTET STRING holds the value
 * itself, not a further DER wrapping: the serial, UDID, versions, Software
 * Update Device ID and secure boot status as the bare ASCII text, the
 * freshness nonce as its 32 bare bytes; only SIP status and kernel
 * extensions (8.13.1, 8.13.3) hold a DER INTEGER inside.
 */
#include "attest.h"
#include "x509.h"
#include "x509_int.h"
#include "log.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char attest_who[] = "device-attest-01";

#define RULE_DA    "draft-acme-device-attest sec. 5 (apple)"
#define RULE_APPLE "Apple: Managed Device Attestation"
#define ROOT_NAME  "the Apple Enterprise Attestation Root CA"

struct attest_trust {
	X509 **certs;
	size_t n;
	X509_STORE *store; /* the same certificates, built once */
};

/* See x509_chain.c: read-only calls that take X509 * for their cache. */
static X509 *cert_mut(const X509 *c)
{
	return (X509 *)c;
}

/* ---- names for refusals ---- */

/* The CN of name if printable ASCII, else its RFC 2253 text, else "?". */
static void name_cn(const X509_NAME *name, char *out, size_t cap)
{
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);

	if (i >= 0) {
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		const unsigned char *d = ASN1_STRING_get0_data(v);
		int len = ASN1_STRING_length(v), ok = len > 0 && (size_t)len < cap;

		for (int j = 0; ok && j < len; j++)
			ok = d[j] >= 0x20 && d[j] <= 0x7e && d[j] != '"';
		if (ok) {
			memcpy(out, d, (size_t)len);
			out[len] = '\0';
			return;
		}
	}
	if (x509_name_to_str(name, out, cap, 1) != MDM_OK)
		snprintf(out, cap, "?");
}

/* ---- the trust store ---- */

void attest_trust_free(attest_trust *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->store);
	x509_certs_free(t->certs, t->n);
	free(t);
}

/* A root: a CA certificate that is self-issued and verifies with its own key. */
static int cert_is_root(const X509 *c)
{
	EVP_PKEY *pub = X509_get0_pubkey(c);
	int ok = pub != NULL && X509_check_ca(cert_mut(c)) > 0 &&
	        X509_check_issued(cert_mut(c), cert_mut(c)) == X509_V_OK &&
	        X509_verify(cert_mut(c), pub) == 1;

	ERR_clear_error();
	return ok;
}

mdm_err attest_trust_load(const char *pem_path, attest_trust **out)
{
	attest_trust *t = NULL;
	mdm_err rc;

	if (out == NULL)
		return MDM_ERR_INVAL;
	*out = NULL;
	if (pem_path == NULL || *pem_path == '\0') {
		log_error("config: acme_attest_root_file is required for device attestation");
		return MDM_ERR_CONFIG;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return MDM_ERR_NOMEM;
	if ((rc = x509_certs_load_file(pem_path, &t->certs, &t->n)) != MDM_OK) {
		log_error("config: acme_attest_root_file %s cannot be loaded (a PEM file of 1 to "
		          "%d root certificates)",
		        pem_path, X509_MAX_CHAIN);
		rc = rc == MDM_ERR_NOMEM ? rc : MDM_ERR_CONFIG;
		goto out;
	}
	rc = MDM_ERR_CONFIG;
	for (size_t i = 0; i < t->n; i++) {
		if (!cert_is_root(t->certs[i])) {
			char cn[256];

			name_cn(X509_get_subject_name(t->certs[i]), cn, sizeof(cn));
			log_error("config: acme_attest_root_file %s: certificate %zu (%s) is not a "
			          "self-signed CA certificate; only roots belong there",
			        pem_path, i + 1, cn);
			goto out;
		}
	}
	if ((t->store = X509_STORE_new()) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (X509_STORE_add_cert(t->store, t->certs[i]) != 1) {
			x509_ossl_fail(MDM_LOG_ERROR, "X509_STORE_add_cert");
			rc = MDM_ERR_CRYPTO;
			goto out;
		}
	}
	*out = t;
	t = NULL;
	rc = MDM_OK;
out:
	attest_trust_free(t);
	return rc;
}

/* ---- the path ---- */

static void certs_free(X509 **certs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		X509_free(certs[i]);
}

/* Decodes x5c (1..ATTEST_MAX_X5C DER certificates) into certs. */
static MDM_WUR mdm_err x5c_decode(const uint8_t *const *ders, const size_t *lens, size_t n,
        X509 **certs, char *err, size_t errlen)
{
	mdm_err rc;

	if (n == 0)
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        RULE_DA ": x5c is empty; it must start with the attestation certificate");
	if (n > ATTEST_MAX_X5C)
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_LIMIT,
		        RULE_DA ": x5c holds %zu certificates, more than %d", n, ATTEST_MAX_X5C);
	for (size_t i = 0; i < n; i++) {
		if (ders[i] == NULL || lens[i] > ATTEST_MAX_CERT) {
			certs_free(certs, i);
			return mdm_refuse(attest_who, err, errlen, MDM_ERR_LIMIT,
			        RULE_DA ": x5c[%zu] is empty or over %d bytes", i, ATTEST_MAX_CERT);
		}
		if ((rc = x509_cert_from_der(ders[i], lens[i], &certs[i])) != MDM_OK) {
			certs_free(certs, i);
			if (rc == MDM_ERR_NOMEM)
				return rc;
			return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
			        RULE_DA ": x5c[%zu] is not one DER X.509 certificate", i);
		}
	}
	return MDM_OK;
}

/* Why X509_verify_cert refused, in the terms of the rule. */
static MDM_WUR mdm_err chain_refusal(X509_STORE_CTX *ctx, char *err, size_t errlen)
{
	int e = X509_STORE_CTX_get_error(ctx), depth = X509_STORE_CTX_get_error_depth(ctx);
	X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
	char subj[256] = "?", iss[256] = "?";

	if (cur != NULL) {
		name_cn(X509_get_subject_name(cur), subj, sizeof(subj));
		name_cn(X509_get_issuer_name(cur), iss, sizeof(iss));
	}
	switch (e) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		if (depth == 0)
			return mdm_refuse(attest_who, err, errlen, MDM_ERR_AUTH,
			        RULE_DA
			        ": the chain lacks the issuer of the attestation certificate "
			        "\"%s\": the intermediate %s must be in x5c, leading to " ROOT_NAME,
			        subj, iss);
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_AUTH,
		        RULE_DA ": chain does not lead to " ROOT_NAME ": \"%s\" (x5c depth %d) is "
		                "issued by \"%s\", which is not a root of acme_attest_root_file",
		        subj, depth, iss);
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_AUTH,
		        RULE_DA ": chain does not lead to " ROOT_NAME ": it ends at the "
		                "self-signed \"%s\", not a root of acme_attest_root_file",
		        subj);
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_AUTH,
		        "RFC 5280 sec. 4.1.2.5: \"%s\" (x5c depth %d) is %s", subj, depth,
		        e == X509_V_ERR_CERT_HAS_EXPIRED ? "expired" : "not yet valid");
	default:
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_AUTH,
		        RULE_DA ": chain does not lead to " ROOT_NAME ": \"%s\" (x5c depth %d): %s",
		        subj, depth, X509_verify_cert_error_string(e));
	}
}

/* certs[0] through certs[1..n-1] to a root of t at now. */
static MDM_WUR mdm_err chain_verify(const attest_trust *t, X509 *const *certs, size_t n,
        long long now, char *err, size_t errlen)
{
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	mdm_err rc = MDM_ERR_NOMEM;

	if (X509_check_ca(certs[0]) != 0) {
		ERR_clear_error();
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_AUTH,
		        "RFC 5280 sec. 4.2.1.9: the attestation certificate (x5c[0]) is a CA, not "
		        "the device's");
	}
	if ((untrusted = sk_X509_new_null()) == NULL || (ctx = X509_STORE_CTX_new()) == NULL)
		goto out;
	for (size_t i = 1; i < n; i++)
		if (!sk_X509_push(untrusted, certs[i]))
			goto out;
	if (X509_STORE_CTX_init(ctx, t->store, certs[0], untrusted) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_STORE_CTX_init");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	/* Not X509_V_FLAG_X509_STRICT: Apple's leaf has no authorityKeyIdentifier. */
	X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
	X509_STORE_CTX_set_depth(ctx, ATTEST_MAX_X5C);
	if (X509_verify_cert(ctx) == 1)
		rc = MDM_OK;
	else
		rc = chain_refusal(ctx, err, errlen);
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	sk_X509_free(untrusted); /* the certificates stay the caller's */
	return rc;
}

mdm_err attest_check_chain(const attest_trust *t, const uint8_t *const *ders, const size_t *lens,
        size_t n, long long now, char *err, size_t errlen)
{
	X509 *certs[ATTEST_MAX_X5C] = {NULL};
	mdm_err rc;

	if (t == NULL || (n > 0 && (ders == NULL || lens == NULL)))
		return MDM_ERR_INVAL;
	if ((rc = x5c_decode(ders, lens, n, certs, err, errlen)) != MDM_OK)
		return rc;
	rc = chain_verify(t, certs, n, now, err, errlen);
	certs_free(certs, n);
	return rc;
}

/* ---- Apple's extensions ---- */

/* 1.2.840.113635.100.8, the arc of Apple's attestation extensions, in DER. */
static const uint8_t apple_arc[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x63, 0x64, 0x08};

enum apple_ext {
	AX_SERIAL,
	AX_UDID,
	AX_MODEL,
	AX_OS,
	AX_SEPOS,
	AX_LLB,
	AX_NONCE,
	AX_SIP,
	AX_BOOT,
	AX_KEXT,
	AX__MAX
};

enum ax_form { AXF_TEXT, AXF_BYTES, AXF_INT };

static const struct apple_ext_def {
	uint8_t a, b; /* the two arcs after apple_arc */
	const char *oid, *what;
	enum ax_form form;
} apple_exts[AX__MAX] = {
        [AX_SERIAL] = {9, 1, "1.2.840.113635.100.8.9.1", "serial number", AXF_TEXT},
        [AX_UDID] = {9, 2, "1.2.840.113635.100.8.9.2", "UDID", AXF_TEXT},
        [AX_MODEL] = {9, 4, "1.2.840.113635.100.8.9.4", "Software Update Device ID", AXF_TEXT},
        [AX_OS] = {10, 1, "1.2.840.113635.100.8.10.1", "OS version", AXF_TEXT},
        [AX_SEPOS] = {10, 2, "1.2.840.113635.100.8.10.2", "sepOS version", AXF_TEXT},
        [AX_LLB] = {10, 3, "1.2.840.113635.100.8.10.3", "LLB version", AXF_TEXT},
        [AX_NONCE] = {11, 1, "1.2.840.113635.100.8.11.1", "freshness nonce", AXF_BYTES},
        [AX_SIP] = {13, 1, "1.2.840.113635.100.8.13.1", "SIP status", AXF_INT},
        [AX_BOOT] = {13, 2, "1.2.840.113635.100.8.13.2", "secure boot status", AXF_TEXT},
        [AX_KEXT] = {13, 3, "1.2.840.113635.100.8.13.3", "third-party kernel extensions", AXF_INT},
};

/* Which of Apple's extensions obj is, AX__MAX for any other. */
static enum apple_ext apple_ext_of(const ASN1_OBJECT *obj)
{
	const unsigned char *d = OBJ_get0_data(obj);
	size_t len = OBJ_length(obj);

	if (d == NULL || len != sizeof(apple_arc) + 2 || memcmp(d, apple_arc, sizeof(apple_arc)))
		return AX__MAX;
	for (int i = 0; i < AX__MAX; i++)
		if (d[sizeof(apple_arc)] == apple_exts[i].a &&
		        d[sizeof(apple_arc) + 1] == apple_exts[i].b)
			return (enum apple_ext)i;
	return AX__MAX;
}

/* Where a text extension goes in r, and its size. */
static char *text_field(attest_result *r, enum apple_ext x, size_t *cap)
{
	switch (x) {
	case AX_SERIAL:
		*cap = sizeof(r->serial);
		return r->serial;
	case AX_UDID:
		*cap = sizeof(r->udid);
		return r->udid;
	case AX_MODEL:
		*cap = sizeof(r->model);
		return r->model;
	case AX_OS:
		*cap = sizeof(r->os_version);
		return r->os_version;
	case AX_SEPOS:
		*cap = sizeof(r->sepos_version);
		return r->sepos_version;
	case AX_LLB:
		*cap = sizeof(r->llb_version);
		return r->llb_version;
	case AX_BOOT:
		*cap = sizeof(r->secure_boot);
		return r->secure_boot;
	default:
		*cap = 0;
		return NULL;
	}
}

/* A DER INTEGER, the whole of d, into *v (0 or 1 and more: Apple documents 0 and 1). */
static int der_small_int(const uint8_t *d, size_t len, long *v)
{
	const unsigned char *p = d;
	ASN1_INTEGER *ai;
	int64_t x;
	int ok;

	if (len == 0 || len > 16 || (ai = d2i_ASN1_INTEGER(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	ok = p == d + len && ASN1_INTEGER_get_int64(&x, ai) == 1 && x >= 0 && x <= 0x7fffffff;
	ASN1_INTEGER_free(ai);
	ERR_clear_error();
	if (ok)
		*v = (long)x;
	return ok;
}

/* One of Apple's extensions, value d (len bytes), into r. */
static MDM_WUR mdm_err apple_ext_take(
        attest_result *r, enum apple_ext x, const uint8_t *d, size_t len, char *err, size_t errlen)
{
	const struct apple_ext_def *def = &apple_exts[x];
	size_t cap;
	char *out;
	long v;
	int ok;

	switch (def->form) {
	case AXF_TEXT:
		out = text_field(r, x, &cap);
		ok = len > 0 && len < cap;
		for (size_t i = 0; ok && i < len; i++)
			ok = d[i] >= 0x20 && d[i] <= 0x7e;
		if (!ok)
			return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
			        RULE_APPLE ": extension %s (%s) is not printable text of 1 to %zu "
			                   "bytes",
			        def->oid, def->what, cap - 1);
		memcpy(out, d, len);
		out[len] = '\0';
		return MDM_OK;
	case AXF_BYTES:
		if (len == 0 || len > sizeof(r->nonce))
			return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
			        RULE_APPLE ": extension %s (%s) has %zu bytes, not 1 to %zu",
			        def->oid, def->what, len, sizeof(r->nonce));
		memcpy(r->nonce, d, len);
		r->nonce_len = len;
		return MDM_OK;
	default:
		if (!der_small_int(d, len, &v))
			return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
			        RULE_APPLE ": extension %s (%s) is not a DER INTEGER", def->oid,
			        def->what);
		if (x == AX_SIP)
			r->sip_enabled = v == 0; /* 0 enabled, 1 disabled */
		else
			r->kext_allowed = v != 0; /* 0 none, any other: some kinds */
		return MDM_OK;
	}
}

/* The leaf's public key as DER SubjectPublicKeyInfo, malloc'd. */
static MDM_WUR mdm_err spki_dup(const X509 *c, uint8_t **out, size_t *outlen)
{
	X509_PUBKEY *pk = X509_get_X509_PUBKEY(c);
	unsigned char *p;
	int n;

	*out = NULL;
	*outlen = 0;
	if (pk == NULL || (n = i2d_X509_PUBKEY(pk, NULL)) <= 0) {
		x509_ossl_fail(MDM_LOG_WARN, "i2d_X509_PUBKEY");
		return MDM_ERR_PARSE;
	}
	if ((*out = malloc((size_t)n)) == NULL)
		return MDM_ERR_NOMEM;
	p = *out;
	if (i2d_X509_PUBKEY(pk, &p) != n) {
		x509_ossl_fail(MDM_LOG_ERROR, "i2d_X509_PUBKEY");
		free(*out);
		*out = NULL;
		return MDM_ERR_CRYPTO;
	}
	*outlen = (size_t)n;
	return MDM_OK;
}

/* Apple's extensions, the dates and the key of c into r (cleared first). */
static MDM_WUR mdm_err leaf_props(const X509 *c, attest_result *r, char *err, size_t errlen)
{
	unsigned seen = 0;
	time_t t;
	mdm_err rc;

	memset(r, 0, sizeof(*r));
	r->sip_enabled = ATTEST_PROP_ABSENT;
	r->kext_allowed = ATTEST_PROP_ABSENT;
	if (X509_get_extension_flags(cert_mut(c)) & EXFLAG_INVALID)
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 5280 sec. 4.2: the attestation certificate's extensions are malformed "
		        "or duplicated");
	for (int i = 0; i < X509_get_ext_count(c); i++) {
		X509_EXTENSION *ext = X509_get_ext(c, i);
		const ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
		enum apple_ext x = apple_ext_of(X509_EXTENSION_get_object(ext));

		if (x == AX__MAX)
			continue; /* others, Apple's newer ones too, say nothing we report */
		if (seen & (1u << x))
			return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
			        "RFC 5280 sec. 4.2: extension %s appears twice", apple_exts[x].oid);
		seen |= 1u << x;
		if ((rc = apple_ext_take(r, x, ASN1_STRING_get0_data(v),
		             (size_t)ASN1_STRING_length(v), err, errlen)) != MDM_OK)
			return rc;
	}
	if (x509_asn1_time_to_time_t(X509_get0_notBefore(c), &t) != 0)
		r->not_before = (long long)t;
	else
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 5280 sec. 4.1.2.5: the attestation certificate's notBefore is "
		        "unreadable");
	if (x509_asn1_time_to_time_t(X509_get0_notAfter(c), &t) != 0)
		r->not_after = (long long)t;
	else
		return mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
		        "RFC 5280 sec. 4.1.2.5: the attestation certificate's notAfter is "
		        "unreadable");
	if ((rc = spki_dup(c, &r->spki_der, &r->spki_len)) != MDM_OK) {
		if (rc == MDM_ERR_PARSE)
			rc = mdm_refuse(attest_who, err, errlen, MDM_ERR_PARSE,
			        "RFC 5280 sec. 4.1.2.7: the attestation certificate's public key "
			        "is unreadable");
		return rc;
	}
	return MDM_OK;
}

mdm_err attest_leaf_properties(
        const uint8_t *der, size_t len, attest_result *out, char *err, size_t errlen)
{
	X509 *c = NULL;
	mdm_err rc;

	if (out == NULL)
		return MDM_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if ((rc = x509_cert_from_der(der, len, &c)) != MDM_OK) {
		if (rc == MDM_ERR_NOMEM)
			return rc;
		return mdm_refuse(attest_who, err, errlen, rc == MDM_ERR_LIMIT ? rc : MDM_ERR_PARSE,
		        RULE_DA ": the attestation certificate is not one DER X.509 certificate");
	}
	if ((rc = leaf_props(c, out, err, errlen)) != MDM_OK)
		attest_result_free(out);
	X509_free(c);
	return rc;
}

void attest_result_free(attest_result *r)
{
	if (r == NULL)
		return;
	free(r->spki_der);
	free(r->chain_pem);
	memset(r, 0, sizeof(*r));
}

/* ---- the whole check ---- */

/* certs as PEM, in order, one malloc'd string. */
static MDM_WUR mdm_err chain_pem(X509 *const *certs, size_t n, char **out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	mdm_err rc = MDM_ERR_CRYPTO;

	*out = NULL;
	if (bio == NULL) {
		x509_ossl_fail(MDM_LOG_ERROR, "BIO_new");
		return MDM_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (PEM_write_bio_X509(bio, certs[i]) != 1) {
			x509_ossl_fail(MDM_LOG_ERROR, "PEM_write_bio_X509");
			goto out;
		}
	}
	if ((len = BIO_get_mem_data(bio, &data)) <= 0)
		goto out;
	rc = MDM_ERR_NOMEM;
	if ((*out = malloc((size_t)len + 1)) == NULL)
		goto out;
	memcpy(*out, data, (size_t)len);
	(*out)[len] = '\0';
	rc = MDM_OK;
out:
	BIO_free(bio);
	return rc;
}

mdm_err attest_verify_apple(const attest_trust *t, const uint8_t *attobj, size_t len,
        const uint8_t *token, size_t token_len, long long now, attest_result *out, char *err,
        size_t errlen)
{
	X509 *certs[ATTEST_MAX_X5C] = {NULL};
	uint8_t want[ATTEST_NONCE_LEN];
	unsigned int wantlen = 0;
	attest_object o;
	mdm_err rc;

	if (out == NULL)
		return MDM_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (t == NULL || token == NULL || token_len == 0)
		return MDM_ERR_INVAL;
	if ((rc = attest_parse(attobj, len, &o, err, errlen)) != MDM_OK)
		return rc;
	if ((rc = x5c_decode(o.x5c, o.x5c_len, o.n_x5c, certs, err, errlen)) != MDM_OK)
		return rc;
	if ((rc = chain_verify(t, certs, o.n_x5c, now, err, errlen)) != MDM_OK ||
	        (rc = leaf_props(certs[0], out, err, errlen)) != MDM_OK)
		goto out;
	if (EVP_Digest(token, token_len, want, &wantlen, EVP_sha256(), NULL) != 1 ||
	        wantlen != sizeof(want)) {
		x509_ossl_fail(MDM_LOG_ERROR, "EVP_Digest");
		rc = MDM_ERR_CRYPTO;
		goto out;
	}
	if (out->nonce_len == 0) {
		rc = mdm_refuse(attest_who, err, errlen, MDM_ERR_AUTH,
		        RULE_APPLE ": the attestation certificate lacks the freshness nonce "
		                   "(extension 1.2.840.113635.100.8.11.1)");
		goto out;
	}
	if (out->nonce_len != sizeof(want) || CRYPTO_memcmp(out->nonce, want, sizeof(want)) != 0) {
		rc = mdm_refuse(attest_who, err, errlen, MDM_ERR_AUTH,
		        RULE_DA ": the freshness nonce (1.2.840.113635.100.8.11.1) is not "
		                "SHA-256 of this challenge's token");
		goto out;
	}
	rc = chain_pem(certs, o.n_x5c, &out->chain_pem);
out:
	if (rc != MDM_OK)
		attest_result_free(out);
	certs_free(certs, o.n_x5c);
	return rc;
}
