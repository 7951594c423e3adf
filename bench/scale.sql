-- bench/scale.sql: grows the bench database to n enrolled devices shaped
-- like a real fleet, with q commands waiting in the queue, so that the hot
-- paths can be measured and their plans read at 1,000,000 rows (issue 15).
--
--   psql -v n=DEVICES [-v q=QUEUED] [-v f=FINISHED] [-v checkins=PER_DEVICE] -f bench/scale.sql
--
-- q defaults to n / 10, f (commands answered, with their results) to q,
-- checkins (history rows per device) to 2.  Run as the superuser against a
-- migrated database with an active CA (mdmctl ca init).  The script only
-- grows: run again with a larger n or q and it adds the difference (what is
-- there is counted in bench.scale), so the same script seeds 1,000 and then
-- 1,000,000.  Every row goes through the tables' constraints, foreign keys
-- and triggers (the command queue's marks the push state); nothing is
-- copied in past them.
--
-- Per device: an mdm.device row (a UDID in Apple's formats, a serial
-- number, model and OS), the identity certificate our CA issued it
-- (kind device, ~800 bytes of DER: not a parseable certificate, but no
-- hot path reads the DER of a certificate it was not given: lookups are
-- by sha256, id or serial), the SCEP transaction and the one-time
-- challenge that bought it, its identity binding, an active device-channel
-- enrollment with topic, push token and push magic, its push state, and a
-- check-in history (Authenticate, TokenUpdate, ...).  Commands are spread
-- over the enrollments, one mdm.command each as the cmd_ builders make.
--
-- Set-based (INSERT ... SELECT generate_series), one transaction; then
-- VACUUM (FREEZE, ANALYZE) and CHECKPOINT, so that no hint-bit writing,
-- autovacuum or checkpoint of the load runs inside a timed window.

\set ON_ERROR_STOP on
\if :{?n}
\else
DO $$ BEGIN RAISE EXCEPTION 'bench/scale.sql: give the number of devices, psql -v n=1000000'; END $$;
\endif
\if :{?q}
\else
SELECT :n / 10 AS q \gset
\endif
\if :{?f}
\else
\set f :q
\endif
\if :{?checkins}
\else
\set checkins 2
\endif

BEGIN;

-- What earlier runs made: the script's counters, outside schema mdm.
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.scale (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    devices  bigint NOT NULL DEFAULT 0,
    queued   bigint NOT NULL DEFAULT 0,
    finished bigint NOT NULL DEFAULT 0
);
INSERT INTO bench.scale DEFAULT VALUES ON CONFLICT DO NOTHING;
SELECT devices AS have_n, queued AS have_q, finished AS have_f FROM bench.scale FOR UPDATE \gset
-- Never fewer devices than before: commands are spread over all of them.
SELECT greatest(:n, :have_n) AS n, :n >= 12800000 AS too_many \gset
\if :too_many
DO $$ BEGIN RAISE EXCEPTION 'bench/scale.sql: at most 12,799,999 devices (bench.udid)'; END $$;
\endif

-- Device i's values are functions of i alone, so that a later run can find
-- a device by its number (the commands' targets) through the indexes.
-- UDIDs: four in five in the format of devices since 2018 (8 hex digits of
-- the chip, a dash, the 16 of the ECID: i times an odd number modulo 2^56,
-- a bijection, so unique while i * m fits a bigint: i < 12,800,000), the
-- rest the 40 hex digits of older ones (i is in them, so unique too).
CREATE OR REPLACE FUNCTION bench.udid(i bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN i % 5 <> 0
        THEN (ARRAY['00008030', '00008101', '00008110', '00008120', '00008027', '00008103'])
                 [1 + i % 6]
             || '-' || upper(lpad(to_hex((i * 720575940379) & 72057594037927935), 16, '0'))
        ELSE md5('udid' || i) || lpad(to_hex(i), 8, '0')
    END
$$;

-- The active CA's subject: the issuer of every certificate it issued.
SELECT coalesce((SELECT c.subject FROM mdm.ca a JOIN mdm.certificate c ON c.id = a.certificate_id
                  WHERE a.state = 'active'), 'CN=MDM Device CA') AS issuer,
       greatest(:n - :have_n, 0) AS add_n,
       'com.apple.mgmt.External.bench' AS topic
\gset

-- Ids reserved up front: each device's certificate, challenge and
-- enrollment are base + k for its k-th new row, so the rows that refer to
-- them need no join to find them.
SELECT nextval('mdm.certificate_id_seq') - 1 AS cert0,
       nextval('mdm.challenge_id_seq') - 1 AS chal0,
       nextval('mdm.enrollment_id_seq') - 1 AS enr0 \gset
SELECT setval('mdm.certificate_id_seq', :cert0 + greatest(:add_n, 1)),
       setval('mdm.challenge_id_seq', :chal0 + greatest(:add_n, 1)),
       setval('mdm.enrollment_id_seq', :enr0 + greatest(:add_n, 1)) \g /dev/null

-- Device i = have_n + 1..n.  Enrolled over the last two years; the
-- identity certificate current now was issued within the last 300 days
-- (one year's validity, so every one is valid).  k, which numbers the new
-- rows' ids, follows the UDIDs: the five indexes on udid (device,
-- certificate, enrollment, identity_binding, checkin) then fill in order
-- instead of at random (some 20 s less at 1,000,000).
CREATE TEMP TABLE s ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY u.udid) AS k, u.i, u.udid,
       now() - make_interval(secs => (abs(hashint8extended(u.i, 1)) % (730 * 86400))::float8)
           AS enrolled_at,
       now() - make_interval(secs => (abs(hashint8extended(u.i, 2)) % (300 * 86400))::float8)
           AS issued_at,
       (abs(hashint8extended(u.i, 3)) % 10)::int AS kind
  FROM (SELECT i, bench.udid(i) AS udid FROM generate_series(:have_n + 1, :n) i) u
 ORDER BY k;
ANALYZE s;

-- Identity certificates: CN is the UDID; DER is a SEQUENCE header and
-- 784 bytes from md5 (of the size of an RSA-2048 device certificate).
INSERT INTO mdm.certificate (id, sha256, serial, issuer, subject, not_before, not_after, der,
                             kind, udid, transaction_id, issued_at)
SELECT :cert0 + k, encode(sha256(convert_to('bench-certificate-' || i, 'UTF8')), 'hex'),
       ltrim(upper(md5('bench-serial-' || i)), '0'), :'issuer', 'CN=' || udid,
       issued_at - interval '1 minute', issued_at + interval '365 days',
       '\x3082031c30820204a003020102'::bytea || decode(repeat(md5('der' || i), 49), 'hex'),
       'device', udid, upper(md5('bench-transaction-' || i)), issued_at
  FROM s;

-- The SCEP challenges the enrollment profiles carried, spent.
INSERT INTO mdm.challenge (id, challenge_sha256, purpose, udid, created_at, expires_at, used_at,
                           used_by_certificate, topic, origin)
SELECT :chal0 + k, encode(sha256(convert_to('bench-challenge-' || i, 'UTF8')), 'hex'), 'scep',
       CASE WHEN kind = 0 THEN udid END, issued_at - interval '5 minutes',
       issued_at + interval '55 minutes', issued_at, :cert0 + k, :'topic', 'operator'
  FROM s;

INSERT INTO mdm.scep_transaction (transaction_id, signer_key_sha256, message_type, status, csr,
                                  subject, challenge_id, certificate_id, udid, created_at,
                                  decided_at)
SELECT upper(md5('bench-transaction-' || i)),
       encode(sha256(convert_to('bench-key-' || i, 'UTF8')), 'hex'), 19, 'issued',
       '\x308202a330820189020100'::bytea || decode(repeat(md5('csr' || i), 42), 'hex'),
       'CN=' || udid, :chal0 + k, :cert0 + k, CASE WHEN kind = 0 THEN udid END,
       issued_at - interval '1 minute', issued_at - interval '1 minute'
  FROM s;

INSERT INTO mdm.device (udid, serial_number, model, model_name, product_name, os_version,
                        build_version, imei, device_name, created_at, updated_at, last_seen_at,
                        identity_certificate_id, identity_bound_at)
SELECT udid,
       translate(upper(substr(md5('sn' || i), 1, CASE WHEN i % 3 = 0 THEN 12 ELSE 10 END)),
                 '0123456789ABCDEF', 'C7DFGHJKLMNPQRTV'),
       m.model, m.model_name, m.model, m.os, m.build,
       CASE WHEN m.model_name = 'iPhone'
            THEN '35' || lpad((abs(hashint8extended(i, 4)) % 10000000000000)::text, 13, '0') END,
       m.model_name || ' ' || i, enrolled_at, issued_at, now() - make_interval(secs => (i % 86400)::float8),
       :cert0 + k, issued_at
  FROM s
  JOIN (VALUES (0, 'iPhone15,2', 'iPhone', '17.4.1', '21E236'),
               (1, 'iPhone14,5', 'iPhone', '17.3.1', '21D61'),
               (2, 'iPhone16,1', 'iPhone', '17.5', '21F79'),
               (3, 'iPhone15,4', 'iPhone', '17.4.1', '21E236'),
               (4, 'iPhone14,7', 'iPhone', '16.7.8', '20H343'),
               (5, 'iPhone13,2', 'iPhone', '17.2.1', '21C66'),
               (6, 'iPad13,18', 'iPad', '17.4.1', '21E236'),
               (7, 'iPad14,3', 'iPad', '17.5', '21F79'),
               (8, 'Mac14,2', 'Mac', '14.4.1', '23E224'),
               (9, 'Mac15,6', 'Mac', '14.5', '23F79'))
       AS m(kind, model, model_name, os, build) USING (kind);

INSERT INTO mdm.identity_binding (udid, certificate_id, reason, bound_at)
SELECT udid, :cert0 + k, CASE WHEN kind = 0 THEN 'challenge' ELSE 'first' END, issued_at
  FROM s;

INSERT INTO mdm.enrollment (id, udid, topic, push_token, push_magic, awaiting_configuration,
                            active, authenticated_at, token_updated_at, last_seen_at, idle_at)
SELECT :enr0 + k, udid, :'topic', sha256(convert_to('bench-token-' || i, 'UTF8')),
       upper(md5('bench-magic-' || i)::uuid::text), false, true, issued_at,
       issued_at + interval '2 seconds', now() - make_interval(secs => (i % 86400)::float8),
       now() - make_interval(secs => (i % 86400)::float8)
  FROM s;

-- Woken before, answered by Apple: nothing pending until commands come.
INSERT INTO mdm.push_state (enrollment_id, pending, request_seq, requested_at, last_push_at,
                            last_apns_id, last_status, last_result_at, pushes, next_attempt_at,
                            quiet_until)
SELECT :enr0 + k, false, 1 + i % 7, issued_at, issued_at, upper(md5('apns' || i)::uuid::text),
       200, issued_at, 1 + i % 7, issued_at, issued_at
  FROM s;

-- The check-in history: Authenticate, then TokenUpdates, secrets redacted
-- as checkin.fcgi stores them (017).
INSERT INTO mdm.checkin (udid, message_type, certificate_id, auth, received_at, body)
SELECT s.udid, CASE WHEN c = 1 THEN 'Authenticate' ELSE 'TokenUpdate' END, :cert0 + s.k, 'tls',
       s.issued_at + make_interval(secs => c - 1),
       convert_to(CASE WHEN c = 1 THEN
           '<?xml version="1.0" encoding="UTF-8"?>' || E'\n'
           || '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
           || '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">' || E'\n'
           || E'<plist version="1.0">\n<dict>\n'
           || E'\t<key>BuildVersion</key>\n\t<string>21E236</string>\n'
           || E'\t<key>IMEI</key>\n\t<string>35 000000 000000 0</string>\n'
           || E'\t<key>MessageType</key>\n\t<string>Authenticate</string>\n'
           || E'\t<key>Model</key>\n\t<string>iPhone15,2</string>\n'
           || E'\t<key>ModelName</key>\n\t<string>iPhone</string>\n'
           || E'\t<key>OSVersion</key>\n\t<string>17.4.1</string>\n'
           || E'\t<key>ProductName</key>\n\t<string>iPhone15,2</string>\n'
           || E'\t<key>SerialNumber</key>\n\t<string>' || upper(substr(md5('sn' || s.i), 1, 10))
           || E'</string>\n'
           || E'\t<key>Topic</key>\n\t<string>' || :'topic' || E'</string>\n'
           || E'\t<key>UDID</key>\n\t<string>' || s.udid || E'</string>\n'
           || E'</dict>\n</plist>\n'
       ELSE
           '<?xml version="1.0" encoding="UTF-8"?>' || E'\n'
           || '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
           || '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">' || E'\n'
           || E'<plist version="1.0">\n<dict>\n'
           || E'\t<key>AwaitingConfiguration</key>\n\t<false/>\n'
           || E'\t<key>MessageType</key>\n\t<string>TokenUpdate</string>\n'
           || E'\t<key>PushMagic</key>\n\t<string>(redacted)</string>\n'
           || E'\t<key>Token</key>\n\t<string>(redacted)</string>\n'
           || E'\t<key>Topic</key>\n\t<string>' || :'topic' || E'</string>\n'
           || E'\t<key>UDID</key>\n\t<string>' || s.udid || E'</string>\n'
           || E'\t<key>UnlockToken</key>\n\t<string>(redacted)</string>\n'
           || E'</dict>\n</plist>\n'
       END, 'UTF8')
  FROM s CROSS JOIN generate_series(1, :checkins) c;

-- Commands: queued ones j = have_q+1..q, answered ones after them, each to
-- the device numbered 1 + (j * prime) mod n (distinct while j <= n).
CREATE TEMP TABLE cmd ON COMMIT DROP AS
SELECT j, queued, upper(md5('bench-command-' || j)::uuid::text) AS uuid,
       (ARRAY['DeviceInformation', 'ProfileList', 'InstalledApplicationList', 'SecurityInfo',
              'CertificateList'])[1 + abs(j) % 5] AS request_type,
       e.id AS enrollment_id, e.udid,
       now() - make_interval(secs => (abs(hashint8extended(j, 5)) % (7 * 86400))::float8) AS at
  FROM (SELECT j, true AS queued FROM generate_series(:have_q + 1, :q) j
        UNION ALL
        SELECT -j, false FROM generate_series(:have_f + 1, :f) j) c
  JOIN mdm.enrollment e
    ON e.udid = bench.udid(1 + (abs(c.j) * CASE WHEN c.queued THEN 7919 ELSE 7907 END) % :n)
   AND e.user_id IS NULL;

INSERT INTO mdm.command (command_uuid, request_type, plist, created_at, created_by)
SELECT uuid, request_type,
       '<?xml version="1.0" encoding="UTF-8"?>' || E'\n'
       || '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
       || '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">' || E'\n'
       || E'<plist version="1.0">\n<dict>\n'
       || E'\t<key>CommandUUID</key>\n\t<string>' || uuid || E'</string>\n'
       || E'\t<key>Command</key>\n\t<dict>\n'
       || E'\t\t<key>RequestType</key>\n\t\t<string>' || request_type || E'</string>\n'
       || CASE WHEN request_type = 'DeviceInformation' THEN
              E'\t\t<key>Queries</key>\n\t\t<array>\n'
              || E'\t\t\t<string>DeviceName</string>\n\t\t\t<string>OSVersion</string>\n'
              || E'\t\t\t<string>BuildVersion</string>\n\t\t\t<string>ModelName</string>\n'
              || E'\t\t\t<string>Model</string>\n\t\t\t<string>ProductName</string>\n'
              || E'\t\t\t<string>SerialNumber</string>\n\t\t\t<string>UDID</string>\n'
              || E'\t\t\t<string>IMEI</string>\n\t\t\t<string>MEID</string>\n'
              || E'\t\t\t<string>WiFiMAC</string>\n\t\t\t<string>BluetoothMAC</string>\n'
              || E'\t\t\t<string>AvailableDeviceCapacity</string>\n'
              || E'\t\t\t<string>DeviceCapacity</string>\n'
              || E'\t\t\t<string>BatteryLevel</string>\n\t\t\t<string>IsSupervised</string>\n'
              || E'\t\t</array>\n'
          ELSE '' END
       || E'\t</dict>\n</dict>\n</plist>\n',
       at, 'helpdesk'
  FROM cmd;

-- One in ten queued commands was delivered once and not answered yet.
INSERT INTO mdm.command_queue (enrollment_id, command_uuid, status, queued_at, delivered_at,
                               delivered_count, finished_at)
SELECT enrollment_id, uuid, CASE WHEN queued THEN 'queued' ELSE 'acknowledged' END, at,
       CASE WHEN NOT queued OR j % 10 = 0 THEN at + interval '3 seconds' END,
       CASE WHEN NOT queued OR j % 10 = 0 THEN 1 ELSE 0 END,
       CASE WHEN NOT queued THEN at + interval '4 seconds' END
  FROM cmd;

INSERT INTO mdm.command_result (enrollment_id, command_uuid, status, result, result_json,
                                received_at)
SELECT enrollment_id, uuid, 'Acknowledged',
       '<?xml version="1.0" encoding="UTF-8"?>' || E'\n'
       || '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
       || '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">' || E'\n'
       || E'<plist version="1.0">\n<dict>\n'
       || E'\t<key>CommandUUID</key>\n\t<string>' || uuid || E'</string>\n'
       || E'\t<key>SecurityInfo</key>\n\t<dict>\n'
       || E'\t\t<key>HardwareEncryptionCaps</key>\n\t\t<integer>3</integer>\n'
       || E'\t\t<key>PasscodeCompliant</key>\n\t\t<true/>\n'
       || E'\t\t<key>PasscodeCompliantWithProfiles</key>\n\t\t<true/>\n'
       || E'\t\t<key>PasscodePresent</key>\n\t\t<true/>\n'
       || E'\t</dict>\n'
       || E'\t<key>Status</key>\n\t<string>Acknowledged</string>\n'
       || E'\t<key>UDID</key>\n\t<string>' || udid || E'</string>\n'
       || E'</dict>\n</plist>\n',
       jsonb_build_object('CommandUUID', uuid, 'Status', 'Acknowledged', 'UDID', udid,
                          'SecurityInfo', jsonb_build_object('HardwareEncryptionCaps', 3,
                              'PasscodeCompliant', true, 'PasscodeCompliantWithProfiles', true,
                              'PasscodePresent', true)),
       at + interval '4 seconds'
  FROM cmd WHERE NOT queued;

UPDATE bench.scale SET devices = :n, queued = greatest(queued, :q), finished = greatest(finished, :f);
COMMIT;

VACUUM (FREEZE, ANALYZE) mdm.challenge, mdm.certificate, mdm.scep_transaction, mdm.device,
    mdm.identity_binding, mdm.enrollment, mdm.push_state, mdm.checkin, mdm.command,
    mdm.command_queue, mdm.command_result;
CHECKPOINT;
