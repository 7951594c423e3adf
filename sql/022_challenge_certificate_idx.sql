-- 022_challenge_certificate_idx: the challenge that bought a certificate,
-- found by an index.  checkin.fcgi's Authenticate asks whether the
-- certificate was issued against a challenge bound to this UDID
-- (mdm.challenge.used_by_certificate); without an index that was a
-- sequential scan of every challenge ever made: 122-127 ms per first
-- Authenticate at 1,000,000 challenges (bench/run.sh's plan pass, issue
-- 15).  Partial: challenges never spent (or spent on a refused request)
-- have none.
CREATE INDEX challenge_used_by_certificate_idx ON mdm.challenge (used_by_certificate)
    WHERE used_by_certificate IS NOT NULL;
COMMENT ON INDEX mdm.challenge_used_by_certificate_idx IS
    'Which challenge bought a certificate (checkin.fcgi Authenticate, identity binding).';
