/*
 * What the x509 CA signs: its own certificate (profile, subject syntax,
 * validity past 2049, renew and rekey), device identities (profile, the
 * SCEP responder, validity capped to the CA, refusals, the SAN
 * allow-list) and CRLs, each checked by the openssl command line as well.
 */
#include "x509_testutil.h"

#include <openssl/bn.h>
#include <openssl/objects.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ext_critical(const X509 *c, int nid)
{
	int i = X509_get_ext_by_NID(c, nid, -1);

	ck_assert_int_ge(i, 0);
	return X509_EXTENSION_get_critical(X509_get_ext(c, i));
}

static void assert_time(const ASN1_TIME *t, time_t want)
{
	ck_assert_int_eq(ASN1_TIME_cmp_time_t(t, want), 0);
}

/* ---- the CA ---- */

START_TEST(ca_create_profile)
{
	EVP_PKEY *k = xt_load_key("ca.key");
	X509 *ca = xt_ca_new(k, NOW, 3650);
	struct x509_info info;
	ASN1_OCTET_STRING *ski;
	AUTHORITY_KEYID *aki;
	BASIC_CONSTRAINTS *bc;
	const ASN1_INTEGER *serial = X509_get0_serialNumber(ca);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char dir[64], path[128], out[4096];
	int crit;

	ck_assert_int_eq(X509_get_version(ca), X509_VERSION_3);
	ck_assert_int_eq(X509_get_signature_nid(ca), NID_sha256WithRSAEncryption);
	ck_assert_int_eq(X509_verify(ca, k), 1);
	/* Serial: positive, 128 random bits (16 or 17 octets with the sign byte). */
	ck_assert_int_eq(ASN1_STRING_type(serial), V_ASN1_INTEGER);
	ck_assert_int_le(ASN1_STRING_length(serial), 16);
	ck_assert_int_ge(ASN1_STRING_length(serial), 12);
	/* basicConstraints critical cA, pathLen 0. */
	ck_assert_ptr_nonnull(bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL));
	ck_assert_int_eq(crit, 1);
	ck_assert(bc->ca);
	ck_assert_int_eq(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	/* keyUsage critical: certmonger wants digitalSignature on the CertRep signer. */
	ck_assert_uint_eq(
	        X509_get_key_usage(ca), KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ck_assert_int_eq(ext_critical(ca, NID_key_usage), 1);
	ck_assert_int_lt(X509_get_ext_by_NID(ca, NID_ext_key_usage, -1), 0);
	/* SKI is SHA-1 of the key; a root's AKI is its SKI. */
	ck_assert_int_eq(X509_pubkey_digest(ca, EVP_sha1(), md, &mdlen), 1);
	ck_assert_ptr_nonnull(ski = X509_get_ext_d2i(ca, NID_subject_key_identifier, NULL, NULL));
	ck_assert_int_eq(ASN1_STRING_length(ski), (int)mdlen);
	ck_assert_mem_eq(ASN1_STRING_get0_data(ski), md, mdlen);
	ck_assert_ptr_nonnull(aki = X509_get_ext_d2i(ca, NID_authority_key_identifier, NULL, NULL));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(aki->keyid, ski), 0);
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(aki);
	/* Validity: an hour back for clock skew, days forward. */
	assert_time(X509_get0_notBefore(ca), NOW - 3600);
	assert_time(X509_get0_notAfter(ca), NOW + 3650 * DAY);
	/* info. */
	ck_assert_int_eq(x509_cert_info(ca, &info), MDM_OK);
	ck_assert_str_eq(info.subject, "O=Example,CN=MDM Test CA");
	ck_assert_str_eq(info.issuer, info.subject);
	ck_assert_int_eq(info.not_before, NOW - 3600);
	ck_assert_int_eq(info.not_after, NOW + 3650 * DAY);
	ck_assert_int_eq(info.is_ca, 1);
	ck_assert_uint_eq(strlen(info.sha256), 64);
	ck_assert(info.serial[0] != '0' &&
	        strspn(info.serial, "0123456789ABCDEF") == strlen(info.serial));
	ck_assert_int_eq(x509_key_matches_cert(k, ca), 1);
	/* An independent party agrees: self-signed root verifies, fingerprint and serial match. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	xt_write_pem(path, ca);
	ck_assert_int_eq(ts_run(out, sizeof(out), "openssl verify -attime %lld -CAfile '%s' '%s'",
	                         (long long)NOW, path, path),
	        0);
	ck_assert_int_eq(
	        ts_run(out, sizeof(out),
	                "openssl x509 -in '%s' -noout -fingerprint -sha256 -serial | tr -d :",
	                path),
	        0);
	{
		char want[128], fp_uc[X509_FP_HEX_LEN + 1];
		size_t i;

		/* openssl prints upper case, and whole octets: at most one leading zero. */
		for (i = 0; info.sha256[i] != '\0'; i++)
			fp_uc[i] = (char)(info.sha256[i] >= 'a' ? info.sha256[i] - 32
			                                        : info.sha256[i]);
		fp_uc[i] = '\0';
		snprintf(want, sizeof(want), "sha256 Fingerprint=%s\n", fp_uc);
		ck_assert_msg(strstr(out, want) != NULL, "%s vs %s", out, want);
		snprintf(want, sizeof(want), "serial=%s%s\n", strlen(info.serial) % 2 ? "0" : "",
		        info.serial);
		ck_assert_msg(strstr(out, want) != NULL, "%s vs %s", out, want);
	}
	ck_assert_int_eq(ts_run(out, sizeof(out), "openssl x509 -in '%s' -noout -text", path), 0);
	ck_assert(strstr(out, "CA:TRUE, pathlen:0") != NULL);
	ck_assert(strstr(out, "Digital Signature, Certificate Sign, CRL Sign") != NULL);
	ts_tmpdir_done(dir);
	x509_cert_free(ca);
	x509_key_free(k);
}
END_TEST

START_TEST(ca_create_subject_and_refusals)
{
	EVP_PKEY *k = xt_load_key("ca.key"), *small = xt_load_key("small.key"),
	         *ec = xt_load_key("ec256.key");
	X509 *ca = (X509 *)1;
	struct x509_info info;
	char longcn[80];

	ck_assert_int_eq(
	        x509_ca_create(k, "/C=DE/O=A\\/B \\\\ C/OU=Dept/CN=Root CA", 10, NOW, &ca), MDM_OK);
	ck_assert_int_eq(x509_cert_info(ca, &info), MDM_OK);
	ck_assert_str_eq(info.subject, "CN=Root CA,OU=Dept,O=A/B \\\\ C,C=DE");
	x509_cert_free(ca);
	/* UTF-8 values. */
	ck_assert_int_eq(
	        x509_ca_create(k, "/CN=Zertifizierungsstelle M\xc3\xbcnchen", 10, NOW, &ca),
	        MDM_OK);
	x509_cert_free(ca);
	/* EC CA keys are fine. */
	ck_assert_int_eq(x509_ca_create(ec, "/CN=EC CA", 10, NOW, &ca), MDM_OK);
	ck_assert_int_eq(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);
	x509_cert_free(ca);
	log_set_level(MDM_LOG__MAX);
	memset(longcn, 'x', sizeof(longcn));
	memcpy(longcn, "/CN=", 4);
	longcn[sizeof(longcn) - 1] = '\0';
	{
		static const char *const bad[] = {
		        "CN=x",      /* RFC 2253 form: not this syntax */
		        "",          /* empty */
		        "/",         /* no attribute */
		        "/CN",       /* no '=' */
		        "/CN=",      /* empty value */
		        "/CN=a/",    /* empty trailing RDN */
		        "/XX=y",     /* unknown type */
		        "/cn=y",     /* types are case-sensitive short names */
		        "/C=USA",    /* countryName is two letters */
		        "/CN=a\\q",  /* unknown escape */
		        "/CN=a\nb",  /* control character */
		        "/CN=\xc3(", /* bad UTF-8 */
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			ca = (X509 *)1;
			ck_assert_msg(x509_ca_create(k, bad[i], 10, NOW, &ca) == MDM_ERR_INVAL,
			        "%s", bad[i]);
			ck_assert_ptr_null(ca);
		}
	}
	ck_assert_int_eq(x509_ca_create(k, longcn, 10, NOW, &ca), MDM_ERR_INVAL); /* CN > 64 */
	ck_assert_int_eq(x509_ca_create(k, NULL, 10, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(k, "/CN=x", 0, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(k, "/CN=x", X509_MAX_DAYS + 1, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(k, "/CN=x", 10, 0, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(small, "/CN=x", 10, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_ca_create(NULL, "/CN=x", 10, NOW, &ca), MDM_ERR_INVAL);
	ck_assert_ptr_null(ca);
	x509_key_free(ec);
	x509_key_free(small);
	x509_key_free(k);
}
END_TEST

START_TEST(ca_validity_past_2049)
{
	EVP_PKEY *k = xt_load_key("ca.key");
	X509 *ca = xt_ca_new(k, NOW, X509_MAX_DAYS);
	struct x509_info info;

	/* GeneralizedTime from 2050 on (RFC 5280 4.1.2.5), read back exactly. */
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_notAfter(ca)), V_ASN1_GENERALIZEDTIME);
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_notBefore(ca)), V_ASN1_UTCTIME);
	ck_assert_int_eq(x509_cert_info(ca, &info), MDM_OK);
	ck_assert_int_eq(info.not_after, NOW + (time_t)X509_MAX_DAYS * DAY);
	x509_cert_free(ca);
	x509_key_free(k);
}
END_TEST

START_TEST(ca_renew_and_rekey)
{
	EVP_PKEY *k1 = xt_load_key("ca.key"), *k2 = xt_load_key("ca2.key"),
	         *dk = xt_load_key("device.key");
	X509 *old = xt_ca_new(k1, NOW - 300 * DAY, 365), *renewed = NULL, *rekeyed = NULL, *dev_old,
	     *dev_new, *cas[2];
	struct x509_info io, ir, ik;
	size_t which = 99;
	ASN1_OCTET_STRING *ski_old, *ski_new;
	char dir[64], path[128], path2[128], out[4096];

	ck_assert_int_eq(x509_ca_next(old, k1, 730, NOW, &renewed), MDM_OK);
	ck_assert_int_eq(x509_ca_next(old, k2, 730, NOW, &rekeyed), MDM_OK);
	ck_assert_int_eq(x509_cert_info(old, &io), MDM_OK);
	ck_assert_int_eq(x509_cert_info(renewed, &ir), MDM_OK);
	ck_assert_int_eq(x509_cert_info(rekeyed, &ik), MDM_OK);
	/* Renewal: same subject and key, new serial and validity. */
	ck_assert_str_eq(ir.subject, io.subject);
	ck_assert_str_eq(ir.issuer, io.subject);
	ck_assert_int_eq(x509_cert_same_key(old, renewed), 1);
	ck_assert_str_ne(ir.serial, io.serial);
	ck_assert_int_eq(ir.not_before, NOW - 3600);
	ck_assert_int_eq(ir.not_after, NOW + 730 * DAY);
	ck_assert_int_eq(ir.is_ca, 1);
	/* Rekey: same subject, new key, the SKI follows the key. */
	ck_assert_str_eq(ik.subject, io.subject);
	ck_assert_int_eq(x509_cert_same_key(old, rekeyed), 0);
	{
		char ko[X509_FP_HEX_LEN + 1], kr[X509_FP_HEX_LEN + 1], kk[X509_FP_HEX_LEN + 1];

		ck_assert_int_eq(x509_cert_key_sha256(old, ko), MDM_OK);
		ck_assert_int_eq(x509_cert_key_sha256(renewed, kr), MDM_OK);
		ck_assert_int_eq(x509_cert_key_sha256(rekeyed, kk), MDM_OK);
		ck_assert_str_eq(ko, kr);
		ck_assert_str_ne(ko, kk);
	}
	ck_assert_int_eq(x509_key_matches_cert(k2, rekeyed), 1);
	ck_assert_int_eq(x509_key_matches_cert(k1, rekeyed), 0);
	ski_old = X509_get_ext_d2i(old, NID_subject_key_identifier, NULL, NULL);
	ski_new = X509_get_ext_d2i(rekeyed, NID_subject_key_identifier, NULL, NULL);
	ck_assert_int_ne(ASN1_OCTET_STRING_cmp(ski_old, ski_new), 0);
	ASN1_OCTET_STRING_free(ski_old);
	ski_old = X509_get_ext_d2i(renewed, NID_subject_key_identifier, NULL, NULL);
	ck_assert_ptr_nonnull(ski_old);
	ASN1_OCTET_STRING_free(ski_old);
	ASN1_OCTET_STRING_free(ski_new);
	/* A device certificate issued by the old CA still verifies with [new, old]. */
	dev_old = xt_issue(old, k1, dk, NOW - 10 * DAY);
	dev_new = xt_issue(rekeyed, k2, dk, NOW);
	cas[0] = rekeyed;
	cas[1] = old;
	ck_assert_int_eq(x509_verify_issued(dev_old, cas, 2, NOW, 1, &which), MDM_OK);
	ck_assert_uint_eq(which, 1);
	ck_assert_int_eq(x509_verify_issued(dev_new, cas, 2, NOW, 1, &which), MDM_OK);
	ck_assert_uint_eq(which, 0);
	/* And after a renewal, the renewed certificate alone vouches for it (same key). */
	ck_assert_int_eq(x509_verify_issued(dev_old, &renewed, 1, NOW, 1, &which), MDM_OK);
	/* But the rekeyed CA alone does not. */
	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_verify_issued(dev_old, &rekeyed, 1, NOW, 1, &which), MDM_ERR_AUTH);
	/* Once the old CA has expired, neither does the list (the device cert was capped to it). */
	ck_assert_int_eq(
	        x509_verify_issued(dev_old, cas, 2, NOW + 100 * DAY, 1, &which), MDM_ERR_AUTH);
	/* openssl agrees: the old device cert chains to the old root only. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(path, sizeof(path), "%s/old.pem", dir);
	xt_write_pem(path, old);
	snprintf(path2, sizeof(path2), "%s/dev.pem", dir);
	xt_write_pem(path2, dev_old);
	ck_assert_int_eq(ts_run(out, sizeof(out), "openssl verify -attime %lld -CAfile '%s' '%s'",
	                         (long long)NOW, path, path2),
	        0);
	snprintf(path, sizeof(path), "%s/new.pem", dir);
	xt_write_pem(path, rekeyed);
	ck_assert_int_ne(ts_run(out, sizeof(out), "openssl verify -attime %lld -CAfile '%s' '%s'",
	                         (long long)NOW, path, path2),
	        0);
	ts_tmpdir_done(dir);
	/* x509_ca_next wants a CA. */
	{
		X509 *none = (X509 *)1;

		ck_assert_int_eq(x509_ca_next(dev_new, k1, 10, NOW, &none), MDM_ERR_INVAL);
		ck_assert_ptr_null(none);
		ck_assert_int_eq(x509_ca_next(NULL, k1, 10, NOW, &none), MDM_ERR_INVAL);
	}
	x509_cert_free(renewed);
	x509_cert_free(dev_old);
	x509_cert_free(dev_new);
	x509_cert_free(old);
	x509_cert_free(rekeyed);
	x509_key_free(dk);
	x509_key_free(k2);
	x509_key_free(k1);
}
END_TEST

/* ---- issuing ---- */

START_TEST(issue_profile_and_openssl_verify)
{
	EVP_PKEY *cak = xt_load_key("ca.key"), *dk = xt_load_key("device.key");
	X509 *ca = xt_ca_new(cak, NOW - DAY, 3650), *c = NULL;
	struct req_opts o = {.cn = "device-1", .challenge = "pw"};
	X509_REQ *csr = xt_csr_new(dk, &o);
	struct x509_info info;
	BASIC_CONSTRAINTS *bc;
	EXTENDED_KEY_USAGE *eku;
	AUTHORITY_KEYID *aki;
	ASN1_OCTET_STRING *ca_ski, *ski;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char dir[64], capath[128], path[128], out[8192];
	size_t which = 99;
	int crit;

	ck_assert_int_eq(x509_issue(ca, cak, csr, &xt_default_policy, NOW, &c), MDM_OK);
	ck_assert_int_eq(X509_get_version(c), X509_VERSION_3);
	ck_assert_int_eq(X509_get_signature_nid(c), NID_sha256WithRSAEncryption);
	ck_assert_int_eq(X509_verify(c, X509_get0_pubkey(ca)), 1);
	ck_assert_int_eq(
	        X509_NAME_cmp(X509_get_subject_name(c), X509_REQ_get_subject_name(csr)), 0);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(ca)), 0);
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(c), dk), 1);
	ck_assert_int_le(ASN1_STRING_length(X509_get0_serialNumber(c)), 16);
	ck_assert_int_eq(ASN1_STRING_type(X509_get0_serialNumber(c)), V_ASN1_INTEGER);
	/* keyUsage critical digitalSignature + keyEncipherment; EKU clientAuth only. */
	ck_assert_uint_eq(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(ext_critical(c, NID_key_usage), 1);
	ck_assert_ptr_nonnull(eku = X509_get_ext_d2i(c, NID_ext_key_usage, &crit, NULL));
	ck_assert_int_eq(sk_ASN1_OBJECT_num(eku), 1);
	ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	ck_assert_ptr_nonnull(bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL));
	ck_assert(!bc->ca);
	ck_assert_int_eq(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	/* SKI of the device key; AKI = the CA's SKI. */
	ck_assert_int_eq(X509_pubkey_digest(c, EVP_sha1(), md, &mdlen), 1);
	ck_assert_ptr_nonnull(ski = X509_get_ext_d2i(c, NID_subject_key_identifier, NULL, NULL));
	ck_assert_mem_eq(ASN1_STRING_get0_data(ski), md, mdlen);
	ck_assert_ptr_nonnull(
	        ca_ski = X509_get_ext_d2i(ca, NID_subject_key_identifier, NULL, NULL));
	ck_assert_ptr_nonnull(aki = X509_get_ext_d2i(c, NID_authority_key_identifier, NULL, NULL));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(aki->keyid, ca_ski), 0);
	ASN1_OCTET_STRING_free(ski);
	ASN1_OCTET_STRING_free(ca_ski);
	AUTHORITY_KEYID_free(aki);
	/* No SAN unless asked; no challengePassword leaks into the certificate. */
	ck_assert_int_lt(X509_get_ext_by_NID(c, NID_subject_alt_name, -1), 0);
	ck_assert_int_eq(X509_get_ext_count(c), 5);
	/* info. */
	ck_assert_int_eq(x509_cert_info(c, &info), MDM_OK);
	ck_assert_str_eq(info.subject, "CN=device-1,O=Test");
	ck_assert_str_eq(info.issuer, "O=Example,CN=MDM Test CA");
	ck_assert_int_eq(info.not_before, NOW - 3600);
	ck_assert_int_eq(info.not_after, NOW + 365 * DAY);
	ck_assert_int_eq(info.is_ca, 0);
	/* Ours accepts it, for TLS client authentication. */
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, &which), MDM_OK);
	ck_assert_uint_eq(which, 0);
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 0, NULL), MDM_OK);
	/* openssl, independently, with the sslclient purpose. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(capath, sizeof(capath), "%s/ca.pem", dir);
	snprintf(path, sizeof(path), "%s/dev.pem", dir);
	xt_write_pem(capath, ca);
	xt_write_pem(path, c);
	ck_assert_int_eq(ts_run(out, sizeof(out),
	                         "openssl verify -x509_strict -purpose sslclient -attime %lld "
	                         "-CAfile '%s' '%s'",
	                         (long long)NOW, capath, path),
	        0);
	ck_assert_int_ne(ts_run(out, sizeof(out), "openssl verify -attime %lld -CAfile '%s' '%s'",
	                         (long long)(NOW + 366 * DAY), capath, path),
	        0);
	ck_assert_int_eq(ts_run(out, sizeof(out), "openssl x509 -in '%s' -noout -text", path), 0);
	ck_assert(strstr(out, "TLS Web Client Authentication") != NULL);
	ck_assert(strstr(out, "Digital Signature, Key Encipherment") != NULL);
	ck_assert(strstr(out, "CA:FALSE") != NULL);
	ts_tmpdir_done(dir);
	x509_csr_free(csr);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(dk);
	x509_key_free(cak);
}
END_TEST

/*
 * The SCEP responder of a CA without an RA (x509_scep_responder): the CA's
 * key under an end-entity certificate the CA issued, the same bytes every
 * time, recognised by IssuerAndSerialNumber alone; none for an EC CA.
 */
START_TEST(scep_responder_profile)
{
	EVP_PKEY *cak = xt_load_key("ca.key"), *ec = xt_load_key("ec256.key"),
	         *other = xt_load_key("ca2.key");
	X509 *ca = xt_ca_new(cak, NOW - DAY, 3650), *ca2 = xt_ca_new(cak, NOW - DAY, 3650);
	X509 *ecca = xt_ca_new(ec, NOW - DAY, 3650), *r = NULL, *again = NULL;
	BASIC_CONSTRAINTS *bc;
	AUTHORITY_KEYID *aki;
	ASN1_OCTET_STRING *ca_ski;
	unsigned char *d1 = NULL, *d2 = NULL;
	char dir[64], capath[128], path[128], out[8192];
	int n1, n2, crit;

	ck_assert_int_eq(x509_scep_responder(ca, cak, &r), MDM_OK);
	ck_assert_int_eq(X509_get_version(r), X509_VERSION_3);
	ck_assert_int_eq(X509_get_signature_nid(r), NID_sha256WithRSAEncryption);
	ck_assert_int_eq(X509_verify(r, X509_get0_pubkey(ca)), 1);
	ck_assert_int_eq(X509_check_issued(ca, r), X509_V_OK);
	/* The CA's key, its own name (the CA's and OU=SCEP responder), the CA's dates. */
	ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(r), X509_get0_pubkey(ca)), 1);
	ck_assert_int_ne(X509_NAME_cmp(X509_get_subject_name(r), X509_get_subject_name(ca)), 0);
	ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(r), X509_get_subject_name(ca)), 0);
	ck_assert_int_eq(X509_NAME_entry_count(X509_get_subject_name(r)),
	        X509_NAME_entry_count(X509_get_subject_name(ca)) + 1);
	ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notBefore(r), X509_get0_notBefore(ca)), 0);
	ck_assert_int_eq(ASN1_TIME_compare(X509_get0_notAfter(r), X509_get0_notAfter(ca)), 0);
	ck_assert_int_ne(
	        ASN1_INTEGER_cmp(X509_get0_serialNumber(r), X509_get0_serialNumber(ca)), 0);
	/*
	 * An end entity that signs and encrypts: Apple devices take such an
	 * RA for both (SecSCEPValidateCACertMessage); keyEncipherment alone
	 * is an invalid RA response to them.
	 */
	ck_assert_uint_eq(X509_get_key_usage(r), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	ck_assert_int_eq(ext_critical(r, NID_key_usage), 1);
	ck_assert_ptr_nonnull(bc = X509_get_ext_d2i(r, NID_basic_constraints, &crit, NULL));
	ck_assert(!bc->ca);
	ck_assert_int_eq(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	ck_assert_int_eq(X509_check_ca(r), 0);
	/* AKI: the CA's SKI; no SKI of its own (it would be the CA's), no EKU. */
	ck_assert_ptr_nonnull(
	        ca_ski = X509_get_ext_d2i(ca, NID_subject_key_identifier, NULL, NULL));
	ck_assert_ptr_nonnull(aki = X509_get_ext_d2i(r, NID_authority_key_identifier, NULL, NULL));
	ck_assert_int_eq(ASN1_OCTET_STRING_cmp(aki->keyid, ca_ski), 0);
	ASN1_OCTET_STRING_free(ca_ski);
	AUTHORITY_KEYID_free(aki);
	ck_assert_int_lt(X509_get_ext_by_NID(r, NID_subject_key_identifier, -1), 0);
	ck_assert_int_lt(X509_get_ext_by_NID(r, NID_ext_key_usage, -1), 0);
	ck_assert_int_eq(X509_get_ext_count(r), 3);
	/* Every process derives the same bytes (certmonger compares GetCACert answers). */
	ck_assert_int_eq(x509_scep_responder(ca, cak, &again), MDM_OK);
	n1 = i2d_X509(r, &d1);
	n2 = i2d_X509(again, &d2);
	ck_assert_int_gt(n1, 0);
	ck_assert_int_eq(n1, n2);
	ck_assert_mem_eq(d1, d2, (size_t)n1);
	OPENSSL_free(d1);
	OPENSSL_free(d2);
	x509_cert_free(again);
	again = NULL;
	/* Named by its IssuerAndSerialNumber, and only by it. */
	ck_assert_int_eq(
	        x509_scep_responder_named(ca, X509_get_issuer_name(r), X509_get0_serialNumber(r)),
	        1);
	ck_assert_int_eq(
	        x509_scep_responder_named(ca, X509_get_issuer_name(ca), X509_get0_serialNumber(ca)),
	        0);
	ck_assert_int_eq(
	        x509_scep_responder_named(ca2, X509_get_issuer_name(r), X509_get0_serialNumber(r)),
	        0);
	ck_assert_int_eq(
	        x509_scep_responder_named(ca, X509_get_subject_name(r), X509_get0_serialNumber(r)),
	        0);
	ck_assert_int_eq(x509_scep_responder_named(ca, NULL, X509_get0_serialNumber(r)), 0);
	/* A renewed CA (same key, new certificate) has another responder. */
	ck_assert_int_eq(x509_scep_responder(ca2, cak, &again), MDM_OK);
	ck_assert_int_ne(X509_cmp(again, r), 0);
	x509_cert_free(again);
	again = NULL;
	/* openssl, independently: it chains to the CA. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(capath, sizeof(capath), "%s/ca.pem", dir);
	snprintf(path, sizeof(path), "%s/responder.pem", dir);
	xt_write_pem(capath, ca);
	xt_write_pem(path, r);
	ck_assert_int_eq(ts_run(out, sizeof(out),
	                         "openssl verify -x509_strict -attime %lld "
	                         "-CAfile '%s' '%s'",
	                         (long long)NOW, capath, path),
	        0);
	ts_tmpdir_done(dir);
	/* Refused: an EC CA (no key transport), another key, no CA. */
	ck_assert_int_eq(x509_scep_responder(ecca, ec, &again), MDM_ERR_NOT_FOUND);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(x509_scep_responder(ca, other, &again), MDM_ERR_CONFIG);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(x509_scep_responder(r, cak, &again), MDM_ERR_CONFIG);
	ck_assert_ptr_null(again);
	ck_assert_int_eq(x509_scep_responder(NULL, cak, &again), MDM_ERR_INVAL);
	x509_cert_free(r);
	x509_cert_free(ca);
	x509_cert_free(ca2);
	x509_cert_free(ecca);
	x509_key_free(cak);
	x509_key_free(ec);
	x509_key_free(other);
}
END_TEST

START_TEST(issue_validity_capped_to_ca)
{
	EVP_PKEY *cak = xt_load_key("ca.key"), *dk = xt_load_key("device.key");
	X509 *ca = xt_ca_new(cak, NOW, 30), *c = xt_issue(ca, cak, dk, NOW);
	struct x509_info ci, ii;

	ck_assert_int_eq(x509_cert_info(ca, &ci), MDM_OK);
	ck_assert_int_eq(x509_cert_info(c, &ii), MDM_OK);
	ck_assert_int_eq(ii.not_after, ci.not_after);
	ck_assert_int_eq(ii.not_before, NOW - 3600);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(dk);
	x509_key_free(cak);
}
END_TEST

START_TEST(issue_refusals)
{
	EVP_PKEY *cak = xt_load_key("ca.key"), *other = xt_load_key("ca2.key"),
	         *dk = xt_load_key("device.key"), *small = xt_load_key("small.key"),
	         *ec = xt_load_key("ec256.key"), *ec521 = xt_load_key("ec521.key"),
	         *ed = xt_load_key("ed25519.key");
	X509 *ca = xt_ca_new(cak, NOW, 3650), *c = (X509 *)1, *dev;
	struct req_opts o = {.cn = "device-1"}, empty = {.cn = NULL};
	struct x509_issue_policy p = xt_default_policy;
	X509_REQ *csr;

	xt_logcap_start();
	/* 1024-bit RSA under the policy's 2048: forbidden. */
	csr = xt_csr_new(small, &o);
	ck_assert_int_eq(x509_csr_rsa_bits(csr), 1024);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_FORBIDDEN);
	ck_assert_ptr_null(c);
	ck_assert(xt_logcap_take("1024 bits"));
	p.min_rsa_bits = 0; /* the default is 2048 too */
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_FORBIDDEN);
	p.min_rsa_bits = 1024;
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_OK);
	x509_cert_free(c);
	x509_csr_free(csr);
	p = xt_default_policy;
	/* Empty subject. */
	csr = xt_csr_new(dk, &empty);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_FORBIDDEN);
	ck_assert(xt_logcap_take("empty subject"));
	x509_csr_free(csr);
	/* EC: P-256 yes (digitalSignature only), P-521 and Ed25519 no. */
	csr = xt_csr_new(ec, &o);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_OK);
	ck_assert_uint_eq(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE);
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, NULL), MDM_OK);
	x509_cert_free(c);
	x509_csr_free(csr);
	csr = xt_csr_new(ec521, &o);
	ck_assert_int_eq(x509_csr_verify(csr), MDM_OK);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_FORBIDDEN);
	ck_assert(xt_logcap_take("only P-256 and P-384"));
	x509_csr_free(csr);
	/* Ed25519 already fails the CSR signature allow-list. */
	csr = xt_csr_new(ed, &o);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_UNSUPPORTED);
	x509_csr_free(csr);
	/* A CSR whose signature does not verify. */
	{
		X509_REQ *r = xt_req_build(dk, &o);
		size_t len;
		uint8_t *der = xt_req_der(r, &len);

		der[len - 1] ^= 0x80;
		ck_assert_int_eq(x509_csr_from_der(der, len, &csr), MDM_OK);
		ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_AUTH);
		x509_csr_free(csr);
		OPENSSL_free(der);
		X509_REQ_free(r);
	}
	csr = xt_csr_new(dk, &o);
	/* The CA key does not belong to the CA certificate. */
	ck_assert_int_eq(x509_issue(ca, other, csr, &p, NOW, &c), MDM_ERR_CONFIG);
	ck_assert(xt_logcap_take("does not belong"));
	/* The CA is not valid (yet, or any more). */
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW - 2 * 3600, &c), MDM_ERR_CONFIG);
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW + 3651 * DAY, &c), MDM_ERR_CONFIG);
	/* A device certificate is no CA. */
	dev = xt_issue(ca, cak, dk, NOW);
	ck_assert_int_eq(x509_issue(dev, dk, csr, &p, NOW, &c), MDM_ERR_CONFIG);
	x509_cert_free(dev);
	/* Unusable policies. */
	p.days = 0;
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_INVAL);
	p.days = X509_MAX_DAYS + 1;
	ck_assert_int_eq(x509_issue(ca, cak, csr, &p, NOW, &c), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_issue(ca, cak, csr, NULL, NOW, &c), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_issue(ca, cak, NULL, &xt_default_policy, NOW, &c), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_issue(NULL, cak, csr, &xt_default_policy, NOW, &c), MDM_ERR_INVAL);
	ck_assert_ptr_null(c);
	xt_logcap_stop();
	x509_csr_free(csr);
	x509_cert_free(ca);
	x509_key_free(ed);
	x509_key_free(ec521);
	x509_key_free(ec);
	x509_key_free(small);
	x509_key_free(dk);
	x509_key_free(other);
	x509_key_free(cak);
}
END_TEST

static void san_add(GENERAL_NAMES *g, int type, const char *v)
{
	GENERAL_NAME *n = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();

	ck_assert_int_eq(ASN1_STRING_set(s, v, -1), 1);
	GENERAL_NAME_set0_value(n, type, s);
	ck_assert_int_gt(sk_GENERAL_NAME_push(g, n), 0);
}

static void san_add_upn(GENERAL_NAMES *g, const char *v, int utf8)
{
	GENERAL_NAME *n = GENERAL_NAME_new();
	ASN1_TYPE *t = ASN1_TYPE_new();
	ASN1_STRING *s = utf8 ? ASN1_UTF8STRING_new() : ASN1_IA5STRING_new();

	ck_assert_int_eq(ASN1_STRING_set(s, v, -1), 1);
	ASN1_TYPE_set(t, utf8 ? V_ASN1_UTF8STRING : V_ASN1_IA5STRING, s);
	ck_assert_int_eq(GENERAL_NAME_set0_othername(n, OBJ_nid2obj(NID_ms_upn), t), 1);
	ck_assert_int_gt(sk_GENERAL_NAME_push(g, n), 0);
}

static mdm_err issue_with_sans(GENERAL_NAMES *g, int copy, X509 **out)
{
	EVP_PKEY *cak = xt_load_key("ca.key"), *dk = xt_load_key("device.key");
	X509 *ca = xt_ca_new(cak, NOW, 3650);
	struct req_opts o = {.cn = "device-1", .sans = g};
	struct x509_issue_policy p = {365, 2048, copy};
	X509_REQ *csr = xt_csr_new(dk, &o);
	mdm_err rc = x509_issue(ca, cak, csr, &p, NOW, out);

	if (rc == MDM_OK)
		ck_assert_int_eq(x509_verify_issued(*out, &ca, 1, NOW, 1, NULL), MDM_OK);
	x509_csr_free(csr);
	x509_cert_free(ca);
	x509_key_free(dk);
	x509_key_free(cak);
	GENERAL_NAMES_free(g);
	return rc;
}

START_TEST(issue_copies_allowed_sans)
{
	GENERAL_NAMES *g = GENERAL_NAMES_new(), *got;
	X509 *c = NULL;
	int crit = -1;

	san_add(g, GEN_DNS, "device-1.example.com");
	san_add(g, GEN_EMAIL, "user@example.com");
	san_add(g, GEN_URI, "urn:uuid:063D7953-1338-4BF0-8F99-913382996224");
	san_add_upn(g, "user@EXAMPLE.COM", 1);
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_OK);
	ck_assert_ptr_nonnull(got = X509_get_ext_d2i(c, NID_subject_alt_name, &crit, NULL));
	ck_assert_int_eq(crit, 0);
	ck_assert_int_eq(sk_GENERAL_NAME_num(got), 4);
	ck_assert_int_eq(sk_GENERAL_NAME_value(got, 0)->type, GEN_DNS);
	ck_assert_int_eq(sk_GENERAL_NAME_value(got, 3)->type, GEN_OTHERNAME);
	GENERAL_NAMES_free(got);
	x509_cert_free(c);
	/* Not asked to copy: none in the certificate. */
	g = GENERAL_NAMES_new();
	san_add(g, GEN_DNS, "device-1.example.com");
	ck_assert_int_eq(issue_with_sans(g, 0, &c), MDM_OK);
	ck_assert_int_lt(X509_get_ext_by_NID(c, NID_subject_alt_name, -1), 0);
	x509_cert_free(c);
}
END_TEST

START_TEST(issue_refuses_other_sans)
{
	GENERAL_NAMES *g;
	X509 *c = (X509 *)1;

	log_set_level(MDM_LOG__MAX);
	/* iPAddress: not in the allow-list. */
	g = GENERAL_NAMES_new();
	{
		GENERAL_NAME *n = GENERAL_NAME_new();
		ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();

		ck_assert_int_eq(
		        ASN1_OCTET_STRING_set(ip, (const unsigned char *)"\x7f\0\0\1", 4), 1);
		GENERAL_NAME_set0_value(n, GEN_IPADD, ip);
		sk_GENERAL_NAME_push(g, n);
	}
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	ck_assert_ptr_null(c);
	/* A DNS name with a space or a control character. */
	g = GENERAL_NAMES_new();
	san_add(g, GEN_DNS, "a b.example.com");
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	g = GENERAL_NAMES_new();
	san_add(g, GEN_EMAIL, "a\x01@example.com");
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	/* A UPN that is not a UTF8String. */
	g = GENERAL_NAMES_new();
	san_add_upn(g, "user@EXAMPLE.COM", 0);
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	/* Too many. */
	g = GENERAL_NAMES_new();
	for (int i = 0; i <= X509_MAX_SANS; i++)
		san_add(g, GEN_DNS, "d.example.com");
	ck_assert_int_eq(issue_with_sans(g, 1, &c), MDM_ERR_FORBIDDEN);
	/* The same with copy_sans off: the SAN is ignored, the certificate issued. */
	g = GENERAL_NAMES_new();
	san_add(g, GEN_DNS, "a b.example.com");
	ck_assert_int_eq(issue_with_sans(g, 0, &c), MDM_OK);
	x509_cert_free(c);
}
END_TEST

/* ---- CRL ---- */

START_TEST(crl_build_and_openssl_reads_it)
{
	EVP_PKEY *cak = xt_load_key("ca.key");
	X509 *ca = xt_ca_new(cak, NOW - DAY, 3650);
	const struct x509_revoked rev[] = {
	        {"1A2B3C", NOW - 3600, 1},      /* keyCompromise */
	        {"00deadbeef", NOW - 7200, -1}, /* lower case, leading zeros */
	        {"7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", NOW, 4}, /* 20 octets, superseded */
	};
	uint8_t *der = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509_CRL *crl;
	ASN1_INTEGER *num;
	char dir[64], path[128], capath[128], out[8192];

	ck_assert_int_eq(x509_crl_build(ca, cak, rev, 3, NOW, 7, &der, &len), MDM_OK);
	p = der;
	ck_assert_ptr_nonnull(crl = d2i_X509_CRL(NULL, &p, (long)len));
	ck_assert_ptr_eq(p, der + len);
	ck_assert_int_eq(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	ck_assert_int_eq(X509_CRL_verify(crl, X509_get0_pubkey(ca)), 1);
	ck_assert_int_eq(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)), 0);
	assert_time(X509_CRL_get0_lastUpdate(crl), NOW);
	assert_time(X509_CRL_get0_nextUpdate(crl), NOW + 7 * DAY);
	ck_assert_int_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3);
	ck_assert_ptr_nonnull(num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL));
	ck_assert_int_eq(ASN1_INTEGER_get(num), (long)NOW);
	ASN1_INTEGER_free(num);
	ck_assert_int_ge(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1), 0);
	X509_CRL_free(crl);
	/* openssl reads it, lists the serials and reasons, and verifies it. */
	ts_tmpdir_new(dir, sizeof(dir), "x509");
	snprintf(path, sizeof(path), "%s/ca.crl", dir);
	snprintf(capath, sizeof(capath), "%s/ca.pem", dir);
	ts_file_write(path, der, len);
	xt_write_pem(capath, ca);
	ck_assert_int_eq(
	        ts_run(out, sizeof(out), "openssl crl -inform DER -in '%s' -noout -text", path), 0);
	ck_assert_msg(strstr(out, "Version 2") != NULL, "%s", out);
	ck_assert(strstr(out, "Serial Number: 1A2B3C") != NULL);
	ck_assert(strstr(out, "Serial Number: DEADBEEF") != NULL);
	ck_assert(strstr(out, "Serial Number: 7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF") != NULL);
	ck_assert(strstr(out, "Key Compromise") != NULL);
	ck_assert(strstr(out, "Superseded") != NULL);
	ck_assert(strstr(out, "X509v3 CRL Number") != NULL);
	ck_assert(strstr(out, "X509v3 Authority Key Identifier") != NULL);
	ck_assert(strstr(out, "sha256WithRSAEncryption") != NULL);
	ck_assert_int_eq(
	        ts_run(out, sizeof(out), "openssl crl -inform DER -in '%s' -CAfile '%s' -noout",
	                path, capath),
	        0);
	ck_assert_msg(strstr(out, "verify OK") != NULL, "%s", out);
	ts_tmpdir_done(dir);
	free(der);
	/* An empty CRL is a CRL. */
	ck_assert_int_eq(x509_crl_build(ca, cak, NULL, 0, NOW, 1, &der, &len), MDM_OK);
	ck_assert_uint_gt(len, 0);
	free(der);
	x509_cert_free(ca);
	x509_key_free(cak);
}
END_TEST

START_TEST(crl_refusals)
{
	EVP_PKEY *cak = xt_load_key("ca.key"), *other = xt_load_key("ca2.key");
	X509 *ca = xt_ca_new(cak, NOW - DAY, 3650);
	uint8_t *der = (uint8_t *)1;
	size_t len = 1;
	static const char *const bad_serials[] = {
	        "", "0", "000", "xyz", "-1", "12 34", "0x12",
	        "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF0", /* 41 digits */
	};
	struct x509_revoked r = {"01", NOW, -1};

	log_set_level(MDM_LOG__MAX);
	for (size_t i = 0; i < sizeof(bad_serials) / sizeof(bad_serials[0]); i++) {
		r.serial_hex = bad_serials[i];
		ck_assert_msg(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len) == MDM_ERR_INVAL,
		        "%s", bad_serials[i]);
		ck_assert_ptr_null(der);
		ck_assert_uint_eq(len, 0);
	}
	r.serial_hex = NULL;
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	r.serial_hex = "01";
	for (int reason = -2; reason <= 11; reason++) {
		mdm_err want = (reason < -1 || reason == 7 || reason == 8 || reason > 10)
		        ? MDM_ERR_INVAL
		        : MDM_OK;

		r.reason = reason;
		ck_assert_msg(
		        x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len) == want, "%d", reason);
		if (want == MDM_OK)
			free(der);
	}
	r.reason = -1;
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 0, &der, &len), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, X509_MAX_CRL_DAYS + 1, &der, &len),
	        MDM_ERR_INVAL);
	ck_assert_int_eq(x509_crl_build(ca, cak, NULL, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	ck_assert_int_eq(x509_crl_build(ca, other, &r, 1, NOW, 7, &der, &len), MDM_ERR_CONFIG);
	ck_assert_int_eq(
	        x509_crl_build(ca, cak, &r, 1, NOW + 3651 * DAY, 7, &der, &len), MDM_ERR_CONFIG);
	ck_assert_int_eq(x509_crl_build(NULL, cak, &r, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	x509_cert_free(ca);
	x509_key_free(other);
	x509_key_free(cak);
}
END_TEST

/*
 * Found by fuzz/certrep_fuzz.c (fuzz/regress/certrep): a revocation time
 * after 9999-12-31T23:59:59Z (PostgreSQL timestamps go to 294276 AD) has
 * no GeneralizedTime (RFC 5280 section 4.1.2.5.2: four-digit years), so
 * x509_crl_build failed on it and took the whole CRL down, while
 * x509_crl_entry_ok, which GetCRL asks to leave such rows out, said 1.
 */
START_TEST(crl_entry_time_past_9999)
{
	EVP_PKEY *cak = xt_load_key("ca.key");
	X509 *ca = xt_ca_new(cak, NOW - DAY, 3650);
	uint8_t *der = NULL;
	size_t len = 0;
	const char *why = NULL;
	struct x509_revoked r = {"01", (time_t)253402300799LL, 4}; /* 9999-12-31T23:59:59Z */

	log_set_level(MDM_LOG__MAX);
	ck_assert_int_eq(x509_crl_entry_ok(&r, &why), 1);
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len), MDM_OK);
	free(der);
	der = NULL;
	r.revoked_at = (time_t)253402300800LL; /* 10000-01-01T00:00:00Z */
	ck_assert_int_eq(x509_crl_entry_ok(&r, &why), 0);
	ck_assert_ptr_nonnull(strstr(why, "RFC 5280 section 4.1.2.5.2"));
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	ck_assert_ptr_null(der);
	r.revoked_at = (time_t)0x00FFFF0060000000LL; /* the fuzzer's input */
	ck_assert_int_eq(x509_crl_entry_ok(&r, &why), 0);
	ck_assert_int_eq(x509_crl_build(ca, cak, &r, 1, NOW, 7, &der, &len), MDM_ERR_INVAL);
	x509_cert_free(ca);
	x509_key_free(cak);
}
END_TEST

void x509_issue_tests(TCase *tc)
{
	ts_add_tests(tc, ca_create_profile, ca_create_subject_and_refusals, ca_validity_past_2049,
	        ca_renew_and_rekey, issue_profile_and_openssl_verify, scep_responder_profile,
	        issue_validity_capped_to_ca, issue_refusals, issue_copies_allowed_sans,
	        issue_refuses_other_sans, crl_build_and_openssl_reads_it, crl_refusals,
	        crl_entry_time_past_9999);
}
