-- priority: calculate_priority terms, clamping, tiers, queues, priority_level,
-- cache invalidation, escalation by the scheduler
\set VERBOSITY terse
SET taskguard.notify = off;
INSERT INTO taskguard.task_config (task_name, base_priority) VALUES
    ('process_payment', 'HIGH'), ('prio_low', 'LOW'), ('prio_deferred', 'DEFERRED'),
    ('prio_critical', 'CRITICAL');

-- the documented example: HIGH + enterprise + 2 h old (SLA 15 min breached) → CRITICAL
SELECT * FROM taskguard.calculate_priority('process_payment',
    '{"customer_tier": "enterprise", "age_hours": 2, "retry_count": 1}');

-- every term alone
SELECT * FROM taskguard.calculate_priority('prio_unconfigured');
SELECT * FROM taskguard.calculate_priority('prio_low');
SELECT * FROM taskguard.calculate_priority('prio_unconfigured', '{"customer_tier": "enterprise"}');
SELECT * FROM taskguard.calculate_priority('prio_unconfigured', '{"customer_tier": "premium"}');
SELECT * FROM taskguard.calculate_priority('prio_unconfigured', '{"customer_tier": "standard"}');
SELECT * FROM taskguard.calculate_priority('prio_unconfigured', '{"customer_tier": "basic"}');
-- aging (a tier with a long SLA, so only aging applies)
UPDATE taskguard.customer_tier SET sla = '1000 hours' WHERE tier = 'standard';
SELECT a AS age_hours, (taskguard.calculate_priority('prio_low', jsonb_build_object('age_hours', a))).*
  FROM unnest(ARRAY[0, 5.9, 6, 11.9, 12, 23.9, 24, 1000]) a;
UPDATE taskguard.customer_tier SET sla = '2 hours' WHERE tier = 'standard';
-- SLA pressure: half the SLA +0.5, all of it +1 (standard: 2 h)
SELECT a AS age_hours, (taskguard.calculate_priority('prio_deferred', jsonb_build_object('age_hours', a))).*
  FROM unnest(ARRAY[0.99, 1, 1.99, 2]) a;
-- age from enqueued_at
SELECT (taskguard.calculate_priority('prio_deferred',
    jsonb_build_object('enqueued_at', now() - interval '90 minutes'))).*;
SELECT (taskguard.calculate_priority('prio_deferred',
    jsonb_build_object('enqueued_at', now() + interval '1 hour'))).score AS future_is_new;
SELECT (taskguard.calculate_priority('prio_deferred', '{"enqueued_at": "-infinity"}')).score AS neg_inf,
       (taskguard.calculate_priority('prio_deferred', '{"enqueued_at": "infinity"}')).score AS pos_inf;
-- age_hours wins over enqueued_at; negative ages are 0; numbers may be strings
SELECT (taskguard.calculate_priority('prio_deferred',
           '{"age_hours": 0, "enqueued_at": "2000-01-01"}')).score AS age_hours_wins,
       (taskguard.calculate_priority('prio_deferred', '{"age_hours": -5}')).score AS negative,
       (taskguard.calculate_priority('prio_deferred', '{"age_hours": "30"}')).score AS string_number,
       (taskguard.calculate_priority('prio_deferred', '{"age_hours": 1e300}')).score AS huge;
-- failure urgency from retry_policy's adjustment (documented values built in)
SELECT f, (taskguard.calculate_priority('prio_unconfigured', jsonb_build_object('failure_type', f))).*
  FROM unnest(ARRAY['TRANSIENT_RATE_LIMIT', 'SYSTEM_DISK_FULL', 'EXTERNAL_SERVICE_UNAVAILABLE',
                    'TRANSIENT_NETWORK', 'UNKNOWN']) f;

-- retry_policy is read per call: a per-task override, an override without an
-- adjustment inherits the type's default row, a changed default is seen at once
INSERT INTO taskguard.retry_policy (failure_type, task_name, priority_adjustment) VALUES
    ('TRANSIENT_NETWORK', 'prio_override', 1.5), ('TRANSIENT_RATE_LIMIT', 'prio_override', NULL);
SELECT f, (taskguard.calculate_priority('prio_override', jsonb_build_object('failure_type', f))).score
  FROM unnest(ARRAY['TRANSIENT_NETWORK', 'TRANSIENT_RATE_LIMIT']) f;
UPDATE taskguard.retry_policy SET priority_adjustment = -2
 WHERE failure_type = 'SYSTEM_DISK_FULL' AND task_name IS NULL;
SELECT (taskguard.calculate_priority('prio_unconfigured', '{"failure_type": "SYSTEM_DISK_FULL"}')).score AS changed_default;
UPDATE taskguard.retry_policy SET priority_adjustment = -0.5
 WHERE failure_type = 'SYSTEM_DISK_FULL' AND task_name IS NULL;
DELETE FROM taskguard.retry_policy WHERE task_name = 'prio_override';

-- clamping at both ends
SELECT * FROM taskguard.calculate_priority('prio_critical',
    '{"customer_tier": "enterprise", "age_hours": 30}');
SELECT * FROM taskguard.calculate_priority('prio_deferred',
    '{"customer_tier": "basic", "failure_type": "TRANSIENT_RATE_LIMIT"}');

-- unknown tiers count as standard (bonus and SLA)
SELECT * FROM taskguard.calculate_priority('prio_low', '{"customer_tier": "platinum", "age_hours": 1}');
SELECT (taskguard.calculate_priority('prio_low', '{"customer_tier": 42}')).score AS numeric_tier,
       (taskguard.calculate_priority('prio_low', '{"customer_tier": null}')).score AS null_tier,
       (taskguard.calculate_priority('prio_low', '{"customer_tier": ""}')).score AS empty_tier;

-- queue mapping, and configuration changes seen at once (cache invalidation)
SELECT l, (taskguard.calculate_priority('prio_unconfigured', jsonb_build_object('age_hours', a))).queue
  FROM (VALUES ('MEDIUM', 0), ('HIGH', 1), ('CRITICAL', 30)) v(l, a);
SELECT (taskguard.calculate_priority('prio_deferred')).queue AS deferred_q,
       (taskguard.calculate_priority('prio_low')).queue AS low_q;
UPDATE taskguard.priority_queue SET queue = 'urgent' WHERE priority = 'CRITICAL';
SELECT (taskguard.calculate_priority('prio_critical')).queue AS renamed;
UPDATE taskguard.priority_queue SET queue = 'critical' WHERE priority = 'CRITICAL';
INSERT INTO taskguard.task_config VALUES ('prio_new', 'CRITICAL');
SELECT (taskguard.calculate_priority('prio_new')).priority AS new_config;
UPDATE taskguard.task_config SET base_priority = 'LOW' WHERE task_name = 'prio_new';
SELECT (taskguard.calculate_priority('prio_new')).priority AS updated_config;
BEGIN;
DELETE FROM taskguard.task_config WHERE task_name = 'prio_new';
SELECT (taskguard.calculate_priority('prio_new')).priority AS deleted_in_tx;
ROLLBACK;
SELECT (taskguard.calculate_priority('prio_new')).priority AS after_rollback;
UPDATE taskguard.customer_tier SET bonus = 2 WHERE tier = 'premium';
SELECT (taskguard.calculate_priority('prio_low', '{"customer_tier": "premium"}')).score AS new_bonus;
UPDATE taskguard.customer_tier SET bonus = 0.5 WHERE tier = 'premium';
-- enqueue uses it
SELECT taskguard.enqueue('process_payment', customer_tier => 'enterprise') AS p1 \gset
SELECT priority, priority_score FROM taskguard.task WHERE id = :p1;

-- bad input
SELECT taskguard.calculate_priority(NULL);
SELECT (taskguard.calculate_priority('', NULL)).priority AS empty_name_null_context;
SELECT taskguard.calculate_priority('x', '[1, 2]');
SELECT taskguard.calculate_priority('x', '"text"');
SELECT taskguard.calculate_priority('x', '{"age_hours": "soon"}');
SELECT taskguard.calculate_priority('x', '{"age_hours": "NaN"}');
SELECT taskguard.calculate_priority('x', '{"age_hours": [1]}');
SELECT taskguard.calculate_priority('x', '{"enqueued_at": "yesterday-ish"}');
SELECT taskguard.calculate_priority('x', '{"failure_type": "BROKEN"}');
SELECT taskguard.calculate_priority('x', '{"failure_type": "transient_network"}');
SELECT (taskguard.calculate_priority(repeat('x', 5000000),
        jsonb_build_object('customer_tier', repeat('t', 5000000)))).priority AS huge;

-- priority_level thresholds
SELECT s, taskguard.priority_level(s)
  FROM unnest(ARRAY[-1, 0, 0.49, 0.5, 1.49, 1.5, 2.49, 2.5, 3.49, 3.5, 4, 100,
                    '-Infinity', 'Infinity']::real[]) s;
SELECT taskguard.priority_level(NULL) AS null_score;
SELECT taskguard.priority_level('NaN');

-- escalation: the scheduler raises waiting tasks as they age, level changes only
SELECT taskguard.enqueue('prio_esc', queue => 'prio_esc') AS e1 \gset
SELECT taskguard.enqueue('prio_esc', queue => 'prio_esc', priority => 'LOW') AS e2 \gset
SELECT taskguard.enqueue('prio_esc', queue => 'prio_esc', customer_tier => 'enterprise') AS e3 \gset
SELECT taskguard.enqueue('prio_esc', queue => 'prio_esc', customer_tier => 'basic') AS e4 \gset
SELECT (taskguard.tick()->>'escalate')::int AS young_tasks_untouched;
UPDATE taskguard.task SET enqueued_at = now() - interval '10 minutes' WHERE id = :e3;
SELECT (taskguard.tick()->>'escalate')::int AS enterprise_half_sla;
SELECT id = :e3 AS is_e3, priority, priority_score FROM taskguard.task WHERE queue = 'prio_esc' ORDER BY id;
UPDATE taskguard.task SET enqueued_at = now() - interval '7 hours' WHERE queue = 'prio_esc';
SELECT (taskguard.tick()->>'escalate')::int AS escalated;
SELECT priority, priority_score FROM taskguard.task WHERE queue = 'prio_esc' ORDER BY id;
SELECT (taskguard.tick()->>'escalate')::int AS nothing_more;
UPDATE taskguard.task SET enqueued_at = now() - interval '30 hours' WHERE queue = 'prio_esc';
SELECT (taskguard.tick()->>'escalate')::int AS escalated_again;
SELECT priority, priority_score FROM taskguard.task WHERE queue = 'prio_esc' ORDER BY id;
-- a score someone else set (requeue, an operator) counts as already aged when
-- it was set (run_at): only aging earned afterwards raises it
UPDATE taskguard.task SET priority = 'DEFERRED', priority_score = 0,
       enqueued_at = now() - interval '7 hours', run_at = now()
 WHERE id = :e2;
SELECT (taskguard.tick()->>'escalate')::int AS operator_choice_kept;
SELECT priority, priority_score FROM taskguard.task WHERE id = :e2;
UPDATE taskguard.task SET enqueued_at = now() - interval '30 hours', run_at = now() - interval '23 hours'
 WHERE id = :e2;
SELECT (taskguard.tick()->>'escalate')::int AS rebased;
SELECT priority, priority_score FROM taskguard.task WHERE id = :e2;
SELECT base_score, escalated_score FROM taskguard.task_escalation WHERE task_id = :e2;
-- running, failed and finished tasks are left alone; finished ones are forgotten
SELECT taskguard.enqueue('prio_esc2', queue => 'prio_esc2') AS r1 \gset
UPDATE taskguard.task SET enqueued_at = now() - interval '30 hours' WHERE id = :r1;
SELECT count(*) AS claimed FROM taskguard.claim('prio_esc2');
SELECT (taskguard.tick()->>'escalate')::int AS running_untouched;
SELECT priority FROM taskguard.task WHERE id = :r1;
SELECT taskguard.cancel(id) FROM taskguard.task WHERE queue = 'prio_esc';
SELECT taskguard.tick() IS NOT NULL AS ticked;
SELECT count(*) AS escalation_rows_left FROM taskguard.task_escalation x
  JOIN taskguard.task t ON t.id = x.task_id WHERE t.queue = 'prio_esc';
SELECT taskguard._escalate_priorities(0) AS batch_zero, taskguard._escalate_priorities(-5) AS batch_negative;
-- a retried task whose recomputed score already includes its aging is not aged twice
SELECT taskguard.enqueue('prio_esc3', queue => 'prio_esc3') AS r2 \gset
UPDATE taskguard.task t SET attempts = 1, enqueued_at = now() - interval '7 hours',
       run_at = now() - interval '1 minute',
       priority_score = p.score, priority = p.priority
  FROM taskguard.calculate_priority('prio_esc3',
           jsonb_build_object('enqueued_at', now() - interval '7 hours',
                              'failure_type', 'TRANSIENT_RATE_LIMIT')) p
 WHERE t.id = :r2;
SELECT priority, priority_score FROM taskguard.task WHERE id = :r2;
SELECT (taskguard.tick()->>'escalate')::int AS not_aged_twice;
UPDATE taskguard.task SET enqueued_at = now() - interval '25 hours', run_at = now() - interval '18 hours'
 WHERE id = :r2;
SELECT (taskguard.tick()->>'escalate')::int AS later_aging_counts;
SELECT priority, priority_score FROM taskguard.task WHERE id = :r2;
SELECT base_score, escalated_score FROM taskguard.task_escalation WHERE task_id = :r2;
SELECT taskguard._escalation_bonus(NULL, NULL) AS no_age,
       taskguard._escalation_bonus('nope', '-infinity') AS unknown_tier_forever,
       taskguard._escalation_bonus('basic', now() - interval '5 hours') AS basic_5h,
       taskguard._escalation_bonus('enterprise', now() - interval '1 hour', now() - interval '50 minutes') AS ent_10min,
       taskguard._escalation_bonus('standard', 'infinity') AS future;

-- leave nothing behind for the other tests
DELETE FROM taskguard.task WHERE task_name IN ('process_payment', 'prio_esc', 'prio_esc2', 'prio_esc3');
DELETE FROM taskguard.task_config WHERE task_name LIKE 'prio%' OR task_name = 'process_payment';
