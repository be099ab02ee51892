-- A completion that waits for a concurrent UPDATE of its learned row, when
-- that UPDATE changed the row's key (task_tau.task_type, profiles.task_key),
-- must not learn into the row that now has the other key: an UPDATE ...
-- WHERE task_type = 'x' under READ COMMITTED rechecks its condition on the
-- new version and passes it over, and so does the learned write, which then
-- finds no row for its key and creates one. Checked for each write path:
-- update_tau (the update found), update_tau with a BEFORE UPDATE trigger on
-- task_tau (the row locked first), _profile_record (profiles), and
-- complete_tasks (a batch locks its rows). The other session is a dblink
-- connection that commits after a second, while this one waits for its
-- row lock. Expected values: lambda * runtime + (1 - lambda) * default_tau
-- for a type's first runtime, worked from the definitions below.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT dblink_connect('b', tap_connstr());
SELECT current_setting('tforge.ema_lambda')::float8 AS l \gset

SELECT plan(10);

SELECT tforge.define_task_type(t, 10) FROM unnest(ARRAY['kc-x', 'kc-y', 'kt-x', 'kt-y', 'kb-x', 'kb-y']) t;
SELECT tforge.set_tau('kc-x', 10), tforge.set_tau('kt-x', 10), tforge.set_tau('kb-x', 10);

-- update_tau
SELECT dblink_exec('b', 'BEGIN');
SELECT dblink_exec('b', $$ UPDATE tforge.task_tau SET task_type = 'kc-y' WHERE task_type = 'kc-x' $$);
SELECT dblink_send_query('b', 'SELECT pg_sleep(1); COMMIT');
SELECT tforge.update_tau('kc-x', 100);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'kc-y'), 10::float8,
          'update_tau does not learn into the row renamed away from its type while it waited');
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'kc-x'), :l::float8 * 100 + (1 - :l::float8) * 10,
          'it creates its type''s row from the first runtime instead');

-- update_tau with a BEFORE UPDATE trigger on task_tau (the row is locked first)
CREATE FUNCTION public.kc_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER kc_keep BEFORE UPDATE ON tforge.task_tau FOR EACH ROW EXECUTE FUNCTION public.kc_keep();
SELECT dblink_exec('b', 'BEGIN');
SELECT dblink_exec('b', $$ UPDATE tforge.task_tau SET task_type = 'kt-y' WHERE task_type = 'kt-x' $$);
SELECT dblink_send_query('b', 'SELECT pg_sleep(1); COMMIT');
SELECT tforge.update_tau('kt-x', 100);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
DROP TRIGGER kc_keep ON tforge.task_tau;
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'kt-y'), 10::float8,
          'with a BEFORE trigger, the renamed row is not learned into');
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'kt-x'), :l::float8 * 100 + (1 - :l::float8) * 10,
          'and the type''s row is created');

-- profiles: a key's profile renamed to another key
SELECT tforge._profile_record('kc-x', 'k1', 10, NULL, NULL, NULL, NULL);
SELECT dblink_exec('b', 'BEGIN');
SELECT dblink_exec('b', $$ UPDATE tforge.profiles SET task_key = 'k2' WHERE task_type = 'kc-x' AND task_key = 'k1' $$);
SELECT dblink_send_query('b', 'SELECT pg_sleep(1); COMMIT');
SELECT tforge._profile_record('kc-x', 'k1', 10, NULL, NULL, NULL, NULL);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'kc-x' AND task_key = 'k2'), 1::bigint,
          'a profile renamed to another key while the record waited keeps its one completion');
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'kc-x' AND task_key = 'k1'), 1::bigint,
          'the key''s profile is created with the new completion');
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'kc-x' AND task_key IS NULL), 2::bigint,
          'the type''s profile has both');

-- complete_tasks: a batch locks each learned row before it learns
SELECT tforge.submit_task('kb-x') AS kb \gset
SELECT c.claim_token AS kbtok FROM tforge.claim_tasks('w', task_types => ARRAY['kb-x']) c \gset
SELECT dblink_exec('b', 'BEGIN');
SELECT dblink_exec('b', $$ UPDATE tforge.task_tau SET task_type = 'kb-y' WHERE task_type = 'kb-x' $$);
SELECT dblink_send_query('b', 'SELECT pg_sleep(1); COMMIT');
SELECT is((SELECT status FROM tforge.complete_tasks('w', ARRAY[:kb]::bigint[],
                                                    ARRAY['{"runtime_s": 100}']::jsonb[], ARRAY[:kbtok]::bigint[])),
          'done', 'a batch completes its task');
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT count(*) FROM dblink_get_result('b') AS t(r text);
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'kb-y'), 10::float8,
          'a batch does not learn into the row renamed away from its type');
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'kb-x'), :l::float8 * 100 + (1 - :l::float8) * 10,
          'it creates its type''s row');

SELECT dblink_disconnect('b');
SELECT * FROM finish();
