-- 003_checkin: push certificates, enrollments (device and user channels),
-- the identity binding between a UDID and the certificate it was issued,
-- and the history of check-in messages.

-- A certificate's device may be known before the device ever
-- authenticates (a SCEP challenge bound to a UDID): no foreign key.
ALTER TABLE mdm.certificate DROP CONSTRAINT IF EXISTS certificate_udid_fkey;
COMMENT ON COLUMN mdm.certificate.udid IS
    'The device this certificate belongs to: set at issuance when the SCEP challenge or the '
    'renewed certificate named one, else at its first Authenticate. A device certificate '
    'never moves to another UDID.';

CREATE TABLE mdm.push_cert (
    topic          text PRIMARY KEY CHECK (topic ~ '^com\.apple\.mgmt\.[A-Za-z0-9._-]{1,200}$'),
    certificate_id bigint NOT NULL UNIQUE REFERENCES mdm.certificate (id),
    key_uri        text NOT NULL CHECK (length(key_uri) BETWEEN 1 AND 4096),
    imported_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mdm.push_cert IS
    'The MDM push certificates (APNs), one per topic. `mdmctl push-cert import` adds one or '
    'replaces the certificate of an existing topic (a renewal); enrollments refer to the '
    'topic, so a replacement touches none of them. Earlier certificates stay in '
    'mdm.certificate (kind push).';
COMMENT ON COLUMN mdm.push_cert.topic IS
    'The certificate''s subject UID, com.apple.mgmt.External.<uuid>: the APNs topic.';
COMMENT ON COLUMN mdm.push_cert.key_uri IS
    'Where the private key is: a file path or a pkcs11: URI. The key never enters the database.';

CREATE VIEW mdm.push_certs AS
    SELECT p.topic, c.subject, c.serial, c.sha256, c.not_before, c.not_after,
           c.not_after < now() AS expired, p.key_uri, p.imported_at
    FROM mdm.push_cert p JOIN mdm.certificate c ON c.id = p.certificate_id;
COMMENT ON VIEW mdm.push_certs IS 'Push certificates by topic, with their validity.';

ALTER TABLE mdm.device
    ADD COLUMN identity_certificate_id bigint REFERENCES mdm.certificate (id),
    ADD COLUMN identity_bound_at timestamptz,
    ADD COLUMN bootstrap_token bytea CHECK (octet_length(bootstrap_token) <= 65536),
    ADD COLUMN bootstrap_token_at timestamptz;
COMMENT ON COLUMN mdm.device.identity_certificate_id IS
    'The identity certificate bound to this UDID by its last accepted Authenticate; every '
    'other check-in and command request must present it.';
COMMENT ON COLUMN mdm.device.bootstrap_token IS
    'The bootstrap token the device escrowed with SetBootstrapToken (a secret).';

CREATE TABLE mdm.enrollment (
    id                     bigserial PRIMARY KEY,
    udid                   text NOT NULL REFERENCES mdm.device (udid),
    user_id                text CHECK (length(user_id) BETWEEN 1 AND 128),
    channel                text GENERATED ALWAYS AS
                               (CASE WHEN user_id IS NULL THEN 'device' ELSE 'user' END) STORED,
    user_short_name        text,
    user_long_name         text,
    topic                  text,
    push_token             bytea CHECK (octet_length(push_token) <= 256),
    push_magic             text,
    unlock_token           bytea,
    awaiting_configuration boolean,
    active                 boolean NOT NULL DEFAULT false,
    authenticated_at       timestamptz,
    token_updated_at       timestamptz,
    checked_out_at         timestamptz,
    last_seen_at           timestamptz,
    UNIQUE NULLS NOT DISTINCT (udid, user_id)
);
COMMENT ON TABLE mdm.enrollment IS
    'One row per MDM channel: the device channel (user_id NULL) and each user channel '
    '(UserID of a macOS or Shared iPad user). Active from TokenUpdate until CheckOut or the '
    'next Authenticate; rows are never deleted, so the history stays.';
COMMENT ON COLUMN mdm.enrollment.push_token IS 'APNs device token from TokenUpdate (Token).';
COMMENT ON COLUMN mdm.enrollment.push_magic IS 'PushMagic: the value APNs pushes carry (a secret).';
COMMENT ON COLUMN mdm.enrollment.unlock_token IS 'UnlockToken for ClearPasscode (a secret).';

CREATE TABLE mdm.identity_binding (
    id                      bigserial PRIMARY KEY,
    udid                    text NOT NULL,
    certificate_id          bigint NOT NULL REFERENCES mdm.certificate (id),
    previous_certificate_id bigint REFERENCES mdm.certificate (id),
    reason                  text NOT NULL CHECK (reason IN
                                ('first', 'reenroll', 'challenge', 'renewal', 'takeover')),
    bound_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_binding_udid_idx ON mdm.identity_binding (udid);
COMMENT ON TABLE mdm.identity_binding IS
    'Every time a UDID was bound to an identity certificate by Authenticate, and why: first '
    '(no earlier binding), reenroll (the earlier certificate or enrollment had ended), '
    'challenge (issued against a SCEP challenge bound to this UDID), renewal (renewed from '
    'the bound certificate), takeover (checkin_allow_takeover = yes let it replace a valid '
    'binding).';

CREATE TABLE mdm.checkin (
    id             bigserial PRIMARY KEY,
    udid           text NOT NULL,
    user_id        text,
    message_type   text NOT NULL,
    certificate_id bigint REFERENCES mdm.certificate (id),
    auth           text NOT NULL CHECK (auth IN ('tls', 'signature', 'both')),
    received_at    timestamptz NOT NULL DEFAULT now(),
    body           bytea
);
CREATE INDEX checkin_udid_idx ON mdm.checkin (udid, received_at);
COMMENT ON TABLE mdm.checkin IS
    'Every accepted check-in message, with the certificate that authenticated it and how '
    '(TLS client certificate, Mdm-Signature or both). body is the raw plist, except for '
    'messages carrying secrets (SetBootstrapToken), where it is NULL.';

-- The admin views, widened: one row per device with its device channel.
DROP VIEW mdm.devices;
CREATE VIEW mdm.devices AS
    SELECT d.udid, d.serial_number, d.model, d.model_name, d.product_name, d.os_version,
           d.build_version, d.imei, d.meid, d.device_name, d.created_at, d.last_seen_at,
           coalesce(e.active, false) AS enrolled, e.topic,
           e.push_token IS NOT NULL AS has_push_token, e.awaiting_configuration,
           e.authenticated_at, e.token_updated_at, e.checked_out_at,
           c.serial AS identity_serial, c.sha256 AS identity_sha256,
           c.not_after AS identity_not_after, c.revoked_at AS identity_revoked_at,
           d.bootstrap_token IS NOT NULL AS has_bootstrap_token
    FROM mdm.device d
    LEFT JOIN mdm.enrollment e ON e.udid = d.udid AND e.user_id IS NULL
    LEFT JOIN mdm.certificate c ON c.id = d.identity_certificate_id;
COMMENT ON VIEW mdm.devices IS
    'Devices as an operator sees them: identity, device-channel enrollment, push token and '
    'last contact.';

CREATE VIEW mdm.enrollments AS
    SELECT e.id, e.udid, e.channel, e.user_id, e.user_short_name, e.user_long_name, e.topic,
           e.active, e.push_token IS NOT NULL AS has_push_token, e.awaiting_configuration,
           e.authenticated_at, e.token_updated_at, e.checked_out_at, e.last_seen_at
    FROM mdm.enrollment e;
COMMENT ON VIEW mdm.enrollments IS
    'Every channel (device and user) with its state; secrets (push magic, unlock token) left out.';

CREATE VIEW mdm.identity_bindings AS
    SELECT b.udid, b.reason, b.bound_at, c.serial, c.sha256, p.serial AS previous_serial
    FROM mdm.identity_binding b
    JOIN mdm.certificate c ON c.id = b.certificate_id
    LEFT JOIN mdm.certificate p ON p.id = b.previous_certificate_id;
COMMENT ON VIEW mdm.identity_bindings IS
    'History of UDID-to-certificate bindings; reason takeover marks the ones only '
    'checkin_allow_takeover allowed.';
