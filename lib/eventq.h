/*
 * The webhook outbox in PostgreSQL (sql/023_events.sql) as mdm-eventd sees
 * it: claim due events, decide what the receiver's answer means, record
 * it, sign a body, read the secret.  No HTTP here: lib/apns_http.c posts,
 * bin/mdm-eventd.c ties the two.
 */
#ifndef MDM_EVENTQ_H
#define MDM_EVENTQ_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "errors.h"

/* The secret file: at least EVENTQ_MIN_SECRET bytes, at most EVENTQ_MAX_SECRET. */
#define EVENTQ_MIN_SECRET 16
#define EVENTQ_MAX_SECRET 4096
/* "sha256=" and 64 hex digits. */
#define EVENTQ_SIG_LEN (7 + 64)

/* One claimed event.  payload is borrowed from the batch. */
struct eventq_item {
	long long id;
	int attempts; /* POSTs before this one */
	const char *payload;
	size_t len;
};

struct eventq_batch {
	db_res *res;
	struct eventq_item *items;
	size_t n;
};

/*
 * Claims up to max due events (1..10000) for lease_s seconds under
 * claimer (mdm.event_claim: FOR UPDATE SKIP LOCKED), in id order.  *b is
 * empty on error.
 */
MDM_WUR mdm_err eventq_claim(
        db *d, const char *claimer, int max, int lease_s, struct eventq_batch *b);
void eventq_batch_free(struct eventq_batch *b);

/* What an answer means. */
enum eventq_action {
	EVENTQ_DELIVERED,   /* 2xx */
	EVENTQ_UNAVAILABLE, /* no answer, 408, 429, 5xx: the receiver is down; the round stops */
	EVENTQ_REJECTED,    /* any other status: this event backs off, the round goes on */
	EVENTQ__MAX
};
enum eventq_action eventq_classify(int status);

/*
 * Seconds before the next attempt after attempts+1 consecutive failures:
 * min doubled per earlier failure, capped at max, then scaled into
 * [half, all] by u in [0, 1) (jitter).
 */
double eventq_backoff(int attempts, int min_s, int max_s, double u);

/*
 * Records one POST of the event (mdm.event_record): status 2xx delivered,
 * anything else a failure (error: what happened, for mdm.events; retry_s
 * until the next attempt).  *changed (may be NULL) is 0 when nothing
 * changed: delivered already, or claimed by another daemon since.
 */
MDM_WUR mdm_err eventq_record(db *d, long long id, const char *claimer, int status,
        const char *error, double retry_s, int *changed);
/* Gives back n claims not attempted, due again in retry_s (mdm.event_release). */
MDM_WUR mdm_err eventq_release(
        db *d, const long long *ids, size_t n, const char *claimer, double retry_s);
/* Seconds until the next undelivered event is due (0: now); -1 when none waits. */
MDM_WUR mdm_err eventq_next_due(db *d, double *seconds);
/* Deletes up to max events delivered more than keep_days ago; *deleted how many. */
MDM_WUR mdm_err eventq_prune(db *d, int keep_days, int max, long *deleted);
/* Starts (on 1) or stops (0) the recording of events (mdm.events_enable). */
MDM_WUR mdm_err eventq_enable(db *d, int on);

/*
 * The signature header's value, "sha256=" and the lower-case hex
 * HMAC-SHA256 of body under secret, into out[EVENTQ_SIG_LEN + 1].
 */
MDM_WUR mdm_err eventq_sign(const uint8_t *secret, size_t secretlen, const char *body, size_t len,
        char out[EVENTQ_SIG_LEN + 1]);

/*
 * Reads the shared secret from path: the file's bytes less trailing CR
 * and LF, EVENTQ_MIN_SECRET..EVENTQ_MAX_SECRET of them, no NUL; a file
 * that others (not owner or group) may read or write is refused.
 * MDM_ERR_CONFIG (logged, never the secret) otherwise.  *out is freed
 * with eventq_secret_free.
 */
MDM_WUR mdm_err eventq_secret_load(const char *path, uint8_t **out, size_t *outlen);
void eventq_secret_free(uint8_t *secret, size_t len);

#endif
