/*
 * applesim: the pieces of the Apple device simulator (tests/sim).  Built
 * on OpenSSL, libcurl and libxml2 only, as a device's own stack would be:
 * nothing here includes a header of lib/ (the Makefile does not even put
 * lib/ on its include path), so the server's code never judges its own
 * messages.
 *
 * A simulator is a program: a step that cannot go on says why on stderr
 * and exits 1 (sim_fail); no function returns an error to a caller that
 * would only print it.
 */
#ifndef APPLESIM_SIM_H
#define APPLESIM_SIM_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <libxml/tree.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_NORETURN     __attribute__((noreturn))
#define SIM_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ------------------------------------------------------------ util.c */

struct sim_buf {
	uint8_t *p;
	size_t len;
};

void sim_fail(const char *fmt, ...) SIM_PRINTF(1, 2) SIM_NORETURN;
/* Logs the pending OpenSSL errors with the failed call's name, then fails. */
void sim_ossl_fail(const char *call) SIM_NORETURN;
void sim_say(const char *fmt, ...) SIM_PRINTF(1, 2);
void *sim_xmalloc(size_t n);
char *sim_xstrdup(const char *s);
void sim_buf_free(struct sim_buf *b);
void sim_buf_append(struct sim_buf *b, const void *p, size_t len);

/* DIR/name; the result is static storage of the next few calls (ring). */
const char *sim_path(const char *name);
void sim_set_dir(const char *dir);
int sim_file_exists(const char *path);
struct sim_buf sim_file_read(const char *path);
void sim_file_write(const char *path, const void *p, size_t len);

/* Base64 without line breaks, NUL-terminated, malloc'd. */
char *sim_b64(const uint8_t *p, size_t len);
/* Decodes base64, white space ignored; fails the step on bad input. */
struct sim_buf sim_unb64(const char *s);
void sim_hex(const uint8_t *p, size_t len, int upper, char *out);
void sim_random(uint8_t *p, size_t len);
/* A random UUID, upper case (what Apple devices print). */
void sim_uuid(char out[37]);

/* The device's state, DIR/state: key=value lines, read at start, written on change. */
void sim_state_load(void);
const char *sim_state_get(const char *key);  /* NULL when unset */
const char *sim_state_need(const char *key); /* fails when unset */
void sim_state_set(const char *key, const char *value);
void sim_state_seti(const char *key, long value);
long sim_state_geti(const char *key, long dflt);

/* Records one exchange: DIR/log/NNN-what.{req,resp}; returns NNN. */
int sim_log_exchange(
        const char *what, const void *req, size_t reqlen, const void *resp, size_t resplen);

/* ------------------------------------------------------------ http.c */

struct sim_http {
	const char *method; /* GET, HEAD, POST, PUT */
	const char *url;
	const void *body;
	size_t body_len;
	const char *content_type; /* request's, or NULL */
	const char *headers[4];   /* extra "Name: value" lines */
	const char *client_cert;  /* PEM file for TLS client auth, or NULL */
	const char *client_key;
	const char *ca_file; /* trusted for https (NULL: the system's store) */
	/*
	 * PEM certificates one of which the verified chain must hold (the
	 * profile's pinned anchors), or NULL: no pinning.
	 */
	const char *pin_file;
	int insecure; /* https without verifying the server (the profile fetch without
	                 --tls-ca: a user who accepts Safari's warning) */
	/* Answer. */
	long status;
	struct sim_buf resp;
	char resp_type[128];
	char resp_nonce[256];    /* Replay-Nonce (RFC 8555 6.5), "" when absent */
	char resp_location[512]; /* Location, "" when absent */
};

/* Performs the request; fails the step when no HTTP answer came. */
void sim_http_do(struct sim_http *h);
void sim_http_free(struct sim_http *h);
/* URL-escaped copy (every byte outside A-Z a-z 0-9 - . _ ~), malloc'd. */
char *sim_url_escape(const char *s);

/* ------------------------------------------------------------- der.c */

/* Appends one DER TLV (one-byte tag, definite length) to b. */
void sim_der_tlv(struct sim_buf *b, uint8_t tag, const void *p, size_t len);
/*
 * A CMS SignedData (DER, as OpenSSL writes it) re-encoded the way Apple's
 * stack writes it: digestAlgorithms with an explicit NULL parameter (md
 * the one digest), and with ber the ContentInfo, its [0], the SignedData
 * and the encapContentInfo of indefinite length (certificates and
 * signerInfos stay definite).  Neither is under the signature.
 */
struct sim_buf sim_signed_data_apple(const uint8_t *der, size_t len, const EVP_MD *md, int ber);

/* ----------------------------------------------------------- plist.c */

/* An Apple XML plist read with libxml2 (no network, no entities, no DTD). */
xmlDocPtr sim_plist_parse(const void *p, size_t len, const char *what);
xmlNodePtr sim_plist_root(xmlDocPtr doc); /* the top-level value */
/* The value of key in a <dict>, NULL when absent. */
xmlNodePtr sim_plist_get(xmlNodePtr dict, const char *key);
int sim_plist_is(xmlNodePtr v, const char *type);
/* The text of a <string> (or NULL if v is no string); malloc'd. */
char *sim_plist_string(xmlNodePtr v);
int sim_plist_bool(xmlNodePtr v, int dflt);
long sim_plist_int(xmlNodePtr v, long dflt);
struct sim_buf sim_plist_data(xmlNodePtr v);
/* Replaces (or appends) key's <string> value in a dict. */
void sim_plist_set_string(xmlNodePtr dict, const char *key, const char *value);
/* The document as bytes, its formatting kept; malloc'd. */
struct sim_buf sim_plist_dump(xmlDocPtr doc);

/*
 * Writing messages the way a device serializes them (CFPropertyList's
 * XML: the DOCTYPE, tabs, keys in the order given, <data> in 68-column
 * lines when long).
 */
struct sim_pw {
	struct sim_buf out;
	int depth;
};
void sim_pw_begin(struct sim_pw *w);
void sim_pw_key_string(struct sim_pw *w, const char *key, const char *value);
void sim_pw_key_bool(struct sim_pw *w, const char *key, int value);
void sim_pw_key_int(struct sim_pw *w, const char *key, long value);
void sim_pw_key_data(struct sim_pw *w, const char *key, const uint8_t *p, size_t len);
void sim_pw_end(struct sim_pw *w); /* closes the dict and the plist */

/* ------------------------------------------------------------ json.c */

/* A JSON value (RFC 8259) as read by sim_json_parse. */
enum {
	SIM_JSON_NULL,
	SIM_JSON_BOOL,
	SIM_JSON_NUMBER,
	SIM_JSON_STRING,
	SIM_JSON_ARRAY,
	SIM_JSON_OBJECT
};
struct sim_json {
	int type;
	int b;
	double num;
	char *str;              /* SIM_JSON_STRING, NUL-terminated */
	size_t n;               /* array elements or object members */
	struct sim_json **kids; /* their values */
	char **keys;            /* object: their names */
};
/* Exactly RFC 8259 (duplicate names refused, 64 levels); fails the step otherwise. */
struct sim_json *sim_json_parse(const void *p, size_t len, const char *what);
const struct sim_json *sim_json_get(const struct sim_json *obj, const char *key);
const char *sim_json_str(const struct sim_json *v); /* NULL unless a string */
void sim_json_free(struct sim_json *v);
/* Appends s as a JSON string (quoted, escaped). */
void sim_json_quote(struct sim_buf *b, const char *s);
void sim_buf_puts(struct sim_buf *b, const char *s);

/* ------------------------------------------------------------ scep.c */

struct sim_scep_opts {
	const char *url;
	const char *challenge; /* NULL: none in the request */
	const char *ca_ident;  /* the payload's Name: GetCACert's message */
	X509_NAME *subject;    /* the CSR's subject (the payload's Subject) */
	int keysize;
	int key_usage;              /* the profile's Key Usage bits (1 sign, 4 encrypt), 0 unset */
	int force_get;              /* GET PKIOperation even when POST is offered */
	int url_escape;             /* GET: percent-encode the base64 (iOS) or not (macOS) */
	const char *digest;         /* force this digest ("md5" for a negative case) */
	int mac;                    /* signer "CN=MDM SCEP SIGNER, C=US"; challenge also signed */
	int tamper_csr;             /* flip a bit of the CSR's signature */
	const char *transaction_id; /* reuse this transactionID (replay) */
	const char *expect_failure; /* want FAILURE with this failInfo */
	/* The payload's CAFingerprint (MD5 or SHA-1 of the CA's DER); len 0: none. */
	uint8_t ca_fingerprint[20];
	size_t ca_fingerprint_len;
	/* RenewalReq: the current identity signs; NULL for a first PKCSReq. */
	X509 *renew_cert;
	EVP_PKEY *renew_key;
};

/*
 * One enrollment (PKCSReq) or renewal (RenewalReq).  On success *cert
 * and *key are the new identity; with expect_failure set, returns 1 when
 * the CertRep was that FAILURE (and no certificate came), else fails.
 */
int sim_scep_enroll(const struct sim_scep_opts *o, X509 **cert, EVP_PKEY **key);

/* ------------------------------------------------------------ acme.c */

struct sim_acme_opts {
	const char *directory_url;     /* the payload's DirectoryURL */
	const char *client_identifier; /* its ClientIdentifier: the order's identifier */
	X509_NAME *subject;            /* its Subject: the CSR's */
	const char *curve;             /* "P-384" for KeySize 384, "P-256" for 256 */
	const char *ca_file;           /* trusted for https */
	/* The stand-in for Apple's attestation service and its CA directory. */
	const char *attest_cmd, *attest_dir;
	const char *serial, *udid; /* what "Apple" attests */
	const char *attest_token;  /* attest this token instead of the challenge's */
	int csr_other_key;         /* finalize with a CSR of another key */
	/* Want a problem document of this ACME error type at that step (NULL: success). */
	const char *expect_error_at_order, *expect_error_at_challenge, *expect_error_at_finalize;
};

/*
 * One ACME device-attest-01 enrollment.  On success *cert and *key are
 * the new identity (the chain in DIR/acme-chain.pem) and 0 is returned;
 * 1 when the refusal expected at a step came (nothing certified).
 */
int sim_acme_enroll(const struct sim_acme_opts *o, X509 **cert, EVP_PKEY **key);

/* ------------------------------------------------------------- mdm.c */

/* PEM files of the current identity. */
X509 *sim_load_cert(const char *path);
EVP_PKEY *sim_load_key(const char *path);
void sim_save_cert(const char *path, X509 *c);
void sim_save_key(const char *path, EVP_PKEY *k);

/*
 * Mdm-Signature: base64 of a detached CMS SignedData over body, BER with
 * indefinite lengths, no signed attributes, the identity certificate
 * only, signature algorithm <digest>WithRSAEncryption (as
 * nanomdm's mdmSignatureHeader2 from a real Mac), ecdsa-with-<digest>
 * for an EC identity (ACME).  malloc'd.
 */
char *sim_mdm_signature(
        X509 *cert, EVP_PKEY *key, const char *digest, const void *body, size_t len);

#endif
