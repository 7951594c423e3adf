-- 022_command_exchange_identity: the certificate's record read by the same
-- statement.  server.fcgi looked up the request's certificate in
-- mdm.certificate (a round trip) before mdm.command_exchange (020); now
-- the exchange takes its SHA-256, reads the row, and stops there, having
-- changed nothing, unless it is a device identity we issued and have not
-- revoked.  It returns the row (id, kind, revoked, udid, renewal_of,
-- serial), so the program applies the same rules (lib/identity.c,
-- identity_record) and logs which one refused.  One round trip per
-- request.  020's version is dropped: only server.fcgi called it.

DROP FUNCTION mdm.command_exchange(text, text, bigint, bigint, text, text, text, text, jsonb,
                                   jsonb);

-- outcome as in 020, and certificate: the row (if any) is not a device
-- identity we issued, unrevoked (cert_id NULL: no such row).
CREATE FUNCTION mdm.command_exchange(cert_sha256 text, for_udid text, for_user text,
                                     report_status text, report_uuid text, report_xml text,
                                     report_json jsonb, report_chain jsonb)
RETURNS TABLE (outcome text, identity text, enrollment_id bigint, plist text,
               command_uuid text, cert_id bigint, cert_kind text, cert_revoked boolean,
               cert_udid text, cert_renewal_of bigint, cert_serial text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ident   text;
    eid     bigint;
    bound   bigint;
    qid     bigint;
    idle    boolean := report_status = 'Idle';
    due     record;
    c       record;
BEGIN
    SELECT x.id, x.kind, x.revoked_at IS NOT NULL AS revoked, coalesce(x.udid, '') AS udid,
           coalesce(x.renewal_of, 0) AS renewal_of, x.serial
      INTO c FROM mdm.certificate x WHERE x.sha256 = cert_sha256;
    IF NOT FOUND OR c.kind <> 'device' OR c.revoked THEN
        RETURN QUERY SELECT 'certificate'::text, NULL::text, NULL::bigint, NULL::text,
                            NULL::text, c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
        RETURN;
    END IF;
    ident := mdm.identity_check_bound(for_udid, c.id, c.renewal_of, c.udid);
    IF ident = 'unbound' THEN
        RETURN QUERY SELECT 'unbound'::text, ident, NULL::bigint, NULL::text, NULL::text,
                            c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
        RETURN;
    END IF;
    SELECT e.id INTO eid FROM mdm.enrollment e
     WHERE e.udid = for_udid AND e.user_id IS NOT DISTINCT FROM for_user AND e.active
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_enrollment'::text, ident, NULL::bigint, NULL::text, NULL::text,
                            c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
        RETURN;
    END IF;
    IF NOT idle THEN
        SELECT q.id INTO qid FROM mdm.command_queue q
         WHERE q.enrollment_id = eid AND q.command_uuid = report_uuid AND q.status = 'queued'
           FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'not_outstanding'::text, ident, eid, NULL::text, NULL::text,
                                c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
            RETURN;
        END IF;
    END IF;
    -- Checked; from here on it writes.
    IF ident = 'renewal' THEN
        SELECT d.identity_certificate_id INTO bound FROM mdm.device d WHERE d.udid = for_udid;
        IF NOT mdm.identity_rebind_renewal(for_udid, c.id, bound) THEN
            RETURN QUERY SELECT 'elsewhere'::text, ident, eid, NULL::text, NULL::text,
                                c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
            RETURN;
        END IF;
    END IF;
    UPDATE mdm.enrollment e SET last_seen_at = now(),
                                idle_at = CASE WHEN idle THEN now() ELSE e.idle_at END
     WHERE e.id = eid;
    UPDATE mdm.device d SET last_seen_at = now() WHERE d.udid = for_udid;
    IF NOT idle THEN
        INSERT INTO mdm.command_result (enrollment_id, command_uuid, status, result,
                                        result_json, error_chain)
        VALUES (eid, report_uuid, report_status, report_xml, report_json, report_chain);
        -- NotNow keeps it queued, skipped until the next Idle.
        UPDATE mdm.command_queue q
           SET status = CASE report_status WHEN 'Acknowledged' THEN 'acknowledged'
                                           WHEN 'Error' THEN 'error'
                                           WHEN 'CommandFormatError' THEN 'format_error'
                                           ELSE q.status END,
               finished_at = CASE WHEN report_status = 'NotNow' THEN NULL ELSE now() END,
               not_now_at = CASE WHEN report_status = 'NotNow' THEN now() ELSE q.not_now_at END
         WHERE q.id = qid;
    END IF;
    SELECT * INTO due FROM mdm.command_due(eid);
    IF NOT FOUND THEN
        IF idle AND ident = 'bound' THEN
            -- Only stamps were written: see the head of this file.
            PERFORM set_config('synchronous_commit', 'off', true);
        END IF;
        RETURN QUERY SELECT 'none'::text, ident, eid, NULL::text, NULL::text,
                            c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
        RETURN;
    END IF;
    IF due.encrypt_payload THEN
        RETURN QUERY SELECT 'encrypt'::text, ident, eid, NULL::text, due.command_uuid,
                            c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
        RETURN;
    END IF;
    UPDATE mdm.command_queue q SET delivered_at = now(), delivered_count = q.delivered_count + 1
     WHERE q.id = due.queue_id;
    RETURN QUERY SELECT 'command'::text, ident, eid, due.plist, due.command_uuid,
                        c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
END $$;
COMMENT ON FUNCTION mdm.command_exchange(text, text, text, text, text, text, jsonb, jsonb) IS
    'server.fcgi: one command-channel report in one statement (the certificate''s record, its '
    'binding to the UDID, enrollment, answer, next command). outcome certificate, unbound, '
    'elsewhere, no_enrollment or not_outstanding: refused, nothing changed; none, command '
    '(delivered) or encrypt (the caller builds and delivers it). See sql/020 and 022.';
REVOKE EXECUTE ON FUNCTION
    mdm.command_exchange(text, text, text, text, text, text, jsonb, jsonb) FROM PUBLIC;
