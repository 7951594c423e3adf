/*
 * The command channel: reports from devices and the queue in PostgreSQL.
 * See command.h.
 */
#include "command.h"

#include "cms.h"
#include "devplist.h"
#include "log.h"
#include "profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opens the log line of every command channel refusal (mdm_refuse). */
static const char command_who[] = "command channel";

static const char *const status_names[COMMAND__MAX] = {
        [COMMAND_IDLE] = "Idle",
        [COMMAND_ACKNOWLEDGED] = "Acknowledged",
        [COMMAND_ERROR] = "Error",
        [COMMAND_FORMAT_ERROR] = "CommandFormatError",
        [COMMAND_NOT_NOW] = "NotNow",
};

mdm_err command_report_parse(
        const uint8_t *body, size_t len, struct command_report **out, char *err, size_t errlen)
{
	struct command_report *r = NULL;
	struct devplist dm = {command_who, NULL, "command report", err, errlen};
	int s;
	mdm_err rc;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return MDM_ERR_NOMEM;
	if ((rc = devplist_parse(
	             command_who, body, len, "command report", &r->root, err, errlen)) != MDM_OK)
		goto out;
	if ((r->status_str = plist_dict_get_string0(r->root, "Status")) == NULL) {
		rc = mdm_refuse(command_who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: a command report has a Status string");
		goto out;
	}
	for (s = 0; s < COMMAND__MAX; s++)
		if (strcmp(r->status_str, status_names[s]) == 0)
			break;
	if (s == COMMAND__MAX) {
		rc = mdm_refuse(command_who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: unknown Status \"%.64s\"", r->status_str);
		goto out;
	}
	r->status = (enum command_status)s;
	dm.dict = r->root;
	dm.what = r->status_str;
	if ((rc = devplist_id(&dm, "UDID", "EnrollmentID", 1, &r->udid)) != MDM_OK ||
	        (rc = devplist_id(&dm, "UserID", "EnrollmentUserID", 0, &r->user_id)) != MDM_OK ||
	        (rc = devplist_id(&dm, "CommandUUID", NULL, 0, &r->command_uuid)) != MDM_OK)
		goto out;
	if (r->status != COMMAND_IDLE && r->command_uuid == NULL) {
		rc = mdm_refuse(command_who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: Status %s needs the CommandUUID it answers",
		        r->status_str);
		goto out;
	}
	if (r->status == COMMAND_IDLE && r->command_uuid != NULL) {
		rc = mdm_refuse(command_who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: Status Idle answers no command (CommandUUID given)");
		goto out;
	}
	r->error_chain = plist_dict_get0(r->root, "ErrorChain");
	if (r->error_chain != NULL && plist_get_type(r->error_chain) != PLIST_ARRAY) {
		rc = mdm_refuse(command_who, err, errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: ErrorChain must be an array");
		goto out;
	}
	*out = r;
	r = NULL;
out:
	command_report_free(r);
	return rc;
}

void command_report_free(struct command_report *r)
{
	if (r == NULL)
		return;
	plist_free(r->root);
	free(r);
}

void command_reply_clear(struct command_reply *r)
{
	if (r == NULL)
		return;
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------- database */

struct command_job {
	const struct identity *id;
	const struct command_signer *signer;
	const struct command_report *r;
	const uint8_t *raw;
	size_t rawlen;
	struct command_reply *reply;
	char *err;
	size_t errlen;
	char eid[32]; /* the enrollment, once mdm.command_exchange found it */
};

/* A signer and a recipient, before anything is read: a secret never goes out in clear. */
static MDM_WUR mdm_err command_seal_ready(
        const struct command_signer *sg, const struct x509_st *recipient, char *why, size_t whylen)
{
	if (sg == NULL || sg->cert == NULL || sg->key == NULL) {
		snprintf(why, whylen,
		        "an encrypted InstallProfile needs a profile signer (profile_signer_cert, "
		        "profile_signer_key): none is configured");
		return MDM_ERR_CONFIG;
	}
	if (recipient == NULL) {
		snprintf(why, whylen, "no identity certificate to encrypt the profile to");
		return MDM_ERR_INTERNAL;
	}
	return MDM_OK;
}

mdm_err command_profile_seal(const struct command_signer *sg, struct x509_st *recipient,
        const uint8_t *pdata, size_t plen, uint8_t **der, size_t *derlen, char *why, size_t whylen)
{
	plist *profile = NULL;
	char *pxml = NULL, perr[256];
	size_t pxlen = 0;
	mdm_err rc;

	*der = NULL;
	*derlen = 0;
	if ((rc = command_seal_ready(sg, recipient, why, whylen)) != MDM_OK)
		return rc;
	if ((rc = plist_parse_ex((const char *)pdata, plen, &profile, perr, sizeof(perr))) !=
	        MDM_OK) {
		snprintf(why, whylen, "the profile to encrypt does not parse: %s", perr);
		goto out;
	}
	if ((rc = profile_encrypt(profile, recipient)) != MDM_OK) {
		snprintf(why, whylen,
		        "the profile cannot be encrypted (%s): its PayloadContent must be an array "
		        "of payloads (Configuration Profile Reference, EncryptedPayloadContent)",
		        err_str(rc));
		goto out;
	}
	if ((rc = plist_serialize(profile, &pxml, &pxlen)) != MDM_OK ||
	        (rc = cms_sign_attached(sg->cert, sg->key, sg->chain, sg->nchain,
	                 (const uint8_t *)pxml, pxlen, der, derlen)) != MDM_OK)
		snprintf(why, whylen, "the encrypted profile could not be signed or written (%s)",
		        err_str(rc));
out:
	if (pxml != NULL) {
		memset(pxml, 0, pxlen); /* the profile's secrets, in clear */
		free(pxml);
	}
	plist_free(profile);
	return rc;
}

/*
 * An InstallProfile queued with encryption (mdm.cmd_install_profile(...,
 * true)): the Payload profile is sealed (command_profile_seal) to the
 * certificate this request authenticated with (the device's bound
 * identity, current now).  Without a signer it is not delivered at all: a
 * secret never goes out in clear.  When it cannot be built, why is in why
 * (for mdm.command_result.reason).
 */
static MDM_WUR mdm_err command_encrypt(const struct command_job *j, const char *xml, char **out,
        size_t *outlen, char *why, size_t whylen)
{
	plist *cmd = NULL;
	plist *c;
	const plist *payload;
	const uint8_t *pdata;
	uint8_t *der = NULL;
	char perr[256];
	size_t plen = 0, derlen = 0;
	mdm_err rc;

	*out = NULL;
	*outlen = 0;
	if ((rc = command_seal_ready(j->signer, j->id->cert, why, whylen)) != MDM_OK)
		return rc;
	if ((rc = plist_parse_ex(xml, strlen(xml), &cmd, perr, sizeof(perr))) != MDM_OK) {
		snprintf(why, whylen, "the queued command does not parse: %s", perr);
		goto out;
	}
	/* The tree is ours: Command is modified in place. */
	c = (plist *)plist_dict_get0(cmd, "Command");
	payload = plist_dict_get0(c, "Payload");
	if (plist_get_type(payload) != PLIST_DATA) {
		snprintf(why, whylen, "encrypted InstallProfile without a Payload (data)");
		rc = MDM_ERR_PARSE;
		goto out;
	}
	pdata = plist_data_get0(payload, &plen);
	if ((rc = command_profile_seal(
	             j->signer, j->id->cert, pdata, plen, &der, &derlen, why, whylen)) != MDM_OK)
		goto out;
	if ((rc = plist_dict_set(c, "Payload", plist_new_data(der, derlen))) != MDM_OK ||
	        (rc = plist_serialize(cmd, out, outlen)) != MDM_OK) {
		snprintf(why, whylen, "the encrypted profile could not be written (%s)",
		        err_str(rc));
		goto out;
	}
	log_info("command channel: InstallProfile for UDID %s encrypted to certificate serial %s "
	         "and signed",
	        j->r->udid, j->id->serial);
out:
	free(der);
	plist_free(cmd);
	return rc;
}

/*
 * A command the server cannot build is finished as undeliverable, its
 * reason stored beside the answers (mdm.command_results), so that the
 * channel moves on (issue 13, 4): aborting the request instead rolled back
 * the device's answer and re-delivered the command before it forever.
 */
static MDM_WUR mdm_err command_undeliverable(db *d, const struct command_job *j, const char *eid,
        const char *qid, const char *uuid, const char *why)
{
	const char *p[3] = {eid, uuid, why};
	mdm_err rc;

	log_error("command channel: command %s for UDID %s cannot be built, marked undeliverable: "
	          "%s",
	        uuid, j->r->udid, why);
	rc = db_exec(d,
	        "UPDATE mdm.command_queue SET status = 'undeliverable', finished_at = now() "
	        "WHERE id = $1::bigint",
	        1, &qid, NULL);
	if (rc == MDM_OK)
		rc = db_exec(d,
		        "INSERT INTO mdm.command_result (enrollment_id, command_uuid, status, "
		        "reason) VALUES ($1::bigint, $2, 'Undeliverable', left($3, 1024))",
		        3, p, NULL);
	return rc;
}

/* Transient failures abort the request (the device retries); the rest are the command's. */
static int command_build_failed(mdm_err rc)
{
	return rc != MDM_OK && rc != MDM_ERR_NOMEM && rc != MDM_ERR_DB && rc != MDM_ERR_DB_CONN;
}

/*
 * The next due command, marked delivered; none leaves reply->body NULL.
 * Commands that cannot be built are marked undeliverable on the way, at
 * most COMMAND_MAX_SKIP per request (the rest wait for the next one).
 */
#define COMMAND_MAX_SKIP 16
static MDM_WUR mdm_err command_next(db *d, const struct command_job *j, const char *eid)
{
	const char *p[2] = {eid, NULL};
	db_res *res = NULL;
	char why[1024];
	mdm_err rc = MDM_OK;
	int skipped;

	for (skipped = 0; skipped <= COMMAND_MAX_SKIP; skipped++) {
		db_res_free(res);
		res = NULL;
		/* In the order sql/020's mdm.command_due keeps (priority, age, NotNow). */
		rc = db_exec(d,
		        "SELECT queue_id, plist, command_uuid, encrypt_payload FROM "
		        "mdm.command_due($1::bigint)",
		        1, p, &res);
		if (rc != MDM_OK || db_res_rows(res) == 0 || skipped == COMMAND_MAX_SKIP)
			goto out;
		if (strcmp(db_res_get0(res, 0, 3), "t") != 0)
			break;
		why[0] = '\0';
		rc = command_encrypt(j, db_res_get0(res, 0, 1), &j->reply->body, &j->reply->len,
		        why, sizeof(why));
		if (rc == MDM_OK)
			break;
		if (!command_build_failed(rc))
			goto out;
		if ((rc = command_undeliverable(d, j, eid, db_res_get0(res, 0, 0),
		             db_res_get0(res, 0, 2), why[0] ? why : err_str(rc))) != MDM_OK)
			goto out;
	}
	if (j->reply->body == NULL) {
		if ((j->reply->body = strdup(db_res_get0(res, 0, 1))) == NULL) {
			rc = MDM_ERR_NOMEM;
			goto out;
		}
		j->reply->len = strlen(j->reply->body);
	}
	snprintf(j->reply->command_uuid, sizeof(j->reply->command_uuid), "%s",
	        db_res_get0(res, 0, 2));
	p[0] = db_res_get0(res, 0, 0);
	rc = db_exec(d, "SELECT mdm.command_delivered($1::bigint)", 1, p, NULL);
out:
	db_res_free(res);
	return rc;
}

/* The next command was an encrypted InstallProfile: built and delivered here. */
static MDM_WUR mdm_err command_deliver_tx(db *d, void *arg)
{
	const struct command_job *j = arg;

	command_reply_clear(j->reply);
	return command_next(d, j, j->eid);
}

/*
 * The answer of mdm.command_exchange: refusals logged here (the identity
 * module's for the certificate and the binding), the command to deliver
 * in reply.  known (j->id) is completed from the certificate's row.
 */
static MDM_WUR mdm_err command_outcome(
        db *d, struct command_job *j, struct identity *known, const db_res *res)
{
	const struct command_report *r = j->r;
	const char *outcome = db_res_get0(res, 0, 0), *xml = db_res_get0(res, 0, 3);
	char who[sizeof(command_who) + 32 + IDENTITY_MAX_ID];
	mdm_err rc;

	/* The certificate's row, columns 5 on: its rules first (logged there). */
	if ((rc = identity_record(known, res, 0, 5)) != MDM_OK)
		return rc;
	if (strcmp(outcome, "certificate") == 0) {
		log_error(
		        "command channel: mdm.command_exchange refused certificate serial %s that "
		        "identity_record accepts",
		        j->id->serial);
		return MDM_ERR_INTERNAL;
	}
	if (strcmp(outcome, "elsewhere") == 0 || strcmp(outcome, "unbound") == 0)
		return identity_bound_outcome(j->id, r->udid, outcome);
	if (strcmp(outcome, "no_enrollment") == 0) {
		log_warn("command channel refused: UDID %s%s%s has no active enrollment (Apple MDM "
		         "protocol: commands follow TokenUpdate, end with CheckOut)",
		        r->udid, r->user_id ? " user " : "", r->user_id ? r->user_id : "");
		return MDM_ERR_FORBIDDEN;
	}
	if (strcmp(outcome, "not_outstanding") == 0) {
		/* The log names the UDID; the answer (unknown, finished or canceled) does not. */
		snprintf(who, sizeof(who), "%s: %s from UDID %s", command_who, r->status_str,
		        r->udid);
		return mdm_refuse(who, j->err, j->errlen, MDM_ERR_PARSE,
		        "Apple MDM protocol: CommandUUID %s is not outstanding for this enrollment",
		        r->command_uuid);
	}
	/* Done: a renewed certificate was bound on the way (logged there). */
	if ((rc = identity_bound_outcome(j->id, r->udid, db_res_get0(res, 0, 1))) != MDM_OK)
		return rc;
	if (strcmp(outcome, "encrypt") == 0) {
		snprintf(j->eid, sizeof(j->eid), "%s", db_res_get0(res, 0, 2));
		return db_tx(d, command_deliver_tx, j);
	}
	if (strcmp(outcome, "command") != 0)
		return MDM_OK; /* none: nothing due */
	if ((j->reply->body = strdup(xml)) == NULL)
		return MDM_ERR_NOMEM;
	j->reply->len = strlen(xml);
	snprintf(j->reply->command_uuid, sizeof(j->reply->command_uuid), "%s",
	        db_res_get0(res, 0, 4));
	return MDM_OK;
}

mdm_err command_process(db *d, const struct identity *id, const struct command_signer *signer,
        const struct command_report *r, const uint8_t *raw, size_t rawlen,
        struct command_reply *reply, char *err, size_t errlen)
{
	/* Completed from the certificate's row, which the statement reads. */
	struct identity known = *id;
	struct command_job j = {&known, signer, r, raw, rawlen, reply, err, errlen, ""};
	char *json = NULL, *chain = NULL;
	size_t jlen, clen;
	const char *p[8];
	db_res *res = NULL;
	mdm_err rc;

	memset(reply, 0, sizeof(*reply));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (r->status != COMMAND_IDLE &&
	        ((rc = plist_to_json(r->root, &json, &jlen)) != MDM_OK ||
	                (r->error_chain != NULL &&
	                        (rc = plist_to_json(r->error_chain, &chain, &clen)) != MDM_OK)))
		goto out;
	p[0] = id->sha256;
	p[1] = r->udid;
	p[2] = r->user_id;
	p[3] = r->status_str;
	p[4] = r->command_uuid;
	p[5] = r->status != COMMAND_IDLE ? (const char *)raw : NULL;
	p[6] = json;
	p[7] = chain;
	/* The whole report is one statement and one transaction (sql/020). */
	rc = db_exec_once(d,
	        "SELECT outcome, identity, enrollment_id, plist, command_uuid, cert_id, cert_kind, "
	        "cert_revoked, cert_udid, cert_renewal_of, cert_serial FROM "
	        "mdm.command_exchange($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)",
	        8, p, &res);
	if (rc == MDM_OK)
		rc = command_outcome(d, &j, &known, res);
	if (rc != MDM_OK) {
		command_reply_clear(reply);
		goto out;
	}
	log_info("command channel: %s%s%s from UDID %s -> %s%s", r->status_str,
	        r->command_uuid ? " " : "", r->command_uuid ? r->command_uuid : "", r->udid,
	        reply->body ? "command " : "nothing due", reply->body ? reply->command_uuid : "");
out:
	free(json);
	free(chain);
	db_res_free(res);
	return rc;
}
