/*
 * applesim: the little DER a device's stack writes differently from
 * OpenSSL.  Apple's SignedData (scep/testdata/PKCSReq.der,
 * mdmclient-PKIOperation.der, nanomdm's mdmSignatureHeader2) carries
 * digestAlgorithms with an explicit NULL parameter, which OpenSSL omits
 * for SHA digests; and the Mdm-Signature is BER with indefinite lengths
 * on its outer layers, which OpenSSL's streaming writer produces only
 * with the content embedded.  Both are outside the signature, so they
 * are rewritten after signing.
 */
#include "sim.h"

#include <openssl/objects.h>
#include <string.h>

struct tlv {
	const uint8_t *start, *content;
	size_t content_len, total;
	uint8_t tag;
};

static struct tlv tlv_read(const uint8_t **p, const uint8_t *end)
{
	struct tlv t;
	const uint8_t *q = *p;
	size_t len = 0, n;

	if (end - q < 2)
		sim_fail("SignedData: truncated DER");
	t.start = q;
	t.tag = *q++;
	if (*q < 0x80) {
		len = *q++;
	} else {
		n = *q++ & 0x7f;
		if (n == 0 || n > 4 || (size_t)(end - q) < n)
			sim_fail("SignedData: unexpected DER length");
		while (n-- > 0)
			len = (len << 8) | *q++;
	}
	if ((size_t)(end - q) < len)
		sim_fail("SignedData: truncated DER");
	t.content = q;
	t.content_len = len;
	t.total = (size_t)(q - t.start) + len;
	*p = q + len;
	return t;
}

static void der_put_len(struct sim_buf *b, size_t len)
{
	uint8_t l[9];
	int n = 0;

	if (len < 0x80) {
		l[0] = (uint8_t)len;
		sim_buf_append(b, l, 1);
		return;
	}
	for (size_t v = len; v > 0; v >>= 8)
		n++;
	l[0] = (uint8_t)(0x80 | n);
	for (int i = 0; i < n; i++)
		l[1 + i] = (uint8_t)(len >> (8 * (n - 1 - i)));
	sim_buf_append(b, l, (size_t)n + 1);
}

void sim_der_tlv(struct sim_buf *b, uint8_t tag, const void *p, size_t len)
{
	sim_buf_append(b, &tag, 1);
	der_put_len(b, len);
	sim_buf_append(b, p, len);
}

/* Wraps content in tag: definite (DER), or indefinite with an end-of-contents. */
static void wrap(struct sim_buf *out, uint8_t tag, const struct sim_buf *content, int ber)
{
	static const uint8_t eoc[2] = {0, 0};
	uint8_t h[2] = {tag, 0x80};

	if (!ber) {
		sim_der_tlv(out, tag, content->p, content->len);
		return;
	}
	sim_buf_append(out, h, 2);
	sim_buf_append(out, content->p, content->len);
	sim_buf_append(out, eoc, 2);
}

struct sim_buf sim_signed_data_apple(const uint8_t *der, size_t len, const EVP_MD *md, int ber)
{
	static const uint8_t null[2] = {0x05, 0x00};
	static const uint8_t signed_data[] = {/* OID 1.2.840.113549.1.7.2 */
	        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
	const uint8_t *p = der, *q, *qend;
	struct sim_buf sd = {NULL, 0}, alg = {NULL, 0}, seq = {NULL, 0}, tmp = {NULL, 0};
	struct sim_buf ci = {NULL, 0}, out = {NULL, 0};
	struct tlv outer, oid, explicit0, inner, f;
	unsigned char *o = NULL;
	int olen;

	outer = tlv_read(&p, der + len);
	q = outer.content;
	qend = q + outer.content_len;
	oid = tlv_read(&q, qend);
	explicit0 = tlv_read(&q, qend);
	q = explicit0.content;
	inner = tlv_read(&q, explicit0.content + explicit0.content_len);
	if (outer.tag != 0x30 || explicit0.tag != 0xa0 || inner.tag != 0x30 ||
	        oid.total != sizeof(signed_data) || memcmp(oid.start, signed_data, oid.total) != 0)
		sim_fail("SignedData: not a ContentInfo of a SignedData");
	q = inner.content;
	qend = inner.content + inner.content_len;
	f = tlv_read(&q, qend); /* version */
	sim_buf_append(&sd, f.start, f.total);
	f = tlv_read(&q, qend); /* digestAlgorithms, rebuilt */
	if (f.tag != 0x31 || (olen = i2d_ASN1_OBJECT(OBJ_nid2obj(EVP_MD_get_type(md)), &o)) <= 0)
		sim_fail("SignedData: no digestAlgorithms");
	sim_buf_append(&alg, o, (size_t)olen);
	sim_buf_append(&alg, null, sizeof(null));
	sim_der_tlv(&seq, 0x30, alg.p, alg.len);
	sim_der_tlv(&sd, 0x31, seq.p, seq.len);
	f = tlv_read(&q, qend); /* encapContentInfo */
	if (f.tag != 0x30)
		sim_fail("SignedData: no encapContentInfo");
	sim_buf_append(&tmp, f.content, f.content_len);
	wrap(&sd, 0x30, &tmp, ber);
	while (q < qend) { /* certificates, signerInfos: as they are */
		f = tlv_read(&q, qend);
		sim_buf_append(&sd, f.start, f.total);
	}
	sim_buf_free(&tmp);
	wrap(&tmp, 0x30, &sd, ber);
	sim_buf_append(&ci, oid.start, oid.total);
	{
		struct sim_buf e0 = {NULL, 0};
		wrap(&e0, 0xa0, &tmp, ber);
		sim_buf_append(&ci, e0.p, e0.len);
		sim_buf_free(&e0);
	}
	wrap(&out, 0x30, &ci, ber);
	OPENSSL_free(o);
	sim_buf_free(&sd);
	sim_buf_free(&alg);
	sim_buf_free(&seq);
	sim_buf_free(&tmp);
	sim_buf_free(&ci);
	return out;
}
