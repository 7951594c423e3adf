-- 002_scep: the CA's own records (current, next and previous CA
-- certificates), SCEP transactions (idempotent retries, manual approval),
-- and the SQL interface of the SCEP issue: one-time challenges and
-- revocation.

CREATE TABLE mdm.ca (
    id             serial PRIMARY KEY,
    certificate_id bigint NOT NULL UNIQUE REFERENCES mdm.certificate (id),
    key_uri        text NOT NULL CHECK (length(key_uri) BETWEEN 1 AND 4096),
    state          text NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    activated_at   timestamptz,
    retired_at     timestamptz
);
CREATE UNIQUE INDEX ca_one_active ON mdm.ca (state) WHERE state = 'active';
CREATE UNIQUE INDEX ca_one_next ON mdm.ca (state) WHERE state = 'next';
COMMENT ON TABLE mdm.ca IS
    'The CA certificates: one active (issues and signs), at most one next (staged by '
    '`mdmctl ca renew` or `rekey`, served by GetNextCACert, switched by `mdmctl ca activate`), '
    'and retired ones, whose certificates keep verifying until they expire.';
COMMENT ON COLUMN mdm.ca.key_uri IS
    'Where the CA private key is: a file path or a pkcs11: URI. The key never enters the database.';

-- Bumped on every change to mdm.ca; the FastCGI programs compare it with what
-- they loaded and reload the CA only when it moved.
CREATE SEQUENCE mdm.ca_generation;
CREATE FUNCTION mdm.ca_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('mdm.ca_generation');
    RETURN NULL;
END $$;
CREATE TRIGGER ca_touch AFTER INSERT OR UPDATE OR DELETE ON mdm.ca
    FOR EACH STATEMENT EXECUTE FUNCTION mdm.ca_touch();

CREATE TABLE mdm.scep_transaction (
    transaction_id  text PRIMARY KEY CHECK (length(transaction_id) BETWEEN 1 AND 128),
    signer_key_sha256 text NOT NULL CHECK (signer_key_sha256 ~ '^[0-9a-f]{64}$'),
    message_type    smallint NOT NULL CHECK (message_type IN (17, 19)),
    status          text NOT NULL CHECK (status IN ('pending', 'issued', 'rejected')),
    csr             bytea NOT NULL,
    subject         text NOT NULL,
    challenge_id    bigint REFERENCES mdm.challenge (id),
    renewal_of      bigint REFERENCES mdm.certificate (id),
    certificate_id  bigint REFERENCES mdm.certificate (id),
    udid            text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz,
    CHECK ((status = 'issued') = (certificate_id IS NOT NULL))
);
COMMENT ON TABLE mdm.scep_transaction IS
    'One row per SCEP transactionID that was authorised. A retry with the same '
    'transactionID and key gets the same answer; the same transactionID with another key is '
    'refused. With manual approval (config scep_approval = manual) rows wait as pending '
    'until mdm.scep_approve or mdm.scep_reject.';
COMMENT ON COLUMN mdm.scep_transaction.signer_key_sha256 IS
    'SHA-256 of the DER SubjectPublicKeyInfo of the request''s key.';

-- A new one-time SCEP challenge; only its SHA-256 is stored.
CREATE FUNCTION mdm.scep_challenge_new(udid text DEFAULT NULL, ttl interval DEFAULT '1 hour')
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c text;
BEGIN
    IF ttl IS NULL OR ttl <= interval '0' OR ttl > interval '30 days' THEN
        RAISE EXCEPTION 'mdm.scep_challenge_new: ttl must be between 0 and 30 days'
            USING ERRCODE = '22023';
    END IF;
    -- Two v4 UUIDs: 244 random bits from PostgreSQL's strong random source.
    c := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    INSERT INTO mdm.challenge (challenge_sha256, purpose, udid, expires_at)
    VALUES (encode(sha256(convert_to(c, 'UTF8')), 'hex'), 'scep', udid, now() + ttl);
    RETURN c;
END $$;
COMMENT ON FUNCTION mdm.scep_challenge_new(text, interval) IS
    'Returns a new one-time SCEP challengePassword, optionally bound to a device UDID, '
    'valid for ttl (default 1 hour, at most 30 days). Only its SHA-256 is stored.';

CREATE FUNCTION mdm.certificate_revoke(serial text, reason text DEFAULT 'unspecified')
RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    IF reason IS NULL OR reason NOT IN ('unspecified', 'keyCompromise', 'cACompromise',
            'affiliationChanged', 'superseded', 'cessationOfOperation', 'certificateHold',
            'removeFromCRL', 'privilegeWithdrawn', 'aACompromise') THEN
        RAISE EXCEPTION 'mdm.certificate_revoke: reason must be an RFC 5280 CRLReason name'
            USING ERRCODE = '22023';
    END IF;
    UPDATE mdm.certificate c
       SET revoked_at = now(), revocation_reason = reason
     WHERE c.serial = upper(ltrim(certificate_revoke.serial, '0'))
       AND c.kind = 'device' AND c.revoked_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'mdm.certificate_revoke: no unrevoked device certificate with serial %',
            serial USING ERRCODE = 'P0002';
    END IF;
END $$;
COMMENT ON FUNCTION mdm.certificate_revoke(text, text) IS
    'Revokes the device certificate with this serial (hex): the server refuses it from now '
    'on and GetCRL lists it. reason is an RFC 5280 CRLReason name.';

CREATE FUNCTION mdm.scep_approve(transaction_id text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE mdm.scep_transaction t SET decided_at = now()
     WHERE t.transaction_id = scep_approve.transaction_id AND t.status = 'pending'
       AND t.decided_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mdm.scep_approve: no pending transaction %', transaction_id
            USING ERRCODE = 'P0002';
    END IF;
END $$;
COMMENT ON FUNCTION mdm.scep_approve(text) IS
    'Approves a pending SCEP request; the certificate is issued at the client''s next CertPoll.';

CREATE FUNCTION mdm.scep_reject(transaction_id text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE mdm.scep_transaction t SET status = 'rejected', decided_at = now()
     WHERE t.transaction_id = scep_reject.transaction_id AND t.status = 'pending';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mdm.scep_reject: no pending transaction %', transaction_id
            USING ERRCODE = 'P0002';
    END IF;
END $$;
COMMENT ON FUNCTION mdm.scep_reject(text) IS
    'Rejects a pending SCEP request; the client''s next CertPoll gets FAILURE badRequest.';

CREATE VIEW mdm.scep_pending AS
    SELECT transaction_id, subject, udid, message_type, created_at, decided_at IS NOT NULL AS approved
    FROM mdm.scep_transaction WHERE status = 'pending';
COMMENT ON VIEW mdm.scep_pending IS 'SCEP requests waiting for an operator (manual approval).';
