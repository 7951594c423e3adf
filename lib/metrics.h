/*
 * Per-request metrics of a FastCGI worker: requests by status class and
 * a latency histogram, kept in the worker's memory (a few adds per
 * request, no statement) and added to the UNLOGGED table
 * mdm.metrics_request (sql/024) by one statement at most every
 * metrics_flush_seconds, on the connection the worker already has.  The
 * table holds totals over every worker and every restart of one: a
 * worker adds only what it counted since its last flush, so the totals
 * only grow (Prometheus counters) until PostgreSQL itself truncates the
 * UNLOGGED table after a crash, which a scraper sees as a counter reset.
 */
#ifndef MDM_METRICS_H
#define MDM_METRICS_H

#include "db.h"
#include "errors.h"

/* Upper bounds (seconds) of the latency buckets; +Inf is the last bucket. */
#define METRICS_BUCKETS 13
extern const double metrics_bucket_le[METRICS_BUCKETS];

/* Status classes 1xx..5xx; index 0 holds anything else (no response sent). */
#define METRICS_CLASSES 6

/*
 * Outcomes a program counts besides its requests (scep.fcgi: what each
 * PKIOperation answered), by name and label; each name and label
 * [A-Za-z_]{1,31}.  A handful per program: METRICS_OUTCOMES in all.
 */
#define METRICS_OUTCOMES 16
struct metrics_outcome {
	char name[32], label[32];
	long long n; /* since the last flush */
};
struct metrics {
	const char *program; /* "checkin.fcgi" */
	int flush_seconds;   /* 0: every request */
	double last_flush;   /* monotonic seconds */
	/* Since the last flush: per class, METRICS_BUCKETS + 1 bucket counts (not cumulative). */
	long long bucket[METRICS_CLASSES][METRICS_BUCKETS + 1];
	double sum[METRICS_CLASSES];
	long long pending; /* requests counted since the last flush */
	struct metrics_outcome outcome[METRICS_OUTCOMES];
	int n_outcomes; /* slots in use (kept across flushes, n zeroed) */
};

void metrics_init(struct metrics *m, const char *program, int flush_seconds, double now);
/* One request answered with status (0: none) after seconds. */
void metrics_observe(struct metrics *m, int status, double seconds);
/*
 * One outcome of the request being served: mdm.metrics_outcome (name,
 * label) at the next flush.  A name or label outside [A-Za-z_]{1,31}, or
 * more than METRICS_OUTCOMES pairs, is a programming error: logged once
 * and not counted.
 */
void metrics_outcome(struct metrics *m, const char *name, const char *label);
/*
 * Adds what was counted to mdm.metrics_request when flush_seconds have
 * passed since the last flush (force: now), then starts again from zero.
 * On a database error the counts are kept for the next flush: none lost.
 */
MDM_WUR mdm_err metrics_flush(struct metrics *m, db *d, double now, int force);

/*
 * May a scrape of GET /mdm/metrics read the metrics?  authorization is the
 * request's Authorization header (NULL when none); token_file the
 * metrics_token_file key (NULL: the URL is off).  The file holds one token
 * of 16 to 256 characters (a final newline ignored), read at every scrape
 * so that it can be changed without a restart.  MDM_OK when the header is
 * "Bearer <that token>" (compared in constant time); MDM_ERR_AUTH when it
 * has no Bearer token; MDM_ERR_FORBIDDEN for a wrong one; MDM_ERR_NOT_FOUND
 * when the URL is off; MDM_ERR_CONFIG when the file is unusable.  Devices
 * never have the token: a device certificate is no credential here.
 */
MDM_WUR mdm_err metrics_authorize(const char *authorization, const char *token_file);

/* CLOCK_MONOTONIC in seconds. */
double metrics_now(void);

#endif
