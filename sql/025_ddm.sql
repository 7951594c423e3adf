-- 025_ddm: Declarative Device Management (Apple "Declarative Device
-- Management", schemas in apple/device-management: declarative/protocol,
-- declarations, status; mdm/checkin/declarativemanagement.yaml;
-- mdm/commands/declarativemanagement.yaml), administered in SQL.
--
-- Declarations are JSON documents (jsonb: PostgreSQL parses JSON, the C
-- code never does); sets group them; an enrollment (a channel: device or
-- user) gets the declarations of its sets.  Tokens:
--
--   ServerToken        of a declaration: SHA-256 (hex) of the canonical
--                      jsonb text of {Type, Identifier, Payload}; so it
--                      changes exactly when the content changes.
--   DeclarationsToken  of an enrollment: SHA-256 (hex, 64 octets) over the
--                      sorted kind/identifier=ServerToken lines of what it
--                      gets; so it changes exactly when that set or any of
--                      its tokens changes.
--
-- Every admin change recomputes the tokens of the enrollments it touches
-- (mdm.ddm_refresh) in the same transaction, and each enrollment whose
-- DeclarationsToken changed gets one DeclarativeManagement command (an
-- older one not yet delivered is canceled: one waits at a time); the queue
-- row wakes the device through the push path (006, coalesced).
-- checkin.fcgi answers each DeclarativeManagement check-in with one call of
-- mdm.ddm_checkin inside the check-in's transaction, so an answer never
-- mixes two states of the data.

-- ------------------------------------------------------------------------
-- What Apple's schemas name (apple/device-management declarative/
-- declarations/*/*.yaml declarationtype, declarative/status/*.yaml).

CREATE TABLE mdm.ddm_known_type (
    type text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('activation', 'asset', 'configuration', 'management'))
);
COMMENT ON TABLE mdm.ddm_known_type IS
    'The declaration types of Apple''s schemas (declarative/declarations/*/*.yaml, '
    'declarationtype). Another com.apple.<kind>.* type is accepted with a WARNING.';
INSERT INTO mdm.ddm_known_type (type, kind) VALUES
    ('com.apple.activation.simple', 'activation'),
    ('com.apple.asset.credential.acme', 'asset'),
    ('com.apple.asset.credential.certificate', 'asset'),
    ('com.apple.asset.credential.identity', 'asset'),
    ('com.apple.asset.credential.scep', 'asset'),
    ('com.apple.asset.credential.userpassword', 'asset'),
    ('com.apple.asset.data', 'asset'),
    ('com.apple.asset.useridentity', 'asset'),
    ('com.apple.configuration.account.caldav', 'configuration'),
    ('com.apple.configuration.account.carddav', 'configuration'),
    ('com.apple.configuration.account.exchange', 'configuration'),
    ('com.apple.configuration.account.google', 'configuration'),
    ('com.apple.configuration.account.ldap', 'configuration'),
    ('com.apple.configuration.account.mail', 'configuration'),
    ('com.apple.configuration.account.subscribed-calendar', 'configuration'),
    ('com.apple.configuration.app.managed', 'configuration'),
    ('com.apple.configuration.diskmanagement.settings', 'configuration'),
    ('com.apple.configuration.legacy', 'configuration'),
    ('com.apple.configuration.legacy.interactive', 'configuration'),
    ('com.apple.configuration.management.status-subscriptions', 'configuration'),
    ('com.apple.configuration.management.test', 'configuration'),
    ('com.apple.configuration.math.settings', 'configuration'),
    ('com.apple.configuration.passcode.settings', 'configuration'),
    ('com.apple.configuration.safari.extensions.settings', 'configuration'),
    ('com.apple.configuration.screensharing.connection', 'configuration'),
    ('com.apple.configuration.screensharing.connection.group', 'configuration'),
    ('com.apple.configuration.screensharing.host.settings', 'configuration'),
    ('com.apple.configuration.security.certificate', 'configuration'),
    ('com.apple.configuration.security.identity', 'configuration'),
    ('com.apple.configuration.security.passkey.attestation', 'configuration'),
    ('com.apple.configuration.services.background-tasks', 'configuration'),
    ('com.apple.configuration.services.configuration-files', 'configuration'),
    ('com.apple.configuration.softwareupdate.enforcement.specific', 'configuration'),
    ('com.apple.configuration.softwareupdate.settings', 'configuration'),
    ('com.apple.configuration.watch.enrollment', 'configuration'),
    ('com.apple.management.organization-info', 'management'),
    ('com.apple.management.properties', 'management'),
    ('com.apple.management.server-capabilities', 'management');

CREATE TABLE mdm.ddm_known_status_item (item text PRIMARY KEY);
COMMENT ON TABLE mdm.ddm_known_status_item IS
    'The status items of Apple''s schemas (declarative/status/*.yaml): a status report''s '
    'StatusItems tree is cut into items at these names (an unknown item at its leaves).';
INSERT INTO mdm.ddm_known_status_item (item) VALUES
    ('account.list.caldav'),
    ('account.list.carddav'),
    ('account.list.exchange'),
    ('account.list.google'),
    ('account.list.ldap'),
    ('account.list.mail.incoming'),
    ('account.list.mail.outgoing'),
    ('account.list.subscribed-calendar'),
    ('app.managed.list'),
    ('device.identifier.serial-number'),
    ('device.identifier.udid'),
    ('device.model.family'),
    ('device.model.identifier'),
    ('device.model.marketing-name'),
    ('device.model.number'),
    ('device.operating-system.build-version'),
    ('device.operating-system.family'),
    ('device.operating-system.marketing-name'),
    ('device.operating-system.supplemental.build-version'),
    ('device.operating-system.supplemental.extra-version'),
    ('device.operating-system.version'),
    ('device.power.battery-health'),
    ('diskmanagement.filevault.enabled'),
    ('management.client-capabilities'),
    ('management.declarations'),
    ('mdm.app'),
    ('passcode.is-compliant'),
    ('passcode.is-present'),
    ('screensharing.connection.group.unresolved-connection'),
    ('security.certificate.list'),
    ('services.background-task'),
    ('softwareupdate.beta-enrollment'),
    ('softwareupdate.device-id'),
    ('softwareupdate.failure-reason'),
    ('softwareupdate.install-reason'),
    ('softwareupdate.install-state'),
    ('softwareupdate.pending-version'),
    ('test.array-value'),
    ('test.boolean-value'),
    ('test.dictionary-value'),
    ('test.error-value'),
    ('test.integer-value'),
    ('test.real-value'),
    ('test.string-value');

-- ------------------------------------------------------------------------
-- Declarations, sets, assignment.

CREATE TABLE mdm.declaration (
    identifier   text PRIMARY KEY
                     CHECK (identifier ~ '^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,255}$'),
    type         text NOT NULL CHECK (type ~
                     '^com\.apple\.(activation|asset|configuration|management)\.[a-z0-9][A-Za-z0-9.-]{0,200}$'),
    kind         text NOT NULL CHECK (kind IN ('activation', 'asset', 'configuration',
                     'management')),
    payload      jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'
                     AND octet_length(payload::text) <= 1048576),
    server_token text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE mdm.declaration IS
    'One row per declaration: Identifier, Type (its kind is the word after com.apple.), '
    'Payload, and the ServerToken (SHA-256 of the canonical jsonb of Type, Identifier and '
    'Payload). Written by mdm.declaration_put.';

CREATE TABLE mdm.declaration_set (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._:@+ -]{0,127}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mdm.declaration_set IS 'Named sets of declarations (mdm.declaration_set_add).';

CREATE TABLE mdm.declaration_set_member (
    set_name   text NOT NULL REFERENCES mdm.declaration_set (name) ON DELETE CASCADE,
    identifier text NOT NULL REFERENCES mdm.declaration (identifier) ON DELETE CASCADE,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (set_name, identifier)
);
CREATE INDEX declaration_set_member_identifier_idx ON mdm.declaration_set_member (identifier);
COMMENT ON TABLE mdm.declaration_set_member IS 'Which declarations each set holds.';

CREATE TABLE mdm.enrollment_declaration_set (
    enrollment_id bigint NOT NULL REFERENCES mdm.enrollment (id),
    set_name      text NOT NULL REFERENCES mdm.declaration_set (name) ON DELETE CASCADE,
    added_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enrollment_id, set_name)
);
CREATE INDEX enrollment_declaration_set_set_idx ON mdm.enrollment_declaration_set (set_name);
COMMENT ON TABLE mdm.enrollment_declaration_set IS
    'Which sets each enrollment (channel) gets (mdm.enrollment_set_add).';

CREATE TABLE mdm.ddm_enrollment (
    enrollment_id      bigint PRIMARY KEY REFERENCES mdm.enrollment (id),
    declarations_token text NOT NULL CHECK (octet_length(declarations_token) <= 256),
    token_changed_at   timestamptz NOT NULL
);
COMMENT ON TABLE mdm.ddm_enrollment IS
    'The DeclarationsToken of each enrollment that ever had declarations assigned, and when '
    'it last changed (the Timestamp of SyncTokens).';

-- What each enrollment gets: the union of its sets.
CREATE VIEW mdm.enrollment_declaration AS
SELECT DISTINCT es.enrollment_id, d.identifier, d.type, d.kind, d.server_token
  FROM mdm.enrollment_declaration_set es
  JOIN mdm.declaration_set_member m ON m.set_name = es.set_name
  JOIN mdm.declaration d ON d.identifier = m.identifier;
COMMENT ON VIEW mdm.enrollment_declaration IS
    'Internal: one row per declaration an enrollment gets (through any of its sets).';

CREATE FUNCTION mdm.ddm_token_compute(eid bigint) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT encode(sha256(convert_to(coalesce(string_agg(
               x.kind || '/' || x.identifier || '=' || x.server_token, E'\n'
               ORDER BY x.kind, x.identifier), ''), 'UTF8')), 'hex')
      FROM mdm.enrollment_declaration x WHERE x.enrollment_id = eid
$$;
COMMENT ON FUNCTION mdm.ddm_token_compute(bigint) IS
    'Internal: the DeclarationsToken of an enrollment from what it gets now.';

-- RFC 3339 UTC, as Apple's SyncTokens Timestamp.
CREATE FUNCTION mdm.ddm_time(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- The TokensResponse (declarative/protocol/tokensresponse.yaml).
CREATE FUNCTION mdm.ddm_tokens_json(eid bigint) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('SyncTokens', jsonb_build_object(
               'DeclarationsToken', t.tok,
               'Timestamp', mdm.ddm_time(CASE WHEN s.declarations_token = t.tok
                                              THEN s.token_changed_at
                                              ELSE coalesce(s.token_changed_at, now()) END)))
      FROM (SELECT mdm.ddm_token_compute(eid) AS tok) t
      LEFT JOIN mdm.ddm_enrollment s ON s.enrollment_id = eid
$$;

-- One DeclarativeManagement command (mdm/commands/declarativemanagement.yaml:
-- Data is the TokensResponse) queued for the enrollment; a previous one not
-- yet delivered is canceled, so one waits at a time and it carries the
-- tokens of now.  The queue row marks the push (006's trigger).
CREATE FUNCTION mdm.ddm_sync_enqueue(eid bigint) RETURNS uuid
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cuuid text := upper(gen_random_uuid()::text);
    doc   text;
    u     text;
BEGIN
    SELECT e.udid INTO u FROM mdm.enrollment e WHERE e.id = eid;
    IF u IS NULL THEN
        RAISE EXCEPTION 'mdm.ddm_sync_enqueue: no enrollment %', eid USING ERRCODE = 'P0002';
    END IF;
    UPDATE mdm.command_queue q SET status = 'canceled', finished_at = now()
      FROM mdm.command c
     WHERE q.enrollment_id = eid AND q.status = 'queued' AND q.delivered_at IS NULL
       AND c.command_uuid = q.command_uuid AND c.request_type = 'DeclarativeManagement';
    doc := regexp_replace(mdm.command_plist('DeclarativeManagement',
               E'\t\t<key>Data</key>\n\t\t<data>'
               || translate(encode(convert_to(mdm.ddm_tokens_json(eid)::text, 'UTF8'),
                                   'base64'), E'\n', '')
               || E'</data>\n'),
               '(<plist(\s[^>]*)?>\s*<dict>)',
               E'\\1\n\t<key>CommandUUID</key>\n\t<string>' || cuuid || '</string>');
    PERFORM mdm.command_check(doc);
    INSERT INTO mdm.command (command_uuid, request_type, plist)
    VALUES (cuuid, 'DeclarativeManagement', doc);
    INSERT INTO mdm.command_queue (enrollment_id, command_uuid) VALUES (eid, cuuid);
    PERFORM pg_notify('mdm_command', u);
    RETURN cuuid::uuid;
END $$;
COMMENT ON FUNCTION mdm.ddm_sync_enqueue(bigint) IS
    'Internal: queues DeclarativeManagement (Data: the enrollment''s TokensResponse), '
    'canceling one not yet delivered; wakes the device.';

-- Recomputes the DeclarationsToken of these enrollments; each whose token
-- changed gets one DeclarativeManagement command.  Returns how many changed.
CREATE FUNCTION mdm.ddm_refresh(eids bigint[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eid bigint;
    tok text;
    n   integer := 0;
BEGIN
    FOR eid IN SELECT DISTINCT x FROM unnest(eids) AS t(x) WHERE x IS NOT NULL ORDER BY 1 LOOP
        -- Two changes to one enrollment take turns (in id order, so no
        -- deadlock between two refreshes): the token is computed by the next
        -- statement, whose snapshot holds the other's committed change.
        PERFORM pg_advisory_xact_lock(25, (eid % 2147483647)::integer);
        tok := mdm.ddm_token_compute(eid);
        INSERT INTO mdm.ddm_enrollment AS s (enrollment_id, declarations_token, token_changed_at)
        VALUES (eid, tok, now())
        ON CONFLICT (enrollment_id) DO UPDATE
           SET declarations_token = EXCLUDED.declarations_token, token_changed_at = now()
         WHERE s.declarations_token IS DISTINCT FROM EXCLUDED.declarations_token;
        IF FOUND THEN
            n := n + 1;
            PERFORM mdm.ddm_sync_enqueue(eid);
        END IF;
    END LOOP;
    RETURN n;
END $$;
COMMENT ON FUNCTION mdm.ddm_refresh(bigint[]) IS
    'Internal: recomputes the DeclarationsToken of these enrollments and queues one '
    'DeclarativeManagement for each whose token changed; returns how many.';

-- The enrollments that get a declaration, or a set.
CREATE FUNCTION mdm.ddm_enrollments_of(ident text) RETURNS bigint[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(DISTINCT es.enrollment_id), '{}')
      FROM mdm.declaration_set_member m
      JOIN mdm.enrollment_declaration_set es ON es.set_name = m.set_name
     WHERE m.identifier = ident
$$;
CREATE FUNCTION mdm.ddm_enrollments_of_set(set_name text) RETURNS bigint[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(es.enrollment_id), '{}')
      FROM mdm.enrollment_declaration_set es WHERE es.set_name = ddm_enrollments_of_set.set_name
$$;

-- ------------------------------------------------------------------------
-- JSON from outside (an operator's text, a device's status report): parsed
-- by PostgreSQL, then held to RFC 8259 section 4's "names SHOULD be unique"
-- as MUST (jsonb would keep the last silently), at most 32 levels, and a
-- size.  Returns the document, or NULL with refusal set to the rule.
CREATE FUNCTION mdm.ddm_json_check(doc text, max_octets integer, OUT j jsonb, OUT refusal text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
-- A recursive CTE's estimates are huge: JIT would spend 200 ms compiling it.
SET jit = off AS $$
DECLARE
    raw json;
BEGIN
    IF doc IS NULL THEN
        refusal := 'no JSON document';
        RETURN;
    END IF;
    IF octet_length(doc) > max_octets THEN
        refusal := format('the JSON document is over %s octets', max_octets);
        RETURN;
    END IF;
    BEGIN
        raw := doc::json;
        j := raw::jsonb;
    EXCEPTION
        WHEN program_limit_exceeded OR statement_too_complex THEN
            refusal := 'the JSON document is nested too deeply (at most 32 levels)';
            RETURN;
        WHEN invalid_text_representation OR invalid_parameter_value OR untranslatable_character
             OR character_not_in_repertoire THEN
            refusal := 'RFC 8259: not a JSON text (' || left(SQLERRM, 200) || ')';
            j := NULL;
            RETURN;
    END;
    IF jsonb_path_exists(j, 'strict $.**{32 to last}') THEN
        refusal := 'the JSON document is nested too deeply (at most 32 levels)';
        j := NULL;
        RETURN;
    END IF;
    IF EXISTS (
        WITH RECURSIVE t(v) AS (
            SELECT raw
            UNION ALL
            SELECT c.v FROM t, LATERAL (
                SELECT e.value FROM json_each(CASE WHEN json_typeof(t.v) = 'object'
                                                   THEN t.v END) e
                UNION ALL
                SELECT a.value FROM json_array_elements(CASE WHEN json_typeof(t.v) = 'array'
                                                             THEN t.v END) a) c(v)
             WHERE json_typeof(t.v) IN ('object', 'array'))
        SELECT 1 FROM t
         WHERE json_typeof(t.v) = 'object'
           AND (SELECT count(*) FROM json_object_keys(t.v))
               <> (SELECT count(DISTINCT k) FROM json_object_keys(t.v) k)) THEN
        refusal := 'RFC 8259 section 4: an object has a name twice (names must be unique)';
        j := NULL;
        RETURN;
    END IF;
END $$;
COMMENT ON FUNCTION mdm.ddm_json_check(text, integer) IS
    'Internal: parses JSON text (PostgreSQL''s parser) and refuses duplicate names, more than '
    '32 levels, and more than max_octets; refusal names the rule.';

-- ------------------------------------------------------------------------
-- The admin API: declarations.

CREATE FUNCTION mdm.declaration_put(identifier text, type text, payload jsonb) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k     text;
    tok   text;
    old   text;
BEGIN
    IF identifier IS NULL OR type IS NULL OR payload IS NULL THEN
        RAISE EXCEPTION 'mdm.declaration_put: identifier, type and payload are required '
            '(declarative/declarations/declarationbase.yaml: Type, Identifier, Payload)'
            USING ERRCODE = '22004';
    END IF;
    IF identifier !~ '^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,255}$' THEN
        RAISE EXCEPTION 'mdm.declaration_put: Identifier must be 1 to 256 of A-Z a-z 0-9 . _ : '
            '@ + - (starting with a letter or digit): it is a path segment of the '
            'declaration/<kind>/<identifier> endpoint' USING ERRCODE = '22023';
    END IF;
    k := (regexp_match(type,
          '^com\.apple\.(activation|asset|configuration|management)\.[a-z0-9][A-Za-z0-9.-]{0,200}$'))[1];
    IF k IS NULL THEN
        RAISE EXCEPTION 'mdm.declaration_put: Type % is not com.apple.<activation|asset|'
            'configuration|management>.<name> (declarative/declarations)', left(type, 100)
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mdm.ddm_known_type t WHERE t.type = declaration_put.type) THEN
        RAISE WARNING 'mdm.declaration_put: Type % is not in the schemas this server knows '
            '(declarative/declarations); accepted as a %', type, k;
    END IF;
    IF jsonb_typeof(payload) <> 'object' THEN
        RAISE EXCEPTION 'mdm.declaration_put: Payload must be a JSON object '
            '(declarative/declarations/declarationbase.yaml)' USING ERRCODE = '22023';
    END IF;
    IF octet_length(payload::text) > 1048576 THEN
        RAISE EXCEPTION 'mdm.declaration_put: Payload over 1 MiB' USING ERRCODE = '54000';
    END IF;
    IF jsonb_path_exists(payload, 'strict $.**{31 to last}') THEN
        RAISE EXCEPTION 'mdm.declaration_put: Payload nested too deeply (at most 32 levels)'
            USING ERRCODE = '22023';
    END IF;
    tok := encode(sha256(convert_to(jsonb_build_object('Type', type, 'Identifier', identifier,
               'Payload', payload)::text, 'UTF8')), 'hex');
    SELECT d.server_token INTO old FROM mdm.declaration d
     WHERE d.identifier = declaration_put.identifier FOR UPDATE;
    IF old IS NOT DISTINCT FROM tok THEN
        RETURN tok;
    END IF;
    INSERT INTO mdm.declaration AS d (identifier, type, kind, payload, server_token)
    VALUES (identifier, type, k, payload, tok)
    ON CONFLICT ON CONSTRAINT declaration_pkey DO UPDATE
       SET type = EXCLUDED.type, kind = EXCLUDED.kind, payload = EXCLUDED.payload,
           server_token = EXCLUDED.server_token, updated_at = now(),
           updated_by = session_user;
    PERFORM mdm.ddm_refresh(mdm.ddm_enrollments_of(identifier));
    RETURN tok;
END $$;
COMMENT ON FUNCTION mdm.declaration_put(text, text, jsonb) IS
    'Inserts or replaces a declaration (Payload a JSON object) and returns its ServerToken '
    '(unchanged when the content is). Type com.apple.<kind>.<name>: one the schemas do not '
    'name is accepted with a WARNING. Enrollments that get it are synced.';

-- The whole declaration as JSON text: {"Type", "Identifier", "Payload"}
-- (a ServerToken in it is ignored: the server computes its own).
CREATE FUNCTION mdm.declaration_put(declaration text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c   record;
    bad text;
BEGIN
    c := mdm.ddm_json_check(declaration, 1048576);
    IF c.refusal IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.declaration_put: %', c.refusal USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(c.j) <> 'object' THEN
        RAISE EXCEPTION 'mdm.declaration_put: a declaration is a JSON object '
            '(declarative/declarations/declarationbase.yaml)' USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(c.j -> 'Identifier') IS DISTINCT FROM 'string'
       OR jsonb_typeof(c.j -> 'Type') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'mdm.declaration_put: Identifier and Type are required strings '
            '(declarative/declarations/declarationbase.yaml)' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(c.j) k
     WHERE k NOT IN ('Type', 'Identifier', 'ServerToken', 'Payload');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.declaration_put: unknown key(s) % (declarationbase.yaml has Type, '
            'Identifier, ServerToken, Payload)', left(bad, 200) USING ERRCODE = '22023';
    END IF;
    RETURN mdm.declaration_put(c.j ->> 'Identifier', c.j ->> 'Type',
                               coalesce(c.j -> 'Payload', '{}'::jsonb));
END $$;
COMMENT ON FUNCTION mdm.declaration_put(text) IS
    'mdm.declaration_put(identifier, type, payload) from a whole declaration as JSON text; '
    'malformed JSON, duplicate names, a missing Identifier or Type are refused (22023).';

CREATE FUNCTION mdm.declaration_delete(identifier text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eids bigint[] := mdm.ddm_enrollments_of(identifier);
BEGIN
    DELETE FROM mdm.declaration d WHERE d.identifier = declaration_delete.identifier;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM mdm.ddm_refresh(eids);
    RETURN true;
END $$;
COMMENT ON FUNCTION mdm.declaration_delete(text) IS
    'Deletes a declaration (and its set memberships); the enrollments that got it are synced '
    'and get 404 for it from then on. false when there was none.';

CREATE FUNCTION mdm.declaration_set_add(set_name text, identifier text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF set_name IS NULL OR set_name !~ '^[A-Za-z0-9][A-Za-z0-9._:@+ -]{0,127}$' THEN
        RAISE EXCEPTION 'mdm.declaration_set_add: a set name is 1 to 128 of A-Z a-z 0-9 . _ : @ '
            '+ - and space' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mdm.declaration d
                    WHERE d.identifier = declaration_set_add.identifier) THEN
        RAISE EXCEPTION 'mdm.declaration_set_add: no declaration %', left(identifier, 256)
            USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO mdm.declaration_set (name) VALUES (set_name) ON CONFLICT DO NOTHING;
    INSERT INTO mdm.declaration_set_member (set_name, identifier)
    VALUES (set_name, identifier) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM mdm.ddm_refresh(mdm.ddm_enrollments_of_set(set_name));
    RETURN true;
END $$;
COMMENT ON FUNCTION mdm.declaration_set_add(text, text) IS
    'Adds a declaration to a set (made when new); the enrollments that get the set are '
    'synced. false when it was in it already.';

CREATE FUNCTION mdm.declaration_set_remove(set_name text, identifier text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM mdm.declaration_set_member m
     WHERE m.set_name = declaration_set_remove.set_name
       AND m.identifier = declaration_set_remove.identifier;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM mdm.ddm_refresh(mdm.ddm_enrollments_of_set(set_name));
    RETURN true;
END $$;
COMMENT ON FUNCTION mdm.declaration_set_remove(text, text) IS
    'Removes a declaration from a set; the enrollments that get the set are synced. false '
    'when it was not in it.';

-- The enrollment of a UDID's channel: the device channel, or user_id's.
CREATE FUNCTION mdm.ddm_enrollment_id(udid text, user_id text, caller text) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eid bigint;
BEGIN
    SELECT e.id INTO eid FROM mdm.enrollment e
     WHERE e.udid = ddm_enrollment_id.udid
       AND e.user_id IS NOT DISTINCT FROM ddm_enrollment_id.user_id;
    IF eid IS NULL THEN
        RAISE EXCEPTION '%: no enrollment for UDID % %', caller, left(udid, 128),
            coalesce('user ' || left(user_id, 128), 'device channel') USING ERRCODE = 'P0002';
    END IF;
    RETURN eid;
END $$;

CREATE FUNCTION mdm.enrollment_set_add(udid text, set_name text, user_id text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eid bigint := mdm.ddm_enrollment_id(udid, user_id, 'mdm.enrollment_set_add');
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mdm.declaration_set s WHERE s.name = set_name) THEN
        RAISE EXCEPTION 'mdm.enrollment_set_add: no declaration set %', left(set_name, 128)
            USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO mdm.enrollment_declaration_set (enrollment_id, set_name)
    VALUES (eid, set_name) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM mdm.ddm_refresh(ARRAY[eid]);
    RETURN true;
END $$;
COMMENT ON FUNCTION mdm.enrollment_set_add(text, text, text) IS
    'Gives the declaration set to the device channel of udid (or the user channel user_id) '
    'and syncs it. false when it had it already.';

CREATE FUNCTION mdm.enrollment_set_remove(udid text, set_name text, user_id text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eid bigint := mdm.ddm_enrollment_id(udid, user_id, 'mdm.enrollment_set_remove');
BEGIN
    DELETE FROM mdm.enrollment_declaration_set es
     WHERE es.enrollment_id = eid AND es.set_name = enrollment_set_remove.set_name;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM mdm.ddm_refresh(ARRAY[eid]);
    RETURN true;
END $$;
COMMENT ON FUNCTION mdm.enrollment_set_remove(text, text, text) IS
    'Takes the declaration set away from the channel and syncs it. false when it had not it.';

CREATE FUNCTION mdm.cmd_declarative_management(udid text, user_id text DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eid bigint := mdm.ddm_enrollment_id(udid, user_id, 'mdm.cmd_declarative_management');
BEGIN
    INSERT INTO mdm.ddm_enrollment (enrollment_id, declarations_token, token_changed_at)
    VALUES (eid, mdm.ddm_token_compute(eid), now()) ON CONFLICT DO NOTHING;
    RETURN mdm.ddm_sync_enqueue(eid);
END $$;
COMMENT ON FUNCTION mdm.cmd_declarative_management(text, text) IS
    'Queues DeclarativeManagement with the channel''s SyncTokens (turns DDM on in the device; '
    'one not yet delivered is replaced) and wakes it. Returns the CommandUUID.';

-- ------------------------------------------------------------------------
-- Builders: ordinary declarations from the few values an operator has.

CREATE FUNCTION mdm.ddm_software_update(identifier text, target_os_version text,
        target_local_date_time timestamp, target_build_version text DEFAULT NULL,
        details_url text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- declarative/declarations/configurations/softwareupdate.enforcement.specific.yaml
    IF target_os_version IS NULL OR target_os_version !~ '^[0-9]{1,4}(\.[0-9]{1,4}){0,3}$' THEN
        RAISE EXCEPTION 'mdm.ddm_software_update: TargetOSVersion (required) is a version such '
            'as 26.1 (softwareupdate.enforcement.specific.yaml)' USING ERRCODE = '22023';
    END IF;
    IF target_local_date_time IS NULL OR NOT isfinite(target_local_date_time) THEN
        RAISE EXCEPTION 'mdm.ddm_software_update: TargetLocalDateTime (required) is a local '
            'date and time (softwareupdate.enforcement.specific.yaml)' USING ERRCODE = '22023';
    END IF;
    IF target_build_version IS NOT NULL AND target_build_version !~ '^[0-9A-Za-z]{1,32}$' THEN
        RAISE EXCEPTION 'mdm.ddm_software_update: TargetBuildVersion is a build such as 23B74'
            USING ERRCODE = '22023';
    END IF;
    IF details_url IS NOT NULL AND (details_url !~ '^https?://[^[:space:][:cntrl:]]+$'
                                    OR length(details_url) > 2048) THEN
        RAISE EXCEPTION 'mdm.ddm_software_update: DetailsURL is an http or https URL'
            USING ERRCODE = '22023';
    END IF;
    RETURN mdm.declaration_put(identifier,
        'com.apple.configuration.softwareupdate.enforcement.specific',
        jsonb_strip_nulls(jsonb_build_object(
            'TargetOSVersion', target_os_version,
            'TargetBuildVersion', target_build_version,
            'TargetLocalDateTime', to_char(target_local_date_time, 'YYYY-MM-DD"T"HH24:MI:SS'),
            'DetailsURL', details_url)));
END $$;
COMMENT ON FUNCTION mdm.ddm_software_update(text, text, timestamp, text, text) IS
    'Puts a softwareupdate.enforcement.specific configuration: install TargetOSVersion '
    '(or that build) by TargetLocalDateTime (the device''s local time), DetailsURL shown to '
    'the user. Returns its ServerToken. Activate it (mdm.ddm_activation) to apply it.';

CREATE FUNCTION mdm.ddm_status_subscriptions(identifier text, items text[]) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- declarative/declarations/configurations/management.status-subscriptions.yaml
    IF items IS NULL OR cardinality(items) = 0 OR array_position(items, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(items) i WHERE i !~ '^[a-z0-9][a-z0-9.-]{0,127}$') THEN
        RAISE EXCEPTION 'mdm.ddm_status_subscriptions: StatusItems (required) is a list of '
            'status item names such as softwareupdate.install-state' USING ERRCODE = '22023';
    END IF;
    RETURN mdm.declaration_put(identifier,
        'com.apple.configuration.management.status-subscriptions',
        jsonb_build_object('StatusItems', (SELECT jsonb_agg(jsonb_build_object('Name', i)
                                                             ORDER BY i)
                                             FROM (SELECT DISTINCT i FROM unnest(items) i) x)));
END $$;
COMMENT ON FUNCTION mdm.ddm_status_subscriptions(text, text[]) IS
    'Puts a management.status-subscriptions configuration for these status items. Returns its '
    'ServerToken. Activate it to apply it.';

CREATE FUNCTION mdm.ddm_activation(identifier text, configurations text[],
        predicate text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    missing text;
BEGIN
    -- declarative/declarations/activations/simple.yaml
    IF configurations IS NULL OR cardinality(configurations) = 0
       OR array_position(configurations, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.ddm_activation: StandardConfigurations (required) lists '
            'configuration identifiers' USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(c, ', ') INTO missing FROM unnest(configurations) c
     WHERE NOT EXISTS (SELECT 1 FROM mdm.declaration d
                        WHERE d.identifier = c AND d.kind = 'configuration');
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.ddm_activation: no configuration declaration %', left(missing, 300)
            USING ERRCODE = 'P0002';
    END IF;
    RETURN mdm.declaration_put(identifier, 'com.apple.activation.simple',
        jsonb_strip_nulls(jsonb_build_object(
            'StandardConfigurations', (SELECT jsonb_agg(DISTINCT c) FROM unnest(configurations) c),
            'Predicate', predicate)));
END $$;
COMMENT ON FUNCTION mdm.ddm_activation(text, text[], text) IS
    'Puts an activation.simple of these configurations (and a Predicate when given). '
    'Returns its ServerToken. Put it in the same set as the configurations.';

-- A configuration.legacy whose profile this server hosts: enroll.fcgi
-- serves it at <base_url>/enroll/ddm/<identifier> to the devices that get
-- the declaration, under their identity certificate.  The URL carries the
-- profile's hash, so a new profile is a new ServerToken.
CREATE TABLE mdm.ddm_profile (
    identifier text PRIMARY KEY REFERENCES mdm.declaration (identifier) ON DELETE CASCADE,
    profile    bytea NOT NULL CHECK (octet_length(profile) BETWEEN 1 AND 1048576)
);
COMMENT ON TABLE mdm.ddm_profile IS
    'The profiles of the configuration.legacy declarations this server hosts '
    '(mdm.ddm_legacy_profile), served by enroll.fcgi at /enroll/ddm/<identifier>.';

CREATE FUNCTION mdm.ddm_legacy_profile(identifier text, profile bytea, base_url text)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tok text;
BEGIN
    -- declarative/declarations/configurations/legacy.yaml: ProfileURL, https, hosted by
    -- the MDM server.
    IF base_url IS NULL OR base_url !~ '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$' THEN
        RAISE EXCEPTION 'mdm.ddm_legacy_profile: base_url is this server''s https://host[:port] '
            '(legacy.yaml: ProfileURL starts with https:// and is hosted by the MDM server)'
            USING ERRCODE = '22023';
    END IF;
    IF profile IS NULL OR octet_length(profile) = 0 OR octet_length(profile) > 1048576 THEN
        RAISE EXCEPTION 'mdm.ddm_legacy_profile: a profile of 1 byte to 1 MiB'
            USING ERRCODE = '22023';
    END IF;
    tok := mdm.declaration_put(identifier, 'com.apple.configuration.legacy',
        jsonb_build_object('ProfileURL', base_url || '/enroll/ddm/' || identifier || '?sha256='
                                         || encode(sha256(profile), 'hex')));
    INSERT INTO mdm.ddm_profile AS p (identifier, profile)
    VALUES (ddm_legacy_profile.identifier, ddm_legacy_profile.profile)
    ON CONFLICT ON CONSTRAINT ddm_profile_pkey DO UPDATE SET profile = EXCLUDED.profile;
    RETURN tok;
END $$;
COMMENT ON FUNCTION mdm.ddm_legacy_profile(text, bytea, text) IS
    'Puts a configuration.legacy whose ProfileURL is this server''s (base_url, e.g. '
    'https://mdm.example.com): enroll.fcgi serves the profile (as given: sign it first if it '
    'should be signed) to the devices that get the declaration. Returns its ServerToken.';

-- enroll.fcgi: the profile for the device whose bound identity is cert_id,
-- when one of its channels gets that legacy declaration; else NULL.
CREATE FUNCTION mdm.ddm_profile_get(cert_id bigint, ident text) RETURNS bytea
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT p.profile
      FROM mdm.device dv
      JOIN mdm.enrollment e ON e.udid = dv.udid
      JOIN mdm.enrollment_declaration ed ON ed.enrollment_id = e.id
      JOIN mdm.ddm_profile p ON p.identifier = ed.identifier
     WHERE dv.identity_certificate_id = cert_id AND ed.identifier = ident
       AND ed.type = 'com.apple.configuration.legacy'
     LIMIT 1
$$;
COMMENT ON FUNCTION mdm.ddm_profile_get(bigint, text) IS
    'enroll.fcgi: the hosted profile of legacy declaration ident for the device whose bound '
    'identity certificate is cert_id, when one of its channels gets it; else NULL.';

-- ------------------------------------------------------------------------
-- Status (declarative/protocol/statusreport.yaml).

CREATE TABLE mdm.ddm_status_report (
    id            bigserial PRIMARY KEY,
    enrollment_id bigint NOT NULL REFERENCES mdm.enrollment (id),
    full_report   boolean NOT NULL DEFAULT false,
    report        text NOT NULL CHECK (octet_length(report) <= 196608),
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ddm_status_report_enrollment_idx ON mdm.ddm_status_report (enrollment_id, id);
COMMENT ON TABLE mdm.ddm_status_report IS
    'Every status report a channel sent (the Data of its status check-in, as sent, at most '
    '192 KiB).';

CREATE TABLE mdm.ddm_status_item (
    enrollment_id bigint NOT NULL REFERENCES mdm.enrollment (id),
    item          text NOT NULL CHECK (length(item) <= 512),
    value         jsonb,
    reported_at   timestamptz,
    report_id     bigint REFERENCES mdm.ddm_status_report (id),
    error         jsonb,
    error_at      timestamptz,
    PRIMARY KEY (enrollment_id, item)
);
COMMENT ON TABLE mdm.ddm_status_item IS
    'The latest value of each status item per channel, and the latest error the device sent '
    'for it (Errors: its Reasons).';

CREATE TABLE mdm.ddm_declaration_state (
    enrollment_id bigint NOT NULL REFERENCES mdm.enrollment (id),
    kind          text NOT NULL,
    identifier    text NOT NULL CHECK (length(identifier) <= 1024),
    active        boolean NOT NULL,
    valid         text NOT NULL CHECK (length(valid) <= 64),
    server_token  text NOT NULL CHECK (length(server_token) <= 1024),
    reasons       jsonb,
    reported_at   timestamptz NOT NULL,
    PRIMARY KEY (enrollment_id, kind, identifier)
);
COMMENT ON TABLE mdm.ddm_declaration_state IS
    'Per channel and declaration, the latest state its device reported '
    '(management.declarations status item).';

-- The status item names of a StatusItems tree: cut at the names Apple's
-- schemas define, else at the leaves.
CREATE FUNCTION mdm.ddm_status_flatten(tree jsonb) RETURNS TABLE (item text, value jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
-- A recursive CTE's estimates are huge: JIT would spend 200 ms compiling it.
SET jit = off AS $$
    WITH RECURSIVE t(path, val, leaf) AS (
        SELECT e.key, e.value,
               jsonb_typeof(e.value) <> 'object' OR e.value = '{}'::jsonb
               OR EXISTS (SELECT 1 FROM mdm.ddm_known_status_item k WHERE k.item = e.key)
          FROM jsonb_each(tree) e
        UNION ALL
        SELECT t.path || '.' || e.key, e.value,
               jsonb_typeof(e.value) <> 'object' OR e.value = '{}'::jsonb
               OR EXISTS (SELECT 1 FROM mdm.ddm_known_status_item k
                           WHERE k.item = t.path || '.' || e.key)
          FROM t, jsonb_each(CASE WHEN t.leaf THEN '{}'::jsonb ELSE t.val END) e)
    SELECT t.path, t.val FROM t WHERE t.leaf
$$;

-- Stores one status report for an enrollment; NULL, or the rule it breaks.
CREATE FUNCTION mdm.ddm_status_store(eid bigint, data bytea) RETURNS text
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
-- A recursive CTE's estimates are huge: JIT would spend 200 ms compiling it.
SET jit = off AS $$
DECLARE
    doc   text;
    c     record;
    r     jsonb;
    decl  jsonb;
    rid   bigint;
    k     text;
    full_ boolean;
    rule  constant text := 'declarative/protocol/statusreport.yaml: ';
BEGIN
    IF data IS NULL THEN
        RETURN 'mdm/checkin/declarativemanagement.yaml: the status endpoint carries a '
            'StatusReport in Data';
    END IF;
    IF octet_length(data) > 196608 THEN
        RETURN 'the status report is over 192 KiB';
    END IF;
    BEGIN
        doc := convert_from(data, 'UTF8');
    EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
        RETURN 'RFC 8259 section 8.1: JSON text is UTF-8';
    END;
    c := mdm.ddm_json_check(doc, 196608);
    IF c.refusal IS NOT NULL THEN
        RETURN c.refusal;
    END IF;
    r := c.j;
    IF jsonb_typeof(r) <> 'object' OR jsonb_typeof(r -> 'StatusItems') IS DISTINCT FROM 'object'
       OR jsonb_typeof(r -> 'Errors') IS DISTINCT FROM 'array' THEN
        RETURN rule || 'a StatusReport is an object with StatusItems (an object) and Errors '
            '(an array)';
    END IF;
    IF r ? 'FullReport' AND jsonb_typeof(r -> 'FullReport') <> 'boolean' THEN
        RETURN rule || 'FullReport is a boolean';
    END IF;
    full_ := coalesce((r ->> 'FullReport')::boolean, false);
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(r -> 'Errors') e(v)
                WHERE jsonb_typeof(e.v) <> 'object'
                   OR jsonb_typeof(e.v -> 'StatusItem') IS DISTINCT FROM 'string'
                   OR length(e.v ->> 'StatusItem') > 512
                   OR (e.v ? 'Reasons' AND jsonb_typeof(e.v -> 'Reasons') <> 'array')) THEN
        RETURN rule || 'each of Errors is an object with StatusItem (a string) and Reasons '
            '(an array)';
    END IF;
    IF EXISTS (SELECT 1 FROM mdm.ddm_status_flatten(r -> 'StatusItems') f
                WHERE length(f.item) > 512) THEN
        RETURN 'a status item name is over 512 characters';
    END IF;
    decl := r #> '{StatusItems,management,declarations}';
    IF decl IS NOT NULL THEN
        IF jsonb_typeof(decl) <> 'object' THEN
            RETURN 'declarative/status/management.declarations.yaml: the value is an object';
        END IF;
        FOREACH k IN ARRAY ARRAY['activations', 'configurations', 'assets', 'management'] LOOP
            IF decl ? k AND (jsonb_typeof(decl -> k) <> 'array' OR EXISTS (
                   SELECT 1 FROM jsonb_array_elements(decl -> k) e(v)
                    WHERE jsonb_typeof(e.v) <> 'object'
                       OR jsonb_typeof(e.v -> 'identifier') IS DISTINCT FROM 'string'
                       OR jsonb_typeof(e.v -> 'active') IS DISTINCT FROM 'boolean'
                       OR jsonb_typeof(e.v -> 'valid') IS DISTINCT FROM 'string'
                       OR jsonb_typeof(e.v -> 'server-token') IS DISTINCT FROM 'string'
                       OR (e.v ? 'reasons' AND jsonb_typeof(e.v -> 'reasons') <> 'array')
                       OR length(e.v ->> 'identifier') > 1024
                       OR length(e.v ->> 'valid') > 64
                       OR length(e.v ->> 'server-token') > 1024)) THEN
                RETURN format('declarative/status/management.declarations.yaml: %s is an array '
                    'of objects with identifier, valid and server-token (strings), active (a '
                    'boolean) and reasons (an array)', k);
            END IF;
        END LOOP;
    END IF;

    INSERT INTO mdm.ddm_status_report (enrollment_id, full_report, report)
    VALUES (eid, full_, doc) RETURNING id INTO rid;
    INSERT INTO mdm.ddm_status_item AS s (enrollment_id, item, value, reported_at, report_id)
    SELECT DISTINCT ON (f.item) eid, f.item, f.value, now(), rid
      FROM mdm.ddm_status_flatten(r -> 'StatusItems') f
    ON CONFLICT (enrollment_id, item) DO UPDATE
       SET value = EXCLUDED.value, reported_at = EXCLUDED.reported_at,
           report_id = EXCLUDED.report_id;
    INSERT INTO mdm.ddm_status_item AS s (enrollment_id, item, error, error_at, report_id)
    SELECT DISTINCT ON (e.v ->> 'StatusItem') eid, e.v ->> 'StatusItem',
           coalesce(e.v -> 'Reasons', '[]'::jsonb), now(), rid
      FROM jsonb_array_elements(r -> 'Errors') e(v)
    ON CONFLICT (enrollment_id, item) DO UPDATE
       SET error = EXCLUDED.error, error_at = EXCLUDED.error_at;
    IF decl IS NOT NULL THEN
        IF full_ THEN
            DELETE FROM mdm.ddm_declaration_state s WHERE s.enrollment_id = eid;
        END IF;
        INSERT INTO mdm.ddm_declaration_state AS s (enrollment_id, kind, identifier, active,
               valid, server_token, reasons, reported_at)
        SELECT DISTINCT ON (x.kind, v ->> 'identifier') eid, x.kind, v ->> 'identifier',
               (v ->> 'active')::boolean, v ->> 'valid', v ->> 'server-token', v -> 'reasons',
               now()
          FROM (VALUES ('activation', 'activations'), ('configuration', 'configurations'),
                       ('asset', 'assets'), ('management', 'management')) x(kind, key),
               jsonb_array_elements(coalesce(decl -> x.key, '[]'::jsonb)) v
        ON CONFLICT (enrollment_id, kind, identifier) DO UPDATE
           SET active = EXCLUDED.active, valid = EXCLUDED.valid,
               server_token = EXCLUDED.server_token, reasons = EXCLUDED.reasons,
               reported_at = EXCLUDED.reported_at;
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION mdm.ddm_status_store(bigint, bytea) IS
    'checkin.fcgi: stores a StatusReport (raw, each item''s latest value, errors, declaration '
    'states); returns NULL, or the rule a refused report breaks (nothing is stored then).';

-- ------------------------------------------------------------------------
-- checkin.fcgi: one call answers one DeclarativeManagement check-in
-- (mdm/checkin/declarativemanagement.yaml), inside its transaction.
-- status 200 with body (JSON text, or NULL for none), 404 (body NULL), or
-- 400 with body the rule the request breaks.
CREATE FUNCTION mdm.ddm_checkin(for_udid text, for_user text, endpoint text, data bytea,
        OUT status integer, OUT body text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    eid bigint;
    m   text[];
    d   record;
BEGIN
    SELECT e.id INTO eid FROM mdm.enrollment e
     WHERE e.udid = for_udid AND e.user_id IS NOT DISTINCT FROM for_user;
    IF endpoint = 'tokens' THEN
        status := 200;
        body := mdm.ddm_tokens_json(eid)::text;
    ELSIF endpoint = 'declaration-items' THEN
        -- declarative/protocol/declarationitemsresponse.yaml: all four arrays required.
        status := 200;
        SELECT jsonb_build_object(
                   'Declarations', jsonb_build_object(
                       'Activations', coalesce(jsonb_agg(x.item ORDER BY x.identifier)
                                                   FILTER (WHERE x.kind = 'activation'), '[]'),
                       'Configurations', coalesce(jsonb_agg(x.item ORDER BY x.identifier)
                                           FILTER (WHERE x.kind = 'configuration'), '[]'),
                       'Assets', coalesce(jsonb_agg(x.item ORDER BY x.identifier)
                                              FILTER (WHERE x.kind = 'asset'), '[]'),
                       'Management', coalesce(jsonb_agg(x.item ORDER BY x.identifier)
                                                  FILTER (WHERE x.kind = 'management'), '[]')),
                   'DeclarationsToken', mdm.ddm_token_compute(eid))::text
          INTO body
          FROM (SELECT ed.kind, ed.identifier,
                       jsonb_build_object('Identifier', ed.identifier,
                                          'ServerToken', ed.server_token) AS item
                  FROM mdm.enrollment_declaration ed WHERE ed.enrollment_id = eid) x;
    ELSIF endpoint = 'status' THEN
        IF eid IS NULL THEN
            status := 400;
            body := 'a status report on a channel that is not enrolled (Authenticate and '
                'TokenUpdate come first)';
            RETURN;
        END IF;
        body := mdm.ddm_status_store(eid, data);
        status := CASE WHEN body IS NULL THEN 200 ELSE 400 END;
    ELSE
        m := regexp_match(endpoint,
                          '^declaration/(activation|asset|configuration|management)/([^/]+)$');
        IF m IS NULL THEN
            status := 400;
            body := 'mdm/checkin/declarativemanagement.yaml: Endpoint is tokens, '
                'declaration-items, status or declaration/<type>/<identifier>';
            RETURN;
        END IF;
        SELECT dd.type, dd.identifier, dd.server_token, dd.payload INTO d
          FROM mdm.enrollment_declaration ed
          JOIN mdm.declaration dd ON dd.identifier = ed.identifier
         WHERE ed.enrollment_id = eid AND ed.kind = m[1] AND ed.identifier = m[2];
        IF NOT FOUND THEN
            status := 404;
            body := NULL;
            RETURN;
        END IF;
        status := 200;
        body := jsonb_build_object('Type', d.type, 'Identifier', d.identifier,
                                   'ServerToken', d.server_token, 'Payload', d.payload)::text;
    END IF;
END $$;
COMMENT ON FUNCTION mdm.ddm_checkin(text, text, text, bytea) IS
    'checkin.fcgi: the answer to a DeclarativeManagement check-in of for_udid''s channel '
    '(for_user NULL: the device channel): status 200 and the JSON body (NULL: empty), 404, '
    'or 400 and the rule broken.';

-- ------------------------------------------------------------------------
-- Admin views.

CREATE VIEW mdm.declarations AS
SELECT d.identifier, d.type, d.kind, d.server_token, d.payload, d.created_at, d.updated_at,
       d.updated_by,
       (SELECT coalesce(array_agg(m.set_name ORDER BY m.set_name), '{}')
          FROM mdm.declaration_set_member m WHERE m.identifier = d.identifier) AS sets
  FROM mdm.declaration d;
COMMENT ON VIEW mdm.declarations IS
    'Every declaration: Identifier, Type, kind, ServerToken, Payload, the sets it is in.';

CREATE VIEW mdm.declaration_sets AS
SELECT s.name AS set_name, m.identifier, d.type, d.server_token, m.added_at
  FROM mdm.declaration_set s
  LEFT JOIN mdm.declaration_set_member m ON m.set_name = s.name
  LEFT JOIN mdm.declaration d ON d.identifier = m.identifier;
COMMENT ON VIEW mdm.declaration_sets IS
    'Each set and its declarations (one row with identifier NULL for an empty set).';

CREATE VIEW mdm.enrollment_sets AS
SELECT e.udid, e.user_id, e.channel, es.set_name, es.added_at
  FROM mdm.enrollment_declaration_set es JOIN mdm.enrollment e ON e.id = es.enrollment_id;
COMMENT ON VIEW mdm.enrollment_sets IS 'Which declaration sets each channel gets.';

CREATE VIEW mdm.enrollment_declarations AS
SELECT e.udid, e.user_id, e.channel, x.identifier, x.type, x.kind, x.server_token
  FROM mdm.enrollment_declaration x JOIN mdm.enrollment e ON e.id = x.enrollment_id;
COMMENT ON VIEW mdm.enrollment_declarations IS
    'What each channel gets: one row per declaration, through any of its sets.';

CREATE VIEW mdm.ddm_tokens AS
SELECT e.udid, e.user_id, e.channel, s.declarations_token, s.token_changed_at
  FROM mdm.ddm_enrollment s JOIN mdm.enrollment e ON e.id = s.enrollment_id;
COMMENT ON VIEW mdm.ddm_tokens IS
    'The DeclarationsToken of each channel and when it changed (the SyncTokens Timestamp).';

CREATE VIEW mdm.ddm_status AS
SELECT e.udid, e.user_id, e.channel, s.item, s.value, s.reported_at, s.error, s.error_at
  FROM mdm.ddm_status_item s JOIN mdm.enrollment e ON e.id = s.enrollment_id;
COMMENT ON VIEW mdm.ddm_status IS
    'The latest value of each status item per channel (value jsonb, reported_at), and the '
    'latest error for it (the Reasons of the report''s Errors).';

CREATE VIEW mdm.ddm_declaration_status AS
SELECT e.udid, e.user_id, e.channel, s.kind, s.identifier, s.active, s.valid, s.server_token,
       s.reasons, s.reported_at,
       (d.server_token IS NOT NULL AND d.server_token = s.server_token) AS current
  FROM mdm.ddm_declaration_state s
  JOIN mdm.enrollment e ON e.id = s.enrollment_id
  LEFT JOIN mdm.declaration d ON d.identifier = s.identifier;
COMMENT ON VIEW mdm.ddm_declaration_status IS
    'Per channel and declaration, what its device last reported: active, valid (valid, '
    'invalid, unknown), server_token, reasons; current: it is the ServerToken of now.';

CREATE VIEW mdm.ddm_status_reports AS
SELECT r.id, e.udid, e.user_id, e.channel, r.full_report, r.report, r.received_at
  FROM mdm.ddm_status_report r JOIN mdm.enrollment e ON e.id = r.enrollment_id;
COMMENT ON VIEW mdm.ddm_status_reports IS 'Every status report, as the device sent it.';

-- ------------------------------------------------------------------------
-- Privileges: the API functions for mdm_operator, the rest for nobody.

REVOKE EXECUTE ON FUNCTION
    mdm.ddm_token_compute(bigint), mdm.ddm_time(timestamptz), mdm.ddm_tokens_json(bigint),
    mdm.ddm_sync_enqueue(bigint), mdm.ddm_refresh(bigint[]), mdm.ddm_enrollments_of(text),
    mdm.ddm_enrollments_of_set(text), mdm.ddm_json_check(text, integer),
    mdm.ddm_enrollment_id(text, text, text), mdm.ddm_status_flatten(jsonb),
    mdm.ddm_status_store(bigint, bytea), mdm.ddm_checkin(text, text, text, bytea),
    mdm.declaration_put(text, text, jsonb), mdm.declaration_put(text),
    mdm.declaration_delete(text), mdm.declaration_set_add(text, text),
    mdm.declaration_set_remove(text, text), mdm.enrollment_set_add(text, text, text),
    mdm.enrollment_set_remove(text, text, text), mdm.cmd_declarative_management(text, text),
    mdm.ddm_software_update(text, text, timestamp, text, text),
    mdm.ddm_status_subscriptions(text, text[]), mdm.ddm_activation(text, text[], text),
    mdm.ddm_legacy_profile(text, bytea, text), mdm.ddm_profile_get(bigint, text)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    mdm.declaration_put(text, text, jsonb), mdm.declaration_put(text),
    mdm.declaration_delete(text), mdm.declaration_set_add(text, text),
    mdm.declaration_set_remove(text, text), mdm.enrollment_set_add(text, text, text),
    mdm.enrollment_set_remove(text, text, text), mdm.cmd_declarative_management(text, text),
    mdm.ddm_software_update(text, text, timestamp, text, text),
    mdm.ddm_status_subscriptions(text, text[]), mdm.ddm_activation(text, text[], text),
    mdm.ddm_legacy_profile(text, bytea, text)
TO mdm_operator;
GRANT SELECT ON mdm.declarations, mdm.declaration_sets, mdm.enrollment_sets,
    mdm.enrollment_declarations, mdm.ddm_tokens, mdm.ddm_status, mdm.ddm_declaration_status,
    mdm.ddm_status_reports
TO mdm_operator;

COMMENT ON FUNCTION mdm.ddm_time(timestamptz) IS
    'Internal: a time as RFC 3339 UTC (the SyncTokens Timestamp).';
COMMENT ON FUNCTION mdm.ddm_tokens_json(bigint) IS
    'Internal: the TokensResponse of an enrollment (SyncTokens: DeclarationsToken, Timestamp).';
COMMENT ON FUNCTION mdm.ddm_enrollments_of(text) IS
    'Internal: the enrollments that get this declaration.';
COMMENT ON FUNCTION mdm.ddm_enrollments_of_set(text) IS
    'Internal: the enrollments that get this set.';
COMMENT ON FUNCTION mdm.ddm_enrollment_id(text, text, text) IS
    'Internal: the enrollment of a UDID''s device channel (user_id NULL) or user channel; '
    'P0002 naming caller when there is none.';
COMMENT ON FUNCTION mdm.ddm_status_flatten(jsonb) IS
    'Internal: the (item, value) pairs of a StatusItems tree, cut at the status item names '
    'of Apple''s schemas, else at the leaves.';
