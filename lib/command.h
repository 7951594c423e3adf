/*
 * The command channel (Apple "Mobile Device Management Protocol",
 * ServerURL): a device reports a Status (Idle, or its answer to a
 * command) and gets the next command queued for it, or an empty body.
 *
 * command_report_parse turns an untrusted body into a checked report (no
 * database: the fuzz target drives it); command_process applies it for an
 * identity that identity_authenticate accepted, in one transaction: the
 * answer is stored and its command finished, then the next command is
 * picked and marked delivered.  A command stays queued until the device
 * answers Acknowledged, Error or CommandFormatError for it, so a crash
 * at any point loses none and never delivers a finished one again.
 */
#ifndef MDM_COMMAND_H
#define MDM_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "errors.h"
#include "identity.h"
#include "plist.h"

enum command_status {
	COMMAND_IDLE,
	COMMAND_ACKNOWLEDGED,
	COMMAND_ERROR,
	COMMAND_FORMAT_ERROR,
	COMMAND_NOT_NOW,
	COMMAND__MAX
};

/* A checked report; pointers borrow from root. */
struct command_report {
	enum command_status status;
	plist *root;
	const char *status_str;
	const char *udid;         /* UDID or EnrollmentID */
	const char *user_id;      /* UserID or EnrollmentUserID; NULL: device channel */
	const char *command_uuid; /* NULL for Idle */
	const plist *error_chain; /* Error: the ErrorChain array, if sent */
};

/*
 * Parses one report: an XML plist dict with a Status Apple defines, UDID
 * (or EnrollmentID), a CommandUUID for every status but Idle, ErrorChain
 * an array when present.  MDM_ERR_PARSE / MDM_ERR_LIMIT: the refusal is
 * logged here, naming the rule, and the rule written into err for the
 * answer (mdm_refuse, errors.h).
 */
MDM_WUR mdm_err command_report_parse(
        const uint8_t *body, size_t len, struct command_report **out, char *err, size_t errlen);
void command_report_free(struct command_report *r);

/* The profile signer, for InstallProfile commands encrypted at delivery (NULL: none). */
struct command_signer {
	struct x509_st *cert;
	struct evp_pkey_st *key;
	struct x509_st **chain;
	size_t nchain;
};

/*
 * The Payload of an encrypted InstallProfile, as server.fcgi delivers it:
 * profile (an unsigned XML plist with a PayloadContent array) gets its
 * payloads encrypted to recipient (profile_encrypt: EncryptedPayloadContent)
 * and is signed by sg (CMS SignedData, DER, *der owned by the caller).
 * Refusals with the reason in why (whylen bytes): MDM_ERR_CONFIG without
 * a signer, MDM_ERR_PARSE for a profile that does not parse or has no
 * PayloadContent array.  Also `mdmctl profile encrypt`.
 */
MDM_WUR mdm_err command_profile_seal(const struct command_signer *sg, struct x509_st *recipient,
        const uint8_t *profile, size_t len, uint8_t **der, size_t *derlen, char *why,
        size_t whylen);

struct command_reply {
	char *body; /* the next command's plist; NULL: nothing due (empty 200) */
	size_t len;
	char command_uuid[129];
};
void command_reply_clear(struct command_reply *r);

/*
 * Applies r, authenticated as id, in one statement (raw: the exact body,
 * stored as the result).  id need only be verified (identity_verify:
 * id->sha256): its mdm.certificate row is read and checked by the same
 * statement (identity_record).  Refusals, each logged here once:
 * MDM_ERR_FORBIDDEN (identity: the certificate is not a device identity
 * we issued, is revoked, is not the UDID's, or the enrollment is not
 * active), MDM_ERR_PARSE (an answer for a CommandUUID
 * not outstanding for this enrollment; err says so, for the answer),
 * MDM_ERR_CONFIG (an encrypted InstallProfile is due and signer is NULL:
 * not sent in clear).  Nothing is written unless MDM_OK.
 */
MDM_WUR mdm_err command_process(db *d, const struct identity *id,
        const struct command_signer *signer, const struct command_report *r, const uint8_t *raw,
        size_t rawlen, struct command_reply *reply, char *err, size_t errlen);

#endif
