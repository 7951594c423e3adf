/* mdm-eventd's side of sql/023_events.sql: claim, classify, record, sign, the secret. */
#include "config.h"
#include "eventq.h"
#include "log.h"
#include "x509.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { COL_ID, COL_ATTEMPTS, COL_PAYLOAD, COL__MAX };

mdm_err eventq_claim(db *d, const char *claimer, int max, int lease_s, struct eventq_batch *b)
{
	char maxs[16], leases[16];
	const char *params[] = {claimer, maxs, leases};
	db_res *r = NULL;
	mdm_err rc;
	int rows;

	memset(b, 0, sizeof(*b));
	if (claimer == NULL || max < 1 || max > 10000 || lease_s < 1 || lease_s > 86400)
		return MDM_ERR_INVAL;
	snprintf(maxs, sizeof(maxs), "%d", max);
	snprintf(leases, sizeof(leases), "%d", lease_s);
	if ((rc = db_exec(d,
	             "SELECT id, attempts, payload FROM mdm.event_claim($1, $2::integer, "
	             "$3::integer)",
	             3, params, &r)) != MDM_OK)
		return rc;
	rows = db_res_rows(r);
	if (rows > max || db_res_cols(r) != COL__MAX) {
		log_error("events: mdm.event_claim returned %d rows of %d columns", rows,
		        db_res_cols(r));
		rc = MDM_ERR_INTERNAL;
		goto out;
	}
	if (rows > 0 && (b->items = calloc((size_t)rows, sizeof(*b->items))) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		struct eventq_item *it = &b->items[i];
		const char *p = db_res_get0(r, i, COL_PAYLOAD);
		if (p == NULL || db_res_get0(r, i, COL_ID) == NULL) {
			log_error("events: mdm.event_claim returned a row without id or payload");
			rc = MDM_ERR_INTERNAL;
			goto out;
		}
		it->id = strtoll(db_res_get0(r, i, COL_ID), NULL, 10);
		it->attempts = atoi(db_res_get0(r, i, COL_ATTEMPTS));
		it->payload = p;
		it->len = strlen(p);
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

void eventq_batch_free(struct eventq_batch *b)
{
	if (b == NULL)
		return;
	free(b->items);
	db_res_free(b->res);
	memset(b, 0, sizeof(*b));
}

enum eventq_action eventq_classify(int status)
{
	if (status >= 200 && status <= 299)
		return EVENTQ_DELIVERED;
	/* Nobody answered, or the receiver said it cannot take anything now. */
	if (status == 0 || status == 408 || status == 429 || (status >= 500 && status <= 599))
		return EVENTQ_UNAVAILABLE;
	return EVENTQ_REJECTED;
}

double eventq_backoff(int attempts, int min_s, int max_s, double u)
{
	double d = min_s > 0 ? min_s : 1;

	if (max_s < min_s)
		max_s = min_s;
	for (int i = 0; i < attempts && d < max_s; i++)
		d *= 2;
	if (d > max_s)
		d = max_s;
	if (u < 0 || u >= 1)
		u = 0;
	return d / 2 + d / 2 * u;
}

mdm_err eventq_record(db *d, long long id, const char *claimer, int status, const char *error,
        double retry_s, int *changed)
{
	char ids[24], sts[16], rs[32];
	const char *params[] = {ids, claimer, sts, error, rs};
	db_res *r = NULL;
	mdm_err rc;

	if (changed != NULL)
		*changed = 0;
	if (claimer == NULL)
		return MDM_ERR_INVAL;
	snprintf(ids, sizeof(ids), "%lld", id);
	snprintf(sts, sizeof(sts), "%d", status);
	snprintf(rs, sizeof(rs), "%.3f", retry_s > 0 ? retry_s : 0);
	if ((rc = db_exec(d,
	             "SELECT mdm.event_record($1::bigint, $2, $3::integer, $4, "
	             "$5::double precision)",
	             5, params, &r)) != MDM_OK)
		return rc;
	if (changed != NULL)
		*changed = db_res_rows(r) == 1 && db_res_get0(r, 0, 0) != NULL &&
		        strcmp(db_res_get0(r, 0, 0), "t") == 0;
	db_res_free(r);
	return MDM_OK;
}

mdm_err eventq_release(db *d, const long long *ids, size_t n, const char *claimer, double retry_s)
{
	char *arr = NULL, rs[32];
	const char *params[3];
	size_t cap, len = 0;
	mdm_err rc;

	if (n == 0)
		return MDM_OK;
	if (ids == NULL || claimer == NULL || n > 10000)
		return MDM_ERR_INVAL;
	/* "{1,2,3}": at most 20 digits, a sign and a comma per id. */
	cap = n * 22 + 3;
	if ((arr = malloc(cap)) == NULL)
		return MDM_ERR_NOMEM;
	arr[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(arr + len, cap - len, "%s%lld", i ? "," : "", ids[i]);
	arr[len++] = '}';
	arr[len] = '\0';
	snprintf(rs, sizeof(rs), "%.3f", retry_s > 0 ? retry_s : 0);
	params[0] = arr;
	params[1] = claimer;
	params[2] = rs;
	rc = db_exec(d, "SELECT mdm.event_release($1::bigint[], $2, $3::double precision)", 3,
	        params, NULL);
	free(arr);
	return rc;
}

mdm_err eventq_next_due(db *d, double *seconds)
{
	db_res *r = NULL;
	mdm_err rc;

	*seconds = -1;
	if ((rc = db_exec(d, "SELECT mdm.event_next_due()", 0, NULL, &r)) != MDM_OK)
		return rc;
	if (db_res_rows(r) == 1 && !db_res_is_null(r, 0, 0))
		*seconds = strtod(db_res_get0(r, 0, 0), NULL);
	db_res_free(r);
	return MDM_OK;
}

mdm_err eventq_prune(db *d, int keep_days, int max, long *deleted)
{
	char ks[16], ms[16];
	const char *params[] = {ks, ms};
	db_res *r = NULL;
	mdm_err rc;

	*deleted = 0;
	if (keep_days < 0 || max < 1)
		return MDM_ERR_INVAL;
	snprintf(ks, sizeof(ks), "%d", keep_days);
	snprintf(ms, sizeof(ms), "%d", max);
	if ((rc = db_exec(d, "SELECT mdm.event_prune($1::integer, $2::integer)", 2, params, &r)) !=
	        MDM_OK)
		return rc;
	if (db_res_rows(r) == 1 && !db_res_is_null(r, 0, 0))
		*deleted = strtol(db_res_get0(r, 0, 0), NULL, 10);
	db_res_free(r);
	return MDM_OK;
}

mdm_err eventq_enable(db *d, int on)
{
	const char *params[] = {on ? "true" : "false"};

	return db_exec(d, "SELECT mdm.events_enable($1::boolean)", 1, params, NULL);
}

mdm_err eventq_sign(const uint8_t *secret, size_t secretlen, const char *body, size_t len,
        char out[EVENTQ_SIG_LEN + 1])
{
	char hex[X509_FP_HEX_LEN + 1];
	mdm_err rc;

	out[0] = '\0';
	if ((rc = x509_hmac_sha256_hex(secret, secretlen, (const uint8_t *)body, len, hex)) !=
	        MDM_OK)
		return rc;
	memcpy(out, "sha256=", 7);
	memcpy(out + 7, hex, X509_FP_HEX_LEN + 1);
	return MDM_OK;
}

void eventq_secret_free(uint8_t *secret, size_t len)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, len);
	free(secret);
}

mdm_err eventq_secret_load(const char *path, uint8_t **out, size_t *outlen)
{
	char *buf = NULL;
	size_t got = 0, len;
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if (path == NULL || path[0] == '\0') {
		log_error("config: webhook_secret_file is required: the file holding the webhook "
		          "signature secret");
		return MDM_ERR_CONFIG;
	}
	/* Trailing CR/LF are trimmed below, so allow a few bytes over the limit. */
	rc = config_file_read(path, "webhook_secret_file", EVENTQ_MAX_SECRET + 2, 1, &buf, &got);
	if (rc == MDM_ERR_NOT_FOUND) {
		log_error("config: webhook_secret_file %s cannot be opened: %s", path,
		        strerror(ENOENT));
		return MDM_ERR_CONFIG;
	}
	if (rc != MDM_OK)
		return rc;
	len = got;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	rc = MDM_ERR_CONFIG;
	if (memchr(buf, '\0', len) != NULL) {
		log_error("config: webhook_secret_file %s holds a NUL byte", path);
		goto out;
	}
	if (len < EVENTQ_MIN_SECRET || len > EVENTQ_MAX_SECRET) {
		log_error("config: the secret in webhook_secret_file %s must be %d to %d bytes "
		          "(openssl rand -hex 32 makes one)",
		        path, EVENTQ_MIN_SECRET, EVENTQ_MAX_SECRET);
		goto out;
	}
	/* Zero what was trimmed: eventq_secret_free clears len bytes only. */
	explicit_bzero(buf + len, got - len);
	*out = (uint8_t *)buf;
	*outlen = len;
	buf = NULL;
	rc = MDM_OK;
out:
	if (buf != NULL)
		eventq_secret_free((uint8_t *)buf, got);
	return rc;
}
