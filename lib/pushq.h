/*
 * The push queue in PostgreSQL (sql/006_push.sql) as mdm-pushd sees it:
 * claim due pushes, decide what Apple's answer means, record outcomes.
 * No libcurl here: lib/apns.c sends, bin/mdm-pushd.c ties the two.
 */
#ifndef MDM_PUSHQ_H
#define MDM_PUSHQ_H

#include <stddef.h>

#include "db.h"
#include "errors.h"

/* One claimed push.  Strings are borrowed from the batch; token and magic are secrets. */
struct pushq_item {
	long long enrollment_id;
	const char *udid;
	const char *user_id;   /* NULL for the device channel */
	const char *topic;     /* NULL when the enrollment has none */
	const char *token_hex; /* NULL when there is no token */
	const char *magic;     /* NULL when there is no push magic */
	long long claimed_seq;
	int failures; /* consecutive failures before this attempt */
};

struct pushq_batch {
	db_res *res;
	struct pushq_item *items;
	size_t n;
};

/*
 * Claims up to max due pushes for lease_s seconds under claimer
 * (mdm.push_claim: FOR UPDATE SKIP LOCKED).  *b is empty on error.
 */
MDM_WUR mdm_err pushq_claim(
        db *d, const char *claimer, int max, int lease_s, struct pushq_batch *b);
void pushq_batch_free(struct pushq_batch *b);

/* What an answer means for the enrollment. */
enum pushq_action {
	PUSHQ_SENT,          /* 200 */
	PUSHQ_TOKEN_INVALID, /* 400 BadDeviceToken / DeviceTokenNotForTopic, 410: until TokenUpdate
	                      */
	PUSHQ_RETRY,         /* 429, 5xx, no answer: backoff with jitter */
	PUSHQ_CERT,          /* 403: the certificate or topic was refused; retry slowly */
	PUSHQ_REFUSED,       /* any other 4xx: our request is wrong; retry slowly */
	PUSHQ__MAX
};
enum pushq_action pushq_classify(int status, const char *reason);

/*
 * Seconds before the next attempt after failures+1 consecutive failures:
 * min doubled per earlier failure, capped at max, then scaled into
 * [half, all] by u in [0, 1) (jitter).
 */
double pushq_backoff(int failures, int min_s, int max_s, double u);

/*
 * Records one attempt (mdm.push_record) and releases claimer's claim.
 * reason may be NULL.  retry_s: seconds until the next attempt after a
 * failure, or the least gap before the next push after a success.
 */
MDM_WUR mdm_err pushq_record(db *d, const struct pushq_item *it, const char *claimer, int status,
        const char *apns_id, const char *reason, double retry_s, int token_invalid);

/* One attempt's outcome, for pushq_record_batch. */
struct pushq_result {
	const struct pushq_item *it;
	int status;
	const char *apns_id; /* may be NULL */
	const char *reason;  /* may be NULL */
	double retry_s;
	int token_invalid;
};

/*
 * Records n attempts in one statement (mdm.push_record_batch), each as
 * pushq_record does, and releases claimer's claims.  MDM_ERR_NOT_FOUND
 * when some enrollment had no push state (logged; the others are
 * recorded).  Each item at most once.
 */
MDM_WUR mdm_err pushq_record_batch(
        db *d, const char *claimer, const struct pushq_result *r, size_t n);

/*
 * Seconds until the next pending push may be claimed (mdm.push_next_due:
 * past its backoff, push_min_interval and any claim), 0 when one is due
 * now; -1 when none waits.  How long a daemon may sleep without making a
 * push held back by the interval late.
 */
MDM_WUR mdm_err pushq_next_due(db *d, double *seconds);

/* A topic-wide outcome (mdm.push_topic_record): 200, or the problem. */
MDM_WUR mdm_err pushq_topic_record(db *d, const char *topic, int status, const char *reason);

#endif
