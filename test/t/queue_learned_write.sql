-- Learned state (task_tau, profiles) is written through the executor's
-- update path (issue 13, fault 5): user triggers fire, user CHECK
-- constraints and generated columns hold, expression and partial indexes
-- are maintained, publications and replica identity are honoured, and
-- what cannot be honoured (row-level security) is refused loudly.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(38);

-- One cycle of a task of type t and key k with a reported runtime.
CREATE FUNCTION pg_temp.cycle(t text, k text, runtime float8) RETURNS text LANGUAGE plpgsql AS $$
DECLARE id bigint; tok bigint;
BEGIN
  id := tforge.submit_task(t, task_key => k);
  SELECT c.claim_token INTO tok FROM tforge.claim_tasks('w') c WHERE c.task_id = id;
  RETURN (tforge.complete_task(id, 'w', jsonb_build_object('runtime_s', runtime), tok)).status;
END $$;

-- Triggers ----------------------------------------------------------------
CREATE TABLE public.fired (n serial, tbl text, trig_when text, op text, key text);
CREATE FUNCTION public.log_fired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.fired (tbl, trig_when, op, key)
  VALUES (TG_TABLE_NAME, TG_WHEN, TG_OP,
          CASE TG_TABLE_NAME WHEN 'profiles' THEN coalesce(to_jsonb(NEW) ->> 'task_key', '(type)')
                             ELSE to_jsonb(NEW) ->> 'task_type' END);
  RETURN NEW;
END $$;
CREATE TRIGGER b BEFORE INSERT OR UPDATE ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.log_fired();
CREATE TRIGGER a AFTER INSERT OR UPDATE ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.log_fired();
CREATE TRIGGER b BEFORE INSERT OR UPDATE ON tforge.profiles FOR EACH ROW EXECUTE FUNCTION public.log_fired();
CREATE TRIGGER a AFTER INSERT OR UPDATE ON tforge.profiles FOR EACH ROW EXECUTE FUNCTION public.log_fired();

SELECT is(pg_temp.cycle('cpu-light', 'k', 10), 'done', 'a first completion with user triggers on learned state');
SELECT is(pg_temp.cycle('cpu-light', 'k', 10), 'done', 'a second completion (rows rewritten)');
-- Expected: per completion, profiles of key k then of the type, then tau;
-- each row BEFORE then AFTER (AFTER ROW triggers of one statement fire at its end).
SELECT set_eq($$SELECT tbl, trig_when, op, key, count(*) FROM public.fired GROUP BY 1, 2, 3, 4$$,
              $$VALUES ('profiles', 'BEFORE', 'INSERT', 'k', 1::bigint), ('profiles', 'AFTER', 'INSERT', 'k', 1),
                       ('profiles', 'BEFORE', 'INSERT', '(type)', 1), ('profiles', 'AFTER', 'INSERT', '(type)', 1),
                       ('task_tau', 'BEFORE', 'INSERT', 'cpu-light', 1), ('task_tau', 'AFTER', 'INSERT', 'cpu-light', 1),
                       ('profiles', 'BEFORE', 'UPDATE', 'k', 1), ('profiles', 'AFTER', 'UPDATE', 'k', 1),
                       ('profiles', 'BEFORE', 'UPDATE', '(type)', 1), ('profiles', 'AFTER', 'UPDATE', '(type)', 1),
                       ('task_tau', 'BEFORE', 'UPDATE', 'cpu-light', 1), ('task_tau', 'AFTER', 'UPDATE', 'cpu-light', 1)$$,
              'BEFORE and AFTER ROW triggers on task_tau and profiles fire for the first and for later completions');
SELECT ok((SELECT max(n) FILTER (WHERE tbl = 'task_tau' AND trig_when = 'BEFORE' AND op = 'UPDATE')
             < min(n) FILTER (WHERE tbl = 'task_tau' AND trig_when = 'AFTER' AND op = 'UPDATE') FROM public.fired),
          'BEFORE fires before AFTER');
-- update_tau goes through the same path.
DELETE FROM public.fired;
-- tau: 5 -> 6 -> 6.8 -> 7.44, each step 0.2 * 10 + (1 - 0.2) * tau in float8
CREATE FUNCTION pg_temp.step(old float8) RETURNS float8 LANGUAGE sql AS $$ SELECT 0.2::float8 * 10 + (1 - 0.2::float8) * old $$;
SELECT is(tforge.update_tau('cpu-light', 10), pg_temp.step(pg_temp.step(pg_temp.step(5))), 'update_tau: 0.2 * 10 + 0.8 * tau');
SELECT is((SELECT count(*) FROM public.fired WHERE tbl = 'task_tau' AND op = 'UPDATE'), 2::bigint, 'update_tau fires BEFORE and AFTER');

-- A BEFORE trigger that changes the row: what it writes is what is learned and returned.
CREATE FUNCTION public.cap_tau() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.tau_s := least(NEW.tau_s, 3); RETURN NEW; END $$;
CREATE TRIGGER c BEFORE UPDATE ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.cap_tau();
SELECT is(tforge.update_tau('cpu-light', 100), 3::float8, 'update_tau returns the tau a BEFORE trigger wrote');
SELECT is(tforge.get_tau('cpu-light'), 3::float8, 'and that tau is stored');
DROP TRIGGER c ON tforge.task_tau;
-- A BEFORE trigger that skips the update: nothing changes.
CREATE FUNCTION public.skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER s BEFORE UPDATE ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.skip();
SELECT is(tforge.update_tau('cpu-light', 100), 3::float8, 'a skipped update returns the tau as it stands');
-- samples: two completions, update_tau twice (the second capped) = 4
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'cpu-light'), 4::bigint, 'and the row is unchanged');
DROP TRIGGER s ON tforge.task_tau;
DROP TRIGGER a ON tforge.task_tau; DROP TRIGGER b ON tforge.task_tau;
-- A trigger on task_tau that itself learns another type's tau: the nested
-- write of the same table works, and both rows are written.
SELECT tforge.update_tau('mixed', 10);  -- mixed: 0.2 * 10 + 0.8 * 10 = 10
CREATE FUNCTION public.nested() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.task_type = 'cpu-light' THEN PERFORM tforge.update_tau('mixed', 20); END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER n BEFORE UPDATE ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.nested();
ALTER TABLE tforge.task_tau ADD CONSTRAINT tau_positive CHECK (tau_s > 0);
SELECT is(tforge.update_tau('cpu-light', 3), 0.2::float8 * 3 + (1 - 0.2::float8) * 3,  -- tau was 3 (capped above)
          'the outer write, whose trigger wrote another row of the same table');
SELECT is(tforge.get_tau('mixed'), 0.2::float8 * 20 + (1 - 0.2::float8) * 10, 'the nested write');
DROP TRIGGER n ON tforge.task_tau;
ALTER TABLE tforge.task_tau DROP CONSTRAINT tau_positive;
DROP TRIGGER a ON tforge.profiles; DROP TRIGGER b ON tforge.profiles;

-- Triggers for UPDATE OF a column fire when a completion changes that
-- column, as for an UPDATE that sets it, and not for a column it leaves alone.
CREATE TABLE public.fired_cols (tbl text, trig text);
CREATE FUNCTION public.log_col() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.fired_cols VALUES (TG_TABLE_NAME, TG_NAME); RETURN NEW; END $$;
CREATE TRIGGER col_tau BEFORE UPDATE OF tau_s ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.log_col();
CREATE TRIGGER col_tau_after AFTER UPDATE OF tau_s, samples ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.log_col();
CREATE TRIGGER col_type BEFORE UPDATE OF task_type ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.log_col();
CREATE TRIGGER col_completions AFTER UPDATE OF completions ON tforge.profiles FOR EACH ROW EXECUTE FUNCTION public.log_col();
CREATE TRIGGER col_created BEFORE UPDATE OF created_at ON tforge.profiles FOR EACH ROW EXECUTE FUNCTION public.log_col();
SELECT tforge.define_task_type('col-type', 10);
SELECT tforge.update_tau('col-type', 1);  -- creates the row (an INSERT)
DELETE FROM public.fired_cols;
SELECT lives_ok($$SELECT tforge.update_tau('col-type', 1)$$, 'update_tau with column triggers on task_tau');
SELECT set_eq($$SELECT tbl, trig FROM public.fired_cols$$,
              $$VALUES ('task_tau', 'col_tau'), ('task_tau', 'col_tau_after')$$,
              'UPDATE OF tau_s fires (BEFORE and AFTER), UPDATE OF task_type does not');
DELETE FROM public.fired_cols;
SELECT is(pg_temp.cycle('col-type', 'colk', 2), 'done', 'a first completion of a key creates its profiles');
DELETE FROM public.fired_cols;
SELECT is(pg_temp.cycle('col-type', 'colk', 2), 'done', 'a second completion with column triggers on profiles');
SELECT is((SELECT count(*) FROM public.fired_cols WHERE tbl = 'profiles' AND trig = 'col_completions'), 2::bigint,
          'UPDATE OF completions fires for the key''s and the type''s profile, UPDATE OF created_at for neither');
DROP TRIGGER col_tau ON tforge.task_tau; DROP TRIGGER col_tau_after ON tforge.task_tau;
DROP TRIGGER col_type ON tforge.task_tau;
DROP TRIGGER col_completions ON tforge.profiles; DROP TRIGGER col_created ON tforge.profiles;
DELETE FROM tforge.profiles WHERE task_type = 'col-type';  -- the counts below are of the other types

-- Constraints and generated columns -----------------------------------------
ALTER TABLE tforge.task_tau ADD CONSTRAINT tau_below_8 CHECK (task_type <> 'cpu-light' OR tau_s < 8);
ALTER TABLE tforge.profiles ADD CONSTRAINT few_completions CHECK (completions <= 3);
SELECT throws_ok($$SELECT pg_temp.cycle('cpu-light', 'k', 1000)$$, '23514', NULL,
                 'a CHECK constraint added to task_tau is enforced on completion');
SELECT is((SELECT completions FROM tforge.profiles WHERE task_key = 'k'), 2::bigint, 'the refused completion changed no profile');
ALTER TABLE tforge.task_tau DROP CONSTRAINT tau_below_8;
SELECT is(pg_temp.cycle('cpu-light', 'k', 1), 'done', 'a third completion of key k fits the CHECK on profiles');
SELECT throws_ok($$SELECT pg_temp.cycle('cpu-light', 'k', 1)$$, '23514', NULL,
                 'a CHECK constraint added to profiles is enforced on completion');
ALTER TABLE tforge.profiles DROP CONSTRAINT few_completions;
-- A CHECK through a SQL function (which the compiled constraint inlines):
-- replacing the function is seen by the next completion.
CREATE FUNCTION public.tau_ok(t float8) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT t < 1000 $$;
ALTER TABLE tforge.task_tau ADD CONSTRAINT tau_ok CHECK (public.tau_ok(tau_s));
SELECT is(pg_temp.cycle('cpu-light', 'k', 1), 'done', 'a CHECK through a function holds');
CREATE OR REPLACE FUNCTION public.tau_ok(t float8) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT t < 0.001 $$;
SELECT throws_ok($$SELECT pg_temp.cycle('cpu-light', 'k', 1)$$, '23514', NULL,
                 'the replaced function is what the CHECK evaluates next');
ALTER TABLE tforge.task_tau DROP CONSTRAINT tau_ok;
ALTER TABLE tforge.task_tau ADD COLUMN tau_ms float8 GENERATED ALWAYS AS (tau_s * 1000) STORED;
SELECT is(pg_temp.cycle('cpu-light', 'k', 1), 'done', 'completion with a stored generated column on task_tau');
SELECT is((SELECT tau_ms FROM tforge.task_tau WHERE task_type = 'cpu-light'), tforge.get_tau('cpu-light') * 1000,
          'the generated column follows the learned tau');
ALTER TABLE tforge.task_tau DROP COLUMN tau_ms;

-- Expression and partial indexes --------------------------------------------
CREATE INDEX profiles_runs ON tforge.profiles ((tforge.rolling_stats_count(runtime)));
CREATE INDEX profiles_busy ON tforge.profiles (completions) WHERE completions > 4;
CREATE INDEX tau_samples ON tforge.task_tau ((samples * 2)) WHERE tau_s > 1;
SELECT is(pg_temp.cycle('gpu-training', 'g', 30), 'done', 'first completion with expression and partial indexes');
SELECT is(pg_temp.cycle('gpu-training', 'g', 30), 'done', 'later completions too (index entries of non-HOT versions)');
SELECT is(pg_temp.cycle('cpu-light', 'k', 5), 'done', 'and on a profile that enters the partial index');
-- The indexes answer as a scan of the table does.
SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*) FROM tforge.profiles WHERE tforge.rolling_stats_count(runtime) = 2), 2::bigint,
          'expression index finds the profiles of gpu-training with two runs');
SELECT is((SELECT array_agg(coalesce(task_key, '-') ORDER BY task_key) FROM tforge.profiles WHERE completions > 4),
          ARRAY['k', '-'], 'partial index holds the profiles past four completions');
SELECT is((SELECT array_agg(task_type ORDER BY task_type) FROM tforge.task_tau WHERE samples * 2 = 4 AND tau_s > 1),
          ARRAY['gpu-training', 'mixed'], 'partial expression index on task_tau (two samples each: two completions, two update_tau)');
RESET enable_seqscan; RESET enable_bitmapscan;

-- Publications and replica identity -----------------------------------------
SET LOCAL client_min_messages = error;  -- the test cluster's wal_level is not logical: a WARNING
CREATE PUBLICATION everything FOR ALL TABLES;
RESET client_min_messages;
SELECT is(pg_temp.cycle('mixed', 'm', 4), 'done', 'completions work under a FOR ALL TABLES publication (first)');
SELECT is(pg_temp.cycle('mixed', 'm', 4), 'done', 'and later (profiles has a primary key)');
ALTER TABLE tforge.profiles REPLICA IDENTITY NOTHING;
SELECT throws_ok($$SELECT pg_temp.cycle('mixed', 'm', 4)$$, '55000', NULL,
                 'without a replica identity the published update is refused, as UPDATE refuses it');
ALTER TABLE tforge.profiles REPLICA IDENTITY DEFAULT;

-- Row-level security: refused (0A000), never bypassed -------------------------
CREATE ROLE harden_rls_admin;
GRANT tforge_admin TO harden_rls_admin;
ALTER TABLE tforge.task_tau ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone ON tforge.task_tau USING (true);
SET LOCAL ROLE harden_rls_admin;
SELECT throws_ok($$SELECT tforge.update_tau('cpu-light', 5)$$, '0A000', NULL,
                 'a learned-state write that row-level security applies to is refused');
RESET ROLE;

-- Read-only transactions ----------------------------------------------------
-- Storage: a profile's rewritten columns are compressed before the update,
-- as TOAST compresses them (the column's method, the row kept inline).
SELECT count(pg_temp.cycle('cpu-light', 'storage', 2 + i / 10.0)) FROM generate_series(1, 100) i;
SELECT reltoastrelid::regclass AS profiles_toast FROM pg_class WHERE oid = 'tforge.profiles'::regclass \gset
SELECT is((SELECT pg_column_compression(p.recent) FROM tforge.profiles p WHERE p.task_key = 'storage'),
          (SELECT CASE a.attcompression WHEN 'l' THEN 'lz4' WHEN 'p' THEN 'pglz'
                  ELSE current_setting('default_toast_compression') END
             FROM pg_attribute a WHERE a.attrelid = 'tforge.profiles'::regclass AND a.attname = 'recent'),
          'a profile''s ring is stored compressed with its column''s method');
SELECT is((SELECT count(*) FROM :profiles_toast), 0::bigint, 'profiles stay inline: nothing in their TOAST table');

SET LOCAL transaction_read_only = on;
SELECT throws_ok($$SELECT tforge.update_tau('cpu-light', 5)$$, '25006', NULL, 'read-only transactions are refused');

SELECT * FROM finish();
ROLLBACK;
