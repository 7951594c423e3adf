-- 014_operator_secrets: what mdm_operator must not see, and expired challenges purged
-- (security review, issue 13).
-- mdm.push_certs.key_uri names where a push key lives, and a pkcs11: URI may
-- carry pin-value: the operator role reads every column of the view but that
-- one (column privileges; the admin and `mdmctl push-cert list` still see it).
REVOKE SELECT ON mdm.push_certs FROM mdm_operator;
GRANT SELECT (topic, subject, serial, sha256, not_before, not_after, expired, imported_at,
              active_enrollments, enrollments, open_challenges)
    ON mdm.push_certs TO mdm_operator;
COMMENT ON COLUMN mdm.push_certs.key_uri IS
    'Where the push key is (a file path or a pkcs11: URI, which may carry pin-value): not '
    'granted to mdm_operator (014), which reads every other column.';

-- Anonymous GET /enroll and /enroll/ota (enroll_auth = open) make a challenge
-- each, and nothing removed expired ones.  Making one now deletes up to 1000
-- that expired over a day ago unspent and that nothing refers to (a SCEP
-- transaction, an OTA enrollment), so the table stays the size of what is
-- valid; the day keeps "expired" distinguishable from "unknown" in the log.
CREATE INDEX challenge_unspent_expiry_idx ON mdm.challenge (expires_at) WHERE used_at IS NULL;

CREATE FUNCTION mdm.challenge_purge() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM mdm.challenge h
     WHERE h.id IN (SELECT o.id FROM mdm.challenge o
                     WHERE o.used_at IS NULL AND o.expires_at < now() - interval '1 day'
                       AND NOT EXISTS (SELECT 1 FROM mdm.scep_transaction t
                                        WHERE t.challenge_id = o.id)
                       AND NOT EXISTS (SELECT 1 FROM mdm.ota_enrollment e
                                        WHERE e.challenge_id = o.id)
                     ORDER BY o.expires_at LIMIT 1000
                     FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION mdm.challenge_purge() IS
    'Trigger: after challenges are made, deletes up to 1000 that expired over a day ago '
    'unspent and are referenced by no SCEP transaction or OTA enrollment (014).';
REVOKE ALL ON FUNCTION mdm.challenge_purge() FROM PUBLIC;
CREATE TRIGGER challenge_purge AFTER INSERT ON mdm.challenge
    FOR EACH STATEMENT EXECUTE FUNCTION mdm.challenge_purge();
