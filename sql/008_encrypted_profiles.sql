-- 008_encrypted_profiles: InstallProfile with the profile encrypted to the
-- device.  SQL cannot do CMS, so the queued command is marked and
-- server.fcgi does the work at delivery: the profile's PayloadContent
-- becomes EncryptedPayloadContent (CMS EnvelopedData, AES-256, to the
-- device's identity certificate current at that moment) and the whole
-- profile is signed with the server's profile signer.  Secrets in it
-- (Wi-Fi, mail passwords) never leave the server in clear.

ALTER TABLE mdm.command ADD COLUMN encrypt_payload boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN mdm.command.encrypt_payload IS
    'InstallProfile only: server.fcgi encrypts the Payload profile''s PayloadContent to the '
    'device identity certificate and signs the profile at each delivery (never stored in '
    'clear on the device side). Set by mdm.cmd_install_profile(udid, profile, true).';

CREATE FUNCTION mdm.cmd_install_profile(udid text, profile bytea, encrypt boolean)
RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id  uuid;
    doc xml;
BEGIN
    IF encrypt IS NULL THEN
        RAISE EXCEPTION 'mdm.cmd_install_profile: encrypt must be true or false'
            USING ERRCODE = '22004';
    END IF;
    IF NOT encrypt THEN
        RETURN mdm.cmd_install_profile(udid, profile);
    END IF;
    -- To encrypt its payloads the server must read the profile: an unsigned
    -- .mobileconfig (XML plist) whose top dict has PayloadContent, an array.
    IF profile IS NULL OR octet_length(profile) = 0 THEN
        RAISE EXCEPTION 'mdm.cmd_install_profile: profile is empty' USING ERRCODE = '22023';
    END IF;
    BEGIN
        doc := xmlparse(DOCUMENT convert_from(profile, 'UTF8'));
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'mdm.cmd_install_profile: to encrypt, the profile must be an unsigned '
            '.mobileconfig (an XML plist); sign nothing yourself, the server signs it'
            USING ERRCODE = '22023';
    END;
    IF NOT xpath_exists('/plist/dict/key[. = "PayloadContent"]/following-sibling::*[1]'
            '[self::array]', doc) THEN
        RAISE EXCEPTION 'mdm.cmd_install_profile: to encrypt, the profile needs a '
            'PayloadContent array (Configuration Profile Reference)' USING ERRCODE = '22023';
    END IF;
    id := mdm.cmd_install_profile(udid, profile);
    UPDATE mdm.command c SET encrypt_payload = true
     WHERE upper(c.command_uuid) = upper(id::text);
    RETURN id;
END $$;
COMMENT ON FUNCTION mdm.cmd_install_profile(text, bytea, boolean) IS
    'Queues InstallProfile; with encrypt true the profile (an unsigned .mobileconfig with a '
    'PayloadContent array) is encrypted to the device identity certificate and signed by the '
    'server when delivered (EncryptedPayloadContent).';
REVOKE EXECUTE ON FUNCTION mdm.cmd_install_profile(text, bytea, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mdm.cmd_install_profile(text, bytea, boolean) TO mdm_operator;
