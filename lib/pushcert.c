/* pushcert: MDM push certificates: topic rules, import, and the topic profiles name. */
#include "pushcert.h"
#include "ca.h"
#include "log.h"
#include "x509.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pushcert_topic_valid(const char *topic)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t plen = sizeof(PUSHCERT_TOPIC_PREFIX) - 1;
	const char *u;

	if (topic == NULL || strncmp(topic, PUSHCERT_TOPIC_PREFIX, plen) != 0)
		return 0;
	u = topic + plen;
	if (strlen(u) != sizeof(shape) - 1)
		return 0;
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == '-' ? u[i] != '-' : !isxdigit((unsigned char)u[i]))
			return 0;
	}
	return 1;
}

mdm_err pushcert_topic(const struct x509_st *cert, char out[PUSHCERT_MAX_TOPIC + 1])
{
	char uid[256];
	mdm_err rc;

	out[0] = '\0';
	rc = x509_cert_subject_attr(cert, "UID", uid, sizeof(uid));
	if (rc == MDM_ERR_NOT_FOUND) {
		log_error("push: Apple MDM protocol: the push certificate's subject has no UID "
		          "(the APNs topic); is this an MDM push certificate?");
		return MDM_ERR_PARSE;
	}
	if (rc != MDM_OK) {
		log_error("push: the push certificate's subject UID is unreadable");
		return MDM_ERR_PARSE;
	}
	if (!pushcert_topic_valid(uid)) {
		/* The UID is from a file the operator chose: printable after the check below. */
		log_error("push: Apple MDM protocol: the push certificate's UID must be "
		          "%s<UUID> (the APNs topic), not a %zu-byte other value",
		        PUSHCERT_TOPIC_PREFIX, strlen(uid));
		return MDM_ERR_PARSE;
	}
	memcpy(out, uid, strlen(uid) + 1);
	return MDM_OK;
}

struct pushcert_import_arg {
	struct x509_st *cert;
	const char *key_uri;
	const char *topic;
	const char *sha256;
	enum pushcert_import_result result;
};

static MDM_WUR mdm_err pushcert_import_tx(db *d, void *arg)
{
	struct pushcert_import_arg *a = arg;
	const char *params[3];
	char idbuf[32];
	long long id = 0;
	db_res *r = NULL;
	mdm_err rc;

	/* One import at a time: two must not both insert the same certificate. */
	if ((rc = db_exec(d, "LOCK TABLE mdm.push_cert IN EXCLUSIVE MODE", 0, NULL, NULL)) !=
	        MDM_OK)
		return rc;
	params[0] = a->sha256;
	params[1] = a->topic;
	rc = db_exec(d,
	        "SELECT c.id, c.kind, p.certificate_id = c.id, p.key_uri, p.topic IS NOT NULL "
	        "FROM mdm.certificate c LEFT JOIN mdm.push_cert p ON p.topic = $2 "
	        "WHERE c.sha256 = $1",
	        2, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) == 1) {
		if (strcmp(db_res_get0(r, 0, 1), "push") != 0) {
			log_error("push: this certificate is already recorded as kind %s",
			        db_res_get0(r, 0, 1));
			rc = MDM_ERR_CONFLICT;
			goto out;
		}
		id = atoll(db_res_get0(r, 0, 0));
		if (!db_res_is_null(r, 0, 2) && strcmp(db_res_get0(r, 0, 2), "t") == 0 &&
		        strcmp(db_res_get0(r, 0, 3), a->key_uri) == 0) {
			a->result = PUSHCERT_UNCHANGED;
			goto out;
		}
	} else if ((rc = ca_cert_insert(d, a->cert, "push", NULL, NULL, NULL, &id)) != MDM_OK) {
		goto out;
	}
	db_res_free(r);
	r = NULL;
	if ((rc = db_exec(d, "SELECT 1 FROM mdm.push_cert WHERE topic = $1", 1, params + 1, &r)) !=
	        MDM_OK)
		goto out;
	a->result = db_res_rows(r) == 1 ? PUSHCERT_REPLACED : PUSHCERT_IMPORTED;
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	params[0] = a->topic;
	params[1] = idbuf;
	params[2] = a->key_uri;
	rc = db_exec(d,
	        "INSERT INTO mdm.push_cert (topic, certificate_id, key_uri) "
	        "VALUES ($1, $2::bigint, $3) ON CONFLICT (topic) DO UPDATE "
	        "SET certificate_id = EXCLUDED.certificate_id, key_uri = EXCLUDED.key_uri, "
	        "imported_at = now()",
	        3, params, NULL);
out:
	db_res_free(r);
	return rc;
}

mdm_err pushcert_import(db *d, struct x509_st *cert, struct evp_pkey_st *key, const char *key_uri,
        time_t now, char topic[PUSHCERT_MAX_TOPIC + 1], enum pushcert_import_result *result)
{
	struct pushcert_import_arg a = {cert, key_uri, topic, NULL, PUSHCERT_UNCHANGED};
	struct x509_info info;
	mdm_err rc;

	*result = PUSHCERT_UNCHANGED;
	topic[0] = '\0';
	if (cert == NULL || key == NULL || key_uri == NULL)
		return MDM_ERR_INVAL;
	if (key_uri[0] != '/' && strncmp(key_uri, "pkcs11:", 7) != 0) {
		log_error("push: key_uri must be an absolute path or a pkcs11: URI");
		return MDM_ERR_INVAL;
	}
	if ((rc = pushcert_topic(cert, topic)) != MDM_OK)
		return rc;
	if (!x509_key_matches_cert(key, cert)) {
		log_error("push: the private key does not belong to the push certificate of %s",
		        topic);
		topic[0] = '\0';
		return MDM_ERR_FORBIDDEN;
	}
	if ((rc = x509_cert_info(cert, &info)) != MDM_OK)
		return rc;
	if (!x509_cert_valid_at(cert, now))
		log_warn("push: the push certificate of %s is not valid now (expired or not yet "
		         "valid); imported anyway: renew it at identity.apple.com",
		        topic);
	a.sha256 = info.sha256;
	if ((rc = db_tx(d, pushcert_import_tx, &a)) != MDM_OK) {
		topic[0] = '\0';
		return rc;
	}
	*result = a.result;
	return MDM_OK;
}

mdm_err pushcert_topics_get(db *d, const char *wanted, struct pushcert_topics *out)
{
	char limit[16];
	const char *params[2] = {wanted, limit};
	db_res *r = NULL;
	const char *list;
	mdm_err rc;

	memset(out, 0, sizeof(*out));
	snprintf(limit, sizeof(limit), "%d", PUSHCERT_MAX_LISTED);
	rc = db_exec(d,
	        "SELECT (SELECT count(*) FROM mdm.push_cert), "
	        "EXISTS (SELECT 1 FROM mdm.push_cert WHERE topic = $1), "
	        "(SELECT string_agg(x.topic, ', ' ORDER BY x.topic) FROM (SELECT topic FROM "
	        "mdm.push_cert ORDER BY topic LIMIT $2::int) x)",
	        2, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		rc = MDM_ERR_DB;
		goto out;
	}
	out->n = atoll(db_res_get0(r, 0, 0));
	out->wanted_found = strcmp(db_res_get0(r, 0, 1), "t") == 0;
	/* Topics are printable by the table's CHECK; long ones are cut, never overrun. */
	if ((list = db_res_get0(r, 0, 2)) != NULL)
		snprintf(out->list, sizeof(out->list), "%s", list);
	if (out->n == 1 && list != NULL && pushcert_topic_valid(list))
		memcpy(out->only, list, strlen(list) + 1);
out:
	db_res_free(r);
	return rc;
}

struct pushcert_remove_arg {
	const char *topic;
	int force;
	long long active;
	char *key_uri;
	size_t cap;
};

static MDM_WUR mdm_err pushcert_remove_tx(db *d, void *arg)
{
	struct pushcert_remove_arg *a = arg;
	const char *params[2] = {a->topic, a->force ? "true" : "false"};
	db_res *r = NULL;
	mdm_err rc;

	a->active = 0;
	/* Locked first: the count cannot change before the removal below. */
	rc = db_exec(d,
	        "SELECT p.key_uri, (SELECT count(*) FROM mdm.enrollment e WHERE e.topic = "
	        "p.topic AND e.active) FROM mdm.push_cert p WHERE p.topic = $1 FOR UPDATE OF p",
	        1, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		rc = MDM_ERR_NOT_FOUND;
		goto out;
	}
	snprintf(a->key_uri, a->cap, "%s", db_res_get0(r, 0, 0));
	a->active = atoll(db_res_get0(r, 0, 1));
	if (a->active > 0 && !a->force) {
		rc = MDM_ERR_CONFLICT;
		goto out;
	}
	rc = db_exec(d, "SELECT mdm.push_cert_remove($1, $2::boolean)", 2, params, NULL);
out:
	db_res_free(r);
	return rc;
}

mdm_err pushcert_remove(
        db *d, const char *topic, int force, long long *active, char *key_uri, size_t cap)
{
	struct pushcert_remove_arg a = {topic, force, 0, key_uri, cap};
	mdm_err rc;

	*active = 0;
	if (cap == 0)
		return MDM_ERR_INVAL;
	key_uri[0] = '\0';
	/* The table's CHECK allows at most this; longer cannot be imported. */
	if (topic == NULL || strlen(topic) > sizeof(PUSHCERT_TOPIC_PREFIX) + 200)
		return MDM_ERR_INVAL;
	rc = db_tx(d, pushcert_remove_tx, &a);
	*active = a.active;
	if (rc == MDM_ERR_NOT_FOUND)
		log_warn("push: no push certificate is imported for that topic");
	else if (rc == MDM_ERR_CONFLICT)
		log_warn("push: %lld active enrollment(s) use topic %s: not removed (force "
		         "removes it anyway)",
		        a.active, topic);
	else if (rc == MDM_OK)
		log_info("push: topic %s removed (%lld active enrollment(s) used it); its key "
		         "stays at %s",
		        topic, a.active, key_uri);
	if (rc != MDM_OK)
		key_uri[0] = '\0';
	return rc;
}
