-- Privileges: PUBLIC may change nothing.
--
-- Every VOLATILE function in the schema loses PUBLIC's EXECUTE here; the
-- component scripts have already granted each one to the role that needs it.
-- IMMUTABLE and STABLE functions stay executable by everybody (types and pure
-- helpers), but the tables they read are granted only to tforge's roles.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'tforge'::regnamespace
       AND p.provolatile = 'v'
       AND p.prokind IN ('f', 'p')
  LOOP
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO tforge_admin', f);
  END LOOP;
END
$$;

GRANT SELECT ON ALL TABLES IN SCHEMA tforge TO tforge_reader;
GRANT ALL ON ALL TABLES IN SCHEMA tforge TO tforge_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA tforge TO tforge_admin;
