/*
 * Check-in messages: parsing (an allow-list of what Apple's MDM protocol
 * sends) and their effect on the database.  See checkin.h.
 */
#include "checkin.h"

#include "devplist.h"
#include "log.h"
#include "plist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opens the log line of every check-in refusal (mdm_refuse). */
static const char checkin_who[] = "check-in";

static const char *const checkin_names[CHECKIN__MAX] = {
        [CHECKIN_AUTHENTICATE] = "Authenticate",
        [CHECKIN_TOKEN_UPDATE] = "TokenUpdate",
        [CHECKIN_CHECK_OUT] = "CheckOut",
        [CHECKIN_USER_AUTHENTICATE] = "UserAuthenticate",
        [CHECKIN_SET_BOOTSTRAP_TOKEN] = "SetBootstrapToken",
        [CHECKIN_GET_BOOTSTRAP_TOKEN] = "GetBootstrapToken",
        [CHECKIN_GET_TOKEN] = "GetToken",
        [CHECKIN_DECLARATIVE_MANAGEMENT] = "DeclarativeManagement",
        [CHECKIN_RETURN_TO_SERVICE] = "ReturnToService",
};

const char *checkin_type_str(enum checkin_type t)
{
	if ((unsigned)t >= CHECKIN__MAX)
		return "invalid";
	return checkin_names[t];
}

static MDM_WUR mdm_err checkin_fields(struct checkin_msg *m, char *err, size_t errlen)
{
	struct devplist dm = {checkin_who, m->root, m->message_type, err, errlen};
	enum checkin_type t = m->type;
	int needs_topic = t == CHECKIN_AUTHENTICATE || t == CHECKIN_TOKEN_UPDATE;
	mdm_err rc;

	if ((rc = devplist_id(&dm, "UDID", "EnrollmentID", 1, &m->udid)) != MDM_OK ||
	        (rc = devplist_id(&dm, "UserID", "EnrollmentUserID", t == CHECKIN_USER_AUTHENTICATE,
	                 &m->user_id)) != MDM_OK ||
	        (rc = devplist_str(&dm, "Topic", needs_topic, CHECKIN_MAX_TOPIC, &m->topic)) !=
	                MDM_OK)
		return rc;
	if (m->user_id != NULL && t == CHECKIN_AUTHENTICATE)
		return mdm_refuse(checkin_who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: Authenticate is sent on the device channel only, "
		        "without a UserID");
	if (m->user_id != NULL && t == CHECKIN_RETURN_TO_SERVICE)
		return mdm_refuse(checkin_who, err, errlen, MDM_ERR_PARSE,
		        "mdm/checkin/returntoservice.yaml: ReturnToService is a device "
		        "enrollment's, "
		        "without a UserID");
	switch (t) {
	case CHECKIN_AUTHENTICATE:
		if ((rc = devplist_str(&dm, "SerialNumber", 0, CHECKIN_MAX_STRING,
		             &m->serial_number)) != MDM_OK ||
		        (rc = devplist_str(&dm, "Model", 0, CHECKIN_MAX_STRING, &m->model)) !=
		                MDM_OK ||
		        (rc = devplist_str(&dm, "ModelName", 0, CHECKIN_MAX_STRING,
		                 &m->model_name)) != MDM_OK ||
		        (rc = devplist_str(&dm, "ProductName", 0, CHECKIN_MAX_STRING,
		                 &m->product_name)) != MDM_OK ||
		        (rc = devplist_str(&dm, "OSVersion", 0, CHECKIN_MAX_STRING,
		                 &m->os_version)) != MDM_OK ||
		        (rc = devplist_str(&dm, "BuildVersion", 0, CHECKIN_MAX_STRING,
		                 &m->build_version)) != MDM_OK ||
		        (rc = devplist_str(&dm, "IMEI", 0, CHECKIN_MAX_STRING, &m->imei)) !=
		                MDM_OK ||
		        (rc = devplist_str(&dm, "MEID", 0, CHECKIN_MAX_STRING, &m->meid)) !=
		                MDM_OK ||
		        (rc = devplist_str(&dm, "DeviceName", 0, CHECKIN_MAX_STRING,
		                 &m->device_name)) != MDM_OK)
			return rc;
		if (m->serial_number != NULL && strlen(m->serial_number) > 64)
			return mdm_refuse(checkin_who, err, errlen, MDM_ERR_LIMIT,
			        "SerialNumber is over 64 characters");
		return MDM_OK;
	case CHECKIN_TOKEN_UPDATE:
		if ((rc = devplist_data(&dm, "Token", 1, CHECKIN_MAX_TOKEN, &m->token,
		             &m->token_len)) != MDM_OK ||
		        (rc = devplist_str(&dm, "PushMagic", 1, CHECKIN_MAX_STRING,
		                 &m->push_magic)) != MDM_OK ||
		        (rc = devplist_data(&dm, "UnlockToken", 0, CHECKIN_MAX_BOOTSTRAP,
		                 &m->unlock_token, &m->unlock_token_len)) != MDM_OK ||
		        (rc = devplist_bool(&dm, "AwaitingConfiguration",
		                 &m->awaiting_configuration)) != MDM_OK ||
		        (rc = devplist_str(&dm, "UserShortName", 0, CHECKIN_MAX_STRING,
		                 &m->user_short_name)) != MDM_OK ||
		        (rc = devplist_str(&dm, "UserLongName", 0, CHECKIN_MAX_STRING,
		                 &m->user_long_name)) != MDM_OK)
			return rc;
		if (m->push_magic[0] == '\0')
			return mdm_refuse(checkin_who, err, errlen, MDM_ERR_PARSE,
			        "Apple MDM protocol: PushMagic in TokenUpdate is empty");
		return MDM_OK;
	case CHECKIN_SET_BOOTSTRAP_TOKEN:
		if ((rc = devplist_bool(
		             &dm, "AwaitingConfiguration", &m->awaiting_configuration)) != MDM_OK)
			return rc;
		return devplist_data(&dm, "BootstrapToken", 0, CHECKIN_MAX_BOOTSTRAP,
		        &m->bootstrap_token, &m->bootstrap_token_len);
	case CHECKIN_USER_AUTHENTICATE:
		return devplist_str(
		        &dm, "DigestResponse", 0, CHECKIN_MAX_STRING, &m->digest_response);
	case CHECKIN_GET_TOKEN:
		return devplist_str(
		        &dm, "TokenServiceType", 1, CHECKIN_MAX_STRING, &m->token_service_type);
	case CHECKIN_DECLARATIVE_MANAGEMENT:
		/* mdm/checkin/declarativemanagement.yaml: Endpoint required, Data optional. */
		if ((rc = devplist_str(&dm, "Endpoint", 1, CHECKIN_MAX_STRING, &m->endpoint)) !=
		                MDM_OK ||
		        (rc = devplist_data(&dm, "Data", 0, CHECKIN_MAX_DDM_DATA, &m->data,
		                 &m->data_len)) != MDM_OK)
			return rc;
		if (m->endpoint[0] == '\0')
			return mdm_refuse(checkin_who, err, errlen, MDM_ERR_PARSE,
			        "mdm/checkin/declarativemanagement.yaml: Endpoint is empty");
		return MDM_OK;
	case CHECKIN_CHECK_OUT:
	case CHECKIN_GET_BOOTSTRAP_TOKEN:
	case CHECKIN_RETURN_TO_SERVICE:
	case CHECKIN__MAX:
		break;
	}
	return MDM_OK;
}

mdm_err checkin_parse(
        const uint8_t *body, size_t len, struct checkin_msg **out, char *err, size_t errlen)
{
	struct checkin_msg *m = NULL;
	int t;
	mdm_err rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return MDM_ERR_NOMEM;
	if ((rc = devplist_parse(
	             checkin_who, body, len, "check-in message", &m->root, err, errlen)) != MDM_OK)
		goto out;
	if ((m->message_type = plist_dict_get_string0(m->root, "MessageType")) == NULL) {
		rc = mdm_refuse(checkin_who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: a check-in message has a MessageType string");
		goto out;
	}
	for (t = 0; t < CHECKIN__MAX; t++)
		if (strcmp(m->message_type, checkin_names[t]) == 0)
			break;
	if (t == CHECKIN__MAX) {
		rc = mdm_refuse(checkin_who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: unknown check-in MessageType \"%.64s\"",
		        m->message_type);
		goto out;
	}
	m->type = (enum checkin_type)t;
	if ((rc = checkin_fields(m, err, errlen)) != MDM_OK)
		goto out;
	*out = m;
	m = NULL;
out:
	checkin_msg_free(m);
	return rc;
}

void checkin_msg_free(struct checkin_msg *m)
{
	if (m == NULL)
		return;
	plist_free(m->root);
	free(m);
}

void checkin_reply_clear(struct checkin_reply *r)
{
	if (r == NULL)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------- database */

struct checkin_job {
	const struct checkin_policy *pol;
	const struct identity *id;
	const struct checkin_msg *m;
	const uint8_t *raw;
	size_t rawlen;
	struct checkin_reply *reply;
	char *err;
	size_t errlen;
};

static MDM_WUR mdm_err checkin_reply_plist(struct checkin_reply *r, plist *dict)
{
	mdm_err rc;

	if (dict == NULL)
		return MDM_ERR_NOMEM;
	rc = plist_serialize(dict, &r->body, &r->len);
	plist_free(dict);
	if (rc == MDM_OK) {
		r->status = 200;
		r->content_type = "application/xml";
	}
	return rc;
}

static MDM_WUR mdm_err checkin_reply_text(struct checkin_reply *r, int status, const char *text)
{
	if ((r->body = strdup(text)) == NULL)
		return MDM_ERR_NOMEM;
	r->len = strlen(text);
	r->status = status;
	r->content_type = "text/plain";
	return MDM_OK;
}

/* The message's Topic must be one of our push certificates' (when any are imported). */
static MDM_WUR mdm_err checkin_check_topic(db *d, const struct checkin_job *j)
{
	const char *params[1] = {j->m->topic};
	char who[sizeof(checkin_who) + 8 + 256];
	db_res *r = NULL;
	mdm_err rc;

	if (j->m->topic == NULL)
		return MDM_OK;
	rc = db_exec(d,
	        "SELECT count(*) > 0 AND NOT coalesce(bool_or(topic = $1), false) "
	        "FROM mdm.push_cert",
	        1, params, &r);
	if (rc == MDM_OK && strcmp(db_res_get0(r, 0, 0), "t") == 0) {
		/* The log names the topic; the answer does not echo it. */
		snprintf(who, sizeof(who), "%s: Topic %.255s", checkin_who, j->m->topic);
		rc = mdm_refuse(who, j->err, j->errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: Topic is not the topic of this server's push "
		        "certificate");
	}
	db_res_free(r);
	return rc;
}

/*
 * Authenticate: which binding, if any, this certificate gets for the
 * UDID.  Returns the reason ("first", "reenroll", "challenge",
 * "renewal", "takeover") in *reason, or "" when it is already bound.
 */
static MDM_WUR mdm_err checkin_binding(
        db *d, const struct checkin_job *j, const char **reason, long long *previous)
{
	const struct identity *id = j->id;
	const char *udid = j->m->udid;
	char cid[32];
	const char *params[2];
	db_res *r = NULL;
	long long current;
	mdm_err rc;

	*reason = "";
	*previous = 0;
	snprintf(cid, sizeof(cid), "%lld", id->cert_id);
	params[0] = udid;
	params[1] = cid;
	/*
	 * current: the bound certificate; live: it is still good (unexpired,
	 * unrevoked) and its enrollment active; challenge: ours was issued
	 * against a SCEP challenge an operator bound to this UDID (one OTA
	 * phase 2 minted names only the UDID the device claimed: it never
	 * takes over, issue 13).
	 */
	rc = db_exec(d,
	        "SELECT coalesce(d.identity_certificate_id, 0), "
	        " coalesce(c.revoked_at IS NULL AND c.not_after > now() AND e.active, false), "
	        " EXISTS (SELECT 1 FROM mdm.challenge h WHERE h.used_by_certificate = $2::bigint "
	        "         AND h.udid = $1 AND h.origin = 'operator') "
	        "FROM mdm.device d "
	        "LEFT JOIN mdm.certificate c ON c.id = d.identity_certificate_id "
	        "LEFT JOIN mdm.enrollment e ON e.udid = d.udid AND e.user_id IS NULL "
	        "WHERE d.udid = $1 FOR UPDATE OF d",
	        2, params, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) == 0) {
		/* A device we never saw: the challenge may still have named it. */
		db_res_free(r);
		r = NULL;
		rc = db_exec(d,
		        "SELECT EXISTS (SELECT 1 FROM mdm.challenge h "
		        "WHERE h.used_by_certificate = $2::bigint AND h.udid = $1)",
		        2, params, &r);
		if (rc == MDM_OK)
			*reason = strcmp(db_res_get0(r, 0, 0), "t") == 0 ? "challenge" : "first";
		goto out;
	}
	current = atoll(db_res_get0(r, 0, 0));
	*previous = current;
	if (current == id->cert_id)
		goto out; /* already bound: nothing changes */
	if (current == 0)
		*reason = "first";
	else if (strcmp(db_res_get0(r, 0, 2), "t") == 0)
		*reason = "challenge";
	else if (id->renewal_of != 0 && id->renewal_of == current)
		*reason = "renewal";
	else if (strcmp(db_res_get0(r, 0, 1), "t") != 0)
		*reason = "reenroll";
	else if (j->pol->allow_takeover) {
		*reason = "takeover";
		log_warn("identity takeover: certificate serial %s replaces the valid identity of "
		         "actively enrolled UDID %s (checkin_allow_takeover = yes)",
		        id->serial, udid);
	} else {
		log_warn("identity refused: UDID %s is actively enrolled with another valid "
		         "certificate, and serial %s was neither issued against a challenge an "
		         "operator bound to it (mdm.scep_challenge_new(udid); an over-the-air "
		         "challenge never takes over) nor renewed from its certificate "
		         "(checkin_allow_takeover = no)",
		        udid, id->serial);
		rc = MDM_ERR_FORBIDDEN;
	}
out:
	db_res_free(r);
	return rc;
}

static MDM_WUR mdm_err checkin_authenticate(db *d, const struct checkin_job *j)
{
	const struct checkin_msg *m = j->m;
	const struct identity *id = j->id;
	const char *reason = "";
	long long previous = 0;
	char cid[32], prev[32];
	const char *p[14];
	mdm_err rc;

	if (id->udid[0] != '\0' && strcmp(id->udid, m->udid) != 0) {
		log_warn("identity refused: certificate serial %s belongs to another UDID and "
		         "cannot authenticate %s",
		        id->serial, m->udid);
		return MDM_ERR_FORBIDDEN;
	}
	if ((rc = checkin_check_topic(d, j)) != MDM_OK ||
	        (rc = checkin_binding(d, j, &reason, &previous)) != MDM_OK)
		return rc;
	snprintf(cid, sizeof(cid), "%lld", id->cert_id);
	snprintf(prev, sizeof(prev), "%lld", previous);
	p[0] = m->udid;
	p[1] = m->serial_number;
	p[2] = m->model;
	p[3] = m->model_name;
	p[4] = m->product_name;
	p[5] = m->os_version;
	p[6] = m->build_version;
	p[7] = m->imei;
	p[8] = m->meid;
	p[9] = m->device_name;
	p[10] = cid;
	rc = db_exec(d,
	        "INSERT INTO mdm.device AS d (udid, serial_number, model, model_name, "
	        "product_name, "
	        " os_version, build_version, imei, meid, device_name, identity_certificate_id, "
	        " identity_bound_at, last_seen_at) "
	        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::bigint, now(), now()) "
	        "ON CONFLICT (udid) DO UPDATE SET "
	        " serial_number = coalesce(EXCLUDED.serial_number, d.serial_number), "
	        " model = coalesce(EXCLUDED.model, d.model), "
	        " model_name = coalesce(EXCLUDED.model_name, d.model_name), "
	        " product_name = coalesce(EXCLUDED.product_name, d.product_name), "
	        " os_version = coalesce(EXCLUDED.os_version, d.os_version), "
	        " build_version = coalesce(EXCLUDED.build_version, d.build_version), "
	        " imei = coalesce(EXCLUDED.imei, d.imei), meid = coalesce(EXCLUDED.meid, d.meid), "
	        " device_name = coalesce(EXCLUDED.device_name, d.device_name), "
	        " identity_bound_at = CASE WHEN d.identity_certificate_id IS DISTINCT FROM "
	        "   EXCLUDED.identity_certificate_id THEN now() ELSE d.identity_bound_at END, "
	        " identity_certificate_id = EXCLUDED.identity_certificate_id, "
	        " updated_at = now(), last_seen_at = now()",
	        11, p, NULL);
	if (rc != MDM_OK)
		return rc;
	p[1] = cid;
	rc = identity_claim(d, id, m->udid);
	if (rc == MDM_OK && reason[0] != '\0') {
		p[2] = previous != 0 ? prev : NULL;
		p[3] = reason;
		rc = db_exec(d,
		        "INSERT INTO mdm.identity_binding (udid, certificate_id, "
		        "previous_certificate_id, reason) VALUES ($1, $2::bigint, $3::bigint, $4)",
		        4, p, NULL);
		if (rc == MDM_OK)
			log_info("identity: UDID %s bound to certificate serial %s (%s)", m->udid,
			        id->serial, reason);
	}
	if (rc != MDM_OK)
		return rc;
	/* A new enrollment: inactive until its TokenUpdate; user channels end with it. */
	p[1] = m->topic;
	rc = db_exec(d,
	        "INSERT INTO mdm.enrollment AS e (udid, topic, active, authenticated_at, "
	        " last_seen_at) VALUES ($1, $2, false, now(), now()) "
	        "ON CONFLICT (udid, user_id) DO UPDATE SET topic = EXCLUDED.topic, active = false, "
	        " authenticated_at = now(), last_seen_at = now()",
	        2, p, NULL);
	if (rc == MDM_OK)
		rc = db_exec(d,
		        "UPDATE mdm.enrollment SET active = false WHERE udid = $1 AND user_id IS "
		        "NOT "
		        "NULL AND active",
		        1, p, NULL);
	return rc;
}

static MDM_WUR mdm_err checkin_token_update(db *d, const struct checkin_job *j)
{
	const struct checkin_msg *m = j->m;
	const char *values[9];
	int lengths[9] = {0}, formats[9] = {0};
	char awaiting[8];
	db_res *r = NULL;
	mdm_err rc;

	if ((rc = checkin_check_topic(d, j)) != MDM_OK)
		return rc;
	if (m->user_id != NULL && !j->pol->user_channel)
		return mdm_refuse(checkin_who, j->err, j->errlen, MDM_ERR_FORBIDDEN,
		        "the user channel is turned off (checkin_user_channel = no)");
	snprintf(awaiting, sizeof(awaiting), "%s",
	        m->awaiting_configuration < 0       ? ""
	                : m->awaiting_configuration ? "t"
	                                            : "f");
	values[0] = m->udid;
	values[1] = m->user_id;
	values[2] = m->topic;
	values[3] = (const char *)m->token;
	lengths[3] = (int)m->token_len;
	formats[3] = 1;
	values[4] = m->push_magic;
	values[5] = (const char *)m->unlock_token;
	lengths[5] = (int)m->unlock_token_len;
	formats[5] = 1;
	values[6] = awaiting[0] != '\0' ? awaiting : NULL;
	values[7] = m->user_short_name;
	values[8] = m->user_long_name;
	/* The device channel's row exists since Authenticate; a user channel's may not. */
	rc = db_exec_bin(d,
	        "INSERT INTO mdm.enrollment AS e (udid, user_id, topic, push_token, push_magic, "
	        " unlock_token, awaiting_configuration, user_short_name, user_long_name, active, "
	        " token_updated_at, last_seen_at) "
	        "SELECT $1, $2, $3, $4, $5, $6, $7::boolean, $8, $9, true, now(), now() "
	        "WHERE $2::text IS NOT NULL OR EXISTS (SELECT 1 FROM mdm.enrollment x "
	        "  WHERE x.udid = $1 AND x.user_id IS NULL) "
	        "ON CONFLICT (udid, user_id) DO UPDATE SET topic = EXCLUDED.topic, "
	        " push_token = EXCLUDED.push_token, push_magic = EXCLUDED.push_magic, "
	        " unlock_token = coalesce(EXCLUDED.unlock_token, e.unlock_token), "
	        " awaiting_configuration = EXCLUDED.awaiting_configuration, "
	        " user_short_name = coalesce(EXCLUDED.user_short_name, e.user_short_name), "
	        " user_long_name = coalesce(EXCLUDED.user_long_name, e.user_long_name), "
	        " active = true, checked_out_at = NULL, token_updated_at = now(), "
	        " last_seen_at = now() "
	        "RETURNING id",
	        9, values, lengths, formats, &r);
	if (rc == MDM_OK && db_res_rows(r) != 1) {
		log_warn("check-in refused: TokenUpdate for UDID %s before its Authenticate "
		         "(Apple MDM protocol: Authenticate comes first)",
		        m->udid);
		rc = MDM_ERR_FORBIDDEN;
	}
	db_res_free(r);
	return rc;
}

static MDM_WUR mdm_err checkin_check_out(db *d, const struct checkin_job *j)
{
	const char *p[2] = {j->m->udid, j->m->user_id};

	/* The device channel ends every channel of the device; a user's only its own. */
	return db_exec(d,
	        "UPDATE mdm.enrollment SET active = false, checked_out_at = now(), "
	        "last_seen_at = now() WHERE udid = $1 AND ($2::text IS NULL OR user_id = $2)",
	        2, p, NULL);
}

static MDM_WUR mdm_err checkin_bootstrap_set(db *d, const struct checkin_job *j)
{
	const char *values[2] = {j->m->udid, (const char *)j->m->bootstrap_token};
	int lengths[2] = {0, (int)j->m->bootstrap_token_len}, formats[2] = {0, 1};

	return db_exec_bin(d,
	        "UPDATE mdm.device SET bootstrap_token = $2, bootstrap_token_at = now() "
	        "WHERE udid = $1",
	        2, values, lengths, formats, NULL);
}

static MDM_WUR mdm_err checkin_bootstrap_get(db *d, const struct checkin_job *j)
{
	const char *p[1] = {j->m->udid};
	plist *dict = NULL;
	uint8_t *tok = NULL;
	size_t toklen = 0;
	db_res *r = NULL;
	mdm_err rc;

	rc = db_exec(d, "SELECT bootstrap_token FROM mdm.device WHERE udid = $1", 1, p, &r);
	if (rc != MDM_OK)
		goto out;
	if ((dict = plist_new_dict()) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	/* No token escrowed: an empty dictionary (Apple MDM protocol, GetBootstrapToken). */
	if (db_res_rows(r) == 1 && !db_res_is_null(r, 0, 0)) {
		if ((rc = db_res_get_bytea(r, 0, 0, &tok, &toklen)) != MDM_OK ||
		        (rc = plist_dict_set(
		                 dict, "BootstrapToken", plist_new_data(tok, toklen))) != MDM_OK)
			goto out;
	}
	rc = checkin_reply_plist(j->reply, dict);
	dict = NULL;
out:
	if (tok != NULL) {
		memset(tok, 0, toklen);
		free(tok);
	}
	plist_free(dict);
	db_res_free(r);
	return rc;
}

static MDM_WUR mdm_err checkin_user_authenticate(db *d, const struct checkin_job *j)
{
	plist *dict;

	(void)d;
	if (!j->pol->user_channel)
		return checkin_reply_text(j->reply, 410,
		        "the user channel is turned off on this server (checkin_user_channel = "
		        "no)");
	/*
	 * We hold no user passwords to check a digest against, so step one
	 * answers a zero-length DigestChallenge: Apple's documented way to say
	 * no AuthToken is required.  The user channel stays tied to the
	 * device's identity certificate like every other request.  A step-two
	 * DigestResponse then answers a challenge we never issued.
	 */
	if (j->m->digest_response != NULL)
		return mdm_refuse(checkin_who, j->err, j->errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol, UserAuthenticate: DigestResponse answers no "
		        "outstanding "
		        "DigestChallenge (this server issues zero-length challenges)");
	if ((dict = plist_new_dict()) == NULL)
		return MDM_ERR_NOMEM;
	if (plist_dict_set(dict, "DigestChallenge", plist_new_string("")) != MDM_OK) {
		plist_free(dict);
		return MDM_ERR_NOMEM;
	}
	return checkin_reply_plist(j->reply, dict);
}

/*
 * ReturnToService (mdm/checkin/returntoservice.yaml): the configuration an
 * operator set for this UDID (sql/026), else the default, else Enabled
 * false; the BootstrapToken only the device's own, with app preservation.
 */
static MDM_WUR mdm_err checkin_return_to_service(db *d, const struct checkin_job *j)
{
	static const char *const data_keys[3] = {
	        "WiFiProfileData", "MDMProfileData", "BootstrapToken"};
	const char *p[1] = {j->m->udid};
	plist *dict = NULL, *rts = NULL;
	db_res *r = NULL;
	mdm_err rc;

	rc = db_exec(d,
	        "SELECT enabled, wifi_profile, mdm_profile, bootstrap_token FROM "
	        "mdm.return_to_service_answer($1)",
	        1, p, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		rc = MDM_ERR_INTERNAL;
		goto out;
	}
	if ((dict = plist_new_dict()) == NULL || (rts = plist_new_dict()) == NULL) {
		rc = MDM_ERR_NOMEM;
		goto out;
	}
	if ((rc = plist_dict_set(rts, "Enabled",
	             plist_new_bool(strcmp(db_res_get0(r, 0, 0), "t") == 0))) != MDM_OK)
		goto out;
	for (int i = 0; i < 3; i++) {
		uint8_t *b = NULL;
		size_t blen = 0;

		if (db_res_is_null(r, 0, i + 1))
			continue;
		if ((rc = db_res_get_bytea(r, 0, i + 1, &b, &blen)) != MDM_OK)
			goto out;
		rc = plist_dict_set(rts, data_keys[i], plist_new_data(b, blen));
		memset(b, 0, blen);
		free(b);
		if (rc != MDM_OK)
			goto out;
	}
	rc = plist_dict_set(dict, "ReturnToService", rts);
	rts = NULL;
	if (rc != MDM_OK)
		goto out;
	rc = checkin_reply_plist(j->reply, dict);
	dict = NULL;
out:
	plist_free(rts);
	plist_free(dict);
	db_res_free(r);
	return rc;
}

/*
 * DeclarativeManagement (mdm/checkin/declarativemanagement.yaml): the
 * answer of one mdm.ddm_checkin call (sql/025), in this transaction, so it
 * and the data agree: 200 with the JSON (tokens, declaration-items,
 * declaration/<type>/<identifier>) or empty (status, stored), 404 for a
 * declaration this channel does not get, 400 with the rule broken.
 */
static MDM_WUR mdm_err checkin_declarative(db *d, const struct checkin_job *j)
{
	const struct checkin_msg *m = j->m;
	const char *values[4] = {m->udid, m->user_id, m->endpoint, (const char *)m->data};
	int lengths[4] = {0, 0, 0, (int)m->data_len}, formats[4] = {0, 0, 0, 1};
	const char *status, *body;
	db_res *r = NULL;
	mdm_err rc;

	if (m->user_id != NULL && !j->pol->user_channel)
		return mdm_refuse(checkin_who, j->err, j->errlen, MDM_ERR_FORBIDDEN,
		        "the user channel is turned off (checkin_user_channel = no)");
	rc = db_exec_bin(d, "SELECT status, body FROM mdm.ddm_checkin($1, $2, $3, $4)", 4, values,
	        lengths, formats, &r);
	if (rc != MDM_OK)
		goto out;
	if (db_res_rows(r) != 1) {
		rc = MDM_ERR_INTERNAL;
		goto out;
	}
	status = db_res_get0(r, 0, 0);
	body = db_res_is_null(r, 0, 1) ? NULL : db_res_get0(r, 0, 1);
	if (strcmp(status, "400") == 0) {
		rc = mdm_refuse(checkin_who, j->err, j->errlen, MDM_ERR_PARSE,
		        "DeclarativeManagement %.64s: %s", m->endpoint, body ? body : "refused");
	} else if (strcmp(status, "404") == 0) {
		log_info("check-in DeclarativeManagement %.200s from UDID %s: not assigned (404)",
		        m->endpoint, m->udid);
		rc = checkin_reply_text(j->reply, 404, "no such declaration for this enrollment");
	} else if (strcmp(status, "200") != 0) {
		rc = MDM_ERR_INTERNAL;
	} else if (body != NULL) {
		rc = checkin_reply_text(j->reply, 200, body);
		j->reply->content_type = "application/json";
	}
out:
	db_res_free(r);
	return rc;
}

/*
 * The body as stored in mdm.checkin: the device's message with every secret
 * value replaced by the string "(redacted)" (issue 13, 7): the unlock
 * token clears a passcode, push magic and token let a sender wake the
 * device, the bootstrap token unlocks a Mac's secure token, DigestResponse
 * and SecurityToken authenticate a user.  Their only copies are the
 * columns that use them (mdm.enrollment, not shown to operators).  *out
 * stays NULL when the message has none: the raw body is stored as is.
 */
static const char *const checkin_secret_keys[] = {
        "UnlockToken", "PushMagic", "BootstrapToken", "Token", "DigestResponse"};

static int checkin_has_secret(const plist *root)
{
	const plist *tp = plist_dict_get0(root, "TokenParameters");

	for (size_t i = 0; i < sizeof(checkin_secret_keys) / sizeof(checkin_secret_keys[0]); i++)
		if (plist_dict_get0(root, checkin_secret_keys[i]) != NULL)
			return 1;
	return tp != NULL && plist_dict_get0(tp, "SecurityToken") != NULL;
}

static MDM_WUR mdm_err checkin_redact(const struct checkin_job *j, char **out, size_t *outlen)
{
	plist *root = NULL, *tp;
	char perr[256];
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if (!checkin_has_secret(j->m->root))
		return MDM_OK;
	/* j->m->root is the caller's: a copy of the tree is edited. */
	if ((rc = plist_parse_ex((const char *)j->raw, j->rawlen, &root, perr, sizeof(perr))) !=
	        MDM_OK)
		return rc;
	for (size_t i = 0; i < sizeof(checkin_secret_keys) / sizeof(checkin_secret_keys[0]); i++)
		if (plist_dict_get0(root, checkin_secret_keys[i]) != NULL &&
		        (rc = plist_dict_set(root, checkin_secret_keys[i],
		                 plist_new_string("(redacted)"))) != MDM_OK)
			goto out;
	tp = (plist *)plist_dict_get0(root, "TokenParameters");
	if (plist_get_type(tp) == PLIST_DICT && plist_dict_get0(tp, "SecurityToken") != NULL &&
	        (rc = plist_dict_set(tp, "SecurityToken", plist_new_string("(redacted)"))) !=
	                MDM_OK)
		goto out;
	rc = plist_serialize(root, out, outlen);
out:
	plist_free(root);
	return rc;
}

static MDM_WUR mdm_err checkin_record(db *d, const struct checkin_job *j)
{
	const struct checkin_msg *m = j->m;
	const char *values[6];
	int lengths[6] = {0}, formats[6] = {0};
	char cid[32], *redacted = NULL;
	size_t rlen = 0;
	mdm_err rc;

	if ((rc = checkin_redact(j, &redacted, &rlen)) != MDM_OK)
		return rc;
	snprintf(cid, sizeof(cid), "%lld", j->id->cert_id);
	values[0] = m->udid;
	values[1] = m->user_id;
	values[2] = m->message_type;
	values[3] = cid;
	values[4] = identity_auth_str(j->id->sources);
	values[5] = redacted != NULL ? redacted : (const char *)j->raw;
	lengths[5] = redacted != NULL ? (int)rlen : (int)j->rawlen;
	formats[5] = 1;
	rc = db_exec_bin(d,
	        "INSERT INTO mdm.checkin (udid, user_id, message_type, certificate_id, auth, body) "
	        "VALUES ($1, $2, $3, $4::bigint, $5, $6)",
	        6, values, lengths, formats, NULL);
	free(redacted);
	if (rc != MDM_OK)
		return rc;
	return db_exec(d,
	        "UPDATE mdm.enrollment SET last_seen_at = now() WHERE udid = $1 AND "
	        "user_id IS NOT DISTINCT FROM $2",
	        2, values, NULL);
}

static MDM_WUR mdm_err checkin_tx(db *d, void *arg)
{
	struct checkin_job *j = arg;
	const struct checkin_msg *m = j->m;
	const char *p[1] = {m->udid};
	mdm_err rc;

	checkin_reply_clear(j->reply);
	j->reply->status = 200;
	if (m->type == CHECKIN_AUTHENTICATE)
		rc = checkin_authenticate(d, j);
	else if ((rc = identity_check_bound(d, j->id, m->udid)) == MDM_OK)
		rc = db_exec(d, "UPDATE mdm.device SET last_seen_at = now() WHERE udid = $1", 1, p,
		        NULL);
	if (rc != MDM_OK)
		return rc;
	switch (m->type) {
	case CHECKIN_AUTHENTICATE:
		break;
	case CHECKIN_TOKEN_UPDATE:
		rc = checkin_token_update(d, j);
		break;
	case CHECKIN_CHECK_OUT:
		rc = checkin_check_out(d, j);
		break;
	case CHECKIN_USER_AUTHENTICATE:
		rc = checkin_user_authenticate(d, j);
		break;
	case CHECKIN_SET_BOOTSTRAP_TOKEN:
		rc = checkin_bootstrap_set(d, j);
		break;
	case CHECKIN_GET_BOOTSTRAP_TOKEN:
		rc = checkin_bootstrap_get(d, j);
		break;
	case CHECKIN_GET_TOKEN:
		rc = checkin_reply_text(j->reply, 501,
		        "GetToken is not supported by this server (no token service is "
		        "configured)");
		break;
	case CHECKIN_DECLARATIVE_MANAGEMENT:
		rc = checkin_declarative(d, j);
		break;
	case CHECKIN_RETURN_TO_SERVICE:
		rc = checkin_return_to_service(d, j);
		break;
	case CHECKIN__MAX:
		rc = MDM_ERR_INTERNAL;
		break;
	}
	if (rc == MDM_OK)
		rc = checkin_record(d, j);
	return rc;
}

mdm_err checkin_process(db *d, const struct checkin_policy *pol, const struct identity *id,
        const struct checkin_msg *m, const uint8_t *raw, size_t rawlen, struct checkin_reply *reply,
        char *err, size_t errlen)
{
	struct checkin_job j = {pol, id, m, raw, rawlen, reply, err, errlen};
	mdm_err rc;

	memset(reply, 0, sizeof(*reply));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	rc = db_tx(d, checkin_tx, &j);
	if (rc != MDM_OK)
		checkin_reply_clear(reply);
	else
		log_info("check-in %s from UDID %s%s%s accepted (%s, certificate serial %s)",
		        m->message_type, m->udid, m->user_id ? " user " : "",
		        m->user_id ? m->user_id : "", identity_auth_str(id->sources), id->serial);
	return rc;
}
