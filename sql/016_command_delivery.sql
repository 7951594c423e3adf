-- 016_command_delivery: a command that cannot be built at delivery never
-- wedges a device's command channel (issue 13, 4), and what the server
-- parses at delivery is refused at enqueue by the rules of that parser.
--
-- Before: an encrypted InstallProfile whose profile lib/plist refuses
-- (PostgreSQL's xmlparse accepts <integer>0x1</integer>) or that no profile
-- signer can sign aborted the whole request: the device's answer was rolled
-- back, the command before it was delivered again on every connection and
-- the ones after it never.

-- ------------------------------------------------------------------------
-- mdm.plist_check: lib/plist.c's rules, in SQL.  Whatever it accepts,
-- lib/plist accepts (tests/unit/test_commands_sql.c runs one corpus through
-- both); it may be stricter on spellings no plist writer produces (CDATA or
-- comments inside a number, a date or data).
CREATE FUNCTION mdm.plist_check(doc text, caller text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s       text := doc;
    e       integer;
    decl    text;
    a       text[];
    m       text;
    x       xml;
    v       text;
    n       numeric;
    ymd     integer[];
    doctype boolean := false;
    ws constant text := '[ \t\r\n]*';
BEGIN
    IF doc IS NULL THEN
        RAISE EXCEPTION '%: plist is NULL', caller USING ERRCODE = '22004';
    END IF;
    IF octet_length(doc) > 8388608 THEN
        RAISE EXCEPTION '%: plist is larger than 8 MiB (lib/mdm_limits.h PLIST_MAX_BYTES)',
            caller USING ERRCODE = '22023';
    END IF;
    -- The prolog, as lib/plist reads it before libxml2 does: an optional
    -- declaration (XML 1.0, UTF-8), comments, at most one DOCTYPE without an
    -- internal subset (where entities are declared), nothing else.
    IF left(s, 1) = chr(65279) THEN
        s := substr(s, 2);
    END IF;
    IF s ~ '^<\?xml[ \t\r\n]' THEN
        e := strpos(s, '?>');
        IF e = 0 THEN
            RAISE EXCEPTION '%: unterminated XML declaration', caller USING ERRCODE = '22023';
        END IF;
        decl := substr(s, 6, e - 6);
        IF decl !~ ('^(' || ws || '[a-z]+' || ws || '=' || ws || '("[^"]*"|''[^'']*''))*'
                    || ws || '$') THEN
            RAISE EXCEPTION '%: malformed XML declaration', caller USING ERRCODE = '22023';
        END IF;
        FOR a IN SELECT regexp_matches(decl,
                '([a-z]+)[ \t\r\n]*=[ \t\r\n]*(?:"([^"]*)"|''([^'']*)'')', 'g') LOOP
            v := coalesce(a[2], a[3]);
            IF a[1] = 'version' AND v <> '1.0' THEN
                RAISE EXCEPTION '%: XML version must be 1.0', caller USING ERRCODE = '22023';
            ELSIF a[1] = 'encoding' AND upper(v) <> 'UTF-8' THEN
                RAISE EXCEPTION '%: encoding must be UTF-8 (Apple writes nothing else)', caller
                    USING ERRCODE = '22023';
            ELSIF a[1] NOT IN ('version', 'encoding', 'standalone') THEN
                RAISE EXCEPTION '%: malformed XML declaration', caller USING ERRCODE = '22023';
            END IF;
        END LOOP;
        s := substr(s, e + 2);
    END IF;
    LOOP
        s := ltrim(s, E' \t\r\n');
        IF left(s, 4) = '<!--' THEN
            e := strpos(substr(s, 5), '-->');
            IF e = 0 THEN
                RAISE EXCEPTION '%: unterminated comment', caller USING ERRCODE = '22023';
            END IF;
            s := substr(s, 5 + e + 2);
        ELSIF left(s, 9) = '<!DOCTYPE' THEN
            IF doctype THEN
                RAISE EXCEPTION '%: more than one DOCTYPE', caller USING ERRCODE = '22023';
            END IF;
            doctype := true;
            m := substring(s FROM '^<!DOCTYPE(?:[^>"''\[]|"[^"]*"|''[^'']*'')*');
            IF substr(s, length(m) + 1, 1) = '[' THEN
                RAISE EXCEPTION '%: DTD internal subset not allowed (entity declarations are '
                    'refused)', caller USING ERRCODE = '22023';
            ELSIF substr(s, length(m) + 1, 1) <> '>' THEN
                RAISE EXCEPTION '%: unterminated DOCTYPE', caller USING ERRCODE = '22023';
            END IF;
            s := substr(s, length(m) + 2);
        ELSIF left(s, 2) = '<?' THEN
            RAISE EXCEPTION '%: processing instructions are not allowed', caller
                USING ERRCODE = '22023';
        ELSIF left(s, 2) = '<!' THEN
            RAISE EXCEPTION '%: markup declarations are not allowed', caller
                USING ERRCODE = '22023';
        ELSE
            EXIT;
        END IF;
    END LOOP;
    IF doc ~* '<!ENTITY' THEN
        RAISE EXCEPTION '%: DTD internal subset not allowed (entity declarations are refused)',
            caller USING ERRCODE = '22023';
    END IF;
    BEGIN
        x := xmlparse(DOCUMENT CASE WHEN left(doc, 1) = chr(65279) THEN substr(doc, 2) ELSE doc END);
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION '%: plist is not well-formed XML: %', caller, SQLERRM
            USING ERRCODE = '22023';
    END;
    -- The tree: <plist version="1.0"> around one value, plist elements only,
    -- no attribute but that version, dicts of key/value pairs without a
    -- repeated key, no text where none belongs, PLIST_MAX_DEPTH (64) levels.
    IF NOT xpath_exists('/plist[count(*) = 1]', x) THEN
        RAISE EXCEPTION '%: a plist is a <plist> holding exactly one value', caller
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('//@*[not(parent::plist and name() = "version" and . = "1.0")]', x)
       OR xpath_exists('//namespace::*[name() != "xml"]', x) THEN
        RAISE EXCEPTION '%: attribute not allowed (only <plist version="1.0">)', caller
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('//processing-instruction()', x) THEN
        RAISE EXCEPTION '%: processing instructions are not allowed', caller
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('//*[not(self::plist or self::dict or self::array or self::key or '
            'self::string or self::integer or self::real or self::true or self::false or '
            'self::date or self::data)]', x)
       OR xpath_exists('/plist/*[self::key or self::plist]', x)
       OR xpath_exists('//*[not(self::plist)]//plist', x) THEN
        RAISE EXCEPTION '%: element that is not a plist type', caller USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('//dict/*[position() mod 2 = 1][not(self::key)]', x)
       OR xpath_exists('//dict/*[position() mod 2 = 0][self::key]', x)
       OR xpath_exists('//dict[count(*) mod 2 = 1]', x)
       OR xpath_exists('//array/key', x) THEN
        RAISE EXCEPTION '%: a dict must alternate <key> and a value', caller
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('(/plist|//dict|//array|//true|//false)/text()[normalize-space(.) != ""]',
            x)
       OR xpath_exists('(//key|//string|//integer|//real|//date|//data|//true|//false)/*', x)
    THEN
        RAISE EXCEPTION '%: text or element where a plist allows none', caller
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('//dict/key[. = preceding-sibling::key]', x) THEN
        RAISE EXCEPTION '%: duplicate key in a dict', caller USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('//*[self::dict or self::array][count(ancestor::dict | ancestor::array) '
            '>= 64]', x) THEN
        RAISE EXCEPTION '%: nesting deeper than 64 (PLIST_MAX_DEPTH)', caller
            USING ERRCODE = '22023';
    END IF;
    IF (xpath('count(//*[not(self::key)]) - 1', x))[1]::text::numeric > 262144 THEN
        RAISE EXCEPTION '%: more than 262144 values (PLIST_MAX_NODES)', caller
            USING ERRCODE = '22023';
    END IF;
    -- The leaves, as lib/plist reads them.
    FOR v IN SELECT unnest(xpath('//integer', x))::text LOOP
        m := substring(v FROM '^<integer>[ \t\r\n]*([+-]?[0-9]+)[ \t\r\n]*</integer>$');
        IF m IS NULL THEN
            RAISE EXCEPTION '%: invalid <integer> "%"', caller, left(v, 64)
                USING ERRCODE = '22023';
        END IF;
        IF m::numeric < -9223372036854775808 OR m::numeric > 18446744073709551615 THEN
            RAISE EXCEPTION '%: <integer> "%" out of range', caller, left(m, 48)
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    FOR v IN SELECT unnest(xpath('//real', x))::text LOOP
        m := substring(v FROM '^<real>[ \t\r\n]*([^ \t\r\n<]*)[ \t\r\n]*</real>$');
        IF m IS NULL OR length(m) > 128 OR (lower(m) !~ '^[+-]?(inf|infinity)$'
                AND lower(m) <> 'nan'
                AND m !~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$') THEN
            RAISE EXCEPTION '%: invalid <real> "%"', caller, left(v, 64)
                USING ERRCODE = '22023';
        END IF;
        IF lower(m) !~ '(inf|nan)' THEN
            BEGIN
                n := abs(m::numeric);
            EXCEPTION WHEN OTHERS THEN
                n := NULL;
            END;
            IF n IS NULL OR n >= 1.7976931348623158e308 THEN
                RAISE EXCEPTION '%: <real> "%" out of range', caller, left(m, 48)
                    USING ERRCODE = '22023';
            END IF;
        END IF;
    END LOOP;
    FOR v IN SELECT unnest(xpath('//date', x))::text LOOP
        m := substring(v FROM
            '^<date>([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})Z</date>$');
        IF m IS NOT NULL THEN
            ymd := ARRAY[substr(m, 1, 4), substr(m, 6, 2), substr(m, 9, 2), substr(m, 12, 2),
                         substr(m, 15, 2), substr(m, 18, 2)]::integer[];
            -- Days in the month, February of leap years (Gregorian) 29.
            e := (ARRAY[31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[ymd[2]];
            IF ymd[2] = 2 AND ymd[1] % 4 = 0 AND (ymd[1] % 100 <> 0 OR ymd[1] % 400 = 0) THEN
                e := 29;
            END IF;
        END IF;
        IF m IS NULL OR ymd[2] NOT BETWEEN 1 AND 12 OR ymd[4] > 23 OR ymd[5] > 59
           OR ymd[6] > 59 OR ymd[3] NOT BETWEEN 1 AND e THEN
            RAISE EXCEPTION '%: invalid <date> "%" (want YYYY-MM-DDTHH:MM:SSZ)', caller,
                left(v, 64) USING ERRCODE = '22023';
        END IF;
    END LOOP;
    -- <data>: strict base64 (lib/base64.c): white space anywhere, padding to
    -- a multiple of four, zero unused bits, at most 4 MiB decoded.
    FOR v IN SELECT unnest(xpath('//data', x))::text LOOP
        m := regexp_replace(v, '[ \t\r\n]', '', 'g');
        IF m !~ ('^(<data/>|<data>([A-Za-z0-9+/]{4})*([A-Za-z0-9+/][AQgw]==|'
                 '[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?</data>)$') THEN
            RAISE EXCEPTION '%: invalid base64 in <data>', caller USING ERRCODE = '22023';
        END IF;
        IF length(m) - 13 > 5592408 THEN
            RAISE EXCEPTION '%: <data> decodes to more than 4194304 bytes', caller
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION mdm.plist_check(text, text) IS
    'Internal: refuses (22023, prefixed by caller, naming the rule) an XML plist that '
    'lib/plist.c would refuse: prolog, entities, elements, attributes, key/value pairs, '
    'duplicate keys, depth, integer/real/date/data syntax and ranges. May be stricter, '
    'never looser.';
REVOKE EXECUTE ON FUNCTION mdm.plist_check(text, text) FROM PUBLIC;

-- Every queued command passes it too (the server delivers plain commands as
-- they are, but a device would refuse what our parser refuses).
ALTER FUNCTION mdm.command_check(text) RENAME TO command_check_fields;
COMMENT ON FUNCTION mdm.command_check_fields(text) IS
    'Internal: the command rules of mdm.command_check (004): one dict with Command, '
    'RequestType and CommandUUID as the protocol wants; returns RequestType and CommandUUID.';
CREATE FUNCTION mdm.command_check(command text, OUT request_type text, OUT command_uuid text)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT f.request_type, f.command_uuid INTO request_type, command_uuid
      FROM mdm.command_check_fields(command) f;
    PERFORM mdm.plist_check(command, 'mdm.enqueue_command');
END $$;
COMMENT ON FUNCTION mdm.command_check(text) IS
    'Internal: checks a command plist (mdm.command_check_fields, then mdm.plist_check: what '
    'lib/plist refuses) and returns its RequestType and CommandUUID (NULL when absent); '
    'raises 22023 naming the rule it breaks.';
REVOKE EXECUTE ON FUNCTION mdm.command_check(text) FROM PUBLIC;

-- The profile of an encrypted InstallProfile is parsed by server.fcgi at
-- each delivery: refuse here what it would refuse there.
CREATE OR REPLACE FUNCTION mdm.cmd_install_profile(udid text, profile bytea, encrypt boolean)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id  uuid;
    doc text;
    fn  constant text := 'mdm.cmd_install_profile';
BEGIN
    IF encrypt IS NULL THEN
        RAISE EXCEPTION '%: encrypt must be true or false', fn USING ERRCODE = '22004';
    END IF;
    IF NOT encrypt THEN
        RETURN mdm.cmd_install_profile(udid, profile);
    END IF;
    IF profile IS NULL OR octet_length(profile) = 0 THEN
        RAISE EXCEPTION '%: profile is empty', fn USING ERRCODE = '22023';
    END IF;
    BEGIN
        doc := convert_from(profile, 'UTF8');
    EXCEPTION WHEN OTHERS THEN
        doc := NULL;
    END;
    IF doc IS NULL OR ltrim(doc, chr(65279) || E' \t\r\n') !~ '^<' THEN
        RAISE EXCEPTION '%: to encrypt, the profile must be an unsigned .mobileconfig (an XML '
            'plist); sign nothing yourself, the server signs it', fn USING ERRCODE = '22023';
    END IF;
    PERFORM mdm.plist_check(doc, fn);
    IF NOT xpath_exists('/plist/dict/key[. = "PayloadContent"]/following-sibling::*[1]'
            '[self::array]', xmlparse(DOCUMENT ltrim(doc, chr(65279)))) THEN
        RAISE EXCEPTION '%: to encrypt, the profile needs a PayloadContent array '
            '(Configuration Profile Reference)', fn USING ERRCODE = '22023';
    END IF;
    id := mdm.cmd_install_profile(udid, profile);
    UPDATE mdm.command c SET encrypt_payload = true
     WHERE upper(c.command_uuid) = upper(id::text);
    RETURN id;
END $$;

-- ------------------------------------------------------------------------
-- What the server could not build: the queue row is finished as
-- undeliverable and the reason is recorded beside the devices' answers.
ALTER TABLE mdm.command_queue DROP CONSTRAINT command_queue_status_check;
ALTER TABLE mdm.command_queue ADD CONSTRAINT command_queue_status_check CHECK (status IN
    ('queued', 'acknowledged', 'error', 'format_error', 'canceled', 'undeliverable'));
COMMENT ON COLUMN mdm.command_queue.status IS
    'queued; acknowledged, error, format_error (the device''s answer); canceled (an '
    'operator); undeliverable (the server could not build it at delivery, for example an '
    'encrypted InstallProfile without a profile signer: mdm.command_results says why).';

ALTER TABLE mdm.command_result DROP CONSTRAINT command_result_status_check;
ALTER TABLE mdm.command_result ADD CONSTRAINT command_result_status_check CHECK (status IN
    ('Acknowledged', 'Error', 'CommandFormatError', 'NotNow', 'Undeliverable'));
ALTER TABLE mdm.command_result ALTER COLUMN result DROP NOT NULL;
ALTER TABLE mdm.command_result ADD COLUMN reason text
    CHECK (reason IS NULL OR octet_length(reason) <= 1024);
ALTER TABLE mdm.command_result ADD CONSTRAINT command_result_undeliverable_check
    CHECK ((status = 'Undeliverable') = (reason IS NOT NULL)
           AND (status = 'Undeliverable') = (result IS NULL));
COMMENT ON COLUMN mdm.command_result.reason IS
    'Undeliverable only: why the server could not build the command (the device never saw '
    'it; result is NULL).';

CREATE OR REPLACE VIEW mdm.command_results AS
    SELECT r.command_uuid, e.udid, e.user_id, c.request_type, r.status, r.result,
           r.result_json, r.error_chain, r.received_at, r.reason
    FROM mdm.command_result r
    JOIN mdm.enrollment e ON e.id = r.enrollment_id
    JOIN mdm.command c ON c.command_uuid = r.command_uuid;
COMMENT ON VIEW mdm.command_results IS
    'Every answer a device gave: status (Acknowledged, Error, CommandFormatError, NotNow), '
    'the raw plist (result), the same as JSON (result_json) and ErrorChain; and every command '
    'the server could not build (status Undeliverable, reason says why, result NULL).';
