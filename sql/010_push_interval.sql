-- 010_push_interval: push_min_interval holds between two successful pushes
-- to one enrollment, whoever asks for the next one.  006 kept the interval
-- in next_attempt_at, which mdm.push lowers to now() (it ends backoffs),
-- so an operator's wake-up went straight through it; and nothing told the
-- daemons when a push held back by the interval came due, so it waited for
-- the next sweep.  Now the interval has its own column that only a
-- successful push sets, every claim honours it, and mdm.push_next_due()
-- tells a daemon how long it may sleep.

ALTER TABLE mdm.push_state ADD COLUMN quiet_until timestamptz;
COMMENT ON COLUMN mdm.push_state.quiet_until IS
    'No push before this: the last successful push plus the daemon''s push_min_interval. '
    'Requests arriving meanwhile keep the row pending and share the one push made when it '
    'passes; mdm.push does not shorten it (it ends a backoff, next_attempt_at).';

-- A success recorded by 006's push_record kept its interval in next_attempt_at.
UPDATE mdm.push_state s SET quiet_until = s.next_attempt_at
 WHERE s.last_status = 200 AND s.failures = 0 AND s.next_attempt_at > now();

-- What mdm.push_next_due() reads: the moment each waiting row may be claimed.
CREATE INDEX push_state_wake_idx
    ON mdm.push_state (greatest(next_attempt_at, quiet_until, claimed_until))
 WHERE pending AND token_invalid_at IS NULL;

CREATE OR REPLACE FUNCTION mdm.push_claim(claimer text, max_rows integer, lease_seconds integer)
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
    -- clock_timestamp(), not now(): the interval is measured from the
    -- recorded answer to this claim, inside a transaction too.
    RETURN QUERY
    WITH due AS (
        SELECT s.enrollment_id FROM mdm.push_state s
         WHERE s.pending AND s.token_invalid_at IS NULL AND s.next_attempt_at <= now()
           AND (s.quiet_until IS NULL OR s.quiet_until <= clock_timestamp())
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
    'past quiet_until, not claimed or the claim expired) for lease_seconds, skipping rows '
    'another claimer holds locked. Returns what a push needs, secrets included: not granted '
    'to operators.';

CREATE OR REPLACE FUNCTION mdm.push_record(enrollment_id bigint, claimer text,
                                           claimed_seq bigint, status integer, apns_id text,
                                           reason text, retry_seconds double precision,
                                           token_invalid boolean)
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
           next_attempt_at = CASE WHEN ok OR token_invalid THEN now()
                             ELSE now() + make_interval(secs => greatest(retry_seconds, 0)) END,
           -- From the answer (clock_timestamp() is after it), so the next push
           -- leaves at least retry_seconds after this one did.
           quiet_until = CASE WHEN ok
                              THEN clock_timestamp() + make_interval(secs => greatest(retry_seconds, 0))
                              ELSE s.quiet_until END,
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
    'after the claim; retry_seconds is push_min_interval, kept in quiet_until: no other push '
    'before it, so requests arriving meanwhile share one). token_invalid: stop until the next '
    'TokenUpdate. Otherwise a failure: retry after retry_seconds (next_attempt_at). Releases '
    'the claim if claimer still holds it.';

CREATE FUNCTION mdm.push_next_due() RETURNS double precision
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN w.at IS NOT NULL
                THEN extract(epoch FROM least(greatest(w.at, c.t), c.t + interval '1 day') - c.t)
                     ::double precision END
      FROM (SELECT clock_timestamp() AS t) c,
           (SELECT min(greatest(s.next_attempt_at, s.quiet_until, s.claimed_until)) AS at
              FROM mdm.push_state s
             WHERE s.pending AND s.token_invalid_at IS NULL) w
$$;
COMMENT ON FUNCTION mdm.push_next_due() IS
    'mdm-pushd: seconds until the next pending push may be claimed, past its backoff, its '
    'quiet_until and any claim on it (0: now; NULL: none waits; at most a day). A daemon '
    'sleeps no longer, so a push held back by push_min_interval leaves when it ends.';

CREATE OR REPLACE VIEW mdm.push_status AS
    SELECT e.udid, e.channel, e.user_id, e.topic, e.active,
           e.push_token IS NOT NULL AS has_push_token, e.token_updated_at,
           coalesce(s.pending, false) AS pending, s.requested_at,
           s.claimed_by, s.claimed_until,
           s.last_push_at, s.last_apns_id, s.last_status, s.last_reason, s.last_result_at,
           coalesce(s.pushes, 0) AS pushes, coalesce(s.failures, 0) AS failures,
           CASE WHEN s.pending THEN greatest(s.next_attempt_at, s.quiet_until)
           END AS next_attempt_at,
           s.token_invalid_at,
           pt.cert_expired, pt.last_reason AS topic_problem
      FROM mdm.enrollment e
      LEFT JOIN mdm.push_state s ON s.enrollment_id = e.id
      LEFT JOIN mdm.push_topics pt ON pt.topic = e.topic AND pt.errors > 0;
COMMENT ON VIEW mdm.push_status IS
    'Push state of every enrollment: pending or not, who is sending it, Apple''s last answer '
    '(last_status 200 with last_apns_id; 400/410 with token_invalid_at; 403, 429, 5xx or 0 '
    'with last_reason), consecutive failures and the next attempt (after the backoff and '
    'push_min_interval). topic_problem: the topic-wide problem (see mdm.push_topics), '
    'cert_expired its certificate''s state.';

REVOKE EXECUTE ON FUNCTION mdm.push_next_due() FROM PUBLIC;
