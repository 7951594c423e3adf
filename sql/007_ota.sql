-- 007_ota: Apple's over-the-air profile service (enroll.fcgi, phases 1 to
-- 3): one-time OTA challenges and the record of every accepted phase-2 and
-- phase-3 message with the attributes the device signed.

-- A new one-time challenge for the Profile Service payload (phase 1).
CREATE FUNCTION mdm.ota_challenge_new(ttl interval DEFAULT '1 hour')
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c text;
BEGIN
    IF ttl IS NULL OR ttl <= interval '0' OR ttl > interval '30 days' THEN
        RAISE EXCEPTION 'mdm.ota_challenge_new: ttl must be between 0 and 30 days'
            USING ERRCODE = '22023';
    END IF;
    c := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    INSERT INTO mdm.challenge (challenge_sha256, purpose, expires_at)
    VALUES (encode(sha256(convert_to(c, 'UTF8')), 'hex'), 'ota', now() + ttl);
    RETURN c;
END $$;
COMMENT ON FUNCTION mdm.ota_challenge_new(interval) IS
    'Returns a new one-time over-the-air enrollment challenge (Profile Service payload), '
    'valid for ttl (default 1 hour, at most 30 days). Only its SHA-256 is stored.';

CREATE TABLE mdm.ota_enrollment (
    id              bigserial PRIMARY KEY,
    udid            text NOT NULL CHECK (length(udid) BETWEEN 1 AND 128),
    phase           smallint NOT NULL CHECK (phase IN (2, 3)),
    signer_sha256   text NOT NULL CHECK (signer_sha256 ~ '^[0-9a-f]{64}$'),
    signer_subject  text NOT NULL,
    signer_issuer   text NOT NULL,
    challenge_id    bigint UNIQUE REFERENCES mdm.challenge (id),
    certificate_id  bigint REFERENCES mdm.certificate (id),
    attributes      jsonb NOT NULL CHECK (jsonb_typeof(attributes) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((phase = 2) = (challenge_id IS NOT NULL)),
    CHECK ((phase = 3) = (certificate_id IS NOT NULL))
);
CREATE INDEX ota_enrollment_udid_idx ON mdm.ota_enrollment (udid);
COMMENT ON TABLE mdm.ota_enrollment IS
    'One row per accepted over-the-air enrollment message. Phase 2: signed by the device''s '
    'Apple-issued certificate (verified to ota_trust_file), spent challenge_id. Phase 3: '
    'signed by the identity certificate_id our CA issued for that UDID.';
COMMENT ON COLUMN mdm.ota_enrollment.attributes IS
    'The device attributes the message carried and its signature covers (UDID, SERIAL, '
    'PRODUCT, VERSION, IMEI, ICCID, MAC_ADDRESS_EN0, DEVICE_NAME, ...), CHALLENGE removed.';
COMMENT ON COLUMN mdm.ota_enrollment.signer_sha256 IS
    'SHA-256 of the DER certificate that signed the message.';

CREATE VIEW mdm.ota_enrollments AS
    SELECT id, udid, phase, attributes ->> 'SERIAL' AS serial_number,
           attributes ->> 'PRODUCT' AS product, attributes ->> 'VERSION' AS version,
           attributes ->> 'IMEI' AS imei, attributes ->> 'ICCID' AS iccid,
           attributes ->> 'MAC_ADDRESS_EN0' AS mac_address_en0,
           attributes ->> 'DEVICE_NAME' AS device_name, signer_subject, signer_issuer,
           signer_sha256, certificate_id, created_at
    FROM mdm.ota_enrollment;
COMMENT ON VIEW mdm.ota_enrollments IS
    'Over-the-air enrollments as an operator reads them: the signed device attributes of '
    'each accepted phase-2 and phase-3 message.';

REVOKE ALL ON FUNCTION mdm.ota_challenge_new(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mdm.ota_challenge_new(interval) TO mdm_operator;
GRANT SELECT ON mdm.ota_enrollments TO mdm_operator;
