-- 015_operator_secrets: what mdm_operator must not see (security review, issue 13).
-- mdm.push_certs.key_uri names where a push key lives, and a pkcs11: URI may
-- carry pin-value: the operator role reads every column of the view but that
-- one (column privileges; the admin and `mdmctl push-cert list` still see it).
REVOKE SELECT ON mdm.push_certs FROM mdm_operator;
GRANT SELECT (topic, subject, serial, sha256, not_before, not_after, expired, imported_at,
              active_enrollments, enrollments, open_challenges)
    ON mdm.push_certs TO mdm_operator;
COMMENT ON COLUMN mdm.push_certs.key_uri IS
    'Where the push key is (a file path or a pkcs11: URI, which may carry pin-value): not '
    'granted to mdm_operator (015), which reads every other column.';
