-- 012_challenge_origin: who bound a challenge to a UDID (issue 13, 1).
-- An operator's mdm.scep_challenge_new(udid) vouches for the device; OTA
-- phase 2 only repeats the UDID the device's signed attributes claim, and
-- nothing ties that UDID to the Apple certificate that signed them.  So a
-- challenge of origin 'ota' may enroll a UDID that is not actively
-- enrolled but never takes over one that is (lib/checkin.c).

ALTER TABLE mdm.challenge
    ADD COLUMN origin text NOT NULL DEFAULT 'operator' CHECK (origin IN ('operator', 'ota'));
COMMENT ON COLUMN mdm.challenge.origin IS
    'Who made it: operator (mdm.scep_challenge_new, GET /enroll, mdmctl), or ota (minted by '
    'over-the-air phase 2 for the UDID the device claimed: never takes over an actively '
    'enrolled UDID).';

CREATE FUNCTION mdm.ota_scep_challenge_new(udid text, ttl interval, topic text)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c text;
BEGIN
    c := mdm.scep_challenge_new(ota_scep_challenge_new.udid, ota_scep_challenge_new.ttl,
                                ota_scep_challenge_new.topic);
    UPDATE mdm.challenge h SET origin = 'ota'
     WHERE h.challenge_sha256 = encode(sha256(convert_to(c, 'UTF8')), 'hex');
    RETURN c;
END $$;
COMMENT ON FUNCTION mdm.ota_scep_challenge_new(text, interval, text) IS
    'enroll.fcgi''s, for OTA phase 2: mdm.scep_challenge_new(udid, ttl, topic) recorded with '
    'origin ota. Not granted: an operator''s challenge is mdm.scep_challenge_new.';
REVOKE ALL ON FUNCTION mdm.ota_scep_challenge_new(text, interval, text) FROM PUBLIC;
