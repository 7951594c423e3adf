-- 004_commands: the command queue and its results (server.fcgi), and the
-- admin SQL API that fills the queue.  A command is a whole plist
-- (CommandUUID + Command dict) queued for one enrollment; it is delivered
-- until the device answers Acknowledged, Error or CommandFormatError for
-- its CommandUUID; NotNow keeps it queued but skips it until the device's
-- next Idle.

CREATE TABLE mdm.command (
    command_uuid text PRIMARY KEY CHECK (command_uuid ~ '^[A-Za-z0-9._:-]{1,128}$'),
    request_type text NOT NULL CHECK (request_type ~ '^[A-Za-z0-9._-]{1,128}$'),
    plist        text NOT NULL CHECK (octet_length(plist) <= 4194304),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE mdm.command IS
    'Every command ever queued: the exact plist a device receives (CommandUUID and Command '
    'with its RequestType). Rows are kept as history.';

CREATE TABLE mdm.command_queue (
    id              bigserial PRIMARY KEY,
    enrollment_id   bigint NOT NULL REFERENCES mdm.enrollment (id),
    command_uuid    text NOT NULL REFERENCES mdm.command (command_uuid),
    priority        integer NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'queued' CHECK (status IN
                        ('queued', 'acknowledged', 'error', 'format_error', 'canceled')),
    queued_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    delivered_count integer NOT NULL DEFAULT 0,
    not_now_at      timestamptz,
    finished_at     timestamptz,
    UNIQUE (enrollment_id, command_uuid),
    CHECK ((status = 'queued') = (finished_at IS NULL))
);
CREATE INDEX command_queue_due_idx ON mdm.command_queue (enrollment_id, priority DESC, id)
    WHERE status = 'queued';
COMMENT ON TABLE mdm.command_queue IS
    'One row per command per enrollment. queued until the device answers Acknowledged '
    '(acknowledged), Error (error) or CommandFormatError (format_error), or an operator '
    'cancels it (canceled). Delivery order: higher priority first, then older first. '
    'delivered_at/delivered_count: the last delivery and how many; a command delivered but '
    'not answered (a lost response, a crash) is delivered again at the next Idle. '
    'not_now_at: the device answered NotNow; skipped until its next Idle.';

ALTER TABLE mdm.enrollment ADD COLUMN idle_at timestamptz;
COMMENT ON COLUMN mdm.enrollment.idle_at IS
    'The last Idle on the command channel: the start of a connection. Commands answered '
    'NotNow after it are skipped until the next one.';

CREATE TABLE mdm.command_result (
    id            bigserial PRIMARY KEY,
    enrollment_id bigint NOT NULL REFERENCES mdm.enrollment (id),
    command_uuid  text NOT NULL REFERENCES mdm.command (command_uuid),
    status        text NOT NULL CHECK (status IN
                      ('Acknowledged', 'Error', 'CommandFormatError', 'NotNow')),
    result        text NOT NULL,
    result_json   jsonb,
    error_chain   jsonb,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_result_uuid_idx ON mdm.command_result (command_uuid);
CREATE INDEX command_result_enrollment_idx ON mdm.command_result (enrollment_id, received_at);
COMMENT ON TABLE mdm.command_result IS
    'Every answer a device gave to a command: the raw plist as received (result), the same '
    'as JSON for SQL (result_json: data as base64 strings, dates as ISO 8601), and ErrorChain '
    'for Error answers.';

-- ------------------------------------------------------------------------
-- The admin SQL API: queue commands, read the queue and the results.
--
-- Every function an operator calls is SECURITY DEFINER with a fixed
-- search_path (everything qualified with mdm.), and EXECUTE is revoked
-- from PUBLIC: a helpdesk login gets exactly what the role mdm_operator is
-- granted at the end of this file, and no table.

-- XML 1.0 text for a plist <string>, <key> or attribute: & < > " ' escaped,
-- CR as a character reference (a parser would turn a literal CR into LF),
-- and the characters XML 1.0 cannot carry refused rather than dropped.
CREATE FUNCTION mdm.plist_escape(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF value ~ '[\x01-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]' THEN
        RAISE EXCEPTION 'mdm.plist_escape: XML 1.0 cannot carry control characters other '
            'than tab, LF and CR' USING ERRCODE = '22023';
    END IF;
    RETURN replace(replace(replace(replace(replace(replace(value,
        '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&apos;'),
        E'\r', '&#13;');
END $$;
COMMENT ON FUNCTION mdm.plist_escape(text) IS
    'Internal: value escaped for XML 1.0 text (& < > " '' and CR); control characters XML '
    '1.0 cannot carry raise 22023. Used by the command builders.';

-- A command plist without CommandUUID (enqueue_command adds one): fields is
-- the XML of the Command dict after RequestType, built from escaped values.
CREATE FUNCTION mdm.command_plist(request_type text, fields text DEFAULT '') RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT '<?xml version="1.0" encoding="UTF-8"?>' || E'\n'
        || '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        || '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">' || E'\n'
        || '<plist version="1.0">' || E'\n'
        || '<dict>' || E'\n'
        || E'\t<key>Command</key>\n'
        || E'\t<dict>\n'
        || E'\t\t<key>RequestType</key>\n'
        || E'\t\t<string>' || mdm.plist_escape(request_type) || E'</string>\n'
        || coalesce(fields, '')
        || E'\t</dict>\n'
        || '</dict>' || E'\n'
        || '</plist>' || E'\n'
$$;
COMMENT ON FUNCTION mdm.command_plist(text, text) IS
    'Internal: the plist of a command with this RequestType; fields is the rest of the '
    'Command dict as XML (built with mdm.plist_escape). No CommandUUID: enqueue_command adds it.';

-- Checks a command plist with PostgreSQL's XML parser and returns the
-- RequestType and the CommandUUID (NULL when absent).  The rules are the
-- ones lib/plist.c enforces that matter here: one <plist> around one
-- <dict>, only plist elements, keys and values alternating in every dict,
-- no text where none belongs, no DTD internal subset (so no entities).
CREATE FUNCTION mdm.command_check(command text, OUT request_type text, OUT command_uuid text)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    doc    xml;
    detail text;
    cmd constant text := '/plist/dict/key[. = "Command"]/following-sibling::*[1]';
    rt  constant text := '/plist/dict/key[. = "Command"]/following-sibling::*[1]'
                         '/key[. = "RequestType"]/following-sibling::*[1]';
    cu  constant text := '/plist/dict/key[. = "CommandUUID"]/following-sibling::*[1]';
BEGIN
    IF command IS NULL THEN
        RAISE EXCEPTION 'mdm.enqueue_command: command is NULL' USING ERRCODE = '22004';
    END IF;
    IF octet_length(command) > 4194304 THEN
        RAISE EXCEPTION 'mdm.enqueue_command: command plist is larger than 4 MiB'
            USING ERRCODE = '22023';
    END IF;
    IF command ~* '<!ENTITY' OR command ~* '<!DOCTYPE[^>\[]*\[' THEN
        RAISE EXCEPTION 'mdm.enqueue_command: DTD internal subset (entities) not allowed in a '
            'command plist' USING ERRCODE = '22023';
    END IF;
    BEGIN
        doc := xmlparse(DOCUMENT command);
    EXCEPTION WHEN data_exception THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION 'mdm.enqueue_command: command is not well-formed XML: %', SQLERRM
            USING ERRCODE = '22023', DETAIL = detail;
    END;
    IF NOT xpath_exists('/plist[count(*) = 1]/dict', doc) THEN
        RAISE EXCEPTION 'mdm.enqueue_command: a command is a <plist> holding exactly one <dict>'
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('//*[not(self::plist or self::dict or self::array or self::key or '
            'self::string or self::integer or self::real or self::true or self::false or '
            'self::date or self::data)]', doc) THEN
        RAISE EXCEPTION 'mdm.enqueue_command: element that is not a plist type in command'
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('//dict/*[position() mod 2 = 1][not(self::key)]', doc)
       OR xpath_exists('//dict/*[position() mod 2 = 0][self::key]', doc)
       OR xpath_exists('//dict[count(*) mod 2 = 1]', doc)
       OR xpath_exists('//array/key', doc) THEN
        RAISE EXCEPTION 'mdm.enqueue_command: a dict must alternate <key> and a value'
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('(/plist|//dict|//array|//true|//false)/text()[normalize-space(.) != ""]',
            doc)
       OR xpath_exists('(//key|//string|//integer|//real|//date|//data|//true|//false)/*',
            doc) THEN
        RAISE EXCEPTION 'mdm.enqueue_command: text or element where a plist allows none'
            USING ERRCODE = '22023';
    END IF;
    IF xpath_exists('/plist/dict/key[. = preceding-sibling::key]', doc)
       OR xpath_exists(cmd || '/key[. = preceding-sibling::key]', doc) THEN
        RAISE EXCEPTION 'mdm.enqueue_command: duplicate key in the command dict'
            USING ERRCODE = '22023';
    END IF;
    IF NOT xpath_exists(cmd || '[self::dict]', doc) THEN
        RAISE EXCEPTION 'mdm.enqueue_command: the top dict must have Command, a dict'
            USING ERRCODE = '22023';
    END IF;
    IF NOT xpath_exists(rt || '[self::string]', doc) THEN
        RAISE EXCEPTION 'mdm.enqueue_command: Command must have RequestType, a string'
            USING ERRCODE = '22023';
    END IF;
    request_type := (xpath('string(' || rt || ')', doc))[1]::text;
    IF request_type !~ '^[A-Za-z0-9._-]{1,128}$' THEN
        RAISE EXCEPTION 'mdm.enqueue_command: RequestType must be 1 to 128 letters, digits, '
            '".", "_" or "-"' USING ERRCODE = '22023';
    END IF;
    IF xpath_exists(cu, doc) THEN
        IF NOT xpath_exists(cu || '[self::string]', doc) THEN
            RAISE EXCEPTION 'mdm.enqueue_command: CommandUUID must be a string'
                USING ERRCODE = '22023';
        END IF;
        command_uuid := (xpath('string(' || cu || ')', doc))[1]::text;
        -- One case throughout, so that the duplicate check below is exact.
        IF command_uuid !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
           AND command_uuid !~ '^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$'
        THEN
            RAISE EXCEPTION 'mdm.enqueue_command: CommandUUID must be a UUID '
                '(8-4-4-4-12 hex digits, all upper or all lower case)' USING ERRCODE = '22023';
        END IF;
    END IF;
END $$;
COMMENT ON FUNCTION mdm.command_check(text) IS
    'Internal: checks a command plist (PostgreSQL''s XML parser and the plist rules) and '
    'returns its RequestType and CommandUUID (NULL when absent); raises 22023 naming the '
    'rule it breaks.';

CREATE FUNCTION mdm.enqueue_command(udids text[], command text, priority integer DEFAULT 0)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c        record;
    plist    text := command;
    cuuid    text;
    targets  bigint[];
    missing  text;
    u        text;
BEGIN
    IF udids IS NULL OR cardinality(udids) = 0 OR array_position(udids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.enqueue_command: give at least one UDID, and no NULL'
            USING ERRCODE = '22004';
    END IF;
    IF priority IS NULL THEN
        RAISE EXCEPTION 'mdm.enqueue_command: priority is NULL' USING ERRCODE = '22004';
    END IF;
    c := mdm.command_check(command);
    cuuid := c.command_uuid;
    IF cuuid IS NULL THEN
        -- Apple's writers name the UUID upper case; the insertion is checked
        -- by parsing again, so a <plist><dict> inside a comment cannot fool it.
        cuuid := upper(gen_random_uuid()::text);
        plist := regexp_replace(command, '(<plist(\s[^>]*)?>\s*<dict>)',
            E'\\1\n\t<key>CommandUUID</key>\n\t<string>' || cuuid || '</string>');
        IF (mdm.command_check(plist)).command_uuid IS DISTINCT FROM cuuid THEN
            RAISE EXCEPTION 'mdm.enqueue_command: cannot add CommandUUID: put <dict> right '
                'after <plist>, or give a CommandUUID' USING ERRCODE = '22023';
        END IF;
    END IF;

    SELECT array_agg(x.u ORDER BY x.u) FILTER (WHERE e.id IS NULL),
           array_agg(e.id) FILTER (WHERE e.id IS NOT NULL)
      INTO missing, targets
      FROM (SELECT DISTINCT t.u FROM unnest(udids) AS t(u)) x
      LEFT JOIN mdm.enrollment e ON e.udid = x.u AND e.user_id IS NULL;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.enqueue_command: no device-channel enrollment for UDID %', missing
            USING ERRCODE = 'P0002';
    END IF;

    IF EXISTS (SELECT 1 FROM mdm.command m
                WHERE m.command_uuid IN (lower(cuuid), upper(cuuid))) THEN
        RAISE EXCEPTION 'mdm.enqueue_command: CommandUUID % already used', cuuid
            USING ERRCODE = '23505';
    END IF;
    BEGIN
        INSERT INTO mdm.command (command_uuid, request_type, plist)
        VALUES (cuuid, c.request_type, plist);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'mdm.enqueue_command: CommandUUID % already used', cuuid
            USING ERRCODE = '23505';
    END;
    INSERT INTO mdm.command_queue (enrollment_id, command_uuid, priority)
    SELECT t.id, cuuid, enqueue_command.priority FROM unnest(targets) AS t(id);

    FOR u IN SELECT DISTINCT t.u FROM unnest(udids) AS t(u) ORDER BY 1 LOOP
        PERFORM pg_notify('mdm_command', u);
    END LOOP;
    RETURN cuuid::uuid;
END $$;
COMMENT ON FUNCTION mdm.enqueue_command(text[], text, integer) IS
    'Queues one command for the device channel of every UDID (all or none): one mdm.command '
    'row, one mdm.command_queue row per device, NOTIFY mdm_command with each UDID. command '
    'is an XML plist whose top dict has Command (a dict with RequestType, a string) and '
    'optionally CommandUUID (a UUID never used before; added when absent). Higher priority '
    'is delivered first. Returns the CommandUUID.';

CREATE FUNCTION mdm.enqueue_command(udid text, command text, priority integer DEFAULT 0)
RETURNS uuid LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.enqueue_command(ARRAY[udid], command, priority)
$$;
COMMENT ON FUNCTION mdm.enqueue_command(text, text, integer) IS
    'Queues a command plist for the device channel of one UDID; see '
    'mdm.enqueue_command(text[], text, integer). Returns the CommandUUID.';

-- ------------------------------------------------------------------------
-- Builders for the common commands.  Each builds the plist from escaped
-- values and queues it through mdm.enqueue_command; each returns the
-- CommandUUID.

CREATE FUNCTION mdm.cmd_device_information(udid text, queries text[] DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q text[] := coalesce(queries, ARRAY['DeviceName', 'OSVersion', 'BuildVersion',
        'ModelName', 'Model', 'ProductName', 'SerialNumber', 'UDID', 'IMEI', 'MEID',
        'WiFiMAC', 'BluetoothMAC', 'AvailableDeviceCapacity', 'DeviceCapacity',
        'BatteryLevel', 'IsSupervised']);
BEGIN
    IF cardinality(q) = 0 OR array_position(q, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'mdm.cmd_device_information: queries must be NULL (the default list) '
            'or non-empty without NULL' USING ERRCODE = '22023';
    END IF;
    RETURN mdm.enqueue_command(udid, mdm.command_plist('DeviceInformation',
        E'\t\t<key>Queries</key>\n\t\t<array>\n'
        || (SELECT string_agg(E'\t\t\t<string>' || mdm.plist_escape(x.q) || E'</string>\n',
                              '' ORDER BY x.n)
              FROM unnest(q) WITH ORDINALITY AS x(q, n))
        || E'\t\t</array>\n'));
END $$;
COMMENT ON FUNCTION mdm.cmd_device_information(text, text[]) IS
    'Queues DeviceInformation with these Queries (NULL: DeviceName, OSVersion, BuildVersion, '
    'ModelName, Model, ProductName, SerialNumber, UDID, IMEI, MEID, WiFiMAC, BluetoothMAC, '
    'AvailableDeviceCapacity, DeviceCapacity, BatteryLevel, IsSupervised).';

CREATE FUNCTION mdm.cmd_security_info(udid text) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.enqueue_command(udid, mdm.command_plist('SecurityInfo'))
$$;
COMMENT ON FUNCTION mdm.cmd_security_info(text) IS
    'Queues SecurityInfo (passcode, encryption, FileVault, firewall state ...).';

CREATE FUNCTION mdm.cmd_profile_list(udid text) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.enqueue_command(udid, mdm.command_plist('ProfileList'))
$$;
COMMENT ON FUNCTION mdm.cmd_profile_list(text) IS 'Queues ProfileList (installed profiles).';

CREATE FUNCTION mdm.cmd_installed_application_list(udid text) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.enqueue_command(udid, mdm.command_plist('InstalledApplicationList'))
$$;
COMMENT ON FUNCTION mdm.cmd_installed_application_list(text) IS
    'Queues InstalledApplicationList (installed apps).';

CREATE FUNCTION mdm.cmd_certificate_list(udid text) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.enqueue_command(udid, mdm.command_plist('CertificateList'))
$$;
COMMENT ON FUNCTION mdm.cmd_certificate_list(text) IS
    'Queues CertificateList (installed certificates).';

CREATE FUNCTION mdm.cmd_install_profile(udid text, profile bytea) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF profile IS NULL OR octet_length(profile) = 0 THEN
        RAISE EXCEPTION 'mdm.cmd_install_profile: profile is empty' USING ERRCODE = '22023';
    END IF;
    RETURN mdm.enqueue_command(udid, mdm.command_plist('InstallProfile',
        E'\t\t<key>Payload</key>\n\t\t<data>\n' || encode(profile, 'base64')
        || E'\n\t\t</data>\n'));
END $$;
COMMENT ON FUNCTION mdm.cmd_install_profile(text, bytea) IS
    'Queues InstallProfile with this profile (a .mobileconfig, signed or not) as Payload.';

CREATE FUNCTION mdm.cmd_remove_profile(udid text, identifier text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF identifier IS NULL OR identifier = '' THEN
        RAISE EXCEPTION 'mdm.cmd_remove_profile: identifier is empty' USING ERRCODE = '22023';
    END IF;
    RETURN mdm.enqueue_command(udid, mdm.command_plist('RemoveProfile',
        E'\t\t<key>Identifier</key>\n\t\t<string>' || mdm.plist_escape(identifier)
        || E'</string>\n'));
END $$;
COMMENT ON FUNCTION mdm.cmd_remove_profile(text, text) IS
    'Queues RemoveProfile for the profile with this PayloadIdentifier.';

CREATE FUNCTION mdm.cmd_device_lock(udid text, pin text DEFAULT NULL, message text DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pin IS NOT NULL AND pin !~ '^[0-9]{6}$' THEN
        RAISE EXCEPTION 'mdm.cmd_device_lock: PIN must be 6 digits' USING ERRCODE = '22023';
    END IF;
    RETURN mdm.enqueue_command(udid, mdm.command_plist('DeviceLock',
        coalesce(E'\t\t<key>PIN</key>\n\t\t<string>' || pin || E'</string>\n', '')
        || coalesce(E'\t\t<key>Message</key>\n\t\t<string>' || mdm.plist_escape(message)
                    || E'</string>\n', '')));
END $$;
COMMENT ON FUNCTION mdm.cmd_device_lock(text, text, text) IS
    'Queues DeviceLock, with a 6-digit PIN (macOS Find My PIN) and a Message for the lock '
    'screen when given.';

CREATE FUNCTION mdm.cmd_erase_device(udid text, pin text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pin IS NOT NULL AND pin !~ '^[0-9]{6}$' THEN
        RAISE EXCEPTION 'mdm.cmd_erase_device: PIN must be 6 digits' USING ERRCODE = '22023';
    END IF;
    RETURN mdm.enqueue_command(udid, mdm.command_plist('EraseDevice',
        coalesce(E'\t\t<key>PIN</key>\n\t\t<string>' || pin || E'</string>\n', '')));
END $$;
COMMENT ON FUNCTION mdm.cmd_erase_device(text, text) IS
    'Queues EraseDevice (wipes the device), with a 6-digit PIN (macOS) when given.';

CREATE FUNCTION mdm.cmd_restart_device(udid text) RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.enqueue_command(udid, mdm.command_plist('RestartDevice'))
$$;
COMMENT ON FUNCTION mdm.cmd_restart_device(text) IS 'Queues RestartDevice.';

-- ------------------------------------------------------------------------
-- The queue and the results as an operator reads them, and cancellation.

CREATE VIEW mdm.queue AS
    SELECT e.udid, e.user_id, q.command_uuid, c.request_type, q.priority, q.queued_at,
           q.delivered_at, q.delivered_count, q.not_now_at
    FROM mdm.command_queue q
    JOIN mdm.enrollment e ON e.id = q.enrollment_id
    JOIN mdm.command c ON c.command_uuid = q.command_uuid
    WHERE q.status = 'queued';
COMMENT ON VIEW mdm.queue IS
    'Commands waiting for a device (status queued), with their delivery state; delivery '
    'order is priority DESC, then queued_at.';

CREATE VIEW mdm.command_results AS
    SELECT r.command_uuid, e.udid, e.user_id, c.request_type, r.status, r.result,
           r.result_json, r.error_chain, r.received_at
    FROM mdm.command_result r
    JOIN mdm.enrollment e ON e.id = r.enrollment_id
    JOIN mdm.command c ON c.command_uuid = r.command_uuid;
COMMENT ON VIEW mdm.command_results IS
    'Every answer a device gave: status (Acknowledged, Error, CommandFormatError, NotNow), '
    'the raw plist (result), the same as JSON (result_json) and ErrorChain.';

CREATE FUNCTION mdm.queue_clear(udid text) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mdm.enrollment e WHERE e.udid = queue_clear.udid) THEN
        RAISE EXCEPTION 'mdm.queue_clear: no enrollment for UDID %', udid
            USING ERRCODE = 'P0002';
    END IF;
    UPDATE mdm.command_queue q SET status = 'canceled', finished_at = now()
      FROM mdm.enrollment e
     WHERE e.id = q.enrollment_id AND e.udid = queue_clear.udid AND q.status = 'queued';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION mdm.queue_clear(text) IS
    'Cancels every still-queued command of the device''s enrollments (device and user '
    'channels); returns how many. Answered commands are left as they are.';

CREATE FUNCTION mdm.command_cancel(command_uuid uuid) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u text := command_cancel.command_uuid::text;
    n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mdm.command c WHERE c.command_uuid IN (u, upper(u))) THEN
        RAISE EXCEPTION 'mdm.command_cancel: no command %', u USING ERRCODE = 'P0002';
    END IF;
    UPDATE mdm.command_queue q SET status = 'canceled', finished_at = now()
     WHERE q.command_uuid IN (u, upper(u)) AND q.status = 'queued';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION mdm.command_cancel(uuid) IS
    'Cancels the still-queued deliveries of this command (on every device it was queued '
    'for); returns how many.';

-- ------------------------------------------------------------------------
-- The role mdm_operator: what a web or helpdesk tool needs, without the
-- tables.  Roles are cluster-wide: created once (by the first database
-- migrated), granted per database.  GRANT mdm_operator TO helpdesk;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'mdm_operator') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                        WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
            RAISE EXCEPTION '004_commands: role mdm_operator does not exist and % may not '
                'create it', current_user USING ERRCODE = '42501',
                HINT = 'As a superuser: CREATE ROLE mdm_operator NOLOGIN; GRANT mdm_operator '
                       'TO ' || quote_ident(current_user) || ' WITH ADMIN OPTION; then '
                       'migrate again.';
        END IF;
        BEGIN
            CREATE ROLE mdm_operator NOLOGIN;
        EXCEPTION WHEN duplicate_object THEN
            NULL; -- another database's migration created it meanwhile
        END;
    END IF;
END $$;

-- The earlier API functions become callable by mdm_operator alone.
ALTER FUNCTION mdm.scep_challenge_new(text, interval) SECURITY DEFINER;
ALTER FUNCTION mdm.certificate_revoke(text, text) SECURITY DEFINER;
ALTER FUNCTION mdm.scep_approve(text) SECURITY DEFINER;
ALTER FUNCTION mdm.scep_reject(text) SECURITY DEFINER;

REVOKE EXECUTE ON FUNCTION
    mdm.plist_escape(text), mdm.command_plist(text, text), mdm.command_check(text),
    mdm.ca_touch(),
    mdm.scep_challenge_new(text, interval), mdm.certificate_revoke(text, text),
    mdm.scep_approve(text), mdm.scep_reject(text),
    mdm.enqueue_command(text[], text, integer), mdm.enqueue_command(text, text, integer),
    mdm.cmd_device_information(text, text[]), mdm.cmd_security_info(text),
    mdm.cmd_profile_list(text), mdm.cmd_installed_application_list(text),
    mdm.cmd_certificate_list(text), mdm.cmd_install_profile(text, bytea),
    mdm.cmd_remove_profile(text, text), mdm.cmd_device_lock(text, text, text),
    mdm.cmd_erase_device(text, text), mdm.cmd_restart_device(text),
    mdm.queue_clear(text), mdm.command_cancel(uuid)
FROM PUBLIC;

GRANT USAGE ON SCHEMA mdm TO mdm_operator;
GRANT EXECUTE ON FUNCTION
    mdm.scep_challenge_new(text, interval), mdm.certificate_revoke(text, text),
    mdm.scep_approve(text), mdm.scep_reject(text),
    mdm.enqueue_command(text[], text, integer), mdm.enqueue_command(text, text, integer),
    mdm.cmd_device_information(text, text[]), mdm.cmd_security_info(text),
    mdm.cmd_profile_list(text), mdm.cmd_installed_application_list(text),
    mdm.cmd_certificate_list(text), mdm.cmd_install_profile(text, bytea),
    mdm.cmd_remove_profile(text, text), mdm.cmd_device_lock(text, text, text),
    mdm.cmd_erase_device(text, text), mdm.cmd_restart_device(text),
    mdm.queue_clear(text), mdm.command_cancel(uuid)
TO mdm_operator;
GRANT SELECT ON mdm.devices, mdm.enrollments, mdm.certificates, mdm.queue,
    mdm.command_results, mdm.identity_bindings, mdm.push_certs, mdm.scep_pending
TO mdm_operator;
