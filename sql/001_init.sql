-- 001_init: the schema mdm and the tables the first issues build on:
-- device, certificate (everything the CA issues or trusts), challenge.
-- Tables have singular names; the plural names are the admin views
-- (mdm.devices, mdm.certificates), which later migrations widen as the
-- data grows (enrollments, queue).  Every object carries a COMMENT, so
-- `\d+` in psql documents it.

CREATE TABLE mdm.device (
    udid           text PRIMARY KEY CHECK (length(udid) BETWEEN 1 AND 128),
    serial_number  text CHECK (length(serial_number) <= 64),
    model          text,
    model_name     text,
    product_name   text,
    os_version     text,
    build_version  text,
    imei           text,
    meid           text,
    device_name    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz
);
COMMENT ON TABLE mdm.device IS
    'One row per device (UDID) that ever authenticated; never deleted by the server.';
COMMENT ON COLUMN mdm.device.udid IS 'Apple UDID as the device reports it in Authenticate.';
COMMENT ON COLUMN mdm.device.last_seen_at IS 'Last authenticated check-in or command request.';

CREATE TABLE mdm.certificate (
    id                bigserial PRIMARY KEY,
    sha256            text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    serial            text NOT NULL CHECK (serial ~ '^[0-9A-F]+$'),
    issuer            text NOT NULL,
    subject           text NOT NULL,
    not_before        timestamptz NOT NULL,
    not_after         timestamptz NOT NULL,
    der               bytea NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('ca', 'ra', 'device', 'server', 'push')),
    udid              text REFERENCES mdm.device (udid) ON DELETE SET NULL,
    renewal_of        bigint REFERENCES mdm.certificate (id),
    transaction_id    text,
    issued_at         timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz,
    revocation_reason text,
    UNIQUE (issuer, serial),
    CHECK (not_after > not_before),
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
);
CREATE INDEX certificate_udid_idx ON mdm.certificate (udid);
COMMENT ON TABLE mdm.certificate IS
    'Every certificate the CA issued (kind device), and the CA, RA, server and push '
    'certificates the server uses. Private keys are never stored here.';
COMMENT ON COLUMN mdm.certificate.sha256 IS 'SHA-256 of the DER, lower-case hex: the identity key.';
COMMENT ON COLUMN mdm.certificate.serial IS 'Serial number, upper-case hex.';
COMMENT ON COLUMN mdm.certificate.renewal_of IS 'The certificate this one renewed (SCEP RenewalReq).';
COMMENT ON COLUMN mdm.certificate.transaction_id IS 'SCEP transactionID of the issuing request.';
COMMENT ON COLUMN mdm.certificate.revoked_at IS 'Set to revoke; the server then refuses the certificate.';

CREATE TABLE mdm.challenge (
    id                  bigserial PRIMARY KEY,
    challenge_sha256    text NOT NULL UNIQUE CHECK (challenge_sha256 ~ '^[0-9a-f]{64}$'),
    purpose             text NOT NULL DEFAULT 'scep' CHECK (purpose IN ('scep', 'ota')),
    udid                text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz,
    used_by_certificate bigint REFERENCES mdm.certificate (id),
    CHECK (expires_at > created_at)
);
COMMENT ON TABLE mdm.challenge IS
    'One-time challenges (SCEP challengePassword, OTA). Only the SHA-256 of a challenge '
    'is stored; the challenge itself exists only in the profile that carries it.';
COMMENT ON COLUMN mdm.challenge.udid IS 'Device the challenge is bound to (OTA phase 2), or NULL.';
COMMENT ON COLUMN mdm.challenge.used_at IS 'Set when spent: a challenge is accepted once.';

-- The admin views: what an operator reads.  Later migrations widen them.
CREATE VIEW mdm.devices AS
    SELECT udid, serial_number, model, model_name, product_name, os_version,
           build_version, imei, meid, device_name, created_at, last_seen_at
    FROM mdm.device;
COMMENT ON VIEW mdm.devices IS 'Devices as an operator sees them (widened with enrollments later).';

CREATE VIEW mdm.certificates AS
    SELECT serial, subject, issuer, sha256, not_before, not_after, revoked_at,
           revocation_reason, udid, kind, issued_at
    FROM mdm.certificate;
COMMENT ON VIEW mdm.certificates IS
    'Certificates the CA issued or the server uses: serial, subject, SHA-256, validity, '
    'revocation and the device they belong to.';
