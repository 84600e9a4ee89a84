-- retry_advice.sql — retry advice from histories with known answers (issue
-- 20, docs/reference.md#retry-advice).  Records are written straight into dead_letter (as a
-- superuser) with chosen times; each task has a per-task policy with jitter
-- 'none' so the replay's retry times are exact:
--   adv_second  TRANSIENT_NETWORK     5 × 2 s ×2: 30 failures, all recovered on
--               retry 1 (2 s after the first failure)
--   adv_slow    TRANSIENT_RATE_LIMIT  8 × 20 s ×2 (retries at 20, 60, 140 s…):
--               25 failures, all recovered on retry 2 (60 s)
--   adv_never   EXTERNAL_API_ERROR    3 × 10 s ×2: 40 failures exhausted after
--               3 retries, 2 still open after 1 retry
--   adv_few     UNKNOWN: 5 exhausted failures (too few for advice)
-- Rolled back.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(69);

INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries, base_delay, max_delay,
                                    multiplier, jitter) VALUES
    ('TRANSIENT_NETWORK', 'adv_second', 5, '2 seconds', '5 minutes', 2, 'none'),
    ('TRANSIENT_RATE_LIMIT', 'adv_slow', 8, '20 seconds', '30 minutes', 2, 'none'),
    ('EXTERNAL_API_ERROR', 'adv_never', 3, '10 seconds', '10 minutes', 2, 'none'),
    ('UNKNOWN', 'adv_few', 3, '10 seconds', '10 minutes', 2, 'none');

INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation,
    retry_count, max_retries, first_failed_at, last_failed_at, resolved_at, resolution)
SELECT tn, st::taskguard.dlq_status, ft::taskguard.failure_type, c, rem::taskguard.remediation,
       rc, mr, ff, lf, ra, res
  FROM (
SELECT 'adv_second' AS tn, 'RESOLVED' AS st, 'TRANSIENT_NETWORK' AS ft, 0.9 AS c,
       'RETRY_WITH_BACKOFF' AS rem, 0 AS rc, 5 AS mr,
       now() - interval '1 day' - i * interval '1 minute' AS ff,
       now() - interval '1 day' - i * interval '1 minute' AS lf,
       now() - interval '1 day' - i * interval '1 minute' + interval '2 seconds' AS ra, 'retry' AS res
  FROM generate_series(1, 30) i
UNION ALL
SELECT 'adv_slow', 'RESOLVED', 'TRANSIENT_RATE_LIMIT', 0.9, 'RETRY_WITH_BACKOFF', 1, 8,
       now() - interval '2 days' - i * interval '1 minute', now() - interval '2 days' - i * interval '1 minute',
       now() - interval '2 days' - i * interval '1 minute' + interval '60 seconds', 'retry'
  FROM generate_series(1, 25) i
UNION ALL
SELECT 'adv_never', 'ABANDONED', 'EXTERNAL_API_ERROR', 0.8, 'CONTACT_EXTERNAL_SERVICE', 3, 3,
       now() - interval '3 days' - i * interval '1 minute', now() - interval '3 days', NULL,
       'max retries exceeded'
  FROM generate_series(1, 40) i
UNION ALL
SELECT 'adv_never', 'PENDING', 'EXTERNAL_API_ERROR', 0.8, 'CONTACT_EXTERNAL_SERVICE', 1, 3,
       now() - interval '1 minute', now(), NULL, NULL
  FROM generate_series(1, 2) i
UNION ALL
SELECT 'adv_few', 'ABANDONED', 'UNKNOWN', 0.5, 'MANUAL_INVESTIGATION', 3, 3,
       now() - interval '1 hour', now(), NULL, 'max retries exceeded'
  FROM generate_series(1, 5) i
UNION ALL            -- outside the 30-day window: counts nowhere
SELECT 'adv_second', 'ABANDONED', 'TRANSIENT_NETWORK', 0.9, 'RETRY_WITH_BACKOFF', 5, 5,
       now() - interval '31 days', now() - interval '31 days', NULL, 'max retries exceeded'
  FROM generate_series(1, 7) i) x;

-- outcomes
SELECT results_eq(
    $$SELECT task_name, failures, recovered, exhausted, still_open, recovery_rate,
             recovered_by_retry, recovery_rate_by_retry, recovery_time_p50, recovery_time_p90,
             retries_never_recovered
        FROM taskguard.retry_outcomes WHERE task_name LIKE 'adv\_%' ORDER BY task_name$$,
    $$VALUES ('adv_few'::text, 5::bigint, 0::bigint, 5::bigint, 0::bigint, 0.0000::numeric,
              '{"1": 0, "2": 0, "3": 0}'::jsonb, '{"1": 0, "2": 0, "3": 0}'::jsonb,
              NULL::interval, NULL::interval, 15::bigint),
             ('adv_never', 42, 0, 40, 2, 0.0000, '{"1": 0, "2": 0, "3": 0}',
              '{"1": 0, "2": 0, "3": 0}', NULL, NULL, 120),
             ('adv_second', 30, 30, 0, 0, 1.0000, '{"1": 30}', '{"1": 1}',
              '2 seconds', '2 seconds', 0),
             ('adv_slow', 25, 25, 0, 0, 1.0000, '{"1": 0, "2": 25}', '{"1": 0, "2": 1}',
              '60 seconds', '60 seconds', 0)$$,
    'retry_outcomes: failures, recoveries by retry, recovery times and wasted retries');

-- simulation counts, by hand
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 8, '20 seconds',
                                             '30 minutes', 2)$$,
    $$VALUES (25::bigint, 25::bigint, 50::bigint, 0::bigint, '60 seconds'::interval, '60 seconds'::interval)$$,
    'simulate the current adv_slow policy: retries at 20 and 60 s, 2 retries each');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 1, '20 seconds',
                                             '30 minutes', 2)$$,
    $$VALUES (25::bigint, 0::bigint, 25::bigint, 25::bigint, NULL::interval, NULL::interval)$$,
    'one retry at 20 s recovers none: 25 retries wasted');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3, '10 seconds',
                                             '30 minutes', 2)$$,
    $$VALUES (25::bigint, 25::bigint, 75::bigint, 0::bigint, '70 seconds'::interval, '70 seconds'::interval)$$,
    'retries at 10, 30, 70 s recover on the third');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 8, '20 seconds',
                                             '30 minutes', 2, 'full')$$,
    $$VALUES (25::bigint, 25::bigint, 75::bigint, 0::bigint, '70 seconds'::interval, '70 seconds'::interval)$$,
    'full jitter replays half the delays: 10, 30, 70 s');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 5, '20 seconds',
                                             '30 seconds', 2)$$,
    $$VALUES (25::bigint, 25::bigint, 75::bigint, 0::bigint, '80 seconds'::interval, '80 seconds'::interval)$$,
    'the cap holds the delays at 30 s: 20, 50, 80 s');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 1, '60 seconds',
                                             '30 minutes', 2)$$,
    $$VALUES (25::bigint, 25::bigint, 25::bigint, 0::bigint, '60 seconds'::interval, '60 seconds'::interval)$$,
    'one retry at 60 s recovers all (recovery at or before the retry)');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_never', 'EXTERNAL_API_ERROR', 3, '10 seconds',
                                             '10 minutes', 2)$$,
    $$VALUES (40::bigint, 0::bigint, 120::bigint, 120::bigint, NULL::interval, NULL::interval)$$,
    'never-recovering failures spend every retry; open ones are not replayed');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_never', 'EXTERNAL_API_ERROR', 0, '10 seconds',
                                             '10 minutes', 2)$$,
    $$VALUES (40::bigint, 0::bigint, 0::bigint, 0::bigint, NULL::interval, NULL::interval)$$,
    'no retries spend nothing');
SELECT results_eq(
    $$SELECT failures_replayed, recovered FROM taskguard.retry_simulate('adv_second',
          'TRANSIENT_NETWORK', 5, '2 seconds', '5 minutes', 2, 'none', now() - interval '1 hour')$$,
    $$VALUES (0::bigint, 0::bigint)$$,
    'since: failures before it are not replayed');
SELECT results_eq(
    $$SELECT failures_replayed, recovered FROM taskguard.retry_simulate('adv_second',
          'TRANSIENT_NETWORK', 5, '1 second', '5 minutes', 2, 'none', now() - interval '60 days')$$,
    $$VALUES (37::bigint, 30::bigint)$$,
    'since: an older window takes the older failures (and retries at 1, 3 s still recover)');
SELECT results_eq(
    $$SELECT failures_replayed FROM taskguard.retry_simulate('nobody', 'UNKNOWN', 3, '1 second',
          '1 minute', 2)$$,
    $$VALUES (0::bigint)$$, 'no history: nothing replayed');

-- the replay at its edges: constant delays computed directly, no delay at all,
-- a multiplier that would overflow, a mixed history's percentiles
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 1000000, '1 second',
                                             '1 second', 2)$$,
    $$VALUES (25::bigint, 25::bigint, 1500::bigint, 0::bigint, '60 seconds'::interval, '60 seconds'::interval)$$,
    'a retry every second, up to a million: recovered on the 60th (computed, not looped)');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 5, '0', '0', 2)$$,
    $$VALUES (25::bigint, 0::bigint, 125::bigint, 125::bigint, NULL::interval, NULL::interval)$$,
    'no delay at all: every retry comes at once and none recovers');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3, '20 seconds',
                                             '1 hour', 1e300)$$,
    $$VALUES (25::bigint, 25::bigint, 50::bigint, 0::bigint, '01:00:20'::interval, '01:00:20'::interval)$$,
    'a huge multiplier reaches the cap without overflowing: 20 s, then 1 h later');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3, '30 seconds',
                                             '1 hour', 1)$$,
    $$VALUES (25::bigint, 25::bigint, 50::bigint, 0::bigint, '60 seconds'::interval, '60 seconds'::interval)$$,
    'multiplier 1: retries every 30 s');

INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation,
    retry_count, max_retries, first_failed_at, resolved_at, resolution)
SELECT 'mix_case', st::taskguard.dlq_status, 'SYSTEM_CPU_OVERLOAD', 0.7, 'SCALE_RESOURCES', rc, 5,
       now() - interval '5 hours', now() - interval '5 hours' + t * interval '1 second', res
  FROM (VALUES ('RESOLVED', 0, 5, 'retry'), ('RESOLVED', 0, 5, 'retry'), ('RESOLVED', 0, 5, 'retry'),
               ('RESOLVED', 0, 5, 'retry'), ('RESOLVED', 0, 5, 'retry'), ('RESOLVED', 0, 5, 'retry'),
               ('RESOLVED', 2, 25, 'retry'), ('RESOLVED', 2, 25, 'retry'), ('RESOLVED', 2, 25, 'retry'),
               ('RESOLVED', 4, 100, 'retry'),
               ('ABANDONED', 5, NULL, 'max retries exceeded'), ('ABANDONED', 5, NULL, 'max retries exceeded'))
       v (st, rc, t, res);
SELECT results_eq(
    $$SELECT failures, recovered, exhausted, recovery_rate, recovered_by_retry, recovery_rate_by_retry,
             recovery_time_p50, recovery_time_p90, retries_never_recovered
        FROM taskguard.retry_outcomes WHERE task_name = 'mix_case'$$,
    $$VALUES (12::bigint, 10::bigint, 2::bigint, 0.8333::numeric,
              '{"1": 6, "2": 0, "3": 3, "4": 0, "5": 1}'::jsonb,
              '{"1": 0.5, "2": 0, "3": 0.5, "4": 0, "5": 0.3333}'::jsonb,
              '5 seconds'::interval, '25 seconds'::interval, 10::bigint)$$,
    'a mixed history: rates by retry of the failures that got that retry, percentiles');
SELECT results_eq(
    $$SELECT * FROM taskguard.retry_simulate('mix_case', 'SYSTEM_CPU_OVERLOAD', 3, '5 seconds',
                                             '1 hour', 2)$$,
    $$VALUES (12::bigint, 9::bigint, 24::bigint, 9::bigint, '5 seconds'::interval, '35 seconds'::interval)$$,
    'retries at 5, 15, 35 s: 6 on the first, 3 on the third, the 100 s one and 2 exhausted not');

-- bad input names the argument
SELECT throws_like($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', -1,
    '1 second', '1 minute', 2)$$, '%max_retries%', 'max_retries < 0 is refused');
SELECT throws_ok($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', -1,
    '1 second', '1 minute', 2)$$, '22023', NULL, '… as invalid_parameter_value');
SELECT throws_like($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3,
    '-1 second', '1 minute', 2)$$, '%base_delay%', 'a negative base_delay is refused');
SELECT throws_like($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3,
    '1 minute', '1 second', 2)$$, '%max_delay%', 'max_delay < base_delay is refused');
SELECT throws_like($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3,
    '1 second', '1 minute', 0.5)$$, '%multiplier%', 'a multiplier < 1 is refused');
SELECT throws_like($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3,
    '1 second', '1 minute', 'NaN')$$, '%multiplier%', 'a NaN multiplier is refused');
SELECT throws_like($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3,
    '1 second', '1 minute', 'Infinity')$$, '%multiplier%', 'an infinite multiplier is refused');
SELECT throws_like($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3,
    '1 second', '1 minute', 2, 'sometimes')$$, '%jitter%', 'an unknown jitter is refused');
SELECT throws_ok($$SELECT * FROM taskguard.retry_simulate(NULL, 'TRANSIENT_RATE_LIMIT', 3,
    '1 second', '1 minute', 2)$$, '22004', 'argument "task_name" must not be NULL', 'NULL task_name');
SELECT throws_ok($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3,
    NULL, '1 minute', 2)$$, '22004', 'argument "base_delay" must not be NULL', 'NULL base_delay');
SELECT throws_ok($$SELECT * FROM taskguard.retry_simulate('adv_slow', 'TRANSIENT_RATE_LIMIT', 3,
    '1 second', '1 minute', 2, 'none', NULL)$$, '22004', 'argument "since" must not be NULL', 'NULL since');

-- advice
SELECT results_eq(
    $$SELECT task_name, sample, min_sample, current_recovered, current_attempts_spent,
             recommended_max_retries, recommended_base_delay, recommended_max_delay,
             recommended_multiplier, recommended_recovered, recommended_attempts_spent
        FROM taskguard.retry_advice WHERE task_name LIKE 'adv\_%' ORDER BY task_name$$,
    $$VALUES ('adv_few'::text, 5::bigint, 20, NULL::bigint, NULL::bigint, NULL::int, NULL::interval,
              NULL::interval, NULL::float8, NULL::bigint, NULL::bigint),
             ('adv_never', 40, 20, 0, 120, 0, '10 seconds', '10 minutes', 2, 0, 0),
             ('adv_second', 30, 20, 30, 30, 5, '2 seconds', '5 minutes', 2, 30, 30),
             ('adv_slow', 25, 20, 25, 50, 1, '60 seconds', '30 minutes', 2, 25, 25)$$,
    'retry_advice: no advice on 5 failures; stop retrying what never recovers; keep what works; '
    'start at 60 s what recovers after 60 s');
SELECT is((SELECT reason FROM taskguard.retry_advice WHERE task_name = 'adv_few'),
          'too little data: 5 closed failures in 30 days, advice needs 20', 'too little data says so');
SELECT is((SELECT reason FROM taskguard.retry_advice WHERE task_name = 'adv_never'),
          'never recovered in 40 failures: stop retrying; recovers 0 of 40 (now 0) with 0 retries (now 120)',
          'the never-recovering type: stop retrying');
SELECT is((SELECT reason FROM taskguard.retry_advice WHERE task_name = 'adv_second'),
          'keep the current policy: it recovers 30 of 30 failures, no candidate does better',
          'the type recovering on the 2nd try: keep');
SELECT is((SELECT reason FROM taskguard.retry_advice WHERE task_name = 'adv_slow'),
          'recovered only after ≥ 60.0 s: start at 60 s, at most 1 retries; '
          'recovers 25 of 25 (now 25) with 25 retries (now 50)',
          'the slow type: start at 60 s');
SELECT is((SELECT count(*) FROM taskguard.retry_advice r JOIN taskguard.retry_simulate(
              r.task_name, r.failure_type, r.recommended_max_retries, r.recommended_base_delay,
              r.recommended_max_delay, r.recommended_multiplier, r.jitter) s
              ON s.recovered = r.recommended_recovered AND s.attempts_spent = r.recommended_attempts_spent
            WHERE r.task_name LIKE 'adv\_%' AND r.recommended_max_retries IS NOT NULL),
          3::bigint, 'each recommendation''s figures are retry_simulate''s');

-- applying advice (admin): the override and the record of the change
SELECT is(taskguard.retry_apply_advice('adv_few', 'UNKNOWN'), NULL, 'no advice: nothing applied');
SELECT is((SELECT count(*) FROM taskguard.retry_policy_change), 0::bigint, '… and nothing recorded');
SELECT isnt(taskguard.retry_apply_advice('adv_slow', 'TRANSIENT_RATE_LIMIT'), NULL, 'advice applied');
SELECT results_eq(
    $$SELECT max_retries, base_delay, max_delay, multiplier, jitter FROM taskguard.retry_policy
       WHERE task_name = 'adv_slow'$$,
    $$VALUES (1, '60 seconds'::interval, '30 minutes'::interval, 2::float8, 'none'::text)$$,
    'the per-task override now has the recommendation (jitter kept)');
SELECT results_eq(
    $$SELECT changed_by = current_user, task_name, failure_type::text, (old_policy->>'max_retries')::int,
             (old_policy->>'base_delay')::interval, (new_policy->>'max_retries')::int,
             (new_policy->>'base_delay')::interval, reason LIKE 'recovered only after%', auto
        FROM taskguard.retry_policy_change$$,
    $$VALUES (true, 'adv_slow'::text, 'TRANSIENT_RATE_LIMIT'::text, 8, '20 seconds'::interval,
              1, '60 seconds'::interval, true, false)$$,
    'the change is recorded: who, what, old and new values, why');
SELECT alike((SELECT reason FROM taskguard.retry_advice WHERE task_name = 'adv_slow'),
            'keep the current policy%', 'after applying, the advice is to keep it');
SELECT is(taskguard.retry_apply_advice('adv_none_here', 'UNKNOWN'), NULL, 'unknown task: nothing applied');
SELECT throws_ok($$SELECT taskguard.retry_apply_advice(NULL, 'UNKNOWN')$$, '22004',
                 'argument "task_name" must not be NULL', 'NULL task_name refused');
SELECT ok(NOT has_function_privilege('public', 'taskguard.retry_apply_advice(text, taskguard.failure_type)',
          'EXECUTE'), 'PUBLIC may not apply advice');

-- the failure event records the confidence and the delay before the retry
SELECT taskguard.enqueue('adv_event', '{}', 'tap_advice') AS t1 \gset
SELECT count(*) FROM taskguard.claim('tap_advice', 'w');
SELECT (taskguard.fail(:t1, 'TimeoutError', 'timed out')).action AS act \gset
SELECT is(:'act'::text, 'retry'::text, 'a real failure, to be retried');
SELECT ok((SELECT e.confidence = d.confidence AND e.confidence > 0
             FROM taskguard.failure_event e JOIN taskguard.dead_letter d ON d.id = e.failure_id
            WHERE e.task_id = :t1), 'its event has the classification''s confidence');
SELECT ok((SELECT e.retry_delay IS NOT NULL AND e.retry_delay = d.next_retry_at - e.time
             FROM taskguard.failure_event e JOIN taskguard.dead_letter d ON d.id = e.failure_id
            WHERE e.task_id = :t1), 'and the delay before its retry');
UPDATE taskguard.task SET max_attempts = attempts WHERE id = :t1;
UPDATE taskguard.task SET status = 'running' WHERE id = :t1;
SELECT (taskguard.fail(:t1, 'TimeoutError', 'timed out again')).action AS act2 \gset
SELECT is(:'act2'::text, 'abandon'::text, 'a last failure is abandoned');
SELECT is((SELECT retry_delay FROM taskguard.failure_event WHERE task_id = :t1 AND action = 'abandon'),
          NULL, '… its event has no retry delay');

SELECT is(current_setting('taskguard.retry_auto_tune'), 'off', 'retry_auto_tune is off by default');

-- access: readers read the advice and simulate, only admins apply it; a role
-- mapped to a tenant sees its tenant's failures only (row security)
CREATE FUNCTION pg_temp.try_as(role name, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_res text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role);
    BEGIN
        EXECUTE sql INTO v_res;
    EXCEPTION WHEN others THEN
        v_res := SQLSTATE;
    END;
    RESET ROLE;
    RETURN v_res;
END $$;
CREATE ROLE adv_reader; CREATE ROLE adv_worker; CREATE ROLE adv_admin; CREATE ROLE adv_acme;
SELECT taskguard.grant_access('adv_reader', 'reader'), taskguard.grant_access('adv_worker', 'worker'),
       taskguard.grant_access('adv_admin', 'admin'), taskguard.grant_access('adv_acme', 'reader');
INSERT INTO taskguard.tenant_member (role, tenant) VALUES ('adv_acme', 'acme');
INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence, remediation,
    retry_count, max_retries, first_failed_at, resolved_at, resolution)
SELECT 'adv_tenant', CASE WHEN i <= 3 THEN 'acme' ELSE 'globex' END, 'RESOLVED', 'UNKNOWN', 0.5,
       'MANUAL_INVESTIGATION', 0, 3, now() - interval '1 hour', now() - interval '1 hour' + interval '10 seconds',
       'retry'
  FROM generate_series(1, 10) i;
SELECT is(pg_temp.try_as('adv_reader', $$SELECT failures::text FROM taskguard.retry_outcomes
                                           WHERE task_name = 'adv_tenant'$$), '10',
          'a reader reads retry_outcomes');
SELECT is(pg_temp.try_as('adv_acme', $$SELECT failures::text FROM taskguard.retry_outcomes
                                         WHERE task_name = 'adv_tenant'$$), '3',
          'a reader mapped to a tenant sees only its failures');
SELECT is(pg_temp.try_as('adv_acme', $$SELECT sample::text FROM taskguard.retry_advice
                                         WHERE task_name = 'adv_tenant'$$), '3',
          '… in retry_advice too');
SELECT is(pg_temp.try_as('adv_acme', $$SELECT failures_replayed::text FROM taskguard.retry_simulate(
              'adv_tenant', 'UNKNOWN', 3, '1 second', '1 minute', 2)$$), '3', '… and in retry_simulate');
SELECT is(pg_temp.try_as('adv_reader', $$SELECT taskguard.retry_apply_advice('adv_slow', 'TRANSIENT_RATE_LIMIT')::text$$),
          '42501', 'a reader may not apply advice');
SELECT is(pg_temp.try_as('adv_worker', $$SELECT count(*)::text FROM taskguard.retry_advice$$),
          '42501', 'a worker does not read the advice');
SELECT is(pg_temp.try_as('adv_worker', $$SELECT recovered::text FROM taskguard.retry_simulate(
              'adv_tenant', 'UNKNOWN', 3, '1 second', '1 minute', 2)$$),
          '42501', 'nor run simulations');
SELECT is(pg_temp.try_as('adv_admin', $$SELECT coalesce(taskguard.retry_apply_advice('adv_never',
              'EXTERNAL_API_ERROR')::text, 'none')$$) <> '42501', true, 'an admin applies advice');
SELECT is((SELECT changed_by || ' ' || (new_policy->>'max_retries') FROM taskguard.retry_policy_change
            WHERE task_name = 'adv_never'), 'adv_admin 0', '… recorded as that admin''s change');

-- real flows: a queue task that fails once and then succeeds recovers on
-- retry 1; an external-broker record failing twice then resolve()d recovers
-- on retry 2
SELECT taskguard.enqueue('flow_queue', '{}', 'tap_flow') AS f1 \gset
SELECT count(*) FROM taskguard.claim('tap_flow', 'w');
SELECT (taskguard.fail(:f1, 'TimeoutError', 'timed out')).action;
UPDATE taskguard.dead_letter SET next_retry_at = now() - interval '1 second' WHERE task_id = :f1;
SELECT taskguard._requeue_due_retries(100);
SELECT is((SELECT count(*)::int FROM taskguard.claim('tap_flow', 'w')), 1, 'the retry is claimed');
SELECT ok(taskguard.complete(:f1), 'and succeeds');
SELECT (taskguard.record_failure('flow_ext', '{}', 'TimeoutError', 'timed out', task_ref => 'ext-1')).action;
SELECT (taskguard.record_failure('flow_ext', '{}', 'TimeoutError', 'timed out', task_ref => 'ext-1')).action;
SELECT ok(taskguard.resolve((SELECT id FROM taskguard.dead_letter WHERE task_ref = 'ext-1')), 'resolved');
SELECT results_eq(
    $$SELECT task_name, failures, recovered, recovered_by_retry FROM taskguard.retry_outcomes
       WHERE task_name LIKE 'flow\_%' ORDER BY task_name$$,
    $$VALUES ('flow_ext'::text, 1::bigint, 1::bigint, '{"1": 0, "2": 1}'::jsonb),
             ('flow_queue', 1, 1, '{"1": 1}')$$,
    'fail() then complete(): recovered on retry 1; record_failure twice then resolve(): on retry 2');

-- auto-tuning: off by default; within its bounds (docs/failures.md)
SELECT is(taskguard._retry_auto_tune(), 0, 'retry_auto_tune off: the step changes nothing');
SELECT is((SELECT count(*) FROM taskguard.metric_snapshot WHERE name = 'retry_tune_run'), 0::bigint,
          '… and does not even look');
INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries, base_delay, max_delay,
                                    multiplier, jitter) VALUES
    ('TRANSIENT_RATE_LIMIT', 'tune_slow', 8, '20 seconds', '30 minutes', 2, 'none'),
    ('TRANSIENT_RATE_LIMIT', 'tune_recent', 8, '20 seconds', '30 minutes', 2, 'none'),
    ('EXTERNAL_API_ERROR', 'tune_far', 8, '2 seconds', '1 hour', 2, 'none');
INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation,
    retry_count, max_retries, first_failed_at, resolved_at, resolution)
SELECT n, 'RESOLVED', t::taskguard.failure_type, 0.9, 'RETRY_WITH_BACKOFF', rc, 8,
       now() - interval '1 day', now() - interval '1 day' + secs * interval '1 second', 'retry'
  FROM (VALUES ('tune_slow', 'TRANSIENT_RATE_LIMIT', 1, 60), ('tune_recent', 'TRANSIENT_RATE_LIMIT', 1, 60),
               ('tune_far', 'EXTERNAL_API_ERROR', 7, 300)) v (n, t, rc, secs),
       generate_series(1, 120) i;
INSERT INTO taskguard.retry_policy_change (changed_at, task_name, failure_type, old_policy, new_policy, reason)
VALUES (now() - interval '1 hour', 'tune_recent', 'TRANSIENT_RATE_LIMIT', '{}', '{}', 'by hand');
SELECT is(taskguard._retry_tune_apply(), 1, 'auto-tune applies one piece of advice');
SELECT results_eq(
    $$SELECT p.task_name, p.max_retries, p.base_delay, c.auto, c.reason LIKE 'auto-tune: recovered only after%'
        FROM taskguard.retry_policy p JOIN taskguard.retry_policy_change c USING (task_name, failure_type)
       WHERE p.task_name LIKE 'tune\_%' AND c.auto$$,
    $$VALUES ('tune_slow'::text, 1, '60 seconds'::interval, true, true)$$,
    'tune_slow: start at 60 s, recorded as automatic');
SELECT results_eq(
    $$SELECT task_name, max_retries, base_delay FROM taskguard.retry_policy
       WHERE task_name IN ('tune_far', 'tune_recent') ORDER BY task_name$$,
    $$VALUES ('tune_far'::text, 8, '2 seconds'::interval), ('tune_recent', 8, '20 seconds')$$,
    'not tune_far (60 s is beyond 4 × its 2 s) nor tune_recent (changed an hour ago)');
SELECT is(taskguard._retry_tune_apply(), 0, 'a second run changes nothing more');

SELECT * FROM finish();
ROLLBACK;
