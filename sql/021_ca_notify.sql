-- 021_ca_notify: a change to mdm.ca is announced, not polled for.
--
-- Every request of every program read mdm.ca_generation to learn whether
-- the CA had changed: a round trip per request for something that changes
-- a few times in a CA's life (issue 15).  The trigger now also sends
-- NOTIFY mdm_ca; the programs LISTEN on their connection, look (without
-- waiting) for a notification at each request, and read the generation
-- only when one came, or when their connection was new (notifications
-- sent while it was away are lost).  PostgreSQL delivers a notification
-- when the change commits, so the next request after `mdmctl ca activate`
-- (or an operator's UPDATE of mdm.ca) sees the new CA as before.
CREATE OR REPLACE FUNCTION mdm.ca_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('mdm.ca_generation');
    PERFORM pg_notify('mdm_ca', '');
    RETURN NULL;
END $$;
COMMENT ON FUNCTION mdm.ca_touch() IS
    'Trigger on mdm.ca: moves mdm.ca_generation and sends NOTIFY mdm_ca, so the programs '
    'reload the CA (lib/ca.c).';
