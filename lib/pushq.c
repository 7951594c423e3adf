/* mdm-pushd's side of sql/006_push.sql, 010_push_interval.sql and 019_push_batch.sql:
 * claim, classify, record a round in one statement, and when the next push comes due. */
#include "pushq.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { COL_ID, COL_UDID, COL_USER, COL_TOPIC, COL_TOKEN, COL_MAGIC, COL_SEQ, COL_FAIL, COL__MAX };

mdm_err pushq_claim(db *d, const char *claimer, int max, int lease_s, struct pushq_batch *b)
{
	char maxs[16], leases[16];
	const char *params[] = {claimer, maxs, leases};
	db_res *r = NULL;
	mdm_err rc;
	int rows;

	memset(b, 0, sizeof(*b));
	if (claimer == NULL || max < 1 || max > 10000 || lease_s < 1)
		return MDM_ERR_INVAL;
	snprintf(maxs, sizeof(maxs), "%d", max);
	snprintf(leases, sizeof(leases), "%d", lease_s);
	if ((rc = db_exec(d,
	             "SELECT enrollment_id, udid, user_id, topic, token_hex, push_magic, "
	             "claimed_seq, failures FROM mdm.push_claim($1, $2::integer, $3::integer)",
	             3, params, &r)) != MDM_OK)
		return rc;
	rows = db_res_rows(r);
	if (rows > max || db_res_cols(r) != COL__MAX) {
		log_error("push: mdm.push_claim returned %d rows of %d columns", rows,
		        db_res_cols(r));
		rc = MDM_ERR_INTERNAL;
		goto out;
	}
	if (rows > 0 && (b->items = calloc((size_t)rows, sizeof(*b->items))) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		struct pushq_item *it = &b->items[i];
		it->enrollment_id = strtoll(db_res_get0(r, i, COL_ID), NULL, 10);
		it->udid = db_res_get0(r, i, COL_UDID);
		it->user_id = db_res_get0(r, i, COL_USER);
		it->topic = db_res_get0(r, i, COL_TOPIC);
		it->token_hex = db_res_get0(r, i, COL_TOKEN);
		it->magic = db_res_get0(r, i, COL_MAGIC);
		it->claimed_seq = strtoll(db_res_get0(r, i, COL_SEQ), NULL, 10);
		it->failures = atoi(db_res_get0(r, i, COL_FAIL));
	}
	b->n = (size_t)rows;
	b->res = r;
	r = NULL;
out:
	db_res_free(r);
	if (rc != MDM_OK) {
		free(b->items);
		memset(b, 0, sizeof(*b));
	}
	return rc;
}

void pushq_batch_free(struct pushq_batch *b)
{
	if (b == NULL)
		return;
	free(b->items);
	db_res_free(b->res);
	memset(b, 0, sizeof(*b));
}

enum pushq_action pushq_classify(int status, const char *reason)
{
	/* Apple, "Handling notification responses from APNs". */
	if (status == 200)
		return PUSHQ_SENT;
	if (status == 410)
		return PUSHQ_TOKEN_INVALID;
	if (status == 400 && reason != NULL &&
	        (strcmp(reason, "BadDeviceToken") == 0 ||
	                strcmp(reason, "DeviceTokenNotForTopic") == 0))
		return PUSHQ_TOKEN_INVALID;
	if (status == 403)
		return PUSHQ_CERT;
	if (status == 0 || status == 429 || (status >= 500 && status <= 599))
		return PUSHQ_RETRY;
	return PUSHQ_REFUSED;
}

double pushq_backoff(int failures, int min_s, int max_s, double u)
{
	double d = min_s > 0 ? min_s : 1;

	if (max_s < min_s)
		max_s = min_s;
	for (int i = 0; i < failures && d < max_s; i++)
		d *= 2;
	if (d > max_s)
		d = max_s;
	if (u < 0 || u >= 1)
		u = 0;
	return d / 2 + d / 2 * u;
}

mdm_err pushq_record(db *d, const struct pushq_item *it, const char *claimer, int status,
        const char *apns_id, const char *reason, double retry_s, int token_invalid)
{
	struct pushq_result r = {it, status, apns_id, reason, retry_s, token_invalid};

	return pushq_record_batch(d, claimer, &r, 1);
}

/*
 * PostgreSQL array literals, one element each of at most PUSHQ_ELEM_MAX
 * characters (longer text is cut, as mdm.push_record_batch would cut it),
 * written into a buffer sized for n such elements: one bounded writer,
 * no growth.
 */
#define PUSHQ_ELEM_MAX 128
#define PUSHQ_ELEM_CAP (2 * PUSHQ_ELEM_MAX + 3) /* every character escaped, quotes, comma */

struct pushq_buf {
	char *p;
	size_t len, cap;
};

static int pushq_buf_new(struct pushq_buf *b, size_t n)
{
	b->len = 0;
	b->cap = n * PUSHQ_ELEM_CAP + 3;
	if ((b->p = malloc(b->cap)) == NULL)
		return 0;
	b->p[b->len++] = '{';
	return 1;
}

static void pushq_putc(struct pushq_buf *b, char c)
{
	/* The cap allows for every element at its longest: never reached. */
	if (b->len + 2 < b->cap)
		b->p[b->len++] = c;
}

/* Element i: NULL, or a quoted string with " and \ escaped; then, last, the closing brace. */
static void pushq_put_elem(struct pushq_buf *b, size_t i, const char *v)
{
	size_t k = 0;

	if (i > 0)
		pushq_putc(b, ',');
	if (v == NULL) {
		for (const char *c = "NULL"; *c != '\0'; c++)
			pushq_putc(b, *c);
		return;
	}
	pushq_putc(b, '"');
	for (const char *c = v; *c != '\0' && k < PUSHQ_ELEM_MAX; c++, k++) {
		if (*c == '"' || *c == '\\')
			pushq_putc(b, '\\');
		pushq_putc(b, *c);
	}
	pushq_putc(b, '"');
}

static void pushq_buf_end(struct pushq_buf *b)
{
	b->p[b->len++] = '}';
	b->p[b->len] = '\0';
}

enum { RB_ID, RB_SEQ, RB_STATUS, RB_APNS_ID, RB_REASON, RB_RETRY, RB_INVALID, RB__MAX };

mdm_err pushq_record_batch(db *d, const char *claimer, const struct pushq_result *r, size_t n)
{
	struct pushq_buf a[RB__MAX];
	const char *params[1 + RB__MAX];
	db_res *res = NULL;
	const char *missing;
	mdm_err rc = MDM_ERR_NOMEM;

	if (claimer == NULL || n > 100000)
		return MDM_ERR_INVAL;
	if (n == 0)
		return MDM_OK;
	memset(a, 0, sizeof(a));
	for (int k = 0; k < RB__MAX; k++)
		if (!pushq_buf_new(&a[k], n))
			goto out;
	for (size_t i = 0; i < n; i++) {
		char num[32];
		snprintf(num, sizeof(num), "%lld", r[i].it->enrollment_id);
		pushq_put_elem(&a[RB_ID], i, num);
		snprintf(num, sizeof(num), "%lld", r[i].it->claimed_seq);
		pushq_put_elem(&a[RB_SEQ], i, num);
		snprintf(num, sizeof(num), "%d", r[i].status);
		pushq_put_elem(&a[RB_STATUS], i, num);
		pushq_put_elem(&a[RB_APNS_ID], i, r[i].apns_id);
		pushq_put_elem(&a[RB_REASON], i, r[i].reason);
		snprintf(num, sizeof(num), "%.3f", r[i].retry_s > 0 ? r[i].retry_s : 0);
		pushq_put_elem(&a[RB_RETRY], i, num);
		pushq_put_elem(&a[RB_INVALID], i, r[i].token_invalid ? "t" : "f");
	}
	params[0] = claimer;
	for (int k = 0; k < RB__MAX; k++) {
		pushq_buf_end(&a[k]);
		params[1 + k] = a[k].p;
	}
	if ((rc = db_exec(d,
	             "SELECT array_to_string(mdm.push_record_batch($1, $2::bigint[], $3::bigint[], "
	             "$4::integer[], $5::text[], $6::text[], $7::double precision[], "
	             "$8::boolean[]), ' ')",
	             1 + RB__MAX, params, &res)) != MDM_OK)
		goto out;
	missing = db_res_rows(res) == 1 ? db_res_get0(res, 0, 0) : NULL;
	if (missing != NULL && missing[0] != '\0') {
		log_warn("push: enrollments with no push state to record into: %.200s", missing);
		rc = MDM_ERR_NOT_FOUND;
	}
out:
	for (int k = 0; k < RB__MAX; k++)
		free(a[k].p);
	db_res_free(res);
	return rc;
}

mdm_err pushq_next_due(db *d, double *seconds)
{
	db_res *r = NULL;
	const char *v;
	char *end = NULL;
	mdm_err rc;

	*seconds = -1;
	if ((rc = db_exec(d, "SELECT mdm.push_next_due()", 0, NULL, &r)) != MDM_OK)
		return rc;
	if (db_res_rows(r) != 1 || db_res_cols(r) != 1) {
		log_error("push: mdm.push_next_due returned %d rows of %d columns", db_res_rows(r),
		        db_res_cols(r));
		rc = MDM_ERR_INTERNAL;
		goto out;
	}
	if ((v = db_res_get0(r, 0, 0)) == NULL)
		goto out; /* nothing waits */
	*seconds = strtod(v, &end);
	if (end == v || *end != '\0' || !(*seconds >= 0)) {
		log_error("push: mdm.push_next_due returned %.32s", v);
		*seconds = -1;
		rc = MDM_ERR_INTERNAL;
	}
out:
	db_res_free(r);
	return rc;
}

mdm_err pushq_topic_record(db *d, const char *topic, int status, const char *reason)
{
	char sts[16];
	const char *params[] = {topic, sts, reason};

	if (topic == NULL)
		return MDM_ERR_INVAL;
	snprintf(sts, sizeof(sts), "%d", status);
	return db_exec(d, "SELECT mdm.push_topic_record($1, $2::integer, $3)", 3, params, NULL);
}
