/*
 * applesim: the device identity's files and the Mdm-Signature header
 * (Apple "Mobile Device Management Protocol", SignMessage).
 *
 * The shape is the real one from a Mac, nanomdm's mdmSignatureHeader2
 * (with mdmSignatureBody2.plist, an Idle): a ContentInfo, SignedData and
 * encapContentInfo all of indefinite length (BER), the content absent
 * (detached), no signed attributes, exactly one certificate (the
 * identity, no chain), digestAlgorithm sha1 and signatureAlgorithm
 * sha1WithRSAEncryption, both with a NULL parameter.  The SHA-256
 * variant is the same with sha256.  OpenSSL signs; der.c gives it the
 * device's encoding.
 */
#include "sim.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>

X509 *sim_load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL)
		sim_fail("cannot read %s (run the scep step first)", path);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		sim_ossl_fail("PEM_read_X509");
	return x;
}

EVP_PKEY *sim_load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL)
		sim_fail("cannot read %s (run the scep step first)", path);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL)
		sim_ossl_fail("PEM_read_PrivateKey");
	return k;
}

void sim_save_cert(const char *path, X509 *c)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || !PEM_write_X509(f, c) || fclose(f) != 0)
		sim_fail("cannot write %s", path);
}

void sim_save_key(const char *path, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0)
		sim_fail("cannot write %s", path);
}

char *sim_mdm_signature(X509 *cert, EVP_PKEY *key, const char *digest, const void *body, size_t len)
{
	const int flags = CMS_DETACHED | CMS_BINARY | CMS_NOATTR | CMS_NOSMIMECAP | CMS_PARTIAL;
	const EVP_MD *md = EVP_get_digestbyname(digest);
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	X509_ALGOR *digalg = NULL, *sigalg = NULL;
	unsigned char *der = NULL;
	struct sim_buf ber;
	BIO *in;
	char *b64;
	int n, nid, ec;

	if (md == NULL)
		sim_fail("unknown digest %s", digest);
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL ||
	        (si = CMS_add1_signer(cms, cert, key, md, flags)) == NULL)
		sim_ossl_fail("CMS_add1_signer (Mdm-Signature)");
	/*
	 * OpenSSL writes rsaEncryption here; the device writes
	 * <digest>WithRSAEncryption, or for an ACME identity's EC key
	 * ecdsa-with-<digest> with no parameters (RFC 5758 3.2).
	 */
	CMS_SignerInfo_get0_algs(si, NULL, NULL, &digalg, &sigalg);
	ec = EVP_PKEY_get_base_id(key) == EVP_PKEY_EC;
	if (!OBJ_find_sigid_by_algs(&nid, EVP_MD_get_type(md), ec ? EVP_PKEY_EC : EVP_PKEY_RSA) ||
	        !X509_ALGOR_set0(sigalg, OBJ_nid2obj(nid), ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL) ||
	        !X509_ALGOR_set0(digalg, OBJ_nid2obj(EVP_MD_get_type(md)), V_ASN1_NULL, NULL))
		sim_ossl_fail("X509_ALGOR_set0 (signatureAlgorithm)");
	if ((in = BIO_new_mem_buf(body, (int)len)) == NULL || !CMS_final(cms, in, NULL, flags))
		sim_ossl_fail("CMS_final (Mdm-Signature)");
	if ((n = i2d_CMS_ContentInfo(cms, &der)) <= 0)
		sim_ossl_fail("i2d_CMS_ContentInfo (Mdm-Signature)");
	ber = sim_signed_data_apple(der, (size_t)n, md, 1);
	b64 = sim_b64(ber.p, ber.len);
	sim_buf_free(&ber);
	OPENSSL_free(der);
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return b64;
}
