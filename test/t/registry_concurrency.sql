-- Concurrent transitions of one version serialize: with dblink, session A
-- moves a version and keeps its transaction open, session B tries to move
-- the same version and must wait on A's row lock; once A commits, B works
-- from A's result. The data must be committed for B to see it, so this
-- suite commits and removes what it created at the end.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_STOP true
SET client_min_messages = warning;
-- tforge's operators (semver =) without schema-qualifying each one.
SET search_path = public, tforge;

-- B's call, with its outcome as text so an error is a value, not an abort.
CREATE FUNCTION public.reg_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  EXECUTE sql INTO result;
  RETURN 'ok ' || result;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END
$$;

-- True once the backend with pid waits for a lock held by holder (pg_blocking_pids
-- reads the lock manager live, so the loop sees the change); gives up after 10 s.
CREATE FUNCTION public.reg_blocked_by(pid int, holder int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. 200 LOOP
    IF pg_catalog.pg_blocking_pids(pid) @> ARRAY[holder] THEN
      RETURN true;
    END IF;
    PERFORM pg_catalog.pg_sleep(0.05);
  END LOOP;
  RETURN false;
END
$$;

SELECT count(tforge.register_model('conc_test', v::tforge.semver, 'onnx'))
  FROM unnest(ARRAY['1.0.0', '2.0.0']) v;
SELECT count(tforge.transition_model('conc_test', '1.0.0', s))
  FROM unnest(ARRAY['validating', 'staging']::tforge.deployment_state[]) WITH ORDINALITY s(s, o);
SELECT count(tforge.transition_model('conc_test', '2.0.0', s))
  FROM unnest(ARRAY['validating', 'staging', 'canary']::tforge.deployment_state[]) WITH ORDINALITY s(s, o);
-- Model conc_promo: 1.0.0 in production, 1.1.0 and 1.2.0 in canary.
SELECT count(tforge.register_model('conc_promo', v::tforge.semver, 'onnx'))
  FROM unnest(ARRAY['1.0.0', '1.1.0', '1.2.0']) v;
SELECT count(tforge.transition_model('conc_promo', v::tforge.semver, s))
  FROM unnest(ARRAY['1.0.0', '1.1.0', '1.2.0']) v,
       unnest(ARRAY['validating', 'staging', 'canary']::tforge.deployment_state[]) WITH ORDINALITY s(s, o);
SELECT count(tforge.transition_model('conc_promo', '1.0.0', 'production'));

SELECT dblink_connect('reg_a', tap_connstr());
SELECT dblink_connect('reg_b', tap_connstr());
SELECT dblink_exec('reg_a', 'SET search_path = public, tforge');
SELECT dblink_exec('reg_b', 'SET search_path = public, tforge');
CREATE TEMP TABLE pids AS
  SELECT (SELECT p FROM dblink('reg_a', 'SELECT pg_backend_pid()') t(p int)) AS a,
         (SELECT p FROM dblink('reg_b', 'SELECT pg_backend_pid()') t(p int)) AS b;

SELECT plan(19);

-- dblink needs a call of dblink_get_result that returns no row before the
-- connection can be used again: the "b_left" lines.

-- 1. The same move twice: A staging -> canary (open), B staging -> canary
--    waits, then fails because the version is already in canary.
SELECT dblink_exec('reg_a', 'BEGIN');
SELECT is((SELECT s FROM dblink('reg_a', $$SELECT (tforge.transition_model('conc_test', '1.0.0', 'canary')).state::text$$) t(s text)),
          'canary', 'A moves 1.0.0 to canary and keeps its transaction open');
SELECT dblink_send_query('reg_b', $$SELECT public.reg_try('SELECT (tforge.transition_model(''conc_test'', ''1.0.0'', ''canary'')).state')$$);
SELECT ok(public.reg_blocked_by(b, a), 'B, moving the same version, waits for A') FROM pids;
SELECT is(dblink_is_busy('reg_b'), 1, 'B has not finished while A is open');
SELECT dblink_exec('reg_a', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('reg_b') t(r text)),
          '55000 invalid deployment state transition from "canary" to "canary"',
          'after A commits, B sees canary and its move is refused');
SELECT count(*) AS b_left FROM dblink_get_result('reg_b') t(r text) \gset
SELECT is((SELECT count(*) FROM tforge.model_state_history
            WHERE model_id = 'conc_test' AND version = '1.0.0' AND to_state = 'canary'),
          1::bigint, 'the history has one move to canary');

-- 2. Two moves that are only valid in sequence: A canary -> production
--    (open), B production -> deprecated, which is invalid from canary: B
--    must wait and then succeed from A's committed state.
SELECT dblink_exec('reg_a', 'BEGIN');
SELECT is((SELECT s FROM dblink('reg_a', $$SELECT (tforge.transition_model('conc_test', '1.0.0', 'production')).state::text$$) t(s text)),
          'production', 'A promotes 1.0.0 to production and keeps its transaction open');
SELECT dblink_send_query('reg_b', $$SELECT public.reg_try('SELECT (tforge.transition_model(''conc_test'', ''1.0.0'', ''deprecated'')).state')$$);
SELECT ok(public.reg_blocked_by(b, a), 'B, deprecating the same version, waits for A') FROM pids;
SELECT dblink_exec('reg_a', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('reg_b') t(r text)), 'ok deprecated',
          'after A commits, B deprecates the production version');
SELECT count(*) AS b_left FROM dblink_get_result('reg_b') t(r text) \gset
SELECT is(ARRAY(SELECT from_state || '>' || to_state FROM tforge.model_state_history
                 WHERE model_id = 'conc_test' AND version = '1.0.0' AND from_state IS NOT NULL
                 ORDER BY history_id),
          ARRAY['registered>validating', 'validating>staging', 'staging>canary',
                'canary>production', 'production>deprecated'],
          'the history is the serial order of the committed moves');

-- 3. Direct UPDATEs race through the trigger: A canary -> production (open),
--    B canary -> staging (valid when B started); after A commits B re-reads
--    the row, finds production, and the trigger refuses production -> staging.
SELECT dblink_exec('reg_a', 'BEGIN');
SELECT dblink_exec('reg_a', $$UPDATE tforge.model_versions SET state = 'production' WHERE model_id = 'conc_test' AND version = '2.0.0'$$);
SELECT dblink_send_query('reg_b', $$SELECT public.reg_try('UPDATE tforge.model_versions SET state = ''staging'' WHERE model_id = ''conc_test'' AND version = ''2.0.0'' RETURNING state')$$);
SELECT ok(public.reg_blocked_by(b, a), 'B''s UPDATE of the same row waits for A') FROM pids;
SELECT dblink_exec('reg_a', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('reg_b') t(r text)),
          '55000 invalid deployment state transition from "production" to "staging"',
          'after A commits, the trigger judges B''s UPDATE against the committed state');
SELECT count(*) AS b_left FROM dblink_get_result('reg_b') t(r text) \gset
SELECT is((SELECT state::text FROM tforge.model_versions WHERE model_id = 'conc_test' AND version = '2.0.0'),
          'production', '2.0.0 is in production');
SELECT is((SELECT count(*) FROM tforge.model_state_history
            WHERE model_id = 'conc_test' AND version = '2.0.0' AND to_state = 'staging' AND from_state = 'production'),
          0::bigint, 'the refused UPDATE left no history');

-- 4. A rolled-back move changes nothing and releases B.
SELECT dblink_exec('reg_a', 'BEGIN');
SELECT s AS a_state FROM dblink('reg_a', $$SELECT (tforge.transition_model('conc_test', '2.0.0', 'deprecated')).state::text$$) t(s text) \gset
SELECT dblink_send_query('reg_b', $$SELECT public.reg_try('SELECT (tforge.transition_model(''conc_test'', ''2.0.0'', ''deprecated'')).state')$$);
SELECT ok(public.reg_blocked_by(b, a), 'B waits for A''s uncommitted move') FROM pids;
SELECT dblink_exec('reg_a', 'ROLLBACK');
SELECT is((SELECT r FROM dblink_get_result('reg_b') t(r text)), 'ok deprecated',
          'after A rolls back, B makes the same move from production');
SELECT count(*) AS b_left FROM dblink_get_result('reg_b') t(r text) \gset

-- 5. Two promotions of different versions of one model, each archiving the
--    previous production version: they serialize on the model, so B also
--    retires A's freshly promoted version and one version is left in production.
SELECT dblink_exec('reg_a', 'BEGIN');
SELECT is((SELECT s FROM dblink('reg_a', $$SELECT (tforge.transition_model('conc_promo', '1.1.0', 'production', 'archive')).state::text$$) t(s text)),
          'production', 'A promotes 1.1.0, archiving 1.0.0, and keeps its transaction open');
SELECT dblink_send_query('reg_b', $$SELECT public.reg_try('SELECT (tforge.transition_model(''conc_promo'', ''1.2.0'', ''production'', ''archive'')).state')$$);
SELECT ok(public.reg_blocked_by(b, a), 'B, promoting another version of the same model, waits for A') FROM pids;
SELECT dblink_exec('reg_a', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('reg_b') t(r text)), 'ok production', 'after A commits, B promotes 1.2.0');
SELECT count(*) AS b_left FROM dblink_get_result('reg_b') t(r text) \gset
SELECT is(ARRAY(SELECT version::text || ' ' || state FROM tforge.model_versions WHERE model_id = 'conc_promo' ORDER BY version),
          ARRAY['1.0.0 archived', '1.1.0 archived', '1.2.0 production'],
          'only the last promoted version is left in production');

SELECT * FROM finish();

SELECT dblink_disconnect('reg_a');
SELECT dblink_disconnect('reg_b');
DELETE FROM tforge.models WHERE model_id IN ('conc_test', 'conc_promo');
DROP FUNCTION public.reg_try(text);
DROP FUNCTION public.reg_blocked_by(int, int);
