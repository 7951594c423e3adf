-- 006_push: APNs push state for bin/mdm-pushd.  One row per enrollment
-- that was ever asked to be woken: whether a push is pending, who has
-- claimed it and until when, and what Apple answered last.  A command
-- queued marks the enrollment pending (many enqueues, one push); the
-- daemons claim due rows with FOR UPDATE SKIP LOCKED, so several can run
-- against one database without sending the same push twice, and a claim
-- expires, so a crashed daemon's work is taken up by another.

CREATE TABLE mdm.push_state (
    enrollment_id    bigint PRIMARY KEY REFERENCES mdm.enrollment (id),
    pending          boolean NOT NULL DEFAULT false,
    request_seq      bigint NOT NULL DEFAULT 0,
    requested_at     timestamptz,
    claimed_by       text CHECK (length(claimed_by) <= 256),
    claimed_until    timestamptz,
    claimed_seq      bigint,
    last_push_at     timestamptz,
    last_apns_id     text CHECK (length(last_apns_id) <= 64),
    last_status      integer,
    last_reason      text CHECK (length(last_reason) <= 128),
    last_result_at   timestamptz,
    pushes           bigint NOT NULL DEFAULT 0,
    failures         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT '-infinity',
    token_invalid_at timestamptz,
    CHECK ((claimed_by IS NULL) = (claimed_until IS NULL))
);
CREATE INDEX push_state_due_idx ON mdm.push_state (next_attempt_at) WHERE pending;
COMMENT ON TABLE mdm.push_state IS
    'APNs push state per enrollment (bin/mdm-pushd). pending: a push is wanted (a command '
    'was queued, or mdm.push asked); request_seq counts requests, so a request arriving '
    'while a push is in flight keeps the row pending. claimed_by/claimed_until: the daemon '
    'sending it, until its claim expires. last_*: Apple''s last answer (status 0: no answer, '
    'a network or local error named in last_reason). failures: consecutive failed attempts, '
    'reset by a success; next_attempt_at: not before (backoff). token_invalid_at: Apple said '
    'the token is bad (400 BadDeviceToken, 410 Unregistered) or there is no usable token or '
    'push magic: no push until the device''s next TokenUpdate clears it.';
COMMENT ON COLUMN mdm.push_state.claimed_seq IS
    'request_seq when the row was claimed: a success clears pending only if no request '
    'came after it.';

CREATE TABLE mdm.push_topic_status (
    topic          text PRIMARY KEY,
    last_status    integer,
    last_reason    text CHECK (length(last_reason) <= 256),
    last_error_at  timestamptz,
    last_ok_at     timestamptz,
    errors         integer NOT NULL DEFAULT 0
);
COMMENT ON TABLE mdm.push_topic_status IS
    'Problems of a whole topic seen by mdm-pushd: no push certificate imported, an expired '
    'or unloadable certificate or key, or APNs answering 403 (certificate or topic refused). '
    'errors counts consecutive ones; a successful push to the topic resets it and sets '
    'last_ok_at.';

-- Coalescing: one statement queueing for many enrollments, or many
-- statements for one, leave one pending row each.
CREATE FUNCTION mdm.push_mark_queued() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO mdm.push_state AS s (enrollment_id, pending, request_seq, requested_at)
    SELECT x.enrollment_id, true, 1, clock_timestamp()
      FROM (SELECT DISTINCT n.enrollment_id FROM new_rows n WHERE n.status = 'queued') x
    ON CONFLICT (enrollment_id) DO UPDATE
       SET pending = true, request_seq = s.request_seq + 1, requested_at = clock_timestamp();
    RETURN NULL;
END $$;
COMMENT ON FUNCTION mdm.push_mark_queued() IS
    'Trigger: queued commands mark their enrollments pending in mdm.push_state.';
CREATE TRIGGER command_queue_push AFTER INSERT ON mdm.command_queue
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION mdm.push_mark_queued();

-- A TokenUpdate (which always sets push_token) makes the token usable again.
CREATE FUNCTION mdm.push_token_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE mdm.push_state s
       SET token_invalid_at = NULL, failures = 0, next_attempt_at = '-infinity'
     WHERE s.enrollment_id = NEW.id AND s.token_invalid_at IS NOT NULL;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION mdm.push_token_updated() IS
    'Trigger: a new push token or push magic (TokenUpdate) clears token_invalid_at, so '
    'pushes resume.';
CREATE TRIGGER enrollment_push_token AFTER UPDATE OF push_token, push_magic ON mdm.enrollment
    FOR EACH ROW EXECUTE FUNCTION mdm.push_token_updated();

-- Commands queued before this migration still get their push.
INSERT INTO mdm.push_state (enrollment_id, pending, request_seq, requested_at)
SELECT DISTINCT q.enrollment_id, true, 1, now()
  FROM mdm.command_queue q WHERE q.status = 'queued'
ON CONFLICT (enrollment_id) DO NOTHING;

-- ------------------------------------------------------------------------
-- The daemon's side: claim and record.  Not granted to anyone: mdm-pushd
-- connects as the schema owner.

CREATE FUNCTION mdm.push_claim(claimer text, max_rows integer, lease_seconds integer)
RETURNS TABLE (enrollment_id bigint, udid text, user_id text, topic text, token_hex text,
               push_magic text, claimed_seq bigint, failures integer)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF claimer IS NULL OR length(claimer) NOT BETWEEN 1 AND 256
       OR max_rows IS NULL OR max_rows NOT BETWEEN 1 AND 10000
       OR lease_seconds IS NULL OR lease_seconds NOT BETWEEN 1 AND 86400 THEN
        RAISE EXCEPTION 'mdm.push_claim: claimer 1..256 characters, max_rows 1..10000, '
            'lease_seconds 1..86400' USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH due AS (
        SELECT s.enrollment_id FROM mdm.push_state s
         WHERE s.pending AND s.token_invalid_at IS NULL AND s.next_attempt_at <= now()
           AND (s.claimed_until IS NULL OR s.claimed_until < clock_timestamp())
         ORDER BY s.next_attempt_at, s.requested_at
         LIMIT max_rows
         FOR UPDATE OF s SKIP LOCKED)
    UPDATE mdm.push_state s
       SET claimed_by = claimer,
           claimed_until = clock_timestamp() + make_interval(secs => lease_seconds),
           claimed_seq = s.request_seq
      FROM due, mdm.enrollment e
     WHERE s.enrollment_id = due.enrollment_id AND e.id = s.enrollment_id
    RETURNING s.enrollment_id, e.udid, e.user_id, e.topic, encode(e.push_token, 'hex'),
              e.push_magic, s.claimed_seq, s.failures;
END $$;
COMMENT ON FUNCTION mdm.push_claim(text, integer, integer) IS
    'mdm-pushd: claims up to max_rows due pushes (pending, token not invalid, not in backoff, '
    'not claimed or the claim expired) for lease_seconds, skipping rows another claimer holds '
    'locked. Returns what a push needs, secrets included: not granted to operators.';

CREATE FUNCTION mdm.push_record(enrollment_id bigint, claimer text, claimed_seq bigint,
                                status integer, apns_id text, reason text,
                                retry_seconds double precision, token_invalid boolean)
RETURNS boolean LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ok boolean := status = 200;
    n  integer;
BEGIN
    UPDATE mdm.push_state s
       SET last_status = push_record.status,
           last_reason = left(push_record.reason, 128),
           last_result_at = now(),
           last_apns_id = CASE WHEN ok THEN left(push_record.apns_id, 64) ELSE s.last_apns_id END,
           last_push_at = CASE WHEN ok THEN now() ELSE s.last_push_at END,
           pushes = s.pushes + CASE WHEN ok THEN 1 ELSE 0 END,
           pending = CASE WHEN ok THEN s.request_seq > push_record.claimed_seq ELSE s.pending END,
           failures = CASE WHEN ok OR token_invalid THEN 0 ELSE s.failures + 1 END,
           next_attempt_at = CASE WHEN token_invalid THEN now()
                             ELSE now() + make_interval(secs => greatest(retry_seconds, 0)) END,
           token_invalid_at = CASE WHEN token_invalid THEN now() ELSE s.token_invalid_at END,
           claimed_by = CASE WHEN s.claimed_by = claimer THEN NULL ELSE s.claimed_by END,
           claimed_until = CASE WHEN s.claimed_by = claimer THEN NULL ELSE s.claimed_until END
     WHERE s.enrollment_id = push_record.enrollment_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n = 1;
END $$;
COMMENT ON FUNCTION mdm.push_record(bigint, text, bigint, integer, text, text,
                                    double precision, boolean) IS
    'mdm-pushd: records one attempt. 200: pushed (pending cleared unless a request came '
    'after the claim; retry_seconds is then the least gap before the next push, so requests '
    'arriving meanwhile share one). token_invalid: stop until the next TokenUpdate. '
    'Otherwise a failure: retry after retry_seconds. Releases the claim if claimer still '
    'holds it.';

CREATE FUNCTION mdm.push_topic_record(topic text, status integer, reason text)
RETURNS void LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO mdm.push_topic_status AS t (topic, last_status, last_reason, last_error_at,
                                            last_ok_at, errors)
    VALUES (topic, status, left(reason, 256),
            CASE WHEN status = 200 THEN NULL ELSE now() END,
            CASE WHEN status = 200 THEN now() END,
            CASE WHEN status = 200 THEN 0 ELSE 1 END)
    ON CONFLICT (topic) DO UPDATE
       SET last_status = EXCLUDED.last_status, last_reason = EXCLUDED.last_reason,
           last_error_at = coalesce(EXCLUDED.last_error_at, t.last_error_at),
           last_ok_at = coalesce(EXCLUDED.last_ok_at, t.last_ok_at),
           errors = CASE WHEN EXCLUDED.last_status = 200 THEN 0 ELSE t.errors + 1 END
$$;
COMMENT ON FUNCTION mdm.push_topic_record(text, integer, text) IS
    'mdm-pushd: records a topic-wide outcome (200, or 403 / 0 with the reason: no '
    'certificate, expired, refused).';

-- ------------------------------------------------------------------------
-- The operator's side.

CREATE FUNCTION mdm.push(udids text[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    missing text;
    n       integer;
    u       text;
BEGIN
    IF udids IS NULL OR cardinality(udids) = 0 OR array_position(udids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.push: give at least one UDID, and no NULL' USING ERRCODE = '22004';
    END IF;
    SELECT array_agg(x.u ORDER BY x.u) FILTER (WHERE e.id IS NULL) INTO missing
      FROM (SELECT DISTINCT t.u FROM unnest(udids) AS t(u)) x
      LEFT JOIN mdm.enrollment e ON e.udid = x.u AND e.user_id IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.push: no device-channel enrollment for UDID %', missing
            USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO mdm.push_state AS s (enrollment_id, pending, request_seq, requested_at,
                                     next_attempt_at)
    SELECT e.id, true, 1, clock_timestamp(), now()
      FROM mdm.enrollment e
     WHERE e.udid IN (SELECT DISTINCT t.u FROM unnest(udids) AS t(u)) AND e.user_id IS NULL
    ON CONFLICT (enrollment_id) DO UPDATE
       SET pending = true, request_seq = s.request_seq + 1, requested_at = clock_timestamp(),
           next_attempt_at = least(s.next_attempt_at, now());
    GET DIAGNOSTICS n = ROW_COUNT;
    FOR u IN SELECT DISTINCT t.u FROM unnest(udids) AS t(u) ORDER BY 1 LOOP
        PERFORM pg_notify('mdm_command', u);
    END LOOP;
    RETURN n;
END $$;
COMMENT ON FUNCTION mdm.push(text[]) IS
    'Asks mdm-pushd to wake the device channel of every UDID (all or none; P0002 names '
    'unknown ones) without queueing a command, ending any backoff; NOTIFY mdm_command. A '
    'token marked invalid stays so until the device''s next TokenUpdate. Returns how many '
    'enrollments were marked.';

CREATE FUNCTION mdm.push(udid text) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.push(ARRAY[udid])
$$;
COMMENT ON FUNCTION mdm.push(text) IS 'mdm.push(text[]) for one UDID.';

CREATE VIEW mdm.push_topics AS
    SELECT coalesce(p.topic, t.topic) AS topic, c.not_after AS cert_not_after,
           c.not_after < now() AS cert_expired, p.topic IS NOT NULL AS cert_imported,
           t.last_status, t.last_reason, t.last_error_at, t.last_ok_at,
           coalesce(t.errors, 0) AS errors
      FROM mdm.push_cert p
      JOIN mdm.certificate c ON c.id = p.certificate_id
      FULL JOIN mdm.push_topic_status t ON t.topic = p.topic;
COMMENT ON VIEW mdm.push_topics IS
    'Every push topic: its certificate''s expiry, and the last topic-wide problem mdm-pushd '
    'met (no certificate, expired, key unusable, APNs 403 with Apple''s reason) or its last '
    'success. errors > 0 means pushes to this topic are failing now.';

CREATE VIEW mdm.push_status AS
    SELECT e.udid, e.channel, e.user_id, e.topic, e.active,
           e.push_token IS NOT NULL AS has_push_token, e.token_updated_at,
           coalesce(s.pending, false) AS pending, s.requested_at,
           s.claimed_by, s.claimed_until,
           s.last_push_at, s.last_apns_id, s.last_status, s.last_reason, s.last_result_at,
           coalesce(s.pushes, 0) AS pushes, coalesce(s.failures, 0) AS failures,
           CASE WHEN s.pending THEN s.next_attempt_at END AS next_attempt_at,
           s.token_invalid_at,
           pt.cert_expired, pt.last_reason AS topic_problem
      FROM mdm.enrollment e
      LEFT JOIN mdm.push_state s ON s.enrollment_id = e.id
      LEFT JOIN mdm.push_topics pt ON pt.topic = e.topic AND pt.errors > 0;
COMMENT ON VIEW mdm.push_status IS
    'Push state of every enrollment: pending or not, who is sending it, Apple''s last answer '
    '(last_status 200 with last_apns_id; 400/410 with token_invalid_at; 403, 429, 5xx or 0 '
    'with last_reason), consecutive failures and the next attempt. topic_problem: the '
    'topic-wide problem (see mdm.push_topics), cert_expired its certificate''s state.';

REVOKE EXECUTE ON FUNCTION
    mdm.push_mark_queued(), mdm.push_token_updated(),
    mdm.push_claim(text, integer, integer),
    mdm.push_record(bigint, text, bigint, integer, text, text, double precision, boolean),
    mdm.push_topic_record(text, integer, text),
    mdm.push(text[]), mdm.push(text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mdm.push(text[]), mdm.push(text) TO mdm_operator;
GRANT SELECT ON mdm.push_status, mdm.push_topics TO mdm_operator;
