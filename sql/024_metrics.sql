-- 024_metrics: the state the database holds, as Prometheus text exposition
-- (format 0.0.4), for `mdmctl metrics` (a node exporter's textfile
-- collector) and for scrapers.  Read-only: it counts the rows the other
-- migrations keep (enrollments, the command queue, push state, SCEP
-- transactions); it adds no statement to any request path.

-- A label value as the format wants it: backslash, double quote and
-- newline escaped (\\, \", \n).  Values come from devices and Apple.
CREATE FUNCTION mdm.metrics_label(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT replace(replace(replace(value, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n')
$$;
COMMENT ON FUNCTION mdm.metrics_label(text) IS
    'A Prometheus label value escaped: backslash, double quote and newline.';

-- One metric family: # HELP, # TYPE and its samples (labels already made,
-- values already numbers); a family with no sample is left out.
CREATE FUNCTION mdm.metrics_family(name text, kind text, help text, samples text[])
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '# HELP ' || name || ' ' || help || E'\n# TYPE ' || name || ' ' || kind || E'\n' ||
           coalesce((SELECT string_agg(s, E'\n') || E'\n' FROM unnest(samples) AS s), '')
$$;
COMMENT ON FUNCTION mdm.metrics_family(text, text, text, text[]) IS
    'One metric family as exposition text: # HELP, # TYPE, then its samples.';

-- ------------------------------------------------------------------------
-- Requests of the FastCGI programs (lib/metrics.c).  Each worker counts in
-- its memory and adds what it counted to this table at most every
-- metrics_flush_seconds, in one statement: no statement per request.
-- UNLOGGED: no WAL for these writes; PostgreSQL empties the table after a
-- crash of its own, which a scraper sees as a counter reset.
CREATE UNLOGGED TABLE mdm.metrics_request (
    program      text NOT NULL CHECK (program ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    status_class smallint NOT NULL CHECK (status_class BETWEEN 0 AND 5),
    buckets      bigint[] NOT NULL,
    sum_seconds  double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (program, status_class)
);
COMMENT ON TABLE mdm.metrics_request IS
    'Requests answered by each FastCGI program by status class (1 to 5: 1xx to 5xx; 0: no '
    'answer sent), totals over every worker: buckets counts them by latency (not cumulative; '
    'upper bounds mdm.metrics_bucket_le(), then +Inf), sum_seconds their total latency.';

CREATE FUNCTION mdm.metrics_bucket_le() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5',
                 '1', '2.5', '5', '10', '+Inf']
$$;
COMMENT ON FUNCTION mdm.metrics_bucket_le() IS
    'The latency buckets of mdm.metrics_request, as lib/metrics.c metrics_bucket_le.';

CREATE FUNCTION mdm.metrics_request_add(program text, classes integer[], buckets bigint[],
                                        sums double precision[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer := cardinality(mdm.metrics_bucket_le());
BEGIN
    IF coalesce(array_length(classes, 1), 0) = 0 THEN
        RETURN;
    END IF;
    IF array_ndims(buckets) <> 2 OR array_length(buckets, 1) <> array_length(classes, 1)
            OR array_length(buckets, 2) <> n
            OR array_length(sums, 1) <> array_length(classes, 1) THEN
        RAISE EXCEPTION 'metrics_request_add: % classes need as many rows of % buckets and sums',
            array_length(classes, 1), n USING ERRCODE = '22023';
    END IF;
    FOR i IN 1 .. array_length(classes, 1) LOOP
        INSERT INTO mdm.metrics_request AS m (program, status_class, buckets, sum_seconds)
        VALUES (metrics_request_add.program, classes[i], buckets[i:i][1:n], sums[i])
        ON CONFLICT ON CONSTRAINT metrics_request_pkey DO UPDATE
            SET buckets = (SELECT array_agg(a + b ORDER BY k)
                           FROM unnest(m.buckets, EXCLUDED.buckets) WITH ORDINALITY AS t(a, b, k)),
                sum_seconds = m.sum_seconds + EXCLUDED.sum_seconds;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION mdm.metrics_request_add(text, integer[], bigint[], double precision[]) IS
    'A worker''s flush (lib/metrics.c): adds the requests it counted since its last flush.';

-- Outcomes a program counts besides its requests (lib/metrics.c
-- metrics_outcome; scep.fcgi: what each PKIOperation answered), flushed
-- with the request counts.
CREATE UNLOGGED TABLE mdm.metrics_outcome (
    program text NOT NULL CHECK (program ~ '^[a-z][a-z0-9_.-]{0,63}$'),
    name    text NOT NULL CHECK (name ~ '^[A-Za-z_]{1,31}$'),
    label   text NOT NULL CHECK (label ~ '^[A-Za-z_]{1,31}$'),
    total   bigint NOT NULL CHECK (total >= 0),
    PRIMARY KEY (program, name, label)
);
COMMENT ON TABLE mdm.metrics_outcome IS
    'Outcomes counted by the FastCGI programs, totals over every worker: scep.fcgi names '
    'scep_pkioperation with labels SUCCESS, PENDING, FAILURE_<failInfo> and unanswered.';

CREATE FUNCTION mdm.metrics_outcome_add(program text, names text[], labels text[],
                                        counts bigint[])
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF coalesce(cardinality(names), 0) <> coalesce(cardinality(labels), 0)
            OR coalesce(cardinality(names), 0) <> coalesce(cardinality(counts), 0) THEN
        RAISE EXCEPTION 'metrics_outcome_add: names, labels and counts differ in length'
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO mdm.metrics_outcome AS m (program, name, label, total)
    SELECT metrics_outcome_add.program, n, l, c FROM unnest(names, labels, counts) AS u(n, l, c)
    ON CONFLICT ON CONSTRAINT metrics_outcome_pkey DO UPDATE SET total = m.total + EXCLUDED.total;
END;
$$;
COMMENT ON FUNCTION mdm.metrics_outcome_add(text, text[], text[], bigint[]) IS
    'A worker''s flush (lib/metrics.c): adds the outcomes it counted since its last flush.';

-- The request families, for mdm.metrics_text().
CREATE FUNCTION mdm.metrics_request_text() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
WITH r AS (
    SELECT program, CASE WHEN status_class = 0 THEN 'none' ELSE status_class || 'xx' END AS class,
           buckets, sum_seconds,
           (SELECT sum(b) FROM unnest(buckets) AS b) AS n
    FROM mdm.metrics_request
)
SELECT
  mdm.metrics_family('mdm_http_requests_total', 'counter',
      'Requests answered by each FastCGI program, by status class (none: no answer sent).',
      coalesce((SELECT array_agg(format('mdm_http_requests_total{program="%s",class="%s"} %s',
                                        mdm.metrics_label(program), class, n)
                                 ORDER BY program, class) FROM r), '{}')) ||
  mdm.metrics_family('mdm_http_request_duration_seconds', 'histogram',
      'Time from the request reaching the program to its answer, by program and status class.',
      coalesce((SELECT array_agg(line ORDER BY program, class, ord) FROM (
          SELECT r.program, r.class, k AS ord,
                 format('mdm_http_request_duration_seconds_bucket{program="%s",class="%s",le="%s"} %s',
                        mdm.metrics_label(r.program), r.class, (mdm.metrics_bucket_le())[k],
                        sum(b) OVER (PARTITION BY r.program, r.class ORDER BY k)) AS line
          FROM r, unnest(r.buckets) WITH ORDINALITY AS u(b, k)
          UNION ALL
          SELECT program, class, 1000, format(
                     'mdm_http_request_duration_seconds_sum{program="%s",class="%s"} %s',
                     mdm.metrics_label(program), class, sum_seconds) FROM r
          UNION ALL
          SELECT program, class, 1001, format(
                     'mdm_http_request_duration_seconds_count{program="%s",class="%s"} %s',
                     mdm.metrics_label(program), class, n) FROM r) h), '{}')) ||
  mdm.metrics_family('mdm_scep_pkioperations_total', 'counter',
      'SCEP PKIOperations by what scep.fcgi answered: outcome SUCCESS, PENDING or FAILURE with '
      'its failInfo (RFC 8894 3.3.2.2; the rule behind each is in the log), or unanswered '
      '(no CertRep could be addressed: HTTP 400, or an error).',
      coalesce((SELECT array_agg(format(
                    'mdm_scep_pkioperations_total{outcome="%s",fail_info="%s"} %s',
                    split_part(label, '_', 1), substr(label, length(split_part(label, '_', 1)) + 2),
                    total) ORDER BY label)
                FROM mdm.metrics_outcome
                WHERE program = 'scep.fcgi' AND name = 'scep_pkioperation'), '{}'))
$$;
COMMENT ON FUNCTION mdm.metrics_request_text() IS
    'The request families of mdm.metrics_text(): mdm_http_requests_total and '
    'mdm_http_request_duration_seconds, from mdm.metrics_request, and '
    'mdm_scep_pkioperations_total, from mdm.metrics_outcome.';

CREATE FUNCTION mdm.metrics_text() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
SELECT
  mdm.metrics_family('mdm_devices', 'gauge', 'Devices known to the server (every UDID ever seen).',
      ARRAY['mdm_devices ' || (SELECT count(*) FROM mdm.device)]) ||
  mdm.metrics_family('mdm_enrollments', 'gauge',
      'Active MDM enrollments (channels) by channel (device or user) and push topic.',
      coalesce((SELECT array_agg(format('mdm_enrollments{channel="%s",topic="%s"} %s',
                                        mdm.metrics_label(channel),
                                        mdm.metrics_label(coalesce(topic, '')), n)
                                 ORDER BY channel, topic)
                FROM (SELECT channel, topic, count(*) AS n FROM mdm.enrollment
                      WHERE active GROUP BY channel, topic) e), '{}')) ||
  mdm.metrics_family('mdm_command_queue_depth', 'gauge',
      'Commands queued and not yet answered, over every enrollment.',
      ARRAY['mdm_command_queue_depth ' ||
            (SELECT count(*) FROM mdm.command_queue WHERE status = 'queued')]) ||
  mdm.metrics_family('mdm_command_queue_oldest_age_seconds', 'gauge',
      'Age of the oldest queued command in seconds (0 when the queue is empty).',
      ARRAY['mdm_command_queue_oldest_age_seconds ' ||
            (SELECT coalesce(round(extract(epoch FROM now() - min(queued_at)), 3), 0)
             FROM mdm.command_queue WHERE status = 'queued')]) ||
  mdm.metrics_family('mdm_push_sent_total', 'counter',
      'Pushes APNs accepted, over every enrollment (mdm-pushd).',
      ARRAY['mdm_push_sent_total ' || (SELECT coalesce(sum(pushes), 0) FROM mdm.push_state)]) ||
  mdm.metrics_family('mdm_push_pending', 'gauge',
      'Enrollments waiting for a push (the push is wanted, not yet accepted by APNs).',
      ARRAY['mdm_push_pending ' || (SELECT count(*) FROM mdm.push_state WHERE pending)]) ||
  mdm.metrics_family('mdm_push_backoff', 'gauge',
      'Enrollments whose push failed and waits for its backoff to end.',
      ARRAY['mdm_push_backoff ' || (SELECT count(*) FROM mdm.push_state
                                    WHERE pending AND failures > 0 AND next_attempt_at > now())]) ||
  mdm.metrics_family('mdm_push_token_invalid', 'gauge',
      'Enrollments APNs will not be pushed to until their next TokenUpdate (bad token).',
      ARRAY['mdm_push_token_invalid ' ||
            (SELECT count(*) FROM mdm.push_state WHERE token_invalid_at IS NOT NULL)]) ||
  mdm.metrics_family('mdm_push_failing', 'gauge',
      'Enrollments whose last push failed, by APNs status and reason (0: no answer).',
      coalesce((SELECT array_agg(format('mdm_push_failing{status="%s",reason="%s"} %s',
                                        st, mdm.metrics_label(reason), n) ORDER BY st, reason)
                FROM (SELECT coalesce(last_status, 0) AS st, coalesce(last_reason, '') AS reason,
                             count(*) AS n FROM mdm.push_state WHERE failures > 0
                      GROUP BY 1, 2) f), '{}')) ||
  mdm.metrics_family('mdm_push_topic_errors', 'gauge',
      'Consecutive whole-topic push errors (no certificate, expired, APNs 403), by topic.',
      coalesce((SELECT array_agg(format('mdm_push_topic_errors{topic="%s"} %s',
                                        mdm.metrics_label(topic), errors) ORDER BY topic)
                FROM mdm.push_topic_status), '{}')) ||
  mdm.metrics_family('mdm_scep_transactions', 'gauge',
      'SCEP transactions recorded, by status (pending, issued, rejected, refused).',
      (SELECT array_agg(format('mdm_scep_transactions{status="%s"} %s', s,
                               (SELECT count(*) FROM mdm.scep_transaction t WHERE t.status = s))
                        ORDER BY s)
       FROM unnest(ARRAY['issued', 'pending', 'refused', 'rejected']) AS s)) ||
  mdm.metrics_family('mdm_scep_refused', 'gauge',
      'SCEP transactions refused at CertPoll, by the rule that refused them.',
      coalesce((SELECT array_agg(format('mdm_scep_refused{reason="%s"} %s',
                                        mdm.metrics_label(refusal), n) ORDER BY refusal)
                FROM (SELECT refusal, count(*) AS n FROM mdm.scep_transaction
                      WHERE status = 'refused' GROUP BY refusal) r), '{}')) ||
  mdm.metrics_family('mdm_certificates_issued', 'gauge',
      'Device certificates issued and not revoked, by whether they have expired.',
      (SELECT array_agg(format('mdm_certificates_issued{expired="%s"} %s', e,
                               (SELECT count(*) FROM mdm.certificate c
                                WHERE c.kind = 'device' AND c.revoked_at IS NULL
                                  AND (c.not_after < now()) = (e = 'true')))
                        ORDER BY e)
       FROM unnest(ARRAY['false', 'true']) AS e)) ||
  mdm.metrics_request_text()
$$;
COMMENT ON FUNCTION mdm.metrics_text() IS
    'The server''s state as Prometheus text exposition format 0.0.4 (mdmctl metrics).';

-- Operators and monitoring logins read the text (GRANT mdm_operator, or
-- EXECUTE on mdm.metrics_text alone); only the programs' owner adds counts.
REVOKE EXECUTE ON FUNCTION mdm.metrics_text(), mdm.metrics_request_text(),
    mdm.metrics_request_add(text, integer[], bigint[], double precision[]),
    mdm.metrics_outcome_add(text, text[], text[], bigint[]),
    mdm.metrics_label(text), mdm.metrics_family(text, text, text, text[]),
    mdm.metrics_bucket_le() FROM PUBLIC;
REVOKE ALL ON mdm.metrics_request, mdm.metrics_outcome FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mdm.metrics_text() TO mdm_operator;
