/*
 * x509 verification of what we issued: each refusal (unknown issuer, bad
 * signature, expired or not yet valid, no clientAuth, a CA as leaf, an
 * unknown critical extension...) is logged with its reason.
 */
#include "x509_testutil.h"

#include <openssl/objects.h>

/* ---- verifying ---- */

/* A copy of c changed by edit, then signed again by key (a CA, or an intruder). */
static X509 *resign(const X509 *c, EVP_PKEY *key, void (*edit)(X509 *))
{
	X509 *x = X509_dup(c);

	ck_assert_ptr_nonnull(x);
	edit(x);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	return x;
}

static void drop_eku(X509 *x)
{
	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x, NID_ext_key_usage, -1)));
}

static void eku_server_only(X509 *x)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();

	drop_eku(x);
	sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth));
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, 0), 1);
	sk_ASN1_OBJECT_free(eku);
}

static void ku_encipher_only(X509 *x)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();

	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1)));
	ASN1_BIT_STRING_set_bit(ku, 2, 1);
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_key_usage, ku, 1, 0), 1);
	ASN1_BIT_STRING_free(ku);
}

static void unknown_critical(X509 *x)
{
	ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
	ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
	X509_EXTENSION *e;

	ASN1_OCTET_STRING_set(v, (const unsigned char *)"\x05\x00", 2);
	ck_assert_ptr_nonnull(e = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, v));
	ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(v);
	ASN1_OBJECT_free(obj);
}

static void make_ca(X509 *x)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();

	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x, NID_basic_constraints, -1)));
	bc->ca = 0xff;
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, 0), 1);
	BASIC_CONSTRAINTS_free(bc);
}

static void no_change(X509 *x)
{
	(void)x;
}

static void refused_because(
        const X509 *c, X509 *const *cas, size_t n, time_t now, int client, const char *why)
{
	size_t which = 99;

	ck_assert_int_eq(x509_verify_issued(c, cas, n, now, client, &which), MDM_ERR_AUTH);
	ck_assert_uint_eq(which, 0);
	ck_assert_msg(xt_logcap_take(why), "log does not say \"%s\"", why);
}

START_TEST(verify_refusals_say_why)
{
	EVP_PKEY *cak = xt_load_key("ca.key"), *k2 = xt_load_key("ca2.key"),
	         *dk = xt_load_key("device.key");
	X509 *ca = xt_ca_new(cak, NOW - 10 * DAY, 3650), *c = xt_issue(ca, cak, dk, NOW), *x,
	     *foreign, *twin, *both[2];

	xt_logcap_start();
	ck_assert_int_eq(x509_verify_issued(c, &ca, 1, NOW, 1, NULL), MDM_OK);
	/* Expired, not yet valid. */
	refused_because(c, &ca, 1, NOW + 366 * DAY, 1, "certificate expired");
	refused_because(c, &ca, 1, NOW - 2 * 3600, 1, "certificate not yet valid");
	/* The CA expired (the certificate, capped, with it). */
	refused_because(c, &ca, 1, NOW + 3651 * DAY, 1, "issuing CA expired");
	/* A foreign CA: another name, or the same name with another key. */
	foreign = NULL;
	ck_assert_int_eq(x509_ca_create(k2, "/CN=Other CA", 3650, NOW - DAY, &foreign), MDM_OK);
	refused_because(c, &foreign, 1, NOW, 1, "unknown issuer");
	twin = xt_ca_new(k2, NOW - DAY, 3650);
	refused_because(c, &twin, 1, NOW, 1, "signature does not verify");
	/* With the right CA second in the list it is found. */
	both[0] = twin;
	both[1] = ca;
	{
		size_t which = 99;

		ck_assert_int_eq(x509_verify_issued(c, both, 2, NOW, 1, &which), MDM_OK);
		ck_assert_uint_eq(which, 1);
	}
	/* Signed by an intruder under our CA's name. */
	x = resign(c, k2, no_change);
	refused_because(x, &ca, 1, NOW, 1, "signature does not verify");
	x509_cert_free(x);
	/* A flipped bit in the signature. */
	{
		uint8_t *der = NULL;
		size_t len = 0;

		ck_assert_int_eq(x509_cert_to_der(c, &der, &len), MDM_OK);
		der[len - 5] ^= 0x04;
		ck_assert_int_eq(x509_cert_from_der(der, len, &x), MDM_OK);
		refused_because(x, &ca, 1, NOW, 1, "signature does not verify");
		x509_cert_free(x);
		free(der);
	}
	/* No clientAuth: refused for TLS client authentication only. */
	x = resign(c, cak, drop_eku);
	refused_because(x, &ca, 1, NOW, 1, "no extendedKeyUsage clientAuth");
	ck_assert_int_eq(x509_verify_issued(x, &ca, 1, NOW, 0, NULL), MDM_OK);
	x509_cert_free(x);
	x = resign(c, cak, eku_server_only);
	refused_because(x, &ca, 1, NOW, 1, "no extendedKeyUsage clientAuth");
	x509_cert_free(x);
	x = resign(c, cak, ku_encipher_only);
	refused_because(x, &ca, 1, NOW, 1, "keyUsage lacks digitalSignature");
	x509_cert_free(x);
	/* An unknown critical extension; a CA posing as a device. */
	x = resign(c, cak, unknown_critical);
	refused_because(x, &ca, 1, NOW, 0, "unsupported critical extension");
	x509_cert_free(x);
	x = resign(c, cak, make_ca);
	refused_because(x, &ca, 1, NOW, 0, "is a CA");
	x509_cert_free(x);
	refused_because(ca, &ca, 1, NOW, 0, "is a CA");
	/* No CAs at all; a NULL in the list is skipped. */
	refused_because(c, NULL, 0, NOW, 1, "unknown issuer");
	both[0] = NULL;
	ck_assert_int_eq(x509_verify_issued(c, both, 2, NOW, 1, NULL), MDM_OK);
	ck_assert_int_eq(x509_verify_issued(NULL, both, 2, NOW, 1, NULL), MDM_ERR_INVAL);
	xt_logcap_stop();
	x509_cert_free(twin);
	x509_cert_free(foreign);
	x509_cert_free(c);
	x509_cert_free(ca);
	x509_key_free(dk);
	x509_key_free(k2);
	x509_key_free(cak);
}
END_TEST

void x509_chain_tests(TCase *tc)
{
	ts_add_tests(tc, verify_refusals_say_why);
}
