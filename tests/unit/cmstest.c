/* Helpers shared by the CMS test files (cmstest.h). */
#include "cmstest.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

uint8_t *cmstest_with_alg(
        const uint8_t *der, size_t len, enum cmstest_alg which, int nid, int ptype, size_t *outlen)
{
	const unsigned char *q = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &q, (long)len);
	CMS_SignerInfo *si;
	X509_ALGOR *dig = NULL, *sig = NULL;
	ASN1_INTEGER *one = NULL;
	uint8_t *enc = NULL, *out;
	int n;

	ck_assert_ptr_nonnull(cms);
	si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
	ck_assert_ptr_nonnull(si);
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, &sig);
	ck_assert_ptr_nonnull(dig);
	ck_assert_ptr_nonnull(sig);
	if (ptype == V_ASN1_INTEGER) {
		one = ASN1_INTEGER_new();
		ck_assert_ptr_nonnull(one);
		ck_assert_int_eq(ASN1_INTEGER_set(one, 1), 1);
	}
	ck_assert_int_eq(X509_ALGOR_set0(which == CMSTEST_DIGEST_ALG ? dig : sig, OBJ_nid2obj(nid),
	                         ptype, one),
	        1);
	n = i2d_CMS_ContentInfo(cms, &enc);
	ck_assert_int_gt(n, 0);
	out = malloc((size_t)n);
	ck_assert_ptr_nonnull(out);
	memcpy(out, enc, (size_t)n);
	*outlen = (size_t)n;
	OPENSSL_free(enc);
	CMS_ContentInfo_free(cms);
	return out;
}
