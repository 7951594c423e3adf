/*
 * scep_bench: SCEP enrollments per second against a server, and the
 * server's CPU time per enrollment.
 *
 *   scep_bench URL CHALLENGE N CONCURRENCY [PID...]
 *
 * Every request is built before the clock starts (fresh CSR and
 * throw-away signer per enrollment, RFC 8894 section 2.3), encrypted to
 * what GetCACert returns (the CA, or the RA or responder certificate that
 * comes first beside it), then POSTed N at a time with libcurl.
 * CPU is the utime+stime of the given PIDs (and their waited-for
 * children) from /proc, before and after.  The replies are checked
 * after the clock stops: every one must be a CertRep SUCCESS.
 * Prints one line: `enrollments=N seconds=S per_second=R cpu_ms_per_enrollment=C`.
 */
#include "cms.h"
#include "scep_msg.h"
#include "ts_pki.h"
#include "ts_sys.h"
#include "log.h"
#include "x509.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct buf {
	uint8_t *p;
	size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	uint8_t *np = realloc(b->p, b->len + size * n);

	if (np == NULL)
		return 0;
	memcpy(np + b->len, ptr, size * n);
	b->p = np;
	b->len += size * n;
	return size * n;
}

static int fetch(const char *url, struct buf *out)
{
	CURL *c = curl_easy_init();
	long status = 0;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (curl_easy_perform(c) != CURLE_OK)
		status = 0;
	else
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status == 200;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime+stime+cutime+cstime of pid, in clock ticks. */
static long long cpu_ticks(const char *pid)
{
	char path[64], line[2048], *p;
	long long v[4];
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), fp) == NULL) {
		fclose(fp);
		return 0;
	}
	fclose(fp);
	/* Fields after the command name "(...)": utime is the 14th field overall. */
	if ((p = strrchr(line, ')')) == NULL)
		return 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld %lld %lld", &v[0],
	            &v[1], &v[2], &v[3]) != 4)
		return 0;
	return v[0] + v[1] + v[2] + v[3];
}

static long long cpu_total(char **pids, int n)
{
	long long t = 0;

	for (int i = 0; i < n; i++)
		t += cpu_ticks(pids[i]);
	return t;
}

static uint8_t *make_request(EVP_PKEY *key, X509 *ca, const char *challenge, int i, size_t *len)
{
	char cn[64], txid[64];
	X509_REQ *req;
	X509 *self;
	struct scep_msg_request_params p;
	uint8_t *der = NULL, *out = NULL;
	size_t n = 0;

	snprintf(cn, sizeof(cn), "bench-%d-%ld", i, (long)getpid());
	snprintf(txid, sizeof(txid), "BENCH-%ld-%d-%ld", (long)getpid(), i, (long)time(NULL));
	req = ts_csr(key, cn, challenge, NULL);
	self = ts_self_signed(key, cn, i + 1, 3600);
	der = ts_csr_der(req, &n);
	p = ts_scep_params(SCEP_PKCSREQ, self, key, ca, txid, der, n);
	p.cipher = CMS_CIPHER_AES128;
	if (der == NULL || self == NULL || scep_msg_request(&p, &out, len) != MDM_OK)
		out = NULL;
	free(der);
	X509_REQ_free(req);
	X509_free(self);
	return out;
}

/* What GetCACert's answer says to encrypt to: its certificate, or the first of a certs-only. */
static int recipient_of(const struct buf *b, struct x509_st **out)
{
	struct x509_st **certs = NULL;
	size_t n = 0;

	if (x509_cert_from_der(b->p, b->len, out) == MDM_OK)
		return 1;
	if (cms_certs_only_parse(b->p, b->len, &certs, &n) != MDM_OK || n == 0)
		return 0;
	*out = certs[0];
	for (size_t i = 1; i < n; i++)
		x509_cert_free(certs[i]);
	free(certs);
	return 1;
}

int main(int argc, char **argv)
{
	const char *url, *challenge;
	int n, conc, keys = 8, ok = 0, next = 0, running = 0;
	char caurl[1024], posturl[1024];
	struct buf cabuf = {NULL, 0};
	struct x509_st *ca = NULL;
	EVP_PKEY **k;
	uint8_t **reqs;
	size_t *lens;
	struct buf *replies;
	CURLM *multi;
	double t0, t1;
	long long c0, c1;

	if (argc < 5) {
		fprintf(stderr, "usage: scep_bench URL CHALLENGE N CONCURRENCY [PID...]\n");
		return 2;
	}
	/* recipient_of tries a lone certificate first: that failure is not news. */
	log_set_level(MDM_LOG_ERROR);
	url = argv[1];
	challenge = argv[2];
	n = atoi(argv[3]);
	conc = atoi(argv[4]);
	if (n <= 0 || conc <= 0)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(caurl, sizeof(caurl), "%s?operation=GetCACert", url);
	snprintf(posturl, sizeof(posturl), "%s?operation=PKIOperation", url);
	if (!fetch(caurl, &cabuf) || !recipient_of(&cabuf, &ca)) {
		fprintf(stderr, "scep_bench: GetCACert from %s failed\n", url);
		return 1;
	}
	k = calloc((size_t)keys, sizeof(*k));
	for (int i = 0; i < keys; i++)
		k[i] = EVP_RSA_gen(2048);
	reqs = calloc((size_t)n, sizeof(*reqs));
	lens = calloc((size_t)n, sizeof(*lens));
	replies = calloc((size_t)n, sizeof(*replies));
	for (int i = 0; i < n; i++)
		if ((reqs[i] = make_request(k[i % keys], ca, challenge, i, &lens[i])) == NULL) {
			fprintf(stderr, "scep_bench: building request %d failed\n", i);
			return 1;
		}

	multi = curl_multi_init();
	ts_bench_window("start");
	c0 = cpu_total(argv + 5, argc - 5);
	t0 = now_s();
	while (next < n || running > 0) {
		CURLMsg *m;
		int left;
		while (next < n && running < conc) {
			CURL *c = curl_easy_init();
			struct curl_slist *h =
			        curl_slist_append(NULL, "Content-Type: application/x-pki-message");
			curl_easy_setopt(c, CURLOPT_URL, posturl);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, reqs[next]);
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)lens[next]);
			curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
			curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
			curl_easy_setopt(c, CURLOPT_WRITEDATA, &replies[next]);
			curl_easy_setopt(c, CURLOPT_PRIVATE, h);
			curl_multi_add_handle(multi, c);
			next++;
			running++;
		}
		curl_multi_perform(multi, &left);
		while ((m = curl_multi_info_read(multi, &left)) != NULL) {
			if (m->msg == CURLMSG_DONE) {
				struct curl_slist *h;
				curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&h);
				curl_multi_remove_handle(multi, m->easy_handle);
				curl_easy_cleanup(m->easy_handle);
				curl_slist_free_all(h);
				running--;
			}
		}
		if (running > 0)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	t1 = now_s();
	c1 = cpu_total(argv + 5, argc - 5);
	ts_bench_window("stop");
	curl_multi_cleanup(multi);

	for (int i = 0; i < n; i++) {
		struct scep_msg *m = NULL;
		enum scep_fail_info f;
		if (scep_msg_parse(replies[i].p, replies[i].len, &m, &f, NULL, 0) == MDM_OK &&
		        m->message_type == SCEP_CERTREP && m->pki_status == SCEP_SUCCESS)
			ok++;
		scep_msg_free(m);
		free(replies[i].p);
		free(reqs[i]);
	}
	printf("enrollments=%d ok=%d seconds=%.3f per_second=%.1f cpu_ms_per_enrollment=%.2f\n", n,
	        ok, t1 - t0, n / (t1 - t0),
	        argc > 5 ? (double)(c1 - c0) * 1000.0 / (double)sysconf(_SC_CLK_TCK) / n : -1.0);
	for (int i = 0; i < keys; i++)
		EVP_PKEY_free(k[i]);
	free(k);
	free(reqs);
	free(lens);
	free(replies);
	free(cabuf.p);
	x509_cert_free(ca);
	curl_global_cleanup();
	return ok == n ? 0 : 1;
}
