-- Wake-ups follow the listeners (wakeup.c): a submit NOTIFYs tforge_tasks
-- while some backend listens on it, and not once the last listener has
-- gone, whether by UNLISTEN tforge_tasks, UNLISTEN *, DISCARD ALL, the
-- rollback of its LISTEN or the end of its session; a worker that listens
-- again is woken again; listeners of another database do not count.
--
-- How "not sent" is seen: NOTIFY writes each notification into
-- PostgreSQL's notification queue at commit, whoever listens, and
-- pg_notification_queue_usage() reports the queue's occupied pages. A
-- session listening on another channel and left idle in a transaction
-- ('hold') reads nothing, so the queue's tail stays behind it, and the
-- pages written during a step stay counted. The submits use a task type
-- whose name (the payload) is 7,000 bytes, so that every notification
-- takes a page of its own: four submitting transactions that notify add
-- about four pages, four that do not add none. The first step, with a
-- listener that receives the four notifications, measures what four
-- notifications add; a step notifies when it adds at least half of that.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(31);

SELECT dblink_connect('hold', tap_connstr()), dblink_connect('sub', tap_connstr()),
       dblink_connect('w1', tap_connstr()), dblink_connect('w2', tap_connstr());
SELECT 1 FROM dblink('sub', $$SELECT 1 FROM tforge.define_task_type(repeat('w', 7000), 1)$$) AS t(x int);
SELECT dblink_exec('hold', 'LISTEN tforge_test_hold');
SELECT dblink_exec('hold', 'BEGIN');
SELECT * FROM dblink('hold', 'SELECT 1') AS t(x int);

-- step(): four submits of the long type, each in a transaction of its own,
-- on 'sub'; the growth of the queue's usage it caused.
CREATE FUNCTION pg_temp.step() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
  before float8 := pg_notification_queue_usage();
BEGIN
  FOR i IN 1 .. 4 LOOP
    PERFORM * FROM dblink('sub', $q$SELECT tforge.submit_task(repeat('w', 7000))$q$) AS t(task_id bigint);
  END LOOP;
  RETURN pg_notification_queue_usage() - before;
END $$;
-- notes(w): the tforge_tasks notifications session w has received since the last call.
CREATE FUNCTION pg_temp.notes(w text) RETURNS bigint LANGUAGE sql AS $$
  SELECT pg_sleep(0.2);
  SELECT 1 FROM dblink(w, 'SELECT 1') AS t(x int) WHERE false;
  SELECT count(*) FROM dblink_get_notify(w) WHERE notify_name = 'tforge_tasks' AND extra = repeat('w', 7000);
$$;
CREATE TEMP TABLE unit (usage float8);
-- sent(): did a step notify (its growth at least half of four notifications')?
CREATE FUNCTION pg_temp.sent() RETURNS boolean LANGUAGE sql AS $$
  SELECT pg_temp.step() >= (SELECT usage FROM unit) / 2
$$;

-- ------------------------------------------------------- listen, unlisten
SELECT dblink_exec('w1', 'LISTEN tforge_tasks');
INSERT INTO unit SELECT pg_temp.step();
SELECT ok((SELECT usage FROM unit) > 0, 'four notifying submits grow the notification queue (the measure works)');
SELECT is(pg_temp.notes('w1'), 4::bigint, 'a listening worker receives a notification per submitting transaction');
SELECT dblink_exec('w1', 'UNLISTEN tforge_tasks');
SELECT ok(NOT pg_temp.sent(), 'after UNLISTEN tforge_tasks of the only listener, submits notify no more');
SELECT is(pg_temp.notes('w1'), 0::bigint, 'and the worker receives nothing');
SELECT dblink_exec('w1', 'LISTEN tforge_tasks');
SELECT ok(pg_temp.sent(), 'a worker that listens again makes submits notify again');
SELECT is(pg_temp.notes('w1'), 4::bigint, 'and it receives them');
SELECT dblink_exec('w1', 'UNLISTEN *');
SELECT ok(NOT pg_temp.sent(), 'after UNLISTEN *, submits do not notify');
SELECT dblink_exec('w1', 'LISTEN tforge_tasks');
SELECT dblink_exec('w1', 'DISCARD ALL');
SELECT ok(NOT pg_temp.sent(), 'after DISCARD ALL (a pool returning the connection), submits do not notify');
SELECT is(pg_temp.notes('w1'), 0::bigint, 'and the discarded session receives nothing');
SELECT dblink_exec('w1', 'LISTEN tforge_tasks; UNLISTEN tforge_tasks; LISTEN tforge_tasks');
SELECT ok(pg_temp.sent(), 'LISTEN, UNLISTEN, LISTEN in one transaction leaves a listener');
SELECT is(pg_temp.notes('w1'), 4::bigint, 'which receives them');

-- ------------------------------------------------------------ transactions
-- PostgreSQL applies LISTEN and UNLISTEN at commit: the count does too.
SELECT dblink_exec('w1', 'BEGIN');
SELECT dblink_exec('w1', 'UNLISTEN tforge_tasks');
SELECT dblink_exec('w1', 'ROLLBACK');
SELECT ok(pg_temp.sent(), 'an UNLISTEN rolled back leaves the listener counted');
SELECT is(pg_temp.notes('w1'), 4::bigint, 'and listening');
SELECT dblink_exec('w1', 'BEGIN');
SELECT dblink_exec('w1', 'UNLISTEN *');
SELECT ok(pg_temp.sent(), 'a listener''s UNLISTEN * not yet committed still counts');
SELECT dblink_exec('w1', 'COMMIT');
SELECT ok(NOT pg_temp.sent(), 'a committed UNLISTEN * does not count');
SELECT dblink_exec('w1', 'BEGIN');
SELECT dblink_exec('w1', 'LISTEN tforge_tasks');
SELECT dblink_exec('w1', 'ROLLBACK');
SELECT ok(NOT pg_temp.sent(), 'a LISTEN rolled back does not count');
SELECT dblink_exec('w1', 'BEGIN');
SELECT dblink_exec('w1', 'LISTEN tforge_tasks');
SELECT dblink_exec('w1', 'SELECT 1/0', false);
SELECT dblink_exec('w1', 'ROLLBACK');
SELECT ok(NOT pg_temp.sent(), 'a LISTEN whose transaction failed does not count');
SELECT dblink_exec('w1', 'BEGIN');
SELECT dblink_exec('w1', 'SAVEPOINT a');
SELECT dblink_exec('w1', 'LISTEN tforge_tasks');
SELECT dblink_exec('w1', 'ROLLBACK TO a');
SELECT dblink_exec('w1', 'COMMIT');
SELECT ok(NOT pg_temp.sent(), 'a LISTEN in a subtransaction rolled back does not count after the commit');
SELECT dblink_exec('w1', 'BEGIN');
SELECT dblink_exec('w1', 'SAVEPOINT a');
SELECT dblink_exec('w1', 'LISTEN tforge_tasks');
SELECT dblink_exec('w1', 'RELEASE a');
SELECT dblink_exec('w1', 'SAVEPOINT b');
SELECT dblink_exec('w1', 'UNLISTEN tforge_tasks');
SELECT dblink_exec('w1', 'ROLLBACK TO b');
SELECT dblink_exec('w1', 'COMMIT');
SELECT ok(pg_temp.sent(), 'a released LISTEN counts, an UNLISTEN rolled back to its savepoint does not');
SELECT is(pg_temp.notes('w1'), 4::bigint, 'and the worker receives them');
-- A LISTEN runs in a function too (SPI): the same rules.
SELECT dblink_exec('w1', $$DO 'BEGIN EXECUTE ''UNLISTEN tforge_tasks''; END'$$);
SELECT ok(NOT pg_temp.sent(), 'an UNLISTEN run from PL/pgSQL counts as one');

-- ------------------------------------------------------ several listeners
SELECT dblink_exec('w1', 'LISTEN tforge_tasks'), dblink_exec('w2', 'LISTEN tforge_tasks');
SELECT dblink_exec('w1', 'UNLISTEN tforge_tasks');
SELECT ok(pg_temp.sent(), 'while one of two listeners remains, submits notify');
SELECT is(pg_temp.notes('w2'), 4::bigint, 'the remaining listener receives them');
SELECT is(pg_temp.notes('w1'), 0::bigint, 'the one that left does not');
SELECT dblink_exec('w2', 'UNLISTEN tforge_tasks');
SELECT ok(NOT pg_temp.sent(), 'when the second leaves too, submits do not notify');

-- A listener of another database gets none of this database's
-- notifications (NOTIFY is per database): it does not count here.
SELECT dblink_connect('elsewhere', regexp_replace(tap_connstr(), 'dbname=\S+', 'dbname=postgres'));
SELECT dblink_exec('elsewhere', 'LISTEN tforge_tasks');
SELECT ok(NOT pg_temp.sent(), 'a listener in another database does not make submits here notify');
SELECT dblink_disconnect('elsewhere');

-- --------------------------------------------------- a listener that dies
-- w2 listens and is terminated (pg_terminate_backend): it is not counted
-- once its backend is gone (polled for up to 10 s: the exit is asynchronous).
SELECT dblink_exec('w2', 'LISTEN tforge_tasks');
SELECT ok(pg_temp.sent(), 'a listener makes submits notify');
CREATE TEMP TABLE w2pid AS SELECT * FROM dblink('w2', 'SELECT pg_backend_pid()') AS t(pid int);
SELECT ok(pg_terminate_backend((SELECT pid FROM w2pid), 10000), 'the listener is terminated');
SELECT ok(NOT pg_temp.sent(), 'after the listener''s backend exited, submits do not notify');
SELECT dblink_connect('w3', tap_connstr());
SELECT dblink_exec('w3', 'LISTEN tforge_tasks');
SELECT ok(pg_temp.sent(), 'a new listener makes them notify again');
SELECT is(pg_temp.notes('w3'), 4::bigint, 'and receives them');

SELECT dblink_exec('hold', 'ROLLBACK');
SELECT dblink_disconnect('hold'), dblink_disconnect('sub'), dblink_disconnect('w1'), dblink_disconnect('w3');
SELECT * FROM finish();
ROLLBACK;
