-- 020_command_exchange: a command-channel request in one statement.
--
-- server.fcgi spent 9 to 11 round trips to PostgreSQL on every request
-- (the certificate's record, BEGIN, the identity binding, the enrollment
-- stamp, the answer's three statements, the next command, its delivery
-- stamp, COMMIT), about half of PostgreSQL's CPU per device connect
-- (issue 15).  mdm.command_exchange does
-- the same work in one call, checks before writes, so that a refused
-- request changes nothing.  The rules are the ones lib/command.c and
-- lib/identity.c applied statement by statement; the C code now calls
-- these functions (and only these) for them:
--
--   mdm.identity_check_bound   is this certificate the UDID's bound identity,
--                              or one renewed from it?  (read, row lock)
--   mdm.identity_claim         tie a certificate to one UDID
--   mdm.identity_rebind_renewal bind a renewed certificate in place of the old
--   mdm.command_due            the next command to deliver (row lock)
--   mdm.command_delivered      stamp it delivered
--   mdm.command_exchange       all of a report: Idle, or an answer, then the
--                              next command
--
-- Durability: a request that only stamps last_seen_at and idle_at (an Idle
-- with nothing due) commits with synchronous_commit off.  A crash can lose
-- the last few such stamps: last_seen_at is then a little older, and a
-- command answered NotNow since the lost Idle waits for the device's next
-- Idle instead of this one.  Everything else (an answer, a delivery, a
-- rebinding) commits durably.

-- The certificate's binding to for_udid: 'bound' (it is the identity bound
-- by Authenticate), 'renewal' (renewed from the bound one and not claimed by
-- another UDID: the caller binds it, mdm.identity_rebind_renewal) or
-- 'unbound' (unknown UDID, or another certificate).  Locks the device row,
-- so that a concurrent Authenticate cannot rebind it underneath.
CREATE FUNCTION mdm.identity_check_bound(for_udid text, cert_id bigint, cert_renewal_of bigint,
                                         cert_udid text)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bound bigint;
BEGIN
    SELECT coalesce(d.identity_certificate_id, 0) INTO bound
      FROM mdm.device d WHERE d.udid = for_udid FOR UPDATE;
    bound := coalesce(bound, 0);
    IF bound <> 0 AND bound = cert_id THEN
        RETURN 'bound';
    END IF;
    IF bound <> 0 AND cert_renewal_of = bound
       AND (coalesce(cert_udid, '') = '' OR cert_udid = for_udid) THEN
        RETURN 'renewal';
    END IF;
    RETURN 'unbound';
END $$;
COMMENT ON FUNCTION mdm.identity_check_bound(text, bigint, bigint, text) IS
    'Server programs: whether certificate cert_id (renewed from cert_renewal_of, bound to '
    'cert_udid when read) speaks for for_udid: bound, renewal (renewed from the bound '
    'certificate: bind it with mdm.identity_rebind_renewal) or unbound. Locks the device row.';

-- Ties the certificate to for_udid under its row lock: true when it was
-- unbound or already for_udid's; false when another UDID has it, also one
-- a concurrent request bound a moment ago.
CREATE FUNCTION mdm.identity_claim(cert_id bigint, for_udid text)
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE mdm.certificate c SET udid = for_udid
     WHERE c.id = cert_id AND (c.udid IS NULL OR c.udid = for_udid);
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION mdm.identity_claim(bigint, text) IS
    'Server programs: ties certificate cert_id to for_udid; false (nothing changed) when '
    'another UDID holds it.';

-- A renewed certificate speaks for the UDID from its first request on (a
-- device renewed over SCEP goes on without a new Authenticate): bound in
-- place of previous_id, reason renewal.  False, nothing changed, when the
-- certificate belongs to another UDID.
CREATE FUNCTION mdm.identity_rebind_renewal(for_udid text, cert_id bigint, previous_id bigint)
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT mdm.identity_claim(cert_id, for_udid) THEN
        RETURN false;
    END IF;
    UPDATE mdm.device SET identity_certificate_id = cert_id, identity_bound_at = now(),
                          updated_at = now()
     WHERE udid = for_udid;
    INSERT INTO mdm.identity_binding (udid, certificate_id, previous_certificate_id, reason)
    VALUES (for_udid, cert_id, previous_id, 'renewal');
    RETURN true;
END $$;
COMMENT ON FUNCTION mdm.identity_rebind_renewal(text, bigint, bigint) IS
    'Server programs: binds certificate cert_id, renewed from previous_id, to for_udid '
    '(identity_binding reason renewal); false, nothing changed, when another UDID holds it.';

-- The next command to deliver to an enrollment, its queue row locked:
-- higher priority first, then older.  Commands answered NotNow wait for
-- the next Idle (the next connection); delivered but unanswered ones come
-- again (their answer never arrived).  No row: nothing due.
CREATE FUNCTION mdm.command_due(enrollment bigint)
RETURNS TABLE (queue_id bigint, plist text, command_uuid text, encrypt_payload boolean)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT q.id, c.plist, c.command_uuid, c.encrypt_payload
      FROM mdm.command_queue q
      JOIN mdm.command c ON c.command_uuid = q.command_uuid
      JOIN mdm.enrollment e ON e.id = q.enrollment_id
     WHERE q.enrollment_id = enrollment AND q.status = 'queued'
       AND (q.not_now_at IS NULL OR (e.idle_at IS NOT NULL AND q.not_now_at < e.idle_at))
     ORDER BY q.priority DESC, q.id
     LIMIT 1
       FOR UPDATE OF q;
END $$;
COMMENT ON FUNCTION mdm.command_due(bigint) IS
    'server.fcgi: the next command due for an enrollment (priority, then age; NotNow''d ones '
    'after the next Idle), its queue row locked; no row when nothing is due.';

-- A command handed to the device: when, and how many times (delivered but
-- never answered, it comes again at the next Idle).
CREATE FUNCTION mdm.command_delivered(queue_id bigint)
RETURNS void LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    UPDATE mdm.command_queue SET delivered_at = now(), delivered_count = delivered_count + 1
     WHERE id = queue_id;
$$;
COMMENT ON FUNCTION mdm.command_delivered(bigint) IS
    'server.fcgi: stamps a queued command delivered (delivered_at, delivered_count).';

-- A report from the command channel (Apple MDM protocol, ServerURL), all of
-- it: the certificate's record (by its SHA-256: it must be a device
-- identity we issued and have not revoked; the row is returned so that
-- the program applies the same rules, lib/identity.c identity_record, and
-- logs which one refused), the certificate's binding to the UDID, the
-- active enrollment, the answer (any Status but Idle: it must answer a
-- command outstanding for this enrollment), the stamps, and the next
-- command, marked delivered.
-- outcome:
--   certificate      the row (cert_id NULL: none) is not a device identity
--                    we issued, unrevoked
--   unbound          the certificate does not speak for for_udid
--   elsewhere        a renewed certificate another UDID holds
--   no_enrollment    no active enrollment for for_udid / for_user
--   not_outstanding  the answered CommandUUID is not queued for it
--   none             done, nothing due
--   command          done, plist/command_uuid delivered
--   encrypt          done, but the next command is an encrypted
--                    InstallProfile: the caller builds it (it needs the
--                    profile signer) and delivers it in a transaction of
--                    its own (mdm.command_due again), or marks it
--                    undeliverable
-- The first five change nothing.  identity says 'renewal' when the
-- request bound a renewed certificate (for the log).
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
    PERFORM mdm.command_delivered(due.queue_id);
    RETURN QUERY SELECT 'command'::text, ident, eid, due.plist, due.command_uuid,
                        c.id, c.kind, c.revoked, c.udid, c.renewal_of, c.serial;
END $$;
COMMENT ON FUNCTION mdm.command_exchange(text, text, text, text, text, text, jsonb, jsonb) IS
    'server.fcgi: one command-channel report in one statement (the certificate''s record, its '
    'binding to the UDID, enrollment, answer, next command). outcome certificate, unbound, '
    'elsewhere, no_enrollment or not_outstanding: refused, nothing changed; none, command '
    '(delivered) or encrypt (the caller builds and delivers it). See sql/020_command_exchange.sql.';

-- The server programs' own (they run as the schema's owner); nobody else's.
REVOKE EXECUTE ON FUNCTION
    mdm.identity_check_bound(text, bigint, bigint, text),
    mdm.identity_claim(bigint, text),
    mdm.identity_rebind_renewal(text, bigint, bigint),
    mdm.command_due(bigint),
    mdm.command_delivered(bigint),
    mdm.command_exchange(text, text, text, text, text, text, jsonb, jsonb)
FROM PUBLIC;
