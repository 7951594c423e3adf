-- 018_scep_approve_checks: an operator cannot approve what the CertPoll
-- would refuse (issue 13, 3).  A RenewalReq (RFC 8894 section 3.3.1.2) is
-- signed by the certificate it renews; revoked or expired while it waited
-- under scep_approval = manual, the renewal has no grounds left.  The
-- CertPoll re-checks this at issue time (lib/scep.c, 013); approving is
-- refused here too, naming the serial, and the request stays pending for
-- mdm.scep_reject.

CREATE OR REPLACE FUNCTION mdm.scep_approve(transaction_id text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t mdm.scep_transaction;
    c mdm.certificate;
BEGIN
    SELECT * INTO t FROM mdm.scep_transaction s
     WHERE s.transaction_id = scep_approve.transaction_id AND s.status = 'pending'
       AND s.decided_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mdm.scep_approve: no pending transaction %', transaction_id
            USING ERRCODE = 'P0002';
    END IF;
    IF t.renewal_of IS NOT NULL THEN
        SELECT * INTO c FROM mdm.certificate WHERE id = t.renewal_of FOR SHARE;
        IF c.revoked_at IS NOT NULL OR c.not_after <= now() THEN
            RAISE EXCEPTION 'mdm.scep_approve: transaction % renews certificate serial %, '
                'which is %: a renewal is signed by a valid certificate (RFC 8894 section '
                '3.3.1.2); refuse it with mdm.scep_reject', transaction_id, c.serial,
                CASE WHEN c.revoked_at IS NOT NULL THEN 'revoked' ELSE 'expired' END
                USING ERRCODE = '22023';
        END IF;
    END IF;
    UPDATE mdm.scep_transaction s SET decided_at = now()
     WHERE s.transaction_id = t.transaction_id;
END $$;
COMMENT ON FUNCTION mdm.scep_approve(text) IS
    'Approves a pending SCEP request; the certificate is issued at the client''s next CertPoll. '
    'Refused (22023) for a renewal whose certificate was revoked or expired meanwhile.';
