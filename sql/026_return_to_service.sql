-- 026_return_to_service: Return to Service (iOS and visionOS 26; apple/
-- device-management mdm/checkin/returntoservice.yaml, and the
-- ReturnToService dictionary of mdm/commands/device.erase.yaml).
--
-- A device in the return-to-service mode of its Automated Device
-- Enrollment profile asks, with the ReturnToService check-in, what to do
-- after it erases itself.  The answer is the operator's configuration for
-- that device, else the operator's default (udid NULL), else Enabled
-- false; never another device's.  With app preservation the device's
-- own escrowed BootstrapToken goes with it.

CREATE TABLE mdm.return_to_service (
    udid             text REFERENCES mdm.device (udid),
    enabled          boolean NOT NULL,
    wifi_profile     bytea CHECK (octet_length(wifi_profile) <= 65536),
    mdm_profile      bytea CHECK (octet_length(mdm_profile) <= 65536),
    app_preservation boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL DEFAULT session_user,
    UNIQUE NULLS NOT DISTINCT (udid)
);
COMMENT ON TABLE mdm.return_to_service IS
    'The Return to Service configuration per device (udid), and the default for every other '
    'device (the row whose udid is NULL): Enabled, the Wi-Fi and MDM profiles to install '
    'after the erase, and whether the device''s escrowed BootstrapToken goes with it (app '
    'preservation). Written by mdm.return_to_service_set.';

CREATE FUNCTION mdm.return_to_service_set(udid text, enabled boolean,
        wifi_profile bytea DEFAULT NULL, mdm_profile bytea DEFAULT NULL,
        app_preservation boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF enabled IS NULL OR app_preservation IS NULL THEN
        RAISE EXCEPTION 'mdm.return_to_service_set: enabled and app_preservation are required '
            '(mdm/checkin/returntoservice.yaml: Enabled)' USING ERRCODE = '22004';
    END IF;
    IF udid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM mdm.device d
                                         WHERE d.udid = return_to_service_set.udid) THEN
        RAISE EXCEPTION 'mdm.return_to_service_set: no device %', left(udid, 128)
            USING ERRCODE = 'P0002';
    END IF;
    IF octet_length(wifi_profile) > 65536 OR octet_length(mdm_profile) > 65536 THEN
        RAISE EXCEPTION 'mdm.return_to_service_set: a profile over 64 KiB'
            USING ERRCODE = '54000';
    END IF;
    INSERT INTO mdm.return_to_service AS r (udid, enabled, wifi_profile, mdm_profile,
           app_preservation)
    VALUES (udid, enabled, wifi_profile, mdm_profile, app_preservation)
    ON CONFLICT ON CONSTRAINT return_to_service_udid_key DO UPDATE
       SET enabled = EXCLUDED.enabled, wifi_profile = EXCLUDED.wifi_profile,
           mdm_profile = EXCLUDED.mdm_profile, app_preservation = EXCLUDED.app_preservation,
           updated_at = now(), updated_by = session_user;
END $$;
COMMENT ON FUNCTION mdm.return_to_service_set(text, boolean, bytea, bytea, boolean) IS
    'Sets the Return to Service answer for a device (udid NULL: the default for every device '
    'without its own): Enabled, the Wi-Fi and MDM profiles (as installed: signed or not, at most 64 KiB), app preservation (the device''s escrowed BootstrapToken is sent too).';

CREATE FUNCTION mdm.return_to_service_clear(udid text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM mdm.return_to_service r WHERE r.udid IS NOT DISTINCT FROM
        return_to_service_clear.udid;
    RETURN FOUND;
END $$;
COMMENT ON FUNCTION mdm.return_to_service_clear(text) IS
    'Removes a device''s Return to Service configuration (udid NULL: the default); false when '
    'there was none.';

CREATE VIEW mdm.return_to_service_settings AS
SELECT r.udid, r.enabled, r.wifi_profile IS NOT NULL AS has_wifi_profile,
       r.mdm_profile IS NOT NULL AS has_mdm_profile, r.app_preservation, r.updated_at,
       r.updated_by
  FROM mdm.return_to_service r;
COMMENT ON VIEW mdm.return_to_service_settings IS
    'The Return to Service configurations (udid NULL: the default), without the profiles.';

-- checkin.fcgi: the answer for for_udid (mdm/checkin/returntoservice.yaml
-- responsekeys): its own row, else the default, else Enabled false.
CREATE FUNCTION mdm.return_to_service_answer(for_udid text, OUT enabled boolean,
        OUT wifi_profile bytea, OUT mdm_profile bytea, OUT bootstrap_token bytea)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(r.enabled, false), r.wifi_profile, r.mdm_profile,
           CASE WHEN r.enabled AND r.app_preservation THEN d.bootstrap_token END
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT x.* FROM mdm.return_to_service x
                          WHERE x.udid = for_udid OR x.udid IS NULL
                          ORDER BY x.udid IS NULL LIMIT 1) r ON true
      LEFT JOIN mdm.device d ON d.udid = for_udid
$$;
COMMENT ON FUNCTION mdm.return_to_service_answer(text) IS
    'checkin.fcgi: the ReturnToService answer for for_udid: its configuration, else the '
    'default, else Enabled false; the BootstrapToken is the device''s own.';

-- EraseDevice with the ReturnToService dictionary (device.erase.yaml).
CREATE FUNCTION mdm.cmd_erase_device(udid text, pin text, return_to_service boolean,
        wifi_profile bytea DEFAULT NULL, mdm_profile bytea DEFAULT NULL)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rts text := '';
BEGIN
    IF pin IS NOT NULL AND pin !~ '^[0-9]{6}$' THEN
        RAISE EXCEPTION 'mdm.cmd_erase_device: PIN must be 6 digits' USING ERRCODE = '22023';
    END IF;
    IF return_to_service IS NULL THEN
        RAISE EXCEPTION 'mdm.cmd_erase_device: return_to_service is true or false '
            '(device.erase.yaml: ReturnToService Enabled)' USING ERRCODE = '22004';
    END IF;
    IF NOT return_to_service AND (wifi_profile IS NOT NULL OR mdm_profile IS NOT NULL) THEN
        RAISE EXCEPTION 'mdm.cmd_erase_device: the profiles are for Return to Service '
            '(device.erase.yaml)' USING ERRCODE = '22023';
    END IF;
    IF octet_length(wifi_profile) > 65536 OR octet_length(mdm_profile) > 65536 THEN
        RAISE EXCEPTION 'mdm.cmd_erase_device: a profile over 64 KiB' USING ERRCODE = '54000';
    END IF;
    rts := E'\t\t<key>ReturnToService</key>\n\t\t<dict>\n'
        || E'\t\t\t<key>Enabled</key>\n\t\t\t<' || return_to_service::text || E'/>\n'
        || coalesce(E'\t\t\t<key>WiFiProfileData</key>\n\t\t\t<data>'
                    || translate(encode(wifi_profile, 'base64'), E'\n', '') || E'</data>\n', '')
        || coalesce(E'\t\t\t<key>MDMProfileData</key>\n\t\t\t<data>'
                    || translate(encode(mdm_profile, 'base64'), E'\n', '') || E'</data>\n', '')
        || E'\t\t</dict>\n';
    RETURN mdm.enqueue_command(udid, mdm.command_plist('EraseDevice',
        coalesce(E'\t\t<key>PIN</key>\n\t\t<string>' || pin || E'</string>\n', '') || rts));
END $$;
COMMENT ON FUNCTION mdm.cmd_erase_device(text, text, boolean, bytea, bytea) IS
    'Queues EraseDevice with the ReturnToService dictionary (device.erase.yaml: Enabled, '
    'WiFiProfileData, MDMProfileData; iOS 17+): the device erases itself and enrolls again.';

REVOKE EXECUTE ON FUNCTION
    mdm.return_to_service_set(text, boolean, bytea, bytea, boolean),
    mdm.return_to_service_clear(text), mdm.return_to_service_answer(text),
    mdm.cmd_erase_device(text, text, boolean, bytea, bytea)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    mdm.return_to_service_set(text, boolean, bytea, bytea, boolean),
    mdm.return_to_service_clear(text), mdm.cmd_erase_device(text, text, boolean, bytea, bytea)
TO mdm_operator;
GRANT SELECT ON mdm.return_to_service_settings TO mdm_operator;
