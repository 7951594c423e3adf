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
