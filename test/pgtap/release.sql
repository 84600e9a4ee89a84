-- release.sql — taskguard.release(task_id, attempt): a claimed task that has
-- not started goes back to ready without using an attempt (issue 23: a
-- worker's graceful shutdown).  Bad input changes nothing and returns false:
-- NULL, an unknown id, a task that is not running, a wrong attempt, another
-- tenant's task.  Rolled back.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(20);

-- Run sql as role; its result as text, or the SQLSTATE and message.
CREATE FUNCTION pg_temp.try_as(role name, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_res text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role);
    BEGIN
        EXECUTE sql INTO v_res;
    EXCEPTION WHEN others THEN
        v_res := SQLSTATE || ': ' || SQLERRM;
    END;
    RESET ROLE;
    RETURN v_res;
END $$;

CREATE TEMP VIEW t AS
SELECT id, status, attempts, worker, lease_expires_at, started_at FROM taskguard.task;

SELECT taskguard.enqueue('rel_a', '{}', 'tap_release') AS a \gset
SELECT taskguard.enqueue('rel_b', '{}', 'tap_release', max_attempts => 1) AS b \gset
SELECT count(*) FROM taskguard.claim('tap_release', 'w1', batch => 2);
SELECT taskguard.enqueue('rel_c', '{}', 'tap_release', run_at => now() + interval '1 hour') AS c \gset

-- the good case
SELECT ok(taskguard.release(:a, 1), 'release of a claimed task with its attempt');
SELECT is((SELECT status || ':' || attempts FROM t WHERE id = :a), 'ready:0',
          'it is ready again and its attempt is given back');
SELECT ok((SELECT worker IS NULL AND lease_expires_at IS NULL AND started_at IS NULL FROM t WHERE id = :a),
          'worker, lease and start are cleared');
SELECT ok(taskguard.release(:b), 'release without an attempt (any attempt)');
SELECT is((SELECT array_agg(id ORDER BY id) FROM taskguard.claim('tap_release', 'w2', batch => 5)),
          ARRAY[:a, :b]::bigint[], 'released tasks are claimed again at once');
SELECT is((SELECT attempts FROM t WHERE id = :b), 1,
          'a task with max_attempts 1 released and claimed again is on its first attempt');

-- bad input changes nothing
SELECT is(taskguard.release(NULL), false, 'NULL task_id: false');
SELECT is(taskguard.release(NULL, 1), false, 'NULL task_id with an attempt: false');
SELECT is(taskguard.release(-1), false, 'unknown id: false');
SELECT is(taskguard.release(9223372036854775807, 1), false, 'unknown id (bigint max): false');
SELECT is(taskguard.release(:c), false, 'a ready task is not running: false');
SELECT is(taskguard.release(:b, 2), false, 'wrong attempt (a later one): false');
SELECT is(taskguard.release(:b, 0), false, 'wrong attempt (an earlier one): false');
SELECT is((SELECT status || ':' || attempts || ':' || worker FROM t WHERE id = :b), 'running:1:w2',
          'the running task is untouched by the refused calls');
SELECT ok(taskguard.complete(:b, NULL, 1), 'it completes with its attempt');
SELECT is(taskguard.release(:b, 1), false, 'a finished task is not released');
SELECT is((SELECT status FROM t WHERE id = :b), 'succeeded', 'and stays succeeded');

-- tenants: a mapped worker releases its tenant's tasks only
CREATE ROLE tg_rel_acme;
SELECT taskguard.grant_access('tg_rel_acme', 'worker');
INSERT INTO taskguard.tenant_member VALUES ('tg_rel_acme', 'acme');
SELECT taskguard.enqueue('rel_t', '{}', 'tap_release_t', tenant => 'bolt') AS bolt \gset
SELECT taskguard.enqueue('rel_t', '{}', 'tap_release_t', tenant => 'acme') AS acme \gset
SELECT count(*) FROM taskguard.claim('tap_release_t', 'w3', batch => 2);
SELECT is(pg_temp.try_as('tg_rel_acme', format('SELECT taskguard.release(%s, 1)', :bolt)), 'false',
          'another tenant''s task: false');
SELECT is((SELECT status FROM t WHERE id = :bolt), 'running', 'and it stays running');
SELECT is(pg_temp.try_as('tg_rel_acme', format('SELECT taskguard.release(%s, 1)', :acme)), 'true',
          'its own tenant''s task: released (a worker role may call release)');

SELECT * FROM finish();
ROLLBACK;
