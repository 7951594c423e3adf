/*
 * Helpers shared by the CMS test files (test_cms.c, test_cms_sig.c,
 * test_scep_msg.c): hostile variants of a signed message made with
 * OpenSSL directly, so that they are not limited to what lib/ can build.
 */
#ifndef MDM_TEST_CMSTEST_H
#define MDM_TEST_CMSTEST_H

#include <stddef.h>
#include <stdint.h>

/* Which AlgorithmIdentifier of the (only) SignerInfo cmstest_with_alg replaces. */
enum cmstest_alg { CMSTEST_DIGEST_ALG, CMSTEST_SIGNATURE_ALG };

/*
 * The SignedData der with the SignerInfo's digest or signature algorithm
 * replaced by nid, with parameters of ptype (V_ASN1_UNDEF absent,
 * V_ASN1_NULL, V_ASN1_INTEGER the integer 1); malloc'd, *outlen bytes.
 * Nothing else changes, so the signature over the signed attributes
 * still holds: only the algorithm policy can refuse the result.
 */
uint8_t *cmstest_with_alg(
        const uint8_t *der, size_t len, enum cmstest_alg which, int nid, int ptype, size_t *outlen);

#endif
