/* CA lifecycle on mdm.ca / mdm.certificate, and the per-process CA state. */
#include "ca.h"
#include "log.h"
#include "x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

void ca_state_free(struct ca_state *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->n_verify; i++)
		x509_cert_free(st->verify[i]);
	free(st->verify);
	x509_cert_free(st->active);
	x509_key_free(st->active_key);
	x509_cert_free(st->next);
	x509_cert_free(st->ra);
	x509_key_free(st->ra_key);
	x509_cert_free(st->responder);
	free(st);
}

mdm_err ca_cert_from_res(const db_res *r, int row, int col, struct x509_st **out)
{
	uint8_t *der = NULL;
	size_t len = 0;
	mdm_err rc;

	*out = NULL;
	if ((rc = db_res_get_bytea(r, row, col, &der, &len)) != MDM_OK)
		return rc == MDM_ERR_NOT_FOUND ? MDM_ERR_DB : rc;
	rc = x509_cert_from_der(der, len, out);
	free(der);
	return rc;
}

/* NOTIFY'd by mdm.ca's trigger on every change (sql/021). */
#define CA_CHANNEL "mdm_ca"

static MDM_WUR mdm_err ca_generation(db *d, char *out, size_t cap)
{
	db_res *r = NULL;
	mdm_err rc;

	rc = db_exec(d,
	        "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM mdm.ca_generation", 0,
	        NULL, &r);
	if (rc == MDM_OK)
		snprintf(out, cap, "%s", db_res_get0(r, 0, 0) ? db_res_get0(r, 0, 0) : "0");
	db_res_free(r);
	return rc;
}

static MDM_WUR mdm_err ca_load_ra(const config *cfg, struct ca_state *st)
{
	const char *cert = config_get0(cfg, "ra_cert"), *key = config_get0(cfg, "ra_key");
	mdm_err rc;

	if (cert == NULL && key == NULL)
		return MDM_OK;
	if (cert == NULL || key == NULL) {
		log_error("ca: ra_cert and ra_key go together (RFC 8894 section 2.5.1)");
		return MDM_ERR_CONFIG;
	}
	if ((rc = x509_cert_load_file(cert, &st->ra)) != MDM_OK)
		return rc;
	if ((rc = x509_key_load(key, &st->ra_key)) != MDM_OK)
		return rc;
	if (!x509_key_matches_cert(st->ra_key, st->ra)) {
		log_error("ca: ra_key does not belong to ra_cert");
		return MDM_ERR_CONFIG;
	}
	return MDM_OK;
}

static MDM_WUR mdm_err ca_load_as(db *d, const config *cfg, int certs_only, struct ca_state **out)
{
	struct ca_state *st;
	db_res *r = NULL;
	mdm_err rc;
	int rows;

	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return MDM_ERR_NOMEM;
	st->certs_only = certs_only;
	/* Before the first read, so that a change after it is announced (ca_refresh). */
	if ((rc = db_listen(d, CA_CHANNEL)) != MDM_OK ||
	        (rc = ca_generation(d, st->generation, sizeof(st->generation))) != MDM_OK)
		goto out;
	/* Active first, then next, then retired (newest first). */
	rc = db_exec(d,
	        "SELECT a.state, a.key_uri, c.der, c.id FROM mdm.ca a "
	        "JOIN mdm.certificate c ON c.id = a.certificate_id "
	        "ORDER BY a.state = 'active' DESC, a.state = 'next' DESC, a.id DESC",
	        0, NULL, &r);
	if (rc != MDM_OK)
		goto out;
	rows = db_res_rows(r);
	if (rows == 0 || strcmp(db_res_get0(r, 0, 0), "active") != 0) {
		log_error("ca: no active CA; create one with `mdmctl ca init`");
		rc = MDM_ERR_NOT_FOUND;
		goto out;
	}
	if ((st->verify = calloc((size_t)rows, sizeof(*st->verify))) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < rows; i++) {
		const char *state = db_res_get0(r, i, 0);
		struct x509_st *c = NULL;

		if ((rc = ca_cert_from_res(r, i, 2, &c)) != MDM_OK)
			goto out;
		if (strcmp(state, "next") == 0) {
			st->next = c;
			continue;
		}
		st->verify[st->n_verify++] = c;
		if (strcmp(state, "active") == 0) {
			st->active = x509_cert_up_ref(c);
			st->active_id = atoll(db_res_get0(r, i, 3));
			if (certs_only)
				continue;
			if ((rc = x509_key_load(db_res_get0(r, i, 1), &st->active_key)) != MDM_OK)
				goto out;
			if (!x509_key_matches_cert(st->active_key, st->active)) {
				log_error(
				        "ca: the key at the active CA's key_uri does not match it");
				rc = MDM_ERR_CONFIG;
				goto out;
			}
		}
	}
	if (certs_only)
		goto done;
	if ((rc = ca_load_ra(cfg, st)) != MDM_OK)
		goto out;
	/* Without an RA, the active key's SCEP responder (none for a key that is not RSA). */
	if (st->ra == NULL) {
		rc = x509_scep_responder(st->active, st->active_key, &st->responder);
		if (rc == MDM_ERR_NOT_FOUND)
			rc = MDM_OK;
		else if (rc != MDM_OK)
			goto out;
	}
done:
	*out = st;
	st = NULL;
out:
	db_res_free(r);
	ca_state_free(st);
	return rc;
}

mdm_err ca_load(db *d, const config *cfg, struct ca_state **out)
{
	return ca_load_as(d, cfg, 0, out);
}

mdm_err ca_load_certs(db *d, const config *cfg, struct ca_state **out)
{
	return ca_load_as(d, cfg, 1, out);
}

static MDM_WUR mdm_err ca_refresh_as(db *d, const config *cfg, int certs_only, struct ca_state **st)
{
	char gen[32];
	struct ca_state *fresh = NULL;
	int got = 0;
	mdm_err rc;

	if (*st != NULL) {
		/*
		 * mdm.ca's trigger sends NOTIFY mdm_ca (sql/021): without one, and
		 * on the same connection, nothing changed and nothing is read.  A
		 * new connection counts as one (what was sent meanwhile is lost).
		 */
		rc = db_wait_notify(d, 0, &got);
		if (rc == MDM_ERR_DB_CONN)
			got = 1; /* the generation's query reconnects */
		else if (rc != MDM_OK)
			return rc;
		if (got == 0)
			return MDM_OK;
		if ((rc = ca_generation(d, gen, sizeof(gen))) != MDM_OK)
			return rc;
		if (strcmp(gen, (*st)->generation) == 0)
			return MDM_OK;
		log_info("ca: mdm.ca changed (generation %s), reloading", gen);
	}
	if ((rc = ca_load_as(d, cfg, certs_only, &fresh)) != MDM_OK)
		return rc;
	ca_state_free(*st);
	*st = fresh;
	return MDM_OK;
}

mdm_err ca_refresh(db *d, const config *cfg, struct ca_state **st)
{
	return ca_refresh_as(d, cfg, *st != NULL && (*st)->certs_only, st);
}

mdm_err ca_refresh_certs(db *d, const config *cfg, struct ca_state **st)
{
	return ca_refresh_as(d, cfg, 1, st);
}

mdm_err ca_cert_insert(db *d, struct x509_st *cert, const char *kind, const char *udid,
        const char *renewal_of, const char *transaction_id, long long *id)
{
	struct x509_info info;
	uint8_t *der = NULL;
	size_t derlen = 0;
	char nb[32], na[32];
	const char *values[11];
	int lengths[11] = {0}, formats[11] = {0};
	db_res *r = NULL;
	mdm_err rc;

	*id = 0;
	if ((rc = x509_cert_info(cert, &info)) != MDM_OK ||
	        (rc = x509_cert_to_der(cert, &der, &derlen)) != MDM_OK)
		goto out;
	snprintf(nb, sizeof(nb), "%lld", (long long)info.not_before);
	snprintf(na, sizeof(na), "%lld", (long long)info.not_after);
	values[0] = info.sha256;
	values[1] = info.serial;
	values[2] = info.issuer;
	values[3] = info.subject;
	values[4] = nb;
	values[5] = na;
	values[6] = (const char *)der;
	lengths[6] = (int)derlen;
	formats[6] = 1;
	values[7] = kind;
	values[8] = udid;
	values[9] = renewal_of;
	values[10] = transaction_id;
	/*
	 * One statement: with a transactionID, the SCEP transaction that asked
	 * for it (inserted earlier in the caller's transaction) is marked
	 * issued and the challenge that authorised it, if one did, points at
	 * what it bought.  Three round trips were one per enrollment each.
	 */
	rc = db_exec_bin(d,
	        "WITH c AS (INSERT INTO mdm.certificate (sha256, serial, issuer, subject, "
	        " not_before, not_after, der, kind, udid, renewal_of, transaction_id) "
	        " VALUES ($1, $2, $3, $4, to_timestamp($5::bigint), to_timestamp($6::bigint), "
	        " $7, $8, $9, $10::bigint, $11) RETURNING id), "
	        "t AS (UPDATE mdm.scep_transaction SET status = 'issued', "
	        " certificate_id = (SELECT id FROM c), decided_at = coalesce(decided_at, now()) "
	        " WHERE $11::text IS NOT NULL AND transaction_id = $11 RETURNING challenge_id), "
	        "ch AS (UPDATE mdm.challenge SET used_by_certificate = (SELECT id FROM c) "
	        " WHERE id = (SELECT challenge_id FROM t)) "
	        "SELECT id FROM c",
	        11, values, lengths, formats, &r);
	if (rc == MDM_OK)
		*id = atoll(db_res_get0(r, 0, 0));
out:
	db_res_free(r);
	free(der);
	return rc;
}

struct ca_insert_arg {
	struct x509_st *cert;
	const char *key_uri;
	const char *state; /* "active" or "next" */
};

static MDM_WUR mdm_err ca_insert_tx(db *d, void *arg)
{
	struct ca_insert_arg *a = arg;
	char id[32];
	const char *params[3];
	long long cid;
	db_res *r = NULL;
	mdm_err rc;

	/* One writer at a time: two `mdmctl ca` runs must not both pass the checks. */
	if ((rc = db_exec(d, "LOCK TABLE mdm.ca IN EXCLUSIVE MODE", 0, NULL, NULL)) != MDM_OK)
		return rc;
	params[0] = a->state;
	if ((rc = db_exec(d, "SELECT count(*) FROM mdm.ca WHERE state = $1", 1, params, &r)) !=
	        MDM_OK)
		return rc;
	if (strcmp(db_res_get0(r, 0, 0), "0") != 0) {
		log_error("ca: there is already a%s CA",
		        strcmp(a->state, "next") == 0 ? " staged next" : "n active");
		db_res_free(r);
		return MDM_ERR_CONFLICT;
	}
	db_res_free(r);
	if ((rc = ca_cert_insert(d, a->cert, "ca", NULL, NULL, NULL, &cid)) != MDM_OK)
		return rc;
	snprintf(id, sizeof(id), "%lld", cid);
	params[0] = id;
	params[1] = a->key_uri;
	params[2] = a->state;
	return db_exec(d,
	        "INSERT INTO mdm.ca (certificate_id, key_uri, state, activated_at) "
	        "VALUES ($1::bigint, $2, $3, CASE WHEN $3 = 'active' THEN now() END)",
	        3, params, NULL);
}

/* The key for a new CA certificate: generated and written, or loaded. */
static MDM_WUR mdm_err ca_get_key(int bits, const char *key_out, const char *key_uri,
        struct evp_pkey_st **key, const char **uri)
{
	mdm_err rc;

	*key = NULL;
	*uri = NULL;
	if (key_out != NULL) {
		if ((rc = x509_key_generate_rsa(bits, key)) != MDM_OK)
			return rc;
		if ((rc = x509_key_write_pem(*key, key_out)) != MDM_OK) {
			x509_key_free(*key);
			*key = NULL;
			return rc;
		}
		*uri = key_out;
		return MDM_OK;
	}
	if ((rc = x509_key_load(key_uri, key)) != MDM_OK)
		return rc;
	*uri = key_uri;
	return MDM_OK;
}

mdm_err ca_init(db *d, const char *subject, int days, int bits, const char *key_out,
        const char *key_uri, time_t now)
{
	struct evp_pkey_st *key = NULL;
	struct ca_insert_arg a = {NULL, NULL, "active"};
	mdm_err rc;

	if ((key_out == NULL) == (key_uri == NULL))
		return MDM_ERR_INVAL;
	if ((rc = ca_get_key(bits, key_out, key_uri, &key, &a.key_uri)) != MDM_OK)
		return rc;
	if ((rc = x509_ca_create(key, subject, days, now, &a.cert)) != MDM_OK)
		goto out;
	rc = db_tx(d, ca_insert_tx, &a);
out:
	x509_cert_free(a.cert);
	x509_key_free(key);
	return rc;
}

mdm_err ca_stage_next(
        db *d, int days, int bits, const char *key_out, const char *key_uri, time_t now)
{
	struct evp_pkey_st *key = NULL;
	struct x509_st *active = NULL;
	struct ca_insert_arg a = {NULL, NULL, "next"};
	db_res *r = NULL;
	char *active_uri = NULL;
	mdm_err rc;

	if (key_out != NULL && key_uri != NULL)
		return MDM_ERR_INVAL;
	rc = db_exec(d,
	        "SELECT a.key_uri, c.der FROM mdm.ca a JOIN mdm.certificate c "
	        "ON c.id = a.certificate_id WHERE a.state = 'active'",
	        0, NULL, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		log_error("ca: no active CA to renew or re-key; run `mdmctl ca init` first");
		rc = MDM_ERR_NOT_FOUND;
		goto out;
	}
	if ((rc = ca_cert_from_res(r, 0, 1, &active)) != MDM_OK)
		goto out;
	if (key_out == NULL && key_uri == NULL) {
		/* Renewal: the same key. */
		if ((active_uri = strdup(db_res_get0(r, 0, 0))) == NULL) {
			rc = MDM_ERR_NOMEM;
			goto out;
		}
		rc = ca_get_key(bits, NULL, active_uri, &key, &a.key_uri);
	} else {
		rc = ca_get_key(bits, key_out, key_uri, &key, &a.key_uri);
	}
	if (rc != MDM_OK)
		goto out;
	if ((rc = x509_ca_next(active, key, days, now, &a.cert)) != MDM_OK)
		goto out;
	rc = db_tx(d, ca_insert_tx, &a);
out:
	db_res_free(r);
	free(active_uri);
	x509_cert_free(active);
	x509_cert_free(a.cert);
	x509_key_free(key);
	return rc;
}

static MDM_WUR mdm_err ca_activate_tx(db *d, void *arg)
{
	db_res *r = NULL;
	mdm_err rc;

	(void)arg;
	if ((rc = db_exec(d, "LOCK TABLE mdm.ca IN EXCLUSIVE MODE", 0, NULL, NULL)) != MDM_OK)
		return rc;
	if ((rc = db_exec(d, "SELECT count(*) FROM mdm.ca WHERE state = 'next'", 0, NULL, &r)) !=
	        MDM_OK)
		return rc;
	if (strcmp(db_res_get0(r, 0, 0), "1") != 0) {
		db_res_free(r);
		log_error("ca: nothing staged; run `mdmctl ca renew` or `mdmctl ca rekey` first");
		return MDM_ERR_NOT_FOUND;
	}
	db_res_free(r);
	if ((rc = db_exec(d,
	             "UPDATE mdm.ca SET state = 'retired', retired_at = now() "
	             "WHERE state = 'active'",
	             0, NULL, NULL)) != MDM_OK)
		return rc;
	return db_exec(d,
	        "UPDATE mdm.ca SET state = 'active', activated_at = now() WHERE state = 'next'", 0,
	        NULL, NULL);
}

mdm_err ca_activate(db *d)
{
	return db_tx(d, ca_activate_tx, NULL);
}

/* Creates path (never replacing a file) with the whole of buf, fsynced. */
static MDM_WUR mdm_err ca_write_new(const char *path, const char *buf, size_t len, mode_t mode)
{
	size_t done = 0;
	int fd, err;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
	             mode)) < 0) {
		err = errno;
		log_error("ca: create %s: %s", path, strerror(err));
		return err == EEXIST ? MDM_ERR_CONFLICT : MDM_ERR_IO;
	}
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("ca: write %s: %s", path, strerror(errno));
			goto fail;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0) {
		log_error("ca: fsync %s: %s", path, strerror(errno));
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		log_error("ca: close %s: %s", path, strerror(errno));
		goto fail;
	}
	return MDM_OK;
fail:
	if (fd >= 0)
		close(fd);
	unlink(path);
	return MDM_ERR_IO;
}

mdm_err ca_server_cert(db *d, const config *cfg, const char *subject, int days, int bits,
        const char *key_out, const char *cert_out, time_t now)
{
	struct ca_state *st = NULL;
	struct evp_pkey_st *key = NULL;
	struct x509_st *cert = NULL;
	char *pem = NULL;
	size_t pemlen = 0;
	long long id = 0;
	int key_written = 0, cert_written = 0;
	mdm_err rc;

	if (subject == NULL || key_out == NULL || cert_out == NULL)
		return MDM_ERR_INVAL;
	if (access(cert_out, F_OK) == 0) {
		log_error("ca: %s exists; a certificate file is never replaced", cert_out);
		return MDM_ERR_CONFLICT;
	}
	if ((rc = ca_load(d, cfg, &st)) != MDM_OK)
		return rc;
	if ((rc = x509_key_generate_rsa(bits, &key)) != MDM_OK)
		goto out;
	if ((rc = x509_issue_server(st->active, st->active_key, subject, key, days, now, &cert)) !=
	        MDM_OK)
		goto out;
	if ((rc = x509_cert_to_pem(cert, &pem, &pemlen)) != MDM_OK)
		goto out;
	if ((rc = x509_key_write_pem(key, key_out)) != MDM_OK)
		goto out;
	key_written = 1;
	if ((rc = ca_write_new(cert_out, pem, pemlen, 0644)) != MDM_OK)
		goto out;
	cert_written = 1;
	if ((rc = ca_cert_insert(d, cert, "server", NULL, NULL, NULL, &id)) != MDM_OK)
		goto out;
	log_info("ca: server certificate %lld issued to %s", id, subject);
out:
	if (rc != MDM_OK) {
		if (cert_written)
			unlink(cert_out);
		if (key_written)
			unlink(key_out);
	}
	free(pem);
	x509_cert_free(cert);
	x509_key_free(key);
	ca_state_free(st);
	return rc;
}

/* Appends "# STATE SUBJECT, valid until DATE" and the certificate's PEM. */
static MDM_WUR mdm_err ca_bundle_add(
        char **buf, size_t *len, const char *state, const struct x509_st *c)
{
	struct x509_info info;
	char head[700], until[32], *pem = NULL, *grown;
	size_t pemlen = 0, headlen;
	struct tm tm;
	mdm_err rc;

	if ((rc = x509_cert_info(c, &info)) != MDM_OK)
		return rc;
	if ((rc = x509_cert_to_pem(c, &pem, &pemlen)) != MDM_OK)
		return rc;
	gmtime_r(&info.not_after, &tm);
	strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* The subject is RFC 2253 text of our own CA: no newline in it. */
	headlen = (size_t)snprintf(head, sizeof(head), "# %s CA: %s, until %s, sha256 %s\n", state,
	        info.subject, until, info.sha256);
	if (headlen >= sizeof(head))
		headlen = sizeof(head) - 1;
	if ((grown = realloc(*buf, *len + headlen + pemlen + 1)) == NULL) {
		free(pem);
		return MDM_ERR_NOMEM;
	}
	*buf = grown;
	memcpy(*buf + *len, head, headlen);
	memcpy(*buf + *len + headlen, pem, pemlen);
	*len += headlen + pemlen;
	(*buf)[*len] = '\0';
	free(pem);
	return MDM_OK;
}

mdm_err ca_client_bundle(db *d, time_t now, char **pem, size_t *len, int *n)
{
	struct ca_state *st = NULL;
	struct x509_info info;
	char *buf = NULL;
	size_t used = 0;
	mdm_err rc;

	*pem = NULL;
	*len = 0;
	*n = 0;
	if ((rc = ca_load_certs(d, NULL, &st)) != MDM_OK)
		return rc;
	/* verify[0] is the active CA, then the retired ones, newest first. */
	if ((rc = ca_bundle_add(&buf, &used, "active", st->active)) != MDM_OK)
		goto out;
	(*n)++;
	if (st->next != NULL) {
		if ((rc = ca_bundle_add(&buf, &used, "next", st->next)) != MDM_OK)
			goto out;
		(*n)++;
	}
	for (size_t i = 1; i < st->n_verify; i++) {
		if ((rc = x509_cert_info(st->verify[i], &info)) != MDM_OK)
			goto out;
		if (info.not_after <= now)
			continue; /* nothing it issued verifies any longer */
		if ((rc = ca_bundle_add(&buf, &used, "retired", st->verify[i])) != MDM_OK)
			goto out;
		(*n)++;
	}
	*pem = buf;
	*len = used;
	buf = NULL;
out:
	free(buf);
	ca_state_free(st);
	return rc;
}

mdm_err ca_client_bundle_write(db *d, const char *path, time_t now, int *n)
{
	char *pem = NULL, *tmp = NULL;
	size_t len = 0, tlen;
	mdm_err rc;

	if ((rc = ca_client_bundle(d, now, &pem, &len, n)) != MDM_OK)
		return rc;
	tlen = strlen(path) + sizeof(".new");
	if ((tmp = malloc(tlen)) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	snprintf(tmp, tlen, "%s.new", path);
	/* A .new left by a crash would refuse the create below. */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		log_error("ca: remove %s: %s", tmp, strerror(errno));
		rc = MDM_ERR_IO;
		goto out;
	}
	if ((rc = ca_write_new(tmp, pem, len, 0644)) != MDM_OK)
		goto out;
	if (rename(tmp, path) != 0) {
		log_error("ca: rename %s to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		rc = MDM_ERR_IO;
		goto out;
	}
	log_info("ca: client CA file %s: %d CA certificates", path, *n);
out:
	free(tmp);
	free(pem);
	return rc;
}
