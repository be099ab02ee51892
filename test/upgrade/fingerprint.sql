-- The rows of every tforge table and the state of every sequence, one line
-- each. The first run (before ALTER EXTENSION UPDATE) records each table's
-- columns; later runs hash those columns only, so a column the upgrade
-- adds does not count as a change of the data that was there.
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS public.upgrade_columns AS
SELECT c.oid::regclass::text AS rel, c.relkind,
       string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) AS cols
  FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE (c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('r', 'p', 'S')) OR c.oid = 'public.versions'::regclass
 GROUP BY c.oid, c.relkind;
CREATE FUNCTION pg_temp.fp(rel text, kind "char", cols text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v text;
BEGIN
  IF kind = 'S' THEN
    EXECUTE format('SELECT last_value || '' '' || is_called FROM %s', rel) INTO v;
  ELSE
    EXECUTE format('SELECT count(*) || '' rows '' || md5(coalesce(string_agg(x::text, E''\n'' ORDER BY x::text), '''')) FROM (SELECT %s FROM %s) x',
                   cols, rel) INTO v;
  END IF;
  RETURN v;
END
$$;
SELECT rel || ': ' || pg_temp.fp(rel, relkind, cols) FROM public.upgrade_columns ORDER BY rel;
