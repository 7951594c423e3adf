/*
 * What the CA signs: its own certificate (create, renew, rekey), device
 * identities from CSRs under an issuing policy (key types and sizes, the
 * subjectAltName allow-list), the profile signer's server certificate,
 * the SCEP responder certificate derived from the CA, and CRLs, all
 * signed with SHA-256.  But for the SCEP responder (a serial and dates
 * derived from the CA's), certificates get a random 128-bit serial and
 * are valid from an hour before now, never past the CA.  The CA's lifecycle
 * (the CA certificates kept in the database, renewal and rekey, the
 * per-process CA state) is ca.c's; lib/ca.h says who owns what of the CA.
 */
#include "x509.h"
#include "x509_int.h"
#include "log.h"
#include "mdm_limits.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Certificates we sign start an hour early: clients' clocks are not ours. */
#define CLOCK_SKEW 3600
/* The smallest RSA key the CA itself may have. */
#define CA_MIN_RSA_BITS 2048

/* ---- building certificates ---- */

static MDM_WUR mdm_err check_days(int days, time_t now)
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

/*
 * Parses "/CN=MDM CA/O=Example" (the openssl -subj form, outermost RDN
 * first) into a name.  A value may hold '/' or '\' escaped with '\';
 * multi-valued RDNs ('+') are not supported.  Values are UTF-8; OpenSSL
 * picks the string type per attribute (PrintableString for C).
 */
static MDM_WUR mdm_err name_parse(const char *s, X509_NAME **out)
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

/* 128 random bits as a positive INTEGER (17 DER octets when the top bit is set). */
static MDM_WUR mdm_err serial_random(ASN1_INTEGER **out)
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

static MDM_WUR mdm_err set_time(X509 *x, int which, time_t t)
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
static MDM_WUR mdm_err cert_new(const X509_NAME *subject, const X509_NAME *issuer, EVP_PKEY *pub,
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

static MDM_WUR mdm_err add_ext(X509 *x, int nid, void *value, int critical)
{
	if (X509_add1_ext_i2d(x, nid, value, critical, X509V3_ADD_DEFAULT) != 1) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_add1_ext_i2d");
		log_error("x509: could not add extension %s", OBJ_nid2sn(nid));
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

/* basicConstraints, critical; a CA gets pathLenConstraint 0: it signs end entities only. */
static MDM_WUR mdm_err add_basic_constraints(X509 *x, int ca)
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

static MDM_WUR mdm_err add_key_usage(X509 *x, const int *bits, size_t n)
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
static MDM_WUR mdm_err add_eku(X509 *x, int nid)
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
static MDM_WUR mdm_err key_id_of(const X509 *x, ASN1_OCTET_STRING **out)
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
static MDM_WUR mdm_err ca_key_id(const X509 *ca, ASN1_OCTET_STRING **out)
{
	int crit = -1;

	*out = X509_get_ext_d2i(ca, NID_subject_key_identifier, &crit, NULL);
	if (*out != NULL)
		return MDM_OK;
	ERR_clear_error();
	return key_id_of(ca, out);
}

static MDM_WUR mdm_err add_ski(X509 *x)
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
static MDM_WUR mdm_err add_aki(X509 *x, const X509 *issuer)
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

static MDM_WUR mdm_err cert_sign(X509 *x, EVP_PKEY *key)
{
	if (X509_sign(x, key, EVP_sha256()) <= 0) {
		x509_ossl_fail(MDM_LOG_ERROR, "X509_sign");
		return MDM_ERR_CRYPTO;
	}
	return MDM_OK;
}

/* The CA's own key: RSA of at least CA_MIN_RSA_BITS, or EC. */
static MDM_WUR mdm_err ca_key_ok(EVP_PKEY *key)
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
static MDM_WUR mdm_err ca_build(
        EVP_PKEY *key, const X509_NAME *name, int days, time_t now, X509 **out)
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
static MDM_WUR mdm_err ca_usable(const X509 *ca, EVP_PKEY *cakey, time_t now, time_t *not_after)
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
static MDM_WUR mdm_err issue_key_ok(EVP_PKEY *pub, int min_bits, int *is_rsa)
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
static MDM_WUR mdm_err csr_sans(X509_REQ *csr, GENERAL_NAMES **out)
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

/* What an end-entity certificate we issue is made of; ee_issue does the rest. */
struct ee_profile {
	const X509_NAME *subject;
	EVP_PKEY *pub;
	const int *ku; /* keyUsage bits */
	size_t nku;
	int eku;             /* the one extendedKeyUsage purpose */
	GENERAL_NAMES *sans; /* NULL for none */
};

/*
 * An end-entity certificate for p under ca, valid now - 1 h .. now + days
 * but never past ca_not_after: basicConstraints cA FALSE, keyUsage,
 * extendedKeyUsage, SKI, AKI and the SANs, signed with cakey, checked
 * with the CA certificate.
 */
static MDM_WUR mdm_err ee_issue(const X509 *ca, EVP_PKEY *cakey, time_t ca_not_after,
        const struct ee_profile *p, int days, time_t now, X509 **out)
{
	X509 *x = NULL;
	time_t not_after;
	mdm_err rc;

	*out = NULL;
	/* Never beyond the CA: a certificate outliving its issuer cannot be verified. */
	not_after = now + (time_t)days * SECS_PER_DAY;
	if (not_after > ca_not_after)
		not_after = ca_not_after;
	if ((rc = cert_new(p->subject, X509_get_subject_name(ca), p->pub, now - CLOCK_SKEW,
	             not_after, &x)) != MDM_OK)
		goto out;
	if ((rc = add_basic_constraints(x, 0)) != MDM_OK ||
	        (rc = add_key_usage(x, p->ku, p->nku)) != MDM_OK ||
	        (rc = add_eku(x, p->eku)) != MDM_OK || (rc = add_ski(x)) != MDM_OK ||
	        (rc = add_aki(x, ca)) != MDM_OK)
		goto out;
	if (p->sans != NULL && (rc = add_ext(x, NID_subject_alt_name, p->sans, 0)) != MDM_OK)
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
	X509_free(x);
	return rc;
}

mdm_err x509_issue(const X509 *ca, EVP_PKEY *cakey, X509_REQ *csr,
        const struct x509_issue_policy *policy, time_t now, X509 **out)
{
	/* EC keys get the first alone: keyEncipherment is for RSA (RFC 8813 2). */
	static const int ku[] = {KU_BIT_DIGITAL_SIGNATURE, KU_BIT_KEY_ENCIPHERMENT};
	struct ee_profile p;
	const X509_NAME *subject;
	GENERAL_NAMES *sans = NULL;
	EVP_PKEY *pub;
	time_t ca_not_after;
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
	p.subject = subject;
	p.pub = pub;
	p.ku = ku;
	p.nku = is_rsa ? 2 : 1;
	p.eku = NID_client_auth;
	p.sans = sans;
	rc = ee_issue(ca, cakey, ca_not_after, &p, policy->days, now, out);
	GENERAL_NAMES_free(sans);
	return rc;
}

/* ---- server certificates and the SCEP responder ---- */

mdm_err x509_issue_server(const X509 *ca, EVP_PKEY *cakey, const char *subject, EVP_PKEY *key,
        int days, time_t now, X509 **out)
{
	static const int ku[] = {KU_BIT_DIGITAL_SIGNATURE};
	struct ee_profile p;
	X509_NAME *name = NULL;
	time_t ca_not_after;
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
	p.subject = name;
	p.pub = key;
	p.ku = ku;
	p.nku = sizeof(ku) / sizeof(ku[0]);
	p.eku = NID_email_protect;
	p.sans = NULL;
	rc = ee_issue(ca, cakey, ca_not_after, &p, days, now, out);
	X509_NAME_free(name);
	return rc;
}

/*
 * The responder's serial: a function of the CA certificate alone, so that
 * every process (and host) derives the same certificate, and a request
 * addressed to it is recognised without building it.  128 bits of
 * SHA-256, positive (RFC 5280 4.1.2.2); it cannot meet a random serial of
 * x509_issue but by a 2^-128 chance.
 */
static MDM_WUR mdm_err responder_serial(const X509 *ca, ASN1_INTEGER **out)
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

/* ---- CRL ---- */

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

static MDM_WUR mdm_err crl_add_revoked(X509_CRL *crl, const struct x509_revoked *r)
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
