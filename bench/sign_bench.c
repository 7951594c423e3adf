/*
 * sign_bench: the cost of one CA signature with a key at a URI, a file
 * or a pkcs11: URI (behind p11-kit server, say; docs/HSM.md).  The key
 * is loaded once, as the programs do; then N RSA SHA-256 signatures of a
 * certificate-sized input are timed.
 *
 *   sign_bench KEY_URI N
 *
 * Prints one line: `signatures=N seconds=S ms_per_signature=M`.
 */
#include "x509.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	unsigned char tbs[1024] = {0}, sig[1024];
	struct timespec t0, t1;
	EVP_PKEY *key = NULL;
	double s;
	int n;

	if (argc != 3 || (n = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: sign_bench KEY_URI N\n");
		return 2;
	}
	if (x509_key_load(argv[1], &key) != MDM_OK)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		size_t len = sizeof(sig);

		tbs[0] = (unsigned char)i;
		if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
		        EVP_DigestSign(ctx, sig, &len, tbs, sizeof(tbs)) != 1) {
			fprintf(stderr, "sign_bench: signature %d failed\n", i);
			EVP_MD_CTX_free(ctx);
			x509_key_free(key);
			return 1;
		}
		EVP_MD_CTX_free(ctx);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("signatures=%d seconds=%.3f ms_per_signature=%.3f\n", n, s, s * 1000 / n);
	x509_key_free(key);
	return 0;
}
