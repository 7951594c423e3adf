/*
 * MDM check-in messages (Apple "Mobile Device Management Protocol",
 * check-in endpoint: Authenticate, TokenUpdate, CheckOut,
 * UserAuthenticate, SetBootstrapToken, GetBootstrapToken, GetToken,
 * DeclarativeManagement, ReturnToService), for the device channel and the
 * user channel.
 *
 * checkin_parse turns an untrusted body into a checked message (no
 * database: the fuzz target drives it); checkin_process applies one to
 * the database for an identity that identity_authenticate accepted, in
 * one transaction, so a refused message changes nothing.
 */
#ifndef MDM_CHECKIN_H
#define MDM_CHECKIN_H

#include <stddef.h>
#include <stdint.h>

#include "mdm_limits.h"
#include "db.h"
#include "errors.h"
#include "identity.h"
#include "plist.h"

enum checkin_type {
	CHECKIN_AUTHENTICATE,
	CHECKIN_TOKEN_UPDATE,
	CHECKIN_CHECK_OUT,
	CHECKIN_USER_AUTHENTICATE,
	CHECKIN_SET_BOOTSTRAP_TOKEN,
	CHECKIN_GET_BOOTSTRAP_TOKEN,
	CHECKIN_GET_TOKEN,
	CHECKIN_DECLARATIVE_MANAGEMENT,
	CHECKIN_RETURN_TO_SERVICE,
	CHECKIN__MAX
};

/* A checked message; every pointer borrows from root (NULL when absent). */
struct checkin_msg {
	enum checkin_type type;
	plist *root;
	const char *message_type;
	const char *udid;    /* UDID, or EnrollmentID (User Enrollment) */
	const char *user_id; /* UserID or EnrollmentUserID: the user channel; NULL: device */
	const char *topic;
	/* Authenticate */
	const char *serial_number, *model, *model_name, *product_name, *os_version, *build_version,
	        *imei, *meid, *device_name;
	/* TokenUpdate */
	const uint8_t *token;
	size_t token_len;
	const char *push_magic;
	const uint8_t *unlock_token;
	size_t unlock_token_len;
	int awaiting_configuration; /* -1 absent, else 0/1 */
	const char *user_short_name, *user_long_name;
	/* SetBootstrapToken (absent: the escrowed token is removed) */
	const uint8_t *bootstrap_token;
	size_t bootstrap_token_len;
	/* UserAuthenticate step two */
	const char *digest_response;
	/* GetToken, DeclarativeManagement */
	const char *token_service_type;
	const char *endpoint;
	const uint8_t *data; /* DeclarativeManagement Data (a status report), NULL: absent */
	size_t data_len;
};

const char *checkin_type_str(enum checkin_type t);

/*
 * Parses and checks one check-in body: an XML plist dict with a known
 * MessageType, the keys Apple requires for it, every key we read of the
 * right type, identifiers as identity_id_valid, caps above.  MDM_ERR_PARSE
 * (or MDM_ERR_LIMIT): the refusal is logged here, naming the rule, and the
 * rule written into err for the answer (mdm_refuse, errors.h).
 */
MDM_WUR mdm_err checkin_parse(
        const uint8_t *body, size_t len, struct checkin_msg **out, char *err, size_t errlen);
void checkin_msg_free(struct checkin_msg *m);

struct checkin_policy {
	int allow_takeover; /* config checkin_allow_takeover */
	int user_channel;   /* config checkin_user_channel */
};

struct checkin_reply {
	int status;               /* 200, 404 (a declaration not assigned), or 410 / 501 */
	const char *content_type; /* NULL with an empty body */
	char *body;               /* owned, NUL-terminated; NULL for an empty body */
	size_t len;
};
void checkin_reply_clear(struct checkin_reply *r);

/*
 * Applies m, authenticated as id, in one transaction; raw is the exact
 * body (kept in mdm.checkin).  *reply is what to answer.  Refusals, each
 * logged here once: MDM_ERR_FORBIDDEN (identity rules, policy; say nothing
 * more to the peer), MDM_ERR_PARSE (the message contradicts the protocol;
 * err says how, for the answer).  Nothing is written unless MDM_OK.
 */
MDM_WUR mdm_err checkin_process(db *d, const struct checkin_policy *pol, const struct identity *id,
        const struct checkin_msg *m, const uint8_t *raw, size_t rawlen, struct checkin_reply *reply,
        char *err, size_t errlen);

#endif
