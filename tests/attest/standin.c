/*
 * attest_standin: the stand-in for Apple's attestation service as a
 * program, for the device simulator (tests/sim, which links nothing of
 * ours) and the Python ACME client of the e2e tests: they get an
 * attestation object the way a device gets one from Apple.
 *
 *   attest_standin init DIR
 *       a new stand-in root and intermediate in DIR (root.pem is the
 *       acme_attest_root_file to configure)
 *   attest_standin attest DIR --pubkey FILE.pem --token TOKEN [--serial S]
 *           [--udid U] [--os 17.0] [--model M] [--days N] [--macos]
 *           [--expired] [--wrong-nonce] [--no-nonce] [--b64url]
 *       the CBOR attestation object for the key in FILE.pem (public or
 *       private) and the challenge token TOKEN on stdout, raw or with
 *       --b64url as unpadded base64url (the attObj of device-attest-01)
 *
 * Exit status 0, or 2 for a usage error, 1 for another failure.
 */
#include "ts_attest.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr,
	        "usage: attest_standin init DIR\n"
	        "       attest_standin attest DIR --pubkey FILE.pem --token TOKEN "
	        "[--serial S] [--udid U] [--os V] [--model M] [--days N] [--macos] "
	        "[--expired] [--wrong-nonce] [--no-nonce] [--b64url]\n");
	return 2;
}

/* data as unpadded base64url on stdout, with a newline. */
static int put_b64url(const uint8_t *data, size_t len)
{
	size_t cap = 4 * ((len + 2) / 3) + 1;
	unsigned char *b = malloc(cap);
	int n;

	if (b == NULL || len > 0x3fffffff)
		return -1;
	n = EVP_EncodeBlock(b, data, (int)len);
	while (n > 0 && b[n - 1] == '=')
		n--;
	for (int i = 0; i < n; i++)
		b[i] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
	n = fwrite(b, 1, (size_t)n, stdout) == (size_t)n && putchar('\n') != EOF ? 0 : -1;
	free(b);
	return n;
}

static int attest(int argc, char **argv)
{
	struct ts_attest_opts o = {0};
	const char *dir = argv[0], *pubkey = NULL;
	int b64url = 0, rc = 1;
	EVP_PKEY *key;
	uint8_t *obj;
	size_t len;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--macos") == 0)
			o.macos = 1;
		else if (strcmp(a, "--expired") == 0)
			o.expired = 1;
		else if (strcmp(a, "--wrong-nonce") == 0)
			o.wrong_nonce = 1;
		else if (strcmp(a, "--no-nonce") == 0)
			o.no_nonce = 1;
		else if (strcmp(a, "--b64url") == 0)
			b64url = 1;
		else if (v == NULL)
			return usage();
		else if (strcmp(a, "--pubkey") == 0)
			pubkey = argv[++i];
		else if (strcmp(a, "--token") == 0) {
			o.token = (const uint8_t *)argv[++i];
			o.token_len = strlen(v);
		} else if (strcmp(a, "--serial") == 0)
			o.serial = argv[++i];
		else if (strcmp(a, "--udid") == 0)
			o.udid = argv[++i];
		else if (strcmp(a, "--os") == 0)
			o.os = argv[++i];
		else if (strcmp(a, "--model") == 0)
			o.model = argv[++i];
		else if (strcmp(a, "--days") == 0) {
			char *end;

			o.days = strtol(v, &end, 10);
			if (*v == '\0' || *end != '\0' || o.days <= 0 || o.days > 3650)
				return usage();
			i++;
		} else
			return usage();
	}
	if (pubkey == NULL || o.token == NULL || o.token_len == 0)
		return usage();
	if ((key = ts_attest_read_key(pubkey)) == NULL)
		return 1;
	if ((obj = ts_attest_object(dir, key, &o, &len)) != NULL) {
		if (b64url)
			rc = put_b64url(obj, len) == 0 ? 0 : 1;
		else
			rc = fwrite(obj, 1, len, stdout) == len ? 0 : 1;
		if (fflush(stdout) != 0)
			rc = 1;
		free(obj);
	}
	EVP_PKEY_free(key);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "init") == 0)
		return ts_attest_ca_init(argv[2]) == 0 ? 0 : 1;
	if (argc >= 3 && strcmp(argv[1], "attest") == 0)
		return attest(argc - 2, argv + 2);
	return usage();
}
