-- 013_revocation_rules: revocation reasons a full CRL can carry, and
-- approvals that go void when their grounds change (issue 13).
--
-- RFC 5280 section 5.3.1: removeFromCRL (8) is only for delta CRLs, which
-- this CA does not make; accepted, it made every GetCRL fail.  Refused by
-- mdm.certificate_revoke and by the table; the check is NOT VALID so rows
-- written before 013 stay (GetCRL lists them without a reasonCode and logs
-- them, see sql/README.md).
--
-- scep_approval = manual: the CertPoll that would issue an approved
-- request first re-checks the certificate it renews (unrevoked, valid,
-- still bound as when asked).  When that no longer holds the transaction
-- becomes refused, with the rule in refusal and the failInfo answered.

ALTER TABLE mdm.certificate ADD CONSTRAINT certificate_revocation_reason_check
    CHECK (revocation_reason IN ('unspecified', 'keyCompromise', 'cACompromise',
        'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold',
        'privilegeWithdrawn', 'aACompromise')) NOT VALID;
COMMENT ON COLUMN mdm.certificate.revocation_reason IS
    'RFC 5280 CRLReason name, set with revoked_at. removeFromCRL is refused (RFC 5280 section '
    '5.3.1: delta CRLs only); a row from before 013 holding it is listed on the CRL without a '
    'reasonCode.';

CREATE OR REPLACE FUNCTION mdm.certificate_revoke(serial text, reason text DEFAULT 'unspecified')
RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    IF reason = 'removeFromCRL' THEN
        RAISE EXCEPTION 'mdm.certificate_revoke: reason removeFromCRL is only for delta CRLs '
            '(RFC 5280 section 5.3.1); this CA publishes full CRLs' USING ERRCODE = '22023';
    END IF;
    IF reason IS NULL OR reason NOT IN ('unspecified', 'keyCompromise', 'cACompromise',
            'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold',
            'privilegeWithdrawn', 'aACompromise') THEN
        RAISE EXCEPTION 'mdm.certificate_revoke: reason must be an RFC 5280 CRLReason name '
            '(section 5.3.1) other than removeFromCRL' USING ERRCODE = '22023';
    END IF;
    UPDATE mdm.certificate c
       SET revoked_at = now(), revocation_reason = reason
     WHERE c.serial = upper(ltrim(certificate_revoke.serial, '0'))
       AND c.kind = 'device' AND c.revoked_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'mdm.certificate_revoke: no unrevoked device certificate with serial %',
            serial USING ERRCODE = 'P0002';
    END IF;
END $$;
COMMENT ON FUNCTION mdm.certificate_revoke(text, text) IS
    'Revokes the device certificate with this serial (hex): the server refuses it from now '
    'on and GetCRL lists it. reason is an RFC 5280 CRLReason name other than removeFromCRL '
    '(delta CRLs only, RFC 5280 section 5.3.1).';

ALTER TABLE mdm.scep_transaction DROP CONSTRAINT scep_transaction_status_check;
ALTER TABLE mdm.scep_transaction ADD CONSTRAINT scep_transaction_status_check
    CHECK (status IN ('pending', 'issued', 'rejected', 'refused'));
ALTER TABLE mdm.scep_transaction
    ADD COLUMN refusal text,
    ADD COLUMN refusal_fail_info smallint CHECK (refusal_fail_info BETWEEN 0 AND 4),
    ADD CONSTRAINT scep_transaction_refusal_check
        CHECK ((status = 'refused') = (refusal IS NOT NULL AND refusal_fail_info IS NOT NULL));
COMMENT ON COLUMN mdm.scep_transaction.refusal IS
    'Status refused: the rule that refused an approved request when its CertPoll came (the '
    'certificate it renews was revoked, expired or bound elsewhere after the request).';
COMMENT ON COLUMN mdm.scep_transaction.refusal_fail_info IS
    'Status refused: the RFC 8894 failInfo every later CertPoll of it is answered with.';

CREATE VIEW mdm.scep_transactions AS
    SELECT transaction_id, subject, udid, message_type, status,
           decided_at IS NOT NULL AS approved, created_at, decided_at, refusal
    FROM mdm.scep_transaction;
COMMENT ON VIEW mdm.scep_transactions IS
    'Every SCEP transaction: pending, issued, rejected by an operator, or refused by the '
    'server at issue time (refusal says why).';
GRANT SELECT ON mdm.scep_transactions TO mdm_operator;
