-- 011_identity_comments: what binds a UDID to an identity certificate,
-- said as it is since renewals bind without Authenticate (issue 12): a
-- device renews its SCEP identity and goes on with TokenUpdate or its
-- command channel, never sending Authenticate again.  Comments only; 003
-- is not edited because applied migrations are checksummed.

COMMENT ON COLUMN mdm.device.identity_certificate_id IS
    'The identity certificate bound to this UDID: by its last accepted Authenticate, or by the '
    'first check-in or command request (TokenUpdate, Idle, ...) that presented a certificate '
    'renewed from the bound one (identity_binding reason renewal). Every other check-in and '
    'command request must present it.';

COMMENT ON TABLE mdm.identity_binding IS
    'Every time a UDID was bound to an identity certificate, and why: first (no earlier '
    'binding), reenroll (the earlier certificate or enrollment had ended), challenge (issued '
    'against a SCEP challenge bound to this UDID), takeover (checkin_allow_takeover = yes let '
    'it replace a valid binding), all by Authenticate; renewal (a certificate renewed from the '
    'bound one, bound by the first request that presented it, usually a TokenUpdate).';
