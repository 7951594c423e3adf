-- 023_events: events out (issue 16, operators).  Every accepted check-in
-- message (a row of mdm.checkin) and every command result (a row of
-- mdm.command_result) becomes one row of mdm.event_outbox, written by a
-- trigger in the same transaction as the fact: an event exists if and
-- only if its fact was committed, and no code path can forget one.
-- bin/mdm-eventd delivers the rows to the configured webhook (POST, JSON,
-- HMAC-SHA256 signature), claiming them FOR UPDATE SKIP LOCKED with a
-- lease, retrying with backoff until the receiver answers 2xx.
--
-- Off by default: until events are enabled (mdm-eventd does it when it
-- starts with a webhook_url; mdm.events_enable(false) stops it) the
-- triggers read one row of mdm.event_config and write nothing.

CREATE TABLE mdm.event_config (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    enabled    boolean NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO mdm.event_config (id, enabled) VALUES (true, false);
COMMENT ON TABLE mdm.event_config IS
    'One row: whether check-ins and command results are recorded as events in '
    'mdm.event_outbox. false (the default) until mdm-eventd starts with a webhook_url, '
    'which turns it on; mdm.events_enable(false) turns it off (pending events stay and are '
    'still delivered).';

CREATE TABLE mdm.event_outbox (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('checkin', 'command_result')),
    topic           text NOT NULL CHECK (length(topic) BETWEEN 1 AND 160),
    udid            text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by      text CHECK (length(claimed_by) <= 256),
    delivered_at    timestamptz,
    last_status     integer,
    last_error      text CHECK (length(last_error) <= 512)
);
-- What the daemons claim: undelivered rows by due time.
CREATE INDEX event_outbox_due_idx ON mdm.event_outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL;
-- What the prune deletes: delivered rows by age.
CREATE INDEX event_outbox_delivered_idx ON mdm.event_outbox (delivered_at)
    WHERE delivered_at IS NOT NULL;
COMMENT ON TABLE mdm.event_outbox IS
    'Events for the webhook (bin/mdm-eventd): one row per accepted check-in (kind checkin) '
    'and per command result (kind command_result), written by triggers in the transaction '
    'of the fact. payload is the JSON body POSTed, exactly (README.md, Events). Undelivered '
    'until the receiver answered 2xx (delivered_at); attempts counts the POSTs; '
    'next_attempt_at: not before (a backoff, or the lease of the daemon that claimed_by it). '
    'Delivered rows are deleted after webhook_keep_days.';
COMMENT ON COLUMN mdm.event_outbox.topic IS
    'The event''s name: mdm.<MessageType> for a check-in (mdm.Authenticate, '
    'mdm.TokenUpdate, mdm.CheckOut, ...), mdm.Connect for a command result.';
COMMENT ON COLUMN mdm.event_outbox.last_status IS
    'The receiver''s HTTP status at the last attempt; 0 when no answer came (connection '
    'refused, timeout).';

-- The operators' view: the delivery state, not the payloads.
CREATE VIEW mdm.events AS
    SELECT o.id, o.kind, o.topic, o.udid, o.created_at, o.attempts, o.next_attempt_at,
           o.delivered_at, o.last_status, o.last_error, o.claimed_by
    FROM mdm.event_outbox o;
COMMENT ON VIEW mdm.events IS
    'Webhook events and their delivery (attempts, next attempt, delivered, last error), '
    'without the payloads.';
GRANT SELECT ON mdm.events TO mdm_operator;

-- Base64 without line breaks (encode() breaks lines every 76 characters).
CREATE FUNCTION mdm.event_b64(b bytea) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT translate(encode(b, 'base64'), E'\n', '')
$$;
COMMENT ON FUNCTION mdm.event_b64(bytea) IS
    'Internal: base64 (RFC 4648, standard alphabet) without line breaks.';

CREATE FUNCTION mdm.event_add(k text, t text, for_udid text, body jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eid bigint := nextval('mdm.event_outbox_id_seq');
    at  timestamptz := clock_timestamp();
BEGIN
    INSERT INTO mdm.event_outbox (id, kind, topic, udid, payload, created_at, next_attempt_at)
    VALUES (eid, k, t, for_udid,
            jsonb_build_object('topic', t, 'event_id', eid,
                               'created_at', to_char(at AT TIME ZONE 'UTC',
                                                     'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
            || body,
            at, at);
    -- One notification per transaction (same payload): delivered at commit.
    PERFORM pg_notify('mdm_event', '');
END $$;
COMMENT ON FUNCTION mdm.event_add(text, text, text, jsonb) IS
    'Internal: one outbox row (topic, event_id and created_at added to body) and NOTIFY '
    'mdm_event.';

CREATE FUNCTION mdm.event_checkin() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eid bigint;
BEGIN
    IF NOT coalesce((SELECT c.enabled FROM mdm.event_config c), false) THEN
        RETURN NULL;
    END IF;
    SELECT e.id INTO eid FROM mdm.enrollment e
     WHERE e.udid = NEW.udid AND e.user_id IS NOT DISTINCT FROM NEW.user_id;
    PERFORM mdm.event_add('checkin', 'mdm.' || NEW.message_type, NEW.udid,
        jsonb_build_object('checkin_event', jsonb_build_object(
            'udid', NEW.udid,
            'user_id', NEW.user_id,
            'enrollment_id', eid,
            'message_type', NEW.message_type,
            'auth', NEW.auth,
            'received_at', to_char(NEW.received_at AT TIME ZONE 'UTC',
                                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'raw_payload', mdm.event_b64(NEW.body))));
    RETURN NULL;
END $$;
COMMENT ON FUNCTION mdm.event_checkin() IS
    'Trigger on mdm.checkin: the check-in''s event (README.md, Events), when enabled.';

CREATE TRIGGER checkin_event AFTER INSERT ON mdm.checkin
    FOR EACH ROW EXECUTE FUNCTION mdm.event_checkin();

CREATE FUNCTION mdm.event_command_result() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    e record;
BEGIN
    IF NOT coalesce((SELECT c.enabled FROM mdm.event_config c), false) THEN
        RETURN NULL;
    END IF;
    SELECT n.udid, n.user_id INTO e FROM mdm.enrollment n WHERE n.id = NEW.enrollment_id;
    PERFORM mdm.event_add('command_result', 'mdm.Connect', e.udid,
        jsonb_build_object('acknowledge_event', jsonb_build_object(
            'udid', e.udid,
            'user_id', e.user_id,
            'enrollment_id', NEW.enrollment_id,
            'command_uuid', NEW.command_uuid,
            'request_type', (SELECT c.request_type FROM mdm.command c
                              WHERE c.command_uuid = NEW.command_uuid),
            'status', NEW.status,
            'error_chain', NEW.error_chain,
            'reason', NEW.reason,
            'received_at', to_char(NEW.received_at AT TIME ZONE 'UTC',
                                   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'raw_payload', mdm.event_b64(convert_to(NEW.result, 'UTF8')))));
    RETURN NULL;
END $$;
COMMENT ON FUNCTION mdm.event_command_result() IS
    'Trigger on mdm.command_result: the answer''s event (README.md, Events), when enabled.';

CREATE TRIGGER command_result_event AFTER INSERT ON mdm.command_result
    FOR EACH ROW EXECUTE FUNCTION mdm.event_command_result();

-- ------------------------------------------------------------------------
-- The daemon's functions (bin/mdm-eventd, lib/eventq.c).

CREATE FUNCTION mdm.events_enable(turn_on boolean DEFAULT true) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    UPDATE mdm.event_config
       SET enabled = turn_on, changed_at = CASE WHEN enabled = turn_on THEN changed_at ELSE now() END
    RETURNING enabled;
$$;
COMMENT ON FUNCTION mdm.events_enable(boolean) IS
    'Starts (true) or stops (false) recording events; returns the new state. mdm-eventd '
    'calls it with true at start. Pending events are delivered either way.';

-- Claims up to max due events for lease_s seconds: the lease is the next
-- attempt time, so a daemon that dies holding claims delays them by the
-- lease, and a claim never needs releasing to expire.  Returned in id
-- order.
CREATE FUNCTION mdm.event_claim(claimer text, max integer, lease_s integer)
RETURNS TABLE (id bigint, attempts integer, payload text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF claimer IS NULL OR length(claimer) NOT BETWEEN 1 AND 256 OR max NOT BETWEEN 1 AND 10000
       OR lease_s NOT BETWEEN 1 AND 86400 THEN
        RAISE EXCEPTION 'mdm.event_claim: claimer 1..256 characters, max 1..10000, lease_s '
            '1..86400' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH due AS (
        SELECT o.id FROM mdm.event_outbox o
         WHERE o.delivered_at IS NULL AND o.next_attempt_at <= now()
         ORDER BY o.next_attempt_at, o.id
         LIMIT max
           FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE mdm.event_outbox o
           SET claimed_by = claimer, next_attempt_at = now() + make_interval(secs => lease_s)
          FROM due WHERE o.id = due.id
        RETURNING o.id, o.attempts, o.payload::text AS payload
    )
    SELECT c.id, c.attempts, c.payload FROM claimed c ORDER BY c.id;
END $$;
COMMENT ON FUNCTION mdm.event_claim(text, integer, integer) IS
    'mdm-eventd: claims up to max due events for lease_s seconds (FOR UPDATE SKIP LOCKED): '
    'id, attempts so far, the JSON body to POST.';

-- The outcome of one POST.  status 2xx: delivered (whoever claimed it
-- last: delivered is delivered).  Otherwise a failure: attempts + 1, the
-- next attempt retry_s from now, unless another daemon holds the claim
-- now (this one's lease ran out) or it was delivered meanwhile.
CREATE FUNCTION mdm.event_record(event_id bigint, claimer text, status integer,
                                 error text, retry_s double precision)
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF status BETWEEN 200 AND 299 THEN
        UPDATE mdm.event_outbox o
           SET delivered_at = now(), attempts = o.attempts + 1, last_status = status,
               last_error = NULL, claimed_by = NULL
         WHERE o.id = event_id AND o.delivered_at IS NULL;
    ELSE
        UPDATE mdm.event_outbox o
           SET attempts = o.attempts + 1, last_status = status,
               last_error = left(error, 512), claimed_by = NULL,
               next_attempt_at = now() + make_interval(secs => greatest(retry_s, 0))
         WHERE o.id = event_id AND o.delivered_at IS NULL AND o.claimed_by = claimer;
    END IF;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION mdm.event_record(bigint, text, integer, text, double precision) IS
    'mdm-eventd: the outcome of one POST (2xx: delivered; else attempts + 1, retry in '
    'retry_s seconds); false when nothing changed (delivered already, or claimed by another).';

-- Claims given back unattempted (the receiver is down: the rest of a
-- round waits with the one that failed), due again in retry_s.
CREATE FUNCTION mdm.event_release(event_ids bigint[], claimer text, retry_s double precision)
RETURNS integer LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    WITH r AS (
        UPDATE mdm.event_outbox o
           SET claimed_by = NULL,
               next_attempt_at = now() + make_interval(secs => greatest(retry_s, 0))
         WHERE o.id = ANY (event_ids) AND o.delivered_at IS NULL AND o.claimed_by = claimer
        RETURNING 1
    ) SELECT count(*)::integer FROM r;
$$;
COMMENT ON FUNCTION mdm.event_release(bigint[], text, double precision) IS
    'mdm-eventd: gives back claims not attempted, due again in retry_s seconds.';

-- Seconds until the next undelivered event is due (0: now), NULL: none.
CREATE FUNCTION mdm.event_next_due() RETURNS double precision
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN min(o.next_attempt_at) IS NULL THEN NULL
                ELSE greatest(extract(epoch FROM min(o.next_attempt_at) - now()), 0)
           END::double precision
      FROM mdm.event_outbox o WHERE o.delivered_at IS NULL;
$$;
COMMENT ON FUNCTION mdm.event_next_due() IS
    'mdm-eventd: seconds until the next undelivered event is due; NULL when none waits.';

-- Deletes up to max events delivered more than keep_days ago.
CREATE FUNCTION mdm.event_prune(keep_days integer, max integer) RETURNS integer
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM mdm.event_outbox o
         WHERE o.id IN (SELECT x.id FROM mdm.event_outbox x
                         WHERE x.delivered_at IS NOT NULL
                           AND x.delivered_at < now() - make_interval(days => keep_days)
                         ORDER BY x.delivered_at LIMIT max)
        RETURNING 1
    ) SELECT count(*)::integer FROM gone;
$$;
COMMENT ON FUNCTION mdm.event_prune(integer, integer) IS
    'mdm-eventd: deletes up to max events delivered more than keep_days days ago; returns '
    'how many. Undelivered events are never deleted.';

REVOKE EXECUTE ON FUNCTION
    mdm.event_b64(bytea),
    mdm.event_add(text, text, text, jsonb),
    mdm.event_checkin(),
    mdm.event_command_result(),
    mdm.events_enable(boolean),
    mdm.event_claim(text, integer, integer),
    mdm.event_record(bigint, text, integer, text, double precision),
    mdm.event_release(bigint[], text, double precision),
    mdm.event_next_due(),
    mdm.event_prune(integer, integer)
FROM PUBLIC;
