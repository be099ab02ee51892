-- Every task names a task type that exists: two triggers keep the rule a
-- foreign key kept before (src/task_type_ref.c), without locking the type's
-- row on every submit. Direct writes, renames, deletes and TRUNCATE are
-- refused with 23503 as the foreign key refused them, and a submit and a
-- delete of its type running at the same time never leave a task without
-- its type, whichever commits first. The second and third sessions are
-- dblink connections.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT tforge.define_task_type('ref-a', 10), tforge.define_task_type('ref-b', 10),
       tforge.define_task_type('ref-c', 10), tforge.define_task_type('ref-d', 10),
       tforge.define_task_type('ref-e', 10);
SELECT dblink_connect('b', tap_connstr()), dblink_connect('c', tap_connstr());

SELECT plan(20);

-- Direct writes.
SELECT throws_ok($$ INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
                    VALUES ('no-such-type', now(), 1, now(), 1) $$,
                 '23503', 'task type "no-such-type" does not exist', 'a direct INSERT of an unknown type is refused');
SELECT tforge.submit_task('ref-a') AS a_task \gset
SELECT throws_ok(format($$ UPDATE tforge.tasks SET task_type = 'no-such-type' WHERE task_id = %s $$, :a_task),
                 '23503', NULL, 'changing a task to an unknown type is refused');
SELECT lives_ok(format($$ UPDATE tforge.tasks SET task_type = 'ref-b' WHERE task_id = %s $$, :a_task),
                'changing a task to another existing type is allowed');
SELECT lives_ok(format($$ UPDATE tforge.tasks SET priority = 3 WHERE task_id = %s $$, :a_task),
                'an update that leaves the type alone is not checked');

-- The type's side.
SELECT throws_ok($$ DELETE FROM tforge.task_types WHERE name = 'ref-b' $$, '23503',
                 'task type "ref-b" is named by tasks', 'a type that tasks name cannot be deleted');
SELECT throws_ok($$ UPDATE tforge.task_types SET name = 'ref-b2' WHERE name = 'ref-b' $$, '23503', NULL,
                 'a type that tasks name cannot be renamed');
SELECT lives_ok($$ UPDATE tforge.task_types SET lambda = 0.5 WHERE name = 'ref-b' $$,
                'a type that tasks name can change its other columns');
SELECT throws_ok($$ TRUNCATE tforge.task_types CASCADE $$, '23503', NULL,
                 'task_types cannot be truncated while tasks has rows');
SELECT lives_ok($$ DELETE FROM tforge.task_types WHERE name = 'ref-a' $$, 'a type no task names can be deleted');

-- One statement that deletes a type and inserts a task of it, either side
-- in a WITH clause, is refused whichever side runs first.
SELECT throws_ok($$ WITH d AS (DELETE FROM tforge.task_types WHERE name = 'ref-e' RETURNING 1)
                    INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
                    VALUES ('ref-e', now(), 1, now(), 1) $$,
                 '23503', NULL, 'one statement cannot delete a type and insert a task of it');
SELECT throws_ok($$ WITH i AS (INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
                               VALUES ('ref-e', now(), 1, now(), 1) RETURNING 1)
                    DELETE FROM tforge.task_types WHERE name = 'ref-e' $$,
                 '23503', NULL, 'nor insert a task of a type and delete the type');

-- A submit in flight, then a delete of its type: the delete waits for the
-- submit to commit, then finds its task.
SELECT dblink_exec('b', 'BEGIN');
SELECT * FROM dblink('b', $$ SELECT tforge.submit_task('ref-c') $$) AS t(id bigint);
SELECT dblink_send_query('c', $$ DELETE FROM tforge.task_types WHERE name = 'ref-c' $$);
SELECT pg_sleep(0.2);
SELECT dblink_exec('b', 'COMMIT');
SELECT count(*) FROM dblink_get_result('c', false) AS t(r text);
SELECT matches(dblink_error_message('c'), 'task type "ref-c" is named by tasks',
               'a delete of a type waits for a submit in flight and then refuses');
SELECT count(*) FROM dblink_get_result('c', false) AS t(r text);
SELECT ok(EXISTS (SELECT 1 FROM tforge.task_types WHERE name = 'ref-c'), 'the type of the committed task is still there');

-- A delete of a type in flight, then a submit of it: the submit waits for
-- the delete to commit, then finds no type.
SELECT dblink_exec('c', 'BEGIN');
SELECT dblink_exec('c', $$ DELETE FROM tforge.task_types WHERE name = 'ref-d' $$);
SELECT dblink_send_query('b', $$ SELECT tforge.submit_task('ref-d') $$);
SELECT pg_sleep(0.2);
SELECT dblink_exec('c', 'COMMIT');
SELECT count(*) FROM dblink_get_result('b', false) AS t(r bigint);
SELECT matches(dblink_error_message('b'), 'task type "ref-d" does not exist',
               'a submit waits for a delete of its type in flight and then refuses');
SELECT count(*) FROM dblink_get_result('b', false) AS t(r bigint);
SELECT is((SELECT count(*) FROM tforge.tasks WHERE task_type NOT IN (SELECT name FROM tforge.task_types)),
          0::bigint, 'no task names a type that does not exist');

-- Attached by an admin to a table of its own, the trigger refuses (39P01)
-- rather than read another row type.
CREATE ROLE tap_ref_admin IN ROLE tforge_admin;
CREATE SCHEMA tap_ref AUTHORIZATION tap_ref_admin;
SET ROLE tap_ref_admin;
CREATE TABLE tap_ref.t (task_type int);
CREATE TRIGGER t BEFORE INSERT ON tap_ref.t FOR EACH ROW EXECUTE FUNCTION tforge._task_type_exists();
SELECT throws_ok($$ INSERT INTO tap_ref.t VALUES (1) $$, '39P01', NULL,
                 'the trigger refuses a table other than tforge.tasks');
RESET ROLE;

-- The in-use check reads every task, as the foreign key did: a row-level
-- security policy that hides a task from the deleter does not let it delete
-- the task's type, and a role that may delete types without reading tasks
-- may delete one no task names.
SELECT tforge.define_task_type('ref-rls', 10), tforge.define_task_type('ref-free', 10);
SELECT tforge.submit_task('ref-rls', task_key => 'not-the-admin');
ALTER TABLE tforge.tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tap_ref_own ON tforge.tasks USING (task_key = current_user);
SET ROLE tap_ref_admin;
SELECT is((SELECT count(*) FROM tforge.tasks WHERE task_type = 'ref-rls'), 0::bigint,
          'the policy hides the task from the admin');
SELECT throws_ok($$ DELETE FROM tforge.task_types WHERE name = 'ref-rls' $$, '23503',
                 'task type "ref-rls" is named by tasks', 'a type named by a task the deleter cannot see is not deleted');
RESET ROLE;
DROP POLICY tap_ref_own ON tforge.tasks;
ALTER TABLE tforge.tasks DISABLE ROW LEVEL SECURITY;
CREATE ROLE tap_ref_typist;
GRANT USAGE ON SCHEMA tforge TO tap_ref_typist;
GRANT SELECT, UPDATE, DELETE ON tforge.task_types TO tap_ref_typist;
SET ROLE tap_ref_typist;
SELECT lives_ok($$ DELETE FROM tforge.task_types WHERE name = 'ref-free' $$,
                'a role that may delete types but not read tasks deletes a type no task names');
SELECT throws_ok($$ UPDATE tforge.task_types SET name = 'ref-rls2' WHERE name = 'ref-rls' $$, '23503', NULL,
                 'and cannot rename one a task names');
RESET ROLE;

SELECT dblink_disconnect('b'), dblink_disconnect('c');
DROP SCHEMA tap_ref CASCADE;
DROP OWNED BY tap_ref_typist;
DROP ROLE tap_ref_typist;
DROP ROLE tap_ref_admin;
SELECT * FROM finish();
