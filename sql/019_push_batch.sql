-- 019_push_batch: mdm-pushd records a whole round's answers in one
-- statement.  006/010's mdm.push_record took one push a call: a round trip
-- and a commit per push, which at thousands of pushes a second cost more
-- than the pushes.  mdm.push_record_batch takes the round as arrays, one
-- element per claimed push, and applies 010's rules to each (they are the
-- same: push_record now records a batch of one).  Claiming was already one
-- statement per round (mdm.push_claim, LIMIT max_rows).

CREATE FUNCTION mdm.push_record_batch(claimer text, enrollment_ids bigint[],
                                      claimed_seqs bigint[], statuses integer[],
                                      apns_ids text[], reasons text[],
                                      retry_seconds double precision[],
                                      token_invalid boolean[])
RETURNS bigint[] LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n       integer := coalesce(cardinality(enrollment_ids), 0);
    missing bigint[];
BEGIN
    IF claimer IS NULL OR n > 100000
       OR coalesce(cardinality(claimed_seqs), 0) <> n OR coalesce(cardinality(statuses), 0) <> n
       OR coalesce(cardinality(apns_ids), 0) <> n OR coalesce(cardinality(reasons), 0) <> n
       OR coalesce(cardinality(retry_seconds), 0) <> n
       OR coalesce(cardinality(token_invalid), 0) <> n
       OR array_position(enrollment_ids, NULL) IS NOT NULL
       OR array_position(statuses, NULL) IS NOT NULL
       OR array_position(token_invalid, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.push_record_batch: a claimer, and arrays of one length (at most '
            '100000) without NULL ids, statuses or token_invalid' USING ERRCODE = '22023';
    END IF;
    IF (SELECT count(DISTINCT x) FROM unnest(enrollment_ids) x) <> n THEN
        RAISE EXCEPTION 'mdm.push_record_batch: an enrollment appears twice'
            USING ERRCODE = '22023';
    END IF;
    WITH r AS (
        SELECT * FROM unnest(enrollment_ids, claimed_seqs, statuses, apns_ids, reasons,
                             retry_seconds, token_invalid)
            AS r(enrollment_id, claimed_seq, status, apns_id, reason, retry_s, invalid)
    ), u AS (
        UPDATE mdm.push_state s
           SET last_status = r.status,
               last_reason = left(r.reason, 128),
               last_result_at = now(),
               last_apns_id = CASE WHEN r.status = 200 THEN left(r.apns_id, 64)
                              ELSE s.last_apns_id END,
               last_push_at = CASE WHEN r.status = 200 THEN now() ELSE s.last_push_at END,
               pushes = s.pushes + CASE WHEN r.status = 200 THEN 1 ELSE 0 END,
               pending = CASE WHEN r.status = 200 THEN s.request_seq > r.claimed_seq
                         ELSE s.pending END,
               failures = CASE WHEN r.status = 200 OR r.invalid THEN 0 ELSE s.failures + 1 END,
               next_attempt_at = CASE WHEN r.status = 200 OR r.invalid THEN now()
                                 ELSE now() + make_interval(secs => greatest(coalesce(r.retry_s, 0), 0))
                                 END,
               -- From the answer (clock_timestamp() is after it), as in 010.
               quiet_until = CASE WHEN r.status = 200
                                  THEN clock_timestamp()
                                       + make_interval(secs => greatest(coalesce(r.retry_s, 0), 0))
                                  ELSE s.quiet_until END,
               token_invalid_at = CASE WHEN r.invalid THEN now() ELSE s.token_invalid_at END,
               claimed_by = CASE WHEN s.claimed_by = claimer THEN NULL ELSE s.claimed_by END,
               claimed_until = CASE WHEN s.claimed_by = claimer THEN NULL
                               ELSE s.claimed_until END
          FROM r
         WHERE s.enrollment_id = r.enrollment_id
        RETURNING s.enrollment_id)
    SELECT coalesce(array_agg(r.enrollment_id ORDER BY r.enrollment_id), '{}') INTO missing
      FROM r WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.enrollment_id = r.enrollment_id);
    RETURN missing;
END $$;
COMMENT ON FUNCTION mdm.push_record_batch(text, bigint[], bigint[], integer[], text[], text[],
                                          double precision[], boolean[]) IS
    'mdm-pushd: records a round of attempts, element i of each array for one claimed push '
    '(enrollment, claimed_seq, status, apns_id, reason, retry_seconds, token_invalid), by the '
    'rules of mdm.push_record, in one statement. Returns the enrollments that had no push '
    'state (nothing recorded for them); SQLSTATE 22023 for arrays of unequal length, NULL '
    'ids, statuses or token_invalid, or an enrollment twice.';

-- One rule for one push and for many: push_record is a batch of one.
CREATE OR REPLACE FUNCTION mdm.push_record(
    enrollment_id bigint, claimer text, claimed_seq bigint, status integer, apns_id text,
    reason text, retry_seconds double precision, token_invalid boolean)
RETURNS boolean LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    SELECT cardinality(mdm.push_record_batch(claimer, ARRAY[enrollment_id],
               ARRAY[claimed_seq], ARRAY[status], ARRAY[apns_id], ARRAY[reason],
               ARRAY[retry_seconds], ARRAY[token_invalid])) = 0
$$;

REVOKE EXECUTE ON FUNCTION mdm.push_record_batch(text, bigint[], bigint[], integer[], text[],
                                                 text[], double precision[], boolean[])
FROM PUBLIC;
