-- The governor's database is owned by a role that is not a superuser: what
-- that owner may do must not make the worker (which runs as the bootstrap
-- superuser) run the owner's code, nor fail every pass (issue 13).
--
-- The owner puts a look-alike = for tforge.task_status into public (on the
-- default search_path; PostgreSQL 15 gives the database owner CREATE
-- there) and gives the database settings with ALTER DATABASE ... SET:
-- search_path = public, default_transaction_read_only = on,
-- statement_timeout = 1ms, role and session_authorization = the owner. Before the fix the worker's
-- pending count ran the look-alike as the superuser (the owner's function
-- made the owner a superuser), and the read-only default failed each pass.
-- Not in a transaction: the worker must see the owner's objects.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT plan(7);

CREATE FUNCTION pg_temp.wait_for(q text, timeout_s float8 DEFAULT 10) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
  ok boolean;
BEGIN
  LOOP
    EXECUTE q INTO ok;
    IF ok THEN RETURN true; END IF;
    IF clock_timestamp() > deadline THEN RETURN false; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;

SELECT tforge.governor_override(NULL) \gset
DROP ROLE IF EXISTS gov_owner;
CREATE ROLE gov_owner NOLOGIN;
SELECT format('ALTER DATABASE %I OWNER TO gov_owner', current_database()) AS alter_owner \gset
:alter_owner;

-- What the owner does, as the owner.
SET ROLE gov_owner;
CREATE TABLE public.superuser_runs (who text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION public.status_eq(a tforge.task_status, b tforge.task_status) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('is_superuser') = 'on' THEN
    INSERT INTO public.superuser_runs (who) VALUES (session_user);
  END IF;
  RETURN a::text = b::text;
END $$;
CREATE OPERATOR public.= (LEFTARG = tforge.task_status, RIGHTARG = tforge.task_status,
                          FUNCTION = public.status_eq);
SELECT format('ALTER DATABASE %I SET search_path = public', current_database()) AS s1,
       format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()) AS s2,
       format('ALTER DATABASE %I SET statement_timeout = ''1ms''', current_database()) AS s3,
       format('ALTER DATABASE %I SET role = gov_owner', current_database()) AS s4,
       format('ALTER DATABASE %I SET session_authorization = gov_owner', current_database()) AS s5 \gset
:s1;
RESET ROLE;

-- The look-alike does capture an unqualified comparison under that path
-- (the control: without the fix the worker's count is such a comparison).
SELECT tforge.submit_task('cpu-light') AS task \gset
SET search_path = public;
SELECT count(*) AS n FROM tforge.tasks t WHERE t.status = 'pending' \gset
RESET search_path;
SELECT ok((SELECT count(*) FROM public.superuser_runs) >= 1,
          'control: the look-alike = runs for an unqualified enum comparison on the owner''s search_path');
DELETE FROM public.superuser_runs;

-- A worker connecting now gets the database's search_path.
SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE backend_type = 'tforge governor' \gset
SELECT ok(pg_temp.wait_for($$SELECT running AND sampled_at > now() + interval '50 ms' AND pending >= 1
                              FROM tforge.governor_status()$$),
          'the worker restarts, samples and counts the pending task on the owner''s search_path');
SELECT is((SELECT count(*) FROM public.superuser_runs), 0::bigint,
          'the owner''s look-alike operator never ran as the superuser');

-- Settings that would fail every pass.
SET ROLE gov_owner;
-- The housekeeping's profile TTL is the superuser's: a 1 s TTL set for the
-- database would have the worker delete every profile.
SELECT throws_ok(format('ALTER DATABASE %I SET tforge.profile_ttl = 1', current_database()), '42501',
                 NULL, 'the owner cannot set the profile TTL the worker''s expire_profiles uses');
:s2;
:s3;
:s4;
:s5;
RESET ROLE;
SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE backend_type = 'tforge governor' \gset
SELECT ok(pg_temp.wait_for($$SELECT running AND sampled_at > now() + interval '50 ms' FROM tforge.governor_status()$$),
          'the worker restarts and samples under a read-only default, a 1 ms statement timeout and the owner''s role and session authorization');
SELECT worker_pid AS pid FROM tforge.governor_status() \gset
SELECT pg_sleep(1.5);
SELECT ok((SELECT worker_pid = :pid AND sampled_at > clock_timestamp() - interval '1 s' FROM tforge.governor_status()),
          'it keeps running and sampling: no pass fails');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'gov_owner'), false,
          'the owner is still not a superuser');

-- Put everything back.
SELECT format('ALTER DATABASE %I RESET ALL', current_database()) AS reset_all,
       format('ALTER DATABASE %I OWNER TO %I', current_database(), current_user) AS owner_back \gset
:reset_all;
:owner_back;
DROP OPERATOR public.= (tforge.task_status, tforge.task_status);
DROP FUNCTION public.status_eq(tforge.task_status, tforge.task_status);
DROP TABLE public.superuser_runs;
DROP ROLE gov_owner;
SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE backend_type = 'tforge governor' \gset
SELECT * FROM finish();
