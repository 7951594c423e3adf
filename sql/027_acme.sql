-- 027_acme: the ACME server for Apple devices (issue 18): RFC 8555 with
-- the device-attest-01 challenge of draft-acme-device-attest, as the
-- com.apple.security.acme payload (HardwareBound, Attest) uses it.
-- acme.fcgi (lib/acme.c) runs each request as few statements as it can:
-- mdm.acme_begin (the nonce and the account key, one round trip) and one
-- function per endpoint.  docs/ACME.md explains the flow and the policy.
--
-- The order's identifier is the profile's ClientIdentifier, which Apple
-- devices send verbatim as {"type": "permanent-identifier", "value": ...}.
-- Our profiles put a one-time code there (mdm.acme_client_identifier_new,
-- kept hashed in mdm.challenge with purpose 'acme', as the SCEP
-- challenge).  The code authorises the order and is spent when the
-- certificate is issued, so an interrupted order can be retried with it
-- but it buys one certificate at most.

-- ------------------------------------------------------------ codes

ALTER TABLE mdm.challenge DROP CONSTRAINT challenge_purpose_check;
ALTER TABLE mdm.challenge
    ADD CONSTRAINT challenge_purpose_check CHECK (purpose IN ('scep', 'ota', 'acme'));
COMMENT ON COLUMN mdm.challenge.purpose IS
    'scep (a SCEP challengePassword), ota (an over-the-air phase-1 challenge) or acme (an '
    'ACME ClientIdentifier: mdm.acme_client_identifier_new, 027).';

CREATE FUNCTION mdm.acme_client_identifier_new(udid text DEFAULT NULL,
                                               ttl interval DEFAULT '1 hour',
                                               topic text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c text;
BEGIN
    IF ttl IS NULL OR ttl <= interval '0' OR ttl > interval '30 days' THEN
        RAISE EXCEPTION 'mdm.acme_client_identifier_new: ttl must be between 0 and 30 days'
            USING ERRCODE = '22023';
    END IF;
    IF udid IS NOT NULL AND (length(udid) NOT BETWEEN 1 AND 128) THEN
        RAISE EXCEPTION 'mdm.acme_client_identifier_new: a UDID is 1 to 128 characters'
            USING ERRCODE = '22023';
    END IF;
    -- Two v4 UUIDs: 244 random bits from PostgreSQL's strong random source.
    c := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    INSERT INTO mdm.challenge (challenge_sha256, purpose, udid, expires_at)
    VALUES (encode(sha256(convert_to(c, 'UTF8')), 'hex'), 'acme',
            acme_client_identifier_new.udid, now() + ttl);
    RETURN mdm.challenge_topic_set(c, acme_client_identifier_new.topic,
                                   'mdm.acme_client_identifier_new');
END $$;
COMMENT ON FUNCTION mdm.acme_client_identifier_new(text, interval, text) IS
    'Returns a new one-time ACME ClientIdentifier for an enrollment profile''s ACME payload '
    '(244 random bits; only its SHA-256 is stored, in mdm.challenge with purpose acme), '
    'valid for ttl (default 1 hour, at most 30 days), optionally bound to the UDID the '
    'attestation must name, and recording the profile''s push topic (imported: P0002 '
    'otherwise). A newOrder naming it is accepted until it is spent by the certificate it buys.';

-- ------------------------------------------------------------ nonces

CREATE TABLE mdm.acme_nonce (
    nonce      text PRIMARY KEY CHECK (nonce ~ '^[A-Za-z0-9_-]{16,64}$'),
    expires_at timestamptz NOT NULL
);
CREATE INDEX acme_nonce_expires_idx ON mdm.acme_nonce (expires_at);
COMMENT ON TABLE mdm.acme_nonce IS
    'ACME anti-replay nonces (RFC 8555 section 6.5) handed out in Replay-Nonce and not yet '
    'used: a request''s nonce is deleted by the request (DELETE ... RETURNING), so each is '
    'accepted once, by any acme.fcgi on any host. Expired rows are purged as new ones are made.';
COMMENT ON COLUMN mdm.acme_nonce.nonce IS 'The nonce as sent (base64url alphabet).';
COMMENT ON COLUMN mdm.acme_nonce.expires_at IS 'After this the nonce is refused (badNonce).';

CREATE FUNCTION mdm.acme_nonce_new(ttl_seconds integer)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n text;
BEGIN
    -- A few expired rows per nonce made: the table stays small without a sweeper,
    -- and no request pays for a big delete.
    DELETE FROM mdm.acme_nonce o
     WHERE o.nonce IN (SELECT x.nonce FROM mdm.acme_nonce x WHERE x.expires_at < now()
                        ORDER BY x.expires_at LIMIT 4 FOR UPDATE SKIP LOCKED);
    n := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
    INSERT INTO mdm.acme_nonce (nonce, expires_at)
    VALUES (n, now() + make_interval(secs => greatest(1, least(ttl_seconds, 86400))));
    RETURN n;
END $$;
COMMENT ON FUNCTION mdm.acme_nonce_new(integer) IS
    'acme.fcgi: a new nonce valid for ttl_seconds (1 to 86400; config acme_nonce_ttl), '
    'purging up to four expired ones.';

-- ------------------------------------------------------------ accounts

CREATE TABLE mdm.acme_account (
    id         bigserial PRIMARY KEY,
    jwk        text NOT NULL CHECK (length(jwk) BETWEEN 2 AND 8192),
    thumbprint text NOT NULL UNIQUE CHECK (thumbprint ~ '^[A-Za-z0-9_-]{43}$'),
    status     text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'deactivated', 'revoked')),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mdm.acme_account IS
    'ACME accounts (RFC 8555 section 7.1.2): one per account key. A device makes one per '
    'ACME payload; the account URL is <acme_base_url>/acct/<id>.';
COMMENT ON COLUMN mdm.acme_account.jwk IS
    'The account''s public key as a canonical JWK (RFC 7638 section 3: required members, '
    'sorted, no white space).';
COMMENT ON COLUMN mdm.acme_account.thumbprint IS 'RFC 7638 SHA-256 thumbprint of jwk, base64url.';
COMMENT ON COLUMN mdm.acme_account.status IS
    'valid, or deactivated / revoked by an operator (UPDATE): its requests are then refused '
    '(unauthorized).';

-- ------------------------------------------------------------ orders

CREATE TABLE mdm.acme_order (
    id                bigserial PRIMARY KEY,
    account_id        bigint NOT NULL REFERENCES mdm.acme_account (id),
    identifier_value  text NOT NULL CHECK (length(identifier_value) BETWEEN 1 AND 256),
    challenge_id      bigint REFERENCES mdm.challenge (id) ON DELETE SET NULL,
    by_serial         boolean NOT NULL DEFAULT false,
    status            text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    expires_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    certificate_id    bigint REFERENCES mdm.certificate (id),
    error             jsonb
);
CREATE INDEX acme_order_account_idx ON mdm.acme_order (account_id);
CREATE INDEX acme_order_challenge_idx ON mdm.acme_order (challenge_id);
COMMENT ON TABLE mdm.acme_order IS
    'ACME orders (RFC 8555 section 7.1.3), each for exactly one permanent-identifier '
    '(draft-acme-device-attest section 3). Never read by another account: every function '
    'takes the account and answers "not found" for the orders of others. notBefore / '
    'notAfter are not offered (the CA chooses the validity: cert_days). Not granted: '
    'identifier_value is the ClientIdentifier code, a secret until spent.';
COMMENT ON COLUMN mdm.acme_order.identifier_value IS
    'The identifier''s value as the device sent it (the profile''s ClientIdentifier).';
COMMENT ON COLUMN mdm.acme_order.challenge_id IS
    'The one-time code (mdm.challenge, purpose acme) the identifier named; spent '
    '(used_at, used_by_certificate) when the certificate is issued. NULL when by_serial.';
COMMENT ON COLUMN mdm.acme_order.by_serial IS
    'The identifier is a serial number or UDID of mdm.acme_expected_device '
    '(acme_allow_serial_identifier = yes): the attestation must name that very device.';
COMMENT ON COLUMN mdm.acme_order.expires_at IS
    'acme_order_ttl after creation, never after the code expires; an expired order cannot '
    'be finalized.';
COMMENT ON COLUMN mdm.acme_order.certificate_id IS 'The certificate issued at finalize.';
COMMENT ON COLUMN mdm.acme_order.error IS 'RFC 7807 problem document when invalid.';

CREATE TABLE mdm.acme_authz (
    id         bigserial PRIMARY KEY,
    order_id   bigint NOT NULL UNIQUE REFERENCES mdm.acme_order (id),
    status     text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired',
                                     'revoked')),
    expires_at timestamptz NOT NULL
);
COMMENT ON TABLE mdm.acme_authz IS
    'ACME authorizations (RFC 8555 section 7.1.4): one per order (its one identifier, '
    'mdm.acme_order.identifier_value), never shared between orders.';

CREATE TABLE mdm.acme_challenge (
    id           bigserial PRIMARY KEY,
    authz_id     bigint NOT NULL UNIQUE REFERENCES mdm.acme_authz (id),
    type         text NOT NULL DEFAULT 'device-attest-01' CHECK (type = 'device-attest-01'),
    token        text NOT NULL UNIQUE CHECK (token ~ '^[A-Za-z0-9_-]{43,}$'),
    status       text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at timestamptz,
    error        jsonb
);
COMMENT ON TABLE mdm.acme_challenge IS
    'The device-attest-01 challenge of each authorization (draft-acme-device-attest '
    'section 5). token: 244 random bits, base64url; the attestation''s nonce extension '
    'must be its SHA-256.';
COMMENT ON COLUMN mdm.acme_challenge.error IS
    'RFC 7807 problem document of a refused attestation (badAttestationStatement, '
    'rejectedIdentifier, ...).';

-- ------------------------------------------------------------ devices we expect

CREATE TABLE mdm.acme_expected_device (
    id       bigserial PRIMARY KEY,
    serial   text CHECK (length(serial) BETWEEN 1 AND 64),
    udid     text CHECK (length(udid) BETWEEN 1 AND 128),
    comment  text,
    added_at timestamptz NOT NULL DEFAULT now(),
    CHECK (serial IS NOT NULL OR udid IS NOT NULL)
);
CREATE UNIQUE INDEX acme_expected_device_serial_idx ON mdm.acme_expected_device (serial);
CREATE UNIQUE INDEX acme_expected_device_udid_idx ON mdm.acme_expected_device (udid);
COMMENT ON TABLE mdm.acme_expected_device IS
    'Devices operators expect (say from a purchase list): an attestation is accepted for a '
    'device named here by serial or UDID, or for a UDID with an enrollment (mdm.enrollment). '
    'Granted to mdm_operator (SELECT, INSERT, UPDATE, DELETE).';
COMMENT ON COLUMN mdm.acme_expected_device.serial IS 'Serial number as Apple attests it (.8.9.1).';
COMMENT ON COLUMN mdm.acme_expected_device.udid IS 'UDID as Apple attests it (.8.9.2).';

-- ------------------------------------------------------------ attestations

CREATE TABLE mdm.acme_attestation (
    id             bigserial PRIMARY KEY,
    challenge_id   bigint NOT NULL UNIQUE REFERENCES mdm.acme_challenge (id),
    certificate_id bigint UNIQUE REFERENCES mdm.certificate (id),
    serial         text NOT NULL,
    udid           text NOT NULL,
    os_version     text,
    sepos_version  text,
    model          text,
    llb_version    text,
    sip_enabled    boolean,
    secure_boot    text,
    kexts_allowed  boolean,
    spki           bytea NOT NULL,
    attested_at    timestamptz NOT NULL DEFAULT now(),
    not_after      timestamptz,
    chain_pem      text NOT NULL
);
COMMENT ON TABLE mdm.acme_attestation IS
    'What Apple attested for each accepted device-attest-01 challenge: the device''s serial, '
    'UDID, OS, SepOS and LLB versions, model, on macOS its security properties (SIP, secure '
    'boot, kernel extensions), the attested (Secure Enclave) key and the x5c chain; '
    'certificate_id is the certificate issued for that key at finalize.';
COMMENT ON COLUMN mdm.acme_attestation.spki IS
    'DER SubjectPublicKeyInfo of the attested key: the CSR at finalize must carry this key.';
COMMENT ON COLUMN mdm.acme_attestation.not_after IS 'notAfter of Apple''s attestation certificate.';
COMMENT ON COLUMN mdm.acme_attestation.model IS
    'Software Update Device ID (1.2.840.113635.100.8.9.4, e.g. J514sAP), NULL when not stated.';
COMMENT ON COLUMN mdm.acme_attestation.sip_enabled IS
    'macOS: System Integrity Protection enabled (1.2.840.113635.100.8.13.1); NULL when not '
    'stated (iOS, macOS before 14.2).';
COMMENT ON COLUMN mdm.acme_attestation.secure_boot IS
    'macOS: the secure boot policy as attested (Full Security, Reduced Security, Permissive '
    'Security: .8.13.2); NULL when not stated.';
COMMENT ON COLUMN mdm.acme_attestation.kexts_allowed IS
    'macOS: third-party kernel extensions allowed (.8.13.3); NULL when not stated.';

CREATE VIEW mdm.device_attestation AS
    SELECT a.udid, a.serial, a.os_version, a.sepos_version, a.llb_version, a.model,
           a.sip_enabled, a.secure_boot, a.kexts_allowed, a.attested_at,
           c.serial AS certificate_serial, c.sha256 AS certificate_sha256,
           c.not_after AS certificate_not_after, c.revoked_at AS certificate_revoked_at,
           a.not_after AS attestation_not_after, a.chain_pem
      FROM mdm.acme_attestation a
      JOIN mdm.certificate c ON c.id = a.certificate_id;
COMMENT ON VIEW mdm.device_attestation IS
    'Device identity certificates issued over ACME with what Apple attested about the device '
    'that holds the key (one row per certificate). Granted to mdm_operator.';

-- ------------------------------------------------------------ JSON of the objects

CREATE FUNCTION mdm.acme_time(t timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
$$;
COMMENT ON FUNCTION mdm.acme_time(timestamptz) IS 'RFC 3339 UTC, as ACME''s expires fields.';

CREATE FUNCTION mdm.acme_order_json(o mdm.acme_order, base text)
RETURNS jsonb LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'status', CASE WHEN o.status IN ('pending', 'ready') AND o.expires_at <= now()
                       THEN 'invalid' ELSE o.status END,
        'expires', mdm.acme_time(o.expires_at),
        'identifiers', jsonb_build_array(jsonb_build_object(
            'type', 'permanent-identifier', 'value', o.identifier_value)),
        'authorizations', (SELECT jsonb_agg(base || '/authz/' || z.id) FROM mdm.acme_authz z
                            WHERE z.order_id = o.id),
        'finalize', base || '/order/' || o.id || '/finalize',
        'certificate', CASE WHEN o.certificate_id IS NOT NULL
                            THEN base || '/cert/' || o.id END,
        'error', o.error));
$$;
COMMENT ON FUNCTION mdm.acme_order_json(mdm.acme_order, text) IS
    'The order object (RFC 8555 section 7.1.3) with URLs under base (acme_base_url).';

CREATE FUNCTION mdm.acme_challenge_json(h mdm.acme_challenge, base text)
RETURNS jsonb LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'type', h.type, 'url', base || '/chall/' || h.id, 'status', h.status,
        'token', h.token, 'validated', mdm.acme_time(h.validated_at), 'error', h.error));
$$;
COMMENT ON FUNCTION mdm.acme_challenge_json(mdm.acme_challenge, text) IS
    'The challenge object (RFC 8555 section 8).';

CREATE FUNCTION mdm.acme_authz_json(z mdm.acme_authz, base text)
RETURNS jsonb LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object(
        'status', CASE WHEN z.status = 'pending' AND z.expires_at <= now()
                       THEN 'expired' ELSE z.status END,
        'expires', mdm.acme_time(z.expires_at),
        'identifier', (SELECT jsonb_build_object('type', 'permanent-identifier',
                                                 'value', o.identifier_value)
                         FROM mdm.acme_order o WHERE o.id = z.order_id),
        'challenges', (SELECT jsonb_agg(mdm.acme_challenge_json(h, base))
                         FROM mdm.acme_challenge h WHERE h.authz_id = z.id));
$$;
COMMENT ON FUNCTION mdm.acme_authz_json(mdm.acme_authz, text) IS
    'The authorization object (RFC 8555 section 7.1.4).';

-- ------------------------------------------------------------ the endpoints

CREATE FUNCTION mdm.acme_begin(nonce text, account_id bigint, ttl_seconds integer,
                               OUT nonce_ok boolean, OUT new_nonce text, OUT jwk text,
                               OUT account_status text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- RFC 8555 section 6.5: each nonce once; an expired one is spent too.
    DELETE FROM mdm.acme_nonce n WHERE n.nonce = acme_begin.nonce
    RETURNING n.expires_at > now() INTO nonce_ok;
    nonce_ok := coalesce(nonce_ok, false);
    new_nonce := mdm.acme_nonce_new(ttl_seconds);
    IF account_id IS NOT NULL THEN
        SELECT a.jwk, a.status INTO jwk, account_status
          FROM mdm.acme_account a WHERE a.id = acme_begin.account_id;
    END IF;
END $$;
COMMENT ON FUNCTION mdm.acme_begin(text, bigint, integer) IS
    'acme.fcgi, first statement of every POST: spends nonce (nonce_ok false when unknown, '
    'used or expired), makes the Replay-Nonce of the answer, and reads the account key of '
    'a kid (NULL jwk when no such account).';

CREATE FUNCTION mdm.acme_account_new(jwk text, thumbprint text, only_existing boolean,
                                     OUT id bigint, OUT status text, OUT created boolean)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT a.id, a.status INTO id, status
      FROM mdm.acme_account a WHERE a.thumbprint = acme_account_new.thumbprint;
    created := false;
    IF FOUND OR only_existing THEN
        RETURN;
    END IF;
    INSERT INTO mdm.acme_account AS a (jwk, thumbprint)
    VALUES (acme_account_new.jwk, acme_account_new.thumbprint)
    ON CONFLICT ON CONSTRAINT acme_account_thumbprint_key DO NOTHING
    RETURNING a.id, a.status INTO id, status;
    IF FOUND THEN
        created := true;
    ELSE
        -- Another request made it meanwhile: that one is the account.
        SELECT a.id, a.status INTO id, status
          FROM mdm.acme_account a WHERE a.thumbprint = acme_account_new.thumbprint;
    END IF;
END $$;
COMMENT ON FUNCTION mdm.acme_account_new(text, text, boolean) IS
    'acme.fcgi newAccount (RFC 8555 section 7.3): the account of the key with this '
    'thumbprint, made unless it exists or only_existing (then id NULL: accountDoesNotExist).';

-- The order for the code (or serial) of a newOrder, or order_id NULL.  The
-- answer never says whether a code exists: unknown, spent and expired codes
-- are refused alike (and acme.fcgi answers them with one text).
CREATE FUNCTION mdm.acme_order_new(account_id bigint, identifier text, allow_serial boolean,
                                   order_ttl_seconds integer, base text,
                                   OUT order_id bigint, OUT body jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ch      mdm.challenge%ROWTYPE;
    exp     timestamptz := now() + make_interval(secs => greatest(60, order_ttl_seconds));
    by_ser  boolean := false;
    o       mdm.acme_order%ROWTYPE;
    zid     bigint;
BEGIN
    SELECT * INTO ch FROM mdm.challenge h
     WHERE h.challenge_sha256 = encode(sha256(convert_to(identifier, 'UTF8')), 'hex')
       AND h.purpose = 'acme' AND h.used_at IS NULL AND h.expires_at > now();
    IF NOT FOUND THEN
        ch := NULL;
        IF allow_serial AND EXISTS (SELECT 1 FROM mdm.acme_expected_device d
                                     WHERE d.serial = identifier OR d.udid = identifier) THEN
            by_ser := true;
        ELSE
            RETURN;  -- rejectedIdentifier
        END IF;
    ELSE
        exp := least(exp, ch.expires_at);
    END IF;
    INSERT INTO mdm.acme_order AS n (account_id, identifier_value, challenge_id, by_serial,
                                     expires_at)
    VALUES (acme_order_new.account_id, identifier, ch.id, by_ser, exp)
    RETURNING * INTO o;
    INSERT INTO mdm.acme_authz (order_id, expires_at) VALUES (o.id, exp) RETURNING id INTO zid;
    INSERT INTO mdm.acme_challenge (authz_id, token)
    VALUES (zid, rtrim(translate(encode(uuid_send(gen_random_uuid()) ||
                                        uuid_send(gen_random_uuid()), 'base64'),
                                 '+/', '-_'), '='));
    order_id := o.id;
    body := mdm.acme_order_json(o, base);
END $$;
COMMENT ON FUNCTION mdm.acme_order_new(bigint, text, boolean, integer, text) IS
    'acme.fcgi newOrder (RFC 8555 section 7.4): an order for the permanent-identifier '
    'identifier when it is an unspent, unexpired ClientIdentifier code (or, with '
    'allow_serial, a serial or UDID of mdm.acme_expected_device), with its authorization and '
    'device-attest-01 challenge; order_id NULL otherwise (rejectedIdentifier).';

CREATE FUNCTION mdm.acme_order_get(account_id bigint, order_id bigint, base text)
RETURNS jsonb LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.acme_order_json(o, base) FROM mdm.acme_order o
     WHERE o.id = acme_order_get.order_id AND o.account_id = acme_order_get.account_id;
$$;
COMMENT ON FUNCTION mdm.acme_order_get(bigint, bigint, text) IS
    'acme.fcgi POST-as-GET of an order: NULL unless it is the account''s.';

CREATE FUNCTION mdm.acme_authz_get(account_id bigint, authz_id bigint, base text)
RETURNS jsonb LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT mdm.acme_authz_json(z, base) FROM mdm.acme_authz z
      JOIN mdm.acme_order o ON o.id = z.order_id
     WHERE z.id = acme_authz_get.authz_id AND o.account_id = acme_authz_get.account_id;
$$;
COMMENT ON FUNCTION mdm.acme_authz_get(bigint, bigint, text) IS
    'acme.fcgi POST-as-GET of an authorization: NULL unless its order is the account''s.';

CREATE FUNCTION mdm.acme_challenge_get(account_id bigint, challenge_id bigint, base text,
                                       OUT token text, OUT status text, OUT authz_id bigint,
                                       OUT expired boolean, OUT body jsonb)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT h.token, h.status, z.id, z.expires_at <= now(), mdm.acme_challenge_json(h, base)
      FROM mdm.acme_challenge h
      JOIN mdm.acme_authz z ON z.id = h.authz_id
      JOIN mdm.acme_order o ON o.id = z.order_id
     WHERE h.id = acme_challenge_get.challenge_id
       AND o.account_id = acme_challenge_get.account_id;
$$;
COMMENT ON FUNCTION mdm.acme_challenge_get(bigint, bigint, text) IS
    'acme.fcgi: the challenge (token, state, JSON) before its attestation is verified; no '
    'row unless its order is the account''s.';

-- The attestation's result, with the device policy.  err_type/err_detail set:
-- the challenge, its authorization and order become invalid with that problem.
CREATE FUNCTION mdm.acme_challenge_answer(account_id bigint, challenge_id bigint, base text,
        err_type text, err_detail text, a_serial text, a_udid text, a_os_version text,
        a_sepos_version text, a_model text, a_spki bytea, a_not_after bigint, a_chain text,
        a_llb_version text, a_sip integer, a_secure_boot text, a_kexts integer,
        OUT status text, OUT problem_type text, OUT problem_detail text, OUT body jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h  mdm.acme_challenge%ROWTYPE;
    z  mdm.acme_authz%ROWTYPE;
    o  mdm.acme_order%ROWTYPE;
    bound text;
BEGIN
    SELECT c.* INTO h FROM mdm.acme_challenge c
      JOIN mdm.acme_authz az ON az.id = c.authz_id
      JOIN mdm.acme_order ao ON ao.id = az.order_id
     WHERE c.id = acme_challenge_answer.challenge_id
       AND ao.account_id = acme_challenge_answer.account_id
       FOR UPDATE OF c;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO z FROM mdm.acme_authz WHERE id = h.authz_id FOR UPDATE;
    SELECT * INTO o FROM mdm.acme_order WHERE id = z.order_id FOR UPDATE;
    IF h.status <> 'pending' THEN
        -- RFC 8555 section 7.5.1: answered already; the state as it is.
        status := h.status;
        body := mdm.acme_challenge_json(h, base);
        RETURN;
    END IF;
    IF err_type IS NULL AND (z.expires_at <= now() OR o.expires_at <= now()) THEN
        err_type := 'malformed';
        err_detail := 'RFC 8555 section 7.1.4: the authorization has expired';
    END IF;
    IF err_type IS NULL THEN
        IF o.by_serial THEN
            -- The identifier is a serial or UDID: the attestation must name it
            -- (draft-acme-device-attest section 5, step 4) and the device be listed.
            IF o.identifier_value IS DISTINCT FROM a_serial
               AND o.identifier_value IS DISTINCT FROM a_udid THEN
                err_type := 'rejectedIdentifier';
                err_detail := 'draft-acme-device-attest section 5: the identifier is neither '
                              'the attested serial number nor the attested UDID';
            END IF;
        ELSE
            -- The identifier is a one-time code: the draft's "identifier equals the
            -- attested serial or UDID" holds through the code's binding, when the
            -- operator bound it to a UDID; unbound codes admit any expected device.
            SELECT c.udid INTO bound FROM mdm.challenge c WHERE c.id = o.challenge_id;
            IF o.challenge_id IS NULL OR NOT FOUND THEN
                err_type := 'rejectedIdentifier';
                err_detail := 'the ClientIdentifier is no longer valid';
            ELSIF bound IS NOT NULL AND bound IS DISTINCT FROM a_udid THEN
                err_type := 'rejectedIdentifier';
                err_detail := 'the ClientIdentifier was issued for another device (UDID)';
            END IF;
        END IF;
    END IF;
    IF err_type IS NULL AND NOT EXISTS (
            SELECT 1 FROM mdm.acme_expected_device d
             WHERE d.udid = a_udid OR (d.serial = a_serial AND a_serial <> ''))
       AND NOT EXISTS (SELECT 1 FROM mdm.enrollment e WHERE e.udid = a_udid)
       AND NOT EXISTS (SELECT 1 FROM mdm.challenge c
                        WHERE c.id = o.challenge_id AND c.udid = a_udid) THEN
        err_type := 'rejectedIdentifier';
        err_detail := 'the attested device is not one this server expects (not enrolled, '
                      'not in mdm.acme_expected_device)';
    END IF;
    IF err_type IS NOT NULL THEN
        h.status := 'invalid';
        h.error := jsonb_build_object('type', 'urn:ietf:params:acme:error:' || err_type,
                                      'detail', err_detail, 'status', 400);
        UPDATE mdm.acme_challenge c SET status = 'invalid', error = h.error WHERE c.id = h.id;
        UPDATE mdm.acme_authz a SET status = 'invalid' WHERE a.id = z.id;
        UPDATE mdm.acme_order r SET status = 'invalid', error = h.error WHERE r.id = o.id;
        status := 'invalid';
        problem_type := err_type;
        problem_detail := err_detail;
        body := mdm.acme_challenge_json(h, base);
        RETURN;
    END IF;
    INSERT INTO mdm.acme_attestation (challenge_id, serial, udid, os_version, sepos_version,
                                      model, llb_version, sip_enabled, secure_boot,
                                      kexts_allowed, spki, not_after, chain_pem)
    VALUES (h.id, a_serial, a_udid, nullif(a_os_version, ''), nullif(a_sepos_version, ''),
            nullif(a_model, ''), nullif(a_llb_version, ''),
            CASE a_sip WHEN 1 THEN true WHEN 0 THEN false END, nullif(a_secure_boot, ''),
            CASE a_kexts WHEN 1 THEN true WHEN 0 THEN false END,
            a_spki, to_timestamp(a_not_after), a_chain);
    h.status := 'valid';
    h.validated_at := now();
    UPDATE mdm.acme_challenge c SET status = 'valid', validated_at = h.validated_at
     WHERE c.id = h.id;
    UPDATE mdm.acme_authz a SET status = 'valid' WHERE a.id = z.id;
    UPDATE mdm.acme_order r SET status = 'ready' WHERE r.id = o.id AND r.status = 'pending';
    status := 'valid';
    body := mdm.acme_challenge_json(h, base);
END $$;
COMMENT ON FUNCTION mdm.acme_challenge_answer(bigint, bigint, text, text, text, text, text,
        text, text, text, bytea, bigint, text, text, integer, text, integer) IS
    'acme.fcgi: records a device-attest-01 answer. With err_type (the attestation did not '
    'verify) or when the device policy refuses (identifier not the attested device, a code '
    'bound to another UDID, a device neither enrolled nor in mdm.acme_expected_device) the '
    'challenge, authorization and order become invalid with the problem; otherwise the '
    'attestation is stored and the order is ready.';

CREATE FUNCTION mdm.acme_finalize_begin(account_id bigint, order_id bigint,
                                        OUT status text, OUT expired boolean,
                                        OUT code_ok boolean, OUT spki bytea, OUT udid text,
                                        OUT serial text, OUT attestation_id bigint)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o mdm.acme_order%ROWTYPE;
BEGIN
    -- The order's row lock serialises finalizes of one order; the code's row lock
    -- those of two orders naming the same code: one certificate per code.
    SELECT * INTO o FROM mdm.acme_order r
     WHERE r.id = acme_finalize_begin.order_id
       AND r.account_id = acme_finalize_begin.account_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    status := o.status;
    expired := o.expires_at <= now();
    IF o.by_serial THEN
        code_ok := true;
    ELSE
        SELECT c.used_at IS NULL AND c.expires_at > now() INTO code_ok
          FROM mdm.challenge c WHERE c.id = o.challenge_id FOR UPDATE;
        code_ok := coalesce(code_ok, false);
    END IF;
    SELECT a.spki, a.udid, a.serial, a.id INTO spki, udid, serial, attestation_id
      FROM mdm.acme_attestation a
      JOIN mdm.acme_challenge h ON h.id = a.challenge_id
      JOIN mdm.acme_authz z ON z.id = h.authz_id
     WHERE z.order_id = o.id;
END $$;
COMMENT ON FUNCTION mdm.acme_finalize_begin(bigint, bigint) IS
    'acme.fcgi finalize, in its transaction: locks the order and its code, and returns what '
    'the CSR is checked against (the attested key) and whether the order may be finalized.';

CREATE FUNCTION mdm.acme_finalize_done(order_id bigint, certificate_id bigint,
                                       attestation_id bigint, base text)
RETURNS jsonb LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o mdm.acme_order%ROWTYPE;
BEGIN
    UPDATE mdm.acme_order r SET status = 'valid', certificate_id = acme_finalize_done.certificate_id
     WHERE r.id = acme_finalize_done.order_id RETURNING * INTO o;
    UPDATE mdm.challenge c SET used_at = now(), used_by_certificate = o.certificate_id
     WHERE c.id = o.challenge_id AND c.used_at IS NULL;
    UPDATE mdm.acme_attestation a SET certificate_id = o.certificate_id
     WHERE a.id = acme_finalize_done.attestation_id;
    RETURN mdm.acme_order_json(o, base);
END $$;
COMMENT ON FUNCTION mdm.acme_finalize_done(bigint, bigint, bigint, text) IS
    'acme.fcgi finalize, same transaction: the order is valid with its certificate, the '
    'code spent, the attestation linked.';

CREATE FUNCTION mdm.acme_finalize_refuse(order_id bigint, problem jsonb)
RETURNS void LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    UPDATE mdm.acme_order r SET status = 'invalid', error = problem
     WHERE r.id = acme_finalize_refuse.order_id AND r.status = 'ready';
$$;
COMMENT ON FUNCTION mdm.acme_finalize_refuse(bigint, jsonb) IS
    'acme.fcgi: a finalize whose CSR is refused (badCSR: not the attested key) makes the '
    'order invalid (RFC 8555 section 7.4).';

CREATE FUNCTION mdm.acme_certificate_get(account_id bigint, order_id bigint)
RETURNS bytea LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.der FROM mdm.acme_order o JOIN mdm.certificate c ON c.id = o.certificate_id
     WHERE o.id = acme_certificate_get.order_id
       AND o.account_id = acme_certificate_get.account_id;
$$;
COMMENT ON FUNCTION mdm.acme_certificate_get(bigint, bigint) IS
    'acme.fcgi certificate download: the DER of the order''s certificate, NULL unless the '
    'order is the account''s and valid.';

REVOKE EXECUTE ON FUNCTION
    mdm.acme_client_identifier_new(text, interval, text),
    mdm.acme_nonce_new(integer),
    mdm.acme_time(timestamptz),
    mdm.acme_order_json(mdm.acme_order, text),
    mdm.acme_challenge_json(mdm.acme_challenge, text),
    mdm.acme_authz_json(mdm.acme_authz, text),
    mdm.acme_begin(text, bigint, integer),
    mdm.acme_account_new(text, text, boolean),
    mdm.acme_order_new(bigint, text, boolean, integer, text),
    mdm.acme_order_get(bigint, bigint, text),
    mdm.acme_authz_get(bigint, bigint, text),
    mdm.acme_challenge_get(bigint, bigint, text),
    mdm.acme_challenge_answer(bigint, bigint, text, text, text, text, text, text, text, text,
                              bytea, bigint, text, text, integer, text, integer),
    mdm.acme_finalize_begin(bigint, bigint),
    mdm.acme_finalize_done(bigint, bigint, bigint, text),
    mdm.acme_finalize_refuse(bigint, jsonb),
    mdm.acme_certificate_get(bigint, bigint)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mdm.acme_client_identifier_new(text, interval, text) TO mdm_operator;
GRANT SELECT, INSERT, UPDATE, DELETE ON mdm.acme_expected_device TO mdm_operator;
GRANT USAGE ON SEQUENCE mdm.acme_expected_device_id_seq TO mdm_operator;
GRANT SELECT ON mdm.device_attestation TO mdm_operator;
