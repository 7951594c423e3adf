-- 009_push_topics: several push topics on one server.  Each enrollment
-- profile names one imported topic (GET /enroll?topic=..., mdm_topic, or
-- the only one imported); the one-time challenge it carries records that
-- topic, so the over-the-air service can carry the topic chosen in phase 1
-- through phases 2 and 3.  Per topic, the admin sees how many enrollments
-- use it, and removes a topic only knowingly (mdm.push_cert_remove).

-- Same rule as mdm.push_cert.topic.  No foreign key: a challenge (and the
-- history in mdm.ota_enrollment) outlives the removal of its topic.
ALTER TABLE mdm.challenge
    ADD COLUMN topic text CHECK (topic ~ '^com\.apple\.mgmt\.[A-Za-z0-9._-]{1,200}$');
COMMENT ON COLUMN mdm.challenge.topic IS
    'The push topic of the profile that carries this challenge (the MDM payload''s Topic, or '
    'for an OTA challenge the topic chosen in phase 1 that phases 2 and 3 carry on); NULL: '
    'made before 009 or without a topic (mdm.scep_challenge_new(udid, ttl)).';

ALTER TABLE mdm.ota_enrollment
    ADD COLUMN topic text CHECK (topic ~ '^com\.apple\.mgmt\.[A-Za-z0-9._-]{1,200}$');
COMMENT ON COLUMN mdm.ota_enrollment.topic IS
    'The push topic this over-the-air enrollment was started for (phase 1) and whose MDM '
    'payload phase 3 served; NULL for enrollments started before 009.';

CREATE INDEX enrollment_topic_idx ON mdm.enrollment (topic) WHERE active;

-- The topic must be imported when the challenge is made; the row is locked
-- (KEY SHARE) so that mdm.push_cert_remove waits for this transaction and
-- then counts what it made.  Then the new challenge c records it.
CREATE FUNCTION mdm.challenge_topic_set(c text, topic text, caller text)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF challenge_topic_set.topic IS NOT NULL THEN
        PERFORM 1 FROM mdm.push_cert p WHERE p.topic = challenge_topic_set.topic FOR KEY SHARE;
        IF NOT FOUND THEN
            RAISE EXCEPTION '%: no push certificate is imported for topic %', caller,
                challenge_topic_set.topic USING ERRCODE = 'P0002';
        END IF;
    END IF;
    UPDATE mdm.challenge h SET topic = challenge_topic_set.topic
     WHERE h.challenge_sha256 = encode(sha256(convert_to(c, 'UTF8')), 'hex');
    RETURN c;
END $$;
COMMENT ON FUNCTION mdm.challenge_topic_set(text, text, text) IS
    'Records topic (which must be imported: SQLSTATE P0002, naming caller; NULL: none) with '
    'the challenge c just made, and returns c. Internal to the two functions below.';

CREATE FUNCTION mdm.scep_challenge_new(udid text, ttl interval, topic text)
RETURNS text LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.challenge_topic_set(mdm.scep_challenge_new(udid, ttl), topic,
                                   'mdm.scep_challenge_new');
$$;
COMMENT ON FUNCTION mdm.scep_challenge_new(text, interval, text) IS
    'mdm.scep_challenge_new(udid, ttl) for a profile naming push topic topic, which must be '
    'imported (SQLSTATE P0002 otherwise; NULL: no topic). The challenge records the topic.';

CREATE FUNCTION mdm.ota_challenge_new(ttl interval, topic text)
RETURNS text LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.challenge_topic_set(mdm.ota_challenge_new(ttl), topic, 'mdm.ota_challenge_new');
$$;
COMMENT ON FUNCTION mdm.ota_challenge_new(interval, text) IS
    'mdm.ota_challenge_new(ttl) for an over-the-air enrollment into push topic topic, which '
    'must be imported (SQLSTATE P0002 otherwise; NULL: the server''s default at phase 3). '
    'Phase 2 copies the topic to the SCEP challenge it answers with, phase 3 reads it there.';

-- Widened: how much uses each topic.  Columns are only appended (CREATE OR
-- REPLACE VIEW), so readers of 003's columns are unaffected.
CREATE OR REPLACE VIEW mdm.push_certs AS
    SELECT p.topic, c.subject, c.serial, c.sha256, c.not_before, c.not_after,
           c.not_after < now() AS expired, p.key_uri, p.imported_at,
           (SELECT count(*) FROM mdm.enrollment e
             WHERE e.topic = p.topic AND e.active) AS active_enrollments,
           (SELECT count(*) FROM mdm.enrollment e WHERE e.topic = p.topic) AS enrollments,
           (SELECT count(*) FROM mdm.challenge h
             WHERE h.topic = p.topic AND h.used_at IS NULL
               AND h.expires_at > now()) AS open_challenges
    FROM mdm.push_cert p JOIN mdm.certificate c ON c.id = p.certificate_id;
COMMENT ON VIEW mdm.push_certs IS
    'Push certificates by topic, with their validity and what uses the topic: '
    'active_enrollments (device and user channels between TokenUpdate and CheckOut), '
    'enrollments (every channel that ever authenticated with it), open_challenges '
    '(profiles handed out for it whose one-time challenge is still unspent and valid).';

CREATE FUNCTION mdm.push_cert_remove(topic text, force boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF push_cert_remove.topic IS NULL OR force IS NULL THEN
        RAISE EXCEPTION 'mdm.push_cert_remove: topic and force must not be NULL'
            USING ERRCODE = '22004';
    END IF;
    PERFORM 1 FROM mdm.push_cert p WHERE p.topic = push_cert_remove.topic FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mdm.push_cert_remove: no push certificate is imported for topic %',
            push_cert_remove.topic USING ERRCODE = 'P0002';
    END IF;
    SELECT count(*) INTO n FROM mdm.enrollment e
     WHERE e.topic = push_cert_remove.topic AND e.active;
    IF n > 0 AND NOT force THEN
        RAISE EXCEPTION 'mdm.push_cert_remove: % active enrollment(s) use topic %', n,
            push_cert_remove.topic USING ERRCODE = '55006',
            HINT = 'Their devices could no longer be woken and their check-ins would be '
                   'refused; mdm.push_cert_remove(topic, true) removes it anyway.';
    END IF;
    DELETE FROM mdm.push_cert p WHERE p.topic = push_cert_remove.topic;
    RETURN n;
END $$;
COMMENT ON FUNCTION mdm.push_cert_remove(text, boolean) IS
    'Removes the push certificate of topic (`mdmctl push-cert remove`): refused (SQLSTATE '
    '55006, naming how many) while active enrollments use the topic unless force; P0002 when '
    'it is not imported. Returns how many active enrollments used it. The certificate stays '
    'in mdm.certificate, the key where key_uri pointed; enrollments keep their topic.';

REVOKE ALL ON FUNCTION mdm.challenge_topic_set(text, text, text),
    mdm.scep_challenge_new(text, interval, text),
    mdm.ota_challenge_new(interval, text), mdm.push_cert_remove(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mdm.scep_challenge_new(text, interval, text),
    mdm.ota_challenge_new(interval, text) TO mdm_operator;
