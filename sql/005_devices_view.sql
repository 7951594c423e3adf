-- 005_devices_view: mdm.devices becomes what the admin API promises, one
-- row per enrollment (the device channel, and each user channel of a Mac
-- or Shared iPad) with identity, push and last seen, plus how many
-- commands wait for it.  A device that never enrolled still shows, once,
-- with channel NULL.

DROP VIEW mdm.devices;
CREATE VIEW mdm.devices AS
    SELECT d.udid, e.channel, e.user_id, e.user_short_name, e.user_long_name,
           d.serial_number, d.model, d.model_name, d.product_name, d.os_version,
           d.build_version, d.imei, d.meid, d.device_name, d.created_at,
           coalesce(e.last_seen_at, d.last_seen_at) AS last_seen_at,
           coalesce(e.active, false) AS enrolled, e.topic,
           e.push_token IS NOT NULL AS has_push_token, e.awaiting_configuration,
           e.authenticated_at, e.token_updated_at, e.checked_out_at,
           c.serial AS identity_serial, c.sha256 AS identity_sha256,
           c.not_after AS identity_not_after, c.revoked_at AS identity_revoked_at,
           d.bootstrap_token IS NOT NULL AS has_bootstrap_token,
           (SELECT count(*) FROM mdm.command_queue q
             WHERE q.enrollment_id = e.id AND q.status = 'queued') AS queued_commands
    FROM mdm.device d
    LEFT JOIN mdm.enrollment e ON e.udid = d.udid
    LEFT JOIN mdm.certificate c ON c.id = d.identity_certificate_id;
COMMENT ON VIEW mdm.devices IS
    'One row per enrollment: the device channel (channel device, user_id NULL) and each user '
    'channel, with the device''s identity certificate, push state, last contact and the '
    'number of queued commands. Devices that never enrolled appear once with channel NULL.';
GRANT SELECT ON mdm.devices TO mdm_operator;
