/* Per-request metrics of a worker, flushed as deltas to mdm.metrics_request. */
#include "metrics.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const double metrics_bucket_le[METRICS_BUCKETS] = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

void metrics_init(struct metrics *m, const char *program, int flush_seconds, double now)
{
	memset(m, 0, sizeof(*m));
	m->program = program;
	m->flush_seconds = flush_seconds;
	m->last_flush = now;
}

void metrics_observe(struct metrics *m, int status, double seconds)
{
	int c = status >= 100 && status <= 599 ? status / 100 : 0;
	int b = 0;

	if (seconds < 0)
		seconds = 0;
	while (b < METRICS_BUCKETS && seconds > metrics_bucket_le[b])
		b++;
	m->bucket[c][b]++;
	m->sum[c] += seconds;
	m->pending++;
}

double metrics_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct out {
	char *buf;
	size_t size, off;
	int ok;
};

/* Appends sep (may be "") and then one value or nothing; ok 0 once it did not fit. */
static void put(struct out *o, const char *sep, const long long *n, const double *v)
{
	int k;

	if (!o->ok)
		return;
	if (n != NULL)
		k = snprintf(o->buf + o->off, o->size - o->off, "%s%lld", sep, *n);
	else if (v != NULL)
		k = snprintf(o->buf + o->off, o->size - o->off, "%s%.9g", sep, *v);
	else
		k = snprintf(o->buf + o->off, o->size - o->off, "%s", sep);
	if (k < 0 || (size_t)k >= o->size - o->off)
		o->ok = 0;
	else
		o->off += (size_t)k;
}

static int metrics_word(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 31 &&
	        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_") == n;
}

void metrics_outcome(struct metrics *m, const char *name, const char *label)
{
	static int warned;
	int i;

	for (i = 0; i < m->n_outcomes; i++)
		if (strcmp(m->outcome[i].name, name) == 0 &&
		        strcmp(m->outcome[i].label, label) == 0)
			break;
	if (i == m->n_outcomes) {
		if (i == METRICS_OUTCOMES || !metrics_word(name) || !metrics_word(label)) {
			if (!warned++)
				log_error("metrics: outcome %.40s/%.40s not counted (bad name or "
				          "label, or more than %d)",
				        name, label, METRICS_OUTCOMES);
			return;
		}
		memcpy(m->outcome[i].name, name, strlen(name) + 1);
		memcpy(m->outcome[i].label, label, strlen(label) + 1);
		m->n_outcomes++;
	}
	m->outcome[i].n++;
}

/* The outcomes counted since the last flush into mdm.metrics_outcome; zeroed when added. */
static MDM_WUR mdm_err metrics_flush_outcomes(struct metrics *m, db *d)
{
	char nb[METRICS_OUTCOMES * 34 + 4], lb[METRICS_OUTCOMES * 34 + 4],
	        cb[METRICS_OUTCOMES * 21 + 4];
	struct out no = {nb, sizeof nb, 0, 1}, lo = {lb, sizeof lb, 0, 1},
	           co = {cb, sizeof cb, 0, 1};
	const char *p[4];
	int rows = 0;
	mdm_err rc;

	put(&no, "{", NULL, NULL);
	put(&lo, "{", NULL, NULL);
	put(&co, "{", NULL, NULL);
	for (int i = 0; i < m->n_outcomes; i++) {
		if (m->outcome[i].n == 0)
			continue;
		/* [A-Za-z_] only (metrics_outcome): no quoting needed in an array literal. */
		put(&no, rows ? "," : "", NULL, NULL);
		put(&no, m->outcome[i].name, NULL, NULL);
		put(&lo, rows ? "," : "", NULL, NULL);
		put(&lo, m->outcome[i].label, NULL, NULL);
		put(&co, rows ? "," : "", &m->outcome[i].n, NULL);
		rows++;
	}
	put(&no, "}", NULL, NULL);
	put(&lo, "}", NULL, NULL);
	put(&co, "}", NULL, NULL);
	if (rows == 0)
		return MDM_OK;
	if (!no.ok || !lo.ok || !co.ok) {
		log_error("metrics: the outcomes do not fit their buffer");
		return MDM_ERR_INTERNAL;
	}
	p[0] = m->program;
	p[1] = nb;
	p[2] = lb;
	p[3] = cb;
	if ((rc = db_exec(d,
	             "SELECT mdm.metrics_outcome_add($1, $2::text[], $3::text[], $4::bigint[])", 4,
	             p, NULL)) != MDM_OK)
		return rc;
	for (int i = 0; i < m->n_outcomes; i++)
		m->outcome[i].n = 0;
	return MDM_OK;
}

mdm_err metrics_flush(struct metrics *m, db *d, double now, int force)
{
	/* classes int[], buckets bigint[][] (a row per class), sums float8[] */
	char cb[64], bb[METRICS_CLASSES * (METRICS_BUCKETS + 1) * 21 + 64], sb[256];
	struct out co = {cb, sizeof cb, 0, 1}, bo = {bb, sizeof bb, 0, 1},
	           so = {sb, sizeof sb, 0, 1};
	int rows = 0;
	const char *p[4];
	mdm_err rc;

	if (m->pending == 0 || (!force && now - m->last_flush < m->flush_seconds))
		return MDM_OK;
	put(&co, "{", NULL, NULL);
	put(&bo, "{", NULL, NULL);
	put(&so, "{", NULL, NULL);
	for (long long c = 0; c < METRICS_CLASSES; c++) {
		long long n = 0;
		for (int b = 0; b <= METRICS_BUCKETS; b++)
			n += m->bucket[c][b];
		if (n == 0)
			continue;
		put(&co, rows ? "," : "", &c, NULL);
		put(&so, rows ? "," : "", NULL, &m->sum[c]);
		put(&bo, rows ? ",{" : "{", NULL, NULL);
		for (int b = 0; b <= METRICS_BUCKETS; b++)
			put(&bo, b ? "," : "", &m->bucket[c][b], NULL);
		put(&bo, "}", NULL, NULL);
		rows++;
	}
	put(&co, "}", NULL, NULL);
	put(&bo, "}", NULL, NULL);
	put(&so, "}", NULL, NULL);
	if (!co.ok || !bo.ok || !so.ok) {
		log_error("metrics: the counts do not fit their buffer");
		return MDM_ERR_INTERNAL;
	}
	p[0] = m->program;
	p[1] = cb;
	p[2] = bb;
	p[3] = sb;
	rc = db_exec(d, "SELECT mdm.metrics_request_add($1, $2::int[], $3::bigint[], $4::float8[])",
	        4, p, NULL);
	/* Kept on failure: added at the next flush; the interval starts again either way, so a
	 * database that is away costs one attempt per interval, not one per request. */
	m->last_flush = now;
	if (rc != MDM_OK)
		return rc;
	memset(m->bucket, 0, sizeof(m->bucket));
	memset(m->sum, 0, sizeof(m->sum));
	m->pending = 0;
	/* Kept on failure too, for the next flush. */
	return metrics_flush_outcomes(m, d);
}

#define METRICS_TOKEN_MIN 16
#define METRICS_TOKEN_MAX 256

/* Equal strings, in time that depends on the length of secret only. */
static int metrics_ct_equal(const char *given, size_t glen, const char *secret, size_t slen)
{
	volatile unsigned char diff = (unsigned char)(glen != slen);

	for (size_t i = 0; i < slen; i++)
		diff |= (unsigned char)(secret[i] ^ (i < glen ? given[i] : 0));
	return diff == 0;
}

mdm_err metrics_authorize(const char *authorization, const char *token_file)
{
	static const char bearer[] = "Bearer ";
	char tok[METRICS_TOKEN_MAX + 3];
	size_t n;
	FILE *fp;
	int ok;

	if (token_file == NULL || token_file[0] == '\0')
		return MDM_ERR_NOT_FOUND;
	/* RFC 6750 2.1: "Bearer" (case-insensitive), one space, the token. */
	if (authorization == NULL || strncasecmp(authorization, bearer, sizeof(bearer) - 1) != 0 ||
	        authorization[sizeof(bearer) - 1] == '\0' ||
	        authorization[sizeof(bearer) - 1] == ' ') {
		log_warn("metrics: no Authorization: Bearer token: refused");
		return MDM_ERR_AUTH;
	}
	if ((fp = fopen(token_file, "re")) == NULL) {
		log_error("metrics: metrics_token_file %s: %s", token_file, strerror(errno));
		return MDM_ERR_CONFIG;
	}
	n = fread(tok, 1, sizeof(tok) - 1, fp);
	fclose(fp);
	if (n > 0 && tok[n - 1] == '\n')
		n--;
	if (n > 0 && tok[n - 1] == '\r')
		n--;
	tok[n] = '\0';
	if (n < METRICS_TOKEN_MIN || n > METRICS_TOKEN_MAX || strlen(tok) != n ||
	        strpbrk(tok, " \t\r\n") != NULL) {
		explicit_bzero(tok, sizeof(tok));
		log_error("metrics: metrics_token_file %s must hold one token of %d to %d "
		          "characters without spaces",
		        token_file, METRICS_TOKEN_MIN, METRICS_TOKEN_MAX);
		return MDM_ERR_CONFIG;
	}
	authorization += sizeof(bearer) - 1;
	ok = metrics_ct_equal(authorization, strlen(authorization), tok, n);
	explicit_bzero(tok, sizeof(tok));
	if (!ok) {
		log_warn("metrics: the Bearer token does not match metrics_token_file: refused");
		return MDM_ERR_FORBIDDEN;
	}
	return MDM_OK;
}
