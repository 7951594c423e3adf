-- 017_checkin_redaction: mdm.checkin.body keeps no secret (issue 13, 7).
-- checkin.fcgi now stores every body with UnlockToken, PushMagic,
-- BootstrapToken, Token, DigestResponse and TokenParameters' SecurityToken
-- replaced by the string "(redacted)" (lib/checkin.c); the rows stored
-- before, TokenUpdate's unlock token and push magic in clear, are scrubbed
-- here the same way.  Their only copies are the columns that use them
-- (mdm.enrollment, not granted to operators).

UPDATE mdm.checkin
   SET body = convert_to(regexp_replace(convert_from(body, 'UTF8'),
           '(<key>(UnlockToken|PushMagic|BootstrapToken|Token|DigestResponse|SecurityToken)'
           '</key>\s*)(<data>[^<]*</data>|<data/>|<string>[^<]*</string>|<string/>)',
           '\1<string>(redacted)</string>', 'g'), 'UTF8')
 WHERE body IS NOT NULL
   AND message_type IN ('TokenUpdate', 'SetBootstrapToken', 'UserAuthenticate', 'GetToken')
   AND convert_from(body, 'UTF8') ~
       '<key>(UnlockToken|PushMagic|BootstrapToken|Token|DigestResponse|SecurityToken)</key>';

COMMENT ON TABLE mdm.checkin IS
    'Every accepted check-in message, with the certificate that authenticated it and how '
    '(TLS client certificate, Mdm-Signature or both). body is the plist as the device sent '
    'it, except that every secret value (UnlockToken, PushMagic, BootstrapToken, Token, '
    'DigestResponse, TokenParameters.SecurityToken) is the string "(redacted)" (017; rows '
    'from before 017 were scrubbed; SetBootstrapToken rows from before are NULL).';
