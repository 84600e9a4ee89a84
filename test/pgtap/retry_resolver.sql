-- retry_resolver.sql — one resolver of taskguard.retry_policy for C and SQL
-- (issue 21).  0.1.0 looked the policy up twice: classify()/retry_decision()
-- in C fell back to the built-in policy when a type's default row was
-- deleted, the DLQ's SQL look-up fell back to 0, so a failure could be
-- retried while its record said max_retries 0.  Rolled back.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(14);

-- the default row of TRANSIENT_NETWORK is deleted: the built-in policy (5 retries) answers
DELETE FROM taskguard.retry_policy WHERE failure_type = 'TRANSIENT_NETWORK' AND task_name IS NULL;
SELECT is(taskguard._policy_max_retries('TRANSIENT_NETWORK', NULL), 5,
          'SQL look-up: a deleted default row gives the built-in max_retries (5), not 0');
SELECT is((taskguard.retry_decision('TRANSIENT_NETWORK', 0)).reason, 'retry 1 of 5',
          'C decision: the same built-in policy');

SELECT taskguard.enqueue('resolver_job', '{}', 'tap_resolver') AS t1 \gset
SELECT count(*) FROM taskguard.claim('tap_resolver', 'w');
SELECT (o).failure_type AS o_failure_type, coalesce((o).action, 'NULL') AS o_action FROM taskguard.fail(:t1, 'requests.exceptions.ConnectionError', 'connection refused') o \gset
SELECT is(:'o_failure_type'::text, 'TRANSIENT_NETWORK', 'the failure is TRANSIENT_NETWORK');
SELECT is(:'o_action'::text, 'retry', 'it is retried');
SELECT is((SELECT max_retries FROM taskguard.dead_letter WHERE task_id = :t1), 5,
          'and its record says max_retries 5, as the decision (was 0)');

-- a task override of a type whose default row is gone inherits the built-in columns
INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries)
VALUES ('TRANSIENT_NETWORK', 'resolver_job', 2);
SELECT is(taskguard._policy_max_retries('TRANSIENT_NETWORK', 'resolver_job'), 2,
          'an override row is seen at once (the cache is invalidated)');
SELECT is((taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'resolver_job')).reason, 'retry 1 of 2',
          'by the C decision too');
SELECT is(taskguard._policy_max_retries('TRANSIENT_NETWORK', 'other_job'), 5,
          'another task keeps the built-in policy');

-- the priority adjustment comes from the same resolver: an override's is used
INSERT INTO taskguard.retry_policy (failure_type, task_name, priority_adjustment)
VALUES ('TRANSIENT_RATE_LIMIT', 'resolver_job', -2);
SELECT ok((taskguard.calculate_priority('resolver_job', '{"failure_type": "TRANSIENT_RATE_LIMIT"}')).reasons
          @> ARRAY['failure TRANSIENT_RATE_LIMIT -2'],
          'calculate_priority takes the override''s priority_adjustment (-2)');
SELECT ok((taskguard.calculate_priority('other_job', '{"failure_type": "TRANSIENT_RATE_LIMIT"}')).reasons
          @> ARRAY['failure TRANSIENT_RATE_LIMIT -1'],
          'and another task the default row''s (-1)');

-- bad inputs of the SQL look-up: a NULL type counts as UNKNOWN (3 retries), a NULL,
-- empty or huge task_name is no override, never an error
SELECT is(taskguard._policy_max_retries(NULL, NULL), 3, 'NULL type: UNKNOWN''s max_retries');
SELECT is(taskguard._policy_max_retries('TRANSIENT_NETWORK', ''), 5, 'empty task_name: no override');
SELECT is(taskguard._policy_max_retries('TRANSIENT_NETWORK', repeat('x', 100000)), 5,
          'a 100 kB task_name: no override, no error');
SELECT throws_ok($$SELECT taskguard._policy_max_retries('NOT_A_TYPE', NULL)$$, '22P02',
                 NULL, 'a type that is not a failure_type is refused (22P02)');

SELECT * FROM finish();
ROLLBACK;
