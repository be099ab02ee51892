-- A backend finds a learned row again through the root of its HOT chain,
-- remembered across transactions (src/rowcache.c), instead of descending the
-- index. What it reads must always be what the index would find: checked
-- here after another session rewrote the row in place (a HOT update), put a
-- new row in its place (a new chain), and emptied the table with VACUUM
-- cutting its file, which leaves the remembered TID past the end of the file;
-- and after the newest version this backend saw was pruned by VACUUM and its
-- line pointer taken by a version of another row (the walk from there must
-- not read that row).
-- update_tau reads tau through that lookup (the type's default_tau_s when
-- the type has no row) and returns lambda * runtime + (1 - lambda) * tau;
-- the expected values are that formula worked from the tau the other
-- session wrote.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT dblink_connect('other', tap_connstr());
SELECT current_setting('tforge.ema_lambda')::float8 AS l \gset
SELECT default_tau_s AS d FROM tforge.task_types WHERE name = 'cpu-light' \gset

SELECT plan(13);

DELETE FROM tforge.task_tau;
SELECT is(tforge.update_tau('cpu-light', 10), :l::float8 * 10 + (1 - :l::float8) * :d::float8,
          'a first runtime moves the default tau by lambda');
SELECT is(tforge.update_tau('cpu-light', 20),
          :l::float8 * 20 + (1 - :l::float8) * (:l::float8 * 10 + (1 - :l::float8) * :d::float8),
          'a second runtime moves the learned tau by lambda');

SELECT dblink_exec('other', $$ UPDATE tforge.task_tau SET tau_s = 100 WHERE task_type = 'cpu-light' $$);
SELECT is(tforge.update_tau('cpu-light', 20), :l::float8 * 20 + (1 - :l::float8) * 100,
          'tau rewritten by another session is read, not the version this backend wrote');

SELECT dblink_exec('other', $$ DELETE FROM tforge.task_tau $$);
SELECT dblink_exec('other', $$ INSERT INTO tforge.task_tau (task_type, tau_s, samples) VALUES ('cpu-light', 50, 1) $$);
SELECT is(tforge.update_tau('cpu-light', 20), :l::float8 * 20 + (1 - :l::float8) * 50,
          'a row put in the old one''s place is found');

-- cpu-heavy's row shares the page. The other session rewrites cpu-light
-- (the version this backend wrote last dies), VACUUM frees the dead
-- versions' line pointers, and cpu-heavy is rewritten in one transaction
-- (which prunes nothing) until its live version takes that line pointer.
SELECT ctid AS seen FROM tforge.task_tau WHERE task_type = 'cpu-light' \gset
SELECT dblink_exec('other', $$ INSERT INTO tforge.task_tau (task_type, tau_s, samples) VALUES ('cpu-heavy', 7, 1) $$);
SELECT dblink_exec('other', $$ UPDATE tforge.task_tau SET tau_s = 77 WHERE task_type = 'cpu-light' $$);
SELECT dblink_exec('other', $$ VACUUM tforge.task_tau $$);
SELECT dblink_exec('other', format($f$ DO $d$ BEGIN
  FOR i IN 1..200 LOOP
    UPDATE tforge.task_tau SET tau_s = 7 + i WHERE task_type = 'cpu-heavy';
    EXIT WHEN (SELECT ctid FROM tforge.task_tau WHERE task_type = 'cpu-heavy') = %L::tid;
  END LOOP;
END $d$ $f$, :'seen'));
SELECT is((SELECT ctid FROM tforge.task_tau WHERE task_type = 'cpu-heavy'), :'seen'::tid,
          'cpu-heavy''s live version is where the version of cpu-light this backend wrote last was');
SELECT is(tforge.update_tau('cpu-light', 20), :l::float8 * 20 + (1 - :l::float8) * 77,
          'a version pruned and its line pointer reused by another row: the row asked for is read, not that one');

SELECT dblink_exec('other', $$ DELETE FROM tforge.task_tau $$);
SELECT dblink_exec('other', $$ VACUUM tforge.task_tau $$);
SELECT is(pg_relation_size('tforge.task_tau'), 0::bigint, 'VACUUM cut the emptied table''s file');
SELECT is(tforge.update_tau('cpu-light', 30), :l::float8 * 30 + (1 - :l::float8) * :d::float8,
          'a row remembered past the end of the file is not read: the type starts from its default again');

-- In one transaction: a TRUNCATE gives the tables new files, rows are
-- learned into them (twice: the second write is remembered), and a second
-- TRUNCATE empties those files in place (they are new in this transaction),
-- keeping their names: the rows this transaction remembered writing are
-- then past their end, for tau and for profiles. (COMMIT, not ROLLBACK:
-- pgTAP's results are rows of this transaction too.)
BEGIN;
TRUNCATE tforge.task_tau, tforge.profiles;
SELECT tforge.update_tau('cpu-light', 10);
SELECT tforge.update_tau('cpu-light', 10);
SELECT tforge._profile_record('cpu-light', 'k', 10, NULL, NULL, NULL, NULL);
SELECT tforge._profile_record('cpu-light', 'k', 10, NULL, NULL, NULL, NULL);
SELECT pg_relation_filenode('tforge.task_tau') AS before_fn \gset
TRUNCATE tforge.task_tau, tforge.profiles;
SELECT is(pg_relation_filenode('tforge.task_tau'), :before_fn::oid, 'the second TRUNCATE kept the file');
SELECT lives_ok($$ SELECT tforge.update_tau('cpu-light', 40) $$,
                'a tau row this transaction wrote before its file was emptied is not read');
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'cpu-light'),
          :l::float8 * 40 + (1 - :l::float8) * :d::float8, 'the type starts from its default again');
SELECT lives_ok($$ SELECT tforge._profile_record('cpu-light', 'k', 10, NULL, NULL, NULL, NULL) $$,
                'a profile written before its file was emptied is created again');
SELECT is((SELECT array_agg(completions ORDER BY task_key NULLS FIRST) FROM tforge.profiles WHERE task_type = 'cpu-light'),
          ARRAY[1, 1]::bigint[], 'one completion in the type''s profile and in the key''s');
COMMIT;

SELECT dblink_disconnect('other');
SELECT * FROM finish();
